//! A damaged, truncated or swapped object in the remote cache is a miss: never returned,
//! never copied into the local cache.

use stage::inspect::{Entry, Store};

use crate::{expected, offline, on, remote, report, server};

const SQUARES: &str = "remote::squares";

/// An entry of `squares` in the remote cache, whose key the machine with the cache `dir`
/// (which computed it) knows.
fn entry(store: &dyn Store, dir: &std::path::Path, n: u64) -> Entry {
    let key = stage::Config::from_env()
        .dir(dir)
        .local_only()
        .scope(|| stage::inspect::key::<crate::squares>((n,)));
    store.lookup(SQUARES, &key.unwrap()).unwrap().unwrap()
}

fn object(entry: &Entry, name: &str) -> String {
    format!(
        "{}/{name}",
        stage::inspect::Entry::stage(entry).replace("::", ".")
    )
}

/// Damages the remote `squares(50)` entry with `damage`, then checks that a fresh machine
/// computes `squares` again, returns the right value, and keeps its own entry.
fn check(name: &str, damage: impl FnOnce(&dyn Store, &Entry, &Entry)) {
    let Some(remote) = remote(name) else {
        return;
    };
    let a = tempfile::tempdir().unwrap();
    // A machine whose only link is the remote: its local keys are found through it.
    on(a.path(), &remote, || report(50)).0.unwrap();
    on(a.path(), &remote, || report(51)).0.unwrap();
    let store = stage::inspect::open_remote(&remote).unwrap();
    let (fifty, fifty_one) = (entry(&*store, a.path(), 50), entry(&*store, a.path(), 51));
    damage(&*store, &fifty, &fifty_one);

    let b = tempfile::tempdir().unwrap();
    let (value, log) = on(b.path(), &remote, || report(50));
    assert_eq!(value.unwrap(), expected(50), "{name}");
    assert!(log.computed().contains(&"squares"), "{name}: {log}");
    let (value, log) = offline(b.path(), || report(50));
    assert_eq!(value.unwrap(), expected(50), "{name}");
    assert_eq!(
        log.computed(),
        ["report"],
        "{name}: the local entry is whole"
    );
}

#[test]
fn a_flipped_payload_byte_is_a_miss() {
    check("flipped", |store, fifty, _| {
        let mut bytes = store.read(fifty).unwrap().to_vec();
        bytes[3] ^= 0x10;
        store
            .put_record(&object(fifty, &fifty.payload), &bytes)
            .unwrap();
    });
}

#[test]
fn a_truncated_payload_is_a_miss() {
    check("truncated", |store, fifty, _| {
        let bytes = store.read(fifty).unwrap();
        store
            .put_record(&object(fifty, &fifty.payload), &bytes[..bytes.len() / 2])
            .unwrap();
    });
}

#[test]
fn swapped_payloads_are_a_miss() {
    check("swapped-payloads", |store, fifty, fifty_one| {
        let theirs = store.read(fifty_one).unwrap();
        store
            .put_record(&object(fifty, &fifty.payload), &theirs)
            .unwrap();
    });
}

#[test]
fn swapped_metadata_is_a_miss() {
    check("swapped-metadata", |store, fifty, fifty_one| {
        let meta = stage::inspect::Entry::clone(fifty_one);
        let bytes = stage_meta(&meta);
        store
            .put_record(
                &object(fifty, &format!("{}.meta.json", fifty.key.to_hex())),
                &bytes,
            )
            .unwrap();
    });
}

#[test]
fn garbled_metadata_is_a_miss() {
    check("garbled-metadata", |store, fifty, _| {
        let name = object(fifty, &format!("{}.meta.json", fifty.key.to_hex()));
        let mut bytes = store.get_record(&name).unwrap().unwrap().to_vec();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        store.put_record(&name, &bytes).unwrap();
    });
}

/// The metadata file of `entry`, as every store writes it.
fn stage_meta(entry: &Entry) -> Vec<u8> {
    let server = server::server().unwrap();
    let _ = server;
    let dir = tempfile::tempdir().unwrap();
    let local = stage::inspect::LocalStore::new(dir.path());
    let payload = dir.path().join("payload");
    std::fs::write(&payload, b"").unwrap();
    let _ = local.put(entry, &payload);
    let folder = dir.path().join(entry.stage().replace("::", "."));
    std::fs::read(folder.join(format!("{}.meta.json", entry.key.to_hex()))).unwrap()
}
