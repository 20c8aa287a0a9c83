//! Criterion benches of smoe-dropout's MoE feed-forward block against the dense block
//! of equal parameters, forward and backward, at the quick language model's sizes
//! (16 × 64 tokens, d 128, N = 8 experts of 64 hidden units, dense 512): real top-k
//! dispatch at each k, routing alone, and the all-experts oracle. The ratio of a
//! dispatch row to the dense row is what the `smoe-dropout-step-faster` claim sees
//! inside a training step.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoe_dropout::mode::Mode;
use smoe_dropout::moe::{MoeLayer, RouterKind};
use sparse_core::init::{Init, init_vars};
use sparse_core::kernels::{Activation, linear};
use sparse_core::optim::trainable_vars;

const TOKENS: usize = 1024;
const DIM: usize = 128;
const EXPERTS: usize = 8;
const HIDDEN: usize = 64;

fn normal(shape: &[usize], std: f64, rng: &mut ChaCha8Rng) -> Tensor {
    let values = Init::Normal { mean: 0.0, std }
        .sample(shape, rng)
        .expect("sample");
    Tensor::from_vec(values, shape, &Device::Cpu).expect("tensor")
}

fn bench_moe(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x = Var::from_tensor(&normal(&[TOKENS, DIM], 1.0, &mut rng)).expect("input");
    let units = EXPERTS * HIDDEN;
    let dense: Vec<Var> = [
        normal(&[units, DIM], 0.02, &mut rng),
        normal(&[units], 0.02, &mut rng),
        normal(&[DIM, units], 0.02, &mut rng),
        normal(&[DIM], 0.02, &mut rng),
    ]
    .iter()
    .map(|t| Var::from_tensor(t).expect("var"))
    .collect();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let moe = MoeLayer::new(DIM, EXPERTS, HIDDEN, RouterKind::Frozen, 0, vb).expect("moe");
    init_vars(
        &trainable_vars(&varmap),
        |_, _| {
            Some(Init::Normal {
                mean: 0.0,
                std: 0.02,
            })
        },
        &mut rng,
    )
    .expect("init");

    let mut group = c.benchmark_group("moe ffn fwd+bwd 1024 tokens d128 N8 h64");
    group.sample_size(20);
    group.bench_function("dense 512 units", |b| {
        b.iter(|| {
            let h = linear(&x, &dense[0], Some(&dense[1]), Activation::Relu).expect("w1");
            let y = linear(&h, &dense[2], Some(&dense[3]), Activation::Identity).expect("w2");
            y.sum_all().and_then(|s| s.backward()).expect("backward")
        })
    });
    for k in [2, 4, 6, 8] {
        group.bench_function(format!("dispatch k={k}"), |b| {
            b.iter(|| {
                let y = moe.forward(&x, k, &mut Mode::Eval).expect("moe");
                y.sum_all().and_then(|s| s.backward()).expect("backward")
            })
        });
    }
    group.bench_function("routing only k=6", |b| {
        b.iter(|| moe.route(&x, 6, &mut Mode::Eval).expect("route"))
    });
    group.bench_function("all-experts oracle k=8", |b| {
        b.iter(|| {
            let routing = moe.route(&x, 8, &mut Mode::Eval).expect("route");
            let y = moe.forward_all_experts(&x, &routing).expect("oracle");
            y.sum_all().and_then(|s| s.backward()).expect("backward")
        })
    });
    group.finish();
}

criterion_group!(benches, bench_moe);
criterion_main!(benches);
