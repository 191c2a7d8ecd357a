//! A read-only machine (an untrusted CI job) reads the team's results and writes nothing,
//! not even a run record.

use crate::{expected, on, remote, report, sorted};

#[test]
fn a_read_only_machine_reads_and_writes_nothing() {
    let Some(remote) = remote("read-only") else {
        return;
    };
    let read_only = remote.clone().read_only(true);
    let store = stage::inspect::open_remote(&remote).unwrap();

    let ci = tempfile::tempdir().unwrap();
    let (value, log) = on(ci.path(), &read_only, || report(20));
    assert_eq!(value.unwrap(), expected(20));
    assert_eq!(
        sorted(log.computed()),
        ["numbers", "report", "squares", "table"]
    );
    assert!(store.list(None).unwrap().is_empty(), "no entry written");
    assert!(
        store.list_records("runs/").unwrap().is_empty(),
        "no record written"
    );

    // What a trusted machine shares, the read-only one reads.
    let main = tempfile::tempdir().unwrap();
    on(main.path(), &remote, || report(21)).0.unwrap();
    let listed = store.list(None).unwrap().len();
    let ci = tempfile::tempdir().unwrap();
    let (value, log) = on(ci.path(), &read_only, || report(21));
    assert_eq!(value.unwrap(), expected(21));
    assert_eq!(log.computed(), ["report"]);
    let (value, _) = on(ci.path(), &read_only, || report(22));
    assert_eq!(value.unwrap(), expected(22));
    assert_eq!(
        store.list(None).unwrap().len(),
        listed,
        "still nothing written"
    );
}
