//! # sparse-repro
//!
//! What every Sparseland reproduction shares that is not sparsity.
#![warn(missing_docs)]
pub mod catalogue;
pub mod data;
pub mod fetch;
pub mod location;
pub mod stats;
