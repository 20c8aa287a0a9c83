//! Criterion benches of the custom kernels against candle's ops, on shapes small enough
//! for `cargo bench` to finish in minutes on 2 cores. The full-size comparison with
//! targets is `cargo run --release -p sparse-benches -- kernels`.

use candle_core::{Device, Tensor, Var};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparse_core::Mask;
use sparse_core::kernels::{
    Conv1dPadding, Conv2dParams, SparseConv1d, SparseLinear, conv1d_candle, conv2d_candle,
    conv2d_custom, depthwise_conv2d_candle, depthwise_conv2d_custom, layer_norm, softmax_last_dim,
};

fn uniform(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
}

fn mask(shape: &[usize], density: f64, seed: u64) -> Mask {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let bits = (0..shape.iter().product::<usize>())
        .map(|_| u8::from(rng.random_bool(density)))
        .collect();
    Mask::from_bits(shape, bits).expect("mask")
}

fn fwd_bwd(y: Tensor) {
    y.sum_all().and_then(|s| s.backward()).expect("backward");
}

fn depthwise(c: &mut Criterion) {
    let x = Var::from_tensor(&uniform(&[2, 32, 28, 28], 1)).expect("var");
    let w = Var::from_tensor(&uniform(&[32, 1, 7, 7], 2)).expect("var");
    let mut g = c.benchmark_group("depthwise 7x7 b2 c32 28x28 fwd+bwd");
    g.sample_size(10);
    g.bench_function("ours", |b| {
        b.iter(|| fwd_bwd(depthwise_conv2d_custom(&x, &w, None).expect("ours")))
    });
    g.bench_function("candle", |b| {
        b.iter(|| fwd_bwd(depthwise_conv2d_candle(&x, &w, None).expect("candle")))
    });
    g.finish();
}

fn sparse_linear(c: &mut Criterion) {
    let x = Var::from_tensor(&uniform(&[256, 1024], 3)).expect("var");
    let m = mask(&[1024, 1024], 0.1, 4);
    let w = (uniform(&[1024, 1024], 5)
        * m.to_tensor(candle_core::DType::F32, &Device::Cpu)
            .expect("mask"))
    .expect("masked");
    let w = Var::from_tensor(&w).expect("var");
    let layer = SparseLinear::new(w.as_tensor().clone(), &m).expect("layer");
    let mut g = c.benchmark_group("sparse linear 1024x1024 b256 density 0.1 fwd+bwd");
    g.sample_size(20);
    g.bench_function("ours", |b| {
        b.iter(|| fwd_bwd(layer.forward_custom(&x).expect("ours")))
    });
    g.bench_function("candle dense", |b| {
        b.iter(|| fwd_bwd(x.matmul(&w.t().expect("t")).expect("candle")))
    });
    g.finish();
}

fn sparse_conv1d(c: &mut Criterion) {
    let x = Var::from_tensor(&uniform(&[4, 64, 128], 6)).expect("var");
    let w = Var::from_tensor(&uniform(&[64, 64, 39], 7)).expect("var");
    let m = mask(&[64, 64, 39], 0.13, 8);
    let layer =
        SparseConv1d::new(w.as_tensor().clone(), &m, Conv1dPadding::ReplicateRight).expect("layer");
    let mut g = c.benchmark_group("sparse conv1d k39 b4 c64 L128 density 0.13 fwd+bwd");
    g.sample_size(10);
    g.bench_function("ours", |b| {
        b.iter(|| fwd_bwd(layer.forward_custom(&x).expect("ours")))
    });
    g.bench_function("candle dense", |b| {
        b.iter(|| {
            fwd_bwd(conv1d_candle(&x, &w, None, Conv1dPadding::ReplicateRight).expect("candle"))
        })
    });
    g.finish();
}

fn conv2d(c: &mut Criterion) {
    let x = Var::from_tensor(&uniform(&[8, 32, 16, 16], 9)).expect("var");
    let w = Var::from_tensor(&uniform(&[32, 32, 3, 3], 10)).expect("var");
    let p = Conv2dParams {
        stride: 1,
        padding: 1,
    };
    let mut g = c.benchmark_group("conv2d 3x3 b8 32->32 16x16 fwd+bwd");
    g.sample_size(10);
    g.bench_function("ours", |b| {
        b.iter(|| fwd_bwd(conv2d_custom(&x, &w, None, p).expect("ours")))
    });
    g.bench_function("candle", |b| {
        b.iter(|| fwd_bwd(conv2d_candle(&x, &w, None, p).expect("candle")))
    });
    g.finish();
}

fn layer_norm_rows(c: &mut Criterion) {
    // a ConvNeXt block's channels-last norm: b8, 16x16 positions, 96 channels
    let x = Var::from_tensor(&uniform(&[8 * 16 * 16, 96], 9)).expect("var");
    let w = Var::from_tensor(&uniform(&[96], 10)).expect("var");
    let b = Var::from_tensor(&uniform(&[96], 11)).expect("var");
    let mut g = c.benchmark_group("layer norm 2048x96 fwd+bwd");
    g.sample_size(10);
    g.bench_function("ours", |bench| {
        bench.iter(|| fwd_bwd(layer_norm(&x, &w, &b, 1e-6).expect("ours")))
    });
    g.bench_function("candle layer_norm_slow", |bench| {
        bench.iter(|| fwd_bwd(candle_nn::ops::layer_norm_slow(&x, &w, &b, 1e-6).expect("candle")))
    });
    g.finish();
}

fn softmax_rows(c: &mut Criterion) {
    // attention scores: b8, 4 heads, 64 queries x 64 keys
    let x = Var::from_tensor(&uniform(&[8 * 4 * 64, 64], 12)).expect("var");
    let mut g = c.benchmark_group("softmax 2048x64 fwd+bwd");
    g.sample_size(10);
    g.bench_function("ours", |bench| {
        bench.iter(|| fwd_bwd(softmax_last_dim(&x).expect("ours")))
    });
    g.bench_function("candle softmax", |bench| {
        bench.iter(|| fwd_bwd(candle_nn::ops::softmax(&x, candle_core::D::Minus1).expect("candle")))
    });
    g.finish();
}

criterion_group!(
    benches,
    depthwise,
    sparse_linear,
    sparse_conv1d,
    conv2d,
    layer_norm_rows,
    softmax_rows
);
criterion_main!(benches);
