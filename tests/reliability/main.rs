//! The cache's guarantees under stress: a writer killed at random moments, entries damaged
//! in every way a disk or a person can damage them, many threads and processes asking for
//! the same keys, and caches that cannot be written (read-only, full) or were written by
//! another format version. In every case a call returns the right value, or an error when
//! strict mode asks for one, and never a wrong value.
//!
//! Everything random is seeded, so a failure repeats. The counts are printed on standard
//! error (`cargo test --test reliability -- --nocapture` shows them).
//!
//! Several tests re-run this test binary as a child process through an `#[ignore]`d entry
//! test that does nothing unless its environment variable is set.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use stage::arrow::array::{Float64Array, Int64Array, StringArray};
use stage::arrow::datatypes::{DataType, Field, Schema};
use stage::arrow::record_batch::RecordBatch;
use stage::inspect::LocalStore;
use stage::{Config, Digest, RunLog, stage};

// ---------------------------------------------------------------------------------------
// Helpers shared by the tests

/// Runs `f` against the cache in `dir` and returns its result and what it did.
fn run<R>(dir: &Path, f: impl FnOnce() -> R) -> (R, RunLog) {
    Config::from_env().dir(dir).scope(|| stage::observe(f))
}

/// xorshift64*: small, seeded, good enough to pick moments, bytes and positions.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03 | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`), as an index.
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// `n` numbers of 9 bincode bytes each (the top bit set), so that two values of the same
/// length have payloads of the same size and only their content tells them apart.
fn numbers(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.next() | 1 << 63).collect()
}

/// Bytes kept as one bincode byte string (a `Vec<u8>` would be a sequence of numbers,
/// encoded one by one): a large payload that is cheap to make and to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Blob, D::Error> {
        struct Bytes;
        impl Visitor<'_> for Bytes {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        deserializer.deserialize_byte_buf(Bytes)
    }
}

/// `len` bytes, different for every seed: 4 KiB blocks of random bytes, each headed by the
/// seed and its index (copying blocks keeps it fast in a debug build).
fn blob(len: usize, seed: u64) -> Blob {
    let mut rng = Rng::new(seed);
    let block: Vec<u8> = (0..512).flat_map(|_| rng.next().to_le_bytes()).collect();
    let mut out = Vec::with_capacity(len + block.len());
    let mut index = 0u64;
    while out.len() < len {
        out.extend_from_slice(&seed.to_le_bytes());
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(&block[16..]);
        index += 1;
    }
    out.truncate(len);
    Blob(out)
}

/// A temporary folder for a cache, in memory (`/dev/shm`) when the machine has one: these
/// tests write thousands of entries and each is synced to disk, which a disk makes slow.
/// What they check (a killed process, damaged files) does not depend on the file system.
fn cache_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("stage-reliability-")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// A table of `rows` rows of random data (incompressible, so its Parquet file is large).
fn table_value(rows: usize, seed: u64) -> RecordBatch {
    let mut rng = Rng::new(seed);
    let ids: Vec<i64> = (0..rows)
        .map(|_| i64::from_le_bytes(rng.next().to_le_bytes()))
        .collect();
    // Finite floats in [1, 2): an exponent of 0x3FF and random mantissa bits.
    let xs: Vec<f64> = (0..rows)
        .map(|_| f64::from_bits(rng.next() >> 12 | 0x3FF0_0000_0000_0000))
        .collect();
    let names: Vec<Option<String>> = (0..rows)
        .map(|i| (i % 7 != 0).then(|| format!("{:x}", rng.next() >> (rng.next() % 64))))
        .collect();
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
        Field::new("name", DataType::Utf8, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(Float64Array::from(xs)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

/// This test binary, re-run to execute only the `#[ignore]`d test `entry`.
fn child(entry: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--ignored",
        "--exact",
        entry,
        "--nocapture",
        "--test-threads=1",
    ]);
    command
}

/// Ends the whole test process when a test does not finish within its time: a hang is a
/// failure, and a test suite that never ends reports nothing.
struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    fn new(what: &'static str, limit: Duration) -> Watchdog {
        let (done, wait) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                eprintln!("{what}: still running after {limit:?}, a hang: ending the test process");
                std::process::exit(101);
            }
        });
        Watchdog(Some(done))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            let _ = done.send(());
        }
    }
}

/// The one outcome of a call of a single cached stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Loaded,
    Computed,
}

fn seen(log: &RunLog) -> Seen {
    assert!(
        log.warnings().is_empty(),
        "unexpected warnings: {:?}",
        log.warnings()
    );
    match (log.loaded().len(), log.computed().len()) {
        (1, 0) => Seen::Loaded,
        (0, 1) => Seen::Computed,
        _ => panic!("one stage, one event expected: {:?}", log.events),
    }
}

/// The payload and metadata paths of the entry of `stage` (a path) under `key`.
fn entry_files(dir: &Path, stage: &str, key: &Digest, extension: &str) -> (PathBuf, PathBuf) {
    let folder = LocalStore::new(dir).stage_dir(stage);
    (
        folder.join(format!("{}.{extension}", key.to_hex())),
        folder.join(format!("{}.meta.json", key.to_hex())),
    )
}

/// Files in `folder` whose name starts with `.tmp-`: what a killed writer leaves.
fn temporaries(folder: &Path) -> Vec<PathBuf> {
    fs::read_dir(folder)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

macro_rules! stage_path {
    ($name:expr) => {
        format!("{}::{}", module_path!(), $name)
    };
}

mod concurrent;
mod damaged;
mod killed;
mod unwritable;
