//! The death rate of STU-GAN's topology updates, as each version of the author code
//! steps it.
//!
//! The author code decays the rate with a cosine stepped once per **discriminator**
//! step and reads it at the generator's update steps. How long the cosine is
//! differs between versions:
//!
//! - [`DeathSchedule::PerDStep2021`]: `T_max` ≈ every discriminator step of the run
//!   (`n_critic · g_steps`), a plain cosine from 0.5 to 0.005 over training: the
//!   2021 code the paper's runs used.
//! - [`DeathSchedule::PerDStep2022`]: `T_max` = the number of generator steps, so the
//!   periodic cosine passes its floor after `1/n_critic` of training and rises again
//!   (a 2022 revision).
//! - [`DeathSchedule::CosineOverG`]: a plain cosine over the generator steps (what
//!   the paper's text suggests).

use serde::{Deserialize, Serialize};
use sparse_core::DeathRate;
use sparse_core::schedule::DEFAULT_ETA_MIN;

/// Which death-rate schedule a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DeathSchedule {
    /// The 2021 author code: cosine over all discriminator steps.
    #[default]
    #[serde(rename = "per-d-step-2021")]
    PerDStep2021,
    /// The 2022 revision: periodic cosine with `T_max` = generator steps, read at the
    /// discriminator-step count.
    #[serde(rename = "per-d-step-2022")]
    PerDStep2022,
    /// A cosine over the generator steps.
    CosineOverG,
}

impl DeathSchedule {
    /// The rate at generator step `g_step` (1-based), after `d_steps` discriminator
    /// steps, for a run of `g_steps` generator steps with `n_critic` discriminator
    /// steps each, starting from `initial`.
    pub fn rate(
        self,
        initial: f64,
        g_step: usize,
        d_steps: usize,
        g_steps: usize,
        n_critic: usize,
    ) -> f64 {
        let cosine = |t_max: usize, t: usize| {
            DeathRate::Cosine {
                initial,
                eta_min: DEFAULT_ETA_MIN,
                t_max: t_max.max(1),
            }
            .rate_at(t)
        };
        match self {
            DeathSchedule::PerDStep2021 => cosine(n_critic * g_steps, d_steps),
            DeathSchedule::PerDStep2022 => cosine(g_steps, d_steps),
            DeathSchedule::CosineOverG => cosine(g_steps, g_step),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// n_critic 5, 100 generator steps: G step k comes after 5(k − 1) + 1 D steps.
    #[test]
    fn the_three_schedules_against_hand_values() {
        let at = |s: DeathSchedule, k: usize| s.rate(0.5, k, 5 * (k - 1) + 1, 100, 5);
        let close = |a: f64, b: f64| (a - b).abs() < 5e-7;
        let expected = [
            (
                DeathSchedule::PerDStep2021,
                [0.456324, 0.334873, 0.258720, 0.181958, 0.005078],
            ),
            (
                DeathSchedule::PerDStep2022,
                [0.006952, 0.498048, 0.283520, 0.006952, 0.006952],
            ),
            (
                DeathSchedule::CosineOverG,
                [0.452732, 0.328982, 0.252500, 0.176018, 0.005000],
            ),
        ];
        for (schedule, values) in expected {
            for (k, want) in [20, 40, 50, 60, 100].into_iter().zip(values) {
                let got = at(schedule, k);
                assert!(
                    close(got, want),
                    "{schedule:?} at G step {k}: {got} vs {want}"
                );
            }
        }
    }
}
