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
    /// A data set is missing (the message says where it was looked for).
    #[error("data set `{name}` not found: {reason}")]
    MissingData {
        /// The data set's name.
        name: String,
        /// Where it was expected, and how to get it.
        reason: String,
    },
    /// A checkpoint does not describe a run of this crate.
    #[error("checkpoint {path}: {reason}")]
    BadCheckpoint {
        /// The checkpoint file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Training ran no epoch, so there is nothing to report.
    #[error("training ran no epoch")]
    NoEpoch,
    /// An error from sparse-core (scores, optimizer, checkpoint...).
    #[error(transparent)]
    Sparse(#[from] sparse_core::SparseError),
    /// An error from the harness (metrics, reports).
    #[error(transparent)]
    Harness(#[from] sparse_repro::HarnessError),
    /// A data set could not be parsed.
    #[error(transparent)]
    Data(#[from] sparse_data::data::DataError),
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
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
