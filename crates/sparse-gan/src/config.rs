//! One arm's settings: the networks, the two sparsity budgets, the schedule and the
//! training loop's hyperparameters; [`GanConfig::validate`] names the field that is
//! out of range before any training starts.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::schedule::DeathSchedule;

/// The generator and discriminator of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GanArch {
    /// ReLU MLPs on 2-D points (the mixtures): `latent → width × depth → 2` and
    /// `2 → width × depth → 1`.
    Mlp {
        /// Hidden units of both networks.
        width: usize,
        /// Hidden layers of both networks.
        depth: usize,
        /// Latent dimension.
        latent: usize,
    },
    /// A small DCGAN for grey or colour images of side `4 · bottom`: G is a linear
    /// layer to `2·width` maps of `bottom × bottom`, two nearest ×2 up-samplings each
    /// followed by a 3×3 convolution (BatchNorm and ReLU between), tanh; D is two
    /// stride-2 3×3 convolutions and a linear critic.
    Dcgan {
        /// Channels of G's last hidden maps and of D's first.
        width: usize,
        /// Latent dimension.
        latent: usize,
        /// Side of G's first maps.
        bottom: usize,
        /// Image channels.
        image_channels: usize,
    },
    /// The official `sngan_cifar10`: G a linear layer and three up-sampling residual
    /// blocks from `bottom × bottom` (side `8 · bottom`), D an optimised down-sampling
    /// block, a down-sampling block and two plain residual blocks, ReLU, a sum over
    /// space and a bias-free linear critic.
    SnGan {
        /// G's channels.
        gf: usize,
        /// D's channels.
        df: usize,
        /// Latent dimension.
        latent: usize,
        /// Side of G's first maps.
        bottom: usize,
        /// Image channels.
        image_channels: usize,
    },
}

impl GanArch {
    /// The latent dimension.
    pub fn latent(&self) -> usize {
        match *self {
            GanArch::Mlp { latent, .. }
            | GanArch::Dcgan { latent, .. }
            | GanArch::SnGan { latent, .. } => latent,
        }
    }

    /// `(channels, side)` of the generated images; `None` for the 2-D point GAN.
    pub fn image(&self) -> Option<(usize, usize)> {
        match *self {
            GanArch::Mlp { .. } => None,
            GanArch::Dcgan {
                bottom,
                image_channels,
                ..
            } => Some((image_channels, 4 * bottom)),
            GanArch::SnGan {
                bottom,
                image_channels,
                ..
            } => Some((image_channels, 8 * bottom)),
        }
    }
}

/// Which weights carry masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskScope {
    /// Convolutions only, as the official code masks (every 4-D parameter).
    ConvOnly,
    /// Every weight matrix and convolution (what an MLP GAN must do).
    AllWeights,
}

/// Which networks change their topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Explore {
    /// Fixed masks (static sparse training).
    Static,
    /// The generator explores (gradient growth), the discriminator is fixed.
    #[serde(rename = "g")]
    G,
    /// Both explore (the discriminator by random growth).
    #[serde(rename = "gd")]
    GD,
}

/// One arm's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanConfig {
    /// The networks.
    pub arch: GanArch,
    /// Which weights carry masks.
    pub mask_scope: MaskScope,
    /// Density of the generator's masked weights (`None`: dense).
    pub density_g: Option<f64>,
    /// Density of the discriminator's masked weights (`None`: dense).
    pub density_d: Option<f64>,
    /// Which networks explore.
    pub explore: Explore,
    /// Generator steps (the official `max_iter`).
    pub g_steps: usize,
    /// Discriminator steps per generator step.
    pub n_critic: usize,
    /// Real (and fake) samples per discriminator step.
    pub dis_batch: usize,
    /// Fake samples per generator step.
    pub gen_batch: usize,
    /// Adam's learning rate (both networks; betas (0, 0.9) as official).
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
    /// Generated samples the evaluation scores.
    pub eval_samples: usize,
}

fn bad(name: &'static str, value: impl ToString, why: &str) -> crate::Error {
    sparse_repro::HarnessError::invalid(name, value, why).into()
}

impl GanConfig {
    /// Checks every setting; errors name the field.
    pub fn validate(&self) -> Result<()> {
        for (name, d) in [("density_g", self.density_g), ("density_d", self.density_d)] {
            if let Some(d) = d
                && !(d > 0.0 && d <= 1.0)
            {
                return Err(bad(name, d, "must lie in (0, 1]"));
            }
        }
        let mut sizes = vec![
            ("latent", self.arch.latent()),
            ("g_steps", self.g_steps),
            ("n_critic", self.n_critic),
            ("dis_batch", self.dis_batch),
            ("gen_batch", self.gen_batch),
            ("update_frequency", self.update_frequency),
            ("eval_samples", self.eval_samples),
        ];
        match self.arch {
            GanArch::Mlp { width, .. } => sizes.push(("width", width)),
            GanArch::Dcgan {
                width,
                bottom,
                image_channels,
                ..
            } => sizes.extend([
                ("width", width),
                ("bottom", bottom),
                ("image_channels", image_channels),
            ]),
            GanArch::SnGan {
                gf,
                df,
                bottom,
                image_channels,
                ..
            } => sizes.extend([
                ("gf", gf),
                ("df", df),
                ("bottom", bottom),
                ("image_channels", image_channels),
            ]),
        }
        for (name, v) in sizes {
            if v == 0 {
                return Err(bad(name, 0, "must be positive"));
            }
        }
        if matches!(self.arch, GanArch::Mlp { .. }) && self.mask_scope == MaskScope::ConvOnly {
            return Err(bad(
                "mask_scope",
                "conv-only",
                "an MLP GAN has no convolutions to mask: use all-weights",
            ));
        }
        if self.explore != Explore::Static && self.density_g.is_none() {
            return Err(bad(
                "explore",
                format!("{:?}", self.explore),
                "a dense generator has no topology to explore: set density_g",
            ));
        }
        if self.explore == Explore::GD && self.density_d.is_none() {
            return Err(bad(
                "explore",
                "GD",
                "a dense discriminator has no topology to explore: set density_d",
            ));
        }
        if self.explore != Explore::Static && self.update_frequency > self.g_steps {
            return Err(bad(
                "update_frequency",
                self.update_frequency,
                "exceeds g_steps: the masks would never change",
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(bad("lr", self.lr, "must be positive"));
        }
        if !(self.death_rate > 0.0 && self.death_rate < 1.0) {
            return Err(bad("death_rate", self.death_rate, "must lie in (0, 1)"));
        }
        if let Some(decay) = self.sema
            && !(0.0..1.0).contains(&decay)
        {
            return Err(bad("sema", decay, "must lie in [0, 1)"));
        }
        Ok(())
    }

    /// The number of topology updates the run makes (one every `update_frequency`
    /// generator steps when exploring).
    pub fn topology_updates(&self) -> usize {
        if self.explore == Explore::Static {
            0
        } else {
            self.g_steps / self.update_frequency
        }
    }
}
