//! The method's pieces against hand-computed values, and the smoke preset end to
//! end through the harness (report, resume, `eval` bit for bit).

use std::collections::BTreeMap;

use candle_core::Tensor;
use sparse_core::lr::LrSchedule;
use sparse_core::updater::UpdateContext;
use sparse_core::{ModelState, RunningAverage};
use sparse_data::images::ImageData;
use sparse_repro::cli::Preset;
use sparse_repro::harness::{self, DataPolicy, NoArgs};
use sparse_repro::splits::ImageSplits;
use sup_tickets::config::{DstMethod, Superposition, epoch_split};
use sup_tickets::paper::{SupTickets, preset_arms};
use sup_tickets::training::{RunOutcome, engine, network};
use sup_tickets::{Error, SupConfig};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn smoke(method: &str) -> Result<(SupConfig, ImageSplits), Error> {
    let arm = preset_arms(Preset::Smoke)?
        .into_iter()
        .find(|a| a.name.starts_with(method))
        .expect("smoke arm");
    let splits = ImageSplits::new(ImageData::digits()?, arm.config.data())?;
    Ok((arm.config, splits))
}

#[test]
fn the_epoch_split_is_the_official_float_arithmetic() {
    let split = |e, rho, c| {
        let s = epoch_split(e, rho, c);
        (s.pre, s.cyclic, s.tickets)
    };
    assert_eq!(split(250, 0.1, 8), (226, 24, 3)); // 25 cut to 24
    assert_eq!(split(30, 0.2, 2), (24, 6, 3));
    assert_eq!(split(100, 0.08, 2), (92, 8, 4)); // ImageNet's 92 + 8, cycle 2
    assert_eq!(split(20, 0.1, 4), (20, 0, 0)); // 2 < 4: no cycle
    // 0.7 x 10 is 7.000000000000001 in floating point: still one cycle of 7
    assert_eq!(split(10, 0.7, 7), (3, 7, 1));
}

#[test]
fn the_cyclic_rate_is_triangular_within_each_epoch() -> TestResult {
    let config = SupConfig::builder(
        sparse_repro::models::Architecture::Vgg { width: 4 },
        DstMethod::Rigl,
    )
    .epochs(30, 0.2, 2)
    .build()?;
    let lr = config.cyclic_schedule()?;
    // lr_1 = 0.001, lr_2 = 0.005, cycle 2, 4 batches per epoch: t = ((e mod 2) + j/4) / 2
    let at = |e: usize, j: usize| lr.lr_at((e % 2) as f64 + j as f64 / 4.0);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(at(0, 0), 0.001));
    assert!(close(at(0, 2), 0.003)); // t = 1/4
    assert!(close(at(1, 0), 0.005)); // t = 1/2, the middle of the cycle
    assert!(close(at(1, 3), 0.002)); // t = 7/8
    assert!(close(at(2, 0), 0.001)); // the next cycle
    let pre = config.pre_schedule()?;
    assert!(close(pre.lr_at(11.0), 0.1) && close(pre.lr_at(12.0), 0.01));
    assert!(close(pre.lr_at(18.0), 0.001));
    Ok(())
}

#[test]
fn caa_of_two_tickets_is_their_mean_batchnorm_included() -> TestResult {
    let t = |values: &[f32]| Tensor::new(values, &candle_core::Device::Cpu);
    let state = |w: &[f32], mean: &[f32]| -> Result<ModelState, Box<dyn std::error::Error>> {
        Ok(ModelState::from_tensors(&BTreeMap::from([
            ("conv.weight".to_string(), t(w)?),
            ("bn.running_mean".to_string(), t(mean)?),
        ]))?)
    };
    let previous = state(&[0.5, -1.0, 0.0], &[0.25, 1.0])?;
    let ticket = state(&[0.1, 0.0, 0.7], &[0.75, -1.0])?;
    let weight = Superposition::Caa.ticket_weight(1);
    assert_eq!(weight, 0.5);
    let superposed = ModelState::lerp(&previous, &ticket, weight)?;
    let mut average = RunningAverage::new();
    average.add(&previous)?;
    average.add(&ticket)?;
    let mean = average.mean()?;
    for name in ["conv.weight", "bn.running_mean"] {
        let a = superposed.get(name).unwrap().to_vec1::<f32>()?;
        let b = mean.get(name).unwrap().to_vec1::<f32>()?;
        assert_eq!(a, b, "{name}");
    }
    assert_eq!(
        superposed
            .get("bn.running_mean")
            .unwrap()
            .to_vec1::<f32>()?,
        vec![0.5, 0.0]
    );
    assert_eq!(Superposition::Caa.ticket_weight(3), 0.25);
    assert_eq!(Superposition::Cima { factor: 0.3 }.ticket_weight(3), 0.3);
    Ok(())
}

#[test]
fn re_exploration_keeps_the_largest_half_and_regrows_by_the_dense_gradient() -> TestResult {
    let (config, splits) = smoke("rigl")?;
    let mut net = network(&config, &splits, 3)?;
    let steps = splits.train.len().div_ceil(config.batch_size());
    let mut engine = engine(&config, &net, steps, 3)?;
    // A gradient with known values: loss = Σ w ⊙ c, so ∂loss/∂w = c everywhere.
    let mut loss = None;
    let mut expected = BTreeMap::new();
    for (i, p) in net.params.iter().enumerate() {
        let var = p.dense_var().expect("dense storage");
        let n = var.elem_count();
        let c: Vec<f32> = (0..n)
            .map(|j| ((j * 7919 + i * 31) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let w = p.dense_weight()?.flatten_all()?.to_vec1::<f32>()?;
        let active: Vec<usize> = p.mask.active_indices();
        let keep = active.len() - active.len().div_ceil(2);
        let mut by_magnitude = active.clone();
        by_magnitude.sort_by(|&a, &b| w[b].abs().total_cmp(&w[a].abs()).then(a.cmp(&b)));
        let survivors: Vec<usize> = by_magnitude[..keep].to_vec();
        let mut candidates: Vec<usize> = (0..n).filter(|j| !survivors.contains(j)).collect();
        candidates.sort_by(|&a, &b| c[b].abs().total_cmp(&c[a].abs()).then(a.cmp(&b)));
        let grown = &candidates[..active.len() - keep];
        let mut set: Vec<usize> = survivors.iter().chain(grown).copied().collect();
        set.sort_unstable();
        let old = w.clone();
        expected.insert(p.name.clone(), (set, old));
        let term = (var.as_tensor() * Tensor::from_vec(c, var.dims(), var.device())?)?.sum_all()?;
        loss = Some(match loss {
            None => term,
            Some(l) => (l + term)?,
        });
    }
    let grads = loss.expect("masked weights").backward()?;
    let ctx = UpdateContext {
        grads: Some(&grads),
        momentum: None,
    };
    engine.prune_and_regrow_now(1, 0.5, &mut net.params, &ctx)?;
    for p in net.params.iter() {
        let (set, old) = &expected[&p.name];
        let got: Vec<usize> = p.mask.active_indices();
        assert_eq!(&got, set, "{}", p.name);
        // Survivors and weights pruned and regrown keep their values (GrowthInit::Previous).
        let w = p.dense_weight()?.flatten_all()?.to_vec1::<f32>()?;
        for &j in set {
            assert_eq!(w[j], old[j], "{} at {j}", p.name);
        }
    }
    Ok(())
}

#[test]
fn smoke_reproduces_resumes_keeps_the_budget_and_eval_matches() -> TestResult {
    let root = tempfile::tempdir()?;
    let check =
        harness::check_resume::<SupTickets>(Preset::Smoke, &NoArgs {}, None, None, root.path(), 1)?;
    assert_eq!(check.taken_from_records, 1);
    let run = root.path().join("uninterrupted");
    let report = std::fs::read_to_string(run.join("report.md"))?;
    for claim in [
        "sup-beats-dst-granet",
        "sup-beats-best-ticket-rigl",
        "exact-budget-rigl",
    ] {
        assert!(report.contains(claim), "{claim} missing");
    }
    assert!(run.join("digits-stages.svg").is_file());
    for arm in ["granet-vgg-4", "rigl-vgg-4", "set-vgg-4"] {
        let record = std::fs::read_to_string(run.join(format!("records/digits-{arm}-seed1.json")))?;
        let value: serde_json::Value = serde_json::from_str(&record)?;
        let outcome: RunOutcome = serde_json::from_value(value["outcome"].clone())?;
        assert_eq!(outcome.tickets.len(), 3);
        assert_eq!(outcome.superpositions.len(), 3);
        for s in &outcome.superpositions {
            assert_eq!(s.nonzero, outcome.budget, "{arm}");
        }
        let checkpoint = run.join(format!("checkpoints/digits-{arm}-seed1.safetensors"));
        let evaluated = harness::evaluate::<SupTickets>(&checkpoint, None, DataPolicy::NoFetch)?;
        assert_eq!(evaluated.measured.to_bits(), evaluated.recorded.to_bits());
    }
    Ok(())
}

#[test]
fn configurations_are_checked_when_built() {
    let arch = || sparse_repro::models::Architecture::Vgg { width: 4 };
    let named = |r: Result<SupConfig, Error>, parameter: &str| {
        let message = r.expect_err("must be refused").to_string();
        assert!(message.contains(parameter), "{message}");
    };
    named(
        SupConfig::builder(arch(), DstMethod::Rigl)
            .epochs(20, 0.1, 4)
            .build(),
        "cycle_rate",
    );
    named(
        SupConfig::builder(arch(), DstMethod::Rigl)
            .density(0.0, true)
            .build(),
        "density",
    );
    named(
        SupConfig::builder(
            arch(),
            DstMethod::GraNet {
                initial_density: 0.5,
                final_prune_epoch: 240,
            },
        )
        .build(),
        "final_prune_epoch",
    );
    named(
        SupConfig::builder(
            arch(),
            DstMethod::GraNet {
                initial_density: 0.01,
                final_prune_epoch: 100,
            },
        )
        .build(),
        "initial_density",
    );
    named(
        SupConfig::builder(arch(), DstMethod::Rigl)
            .re_explore(Some(1.0))
            .build(),
        "re_explore",
    );
    named(
        SupConfig::builder(arch(), DstMethod::Rigl)
            .superposition(Superposition::Cima { factor: 0.0 })
            .build(),
        "factor",
    );
}
