//! # sparse-repro
//!
//! What every Sparseland reproduction shares that is not sparsity.
#![warn(missing_docs)]

pub mod batch;
pub mod claim;
pub mod error;
pub mod metrics;
pub mod plot;
pub mod progress;
pub mod report;
pub mod rng;
pub mod run_dir;
pub mod utc;
