//! A record of each call: which keys its pipeline used. `stage gc` keeps what the latest
//! runs used and removes the rest.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::key::Digest;
use crate::run::plan::Node;
use crate::store::Layered;

/// The folder of run records, inside the cache root.
pub const RUNS_DIR: &str = "runs";

/// What one call used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The stage that was called.
    pub root: String,
    /// Its key.
    pub key: Digest,
    /// When the call ended (ms since the Unix epoch).
    pub time_ms: u64,
    /// Every cached stage of the call's pipeline with its key, needed or not.
    pub used: Vec<UsedKey>,
    /// The raw inputs the call's pipeline read: each path as the attribute gives it
    /// (relative to the data folder) with its content hash.
    #[serde(default)]
    pub inputs: Vec<RecordedInput>,
}

/// A raw input in a [`RunRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedInput {
    /// The path as the attribute gives it.
    pub path: String,
    /// Its content hash in that run.
    pub hash: Digest,
}

/// One stage's key in a [`RunRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedKey {
    /// The stage's path.
    pub stage: String,
    /// Its key in that run.
    pub key: Digest,
}

impl RunRecord {
    /// Writes the record as a new file in `<root>/runs/` (atomically: temporary + rename),
    /// and returns its name (`runs/<file>`).
    ///
    /// # Errors
    /// When the folder cannot be written.
    pub fn write(&self, root: &Path) -> io::Result<String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = root.join(RUNS_DIR);
        fs::create_dir_all(&dir)?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{:016}-{:010}-{n:08}.json",
            self.time_ms,
            std::process::id()
        );
        let tmp = dir.join(format!(".tmp-{name}"));
        fs::write(&tmp, serde_json::to_vec(self).map_err(io::Error::other)?)?;
        fs::rename(&tmp, dir.join(&name))?;
        if n % 32 == 31 {
            prune(&dir);
        }
        Ok(format!("{RUNS_DIR}/{name}"))
    }

    /// Every readable record in `root`, oldest first.
    #[must_use]
    pub fn read_all(root: &Path) -> Vec<(std::path::PathBuf, RunRecord)> {
        let Ok(dir) = fs::read_dir(root.join(RUNS_DIR)) else {
            return Vec::new();
        };
        let mut records: Vec<_> = dir
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name().to_string_lossy().ends_with(".json")
                    && !e.file_name().to_string_lossy().starts_with('.')
            })
            .filter_map(|e| {
                let record = serde_json::from_slice::<RunRecord>(&fs::read(e.path()).ok()?).ok()?;
                Some((e.path(), record))
            })
            .collect();
        records.sort_by(|a, b| a.1.time_ms.cmp(&b.1.time_ms).then_with(|| a.0.cmp(&b.0)));
        records
    }
}

/// Notes the keys a call's pipeline used, for `stage gc`, `stage pull` and missing raw
/// inputs, locally and in the remote cache; a cache that cannot be written has already been
/// warned about.
pub(crate) fn record_run(store: &Layered, nodes: &[Node], keys: &[Option<Digest>], root: usize) {
    let used: Vec<UsedKey> = nodes
        .iter()
        .zip(keys)
        .filter(|(n, _)| n.persistent())
        .filter_map(|(n, key)| {
            Some(UsedKey {
                stage: n.path.clone(),
                key: (*key)?,
            })
        })
        .collect();
    if used.is_empty() {
        return;
    }
    let mut inputs: Vec<RecordedInput> = nodes
        .iter()
        .flat_map(|n| &n.ingredients.inputs)
        .map(|i| RecordedInput {
            path: i.path.clone(),
            hash: i.hash,
        })
        .collect();
    inputs.sort_by(|a, b| a.path.cmp(&b.path));
    inputs.dedup();
    let record = RunRecord {
        root: nodes[root].path.clone(),
        key: keys[root].unwrap_or_default(),
        time_ms: crate::store::now_ms(),
        used,
        inputs,
    };
    match record.write(store.local().root()) {
        Ok(name) => {
            if let Ok(bytes) = serde_json::to_vec(&record) {
                store.share_record(&name, bytes);
            }
        }
        Err(e) => tracing::debug!(error = %e, "run record not written"),
    }
}

/// The content hash recorded for the raw input written `path` by the latest run that read
/// it (local records, else the remote cache's), when `config` allows missing inputs and
/// `error` says the input is missing; warns once per path.
pub(crate) fn missing_input(
    config: &Config,
    store: &Layered,
    path: &str,
    error: &io::Error,
) -> Option<Digest> {
    static SAID: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);
    if !config.allows_missing() || error.kind() != io::ErrorKind::NotFound {
        return None;
    }
    let hash = recorded(store, path)?;
    if SAID
        .lock()
        .is_ok_and(|mut said| said.insert(path.to_owned()))
    {
        crate::error::warn(&format!(
            "raw input `{path}` is missing: keyed by the content the latest run recorded \
             for it ({}), as STAGE_ALLOW_MISSING asks",
            hash.short()
        ));
    }
    Some(hash)
}

/// Remote records read at most when looking for an input's hash.
const REMOTE_RECORDS: usize = 32;

fn recorded(store: &Layered, path: &str) -> Option<Digest> {
    let in_record = |record: &RunRecord| {
        record
            .inputs
            .iter()
            .find(|input| input.path == path)
            .map(|input| input.hash)
    };
    let local = RunRecord::read_all(store.local().root());
    if let Some(hash) = local.iter().rev().find_map(|(_, r)| in_record(r)) {
        return Some(hash);
    }
    let remote = store.remote()?;
    let mut names = remote.list_records(&format!("{RUNS_DIR}/")).ok()?;
    names.sort_unstable_by(|a, b| b.cmp(a));
    names
        .iter()
        .take(REMOTE_RECORDS)
        .filter_map(|name| remote.get_record(name).ok().flatten())
        .filter_map(|bytes| serde_json::from_slice::<RunRecord>(&bytes).ok())
        .find_map(|r| in_record(&r))
}

/// Records kept at most; older ones are removed now and then.
const KEEP_RECORDS: usize = 256;

fn prune(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| !n.to_string_lossy().starts_with('.'))
        .collect();
    if names.len() <= KEEP_RECORDS {
        return;
    }
    names.sort();
    for name in &names[..names.len() - KEEP_RECORDS] {
        let _ = fs::remove_file(dir.join(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for t in [3, 1, 2] {
            RunRecord {
                root: "m::s".into(),
                key: Digest::of(b"k"),
                time_ms: t,
                used: vec![],
                inputs: vec![],
            }
            .write(dir.path())
            .unwrap();
        }
        let times: Vec<u64> = RunRecord::read_all(dir.path())
            .iter()
            .map(|(_, r)| r.time_ms)
            .collect();
        assert_eq!(times, [1, 2, 3]);
    }
}
