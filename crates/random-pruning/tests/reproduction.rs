//! End-to-end behaviour of the reproduction: allocation as configured, masks fixed
//! through training, the smoke preset's report, and checkpoints that `eval` reloads
//! to the same accuracy.

use random_pruning::data::ImageData;
use random_pruning::experiment::{self, Plan};
use random_pruning::training::{self, Network, RunOptions};
use random_pruning::{AllocationKind, Error, Sparsity, TrainConfig};
use sparse_repro::cli::Preset;
use sparse_repro::models::Architecture;
use sparse_repro::progress::ProgressMode;
use sparse_repro::report::RunReport;

fn quiet() -> RunOptions {
    RunOptions {
        progress: ProgressMode::Quiet,
        label: "test".into(),
    }
}

fn digits() -> ImageData {
    ImageData::digits().unwrap().truncated(Some(400), Some(100))
}

fn sparse(density: f64, allocation: AllocationKind) -> Sparsity {
    Sparsity::Random {
        density,
        allocation,
        exact: true,
    }
}

fn config(sparsity: Sparsity, epochs: usize) -> TrainConfig {
    TrainConfig::builder(Architecture::Mlp {
        width: 32,
        depth: 2,
    })
    .sparsity(sparsity)
    .epochs(epochs)
    .batch_size(32)
    .learning_rate(0.05)
    .seed(3)
    .build()
    .unwrap()
}

#[test]
fn allocation_densities_are_as_configured() {
    let data = digits();
    // MLP 64 -> 32 -> 32 -> 10: 2048 + 1024 + 320 = 3392 prunable weights.
    for (kind, density) in [(AllocationKind::Uniform, 0.1), (AllocationKind::Erk, 0.2)] {
        let net = Network::new(&config(sparse(density, kind), 1), &data).unwrap();
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
}

#[test]
fn dense_runs_have_no_masks_and_masks_stay_fixed_in_sparse_runs() {
    let data = digits();
    let dense = Network::new(&config(Sparsity::Dense, 1), &data).unwrap();
    assert!(dense.params.is_empty());

    let cfg = config(sparse(0.1, AllocationKind::Erk), 3);
    let before: Vec<_> = Network::new(&cfg, &data)
        .unwrap()
        .params
        .iter()
        .map(|p| p.mask.clone())
        .collect();
    let (outcome, net) = training::train(&cfg, &data, &quiet()).unwrap();
    assert!(outcome.masks_unchanged);
    let after: Vec<_> = net.params.iter().map(|p| p.mask.clone()).collect();
    assert_eq!(
        before, after,
        "the mask must be the one drawn at initialisation"
    );
    for p in net.params.iter() {
        let w = p
            .var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (i, v) in w.iter().enumerate() {
            if !p.mask.is_active(i) {
                assert_eq!(*v, 0.0, "{} position {i} is pruned but non-zero", p.name);
            }
        }
    }
    assert!((outcome.masked_density - 0.1).abs() < 1e-3);
    assert!(outcome.inference_flops < outcome.dense_inference_flops * 0.2);
}

#[test]
fn same_seed_same_result() {
    let data = digits();
    let cfg = config(sparse(0.2, AllocationKind::Snip), 2);
    let (a, _) = training::train(&cfg, &data, &quiet()).unwrap();
    let (b, _) = training::train(&cfg, &data, &quiet()).unwrap();
    assert_eq!(a.test_accuracy, b.test_accuracy);
    assert_eq!(a.best_validation_accuracy, b.best_validation_accuracy);
    assert_eq!(a.test_ece, b.test_ece);
}

#[test]
fn invalid_configurations_are_rejected_naming_the_parameter() {
    let arch = Architecture::Mlp { width: 8, depth: 1 };
    let err = |b: random_pruning::config::TrainConfigBuilder| b.build().unwrap_err().to_string();
    assert!(err(TrainConfig::builder(arch.clone()).epochs(0)).contains("epochs"));
    assert!(err(TrainConfig::builder(arch.clone()).learning_rate(-1.0)).contains("learning_rate"));
    assert!(err(TrainConfig::builder(arch.clone()).momentum(1.0)).contains("momentum"));
    assert!(
        err(TrainConfig::builder(arch.clone()).validation_fraction(0.0))
            .contains("validation_fraction")
    );
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
        Err(Error::InvalidConfig { name: "width", .. })
    ));
}

#[test]
fn smoke_preset_writes_the_report_and_checkpoints_that_eval_reproduces() {
    let out = tempfile::tempdir().unwrap();
    let plan = Plan::new(Preset::Smoke, None).unwrap();
    let report = experiment::reproduce(&plan, &[0], None, out.path(), ProgressMode::Quiet).unwrap();

    // Every arm of every architecture is in the report, with the contract's files.
    assert_eq!(
        report.arms.len(),
        plan.architectures.len() * plan.sparsities.len()
    );
    let reloaded = RunReport::from_json_file(&out.path().join("report.json")).unwrap();
    assert_eq!(reloaded.arms.len(), report.arms.len());
    let ids: Vec<&str> = report.claims.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "gap-shrinks-with-width",
            "erk-beats-uniform",
            "exact-parameter-budget"
        ]
    );
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("PASS") || md.contains("FAIL"));
    assert!(out.path().join("accuracy_vs_density.svg").is_file());
    // Exact sampling meets every budget, counted from the checkpoints' masks.
    assert!(report.claims[2].passed, "{:?}", report.claims[2]);

    // `eval` reloads each checkpoint to exactly the accuracy the report holds.
    let mut checked = 0;
    for entry in std::fs::read_dir(out.path().join("checkpoints")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "safetensors") {
            continue;
        }
        let (spec, accuracy) = experiment::evaluate_checkpoint(&path, None).unwrap();
        assert_eq!(accuracy, spec.test_accuracy, "{}", path.display());
        let arm = report
            .arm(&experiment::arm_name(
                &spec.config.architecture,
                &spec.config.sparsity,
            ))
            .unwrap();
        assert_eq!(arm.seed_values("test_accuracy").unwrap(), vec![accuracy]);
        checked += 1;
    }
    assert_eq!(checked, report.arms.len());
}

#[test]
fn a_second_run_into_the_same_folder_resumes_from_the_finished_arms() {
    let out = tempfile::tempdir().unwrap();
    let plan = Plan::new(Preset::Smoke, None).unwrap();
    let first = experiment::reproduce(&plan, &[1], None, out.path(), ProgressMode::Quiet).unwrap();
    let ckpts = out.path().join("checkpoints");
    let stamp = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before: Vec<_> = std::fs::read_dir(&ckpts)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.clone(), stamp(&p))
        })
        .collect();
    let second = experiment::reproduce(&plan, &[1], None, out.path(), ProgressMode::Quiet).unwrap();
    for (path, time) in before {
        assert_eq!(stamp(&path), time, "{} was rewritten", path.display());
    }
    let accuracies = |r: &RunReport| -> Vec<Vec<f64>> {
        r.arms
            .iter()
            .map(|a| a.seed_values("test_accuracy").unwrap())
            .collect()
    };
    assert_eq!(accuracies(&first), accuracies(&second));
}

#[test]
fn a_tampered_checkpoint_is_an_error_not_a_panic() {
    let out = tempfile::tempdir().unwrap();
    let data = digits();
    let cfg = config(sparse(0.2, AllocationKind::Erk), 1);
    let (outcome, net) = training::train(&cfg, &data, &quiet()).unwrap();
    let spec = experiment::EvalSpec {
        config: cfg,
        dataset: random_pruning::data::DatasetName::Digits,
        train_limit: Some(400),
        test_limit: Some(100),
        test_accuracy: outcome.test_accuracy,
    };
    let path = out.path().join("m.safetensors");
    experiment::save_checkpoint(&path, &net, &spec).unwrap();
    let (_, acc) = experiment::evaluate_checkpoint(&path, None).unwrap();
    assert_eq!(acc, outcome.test_accuracy);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(experiment::evaluate_checkpoint(&path, None).is_err());
}

/// The ResNet path with calibration and OOD detection, on the fetched
/// Fashion-MNIST (in) and MNIST (out); CI fetches both.
#[test]
fn smoke_on_fashion_mnist_reports_calibration_and_ood_when_the_data_is_present() {
    use random_pruning::data::DatasetName;
    let plan = Plan::new(Preset::Smoke, Some(DatasetName::FashionMnist)).unwrap();
    if let Err(e) = plan.load_data(None) {
        println!("skipped: {e}");
        return;
    }
    assert_eq!(plan.ood_dataset, Some(DatasetName::Mnist));
    assert!(matches!(plan.architectures[0], Architecture::ResNet { .. }));
    let out = tempfile::tempdir().unwrap();
    let report = experiment::reproduce(&plan, &[0], None, out.path(), ProgressMode::Quiet).unwrap();
    for arm in &report.arms {
        let auroc = arm.metric("ood_auroc_mean").expect("an OOD AUROC per arm");
        assert!((0.0..=1.0).contains(&auroc), "{}: {auroc}", arm.name);
        let ece = arm.metric("test_ece_mean").unwrap();
        assert!((0.0..=1.0).contains(&ece), "{}: {ece}", arm.name);
    }
}
