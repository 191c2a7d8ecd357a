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
        folder.join(format!("{}.json", key.to_hex())),
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

fn stage_path(name: &str) -> String {
    format!("{}::{name}", module_path!())
}

// ---------------------------------------------------------------------------------------
// 1. A writer killed at random moments never leaves an entry that reads back wrong

/// Size of `crash_big`'s value, and of its payload.
const BIG_BYTES: usize = 8 << 20;
/// Rows of `crash_table`'s value.
const TABLE_ROWS: usize = 4000;
/// How many times the writer is killed.
const KILLS: usize = 200;

#[stage(cache = bincode)]
fn crash_big(seed: u64) -> Blob {
    blob(BIG_BYTES, seed)
}

#[stage(cache = parquet)]
fn crash_table(seed: u64) -> RecordBatch {
    table_value(TABLE_ROWS, seed)
}

#[test]
#[ignore = "run as a child process by `a_writer_killed_at_random_moments_never_leaves_a_wrong_entry`"]
fn crash_child_entry() {
    let Ok(dir) = std::env::var("RELIABILITY_CRASH_DIR") else {
        return;
    };
    let base: u64 = std::env::var("RELIABILITY_CRASH_BASE")
        .unwrap()
        .parse()
        .unwrap();
    let progress = std::env::var("RELIABILITY_CRASH_PROGRESS").unwrap();
    let mut progress = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(progress)
        .unwrap();
    let config = Config::from_env().dir(&dir);
    // Bounded: the parent kills it long before.
    for j in 0..1000 {
        progress.write_all(format!("{j}\n").as_bytes()).unwrap();
        config.scope(|| {
            assert_eq!(crash_big(base + j).unwrap().0.len(), BIG_BYTES);
            assert_eq!(crash_table(base + j).unwrap().num_rows(), TABLE_ROWS);
        });
    }
}

#[test]
#[ignore = "run as a child process by `a_writer_killed_at_random_moments_never_leaves_a_wrong_entry`"]
fn crash_verify_entry() {
    let Ok(dir) = std::env::var("RELIABILITY_VERIFY_DIR") else {
        return;
    };
    let seeds: Vec<u64> = std::env::var("RELIABILITY_VERIFY_SEEDS")
        .unwrap()
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let mut loaded = 0;
    for seed in &seeds {
        let (v, log) = run(Path::new(&dir), || crash_big(*seed));
        assert!(
            v.unwrap() == blob(BIG_BYTES, *seed),
            "crash_big({seed}) read back wrong"
        );
        loaded += usize::from(seen(&log) == Seen::Loaded);
        let (v, log) = run(Path::new(&dir), || crash_table(*seed));
        assert!(
            v.unwrap() == table_value(TABLE_ROWS, *seed),
            "crash_table({seed}) read back wrong"
        );
        loaded += usize::from(seen(&log) == Seen::Loaded);
    }
    println!("VERIFIED={} LOADED={loaded}", seeds.len() * 2);
}

/// What the killed writer left for the entry it was working on.
/// Temporary files are removed after each round, so any found belong to the killed writer.
fn state_of(dir: &Path, stage: &str, key: &Digest, extension: &str) -> &'static str {
    let (payload, meta) = entry_files(dir, stage, key, extension);
    match (payload.exists(), meta.exists()) {
        (_, true) => "complete",
        (true, false) => "payload without metadata",
        (false, false) if !temporaries(&LocalStore::new(dir).stage_dir(stage)).is_empty() => {
            "temporary file only"
        }
        (false, false) => "nothing written",
    }
}

/// Checks seed `seed` in-process after a kill: right value, and a complete entry is used.
fn check_after_kill(
    dir: &Path,
    seed: u64,
    states: &mut BTreeMap<String, usize>,
    counts: &mut [usize; 2],
) {
    let big = stage_path("crash_big");
    let table = stage_path("crash_table");
    let (key_big, key_table) = Config::from_env().dir(dir).scope(|| {
        (
            stage::inspect::key::<crash_big>((seed,)).unwrap(),
            stage::inspect::key::<crash_table>((seed,)).unwrap(),
        )
    });
    let state_big = state_of(dir, &big, &key_big, "bin");
    let state_table = state_of(dir, &table, &key_table, "parquet");

    let (v, log) = run(dir, || crash_big(seed));
    assert!(
        v.unwrap() == blob(BIG_BYTES, seed),
        "crash_big({seed}) came back wrong after a kill"
    );
    let outcome_big = seen(&log);
    let (v, log) = run(dir, || crash_table(seed));
    assert!(
        v.unwrap() == table_value(TABLE_ROWS, seed),
        "crash_table({seed}) came back wrong after a kill"
    );
    let outcome_table = seen(&log);

    for (stage, state, outcome) in [
        ("crash_big", state_big, outcome_big),
        ("crash_table", state_table, outcome_table),
    ] {
        if state == "complete" {
            assert_eq!(
                outcome,
                Seen::Loaded,
                "{stage}({seed}): a committed entry was not used"
            );
        } else {
            assert_eq!(
                outcome,
                Seen::Computed,
                "{stage}({seed}): {state}, yet loaded"
            );
        }
        *states.entry(format!("{stage}: {state}")).or_default() += 1;
        counts[usize::from(outcome == Seen::Computed)] += 1;
    }
}

/// Removes the entries of `seed`: keeps the disk use bounded.
fn forget(dir: &Path, seed: u64) {
    let (key_big, key_table) = Config::from_env().dir(dir).scope(|| {
        (
            stage::inspect::key::<crash_big>((seed,)).unwrap(),
            stage::inspect::key::<crash_table>((seed,)).unwrap(),
        )
    });
    for (stage, key, extension) in [
        ("crash_big", key_big, "bin"),
        ("crash_table", key_table, "parquet"),
    ] {
        let (payload, meta) = entry_files(dir, &stage_path(stage), &key, extension);
        let _ = fs::remove_file(meta);
        let _ = fs::remove_file(payload);
    }
}

/// Removes what killed writers left: the store itself does so after an hour.
fn remove_temporaries(dir: &Path) {
    for stage in ["crash_big", "crash_table"] {
        for tmp in temporaries(&LocalStore::new(dir).stage_dir(&stage_path(stage))) {
            fs::remove_file(tmp).unwrap();
        }
    }
}

#[test]
fn a_writer_killed_at_random_moments_never_leaves_a_wrong_entry() {
    let _watchdog = Watchdog::new("crash test", Duration::from_secs(300));
    let started = Instant::now();
    let dir = cache_dir();
    let progress = dir.path().join("progress");
    let cache = dir.path().join("cache");
    // How long one iteration of the writer takes here: kills land within two of them.
    let scratch = cache_dir();
    let t0 = Instant::now();
    run(scratch.path(), || {
        (crash_big(u64::MAX).unwrap(), crash_table(u64::MAX).unwrap())
    });
    let iteration = t0.elapsed();
    drop(scratch);
    // The window follows the writer's real pace (other tests share the cores): it shrinks
    // when kills land after the second iteration and grows when they land in the first.
    let mut window = u64::try_from(iteration.as_micros() * 2).unwrap().max(1000);
    let mut windows = Vec::new();

    let mut rng = Rng::new(0x00C0_FFEE);
    let mut states = BTreeMap::new();
    let mut counts = [0usize; 2]; // loaded, computed
    let mut kept = Vec::new();
    for round in 0..KILLS {
        let base = round as u64 * 1000;
        fs::write(&progress, b"").unwrap();
        let mut writer = child("crash_child_entry")
            .env("RELIABILITY_CRASH_DIR", &cache)
            .env("RELIABILITY_CRASH_BASE", base.to_string())
            .env("RELIABILITY_CRASH_PROGRESS", &progress)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while fs::metadata(&progress).unwrap().len() == 0 {
            assert!(
                writer.try_wait().unwrap().is_none(),
                "the writer ended before it began"
            );
            assert!(Instant::now() < deadline, "the writer did not start");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(rng.next() % window));
        windows.push(window);
        writer.kill().unwrap();
        let exit = writer.wait().unwrap();
        assert!(
            !exit.success(),
            "round {round}: the writer finished before it was killed; widen its loop"
        );

        let started_iterations: Vec<u64> = fs::read_to_string(&progress)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        match started_iterations.len() {
            1 => window += window / 10,
            2 => {}
            _ => window -= window / 5,
        }
        for j in &started_iterations {
            check_after_kill(&cache, base + j, &mut states, &mut counts);
        }
        for j in &started_iterations {
            if round % 50 == 49 {
                kept.push(base + j);
            } else {
                forget(&cache, base + j);
            }
        }
        remove_temporaries(&cache);
    }

    // A fresh process reads every kept entry back: all complete now, all right.
    let seeds: Vec<String> = kept.iter().map(ToString::to_string).collect();
    let out = child("crash_verify_entry")
        .env("RELIABILITY_VERIFY_DIR", &cache)
        .env("RELIABILITY_VERIFY_SEEDS", seeds.join(","))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verifying process failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = format!("VERIFIED={0} LOADED={0}", kept.len() * 2);
    assert!(stdout.contains(&expected), "expected {expected}: {stdout}");

    eprintln!(
        "crash: {KILLS} kills survived (writer iteration ~{iteration:.0?} in-process; each kill at a random \
         moment within {}..{} ms, by round, of the writer's first iteration); \
         after the kills {} values were read intact and {} recomputed, all right; \
         a fresh process then loaded all {} kept entries; {:.1?}",
        windows.iter().min().unwrap() / 1000,
        windows.iter().max().unwrap() / 1000,
        counts[0],
        counts[1],
        kept.len() * 2,
        started.elapsed()
    );
    for (state, n) in &states {
        eprintln!("crash:   {state}: {n}");
    }
}

// ---------------------------------------------------------------------------------------
// 2. Damaged entries are recomputed, harmless changes are not, a wrong value never returns

/// How many damages are applied, one at a time.
const MUTATIONS: usize = 1000;

#[stage(cache = bincode)]
fn c_nums(n: usize, seed: u64) -> Vec<u64> {
    numbers(n, seed)
}

#[stage(cache = bincode)]
fn c_words(n: usize) -> Vec<String> {
    words(n)
}

#[stage(cache = bincode)]
fn c_blob(len: usize, seed: u64) -> Blob {
    blob(len, seed)
}

#[stage(cache = parquet)]
fn c_rows(n: usize, seed: u64) -> RecordBatch {
    table_value(n, seed)
}

fn words(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("word {i} {}", "é".repeat(i % 5)))
        .collect()
}

/// One cached value of the corruption test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Nums(usize, u64),
    Words(usize),
    Text(usize),
    Blob(usize, u64),
    Rows(usize, u64),
}

/// A target's right value.
enum Expected {
    Nums(Vec<u64>),
    Words(Vec<String>),
    Text(String),
    Blob(Blob),
    Rows(RecordBatch),
}

impl Target {
    fn stage(self) -> String {
        stage_path(match self {
            Target::Nums(..) => "c_nums",
            Target::Words(..) => "c_words",
            Target::Text(..) => "c_text",
            Target::Blob(..) => "c_blob",
            Target::Rows(..) => "c_rows",
        })
    }

    fn extension(self) -> &'static str {
        match self {
            Target::Rows(..) => "parquet",
            _ => "bin",
        }
    }

    fn expected(self) -> Expected {
        match self {
            Target::Nums(n, seed) => Expected::Nums(numbers(n, seed)),
            Target::Words(n) => Expected::Words(words(n)),
            Target::Text(len) => Expected::Text(text(len)),
            Target::Blob(len, seed) => Expected::Blob(blob(len, seed)),
            Target::Rows(n, seed) => Expected::Rows(table_value(n, seed)),
        }
    }

    fn key(self, dir: &Path) -> Digest {
        Config::from_env()
            .dir(dir)
            .scope(|| match self {
                Target::Nums(n, seed) => stage::inspect::key::<c_nums>((n, seed)),
                Target::Words(n) => stage::inspect::key::<c_words>((n,)),
                Target::Text(len) => stage::inspect::key::<c_text>((len,)),
                Target::Blob(len, seed) => stage::inspect::key::<c_blob>((len, seed)),
                Target::Rows(n, seed) => stage::inspect::key::<c_rows>((n, seed)),
            })
            .unwrap()
    }

    /// Calls the stage; fails the test unless the value is right. Whether it was loaded.
    fn check(self, dir: &Path, expected: &Expected) -> Seen {
        let (right, log) = match (self, expected) {
            (Target::Nums(n, seed), Expected::Nums(want)) => {
                let (v, log) = run(dir, || c_nums(n, seed));
                (v.unwrap() == *want, log)
            }
            (Target::Words(n), Expected::Words(want)) => {
                let (v, log) = run(dir, || c_words(n));
                (v.unwrap() == *want, log)
            }
            (Target::Text(len), Expected::Text(want)) => {
                let (v, log) = run(dir, || c_text(len));
                (v.unwrap() == *want, log)
            }
            (Target::Blob(len, seed), Expected::Blob(want)) => {
                let (v, log) = run(dir, || c_blob(len, seed));
                (v.unwrap() == *want, log)
            }
            (Target::Rows(n, seed), Expected::Rows(want)) => {
                let (v, log) = run(dir, || c_rows(n, seed));
                (v.unwrap() == *want, log)
            }
            _ => unreachable!("a target with another target's value"),
        };
        assert!(right, "{self:?}: a WRONG value came back");
        seen(&log)
    }
}

/// What a damage must lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The bytes a reader relies on changed: the entry must be recomputed.
    Detected,
    /// Nothing a reader relies on changed: the entry must be loaded.
    Harmless,
    /// A change a reader may rightly see as the same entry (the case of a hex digit in the
    /// metadata's checksum): either is right, as long as the value is.
    Either,
}

/// The kinds of damage, applied in turn at random.
const KINDS: [&str; 16] = [
    "truncate payload",
    "damage a length field",
    "extend payload",
    "flip payload bit",
    "overwrite payload byte",
    "delete payload",
    "delete metadata",
    "random metadata",
    "flip metadata bit",
    "truncate metadata",
    "swap payloads",
    "metadata of another key",
    "older format version",
    "stray temporary file",
    "garbled latest pointer",
    "garbled lock file",
];

/// Every file of the folders of `targets`, to put back after a damage.
type Snapshot = Vec<(PathBuf, HashMap<PathBuf, Vec<u8>>)>;

fn snapshot(dir: &Path, targets: &[Target]) -> Snapshot {
    let mut folders: Vec<PathBuf> = targets
        .iter()
        .map(|t| LocalStore::new(dir).stage_dir(&t.stage()))
        .collect();
    folders.dedup();
    folders
        .into_iter()
        .map(|folder| {
            let files = fs::read_dir(&folder)
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| (e.path(), fs::read(e.path()).unwrap()))
                .collect();
            (folder, files)
        })
        .collect()
}

fn restore(snapshot: &Snapshot) {
    for (folder, files) in snapshot {
        for entry in fs::read_dir(folder).unwrap().filter_map(Result::ok) {
            if !files.contains_key(&entry.path()) {
                fs::remove_file(entry.path()).unwrap();
            }
        }
        for (path, bytes) in files {
            if fs::read(path).ok().as_ref() != Some(bytes) {
                fs::write(path, bytes).unwrap();
            }
        }
    }
}

/// Applies damage `kind` to the entry of `targets[i]`; returns what it must lead to and the
/// targets it touched.
#[allow(clippy::too_many_lines, reason = "one short arm per kind of damage")]
fn damage(
    dir: &Path,
    targets: &[Target],
    i: usize,
    kind: &str,
    rng: &mut Rng,
) -> (Expect, Vec<Target>) {
    let target = targets[i];
    let key = target.key(dir);
    let (payload, meta) = entry_files(dir, &target.stage(), &key, target.extension());
    let folder = LocalStore::new(dir).stage_dir(&target.stage());
    let mut payload_bytes = fs::read(&payload).unwrap();
    let mut meta_bytes = fs::read(&meta).unwrap();
    match kind {
        "truncate payload" => {
            payload_bytes.truncate(rng.below(payload_bytes.len()));
            fs::write(&payload, payload_bytes).unwrap();
        }
        "extend payload" => {
            let n = 1 + rng.below(16);
            payload_bytes.extend(rng.bytes(n));
            fs::write(&payload, payload_bytes).unwrap();
        }
        "flip payload bit" => {
            let at = rng.below(payload_bytes.len());
            payload_bytes[at] ^= 1 << rng.below(8);
            fs::write(&payload, payload_bytes).unwrap();
        }
        "damage a length field" => {
            // bincode starts with the length of the outer value; Parquet ends with the
            // footer's length and its magic.
            let len = payload_bytes.len();
            let at = if target.extension() == "bin" {
                rng.below(9.min(len))
            } else {
                len - 1 - rng.below(8)
            };
            let byte = match rng.below(4) {
                0 => 0xFD,
                1 => 0xFF,
                _ => rng.byte(),
            };
            if payload_bytes[at] == byte {
                return (Expect::Harmless, vec![target]);
            }
            payload_bytes[at] = byte;
            fs::write(&payload, payload_bytes).unwrap();
        }
        "overwrite payload byte" => {
            let at = rng.below(payload_bytes.len());
            payload_bytes[at] =
                payload_bytes[at].wrapping_add(1 + u8::try_from(rng.below(255)).unwrap());
            fs::write(&payload, payload_bytes).unwrap();
        }
        "delete payload" => fs::remove_file(&payload).unwrap(),
        "delete metadata" => fs::remove_file(&meta).unwrap(),
        "random metadata" => {
            let n = rng.below(meta_bytes.len() * 2);
            fs::write(&meta, rng.bytes(n)).unwrap();
        }
        "flip metadata bit" => {
            let at = rng.below(meta_bytes.len());
            let before = meta_bytes[at];
            meta_bytes[at] ^= 1 << rng.below(8);
            fs::write(&meta, &meta_bytes).unwrap();
            let after = meta_bytes[at];
            if before.is_ascii_hexdigit()
                && after.is_ascii_hexdigit()
                && before.eq_ignore_ascii_case(&after)
            {
                return (Expect::Either, vec![target]);
            }
        }
        "truncate metadata" => {
            meta_bytes.truncate(rng.below(meta_bytes.len()));
            fs::write(&meta, meta_bytes).unwrap();
        }
        "swap payloads" => {
            let others: Vec<Target> = targets
                .iter()
                .copied()
                .filter(|t| *t != target && t.extension() == target.extension())
                .collect();
            let with = others[rng.below(others.len())];
            let (with_payload, _) =
                entry_files(dir, &with.stage(), &with.key(dir), with.extension());
            let with_bytes = fs::read(&with_payload).unwrap();
            assert_ne!(
                with_bytes, payload_bytes,
                "two entries with the same payload"
            );
            fs::write(&with_payload, &payload_bytes).unwrap();
            fs::write(&payload, with_bytes).unwrap();
            return (Expect::Detected, vec![target, with]);
        }
        "metadata of another key" => {
            let with = targets[(i + 1 + rng.below(targets.len() - 1)) % targets.len()];
            let (_, with_meta) = entry_files(dir, &with.stage(), &with.key(dir), with.extension());
            fs::copy(with_meta, &meta).unwrap();
        }
        "older format version" => {
            let text = String::from_utf8(meta_bytes).unwrap();
            assert!(text.starts_with(r#"{"format":1,"#), "{text}");
            fs::write(
                &meta,
                text.replacen(r#"{"format":1,"#, r#"{"format":0,"#, 1),
            )
            .unwrap();
        }
        "stray temporary file" => {
            let content = match rng.below(3) {
                0 => {
                    let n = rng.below(4096);
                    rng.bytes(n)
                }
                1 => payload_bytes[..rng.below(payload_bytes.len())].to_vec(),
                _ => meta_bytes,
            };
            let name = format!(
                ".tmp-{}-{}-{}",
                std::process::id(),
                rng.next() % 1000,
                rng.next() % 1_000_000_000
            );
            fs::write(folder.join(name), content).unwrap();
            return (Expect::Harmless, vec![target]);
        }
        "garbled latest pointer" => {
            let n = rng.below(80);
            fs::write(folder.join("latest"), rng.bytes(n)).unwrap();
            return (Expect::Harmless, vec![target]);
        }
        "garbled lock file" => {
            let n = rng.below(80);
            fs::write(folder.join(format!("{}.lock", key.to_hex())), rng.bytes(n)).unwrap();
            return (Expect::Harmless, vec![target]);
        }
        _ => unreachable!("unknown damage {kind}"),
    }
    (Expect::Detected, vec![target])
}

#[test]
fn damaged_entries_are_recomputed_and_never_returned() {
    let _watchdog = Watchdog::new("corruption test", Duration::from_secs(300));
    let started = Instant::now();
    let dir = cache_dir();
    let dir = dir.path();
    let targets = [
        Target::Nums(500, 1),
        Target::Nums(500, 2),
        Target::Nums(3000, 3),
        Target::Words(40),
        // 1 MiB or more: payloads whose checksum is computed on several threads.
        Target::Text(1_200_000),
        Target::Blob(1_500_000, 4),
        Target::Rows(100, 5),
        Target::Rows(100, 6),
        Target::Rows(2000, 7),
        Target::Rows(50_000, 8),
    ];
    let expected: Vec<Expected> = targets.iter().map(|t| t.expected()).collect();
    for (t, e) in targets.iter().zip(&expected) {
        assert_eq!(t.check(dir, e), Seen::Computed);
        assert_eq!(t.check(dir, e), Seen::Loaded);
    }
    let big_parquet = targets.len() - 1;
    let parquet_over_1mib = fs::metadata(
        entry_files(
            dir,
            &targets[big_parquet].stage(),
            &targets[big_parquet].key(dir),
            "parquet",
        )
        .0,
    )
    .unwrap()
    .len();
    assert!(
        parquet_over_1mib >= 1 << 20,
        "the large Parquet payload has {parquet_over_1mib} bytes"
    );

    let mut rng = Rng::new(0x0BAD_5EED);
    // kind -> [applied, detected (recomputed), loaded]
    let mut counts: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for _ in 0..MUTATIONS {
        // The large Parquet entry is slow to rewrite in a debug build: damaged less often.
        let i = if rng.below(100) < 3 {
            big_parquet
        } else {
            rng.below(big_parquet)
        };
        let kind = KINDS[rng.below(KINDS.len())];
        let before = snapshot(dir, &targets);
        let (expect, touched) = damage(dir, &targets, i, kind, &mut rng);
        for t in touched {
            let e = &expected[targets.iter().position(|x| *x == t).unwrap()];
            let outcome = t.check(dir, e);
            match (expect, outcome) {
                (Expect::Detected, Seen::Loaded) => panic!("{kind} on {t:?} was not detected"),
                (Expect::Harmless, Seen::Computed) => {
                    panic!("{kind} on {t:?} is harmless, yet it recomputed")
                }
                _ => {}
            }
            let c = counts.entry(kind).or_default();
            c[0] += 1;
            c[1 + usize::from(outcome == Seen::Loaded)] += 1;
        }
        restore(&before);
    }
    for (t, e) in targets.iter().zip(&expected) {
        assert_eq!(t.check(dir, e), Seen::Loaded, "{t:?} after the damages");
    }

    let total: [usize; 3] = counts
        .values()
        .fold([0; 3], |a, c| [a[0] + c[0], a[1] + c[1], a[2] + c[2]]);
    eprintln!(
        "corruption: {MUTATIONS} damages ({} entry checks): {} detected and recomputed, {} loaded (harmless), \
         no wrong value; {:.1?}",
        total[0],
        total[1],
        total[2],
        started.elapsed()
    );
    for (kind, [applied, detected, loaded]) in &counts {
        eprintln!("corruption:   {kind}: {applied} checks, {detected} recomputed, {loaded} loaded");
    }
}

#[stage(cache = bincode)]
fn c_text(len: usize) -> String {
    text(len)
}

fn text(len: usize) -> String {
    "abcdefghij".repeat(len / 10)
}

/// The smallest case of a bug these tests found: a payload of 1 MiB or more was decoded
/// while its checksum was being checked, so a damaged string length made bincode allocate
/// about 7 * 10^18 bytes, and the process aborted ("memory allocation failed") instead of
/// recomputing the entry. Payloads are now checked before they are decoded.
#[test]
fn a_damaged_length_in_a_large_entry_is_recomputed_not_a_crash() {
    let dir = cache_dir();
    let dir = dir.path();
    let len = 1_500_000; // over 1 MiB
    assert_eq!(seen(&run(dir, || c_text(len)).1), Seen::Computed);
    let key = Config::from_env()
        .dir(dir)
        .scope(|| stage::inspect::key::<c_text>((len,)))
        .unwrap();
    let (payload, _) = entry_files(dir, &stage_path("c_text"), &key, "bin");
    let mut bytes = fs::read(&payload).unwrap();
    // bincode's varint: 0xFC then a 4-byte length; 0xFD says an 8-byte length follows, so
    // the length read is 4 bytes of length and 4 bytes of text: about 7 * 10^18.
    assert_eq!(bytes[0], 0xFC);
    bytes[0] = 0xFD;
    fs::write(&payload, bytes).unwrap();
    let (v, log) = run(dir, || c_text(len));
    assert_eq!(v.unwrap(), text(len));
    assert_eq!(seen(&log), Seen::Computed);
}

// ---------------------------------------------------------------------------------------
// 3. Many threads and processes asking for the same keys: each body runs once per key

/// How many times each `(cache folder, key)` body of `conc_slow` ran in this process.
static RUNS: LazyLock<Mutex<HashMap<(PathBuf, u64), usize>>> = LazyLock::new(Mutex::default);

#[stage(cache = bincode)]
fn conc_slow(k: u64) -> Vec<u64> {
    std::thread::sleep(Duration::from_millis(5));
    let folder = Config::current().cache_dir().to_path_buf();
    *RUNS.lock().unwrap().entry((folder, k)).or_default() += 1;
    vec![k; 1000]
}

#[test]
fn threads_asking_for_the_same_keys_run_each_body_once() {
    const THREADS: u64 = 16;
    const CALLS: u64 = 50;
    const KEYS: u64 = 5;
    let _watchdog = Watchdog::new("thread concurrency test", Duration::from_secs(120));
    let started = Instant::now();
    let dir = cache_dir();
    let loaded = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(std::sync::Barrier::new(usize::try_from(THREADS).unwrap()));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let dir = dir.path().to_path_buf();
            let loaded = Arc::clone(&loaded);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                for i in 0..CALLS {
                    let k = (t + i) % KEYS;
                    let (v, log) = run(&dir, || conc_slow(k));
                    assert_eq!(v.unwrap(), vec![k; 1000], "thread {t}, call {i}");
                    if seen(&log) == Seen::Loaded {
                        loaded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let runs: BTreeMap<u64, usize> = RUNS
        .lock()
        .unwrap()
        .iter()
        .filter(|((folder, _), _)| folder == dir.path())
        .map(|((_, k), n)| (*k, *n))
        .collect();
    eprintln!(
        "threads: {THREADS} threads x {CALLS} calls over {KEYS} keys: body runs per key {runs:?}, {} calls loaded; {:.1?}",
        loaded.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert_eq!(
        runs,
        (0..KEYS).map(|k| (k, 1)).collect::<BTreeMap<_, _>>(),
        "each body once"
    );
    assert_eq!(
        loaded.load(Ordering::Relaxed),
        usize::try_from(THREADS * CALLS - KEYS).unwrap()
    );
}

#[stage(cache = bincode)]
fn shared_slow(k: u64) -> std::io::Result<Vec<u64>> {
    let log = std::env::var("RELIABILITY_SHARED_LOG").map_err(std::io::Error::other)?;
    let mut log = fs::OpenOptions::new().append(true).create(true).open(log)?;
    log.write_all(format!("{k}\n").as_bytes())?;
    std::thread::sleep(Duration::from_millis(20));
    Ok(vec![k; 1000])
}

#[test]
#[ignore = "run as a child process by `processes_sharing_a_cache_run_each_body_once`"]
fn shared_child_entry() {
    let Ok(dir) = std::env::var("RELIABILITY_SHARED_DIR") else {
        return;
    };
    let process: u64 = std::env::var("RELIABILITY_SHARED_PROCESS")
        .unwrap()
        .parse()
        .unwrap();
    // All start together: the parent creates `go` once every process is running.
    let go = Path::new(&dir).with_file_name("go");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !go.exists() {
        assert!(Instant::now() < deadline, "never told to go");
        std::thread::sleep(Duration::from_millis(1));
    }
    let (mut computed, mut loaded) = (0, 0);
    for i in 0..SHARED_RUNS {
        // Groups of processes ask for the same key at the same moment.
        let k = (i + process % 3) % SHARED_KEYS;
        let (v, log) = run(Path::new(&dir), || shared_slow(k));
        assert_eq!(v.unwrap(), vec![k; 1000], "process {process}, run {i}");
        match seen(&log) {
            Seen::Computed => computed += 1,
            Seen::Loaded => loaded += 1,
        }
    }
    println!("SHARED COMPUTED={computed} LOADED={loaded}");
}

const SHARED_PROCESSES: u64 = 8;
const SHARED_RUNS: u64 = 50;
const SHARED_KEYS: u64 = 10;

#[test]
fn processes_sharing_a_cache_run_each_body_once() {
    let _watchdog = Watchdog::new("process concurrency test", Duration::from_secs(180));
    let started = Instant::now();
    let dir = cache_dir();
    let cache = dir.path().join("cache");
    let body_log = dir.path().join("bodies.log");
    let children: Vec<Child> = (0..SHARED_PROCESSES)
        .map(|p| {
            child("shared_child_entry")
                .env("RELIABILITY_SHARED_DIR", &cache)
                .env("RELIABILITY_SHARED_PROCESS", p.to_string())
                .env("RELIABILITY_SHARED_LOG", &body_log)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    fs::write(dir.path().join("go"), b"").unwrap();
    let (mut computed, mut loaded) = (0, 0);
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let at = stdout
            .find("SHARED ")
            .unwrap_or_else(|| panic!("no counts: {stdout}"));
        let counts = stdout[at..].lines().next().unwrap();
        let n = |name: &str| -> u64 {
            let start = counts.find(name).unwrap() + name.len();
            counts[start..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        computed += n("COMPUTED=");
        loaded += n("LOADED=");
    }
    let mut runs: BTreeMap<u64, usize> = BTreeMap::new();
    for line in fs::read_to_string(&body_log).unwrap().lines() {
        *runs.entry(line.parse().unwrap()).or_default() += 1;
    }
    eprintln!(
        "processes: {SHARED_PROCESSES} processes x {SHARED_RUNS} runs over {SHARED_KEYS} keys: body runs per key {runs:?}, \
         {computed} computed and {loaded} loaded; {:.1?}",
        started.elapsed()
    );
    assert_eq!(
        runs,
        (0..SHARED_KEYS).map(|k| (k, 1)).collect::<BTreeMap<_, _>>(),
        "each body once"
    );
    assert_eq!(
        (computed, loaded),
        (SHARED_KEYS, SHARED_PROCESSES * SHARED_RUNS - SHARED_KEYS)
    );
}

// ---------------------------------------------------------------------------------------
// 4. Caches that cannot be written, or were written by another format version

/// A file system mounted by a test, unmounted when dropped.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        if !succeeds("umount", &[self.0.as_os_str()]) {
            eprintln!(
                "could not unmount {}; trying a lazy unmount",
                self.0.display()
            );
            succeeds("umount", &["-l".as_ref(), self.0.as_os_str()]);
        }
    }
}

fn succeeds(program: &str, args: &[&std::ffi::OsStr]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Mounts a tmpfs with `options` on `dir`, when this process may (root, or a user
/// namespace). To exercise the fallbacks, `RELIABILITY_NO_MOUNT=tmpfs` pretends it may
/// not mount a tmpfs, and `RELIABILITY_NO_MOUNT=1` that it may not mount at all.
fn mount_tmpfs(dir: &Path, options: &str) -> Option<Mount> {
    if std::env::var_os("RELIABILITY_NO_MOUNT").is_some() {
        return None;
    }
    succeeds(
        "mount",
        &[
            "-t".as_ref(),
            "tmpfs".as_ref(),
            "-o".as_ref(),
            options.as_ref(),
            "tmpfs".as_ref(),
            dir.as_os_str(),
        ],
    )
    .then(|| Mount(dir.to_path_buf()))
}

fn remount(dir: &Path, options: &str) -> bool {
    succeeds(
        "mount",
        &[
            "-o".as_ref(),
            format!("remount,{options}").as_ref(),
            dir.as_os_str(),
        ],
    )
}

/// Makes `dir` (already holding a cache) read-only: a read-only bind mount of itself.
fn bind_read_only(dir: &Path) -> Option<Mount> {
    if std::env::var_os("RELIABILITY_NO_MOUNT").is_some_and(|v| v != "tmpfs") {
        return None;
    }
    if !succeeds(
        "mount",
        &["--bind".as_ref(), dir.as_os_str(), dir.as_os_str()],
    ) {
        return None;
    }
    let mount = Mount(dir.to_path_buf());
    remount(dir, "bind,ro").then_some(mount)
}

#[stage(cache = bincode)]
fn fault_values(n: u64) -> Vec<u64> {
    (0..n * 100).collect()
}

fn values(n: u64) -> Vec<u64> {
    (0..n * 100).collect()
}

#[test]
fn a_read_only_cache_folder_is_read_and_values_still_come_back() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    fs::create_dir(&cache).unwrap();
    // A read-only tmpfs, filled first; else the folder bind-mounted read-only onto itself.
    let tmpfs = mount_tmpfs(&cache, "size=4m");
    assert_eq!(run(&cache, || fault_values(1)).0.unwrap(), values(1));
    let (mount, how) = if let Some(mount) = tmpfs {
        assert!(remount(&cache, "ro"), "cannot remount the tmpfs read-only");
        (mount, "a read-only tmpfs")
    } else {
        let Some(mount) = bind_read_only(&cache) else {
            eprintln!(
                "read-only: SKIPPED: this process can neither mount a tmpfs nor bind-mount read-only"
            );
            return;
        };
        (mount, "a read-only bind mount")
    };
    let probe = fs::write(cache.join("probe"), b"x");
    assert!(probe.is_err(), "the folder is still writable");

    let (v, log) = run(&cache, || fault_values(1));
    assert_eq!(v.unwrap(), values(1));
    assert_eq!(
        seen(&log),
        Seen::Loaded,
        "an entry in a read-only cache is read"
    );

    let (v, log) = run(&cache, || fault_values(2));
    assert_eq!(v.unwrap(), values(2));
    assert_eq!(log.computed(), ["fault_values"]);
    assert_eq!(log.warnings().len(), 1, "{:?}", log.warnings());
    assert!(
        log.warnings()[0].contains("fault_values"),
        "{:?}",
        log.warnings()
    );
    let warning = log.warnings()[0].to_owned();

    let strict = Config::from_env()
        .dir(&cache)
        .strict(true)
        .scope(|| fault_values(2));
    assert!(
        matches!(strict, Err(stage::Error::Save { .. })),
        "{strict:?}"
    );
    drop(mount);
    eprintln!(
        "read-only: {how}: an existing entry loaded; a new value returned with the warning \
         \"{warning}\"; strict: {}; {:.1?}",
        strict.unwrap_err(),
        started.elapsed()
    );
}

/// Size of the small file system, or of the file-size limit, in the full-disk test.
const FULL_BYTES: usize = 64 * 1024;

/// The full-disk checks in `cache`, a folder where no file can grow past [`FULL_BYTES`]:
/// a small entry is saved, a large one is returned with a warning and leaves nothing
/// behind, and in strict mode it is an error. Returns the warning.
fn full_disk_checks(cache: &Path) -> String {
    let (v, log) = run(cache, || c_nums(100, 1));
    assert_eq!(v.unwrap(), numbers(100, 1));
    assert_eq!(seen(&log), Seen::Computed, "a small entry fits");
    assert_eq!(seen(&run(cache, || c_nums(100, 1)).1), Seen::Loaded);

    let n = FULL_BYTES; // 9 bytes each: far too large
    let (v, log) = run(cache, || c_nums(n, 2));
    assert!(v.unwrap() == numbers(n, 2), "a wrong value");
    assert_eq!(log.computed(), ["c_nums"]);
    assert_eq!(log.warnings().len(), 1, "{:?}", log.warnings());
    let warning = log.warnings()[0].to_owned();
    assert!(warning.contains("c_nums"), "{warning}");
    let key = Config::from_env()
        .dir(cache)
        .scope(|| stage::inspect::key::<c_nums>((n, 2)))
        .unwrap();
    let (payload, meta) = entry_files(cache, &stage_path("c_nums"), &key, "bin");
    assert!(
        !payload.exists() && !meta.exists(),
        "a failed write left an entry"
    );
    assert!(
        temporaries(&LocalStore::new(cache).stage_dir(&stage_path("c_nums"))).is_empty(),
        "a failed write left a temporary file"
    );

    let strict = Config::from_env()
        .dir(cache)
        .strict(true)
        .scope(|| c_nums(n, 2));
    assert!(
        matches!(strict, Err(stage::Error::Save { .. })),
        "{strict:?}"
    );
    // The small entry is still intact.
    assert_eq!(seen(&run(cache, || c_nums(100, 1)).1), Seen::Loaded);
    warning
}

#[test]
#[ignore = "run as a child process under a file-size limit by `a_full_disk_returns_the_value_with_a_warning`"]
fn full_disk_child_entry() {
    let Ok(dir) = std::env::var("RELIABILITY_FULL_DIR") else {
        return;
    };
    let warning = full_disk_checks(Path::new(&dir));
    println!("FULL_DISK_OK {warning}");
}

#[test]
fn a_full_disk_returns_the_value_with_a_warning() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    fs::create_dir(&cache).unwrap();
    let n = FULL_BYTES;
    let (how, warning) = if let Some(mount) = mount_tmpfs(&cache, &format!("size={FULL_BYTES}")) {
        let warning = full_disk_checks(&cache);
        // Room again: the same call saves its entry.
        assert!(remount(&cache, "size=16m"), "cannot grow the tmpfs");
        assert_eq!(seen(&run(&cache, || c_nums(n, 2)).1), Seen::Computed);
        assert_eq!(seen(&run(&cache, || c_nums(n, 2)).1), Seen::Loaded);
        drop(mount);
        ("a 64 KiB tmpfs", warning)
    } else {
        // No mount: the same checks in a child process whose files cannot grow past the
        // limit (SIGXFSZ ignored, so a write fails with EFBIG instead of killing it).
        let script = format!(
            "trap '' XFSZ; exec prlimit --fsize={FULL_BYTES} \"$0\" --ignored --exact full_disk_child_entry --nocapture --test-threads=1"
        );
        let out = Command::new("sh")
            .args([
                "-c".as_ref(),
                script.as_ref(),
                std::env::current_exe().unwrap().as_os_str(),
            ])
            .env("RELIABILITY_FULL_DIR", &cache)
            .output();
        let Ok(out) = out else {
            eprintln!("full disk: SKIPPED: no mount, and no `sh` to run `prlimit`");
            return;
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !stdout.contains("running 1 test") {
            eprintln!("full disk: SKIPPED: no mount, and `prlimit` failed: {stderr}");
            return;
        }
        assert!(out.status.success(), "{stdout}\n{stderr}");
        let at = stdout
            .find("FULL_DISK_OK ")
            .unwrap_or_else(|| panic!("{stdout}"));
        let warning = stdout[at + "FULL_DISK_OK ".len()..]
            .lines()
            .next()
            .unwrap()
            .to_owned();
        // Without the limit, the same call saves its entry.
        assert_eq!(seen(&run(&cache, || c_nums(n, 2)).1), Seen::Computed);
        assert_eq!(seen(&run(&cache, || c_nums(n, 2)).1), Seen::Loaded);
        ("a child process limited to 64 KiB files (prlimit)", warning)
    };
    eprintln!(
        "full disk: {how}: the value came back with the warning \"{warning}\", no entry or \
         temporary file left, strict mode an error; saved once there was room; {:.1?}",
        started.elapsed()
    );
}

#[derive(serde::Deserialize)]
struct RawMeta<'a> {
    format: u32,
    checksum: String,
    #[serde(borrow)]
    entry: &'a serde_json::value::RawValue,
}

#[test]
fn an_entry_of_another_format_version_is_a_miss_not_an_error() {
    let started = Instant::now();
    let dir = cache_dir();
    let cache = dir.path();
    assert_eq!(seen(&run(cache, || fault_values(7)).1), Seen::Computed);
    let key = Config::from_env()
        .dir(cache)
        .scope(|| stage::inspect::key::<fault_values>((7,)))
        .unwrap();
    let (_, meta) = entry_files(cache, &stage_path("fault_values"), &key, "bin");
    let mut outcomes = Vec::new();
    for other in [0, 2, 99] {
        let text = fs::read_to_string(&meta).unwrap();
        assert!(text.starts_with(r#"{"format":1,"#), "{text}");
        let edited = text.replacen(r#"{"format":1,"#, &format!(r#"{{"format":{other},"#), 1);
        // The checksum covers the entry part only: the edited file is intact but for its
        // format, so the format alone makes it a miss.
        let parsed: RawMeta<'_> = serde_json::from_str(&edited).unwrap();
        assert_eq!(parsed.format, other);
        assert_eq!(
            Digest::of(parsed.entry.get().as_bytes()).to_hex(),
            parsed.checksum
        );
        fs::write(&meta, &edited).unwrap();

        let (v, log) = run(cache, || fault_values(7));
        assert_eq!(v.unwrap(), values(7), "format {other}");
        assert_eq!(
            seen(&log),
            Seen::Computed,
            "an entry of format {other} was read"
        );
        assert_eq!(
            log.reason("fault_values"),
            Some(&stage::Reason::Format),
            "format {other}"
        );
        outcomes.push(format!(
            "format {other}: recomputed ({})",
            log.reason("fault_values").unwrap()
        ));
        assert!(
            fs::read_to_string(&meta)
                .unwrap()
                .starts_with(r#"{"format":1,"#),
            "not replaced"
        );
        assert_eq!(seen(&run(cache, || fault_values(7)).1), Seen::Loaded);
    }
    eprintln!(
        "format: {}, then loaded; {:.1?}",
        outcomes.join(", "),
        started.elapsed()
    );
}
