//! Test helpers: seeded tensors, relative comparisons, gradient checks.

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Uniform(-1, 1) tensor from a seeded generator.
pub fn rand_tensor(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// A random 0/1 mask pattern of the given density (exactly `round(density * n)` ones).
pub fn rand_bits(n: usize, density: f64, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        idx.swap(i, j);
    }
    let active = (density * n as f64).round() as usize;
    let mut bits = vec![0u8; n];
    for &i in &idx[..active] {
        bits[i] = 1;
    }
    bits
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Asserts `max|a - b| <= 1e-4 * max|b|` (relative in the max norm).
pub fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes differ");
    let (a, b) = (values(a), values(b));
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let err = a
        .iter()
        .zip(&b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        err <= 1e-4 * scale.max(1e-6),
        "{what}: max abs error {err} vs max |ref| {scale}"
    );
}

/// Runs `ours` and `reference` on the same inputs and compares outputs and the
/// gradients of `sum(y * g)` (random `g`) with respect to every input.
pub fn check_grads_match(
    inputs: &[Tensor],
    ours: impl Fn(&[Tensor]) -> Tensor,
    reference: impl Fn(&[Tensor]) -> Tensor,
    seed: u64,
) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y_ours = ours(&ts);
    let y_ref = reference(&ts);
    assert_close(&y_ours, &y_ref, "forward");
    let g = rand_tensor(y_ref.dims(), seed);
    let grads_ours = (y_ours * &g)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let grads_ref = (y_ref * &g).unwrap().sum_all().unwrap().backward().unwrap();
    for (i, t) in ts.iter().enumerate() {
        let a = grads_ours.get(t).expect("missing gradient (ours)");
        let b = grads_ref.get(t).expect("missing gradient (reference)");
        assert_close(a, b, &format!("gradient of input {i}"));
    }
}

/// Compares the analytic gradients of `sum(f(inputs) * g)` with central differences
/// at a few seeded coordinates of every input.
pub fn finite_difference_check(inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor, seed: u64) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&ts);
    let g = rand_tensor(y.dims(), seed);
    let loss = |t: &[Tensor]| -> f64 {
        (f(t) * &g)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64
    };
    let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    let eps = 1e-2f32;
    for (i, t) in ts.iter().enumerate() {
        let an = values(grads.get(t).expect("missing gradient"));
        let scale = an.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        let base = values(t);
        for _ in 0..4 {
            let j = rng.random_range(0..base.len());
            let shifted = |d: f32| {
                let mut v = base.clone();
                v[j] += d;
                let mut all = inputs.to_vec();
                all[i] = Tensor::from_vec(v, t.dims(), &Device::Cpu).unwrap();
                all
            };
            let fd = (loss(&shifted(eps)) - loss(&shifted(-eps))) / (2.0 * eps as f64);
            let err = (fd - an[j] as f64).abs();
            assert!(
                err <= 1e-2 * scale.max(1.0),
                "input {i} index {j}: finite difference {fd} vs analytic {}",
                an[j]
            );
        }
    }
}
