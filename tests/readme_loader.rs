//! The README's first example loads a CSV: here is the same stage, run on a generated CSV of
//! more than 10,000 rows with `NA` and empty fields. Every row comes back, `NA` and empty
//! fields are nulls, and columns with nulls keep their numeric types. A test also checks
//! that the README shows exactly this code.

use serde::{Deserialize, Serialize};
use stage::arrow::array::{Array, AsArray, RecordBatch};
use stage::arrow::datatypes::{DataType, Float64Type, Int64Type};
use std::fmt::Write as _;

// README: begin
use stage::arrow::csv::{ReaderBuilder, reader::Format};
use stage::stage;
use std::{fs::File, path::Path, sync::Arc};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every row of the CSV; `NA` and empty fields are nulls, column types are inferred from all rows.
#[stage(raw = "examples/data/trips.csv", cache = parquet)]
fn load(raw: &Path) -> Result<Vec<RecordBatch>, BoxError> {
    let format = Format::default()
        .with_header(true)
        .with_null_regex(regex::Regex::new("^(NA)?$")?);
    let (schema, _) = format.infer_schema(File::open(raw)?, None)?;
    let batches = ReaderBuilder::new(Arc::new(schema))
        .with_format(format)
        .build(File::open(raw)?)?;
    Ok(batches.collect::<Result<_, _>>()?)
}
// README: end

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Counts {
    rows: usize,
    types: Vec<String>,
    nulls: Vec<usize>,
    fare_sum: f64,
    passengers_sum: i64,
}

#[stage(trips = load, cache = bincode)]
fn counts(trips: &Vec<RecordBatch>) -> Result<Counts, BoxError> {
    let schema = trips.first().ok_or("no batch")?.schema();
    let mut counts = Counts {
        rows: 0,
        types: schema
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect(),
        nulls: vec![0; schema.fields().len()],
        fare_sum: 0.0,
        passengers_sum: 0,
    };
    for batch in trips {
        counts.rows += batch.num_rows();
        for (n, column) in counts.nulls.iter_mut().zip(batch.columns()) {
            *n += column.null_count();
        }
        let fare = batch.column(2).as_primitive_opt::<Float64Type>();
        counts.fare_sum += fare.ok_or("fare")?.iter().flatten().sum::<f64>();
        let passengers = batch.column(3).as_primitive_opt::<Int64Type>();
        counts.passengers_sum += passengers
            .ok_or("passengers")?
            .iter()
            .flatten()
            .sum::<i64>();
    }
    Ok(counts)
}

const ROWS: usize = 12_345;

/// A trips CSV: `fare` is `NA` on every 7th row and empty on every 50th, `passengers` is
/// `NA` on every 11th, `pickup` empty on every 13th; none of them before row 2,000, so that
/// the first thousand rows look complete.
fn write_csv(path: &Path) -> Counts {
    let mut text = String::from("id,pickup,fare,passengers\n");
    let mut want = Counts {
        rows: ROWS,
        types: ["Int64", "Timestamp(s)", "Float64", "Int64"]
            .map(String::from)
            .to_vec(),
        nulls: vec![0; 4],
        fare_sum: 0.0,
        passengers_sum: 0,
    };
    for i in 0..ROWS {
        let late = i >= 2000;
        let pickup = if late && i % 13 == 0 {
            want.nulls[1] += 1;
            String::new()
        } else {
            format!("2024-03-01T{:02}:{:02}:00", i / 60 % 24, i % 60)
        };
        let fare = if late && (i % 7 == 0 || i % 50 == 0) {
            want.nulls[2] += 1;
            if i % 7 == 0 { "NA" } else { "" }.to_owned()
        } else {
            let cents = u32::try_from(i % 5000).unwrap() + 250;
            want.fare_sum += f64::from(cents) / 100.0;
            format!("{}.{:02}", cents / 100, cents % 100)
        };
        let passengers = if late && i % 11 == 0 {
            want.nulls[3] += 1;
            "NA".to_owned()
        } else {
            let n = i64::try_from(i % 4 + 1).unwrap();
            want.passengers_sum += n;
            n.to_string()
        };
        writeln!(text, "{i},{pickup},{fare},{passengers}").unwrap();
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    want
}

#[test]
fn the_readme_loader_keeps_every_row_and_its_nulls() {
    let (data, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let want = write_csv(&data.path().join("examples/data/trips.csv"));
    let config = stage::Config::from_env()
        .dir(cache.path())
        .data_dir(data.path());
    let (got, log) = config.scope(|| stage::observe(counts));
    assert_eq!(log.computed(), ["load", "counts"]);
    let got = got.unwrap();
    assert!((got.fare_sum - want.fare_sum).abs() < 1e-6, "{got:?}");
    assert_eq!(
        (got.rows, &got.types, &got.nulls, got.passengers_sum),
        (want.rows, &want.types, &want.nulls, want.passengers_sum)
    );
    assert!(want.nulls.iter().skip(1).all(|&n| n > 100));

    // Read back from the cache, in every batch: the same rows.
    let (computed, _) = config.scope(|| stage::observe(load));
    let (loaded, log) = config.scope(|| stage::observe(load));
    assert_eq!(log.loaded(), ["load"]);
    let schema = computed.as_ref().unwrap()[0].schema();
    let concat = |b: &Vec<RecordBatch>| stage::arrow::compute::concat_batches(&schema, b).unwrap();
    assert_eq!(concat(&loaded.unwrap()), concat(&computed.unwrap()));
    assert_eq!(schema.field(2).data_type(), &DataType::Float64);
}

#[test]
fn the_readme_shows_this_loader() {
    let source = include_str!("readme_loader.rs");
    let start = source.find("// README: begin\n").unwrap() + "// README: begin\n".len();
    let end = source.find("// README: end").unwrap();
    let loader = &source[start..end];
    assert!(loader.contains("fn load("));
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(loader),
        "the README's first example differs from the loader tested here:\n{loader}"
    );
}
