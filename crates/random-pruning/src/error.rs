//! Typed errors of the random-pruning library.

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
    /// An error from sparse-core (allocation, optimizer, checkpoint...).
    #[error(transparent)]
    Sparse(#[from] sparse_core::SparseError),
    /// An error from the harness (batching, metrics, reports).
    #[error(transparent)]
    Harness(#[from] sparse_repro::HarnessError),
    /// A data set could not be found or read.
    #[error(transparent)]
    Load(#[from] crate::data::LoadError),
    /// A data set could not be parsed.
    #[error(transparent)]
    Data(#[from] sparse_data::data::DataError),
    /// A lock over the model's parameters was poisoned by a panic elsewhere.
    #[error("the parameter map's lock is poisoned")]
    Poisoned,
    /// Training ran no epoch, so there is nothing to report.
    #[error("training ran no epoch")]
    NoEpoch,
    /// A file or folder could not be written.
    #[error("I/O error on `{0}`: {1}")]
    Io(std::path::PathBuf, std::io::Error),
    /// A value could not be serialised to JSON.
    #[error("cannot serialise: {0}")]
    Serialise(String),
    /// The checkpoint was written by another crate.
    #[error("`{path}` is a checkpoint of `{crate_name}`, not of random-pruning")]
    WrongCheckpoint {
        /// The file.
        path: std::path::PathBuf,
        /// The crate that wrote it.
        crate_name: String,
    },
    /// The checkpoint's configuration could not be read back.
    #[error("checkpoint `{0}` has an unreadable configuration: {1}")]
    BadCheckpointConfig(std::path::PathBuf, String),
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
