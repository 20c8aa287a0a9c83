//! # untrained-gnn
//!
//! Reproduction of Huang et al., "You Can Have Better Graph Neural Networks by Not
//! Training Weights at All: Finding Untrained GNNs Tickets" (LoG 2022,
//! [arXiv 2211.15335](https://arxiv.org/abs/2211.15335)) on Sparseland.
//!
//! A randomly initialised GCN, GAT or GIN is never trained; instead a score per
//! weight is learned and the network keeps the top-(1 − s) weights by score. UGTs
//! rank all layers' scores together (one global threshold) and raise the sparsity
//! linearly from 0 to the target over the first half of training.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | [`TrainConfig`] and its checked builder, [`ModelKind`], [`Method`] |
//! | [`data`] | Cora / Citeseer / the fixture graph as sparse operators |
//! | [`model`] | GCN, GAT and GIN layers over named (masked or trained) weights |
//! | [`training`] | [`Network`] (weights + scores), the training loop on sparse-repro's epoch loop, evaluation |
//! | [`ood`] | the leave-out-classes split of the OOD experiment ([`ood::ClassSplit`]) |
//! | [`mad`] | mean average distance of node embeddings (over-smoothing) |
//! | [`paper`] | [`UntrainedGnn`], the harness's [`sparse_repro::harness::Paper`]: presets, arms, claims, anchors, the plot |
//!
//! Masks, thresholds, the straight-through estimator and the sparsity ramp are
//! sparse-core's [`sparse_core::scores`]; AdamW, initialisation, checkpoints, model
//! snapshots and FLOP counts are sparse-core's too. Data comes from sparse-data;
//! metrics, the epoch loop and the reproduction harness (run directory, resume,
//! checkpoints, reports, the command line) from sparse-repro.
//!
//! ```no_run
//! use candle_core::Device;
//! use sparse_data::location::DataLocation;
//! use sparse_repro::progress::ProgressMode;
//! use untrained_gnn::{DatasetName, Method, ModelKind, TrainConfig, training};
//!
//! let config = TrainConfig::builder(ModelKind::Gcn, Method::Ugt).sparsity(0.9).build()?;
//! let graph = DatasetName::Cora.load(&DataLocation::from_process(None), &Device::Cpu)?;
//! let (_net, outcome) = training::train(&config, &graph, &Device::Cpu, ProgressMode::Auto)?;
//! println!("test accuracy {:.3}", outcome.eval.test_accuracy);
//! # Ok::<(), untrained_gnn::Error>(())
//! ```
#![warn(missing_docs)]

pub mod config;
pub mod data;
pub mod error;
pub mod mad;
pub mod model;
pub mod ood;
pub mod paper;
pub mod training;

pub use config::{Method, ModelKind, TrainConfig, TrainConfigBuilder};
pub use data::{DatasetName, GraphData};
pub use error::{Error, Result};
pub use paper::UntrainedGnn;
pub use training::{Evaluation, Network, RunOutcome, RunState};
