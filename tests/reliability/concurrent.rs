//! Many threads and processes asking for the same keys: each body runs once per key.

use super::*;

/// How many times each `(cache folder, key)` body of `conc_slow` ran in this process.
static RUNS: LazyLock<Mutex<HashMap<(PathBuf, u64), usize>>> = LazyLock::new(Mutex::default);

#[stage(cache = bincode, untracked = [RUNS])]
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
            child("concurrent::shared_child_entry")
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
