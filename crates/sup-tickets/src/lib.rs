//! # sup-tickets
//!
//! Reproduction of *Superposing Many Tickets into One: A Performance Booster for
//! Sparse Neural Network Training* (Yin et al., UAI 2022, arXiv 2205.15322) on
//! Sparseland.
//!
//! Phase 1 is sparse-core's dynamic sparse training (GraNet or RigL, ERK, the
//! official constant death rate); the cyclic phase, the tickets and their
//! superposition are this crate: [`config`] (one arm's checked configuration and
//! the official epoch split), [`training`] (the run in sparse-repro's epoch loop),
//! [`superpose`] (CAA or CIMA over every state entry, global re-prune to the
//! budget, BatchNorm recalibration, on a separate copy of the model) and [`paper`]
//! (presets, claims and the plot for the harness, which is the whole binary).
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod paper;
pub mod superpose;
pub mod training;

pub use config::SupConfig;
pub use error::{Error, Result};
pub use paper::SupTickets;
