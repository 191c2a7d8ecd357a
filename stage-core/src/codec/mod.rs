//! How a stage's output becomes bytes in the cache and back: the [`Codec`] trait, the
//! built-in formats, and the [`Payload`] a decoder is handed.

use std::io::Write;

use crate::config::Config;
use crate::{BoxError, Digest};

mod bincode;
mod ipc;
mod parquet;
mod payload;

pub use bincode::BincodeData;
pub use ipc::ArrowData;
pub use parquet::{ParquetData, ROW_GROUP_ROWS};
pub use payload::{Damaged, Payload, PayloadReader, Reads, Segments};

/// A way to keep values of type `T` in the cache: `cache = path::ToYourCodec` in
/// `#[stage]` names a type that implements it for the stage's output.
///
/// [`Codec::ID`] names the format and its version, and [`Codec::settings`] the options new
/// entries are written with; both are part of every key, so an entry is never read back
/// as if it had been written another way. Change the `ID` when the bytes your codec writes
/// change.
///
/// A payload reaches [`Codec::decode`] only after its bytes were checked against the
/// checksum recorded when it was written. Decoding bytes of any other origin
/// ([`Payload::unchecked`]) must give an error, never a panic.
///
/// ```
/// use std::io::Write;
/// use stage_core::{BoxError, Codec, Payload};
///
/// /// Lines of text, one value per line.
/// struct Lines;
///
/// impl Codec<Vec<String>> for Lines {
///     const ID: &'static str = "lines/1";
///     const EXTENSION: &'static str = "txt";
///
///     fn encode<W: Write + Send>(value: &Vec<String>, out: &mut W, _: &str) -> Result<(), BoxError> {
///         for line in value {
///             writeln!(out, "{line}")?;
///         }
///         Ok(())
///     }
///
///     fn decode(payload: Payload) -> Result<Vec<String>, BoxError> {
///         let text = String::from_utf8(payload.into_bytes()?.to_vec())?;
///         Ok(text.lines().map(str::to_owned).collect())
///     }
/// }
///
/// let mut bytes = Vec::new();
/// Lines::encode(&vec!["a".to_owned(), "b".to_owned()], &mut bytes, "").unwrap();
/// assert_eq!(Lines::decode(Payload::unchecked(bytes)).unwrap(), ["a", "b"]);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot keep a `{T}` in the cache",
    label = "this codec does not implement `stage::Codec<{T}>`",
    note = "a codec for a stage's output implements `stage::Codec<Output>`; the built-in ones are `parquet`, `arrow`, `bincode` and `memory`"
)]
pub trait Codec<T>: 'static {
    /// Format name and version (`parquet/1`), part of every key.
    const ID: &'static str;
    /// File extension of payloads (without a dot).
    const EXTENSION: &'static str;
    /// `false` for values kept in memory only.
    const PERSISTENT: bool = true;
    /// How [`Codec::decode`] prefers to read a payload.
    const READS: Reads = Reads::Whole;

    /// The settings new entries are written with, chosen from the configuration (a
    /// compression, say); part of the key with [`Codec::ID`], and handed to
    /// [`Codec::encode`], so the key always says how the payload was written.
    #[must_use]
    fn settings(config: &Config) -> String {
        let _ = config;
        String::new()
    }

    /// A digest of the shape of `T` as this format writes it, when the format depends on
    /// it: part of the key, so that a changed type definition never decodes old bytes.
    #[must_use]
    fn shape() -> Option<Digest> {
        None
    }

    /// Writes `value` to `out`, with the `settings` that [`Codec::settings`] chose.
    ///
    /// # Errors
    /// When the value cannot be encoded or `out` fails.
    fn encode<W: Write + Send>(value: &T, out: &mut W, settings: &str) -> Result<(), BoxError>;

    /// Reads back a value from a payload that [`Codec::encode`] wrote.
    ///
    /// # Errors
    /// When the payload is not such a payload (only possible for an unchecked one).
    fn decode(payload: Payload) -> Result<T, BoxError>;
}

/// `cache = parquet`: Arrow data in a Parquet file.
#[derive(Debug, Clone, Copy)]
pub struct Parquet;

/// `cache = arrow`: Arrow data in an Arrow IPC file, read back without decoding.
#[derive(Debug, Clone, Copy)]
pub struct Arrow;

/// `cache = bincode`: any serde type, with bincode's standard configuration.
#[derive(Debug, Clone, Copy)]
pub struct Bincode;

/// `cache = memory`, or no `cache`: the value lives in memory for the call that computed
/// it, and is computed again by each call that needs it.
#[derive(Debug, Clone, Copy)]
pub struct Memory;

impl<T: Send + Sync + 'static> Codec<T> for Memory {
    const ID: &'static str = "memory";
    const EXTENSION: &'static str = "";
    const PERSISTENT: bool = false;

    fn encode<W: Write + Send>(_: &T, _: &mut W, _: &str) -> Result<(), BoxError> {
        Err("a memory-only value is never written".into())
    }

    fn decode(_: Payload) -> Result<T, BoxError> {
        Err("a memory-only value is never read".into())
    }
}

/// `id+settings` of codec `C` for `T`, as a key records it (`parquet/1+snappy`).
pub(crate) fn codec_id<T, C: Codec<T>>(settings: &str) -> String {
    if settings.is_empty() {
        C::ID.to_owned()
    } else {
        format!("{}+{settings}", C::ID)
    }
}

/// Encodes `value` with `C` and decodes it back as a checked payload, as a test of `C`.
#[cfg(test)]
fn round_trip<C: Codec<T>, T>(value: &T) -> T {
    let mut bytes = Vec::new();
    C::encode(value, &mut bytes, &C::settings(&Config::default())).unwrap();
    C::decode(Payload::checked(bytes::Bytes::from(bytes))).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::record_batch::RecordBatch;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let junk = &b"PAR1 definitely not parquet PAR1"[..];
        assert!(<Parquet as Codec<RecordBatch>>::decode(Payload::unchecked(junk)).is_err());
        assert!(<Arrow as Codec<RecordBatch>>::decode(Payload::unchecked(junk)).is_err());
        assert!(<Bincode as Codec<Vec<String>>>::decode(Payload::unchecked(junk)).is_err());
    }
}
