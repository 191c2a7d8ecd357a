//! What a key is made of: digests, the canonical bytes of parameters, the content of raw
//! inputs, and the ingredients that a miss compares to say why it recomputes.

mod canonical;
mod digest;
mod ingredients;
mod raw;

pub use canonical::to_bytes as canonical_bytes;
pub use digest::{Digest, ParseDigestError};
pub use ingredients::{
    Ancestor, Change, Element, FORMAT, Ingredients, Input, Named, Param, Reason,
};
pub use raw::{HashedFile, StatIndex};
