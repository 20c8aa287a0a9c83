//! OpenCFD-SCU on candle: a high-order finite-difference solver for the compressible
//! Navier–Stokes equations (arXiv 2209.15333), with its verification suite.
//!
//! The flow lives in candle tensors, one set per block of the decomposition
//! ([`domain`]); each right-hand side is built by fused in-place ops ([`kernels`]):
//! primitives, then per direction Steger–Warming splitting ([`split`]) and an upwind
//! reconstruction ([`scheme`], [`hybrid`]), then the viscous terms; [`solver`]
//! advances it with TVD RK3. [`control`] reads the official control file, [`run`]
//! runs one, [`verify`] checks the method against known answers.
//!
//! ```
//! use opencfd_scu::cases::{periodic_boundaries, taylor_green_grid, taylor_green_initial};
//! use opencfd_scu::gas::Gas;
//! use opencfd_scu::kernels::inviscid::InviscidScheme;
//! use opencfd_scu::scheme::{CentralDifference, Reconstruction};
//! use opencfd_scu::solver::{Solver, SolverConfig};
//!
//! let gas = Gas::new(1.4, 0.1, 1600.0, 0.72, 288.15)?;
//! let config = SolverConfig {
//!     gas,
//!     inviscid: InviscidScheme::Fixed(Reconstruction::Up7),
//!     viscous: Some(CentralDifference::Cd6),
//!     entropy_fix: 0.0,
//!     dt: 0.01,
//!     blocks: [2, 1, 1],
//!     boundaries: periodic_boundaries(),
//!     closures: [[false; 2]; 3],
//!     non_reflecting: [[false; 2]; 3],
//!     jacobian_closures: None,
//!     overlap: false,
//! };
//! let mut solver = Solver::new(config, &taylor_green_grid(16), taylor_green_initial(gas))?;
//! solver.step()?;
//! assert_eq!(solver.conservative()?.len(), 5 * 16 * 16 * 16);
//! # Ok::<(), opencfd_scu::CfdError>(())
//! ```

pub mod boundary;
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
pub mod ramp;
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
