//! The W1 workload as a whole process, and a driver that times it as whole processes
//! against the same pipeline by hand (no other tool needed):
//!
//! ```sh
//! cargo build --release --example w1
//! target/release/examples/w1 compare [RUNS]    # paired runs: wall and peak memory, medians
//! target/release/examples/w1 stage CSV DIR     # through #[stage], parquet entries
//! target/release/examples/w1 arrow CSV DIR     # through #[stage], Arrow IPC entries
//! target/release/examples/w1 hand  CSV DIR     # by hand, parquet's defaults
//! target/release/examples/w1 generate CSV      # write the 2,000,000-row CSV
//! ```
//!
//! `benches/python/compare.py` runs the same modes beside Python tools.

#[path = "../benches/support/w1.rs"]
mod w1;

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let summary = match args.as_slice() {
        ["generate", csv] => {
            w1::generate(Path::new(csv), w1::ROWS)?;
            return Ok(());
        }
        ["compare", rest @ ..] => {
            let runs = rest.first().map_or(Ok(5), |n| n.parse())?;
            let csv = w1::generate(Path::new("target/w1/w1.csv"), w1::ROWS)?;
            return w1::compare(&std::env::current_exe()?, &csv, runs, 3);
        }
        ["stage", csv, dir] => w1::through_stage(csv.as_ref(), dir.as_ref(), w1::Format::Parquet)?,
        ["arrow", csv, dir] => w1::through_stage(csv.as_ref(), dir.as_ref(), w1::Format::Arrow)?,
        ["hand", csv, dir] => w1::by_hand(csv.as_ref(), dir.as_ref())?,
        _ => {
            eprintln!("usage: w1 compare [RUNS] | w1 generate CSV | w1 (stage|arrow|hand) CSV DIR");
            std::process::exit(2);
        }
    };
    println!(
        "{} rows, {} categories",
        summary.rows,
        summary.z_by_category.len()
    );
    if let Some(kib) = w1::peak_rss_kib() {
        println!("{}{kib}", w1::PEAK_LINE);
    }
    Ok(())
}
