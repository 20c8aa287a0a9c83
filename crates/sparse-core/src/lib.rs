//! # sparse-core
//!
//! The sparse-training engine of Sparseland, built on [candle](https://github.com/huggingface/candle):
//! masks over candle `Var`s, layer-wise density allocation, prune-and-regrow
//! (SET, RigL, sparse momentum, GraNet, gradual magnitude pruning), optimizers with
//! inspectable state, checkpoints, and parameter / FLOP accounting. Defaults follow the
//! official code of the papers it reproduces; their differences are options.
//!
//! New to sparse training, or to this crate? Read the [`guide`]: it walks the axes of
//! sparse training (dense vs. sparse, structured vs. unstructured, pruning vs. sparse
//! training, static vs. dynamic, ...) with a runnable example for each.
//!
//! ## API map
//!
//! | concept | items |
//! |---|---|
//! | masks and the registry | [`Mask`], [`SparseParams`], [`SparseParam`], [`MaskSet`] (one view over registries, score-subnetwork masks and `BTreeMap<String, Mask>`: counts, densities) |
//! | which tensors are sparse | [`SelectionPolicy`], [`selection`] |
//! | structure of a mask | [`Granularity`], [`mask_from_scores`] |
//! | sparsity at initialisation | [`AllocationConfig`], [`Allocation`] (uniform, ER, ERK, SNIP/GraSP ratio, ...), [`Sampling`], [`saliency`] |
//! | topology updates during training | [`SparsityEngine`], [`DynamicSparsity`] (presets `static_sparse`, `set`, `rigl`, `sparse_momentum`, `gradual_magnitude`, `granet`), [`TopologyUpdater`] |
//! | prune / grow criteria | [`PruneMethod`], [`GradualPruning`], [`ImpRound`] / [`RemovalCount`], [`keep_top_magnitude`], [`GrowthMethod`], [`GrowthRegion`], [`Redistribution`] |
//! | schedules | [`DeathRate`], [`CubicDensitySchedule`], [`PruningWindow`], [`lr`] |
//! | ITOP rate | [`FiredMasks`] |
//! | score-based subnetworks (edge-popup, UGT) | [`ScoreSubnetwork`], [`ScoredLayer`] |
//! | optimizers | [`Sgd`], [`Adam`] (Adam / AdamW), [`Optimizer`] |
//! | weights and statistics | [`init`], [`SparseEma`], [`batchnorm::recalibrate`] |
//! | checkpoints | [`checkpoint::save`], [`checkpoint::load`], [`checkpoint::verify`], [`checkpoint::read_meta_expecting`], [`checkpoint::load_masks`], [`CheckpointMeta`], [`checkpoint::Sources`] |
//! | model snapshots (best epoch, interpolation, averaging, EMA, re-pruning) | [`ModelState`], [`RunningAverage`] |
//! | counting | [`ParamReport`], [`InferenceFlops`], [`TrainingFlops`] |
//! | fast sparse layers | [`kernels`]: [`kernels::SparseLayer`] (implemented by every sparse layer), [`kernels::sync_masks`], [`SparseMatrix`] ([`kernels::spmm`]) |
//! | validating a new config | [`validate`], [`SparseError::invalid`] |
//!
//! ## Quick start
//!
//! Random ERK sparsity at density 0.1 on a small MLP, trained with RigL:
//!
//! ```rust
//! use candle_core::{DType, Device, Module, Tensor};
//! use candle_nn::{VarBuilder, VarMap, linear};
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use sparse_core::optim::{Optimizer, Sgd, SgdConfig, trainable_vars};
//! use sparse_core::{AllocationConfig, DynamicSparsity, SelectionPolicy, SparsityEngine};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (varmap, dev) = (VarMap::new(), Device::Cpu);
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
//! let (fc1, fc2) = (linear(32, 64, vb.pp("fc1"))?, linear(64, 4, vb.pp("fc2"))?);
//! let mut rng = ChaCha8Rng::seed_from_u64(0);
//! let erk = AllocationConfig::builder().density(0.1).build()?; // ERK, Bernoulli positions
//! let mut params = erk.init_sparse_params(&varmap, &SelectionPolicy::default(), None, &mut rng)?;
//! let mut sgd = Sgd::from_params(trainable_vars(&varmap), SgdConfig::builder(0.1).momentum(0.9).build()?)?;
//! let mut engine = SparsityEngine::new(DynamicSparsity::rigl(5, 20).seed(0).build()?, &params)?;
//! let budget = params.iter().map(|p| p.mask.nnz()).sum::<usize>();
//! let (x, y) = (Tensor::ones((8, 32), DType::F32, &dev)?, Tensor::zeros((8, 4), DType::F32, &dev)?);
//! for step in 1..=20 {
//!     let loss = (fc2.forward(&fc1.forward(&x)?.relu()?)? - &y)?.sqr()?.mean_all()?;
//!     let grads = loss.backward()?;
//!     sgd.step(&grads)?;
//!     engine.after_optimizer_step(step, &mut params, &grads, Some(&mut sgd))?;
//! }
//! assert_eq!(params.iter().map(|p| p.mask.nnz()).sum::<usize>(), budget); // RigL keeps the budget
//! assert!(engine.fired_masks().rate() > params.total_density()); // and explored more weights
//! # Ok(())
//! # }
//! ```
//!
//! ## Determinism
//!
//! Every random choice (mask positions, random growth, initialisation) comes from a
//! seeded `rand_chacha::ChaCha8Rng`, and variables are visited in sorted-name order, so
//! the same seed gives the same masks and the same run.
#![warn(missing_docs)]

pub mod allocation;
pub mod batchnorm;
pub mod checkpoint;
pub mod ema;
pub mod error;
pub mod flops;
pub mod granularity;
pub mod grow;
pub mod guide;
pub mod imp;
pub mod init;
pub mod itop;
pub mod kernels;
pub mod lr;
pub mod malloc;
pub mod mask;
pub mod mask_set;
pub mod model_state;
pub mod optim;
pub mod pools;
pub mod prune;
pub mod redistribution;
pub mod registry;
pub mod saliency;
pub mod schedule;
pub mod scores;
pub mod selection;
pub mod state;
pub mod updater;
pub mod validate;

/// The sparse × dense product, kept at its old path; it lives in [`kernels::spmm`].
pub use kernels::spmm;

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
pub use mask_set::MaskSet;
pub use model_state::{ModelState, RunningAverage};
pub use optim::{Adam, AdamConfig, Optimizer, OptimizerState, ParamGroup, Sgd, SgdConfig};
pub use prune::{
    GradualPruning, ImpRound, KeepRule, LayerView, PruneMethod, RemovalCount, keep_top_magnitude,
};
pub use redistribution::Redistribution;
pub use registry::{SparseParam, SparseParams, WeightStorage};
pub use schedule::{CubicDensitySchedule, DeathRate, PruningWindow};
pub use scores::{ScoreCount, ScoreSubnetwork, ScoredLayer, SparsityRamp, ThresholdScope};
pub use selection::{SelectionPolicy, SelectionPolicyBuilder, count_parameters};
pub use spmm::SparseMatrix;
pub use state::{MaskableState, MomentumSource};
pub use updater::{
    DynamicSparsity, DynamicSparsityBuilder, LayerChange, OptimizerBuffers, SparsityEngine,
    TopologyUpdater, UpdateContext, UpdateReport,
};
