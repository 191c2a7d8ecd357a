//! The team cache against a real S3 server (`SeaweedFS` on 127.0.0.1, started by the tests):
//! two machines sharing results, damaged objects, a race on one key, faults between client
//! and server, a read-only CI, and results without the raw data.
//!
//! Each test has its own prefix in one bucket, and its own local cache folders ("machines").
//! Where the server cannot be installed, each test says it skipped and passes.

mod damaged;
mod faults;
mod missing;
mod proxy;
mod race;
mod server;
mod shared;
mod trust;

use std::path::Path;

use stage::arrow::array::{Int64Array, RecordBatch};
use stage::{Config, Remote, RunLog, stage};

#[stage(cache = bincode)]
fn numbers(n: u64) -> Vec<u64> {
    (0..n).collect()
}

#[stage(xs = numbers(n), cache = bincode)]
fn squares(xs: &Vec<u64>, n: u64) -> Vec<u64> {
    xs.iter().map(|x| x * x).collect()
}

#[stage(cache = parquet)]
fn table(rows: i64) -> RecordBatch {
    let ids = Int64Array::from((0..rows).collect::<Vec<_>>());
    RecordBatch::try_from_iter([("id", std::sync::Arc::new(ids) as _)]).unwrap()
}

/// Memory only: computed in every call that needs it.
#[stage(s = squares(n), t = table(7))]
fn report(s: &Vec<u64>, t: &RecordBatch, n: u64) -> (u64, usize) {
    (s.iter().sum(), t.num_rows())
}

fn expected(n: u64) -> (u64, usize) {
    ((0..n).map(|x| x * x).sum(), 7)
}

/// The remote cache under a prefix of its own, straight to the server; `None` (the test
/// skips) where the server cannot be installed.
fn remote(name: &str) -> Option<Remote> {
    let server = server::server()?;
    Some(server::remote_at(&server.endpoint(), &server::unique(name)))
}

/// Runs `f` on the machine whose cache is `dir`, with `remote` behind it.
fn on<R>(dir: &Path, remote: &Remote, f: impl FnOnce() -> R) -> (R, RunLog) {
    Config::from_env()
        .dir(dir)
        .remote(remote.clone())
        .scope(|| stage::observe(f))
}

/// Runs `f` on the machine whose cache is `dir`, without any remote.
fn offline<R>(dir: &Path, f: impl FnOnce() -> R) -> (R, RunLog) {
    Config::from_env()
        .dir(dir)
        .local_only()
        .scope(|| stage::observe(f))
}

fn sorted(mut names: Vec<&str>) -> Vec<&str> {
    names.sort_unstable();
    names
}
