//! Checks that an interrupted, resumed `reproduce` ends with the same report as an
//! uninterrupted one: what every paper crate's resume test calls.

use std::path::Path;

use serde_json::Value;

use crate::cli::Preset;
use crate::error::{HarnessError, HarnessResult};
use crate::progress::ProgressMode;
use crate::report::{PER_SEED, RunReport};

use super::data_check::DataPolicy;
use super::driver::{ReproduceOptions, TRAIN_SECONDS, reproduce};
use super::paper::Paper;

/// The result of [`check_resume`].
#[derive(Debug, Clone)]
pub struct ResumeCheck {
    /// The uninterrupted run's report.
    pub uninterrupted: RunReport,
    /// The report of the interrupted run, after it was resumed.
    pub resumed: RunReport,
    /// Arm-seeds trained before the interruption.
    pub trained_before_interruption: usize,
    /// Arm-seeds the resuming invocation took from records.
    pub taken_from_records: usize,
}

/// Runs `preset` twice under `root`: once straight through, and once stopped after
/// `interrupt_after` arm-seeds and then rerun into the same directory. Returns an
/// error describing the first difference if the two reports' arms or claims differ.
pub fn check_resume<P: Paper>(
    preset: Preset,
    args: &P::ReproduceArgs,
    seeds: Option<usize>,
    data_dir: Option<&Path>,
    root: &Path,
    interrupt_after: usize,
) -> Result<ResumeCheck, P::Error> {
    let options = |dir: &str, stop_after: Option<usize>| ReproduceOptions {
        preset,
        seeds,
        data_dir: data_dir.map(Path::to_path_buf),
        out: Some(root.join(dir)),
        data: DataPolicy::NoFetch,
        progress: ProgressMode::Quiet,
        stop_after,
    };
    let straight = reproduce::<P>(&options("uninterrupted", None), args)?;
    let first = reproduce::<P>(&options("interrupted", Some(interrupt_after)), args)?;
    if first.report.is_some() {
        return Err(HarnessError::invalid(
            "interrupt_after",
            interrupt_after,
            "the plan finished before the interruption; choose fewer arm-seeds",
        )
        .into());
    }
    let second = reproduce::<P>(&options("interrupted", None), args)?;
    let (Some(uninterrupted), Some(resumed)) = (straight.report, second.report) else {
        return Err(HarnessError::invalid(
            "stop_after",
            "none",
            "a run without stop_after ended without a report",
        )
        .into());
    };
    same_results(&uninterrupted, &resumed)?;
    Ok(ResumeCheck {
        uninterrupted,
        resumed,
        trained_before_interruption: first.trained,
        taken_from_records: second.resumed,
    })
}

/// Whether two reports hold the same arms (names, data sets, metrics, per-seed
/// values, seeds) and the same claims, timings aside (every metric named
/// `train_seconds…`, and the outcome of a claim with such a value); the first
/// difference is the error.
pub fn same_results(a: &RunReport, b: &RunReport) -> HarnessResult<()> {
    let differ = |what: String| Err(HarnessError::invalid("report", what, "the runs differ"));
    if a.arms.len() != b.arms.len() {
        return differ(format!("{} vs {} arms", a.arms.len(), b.arms.len()));
    }
    let untimed = |metrics: &std::collections::BTreeMap<String, f64>| -> Value {
        let kept: std::collections::BTreeMap<&String, &f64> = metrics
            .iter()
            .filter(|(k, _)| !k.starts_with(TRAIN_SECONDS))
            .collect();
        serde_json::json!(kept)
    };
    let untimed_seeds = |extra: Option<&Value>| -> Option<Value> {
        let mut per_seed = extra?.clone();
        if let Value::Object(map) = &mut per_seed {
            map.retain(|name, _| !name.starts_with(TRAIN_SECONDS));
        }
        Some(per_seed)
    };
    for (x, y) in a.arms.iter().zip(&b.arms) {
        // Through JSON so that NaN metrics (null) compare equal.
        if x.name != y.name || x.dataset != y.dataset || untimed(&x.metrics) != untimed(&y.metrics)
        {
            return differ(format!("arm {} on {}", x.name, x.dataset));
        }
        if untimed_seeds(x.extra.get(PER_SEED)) != untimed_seeds(y.extra.get(PER_SEED))
            || x.extra.get("seeds") != y.extra.get("seeds")
        {
            return differ(format!(
                "per-seed values of arm {} on {}",
                x.name, x.dataset
            ));
        }
    }
    // A claim about measured time (a value named `train_seconds…`) differs between
    // runs by nature: only its presence is compared.
    let claims = |r: &RunReport| -> Vec<Value> {
        r.claims
            .iter()
            .map(|c| {
                if c.values.keys().any(|k| k.starts_with(TRAIN_SECONDS)) {
                    serde_json::json!([c.id])
                } else {
                    serde_json::json!([c.id, c.passed, c.values])
                }
            })
            .collect()
    };
    if claims(a) != claims(b) {
        return differ("claims".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::Claim;
    use crate::report::ArmReport;

    fn report(step_seconds: f64, faster: bool, bpc: f64) -> RunReport {
        let arm = ArmReport::new("moe", "text")
            .with_seed_values("test_bpc", &[bpc, bpc])
            .and_then(|a| a.with_seed_values("train_seconds_per_step", &[step_seconds, 1.0]))
            .unwrap();
        let mut report = RunReport::new("paper", "0.1.0", "smoke", vec![0, 1]);
        report.arms.push(arm);
        report.claims.push(Claim::new(
            "faster",
            "a step is faster",
            faster,
            [("train_seconds_per_step_moe", step_seconds)],
        ));
        report
            .claims
            .push(Claim::new("better", "lower BPC", bpc < 2.0, [("bpc", bpc)]));
        report
    }

    #[test]
    fn timings_and_claims_about_time_may_differ_but_nothing_else() {
        same_results(&report(0.5, true, 1.5), &report(0.7, false, 1.5)).unwrap();
        let err = same_results(&report(0.5, true, 1.5), &report(0.5, true, 1.6))
            .unwrap_err()
            .to_string();
        assert!(err.contains("arm moe"), "{err}");
        let mut other = report(0.5, true, 1.5);
        other.claims[1].passed = false;
        assert!(same_results(&report(0.5, true, 1.5), &other).is_err());
    }
}
