//! # sparse-repro
//!
//! What every Sparseland reproduction shares that is neither sparsity
//! ([`sparse-core`](https://docs.rs/sparse-core)) nor data ([`sparse_data`]).
//!
//! The data sets themselves (loaders, catalogue, locations, registry fetching,
//! the `sparse-data` tool) are the [`sparse_data`] crate; the harness checks a
//! preset's data with [`sparse_data::ensure_available`] before the first arm trains.
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
//! | [`harness`] | the [`harness::Paper`] trait and the generic driver: `reproduce` (run directory, data up front, resume, aggregation, report), `train`, `eval`, one CLI; the reproduction contract and "Adding a paper" |
//! | [`epochs`] | the epoch loop: schedule → batches → step → masks → evaluation → best tracking → progress |
//! | [`models`] | MLP, CIFAR ResNet-(6n+2) and VGG-BN image classifiers with stable parameter names and FLOP descriptions |
//! | [`train`] | evaluation, best-epoch selection, cross-entropy with label smoothing, gradient clipping, stopwatch |
//! | [`run_dir`] | the run's output directory and atomic writes |
//! | [`utc`] | UTC timestamps without a date-time dependency |
//! | [`error`] | [`HarnessError`], the typed error of the modules above |
//!
//! The reproduction contract these pieces implement, and how to add a paper, are
//! in the [`harness`] module's documentation.
#![warn(missing_docs)]

pub mod batch;
pub mod claim;
pub mod cli;
pub mod epochs;
pub mod erf;
pub mod error;
pub mod harness;
pub mod metrics;
pub mod models;
pub mod plot;
pub mod progress;
pub mod report;
pub mod rng;
pub mod run_dir;
pub mod sample_quality;
pub mod splits;
pub mod train;
pub mod utc;

pub use error::{HarnessError, HarnessResult};
