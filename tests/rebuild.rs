//! Edits a real user crate, rebuilds it and checks exactly which stages ran.
//!
//! The fixture in `tests/fixtures/rebuild` is copied to a temporary folder and built with
//! its own target folder under `target/` (kept between runs, so rebuilds are incremental).
//! After each edit the fixture is rebuilt and run; then the edit is undone, and the run
//! after that must compute nothing: the old entries are still there.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

struct Fixture {
    dir: tempfile::TempDir,
    original: String,
}

impl Fixture {
    fn new() -> Fixture {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        let manifest = fs::read_to_string(root.join("tests/fixtures/rebuild/Cargo.toml")).unwrap();
        let stage_path = root.display().to_string().replace('\\', "/");
        fs::write(
            dir.path().join("Cargo.toml"),
            manifest.replace("@STAGE_PATH@", &stage_path),
        )
        .unwrap();
        fs::copy(root.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
        fs::create_dir(dir.path().join("src")).unwrap();
        let original = fs::read_to_string(root.join("tests/fixtures/rebuild/src/main.rs")).unwrap();
        fs::write(dir.path().join("input.txt"), "1 2 3 4").unwrap();
        let fixture = Fixture { dir, original };
        fixture.write_source(&fixture.original);
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_source(&self, source: &str) {
        fs::write(self.path("src/main.rs"), source).unwrap();
    }

    /// The original source with `from` replaced by `to` (which must occur exactly once).
    fn edit(&self, from: &str, to: &str) {
        assert_eq!(
            self.original.matches(from).count(),
            1,
            "`{from}` must occur once in the fixture"
        );
        self.write_source(&self.original.replacen(from, to, 1));
    }

    fn revert(&self) {
        self.write_source(&self.original);
    }

    /// Builds the fixture; returns what the compiler printed (its warnings).
    fn build(&self) -> String {
        let build = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--manifest-path"])
            .arg(self.path("Cargo.toml"))
            .env("CARGO_TARGET_DIR", target())
            .env_remove("RUSTFLAGS")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&build.stderr).into_owned();
        assert!(
            build.status.success(),
            "the fixture did not build:\n{stderr}"
        );
        stderr
    }

    /// The run log of the last run: one line per stage, with the reason of each computed one.
    fn reasons(&self) -> String {
        fs::read_to_string(self.path("reasons.log")).unwrap()
    }

    /// Builds and runs the fixture; returns the stages whose bodies ran, sorted.
    fn run(&self) -> Vec<String> {
        self.build();
        let log = self.path("ran.log");
        let _ = fs::remove_file(&log);
        let out = Command::new(target().join("debug/rebuild-fixture"))
            .current_dir(self.dir.path())
            .env("STAGE_DIR", self.path("cache"))
            .env("FIXTURE_LOG", &log)
            .env("FIXTURE_REASONS", self.path("reasons.log"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the fixture failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut ran: Vec<String> = fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        ran.sort();
        ran
    }
}

fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixture")
}

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

const ALL: &[&str] = &[
    "bucketed",
    "combine",
    "histogram",
    "parse",
    "report",
    "scaled",
    "stats",
];

/// (what, from, to, stages whose bodies run, a line the run log must show)
const CODE_EDITS: &[(&str, &str, &str, &[&str], &str)] = &[
    (
        "whitespace",
        "    ran!(\"stats\");\n",
        "\n      ran!( \"stats\" ) ;\n\n",
        &[],
        "",
    ),
    (
        "a // comment",
        "    ran!(\"stats\");\n",
        "    ran!(\"stats\"); // counted\n",
        &[],
        "",
    ),
    (
        "a doc comment",
        "/// Totals the numbers.\n",
        "/// Totals the numbers, all of them.\n",
        &[],
        "",
    ),
    // The same output: `report` is cut off.
    (
        "one token in a body",
        "b.total, b.count)",
        "b.total, b.count + 0)",
        &["combine"],
        "code changed",
    ),
    // The same output: `combine` is cut off.
    (
        "one token in a body, mid-DAG",
        "Stats { total: xs.iter().sum(), count",
        "Stats { total: xs.iter().sum::<i64>(), count",
        &["stats"],
        "",
    ),
    (
        "one token in the attribute",
        "name = \"stats\"",
        "name = \"totals\"",
        &["stats"],
        "",
    ),
    (
        "a tracked helper's body",
        "    x * 2\n",
        "    x * 3\n",
        &["scaled", "combine", "report"],
        "tracked `rebuild_fixture::scale`",
    ),
    (
        "a field added to the output type",
        "    pub count: u64,\n}",
        "    pub count: u64,\n    pub extra: Option<u8>,\n}",
        &["stats", "combine"],
        "",
    ),
    (
        "the version salt",
        "cache = bincode, uses = [scale])",
        "cache = bincode, uses = [scale], version = \"2\")",
        &["scaled"],
        "",
    ),
    (
        "a tracked const used directly",
        "const BUCKETS: [i64; 2] = [2, 4];",
        "const BUCKETS: [i64; 2] = [2, 3];",
        &["bucketed", "report"],
        "tracked `rebuild_fixture::BUCKETS`",
    ),
    (
        "a const of a pipeline module, used through a helper of that module",
        "const EDGES: [i64; 2] = [1, 3];",
        "const EDGES: [i64; 2] = [1, 2];",
        &["histogram", "report"],
        "tracked `rebuild_fixture::steps::EDGES`",
    ),
    (
        "a helper fn of a pipeline module",
        "x > **e",
        "x >= **e",
        &["histogram", "report"],
        "tracked `rebuild_fixture::steps::bin`",
    ),
    (
        "a stage's output",
        ".filter_map(|w| w.parse().ok()).collect()",
        ".filter_map(|w| w.parse().ok()).chain([9]).collect()",
        ALL,
        "",
    ),
];

/// The build warns about the untracked const, and about nothing that is tracked.
fn check_warnings(f: &Fixture) {
    let warnings = f.build();
    assert!(
        warnings.contains("`LABEL` is not tracked: a change to it will not recompute `report`"),
        "no warning for the untracked const:\n{warnings}"
    );
    for tracked in ["BUCKETS", "EDGES", "bin", "scale"] {
        assert!(
            !warnings.contains(&format!("`{tracked}` is not tracked")),
            "a warning for tracked `{tracked}`:\n{warnings}"
        );
    }
}

#[test]
fn every_edit_recomputes_exactly_what_it_should() {
    let f = Fixture::new();
    check_warnings(&f);
    assert_eq!(f.run(), names(ALL), "cold run");
    assert_eq!(f.run(), names(&[]), "second run");

    for (what, from, to, expected, reason) in CODE_EDITS {
        if *what == "a field added to the output type" {
            f.edit(from, to);
            let edited = fs::read_to_string(f.path("src/main.rs")).unwrap();
            f.write_source(&edited.replace(
                "count: xs.len() as u64 }",
                "count: xs.len() as u64, extra: None }",
            ));
        } else {
            f.edit(from, to);
        }
        assert_eq!(f.run(), names(expected), "after {what}");
        let log = f.reasons();
        assert!(
            log.contains(reason),
            "after {what}, no `{reason}` in:\n{log}"
        );
        f.revert();
        assert_eq!(f.run(), names(&[]), "after undoing {what}");
    }

    fs::write(f.path("input.txt"), "1 2 3 4 5").unwrap();
    assert_eq!(f.run(), names(ALL), "after the raw file changed");
    fs::write(f.path("input.txt"), "1 2 3 4").unwrap();
    assert_eq!(f.run(), names(&[]), "after the raw file changed back");

    let input = fs::File::options()
        .write(true)
        .open(f.path("input.txt"))
        .unwrap();
    input
        .set_modified(SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    drop(input);
    assert_eq!(f.run(), names(&[]), "after the raw file was only touched");
}
