//! `cache = parquet`: Arrow record batches in Parquet files, written a row group at a time
//! and decoded column-parallel.

use std::io::Write;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::ChunkReader;

use super::ipc::{ArrowData, schema_of};
use super::{Codec, Parquet, Payload, Reads};
use crate::BoxError;
use crate::config::{Config, ParquetCompression};

mod positional;

use positional::Positional;

/// Data that `cache = parquet` can keep: an Arrow `RecordBatch` or `Vec<RecordBatch>`
/// (and, with the `polars` feature, a Polars `DataFrame`).
///
/// Both are written a row group of at most [`ROW_GROUP_ROWS`] rows at a time (each written
/// while the next is encoded). A `RecordBatch` is read back as one batch; a
/// `Vec<RecordBatch>` as the same rows in the same order, one batch per row group: the
/// batches are not cut at the same places. An empty `Vec` has no schema;
/// it is kept as a file without columns and read back as an empty `Vec`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached as parquet",
    label = "`cache = parquet` needs an Arrow `RecordBatch` or `Vec<RecordBatch>` here",
    note = "use `cache = bincode` for a serde type, or leave `cache` out to keep the value in memory only"
)]
pub trait ParquetData: Sized + Send + Sync + 'static {
    /// How [`ParquetData::read_parquet`] wants its payload.
    const READS: Reads = Reads::File;

    /// Writes `self` as a Parquet file with `compression`.
    ///
    /// # Errors
    /// When the value cannot be written as Parquet, or `out` fails.
    fn write_parquet<W: Write + Send>(
        &self,
        out: &mut W,
        compression: ParquetCompression,
    ) -> Result<(), BoxError>;

    /// Reads back a value that [`ParquetData::write_parquet`] wrote.
    ///
    /// # Errors
    /// When the payload is not such a file (only possible for an unchecked one).
    fn read_parquet(payload: Payload) -> Result<Self, BoxError>;
}

/// Rows per row group (Parquet's own default).
pub const ROW_GROUP_ROWS: usize = 1 << 20;

impl ParquetData for RecordBatch {
    fn write_parquet<W: Write + Send>(
        &self,
        out: &mut W,
        compression: ParquetCompression,
    ) -> Result<(), BoxError> {
        write_batches(self, out, compression, ROW_GROUP_ROWS)
    }

    fn read_parquet(payload: Payload) -> Result<Self, BoxError> {
        let (schema, batches) = read_batches(payload, Cut::Whole)?;
        RecordBatch::from_batches(schema, batches)
    }
}

impl ParquetData for Vec<RecordBatch> {
    fn write_parquet<W: Write + Send>(
        &self,
        out: &mut W,
        compression: ParquetCompression,
    ) -> Result<(), BoxError> {
        write_batches(self, out, compression, ROW_GROUP_ROWS)
    }

    fn read_parquet(payload: Payload) -> Result<Self, BoxError> {
        let (schema, batches) = read_batches(payload, Cut::RowGroups)?;
        Vec::from_batches(schema, batches)
    }
}

impl<T: ParquetData> Codec<T> for Parquet {
    const ID: &'static str = "parquet/1";
    const EXTENSION: &'static str = "parquet";
    const READS: Reads = T::READS;

    fn settings(config: &Config) -> String {
        config.compression().name().to_owned()
    }

    fn encode<W: Write + Send>(value: &T, out: &mut W, settings: &str) -> Result<(), BoxError> {
        let compression = ParquetCompression::from_name(settings)
            .ok_or_else(|| format!("unknown parquet compression `{settings}`"))?;
        value.write_parquet(out, compression)
    }

    fn decode(payload: Payload) -> Result<T, BoxError> {
        // Parquet readers assert on some malformed files instead of returning an error.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| T::read_parquet(payload)))
            .unwrap_or_else(|_| Err("malformed parquet file (the reader panicked)".into()))
    }
}

impl ParquetCompression {
    /// This compression as Parquet names it.
    #[must_use]
    pub fn to_parquet(self) -> Compression {
        match self {
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::Zstd => Compression::ZSTD(parquet::basic::ZstdLevel::default()),
            ParquetCompression::None => Compression::UNCOMPRESSED,
        }
    }
}

/// Writes the batches of `value` into one Parquet file, a row group every `group_rows`
/// rows, each written as soon as it is full.
///
/// Without compression, values are written plain, without dictionaries: encoding is then
/// about 1.6 times faster and decoding no slower (W1), for files about a quarter larger.
/// With a compression, dictionaries make the files smaller still.
fn write_batches<T: ArrowData, W: Write + Send>(
    value: &T,
    out: &mut W,
    compression: ParquetCompression,
    group_rows: usize,
) -> Result<(), BoxError> {
    let props = WriterProperties::builder()
        .set_compression(compression.to_parquet())
        .set_dictionary_enabled(compression != ParquetCompression::None)
        .set_max_row_group_row_count(Some(group_rows.max(1)))
        .build();
    let mut writer = ArrowWriter::try_new(out, schema_of(value), Some(props))?;
    for batch in value.batches() {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(())
}

/// How the rows of a file are cut into batches when they are read.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// One batch of every row.
    Whole,
    /// One batch per row group.
    RowGroups,
}

/// Reads a Parquet payload, from its open file when it comes as one (a positional read of
/// each page, so that the payload is never in memory beside the batches), else from its
/// bytes.
fn read_batches(payload: Payload, cut: Cut) -> Result<(SchemaRef, Vec<RecordBatch>), BoxError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let len = payload.len();
    match payload.into_file() {
        Ok(file) => decode_in_groups(
            Positional::new(file, len),
            cut,
            threads,
            PARALLEL_DECODE_MIN,
        ),
        Err(payload) => decode_in_groups(payload.into_bytes()?, cut, threads, PARALLEL_DECODE_MIN),
    }
}

/// Decodes the file `input`, its root columns split into groups of about equal size, each
/// group decoded on its own thread; the groups' arrays are joined without a copy.
fn decode_in_groups<R: ChunkReader + Clone + 'static>(
    input: R,
    cut: Cut,
    threads: usize,
    min_bytes: u64,
) -> Result<(SchemaRef, Vec<RecordBatch>), BoxError> {
    let metadata = ArrowReaderMetadata::load(&input, ArrowReaderOptions::default())?;
    let schema = Arc::clone(metadata.schema());
    let file = metadata.metadata();
    let rows = usize::try_from(file.file_metadata().num_rows())?;
    let batch_rows = match cut {
        Cut::Whole => rows,
        Cut::RowGroups => file
            .row_groups()
            .iter()
            .map(|g| usize::try_from(g.num_rows()).unwrap_or(0))
            .max()
            .unwrap_or(0),
    };
    let groups = column_groups(&metadata, threads, min_bytes);
    if groups.len() < 2 {
        let batches = read_columns(input, metadata, None, batch_rows)?;
        return Ok((schema, batches));
    }
    let parts = std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .iter()
            .map(|group| {
                let (input, metadata) = (input.clone(), metadata.clone());
                s.spawn(move || read_columns(input, metadata, Some(group), batch_rows))
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
    let count = parts.first().map_or(0, Vec::len);
    if parts.iter().any(|p| p.len() != count) {
        return Err("parquet column groups read into different batches".into());
    }
    let mut parts: Vec<_> = parts.into_iter().map(Vec::into_iter).collect();
    let batches = (0..count)
        .map(|_| {
            let mut columns = vec![None; schema.fields().len()];
            let mut rows = 0;
            for (group, part) in groups.iter().zip(&mut parts) {
                let part = part.next().ok_or("a column group ended early")?;
                rows = part.num_rows();
                for (&root, column) in group.iter().zip(part.columns()) {
                    columns[root] = Some(Arc::clone(column));
                }
            }
            let columns = columns
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or("a column was not read")?;
            let options = RecordBatchOptions::new().with_row_count(Some(rows));
            Ok(RecordBatch::try_new_with_options(
                Arc::clone(&schema),
                columns,
                &options,
            )?)
        })
        .collect::<Result<Vec<_>, BoxError>>()?;
    Ok((schema, batches))
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

/// Reads the root columns `roots` (all when `None`) in batches of `batch_rows` rows.
fn read_columns<R: ChunkReader + 'static>(
    input: R,
    metadata: ArrowReaderMetadata,
    roots: Option<&Vec<usize>>,
    batch_rows: usize,
) -> Result<Vec<RecordBatch>, BoxError> {
    let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(input, metadata);
    if let Some(roots) = roots {
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
        builder = builder.with_projection(mask);
    }
    let reader = builder.with_batch_size(batch_rows.max(1)).build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::round_trip;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use bytes::Bytes;

    fn batch(from: i64, rows: i64) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("x", DataType::Float64, false),
        ]);
        let ids: Vec<i64> = (from..from + rows).collect();
        let names: Vec<Option<String>> = ids
            .iter()
            .map(|i| (i % 3 != 0).then(|| format!("n{i}")))
            .collect();
        #[allow(clippy::cast_precision_loss)]
        let xs: Vec<f64> = ids.iter().map(|&i| i as f64 / 2.0).collect();
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

    #[test]
    fn parquet_round_trips_batches_of_any_size() {
        for rows in [0, 1, 1000] {
            let b = batch(0, rows);
            assert_eq!(round_trip::<Parquet, RecordBatch>(&b), b);
        }
    }

    #[test]
    fn many_batches_come_back_as_the_same_rows() {
        let many = vec![batch(0, 3), batch(3, 0), batch(3, 5000)];
        let back = round_trip::<Parquet, Vec<RecordBatch>>(&many);
        assert_eq!(back, [batch(0, 5003)]);
        assert!(round_trip::<Parquet, Vec<RecordBatch>>(&Vec::new()).is_empty());
        let empty = vec![batch(0, 0)];
        assert_eq!(round_trip::<Parquet, Vec<RecordBatch>>(&empty), empty);
    }

    #[test]
    fn batches_of_another_schema_are_an_error() {
        let one = RecordBatch::try_from_iter([(
            "other",
            Arc::new(Int64Array::from(vec![1])) as arrow::array::ArrayRef,
        )])
        .unwrap();
        let mut bytes = Vec::new();
        let mixed = vec![batch(0, 2), one];
        assert!(<Parquet as Codec<Vec<RecordBatch>>>::encode(&mixed, &mut bytes, "none").is_err());
    }

    #[test]
    fn columns_decoded_in_groups_join_into_the_same_batches() {
        let b = batch(0, 5000);
        let mut bytes = Vec::new();
        <Parquet as Codec<RecordBatch>>::encode(&b, &mut bytes, "snappy").unwrap();
        let bytes = Bytes::from(bytes);
        for threads in [1, 2, 3, 8] {
            let (_, back) = decode_in_groups(bytes.clone(), Cut::Whole, threads, 0).unwrap();
            assert_eq!(back, std::slice::from_ref(&b), "{threads} threads");
        }
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let file = Positional::new(file, bytes.len() as u64);
        let (_, back) = decode_in_groups(file, Cut::RowGroups, 2, 0).unwrap();
        assert_eq!(back, [b]);
    }
}
