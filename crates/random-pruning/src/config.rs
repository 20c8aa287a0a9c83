//! One training run's configuration, with a checked builder.
//!
//! Defaults are the official CIFAR recipe of the paper's code: SGD with Nesterov
//! momentum 0.9, weight decay 5e-4, learning rate 0.1 divided by 10 at 1/2 and 3/4
//! of training, 10 % of the training set held out for validation, ERK allocation
//! with Bernoulli sampling, and the mask fixed for the whole run.

use serde::{Deserialize, Serialize};
use sparse_core::lr::MultiStep;
use sparse_core::{Allocation, AllocationConfig, Sampling};
use sparse_repro::models::Architecture;

use crate::error::{Error, Result};

/// The layer-wise allocations the paper compares (CLI names in kebab case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AllocationKind {
    /// Every layer at the global density.
    Uniform,
    /// First layer dense, classifier at least 0.2 (official, slightly under budget).
    UniformPlus,
    /// Erdős–Rényi from `(n_out, n_in)`.
    Er,
    /// Erdős–Rényi-Kernel.
    Erk,
    /// Layer ratios of SNIP (scores at a Xavier re-initialisation), random positions.
    Snip,
    /// Layer ratios of GraSP, random positions.
    Grasp,
}

impl AllocationKind {
    /// The sparse-core allocation it stands for.
    pub fn to_allocation(self) -> Allocation {
        match self {
            AllocationKind::Uniform => Allocation::Uniform,
            AllocationKind::UniformPlus => Allocation::uniform_plus(),
            AllocationKind::Er => Allocation::er(),
            AllocationKind::Erk => Allocation::erk(),
            AllocationKind::Snip => Allocation::SnipRatio,
            AllocationKind::Grasp => Allocation::GraspRatio,
        }
    }

    /// The name used in reports (`uniform`, `uniform+`, `ER`, `ERK`, `SNIP-ratio`, `GraSP-ratio`).
    pub fn label(self) -> &'static str {
        match self {
            AllocationKind::Uniform => "uniform",
            AllocationKind::UniformPlus => "uniform+",
            AllocationKind::Er => "ER",
            AllocationKind::Erk => "ERK",
            AllocationKind::Snip => "SNIP-ratio",
            AllocationKind::Grasp => "GraSP-ratio",
        }
    }
}

/// Dense training, or static sparse training from a random mask.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Sparsity {
    /// Every weight trained.
    Dense,
    /// Random mask at initialisation, fixed for the whole run.
    Random {
        /// Kept weights over prunable weights, in `(0, 1]`.
        density: f64,
        /// How the density is split across layers.
        allocation: AllocationKind,
        /// Whether layer counts are exact (`true`) or Bernoulli as in the official code.
        exact: bool,
    },
}

impl Sparsity {
    /// The global density (1 for dense).
    pub fn density(&self) -> f64 {
        match self {
            Sparsity::Dense => 1.0,
            Sparsity::Random { density, .. } => *density,
        }
    }

    /// `dense`, or e.g. `ERK@0.10`.
    pub fn label(&self) -> String {
        match self {
            Sparsity::Dense => "dense".into(),
            Sparsity::Random {
                density,
                allocation,
                ..
            } => format!("{}@{density:.2}", allocation.label()),
        }
    }

    /// The sparse-core allocation config, `None` for dense.
    pub fn allocation_config(&self) -> Result<Option<AllocationConfig>> {
        match *self {
            Sparsity::Dense => Ok(None),
            Sparsity::Random {
                density,
                allocation,
                exact,
            } => Ok(Some(
                AllocationConfig::builder()
                    .density(density)
                    .allocation(allocation.to_allocation())
                    .sampling(if exact {
                        Sampling::ExactCount
                    } else {
                        Sampling::Bernoulli
                    })
                    .build()?,
            )),
        }
    }
}

/// Everything one training run needs; build it with [`TrainConfig::builder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The model.
    pub architecture: Architecture,
    /// Dense or random static sparse.
    pub sparsity: Sparsity,
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Initial learning rate (divided by 10 at 1/2 and 3/4 of training).
    pub learning_rate: f64,
    /// SGD momentum (Nesterov).
    pub momentum: f64,
    /// Coupled L2 weight decay on weights (not on biases or norms).
    pub weight_decay: f64,
    /// Share of the training set held out for model selection.
    pub validation_fraction: f64,
    /// Seed of every random draw of the run.
    pub seed: u64,
}

impl TrainConfig {
    /// A builder with the official defaults for `architecture`.
    pub fn builder(architecture: Architecture) -> TrainConfigBuilder {
        TrainConfigBuilder {
            config: TrainConfig {
                architecture,
                sparsity: Sparsity::Dense,
                epochs: 160,
                batch_size: 128,
                learning_rate: 0.1,
                momentum: 0.9,
                weight_decay: 5e-4,
                validation_fraction: 0.1,
                seed: 17,
            },
        }
    }

    /// The epochs at which the learning rate is divided by 10: 1/2 and 3/4 of
    /// training (merged when a very short run makes them coincide).
    pub fn lr_milestones(&self) -> Vec<u64> {
        let mut m = vec![(self.epochs / 2) as u64, (self.epochs * 3 / 4) as u64];
        m.retain(|&e| e > 0);
        m.dedup();
        m
    }

    /// The learning-rate schedule: `learning_rate`, divided by 10 at each milestone.
    pub fn lr_schedule(&self) -> Result<MultiStep> {
        Ok(MultiStep::new(
            self.learning_rate,
            0.1,
            self.lr_milestones(),
        )?)
    }
}

/// Checked builder of a [`TrainConfig`]; [`TrainConfigBuilder::build`] validates.
#[derive(Debug, Clone)]
pub struct TrainConfigBuilder {
    config: TrainConfig,
}

impl TrainConfigBuilder {
    /// Dense or random static sparse (default dense).
    pub fn sparsity(mut self, sparsity: Sparsity) -> Self {
        self.config.sparsity = sparsity;
        self
    }

    /// Passes over the training set (default 160).
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.config.epochs = epochs;
        self
    }

    /// Samples per step (default 128).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.config.batch_size = batch_size;
        self
    }

    /// Initial learning rate (default 0.1).
    pub fn learning_rate(mut self, lr: f64) -> Self {
        self.config.learning_rate = lr;
        self
    }

    /// Nesterov momentum (default 0.9).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.config.momentum = momentum;
        self
    }

    /// L2 weight decay (default 5e-4).
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.config.weight_decay = wd;
        self
    }

    /// Held-out share of the training set (default 0.1).
    pub fn validation_fraction(mut self, fraction: f64) -> Self {
        self.config.validation_fraction = fraction;
        self
    }

    /// Seed (default 17, as the official README).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Validates every field; the error names the parameter.
    pub fn build(self) -> Result<TrainConfig> {
        let c = self.config;
        let bad = |name: &'static str, value: String, reason: &str| {
            Err(Error::InvalidConfig {
                name,
                value,
                reason: reason.to_string(),
            })
        };
        if c.epochs == 0 {
            return bad("epochs", c.epochs.to_string(), "must be at least 1");
        }
        if c.batch_size == 0 {
            return bad("batch_size", c.batch_size.to_string(), "must be at least 1");
        }
        if !(c.learning_rate.is_finite() && c.learning_rate > 0.0) {
            return bad("learning_rate", c.learning_rate.to_string(), "must be > 0");
        }
        if !(0.0..1.0).contains(&c.momentum) {
            return bad("momentum", c.momentum.to_string(), "must lie in [0, 1)");
        }
        if !(c.weight_decay.is_finite() && c.weight_decay >= 0.0) {
            return bad("weight_decay", c.weight_decay.to_string(), "must be >= 0");
        }
        if !(c.validation_fraction > 0.0 && c.validation_fraction < 1.0) {
            return bad(
                "validation_fraction",
                c.validation_fraction.to_string(),
                "must lie in (0, 1)",
            );
        }
        if c.architecture.width() == 0 {
            return bad("width", "0".into(), "must be at least 1");
        }
        if let Architecture::ResNet { depth, .. } = c.architecture
            && (depth < 8 || !(depth - 2).is_multiple_of(6))
        {
            return bad(
                "depth",
                depth.to_string(),
                "a CIFAR ResNet has depth 6n+2, n >= 1",
            );
        }
        // Validates density, allocation, sampling and the schedule through sparse-core.
        c.sparsity.allocation_config()?;
        c.lr_schedule()?;
        Ok(c)
    }
}
