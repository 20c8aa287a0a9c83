//! One GAN run as the 2021 author code trains it: hinge losses, `n_critic`
//! discriminator steps per generator step, Adam (2e-4, betas (0, 0.9)) for both, two
//! sparse registries and two engines with no period of their own. Every
//! `update_frequency` generator steps the crate asks the exploring networks for one
//! prune-and-regrow at the scheduled death rate (G by the dense gradient of that
//! step, D at random), and SEMA averages the generator after each of its steps.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use sparse_core::optim::trainable_vars;
use sparse_core::updater::UpdateContext;
use sparse_core::{
    Adam, AdamConfig, AllocationConfig, DynamicSparsity, GrowthInit, GrowthMethod, Mask,
    ModelState, Optimizer, SelectionPolicy, SparseEma, SparseParams, SparsityEngine,
};
use sparse_repro::rng::{derive_rng, derive_seed, streams};

use crate::config::{Explore, GanArch, GanConfig, MaskScope};
use crate::data::GanData;
use crate::error::Result;
use crate::models::{Critic, Generator};

/// Adam's betas, as the official scripts set them.
pub const BETAS: (f64, f64) = (0.0, 0.9);
/// The share of the last generator steps whose losses the outcome averages.
pub const LOSS_TAIL: f64 = 0.05;

/// What training measured, besides the samples' quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingStats {
    /// Share of the generator's masked positions ever active (its ITOP rate).
    pub itop_g: f64,
    /// The same for the discriminator.
    pub itop_d: f64,
    /// Non-zeros of the generator's masked weights at the end, and at the start.
    pub nnz_g: (usize, usize),
    /// Non-zeros of the discriminator's masked weights at the end, and at the start.
    pub nnz_d: (usize, usize),
    /// Elements of the generator's masked weights (0 when dense).
    pub masked_g: usize,
    /// Elements of the discriminator's masked weights (0 when dense).
    pub masked_d: usize,
    /// The death rate of every topology update, with its generator step.
    pub updates: Vec<(usize, f64)>,
    /// Mean discriminator loss over the last [`LOSS_TAIL`] of the run.
    pub d_loss_tail: f64,
    /// Mean generator loss over the last [`LOSS_TAIL`] of the run.
    pub g_loss_tail: f64,
}

impl TrainingStats {
    /// The generator's initial density over its masked weights (1 when dense).
    pub fn density_g(&self) -> f64 {
        if self.masked_g == 0 {
            1.0
        } else {
            self.nnz_g.1 as f64 / self.masked_g as f64
        }
    }
}

/// A trained run: the evaluated generator (the SEMA average, or the generator
/// itself) in its own `VarMap`, its masks and the training statistics.
pub struct TrainedGan {
    /// Every tensor of the evaluated generator.
    pub varmap: VarMap,
    /// The evaluated generator over `varmap`.
    pub generator: Generator,
    /// The generator's final masks.
    pub masks: BTreeMap<String, Mask>,
    /// What training measured.
    pub stats: TrainingStats,
}

impl std::fmt::Debug for TrainedGan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainedGan")
            .field("generator", &self.generator)
            .field("masks", &self.masks.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn nnz(params: &SparseParams) -> usize {
    params.iter().map(|p| p.mask.nnz()).sum()
}

fn masked(params: &SparseParams) -> usize {
    params.iter().map(|p| p.mask.numel()).sum()
}

/// `n` latent codes `[n, latent]` of standard normal draws from `rng`.
pub fn latent_codes(n: usize, latent: usize, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let values: Vec<f32> = (0..n * latent)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    Ok(Tensor::from_vec(values, (n, latent), &Device::Cpu)?)
}

/// The selection of masked weights for `scope`.
pub fn mask_policy(scope: MaskScope) -> Result<SelectionPolicy> {
    let ndims: &[usize] = match scope {
        MaskScope::ConvOnly => &[4],
        MaskScope::AllWeights => &[2, 4],
    };
    Ok(SelectionPolicy::builder()
        .ndims(ndims.iter().copied())
        .build()?)
}

/// ERK masks at `density` over `varmap`'s weights of `scope` (none when dense).
fn masks(
    varmap: &VarMap,
    density: Option<f64>,
    scope: MaskScope,
    rng: &mut ChaCha8Rng,
) -> Result<SparseParams> {
    let Some(density) = density else {
        return Ok(SparseParams::new());
    };
    Ok(AllocationConfig::builder()
        .density(density)
        .build()?
        .init_sparse_params(varmap, &mask_policy(scope)?, None, rng)?)
}

/// An engine with no period: the loop asks for each update. A weight pruned and
/// regrown in the same update keeps its value (`GrowthInit::Previous`), as the
/// author code's `apply_mask` leaves it; moments stay unmasked, as official.
fn engine(params: &SparseParams, growth: GrowthMethod, seed: u64) -> Result<SparsityEngine> {
    let config = DynamicSparsity::static_sparse()
        .growth(growth)
        .growth_init(GrowthInit::Previous)
        .mask_momentum(false)
        .seed(seed)
        .build()?;
    Ok(SparsityEngine::new(config, params)?)
}

/// A generator of `arch`'s shape with arbitrary weights, to load a checkpoint into.
pub fn blank_generator(arch: &GanArch) -> Result<(VarMap, Generator)> {
    Generator::build(arch, &mut derive_rng(0, "blank"))
}

fn check_data(config: &GanConfig, data: &GanData) -> Result<()> {
    if config.arch.image() != data.image() {
        let describe = |image: Option<(usize, usize)>| match image {
            Some((c, s)) => format!("{c}x{s}x{s} images"),
            None => "2-D points".to_string(),
        };
        return Err(sparse_repro::HarnessError::invalid(
            "arch",
            describe(config.arch.image()),
            format!("the data set has {}", describe(data.image())),
        )
        .into());
    }
    Ok(())
}

fn tail_mean(values: &[f64]) -> f64 {
    let n = ((values.len() as f64 * LOSS_TAIL).ceil() as usize).clamp(1, values.len().max(1));
    let tail = &values[values.len().saturating_sub(n)..];
    if tail.is_empty() {
        f64::NAN
    } else {
        tail.iter().sum::<f64>() / tail.len() as f64
    }
}

/// Trains a GAN on `data` with `config`'s settings and `seed`.
pub fn train(config: &GanConfig, data: &GanData, seed: u64) -> Result<TrainedGan> {
    config.validate()?;
    check_data(config, data)?;
    let mut init = derive_rng(seed, streams::INIT);
    let (g_vm, g) = Generator::build(&config.arch, &mut init)?;
    let d = Critic::build(&config.arch, config.spectral_norm, &mut init)?;
    let scope = config.mask_scope;
    let mut g_params = masks(
        &g_vm,
        config.density_g,
        scope,
        &mut derive_rng(seed, "g-mask"),
    )?;
    let mut d_params = masks(
        d.varmap(),
        config.density_d,
        scope,
        &mut derive_rng(seed, "d-mask"),
    )?;
    let (nnz_g0, nnz_d0) = (nnz(&g_params), nnz(&d_params));
    let mut g_engine = engine(
        &g_params,
        GrowthMethod::Gradient,
        derive_seed(seed, "g-regrow"),
    )?;
    let d_growth = if config.exact_d_growth {
        GrowthMethod::RandomExact
    } else {
        GrowthMethod::Random
    };
    let mut d_engine = engine(&d_params, d_growth, derive_seed(seed, "d-regrow"))?;
    let adam = || AdamConfig::adam(config.lr).betas(BETAS.0, BETAS.1).build();
    let mut g_opt = Adam::from_params(trainable_vars(&g_vm), adam()?)?;
    let mut d_opt = Adam::from_params(trainable_vars(d.varmap()), adam()?)?;
    let mut ema = match config.sema {
        Some(decay) => Some(SparseEma::new(&g_vm, decay)?),
        None => None,
    };
    let mut real = data.sampler(derive_rng(seed, "data"));
    let mut noise = derive_rng(seed, "noise");
    let latent = config.arch.latent();
    let (mut d_steps, mut g_step, mut updates) = (0usize, 0usize, Vec::new());
    let (mut d_losses, mut g_losses) = (Vec::new(), Vec::new());
    let mut t = 0usize;
    while g_step < config.g_steps {
        // discriminator step
        let x = real.next_batch(config.dis_batch)?;
        let z = latent_codes(x.dim(0)?, latent, &mut noise)?;
        let fake = g.forward(&z, true)?.detach();
        let r = d.forward(&x, true)?;
        let f = d.forward(&fake, true)?;
        let d_loss = ((1.0 - r)?.relu()?.mean_all()? + (f + 1.0)?.relu()?.mean_all()?)?;
        let grads = d_loss.backward()?;
        d_opt.step(&grads)?;
        d_steps += 1;
        d_engine.after_optimizer_step(d_steps, &mut d_params, &grads, None)?;
        // generator step
        if t.is_multiple_of(config.n_critic) {
            d_losses.push(f64::from(d_loss.to_scalar::<f32>()?));
            let z = latent_codes(config.gen_batch, latent, &mut noise)?;
            let g_loss = d.forward(&g.forward(&z, true)?, true)?.mean_all()?.neg()?;
            let g_grads = g_loss.backward()?;
            g_opt.step(&g_grads)?;
            g_losses.push(f64::from(g_loss.to_scalar::<f32>()?));
            g_step += 1;
            g_engine.after_optimizer_step(g_step, &mut g_params, &g_grads, None)?;
            if config.explore != Explore::Static && g_step.is_multiple_of(config.update_frequency) {
                let rate = config.schedule.rate(
                    config.death_rate,
                    g_step,
                    d_steps,
                    config.g_steps,
                    config.n_critic,
                );
                updates.push((g_step, rate));
                if !g_params.is_empty() {
                    let ctx = UpdateContext {
                        grads: Some(&g_grads),
                        momentum: None,
                    };
                    g_engine.prune_and_regrow_now(g_step, rate, &mut g_params, &ctx)?;
                }
                if config.explore == Explore::GD && !d_params.is_empty() {
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
    let (eval_vm, eval_g) = blank_generator(&config.arch)?;
    match &ema {
        Some(ema) => ema.copy_into(&eval_vm)?,
        None => ModelState::capture(&g_vm)?.restore(&eval_vm)?,
    }
    let stats = TrainingStats {
        itop_g: g_engine.fired_masks().rate(),
        itop_d: d_engine.fired_masks().rate(),
        nnz_g: (nnz(&g_params), nnz_g0),
        nnz_d: (nnz(&d_params), nnz_d0),
        masked_g: masked(&g_params),
        masked_d: masked(&d_params),
        updates,
        d_loss_tail: tail_mean(&d_losses),
        g_loss_tail: tail_mean(&g_losses),
    };
    Ok(TrainedGan {
        varmap: eval_vm,
        generator: eval_g,
        masks: g_params
            .iter()
            .map(|p| (p.name.clone(), p.mask.clone()))
            .collect(),
        stats,
    })
}
