//! The mixture GAN's invariants on tiny runs.

use sparse_data::data::mixture::GaussianMixture2d;
use sparse_gan::schedule::DeathSchedule;
use sparse_gan::training::{Explore, MixtureRun, train_on_mixture};

fn tiny(explore: Explore, density_g: Option<f64>) -> MixtureRun {
    MixtureRun {
        width: 16,
        depth: 2,
        latent: 2,
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

#[test]
fn exploration_keeps_the_budgets_and_only_the_exploring_network_moves() {
    let ring = GaussianMixture2d::ring();
    let gd = train_on_mixture(&tiny(Explore::GD, Some(0.2)), &ring, 0).unwrap();
    assert_eq!(gd.nnz_g.0, gd.nnz_g.1, "G's non-zeros are constant");
    assert_eq!(
        gd.nnz_d.0, gd.nnz_d.1,
        "D's non-zeros are constant with exact growth"
    );
    assert_eq!(gd.updates.len(), 4);
    assert!(
        gd.itop_g > 0.2 && gd.itop_d > 0.5,
        "{} {}",
        gd.itop_g,
        gd.itop_d
    );
    // D is static when only G explores: its ITOP rate stays that of the static run
    // (the same seed draws the same masks), below the exploring D's
    let g = train_on_mixture(&tiny(Explore::G, Some(0.2)), &ring, 0).unwrap();
    let st = train_on_mixture(&tiny(Explore::Static, Some(0.2)), &ring, 0).unwrap();
    assert!(st.updates.is_empty());
    assert_eq!(g.itop_d, st.itop_d);
    assert!(gd.itop_d > g.itop_d);
    assert!(g.itop_g > st.itop_g, "exploring visits more weights");
    for o in [&gd, &g, &st] {
        assert!(o.energy_distance.is_finite() && o.energy_distance >= -1e-9);
        assert!(o.modes_covered <= 8);
    }
    // the same seed gives the same run
    assert_eq!(
        train_on_mixture(&tiny(Explore::GD, Some(0.2)), &ring, 0).unwrap(),
        gd
    );
    let dense = train_on_mixture(&tiny(Explore::Static, None), &ring, 1).unwrap();
    assert_eq!(dense.nnz_g, (0, 0));
}

/// The cost of the quick preset's arm-seed, by extrapolation (run with `--ignored`).
#[test]
#[ignore]
fn time_a_tenth_of_a_quick_run() {
    let ring = GaussianMixture2d::ring();
    let mut run = tiny(Explore::GD, Some(0.05));
    run.width = 128;
    run.depth = 3;
    run.n_critic = 5;
    run.dis_batch = 64;
    run.gen_batch = 128;
    run.g_steps = 200;
    run.update_frequency = 100;
    run.eval_samples = 2500;
    let start = std::time::Instant::now();
    let outcome = train_on_mixture(&run, &ring, 0).unwrap();
    println!(
        "200 G steps: {:.2} s; energy distance {:.4}, modes {}",
        start.elapsed().as_secs_f64(),
        outcome.energy_distance,
        outcome.modes_covered
    );
}

#[test]
fn smoke_reproduces_resumes_and_eval_matches() {
    use sparse_repro::cli::Preset;
    use sparse_repro::harness::{self, DataPolicy, NoArgs};
    let root = tempfile::tempdir().unwrap();
    let check = harness::check_resume::<sparse_gan::StuGan>(
        Preset::Smoke,
        &NoArgs {},
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
        "dst-g-beats-static-at-0.05",
        "advantage-grows-with-sparsity",
        "dst-g-0.1-near-dense",
        "itop-exceeds-density",
    ] {
        assert!(report.contains(claim), "{claim}");
    }
    assert!(run.join("ring-dst-g-0.05-seed0-samples.svg").is_file());
    let checkpoint = run.join("checkpoints/ring-dst-gd-0.1-seed1.safetensors");
    let evaluated =
        harness::evaluate::<sparse_gan::StuGan>(&checkpoint, None, DataPolicy::NoFetch).unwrap();
    assert_eq!(evaluated.measured.to_bits(), evaluated.recorded.to_bits());
}
