//! The command-line pieces every paper binary shares (clap derive).
//!
//! A paper crate composes them into its own binary, named after the crate:
//!
//! ```
//! use clap::{Args, Parser, Subcommand};
//! use sparse_repro::cli::{EvalArgs, OutArgs, Preset, ReproduceArgs};
//!
//! /// Options of one arm (specific to the paper).
//! #[derive(Debug, Args)]
//! struct TrainArgs {
//!     /// Target density of the sparse layers.
//!     #[arg(long, default_value_t = 0.1)]
//!     density: f64,
//!     #[command(flatten)]
//!     out: OutArgs,
//! }
//!
//! #[derive(Debug, Subcommand)]
//! enum Command {
//!     /// Run every arm of the paper and write the report.
//!     Reproduce(ReproduceArgs),
//!     /// Train one arm.
//!     Train(TrainArgs),
//!     /// Reload a checkpoint and print its metric.
//!     Eval(EvalArgs),
//! }
//!
//! #[derive(Debug, Parser)]
//! #[command(name = "dsn-tsc", version)]
//! struct Cli {
//!     #[command(subcommand)]
//!     command: Command,
//! }
//!
//! let cli = Cli::parse_from(["dsn-tsc", "reproduce", "--preset", "smoke", "--seeds", "2"]);
//! let Command::Reproduce(args) = cli.command else { unreachable!() };
//! assert_eq!(args.preset, Preset::Smoke);
//! assert_eq!(args.seed_list(3).unwrap(), vec![0, 1]);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::error::{HarnessError, HarnessResult};
use crate::run_dir::resolve_out_dir;
use crate::utc::UtcDateTime;

/// The size of a reproduction run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Seconds, tiny sizes: the crate's end-to-end test of every arm and the report.
    Smoke,
    /// Real data, at least 3 seeds, minutes on a 2-core CPU: the README's results.
    #[default]
    Quick,
    /// The paper's own hyperparameters and sizes (GPU or long runs).
    Paper,
}

impl Preset {
    /// The preset's name as on the command line (`smoke`, `quick`, `paper`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smoke => "smoke",
            Self::Quick => "quick",
            Self::Paper => "paper",
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `reproduce [--preset smoke|quick|paper] [--seeds N] [--data-dir DIR] [--out DIR]`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ReproduceArgs {
    /// Run size: smoke (seconds), quick (minutes on a CPU), paper (the paper's settings).
    #[arg(long, value_enum, default_value_t = Preset::Quick)]
    pub preset: Preset,
    /// Number of seeds (0, 1, ..., N-1); the preset's default when absent.
    #[arg(long, value_parser = parse_positive)]
    pub seeds: Option<usize>,
    /// Where the datasets are; the crate's default location when absent.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output directory; `runs/<crate>/<preset>-<UTC timestamp>/` when absent.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl ReproduceArgs {
    /// The seeds to run: `0..n` with `n` from `--seeds`, else `preset_default`.
    pub fn seed_list(&self, preset_default: usize) -> HarnessResult<Vec<u64>> {
        let n = self.seeds.unwrap_or(preset_default);
        if n == 0 {
            return Err(HarnessError::invalid(
                "seeds",
                0,
                "at least one seed is needed",
            ));
        }
        Ok((0..n as u64).collect())
    }

    /// Resolves and creates the output directory (see [`resolve_out_dir`]), with the
    /// default under the current working directory.
    pub fn out_dir(&self, crate_name: &str, started: &UtcDateTime) -> HarnessResult<PathBuf> {
        resolve_out_dir(
            self.out.as_deref(),
            Path::new("."),
            crate_name,
            self.preset.as_str(),
            started,
        )
    }
}

/// `eval --checkpoint FILE [--data-dir DIR]`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct EvalArgs {
    /// The `.safetensors` checkpoint to evaluate.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Where the datasets are; the crate's default location when absent.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// `[--out DIR]`, for `train` subcommands (flatten it into the crate's own args).
#[derive(Debug, Clone, PartialEq, Eq, Default, Args)]
pub struct OutArgs {
    /// Output directory; `runs/<crate>/<preset>-<UTC timestamp>/` when absent.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl OutArgs {
    /// Resolves and creates the output directory; `label` replaces the preset in the
    /// default name (e.g. `"train"`).
    pub fn out_dir(
        &self,
        crate_name: &str,
        label: &str,
        started: &UtcDateTime,
    ) -> HarnessResult<PathBuf> {
        resolve_out_dir(
            self.out.as_deref(),
            Path::new("."),
            crate_name,
            label,
            started,
        )
    }
}

/// The flags of a `train` that takes one arm of a preset: `--preset`, `--seed`,
/// `--data-dir` and `--out`. Flatten it (`#[command(flatten)]`) into the crate's
/// `TrainArgs`, beside the paper's own choice of arm and its overrides.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PresetTrainArgs {
    /// The preset whose arm to train.
    #[arg(long, value_enum, default_value_t = Preset::Smoke)]
    pub preset: Preset,
    /// The seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the data sets are.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where to write the checkpoint, the outcome and the run's other files.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl PresetTrainArgs {
    /// The request to train `arm` with this seed and these locations.
    pub fn request<A>(&self, arm: crate::harness::ArmSpec<A>) -> crate::harness::TrainRequest<A> {
        crate::harness::TrainRequest {
            arm,
            seed: self.seed,
            data_dir: self.data_dir.clone(),
            out: self.out.clone(),
        }
    }
}

fn parse_positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a positive integer: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, Subcommand};

    #[derive(Debug, Subcommand)]
    enum Command {
        Reproduce(ReproduceArgs),
        Eval(EvalArgs),
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    fn reproduce(args: &[&str]) -> Result<ReproduceArgs, clap::Error> {
        let cli = Cli::try_parse_from(
            std::iter::once("x")
                .chain(std::iter::once("reproduce"))
                .chain(args.iter().copied()),
        )?;
        match cli.command {
            Command::Reproduce(args) => Ok(args),
            Command::Eval(_) => unreachable!("parsed reproduce"),
        }
    }

    #[test]
    fn defaults_and_flags() -> Result<(), clap::Error> {
        let args = reproduce(&[])?;
        assert_eq!(args.preset, Preset::Quick);
        assert_eq!(args.seeds, None);
        assert_eq!(args.seed_list(3).ok(), Some(vec![0, 1, 2]));
        let args = reproduce(&[
            "--preset",
            "paper",
            "--seeds",
            "5",
            "--data-dir",
            "d",
            "--out",
            "o",
        ])?;
        assert_eq!(args.preset, Preset::Paper);
        assert_eq!(args.seed_list(3).ok(), Some(vec![0, 1, 2, 3, 4]));
        assert_eq!(args.data_dir, Some(PathBuf::from("d")));
        assert_eq!(args.out, Some(PathBuf::from("o")));
        assert!(reproduce(&["--seeds", "0"]).is_err());
        assert!(reproduce(&["--preset", "huge"]).is_err());
        Ok(())
    }

    #[test]
    fn eval_needs_a_checkpoint() -> Result<(), clap::Error> {
        assert!(Cli::try_parse_from(["x", "eval"]).is_err());
        let cli = Cli::try_parse_from(["x", "eval", "--checkpoint", "m.safetensors"])?;
        match cli.command {
            Command::Eval(args) => assert_eq!(args.checkpoint, PathBuf::from("m.safetensors")),
            Command::Reproduce(_) => panic!("parsed eval"),
        }
        Ok(())
    }

    #[test]
    fn preset_names_round_trip() {
        for preset in [Preset::Smoke, Preset::Quick, Preset::Paper] {
            assert_eq!(Preset::from_str(preset.as_str(), false).ok(), Some(preset));
            assert_eq!(
                serde_json::to_string(&preset).ok(),
                Some(format!("\"{preset}\""))
            );
        }
    }

    #[test]
    fn out_dir_uses_explicit_path() -> HarnessResult<()> {
        let dir = tempfile::tempdir().map_err(|e| HarnessError::io("tempdir", e))?;
        let out = dir.path().join("run");
        let args = ReproduceArgs {
            preset: Preset::Smoke,
            seeds: None,
            data_dir: None,
            out: Some(out.clone()),
        };
        assert_eq!(args.out_dir("c", &UtcDateTime::from_unix_seconds(0))?, out);
        assert!(out.is_dir());
        Ok(())
    }
}
