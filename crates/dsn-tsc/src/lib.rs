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
//! | [`training`] | the training loop on sparse-core's engine, evaluation, checkpoints |
//! | [`experiment`] | presets, arms, claims and the run report |
//! | [`published`] | published accuracies on the same data sets, shown beside ours |
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
pub mod experiment;
pub mod model;
pub mod published;
pub mod regions;
pub mod training;

pub use config::{Arm, ConvBackend, Growth, MaskInit, Padding, TrainConfig, TrainConfigBuilder};
pub use error::{Error, Result};
