//! Two machines, one bucket.

use crate::{expected, offline, on, remote, report, sorted};

#[test]
fn a_second_machine_computes_nothing_and_gets_the_same_values() {
    let Some(remote) = remote("two-machines") else {
        return;
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (value, log) = on(a.path(), &remote, || report(50));
    assert_eq!(value.unwrap(), expected(50));
    assert_eq!(
        sorted(log.computed()),
        ["numbers", "report", "squares", "table"]
    );

    let (value, log) = on(b.path(), &remote, || report(50));
    assert_eq!(value.unwrap(), expected(50));
    assert_eq!(
        log.computed(),
        ["report"],
        "only the memory-only stage runs"
    );
    assert_eq!(sorted(log.loaded()), ["squares", "table"]);

    // What came from the remote is kept locally: offline, the second machine still hits.
    let (value, log) = offline(b.path(), || report(50));
    assert_eq!(value.unwrap(), expected(50));
    assert_eq!(log.computed(), ["report"]);
}

#[test]
fn a_new_key_computed_on_the_second_machine_reaches_the_first() {
    let Some(remote) = remote("both-ways") else {
        return;
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    on(a.path(), &remote, || report(10)).0.unwrap();
    let (value, log) = on(b.path(), &remote, || report(11));
    assert_eq!(value.unwrap(), expected(11));
    assert_eq!(sorted(log.computed()), ["numbers", "report", "squares"]);
    let (value, log) = on(a.path(), &remote, || report(11));
    assert_eq!(value.unwrap(), expected(11));
    assert_eq!(log.computed(), ["report"]);
}

#[test]
fn background_uploads_reach_the_remote() {
    let Some(remote) = remote("background") else {
        return;
    };
    let remote = remote.upload(stage::Upload::Background);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    on(a.path(), &remote, || report(12)).0.unwrap();
    // The call returned without waiting: wait here until the entries are there.
    let store = stage::inspect::open_remote(&remote).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.list(None).unwrap().iter().filter(|l| l.meta).count() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "uploads never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (value, log) = on(b.path(), &remote, || report(12));
    assert_eq!(value.unwrap(), expected(12));
    assert_eq!(log.computed(), ["report"]);
}
