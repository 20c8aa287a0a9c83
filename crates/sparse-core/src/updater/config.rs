//! The validated dynamic-sparsity configuration and its checked builder.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::grow::{GrowthInit, GrowthMethod, GrowthRegion};
use crate::prune::{GradualPruning, PruneMethod};
use crate::redistribution::Redistribution;
use crate::schedule::DeathRate;
use crate::validate::{check_finite, check_nonzero};

/// A validated dynamic-sparsity configuration; build it with
/// [`DynamicSparsity::builder`] or a preset.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicSparsity {
    pub(super) prune: PruneMethod,
    pub(super) growth: GrowthMethod,
    pub(super) death_rate: DeathRate,
    pub(super) period: Option<usize>,
    pub(super) start_step: Option<usize>,
    pub(super) end_step: Option<usize>,
    pub(super) gradual: Option<GradualPruning>,
    pub(super) regions: BTreeMap<String, GrowthRegion>,
    pub(super) mask_momentum: bool,
    pub(super) growth_init: GrowthInit,
    pub(super) redistribution: Redistribution,
    pub(super) seed: u64,
}

impl DynamicSparsity {
    /// A builder with the official ITOP-lineage defaults: magnitude pruning, gradient
    /// growth, constant death rate 0.5, static topology (no period), momentum masking
    /// on, zero-initialised growth, seed 0.
    pub fn builder() -> DynamicSparsityBuilder {
        DynamicSparsityBuilder {
            config: Self {
                prune: PruneMethod::Magnitude,
                growth: GrowthMethod::Gradient,
                death_rate: DeathRate::Constant(0.5),
                period: None,
                start_step: None,
                end_step: None,
                gradual: None,
                regions: BTreeMap::new(),
                mask_momentum: true,
                growth_init: GrowthInit::Zero,
                redistribution: Redistribution::PerLayer,
                seed: 0,
            },
        }
    }

    /// The pruning criterion.
    pub fn prune_method(&self) -> PruneMethod {
        self.prune
    }

    /// The growth criterion.
    pub fn growth_method(&self) -> GrowthMethod {
        self.growth
    }

    /// The death-rate schedule.
    pub fn death_rate(&self) -> DeathRate {
        self.death_rate
    }

    /// Steps between prune-and-regrow updates (`None` = static).
    pub fn period(&self) -> Option<usize> {
        self.period
    }

    /// The first step at which prune-and-regrow may run, if any.
    pub fn start_step(&self) -> Option<usize> {
        self.start_step
    }

    /// The last step at which prune-and-regrow may run, if any.
    pub fn end_step(&self) -> Option<usize> {
        self.end_step
    }

    /// The gradual-pruning schedule, if any.
    pub fn gradual(&self) -> Option<&GradualPruning> {
        self.gradual.as_ref()
    }

    /// The growth regions by parameter name.
    pub fn regions(&self) -> &BTreeMap<String, GrowthRegion> {
        &self.regions
    }

    /// Whether optimizer momentum is masked with the weights.
    pub fn masks_momentum(&self) -> bool {
        self.mask_momentum
    }

    /// The value grown weights start from.
    pub fn growth_init(&self) -> GrowthInit {
        self.growth_init
    }

    /// How regrowth is shared out.
    pub fn redistribution(&self) -> Redistribution {
        self.redistribution
    }

    /// The seed of the engine's random generator.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether `step` (1-based) is a prune-and-regrow step.
    pub fn is_update_step(&self, step: usize) -> bool {
        self.period.is_some_and(|p| step.is_multiple_of(p))
            && self.start_step.is_none_or(|start| step >= start)
            && self.end_step.is_none_or(|end| step <= end)
    }
}

/// Checked builder of [`DynamicSparsity`]; [`DynamicSparsityBuilder::build`]
/// validates every hyperparameter and names the offending one.
#[derive(Debug, Clone)]
pub struct DynamicSparsityBuilder {
    pub(super) config: DynamicSparsity,
}

impl DynamicSparsityBuilder {
    /// The pruning criterion.
    pub fn prune(mut self, method: PruneMethod) -> Self {
        self.config.prune = method;
        self
    }

    /// The growth criterion.
    pub fn growth(mut self, method: GrowthMethod) -> Self {
        self.config.growth = method;
        self
    }

    /// The death-rate schedule.
    pub fn death_rate(mut self, schedule: DeathRate) -> Self {
        self.config.death_rate = schedule;
        self
    }

    /// Steps between prune-and-regrow updates; `None` = static topology. Must be > 0.
    pub fn period(mut self, period: Option<usize>) -> Self {
        self.config.period = period;
        self
    }

    /// No prune-and-regrow before this step (GraNet's code waits for
    /// `init_prune_epoch`; its preset sets this to the gradual schedule's start).
    pub fn start_step(mut self, start_step: Option<usize>) -> Self {
        self.config.start_step = start_step;
        self
    }

    /// No prune-and-regrow after this step (RigL stops at 75 % of training).
    pub fn end_step(mut self, end_step: Option<usize>) -> Self {
        self.config.end_step = end_step;
        self
    }

    /// Gradual magnitude pruning on its own cubic schedule.
    pub fn gradual(mut self, gradual: GradualPruning) -> Self {
        self.config.gradual = Some(gradual);
        self
    }

    /// Restricts growth in parameter `name` to `region`.
    pub fn region(mut self, name: impl Into<String>, region: GrowthRegion) -> Self {
        self.config.regions.insert(name.into(), region);
        self
    }

    /// Whether optimizer momentum buffers are masked after each step (ITOP, GraNet,
    /// SLaK: yes; Dettmers, Random_Pruning CIFAR, STU-GAN: no).
    pub fn mask_momentum(mut self, on: bool) -> Self {
        self.config.mask_momentum = on;
        self
    }

    /// How removed weights are shared out for regrowth (default per layer).
    pub fn redistribution(mut self, redistribution: Redistribution) -> Self {
        self.config.redistribution = redistribution;
        self
    }

    /// The value newly grown weights start from.
    pub fn growth_init(mut self, init: GrowthInit) -> Self {
        self.config.growth_init = init;
        self
    }

    /// Seed of the engine's `ChaCha8Rng`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Validates and returns the configuration.
    pub fn build(self) -> Result<DynamicSparsity> {
        let c = self.config;
        c.death_rate.validate()?;
        c.prune.validate()?;
        if let Some(p) = c.period {
            check_nonzero("period", p)?;
        }
        if let Some(g) = &c.gradual {
            g.validate()?;
        }
        if let GrowthInit::Value(v) = c.growth_init {
            check_finite("growth_init", f64::from(v))?;
        }
        Ok(c)
    }
}
