//! # sparse-core
//!
//! The sparse-training engine of Sparseland, built on [candle](https://github.com/huggingface/candle).
#![warn(missing_docs)]

pub mod error;
pub mod kernels;
pub mod mask;
pub mod registry;
pub mod state;

pub use error::{Result, SparseError};
pub use mask::Mask;
pub use registry::{SparseParam, SparseParams};
pub use state::{MaskableState, MomentumSource};
