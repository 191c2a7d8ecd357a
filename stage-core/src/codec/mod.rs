//! How a stage's output becomes bytes in the cache and back.

use std::io::Write;

use bytes::Bytes;

use crate::BoxError;
use crate::checksum::Segments;

mod bincode_codec;
mod parquet_codec;

pub use bincode_codec::BincodeData;
pub use parquet_codec::ParquetData;

/// A way to keep values of type `T` in the cache.
///
/// `ID` names the format and its version (`parquet/1`); it is part of every key, so a
/// change of format or of its settings never reads an entry written the other way.
pub trait Codec<T>: 'static {
    /// Format name and version, part of the key.
    const ID: &'static str;
    /// File extension of payloads.
    const EXTENSION: &'static str;
    /// `false` for values kept in memory only.
    const PERSISTENT: bool = true;

    /// Writes `value` to `out`, streaming where the format allows, and gives `out` back.
    ///
    /// # Errors
    /// When the value cannot be encoded or `out` fails.
    fn encode<W: Write + Send>(value: &T, out: W) -> Result<W, BoxError>;

    /// The settings new entries are written with (a compression, say), when the format has
    /// any: part of the key with [`Codec::ID`], so that an entry is never read back as if
    /// written another way.
    #[must_use]
    fn settings() -> &'static str {
        ""
    }

    /// A digest of the shape of `T` as this format writes it, when the format depends on
    /// it: part of the key, so that a changed type definition never decodes old bytes.
    #[must_use]
    fn shape() -> Option<crate::Digest> {
        None
    }

    /// Reads back a payload whose size and blake3 were checked against its metadata, so it
    /// is exactly what [`Codec::encode`] wrote. What the run context calls; a format may
    /// skip here the bounds that [`Codec::decode`] needs for bytes of unknown origin.
    ///
    /// # Errors
    /// When `bytes` is not such a payload.
    fn decode_verified(bytes: Bytes) -> Result<T, BoxError> {
        Self::decode(bytes)
    }

    /// `true` when [`Codec::decode_segments`] reads a payload front to back, so that it
    /// pays to read and check the payload on another thread while it decodes.
    const STREAMS: bool = false;

    /// Reads back a payload that another thread reads and checks against its metadata a
    /// segment at a time. By default, gathers the whole payload, then calls
    /// [`Codec::decode_verified`].
    ///
    /// # Errors
    /// When a segment is damaged or the payload is not what [`Codec::encode`] wrote.
    fn decode_segments(segments: Segments) -> Result<T, BoxError> {
        Self::decode_verified(Bytes::from(segments.into_whole()?))
    }

    /// Reads a value back from a payload written by [`Codec::encode`]; bytes of any other
    /// origin give an error, never a panic or an abort.
    ///
    /// # Errors
    /// When `bytes` is not such a payload.
    fn decode(bytes: Bytes) -> Result<T, BoxError>;
}

/// `cache = parquet`: Arrow data in a Parquet file (one row group, Snappy pages).
#[derive(Debug, Clone, Copy)]
pub struct Parquet;

/// `cache = bincode`: any serde type, with bincode's standard configuration.
#[derive(Debug, Clone, Copy)]
pub struct Bincode;

/// No `cache`: the value lives in memory for the call that computed it.
#[derive(Debug, Clone, Copy)]
pub struct Memory;

impl<T: Send + Sync + 'static> Codec<T> for Memory {
    const ID: &'static str = "memory";
    const EXTENSION: &'static str = "";
    const PERSISTENT: bool = false;

    fn encode<W: Write + Send>(_: &T, _: W) -> Result<W, BoxError> {
        Err("a memory-only value is never written".into())
    }

    fn decode(_: Bytes) -> Result<T, BoxError> {
        Err("a memory-only value is never read".into())
    }
}

/// Encodes `value` with `C` and decodes it back, as a test of `C`.
#[cfg(test)]
fn round_trip<C: Codec<T>, T>(value: &T) -> T {
    let bytes = C::encode(value, Vec::new()).unwrap();
    C::decode(Bytes::from(bytes)).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::record_batch::RecordBatch;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let junk = Bytes::from_static(b"PAR1 definitely not parquet PAR1");
        assert!(<Parquet as Codec<RecordBatch>>::decode(junk.clone()).is_err());
        assert!(<Bincode as Codec<Vec<String>>>::decode(junk).is_err());
    }
}
