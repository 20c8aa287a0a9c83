//! The `smoke` preset end to end on the harness (resume, report, checkpoints that
//! evaluate exactly, corrupted and foreign checkpoints refused), and the `quick`
//! and `paper` presets' configurations.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarMap;
use dsn_tsc::model::ModelSpec;
use dsn_tsc::paper::{ArmConfig, DsnTsc};
use dsn_tsc::training::constraint_regions;
use dsn_tsc::{Arm, TrainConfig};
use sparse_core::CheckpointMeta;
use sparse_core::checkpoint::{self, Sources};
use sparse_repro::cli::Preset;
use sparse_repro::harness::{self, DataPolicy, NoArgs, Paper};

/// The name of one tensor of a safetensors file and the offset of its first data byte.
fn first_weight(path: &Path) -> (String, usize) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let (name, entry) = header
        .as_object()
        .unwrap()
        .iter()
        .find(|(name, entry)| {
            name.contains("weight")
                && !name.starts_with("mask")
                && entry["data_offsets"][1].as_u64() > entry["data_offsets"][0].as_u64()
        })
        .expect("a weight tensor");
    let start = entry["data_offsets"][0].as_u64().unwrap() as usize;
    (name.clone(), 8 + n + start)
}

#[test]
fn smoke_resumes_and_its_checkpoints_evaluate_exactly_and_are_guarded() {
    let root = tempfile::tempdir().unwrap();
    let check =
        harness::check_resume::<DsnTsc>(Preset::Smoke, &NoArgs {}, None, None, root.path(), 3)
            .unwrap();
    assert_eq!(check.trained_before_interruption, 3);
    assert_eq!(check.taken_from_records, 3);
    let report = &check.uninterrupted;
    let dir = root.path().join("uninterrupted");
    assert!(dir.join("report.md").is_file());
    assert!(dir.join("region_rate.svg").is_file());
    assert_eq!(report.crate_name, "dsn-tsc");
    assert_eq!(report.arms.len(), 4);
    // the report names the data set as loaded, not as the plan writes its source
    assert!(report.arms.iter().all(|a| a.dataset == "Synthetic"));
    assert!(report.extra.contains_key("sparse_conv_kernel"));
    let dsn = &report.arms[3];
    for metric in ["params", "density", "conv_flops", "region_rate_final"] {
        assert!(dsn.metric(metric).is_some(), "dsn lacks {metric}");
    }
    let ids: Vec<&str> = report.claims.iter().map(|c| c.id.as_str()).collect();
    for id in [
        "dsn-ge-static",
        "dsn-near-dense",
        "dsn-conv-flops-below-half",
        "dsn-explores-regions",
    ] {
        assert!(ids.contains(&id), "missing claim {id}: {ids:?}");
    }
    // DSN's kernel convs hold the per-group budgets (about density · 2/3 of the
    // dense taps); every conv has the same output length, so the FLOP ratio is
    // Σ budgets / Σ dense weights
    let plan = DsnTsc::plan(Preset::Smoke, &NoArgs {}).unwrap();
    let config = plan.arms[3].config.train_config(1, 0).unwrap();
    assert_eq!(config.arm(), Arm::Dsn);
    let spec = ModelSpec::for_config(&config, 1, 2).unwrap();
    let (mut nnz, mut numel) = (0, 0);
    for region in constraint_regions(&spec, config.groups()).unwrap().values() {
        nnz += region.budgets(config.density()).iter().sum::<usize>();
        numel += region.shape().iter().product::<usize>();
    }
    let flops = report
        .claims
        .iter()
        .find(|c| c.id == "dsn-conv-flops-below-half")
        .unwrap();
    let expected = nnz as f64 / numel as f64;
    assert!(
        flops.passed && (flops.values["dsn_over_dense"] - expected).abs() < 1e-12,
        "{flops:?} vs {expected}"
    );

    // every arm's checkpoint reproduces its reported per-seed accuracy exactly
    for arm in &report.arms {
        let accuracies = arm.seed_values("test_accuracy").unwrap();
        let paths = arm.extra["checkpoints"].as_array().unwrap();
        assert_eq!(paths.len(), accuracies.len());
        for (path, accuracy) in paths.iter().zip(&accuracies) {
            let path = dir.join(path.as_str().unwrap());
            let evaluated = harness::evaluate::<DsnTsc>(&path, None, DataPolicy::NoFetch).unwrap();
            assert_eq!(evaluated.measured.to_bits(), accuracy.to_bits());
            assert_eq!(evaluated.recorded.to_bits(), accuracy.to_bits());
            assert_eq!(evaluated.arm.name, arm.name);
            assert_eq!(checkpoint::read_meta(&path).unwrap().crate_name, "dsn-tsc");
        }
    }

    // one flipped byte of tensor data: refused, naming the tensor
    let good = dir.join(report.arms[3].extra["checkpoints"][0].as_str().unwrap());
    let bad = root.path().join("flipped.safetensors");
    let mut bytes = std::fs::read(&good).unwrap();
    let (tensor, offset) = first_weight(&good);
    bytes[offset] ^= 0x01;
    std::fs::write(&bad, &bytes).unwrap();
    let err = harness::evaluate::<DsnTsc>(&bad, None, DataPolicy::NoFetch)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&tensor), "{err} does not name {tensor}");
}

#[test]
fn a_checkpoint_of_another_crate_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.safetensors");
    let varmap = VarMap::new();
    varmap
        .get(
            4,
            "w",
            candle_nn::Init::Const(1.0),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
    let meta = CheckpointMeta::new("random-pruning", "0.1.0", serde_json::json!({}), 0, 0);
    checkpoint::save(&path, &varmap, Sources::default(), &meta).unwrap();
    let err = harness::evaluate::<DsnTsc>(&path, None, DataPolicy::NoFetch)
        .unwrap_err()
        .to_string();
    assert!(err.contains("random-pruning"), "{err}");
}

#[test]
fn paper_preset_validates_on_cpu() {
    let plan = DsnTsc::plan(Preset::Paper, &NoArgs {}).unwrap();
    assert_eq!(plan.arms.len(), 7 * 4);
    assert_eq!(plan.default_seeds, 3);
    let first = &plan.arms[0].config;
    assert_eq!(first.univariate().channels(), 47);
    assert_eq!(first.multivariate().channels(), 59);
    assert_eq!(first.multivariate().density(), 0.1);
    assert_eq!(first.train_config(6, 0).unwrap().channels(), 59);
    assert!(plan.arms.iter().all(|a| a.config.epochs() == 1000));
    let quick = DsnTsc::plan(Preset::Quick, &NoArgs {}).unwrap();
    assert_eq!(quick.default_seeds, 3);
    assert!(quick.arms.iter().all(|a| a.config.epochs() <= 300));
}

#[test]
fn quick_covers_the_issues_seven_sets_with_several_mask_updates() {
    let quick = DsnTsc::plan(Preset::Quick, &NoArgs {}).unwrap();
    let names = harness::plan_datasets(&quick);
    assert_eq!(
        names,
        [
            "gunpoint",
            "italypowerdemand",
            "arrowhead",
            "osuleaf",
            "acsf1",
            "basicmotions",
            "japanesevowels"
        ]
    );
    // every data set's catalogue entry is checked before the first arm trains
    for name in &names {
        assert_eq!(DsnTsc::data_needs(name), vec![name.clone()]);
    }
    for arm in quick.arms.iter().filter(|a| a.config.arm() == Arm::Dsn) {
        let config = arm.config.train_config(1, 0).unwrap();
        assert_eq!(config.epochs(), arm.config.epochs());
        assert!(
            config.epochs() / config.update_every_epochs() >= 3,
            "{}: {} epochs, update every {}",
            arm.dataset,
            config.epochs(),
            config.update_every_epochs()
        );
    }
    let dsn_on = |dataset: &str| {
        quick
            .arms
            .iter()
            .find(|a| a.dataset == dataset && a.config.arm() == Arm::Dsn)
            .unwrap()
            .config
            .train_config(1, 0)
            .unwrap()
    };
    // the long series train as long as the others and update on the same period
    assert_eq!(dsn_on("acsf1").epochs(), 60);
    assert_eq!(dsn_on("osuleaf").epochs(), 60);
    assert_eq!(dsn_on("acsf1").update_every_epochs(), 5);
    assert_eq!(dsn_on("gunpoint").update_every_epochs(), 5);
    // a per-set `ch_size` overrides the preset's for that set only
    let gunpoint = dsn_tsc::paper::quick_datasets()[0].clone();
    let base = TrainConfig::builder()
        .channels(16)
        .depth(3)
        .build()
        .unwrap();
    let narrow =
        ArmConfig::new(Arm::Dense, &gunpoint.clone().with_channels(8), &base, &base).unwrap();
    assert_eq!(narrow.train_config(1, 0).unwrap().channels(), 8);
    let wide = ArmConfig::new(Arm::Dense, &gunpoint, &base, &base).unwrap();
    assert_eq!(wide.train_config(1, 0).unwrap().channels(), 16);
    // and so does a per-set mask update period
    let frequent = ArmConfig::new(
        Arm::Dsn,
        &gunpoint.clone().with_update_every_epochs(2),
        &base,
        &base,
    )
    .unwrap();
    assert_eq!(
        frequent.train_config(1, 0).unwrap().update_every_epochs(),
        2
    );
    // a configuration that is invalid for either kind of data is refused up front
    assert!(
        ArmConfig::new(
            Arm::Dsn,
            &gunpoint.with_update_every_epochs(0),
            &base,
            &base
        )
        .is_err()
    );
}
