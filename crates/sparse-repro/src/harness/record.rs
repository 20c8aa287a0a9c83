//! What a run directory remembers between invocations, so that an interrupted
//! `reproduce --out DIR` resumes: the run's manifest and one record per finished
//! arm-seed.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{HarnessError, HarnessResult};
use crate::run_dir::write_atomic;

use super::paper::Metrics;

/// The file of the run's manifest inside the run directory.
pub const MANIFEST: &str = "run.json";
/// The folder of per-run records inside the run directory.
pub const RECORDS: &str = "records";

/// What identifies a run directory's reproduction: resuming into it with another
/// crate, preset, plan or seed list is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The crate.
    pub crate_name: String,
    /// The preset.
    pub preset: String,
    /// The plan's settings.
    pub config: serde_json::Value,
    /// Seeds per arm.
    pub seeds: usize,
    /// When the first invocation started (ISO 8601, UTC).
    pub started_utc: String,
}

impl Manifest {
    /// Reads the manifest of `dir`, if it has one.
    pub fn read(dir: &Path) -> HarnessResult<Option<Self>> {
        read_json(&dir.join(MANIFEST))
    }

    /// Writes the manifest into `dir`.
    pub fn write(&self, dir: &Path) -> HarnessResult<()> {
        write_json(&dir.join(MANIFEST), self)
    }

    /// Whether `other` describes the same reproduction (ignoring the start time).
    pub fn same_run(&self, other: &Self) -> bool {
        self.crate_name == other.crate_name
            && self.preset == other.preset
            && self.config == other.config
            && self.seeds == other.seeds
    }
}

/// One finished arm-seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedRecord<O> {
    /// The arm as configured (compared with the plan's on resume).
    pub arm: serde_json::Value,
    /// The seed.
    pub seed: u64,
    /// The paper's outcome.
    pub outcome: O,
    /// The run's metrics.
    pub metrics: Metrics,
    /// Wall-clock seconds the run trained for (measured by the harness).
    pub seconds: f64,
}

/// The record file of the run with `stem` in `dir`.
pub fn record_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join(RECORDS).join(format!("{stem}.json"))
}

/// The record at `path` if it exists, parses, and matches `arm` and `seed`.
pub fn read_record<O: DeserializeOwned>(
    path: &Path,
    arm: &serde_json::Value,
    seed: u64,
) -> HarnessResult<Option<SeedRecord<O>>> {
    let record: Option<SeedRecord<O>> = read_json(path)?;
    Ok(record.filter(|r| &r.arm == arm && r.seed == seed))
}

/// Writes `record` atomically.
pub fn write_record<O: Serialize>(path: &Path, record: &SeedRecord<O>) -> HarnessResult<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| HarnessError::io(parent, e))?;
    }
    write_json(path, record)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> HarnessResult<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(HarnessError::io(path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| HarnessError::ReportParse {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> HarnessResult<()> {
    let json =
        serde_json::to_vec_pretty(value).map_err(|e| HarnessError::Serialise(e.to_string()))?;
    write_atomic(path, &json)
}
