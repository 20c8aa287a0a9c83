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
    /// A criterion needs the gradient of a parameter that the `GradStore` lacks.
    #[error(
        "no gradient for parameter `{0}` (gradient-based pruning/growth needs the last backward pass)"
    )]
    MissingGradient(String),
    /// Momentum growth was asked for a parameter whose optimizer keeps no momentum.
    #[error(
        "no momentum for parameter `{0}` (momentum growth needs a MomentumSource with state for it)"
    )]
    MissingMomentum(String),
}

/// Result alias of sparse-core.
pub type Result<T> = std::result::Result<T, SparseError>;
