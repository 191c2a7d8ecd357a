//! The remote store over in-memory and folder object stores: the same promises as the
//! local store (the S3 server is exercised by the facade's `tests/remote/`).

use std::io::Write;

use super::*;
use crate::config::Remote;
use crate::store::entry::tests::entry;
use crate::store::{LocalStore, open_remote};

/// An entry written in a local folder, to be put in a remote.
fn local_entry(dir: &std::path::Path, name: &[u8], payload: &[u8]) -> (Entry, std::path::PathBuf) {
    let local = LocalStore::new(dir);
    let written = local
        .write(entry(Digest::of(name)), |w| Ok(w.write_all(payload)?))
        .unwrap();
    let path = local.payload_path(&written);
    (written, path)
}

fn memory(name: &str) -> Arc<dyn Store> {
    open_remote(&Remote::new(format!("memory://{name}/prefix"))).unwrap()
}

#[test]
fn put_then_lookup_read_list_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let remote = memory("basics");
    let (written, path) = local_entry(dir.path(), b"k", b"payload");
    assert_eq!(remote.put(&written, &path).unwrap(), Put::Written);
    assert_eq!(
        remote.put(&written, &path).unwrap(),
        Put::Existing(Box::new(written.clone()))
    );
    let found = remote.lookup("demo::s", &written.key).unwrap().unwrap();
    assert_eq!(found, written);
    assert_eq!(&remote.read(&found).unwrap()[..], b"payload");
    let listed = remote.list(None).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].meta);
    assert_eq!(listed[0].payload_bytes, Some(7));
    assert_eq!(listed[0].stage, "demo::s");
    remote.remove("demo::s", &written.key, false).unwrap();
    assert!(remote.lookup("demo::s", &written.key).unwrap().is_some());
    assert_eq!(remote.list(None).unwrap()[0].payload_bytes, None);
    remote.remove("demo::s", &written.key, true).unwrap();
    assert!(remote.lookup("demo::s", &written.key).unwrap().is_none());
    assert!(remote.list(Some("demo::s")).unwrap().is_empty());
}

#[test]
fn damaged_objects_are_errors_never_values() {
    let dir = tempfile::tempdir().unwrap();
    let remote = memory("damage");
    let (written, path) = local_entry(dir.path(), b"k", b"payload");
    remote.put(&written, &path).unwrap();
    let object = format!("demo.s/{}", written.payload);
    for bad in [&b"paylOad"[..], b"pay", b"payload and more"] {
        remote.put_record(&object, bad).unwrap();
        let error = remote.read(&written).unwrap_err();
        assert!(error.is_damage(), "{error}");
    }
    let meta = format!("demo.s/{}", meta_name(&written.key));
    remote.put_record(&meta, b"{\"format\":").unwrap();
    assert!(
        remote
            .lookup("demo::s", &written.key)
            .unwrap_err()
            .is_damage()
    );
}

#[test]
fn a_differing_payload_keeps_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let remote = memory("differ");
    let (theirs, path) = local_entry(dir.path(), b"k", b"one");
    remote.put(&theirs, &path).unwrap();
    let other = tempfile::tempdir().unwrap();
    let (ours, path) = local_entry(other.path(), b"k", b"two");
    assert_eq!(
        remote.put(&ours, &path).unwrap(),
        Put::Existing(Box::new(theirs.clone()))
    );
    assert_eq!(&remote.read(&theirs).unwrap()[..], b"one");
}

#[test]
fn records_are_named_objects() {
    let remote = memory("records");
    remote.put_record("runs/a.json", b"1").unwrap();
    remote.put_record("runs/b.json", b"2").unwrap();
    assert_eq!(
        remote.list_records("runs/").unwrap(),
        ["runs/a.json", "runs/b.json"]
    );
    assert_eq!(
        &remote.get_record("runs/b.json").unwrap().unwrap()[..],
        b"2"
    );
    assert!(remote.get_record("runs/c.json").unwrap().is_none());
}

#[test]
fn a_folder_store_and_a_read_only_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    let url = format!("file://{}", root.display());
    let remote = open_remote(&Remote::new(url.clone())).unwrap();
    let (written, path) = local_entry(dir.path(), b"k", b"payload");
    assert_eq!(remote.put(&written, &path).unwrap(), Put::Written);
    let read_only = open_remote(&Remote::new(url).read_only(true)).unwrap();
    assert!(!read_only.writable());
    assert_eq!(
        read_only.lookup("demo::s", &written.key).unwrap(),
        Some(written.clone())
    );
    let (other, path) = local_entry(dir.path(), b"other", b"x");
    assert!(matches!(
        read_only.put(&other, &path),
        Err(StoreError::ReadOnly { .. })
    ));
    assert!(read_only.put_record("runs/x.json", b"1").is_err());
    assert!(remote.lookup("demo::s", &other.key).unwrap().is_none());
}

#[test]
fn unknown_schemes_and_options_say_what_is_valid() {
    let error = open_remote(&Remote::new("ftp://host/x"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("s3://"), "{error}");
    let error = open_remote(&Remote::new("no-url")).unwrap_err().to_string();
    assert!(error.contains("is not a URL"), "{error}");
    #[cfg(feature = "aws")]
    {
        let error = open_remote(&Remote::new("s3://b/p").option("aws_colour", "blue"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("aws_colour"), "{error}");
    }
}

#[test]
fn urls_are_shown_without_secrets() {
    assert_eq!(
        open::display_url("s3://user:pw@bucket/prefix?token=x"),
        "s3://bucket/prefix"
    );
    let remote = Remote::new("s3://b/p").option("aws_secret_access_key", "hush");
    assert!(!format!("{remote:?}").contains("hush"));
}

#[test]
fn a_large_payload_goes_in_parts_and_comes_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let remote = memory("large");
    let payload: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
    let (written, path) = local_entry(dir.path(), b"large", &payload);
    assert_eq!(remote.put(&written, &path).unwrap(), Put::Written);
    let mut back = Vec::new();
    remote.read_into(&written, &mut back).unwrap();
    assert!(back == payload);
}
