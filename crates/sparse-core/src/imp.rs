//! Iterative magnitude pruning with weight rewinding (lottery tickets), as a driver
//! around the caller's own training loop.
//!
//! Round 0 trains the dense model and captures the whole model state (BatchNorm
//! statistics and classifier included) once `rewind_epoch` epochs are done. Every
//! later round first prunes `rate` of the weights still active, globally over the
//! registered (prunable) tensors and ranked on the weights the previous round ended
//! with ([`ImpRound`]), then rewinds **every** state entry to the captured point,
//! zeroes the pruned weights and trains again from epoch `rewind_epoch` (the caller
//! resumes its learning-rate schedule there). Each round's ticket is the state of its
//! best validation epoch, which the caller's training returns.
//!
//! This is the `rewind_lt` mode of Lottery Pools' `main_imp.py` (and OpenLTH's
//! rewinding); `rewind_epoch = 0` is the original lottery ticket (rewind to
//! initialisation). The prune count follows [`RemovalCount`] (PyTorch's
//! `global_unstructured` rounds to nearest, ties to even: [`RemovalCount::Nearest`]).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{Init, VarMap};
//! use sparse_core::imp::{ImpSchedule, iterative_magnitude_pruning};
//! use sparse_core::{Mask, ModelState, SparseParams};
//!
//! # fn main() -> sparse_core::Result<()> {
//! let varmap = VarMap::new();
//! let w = varmap.get((4, 4), "conv.weight", Init::Randn { mean: 0.0, stdev: 1.0 }, DType::F32, &Device::Cpu)?;
//! let mut params = SparseParams::new();
//! params.insert("conv.weight", varmap.data().lock().unwrap()["conv.weight"].clone(), Mask::ones(&[4, 4]))?;
//! let schedule = ImpSchedule::builder(3, 0.5).rewind_epoch(1).epochs(2).build()?;
//! let tickets = iterative_magnitude_pruning(&varmap, &mut params, &schedule, |round, params, after_epoch| {
//!     for epoch in round.start_epoch..round.epochs {
//!         // ... one epoch of training with `params.apply_masks()` after every step ...
//!         after_epoch(epoch + 1)?;
//!     }
//!     let _ = params;
//!     Ok((ModelState::capture(&varmap)?, 0.5)) // the best validation epoch's state and score
//! })?;
//! assert_eq!(tickets.len(), 3);
//! assert_eq!(tickets[2].masks["conv.weight"].nnz(), 4); // 16 → 8 → 4
//! # let _ = w;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;

use candle_nn::VarMap;

use crate::error::{Result, SparseError};
use crate::mask::Mask;
use crate::model_state::ModelState;
use crate::prune::{ImpRound, LayerView, RemovalCount};
use crate::registry::SparseParams;
use crate::validate::check_fraction;

/// A checked IMP schedule; build with [`ImpSchedule::builder`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImpSchedule {
    rounds: usize,
    round: ImpRound,
    rewind_epoch: usize,
    epochs: usize,
}

impl ImpSchedule {
    /// `rounds` tickets (round 0 dense), pruning `rate` of the active weights before
    /// each later round; globally ranked, PyTorch's count ([`RemovalCount::Nearest`]),
    /// rewinding to epoch 0 and training 1 epoch per round until changed.
    pub fn builder(rounds: usize, rate: f64) -> ImpScheduleBuilder {
        ImpScheduleBuilder {
            rounds,
            rate,
            global: true,
            count: RemovalCount::Nearest,
            rewind_epoch: 0,
            epochs: 1,
        }
    }

    /// Number of rounds (tickets), the dense round 0 included.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// The pruning step between rounds.
    pub fn pruning(&self) -> ImpRound {
        self.round
    }

    /// Epochs done when the rewind point is captured in round 0.
    pub fn rewind_epoch(&self) -> usize {
        self.rewind_epoch
    }

    /// Epochs of a whole round (later rounds train `rewind_epoch..epochs`).
    pub fn epochs(&self) -> usize {
        self.epochs
    }
}

/// Builder of an [`ImpSchedule`]; [`build`](Self::build) checks it.
#[derive(Debug, Clone, Copy)]
pub struct ImpScheduleBuilder {
    rounds: usize,
    rate: f64,
    global: bool,
    count: RemovalCount,
    rewind_epoch: usize,
    epochs: usize,
}

impl ImpScheduleBuilder {
    /// One ranking over all prunable tensors (default) or one per tensor.
    pub fn global(mut self, global: bool) -> Self {
        self.global = global;
        self
    }

    /// How the share becomes a count (default [`RemovalCount::Nearest`]).
    pub fn count(mut self, count: RemovalCount) -> Self {
        self.count = count;
        self
    }

    /// Epochs done when the rewind point is captured (0: the initialisation).
    pub fn rewind_epoch(mut self, epoch: usize) -> Self {
        self.rewind_epoch = epoch;
        self
    }

    /// Epochs of a whole round.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Checks the schedule.
    pub fn build(self) -> Result<ImpSchedule> {
        if self.rounds == 0 {
            return Err(SparseError::invalid(
                "imp.rounds",
                0,
                "at least one round (the dense model)",
            ));
        }
        check_fraction("imp.rate", self.rate)?;
        if self.rate == 0.0 || self.rate == 1.0 {
            return Err(SparseError::invalid(
                "imp.rate",
                self.rate,
                "must lie strictly between 0 and 1",
            ));
        }
        if self.epochs == 0 || self.rewind_epoch >= self.epochs {
            return Err(SparseError::invalid(
                "imp.rewind_epoch",
                self.rewind_epoch,
                format!(
                    "must be below the epochs of a round ({}), which must be positive",
                    self.epochs
                ),
            ));
        }
        Ok(ImpSchedule {
            rounds: self.rounds,
            round: ImpRound::new(self.rate, self.global)?.with_count(self.count),
            rewind_epoch: self.rewind_epoch,
            epochs: self.epochs,
        })
    }
}

/// What one round trains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundPlan {
    /// The round (0: dense).
    pub round: usize,
    /// The first epoch to train (0 in round 0, the rewind epoch later): resume the
    /// learning-rate schedule here.
    pub start_epoch: usize,
    /// The epochs of a whole round: train `start_epoch..epochs`.
    pub epochs: usize,
    /// Active share of the prunable weights during this round.
    pub density: f64,
}

/// One round's ticket.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The round it comes from.
    pub round: usize,
    /// Active share of the prunable weights.
    pub density: f64,
    /// The masks of the prunable tensors.
    pub masks: BTreeMap<String, Mask>,
    /// The state of the round's best validation epoch.
    pub state: ModelState,
    /// That epoch's validation score.
    pub score: f64,
}

/// Runs `schedule` on the model in `varmap` whose prunable tensors are registered in
/// `params` (their masks are the starting point, usually all ones).
///
/// `train_round(plan, params, after_epoch)` trains epochs `plan.start_epoch..
/// plan.epochs` with a fresh optimizer, applying `params`' masks after every step, and
/// calls `after_epoch(e)` when `e` epochs are done (the driver captures the rewind
/// point there in round 0); it returns the state and validation score of the round's
/// best epoch. Returns the tickets in round order. The model is left as the last
/// round ended; an error in any round stops the run.
pub fn iterative_magnitude_pruning<F>(
    varmap: &VarMap,
    params: &mut SparseParams,
    schedule: &ImpSchedule,
    mut train_round: F,
) -> Result<Vec<Ticket>>
where
    F: FnMut(
        &RoundPlan,
        &mut SparseParams,
        &mut dyn FnMut(usize) -> Result<()>,
    ) -> Result<(ModelState, f64)>,
{
    if params.is_empty() {
        return Err(SparseError::invalid_input(
            "params",
            "no prunable tensor is registered",
        ));
    }
    let mut rewind: Option<ModelState> = None;
    if schedule.rewind_epoch == 0 {
        rewind = Some(ModelState::capture(varmap)?);
    }
    let mut tickets = Vec::with_capacity(schedule.rounds);
    for round in 0..schedule.rounds {
        let start_epoch = if round == 0 {
            0
        } else {
            prune_from_current_weights(params, &schedule.round)?;
            let point = rewind.as_ref().ok_or_else(|| {
                SparseError::invalid_input(
                    "train_round",
                    format!(
                        "round 0 never reported epoch {} done, so there is no rewind point",
                        schedule.rewind_epoch
                    ),
                )
            })?;
            point.restore(varmap)?;
            params.apply_masks()?;
            schedule.rewind_epoch
        };
        let plan = RoundPlan {
            round,
            start_epoch,
            epochs: schedule.epochs,
            density: params.total_density(),
        };
        let mut after_epoch = |epoch: usize| -> Result<()> {
            if round == 0 && epoch == schedule.rewind_epoch {
                rewind = Some(ModelState::capture(varmap)?);
            }
            Ok(())
        };
        let (state, score) = train_round(&plan, params, &mut after_epoch)?;
        tickets.push(Ticket {
            round,
            density: plan.density,
            masks: params
                .iter()
                .map(|p| (p.name.clone(), p.mask.clone()))
                .collect(),
            state,
            score,
        });
    }
    Ok(tickets)
}

/// Prunes `round.rate` of the active weights, ranked on the weights as they are now.
fn prune_from_current_weights(params: &mut SparseParams, round: &ImpRound) -> Result<()> {
    let hosts: Vec<(String, Vec<f32>, Mask)> = params
        .iter()
        .map(|p| Ok((p.name.clone(), p.dense_host()?, p.mask.clone())))
        .collect::<Result<_>>()?;
    let views: Vec<LayerView<'_>> = hosts
        .iter()
        .map(|(name, weights, mask)| LayerView {
            name,
            weights,
            grads: None,
            mask,
        })
        .collect();
    let masks = round.prune(&views)?;
    for ((name, _, _), mask) in hosts.iter().zip(masks) {
        params.set_mask(name, mask)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
