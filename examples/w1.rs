//! The W1 workload as a whole process, for timing against other tools:
//!
//! ```sh
//! cargo run --release --example w1 -- stage CSV CACHE_DIR   # through #[stage]
//! cargo run --release --example w1 -- hand  CSV CACHE_DIR   # written by hand
//! cargo run --release --example w1 -- generate CSV          # write the 2,000,000-row CSV
//! ```

#[path = "../benches/support/w1.rs"]
mod w1;

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", csv] => {
            w1::generate(Path::new(csv), w1::ROWS)?;
        }
        [mode @ ("stage" | "hand"), csv, dir] => {
            let (csv, dir) = (Path::new(csv), Path::new(dir));
            let summary = if *mode == "stage" {
                w1::through_stage(csv, dir)?
            } else {
                w1::by_hand(csv, dir)?
            };
            println!(
                "{} rows, {} categories",
                summary.rows,
                summary.z_by_category.len()
            );
        }
        _ => {
            eprintln!("usage: w1 generate CSV | w1 (stage|hand) CSV CACHE_DIR");
            std::process::exit(2);
        }
    }
    Ok(())
}
