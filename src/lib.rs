#![doc = include_str!("../README.md")]

#[doc(inline)]
pub use stage_core::{
    ArrowData, BoxError, Change, Codec, Config, Digest, Each, Error, Event, File, Graph, GraphNode,
    ItemCount, Items, Outcome, ParquetCompression, ParquetData, Payload, PayloadReader, Reads,
    Reason, Remote, RunLog, Shard, State, Upload, explain, observe, stages,
};

/// The graph of a call of `S` with `args`: every stage it reaches, with its key and whether
/// it would run and why; nothing is computed and no cached value is read.
///
/// ```
/// use stage::stage;
///
/// #[stage(cache = bincode)]
/// fn numbers(n: u32) -> Vec<u32> { (0..n).collect() }
///
/// #[stage(xs = numbers(3))]
/// fn total(xs: &Vec<u32>) -> u32 { xs.iter().sum() }
///
/// let dir = tempfile::tempdir().unwrap();
/// stage::Config::from_env().dir(dir.path()).scope(|| {
///     let graph = stage::graph::<total>(()).unwrap();
///     assert_eq!(graph.would_run().len(), 2);
///     assert!(graph.to_dot().contains("numbers"));
///     total().unwrap();
///     let graph = stage::graph::<total>(()).unwrap();
///     assert_eq!(graph.would_run().len(), 1); // `total` is memory-only
/// });
/// ```
///
/// # Errors
/// When a raw input cannot be read or the stages form a cycle.
pub fn graph<S: inspect::Stage>(args: S::Args) -> Result<Graph, Error> {
    stage_core::graph::<S>(args)
}

/// The [`#[stage]`](macro@stage) attribute: turns a function into a cached pipeline stage.
///
/// ```text
/// #[stage(param = ancestor, param = ancestor(args..), param = "path", cache = parquet | bincode,
///         version = "...", uses = [item, path::ITEM, ...], untracked = [name, ...], name = "...")]
/// ```
///
/// - `param = ancestor` binds the parameter `param` to the output of the stage `ancestor`
///   (a path: `load`, `crate::io::load`). Take it as `T` (a clone) or `&T` (shared).
///   `param = ancestor(10, n)` calls the ancestor with arguments: literals, or this
///   stage's own free parameters. A stage of another crate, or one named like the crate
///   it is in, is named with a leading `::` (`::other_crate::load`, or
///   `use ::other_crate::load;`), as any path that starts with a crate name.
/// - `param = "data/trips.csv"` binds a raw input file or folder, relative to the current
///   directory, passed as `&Path` or `PathBuf`. Its content is part of the key.
/// - Every parameter not bound is a free parameter: the wrapper takes it, and its value
///   (anything `serde::Serialize`, or a [`File`] whose content counts) is part of the key.
/// - `cache = parquet` keeps an Arrow `RecordBatch` as Parquet; `cache = bincode` keeps any
///   serde type; without `cache` the value is computed in each call that needs it.
/// - `version = "2"` is a salt: change it to recompute after a change the key cannot see.
/// - `uses = [helper, config::BUCKETS, Grid]` adds the code of items marked
///   [`#[stage::track]`](macro@track) (functions, consts, statics, types with their tracked
///   impls), and of what they list in their own `uses`. A stage inside a
///   [`#[stage::pipeline]`](macro@pipeline) module needs no `uses` for that module's items.
/// - `untracked = [log, LEVEL]` silences the untracked-name warning for these names (see
///   below): say so for a name whose changes can never change a result.
/// - `name = "..."` is the name shown in logs and the graph.
///
/// # The untracked-name warning
///
/// A body that names a `SCREAMING_CASE` constant, a `crate::`, `self::` or `super::` path,
/// or calls a function by a bare name (`f(x)`, not a parameter or a local binding), that is
/// neither in `uses` nor an item of the enclosing pipeline module, gets a compiler warning
/// at that name: a change to it would not recompute the stage. Library paths (`std::`,
/// `u32::MAX`, other crates), methods and macros are not reported. It is a warning even
/// under `-D warnings`; `#![deny(deprecated)]` (or `-D deprecated`) makes it an error.
///
/// ```
/// use stage::stage;
///
/// #[stage::track]
/// const LIMIT: u32 = 3;
///
/// fn log(what: &str) {
///     eprintln!("{what}");
/// }
///
/// // `LIMIT` is tracked; `log` cannot change the result, so it is silenced
/// #[stage(uses = [LIMIT], untracked = [log])]
/// fn capped(n: u32) -> u32 {
///     log("capping");
///     n.min(LIMIT)
/// }
/// # let dir = tempfile::tempdir().unwrap();
/// # stage::Config::from_env().dir(dir.path()).scope(|| assert_eq!(capped(10).unwrap(), 3));
/// ```
///
/// The wrapper keeps the function's name and visibility, takes only the free parameters,
/// and returns `Result<T, stage::Error>`.
///
/// # Example
///
/// ```
/// use stage::stage;
///
/// #[stage(cache = bincode)]
/// fn numbers(n: u32) -> Vec<u32> {
///     (0..n).collect()
/// }
///
/// #[stage(xs = numbers(10))]
/// fn total(xs: &Vec<u32>) -> u32 {
///     xs.iter().sum()
/// }
///
/// # let dir = tempfile::tempdir().unwrap();
/// # stage::Config::from_env().dir(dir.path()).scope(|| {
/// assert_eq!(total().unwrap(), 45);
/// # });
/// ```
///
/// # Equivalent code without `#[stage]`
///
/// ```ignore
/// fn total() -> Result<u32, stage::Error> {
///     let key = key_of("total", CODE_HASH, [key_of("numbers", .., [10])]);
///     if let Some(v) = cache.get(key) { return Ok(v) }      // (memory-only: never)
///     let xs = numbers(10)?;          // only on a miss: itself cached on its own key
///     let v = xs.iter().sum();
///     cache.put(key, &v);
///     Ok(v)
/// }
/// ```
pub use stage_macros::stage;

/// Marks an item whose code enters the key of every stage that lists it in `uses = [...]`.
///
/// It takes a `fn`, `const`, `static`, `struct`, `enum`, `union`, `type`, `trait` or `impl`
/// block; its tokens are hashed like a stage's (whitespace, comments and doc comments do
/// not count). A tracked item may list `uses` of its own, and `untracked` like a stage.
///
/// ```
/// #[stage::track]
/// fn celsius(f: f64) -> f64 {
///     (f - 32.0) / 1.8
/// }
///
/// #[stage::stage(uses = [celsius])]
/// fn boiling() -> f64 {
///     celsius(212.0)
/// }
/// # let dir = tempfile::tempdir().unwrap();
/// # stage::Config::from_env().dir(dir.path()).scope(|| assert_eq!(boiling().unwrap(), 100.0));
/// ```
///
/// Constants and statics, in any module: `uses` names them by the path a `use` would take.
///
/// ```
/// mod config {
///     #[stage::track]
///     pub const BUCKETS: [f64; 3] = [0.0, 10.0, 100.0];
///
///     #[stage::track]
///     pub static UNIT: &str = "km";
/// }
///
/// #[stage::stage(uses = [crate::config::BUCKETS, config::UNIT])]
/// fn edges() -> String {
///     format!("{:?} {}", config::BUCKETS, config::UNIT)
/// }
/// # fn main() {
/// # let dir = tempfile::tempdir().unwrap();
/// # stage::Config::from_env().dir(dir.path()).scope(|| assert_eq!(edges().unwrap(), "[0.0, 10.0, 100.0] km"));
/// # }
/// ```
///
/// Types, and their impls: tracking a type brings every tracked `impl` of it (inherent or
/// of a trait, wherever it is), so `uses` lists the type alone.
///
/// ```
/// #[stage::track]
/// #[derive(Clone, Copy)]
/// struct Grid {
///     step: f64,
/// }
///
/// #[stage::track]
/// impl Grid {
///     fn cell(self, x: f64) -> i64 {
///         (x / self.step).floor() as i64
///     }
/// }
///
/// #[stage::track]
/// enum Side {
///     Low,
///     High,
/// }
///
/// #[stage::track(uses = [Side])]
/// type Cells = Vec<(i64, Side)>;
///
/// #[stage::stage(uses = [Grid, Cells])]
/// fn cells(xs: Vec<f64>) -> usize {
///     let grid = Grid { step: 10.0 };
///     let cells: Cells = xs.iter().map(|&x| (grid.cell(x), if x < 0.0 { Side::Low } else { Side::High })).collect();
///     cells.iter().filter(|(_, side)| matches!(side, Side::High)).count()
/// }
/// # fn main() {
/// # let dir = tempfile::tempdir().unwrap();
/// # stage::Config::from_env().dir(dir.path()).scope(|| assert_eq!(cells(vec![-1.0, 5.0]).unwrap(), 1));
/// # }
/// ```
///
/// How `uses` finds a tracked item: each gets a hidden companion type. A `fn`, `const` or
/// `static` leaves its name free in the type namespace, so the companion takes it, and
/// `use config::BUCKETS;` brings both. A type's companion is `__stage_tracked_<Name>`
/// beside it, so name a tracked type in `uses` by a path through its module
/// (`model::Grid`), or import it with a glob (`use model::*`), not with `use model::Grid;`
/// alone. A tracked type's name must be `UpperCamelCase` with a lowercase letter (`Id`,
/// not `ID`), which is how `uses` tells it from a constant. An item named in `uses` that is
/// not tracked is a compile error at its name.
pub use stage_macros::track;

/// Keys every stage of an inline module by the code of the module's items it names:
/// its consts, statics, functions, types, traits, impls and `macro_rules!`, directly or
/// through other items of the module, without `uses`.
///
/// ```
/// #[stage::pipeline]
/// mod steps {
///     use stage::stage;
///
///     const EDGES: [f64; 2] = [1.0, 5.0];
///
///     fn bin(x: f64) -> usize {
///         EDGES.iter().filter(|e| x >= **e).count()
///     }
///
///     // keyed by `bin` and, through it, `EDGES`: editing either recomputes `binned`
///     #[stage(cache = bincode)]
///     pub fn binned(xs: Vec<f64>) -> Vec<usize> {
///         xs.iter().map(|&x| bin(x)).collect()
///     }
/// }
///
/// # fn main() {
/// let tracked: Vec<String> = stage::stages()
///     .into_iter()
///     .find(|s| s.name == "binned")
///     .unwrap()
///     .tracked()
///     .iter()
///     .map(|t| t.name.to_owned())
///     .collect();
/// assert_eq!(tracked, ["EDGES", "bin"]);
/// # let dir = tempfile::tempdir().unwrap();
/// # stage::Config::from_env().dir(dir.path()).scope(|| assert_eq!(steps::binned(vec![0.0, 2.0, 9.0]).unwrap(), [0, 1, 2]));
/// # }
/// ```
///
/// The module must be inline (`mod steps { ... }`): the attribute reads its items. The
/// graph of which item names which is built from identifiers, without name resolution, so
/// it errs toward tracking more: a local variable named like an item of the module counts
/// as naming it. A type named by a stage brings its impls in the module; an `impl` is also
/// reached by the names of its methods. Items outside the module still need
/// [`#[stage::track]`](macro@track) and `uses`, and an item of the module that a stage
/// outside lists in `uses` must be marked `#[stage::track]` (it then brings what it names
/// in the module). Inside the module, the untracked-name warning leaves the module's items
/// and its imports from other crates alone.
pub use stage_macros::pipeline;

/// Calls and inspects stages by their type (a stage's name in type position), without
/// running them.
pub mod inspect {
    #[doc(inline)]
    pub use stage_core::{
        Entry, Ingredients, Listed, LocalStore, Stage, StageInfo, StatIndex, Store, StoreError,
        key, open_remote,
    };
}

/// The Arrow crate `stage` is built with, so user code needs no matching dependency.
pub use arrow;
/// The Parquet crate `stage` is built with.
pub use parquet;
/// The Polars crate `stage` is built with (feature `polars`): `cache = parquet` keeps its
/// `DataFrame`s.
#[cfg(feature = "polars")]
pub use polars;

/// Used by the code `#[stage]` generates; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use stage_core::track::{Tracked, TrackedImpl, info_of as track_info_of};
    pub use stage_core::{
        AncestorInfo, Arrow, AsStage, Bincode, BoxError, Digest, Each, Inputs, Memory, Params,
        Parquet, Plan, RawArg, RawInfo, Registered, Stage, StageInfo, TrackInfo, body_result, call,
        clone_args, clone_element, info_of, inventory, output_is, same_names,
    };
}
