//! The W1 workload, shared by `benches/w1.rs` and `examples/w1.rs`: a deterministic CSV of
//! trips-like rows, the pipeline `load` (CSV → parquet) → `clean` (keep flagged rows, add
//! `z = x * y`, parquet) → `summary` (rows and sum of `z` per category, memory only), once
//! through `#[stage]` and once written by hand with arrow and parquet.

#![allow(dead_code, reason = "each user of this file uses a part of it")]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use stage::arrow::array::{Array, BooleanArray, Float64Array, RecordBatch, StringArray};
use stage::arrow::compute::{filter_record_batch, kernels::numeric::mul};
use stage::arrow::datatypes::{DataType, Field, Schema};
use stage::parquet::arrow::ArrowWriter;
use stage::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use stage::parquet::basic::Compression;
use stage::parquet::file::properties::WriterProperties;
use stage::stage;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Rows in the full workload.
pub const ROWS: usize = 2_000_000;

/// Writes the W1 CSV with `rows` rows to `path` unless it is already there.
pub fn generate(path: &Path, rows: usize) -> std::io::Result<PathBuf> {
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    writeln!(out, "id,ts,category,x,y,flag")?;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for id in 0..rows {
        let secs = id as u64 * 7;
        let (day, rest) = (secs / 86_400, secs % 86_400);
        let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
        let category = next() % 20;
        let (x, y) = (unit(next()) * 100.0, unit(next()) * 10.0);
        let flag = next() % 2 == 0;
        writeln!(
            out,
            "{id},2024-{:02}-{:02}T{hour:02}:{minute:02}:{second:02},cat_{category:02},{x:.4},{y:.4},{flag}",
            1 + day / 28 % 12,
            1 + day % 28
        )?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, path)?;
    Ok(path.to_path_buf())
}

/// A uniform float in [0, 1) from 53 random bits.
#[allow(clippy::cast_precision_loss, reason = "53 bits fit a f64 exactly")]
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("ts", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("x", DataType::Float64, false),
        Field::new("y", DataType::Float64, false),
        Field::new("flag", DataType::Boolean, false),
    ]))
}

/// CSV → one batch.
pub fn read_csv(path: &Path) -> Result<RecordBatch, BoxError> {
    let file = File::open(path)?;
    let reader = stage::arrow::csv::ReaderBuilder::new(schema())
        .with_header(true)
        .with_batch_size(1 << 16)
        .build(file)?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok(stage::arrow::compute::concat_batches(&schema(), &batches)?)
}

/// Keep flagged rows, add `z = x * y`.
pub fn clean_batch(batch: &RecordBatch) -> Result<RecordBatch, BoxError> {
    let flag = batch
        .column_by_name("flag")
        .ok_or("no flag")?
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or("flag")?;
    let kept = filter_record_batch(batch, flag)?;
    let z = mul(
        kept.column_by_name("x").ok_or("no x")?,
        kept.column_by_name("y").ok_or("no y")?,
    )?;
    let mut fields: Vec<Field> = kept
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("z", DataType::Float64, false));
    let mut columns = kept.columns().to_vec();
    columns.push(z);
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Rows, and the sum of `z` per category.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub rows: usize,
    pub z_by_category: BTreeMap<String, f64>,
}

pub fn summarise(batch: &RecordBatch) -> Result<Summary, BoxError> {
    let cat = batch
        .column_by_name("category")
        .ok_or("no category")?
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or("category")?;
    let z = batch
        .column_by_name("z")
        .ok_or("no z")?
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or("z")?;
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for i in 0..batch.num_rows() {
        *sums.entry(cat.value(i).to_owned()).or_default() += z.value(i);
    }
    Ok(Summary {
        rows: batch.num_rows(),
        z_by_category: sums,
    })
}

// ---- through #[stage]

#[stage(cache = parquet)]
pub fn load(csv: stage::File) -> Result<RecordBatch, BoxError> {
    read_csv(csv.path())
}

#[stage(trips = load(csv), cache = parquet)]
pub fn clean(trips: &RecordBatch, csv: stage::File) -> Result<RecordBatch, BoxError> {
    clean_batch(trips)
}

#[stage(rows = clean(csv))]
pub fn summary(rows: &RecordBatch, csv: stage::File) -> Result<Summary, BoxError> {
    summarise(rows)
}

// ---- by hand: the same files, checked by existence only

fn write_parquet(batch: &RecordBatch, path: &Path) -> Result<(), BoxError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(batch.num_rows().max(1)))
        .build();
    let file = File::create(path)?;
    let mut writer = ArrowWriter::try_new(
        BufWriter::with_capacity(1 << 20, file),
        batch.schema(),
        Some(props),
    )?;
    writer.write(batch)?;
    let file = writer
        .into_inner()?
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    file.sync_all()?;
    Ok(())
}

fn read_parquet(path: &Path) -> Result<RecordBatch, BoxError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)?;
    let rows = usize::try_from(builder.metadata().file_metadata().num_rows())?;
    let schema = builder.schema().clone();
    let batches = builder
        .with_batch_size(rows.max(1))
        .build()?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(stage::arrow::compute::concat_batches(&schema, &batches)?)
}

/// The pipeline written by hand, sequentially, caching `load` and `clean` in `dir`.
pub fn by_hand(csv: &Path, dir: &Path) -> Result<Summary, BoxError> {
    let (load_file, clean_file) = (dir.join("load.parquet"), dir.join("clean.parquet"));
    let clean = if clean_file.exists() {
        read_parquet(&clean_file)?
    } else {
        let loaded = if load_file.exists() {
            read_parquet(&load_file)?
        } else {
            std::fs::create_dir_all(dir)?;
            let batch = read_csv(csv)?;
            write_parquet(&batch, &load_file)?;
            batch
        };
        let clean = clean_batch(&loaded)?;
        write_parquet(&clean, &clean_file)?;
        clean
    };
    summarise(&clean)
}

/// The pipeline through `#[stage]`, caching in `dir`.
pub fn through_stage(csv: &Path, dir: &Path) -> Result<Summary, BoxError> {
    Ok(stage::Config::from_env()
        .dir(dir)
        .scope(|| summary(stage::File::new(csv)))?)
}
