//! Criterion benches of the optimizer step and mask application on the parameters of
//! random-pruning's MLP 784-256-256-10 at density 0.1: sparse-core's `Sgd` and
//! `SparseParams::apply_masks` (in place on f32 CPU tensors) against the same update
//! written as candle ops, which is what they computed before (bit-identical results,
//! tested in sparse-core).

use candle_core::{DType, Device, Tensor, Var};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparse_core::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use sparse_core::{Mask, SparseParams};

const SHAPES: [(usize, usize); 3] = [(256, 784), (256, 256), (10, 256)];
const LR: f64 = 0.05;
const MOMENTUM: f64 = 0.9;
const WEIGHT_DECAY: f64 = 5e-4;

fn uniform(shape: (usize, usize), rng: &mut ChaCha8Rng) -> Tensor {
    let v: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| rng.random_range(-0.1f32..0.1))
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
}

struct Setup {
    vars: Vec<Var>,
    grads: Vec<Tensor>,
    masks: Vec<Mask>,
    store: candle_core::backprop::GradStore,
}

fn setup() -> Setup {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let vars: Vec<Var> = SHAPES
        .iter()
        .map(|&s| Var::from_tensor(&uniform(s, &mut rng)).expect("var"))
        .collect();
    let grads: Vec<Tensor> = SHAPES.iter().map(|&s| uniform(s, &mut rng)).collect();
    let masks = SHAPES
        .iter()
        .map(|&(a, b)| {
            let bits = (0..a * b).map(|_| u8::from(rng.random_bool(0.1))).collect();
            Mask::from_bits(&[a, b], bits).expect("mask")
        })
        .collect();
    // a GradStore holding exactly `grads`: the gradient of Σ w ⊙ g
    let loss = vars
        .iter()
        .zip(&grads)
        .map(|(v, g)| v.as_tensor().mul(g).and_then(|t| t.sum_all()))
        .reduce(|a, b| a.and_then(|a| a + b?))
        .expect("layers")
        .expect("loss");
    let store = loss.backward().expect("backward");
    Setup {
        vars,
        grads,
        masks,
        store,
    }
}

fn named(vars: &[Var]) -> Vec<(String, Var)> {
    vars.iter()
        .enumerate()
        .map(|(i, v)| (format!("w{i}"), v.clone()))
        .collect()
}

/// Nesterov SGD with weight decay plus the mask product, as candle ops.
fn candle_sgd_step(s: &Setup, buffers: &mut [Option<Tensor>], masks: &[Tensor]) {
    for (i, v) in s.vars.iter().enumerate() {
        let p = v.as_tensor();
        let g = (&s.grads[i] + (p * WEIGHT_DECAY).expect("decay")).expect("g");
        let buf = match &buffers[i] {
            None => g.copy().expect("copy"),
            Some(b) => ((b * MOMENTUM).expect("m") + (&g * 1.0).expect("keep")).expect("buf"),
        };
        let d = (&g + (&buf * MOMENTUM).expect("m")).expect("d");
        buffers[i] = Some(buf);
        v.set(&(p - (d * LR).expect("lr")).expect("p"))
            .expect("set");
        v.set(&v.as_tensor().mul(&masks[i]).expect("mask"))
            .expect("set");
    }
}

fn sgd(c: &mut Criterion) {
    let s = setup();
    let mut params = SparseParams::new();
    for (i, (v, m)) in s.vars.iter().zip(&s.masks).enumerate() {
        params
            .insert(format!("w{i}"), v.clone(), m.clone())
            .expect("insert");
    }
    let config = SgdConfig::builder(LR)
        .momentum(MOMENTUM)
        .nesterov(true)
        .weight_decay(WEIGHT_DECAY)
        .build()
        .expect("config");
    let mut ours = Sgd::from_params(named(&s.vars), config).expect("sgd");
    let mask_tensors: Vec<Tensor> = s
        .masks
        .iter()
        .map(|m| m.to_tensor(DType::F32, &Device::Cpu).expect("mask"))
        .collect();
    let mut buffers = vec![None; SHAPES.len()];
    let mut g = c.benchmark_group("SGD step + masks, MLP 784-256-256-10 at density 0.1");
    g.bench_function("ours (in place)", |b| {
        b.iter(|| {
            ours.step(&s.store).expect("step");
            params.apply_masks().expect("masks");
        })
    });
    g.bench_function("candle ops", |b| {
        b.iter(|| candle_sgd_step(&s, &mut buffers, &mask_tensors))
    });
    g.finish();
}

/// AdamW as candle ops (no AMSGrad), `t` the 1-based step.
fn candle_adamw_step(s: &Setup, moments: &mut [Option<(Tensor, Tensor)>], t: i32) {
    let (b1, b2, eps, lr, wd) = (0.9f64, 0.999f64, 1e-8, 1e-3, 0.01);
    for (i, v) in s.vars.iter().enumerate() {
        let p = v.as_tensor();
        let g = &s.grads[i];
        let shrunk = (p * (1.0 - lr * wd)).expect("decay");
        let (m, vv) = match &moments[i] {
            None => (
                (g * (1.0 - b1)).expect("m"),
                (g.sqr().expect("sq") * (1.0 - b2)).expect("v"),
            ),
            Some((m, vv)) => (
                ((m * b1).expect("m") + (g * (1.0 - b1)).expect("g")).expect("m"),
                ((vv * b2).expect("v") + (g.sqr().expect("sq") * (1.0 - b2)).expect("g"))
                    .expect("v"),
            ),
        };
        let bc2 = (1.0 - b2.powi(t)).sqrt();
        let denom = ((vv.sqrt().expect("sqrt") / bc2).expect("bc") + eps).expect("eps");
        let step = ((&m / &denom).expect("div") * (lr / (1.0 - b1.powi(t)))).expect("step");
        v.set(&(shrunk - step).expect("p")).expect("set");
        moments[i] = Some((m, vv));
    }
}

fn adamw(c: &mut Criterion) {
    let s = setup();
    let config = AdamConfig::adamw(1e-3, 0.01).build().expect("config");
    let mut ours = Adam::from_params(named(&s.vars), config).expect("adam");
    let mut moments = vec![None; SHAPES.len()];
    let mut t = 0;
    let mut g = c.benchmark_group("AdamW step, MLP 784-256-256-10");
    g.bench_function("ours (in place)", |b| {
        b.iter(|| ours.step(&s.store).expect("step"))
    });
    g.bench_function("candle ops", |b| {
        b.iter(|| {
            t += 1;
            candle_adamw_step(&s, &mut moments, t)
        })
    });
    g.finish();
}

criterion_group!(benches, sgd, adamw);
criterion_main!(benches);
