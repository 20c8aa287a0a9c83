//! # smoe-dropout
//!
//! A reproduction of **SMoE-Dropout** — Chen, Zhang, Jaiswal, Liu, Wang, "Sparse MoE
//! as the New Dropout: Scaling Dense and Self-Slimmable Transformers" (ICLR 2023,
//! [arXiv 2303.01610](https://arxiv.org/abs/2303.01610)) — on Sparseland's harness.
//!
//! Each feed-forward block of a transformer becomes N experts behind a randomly
//! initialised router that is never trained; each token goes to the top k experts,
//! weighted by the softmax of the selected logits, and k grows during training
//! (linearly from N/2 to N in the official script). After training the model can be
//! run at any k ("self-slimmable"): more experts, better predictions.
//!
//! - [`schedule`]: the official k schedules (linear, cosine, exponential,
//!   multi-step; Python's rounding).
//! - [`moe`]: the router (frozen, learned or random) and real top-k dispatch, with
//!   the all-experts oracle.
//! - [`layers`]: what both models share: linear maps, the two-layer block (one
//!   expert or the dense block), the feed-forward block (dense, dense with expert
//!   dropout, or MoE), embeddings, post-LN and the initialisation.
//! - [`model`] and [`training`]: a small post-LN causal transformer LM, its run
//!   (Adam, cosine rate, clipping, THOR's two-pass consistency loss) and bits per
//!   character.
//! - [`mwp`]: math word problems through the BERT WordPiece tokenizer, an
//!   encoder–decoder trained from scratch, value accuracy.
//! - [`presets`] and [`paper`]: the arms, the claims and the published numbers for
//!   the `smoe-dropout` binary (see the crate README for results and deviations).
//!
//! ```no_run
//! use sparse_repro::cli::Preset;
//! use smoe_dropout::data::CharData;
//! use smoe_dropout::presets::{self, ArmKind};
//! use smoe_dropout::schedule::KMode;
//! use sparse_repro::progress::ProgressMode;
//!
//! let data = CharData::load("tinyshakespeare", None)?;
//! let config = presets::config(Preset::Smoke, ArmKind::SmoeDropout, KMode::LinearIncrease)?;
//! let run = smoe_dropout::training::train(&config, &data, 0, ProgressMode::Quiet, "demo")?;
//! for (k, bpc) in &run.outcome.test_bpc {
//!     println!("k = {k}: {bpc:.3} bits per character");
//! }
//! # Ok::<(), smoe_dropout::Error>(())
//! ```

pub mod config;
pub mod data;
mod error;
pub mod layers;
pub mod mode;
pub mod model;
pub mod moe;
pub mod mwp;
pub mod paper;
pub mod presets;
pub mod schedule;
mod steps;
pub mod training;

pub use error::{Error, Result};
pub use paper::SmoeDropout;
