//! Dynamic sparse training on packed weights: RigL, SET and GraNet run by the engine on
//! `PackedSparseLinear` layers (weights stored as their active values) follow the same
//! trajectory as on `SparseLinear` layers over dense weights, and checkpoints of either
//! storage load into the other.

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparse_core::checkpoint::{self, CheckpointMeta, Sources, Targets};
use sparse_core::kernels::{
    PackedSparseLinear, PackedWeight, SparseLayer, SparseLinear, set_weight_grads_for_step,
    sync_masks,
};
use sparse_core::{
    Adam, AdamConfig, DynamicSparsity, GradualPruning, GrowthInit, Mask, Optimizer,
    OptimizerBuffers, ParamGroup, Sgd, SgdConfig, SparseParams, SparsityEngine,
};

const SHAPES: [(&str, [usize; 2]); 2] = [("fc1.weight", [16, 12]), ("fc2.weight", [4, 16])];
const DENSITY: f64 = 0.3;
const STEPS: usize = 12;

fn tensor(shape: &[usize], rng: &mut ChaCha8Rng, scale: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| (rng.random::<f32>() - 0.5) * scale)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Initial weights and masks, inputs and targets, the same for every run.
struct Problem {
    weights: Vec<Tensor>,
    masks: Vec<Mask>,
    x: Tensor,
    target: Tensor,
}

fn problem() -> Problem {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let weights = SHAPES
        .iter()
        .map(|(_, s)| tensor(s, &mut rng, 1.0))
        .collect();
    let masks = SHAPES
        .iter()
        .map(|(_, s)| {
            let keep: Vec<bool> = (0..s[0] * s[1])
                .map(|_| rng.random::<f64>() < DENSITY)
                .collect();
            Mask::from_bools(s, &keep).unwrap()
        })
        .collect();
    Problem {
        weights,
        masks,
        x: tensor(&[8, 12], &mut rng, 2.0),
        target: tensor(&[8, 4], &mut rng, 2.0),
    }
}

/// The two-layer model on either storage.
enum Layers {
    Dense(Vec<SparseLinear>),
    Packed(Vec<PackedSparseLinear>),
}

struct Run {
    params: SparseParams,
    layers: Layers,
    optimizer: Box<dyn Optim>,
    engine: SparsityEngine,
}

/// An optimizer the engine can read and mask.
trait Optim: Optimizer + OptimizerBuffers {}
impl<T: Optimizer + OptimizerBuffers> Optim for T {}

#[derive(Clone, Copy)]
enum Method {
    RigL,
    Set,
    GraNet,
    /// SET with grown weights starting at a fixed value instead of zero.
    SetGrowValue,
}

fn engine_config(method: Method) -> DynamicSparsity {
    match method {
        Method::RigL => DynamicSparsity::rigl(3, STEPS).seed(9).build(),
        Method::Set => DynamicSparsity::set(2, STEPS).seed(9).build(),
        Method::SetGrowValue => DynamicSparsity::set(2, STEPS)
            .growth_init(GrowthInit::Value(0.05))
            .seed(9)
            .build(),
        Method::GraNet => {
            let gradual = GradualPruning::new(DENSITY, 0.15, 2, 10, 2, true).unwrap();
            DynamicSparsity::granet(gradual, 3, STEPS).seed(9).build()
        }
    }
    .unwrap()
}

fn optimizer(
    params: Vec<(String, Var)>,
    packed: Vec<(String, PackedWeight)>,
    adam: bool,
) -> Box<dyn Optim> {
    let group = ParamGroup::new(params).with_packed(packed);
    if adam {
        // Moments are masked so that a regrown entry starts from zero state in the
        // dense-stored run too, as a packed weight's always does.
        let config = AdamConfig::adamw(0.01, 0.1)
            .mask_moments(true)
            .build()
            .unwrap();
        Box::new(Adam::new(vec![group], config).unwrap())
    } else {
        let config = SgdConfig::builder(0.05)
            .momentum(0.9)
            .weight_decay(5e-4)
            .build()
            .unwrap();
        Box::new(Sgd::new(vec![group], config).unwrap())
    }
}

fn run(p: &Problem, method: Method, packed: bool, adam: bool) -> Run {
    let mut params = SparseParams::new();
    let (layers, vars, weights) = if packed {
        let mut layers = Vec::new();
        for ((name, _), (w, m)) in SHAPES.iter().zip(p.weights.iter().zip(&p.masks)) {
            let weight = PackedWeight::new(w, m).unwrap();
            params.insert_packed(*name, &weight).unwrap();
            layers.push(
                PackedSparseLinear::from_packed(weight)
                    .unwrap()
                    .with_name(*name),
            );
        }
        (Layers::Packed(layers), Vec::new(), params.packed_weights())
    } else {
        let mut layers = Vec::new();
        let mut vars = Vec::new();
        for ((name, _), (w, m)) in SHAPES.iter().zip(p.weights.iter().zip(&p.masks)) {
            let var = Var::from_tensor(w).unwrap();
            params.insert(*name, var.clone(), m.clone()).unwrap();
            layers.push(
                SparseLinear::new(var.as_tensor().clone(), m)
                    .unwrap()
                    .with_name(*name),
            );
            vars.push((name.to_string(), var));
        }
        (Layers::Dense(layers), vars, Vec::new())
    };
    let engine = SparsityEngine::new(engine_config(method), &params).unwrap();
    Run {
        optimizer: optimizer(vars, weights, adam),
        params,
        layers,
        engine,
    }
}

fn layer_refs(layers: &mut Layers) -> Vec<&mut dyn SparseLayer> {
    match layers {
        Layers::Dense(l) => l.iter_mut().map(|l| l as &mut dyn SparseLayer).collect(),
        Layers::Packed(l) => l.iter_mut().map(|l| l as &mut dyn SparseLayer).collect(),
    }
}

impl Run {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = match &self.layers {
            Layers::Dense(l) => l[0].forward_custom(x),
            Layers::Packed(l) => l[0].forward_custom(x),
        }
        .unwrap()
        .relu()
        .unwrap();
        match &self.layers {
            Layers::Dense(l) => l[1].forward_custom(&h),
            Layers::Packed(l) => l[1].forward_custom(&h),
        }
        .unwrap()
    }

    fn step(&mut self, p: &Problem, step: usize) {
        let engine = &self.engine;
        let mut layers = layer_refs(&mut self.layers);
        set_weight_grads_for_step(&mut layers, engine, step).unwrap();
        let loss = (self.forward(&p.x) - &p.target)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        self.optimizer.step(&grads).unwrap();
        let opt: &mut dyn OptimizerBuffers = &mut *self.optimizer;
        self.engine
            .after_optimizer_step(step, &mut self.params, &grads, Some(opt))
            .unwrap();
        let params = &self.params;
        let mut layers = layer_refs(&mut self.layers);
        sync_masks(&mut layers, params).unwrap();
    }

    fn dense_weights(&self) -> Vec<Vec<f32>> {
        self.params
            .iter()
            .map(|p| {
                p.dense_weight()
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            })
            .collect()
    }

    fn masks(&self) -> Vec<Mask> {
        self.params.iter().map(|p| p.mask.clone()).collect()
    }
}

fn assert_weights_close(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    for (l, (a, b)) in a.iter().zip(b).enumerate() {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * (1.0 + x.abs()),
                "{what}: layer {l} entry {i}: {x} vs {y}"
            );
        }
    }
}

/// The packed run computes with the same kernels as the dense-stored one; they differ
/// only in float rounding on update steps (the packed values' gradient is summed over
/// active entries, the dense weight's by a dense product), so the masks must agree
/// exactly and the weights to rounding.
fn same_trajectory(method: Method, adam: bool) {
    let p = problem();
    let mut dense = run(&p, method, false, adam);
    let mut packed = run(&p, method, true, adam);
    let mut changed = 0;
    for step in 1..=STEPS {
        let before = packed.masks();
        dense.step(&p, step);
        packed.step(&p, step);
        assert_eq!(dense.masks(), packed.masks(), "step {step}: masks");
        assert_weights_close(
            &dense.dense_weights(),
            &packed.dense_weights(),
            &format!("step {step}"),
        );
        if packed.masks() != before {
            changed += 1;
        }
        for param in packed.params.iter() {
            let values = param.trainable_var();
            assert_eq!(
                values.dims(),
                &[param.mask.nnz()],
                "packed values follow the mask"
            );
        }
    }
    assert!(
        changed >= 2,
        "the topology must move for the test to mean anything"
    );
    // the optimizers' exported state (dense shape) agrees too
    let (a, b) = (
        dense.optimizer.export_state().unwrap(),
        packed.optimizer.export_state().unwrap(),
    );
    assert_eq!(
        a.tensors.keys().collect::<Vec<_>>(),
        b.tensors.keys().collect::<Vec<_>>()
    );
    for (k, t) in &a.tensors {
        if t.dtype() != DType::F32 {
            continue;
        }
        let x: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<f32> = b.tensors[k].flatten_all().unwrap().to_vec1().unwrap();
        assert_weights_close(&[x], &[y], k);
    }
}

#[test]
fn rigl_with_sgd_momentum_trains_packed_weights_like_dense_ones() {
    same_trajectory(Method::RigL, false);
}

#[test]
fn set_with_adamw_trains_packed_weights_like_dense_ones() {
    same_trajectory(Method::Set, true);
}

#[test]
fn grown_weights_take_the_configured_value_on_packed_weights_too() {
    same_trajectory(Method::SetGrowValue, false);
}

#[test]
fn granet_shrinks_packed_weights_like_dense_ones() {
    same_trajectory(Method::GraNet, false);
}

#[test]
fn rigl_refuses_packed_weights_without_their_dense_gradient() {
    let p = problem();
    let mut packed = run(&p, Method::RigL, true, false);
    // steps 1 and 2 are ordinary; step 3 is an update step, run here in masked mode
    for step in 1..=2 {
        packed.step(&p, step);
    }
    let loss = (packed.forward(&p.x) - &p.target)
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    packed.optimizer.step(&grads).unwrap();
    let opt: &mut dyn OptimizerBuffers = &mut *packed.optimizer;
    let err = packed
        .engine
        .after_optimizer_step(3, &mut packed.params, &grads, Some(opt))
        .unwrap_err();
    assert!(err.to_string().contains("fc1.weight"), "{err}");
}

#[test]
fn checkpoints_do_not_depend_on_the_storage() {
    let p = problem();
    let mut packed = run(&p, Method::RigL, true, false);
    for step in 1..=7 {
        packed.step(&p, step);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("packed.safetensors");
    let meta = CheckpointMeta::new("packed-dst-test", "0", serde_json::Value::Null, 7, 0);
    let empty = candle_nn::VarMap::new();
    checkpoint::save(
        &path,
        &empty,
        Sources {
            masks: Some(&packed.params),
            optimizer: Some(&*packed.optimizer),
            extra: None,
        },
        &meta,
    )
    .unwrap();

    // into a fresh packed model (from the initial masks) and into a dense-stored one
    let mut restored = Vec::new();
    for into_packed in [true, false] {
        let mut target = run(&p, Method::RigL, into_packed, false);
        let varmap = candle_nn::VarMap::new();
        if !into_packed {
            let mut data = varmap.data().lock().unwrap();
            for param in target.params.iter() {
                data.insert(param.name.clone(), param.dense_var().unwrap().clone());
            }
        }
        checkpoint::load(
            &path,
            &varmap,
            Targets {
                params: Some(&mut target.params),
                optimizer: Some(&mut *target.optimizer),
            },
        )
        .unwrap();
        assert_eq!(target.masks(), packed.masks(), "into packed: {into_packed}");
        assert_eq!(
            target.dense_weights(),
            packed.dense_weights(),
            "into packed: {into_packed}"
        );
        let (a, b) = (
            packed.optimizer.export_state().unwrap(),
            target.optimizer.export_state().unwrap(),
        );
        for (k, t) in &a.tensors {
            let x: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            let y: Vec<f32> = b.tensors[k].flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(x, y, "{k}");
        }
        sync_masks(&mut layer_refs(&mut target.layers), &target.params).unwrap();
        restored.push(target);
    }
    // the restored optimizers (a packed one packs its imported buffers) step on alike
    packed.step(&p, 8);
    for target in &mut restored {
        target.step(&p, 8);
        assert_weights_close(
            &target.dense_weights(),
            &packed.dense_weights(),
            "step 8 after load",
        );
    }
}

/// RigL on one 3x3 convolution (4 → 6 channels, 7x7 images) followed by a fixed
/// linear read-out: `PackedSparseConv2d` over a packed weight against `SparseConv2d`
/// over a dense one.
#[test]
fn rigl_trains_a_packed_conv2d_like_a_dense_one() {
    use sparse_core::kernels::{Conv2dParams, PackedSparseConv2d, SparseConv2d};

    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let shape = [6usize, 4, 3, 3];
    let w = tensor(&shape, &mut rng, 1.0);
    let keep: Vec<bool> = (0..216).map(|_| rng.random::<f64>() < 0.3).collect();
    let mask = Mask::from_bools(&shape, &keep).unwrap();
    let x = tensor(&[5, 4, 7, 7], &mut rng, 2.0);
    let readout = tensor(&[6 * 49, 3], &mut rng, 0.2);
    let target = tensor(&[5, 3], &mut rng, 2.0);
    let params = Conv2dParams {
        stride: 1,
        padding: 1,
    };
    let config = || DynamicSparsity::rigl(2, 10).seed(3).build().unwrap();
    let sgd = || {
        SgdConfig::builder(0.05)
            .momentum(0.9)
            .weight_decay(5e-4)
            .build()
            .unwrap()
    };
    let loss = |y: Tensor| {
        let out = y.flatten_from(1).unwrap().matmul(&readout).unwrap();
        (out - &target).unwrap().sqr().unwrap().mean_all().unwrap()
    };

    // dense storage
    let var = Var::from_tensor(&w).unwrap();
    let mut dense_params = SparseParams::new();
    dense_params
        .insert("conv.weight", var.clone(), mask.clone())
        .unwrap();
    let mut dense_conv = SparseConv2d::new(var.as_tensor().clone(), &mask, params)
        .unwrap()
        .with_name("conv.weight");
    let mut dense_opt =
        Sgd::from_params(vec![("conv.weight".to_string(), var.clone())], sgd()).unwrap();
    let mut dense_engine = SparsityEngine::new(config(), &dense_params).unwrap();

    // packed storage
    let weight = PackedWeight::new(&w, &mask).unwrap();
    let mut packed_params = SparseParams::new();
    packed_params.insert_packed("conv.weight", &weight).unwrap();
    let mut packed_conv = PackedSparseConv2d::from_packed(weight.clone(), params)
        .unwrap()
        .with_name("conv.weight");
    let group = ParamGroup::new(Vec::new()).with_packed(packed_params.packed_weights());
    let mut packed_opt = Sgd::new(vec![group], sgd()).unwrap();
    let mut packed_engine = SparsityEngine::new(config(), &packed_params).unwrap();

    let mut moved = 0;
    for step in 1..=8 {
        set_weight_grads_for_step(
            &mut [&mut dense_conv as &mut dyn SparseLayer],
            &dense_engine,
            step,
        )
        .unwrap();
        set_weight_grads_for_step(
            &mut [&mut packed_conv as &mut dyn SparseLayer],
            &packed_engine,
            step,
        )
        .unwrap();
        let grads = loss(dense_conv.forward_custom(&x).unwrap())
            .backward()
            .unwrap();
        dense_opt.step(&grads).unwrap();
        dense_engine
            .after_optimizer_step(step, &mut dense_params, &grads, Some(&mut dense_opt))
            .unwrap();
        sync_masks(
            &mut [&mut dense_conv as &mut dyn SparseLayer],
            &dense_params,
        )
        .unwrap();

        let before = weight.mask();
        let grads = loss(packed_conv.forward(&x).unwrap()).backward().unwrap();
        packed_opt.step(&grads).unwrap();
        packed_engine
            .after_optimizer_step(step, &mut packed_params, &grads, Some(&mut packed_opt))
            .unwrap();
        if weight.mask() != before {
            moved += 1;
        }

        assert_eq!(
            dense_params.mask("conv.weight").unwrap(),
            &weight.mask(),
            "step {step}: masks"
        );
        let a: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = weight
            .to_dense()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_weights_close(&[a], &[b], &format!("step {step}"));
    }
    assert!(
        moved >= 2,
        "the topology must move for the test to mean anything"
    );
}
