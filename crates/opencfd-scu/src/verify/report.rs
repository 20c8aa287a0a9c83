//! `report.json` and `report.md` of a verification run, with its SVG plots.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sparse_repro::report::{MachineInfo, format_number, git_commit};
use sparse_repro::run_dir::write_atomic;

use super::{CaseResult, SuiteSize};
use crate::error::{CfdError, CfdResult};

/// Every case of one `verify` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerificationReport {
    /// The grid sizes used.
    pub size: SuiteSize,
    /// The cases, in run order.
    pub cases: Vec<CaseResult>,
    /// Wall-clock seconds of the whole suite.
    pub seconds: f64,
    /// The commit the binary was built from.
    pub commit: String,
    /// The machine it ran on.
    pub machine: MachineInfo,
}

impl VerificationReport {
    pub(super) fn new(size: SuiteSize, cases: Vec<CaseResult>, seconds: f64) -> Self {
        Self {
            size,
            cases,
            seconds,
            commit: git_commit(),
            machine: MachineInfo::current(),
        }
    }

    /// Whether every claim of every case passed.
    pub fn all_passed(&self) -> bool {
        self.cases
            .iter()
            .all(|case| case.claims.iter().all(|claim| claim.passed))
    }

    /// (passed, total) claims.
    pub fn tally(&self) -> (usize, usize) {
        let claims = self.cases.iter().flat_map(|case| &case.claims);
        let total = claims.clone().count();
        (claims.filter(|claim| claim.passed).count(), total)
    }

    /// The report as Markdown: one table of checks, then each case's numbers.
    pub fn to_markdown(&self) -> String {
        let (passed, total) = self.tally();
        let mut md = String::new();
        let _ = writeln!(md, "# OpenCFD-SCU verification ({:?})\n", self.size);
        let _ = writeln!(
            md,
            "{passed}/{total} checks pass; {:.0} s on {} cores ({}), commit {}.\n",
            self.seconds, self.machine.cores, self.machine.arch, self.commit
        );
        let _ = writeln!(md, "| case | check | result | values |\n|---|---|---|---|");
        for case in &self.cases {
            for claim in &case.claims {
                let values: Vec<String> = claim
                    .values
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", format_number(*v)))
                    .collect();
                let _ = writeln!(
                    md,
                    "| {} | {} | **{}** | {} |",
                    case.name,
                    claim.statement,
                    claim.status(),
                    values.join(", ")
                );
            }
        }
        for case in &self.cases {
            let _ = writeln!(
                md,
                "\n## {} ({:.1} s)\n\n{}\n",
                case.name, case.seconds, case.description
            );
            for (name, value) in &case.metrics {
                let _ = writeln!(md, "- {name}: {}", format_number(*value));
            }
            for (file, _) in &case.plots {
                let _ = writeln!(md, "\n![{file}]({file})");
            }
        }
        md
    }

    /// Writes `report.json`, `report.md` and every plot into `dir`.
    pub fn write_to_dir(&self, dir: &Path) -> CfdResult<()> {
        let io = |path: &Path, source| CfdError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| CfdError::Config(format!("report serialisation: {e}")))?;
        for (name, text) in [("report.json", json), ("report.md", self.to_markdown())] {
            write_atomic(&dir.join(name), text.as_bytes())?;
        }
        for case in &self.cases {
            for (file, plot) in &case.plots {
                plot.write_svg(&dir.join(file))?;
            }
        }
        Ok(())
    }
}
