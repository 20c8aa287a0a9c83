//! Layer-wise density allocation and random masks at initialisation.
//!
//! Given the masked layers in model order and a global density `d` (kept weights over
//! masked weights), an [`Allocation`] computes one density per layer, exactly as the
//! official ITOP / GraNet / Random_Pruning / SLaK code does (methods note B §1.7):
//!
//! - [`Allocation::Uniform`]: every layer at `d`.
//! - [`Allocation::UniformPlus`] (Random_Pruning `uniform_plus`): the first layer is
//!   dense. Below `d = 0.2` the classifier (last layer) is held at 0.2 and the other
//!   layers share `d' = (d·N − N_first − 0.2·N_fc) / N`; the official code divides by
//!   the *total* `N` (first layer and classifier included), so the model is slightly
//!   under budget. From `d = 0.2` on, the official code gives every layer but the
//!   first the global `d` itself (classifier included), so the model is *over*
//!   budget by the dense first layer's surplus. `exact_budget: true` instead shares
//!   `d·N − N_first` (less the classifier's floor below 0.2) over the remaining
//!   layers' weights and meets `d·N` exactly at every density.
//! - [`Allocation::Erk`] (RigL's Erdős–Rényi-Kernel): layer `l` gets `ε·r_l` with
//!   `r_l = (Σ shape / Π shape)^p`, `ε` chosen so that `Σ d_l N_l = d·N`. Whenever the
//!   largest `ε·r_l` exceeds 1, every layer with that largest `r_l` (ties included)
//!   becomes dense, the budget is recomputed and the loop repeats.
//! - [`Allocation::Er`] (Random_Pruning `ER`): the same loop with
//!   `r_l = ((n_out + n_in) / (n_out·n_in))^p` from `shape[..2]` only.
//! - [`Allocation::ErkPlus`] (Random_Pruning ImageNet `ERK_plus`): the classifier
//!   (last layer) is set to `classifier_density`, ERK runs on the other layers with
//!   `d' = (d·N − N_fc·classifier_density) / (N − N_fc)`.
//! - [`Allocation::SnipRatio`], [`Allocation::GraspRatio`],
//!   [`Allocation::GlobalMagnitude`]: one global top-`floor(d·N)` over per-layer
//!   scores (see [`crate::saliency`]); each layer's density is its kept share. GraSP
//!   keeps the *lowest* scores, as the official code.
//!
//! The positions are then random ([`Sampling`]): official code draws each weight
//! independently (`U(0,1) < d_l`, [`Sampling::Bernoulli`]), so layer counts vary;
//! [`Sampling::ExactCount`] draws exactly the rounded count per layer. Together this
//! is the whole method of "The Unreasonable Effectiveness of Random Pruning":
//! [`AllocationConfig::init_sparse_params`].
//!
//! The module is split by concept: `rules` holds the layer-density rules
//! ([`Allocation`], [`LayerSpec`]), `sampling` draws mask positions
//! ([`Sampling`], [`sample_masks`], [`exact_counts`]), and `config` ties both to a
//! `VarMap` ([`AllocationConfig`]). A new density rule is a new [`Allocation`]
//! variant in `rules`.

mod config;
mod rules;
mod sampling;

pub use config::{AllocationConfig, AllocationConfigBuilder};
pub use rules::{Allocation, LayerSpec};
pub use sampling::{Sampling, exact_counts, sample_masks};

/// Kept at its old path; the check itself lives in [`crate::validate`].
pub use crate::validate::check_density;

#[cfg(test)]
mod tests;
