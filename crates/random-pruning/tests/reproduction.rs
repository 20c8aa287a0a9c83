//! End-to-end behaviour of the reproduction: allocation as configured, masks fixed
//! through training, the smoke preset through the harness (report, resume,
//! checkpoints that `eval` reproduces bit for bit, integrity and ownership checks).

use std::path::{Path, PathBuf};

use random_pruning::data::{DatasetName, ImageData};
use random_pruning::paper::DatasetArgs;
use random_pruning::training::{self, Network, RunOptions};
use random_pruning::{AllocationKind, Error, RandomPruning, Sparsity, TrainConfig};
use sparse_repro::HarnessError;
use sparse_repro::cli::Preset;
use sparse_repro::harness::{self, DataPolicy, Paper, ReproduceOptions};
use sparse_repro::models::Architecture;
use sparse_repro::progress::ProgressMode;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn quiet() -> RunOptions {
    RunOptions {
        progress: ProgressMode::Quiet,
        label: "test".into(),
    }
}

fn digits() -> Result<ImageData, Error> {
    Ok(ImageData::digits()?.truncated(Some(400), Some(100)))
}

fn sparse(density: f64, allocation: AllocationKind) -> Sparsity {
    Sparsity::Random {
        density,
        allocation,
        exact: true,
    }
}

fn config(sparsity: Sparsity, epochs: usize) -> Result<TrainConfig, Error> {
    TrainConfig::builder(Architecture::Mlp {
        width: 32,
        depth: 2,
    })
    .sparsity(sparsity)
    .epochs(epochs)
    .batch_size(32)
    .lr(0.05)
    .build()
}

#[test]
fn allocation_densities_are_as_configured() -> TestResult {
    let data = digits()?;
    // MLP 64 -> 32 -> 32 -> 10: 2048 + 1024 + 320 = 3392 prunable weights.
    for (kind, density) in [(AllocationKind::Uniform, 0.1), (AllocationKind::Erk, 0.2)] {
        let net = Network::new(&config(sparse(density, kind), 1)?, &data, 3)?;
        let nnz: usize = net.params.iter().map(|p| p.mask.nnz()).sum();
        assert_eq!(nnz, (density * 3392.0_f64).round() as usize, "{kind:?}");
        let per_layer = net.params.densities();
        if kind == AllocationKind::Uniform {
            for (name, d) in &per_layer {
                assert!((d - density).abs() < 0.01, "{name}: {d}");
            }
        } else {
            // ERK gives the small classifier a higher density than the input layer.
            assert!(per_layer["classifier.weight"] > per_layer["hidden.0.weight"]);
        }
    }
    Ok(())
}

#[test]
fn dense_runs_have_no_masks_and_masks_stay_fixed_in_sparse_runs() -> TestResult {
    let data = digits()?;
    let dense = Network::new(&config(Sparsity::Dense, 1)?, &data, 3)?;
    assert!(dense.params.is_empty());

    let cfg = config(sparse(0.1, AllocationKind::Erk), 3)?;
    let before: Vec<_> = Network::new(&cfg, &data, 3)?
        .params
        .iter()
        .map(|p| p.mask.clone())
        .collect();
    let (outcome, net) = training::train(&cfg, &data, None, 3, &quiet())?;
    assert!(outcome.masks_unchanged);
    let after: Vec<_> = net.params.iter().map(|p| p.mask.clone()).collect();
    assert_eq!(
        before, after,
        "the mask must be the one drawn at initialisation"
    );
    for p in net.params.iter() {
        let w = p.dense_weight()?.flatten_all()?.to_vec1::<f32>()?;
        for (i, v) in w.iter().enumerate() {
            if !p.mask.is_active(i) {
                assert_eq!(*v, 0.0, "{} position {i} is pruned but non-zero", p.name);
            }
        }
    }
    assert!((outcome.masked_density - 0.1).abs() < 1e-3);
    assert!(outcome.inference_flops < outcome.dense_inference_flops * 0.2);
    // The dense count: every trainable parameter, masked weights counted in full.
    assert!(outcome.total_params > outcome.nonzero_params);
    assert_eq!(outcome.total_params, 2048 + 32 + 1024 + 32 + 320 + 10);
    // ERK's budget Σ d_l·N_l is fractional; exact sampling rounds it per layer.
    let nnz: usize = net.params.iter().map(|p| p.mask.nnz()).sum();
    let budget = outcome.budget.ok_or("a sparse run has a budget")?;
    assert!((budget - 339.2).abs() < 1e-9, "{budget}");
    assert!((nnz as f64 - budget).abs() <= 1.0, "{nnz} vs {budget}");
    Ok(())
}

#[test]
fn same_seed_same_result() -> TestResult {
    let data = digits()?;
    let cfg = config(sparse(0.2, AllocationKind::Snip), 2)?;
    let (a, _) = training::train(&cfg, &data, None, 3, &quiet())?;
    let (b, _) = training::train(&cfg, &data, None, 3, &quiet())?;
    assert_eq!(a.test_accuracy, b.test_accuracy);
    assert_eq!(a.best_validation_accuracy, b.best_validation_accuracy);
    assert_eq!(a.test_ece, b.test_ece);
    let (c, _) = training::train(&cfg, &data, None, 4, &quiet())?;
    assert_ne!(
        (a.best_validation_accuracy, a.test_ece),
        (c.best_validation_accuracy, c.test_ece),
        "another seed must give another run"
    );
    Ok(())
}

#[test]
fn invalid_configurations_are_rejected_naming_the_parameter() {
    let arch = Architecture::Mlp { width: 8, depth: 1 };
    let err = |b: random_pruning::config::TrainConfigBuilder| {
        b.build().err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert!(err(TrainConfig::builder(arch.clone()).epochs(0)).contains("epochs"));
    assert!(err(TrainConfig::builder(arch.clone()).batch_size(0)).contains("batch_size"));
    assert!(err(TrainConfig::builder(arch.clone()).lr(-1.0)).contains("`lr`"));
    assert!(err(TrainConfig::builder(arch.clone()).momentum(1.0)).contains("momentum"));
    assert!(
        err(TrainConfig::builder(arch.clone()).validation_fraction(0.0))
            .contains("validation_fraction")
    );
    assert!(err(TrainConfig::builder(arch.clone()).train_limit(Some(1))).contains("train_limit"));
    assert!(
        err(TrainConfig::builder(arch.clone()).sparsity(sparse(0.0, AllocationKind::Erk)))
            .contains("density")
    );
    assert!(
        err(TrainConfig::builder(arch).sparsity(sparse(1.5, AllocationKind::Er)))
            .contains("density")
    );
    assert!(
        err(TrainConfig::builder(Architecture::ResNet {
            depth: 10,
            width: 4
        }))
        .contains("depth")
    );
    assert!(matches!(
        TrainConfig::builder(Architecture::Vgg { width: 0 }).build(),
        Err(Error::Harness(HarnessError::InvalidParameter {
            name: "width",
            ..
        }))
    ));
}

/// Runs the smoke preset (straight, and interrupted after 5 arm-seeds then
/// resumed) under `root`; returns the uninterrupted run's directory.
fn smoke_run(root: &Path) -> Result<PathBuf, Error> {
    let check = harness::check_resume::<RandomPruning>(
        Preset::Smoke,
        &DatasetArgs::default(),
        None,
        None,
        root,
        5,
    )?;
    assert_eq!(check.trained_before_interruption, 5);
    assert_eq!(check.taken_from_records, 5);
    Ok(root.join("uninterrupted"))
}

fn checkpoints(out: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join(harness::CHECKPOINTS))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "safetensors"));
    files.sort();
    Ok(files)
}

#[test]
fn smoke_preset_resumes_reports_and_its_checkpoints_evaluate_bit_for_bit() -> TestResult {
    let root = tempfile::tempdir()?;
    let out = smoke_run(root.path())?;
    let report = sparse_repro::report::RunReport::from_json_file(&out.join("report.json"))?;

    let plan = RandomPruning::plan(Preset::Smoke, &DatasetArgs::default())?;
    assert_eq!(report.arms.len(), plan.arms.len());
    let ids: Vec<&str> = report.claims.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "gap-shrinks-with-width",
            "erk-beats-uniform",
            "exact-parameter-budget"
        ]
    );
    // Exact sampling meets every budget, counted from the checkpoints' masks.
    assert!(report.claims[2].passed, "{:?}", report.claims[2]);
    assert_eq!(report.claims[2].values["sparse_runs"], 12.0);
    assert!(out.join("accuracy_vs_density.svg").is_file());
    for arm in &report.arms {
        for metric in ["test_accuracy_mean", "test_ece_mean", "params", "density"] {
            assert!(arm.metric(metric).is_some(), "{}: no {metric}", arm.name);
        }
    }

    // `eval` reloads each checkpoint to exactly the accuracy the report holds.
    let files = checkpoints(&out)?;
    assert_eq!(files.len(), report.arms.len());
    for path in &files {
        let meta = sparse_core::checkpoint::read_meta(path)?;
        assert_eq!(meta.crate_name, "random-pruning");
        let evaluated = harness::evaluate::<RandomPruning>(path, None, DataPolicy::NoFetch)?;
        assert_eq!(evaluated.measured.to_bits(), evaluated.recorded.to_bits());
        let arm = report
            .arm(&evaluated.arm.name)
            .ok_or("checkpoint of an arm missing from the report")?;
        assert_eq!(
            arm.seed_values("test_accuracy"),
            Some(vec![evaluated.measured])
        );
        assert_eq!(evaluated.arm.config.train_limit(), Some(300));
    }
    Ok(())
}

/// The byte range of tensor `name`'s data in a safetensors file.
fn tensor_range(bytes: &[u8], name: &str) -> Option<(usize, usize)> {
    let header_len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8 + header_len)?).ok()?;
    let offsets = header.get(name)?.get("data_offsets")?.as_array()?;
    let start = offsets.first()?.as_u64()? as usize + 8 + header_len;
    let end = offsets.get(1)?.as_u64()? as usize + 8 + header_len;
    Some((start, end))
}

#[test]
fn checkpoints_are_checked_for_integrity_and_owner() -> TestResult {
    let root = tempfile::tempdir()?;
    let out = root.path().join("one");
    let out_arg = out.display().to_string();
    // One small arm through the `train` command line, then `eval` of it.
    harness::run_cli::<RandomPruning, _, _>([
        "random-pruning",
        "train",
        "--width",
        "8",
        "--density",
        "0.2",
        "--exact",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--lr",
        "0.05",
        "--seed",
        "5",
        "--train-limit",
        "200",
        "--test-limit",
        "50",
        "--no-fetch",
        "--out",
        &out_arg,
    ])?;
    let checkpoint = out.join("model.safetensors");
    let evaluated = harness::evaluate::<RandomPruning>(&checkpoint, None, DataPolicy::NoFetch)?;
    assert_eq!(evaluated.measured.to_bits(), evaluated.recorded.to_bits());
    assert_eq!(evaluated.seed, 5);
    assert_eq!(evaluated.arm.name, "mlp-8x2 ERK@0.20");

    // One flipped bit in one weight is refused, naming the tensor.
    let mut bytes = std::fs::read(&checkpoint)?;
    let (start, end) = tensor_range(&bytes, "hidden.1.weight").ok_or("no hidden.1.weight")?;
    bytes[(start + end) / 2] ^= 0x01;
    let flipped = root.path().join("flipped.safetensors");
    std::fs::write(&flipped, &bytes)?;
    let err = harness::evaluate::<RandomPruning>(&flipped, None, DataPolicy::NoFetch)
        .err()
        .ok_or("a corrupted checkpoint was accepted")?
        .to_string();
    assert!(err.contains("hidden.1.weight"), "{err}");

    // A checkpoint of another crate is refused, naming that crate.
    let varmap = candle_nn::VarMap::new();
    varmap.get(
        4,
        "w",
        candle_nn::Init::Const(1.0),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )?;
    let foreign = root.path().join("foreign.safetensors");
    let meta = sparse_core::CheckpointMeta::new("dsn-tsc", "0.1.0", serde_json::json!({}), 1, 0);
    sparse_core::checkpoint::save(
        &foreign,
        &varmap,
        sparse_core::checkpoint::Sources {
            masks: None,
            optimizer: None,
            extra: None,
        },
        &meta,
    )?;
    let err = harness::evaluate::<RandomPruning>(&foreign, None, DataPolicy::NoFetch)
        .err()
        .ok_or("another crate's checkpoint was accepted")?
        .to_string();
    assert!(err.contains("dsn-tsc"), "{err}");
    Ok(())
}

/// The ResNet path with calibration and OOD detection, on the fetched
/// Fashion-MNIST (in) and MNIST (out); CI fetches both.
#[test]
fn smoke_on_fashion_mnist_reports_calibration_and_ood_when_the_data_is_present() -> TestResult {
    if let Err(e) = RandomPruning::load("fashion-mnist", None) {
        println!("skipped: {e}");
        return Ok(());
    }
    let args = DatasetArgs {
        dataset: Some(DatasetName::FashionMnist),
    };
    let plan = RandomPruning::plan(Preset::Smoke, &args)?;
    assert!(matches!(
        plan.arms[0].config.architecture(),
        Architecture::ResNet { .. }
    ));
    let root = tempfile::tempdir()?;
    let mut options = ReproduceOptions::new(Preset::Smoke);
    options.out = Some(root.path().join("fashion"));
    options.data = DataPolicy::NoFetch;
    options.progress = ProgressMode::Quiet;
    let done = harness::reproduce::<RandomPruning>(&options, &args)?;
    let report = done.report.ok_or("no report")?;
    for arm in &report.arms {
        let auroc = arm.metric("ood_auroc_mean").ok_or("an OOD AUROC per arm")?;
        assert!((0.0..=1.0).contains(&auroc), "{}: {auroc}", arm.name);
        let ece = arm.metric("test_ece_mean").ok_or("no ECE")?;
        assert!((0.0..=1.0).contains(&ece), "{}: {ece}", arm.name);
    }
    Ok(())
}

/// The OOD score path without downloads: scored against its own test images, the
/// model cannot tell them apart, so the AUROC is exactly one half.
#[test]
fn an_ood_set_identical_to_the_test_set_scores_one_half() -> TestResult {
    let data = digits()?;
    let ood = data.limited(Some(0), Some(100));
    let cfg = config(sparse(0.5, AllocationKind::Erk), 1)?;
    let (outcome, _) = training::train(&cfg, &data, Some(&ood), 3, &quiet())?;
    let auroc = outcome.ood_auroc.ok_or("no OOD AUROC")?;
    assert!((auroc - 0.5).abs() < 1e-9, "{auroc}");
    let (without, _) = training::train(&cfg, &data, None, 3, &quiet())?;
    assert_eq!(without.ood_auroc, None);
    assert_eq!(without.test_accuracy, outcome.test_accuracy);
    Ok(())
}
