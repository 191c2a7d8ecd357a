//! placeholder until the canonical encoder lands
#![allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CanonicalError(String);
pub fn to_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| CanonicalError(e.to_string()))
}
