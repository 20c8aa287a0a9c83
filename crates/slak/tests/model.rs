//! The network's shape against the official architecture and hand values.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use slak::{ModelSpec, SlakNet};

fn mini(kernel: [usize; 3], decompose: bool, width_factor: f64) -> ModelSpec {
    ModelSpec {
        in_chans: 1,
        num_classes: 2,
        depths: vec![1, 1],
        dims: vec![24, 48],
        kernel_size: kernel.to_vec(),
        width_factor,
        decompose,
        stem: 2,
        drop_path: 0.0,
        layer_scale: 1e-6,
    }
}

fn build(spec: &ModelSpec) -> (VarMap, SlakNet) {
    let varmap = VarMap::new();
    let net = SlakNet::new(
        spec,
        &varmap,
        &mut ChaCha8Rng::seed_from_u64(0),
        ChaCha8Rng::seed_from_u64(1),
    )
    .unwrap();
    (varmap, net)
}

fn counted(varmap: &VarMap) -> usize {
    sparse_core::optim::trainable_vars(varmap)
        .iter()
        .map(|(_, v)| v.elem_count())
        .sum()
}

#[test]
fn parameter_counts_match_the_shape_and_hand_values() {
    let tiny = ModelSpec {
        dims: vec![4, 8],
        kernel_size: vec![5, 5, 3],
        decompose: true,
        ..mini([5, 5, 3], true, 1.0)
    };
    assert_eq!(tiny.param_count(), 1482);
    let (varmap, _) = build(&tiny);
    assert_eq!(counted(&varmap), 1482);
    for spec in [
        mini([3, 3, 100], false, 1.0),
        mini([13, 13, 100], false, 1.0),
        mini([13, 13, 3], true, 1.0),
        mini([13, 13, 3], true, 1.3),
    ] {
        let (varmap, _) = build(&spec);
        assert_eq!(counted(&varmap), spec.param_count(), "{spec:?}");
    }
    // the official ConvNeXt-T in the SLaK code (BN instead of the conv bias) and
    // SLaK-T dense at width 1.3, from the shape alone
    let official = |kernel: Vec<usize>, width_factor, decompose| ModelSpec {
        in_chans: 3,
        num_classes: 1000,
        depths: vec![3, 3, 9, 3],
        dims: vec![96, 192, 384, 768],
        kernel_size: kernel,
        width_factor,
        decompose,
        stem: 4,
        drop_path: 0.1,
        layer_scale: 1e-6,
    };
    assert_eq!(
        official(vec![7, 7, 7, 7, 100], 1.0, false).param_count(),
        28_595_752
    );
    let slak_t = official(vec![51, 49, 47, 13, 5], 1.3, true);
    assert_eq!(slak_t.widths(), [124, 249, 499, 998]);
    assert_eq!(slak_t.param_count(), 50_703_838);
}

#[test]
fn receptive_fields_of_the_quick_arms() {
    assert_eq!(mini([3, 3, 100], false, 1.0).receptive_field(), 16);
    assert_eq!(mini([7, 7, 3], true, 1.0).receptive_field(), 40);
    assert_eq!(mini([13, 13, 3], true, 1.0).receptive_field(), 76);
    assert_eq!(mini([13, 13, 100], false, 1.0).receptive_field(), 76);
}

#[test]
fn the_network_maps_images_to_class_scores() {
    let spec = mini([7, 7, 3], true, 1.3);
    let (varmap, net) = build(&spec);
    let x = Tensor::randn(0f32, 1.0, (3, 1, 32, 32), &Device::Cpu).unwrap();
    assert_eq!(net.features_t(&x, false).unwrap().dims(), [3, 62, 8, 8]);
    let logits = net.forward_t(&x, true).unwrap();
    assert_eq!(logits.dims(), [3, 2]);
    // the loss reaches the stem and every depthwise branch
    let grads = logits.sum_all().unwrap().backward().unwrap();
    for (name, var) in sparse_core::optim::trainable_vars(&varmap) {
        if name.ends_with("conv.weight") || name == "downsample_layers.0.0.weight" {
            let g = grads.get(var.as_tensor()).expect("a gradient");
            let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(norm > 0.0, "{name}");
        }
    }
}

#[test]
fn bad_shapes_are_refused_naming_the_field() {
    let mut spec = mini([7, 7, 3], true, 1.0);
    spec.kernel_size = vec![7, 3];
    let err = spec.validate().unwrap_err().to_string();
    assert!(err.contains("kernel_size"), "{err}");
    let mut spec = mini([7, 7, 3], true, 1.0);
    spec.dims = vec![24];
    assert!(spec.validate().unwrap_err().to_string().contains("dims"));
}

#[test]
fn snip_masks_train_with_exact_regrowth_and_the_branches_follow() {
    use slak::sparse::{SlakSparsity, engine, init_masks, mask_policy, snip_scores};
    use sparse_core::kernels::WeightGrad;
    use sparse_core::optim::{ParamGroup, trainable_vars};
    use sparse_core::{Adam, AdamConfig, Optimizer};
    use sparse_data::data::ClassificationSet;
    use sparse_data::images::ImageData;

    let spec = ModelSpec {
        dims: vec![8, 16],
        ..mini([7, 7, 3], true, 1.3)
    };
    let (varmap, mut net) = build(&spec);
    let data = ImageData::border_half().unwrap();
    let indices: Vec<usize> = (0..32).collect();
    let batch = data.train_set().batch(&indices, &Device::Cpu).unwrap();
    let policy = mask_policy(&varmap).unwrap();
    let scores = snip_scores(&net, &varmap, &policy, &batch.inputs, &batch.targets).unwrap();
    let mut params = init_masks(
        &varmap,
        &policy,
        &scores,
        0.6,
        &mut ChaCha8Rng::seed_from_u64(5),
    )
    .unwrap();
    // layer scale 1e-6 starves the blocks' SNIP scores: the stem, downsampler and
    // head come out dense and leave the registry, the blocks carry the sparsity
    assert!(
        params.iter().all(|p| p.name.starts_with("stages.")),
        "{:?}",
        params.iter().map(|p| p.name.clone()).collect::<Vec<_>>()
    );
    let attached = net.attach_masks(&params, WeightGrad::Dense).unwrap();
    assert_eq!(
        attached,
        params
            .iter()
            .filter(|p| p.name.contains("large_kernel"))
            .count()
    );
    let sparsity = SlakSparsity {
        density: 0.6,
        prune_rate: 0.3,
        topology_period: 2,
        fix: false,
        exact_growth: true,
    };
    let mut engine = engine(&sparsity, &params, 6, 9).unwrap();
    let counts: Vec<usize> = params.iter().map(|p| p.mask.nnz()).collect();
    let vars = trainable_vars(&varmap);
    let mut adam = Adam::new(
        ParamGroup::split_no_decay(vars, |n| !n.ends_with("weight") || n.contains("norm")),
        AdamConfig::adamw(1e-3, 0.05).build().unwrap(),
    )
    .unwrap();
    let mut changed = 0;
    for step in 1..=6 {
        let logits = net.forward_t(&batch.inputs, true).unwrap();
        let loss = sparse_core::kernels::cross_entropy(&logits, &batch.targets, 0.1).unwrap();
        let grads = loss.backward().unwrap();
        adam.step(&grads).unwrap();
        let report = engine
            .after_optimizer_step(step, &mut params, &grads, Some(&mut adam))
            .unwrap();
        if report.topology_changed() {
            changed += net.follow_masks(&params).unwrap();
        }
        let now: Vec<usize> = params.iter().map(|p| p.mask.nnz()).collect();
        assert_eq!(now, counts, "exact regrowth keeps every layer's count");
    }
    assert!(changed > 0, "the sparse branches followed the updates");
    assert_eq!(net.follow_masks(&params).unwrap(), 0, "already in step");
}

#[test]
fn layers_sampled_dense_never_get_a_mask() {
    use rand::Rng;
    use slak::sparse::{SlakSparsity, engine, init_masks, mask_policy};
    use sparse_core::kernels::WeightGrad;

    // crafted SNIP scores: one depthwise branch scores far above every other weight,
    // so the SNIP ratio gives it density 1 and the 0.99 rule keeps it dense
    let spec = ModelSpec {
        dims: vec![4, 8],
        ..mini([5, 5, 3], true, 1.0)
    };
    let (varmap, mut net) = build(&spec);
    let policy = mask_policy(&varmap).unwrap();
    let favourite = "stages.0.0.large_kernel.Decom1.conv.weight";
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let scores = policy
        .select(&varmap)
        .unwrap()
        .into_iter()
        .map(|(name, var)| {
            let n = var.elem_count();
            let s: Vec<f32> = if name == favourite {
                vec![10.0; n]
            } else {
                (0..n).map(|_| rng.random::<f32>()).collect()
            };
            (name, s)
        })
        .collect();
    let mut params = init_masks(&varmap, &policy, &scores, 0.5, &mut rng).unwrap();
    assert!(params.get(favourite).is_none(), "sampled dense, left out");
    let branches = net.branch_weight_names();
    let masked_branches = branches.iter().filter(|b| params.get(b).is_some()).count();
    assert_eq!(masked_branches, branches.len() - 1);
    assert_eq!(
        net.attach_masks(&params, WeightGrad::Dense).unwrap(),
        masked_branches
    );
    let names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
    let sparsity = SlakSparsity {
        density: 0.5,
        prune_rate: 0.5,
        topology_period: 1,
        fix: false,
        exact_growth: false,
    };
    let mut engine = engine(&sparsity, &params, 10, 3).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 1, 8, 8), &Device::Cpu).unwrap();
    for step in 1..=10 {
        let grads = net
            .forward_t(&x, true)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        engine
            .after_optimizer_step(step, &mut params, &grads, None)
            .unwrap();
        net.follow_masks(&params).unwrap();
    }
    let after: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
    assert_eq!(after, names, "ten topology updates add no mask");
    let dense = vars_named(&varmap, favourite);
    assert_eq!(
        sparse_core::Mask::from_nonzero(&dense).unwrap().density(),
        1.0
    );
}

fn vars_named(varmap: &VarMap, name: &str) -> Tensor {
    varmap.data().lock().unwrap()[name].as_tensor().clone()
}

#[test]
fn smoke_reproduces_resumes_and_eval_matches() {
    use sparse_repro::cli::Preset;
    use sparse_repro::harness::{self, DataPolicy};
    let root = tempfile::tempdir().unwrap();
    let check = harness::check_resume::<slak::Slak>(
        Preset::Smoke,
        &slak::paper::SlakArgs::default(),
        None,
        None,
        root.path(),
        2,
    )
    .unwrap();
    assert_eq!(check.taken_from_records, 2);
    let run = root.path().join("uninterrupted");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    for claim in ["sparse-wide-k7-border-half", "large-kernel-border-half"] {
        assert!(report.contains(claim), "{claim}");
    }
    assert!(run.join("border-half-d-7-seed0-erf.png").is_file());
    assert!(run.join("border-half-accuracy-by-kernel.svg").is_file());
    // the sparse arm's checkpoint carries its masks: eval runs the same sparse branches
    let evaluated = harness::evaluate::<slak::Slak>(
        &run.join("checkpoints/border-half-d-7-seed1.safetensors"),
        None,
        DataPolicy::NoFetch,
    )
    .unwrap();
    assert_eq!(evaluated.measured.to_bits(), evaluated.recorded.to_bits());
}

#[test]
fn bad_settings_are_refused_naming_the_parameter() {
    use sparse_repro::cli::Preset;
    let arm = &slak::presets::arms(Preset::Quick, "border-half").unwrap()[3];
    assert_eq!(arm.name, "d-7");
    let mut config = arm.config.clone();
    config.accumulation_steps = 0;
    assert!(
        config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("accumulation_steps")
    );
    let mut config = arm.config.clone();
    if let Some(s) = &mut config.sparsity {
        s.topology_period = 0;
    }
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("topology_period") && err.contains("update-frequency"),
        "{err}"
    );
    let mut config = arm.config.clone();
    config.warmup_epochs = 10.0;
    assert!(
        config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("warmup_epochs")
    );
    let err = slak::presets::arms(Preset::Quick, "moons")
        .unwrap_err()
        .to_string();
    assert!(err.contains("moons"), "{err}");
}
