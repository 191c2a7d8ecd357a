//! Polars `DataFrame`s through `cache = parquet` (the `polars` feature): values and nulls
//! come back from the cache, in a new process as in the same one.

#![cfg(feature = "polars")]
#![allow(dead_code, reason = "the example's `main` is not called here")]

#[path = "../examples/polars.rs"]
mod example;

use std::path::Path;

use stage::polars::prelude::*;
use stage::{Config, RunLog};

fn run<R>(dir: &Path, f: impl FnOnce() -> R) -> (R, RunLog) {
    Config::from_env().dir(dir).scope(|| stage::observe(f))
}

/// What a user checks of a frame: its shape, nulls per column, and a few values.
fn describe(frame: &DataFrame) -> String {
    let nulls: Vec<String> = frame
        .columns()
        .iter()
        .map(|c| format!("{}:{}", c.name(), c.null_count()))
        .collect();
    let fare = frame.column("fare").unwrap().f64().unwrap();
    let total: f64 = fare.iter().flatten().sum();
    let driver = frame.column("driver").unwrap().str().unwrap();
    format!(
        "ROWS={} NULLS={} FARES={total:.1} FIRST={:?}",
        frame.height(),
        nulls.join(","),
        driver.get(1)
    )
}

#[test]
#[ignore = "run as a child process by `a_new_process_reads_frames_back`"]
fn frames_child() {
    let Ok(dir) = std::env::var("STAGE_POLARS_CHILD_DIR") else {
        return;
    };
    let (frame, log) = run(Path::new(&dir), || example::busy(1000, 3));
    let frame = frame.unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let (fresh, _) = run(elsewhere.path(), || example::busy(1000, 3));
    println!(
        "FRAME {} SAME={} LOADED={}",
        describe(&frame),
        frame.equals_missing(&fresh.unwrap()),
        log.loaded().join(",")
    );
}

#[test]
fn a_new_process_reads_frames_back() {
    let dir = tempfile::tempdir().unwrap();
    let child = || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "frames_child", "--nocapture"])
            .env("STAGE_POLARS_CHILD_DIR", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .lines()
            .find(|l| l.starts_with("FRAME "))
            .unwrap_or(&stdout)
            .to_owned()
    };
    // 500 trips of 3 or 4 passengers; fares null on every 5th id, drivers on every 7th.
    let frame = "FRAME ROWS=500 NULLS=id:0,fare:100,driver:72,passengers:0";
    let first = child();
    assert!(first.starts_with(frame), "{first}");
    assert!(first.ends_with("SAME=true LOADED="), "{first}");
    let second = child();
    assert_eq!(second, first.replace("LOADED=", "LOADED=busy"));
}

#[test]
fn an_ancestor_frame_is_read_back_when_a_parameter_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (three, log) = run(dir.path(), || example::busy(200, 3));
    assert_eq!(log.computed(), ["trips", "busy"]);
    let (two, log) = run(dir.path(), || example::busy(200, 2));
    assert_eq!(log.loaded(), ["trips"]);
    assert_eq!(log.computed(), ["busy"]);
    let (three, two) = (three.unwrap(), two.unwrap());
    assert!(two.height() > three.height());
    assert_eq!(three.column("fare").unwrap().null_count(), 20);
}
