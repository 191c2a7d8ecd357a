//! `stage`: list, inspect, verify and collect a `stage` cache folder, without the code of
//! the pipelines that wrote it.

mod cache;
mod commands;
mod units;
mod upkeep;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Look after a `stage` cache folder.
#[derive(Parser)]
#[command(name = "stage", version, about)]
struct Cli {
    /// The cache folder.
    #[arg(
        long,
        global = true,
        help = "The cache folder [default: $STAGE_DIR, else .stage]"
    )]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Entries per stage: key, size, age, last use, compute time
    Ls,
    /// An entry's metadata and provenance
    Show {
        /// The entry's key, or a unique prefix of it
        key: String,
        /// Also show the entries of its ancestors, recursively
        #[arg(long)]
        chain: bool,
        /// Print the metadata as JSON
        #[arg(long)]
        json: bool,
    },
    /// Check every entry's payload against its checksum
    Verify {
        /// Remove damaged entries, orphan payloads and stale temporary files
        #[arg(long)]
        remove: bool,
    },
    /// Remove entries the latest runs did not use, or beyond an age or a total size
    Gc {
        /// Keep what the latest N runs of each stage used
        #[arg(long, default_value_t = 1)]
        keep_last: usize,
        /// Also remove entries last used longer ago than this (30d, 12h, 90m, 45s)
        #[arg(long, value_parser = units::parse_duration)]
        older_than: Option<std::time::Duration>,
        /// Then remove the least recently used entries until the total is under this (500MB, 2GiB)
        #[arg(long, value_parser = units::parse_size)]
        max_size: Option<u64>,
        /// Print what would be removed; remove nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Space used per stage
    Du,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli
        .dir
        .or_else(|| std::env::var_os("STAGE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".stage"));
    let result = match cli.command {
        Command::Ls => commands::ls(&root),
        Command::Show { key, chain, json } => commands::show(&root, &key, chain, json),
        Command::Verify { remove } => commands::verify(&root, remove),
        Command::Gc {
            keep_last,
            older_than,
            max_size,
            dry_run,
        } => commands::gc(
            &root,
            &commands::GcOptions {
                keep_last,
                older_than,
                max_size,
                dry_run,
            },
        ),
        Command::Du => commands::du(&root),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("stage: {message}");
            ExitCode::from(2)
        }
    }
}
