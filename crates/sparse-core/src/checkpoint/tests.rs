//! Round trips, typed errors and bit-identical resumption.

use candle_core::{DType, Device, Module, ModuleT, Var};
use candle_nn::{BatchNormConfig, VarBuilder};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use super::*;
use crate::SparseError;
use crate::init::{Init, init_vars};
use crate::optim::{Adam, AdamConfig, Sgd, SgdConfig, trainable_vars};
use crate::state::MaskableState;

/// fc1 (4→5) → BatchNorm → ReLU → fc2 (5→2); fc1/fc2 weights masked.
struct Model {
    varmap: VarMap,
    fc1: candle_nn::Linear,
    bn: candle_nn::BatchNorm,
    fc2: candle_nn::Linear,
    params: SparseParams,
}

fn model(init_seed: u64, hidden: usize) -> Model {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let fc1 = candle_nn::linear(4, hidden, vb.pp("fc1")).unwrap();
    let bn = candle_nn::batch_norm(hidden, BatchNormConfig::default(), vb.pp("bn")).unwrap();
    let fc2 = candle_nn::linear(hidden, 2, vb.pp("fc2")).unwrap();
    let vars = trainable_vars(&varmap);
    init_vars(
        &vars,
        // candle's own init is unseeded: every fc tensor must be drawn here.
        |n, s| match (n.starts_with("fc"), s.len()) {
            (true, 2) => Some(Init::TorchDefaultWeight),
            (true, _) => Some(Init::Uniform {
                low: -0.3,
                high: 0.3,
            }),
            _ => None,
        },
        &mut ChaCha8Rng::seed_from_u64(init_seed),
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(init_seed + 100);
    let mut params = SparseParams::new();
    for name in ["fc1.weight", "fc2.weight"] {
        let var = vars.iter().find(|(n, _)| n == name).unwrap().1.clone();
        let bits: Vec<u8> = (0..var.elem_count())
            .map(|_| u8::from(rand::Rng::random_bool(&mut rng, 0.5)))
            .collect();
        params
            .insert(
                name,
                var.clone(),
                Mask::from_bits(var.dims(), bits).unwrap(),
            )
            .unwrap();
    }
    Model {
        varmap,
        fc1,
        bn,
        fc2,
        params,
    }
}

fn train_step(m: &Model, opt: &mut dyn OptimizerMask, rng: &mut ChaCha8Rng) {
    let x: Vec<f32> = (0..8 * 4).map(|_| StandardNormal.sample(rng)).collect();
    let x = Tensor::from_vec(x, (8, 4), &Device::Cpu).unwrap();
    let y = x.narrow(1, 0, 2).unwrap();
    let h = m.fc1.forward(&x).unwrap();
    let h = m.bn.forward_t(&h, true).unwrap().relu().unwrap();
    let out = m.fc2.forward(&h).unwrap();
    let loss = (out - y).unwrap().sqr().unwrap().mean_all().unwrap();
    opt.step(&loss.backward().unwrap()).unwrap();
    opt.mask(&m.params).unwrap();
    m.params.apply_masks().unwrap();
}

/// Both traits in one object for the test loop.
trait OptimizerMask: Optimizer + MaskableState {
    fn mask(&mut self, p: &SparseParams) -> Result<()> {
        self.mask_state(p)
    }
}
impl OptimizerMask for Sgd {}
impl OptimizerMask for Adam {}

fn sgd(m: &Model) -> Sgd {
    let cfg = SgdConfig::builder(0.05)
        .momentum(0.9)
        .nesterov(true)
        .weight_decay(5e-4)
        .build()
        .unwrap();
    Sgd::from_params(trainable_vars(&m.varmap), cfg).unwrap()
}

fn adam(m: &Model) -> Adam {
    let cfg = AdamConfig::adamw(0.01, 0.05).amsgrad(true).build().unwrap();
    Adam::from_params(trainable_vars(&m.varmap), cfg).unwrap()
}

fn bits(varmap: &VarMap) -> Vec<(String, Vec<u32>)> {
    sorted_vars(varmap)
        .into_iter()
        .map(|(n, v)| {
            let b = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (n, b.into_iter().map(f32::to_bits).collect())
        })
        .collect()
}

fn state_bits(opt: &dyn Optimizer) -> Vec<(String, Vec<u8>)> {
    opt.export_state()
        .unwrap()
        .tensors
        .into_iter()
        .map(|(n, t)| {
            let bytes = match t.dtype() {
                DType::I64 => t
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<i64>()
                    .unwrap()
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
                _ => t
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            };
            (n, bytes)
        })
        .collect()
}

fn resume_is_bit_identical<O: OptimizerMask>(make: fn(&Model) -> O) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.safetensors");
    let n = 6;

    let straight = model(1, 5);
    let mut opt = make(&straight);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for _ in 0..n {
        train_step(&straight, &mut opt, &mut rng);
    }

    let first = model(1, 5);
    let mut opt1 = make(&first);
    let mut rng1 = ChaCha8Rng::seed_from_u64(42);
    for _ in 0..n / 2 {
        train_step(&first, &mut opt1, &mut rng1);
    }
    let meta =
        CheckpointMeta::new(serde_json::json!({"lr": 0.05}), (n / 2) as u64, 42).with_rng(&rng1);
    let sources = Sources {
        params: Some(&first.params),
        optimizer: Some(&opt1),
        extra: None,
    };
    save(&path, &first.varmap, sources, &meta).unwrap();

    // Fresh objects with other initial values and other masks.
    let mut second = model(7, 5);
    let mut opt2 = make(&second);
    let loaded = load(
        &path,
        &second.varmap,
        Targets {
            params: Some(&mut second.params),
            optimizer: Some(&mut opt2),
        },
    )
    .unwrap();
    assert_eq!(loaded.meta.step, (n / 2) as u64);
    let mut rng2 = loaded.meta.rng.as_ref().unwrap().restore().unwrap();
    for _ in 0..n / 2 {
        train_step(&second, &mut opt2, &mut rng2);
    }
    assert_eq!(bits(&straight.varmap), bits(&second.varmap));
    assert_eq!(state_bits(&opt), state_bits(&opt2));
    assert_eq!(opt.step_count(), opt2.step_count());
}

#[test]
fn resumed_sgd_run_is_bit_identical() {
    resume_is_bit_identical(sgd);
}

#[test]
fn resumed_adamw_run_is_bit_identical() {
    resume_is_bit_identical(adam);
}

fn saved(dir: &Path) -> (PathBuf, Model, Sgd) {
    let path = dir.join("ck.safetensors");
    let m = model(3, 5);
    let mut opt = sgd(&m);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..2 {
        train_step(&m, &mut opt, &mut rng);
    }
    let mut meta = CheckpointMeta::new(serde_json::json!({"density": 0.5}), 2, 5).with_rng(&rng);
    meta.extra.insert("note".into(), "hello".into());
    let extra = BTreeMap::from([(
        "ema.fc1.weight".to_string(),
        Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap(),
    )]);
    let sources = Sources {
        params: Some(&m.params),
        optimizer: Some(&opt),
        extra: Some(&extra),
    };
    save(&path, &m.varmap, sources, &meta).unwrap();
    (path, m, opt)
}

#[test]
fn round_trip_is_bit_exact_with_masks_state_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (path, m, opt) = saved(dir.path());
    let mut fresh = model(11, 5);
    let mut opt2 = sgd(&fresh);
    assert_ne!(bits(&m.varmap), bits(&fresh.varmap));
    let loaded = load(
        &path,
        &fresh.varmap,
        Targets {
            params: Some(&mut fresh.params),
            optimizer: Some(&mut opt2),
        },
    )
    .unwrap();
    assert_eq!(bits(&m.varmap), bits(&fresh.varmap));
    for name in ["fc1.weight", "fc2.weight"] {
        assert_eq!(
            m.params.mask(name).unwrap(),
            fresh.params.mask(name).unwrap()
        );
    }
    assert_eq!(state_bits(&opt), state_bits(&opt2));
    assert_eq!(opt2.step_count(), 2);
    assert_eq!(loaded.meta.extra["note"], "hello");
    assert_eq!(loaded.meta.densities, m.params.densities());
    assert_eq!(loaded.meta.optimizer.as_ref().unwrap().kind, "sgd");
    assert_eq!(loaded.meta.crate_name, "sparse-core");
    assert_eq!(
        loaded.extra["ema.fc1.weight"].to_vec1::<f32>().unwrap(),
        vec![1.0, 2.0]
    );
    assert_eq!(read_meta(&path).unwrap(), loaded.meta);
    // BN running statistics were saved and restored too.
    assert!(
        sorted_vars(&fresh.varmap)
            .iter()
            .any(|(n, _)| n == "bn.running_mean")
    );
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn rng_state_restores_the_stream_position() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let _: u64 = rand::Rng::random(&mut rng);
    let state = RngState::capture(&rng);
    let mut back = state.restore().unwrap();
    assert_eq!(
        rand::Rng::random::<u64>(&mut rng),
        rand::Rng::random::<u64>(&mut back)
    );
    let bad = RngState {
        seed: "zz".into(),
        ..state
    };
    assert!(bad.restore().is_err());
}

fn ck_err(e: SparseError) -> CheckpointError {
    match e {
        SparseError::Checkpoint(c) => c,
        other => panic!("expected a checkpoint error, got {other}"),
    }
}

#[test]
fn truncated_file_is_a_corrupt_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ..) = saved(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    for cut in [4, 20, bytes.len() - 7] {
        let short = dir.path().join("short.safetensors");
        std::fs::write(&short, &bytes[..cut]).unwrap();
        let m = model(3, 5);
        let e = ck_err(load(&short, &m.varmap, Targets::default()).unwrap_err());
        assert!(matches!(e, CheckpointError::Corrupt { .. }), "{cut}: {e}");
    }
}

#[test]
fn tampered_header_and_bad_metadata_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ..) = saved(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // Break the JSON header: its first byte is '{'.
    bytes[8] = b'#';
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, &bytes).unwrap();
    let m = model(3, 5);
    let e = ck_err(load(&bad, &m.varmap, Targets::default()).unwrap_err());
    assert!(matches!(e, CheckpointError::Corrupt { .. }), "{e}");

    // A valid safetensors file whose metadata is not ours.
    let t = Tensor::new(&[1f32], &Device::Cpu).unwrap();
    let meta = HashMap::from([(METADATA_KEY.to_string(), "{not json".to_string())]);
    safetensors::serialize_to_file([("x", &t)], Some(meta), &bad).unwrap();
    let e = ck_err(load(&bad, &m.varmap, Targets::default()).unwrap_err());
    assert!(matches!(e, CheckpointError::BadMetadata { .. }), "{e}");
    safetensors::serialize_to_file([("x", &t)], None, &bad).unwrap();
    let e = ck_err(read_meta(&bad).unwrap_err());
    assert!(matches!(e, CheckpointError::BadMetadata { .. }), "{e}");
    let e = ck_err(read_meta(dir.path().join("missing.safetensors")).unwrap_err());
    assert!(matches!(e, CheckpointError::Io { .. }), "{e}");
}

#[test]
fn wrong_shape_missing_and_unexpected_tensors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ..) = saved(dir.path());
    // hidden 6 instead of 5: fc1.bias is the first mismatching tensor in name order.
    let wide = model(3, 6);
    let before = bits(&wide.varmap);
    let e = ck_err(load(&path, &wide.varmap, Targets::default()).unwrap_err());
    match e {
        CheckpointError::ShapeMismatch {
            name,
            expected,
            got,
        } => {
            assert_eq!(name, "bn.bias");
            assert_eq!((expected, got), (vec![6], vec![5]));
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        before,
        bits(&wide.varmap),
        "a failed load must not modify the target"
    );

    let m = model(3, 5);
    let vb = VarBuilder::from_varmap(&m.varmap, DType::F32, &Device::Cpu);
    let _extra = candle_nn::linear(2, 2, vb.pp("head")).unwrap();
    let e = ck_err(load(&path, &m.varmap, Targets::default()).unwrap_err());
    assert!(
        matches!(e, CheckpointError::MissingTensor(ref n) if n == "head.bias"),
        "{e}"
    );

    let m = model(3, 5);
    m.varmap.data().lock().unwrap().remove("fc2.bias");
    let e = ck_err(load(&path, &m.varmap, Targets::default()).unwrap_err());
    assert!(
        matches!(e, CheckpointError::UnexpectedTensor(ref n) if n == "fc2.bias"),
        "{e}"
    );

    let m = model(3, 5);
    let f64var = Var::zeros(5, DType::F64, &Device::Cpu).unwrap();
    m.varmap
        .data()
        .lock()
        .unwrap()
        .insert("fc1.bias".into(), f64var);
    let e = ck_err(load(&path, &m.varmap, Targets::default()).unwrap_err());
    assert!(
        matches!(e, CheckpointError::DTypeMismatch { ref name, .. } if name == "fc1.bias"),
        "{e}"
    );

    // A mask the registry expects but the file lacks.
    let mut m = model(3, 5);
    let extra_var = Var::ones((2, 2), DType::F32, &Device::Cpu).unwrap();
    m.params
        .insert("z.weight", extra_var, Mask::ones(&[2, 2]))
        .unwrap();
    let e = ck_err(
        load(
            &path,
            &m.varmap,
            Targets {
                params: Some(&mut m.params),
                optimizer: None,
            },
        )
        .unwrap_err(),
    );
    assert!(
        matches!(e, CheckpointError::MissingTensor(ref n) if n == "mask/z.weight"),
        "{e}"
    );

    // An optimizer of another kind.
    let m = model(3, 5);
    let mut a = adam(&m);
    let e = ck_err(
        load(
            &path,
            &m.varmap,
            Targets {
                params: None,
                optimizer: Some(&mut a),
            },
        )
        .unwrap_err(),
    );
    assert!(matches!(e, CheckpointError::BadMetadata { .. }), "{e}");
}
