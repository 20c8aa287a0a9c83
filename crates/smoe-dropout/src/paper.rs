//! What the harness needs: presets, training, the checkpoint's evaluation, claims,
//! published numbers and the score-by-k plots, for both tasks.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Device;
use sparse_repro::HarnessError;
use sparse_repro::claim::Claim;
use sparse_repro::cli::{Preset, PresetTrainArgs};
use sparse_repro::harness::{
    self, ArmRuns, ArmSpec, Metrics, NoCommands, Paper, Plan, RunContext, Runs, TrainRequest,
    Trained,
};
use sparse_repro::plot::{LinePlot, Series};
use sparse_repro::report::{Anchor, ArmReport};

use crate::config::ArmConfig;
use crate::data::TaskData;
use crate::error::Result;
use crate::model::CharLm;
use crate::mwp::data::{BERT_VOCAB, MwpSet, is_mwp};
use crate::presets::{self, ArmKind, SPARSE_K, Task};
use crate::schedule::KMode;
use crate::training::{Outcome, test_sweep, train};

/// The recorded per-seed step time (kept out of the reproducible metrics; the
/// `train_seconds` prefix tells the harness's resume check it is a timing).
pub const STEP_SECONDS: &str = "train_seconds_per_step";

/// Published test BPC on enwik8 (Transformer-XL, 16 experts) by k schedule, at
/// k = N/2 and k = N (the paper's schedule ablation).
pub const PUBLISHED_BPC: [(KMode, f64, f64); 3] = [
    (KMode::LinearIncrease, 1.1776, 1.1486),
    (KMode::ExpIncrease, 1.2167, 1.1877),
    (KMode::CosineIncrease, 1.2142, 1.1858),
];

/// Published accuracy gains of BERT trained with SMoE-Dropout over dense training,
/// in percentage points (abstract).
pub const PUBLISHED_MWP_GAINS: [(&str, f64); 3] =
    [("ASDiv-A", 1.03), ("MAWPS", 0.78), ("SVAMP", 1.09)];

/// The paper, for sparse-repro's harness.
#[derive(Debug, Clone, Copy)]
pub struct SmoeDropout;

/// The flags of `reproduce`.
#[derive(Debug, Clone, clap::Args)]
pub struct SmoeArgs {
    /// The task: character-level language modelling or math word problems.
    #[arg(long, value_enum, default_value_t = Task::Lm)]
    pub task: Task,
    /// The data set: `tinyshakespeare` or a UTF-8 file for `lm`; `mawps`,
    /// `asdiv-a` (fold 0; `mawps-fold3` for another) or `svamp` for `mwp`
    /// (default: the preset's).
    #[arg(long)]
    pub dataset: Option<String>,
    /// SMoE-Dropout's k schedule (the schedule ablation): linear_increase,
    /// cosine_increase, exp_increase, multi_step_increase, …
    #[arg(long, value_parser = parse_k_mode, default_value = "linear_increase")]
    pub k_mode: KMode,
}

impl Default for SmoeArgs {
    fn default() -> Self {
        Self {
            task: Task::Lm,
            dataset: None,
            k_mode: KMode::LinearIncrease,
        }
    }
}

/// The flags of `train`: a preset's arm.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// The preset, seed and locations.
    #[command(flatten)]
    pub run: PresetTrainArgs,
    /// The arm: dense, smoe, smoe-dropout, expert-dropout or thor (any preset;
    /// thor on the language model only).
    #[arg(long, default_value = "smoe-dropout")]
    pub arm: String,
    /// The data set: `tinyshakespeare` (default), a UTF-8 file, or `mawps`,
    /// `asdiv-a`, `svamp` (math word problems).
    #[arg(long)]
    pub dataset: Option<String>,
    /// SMoE-Dropout's k schedule.
    #[arg(long, value_parser = parse_k_mode, default_value = "linear_increase")]
    pub k_mode: KMode,
    /// Override the training steps (the k schedule spans them).
    #[arg(long)]
    pub steps: Option<usize>,
}

fn parse_k_mode(text: &str) -> std::result::Result<KMode, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
        format!(
            "unknown k schedule {text:?}: expected linear_increase, linear_decrease, \
             cosine_increase, cosine_decrease, exp_increase, multi_step_increase, \
             multi_step_decrease or constant"
        )
    })
}

/// The task an arm runs.
fn task_of(config: &ArmConfig) -> Task {
    match config {
        ArmConfig::Lm(_) => Task::Lm,
        ArmConfig::Mwp(_) => Task::Mwp,
    }
}

/// The headline metric of a task: test BPC (lower is better) or test accuracy.
fn headline(task: Task) -> &'static str {
    match task {
        Task::Lm => "test_bpc",
        Task::Mwp => "test_accuracy",
    }
}

/// The metric of the task's score at inference k.
fn key_at(task: Task, k: usize) -> String {
    format!("{}_k{k}", headline(task))
}

/// The score at each k (`<headline>_k<k>`) and, as the headline metric that `eval`
/// recomputes, the score at the largest k.
fn score_metrics(task: Task, by_k: &BTreeMap<usize, f64>) -> Metrics {
    let mut metrics: Metrics = by_k.iter().map(|(k, v)| (key_at(task, *k), *v)).collect();
    let largest = by_k.last_key_value().map_or(f64::NAN, |(_, v)| *v);
    metrics.insert(headline(task).to_string(), largest);
    metrics
}

/// Whether score `a` is at least as good as `b` for `task`.
fn at_least_as_good(task: Task, a: f64, b: f64) -> bool {
    match task {
        Task::Lm => a <= b,
        Task::Mwp => a >= b,
    }
}

/// Mean score of `arm` at each k, over seeds.
fn mean_by_k(runs: &ArmRuns<SmoeDropout>, task: Task) -> BTreeMap<usize, f64> {
    let Some(first) = runs.runs.first() else {
        return BTreeMap::new();
    };
    first
        .outcome
        .by_k()
        .keys()
        .filter_map(|&k| Some((k, runs.mean(&key_at(task, k))?)))
        .collect()
}

fn claims_for(dataset: &str, task: Task, runs: &Runs<SmoeDropout>) -> Vec<Claim> {
    let get = |kind: ArmKind| runs.get(kind.name(), dataset);
    // the language model's claims keep their plain names; a problem set's carry it
    let id = |name: &str| match task {
        Task::Lm => name.to_string(),
        Task::Mwp => format!("{name}-{dataset}"),
    };
    let score = match task {
        Task::Lm => "test BPC",
        Task::Mwp => "test accuracy",
    };
    let mut claims = Vec::new();
    let smoe_dropout = get(ArmKind::SmoeDropout);
    if let Some(arm) = smoe_dropout {
        let by_k = mean_by_k(arm, task);
        let values: Vec<f64> = by_k.values().copied().collect();
        claims.push(Claim::new(
            id("self-slimmable"),
            format!(
                "SMoE-Dropout's {score} does not get worse as k grows at inference \
                 (means over seeds)"
            ),
            values.len() > 1
                && values
                    .windows(2)
                    .all(|w| at_least_as_good(task, w[1], w[0])),
            by_k.iter().map(|(k, v)| (key_at(task, *k), *v)),
        ));
        let unchanged = arm
            .runs
            .iter()
            .filter(|r| r.outcome.routers_unchanged() == Some(true))
            .count();
        claims.push(Claim::new(
            id("routers-frozen"),
            "Every router of SMoE-Dropout is bit-identical to its initialisation after \
             training, on every seed",
            unchanged == arm.runs.len(),
            [("seeds_unchanged", unchanged as f64)],
        ));
    }
    if let (Some(learned), Some(dropout)) = (get(ArmKind::LearnedSmoe), smoe_dropout) {
        let (learned_by_k, dropout_by_k) = (mean_by_k(learned, task), mean_by_k(dropout, task));
        let largest = |b: &BTreeMap<usize, f64>| b.last_key_value().map(|(k, v)| (*k, *v));
        if let (Some(&l2), Some((n, ln)), Some(&d2), Some((_, dn))) = (
            learned_by_k.get(&SPARSE_K),
            largest(&learned_by_k),
            dropout_by_k.get(&SPARSE_K),
            largest(&dropout_by_k),
        ) {
            claims.push(Claim::new(
                id("learned-router-saturates"),
                format!(
                    "Going from k = {SPARSE_K} to k = {n} at inference, the learned-router \
                     SMoE (trained at k = {SPARSE_K}) does not improve its {score}, while \
                     SMoE-Dropout does"
                ),
                at_least_as_good(task, l2, ln) && !at_least_as_good(task, d2, dn),
                [
                    (format!("smoe_{}", key_at(task, SPARSE_K)), l2),
                    (format!("smoe_{}", key_at(task, n)), ln),
                    (format!("smoe-dropout_{}", key_at(task, SPARSE_K)), d2),
                    (format!("smoe-dropout_{}", key_at(task, n)), dn),
                ],
            ));
        }
    }
    if let (Some(dense), Some(dropout)) = (get(ArmKind::Dense), smoe_dropout) {
        let metric = headline(task);
        if let (Some(d), Some(s)) = (dense.mean(metric), dropout.mean(metric)) {
            let mut values = vec![
                (format!("smoe-dropout_{metric}"), s),
                (format!("dense_{metric}"), d),
            ];
            if task == Task::Mwp {
                values.push(("gain_points".to_string(), 100.0 * (s - d)));
                let set = MwpSet::parse(dataset).map_or("", |s| s.name);
                let published = PUBLISHED_MWP_GAINS
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(set));
                if let Some((_, gain)) = published {
                    values.push(("published_gain_points".to_string(), *gain));
                }
            }
            claims.push(Claim::new(
                id("smoe-dropout-vs-dense"),
                format!(
                    "SMoE-Dropout at k = N reaches the dense model's {score} or better \
                     (reported, not gated: the paper finds it at scale)"
                ),
                at_least_as_good(task, s, d),
                values,
            ));
        }
        let step = |a: &ArmRuns<SmoeDropout>| a.mean_of(|o| o.train_seconds_per_step());
        if let (Some(ds), Some(ss), Some(k)) = (step(dense), step(dropout), dropout.mean("mean_k"))
        {
            claims.push(Claim::new(
                id("smoe-dropout-step-faster"),
                "A training step of SMoE-Dropout at its mean k costs less wall-clock time \
                 than a step of the dense model with equal parameters (measured in this run)",
                ss < ds,
                [
                    (format!("{STEP_SECONDS}_smoe-dropout"), ss),
                    (format!("{STEP_SECONDS}_dense"), ds),
                    ("mean_k".to_string(), k),
                ],
            ));
        }
    }
    claims
}

/// The data sets of a plan in order, with their task.
fn datasets_of(plan: &Plan<ArmConfig>) -> Vec<(String, Task)> {
    let mut datasets: Vec<(String, Task)> = Vec::new();
    for arm in &plan.arms {
        if !datasets.iter().any(|(d, _)| d == &arm.dataset) {
            datasets.push((arm.dataset.clone(), task_of(&arm.config)));
        }
    }
    datasets
}

/// Every arm of `preset` for `args`.
pub fn preset_arms(preset: Preset, args: &SmoeArgs) -> Result<Vec<ArmSpec<ArmConfig>>> {
    match args.task {
        Task::Lm => {
            let dataset = args
                .dataset
                .clone()
                .unwrap_or_else(|| presets::default_dataset().to_string());
            Ok(presets::arms(preset, &dataset, args.k_mode)?
                .into_iter()
                .map(|a| ArmSpec::new(a.name, a.dataset, ArmConfig::Lm(a.config)))
                .collect())
        }
        Task::Mwp => {
            let datasets: Vec<String> = match &args.dataset {
                Some(d) if is_mwp(d) => vec![d.clone()],
                Some(d) => {
                    return Err(HarnessError::invalid(
                        "dataset",
                        d,
                        "--task mwp takes mawps, asdiv-a (optionally -fold0 to -fold4) or svamp",
                    )
                    .into());
                }
                None => presets::mwp_datasets(preset),
            };
            let mut arms = Vec::new();
            for dataset in datasets {
                for kind in presets::mwp_arm_kinds(preset) {
                    let config = presets::mwp_config(preset, kind, args.k_mode)?;
                    arms.push(ArmSpec::new(kind.name(), &dataset, ArmConfig::Mwp(config)));
                }
            }
            Ok(arms)
        }
    }
}

impl Paper for SmoeDropout {
    const NAME: &'static str = "smoe-dropout";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "SMoE-Dropout (ICLR 2023, arXiv 2303.01610): experts behind a \
         frozen random router, the number of active experts growing during training; \
         self-slimmable at inference.";
    const EVAL_METRIC: &'static str = "test_bpc";

    type Arm = ArmConfig;
    type Data = TaskData;
    type Outcome = Outcome;
    type ReproduceArgs = SmoeArgs;
    type TrainArgs = TrainArgs;
    type Commands = NoCommands;
    type Error = crate::Error;

    fn plan(preset: Preset, args: &SmoeArgs) -> Result<Plan<ArmConfig>> {
        let seeds = if preset == Preset::Smoke { 2 } else { 3 };
        Ok(Plan::from_arms(preset, preset_arms(preset, args)?, seeds)?)
    }

    fn eval_metric(arm: &ArmSpec<ArmConfig>) -> &'static str {
        headline(task_of(&arm.config))
    }

    fn data_needs(dataset: &str) -> Vec<String> {
        if let Some(set) = MwpSet::parse(dataset) {
            vec![set.name.to_string(), BERT_VOCAB.to_string()]
        } else if Path::new(dataset).is_file() {
            Vec::new()
        } else {
            vec![dataset.to_string()]
        }
    }

    fn load(dataset: &str, data_dir: Option<&Path>) -> Result<TaskData> {
        TaskData::load(dataset, data_dir)
    }

    fn train(
        arm: &ArmSpec<ArmConfig>,
        data: &TaskData,
        seed: u64,
        context: &RunContext,
    ) -> Result<Trained<Outcome>> {
        let label = format!("{} {} seed {seed}", arm.dataset, arm.name);
        match (&arm.config, data) {
            (ArmConfig::Lm(config), TaskData::Text(text)) => {
                let run = train(config, text, seed, context.progress, &label)?;
                Ok(Trained::new(
                    Outcome::Lm(run.outcome),
                    run.varmap,
                    config.steps as u64,
                ))
            }
            (ArmConfig::Mwp(config), TaskData::Mwp(problems)) => {
                let run =
                    crate::mwp::training::train(config, problems, seed, context.progress, &label)?;
                Ok(Trained::new(
                    Outcome::Mwp(run.outcome),
                    run.varmap,
                    config.steps as u64,
                ))
            }
            _ => Err(mismatch(arm)),
        }
    }

    fn metrics(outcome: &Outcome) -> Metrics {
        let (task, mut metrics) = match outcome {
            Outcome::Lm(o) => (
                Task::Lm,
                Metrics::from([
                    ("validation_bpc".to_string(), o.validation_bpc),
                    ("final_train_loss".to_string(), o.final_train_loss),
                    ("mean_k".to_string(), o.mean_k),
                    ("params".to_string(), o.params as f64),
                ]),
            ),
            Outcome::Mwp(o) => (
                Task::Mwp,
                Metrics::from([
                    ("final_train_loss".to_string(), o.final_train_loss),
                    ("mean_k".to_string(), o.mean_k),
                    ("params".to_string(), o.params as f64),
                    ("train_problems".to_string(), o.train_problems as f64),
                    ("test_problems".to_string(), o.test_problems as f64),
                    (
                        "dropped_inconsistent".to_string(),
                        o.dropped_inconsistent as f64,
                    ),
                    ("test_inconsistent".to_string(), o.test_inconsistent as f64),
                ]),
            ),
        };
        metrics.extend(score_metrics(task, outcome.by_k()));
        if let Some(unchanged) = outcome.routers_unchanged() {
            metrics.insert(
                "routers_unchanged".to_string(),
                f64::from(u8::from(unchanged)),
            );
        }
        metrics
    }

    fn evaluate(
        arm: &ArmSpec<ArmConfig>,
        data: &TaskData,
        seed: u64,
        checkpoint: &Path,
    ) -> Result<Metrics> {
        arm.config.validate()?;
        let (task, by_k) = match (&arm.config, data) {
            (ArmConfig::Lm(config), TaskData::Text(text)) => {
                let mut spec = config.model;
                spec.vocab = text.vocab_size();
                let (varmap, model) = CharLm::build(spec, seed, &Device::Cpu)?;
                harness::load_model(checkpoint, &varmap)?;
                (Task::Lm, test_sweep(&model, config, text, &Device::Cpu)?)
            }
            (ArmConfig::Mwp(config), TaskData::Mwp(problems)) => {
                let (varmap, model) = crate::mwp::training::build(config, problems, seed)?;
                harness::load_model(checkpoint, &varmap)?;
                (
                    Task::Mwp,
                    crate::mwp::training::test_sweep(&model, config, problems)?,
                )
            }
            _ => return Err(mismatch(arm)),
        };
        Ok(score_metrics(task, &by_k))
    }

    fn arm_report(runs: &ArmRuns<Self>, report: ArmReport) -> Result<ArmReport> {
        let seconds: Vec<f64> = runs
            .runs
            .iter()
            .map(|r| r.outcome.train_seconds_per_step())
            .collect();
        Ok(report.with_seed_values(STEP_SECONDS, &seconds)?)
    }

    fn claims(plan: &Plan<ArmConfig>, runs: &Runs<Self>) -> Result<Vec<Claim>> {
        Ok(datasets_of(plan)
            .iter()
            .flat_map(|(d, task)| claims_for(d, *task, runs))
            .collect())
    }

    fn anchors(plan: &Plan<ArmConfig>, _runs: &Runs<Self>) -> Vec<Anchor> {
        let mut anchors = Vec::new();
        for arm in plan
            .arms
            .iter()
            .filter(|a| a.name == ArmKind::SmoeDropout.name())
        {
            let ArmConfig::Lm(config) = &arm.config else {
                continue;
            };
            let schedule = config.schedule;
            let Some((_, half, full)) = PUBLISHED_BPC.iter().find(|p| p.0 == schedule.mode) else {
                continue;
            };
            let n = config.model.num_experts;
            for (k, value) in [(n / 2, *half), (n, *full)] {
                if !config.sweep.contains(&k) {
                    continue;
                }
                let mut anchor = Anchor::new(
                    &arm.name,
                    format!("{}_mean", key_at(Task::Lm, k)),
                    value,
                    format!(
                        "paper, k-schedule ablation ({}), enwik8 test BPC at k = {}",
                        schedule.mode.as_str(),
                        if k == n { "N" } else { "N/2" }
                    ),
                );
                anchor.note = Some(format!(
                    "enwik8 with Transformer-XL (4 layers, d 256, 16 experts, 400k steps) \
                     against a {}-layer d {} model on {} for {} steps: compare the trend \
                     over k, not the values",
                    config.model.layers, config.model.dim, arm.dataset, config.steps
                ));
                anchor.dataset = Some(arm.dataset.clone());
                anchors.push(anchor);
            }
        }
        anchors
    }

    fn report_extra(plan: &Plan<ArmConfig>) -> BTreeMap<String, serde_json::Value> {
        let table: Vec<serde_json::Value> = PUBLISHED_BPC
            .iter()
            .map(|(mode, half, full)| {
                serde_json::json!({ "schedule": mode.as_str(), "bpc_k_half": half, "bpc_k_n": full })
            })
            .collect();
        let gains: Vec<serde_json::Value> = PUBLISHED_MWP_GAINS
            .iter()
            .map(|(set, gain)| serde_json::json!({ "dataset": set, "gain_points": gain }))
            .collect();
        let mut extra = BTreeMap::from([
            (
                "published_enwik8_bpc_by_schedule".to_string(),
                serde_json::Value::Array(table),
            ),
            (
                "published_bert_mwp_gain_over_dense".to_string(),
                serde_json::Value::Array(gains),
            ),
        ]);
        let tasks: Vec<Task> = datasets_of(plan).into_iter().map(|(_, t)| t).collect();
        if tasks.contains(&Task::Lm) {
            extra.insert(
                "lm_model_note".to_string(),
                serde_json::Value::String(
                    "causal post-LN transformer with learned positions and no recurrence \
                     memory (Transformer-XL's memory and relative positions are not \
                     reproduced); random training windows instead of a sequential stream"
                        .to_string(),
                ),
            );
        }
        if tasks.contains(&Task::Mwp) {
            extra.insert(
                "mwp_model_note".to_string(),
                serde_json::Value::String(
                    "no pretrained BERT: a small encoder-decoder trained from scratch on \
                     WordPiece tokens of the BERT-base-uncased vocabulary; fold 0 of MAWPS \
                     and ASDiv-A; training drops problems whose reference equation misses \
                     its answer, test sets keep them"
                        .to_string(),
                ),
            );
        }
        extra
    }

    fn plots(plan: &Plan<ArmConfig>, runs: &Runs<Self>, out: &Path) -> Result<()> {
        for (dataset, task) in datasets_of(plan) {
            let score = match task {
                Task::Lm => "test bits per character",
                Task::Mwp => "test value accuracy",
            };
            let mut plot = LinePlot::new(
                format!("{score} by active experts k ({dataset})"),
                "experts per token k at inference",
                score,
            );
            let mut any = false;
            for kind in [ArmKind::LearnedSmoe, ArmKind::SmoeDropout, ArmKind::Thor] {
                let Some(arm) = runs.get(kind.name(), &dataset) else {
                    continue;
                };
                let points: Vec<(f64, f64)> = mean_by_k(arm, task)
                    .into_iter()
                    .map(|(k, v)| (k as f64, v))
                    .collect();
                if points.len() > 1 {
                    plot = plot.with_series(Series::new(kind.name(), points));
                    any = true;
                }
            }
            if let Some(dense) = runs.get(ArmKind::Dense.name(), &dataset)
                && let (Some(value), Some(first)) = (dense.mean(headline(task)), dense.runs.first())
            {
                let n = first.outcome.by_k().keys().next().copied().unwrap_or(1);
                plot =
                    plot.with_series(Series::new("dense", vec![(1.0, value), (n as f64, value)]));
            }
            if any {
                let stem = Path::new(&dataset)
                    .file_stem()
                    .map_or(dataset.clone(), |s| s.to_string_lossy().into_owned());
                let what = match task {
                    Task::Lm => "bpc",
                    Task::Mwp => "accuracy",
                };
                plot.write_svg(&out.join(format!("{stem}-{what}-by-k.svg")))?;
            }
        }
        Ok(())
    }

    fn train_request(args: &TrainArgs) -> Result<TrainRequest<ArmConfig>> {
        let kind = ArmKind::from_name(&args.arm)?;
        let dataset = args
            .dataset
            .clone()
            .unwrap_or_else(|| presets::default_dataset().to_string());
        let config = if is_mwp(&dataset) {
            let mut config = presets::mwp_config(args.run.preset, kind, args.k_mode)?;
            if let Some(steps) = args.steps {
                config.steps = steps;
                config.schedule.total_steps = steps;
            }
            ArmConfig::Mwp(config)
        } else {
            let mut config = presets::config(args.run.preset, kind, args.k_mode)?;
            if let Some(steps) = args.steps {
                config.steps = steps;
                config.schedule.total_steps = steps;
            }
            ArmConfig::Lm(config)
        };
        if args.steps == Some(0) {
            return Err(HarnessError::invalid("steps", 0, "must be positive").into());
        }
        config.validate()?;
        let arm = ArmSpec::new(kind.name(), dataset, config);
        Ok(args.run.request(arm))
    }
}

/// An arm whose configuration does not fit its data set's task.
fn mismatch(arm: &ArmSpec<ArmConfig>) -> crate::Error {
    HarnessError::invalid(
        "dataset",
        &arm.dataset,
        format!(
            "arm {} is a {} configuration",
            arm.name,
            match task_of(&arm.config) {
                Task::Lm => "language-model",
                Task::Mwp => "math-word-problem",
            }
        ),
    )
    .into()
}
