//! Typed errors of the dsn-tsc library.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value out of range, rejected when the config is built.
    #[error("invalid configuration: `{name}` = {value}: {reason}")]
    InvalidConfig {
        /// The parameter's name.
        name: &'static str,
        /// The rejected value.
        value: String,
        /// The valid range.
        reason: String,
    },
    /// A data set name that is neither in the catalogue nor a `.ts` path.
    #[error(
        "unknown data set `{0}`: give a catalogue name (e.g. gunpoint) or a path to <Name>_TRAIN.ts"
    )]
    UnknownDataset(String),
    /// A data set that is known but not on disk.
    #[error(transparent)]
    Catalogue(#[from] sparse_data::catalogue::CatalogueError),
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
    /// An error from sparse-core (masks, engine, optimizer, checkpoint...).
    #[error(transparent)]
    Sparse(#[from] sparse_core::SparseError),
    /// An error from the harness (batching, metrics, reports, checkpoints, runs).
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

pub(crate) fn invalid(
    name: &'static str,
    value: impl ToString,
    reason: impl Into<String>,
) -> Error {
    Error::InvalidConfig {
        name,
        value: value.to_string(),
        reason: reason.into(),
    }
}
