//! # sparse-repro
//!
//! What every Sparseland reproduction shares that is not sparsity.
#![warn(missing_docs)]

pub mod batch;
pub mod error;
pub mod metrics;
pub mod rng;
