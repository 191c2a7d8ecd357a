//! Runtime of the [`stage`](https://docs.rs/stage) crate: keys, codecs, the local store
//! and the run context that `#[stage]` wrappers call into.
//!
//! Users depend on the `stage` facade, which re-exports what they need from here; the
//! generated code reaches this crate through `stage::__private`.

mod canonical;
mod checksum;
mod codec;
mod config;
mod digest;
mod error;
mod exec;
mod graph;
mod info;
mod ingredients;
mod payload;
mod raw;
mod run;
mod runlog;
mod stage;
mod store;

pub use checksum::{Damaged, Segments};
pub use codec::{Bincode, BincodeData, Codec, Memory, Parquet, ParquetData};
pub use config::{Config, Event, Outcome, RunLog, observe};
pub use digest::{Digest, ParseDigestError};
pub use error::{BoxError, Error};
pub use graph::{Graph, Node as GraphNode, State, explain, graph};
pub use info::{AncestorInfo, RawInfo, StageInfo, TrackInfo};
pub use ingredients::{Ancestor, FORMAT, Ingredients, Input, Named, Param as ParamPart, Reason};
pub use payload::PayloadWriter;
pub use raw::StatIndex;
pub use run::{call, key};
pub use runlog::{RUNS_DIR, RunRecord, UsedKey};
pub use stage::{
    AsStage, ByValue, File, Inputs, OutputIs, Param, Params, Plan, RawArg, Stage, body_result,
    info_of, output_is,
};
pub use store::{Entry, KeyLock, LocalStore, LockAttempt, decode_meta, encode_meta};

/// A stage compiled into this program, registered by `#[stage]`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registered(pub fn() -> &'static StageInfo);

inventory::collect!(Registered);

/// Every stage compiled into this program, sorted by path: the pipeline's static shape,
/// known without calling anything.
#[must_use]
pub fn stages() -> Vec<&'static StageInfo> {
    let mut all: Vec<&'static StageInfo> = inventory::iter::<Registered>
        .into_iter()
        .map(|r| (r.0)())
        .collect();
    all.sort_by_key(|info| info.path());
    all
}

#[doc(hidden)]
pub use inventory;

/// Hidden helpers for `#[stage::track]`.
#[doc(hidden)]
pub mod track {
    use crate::TrackInfo;

    /// A helper marked `#[stage::track]`.
    pub trait Tracked: 'static {
        /// The helper's static description.
        const INFO: &'static TrackInfo;
    }

    /// The description of helper `T`, as a function pointer.
    #[must_use]
    pub fn info_of<T: Tracked>() -> &'static TrackInfo {
        T::INFO
    }
}
