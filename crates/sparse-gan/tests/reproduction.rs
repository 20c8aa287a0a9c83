//! The GAN loop's invariants on tiny runs, the image path, the checked configuration
//! and the smoke preset end to end.

use candle_core::{DType, Device, Tensor};
use sparse_core::{AllocationConfig, Mask};
use sparse_gan::config::{Explore, GanArch, GanConfig, MaskScope};
use sparse_gan::data::GanData;
use sparse_gan::evaluation::{SAMPLE_DISTANCE, score};
use sparse_gan::models::{Critic, Generator};
use sparse_gan::schedule::DeathSchedule;
use sparse_gan::training::{latent_codes, mask_policy, train};
use sparse_repro::rng::derive_rng;

fn tiny(explore: Explore, density_g: Option<f64>) -> GanConfig {
    GanConfig {
        arch: GanArch::Mlp {
            width: 16,
            depth: 2,
            latent: 2,
        },
        mask_scope: MaskScope::AllWeights,
        density_g,
        density_d: density_g.map(|_| 0.5),
        explore,
        g_steps: 40,
        n_critic: 2,
        dis_batch: 32,
        gen_batch: 64,
        lr: 2e-4,
        update_frequency: 10,
        death_rate: 0.5,
        schedule: DeathSchedule::PerDStep2021,
        sema: Some(0.9),
        spectral_norm: true,
        exact_d_growth: true,
        eval_samples: 500,
    }
}

fn ring() -> GanData {
    GanData::load("ring", None).unwrap()
}

#[test]
fn exploration_keeps_the_budgets_and_only_the_exploring_network_moves() {
    let ring = ring();
    let gd = train(&tiny(Explore::GD, Some(0.2)), &ring, 0)
        .unwrap()
        .stats;
    assert_eq!(gd.nnz_g.0, gd.nnz_g.1, "G's non-zeros are constant");
    assert_eq!(
        gd.nnz_d.0, gd.nnz_d.1,
        "D's non-zeros are constant with exact growth"
    );
    assert_eq!(gd.updates.len(), 4);
    assert!(
        gd.itop_g > gd.density_g() && gd.itop_d > 0.5,
        "{} {}",
        gd.itop_g,
        gd.itop_d
    );
    // D is static when only G explores: its ITOP rate stays that of the static run
    // (the same seed draws the same masks), below the exploring D's
    let g = train(&tiny(Explore::G, Some(0.2)), &ring, 0).unwrap().stats;
    let st = train(&tiny(Explore::Static, Some(0.2)), &ring, 0)
        .unwrap()
        .stats;
    assert!(st.updates.is_empty());
    assert_eq!(g.itop_d, st.itop_d);
    assert!(gd.itop_d > g.itop_d);
    assert!(g.itop_g > st.itop_g, "exploring visits more weights");
    assert_eq!(
        st.itop_g,
        st.density_g(),
        "a static mask visits its own weights"
    );
    // the same seed gives the same run
    assert_eq!(
        train(&tiny(Explore::GD, Some(0.2)), &ring, 0)
            .unwrap()
            .stats,
        gd
    );
    let dense = train(&tiny(Explore::Static, None), &ring, 1).unwrap().stats;
    assert_eq!((dense.nnz_g, dense.masked_g), ((0, 0), 0));
    assert_eq!(dense.density_g(), 1.0);
}

#[test]
fn updates_read_the_death_rate_at_the_discriminator_step_count() {
    for schedule in [
        DeathSchedule::PerDStep2021,
        DeathSchedule::PerDStep2022,
        DeathSchedule::CosineOverG,
    ] {
        let config = GanConfig {
            schedule,
            n_critic: 3,
            ..tiny(Explore::G, Some(0.1))
        };
        let stats = train(&config, &ring(), 2).unwrap().stats;
        let steps: Vec<usize> = stats.updates.iter().map(|u| u.0).collect();
        assert_eq!(steps, [10, 20, 30, 40]);
        for &(g_step, rate) in &stats.updates {
            // G step k follows discriminator step n_critic·(k−1)+1
            let d_steps = 3 * (g_step - 1) + 1;
            let expected = schedule.rate(0.5, g_step, d_steps, 40, 3);
            assert_eq!(
                rate.to_bits(),
                expected.to_bits(),
                "{schedule:?} at {g_step}"
            );
        }
    }
}

#[test]
fn the_generator_gradient_is_dense_at_pruned_positions() {
    // gradient growth needs ∂L/∂W where the mask is 0: the models compute with their
    // raw weights (held at 0 there by the engine), never with W ⊙ M
    for arch in [
        tiny(Explore::G, None).arch,
        GanArch::Dcgan {
            width: 4,
            latent: 8,
            bottom: 2,
            image_channels: 1,
        },
    ] {
        let mut rng = derive_rng(3, "test");
        let (varmap, g) = Generator::build(&arch, &mut rng).unwrap();
        let d = Critic::build(&arch, true, &mut rng).unwrap();
        let params = AllocationConfig::builder()
            .density(0.1)
            .build()
            .unwrap()
            .init_sparse_params(
                &varmap,
                &mask_policy(MaskScope::AllWeights).unwrap(),
                None,
                &mut rng,
            )
            .unwrap();
        let z = latent_codes(16, arch.latent(), &mut rng).unwrap();
        let loss = d
            .forward(&g.forward(&z, true).unwrap(), true)
            .unwrap()
            .mean_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let data = varmap.data().lock().unwrap();
        let mut inactive_with_gradient = 0;
        for p in params.iter() {
            let mask: &Mask = &p.mask;
            let grad = grads.get(data[&p.name].as_tensor()).unwrap();
            let grad: Vec<f32> = grad.flatten_all().unwrap().to_vec1().unwrap();
            inactive_with_gradient += mask
                .inactive_indices()
                .iter()
                .filter(|&&i| grad[i] != 0.0)
                .count();
        }
        assert!(inactive_with_gradient > 0, "{arch:?}");
    }
}

#[test]
fn a_small_dcgan_trains_on_the_digits_and_scores_deterministically() {
    let digits = GanData::load("digits", None).unwrap();
    let GanData::Images(task) = &digits else {
        panic!("digits are images")
    };
    assert!(
        task.features.test_accuracy > 0.85,
        "the feature network learns the digits: {}",
        task.features.test_accuracy
    );
    let config = GanConfig {
        arch: GanArch::Dcgan {
            width: 4,
            latent: 8,
            bottom: 2,
            image_channels: 1,
        },
        g_steps: 12,
        n_critic: 1,
        update_frequency: 4,
        dis_batch: 16,
        gen_batch: 16,
        eval_samples: 400,
        ..tiny(Explore::GD, Some(0.2))
    };
    let trained = train(&config, &digits, 0).unwrap();
    assert_eq!(trained.stats.nnz_g.0, trained.stats.nnz_g.1);
    assert_eq!(trained.stats.nnz_d.0, trained.stats.nnz_d.1);
    assert_eq!(trained.stats.updates.len(), 3);
    let scores = score(&digits, &trained.generator, 8, 400, 0).unwrap();
    assert!(scores[SAMPLE_DISTANCE].is_finite() && scores[SAMPLE_DISTANCE] > 0.0);
    assert!(scores["classes_covered"] <= 10.0);
    assert!(scores["kid"].is_finite());
    let again = train(&config, &digits, 0).unwrap();
    assert_eq!(again.stats, trained.stats);
    assert_eq!(score(&digits, &again.generator, 8, 400, 0).unwrap(), scores);
    // images in [-1, 1] of the data's shape
    let x = sparse_gan::evaluation::samples(&trained.generator, 8, 5, 1).unwrap();
    assert_eq!(x.dims(), [5, 1, 8, 8]);
    let max = x
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(max <= 1.0);
    // a point GAN on images is refused, naming the field
    let err = train(&tiny(Explore::Static, None), &digits, 0).unwrap_err();
    assert!(err.to_string().contains("arch"), "{err}");
}

#[test]
fn the_paper_sngan_has_the_official_shapes() {
    let arch = GanArch::SnGan {
        gf: 256,
        df: 128,
        latent: 128,
        bottom: 4,
        image_channels: 3,
    };
    let mut rng = derive_rng(0, "test");
    let (g_vm, _) = Generator::build(&arch, &mut rng).unwrap();
    let d = Critic::build(&arch, true, &mut rng).unwrap();
    let count = |vm: &candle_nn::VarMap, ndim: usize| -> usize {
        sparse_core::optim::trainable_vars(vm)
            .iter()
            .filter(|(_, v)| v.rank() == ndim)
            .map(|(_, v)| v.elem_count())
            .sum()
    };
    // masked under conv-only: block2..4 (c1, c2, c_sc) and c5
    assert_eq!(
        count(&g_vm, 4),
        3 * (2 * 256 * 256 * 9 + 256 * 256) + 3 * 256 * 9
    );
    assert_eq!(count(&g_vm, 2), 128 * 4 * 4 * 256);
    // D: block1 (3→128: c1, c2, c_sc), block2 (c1, c2, c_sc), block3/4 (c1, c2); l5
    let d_convs = (3 * 128 * 9 + 128 * 128 * 9 + 3 * 128)
        + (2 * 128 * 128 * 9 + 128 * 128)
        + 2 * (2 * 128 * 128 * 9);
    assert_eq!(count(d.varmap(), 4), d_convs);
    assert_eq!(count(d.varmap(), 2), 128);
    // a small one runs forward: images of side 8·bottom, one score each
    let small = GanArch::SnGan {
        gf: 8,
        df: 8,
        latent: 4,
        bottom: 2,
        image_channels: 3,
    };
    let (_, g) = Generator::build(&small, &mut rng).unwrap();
    let d = Critic::build(&small, true, &mut rng).unwrap();
    let x = g
        .forward(&latent_codes(3, 4, &mut rng).unwrap(), true)
        .unwrap();
    assert_eq!(x.dims(), [3, 3, 16, 16]);
    assert_eq!(d.forward(&x, true).unwrap().dims(), [3]);
    let zeros = Tensor::zeros((2, 3, 16, 16), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(d.forward(&zeros, false).unwrap().dims(), [2]);
}

#[test]
fn bad_settings_are_refused_naming_the_field() {
    let cases: Vec<(GanConfig, &str)> = vec![
        (tiny(Explore::Static, Some(0.0)), "density_g"),
        (tiny(Explore::Static, Some(1.5)), "density_g"),
        (
            GanConfig {
                n_critic: 0,
                ..tiny(Explore::Static, None)
            },
            "n_critic",
        ),
        (
            GanConfig {
                update_frequency: 41,
                ..tiny(Explore::G, Some(0.1))
            },
            "update_frequency",
        ),
        (
            GanConfig {
                sema: Some(1.0),
                ..tiny(Explore::Static, None)
            },
            "sema",
        ),
        (
            GanConfig {
                mask_scope: MaskScope::ConvOnly,
                ..tiny(Explore::Static, Some(0.1))
            },
            "mask_scope",
        ),
        (tiny(Explore::G, None), "explore"),
        (
            GanConfig {
                lr: -1.0,
                ..tiny(Explore::Static, None)
            },
            "lr",
        ),
    ];
    for (config, field) in cases {
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
    let err = GanData::load("moons", None).unwrap_err().to_string();
    assert!(err.contains("moons"), "{err}");
    let err = sparse_gan::presets::base_config(sparse_repro::cli::Preset::Paper, "mnist")
        .unwrap_err()
        .to_string();
    assert!(err.contains("divisible by 8"), "{err}");
}

#[test]
fn smoke_reproduces_resumes_and_eval_matches() {
    use sparse_repro::cli::Preset;
    use sparse_repro::harness::{self, DataPolicy};
    let root = tempfile::tempdir().unwrap();
    let check = harness::check_resume::<sparse_gan::StuGan>(
        Preset::Smoke,
        &sparse_gan::paper::GanArgs::default(),
        None,
        None,
        root.path(),
        3,
    )
    .unwrap();
    assert_eq!(check.taken_from_records, 3);
    let run = root.path().join("uninterrupted");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    for claim in [
        "dst-g-beats-static-at-0.05-ring",
        "advantage-grows-with-sparsity-ring",
        "dst-g-0.1-near-dense-ring",
        "itop-exceeds-density-ring",
        "itop-exceeds-density-digits",
    ] {
        assert!(report.contains(claim), "{claim}");
    }
    assert!(run.join("ring-dst-g-0.05-seed0-samples.svg").is_file());
    assert!(run.join("digits-dst-gd-0.2-seed0-samples.png").is_file());
    assert!(run.join("ring-distance-by-density.svg").is_file());
    for checkpoint in [
        "checkpoints/ring-dst-gd-0.1-seed1.safetensors",
        "checkpoints/digits-dst-g-0.2-seed0.safetensors",
    ] {
        let evaluated = harness::evaluate::<sparse_gan::StuGan>(
            &run.join(checkpoint),
            None,
            DataPolicy::NoFetch,
        )
        .unwrap();
        assert_eq!(
            evaluated.measured.to_bits(),
            evaluated.recorded.to_bits(),
            "{checkpoint}"
        );
    }
}
