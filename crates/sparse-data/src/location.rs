//! Where data sets live on disk.
//!
//! Two roots matter:
//! - the **fetch root**, where `sparse-data fetch` extracts registry data
//!   (default: `datasets/cache/` under the workspace root);
//! - the **shared root**, the read-only folder of data that no registry
//!   carries (default: `../shared/datasets/`, beside the workspace root).
//!
//! Resolution order: an explicit directory (the `--data-dir` flag) beats the
//! [`DATA_DIR_ENV`] environment variable, which beats the defaults. An explicit
//! directory replaces the fetch root; shared data is looked up there first
//! and then in the default shared root, so one `--data-dir` can hold both.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// Name of the environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "SPARSELAND_DATA";

/// Where a [`DataLocation`]'s fetch root came from (reported by `sparse-data list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSource {
    /// The `--data-dir` flag (or an explicit directory passed by library code).
    Flag,
    /// The [`DATA_DIR_ENV`] environment variable.
    EnvVar,
    /// The default under the workspace root.
    Default,
}

impl fmt::Display for RootSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootSource::Flag => write!(f, "--data-dir"),
            RootSource::EnvVar => write!(f, "{DATA_DIR_ENV}"),
            RootSource::Default => write!(f, "default"),
        }
    }
}

/// The resolved data directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLocation {
    fetch_root: PathBuf,
    shared_roots: Vec<PathBuf>,
    source: RootSource,
}

impl DataLocation {
    /// Resolves the data directories from an explicit directory (the
    /// `--data-dir` flag), an environment lookup and the current directory.
    ///
    /// `env` is injected (rather than read from the process) so that callers
    /// and tests control it; pass [`process_env`] for the real environment.
    pub fn resolve(
        explicit: Option<&Path>,
        env: impl Fn(&str) -> Option<OsString>,
        current_dir: &Path,
    ) -> Self {
        let workspace = find_workspace_root(current_dir);
        let default_shared = default_shared_root(&workspace);
        let overridden = explicit
            .map(|dir| (dir.to_path_buf(), RootSource::Flag))
            .or_else(|| {
                env(DATA_DIR_ENV)
                    .filter(|value| !value.is_empty())
                    .map(|value| (PathBuf::from(value), RootSource::EnvVar))
            });
        match overridden {
            Some((dir, source)) => {
                let dir = absolutize(&dir, current_dir);
                DataLocation {
                    shared_roots: vec![dir.clone(), default_shared],
                    fetch_root: dir,
                    source,
                }
            }
            None => DataLocation {
                fetch_root: default_fetch_root(&workspace),
                shared_roots: vec![default_shared],
                source: RootSource::Default,
            },
        }
    }

    /// Resolves against the process environment and current directory.
    pub fn from_process(explicit: Option<&Path>) -> Self {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self::resolve(explicit, process_env, &cwd)
    }

    /// A location with explicit roots (for tests and embedding applications).
    pub fn with_roots(fetch_root: impl Into<PathBuf>, shared_root: impl Into<PathBuf>) -> Self {
        DataLocation {
            fetch_root: fetch_root.into(),
            shared_roots: vec![shared_root.into()],
            source: RootSource::Flag,
        }
    }

    /// The directory fetched data is extracted into.
    pub fn fetch_root(&self) -> &Path {
        &self.fetch_root
    }

    /// The directories searched, in order, for shared (non-registry) data.
    pub fn shared_roots(&self) -> &[PathBuf] {
        &self.shared_roots
    }

    /// Where the fetch root came from.
    pub fn source(&self) -> RootSource {
        self.source
    }

    /// The directory that holds (or will hold) fetched data under `relative`.
    pub fn fetched_path(&self, relative: &str) -> PathBuf {
        self.fetch_root.join(relative)
    }

    /// The first shared root under which `relative` exists, or `None`.
    pub fn find_shared(&self, relative: &str) -> Option<PathBuf> {
        self.shared_roots
            .iter()
            .map(|root| root.join(relative))
            .find(|path| path.exists())
    }

    /// Where `relative` is expected under the shared roots (for messages).
    pub fn expected_shared_paths(&self, relative: &str) -> Vec<PathBuf> {
        self.shared_roots
            .iter()
            .map(|root| root.join(relative))
            .collect()
    }
}

/// Reads a variable from the process environment (the usual `env` argument of
/// [`DataLocation::resolve`]).
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// Walks up from `start` to the first directory that has a `Cargo.toml`
/// declaring `[workspace]` and a `datasets/` folder; falls back to `start`.
///
/// Both are required so that a crate unpacked on its own (or a workspace
/// that is not Sparseland) is not mistaken for the project root.
pub fn find_workspace_root(start: &Path) -> PathBuf {
    let start = absolutize(start, Path::new("."));
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        let is_workspace = std::fs::read_to_string(&manifest)
            .map(|text| text.lines().any(|line| line.trim() == "[workspace]"))
            .unwrap_or(false);
        if is_workspace && dir.join("datasets").is_dir() {
            return dir.to_path_buf();
        }
    }
    start
}

/// The default fetch root of a workspace: `<root>/datasets/cache`.
pub fn default_fetch_root(workspace_root: &Path) -> PathBuf {
    workspace_root.join("datasets").join("cache")
}

/// The default shared root of a workspace: `<root>/../shared/datasets`
/// (spelled without `..` when the root has a parent, for clearer messages).
pub fn default_shared_root(workspace_root: &Path) -> PathBuf {
    match workspace_root.parent() {
        Some(parent) => parent.join("shared").join("datasets"),
        None => workspace_root.join("..").join("shared").join("datasets"),
    }
}

fn absolutize(path: &Path, base: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        let joined = base.join(path);
        std::path::absolute(&joined).unwrap_or(joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(value: Option<&str>) -> impl Fn(&str) -> Option<OsString> {
        let value = value.map(OsString::from);
        move |name| {
            if name == DATA_DIR_ENV {
                value.clone()
            } else {
                None
            }
        }
    }

    fn fake_workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        std::fs::create_dir_all(dir.path().join("datasets")).unwrap();
        std::fs::create_dir_all(dir.path().join("crates/a/src")).unwrap();
        std::fs::write(dir.path().join("crates/a/Cargo.toml"), "[package]\n").unwrap();
        dir
    }

    #[test]
    fn flag_beats_env_var_beats_default() {
        let ws = fake_workspace();
        let cwd = ws.path().join("crates/a/src");

        let by_flag = DataLocation::resolve(Some(Path::new("/flag")), env_with(Some("/env")), &cwd);
        assert_eq!(by_flag.fetch_root(), Path::new("/flag"));
        assert_eq!(by_flag.source(), RootSource::Flag);

        let by_env = DataLocation::resolve(None, env_with(Some("/env")), &cwd);
        assert_eq!(by_env.fetch_root(), Path::new("/env"));
        assert_eq!(by_env.source(), RootSource::EnvVar);
        assert_eq!(by_env.shared_roots()[0], Path::new("/env"));

        let by_default = DataLocation::resolve(None, env_with(None), &cwd);
        assert_eq!(by_default.source(), RootSource::Default);
        assert_eq!(by_default.fetch_root(), ws.path().join("datasets/cache"));
        assert_eq!(
            by_default.shared_roots(),
            &[ws.path().parent().unwrap().join("shared/datasets")]
        );
    }

    #[test]
    fn empty_env_var_is_ignored() {
        let ws = fake_workspace();
        let location = DataLocation::resolve(None, env_with(Some("")), ws.path());
        assert_eq!(location.source(), RootSource::Default);
    }

    #[test]
    fn relative_flag_is_made_absolute_against_current_dir() {
        let ws = fake_workspace();
        let location = DataLocation::resolve(Some(Path::new("data")), env_with(None), ws.path());
        assert_eq!(location.fetch_root(), ws.path().join("data"));
    }

    #[test]
    fn workspace_root_needs_both_manifest_and_datasets_folder() {
        let ws = fake_workspace();
        // The member crate's Cargo.toml has no [workspace]: keep walking up.
        assert_eq!(
            find_workspace_root(&ws.path().join("crates/a/src")),
            ws.path()
        );
        std::fs::remove_dir(ws.path().join("datasets")).unwrap();
        let start = ws.path().join("crates/a/src");
        assert_eq!(find_workspace_root(&start), start);
    }

    #[test]
    fn shared_data_is_found_in_the_first_root_that_has_it() {
        let flag_dir = tempfile::tempdir().unwrap();
        let ws = fake_workspace();
        let location = DataLocation::resolve(Some(flag_dir.path()), env_with(None), ws.path());
        assert_eq!(location.find_shared("planetoid/cora"), None);
        std::fs::create_dir_all(flag_dir.path().join("planetoid/cora")).unwrap();
        assert_eq!(
            location.find_shared("planetoid/cora"),
            Some(flag_dir.path().join("planetoid/cora"))
        );
    }
}
