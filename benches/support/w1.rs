//! The W1 workload, shared by `benches/w1.rs` and `examples/w1.rs`: a deterministic CSV of
//! trips-like rows, the pipeline `load` (CSV → parquet) → `clean` (keep flagged rows, add
//! `z = x * y`, parquet) → `summary` (rows and sum of `z` per category, memory only), once
//! through `#[stage]` and once written by hand with arrow and parquet.

#![allow(dead_code, reason = "each user of this file uses a part of it")]

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use stage::arrow::array::{Array, BooleanArray, Float64Array, RecordBatch, StringArray};
use stage::arrow::compute::{filter_record_batch, kernels::numeric::mul};
use stage::arrow::datatypes::{DataType, Field, Schema};
use stage::parquet::arrow::ArrowWriter;
use stage::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
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

#[stage::track]
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
#[stage::track(uses = [schema])]
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
#[stage::track(untracked = [filter_record_batch, mul])]
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

#[stage::track]
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
    let mut sums: HashMap<&str, f64> = HashMap::new();
    for (cat, z) in cat.iter().zip(z.values()) {
        *sums.entry(cat.unwrap_or_default()).or_default() += z;
    }
    Ok(Summary {
        rows: batch.num_rows(),
        z_by_category: sums.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    })
}

// ---- through #[stage]: parquet entries

#[stage(cache = parquet, uses = [read_csv])]
pub fn load(csv: stage::File) -> Result<RecordBatch, BoxError> {
    read_csv(csv.path())
}

#[stage(trips = load(csv), cache = parquet, uses = [clean_batch])]
pub fn clean(trips: &RecordBatch, csv: stage::File) -> Result<RecordBatch, BoxError> {
    clean_batch(trips)
}

#[stage(rows = clean(csv), uses = [summarise])]
pub fn summary(rows: &RecordBatch, csv: stage::File) -> Result<Summary, BoxError> {
    summarise(rows)
}

// ---- through #[stage]: Arrow IPC entries

#[stage(cache = arrow, uses = [read_csv])]
pub fn load_ipc(csv: stage::File) -> Result<RecordBatch, BoxError> {
    read_csv(csv.path())
}

#[stage(trips = load_ipc(csv), cache = arrow, uses = [clean_batch])]
pub fn clean_ipc(trips: &RecordBatch, csv: stage::File) -> Result<RecordBatch, BoxError> {
    clean_batch(trips)
}

#[stage(rows = clean_ipc(csv), uses = [summarise])]
pub fn summary_ipc(rows: &RecordBatch, csv: stage::File) -> Result<Summary, BoxError> {
    summarise(rows)
}

// ---- by hand: the same files, checked by existence only, with parquet's defaults
// (uncompressed pages, row groups of 1,048,576 rows) and one reader

fn write_parquet(batch: &RecordBatch, path: &Path) -> Result<(), BoxError> {
    let file = File::create(path)?;
    let mut writer = ArrowWriter::try_new(
        BufWriter::with_capacity(1 << 20, file),
        batch.schema(),
        None,
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

/// How `#[stage]` keeps W1's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Arrow,
}

/// The pipeline through `#[stage]`, caching in `dir`.
pub fn through_stage(csv: &Path, dir: &Path, format: Format) -> Result<Summary, BoxError> {
    let config = stage::Config::from_env().dir(dir);
    let file = stage::File::new(csv);
    Ok(match format {
        Format::Parquet => config.scope(|| summary(file))?,
        Format::Arrow => config.scope(|| summary_ipc(file))?,
    })
}

// ---- whole processes: each run a child process, timed by its parent

/// The peak resident memory of this process so far, in KiB (Linux; `None` elsewhere).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The CPU time of this process so far (every thread, user and system), in seconds
/// (Linux; `None` elsewhere).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    #[allow(clippy::cast_precision_loss, reason = "clock ticks fit a f64")]
    Some(ticks as f64 / 100.0)
}

/// The line a child prints last, for its parent: its peak resident memory.
pub const PEAK_LINE: &str = "W1_PEAK_KIB=";
/// The line before it: its CPU time.
pub const CPU_LINE: &str = "W1_CPU_SECONDS=";

/// One whole-process run: wall time, CPU time and peak resident memory.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub seconds: f64,
    pub cpu: f64,
    pub peak_mib: f64,
}

/// Runs `command` as a child process; it must print [`PEAK_LINE`].
pub fn run_child(mut command: std::process::Command) -> Result<Run, BoxError> {
    let started = std::time::Instant::now();
    let out = command.output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix(PEAK_LINE))
        .ok_or("the child did not say its peak memory")?
        .trim()
        .parse()?;
    let cpu: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix(CPU_LINE))
        .map_or(Ok(f64::NAN), |s| s.trim().parse())?;
    #[allow(clippy::cast_precision_loss, reason = "KiB of a process fit a f64")]
    let peak_mib = kib as f64 / 1024.0;
    Ok(Run {
        seconds,
        cpu,
        peak_mib,
    })
}

/// Runs one mode of W1 (`hand`, `stage`, `arrow`) on `csv` with its cache in `dir`, and
/// prints its result and [`PEAK_LINE`]: what a child process of [`compare`] does.
pub fn run_mode(mode: &str, csv: &Path, dir: &Path) -> Result<(), BoxError> {
    let summary = match mode {
        "stage" => through_stage(csv, dir, Format::Parquet)?,
        "arrow" => through_stage(csv, dir, Format::Arrow)?,
        "hand" => by_hand(csv, dir)?,
        other => return Err(format!("unknown mode `{other}`: hand, stage or arrow").into()),
    };
    println!(
        "{} rows, {} categories",
        summary.rows,
        summary.z_by_category.len()
    );
    if let Some(cpu) = cpu_seconds() {
        println!("{CPU_LINE}{cpu}");
    }
    if let Some(kib) = peak_rss_kib() {
        println!("{PEAK_LINE}{kib}");
    }
    Ok(())
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}

/// The modes of [`compare`]: the hand-written pipeline first, as the baseline.
pub const MODES: [&str; 3] = ["hand", "stage", "arrow"];

/// Runs W1 as whole processes, `command(mode, csv, dir)` each: for each of `runs` rounds,
/// each mode cold (an empty cache) and then `warm` times warm, the modes interleaved so
/// that each round's figures are paired. Prints medians and, for each mode, the median
/// of its paired ratios to the hand-written pipeline.
pub fn compare(
    command: impl Fn(&str, &Path, &Path) -> std::process::Command,
    csv: &Path,
    runs: usize,
    warm: usize,
) -> Result<(), BoxError> {
    type Figures = Vec<Vec<Run>>;
    let (mut cold, mut hot): (Figures, Figures) = (vec![vec![]; 3], vec![vec![]; 3]);
    for round in 0..runs {
        let dirs = MODES
            .iter()
            .map(|_| tempfile::tempdir())
            .collect::<Result<Vec<_>, _>>()?;
        for (m, mode) in MODES.iter().enumerate() {
            cold[m].push(run_child(command(mode, csv, dirs[m].path()))?);
        }
        for _ in 0..warm {
            for (m, mode) in MODES.iter().enumerate() {
                hot[m].push(run_child(command(mode, csv, dirs[m].path()))?);
            }
        }
        eprintln!("round {} of {runs} done", round + 1);
    }
    println!(
        "W1, whole processes, {runs} rounds (cold once, warm {warm} times each), medians; \
         × hand: median of the ratios of paired runs"
    );
    println!(
        "{:<6} {:>7} {:>6} {:>6} {:>6} {:>7} {:>6} | {:>7} {:>6} {:>6} {:>6} {:>7} {:>6}",
        "cold",
        "wall s",
        "× hand",
        "cpu s",
        "× hand",
        "peakMiB",
        "× hand",
        "warm",
        "× hand",
        "cpu s",
        "× hand",
        "peakMiB",
        "× hand"
    );
    for (m, mode) in MODES.iter().enumerate() {
        let cells: Vec<String> = [&cold, &hot]
            .iter()
            .map(|figures| {
                let ratio = |f: fn(&Run) -> f64| {
                    let mut r: Vec<f64> = figures[m]
                        .iter()
                        .zip(&figures[0])
                        .map(|(a, b)| f(a) / f(b))
                        .collect();
                    median(&mut r)
                };
                let of =
                    |f: fn(&Run) -> f64| median(&mut figures[m].iter().map(f).collect::<Vec<_>>());
                format!(
                    "{:>7.3} {:>5.2}× {:>6.2} {:>5.2}× {:>7.1} {:>5.2}×",
                    of(|r| r.seconds),
                    ratio(|r| r.seconds),
                    of(|r| r.cpu),
                    ratio(|r| r.cpu),
                    of(|r| r.peak_mib),
                    ratio(|r| r.peak_mib)
                )
            })
            .collect();
        println!("{mode:<6} {} | {}", cells[0], cells[1]);
    }
    Ok(())
}
