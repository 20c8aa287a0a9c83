//! The reproduction: presets, the grid of arms, the claims and the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};
use sparse_core::checkpoint::{self, Sources};
use sparse_core::{CheckpointMeta, LayerSpec};
use sparse_repro::claim::Claim;
use sparse_repro::cli::Preset;
use sparse_repro::metrics::{self, MeanStd};
use sparse_repro::models::Architecture;
use sparse_repro::plot::{LinePlot, Series};
use sparse_repro::progress::ProgressMode;
use sparse_repro::report::{Anchor, ArmReport, RunReport};
use sparse_repro::run_dir::write_atomic;
use sparse_repro::train::Stopwatch;

use crate::config::{AllocationKind, Sparsity, TrainConfig};
use crate::data::{DatasetName, ImageData};
use crate::error::{Error, Result};
use crate::training::{self, Network, RunOptions, RunOutcome};

/// The density at which claims 1 and 2 compare arms.
pub const CLAIM_DENSITY: f64 = 0.1;

/// Everything a reproduction runs: data, models, arms and training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The preset it came from.
    pub preset: Preset,
    /// Training data.
    pub dataset: DatasetName,
    /// Keep only this many training images (quick presets on large sets).
    pub train_limit: Option<usize>,
    /// Keep only this many test images.
    pub test_limit: Option<usize>,
    /// Out-of-distribution data scored against the test set (AUROC of max-softmax).
    pub ood_dataset: Option<DatasetName>,
    /// Models, narrowest first.
    pub architectures: Vec<Architecture>,
    /// Dense and sparse arms trained for every architecture.
    pub sparsities: Vec<Sparsity>,
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Initial learning rate.
    pub learning_rate: f64,
    /// Default number of seeds.
    pub seeds: usize,
}

impl Plan {
    /// The plan of `preset`, on `dataset` (the preset's default when `None`).
    pub fn new(preset: Preset, dataset: Option<DatasetName>) -> Result<Self> {
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
        let plan = match preset {
            Preset::Smoke => Plan {
                preset,
                dataset,
                train_limit: Some(300),
                test_limit: Some(100),
                ood_dataset: ood_partner(dataset),
                architectures: if image_like {
                    vec![mlp(8), mlp(16)]
                } else {
                    vec![resnet(8, 2), resnet(8, 4)]
                },
                sparsities: grid(&[0.5, CLAIM_DENSITY]),
                epochs: 2,
                batch_size: 32,
                learning_rate: 0.05,
                seeds: 1,
            },
            Preset::Quick if image_like => Plan {
                preset,
                dataset,
                train_limit: None,
                test_limit: None,
                ood_dataset: None,
                architectures: vec![mlp(16), mlp(64), mlp(256)],
                sparsities: grid(&[0.5, 0.2, CLAIM_DENSITY, 0.05]),
                epochs: 30,
                batch_size: 64,
                learning_rate: 0.05,
                seeds: 3,
            },
            Preset::Quick => Plan {
                preset,
                dataset,
                train_limit: Some(1500),
                test_limit: Some(1000),
                ood_dataset: ood_partner(dataset),
                architectures: vec![resnet(8, 4), resnet(8, 8), resnet(8, 16)],
                sparsities: grid(&[0.5, 0.2, CLAIM_DENSITY, 0.05]),
                epochs: 3,
                batch_size: 64,
                learning_rate: 0.1,
                seeds: 3,
            },
            Preset::Paper => Plan {
                preset,
                dataset,
                train_limit: None,
                test_limit: None,
                ood_dataset: None,
                architectures: [20, 32, 44, 56, 110]
                    .iter()
                    .map(|&d| resnet(d, 16))
                    .collect(),
                sparsities: {
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
                    arms
                },
                epochs: 160,
                batch_size: 128,
                learning_rate: 0.1,
                seeds: 3,
            },
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Builds (and so validates) the config of every arm for `seed`.
    pub fn configs(&self, seed: u64) -> Result<Vec<TrainConfig>> {
        let mut out = Vec::new();
        for arch in &self.architectures {
            for sparsity in &self.sparsities {
                out.push(
                    TrainConfig::builder(arch.clone())
                        .sparsity(*sparsity)
                        .epochs(self.epochs)
                        .batch_size(self.batch_size)
                        .learning_rate(self.learning_rate)
                        .seed(seed)
                        .build()?,
                );
            }
        }
        Ok(out)
    }

    fn validate(&self) -> Result<()> {
        self.configs(0).map(|_| ())
    }

    /// Loads the plan's data (and OOD data), truncated to the plan's limits.
    pub fn load_data(&self, data_dir: Option<&Path>) -> Result<(ImageData, Option<ImageData>)> {
        let data =
            ImageData::load(self.dataset, data_dir)?.truncated(self.train_limit, self.test_limit);
        let ood = match self.ood_dataset {
            Some(name) => {
                Some(ImageData::load(name, data_dir)?.truncated(Some(0), self.test_limit))
            }
            None => None,
        };
        Ok((data, ood))
    }
}

/// The out-of-distribution set scored against a model trained on `dataset`.
fn ood_partner(dataset: DatasetName) -> Option<DatasetName> {
    match dataset {
        DatasetName::FashionMnist => Some(DatasetName::Mnist),
        DatasetName::Mnist => Some(DatasetName::FashionMnist),
        _ => None,
    }
}

fn mlp(width: usize) -> Architecture {
    Architecture::Mlp { width, depth: 2 }
}

fn resnet(depth: usize, width: usize) -> Architecture {
    Architecture::ResNet { depth, width }
}

/// The arm name of one architecture and sparsity, e.g. `mlp-64x2 ERK@0.10`.
pub fn arm_name(arch: &Architecture, sparsity: &Sparsity) -> String {
    format!("{} {}", arch.label(), sparsity.label())
}

/// What the checkpoint records so that `eval` can rebuild the run's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSpec {
    /// The run's configuration.
    pub config: TrainConfig,
    /// Training data set.
    pub dataset: DatasetName,
    /// Training images kept.
    pub train_limit: Option<usize>,
    /// Test images kept.
    pub test_limit: Option<usize>,
    /// Test accuracy measured at the end of the run (the report's number).
    pub test_accuracy: f64,
}

/// One seed of one arm, as measured.
#[derive(Debug, Clone)]
pub struct SeedResult {
    /// The arm's architecture.
    pub architecture: Architecture,
    /// The arm's sparsity.
    pub sparsity: Sparsity,
    /// The seed.
    pub seed: u64,
    /// Measurements.
    pub outcome: RunOutcome,
    /// Non-zeros of the masks as stored in the checkpoint.
    pub checkpoint_mask_nnz: usize,
    /// The budget the allocation gave (Σ d_l·N_l), for sparse arms.
    pub budget: Option<f64>,
    /// AUROC of max-softmax, test set vs the OOD set.
    pub ood_auroc: Option<f64>,
    /// The checkpoint file.
    pub checkpoint: PathBuf,
}

/// Runs `plan` for `seeds`, writing checkpoints, `report.json`, `report.md` and
/// plots into `out`. Arms already finished in `out` by an interrupted run of the
/// same plan are taken from their records instead of being trained again.
pub fn reproduce(
    plan: &Plan,
    seeds: &[u64],
    data_dir: Option<&Path>,
    out: &Path,
    progress: ProgressMode,
) -> Result<RunReport> {
    let stopwatch = Stopwatch::start();
    let mut report = RunReport::new(
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
        plan.preset.as_str(),
        seeds.to_vec(),
    );
    report.config = Some(serde_json::to_value(plan).map_err(|e| Error::Serialise(e.to_string()))?);
    let (data, ood) = plan.load_data(data_dir)?;
    let ckpt_dir = out.join("checkpoints");
    std::fs::create_dir_all(&ckpt_dir).map_err(|e| Error::Io(ckpt_dir.clone(), e))?;

    let mut results = Vec::new();
    for &seed in seeds {
        for config in plan.configs(seed)? {
            results.push(run_arm(
                plan,
                &config,
                &data,
                ood.as_ref(),
                &ckpt_dir,
                progress,
            )?);
        }
    }

    report.arms = arm_reports(plan, &results)?;
    report.claims = claims(plan, &results)?;
    report.anchors = anchors(plan);
    report.wall_seconds = stopwatch.elapsed_seconds();
    report.write_to_dir(out)?;
    write_plots(plan, &results, out)?;
    Ok(report)
}

/// What a finished arm leaves beside its checkpoint, so that an interrupted
/// `reproduce` into the same `--out` resumes instead of retraining.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SeedRecord {
    config: TrainConfig,
    outcome: RunOutcome,
    ood_auroc: Option<f64>,
}

/// Trains one arm for one seed, or takes it from a previous run into the same folder.
fn run_arm(
    plan: &Plan,
    config: &TrainConfig,
    data: &ImageData,
    ood: Option<&ImageData>,
    ckpt_dir: &Path,
    progress: ProgressMode,
) -> Result<SeedResult> {
    let name = arm_name(&config.architecture, &config.sparsity);
    let stem = format!("{}-seed{}", name.replace([' ', '@'], "-"), config.seed);
    let file = ckpt_dir.join(format!("{stem}.safetensors"));
    let record_file = ckpt_dir.join(format!("{stem}.json"));
    let previous = std::fs::read(&record_file)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<SeedRecord>(&bytes).ok())
        .filter(|r| &r.config == config && file.is_file());
    let record = match previous {
        Some(record) => record,
        None => {
            let options = RunOptions {
                progress,
                label: format!("{name} seed {}", config.seed),
            };
            let (outcome, net) = training::train(config, data, &options)?;
            let ood_auroc = match ood {
                Some(ood) => Some(ood_auroc(&net, data, ood)?),
                None => None,
            };
            let spec = EvalSpec {
                config: config.clone(),
                dataset: plan.dataset,
                train_limit: plan.train_limit,
                test_limit: plan.test_limit,
                test_accuracy: outcome.test_accuracy,
            };
            save_checkpoint(&file, &net, &spec)?;
            let record = SeedRecord {
                config: config.clone(),
                outcome,
                ood_auroc,
            };
            let json =
                serde_json::to_vec_pretty(&record).map_err(|e| Error::Serialise(e.to_string()))?;
            write_atomic(&record_file, &json)?;
            record
        }
    };
    // The budget depends only on the configuration: rebuild the initial network.
    let budget = budget(config, &Network::new(config, data)?)?;
    Ok(SeedResult {
        checkpoint_mask_nnz: mask_nnz_in_checkpoint(&file)?,
        budget,
        architecture: config.architecture.clone(),
        sparsity: config.sparsity,
        seed: config.seed,
        outcome: record.outcome,
        ood_auroc: record.ood_auroc,
        checkpoint: file,
    })
}

/// Saves the best-validation network of a run with its eval spec as metadata.
pub fn save_checkpoint(path: &Path, net: &Network, spec: &EvalSpec) -> Result<()> {
    let config = serde_json::to_value(spec).map_err(|e| Error::Serialise(e.to_string()))?;
    let mut meta = CheckpointMeta::new(
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
        config,
        spec.config.epochs as u64,
        spec.config.seed,
    );
    meta.densities = net.params.densities();
    checkpoint::save(
        path,
        &net.varmap,
        Sources {
            masks: Some(&net.params),
            optimizer: None,
            extra: None,
        },
        &meta,
    )?;
    Ok(())
}

/// Reloads a checkpoint written by [`reproduce`] and measures its test accuracy
/// on the same data; returns `(stored, measured)`.
pub fn evaluate_checkpoint(path: &Path, data_dir: Option<&Path>) -> Result<(EvalSpec, f64)> {
    let meta = checkpoint::read_meta(path)?;
    if meta.crate_name != env!("CARGO_PKG_NAME") {
        return Err(Error::WrongCheckpoint {
            path: path.to_path_buf(),
            crate_name: meta.crate_name,
        });
    }
    let spec: EvalSpec = serde_json::from_value(meta.config)
        .map_err(|e| Error::BadCheckpointConfig(path.to_path_buf(), e.to_string()))?;
    let data =
        ImageData::load(spec.dataset, data_dir)?.truncated(spec.train_limit, spec.test_limit);
    let net = Network::new(&spec.config, &data)?;
    checkpoint::load(
        path,
        &net.varmap,
        checkpoint::Targets {
            params: None,
            optimizer: None,
        },
    )?;
    let accuracy = net.evaluate_test(&data, data.test_pool())?.accuracy;
    Ok((spec, accuracy))
}

fn ood_auroc(net: &Network, data: &ImageData, ood: &ImageData) -> Result<f64> {
    let (in_logits, _) = net.test_logits(data, data.test_pool())?;
    let mut out = Vec::new();
    for chunk in ood.test_pool().chunks(512) {
        let x = data.foreign_batch(ood, chunk, &Device::Cpu)?;
        out.push(net.logits(&x)?);
    }
    let out_logits = candle_core::Tensor::cat(&out, 0)?;
    Ok(metrics::msp_auroc(&in_logits, &out_logits)?)
}

/// Counts the active entries of every `mask/...` tensor stored in the file.
pub fn mask_nnz_in_checkpoint(path: &Path) -> Result<usize> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)?;
    let mut nnz = 0usize;
    for (name, t) in tensors {
        if name.starts_with("mask/") {
            nnz += t
                .flatten_all()?
                .to_vec1::<u8>()?
                .iter()
                .filter(|&&b| b != 0)
                .count();
        }
    }
    Ok(nnz)
}

/// Σ d_l·N_l of the run's allocation, recomputed from the layer shapes (`None` for dense).
fn budget(config: &TrainConfig, net: &Network) -> Result<Option<f64>> {
    let Some(alloc) = config.sparsity.allocation_config()? else {
        return Ok(None);
    };
    let layers: Vec<LayerSpec> = training::masked_layers(net)?;
    let total: usize = layers.iter().map(LayerSpec::numel).sum();
    if alloc.allocation().needs_scores() {
        // Score-based ratios keep exactly the global top floor(d·N) weights.
        return Ok(Some((alloc.density() * total as f64).floor()));
    }
    let densities = alloc.layer_densities(&layers, None)?;
    Ok(Some(
        layers
            .iter()
            .zip(&densities)
            .map(|(l, d)| d * l.numel() as f64)
            .sum(),
    ))
}

fn seed_values<'a>(
    results: &'a [SeedResult],
    arch: &'a Architecture,
    sparsity: &'a Sparsity,
) -> impl Iterator<Item = &'a SeedResult> {
    results
        .iter()
        .filter(move |r| &r.architecture == arch && &r.sparsity == sparsity)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn arm_reports(plan: &Plan, results: &[SeedResult]) -> Result<Vec<ArmReport>> {
    let mut arms = Vec::new();
    for arch in &plan.architectures {
        for sparsity in &plan.sparsities {
            let runs: Vec<&SeedResult> = seed_values(results, arch, sparsity).collect();
            if runs.is_empty() {
                continue;
            }
            let collect =
                |f: fn(&SeedResult) -> f64| runs.iter().map(|r| f(r)).collect::<Vec<f64>>();
            let mut arm = ArmReport::new(arm_name(arch, sparsity), plan.dataset.as_str())
                .with_seed_values("test_accuracy", &collect(|r| r.outcome.test_accuracy))?
                .with_mean_std(
                    "final_test_accuracy",
                    MeanStd::from_values(&collect(|r| r.outcome.final_test_accuracy))?,
                )
                .with_mean_std(
                    "test_ece",
                    MeanStd::from_values(&collect(|r| r.outcome.test_ece))?,
                )
                .with_metric(
                    "params",
                    mean(&collect(|r| r.outcome.nonzero_params as f64)),
                )
                .with_metric("density", mean(&collect(|r| r.outcome.masked_density)))
                .with_metric("target_density", sparsity.density())
                .with_metric(
                    "inference_flops",
                    mean(&collect(|r| r.outcome.inference_flops)),
                )
                .with_metric(
                    "inference_flops_relative",
                    mean(&collect(|r| {
                        r.outcome.inference_flops / r.outcome.dense_inference_flops
                    })),
                )
                .with_metric(
                    "train_seconds_mean",
                    mean(&collect(|r| r.outcome.train_seconds)),
                )
                .with_metric(
                    "best_epoch_mean",
                    mean(&collect(|r| r.outcome.best_epoch as f64)),
                )
                .with_extra("width", serde_json::json!(arch.width()))
                .with_extra("architecture", serde_json::json!(arch.label()))
                .with_extra(
                    "sparsity",
                    serde_json::to_value(sparsity).map_err(|e| Error::Serialise(e.to_string()))?,
                );
            if runs.iter().all(|r| r.ood_auroc.is_some()) {
                let values: Vec<f64> = runs.iter().filter_map(|r| r.ood_auroc).collect();
                arm = arm.with_mean_std("ood_auroc", MeanStd::from_values(&values)?);
            }
            arms.push(arm);
        }
    }
    Ok(arms)
}

fn mean_accuracy(
    results: &[SeedResult],
    arch: &Architecture,
    pick: impl Fn(&Sparsity) -> bool,
) -> Option<f64> {
    let values: Vec<f64> = results
        .iter()
        .filter(|r| &r.architecture == arch && pick(&r.sparsity))
        .map(|r| r.outcome.test_accuracy)
        .collect();
    (!values.is_empty()).then(|| mean(&values))
}

fn is_alloc_at(s: &Sparsity, kind: AllocationKind, density: f64) -> bool {
    matches!(s, Sparsity::Random { density: d, allocation, .. } if *allocation == kind && (d - density).abs() < 1e-12)
}

/// The three claims of the issue, computed from the run's numbers.
pub fn claims(plan: &Plan, results: &[SeedResult]) -> Result<Vec<Claim>> {
    let mut claims = Vec::new();

    // 1. The gap to dense at density 0.1 (ERK) shrinks as width grows.
    let mut gaps = Vec::new();
    for arch in &plan.architectures {
        let dense = mean_accuracy(results, arch, |s| *s == Sparsity::Dense);
        let erk = mean_accuracy(results, arch, |s| {
            is_alloc_at(s, AllocationKind::Erk, CLAIM_DENSITY)
        });
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
    let low: Vec<f64> = plan
        .sparsities
        .iter()
        .filter_map(|s| match s {
            Sparsity::Random {
                density,
                allocation: AllocationKind::Erk,
                ..
            } if *density <= CLAIM_DENSITY + 1e-12 => Some(*density),
            _ => None,
        })
        .collect();
    let mut values = Vec::new();
    let mut erk_wins = !low.is_empty();
    for d in &low {
        let pick = |kind| -> Vec<f64> {
            results
                .iter()
                .filter(|r| is_alloc_at(&r.sparsity, kind, *d))
                .map(|r| r.outcome.test_accuracy)
                .collect()
        };
        let (erk, uni) = (
            mean(&pick(AllocationKind::Erk)),
            mean(&pick(AllocationKind::Uniform)),
        );
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
    for r in results {
        let (Some(budget), Sparsity::Random { exact, .. }) = (r.budget, r.sparsity) else {
            continue;
        };
        sparse_runs += 1;
        let nnz = r.checkpoint_mask_nnz as f64;
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
fn anchors(plan: &Plan) -> Vec<Anchor> {
    let Some(widest) = plan.architectures.last() else {
        return Vec::new();
    };
    let note = format!(
        "paper: CIFAR-10 ResNet-20, 160 epochs; ours: {} {} ({} preset) — compare trends, not values",
        plan.dataset.as_str(),
        widest.label(),
        plan.preset.as_str()
    );
    let source = "official README figure depth_cf10 (approximate)";
    let arm = |s: Sparsity| arm_name(widest, &s);
    let exact = plan.preset != Preset::Paper;
    vec![
        Anchor::new(arm(Sparsity::Dense), "test_accuracy_mean", 0.924, source).with_note(&note),
        Anchor::new(
            arm(Sparsity::Random {
                density: CLAIM_DENSITY,
                allocation: AllocationKind::Erk,
                exact,
            }),
            "test_accuracy_mean",
            0.878,
            source,
        )
        .with_note(&note),
        Anchor::new(
            arm(Sparsity::Random {
                density: CLAIM_DENSITY,
                allocation: AllocationKind::Uniform,
                exact,
            }),
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

fn write_plots(plan: &Plan, results: &[SeedResult], out: &Path) -> Result<()> {
    let mut plot = LinePlot::new(
        format!("{}: test accuracy vs density", plan.dataset.as_str()),
        "density (kept weights)",
        "test accuracy",
    )
    .log_x(true);
    for arch in &plan.architectures {
        for kind in [AllocationKind::Uniform, AllocationKind::Erk] {
            let mut by_density: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for r in results.iter().filter(|r| &r.architecture == arch) {
                let key = match r.sparsity {
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
                        .push(r.outcome.test_accuracy);
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
