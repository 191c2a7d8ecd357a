//! Raw inputs as a user meets them: found in a data folder from any working directory,
//! named by their absolute path when missing, and named as the reason when they change,
//! even after other ingredients went back and forth.

use std::fs;
use std::path::Path;
use std::process::Command;

use stage::{Change, Config, File, Reason, RunLog, stage};

fn run<R>(config: &Config, f: impl FnOnce() -> R) -> (R, RunLog) {
    config.scope(|| stage::observe(f))
}

#[stage(raw = "delays.csv", cache = bincode)]
fn delays(raw: &Path) -> std::io::Result<Vec<u32>> {
    Ok(fs::read_to_string(raw)?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

#[stage(xs = delays, cache = bincode)]
fn quantile_delay(xs: &Vec<u32>, quantile: f64) -> u32 {
    let mut sorted = xs.clone();
    sorted.sort_unstable();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short test list"
    )]
    let at = ((sorted.len() - 1) as f64 * quantile).round() as usize;
    sorted[at]
}

/// A data folder with `delays.csv` holding `rows`, and a cache beside it.
fn data(rows: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("data")).unwrap();
    fs::write(dir.path().join("data/delays.csv"), rows).unwrap();
    let config = Config::from_env()
        .dir(dir.path().join("cache"))
        .data_dir(dir.path().join("data"));
    (dir, config)
}

#[test]
fn the_reason_is_the_input_when_only_the_input_changed_since_the_nearest_run() {
    let (dir, config) = data("10\n20\n30\n40\n50\n");
    let (v, _) = run(&config, || quantile_delay(0.9));
    assert_eq!(v.unwrap(), 50);
    let (v, log) = run(&config, || quantile_delay(0.5));
    assert_eq!(v.unwrap(), 30);
    assert_eq!(
        log.reason("quantile_delay"),
        Some(&Reason::changed(Change::Param("quantile".into())))
    );
    let (v, log) = run(&config, || quantile_delay(0.9));
    assert_eq!(v.unwrap(), 50);
    assert_eq!(log.loaded(), ["quantile_delay"], "0.9 again is a hit");

    fs::write(
        dir.path().join("data/delays.csv"),
        "10\n20\n30\n40\n50\n90\n",
    )
    .unwrap();
    let (v, log) = run(&config, || quantile_delay(0.9));
    assert_eq!(v.unwrap(), 90);
    assert_eq!(log.computed(), ["delays", "quantile_delay"]);
    assert_eq!(
        log.reason("delays"),
        Some(&Reason::changed(Change::Input("delays.csv".into())))
    );
    // Compared with the 0.9 entry, not with the latest (0.5) one: the parameter is the same,
    // only the rows read changed.
    assert_eq!(
        log.reason("quantile_delay"),
        Some(&Reason::changed(Change::Ancestor("delays".into())))
    );
}

#[test]
fn a_missing_input_names_the_absolute_path_it_tried_and_the_stage() {
    let (dir, _) = data("1\n");
    let config = Config::from_env()
        .dir(dir.path().join("cache"))
        .data_dir(dir.path().join("elsewhere"));
    let err = run(&config, || quantile_delay(0.5)).0.unwrap_err();
    let message = err.to_string();
    let tried = dir.path().join("elsewhere").join("delays.csv");
    assert!(message.contains("::delays`"), "{message}");
    assert!(
        message.contains(&tried.display().to_string()),
        "{message} should name {}",
        tried.display()
    );
}

#[stage(cache = bincode)]
fn line_count(input: File) -> std::io::Result<usize> {
    Ok(fs::read_to_string(input.resolved())?.lines().count())
}

#[test]
fn a_missing_file_parameter_names_its_path_and_the_stage() {
    let (dir, config) = data("1\n");
    let err = run(&config, || line_count(File::new("nope.csv")))
        .0
        .unwrap_err();
    let chain = error_chain(&err);
    assert!(chain.contains("::line_count`"), "{chain}");
    let tried = dir.path().join("data").join("nope.csv");
    assert!(chain.contains(&tried.display().to_string()), "{chain}");

    let (v, log) = run(&config, || line_count(File::new("delays.csv")));
    assert_eq!(v.unwrap(), 1);
    assert_eq!(log.computed(), ["line_count"]);
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Runs `quantile_delay(0.5)` in a child process whose working directory is `cwd`.
fn child(cwd: &Path, cache: &Path, data: Option<&Path>) -> String {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            "child_from_elsewhere",
            "--nocapture",
        ])
        .current_dir(cwd)
        .env("STAGE_DIR", cache)
        .env_remove("STAGE_DATA_DIR");
    if let Some(data) = data {
        command.env("STAGE_DATA_DIR", data);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout
        .lines()
        .find(|l| l.starts_with("RESULT="))
        .unwrap_or(&stdout)
        .to_owned()
}

#[test]
fn a_binary_run_from_another_folder_finds_its_inputs_in_the_data_folder() {
    let (dir, _) = data("1\n2\n3\n");
    let cwd = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let without = child(cwd.path(), &cache, None);
    assert!(
        without.starts_with("RESULT=error") && without.contains("delays.csv"),
        "{without}"
    );
    let with = child(cwd.path(), &cache, Some(&dir.path().join("data")));
    assert_eq!(with, "RESULT=2 COMPUTED=delays,quantile_delay");
    let again = child(cwd.path(), &cache, Some(&dir.path().join("data")));
    assert_eq!(again, "RESULT=2 COMPUTED=");
}

#[test]
#[ignore = "run in a child process by `a_binary_run_from_another_folder_finds_its_inputs_in_the_data_folder`"]
fn child_from_elsewhere() {
    let (value, log) = stage::observe(|| quantile_delay(0.5));
    match value {
        Ok(v) => println!("RESULT={v} COMPUTED={}", log.computed().join(",")),
        Err(e) => println!("RESULT=error {}", error_chain(&e)),
    }
}
