//! The large-kernel layer against hand values and direct square-kernel references:
//! "same" padding of `K×N` kernels, the decomposition as one zero-padded `K×K`
//! kernel, the ERF of a known kernel, and the FLOP count of each layer.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use slak::{Branch, ModelSpec, SlakNet};
use sparse_core::Mask;
use sparse_core::flops::InferenceFlops;
use sparse_core::kernels::{SparseDepthwiseConv2d, depthwise_conv2d};
use sparse_repro::erf::ErfMap;

fn spec(kernel: [usize; 3], decompose: bool) -> ModelSpec {
    ModelSpec {
        in_chans: 1,
        num_classes: 2,
        depths: vec![1, 1],
        dims: vec![4, 8],
        kernel_size: kernel.to_vec(),
        width_factor: 1.0,
        decompose,
        stem: 2,
        drop_path: 0.0,
        layer_scale: 1.0,
    }
}

fn build(spec: &ModelSpec, seed: u64) -> (VarMap, SlakNet) {
    let varmap = VarMap::new();
    let net = SlakNet::new(
        spec,
        &varmap,
        &mut ChaCha8Rng::seed_from_u64(seed),
        ChaCha8Rng::seed_from_u64(1),
    )
    .unwrap();
    (varmap, net)
}

fn vars(varmap: &VarMap) -> BTreeMap<String, Var> {
    let data = varmap.data().lock().unwrap();
    data.iter().map(|(n, v)| (n.clone(), v.clone())).collect()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    values(a)
        .iter()
        .zip(values(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A `[c, 1, h, w]` kernel embedded at the centre of a `[c, 1, k, k]` one.
fn centred(kernel: &Tensor, k: usize) -> Tensor {
    let (c, _, h, w) = kernel.dims4().unwrap();
    let (top, left) = ((k - h) / 2, (k - w) / 2);
    kernel
        .pad_with_zeros(2, top, k - h - top)
        .unwrap()
        .pad_with_zeros(3, left, k - w - left)
        .unwrap()
        .reshape((c, 1, k, k))
        .unwrap()
}

#[test]
fn tall_and_wide_kernels_pad_the_same_per_axis() {
    // one channel, a 7x7 delta at (3, 3), K = 5, N = 3, w[i][j] = 3i + j + 1: the
    // output is the kernel flipped around the delta and zero elsewhere
    let mut delta = vec![0f32; 49];
    delta[3 * 7 + 3] = 1.0;
    let x = Tensor::from_vec(delta, (1, 1, 7, 7), &Device::Cpu).unwrap();
    for branch in [Branch::Tall, Branch::Wide] {
        let (kh, kw) = branch.kernel(5, 3);
        let w: Vec<f32> = (0..kh * kw).map(|v| v as f32 + 1.0).collect();
        let weight = Tensor::from_vec(w.clone(), (1, 1, kh, kw), &Device::Cpu).unwrap();
        let full = Mask::ones(&[1, 1, kh, kw]);
        let sparse = SparseDepthwiseConv2d::new(weight.clone(), &full).unwrap();
        for y in [
            depthwise_conv2d(&x, &weight, None).unwrap(),
            sparse.forward(&x).unwrap(),
        ] {
            assert_eq!(y.dims4().unwrap(), (1, 1, 7, 7), "{branch:?}: same size");
            let y = values(&y);
            let (ch, cw) = (kh / 2, kw / 2);
            for row in 0..7isize {
                for col in 0..7isize {
                    let (a, b) = (row - 3, col - 3);
                    let inside = a.unsigned_abs() <= ch && b.unsigned_abs() <= cw;
                    let expected = if inside {
                        let (i, j) = ((ch as isize - a) as usize, (cw as isize - b) as usize);
                        w[i * kw + j]
                    } else {
                        0.0
                    };
                    assert_eq!(
                        y[(row * 7 + col) as usize],
                        expected,
                        "{branch:?} ({row}, {col})"
                    );
                }
            }
        }
    }
}

/// Copies every weight of `from` into `to` (same names), the large-kernel branches
/// excepted; then sets the undecomposed net's `K×K` kernel to the decomposed
/// branches' sum, zero-padded, and its `N×N` kernel to theirs.
fn merge_into(from: &VarMap, to: &VarMap, k: usize) {
    let (from, to) = (vars(from), vars(to));
    for (name, var) in &to {
        if let Some(source) = from.get(name) {
            var.set(source.as_tensor()).unwrap();
        }
    }
    for stage in 0..2 {
        let prefix = format!("stages.{stage}.0.large_kernel");
        let get = |b: &str| {
            from[&format!("{prefix}.{b}.conv.weight")]
                .as_tensor()
                .clone()
        };
        let merged = (centred(&get("Decom1"), k) + centred(&get("Decom2"), k)).unwrap();
        to[&format!("{prefix}.lkb_origin.conv.weight")]
            .set(&merged)
            .unwrap();
        to[&format!("{prefix}.small_conv.conv.weight")]
            .set(&get("small_conv"))
            .unwrap();
    }
}

#[test]
fn the_decomposed_layer_equals_one_zero_padded_square_kernel() {
    // with BatchNorm in evaluation (running mean 0, variance 1, weight 1, bias 0 in
    // every branch) the three branches sum to one K×K convolution; layer scale 1 so
    // that the blocks count in the output
    let k = 5;
    let (decomposed_vm, decomposed) = build(&spec([k, k, 3], true), 3);
    let (square_vm, square) = build(&spec([k, k, 3], false), 4);
    let x = Tensor::randn(0f32, 1.0, (2, 1, 12, 12), &Device::Cpu).unwrap();
    for n_by_n_only in [false, true] {
        if n_by_n_only {
            // the small branch alone: the square kernel is its zero-padded copy
            for (name, var) in vars(&decomposed_vm) {
                if name.contains("Decom") && name.ends_with("conv.weight") {
                    var.set(&var.zeros_like().unwrap()).unwrap();
                }
            }
        }
        merge_into(&decomposed_vm, &square_vm, k);
        let a = decomposed.forward_t(&x, false).unwrap();
        let b = square.forward_t(&x, false).unwrap();
        assert!(max_abs_diff(&a, &b) < 1e-5, "N x N only: {n_by_n_only}");
        let fa = decomposed.features_t(&x, false).unwrap();
        let fb = square.features_t(&x, false).unwrap();
        assert!(max_abs_diff(&fa, &fb) < 1e-5, "N x N only: {n_by_n_only}");
    }
}

#[test]
fn erf_of_one_decomposed_layer_with_unit_weights() {
    // K = 5, N = 3, every tap 1, no BatchNorm, an 11×11 input of ones: the centre
    // output's gradient is 3 on the centre 3×3 (three branches), 1 on the twelve arm
    // cells (one branch) and 0 elsewhere; scaled by log10(x + 1) / max: centre 1,
    // arms 1/2, total 15
    let x = Tensor::ones((1, 1, 11, 11), DType::F32, &Device::Cpu).unwrap();
    let kernels: Vec<Tensor> = [Branch::Tall, Branch::Wide, Branch::Small]
        .iter()
        .map(|b| {
            let (kh, kw) = b.kernel(5, 3);
            Tensor::ones((1, 1, kh, kw), DType::F32, &Device::Cpu).unwrap()
        })
        .collect();
    let map = ErfMap::measure(
        |input| {
            let conv = |w| depthwise_conv2d(input, w, None).map_err(candle_core::Error::wrap);
            let mut y = conv(&kernels[0])?;
            for w in &kernels[1..] {
                y = (y + conv(w)?)?;
            }
            Ok(y)
        },
        &x,
    )
    .unwrap();
    let scaled = map.scaled();
    let at = |r: usize, c: usize| scaled[r * 11 + c];
    assert_eq!(scaled.iter().filter(|&&v| v > 0.0).count(), 21);
    for r in 4..=6 {
        for c in 4..=6 {
            assert!((at(r, c) - 1.0).abs() < 1e-9);
        }
    }
    for (r, c) in [(3, 5), (7, 4), (5, 3), (6, 7)] {
        assert!((at(r, c) - 0.5).abs() < 1e-6, "({r}, {c}) = {}", at(r, c));
    }
    let cases = [(0.05, 1.0), (0.2, 9.0), (0.5, 9.0), (0.99, 25.0)];
    for (t, cells) in cases {
        let ratio = map.area_ratio(t).unwrap();
        assert!((ratio - cells / 121.0).abs() < 1e-12, "t {t}: {ratio}");
    }
}

#[test]
fn layer_flops_name_every_weight_and_count_hand_values() {
    let spec = spec([5, 5, 3], true);
    let (varmap, _) = build(&spec, 0);
    let layers = spec.layer_flops(8, 8);
    // every weight of rank 2 or 4 once, under its VarMap name, with its size
    let weights: BTreeMap<String, usize> = vars(&varmap)
        .into_iter()
        .filter(|(_, v)| v.rank() >= 2)
        .map(|(n, v)| (n, v.elem_count()))
        .collect();
    let counted: BTreeMap<String, usize> = layers
        .iter()
        .map(|l| (l.weight.clone(), l.weight_numel()))
        .collect();
    assert_eq!(counted, weights);
    assert_eq!(counted.values().sum::<usize>(), 1268);
    // the first stage's decomposed layer: C = 4 on a 4×4 map, 5×3 + 3×5 + 3×3 = 39
    // taps, 2·4·39·16 = 4992 FLOPs
    let stage0: f64 = layers
        .iter()
        .filter(|l| l.weight.starts_with("stages.0.0.large_kernel"))
        .map(|l| l.dense_flops())
        .sum();
    assert_eq!(stage0, 4992.0);
    // masks count as their non-zeros: half of Decom1's 60 taps → 30 · 2 · 16 fewer
    let decom1 = "stages.0.0.large_kernel.Decom1.conv.weight";
    let keep: Vec<bool> = (0..60).map(|i| i % 2 == 1).collect();
    let masks = BTreeMap::from([(
        decom1.to_string(),
        Mask::from_bools(&[4, 1, 5, 3], &keep).unwrap(),
    )]);
    let flops = InferenceFlops::new(&layers, &masks);
    assert_eq!(
        flops.dense_total() - flops.sparse_total(),
        30.0 * 2.0 * 16.0
    );
}
