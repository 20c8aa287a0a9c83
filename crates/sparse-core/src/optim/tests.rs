//! Optimizer tests against PyTorch's update equations.
//!
//! Reference values come from a plain-Python transcription of `torch.optim.SGD`,
//! `Adam` and `AdamW` (float64), with p0 = [1, -2, 0.5] and the gradients
//! g1 = [0.1, -0.2, 0.3], g2 = [-0.5, 0.4, 0.2], g3 = [0.3, 0.1, -0.1]:
//!
//! ```text
//! def sgd(nesterov, lr=0.1, mom=0.9, damp=0.0, wd=5e-4):
//!     for g in G:
//!         g = g + wd*p
//!         buf = g if buf is None else mom*buf + (1-damp)*g
//!         d = g + mom*buf if nesterov else buf
//!         p = p - lr*d
//! def adam(decoupled, ams, lr=0.01, b1=0.9, b2=0.999, eps=1e-8, wd=0.1):
//!     for t, g in enumerate(G, 1):
//!         if decoupled: p = p*(1-lr*wd)
//!         else: g = g + wd*p
//!         m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; vmax = max(vmax, v)
//!         p = p - lr/(1-b1**t) * m / (sqrt(vmax if ams else v)/sqrt(1-b2**t) + eps)
//! ```
//!
//! The gradients are produced by candle's autograd from `loss = sum(p ⊙ g)`.

use candle_core::{Device, Tensor, Var};

use super::*;
use crate::mask::Mask;
use crate::registry::SparseParams;
use crate::state::{MaskableState, MomentumSource};

const P0: [f32; 3] = [1.0, -2.0, 0.5];
const G: [[f32; 3]; 3] = [[0.1, -0.2, 0.3], [-0.5, 0.4, 0.2], [0.3, 0.1, -0.1]];

fn var(values: &[f32]) -> Var {
    Var::from_tensor(&Tensor::new(values, &Device::Cpu).unwrap()).unwrap()
}

/// Gradients of `sum(var ⊙ g)` with respect to `var`, i.e. exactly `g`.
fn grads_for(var: &Var, g: &[f32]) -> GradStore {
    let g = Tensor::new(g, &Device::Cpu).unwrap();
    var.as_tensor()
        .mul(&g)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap()
}

fn assert_close(got: &Tensor, expected: &[f64], tol: f64) {
    let got = got.to_vec1::<f32>().unwrap();
    for (g, e) in got.iter().zip(expected) {
        assert!(
            (*g as f64 - e).abs() < tol,
            "got {got:?}, expected {expected:?}"
        );
    }
}

fn run(opt: &mut dyn Optimizer, p: &Var, grads: &[[f32; 3]], expected: &[[f64; 3]], tol: f64) {
    for (g, e) in grads.iter().zip(expected) {
        opt.step(&grads_for(p, g)).unwrap();
        assert_close(p.as_tensor(), e, tol);
    }
}

#[test]
fn sgd_momentum_weight_decay_matches_torch() {
    let p = var(&P0);
    let cfg = SgdConfig::builder(0.1)
        .momentum(0.9)
        .weight_decay(5e-4)
        .build()
        .unwrap();
    let mut opt = Sgd::from_params(vec![("p".into(), p.clone())], cfg).unwrap();
    let expected = [
        [0.989950000, -1.979900000, 0.469975000],
        [1.030855502, -2.001711005, 0.422929001],
        [1.037618912, -2.031240824, 0.390566456],
    ];
    run(&mut opt, &p, &G, &expected, 1e-6);
    assert_close(
        opt.momentum_buffer("p").unwrap(),
        &[-0.067634095, 0.295298189, 0.323625453],
        1e-6,
    );
    assert_eq!(opt.step_count(), 3);
}

#[test]
fn sgd_nesterov_matches_torch() {
    let p = var(&P0);
    let cfg = SgdConfig::builder(0.1)
        .momentum(0.9)
        .nesterov(true)
        .weight_decay(5e-4)
        .build()
        .unwrap();
    let mut opt = Sgd::from_params(vec![("p".into(), p.clone())], cfg).unwrap();
    let expected = [
        [0.980905000, -1.961810000, 0.442952500],
        [1.067671314, -2.021342628, 0.380590170],
        [1.043703709, -2.057818247, 0.361447849],
    ];
    run(&mut opt, &p, &G, &expected, 1e-6);
}

#[test]
fn sgd_dampening_scales_later_gradients_only() {
    // buf1 = g1; buf2 = 0.5·buf1 + (1 − 0.25)·g2 ; p2 = p0 − lr·(buf1 + buf2)
    let p = var(&[1.0]);
    let cfg = SgdConfig::builder(1.0)
        .momentum(0.5)
        .dampening(0.25)
        .build()
        .unwrap();
    let mut opt = Sgd::from_params(vec![("p".into(), p.clone())], cfg).unwrap();
    opt.step(&grads_for(&p, &[2.0])).unwrap();
    opt.step(&grads_for(&p, &[4.0])).unwrap();
    // buf1 = 2, buf2 = 1 + 3 = 4, p = 1 − 2 − 4 = −5.
    assert_close(p.as_tensor(), &[-5.0], 1e-6);
}

#[test]
fn adam_coupled_l2_matches_torch() {
    let p = var(&P0);
    let cfg = AdamConfig::adam(0.01).weight_decay(0.1).build().unwrap();
    let mut opt = Adam::from_params(vec![("p".into(), p.clone())], cfg).unwrap();
    let expected = [
        [0.990000001, -1.990000000, 0.490000000],
        [0.993670333, -1.987355927, 0.480225901],
        [0.991536143, -1.983983035, 0.473493350],
    ];
    run(&mut opt, &p, &G, &expected, 6e-7);
    let (m, v) = opt.moments("p").unwrap();
    assert_close(m, &[0.020046703, -0.024183559, 0.045562259], 1e-7);
    assert_close(v, &[0.000360054, 0.000209789, 0.000186896], 1e-8);
    assert_eq!(opt.kind(), "adam");
}

#[test]
fn adamw_decoupled_matches_torch() {
    let p = var(&P0);
    let cfg = AdamConfig::adamw(0.01, 0.1).build().unwrap();
    let mut opt = Adam::from_params(vec![("p".into(), p.clone())], cfg).unwrap();
    let expected = [
        [0.989000001, -1.988000001, 0.489500000],
        [0.993994543, -1.989673036, 0.479306979],
        [0.993745892, -1.991839874, 0.473308754],
    ];
    run(&mut opt, &p, &G, &expected, 6e-7);
    assert_eq!(opt.kind(), "adamw");
}

#[test]
fn amsgrad_uses_the_running_maximum() {
    // Third gradient tiny, so v decreases and AMSGrad differs from Adam.
    let grads = [G[0], G[1], [0.001, 0.001, -0.001]];
    let plain = [0.997613300, -1.990527639, 0.471344584];
    let ams = [0.997611001, -1.990526224, 0.471348298];
    for (amsgrad, last) in [(false, plain), (true, ams)] {
        let p = var(&P0);
        let cfg = AdamConfig::adamw(0.01, 0.1)
            .amsgrad(amsgrad)
            .build()
            .unwrap();
        let mut opt = Adam::from_params(vec![("p".into(), p.clone())], cfg).unwrap();
        let expected = [
            [0.989000001, -1.988000001, 0.489500000],
            [0.993994543, -1.989673036, 0.479306979],
            last,
        ];
        run(&mut opt, &p, &grads, &expected, 6e-7);
    }
}

#[test]
fn no_decay_group_and_vars_without_gradient() {
    let w = var(&[1.0, 1.0]);
    let b = var(&[1.0]);
    let frozen = var(&[3.0]);
    let params = vec![
        ("fc.weight".to_string(), w.clone()),
        ("fc.bias".to_string(), b.clone()),
        ("bn.running_mean".to_string(), frozen.clone()),
    ];
    let groups = ParamGroup::split_no_decay(params, is_bias_or_norm);
    let cfg = SgdConfig::builder(0.5)
        .momentum(0.9)
        .weight_decay(0.1)
        .build()
        .unwrap();
    let mut opt = Sgd::new(groups, cfg).unwrap();
    let loss = (w.as_tensor().sum_all().unwrap() + b.as_tensor().sum_all().unwrap()).unwrap();
    opt.step(&loss.backward().unwrap()).unwrap();
    // weight: 1 − 0.5·(1 + 0.1) = 0.45 ; bias (no decay): 1 − 0.5·1 = 0.5.
    assert_close(w.as_tensor(), &[0.45, 0.45], 1e-7);
    assert_close(b.as_tensor(), &[0.5], 1e-7);
    assert_eq!(frozen.as_tensor().to_vec1::<f32>().unwrap(), vec![3.0]);
    assert!(opt.momentum_buffer("bn.running_mean").is_none());
    assert!(opt.momentum("bn.running_mean").unwrap().is_none());
    assert!(opt.momentum("nope").is_err());
}

#[test]
fn masked_training_keeps_pruned_weights_and_buffers_at_zero() {
    let dev = Device::Cpu;
    let w = Var::from_tensor(&Tensor::new(&[[0.5f32, -1.0, 2.0], [1.5, 0.3, -0.7]], &dev).unwrap())
        .unwrap();
    let mask = Mask::from_bits(&[2, 3], vec![1, 0, 1, 0, 1, 1]).unwrap();
    let mut params = SparseParams::new();
    params.insert("w", w.clone(), mask.clone()).unwrap();
    let x = Tensor::new(&[[1.0f32, 2.0, -1.0], [0.5, -0.5, 3.0]], &dev).unwrap();
    let sgd_cfg = SgdConfig::builder(0.1)
        .momentum(0.9)
        .nesterov(true)
        .weight_decay(5e-4)
        .build()
        .unwrap();
    let adam_cfg = AdamConfig::adamw(0.01, 0.05)
        .mask_moments(true)
        .build()
        .unwrap();
    for which in 0..2 {
        w.set(&Tensor::new(&[[0.5f32, -1.0, 2.0], [1.5, 0.3, -0.7]], &dev).unwrap())
            .unwrap();
        params.apply_masks().unwrap();
        let named = vec![("w".to_string(), w.clone())];
        let mut sgd = Sgd::from_params(named.clone(), sgd_cfg).unwrap();
        let mut adam = Adam::from_params(named, adam_cfg).unwrap();
        for _ in 0..4 {
            let loss = x
                .matmul(&w.as_tensor().t().unwrap())
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            // The gradient is dense: pruned positions get non-zero updates before masking.
            let g = grads
                .get(w.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert!(g[1] != 0.0 && g[3] != 0.0);
            if which == 0 {
                sgd.step(&grads).unwrap();
                sgd.mask_state(&params).unwrap();
            } else {
                adam.step(&grads).unwrap();
                adam.mask_state(&params).unwrap();
            }
            params.apply_masks().unwrap();
            let wv = w
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let state: Vec<Tensor> = if which == 0 {
                vec![sgd.momentum("w").unwrap().unwrap()]
            } else {
                let (m, v) = adam.moments("w").unwrap();
                vec![m.clone(), v.clone()]
            };
            for i in mask.inactive_indices() {
                assert_eq!(wv[i], 0.0);
                for s in &state {
                    assert_eq!(s.flatten_all().unwrap().to_vec1::<f32>().unwrap()[i], 0.0);
                }
            }
            assert!(mask.active_indices().iter().all(|&i| wv[i] != 0.0));
        }
    }
}

#[test]
fn adam_moments_are_not_masked_by_default() {
    let w = var(&[1.0, 1.0]);
    let mut params = SparseParams::new();
    params
        .insert("w", w.clone(), Mask::from_bits(&[2], vec![1, 0]).unwrap())
        .unwrap();
    let mut opt = Adam::from_params(
        vec![("w".into(), w.clone())],
        AdamConfig::adam(0.1).build().unwrap(),
    )
    .unwrap();
    opt.step(&grads_for(&w, &[1.0, 1.0, 0.0][..2])).unwrap();
    opt.mask_state(&params).unwrap();
    assert_eq!(
        opt.moments("w").unwrap().0.to_vec1::<f32>().unwrap()[1],
        0.1
    );
    // Momentum signal m/(sqrt(v)+1e-8) = 0.1/(sqrt(0.001)+1e-8).
    let s = opt
        .momentum("w")
        .unwrap()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!((s[0] as f64 - 0.1 / (0.001f64.sqrt() + 1e-8)).abs() < 1e-4);
}

#[test]
fn invalid_hyperparameters_name_the_parameter() {
    let name = |r: Result<SgdConfig>| r.unwrap_err().to_string();
    assert!(name(SgdConfig::builder(0.0).build()).contains("`lr`"));
    assert!(name(SgdConfig::builder(0.1).momentum(1.0).build()).contains("`momentum`"));
    assert!(name(SgdConfig::builder(0.1).nesterov(true).build()).contains("`nesterov`"));
    assert!(
        name(
            SgdConfig::builder(0.1)
                .momentum(0.9)
                .dampening(0.1)
                .nesterov(true)
                .build()
        )
        .contains("`nesterov`")
    );
    assert!(name(SgdConfig::builder(0.1).dampening(1.5).build()).contains("`dampening`"));
    assert!(name(SgdConfig::builder(0.1).weight_decay(-1.0).build()).contains("`weight_decay`"));
    assert!(name(SgdConfig::builder(f64::NAN).build()).contains("`lr`"));
    let aname = |r: Result<AdamConfig>| r.unwrap_err().to_string();
    assert!(aname(AdamConfig::adam(0.1).betas(1.0, 0.999).build()).contains("`beta1`"));
    assert!(aname(AdamConfig::adam(0.1).betas(0.9, -0.1).build()).contains("`beta2`"));
    assert!(aname(AdamConfig::adam(0.1).eps(0.0).build()).contains("`eps`"));
    assert!(aname(AdamConfig::adamw(0.1, -0.01).build()).contains("`weight_decay`"));
    let cfg = SgdConfig::builder(0.1).build().unwrap();
    let p = var(&[1.0]);
    let e = Sgd::new(
        vec![ParamGroup::with_weight_decay(
            vec![("p".into(), p.clone())],
            -1.0,
        )],
        cfg,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`weight_decay`"));
    let dup = vec![("p".to_string(), p.clone()), ("p".to_string(), p)];
    assert!(
        Sgd::from_params(dup, cfg)
            .unwrap_err()
            .to_string()
            .contains("`params`")
    );
}

#[test]
fn state_import_validates_and_resumes() {
    let p = var(&P0);
    let cfg = AdamConfig::adam(0.01)
        .weight_decay(0.1)
        .amsgrad(true)
        .build()
        .unwrap();
    let mut a = Adam::from_params(vec![("p".into(), p.clone())], cfg).unwrap();
    a.step(&grads_for(&p, &G[0])).unwrap();
    let state = a.export_state().unwrap();
    assert!(state.tensors.contains_key("p/max_exp_avg_sq"));
    let q = var(&p.as_tensor().to_vec1::<f32>().unwrap());
    let mut b = Adam::from_params(vec![("p".into(), q.clone())], cfg).unwrap();
    b.import_state(&state).unwrap();
    a.step(&grads_for(&p, &G[1])).unwrap();
    b.step(&grads_for(&q, &G[1])).unwrap();
    assert_eq!(
        p.as_tensor().to_vec1::<f32>().unwrap(),
        q.as_tensor().to_vec1::<f32>().unwrap()
    );
    assert_eq!(b.step_count(), 2);

    let mut bad = state.clone();
    bad.tensors.insert(
        "p/exp_avg".into(),
        Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let e = b.import_state(&bad).unwrap_err();
    assert!(
        matches!(e, SparseError::Checkpoint(CheckpointError::ShapeMismatch { ref name, .. }) if name == "p/exp_avg"),
        "{e}"
    );
    let mut bad = state.clone();
    bad.tensors.insert(
        "q/exp_avg".into(),
        Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    assert!(matches!(
        b.import_state(&bad),
        Err(SparseError::Checkpoint(CheckpointError::UnexpectedTensor(
            _
        )))
    ));
    let mut bad = state;
    bad.tensors.remove("p/exp_avg_sq");
    assert!(matches!(
        b.import_state(&bad),
        Err(SparseError::Checkpoint(CheckpointError::MissingTensor(_)))
    ));
    // Failed imports left b untouched: it still steps like a.
    a.step(&grads_for(&p, &G[2])).unwrap();
    b.step(&grads_for(&q, &G[2])).unwrap();
    assert_eq!(
        p.as_tensor().to_vec1::<f32>().unwrap(),
        q.as_tensor().to_vec1::<f32>().unwrap()
    );
}

/// Builds an optimizer over the given parameters.
type MakeOptimizer = dyn Fn(Vec<(String, Var)>) -> Box<dyn Optimizer>;

/// Bits of every tensor a run leaves: the parameter and each exported buffer.
fn final_bits(make: &MakeOptimizer, in_place: bool) -> Vec<Vec<u32>> {
    use rand::{Rng, SeedableRng};
    super::fused::OFF.with(|off| off.set(!in_place));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
    let p = Var::from_tensor(&Tensor::from_vec(random(40), (5, 8), &Device::Cpu).unwrap()).unwrap();
    let mut opt = make(vec![("w".to_string(), p.clone())]);
    for _ in 0..5 {
        let g = Tensor::from_vec(random(40), (5, 8), &Device::Cpu).unwrap();
        let grads = p
            .as_tensor()
            .mul(&g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        opt.step(&grads).unwrap();
    }
    super::fused::OFF.with(|off| off.set(false));
    let bits = |t: &Tensor| -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    };
    let state = opt.export_state().unwrap();
    std::iter::once(bits(p.as_tensor()))
        .chain(
            state
                .tensors
                .values()
                .filter(|t| t.dtype() == candle_core::DType::F32)
                .map(bits),
        )
        .collect()
}

#[test]
fn in_place_updates_are_bit_identical_to_the_candle_ops() {
    let mut makers: Vec<Box<MakeOptimizer>> = Vec::new();
    for (momentum, dampening, nesterov, wd) in [
        (0.0, 0.0, false, 0.0),
        (0.0, 0.0, false, 5e-4),
        (0.9, 0.0, false, 5e-4),
        (0.9, 0.0, true, 5e-4),
        (0.9, 0.1, false, 0.0),
    ] {
        makers.push(Box::new(move |params| {
            let c = SgdConfig::builder(0.05)
                .momentum(momentum)
                .dampening(dampening)
                .nesterov(nesterov)
                .weight_decay(wd)
                .build()
                .unwrap();
            Box::new(Sgd::from_params(params, c).unwrap())
        }));
    }
    for (decoupled, wd, amsgrad) in [
        (false, 0.0, false),
        (false, 0.1, true),
        (true, 0.01, false),
        (true, 0.01, true),
    ] {
        makers.push(Box::new(move |params| {
            let c = if decoupled {
                AdamConfig::adamw(0.01, wd)
            } else {
                AdamConfig::adam(0.01).weight_decay(wd)
            }
            .amsgrad(amsgrad)
            .build()
            .unwrap();
            Box::new(Adam::from_params(params, c).unwrap())
        }));
    }
    for (i, make) in makers.iter().enumerate() {
        let reference = final_bits(make.as_ref(), false);
        let in_place = final_bits(make.as_ref(), true);
        assert!(
            !reference.is_empty() && reference[0].len() == 40,
            "case {i}"
        );
        assert_eq!(in_place, reference, "case {i}");
    }
}

#[test]
fn momentum_snapshots_do_not_follow_later_steps() {
    let p = var(&P0);
    let c = SgdConfig::builder(0.1).momentum(0.9).build().unwrap();
    let mut opt = Sgd::from_params(vec![("w".into(), p.clone())], c).unwrap();
    opt.step(&grads_for(&p, &G[0])).unwrap();
    let snapshot = opt.momentum("w").unwrap().unwrap();
    opt.step(&grads_for(&p, &G[1])).unwrap();
    assert_close(&snapshot, &[0.1, -0.2, 0.3], 1e-7);
}
