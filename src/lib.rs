#![doc = include_str!("../README.md")]

#[doc(inline)]
pub use stage_core::{
    ArrowData, BoxError, Change, Codec, Config, Digest, Error, Event, File, Graph, GraphNode,
    Outcome, ParquetCompression, ParquetData, Payload, PayloadReader, Reads, Reason, RunLog, State,
    explain, observe, stages,
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
///         version = "...", uses = [helper, ...], name = "...")]
/// ```
///
/// - `param = ancestor` binds the parameter `param` to the output of the stage `ancestor`
///   (a path: `load`, `crate::io::load`). Take it as `T` (a clone) or `&T` (shared).
///   `param = ancestor(10, n)` calls the ancestor with arguments: literals, or this
///   stage's own free parameters.
/// - `param = "data/trips.csv"` binds a raw input file or folder, relative to the current
///   directory, passed as `&Path` or `PathBuf`. Its content is part of the key.
/// - Every parameter not bound is a free parameter: the wrapper takes it, and its value
///   (anything `serde::Serialize`, or a [`File`] whose content counts) is part of the key.
/// - `cache = parquet` keeps an Arrow `RecordBatch` as Parquet; `cache = bincode` keeps any
///   serde type; without `cache` the value is computed in each call that needs it.
/// - `version = "2"` is a salt: change it to recompute after a change the key cannot see.
/// - `uses = [helper]` adds the code of helpers marked [`#[stage::track]`](macro@track).
/// - `name = "..."` is the name shown in logs and the graph.
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

/// Marks a helper function whose code hash enters the key of every stage that lists it in
/// `uses = [...]`; a tracked helper may itself list `uses`.
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
pub use stage_macros::track;

/// Calls and inspects stages by their type (a stage's name in type position), without
/// running them.
pub mod inspect {
    #[doc(inline)]
    pub use stage_core::{Entry, Ingredients, LocalStore, Stage, StageInfo, StatIndex, key};
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
    pub use stage_core::track::{Tracked, info_of as track_info_of};
    pub use stage_core::{
        AncestorInfo, Arrow, AsStage, Bincode, BoxError, Digest, Inputs, Memory, Params, Parquet,
        Plan, RawArg, RawInfo, Registered, Stage, StageInfo, TrackInfo, body_result, call, info_of,
        inventory, output_is,
    };
}
