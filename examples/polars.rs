//! Polars `DataFrame`s cached as Parquet, written and read by Polars itself (the `polars`
//! feature; Polars is re-exported as `stage::polars`, so no matching version is needed).
//!
//! ```sh
//! cargo run --example polars --features polars   # computes every stage
//! cargo run --example polars --features polars   # reads `busy` back; `trips` is not touched
//! ```

use stage::polars::prelude::*;
use stage::stage;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `n` made-up trips; every 5th fare and every 7th driver are unknown (null).
#[stage(cache = parquet)]
pub fn trips(n: u32) -> Result<DataFrame, BoxError> {
    let ids: Vec<u32> = (0..n).collect();
    let fares: Vec<Option<f64>> = ids
        .iter()
        .map(|&i| (i % 5 != 0).then(|| 4.0 + f64::from(i % 17) * 1.5))
        .collect();
    let drivers: Vec<Option<String>> = ids
        .iter()
        .map(|&i| (i % 7 != 0).then(|| format!("driver {}", i % 9)))
        .collect();
    let passengers: Vec<u32> = ids.iter().map(|&i| 1 + i % 4).collect();
    Ok(DataFrame::new_infer_height(vec![
        Column::new("id".into(), ids),
        Column::new("fare".into(), fares),
        Column::new("driver".into(), drivers),
        Column::new("passengers".into(), passengers),
    ])?)
}

/// The trips with at least `min` passengers.
#[stage(t = trips(n), cache = parquet)]
pub fn busy(t: &DataFrame, n: u32, min: u32) -> Result<DataFrame, BoxError> {
    let mask = t
        .column("passengers")?
        .as_materialized_series()
        .gt_eq(min)?;
    Ok(t.filter(&mask)?)
}

fn main() -> Result<(), stage::Error> {
    let (frame, log) = stage::observe(|| busy(1000, 3));
    let frame = frame?;
    println!(
        "{} busy trips, {} without a fare, {} without a driver",
        frame.height(),
        frame.column("fare").map_or(0, Column::null_count),
        frame.column("driver").map_or(0, Column::null_count),
    );
    print!("{log}");
    Ok(())
}
