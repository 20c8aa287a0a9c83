//! End-to-end behaviour: the pools' invariants on real tickets, the smoke preset
//! through the harness (report, resume, `eval` bit for bit), ticket directories and
//! the `pool` subcommand.

use std::path::{Path, PathBuf};

use lottery_pools::config::LotteryConfig;
use lottery_pools::data::Splits;
use lottery_pools::paper::{SeedOutcome, preset_arm};
use lottery_pools::pooling::{Evaluator, TicketSet, pool_levels};
use lottery_pools::tickets::read_ticket_dir;
use lottery_pools::training::run_imp;
use lottery_pools::{Error, LotteryPools};
use sparse_core::ModelState;
use sparse_data::images::ImageData;
use sparse_repro::cli::Preset;
use sparse_repro::harness::{self, DataPolicy, NoArgs};
use sparse_repro::models::Architecture;
use sparse_repro::progress::ProgressMode;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn smoke() -> Result<(LotteryConfig, Splits), Error> {
    let arm = preset_arm(Preset::Smoke, None)?;
    let splits = Splits::new(ImageData::digits()?, arm.config.data())?;
    Ok((arm.config, splits))
}

fn nonzero(state: &ModelState, name: &str) -> Result<usize, Box<dyn std::error::Error>> {
    let values = state
        .get(name)
        .ok_or("missing tensor")?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok(values.iter().filter(|v| **v != 0.0).count())
}

#[test]
fn pooled_tickets_keep_the_ticket_sparsity_and_never_prune_classifier_or_batchnorm() -> TestResult {
    let (config, splits) = smoke()?;
    let (net, tickets, records) = run_imp(&config, &splits.images, 5, ProgressMode::Quiet, "test")?;
    assert_eq!(tickets.len(), 3);
    assert_eq!(records.len(), 3);
    let prunable = net.masked_names();
    assert!(!prunable.is_empty());
    assert!(
        prunable.iter().all(|n| n.contains(".conv.")),
        "{prunable:?}"
    );
    let set = TicketSet::from_imp(&tickets);
    let evaluator = Evaluator {
        net: &net,
        splits: &splits,
    };
    let (levels, pooled) = pool_levels(
        &config,
        evaluator,
        &set,
        &[0, 1, 2],
        (ProgressMode::Quiet, "test"),
    )?;
    assert_eq!(levels.len(), 3);
    for (ticket, model) in tickets.iter().zip(&pooled) {
        let ticket_nnz: usize = ticket.masks.values().map(|m| m.nnz()).sum();
        let pooled_nnz: usize = prunable
            .iter()
            .map(|n| nonzero(model, n))
            .sum::<Result<_, _>>()?;
        // Ties at the cut could only lower the count of non-zeros (a kept exact zero).
        assert!(pooled_nnz <= ticket_nnz && pooled_nnz + 2 >= ticket_nnz);
        if ticket.round > 0 {
            assert!(
                ticket_nnz
                    < prunable
                        .iter()
                        .map(|n| nonzero(&tickets[0].state, n))
                        .sum::<Result<usize, _>>()?
            );
        }
        // Classifier and BatchNorm are interpolated, never pruned.
        for name in model.names().filter(|n| !prunable.iter().any(|p| p == n)) {
            if name.ends_with("weight") || name.ends_with("running_var") {
                let total = model.get(name).ok_or("missing")?.elem_count();
                assert_eq!(nonzero(model, name)?, total, "{name} was pruned");
            }
        }
    }
    // IMP prunes 50 % of the remaining convolution weights per round (smoke rate).
    assert!((set.remaining[1] - 0.5).abs() < 1e-3 && (set.remaining[2] - 0.25).abs() < 1e-3);
    Ok(())
}

#[test]
fn the_pool_of_zero_alone_returns_the_recalibrated_ticket() -> TestResult {
    let (config, _) = smoke()?;
    let zero = config
        .rebuild()
        .corrupted_images(0)
        .coefficients(vec![0.0])
        .path_alphas(vec![0.0, 1.0])
        .build()?;
    let splits = Splits::new(ImageData::digits()?, zero.data())?;
    assert!(splits.corrupted.is_none());
    let (net, tickets, rounds) = run_imp(&zero, &splits.images, 2, ProgressMode::Quiet, "test")?;
    let set = TicketSet::from_imp(&tickets);
    let evaluator = Evaluator {
        net: &net,
        splits: &splits,
    };
    let (levels, pooled) = pool_levels(
        &zero,
        evaluator,
        &set,
        &[1, 2],
        (ProgressMode::Quiet, "test"),
    )?;
    for ((level, model), target) in levels.iter().zip(&pooled).zip([1usize, 2]) {
        let mut expected = set.states[target].clone();
        evaluator.recalibrated_validation(&mut expected)?;
        for name in expected.names() {
            let a = expected
                .get(name)
                .ok_or("missing")?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let b = model
                .get(name)
                .ok_or("missing")?
                .flatten_all()?
                .to_vec1::<f32>()?;
            // Equal values (a masked weight may be -0.0 in the ticket, +0.0 re-pruned).
            assert!(
                a.iter().zip(&b).all(|(x, y)| x == y),
                "{name} differs at target {target}"
            );
        }
        assert_eq!(level.interpolation.accepted, level.interpolation.candidates);
    }
    // Without a corrupted test set the "-C" metrics are absent, not NaN.
    let outcome = SeedOutcome {
        rounds,
        levels,
        checkpoint_round: 2,
    };
    let metrics = <LotteryPools as sparse_repro::harness::Paper>::metrics(&outcome);
    assert!(
        !metrics.contains_key("pool_gain_corrupted") && !metrics.contains_key("corrupted_accuracy")
    );
    assert!(metrics.values().all(|v| !v.is_nan()), "{metrics:?}");
    Ok(())
}

#[test]
fn configurations_are_checked_when_built() {
    let vgg = || LotteryConfig::builder(Architecture::Vgg { width: 4 });
    let named = |r: Result<LotteryConfig, Error>, parameter: &str| {
        let message = r.expect_err("must be refused").to_string();
        assert!(message.contains(parameter), "{message}");
    };
    named(
        LotteryConfig::builder(Architecture::Mlp { width: 8, depth: 1 }).build(),
        "architecture",
    );
    named(vgg().rounds(1, 0.2).build(), "rounds");
    named(vgg().rounds(4, 1.5).build(), "imp.rate");
    named(vgg().epochs(3, 3).build(), "imp.rewind_epoch");
    named(vgg().coefficients(vec![0.5, 1.2]).build(), "coefficients");
    named(vgg().search_num(0).build(), "search_num");
    named(
        vgg().validation_fraction(1.0).build(),
        "validation_fraction",
    );
    named(vgg().path_alphas(vec![0.5]).build(), "path_alphas");
    named(vgg().momentum(1.0, 0.0).build(), "momentum");
}

/// A smoke reproduction (2 seeds) in `root`, run once per test binary and shared.
fn smoke_run(root: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let check =
        harness::check_resume::<LotteryPools>(Preset::Smoke, &NoArgs {}, None, None, root, 1)?;
    assert_eq!(check.taken_from_records, 1);
    Ok(root.join("uninterrupted"))
}

#[test]
fn smoke_reproduces_resumes_and_eval_matches_the_report() -> TestResult {
    let root = tempfile::tempdir()?;
    let run = smoke_run(root.path())?;
    let report = std::fs::read_to_string(run.join("report.md"))?;
    for claim in [
        "pools-beat-tickets",
        "dense-pool-beats-dense",
        "linear-mode-connectivity",
        "greedy-beats-averaging",
    ] {
        assert!(report.contains(claim), "{claim} missing from the report");
    }
    assert!(run.join("digits-imp-vgg-4-accuracy.svg").is_file());
    assert!(run.join("digits-imp-vgg-4-levels.md").is_file());
    let checkpoint = run.join("checkpoints/digits-imp-vgg-4-seed1.safetensors");
    let evaluated = harness::evaluate::<LotteryPools>(&checkpoint, None, DataPolicy::NoFetch)?;
    assert_eq!(evaluated.measured.to_bits(), evaluated.recorded.to_bits());
    let record = std::fs::read_to_string(run.join("records/digits-imp-vgg-4-seed1.json"))?;
    let outcome: serde_json::Value = serde_json::from_str(&record)?;
    let outcome: SeedOutcome = serde_json::from_value(outcome["outcome"].clone())?;
    assert_eq!(outcome.levels.len(), 3);
    // Each level's ticket is its round's best-validation epoch, measured again.
    for (level, round) in outcome.levels.iter().zip(&outcome.rounds) {
        assert_eq!(level.ticket.test.to_bits(), round.test.to_bits());
        assert_eq!(
            level.ticket.validation.to_bits(),
            round.validation.to_bits()
        );
    }
    assert_eq!(outcome.levels[0].path.len(), 3);
    assert!(outcome.levels[2].path.is_empty());

    // The ticket directory pools again through the CLI, to the same numbers.
    let tickets = run.join("artifacts/digits-imp-vgg-4-seed1/tickets");
    let dir = read_ticket_dir(&tickets)?;
    assert_eq!((dir.seed, dir.files.len()), (1, 3));
    let out = root.path().join("pooled");
    harness::run_cli::<LotteryPools, _, _>([
        "lottery-pools",
        "pool",
        "--tickets",
        &tickets.display().to_string(),
        "--target",
        "2",
        "--out",
        &out.display().to_string(),
    ])?;
    let pooled = harness::read_stored::<LotteryPools>(&out.join("pooled-round-02.safetensors"))?;
    let recorded = outcome.levels[2].interpolation.accuracies.test;
    assert_eq!(
        pooled.meta.metrics["test_accuracy"].to_bits(),
        recorded.to_bits()
    );

    // Broken ticket directories are refused with the file named.
    let broken = root.path().join("broken");
    std::fs::create_dir_all(&broken)?;
    for round in [0, 2] {
        let name = format!("round-{round:02}.safetensors");
        std::fs::copy(tickets.join(&name), broken.join(&name))?;
    }
    let message = read_ticket_dir(&broken)
        .expect_err("round 1 is missing")
        .to_string();
    assert!(message.contains("round 1 is missing"), "{message}");
    let other = run.join("artifacts/digits-imp-vgg-4-seed0/tickets/round-01.safetensors");
    std::fs::copy(&other, broken.join("round-01.safetensors"))?;
    let message = read_ticket_dir(&broken)
        .expect_err("mixed seeds")
        .to_string();
    assert!(
        message.contains("another run") && message.contains("round-"),
        "{message}"
    );
    std::fs::copy(
        tickets.join("round-01.safetensors"),
        broken.join("round-01.safetensors"),
    )?;
    std::fs::copy(&checkpoint, broken.join("model.safetensors"))?;
    let message = read_ticket_dir(&broken)
        .expect_err("not a ticket")
        .to_string();
    assert!(
        message.contains("not an IMP ticket") && message.contains("model.safetensors"),
        "{message}"
    );
    let empty = root.path().join("empty");
    std::fs::create_dir_all(&empty)?;
    let message = read_ticket_dir(&empty).expect_err("empty").to_string();
    assert!(message.contains("holds no ticket"), "{message}");
    Ok(())
}
