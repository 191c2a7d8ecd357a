//! The team cache on W1, against the S3 server the tests use (on this machine): a cold run
//! with uploads (waited for, or in the background) beside a cold run without a remote; a
//! warm run from the remote into an empty local cache beside a local warm run; and what a
//! dead or a silent server adds to a cold run.
//!
//! `cargo bench --features aws --bench remote`. Medians of a few whole calls, in process.

#![allow(dead_code, reason = "the shared helpers serve the tests too")]

#[path = "../tests/remote/proxy.rs"]
mod proxy;
#[path = "../tests/remote/server.rs"]
mod server;
#[path = "support/w1.rs"]
mod w1;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stage::{Config, Remote, Upload};

const RUNS: usize = 5;

fn csv() -> PathBuf {
    w1::generate(Path::new("target/w1/w1.csv"), w1::ROWS).expect("generate W1")
}

fn call(csv: &Path, dir: &Path, remote: Option<&Remote>) -> Duration {
    let config = Config::from_env().dir(dir).progress(false);
    let config = match remote {
        Some(remote) => config.remote(remote.clone()),
        None => config.local_only(),
    };
    let start = Instant::now();
    config
        .scope(|| w1::summary(stage::File::new(csv)))
        .expect("W1");
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

/// The median of `RUNS` calls, each on a fresh local cache and a fresh remote prefix
/// (`remote` makes it from a name), after `prepare` (which may seed that prefix).
fn measure(
    csv: &Path,
    remote: impl Fn(&str) -> Option<Remote>,
    prepare: impl Fn(&Path, Option<&Remote>),
) -> Duration {
    let times = (0..RUNS)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let remote = remote(&server::unique("bench"));
            prepare(dir.path(), remote.as_ref());
            call(csv, dir.path(), remote.as_ref())
        })
        .collect();
    median(times)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(server) = server::server() else {
        return;
    };
    let csv = csv();
    let direct = |prefix: &str| server::remote_at(&server.endpoint(), prefix);
    let none = |_: &str| None;
    let nothing = |_: &Path, _: Option<&Remote>| {};

    let cold_local = measure(&csv, none, nothing);
    let warm_local = {
        let dir = tempfile::tempdir().unwrap();
        call(&csv, dir.path(), None);
        median((0..RUNS).map(|_| call(&csv, dir.path(), None)).collect())
    };
    let cold_upload = measure(&csv, |p| Some(direct(p)), nothing);
    let cold_background = measure(
        &csv,
        |p| Some(direct(p).upload(Upload::Background)),
        nothing,
    );
    // Seeded by another machine: this one's local cache is empty.
    let seed = |_: &Path, remote: Option<&Remote>| {
        let other = tempfile::tempdir().unwrap();
        call(&csv, other.path(), remote);
    };
    let warm_remote = measure(&csv, |p| Some(direct(p)), seed);
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        measure(&csv, |p| Some(server::remote_at(&endpoint, p)), nothing)
    };
    let silent = {
        let proxy = proxy::Proxy::start(server.addr);
        proxy.set(proxy::Fault::Stall);
        measure(
            &csv,
            |p| Some(server::remote_at(&proxy.endpoint, p)),
            nothing,
        )
    };

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("W1 ({} rows), medians of {RUNS} calls", w1::ROWS);
    println!(
        "cold, no remote                  {:>8.1} ms",
        ms(cold_local)
    );
    println!(
        "cold, uploads waited for         {:>8.1} ms  (+{:.1} ms)",
        ms(cold_upload),
        ms(cold_upload) - ms(cold_local)
    );
    println!(
        "cold, uploads in the background  {:>8.1} ms  (+{:.1} ms)",
        ms(cold_background),
        ms(cold_background) - ms(cold_local)
    );
    println!(
        "warm, local                      {:>8.1} ms",
        ms(warm_local)
    );
    println!(
        "warm from the remote, empty local {:>7.1} ms",
        ms(warm_remote)
    );
    println!(
        "cold, dead server                {:>8.1} ms  (+{:.1} ms)",
        ms(dead),
        ms(dead) - ms(cold_local)
    );
    println!(
        "cold, silent server              {:>8.1} ms  (+{:.1} ms)",
        ms(silent),
        ms(silent) - ms(cold_local)
    );
}
