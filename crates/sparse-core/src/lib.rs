//! # sparse-core
//!
//! The sparse-training engine of Sparseland, built on [candle](https://github.com/huggingface/candle).
#![warn(missing_docs)]

pub mod allocation;
pub mod error;
pub mod granularity;
pub mod mask;
pub mod registry;
pub mod saliency;
pub mod selection;
pub mod state;

pub use allocation::{Allocation, AllocationConfig, AllocationConfigBuilder, LayerSpec, Sampling};
pub use error::{Result, SparseError};
pub use granularity::{Granularity, mask_from_scores};
pub use mask::Mask;
pub use registry::{SparseParam, SparseParams};
pub use selection::{SelectionPolicy, SelectionPolicyBuilder, count_parameters};
pub use state::{MaskableState, MomentumSource};
