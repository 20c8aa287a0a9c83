//! The verification suite of `opencfd-scu verify`: each case runs the solver on a
//! problem with a known answer and turns the measured numbers into PASS/FAIL claims.

mod accuracy;
mod periodic;
mod report;
mod shock_tube;

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sparse_repro::claim::Claim;
use sparse_repro::plot::LinePlot;

pub use report::VerificationReport;

use crate::error::{CfdError, CfdResult};

/// How large the suite's grids are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SuiteSize {
    /// Seconds: the smallest grids that exercise every check (tests).
    Smoke,
    /// Minutes on two cores: `verify --quick`.
    Quick,
    /// The documented long runs (finer grids, TGV at 64³).
    Full,
}

/// The outcome of one verification case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    /// Short name (`sod`, `shu-osher`, ...).
    pub name: String,
    /// What was run, in words.
    pub description: String,
    /// The claims it checks.
    pub claims: Vec<Claim>,
    /// Measured numbers worth printing.
    pub metrics: BTreeMap<String, f64>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Plots, by file name (not serialised).
    #[serde(skip)]
    pub plots: Vec<(String, LinePlot)>,
}

impl CaseResult {
    fn new(name: &str, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            claims: Vec::new(),
            metrics: BTreeMap::new(),
            seconds: 0.0,
            plots: Vec::new(),
        }
    }

    fn metric(&mut self, name: impl Into<String>, value: f64) {
        self.metrics.insert(name.into(), value);
    }
}

/// The names of the cases, in the order they run.
pub const CASES: [&str; 7] = [
    "sod",
    "shu-osher",
    "vortex-order",
    "freestream",
    "decomposition",
    "conservation",
    "taylor-green",
];

/// Runs the named cases (all when `only` is empty).
pub fn run_suite(
    size: SuiteSize,
    only: &[String],
    mut progress: impl FnMut(&CaseResult),
) -> CfdResult<VerificationReport> {
    for name in only {
        if !CASES.contains(&name.as_str()) {
            return Err(CfdError::Config(format!(
                "unknown verification case {name:?}; the cases are {}",
                CASES.join(", ")
            )));
        }
    }
    let started = Instant::now();
    let mut cases = Vec::new();
    for name in CASES {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let timer = Instant::now();
        let mut result = match name {
            "sod" => shock_tube::sod(size)?,
            "shu-osher" => shock_tube::shu_osher(size)?,
            "vortex-order" => accuracy::vortex_order(size)?,
            "freestream" => accuracy::freestream(size)?,
            "decomposition" => periodic::decomposition(size)?,
            "conservation" => periodic::conservation(size)?,
            _ => periodic::taylor_green(size)?,
        };
        result.seconds = timer.elapsed().as_secs_f64();
        progress(&result);
        cases.push(result);
    }
    Ok(VerificationReport::new(
        size,
        cases,
        started.elapsed().as_secs_f64(),
    ))
}

/// `log2(coarse / fine)` for errors on grids refined by two.
fn observed_order(coarse: f64, fine: f64, ratio: f64) -> f64 {
    (coarse / fine).ln() / ratio.ln()
}
