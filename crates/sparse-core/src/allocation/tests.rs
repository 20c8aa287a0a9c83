use super::rules::total;
use super::*;
use crate::error::{Result, SparseError};
use crate::mask::Mask;
use crate::selection::SelectionPolicy;
use candle_core::{DType, Device};
use candle_nn::VarMap;
use candle_nn::{VarBuilder, batch_norm, conv2d_no_bias, linear};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// CIFAR ResNet-20 (He et al. 2016, option-B shortcuts), masked weights in model
/// order: conv 3→16 3x3; stage 1: 3 blocks of two 16→16 3x3 convs; stages 2 and 3
/// (32 and 64 channels): block 0 = conv in→out 3x3, conv out→out 3x3 and a 1x1
/// in→out downsample conv, blocks 1-2 = two out→out 3x3 convs; fc 64→10.
fn resnet20() -> Vec<LayerSpec> {
    let mut layers = vec![LayerSpec::new("conv1", &[16, 3, 3, 3])];
    for b in 0..3 {
        for c in 1..=2 {
            layers.push(LayerSpec::new(
                format!("layer1.{b}.conv{c}"),
                &[16, 16, 3, 3],
            ));
        }
    }
    for (stage, cin, cout) in [(2, 16, 32), (3, 32, 64)] {
        layers.push(LayerSpec::new(
            format!("layer{stage}.0.conv1"),
            &[cout, cin, 3, 3],
        ));
        layers.push(LayerSpec::new(
            format!("layer{stage}.0.conv2"),
            &[cout, cout, 3, 3],
        ));
        layers.push(LayerSpec::new(
            format!("layer{stage}.0.shortcut"),
            &[cout, cin, 1, 1],
        ));
        for b in 1..3 {
            for c in 1..=2 {
                layers.push(LayerSpec::new(
                    format!("layer{stage}.{b}.conv{c}"),
                    &[cout, cout, 3, 3],
                ));
            }
        }
    }
    layers.push(LayerSpec::new("fc", &[10, 64]));
    layers
}

fn budget(layers: &[LayerSpec], densities: &[f64]) -> f64 {
    layers
        .iter()
        .zip(densities)
        .map(|(l, d)| d * l.numel() as f64)
        .sum()
}

fn dense_names(layers: &[LayerSpec], densities: &[f64]) -> Vec<String> {
    layers
        .iter()
        .zip(densities)
        .filter(|(_, d)| **d == 1.0)
        .map(|(l, _)| l.name.clone())
        .collect()
}

fn erk_ratio(shape: &[usize]) -> f64 {
    shape.iter().sum::<usize>() as f64 / shape.iter().product::<usize>() as f64
}

#[test]
fn resnet20_has_the_expected_size() {
    let layers = resnet20();
    assert_eq!(layers.len(), 22);
    assert_eq!(total(&layers), 270_896.0);
}

#[test]
fn erk_meets_the_budget_and_promotes_dense_layers_on_resnet20() {
    let layers = resnet20();
    let n = total(&layers);
    let stage1: Vec<String> = (0..3)
        .flat_map(|b| (1..=2).map(move |c| format!("layer1.{b}.conv{c}")))
        .collect();
    let cases: [(f64, Vec<String>); 3] = [
        (0.05, vec![]),
        (0.1, vec!["layer2.0.shortcut".into(), "fc".into()]),
        (0.5, {
            // First conv, classifier, both shortcuts, the 16→32 conv and (a tie) all
            // six identical stage-1 convs.
            let mut v = vec!["conv1".to_string()];
            v.extend(stage1.iter().cloned());
            v.extend(
                [
                    "layer2.0.conv1",
                    "layer2.0.shortcut",
                    "layer3.0.shortcut",
                    "fc",
                ]
                .map(String::from),
            );
            v
        }),
    ];
    for (d, expected_dense) in cases {
        let dens = Allocation::erk().densities(&layers, d, None).unwrap();
        let rel = (budget(&layers, &dens) - d * n).abs() / (d * n);
        assert!(rel < 1e-9, "density {d}: budget off by {rel}");
        assert_eq!(dense_names(&layers, &dens), expected_dense, "density {d}");
        // Sparse layers are proportional to their ERK ratio, below 1, and every
        // dense layer's ratio is at least every sparse layer's ratio.
        let sparse: Vec<usize> = (0..layers.len()).filter(|&i| dens[i] < 1.0).collect();
        let eps = dens[sparse[0]] / erk_ratio(&layers[sparse[0]].shape);
        for &i in &sparse {
            assert!((dens[i] - eps * erk_ratio(&layers[i].shape)).abs() < 1e-12);
        }
        let max_sparse = sparse
            .iter()
            .map(|&i| erk_ratio(&layers[i].shape))
            .fold(0.0, f64::max);
        for (l, &dl) in layers.iter().zip(&dens) {
            if dl == 1.0 {
                assert!(erk_ratio(&l.shape) > max_sparse);
            }
        }
    }
}

#[test]
fn erk_ties_go_dense_together() {
    // Two identical small layers share the largest ratio; both must turn dense.
    let layers = vec![
        LayerSpec::new("a", &[4, 4]),
        LayerSpec::new("big", &[100, 100]),
        LayerSpec::new("b", &[4, 4]),
    ];
    let d = Allocation::erk().densities(&layers, 0.3, None).unwrap();
    assert_eq!(d[0], 1.0);
    assert_eq!(d[2], 1.0);
    assert!(d[1] < 1.0);
    assert!((budget(&layers, &d) - 0.3 * total(&layers)).abs() < 1e-9 * total(&layers));
}

#[test]
fn erk_power_scale_zero_is_uniform_and_full_density_is_dense() {
    let layers = resnet20();
    let d = Allocation::Erk { power_scale: 0.0 }
        .densities(&layers, 0.2, None)
        .unwrap();
    assert!(d.iter().all(|&x| (x - 0.2).abs() < 1e-12));
    let d = Allocation::erk().densities(&layers, 1.0, None).unwrap();
    assert!(d.iter().all(|&x| x == 1.0));
}

#[test]
fn er_uses_only_out_and_in() {
    // A conv-only net: changing every kernel from 3x3 to 5x5 changes ERK but not ER.
    let net = |k: usize| {
        vec![
            LayerSpec::new("c1", &[16, 3, k, k]),
            LayerSpec::new("c2", &[32, 16, k, k]),
            LayerSpec::new("c3", &[64, 32, k, k]),
            LayerSpec::new("c4", &[64, 64, k, k]),
        ]
    };
    let (small, large) = (net(3), net(5));
    let er3 = Allocation::er().densities(&small, 0.1, None).unwrap();
    let er5 = Allocation::er().densities(&large, 0.1, None).unwrap();
    for (a, b) in er3.iter().zip(&er5) {
        assert!((a - b).abs() < 1e-12, "{er3:?} vs {er5:?}");
    }
    // ER ratio of c2 over c3 is (48/512) / (96/2048).
    let ratio = (48.0 / 512.0) / (96.0 / 2048.0);
    assert!((er3[1] / er3[2] - ratio).abs() < 1e-12);
    let erk3 = Allocation::erk().densities(&small, 0.1, None).unwrap();
    let erk5 = Allocation::erk().densities(&large, 0.1, None).unwrap();
    assert!((erk3[1] - erk5[1]).abs() > 1e-3);
}

#[test]
fn uniform_plus_first_dense_classifier_floor_and_budget() {
    let layers = resnet20();
    let n = total(&layers);
    let (n_first, n_fc) = (432.0, 640.0);
    for d in [0.05, 0.1] {
        let off = Allocation::uniform_plus()
            .densities(&layers, d, None)
            .unwrap();
        assert_eq!(off[0], 1.0);
        assert_eq!(off[21], 0.2);
        let expected = (d * n - n_first - 0.2 * n_fc) / n;
        assert!(off[1..21].iter().all(|&x| (x - expected).abs() < 1e-15));
        // Official quirk: slightly under budget.
        assert!(budget(&layers, &off) < d * n);
        let exact = Allocation::UniformPlus { exact_budget: true }
            .densities(&layers, d, None)
            .unwrap();
        assert_eq!((exact[0], exact[21]), (1.0, 0.2));
        assert!((budget(&layers, &exact) - d * n).abs() < 1e-9 * d * n);
    }
    // A dense first layer bigger than the budget is an error, not a negative density.
    let tiny = vec![
        LayerSpec::new("first", &[100, 100]),
        LayerSpec::new("fc", &[10, 10]),
    ];
    assert!(
        Allocation::uniform_plus()
            .densities(&tiny, 0.1, None)
            .is_err()
    );
}

/// Random_Pruning's `uniform_plus` on `cifar_resnet_20` (N = 270,896 masked weights,
/// first conv 432, fc 640), densities worked out by hand from the official code.
#[test]
fn uniform_plus_matches_the_official_densities_on_resnet20() {
    let layers = resnet20();
    assert_eq!(total(&layers), 270_896.0);
    let official = |d| {
        Allocation::uniform_plus()
            .densities(&layers, d, None)
            .unwrap()
    };
    let exact = |d| {
        Allocation::UniformPlus { exact_budget: true }
            .densities(&layers, d, None)
            .unwrap()
    };
    // 0.1: (0.1·270896 − 432 − 0.2·640) / 270896 = 26529.6 / 270896, fc floored at 0.2.
    let d = official(0.1);
    assert_eq!((d[0], d[21]), (1.0, 0.2));
    for &x in &d[1..21] {
        assert!((x - 0.097_932_786_013_820_8).abs() < 1e-15, "{x}");
    }
    // 0.5: the official code's reduced budget is never used; every layer but the
    // first, classifier included, is drawn at 0.5 itself (over budget by 216 weights).
    let d = official(0.5);
    assert_eq!(d[0], 1.0);
    assert!(d[1..].iter().all(|&x| x == 0.5), "{d:?}");
    assert!((budget(&layers, &d) - (0.5 * 270_896.0 + 216.0)).abs() < 1e-9);
    // 0.2 is the first density without the floor.
    assert!(official(0.2)[1..].iter().all(|&x| x == 0.2));
    // The exact variant: (0.5·270896 − 432) / (270896 − 432) = 135016 / 270464.
    let d = exact(0.5);
    assert_eq!(d[0], 1.0);
    for &x in &d[1..] {
        assert!((x - 135_016.0 / 270_464.0).abs() < 1e-15, "{x}");
    }
    assert!((budget(&layers, &d) - 0.5 * 270_896.0).abs() < 1e-6);
}

#[test]
fn erk_plus_fixes_the_classifier_and_meets_the_budget() {
    let layers = resnet20();
    let n = total(&layers);
    let alloc = Allocation::ErkPlus {
        classifier_density: 1.0,
        power_scale: 1.0,
    };
    let d = alloc.densities(&layers, 0.1, None).unwrap();
    assert_eq!(d[21], 1.0);
    assert!((budget(&layers, &d) - 0.1 * n).abs() < 1e-9 * n);
    let rest = Allocation::erk()
        .densities(&layers[..21], (0.1 * n - 640.0) / (n - 640.0), None)
        .unwrap();
    assert_eq!(&d[..21], rest.as_slice());
}

#[test]
fn score_allocations_use_a_global_top_k() {
    let layers = vec![LayerSpec::new("a", &[2, 2]), LayerSpec::new("b", &[4])];
    let scores = vec![vec![4.0, 3.0, 0.0, 0.0], vec![2.0, 1.0, -1.0, -2.0]];
    let snip = Allocation::SnipRatio
        .densities(&layers, 0.25, Some(&scores))
        .unwrap();
    assert_eq!(snip, vec![0.5, 0.0]);
    // GraSP keeps the lowest scores.
    let grasp = Allocation::GraspRatio
        .densities(&layers, 0.25, Some(&scores))
        .unwrap();
    assert_eq!(grasp, vec![0.0, 0.5]);
    assert!(
        Allocation::GlobalMagnitude
            .densities(&layers, 0.25, None)
            .is_err()
    );
    let short = vec![vec![1.0; 4], vec![1.0; 3]];
    assert!(
        Allocation::SnipRatio
            .densities(&layers, 0.25, Some(&short))
            .is_err()
    );
}

#[test]
fn exact_count_meets_the_budget_exactly() {
    let layers = resnet20();
    let n = total(&layers);
    for d in [0.05, 0.1, 0.37] {
        let dens = Allocation::erk().densities(&layers, d, None).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let masks = sample_masks(&layers, &dens, Sampling::ExactCount, &mut rng).unwrap();
        let nnz: usize = masks.iter().map(Mask::nnz).sum();
        assert_eq!(nnz, (d * n).round() as usize, "density {d}");
        for ((l, m), dl) in layers.iter().zip(&masks).zip(&dens) {
            assert_eq!(m.shape(), l.shape.as_slice());
            assert!((m.nnz() as f64 - dl * l.numel() as f64).abs() < 1.0);
        }
    }
}

#[test]
fn largest_remainder_rounding() {
    // Targets 1.5, 1.5, 1.2, total 4.2 -> 4: floors 1,1,1 plus one for layer 0
    // (remainder 0.5 ties with layer 1; model order breaks the tie).
    let layers = vec![
        LayerSpec::new("a", &[10]),
        LayerSpec::new("b", &[10]),
        LayerSpec::new("c", &[10]),
    ];
    assert_eq!(
        exact_counts(&layers, &[0.15, 0.15, 0.12]).unwrap(),
        vec![2, 1, 1]
    );
    assert!(exact_counts(&layers, &[0.1, 0.2]).is_err());
    assert!(exact_counts(&layers, &[0.1, 0.2, 1.5]).is_err());
}

#[test]
fn bernoulli_density_is_close_to_the_target() {
    let layer = [LayerSpec::new("big", &[1000, 1000])];
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let masks = sample_masks(&layer, &[0.1], Sampling::Bernoulli, &mut rng).unwrap();
    let n = 1e6;
    let sigma = (n * 0.1 * 0.9f64).sqrt();
    let nnz = masks[0].nnz() as f64;
    assert!((nnz - 0.1 * n).abs() < 4.0 * sigma, "nnz {nnz}");
    // Not exact: Bernoulli counts vary (an exact count would hint at a bug).
    assert_ne!(masks[0].nnz(), 100_000);
}

#[test]
fn same_seed_same_masks() {
    let layers = resnet20();
    let dens = Allocation::erk().densities(&layers, 0.1, None).unwrap();
    for sampling in [Sampling::Bernoulli, Sampling::ExactCount] {
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            sample_masks(&layers, &dens, sampling, &mut rng).unwrap()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }
}

#[test]
fn invalid_hyperparameters_are_rejected_by_name() {
    let named = |r: Result<AllocationConfig>| match r {
        Err(SparseError::InvalidHyperparameter { name, .. }) => name,
        other => panic!("expected a hyperparameter error, got {other:?}"),
    };
    for bad in [0.0, 1.5, f64::NAN, -0.1] {
        assert_eq!(
            named(AllocationConfig::builder().density(bad).build()),
            "density"
        );
    }
    assert_eq!(named(AllocationConfig::builder().build()), "density");
    let alloc = Allocation::Erk { power_scale: -1.0 };
    assert_eq!(
        named(
            AllocationConfig::builder()
                .density(0.1)
                .allocation(alloc)
                .build()
        ),
        "erk_power_scale"
    );
    let alloc = Allocation::ErkPlus {
        classifier_density: 0.0,
        power_scale: 1.0,
    };
    assert_eq!(
        named(
            AllocationConfig::builder()
                .density(0.1)
                .allocation(alloc)
                .build()
        ),
        "classifier_density"
    );
    let layers = resnet20();
    let err = Allocation::erk().densities(&layers, 1.5, None).unwrap_err();
    assert!(err.to_string().contains("density"), "{err}");
    let cfg = AllocationConfig::builder().density(0.2).build().unwrap();
    assert_eq!(cfg.allocation(), Allocation::erk());
    assert_eq!(cfg.sampling(), Sampling::Bernoulli);
}

/// conv 3→8 (3x3) + bn + conv 8→8 + fc 8→4, in a VarMap.
fn small_model() -> VarMap {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    conv2d_no_bias(3, 8, 3, Default::default(), vb.pp("conv1")).unwrap();
    batch_norm(8, 1e-5, vb.pp("bn1")).unwrap();
    conv2d_no_bias(8, 8, 3, Default::default(), vb.pp("conv2")).unwrap();
    linear(8, 4, vb.pp("fc")).unwrap();
    varmap
}

#[test]
fn init_sparse_params_masks_the_selected_weights() {
    let varmap = small_model();
    let order = ["conv1.weight", "conv2.weight", "fc.weight"];
    let policy = SelectionPolicy::builder()
        .layer_order(order)
        .build()
        .unwrap();
    let cfg = AllocationConfig::builder()
        .density(0.3)
        .allocation(Allocation::UniformPlus { exact_budget: true })
        .sampling(Sampling::ExactCount)
        .build()
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let params = cfg
        .init_sparse_params(&varmap, &policy, None, &mut rng)
        .unwrap();
    let names: Vec<&str> = params.names().collect();
    assert_eq!(names, vec!["conv1.weight", "conv2.weight", "fc.weight"]);
    assert_eq!(params.mask("conv1.weight").unwrap().density(), 1.0);
    // Budget: 0.3 · (216 + 576 + 32) = 247.2 -> 247 kept weights.
    let nnz: usize = params.iter().map(|p| p.mask.nnz()).sum();
    assert_eq!(nnz, 247);
    // The weights themselves are zero where the mask is.
    let w = params.get("conv2.weight").unwrap();
    let values = w
        .dense_weight()
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for (i, v) in values.iter().enumerate() {
        if !w.mask.is_active(i) {
            assert_eq!(*v, 0.0);
        }
    }
    // SLaK's rule leaves the dense first layer out of the registry.
    let policy = SelectionPolicy::builder()
        .layer_order(order)
        .dense_threshold(0.99)
        .build()
        .unwrap();
    let params = cfg
        .init_sparse_params(&varmap, &policy, None, &mut rng)
        .unwrap();
    assert!(!params.contains("conv1.weight"));
    assert!(params.contains("conv2.weight"));
    // uniform+ without a model order is refused.
    let unordered = SelectionPolicy::default();
    assert!(
        cfg.init_sparse_params(&varmap, &unordered, None, &mut rng)
            .is_err()
    );
}
