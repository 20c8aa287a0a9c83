//! Typed errors of the untrained-gnn library.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// An error of the shared crates (candle, sparse-core, sparse-data, the harness);
    /// [`sparse_repro::HarnessError::InvalidParameter`] for a configuration value out
    /// of range, which names the parameter.
    #[error(transparent)]
    Harness(#[from] sparse_repro::HarnessError),
}

sparse_repro::paper_error_conversions!(Error);

impl Error {
    /// A configuration value out of range, rejected before training starts.
    pub(crate) fn invalid(name: &'static str, value: impl ToString, reason: &str) -> Self {
        Self::Harness(sparse_repro::HarnessError::invalid(name, value, reason))
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
