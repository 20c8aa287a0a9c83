//! RigL training a two-layer MLP whose weights are stored as their active values only.
//!
//! `cargo run --release -p sparse-core --example packed_rigl`
//!
//! The data is a seeded synthetic classification task (labels from a random linear
//! teacher), so the example runs anywhere in seconds. It shows the pieces a user wires
//! together: `PackedWeight`s shared by the layers, the registry and the optimizer; the
//! dense gradient requested only on RigL's update steps; the engine's report.

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparse_core::kernels::{
    Activation, PackedSparseLinear, PackedWeight, SparseLayer, cross_entropy,
    set_weight_grads_for_step,
};
use sparse_core::{
    Allocation, DynamicSparsity, LayerSpec, Mask, Optimizer, ParamGroup, Sgd, SgdConfig,
    SparseParams, SparsityEngine,
};

const INPUTS: usize = 64;
const HIDDEN: usize = 128;
const CLASSES: usize = 4;
const SAMPLES: usize = 512;
const BATCH: usize = 64;
const EPOCHS: usize = 20;
const DENSITY: f64 = 0.1;

fn main() -> sparse_core::Result<()> {
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(0);

    // A random linear teacher labels random inputs.
    let x: Vec<f32> = (0..SAMPLES * INPUTS)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let teacher: Vec<f32> = (0..INPUTS * CLASSES)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let labels: Vec<u32> = x
        .chunks(INPUTS)
        .map(|row| {
            let score =
                |c: usize| -> f32 { (0..INPUTS).map(|i| row[i] * teacher[i * CLASSES + c]).sum() };
            (0..CLASSES)
                .max_by(|&a, &b| score(a).total_cmp(&score(b)))
                .unwrap_or(0) as u32
        })
        .collect();
    let x = Tensor::from_vec(x, (SAMPLES, INPUTS), &dev)?;
    let labels = Tensor::from_vec(labels, SAMPLES, &dev)?;

    // ERK densities, Bernoulli masks, packed weights shared with the registry.
    let shapes = [
        ("fc1.weight", [HIDDEN, INPUTS]),
        ("fc2.weight", [CLASSES, HIDDEN]),
    ];
    let specs: Vec<LayerSpec> = shapes.iter().map(|(n, s)| LayerSpec::new(*n, s)).collect();
    let densities = Allocation::erk().densities(&specs, DENSITY, None)?;
    let mut params = SparseParams::new();
    let mut layers = Vec::new();
    let mut biases = Vec::new();
    for (i, ((name, shape), d)) in shapes.iter().zip(&densities).enumerate() {
        let n = shape[0] * shape[1];
        let bound = (1.0 / shape[1] as f32).sqrt();
        let w: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
        let keep: Vec<bool> = (0..n).map(|_| rng.random::<f64>() < *d).collect();
        let weight = PackedWeight::new(
            &Tensor::from_vec(w, &shape[..], &dev)?,
            &Mask::from_bools(shape, &keep)?,
        )?;
        params.insert_packed(*name, &weight)?;
        let bias = Var::zeros(shape[0], DType::F32, &dev)?;
        let activation = if i == 0 {
            Activation::Relu
        } else {
            Activation::Identity
        };
        layers.push(
            PackedSparseLinear::from_packed(weight)?
                .with_bias(bias.as_tensor().clone())?
                .with_activation(activation)
                .with_name(*name),
        );
        biases.push((name.replace("weight", "bias"), bias));
    }

    let steps_per_epoch = SAMPLES / BATCH;
    let total_steps = EPOCHS * steps_per_epoch;
    let rigl = DynamicSparsity::rigl(steps_per_epoch, total_steps)
        .seed(1)
        .build()?;
    let mut engine = SparsityEngine::new(rigl, &params)?;
    let sgd = SgdConfig::builder(0.1)
        .momentum(0.9)
        .weight_decay(5e-4)
        .build()?;
    let groups = vec![
        ParamGroup::new(Vec::new()).with_packed(params.packed_weights()),
        ParamGroup::with_weight_decay(biases, 0.0),
    ];
    let mut opt = Sgd::new(groups, sgd)?;

    let forward = |layers: &[PackedSparseLinear], x: &Tensor| -> sparse_core::Result<Tensor> {
        layers[1].forward(&layers[0].forward(x)?)
    };
    let mut step = 0;
    for epoch in 1..=EPOCHS {
        let mut loss_sum = 0.0;
        for b in 0..steps_per_epoch {
            step += 1;
            let mut refs: Vec<&mut dyn SparseLayer> = layers
                .iter_mut()
                .map(|l| l as &mut dyn SparseLayer)
                .collect();
            set_weight_grads_for_step(&mut refs, &engine, step)?;
            let xb = x.narrow(0, b * BATCH, BATCH)?;
            let yb = labels.narrow(0, b * BATCH, BATCH)?;
            let loss = cross_entropy(&forward(&layers, &xb)?, &yb, 0.0)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            let grads = loss.backward()?;
            opt.step(&grads)?;
            let report = engine.after_optimizer_step(step, &mut params, &grads, Some(&mut opt))?;
            if report.prune_regrow && epoch % 5 == 0 && b + 1 == steps_per_epoch {
                let moved: usize = report.layers.iter().map(|l| l.grown).sum();
                println!(
                    "  step {step}: RigL moved {moved} weights, ITOP rate {:.3}",
                    report.itop_rate
                );
            }
        }
        let predicted = forward(&layers, &x)?.argmax(1)?;
        let correct = predicted
            .eq(&labels)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()?;
        println!(
            "epoch {epoch:>2}: loss {:.4}, train accuracy {:.3}, density {:.3}",
            loss_sum / steps_per_epoch as f64,
            correct / SAMPLES as f32,
            params.total_density()
        );
    }
    Ok(())
}
