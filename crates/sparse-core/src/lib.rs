//! # sparse-core
//!
//! The sparse-training engine of Sparseland, built on [candle](https://github.com/huggingface/candle).
#![warn(missing_docs)]

pub mod allocation;
pub mod batchnorm;
pub mod checkpoint;
pub mod ema;
pub mod error;
pub mod flops;
pub mod granularity;
pub mod grow;
pub mod init;
pub mod itop;
pub mod lr;
pub mod mask;
pub mod optim;
pub mod prune;
pub mod redistribution;
pub mod registry;
pub mod saliency;
pub mod schedule;
pub mod scores;
pub mod selection;
pub mod spmm;
pub mod state;
pub mod updater;

pub use allocation::{Allocation, AllocationConfig, AllocationConfigBuilder, LayerSpec, Sampling};
pub use checkpoint::{CheckpointMeta, RngState};
pub use ema::SparseEma;
pub use error::{CheckpointError, Result, SparseError};
pub use flops::{InferenceFlops, LayerFlops, LayerShape, ParamReport, StepKind, TrainingFlops};
pub use granularity::{Granularity, mask_from_scores};
pub use grow::{GrowthInit, GrowthInputs, GrowthMethod, GrowthRegion};
pub use init::{FanMode, Init, Nonlinearity};
pub use itop::FiredMasks;
pub use lr::LrSchedule;
pub use mask::Mask;
pub use optim::{Adam, AdamConfig, Optimizer, OptimizerState, ParamGroup, Sgd, SgdConfig};
pub use prune::{GradualPruning, KeepRule, LayerView, PruneMethod, keep_top_magnitude};
pub use redistribution::Redistribution;
pub use registry::{SparseParam, SparseParams};
pub use schedule::{CubicDensitySchedule, DeathRate};
pub use scores::{ScoreCount, ScoreSubnetwork, ScoredLayer, SparsityRamp, ThresholdScope};
pub use selection::{SelectionPolicy, SelectionPolicyBuilder, count_parameters};
pub use spmm::SparseMatrix;
pub use state::{MaskableState, MomentumSource};
pub use updater::{
    DynamicSparsity, DynamicSparsityBuilder, LayerChange, OptimizerBuffers, SparsityEngine,
    TopologyUpdater, UpdateContext, UpdateReport,
};
