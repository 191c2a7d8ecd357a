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
    match args.as_slice() {
        ["generate", csv] => {
            w1::generate(Path::new(csv), w1::ROWS)?;
        }
        ["compare", rest @ ..] => {
            let runs = rest.first().map_or(Ok(5), |n| n.parse())?;
            let csv = w1::generate(Path::new("target/w1/w1.csv"), w1::ROWS)?;
            let exe = std::env::current_exe()?;
            let command = |mode: &str, csv: &Path, dir: &Path| {
                let mut command = std::process::Command::new(&exe);
                command.arg(mode).arg(csv).arg(dir);
                command
            };
            w1::compare(command, &csv, runs, 3)?;
        }
        [mode, csv, dir] => w1::run_mode(mode, Path::new(csv), Path::new(dir))?,
        _ => {
            eprintln!("usage: w1 compare [RUNS] | w1 generate CSV | w1 (stage|arrow|hand) CSV DIR");
            std::process::exit(2);
        }
    }
    Ok(())
}
