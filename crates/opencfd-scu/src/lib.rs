//! OpenCFD-SCU on candle: a high-order finite-difference solver for the compressible
//! Navier–Stokes equations (arXiv 2209.15333), with its verification suite.

pub mod cases;
pub mod control;
pub mod domain;
pub mod error;
pub mod formats;
pub mod gas;
pub mod geometry;
pub mod hybrid;
pub mod kernels;
pub mod metrics;
#[cfg(feature = "mpi")]
pub mod mpi_transport;
pub mod riemann;
pub mod run;
pub mod scheme;
pub mod solver;
pub mod split;
pub mod transport;
pub mod verify;

pub use error::{CfdError, CfdResult};

/// Ghost layers on each side of a block (the official `LAP`).
pub const GHOST: usize = 4;
