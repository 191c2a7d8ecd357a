//! How a stage's output becomes bytes in the cache and back: the [`Codec`] trait, the
//! built-in formats, and the [`Payload`] a decoder is handed.

use std::io::Write;

use crate::config::Config;
use crate::{BoxError, Digest};

mod bincode;
mod ipc;
mod parquet;
mod payload;
#[cfg(feature = "polars")]
mod polars;

pub use bincode::BincodeData;
pub use ipc::ArrowData;
pub use parquet::{ParquetData, ROW_GROUP_ROWS};
pub use payload::{Damaged, Payload, PayloadReader, Reads, Segments};

/// How a stage's output of type `T` is kept in the cache: written to a payload file when
/// the stage is computed, read back from it when the stage is a hit.
///
/// `cache = parquet`, `arrow`, `bincode` and `memory` name the built-in codecs
/// ([`Parquet`], [`Arrow`], [`Bincode`], [`Memory`]). `cache = path::ToYourCodec` names a
/// type of your own: any type that implements `Codec<Output>` for the stage's output.
/// It is never instantiated; its associated items are all that is used.
///
/// - [`Codec::ID`] names the format and its version (`json/1`). It is part of every key,
///   with [`Codec::settings`]: an entry is never read back by a codec that writes
///   differently. Change the `ID` when the bytes your codec writes change.
/// - [`Codec::EXTENSION`] is the payload's file extension (`<key>.json`).
/// - [`Codec::READS`] says how [`Codec::decode`] wants the payload: whole in memory (the
///   default), front to back while it is checked, or as an open file.
/// - [`Codec::encode`] writes a value; [`Codec::decode`] reads one back.
///
/// A payload from the cache reaches [`Codec::decode`] only after its bytes were checked
/// against the checksum recorded when they were written: they are exactly what
/// [`Codec::encode`] wrote, so a decoder needs no defence against damaged files there.
/// Bytes of any other origin ([`Payload::unchecked`]) may be anything: decoding them must
/// give an error, never a panic. A decoder that panics anyway is caught, and the stage is
/// computed again.
///
/// `examples/json_codec.rs` is a complete codec (JSON through `serde_json`) with a
/// pipeline that uses it. A smaller one:
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
/// // `#[stage(cache = Lines)]` on a function returning `Vec<String>` keeps its output this way.
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

/// `cache = parquet`: a `RecordBatch`, a `Vec<RecordBatch>` (or, with the `polars`
/// feature, a Polars `DataFrame`) in a Parquet file; see [`ParquetData`].
#[derive(Debug, Clone, Copy)]
pub struct Parquet;

/// `cache = arrow`: a `RecordBatch` or `Vec<RecordBatch>` in an Arrow IPC file, read back
/// without decoding; see [`ArrowData`].
#[derive(Debug, Clone, Copy)]
pub struct Arrow;

/// `cache = bincode`: any serde type, with bincode's standard configuration.
#[derive(Debug, Clone, Copy)]
pub struct Bincode;

/// `cache = memory`, or no `cache`: nothing is written. The value lives in memory for the
/// call that computed it, where every stage that needs it shares it, and each new call
/// computes it again. For values that are cheap to compute, or that cannot be written (a
/// connection, a closure).
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
