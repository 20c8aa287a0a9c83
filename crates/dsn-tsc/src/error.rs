//! Typed errors of the dsn-tsc library.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data set name that is neither in the catalogue nor a `.ts` path.
    #[error(
        "unknown data set `{0}`: give a catalogue name (e.g. gunpoint) or a path to <Name>_TRAIN.ts"
    )]
    UnknownDataset(String),
    /// A data set whose train and test splits disagree, or that cannot be trained on.
    #[error("data set `{path}`: {reason}")]
    BadDataset {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint that does not hold the model its arm describes.
    #[error("checkpoint `{path}`: {reason}")]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
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

/// A configuration value out of range, rejected when the config is built.
pub(crate) fn invalid(
    name: &'static str,
    value: impl ToString,
    reason: impl Into<String>,
) -> Error {
    Error::Harness(sparse_repro::HarnessError::invalid(name, value, reason))
}
