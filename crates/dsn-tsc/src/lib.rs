//! # dsn-tsc
//!
//! Reproduction of *Dynamic Sparse Network for Time Series Classification:
//! Learning What to "See"* (Xiao et al., NeurIPS 2022, arXiv 2212.09840) on
//! Sparseland.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | [`TrainConfig`], the checked configuration of one run; [`Arm`] |
//! | [`regions`] | the constraint regions and initial masks, as sparse-core growth regions |
//! | [`data`] | UCR/UEA sets via sparse-data's catalogue, padded to a common length |
//! | [`model`] | the SCNN of the official code |
//! | [`training`] | the training loop on sparse-core's engine and sparse-repro's epoch loop, evaluation |
//! | [`paper`] | [`DsnTsc`], the [`sparse_repro::harness::Paper`]: presets, arms, claims, report additions, `train` flags |
//! | [`published`] | published accuracies on the same data sets, shown beside ours |
//!
//! The binary is sparse-repro's harness driving [`DsnTsc`] (`reproduce`, `train`,
//! `eval`; run directories, resume, checkpoints and reports are the harness's).
//!
//! ```no_run
//! use candle_core::Device;
//! use dsn_tsc::{Arm, TrainConfig, data::synthetic, training::train};
//! use sparse_repro::progress::ProgressMode;
//!
//! let data = synthetic(20, 20, 32, 0);
//! let config = TrainConfig::builder().arm(Arm::Dsn).epochs(10).channels(4).depth(2).build()?;
//! let (_trained, outcome) = train(&config, &data, &Device::Cpu, ProgressMode::Quiet)?;
//! println!("test accuracy {}", outcome.test_accuracy);
//! # Ok::<(), dsn_tsc::Error>(())
//! ```
#![warn(missing_docs)]

pub mod config;
pub mod data;
pub mod error;
pub mod model;
pub mod paper;
pub mod published;
pub mod regions;
pub mod training;

pub use config::{Arm, ConvBackend, Growth, MaskInit, Padding, TrainConfig, TrainConfigBuilder};
pub use error::{Error, Result};
pub use paper::{ArmConfig, DsnTsc};
