//! The `smoke` preset end to end on the committed 10-node fixture, checkpoint round
//! trips, `eval --checkpoint`, and (when the shared data is present) Cora.

use std::path::PathBuf;
use std::process::Command;

use candle_core::Device;
use sparse_data::location::DataLocation;
use sparse_repro::cli::Preset;
use sparse_repro::progress::ProgressMode;
use sparse_repro::report::RunReport;
use sparse_repro::utc::UtcDateTime;
use untrained_gnn::experiment::{self, Plan};
use untrained_gnn::training::{self, NodeSplits};
use untrained_gnn::{DatasetName, Method, ModelKind, TrainConfig};

fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn smoke_preset_writes_report_claims_and_reloadable_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan::for_preset(Preset::Smoke, None).unwrap();
    let location = DataLocation::from_process(None);
    let report = experiment::run(
        &plan,
        &location,
        dir.path(),
        &UtcDateTime::now(),
        ProgressMode::Quiet,
    )
    .unwrap();
    // Every arm reported, with the contract's metrics, and the written report reads back.
    assert_eq!(report.arms.len(), plan.arms.len());
    let back = RunReport::from_json_file(&dir.path().join("report.json")).unwrap();
    assert_eq!(back, report);
    for arm in &report.arms {
        assert_eq!(
            arm.seed_values("test_accuracy").map(|v| v.len()),
            Some(2),
            "{}",
            arm.name
        );
        let acc = arm.metric("test_accuracy_mean").unwrap();
        assert!((0.0..=1.0).contains(&acc));
        assert!(arm.metric("density").is_some() && arm.metric("params").is_some());
    }
    let ood = report
        .arms
        .iter()
        .find(|a| a.name.ends_with("-ood1"))
        .unwrap();
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
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("ugt-beats-edge-popup-at-0.99"));
    assert!(md.contains("0.813"), "the GCN anchor is shown");
    assert!(dir.path().join("accuracy_vs_sparsity.svg").is_file());
    assert!(dir.path().join("runs.json").is_file());

    // Checkpoint round trip: scores + frozen weights come back and give the
    // reported per-seed accuracy exactly.
    let arm = report
        .arms
        .iter()
        .find(|a| a.name == "fixture-gcn-ugt-s0.90")
        .unwrap();
    let seeds = arm.extra["seeds"].as_array().unwrap();
    let seed = seeds[1].as_u64().unwrap();
    let path = dir.path().join(format!(
        "checkpoints/fixture-gcn-ugt-s0.90-seed{seed}.safetensors"
    ));
    let graph = DatasetName::Fixture.load(&location, &Device::Cpu).unwrap();
    let reloaded =
        training::load_checkpoint(&path, graph.num_features, graph.num_classes, &Device::Cpu)
            .unwrap();
    assert_eq!(reloaded.config.train.method(), Method::Ugt);
    assert_eq!(reloaded.config.train.seed(), seed);
    let splits = NodeSplits::new(&graph, &reloaded.config.train, &Device::Cpu).unwrap();
    let eval = training::evaluate(&reloaded.network, &graph, &splits, 0.9).unwrap();
    let reported = arm.seed_values("test_accuracy").unwrap()[1];
    assert_eq!(eval.test_accuracy, reported);
    assert_eq!(reloaded.recorded_test_accuracy, Some(reported));

    // The binary's `eval --checkpoint` prints the same number and confirms the match.
    let out = Command::new(env!("CARGO_BIN_EXE_untrained-gnn"))
        .current_dir(workspace_root())
        .args(["eval", "--checkpoint"])
        .arg(&path)
        .output()
        .unwrap();
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
    assert!(stdout.contains("matches"), "{stdout}");
}

#[test]
fn checkpoint_restores_scores_and_frozen_weights_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let location = DataLocation::from_process(None);
    let graph = DatasetName::Fixture.load(&location, &Device::Cpu).unwrap();
    let config = TrainConfig::builder(ModelKind::Gin, Method::EdgePopup)
        .hidden(8)
        .sparsity(0.5)
        .epochs(6)
        .seed(3)
        .build()
        .unwrap();
    let path = dir.path().join("gin.safetensors");
    let (net, outcome) = training::train(
        &config,
        &graph,
        &Device::Cpu,
        ProgressMode::Quiet,
        Some(&path),
    )
    .unwrap();
    let reloaded =
        training::load_checkpoint(&path, graph.num_features, graph.num_classes, &Device::Cpu)
            .unwrap();
    assert_eq!(reloaded.config.train, config);
    let dump = |n: &untrained_gnn::Network| -> Vec<(String, Vec<u32>)> {
        let data = n.varmap().data().lock().unwrap();
        let mut all: Vec<(String, Vec<u32>)> = data
            .iter()
            .map(|(k, v)| {
                let bits = v
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                (k.clone(), bits.into_iter().map(f32::to_bits).collect())
            })
            .collect();
        all.sort();
        all
    };
    let original = dump(&net);
    assert!(original.iter().any(|(k, _)| k.ends_with(".score")));
    assert_eq!(dump(&reloaded.network), original);
    let splits = NodeSplits::new(&graph, &config, &Device::Cpu).unwrap();
    let eval = training::evaluate(&reloaded.network, &graph, &splits, 0.5).unwrap();
    assert_eq!(eval, outcome.eval);
    // A file that is not a checkpoint is a clear error, not a panic.
    std::fs::write(dir.path().join("junk.safetensors"), b"junk").unwrap();
    assert!(training::read_checkpoint_config(&dir.path().join("junk.safetensors")).is_err());
}

#[test]
fn cora_ugt_learns_when_the_shared_data_is_present() {
    let location = DataLocation::from_process(None);
    let Ok(graph) = DatasetName::Cora.load(&location, &Device::Cpu) else {
        println!("skipped: Cora not found under the shared data directory");
        return;
    };
    assert_eq!(
        (graph.num_nodes, graph.num_features, graph.num_classes),
        (2708, 1433, 7)
    );
    let config = TrainConfig::builder(ModelKind::Gcn, Method::Ugt)
        .hidden(32)
        .sparsity(0.5)
        .epochs(30)
        .build()
        .unwrap();
    let (_, outcome) =
        training::train(&config, &graph, &Device::Cpu, ProgressMode::Quiet, None).unwrap();
    // Seven classes: chance is about 0.14-0.32 (the largest class); untrained
    // tickets of a random GCN reach far more within 30 epochs.
    assert!(
        outcome.eval.test_accuracy > 0.5,
        "{}",
        outcome.eval.test_accuracy
    );
    assert!((outcome.eval.density - 0.5).abs() < 1e-3);
}
