//! Per-item stages at scale, as whole processes (release):
//!
//! - a folder of 100,000 files of a few bytes mapped one call per file, then reduced:
//!   cold, warm, and with one file added;
//! - a reducer over 10,000 items of 1 MiB each: its peak memory above the process's
//!   baseline (items are read one at a time).
//!
//! `cargo bench --bench items` (set `STAGE_BENCH_FILES` / `STAGE_BENCH_BLOBS` for other
//! sizes). Each measurement runs this binary again as a child process, so it includes
//! start-up, planning, the stat of every file and the reading of the cache.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use stage::{Items, stage};

#[stage(file = each("files"), cache = bincode)]
fn size(file: &Path) -> std::io::Result<u64> {
    Ok(fs::metadata(file)?.len())
}

#[stage(all = size, cache = bincode)]
fn total(all: &Items<u64>) -> Result<u64, stage::Error> {
    all.iter().sum()
}

#[stage(cache = bincode)]
fn seeds(n: u32) -> Vec<u32> {
    (0..n).collect()
}

#[stage(seed = each(seeds(n)), cache = bincode)]
fn blob(seed: &u32, n: u32) -> Vec<u8> {
    let _ = n;
    let byte = u8::try_from(seed % 251).unwrap_or(0);
    vec![byte; 1 << 20]
}

#[stage(all = blob(n))]
fn blob_sum(all: &Items<Vec<u8>>, n: u32) -> Result<u64, stage::Error> {
    let _ = n;
    let mut sum = 0u64;
    for item in all.iter() {
        let item = item?;
        sum += u64::from(item[0]) + item.len() as u64;
    }
    Ok(sum)
}

fn main() {
    match std::env::var("STAGE_BENCH_CHILD").as_deref() {
        Ok("total") => child_total(),
        Ok("blobs") => child_blobs(),
        _ => parent(),
    }
}

fn count(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn parent() {
    let files = count("STAGE_BENCH_FILES", 100_000);
    let blobs = count("STAGE_BENCH_BLOBS", 10_000);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("data/files");
    fs::create_dir_all(&folder).unwrap();
    for i in 0..files {
        let shard = folder.join(format!("{:03}", i % 1000));
        if i < 1000 {
            fs::create_dir(&shard).unwrap();
        }
        fs::write(shard.join(format!("{i:06}.txt")), i.to_string()).unwrap();
    }
    println!("{files} files of a few bytes, mapped one call per file, then summed:");
    let (cold, out) = timed(dir.path(), "total", &[]);
    println!(
        "  cold                  {:>9.3} s   {out}",
        cold.as_secs_f64()
    );
    let mut warm = Vec::new();
    for _ in 0..5 {
        warm.push(timed(dir.path(), "total", &[]).0);
    }
    println!(
        "  warm (median of 5)    {:>9.3} s",
        median(&mut warm).as_secs_f64()
    );
    let mut added = Vec::new();
    for n in 0..5 {
        fs::write(folder.join(format!("000/new-{n}.txt")), "new").unwrap();
        added.push(timed(dir.path(), "total", &[]).0);
    }
    println!(
        "  one file added (median of 5) {:>5.3} s",
        median(&mut added).as_secs_f64()
    );

    println!("a reducer over {blobs} items of 1 MiB:");
    let n = blobs.to_string();
    let (cold, out) = timed(dir.path(), "blobs", &[("STAGE_BENCH_N", n.as_str())]);
    println!(
        "  cold (writes them)    {:>9.3} s   {out}",
        cold.as_secs_f64()
    );
    let (warm, out) = timed(dir.path(), "blobs", &[("STAGE_BENCH_N", n.as_str())]);
    println!(
        "  reducer only          {:>9.3} s   {out}",
        warm.as_secs_f64()
    );
}

/// Runs this binary as a child doing `what`; its wall time and the line it printed.
fn timed(dir: &Path, what: &str, env: &[(&str, &str)]) -> (Duration, String) {
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .env("STAGE_BENCH_CHILD", what)
        .env("STAGE_DIR", dir.join("cache"))
        .env("STAGE_DATA_DIR", dir.join("data"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn child_total() {
    let (value, log) = stage::observe(total);
    let computed = log.computed().len();
    println!("total {} ({computed} stages computed)", value.unwrap());
}

fn child_blobs() {
    let n: u32 = count("STAGE_BENCH_N", 10_000);
    let before = memory("VmRSS:");
    // The items, computed (a cold run) or already cached.
    let items = blob(n).unwrap();
    drop(items);
    let baseline = memory("VmHWM:");
    let sum = blob_sum(n).unwrap();
    let peak = memory("VmHWM:");
    println!(
        "sum {sum}; resident before {} MiB, peak before the reducer {} MiB, peak after {} MiB: {} MiB above",
        before / 1024,
        baseline / 1024,
        peak / 1024,
        peak.saturating_sub(baseline) / 1024
    );
}

/// A field of `/proc/self/status` in KiB (0 where there is none).
fn memory(field: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
