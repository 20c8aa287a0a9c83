//! Data up front: make sure every data set a run needs is on disk before the
//! first arm trains, so that a multi-hour reproduction does not stop half-way
//! on a missing file.
//!
//! [`ensure_available`] checks *every* name first. Present sets (fetched,
//! shared or embedded) resolve to their [`Presence`]. Missing registry sets are
//! downloaded with [`Fetcher`] (progress bar on a terminal, plain lines
//! otherwise) when the [`FetchPolicy`] allows it. Anything that cannot be
//! made available — a registry set under [`FetchPolicy::NoFetch`], shared data
//! that no registry carries, an unknown name — ends in one
//! [`Error::Unavailable`] that lists all of them, each with the command that
//! fetches it or the place to put it. Nothing is downloaded unless the whole
//! list can then be satisfied.

use std::io::IsTerminal;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use crate::catalogue::{self, CatalogueError, Dataset, Presence};
use crate::error::{Error, Result};
use crate::fetch::{FetchError, Fetcher};
use crate::location::{DataLocation, RootSource};

/// Whether [`ensure_available`] may download missing registry data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FetchPolicy {
    /// Download missing registry sets (pinned by sha256) into the fetch root.
    #[default]
    Fetch,
    /// Never download: a missing registry set is an error that names the
    /// `sparse-data fetch` command (offline machines, CI that pre-fetches).
    NoFetch,
}

/// A data set that is available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The catalogue entry (its `name` is the catalogue's spelling, e.g.
    /// `gunpoint` for a request of `GunPoint`).
    pub dataset: &'static Dataset,
    /// Where it is.
    pub presence: Presence,
    /// `true` when this call downloaded it.
    pub fetched: bool,
}

impl Resolved {
    /// The data set's directory (or file), `None` for embedded data.
    pub fn path(&self) -> Option<&Path> {
        match &self.presence {
            Presence::OnDisk(path) => Some(path),
            Presence::Embedded => None,
        }
    }
}

/// A data set a run asked for that is not available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingDataset {
    /// The name as it was asked for.
    pub name: String,
    /// Why it is missing: [`CatalogueError::NotFetched`] (a registry set),
    /// [`CatalogueError::SharedMissing`] (no registry carries it) or
    /// [`CatalogueError::Unknown`].
    pub reason: CatalogueError,
    /// For a registry set, the exact command that fetches it into the
    /// location that was searched.
    pub fetch_command: Option<String>,
}

/// Makes sure every data set in `names` is available, fetching missing
/// registry sets when `policy` allows it.
///
/// Names are looked up with [`catalogue::find`] (case-insensitive, so the
/// UCR spelling `GunPoint` and the catalogue's `gunpoint` are the same set).
/// Every name is checked before anything is downloaded; if any set cannot be
/// made available, the error lists all of them. With `progress`, downloads
/// show an indicatif bar when stderr is a terminal and plain lines otherwise;
/// without it they are silent.
///
/// Returns one [`Resolved`] per name, in the order given.
///
/// # Errors
///
/// - [`Error::Unavailable`] listing every missing data set: registry sets
///   under [`FetchPolicy::NoFetch`] (with their `sparse-data fetch` command),
///   shared sets (with where to put them) and unknown names;
/// - [`Error::Fetch`] when a download, checksum or extraction fails;
/// - [`Error::Catalogue`] if a set is still absent after its fetch.
pub fn ensure_available(
    names: &[&str],
    location: &DataLocation,
    policy: FetchPolicy,
    progress: bool,
) -> Result<Vec<Resolved>> {
    ensure_with(names, location, policy, progress, || {
        Fetcher::new(location.clone())
    })
}

/// [`ensure_available`] with the fetcher built by `make_fetcher` (tests give
/// one with fixture pins and stand-in clients), only when something must be
/// downloaded.
fn ensure_with(
    names: &[&str],
    location: &DataLocation,
    policy: FetchPolicy,
    progress: bool,
    make_fetcher: impl FnOnce() -> std::result::Result<Fetcher, FetchError>,
) -> Result<Vec<Resolved>> {
    let mut resolved: Vec<Option<Resolved>> = Vec::with_capacity(names.len());
    let mut missing: Vec<MissingDataset> = Vec::new();
    for &name in names {
        let found =
            catalogue::find(name).and_then(|dataset| Ok((dataset, dataset.resolve(location)?)));
        match found {
            Ok((dataset, presence)) => resolved.push(Some(Resolved {
                dataset,
                presence,
                fetched: false,
            })),
            Err(reason) => {
                // The same set asked twice (`GunPoint`, `gunpoint`) is listed once.
                if !missing.iter().any(|known| known.reason == reason) {
                    let command =
                        catalogue_name(&reason).map(|set| fetch_command(&[set], location));
                    missing.push(MissingDataset {
                        name: name.to_string(),
                        reason,
                        fetch_command: command,
                    });
                }
                resolved.push(None);
            }
        }
    }
    if missing.is_empty() {
        return Ok(resolved.into_iter().flatten().collect());
    }
    let only_registry_sets = missing
        .iter()
        .all(|set| matches!(set.reason, CatalogueError::NotFetched { .. }));
    let registry_names: Vec<&str> = missing
        .iter()
        .filter_map(|set| catalogue_name(&set.reason))
        .collect();
    if policy == FetchPolicy::NoFetch || !only_registry_sets {
        let fetch_every_set =
            (!registry_names.is_empty()).then(|| fetch_command(&registry_names, location));
        return Err(Error::Unavailable {
            missing,
            fetch_command: fetch_every_set,
        });
    }

    let to_fetch = registry_names
        .iter()
        .map(|name| catalogue::find(name))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    fetch_all(make_fetcher()?, &to_fetch, progress)?;
    names
        .iter()
        .zip(resolved)
        .map(|(name, slot)| match slot {
            Some(done) => Ok(done),
            None => {
                let dataset = catalogue::find(name)?;
                Ok(Resolved {
                    dataset,
                    presence: dataset.resolve(location)?,
                    fetched: true,
                })
            }
        })
        .collect()
}

/// The catalogue's name of a not-fetched set, from its error.
fn catalogue_name(reason: &CatalogueError) -> Option<&str> {
    match reason {
        CatalogueError::NotFetched { name, .. } => Some(name),
        _ => None,
    }
}

/// The command that fetches `names` into `location`'s fetch root, from a
/// checkout: `cargo run -p sparse-data -- fetch NAME...`, with `--data-dir`
/// when the location came from an explicit directory (the environment
/// variable, if that is where it came from, is seen by the command too).
pub fn fetch_command(names: &[&str], location: &DataLocation) -> String {
    let mut command = format!("cargo run -p sparse-data -- fetch {}", names.join(" "));
    if location.source() == RootSource::Flag {
        command.push_str(" --data-dir ");
        command.push_str(&shell_quote(&location.fetch_root().display().to_string()));
    }
    command
}

/// Quotes a word for a POSIX shell when it holds anything but plain path characters.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The text of [`Error::Unavailable`]: one line per missing set, then the
/// command that fetches every missing registry set at once.
pub(crate) fn describe_missing(missing: &[MissingDataset], fetch_all: Option<&str>) -> String {
    let mut text = format!(
        "{} data set(s) needed by this run are not available:",
        missing.len()
    );
    for set in missing {
        text.push_str("\n  - ");
        match (&set.reason, &set.fetch_command) {
            (CatalogueError::NotFetched { name, path }, Some(command)) => text.push_str(&format!(
                "{name} not found in {}: run `{command}`",
                path.display()
            )),
            (reason, _) => text.push_str(&reason.to_string()),
        }
    }
    let registry_sets = missing
        .iter()
        .filter(|set| set.fetch_command.is_some())
        .count();
    if let (Some(command), true) = (fetch_all, registry_sets > 1) {
        text.push_str(&format!(
            "\nfetch every registry set above with: `{command}`"
        ));
    }
    text
}

/// How downloads are reported.
enum Reporter {
    Bar(ProgressBar),
    Lines,
    Quiet,
}

impl Reporter {
    fn new(progress: bool, total: usize) -> Self {
        if !progress {
            return Reporter::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Reporter::Lines;
        }
        let bar = ProgressBar::new(total as u64);
        let style = ProgressStyle::with_template(
            "[sparse-data] fetching [{elapsed_precise}] {wide_bar} {pos}/{len} data sets {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Reporter::Bar(bar)
    }

    /// A sink for the fetcher's own lines (client runs, checksums, extraction).
    fn logger(&self) -> Box<dyn Fn(&str)> {
        match self {
            Reporter::Bar(bar) => {
                let bar = bar.clone();
                Box::new(move |line| bar.println(format!("  {line}")))
            }
            Reporter::Lines => Box::new(|line| eprintln!("[sparse-data]   {line}")),
            Reporter::Quiet => Box::new(|_| {}),
        }
    }

    fn start(&self, what: &str) {
        match self {
            Reporter::Bar(bar) => bar.set_message(what.to_string()),
            Reporter::Lines => eprintln!("[sparse-data] fetching {what}"),
            Reporter::Quiet => {}
        }
    }

    fn advance(&self, sets: usize) {
        if let Reporter::Bar(bar) = self {
            bar.inc(sets as u64);
        }
    }

    fn finish(&self, text: &str) {
        match self {
            Reporter::Bar(bar) => bar.finish_with_message(text.to_string()),
            Reporter::Lines => eprintln!("[sparse-data] {text}"),
            Reporter::Quiet => {}
        }
    }
}

/// Fetches `datasets`, one registry artefact at a time (the sktime wheel
/// holds every UCR/UEA set: it is downloaded once for all of them).
fn fetch_all(
    fetcher: Fetcher,
    datasets: &[&'static Dataset],
    progress: bool,
) -> std::result::Result<(), FetchError> {
    let mut groups: Vec<(&str, Vec<&Dataset>)> = Vec::new();
    for &dataset in datasets {
        let artefact = dataset
            .extraction()
            .map(|extraction| extraction.artefact)
            .unwrap_or(dataset.name);
        match groups.iter_mut().find(|(id, _)| *id == artefact) {
            Some((_, members)) => members.push(dataset),
            None => groups.push((artefact, vec![dataset])),
        }
    }
    let reporter = Reporter::new(progress, datasets.len());
    let logger = reporter.logger();
    let fetcher = fetcher.log(move |line| logger(line));
    for (artefact, members) in &groups {
        let names: Vec<&str> = members.iter().map(|dataset| dataset.name).collect();
        let package = fetcher
            .pins()
            .get(artefact)
            .map(|pin| format!(" from {} {}", pin.registry, pin.package_spec()))
            .unwrap_or_default();
        reporter.start(&format!("{}{package}", names.join(", ")));
        fetcher.fetch(members)?;
        reporter.advance(members.len());
    }
    reporter.finish(&format!("fetched {} data set(s)", datasets.len()));
    Ok(())
}

#[cfg(test)]
mod tests;
