//! A writer killed at random moments never leaves an entry that reads back wrong.

use super::*;

/// Size of `crash_big`'s value, and of its payload.
const BIG_BYTES: usize = 8 << 20;
/// Rows of `crash_table`'s value.
const TABLE_ROWS: usize = 4000;
/// How many times the writer is killed.
const KILLS: usize = 200;

#[stage(cache = bincode, untracked = [blob, BIG_BYTES])]
fn crash_big(seed: u64) -> Blob {
    blob(BIG_BYTES, seed)
}

#[stage(cache = parquet, untracked = [table_value, TABLE_ROWS])]
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
    let big = stage_path!("crash_big");
    let table = stage_path!("crash_table");
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
        let (payload, meta) = entry_files(dir, &stage_path!(stage), &key, extension);
        let _ = fs::remove_file(meta);
        let _ = fs::remove_file(payload);
    }
}

/// Removes what killed writers left: the store itself does so after an hour.
fn remove_temporaries(dir: &Path) {
    for stage in ["crash_big", "crash_table"] {
        for tmp in temporaries(&LocalStore::new(dir).stage_dir(&stage_path!(stage))) {
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
        let mut writer = child("killed::crash_child_entry")
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
    let out = child("killed::crash_verify_entry")
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
