//! The `stage` command against a real S3 server: push, pull, status, ls, verify and gc on
//! the remote cache. Where the server cannot be installed, each test says it skipped.

#[allow(dead_code, reason = "shared with the facade's remote tests")]
#[path = "../../tests/remote/proxy.rs"]
mod proxy;
#[allow(dead_code, reason = "shared with the facade's remote tests")]
#[path = "../../tests/remote/server.rs"]
mod server;

use std::path::Path;
use std::process::{Command, Output};

use stage::stage;

#[stage(cache = bincode)]
fn base(n: u32) -> Vec<u32> {
    (0..n * 100).collect()
}

/// Slow enough that its ancestor's entry is always written (and uploaded) first.
#[stage(xs = base(n), cache = bincode)]
fn doubled(xs: &Vec<u32>, n: u32) -> Vec<u32> {
    std::thread::sleep(std::time::Duration::from_millis(50));
    xs.iter().map(|x| x * 2).collect()
}

#[stage(xs = doubled(n))]
fn total(xs: &Vec<u32>, n: u32) -> u64 {
    xs.iter().map(|&x| u64::from(x)).sum()
}

#[stage(cache = bincode)]
fn early(n: u32) -> Vec<u32> {
    vec![n; 400]
}

/// Written over a second after its ancestor: object stores date objects to the second.
#[stage(e = early(n), cache = bincode)]
fn late(e: &Vec<u32>, n: u32) -> Vec<u32> {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    e.iter().map(|x| x + n).collect()
}

fn expected(n: u32) -> u64 {
    (0..u64::from(n) * 100).map(|x| x * 2).sum()
}

/// `stage --dir DIR ARGS` with the remote cache `url` reached at `endpoint`.
fn stage_cmd(dir: &Path, endpoint: &str, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stage"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env("STAGE_REMOTE", url)
        .envs(server::env_for(endpoint))
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A prefix of its own on the server: its URL and the `Remote` the pipelines use.
fn prefix(name: &str) -> Option<(&'static server::Server, String, stage::Remote)> {
    let server = server::server()?;
    let prefix = server::unique(name);
    let url = format!("s3://{}/{prefix}", server::BUCKET);
    Some((server, url, server::remote_at(&server.endpoint(), &prefix)))
}

fn offline<R>(dir: &Path, f: impl FnOnce() -> R) -> (R, stage::RunLog) {
    stage::Config::from_env()
        .dir(dir)
        .local_only()
        .scope(|| stage::observe(f))
}

fn online<R>(dir: &Path, remote: &stage::Remote, f: impl FnOnce() -> R) -> (R, stage::RunLog) {
    stage::Config::from_env()
        .dir(dir)
        .remote(remote.clone())
        .scope(|| stage::observe(f))
}

#[test]
fn push_then_a_fresh_machine_computes_nothing() {
    let Some((server, url, remote)) = prefix("push") else {
        return;
    };
    let a = tempfile::tempdir().unwrap();
    for n in [1, 2] {
        offline(a.path(), || total(n)).0.unwrap();
    }
    let out = stage_cmd(a.path(), &server.endpoint(), &url, &["push", "--latest"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).starts_with("pushed 2 entries"),
        "{}",
        stdout(&out)
    );
    let out = stage_cmd(a.path(), &server.endpoint(), &url, &["push"]);
    assert!(
        stdout(&out).starts_with("pushed 2 entries"),
        "{}",
        stdout(&out)
    );
    let out = stage_cmd(a.path(), &server.endpoint(), &url, &["push"]);
    assert!(
        stdout(&out).starts_with("pushed 0 entries"),
        "{}",
        stdout(&out)
    );

    let b = tempfile::tempdir().unwrap();
    for n in [1, 2] {
        let (value, log) = online(b.path(), &remote, || total(n));
        assert_eq!(value.unwrap(), expected(n));
        assert_eq!(log.computed(), ["total"], "only the memory-only stage runs");
    }
}

#[test]
fn pull_fetches_the_latest_run_or_a_stage_and_its_ancestors() {
    let Some((server, url, remote)) = prefix("pull") else {
        return;
    };
    let a = tempfile::tempdir().unwrap();
    online(a.path(), &remote, || total(3)).0.unwrap();

    // The latest run's entries, from the remote run records.
    let b = tempfile::tempdir().unwrap();
    let out = stage_cmd(b.path(), &server.endpoint(), &url, &["pull"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).starts_with("pulled 2 entries"),
        "{}",
        stdout(&out)
    );
    let (value, log) = offline(b.path(), || total(3));
    assert_eq!(value.unwrap(), expected(3));
    assert_eq!(log.computed(), ["total"]);

    // A stage by name: its newest entry and its ancestors.
    let c = tempfile::tempdir().unwrap();
    let out = stage_cmd(c.path(), &server.endpoint(), &url, &["pull", "doubled"]);
    assert!(
        stdout(&out).starts_with("pulled 2 entries"),
        "{}",
        stdout(&out)
    );
    let (value, log) = offline(c.path(), || base(3));
    assert_eq!(value.unwrap().len(), 300);
    assert_eq!(log.loaded(), ["base"]);
}

#[test]
fn status_ls_and_verify_of_the_remote() {
    let Some((server, url, remote)) = prefix("status") else {
        return;
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    online(a.path(), &remote, || total(4)).0.unwrap();
    offline(b.path(), || total(5)).0.unwrap();
    online(b.path(), &remote, || total(4)).0.unwrap();
    let out = stage_cmd(b.path(), &server.endpoint(), &url, &["status", "--remote"]);
    let text = stdout(&out);
    let last = text.lines().last().unwrap();
    let counts: Vec<&str> = last.split_whitespace().take(3).collect();
    // Local only: base(5), doubled(5); remote only: base(4), which the hit on doubled(4)
    // never needed; both: doubled(4).
    assert_eq!(counts, ["2", "1", "1"], "{text}");

    let out = stage_cmd(b.path(), &server.endpoint(), &url, &["ls", "--remote"]);
    let rows = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("  ") && !l.contains("key"))
        .count();
    assert_eq!(rows, 2, "{}", stdout(&out));

    let out = stage_cmd(b.path(), &server.endpoint(), &url, &["verify", "--remote"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("2 entries checked, 0 damaged"),
        "{}",
        stdout(&out)
    );

    // Damage one payload, collect the other: one is damage, the other is not.
    let store = stage::inspect::open_remote(&remote).unwrap();
    let listed = store.list(None).unwrap();
    let folder = |l: &stage::inspect::Listed| l.stage.replace("::", ".");
    let first = &listed[0];
    let entry = store.lookup(&first.stage, &first.key).unwrap().unwrap();
    store
        .put_record(&format!("{}/{}", folder(first), entry.payload), b"nonsense")
        .unwrap();
    store
        .remove(&listed[1].stage, &listed[1].key, false)
        .unwrap();
    let out = stage_cmd(b.path(), &server.endpoint(), &url, &["verify", "--remote"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("1 damaged, 1 payloads collected"), "{text}");
    let out = stage_cmd(
        b.path(),
        &server.endpoint(),
        &url,
        &["verify", "--remote", "--remove"],
    );
    assert!(stdout(&out).contains("removed 1 entries"));
    let out = stage_cmd(b.path(), &server.endpoint(), &url, &["verify", "--remote"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn gc_of_the_remote_keeps_what_descendants_need() {
    let Some((server, url, remote)) = prefix("gc") else {
        return;
    };
    let a = tempfile::tempdir().unwrap();
    online(a.path(), &remote, || late(1)).0.unwrap();
    online(a.path(), &remote, || late(2)).0.unwrap();
    // The latest run keeps early(2) and late(2); a size that holds only the newest payload
    // takes early(2)'s, but keeps its metadata: the key of late(2) is made from its output.
    let store = stage::inspect::open_remote(&remote).unwrap();
    let late_bytes = store
        .list(Some("remote::late"))
        .unwrap()
        .iter()
        .filter_map(|l| l.payload_bytes)
        .max()
        .unwrap();
    let max = late_bytes.to_string();
    let out = stage_cmd(
        a.path(),
        &server.endpoint(),
        &url,
        &["gc", "--remote", "--max-size", &max],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("removed payload  remote::early"), "{text}");
    assert!(text.contains("1 entries kept, 3 removed"), "{text}");

    let fresh = tempfile::tempdir().unwrap();
    let (value, log) = online(fresh.path(), &remote, || late(2));
    assert_eq!(value.unwrap(), vec![4; 400]);
    assert_eq!(log.loaded(), ["late"], "nothing recomputed: {log}");
    assert!(log.computed().is_empty(), "{log}");
}

#[test]
fn gc_of_the_local_cache_keeps_what_descendants_need() {
    let a = tempfile::tempdir().unwrap();
    offline(a.path(), || total(8)).0.unwrap();
    // Without run records, the newest entries are kept: doubled(8), not base(8).
    std::fs::remove_dir_all(a.path().join("runs")).unwrap();
    let doubled_bytes: u64 = std::fs::read_dir(a.path().join("remote.doubled"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|f| f.path().extension().is_some_and(|e| e == "bin"))
        .map(|f| f.metadata().unwrap().len())
        .sum();
    let out = Command::new(env!("CARGO_BIN_EXE_stage"))
        .arg("--dir")
        .arg(a.path())
        .args(["gc", "--max-size", &doubled_bytes.to_string()])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("removed payload  remote.base"), "{text}");
    assert!(!text.contains("remote.doubled"), "{text}");
    let (value, log) = offline(a.path(), || total(8));
    assert_eq!(value.unwrap(), expected(8));
    assert_eq!(log.computed(), ["total"], "base is not recomputed: {log}");
}

#[test]
fn status_of_ten_thousand_entries_lists_in_pages() {
    let Some((server, url, remote)) = prefix("many") else {
        return;
    };
    let store = stage::inspect::open_remote(&remote).unwrap();
    let meta = {
        let dir = tempfile::tempdir().unwrap();
        offline(dir.path(), || base(1)).0.unwrap();
        let folder = dir.path().join("remote.base");
        let name = std::fs::read_dir(&folder)
            .unwrap()
            .filter_map(Result::ok)
            .find(|f| f.file_name().to_string_lossy().ends_with(".meta.json"))
            .unwrap();
        std::fs::read(name.path()).unwrap()
    };
    // Listing reads names only: the objects' content does not matter here.
    let started = std::time::Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= 10_000 {
                        break;
                    }
                    let key = stage::Digest::of(&i.to_le_bytes()).to_hex();
                    let folder = format!("remote.s{}", i % 10);
                    store
                        .put_record(&format!("{folder}/{key}.meta.json"), &meta)
                        .unwrap();
                    store
                        .put_record(&format!("{folder}/{key}.bin"), b"x")
                        .unwrap();
                }
            });
        }
    });
    eprintln!(
        "20,000 objects written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let proxy = proxy::Proxy::start(server.addr);
    let empty = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = stage_cmd(empty.path(), &proxy.endpoint, &url, &["status", "--remote"]);
    let took = started.elapsed();
    let text = stdout(&out);
    assert!(text.lines().last().unwrap().contains("10000"), "{text}");
    let lists = proxy
        .requests()
        .iter()
        .filter(|r| r.contains("list-type=2"))
        .count();
    let all = proxy.requests().len();
    eprintln!(
        "status --remote of 10,000 entries: {lists} LIST requests, {all} in all, {:.2} s",
        took.as_secs_f64()
    );
    assert!(lists <= 10, "{lists} LIST requests");
    assert_eq!(all, lists, "{:?}", proxy.requests());
}
