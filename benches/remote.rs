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

const RUNS: usize = 7;

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

/// One call on a fresh local cache and a fresh remote prefix (`remote` makes it from a
/// name), after `prepare` (which may seed that prefix).
fn once(
    csv: &Path,
    remote: &dyn Fn(&str) -> Option<Remote>,
    prepare: &dyn Fn(&Path, Option<&Remote>),
) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let remote = remote(&server::unique("bench"));
    prepare(dir.path(), remote.as_ref());
    let took = call(csv, dir.path(), remote.as_ref());
    if let Some(remote) = remote.filter(|r| r.upload_mode() == Upload::Background) {
        settle(&remote);
    }
    took
}

/// Waits until the background uploads of a W1 call are in the remote cache, so that they
/// do not compete with the next call.
fn settle(remote: &Remote) {
    let store = stage::inspect::open_remote(remote).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while store.list(None).unwrap().iter().filter(|l| l.meta).count() < 2 {
        assert!(Instant::now() < deadline, "uploads never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
}

type Variant<'a> = (
    &'static str,
    Box<dyn Fn(&str) -> Option<Remote> + 'a>,
    Box<dyn Fn(&Path, Option<&Remote>) + 'a>,
);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(server) = server::server() else {
        return;
    };
    let csv = csv();
    let direct = |prefix: &str| server::remote_at(&server.endpoint(), prefix);
    let dead_endpoint = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        endpoint
    };
    let proxy = proxy::Proxy::start(server.addr);
    proxy.set(proxy::Fault::Stall);
    // Seeded by another machine: this one's local cache is empty.
    let seed = |_: &Path, remote: Option<&Remote>| {
        let other = tempfile::tempdir().unwrap();
        call(&csv, other.path(), remote);
    };
    let variants: Vec<Variant<'_>> = vec![
        ("cold, no remote", Box::new(|_| None), Box::new(|_, _| {})),
        (
            "cold, uploads waited for",
            Box::new(|p| Some(direct(p))),
            Box::new(|_, _| {}),
        ),
        (
            "cold, uploads in the background",
            Box::new(|p| Some(direct(p).upload(Upload::Background))),
            Box::new(|_, _| {}),
        ),
        (
            "warm, local",
            Box::new(|_| None),
            Box::new(|dir, _| {
                call(&csv, dir, None);
            }),
        ),
        (
            "warm from the remote, empty local",
            Box::new(|p| Some(direct(p))),
            Box::new(seed),
        ),
        (
            "cold, dead server",
            Box::new(|p| Some(server::remote_at(&dead_endpoint, p))),
            Box::new(|_, _| {}),
        ),
        (
            "cold, silent server",
            Box::new(|p| Some(server::remote_at(&proxy.endpoint, p))),
            Box::new(|_, _| {}),
        ),
    ];
    // Round after round, each variant once: a machine whose speed drifts (other work on
    // it) slows every variant alike.
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for _ in 0..RUNS {
        for (i, (_, remote, prepare)) in variants.iter().enumerate() {
            times[i].push(once(&csv, remote.as_ref(), prepare.as_ref()));
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let medians: Vec<Duration> = times.into_iter().map(median).collect();
    println!("W1 ({} rows), medians of {RUNS} rounds", w1::ROWS);
    for ((name, _, _), took) in variants.iter().zip(&medians) {
        let base = if name.starts_with("warm") {
            medians[3]
        } else {
            medians[0]
        };
        println!(
            "{name:<34} {:>8.1} ms  ({:+.1} ms)",
            ms(*took),
            ms(*took) - ms(base)
        );
    }
}
