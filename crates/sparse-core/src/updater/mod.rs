//! The one topology-update interface ([`TopologyUpdater`]) and the engine that
//! implements every dynamic-sparse-training method as a configuration of it
//! ([`SparsityEngine`] driven by a [`DynamicSparsity`] config).
//!
//! The call order is the official `Masking.step()` (methods notes §1.3): after the
//! optimizer step, masks are applied to the weights (and optionally to momentum
//! buffers), the death rate is read for the current step, and every `period` steps
//! the engine prunes, regrows and updates the ITOP record. A new DST method is a new
//! [`PruneMethod`](crate::PruneMethod) / [`GrowthMethod`](crate::GrowthMethod) variant
//! plus a preset in `presets.rs`.
//!
//! One concept per file: [`TopologyUpdater`] and what it reads (`interface`), the
//! configuration and its builder (`config`), the method presets (`presets`), the
//! engine (`engine`) and what it reports (`report`).

mod config;
mod engine;
mod interface;
mod presets;
mod report;

pub use config::{DynamicSparsity, DynamicSparsityBuilder};
pub use engine::SparsityEngine;
pub use interface::{OptimizerBuffers, TopologyUpdater, UpdateContext};
pub use report::{LayerChange, UpdateReport};

#[cfg(test)]
mod tests;
