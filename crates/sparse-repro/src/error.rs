//! Typed errors of the experiment harness (RNG, batching, metrics, reports, plots, CLI).

use std::path::PathBuf;

/// Everything that can go wrong in the harness modules of sparse-repro.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// An error raised by candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A data set is missing, could not be fetched or read, or a batch could
    /// not be built from it (sparse-data's error; a loader's
    /// [`sparse_data::DataError`] converts into it too).
    /// Boxed: sparse-data's error is large, and every `Result` of a paper crate
    /// carries this one.
    #[error(transparent)]
    Data(Box<sparse_data::Error>),
    /// A parameter outside its valid range; names the parameter.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// The rejected value, rendered.
        value: String,
        /// What the valid range is.
        reason: String,
    },
    /// Two lengths or shapes that must agree do not.
    #[error("size mismatch for {what}: expected {expected}, got {got}")]
    SizeMismatch {
        /// What was being compared.
        what: String,
        /// The expected size.
        expected: usize,
        /// The size found.
        got: usize,
    },
    /// A file could not be read, written or created.
    #[error("I/O error on `{path}`: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A report file is not valid JSON of the expected shape.
    #[error("invalid report `{path}` at line {line}, column {column}: {message}")]
    ReportParse {
        /// The report file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What was wrong.
        message: String,
    },
    /// A report could not be serialised.
    #[error("cannot serialise report: {0}")]
    Serialise(String),
    /// sparse-core rejected an operation (masks, checkpoints, configurations).
    #[error(transparent)]
    Sparse(#[from] sparse_core::SparseError),
    /// A checkpoint is not one this paper can evaluate.
    #[error("checkpoint `{path}` cannot be used: {reason}")]
    BadCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `eval` measured another value than the one recorded at training.
    #[error(
        "`{path}`: the reloaded model gives {metric} = {measured}, the run recorded {recorded}"
    )]
    EvalMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The metric compared.
        metric: String,
        /// The value recorded in the checkpoint.
        recorded: f64,
        /// The value measured now.
        measured: f64,
    },
    /// A paper's run did not report the metric the harness needs.
    #[error("arm `{arm}` reported no `{metric}` metric")]
    MissingMetric {
        /// The metric.
        metric: String,
        /// The arm.
        arm: String,
    },
    /// The output directory holds a different run.
    #[error("cannot resume into `{dir}`: {reason}")]
    OtherRun {
        /// The run directory.
        dir: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A plot could not be drawn.
    #[error("cannot draw plot `{path}`: {message}")]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// The backend's message.
        message: String,
    },
}

impl HarnessError {
    /// Builds an [`HarnessError::InvalidParameter`].
    pub fn invalid(name: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<sparse_data::Error> for HarnessError {
    fn from(err: sparse_data::Error) -> Self {
        Self::Data(Box::new(err))
    }
}

impl From<sparse_data::DataError> for HarnessError {
    fn from(err: sparse_data::DataError) -> Self {
        Self::Data(Box::new(sparse_data::Error::Load(err)))
    }
}

impl From<sparse_data::CatalogueError> for HarnessError {
    fn from(err: sparse_data::CatalogueError) -> Self {
        Self::Data(Box::new(sparse_data::Error::Catalogue(err)))
    }
}

impl From<sparse_core::CheckpointError> for HarnessError {
    fn from(err: sparse_core::CheckpointError) -> Self {
        Self::Sparse(err.into())
    }
}

/// Implements `From` for the errors every paper crate meets (candle, sparse-core,
/// sparse-data) by way of [`HarnessError`], for a crate error type with a
/// `#[from] HarnessError` variant: the paper's error enum then holds only what is
/// its own.
///
/// ```
/// #[derive(Debug, thiserror::Error)]
/// pub enum Error {
///     /// Not a graph this paper knows.
///     #[error("unknown graph `{0}`")]
///     UnknownGraph(String),
///     /// Everything the shared crates report.
///     #[error(transparent)]
///     Harness(#[from] sparse_repro::HarnessError),
/// }
/// sparse_repro::paper_error_conversions!(Error);
///
/// fn shape() -> Result<(), Error> {
///     Err(candle_core::Error::Msg("no".into()))?
/// }
/// assert!(matches!(shape(), Err(Error::Harness(sparse_repro::HarnessError::Candle(_)))));
/// ```
#[macro_export]
macro_rules! paper_error_conversions {
    ($error:ty) => {
        $crate::paper_error_conversions!(@from $error,
            ::candle_core::Error,
            ::sparse_core::SparseError,
            ::sparse_core::CheckpointError,
            ::sparse_data::Error,
            ::sparse_data::DataError,
            ::sparse_data::CatalogueError);
    };
    (@from $error:ty, $($source:ty),+) => {
        $(
            impl ::core::convert::From<$source> for $error {
                fn from(err: $source) -> Self {
                    Self::from($crate::HarnessError::from(err))
                }
            }
        )+
    };
}

/// Result alias of the harness modules.
pub type HarnessResult<T> = std::result::Result<T, HarnessError>;
