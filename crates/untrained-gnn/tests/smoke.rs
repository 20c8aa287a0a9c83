//! The `smoke` preset end to end through sparse-repro's harness on the committed
//! 10-node fixture (report, claims, resume), its checkpoints (crate name, masks,
//! `eval`, corruption and foreign checkpoints refused), a bit-exact round trip, and
//! (when the shared data is present) Cora.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::Device;
use sparse_core::checkpoint::{self, Sources};
use sparse_repro::cli::Preset;
use sparse_repro::harness::{self, DataPolicy, Paper, RunContext};
use sparse_repro::progress::ProgressMode;
use untrained_gnn::paper::{self, SubsetArgs, UntrainedGnn};
use untrained_gnn::training::{self, NodeSplits};
use untrained_gnn::{DatasetName, Method, ModelKind, Network, TrainConfig};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The byte range of `tensor`'s data in a safetensors file.
fn tensor_bytes(
    path: &Path,
    tensor: &str,
) -> Result<std::ops::Range<usize>, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[..8]);
    let header_len = u64::from_le_bytes(len) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len])?;
    let offsets = header[tensor]["data_offsets"]
        .as_array()
        .ok_or_else(|| format!("no tensor {tensor}"))?;
    let start = 8 + header_len + offsets[0].as_u64().ok_or("offset")? as usize;
    let end = 8 + header_len + offsets[1].as_u64().ok_or("offset")? as usize;
    Ok(start..end)
}

/// The tensor names in a safetensors file's header.
fn tensor_names(path: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[..8]);
    let header_len = u64::from_le_bytes(len) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + header_len])?;
    Ok(header
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect())
}

#[test]
fn smoke_preset_reports_resumes_and_writes_checkable_checkpoints() -> TestResult {
    let root = tempfile::tempdir()?;
    let check = harness::check_resume::<UntrainedGnn>(
        Preset::Smoke,
        &SubsetArgs::default(),
        None,
        None,
        root.path(),
        5,
    )?;
    assert_eq!(check.trained_before_interruption, 5);
    assert_eq!(check.taken_from_records, 5);
    let report = &check.uninterrupted;
    let run = root.path().join("uninterrupted");
    let plan = UntrainedGnn::plan(Preset::Smoke, &SubsetArgs::default())?;

    // Every arm reported, with the per-seed metrics and the paper's own numbers.
    assert_eq!(report.arms.len(), plan.arms.len());
    assert_eq!(report.seeds, vec![5300, 2100], "Cora's official seeds");
    for arm in &report.arms {
        assert_eq!(
            arm.seed_values("test_accuracy").map(|v| v.len()),
            Some(2),
            "{}",
            arm.name
        );
        let acc = arm.metric("test_accuracy_mean").ok_or("no accuracy")?;
        assert!((0.0..=1.0).contains(&acc));
        for name in [
            "mad_mean",
            "best_epoch_mean",
            "density",
            "params",
            "sparsity",
        ] {
            assert!(arm.metric(name).is_some(), "{} lacks {name}", arm.name);
        }
    }
    let ood = report
        .arms
        .iter()
        .find(|a| a.name.ends_with("-ood1"))
        .ok_or("no OOD arm")?;
    assert!(ood.metric("ood_auroc_mean").is_some());
    // The three claims (one deep pair in smoke), each decided from its stored values.
    let ids: Vec<&str> = report.claims.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "ugt-matches-dense-at-0.9",
            "ugt-beats-edge-popup-at-0.99",
            "deep-gcn4-ugt-beats-dense-and-smooths-less"
        ]
    );
    let first = &report.claims[0];
    assert_eq!(
        first.passed,
        first.values["ugt_s0.90"] >= first.values["dense"] - first.values["margin"]
    );
    let md = std::fs::read_to_string(run.join("report.md"))?;
    assert!(md.contains("ugt-beats-edge-popup-at-0.99"));
    assert!(md.contains("0.813"), "the GCN anchor is shown");
    assert!(run.join("accuracy_vs_sparsity.svg").is_file());
    assert!(run.join("records").is_dir());
    assert!(!run.join("runs.json").exists(), "superseded by records/");

    // A checkpoint: this crate's, masks under `mask/`, nothing under `extra/`.
    let arm = plan
        .arms
        .iter()
        .find(|a| a.name == "fixture-gcn-ugt-s0.90")
        .ok_or("no UGT arm")?;
    let reported = report
        .arms
        .iter()
        .find(|a| a.name == arm.name)
        .and_then(|a| a.seed_values("test_accuracy"))
        .ok_or("no per-seed accuracy")?[1];
    let path = run
        .join(harness::CHECKPOINTS)
        .join(format!("{}.safetensors", arm.file_stem(2100)));
    let meta = checkpoint::read_meta(&path)?;
    assert_eq!(meta.crate_name, "untrained-gnn");
    assert_eq!(meta.dataset.as_deref(), Some("fixture"));
    let names = tensor_names(&path)?;
    assert!(names.iter().all(|n| !n.starts_with("extra/")), "{names:?}");
    let masks = checkpoint::load_masks(&path)?;
    assert_eq!(
        masks.keys().cloned().collect::<Vec<_>>(),
        vec!["l00.lin", "l01.lin"]
    );
    let kept: usize = masks.values().map(|m| m.nnz()).sum();
    let total: usize = masks.values().map(|m| m.numel()).sum();
    assert!(
        (kept as f64 / total as f64 - 0.1).abs() < 0.05,
        "{kept}/{total}"
    );

    // `eval` recomputes the recorded accuracy exactly.
    let evaluated = harness::evaluate::<UntrainedGnn>(&path, None, DataPolicy::NoFetch)?;
    assert_eq!(evaluated.measured.to_bits(), reported.to_bits());
    assert_eq!(evaluated.recorded.to_bits(), reported.to_bits());
    assert_eq!(evaluated.seed, 2100);

    // One flipped byte of a score tensor: refused, naming the tensor.
    let flipped = root.path().join("flipped.safetensors");
    std::fs::copy(&path, &flipped)?;
    let range = tensor_bytes(&flipped, "l01.lin.score")?;
    let mut bytes = std::fs::read(&flipped)?;
    bytes[range.start + 3] ^= 0x01;
    std::fs::write(&flipped, bytes)?;
    let err = harness::evaluate::<UntrainedGnn>(&flipped, None, DataPolicy::NoFetch)
        .expect_err("a corrupted checkpoint must be refused");
    assert!(err.to_string().contains("l01.lin.score"), "{err}");

    // The same model written under another crate's name: refused, naming it.
    let stored = harness::read_stored::<UntrainedGnn>(&path)?;
    let graph = UntrainedGnn::load(&stored.arm.dataset, None)?;
    let config = stored.arm.config.to_builder().seed(stored.seed).build()?;
    let splits = NodeSplits::new(&graph, &config, &Device::Cpu)?;
    let net = Network::new(&config, graph.num_features, splits.classes, &Device::Cpu)?;
    let loaded = harness::load_model(&path, net.varmap())?;
    let mut foreign = stored.meta.clone();
    foreign.crate_name = "random-pruning".into();
    let foreign_path = root.path().join("foreign.safetensors");
    checkpoint::save(
        &foreign_path,
        net.varmap(),
        Sources {
            masks: Some(&loaded.masks),
            optimizer: None,
            extra: None,
        },
        &foreign,
    )?;
    let err = harness::evaluate::<UntrainedGnn>(&foreign_path, None, DataPolicy::NoFetch)
        .expect_err("another crate's checkpoint must be refused");
    assert!(err.to_string().contains("random-pruning"), "{err}");

    // The binary's `eval --checkpoint` prints the same number, and fails on the
    // corrupted file.
    let eval = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_untrained-gnn"))
            .current_dir(workspace_root())
            .args(["eval", "--no-fetch", "--checkpoint"])
            .arg(file)
            .output()
    };
    let out = eval(&path)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("test_accuracy {reported}")),
        "{stdout}"
    );
    assert!(!eval(&flipped)?.status.success());
    Ok(())
}

#[test]
fn spread_subset_runs_claim_one_arms_and_reports_their_extremes() -> TestResult {
    let root = tempfile::tempdir()?;
    let spread = SubsetArgs {
        subset: Some(paper::Subset::Spread),
    };
    // Three seeds, interrupted after two arm-seeds and resumed: identical reports.
    let check = harness::check_resume::<UntrainedGnn>(
        Preset::Smoke,
        &spread,
        Some(3),
        None,
        root.path(),
        2,
    )?;
    let report = &check.uninterrupted;
    let names: Vec<&str> = report.arms.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec!["fixture-gcn-ugt-s0.90", "fixture-gcn-dense"]);
    for arm in &report.arms {
        let values = arm
            .seed_values("test_accuracy")
            .ok_or("no per-seed values")?;
        assert_eq!(values.len(), 3, "{}", arm.name);
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(arm.metric("test_accuracy_min"), Some(min), "{}", arm.name);
        assert_eq!(arm.metric("test_accuracy_max"), Some(max), "{}", arm.name);
        let mean = values.iter().sum::<f64>() / 3.0;
        let pop = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        let reported = arm
            .metric("test_accuracy_pop_std")
            .ok_or("no population std")?;
        assert!((reported - pop).abs() < 1e-12, "{}", arm.name);
    }
    // Only the claim whose arms ran, stating what it compares.
    assert_eq!(report.claims.len(), 1);
    let claim = &report.claims[0];
    assert_eq!(claim.id, "ugt-matches-dense-at-0.9");
    assert!(
        claim.statement.contains("over this run's 3 seeds"),
        "{}",
        claim.statement
    );
    assert_eq!(
        claim.passed,
        claim.values["ugt_s0.90"] >= claim.values["dense"] - claim.values["margin"]
    );
    let run = root.path().join("uninterrupted");
    assert!(
        !run.join("accuracy_vs_sparsity.svg").exists(),
        "no sweep, no plot"
    );
    // A whole-preset run refuses the spread run's directory (another configuration).
    let options = harness::ReproduceOptions {
        out: Some(run.clone()),
        ..harness::ReproduceOptions::new(Preset::Smoke)
    };
    assert!(harness::reproduce::<UntrainedGnn>(&options, &SubsetArgs::default()).is_err());
    Ok(())
}

#[test]
fn trained_model_round_trips_scores_and_frozen_weights_bit_exactly() -> TestResult {
    let dir = tempfile::tempdir()?;
    let graph = UntrainedGnn::load("fixture", None)?;
    let config = TrainConfig::builder(ModelKind::Gin, Method::EdgePopup)
        .hidden(8)
        .sparsity(0.5)
        .epochs(6)
        .build()?;
    let arm = paper::arm(DatasetName::Fixture, config);
    let context = RunContext {
        progress: ProgressMode::Quiet,
        label: "round trip".into(),
        device: Device::Cpu,
        artifacts: None,
    };
    let trained = UntrainedGnn::train(&arm, &graph, 3, &context)?;
    assert_eq!(trained.step, trained.outcome.best_epoch as u64);
    assert_eq!(trained.outcome.config.seed(), 3);
    // The score subnetwork's masks at the target sparsity go to the checkpoint.
    let kept: usize = trained.masks.values().map(|m| m.nnz()).sum();
    let total: usize = trained.masks.values().map(|m| m.numel()).sum();
    assert_eq!(
        kept as f64 / total as f64,
        trained.outcome.eval.density,
        "the checkpoint's masks are the evaluated ones"
    );
    let metrics = UntrainedGnn::metrics(&trained.outcome);
    let path = dir.path().join("gin.safetensors");
    harness::save_model::<UntrainedGnn>(&path, &arm, 3, &trained, &metrics)?;

    let dump = |varmap: &candle_nn::VarMap| -> Vec<(String, Vec<u32>)> {
        let data = varmap.data().lock().expect("lock");
        let mut all: Vec<(String, Vec<u32>)> = data
            .iter()
            .map(|(k, v)| {
                let bits = v
                    .as_tensor()
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .expect("f32 tensor");
                (k.clone(), bits.into_iter().map(f32::to_bits).collect())
            })
            .collect();
        all.sort();
        all
    };
    let config = arm.config.to_builder().seed(3).build()?;
    let splits = NodeSplits::new(&graph, &config, &Device::Cpu)?;
    let fresh = Network::new(&config, graph.num_features, splits.classes, &Device::Cpu)?;
    let original = dump(&trained.varmap);
    assert!(original.iter().any(|(k, _)| k.ends_with(".score")));
    assert_ne!(dump(fresh.varmap()), original, "training moved the scores");
    harness::load_model(&path, fresh.varmap())?;
    assert_eq!(dump(fresh.varmap()), original);
    let eval = training::evaluate(&fresh, &graph, &splits, 0.5)?;
    assert_eq!(eval, trained.outcome.eval);
    let measured = UntrainedGnn::evaluate(&arm, &graph, 3, &path)?;
    assert_eq!(
        measured["test_accuracy"].to_bits(),
        metrics["test_accuracy"].to_bits()
    );
    // A file that is not a checkpoint is a clear error, not a panic.
    std::fs::write(dir.path().join("junk.safetensors"), b"junk")?;
    assert!(harness::read_stored::<UntrainedGnn>(&dir.path().join("junk.safetensors")).is_err());
    Ok(())
}

#[test]
fn cora_ugt_learns_when_the_shared_data_is_present() -> TestResult {
    let Ok(graph) = UntrainedGnn::load("cora", None) else {
        println!("skipped: Cora not found under the shared data directory");
        return Ok(());
    };
    assert_eq!(
        (graph.num_nodes, graph.num_features, graph.num_classes),
        (2708, 1433, 7)
    );
    let config = TrainConfig::builder(ModelKind::Gcn, Method::Ugt)
        .hidden(32)
        .sparsity(0.5)
        .epochs(30)
        .build()?;
    let (_, outcome) = training::train(&config, &graph, &Device::Cpu, ProgressMode::Quiet)?;
    // Seven classes: chance is about 0.14-0.32 (the largest class); untrained
    // tickets of a random GCN reach far more within 30 epochs.
    assert!(
        outcome.eval.test_accuracy > 0.5,
        "{}",
        outcome.eval.test_accuracy
    );
    assert!((outcome.eval.density - 0.5).abs() < 1e-3);
    Ok(())
}
