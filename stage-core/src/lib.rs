//! Runtime of the [`stage`](https://docs.rs/stage) crate: keys, codecs, the local store
//! and the run context that `#[stage]` wrappers call into.
//!
//! Users depend on the `stage` facade, which re-exports what they need from here; the
//! generated code reaches this crate through `stage::__private`.

mod canonical;
mod codec;
mod config;
mod digest;
mod error;
mod exec;
mod info;
mod ingredients;
mod raw;
mod run;
mod stage;
mod store;

pub use codec::{Bincode, BincodeData, Codec, Memory, Parquet, ParquetData};
pub use config::{Config, Event, Outcome, RunLog, observe};
pub use digest::{Digest, ParseDigestError};
pub use error::{BoxError, Error};
pub use info::{AncestorInfo, RawInfo, StageInfo, TrackInfo};
pub use ingredients::{Ancestor, FORMAT, Ingredients, Input, Named, Param as ParamPart, Reason};
pub use raw::StatIndex;
pub use run::{call, key};
pub use stage::{ByValue, File, Inputs, Param, Params, Plan, RawArg, Stage, body_result, info_of};
pub use store::{Entry, KeyLock, LocalStore, LockAttempt, PayloadWriter, decode_meta, encode_meta};

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
