//! Checks that an interrupted, resumed `reproduce` ends with the same report as an
//! uninterrupted one: what every paper crate's resume test calls.

use std::path::Path;

use serde_json::Value;

use crate::cli::Preset;
use crate::error::{HarnessError, HarnessResult};
use crate::progress::ProgressMode;
use crate::report::RunReport;

use super::data_check::DataPolicy;
use super::driver::{ReproduceOptions, reproduce};
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

/// Metrics whose name contains this are wall-clock times (`train_seconds`, ...):
/// they differ between any two invocations, so [`same_results`] leaves them out.
pub const TIME_MARKER: &str = "seconds";

/// `value` without the keys of wall-clock times ([`TIME_MARKER`]), through JSON so
/// that NaN metrics (null) compare equal.
fn without_times<T: serde::Serialize>(value: &T) -> Value {
    match serde_json::json!(value) {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(name, _)| !name.contains(TIME_MARKER))
                .collect(),
        ),
        other => other,
    }
}

/// Whether two reports hold the same arms (names, data sets, metrics, per-seed
/// values, seeds) and the same claims; the first difference is the error.
/// Wall-clock times ([`TIME_MARKER`]) are not compared.
pub fn same_results(a: &RunReport, b: &RunReport) -> HarnessResult<()> {
    let differ = |what: String| Err(HarnessError::invalid("report", what, "the runs differ"));
    if a.arms.len() != b.arms.len() {
        return differ(format!("{} vs {} arms", a.arms.len(), b.arms.len()));
    }
    for (x, y) in a.arms.iter().zip(&b.arms) {
        if x.name != y.name || x.dataset != y.dataset {
            return differ(format!("arm {} on {}", x.name, x.dataset));
        }
        let (mx, my) = (without_times(&x.metrics), without_times(&y.metrics));
        if mx != my {
            let name = mx
                .as_object()
                .and_then(|m| m.iter().find(|(k, v)| my.get(k.as_str()) != Some(*v)))
                .map_or_else(|| "a metric".to_string(), |(k, _)| format!("`{k}`"));
            return differ(format!("{name} of arm {} on {}", x.name, x.dataset));
        }
        if without_times(&x.extra.get("per_seed")) != without_times(&y.extra.get("per_seed"))
            || x.extra.get("seeds") != y.extra.get("seeds")
        {
            return differ(format!(
                "per-seed values of arm {} on {}",
                x.name, x.dataset
            ));
        }
    }
    let claims = |r: &RunReport| -> Vec<Value> {
        r.claims
            .iter()
            .map(|c| serde_json::json!([c.id, c.passed, c.values]))
            .collect()
    };
    if claims(a) != claims(b) {
        return differ("claims".to_string());
    }
    Ok(())
}
