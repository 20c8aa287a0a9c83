//! Typed errors of the untrained-gnn library.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value out of range, rejected before training starts.
    #[error("invalid configuration: `{name}` = {value}: {reason}")]
    InvalidConfig {
        /// The parameter's name.
        name: &'static str,
        /// The rejected value.
        value: String,
        /// The valid range.
        reason: String,
    },
    /// A data set name this crate does not know.
    #[error("unknown data set `{name}`: expected cora, citeseer or fixture")]
    UnknownDataset {
        /// The name as given.
        name: String,
    },
    /// A data set is missing (the message says where it was looked for).
    #[error("data set `{name}` not found: {reason}")]
    MissingData {
        /// The data set's name.
        name: String,
        /// Where it was expected, and how to get it.
        reason: String,
    },
    /// The masks stored in a checkpoint are not those its scores give.
    #[error("checkpoint {path}: its stored masks differ from those of its scores ({reason})")]
    MaskMismatch {
        /// The checkpoint file.
        path: String,
        /// Which mask differs, and how.
        reason: String,
    },
    /// An error from sparse-core (scores, optimizer, checkpoint...).
    #[error(transparent)]
    Sparse(#[from] sparse_core::SparseError),
    /// An error from the harness (metrics, reports, checkpoints, the epoch loop);
    /// boxed, as it is large and every `Result` of the crate would carry its size.
    #[error(transparent)]
    Harness(Box<sparse_repro::HarnessError>),
    /// A data set could not be parsed.
    #[error(transparent)]
    Data(#[from] sparse_data::data::DataError),
    /// A data set could not be found or fetched (boxed, as [`Error::Harness`]).
    #[error(transparent)]
    DataCatalogue(Box<sparse_data::Error>),
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl From<sparse_repro::HarnessError> for Error {
    fn from(err: sparse_repro::HarnessError) -> Self {
        Self::Harness(Box::new(err))
    }
}

impl From<sparse_data::Error> for Error {
    fn from(err: sparse_data::Error) -> Self {
        Self::DataCatalogue(Box::new(err))
    }
}

impl Error {
    /// An [`Error::InvalidConfig`] for `name` = `value`.
    pub(crate) fn invalid(name: &'static str, value: impl ToString, reason: &str) -> Self {
        Self::InvalidConfig {
            name,
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
