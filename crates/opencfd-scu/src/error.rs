//! The crate's typed errors.

use std::path::PathBuf;

/// Everything the solver library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CfdError {
    /// A control file could not be read.
    #[error("cannot read control file {path}: {source}")]
    ReadControl {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A control-file key is missing, malformed or out of range.
    #[error("{file}:{line}: {key}: {message}")]
    Control {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
    /// A control-file key asks for a feature that is not implemented yet.
    #[error("{key}: {feature} is not implemented yet")]
    Unsupported { key: String, feature: String },
    /// A configuration the solver cannot run.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An error of the shared harness (reports, plots, atomic writes).
    #[error(transparent)]
    Harness(#[from] sparse_repro::HarnessError),
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An input/output error on a named file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type CfdResult<T> = Result<T, CfdError>;
