//! The `stage` command, run as a process on caches written by real stages.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stage::arrow::array::{Int64Array, RecordBatch};
use stage::stage;

#[stage(cache = bincode)]
fn base(n: u32) -> Vec<u32> {
    (0..n * 100).collect()
}

#[stage(xs = base(n), cache = bincode)]
fn doubled(xs: &Vec<u32>, n: u32) -> Vec<u32> {
    xs.iter().map(|x| x * 2).collect()
}

#[stage(cache = parquet)]
fn table(n: i64) -> RecordBatch {
    RecordBatch::try_from_iter([(
        "id",
        std::sync::Arc::new(Int64Array::from((0..n).collect::<Vec<_>>())) as _,
    )])
    .unwrap()
}

/// A cache with three runs of `doubled` (n = 1, 2, 3) and one of `table`: 7 entries.
fn cache() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = stage::Config::from_env().dir(dir.path());
    for n in 1..=3 {
        config.scope(|| doubled(n)).unwrap();
    }
    config.scope(|| table(5)).unwrap();
    dir
}

fn stage_cmd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stage"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let stage_dirs = fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|d| d.path().is_dir() && d.file_name() != "runs");
    for d in stage_dirs {
        all.extend(
            fs::read_dir(d.path())
                .unwrap()
                .filter_map(Result::ok)
                .map(|f| f.path()),
        );
    }
    all.sort();
    all
}

fn payloads(dir: &Path, extension: &str) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect()
}

fn key_of(dir: &Path, stage: &str, args: impl FnOnce() -> stage::Digest) -> String {
    let _ = stage;
    stage::Config::from_env().dir(dir).scope(args).to_hex()
}

#[test]
fn ls_lists_every_entry() {
    let dir = cache();
    let out = stage_cmd(dir.path(), &["ls"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("  ") && !l.contains("key"))
            .count(),
        7,
        "{text}"
    );
    for stage in ["cli.base", "cli.doubled", "cli.table"] {
        assert!(text.contains(stage), "{stage} missing: {text}");
    }
}

#[test]
fn show_gives_provenance_and_the_chain() {
    let dir = cache();
    let key = key_of(dir.path(), "doubled", || {
        stage::inspect::key::<doubled>((2,)).unwrap()
    });
    let out = stage_cmd(dir.path(), &["show", &key[..10], "--chain"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("cli::doubled @"), "{text}");
    assert!(text.contains("param      n = 2"), "{text}");
    assert!(text.contains("ancestor   xs = cli::base @"), "{text}");
    assert!(
        text.contains("    cli::base @"),
        "the chain reaches the ancestor's entry: {text}"
    );
    let json = stdout(&stage_cmd(dir.path(), &["show", &key, "--json"]));
    let entry: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(entry["key"], key.as_str());
}

#[test]
fn verify_finds_exactly_the_damaged_entries_and_removes_them() {
    let dir = cache();
    assert!(stage_cmd(dir.path(), &["verify"]).status.success());
    let bins = payloads(dir.path(), "bin");
    let metas = payloads(dir.path(), "json");
    let truncated = &bins[0];
    let flipped = &bins[1];
    let deleted = &bins[2];
    fs::write(truncated, &fs::read(truncated).unwrap()[..10]).unwrap();
    let mut bytes = fs::read(flipped).unwrap();
    bytes[5] ^= 0xff;
    fs::write(flipped, bytes).unwrap();
    fs::remove_file(deleted).unwrap();
    let garbled = metas
        .iter()
        .find(|m| {
            let name = m.file_name().unwrap().to_string_lossy();
            let key = name.trim_end_matches(".meta.json");
            m.with_file_name(format!("{key}.parquet")).exists()
        })
        .unwrap();
    fs::write(garbled, b"{not json").unwrap();

    let out = stage_cmd(dir.path(), &["verify"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("bad ")).count(),
        3,
        "{text}"
    );
    // A payload without its file but with intact metadata is what `gc` leaves for
    // descendants' keys: reported, not damage.
    assert!(
        text.lines()
            .any(|l| l.starts_with("collected ") && l.contains(&deleted.display().to_string())),
        "{text}"
    );
    for path in [truncated, flipped, garbled] {
        assert!(
            text.contains(&path.display().to_string()),
            "{} not reported: {text}",
            path.display()
        );
    }
    let out = stage_cmd(dir.path(), &["verify", "--remove"]);
    assert_eq!(out.status.code(), Some(1));
    let out = stage_cmd(dir.path(), &["verify"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn gc_keeps_what_the_latest_runs_used() {
    let dir = cache();
    let before = files(dir.path());
    let out = stage_cmd(dir.path(), &["gc", "--dry-run"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("would remove"), "{}", stdout(&out));
    assert_eq!(files(dir.path()), before, "--dry-run removed something");

    let out = stage_cmd(dir.path(), &["gc"]);
    assert!(
        stdout(&out).contains("3 entries kept, 4 removed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(payloads(dir.path(), "json").len(), 3);
    let config = stage::Config::from_env().dir(dir.path());
    let ((), log) = config.scope(|| stage::observe(|| drop(doubled(3).unwrap())));
    assert_eq!(
        log.loaded(),
        ["doubled"],
        "the latest run's entries survive"
    );
    let ((), log) = config.scope(|| stage::observe(|| drop(doubled(1).unwrap())));
    assert_eq!(
        log.computed(),
        ["base", "doubled"],
        "older entries are gone"
    );
}

#[test]
fn gc_by_size_and_age() {
    let dir = cache();
    let out = stage_cmd(dir.path(), &["gc", "--keep-last", "9", "--max-size", "1"]);
    assert!(
        stdout(&out).contains("0 entries kept, 7 removed"),
        "{}",
        stdout(&out)
    );
    let dir = cache();
    let out = stage_cmd(
        dir.path(),
        &["gc", "--keep-last", "9", "--older-than", "1h"],
    );
    assert!(
        stdout(&out).contains("7 entries kept, 0 removed"),
        "{}",
        stdout(&out)
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = stage_cmd(
        dir.path(),
        &["gc", "--keep-last", "9", "--older-than", "1s"],
    );
    assert!(
        stdout(&out).contains("0 entries kept, 7 removed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn du_adds_up() {
    let dir = cache();
    let text = stdout(&stage_cmd(dir.path(), &["du"]));
    let total = text.lines().last().unwrap();
    assert!(
        total.ends_with("total") && total.contains("  7  "),
        "{text}"
    );
    let on_disk: u64 = files(dir.path())
        .iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "bin" || e == "parquet" || e == "json")
        })
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert!(
        total.trim_start().starts_with(&stage_cli_size(on_disk)),
        "{total} vs {on_disk}"
    );
}

/// The CLI's own size format, for comparing totals.
#[allow(clippy::cast_precision_loss, reason = "a few KiB")]
fn stage_cli_size(bytes: u64) -> String {
    if bytes >= 10 * 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

#[test]
fn bad_input_is_a_message_and_exit_code_2() {
    let dir = cache();
    for args in [
        &["show", "zzzz"][..],
        &["show", "ffffffff"],
        &["gc", "--max-size", "lots"],
        &["gc", "--older-than", "soon"],
    ] {
        let out = stage_cmd(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("stage") || !out.stderr.is_empty(),
            "{args:?}"
        );
    }
    let out = stage_cmd(&dir.path().join("missing"), &["ls"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("stage: cannot read the cache folder")
    );
}
