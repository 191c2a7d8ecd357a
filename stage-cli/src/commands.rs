//! The read-only commands: `ls`, `show` and `du`. `verify` and `gc` are in `upkeep`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::cache::{Cache, Found, now_ms};
use crate::units::{age, size};

pub use crate::upkeep::{GcOptions, gc, verify};

pub fn ls(root: &Path) -> Result<ExitCode, String> {
    let cache = Cache::scan(root)?;
    let now = now_ms();
    let mut current = "";
    for f in &cache.entries {
        if f.stage != current {
            current = &f.stage;
            println!("{current}");
            println!(
                "  {:<12}  {:>9}  {:>5}  {:>9}  {:>8}",
                "key", "size", "age", "last used", "compute"
            );
        }
        let used = f.last_used.map_or_else(
            || "never".to_owned(),
            |t| format!("{} ago", age(now.saturating_sub(t))),
        );
        println!(
            "  {:<12}  {:>9}  {:>5}  {:>9}  {:>8}",
            f.entry.key.short(),
            size(f.disk_bytes()),
            age(now.saturating_sub(f.entry.created_ms)),
            used,
            format!("{}ms", f.entry.compute_ms)
        );
    }
    if cache.entries.is_empty() {
        println!("no entries in {}", root.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show(root: &Path, key: &str, chain: bool, json: bool) -> Result<ExitCode, String> {
    let cache = Cache::scan(root)?;
    let found = cache.find(key)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&found.entry).map_err(|e| e.to_string())?
        );
    } else {
        let mut out = String::new();
        describe(&cache, found, chain, 0, &mut out);
        print!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(cache: &Cache, f: &Found, chain: bool, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let e = &f.entry;
    let i = &e.ingredients;
    let _ = writeln!(out, "{pad}{} @ {}", i.stage, e.key);
    let _ = writeln!(
        out,
        "{pad}  output     {} ({}, {})",
        e.output,
        i.codec,
        size(e.bytes)
    );
    let _ = writeln!(out, "{pad}  payload    {}", f.payload_path.display());
    let _ = writeln!(out, "{pad}  blake3     {}", e.blake3);
    let _ = writeln!(
        out,
        "{pad}  created    {} ago, computed in {}ms",
        age(now_ms().saturating_sub(e.created_ms)),
        e.compute_ms
    );
    let _ = writeln!(out, "{pad}  code       {}", i.code);
    if let Some(salt) = &i.salt {
        let _ = writeln!(out, "{pad}  version    {salt}");
    }
    for h in &i.helpers {
        let _ = writeln!(out, "{pad}  helper     {} {}", h.name, h.hash.short());
    }
    for p in &i.params {
        let _ = writeln!(out, "{pad}  param      {} = {}", p.name, p.value);
    }
    for input in &i.inputs {
        let _ = writeln!(
            out,
            "{pad}  input      {} = {} (blake3 {})",
            input.param,
            input.path,
            input.hash.short()
        );
    }
    for a in &i.ancestors {
        let _ = writeln!(
            out,
            "{pad}  ancestor   {} = {} @ {}",
            a.param,
            a.stage,
            a.key.short()
        );
        if chain {
            match cache.get(&a.key) {
                Some(parent) => describe(cache, parent, chain, depth + 2, out),
                None => {
                    let _ = writeln!(out, "{pad}    (not in cache)");
                }
            }
        }
    }
}

pub fn du(root: &Path) -> Result<ExitCode, String> {
    let cache = Cache::scan(root)?;
    let mut per_stage: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for f in &cache.entries {
        let slot = per_stage.entry(&f.stage).or_default();
        slot.0 += f.disk_bytes();
        slot.1 += 1;
    }
    let mut rows: Vec<_> = per_stage.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    let (mut total, mut count) = (0, 0);
    for (stage, (bytes, n)) in &rows {
        println!("{:>10}  {:>5}  {stage}", size(*bytes), format!("{n}"));
        total += bytes;
        count += n;
    }
    println!("{:>10}  {:>5}  total", size(total), format!("{count}"));
    Ok(ExitCode::SUCCESS)
}
