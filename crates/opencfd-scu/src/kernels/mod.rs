//! The fused CPU kernels over candle storage.
//!
//! Each is a candle in-place op on contiguous `f64` fields (see [`storage`]), so the
//! solver's state lives in candle tensors and the hot loops read and write each
//! value once, in parallel over the cores, instead of chaining dozens of small
//! tensor operations.

pub mod halo;
pub mod inviscid;
pub mod primitives;
pub mod region;
pub mod runge_kutta;
pub mod storage;
pub mod viscous;
