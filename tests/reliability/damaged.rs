//! Damaged entries are recomputed, harmless changes are not, a wrong value never returns.

use super::*;

/// How many damages are applied, one at a time.
const MUTATIONS: usize = 1000;

#[stage(cache = bincode, untracked = [numbers])]
fn c_nums(n: usize, seed: u64) -> Vec<u64> {
    numbers(n, seed)
}

#[stage(cache = bincode, untracked = [words])]
fn c_words(n: usize) -> Vec<String> {
    words(n)
}

#[stage(cache = bincode, untracked = [blob])]
fn c_blob(len: usize, seed: u64) -> Blob {
    blob(len, seed)
}

#[stage(cache = parquet, untracked = [table_value])]
fn c_rows(n: usize, seed: u64) -> RecordBatch {
    table_value(n, seed)
}

#[stage(cache = parquet, untracked = [batches_value])]
fn c_batches(n: usize, seed: u64) -> Vec<RecordBatch> {
    batches_value(n, seed)
}

#[stage(cache = arrow, untracked = [batches_value])]
fn c_ipc(n: usize, seed: u64) -> Vec<RecordBatch> {
    batches_value(n, seed)
}

/// A table of `n` rows in three batches.
fn batches_value(n: usize, seed: u64) -> Vec<RecordBatch> {
    let table = table_value(n, seed);
    let (a, b) = (n / 3, n / 2);
    vec![
        table.slice(0, a),
        table.slice(a, b - a),
        table.slice(b, n - b),
    ]
}

/// The rows of batches, as one batch.
fn rows_of(batches: &[RecordBatch]) -> RecordBatch {
    stage::arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
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
    /// Many batches as parquet.
    Batches(usize, u64),
    /// Many batches as Arrow IPC.
    Ipc(usize, u64),
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
        stage_path!(match self {
            Target::Nums(..) => "c_nums",
            Target::Words(..) => "c_words",
            Target::Text(..) => "c_text",
            Target::Blob(..) => "c_blob",
            Target::Rows(..) => "c_rows",
            Target::Batches(..) => "c_batches",
            Target::Ipc(..) => "c_ipc",
        })
    }

    fn extension(self) -> &'static str {
        match self {
            Target::Rows(..) | Target::Batches(..) => "parquet",
            Target::Ipc(..) => "arrow",
            _ => "bin",
        }
    }

    fn expected(self) -> Expected {
        match self {
            Target::Nums(n, seed) => Expected::Nums(numbers(n, seed)),
            Target::Words(n) => Expected::Words(words(n)),
            Target::Text(len) => Expected::Text(text(len)),
            Target::Blob(len, seed) => Expected::Blob(blob(len, seed)),
            Target::Rows(n, seed) | Target::Batches(n, seed) | Target::Ipc(n, seed) => {
                Expected::Rows(table_value(n, seed))
            }
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
                Target::Batches(n, seed) => stage::inspect::key::<c_batches>((n, seed)),
                Target::Ipc(n, seed) => stage::inspect::key::<c_ipc>((n, seed)),
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
            (Target::Batches(n, seed), Expected::Rows(want)) => {
                let (v, log) = run(dir, || c_batches(n, seed));
                (rows_of(&v.unwrap()) == *want, log)
            }
            (Target::Ipc(n, seed), Expected::Rows(want)) => {
                let (v, log) = run(dir, || c_ipc(n, seed));
                (rows_of(&v.unwrap()) == *want, log)
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
            // bincode starts with the length of the outer value; Parquet and Arrow IPC end
            // with the footer's length and their magic.
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
            assert!(text.starts_with(r#"{"format":2,"#), "{text}");
            fs::write(
                &meta,
                text.replacen(r#"{"format":2,"#, r#"{"format":1,"#, 1),
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
        Target::Batches(900, 9),
        Target::Batches(3000, 10),
        Target::Ipc(900, 11),
        Target::Ipc(3000, 12),
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

#[stage(cache = bincode, untracked = [text])]
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
    let (payload, _) = entry_files(dir, &stage_path!("c_text"), &key, "bin");
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

/// A payload checked whole is recognised by its stat on later hits; a change made after
/// that, even one that keeps the file's size and modification time, is seen through the
/// change time, and the entry is checked again and recomputed.
#[test]
fn a_payload_changed_after_it_was_recognised_is_checked_again() {
    let dir = cache_dir();
    let dir = dir.path();
    let expected = numbers(4000, 21);
    assert_eq!(seen(&run(dir, || c_nums(4000, 21)).1), Seen::Computed);
    // Past the two seconds in which a fresh payload is never recognised.
    std::thread::sleep(Duration::from_millis(2100));
    for _ in 0..3 {
        let (v, log) = run(dir, || c_nums(4000, 21));
        assert_eq!(v.unwrap(), expected);
        assert_eq!(seen(&log), Seen::Loaded);
    }
    let key = Config::from_env()
        .dir(dir)
        .scope(|| stage::inspect::key::<c_nums>((4000, 21)))
        .unwrap();
    let (payload, _) = entry_files(dir, &stage_path!("c_nums"), &key, "bin");
    let modified = fs::metadata(&payload).unwrap().modified().unwrap();
    let mut bytes = fs::read(&payload).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let file = fs::OpenOptions::new().write(true).open(&payload).unwrap();
    (&file).write_all(&bytes).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    let (v, log) = run(dir, || c_nums(4000, 21));
    assert_eq!(v.unwrap(), expected);
    assert_eq!(seen(&log), Seen::Computed);
}
