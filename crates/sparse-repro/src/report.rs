//! The run report of a reproduction: `report.json` (the contract's shape) and `report.md`.
//!
//! ```
//! use sparse_repro::claim::Claim;
//! use sparse_repro::metrics::MeanStd;
//! use sparse_repro::report::{Anchor, ArmReport, RunReport};
//! let mut report = RunReport::new("dsn-tsc", "0.1.0", "smoke", vec![0, 1, 2]);
//! let accuracy = MeanStd::from_values(&[0.98, 0.99, 0.99]).unwrap();
//! report.arms.push(
//!     ArmReport::new("dense", "GunPoint")
//!         .with_mean_std("test_accuracy", accuracy)
//!         .with_metric("density", 1.0),
//! );
//! report.claims.push(Claim::at_least("dense-learns", "dense beats chance",
//!     "dense", accuracy.mean, "chance", 0.5));
//! report.anchors.push(Anchor::new("dense", "test_accuracy_mean", 0.987, "Table 2"));
//! report.wall_seconds = 1.5;
//! let dir = tempfile::tempdir().unwrap();
//! report.write_to_dir(dir.path()).unwrap();
//! let back = RunReport::from_json_file(&dir.path().join("report.json")).unwrap();
//! assert_eq!(back, report);
//! assert!(report.to_markdown().contains("**PASS** `dense-learns`"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::claim::Claim;
use crate::error::{HarnessError, HarnessResult};
use crate::metrics::MeanStd;
use crate::run_dir::write_atomic;
use crate::utc::UtcDateTime;

/// The file name of the machine-readable report.
pub const REPORT_JSON: &str = "report.json";
/// The file name of the human-readable report.
pub const REPORT_MD: &str = "report.md";

/// The extra arm field holding per-seed values (see [`ArmReport::with_seed_values`]).
pub const PER_SEED: &str = "per_seed";

/// Everything one `reproduce` run found, as written to `report.json`.
///
/// The first nine fields are the contract's; `machine`, `config` and `anchors` are
/// optional additions, and `extra` keeps any other top-level field a crate adds
/// (or a newer report contains) through a round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The paper crate's name, e.g. `"dsn-tsc"` (JSON key `crate`).
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// The crate's version.
    pub version: String,
    /// The preset: `smoke`, `quick` or `paper`.
    pub preset: String,
    /// The seeds every arm was run with.
    pub seeds: Vec<u64>,
    /// `git rev-parse HEAD` at run time, or `"unknown"`.
    pub git_commit: String,
    /// When the run started, ISO-8601 UTC (`2026-11-28T10:15:00Z`).
    pub started_utc: String,
    /// Wall-clock duration of the whole run in seconds.
    pub wall_seconds: f64,
    /// One entry per arm (method × setting).
    pub arms: Vec<ArmReport>,
    /// The paper's claims, checked against this run.
    pub claims: Vec<Claim>,
    /// The machine the run used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineInfo>,
    /// The resolved configuration (hyperparameters) of the run, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    /// The paper's numbers to show beside ours.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anchors: Vec<Anchor>,
    /// Any further top-level fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The results of one arm, aggregated over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmReport {
    /// The arm's name, e.g. `"rigl-s0.9"`.
    pub name: String,
    /// The dataset it was trained and evaluated on.
    pub dataset: String,
    /// Named numbers: `<metric>_mean` / `<metric>_std` pairs over seeds, and single
    /// numbers such as `params`, `density`, `inference_flops`. NaN is written as `null`.
    #[serde(with = "nan_as_null::map")]
    pub metrics: BTreeMap<String, f64>,
    /// Any further fields (e.g. per-seed values, the arm's hyperparameters).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl ArmReport {
    /// An arm with no metrics yet.
    pub fn new(name: impl Into<String>, dataset: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            dataset: dataset.into(),
            metrics: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) the metric `name`.
    pub fn with_metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.insert(name.into(), value);
        self
    }

    /// Adds `<name>_mean` and `<name>_std` from `value`.
    pub fn with_mean_std(mut self, name: &str, value: MeanStd) -> Self {
        self.metrics.insert(format!("{name}_mean"), value.mean);
        self.metrics.insert(format!("{name}_std"), value.std);
        self
    }

    /// Adds `<name>_mean` / `<name>_std` over the per-seed `values`, and keeps the
    /// values themselves under `per_seed.<name>` (an extra field) for later analysis.
    pub fn with_seed_values(mut self, name: &str, values: &[f64]) -> HarnessResult<Self> {
        let summary = MeanStd::from_values(values)?;
        let per_seed = self
            .extra
            .entry(PER_SEED.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(map) = per_seed {
            map.insert(name.to_string(), serde_json::json!(values));
        }
        Ok(self.with_mean_std(name, summary))
    }

    /// The per-seed values stored by [`ArmReport::with_seed_values`].
    pub fn seed_values(&self, name: &str) -> Option<Vec<f64>> {
        let values = self.extra.get(PER_SEED)?.get(name)?.as_array()?;
        values.iter().map(Value::as_f64).collect()
    }

    /// Adds an extra field (serialised beside `metrics`).
    pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// The metric `name`, if present.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }

    /// `<name>_mean` and `<name>_std` as a [`MeanStd`] (with `n` unknown, set to 0), if both exist.
    pub fn mean_std(&self, name: &str) -> Option<MeanStd> {
        Some(MeanStd {
            mean: self.metric(&format!("{name}_mean"))?,
            std: self.metric(&format!("{name}_std"))?,
            n: 0,
        })
    }
}

/// A number from the paper, to show beside ours in `report.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    /// The arm it corresponds to.
    pub arm: String,
    /// The metric key of ours it compares with (e.g. `test_accuracy_mean`), in the same unit.
    pub metric: String,
    /// The paper's value.
    pub paper: f64,
    /// Where in the paper (e.g. `"Table 2, ResNet-50, 90 %"`).
    pub source: String,
    /// Why the settings differ, if they do (e.g. "paper: 200 epochs, quick: 5").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The data set of the arm, where one arm name is reported on several data sets
    /// (`None`: the first arm of that name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

impl Anchor {
    /// A paper number without a note.
    pub fn new(
        arm: impl Into<String>,
        metric: impl Into<String>,
        paper: f64,
        source: impl Into<String>,
    ) -> Self {
        Self {
            arm: arm.into(),
            metric: metric.into(),
            paper,
            source: source.into(),
            note: None,
            dataset: None,
        }
    }

    /// Compares with the arm of this name on `dataset` (for runs that report the
    /// same arm names on several data sets).
    pub fn on_dataset(mut self, dataset: impl Into<String>) -> Self {
        self.dataset = Some(dataset.into());
        self
    }

    /// Adds a note about differing settings.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// The machine a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// Logical cores available to the process.
    pub cores: usize,
    /// Operating system (`std::env::consts::OS`).
    pub os: String,
    /// CPU architecture (`std::env::consts::ARCH`).
    pub arch: String,
    /// The candle device, e.g. `"cpu"` or `"cuda:0"`, if the crate records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl MachineInfo {
    /// The current machine (device unknown).
    pub fn current() -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            device: None,
        }
    }
}

/// The current commit: `git rev-parse HEAD` in the working directory, else in the
/// source tree this crate was built from (a binary run from outside its checkout),
/// else `"unknown"` (no git, or an installed crate without its repository).
pub fn git_commit() -> String {
    let head = |dir: Option<&str>| -> Option<String> {
        let mut git = std::process::Command::new("git");
        if let Some(dir) = dir {
            git.args(["-C", dir]);
        }
        git.args(["rev-parse", "HEAD"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    head(None)
        .or_else(|| head(Some(env!("CARGO_MANIFEST_DIR"))))
        .unwrap_or_else(|| "unknown".to_string())
}

impl RunReport {
    /// A report started now: commit from git, `started_utc` now, this machine, no arms yet.
    pub fn new(
        crate_name: impl Into<String>,
        version: impl Into<String>,
        preset: impl Into<String>,
        seeds: Vec<u64>,
    ) -> Self {
        Self::started_at(crate_name, version, preset, seeds, &UtcDateTime::now())
    }

    /// Like [`RunReport::new`] with an explicit start time (the one the run directory is named after).
    pub fn started_at(
        crate_name: impl Into<String>,
        version: impl Into<String>,
        preset: impl Into<String>,
        seeds: Vec<u64>,
        started: &UtcDateTime,
    ) -> Self {
        Self {
            crate_name: crate_name.into(),
            version: version.into(),
            preset: preset.into(),
            seeds,
            git_commit: git_commit(),
            started_utc: started.iso8601(),
            wall_seconds: 0.0,
            arms: Vec::new(),
            claims: Vec::new(),
            machine: Some(MachineInfo::current()),
            config: None,
            anchors: Vec::new(),
            extra: BTreeMap::new(),
        }
    }

    /// The arm called `name`.
    pub fn arm(&self, name: &str) -> Option<&ArmReport> {
        self.arms.iter().find(|arm| arm.name == name)
    }

    /// The arm called `name` on `dataset`, if there is one.
    pub fn arm_on(&self, name: &str, dataset: &str) -> Option<&ArmReport> {
        self.arms
            .iter()
            .find(|arm| arm.name == name && arm.dataset == dataset)
    }

    /// Whether every claim passed.
    pub fn all_claims_passed(&self) -> bool {
        self.claims.iter().all(|claim| claim.passed)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> HarnessResult<String> {
        serde_json::to_string_pretty(self).map_err(|e| HarnessError::Serialise(e.to_string()))
    }

    /// Parses a report from JSON text; `path` is only used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> HarnessResult<Self> {
        serde_json::from_str(text).map_err(|e| HarnessError::ReportParse {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    /// Reads a `report.json`.
    pub fn from_json_file(path: &Path) -> HarnessResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| HarnessError::io(path, e))?;
        Self::from_json_str(&text, path)
    }

    /// Writes `report.json` and `report.md` into `dir`, each atomically.
    pub fn write_to_dir(&self, dir: &Path) -> HarnessResult<()> {
        write_atomic(&dir.join(REPORT_JSON), self.to_json()?.as_bytes())?;
        write_atomic(&dir.join(REPORT_MD), self.to_markdown().as_bytes())
    }

    /// The report as Markdown: run facts, an arms × metrics table (mean ± std), the
    /// claims with PASS/FAIL, and the paper's numbers beside ours.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# {} {}: preset `{}`\n",
            self.crate_name, self.version, self.preset
        );
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        let _ = writeln!(md, "- seeds: {}", seeds.join(", "));
        let _ = writeln!(md, "- commit: `{}`", self.git_commit);
        let _ = writeln!(md, "- started (UTC): {}", self.started_utc);
        let _ = writeln!(md, "- wall time: {:.1} s", self.wall_seconds);
        if let Some(machine) = &self.machine {
            let device = machine
                .device
                .as_deref()
                .map(|d| format!(", {d}"))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- machine: {} cores, {} {}{device}",
                machine.cores, machine.os, machine.arch
            );
        }
        md.push('\n');
        self.results_table(&mut md);
        self.claims_section(&mut md);
        self.anchors_section(&mut md);
        md
    }

    fn results_table(&self, md: &mut String) {
        md.push_str("## Results\n\n");
        if self.arms.is_empty() {
            md.push_str("No arms.\n\n");
            return;
        }
        let columns = metric_columns(&self.arms);
        let _ = write!(md, "| arm | dataset |");
        for column in &columns {
            let _ = write!(md, " {} |", escape_cell(column));
        }
        let _ = write!(md, "\n|---|---|");
        md.push_str(&"---|".repeat(columns.len()));
        md.push('\n');
        for arm in &self.arms {
            let _ = write!(
                md,
                "| {} | {} |",
                escape_cell(&arm.name),
                escape_cell(&arm.dataset)
            );
            for column in &columns {
                let cell = match (arm.mean_std(column), arm.metric(column)) {
                    (Some(ms), _) => {
                        format!("{} ± {}", format_number(ms.mean), format_number(ms.std))
                    }
                    (None, Some(value)) => format_number(value),
                    (None, None) => "–".to_string(),
                };
                let _ = write!(md, " {cell} |");
            }
            md.push('\n');
        }
        md.push('\n');
    }

    fn claims_section(&self, md: &mut String) {
        md.push_str("## Claims\n\n");
        if self.claims.is_empty() {
            md.push_str("No claims.\n\n");
            return;
        }
        let passed = self.claims.iter().filter(|c| c.passed).count();
        let _ = writeln!(md, "{passed} of {} claims passed.\n", self.claims.len());
        for claim in &self.claims {
            let values: Vec<String> = claim
                .values
                .iter()
                .map(|(name, value)| format!("{name} = {}", format_number(*value)))
                .collect();
            let _ = writeln!(
                md,
                "- **{}** `{}`: {} ({})",
                claim.status(),
                claim.id,
                claim.statement,
                values.join(", ")
            );
        }
        md.push('\n');
    }

    fn anchors_section(&self, md: &mut String) {
        md.push_str("## Published numbers vs. this run\n\n");
        if self.anchors.is_empty() {
            md.push_str("No published numbers recorded.\n");
            return;
        }
        md.push_str(
            "| arm | metric | published | this run | source | note |\n|---|---|---|---|---|---|\n",
        );
        for anchor in &self.anchors {
            let arm = match &anchor.dataset {
                Some(dataset) => self.arm_on(&anchor.arm, dataset),
                None => self.arm(&anchor.arm),
            };
            let ours = arm.and_then(|arm| {
                let base = anchor.metric.strip_suffix("_mean");
                match base.and_then(|b| arm.mean_std(b)) {
                    Some(ms) => Some(format!(
                        "{} ± {}",
                        format_number(ms.mean),
                        format_number(ms.std)
                    )),
                    None => arm.metric(&anchor.metric).map(format_number),
                }
            });
            let arm_cell = match &anchor.dataset {
                Some(dataset) => format!("{} ({dataset})", anchor.arm),
                None => anchor.arm.clone(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                escape_cell(&arm_cell),
                escape_cell(&anchor.metric),
                format_number(anchor.paper),
                ours.unwrap_or_else(|| "–".to_string()),
                escape_cell(&anchor.source),
                escape_cell(anchor.note.as_deref().unwrap_or("")),
            );
        }
    }
}

/// The table columns: metric names in sorted order, with `x_mean`/`x_std` pairs merged into `x`.
fn metric_columns(arms: &[ArmReport]) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for arm in arms {
        for key in arm.metrics.keys() {
            let column = match key
                .strip_suffix("_mean")
                .or_else(|| key.strip_suffix("_std"))
            {
                Some(base) if arm.mean_std(base).is_some() => base.to_string(),
                _ => key.clone(),
            };
            if !columns.contains(&column) {
                columns.push(column);
            }
        }
    }
    columns.sort();
    columns
}

/// Formats a number for a table: integers below 10⁶ exactly, very large or small numbers in
/// scientific notation, others with 4 decimals; NaN as `NaN`.
pub fn format_number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.fract() == 0.0 && value.abs() < 1e6 {
        format!("{value:.0}")
    } else if value.abs() >= 1e5 || value.abs() < 1e-3 {
        format!("{value:.3e}")
    } else {
        format!("{value:.4}")
    }
}

fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The NaN-as-`null` serde helpers, kept at this path; they live in
/// [`crate::claim::nan_as_null`], which both claims and reports use, so that the
/// claim module does not depend on this one.
pub use crate::claim::nan_as_null;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> RunReport {
        let mut report = RunReport::started_at(
            "dsn-tsc",
            "0.1.0",
            "quick",
            vec![0, 1, 2],
            &UtcDateTime::from_unix_seconds(1_795_860_900),
        );
        report.wall_seconds = 512.3;
        report.arms.push(
            ArmReport::new("dense", "GunPoint")
                .with_mean_std(
                    "test_accuracy",
                    MeanStd {
                        mean: 0.987,
                        std: 0.004,
                        n: 3,
                    },
                )
                .with_metric("params", 123_456.0)
                .with_metric("density", 1.0)
                .with_metric("inference_flops", 1.2e7),
        );
        report.arms.push(
            ArmReport::new("dsn", "GunPoint")
                .with_mean_std(
                    "test_accuracy",
                    MeanStd {
                        mean: 0.912,
                        std: 0.01,
                        n: 3,
                    },
                )
                .with_metric("density", 0.1),
        );
        report.claims.push(Claim::at_least(
            "dsn-beats-static",
            "DSN >= static sparse on average",
            "dsn",
            0.912,
            "static",
            0.897,
        ));
        report.claims.push(Claim::at_least(
            "dsn-beats-dense",
            "DSN >= dense",
            "dsn",
            0.912,
            "dense",
            0.987,
        ));
        report.anchors.push(
            Anchor::new("dense", "test_accuracy_mean", 0.99, "Table 1")
                .with_note("paper: 1000 epochs"),
        );
        report
    }

    fn keys(value: &Value) -> Vec<String> {
        let mut keys: Vec<String> = value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    #[test]
    fn json_shape_matches_the_contract() -> HarnessResult<()> {
        let mut report = sample();
        report.machine = None;
        report.anchors.clear();
        let value: Value = serde_json::from_str(&report.to_json()?)
            .map_err(|e| HarnessError::Serialise(e.to_string()))?;
        assert_eq!(
            keys(&value),
            [
                "arms",
                "claims",
                "crate",
                "git_commit",
                "preset",
                "seeds",
                "started_utc",
                "version",
                "wall_seconds"
            ]
        );
        assert_eq!(value["crate"], json!("dsn-tsc"));
        assert_eq!(value["seeds"], json!([0, 1, 2]));
        assert_eq!(value["started_utc"], json!("2026-11-28T10:15:00Z"));
        assert_eq!(value["wall_seconds"], json!(512.3));
        assert_eq!(keys(&value["arms"][0]), ["dataset", "metrics", "name"]);
        assert_eq!(
            value["arms"][0]["metrics"]["test_accuracy_mean"],
            json!(0.987)
        );
        assert_eq!(
            value["arms"][0]["metrics"]["test_accuracy_std"],
            json!(0.004)
        );
        assert_eq!(value["arms"][0]["metrics"]["params"], json!(123456.0));
        assert_eq!(
            keys(&value["claims"][0]),
            ["id", "passed", "statement", "values"]
        );
        assert_eq!(value["claims"][0]["passed"], json!(true));
        assert_eq!(
            value["claims"][0]["values"],
            json!({"dsn": 0.912, "static": 0.897})
        );
        assert_eq!(value["claims"][1]["passed"], json!(false));
        Ok(())
    }

    #[test]
    fn json_round_trip_with_extras_and_nan() -> HarnessResult<()> {
        let mut report = sample();
        report.config = Some(json!({"epochs": 5}));
        report.extra.insert("notes".into(), json!("x"));
        report.arms[0] = report.arms[0]
            .clone()
            .with_extra("per_seed", json!([0.98, 0.99]));
        report.arms[1].metrics.insert("loss".into(), f64::NAN);
        // A mean of three floats: not exactly representable in a short decimal.
        let awkward = (0.98 + 0.99 + 0.99) / 3.0;
        report.arms[1].metrics.insert("awkward".into(), awkward);
        let dir = tempfile::tempdir().map_err(|e| HarnessError::io("tempdir", e))?;
        report.write_to_dir(dir.path())?;
        let back = RunReport::from_json_file(&dir.path().join(REPORT_JSON))?;
        assert!(back.arms[1].metrics["loss"].is_nan());
        assert_eq!(back.arms[1].metrics["awkward"].to_bits(), awkward.to_bits());
        // NaN != NaN: compare the rest.
        let mut back_cmp = back.clone();
        back_cmp.arms[1].metrics.remove("loss");
        let mut report_cmp = report.clone();
        report_cmp.arms[1].metrics.remove("loss");
        assert_eq!(back_cmp, report_cmp);
        assert_eq!(back.extra["notes"], json!("x"));
        assert_eq!(back.arms[0].extra["per_seed"], json!([0.98, 0.99]));
        assert!(dir.path().join(REPORT_MD).is_file());
        Ok(())
    }

    #[test]
    fn seed_values_give_mean_std_and_are_kept() -> HarnessResult<()> {
        let arm = ArmReport::new("a", "d").with_seed_values("test_accuracy", &[0.8, 0.9, 1.0])?;
        assert!((arm.metrics["test_accuracy_mean"] - 0.9).abs() < 1e-12);
        assert!((arm.metrics["test_accuracy_std"] - 0.1).abs() < 1e-12);
        assert_eq!(arm.seed_values("test_accuracy"), Some(vec![0.8, 0.9, 1.0]));
        let arm = arm.with_seed_values("loss", &[2.0])?;
        assert_eq!(arm.seed_values("loss"), Some(vec![2.0]));
        assert_eq!(arm.seed_values("test_accuracy").map(|v| v.len()), Some(3));
        assert!(ArmReport::new("a", "d").with_seed_values("x", &[]).is_err());
        Ok(())
    }

    #[test]
    fn bad_json_names_the_file_and_line() {
        let err =
            RunReport::from_json_str("{\n  \"crate\": 3\n}", Path::new("r.json")).unwrap_err();
        match err {
            HarnessError::ReportParse { path, line, .. } => {
                assert_eq!(path, Path::new("r.json"));
                assert_eq!(line, 2);
            }
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn markdown_has_table_claims_and_anchors() {
        let md = sample().to_markdown();
        assert!(
            md.contains("| arm | dataset | density | inference_flops | params | test_accuracy |"),
            "{md}"
        );
        assert!(
            md.contains("| dense | GunPoint | 1 | 1.200e7 | 123456 | 0.9870 ± 0.0040 |"),
            "{md}"
        );
        assert!(
            md.contains("| dsn | GunPoint | 0.1000 | – | – | 0.9120 ± 0.0100 |"),
            "{md}"
        );
        assert!(md.contains("- **PASS** `dsn-beats-static`: DSN >= static sparse on average (dsn = 0.9120, static = 0.8970)"), "{md}");
        assert!(md.contains("- **FAIL** `dsn-beats-dense`"), "{md}");
        assert!(md.contains("1 of 2 claims passed."));
        assert!(md.contains("| dense | test_accuracy_mean | 0.9900 | 0.9870 ± 0.0040 | Table 1 | paper: 1000 epochs |"), "{md}");
    }

    #[test]
    fn anchor_on_a_dataset_compares_with_that_datasets_arm() -> HarnessResult<()> {
        let mut report = sample();
        report.arms.push(
            ArmReport::new("dsn", "ArrowHead")
                .with_mean_std("test_accuracy", MeanStd::from_values(&[0.7, 0.8])?),
        );
        report.anchors = vec![
            Anchor::new("dsn", "test_accuracy_mean", 0.81, "ROCKET").on_dataset("ArrowHead"),
            Anchor::new("dsn", "test_accuracy_mean", 1.0, "ROCKET").on_dataset("GunPoint"),
            Anchor::new("dsn", "test_accuracy_mean", 0.9, "ROCKET").on_dataset("OSULeaf"),
        ];
        let md = report.to_markdown();
        assert!(
            md.contains(
                "| dsn (ArrowHead) | test_accuracy_mean | 0.8100 | 0.7500 ± 0.0707 | ROCKET |  |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| dsn (GunPoint) | test_accuracy_mean | 1 | 0.9120 ± 0.0100 | ROCKET |  |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| dsn (OSULeaf) | test_accuracy_mean | 0.9000 | – | ROCKET |  |"),
            "{md}"
        );
        let back: RunReport = serde_json::from_str(&report.to_json()?)
            .map_err(|e| HarnessError::Serialise(e.to_string()))?;
        assert_eq!(back.anchors, report.anchors);
        Ok(())
    }

    #[test]
    fn number_formatting() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(0.87349), "0.8735");
        assert_eq!(format_number(1.2e7 + 0.5), "1.200e7");
        assert_eq!(format_number(0.0001), "1.000e-4");
        assert_eq!(format_number(f64::NAN), "NaN");
    }
}
