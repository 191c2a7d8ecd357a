//! Results without the raw data: with `STAGE_ALLOW_MISSING=1`, a missing raw input is keyed
//! by the content the latest run recorded for it, so its descendants are read from the
//! cache; a stage that would have to read it gets an error that says it is missing.

use std::path::Path;

use stage::{Config, stage};

use crate::{remote, sorted};

#[stage(raw = "words.txt", cache = bincode)]
fn word_count(raw: &Path) -> std::io::Result<usize> {
    Ok(std::fs::read_to_string(raw)?.split_whitespace().count())
}

#[stage(n = word_count, cache = bincode)]
fn doubled(n: &usize) -> usize {
    n * 2
}

#[test]
fn missing_raw_inputs_are_keyed_by_the_latest_record() {
    let Some(remote) = remote("missing") else {
        return;
    };
    let (data, a) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(data.path().join("words.txt"), "one two three").unwrap();
    let with_data = Config::from_env()
        .data_dir(data.path())
        .remote(remote.clone());
    let (value, log) = with_data
        .clone()
        .dir(a.path())
        .scope(|| stage::observe(doubled));
    assert_eq!(value.unwrap(), 6);
    assert_eq!(sorted(log.computed()), ["doubled", "word_count"]);

    // A machine without the data: the remote's run record gives the input's hash.
    let (empty, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let without = Config::from_env()
        .data_dir(empty.path())
        .remote(remote.clone());
    let (value, log) = without
        .clone()
        .allow_missing(true)
        .dir(b.path())
        .scope(|| stage::observe(doubled));
    assert_eq!(value.unwrap(), 6);
    assert_eq!(log.loaded(), ["doubled"]);
    assert!(log.computed().is_empty());

    // Without the setting, a missing input is an error, as always.
    let c = tempfile::tempdir().unwrap();
    let error = without.clone().dir(c.path()).scope(doubled).unwrap_err();
    assert!(matches!(error, stage::Error::Input { .. }), "{error}");

    // The remote no longer has the stage's result: it would have to run, and says why not.
    let store = stage::inspect::open_remote(&remote).unwrap();
    for listed in store.list(None).unwrap() {
        store.remove(&listed.stage, &listed.key, true).unwrap();
    }
    let d = tempfile::tempdir().unwrap();
    let error = without
        .allow_missing(true)
        .dir(d.path())
        .scope(doubled)
        .unwrap_err();
    assert!(matches!(error, stage::Error::Input { .. }), "{error}");
    let source = std::error::Error::source(&error).unwrap().to_string();
    assert!(source.contains("missing"), "{source}");
}
