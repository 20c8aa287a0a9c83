//! The MoE layer: dispatch against the all-experts oracle, the softmax over the
//! selected logits, k = N against the plain weighted sum of every expert.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand_chacha::ChaCha8Rng;
use smoe_dropout::mode::Mode;
use smoe_dropout::moe::{MoeLayer, RouterKind, top_k};
use sparse_core::init::{Init, init_vars};
use sparse_core::optim::trainable_vars;
use sparse_repro::rng::rng_from_seed;

const DIM: usize = 6;
const EXPERTS: usize = 4;
const HIDDEN: usize = 5;

fn layer(kind: RouterKind, seed: u64) -> (VarMap, MoeLayer) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let moe = MoeLayer::new(DIM, EXPERTS, HIDDEN, kind, 7, vb).unwrap();
    // a router wider than N(0, 0.02) so that the selected weights are far from uniform
    init_vars(
        &trainable_vars(&varmap),
        |_, _| {
            Some(Init::Normal {
                mean: 0.0,
                std: 0.5,
            })
        },
        &mut rng_from_seed(seed),
    )
    .unwrap();
    (varmap, moe)
}

fn input(tokens: usize, seed: u64) -> Tensor {
    let mut rng: ChaCha8Rng = rng_from_seed(seed);
    let values = Init::Normal {
        mean: 0.0,
        std: 1.0,
    }
    .sample(&[tokens, DIM], &mut rng)
    .unwrap();
    Tensor::from_vec(values, (tokens, DIM), &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn dispatch_agrees_with_the_oracle_for_every_k_forward_and_backward() {
    for kind in [RouterKind::Frozen, RouterKind::Learned, RouterKind::Random] {
        let (varmap, moe) = layer(kind, 1);
        let x = Var::from_tensor(&input(11, 2)).unwrap();
        for k in 1..=EXPERTS {
            let routing = moe.route(&x, k, &mut Mode::Eval).unwrap();
            assert_eq!(routing.load(EXPERTS).iter().sum::<usize>(), 11 * k);
            let fast = moe.dispatch(&x, &routing, &mut Mode::Eval).unwrap();
            let oracle = moe.forward_all_experts(&x, &routing).unwrap();
            assert!(max_diff(&fast, &oracle) < 1e-5, "{kind:?} k = {k}");
            let g_fast = fast.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let g_oracle = oracle.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let mut compared = 0;
            for (name, var) in trainable_vars(&varmap) {
                // an expert no token reached has no gradient on the dispatch path and
                // a zero one through the oracle's zero weights
                let zeros = var.zeros_like().unwrap();
                match (g_fast.get(&var), g_oracle.get(&var)) {
                    (None, None) => {}
                    (a, b) => {
                        let (a, b) = (a.unwrap_or(&zeros), b.unwrap_or(&zeros));
                        assert!(max_diff(a, b) < 1e-4, "{kind:?} k = {k} {name}");
                        compared += 1;
                    }
                }
            }
            assert!(compared >= 4 * EXPERTS, "{kind:?} k = {k}");
            let (a, b) = (g_fast.get(&x).unwrap(), g_oracle.get(&x).unwrap());
            assert!(max_diff(a, b) < 1e-4, "{kind:?} k = {k} input gradient");
            // only the learned router gets a gradient of its own
            let router = varmap.data().lock().unwrap()["router.weight"].clone();
            assert_eq!(
                g_fast.get(&router).is_some(),
                kind == RouterKind::Learned,
                "{kind:?}"
            );
        }
    }
}

#[test]
fn the_weights_are_the_softmax_of_the_selected_logits_only() {
    let (_, moe) = layer(RouterKind::Frozen, 3);
    let x = input(9, 4);
    let logits: Vec<Vec<f32>> = moe.logits(&x).unwrap().to_vec2().unwrap();
    let routing = moe.route(&x, 2, &mut Mode::Eval).unwrap();
    let weights: Vec<Vec<f32>> = routing.weights.to_vec2().unwrap();
    for (t, row) in logits.iter().enumerate() {
        let chosen = &routing.experts[2 * t..2 * t + 2];
        assert_eq!(chosen, top_k(row, 2).as_slice());
        let (a, b) = (row[chosen[0] as usize], row[chosen[1] as usize]);
        // e^a / (e^a + e^b), not the full softmax's e^a / Σ_j e^(l_j)
        let expected = 1.0 / (1.0 + (b - a).exp());
        assert!((weights[t][0] - expected).abs() < 1e-6);
        assert!((weights[t][0] + weights[t][1] - 1.0).abs() < 1e-6);
        let full: f32 = row.iter().map(|l| (l - a).exp()).sum();
        assert!(
            (weights[t][0] - 1.0 / full).abs() > 1e-3,
            "the full softmax differs"
        );
    }
}

#[test]
fn k_equal_to_n_with_a_frozen_router_is_the_weighted_sum_of_every_expert() {
    let (varmap, moe) = layer(RouterKind::Frozen, 5);
    let x = input(7, 6);
    let y = moe.forward(&x, EXPERTS, &mut Mode::Eval).unwrap();
    // the reference: softmax over all N logits, every expert by hand
    let probs = candle_nn::ops::softmax(&moe.logits(&x).unwrap(), 1).unwrap();
    let data = varmap.data().lock().unwrap();
    let get = |name: &str| data[name].as_tensor().clone();
    let mut reference = Tensor::zeros((7, DIM), DType::F32, &Device::Cpu).unwrap();
    for j in 0..EXPERTS {
        let p = |s: &str| format!("experts.{j}.{s}");
        let hidden = x
            .matmul(&get(&p("w1.weight")).t().unwrap())
            .unwrap()
            .broadcast_add(&get(&p("w1.bias")))
            .unwrap()
            .relu()
            .unwrap();
        let out = hidden
            .matmul(&get(&p("w2.weight")).t().unwrap())
            .unwrap()
            .broadcast_add(&get(&p("w2.bias")))
            .unwrap();
        let weighted = out.broadcast_mul(&probs.narrow(1, j, 1).unwrap()).unwrap();
        reference = (reference + weighted).unwrap();
    }
    assert!(max_diff(&y, &reference) < 1e-5);
}

#[test]
fn ties_go_to_the_lower_index_and_k_is_checked() {
    assert_eq!(top_k(&[1.0, 3.0, 3.0, 0.5], 2), [1, 2]);
    assert_eq!(top_k(&[0.0, 0.0, 0.0], 3), [0, 1, 2]);
    let (_, moe) = layer(RouterKind::Frozen, 1);
    let x = input(3, 1);
    for k in [0, EXPERTS + 1] {
        let err = moe.route(&x, k, &mut Mode::Eval).unwrap_err().to_string();
        assert!(err.contains("k"), "{err}");
    }
}

#[test]
fn random_routes_are_drawn_per_pass_in_training_and_fixed_at_inference() {
    let (_, moe) = layer(RouterKind::Random, 1);
    let x = input(32, 1);
    let mut rng = rng_from_seed(9);
    let mut train = Mode::Train {
        rng: &mut rng,
        dropout: 0.0,
    };
    let a = moe.route(&x, 2, &mut train).unwrap().experts;
    let b = moe.route(&x, 2, &mut train).unwrap().experts;
    assert_ne!(a, b);
    let e1 = moe.route(&x, 2, &mut Mode::Eval).unwrap().experts;
    let e2 = moe.route(&x, 2, &mut Mode::Eval).unwrap().experts;
    assert_eq!(e1, e2);
}
