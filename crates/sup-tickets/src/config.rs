//! One arm's configuration, with a checked builder.
//!
//! Defaults are the official CIFAR command of `main_suptickets.py`: 250 epochs of
//! which the last `cycle_rate` = 10 % (cut to whole cycles of 8 epochs) are the
//! cyclic phase; SGD with momentum 0.9 and weight decay 5e-4 at 0.1, divided by 10
//! at 1/2 and 3/4 of the pre-training epochs; ERK at density 0.05; a mask update
//! every 1000 steps with a constant death rate 0.5; at each cycle start a
//! re-exploration of 50 % of each layer; a triangular learning rate between
//! `lr_1` = 0.001 and `lr_2` = 0.005; CAA superposition.

use serde::{Deserialize, Serialize};
use sparse_core::lr::{MultiStep, Triangular};
use sparse_core::{AllocationConfig, Sampling};
use sparse_repro::HarnessError;
use sparse_repro::models::Architecture;
use sparse_repro::splits::SplitSizes;

use crate::error::Result;

/// The dynamic-sparse-training method of phase 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DstMethod {
    /// GraNet: gradual magnitude pruning from `initial_density` to the final density
    /// over epochs `0..final_prune_epoch`, with prune-and-regrow by gradient.
    GraNet {
        /// Density at initialisation (official: 0.5).
        initial_density: f64,
        /// The epoch the gradual pruning ends (official: 110 of 226).
        final_prune_epoch: usize,
    },
    /// RigL: prune-and-regrow by gradient at the final density from the start.
    Rigl,
    /// SET: prune-and-regrow at random at the final density (the engine's SET; the
    /// official core regrows by gradient whatever `--growth` says, so its "SET" runs
    /// RigL). Re-exploration still regrows by gradient.
    Set,
}

impl DstMethod {
    /// `granet` or `rigl`.
    pub fn label(&self) -> &'static str {
        match self {
            DstMethod::GraNet { .. } => "granet",
            DstMethod::Rigl => "rigl",
            DstMethod::Set => "set",
        }
    }
}

/// How a ticket joins the superposition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Superposition {
    /// Cumulative arithmetic average: `S_k = (1 − 1/(k+1))·S_{k−1} + 1/(k+1)·T_k`.
    Caa,
    /// Cumulative interpolated moving average: `S_k = (1 − f)·S_{k−1} + f·T_k`.
    Cima {
        /// The new ticket's weight `f` (official default 0.5).
        factor: f64,
    },
}

impl Superposition {
    /// The weight of ticket `k` (1-based) against the previous superposition.
    pub fn ticket_weight(&self, k: usize) -> f64 {
        match self {
            Superposition::Caa => 1.0 / (k as f64 + 1.0),
            Superposition::Cima { factor } => *factor,
        }
    }
}

/// The split of the epochs into pre-training and cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochSplit {
    /// Epochs of phase 1.
    pub pre: usize,
    /// Epochs of the cyclic phase (a multiple of the cycle).
    pub cyclic: usize,
    /// Tickets (cycles).
    pub tickets: usize,
}

/// The official `epochs_calculation`, in floating point as Python does it:
/// `cyc = E·ρ`, cut down to a multiple of `c` (none when below `c`), then
/// `pre = E − cyc` and `M = cyc / c`.
///
/// ```
/// use sup_tickets::config::epoch_split;
/// let s = epoch_split(250, 0.1, 8);
/// assert_eq!((s.pre, s.cyclic, s.tickets), (226, 24, 3));
/// assert_eq!(epoch_split(30, 0.2, 2).pre, 24);
/// assert_eq!(epoch_split(20, 0.1, 4).tickets, 0);
/// ```
pub fn epoch_split(epochs: usize, cycle_rate: f64, cycle: usize) -> EpochSplit {
    let c = cycle as f64;
    let mut cyc = epochs as f64 * cycle_rate;
    if cycle == 0 || cyc < c {
        return EpochSplit {
            pre: epochs,
            cyclic: 0,
            tickets: 0,
        };
    }
    if cyc % c != 0.0 {
        cyc -= cyc % c;
    }
    let cyclic = cyc as usize;
    EpochSplit {
        pre: epochs - cyclic,
        cyclic,
        tickets: cyclic / cycle,
    }
}

/// One arm: a model, its data, the DST method and the cyclic phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupConfig {
    architecture: Architecture,
    data: SplitSizes,
    method: DstMethod,
    density: f64,
    exact_count: bool,
    epochs: usize,
    cycle_rate: f64,
    cycle: usize,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    batch_size: usize,
    update_period: usize,
    death_rate: f64,
    re_explore: Option<f64>,
    lr_1: f64,
    lr_2: f64,
    superposition: Superposition,
}

impl SupConfig {
    /// A builder with the official CIFAR command for `architecture` and `method`.
    pub fn builder(architecture: Architecture, method: DstMethod) -> SupConfigBuilder {
        SupConfigBuilder(Self {
            architecture,
            data: SplitSizes::full(),
            method,
            density: 0.05,
            exact_count: false,
            epochs: 250,
            cycle_rate: 0.1,
            cycle: 8,
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 5e-4,
            batch_size: 128,
            update_period: 1000,
            death_rate: 0.5,
            re_explore: Some(0.5),
            lr_1: 0.001,
            lr_2: 0.005,
            superposition: Superposition::Caa,
        })
    }

    /// A builder starting from this configuration.
    pub fn rebuild(&self) -> SupConfigBuilder {
        SupConfigBuilder(self.clone())
    }

    /// The model.
    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }

    /// How much data the run uses.
    pub fn data(&self) -> &SplitSizes {
        &self.data
    }

    /// The phase-1 method.
    pub fn method(&self) -> DstMethod {
        self.method
    }

    /// The final density of the masked weights.
    pub fn density(&self) -> f64 {
        self.density
    }

    /// The density the masks start at (GraNet's initial density, else the final).
    pub fn initial_density(&self) -> f64 {
        match self.method {
            DstMethod::GraNet {
                initial_density, ..
            } => initial_density,
            DstMethod::Rigl | DstMethod::Set => self.density,
        }
    }

    /// Total epochs.
    pub fn epochs(&self) -> usize {
        self.epochs
    }

    /// The epoch split.
    pub fn split(&self) -> EpochSplit {
        epoch_split(self.epochs, self.cycle_rate, self.cycle)
    }

    /// Epochs per cycle.
    pub fn cycle(&self) -> usize {
        self.cycle
    }

    /// Mini-batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Optimizer steps between mask updates in phase 1.
    pub fn update_period(&self) -> usize {
        self.update_period
    }

    /// The constant death rate of the mask updates.
    pub fn death_rate(&self) -> f64 {
        self.death_rate
    }

    /// The share of each layer re-explored at each cycle start, if any.
    pub fn re_explore(&self) -> Option<f64> {
        self.re_explore
    }

    /// SGD's learning rate, momentum and weight decay.
    pub fn sgd(&self) -> (f64, f64, f64) {
        (self.lr, self.momentum, self.weight_decay)
    }

    /// How tickets are superposed.
    pub fn superposition(&self) -> Superposition {
        self.superposition
    }

    /// Phase 1's rate per epoch: `lr`, divided by 10 at `int(0.5·pre)` and
    /// `int(0.75·pre)`.
    pub fn pre_schedule(&self) -> Result<MultiStep> {
        let pre = self.split().pre;
        let mut milestones = vec![(pre as f64 * 0.5) as u64, (pre as f64 * 0.75) as u64];
        milestones.dedup();
        milestones.retain(|&m| m > 0);
        Ok(MultiStep::new(self.lr, 0.1, milestones)?)
    }

    /// The cyclic phase's rate at `t` epochs into the phase.
    pub fn cyclic_schedule(&self) -> Result<Triangular> {
        Ok(Triangular::new(self.lr_1, self.lr_2, self.cycle as f64)?)
    }

    /// ERK at the initial density, exact counts or Bernoulli draws.
    pub fn allocation(&self) -> Result<AllocationConfig> {
        Ok(AllocationConfig::builder()
            .density(self.initial_density())
            .sampling(if self.exact_count {
                Sampling::ExactCount
            } else {
                Sampling::Bernoulli
            })
            .build()?)
    }

    /// Checks every setting (also for a configuration read from a checkpoint).
    pub fn validate(&self) -> Result<()> {
        let invalid = |name, value: String, reason: &str| -> crate::Error {
            HarnessError::invalid(name, value, reason).into()
        };
        if !(self.density > 0.0 && self.density <= 1.0) {
            return Err(invalid(
                "density",
                self.density.to_string(),
                "must lie in (0, 1]",
            ));
        }
        self.data.validate()?;
        let split = self.split();
        if split.tickets == 0 {
            return Err(invalid(
                "cycle_rate",
                self.cycle_rate.to_string(),
                &format!(
                    "{} epochs x {} leave no whole cycle of {} epochs: no ticket",
                    self.epochs, self.cycle_rate, self.cycle
                ),
            ));
        }
        if split.pre == 0 {
            return Err(invalid(
                "cycle_rate",
                self.cycle_rate.to_string(),
                "leaves no pre-training epoch",
            ));
        }
        if let DstMethod::GraNet {
            initial_density,
            final_prune_epoch,
        } = self.method
        {
            if !(initial_density >= self.density && initial_density <= 1.0) {
                return Err(invalid(
                    "initial_density",
                    initial_density.to_string(),
                    "must lie between the final density and 1",
                ));
            }
            if final_prune_epoch == 0 || final_prune_epoch > split.pre {
                return Err(invalid(
                    "final_prune_epoch",
                    final_prune_epoch.to_string(),
                    &format!(
                        "gradual pruning must end within the {} pre-training epochs",
                        split.pre
                    ),
                ));
            }
        }
        if self.batch_size == 0 || self.update_period == 0 {
            return Err(invalid(
                "batch_size",
                format!("{} (update_period {})", self.batch_size, self.update_period),
                "the batch size and the update period must be positive",
            ));
        }
        for (name, value) in [("death_rate", self.death_rate)]
            .into_iter()
            .chain(self.re_explore.map(|r| ("re_explore", r)))
        {
            if !(value > 0.0 && value < 1.0) {
                return Err(invalid(
                    name,
                    value.to_string(),
                    "must lie strictly between 0 and 1",
                ));
            }
        }
        if !(0.0..1.0).contains(&self.momentum)
            || self.weight_decay.is_nan()
            || self.weight_decay < 0.0
        {
            return Err(invalid(
                "momentum",
                format!("{} (weight decay {})", self.momentum, self.weight_decay),
                "momentum in [0, 1), weight decay non-negative",
            ));
        }
        if let Superposition::Cima { factor } = self.superposition
            && !(factor > 0.0 && factor <= 1.0)
        {
            return Err(invalid("factor", factor.to_string(), "must lie in (0, 1]"));
        }
        self.pre_schedule()?;
        self.cyclic_schedule()?;
        self.allocation()?;
        Ok(())
    }
}

/// Builder of a [`SupConfig`]; [`build`](Self::build) validates.
#[derive(Debug, Clone)]
pub struct SupConfigBuilder(SupConfig);

impl SupConfigBuilder {
    /// The model.
    pub fn architecture(mut self, architecture: Architecture) -> Self {
        self.0.architecture = architecture;
        self
    }

    /// Training images used, validation included (`None`: all), and test images.
    pub fn data(mut self, train_pool: Option<usize>, test: Option<usize>) -> Self {
        self.0.data.train_pool = train_pool;
        self.0.data.test = test;
        self
    }

    /// Training images BatchNorm recalibration passes over (`None`: the split).
    pub fn recalibration_images(mut self, n: Option<usize>) -> Self {
        self.0.data.recalibration = n;
        self
    }

    /// The final density and whether ERK draws exact counts (else Bernoulli).
    pub fn density(mut self, density: f64, exact_count: bool) -> Self {
        self.0.density = density;
        self.0.exact_count = exact_count;
        self
    }

    /// Total epochs, the cyclic share and the cycle length (epochs).
    pub fn epochs(mut self, epochs: usize, cycle_rate: f64, cycle: usize) -> Self {
        self.0.epochs = epochs;
        self.0.cycle_rate = cycle_rate;
        self.0.cycle = cycle;
        self
    }

    /// Phase 1's learning rate, and the cyclic phase's `lr_1` (ends) and `lr_2` (middle).
    pub fn lr(mut self, lr: f64, lr_1: f64, lr_2: f64) -> Self {
        self.0.lr = lr;
        self.0.lr_1 = lr_1;
        self.0.lr_2 = lr_2;
        self
    }

    /// Mini-batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.0.batch_size = batch_size;
        self
    }

    /// Optimizer steps between mask updates in phase 1.
    pub fn update_period(mut self, steps: usize) -> Self {
        self.0.update_period = steps;
        self
    }

    /// The share re-explored at each cycle start (`None`: no re-exploration).
    pub fn re_explore(mut self, share: Option<f64>) -> Self {
        self.0.re_explore = share;
        self
    }

    /// How tickets are superposed.
    pub fn superposition(mut self, superposition: Superposition) -> Self {
        self.0.superposition = superposition;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<SupConfig> {
        self.0.validate()?;
        Ok(self.0)
    }
}
