//! Runtime of the [`stage`](https://docs.rs/stage) crate.
//!
//! Users depend on the `stage` facade, which re-exports what they need from here; the
//! generated code reaches this crate through `stage::__private`. The modules follow the
//! way a call goes, and import only downwards:
//!
//! - `run`: plan a call's keys, then load or compute what it needs; the run log, the
//!   graph, the contexts generated code talks to;
//! - `store`: where entries live, written atomically and checked before they are read;
//! - `codec`: how a value becomes a payload and back;
//! - `key`: what a key is made of: digests, canonical bytes, raw inputs, reasons.

mod codec;
mod config;
mod error;
mod key;
mod run;
mod store;

pub use codec::{
    Arrow, ArrowData, Bincode, BincodeData, Codec, Damaged, Memory, Parquet, ParquetData, Payload,
    PayloadReader, ROW_GROUP_ROWS, Reads, Segments,
};
pub use config::{Config, ParquetCompression};
pub use error::{BoxError, Error};
pub use key::{
    Ancestor, Change, Digest, FORMAT, Ingredients, Input, Named, Param as ParamPart,
    ParseDigestError, Reason, StatIndex,
};
pub use run::{
    AncestorInfo, AsStage, ByValue, Event, File, Graph, GraphNode, Inputs, Outcome, OutputIs,
    Param, Params, Plan, RUNS_DIR, RawArg, RawInfo, RecordedInput, RunLog, RunRecord, Stage,
    StageInfo, State, TrackInfo, UsedKey, body_result, call, explain, graph, info_of, key, observe,
    output_is,
};
pub use store::{
    Entry, Found, KeyLock, Layered, Listed, LocalStore, LockAttempt, META_SUFFIX, PayloadWriter,
    Put, Store, StoreError, WriteError, decode_meta, encode_meta, meta_format, meta_name,
    stage_folder, stage_of_folder,
};

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

    /// An item marked `#[stage::track]`.
    pub trait Tracked: 'static {
        /// The item's static description.
        const INFO: &'static TrackInfo;
    }

    /// The description of tracked item `T`, as a function pointer.
    #[must_use]
    pub fn info_of<T: Tracked>() -> &'static TrackInfo {
        T::INFO
    }
}
