//! Our whole-step rows beside PyTorch's, and the two targets of issue #20.
//!
//! Pure logic (no timing): `train_report` measures, `shared/pytorch/train_step_bench.py`
//! measures the same rows in PyTorch, and this module pairs them by
//! `(paper, model, arm)` and computes the ratios and verdicts. The Python script
//! applies the same rules (its `--ours` table); keep the two in step.

use serde::{Deserialize, Serialize};

/// Our step target: at least this times PyTorch's *dense* step of the same model.
pub const DENSE_TARGET: f64 = 1.0;
/// Our sparse step target at low density: at least this times PyTorch's
/// masked-dense step of the same arm.
pub const SPARSE_TARGET: f64 = 2.0;
/// Densities up to this (and below 1) fall under [`SPARSE_TARGET`].
pub const SPARSE_TARGET_DENSITY: f64 = 0.1;

/// One row of our `train-report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Paper crate, e.g. `random-pruning`.
    pub paper: String,
    /// Model, e.g. `resnet-8 w16`.
    pub model: String,
    /// Arm, e.g. `dense`, `ERK@0.10`, `DSN@0.20`, `UGT s=0.90`.
    pub arm: String,
    /// Share of the masked weights that is active (1 for dense).
    pub density: f64,
    /// Input shape and batch, in words.
    pub shape: String,
    /// Steps per timed block: the topology update period of dynamic arms (the
    /// block holds exactly one update, so its time over `period` amortises it), else 1.
    pub period: usize,
    /// Median milliseconds of one training step (amortised over `period`).
    pub step_ms: f64,
    /// Median milliseconds of one evaluation pass over one evaluation batch.
    pub eval_ms: f64,
    /// Timed repetitions (blocks) of the step.
    pub step_reps: usize,
    /// Timed repetitions of the evaluation pass.
    pub eval_reps: usize,
}

/// One row of PyTorch's `pytorch-train-report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TorchRow {
    /// Paper crate the row mirrors.
    pub paper: String,
    /// Model (same names as ours).
    pub model: String,
    /// Arm (same names as ours).
    pub arm: String,
    /// Density of the masks (1 for dense).
    pub density: f64,
    /// `dense` or `masked-dense`.
    pub variant: String,
    /// Median milliseconds of one training step (amortised like ours).
    pub step_ms: f64,
    /// Median milliseconds of one evaluation pass.
    pub eval_ms: f64,
}

/// Our row beside PyTorch's.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// `paper / model / arm`.
    pub label: String,
    /// Density of the arm.
    pub density: f64,
    /// Our step.
    pub ours_step_ms: f64,
    /// PyTorch's step of the same arm (masked-dense for sparse arms).
    pub torch_step_ms: Option<f64>,
    /// PyTorch's dense step of the same model.
    pub torch_dense_step_ms: Option<f64>,
    /// Our evaluation pass.
    pub ours_eval_ms: f64,
    /// PyTorch's evaluation pass of the same arm.
    pub torch_eval_ms: Option<f64>,
}

/// `torch / ours`: above 1, ours is faster.
pub fn ratio(torch_ms: Option<f64>, ours_ms: f64) -> Option<f64> {
    torch_ms
        .filter(|t| t.is_finite() && *t > 0.0)
        .filter(|_| ours_ms.is_finite() && ours_ms > 0.0)
        .map(|t| t / ours_ms)
}

impl Comparison {
    /// Step ratio against PyTorch's same arm.
    pub fn step_ratio(&self) -> Option<f64> {
        ratio(self.torch_step_ms, self.ours_step_ms)
    }
    /// Step ratio against PyTorch's dense step of the model.
    pub fn dense_ratio(&self) -> Option<f64> {
        ratio(self.torch_dense_step_ms, self.ours_step_ms)
    }
    /// Evaluation ratio against PyTorch's same arm.
    pub fn eval_ratio(&self) -> Option<f64> {
        ratio(self.torch_eval_ms, self.ours_eval_ms)
    }
}

/// Pairs every one of `ours` with PyTorch's row of the same `(paper, model, arm)`
/// and PyTorch's `dense` row of the same model (`None` where PyTorch lacks it).
pub fn compare(ours: &[Entry], torch: &[TorchRow]) -> Vec<Comparison> {
    let find = |paper: &str, model: &str, arm: &str| {
        torch
            .iter()
            .find(|t| t.paper == paper && t.model == model && t.arm == arm)
    };
    ours.iter()
        .map(|o| {
            let same = find(&o.paper, &o.model, &o.arm);
            let dense = find(&o.paper, &o.model, "dense");
            Comparison {
                label: format!("{} / {} / {}", o.paper, o.model, o.arm),
                density: o.density,
                ours_step_ms: o.step_ms,
                torch_step_ms: same.map(|t| t.step_ms),
                torch_dense_step_ms: dense.map(|t| t.step_ms),
                ours_eval_ms: o.eval_ms,
                torch_eval_ms: same.map(|t| t.eval_ms),
            }
        })
        .collect()
}

/// How a target came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Met, as measured.
    Pass,
    /// Missed, as measured.
    Fail,
    /// PyTorch's row was missing.
    NotMeasured,
}

impl Verdict {
    /// `PASS`, `FAIL` or `NOT MEASURED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotMeasured => "NOT MEASURED",
        }
    }
}

/// One target on one row.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetResult {
    /// What is compared.
    pub what: String,
    /// The measured ratio.
    pub value: Option<f64>,
    /// The bound it must reach.
    pub bound: f64,
    /// The verdict.
    pub verdict: Verdict,
}

fn judge(what: String, value: Option<f64>, bound: f64) -> TargetResult {
    let verdict = match value {
        None => Verdict::NotMeasured,
        Some(v) if v >= bound => Verdict::Pass,
        Some(_) => Verdict::Fail,
    };
    TargetResult {
        what,
        value,
        bound,
        verdict,
    }
}

/// Whether `density` falls under the sparse target (≤ 0.1; dense rows, at 1, never do).
pub fn under_sparse_target(density: f64) -> bool {
    density <= SPARSE_TARGET_DENSITY + 1e-9
}

/// The targets of issue #20 on every row: each step at least [`DENSE_TARGET`] times
/// PyTorch's dense step of its model, and each arm at density ≤ 0.1 at least
/// [`SPARSE_TARGET`] times PyTorch's masked-dense step of the same arm.
pub fn targets(comparisons: &[Comparison]) -> Vec<TargetResult> {
    let mut out = Vec::new();
    for c in comparisons {
        out.push(judge(
            format!("{} step vs PyTorch dense", c.label),
            c.dense_ratio(),
            DENSE_TARGET,
        ));
    }
    for c in comparisons
        .iter()
        .filter(|c| under_sparse_target(c.density))
    {
        out.push(judge(
            format!("{} step vs PyTorch masked-dense", c.label),
            c.step_ratio(),
            SPARSE_TARGET,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(model: &str, arm: &str, density: f64, step_ms: f64) -> Entry {
        Entry {
            paper: "p".into(),
            model: model.into(),
            arm: arm.into(),
            density,
            shape: "s".into(),
            period: 1,
            step_ms,
            eval_ms: 1.0,
            step_reps: 3,
            eval_reps: 3,
        }
    }

    fn torch(model: &str, arm: &str, density: f64, step_ms: f64) -> TorchRow {
        TorchRow {
            paper: "p".into(),
            model: model.into(),
            arm: arm.into(),
            density,
            variant: if density < 1.0 {
                "masked-dense"
            } else {
                "dense"
            }
            .into(),
            step_ms,
            eval_ms: 2.0,
        }
    }

    #[test]
    fn ratio_is_torch_over_ours_and_refuses_nonsense() {
        assert_eq!(ratio(Some(4.0), 2.0), Some(2.0));
        assert_eq!(ratio(None, 2.0), None);
        assert_eq!(ratio(Some(4.0), 0.0), None);
        assert_eq!(ratio(Some(f64::NAN), 1.0), None);
    }

    #[test]
    fn rows_pair_with_their_arm_and_their_models_dense_row() {
        let o = [
            ours("m", "dense", 1.0, 2.0),
            ours("m", "ERK@0.10", 0.1, 1.0),
        ];
        let t = [
            torch("m", "dense", 1.0, 3.0),
            torch("m", "ERK@0.10", 0.1, 4.0),
        ];
        let c = compare(&o, &t);
        assert_eq!(c[1].torch_step_ms, Some(4.0));
        assert_eq!(c[1].torch_dense_step_ms, Some(3.0));
        assert_eq!(c[1].step_ratio(), Some(4.0));
        assert_eq!(c[1].dense_ratio(), Some(3.0));
        assert_eq!(c[0].eval_ratio(), Some(2.0));
        assert_eq!(c[0].label, "p / m / dense");
    }

    #[test]
    fn the_sparse_target_covers_density_at_most_a_tenth_only() {
        assert!(under_sparse_target(0.1));
        assert!(under_sparse_target(0.05));
        assert!(!under_sparse_target(0.2));
        assert!(!under_sparse_target(1.0));
    }

    #[test]
    fn targets_pass_fail_and_missing_rows() {
        let o = [
            ours("m", "dense", 1.0, 2.0),
            ours("m", "ERK@0.10", 0.1, 1.0),
            ours("m", "DSN@0.20", 0.2, 10.0),
            ours("other", "dense", 1.0, 1.0),
        ];
        let t = [
            torch("m", "dense", 1.0, 3.0),
            torch("m", "ERK@0.10", 0.1, 1.5),
            torch("m", "DSN@0.20", 0.2, 3.0),
        ];
        let r = targets(&compare(&o, &t));
        // Four dense-target rows, one sparse-target row (only ERK@0.10 is <= 0.1).
        assert_eq!(r.len(), 5);
        let verdicts: Vec<Verdict> = r.iter().map(|t| t.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Pass,        // 3 / 2 >= 1
                Verdict::Pass,        // 3 / 1 >= 1
                Verdict::Fail,        // 3 / 10 < 1
                Verdict::NotMeasured, // no PyTorch row for `other`
                Verdict::Fail,        // 1.5 / 1 < 2
            ]
        );
        assert_eq!(r[4].bound, SPARSE_TARGET);
        assert!(r[4].what.ends_with("vs PyTorch masked-dense"));
    }

    #[test]
    fn a_ratio_exactly_on_the_bound_passes() {
        let r = targets(&compare(
            &[ours("m", "dense", 1.0, 2.0)],
            &[torch("m", "dense", 1.0, 2.0)],
        ));
        assert_eq!(r[0].verdict, Verdict::Pass);
    }
}
