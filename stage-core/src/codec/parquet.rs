//! `cache = parquet`: Arrow record batches in Parquet files, decoded column-parallel.

use std::io::Write;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::{Codec, Parquet, Payload};
use crate::BoxError;
use crate::config::{Config, ParquetCompression};

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
    const EXTENSION: &'static str = "parquet";

    fn settings(config: &Config) -> String {
        config.compression().name().to_owned()
    }

    fn encode<W: Write + Send>(value: &T, out: &mut W, settings: &str) -> Result<(), BoxError> {
        let compression = ParquetCompression::from_name(settings)
            .ok_or_else(|| format!("unknown parquet compression `{settings}`"))?;
        let batch = value.batch();
        let props = WriterProperties::builder()
            .set_compression(compression.to_parquet())
            .set_max_row_group_row_count(Some(batch.num_rows().max(1)))
            .build();
        let mut writer = ArrowWriter::try_new(out, batch.schema(), Some(props))?;
        writer.write(batch)?;
        writer.close()?;
        Ok(())
    }

    fn decode(payload: Payload) -> Result<T, BoxError> {
        let bytes = payload.into_bytes()?;
        // The parquet reader asserts on some malformed files instead of returning an error.
        std::panic::catch_unwind(|| decode_parquet(bytes))
            .unwrap_or_else(|_| Err("malformed parquet file (the reader panicked)".into()))
            .map(T::from_batch)
    }
}

impl ParquetCompression {
    fn to_parquet(self) -> Compression {
        match self {
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::Zstd => Compression::ZSTD(parquet::basic::ZstdLevel::default()),
            ParquetCompression::None => Compression::UNCOMPRESSED,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::round_trip;
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
        let mut bytes = Vec::new();
        <Parquet as Codec<RecordBatch>>::encode(&b, &mut bytes, "snappy").unwrap();
        let bytes = Bytes::from(bytes);
        for threads in [1, 2, 3, 8] {
            assert_eq!(
                decode_in_groups(bytes.clone(), threads, 0).unwrap(),
                b,
                "{threads} threads"
            );
        }
    }
}
