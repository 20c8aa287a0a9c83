//! The reproduction on sparse-repro's harness: presets, arms, claims, anchors and
//! the plot. The harness runs the arms, checkpoints, resumes and writes the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use sparse_repro::claim::Claim;
use sparse_repro::cli::Preset;
use sparse_repro::harness::{
    self, ArmRuns, ArmSpec, Metrics, Paper, Plan, RunContext, Runs, TrainRequest, Trained,
};
use sparse_repro::metrics::MeanStd;
use sparse_repro::models::Architecture;
use sparse_repro::plot::{LinePlot, Series};
use sparse_repro::report::{Anchor, ArmReport};

use crate::config::{AllocationKind, Sparsity, TrainConfig};
use crate::data::{DatasetName, ImageData, LoadError};
use crate::error::{Error, Result};
use crate::training::{self, Network, RunOptions, RunOutcome};

/// The density at which claims 1 and 2 compare arms.
pub const CLAIM_DENSITY: f64 = 0.1;

/// The paper, as the harness drives it.
#[derive(Debug, Clone, Copy)]
pub struct RandomPruning;

/// `reproduce`'s own flag (the harness's [`Paper::ReproduceArgs`]; clap names a flattened
/// group after its struct, so it must not be called `ReproduceArgs` like the harness's own).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct DatasetArgs {
    /// Data set (default: digits for smoke/quick, cifar10 for paper).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetName>,
}

/// The model family of `train --arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ArchKind {
    /// Multilayer perceptron.
    Mlp,
    /// CIFAR ResNet-(6n+2).
    Resnet,
    /// VGG with batch norm.
    Vgg,
}

/// The flags of `train` (one arm).
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Data set.
    #[arg(long, value_enum, default_value_t = DatasetName::Digits)]
    pub dataset: DatasetName,
    /// Where the data sets are.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Model family.
    #[arg(long, value_enum, default_value_t = ArchKind::Mlp)]
    pub arch: ArchKind,
    /// Width multiplier (hidden units or first-stage channels).
    #[arg(long, default_value_t = 64)]
    pub width: usize,
    /// MLP hidden layers (default 2) or ResNet depth 6n+2 (default 20).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Density of the random mask; 1 trains the dense model.
    #[arg(long, default_value_t = 1.0)]
    pub density: f64,
    /// Layer-wise allocation of the density.
    #[arg(long, value_enum, default_value_t = AllocationKind::Erk)]
    pub allocation: AllocationKind,
    /// Draw exactly round(d_l·N_l) weights per layer instead of Bernoulli(d_l) each.
    #[arg(long)]
    pub exact: bool,
    /// Epochs.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Initial learning rate.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Seed.
    #[arg(long, default_value_t = 17)]
    pub seed: u64,
    /// Keep only the first N training images.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Keep only the first N test images.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Output directory (default `runs/random-pruning/train-<UTC timestamp>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A loaded data set and, for the sets that have one, its out-of-distribution partner.
#[derive(Debug, Clone)]
pub struct Data {
    /// The training and test data.
    pub data: ImageData,
    /// The out-of-distribution set scored against the test set.
    pub ood: Option<ImageData>,
}

impl Data {
    /// The views of the data and OOD set that `config` trains and scores on.
    pub fn for_arm(&self, config: &TrainConfig) -> (ImageData, Option<ImageData>) {
        let data = self.data.limited(config.train_limit(), config.test_limit());
        let ood = self
            .ood
            .as_ref()
            .map(|o| o.limited(Some(0), config.test_limit()));
        (data, ood)
    }
}

/// The plan's settings, as the report's `config` shows them.
#[derive(Debug, serde::Serialize)]
struct Settings<'a> {
    preset: Preset,
    dataset: DatasetName,
    train_limit: Option<usize>,
    test_limit: Option<usize>,
    ood_dataset: Option<DatasetName>,
    architectures: &'a [Architecture],
    sparsities: &'a [Sparsity],
    epochs: usize,
    batch_size: usize,
    lr: f64,
    seeds: usize,
}

fn mlp(width: usize) -> Architecture {
    Architecture::Mlp { width, depth: 2 }
}

fn resnet(depth: usize, width: usize) -> Architecture {
    Architecture::ResNet { depth, width }
}

fn dataset_of(name: &str) -> Result<DatasetName> {
    DatasetName::parse(name).ok_or_else(|| LoadError::Unknown(name.to_string()).into())
}

/// The plan of `preset` on `dataset` (the preset's default when `None`).
pub fn plan(preset: Preset, dataset: Option<DatasetName>) -> Result<Plan<TrainConfig>> {
    let dataset = dataset.unwrap_or(match preset {
        Preset::Paper => DatasetName::Cifar10,
        _ => DatasetName::Digits,
    });
    let exact = preset != Preset::Paper;
    let random = |density: f64, allocation: AllocationKind| Sparsity::Random {
        density,
        allocation,
        exact,
    };
    let grid = |densities: &[f64]| {
        let mut arms = vec![Sparsity::Dense];
        for &d in densities {
            arms.push(random(d, AllocationKind::Uniform));
            arms.push(random(d, AllocationKind::Erk));
        }
        arms.push(random(CLAIM_DENSITY, AllocationKind::Er));
        arms.push(random(CLAIM_DENSITY, AllocationKind::Snip));
        arms
    };
    let image_like = matches!(dataset, DatasetName::Digits);
    // (train_limit, test_limit, architectures, sparsities, epochs, batch_size, lr, seeds)
    let (train_limit, test_limit, architectures, sparsities, epochs, batch_size, lr, seeds) =
        match preset {
            Preset::Smoke => (
                Some(300),
                Some(100),
                if image_like {
                    vec![mlp(8), mlp(16)]
                } else {
                    vec![resnet(8, 2), resnet(8, 4)]
                },
                grid(&[0.5, CLAIM_DENSITY]),
                2,
                32,
                0.05,
                1,
            ),
            Preset::Quick if image_like => (
                None,
                None,
                vec![mlp(16), mlp(64), mlp(256)],
                grid(&[0.5, 0.2, CLAIM_DENSITY, 0.05]),
                30,
                64,
                0.05,
                3,
            ),
            Preset::Quick => (
                Some(1500),
                Some(1000),
                vec![resnet(8, 4), resnet(8, 8), resnet(8, 16)],
                grid(&[0.5, 0.2, CLAIM_DENSITY, 0.05]),
                3,
                64,
                0.1,
                3,
            ),
            Preset::Paper => {
                let mut arms = vec![Sparsity::Dense];
                for d in [0.5, 0.3, CLAIM_DENSITY, 0.05] {
                    for a in [
                        AllocationKind::Uniform,
                        AllocationKind::UniformPlus,
                        AllocationKind::Er,
                        AllocationKind::Erk,
                        AllocationKind::Snip,
                        AllocationKind::Grasp,
                    ] {
                        arms.push(random(d, a));
                    }
                }
                (
                    None,
                    None,
                    [20, 32, 44, 56, 110]
                        .iter()
                        .map(|&d| resnet(d, 16))
                        .collect(),
                    arms,
                    160,
                    128,
                    0.1,
                    3,
                )
            }
        };
    let mut arms = Vec::with_capacity(architectures.len() * sparsities.len());
    for arch in &architectures {
        for sparsity in &sparsities {
            let config = TrainConfig::builder(arch.clone())
                .sparsity(*sparsity)
                .epochs(epochs)
                .batch_size(batch_size)
                .lr(lr)
                .train_limit(train_limit)
                .test_limit(test_limit)
                .build()?;
            arms.push(ArmSpec::new(config.arm_name(), dataset.as_str(), config));
        }
    }
    let settings = Settings {
        preset,
        dataset,
        train_limit,
        test_limit,
        ood_dataset: dataset.ood_partner(),
        architectures: &architectures,
        sparsities: &sparsities,
        epochs,
        batch_size,
        lr,
        seeds,
    };
    Ok(Plan {
        preset,
        arms,
        default_seeds: seeds,
        config: serde_json::to_value(&settings)
            .map_err(|e| sparse_repro::HarnessError::Serialise(e.to_string()))?,
    })
}

/// The architectures of a plan, each once, in plan order (narrowest first).
fn architectures<A>(arms: &[ArmSpec<A>], arch: impl Fn(&A) -> &Architecture) -> Vec<Architecture> {
    let mut out: Vec<Architecture> = Vec::new();
    for a in arms {
        let a = arch(&a.config);
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Test accuracies of every run whose sparsity satisfies `pick`, seed by seed and,
/// within a seed, in plan order (the order in which they are summed).
fn accuracies_seed_major(runs: &Runs<RandomPruning>, pick: impl Fn(&Sparsity) -> bool) -> Vec<f64> {
    let arms: Vec<&ArmRuns<RandomPruning>> = runs.filter(|a| pick(&a.config.sparsity())).collect();
    let seeds = arms.iter().map(|a| a.runs.len()).max().unwrap_or(0);
    (0..seeds)
        .flat_map(|i| {
            arms.iter()
                .filter_map(move |a| a.runs.get(i).map(|r| r.outcome.test_accuracy))
        })
        .collect()
}

impl Paper for RandomPruning {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "Static sparse training from random masks (Liu et al., ICLR 2022).";
    const EVAL_METRIC: &'static str = "test_accuracy";

    type Arm = TrainConfig;
    type Data = Data;
    type Outcome = RunOutcome;
    type ReproduceArgs = DatasetArgs;
    type TrainArgs = TrainArgs;
    type Commands = sparse_repro::harness::NoCommands;
    type Error = Error;

    fn plan(preset: Preset, args: &DatasetArgs) -> Result<Plan<TrainConfig>> {
        plan(preset, args.dataset)
    }

    fn data_needs(dataset: &str) -> Vec<String> {
        let Some(name) = DatasetName::parse(dataset) else {
            // `load` names the unknown set.
            return Vec::new();
        };
        std::iter::once(name)
            .chain(name.ood_partner())
            .filter(|d| d.in_catalogue())
            .map(|d| d.as_str().to_string())
            .collect()
    }

    fn load(dataset: &str, data_dir: Option<&Path>) -> Result<Data> {
        let name = dataset_of(dataset)?;
        let data = ImageData::load(name, data_dir)?;
        let ood = match name.ood_partner() {
            Some(partner) => Some(ImageData::load(partner, data_dir)?),
            None => None,
        };
        Ok(Data { data, ood })
    }

    fn train(
        arm: &ArmSpec<TrainConfig>,
        data: &Data,
        seed: u64,
        context: &RunContext,
    ) -> Result<Trained<RunOutcome>> {
        let (images, ood) = data.for_arm(&arm.config);
        let options = RunOptions {
            progress: context.progress,
            label: context.label.clone(),
        };
        let (outcome, net) = training::train(&arm.config, &images, ood.as_ref(), seed, &options)?;
        let masks = net.masks();
        Ok(Trained::new(outcome, net.varmap, arm.config.epochs() as u64).with_masks(masks))
    }

    fn metrics(outcome: &RunOutcome) -> Metrics {
        let mut metrics = Metrics::from([
            ("test_accuracy".to_string(), outcome.test_accuracy),
            (
                "final_test_accuracy".to_string(),
                outcome.final_test_accuracy,
            ),
            ("test_ece".to_string(), outcome.test_ece),
        ]);
        if let Some(auroc) = outcome.ood_auroc {
            metrics.insert("ood_auroc".into(), auroc);
        }
        metrics
    }

    fn evaluate(
        arm: &ArmSpec<TrainConfig>,
        data: &Data,
        seed: u64,
        checkpoint: &Path,
    ) -> Result<Metrics> {
        let (images, ood) = data.for_arm(&arm.config);
        // Every weight comes from the checkpoint (pruned ones are stored as zeros),
        // so the model is built without drawing a mask.
        let net = Network::unmasked(&arm.config, &images, seed)?;
        harness::load_model(checkpoint, &net.varmap)?;
        let mut metrics = Metrics::from([
            (
                "test_accuracy".to_string(),
                net.evaluate_test(&images, images.test_pool())?.accuracy,
            ),
            ("test_ece".to_string(), net.test_ece(&images)?),
        ]);
        if let Some(ood) = &ood {
            metrics.insert("ood_auroc".into(), net.ood_auroc(&images, ood)?);
        }
        Ok(metrics)
    }

    fn arm_report(runs: &ArmRuns<Self>, report: ArmReport) -> Result<ArmReport> {
        let config = &runs.arm.config;
        let mean_of = |f: fn(&RunOutcome) -> f64| runs.mean_of(f).unwrap_or(f64::NAN);
        Ok(report
            .with_metric("params", mean_of(|o| o.nonzero_params as f64))
            .with_metric("density", mean_of(|o| o.masked_density))
            .with_metric("target_density", config.density())
            .with_metric("inference_flops", mean_of(|o| o.inference_flops))
            .with_metric(
                "inference_flops_relative",
                mean_of(|o| o.inference_flops / o.dense_inference_flops),
            )
            .with_metric("best_epoch_mean", mean_of(|o| o.best_epoch as f64))
            .with_extra("width", json!(config.architecture().width()))
            .with_extra("architecture", json!(config.architecture().label()))
            .with_extra(
                "sparsity",
                serde_json::to_value(config.sparsity())
                    .map_err(|e| sparse_repro::HarnessError::Serialise(e.to_string()))?,
            ))
    }

    fn claims(plan: &Plan<TrainConfig>, runs: &Runs<Self>) -> Result<Vec<Claim>> {
        claims(plan, runs)
    }

    fn anchors(plan: &Plan<TrainConfig>, _runs: &Runs<Self>) -> Vec<Anchor> {
        anchors(plan)
    }

    fn plots(plan: &Plan<TrainConfig>, runs: &Runs<Self>, out: &Path) -> Result<()> {
        plot_accuracy_vs_density(plan, runs, out)
    }

    fn train_request(args: &TrainArgs) -> Result<TrainRequest<TrainConfig>> {
        let architecture = match args.arch {
            ArchKind::Mlp => Architecture::Mlp {
                width: args.width,
                depth: args.depth.unwrap_or(2),
            },
            ArchKind::Resnet => Architecture::ResNet {
                depth: args.depth.unwrap_or(20),
                width: args.width,
            },
            ArchKind::Vgg => Architecture::Vgg { width: args.width },
        };
        let sparsity = if args.density >= 1.0 {
            Sparsity::Dense
        } else {
            Sparsity::Random {
                density: args.density,
                allocation: args.allocation,
                exact: args.exact,
            }
        };
        let config = TrainConfig::builder(architecture)
            .sparsity(sparsity)
            .epochs(args.epochs)
            .batch_size(args.batch_size)
            .lr(args.lr)
            .train_limit(args.train_limit)
            .test_limit(args.test_limit)
            .build()?;
        Ok(TrainRequest {
            arm: ArmSpec::new(config.arm_name(), args.dataset.as_str(), config),
            seed: args.seed,
            data_dir: args.data_dir.clone(),
            out: args.out.clone(),
        })
    }
}

/// The three claims of the issue, computed from the run's numbers (claim 3 from
/// the masks stored in each seed's checkpoint).
pub fn claims(plan: &Plan<TrainConfig>, runs: &Runs<RandomPruning>) -> Result<Vec<Claim>> {
    let mut claims = Vec::new();

    // 1. The gap to dense at density 0.1 (ERK) shrinks as width grows.
    let mut gaps = Vec::new();
    for arch in architectures(&plan.arms, TrainConfig::architecture) {
        let arm_mean = |pick: &dyn Fn(&Sparsity) -> bool| {
            runs.find(|a| a.config.architecture() == &arch && pick(&a.config.sparsity()))
                .and_then(|a| a.mean("test_accuracy"))
        };
        let dense = arm_mean(&|s| *s == Sparsity::Dense);
        let erk = arm_mean(&|s| s.is_allocation_at(AllocationKind::Erk, CLAIM_DENSITY));
        if let (Some(dense), Some(erk)) = (dense, erk) {
            // Zero-padded so that the report's alphabetical order is the width order.
            gaps.push((format!("gap_width_{:04}", arch.width()), dense - erk));
        }
    }
    let shrinking = gaps.len() >= 2 && gaps.windows(2).all(|w| w[1].1 <= w[0].1);
    claims.push(Claim::new(
        "gap-shrinks-with-width",
        format!(
            "At density {CLAIM_DENSITY} (ERK), the test-accuracy gap to the dense model of the same \
             width does not grow from one width to the next (mean over seeds)"
        ),
        shrinking,
        gaps,
    ));

    // 2. ERK >= uniform at every density <= 0.1, averaged over widths and seeds.
    let mut low: Vec<f64> = Vec::new();
    for arm in &plan.arms {
        if let Sparsity::Random {
            density,
            allocation: AllocationKind::Erk,
            ..
        } = arm.config.sparsity()
            && density <= CLAIM_DENSITY + 1e-12
            && !low.contains(&density)
        {
            low.push(density);
        }
    }
    let mut values = Vec::new();
    let mut erk_wins = !low.is_empty();
    for d in &low {
        let erk = mean(&accuracies_seed_major(runs, |s| {
            s.is_allocation_at(AllocationKind::Erk, *d)
        }));
        let uni = mean(&accuracies_seed_major(runs, |s| {
            s.is_allocation_at(AllocationKind::Uniform, *d)
        }));
        erk_wins &= erk >= uni;
        values.push((format!("erk@{d}"), erk));
        values.push((format!("uniform@{d}"), uni));
    }
    claims.push(Claim::new(
        "erk-beats-uniform",
        format!("ERK >= uniform at every density <= {CLAIM_DENSITY} (mean test accuracy over widths and seeds)"),
        erk_wins,
        values,
    ));

    // 3. Every sparse model has exactly its budget (exact mode) or within 1 % (Bernoulli).
    let mut worst: f64 = 0.0;
    let mut all_ok = true;
    let mut sparse_runs = 0usize;
    for (arm, run) in runs.seed_runs() {
        let (Some(budget), Sparsity::Random { exact, .. }) =
            (run.outcome.budget, arm.config.sparsity())
        else {
            continue;
        };
        sparse_runs += 1;
        let nnz: usize = sparse_core::checkpoint::load_masks(&run.checkpoint)?
            .values()
            .map(|m| m.nnz())
            .sum();
        let nnz = nnz as f64;
        let rel = (nnz - budget).abs() / budget.max(1.0);
        worst = worst.max(rel);
        all_ok &= if exact {
            (nnz - budget.round()).abs() < 0.5
        } else {
            rel <= 0.01
        };
    }
    claims.push(Claim::new(
        "exact-parameter-budget",
        "Every sparse model has exactly the parameter budget it was given (exact sampling) or is \
         within 1 % of it (Bernoulli sampling), counted from the masks in its checkpoint",
        all_ok && sparse_runs > 0,
        [
            ("sparse_runs".to_string(), sparse_runs as f64),
            ("worst_relative_deviation".to_string(), worst),
        ],
    ));
    Ok(claims)
}

/// The official README figure's values (CIFAR-10, approximate) beside our widest model.
fn anchors(plan: &Plan<TrainConfig>) -> Vec<Anchor> {
    let Some(widest) = architectures(&plan.arms, TrainConfig::architecture).pop() else {
        return Vec::new();
    };
    let dataset = plan.arms.first().map(|a| a.dataset.as_str()).unwrap_or("");
    let note = format!(
        "paper: CIFAR-10 ResNet-20, 160 epochs; ours: {dataset} {} ({} preset) — compare trends, not values",
        widest.label(),
        plan.preset.as_str()
    );
    let source = "official README figure depth_cf10 (approximate)";
    let arm = |s: Sparsity| format!("{} {}", widest.label(), s.label());
    let exact = plan.preset != Preset::Paper;
    let random = |allocation| Sparsity::Random {
        density: CLAIM_DENSITY,
        allocation,
        exact,
    };
    vec![
        Anchor::new(arm(Sparsity::Dense), "test_accuracy_mean", 0.924, source).with_note(&note),
        Anchor::new(
            arm(random(AllocationKind::Erk)),
            "test_accuracy_mean",
            0.878,
            source,
        )
        .with_note(&note),
        Anchor::new(
            arm(random(AllocationKind::Uniform)),
            "test_accuracy_mean",
            0.863,
            source,
        )
        .with_note(&note),
        Anchor::new(
            "ResNet-110 dense (CIFAR-10)",
            "test_accuracy_mean",
            0.933,
            source,
        )
        .with_note("not run by the quick preset"),
        Anchor::new(
            "ResNet-110 ERK@0.10 (CIFAR-10)",
            "test_accuracy_mean",
            0.919,
            source,
        )
        .with_note("not run by the quick preset"),
    ]
}

/// `accuracy_vs_density.svg`: mean ± std test accuracy per width, uniform and ERK.
fn plot_accuracy_vs_density(
    plan: &Plan<TrainConfig>,
    runs: &Runs<RandomPruning>,
    out: &Path,
) -> Result<()> {
    let dataset = plan.arms.first().map(|a| a.dataset.as_str()).unwrap_or("");
    let mut plot = LinePlot::new(
        format!("{dataset}: test accuracy vs density"),
        "density (kept weights)",
        "test accuracy",
    )
    .log_x(true);
    for arch in architectures(&plan.arms, TrainConfig::architecture) {
        for kind in [AllocationKind::Uniform, AllocationKind::Erk] {
            let mut by_density: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for arm in runs.filter(|a| a.config.architecture() == &arch) {
                let key = match arm.arm.config.sparsity() {
                    Sparsity::Dense => Some(1.0),
                    Sparsity::Random {
                        density,
                        allocation,
                        ..
                    } if allocation == kind => Some(density),
                    _ => None,
                };
                if let Some(d) = key {
                    by_density
                        .entry(d.to_bits())
                        .or_default()
                        .extend(arm.values("test_accuracy"));
                }
            }
            let mut points = Vec::new();
            let mut errors = Vec::new();
            for (bits, values) in &by_density {
                let ms = MeanStd::from_values(values)?;
                points.push((f64::from_bits(*bits), ms.mean));
                errors.push(ms.std);
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            plot = plot.with_series(
                Series::new(format!("{} {}", arch.label(), kind.label()), points)
                    .with_errors(errors),
            );
        }
    }
    plot.write_svg(&out.join("accuracy_vs_density.svg"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_validates_and_names_its_arms_uniquely() -> Result<()> {
        for preset in [Preset::Smoke, Preset::Quick, Preset::Paper] {
            let plan = plan(preset, None)?;
            let mut names: Vec<&str> = plan.arms.iter().map(|a| a.name.as_str()).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{preset}: duplicate arm names");
        }
        let smoke = plan(Preset::Smoke, None)?;
        // 2 widths x (dense + 2 densities x 2 allocations + ER + SNIP).
        assert_eq!(smoke.arms.len(), 2 * 7);
        assert_eq!(smoke.arms[0].config.train_limit(), Some(300));
        Ok(())
    }

    #[test]
    fn the_ood_partner_is_checked_up_front() {
        assert_eq!(
            RandomPruning::data_needs("fashion-mnist"),
            vec!["fashion-mnist".to_string(), "mnist".to_string()]
        );
        assert_eq!(
            RandomPruning::data_needs("digits"),
            vec!["digits".to_string()]
        );
        assert!(RandomPruning::data_needs("cifar10").is_empty());
    }
}
