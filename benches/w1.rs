//! W1 (2,000,000 CSV rows → cached → filtered and cached → summary) through `#[stage]`
//! with parquet entries and with Arrow IPC entries, beside the same pipeline written by
//! hand with parquet's defaults; and a diamond whose two independent branches run on one
//! thread or two.
//!
//! `cargo bench --bench w1`. The CSV is generated once into `target/w1/`.

#![allow(
    clippy::semicolon_if_nothing_returned,
    reason = "rustfmt makes long benchmark closures blocks"
)]

#[path = "support/w1.rs"]
mod w1;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group};
use stage::stage;

fn csv() -> PathBuf {
    w1::generate(Path::new("target/w1/w1.csv"), w1::ROWS).expect("generate W1")
}

const FORMATS: [(&str, w1::Format); 2] = [
    ("stage-parquet", w1::Format::Parquet),
    ("stage-arrow", w1::Format::Arrow),
];

fn warm(c: &mut Criterion) {
    let csv = csv();
    let hand_dir = tempfile::tempdir().unwrap();
    let expected = w1::by_hand(&csv, hand_dir.path()).unwrap();
    let mut group = c.benchmark_group("w1-warm");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("by-hand", |b| {
        b.iter(|| black_box(w1::by_hand(&csv, hand_dir.path()).unwrap()))
    });
    for (name, format) in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            w1::through_stage(&csv, dir.path(), format).unwrap(),
            expected
        );
        group.bench_function(name, |b| {
            b.iter(|| black_box(w1::through_stage(&csv, dir.path(), format).unwrap()))
        });
    }
    group.finish();
}

fn cold(c: &mut Criterion) {
    let csv = csv();
    let mut group = c.benchmark_group("w1-cold");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let fresh = || tempfile::tempdir().unwrap();
    group.bench_function("by-hand", |b| {
        b.iter_batched(
            fresh,
            |dir| black_box(w1::by_hand(&csv, dir.path()).unwrap()),
            BatchSize::PerIteration,
        );
    });
    for (name, format) in FORMATS {
        group.bench_function(name, |b| {
            b.iter_batched(
                fresh,
                |dir| black_box(w1::through_stage(&csv, dir.path(), format).unwrap()),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// About half a second of arithmetic on one core.
fn busy(seed: u64) -> u64 {
    (0..150_000_000u64).fold(seed, |acc, i| {
        acc.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i) ^ (acc >> 29)
    })
}

#[stage]
fn source() -> u64 {
    1
}

#[stage(s = source, untracked = [busy])]
fn branch_a(s: u64) -> u64 {
    busy(s ^ 2)
}

#[stage(s = source, untracked = [busy])]
fn branch_b(s: u64) -> u64 {
    busy(s ^ 3)
}

#[stage(a = branch_a, b = branch_b)]
fn join(a: u64, b: u64) -> u64 {
    a ^ b
}

fn diamond(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("diamond");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    for jobs in [1, 2] {
        let config = stage::Config::from_env().dir(dir.path()).jobs(jobs);
        group.bench_function(format!("jobs-{jobs}"), |b| {
            b.iter(|| black_box(config.scope(join).unwrap()))
        });
    }
    group.finish();
}

/// W1 as whole processes (this benchmark re-run as a child process for each run): wall
/// time and peak memory, cold and warm, medians of paired runs.
fn whole_processes() {
    let csv = csv();
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let command = |mode: &str, csv: &Path, dir: &Path| {
        let mut command = std::process::Command::new(&exe);
        command
            .env(CHILD, mode)
            .env(CHILD_CSV, csv)
            .env(CHILD_DIR, dir);
        command
    };
    if let Err(e) = w1::compare(command, &csv, 5, 3) {
        eprintln!("whole-process runs failed: {e}");
    }
}

/// Set in a child process of [`whole_processes`]: the mode it runs, and on what.
const CHILD: &str = "STAGE_W1_CHILD";
const CHILD_CSV: &str = "STAGE_W1_CHILD_CSV";
const CHILD_DIR: &str = "STAGE_W1_CHILD_DIR";

criterion_group!(benches, warm, cold, diamond);

fn main() {
    if let (Some(mode), Some(csv), Some(dir)) = (
        std::env::var_os(CHILD),
        std::env::var_os(CHILD_CSV),
        std::env::var_os(CHILD_DIR),
    ) {
        let mode = mode.to_string_lossy();
        if let Err(e) = w1::run_mode(&mode, Path::new(&csv), Path::new(&dir)) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Not when the benchmarks only run once, as tests.
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        whole_processes();
    }
}
