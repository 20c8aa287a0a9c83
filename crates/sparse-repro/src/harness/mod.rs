//! The reproduction harness: one driver for every paper crate.
//!
//! A paper crate implements [`Paper`] (its presets and arms, how to train and
//! evaluate one arm, its claims and published numbers); this module does the rest:
//! the run directory, checking and fetching data before anything trains, progress,
//! checkpoints in one format, per-arm aggregation (mean ± std and per-seed values),
//! `report.json`, `report.md` and plots, **resume** of an interrupted run, and the
//! command line. A paper's `main.rs` is one call to [`main`].
//!
//! # The reproduction contract
//!
//! Every paper crate is a library first: its models, its method's configuration (a
//! checked builder whose errors name the parameter), and functions to train and
//! evaluate. Mask, allocation, prune/regrow, optimizer, schedule, checkpoint and FLOP
//! logic comes from `sparse-core`; data from `sparse-data`; the harness, metrics,
//! reports and the epoch loop ([`crate::epochs`]) from here. The crate adds only what
//! is specific to its paper.
//!
//! Its binary, named after the crate, has three subcommands:
//!
//! ```text
//! <crate> reproduce [--preset smoke|quick|paper] [--seeds N] [--data-dir DIR] [--out DIR]
//!                   [--dry-run] [--no-fetch] [paper-specific flags]
//! <crate> train     [options of one arm] [--data-dir DIR] [--out DIR] [--no-fetch]
//! <crate> eval      --checkpoint FILE [--data-dir DIR] [--no-fetch]
//! ```
//!
//! and whatever subcommands of its own the paper adds ([`Paper::Commands`]).
//!
//! - `smoke` runs in seconds and is what the crate's tests use; `quick` uses real
//!   data and at least three seeds and runs in minutes on two cores (the crate
//!   README's results come from it); `paper` uses the paper's hyperparameters and
//!   sizes (GPU or long runs) but starts and validates its configuration on any CPU.
//! - Before the first arm trains, every data set of the preset is checked; missing
//!   registry data sets are fetched (with a progress bar) unless `--no-fetch` is
//!   given, and data no registry carries gets an error saying where to put it.
//! - A run writes into `--out DIR`, or `runs/<crate>/<preset>-<UTC timestamp>/`:
//!   `run.json` (what the run is), `records/` (one record per finished arm-seed),
//!   `checkpoints/` (one safetensors file per arm-seed), `artifacts/` (what a paper
//!   keeps beyond the checkpoint, one folder per arm-seed), `report.json`,
//!   `report.md` and SVG plots. Rerunning `reproduce` with the same `--out` after an interruption
//!   skips the finished arm-seeds and ends with the same report numbers; a directory
//!   holding another crate's, preset's or plan's run is refused.
//! - `report.json` has the crate, version, preset, seeds, the git commit the
//!   invocation started from, start time,
//!   wall time, one entry per arm and data set with its metrics (`<metric>_mean`,
//!   `<metric>_std`, and the per-seed values under `per_seed`), the claims (each
//!   with `passed` and the values it was decided on) and the paper's numbers
//!   (`anchors`). `report.md` shows the same as tables.
//! - Claims are computed from the run's own numbers and printed PASS or FAIL. A
//!   failing claim is a result: never tune a preset on the test split to pass one;
//!   the crate README explains it.
//! - Checkpoints are sparse-core's format: every variable, every mask under `mask/`,
//!   the writing crate's name, the arm's configuration, data set, seed, commit and
//!   recorded metrics in the metadata, and a sha256 of every tensor, checked on
//!   load. `eval` refuses another crate's checkpoint by name, names the tensor of a
//!   corrupted file, recomputes the recorded metric ([`Paper::eval_metric`]) and
//!   exits non-zero unless it is bit-identical.
//! - The crate README says what the paper claims, how the method maps onto
//!   sparse-core, every deviation from the official code and why, the `quick` table
//!   from a real run (date, commit, machine) beside the paper's numbers, and how to
//!   run `paper`. Its tests cover the method's invariants, a `smoke` run end to end,
//!   a checkpoint round trip and resume ([`check_resume`]).
//!
//! # Adding a paper
//!
//! A whole (toy) paper crate: a least-squares fit whose claim is that training
//! beats the untrained model. The real crates follow the same shape, with their
//! models in `model.rs`, their configuration in `config.rs` and their loop in
//! `training.rs` built on [`crate::epochs::EpochLoop`].
//!
//! ```
//! use std::path::Path;
//! use candle_core::{DType, Device, Tensor, Var};
//! use candle_nn::VarMap;
//! use serde::{Deserialize, Serialize};
//! use sparse_repro::claim::Claim;
//! use sparse_repro::cli::Preset;
//! use sparse_repro::harness::{
//!     self, ArmRuns, ArmSpec, Metrics, NoArgs, NoCommands, Paper, Plan, RunContext, Runs,
//!     TrainRequest, Trained,
//! };
//! use sparse_repro::HarnessError;
//!
//! /// One arm: how many gradient steps to take.
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct Fit { steps: usize }
//!
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct Outcome { loss: f64 }
//!
//! #[derive(Debug, clap::Args)]
//! struct TrainArgs {
//!     #[arg(long, default_value_t = 10)]
//!     steps: usize,
//!     #[arg(long, default_value_t = 0)]
//!     seed: u64,
//! }
//!
//! struct Toy;
//!
//! fn data(seed: u64) -> candle_core::Result<(Tensor, Tensor)> {
//!     let x: Vec<f32> = (0..32).map(|i| (i as f32 + seed as f32) / 32.0).collect();
//!     let y: Vec<f32> = x.iter().map(|v| 3.0 * v).collect();
//!     Ok((Tensor::new(x, &Device::Cpu)?, Tensor::new(y, &Device::Cpu)?))
//! }
//!
//! fn loss(w: &Tensor, seed: u64) -> candle_core::Result<Tensor> {
//!     let (x, y) = data(seed)?;
//!     x.broadcast_mul(w)?.sub(&y)?.sqr()?.mean_all()
//! }
//!
//! impl Paper for Toy {
//!     const NAME: &'static str = "toy-paper";
//!     const VERSION: &'static str = "0.1.0";
//!     const ABOUT: &'static str = "A least-squares fit.";
//!     const EVAL_METRIC: &'static str = "loss";
//!     type Arm = Fit;
//!     type Data = ();
//!     type Outcome = Outcome;
//!     type ReproduceArgs = NoArgs;
//!     type TrainArgs = TrainArgs;
//!     type Commands = NoCommands;
//!     type Error = HarnessError;
//!
//!     fn plan(preset: Preset, _: &NoArgs) -> Result<Plan<Fit>, HarnessError> {
//!         let arms = vec![
//!             ArmSpec::new("untrained", "synthetic", Fit { steps: 0 }),
//!             ArmSpec::new("trained", "synthetic", Fit { steps: 20 }),
//!         ];
//!         Ok(Plan { preset, arms, default_seeds: 2, config: serde_json::json!({}) })
//!     }
//!     fn data_needs(_: &str) -> Vec<String> { Vec::new() } // generated data
//!     fn load(_: &str, _: Option<&Path>) -> Result<(), HarnessError> { Ok(()) }
//!     fn train(arm: &ArmSpec<Fit>, _: &(), seed: u64, _: &RunContext)
//!         -> Result<Trained<Outcome>, HarnessError> {
//!         let varmap = VarMap::new();
//!         let w = varmap.get(1, "w", candle_nn::Init::Const(0.5), DType::F32, &Device::Cpu)?;
//!         let w = Var::from_tensor(&w)?;
//!         for _ in 0..arm.config.steps {
//!             let grads = loss(w.as_tensor(), seed)?.backward()?;
//!             if let Some(g) = grads.get(&w) { w.set(&(w.as_tensor() - (g * 0.5)?)?)?; }
//!         }
//!         let outcome = Outcome { loss: loss(w.as_tensor(), seed)?.to_scalar::<f32>()? as f64 };
//!         Ok(Trained::new(outcome, varmap, arm.config.steps as u64))
//!     }
//!     fn metrics(o: &Outcome) -> Metrics { Metrics::from([("loss".to_string(), o.loss)]) }
//!     fn evaluate(_: &ArmSpec<Fit>, _: &(), seed: u64, checkpoint: &Path)
//!         -> Result<Metrics, HarnessError> {
//!         let varmap = VarMap::new();
//!         let w = varmap.get(1, "w", candle_nn::Init::Const(0.0), DType::F32, &Device::Cpu)?;
//!         harness::load_model(checkpoint, &varmap)?; // checks integrity, sets `w` in place
//!         Ok(Metrics::from([("loss".to_string(), loss(&w, seed)?.to_scalar::<f32>()? as f64)]))
//!     }
//!     fn claims(_: &Plan<Fit>, runs: &Runs<Self>) -> Result<Vec<Claim>, HarnessError> {
//!         let mean = |name| runs.get(name, "synthetic").and_then(|a: &ArmRuns<Self>| a.mean("loss"));
//!         let (before, after) = (mean("untrained").unwrap_or(f64::NAN), mean("trained").unwrap_or(f64::NAN));
//!         Ok(vec![Claim::new("training-helps", "Training lowers the loss", after < before,
//!             [("untrained", before), ("trained", after)])])
//!     }
//!     fn train_request(args: &TrainArgs) -> Result<TrainRequest<Fit>, HarnessError> {
//!         Ok(TrainRequest { arm: ArmSpec::new("trained", "synthetic", Fit { steps: args.steps }),
//!             seed: args.seed, data_dir: None, out: None })
//!     }
//! }
//!
//! // The crate's main.rs is: fn main() -> anyhow::Result<()> { harness::main::<Toy>() }
//! let root = tempfile::tempdir().map_err(|e| HarnessError::io("tempdir", e))?;
//! let check = harness::check_resume::<Toy>(Preset::Smoke, &NoArgs {}, None, None, root.path(), 1)?;
//! assert!(check.resumed.all_claims_passed());
//! assert_eq!(check.taken_from_records, 1);
//! let checkpoint = root.path().join("uninterrupted/checkpoints/synthetic-trained-seed1.safetensors");
//! let evaluated = harness::evaluate::<Toy>(&checkpoint, None, harness::DataPolicy::NoFetch)?;
//! assert_eq!(evaluated.measured.to_bits(), evaluated.recorded.to_bits());
//! # Ok::<(), HarnessError>(())
//! ```

mod command;
mod data_check;
mod driver;
mod model_file;
mod paper;
mod record;
mod resume_check;
mod runs;

pub use command::{FetchArgs, NoCommands, main, run_cli};
pub use data_check::{DataPolicy, ensure_data};
pub use driver::{
    ARTIFACTS, CHECKPOINTS, Evaluated, ReproduceOptions, Reproduced, TRAIN_SECONDS, TrainedArm,
    dry_run, evaluate, plan_datasets, reproduce, train,
};
pub use model_file::{
    LoadedModel, ModelParts, StoredModel, load_model, read_stored, save_model, save_variables,
};
pub use paper::{ArmSpec, Metrics, NoArgs, Paper, Plan, RunContext, TrainRequest, Trained};
pub use record::{MANIFEST, Manifest, RECORDS, SeedRecord};
pub use resume_check::{ResumeCheck, check_resume, same_results};
pub use runs::{ArmRuns, Runs, SeedRun};
