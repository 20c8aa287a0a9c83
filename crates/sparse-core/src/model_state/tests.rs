//! Capture/restore, interpolation, averaging, EMA and re-pruning of model states.

use candle_core::{Device, ModuleT, Var};
use candle_nn::{BatchNormConfig, VarBuilder};

use super::*;

fn bytes(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

fn state_bytes(s: &ModelState) -> Vec<(String, Vec<u32>)> {
    s.tensors()
        .iter()
        .map(|(n, t)| (n.clone(), bytes(t)))
        .collect()
}

fn varmap_bytes(varmap: &VarMap) -> Vec<(String, Vec<u32>)> {
    sorted_vars(varmap)
        .into_iter()
        .map(|(n, v)| (n, bytes(v.as_tensor())))
        .collect()
}

/// A linear layer and a BatchNorm whose running statistics have moved off 0 / 1.
fn model() -> (VarMap, candle_nn::BatchNorm) {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let _fc = candle_nn::linear(3, 4, vb.pp("fc")).unwrap();
    let bn = candle_nn::batch_norm(4, BatchNormConfig::default(), vb.pp("bn")).unwrap();
    let x = Tensor::new(
        &[[1f32, 2., 3., 4.], [5., -6., 7., 8.], [0.5, 0.25, -1., 2.]],
        &dev,
    )
    .unwrap();
    bn.forward_t(&x, true).unwrap();
    (varmap, bn)
}

fn state(values: &[(&str, &[f32])]) -> ModelState {
    let tensors = values
        .iter()
        .map(|(n, v)| (n.to_string(), Tensor::new(*v, &Device::Cpu).unwrap()))
        .collect();
    ModelState { tensors }
}

#[test]
fn capture_is_a_copy_and_restore_brings_back_the_exact_bytes() {
    let (varmap, bn) = model();
    let before = varmap_bytes(&varmap);
    let snap = ModelState::capture(&varmap).unwrap();
    assert_eq!(state_bytes(&snap), before);
    let names: Vec<&str> = snap.names().collect();
    assert_eq!(
        names,
        [
            "bn.bias",
            "bn.running_mean",
            "bn.running_var",
            "bn.weight",
            "fc.bias",
            "fc.weight"
        ]
    );
    // The running statistics were updated by the forward pass and are captured.
    let rm = snap
        .get("bn.running_mean")
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(rm.iter().any(|&v| v != 0.0), "{rm:?}");

    // Train-like mutations: set every var, and move the BN statistics again.
    for (_, var) in sorted_vars(&varmap) {
        let t = var.as_tensor();
        var.set(&((t * 3.0).unwrap() + 1.0).unwrap()).unwrap();
    }
    let x = Tensor::ones((2, 4), DType::F32, &Device::Cpu).unwrap();
    bn.forward_t(&x, true).unwrap();
    assert_ne!(varmap_bytes(&varmap), before);
    // The snapshot did not follow the model (no shared storage).
    assert_eq!(state_bytes(&snap), before);

    snap.restore(&varmap).unwrap();
    assert_eq!(varmap_bytes(&varmap), before);
    // Restoring does not alias either: the model can move on, the state stays.
    let w = sorted_vars(&varmap).pop().unwrap().1;
    w.set(&w.as_tensor().zeros_like().unwrap()).unwrap();
    assert_eq!(state_bytes(&snap), before);
}

#[test]
fn restore_names_the_mismatching_tensor_and_writes_nothing() {
    let (varmap, _) = model();
    let before = varmap_bytes(&varmap);
    let snap = ModelState::capture(&varmap).unwrap();

    let mut wrong = snap.clone();
    wrong.tensors.insert(
        "fc.bias".into(),
        Tensor::zeros(5, DType::F32, &Device::Cpu).unwrap(),
    );
    // Also change a tensor that sorts first, to see that nothing is written.
    wrong.tensors.insert(
        "bn.bias".into(),
        Tensor::ones(4, DType::F32, &Device::Cpu).unwrap(),
    );
    let e = wrong.restore(&varmap).unwrap_err();
    assert!(
        matches!(e, SparseError::StateMismatch { ref name, .. } if name == "fc.bias"),
        "{e}"
    );
    assert!(e.to_string().contains("fc.bias"), "{e}");
    assert_eq!(varmap_bytes(&varmap), before);

    let mut missing = snap.clone();
    missing.tensors.remove("bn.running_var");
    let e = missing.restore(&varmap).unwrap_err();
    assert!(
        matches!(e, SparseError::StateMismatch { ref name, .. } if name == "bn.running_var"),
        "{e}"
    );

    let mut extra = snap.clone();
    extra.tensors.insert(
        "head.weight".into(),
        Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap(),
    );
    let e = extra.restore(&varmap).unwrap_err();
    assert!(
        matches!(e, SparseError::StateMismatch { ref name, .. } if name == "head.weight"),
        "{e}"
    );

    let mut dtype = snap;
    dtype.tensors.insert(
        "fc.bias".into(),
        Tensor::zeros(4, DType::F64, &Device::Cpu).unwrap(),
    );
    let e = dtype.restore(&varmap).unwrap_err();
    assert!(e.to_string().contains("dtype"), "{e}");
}

#[test]
fn lerp_hits_the_endpoints_exactly_and_interpolates_between() {
    let a = state(&[("w", &[1.0, -2.0, 0.1, -0.0]), ("b", &[3.0])]);
    let b = state(&[("w", &[5.0, 2.0, 0.7, 1.0]), ("b", &[-1.0])]);
    let at0 = ModelState::lerp(&a, &b, 0.0).unwrap();
    let at1 = ModelState::lerp(&a, &b, 1.0).unwrap();
    assert_eq!(state_bytes(&at0), state_bytes(&a));
    assert_eq!(state_bytes(&at1), state_bytes(&b));
    let q = ModelState::lerp(&a, &b, 0.25).unwrap();
    let w = q.get("w").unwrap().to_vec1::<f32>().unwrap();
    for (got, want) in w.iter().zip([2.0f32, -1.0, 0.25, 0.25]) {
        assert!((got - want).abs() < 1e-6, "{w:?}");
    }
    assert_eq!(q.get("b").unwrap().to_vec1::<f32>().unwrap(), vec![2.0]);

    let other = state(&[("w", &[1.0, 2.0, 3.0]), ("b", &[3.0])]);
    let e = ModelState::lerp(&a, &other, 0.5).unwrap_err();
    assert!(
        matches!(e, SparseError::StateMismatch { ref name, .. } if name == "w"),
        "{e}"
    );
    assert!(ModelState::lerp(&a, &b, f64::NAN).is_err());
}

#[test]
fn average_of_two_states_is_lerp_at_one_half_bit_for_bit() {
    // Values whose f32 sum is inexact, so a sloppy mean would differ in the last bit.
    let a = state(&[("w", &[0.1, 1e-3, 16_777_217.0, -3.3]), ("b", &[0.3])]);
    let b = state(&[("w", &[0.2, 7e-3, 1.0, 1.1]), ("b", &[0.7])]);
    let mut avg = RunningAverage::new();
    assert_eq!(avg.count(), 0);
    assert!(avg.mean().is_err());
    avg.add(&a).unwrap();
    assert_eq!(state_bytes(&avg.mean().unwrap()), state_bytes(&a));
    avg.add(&b).unwrap();
    assert_eq!(avg.count(), 2);
    let mean = avg.mean().unwrap();
    let half = ModelState::lerp(&a, &b, 0.5).unwrap();
    assert_eq!(state_bytes(&mean), state_bytes(&half));
    assert_eq!(mean.get("w").unwrap().dtype(), DType::F32);

    // A third state: the mean of 1, 2, 6 is 3.
    let c = state(&[("w", &[0.0; 4]), ("b", &[2.0])]);
    let mut avg3 = RunningAverage::new();
    for s in [&state(&[("w", &[0.0; 4]), ("b", &[1.0])]), &c] {
        avg3.add(s).unwrap();
    }
    avg3.add(&state(&[("w", &[0.0; 4]), ("b", &[6.0])]))
        .unwrap();
    assert_eq!(
        avg3.mean()
            .unwrap()
            .get("b")
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        [3.0]
    );

    let wrong = state(&[("w", &[0.0; 4])]);
    let e = avg.add(&wrong).unwrap_err();
    assert!(
        matches!(e, SparseError::StateMismatch { ref name, .. } if name == "b"),
        "{e}"
    );
    assert_eq!(avg.count(), 2, "a refused state is not counted");
}

#[test]
fn ema_update_blends_with_the_decay_and_checks_it() {
    let mut ema = state(&[("w", &[1.0, 10.0])]);
    let now = state(&[("w", &[3.0, 0.0])]);
    ema.ema_update(&now, 0.75).unwrap();
    let w = ema.get("w").unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(w, vec![1.5, 7.5]); // 0.75·1 + 0.25·3, 0.75·10
    ema.ema_update(&now, 0.0).unwrap();
    assert_eq!(state_bytes(&ema), state_bytes(&now));
    let e = ema.ema_update(&now, 1.5).unwrap_err().to_string();
    assert!(e.contains("`decay`"), "{e}");
    assert!(ema.ema_update(&now, -0.1).is_err());
    assert!(ema.ema_update(&state(&[("v", &[0.0, 0.0])]), 0.5).is_err());
}

#[test]
fn prune_to_density_keeps_the_floor_of_the_largest_magnitudes() {
    let base = state(&[
        ("a", &[0.1, -5.0, 0.3, 4.0, -0.2, f32::INFINITY]),
        ("b", &[1.0, -2.0, 3.0, -0.5]),
        ("bias", &[9.0, 9.0]),
    ]);

    // Global over a and b, N = 10: floor(0.45·10) = 4 kept: inf, -5, 4, 3.
    let mut g = base.clone();
    let masks = g
        .prune_to_density(&["b", "a"], 0.45, ThresholdScope::Global)
        .unwrap();
    assert_eq!(masks.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(masks["a"].as_bits(), &[0, 1, 0, 1, 0, 1]);
    assert_eq!(masks["b"].as_bits(), &[0, 0, 1, 0]);
    assert_eq!(
        g.get("a").unwrap().to_vec1::<f32>().unwrap(),
        vec![0.0, -5.0, 0.0, 4.0, 0.0, f32::INFINITY]
    );
    assert_eq!(
        g.get("b").unwrap().to_vec1::<f32>().unwrap(),
        vec![0.0, 0.0, 3.0, 0.0]
    );
    // An unnamed tensor is untouched.
    assert_eq!(
        g.get("bias").unwrap().to_vec1::<f32>().unwrap(),
        vec![9.0, 9.0]
    );

    // Per tensor: floor(0.5·6) = 3 of a, floor(0.5·4) = 2 of b.
    let mut p = base.clone();
    let masks = p
        .prune_to_density(&["a", "b"], 0.5, ThresholdScope::PerLayer)
        .unwrap();
    assert_eq!(masks["a"].nnz(), 3);
    assert_eq!(masks["b"].as_bits(), &[0, 1, 1, 0]);

    // Ties at the cut: exactly floor(d·N) survive, the lower index first.
    let mut t = state(&[("t", &[1.0, -1.0, 1.0, 1.0])]);
    let masks = t
        .prune_to_density(&["t"], 0.5, ThresholdScope::Global)
        .unwrap();
    assert_eq!(masks["t"].as_bits(), &[1, 1, 0, 0]);

    // Errors change nothing.
    let mut e = base.clone();
    assert!(
        e.prune_to_density(&["a"], 1.5, ThresholdScope::Global)
            .is_err()
    );
    let err = e
        .prune_to_density(&["a", "nope"], 0.5, ThresholdScope::Global)
        .unwrap_err();
    assert!(
        matches!(err, SparseError::StateMismatch { ref name, .. } if name == "nope"),
        "{err}"
    );
    assert_eq!(state_bytes(&e), state_bytes(&base));
}

#[test]
fn best_epoch_snapshot_round_trip_through_a_var() {
    // The capture → train → restore pattern on a bare VarMap entry.
    let varmap = VarMap::new();
    let v = Var::from_tensor(&Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap()).unwrap();
    varmap.data().lock().unwrap().insert("v".into(), v.clone());
    let best = ModelState::capture(&varmap).unwrap();
    v.set(&Tensor::new(&[7f32, 8.0], &Device::Cpu).unwrap())
        .unwrap();
    best.restore(&varmap).unwrap();
    assert_eq!(v.as_tensor().to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
}
