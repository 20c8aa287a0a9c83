//! Autograd through the whole SCNN agrees with central finite differences for one
//! entry of every trainable tensor (this caught candle 0.11.1's wrong conv1d
//! weight gradients; the model now uses conv2d and matmul instead).

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use dsn_tsc::data::synthetic;
use dsn_tsc::model::{ModelSpec, Scnn};
use dsn_tsc::{Arm, Padding, TrainConfig};
use rand::SeedableRng;
use sparse_core::optim::trainable_vars;

fn check(in_channels: usize, padding: Padding) {
    let data = synthetic(40, 10, 24, 1);
    let c = TrainConfig::builder()
        .arm(Arm::Dense)
        .channels(4)
        .depth(2)
        .kernel(9)
        .small_kernel(3)
        .padding(padding)
        .build()
        .unwrap();
    let spec = ModelSpec::for_config(&c, in_channels, 2).unwrap();
    let vm = VarMap::new();
    let model = Scnn::new(
        spec,
        &vm,
        &Device::Cpu,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
    )
    .unwrap();
    let idx: Vec<usize> = (0..8).collect();
    let (x, y) = data.batch(&data.train, &idx, &Device::Cpu).unwrap();
    // distinct channels: the series scaled by 1, 0.5, 0.33, ...
    let scales: Vec<f32> = (0..in_channels).map(|c| 1.0 / (c + 1) as f32).collect();
    let scales = Tensor::from_vec(scales, (1, in_channels, 1), &Device::Cpu).unwrap();
    let x = x.broadcast_mul(&scales).unwrap();
    let loss_of = || candle_nn::loss::nll(&model.forward_t(&x, true).unwrap(), &y).unwrap();
    let grads = loss_of().backward().unwrap();
    let mut failures = Vec::new();
    for (name, v) in trainable_vars(&vm) {
        let grad = grads
            .get(v.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let w0 = v
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for i in [0, w0.len() / 2, w0.len() - 1] {
            let eps = 3e-3f32;
            let at = |delta: f32| {
                let mut w = w0.clone();
                w[i] += delta;
                v.set(&Tensor::from_vec(w, v.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                f64::from(loss_of().to_scalar::<f32>().unwrap())
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * f64::from(eps));
            v.set(&Tensor::from_vec(w0.clone(), v.dims(), &Device::Cpu).unwrap())
                .unwrap();
            let g = f64::from(grad[i]);
            if (g - fd).abs() > 1e-2 + 0.1 * fd.abs() {
                failures.push(format!(
                    "{name}[{i}]: autograd {g} vs finite difference {fd}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn univariate_replicate_padding() {
    check(1, Padding::Replicate);
}

#[test]
fn multivariate_zero_padding() {
    check(3, Padding::Zero);
}

/// The sparse kernel (with the dense weight gradient) computes what the dense
/// convolution on the masked weight computes: same outputs, same gradients.
#[test]
fn sparse_kernel_matches_the_masked_dense_convolution() {
    use dsn_tsc::training::constraint_regions;
    use sparse_core::SparseParams;
    use sparse_core::kernels::WeightGrad;

    let data = synthetic(40, 10, 30, 2);
    let c = TrainConfig::builder()
        .arm(Arm::Dsn)
        .channels(4)
        .depth(2)
        .kernel(9)
        .small_kernel(3)
        .density(0.3)
        .build()
        .unwrap();
    let spec = ModelSpec::for_config(&c, 1, 2).unwrap();
    let vm = VarMap::new();
    let mut model = Scnn::new(
        spec.clone(),
        &vm,
        &Device::Cpu,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(3),
    )
    .unwrap();
    let mut params = SparseParams::new();
    let vars: std::collections::BTreeMap<String, candle_core::Var> =
        trainable_vars(&vm).into_iter().collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    for (name, region) in constraint_regions(&spec, 3).unwrap() {
        let mask = region
            .initial_mask(0.3, dsn_tsc::MaskInit::RemainRandom, &mut rng)
            .unwrap();
        params
            .insert(name.clone(), vars[&name].clone(), mask)
            .unwrap();
    }
    let idx: Vec<usize> = (0..8).collect();
    let (x, y) = data.batch(&data.train, &idx, &Device::Cpu).unwrap();
    let run = |model: &Scnn| {
        let lp = model.forward_t(&x, true).unwrap();
        let grads = candle_nn::loss::nll(&lp, &y).unwrap().backward().unwrap();
        let g: Vec<Vec<f32>> = vars
            .values()
            .map(|v| {
                grads
                    .get(v.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            })
            .collect();
        (lp.flatten_all().unwrap().to_vec1::<f32>().unwrap(), g)
    };
    let (dense_out, dense_grads) = run(&model);
    model.attach_masks(&params, WeightGrad::Dense).unwrap();
    let (sparse_out, sparse_grads) = run(&model);
    let close = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-4 + 1e-3 * y.abs())
    };
    assert!(
        close(&sparse_out, &dense_out),
        "{sparse_out:?} vs {dense_out:?}"
    );
    for ((name, a), b) in vars.keys().zip(&sparse_grads).zip(&dense_grads) {
        assert!(close(a, b), "gradient of {name} differs");
    }
}
