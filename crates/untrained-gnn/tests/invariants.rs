//! Invariants of the method: mask sparsity, frozen weights, the straight-through
//! score gradient, and the graph operators on hand-checked graphs.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use sparse_data::data::Planetoid;
use sparse_repro::progress::ProgressMode;
use untrained_gnn::data::GraphData;
use untrained_gnn::model::{Gnn, gat};
use untrained_gnn::training::{self, Network};
use untrained_gnn::{Method, ModelKind, TrainConfig};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../datasets/fixtures/planetoid"
);

fn fixture() -> GraphData {
    let g = Planetoid::load(FIXTURE).unwrap();
    GraphData::from_planetoid("fixture", &g, &Device::Cpu).unwrap()
}

/// The path graph 0 - 1 - 2, one-hot features, every node labelled.
fn path3() -> GraphData {
    let nodes = b"node label split\n0 0 train\n1 1 val\n2 0 test\n";
    let features = b"node feature value\n0 0 1\n1 1 1\n2 2 1\n";
    let edges = b"src dst\n0 1\n1 2\n";
    let g = Planetoid::parse((nodes, "n"), (features, "f"), (edges, "e")).unwrap();
    GraphData::from_planetoid("path3", &g, &Device::Cpu).unwrap()
}

fn to_host(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2::<f32>().unwrap()
}

fn assert_close(a: &[Vec<f32>], b: &[Vec<f64>]) {
    for (ra, rb) in a.iter().zip(b) {
        for (x, y) in ra.iter().zip(rb) {
            assert!((*x as f64 - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn gcn_normalisation_on_a_hand_checked_path_graph() {
    let g = path3();
    // Degrees of A + I: 2, 3, 2.
    let (a, b, c) = (0.5, 1.0 / 6f64.sqrt(), 1.0 / 3.0);
    let hat = [vec![a, b, 0.0], vec![b, c, b], vec![0.0, b, a]];
    let eye = Tensor::eye(3, DType::F32, &Device::Cpu).unwrap();
    assert_close(&to_host(&g.gcn_adjacency.matmul(&eye).unwrap()), &hat);
    // A 2-layer GCN with identity weights on one-hot features is Â relu(Â) = Â².
    let model = Gnn::new(ModelKind::Gcn, 2, 3, 3, 3).unwrap();
    let weights: BTreeMap<String, Tensor> = model
        .param_specs()
        .into_iter()
        .map(|s| (s.name, eye.clone()))
        .collect();
    let out = model.forward(&g, &weights, None).unwrap();
    let mut squared = vec![vec![0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            squared[i][j] = (0..3).map(|k| hat[i][k] * hat[k][j]).sum();
        }
    }
    assert_close(&to_host(&out), &squared);
    // GIN's mean over neighbours (no self-loop): node 1 averages nodes 0 and 2.
    let mean = [
        vec![0.0, 1.0, 0.0],
        vec![0.5, 0.0, 0.5],
        vec![0.0, 1.0, 0.0],
    ];
    assert_close(&to_host(&g.mean_adjacency.matmul(&eye).unwrap()), &mean);
}

#[test]
fn gat_attention_is_a_convex_combination_of_neighbours() {
    let g = path3();
    let dev = Device::Cpu;
    let z = Tensor::new(&[[1f32, 0.], [0., 1.], [3., -2.]], &dev).unwrap();
    let att_src = Tensor::new(&[[0.3f32, -0.7]], &dev).unwrap();
    let att_dst = Tensor::new(&[[1.1f32, 0.4]], &dev).unwrap();
    let out = to_host(&gat::attend(&g, &z, &att_src, &att_dst, None).unwrap());
    // Node 0 attends to {0, 1}: e_0j = LeakyReLU(<att_src, z_j> + <att_dst, z_0>).
    let lrelu = |x: f64| if x > 0.0 { x } else { 0.2 * x };
    let (s0, s1, d0) = (0.3, -0.7, 1.1);
    let (e00, e01) = (lrelu(s0 + d0), lrelu(s1 + d0));
    let w0 = e00.exp() / (e00.exp() + e01.exp());
    assert_close(&out[..1], &[vec![w0, 1.0 - w0]]);
    // With equal features every output row is that feature (weights sum to one).
    let ones = Tensor::ones((3, 2), DType::F32, &dev).unwrap();
    let out = to_host(&gat::attend(&g, &ones, &att_src, &att_dst, None).unwrap());
    assert_close(&out, &vec![vec![1.0, 1.0]; 3]);
}

#[test]
fn gat_attention_dropout_drops_normalised_coefficients() {
    use rand::SeedableRng;
    use untrained_gnn::model::Dropout;
    let g = path3();
    let dev = Device::Cpu;
    // Zero attention vectors: α_ij = 1/deg_i over A + I, so a row of ones stays one.
    let zero = Tensor::zeros((1, 2), DType::F32, &dev).unwrap();
    let ones = Tensor::ones((3, 2), DType::F32, &dev).unwrap();
    let p = 0.5f32;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut twin = rng.clone();
    let d = Some(Dropout { rng: &mut rng, p });
    let out = to_host(&gat::attend(&g, &ones, &zero, &zero, d).unwrap());
    // The same draws, one per edge in CSR order, scaled by 1/(1 − p) when kept.
    let nnz = g.gcn_adjacency.nnz();
    let keep = sparse_repro::rng::dropout_mask(&mut twin, nnz, p, &dev)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let rows = g.gcn_adjacency.row().to_vec1::<u32>().unwrap();
    let degree = |i: u32| rows.iter().filter(|&&r| r == i).count() as f64;
    let mut expected = vec![0.0f64; 3];
    for (&r, &k) in rows.iter().zip(&keep) {
        expected[r as usize] += f64::from(k) / degree(r);
    }
    let expected: Vec<Vec<f64>> = expected.into_iter().map(|v| vec![v, v]).collect();
    assert_close(&out, &expected);
    assert!(
        keep.contains(&0.0),
        "seed 3 drops at least one of the 7 edges"
    );
}

#[test]
fn dense_gat_drops_every_input_but_the_last_and_every_attention() {
    use rand::{Rng, SeedableRng};
    use untrained_gnn::model::Dropout;
    let g = path3();
    let model = Gnn::new(ModelKind::Gat, 3, 3, 4, 2).unwrap();
    let dev = Device::Cpu;
    let weights: BTreeMap<String, Tensor> = model
        .param_specs()
        .into_iter()
        .map(|s| {
            let w = Tensor::full(0.5f32, s.shape.as_slice(), &dev).unwrap();
            (s.name, w)
        })
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let start = rng.clone();
    let d = Some(Dropout {
        rng: &mut rng,
        p: 0.6,
    });
    model.forward(&g, &weights, d).unwrap();
    // As the official `GAT.forward` and `GATConv`: one draw per stored feature
    // (layer 0's input) and per entry of layer 1's input (3 nodes × 4), none for the
    // last layer's input, and one per edge of A + I in each of the 3 layers.
    let draws = g.features.nnz() + 3 * g.gcn_adjacency.nnz() + 3 * 4;
    let mut expected = start;
    for _ in 0..draws {
        let _: f32 = expected.random();
    }
    assert_eq!(rng.get_word_pos(), expected.get_word_pos());
}

#[test]
fn zeros_of_the_combined_mask_follow_the_schedule() {
    let g = fixture();
    for (method, layers) in [(Method::Ugt, 2), (Method::Ugt, 3), (Method::EdgePopup, 2)] {
        let config = TrainConfig::builder(ModelKind::Gat, method)
            .layers(layers)
            .hidden(16)
            .sparsity(0.8)
            .epochs(20)
            .build()
            .unwrap();
        let net = Network::new(&config, g.num_features, g.num_classes, &Device::Cpu).unwrap();
        let ramp = config.ramp().unwrap().unwrap();
        for epoch in [0, 3, 7, 10, 19] {
            let s = ramp.sparsity_at(epoch, config.epochs());
            let masks = net.masks(s).unwrap();
            let total: usize = masks.values().map(|m| m.numel()).sum();
            let zeros: usize = masks.values().map(|m| m.numel() - m.nnz()).sum();
            // The official `percentile` rule: round(s·(n − 1)) of n removed, i.e. the
            // scheduled fraction to within 1.5/n.
            let expected = |n: usize| (s * (n - 1) as f64).round_ties_even() as usize;
            match method {
                // One global threshold: the zeros of all layers together.
                Method::Ugt => {
                    assert_eq!(zeros, expected(total), "epoch {epoch}");
                    assert!((zeros as f64 / total as f64 - s).abs() <= 1.5 / total as f64);
                }
                // Per layer: every layer on its own.
                _ => {
                    for m in masks.values() {
                        assert_eq!(m.numel() - m.nnz(), expected(m.numel()), "epoch {epoch}");
                    }
                }
            }
        }
        // UGTs ramp: nothing removed at epoch 0; edge-popup starts at the target.
        let first = ramp.sparsity_at(0, config.epochs());
        assert_eq!(first, if method == Method::Ugt { 0.0 } else { 0.8 });
    }
}

#[test]
fn weights_stay_bit_identical_while_scores_learn() {
    let g = fixture();
    let config = TrainConfig::builder(ModelKind::Gcn, Method::Ugt)
        .hidden(16)
        .sparsity(0.5)
        .epochs(15)
        .seed(7)
        .build()
        .unwrap();
    let fresh = Network::new(&config, g.num_features, g.num_classes, &Device::Cpu).unwrap();
    let bits = |net: &Network, suffix: &str| -> Vec<Vec<u32>> {
        let data = net.varmap().data().lock().unwrap();
        let mut names: Vec<&String> = data.keys().filter(|n| n.ends_with(suffix)).collect();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let v = data[n]
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                v.into_iter().map(f32::to_bits).collect()
            })
            .collect()
    };
    let (trained, _) = training::train(&config, &g, &Device::Cpu, ProgressMode::Quiet).unwrap();
    assert_eq!(bits(&fresh, ".weight"), bits(&trained, ".weight"));
    assert_ne!(
        bits(&fresh, ".score"),
        bits(&trained, ".score"),
        "scores must move"
    );
    // Dense training, the control: the same weights do move.
    let dense = TrainConfig::builder(ModelKind::Gcn, Method::Dense)
        .hidden(16)
        .epochs(3)
        .seed(7)
        .build()
        .unwrap();
    let (trained, _) = training::train(&dense, &g, &Device::Cpu, ProgressMode::Quiet).unwrap();
    assert_ne!(bits(&fresh, ".weight"), bits(&trained, ".weight"));
}

#[test]
fn score_gradient_is_masked_weight_gradient_times_weight() {
    let g = fixture();
    let dev = Device::Cpu;
    for model in [ModelKind::Gcn, ModelKind::Gat, ModelKind::Gin] {
        let config = TrainConfig::builder(model, Method::Ugt)
            .hidden(6)
            .sparsity(0.6)
            .build()
            .unwrap();
        let net = Network::new(&config, g.num_features, g.num_classes, &dev).unwrap();
        let masks = net.masks(0.6).unwrap();
        let loss_of = |weights: &BTreeMap<String, Tensor>| {
            let out = net.model().forward(&g, weights, None).unwrap();
            let c = Tensor::arange(0f32, out.elem_count() as f32, &dev)
                .unwrap()
                .reshape(out.dims())
                .unwrap()
                .cos()
                .unwrap();
            out.mul(&c).unwrap().sum_all().unwrap()
        };
        let grads = loss_of(&net.effective_weights(&masks).unwrap())
            .backward()
            .unwrap();
        // The same forward pass with W̃ = W ⊙ m as leaves.
        let leaves: BTreeMap<String, Var> = net
            .subnetwork()
            .unwrap()
            .layers()
            .map(|l| {
                let m = masks[l.name()].to_tensor(DType::F32, &dev).unwrap();
                (
                    l.name().to_string(),
                    Var::from_tensor(&l.weight().mul(&m).unwrap()).unwrap(),
                )
            })
            .collect();
        let as_tensors = leaves
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        let leaf_grads = loss_of(&as_tensors).backward().unwrap();
        let mut nonzero = 0;
        for l in net.subnetwork().unwrap().layers() {
            let gs = grads
                .get(l.scores().as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap();
            let gw = leaf_grads.get(leaves[l.name()].as_tensor()).unwrap();
            let expected = gw.mul(l.weight()).unwrap().flatten_all().unwrap();
            let (gs, expected) = (
                gs.to_vec1::<f32>().unwrap(),
                expected.to_vec1::<f32>().unwrap(),
            );
            for (a, b) in gs.iter().zip(&expected) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{model:?} {}: {a} vs {b}",
                    l.name()
                );
                nonzero += usize::from(*b != 0.0);
            }
        }
        assert!(nonzero > 0, "{model:?}: the gradient must not vanish");
    }
}

#[test]
fn ood_split_relabels_in_distribution_nodes_and_isolates_held_out_ones() {
    // Five labelled nodes, classes 0..4; hold class 2 out by hand.
    let nodes = b"node label split\n0 0 train\n1 1 train\n2 2 train\n3 3 test\n4 2 test\n";
    let features = b"node feature value\n0 0 1\n1 1 1\n2 2 1\n3 3 1\n4 4 1\n";
    let edges = b"src dst\n0 1\n";
    let g = Planetoid::parse((nodes, "n"), (features, "f"), (edges, "e")).unwrap();
    let g = GraphData::from_planetoid("five", &g, &Device::Cpu).unwrap();
    // A generator whose shuffle we do not control: find a seed holding out class 2.
    let split = (0..200u64)
        .map(|seed| {
            let mut rng = sparse_repro::rng::derive_rng(seed, untrained_gnn::ood::OOD_STREAM);
            untrained_gnn::ood::ClassSplit::drawn(4, 1, &mut rng).unwrap()
        })
        .find(|s| s.held_out() == [2])
        .expect("some seed holds out class 2");
    let (train, labels) = g.nodes_in(&g.train, &split);
    assert_eq!(train, vec![0, 1], "the held-out class never trains");
    let expected: Vec<u32> = [0, 1].iter().map(|&c| split.label(c).unwrap()).collect();
    assert_eq!(labels, expected);
    assert!(labels.iter().all(|&l| l < 3), "labels are dense in 0..3");
    assert_eq!(g.nodes_in(&g.test, &split).0, vec![3]);
    assert_eq!(g.nodes_held_out(&g.test, &split), vec![4]);
}

#[test]
fn runs_hold_out_classes_drawn_from_their_seed() {
    let g = fixture();
    let held_out = |seed: u64| {
        let config = TrainConfig::builder(ModelKind::Gcn, Method::Ugt)
            .ood_classes(1)
            .seed(seed)
            .build()
            .unwrap();
        let splits = training::NodeSplits::new(&g, &config, &Device::Cpu).unwrap();
        assert_eq!(splits.classes, g.num_classes - 1);
        splits.held_out_classes().to_vec()
    };
    // Reproducible per seed (checkpoints re-derive the split) ...
    assert_eq!(held_out(3), held_out(3));
    // ... and not always the same class, as the official seeded shuffle.
    let drawn: std::collections::BTreeSet<Vec<u32>> = (0..12).map(held_out).collect();
    assert!(drawn.len() > 1, "{drawn:?}");
    // Without the OOD protocol nothing is held out.
    let plain = TrainConfig::builder(ModelKind::Gcn, Method::Ugt)
        .build()
        .unwrap();
    let splits = training::NodeSplits::new(&g, &plain, &Device::Cpu).unwrap();
    assert!(splits.held_out_classes().is_empty());
    assert_eq!(splits.classes, g.num_classes);
}
