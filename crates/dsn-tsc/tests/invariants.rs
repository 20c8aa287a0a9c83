//! The method's invariants, checked at every optimizer step of real training runs
//! on the generated data set (no download needed).

use std::collections::BTreeMap;

use candle_core::Device;
use dsn_tsc::data::synthetic;
use dsn_tsc::model::ModelSpec;
use dsn_tsc::training::{constraint_regions, train_observed};
use dsn_tsc::{Arm, Growth, MaskInit, TrainConfig};
use sparse_core::Mask;
use sparse_repro::progress::ProgressMode;

fn config(arm: Arm, growth: Growth, init: MaskInit) -> TrainConfig {
    TrainConfig::builder()
        .arm(arm)
        .epochs(4)
        .channels(3)
        .depth(2)
        .kernel(9)
        .small_kernel(3)
        .density(0.4)
        .update_every_epochs(1)
        .growth(growth)
        .mask_init(init)
        .seed(5)
        .build()
        .unwrap()
}

/// Runs `config` and checks, after every step: per-group nnz equal to the initial
/// budgets, no active weight outside its region, weights zero where masked, and
/// masks changing only at update steps. Returns (update steps, steps with a change).
fn check_run(config: &TrainConfig) -> (usize, usize) {
    let data = synthetic(12, 6, 20, 1);
    let spec = ModelSpec::for_config(config, 1, 2).unwrap();
    let regions = constraint_regions(&spec, config.groups()).unwrap();
    let budgets: BTreeMap<String, Vec<usize>> = regions
        .iter()
        .map(|(n, r)| (n.clone(), r.budgets(config.density())))
        .collect();
    let mut previous: Option<BTreeMap<String, Mask>> = None;
    let (mut updates, mut changes) = (0, 0);
    let mut failures = Vec::new();
    train_observed(
        config,
        &data,
        &Device::Cpu,
        ProgressMode::Quiet,
        &mut |event| {
            let masks: BTreeMap<String, Mask> = event
                .params
                .iter()
                .map(|p| (p.name.clone(), p.mask.clone()))
                .collect();
            for p in event.params.iter() {
                let region = &regions[&p.name];
                if region.group_nnz(&p.mask) != budgets[&p.name] {
                    failures.push(format!(
                        "step {}: {} group nnz {:?}",
                        event.step,
                        p.name,
                        region.group_nnz(&p.mask)
                    ));
                }
                let allowed = region.allowed().unwrap();
                if p.mask
                    .active_indices()
                    .iter()
                    .any(|&i| !allowed.is_active(i))
                {
                    failures.push(format!(
                        "step {}: {} active outside its region",
                        event.step, p.name
                    ));
                }
                let w = p
                    .dense_weight()
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                if p.mask.inactive_indices().iter().any(|&i| w[i] != 0.0) {
                    failures.push(format!(
                        "step {}: {} non-zero masked weight",
                        event.step, p.name
                    ));
                }
            }
            let is_update = event.report.is_some_and(|r| r.prune_regrow);
            updates += usize::from(is_update);
            if let Some(prev) = &previous
                && *prev != masks
            {
                changes += 1;
                if !is_update {
                    failures.push(format!(
                        "step {}: masks changed outside an update step",
                        event.step
                    ));
                }
            }
            previous = Some(masks);
        },
    )
    .unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    (updates, changes)
}

#[test]
fn dsn_random_growth_keeps_budgets_and_regions() {
    // 12 cases, batch 2 -> 6 steps per epoch; an update every 6 steps
    let (updates, changes) = check_run(&config(Arm::Dsn, Growth::Random, MaskInit::RemainSort));
    assert_eq!(updates, 4);
    assert!(changes >= 3, "the topology moved at only {changes} updates");
}

#[test]
fn dsn_gradient_growth_and_random_init_keep_budgets_and_regions() {
    let (updates, changes) = check_run(&config(Arm::Dsn, Growth::Gradient, MaskInit::RemainRandom));
    assert_eq!(updates, 4);
    assert!(changes >= 1);
}

#[test]
fn static_masks_never_change() {
    assert_eq!(
        check_run(&config(Arm::Static, Growth::Random, MaskInit::RemainSort)),
        (0, 0)
    );
}

#[test]
fn static_and_dsn_start_from_the_same_mask_and_dsn_explores() {
    let data = synthetic(12, 6, 20, 1);
    let first_masks = |arm| {
        let mut first = None;
        let (_, outcome) = train_observed(
            &config(arm, Growth::Random, MaskInit::RemainRandom),
            &data,
            &Device::Cpu,
            ProgressMode::Quiet,
            &mut |e| {
                if first.is_none() {
                    first = Some(e.params.iter().map(|p| p.mask.clone()).collect::<Vec<_>>());
                }
            },
        )
        .unwrap();
        (first.unwrap(), outcome)
    };
    let (static_masks, static_outcome) = first_masks(Arm::Static);
    let (dsn_masks, dsn_outcome) = first_masks(Arm::Dsn);
    // step 1 is no update step, so these are the initial masks
    assert_eq!(static_masks, dsn_masks);
    // the share of region positions ever active grows for DSN only
    let rr = &dsn_outcome.region_rate;
    assert_eq!(rr.len(), 5);
    assert!(
        rr.windows(2).all(|w| w[1] >= w[0]) && rr[4] > rr[0],
        "{rr:?}"
    );
    // before training: the initial budgets over the region sizes
    assert_eq!(rr[0], static_outcome.region_rate[0]);
    assert!(static_outcome.region_rate.windows(2).all(|w| w[0] == w[1]));
    // density over the dense kernel: 0.4 · (3+6+9)/(3·9)
    assert!((dsn_outcome.conv_density - 0.4 * 18.0 / 27.0).abs() < 0.02);
}

#[test]
fn same_seed_same_result() {
    let data = synthetic(12, 6, 20, 1);
    let c = config(Arm::Dsn, Growth::Random, MaskInit::RemainRandom);
    let run = || {
        train_observed(&c, &data, &Device::Cpu, ProgressMode::Quiet, &mut |_| {})
            .unwrap()
            .1
    };
    let (a, b) = (run(), run());
    assert_eq!(a.train_losses, b.train_losses);
    assert_eq!(a.test_accuracy, b.test_accuracy);
    assert_eq!(a.region_rate, b.region_rate);
}
