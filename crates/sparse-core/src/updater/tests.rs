use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::engine::{telling_positions, to_host};
use super::*;
use crate::error::{Result, SparseError};
use crate::grow::{GrowthInit, GrowthMethod, GrowthRegion};
use crate::mask::Mask;
use crate::prune::GradualPruning;
use crate::registry::SparseParams;
use crate::schedule::DeathRate;
use crate::schedule::PruningWindow;
use crate::state::{MaskableState, MomentumSource};
use candle_core::{Device, Var};
use rand::Rng;
use std::cell::Cell;

fn random_tensor(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn random_mask(rng: &mut ChaCha8Rng, shape: &[usize], density: f64) -> Mask {
    let n: usize = shape.iter().product();
    let bits = (0..n)
        .map(|_| u8::from(rng.random::<f64>() < density))
        .collect();
    Mask::from_bits(shape, bits).unwrap()
}

/// Two-layer linear model with plain SGD; returns the masks after every step
/// and the reports.
fn train(
    config: DynamicSparsity,
    steps: usize,
) -> (Vec<BTreeMap<String, Mask>>, Vec<UpdateReport>) {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let w1 = Var::from_tensor(&random_tensor(&mut rng, &[8, 6])).unwrap();
    let w2 = Var::from_tensor(&random_tensor(&mut rng, &[3, 8])).unwrap();
    let mut params = SparseParams::new();
    params
        .insert("l1", w1.clone(), random_mask(&mut rng, &[8, 6], 0.4))
        .unwrap();
    params
        .insert("l2", w2.clone(), random_mask(&mut rng, &[3, 8], 0.5))
        .unwrap();
    let x = random_tensor(&mut rng, &[16, 6]);
    let y = random_tensor(&mut rng, &[16, 3]);
    let mut engine = SparsityEngine::new(config, &params).unwrap();
    let (mut masks, mut reports) = (Vec::new(), Vec::new());
    for step in 1..=steps {
        let h = x
            .matmul(&w1.as_tensor().t().unwrap())
            .unwrap()
            .relu()
            .unwrap();
        let out = h.matmul(&w2.as_tensor().t().unwrap()).unwrap();
        let loss = out.sub(&y).unwrap().sqr().unwrap().mean_all().unwrap();
        let grads = loss.backward().unwrap();
        for w in [&w1, &w2] {
            let g = grads.get(w.as_tensor()).unwrap();
            w.set(&w.as_tensor().sub(&(g * 0.1).unwrap()).unwrap())
                .unwrap();
        }
        let report = engine
            .after_optimizer_step(step, &mut params, &grads, None)
            .unwrap();
        masks.push(
            params
                .iter()
                .map(|p| (p.name.clone(), p.mask.clone()))
                .collect(),
        );
        for p in params.iter() {
            let w = to_host(&p.dense_weight().unwrap()).unwrap();
            for (i, v) in w.iter().enumerate() {
                assert!(
                    p.mask.is_active(i) || *v == 0.0,
                    "step {step}: masked weight non-zero"
                );
            }
        }
        reports.push(report);
    }
    (masks, reports)
}

#[test]
fn rigl_training_loop_keeps_the_invariants() {
    let config = DynamicSparsity::rigl(3, 30).seed(1).build().unwrap();
    let (masks, reports) = train(config.clone(), 30);
    let nnz0: Vec<usize> = masks[0].values().map(Mask::nnz).collect();
    let mut changed_updates = 0;
    for (s, report) in reports.iter().enumerate() {
        let step = s + 1;
        let nnz: Vec<usize> = masks[s].values().map(Mask::nnz).collect();
        assert_eq!(nnz, nnz0, "per-layer nnz constant with exact growth");
        assert_eq!(report.prune_regrow, step % 3 == 0);
        if s > 0 && step % 3 != 0 {
            assert_eq!(
                masks[s],
                masks[s - 1],
                "mask changed off an update step {step}"
            );
        }
        if step % 3 == 0 {
            for l in &report.layers {
                assert_eq!(l.pruned, l.grown, "{}", l.name);
                assert!(l.pruned > 0, "death rate > 0 removes something");
            }
            if s > 0 && masks[s] != masks[s - 1] {
                changed_updates += 1;
            }
        }
        if s > 0 {
            assert!(report.itop_rate >= reports[s - 1].itop_rate);
        }
    }
    assert!(changed_updates > 0, "RigL never changed the topology");
    assert!(reports.last().unwrap().itop_rate > reports[0].itop_rate);
    // deterministic: same seed, same masks
    let (again, _) = train(config, 30);
    assert_eq!(again, masks);
}

#[test]
fn static_sparse_never_changes_masks() {
    let config = DynamicSparsity::static_sparse().build().unwrap();
    let (masks, reports) = train(config, 6);
    assert!(masks.windows(2).all(|w| w[0] == w[1]));
    assert!(reports.iter().all(|r| r.layers.is_empty()));
}

#[test]
fn gradual_magnitude_reaches_the_final_density() {
    let gp = GradualPruning::new(1.0, 0.2, 2, 8, 2, true)
        .unwrap()
        .with_rule(crate::prune::KeepRule::Exact)
        .with_window(PruningWindow::ReachesFinal);
    let config = DynamicSparsity::gradual_magnitude(gp).build().unwrap();
    let (masks, reports) = train(config, 10);
    // l1 (48) + l2 (24) = 72 weights; keep floor(72 * 0.2) = 14 at step 8
    let total = |m: &BTreeMap<String, Mask>| m.values().map(Mask::nnz).sum::<usize>();
    assert_eq!(total(&masks[7]), 14);
    assert_eq!(reports[7].gradual_density, Some(0.2));
    assert!(masks.windows(2).all(|w| total(&w[1]) <= total(&w[0])));
}

/// GraNet's official `pruning()` on i0 = 1, i1 = 4: prunes at steps 2, 4, 6 and
/// stops one iteration short of the final density.
#[test]
fn gradual_magnitude_official_window_stops_one_iteration_early() {
    let gp = GradualPruning::new(1.0, 0.2, 2, 8, 2, true)
        .unwrap()
        .with_rule(crate::prune::KeepRule::Exact);
    assert_eq!(gp.window, PruningWindow::Official);
    let config = DynamicSparsity::gradual_magnitude(gp).build().unwrap();
    let (masks, reports) = train(config, 10);
    let total = |m: &BTreeMap<String, Mask>| m.values().map(Mask::nnz).sum::<usize>();
    let pruning: Vec<usize> = reports
        .iter()
        .filter(|r| r.gradual_density.is_some())
        .map(|r| r.step)
        .collect();
    assert_eq!(pruning, vec![2, 4, 6]);
    // floor(72 · (0.2 + 0.8 / 27)) = floor(16.53) = 16 from step 6 on
    let end = 0.2 + 0.8 / 27.0;
    assert!((reports[5].gradual_density.unwrap() - end).abs() < 1e-12);
    assert_eq!(total(&masks[5]), 16);
    assert_eq!(masks[9], masks[5]);
}

/// GraNet runs no prune-and-regrow before `init_prune_epoch`; the gate is the
/// preset's default and `start_step(None)` lifts it.
#[test]
fn granet_preset_gates_prune_and_regrow_until_pruning_starts() {
    let gp = GradualPruning::new(0.5, 0.2, 4, 10, 2, true).unwrap();
    let official = DynamicSparsity::granet(gp, 2, 12).build().unwrap();
    assert_eq!(official.start_step(), Some(4));
    let (_, reports) = train(official, 8);
    let regrow: Vec<usize> = reports
        .iter()
        .filter(|r| r.prune_regrow)
        .map(|r| r.step)
        .collect();
    assert_eq!(regrow, vec![4, 6, 8]);
    let ungated = DynamicSparsity::granet(gp, 2, 12)
        .start_step(None)
        .build()
        .unwrap();
    let (_, reports) = train(ungated, 8);
    let regrow: Vec<usize> = reports
        .iter()
        .filter(|r| r.prune_regrow)
        .map(|r| r.step)
        .collect();
    assert_eq!(regrow, vec![2, 4, 6, 8]);
}

#[test]
fn invalid_configs_name_the_parameter() {
    let err = |b: DynamicSparsityBuilder| b.build().unwrap_err().to_string();
    assert!(err(DynamicSparsity::rigl(0, 10)).contains("`period`"));
    assert!(err(DynamicSparsity::rigl(5, 0)).contains("death_rate.t_max"));
    let e = err(DynamicSparsity::builder().death_rate(DeathRate::Constant(-0.1)));
    assert!(e.contains("`death_rate`"), "{e}");
    let e = err(DynamicSparsity::builder().death_rate(DeathRate::Constant(1.5)));
    assert!(e.contains("`death_rate`"), "{e}");
    let bad = GradualPruning {
        initial_density: 1.0,
        final_density: 1.2,
        start_step: 0,
        end_step: 10,
        period: 1,
        global: true,
        rule: crate::prune::KeepRule::Strict,
        window: PruningWindow::Official,
    };
    assert!(err(DynamicSparsity::gradual_magnitude(bad)).contains("final_density"));
}

/// A fake optimizer: fixed momentum, counts how often its state was masked.
struct FakeOptimizer {
    momentum: Tensor,
    masked: Cell<usize>,
}

impl MomentumSource for FakeOptimizer {
    fn momentum(&self, name: &str) -> Result<Option<Tensor>> {
        Ok((name == "w").then(|| self.momentum.clone()))
    }
}

impl MaskableState for FakeOptimizer {
    fn mask_state(&mut self, _params: &SparseParams) -> Result<()> {
        self.masked.set(self.masked.get() + 1);
        Ok(())
    }
}

/// candle's `GradStore::new` is private: a store from an unrelated backward pass.
fn empty_grads() -> GradStore {
    let v = Var::zeros(1, DType::F32, &Device::Cpu).unwrap();
    v.as_tensor().sum_all().unwrap().backward().unwrap()
}

fn one_layer(w: &[f32], bits: Vec<u8>) -> (Var, SparseParams) {
    let var = Var::from_tensor(&Tensor::from_slice(w, &[w.len()], &Device::Cpu).unwrap()).unwrap();
    let mut params = SparseParams::new();
    params
        .insert("w", var.clone(), Mask::from_bits(&[w.len()], bits).unwrap())
        .unwrap();
    (var, params)
}

#[test]
fn momentum_growth_reads_the_optimizer_and_masks_its_state() {
    let (_var, mut params) = one_layer(&[0.9, 0.1, 0.0, 0.0, 0.0, 0.0], vec![1, 1, 0, 0, 0, 0]);
    let config = DynamicSparsity::builder()
        .growth(GrowthMethod::Momentum)
        .death_rate(DeathRate::Constant(0.5))
        .period(Some(1))
        .build()
        .unwrap();
    let mut engine = SparsityEngine::new(config, &params).unwrap();
    let mut opt = FakeOptimizer {
        momentum: Tensor::new(&[0f32, 0.0, 0.3, -0.8, 0.1, 0.2], &Device::Cpu).unwrap(),
        masked: Cell::new(0),
    };
    let grads = empty_grads();
    let report = engine
        .after_optimizer_step(1, &mut params, &grads, Some(&mut opt))
        .unwrap();
    // 0.1 pruned (ceil(0.5 * 2) = 1), the largest |momentum| inactive (index 3) grown
    assert_eq!(params.mask("w").unwrap().as_bits(), &[1, 0, 0, 1, 0, 0]);
    assert_eq!(report.layers[0].pruned, 1);
    assert_eq!(
        opt.masked.get(),
        2,
        "masked after the step and after the update"
    );
    // without a momentum source momentum growth is an error
    let err = engine.after_optimizer_step(2, &mut params, &grads, None);
    assert!(matches!(err, Err(SparseError::MissingMomentum(_))));
}

#[test]
fn previous_growth_init_keeps_the_values_of_weights_pruned_and_regrown() {
    // A dense layer: whatever is pruned is all that can be regrown.
    let weights = [0.9f32, -0.1, 0.4, 0.2, -0.7, 0.3];
    for (init, zeroed) in [(GrowthInit::Zero, 3), (GrowthInit::Previous, 0)] {
        let (var, mut params) = one_layer(&weights, vec![1; 6]);
        let config = DynamicSparsity::builder()
            .growth(GrowthMethod::RandomExact)
            .death_rate(DeathRate::Constant(0.5))
            .period(Some(1))
            .growth_init(init)
            .build()
            .unwrap();
        let mut engine = SparsityEngine::new(config, &params).unwrap();
        let report = engine
            .after_optimizer_step(1, &mut params, &empty_grads(), None)
            .unwrap();
        assert_eq!(report.layers[0].pruned, 3);
        assert_eq!(params.mask("w").unwrap().nnz(), 6);
        let w = to_host(var.as_tensor()).unwrap();
        assert_eq!(w.iter().filter(|v| **v == 0.0).count(), zeroed, "{init:?}");
        if init == GrowthInit::Previous {
            assert_eq!(w, weights);
        }
    }
}

#[test]
fn region_restricts_growth_and_grown_value_is_set() {
    let (var, mut params) = one_layer(&[0.9, 0.1, 0.0, 0.0, 0.0, 0.0], vec![1, 1, 0, 0, 0, 0]);
    let region = GrowthRegion::new(Mask::from_bits(&[6], vec![1, 1, 0, 0, 1, 0]).unwrap());
    let config = DynamicSparsity::builder()
        .growth(GrowthMethod::RandomExact)
        .death_rate(DeathRate::Constant(0.5))
        .period(Some(1))
        .region("w", region)
        .growth_init(GrowthInit::Value(0.5))
        .build()
        .unwrap();
    let mut engine = SparsityEngine::new(config, &params).unwrap();
    let grads = empty_grads();
    for step in 1..=5 {
        engine
            .after_optimizer_step(step, &mut params, &grads, None)
            .unwrap();
        let m = params.mask("w").unwrap();
        assert_eq!(m.nnz(), 2);
        for i in [2, 3, 5] {
            assert!(!m.is_active(i), "grew outside the region at step {step}");
        }
    }
    // the first update prunes 0.1 (index 1) and grows index 1 or 4 with value 0.5
    let w = to_host(var.as_tensor()).unwrap();
    assert!(w.iter().filter(|&&v| v == 0.5).count() >= 1);
    let region_rate = engine
        .fired_masks()
        .region_rate("w", &Mask::from_bits(&[6], vec![1, 1, 0, 0, 1, 0]).unwrap())
        .unwrap();
    assert!(region_rate > 2.0 / 3.0 - 1e-12);
}

#[test]
fn grouped_region_keeps_per_group_budgets_dsn_style() {
    // a [6 out, 1 in, 6 taps] kernel; group g = channels 2g..2g+2, taps < 2(g+1)
    let shape = [6, 1, 6];
    let groups: Vec<Mask> = (0..3)
        .map(|g| crate::grow::mask_from_fn(&shape, |ix| ix[0] / 2 == g && ix[2] < 2 * (g + 1)))
        .collect();
    let region = GrowthRegion::grouped(groups.clone()).unwrap();
    // init: tap 0 of every channel, plus tap 1 of group 2 (per-group nnz 2, 2, 4)
    let init = crate::grow::mask_from_fn(&shape, |ix| ix[2] == 0 || (ix[0] >= 4 && ix[2] == 1));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let var = Var::from_tensor(&random_tensor(&mut rng, &shape)).unwrap();
    let mut params = SparseParams::new();
    params.insert("conv", var.clone(), init).unwrap();
    let config = DynamicSparsity::rigl(1, 100)
        .region("conv", region)
        .build()
        .unwrap();
    let mut engine = SparsityEngine::new(config, &params).unwrap();
    let per_group = |m: &Mask| -> Vec<usize> {
        groups
            .iter()
            .map(|g| {
                g.active_indices()
                    .into_iter()
                    .filter(|&i| m.is_active(i))
                    .count()
            })
            .collect()
    };
    let mut changed = false;
    for step in 1..=6 {
        // a gradient that favours the far taps, so growth wants to leave the region
        let loss = var
            .as_tensor()
            .mul(&random_tensor(&mut rng, &shape))
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let before = params.mask("conv").unwrap().clone();
        engine
            .after_optimizer_step(step, &mut params, &grads, None)
            .unwrap();
        let m = params.mask("conv").unwrap();
        changed |= *m != before;
        assert_eq!(per_group(m), vec![2, 2, 4], "step {step}");
        let allowed = crate::grow::mask_from_fn(&shape, |ix| ix[2] < 2 * (ix[0] / 2 + 1));
        for i in m.active_indices() {
            assert!(
                allowed.is_active(i),
                "position {i} outside its group's taps"
            );
        }
    }
    assert!(changed, "the topology never moved");
    assert!(GrowthRegion::grouped(vec![groups[0].clone(), groups[0].clone()]).is_err());
}

/// Momentum for two layers, larger in "a".
struct TwoLayerMomentum;

impl MomentumSource for TwoLayerMomentum {
    fn momentum(&self, name: &str) -> Result<Option<Tensor>> {
        let v = if name == "a" { 3.0f32 } else { 1.0 };
        Ok(Some(Tensor::full(v, 8, &Device::Cpu)?))
    }
}

impl MaskableState for TwoLayerMomentum {
    fn mask_state(&mut self, _params: &SparseParams) -> Result<()> {
        Ok(())
    }
}

#[test]
fn momentum_redistribution_moves_budget_to_high_momentum_layers() {
    let mut params = SparseParams::new();
    for name in ["a", "b"] {
        let w = [0.5f32, 0.4, 0.3, 0.2, 0.0, 0.0, 0.0, 0.0];
        let var = Var::from_tensor(&Tensor::new(&w, &Device::Cpu).unwrap()).unwrap();
        let mask = Mask::from_bits(&[8], vec![1, 1, 1, 1, 0, 0, 0, 0]).unwrap();
        params.insert(name, var, mask).unwrap();
    }
    let config = DynamicSparsity::sparse_momentum(1, 100)
        .death_rate(DeathRate::Constant(0.5))
        .build()
        .unwrap();
    let mut engine = SparsityEngine::new(config, &params).unwrap();
    let mut opt = TwoLayerMomentum;
    let report = engine
        .after_optimizer_step(1, &mut params, &empty_grads(), Some(&mut opt))
        .unwrap();
    // each layer loses 2; the 4 regrown split 3:1 by mean |momentum|
    let grown: Vec<usize> = report.layers.iter().map(|l| l.grown).collect();
    assert_eq!(grown, vec![3, 1]);
    assert_eq!(
        params.mask("a").unwrap().nnz() + params.mask("b").unwrap().nnz(),
        8
    );
}

#[test]
fn forced_update_prunes_at_the_given_rate() {
    let (_var, mut params) = one_layer(&[0.9, 0.1, 0.4, 0.3, 0.0, 0.0], vec![1, 1, 1, 1, 0, 0]);
    let config = DynamicSparsity::static_sparse()
        .growth(GrowthMethod::RandomExact)
        .build()
        .unwrap();
    let mut engine = SparsityEngine::new(config, &params).unwrap();
    let report = engine
        .prune_and_regrow_now(7, 0.5, &mut params, &UpdateContext::default())
        .unwrap();
    assert_eq!((report.layers[0].pruned, report.layers[0].grown), (2, 2));
    let m = params.mask("w").unwrap();
    assert!(m.is_active(0) && m.is_active(2), "the two largest survive");
    assert!(
        engine
            .prune_and_regrow_now(8, 1.5, &mut params, &UpdateContext::default())
            .is_err()
    );
}

#[test]
fn step_zero_is_rejected() {
    let (_var, mut params) = one_layer(&[1.0], vec![1]);
    let mut engine =
        SparsityEngine::new(DynamicSparsity::static_sparse().build().unwrap(), &params).unwrap();
    let err = engine.after_optimizer_step(0, &mut params, &empty_grads(), None);
    assert!(err.unwrap_err().to_string().contains("`step`"));
}

#[test]
fn masked_gradient_detection_ignores_dead_rows_and_columns() {
    // A dense gradient whose row 1 is dead (a fully pruned unit behind a ReLU): its
    // zeros at the pruned positions tell nothing.
    let dense = [1.0, 2.0, 3.0, 0.0, 0.0, 0.0];
    assert!(telling_positions(&dense, &[2, 3], &[3, 4, 5]).is_empty());
    // A masked gradient (active 0, 1, 4): position 3 is in a live row and a live
    // column, and it is zero.
    let masked = [1.0, 2.0, 0.0, 0.0, 5.0, 0.0];
    assert_eq!(telling_positions(&masked, &[2, 3], &[2, 3, 5]), vec![3]);
    // Rank 1: every pruned position counts unless the gradient is zero everywhere.
    assert_eq!(telling_positions(&[0.5, 0.0], &[2], &[1]), vec![1]);
    assert!(telling_positions(&[0.0, 0.0], &[2], &[1]).is_empty());
}
