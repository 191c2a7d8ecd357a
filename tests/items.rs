//! Per-item stages and sweeps: one cached call per file or element, keyed by the element
//! and never by its position; reducers over all items; parameter grids.
//!
//! Bodies note what they ran in a thread-local log: the calls run with one job, so on the
//! test's own thread.

use std::cell::RefCell;
use std::fs;
use std::path::Path;

use stage::{Config, Items, RunLog, stage};

thread_local! {
    static RAN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn ran(what: impl Into<String>) {
    RAN.with(|r| r.borrow_mut().push(what.into()));
}

/// Runs `f` in `config` with one job, and returns its result, its log, and what the
/// bodies noted, sorted.
fn run<R>(config: &Config, f: impl FnOnce() -> R) -> (R, RunLog, Vec<String>) {
    RAN.with(|r| r.borrow_mut().clear());
    let (value, log) = config.clone().jobs(1).scope(|| stage::observe(f));
    let mut noted = RAN.with(|r| r.borrow_mut().split_off(0));
    noted.sort();
    (value, log, noted)
}

// ---- one call per file below a folder

#[stage(photo = each("photos"), cache = bincode, untracked = [ran])]
fn thumbnail(photo: &Path) -> std::io::Result<String> {
    let text = fs::read_to_string(photo)?;
    ran(format!(
        "thumb {}",
        photo.file_name().unwrap().to_string_lossy()
    ));
    Ok(text.to_uppercase())
}

#[stage(all = thumbnail, cache = bincode, untracked = [ran])]
fn collage(all: &Items<String>) -> Result<String, stage::Error> {
    ran("collage");
    let mut parts = Vec::new();
    for (i, item) in all.iter().enumerate() {
        parts.push(format!("{}={}", all.path(i).unwrap().display(), item?));
    }
    Ok(parts.join(","))
}

/// A data folder with `photos/` holding `files` (name, content), and a config for it.
fn photos(files: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("data/photos");
    fs::create_dir_all(&folder).unwrap();
    for (name, content) in files {
        fs::write(folder.join(name), content).unwrap();
    }
    let config = Config::from_env()
        .dir(dir.path().join("cache"))
        .data_dir(dir.path().join("data"));
    (dir, config)
}

/// What the bodies note when the thumbnails of `names` and the collage are computed.
fn with_collage(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| format!("thumb {n}")).collect();
    v.push("collage".into());
    v.sort();
    v
}

#[test]
fn a_folder_is_mapped_one_call_per_file_and_a_second_run_computes_nothing() {
    let (_dir, config) = photos(&[("b.txt", "bee"), ("a.txt", "ay"), ("c.txt", "sea")]);
    let (v, log, noted) = run(&config, collage);
    assert_eq!(v.unwrap(), "a.txt=AY,b.txt=BEE,c.txt=SEA");
    assert_eq!(noted, with_collage(&["a.txt", "b.txt", "c.txt"]));
    assert_eq!(log.computed(), ["thumbnail", "collage"]);

    let (v, log, noted) = run(&config, collage);
    assert_eq!(v.unwrap(), "a.txt=AY,b.txt=BEE,c.txt=SEA");
    assert!(noted.is_empty(), "{noted:?}");
    assert_eq!(log.loaded(), ["collage"]);

    let (items, _, noted) = run(&config, thumbnail);
    let items = items.unwrap();
    assert!(noted.is_empty(), "{noted:?}");
    assert_eq!(items.to_vec().unwrap(), ["AY", "BEE", "SEA"]);
    assert_eq!(items.path(1), Some(Path::new("b.txt")));
}

#[test]
fn a_file_added_anywhere_computes_that_file_and_the_reducer_only() {
    let (dir, config) = photos(&[("b.txt", "bee"), ("d.txt", "dee")]);
    run(&config, collage).0.unwrap();
    let folder = dir.path().join("data/photos");
    for (name, expected) in [
        ("a.txt", "a.txt=A,b.txt=BEE,d.txt=DEE"),
        ("c.txt", "a.txt=A,b.txt=BEE,c.txt=C,d.txt=DEE"),
        ("e.txt", "a.txt=A,b.txt=BEE,c.txt=C,d.txt=DEE,e.txt=E"),
    ] {
        fs::write(folder.join(name), &name[..1]).unwrap();
        let (v, _, noted) = run(&config, collage);
        assert_eq!(v.unwrap(), expected);
        assert_eq!(noted, with_collage(&[name]), "{name}");
    }

    fs::remove_file(folder.join("c.txt")).unwrap();
    let (v, _, noted) = run(&config, collage);
    assert_eq!(v.unwrap(), "a.txt=A,b.txt=BEE,d.txt=DEE,e.txt=E");
    assert_eq!(noted, ["collage"], "a removed file: the reducer only");

    fs::write(folder.join("b.txt"), "bop").unwrap();
    let (v, _, noted) = run(&config, collage);
    assert_eq!(v.unwrap(), "a.txt=A,b.txt=BOP,d.txt=DEE,e.txt=E");
    assert_eq!(noted, with_collage(&["b.txt"]));

    for name in ["a.txt", "b.txt", "d.txt", "e.txt"] {
        let file = fs::File::options()
            .write(true)
            .open(folder.join(name))
            .unwrap();
        file.set_modified(std::time::SystemTime::now()).unwrap();
    }
    let (v, _, noted) = run(&config, collage);
    assert_eq!(v.unwrap(), "a.txt=A,b.txt=BOP,d.txt=DEE,e.txt=E");
    assert!(noted.is_empty(), "touched files: nothing runs, {noted:?}");
}

#[test]
fn an_empty_folder_gives_the_reducer_no_items() {
    let (_dir, config) = photos(&[]);
    let (v, _, noted) = run(&config, collage);
    assert_eq!(v.unwrap(), "");
    assert_eq!(noted, ["collage"]);
}

// ---- one call per element of a Vec, chained maps

#[stage(raw = "names.txt", cache = bincode)]
fn names(raw: &Path) -> std::io::Result<Vec<String>> {
    Ok(fs::read_to_string(raw)?
        .lines()
        .map(str::to_owned)
        .collect())
}

#[stage(who = each(names), cache = bincode, untracked = [ran])]
fn greet(who: &String) -> String {
    ran(format!("greet {who}"));
    format!("hello {who}")
}

#[stage(g = each(greet), cache = bincode, untracked = [ran])]
fn shout(g: &String) -> String {
    ran(format!("shout {g}"));
    g.to_uppercase()
}

#[stage(all = shout, cache = bincode, untracked = [ran])]
fn letter(all: &Items<String>) -> Result<String, stage::Error> {
    ran("letter");
    Ok(all.to_vec()?.join("; "))
}

/// A data folder whose `file` holds `lines`, and a config for it; `write` changes it.
struct Data {
    dir: tempfile::TempDir,
    config: Config,
    file: &'static str,
}

impl Data {
    fn new(file: &'static str, lines: &[&str]) -> Data {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("data")).unwrap();
        let config = Config::from_env()
            .dir(dir.path().join("cache"))
            .data_dir(dir.path().join("data"));
        let data = Data { dir, config, file };
        data.write(lines);
        data
    }

    fn write(&self, lines: &[&str]) {
        let text: String = lines.iter().flat_map(|l| [*l, "\n"]).collect();
        fs::write(self.dir.path().join("data").join(self.file), text).unwrap();
    }
}

#[test]
fn elements_are_keyed_by_content_so_reordering_computes_no_element() {
    let data = Data::new("names.txt", &["ann", "bob"]);
    let (v, _, noted) = run(&data.config, letter);
    assert_eq!(v.unwrap(), "HELLO ANN; HELLO BOB");
    assert_eq!(
        noted,
        [
            "greet ann",
            "greet bob",
            "letter",
            "shout hello ann",
            "shout hello bob"
        ]
    );

    data.write(&["bob", "ann"]);
    let (v, _, noted) = run(&data.config, letter);
    assert_eq!(v.unwrap(), "HELLO BOB; HELLO ANN");
    assert_eq!(noted, ["letter"], "reordered: no element is computed again");

    data.write(&["bob", "cy", "ann"]);
    let (v, _, noted) = run(&data.config, letter);
    assert_eq!(v.unwrap(), "HELLO BOB; HELLO CY; HELLO ANN");
    assert_eq!(
        noted,
        ["greet cy", "letter", "shout hello cy"],
        "an inserted element: that element only, down the chain"
    );
}

#[test]
fn duplicate_elements_are_computed_once_and_an_empty_list_maps_to_no_items() {
    let data = Data::new("names.txt", &["ann", "ann", "ann"]);
    let (v, _, noted) = run(&data.config, letter);
    assert_eq!(v.unwrap(), "HELLO ANN; HELLO ANN; HELLO ANN");
    assert_eq!(noted, ["greet ann", "letter", "shout hello ann"]);

    data.write(&[]);
    let (v, _, noted) = run(&data.config, letter);
    assert_eq!(v.unwrap(), "");
    assert_eq!(noted, ["letter"]);
}

// ---- a chained map recomputes only the changed element downstream

#[stage(raw = "numbers.txt", cache = bincode)]
fn numbers(raw: &Path) -> std::io::Result<Vec<u32>> {
    Ok(fs::read_to_string(raw)?
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect())
}

#[stage(n = each(numbers), cache = bincode, untracked = [ran])]
fn halve(n: &u32) -> u32 {
    ran(format!("halve {n}"));
    n / 2
}

#[stage(h = each(halve), cache = bincode, untracked = [ran])]
fn label(h: &u32) -> String {
    ran(format!("label {h}"));
    format!("<{h}>")
}

#[test]
fn a_chained_map_recomputes_exactly_the_changed_element_downstream() {
    let data = Data::new("numbers.txt", &["2", "4", "6"]);
    let (v, _, _) = run(&data.config, label);
    assert_eq!(v.unwrap().to_vec().unwrap(), ["<1>", "<2>", "<3>"]);
    // 6 becomes 8: one halve, one label. 4 becomes 5: halve(5) = 2 as before, so the
    // label of that element is cut off.
    data.write(&["2", "5", "8"]);
    let (v, _, noted) = run(&data.config, label);
    assert_eq!(v.unwrap().to_vec().unwrap(), ["<1>", "<2>", "<4>"]);
    assert_eq!(noted, ["halve 5", "halve 8", "label 4"]);
}

// ---- a failing element keeps the others

#[stage(x = each(numbers), cache = bincode, untracked = [ran, FAIL])]
fn fragile(x: &u32) -> Result<u32, String> {
    ran(format!("fragile {x}"));
    if *x == 13 && FAIL.with(|f| *f.borrow()) {
        return Err("unlucky".into());
    }
    Ok(x * 10)
}

thread_local! {
    static FAIL: RefCell<bool> = const { RefCell::new(true) };
}

#[test]
fn a_failing_element_names_itself_and_keeps_the_others() {
    let data = Data::new("numbers.txt", &["1", "13", "2", "3"]);
    let (v, log, noted) = run(&data.config, fragile);
    let err = v.unwrap_err();
    let stage::Error::Item { item, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(item, "1", "the element's index");
    assert!(err.to_string().contains("item `1`"), "{err}");
    assert_eq!(log.failed(), ["fragile"]);
    assert_eq!(
        noted,
        ["fragile 1", "fragile 13"],
        "one job: stopped after the error"
    );

    FAIL.with(|f| *f.borrow_mut() = false);
    let (v, _, noted) = run(&data.config, fragile);
    assert_eq!(v.unwrap().to_vec().unwrap(), [10, 130, 20, 30]);
    assert_eq!(
        noted,
        ["fragile 13", "fragile 2", "fragile 3"],
        "the element computed before the error is kept"
    );
}

// ---- sweeps

#[stage(cache = bincode, untracked = [ran])]
fn score(sigma: u32, k: u32) -> i64 {
    ran(format!("score {sigma},{k}"));
    -(i64::from(sigma) - 2).abs() * 100 - (i64::from(k) - 20).abs()
}

#[stage(scores = sweep(score, sigma = [1, 2, 3], k = ks), cache = bincode, untracked = [ran])]
fn best(scores: &Vec<((u32, u32), i64)>, ks: Vec<u32>) -> (u32, u32) {
    let _ = ks;
    ran("best");
    scores.iter().max_by_key(|(_, s)| *s).unwrap().0
}

#[test]
fn a_sweep_runs_each_point_once_and_a_new_grid_value_computes_only_new_points() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_env().dir(dir.path());
    let (v, _, noted) = run(&config, || best(vec![10, 25]));
    assert_eq!(v.unwrap(), (2, 25));
    assert_eq!(noted.len(), 7, "6 points and the reducer: {noted:?}");

    let (v, _, noted) = run(&config, || best(vec![10, 25, 20]));
    assert_eq!(v.unwrap(), (2, 20));
    assert_eq!(noted, ["best", "score 1,20", "score 2,20", "score 3,20"]);

    // A point of the sweep is the same entry as the direct call.
    let (v, log, noted) = run(&config, || score(3, 25));
    assert_eq!(v.unwrap(), -105);
    assert!(noted.is_empty());
    assert_eq!(log.loaded(), ["score"]);
    let direct = config
        .scope(|| stage::inspect::key::<score>((3, 25)))
        .unwrap();
    assert_eq!(log.events[0].key, direct);
}

// ---- shards

#[test]
fn shards_split_the_items_and_a_call_without_a_shard_gathers_them() {
    let (_dir, config) = photos(&[
        ("a.txt", "1"),
        ("b.txt", "2"),
        ("c.txt", "3"),
        ("d.txt", "4"),
        ("e.txt", "5"),
        ("f.txt", "6"),
    ]);
    let mut computed = Vec::new();
    for k in 1..=2 {
        let sharded = config.clone().shard(stage::Shard::new(k, 2));
        let (v, _, noted) = run(&sharded, collage);
        let thumbs: Vec<String> = noted
            .into_iter()
            .filter(|n| n.starts_with("thumb"))
            .collect();
        if let Err(e) = v {
            let stage::Error::Sharded { computed, .. } = e else {
                panic!("{e}");
            };
            assert_eq!(computed, thumbs.len());
        }
        computed.extend(thumbs);
    }
    computed.sort();
    let all: Vec<String> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|n| format!("thumb {n}.txt"))
        .collect();
    assert_eq!(computed, all, "each item computed by exactly one shard");
    let (v, _, noted) = run(&config, collage);
    assert_eq!(
        v.unwrap(),
        "a.txt=1,b.txt=2,c.txt=3,d.txt=4,e.txt=5,f.txt=6"
    );
    assert!(
        noted.iter().all(|n| !n.starts_with("thumb")),
        "every item was cached by a shard: {noted:?}"
    );
}
