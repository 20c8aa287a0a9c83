//! Typed errors of sparse-core.

/// Everything that can go wrong in sparse-core.
#[derive(Debug, thiserror::Error)]
pub enum SparseError {
    /// An error raised by candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A hyperparameter outside its valid range, rejected when a config is built.
    #[error("invalid hyperparameter `{name}` = {value}: {reason}")]
    InvalidHyperparameter {
        /// The parameter's name, as the user wrote it in the builder.
        name: &'static str,
        /// The rejected value, rendered.
        value: String,
        /// What the valid range is.
        reason: String,
    },
    /// Two shapes that must agree do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// What was being compared.
        what: String,
        /// The shape that was expected.
        expected: Vec<usize>,
        /// The shape that was found.
        got: Vec<usize>,
    },
    /// A parameter name that is not in the registry.
    #[error("unknown parameter `{0}`")]
    UnknownParameter(String),
    /// An argument (not a hyperparameter) that a function cannot work with.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was wrong (an argument, a layer, a score vector).
        what: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A gradient that a computation needs is absent from the `GradStore`.
    #[error("no gradient for parameter `{0}`")]
    MissingGradient(String),
    /// Gradient growth got a gradient that is zero at every inactive position while
    /// not zero elsewhere: it was masked (a sparse kernel in `WeightGrad::Masked` mode,
    /// or a forward pass through `w ⊙ mask`), so ranking it would regrow arbitrary
    /// positions.
    #[error(
        "the gradient of `{0}` is zero at every pruned position: it was masked (a sparse kernel \
         in WeightGrad::Masked mode, or a forward pass through w * mask), and gradient growth \
         needs the dense gradient; set WeightGrad::Dense on the steps where \
         SparsityEngine::needs_dense_gradients is true (kernels::set_weight_grads_for_step)"
    )]
    MaskedGradient(String),
    /// Momentum growth was asked for a parameter whose optimizer keeps no momentum.
    #[error(
        "no momentum for parameter `{0}` (momentum growth needs a MomentumSource with state for it)"
    )]
    MissingMomentum(String),
    /// A [`crate::ModelState`] and its counterpart (a `VarMap`, another state) disagree
    /// about one tensor.
    #[error("model state tensor `{name}`: {reason}")]
    StateMismatch {
        /// The tensor's name.
        name: String,
        /// What differs (missing, unexpected, shape, dtype).
        reason: String,
    },
    /// Writing, reading or validating a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

impl SparseError {
    /// An [`InvalidHyperparameter`](Self::InvalidHyperparameter) naming the parameter
    /// `name` as the user wrote it in the builder, its rejected `value` and the valid
    /// range (`reason`, e.g. `"must lie in [0, 1]"`). The checks of
    /// [`crate::validate`] build their errors with it.
    pub fn invalid(name: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        Self::InvalidHyperparameter {
            name,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// An [`InvalidInput`](Self::InvalidInput): an argument (a layer list, a score
    /// vector, a policy) that a function cannot work with, and why.
    pub fn invalid_input(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Why a checkpoint could not be written, read or restored.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("checkpoint I/O error on `{path}`: {source}")]
    Io {
        /// The file (or its temporary sibling) concerned.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file (truncated, bad header, bad offsets).
    #[error("malformed checkpoint `{path}`: {reason}")]
    Malformed {
        /// The file.
        path: std::path::PathBuf,
        /// What the safetensors parser reported.
        reason: String,
    },
    /// A tensor's bytes do not hash to the sha256 recorded for it at save time (or
    /// the tensor has no recorded hash, or a recorded one names no tensor).
    #[error(
        "corrupt checkpoint `{path}`: tensor `{tensor}` does not match the sha256 recorded when the file was written"
    )]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// The tensor whose bytes fail the check.
        tensor: String,
    },
    /// The file records no tensor hashes (written before they were introduced), so
    /// its contents cannot be verified.
    #[error(
        "checkpoint `{path}` records no tensor sha256 hashes (an older format); it cannot be verified, save it again"
    )]
    MissingChecksums {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The file was written by another crate than the one reading it.
    #[error("`{path}` is a checkpoint written by `{found}`, not by `{expected}`")]
    WrongCrate {
        /// The file.
        path: std::path::PathBuf,
        /// The crate that expected to read it.
        expected: String,
        /// The crate recorded in the file.
        found: String,
    },
    /// [`crate::checkpoint::CheckpointMeta::crate_name`] is empty, so the file would
    /// not say which crate wrote it.
    #[error(
        "refusing to write checkpoint `{path}`: the metadata names no crate (`crate_name` is empty)"
    )]
    MissingCrateName {
        /// The file that was not written.
        path: std::path::PathBuf,
    },
    /// The header metadata is missing or is not the JSON we wrote.
    #[error("bad checkpoint metadata in `{path}`: {reason}")]
    BadMetadata {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor the target expects is not in the checkpoint.
    #[error("checkpoint has no tensor `{0}`")]
    MissingTensor(String),
    /// The checkpoint holds a tensor the target does not know.
    #[error("checkpoint tensor `{0}` has no counterpart in the target")]
    UnexpectedTensor(String),
    /// A tensor has another shape than its target.
    #[error("shape mismatch for checkpoint tensor `{name}`: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// The tensor's name in the checkpoint.
        name: String,
        /// The target's shape.
        expected: Vec<usize>,
        /// The stored shape.
        got: Vec<usize>,
    },
    /// A tensor has another dtype than its target.
    #[error("dtype mismatch for checkpoint tensor `{name}`: expected {expected}, got {got}")]
    DTypeMismatch {
        /// The tensor's name in the checkpoint.
        name: String,
        /// The target's dtype.
        expected: String,
        /// The stored dtype.
        got: String,
    },
}

/// Result alias of sparse-core.
pub type Result<T> = std::result::Result<T, SparseError>;
