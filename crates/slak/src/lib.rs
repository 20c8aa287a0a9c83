//! # slak (work in progress)
//!
//! Reproduction of SLaK, *More ConvNets in the 2020s: Scaling up Kernels Beyond
//! 51x51 using Sparsity* (ICLR 2023, arXiv 2207.03620), on Sparseland. This branch
//! holds the network ([`spec`], [`model`]); the sparse training, the ERF report and
//! the harness are to come (plan: `/work/notes/slak-brief.md`).
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod model;
pub mod paper;
pub mod presets;
pub mod sparse;
pub mod spec;
pub mod training;

pub use error::{Error, Result};
pub use model::SlakNet;
pub use paper::Slak;
pub use spec::{Branch, ModelSpec};
