//! The three-stage pipeline of the Lightweight Data Pipeline README, with `#[stage]`:
//! read a raw CSV (cached as parquet) → format more (cached as parquet) → final process
//! (not cached).
//!
//! ```sh
//! cargo run --example lwdp
//! ```
//!
//! Unlike the original, the raw file is keyed by its content (not its name and mtime), the
//! stages' keys include their ancestors' keys and parameters, and a result is typed.

use std::path::Path;
use std::sync::Arc;

use stage::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use stage::arrow::datatypes::{DataType, Field, Schema};
use stage::stage;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[stage(some_raw_file = "examples/data/input.csv", cache = parquet)]
fn stg_read_format_raw(some_raw_file: &Path) -> Result<RecordBatch, BoxError> {
    let (schema, _) = stage::arrow::csv::reader::Format::default()
        .with_header(true)
        .infer_schema(std::fs::File::open(some_raw_file)?, None)?;
    let schema = Arc::new(schema);
    let reader = stage::arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .build(std::fs::File::open(some_raw_file)?)?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok(stage::arrow::compute::concat_batches(&schema, &batches)?)
}

/// Appends a constant Int64 column.
#[stage::track]
fn with_column(batch: &RecordBatch, name: &str, value: i64) -> Result<RecordBatch, BoxError> {
    let mut fields = batch.schema().fields().to_vec();
    fields.push(Arc::new(Field::new(name, DataType::Int64, false)));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(vec![value; batch.num_rows()])) as ArrayRef);
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[stage(basic_raw = stg_read_format_raw, cache = parquet, uses = [with_column])]
fn stg_format_more(basic_raw: &RecordBatch) -> Result<RecordBatch, BoxError> {
    with_column(basic_raw, "new_analysis_column", 3)
}

#[stage(formatted_src = stg_format_more, uses = [with_column])]
fn stg_final_process(formatted_src: &RecordBatch) -> Result<RecordBatch, BoxError> {
    with_column(formatted_src, "wizard", 5)
}

fn main() -> Result<(), stage::Error> {
    let (result, log) = stage::observe(stg_final_process);
    let result = result?;
    let columns: Vec<String> = result
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    println!(
        "{} rows × {} columns: {}",
        result.num_rows(),
        result.num_columns(),
        columns.join(", ")
    );
    print!("{log}");
    Ok(())
}
