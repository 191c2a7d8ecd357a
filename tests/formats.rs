//! The formats a stage's output is kept in, through calls a user makes: many batches
//! through `cache = parquet` and `cache = arrow`, read back by a new process; and a codec
//! of the user's own (`examples/json_codec.rs`).

#![allow(dead_code, reason = "the example's `main` is not called here")]

#[path = "../examples/json_codec.rs"]
mod json_codec;

use std::path::Path;
use std::sync::Arc;

use stage::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, ListArray, StringArray};
use stage::arrow::compute::concat_batches;
use stage::arrow::datatypes::Int32Type;
use stage::arrow::record_batch::RecordBatch;
use stage::{Config, RunLog, stage};

fn run<R>(dir: &Path, f: impl FnOnce() -> R) -> (R, RunLog) {
    Config::from_env().dir(dir).scope(|| stage::observe(f))
}

/// `parts` batches of one schema, of different lengths, with nulls in every column but
/// `id`.
fn batches(parts: usize) -> Vec<RecordBatch> {
    let mut from = 0i64;
    (0..parts)
        .map(|p| {
            let rows = 700 + 300 * i64::try_from(p).unwrap();
            let ids: Vec<i64> = (from..from + rows).collect();
            from += rows;
            let xs: Float64Array = ids
                .iter()
                .map(|&i| (i % 5 != 0).then(|| f64::from(i32::try_from(i).unwrap()) / 4.0))
                .collect();
            let names: StringArray = ids
                .iter()
                .map(|&i| (i % 7 != 0).then(|| format!("n{i}")))
                .collect();
            let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(ids.iter().map(|&i| {
                (i % 3 != 0).then(|| {
                    (0..i32::try_from(i % 4).unwrap())
                        .map(Some)
                        .collect::<Vec<_>>()
                })
            }));
            RecordBatch::try_from_iter([
                ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
                ("x", Arc::new(xs)),
                ("name", Arc::new(names)),
                ("list", Arc::new(lists)),
            ])
            .unwrap()
        })
        .collect()
}

#[stage(cache = parquet, untracked = [batches])]
fn parquet_batches(parts: usize) -> Vec<RecordBatch> {
    batches(parts)
}

#[stage(cache = arrow, untracked = [batches])]
fn arrow_batches(parts: usize) -> Vec<RecordBatch> {
    batches(parts)
}

#[stage(cache = arrow, untracked = [batches, concat_batches])]
fn arrow_batch(parts: usize) -> RecordBatch {
    let all = batches(parts);
    concat_batches(&all[0].schema(), &all).unwrap()
}

/// What a user checks of batches read back: rows, nulls per column, and every value.
fn describe(got: &[RecordBatch], parts: usize) -> String {
    let want = batches(parts);
    let schema = want[0].schema();
    let (got, want) = (
        concat_batches(&schema, got).unwrap(),
        concat_batches(&schema, &want).unwrap(),
    );
    let nulls: Vec<String> = got
        .columns()
        .iter()
        .map(|c| c.null_count().to_string())
        .collect();
    format!(
        "ROWS={} NULLS={} SAME={}",
        got.num_rows(),
        nulls.join(","),
        got == want
    )
}

#[test]
#[ignore = "run as a child process by `a_new_process_reads_many_batches_back`"]
fn many_batches_child() {
    let Ok(dir) = std::env::var("STAGE_FORMATS_CHILD_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let (parquet, log_p) = run(dir, || parquet_batches(3));
    let (arrow, log_a) = run(dir, || arrow_batches(3));
    println!(
        "PARQUET {} {}\nARROW {} {}",
        describe(&parquet.unwrap(), 3),
        if log_p.loaded().is_empty() {
            "computed"
        } else {
            "loaded"
        },
        describe(&arrow.unwrap(), 3),
        if log_a.loaded().is_empty() {
            "computed"
        } else {
            "loaded"
        },
    );
}

#[test]
fn a_new_process_reads_many_batches_back() {
    let dir = tempfile::tempdir().unwrap();
    let child = || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "many_batches_child", "--nocapture"])
            .env("STAGE_FORMATS_CHILD_DIR", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .lines()
            .filter(|l| l.starts_with("PARQUET ") || l.starts_with("ARROW "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // 700 + 1000 + 1300 rows; x is null on every 5th id, name on every 7th, list on every 3rd.
    let rows = "ROWS=3000 NULLS=0,600,429,1000 SAME=true";
    assert_eq!(
        child(),
        format!("PARQUET {rows} computed\nARROW {rows} computed")
    );
    assert_eq!(
        child(),
        format!("PARQUET {rows} loaded\nARROW {rows} loaded")
    );
}

#[test]
fn arrow_entries_come_back_whole_and_empty_vecs_stay_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (first, log) = run(dir.path(), || arrow_batch(2));
    assert_eq!(log.computed(), ["arrow_batch"]);
    let (again, log) = run(dir.path(), || arrow_batch(2));
    assert_eq!(log.loaded(), ["arrow_batch"]);
    assert_eq!(again.unwrap(), first.unwrap());
    for parts in [0, 0] {
        let (p, _) = run(dir.path(), || parquet_batches(parts));
        let (a, _) = run(dir.path(), || arrow_batches(parts));
        assert!(p.unwrap().is_empty());
        assert!(a.unwrap().is_empty());
    }
    let (_, log) = run(dir.path(), || (parquet_batches(0), arrow_batches(0)));
    assert_eq!(log.loaded(), ["parquet_batches", "arrow_batches"]);
}

#[test]
fn a_codec_of_your_own_keeps_values_and_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let text = || json_codec::TEXT.to_owned();
    let (first, log) = run(dir.path(), || json_codec::frequent(text(), 2));
    assert_eq!(log.computed(), ["counts", "frequent"]);
    let first = first.unwrap();
    assert_eq!(first[0], ("a".to_owned(), 5));
    assert!(first.iter().all(|(_, n)| *n >= 2));

    let (again, log) = run(dir.path(), || json_codec::frequent(text(), 2));
    assert_eq!(log.loaded(), ["frequent"]);
    assert!(log.computed().is_empty());
    assert_eq!(again.unwrap(), first);

    // The entries are JSON files any tool can read.
    let folder = stage::inspect::LocalStore::new(dir.path()).stage_dir(&format!(
        "{}::frequent",
        module_path!().replace("formats", "formats::json_codec")
    ));
    let json = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with(".meta.json")
        })
        .unwrap();
    let read: Vec<(String, usize)> = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(read, first);

    // Another parameter: `counts` is read back, `frequent` computed again.
    let (fewer, log) = run(dir.path(), || json_codec::frequent(text(), 3));
    assert_eq!(log.loaded(), ["counts"]);
    assert_eq!(log.computed(), ["frequent"]);
    assert!(fewer.unwrap().len() < first.len());
}
