//! The language model: gradients through attention, layer norm and the router
//! against finite differences, expert dropout, configuration checks and short runs.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use smoe_dropout::config::LmConfig;
use smoe_dropout::data::CharData;
use smoe_dropout::mode::Mode;
use smoe_dropout::model::{CharLm, FeedForwardKind, LmSpec};
use smoe_dropout::moe::RouterKind;
use smoe_dropout::presets::{self, ArmKind};
use smoe_dropout::schedule::{KMode, KSchedule};
use smoe_dropout::training::{symmetric_kl, train};
use sparse_data::data::text::CharCorpus;
use sparse_repro::cli::Preset;
use sparse_repro::progress::ProgressMode;
use sparse_repro::rng::rng_from_seed;
use sparse_repro::train::cross_entropy;

fn spec(ffn: FeedForwardKind) -> LmSpec {
    LmSpec {
        vocab: 7,
        context: 6,
        dim: 8,
        heads: 2,
        layers: 2,
        num_experts: 3,
        expert_hidden: 4,
        dropout: 0.0,
        ffn,
    }
}

fn tokens() -> (Tensor, Tensor) {
    let input = Tensor::new(&[[0u32, 3, 1, 6, 2, 2], [5, 4, 4, 0, 1, 3]], &Device::Cpu).unwrap();
    let target = Tensor::new(&[3u32, 1, 6, 2, 2, 0, 4, 4, 0, 1, 3, 5], &Device::Cpu).unwrap();
    (input, target)
}

fn loss(model: &CharLm, k: usize) -> Tensor {
    let (input, target) = tokens();
    let logits = model.forward(&input, k, &mut Mode::Eval).unwrap();
    cross_entropy(&logits, &target, 0.0).unwrap()
}

fn var(varmap: &VarMap, name: &str) -> candle_core::Var {
    varmap.data().lock().unwrap()[name].clone()
}

#[test]
fn gradients_through_attention_layer_norm_and_router_match_finite_differences() {
    let kind = FeedForwardKind::Moe {
        router: RouterKind::Learned,
    };
    let (varmap, model) = CharLm::build(spec(kind), 3, &Device::Cpu).unwrap();
    // k = N: every expert selected, so small steps never change the routes
    let k = 3;
    let grads = loss(&model, k).backward().unwrap();
    let names = [
        "layers.0.attention.q_proj.weight",
        "layers.0.attention.k_proj.weight",
        "layers.1.attention.v_proj.weight",
        "layers.0.attention.out_proj.bias",
        "layers.0.ln_attention.weight",
        "layers.1.ln_ffn.bias",
        "layers.0.ffn.router.weight",
        "layers.1.ffn.experts.2.w1.weight",
        "embedding.positions",
    ];
    let eps = 1e-2f32;
    for name in names {
        let v = var(&varmap, name);
        let analytic: Vec<f32> = grads
            .get(&v)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let base: Vec<f32> = v.flatten_all().unwrap().to_vec1().unwrap();
        let scale = analytic.iter().fold(0f32, |m, g| m.max(g.abs())).max(1e-3);
        for j in [0, base.len() / 3, base.len() - 1] {
            let at = |delta: f32| {
                let mut values = base.clone();
                values[j] += delta;
                v.set(&Tensor::from_vec(values, v.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                let l = loss(&model, k).to_scalar::<f32>().unwrap();
                v.set(&Tensor::from_vec(base.clone(), v.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                f64::from(l)
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * f64::from(eps));
            let err = (numeric - f64::from(analytic[j])).abs();
            assert!(
                err <= 2e-2 * f64::from(scale),
                "{name}[{j}]: finite difference {numeric} vs analytic {}",
                analytic[j]
            );
        }
    }
}

#[test]
fn expert_dropout_drops_whole_groups_in_training_and_nothing_at_inference() {
    let (_, dense) = CharLm::build(spec(FeedForwardKind::Dense), 4, &Device::Cpu).unwrap();
    let (_, dropped) = CharLm::build(
        spec(FeedForwardKind::ExpertDropout { rate: 0.5 }),
        4,
        &Device::Cpu,
    )
    .unwrap();
    let (input, _) = tokens();
    let a = dense.forward(&input, 3, &mut Mode::Eval).unwrap();
    let b = dropped.forward(&input, 3, &mut Mode::Eval).unwrap();
    let diff = |x: &Tensor, y: &Tensor| {
        (x - y)
            .unwrap()
            .abs()
            .unwrap()
            .max_keepdim(0)
            .unwrap()
            .max(1)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert_eq!(
        diff(&a, &b),
        0.0,
        "the same weights, every unit at inference"
    );
    let mut rng = rng_from_seed(1);
    let mut mode = Mode::Train {
        rng: &mut rng,
        dropout: 0.0,
    };
    let trained: Vec<f32> = (0..4)
        .map(|_| diff(&dropped.forward(&input, 3, &mut mode).unwrap(), &a))
        .collect();
    assert!(trained.iter().any(|&d| d > 1e-4), "{trained:?}");
}

#[test]
fn configurations_are_checked_before_training() {
    let good = presets::config(Preset::Smoke, ArmKind::SmoeDropout, KMode::LinearIncrease).unwrap();
    let bad = |edit: &dyn Fn(&mut LmConfig), parameter: &str| {
        let mut config = good.clone();
        edit(&mut config);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(parameter), "{parameter}: {err}");
    };
    bad(&|c| c.model.heads = 3, "heads");
    bad(&|c| c.model.dropout = 1.0, "dropout");
    bad(&|c| c.seq_len = c.model.context + 1, "seq_len");
    bad(&|c| c.lr = 0.0, "lr");
    bad(&|c| c.grad_clip = f64::NAN, "grad_clip");
    bad(&|c| c.sweep = vec![2, 1], "sweep");
    bad(&|c| c.sweep = vec![1, 9], "sweep");
    bad(&|c| c.schedule.k_max = 9, "k_max");
    bad(
        &|c| {
            c.schedule = KSchedule {
                k_min: 0,
                ..c.schedule
            }
        },
        "k_min",
    );
    bad(&|c| c.eval_chars = Some(4), "eval_chars");
    bad(
        &|c| c.model.ffn = FeedForwardKind::ExpertDropout { rate: 1.5 },
        "expert_dropout",
    );
    bad(&|c| c.steps = 0, "steps");
    for kind in ArmKind::ALL {
        for preset in [Preset::Smoke, Preset::Quick, Preset::Paper] {
            presets::config(preset, kind, KMode::CosineIncrease).unwrap();
        }
    }
}

fn text() -> CharData {
    let sentence = "the quick brown fox jumps over the lazy dog; ";
    CharData::from_corpus(&CharCorpus::from_text(&sentence.repeat(60))).unwrap()
}

fn tiny(kind: ArmKind) -> LmConfig {
    let mut config = presets::config(Preset::Smoke, kind, KMode::LinearIncrease).unwrap();
    config.steps = 12;
    config.schedule.total_steps = 12;
    config.eval_chars = Some(64);
    config
}

#[test]
fn frozen_routers_stay_bit_identical_and_learned_ones_move() {
    let data = text();
    let frozen = train(
        &tiny(ArmKind::SmoeDropout),
        &data,
        0,
        ProgressMode::Quiet,
        "t",
    )
    .unwrap();
    assert_eq!(frozen.outcome.routers_unchanged, Some(true));
    // linear 2 → 4 over 12 steps: 2, 2, 2, 2 (0.5 → 0), 3, …
    assert!(frozen.outcome.mean_k > 2.0 && frozen.outcome.mean_k < 4.0);
    assert_eq!(
        frozen.outcome.test_bpc.keys().copied().collect::<Vec<_>>(),
        [1, 2, 4]
    );
    let learned = train(
        &tiny(ArmKind::LearnedSmoe),
        &data,
        0,
        ProgressMode::Quiet,
        "t",
    )
    .unwrap();
    assert_eq!(learned.outcome.routers_unchanged, Some(false));
    assert_eq!(learned.outcome.mean_k, 2.0);
    let dense = train(&tiny(ArmKind::Dense), &data, 0, ProgressMode::Quiet, "t").unwrap();
    assert_eq!(dense.outcome.routers_unchanged, None);
    assert_eq!(dense.outcome.test_bpc.len(), 1);
    // equal parameters up to each expert's own output bias ((N − 1) · d per layer)
    // and, when trained, the routers (N · (d + 1) per layer)
    let (biases, router) = ((4 - 1) * 32, 4 * (32 + 1));
    assert_eq!(frozen.outcome.params, dense.outcome.params + biases);
    assert_eq!(learned.outcome.params, frozen.outcome.params + router);
}

#[test]
fn the_same_seed_gives_the_same_run_and_thor_trains() {
    let data = text();
    let run = |kind, seed| {
        let mut outcome = train(&tiny(kind), &data, seed, ProgressMode::Quiet, "t")
            .unwrap()
            .outcome;
        outcome.train_seconds_per_step = 0.0;
        outcome
    };
    assert_eq!(run(ArmKind::SmoeDropout, 1), run(ArmKind::SmoeDropout, 1));
    assert_ne!(run(ArmKind::SmoeDropout, 1), run(ArmKind::SmoeDropout, 2));
    let thor = run(ArmKind::Thor, 1);
    assert!(thor.final_train_loss.is_finite());
    assert_eq!(run(ArmKind::Thor, 1), thor);
    let expert_dropout = run(ArmKind::ExpertDropout, 1);
    assert!(expert_dropout.final_train_loss.is_finite());
}

#[test]
fn symmetric_kl_is_zero_for_equal_logits_and_symmetric() {
    let a = Tensor::new(&[[1f32, 2.0, 0.5], [0.0, 0.0, 3.0]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[[0f32, 1.0, 2.5], [1.0, 0.0, 0.0]], &Device::Cpu).unwrap();
    let same = symmetric_kl(&a, &a).unwrap().to_scalar::<f32>().unwrap();
    assert!(same.abs() < 1e-7);
    let ab = symmetric_kl(&a, &b).unwrap().to_scalar::<f32>().unwrap();
    let ba = symmetric_kl(&b, &a).unwrap().to_scalar::<f32>().unwrap();
    assert!(ab > 0.1 && (ab - ba).abs() < 1e-6);
    // by hand for the first row: Σ (p − q)(log p − log q)
    let softmax = |v: &[f32]| {
        let z: f32 = v.iter().map(|x| x.exp()).sum();
        v.iter().map(|x| x.exp() / z).collect::<Vec<f32>>()
    };
    let row = |p: &[f32], q: &[f32]| -> f32 {
        let (p, q) = (softmax(p), softmax(q));
        p.iter()
            .zip(&q)
            .map(|(p, q)| (p - q) * (p.ln() - q.ln()))
            .sum()
    };
    let expected =
        (row(&[1.0, 2.0, 0.5], &[0.0, 1.0, 2.5]) + row(&[0.0, 0.0, 3.0], &[1.0, 0.0, 0.0])) / 2.0;
    assert!((ab - expected).abs() < 1e-5, "{ab} vs {expected}");
}
