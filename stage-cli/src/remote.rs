//! The commands that talk to the remote cache: `push`, `pull`, `status --remote`,
//! `ls --remote`. Every listing is one paged LIST of the remote prefix, never a request
//! per key.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use stage_core::{
    Digest, Entry, Layered, Listed, LocalStore, Put, RUNS_DIR, Remote, RunRecord, Store,
    open_remote, stage_folder,
};

use crate::cache::{Cache, now_ms};
use crate::units::{age, size};

/// Uploads or downloads running at once.
const AT_ONCE: usize = 4;

/// The remote cache `--remote` or `STAGE_REMOTE` names.
pub fn open(url: Option<&str>) -> Result<Arc<dyn Store>, String> {
    let url = url
        .map(str::to_owned)
        .or_else(|| std::env::var("STAGE_REMOTE").ok())
        .filter(|u| !u.trim().is_empty())
        .ok_or("no remote cache: give --remote-url URL or set STAGE_REMOTE")?;
    open_remote(&Remote::new(url)).map_err(|e| e.to_string())
}

/// Runs `f` on every item, a few at a time.
pub fn each<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..AT_ONCE.min(items.len()) {
            s.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    f(item);
                }
            });
        }
    });
}

pub fn push(root: &Path, remote: &dyn Store, latest: bool) -> Result<ExitCode, String> {
    if !remote.writable() {
        return Err(format!(
            "{} is read-only (STAGE_REMOTE_READ_ONLY)",
            remote.location()
        ));
    }
    let cache = Cache::scan(root)?;
    let wanted: Option<HashSet<Digest>> = latest.then(|| {
        cache
            .runs
            .last()
            .map(|(_, run)| run.used.iter().map(|u| u.key).collect())
            .unwrap_or_default()
    });
    let there: HashSet<(String, Digest)> = remote
        .list(None)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|l| l.meta && l.payload_bytes.is_some())
        .map(|l| (l.stage, l.key))
        .collect();
    let todo: Vec<_> = cache
        .entries
        .iter()
        .filter(|f| wanted.as_ref().is_none_or(|w| w.contains(&f.entry.key)))
        .filter(|f| !there.contains(&(f.entry.stage().to_owned(), f.entry.key)))
        .filter(|f| f.entry.bytes == 0 || f.payload_path.exists())
        .collect();
    let (pushed, existing, failed, bytes) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        std::sync::atomic::AtomicU64::new(0),
    );
    each(&todo, |f| match remote.put(&f.entry, &f.payload_path) {
        Ok(Put::Written) => {
            pushed.fetch_add(1, Ordering::Relaxed);
            bytes.fetch_add(f.entry.bytes, Ordering::Relaxed);
        }
        Ok(Put::Existing(_)) => {
            existing.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            failed.fetch_add(1, Ordering::Relaxed);
            eprintln!("stage: {} {}: {e}", f.entry.stage(), f.entry.key.short());
        }
    });
    let records = push_records(remote, &cache, latest)?;
    let failed = failed.into_inner();
    println!(
        "pushed {} entries ({}), {} already there, {failed} failed; {records} run records",
        pushed.into_inner(),
        size(bytes.into_inner()),
        existing.into_inner() + cache.entries.len() - todo.len(),
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn push_records(remote: &dyn Store, cache: &Cache, latest: bool) -> Result<usize, String> {
    let there: HashSet<String> = remote
        .list_records(&format!("{RUNS_DIR}/"))
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let runs = if latest {
        &cache.runs[cache.runs.len().saturating_sub(1)..]
    } else {
        &cache.runs[..]
    };
    let mut pushed = 0;
    for (path, _) in runs {
        let Some(file) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let name = format!("{RUNS_DIR}/{file}");
        if there.contains(&name) {
            continue;
        }
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        remote
            .put_record(&name, &bytes)
            .map_err(|e| e.to_string())?;
        pushed += 1;
    }
    Ok(pushed)
}

/// The latest run record: the local one, else the remote cache's.
fn latest_run(root: &Path, remote: &dyn Store) -> Result<Option<RunRecord>, String> {
    let local = RunRecord::read_all(root).pop().map(|(_, r)| r);
    let remote_latest = remote
        .list_records(&format!("{RUNS_DIR}/"))
        .map_err(|e| e.to_string())?
        .into_iter()
        .max()
        .and_then(|name| remote.get_record(&name).ok().flatten())
        .and_then(|bytes| serde_json::from_slice::<RunRecord>(&bytes).ok());
    Ok(match (local, remote_latest) {
        (Some(l), Some(r)) => Some(if r.time_ms > l.time_ms { r } else { l }),
        (l, r) => l.or(r),
    })
}

pub fn pull(root: &Path, remote: &Arc<dyn Store>, stage: Option<&str>) -> Result<ExitCode, String> {
    let layered = Layered::new(LocalStore::new(root)).with_remote(Arc::clone(remote));
    let wanted: Vec<(String, Digest)> = match stage {
        None => {
            let run = latest_run(root, &**remote)?
                .ok_or("no run record, locally or in the remote cache: give a stage to pull")?;
            run.used.into_iter().map(|u| (u.stage, u.key)).collect()
        }
        Some(name) => {
            let listed = remote.list(None).map_err(|e| e.to_string())?;
            let newest = newest_of(&listed, name)?;
            vec![(newest.stage.clone(), newest.key)]
        }
    };
    let counts = Counts::default();
    let mut seen = HashSet::new();
    let mut level = wanted;
    while !level.is_empty() {
        level.retain(|id| seen.insert(id.clone()));
        let found: std::sync::Mutex<Vec<Entry>> = std::sync::Mutex::default();
        each(&level, |(stage_path, key)| {
            if let Some(entry) = fetch_one(&layered, &**remote, stage_path, key, &counts) {
                found.lock().unwrap().push(entry);
            }
        });
        // A stage's ancestors come along only when a stage was named.
        level = match stage {
            Some(_) => found
                .into_inner()
                .unwrap()
                .iter()
                .flat_map(|e| &e.ingredients.ancestors)
                .filter(|a| a.output != Digest::default())
                .map(|a| (a.stage.clone(), a.key))
                .collect(),
            None => Vec::new(),
        };
    }
    println!(
        "pulled {} entries, {} already here, {} not in the remote cache",
        counts.fetched.into_inner(),
        counts.present.into_inner(),
        counts.missing.into_inner()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Default)]
struct Counts {
    fetched: AtomicUsize,
    present: AtomicUsize,
    missing: AtomicUsize,
}

/// The entry `key` of `stage` in the local folder, fetched from the remote cache first
/// when the folder lacks it (or its payload).
fn fetch_one(
    layered: &Layered,
    remote: &dyn Store,
    stage: &str,
    key: &Digest,
    counts: &Counts,
) -> Option<Entry> {
    let local = layered.local().find(stage, key);
    if let Some(entry) = local.filter(|e| layered.local().has_payload(e)) {
        counts.present.fetch_add(1, Ordering::Relaxed);
        return Some(entry);
    }
    let fetched = match remote.lookup(stage, key) {
        Ok(Some(entry)) => layered.fetch(&entry).map(|()| entry).map_err(|e| {
            eprintln!("stage: {stage} {}: {e}", key.short());
        }),
        _ => Err(()),
    };
    let count = if fetched.is_ok() {
        &counts.fetched
    } else {
        &counts.missing
    };
    count.fetch_add(1, Ordering::Relaxed);
    fetched.ok()
}

/// The newest entry of the stage called `name` (its path, folder, or last segment).
fn newest_of<'l>(listed: &'l [Listed], name: &str) -> Result<&'l Listed, String> {
    let matches = |l: &&Listed| {
        l.meta
            && (l.stage == name
                || stage_folder(&l.stage) == name
                || l.stage.rsplit("::").next() == Some(name))
    };
    listed
        .iter()
        .filter(matches)
        .max_by_key(|l| l.modified_ms)
        .ok_or_else(|| format!("the remote cache has no entry of a stage called `{name}`"))
}

pub fn status(root: &Path, remote: &dyn Store) -> Result<ExitCode, String> {
    let local = LocalStore::new(root)
        .list(None)
        .map_err(|e| e.to_string())?;
    let remote_listed = remote.list(None).map_err(|e| e.to_string())?;
    let ids = |listed: &[Listed]| -> BTreeSet<(String, Digest)> {
        listed
            .iter()
            .filter(|l| l.meta)
            .map(|l| (l.stage.clone(), l.key))
            .collect()
    };
    let (here, there) = (ids(&local), ids(&remote_listed));
    let mut per_stage: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for id in here.union(&there) {
        let slot = per_stage.entry(&id.0).or_default();
        match (here.contains(id), there.contains(id)) {
            (true, false) => slot[0] += 1,
            (false, true) => slot[1] += 1,
            _ => slot[2] += 1,
        }
    }
    println!(
        "{:>10}  {:>11}  {:>6}  stage",
        "local only", "remote only", "both"
    );
    let mut total = [0; 3];
    for (stage, counts) in &per_stage {
        println!(
            "{:>10}  {:>11}  {:>6}  {stage}",
            counts[0], counts[1], counts[2]
        );
        for (t, c) in total.iter_mut().zip(counts) {
            *t += c;
        }
    }
    println!(
        "{:>10}  {:>11}  {:>6}  total ({})",
        total[0],
        total[1],
        total[2],
        remote.location()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn ls(remote: &dyn Store) -> Result<ExitCode, String> {
    let listed = remote.list(None).map_err(|e| e.to_string())?;
    let now = now_ms();
    let mut current = "";
    for l in &listed {
        if l.stage != current {
            current = &l.stage;
            println!("{}", stage_folder(current));
            println!("  {:<12}  {:>9}  {:>5}", "key", "size", "age");
        }
        let shown = match (l.meta, l.payload_bytes) {
            (true, Some(bytes)) => size(bytes),
            (true, None) => "collected".to_owned(),
            (false, _) => "no metadata".to_owned(),
        };
        println!(
            "  {:<12}  {:>9}  {:>5}",
            l.key.short(),
            shown,
            age(now.saturating_sub(l.modified_ms))
        );
    }
    if listed.is_empty() {
        println!("no entries in {}", remote.location());
    }
    Ok(ExitCode::SUCCESS)
}
