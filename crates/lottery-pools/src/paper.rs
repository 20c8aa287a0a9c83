//! What the harness needs to reproduce the paper: presets, one arm-seed's run
//! (IMP, then every pool and baseline at every level), claims, published numbers,
//! the accuracy-vs-remaining-weights plot, and the `pool` subcommand.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use sparse_data::images::{ImageData, ImageSetName};
use sparse_repro::claim::Claim;
use sparse_repro::cli::{Preset, PresetTrainArgs};
use sparse_repro::harness::{
    self, ArmRuns, ArmSpec, Metrics, ModelParts, NoArgs, Paper, Plan, RunContext, Runs,
    TrainRequest, Trained,
};
use sparse_repro::metrics::MeanStd;
use sparse_repro::models::Architecture;
use sparse_repro::plot::{LinePlot, Series};
use sparse_repro::progress::ProgressMode;
use sparse_repro::report::{Anchor, ArmReport};
use sparse_repro::run_dir::write_atomic;
use sparse_repro::{HarnessError, HarnessResult};

use crate::config::LotteryConfig;
use crate::data::Splits;
use crate::error::{Error, Result};
use crate::pooling::{Evaluator, Level, TicketSet, pool_levels};
use crate::tickets::{load_tickets, read_ticket_dir, save_tickets};
use crate::training::{RoundRecord, network, run_imp};

/// The paper, for sparse-repro's harness.
#[derive(Debug, Clone, Copy)]
pub struct LotteryPools;

/// One seed's record: the IMP rounds and every level's pools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedOutcome {
    /// What each IMP round measured while training.
    pub rounds: Vec<RoundRecord>,
    /// Every level's ticket, pools, baselines and path.
    pub levels: Vec<Level>,
    /// The round whose interpolation-pool model is the run's checkpoint (the sparsest).
    pub checkpoint_round: usize,
}

/// A linear-path drop larger than this (accuracy, 1 point) breaks linear mode connectivity.
pub const PATH_MARGIN: f64 = 0.01;

impl SeedOutcome {
    /// Mean over the sparse levels (round ≥ 1) of `f(level)`.
    fn mean_sparse(&self, f: impl Fn(&Level) -> f64) -> f64 {
        let values: Vec<f64> = self.levels.iter().filter(|l| l.round > 0).map(f).collect();
        values.iter().sum::<f64>() / values.len().max(1) as f64
    }

    fn level(&self, round: usize) -> Option<&Level> {
        self.levels.iter().find(|l| l.round == round)
    }
}

/// How far the lowest point of `level`'s path to the next ticket lies below the
/// lower of its two ends (test accuracy; negative when the path stays above).
pub fn path_drop(level: &Level) -> Option<f64> {
    let first = level.path.first()?;
    let last = level.path.last()?;
    let lowest = level
        .path
        .iter()
        .map(|p| p.test)
        .fold(f64::INFINITY, f64::min);
    Some(first.test.min(last.test) - lowest)
}

fn corrupted_or_nan(a: &crate::pooling::Accuracies) -> f64 {
    a.corrupted.unwrap_or(f64::NAN)
}

/// The flags of `train`: a preset's arm with a few overrides.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// The preset, seed and locations.
    #[command(flatten)]
    pub run: PresetTrainArgs,
    /// The preset's arm on this data set (default: its first arm).
    #[arg(long)]
    pub dataset: Option<String>,
    /// IMP rounds (tickets, dense included).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Epochs of a round.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// The rewind epoch.
    #[arg(long)]
    pub rewind_epoch: Option<usize>,
    /// The model's width (first-stage channels).
    #[arg(long)]
    pub width: Option<usize>,
}

/// The crate's own subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Commands {
    /// Run Lottery Pools on a directory of saved IMP tickets (round-NN.safetensors,
    /// as `reproduce` and `train` write under artifacts/) and write the pooled
    /// models.
    Pool {
        /// The ticket directory.
        #[arg(long)]
        tickets: PathBuf,
        /// Only this round (default: every round).
        #[arg(long)]
        target: Option<usize>,
        /// Where to write pooled-round-NN.safetensors (default: `pooled/` in the ticket directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where the data sets are.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// The arms of `preset`: one IMP run (and its pools) per model and data set.
pub fn preset_arms(preset: Preset) -> Result<Vec<ArmSpec<LotteryConfig>>> {
    let arms = match preset {
        Preset::Smoke => vec![(
            ImageSetName::Digits,
            LotteryConfig::builder(Architecture::Vgg { width: 4 })
                .recalibration_images(Some(256))
                .corrupted_images(90)
                .rounds(3, 0.5)
                .epochs(3, 1)
                .lr(0.05, vec![2])
                .batch_size(64)
                .search_num(3)
                .coefficients(vec![0.3, 0.7])
                .path_alphas(vec![0.0, 0.5, 1.0])
                .build()?,
        )],
        Preset::Quick => vec![(
            ImageSetName::FashionMnist,
            LotteryConfig::builder(Architecture::Vgg { width: 16 })
                .train_pool(Some(10_000))
                .test_images(Some(2_000))
                .recalibration_images(Some(1_000))
                .corrupted_images(2_000)
                .rounds(8, 0.2)
                .epochs(6, 1)
                .lr(0.1, vec![3, 5])
                .search_num(5)
                .coefficients(vec![0.1, 0.3, 0.5, 0.7, 0.9])
                .path_alphas(vec![0.0, 0.25, 0.5, 0.75, 1.0])
                .build()?,
        )],
        // The official recipe (the builder's defaults) on the paper's two headline
        // pairs; the corrupted set is the whole test set.
        Preset::Paper => vec![
            (
                ImageSetName::Cifar100,
                LotteryConfig::builder(Architecture::ResNet18 { width: 64 })
                    .corrupted_images(10_000)
                    .build()?,
            ),
            (
                ImageSetName::Cifar10,
                LotteryConfig::builder(Architecture::Vgg16 { width: 64 })
                    .corrupted_images(10_000)
                    .build()?,
            ),
        ],
    };
    Ok(arms
        .into_iter()
        .map(|(dataset, config)| {
            let name = format!("imp-{}", config.architecture().label());
            ArmSpec::new(name, dataset.as_str(), config)
        })
        .collect())
}

/// The arm of `preset` on `dataset` (its first arm when `None`).
pub fn preset_arm(preset: Preset, dataset: Option<&str>) -> Result<ArmSpec<LotteryConfig>> {
    let arms = preset_arms(preset)?;
    let names: Vec<String> = arms.iter().map(|a| a.dataset.clone()).collect();
    arms.into_iter()
        .find(|a| dataset.is_none_or(|d| a.dataset.eq_ignore_ascii_case(d)))
        .ok_or_else(|| {
            HarnessError::invalid(
                "dataset",
                dataset.unwrap_or(""),
                format!(
                    "the {} preset runs on {}",
                    preset.as_str(),
                    names.join(", ")
                ),
            )
            .into()
        })
}

fn set_width(architecture: &mut Architecture, new: usize) {
    match architecture {
        Architecture::Mlp { width, .. }
        | Architecture::ResNet { width, .. }
        | Architecture::Vgg { width }
        | Architecture::ResNet18 { width }
        | Architecture::Vgg16 { width } => *width = new,
    }
}

impl Paper for LotteryPools {
    const NAME: &'static str = "lottery-pools";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "Lottery Pools (AAAI 2023): IMP with rewinding, then a better ticket of \
         the same sparsity by interpolating the tickets, with the SWA, EMA and linear-path \
         baselines, in and out of distribution.";

    type Arm = LotteryConfig;
    type Data = ImageData;
    type Outcome = SeedOutcome;
    type ReproduceArgs = NoArgs;
    type TrainArgs = TrainArgs;
    type Commands = Commands;
    type Error = Error;

    fn plan(preset: Preset, _: &NoArgs) -> Result<Plan<LotteryConfig>> {
        let default_seeds = if preset == Preset::Smoke { 2 } else { 3 };
        Ok(Plan::from_arms(
            preset,
            preset_arms(preset)?,
            default_seeds,
        )?)
    }

    fn data_needs(dataset: &str) -> Vec<String> {
        ImageSetName::catalogue_needs(dataset)
    }

    fn load(dataset: &str, data_dir: Option<&Path>) -> Result<ImageData> {
        Ok(ImageData::load(
            ImageSetName::from_name(dataset)?,
            data_dir,
        )?)
    }

    fn train(
        arm: &ArmSpec<LotteryConfig>,
        data: &ImageData,
        seed: u64,
        context: &RunContext,
    ) -> Result<Trained<SeedOutcome>> {
        let config = &arm.config;
        let splits = Splits::new(data.clone(), config.data())?;
        let (net, tickets, rounds) = run_imp(
            config,
            &splits.images,
            seed,
            context.progress,
            &context.label,
        )?;
        if let Some(dir) = &context.artifacts {
            save_tickets(&dir.join("tickets"), arm, seed, &net, &tickets, &rounds)?;
        }
        let set = TicketSet::from_imp(&tickets);
        let targets: Vec<usize> = (0..set.states.len()).collect();
        let evaluator = Evaluator {
            net: &net,
            splits: &splits,
        };
        let label = format!("{} pools", context.label);
        let (levels, pooled) = pool_levels(
            config,
            evaluator,
            &set,
            &targets,
            (context.progress, &label),
        )?;
        let checkpoint_round = targets.len() - 1;
        pooled[checkpoint_round].restore(&net.varmap)?;
        let masks = net.nonzero_masks()?;
        let outcome = SeedOutcome {
            rounds,
            levels,
            checkpoint_round,
        };
        Ok(Trained::new(outcome, net.varmap.clone(), checkpoint_round as u64).with_masks(masks))
    }

    fn metrics(o: &SeedOutcome) -> Metrics {
        let mut m = Metrics::new();
        if let Some(level) = o.level(o.checkpoint_round) {
            m.insert("test_accuracy".into(), level.interpolation.accuracies.test);
            if let Some(corrupted) = level.interpolation.accuracies.corrupted {
                m.insert("corrupted_accuracy".into(), corrupted);
            }
            m.insert("remaining".into(), level.remaining);
        }
        if let Some(dense) = o.level(0) {
            m.insert("dense_test".into(), dense.ticket.test);
            m.insert(
                "dense_pool_test".into(),
                dense.interpolation.accuracies.test,
            );
        }
        let gain = |f: fn(&Level) -> f64| o.mean_sparse(f);
        m.insert("ticket_test".into(), gain(|l| l.ticket.test));
        m.insert(
            "pool_gain".into(),
            gain(|l| l.interpolation.accuracies.test - l.ticket.test),
        );
        // Only runs with a corrupted test set have the "-C" numbers.
        if o.levels.iter().all(|l| l.ticket.corrupted.is_some()) {
            m.insert(
                "pool_gain_corrupted".into(),
                gain(|l| {
                    corrupted_or_nan(&l.interpolation.accuracies) - corrupted_or_nan(&l.ticket)
                }),
            );
        }
        m.insert(
            "recalibration_gain".into(),
            gain(|l| l.recalibrated_ticket.test - l.ticket.test),
        );
        m.insert(
            "average_gain".into(),
            gain(|l| l.average.accuracies.test - l.ticket.test),
        );
        m.insert(
            "swa_gain".into(),
            gain(|l| l.swa.accuracies.test - l.ticket.test),
        );
        m.insert(
            "ema_gain".into(),
            gain(|l| l.ema.accuracies.test - l.ticket.test),
        );
        let best = |f: fn(&Level) -> f64| o.levels.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        m.insert("best_ticket_test".into(), best(|l| l.ticket.test));
        m.insert(
            "best_pool_test".into(),
            best(|l| l.interpolation.accuracies.test),
        );
        let drops: Vec<f64> = o.levels.iter().filter_map(path_drop).collect();
        m.insert(
            "path_drop_max".into(),
            drops.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        m
    }

    fn evaluate(
        arm: &ArmSpec<LotteryConfig>,
        data: &ImageData,
        seed: u64,
        checkpoint: &Path,
    ) -> Result<Metrics> {
        arm.config.validate()?;
        let splits = Splits::new(data.clone(), arm.config.data())?;
        let net = network(&arm.config, &splits.images, seed)?;
        harness::load_model(checkpoint, &net.varmap)?;
        let test = net.evaluate(splits.images.test_batches())?.accuracy;
        Ok(Metrics::from([("test_accuracy".to_string(), test)]))
    }

    fn arm_report(runs: &ArmRuns<Self>, report: ArmReport) -> Result<ArmReport> {
        Ok(report.with_extra("levels", json!(level_table(runs)?)))
    }

    fn claims(plan: &Plan<LotteryConfig>, runs: &Runs<Self>) -> Result<Vec<Claim>> {
        let several = plan.arms.len() > 1;
        let mut claims = Vec::new();
        for arm in &plan.arms {
            if let Some(arm_runs) = runs.get(&arm.name, &arm.dataset) {
                let suffix = if several {
                    format!("-{}", arm.dataset)
                } else {
                    String::new()
                };
                claims.extend(arm_claims(arm_runs, &suffix));
            }
        }
        Ok(claims)
    }

    fn anchors(plan: &Plan<LotteryConfig>, _runs: &Runs<Self>) -> Vec<Anchor> {
        plan.arms
            .iter()
            .flat_map(|arm| arm_anchors(plan.preset, arm))
            .collect()
    }

    fn plots(plan: &Plan<LotteryConfig>, runs: &Runs<Self>, out: &Path) -> Result<()> {
        for arm in &plan.arms {
            let Some(runs) = runs.get(&arm.name, &arm.dataset) else {
                continue;
            };
            let rows = level_table(runs)?;
            let stem = arm.file_stem(0);
            let stem = stem.trim_end_matches("-seed0");
            let mut plot = LinePlot::new(
                format!(
                    "{} on {}: accuracy vs remaining weights",
                    arm.name, arm.dataset
                ),
                "remaining convolution weights (%)",
                "test accuracy (%)",
            )
            .log_x(true);
            for (column, label) in METHODS {
                let (points, errors): (Vec<(f64, f64)>, Vec<f64>) = rows
                    .iter()
                    .filter_map(|r| {
                        let v = r.values.get(column)?;
                        Some(((100.0 * r.remaining, 100.0 * v.mean), 100.0 * v.std))
                    })
                    .unzip();
                plot = plot.with_series(Series::new(*label, points).with_errors(errors));
            }
            if let Some(dense) = rows.first().and_then(|r| r.values.get("ticket_test")) {
                let y = 100.0 * dense.mean;
                let points = rows.iter().map(|r| (100.0 * r.remaining, y)).collect();
                plot = plot.with_series(Series::new("dense", points));
            }
            plot.write_svg(&out.join(format!("{stem}-accuracy.svg")))?;
            let table = levels_markdown(&rows);
            write_atomic(&out.join(format!("{stem}-levels.md")), table.as_bytes())?;
        }
        Ok(())
    }

    fn report_extra(plan: &Plan<LotteryConfig>) -> BTreeMap<String, serde_json::Value> {
        let _ = plan;
        BTreeMap::from([(
            "levels".to_string(),
            json!(
                "per-level accuracies (mean ± std over seeds) are in each arm's `levels` and \
                   in <arm>-levels.md"
            ),
        )])
    }

    fn train_request(args: &TrainArgs) -> Result<TrainRequest<LotteryConfig>> {
        let mut arm = preset_arm(args.run.preset, args.dataset.as_deref())?;
        let imp = *arm.config.imp();
        let mut builder = arm
            .config
            .rebuild()
            .rounds(args.rounds.unwrap_or(imp.rounds), imp.rate);
        builder = builder.epochs(
            args.epochs.unwrap_or(imp.epochs),
            args.rewind_epoch.unwrap_or(imp.rewind_epoch),
        );
        if let Some(width) = args.width {
            let mut architecture = arm.config.architecture().clone();
            set_width(&mut architecture, width);
            builder = builder.architecture(architecture);
        }
        arm.config = builder.build()?;
        arm.name = format!("imp-{}", arm.config.architecture().label());
        Ok(args.run.request(arm))
    }

    fn run_command(command: Commands) -> Result<()> {
        let Commands::Pool {
            tickets,
            target,
            out,
            data_dir,
        } = command;
        let dir = read_ticket_dir(&tickets)?;
        let config = &dir.arm.config;
        harness::ensure_data(
            &Self::data_needs(&dir.arm.dataset),
            data_dir.as_deref(),
            harness::DataPolicy::Fetch,
        )?;
        let data = Self::load(&dir.arm.dataset, data_dir.as_deref())?;
        let splits = Splits::new(data, config.data())?;
        let net = network(config, &splits.images, dir.seed)?;
        let set = load_tickets(&dir, &net)?;
        let targets: Vec<usize> = match target {
            Some(t) if t < set.states.len() => vec![t],
            Some(t) => {
                return Err(HarnessError::invalid(
                    "target",
                    t,
                    format!("the directory holds rounds 0..{}", set.states.len() - 1),
                )
                .into());
            }
            None => (0..set.states.len()).collect(),
        };
        let evaluator = Evaluator {
            net: &net,
            splits: &splits,
        };
        let (levels, pooled) = pool_levels(
            config,
            evaluator,
            &set,
            &targets,
            (ProgressMode::Auto, "pools"),
        )?;
        let out = out.unwrap_or_else(|| tickets.join("pooled"));
        std::fs::create_dir_all(&out).map_err(|e| HarnessError::io(&out, e))?;
        println!(
            "| round | remaining | ticket test | pool test | pool val (start → end) | accepted |"
        );
        println!("|---|---|---|---|---|---|");
        for (level, state) in levels.iter().zip(&pooled) {
            state.restore(&net.varmap)?;
            let p = &level.interpolation;
            let metrics = Metrics::from([
                (crate::tickets::ROUND.to_string(), level.round as f64),
                (crate::tickets::REMAINING.to_string(), level.remaining),
                ("test_accuracy".to_string(), p.accuracies.test),
                ("validation_accuracy".to_string(), p.accuracies.validation),
            ]);
            let path = out.join(format!("pooled-round-{:02}.safetensors", level.round));
            harness::save_variables::<Self>(
                &path,
                &dir.arm,
                dir.seed,
                ModelParts {
                    varmap: &net.varmap,
                    masks: &net.nonzero_masks()?,
                    extra: &BTreeMap::new(),
                    step: level.round as u64,
                },
                &metrics,
            )?;
            println!(
                "| {} | {:.2} % | {:.2} % | {:.2} % | {:.2} % → {:.2} % | {} of {} |",
                level.round,
                100.0 * level.remaining,
                100.0 * level.ticket.test,
                100.0 * p.accuracies.test,
                100.0 * p.start_validation,
                100.0 * p.accuracies.validation,
                p.accepted,
                p.candidates
            );
        }
        println!("wrote the pooled models to {}", out.display());
        Ok(())
    }
}

/// The four claims on one arm's runs; `suffix` tells arms apart in the ids.
fn arm_claims(runs: &ArmRuns<LotteryPools>, suffix: &str) -> Vec<Claim> {
    let mean = |metric: &str| runs.mean(metric).unwrap_or(f64::NAN);
    let gain = mean("pool_gain");
    // Without a corrupted test set (`corrupted_images` 0) only the first half applies.
    let gain_c = runs.mean("pool_gain_corrupted");
    let mut values = vec![("mean_gain_test", gain)];
    values.extend(gain_c.map(|g| ("mean_gain_corrupted", g)));
    let mut claims = vec![Claim::new(
        format!("pools-beat-tickets{suffix}"),
        "The pooled ticket beats the original ticket on average over sparse levels and \
         seeds, in distribution and on the corrupted test set",
        gain > 0.0 && gain_c.is_none_or(|g| g > 0.0),
        values,
    )];
    claims.push(Claim::at_least(
        format!("dense-pool-beats-dense{suffix}"),
        "The interpolated dense model (t = 0) is at least as accurate as the dense model",
        "dense_pool_test",
        mean("dense_pool_test"),
        "dense_test",
        mean("dense_test"),
    ));
    let drops = path_drops_by_round(runs);
    let worst = drops
        .iter()
        .map(|(_, d)| *d)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut values: Vec<(String, f64)> = drops
        .iter()
        .map(|(round, d)| (format!("drop_r{round}_to_r{}", round + 1), *d))
        .collect();
    values.push(("margin".into(), PATH_MARGIN));
    claims.push(Claim::new(
        format!("linear-mode-connectivity{suffix}"),
        "Adjacent tickets are linearly mode-connected: along every path the lowest test \
         accuracy is at most 1 point below the lower end (mean over seeds)",
        !drops.is_empty() && worst <= PATH_MARGIN,
        values,
    ));
    let (pool, swa, ema) = (mean("pool_gain"), mean("swa_gain"), mean("ema_gain"));
    claims.push(Claim::new(
        format!("greedy-beats-averaging{suffix}"),
        "Greedy Lottery Pools is at least as accurate as SWA-style averaging and as EMA \
         (mean test accuracy over sparse levels)",
        pool >= swa && pool >= ema,
        [("pool_gain", pool), ("swa_gain", swa), ("ema_gain", ema)],
    ));
    claims
}

/// The paper's numbers for `arm`: the official figure's values for its model and
/// data set where the paper has them, else ResNet-18 on CIFAR-100's (the abstract).
fn arm_anchors(preset: Preset, arm: &ArmSpec<LotteryConfig>) -> Vec<Anchor> {
    let ours = format!(
        "ours: {} on {} ({} preset)",
        arm.config.architecture().label(),
        arm.dataset,
        preset.as_str()
    );
    let figure = "official Cifar_results.png (approximate)";
    let abstract_gains = "abstract, best gain over the tickets";
    let on = |a: Anchor| a.on_dataset(&arm.dataset);
    if arm.dataset == "cifar10" && matches!(arm.config.architecture(), Architecture::Vgg16 { .. }) {
        let note = format!("paper: VGG-16 on CIFAR-10; {ours}");
        return vec![
            on(Anchor::new(&arm.name, "dense_test_mean", 0.9315, figure).with_note(note.clone())),
            on(Anchor::new(&arm.name, "best_pool_test_mean", 0.941, figure)
                .with_note(format!("{note}; pools at 93.8-94.1 over the levels"))),
        ];
    }
    let note = format!("paper: ResNet-18 on CIFAR-100, 182 epochs x 19 rounds; {ours}");
    let note = if arm.dataset == "cifar100" {
        note
    } else {
        format!("{note} — compare signs and trends, not values")
    };
    vec![
        on(Anchor::new(
            &arm.name,
            "pool_gain_mean",
            0.0188,
            format!("{abstract_gains} (CIFAR-100)"),
        )
        .with_note(note.clone())),
        on(Anchor::new(
            &arm.name,
            "pool_gain_corrupted_mean",
            0.0236,
            format!("{abstract_gains} (CIFAR-100-C)"),
        )
        .with_note(note.clone())),
        on(Anchor::new(
            &arm.name,
            "dense_test_mean",
            0.7345,
            format!("{figure}, dense"),
        )
        .with_note(note.clone())),
        on(Anchor::new(
            &arm.name,
            "best_ticket_test_mean",
            0.744,
            format!("{figure}, best ticket"),
        )
        .with_note(note.clone())),
        on(Anchor::new(
            &arm.name,
            "best_pool_test_mean",
            0.759,
            format!("{figure}, Lottery Pools at 26.2 % remaining"),
        )
        .with_note(note)),
    ]
}

/// The per-level columns of the report, with their plot labels.
const METHODS: &[(&str, &str)] = &[
    ("ticket_test", "tickets (IMP)"),
    ("pool_test", "Lottery Pools (interpolation)"),
    ("average_test", "Lottery Pools (average)"),
    ("swa_test", "SWA"),
    ("ema_test", "EMA"),
];

/// A per-level column: its name and how one seed's level gives it.
type Column = (&'static str, fn(&Level) -> f64);

/// The per-level columns of `<arm>-levels.md` and the report's `levels`.
const LEVEL_COLUMNS: &[Column] = &[
    ("ticket_test", |l| l.ticket.test),
    ("recalibrated_test", |l| l.recalibrated_ticket.test),
    ("pool_test", |l| l.interpolation.accuracies.test),
    ("average_test", |l| l.average.accuracies.test),
    ("swa_test", |l| l.swa.accuracies.test),
    ("ema_test", |l| l.ema.accuracies.test),
    ("ticket_corrupted", |l| corrupted_or_nan(&l.ticket)),
    ("pool_corrupted", |l| {
        corrupted_or_nan(&l.interpolation.accuracies)
    }),
    ("swa_corrupted", |l| corrupted_or_nan(&l.swa.accuracies)),
    ("ema_corrupted", |l| corrupted_or_nan(&l.ema.accuracies)),
    ("pool_accepted", |l| l.interpolation.accepted as f64),
    ("path_drop", |l| path_drop(l).unwrap_or(f64::NAN)),
];

/// One level's numbers over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct LevelRow {
    /// The round.
    pub round: usize,
    /// Share of convolution weights left (the same for every seed).
    pub remaining: f64,
    /// Mean ± std over seeds, by column.
    pub values: BTreeMap<&'static str, MeanStd>,
}

fn level_table(runs: &ArmRuns<LotteryPools>) -> HarnessResult<Vec<LevelRow>> {
    let outcomes: Vec<&SeedOutcome> = runs.outcomes().collect();
    let Some(first) = outcomes.first() else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for (i, level) in first.levels.iter().enumerate() {
        let mut values = BTreeMap::new();
        for &(name, f) in LEVEL_COLUMNS {
            let seeds: Vec<f64> = outcomes
                .iter()
                .filter_map(|o| o.levels.get(i))
                .map(f)
                .filter(|v| !v.is_nan())
                .collect();
            if !seeds.is_empty() {
                values.insert(name, MeanStd::from_values(&seeds)?);
            }
        }
        rows.push(LevelRow {
            round: level.round,
            remaining: level.remaining,
            values,
        });
    }
    Ok(rows)
}

/// The mean path drop from each round to the next, over seeds.
fn path_drops_by_round(runs: &ArmRuns<LotteryPools>) -> Vec<(usize, f64)> {
    let mut by_round: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for outcome in runs.outcomes() {
        for level in &outcome.levels {
            if let Some(drop) = path_drop(level) {
                by_round.entry(level.round).or_default().push(drop);
            }
        }
    }
    by_round
        .into_iter()
        .map(|(round, d)| (round, d.iter().sum::<f64>() / d.len() as f64))
        .collect()
}

/// The level table as markdown: accuracy in %, mean ± std over seeds.
pub fn levels_markdown(rows: &[LevelRow]) -> String {
    let columns: Vec<&str> = LEVEL_COLUMNS.iter().map(|(name, _)| *name).collect();
    let mut md = String::from("| round | remaining |");
    for c in &columns {
        let _ = write!(md, " {c} |");
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---|".repeat(columns.len()));
    md.push('\n');
    for row in rows {
        let _ = write!(md, "| {} | {:.1} % |", row.round, 100.0 * row.remaining);
        for &c in &columns {
            let cell = match row.values.get(c) {
                Some(v) if c == "pool_accepted" => format!("{:.1}", v.mean),
                Some(v) => format!("{:.2} ± {:.2}", 100.0 * v.mean, 100.0 * v.std),
                None => "–".into(),
            };
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    md
}
