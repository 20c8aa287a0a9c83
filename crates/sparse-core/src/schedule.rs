//! Step-indexed schedules of the topology engine: the death (prune) rate of
//! prune-and-regrow methods and the cubic density schedule of gradual magnitude
//! pruning (GMP, Zhu & Gupta 2017; GraNet).

use crate::error::{Result, SparseError};
use crate::validate::{check_fraction, check_nonzero};

/// Default floor of the cosine death-rate schedule (`CosineDecay(eta_min=0.005)` in
/// the `sparselearning` lineage).
pub const DEFAULT_ETA_MIN: f64 = 0.005;

/// The fraction of each layer's active weights removed at a topology update, as a
/// function of the optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeathRate {
    /// The same rate at every step (GraNet / Sup-tickets `--decay-schedule constant`).
    Constant(f64),
    /// PyTorch `CosineAnnealingLR` in closed form:
    /// `eta_min + (initial - eta_min) · (1 + cos(π·t / t_max)) / 2`.
    ///
    /// Like PyTorch's scheduler (and hence the official code) it does not stop at
    /// `t_max`: the cosine is periodic, so the rate rises again after `t_max` and is
    /// back at `initial` at `2·t_max`. STU-GAN's author code steps the schedule on
    /// every discriminator step (`n_critic` per generator step); in its 2021 version
    /// `t_max` is about the number of discriminator steps of the run (a plain cosine
    /// over training), in a 2022 revision the number of generator steps, which makes
    /// the rate periodic within the run. Read in generator steps, either is this
    /// schedule with `t_max / n_critic`.
    Cosine {
        /// Rate at step 0.
        initial: f64,
        /// Rate at `t_max` (official default [`DEFAULT_ETA_MIN`]).
        eta_min: f64,
        /// Half period in steps (`> 0`).
        t_max: usize,
    },
    /// The cosine of [`DeathRate::Cosine`] up to `t_max`, then `eta_min` for good
    /// (DSN: cosine over the first 80 % of training, fixed at the floor after).
    CosineThenFloor {
        /// Rate at step 0.
        initial: f64,
        /// Rate from `t_max` on.
        eta_min: f64,
        /// Length of the cosine in steps (`> 0`).
        t_max: usize,
    },
    /// Straight line from `initial` at step 0 to `final_rate` at `t_max`, constant
    /// after (Dettmers' `LinearDecay`, which subtracts `initial / t_max` per step, is
    /// `final_rate = 0`).
    Linear {
        /// Rate at step 0.
        initial: f64,
        /// Rate from `t_max` on.
        final_rate: f64,
        /// Length of the ramp in steps (`> 0`).
        t_max: usize,
    },
    /// Multiplies the rate by `factor` every `every` steps (the ITOP lineage's
    /// `LinearDecay(0.99, 600)`, which despite its name is geometric).
    Step {
        /// Rate at step 0.
        initial: f64,
        /// Multiplier applied every `every` steps, in `[0, 1]`.
        factor: f64,
        /// Steps between multiplications (`> 0`).
        every: usize,
    },
}

impl DeathRate {
    /// A checked constant rate.
    pub fn constant(rate: f64) -> Result<Self> {
        let s = Self::Constant(rate);
        s.validate()?;
        Ok(s)
    }

    /// A checked cosine schedule with the official `eta_min` = 0.005.
    pub fn cosine(initial: f64, t_max: usize) -> Result<Self> {
        Self::cosine_with_eta_min(initial, DEFAULT_ETA_MIN, t_max)
    }

    /// A checked cosine schedule with an explicit floor (DSN uses 0.001).
    pub fn cosine_with_eta_min(initial: f64, eta_min: f64, t_max: usize) -> Result<Self> {
        let s = Self::Cosine {
            initial,
            eta_min,
            t_max,
        };
        s.validate()?;
        Ok(s)
    }

    /// A checked linear schedule.
    pub fn linear(initial: f64, final_rate: f64, t_max: usize) -> Result<Self> {
        let s = Self::Linear {
            initial,
            final_rate,
            t_max,
        };
        s.validate()?;
        Ok(s)
    }

    /// A checked geometric step schedule.
    pub fn step(initial: f64, factor: f64, every: usize) -> Result<Self> {
        let s = Self::Step {
            initial,
            factor,
            every,
        };
        s.validate()?;
        Ok(s)
    }

    /// Checks that every rate lies in `[0, 1]` and every length is positive; the
    /// error names the offending field.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Constant(r) => check_fraction("death_rate", r),
            Self::Cosine {
                initial,
                eta_min,
                t_max,
            }
            | Self::CosineThenFloor {
                initial,
                eta_min,
                t_max,
            } => {
                check_fraction("death_rate.initial", initial)?;
                check_fraction("death_rate.eta_min", eta_min)?;
                check_nonzero("death_rate.t_max", t_max)
            }
            Self::Linear {
                initial,
                final_rate,
                t_max,
            } => {
                check_fraction("death_rate.initial", initial)?;
                check_fraction("death_rate.final_rate", final_rate)?;
                check_nonzero("death_rate.t_max", t_max)
            }
            Self::Step {
                initial,
                factor,
                every,
            } => {
                check_fraction("death_rate.initial", initial)?;
                check_fraction("death_rate.factor", factor)?;
                check_nonzero("death_rate.every", every)
            }
        }
    }

    /// The rate after `step` scheduler steps (the official code steps its scheduler
    /// once per optimizer step, before the topology update).
    pub fn rate_at(&self, step: usize) -> f64 {
        match *self {
            Self::Constant(r) => r,
            Self::Cosine {
                initial,
                eta_min,
                t_max,
            } => {
                let phase = std::f64::consts::PI * step as f64 / t_max as f64;
                eta_min + (initial - eta_min) * (1.0 + phase.cos()) / 2.0
            }
            Self::CosineThenFloor {
                initial,
                eta_min,
                t_max,
            } => Self::Cosine {
                initial,
                eta_min,
                t_max,
            }
            .rate_at(step.min(t_max)),
            Self::Linear {
                initial,
                final_rate,
                t_max,
            } => {
                let u = (step as f64 / t_max as f64).min(1.0);
                initial + (final_rate - initial) * u
            }
            Self::Step {
                initial,
                factor,
                every,
            } => initial * factor.powf((step / every) as f64),
        }
    }
}

/// Which pruning iterations of the cubic schedule run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PruningWindow {
    /// GraNet's (and GMP's) official `pruning()`: iterations `i0 ..= i1 − 1`, on steps
    /// at or after `start_step` only. The last pruning happens one iteration before
    /// `i1`, so the run ends at `d_final + (d_init − d_final)·(1/(i1 − i0))³`, not at
    /// `d_final`.
    #[default]
    Official,
    /// The paper's formula taken to its end: iterations `i0 ..= i1` (with
    /// `i0 = start_step / period` rounded down), so `d_final` is reached at `end_step`.
    ReachesFinal,
}

/// The cubic density schedule of gradual magnitude pruning:
/// `d(i) = d_final + (d_init - d_final)·(1 - (i - i0)/(i1 - i0))^3` on pruning
/// iterations `i = step / period`, `i0 = start_step / period`, `i1 = end_step / period`;
/// `d_init` before `i0`. Which iterations prune, and so the density the run ends at,
/// is the [`PruningWindow`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CubicDensitySchedule {
    /// Density before pruning starts (`1.0` = dense-to-sparse).
    pub initial_density: f64,
    /// Density of the formula at `end_step`.
    pub final_density: f64,
    /// First step at which pruning may happen.
    pub start_step: usize,
    /// Step at which the formula reaches `final_density`.
    pub end_step: usize,
    /// Steps between pruning iterations (`> 0`).
    pub period: usize,
    /// Which iterations prune (official: the last one is skipped).
    pub window: PruningWindow,
}

impl CubicDensitySchedule {
    /// Checks densities in `[0, 1]`, `final <= initial`, `period > 0` and
    /// `start_step / period < end_step / period`.
    pub fn validate(&self) -> Result<()> {
        check_fraction("initial_density", self.initial_density)?;
        check_fraction("final_density", self.final_density)?;
        if self.final_density > self.initial_density {
            return Err(SparseError::invalid(
                "final_density",
                self.final_density,
                "must not exceed initial_density",
            ));
        }
        check_nonzero("period", self.period)?;
        if self.end_step / self.period <= self.start_step / self.period {
            return Err(SparseError::invalid(
                "end_step",
                self.end_step,
                "must be at least one period after start_step",
            ));
        }
        Ok(())
    }

    fn iterations(&self) -> (usize, usize) {
        (self.start_step / self.period, self.end_step / self.period)
    }

    /// The last pruning iteration of the window.
    fn last_iteration(&self) -> usize {
        let (_, i1) = self.iterations();
        match self.window {
            PruningWindow::Official => i1 - 1,
            PruningWindow::ReachesFinal => i1,
        }
    }

    /// The scheduled density at `step`: `initial_density` before the window, the
    /// formula inside it, and the density of the last pruning iteration after it.
    pub fn density_at(&self, step: usize) -> f64 {
        let (i0, i1) = self.iterations();
        let i = step / self.period;
        if i < i0 {
            return self.initial_density;
        }
        let i = i.min(self.last_iteration());
        if i >= i1 {
            return self.final_density;
        }
        let remaining = 1.0 - (i - i0) as f64 / (i1 - i0) as f64;
        self.final_density + (self.initial_density - self.final_density) * remaining.powi(3)
    }

    /// The density the schedule ends at: `final_density` with
    /// [`PruningWindow::ReachesFinal`], one iteration short of it officially.
    pub fn reached_density(&self) -> f64 {
        self.density_at(self.last_iteration() * self.period)
    }

    /// Whether `step` is a pruning step: a multiple of `period` whose iteration
    /// `step / period` is inside the window (officially also `step >= start_step`).
    pub fn is_pruning_step(&self, step: usize) -> bool {
        let (i0, _) = self.iterations();
        let i = step / self.period;
        let started = match self.window {
            PruningWindow::Official => step >= self.start_step,
            PruningWindow::ReachesFinal => true,
        };
        step.is_multiple_of(self.period) && started && i >= i0 && i <= self.last_iteration()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_values_at_zero_half_and_end() {
        let s = DeathRate::cosine(0.5, 100).unwrap();
        assert!((s.rate_at(0) - 0.5).abs() < 1e-12);
        assert!((s.rate_at(50) - 0.2525).abs() < 1e-12);
        assert!((s.rate_at(100) - 0.005).abs() < 1e-12);
        // periodic past t_max, like PyTorch's CosineAnnealingLR closed form
        assert!((s.rate_at(150) - 0.2525).abs() < 1e-12);
        assert!((s.rate_at(200) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn cosine_then_floor_stays_at_the_floor() {
        let s = DeathRate::CosineThenFloor {
            initial: 0.5,
            eta_min: 0.001,
            t_max: 80,
        };
        s.validate().unwrap();
        assert!((s.rate_at(40) - 0.2505).abs() < 1e-12);
        assert!((s.rate_at(80) - 0.001).abs() < 1e-12);
        assert!((s.rate_at(160) - 0.001).abs() < 1e-12);
    }

    #[test]
    fn linear_and_step_schedules() {
        let l = DeathRate::linear(0.4, 0.0, 10).unwrap();
        assert!((l.rate_at(5) - 0.2).abs() < 1e-12);
        assert_eq!(l.rate_at(20), 0.0);
        let g = DeathRate::step(0.5, 0.5, 10).unwrap();
        assert_eq!(g.rate_at(9), 0.5);
        assert_eq!(g.rate_at(20), 0.125);
    }

    #[test]
    fn invalid_schedules_name_the_parameter() {
        let err = DeathRate::cosine(-0.1, 10).unwrap_err().to_string();
        assert!(err.contains("death_rate.initial"), "{err}");
        let err = DeathRate::cosine(0.5, 0).unwrap_err().to_string();
        assert!(err.contains("death_rate.t_max"), "{err}");
        let err = DeathRate::constant(1.5).unwrap_err().to_string();
        assert!(err.contains("death_rate"), "{err}");
    }

    #[test]
    fn cubic_schedule_endpoints_and_midpoint() {
        let s = CubicDensitySchedule {
            initial_density: 1.0,
            final_density: 0.1,
            start_step: 100,
            end_step: 500,
            period: 100,
            window: PruningWindow::ReachesFinal,
        };
        s.validate().unwrap();
        assert_eq!(s.density_at(0), 1.0);
        assert_eq!(s.density_at(100), 1.0);
        // i = 3 of [1, 5]: remaining = 1 - 2/4 = 0.5 -> 0.1 + 0.9 * 0.125
        assert!((s.density_at(300) - 0.2125).abs() < 1e-12);
        assert_eq!(s.density_at(500), 0.1);
        assert_eq!(s.density_at(10_000), 0.1);
        assert_eq!(s.reached_density(), 0.1);
        assert!(s.is_pruning_step(500) && s.is_pruning_step(100));
        assert!(!s.is_pruning_step(600) && !s.is_pruning_step(250) && !s.is_pruning_step(0));
        let bad = CubicDensitySchedule { period: 0, ..s };
        assert!(bad.validate().unwrap_err().to_string().contains("period"));
    }

    /// GraNet's `pruning()` with i0 = 1, i1 = 4: it prunes at iterations 1, 2, 3 and
    /// stops at 0.2 + 0.8·(1/3)³, not at 0.2.
    #[test]
    fn official_window_skips_the_last_iteration() {
        let s = CubicDensitySchedule {
            initial_density: 1.0,
            final_density: 0.2,
            start_step: 2,
            end_step: 8,
            period: 2,
            window: PruningWindow::Official,
        };
        let pruning: Vec<usize> = (0..=12).filter(|&t| s.is_pruning_step(t)).collect();
        assert_eq!(pruning, vec![2, 4, 6]);
        // iteration 2: 0.2 + 0.8·(2/3)³; iteration 3: 0.2 + 0.8·(1/3)³
        assert!((s.density_at(4) - (0.2 + 0.8 * 8.0 / 27.0)).abs() < 1e-12);
        let end = 0.2 + 0.8 / 27.0;
        assert!((s.density_at(6) - end).abs() < 1e-12);
        assert!((s.density_at(8) - end).abs() < 1e-12);
        assert!((s.density_at(100) - end).abs() < 1e-12);
        assert!((s.reached_density() - end).abs() < 1e-12);
        let paper = CubicDensitySchedule {
            window: PruningWindow::ReachesFinal,
            ..s
        };
        let pruning: Vec<usize> = (0..=12).filter(|&t| paper.is_pruning_step(t)).collect();
        assert_eq!(pruning, vec![2, 4, 6, 8]);
        assert_eq!(paper.reached_density(), 0.2);
        // The official gate is the step itself: with start 3, step 2 (iteration 1 =
        // i0) does not prune, while the paper window prunes from iteration i0 on.
        let late = CubicDensitySchedule { start_step: 3, ..s };
        assert!(!late.is_pruning_step(2) && late.is_pruning_step(4));
        let late_paper = CubicDensitySchedule {
            start_step: 3,
            ..paper
        };
        assert!(late_paper.is_pruning_step(2));
    }
}
