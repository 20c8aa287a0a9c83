//! # sparse-core
//!
//! The sparse-training engine of Sparseland, built on [candle](https://github.com/huggingface/candle).
#![warn(missing_docs)]

pub mod error;
pub mod grow;
pub mod itop;
pub mod mask;
pub mod prune;
pub mod redistribution;
pub mod registry;
pub mod schedule;
pub mod scores;
pub mod state;
pub mod updater;

pub use error::{Result, SparseError};
pub use mask::Mask;
pub use registry::{SparseParam, SparseParams};
pub use state::{MaskableState, MomentumSource};

pub use grow::{GrowthInit, GrowthInputs, GrowthMethod, GrowthRegion};
pub use itop::FiredMasks;
pub use prune::{GradualPruning, KeepRule, LayerView, PruneMethod, keep_top_magnitude};
pub use redistribution::Redistribution;
pub use schedule::{CubicDensitySchedule, DeathRate};
pub use scores::{ScoreCount, ScoreSubnetwork, ScoredLayer, SparsityRamp, ThresholdScope};
pub use updater::{
    DynamicSparsity, DynamicSparsityBuilder, LayerChange, OptimizerState, SparsityEngine,
    TopologyUpdater, UpdateContext, UpdateReport,
};
