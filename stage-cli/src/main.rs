//! `stage`: list, inspect, verify and collect a `stage` cache folder, without the code of
//! the pipelines that wrote it.

mod cache;
mod commands;
mod remote;
mod remote_upkeep;
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
    /// The remote cache, for the commands that use it.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help = "The remote cache, s3://bucket/prefix, gs://, az:// [default: $STAGE_REMOTE]"
    )]
    remote_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Entries per stage: key, size, age, last use, compute time
    Ls {
        /// List the remote cache instead (key, size, age)
        #[arg(long)]
        remote: bool,
    },
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
        /// Check the remote cache instead (downloads every payload)
        #[arg(long)]
        remote: bool,
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
        /// Collect the remote cache instead, by its own run records
        #[arg(long)]
        remote: bool,
    },
    /// Space used per stage
    Du,
    /// Upload the local entries the remote cache lacks, with the run records
    Push {
        /// Only what the latest run used
        #[arg(long)]
        latest: bool,
    },
    /// Download the entries of the latest run, or of a stage and its ancestors
    Pull {
        /// A stage (its path, folder or name): its newest remote entry and its ancestors
        stage: Option<String>,
    },
    /// Which entries are local only, remote only, or in both
    Status {
        /// Compare with the remote cache (the only comparison there is, for now)
        #[arg(long)]
        remote: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli
        .dir
        .or_else(|| std::env::var_os("STAGE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".stage"));
    let url = cli.remote_url.as_deref();
    let result = match cli.command {
        Command::Ls { remote: false } => commands::ls(&root),
        Command::Ls { remote: true } => remote::open(url).and_then(|r| remote::ls(&*r)),
        Command::Show { key, chain, json } => commands::show(&root, &key, chain, json),
        Command::Verify {
            remove,
            remote: false,
        } => commands::verify(&root, remove),
        Command::Verify {
            remove,
            remote: true,
        } => remote::open(url).and_then(|r| remote_upkeep::verify(&*r, remove)),
        Command::Gc {
            keep_last,
            older_than,
            max_size,
            dry_run,
            remote,
        } => {
            let options = commands::GcOptions {
                keep_last,
                older_than,
                max_size,
                dry_run,
            };
            if remote {
                remote::open(url).and_then(|r| remote_upkeep::gc(&*r, &options))
            } else {
                commands::gc(&root, &options)
            }
        }
        Command::Du => commands::du(&root),
        Command::Push { latest } => {
            remote::open(url).and_then(|r| remote::push(&root, &*r, latest))
        }
        Command::Pull { stage } => {
            remote::open(url).and_then(|r| remote::pull(&root, &r, stage.as_deref()))
        }
        Command::Status { remote: _ } => remote::open(url).and_then(|r| remote::status(&root, &*r)),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("stage: {message}");
            ExitCode::from(2)
        }
    }
}
