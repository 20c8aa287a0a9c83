//! Typed errors of the lottery-pools library.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data set could not be found or read.
    #[error(transparent)]
    Load(#[from] sparse_data::images::ImageLoadError),
    /// A ticket directory is incomplete or mixes runs.
    #[error("ticket directory {dir}: {reason}")]
    Tickets {
        /// The directory.
        dir: PathBuf,
        /// What is wrong, naming the file.
        reason: String,
    },
    /// An error of the shared crates (candle, sparse-core, sparse-data, the harness);
    /// [`sparse_repro::HarnessError::InvalidParameter`] for a configuration value out
    /// of range, which names the parameter.
    #[error(transparent)]
    Harness(#[from] sparse_repro::HarnessError),
}

sparse_repro::paper_error_conversions!(Error);

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
