//! The reproduction as sparse-repro's harness runs it: presets, arms, claims,
//! anchors and the plot ([`UntrainedGnn`] implements [`Paper`]).
//!
//! | preset | data | GCN sweep | other arms | seeds |
//! |---|---|---|---|---|
//! | `smoke` | the 10-node fixture | 2 layers × 8, 10 epochs | GAT, GIN, deep GCN (4 layers), OOD | 2 |
//! | `quick` | Cora (+ Citeseer for GIN) | 2 layers × [`QUICK_HIDDEN`], [`QUICK_EPOCHS`] epochs | GAT/Cora 0.95 and GIN/Citeseer 0.7 (UGTs + dense), 16-layer GCN × [`QUICK_DEEP_HIDDEN`] ([`QUICK_DEEP_EPOCHS`] epochs), OOD | 3 |
//! | `paper` | Cora and Citeseer | 2 layers × 256, 400 epochs, all three models | 16- and 32-layer GCN × 448, OOD | 5 |
//!
//! `reproduce --subset spread` keeps only the two 2-layer GCN arms claim 1
//! compares (UGTs at 0.9 and trained dense, the same in `quick` and `paper`), so
//! that `--seeds N` measures the seed spread of that comparison.
//!
//! Every arm runs with the official repeat seeds of its data set
//! ([`DatasetName::seed`], through [`Paper::seed`]). Each score-method sweep has
//! UGTs and edge-popup at every sparsity and a trained dense twin. The OOD arms hold
//! out [`OOD_HELD_OUT`] classes drawn per seed (see [`crate::training::NodeSplits`]).
//!
//! An arm's configuration is a [`TrainConfig`] whose seed is left at 0: the
//! harness passes each repeat's seed to [`Paper::train`], which sets it.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde_json::json;
use sparse_data::location::DataLocation;
use sparse_repro::claim::Claim;
use sparse_repro::cli::Preset;
use sparse_repro::harness::{
    self, ArmRuns, ArmSpec, Metrics, Paper, Plan, RunContext, Runs, TrainRequest, Trained,
};
use sparse_repro::metrics::MeanStd;
use sparse_repro::plot::{LinePlot, Series};
use sparse_repro::report::{Anchor, ArmReport};

use crate::config::{Method, ModelKind, TrainConfig};
use crate::data::{DatasetName, GraphData};
use crate::error::{Error, Result};
use crate::training::{self, Evaluation, NodeSplits, RunOutcome};

/// The GCN sparsity sweep of `quick` and `paper` (the list).
pub const SPARSITIES: [f64; 5] = [0.5, 0.7, 0.9, 0.95, 0.99];
/// Hidden width of the 2-layer models in `quick` (the official 256).
pub const QUICK_HIDDEN: usize = 256;
/// Epochs of the 2-layer arms in `quick` (the official 400).
pub const QUICK_EPOCHS: usize = 400;
/// Epochs of the 16-layer arms in `quick` (official: 400; halved to fit 30 minutes
/// on 2 shared cores, the ramp still covers the first half).
pub const QUICK_DEEP_EPOCHS: usize = 200;
/// Width of the 16-layer GCN in `quick` (official deep runs: 448). A 16 × 64 GCN
/// leaves UGTs at sparsity 0.04 near chance (0.26 in the first `quick` run), far
/// from the official 32 × 448 run; 256 is the widest that fits the time budget.
pub const QUICK_DEEP_HIDDEN: usize = 256;
/// Sparsity of the deep UGTs (the official 32-layer run).
pub const DEEP_SPARSITY: f64 = 0.04;
/// Learning rate of the deep runs (the official 32-layer run).
pub const DEEP_LR: f64 = 0.005;
/// Classes held out in the OOD arms (Cora: 5 in, 2 out; Citeseer: 4 in, 2 out).
pub const OOD_HELD_OUT: usize = 2;
/// Claim 1's margin: UGTs at 0.9 within this of trained dense.
pub const MATCH_MARGIN: f64 = 0.015;
/// Claim 2's margin: UGTs beat edge-popup at 0.99 by at least this.
pub const EDGE_POPUP_MARGIN: f64 = 0.10;
/// Where the anchors come from.
const ANCHOR_SOURCE: &str = "official UGTs_GNN/Examples.ipynb output (1 run)";

/// A part of a preset that `reproduce --subset` runs alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Subset {
    /// The two 2-layer GCN arms of claim 1 on the preset's primary data set: UGTs
    /// at sparsity 0.9 and trained dense (run it with many `--seeds`).
    Spread,
}

impl Subset {
    /// The name on the command line and in the run's configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spread => "spread",
        }
    }
}

/// `reproduce`'s own flag (the harness's [`Paper::ReproduceArgs`]; clap names a
/// flattened group after its struct, so it is not called `ReproduceArgs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::Args)]
pub struct SubsetArgs {
    /// Run only part of the preset: `spread` keeps the 2-layer GCN arms of claim 1
    /// (UGTs at 0.9 and trained dense), to be run with many `--seeds`.
    #[arg(long, value_enum)]
    pub subset: Option<Subset>,
}

/// The paper: untrained GNN tickets (LoG 2022).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UntrainedGnn;

/// One arm of a plan: a configuration (seed 0, replaced per repeat) on a data set.
pub type Arm = ArmSpec<TrainConfig>;

/// An arm of `config` on `dataset`, named as the reports have always named it,
/// e.g. `cora-gcn-ugt-s0.90`, `cora-gcn16-dense`, `cora-gcn-dense-ood2`.
pub fn arm(dataset: DatasetName, config: TrainConfig) -> Arm {
    let ood = if config.ood_classes() > 0 {
        format!("-ood{}", config.ood_classes())
    } else {
        String::new()
    };
    ArmSpec::new(
        format!("{}-{}{ood}", dataset.as_str(), config.label()),
        dataset.as_str(),
        config,
    )
}

/// The data sets of `preset`: the one of the GCN sweep, GAT and the deep runs, and
/// the one of the GIN anchor (Cora and Citeseer; the fixture twice in `smoke`).
pub fn datasets(preset: Preset) -> (DatasetName, DatasetName) {
    match preset {
        Preset::Smoke => (DatasetName::Fixture, DatasetName::Fixture),
        Preset::Quick | Preset::Paper => (DatasetName::Cora, DatasetName::Citeseer),
    }
}

fn cfg(
    model: ModelKind,
    method: Method,
    sparsity: f64,
    hidden: usize,
    epochs: usize,
) -> Result<TrainConfig> {
    let b = TrainConfig::builder(model, method)
        .hidden(hidden)
        .epochs(epochs);
    let b = if method.trains_scores() {
        b.sparsity(sparsity)
    } else {
        b
    };
    b.build()
}

/// The arms of `methods` at every sparsity, then the dense twin.
fn sweep_of(
    data: DatasetName,
    model: ModelKind,
    sparsities: &[f64],
    methods: &[Method],
    hidden: usize,
    epochs: usize,
) -> Result<Vec<Arm>> {
    let mut arms = Vec::new();
    for &s in sparsities {
        for &method in methods {
            arms.push(arm(data, cfg(model, method, s, hidden, epochs)?));
        }
    }
    arms.push(arm(data, cfg(model, Method::Dense, 0.0, hidden, epochs)?));
    Ok(arms)
}

/// UGTs and edge-popup at every sparsity, then the dense twin.
fn sweep(
    data: DatasetName,
    model: ModelKind,
    sparsities: &[f64],
    hidden: usize,
    epochs: usize,
) -> Result<Vec<Arm>> {
    let methods = [Method::Ugt, Method::EdgePopup];
    sweep_of(data, model, sparsities, &methods, hidden, epochs)
}

fn deep(data: DatasetName, layers: usize, hidden: usize, epochs: usize) -> Result<Vec<Arm>> {
    [Method::Ugt, Method::Dense]
        .into_iter()
        .map(|method| {
            let b = TrainConfig::builder(ModelKind::Gcn, method)
                .layers(layers)
                .hidden(hidden)
                .epochs(epochs)
                .lr(DEEP_LR);
            let b = if method == Method::Ugt {
                b.sparsity(DEEP_SPARSITY)
            } else {
                b
            };
            Ok(arm(data, b.build()?))
        })
        .collect()
}

fn ood(data: DatasetName, hidden: usize, epochs: usize, held_out: usize) -> Result<Vec<Arm>> {
    [(Method::Ugt, 0.9), (Method::Dense, 0.0)]
        .into_iter()
        .map(|(method, s)| {
            let c = cfg(ModelKind::Gcn, method, s, hidden, epochs)?;
            Ok(arm(data, c.to_builder().ood_classes(held_out).build()?))
        })
        .collect()
}

/// Every arm of `preset`, validated, in run order; and its default number of seeds.
pub fn preset_arms(preset: Preset) -> Result<(Vec<Arm>, usize)> {
    let mut arms = Vec::new();
    let seeds = match preset {
        Preset::Smoke => {
            let f = DatasetName::Fixture;
            let (h, e) = (8, 10);
            arms.extend(sweep(f, ModelKind::Gcn, &[0.5, 0.9, 0.99], h, e)?);
            arms.extend(sweep(f, ModelKind::Gat, &[0.95], h, e)?);
            arms.extend(sweep(f, ModelKind::Gin, &[0.7], h, e)?);
            arms.extend(deep(f, 4, h, e)?);
            arms.extend(ood(f, h, e, 1)?);
            2
        }
        Preset::Quick => {
            let (cora, cite) = (DatasetName::Cora, DatasetName::Citeseer);
            let (h, e) = (QUICK_HIDDEN, QUICK_EPOCHS);
            arms.extend(sweep(cora, ModelKind::Gcn, &SPARSITIES, h, e)?);
            // GAT and GIN: UGTs and dense only, to fit the time budget.
            let ugt = [Method::Ugt];
            arms.extend(sweep_of(cora, ModelKind::Gat, &[0.95], &ugt, h, e)?);
            arms.extend(sweep_of(cite, ModelKind::Gin, &[0.7], &ugt, h, e)?);
            arms.extend(deep(cora, 16, QUICK_DEEP_HIDDEN, QUICK_DEEP_EPOCHS)?);
            arms.extend(ood(cora, h, e, OOD_HELD_OUT)?);
            3
        }
        Preset::Paper => {
            let (cora, cite) = (DatasetName::Cora, DatasetName::Citeseer);
            for data in [cora, cite] {
                for model in [ModelKind::Gcn, ModelKind::Gat, ModelKind::Gin] {
                    arms.extend(sweep(data, model, &SPARSITIES, 256, 400)?);
                }
            }
            for layers in [16, 32] {
                arms.extend(deep(cora, layers, 448, 400)?);
            }
            for data in [cora, cite] {
                arms.extend(ood(data, 256, 400, OOD_HELD_OUT)?);
            }
            5
        }
    };
    Ok((arms, seeds))
}

/// The arms of `preset` that `subset` keeps (all of them without a subset).
pub fn plan_arms(preset: Preset, subset: Option<Subset>) -> Result<(Vec<Arm>, usize)> {
    let (arms, seeds) = preset_arms(preset)?;
    let Some(Subset::Spread) = subset else {
        return Ok((arms, seeds));
    };
    let (primary, _) = datasets(preset);
    let kept: Vec<Arm> = [
        gcn2(&arms, primary, Method::Ugt, 0.9),
        gcn2(&arms, primary, Method::Dense, 0.0),
    ]
    .into_iter()
    .map(|a| {
        a.cloned()
            .ok_or_else(|| Error::invalid("subset", "spread", "the preset has no claim-1 GCN arms"))
    })
    .collect::<Result<_>>()?;
    Ok((kept, seeds))
}

/// The first in-distribution arm on `data` whose configuration satisfies `pred`.
fn find(arms: &[Arm], data: DatasetName, pred: impl Fn(&TrainConfig) -> bool) -> Option<&Arm> {
    arms.iter()
        .find(|a| a.dataset == data.as_str() && a.config.ood_classes() == 0 && pred(&a.config))
}

/// The 2-layer GCN arm of `method` at `sparsity` (any sparsity for dense) on the
/// primary data set.
fn gcn2(arms: &[Arm], primary: DatasetName, method: Method, sparsity: f64) -> Option<&Arm> {
    find(arms, primary, |c| {
        c.model() == ModelKind::Gcn
            && c.layers() == 2
            && c.method() == method
            && (method == Method::Dense || (c.sparsity() - sparsity).abs() < 1e-9)
    })
}

/// `(layers, UGT arm, dense arm)` of every deep GCN pair on the primary data set.
fn deep_pairs(arms: &[Arm], primary: DatasetName) -> Vec<(usize, &Arm, &Arm)> {
    let mut depths: Vec<usize> = arms
        .iter()
        .map(|a| a.config.layers())
        .filter(|&l| l > 2)
        .collect();
    depths.dedup();
    depths
        .into_iter()
        .filter_map(|l| {
            let ugt = find(arms, primary, |c| {
                c.layers() == l && c.method() == Method::Ugt
            })?;
            let dense = find(arms, primary, |c| {
                c.layers() == l && c.method() == Method::Dense
            })?;
            Some((l, ugt, dense))
        })
        .collect()
}

/// The mean of `metric` over the seeds of `arm`; NaN when it has no runs.
fn mean(runs: &Runs<UntrainedGnn>, arm: Option<&Arm>, metric: &str) -> f64 {
    arm.and_then(|a| runs.get(&a.name, &a.dataset))
        .and_then(|r| r.mean(metric))
        .unwrap_or(f64::NAN)
}

/// The per-seed metrics of an evaluation (`ood_auroc` only under the OOD protocol).
fn evaluation_metrics(eval: &Evaluation) -> Metrics {
    let mut metrics = Metrics::from([
        ("test_accuracy".to_string(), eval.test_accuracy),
        ("val_accuracy".to_string(), eval.val_accuracy),
        ("mad".to_string(), eval.mad),
        ("test_ece".to_string(), eval.test_ece),
    ]);
    if let Some(auroc) = eval.ood_auroc {
        metrics.insert("ood_auroc".to_string(), auroc);
    }
    metrics
}

/// The options of `train` (one arm).
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Layer family.
    #[arg(long, value_enum, default_value_t = ModelKind::Gcn)]
    pub model: ModelKind,
    /// UGTs, edge-popup or trained dense.
    #[arg(long, value_enum, default_value_t = Method::Ugt)]
    pub method: Method,
    /// Graph.
    #[arg(long, value_enum, default_value_t = DatasetName::Cora)]
    pub dataset: DatasetName,
    /// Target sparsity (fraction of weights removed); ignored for dense.
    #[arg(long, default_value_t = 0.9)]
    pub sparsity: f64,
    /// Number of graph layers.
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// Hidden width.
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// Full-batch epochs.
    #[arg(long, default_value_t = 400)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    /// Weight decay (default: 0 for score methods, 5e-4 for dense).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Dropout (default: 0.6 for dense GAT/GIN, else 0).
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Classes held out as out-of-distribution (0: none).
    #[arg(long, default_value_t = 0)]
    pub ood_classes: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the data sets are.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output directory; `runs/untrained-gnn/train-<UTC timestamp>/` when absent.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl TrainArgs {
    /// The arm these options describe (validated).
    pub fn arm(&self) -> Result<Arm> {
        let mut builder = TrainConfig::builder(self.model, self.method)
            .layers(self.layers)
            .hidden(self.hidden)
            .epochs(self.epochs)
            .lr(self.lr)
            .ood_classes(self.ood_classes);
        if self.method.trains_scores() {
            builder = builder.sparsity(self.sparsity);
        }
        if let Some(wd) = self.weight_decay {
            builder = builder.weight_decay(wd);
        }
        if let Some(p) = self.dropout {
            builder = builder.dropout(p);
        }
        Ok(arm(self.dataset, builder.build()?))
    }
}

/// The configuration of `arm` with `seed`, validated like a new one (a checkpoint's
/// stored arm goes through here too).
fn seeded(arm: &Arm, seed: u64) -> Result<TrainConfig> {
    arm.config.to_builder().seed(seed).build()
}

/// Refuses an arm whose data set is not the graph it is given.
fn check_graph(arm: &Arm, graph: &GraphData) -> Result<()> {
    let dataset = DatasetName::from_name(&arm.dataset)?;
    if dataset.as_str() != graph.name {
        return Err(Error::invalid(
            "dataset",
            &arm.dataset,
            &format!("the loaded graph is `{}`", graph.name),
        ));
    }
    Ok(())
}

impl Paper for UntrainedGnn {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "Untrained GNN tickets (LoG 2022) on Sparseland";
    const EVAL_METRIC: &'static str = "test_accuracy";

    type Arm = TrainConfig;
    type Data = GraphData;
    type Outcome = RunOutcome;
    type ReproduceArgs = SubsetArgs;
    type TrainArgs = TrainArgs;
    type Commands = sparse_repro::harness::NoCommands;
    type Error = Error;

    fn plan(preset: Preset, args: &SubsetArgs) -> Result<Plan<TrainConfig>> {
        let (arms, default_seeds) = plan_arms(preset, args.subset)?;
        let (primary, secondary) = datasets(preset);
        let mut config = json!({
            "primary": primary.as_str(),
            "secondary": secondary.as_str(),
            "arms": arms,
        });
        // Only a subset run records the key, so that the run directories of
        // whole presets written before the flag existed still resume.
        if let Some(subset) = args.subset {
            config["subset"] = json!(subset.as_str());
        }
        Ok(Plan {
            preset,
            arms,
            default_seeds,
            config,
        })
    }

    fn seed(dataset: &str, index: usize) -> u64 {
        // An unknown name fails in `load`, before any seed is used.
        DatasetName::from_name(dataset).map_or(index as u64, |d| d.seed(index))
    }

    fn data_needs(dataset: &str) -> Vec<String> {
        DatasetName::from_name(dataset).map_or_else(
            // Asked of the catalogue, which names it as unknown.
            |_| vec![dataset.to_string()],
            DatasetName::catalogue_names,
        )
    }

    fn load(dataset: &str, data_dir: Option<&Path>) -> Result<GraphData> {
        let location = DataLocation::from_process(data_dir);
        DatasetName::from_name(dataset)?.load(&location, &Device::Cpu)
    }

    fn train(
        arm: &Arm,
        graph: &GraphData,
        seed: u64,
        context: &RunContext,
    ) -> Result<Trained<RunOutcome>> {
        check_graph(arm, graph)?;
        let config = seeded(arm, seed)?;
        let (net, outcome) = training::train(&config, graph, &context.device, context.progress)?;
        // The score subnetwork's masks at the target sparsity (all ones for dense).
        let masks = net.masks(config.sparsity())?;
        let step = outcome.best_epoch as u64;
        Ok(Trained::new(outcome, net.varmap().clone(), step).with_masks(masks))
    }

    /// Wall-clock seconds are left out: a resumed run must report the same metrics
    /// as an uninterrupted one ([`harness::check_resume`]); [`Paper::arm_report`]
    /// adds them as extras.
    fn metrics(outcome: &RunOutcome) -> Metrics {
        let mut metrics = evaluation_metrics(&outcome.eval);
        metrics.insert("best_epoch".to_string(), outcome.best_epoch as f64);
        metrics
    }

    fn evaluate(arm: &Arm, graph: &GraphData, seed: u64, checkpoint: &Path) -> Result<Metrics> {
        check_graph(arm, graph)?;
        let config = seeded(arm, seed)?;
        let device = Device::Cpu;
        let splits = NodeSplits::new(graph, &config, &device)?;
        let net = training::Network::new(&config, graph.num_features, splits.classes, &device)?;
        let loaded = harness::load_model(checkpoint, net.varmap())?;
        // The masks follow from the scores; the stored ones must agree.
        let masks = net.masks(config.sparsity())?;
        if loaded.masks != masks {
            let differing = masks
                .keys()
                .find(|n| loaded.masks.get(*n) != masks.get(*n))
                .cloned()
                .unwrap_or_else(|| "a mask name".to_string());
            return Err(Error::MaskMismatch {
                path: checkpoint.display().to_string(),
                reason: format!("first difference: {differing}"),
            });
        }
        let eval = training::evaluate(&net, graph, &splits, config.sparsity())?;
        Ok(evaluation_metrics(&eval))
    }

    fn arm_report(runs: &ArmRuns<Self>, report: ArmReport) -> Result<ArmReport> {
        let c = &runs.arm.config;
        let mut report = report
            .with_metric("sparsity", c.sparsity())
            .with_metric("layers", c.layers() as f64)
            .with_metric("hidden", c.hidden() as f64)
            .with_extra("method", json!(c.method()))
            .with_extra("model", json!(c.model()));
        // The spread over seeds as data: extremes and the population std (the
        // statistic the official code prints), beside the harness's sample std.
        let acc = runs.values("test_accuracy");
        if !acc.is_empty() {
            let n = acc.len() as f64;
            let m = acc.iter().sum::<f64>() / n;
            let pop_std = (acc.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt();
            report = report
                .with_metric(
                    "test_accuracy_min",
                    acc.iter().copied().fold(f64::INFINITY, f64::min),
                )
                .with_metric(
                    "test_accuracy_max",
                    acc.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                )
                .with_metric("test_accuracy_pop_std", pop_std);
        }
        if let Some(seconds) = runs.mean_of(|o| o.seconds) {
            let per_seed: Vec<f64> = runs.outcomes().map(|o| o.seconds).collect();
            report = report
                .with_extra("seconds_mean", json!(seconds))
                .with_extra("seconds_per_seed", json!(per_seed));
        }
        // Identical across seeds (same shapes, same mask counts): the first run's.
        if let Some(first) = runs.runs.first() {
            report = report
                .with_metric("density", first.outcome.eval.density)
                .with_metric("params", first.outcome.params as f64)
                .with_metric("inference_flops", first.outcome.eval.inference_flops);
        }
        Ok(report)
    }

    fn claims(plan: &Plan<TrainConfig>, runs: &Runs<Self>) -> Result<Vec<Claim>> {
        let arms = &plan.arms;
        let (primary, _) = datasets(plan.preset);
        let data = primary.as_str();
        let acc = "test_accuracy";
        let mut claims = Vec::new();
        let (ugt90, dense) = (
            gcn2(arms, primary, Method::Ugt, 0.9),
            gcn2(arms, primary, Method::Dense, 0.0),
        );
        if ugt90.is_some() && dense.is_some() {
            let seeds = ugt90
                .and_then(|a| runs.get(&a.name, &a.dataset))
                .map_or(0, |r| r.runs.len());
            claims.push(Claim::within_margin_below(
                "ugt-matches-dense-at-0.9",
                format!(
                    "Mean test accuracy of UGTs at sparsity 0.9 over this run's {seeds} seeds is within {:.1} points of the mean of the trained dense GCN over the same seeds (2 layers, {data})",
                    MATCH_MARGIN * 100.0
                ),
                "ugt_s0.90",
                mean(runs, ugt90, acc),
                "dense",
                mean(runs, dense, acc),
                MATCH_MARGIN,
            ));
        }
        let (ugt99, ep99) = (
            gcn2(arms, primary, Method::Ugt, 0.99),
            gcn2(arms, primary, Method::EdgePopup, 0.99),
        );
        if ugt99.is_some() && ep99.is_some() {
            let ugt = mean(runs, ugt99, acc);
            let ep = mean(runs, ep99, acc);
            claims.push(Claim::new(
                "ugt-beats-edge-popup-at-0.99",
                format!(
                    "At sparsity 0.99 UGTs beat edge-popup by at least {:.0} points (GCN, {data})",
                    EDGE_POPUP_MARGIN * 100.0
                ),
                ugt - ep >= EDGE_POPUP_MARGIN,
                [
                    ("ugt_s0.99", ugt),
                    ("edge_popup_s0.99", ep),
                    ("margin", EDGE_POPUP_MARGIN),
                ],
            ));
        }
        for (layers, u, d) in deep_pairs(arms, primary) {
            let (ua, da) = (mean(runs, Some(u), acc), mean(runs, Some(d), acc));
            let (um, dm) = (mean(runs, Some(u), "mad"), mean(runs, Some(d), "mad"));
            claims.push(Claim::new(
                format!("deep-gcn{layers}-ugt-beats-dense-and-smooths-less"),
                format!(
                    "In a {layers}-layer GCN ({data}), UGTs beat trained dense and keep a higher MAD (less over-smoothing)"
                ),
                ua > da && um > dm,
                [
                    ("ugt_accuracy", ua),
                    ("dense_accuracy", da),
                    ("ugt_mad", um),
                    ("dense_mad", dm),
                ],
            ));
        }
        Ok(claims)
    }

    fn anchors(plan: &Plan<TrainConfig>, _: &Runs<Self>) -> Vec<Anchor> {
        anchors(plan)
    }

    fn plots(plan: &Plan<TrainConfig>, runs: &Runs<Self>, out: &Path) -> Result<()> {
        // A run without the sparsity sweep (`--subset spread`) has no curve to draw.
        if !plan
            .arms
            .iter()
            .any(|a| a.config.method() == Method::EdgePopup)
        {
            return Ok(());
        }
        sparsity_plot(plan, runs).write_svg(&out.join("accuracy_vs_sparsity.svg"))?;
        Ok(())
    }

    fn train_request(args: &TrainArgs) -> Result<TrainRequest<TrainConfig>> {
        Ok(TrainRequest {
            arm: args.arm()?,
            seed: args.seed,
            data_dir: args.data_dir.clone(),
            out: args.out.clone(),
        })
    }
}

/// The official notebook outputs (single runs) beside our arms.
pub fn anchors(plan: &Plan<TrainConfig>) -> Vec<Anchor> {
    let arms = &plan.arms;
    let (primary, secondary) = datasets(plan.preset);
    let mut anchors = Vec::new();
    let note = |c: &TrainConfig, paper: &str| {
        let here = format!(
            "{} layers × {}, {} epochs",
            c.layers(),
            c.hidden(),
            c.epochs()
        );
        (here != paper).then(|| format!("paper: {paper}; here: {here}"))
    };
    let mut push = |arm: Option<&Arm>, value: f64, paper: &str| {
        if let Some(arm) = arm {
            let a = Anchor::new(&arm.name, "test_accuracy_mean", value, ANCHOR_SOURCE);
            anchors.push(match note(&arm.config, paper) {
                Some(n) => a.with_note(n),
                None => a,
            });
        }
    };
    let std = "2 layers × 256, 400 epochs";
    push(gcn2(arms, primary, Method::Ugt, 0.9), 0.813, std);
    let score_arm = |model: ModelKind, s: f64, data: DatasetName| {
        find(arms, data, |c| {
            c.model() == model
                && c.layers() == 2
                && c.method() == Method::Ugt
                && (c.sparsity() - s).abs() < 1e-9
        })
    };
    push(score_arm(ModelKind::Gat, 0.95, primary), 0.820, std);
    push(score_arm(ModelKind::Gin, 0.7, secondary), 0.671, std);
    let deepest = deep_pairs(arms, primary)
        .into_iter()
        .map(|(_, u, _)| u)
        .next_back();
    push(deepest, 0.777, "32 layers × 448, 400 epochs");
    anchors
}

/// Test accuracy against sparsity for the 2-layer GCN: UGTs, edge-popup, dense.
pub fn sparsity_plot(plan: &Plan<TrainConfig>, runs: &Runs<UntrainedGnn>) -> LinePlot {
    let (primary, _) = datasets(plan.preset);
    let mut plot = LinePlot::new(
        format!("GCN on {}: test accuracy vs sparsity", primary.as_str()),
        "sparsity",
        "test accuracy",
    );
    let stats = |arm: &Arm| -> Option<(f64, f64)> {
        let values = runs.get(&arm.name, &arm.dataset)?.values("test_accuracy");
        let ms = MeanStd::from_values(&values).ok()?;
        Some((ms.mean, ms.std))
    };
    let mut xs: Vec<f64> = Vec::new();
    for method in [Method::Ugt, Method::EdgePopup] {
        let mut points = Vec::new();
        let mut errors = Vec::new();
        for arm in plan.arms.iter().filter(|a| {
            a.dataset == primary.as_str()
                && a.config.model() == ModelKind::Gcn
                && a.config.layers() == 2
                && a.config.ood_classes() == 0
                && a.config.method() == method
        }) {
            if let Some((m, s)) = stats(arm) {
                points.push((arm.config.sparsity(), m));
                errors.push(s);
                xs.push(arm.config.sparsity());
            }
        }
        plot = plot.with_series(Series::new(method.as_str(), points).with_errors(errors));
    }
    if let Some((m, s)) = gcn2(&plan.arms, primary, Method::Dense, 0.0).and_then(stats) {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi > lo {
            plot = plot.with_series(
                Series::new("dense (trained)", vec![(lo, m), (hi, m)]).with_errors(vec![s, s]),
            );
        }
    }
    plot
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparse_repro::HarnessError;

    fn plan(preset: Preset) -> Plan<TrainConfig> {
        UntrainedGnn::plan(preset, &SubsetArgs::default()).unwrap()
    }

    #[test]
    fn every_preset_builds_and_validates_its_plan() {
        let quick = plan(Preset::Quick);
        assert_eq!(quick.default_seeds, 3);
        // 5 sparsities × 2 + dense, GAT 2, GIN 2, deep 2, OOD 2.
        assert_eq!(quick.arms.len(), 11 + 2 + 2 + 2 + 2);
        let cora = DatasetName::Cora;
        assert!(gcn2(&quick.arms, cora, Method::Ugt, 0.99).is_some());
        // Every 2-layer arm runs the official 400 epochs.
        for arm in quick.arms.iter().filter(|a| a.config.layers() == 2) {
            assert_eq!(arm.config.epochs(), 400, "{}", arm.name);
        }
        let pairs = deep_pairs(&quick.arms, cora);
        assert_eq!(pairs.len(), 1);
        let (depth, deep_ugt, deep_dense) = pairs[0];
        assert_eq!(depth, 16);
        for arm in [deep_ugt, deep_dense] {
            assert_eq!(arm.config.hidden(), 256, "{}", arm.name);
            assert_eq!(arm.config.lr(), DEEP_LR, "{}", arm.name);
            assert_eq!(arm.config.epochs(), QUICK_DEEP_EPOCHS, "{}", arm.name);
        }
        assert_eq!(deep_ugt.config.sparsity(), DEEP_SPARSITY);
        let paper = plan(Preset::Paper);
        assert_eq!(paper.default_seeds, 5);
        assert_eq!(
            deep_pairs(&paper.arms, cora)
                .iter()
                .map(|p| p.0)
                .collect::<Vec<_>>(),
            vec![16, 32]
        );
        assert!(
            paper
                .arms
                .iter()
                .any(|a| a.config.layers() == 32 && a.config.hidden() == 448)
        );
        assert_eq!(anchors(&paper).len(), 4);
        // The paper preset runs the official sizes, so no anchor needs a note.
        assert!(anchors(&paper).iter().all(|a| a.note.is_none()));
        assert!(anchors(&quick).iter().any(|a| a.note.is_some()));
        let names: std::collections::BTreeSet<_> = paper.arms.iter().map(|a| &a.name).collect();
        assert_eq!(names.len(), paper.arms.len(), "arm names are unique");
        // Arms carry no seed of their own: the harness supplies each repeat's.
        assert!(paper.arms.iter().all(|a| a.config.seed() == 0));
        // Arms name their data set as `load` expects it.
        for arm in &paper.arms {
            assert!(
                DatasetName::from_name(&arm.dataset).is_ok(),
                "{}",
                arm.dataset
            );
        }
    }

    #[test]
    fn the_spread_subset_keeps_exactly_the_claim_one_arms() {
        let spread = SubsetArgs {
            subset: Some(Subset::Spread),
        };
        for preset in [Preset::Quick, Preset::Paper] {
            let part = UntrainedGnn::plan(preset, &spread).unwrap();
            let names: Vec<&str> = part.arms.iter().map(|a| a.name.as_str()).collect();
            assert_eq!(
                names,
                vec!["cora-gcn-ugt-s0.90", "cora-gcn-dense"],
                "{preset}"
            );
            for arm in &part.arms {
                let c = &arm.config;
                assert_eq!(c.model(), ModelKind::Gcn);
                assert_eq!((c.layers(), c.hidden(), c.epochs()), (2, 256, 400));
                assert_eq!(c.ood_classes(), 0);
            }
            // The same arms as in the whole preset, so the numbers are comparable.
            let whole = plan_arms(preset, None).unwrap().0;
            assert!(part.arms.iter().all(|a| whole.contains(a)));
            assert_eq!(part.config["subset"], "spread");
            assert!(plan(preset).config.get("subset").is_none());
            // Only claim 1's anchor (the official single run) applies.
            let anchors = anchors(&part);
            assert_eq!(anchors.len(), 1);
            assert_eq!(anchors[0].paper, 0.813);
        }
    }

    #[test]
    fn seeds_are_the_official_ones_of_each_data_set() {
        assert_eq!(UntrainedGnn::seed("cora", 0), 5300);
        assert_eq!(UntrainedGnn::seed("citeseer", 1), 5200);
        assert_eq!(UntrainedGnn::seed("fixture", 4), 3500);
        // Beyond the official five, the index itself.
        assert_eq!(UntrainedGnn::seed("cora", 7), 7);
        assert!(UntrainedGnn::data_needs("fixture").is_empty());
        assert_eq!(UntrainedGnn::data_needs("citeseer"), vec!["citeseer"]);
    }

    #[test]
    fn an_unknown_data_set_is_an_error_naming_it() {
        let err = UntrainedGnn::load("pubmed", None).unwrap_err();
        assert!(matches!(&err, Error::UnknownDataset { name } if name == "pubmed"));
        assert!(err.to_string().contains("pubmed"), "{err}");
    }

    #[test]
    fn train_options_become_a_validated_arm() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: TrainArgs,
        }
        let cli = Cli::parse_from([
            "x",
            "--model",
            "gat",
            "--method",
            "ugt",
            "--dataset",
            "citeseer",
            "--sparsity",
            "0.95",
            "--lr",
            "0.005",
            "--epochs",
            "7",
            "--seed",
            "9",
        ]);
        let request = UntrainedGnn::train_request(&cli.args).unwrap();
        assert_eq!(request.arm.name, "citeseer-gat-ugt-s0.95");
        assert_eq!(request.arm.dataset, "citeseer");
        assert_eq!(request.seed, 9);
        assert_eq!(
            (request.arm.config.lr(), request.arm.config.epochs()),
            (0.005, 7)
        );
        let bad = Cli::parse_from(["x", "--lr", "0"]);
        let err = UntrainedGnn::train_request(&bad.args).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Harness(HarnessError::InvalidParameter { name: "lr", .. })
            ),
            "{err}"
        );
    }
}
