//! # lottery-pools
//!
//! Reproduction of *Lottery Pools: Winning More by Interpolating Tickets without
//! Increasing Training or Inference Cost* (Yin et al., AAAI 2023, arXiv 2208.10842)
//! on Sparseland.
//!
//! The method lives in sparse-core: [`sparse_core::imp`] (iterative magnitude
//! pruning with rewinding) and [`sparse_core::pools`] (the greedy interpolation
//! search, its SWA and EMA baselines, the linear path). This crate gives them a
//! model and data: [`config`] (one arm's checked configuration), [`data`] (the
//! splits and the corrupted test set), [`training`] (the IMP rounds in
//! sparse-repro's epoch loop), [`pooling`] (every pool at every level, scored by
//! validation accuracy after BatchNorm recalibration), [`tickets`] (ticket
//! directories on disk) and [`paper`] (presets, claims, plots and the `pool`
//! subcommand for the harness, which is the whole binary).
#![warn(missing_docs)]

pub mod config;
pub mod data;
pub mod error;
pub mod paper;
pub mod pooling;
pub mod tickets;
pub mod training;

pub use config::LotteryConfig;
pub use error::{Error, Result};
pub use paper::LotteryPools;
