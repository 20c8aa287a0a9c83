//! The end of a cycle: superpose the new ticket into the previous superposition,
//! re-prune to the final budget, recalibrate BatchNorm, measure.
//!
//! `A = (1 − w_k)·S_{k−1} + w_k·T_k` over every state entry (BatchNorm affine
//! parameters and running statistics included, as the official code averages the
//! whole `state_dict`), `w_k = 1/(k+1)` for CAA or the CIMA factor; then one global
//! magnitude ranking over the masked weights keeps exactly `floor(N·d)` of them
//! ([`ModelState::prune_to_density`]), and the running statistics are recomputed
//! over one pass of training images ([`Network::recalibrate_batchnorm`], `update_bn`). All of it
//! happens on a separate, unmasked copy of the model.

use candle_core::Var;
use serde::{Deserialize, Serialize};
use sparse_core::scores::ThresholdScope;
use sparse_core::{ModelState, SelectionPolicy, SparseError};
use sparse_repro::models::Network;
use sparse_repro::splits::ImageSplits;

use crate::config::SupConfig;
use crate::error::Result;

/// One model of the run, measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Validation accuracy in `[0, 1]`.
    pub validation: f64,
    /// Test accuracy in `[0, 1]`.
    pub test: f64,
    /// Non-zero entries of the masked weights.
    pub nonzero: usize,
}

/// What one cycle's end produced.
#[derive(Debug, Clone)]
pub struct SuperposeStep {
    /// The ticket as trained.
    pub ticket: Stage,
    /// The ticket after recalibration alone.
    pub ticket_recalibrated: Stage,
    /// The new superposition.
    pub superposition: Stage,
    /// Its state (the next cycle's `S_{k−1}`).
    pub state: ModelState,
}

/// Superposes, re-prunes, recalibrates and measures on its own copy of the model.
#[derive(Debug)]
pub struct Superposer<'a> {
    config: &'a SupConfig,
    splits: &'a ImageSplits,
    scratch: Network,
    masked: Vec<String>,
    budget: usize,
}

impl<'a> Superposer<'a> {
    /// Works on `scratch`, a network of `config`'s architecture without masks.
    pub fn new(config: &'a SupConfig, splits: &'a ImageSplits, scratch: Network) -> Result<Self> {
        let masked: Vec<(String, usize)> = masked_weights(&scratch)?
            .into_iter()
            .map(|(name, var)| (name, var.elem_count()))
            .collect();
        let total: usize = masked.iter().map(|(_, n)| n).sum();
        let budget = (config.density() * total as f64 + 1e-9).floor() as usize;
        Ok(Self {
            config,
            splits,
            scratch,
            masked: masked.into_iter().map(|(name, _)| name).collect(),
            budget,
        })
    }

    /// The masked weights the final density allows, `floor(N·d)`.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The names of the masked (re-pruned) weights.
    pub fn masked(&self) -> &[String] {
        &self.masked
    }

    /// The copy of the model, for the caller to keep.
    pub fn into_network(self) -> Network {
        self.scratch
    }

    /// Loads `state` and measures it as it is.
    pub fn measure(&self, state: &ModelState) -> Result<Stage> {
        state.restore(&self.scratch.varmap)?;
        let validation = self
            .scratch
            .evaluate(self.splits.validation_batches())?
            .accuracy;
        let test = self.scratch.evaluate(self.splits.test_batches())?.accuracy;
        Ok(Stage {
            validation,
            test,
            nonzero: nonzero(state, &self.masked)?,
        })
    }

    /// Recomputes `state`'s BatchNorm statistics over the recalibration images.
    pub fn recalibrate(&self, state: &mut ModelState) -> Result<()> {
        state.restore(&self.scratch.varmap)?;
        self.scratch
            .recalibrate_batchnorm(self.splits.recalibration_batches())?;
        *state = ModelState::capture(&self.scratch.varmap)?;
        Ok(())
    }

    /// The superposition of ticket `k` (1-based) into `previous`: superposed,
    /// re-pruned to the budget, recalibrated, measured.
    pub fn superpose(
        &self,
        previous: &ModelState,
        ticket: &ModelState,
        k: usize,
    ) -> Result<SuperposeStep> {
        let ticket_stage = self.measure(ticket)?;
        let mut recalibrated = ticket.clone();
        self.recalibrate(&mut recalibrated)?;
        let ticket_recalibrated = self.measure(&recalibrated)?;
        let weight = self.config.superposition().ticket_weight(k);
        let mut state = ModelState::lerp(previous, ticket, weight)?;
        state.prune_to_density(&self.masked, self.config.density(), ThresholdScope::Global)?;
        self.recalibrate(&mut state)?;
        Ok(SuperposeStep {
            ticket: ticket_stage,
            ticket_recalibrated,
            superposition: self.measure(&state)?,
            state,
        })
    }
}

/// The weights the run masks and re-prunes: every convolution and linear weight
/// (first layer and classifier included, as the official code), in model order.
pub fn masked_policy(net: &Network) -> Result<SelectionPolicy> {
    Ok(SelectionPolicy::builder()
        .ndims([2, 4])
        .layer_order(net.model.weight_names_in_order())
        .build()?)
}

/// The weights [`masked_policy`] selects, with their variables.
pub fn masked_weights(net: &Network) -> Result<Vec<(String, Var)>> {
    Ok(masked_policy(net)?.select_in_model_order(&net.varmap)?)
}

/// Non-zero entries of `names` in `state`.
pub fn nonzero(state: &ModelState, names: &[String]) -> Result<usize> {
    let mut count = 0;
    for name in names {
        let t = state.get(name).ok_or_else(|| {
            SparseError::invalid_input("state", format!("`{name}` is not in the model state"))
        })?;
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        count += values.iter().filter(|v| **v != 0.0).count();
    }
    Ok(count)
}
