//! The commands that may remove files: `verify --remove` and `gc`.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use stage_core::{Digest, Entry};

use crate::cache::{Cache, Found, now_ms};
use crate::units::size;

/// A temporary file older than this belongs to a writer that is gone.
const STALE_MS: u64 = 3_600_000;

pub fn verify(root: &Path, remove: bool) -> Result<ExitCode, String> {
    let cache = Cache::scan(root)?;
    let mut bad: Vec<(PathBuf, String)> = Vec::new();
    for f in &cache.entries {
        if let Some(why) = check(f) {
            println!(
                "bad  {}  {}: {why}",
                f.entry.key.short(),
                f.payload_path.display()
            );
            bad.push((f.meta_path.clone(), why));
            bad.push((f.payload_path.clone(), String::new()));
        }
    }
    for f in cache.entries.iter().filter(|f| !f.payload_path.exists()) {
        println!(
            "collected  {}  {}: payload collected, metadata kept",
            f.entry.key.short(),
            f.payload_path.display()
        );
    }
    for path in &cache.damaged {
        println!("bad  {}: metadata is damaged", path.display());
        bad.push((path.clone(), String::new()));
    }
    for path in &cache.orphans {
        println!("orphan  {}: no metadata refers to it", path.display());
        bad.push((path.clone(), String::new()));
    }
    for (path, age) in cache.temporaries.iter().filter(|(_, age)| *age > STALE_MS) {
        println!(
            "stale  {}: temporary file {}s old",
            path.display(),
            age / 1000
        );
        bad.push((path.clone(), String::new()));
    }
    let collected = cache
        .entries
        .iter()
        .filter(|f| !f.payload_path.exists())
        .count();
    let checked = cache.entries.len() + cache.damaged.len();
    let problems = bad.iter().filter(|(_, why)| !why.is_empty()).count() + cache.damaged.len();
    println!(
        "{checked} entries checked, {problems} damaged, {} orphan payloads, {collected} payloads collected (metadata kept)",
        cache.orphans.len()
    );
    if remove {
        for (path, _) in &bad {
            let _ = fs::remove_file(path);
        }
        println!("removed {} files", bad.len());
    }
    Ok(if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Why an entry's payload does not match its metadata, if it does not. A missing payload
/// with intact metadata is not damage: `gc` keeps what descendants' keys need.
fn check(f: &Found) -> Option<String> {
    f.entry
        .read_payload(&f.payload_path)
        .err()
        .and_then(|e| match e.kind() {
            std::io::ErrorKind::NotFound => None,
            std::io::ErrorKind::InvalidData => Some(e.to_string()),
            _ => Some(format!("payload unreadable ({e})")),
        })
}

/// The keys of every entry that an entry of `kept` names as an ancestor, transitively:
/// their metadata stays, since descendants' keys are made from ancestors' output digests.
pub fn protected(
    kept: &[Entry],
    lookup: impl Fn(&str, &Digest) -> Option<Entry>,
) -> HashSet<Digest> {
    let mut keep = HashSet::new();
    let mut next: Vec<(String, Digest)> = kept
        .iter()
        .flat_map(|e| &e.ingredients.ancestors)
        .map(|a| (a.stage.clone(), a.key))
        .collect();
    while let Some((stage, key)) = next.pop() {
        if !keep.insert(key) {
            continue;
        }
        if let Some(entry) = lookup(&stage, &key) {
            next.extend(
                entry
                    .ingredients
                    .ancestors
                    .iter()
                    .map(|a| (a.stage.clone(), a.key)),
            );
        }
    }
    keep
}

pub struct GcOptions {
    pub keep_last: usize,
    pub older_than: Option<Duration>,
    pub max_size: Option<u64>,
    pub dry_run: bool,
}

pub fn gc(root: &Path, options: &GcOptions) -> Result<ExitCode, String> {
    let cache = Cache::scan(root)?;
    let (keep, old_runs) = kept_by_runs(&cache, options.keep_last.max(1));
    let mut remove: Vec<&Found> = Vec::new();
    let mut survivors: Vec<&Found> = Vec::new();
    for f in &cache.entries {
        let too_old = options.older_than.is_some_and(|d| {
            now_ms().saturating_sub(f.last_touch())
                > u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        });
        let unused = !cache.runs.is_empty() && !keep.contains(&f.entry.key);
        if unused || too_old {
            remove.push(f);
        } else {
            survivors.push(f);
        }
    }
    if let Some(max) = options.max_size {
        survivors.sort_by_key(|f| std::cmp::Reverse(f.last_touch()));
        let mut total = 0;
        for f in survivors {
            total += f.entry.bytes;
            if total > max {
                remove.push(f);
            }
        }
    }
    if cache.runs.is_empty() && options.older_than.is_none() && options.max_size.is_none() {
        println!(
            "no run records in {}: every entry is kept (use --older-than or --max-size)",
            root.display()
        );
    }
    let removed: HashSet<Digest> = remove.iter().map(|f| f.entry.key).collect();
    let kept: Vec<Entry> = cache
        .entries
        .iter()
        .filter(|f| !removed.contains(&f.entry.key))
        .map(|f| f.entry.clone())
        .collect();
    let keep_meta = protected(&kept, |_, key| cache.get(key).map(|f| f.entry.clone()));
    let freed: u64 = remove.iter().map(|f| f.entry.bytes).sum();
    let verb = if options.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for f in &remove {
        let whole = !keep_meta.contains(&f.entry.key);
        println!(
            "{verb}{}  {}  {}  {}",
            if whole { "" } else { " payload" },
            f.stage,
            f.entry.key.short(),
            size(f.entry.bytes)
        );
        if options.dry_run {
            continue;
        }
        let _ = fs::remove_file(&f.payload_path);
        if whole {
            let _ = fs::remove_file(&f.meta_path);
            let _ = fs::remove_file(f.lock_path());
        }
    }
    if !options.dry_run {
        for path in old_runs {
            let _ = fs::remove_file(path);
        }
    }
    let kept = cache.entries.len() - remove.len();
    println!(
        "{kept} entries kept, {} {verb}, {} freed",
        remove.len(),
        size(freed)
    );
    Ok(ExitCode::SUCCESS)
}

/// The keys the latest `n` runs of each called stage used, and the older run records.
fn kept_by_runs(cache: &Cache, n: usize) -> (HashSet<Digest>, Vec<PathBuf>) {
    let mut by_root: BTreeMap<&str, Vec<&(PathBuf, stage_core::RunRecord)>> = BTreeMap::new();
    for run in &cache.runs {
        by_root.entry(&run.1.root).or_default().push(run);
    }
    let mut keep = HashSet::new();
    let mut old = Vec::new();
    for runs in by_root.values() {
        let cut = runs.len().saturating_sub(n);
        old.extend(runs[..cut].iter().map(|(p, _)| p.clone()));
        keep.extend(
            runs[cut..]
                .iter()
                .flat_map(|(_, r)| r.used.iter().map(|u| u.key)),
        );
    }
    (keep, old)
}
