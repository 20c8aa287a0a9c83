//! # random-pruning
//!
//! Reproduction of *The Unreasonable Effectiveness of Random Pruning: Return of
//! the Most Naive Baseline for Sparse Training* (Liu et al., ICLR 2022,
//! arXiv 2202.02643) on Sparseland.
#![warn(missing_docs)]

pub mod config;
pub mod error;

pub use config::{AllocationKind, Sparsity, TrainConfig};
pub use error::{Error, Result};
pub mod data;
pub mod experiment;
pub mod training;
