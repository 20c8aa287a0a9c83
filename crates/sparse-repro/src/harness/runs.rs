//! The finished runs of a reproduction, grouped by arm, as claims and plots read them.

use std::path::PathBuf;

use super::paper::{ArmSpec, Metrics, Paper};

/// One seed of one arm, as measured (trained now or taken from an earlier,
/// interrupted invocation into the same run directory).
#[derive(Debug, Clone)]
pub struct SeedRun<O> {
    /// The seed.
    pub seed: u64,
    /// The paper's record of the run.
    pub outcome: O,
    /// The run's [`Paper::metrics`].
    pub metrics: Metrics,
    /// Wall-clock seconds it trained for (from its record when resumed).
    pub seconds: f64,
    /// The checkpoint file.
    pub checkpoint: PathBuf,
    /// Whether this invocation took the run from its record instead of training it.
    pub resumed: bool,
}

/// Every seed of one arm.
pub struct ArmRuns<P: Paper> {
    /// The arm.
    pub arm: ArmSpec<P::Arm>,
    /// The data set's name in the report ([`Paper::dataset_label`]).
    pub dataset_label: String,
    /// Its runs, in seed order.
    pub runs: Vec<SeedRun<P::Outcome>>,
}

impl<P: Paper> std::fmt::Debug for ArmRuns<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmRuns")
            .field("arm", &self.arm)
            .field("dataset_label", &self.dataset_label)
            .field("runs", &self.runs)
            .finish()
    }
}

impl<P: Paper> ArmRuns<P> {
    /// The per-seed values of `metric` (seeds that lack it are skipped).
    pub fn values(&self, metric: &str) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.metrics.get(metric).copied())
            .collect()
    }

    /// The mean of `metric` over seeds; `None` when no seed has it.
    pub fn mean(&self, metric: &str) -> Option<f64> {
        let values = self.values(metric);
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }

    /// The mean of any number computed from each seed's outcome; `None` without runs.
    pub fn mean_of(&self, f: impl Fn(&P::Outcome) -> f64) -> Option<f64> {
        (!self.runs.is_empty())
            .then(|| self.runs.iter().map(|r| f(&r.outcome)).sum::<f64>() / self.runs.len() as f64)
    }

    /// The outcomes, in seed order.
    pub fn outcomes(&self) -> impl Iterator<Item = &P::Outcome> {
        self.runs.iter().map(|r| &r.outcome)
    }
}

/// Every arm's runs, in plan order.
pub struct Runs<P: Paper> {
    arms: Vec<ArmRuns<P>>,
}

impl<P: Paper> std::fmt::Debug for Runs<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.arms).finish()
    }
}

impl<P: Paper> Runs<P> {
    /// Runs grouped by arm, in plan order.
    pub fn new(arms: Vec<ArmRuns<P>>) -> Self {
        Self { arms }
    }

    /// Every arm, in plan order.
    pub fn arms(&self) -> &[ArmRuns<P>] {
        &self.arms
    }

    /// The arm called `name` on `dataset` (as the plan names the data set).
    pub fn get(&self, name: &str, dataset: &str) -> Option<&ArmRuns<P>> {
        self.arms
            .iter()
            .find(|a| a.arm.name == name && a.arm.dataset == dataset)
    }

    /// The first arm whose configuration satisfies `pick`.
    pub fn find(&self, pick: impl Fn(&ArmSpec<P::Arm>) -> bool) -> Option<&ArmRuns<P>> {
        self.arms.iter().find(|a| pick(&a.arm))
    }

    /// Every arm whose configuration satisfies `pick`.
    pub fn filter<'a>(
        &'a self,
        pick: impl Fn(&ArmSpec<P::Arm>) -> bool + 'a,
    ) -> impl Iterator<Item = &'a ArmRuns<P>> + 'a {
        self.arms.iter().filter(move |a| pick(&a.arm))
    }

    /// Every seed run of every arm.
    pub fn seed_runs(&self) -> impl Iterator<Item = (&ArmSpec<P::Arm>, &SeedRun<P::Outcome>)> {
        self.arms
            .iter()
            .flat_map(|a| a.runs.iter().map(move |r| (&a.arm, r)))
    }

    /// How many seed runs were taken from records of an earlier invocation.
    pub fn resumed_count(&self) -> usize {
        self.seed_runs().filter(|(_, r)| r.resumed).count()
    }
}
