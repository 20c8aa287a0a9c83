use super::*;
use candle_core::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use sparse_core::LayerShape;

fn build(arch: Architecture, input: InputShape) -> (VarMap, Model) {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let model = Model::new(&arch, input, 10, vb).unwrap();
    (vm, model)
}

/// Runs a forward pass and checks that every listed weight exists with the shape
/// its FLOP description implies, and that the list ends with the classifier.
fn check(arch: Architecture, input: InputShape, expected_weights: usize) -> Vec<LayerFlops> {
    let (vm, model) = build(arch, input);
    let x = Tensor::zeros(
        (2, input.channels, input.height, input.width),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let y = model.forward_t(&x, true).unwrap();
    assert_eq!(y.dims(), &[2, 10]);
    let names = model.weight_names_in_order();
    assert_eq!(names.len(), expected_weights);
    let flops = model.layer_flops(input);
    assert_eq!(
        flops.iter().map(|l| l.weight.clone()).collect::<Vec<_>>(),
        names
    );
    let data = vm.data().lock().unwrap();
    for layer in &flops {
        let var = data
            .get(&layer.weight)
            .unwrap_or_else(|| panic!("{} is not in the VarMap", layer.weight));
        assert_eq!(var.elem_count(), layer.weight_numel(), "{}", layer.weight);
    }
    assert!(names.first().unwrap() != names.last().unwrap());
    assert_eq!(names.last().unwrap(), "classifier.weight");
    flops
}

fn conv_out(layer: &LayerFlops) -> (usize, usize) {
    match layer.shape {
        LayerShape::Conv2d { out_h, out_w, .. } => (out_h, out_w),
        other => panic!("{} is not a convolution: {other:?}", layer.weight),
    }
}

#[test]
fn mlp_shapes_and_names() {
    let input = InputShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let flops = check(
        Architecture::Mlp {
            width: 16,
            depth: 2,
        },
        input,
        3,
    );
    assert_eq!(
        flops[0].shape,
        LayerShape::Linear {
            in_features: 64,
            out_features: 16,
            bias: true
        }
    );
    // 2·(64·16 + 16·16 + 16·10) multiply-adds plus 16 + 16 + 10 biases.
    let dense: f64 = flops.iter().map(LayerFlops::dense_flops).sum();
    assert_eq!(dense, (2 * (64 * 16 + 16 * 16 + 16 * 10) + 42) as f64);
}

#[test]
fn resnet20_has_the_official_layer_count() {
    // stem + 9 blocks x 2 convs + 2 projection shortcuts + classifier = 22
    let input = InputShape {
        channels: 3,
        height: 32,
        width: 32,
    };
    let flops = check(
        Architecture::ResNet {
            depth: 20,
            width: 4,
        },
        input,
        22,
    );
    assert_eq!(conv_out(&flops[0]), (32, 32));
    assert_eq!(conv_out(&flops[20]), (8, 8));
}

#[test]
fn resnet_takes_mnist_sized_input_and_rejects_bad_depth() {
    let input = InputShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    // stem + 3 blocks x 2 convs + 2 shortcuts + classifier = 10
    let flops = check(Architecture::ResNet { depth: 8, width: 4 }, input, 10);
    // A stride-2 layer and its projection shortcut both give the block's output size.
    let sizes: Vec<(String, (usize, usize))> = flops[..9]
        .iter()
        .map(|l| (l.weight.clone(), conv_out(l)))
        .collect();
    assert_eq!(sizes[3].0, "stage1.block0.conv1.conv.weight");
    assert_eq!(sizes[3].1, (14, 14));
    assert_eq!(sizes[5].0, "stage1.block0.shortcut.conv.weight");
    assert_eq!(sizes[5].1, (14, 14));
    assert_eq!(sizes[8].0, "stage2.block0.shortcut.conv.weight");
    assert_eq!(sizes[8].1, (7, 7));
    for depth in [0, 2, 7, 21] {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let arch = Architecture::ResNet { depth, width: 4 };
        assert!(Model::new(&arch, input, 10, vb).is_err(), "depth {depth}");
    }
}

#[test]
fn vgg_shapes_and_names() {
    let input = InputShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let flops = check(Architecture::Vgg { width: 4 }, input, 5);
    let sizes: Vec<_> = flops[..4].iter().map(conv_out).collect();
    assert_eq!(sizes, [(28, 28), (14, 14), (7, 7), (7, 7)]);
    assert_eq!(
        flops[4].shape,
        LayerShape::Linear {
            in_features: 16,
            out_features: 10,
            bias: true
        }
    );
}

#[test]
fn labels_widths_and_serde_names_are_stable() {
    // Reports and checkpoint metadata store these strings; changing them breaks old runs.
    let cases = [
        (
            Architecture::Mlp {
                width: 64,
                depth: 2,
            },
            "mlp-64x2",
            64,
            r#"{"kind":"mlp","width":64,"depth":2}"#,
        ),
        (
            Architecture::ResNet {
                depth: 20,
                width: 16,
            },
            "resnet20-16",
            16,
            r#"{"kind":"res-net","depth":20,"width":16}"#,
        ),
        (
            Architecture::Vgg { width: 32 },
            "vgg-32",
            32,
            r#"{"kind":"vgg","width":32}"#,
        ),
    ];
    for (arch, label, width, json) in cases {
        assert_eq!(arch.label(), label);
        assert_eq!(arch.width(), width);
        assert_eq!(serde_json::to_string(&arch).unwrap(), json);
        assert_eq!(serde_json::from_str::<Architecture>(json).unwrap(), arch);
    }
    let input = InputShape {
        channels: 3,
        height: 32,
        width: 30,
    };
    assert_eq!(input.numel(), 2880);
}

/// Masks at density 0.2 on every convolution (and the classifier) of a model.
fn masks_for(vm: &VarMap, model: &Model) -> sparse_core::SparseParams {
    let data = vm.data().lock().unwrap();
    let mut params = sparse_core::SparseParams::new();
    for (i, name) in model.weight_names_in_order().iter().enumerate() {
        let var = data[name].clone();
        let keep: Vec<bool> = (0..var.elem_count())
            .map(|k| (k * 7 + i) % 5 == 0)
            .collect();
        let mask = sparse_core::Mask::from_bools(var.dims(), &keep).unwrap();
        params.insert(name.clone(), var, mask).unwrap();
    }
    params
}

/// The gradients of `Σ model(x)²` (training mode).
fn squared_output_grads(model: &Model, x: &Tensor) -> candle_core::backprop::GradStore {
    let y = model.forward_t(x, true).unwrap();
    y.sqr().unwrap().sum_all().unwrap().backward().unwrap()
}

/// A gradient as a flat host vector.
fn flat(grads: &candle_core::backprop::GradStore, var: &candle_core::Var) -> Vec<f32> {
    grads
        .get(var.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn sparse_convolutions_compute_what_the_masked_dense_ones_do() {
    let input = InputShape {
        channels: 3,
        height: 8,
        width: 8,
    };
    for (arch, convs) in [
        (Architecture::ResNet { depth: 8, width: 4 }, 9),
        (Architecture::Vgg { width: 4 }, 4),
    ] {
        let (vm, mut model) = build(arch.clone(), input);
        let params = masks_for(&vm, &model);
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &Device::Cpu).unwrap();
        // training mode throughout: batch statistics, so the passes are comparable
        let dense = model.forward_t(&x, true).unwrap();
        let dense_grads = squared_output_grads(&model, &x);
        assert_eq!(model.set_sparse_masks(&params).unwrap(), convs, "{arch:?}");
        let sparse = model.forward_t(&x, true).unwrap();
        let diff = (dense - &sparse).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-4, "{arch:?}: forward");
        // the masked weight gradient: the dense one at active positions, zero elsewhere
        let grads = squared_output_grads(&model, &x);
        for p in params.iter().filter(|p| p.name.contains("conv")) {
            let var = p.dense_var().unwrap();
            let (g, d) = (flat(&grads, var), flat(&dense_grads, var));
            for (i, (g, d)) in g.iter().zip(&d).enumerate() {
                let want = if p.mask.is_active(i) { *d } else { 0.0 };
                assert!(
                    (g - want).abs() <= 1e-3 * (1.0 + want.abs()),
                    "{}: {i}: {g} vs {want}",
                    p.name
                );
            }
        }
        // the dense gradient on request
        model.set_conv_weight_grad(sparse_core::kernels::WeightGrad::Dense);
        let grads = squared_output_grads(&model, &x);
        for p in params.iter().filter(|p| p.name.contains("conv")) {
            let var = p.dense_var().unwrap();
            let g = grads.get(var.as_tensor()).unwrap();
            let d = dense_grads.get(var.as_tensor()).unwrap();
            let diff = (g - d)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-3, "{}: dense gradient", p.name);
        }
        // denser masks leave the convolutions dense
        assert_eq!(
            model
                .set_sparse_masks(&sparse_core::SparseParams::new())
                .unwrap(),
            0
        );
    }
}

#[test]
fn resnet18_and_vgg16_shapes_and_names() {
    let input = InputShape {
        channels: 3,
        height: 32,
        width: 32,
    };
    // ResNet-18: stem + 8 blocks of 2 convolutions + 3 projection shortcuts + classifier.
    let flops = check(Architecture::ResNet18 { width: 4 }, input, 1 + 16 + 3 + 1);
    let last_conv = &flops[flops.len() - 2];
    assert_eq!(conv_out(last_conv), (4, 4), "{}", last_conv.weight);
    assert!(last_conv.weight.starts_with("stage3.block1"));
    // VGG-16: 13 convolutions + classifier; five pools take 32x32 to 1x1.
    let flops = check(Architecture::Vgg16 { width: 4 }, input, 13 + 1);
    assert_eq!(conv_out(&flops[12]), (2, 2));
    assert_eq!(Architecture::ResNet18 { width: 64 }.label(), "resnet18-64");
    assert_eq!(Architecture::Vgg16 { width: 64 }.label(), "vgg16-64");
}
