//! What the harness needs to reproduce the paper: presets, one arm-seed's run,
//! claims, the (non-numeric) published claim and the accuracy-by-stage plot.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use sparse_core::Mask;
use sparse_data::images::{ImageData, ImageSetName};
use sparse_repro::HarnessError;
use sparse_repro::claim::Claim;
use sparse_repro::cli::{Preset, PresetTrainArgs};
use sparse_repro::harness::{
    self, ArmRuns, ArmSpec, Metrics, NoArgs, NoCommands, Paper, Plan, RunContext, Runs,
    TrainRequest, Trained,
};
use sparse_repro::models::Architecture;
use sparse_repro::plot::{LinePlot, Series};
use sparse_repro::report::{Anchor, ArmReport};
use sparse_repro::splits::ImageSplits;

use crate::config::{DstMethod, SupConfig};
use crate::error::Result;
use crate::superpose::masked_weights;
use crate::training::{RunOutcome, bare_network, train};

/// The paper, for sparse-repro's harness.
#[derive(Debug, Clone, Copy)]
pub struct SupTickets;

/// The flags of `train`: a preset's arm with a few overrides.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// The preset, seed and locations.
    #[command(flatten)]
    pub run: PresetTrainArgs,
    /// The preset's arm of this name (default: its first arm), e.g. `rigl-vgg-16`.
    #[arg(long)]
    pub arm: Option<String>,
    /// Total epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
}

/// The arms of `preset`: GraNet and RigL (and SET in `smoke` and `paper`) on each
/// model and data set.
pub fn preset_arms(preset: Preset) -> Result<Vec<ArmSpec<SupConfig>>> {
    let granet = |final_prune_epoch| DstMethod::GraNet {
        initial_density: 0.5,
        final_prune_epoch,
    };
    let mut arms = Vec::new();
    match preset {
        Preset::Smoke => {
            for method in [granet(2), DstMethod::Rigl, DstMethod::Set] {
                let config = SupConfig::builder(Architecture::Vgg { width: 4 }, method)
                    .recalibration_images(Some(256))
                    .density(0.2, true)
                    .epochs(6, 0.5, 1)
                    .lr(0.05, 0.0005, 0.0025)
                    .batch_size(64)
                    .update_period(5)
                    .build()?;
                arms.push((ImageSetName::Digits, config));
            }
        }
        Preset::Quick => {
            for method in [granet(12), DstMethod::Rigl] {
                let config = SupConfig::builder(Architecture::Vgg { width: 16 }, method)
                    .data(Some(10_000), Some(2_000))
                    .recalibration_images(Some(1_000))
                    .density(0.05, true)
                    .epochs(30, 0.2, 2)
                    .update_period(50)
                    .build()?;
                arms.push((ImageSetName::FashionMnist, config));
            }
        }
        // The official CIFAR command on the official `cifar_resnet_32`.
        Preset::Paper => {
            for dataset in [ImageSetName::Cifar10, ImageSetName::Cifar100] {
                for method in [granet(110), DstMethod::Rigl, DstMethod::Set] {
                    let architecture = Architecture::ResNet {
                        depth: 32,
                        width: 16,
                    };
                    arms.push((dataset, SupConfig::builder(architecture, method).build()?));
                }
            }
        }
    }
    Ok(arms
        .into_iter()
        .map(|(dataset, config)| {
            let name = arm_name(&config);
            ArmSpec::new(name, dataset.as_str(), config)
        })
        .collect())
}

/// `<method>-<model>`, e.g. `granet-vgg-16`.
pub fn arm_name(config: &SupConfig) -> String {
    format!(
        "{}-{}",
        config.method().label(),
        config.architecture().label()
    )
}

fn splits(config: &SupConfig, data: &ImageData) -> Result<ImageSplits> {
    Ok(ImageSplits::new(data.clone(), config.data())?)
}

impl Paper for SupTickets {
    const NAME: &'static str = "sup-tickets";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "Sup-tickets (UAI 2022): the cyclic tail of a GraNet or RigL run \
         yields cheap tickets; their superposition, re-pruned to the same budget, is the result.";

    type Arm = SupConfig;
    type Data = ImageData;
    type Outcome = RunOutcome;
    type ReproduceArgs = NoArgs;
    type TrainArgs = TrainArgs;
    type Commands = NoCommands;
    type Error = crate::Error;

    fn plan(preset: Preset, _: &NoArgs) -> Result<Plan<SupConfig>> {
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
        arm: &ArmSpec<SupConfig>,
        data: &ImageData,
        seed: u64,
        context: &RunContext,
    ) -> Result<Trained<RunOutcome>> {
        let splits = splits(&arm.config, data)?;
        let (outcome, net) = train(&arm.config, &splits, seed, context.progress, &context.label)?;
        let masks = masked_weights(&net)?
            .into_iter()
            .map(|(name, var)| Ok((name, Mask::from_nonzero(var.as_tensor())?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        let step = arm.config.epochs() as u64;
        Ok(Trained::new(outcome, net.varmap.clone(), step).with_masks(masks))
    }

    fn metrics(o: &RunOutcome) -> Metrics {
        let mut m = Metrics::new();
        let sup = o.sup_ticket().map_or(f64::NAN, |s| s.test);
        let best = o.best_ticket().map_or(f64::NAN, |s| s.test);
        m.insert("test_accuracy".into(), sup);
        m.insert("pre_test".into(), o.pre.test);
        m.insert("best_ticket_test".into(), best);
        m.insert("sup_gain_vs_pre".into(), sup - o.pre.test);
        m.insert("sup_gain_vs_best_ticket".into(), sup - best);
        let recalibrated = o
            .tickets_recalibrated
            .iter()
            .zip(&o.tickets)
            .map(|(r, t)| r.test - t.test)
            .sum::<f64>()
            / o.tickets.len().max(1) as f64;
        m.insert("recalibration_gain".into(), recalibrated);
        for (k, (t, s)) in o.tickets.iter().zip(&o.superpositions).enumerate() {
            m.insert(format!("t{}_test", k + 1), t.test);
            m.insert(format!("s{}_test", k + 1), s.test);
        }
        let over_budget = o
            .superpositions
            .iter()
            .map(|s| s.nonzero as f64 - o.budget as f64)
            .fold(
                0.0,
                |worst: f64, d| if d.abs() > worst.abs() { d } else { worst },
            );
        m.insert("sup_nonzero_off_budget".into(), over_budget);
        m.insert("pre_nonzero".into(), o.pre.nonzero as f64);
        m.insert("itop_rate".into(), o.itop_final);
        m
    }

    fn evaluate(
        arm: &ArmSpec<SupConfig>,
        data: &ImageData,
        seed: u64,
        checkpoint: &Path,
    ) -> Result<Metrics> {
        arm.config.validate()?;
        let splits = splits(&arm.config, data)?;
        let net = bare_network(&arm.config, &splits, seed)?;
        harness::load_model(checkpoint, &net.varmap)?;
        let test = net.evaluate(splits.test_batches())?.accuracy;
        Ok(Metrics::from([("test_accuracy".to_string(), test)]))
    }

    fn arm_report(runs: &ArmRuns<Self>, report: ArmReport) -> Result<ArmReport> {
        let split = runs.arm.config.split();
        Ok(report
            .with_metric(
                "budget",
                runs.mean_of(|o| o.budget as f64).unwrap_or(f64::NAN),
            )
            .with_metric(
                "mask_updates",
                runs.mean_of(|o| o.mask_updates as f64).unwrap_or(f64::NAN),
            )
            .with_extra("epoch_split", json!(split)))
    }

    fn claims(plan: &Plan<SupConfig>, runs: &Runs<Self>) -> Result<Vec<Claim>> {
        let several_datasets = plan.arms.iter().any(|a| a.dataset != plan.arms[0].dataset);
        let mut claims = Vec::new();
        for arm in &plan.arms {
            let Some(runs) = runs.get(&arm.name, &arm.dataset) else {
                continue;
            };
            let suffix = if several_datasets {
                format!("{}-{}", arm.config.method().label(), arm.dataset)
            } else {
                arm.config.method().label().to_string()
            };
            claims.extend(arm_claims(runs, &suffix));
        }
        Ok(claims)
    }

    fn anchors(plan: &Plan<SupConfig>, _runs: &Runs<Self>) -> Vec<Anchor> {
        // The paper's tables could not be read from a public source: only the
        // abstract's qualitative claim, as a zero gain to beat.
        plan.arms
            .iter()
            .map(|arm| {
                Anchor::new(
                    &arm.name,
                    "sup_gain_vs_pre_mean",
                    0.0,
                    "abstract: \"consistent performance improvement\" (a gain > 0; the tables were not read)",
                )
                .on_dataset(&arm.dataset)
                .with_note(format!(
                    "paper: CIFAR-10/100 and ImageNet, VGG-19 / ResNet-50 / ResNet-32; ours: {} on {} ({} preset)",
                    arm.config.architecture().label(),
                    arm.dataset,
                    plan.preset.as_str()
                ))
            })
            .collect()
    }

    fn plots(plan: &Plan<SupConfig>, runs: &Runs<Self>, out: &Path) -> Result<()> {
        for dataset in plan
            .arms
            .iter()
            .map(|a| a.dataset.clone())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let mut plot = LinePlot::new(
                format!("Sup-tickets on {dataset}: test accuracy by stage"),
                "stage (0: end of phase 1, k: cycle k)",
                "test accuracy (%)",
            );
            for arm in plan.arms.iter().filter(|a| a.dataset == dataset) {
                let Some(runs) = runs.get(&arm.name, &arm.dataset) else {
                    continue;
                };
                let stages = |f: fn(&RunOutcome) -> Vec<f64>| -> Vec<(f64, f64)> {
                    let per_seed: Vec<Vec<f64>> = runs.outcomes().map(f).collect();
                    let n = per_seed.iter().map(Vec::len).min().unwrap_or(0);
                    (0..n)
                        .map(|i| {
                            let mean =
                                per_seed.iter().map(|v| v[i]).sum::<f64>() / per_seed.len() as f64;
                            (i as f64, 100.0 * mean)
                        })
                        .collect()
                };
                let tickets = stages(|o| {
                    std::iter::once(o.pre.test)
                        .chain(o.tickets.iter().map(|t| t.test))
                        .collect()
                });
                let sups = stages(|o| {
                    std::iter::once(o.pre.test)
                        .chain(o.superpositions.iter().map(|s| s.test))
                        .collect()
                });
                plot = plot
                    .with_series(Series::new(format!("{} tickets", arm.name), tickets))
                    .with_series(Series::new(format!("{} superposition", arm.name), sups));
            }
            plot.write_svg(&out.join(format!("{dataset}-stages.svg")))?;
        }
        Ok(())
    }

    fn train_request(args: &TrainArgs) -> Result<TrainRequest<SupConfig>> {
        let arms = preset_arms(args.run.preset)?;
        let names: Vec<String> = arms.iter().map(|a| a.name.clone()).collect();
        let mut arm = arms
            .into_iter()
            .find(|a| args.arm.as_ref().is_none_or(|n| &a.name == n))
            .ok_or_else(|| {
                HarnessError::invalid(
                    "arm",
                    args.arm.clone().unwrap_or_default(),
                    format!(
                        "the {} preset has {}",
                        args.run.preset.as_str(),
                        names.join(", ")
                    ),
                )
            })?;
        if let Some(epochs) = args.epochs {
            let split = arm.config.split();
            let rate = split.cyclic as f64 / arm.config.epochs() as f64;
            arm.config = arm
                .config
                .rebuild()
                .epochs(epochs, rate, arm.config.cycle())
                .build()?;
        }
        Ok(args.run.request(arm))
    }
}

/// The three claims on one arm's runs.
fn arm_claims(runs: &ArmRuns<SupTickets>, suffix: &str) -> Vec<Claim> {
    let mean = |metric: &str| runs.mean(metric).unwrap_or(f64::NAN);
    let off: Vec<f64> = runs.values("sup_nonzero_off_budget");
    let worst = off.iter().copied().fold(0.0, |w: f64, d| w.max(d.abs()));
    vec![
        Claim::at_least(
            format!("sup-beats-dst-{suffix}"),
            "The final Sup-ticket S_M is at least as accurate as the model at the end of \
             phase 1 (mean over seeds)",
            "sup_test",
            mean("test_accuracy"),
            "pre_test",
            mean("pre_test"),
        ),
        Claim::at_least(
            format!("sup-beats-best-ticket-{suffix}"),
            "S_M is at least as accurate as the best single ticket (chosen on validation)",
            "sup_test",
            mean("test_accuracy"),
            "best_ticket_test",
            mean("best_ticket_test"),
        ),
        Claim::new(
            format!("exact-budget-{suffix}"),
            "Every superposition S_k of every seed has exactly floor(N x final density) \
             non-zero masked weights",
            !off.is_empty() && worst == 0.0,
            [
                ("largest_offset", worst),
                (
                    "budget",
                    runs.mean_of(|o| o.budget as f64).unwrap_or(f64::NAN),
                ),
            ],
        ),
    ]
}
