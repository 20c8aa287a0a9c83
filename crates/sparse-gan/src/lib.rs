//! # sparse-gan
//!
//! Reproduction of STU-GAN, *Don't Be So Dense: Sparse-to-Sparse GAN Training
//! Without Sacrificing Performance* (Liu et al., arXiv 2203.02770), on Sparseland:
//! a very sparse generator that keeps exploring its parameter space (prune by
//! magnitude, regrow by gradient, every `update_frequency` generator steps) beside a
//! denser discriminator, against dense, static sparse and both-networks-exploring
//! GANs.
//!
//! - [`config`]: one arm's settings ([`GanConfig`]), checked before training;
//! - [`models`]: the MLP GAN (2-D mixtures), a small DCGAN and the official SNGAN;
//! - [`training`]: the hinge-loss loop with two sparse registries and two engines;
//! - [`schedule`]: the death rate as each version of the author code steps it;
//! - [`spectral`]: spectral normalisation with its vectors kept out of the `VarMap`;
//! - [`metrics`], [`features`], [`evaluation`]: scores that need no Inception
//!   network (exact distances to a mixture; a Fréchet distance of a small
//!   classifier's features on images);
//! - [`paper`]: presets, claims and pictures for sparse-repro's harness.
#![warn(missing_docs)]

pub mod config;
pub mod data;
pub mod error;
pub mod evaluation;
pub mod features;
pub mod metrics;
pub mod models;
pub mod paper;
pub mod presets;
pub mod schedule;
pub mod spectral;
pub mod training;

pub use config::{Explore, GanArch, GanConfig, MaskScope};
pub use error::{Error, Result};
pub use paper::StuGan;
