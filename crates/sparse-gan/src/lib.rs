//! # sparse-gan (work in progress)
//!
//! Reproduction of STU-GAN, *Don't Be So Dense: Sparse-to-Sparse GAN Training
//! Without Sacrificing Performance* (arXiv 2203.02770), on Sparseland. This branch
//! holds the first pieces: [`schedule`] (the death rate as each version of the
//! author code steps it) and [`spectral`] (spectral normalisation with its vectors
//! kept out of the `VarMap`) and [`metrics`] (energy distance and MMD to a 2-D
//! mixture, exact in the mixture). The plan is `/work/notes/sparse-gan-brief.md`.
#![warn(missing_docs)]

pub mod error;
pub mod metrics;
pub mod models;
pub mod paper;
pub mod schedule;
pub mod spectral;
pub mod training;

pub use error::{Error, Result};
pub use paper::StuGan;
