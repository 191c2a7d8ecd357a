//! How a stage's output becomes bytes in the cache and back.

use std::any::TypeId;
use std::cell::Cell;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_reflection::{Tracer, TracerConfig};

use crate::BoxError;
use crate::checksum::Segments;

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

/// Arrow data that `cache = parquet` can keep.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached as parquet",
    label = "`cache = parquet` needs an Arrow `RecordBatch` here",
    note = "use `cache = bincode` for a serde type, or leave `cache` out to keep the value in memory only"
)]
pub trait ParquetData: Sized + Send + Sync + 'static {
    /// The batch to write.
    fn batch(&self) -> &RecordBatch;
    /// The value for a batch read back.
    fn from_batch(batch: RecordBatch) -> Self;
}

impl ParquetData for RecordBatch {
    fn batch(&self) -> &RecordBatch {
        self
    }
    fn from_batch(batch: RecordBatch) -> Self {
        batch
    }
}

impl<T: ParquetData> Codec<T> for Parquet {
    const ID: &'static str = "parquet/1";

    fn settings() -> &'static str {
        parquet_compression().1
    }
    const EXTENSION: &'static str = "parquet";

    fn encode<W: Write + Send>(value: &T, out: W) -> Result<W, BoxError> {
        let batch = value.batch();
        let props = WriterProperties::builder()
            .set_compression(parquet_compression().0)
            .set_max_row_group_row_count(Some(batch.num_rows().max(1)))
            .build();
        let mut writer = ArrowWriter::try_new(out, batch.schema(), Some(props))?;
        writer.write(batch)?;
        Ok(writer.into_inner()?)
    }

    fn decode(bytes: Bytes) -> Result<T, BoxError> {
        // The parquet reader asserts on some malformed files instead of returning an error.
        std::panic::catch_unwind(|| decode_parquet(bytes))
            .unwrap_or_else(|_| Err("malformed parquet file (the reader panicked)".into()))
            .map(T::from_batch)
    }
}

/// Reads a verified parquet payload, its columns split into groups of about equal size,
/// each group decoded on its own thread; the groups' arrays are joined without a copy.
fn decode_parquet(bytes: Bytes) -> Result<RecordBatch, BoxError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    decode_in_groups(bytes, threads, PARALLEL_DECODE_MIN)
}

fn decode_in_groups(bytes: Bytes, threads: usize, min_bytes: u64) -> Result<RecordBatch, BoxError> {
    let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::default())?;
    let schema = Arc::clone(metadata.schema());
    let groups = column_groups(&metadata, threads, min_bytes);
    if groups.len() < 2 {
        return read_columns(bytes, metadata, None);
    }
    let parts = std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .iter()
            .map(|group| {
                let (bytes, metadata) = (bytes.clone(), metadata.clone());
                s.spawn(move || read_columns(bytes, metadata, Some(group)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a parquet reader panicked".into()))
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    let mut columns = vec![None; schema.fields().len()];
    for (group, part) in groups.iter().zip(parts) {
        for (&root, column) in group.iter().zip(part.columns()) {
            columns[root] = Some(Arc::clone(column));
        }
    }
    let columns = columns
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or("a column was not read")?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The file's root columns in groups of about equal compressed size, one group per core
/// (a single group when the file is small or has one column).
fn column_groups(
    metadata: &ArrowReaderMetadata,
    threads: usize,
    min_bytes: u64,
) -> Vec<Vec<usize>> {
    let parquet = metadata.metadata();
    let descr = parquet.file_metadata().schema_descr();
    let roots = metadata.schema().fields().len();
    let mut sizes = vec![0u64; roots];
    for group in parquet.row_groups() {
        for (leaf, column) in group.columns().iter().enumerate() {
            let root = descr.get_column_root_idx(leaf);
            if let Some(size) = sizes.get_mut(root) {
                *size += u64::try_from(column.compressed_size()).unwrap_or(0);
            }
        }
    }
    let total: u64 = sizes.iter().sum();
    let by_size = usize::try_from(total / min_bytes.max(1)).unwrap_or(usize::MAX);
    let wanted = threads.min(roots).min(by_size).max(1);
    let mut order: Vec<usize> = (0..roots).collect();
    order.sort_by_key(|&r| std::cmp::Reverse(sizes[r]));
    let mut groups: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); wanted];
    for root in order {
        if let Some(lightest) = groups.iter_mut().min_by_key(|g| g.0) {
            lightest.0 += sizes[root];
            lightest.1.push(root);
        }
    }
    groups
        .into_iter()
        .map(|(_, mut g)| {
            g.sort_unstable();
            g
        })
        .filter(|g| !g.is_empty())
        .collect()
}

/// Below this many compressed bytes per thread, one reader is faster than several.
const PARALLEL_DECODE_MIN: u64 = 1 << 20;

/// Reads the root columns `roots` (all when `None`) into one batch.
fn read_columns(
    bytes: Bytes,
    metadata: ArrowReaderMetadata,
    roots: Option<&Vec<usize>>,
) -> Result<RecordBatch, BoxError> {
    let rows = usize::try_from(metadata.metadata().file_metadata().num_rows())?;
    let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, metadata);
    if let Some(roots) = roots {
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
        builder = builder.with_projection(mask);
    }
    let schema = Arc::clone(builder.schema());
    let reader = builder.with_batch_size(rows.max(1)).build()?;
    let mut batches = reader.collect::<Result<Vec<_>, _>>()?;
    let batch = match batches.len() {
        0 => RecordBatch::new_empty(Arc::clone(&schema)),
        1 => batches.remove(0),
        _ => arrow::compute::concat_batches(&schema, &batches)?,
    };
    Ok(batch)
}

/// The page compression of new parquet entries: `STAGE_PARQUET_COMPRESSION` = `snappy`
/// (the default: fastest to write and read on W1), `zstd` (level 1: smaller files, slower to
/// write) or `none`; an unknown value falls back to the default with a warning.
fn parquet_compression() -> (Compression, &'static str) {
    static CHOSEN: LazyLock<(Compression, &'static str)> = LazyLock::new(|| {
        match std::env::var("STAGE_PARQUET_COMPRESSION")
            .as_deref()
            .map(str::trim)
        {
            Err(_) | Ok("" | "snappy") => (Compression::SNAPPY, "snappy"),
            Ok("zstd") => (
                Compression::ZSTD(parquet::basic::ZstdLevel::default()),
                "zstd1",
            ),
            Ok("none") => (Compression::UNCOMPRESSED, "none"),
            Ok(other) => {
                crate::exec::warn(&format!(
                    "STAGE_PARQUET_COMPRESSION={other} is not one of snappy, zstd, none: using snappy"
                ));
                (Compression::SNAPPY, "snappy")
            }
        }
    });
    *CHOSEN
}

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

    fn encode<W: Write + Send>(value: &T, mut out: W) -> Result<W, BoxError> {
        bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard())?;
        Ok(out)
    }

    fn shape() -> Option<crate::Digest> {
        serde_shape::<T>()
    }

    fn decode(bytes: Bytes) -> Result<T, BoxError> {
        whole(decode_limited::<T>(&bytes)?, &bytes)
    }

    fn decode_verified(bytes: Bytes) -> Result<T, BoxError> {
        whole(
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard())?,
            &bytes,
        )
    }

    const STREAMS: bool = true;

    fn decode_segments(mut segments: Segments) -> Result<T, BoxError> {
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
/// [`Codec::decode_verified`].
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(rows: i64) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("x", DataType::Float64, false),
        ]);
        let ids: Vec<i64> = (0..rows).collect();
        let names: Vec<Option<String>> = (0..rows)
            .map(|i| (i % 3 != 0).then(|| format!("n{i}")))
            .collect();
        #[allow(clippy::cast_precision_loss)]
        let xs: Vec<f64> = (0..rows).map(|i| i as f64 / 2.0).collect();
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
                Arc::new(Float64Array::from(xs)),
            ],
        )
        .unwrap()
    }

    fn round_trip<C: Codec<T>, T>(value: &T) -> T {
        let bytes = C::encode(value, Vec::new()).unwrap();
        C::decode(Bytes::from(bytes)).unwrap()
    }

    #[test]
    fn parquet_round_trips_batches_of_any_size() {
        for rows in [0, 1, 1000] {
            let b = batch(rows);
            assert_eq!(round_trip::<Parquet, RecordBatch>(&b), b);
        }
    }

    #[test]
    fn columns_decoded_in_groups_join_into_the_same_batch() {
        let b = batch(5000);
        let bytes = Bytes::from(<Parquet as Codec<RecordBatch>>::encode(&b, Vec::new()).unwrap());
        for threads in [1, 2, 3, 8] {
            assert_eq!(
                decode_in_groups(bytes.clone(), threads, 0).unwrap(),
                b,
                "{threads} threads"
            );
        }
    }

    #[test]
    fn bincode_round_trips_and_rejects_trailing_bytes() {
        let v = vec![(1u32, "a".to_string()), (2, "b".to_string())];
        assert_eq!(round_trip::<Bincode, _>(&v), v);
        let mut bytes = <Bincode as Codec<Vec<(u32, String)>>>::encode(&v, Vec::new()).unwrap();
        bytes.push(0);
        assert!(<Bincode as Codec<Vec<(u32, String)>>>::decode(Bytes::from(bytes)).is_err());
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
        let bytes = <Bincode as Codec<Vec<Wide>>>::encode(&wide, Vec::new()).unwrap();
        let back = <Bincode as Codec<Vec<Wide>>>::decode_verified(Bytes::from(bytes)).unwrap();
        assert_eq!(back, wide);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let junk = Bytes::from_static(b"PAR1 definitely not parquet PAR1");
        assert!(<Parquet as Codec<RecordBatch>>::decode(junk.clone()).is_err());
        assert!(<Bincode as Codec<Vec<String>>>::decode(junk).is_err());
    }
}
