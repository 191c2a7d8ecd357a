//! Faults between the client and the server: every run returns the right values, and a
//! failing remote costs a few seconds per run, not per stage (the times are printed:
//! `cargo test --features aws --test remote faults -- --nocapture`).

use std::time::{Duration, Instant};

use stage::stage;

use crate::proxy::{Fault, Proxy};
use crate::{offline, on, server};

#[stage(cache = bincode)]
fn c0(n: u64) -> u64 {
    n
}

#[stage(p = c0(n), cache = bincode)]
fn c1(p: &u64, n: u64) -> u64 {
    p + 1
}

#[stage(p = c1(n), cache = bincode)]
fn c2(p: &u64, n: u64) -> u64 {
    p + 1
}

#[stage(p = c2(n), cache = bincode)]
fn c3(p: &u64, n: u64) -> u64 {
    p + 1
}

#[stage(p = c3(n), cache = bincode)]
fn c4(p: &u64, n: u64) -> u64 {
    p + 1
}

#[stage(p = c4(n), cache = bincode)]
fn c5(p: &u64, n: u64) -> u64 {
    p + 1
}

#[stage(p = c5(n), cache = bincode)]
fn c6(p: &u64, n: u64) -> u64 {
    p + 1
}

#[stage(p = c6(n), cache = bincode)]
fn c7(p: &u64, n: u64) -> u64 {
    p + 1
}

#[stage(p = c7(n), cache = bincode)]
fn c8(p: &u64, n: u64) -> u64 {
    p + 1
}

#[stage(p = c8(n), cache = bincode)]
fn c9(p: &u64, n: u64) -> u64 {
    p + 1
}

/// Far below what ten stages would cost if each waited for the remote on its own (a
/// silent server costs 3 s per request), far above what one wait costs.
const BOUND: Duration = Duration::from_secs(15);

fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed())
}

/// A URL where nothing listens.
fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Seeds a prefix with `c9(1)`, then on fresh machines through a proxy that injects
/// `fault` (or at a dead port): `c9(1)` (a hit in the remote) and `c9(2)` (ten new
/// entries to upload). Both give the right value within the bound, and the local caches
/// are whole afterwards.
fn check(name: &str, fault: Option<Fault>) {
    let Some(server) = server::server() else {
        return;
    };
    let prefix = server::unique(name);
    let seeder = tempfile::tempdir().unwrap();
    let direct = server::remote_at(&server.endpoint(), &prefix);
    assert_eq!(on(seeder.path(), &direct, || c9(1)).0.unwrap(), 10);

    let proxy = fault.map(|fault| {
        let proxy = Proxy::start(server.addr);
        proxy.set(fault);
        proxy
    });
    let endpoint = proxy
        .as_ref()
        .map_or_else(dead_endpoint, |p| p.endpoint.clone());
    let through = server::remote_at(&endpoint, &prefix);
    for n in [1, 2] {
        let machine = tempfile::tempdir().unwrap();
        let ((value, log), took) = timed(|| on(machine.path(), &through, || c9(n)));
        assert_eq!(value.unwrap(), n + 9, "{name}");
        eprintln!(
            "{name}: c9({n}) in {:.2} s, {} computed",
            took.as_secs_f64(),
            log.computed().len()
        );
        assert!(took < BOUND, "{name}: c9({n}) took {took:?}");
        let (value, log) = offline(machine.path(), || c9(n));
        assert_eq!(value.unwrap(), n + 9);
        assert_eq!(log.loaded(), ["c9"], "{name}: the local cache is whole");
    }
    if let Some(proxy) = proxy {
        proxy.set(Fault::Pass);
    }
}

#[test]
fn a_dead_server() {
    check("dead", None);
}

#[test]
fn a_server_that_drops_connections() {
    check("drop", Some(Fault::Drop));
}

#[test]
fn a_silent_server() {
    check("stall", Some(Fault::Stall));
}

#[test]
fn a_slow_server() {
    check("slow", Some(Fault::Delay(Duration::from_millis(100))));
}

#[test]
fn a_server_that_truncates_bodies() {
    check("truncate", Some(Fault::Truncate));
}

#[test]
fn a_server_that_answers_500() {
    check("500", Some(Fault::Status(500)));
}

#[test]
fn a_server_that_answers_503() {
    check("503", Some(Fault::Status(503)));
}

#[test]
fn a_server_that_answers_403() {
    check("403", Some(Fault::Status(403)));
}

#[test]
fn a_required_remote_that_cannot_be_reached_is_an_error() {
    let Some(_) = server::server() else {
        return;
    };
    let remote = server::remote_at(&dead_endpoint(), &server::unique("required")).required(true);
    let machine = tempfile::tempdir().unwrap();
    let (value, took) = timed(|| on(machine.path(), &remote, || c9(3)).0);
    let error = value.unwrap_err();
    assert!(matches!(error, stage::Error::Remote { .. }), "{error}");
    assert!(
        error.to_string().contains("STAGE_REMOTE_REQUIRED"),
        "{error}"
    );
    assert!(took < BOUND);
}
