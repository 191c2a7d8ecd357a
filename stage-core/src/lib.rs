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
pub use config::{Config, ParquetCompression, Remote, Shard, Upload};
pub use error::{BoxError, Error};
pub use key::{
    Ancestor, Change, Digest, Element, FORMAT, Ingredients, Input, Named, Param as ParamPart,
    ParseDigestError, Reason, StatIndex,
};
pub use run::{
    AncestorInfo, AsStage, ByValue, Each, Event, File, Graph, GraphNode, Inputs, ItemArgs,
    ItemCount, Items, Outcome, OutputIs, Param, Params, Plan, RUNS_DIR, RawArg, RawInfo,
    RecordedInput, RunLog, RunRecord, Stage, StageInfo, State, TrackInfo, UsedKey, body_result,
    call, clone_args, clone_element, explain, graph, info_of, key, observe, output_is, same_names,
};
#[cfg(feature = "remote")]
pub use store::RemoteStore;
pub use store::{
    Breaker, Entry, Found, INLINE_MAX, ITEMS, KeyLock, Layered, Listed, ListedItem, LocalStore,
    LockAttempt, META_SUFFIX, PayloadWriter, Put, ReadOnly, Store, StoreError, WriteError,
    decode_items, decode_meta, encode_items, encode_meta, meta_format, meta_name, open_remote,
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
    pub use crate::run::TrackedImpl;

    /// An item marked `#[stage::track]`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not tracked",
        label = "not marked `#[stage::track]`",
        note = "mark the item `#[stage::track]` to list it in `uses`"
    )]
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
