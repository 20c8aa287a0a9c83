//! The generic driver on a toy paper: resume, refusals, integrity and eval checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use sparse_core::Mask;
use sparse_repro::HarnessError;
use sparse_repro::claim::Claim;
use sparse_repro::cli::Preset;
use sparse_repro::harness::{
    self, ArmSpec, DataPolicy, Metrics, NoArgs, Paper, Plan, ReproduceOptions, RunContext, Runs,
    TrainRequest, Trained,
};
use sparse_repro::progress::ProgressMode;

/// One arm: a weight vector filled from the seed, scaled by `scale`, half masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Scaled {
    scale: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Outcome {
    score: f64,
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The toy's own subcommand: `toy-paper rescore --checkpoint FILE --into FILE`
/// writes the checkpoint's recorded score into a file.
#[derive(Debug, clap::Subcommand)]
enum ToyCommands {
    /// Reads a checkpoint's recorded score.
    Rescore {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long)]
        into: PathBuf,
    },
}

/// When set, `evaluate` reports a value one ulp off (a model that does not reload).
static DRIFT: AtomicBool = AtomicBool::new(false);

fn weights(varmap: &VarMap) -> candle_core::Result<Tensor> {
    varmap.get(
        8,
        "layer.weight",
        candle_nn::Init::Const(0.0),
        DType::F32,
        &Device::Cpu,
    )
}

fn score(w: &Tensor) -> candle_core::Result<f64> {
    Ok(w.sum_all()?.to_scalar::<f32>()? as f64)
}

struct Toy;

impl Paper for Toy {
    const NAME: &'static str = "toy-paper";
    const VERSION: &'static str = "0.0.1";
    const ABOUT: &'static str = "Test paper.";
    const EVAL_METRIC: &'static str = "score";
    type Arm = Scaled;
    type Data = ();
    type Outcome = Outcome;
    type ReproduceArgs = NoArgs;
    type TrainArgs = TrainArgs;
    type Commands = ToyCommands;
    type Error = HarnessError;

    fn run_command(command: ToyCommands) -> Result<(), HarnessError> {
        let ToyCommands::Rescore { checkpoint, into } = command;
        let stored = harness::read_stored::<Toy>(&checkpoint)?;
        let score = stored
            .meta
            .metrics
            .get("score")
            .copied()
            .unwrap_or(f64::NAN);
        std::fs::write(&into, score.to_string()).map_err(|e| HarnessError::io(&into, e))
    }

    fn plan(preset: Preset, _: &NoArgs) -> Result<Plan<Scaled>, HarnessError> {
        let scales: &[f32] = match preset {
            Preset::Smoke => &[1.0, 2.0],
            _ => &[1.0, 2.0, 3.0],
        };
        Ok(Plan {
            preset,
            arms: scales
                .iter()
                .map(|&scale| ArmSpec::new(format!("x{scale}"), "toy", Scaled { scale }))
                .collect(),
            default_seeds: 2,
            config: serde_json::json!({ "scales": scales }),
        })
    }

    fn seed(dataset: &str, index: usize) -> u64 {
        assert_eq!(dataset, "toy");
        100 + index as u64
    }

    fn data_needs(_: &str) -> Vec<String> {
        Vec::new()
    }

    fn load(_: &str, _: Option<&Path>) -> Result<(), HarnessError> {
        Ok(())
    }

    fn train(
        arm: &ArmSpec<Scaled>,
        _: &(),
        seed: u64,
        _: &RunContext,
    ) -> Result<Trained<Outcome>, HarnessError> {
        let varmap = VarMap::new();
        let w = weights(&varmap)?;
        let values: Vec<f32> = (0..8)
            .map(|i| arm.config.scale * ((seed as f32 * 0.37 + i as f32).sin()))
            .collect();
        let bits: Vec<u8> = (0..8).map(|i| u8::from(i % 2 == 0)).collect();
        let masked: Vec<f32> = values
            .iter()
            .zip(&bits)
            .map(|(v, &b)| v * b as f32)
            .collect();
        let var = varmap
            .data()
            .lock()
            .map_err(|_| HarnessError::invalid("varmap", "", "poisoned"))?["layer.weight"]
            .clone();
        var.set(&Tensor::new(masked, &Device::Cpu)?)?;
        let outcome = Outcome { score: score(&w)? };
        let masks = BTreeMap::from([("layer.weight".to_string(), Mask::from_bits(&[8], bits)?)]);
        Ok(Trained::new(outcome, varmap, 1).with_masks(masks))
    }

    fn metrics(outcome: &Outcome) -> Metrics {
        Metrics::from([("score".to_string(), outcome.score)])
    }

    fn evaluate(
        _: &ArmSpec<Scaled>,
        _: &(),
        _: u64,
        checkpoint: &Path,
    ) -> Result<Metrics, HarnessError> {
        let varmap = VarMap::new();
        let w = weights(&varmap)?;
        let loaded = harness::load_model(checkpoint, &varmap)?;
        assert_eq!(loaded.masks["layer.weight"].nnz(), 4);
        let mut value = score(&w)?;
        if DRIFT.load(Ordering::SeqCst) {
            value = f64::from_bits(value.to_bits() + 1);
        }
        Ok(Metrics::from([("score".to_string(), value)]))
    }

    fn claims(_: &Plan<Scaled>, runs: &Runs<Self>) -> Result<Vec<Claim>, HarnessError> {
        let one = runs.get("x1", "toy").and_then(|a| a.mean("score"));
        let two = runs.get("x2", "toy").and_then(|a| a.mean("score"));
        let (one, two) = (one.unwrap_or(f64::NAN), two.unwrap_or(f64::NAN));
        Ok(vec![Claim::new(
            "doubling-doubles",
            "x2 scores twice x1",
            ((two - 2.0 * one).abs()) < 1e-5,
            [("x1", one), ("x2", two)],
        )])
    }

    fn train_request(args: &TrainArgs) -> Result<TrainRequest<Scaled>, HarnessError> {
        Ok(TrainRequest {
            arm: ArmSpec::new("x1", "toy", Scaled { scale: 1.0 }),
            seed: args.seed,
            data_dir: None,
            out: None,
        })
    }
}

fn options(out: PathBuf, preset: Preset) -> ReproduceOptions {
    ReproduceOptions {
        out: Some(out),
        data: DataPolicy::NoFetch,
        progress: ProgressMode::Quiet,
        ..ReproduceOptions::new(preset)
    }
}

fn tempdir() -> Result<tempfile::TempDir, HarnessError> {
    tempfile::tempdir().map_err(|e| HarnessError::io("tempdir", e))
}

#[test]
fn interrupted_runs_resume_to_the_same_report() -> Result<(), HarnessError> {
    let root = tempdir()?;
    let check =
        harness::check_resume::<Toy>(Preset::Smoke, &NoArgs {}, None, None, root.path(), 3)?;
    assert_eq!(check.trained_before_interruption, 3);
    assert_eq!(check.taken_from_records, 3);
    assert_eq!(check.resumed.arms.len(), 2);
    assert_eq!(check.resumed.seeds, vec![100, 101]);
    assert!(check.resumed.all_claims_passed());
    assert!(check.resumed.extra.contains_key("resumed_runs"));
    assert!(
        check.resumed.arms[0]
            .metrics
            .contains_key("train_seconds_mean")
    );
    // Aggregation: mean of the per-seed values.
    let arm = &check.resumed.arms[1];
    let values = arm.seed_values("score").unwrap_or_default();
    assert_eq!(values.len(), 2);
    assert_eq!(arm.metrics["score_mean"], (values[0] + values[1]) / 2.0);
    Ok(())
}

#[test]
fn a_stopped_run_has_no_report_and_a_finished_one_retrains_nothing() -> Result<(), HarnessError> {
    let root = tempdir()?;
    let out = root.path().join("run");
    let stopped = harness::reproduce::<Toy>(
        &ReproduceOptions {
            stop_after: Some(1),
            ..options(out.clone(), Preset::Smoke)
        },
        &NoArgs {},
    )?;
    assert!(stopped.report.is_none());
    assert_eq!(stopped.trained, 1);
    assert!(!out.join("report.json").exists());
    let finished = harness::reproduce::<Toy>(&options(out.clone(), Preset::Smoke), &NoArgs {})?;
    assert_eq!((finished.trained, finished.resumed), (3, 1));
    let again = harness::reproduce::<Toy>(&options(out.clone(), Preset::Smoke), &NoArgs {})?;
    assert_eq!((again.trained, again.resumed), (0, 4));
    assert!(out.join("report.md").is_file());
    Ok(())
}

#[test]
fn a_directory_of_another_plan_is_refused() -> Result<(), HarnessError> {
    let root = tempdir()?;
    let out = root.path().join("run");
    harness::reproduce::<Toy>(&options(out.clone(), Preset::Smoke), &NoArgs {})?;
    let err = harness::reproduce::<Toy>(&options(out, Preset::Quick), &NoArgs {})
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("cannot resume into"), "{err}");
    Ok(())
}

fn smoke_checkpoint(root: &Path) -> Result<PathBuf, HarnessError> {
    harness::reproduce::<Toy>(&options(root.join("run"), Preset::Smoke), &NoArgs {})?;
    Ok(root.join("run/checkpoints/toy-x2-seed101.safetensors"))
}

#[test]
fn eval_recomputes_the_recorded_metric_and_fails_on_any_difference() -> Result<(), HarnessError> {
    let root = tempdir()?;
    let checkpoint = smoke_checkpoint(root.path())?;
    let evaluated = harness::evaluate::<Toy>(&checkpoint, None, DataPolicy::NoFetch)?;
    assert_eq!(evaluated.arm.name, "x2");
    assert_eq!(evaluated.seed, 101);
    assert_eq!(evaluated.measured.to_bits(), evaluated.recorded.to_bits());
    DRIFT.store(true, Ordering::SeqCst);
    let drifted = harness::evaluate::<Toy>(&checkpoint, None, DataPolicy::NoFetch);
    DRIFT.store(false, Ordering::SeqCst);
    assert!(matches!(drifted, Err(HarnessError::EvalMismatch { .. })));
    Ok(())
}

#[test]
fn a_flipped_byte_is_refused_naming_the_tensor() -> Result<(), HarnessError> {
    let root = tempdir()?;
    let checkpoint = smoke_checkpoint(root.path())?;
    let mut bytes = std::fs::read(&checkpoint).map_err(|e| HarnessError::io(&checkpoint, e))?;
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8])) as usize;
    // The data section is ordered by name: `layer.weight` (32 bytes) comes before `mask/`.
    bytes[8 + header + 5] ^= 0x40;
    std::fs::write(&checkpoint, &bytes).map_err(|e| HarnessError::io(&checkpoint, e))?;
    let err = harness::evaluate::<Toy>(&checkpoint, None, DataPolicy::NoFetch)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("layer.weight"), "{err}");
    Ok(())
}

#[test]
fn another_crates_checkpoint_is_refused_by_name() -> Result<(), HarnessError> {
    let root = tempdir()?;
    let checkpoint = smoke_checkpoint(root.path())?;
    assert_eq!(
        sparse_core::checkpoint::read_meta(&checkpoint)?.crate_name,
        "toy-paper"
    );
    // The same model, written as another crate would write it.
    let varmap = VarMap::new();
    weights(&varmap)?;
    let stored = harness::load_model(&checkpoint, &varmap)?;
    let foreign = root.path().join("foreign.safetensors");
    let meta = sparse_core::CheckpointMeta::new("other-paper", "0.0.1", stored.meta.config, 1, 101)
        .with_metric("score", stored.meta.metrics["score"]);
    sparse_core::checkpoint::save(
        &foreign,
        &varmap,
        sparse_core::checkpoint::Sources {
            masks: Some(&stored.masks),
            optimizer: None,
            extra: None,
        },
        &meta,
    )?;
    let err = harness::evaluate::<Toy>(&foreign, None, DataPolicy::NoFetch)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("toy-paper") && err.contains("other-paper"),
        "{err}"
    );
    Ok(())
}

#[test]
fn the_cli_trains_and_evaluates() -> Result<(), Box<dyn std::error::Error>> {
    let root = tempdir()?;
    let out = root.path().join("dry");
    let checkpoint = smoke_checkpoint(root.path())?;
    harness::run_cli::<Toy, _, _>([
        "toy-paper",
        "eval",
        "--checkpoint",
        &checkpoint.display().to_string(),
        "--no-fetch",
    ])?;
    let into = root.path().join("score.txt");
    harness::run_cli::<Toy, _, _>([
        "toy-paper",
        "rescore",
        "--checkpoint",
        &checkpoint.display().to_string(),
        "--into",
        &into.display().to_string(),
    ])?;
    let recorded = harness::read_stored::<Toy>(&checkpoint)?.meta.metrics["score"];
    assert_eq!(std::fs::read_to_string(&into)?, recorded.to_string());
    let lines = harness::dry_run::<Toy>(&options(out, Preset::Quick), &NoArgs {})?;
    assert_eq!(lines.len(), 4);
    assert!(
        lines[0].contains("3 arms x 2 seeds = 6 runs"),
        "{}",
        lines[0]
    );
    Ok(())
}
