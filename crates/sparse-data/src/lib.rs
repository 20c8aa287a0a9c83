//! # sparse-data
//!
//! The data sets of the Sparseland reproductions: typed loaders, a catalogue of
//! every known set, where they live on disk, registry downloads pinned by
//! sha256, summary statistics, and the `sparse-data` command-line tool that
//! drives them (`list`, `fetch`, `stats`).
//!
//! | module | what it gives |
//! |---|---|
//! | [`data`] | typed loaders: IDX, digits (embedded), CIFAR binary, UCR/UEA `.ts`, Planetoid, MWP, text, BERT vocabulary; corrupted image test sets (CIFAR-C recipe) |
//! | [`catalogue`] | every known data set: source, licence, size, where it lives; [`catalogue::find`] looks a name up case-insensitively |
//! | [`location`] | where data is found: `--data-dir` > `SPARSELAND_DATA` > defaults |
//! | [`fetch`] | registry downloads (npm, PyPI, Debian) pinned by sha256 |
//! | [`stats`] | sample counts, shapes, classes and splits of a data set |
//! | [`available`] | [`ensure_available`]: every data set of a run checked (and fetched) before training starts |
//! | [`error`] | [`Error`], the crate's error, wrapping each module's own typed error |
//!
//! ```no_run
//! use sparse_data::{DataLocation, FetchPolicy, ensure_available};
//!
//! // Before the first arm trains: every set present, or one error listing all missing ones.
//! let location = DataLocation::from_process(None);
//! let resolved = ensure_available(&["GunPoint", "mnist"], &location, FetchPolicy::Fetch, true)?;
//! for set in &resolved {
//!     println!("{}: {}", set.dataset.name, set.presence);
//! }
//! # Ok::<(), sparse_data::Error>(())
//! ```
#![warn(missing_docs)]

pub mod available;
pub mod catalogue;
pub mod data;
pub mod error;
pub mod fetch;
pub mod images;
pub mod location;
pub mod stats;

pub use available::{FetchPolicy, MissingDataset, Resolved, ensure_available, fetch_command};
pub use catalogue::{CatalogueError, Dataset, Presence};
pub use data::DataError;
pub use error::{Error, Result};
pub use fetch::FetchError;
pub use location::DataLocation;
pub use stats::StatsError;
