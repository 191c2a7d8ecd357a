//! `verify --remote` and `gc --remote`: the same checks and the same rules as for the
//! local folder, on the remote cache.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::Mutex;

use stage_core::{Digest, Entry, Listed, RUNS_DIR, RunRecord, Store, StoreError};

use crate::cache::now_ms;
use crate::remote::each;
use crate::units::size;
use crate::upkeep::{GcOptions, protected};

/// Run records read at most from the remote cache.
const RECORDS: usize = 256;

pub fn verify(store: &dyn Store, remove: bool) -> Result<ExitCode, String> {
    let listed = store.list(None).map_err(|e| e.to_string())?;
    let bad: Mutex<Vec<(String, Digest, bool)>> = Mutex::default();
    let collected = Mutex::new(0usize);
    each(&listed, |l| {
        let verdict = check(store, l);
        match verdict {
            Verdict::Good => {}
            Verdict::Collected => *collected.lock().unwrap() += 1,
            Verdict::Bad(why, whole) => {
                println!("bad  {} {}: {why}", l.stage, l.key.short());
                bad.lock().unwrap().push((l.stage.clone(), l.key, whole));
            }
        }
    });
    let bad = bad.into_inner().unwrap();
    println!(
        "{} entries checked, {} damaged, {} payloads collected (metadata kept)",
        listed.len(),
        bad.len(),
        collected.into_inner().unwrap()
    );
    if remove {
        for (stage, key, whole) in &bad {
            store
                .remove(stage, key, *whole)
                .map_err(|e| e.to_string())?;
        }
        println!("removed {} entries", bad.len());
    }
    Ok(if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

enum Verdict {
    Good,
    /// Intact metadata without a payload: `gc` kept what descendants' keys need.
    Collected,
    /// Damaged, and whether the whole entry goes (else only the payload).
    Bad(String, bool),
}

fn check(store: &dyn Store, l: &Listed) -> Verdict {
    if !l.meta {
        return Verdict::Bad("a payload without metadata".into(), true);
    }
    let entry = match store.lookup(&l.stage, &l.key) {
        Ok(Some(entry)) => entry,
        Ok(None) => return Verdict::Bad("metadata of another format".into(), true),
        Err(e) => return Verdict::Bad(e.to_string(), true),
    };
    if l.payload_bytes.is_none() {
        return Verdict::Collected;
    }
    match store.read_into(&entry, &mut std::io::sink()) {
        Ok(()) => Verdict::Good,
        Err(e @ StoreError::Damaged(_)) => Verdict::Bad(e.to_string(), false),
        Err(e) => Verdict::Bad(format!("payload unreadable ({e})"), false),
    }
}

pub fn gc(store: &dyn Store, options: &GcOptions) -> Result<ExitCode, String> {
    let listed: Vec<Listed> = store
        .list(None)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|l| l.meta)
        .collect();
    let runs = records(store)?;
    let keep_by_runs = kept_by_runs(&runs, options.keep_last.max(1));
    let mut remove: Vec<&Listed> = Vec::new();
    let mut survivors: Vec<&Listed> = Vec::new();
    let limit = options
        .older_than
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    for l in &listed {
        let too_old = limit.is_some_and(|ms| now_ms().saturating_sub(l.modified_ms) > ms);
        let unused = !runs.is_empty() && !keep_by_runs.contains(&l.key);
        if unused || too_old {
            remove.push(l);
        } else {
            survivors.push(l);
        }
    }
    if let Some(max) = options.max_size {
        survivors.sort_by_key(|l| std::cmp::Reverse(l.modified_ms));
        let mut total = 0;
        survivors.retain(|l| {
            total += l.payload_bytes.unwrap_or(0);
            if total > max {
                remove.push(l);
            }
            total <= max
        });
    }
    let kept: Vec<Entry> = survivors
        .iter()
        .filter_map(|l| store.lookup(&l.stage, &l.key).ok().flatten())
        .collect();
    let known: HashMap<Digest, &Entry> = kept.iter().map(|e| (e.key, e)).collect();
    let keep_meta = protected(&kept, |stage, key| {
        known
            .get(key)
            .map(|e| (*e).clone())
            .or_else(|| store.lookup(stage, key).ok().flatten())
    });
    let verb = if options.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut freed = 0;
    for l in &remove {
        let whole = !keep_meta.contains(&l.key);
        freed += l.payload_bytes.unwrap_or(0);
        let what = if whole { "" } else { " payload" };
        println!(
            "{verb}{what}  {}  {}  {}",
            l.stage,
            l.key.short(),
            size(l.payload_bytes.unwrap_or(0))
        );
        if !options.dry_run {
            store
                .remove(&l.stage, &l.key, whole)
                .map_err(|e| e.to_string())?;
        }
    }
    println!(
        "{} entries kept, {} {verb}, {} freed ({})",
        listed.len() - remove.len(),
        remove.len(),
        size(freed),
        store.location()
    );
    Ok(ExitCode::SUCCESS)
}

/// The remote cache's latest run records.
fn records(store: &dyn Store) -> Result<Vec<RunRecord>, String> {
    let mut names = store
        .list_records(&format!("{RUNS_DIR}/"))
        .map_err(|e| e.to_string())?;
    names.sort_unstable();
    let start = names.len().saturating_sub(RECORDS);
    let mut runs: Vec<RunRecord> = names[start..]
        .iter()
        .filter_map(|n| store.get_record(n).ok().flatten())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    runs.sort_by_key(|r| r.time_ms);
    Ok(runs)
}

fn kept_by_runs(runs: &[RunRecord], n: usize) -> HashSet<Digest> {
    let mut by_root: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    for run in runs {
        by_root.entry(&run.root).or_default().push(run);
    }
    by_root
        .values()
        .flat_map(|runs| &runs[runs.len().saturating_sub(n)..])
        .flat_map(|r| r.used.iter().map(|u| u.key))
        .collect()
}
