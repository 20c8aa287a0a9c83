//! Writing a report's JSON, shared by the kernel and training reports.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// Writes `entries` as pretty JSON to `path`, creating its directory; rewritten after
/// every row so that an interrupted report keeps what it measured.
pub fn write_json<T: Serialize>(path: &Path, entries: &T) -> Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(entries)?;
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}
