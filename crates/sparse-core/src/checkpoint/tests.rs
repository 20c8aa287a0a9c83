//! Round trips, typed errors and bit-identical resumption.

use candle_core::{DType, Device, Module, ModuleT, Var};
use candle_nn::{BatchNormConfig, VarBuilder};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use super::*;
use crate::SparseError;
use crate::init::{Init, init_vars};
use crate::optim::{Adam, AdamConfig, Sgd, SgdConfig, trainable_vars};
use crate::scores::{ScoreCount, ScoreSubnetwork, ScoredLayer, ThresholdScope};
use crate::state::MaskableState;

/// The writer recorded by the test checkpoints.
const CRATE: &str = "ckpt-test";

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
    let meta = CheckpointMeta::new(
        CRATE,
        "0.0.1",
        serde_json::json!({"lr": 0.05}),
        (n / 2) as u64,
        42,
    )
    .with_rng(&rng1);
    let sources = Sources {
        masks: Some(&first.params),
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
    let meta = CheckpointMeta::new(CRATE, "0.0.1", serde_json::json!({"density": 0.5}), 2, 5)
        .with_rng(&rng)
        .with_extra("note", "hello");
    let extra = BTreeMap::from([(
        "ema.fc1.weight".to_string(),
        Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap(),
    )]);
    let sources = Sources {
        masks: Some(&m.params),
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
    assert_eq!(loaded.meta.crate_name, CRATE);
    // Every tensor has its hash, and only those.
    let st_bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&st_bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    assert_eq!(
        loaded
            .meta
            .tensor_sha256
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        names
    );
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
fn truncated_file_is_a_malformed_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ..) = saved(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    for cut in [4, 20, bytes.len() - 7] {
        let short = dir.path().join("short.safetensors");
        std::fs::write(&short, &bytes[..cut]).unwrap();
        let m = model(3, 5);
        let e = ck_err(load(&short, &m.varmap, Targets::default()).unwrap_err());
        assert!(matches!(e, CheckpointError::Malformed { .. }), "{cut}: {e}");
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
    assert!(matches!(e, CheckpointError::Malformed { .. }), "{e}");

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

#[test]
fn metadata_round_trips_with_exact_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let m = model(3, 5);
    // Values whose shortest decimal forms need all 17 digits or sit at the f64 edges.
    let values = [
        0.1 + 0.2,
        1.0 / 3.0,
        0.876_543_210_123_456_7,
        1e-300,
        5e-324,
        f64::MAX,
        -0.0,
        std::f64::consts::PI,
    ];
    let mut meta = CheckpointMeta::new(CRATE, "1.2.3", serde_json::json!({}), 7, 9)
        .with_dataset("cifar10")
        .with_git_commit("abc123");
    for (i, v) in values.iter().enumerate() {
        meta = meta.with_metric(format!("m{i}"), *v);
    }
    meta = meta.with_metric("test_accuracy", 0.9137);
    save(&path, &m.varmap, Sources::default(), &meta).unwrap();
    let back = read_meta(&path).unwrap();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(
            back.metric(&format!("m{i}")).unwrap().to_bits(),
            v.to_bits(),
            "m{i}"
        );
    }
    assert_eq!(back.metric("test_accuracy"), Some(0.9137));
    assert_eq!(back.dataset.as_deref(), Some("cifar10"));
    assert_eq!(back.git_commit.as_deref(), Some("abc123"));
    assert_eq!(
        (back.crate_name.as_str(), back.crate_version.as_str()),
        (CRATE, "1.2.3")
    );
    assert_eq!(verify(&path).unwrap(), back);

    // JSON has no NaN: such a metric is refused before anything is written.
    let nan = dir.path().join("nan.safetensors");
    let bad = meta.clone().with_metric("loss", f64::NAN);
    let e = ck_err(save(&nan, &m.varmap, Sources::default(), &bad).unwrap_err());
    assert!(matches!(e, CheckpointError::BadMetadata { .. }), "{e}");
    assert!(e.to_string().contains("loss"), "{e}");
    assert!(!nan.exists());
}

#[test]
fn empty_crate_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anon.safetensors");
    let m = model(3, 5);
    for name in ["", "  "] {
        let meta = CheckpointMeta::new(name, "0.1.0", serde_json::json!({}), 0, 0);
        let e = ck_err(save(&path, &m.varmap, Sources::default(), &meta).unwrap_err());
        assert!(matches!(e, CheckpointError::MissingCrateName { .. }), "{e}");
    }
    assert!(!path.exists());
}

#[test]
fn another_crates_checkpoint_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ..) = saved(dir.path());
    assert_eq!(read_meta_expecting(&path, CRATE).unwrap().crate_name, CRATE);
    let e = ck_err(read_meta_expecting(&path, "dsn-tsc").unwrap_err());
    match &e {
        CheckpointError::WrongCrate {
            expected, found, ..
        } => assert_eq!((expected.as_str(), found.as_str()), ("dsn-tsc", CRATE)),
        other => panic!("{other}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("dsn-tsc") && msg.contains(CRATE), "{msg}");
}

/// The byte range of `name` in the file (absolute offsets).
fn data_range(bytes: &[u8], name: &str) -> std::ops::Range<usize> {
    let (n, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let (start, end) = meta.tensors()[name].data_offsets;
    (8 + n + start)..(8 + n + end)
}

#[test]
fn a_flipped_data_byte_is_reported_with_its_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ..) = saved(dir.path());
    let good = std::fs::read(&path).unwrap();
    for name in [
        "fc1.weight",
        "bn.running_var",
        "mask/fc2.weight",
        "optim/fc1.weight/momentum_buffer",
        "extra/ema.fc1.weight",
    ] {
        let range = data_range(&good, name);
        let mut bytes = good.clone();
        // A single low bit in the middle of the tensor: a plausible storage error.
        bytes[(range.start + range.end) / 2] ^= 1;
        let bad = dir.path().join("flipped.safetensors");
        std::fs::write(&bad, &bytes).unwrap();
        let check = |e: SparseError| {
            let e = ck_err(e);
            match &e {
                CheckpointError::Corrupt { path, tensor } => {
                    assert_eq!((path, tensor.as_str()), (&bad, name));
                }
                other => panic!("{name}: {other}"),
            }
            let msg = e.to_string();
            assert!(
                msg.contains(name) && msg.contains("flipped.safetensors"),
                "{msg}"
            );
        };
        check(verify(&bad).unwrap_err());
        check(load_masks(&bad).unwrap_err());
        let mut fresh = model(11, 5);
        let before = bits(&fresh.varmap);
        check(
            load(
                &bad,
                &fresh.varmap,
                Targets {
                    params: Some(&mut fresh.params),
                    optimizer: None,
                },
            )
            .unwrap_err(),
        );
        assert_eq!(
            before,
            bits(&fresh.varmap),
            "a corrupt file changes nothing"
        );
    }
    assert!(verify(&path).is_ok());
}

/// Rewrites `path` with the same tensors and `meta` as its metadata.
fn rewrite(path: &Path, meta: &CheckpointMeta) {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let header = HashMap::from([(
        METADATA_KEY.to_string(),
        serde_json::to_string(meta).unwrap(),
    )]);
    safetensors::serialize_to_file(tensors, Some(header), path).unwrap();
}

#[test]
fn unhashed_and_partly_hashed_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ..) = saved(dir.path());
    let meta = read_meta(&path).unwrap();

    // One hash missing: that tensor is reported.
    let mut partial = meta.clone();
    partial.tensor_sha256.remove("fc2.bias");
    rewrite(&path, &partial);
    let e = ck_err(verify(&path).unwrap_err());
    assert!(
        matches!(e, CheckpointError::Corrupt { ref tensor, .. } if tensor == "fc2.bias"),
        "{e}"
    );

    // A hash for a tensor the file does not hold.
    let mut ghost = meta.clone();
    ghost
        .tensor_sha256
        .insert("zz.ghost".into(), "00".repeat(32));
    rewrite(&path, &ghost);
    let e = ck_err(verify(&path).unwrap_err());
    assert!(
        matches!(e, CheckpointError::Corrupt { ref tensor, .. } if tensor == "zz.ghost"),
        "{e}"
    );

    // No hashes at all: the older format, refused as unverifiable.
    let mut old = meta;
    old.tensor_sha256.clear();
    rewrite(&path, &old);
    let e = ck_err(verify(&path).unwrap_err());
    assert!(matches!(e, CheckpointError::MissingChecksums { .. }), "{e}");
    let m = model(3, 5);
    let e = ck_err(load(&path, &m.varmap, Targets::default()).unwrap_err());
    assert!(matches!(e, CheckpointError::MissingChecksums { .. }), "{e}");
    // The metadata alone is still readable (to tell the user what the file is).
    assert_eq!(read_meta(&path).unwrap().crate_name, CRATE);
}

#[test]
fn score_subnetwork_masks_are_stored_under_mask() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ugt.safetensors");
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let mut layers = Vec::new();
    for (name, n) in [("conv2.weight", 6), ("conv1.weight", 10)] {
        let scores: Vec<f32> = (0..n).map(|i| ((i * 7) % n) as f32).collect();
        let s = Var::from_tensor(&Tensor::new(scores.as_slice(), &dev).unwrap()).unwrap();
        varmap
            .data()
            .lock()
            .unwrap()
            .insert(format!("{name}.scores"), s.clone());
        let w = Tensor::ones(n, DType::F32, &dev).unwrap();
        layers.push(ScoredLayer::new(name, &w, s).unwrap());
    }
    let net = ScoreSubnetwork::new(layers, ThresholdScope::PerLayer, ScoreCount::Floor).unwrap();
    let masks = net.masks(0.5).unwrap();
    let meta = CheckpointMeta::new(CRATE, "0.0.1", serde_json::json!({}), 1, 2);
    let sources = Sources {
        masks: Some(&masks),
        ..Sources::default()
    };
    save(&path, &varmap, sources, &meta).unwrap();

    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "conv1.weight.scores",
            "conv2.weight.scores",
            "mask/conv1.weight",
            "mask/conv2.weight"
        ]
    );
    assert_eq!(load_masks(&path).unwrap(), masks);
    let meta = read_meta(&path).unwrap();
    assert_eq!(meta.densities, masks.mask_densities());
    assert_eq!(meta.densities["conv2.weight"], 0.5);
    // Loading the weights alone ignores the masks.
    load(&path, &varmap, Targets::default()).unwrap();
}
