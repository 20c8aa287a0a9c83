use candle_core::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use random_pruning::model::{Architecture, InputShape, Model};

fn build(arch: Architecture, input: InputShape) -> (VarMap, Model) {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let model = Model::new(&arch, input, 10, vb).unwrap();
    (vm, model)
}

fn check(arch: Architecture, input: InputShape, expected_weights: usize) {
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
    let data = vm.data().lock().unwrap();
    for n in &names {
        assert!(data.contains_key(n), "{n} is not in the VarMap");
    }
    assert!(names.first().unwrap() != names.last().unwrap());
    assert_eq!(names.last().unwrap(), "classifier.weight");
}

#[test]
fn mlp_shapes_and_names() {
    let input = InputShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    check(
        Architecture::Mlp {
            width: 16,
            depth: 2,
        },
        input,
        3,
    );
}

#[test]
fn resnet20_has_the_official_layer_count() {
    // stem + 9 blocks x 2 convs + 2 projection shortcuts + classifier = 22
    let input = InputShape {
        channels: 3,
        height: 32,
        width: 32,
    };
    check(
        Architecture::ResNet {
            depth: 20,
            width: 4,
        },
        input,
        22,
    );
}

#[test]
fn resnet_takes_mnist_sized_input_and_rejects_bad_depth() {
    let input = InputShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    // stem + 3 blocks x 2 convs + 2 shortcuts + classifier = 10
    check(Architecture::ResNet { depth: 8, width: 4 }, input, 10);
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    assert!(
        Model::new(
            &Architecture::ResNet {
                depth: 21,
                width: 4
            },
            input,
            10,
            vb
        )
        .is_err()
    );
}

#[test]
fn vgg_shapes_and_names() {
    let input = InputShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    check(Architecture::Vgg { width: 4 }, input, 5);
}
