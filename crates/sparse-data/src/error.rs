//! The crate-level error: one type that every module's own error converts into.
//!
//! Each module keeps its precise error ([`DataError`] for the loaders,
//! [`CatalogueError`], [`FetchError`], [`StatsError`]); [`Error`] is what a
//! caller that uses several of them (a reproduction harness, the binary)
//! propagates with `?`.

use crate::available::{self, MissingDataset};
use crate::catalogue::CatalogueError;
use crate::data::DataError;
use crate::fetch::FetchError;
use crate::stats::StatsError;

/// Everything that can go wrong in sparse-data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data set could not be read or a batch not built from it.
    #[error(transparent)]
    Load(#[from] DataError),
    /// A data set is unknown, or absent (the message says how to get it).
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    /// Downloading or extracting registry data failed (boxed: a fetch error
    /// carries the client's command and output, and would make every
    /// `Result` of this crate as large).
    #[error(transparent)]
    Fetch(Box<FetchError>),
    /// Statistics of a data set could not be computed.
    #[error(transparent)]
    Stats(#[from] StatsError),
    /// Data sets a run needs are absent and were not (or could not be)
    /// fetched; every one of them is listed, with how to get it.
    #[error("{}", available::describe_missing(.missing, .fetch_command.as_deref()))]
    Unavailable {
        /// Every data set that is missing or unknown, in the order asked for.
        missing: Vec<MissingDataset>,
        /// The one command that fetches every missing registry set, when
        /// there is at least one (e.g. `cargo run -p sparse-data -- fetch mnist gunpoint`).
        fetch_command: Option<String>,
    },
}

impl From<FetchError> for Error {
    fn from(err: FetchError) -> Self {
        Error::Fetch(Box::new(err))
    }
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
