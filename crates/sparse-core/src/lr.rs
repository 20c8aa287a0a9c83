//! Learning-rate schedules (candle-nn has none).
//!
//! A schedule is a pure function of a time `t` (steps or epochs, possibly
//! fractional: the caller picks the unit and uses it consistently), so resuming a
//! run needs no scheduler state. Every constructor checks its arguments.

use crate::SparseError;
use crate::error::Result;
use crate::optim::Optimizer;
use crate::validate::{check_non_negative, check_positive};

/// A learning rate as a function of time.
pub trait LrSchedule {
    /// The learning rate at time `t` (steps or epochs).
    fn lr_at(&self, t: f64) -> f64;

    /// Sets `optimizer`'s learning rate to `lr_at(t)` and returns it.
    fn apply(&self, optimizer: &mut dyn Optimizer, t: f64) -> f64 {
        let lr = self.lr_at(t);
        optimizer.set_learning_rate(lr);
        lr
    }
}

/// A constant learning rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constant {
    lr: f64,
}

impl Constant {
    /// `lr > 0`.
    pub fn new(lr: f64) -> Result<Self> {
        check_positive("lr", lr)?;
        Ok(Self { lr })
    }
}

impl LrSchedule for Constant {
    fn lr_at(&self, _t: f64) -> f64 {
        self.lr
    }
}

/// `torch.optim.lr_scheduler.MultiStepLR`: `base·gamma^k` where `k` is the number of
/// milestones `<= floor(t)`. `StepLR(step_size)` is [`MultiStep::every`].
#[derive(Debug, Clone, PartialEq)]
pub struct MultiStep {
    base: f64,
    gamma: f64,
    milestones: Vec<u64>,
    every: Option<u64>,
}

impl MultiStep {
    /// Decay by `gamma` at each of the strictly increasing `milestones`.
    pub fn new(base: f64, gamma: f64, milestones: Vec<u64>) -> Result<Self> {
        check_positive("base", base)?;
        check_positive("gamma", gamma)?;
        if milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(SparseError::invalid(
                "milestones",
                format!("{milestones:?}"),
                "must be strictly increasing",
            ));
        }
        Ok(Self {
            base,
            gamma,
            milestones,
            every: None,
        })
    }

    /// `StepLR`: decay by `gamma` every `step_size` units (`step_size > 0`).
    pub fn every(base: f64, gamma: f64, step_size: u64) -> Result<Self> {
        if step_size == 0 {
            return Err(SparseError::invalid("step_size", 0.0, "must be > 0"));
        }
        let mut s = Self::new(base, gamma, Vec::new())?;
        s.every = Some(step_size);
        Ok(s)
    }
}

impl LrSchedule for MultiStep {
    fn lr_at(&self, t: f64) -> f64 {
        let t = t.max(0.0).floor() as u64;
        let k = match self.every {
            Some(s) => t / s,
            None => self.milestones.iter().filter(|&&m| m <= t).count() as u64,
        };
        self.base * self.gamma.powi(k as i32)
    }
}

/// Linear warmup from `warmup_start` to `base` over `warmup`, then cosine annealing
/// to `eta_min` at `total` (ConvNeXt/SLaK's `cosine_scheduler`, continuous form):
/// `eta_min + (base − eta_min)·(1 + cos(π·(t − warmup)/(total − warmup)))/2`.
/// After `total` the rate stays at `eta_min` (PyTorch's `CosineAnnealingLR` would
/// rise again; no recipe here trains past `T_max`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosine {
    base: f64,
    eta_min: f64,
    warmup: f64,
    warmup_start: f64,
    total: f64,
}

impl WarmupCosine {
    /// Cosine without warmup (`CosineAnnealingLR(T_max = total, eta_min)`).
    pub fn new(base: f64, eta_min: f64, total: f64) -> Result<Self> {
        Self::with_warmup(base, eta_min, 0.0, 0.0, total)
    }

    /// Cosine after a linear warmup of length `warmup` starting at `warmup_start`.
    pub fn with_warmup(
        base: f64,
        eta_min: f64,
        warmup: f64,
        warmup_start: f64,
        total: f64,
    ) -> Result<Self> {
        check_positive("base", base)?;
        check_non_negative("eta_min", eta_min)?;
        if eta_min > base {
            return Err(SparseError::invalid("eta_min", eta_min, "must be <= base"));
        }
        check_non_negative("warmup", warmup)?;
        check_non_negative("warmup_start", warmup_start)?;
        check_positive("total", total)?;
        if warmup >= total {
            return Err(SparseError::invalid("warmup", warmup, "must be < total"));
        }
        Ok(Self {
            base,
            eta_min,
            warmup,
            warmup_start,
            total,
        })
    }
}

impl LrSchedule for WarmupCosine {
    fn lr_at(&self, t: f64) -> f64 {
        let t = t.max(0.0);
        if t < self.warmup {
            return self.warmup_start + (self.base - self.warmup_start) * t / self.warmup;
        }
        let progress = ((t - self.warmup) / (self.total - self.warmup)).min(1.0);
        self.eta_min
            + (self.base - self.eta_min) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
    }
}

/// Linear interpolation from `start` to `end` over `total`, then `end`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearDecay {
    start: f64,
    end: f64,
    total: f64,
}

impl LinearDecay {
    /// `start > 0`, `end >= 0`, `total > 0`.
    pub fn new(start: f64, end: f64, total: f64) -> Result<Self> {
        check_positive("start", start)?;
        check_non_negative("end", end)?;
        check_positive("total", total)?;
        Ok(Self { start, end, total })
    }
}

impl LrSchedule for LinearDecay {
    fn lr_at(&self, t: f64) -> f64 {
        let f = (t.max(0.0) / self.total).min(1.0);
        self.start + (self.end - self.start) * f
    }
}

/// Sup-tickets' triangular cyclic rate: with `u = (t mod cycle)/cycle`,
/// `lr1·(1 − 2u) + lr2·2u` for `u < 1/2`, else `lr1·(2u − 1) + lr2·(2 − 2u)`:
/// `lr1` at the start of each cycle, `lr2` in its middle (piecewise linear, not cosine).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Triangular {
    lr1: f64,
    lr2: f64,
    cycle: f64,
}

impl Triangular {
    /// `lr1, lr2 > 0`, `cycle > 0` (same unit as `t`).
    pub fn new(lr1: f64, lr2: f64, cycle: f64) -> Result<Self> {
        check_positive("lr1", lr1)?;
        check_positive("lr2", lr2)?;
        check_positive("cycle", cycle)?;
        Ok(Self { lr1, lr2, cycle })
    }
}

impl LrSchedule for Triangular {
    fn lr_at(&self, t: f64) -> f64 {
        let u = t.rem_euclid(self.cycle) / self.cycle;
        if u < 0.5 {
            self.lr1 * (1.0 - 2.0 * u) + self.lr2 * 2.0 * u
        } else {
            self.lr1 * (2.0 * u - 1.0) + self.lr2 * (2.0 - 2.0 * u)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Sgd, SgdConfig};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn multistep_decays_exactly_at_milestones() {
        let s = MultiStep::new(0.1, 0.1, vec![80, 120]).unwrap();
        assert!(close(s.lr_at(0.0), 0.1));
        assert!(close(s.lr_at(79.0), 0.1));
        assert!(close(s.lr_at(80.0), 0.01));
        assert!(close(s.lr_at(119.5), 0.01));
        assert!(close(s.lr_at(120.0), 0.001));
        let e = MultiStep::every(1.0, 0.5, 10).unwrap();
        assert!(close(e.lr_at(9.0), 1.0));
        assert!(close(e.lr_at(10.0), 0.5));
        assert!(close(e.lr_at(25.0), 0.25));
    }

    #[test]
    fn cosine_values_at_zero_half_and_end() {
        let s = WarmupCosine::new(0.1, 0.001, 100.0).unwrap();
        assert!(close(s.lr_at(0.0), 0.1));
        assert!(close(s.lr_at(50.0), (0.1 + 0.001) / 2.0));
        assert!(close(s.lr_at(100.0), 0.001));
        assert!(close(s.lr_at(150.0), 0.001));
    }

    #[test]
    fn warmup_is_linear_then_cosine_starts_at_base() {
        let s = WarmupCosine::with_warmup(4e-3, 1e-6, 20.0, 0.0, 120.0).unwrap();
        assert!(close(s.lr_at(0.0), 0.0));
        assert!(close(s.lr_at(10.0), 2e-3));
        assert!(close(s.lr_at(20.0), 4e-3));
        assert!(close(s.lr_at(70.0), (4e-3 + 1e-6) / 2.0));
    }

    #[test]
    fn linear_decay_interpolates() {
        let s = LinearDecay::new(1.0, 0.0, 10.0).unwrap();
        assert!(close(s.lr_at(2.5), 0.75));
        assert!(close(s.lr_at(20.0), 0.0));
    }

    #[test]
    fn triangular_is_lr1_at_start_and_lr2_at_middle() {
        let s = Triangular::new(0.001, 0.005, 8.0).unwrap();
        assert!(close(s.lr_at(0.0), 0.001));
        assert!(close(s.lr_at(4.0), 0.005));
        assert!(close(s.lr_at(2.0), 0.003));
        assert!(close(s.lr_at(6.0), 0.003));
        assert!(close(s.lr_at(8.0), 0.001));
        let unit = Triangular::new(0.1, 0.2, 1.0).unwrap();
        assert!(close(unit.lr_at(0.5), 0.2));
    }

    #[test]
    fn invalid_arguments_name_the_parameter() {
        let e = MultiStep::new(0.1, 0.1, vec![5, 5])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`milestones`"), "{e}");
        let e = WarmupCosine::with_warmup(0.1, 0.0, 10.0, 0.0, 10.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`warmup`"), "{e}");
        let e = Triangular::new(0.1, -1.0, 1.0).unwrap_err().to_string();
        assert!(e.contains("`lr2`"), "{e}");
        assert!(Constant::new(0.0).is_err());
        assert!(MultiStep::every(0.1, 0.1, 0).is_err());
    }

    #[test]
    fn apply_sets_the_optimizer_rate() {
        let mut opt = Sgd::from_params(vec![], SgdConfig::builder(0.1).build().unwrap()).unwrap();
        let s = MultiStep::new(0.1, 0.5, vec![1]).unwrap();
        assert!(close(s.apply(&mut opt, 3.0), 0.05));
        assert!(close(opt.learning_rate(), 0.05));
    }
}
