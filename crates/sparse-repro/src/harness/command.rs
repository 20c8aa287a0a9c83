//! One command line for every paper: `reproduce`, `train` and `eval`, plus the
//! paper's own subcommands ([`Paper::Commands`]).

use std::ffi::OsString;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::cli::{EvalArgs, ReproduceArgs};
use crate::progress::ProgressMode;

use super::data_check::DataPolicy;
use super::driver::{self, ReproduceOptions};
use super::paper::Paper;

/// `--no-fetch`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Args)]
pub struct FetchArgs {
    /// Never download data: a missing data set is an error naming its fetch command.
    #[arg(long)]
    pub no_fetch: bool,
}

impl FetchArgs {
    /// The data policy these flags ask for.
    pub fn policy(self) -> DataPolicy {
        if self.no_fetch {
            DataPolicy::NoFetch
        } else {
            DataPolicy::Fetch
        }
    }
}

#[derive(Debug, Parser)]
struct Cli<R: Args, T: Args, E: Subcommand> {
    #[command(subcommand)]
    command: Command<R, T, E>,
}

#[derive(Debug, Subcommand)]
enum Command<R: Args, T: Args, E: Subcommand> {
    /// Run a preset's arms x seeds and write report.json, report.md, plots and
    /// checkpoints; rerun with the same --out to resume an interrupted run.
    Reproduce {
        #[command(flatten)]
        args: ReproduceArgs,
        #[command(flatten)]
        paper: R,
        /// Validate the preset's configuration and check its data; train nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        fetch: FetchArgs,
    },
    /// Train one arm and write its checkpoint and outcome.
    Train {
        #[command(flatten)]
        args: T,
        #[command(flatten)]
        fetch: FetchArgs,
    },
    /// Reload a checkpoint, recompute its recorded metric and fail on any difference.
    Eval {
        #[command(flatten)]
        args: EvalArgs,
        #[command(flatten)]
        fetch: FetchArgs,
    },
    #[command(flatten)]
    Paper(E),
}

/// No subcommands beyond `reproduce`, `train` and `eval` (for [`Paper::Commands`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum NoCommands {}

/// The whole binary of a paper crate: parses the process's arguments and runs the
/// subcommand. A paper's `main.rs` is `sparse_repro::harness::main::<MyPaper>()`.
///
/// It first keeps freed memory in the process
/// ([`retain_freed_memory`](sparse_core::malloc::retain_freed_memory)): training
/// steps reuse their buffers instead of faulting in fresh pages.
pub fn main<P: Paper>() -> anyhow::Result<()> {
    sparse_core::malloc::retain_freed_memory();
    run_cli::<P, _, _>(std::env::args_os())
}

/// [`main`] on explicit arguments (the first is the program name).
pub fn run_cli<P, I, S>(args: I) -> anyhow::Result<()>
where
    P: Paper,
    I: IntoIterator<Item = S>,
    S: Into<OsString> + Clone,
{
    let command = Cli::<P::ReproduceArgs, P::TrainArgs, P::Commands>::command()
        .name(P::NAME)
        .bin_name(P::NAME)
        .version(P::VERSION)
        .about(P::ABOUT);
    let matches = command
        .try_get_matches_from(args)
        .unwrap_or_else(|e| e.exit());
    let cli = Cli::<P::ReproduceArgs, P::TrainArgs, P::Commands>::from_arg_matches(&matches)?;
    match cli.command {
        Command::Reproduce {
            args,
            paper,
            dry_run,
            fetch,
        } => {
            let options = ReproduceOptions {
                preset: args.preset,
                seeds: args.seeds,
                data_dir: args.data_dir,
                out: args.out,
                data: fetch.policy(),
                progress: ProgressMode::Auto,
                stop_after: None,
            };
            if dry_run {
                for line in driver::dry_run::<P>(&options, &paper)? {
                    println!("{line}");
                }
                return Ok(());
            }
            let done = driver::reproduce::<P>(&options, &paper)?;
            if let Some(report) = &done.report {
                for claim in &report.claims {
                    println!("[{}] {}: {}", claim.status(), claim.id, claim.statement);
                }
                println!(
                    "wrote {} and {} ({:.0} s; {} arm-seeds trained, {} resumed)",
                    done.out.join("report.md").display(),
                    done.out.join("report.json").display(),
                    report.wall_seconds,
                    done.trained,
                    done.resumed
                );
            }
        }
        Command::Train { args, fetch } => {
            let trained = driver::train::<P>(&args, fetch.policy())?;
            for (name, value) in &trained.metrics {
                println!("{name}: {value}");
            }
            println!("checkpoint: {}", trained.checkpoint.display());
        }
        Command::Eval { args, fetch } => {
            let evaluated =
                driver::evaluate::<P>(&args.checkpoint, args.data_dir.as_deref(), fetch.policy())?;
            println!(
                "{} on {} seed {}: {} {} (recorded at training: {})",
                evaluated.arm.name,
                evaluated.arm.dataset,
                evaluated.seed,
                P::eval_metric(&evaluated.arm),
                evaluated.measured,
                evaluated.recorded
            );
        }
        Command::Paper(command) => P::run_command(command)?,
    }
    Ok(())
}
