//! The [`Paper`] trait: what a reproduction tells the harness about itself.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sparse_core::Mask;

use crate::claim::Claim;
use crate::cli::Preset;
use crate::error::HarnessError;
use crate::progress::ProgressMode;
use crate::report::{Anchor, ArmReport};

use super::runs::{ArmRuns, Runs};

/// Named numbers measured by one run (e.g. `test_accuracy`), sorted by name.
pub type Metrics = BTreeMap<String, f64>;

/// One arm of a plan on one data set: the unit that is trained once per seed.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ArmSpec<A> {
    /// The arm's name in the report (unique per data set), e.g. `dense` or `ERK@0.10`.
    pub name: String,
    /// The data set as the paper names it (what [`Paper::load`] receives).
    pub dataset: String,
    /// The arm's full configuration, without the seed.
    pub config: A,
}

impl<A> ArmSpec<A> {
    /// An arm called `name` on `dataset` with `config`.
    pub fn new(name: impl Into<String>, dataset: impl Into<String>, config: A) -> Self {
        Self {
            name: name.into(),
            dataset: dataset.into(),
            config,
        }
    }

    /// The file stem of one seed's checkpoint and record: `<data set>-<arm>-seed<N>`,
    /// e.g. `gunpoint-dsn-seed0`, or `<arm>-seed<N>` when the arm's name already
    /// starts with its data set (`cora-gcn-dense-seed100`).
    ///
    /// ```
    /// use sparse_repro::harness::ArmSpec;
    /// assert_eq!(ArmSpec::new("dsn", "GunPoint", ()).file_stem(0), "gunpoint-dsn-seed0");
    /// assert_eq!(ArmSpec::new("cora-gcn dense", "cora", ()).file_stem(7), "cora-gcn-dense-seed7");
    /// assert_eq!(ArmSpec::new("ERK@0.10", "digits", ()).file_stem(1), "digits-ERK-0.10-seed1");
    /// ```
    pub fn file_stem(&self, seed: u64) -> String {
        let clean = |text: &str| -> String {
            text.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        };
        let dataset = clean(&self.dataset).to_lowercase();
        let name = clean(&self.name);
        if name.to_lowercase().starts_with(&format!("{dataset}-")) {
            format!("{name}-seed{seed}")
        } else {
            format!("{dataset}-{name}-seed{seed}")
        }
    }
}

/// Everything a `reproduce` run of a preset trains: arms in report order and the
/// default number of seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<A> {
    /// The preset the plan came from.
    pub preset: Preset,
    /// The arms, in run and report order.
    pub arms: Vec<ArmSpec<A>>,
    /// Seeds per arm unless `--seeds` overrides it.
    pub default_seeds: usize,
    /// The plan's settings as the report's `config` shows them.
    pub config: serde_json::Value,
}

impl<A: Serialize> Plan<A> {
    /// A plan whose report `config` is the list of its arms.
    pub fn from_arms(
        preset: Preset,
        arms: Vec<ArmSpec<A>>,
        default_seeds: usize,
    ) -> Result<Self, HarnessError> {
        let config =
            serde_json::to_value(&arms).map_err(|e| HarnessError::Serialise(e.to_string()))?;
        Ok(Self {
            preset,
            arms,
            default_seeds,
            config,
        })
    }
}

/// What one run hands back to the harness: its measurements and the model to
/// checkpoint.
pub struct Trained<O> {
    /// The paper's own record of the run (kept for resume and claims).
    pub outcome: O,
    /// Every variable of the selected model (BatchNorm statistics included).
    pub varmap: VarMap,
    /// Every mask of the model (engine masks, score-subnetwork masks), by parameter name.
    pub masks: BTreeMap<String, Mask>,
    /// Further tensors the paper needs to rebuild the model (stored under `extra/`).
    pub extra: BTreeMap<String, Tensor>,
    /// The training step (or epoch) the model was taken at.
    pub step: u64,
}

impl<O: Debug> Debug for Trained<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trained")
            .field("outcome", &self.outcome)
            .field("masks", &self.masks.keys().collect::<Vec<_>>())
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl<O> Trained<O> {
    /// A trained model without masks or extra tensors.
    pub fn new(outcome: O, varmap: VarMap, step: u64) -> Self {
        Self {
            outcome,
            varmap,
            masks: BTreeMap::new(),
            extra: BTreeMap::new(),
            step,
        }
    }

    /// Adds the model's masks.
    pub fn with_masks(mut self, masks: BTreeMap<String, Mask>) -> Self {
        self.masks = masks;
        self
    }

    /// Adds extra tensors.
    pub fn with_extra(mut self, extra: BTreeMap<String, Tensor>) -> Self {
        self.extra = extra;
        self
    }
}

/// How one run is shown and where it computes.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Progress of the run's epochs (bars on a terminal, quiet otherwise).
    pub progress: ProgressMode,
    /// A label for progress output, e.g. `gunpoint dsn seed 0`.
    pub label: String,
    /// Where tensors live.
    pub device: Device,
    /// A folder of this run's own for files beyond the checkpoint (e.g. every IMP
    /// ticket), not yet created: `<run dir>/artifacts/<arm-seed file stem>/` under
    /// `reproduce`, `<out>/artifacts/` under `train`; `None` when nothing may be
    /// written. A rerun of an interrupted arm-seed overwrites it.
    pub artifacts: Option<PathBuf>,
}

/// One `train` invocation: an arm, a seed and where the data is.
#[derive(Debug, Clone)]
pub struct TrainRequest<A> {
    /// The arm to train.
    pub arm: ArmSpec<A>,
    /// Its seed.
    pub seed: u64,
    /// `--data-dir`, if given.
    pub data_dir: Option<PathBuf>,
    /// `--out`, if given.
    pub out: Option<PathBuf>,
}

/// A paper's reproduction, as the generic driver needs it.
///
/// The driver ([`super::reproduce`], [`super::train`], [`super::evaluate`] and
/// [`super::main`]) owns the run directory, data checks, progress, resume,
/// checkpoints, per-arm aggregation and the report files; the paper supplies its
/// plans, how to train and evaluate one arm, and its claims.
pub trait Paper {
    /// The crate's package name: reports, run directories and checkpoints carry it.
    const NAME: &'static str;
    /// The crate's version.
    const VERSION: &'static str;
    /// One line for `--help`.
    const ABOUT: &'static str;
    /// The recorded metric that `eval` recomputes and compares exactly.
    const EVAL_METRIC: &'static str = "test_accuracy";

    /// The configuration of one arm (without seed and data set).
    type Arm: Clone + Debug + PartialEq + Serialize + DeserializeOwned;
    /// A loaded data set.
    type Data;
    /// What one run records (serialised for resume).
    type Outcome: Clone + Debug + Serialize + DeserializeOwned;
    /// The paper's own flags of `reproduce` (use [`NoArgs`] when there are none).
    /// clap names an argument group after its struct, so this struct must not be
    /// called `ReproduceArgs` or `FetchArgs` (the harness's own).
    type ReproduceArgs: clap::Args + Debug;
    /// The flags of `train` (one arm).
    type TrainArgs: clap::Args + Debug;
    /// The paper's own subcommands beside `reproduce`, `train` and `eval` (e.g.
    /// Lottery Pools' `pool` over a user's saved tickets), run by
    /// [`Paper::run_command`]; [`NoCommands`](super::NoCommands) when there are none.
    type Commands: clap::Subcommand + Debug;
    /// The paper's error type.
    type Error: std::error::Error + Send + Sync + 'static + From<HarnessError>;

    /// The plan of `preset`, every configuration validated.
    fn plan(preset: Preset, args: &Self::ReproduceArgs) -> Result<Plan<Self::Arm>, Self::Error>;

    /// The recorded metric that `eval` recomputes for `arm` (default
    /// [`Paper::EVAL_METRIC`]): a paper whose arms measure different things (a
    /// language model's bits per character, a solver's accuracy) names each arm's own.
    fn eval_metric(arm: &ArmSpec<Self::Arm>) -> &'static str {
        let _ = arm;
        Self::EVAL_METRIC
    }

    /// The `index`-th seed on `dataset` (override for official per-data-set seeds).
    fn seed(dataset: &str, index: usize) -> u64 {
        let _ = dataset;
        index as u64
    }

    /// The catalogue data sets that `dataset` needs (checked, and fetched, before
    /// the first arm trains); empty for generated data.
    fn data_needs(dataset: &str) -> Vec<String> {
        vec![dataset.to_string()]
    }

    /// Loads `dataset`.
    fn load(dataset: &str, data_dir: Option<&Path>) -> Result<Self::Data, Self::Error>;

    /// The data set's name in the report (default: as the plan names it).
    fn dataset_label(dataset: &str, data: &Self::Data) -> String {
        let _ = data;
        dataset.to_string()
    }

    /// Trains `arm` with `seed` on `data`.
    fn train(
        arm: &ArmSpec<Self::Arm>,
        data: &Self::Data,
        seed: u64,
        context: &RunContext,
    ) -> Result<Trained<Self::Outcome>, Self::Error>;

    /// The per-seed numbers of a run, aggregated by the driver into mean ± std and
    /// per-seed values; must contain [`Paper::EVAL_METRIC`]. They are what the
    /// same seed reproduces exactly: no timings (the driver measures each run's
    /// `train_seconds` itself).
    fn metrics(outcome: &Self::Outcome) -> Metrics;

    /// Rebuilds `arm`'s model, loads it from `checkpoint` (see
    /// [`super::load_model`]) and measures it on `data` again.
    fn evaluate(
        arm: &ArmSpec<Self::Arm>,
        data: &Self::Data,
        seed: u64,
        checkpoint: &Path,
    ) -> Result<Metrics, Self::Error>;

    /// Adds the paper's own per-arm numbers and notes to the aggregated arm report.
    fn arm_report(runs: &ArmRuns<Self>, report: ArmReport) -> Result<ArmReport, Self::Error>
    where
        Self: Sized,
    {
        let _ = runs;
        Ok(report)
    }

    /// The paper's claims, computed from the run's numbers.
    fn claims(plan: &Plan<Self::Arm>, runs: &Runs<Self>) -> Result<Vec<Claim>, Self::Error>
    where
        Self: Sized;

    /// The paper's published numbers beside ours.
    fn anchors(plan: &Plan<Self::Arm>, runs: &Runs<Self>) -> Vec<Anchor>
    where
        Self: Sized,
    {
        let _ = (plan, runs);
        Vec::new()
    }

    /// Writes the paper's plots (and any tables that go with them) into `out`.
    fn plots(plan: &Plan<Self::Arm>, runs: &Runs<Self>, out: &Path) -> Result<(), Self::Error>
    where
        Self: Sized,
    {
        let _ = (plan, runs, out);
        Ok(())
    }

    /// Run-level notes for the report's `extra`.
    fn report_extra(plan: &Plan<Self::Arm>) -> BTreeMap<String, serde_json::Value> {
        let _ = plan;
        BTreeMap::new()
    }

    /// Runs one of the paper's own subcommands ([`Paper::Commands`]).
    fn run_command(command: Self::Commands) -> Result<(), Self::Error> {
        let _ = command;
        Ok(())
    }

    /// The arm, seed and locations of a `train` invocation.
    fn train_request(args: &Self::TrainArgs) -> Result<TrainRequest<Self::Arm>, Self::Error>;
}

/// No extra flags (for [`Paper::ReproduceArgs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::Args)]
pub struct NoArgs {}
