//! Typed errors of the random-pruning library.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data set could not be found or read.
    #[error(transparent)]
    Load(#[from] crate::data::LoadError),
    /// An error from sparse-core (allocation, optimizer, checkpoint...).
    #[error(transparent)]
    Sparse(#[from] sparse_core::SparseError),
    /// An error from the harness (batching, metrics, checkpoints, reports), and
    /// [`sparse_repro::HarnessError::InvalidParameter`] for a configuration value
    /// out of range, which names the parameter.
    #[error(transparent)]
    Harness(#[from] sparse_repro::HarnessError),
    /// A data set could not be parsed.
    #[error(transparent)]
    Data(#[from] sparse_data::data::DataError),
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
