//! Sixteen machines computing one key at once leave exactly one committed entry.

use std::sync::Barrier;

use crate::{numbers, on, remote};

#[test]
fn sixteen_machines_racing_on_one_key_leave_one_entry() {
    let Some(remote) = remote("race") else {
        return;
    };
    let barrier = Barrier::new(16);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                let dir = tempfile::tempdir().unwrap();
                barrier.wait();
                let (value, _) = on(dir.path(), &remote, || numbers(777));
                assert_eq!(value.unwrap(), (0..777).collect::<Vec<_>>());
            });
        }
    });
    let store = stage::inspect::open_remote(&remote).unwrap();
    let listed = store.list(Some("remote::numbers")).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].meta && listed[0].payload_bytes.is_some());

    let fresh = tempfile::tempdir().unwrap();
    let (value, log) = on(fresh.path(), &remote, || numbers(777));
    assert_eq!(value.unwrap(), (0..777).collect::<Vec<_>>());
    assert_eq!(log.loaded(), ["numbers"]);
}
