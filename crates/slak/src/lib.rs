//! # slak
//!
//! Reproduction of SLaK, *More ConvNets in the 2020s: Scaling up Kernels Beyond
//! 51x51 using Sparsity* (Liu et al., ICLR 2023, arXiv 2207.03620), on Sparseland:
//! ConvNeXt with each large depthwise kernel decomposed into parallel K×N, N×K (and
//! N×N) branches, trained dynamically sparse (SNIP-ratio densities, magnitude
//! pruning and random regrowth on a cosine rate) and widened with the saved weights,
//! against dense small, dense naive and decomposed dense kernels.
//!
//! - [`spec`]: the network's shape ([`ModelSpec`]), with parameter counts,
//!   receptive field and per-layer FLOPs;
//! - [`model`]: the network on sparse-core's depthwise kernels ([`SlakNet`]), whose
//!   masked branches follow the topology updates;
//! - [`config`], [`sparse`]: one arm's settings and its sparse training, checked
//!   before training;
//! - [`training`]: the loop (gradient accumulation, AdamW, the engine, SEMA,
//!   selection on validation) and the effective receptive field;
//! - [`paper`], [`presets`]: arms, claims, anchors and pictures for sparse-repro's
//!   harness.
//!
//! ```no_run
//! use slak::config::{DwGrad, SlakConfig};
//! use slak::sparse::SlakSparsity;
//! use slak::spec::ModelSpec;
//! use slak::training::train;
//! use sparse_data::images::{ImageData, ImageSetName};
//! use sparse_repro::progress::ProgressMode;
//! use sparse_repro::splits::{ImageSplits, SplitSizes};
//!
//! let config = SlakConfig {
//!     model: ModelSpec {
//!         in_chans: 1,
//!         num_classes: 2,
//!         depths: vec![1, 1],
//!         dims: vec![24, 48],
//!         kernel_size: vec![13, 13, 3],
//!         width_factor: 1.3,
//!         decompose: true,
//!         stem: 2,
//!         drop_path: 0.0,
//!         layer_scale: 1e-6,
//!     },
//!     sparsity: Some(SlakSparsity {
//!         density: 0.6,
//!         prune_rate: 0.3,
//!         topology_period: 25,
//!         fix: false,
//!         exact_growth: false,
//!     }),
//!     data: SplitSizes {
//!         train_pool: Some(2000),
//!         validation_fraction: 1.0 / 9.0,
//!         test: Some(1000),
//!         recalibration: None,
//!     },
//!     epochs: 5,
//!     batch_size: 64,
//!     accumulation_steps: 1,
//!     lr: 2e-3,
//!     min_lr: 1e-6,
//!     warmup_epochs: 1.0,
//!     weight_decay: 0.05,
//!     label_smoothing: 0.1,
//!     ema_decay: Some(0.975),
//!     dw_grad: DwGrad::Dense,
//!     erf_images: 32,
//!     erf_upsample: 3,
//! };
//! config.validate()?;
//! let data = ImageData::load(ImageSetName::BorderHalf, None)?;
//! let splits = ImageSplits::new(data, &config.data)?;
//! let run = train(&config, &splits, 0, ProgressMode::Quiet, "d-13")?;
//! println!(
//!     "test {:.3}, ERF ratio at t = 0.2: {:.4}",
//!     run.outcome.test_accuracy, run.outcome.erf[0]
//! );
//! run.erf_map.write_png(std::path::Path::new("erf.png"), 4)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod model;
pub mod paper;
pub mod presets;
pub mod sparse;
pub mod spec;
pub mod training;

pub use error::{Error, Result};
pub use model::SlakNet;
pub use paper::Slak;
pub use spec::{Branch, ModelSpec};
