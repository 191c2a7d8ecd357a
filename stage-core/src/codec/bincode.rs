//! `cache = bincode`: any serde type, with bincode's standard configuration.

use std::any::TypeId;
use std::cell::Cell;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{LazyLock, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_reflection::{Tracer, TracerConfig};

use super::{Bincode, Codec, Payload, Reads, Segments};
use crate::BoxError;

/// A serde type that `cache = bincode` can keep.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached as bincode",
    label = "`cache = bincode` needs `serde::Serialize` and `serde::Deserialize` here",
    note = "derive them with `#[derive(serde::Serialize, serde::Deserialize)]`, or leave `cache` out to keep the value in memory only"
)]
pub trait BincodeData: Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> BincodeData for T {}

impl<T: BincodeData> Codec<T> for Bincode {
    const ID: &'static str = "bincode/2";
    const EXTENSION: &'static str = "bin";
    const READS: Reads = Reads::Stream;

    fn encode<W: Write + Send>(value: &T, out: &mut W, _: &str) -> Result<(), BoxError> {
        bincode::serde::encode_into_std_write(value, out, bincode::config::standard())?;
        Ok(())
    }

    fn shape() -> Option<crate::Digest> {
        serde_shape::<T>()
    }

    fn decode(payload: Payload) -> Result<T, BoxError> {
        let checked = payload.is_checked();
        let bytes = match payload.into_segments() {
            Ok(segments) => return decode_segments(segments),
            Err(payload) => payload.into_bytes()?,
        };
        if checked {
            // Checked bytes are exactly what the encoder wrote, so the lengths they hold
            // need no bound.
            whole(
                bincode::serde::decode_from_slice(&bytes, bincode::config::standard())?,
                &bytes,
            )
        } else {
            whole(decode_limited::<T>(&bytes)?, &bytes)
        }
    }
}

/// Decodes a value from segments checked as the decoder reaches them.
fn decode_segments<T: BincodeData>(mut segments: Segments) -> Result<T, BoxError> {
    let len = segments.len();
    let read = Cell::new(0);
    let reader = SegmentReader {
        segments: &mut segments,
        buf: Vec::new(),
        pos: 0,
        before: 0,
        read: &read,
    };
    // By value: a reader behind a reference keeps the decoder's small reads from
    // inlining.
    let value = bincode::serde::decode_from_reader(reader, bincode::config::standard())?;
    if read.get() != len {
        return Err(format!("{} bytes left over after the value", len - read.get()).into());
    }
    Ok(value)
}

/// A bincode reader over checked segments, fetched as the decoder gets to them. Lengths a
/// decoder reads are then the encoder's own, so it needs no bound on what they claim.
struct SegmentReader<'a> {
    segments: &'a mut Segments,
    /// The segment being read.
    buf: Vec<u8>,
    /// Where the decoder is in `buf`.
    pos: usize,
    /// Bytes in the segments before `buf`.
    before: u64,
    /// Set when the reader is dropped: how many bytes the decoder read.
    read: &'a Cell<u64>,
}

impl Drop for SegmentReader<'_> {
    fn drop(&mut self) {
        self.read.set(self.before + self.pos as u64);
    }
}

impl SegmentReader<'_> {
    /// Reads across the end of the current segment.
    #[cold]
    fn read_across(&mut self, mut out: &mut [u8]) -> Result<(), bincode::error::DecodeError> {
        loop {
            let here = &self.buf[self.pos..];
            let n = here.len().min(out.len());
            out[..n].copy_from_slice(&here[..n]);
            self.pos += n;
            out = &mut out[n..];
            if out.is_empty() {
                return Ok(());
            }
            let next = match self.segments.next_checked() {
                Ok(Some(next)) => next,
                Ok(None) => {
                    return Err(bincode::error::DecodeError::UnexpectedEnd {
                        additional: out.len(),
                    });
                }
                Err(_) => {
                    return Err(bincode::error::DecodeError::Other(
                        "payload checksum differs from its metadata",
                    ));
                }
            };
            self.before += self.buf.len() as u64;
            self.pos = 0;
            let done = std::mem::replace(&mut self.buf, next);
            self.segments.recycle(done);
        }
    }
}

impl bincode::de::read::Reader for SegmentReader<'_> {
    #[inline]
    fn read(&mut self, out: &mut [u8]) -> Result<(), bincode::error::DecodeError> {
        match self.buf.get(self.pos..self.pos + out.len()) {
            Some(here) => {
                out.copy_from_slice(here);
                self.pos += out.len();
                Ok(())
            }
            None => self.read_across(out),
        }
    }

    /// `None` across a segment's end: the decoder then calls `read`.
    #[inline]
    fn peek_read(&mut self, n: usize) -> Option<&[u8]> {
        self.buf.get(self.pos..self.pos + n)
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

/// The value, when it used every byte of the payload.
fn whole<T>((value, read): (T, usize), bytes: &[u8]) -> Result<T, BoxError> {
    if read != bytes.len() {
        return Err(format!("{} bytes left over after the value", bytes.len() - read).into());
    }
    Ok(value)
}

/// Decodes with a bound on what the payload may claim: bincode counts the in-memory size of
/// what it reads (8 bytes for a one-byte varint `u64`, a container's length times its
/// element size), which for usual data stays within a small multiple of the payload. A
/// damaged length can then never ask for more memory than that bound (an allocation that
/// size would abort the process). Verified payloads skip the bound: see
/// [`Payload::is_checked`].
fn decode_limited<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    use bincode::config::standard;
    use bincode::serde::decode_from_slice;
    let bound = bytes.len().saturating_mul(CLAIM_PER_BYTE).max(1 << 20);
    macro_rules! tiers {
        ($($limit:expr),*) => {
            $(if bound <= $limit {
                return decode_from_slice(bytes, standard().with_limit::<{ $limit }>());
            })*
        };
    }
    tiers!(
        1 << 20,
        1 << 24,
        1 << 28,
        1 << 32,
        1 << 36,
        1 << 40,
        1 << 44
    );
    decode_from_slice(bytes, standard().with_limit::<{ 1 << 48 }>())
}

/// What a decode may claim per payload byte: at most 16 for a one-byte varint `u128`,
/// doubled for the containers that hold the values.
const CLAIM_PER_BYTE: usize = 32;

/// The serde shape of `T` (field names, types and order, variants), traced once per type.
///
/// bincode writes no field names: a struct whose fields were reordered or retyped could
/// decode old bytes into a wrong value. With the shape in the key it never meets them.
/// Types whose `Deserialize` cannot be traced (a hand-written one that needs real input)
/// have no shape; for them a failed decode is the last line of defence.
fn serde_shape<T: DeserializeOwned + 'static>() -> Option<crate::Digest> {
    static SHAPES: LazyLock<Mutex<HashMap<TypeId, Option<crate::Digest>>>> =
        LazyLock::new(Mutex::default);
    let id = TypeId::of::<T>();
    if let Some(shape) = SHAPES.lock().ok().and_then(|s| s.get(&id).copied()) {
        return shape;
    }
    let traced = std::panic::catch_unwind(|| {
        let mut tracer = Tracer::new(TracerConfig::default());
        let (format, _) = tracer.trace_simple_type::<T>().ok()?;
        let registry = tracer.registry().ok()?;
        let bytes = serde_json::to_vec(&(format, registry)).ok()?;
        Some(crate::Digest::of(&bytes))
    });
    let shape = traced.ok().flatten();
    if let Ok(mut shapes) = SHAPES.lock() {
        shapes.insert(id, shape);
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::round_trip;

    #[test]
    fn bincode_round_trips_and_rejects_trailing_bytes() {
        let v = vec![(1u32, "a".to_string()), (2, "b".to_string())];
        assert_eq!(round_trip::<Bincode, _>(&v), v);
        let mut bytes = Vec::new();
        <Bincode as Codec<Vec<(u32, String)>>>::encode(&v, &mut bytes, "").unwrap();
        bytes.push(0);
        assert!(<Bincode as Codec<Vec<(u32, String)>>>::decode(Payload::unchecked(bytes)).is_err());
    }

    #[test]
    fn the_shape_follows_the_type_definition() {
        mod v1 {
            #[derive(serde::Serialize, serde::Deserialize)]
            pub struct Row {
                pub a: u32,
                pub b: String,
            }
        }
        mod v2 {
            #[derive(serde::Serialize, serde::Deserialize)]
            pub struct Row {
                pub b: String,
                pub a: u32,
            }
        }
        mod v3 {
            #[derive(serde::Serialize, serde::Deserialize)]
            pub struct Row {
                pub a: u64,
                pub b: String,
            }
        }
        let shapes = [
            <Bincode as Codec<Vec<v1::Row>>>::shape(),
            <Bincode as Codec<Vec<v2::Row>>>::shape(),
            <Bincode as Codec<Vec<v3::Row>>>::shape(),
        ];
        assert!(shapes.iter().all(Option::is_some));
        assert_ne!(shapes[0], shapes[1]);
        assert_ne!(shapes[0], shapes[2]);
        assert_eq!(shapes[0], <Bincode as Codec<Vec<v1::Row>>>::shape());
    }

    /// A large value of small varints claims far more than its payload's size.
    #[test]
    fn large_bincode_values_decode() {
        let rows: Vec<(u64, bool, u32)> = (0..300_000).map(|i| (i % 100, i % 2 == 0, 1)).collect();
        assert_eq!(round_trip::<Bincode, _>(&rows), rows);

        let empty: Vec<Vec<()>> = vec![vec![(); 1000]; 1000];
        assert_eq!(round_trip::<Bincode, _>(&empty), empty);
    }

    /// A verified payload decodes however much its values claim in memory.
    #[test]
    fn verified_payloads_are_not_bounded() {
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        #[allow(
            clippy::large_enum_variant,
            reason = "a small encoding that claims a lot"
        )]
        enum Wide {
            Small,
            Large([u64; 32]),
        }
        let wide: Vec<Wide> = (0..100_000).map(|_| Wide::Small).collect();
        let mut bytes = Vec::new();
        <Bincode as Codec<Vec<Wide>>>::encode(&wide, &mut bytes, "").unwrap();
        let back = <Bincode as Codec<Vec<Wide>>>::decode(Payload::checked(bytes.into())).unwrap();
        assert_eq!(back, wide);
    }

    /// Reads `value` back through checked segments, as a hit on a large entry does.
    fn through_segments<T: BincodeData + std::fmt::Debug + PartialEq>(value: &T) -> T {
        use std::io::Seek;
        let mut file = tempfile::tempfile().unwrap();
        let mut writer = crate::store::PayloadWriter::new(file.try_clone().unwrap());
        <Bincode as Codec<T>>::encode(value, &mut writer, "").unwrap();
        let written = writer.finish().unwrap();
        let (len, sum) = (written.bytes, written.checksum);
        assert!(sum.segments.len() > 1, "{len} bytes make one segment");
        file.rewind().unwrap();
        std::thread::scope(|s| {
            let segments =
                crate::store::check_segments(s, file, len, sum.blake3, &sum.segments).unwrap();
            <Bincode as Codec<T>>::decode(Payload::checked_segments(segments)).unwrap()
        })
    }

    #[test]
    fn values_read_through_segments_come_back_whole() {
        // Strings of every length up to 300 bytes cross segment ends at every offset.
        let words: Vec<String> = (0..40_000).map(|i| "é".repeat(i % 150)).collect();
        assert_eq!(through_segments(&words), words);
        let numbers: Vec<(u64, f64, bool)> =
            (0..400_000).map(|i| (i * 7919, 0.5, i % 3 == 0)).collect();
        assert_eq!(through_segments(&numbers), numbers);
    }
}
