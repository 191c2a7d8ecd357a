//! What enters a stage's key besides its own code: tracked consts, statics, types with
//! their impls, and the items of a `#[stage::pipeline]` module its stages name.

use std::fmt;

use stage::stage;

mod config {
    /// Bucket edges.
    #[stage::track]
    pub const BUCKETS: [f64; 3] = [0.0, 10.0, 100.0];

    #[stage::track]
    pub static LABEL: &str = "bucket";
}

#[stage::track]
#[derive(Debug, Clone, Copy)]
struct Grid {
    step: i64,
}

#[stage::track]
impl Grid {
    fn cell(self, x: i64) -> i64 {
        x.div_euclid(self.step)
    }
}

#[stage::track]
impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "grid({})", self.step)
    }
}

#[stage::track]
enum Side {
    Low,
    High,
}

#[stage::track]
type Cells = Vec<i64>;

#[stage(cache = bincode, uses = [crate::config::BUCKETS, config::LABEL])]
fn counts(xs: Vec<f64>) -> Vec<String> {
    config::BUCKETS
        .windows(2)
        .map(|w| {
            let n = xs.iter().filter(|x| (w[0]..w[1]).contains(*x)).count();
            format!("{} {n}", config::LABEL)
        })
        .collect()
}

#[stage(cache = bincode, uses = [Grid, Cells, Side])]
fn cells(xs: Vec<i64>) -> Cells {
    let grid = Grid { step: 10 };
    let side = |c: i64| if c < 1 { Side::Low } else { Side::High };
    xs.iter()
        .map(|&x| grid.cell(x))
        .filter(|&c| matches!(side(c), Side::Low | Side::High))
        .collect()
}

mod imported {
    use super::config::BUCKETS;
    use stage::stage;

    #[stage(uses = [BUCKETS])]
    pub fn first() -> f64 {
        BUCKETS[1]
    }
}

#[stage::pipeline]
mod steps {
    use stage::stage;

    const EDGES: [f64; 2] = [1.0, 5.0];
    const UNUSED: u8 = 3;

    fn bin(x: f64) -> usize {
        EDGES.iter().filter(|e| x >= **e).count()
    }

    pub struct Hist {
        pub bins: Vec<usize>,
    }

    impl Hist {
        fn total(&self) -> usize {
            self.bins.iter().sum()
        }
    }

    #[stage(cache = bincode)]
    pub fn binned(xs: Vec<f64>) -> Vec<usize> {
        xs.iter().map(|&x| bin(x)).collect()
    }

    #[stage(b = binned(xs))]
    pub fn total(b: &Vec<usize>, xs: Vec<f64>) -> usize {
        let _ = xs;
        Hist { bins: b.clone() }.total() + usize::from(UNUSED) * 0
    }

    #[stage]
    pub fn alone() -> u8 {
        1
    }

    macro_rules! twice {
        ($x:expr) => {
            $x * 2
        };
    }

    #[stage]
    pub fn doubled(x: u32) -> u32 {
        twice!(x)
    }

    const FACTOR: f64 = 2.5;

    /// Named by no stage: not in any key.
    #[allow(dead_code)]
    const LEFT_OUT: f64 = 1.0;

    /// Tracked, so that a stage outside the module can list it in `uses`.
    #[stage::track]
    pub fn scale(x: f64) -> f64 {
        x * FACTOR
    }
}

#[stage(uses = [steps::scale])]
fn scaled(x: f64) -> f64 {
    steps::scale(x)
}

fn tracked(name: &str) -> Vec<String> {
    let info = stage::stages()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stage `{name}`"));
    info.tracked()
        .iter()
        .map(|t| t.path().replace("tracking::", ""))
        .collect()
}

fn in_cache<T>(f: impl FnOnce() -> T) -> T {
    let dir = tempfile::tempdir().unwrap();
    stage::Config::from_env().dir(dir.path()).scope(f)
}

#[test]
fn consts_and_statics_are_tracked_across_modules() {
    assert_eq!(tracked("counts"), ["config::BUCKETS", "config::LABEL"]);
    let out = in_cache(|| counts(vec![1.0, 20.0, 30.0])).unwrap();
    assert_eq!(out, ["bucket 1", "bucket 2"]);
}

#[test]
fn a_tracked_value_imported_by_name_is_found() {
    assert_eq!(tracked("first"), ["config::BUCKETS"]);
    assert_eq!(in_cache(imported::first).unwrap().to_string(), "10");
}

#[test]
fn a_type_brings_its_tracked_impls() {
    assert_eq!(
        tracked("cells"),
        [
            "Cells",
            "Grid",
            "Side",
            "impl Grid { cell }",
            "impl fmt::Display for Grid"
        ]
    );
    assert_eq!(Grid { step: 2 }.to_string(), "grid(2)");
    assert_eq!(in_cache(|| cells(vec![5, 25])).unwrap(), [0, 2]);
}

#[test]
fn a_pipeline_stage_is_keyed_by_the_module_items_it_names() {
    assert_eq!(tracked("binned"), ["steps::EDGES", "steps::bin"]);
    assert_eq!(
        tracked("total"),
        ["steps::Hist", "steps::UNUSED", "steps::impl Hist { total }"]
    );
    assert!(tracked("alone").is_empty());
    assert_eq!(tracked("doubled"), ["steps::twice"]);
    assert!(!tracked("binned").contains(&"steps::UNUSED".to_owned()));
    let (out, log) = in_cache(|| stage::observe(|| steps::total(vec![0.0, 2.0, 7.0])));
    assert_eq!(out.unwrap(), 3);
    assert_eq!(log.computed(), ["binned", "total"]);
}

#[test]
fn a_tracked_item_of_a_pipeline_brings_what_it_names_in_its_module() {
    assert_eq!(tracked("scaled"), ["steps::FACTOR", "steps::scale"]);
    assert_eq!(in_cache(|| scaled(2.0)).unwrap().to_string(), "5");
}
