//! The `smoke` preset end to end, the checkpoint round trip, and the `paper`
//! preset's configuration.

use candle_core::Device;
use dsn_tsc::Arm;
use dsn_tsc::experiment::{Plan, run};
use dsn_tsc::model::ModelSpec;
use dsn_tsc::training::{constraint_regions, eval_checkpoint};
use sparse_data::location::DataLocation;
use sparse_repro::cli::Preset;
use sparse_repro::progress::ProgressMode;
use sparse_repro::report::RunReport;
use sparse_repro::utc::UtcDateTime;

#[test]
fn smoke_run_writes_the_report_and_checkpoints_evaluate_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan::for_preset(Preset::Smoke, None).unwrap();
    let location = DataLocation::with_roots(dir.path(), dir.path());
    let report = run(
        &plan,
        &location,
        dir.path(),
        &UtcDateTime::now(),
        ProgressMode::Quiet,
    )
    .unwrap();
    assert!(dir.path().join("report.md").is_file());
    let back = RunReport::from_json_file(&dir.path().join("report.json")).unwrap();
    assert_eq!(back, report);
    assert_eq!(report.crate_name, "dsn-tsc");
    assert_eq!(report.arms.len(), 4);
    let ids: Vec<&str> = report.claims.iter().map(|c| c.id.as_str()).collect();
    for id in [
        "dsn-ge-static",
        "dsn-near-dense",
        "dsn-conv-flops-below-half",
        "dsn-explores-regions",
    ] {
        assert!(ids.contains(&id), "missing claim {id}: {ids:?}");
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("dsn-conv-flops-below-half"));
    // DSN's kernel convs hold the per-group budgets (about density · 2/3 of the
    // dense taps); every conv has the same output length, so the FLOP ratio is
    // Σ budgets / Σ dense weights
    let config = plan.config(Arm::Dsn, &plan.datasets[0], 1, 0).unwrap();
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
            let path = dir.path().join(path.as_str().unwrap());
            let result = eval_checkpoint(&path, &location, &Device::Cpu).unwrap();
            assert_eq!(result.evaluation.accuracy, *accuracy, "{}", path.display());
            assert_eq!(result.reported_accuracy, Some(*accuracy));
            assert_eq!(result.info.config.arm().name(), arm.name);
        }
    }
}

#[test]
fn paper_preset_validates_on_cpu() {
    let plan = Plan::for_preset(Preset::Paper, None).unwrap();
    assert_eq!(plan.validate().unwrap(), 7 * 4 * 3);
    assert_eq!(plan.univariate.channels(), 47);
    assert_eq!(plan.multivariate.channels(), 59);
    assert_eq!(plan.multivariate.density(), 0.1);
    assert!(plan.datasets.iter().all(|d| d.epochs == 1000));
    let quick = Plan::for_preset(Preset::Quick, None).unwrap();
    assert_eq!(quick.seeds, vec![0, 1, 2]);
    assert!(quick.datasets.iter().all(|d| d.epochs <= 300));
}

#[test]
fn quick_covers_the_issues_seven_sets_with_several_mask_updates() {
    let quick = Plan::for_preset(Preset::Quick, None).unwrap();
    let names: Vec<&str> = quick.datasets.iter().map(|d| d.dataset.as_str()).collect();
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
    for d in &quick.datasets {
        let config = quick.config(Arm::Dsn, d, 1, 0).unwrap();
        assert_eq!(config.epochs(), d.epochs);
        assert!(
            config.epochs() / config.update_every_epochs() >= 3,
            "{}: {} epochs, update every {}",
            d.dataset,
            config.epochs(),
            config.update_every_epochs()
        );
    }
    let acsf1 = quick
        .datasets
        .iter()
        .find(|d| d.dataset == "acsf1")
        .unwrap();
    let gunpoint = &quick.datasets[0];
    assert_eq!(
        quick
            .config(Arm::Dsn, acsf1, 1, 0)
            .unwrap()
            .update_every_epochs(),
        2
    );
    assert_eq!(
        quick
            .config(Arm::Dsn, gunpoint, 1, 0)
            .unwrap()
            .update_every_epochs(),
        5
    );
    // a per-set `ch_size` overrides the plan's for that set only
    let narrow = gunpoint.clone().with_channels(8);
    assert_eq!(
        quick.config(Arm::Dense, &narrow, 1, 0).unwrap().channels(),
        8
    );
    assert_eq!(
        quick.config(Arm::Dense, gunpoint, 1, 0).unwrap().channels(),
        16
    );
}
