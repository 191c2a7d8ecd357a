//! The quickstart: a CSV → clean → summary → report pipeline.
//!
//! ```sh
//! cargo run --example quickstart   # computes every stage
//! cargo run --example quickstart   # reads `summary` back from .stage/; touches nothing before it
//! ```
//!
//! Then edit `examples/data/trips.csv` or a stage's body and run it again: only what the
//! edit affects is computed.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stage::arrow::array::{AsArray, BooleanArray, Float64Array, RecordBatch};
use stage::arrow::compute::{self, kernels::cmp, kernels::numeric};
use stage::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use stage::stage;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reads the raw CSV; its content is part of the key.
#[stage(raw = "examples/data/trips.csv", cache = parquet)]
fn load(raw: &Path) -> Result<RecordBatch, BoxError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("pickup", DataType::Utf8, false),
        Field::new("distance_km", DataType::Float64, false),
        Field::new("fare", DataType::Float64, false),
        Field::new("passengers", DataType::Int64, false),
    ]));
    let reader = stage::arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .build(std::fs::File::open(raw)?)?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok(compute::concat_batches(&schema, &batches)?)
}

/// Drops trips with no distance or no passengers, adds the fare per km.
#[stage(trips = load, cache = parquet)]
fn clean(trips: &RecordBatch) -> Result<RecordBatch, BoxError> {
    let distance = trips
        .column_by_name("distance_km")
        .ok_or("no distance_km")?;
    let passengers = trips.column_by_name("passengers").ok_or("no passengers")?;
    let valid: BooleanArray = compute::and(
        &cmp::gt(distance, &Float64Array::new_scalar(0.0))?,
        &cmp::gt(passengers, &stage::arrow::array::Int64Array::new_scalar(0))?,
    )?;
    let kept = compute::filter_record_batch(trips, &valid)?;
    let per_km = numeric::div(
        kept.column_by_name("fare").ok_or("no fare")?,
        kept.column_by_name("distance_km").ok_or("no distance_km")?,
    )?;
    let mut fields = kept.schema().fields().to_vec();
    fields.push(Arc::new(Field::new(
        "fare_per_km",
        DataType::Float64,
        false,
    )));
    let mut columns = kept.columns().to_vec();
    columns.push(per_km);
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// What the report needs, cached with bincode.
#[derive(Debug, Serialize, Deserialize)]
struct Summary {
    trips: usize,
    total_km: f64,
    mean_fare_per_km: f64,
}

/// Aggregates trips with at least `min_passengers` passengers (a free parameter: part of the key).
#[stage(trips = clean, cache = bincode)]
fn summary(trips: &RecordBatch, min_passengers: i64) -> Summary {
    let passengers = trips.column(4).as_primitive::<Int64Type>();
    let km = trips.column(2).as_primitive::<Float64Type>();
    let per_km = trips.column(5).as_primitive::<Float64Type>();
    let rows: Vec<usize> = (0..trips.num_rows())
        .filter(|&i| passengers.value(i) >= min_passengers)
        .collect();
    let total_km = rows.iter().map(|&i| km.value(i)).sum();
    #[allow(clippy::cast_precision_loss, reason = "a count of trips")]
    let mean_fare_per_km =
        rows.iter().map(|&i| per_km.value(i)).sum::<f64>() / rows.len().max(1) as f64;
    Summary {
        trips: rows.len(),
        total_km,
        mean_fare_per_km,
    }
}

/// Formats the summary; no `cache`, so it is computed whenever it is asked for.
#[stage(s = summary(2))]
fn report(s: &Summary) -> String {
    format!(
        "{} trips with 2+ passengers, {:.1} km, {:.2} per km on average",
        s.trips, s.total_km, s.mean_fare_per_km
    )
}

fn main() -> Result<(), stage::Error> {
    let (text, log) = stage::observe(report);
    println!("{}", text?);
    print!("{log}");
    println!("cache: {}", stage::Config::current().cache_dir().display());
    println!(
        "run again: what is cached is read back; edit examples/data/trips.csv or a stage to see what recomputes"
    );
    Ok(())
}
