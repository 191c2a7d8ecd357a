//! Behaviour of a pipeline as a user sees it: which stages ran, which were read back,
//! which values came back. Each test has its own temporary cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stage::arrow::array::{Array, Int64Array, StringArray};
use stage::arrow::datatypes::{DataType, Field, Schema};
use stage::arrow::record_batch::RecordBatch;
use stage::{Change, Config, Reason, RunLog, stage};

/// Runs `f` against the cache in `dir` and returns its result and what it did.
fn run<R>(dir: &Path, f: impl FnOnce() -> R) -> (R, RunLog) {
    Config::from_env().dir(dir).scope(|| stage::observe(f))
}

/// A raw input file of this test binary's own, below `target/`, with `content`.
fn raw_file(name: &str, content: &str) -> PathBuf {
    let path = Path::new("target/stage-test-inputs").join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap();
    path
}

// ---- a small pipeline: raw file -> parsed -> (sum, count) diamond -> report

#[stage(raw = "target/stage-test-inputs/numbers.txt", cache = bincode)]
fn parsed(raw: &Path) -> std::io::Result<Vec<i64>> {
    let text = fs::read_to_string(raw)?;
    Ok(text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect())
}

#[stage(xs = parsed, cache = bincode)]
fn sum(xs: &Vec<i64>, scale: i64) -> i64 {
    xs.iter().sum::<i64>() * scale
}

#[stage(xs = parsed, cache = bincode)]
fn count(xs: &Vec<i64>) -> usize {
    xs.len()
}

#[stage(s = sum(scale), n = count, cache = bincode)]
fn report(s: i64, n: usize, scale: i64) -> String {
    format!("{n} numbers, scaled sum {s} (x{scale})")
}

#[test]
fn cold_then_warm_then_parameter_then_input() {
    let dir = tempfile::tempdir().unwrap();
    raw_file("numbers.txt", "1 2 3 4");
    let (v, log) = run(dir.path(), || report(10));
    assert_eq!(v.unwrap(), "4 numbers, scaled sum 100 (x10)");
    assert_eq!(sorted(log.computed()), ["count", "parsed", "report", "sum"]);
    assert!(log.loaded().is_empty());

    let (v, log) = run(dir.path(), || report(10));
    assert_eq!(v.unwrap(), "4 numbers, scaled sum 100 (x10)");
    assert!(
        log.computed().is_empty(),
        "warm run computed {:?}",
        log.computed()
    );
    assert_eq!(
        log.loaded(),
        ["report"],
        "a hit on the last stage touches no ancestor"
    );

    let (v, log) = run(dir.path(), || report(2));
    assert_eq!(v.unwrap(), "4 numbers, scaled sum 20 (x2)");
    assert_eq!(sorted(log.computed()), ["report", "sum"]);
    assert_eq!(sorted(log.loaded()), ["count", "parsed"]);
    assert_eq!(
        log.reason("sum"),
        Some(&Reason::changed(Change::Param("scale".into())))
    );

    raw_file("numbers.txt", "1 2 3 4 5");
    let (v, log) = run(dir.path(), || report(2));
    assert_eq!(v.unwrap(), "5 numbers, scaled sum 30 (x2)");
    assert_eq!(sorted(log.computed()), ["count", "parsed", "report", "sum"]);
    assert_eq!(
        log.reason("parsed"),
        Some(&Reason::changed(Change::Input(
            "target/stage-test-inputs/numbers.txt".into()
        )))
    );
    assert_eq!(
        log.reason("count"),
        Some(&Reason::changed(Change::Ancestor("parsed".into())))
    );
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}

// ---- a diamond computes its shared ancestor once

#[stage(cache = bincode)]
fn base(n: u32) -> Vec<u32> {
    (0..n).collect()
}

#[stage(b = base(100))]
fn left(b: &Vec<u32>) -> u32 {
    b.iter().sum()
}

#[stage(b = base(100))]
fn right(b: Vec<u32>) -> usize {
    b.len()
}

#[stage(l = left, r = right)]
fn top(l: u32, r: usize) -> String {
    format!("{l}/{r}")
}

#[test]
fn a_diamond_computes_its_shared_ancestor_once() {
    for jobs in [1, 2, 4] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::from_env().dir(dir.path()).jobs(jobs);
        let (v, log) = cfg.scope(|| stage::observe(top));
        assert_eq!(v.unwrap(), "4950/100");
        assert_eq!(
            sorted(log.computed()),
            ["base", "left", "right", "top"],
            "jobs = {jobs}"
        );
    }
}

// ---- a body error caches nothing, and names the stage

#[derive(Debug)]
struct Refused;
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}
impl std::error::Error for Refused {}

#[stage(cache = bincode)]
fn fallible(fail: bool) -> Result<u8, Refused> {
    if fail { Err(Refused) } else { Ok(7) }
}

#[stage(x = fallible(fail))]
fn after_fallible(x: u8, fail: bool) -> u8 {
    x + 1
}

#[test]
fn a_body_error_caches_nothing_and_names_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let (v, log) = run(dir.path(), || after_fallible(true));
    let err = v.unwrap_err();
    assert_eq!(
        err.stage(),
        Some(format!("{}::fallible", module_path!()).as_str())
    );
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "refused"
    );
    assert!(log.computed().is_empty());
    let (v, log) = run(dir.path(), || after_fallible(true));
    assert!(v.is_err());
    assert!(
        log.loaded().is_empty(),
        "an error was cached: {:?}",
        log.loaded()
    );
    assert_eq!(run(dir.path(), || after_fallible(false)).0.unwrap(), 8);
}

#[stage(cache = bincode)]
fn panics() -> u8 {
    panic!("boom")
}

#[test]
fn a_panicking_body_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = run(dir.path(), panics).0.unwrap_err();
    assert!(
        matches!(&err, stage::Error::Panic { message, .. } if message == "boom"),
        "{err}"
    );
    assert!(run(dir.path(), panics).0.is_err());
}

// ---- damaged cache files are recomputed, never returned

#[stage(cache = bincode)]
fn squares(n: u64) -> Vec<u64> {
    (0..n).map(|i| i * i).collect()
}

fn payloads(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for stage_dir in fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
    {
        for f in fs::read_dir(stage_dir.path())
            .unwrap()
            .filter_map(Result::ok)
        {
            if f.path()
                .extension()
                .is_some_and(|e| e == "bin" || e == "parquet")
            {
                found.push(f.path());
            }
        }
    }
    found
}

/// Damages the payload of `squares(n)` with `damage`, then checks that the next call
/// recomputes it, returns the right value, and leaves a good entry behind.
fn damaged_then_recomputed(n: u64, damage: impl FnOnce(&mut Vec<u8>)) {
    let dir = tempfile::tempdir().unwrap();
    let expected: Vec<u64> = (0..n).map(|i| i * i).collect();
    assert_eq!(run(dir.path(), || squares(n)).0.unwrap(), expected);
    let payload = payloads(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&payload).unwrap();
    damage(&mut bytes);
    fs::write(&payload, bytes).unwrap();

    let (v, log) = run(dir.path(), || squares(n));
    assert_eq!(v.unwrap(), expected);
    assert_eq!(log.computed(), ["squares"]);
    assert_eq!(log.reason("squares"), Some(&stage::Reason::Damaged));

    let (v, log) = run(dir.path(), || squares(n));
    assert_eq!(v.unwrap(), expected);
    assert_eq!(
        log.loaded(),
        ["squares"],
        "the entry was replaced by a good one"
    );
}

#[test]
fn truncated_or_flipped_payloads_are_recomputed() {
    // 1,000 squares fit in one segment; 600,000 take about 5 MiB, read and checked a
    // segment at a time while they decode.
    for n in [1000, 600_000] {
        damaged_then_recomputed(n, |b| b.truncate(b.len() / 2));
        damaged_then_recomputed(n, |b| b.truncate(b.len() - 1));
        // The first bytes hold the vector's length: a decoder that read them unchecked
        // could be asked for exabytes.
        for at in [0, 1, 2] {
            damaged_then_recomputed(n, |b| b[at] ^= 0xF0);
        }
        damaged_then_recomputed(n, |b| {
            let mid = b.len() / 2;
            b[mid] ^= 0x10;
        });
        damaged_then_recomputed(n, |b| *b.last_mut().unwrap() ^= 0x01);
    }
}

// ---- parquet round trip, ancestor by value

fn batch(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("label", DataType::Utf8, true),
    ]));
    let ids = Int64Array::from((0..n).collect::<Vec<_>>());
    let labels = StringArray::from(
        (0..n)
            .map(|i| (i % 2 == 0).then(|| format!("row {i}")))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(labels)]).unwrap()
}

#[stage(cache = parquet, untracked = [batch])]
fn table(n: i64) -> RecordBatch {
    batch(n)
}

#[stage(t = table(n), cache = parquet)]
fn evens(t: RecordBatch, n: i64) -> Result<RecordBatch, stage::arrow::error::ArrowError> {
    let keep = stage::arrow::array::BooleanArray::from(
        (0..t.num_rows()).map(|i| i % 2 == 0).collect::<Vec<_>>(),
    );
    stage::arrow::compute::filter_record_batch(&t, &keep)
}

#[test]
fn parquet_values_come_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), || evens(10)).0.unwrap();
    let (second, log) = run(dir.path(), || evens(10));
    assert_eq!(log.loaded(), ["evens"]);
    let second = second.unwrap();
    assert_eq!(first, second);
    assert_eq!(second.num_rows(), 5);
    assert_eq!(second.column(1).null_count(), 0);
    assert_eq!(run(dir.path(), || table(3)).0.unwrap(), batch(3));
}

// ---- run-time errors a user can act on

#[stage(raw = "target/stage-test-inputs/does-not-exist.csv", cache = bincode)]
fn reads_missing(raw: &Path) -> u64 {
    fs::metadata(raw).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn a_missing_raw_file_names_the_stage_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = run(dir.path(), reads_missing).0.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("reads_missing"), "{message}");
    assert!(
        message.contains("target/stage-test-inputs/does-not-exist.csv"),
        "{message}"
    );
}

#[stage(b = cycle_b)]
fn cycle_a(b: u8) -> u8 {
    b
}

#[stage(a = cycle_a)]
fn cycle_b(a: u8) -> u8 {
    a
}

#[test]
fn a_cycle_is_an_error_naming_its_stages() {
    let dir = tempfile::tempdir().unwrap();
    let err = run(dir.path(), cycle_a).0.unwrap_err();
    let stage::Error::Cycle { stages } = &err else {
        panic!("not a cycle: {err}")
    };
    let names: Vec<&str> = stages
        .iter()
        .map(|s| s.rsplit("::").next().unwrap())
        .collect();
    assert_eq!(names, ["cycle_a", "cycle_b", "cycle_a"]);
}

#[test]
fn an_unwritable_cache_still_returns_the_value_with_a_warning() {
    // A cache "folder" that is a file cannot be written, even by root.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    fs::write(&cache, b"not a folder").unwrap();
    let (v, log) = run(&cache, || squares(5));
    assert_eq!(v.unwrap(), [0, 1, 4, 9, 16]);
    assert_eq!(log.warnings().len(), 1, "{:?}", log.warnings());
    assert!(
        log.warnings()[0].contains("squares"),
        "{:?}",
        log.warnings()
    );
    let strict = Config::from_env()
        .dir(&cache)
        .strict(true)
        .scope(|| squares(5));
    assert!(
        matches!(strict, Err(stage::Error::Save { .. })),
        "{strict:?}"
    );
}

// ---- inputs chosen at run time, keyed by content

#[stage(cache = bincode)]
fn size_of(input: stage::File) -> std::io::Result<u64> {
    Ok(fs::metadata(input.path())?.len())
}

#[test]
fn a_file_parameter_is_keyed_by_its_content_not_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let a = raw_file("file-param-a.txt", "same");
    let b = raw_file("file-param-b.txt", "same");
    assert_eq!(
        run(dir.path(), || size_of(stage::File::new(&a))).0.unwrap(),
        4
    );
    let (v, log) = run(dir.path(), || size_of(stage::File::new(&b)));
    assert_eq!(v.unwrap(), 4);
    assert_eq!(log.loaded(), ["size_of"]);
    fs::write(&b, "different").unwrap();
    let (v, log) = run(dir.path(), || size_of(stage::File::new(&b)));
    assert_eq!(v.unwrap(), 9);
    assert_eq!(log.computed(), ["size_of"]);
}

// ---- a second process reads what the first wrote

#[test]
#[ignore = "run as a child process by `a_new_process_reads_the_cache`"]
fn child_process_entry() {
    let Ok(dir) = std::env::var("STAGE_TEST_CHILD_DIR") else {
        return;
    };
    let (v, log) = run(Path::new(&dir), top);
    println!(
        "VALUE={} COMPUTED={} LOADED={}",
        v.unwrap(),
        sorted(log.computed()).join(","),
        log.loaded().join(",")
    );
}

#[test]
fn a_new_process_reads_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let child = || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "child_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("STAGE_TEST_CHILD_DIR", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        match stdout.find("VALUE=") {
            Some(at) => stdout[at..].lines().next().unwrap_or_default().to_owned(),
            None => stdout,
        }
    };
    assert_eq!(
        child(),
        "VALUE=4950/100 COMPUTED=base,left,right,top LOADED="
    );
    assert_eq!(
        child(),
        "VALUE=4950/100 COMPUTED=left,right,top LOADED=base",
        "only the memory-only stages run again"
    );
}

// ---- many tests in parallel, each with its own cache

#[test]
fn parallel_callers_with_their_own_caches_do_not_interfere() {
    let handles: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let dir = tempfile::tempdir().unwrap();
                let (v, log) = run(dir.path(), || squares(i));
                assert_eq!(v.unwrap().len(), usize::try_from(i).unwrap());
                assert_eq!(log.computed(), ["squares"]);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Summary {
    rows: usize,
    total: i64,
}

#[stage(t = table(n), cache = bincode)]
fn summarise(t: &RecordBatch, n: i64) -> Summary {
    let ids = t.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    Summary {
        rows: t.num_rows(),
        total: ids.iter().flatten().sum(),
    }
}

#[test]
fn serde_structs_round_trip_through_bincode() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), || summarise(4)).0.unwrap();
    let (second, log) = run(dir.path(), || summarise(4));
    assert_eq!(log.loaded(), ["summarise"]);
    assert_eq!(second.unwrap(), first);
    assert_eq!(first, Summary { rows: 4, total: 6 });
}
