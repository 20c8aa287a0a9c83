//! The pool stage: for every ticket, Lottery Pools (the "interpolation" and
//! "average" coefficient pools) and the paper's baselines (SWA-style averaging,
//! EMA), each measured in and out of distribution, and the linear path to the next
//! ticket (linear mode connectivity).
//!
//! The search itself is sparse-core's ([`sparse_core::pools::lottery_pool`]); this
//! module gives it the score the official code uses: load the candidate model,
//! recalibrate BatchNorm over one pass of training images (`update_bn`, a
//! cumulative average) and take the validation accuracy. Test and corrupted-test
//! accuracies are measured once per final model, never during the search.

use serde::{Deserialize, Serialize};
use sparse_core::imp::Ticket;
use sparse_core::pools::{PoolMethod, PoolOutcome, linear_path, lottery_pool};
use sparse_core::{ModelState, SparseError};
use sparse_repro::progress::{Progress, ProgressMode};

use crate::config::LotteryConfig;
use crate::data::Splits;
use crate::error::Result;
use sparse_repro::models::Network;

/// Accuracies of one model, in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracies {
    /// On the validation split.
    pub validation: f64,
    /// On the test split.
    pub test: f64,
    /// On the corrupted test set, if the run has one.
    pub corrupted: Option<f64>,
}

/// What one pool (or baseline) found for one ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolResult {
    /// The final model's accuracies (after its recalibration).
    pub accuracies: Accuracies,
    /// The target ticket's validation accuracy after recalibration (the search's start).
    pub start_validation: f64,
    /// Candidates merged in.
    pub accepted: usize,
    /// Candidates visited.
    pub candidates: usize,
}

/// One point of the linear path between two adjacent tickets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PathPoint {
    /// The weight of the sparser ticket.
    pub alpha: f64,
    /// Validation accuracy after recalibration.
    pub validation: f64,
    /// Test accuracy after recalibration.
    pub test: f64,
}

/// Everything measured at one sparsity level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// The ticket's round (0: dense).
    pub round: usize,
    /// Share of the convolution weights left.
    pub remaining: f64,
    /// The ticket as IMP left it (no recalibration).
    pub ticket: Accuracies,
    /// The ticket after BatchNorm recalibration alone: what a pool that accepts no
    /// candidate returns, so the share of a pool's gain that is not interpolation.
    pub recalibrated_ticket: Accuracies,
    /// Lottery Pools over the interpolation grid.
    pub interpolation: PoolResult,
    /// Lottery Pools over `{0.5}`.
    pub average: PoolResult,
    /// SWA-style averaging of the same candidates, always accepted.
    pub swa: PoolResult,
    /// EMA of the same candidates, always accepted.
    pub ema: PoolResult,
    /// The path to the next ticket (empty for the last one).
    pub path: Vec<PathPoint>,
}

/// The tickets of one IMP run, as the pools take them.
#[derive(Debug, Clone)]
pub struct TicketSet {
    /// Every ticket's whole state, dense first.
    pub states: Vec<ModelState>,
    /// Share of the convolution weights each keeps.
    pub remaining: Vec<f64>,
}

impl TicketSet {
    /// The tickets of one IMP run, in round order.
    pub fn from_imp(tickets: &[Ticket]) -> Self {
        Self {
            states: tickets.iter().map(|t| t.state.clone()).collect(),
            remaining: tickets.iter().map(|t| t.density).collect(),
        }
    }
}

/// Measures models of `net`'s architecture on `splits`.
#[derive(Debug, Clone, Copy)]
pub struct Evaluator<'a> {
    /// The network the states are loaded into.
    pub net: &'a Network,
    /// The data.
    pub splits: &'a Splits,
}

impl Evaluator<'_> {
    /// Loads `state` and measures it as it is.
    pub fn measure(&self, state: &ModelState) -> Result<Accuracies> {
        state.restore(&self.net.varmap)?;
        let validation = self
            .net
            .evaluate(self.splits.images.validation_batches())?
            .accuracy;
        let test = self
            .net
            .evaluate(self.splits.images.test_batches())?
            .accuracy;
        let corrupted = match &self.splits.corrupted {
            Some(_) => Some(self.net.evaluate(self.splits.corrupted_batches())?.accuracy),
            None => None,
        };
        Ok(Accuracies {
            validation,
            test,
            corrupted,
        })
    }

    /// The search's score: loads `state`, recalibrates BatchNorm over the
    /// recalibration images, writes the recalibrated statistics back into `state`
    /// and returns the validation accuracy.
    pub fn recalibrated_validation(&self, state: &mut ModelState) -> Result<f64> {
        self.recalibrate(state)?;
        Ok(self
            .net
            .evaluate(self.splits.images.validation_batches())?
            .accuracy)
    }

    fn recalibrate(&self, state: &mut ModelState) -> Result<()> {
        state.restore(&self.net.varmap)?;
        self.net
            .recalibrate_batchnorm(self.splits.images.recalibration_batches())?;
        *state = ModelState::capture(&self.net.varmap)?;
        Ok(())
    }

    /// A closure for sparse-core's searches: [`Self::recalibrated_validation`] with
    /// sparse-core's error type.
    fn score(&self) -> impl FnMut(&mut ModelState) -> sparse_core::Result<f64> + '_ {
        move |state| {
            self.recalibrated_validation(state)
                .map_err(|e| SparseError::invalid_input("score", e.to_string()))
        }
    }

    fn pool(
        &self,
        config: &LotteryConfig,
        tickets: &TicketSet,
        target: usize,
        method: PoolMethod,
    ) -> Result<(PoolResult, ModelState)> {
        let pool = config.pool_config(method, self.net.masked_names())?;
        let density = (target > 0).then(|| tickets.remaining[target]);
        let PoolOutcome {
            state,
            start_score,
            steps,
            ..
        } = lottery_pool(&tickets.states, target, density, &pool, self.score())?;
        let result = PoolResult {
            accuracies: self.measure(&state)?,
            start_validation: start_score,
            accepted: steps.iter().filter(|s| s.accepted.is_some()).count(),
            candidates: steps.len(),
        };
        Ok((result, state))
    }

    fn path(&self, a: &ModelState, b: &ModelState, alphas: &[f64]) -> Result<Vec<PathPoint>> {
        let mut tests = Vec::with_capacity(alphas.len());
        let mut score = self.score();
        let scored = linear_path(a, b, alphas, |state| {
            let validation = score(state)?;
            let test = self
                .net
                .evaluate(self.splits.images.test_batches())
                .map_err(|e| SparseError::invalid_input("score", e.to_string()))?
                .accuracy;
            tests.push(test);
            Ok(validation)
        })?;
        Ok(scored
            .into_iter()
            .zip(tests)
            .map(|((alpha, validation), test)| PathPoint {
                alpha,
                validation,
                test,
            })
            .collect())
    }
}

/// Runs every pool and baseline for each of `targets` (ticket indices) and the
/// linear path from each target to the next ticket. Returns the levels and the
/// interpolation pool's model per target (recalibrated, re-pruned to the
/// ticket's density).
pub fn pool_levels(
    config: &LotteryConfig,
    evaluator: Evaluator<'_>,
    tickets: &TicketSet,
    targets: &[usize],
    progress: (ProgressMode, &str),
) -> Result<(Vec<Level>, Vec<ModelState>)> {
    let mut bar = Progress::new(progress.1, targets.len() as u64, progress.0).with_unit("ticket");
    let mut levels = Vec::with_capacity(targets.len());
    let mut pooled = Vec::with_capacity(targets.len());
    for &t in targets {
        let ticket = evaluator.measure(&tickets.states[t])?;
        let mut recalibrated = tickets.states[t].clone();
        evaluator.recalibrated_validation(&mut recalibrated)?;
        let recalibrated_ticket = evaluator.measure(&recalibrated)?;
        let (interpolation, model) = evaluator.pool(config, tickets, t, config.interpolation())?;
        let (average, _) = evaluator.pool(config, tickets, t, config.average())?;
        let (swa, _) = evaluator.pool(config, tickets, t, PoolMethod::Swa)?;
        let ema = PoolMethod::Ema {
            decay: config.pools().ema_decay,
        };
        let (ema, _) = evaluator.pool(config, tickets, t, ema)?;
        let path = match tickets.states.get(t + 1) {
            Some(next) => evaluator.path(&tickets.states[t], next, &config.pools().path_alphas)?,
            None => Vec::new(),
        };
        bar.update(&[
            ("ticket", ticket.test),
            ("pool", interpolation.accuracies.test),
        ]);
        levels.push(Level {
            round: t,
            remaining: tickets.remaining[t],
            ticket,
            recalibrated_ticket,
            interpolation,
            average,
            swa,
            ema,
            path,
        });
        pooled.push(model);
    }
    bar.finish("pooled");
    Ok((levels, pooled))
}
