//! Typed errors of the smoe-dropout library.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error of the shared crates (candle, sparse-core, sparse-data, the harness);
    /// [`sparse_repro::HarnessError::InvalidParameter`] for a configuration value out
    /// of range, which names the parameter.
    #[error(transparent)]
    Harness(#[from] sparse_repro::HarnessError),
}

sparse_repro::paper_error_conversions!(Error);

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
