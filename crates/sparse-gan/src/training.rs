//! One GAN run on a 2-D mixture, as the 2021 author code trains it (brief §4):
//! hinge losses, `n_critic` discriminator steps per generator step, Adam (2e-4,
//! betas (0, 0.9)) for both, two sparse registries and two engines with no period
//! of their own: every `update_frequency` generator steps the crate asks the
//! exploring networks for one prune-and-regrow at the scheduled death rate (G by
//! the dense gradient of that step, D at random), and SEMA averages the generator
//! after each of its steps.

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use sparse_core::optim::trainable_vars;
use sparse_core::updater::UpdateContext;
use sparse_core::{
    Adam, AdamConfig, AllocationConfig, DynamicSparsity, GrowthInit, GrowthMethod, Optimizer,
    SelectionPolicy, SparseEma, SparseParams, SparsityEngine,
};
use sparse_data::data::mixture::GaussianMixture2d;
use sparse_repro::rng::{derive_rng, derive_seed, streams};
use sparse_repro::sample_quality::ModeCoverage;

use crate::error::Result;
use crate::metrics::{energy_distance_to_mixture, mmd_to_mixture};
use crate::models::{Discriminator, generate, generator};
use crate::schedule::DeathSchedule;

/// Which networks change their topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Explore {
    /// Fixed masks (static sparse training).
    Static,
    /// The generator explores (gradient growth), the discriminator is fixed.
    G,
    /// Both explore (the discriminator by random growth).
    GD,
}

/// One mixture run's settings (the work-in-progress form of the crate's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureRun {
    /// Hidden units of both networks.
    pub width: usize,
    /// Hidden layers of both networks.
    pub depth: usize,
    /// Latent dimension.
    pub latent: usize,
    /// Density of the generator's weights (`None`: dense).
    pub density_g: Option<f64>,
    /// Density of the discriminator's weights (`None`: dense).
    pub density_d: Option<f64>,
    /// Which networks explore.
    pub explore: Explore,
    /// Generator steps.
    pub g_steps: usize,
    /// Discriminator steps per generator step.
    pub n_critic: usize,
    /// Real (and fake) points per discriminator step.
    pub dis_batch: usize,
    /// Fake points per generator step.
    pub gen_batch: usize,
    /// Adam's learning rate (both networks).
    pub lr: f64,
    /// Generator steps between topology updates.
    pub update_frequency: usize,
    /// The death rate at the start of the schedule.
    pub death_rate: f64,
    /// How the death rate decays.
    pub schedule: DeathSchedule,
    /// SEMA decay of the generator (`None`: evaluate the generator itself).
    pub sema: Option<f64>,
    /// Spectral normalisation on the discriminator.
    pub spectral_norm: bool,
    /// Exact regrowth counts for the discriminator (the official random growth is
    /// Bernoulli, so its count drifts).
    pub exact_d_growth: bool,
    /// Generated points the evaluation scores.
    pub eval_samples: usize,
}

impl MixtureRun {
    /// Checks every setting; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, value: String, why: &str| -> crate::Error {
            sparse_repro::HarnessError::invalid(name, value, why).into()
        };
        for (name, d) in [("density_g", self.density_g), ("density_d", self.density_d)] {
            if let Some(d) = d
                && !(d > 0.0 && d <= 1.0)
            {
                return Err(bad(name, d.to_string(), "must lie in (0, 1]"));
            }
        }
        for (name, v) in [
            ("width", self.width),
            ("latent", self.latent),
            ("g_steps", self.g_steps),
            ("n_critic", self.n_critic),
            ("dis_batch", self.dis_batch),
            ("gen_batch", self.gen_batch),
            ("update_frequency", self.update_frequency),
            ("eval_samples", self.eval_samples),
        ] {
            if v == 0 {
                return Err(bad(name, "0".into(), "must be positive"));
            }
        }
        if self.explore != Explore::Static && self.update_frequency > self.g_steps {
            return Err(bad(
                "update_frequency",
                self.update_frequency.to_string(),
                "exceeds g_steps: the masks would never change",
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(bad("lr", self.lr.to_string(), "must be positive"));
        }
        if !(self.death_rate > 0.0 && self.death_rate < 1.0) {
            return Err(bad(
                "death_rate",
                self.death_rate.to_string(),
                "must lie in (0, 1)",
            ));
        }
        if let Some(decay) = self.sema
            && !(0.0..1.0).contains(&decay)
        {
            return Err(bad("sema", decay.to_string(), "must lie in [0, 1)"));
        }
        Ok(())
    }
}

/// What one mixture run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureOutcome {
    /// Energy distance of the evaluated generator's samples to the mixture.
    pub energy_distance: f64,
    /// Squared MMD (bandwidth 0.1) to the mixture.
    pub mmd: f64,
    /// Modes reached (PacGAN's rule).
    pub modes_covered: usize,
    /// Share of samples within 3σ of a mode.
    pub high_quality: f64,
    /// Share of the generator's masked positions ever active.
    pub itop_g: f64,
    /// The same for the discriminator.
    pub itop_d: f64,
    /// Non-zeros of the generator's masked weights at the end, and at the start.
    pub nnz_g: (usize, usize),
    /// Non-zeros of the discriminator's masked weights at the end, and at the start.
    pub nnz_d: (usize, usize),
    /// The death rate of every topology update, with its generator step.
    pub updates: Vec<(usize, f64)>,
}

fn nnz(params: &SparseParams) -> usize {
    params.iter().map(|p| p.mask.nnz()).sum()
}

fn normal(n: usize, dim: usize, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let values: Vec<f32> = (0..n * dim).map(|_| StandardNormal.sample(rng)).collect();
    Ok(Tensor::from_vec(values, (n, dim), &Device::Cpu)?)
}

fn points(p: &[[f64; 2]]) -> Result<Tensor> {
    let flat: Vec<f32> = p.iter().flat_map(|q| [q[0] as f32, q[1] as f32]).collect();
    Ok(Tensor::from_vec(flat, (p.len(), 2), &Device::Cpu)?)
}

/// ERK masks at `density` over every weight matrix of `varmap` (none when dense).
fn masks(
    varmap: &candle_nn::VarMap,
    density: Option<f64>,
    rng: &mut ChaCha8Rng,
) -> Result<SparseParams> {
    let Some(density) = density else {
        return Ok(SparseParams::new());
    };
    let policy = SelectionPolicy::builder().ndims([2]).build()?;
    Ok(AllocationConfig::builder()
        .density(density)
        .build()?
        .init_sparse_params(varmap, &policy, None, rng)?)
}

fn engine(params: &SparseParams, growth: GrowthMethod, seed: u64) -> Result<SparsityEngine> {
    let config = DynamicSparsity::static_sparse()
        .growth(growth)
        .growth_init(GrowthInit::Previous)
        .mask_momentum(false)
        .seed(seed)
        .build()?;
    Ok(SparsityEngine::new(config, params)?)
}

/// The evaluated generator of a run: the SEMA average (or the generator itself) in
/// its own `VarMap`, with the generator's masks.
pub struct TrainedGenerator {
    /// Every tensor of the evaluated generator.
    pub varmap: candle_nn::VarMap,
    /// The generator model over `varmap`.
    pub model: sparse_repro::models::Model,
    /// The generator's final masks.
    pub masks: std::collections::BTreeMap<String, sparse_core::Mask>,
}

impl std::fmt::Debug for TrainedGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainedGenerator")
            .field("masks", &self.masks.len())
            .finish_non_exhaustive()
    }
}

/// A generator of `run`'s shape with arbitrary weights, to load a checkpoint into.
pub fn blank_generator(
    run: &MixtureRun,
) -> Result<(candle_nn::VarMap, sparse_repro::models::Model)> {
    generator(
        run.latent,
        run.width,
        run.depth,
        &mut ChaCha8Rng::seed_from_u64(0),
    )
}

/// `run.eval_samples` points of `model` for the seed's evaluation codes.
pub fn sample_points(
    run: &MixtureRun,
    model: &sparse_repro::models::Model,
    seed: u64,
) -> Result<Vec<[f64; 2]>> {
    let z = normal(run.eval_samples, run.latent, &mut derive_rng(seed, "eval"))?;
    let out = generate(model, &z, false)?
        .to_dtype(DType::F64)?
        .to_vec2::<f64>()?;
    Ok(out.iter().map(|p| [p[0], p[1]]).collect())
}

/// Trains a GAN on `mixture` with `run`'s settings and `seed`.
pub fn train_on_mixture(
    run: &MixtureRun,
    mixture: &GaussianMixture2d,
    seed: u64,
) -> Result<MixtureOutcome> {
    Ok(train_generator(run, mixture, seed)?.0)
}

/// [`train_on_mixture`], also returning the evaluated generator.
pub fn train_generator(
    run: &MixtureRun,
    mixture: &GaussianMixture2d,
    seed: u64,
) -> Result<(MixtureOutcome, TrainedGenerator)> {
    run.validate()?;
    let mut init = derive_rng(seed, streams::INIT);
    let (g_vm, g) = generator(run.latent, run.width, run.depth, &mut init)?;
    let d = Discriminator::new(run.width, run.depth, run.spectral_norm, &mut init)?;
    let mut g_params = masks(&g_vm, run.density_g, &mut derive_rng(seed, "g-mask"))?;
    let mut d_params = masks(d.varmap(), run.density_d, &mut derive_rng(seed, "d-mask"))?;
    let (nnz_g0, nnz_d0) = (nnz(&g_params), nnz(&d_params));
    let mut g_engine = engine(
        &g_params,
        GrowthMethod::Gradient,
        derive_seed(seed, "g-regrow"),
    )?;
    let d_growth = if run.exact_d_growth {
        GrowthMethod::RandomExact
    } else {
        GrowthMethod::Random
    };
    let mut d_engine = engine(&d_params, d_growth, derive_seed(seed, "d-regrow"))?;
    let adam = || AdamConfig::adam(run.lr).betas(0.0, 0.9).build();
    let mut g_opt = Adam::from_params(trainable_vars(&g_vm), adam()?)?;
    let mut d_opt = Adam::from_params(trainable_vars(d.varmap()), adam()?)?;
    let mut ema = match run.sema {
        Some(decay) => Some(SparseEma::new(&g_vm, decay)?),
        None => None,
    };
    let mut data = derive_rng(seed, "data");
    let mut noise = derive_rng(seed, "noise");
    let (mut d_steps, mut g_step, mut updates) = (0usize, 0usize, Vec::new());
    let mut t = 0usize;
    while g_step < run.g_steps {
        // discriminator step
        let real = points(&mixture.sample(run.dis_batch, &mut data))?;
        let fake = generate(&g, &normal(run.dis_batch, run.latent, &mut noise)?, true)?.detach();
        let r = d.forward(&real, true)?;
        let f = d.forward(&fake, true)?;
        let d_loss = ((1.0 - r)?.relu()?.mean_all()? + (f + 1.0)?.relu()?.mean_all()?)?;
        let grads = d_loss.backward()?;
        d_opt.step(&grads)?;
        d_steps += 1;
        d_engine.after_optimizer_step(d_steps, &mut d_params, &grads, None)?;
        // generator step
        if t.is_multiple_of(run.n_critic) {
            let z = normal(run.gen_batch, run.latent, &mut noise)?;
            let g_loss = d
                .forward(&generate(&g, &z, true)?, true)?
                .mean_all()?
                .neg()?;
            let g_grads = g_loss.backward()?;
            g_opt.step(&g_grads)?;
            g_step += 1;
            g_engine.after_optimizer_step(g_step, &mut g_params, &g_grads, None)?;
            if run.explore != Explore::Static && g_step.is_multiple_of(run.update_frequency) {
                let rate =
                    run.schedule
                        .rate(run.death_rate, g_step, d_steps, run.g_steps, run.n_critic);
                updates.push((g_step, rate));
                if !g_params.is_empty() {
                    let ctx = UpdateContext {
                        grads: Some(&g_grads),
                        momentum: None,
                    };
                    g_engine.prune_and_regrow_now(g_step, rate, &mut g_params, &ctx)?;
                }
                if run.explore == Explore::GD && !d_params.is_empty() {
                    d_engine.prune_and_regrow_now(
                        g_step,
                        rate,
                        &mut d_params,
                        &UpdateContext::default(),
                    )?;
                }
            }
            if let Some(ema) = &mut ema {
                ema.update(&g_vm, &g_params)?;
            }
        }
        t += 1;
    }
    // evaluation on a fresh copy holding the average (or the generator itself)
    let (eval_vm, eval_g) = blank_generator(run)?;
    match &ema {
        Some(ema) => ema.copy_into(&eval_vm)?,
        None => sparse_core::ModelState::capture(&g_vm)?.restore(&eval_vm)?,
    }
    let samples = sample_points(run, &eval_g, seed)?;
    let flat: Vec<f64> = samples.iter().flatten().copied().collect();
    let modes: Vec<Vec<f64>> = mixture.modes().iter().map(|m| m.to_vec()).collect();
    let coverage = ModeCoverage::measure(&flat, 2, &modes, mixture.std(), 3.0, 0.008)?;
    let masks = g_params
        .iter()
        .map(|p| (p.name.clone(), p.mask.clone()))
        .collect();
    let outcome = MixtureOutcome {
        energy_distance: energy_distance_to_mixture(&samples, mixture),
        mmd: mmd_to_mixture(&samples, mixture, 0.1),
        modes_covered: coverage.modes_covered,
        high_quality: coverage.high_quality,
        itop_g: g_engine.fired_masks().rate(),
        itop_d: d_engine.fired_masks().rate(),
        nnz_g: (nnz(&g_params), nnz_g0),
        nnz_d: (nnz(&d_params), nnz_d0),
        updates,
    };
    Ok((
        outcome,
        TrainedGenerator {
            varmap: eval_vm,
            model: eval_g,
            masks,
        },
    ))
}
