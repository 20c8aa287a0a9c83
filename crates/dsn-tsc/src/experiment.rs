//! Presets, arms, claims and the run report of `dsn-tsc reproduce`.
//!
//! | preset | data | network | epochs | seeds |
//! |---|---|---|---|---|
//! | `smoke` | a generated two-class set (no download) | nf 2, depth 2, kernel 9 | 6 | 2 |
//! | `quick` | GunPoint, ItalyPowerDemand, ArrowHead, BasicMotions, JapaneseVowels | nf 16, depth 3, kernel 39 | per set, see [`quick_datasets`] | 3 |
//! | `paper` | the seven UCR/UEA sets of the catalogue | nf 47 (UCR) / 59 (UEA), depth 4, kernel 39 | 1000 | 3 |
//!
//! Every data set is run with every arm ([`Arm::ALL`]) and every seed. The claims
//! (the paper's, as listed in the crate's issue) are computed from the run's own
//! numbers with the official model selection (lowest training loss); the same
//! comparisons at the last epoch are reported beside them.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::Serialize;
use serde_json::json;
use sparse_data::location::DataLocation;
use sparse_repro::claim::Claim;
use sparse_repro::cli::Preset;
use sparse_repro::plot::{LinePlot, Series};
use sparse_repro::progress::ProgressMode;
use sparse_repro::report::{ArmReport, RunReport};
use sparse_repro::train::Stopwatch;
use sparse_repro::utc::UtcDateTime;

use crate::config::{Arm, TrainConfig};
use crate::data::{DatasetSource, TsData};
use crate::error::{Error, Result};
use crate::training::{TrainOutcome, save_checkpoint, train};

/// The crate's name in reports and run directories.
pub const CRATE_NAME: &str = "dsn-tsc";

/// Margin of the "DSN within 2 points of dense" claim.
pub const DENSE_MARGIN: f64 = 0.02;

/// One data set of a plan with its epoch budget and, where a long series needs
/// it to fit the preset's time, a smaller network or a shorter mask update period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetPlan {
    /// Where the data comes from (as on the command line).
    pub dataset: String,
    /// Training epochs.
    pub epochs: usize,
    /// `ch_size` for this data set only (`None`: the plan's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// Epochs between mask updates for this data set only (`None`: the plan's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_every_epochs: Option<usize>,
}

impl DatasetPlan {
    /// `dataset` trained for `epochs` with the plan's network and update period.
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

/// Everything a `reproduce` run will do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The preset.
    pub preset: Preset,
    /// Data sets and their epochs.
    pub datasets: Vec<DatasetPlan>,
    /// Arms, in report order.
    pub arms: Vec<Arm>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// The configuration of univariate sets (arm, epochs and seed are set per run).
    pub univariate: TrainConfig,
    /// The configuration of multivariate sets.
    pub multivariate: TrainConfig,
}

/// `quick`'s epochs on OSULeaf (length 427, 200 training cases).
pub const OSULEAF_EPOCHS: usize = 10;
/// `quick`'s epochs on ACSF1 (length 1460, 100 training cases).
pub const ACSF1_EPOCHS: usize = 10;
/// `quick`'s epochs between mask updates on OSULeaf and ACSF1 (the other sets: 5),
/// so that their few epochs still hold five topology updates.
pub const LONG_SERIES_UPDATE_EVERY_EPOCHS: usize = 2;

/// The data sets of the `quick` preset with their epochs, sized to fit 30
/// minutes on a 2-core CPU for 4 arms × 3 seeds (see the crate README for the
/// measurements). The long series, OSULeaf (length 427) and ACSF1 (length
/// 1460), run fewer epochs with a shorter mask update period, so that DSN still
/// makes several topology updates.
pub fn quick_datasets() -> Vec<DatasetPlan> {
    vec![
        DatasetPlan::new("gunpoint", 60),
        DatasetPlan::new("italypowerdemand", 60),
        DatasetPlan::new("arrowhead", 30),
        DatasetPlan::new("osuleaf", OSULEAF_EPOCHS)
            .with_update_every_epochs(LONG_SERIES_UPDATE_EVERY_EPOCHS),
        DatasetPlan::new("acsf1", ACSF1_EPOCHS)
            .with_update_every_epochs(LONG_SERIES_UPDATE_EVERY_EPOCHS),
        DatasetPlan::new("basicmotions", 60),
        DatasetPlan::new("japanesevowels", 30),
    ]
}

impl Plan {
    /// The plan of `preset`; `seeds` overrides the preset's number of seeds.
    pub fn for_preset(preset: Preset, seeds: Option<usize>) -> Result<Self> {
        let base = TrainConfig::builder();
        let (datasets, univariate, multivariate, default_seeds) = match preset {
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
                let data = [
                    "gunpoint",
                    "italypowerdemand",
                    "arrowhead",
                    "osuleaf",
                    "acsf1",
                    "basicmotions",
                    "japanesevowels",
                ]
                .into_iter()
                .map(|d| DatasetPlan::new(d, 1000))
                .collect();
                (data, uni, multi, 3)
            }
        };
        let n = seeds.unwrap_or(default_seeds);
        if n == 0 {
            return Err(crate::error::invalid(
                "seeds",
                0,
                "at least one seed is needed",
            ));
        }
        Ok(Self {
            preset,
            datasets,
            arms: Arm::ALL.to_vec(),
            seeds: (0..n as u64).collect(),
            univariate,
            multivariate,
        })
    }

    /// The validated configuration of one run.
    pub fn config(
        &self,
        arm: Arm,
        dataset: &DatasetPlan,
        dims: usize,
        seed: u64,
    ) -> Result<TrainConfig> {
        let base = if dims > 1 {
            &self.multivariate
        } else {
            &self.univariate
        };
        let mut builder = base.to_builder().arm(arm).epochs(dataset.epochs).seed(seed);
        if let Some(channels) = dataset.channels {
            builder = builder.channels(channels);
        }
        if let Some(every) = dataset.update_every_epochs {
            builder = builder.update_every_epochs(every);
        }
        builder.build()
    }

    /// Checks every configuration of the plan (without data: both the
    /// univariate and the multivariate one) — what `reproduce --dry-run` does.
    pub fn validate(&self) -> Result<usize> {
        let mut runs = 0;
        for dataset in &self.datasets {
            for &arm in &self.arms {
                for &seed in &self.seeds {
                    self.config(arm, dataset, 1, seed)?;
                    self.config(arm, dataset, 2, seed)?;
                    runs += 1;
                }
            }
        }
        Ok(runs)
    }
}

/// One finished run.
#[derive(Debug, Clone)]
struct RunResult {
    arm: Arm,
    dataset: String,
    seed: u64,
    outcome: TrainOutcome,
    checkpoint: PathBuf,
    config: TrainConfig,
}

/// Runs `plan`, writing checkpoints, plots, `report.json` and `report.md` into
/// `out_dir`; returns the report.
pub fn run(
    plan: &Plan,
    location: &DataLocation,
    out_dir: &Path,
    started: &UtcDateTime,
    progress: ProgressMode,
) -> Result<RunReport> {
    let watch = Stopwatch::start();
    let device = Device::Cpu;
    let checkpoints = out_dir.join("checkpoints");
    std::fs::create_dir_all(&checkpoints).map_err(|source| Error::Io {
        path: checkpoints.clone(),
        source,
    })?;
    let mut results = Vec::new();
    let mut names = Vec::new();
    for dataset in &plan.datasets {
        let source = DatasetSource::parse(&dataset.dataset);
        let data: TsData = source.load(location)?;
        names.push(data.name.clone());
        for &arm in &plan.arms {
            for &seed in &plan.seeds {
                let config = plan.config(arm, dataset, data.dims, seed)?;
                let (trained, outcome) = train(&config, &data, &device, progress)?;
                let path =
                    checkpoints.join(format!("{}-{}-s{seed}.safetensors", data.name, arm.name()));
                save_checkpoint(&path, &trained, &source, &outcome)?;
                results.push(RunResult {
                    arm,
                    dataset: data.name.clone(),
                    seed,
                    outcome,
                    checkpoint: path,
                    config,
                });
            }
        }
    }
    let mut report = RunReport::started_at(
        CRATE_NAME,
        env!("CARGO_PKG_VERSION"),
        plan.preset.as_str(),
        plan.seeds.clone(),
        started,
    );
    if let Some(machine) = report.machine.as_mut() {
        machine.device = Some("cpu".into());
    }
    report.config = Some(json!(plan));
    for name in &names {
        for &arm in &plan.arms {
            let runs: Vec<&RunResult> = results
                .iter()
                .filter(|r| r.arm == arm && &r.dataset == name)
                .collect();
            report.arms.push(arm_report(arm, name, &runs, out_dir)?);
        }
    }
    report.claims = claims(&results, &plan.arms);
    report.extra.insert(
        "sparse_conv_kernel".into(),
        json!(format!(
            "sparse arms: {:?} (sparse_core::kernels::SparseConv1d over the active taps); dense arms: sparse_core::kernels::conv2d (im2col + gemm) on a height-1 image",
            plan.univariate.conv_backend()
        )),
    );
    report.anchors = crate::published::anchors(&names);
    write_region_plot(&results, &names, out_dir)?;
    report.wall_seconds = watch.elapsed_seconds();
    report.write_to_dir(out_dir)?;
    Ok(report)
}

fn arm_report(arm: Arm, dataset: &str, runs: &[&RunResult], out_dir: &Path) -> Result<ArmReport> {
    let per_seed = |f: &dyn Fn(&TrainOutcome) -> f64| -> Vec<f64> {
        runs.iter().map(|r| f(&r.outcome)).collect()
    };
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let first = runs
        .first()
        .ok_or_else(|| crate::error::invalid("seeds", 0, "no run finished"))?;
    let mut report = ArmReport::new(arm.name(), dataset)
        .with_seed_values("test_accuracy", &per_seed(&|o| o.test_accuracy))?
        .with_seed_values("test_accuracy_last", &per_seed(&|o| o.test_accuracy_last))?
        .with_seed_values("train_seconds", &per_seed(&|o| o.train_seconds))?
        .with_seed_values("selected_epoch", &per_seed(&|o| o.selected_epoch as f64))?
        .with_metric("params", first.outcome.params as f64)
        .with_metric(
            "nonzero_params",
            mean(per_seed(&|o| o.nonzero_params as f64)),
        )
        .with_metric("density", mean(per_seed(&|o| o.conv_density)))
        .with_metric("conv_flops", mean(per_seed(&|o| o.conv_flops)))
        .with_metric("inference_flops", mean(per_seed(&|o| o.inference_flops)))
        .with_metric("mask_updates", mean(per_seed(&|o| o.mask_updates as f64)));
    if arm.is_sparse() {
        let initial = per_seed(&|o| o.region_rate.first().copied().unwrap_or(f64::NAN));
        let last = per_seed(&|o| o.region_rate.last().copied().unwrap_or(f64::NAN));
        report = report
            .with_metric("region_rate_initial", mean(initial))
            .with_metric("region_rate_final", mean(last));
    }
    let checkpoints: Vec<String> = runs
        .iter()
        .map(|r| {
            r.checkpoint
                .strip_prefix(out_dir)
                .unwrap_or(&r.checkpoint)
                .display()
                .to_string()
        })
        .collect();
    Ok(report
        .with_extra("checkpoints", json!(checkpoints))
        .with_extra(
            "seeds",
            json!(runs.iter().map(|r| r.seed).collect::<Vec<_>>()),
        )
        .with_extra("config", json!(first.config)))
}

fn mean_over<'a>(
    results: impl Iterator<Item = &'a RunResult>,
    f: impl Fn(&TrainOutcome) -> f64,
) -> f64 {
    let values: Vec<f64> = results.map(|r| f(&r.outcome)).collect();
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// The claims, from the runs' own numbers (means over data sets and seeds).
fn claims(results: &[RunResult], arms: &[Arm]) -> Vec<Claim> {
    let of = |arm: Arm| results.iter().filter(move |r| r.arm == arm);
    let acc = |arm| mean_over(of(arm), |o| o.test_accuracy);
    let last = |arm| mean_over(of(arm), |o| o.test_accuracy_last);
    let mut claims = Vec::new();
    if !(arms.contains(&Arm::Dsn) && arms.contains(&Arm::Static) && arms.contains(&Arm::Dense)) {
        return claims;
    }
    claims.push(Claim::at_least(
        "dsn-ge-static",
        "DSN >= static sparse (same initial mask, never updated): mean test accuracy over data sets and seeds",
        "dsn",
        acc(Arm::Dsn),
        "static",
        acc(Arm::Static),
    ));
    claims.push(Claim::within_margin_below(
        "dsn-near-dense",
        "DSN within 2 points of dense (same topology, all taps): mean test accuracy",
        "dsn",
        acc(Arm::Dsn),
        "dense",
        acc(Arm::Dense),
        DENSE_MARGIN,
    ));
    // per data set, DSN's kernel-conv FLOPs over the dense arm's, averaged
    let ratios: Vec<f64> = results
        .iter()
        .filter(|r| r.arm == Arm::Dsn)
        .filter_map(|d| {
            results
                .iter()
                .find(|r| r.arm == Arm::Dense && r.dataset == d.dataset && r.seed == d.seed)
                .map(|dense| d.outcome.conv_flops / dense.outcome.conv_flops)
        })
        .collect();
    let ratio = ratios.iter().sum::<f64>() / ratios.len().max(1) as f64;
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
        mean_over(of(Arm::Dsn), |o| {
            o.region_rate.last().copied().unwrap_or(f64::NAN)
        }),
        "initial",
        mean_over(of(Arm::Dsn), |o| {
            o.region_rate.first().copied().unwrap_or(f64::NAN)
        }),
    ));
    claims.push(Claim::at_least(
        "dsn-ge-static-last-epoch",
        "(beside the official selection) DSN >= static sparse at the last epoch",
        "dsn",
        last(Arm::Dsn),
        "static",
        last(Arm::Static),
    ));
    claims.push(Claim::within_margin_below(
        "dsn-near-dense-last-epoch",
        "(beside the official selection) DSN within 2 points of dense at the last epoch",
        "dsn",
        last(Arm::Dsn),
        "dense",
        last(Arm::Dense),
        DENSE_MARGIN,
    ));
    claims
}

/// `region_rate.svg`: DSN's share of region taps ever active per epoch, mean over seeds.
fn write_region_plot(results: &[RunResult], names: &[String], out_dir: &Path) -> Result<()> {
    let mut plot = LinePlot::new(
        "DSN exploration of the constraint regions",
        "epoch",
        "share of region taps ever active",
    );
    for name in names {
        let runs: Vec<&RunResult> = results
            .iter()
            .filter(|r| r.arm == Arm::Dsn && &r.dataset == name)
            .collect();
        let Some(len) = runs.iter().map(|r| r.outcome.region_rate.len()).min() else {
            continue;
        };
        if len == 0 {
            continue;
        }
        let points = (0..len)
            .map(|e| {
                let m =
                    runs.iter().map(|r| r.outcome.region_rate[e]).sum::<f64>() / runs.len() as f64;
                ((e + 1) as f64, m)
            })
            .collect();
        plot = plot.with_series(Series::new(name.clone(), points));
    }
    if !plot.series.is_empty() {
        plot.write_svg(&out_dir.join("region_rate.svg"))?;
    }
    Ok(())
}
