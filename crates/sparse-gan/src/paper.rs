//! What the harness needs (work in progress: the 2-D mixtures only; the image GAN,
//! the FID proxy and the `paper` SNGAN are still to come).

use std::path::{Path, PathBuf};

use sparse_data::data::mixture::GaussianMixture2d;
use sparse_repro::HarnessError;
use sparse_repro::claim::Claim;
use sparse_repro::cli::Preset;
use sparse_repro::harness::{
    self, ArmRuns, ArmSpec, Metrics, NoArgs, NoCommands, Paper, Plan, RunContext, Runs,
    TrainRequest, Trained,
};
use sparse_repro::plot::ScatterPlot;

use crate::error::Result;
use crate::metrics::energy_distance_to_mixture;
use crate::schedule::DeathSchedule;
use crate::training::{
    Explore, MixtureOutcome, MixtureRun, blank_generator, sample_points, train_generator,
};

/// Claim 3's margin, fixed before the first quick run: DST on G at density 0.1 is
/// "near" the dense GAN when its energy distance is at most this much larger.
pub const NEAR_DENSE_MARGIN: f64 = 0.01;

/// The paper, for sparse-repro's harness.
#[derive(Debug, Clone, Copy)]
pub struct StuGan;

/// The flags of `train`: a preset's arm.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// The preset whose arm to train.
    #[arg(long, value_enum, default_value_t = Preset::Smoke)]
    pub preset: Preset,
    /// The arm's name (default: the preset's first arm), e.g. `dst-g@0.05`.
    #[arg(long)]
    pub arm: Option<String>,
    /// The seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the checkpoint and the outcome.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn mixture_of(name: &str) -> Result<GaussianMixture2d> {
    match name {
        "ring" => Ok(GaussianMixture2d::ring()),
        "grid" => Ok(GaussianMixture2d::grid()),
        other => {
            Err(HarnessError::invalid("dataset", other, "the mixtures are ring and grid").into())
        }
    }
}

/// The arms of `preset` on the ring: dense, then static / DST-G / DST-GD at each
/// generator density, the discriminator at 0.5.
pub fn preset_arms(preset: Preset) -> Result<Vec<ArmSpec<MixtureRun>>> {
    let base = match preset {
        Preset::Smoke => MixtureRun {
            width: 16,
            depth: 2,
            latent: 2,
            density_g: None,
            density_d: None,
            explore: Explore::Static,
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
            exact_d_growth: false,
            eval_samples: 500,
        },
        _ => MixtureRun {
            width: 128,
            depth: 3,
            latent: 2,
            density_g: None,
            density_d: None,
            explore: Explore::Static,
            g_steps: 1500,
            n_critic: 5,
            dis_batch: 64,
            gen_batch: 128,
            lr: 2e-4,
            update_frequency: 75,
            death_rate: 0.5,
            schedule: DeathSchedule::PerDStep2021,
            sema: Some(0.99),
            spectral_norm: true,
            exact_d_growth: false,
            eval_samples: 2500,
        },
    };
    base.validate()?;
    let mut arms = vec![ArmSpec::new("dense", "ring", base.clone())];
    for density in [0.05, 0.1, 0.2] {
        for (label, explore) in [
            ("static", Explore::Static),
            ("dst-g", Explore::G),
            ("dst-gd", Explore::GD),
        ] {
            let run = MixtureRun {
                density_g: Some(density),
                density_d: Some(0.5),
                explore,
                ..base.clone()
            };
            run.validate()?;
            arms.push(ArmSpec::new(format!("{label}@{density}"), "ring", run));
        }
    }
    Ok(arms)
}

impl Paper for StuGan {
    const NAME: &'static str = "sparse-gan";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "STU-GAN (arXiv 2203.02770): a very sparse generator that keeps \
         exploring its parameter space, against static sparse and dense GANs.";
    const EVAL_METRIC: &'static str = "sample_distance";

    type Arm = MixtureRun;
    type Data = GaussianMixture2d;
    type Outcome = MixtureOutcome;
    type ReproduceArgs = NoArgs;
    type TrainArgs = TrainArgs;
    type Commands = NoCommands;
    type Error = crate::Error;

    fn plan(preset: Preset, _: &NoArgs) -> Result<Plan<MixtureRun>> {
        let seeds = if preset == Preset::Smoke { 2 } else { 3 };
        Ok(Plan::from_arms(preset, preset_arms(preset)?, seeds)?)
    }

    fn data_needs(_dataset: &str) -> Vec<String> {
        Vec::new() // generated
    }

    fn load(dataset: &str, _data_dir: Option<&Path>) -> Result<GaussianMixture2d> {
        mixture_of(dataset)
    }

    fn train(
        arm: &ArmSpec<MixtureRun>,
        data: &GaussianMixture2d,
        seed: u64,
        _context: &RunContext,
    ) -> Result<Trained<MixtureOutcome>> {
        let (outcome, generator) = train_generator(&arm.config, data, seed)?;
        let step = arm.config.g_steps as u64;
        Ok(Trained::new(outcome, generator.varmap, step).with_masks(generator.masks))
    }

    fn metrics(o: &MixtureOutcome) -> Metrics {
        Metrics::from([
            ("sample_distance".to_string(), o.energy_distance),
            ("mmd".to_string(), o.mmd),
            ("modes_covered".to_string(), o.modes_covered as f64),
            ("high_quality".to_string(), o.high_quality),
            ("itop_rate_g".to_string(), o.itop_g),
            ("itop_rate_d".to_string(), o.itop_d),
            ("nnz_g".to_string(), o.nnz_g.0 as f64),
            ("nnz_g_start".to_string(), o.nnz_g.1 as f64),
        ])
    }

    fn evaluate(
        arm: &ArmSpec<MixtureRun>,
        data: &GaussianMixture2d,
        seed: u64,
        checkpoint: &Path,
    ) -> Result<Metrics> {
        arm.config.validate()?;
        let (varmap, model) = blank_generator(&arm.config)?;
        harness::load_model(checkpoint, &varmap)?;
        let samples = sample_points(&arm.config, &model, seed)?;
        Ok(Metrics::from([(
            "sample_distance".to_string(),
            energy_distance_to_mixture(&samples, data),
        )]))
    }

    fn claims(_plan: &Plan<MixtureRun>, runs: &Runs<Self>) -> Result<Vec<Claim>> {
        let mean = |arm: &str, metric: &str| {
            runs.get(arm, "ring")
                .and_then(|a: &ArmRuns<Self>| a.mean(metric))
                .unwrap_or(f64::NAN)
        };
        let sd = |arm: &str| mean(arm, "sample_distance");
        let advantage = |d: &str| sd(&format!("static@{d}")) - sd(&format!("dst-g@{d}"));
        let (a05, a1, a2) = (advantage("0.05"), advantage("0.1"), advantage("0.2"));
        let mut itop_values = Vec::new();
        let mut itop_pass = true;
        for d in ["0.05", "0.1", "0.2"] {
            for kind in ["dst-g", "dst-gd"] {
                let arm = format!("{kind}@{d}");
                let (itop, start) = (
                    mean(&arm, "itop_rate_g"),
                    d.parse::<f64>().unwrap_or(f64::NAN),
                );
                itop_pass &= itop > start;
                itop_values.push((format!("itop_{arm}"), itop));
            }
        }
        Ok(vec![
            Claim::greater_than(
                "dst-g-beats-static-at-0.05",
                "At generator density 0.05, DST on G reaches a smaller energy distance to the \
                 mixture than static sparse G (mean over seeds)",
                "static",
                sd("static@0.05"),
                "dst_g",
                sd("dst-g@0.05"),
            ),
            Claim::new(
                "advantage-grows-with-sparsity",
                "DST's advantage over static sparse G is positive at 0.05 and largest there",
                a05 > 0.0 && a05 >= a1.max(a2),
                [
                    ("advantage_0.05", a05),
                    ("advantage_0.1", a1),
                    ("advantage_0.2", a2),
                ],
            ),
            Claim::new(
                "dst-g-0.1-near-dense",
                "DST on G at density 0.1 is within the stated margin of the dense GAN",
                sd("dst-g@0.1") <= sd("dense") + NEAR_DENSE_MARGIN,
                [
                    ("dst_g_0.1", sd("dst-g@0.1")),
                    ("dense", sd("dense")),
                    ("margin", NEAR_DENSE_MARGIN),
                ],
            ),
            Claim::new(
                "itop-exceeds-density",
                "Every exploring generator has been active at more weights than its density",
                itop_pass,
                itop_values,
            ),
        ])
    }

    fn plots(plan: &Plan<MixtureRun>, runs: &Runs<Self>, out: &Path) -> Result<()> {
        let modes: Vec<(f64, f64)> = GaussianMixture2d::ring()
            .modes()
            .iter()
            .map(|m| (m[0], m[1]))
            .collect();
        for arm in &plan.arms {
            let Some(first) = runs
                .get(&arm.name, &arm.dataset)
                .and_then(|a| a.runs.first())
            else {
                continue;
            };
            let (varmap, model) = blank_generator(&arm.config)?;
            harness::load_model(&first.checkpoint, &varmap)?;
            let points = sample_points(&arm.config, &model, first.seed)?;
            let points = points.iter().take(1000).map(|p| (p[0], p[1])).collect();
            ScatterPlot::new(
                format!("{} on the ring, seed {}", arm.name, first.seed),
                "x",
                "y",
            )
            .with_group(arm.name.as_str(), points)
            .with_marks("modes", modes.clone())
            .write_svg(&out.join(format!("{}-samples.svg", arm.file_stem(first.seed))))?;
        }
        Ok(())
    }

    fn train_request(args: &TrainArgs) -> Result<TrainRequest<MixtureRun>> {
        let arms = preset_arms(args.preset)?;
        let names: Vec<String> = arms.iter().map(|a| a.name.clone()).collect();
        let arm = arms
            .into_iter()
            .find(|a| args.arm.as_ref().is_none_or(|n| &a.name == n))
            .ok_or_else(|| {
                HarnessError::invalid(
                    "arm",
                    args.arm.clone().unwrap_or_default(),
                    format!(
                        "the {} preset has {}",
                        args.preset.as_str(),
                        names.join(", ")
                    ),
                )
            })?;
        Ok(TrainRequest {
            arm,
            seed: args.seed,
            data_dir: None,
            out: args.out.clone(),
        })
    }
}
