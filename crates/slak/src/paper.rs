//! What the harness needs: presets, training, the checkpoint's evaluation, claims
//! and pictures.

use std::collections::BTreeMap;
use std::path::Path;

use sparse_core::SparseParams;
use sparse_data::images::{ImageData, ImageSetName};
use sparse_repro::HarnessError;
use sparse_repro::claim::Claim;
use sparse_repro::cli::{Preset, PresetTrainArgs};
use sparse_repro::harness::{
    self, ArmRuns, ArmSpec, Metrics, NoCommands, Paper, Plan, RunContext, Runs, TrainRequest,
    Trained,
};
use sparse_repro::plot::{LinePlot, Series};
use sparse_repro::report::Anchor;
use sparse_repro::splits::ImageSplits;

use crate::config::SlakConfig;
use crate::error::Result;
use crate::presets::{self, ArmKind};
use crate::training::{ERF_THRESHOLDS, RunOutcome, build_network, evaluate, train};

/// Claim 1's bound on the parameter ratio of the sparse-wide arm to the dense one.
pub const PARAM_RATIO_BOUND: f64 = 1.1;
/// The large kernels of the quick arms.
pub const KERNELS: [usize; 2] = [7, 13];

/// The paper, for sparse-repro's harness.
#[derive(Debug, Clone, Copy)]
pub struct Slak;

/// The flags of `reproduce`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SlakArgs {
    /// The data set: border-half, fashion-mnist, mnist or cifar10 (default: border-half
    /// for smoke, border-half and fashion-mnist for quick, imagenet for paper).
    #[arg(long)]
    pub dataset: Option<String>,
}

/// The flags of `train`: a preset's arm.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// The preset, seed and locations.
    #[command(flatten)]
    pub run: PresetTrainArgs,
    /// The data set (default: the preset's first).
    #[arg(long)]
    pub dataset: Option<String>,
    /// The arm's name (default: the first), e.g. `d-13`.
    #[arg(long)]
    pub arm: Option<String>,
    /// Override the arm's epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
}

/// Every arm of `preset`, on `dataset` or the preset's default data sets.
pub fn preset_arms(preset: Preset, dataset: Option<&str>) -> Result<Vec<ArmSpec<SlakConfig>>> {
    let datasets: Vec<&str> = match dataset {
        Some(d) => vec![d],
        None => presets::default_datasets(preset).to_vec(),
    };
    let mut arms = Vec::new();
    for d in datasets {
        arms.extend(presets::arms(preset, d)?);
    }
    Ok(arms)
}

fn load_images(dataset: &str, data_dir: Option<&Path>) -> Result<ImageData> {
    if dataset == "imagenet" {
        return Err(HarnessError::invalid(
            "dataset",
            dataset,
            "Sparseland has no ImageNet loader yet: the paper preset is validated with \
             --dry-run only",
        )
        .into());
    }
    Ok(ImageData::load(
        ImageSetName::from_name(dataset)?,
        data_dir,
    )?)
}

/// The registry of a loaded checkpoint's masks over `varmap`'s weights.
fn registry(
    varmap: &candle_nn::VarMap,
    masks: &std::collections::BTreeMap<String, sparse_core::Mask>,
) -> Result<SparseParams> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| HarnessError::invalid("varmap", "poisoned", "a thread panicked holding it"))?;
    let mut params = SparseParams::new();
    for (name, mask) in masks {
        let var = data.get(name).ok_or_else(|| {
            HarnessError::invalid("checkpoint", name, "a mask without a weight of that name")
        })?;
        params.insert(name.clone(), var.clone(), mask.clone())?;
    }
    Ok(params)
}

fn datasets_of(plan: &Plan<SlakConfig>) -> Vec<String> {
    let mut datasets: Vec<String> = Vec::new();
    for arm in &plan.arms {
        if !datasets.contains(&arm.dataset) {
            datasets.push(arm.dataset.clone());
        }
    }
    datasets
}

/// Claim 4: on every seed, the ERF area ratio at t = 0.2 grows strictly from the 3x3
/// arm to K = 7 to K = 13 in each family that ran both kernels.
fn erf_claim(runs: &Runs<Slak>, dataset: &str) -> Option<Claim> {
    let per_seed = |arm: &str| -> Option<BTreeMap<u64, f64>> {
        let runs = runs.get(arm, dataset)?;
        Some(
            runs.runs
                .iter()
                .filter_map(|r| Some((r.seed, *r.metrics.get("erf_t020")?)))
                .collect(),
        )
    };
    let small = per_seed(&ArmKind::A.name(3))?;
    let mut values = Vec::new();
    let mut pass = true;
    let mut families = 0;
    for kind in [ArmKind::B, ArmKind::C, ArmKind::D] {
        let (Some(mid), Some(large)) = (per_seed(&kind.name(7)), per_seed(&kind.name(13))) else {
            continue;
        };
        families += 1;
        for (seed, a) in &small {
            let (Some(m), Some(l)) = (mid.get(seed), large.get(seed)) else {
                pass = false;
                continue;
            };
            pass &= a < m && m < l;
        }
        let mean = |m: &BTreeMap<u64, f64>| m.values().sum::<f64>() / m.len().max(1) as f64;
        values.push((format!("erf_{}", kind.name(7)), mean(&mid)));
        values.push((format!("erf_{}", kind.name(13)), mean(&large)));
    }
    if families == 0 {
        return None;
    }
    let mean_small = small.values().sum::<f64>() / small.len().max(1) as f64;
    values.insert(0, ("erf_a-3".to_string(), mean_small));
    Some(Claim::new(
        format!("erf-grows-with-k-{dataset}"),
        "On every seed, the effective receptive field (high-contribution area ratio at \
         t = 0.2) grows from 3x3 to K = 7 to K = 13 in every family (values: means)",
        pass,
        values,
    ))
}

fn dataset_claims(runs: &Runs<Slak>, dataset: &str) -> Vec<Claim> {
    let mean = |arm: &str, metric: &str| {
        runs.get(arm, dataset)
            .and_then(|a: &ArmRuns<Slak>| a.mean(metric))
    };
    let test = |arm: &str| mean(arm, "test_accuracy");
    let mut claims = Vec::new();
    for k in KERNELS {
        let (b, c, d) = (ArmKind::B.name(k), ArmKind::C.name(k), ArmKind::D.name(k));
        if let (Some(tc), Some(td), Some(pc), Some(pd)) =
            (test(&c), test(&d), mean(&c, "params"), mean(&d, "params"))
        {
            let ratio = pd / pc;
            claims.push(Claim::new(
                format!("sparse-wide-k{k}-{dataset}"),
                format!(
                    "At K = {k}, the decomposed kernel at 40 % sparsity and width 1.3 is at \
                     least as accurate as the dense one at width 1, with at most \
                     {PARAM_RATIO_BOUND}x its non-zero parameters"
                ),
                td >= tc && ratio <= PARAM_RATIO_BOUND,
                [
                    (format!("test_{d}"), td),
                    (format!("test_{c}"), tc),
                    ("param_ratio".to_string(), ratio),
                ],
            ));
        }
        if let (Some(tb), Some(tc)) = (test(&b), test(&c)) {
            claims.push(Claim::new(
                format!("decomposition-k{k}-{dataset}"),
                format!(
                    "At K = {k}, the decomposed kernel (dense) is at least as accurate as \
                     the naive square kernel"
                ),
                tc >= tb,
                [(format!("test_{c}"), tc), (format!("test_{b}"), tb)],
            ));
        }
    }
    if dataset == "border-half" {
        // the large-kernel arm picked on validation, never on test
        let best = KERNELS
            .iter()
            .flat_map(|&k| [ArmKind::B, ArmKind::C, ArmKind::D].map(|kind| kind.name(k)))
            .filter_map(|arm| Some((mean(&arm, "validation_accuracy")?, arm)))
            .max_by(|x, y| x.0.total_cmp(&y.0));
        if let (Some((_, arm)), Some(ta)) = (best, test(&ArmKind::A.name(3))) {
            claims.push(Claim::new(
                "large-kernel-border-half",
                "On the long-range task, the large-kernel arm with the best validation \
                 accuracy is at least as accurate on test as the 3x3 arm",
                test(&arm).is_some_and(|t| t >= ta),
                [
                    (format!("test_{arm}"), test(&arm).unwrap_or(f64::NAN)),
                    ("test_a-3".to_string(), ta),
                ],
            ));
        }
    }
    if let Some(claim) = erf_claim(runs, dataset) {
        claims.push(claim);
    }
    claims
}

/// The official ImageNet-1K top-1 accuracies (300 epochs, 224 px; the official
/// README's table), as fractions.
pub const OFFICIAL_TOP1: [(&str, &str, f64); 6] = [
    ("ConvNeXt-T", "7x7", 0.821),
    ("ConvNeXt-S", "7x7", 0.831),
    ("ConvNeXt-B", "7x7", 0.838),
    ("SLaK-T", "51x51", 0.825),
    ("SLaK-S", "51x51", 0.838),
    ("SLaK-B", "51x51", 0.840),
];

/// SLaK-T's official ImageNet-1K top-1 after 120 epochs, by kernel size.
pub const OFFICIAL_KERNEL_SWEEP: [(usize, f64); 3] = [(31, 0.815), (51, 0.816), (61, 0.815)];

/// The published numbers beside the arms that play their part: ConvNeXt-T against
/// the 3x3 (quick) or 7x7 (paper) dense arm, SLaK-T against the sparse-wide arm of
/// the largest kernel.
fn official_anchors(plan: &Plan<SlakConfig>) -> Vec<Anchor> {
    let source = "official README, ImageNet-1K top-1, 300 epochs";
    let mut anchors = Vec::new();
    for dataset in datasets_of(plan) {
        let has = |name: &str| {
            plan.arms
                .iter()
                .any(|a| a.name == name && a.dataset == dataset)
        };
        let large = KERNELS
            .iter()
            .rev()
            .map(|&k| ArmKind::D.name(k))
            .find(|n| has(n));
        let pairs = [
            (Some("convnext-t".to_string()), "ConvNeXt-T", 0.821),
            (Some("slak-t".to_string()), "SLaK-T", 0.825),
            (Some(ArmKind::A.name(3)), "ConvNeXt-T", 0.821),
            (large, "SLaK-T", 0.825),
        ];
        for (arm, model, top1) in pairs {
            let Some(arm) = arm.filter(|a| has(a)) else {
                continue;
            };
            let mut anchor = Anchor::new(
                &arm,
                "test_accuracy_mean",
                top1,
                format!("{source}, {model}"),
            );
            if dataset != "imagenet" {
                anchor.note = Some(format!(
                    "ImageNet at 224 px against a 2-stage mini-SLaK on {dataset}: compare the \
                     ordering of the arms, not the values"
                ));
            }
            anchor.dataset = Some(dataset.clone());
            anchors.push(anchor);
        }
    }
    anchors
}

impl Paper for Slak {
    const NAME: &'static str = "slak";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "SLaK (ICLR 2023, arXiv 2207.03620): large depthwise kernels \
         decomposed into K x N and N x K branches, trained dynamically sparse and widened.";
    const EVAL_METRIC: &'static str = "test_accuracy";

    type Arm = SlakConfig;
    type Data = ImageData;
    type Outcome = RunOutcome;
    type ReproduceArgs = SlakArgs;
    type TrainArgs = TrainArgs;
    type Commands = NoCommands;
    type Error = crate::Error;

    fn plan(preset: Preset, args: &SlakArgs) -> Result<Plan<SlakConfig>> {
        let seeds = if preset == Preset::Smoke { 2 } else { 3 };
        Ok(Plan::from_arms(
            preset,
            preset_arms(preset, args.dataset.as_deref())?,
            seeds,
        )?)
    }

    fn data_needs(dataset: &str) -> Vec<String> {
        ImageSetName::catalogue_needs(dataset)
    }

    fn load(dataset: &str, data_dir: Option<&Path>) -> Result<ImageData> {
        load_images(dataset, data_dir)
    }

    fn train(
        arm: &ArmSpec<SlakConfig>,
        data: &ImageData,
        seed: u64,
        context: &RunContext,
    ) -> Result<Trained<RunOutcome>> {
        let splits = ImageSplits::new(data.clone(), &arm.config.data)?;
        let label = format!("{} {} seed {seed}", arm.dataset, arm.name);
        let run = train(&arm.config, &splits, seed, context.progress, &label)?;
        if let Some(dir) = &context.artifacts {
            std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
            run.erf_map.write_png(&dir.join("erf.png"), 4)?;
        }
        let step = arm.config.epochs as u64;
        Ok(Trained::new(run.outcome, run.varmap, step).with_masks(run.masks))
    }

    fn metrics(o: &RunOutcome) -> Metrics {
        let mut metrics = Metrics::from([
            ("test_accuracy".to_string(), o.test_accuracy),
            ("validation_accuracy".to_string(), o.validation_accuracy),
            ("test_accuracy_last".to_string(), o.test_accuracy_last),
            ("params".to_string(), o.params as f64),
            ("dense_params".to_string(), o.dense_params as f64),
            ("flops".to_string(), o.flops),
            ("dense_flops".to_string(), o.dense_flops),
            ("masked_density".to_string(), o.masked_density),
            ("itop_rate".to_string(), o.itop_rate),
            ("nnz_drift".to_string(), o.nnz_drift),
            ("mask_updates".to_string(), o.mask_updates as f64),
            ("best_epoch".to_string(), o.best_epoch as f64),
        ]);
        if let Some(ema) = o.ema_test_accuracy {
            metrics.insert("ema_test_accuracy".to_string(), ema);
        }
        for (t, ratio) in ERF_THRESHOLDS.iter().zip(&o.erf) {
            metrics.insert(format!("erf_t{:03}", (t * 100.0).round() as usize), *ratio);
        }
        metrics
    }

    fn evaluate(
        arm: &ArmSpec<SlakConfig>,
        data: &ImageData,
        seed: u64,
        checkpoint: &Path,
    ) -> Result<Metrics> {
        arm.config.validate()?;
        let splits = ImageSplits::new(data.clone(), &arm.config.data)?;
        let (varmap, mut net) = build_network(&arm.config, seed)?;
        let loaded = harness::load_model(checkpoint, &varmap)?;
        let params = registry(&varmap, &loaded.masks)?;
        net.attach_masks(&params, arm.config.dw_grad.into())?;
        let test = evaluate(&net, splits.test_batches())?;
        Ok(Metrics::from([("test_accuracy".to_string(), test)]))
    }

    fn anchors(plan: &Plan<SlakConfig>, _runs: &Runs<Self>) -> Vec<Anchor> {
        official_anchors(plan)
    }

    fn report_extra(_plan: &Plan<SlakConfig>) -> BTreeMap<String, serde_json::Value> {
        let table: Vec<serde_json::Value> = OFFICIAL_TOP1
            .iter()
            .map(|(model, kernel, top1)| {
                serde_json::json!({ "model": model, "kernel": kernel, "top1": top1 })
            })
            .collect();
        let sweep: Vec<serde_json::Value> = OFFICIAL_KERNEL_SWEEP
            .iter()
            .map(|(k, top1)| serde_json::json!({ "kernel": k, "top1": top1 }))
            .collect();
        BTreeMap::from([
            (
                "official_imagenet_top1_300_epochs".to_string(),
                serde_json::Value::Array(table),
            ),
            (
                "official_slak_t_top1_120_epochs_by_kernel".to_string(),
                serde_json::Value::Array(sweep),
            ),
            (
                "quick_task_note".to_string(),
                serde_json::Value::String(
                    "border-half: one marker 16-22 px from the top (class 0) or bottom (class 1) \
                     border of a 48x48 black image; units spanning at most 17 px (the 3x3 arm: \
                     16) see both classes alike"
                        .to_string(),
                ),
            ),
        ])
    }

    fn claims(plan: &Plan<SlakConfig>, runs: &Runs<Self>) -> Result<Vec<Claim>> {
        Ok(datasets_of(plan)
            .iter()
            .flat_map(|d| dataset_claims(runs, d))
            .collect())
    }

    fn plots(plan: &Plan<SlakConfig>, runs: &Runs<Self>, out: &Path) -> Result<()> {
        for dataset in datasets_of(plan) {
            let mut accuracy = LinePlot::new(
                format!("test accuracy by kernel size ({dataset})"),
                "kernel size K",
                "test accuracy",
            );
            let mut erf = LinePlot::new(
                format!("ERF area ratio at t = 0.2 by kernel size ({dataset})"),
                "kernel size K",
                "high-contribution area ratio",
            );
            for kind in [ArmKind::B, ArmKind::C, ArmKind::D] {
                let point = |metric: &str, k: usize| -> Option<(f64, f64, f64)> {
                    let arm = if k == 3 {
                        ArmKind::A.name(3)
                    } else {
                        kind.name(k)
                    };
                    let a = runs.get(&arm, &dataset)?;
                    let values = a.values(metric);
                    let mean = a.mean(metric)?;
                    let sd = if values.len() > 1 {
                        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                            / (values.len() - 1) as f64)
                            .sqrt()
                    } else {
                        0.0
                    };
                    Some((k as f64, mean, sd))
                };
                for (plot, metric) in [(&mut accuracy, "test_accuracy"), (&mut erf, "erf_t020")] {
                    let points: Vec<(f64, f64, f64)> = [3, 7, 13]
                        .iter()
                        .filter_map(|&k| point(metric, k))
                        .collect();
                    if points.len() > 1 {
                        let label = kind.name(0);
                        let series = Series::new(
                            label.trim_end_matches("-0"),
                            points.iter().map(|p| (p.0, p.1)).collect(),
                        )
                        .with_errors(points.iter().map(|p| p.2).collect());
                        *plot =
                            std::mem::replace(plot, LinePlot::new("", "", "")).with_series(series);
                    }
                }
            }
            accuracy.write_svg(&out.join(format!("{dataset}-accuracy-by-kernel.svg")))?;
            erf.write_svg(&out.join(format!("{dataset}-erf-by-kernel.svg")))?;
            // each arm's ERF picture of its first seed, from the run's artifacts
            for arm in plan.arms.iter().filter(|a| a.dataset == dataset) {
                if let Some(first) = runs.get(&arm.name, &dataset).and_then(|a| a.runs.first()) {
                    let stem = arm.file_stem(first.seed);
                    let from = out.join("artifacts").join(&stem).join("erf.png");
                    if from.is_file() {
                        let to = out.join(format!("{stem}-erf.png"));
                        std::fs::copy(&from, &to).map_err(|e| HarnessError::io(&to, e))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn train_request(args: &TrainArgs) -> Result<TrainRequest<SlakConfig>> {
        let dataset = match &args.dataset {
            Some(d) => d.clone(),
            None => presets::default_datasets(args.run.preset)[0].to_string(),
        };
        let arms = presets::arms(args.run.preset, &dataset)?;
        let names: Vec<String> = arms.iter().map(|a| a.name.clone()).collect();
        let mut arm = arms
            .into_iter()
            .find(|a| args.arm.as_ref().is_none_or(|n| &a.name == n))
            .ok_or_else(|| {
                HarnessError::invalid(
                    "arm",
                    args.arm.clone().unwrap_or_default(),
                    format!(
                        "the {} preset on {dataset} has {}",
                        args.run.preset.as_str(),
                        names.join(", ")
                    ),
                )
            })?;
        if let Some(epochs) = args.epochs {
            arm.config.epochs = epochs;
            arm.config.warmup_epochs = arm.config.warmup_epochs.min(epochs as f64 - 1.0).max(0.0);
            arm.config.validate()?;
        }
        Ok(args.run.request(arm))
    }
}
