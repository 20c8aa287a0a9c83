//! # random-pruning
//!
//! Reproduction of *The Unreasonable Effectiveness of Random Pruning: Return of
//! the Most Naive Baseline for Sparse Training* (Liu et al., ICLR 2022,
//! arXiv 2202.02643) on Sparseland.
//!
//! The library is the method: [`config`] (one arm's checked configuration),
//! [`data`] (the image sets) and [`training`] (random mask at initialisation,
//! fixed-mask training in sparse-repro's epoch loop), on the models of
//! `sparse_repro::models`. [`paper`] tells sparse-repro's harness the presets,
//! claims and published numbers; the harness runs, checkpoints, resumes and
//! reports, and is the whole binary.
#![warn(missing_docs)]

pub mod config;
pub mod data;
pub mod error;
pub mod paper;
pub mod training;

pub use config::{AllocationKind, Sparsity, TrainConfig};
pub use error::{Error, Result};
pub use paper::RandomPruning;
