//! The framework's hit path (read a cached stage) and miss path (compute and write it)
//! beside the same work done with parquet and bincode directly, for a 1,000,000-row
//! `RecordBatch` and a 1,000,000-element `Vec` of small structs.
//!
//! `cargo bench --bench cache`

#![allow(
    clippy::semicolon_if_nothing_returned,
    reason = "rustfmt makes long benchmark closures blocks"
)]

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use stage::arrow::array::{BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use stage::parquet::arrow::ArrowWriter;
use stage::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use stage::parquet::basic::Compression;
use stage::parquet::file::properties::WriterProperties;
use stage::stage;

const N: usize = 1_000_000;

fn make_batch(rows: usize) -> RecordBatch {
    let categories: Vec<String> = (0..20).map(|c| format!("cat_{c:02}")).collect();
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_wrap,
        reason = "synthetic data"
    )]
    let columns: Vec<(&str, Arc<dyn stage::arrow::array::Array>)> = vec![
        ("id", Arc::new(Int64Array::from_iter_values(0..rows as i64))),
        (
            "x",
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| (i * 7919 % 10_007) as f64 / 100.0),
            )),
        ),
        (
            "y",
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| (i * 104_729 % 1009) as f64 / 10.0),
            )),
        ),
        (
            "category",
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| &categories[i * 31 % 20]),
            )),
        ),
        (
            "flag",
            Arc::new(
                (0..rows)
                    .map(|i| Some(i % 3 == 0))
                    .collect::<BooleanArray>(),
            ),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    id: u64,
    x: f64,
    name_len: u32,
    ok: bool,
}

fn make_rows(n: usize) -> Vec<Row> {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        reason = "synthetic data"
    )]
    (0..n)
        .map(|i| Row {
            id: i as u64,
            x: i as f64 * 0.5,
            name_len: (i % 40) as u32,
            ok: i % 2 == 0,
        })
        .collect()
}

#[stage(cache = parquet, untracked = [make_batch])]
fn table(rows: usize) -> RecordBatch {
    make_batch(rows)
}

#[stage(cache = bincode, untracked = [make_rows])]
fn items(n: usize) -> Vec<Row> {
    make_rows(n)
}

/// The writer settings `cache = parquet` uses.
fn props(rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(rows.max(1)))
        .build()
}

fn write_parquet(batch: &RecordBatch, path: &Path) {
    let file = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(props(batch.num_rows()))).unwrap();
    writer.write(batch).unwrap();
    writer
        .into_inner()
        .unwrap()
        .into_inner()
        .unwrap()
        .sync_all()
        .unwrap();
}

fn read_parquet(path: &Path) -> RecordBatch {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap();
    builder
        .with_batch_size(rows)
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
}

fn write_bincode(rows: &[Row], path: &Path) {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    bincode::serde::encode_into_std_write(rows, &mut out, bincode::config::standard()).unwrap();
    out.flush().unwrap();
    out.into_inner().unwrap().sync_all().unwrap();
}

fn read_bincode(path: &Path) -> Vec<Row> {
    let bytes = std::fs::read(path).unwrap();
    bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
        .unwrap()
        .0
}

fn in_cache<R>(dir: &Path, f: impl FnOnce() -> R) -> R {
    stage::Config::from_env().dir(dir).scope(f)
}

/// The hit and miss groups of one format: `stage` calls the cached stage, `read` and
/// `write` do the same work directly on a file.
fn hit_and_miss<T: PartialEq + std::fmt::Debug>(
    c: &mut Criterion,
    format: &str,
    stage: impl Fn() -> Result<T, stage::Error>,
    compute: impl Fn() -> T,
    read: impl Fn(&Path) -> T,
    write: impl Fn(&T, &Path),
) {
    let (cache, direct) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = direct.path().join("direct");
    write(&compute(), &file);
    assert_eq!(in_cache(cache.path(), &stage).unwrap(), read(&file));

    let mut hit = c.benchmark_group(format!("{format}-hit"));
    hit.sample_size(20).measurement_time(Duration::from_secs(6));
    hit.bench_function("direct", |b| b.iter(|| black_box(read(&file))));
    hit.bench_function("stage", |b| {
        b.iter(|| black_box(in_cache(cache.path(), &stage).unwrap()))
    });
    hit.finish();

    let mut miss = c.benchmark_group(format!("{format}-miss"));
    miss.sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let fresh = || tempfile::tempdir().unwrap();
    miss.bench_function("direct", |b| {
        b.iter_batched(
            fresh,
            |d| write(&black_box(compute()), &d.path().join("direct")),
            BatchSize::PerIteration,
        );
    });
    miss.bench_function("stage", |b| {
        b.iter_batched(
            fresh,
            |d| black_box(in_cache(d.path(), &stage).unwrap()),
            BatchSize::PerIteration,
        );
    });
    miss.finish();
}

fn parquet(c: &mut Criterion) {
    hit_and_miss(
        c,
        "parquet",
        || table(N),
        || make_batch(N),
        read_parquet,
        write_parquet,
    );
}

fn bincode(c: &mut Criterion) {
    hit_and_miss(
        c,
        "bincode",
        || items(N),
        || make_rows(N),
        read_bincode,
        |rows, path| write_bincode(rows, path),
    );
}

criterion_group!(benches, parquet, bincode);
criterion_main!(benches);
