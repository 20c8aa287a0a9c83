//! The reproduction on sparse-repro's harness: presets, arms, claims, the report's
//! additions and the `train` flags ([`DsnTsc`] implements [`Paper`]).
//!
//! | preset | data | network | epochs | seeds |
//! |---|---|---|---|---|
//! | `smoke` | a generated two-class set (no download) | nf 2, depth 2, kernel 9 | 6 | 2 |
//! | `quick` | GunPoint, ItalyPowerDemand, ArrowHead, OSULeaf, ACSF1, BasicMotions, JapaneseVowels | nf 16, depth 3, kernel 39 | per set, see [`quick_datasets`] | 3 |
//! | `paper` | the seven UCR/UEA sets of the catalogue | nf 47 (UCR) / 59 (UEA), depth 4, kernel 39 | 1000 | 3 |
//!
//! Every data set is run with every arm ([`Arm::ALL`]) and every seed; each
//! (data set, arm) pair is one [`ArmSpec`] whose [`ArmConfig`] holds everything
//! but the seed. The network's configuration depends on the data's dimensions
//! (UCR or UEA settings), so [`ArmConfig::train_config`] builds it once the data
//! is loaded. The claims (the paper's, as listed in the crate's issue) are
//! computed from the run's own numbers with the official model selection (lowest
//! training loss); the same comparisons at the last epoch are reported beside them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_nn::VarMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sparse_core::SparseParams;
use sparse_data::location::DataLocation;
use sparse_repro::claim::Claim;
use sparse_repro::cli::Preset;
use sparse_repro::harness::{
    self, ArmRuns, ArmSpec, Metrics, NoArgs, Paper, Plan, RunContext, Runs, TrainRequest,
};
use sparse_repro::plot::{LinePlot, Series};
use sparse_repro::report::{Anchor, ArmReport};

use crate::config::{Arm, ConvBackend, Growth, MaskInit, Padding, TrainConfig};
use crate::data::{DatasetSource, TsData};
use crate::error::{Error, Result, invalid};
use crate::model::{ModelSpec, Scnn};
use crate::training::{TrainOutcome, evaluate, train, var_of, weight_grad_of};

/// Margin of the "DSN within 2 points of dense" claim.
pub const DENSE_MARGIN: f64 = 0.02;

/// `quick`'s epochs on OSULeaf (length 427, 200 training cases).
pub const OSULEAF_EPOCHS: usize = 60;
/// `quick`'s epochs on ACSF1 (length 1460, 100 training cases).
pub const ACSF1_EPOCHS: usize = 60;

/// One data set of a preset with its epoch budget and, where a long series needs
/// it to fit the preset's time, a smaller network or a shorter mask update period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetPlan {
    /// Where the data comes from (as on the command line).
    pub dataset: String,
    /// Training epochs.
    pub epochs: usize,
    /// `ch_size` for this data set only (`None`: the preset's).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub channels: Option<usize>,
    /// Epochs between mask updates for this data set only (`None`: the preset's).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub update_every_epochs: Option<usize>,
}

impl DatasetPlan {
    /// `dataset` trained for `epochs` with the preset's network and update period.
    pub fn new(dataset: impl Into<String>, epochs: usize) -> Self {
        Self {
            dataset: dataset.into(),
            epochs,
            channels: None,
            update_every_epochs: None,
        }
    }

    /// Uses `ch_size` `channels` for this data set.
    pub fn with_channels(mut self, channels: usize) -> Self {
        self.channels = Some(channels);
        self
    }

    /// Updates the masks every `epochs` epochs on this data set.
    pub fn with_update_every_epochs(mut self, epochs: usize) -> Self {
        self.update_every_epochs = Some(epochs);
        self
    }
}

/// The data sets of the `quick` preset with their epochs, sized to fit 30
/// minutes on a 2-core CPU for 4 arms × 3 seeds (see the crate README for the
/// measurements). The long series, OSULeaf (length 427) and ACSF1 (length
/// 1460), ran 10 epochs until the fused kernels of issue #20; they now run 60, with
/// the preset's mask update period like the others.
pub fn quick_datasets() -> Vec<DatasetPlan> {
    vec![
        DatasetPlan::new("gunpoint", 60),
        DatasetPlan::new("italypowerdemand", 60),
        DatasetPlan::new("arrowhead", 30),
        DatasetPlan::new("osuleaf", OSULEAF_EPOCHS),
        DatasetPlan::new("acsf1", ACSF1_EPOCHS),
        DatasetPlan::new("basicmotions", 60),
        DatasetPlan::new("japanesevowels", 30),
    ]
}

/// Everything of one arm on one data set except the seed: the arm, the data set's
/// epochs and overrides, and the base configurations of univariate and
/// multivariate data. Checked when built: the run configurations of both kinds of
/// data must be valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmConfig {
    arm: Arm,
    epochs: usize,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    channels: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    update_every_epochs: Option<usize>,
    univariate: TrainConfig,
    multivariate: TrainConfig,
}

impl ArmConfig {
    /// `arm` on `dataset` with the base configurations of univariate and
    /// multivariate data (their arm, epochs and seed are replaced per run).
    pub fn new(
        arm: Arm,
        dataset: &DatasetPlan,
        univariate: &TrainConfig,
        multivariate: &TrainConfig,
    ) -> Result<Self> {
        let config = Self {
            arm,
            epochs: dataset.epochs,
            channels: dataset.channels,
            update_every_epochs: dataset.update_every_epochs,
            univariate: univariate.clone(),
            multivariate: multivariate.clone(),
        };
        config.train_config(1, 0)?;
        config.train_config(2, 0)?;
        Ok(config)
    }

    /// Exactly `config` whatever the data (what `train` runs).
    pub fn single(config: &TrainConfig) -> Self {
        Self {
            arm: config.arm(),
            epochs: config.epochs(),
            channels: None,
            update_every_epochs: None,
            univariate: config.clone(),
            multivariate: config.clone(),
        }
    }

    /// The arm.
    pub fn arm(&self) -> Arm {
        self.arm
    }
    /// Training epochs.
    pub fn epochs(&self) -> usize {
        self.epochs
    }
    /// The data set's `ch_size` override.
    pub fn channels(&self) -> Option<usize> {
        self.channels
    }
    /// The data set's mask update period override.
    pub fn update_every_epochs(&self) -> Option<usize> {
        self.update_every_epochs
    }
    /// The base configuration of univariate data.
    pub fn univariate(&self) -> &TrainConfig {
        &self.univariate
    }
    /// The base configuration of multivariate data.
    pub fn multivariate(&self) -> &TrainConfig {
        &self.multivariate
    }

    /// The validated configuration of one run on data with `dims` dimensions.
    pub fn train_config(&self, dims: usize, seed: u64) -> Result<TrainConfig> {
        let base = if dims > 1 {
            &self.multivariate
        } else {
            &self.univariate
        };
        let mut builder = base
            .to_builder()
            .arm(self.arm)
            .epochs(self.epochs)
            .seed(seed);
        if let Some(channels) = self.channels {
            builder = builder.channels(channels);
        }
        if let Some(every) = self.update_every_epochs {
            builder = builder.update_every_epochs(every);
        }
        builder.build()
    }
}

/// The data sets and base configurations of `preset`, and its default seeds.
fn preset_settings(preset: Preset) -> Result<(Vec<DatasetPlan>, TrainConfig, TrainConfig, usize)> {
    let base = TrainConfig::builder();
    Ok(match preset {
        Preset::Smoke => {
            let c = base
                .epochs(6)
                .channels(2)
                .depth(2)
                .kernel(9)
                .small_kernel(3)
                .update_every_epochs(1)
                .density(0.3)
                .build()?;
            let data = vec![DatasetPlan::new("synthetic:16:16:32:0", 6)];
            (data, c.clone(), c, 2)
        }
        Preset::Quick => {
            let c = base.channels(16).depth(3).build()?;
            (quick_datasets(), c.clone(), c, 3)
        }
        Preset::Paper => {
            let uni = base.channels(47).density(0.2).depth(4).build()?;
            let multi = uni.to_builder().channels(59).density(0.1).build()?;
            // the same seven sets as `quick`, each at the official 1000 epochs
            let data = quick_datasets()
                .into_iter()
                .map(|d| DatasetPlan::new(d.dataset, 1000))
                .collect();
            (data, uni, multi, 3)
        }
    })
}

/// Flags of `dsn-tsc train` (one arm on one data set).
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Catalogue name (gunpoint, basicmotions, ...), `<dir>/<Name>_TRAIN.ts`, or
    /// `synthetic:<train>:<test>:<length>:<seed>`.
    #[arg(long, default_value = "gunpoint")]
    pub dataset: String,
    /// dense, dense-small-kernel, static or dsn.
    #[arg(long, default_value = "dsn")]
    pub arm: String,
    /// Training epochs.
    #[arg(long, default_value_t = 1000)]
    pub epochs: usize,
    /// ch_size (modules output 3 x this).
    #[arg(long, default_value_t = 47)]
    pub channels: usize,
    /// Number of modules.
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    /// Density inside the constraint regions.
    #[arg(long, default_value_t = 0.2)]
    pub density: f64,
    /// Adam's initial learning rate.
    #[arg(long, default_value_t = 3e-4)]
    pub lr: f64,
    /// Batch size (default: the official max(min(N/10, 16), 2)).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Initial masks: remain-sort or remain-random.
    #[arg(long, default_value = "remain-sort")]
    pub mask_init: String,
    /// Growth: random or gradient.
    #[arg(long, default_value = "random")]
    pub growth: String,
    /// Padding: replicate or zero.
    #[arg(long, default_value = "replicate")]
    pub padding: String,
    /// Sparse arms' convolutions: sparse-dense-grad, sparse-masked-grad or masked-dense.
    #[arg(long, default_value = "sparse-dense-grad")]
    pub conv_backend: String,
    /// The run's seed.
    #[arg(long, default_value_t = 17)]
    pub seed: u64,
    /// Where the data sets are.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output directory (default `runs/dsn-tsc/train-<UTC timestamp>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A kebab-case choice (`remain-sort`, `sparse-dense-grad`, ...) of the flag `name`.
fn parse_choice<T: DeserializeOwned>(name: &'static str, text: &str, expected: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| invalid(name, text, format!("expected {expected}")))
}

impl TrainArgs {
    /// The run's configuration, validated.
    pub fn config(&self) -> Result<TrainConfig> {
        TrainConfig::builder()
            .arm(Arm::from_name(&self.arm)?)
            .epochs(self.epochs)
            .channels(self.channels)
            .depth(self.depth)
            .density(self.density)
            .lr(self.lr)
            .batch_size(self.batch_size)
            .mask_init(parse_choice::<MaskInit>(
                "mask_init",
                &self.mask_init,
                "remain-sort or remain-random",
            )?)
            .growth(parse_choice::<Growth>(
                "growth",
                &self.growth,
                "random or gradient",
            )?)
            .padding(parse_choice::<Padding>(
                "padding",
                &self.padding,
                "replicate or zero",
            )?)
            .conv_backend(parse_choice::<ConvBackend>(
                "conv_backend",
                &self.conv_backend,
                "sparse-dense-grad, sparse-masked-grad or masked-dense",
            )?)
            .seed(self.seed)
            .build()
    }
}

/// The DSN reproduction, as the harness drives it.
#[derive(Debug, Clone, Copy, Default)]
pub struct DsnTsc;

/// The arms on one data set of `runs` whose arm is `arm`, in plan order.
fn arms_of(runs: &Runs<DsnTsc>, arm: Arm) -> impl Iterator<Item = &ArmRuns<DsnTsc>> {
    runs.filter(move |a| a.config.arm() == arm)
}

/// Mean of `f` over every seed run of every `arm` arm (data sets pooled), NaN without runs.
fn mean_over(runs: &Runs<DsnTsc>, arm: Arm, f: impl Fn(&TrainOutcome) -> f64) -> f64 {
    let values: Vec<f64> = arms_of(runs, arm)
        .flat_map(|a| a.outcomes())
        .map(f)
        .collect();
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

fn first_region_rate(o: &TrainOutcome) -> f64 {
    o.region_rate.first().copied().unwrap_or(f64::NAN)
}

fn last_region_rate(o: &TrainOutcome) -> f64 {
    o.region_rate.last().copied().unwrap_or(f64::NAN)
}

/// The report names of the data sets, each once, in plan order.
fn dataset_labels(runs: &Runs<DsnTsc>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    runs.arms()
        .iter()
        .filter(|a| seen.insert(a.dataset_label.clone()))
        .map(|a| a.dataset_label.clone())
        .collect()
}

/// DSN against static sparse (at least as accurate) and against dense (within
/// [`DENSE_MARGIN`]) on the mean accuracy `acc` of an arm: the claims `dsn-ge-static`
/// and `dsn-near-dense` followed by `suffix`, with their `statements`.
fn against_static_and_dense(
    suffix: &str,
    statements: [&str; 2],
    acc: impl Fn(Arm) -> f64,
) -> Vec<Claim> {
    vec![
        Claim::at_least(
            format!("dsn-ge-static{suffix}"),
            statements[0],
            "dsn",
            acc(Arm::Dsn),
            "static",
            acc(Arm::Static),
        ),
        Claim::within_margin_below(
            format!("dsn-near-dense{suffix}"),
            statements[1],
            "dsn",
            acc(Arm::Dsn),
            "dense",
            acc(Arm::Dense),
            DENSE_MARGIN,
        ),
    ]
}

impl Paper for DsnTsc {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "Dynamic Sparse Network for time series classification";

    type Arm = ArmConfig;
    type Data = TsData;
    type Outcome = TrainOutcome;
    type ReproduceArgs = NoArgs;
    type TrainArgs = TrainArgs;
    type Commands = sparse_repro::harness::NoCommands;
    type Error = Error;

    fn plan(preset: Preset, _: &NoArgs) -> Result<Plan<ArmConfig>> {
        let (datasets, univariate, multivariate, default_seeds) = preset_settings(preset)?;
        let mut arms = Vec::with_capacity(datasets.len() * Arm::ALL.len());
        for dataset in &datasets {
            for arm in Arm::ALL {
                let config = ArmConfig::new(arm, dataset, &univariate, &multivariate)?;
                arms.push(ArmSpec::new(arm.name(), &dataset.dataset, config));
            }
        }
        let config = json!({
            "preset": preset,
            "datasets": datasets,
            "arms": Arm::ALL,
            "univariate": univariate,
            "multivariate": multivariate,
        });
        Ok(Plan {
            preset,
            arms,
            default_seeds,
            config,
        })
    }

    fn data_needs(dataset: &str) -> Vec<String> {
        match DatasetSource::parse(dataset) {
            DatasetSource::Catalogue(name) => vec![name],
            DatasetSource::Path(_) | DatasetSource::Synthetic { .. } => Vec::new(),
        }
    }

    fn load(dataset: &str, data_dir: Option<&Path>) -> Result<TsData> {
        DatasetSource::parse(dataset).load(&DataLocation::from_process(data_dir))
    }

    fn dataset_label(_: &str, data: &TsData) -> String {
        data.name.clone()
    }

    fn train(
        arm: &ArmSpec<ArmConfig>,
        data: &TsData,
        seed: u64,
        context: &RunContext,
    ) -> Result<harness::Trained<TrainOutcome>> {
        let config = arm.config.train_config(data.dims, seed)?;
        let (trained, outcome) = train(&config, data, &context.device, context.progress)?;
        let masks = trained
            .params
            .iter()
            .map(|p| (p.name.clone(), p.mask.clone()))
            .collect();
        let step = outcome.selected_epoch as u64;
        Ok(harness::Trained::new(outcome, trained.varmap, step).with_masks(masks))
    }

    fn metrics(outcome: &TrainOutcome) -> Metrics {
        Metrics::from([
            ("test_accuracy".to_string(), outcome.test_accuracy),
            ("test_accuracy_last".to_string(), outcome.test_accuracy_last),
            ("selected_epoch".to_string(), outcome.selected_epoch as f64),
        ])
    }

    fn evaluate(
        arm: &ArmSpec<ArmConfig>,
        data: &TsData,
        seed: u64,
        checkpoint: &Path,
    ) -> Result<Metrics> {
        let device = Device::Cpu;
        let config = arm.config.train_config(data.dims, seed)?;
        let spec = ModelSpec::for_config(&config, data.dims, data.num_classes())?;
        let varmap = VarMap::new();
        let mut model = Scnn::build(spec.clone(), &varmap, &device)?;
        let loaded = harness::load_model(checkpoint, &varmap)?;
        // the masks come back from the file, so the sparse kernel runs exactly as in training
        let mut params = SparseParams::new();
        if config.arm().is_sparse() {
            for (name, _) in spec.kernel_convs() {
                let mask =
                    loaded
                        .masks
                        .get(&name)
                        .cloned()
                        .ok_or_else(|| Error::BadCheckpoint {
                            path: checkpoint.to_path_buf(),
                            reason: format!("no mask of `{name}`"),
                        })?;
                params.insert(name.clone(), var_of(&varmap, &name)?, mask)?;
            }
        }
        if let Some(mode) = weight_grad_of(config.conv_backend()) {
            model.attach_masks(&params, mode)?;
        }
        let test = evaluate(&model, data, &data.test, &device)?;
        Ok(Metrics::from([(
            "test_accuracy".to_string(),
            test.accuracy,
        )]))
    }

    fn arm_report(runs: &ArmRuns<Self>, report: ArmReport) -> Result<ArmReport> {
        let first = runs
            .runs
            .first()
            .ok_or_else(|| invalid("seeds", 0, "no run finished"))?;
        let mean = |f: &dyn Fn(&TrainOutcome) -> f64| runs.mean_of(f).unwrap_or(f64::NAN);
        let mut report = report
            .with_metric("params", first.outcome.params as f64)
            .with_metric("nonzero_params", mean(&|o| o.nonzero_params as f64))
            .with_metric("density", mean(&|o| o.conv_density))
            .with_metric("conv_flops", mean(&|o| o.conv_flops))
            .with_metric("inference_flops", mean(&|o| o.inference_flops))
            .with_metric("mask_updates", mean(&|o| o.mask_updates as f64));
        if runs.arm.config.arm().is_sparse() {
            report = report
                .with_metric("region_rate_initial", mean(&first_region_rate))
                .with_metric("region_rate_final", mean(&last_region_rate));
        }
        Ok(report.with_extra("config", json!(first.outcome.config)))
    }

    /// The claims, from the runs' own numbers (means over data sets and seeds).
    fn claims(plan: &Plan<ArmConfig>, runs: &Runs<Self>) -> Result<Vec<Claim>> {
        let planned: BTreeSet<Arm> = plan.arms.iter().map(|a| a.config.arm()).collect();
        if ![Arm::Dsn, Arm::Static, Arm::Dense]
            .iter()
            .all(|a| planned.contains(a))
        {
            return Ok(Vec::new());
        }
        let acc = |arm| mean_over(runs, arm, |o| o.test_accuracy);
        let last = |arm| mean_over(runs, arm, |o| o.test_accuracy_last);
        // per data set and seed, DSN's kernel-conv FLOPs over the dense arm's, averaged
        let ratios: Vec<f64> = arms_of(runs, Arm::Dsn)
            .flat_map(|dsn| {
                let dense = runs.get(Arm::Dense.name(), &dsn.arm.dataset);
                dsn.runs.iter().filter_map(move |d| {
                    dense
                        .and_then(|dense| dense.runs.iter().find(|r| r.seed == d.seed))
                        .map(|r| d.outcome.conv_flops / r.outcome.conv_flops)
                })
            })
            .collect();
        let ratio = ratios.iter().sum::<f64>() / ratios.len().max(1) as f64;
        let mut claims = against_static_and_dense(
            "",
            [
                "DSN >= static sparse (same initial mask, never updated): mean test accuracy over data sets and seeds",
                "DSN within 2 points of dense (same topology, all taps): mean test accuracy",
            ],
            acc,
        );
        claims.push(Claim::new(
            "dsn-conv-flops-below-half",
            "DSN's convolution FLOPs (non-zeros x output length) < 50 % of dense",
            ratio < 0.5,
            [("dsn_over_dense", ratio), ("limit", 0.5)],
        ));
        claims.push(Claim::greater_than(
            "dsn-explores-regions",
            "Exploration: the share of constraint-region taps ever active grows over training (DSN)",
            "final",
            mean_over(runs, Arm::Dsn, last_region_rate),
            "initial",
            mean_over(runs, Arm::Dsn, first_region_rate),
        ));
        claims.extend(against_static_and_dense(
            "-last-epoch",
            [
                "(beside the official selection) DSN >= static sparse at the last epoch",
                "(beside the official selection) DSN within 2 points of dense at the last epoch",
            ],
            last,
        ));
        Ok(claims)
    }

    fn anchors(_: &Plan<ArmConfig>, runs: &Runs<Self>) -> Vec<Anchor> {
        crate::published::anchors(&dataset_labels(runs))
    }

    /// `region_rate.svg`: DSN's share of region taps ever active per epoch, mean over seeds.
    fn plots(_: &Plan<ArmConfig>, runs: &Runs<Self>, out: &Path) -> Result<()> {
        let mut plot = LinePlot::new(
            "DSN exploration of the constraint regions",
            "epoch",
            "share of region taps ever active",
        );
        for arm in arms_of(runs, Arm::Dsn) {
            let Some(len) = arm.outcomes().map(|o| o.region_rate.len()).min() else {
                continue;
            };
            if len == 0 {
                continue;
            }
            let points = (0..len)
                .map(|e| {
                    let sum: f64 = arm.outcomes().map(|o| o.region_rate[e]).sum();
                    ((e + 1) as f64, sum / arm.runs.len() as f64)
                })
                .collect();
            plot = plot.with_series(Series::new(arm.dataset_label.clone(), points));
        }
        if !plot.series.is_empty() {
            plot.write_svg(&out.join("region_rate.svg"))?;
        }
        Ok(())
    }

    fn report_extra(plan: &Plan<ArmConfig>) -> BTreeMap<String, serde_json::Value> {
        let backend = plan
            .arms
            .first()
            .map(|a| a.config.univariate().conv_backend())
            .unwrap_or(ConvBackend::SparseDenseGrad);
        BTreeMap::from([(
            "sparse_conv_kernel".to_string(),
            json!(format!(
                "sparse arms: {backend:?} (sparse_core::kernels::SparseConv1d over the active taps); dense arms: sparse_core::kernels::conv2d (im2col + gemm) on a height-1 image"
            )),
        )])
    }

    fn train_request(args: &TrainArgs) -> Result<TrainRequest<ArmConfig>> {
        let config = args.config()?;
        Ok(TrainRequest {
            arm: ArmSpec::new(
                config.arm().name(),
                &args.dataset,
                ArmConfig::single(&config),
            ),
            seed: config.seed(),
            data_dir: args.data_dir.clone(),
            out: args.out.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparse_repro::HarnessError;

    #[test]
    fn data_needs_name_catalogue_sets_only() {
        assert_eq!(DsnTsc::data_needs("gunpoint"), vec!["gunpoint".to_string()]);
        assert!(DsnTsc::data_needs("synthetic:16:16:32:0").is_empty());
        assert!(DsnTsc::data_needs("/data/ucr/GunPoint/GunPoint_TRAIN.ts").is_empty());
    }

    #[test]
    fn train_flags_build_a_single_arm_and_name_bad_choices() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: TrainArgs,
        }
        let cli = Cli::parse_from([
            "x",
            "--arm",
            "static",
            "--epochs",
            "3",
            "--lr",
            "0.001",
            "--batch-size",
            "4",
            "--seed",
            "5",
        ]);
        let request = DsnTsc::train_request(&cli.args).unwrap();
        assert_eq!(request.arm.name, "static");
        assert_eq!(request.seed, 5);
        let config = request.arm.config.train_config(3, request.seed).unwrap();
        assert_eq!((config.epochs(), config.lr()), (3, 0.001));
        assert_eq!(config.batch_size(), Some(4));
        assert_eq!(config, request.arm.config.train_config(1, 5).unwrap());
        let bad = Cli::parse_from(["x", "--growth", "sideways"]);
        match DsnTsc::train_request(&bad.args) {
            Err(Error::Harness(HarnessError::InvalidParameter { name, .. })) => {
                assert_eq!(name, "growth")
            }
            other => panic!("expected a growth error, got {other:?}"),
        }
    }
}
