//! Per-item stages in the cache: what `explain` and the run log say of them, and what
//! happens when an item's entry is lost or damaged.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use stage::{Config, Items, State, stage};

/// The pages `big` ran for, in every test of this binary.
static BIG_RAN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// How many times `big` ran for a page below `dir`.
fn big_runs(dir: &Path) -> usize {
    let dir = dir.canonicalize().unwrap();
    BIG_RAN
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.starts_with(&dir))
        .count()
}

#[stage(page = each("pages"), cache = bincode, untracked = [BIG_RAN])]
fn big(page: &Path) -> std::io::Result<Vec<u8>> {
    BIG_RAN.lock().unwrap().push(page.to_path_buf());
    let seed = fs::read(page)?;
    // Large enough to be kept in a file of its own, not inline in the list.
    Ok(seed.iter().cycle().take(40_000).copied().collect())
}

#[stage(all = big, cache = bincode)]
fn sizes(all: &Items<Vec<u8>>) -> Result<Vec<usize>, stage::Error> {
    all.iter().map(|page| page.map(|p| p.len())).collect()
}

fn pages(names: &[&str]) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("data/pages")).unwrap();
    for name in names {
        fs::write(dir.path().join("data/pages").join(name), name).unwrap();
    }
    let config = Config::from_env()
        .dir(dir.path().join("cache"))
        .data_dir(dir.path().join("data"));
    (dir, config)
}

/// The payload files of `big`'s items.
fn item_payloads(dir: &Path) -> Vec<std::path::PathBuf> {
    let folder = dir.join("cache/items_cache.big/items");
    let mut files: Vec<_> = fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    files
}

#[test]
fn explain_and_the_run_log_count_the_items_that_run() {
    let (dir, config) = pages(&["a", "b", "c"]);
    let graph = config.scope(|| stage::graph::<sizes>(())).unwrap();
    let node = graph.nodes.iter().find(|n| n.name == "big").unwrap();
    assert_eq!(node.items.map(|c| (c.run, c.total)), Some((3, 3)));

    let (v, log) = config.scope(|| stage::observe(sizes));
    assert_eq!(v.unwrap(), [40_000; 3]);
    assert!(log.to_string().contains("3 of 3 items"), "{log}");

    fs::write(dir.path().join("data/pages/d"), "d").unwrap();
    let graph = config.scope(|| stage::graph::<sizes>(())).unwrap();
    let node = graph.nodes.iter().find(|n| n.name == "big").unwrap();
    assert_eq!(node.items.map(|c| (c.run, c.total)), Some((1, 4)));
    assert!(matches!(node.state, State::Outdated(_)));
    assert!(graph.to_dot().contains("1 of 4 items"));

    let (v, log) = config.scope(|| stage::observe(sizes));
    assert_eq!(v.unwrap(), [40_000; 4]);
    assert!(log.to_string().contains("1 of 4 items"), "{log}");
    let graph = config.scope(|| stage::graph::<big>(())).unwrap();
    let node = graph.nodes.last().unwrap();
    assert_eq!(node.state, State::Cached);
    assert_eq!(node.items.map(|c| (c.run, c.total)), Some((0, 4)));
}

#[test]
fn a_lost_item_is_computed_again_and_only_it() {
    let (dir, config) = pages(&["e", "f", "g"]);
    config.scope(big).unwrap();
    assert_eq!(big_runs(dir.path()), 3);

    let payloads = item_payloads(dir.path());
    assert_eq!(payloads.len(), 3);
    fs::remove_file(&payloads[1]).unwrap();
    let (v, log) = config.scope(|| stage::observe(sizes));
    assert_eq!(v.unwrap(), [40_000; 3]);
    assert_eq!(big_runs(dir.path()), 4, "{log}");
}

#[test]
fn a_damaged_item_is_an_error_naming_it_and_the_next_call_computes_it_again() {
    let (dir, config) = pages(&["h", "i"]);
    config.scope(big).unwrap();
    let payloads = item_payloads(dir.path());
    let mut bytes = fs::read(&payloads[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&payloads[0], bytes).unwrap();

    let err = config.scope(sizes).unwrap_err();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        message = format!("{message}: {e}");
        source = e.source();
    }
    assert!(message.contains("item `"), "{message}");
    assert!(message.contains("next call recomputes"), "{message}");

    assert_eq!(big_runs(dir.path()), 2);
    assert_eq!(config.scope(sizes).unwrap(), [40_000; 2]);
    assert_eq!(big_runs(dir.path()), 3);
}
