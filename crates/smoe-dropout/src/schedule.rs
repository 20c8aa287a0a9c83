//! The number of active experts k as a function of the training step, as the
//! official `calculate_gate_number` computes it (Python's `round`, which rounds
//! halves to even, then `np.clip` to `[k_min, k_max]`).

use serde::{Deserialize, Serialize};
use sparse_repro::HarnessError;

use crate::error::Result;

/// The official `--dynamic_moe_mode` values, and a constant k (no `--dynamic_moe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KMode {
    /// k stays at `k_max` (the learned-router baseline trains at a fixed k).
    Constant,
    /// `round((k_max − k_min) · t / T) + k_min`: SMoE-Dropout's default.
    LinearIncrease,
    /// `round((k_min − k_max) · t / T) + k_max`.
    LinearDecrease,
    /// `round((k_min − k_max) · cos(π t / 2T)) + k_max`.
    CosineIncrease,
    /// `round((k_max − k_min) · cos(π t / 2T)) + k_min`.
    CosineDecrease,
    /// `round((k_min − k_max) · 0.99^(t div (T div 300))) + k_max`.
    ExpIncrease,
    /// The steps 1, 2, 4, 8, 16, each for a fifth of `T`.
    MultiStepIncrease,
    /// The steps 16, 8, 4, 2, 1, each for a fifth of `T`.
    MultiStepDecrease,
}

impl KMode {
    /// The official name (`linear_increase`, …; `constant` for a fixed k).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::LinearIncrease => "linear_increase",
            Self::LinearDecrease => "linear_decrease",
            Self::CosineIncrease => "cosine_increase",
            Self::CosineDecrease => "cosine_decrease",
            Self::ExpIncrease => "exp_increase",
            Self::MultiStepIncrease => "multi_step_increase",
            Self::MultiStepDecrease => "multi_step_decrease",
        }
    }
}

/// k over training: `mode` between `k_min` and `k_max` over `total_steps`
/// (`--dynamic_overall_steps`).
///
/// ```
/// use smoe_dropout::schedule::{KMode, KSchedule};
/// let k = KSchedule::new(KMode::LinearIncrease, 4, 8, 1000)?;
/// assert_eq!((k.k_at(0), k.k_at(125), k.k_at(500), k.k_at(1000)), (4, 4, 6, 8));
/// # Ok::<(), smoe_dropout::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KSchedule {
    /// How k moves.
    pub mode: KMode,
    /// The smallest k (`--moe-top-k-min`).
    pub k_min: usize,
    /// The largest k (`--moe-top-k-max`).
    pub k_max: usize,
    /// The steps over which k moves (`--dynamic_overall_steps`).
    pub total_steps: usize,
}

/// The official multi-step levels.
const MULTI_STEP: [usize; 5] = [1, 2, 4, 8, 16];

impl KSchedule {
    /// A checked schedule: `1 ≤ k_min ≤ k_max`, `total_steps > 0`.
    pub fn new(mode: KMode, k_min: usize, k_max: usize, total_steps: usize) -> Result<Self> {
        let schedule = Self {
            mode,
            k_min,
            k_max,
            total_steps,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// A fixed k.
    pub fn constant(k: usize) -> Result<Self> {
        Self::new(KMode::Constant, k, k, 1)
    }

    /// Checks the bounds (what [`KSchedule::new`] checks; for deserialised values).
    pub fn validate(&self) -> Result<()> {
        if self.k_min == 0 {
            return Err(HarnessError::invalid("k_min", self.k_min, "must be at least 1").into());
        }
        if self.k_max < self.k_min {
            return Err(HarnessError::invalid(
                "k_max",
                self.k_max,
                format!("must be at least k_min = {}", self.k_min),
            )
            .into());
        }
        if self.total_steps == 0 {
            return Err(HarnessError::invalid("total_steps", 0, "must be positive").into());
        }
        Ok(())
    }

    /// k before training step `step` (0-based).
    ///
    /// Two departures keep every step defined where the official code raises: the
    /// exponential mode's period `T div 300` is at least 1 (Python divides by zero
    /// for `T < 300`), and the multi-step index stops at the last level (Python
    /// indexes past the list at `t = T`).
    pub fn k_at(&self, step: usize) -> usize {
        let (lo, hi) = (self.k_min as f64, self.k_max as f64);
        let t = step as f64;
        let total = self.total_steps as f64;
        let quarter_cos = (std::f64::consts::PI * t / (2.0 * total)).cos();
        let raw = match self.mode {
            KMode::Constant => hi,
            KMode::LinearIncrease => ((hi - lo) * t / total).round_ties_even() + lo,
            KMode::LinearDecrease => ((lo - hi) * t / total).round_ties_even() + hi,
            KMode::CosineIncrease => ((lo - hi) * quarter_cos).round_ties_even() + hi,
            KMode::CosineDecrease => ((hi - lo) * quarter_cos).round_ties_even() + lo,
            KMode::ExpIncrease => {
                let period = (self.total_steps / 300).max(1);
                let decay = 0.99f64.powi((step / period) as i32);
                ((lo - hi) * decay).round_ties_even() + hi
            }
            KMode::MultiStepIncrease | KMode::MultiStepDecrease => {
                let index = ((MULTI_STEP.len() as f64 * t / total) as usize).min(4);
                let index = if self.mode == KMode::MultiStepIncrease {
                    index
                } else {
                    4 - index
                };
                MULTI_STEP[index] as f64
            }
        };
        raw.clamp(lo, hi) as usize
    }

    /// The mean k over steps `0..steps`.
    pub fn mean_k(&self, steps: usize) -> f64 {
        if steps == 0 {
            return self.k_max as f64;
        }
        (0..steps).map(|s| self.k_at(s) as f64).sum::<f64>() / steps as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(mode: KMode, lo: usize, hi: usize, total: usize, steps: &[usize]) -> Vec<usize> {
        let schedule = KSchedule::new(mode, lo, hi, total).unwrap();
        steps.iter().map(|&s| schedule.k_at(s)).collect()
    }

    #[test]
    fn linear_rounds_halves_to_even_like_python() {
        // (16 − 8) · t / 400000: t = 25000 → 0.5 → 0; t = 75000 → 1.5 → 2
        assert_eq!(
            ks(
                KMode::LinearIncrease,
                8,
                16,
                400_000,
                &[0, 25_000, 75_000, 200_000, 400_000, 500_000]
            ),
            [8, 8, 10, 12, 16, 16]
        );
        // 8 + round(−8 · t / 400000): t = 25000 → −0.5 → −0 → 16
        assert_eq!(
            ks(
                KMode::LinearDecrease,
                8,
                16,
                400_000,
                &[0, 25_000, 75_000, 400_000]
            ),
            [16, 16, 14, 8]
        );
    }

    #[test]
    fn cosine_and_exponential_match_hand_values() {
        // cos(π/4) = 0.7071: round(−8 · 0.7071) = −6 → 10; cos(π/3) = 0.5 → −4 → 12
        let total = 1200;
        assert_eq!(
            ks(KMode::CosineIncrease, 8, 16, total, &[0, 600, 800, 1200]),
            [8, 10, 12, 16]
        );
        // round(8 · 0.7071) = 6 → 14; round(8 · 0.5) = 4 → 12
        assert_eq!(
            ks(KMode::CosineDecrease, 8, 16, total, &[0, 600, 800, 1200]),
            [16, 14, 12, 8]
        );
        // period 3000 / 300 = 10: t = 690 → 0.99^69 = 0.4998 → round(−3.998) = −4 → 12;
        // t = 1000 → 0.99^100 = 0.366 → −3 → 13; t = 3000 → 0.99^300 = 0.049 → −0 → 16
        assert_eq!(
            ks(
                KMode::ExpIncrease,
                8,
                16,
                3000,
                &[0, 9, 10, 690, 1000, 3000]
            ),
            [8, 8, 8, 12, 13, 16]
        );
        // T < 300: the period is one step, not a division by zero
        assert_eq!(ks(KMode::ExpIncrease, 4, 8, 100, &[0, 1]), [4, 4]);
    }

    #[test]
    fn multi_step_levels_are_clipped_to_the_range() {
        assert_eq!(
            ks(
                KMode::MultiStepIncrease,
                1,
                16,
                100,
                &[0, 19, 20, 40, 60, 80, 99, 100]
            ),
            [1, 1, 2, 4, 8, 16, 16, 16]
        );
        assert_eq!(
            ks(KMode::MultiStepIncrease, 2, 8, 100, &[0, 20, 99]),
            [2, 2, 8]
        );
        assert_eq!(
            ks(KMode::MultiStepDecrease, 1, 16, 100, &[0, 20, 99]),
            [16, 8, 1]
        );
    }

    #[test]
    fn constant_and_bounds() {
        let k = KSchedule::constant(2).unwrap();
        assert_eq!((k.k_at(0), k.k_at(10_000), k.mean_k(10)), (2, 2, 2.0));
        assert!(KSchedule::new(KMode::LinearIncrease, 0, 4, 10).is_err());
        assert!(KSchedule::new(KMode::LinearIncrease, 5, 4, 10).is_err());
        assert!(KSchedule::new(KMode::LinearIncrease, 2, 4, 0).is_err());
        let linear = KSchedule::new(KMode::LinearIncrease, 4, 8, 4).unwrap();
        // k over steps 0..4: 4, 5, 6, 7
        assert_eq!(linear.mean_k(4), 5.5);
    }
}
