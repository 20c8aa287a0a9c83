//! Boundary conditions that set the flow itself: the official user conditions (`IBC`).
//!
//! Periodic and zero-gradient faces are halo fills ([`crate::domain::Boundary`]); a
//! condition such as a no-slip wall or a prescribed inflow instead overwrites boundary
//! points and ghost layers of the state after every Runge–Kutta stage, as the official
//! `OCFD_bc` does, on faces marked [`crate::domain::Boundary::Imposed`].

use crate::domain::{Block, Domain};
use crate::error::CfdResult;

/// A boundary condition applied to the conservative state of each block.
pub trait StateBoundary: std::fmt::Debug {
    /// Sets the boundary values of `block` (one of `domain`'s) at simulated `time`.
    fn apply(&self, block: &Block, domain: &Domain, time: f64) -> CfdResult<()>;
}
