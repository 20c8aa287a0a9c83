//! Where a run writes: the output directory and atomic file writes.
//!
//! Without `--out`, a run goes to `runs/<crate>/<preset>-<UTC timestamp>/` relative to
//! the working directory, e.g. `runs/dsn-tsc/quick-20261128T101500Z/`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{HarnessError, HarnessResult};
use crate::utc::UtcDateTime;

/// The default run directory name: `<preset>-<YYYYMMDDTHHMMSSZ>`.
pub fn run_dir_name(preset: &str, started: &UtcDateTime) -> String {
    format!("{preset}-{}", started.compact())
}

/// The default run directory under `root`: `root/runs/<crate_name>/<preset>-<timestamp>`.
pub fn default_run_dir(
    root: &Path,
    crate_name: &str,
    preset: &str,
    started: &UtcDateTime,
) -> PathBuf {
    root.join("runs")
        .join(crate_name)
        .join(run_dir_name(preset, started))
}

/// Resolves and creates the output directory of a run.
///
/// `out` wins when given (created if missing, reused if present). Otherwise the
/// default directory under `root` is used; if it already exists (two runs started in
/// the same second) a suffix `-2`, `-3`, ... keeps runs apart.
pub fn resolve_out_dir(
    out: Option<&Path>,
    root: &Path,
    crate_name: &str,
    preset: &str,
    started: &UtcDateTime,
) -> HarnessResult<PathBuf> {
    let dir = match out {
        Some(dir) => dir.to_path_buf(),
        None => {
            let base = default_run_dir(root, crate_name, preset, started);
            let mut candidate = base.clone();
            let mut suffix = 2;
            while candidate.exists() {
                candidate =
                    base.with_file_name(format!("{}-{suffix}", run_dir_name(preset, started)));
                suffix += 1;
            }
            candidate
        }
    };
    fs::create_dir_all(&dir).map_err(|e| HarnessError::io(&dir, e))?;
    Ok(dir)
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory is
/// written, flushed to disk and renamed over `path`, so readers never see a partial file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> HarnessResult<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| HarnessError::invalid("path", path.display(), "must name a file"))?;
    let temp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temp);
        HarnessError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> UtcDateTime {
        UtcDateTime::from_unix_seconds(1_795_860_900)
    }

    #[test]
    fn default_naming() {
        assert_eq!(run_dir_name("quick", &started()), "quick-20261128T101500Z");
        assert_eq!(
            default_run_dir(Path::new("/r"), "dsn-tsc", "smoke", &started()),
            PathBuf::from("/r/runs/dsn-tsc/smoke-20261128T101500Z")
        );
    }

    #[test]
    fn resolve_creates_default_and_avoids_collisions() -> HarnessResult<()> {
        let root = tempfile::tempdir().map_err(|e| HarnessError::io("tempdir", e))?;
        let first = resolve_out_dir(None, root.path(), "c", "quick", &started())?;
        assert_eq!(first, root.path().join("runs/c/quick-20261128T101500Z"));
        assert!(first.is_dir());
        let second = resolve_out_dir(None, root.path(), "c", "quick", &started())?;
        assert_eq!(second, root.path().join("runs/c/quick-20261128T101500Z-2"));
        let explicit = root.path().join("mine/nested");
        assert_eq!(
            resolve_out_dir(Some(&explicit), root.path(), "c", "quick", &started())?,
            explicit
        );
        assert!(explicit.is_dir());
        Ok(())
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() -> HarnessResult<()> {
        let dir = tempfile::tempdir().map_err(|e| HarnessError::io("tempdir", e))?;
        let path = dir.path().join("report.json");
        write_atomic(&path, b"first")?;
        write_atomic(&path, b"second")?;
        assert_eq!(
            fs::read(&path).map_err(|e| HarnessError::io(&path, e))?,
            b"second"
        );
        let entries = fs::read_dir(dir.path())
            .map_err(|e| HarnessError::io(dir.path(), e))?
            .count();
        assert_eq!(entries, 1);
        assert!(write_atomic(&dir.path().join("missing/x.json"), b"x").is_err());
        Ok(())
    }
}
