//! The generic driver: `reproduce`, `train` and `eval` of any [`Paper`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use candle_core::Device;
use serde_json::json;

use crate::cli::Preset;
use crate::error::{HarnessError, HarnessResult};
use crate::progress::ProgressMode;
use crate::report::{ArmReport, RunReport, git_commit};
use crate::run_dir::{resolve_out_dir, write_atomic};
use crate::train::Stopwatch;
use crate::utc::UtcDateTime;

use super::data_check::{DataPolicy, ensure_data};
use super::model_file::{read_stored, save_model};
use super::paper::{ArmSpec, Metrics, Paper, Plan, RunContext};
use super::record::{Manifest, SeedRecord, read_record, record_path, write_record};
use super::runs::{ArmRuns, Runs, SeedRun};

/// The folder of checkpoints inside a run directory.
pub const CHECKPOINTS: &str = "checkpoints";

/// The folder of a run directory where each arm-seed keeps its own further files
/// ([`RunContext::artifacts`]), one subfolder per arm-seed file stem.
pub const ARTIFACTS: &str = "artifacts";

/// The per-arm metric of wall-clock training time, measured by the harness around
/// each [`Paper::train`] (the only metric that differs between identical runs).
pub const TRAIN_SECONDS: &str = "train_seconds";

/// How to run `reproduce`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReproduceOptions {
    /// The preset.
    pub preset: Preset,
    /// Seeds per arm (`None`: the preset's default).
    pub seeds: Option<usize>,
    /// Where the data sets are (`None`: the default locations).
    pub data_dir: Option<PathBuf>,
    /// The run directory (`None`: `runs/<crate>/<preset>-<UTC timestamp>/`).
    pub out: Option<PathBuf>,
    /// Whether missing registry data sets may be fetched.
    pub data: DataPolicy,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// Train at most this many arm-seeds in this invocation, then stop without a
    /// report (what an interrupted run leaves behind; rerun to resume).
    pub stop_after: Option<usize>,
}

impl ReproduceOptions {
    /// `preset` with its default seeds, data locations and run directory.
    pub fn new(preset: Preset) -> Self {
        Self {
            preset,
            seeds: None,
            data_dir: None,
            out: None,
            data: DataPolicy::Fetch,
            progress: ProgressMode::Auto,
            stop_after: None,
        }
    }
}

/// How a `reproduce` invocation ended.
#[derive(Debug, Clone)]
pub struct Reproduced {
    /// The run directory.
    pub out: PathBuf,
    /// The report, or `None` when the invocation stopped early ([`ReproduceOptions::stop_after`]).
    pub report: Option<RunReport>,
    /// Arm-seeds trained by this invocation.
    pub trained: usize,
    /// Arm-seeds taken from an earlier invocation's records.
    pub resumed: usize,
}

/// The seeds of every arm on `dataset`: `P::seed(dataset, 0..n)`.
fn seeds_of<P: Paper>(dataset: &str, n: usize) -> Vec<u64> {
    (0..n).map(|i| P::seed(dataset, i)).collect()
}

/// The data sets of a plan, each once, in plan order.
pub fn plan_datasets<A>(plan: &Plan<A>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    plan.arms
        .iter()
        .filter(|a| seen.insert(a.dataset.clone()))
        .map(|a| a.dataset.clone())
        .collect()
}

fn catalogue_needs<P: Paper>(datasets: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    datasets
        .iter()
        .flat_map(|d| P::data_needs(d))
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

fn seed_count(seeds: Option<usize>, default: usize) -> HarnessResult<usize> {
    match seeds.unwrap_or(default) {
        0 => Err(HarnessError::invalid(
            "seeds",
            0,
            "at least one seed is needed",
        )),
        n => Ok(n),
    }
}

/// A validated plan with every data set checked and loaded: what `reproduce` and
/// `dry_run` do before anything trains.
struct Prepared<P: Paper> {
    plan: Plan<P::Arm>,
    seeds: usize,
    datasets: Vec<String>,
    data: LoadedData<P::Data>,
}

fn prepare<P: Paper>(
    options: &ReproduceOptions,
    args: &P::ReproduceArgs,
    policy: DataPolicy,
) -> Result<Prepared<P>, P::Error> {
    let plan = P::plan(options.preset, args)?;
    let seeds = seed_count(options.seeds, plan.default_seeds)?;
    let datasets = plan_datasets(&plan);
    ensure_data(
        &catalogue_needs::<P>(&datasets),
        options.data_dir.as_deref(),
        policy,
    )?;
    // Loading every data set first also checks the ones no catalogue knows.
    let data = load_all::<P>(&datasets, options.data_dir.as_deref())?;
    Ok(Prepared {
        plan,
        seeds,
        datasets,
        data,
    })
}

/// Validates the plan of `options.preset`, checks its catalogue data (never
/// fetching) and loads every data set, without training: what `reproduce
/// --dry-run` prints. Returns the plan's lines.
pub fn dry_run<P: Paper>(
    options: &ReproduceOptions,
    args: &P::ReproduceArgs,
) -> Result<Vec<String>, P::Error> {
    let Prepared {
        plan,
        seeds: n,
        datasets,
        data,
    } = prepare::<P>(options, args, DataPolicy::NoFetch)?;
    let mut lines = vec![format!(
        "{} {}: {} arms x {n} seeds = {} runs on {} data set(s); configuration valid, data loaded",
        P::NAME,
        plan.preset,
        plan.arms.len(),
        plan.arms.len() * n,
        datasets.len()
    )];
    for arm in &plan.arms {
        let label = data
            .get(&arm.dataset)
            .map_or(arm.dataset.as_str(), |d| d.1.as_str());
        lines.push(format!(
            "  {} on {} (seeds {:?})",
            arm.name,
            label,
            seeds_of::<P>(&arm.dataset, n)
        ));
    }
    Ok(lines)
}

/// Runs the plan of `options.preset`: checks (and fetches) every data set and loads
/// them all first, then trains each arm-seed not already finished in the run directory, then writes
/// `report.json`, `report.md` and the paper's plots.
///
/// Rerunning an interrupted invocation with the same `--out` skips the arm-seeds whose
/// record and checkpoint are there and ends with the same report numbers as an
/// uninterrupted run.
pub fn reproduce<P: Paper>(
    options: &ReproduceOptions,
    args: &P::ReproduceArgs,
) -> Result<Reproduced, P::Error> {
    let clock = Stopwatch::start();
    // Taken now: the checkout may move on while a long run trains.
    let commit = git_commit();
    let Prepared {
        plan,
        seeds: n,
        datasets,
        data,
    } = prepare::<P>(options, args, options.data)?;

    let started = UtcDateTime::now();
    let out = resolve_out_dir(
        options.out.as_deref(),
        Path::new("."),
        P::NAME,
        options.preset.as_str(),
        &started,
    )?;
    let manifest = open_manifest::<P>(&out, &plan, n, &started)?;
    let checkpoints = out.join(CHECKPOINTS);
    std::fs::create_dir_all(&checkpoints).map_err(|e| HarnessError::io(&checkpoints, e))?;

    let total = plan.arms.len() * n;
    eprintln!(
        "{} {}: {} arms x {n} seeds on {} data set(s) -> {}",
        P::NAME,
        plan.preset,
        plan.arms.len(),
        datasets.len(),
        out.display()
    );
    let run_progress = match options.progress.resolve() {
        ProgressMode::Bars => ProgressMode::Bars,
        _ => ProgressMode::Quiet,
    };
    let (mut trained, mut resumed, mut done) = (0usize, 0usize, 0usize);
    let mut arms = Vec::with_capacity(plan.arms.len());
    for arm in &plan.arms {
        let Some((loaded, label)) = data.get(&arm.dataset) else {
            return Err(HarnessError::invalid("dataset", &arm.dataset, "not loaded").into());
        };
        let arm_json =
            serde_json::to_value(arm).map_err(|e| HarnessError::Serialise(e.to_string()))?;
        let mut runs = Vec::with_capacity(n);
        for seed in seeds_of::<P>(&arm.dataset, n) {
            let stem = arm.file_stem(seed);
            let checkpoint = checkpoints.join(format!("{stem}.safetensors"));
            let record_file = record_path(&out, &stem);
            let previous = read_record::<P::Outcome>(&record_file, &arm_json, seed)?
                .filter(|_| sparse_core::checkpoint::verify(&checkpoint).is_ok());
            done += 1;
            let (record, was_resumed) = match previous {
                Some(record) => {
                    resumed += 1;
                    (record, true)
                }
                None => {
                    if options.stop_after.is_some_and(|limit| trained >= limit) {
                        return Ok(Reproduced {
                            out,
                            report: None,
                            trained,
                            resumed,
                        });
                    }
                    let watch = Stopwatch::start();
                    let context = RunContext {
                        progress: run_progress,
                        label: format!("{} {} seed {seed}", arm.dataset, arm.name),
                        device: Device::Cpu,
                        artifacts: Some(out.join(ARTIFACTS).join(&stem)),
                    };
                    let model = P::train(arm, loaded, seed, &context)?;
                    let metrics = checked_metrics::<P>(&model.outcome, arm)?;
                    save_model::<P>(&checkpoint, arm, seed, &model, &metrics)?;
                    let record = SeedRecord {
                        arm: arm_json.clone(),
                        seed,
                        outcome: model.outcome,
                        metrics,
                        seconds: watch.elapsed_seconds(),
                    };
                    write_record(&record_file, &record)?;
                    trained += 1;
                    eprintln!(
                        "[{done}/{total}] {} on {label} seed {seed}: {} {:.4} ({:.1} s)",
                        arm.name,
                        P::eval_metric(arm),
                        record.metrics[P::eval_metric(arm)],
                        record.seconds
                    );
                    (record, false)
                }
            };
            runs.push(SeedRun {
                seed,
                outcome: record.outcome,
                metrics: record.metrics,
                seconds: record.seconds,
                checkpoint: checkpoint.clone(),
                resumed: was_resumed,
            });
        }
        arms.push(ArmRuns::<P> {
            arm: arm.clone(),
            dataset_label: label.clone(),
            runs,
        });
    }
    let runs = Runs::new(arms);
    let mut report = assemble_report::<P>(&plan, &runs, &manifest, &out, clock.elapsed_seconds())?;
    report.git_commit = commit;
    report.write_to_dir(&out)?;
    P::plots(&plan, &runs, &out)?;
    Ok(Reproduced {
        out,
        report: Some(report),
        trained,
        resumed,
    })
}

/// Loaded data sets with their report labels, by the plan's data-set name.
type LoadedData<D> = BTreeMap<String, (D, String)>;

/// Every data set of the plan, loaded, with its report label.
fn load_all<P: Paper>(
    datasets: &[String],
    data_dir: Option<&Path>,
) -> Result<LoadedData<P::Data>, P::Error> {
    let mut data = BTreeMap::new();
    for dataset in datasets {
        let loaded = P::load(dataset, data_dir)?;
        let label = P::dataset_label(dataset, &loaded);
        data.insert(dataset.clone(), (loaded, label));
    }
    Ok(data)
}

fn open_manifest<P: Paper>(
    out: &Path,
    plan: &Plan<P::Arm>,
    seeds: usize,
    started: &UtcDateTime,
) -> HarnessResult<Manifest> {
    let fresh = Manifest {
        crate_name: P::NAME.to_string(),
        preset: plan.preset.as_str().to_string(),
        config: plan.config.clone(),
        seeds,
        started_utc: started.iso8601(),
    };
    match Manifest::read(out)? {
        Some(existing) if existing.same_run(&fresh) => Ok(existing),
        Some(existing) => Err(HarnessError::OtherRun {
            dir: out.to_path_buf(),
            reason: format!(
                "it holds a {} {} run with {} seeds and another configuration; choose another --out",
                existing.crate_name, existing.preset, existing.seeds
            ),
        }),
        None => {
            fresh.write(out)?;
            Ok(fresh)
        }
    }
}

fn checked_metrics<P: Paper>(
    outcome: &P::Outcome,
    arm: &ArmSpec<P::Arm>,
) -> HarnessResult<Metrics> {
    let metrics = P::metrics(outcome);
    if metrics.contains_key(TRAIN_SECONDS) {
        return Err(HarnessError::invalid(
            "metrics",
            TRAIN_SECONDS,
            "the harness measures training time itself; a paper's metrics are deterministic",
        ));
    }
    if !metrics.contains_key(P::eval_metric(arm)) {
        return Err(HarnessError::MissingMetric {
            metric: P::eval_metric(arm).to_string(),
            arm: arm.name.clone(),
        });
    }
    Ok(metrics)
}

/// Mean ± std and per-seed values of every metric the seeds share, plus the seeds and
/// checkpoints, then the paper's own additions.
fn arm_report<P: Paper>(arm: &ArmRuns<P>, out: &Path) -> Result<ArmReport, P::Error> {
    let mut report = ArmReport::new(&arm.arm.name, &arm.dataset_label);
    let names: BTreeSet<&String> = arm.runs.iter().flat_map(|r| r.metrics.keys()).collect();
    for name in names {
        let values = arm.values(name);
        if values.len() == arm.runs.len() {
            report = report.with_seed_values(name, &values)?;
        }
    }
    let seconds: Vec<f64> = arm.runs.iter().map(|r| r.seconds).collect();
    report = report.with_seed_values(TRAIN_SECONDS, &seconds)?;
    let checkpoints: Vec<String> = arm
        .runs
        .iter()
        .map(|r| {
            r.checkpoint
                .strip_prefix(out)
                .unwrap_or(&r.checkpoint)
                .display()
                .to_string()
        })
        .collect();
    report = report
        .with_extra(
            "seeds",
            json!(arm.runs.iter().map(|r| r.seed).collect::<Vec<_>>()),
        )
        .with_extra("checkpoints", json!(checkpoints));
    P::arm_report(arm, report)
}

fn assemble_report<P: Paper>(
    plan: &Plan<P::Arm>,
    runs: &Runs<P>,
    manifest: &Manifest,
    out: &Path,
    seconds: f64,
) -> Result<RunReport, P::Error> {
    let seeds = runs
        .arms()
        .first()
        .map(|a| a.runs.iter().map(|r| r.seed).collect())
        .unwrap_or_default();
    let mut report = RunReport::new(P::NAME, P::VERSION, plan.preset.as_str(), seeds);
    report.started_utc = manifest.started_utc.clone();
    if let Some(machine) = report.machine.as_mut() {
        machine.device = Some("cpu".into());
    }
    report.config = Some(plan.config.clone());
    for arm in runs.arms() {
        report.arms.push(arm_report::<P>(arm, out)?);
    }
    report.claims = P::claims(plan, runs)?;
    report.anchors = P::anchors(plan, runs);
    report.extra = P::report_extra(plan);
    let resumed = runs.resumed_count();
    if resumed > 0 {
        report.extra.insert(
            "resumed_runs".into(),
            json!(format!(
                "{resumed} of {} arm-seeds were trained by an earlier, interrupted invocation; wall_seconds counts this invocation only",
                runs.seed_runs().count()
            )),
        );
    }
    report.wall_seconds = seconds;
    Ok(report)
}

/// What `train` produced.
#[derive(Debug, Clone)]
pub struct TrainedArm {
    /// The output directory.
    pub out: PathBuf,
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// The run's metrics.
    pub metrics: Metrics,
}

/// Trains one arm: its checkpoint (`model.safetensors`) and record (`outcome.json`)
/// go to `--out` (default `runs/<crate>/train-<UTC timestamp>/`).
pub fn train<P: Paper>(args: &P::TrainArgs, data: DataPolicy) -> Result<TrainedArm, P::Error> {
    let request = P::train_request(args)?;
    ensure_data(
        &P::data_needs(&request.arm.dataset),
        request.data_dir.as_deref(),
        data,
    )?;
    let loaded = P::load(&request.arm.dataset, request.data_dir.as_deref())?;
    let out = resolve_out_dir(
        request.out.as_deref(),
        Path::new("."),
        P::NAME,
        "train",
        &UtcDateTime::now(),
    )?;
    let context = RunContext {
        progress: ProgressMode::Auto,
        label: format!("{} seed {}", request.arm.name, request.seed),
        device: Device::Cpu,
        artifacts: Some(out.join(ARTIFACTS)),
    };
    let watch = Stopwatch::start();
    let model = P::train(&request.arm, &loaded, request.seed, &context)?;
    let seconds = watch.elapsed_seconds();
    let metrics = checked_metrics::<P>(&model.outcome, &request.arm)?;
    let checkpoint = out.join("model.safetensors");
    save_model::<P>(&checkpoint, &request.arm, request.seed, &model, &metrics)?;
    let record = SeedRecord {
        arm: serde_json::to_value(&request.arm)
            .map_err(|e| HarnessError::Serialise(e.to_string()))?,
        seed: request.seed,
        outcome: model.outcome,
        metrics: metrics.clone(),
        seconds,
    };
    let json =
        serde_json::to_vec_pretty(&record).map_err(|e| HarnessError::Serialise(e.to_string()))?;
    write_atomic(&out.join("outcome.json"), &json)?;
    Ok(TrainedArm {
        out,
        checkpoint,
        metrics,
    })
}

/// What `eval` measured.
#[derive(Debug, Clone)]
pub struct Evaluated<A> {
    /// The arm the checkpoint was trained as.
    pub arm: ArmSpec<A>,
    /// Its seed.
    pub seed: u64,
    /// The arm's [`Paper::eval_metric`] as recorded at training.
    pub recorded: f64,
    /// The arm's [`Paper::eval_metric`] measured now.
    pub measured: f64,
    /// Every metric measured now.
    pub metrics: Metrics,
}

/// Reloads a checkpoint and recomputes its recorded metric. A checkpoint written by
/// another crate, one whose tensors changed since it was written, or a metric that
/// differs from the recorded one (in any bit) is an error.
pub fn evaluate<P: Paper>(
    checkpoint: &Path,
    data_dir: Option<&Path>,
    data: DataPolicy,
) -> Result<Evaluated<P::Arm>, P::Error> {
    let stored = read_stored::<P>(checkpoint)?;
    let metric = P::eval_metric(&stored.arm);
    let recorded = *stored
        .meta
        .metrics
        .get(metric)
        .ok_or_else(|| HarnessError::BadCheckpoint {
            path: checkpoint.to_path_buf(),
            reason: format!("it records no `{metric}`"),
        })?;
    ensure_data(&P::data_needs(&stored.arm.dataset), data_dir, data)?;
    let loaded = P::load(&stored.arm.dataset, data_dir)?;
    let metrics = P::evaluate(&stored.arm, &loaded, stored.seed, checkpoint)?;
    let measured = *metrics
        .get(metric)
        .ok_or_else(|| HarnessError::MissingMetric {
            metric: metric.to_string(),
            arm: stored.arm.name.clone(),
        })?;
    if measured.to_bits() != recorded.to_bits() {
        return Err(HarnessError::EvalMismatch {
            path: checkpoint.to_path_buf(),
            metric: metric.to_string(),
            recorded,
            measured,
        }
        .into());
    }
    Ok(Evaluated {
        arm: stored.arm,
        seed: stored.seed,
        recorded,
        measured,
        metrics,
    })
}
