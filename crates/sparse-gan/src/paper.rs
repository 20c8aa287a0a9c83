//! What the harness needs: presets, training, scoring, claims and pictures.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sparse_repro::HarnessError;
use sparse_repro::claim::Claim;
use sparse_repro::cli::{Preset, PresetTrainArgs};
use sparse_repro::harness::{
    self, ArmRuns, ArmSpec, Metrics, NoCommands, Paper, Plan, RunContext, Runs, TrainRequest,
    Trained,
};
use sparse_repro::plot::{GridLayout, LinePlot, ScatterPlot, Series, write_image_grid};
use sparse_repro::report::{Anchor, ArmReport};

use crate::config::{Explore, GanConfig};
use crate::data::{GanData, MIXTURES};
use crate::error::Result;
use crate::evaluation::{SAMPLE_DISTANCE, points, samples, score};
use crate::models::Generator;
use crate::presets::{self, DENSITIES_G};
use crate::training::{TrainingStats, blank_generator, train};

/// Claim 3's margin on the ring, fixed before the first quick run: DST on G at
/// density 0.1 is "near" the dense GAN when its energy distance is at most this much
/// larger.
pub const NEAR_DENSE_MARGIN_RING: f64 = 0.01;
/// The same on the 25-mode grid (its modes are wider and farther apart).
pub const NEAR_DENSE_MARGIN_GRID: f64 = 0.02;
/// The same on images, relative: at most 10 % above the dense GAN's Fréchet distance.
pub const NEAR_DENSE_MARGIN_IMAGES: f64 = 0.10;
/// Generated images in each arm's picture.
pub const GRID_IMAGES: usize = 64;

/// The paper, for sparse-repro's harness.
#[derive(Debug, Clone, Copy)]
pub struct StuGan;

/// One seed's result: the scores of the evaluated generator and what training
/// measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanOutcome {
    /// The scores (see [`crate::evaluation::score`]).
    pub scores: BTreeMap<String, f64>,
    /// What training measured.
    pub stats: TrainingStats,
}

/// The flags of `reproduce`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GanArgs {
    /// The data set: ring or grid (2-D mixtures), digits, mnist, fashion-mnist or
    /// cifar10 (default: ring and digits for smoke, ring for quick, cifar10 for paper).
    #[arg(long)]
    pub dataset: Option<String>,
}

/// The flags of `train`: a preset's arm.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// The preset, seed and locations.
    #[command(flatten)]
    pub run: PresetTrainArgs,
    /// The data set (default: the preset's first).
    #[arg(long)]
    pub dataset: Option<String>,
    /// The arm's name (default: dense), e.g. `dst-g@0.05`.
    #[arg(long)]
    pub arm: Option<String>,
}

/// Every arm of `preset`, on `dataset` or the preset's default data sets.
pub fn preset_arms(preset: Preset, dataset: Option<&str>) -> Result<Vec<ArmSpec<GanConfig>>> {
    let datasets: Vec<&str> = match dataset {
        Some(d) => vec![d],
        None => presets::default_datasets(preset).to_vec(),
    };
    let mut arms = Vec::new();
    for d in datasets {
        arms.extend(presets::arms(preset, d)?);
    }
    Ok(arms)
}

fn margin(dataset: &str, dense: f64) -> f64 {
    match dataset {
        "ring" => NEAR_DENSE_MARGIN_RING,
        "grid" => NEAR_DENSE_MARGIN_GRID,
        _ => NEAR_DENSE_MARGIN_IMAGES * dense,
    }
}

/// The claims on one data set, from the arms it has.
fn dataset_claims(runs: &Runs<StuGan>, dataset: &str, suffix: &str) -> Vec<Claim> {
    let mean = |arm: &str, metric: &str| {
        runs.get(arm, dataset)
            .and_then(|a: &ArmRuns<StuGan>| a.mean(metric))
    };
    let sd = |arm: &str| mean(arm, SAMPLE_DISTANCE);
    let name = |explore, d| presets::arm_name(explore, d);
    let unit = if MIXTURES.contains(&dataset) {
        "energy distance to the mixture"
    } else {
        "Fréchet distance of the proxy features"
    };
    let mut claims = Vec::new();
    let lowest = DENSITIES_G[0];
    if let (Some(st), Some(dst)) = (
        sd(&name(Explore::Static, lowest)),
        sd(&name(Explore::G, lowest)),
    ) {
        claims.push(Claim::greater_than(
            format!("dst-g-beats-static-at-{lowest}{suffix}"),
            format!(
                "At generator density {lowest}, DST on G reaches a smaller {unit} than static \
                 sparse G (mean over seeds)"
            ),
            "static",
            st,
            "dst_g",
            dst,
        ));
    }
    let advantages: Vec<Option<f64>> = DENSITIES_G
        .iter()
        .map(|&d| Some(sd(&name(Explore::Static, d))? - sd(&name(Explore::G, d))?))
        .collect();
    if let [Some(a05), Some(a1), Some(a2)] = advantages[..] {
        claims.push(Claim::new(
            format!("advantage-grows-with-sparsity{suffix}"),
            "DST's advantage over static sparse G is positive at the lowest density and \
             largest there",
            a05 > 0.0 && a05 >= a1.max(a2),
            [
                (format!("advantage_{}", DENSITIES_G[0]), a05),
                (format!("advantage_{}", DENSITIES_G[1]), a1),
                (format!("advantage_{}", DENSITIES_G[2]), a2),
                (
                    "monotone".to_string(),
                    f64::from(u8::from(a05 >= a1 && a1 >= a2)),
                ),
            ],
        ));
    }
    let near = DENSITIES_G[1];
    if let (Some(dst), Some(dense)) = (sd(&name(Explore::G, near)), sd("dense")) {
        let m = margin(dataset, dense);
        claims.push(Claim::new(
            format!("dst-g-{near}-near-dense{suffix}"),
            format!(
                "DST on G at density {near} is within the stated margin of the dense GAN \
                 ({unit})"
            ),
            dst <= dense + m,
            [
                (format!("dst_g_{near}"), dst),
                ("dense".to_string(), dense),
                ("margin".to_string(), m),
            ],
        ));
    }
    let mut itop_values = Vec::new();
    let mut itop_pass = true;
    for &d in &DENSITIES_G {
        for explore in [Explore::G, Explore::GD] {
            let arm = name(explore, d);
            if let (Some(itop), Some(density)) =
                (mean(&arm, "itop_rate_g"), mean(&arm, "density_g"))
            {
                itop_pass &= itop > density;
                itop_values.push((format!("itop_{arm}"), itop));
                itop_values.push((format!("density_{arm}"), density));
            }
        }
    }
    if !itop_values.is_empty() {
        claims.push(Claim::new(
            format!("itop-exceeds-density{suffix}"),
            "Every exploring generator has been active at more weights than its initial \
             density (its ITOP rate exceeds it)",
            itop_pass,
            itop_values,
        ));
    }
    claims
}

fn datasets_of(plan: &Plan<GanConfig>) -> Vec<String> {
    let mut datasets: Vec<String> = Vec::new();
    for arm in &plan.arms {
        if !datasets.contains(&arm.dataset) {
            datasets.push(arm.dataset.clone());
        }
    }
    datasets
}

/// The author numbers: BigGAN on CIFAR-10 at overall density 0.3 (G ≈ 0.06,
/// D ≈ 0.51), FID, from the official BigGAN fork's working data. Our arms at
/// density 0.05 are the nearest; our distances are not FID, so the "this run" column
/// stays empty and only the orderings compare (claim 1).
fn author_anchors() -> Vec<Anchor> {
    let source = "author working data (official BigGAN fork, plots/plots.py), not a paper table";
    let note = "BigGAN, CIFAR-10, overall density 0.3 (G 0.06, D 0.51); FID, which we do not \
                measure: compare the ordering with our sample_distance";
    let lowest = DENSITIES_G[0];
    [
        ("dense".to_string(), 9.02),
        (presets::arm_name(Explore::Static, lowest), 16.44),
        (presets::arm_name(Explore::G, lowest), 11.73),
        (presets::arm_name(Explore::GD, lowest), 10.94),
        ("dst-d".to_string(), 18.72),
    ]
    .into_iter()
    .map(|(arm, fid)| Anchor::new(arm, "fid", fid, source).with_note(note))
    .collect()
}

/// The picture of a trained generator: a scatter of its points against the
/// mixture's modes (SVG), or a grid of its images (PNG).
fn write_arm_picture(
    arm: &ArmSpec<GanConfig>,
    seed: u64,
    generator: &Generator,
    out: &Path,
) -> Result<()> {
    let latent = arm.config.arch.latent();
    let stem = arm.file_stem(seed);
    match arm.config.arch.image() {
        None => {
            let x = samples(generator, latent, arm.config.eval_samples, seed)?;
            let points: Vec<(f64, f64)> = points(&x)?
                .iter()
                .take(1000)
                .map(|p| (p[0], p[1]))
                .collect();
            let modes: Vec<(f64, f64)> = match GanData::load(&arm.dataset, None)? {
                GanData::Mixture(m) => m.modes().iter().map(|m| (m[0], m[1])).collect(),
                GanData::Images(_) => Vec::new(),
            };
            ScatterPlot::new(
                format!("{} on the {}, seed {seed}", arm.name, arm.dataset),
                "x",
                "y",
            )
            .with_group(arm.name.as_str(), points)
            .with_marks("modes", modes)
            .write_svg(&out.join(format!("{stem}-samples.svg")))?;
        }
        Some((_, side)) => {
            let x = samples(generator, latent, GRID_IMAGES, seed)?;
            // [-1, 1] to [0, 1]; colour drawn as its grey mean
            let grey = ((x.mean_keepdim(1)? + 1.0)? / 2.0)?;
            let values: Vec<f32> = grey.flatten_all()?.to_vec1()?;
            write_image_grid(
                &out.join(format!("{stem}-samples.png")),
                &values,
                GridLayout {
                    height: side,
                    width: side,
                    columns: 8,
                    scale: if side < 16 { 4 } else { 2 },
                },
            )?;
        }
    }
    Ok(())
}

impl Paper for StuGan {
    const NAME: &'static str = "sparse-gan";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "STU-GAN (arXiv 2203.02770): a very sparse generator that keeps \
         exploring its parameter space, against static sparse and dense GANs.";
    const EVAL_METRIC: &'static str = SAMPLE_DISTANCE;

    type Arm = GanConfig;
    type Data = GanData;
    type Outcome = GanOutcome;
    type ReproduceArgs = GanArgs;
    type TrainArgs = TrainArgs;
    type Commands = NoCommands;
    type Error = crate::Error;

    fn plan(preset: Preset, args: &GanArgs) -> Result<Plan<GanConfig>> {
        let seeds = if preset == Preset::Smoke { 2 } else { 3 };
        Ok(Plan::from_arms(
            preset,
            preset_arms(preset, args.dataset.as_deref())?,
            seeds,
        )?)
    }

    fn data_needs(dataset: &str) -> Vec<String> {
        if MIXTURES.contains(&dataset) {
            return Vec::new(); // generated
        }
        sparse_data::images::ImageSetName::catalogue_needs(dataset)
    }

    fn load(dataset: &str, data_dir: Option<&Path>) -> Result<GanData> {
        GanData::load(dataset, data_dir)
    }

    fn train(
        arm: &ArmSpec<GanConfig>,
        data: &GanData,
        seed: u64,
        context: &RunContext,
    ) -> Result<Trained<GanOutcome>> {
        let trained = train(&arm.config, data, seed)?;
        let scores = score(
            data,
            &trained.generator,
            arm.config.arch.latent(),
            arm.config.eval_samples,
            seed,
        )?;
        if let Some(dir) = &context.artifacts {
            std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
            write_arm_picture(arm, seed, &trained.generator, dir)?;
        }
        let outcome = GanOutcome {
            scores,
            stats: trained.stats,
        };
        let step = arm.config.g_steps as u64;
        Ok(Trained::new(outcome, trained.varmap, step).with_masks(trained.masks))
    }

    fn metrics(o: &GanOutcome) -> Metrics {
        let s = &o.stats;
        let mut metrics = o.scores.clone();
        metrics.extend([
            ("itop_rate_g".to_string(), s.itop_g),
            ("itop_rate_d".to_string(), s.itop_d),
            ("density_g".to_string(), s.density_g()),
            ("nnz_g".to_string(), s.nnz_g.0 as f64),
            (
                "nnz_d_drift".to_string(),
                s.nnz_d.0 as f64 - s.nnz_d.1 as f64,
            ),
            ("topology_updates".to_string(), s.updates.len() as f64),
            ("d_loss_tail".to_string(), s.d_loss_tail),
            ("g_loss_tail".to_string(), s.g_loss_tail),
        ]);
        metrics
    }

    fn evaluate(
        arm: &ArmSpec<GanConfig>,
        data: &GanData,
        seed: u64,
        checkpoint: &Path,
    ) -> Result<Metrics> {
        arm.config.validate()?;
        let (varmap, generator) = blank_generator(&arm.config.arch)?;
        harness::load_model(checkpoint, &varmap)?;
        score(
            data,
            &generator,
            arm.config.arch.latent(),
            arm.config.eval_samples,
            seed,
        )
    }

    fn arm_report(runs: &ArmRuns<Self>, report: ArmReport) -> Result<ArmReport> {
        let schedule: Vec<serde_json::Value> = runs
            .runs
            .first()
            .map(|r| {
                r.outcome
                    .stats
                    .updates
                    .iter()
                    .map(|(step, rate)| json!([step, rate]))
                    .collect()
            })
            .unwrap_or_default();
        Ok(report
            .with_extra("death_rate_schedule", json!(runs.arm.config.schedule))
            .with_extra("death_rates_seed0", json!(schedule)))
    }

    fn claims(plan: &Plan<GanConfig>, runs: &Runs<Self>) -> Result<Vec<Claim>> {
        let datasets = datasets_of(plan);
        let several = datasets.len() > 1;
        let mut claims = Vec::new();
        for dataset in &datasets {
            let suffix = if several {
                format!("-{dataset}")
            } else {
                String::new()
            };
            claims.extend(dataset_claims(runs, dataset, &suffix));
        }
        Ok(claims)
    }

    fn plots(plan: &Plan<GanConfig>, runs: &Runs<Self>, out: &Path) -> Result<()> {
        for arm in &plan.arms {
            if let Some(first) = runs
                .get(&arm.name, &arm.dataset)
                .and_then(|a| a.runs.first())
            {
                let (varmap, generator) = blank_generator(&arm.config.arch)?;
                harness::load_model(&first.checkpoint, &varmap)?;
                write_arm_picture(arm, first.seed, &generator, out)?;
            }
        }
        for dataset in datasets_of(plan) {
            let sd = |arm: &str| {
                runs.get(arm, &dataset)
                    .and_then(|a| a.mean(SAMPLE_DISTANCE))
            };
            let mut plot = LinePlot::new(
                format!("sample distance by generator density ({dataset})"),
                "generator density",
                "sample distance (smaller is better)",
            );
            for explore in [Explore::Static, Explore::G, Explore::GD] {
                let points: Vec<(f64, f64)> = DENSITIES_G
                    .iter()
                    .filter_map(|&d| Some((d, sd(&presets::arm_name(explore, d))?)))
                    .collect();
                if !points.is_empty() {
                    let label = presets::arm_name(explore, 0.0);
                    let label = label.trim_end_matches("@0");
                    plot = plot.with_series(Series::new(label, points));
                }
            }
            if let Some(dense) = sd("dense") {
                plot = plot.with_series(Series::new(
                    "dense",
                    vec![(DENSITIES_G[0], dense), (DENSITIES_G[2], dense)],
                ));
            }
            plot.write_svg(&out.join(format!("{dataset}-distance-by-density.svg")))?;
        }
        Ok(())
    }

    fn anchors(_plan: &Plan<GanConfig>, _runs: &Runs<Self>) -> Vec<Anchor> {
        author_anchors()
    }

    fn train_request(args: &TrainArgs) -> Result<TrainRequest<GanConfig>> {
        let dataset = match &args.dataset {
            Some(d) => d.clone(),
            None => presets::default_datasets(args.run.preset)[0].to_string(),
        };
        let arms = presets::arms(args.run.preset, &dataset)?;
        let names: Vec<String> = arms.iter().map(|a| a.name.clone()).collect();
        let arm = arms
            .into_iter()
            .find(|a| args.arm.as_ref().is_none_or(|n| &a.name == n))
            .ok_or_else(|| {
                HarnessError::invalid(
                    "arm",
                    args.arm.clone().unwrap_or_default(),
                    format!(
                        "the {} preset on {dataset} has {}",
                        args.run.preset.as_str(),
                        names.join(", ")
                    ),
                )
            })?;
        Ok(args.run.request(arm))
    }
}
