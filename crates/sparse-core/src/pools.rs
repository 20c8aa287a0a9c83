//! Lottery Pools (Yin et al., AAAI 2023, arXiv 2208.10842): a better ticket of the same
//! sparsity from the tickets one iterative-magnitude-pruning run already produced,
//! with no training.
//!
//! For a target ticket `θ_t` the search visits the other tickets in order of
//! adjacency (`t−1, t+1, t−2, t+2, …`, [`candidate_order`]). For each candidate `θ_i`
//! it tries every coefficient `α` of a pool, `θ' = α·θ_i + (1 − α)·θ_best` over every
//! state entry (BatchNorm statistics and classifier included, as the official code
//! does), re-prunes `θ'` to `θ_t`'s density over the prunable tensors (global
//! magnitude, [`ModelState::prune_to_density`]), lets the caller recalibrate and
//! score it (BatchNorm recalibration over one training pass, then validation
//! accuracy), and keeps the best `α`'s model when it scores at least as well as
//! `θ_best` ([`Acceptance`]). The baselines of the paper are the same loop with a
//! fixed coefficient, always accepted: SWA-style averaging ([`PoolMethod::Swa`]) and
//! an exponential moving average ([`PoolMethod::Ema`]); [`linear_path`] scores the
//! straight line between two tickets (linear mode connectivity).
//!
//! Decisions on the official code's quirks (method notes §4.3): the starting score is
//! `θ_t`'s own score through the same closure (validation, after recalibration), not
//! its test accuracy as in `Lottery_pools.py`; a candidate is accepted on `≥`
//! (the paper's Algorithm 2; the code's `>` is [`Acceptance::Improves`]); the
//! re-pruned mask may differ from `θ_t`'s (interpolation has the union support);
//! tensors that are not prunable are interpolated and never pruned.
//!
//! ```
//! use std::collections::BTreeMap;
//! use candle_core::{Device, Tensor};
//! use sparse_core::ModelState;
//! use sparse_core::pools::{PoolConfig, PoolMethod, lottery_pool};
//!
//! # fn main() -> sparse_core::Result<()> {
//! let ticket = |w: &[f32]| -> sparse_core::Result<ModelState> {
//!     let t = Tensor::new(w, &Device::Cpu)?;
//!     ModelState::from_tensors(&BTreeMap::from([("conv.weight".to_string(), t)]))
//! };
//! let tickets = vec![ticket(&[1.0, 2.0, 3.0, 4.0])?, ticket(&[0.0, 2.5, 0.0, 3.5])?];
//! let config = PoolConfig::builder(PoolMethod::interpolation())
//!     .prunable(["conv.weight"])
//!     .search_num(2)
//!     .build()?;
//! // the score a caller would compute as validation accuracy: here, closeness to [0, 2, 0, 4]
//! let outcome = lottery_pool(&tickets, 1, Some(0.5), &config, |state| {
//!     let w = state.get("conv.weight").unwrap().to_vec1::<f32>()?;
//!     Ok(-[0.0f32, 2.0, 0.0, 4.0].iter().zip(&w).map(|(a, b)| (a - b).abs()).sum::<f32>() as f64)
//! })?;
//! assert!(outcome.score >= outcome.start_score);
//! let w = outcome.state.get("conv.weight").unwrap().to_vec1::<f32>()?;
//! assert_eq!(w.iter().filter(|v| **v != 0.0).count(), 2); // ticket 1's density
//! # Ok(())
//! # }
//! ```

use crate::error::{Result, SparseError};
use crate::model_state::ModelState;
use crate::scores::ThresholdScope;

/// Which best coefficient a greedy step keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Acceptance {
    /// When it scores at least as well as the current best (the paper's Algorithm 2).
    #[default]
    AtLeast,
    /// Only when it scores strictly better (the official code).
    Improves,
}

/// How the pool merges candidates into the current best model.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolMethod {
    /// Lottery Pools: every coefficient of `coefficients` is tried per candidate and
    /// the best one is kept under `acceptance`.
    Greedy {
        /// The coefficients `α` of the new ticket, each in `[0, 1]`.
        coefficients: Vec<f64>,
        /// When the best coefficient's model replaces the current best.
        acceptance: Acceptance,
    },
    /// SWA-style averaging: the `k`-th candidate merged enters with `α = 1/(k + 1)`
    /// (an equal-weight mean of the target and the candidates so far), always kept.
    Swa,
    /// Exponential moving average: `θ_best ← decay·θ_best + (1 − decay)·θ_i`,
    /// always kept.
    Ema {
        /// The weight of the current model, in `[0, 1]`.
        decay: f64,
    },
}

impl PoolMethod {
    /// The paper's "interpolation" pool, `{0.05, 0.1, 0.2, …, 0.9, 0.95}`, accepted on ≥.
    pub fn interpolation() -> Self {
        let mut coefficients = vec![0.05];
        coefficients.extend((1..10).map(|i| f64::from(i) / 10.0));
        coefficients.push(0.95);
        Self::Greedy {
            coefficients,
            acceptance: Acceptance::AtLeast,
        }
    }

    /// The paper's "average" pool, `{0.5}`, accepted on ≥.
    pub fn average() -> Self {
        Self::Greedy {
            coefficients: vec![0.5],
            acceptance: Acceptance::AtLeast,
        }
    }

    /// The coefficients to try when `merged` candidates have been merged so far.
    fn coefficients(&self, merged: usize) -> Vec<f64> {
        match self {
            Self::Greedy { coefficients, .. } => coefficients.clone(),
            Self::Swa => vec![1.0 / (merged as f64 + 2.0)],
            Self::Ema { decay } => vec![1.0 - decay],
        }
    }

    /// Whether a best score `candidate` replaces `best`.
    fn accepts(&self, candidate: f64, best: f64) -> bool {
        match self {
            Self::Greedy {
                acceptance: Acceptance::AtLeast,
                ..
            } => candidate >= best,
            Self::Greedy {
                acceptance: Acceptance::Improves,
                ..
            } => candidate > best,
            Self::Swa | Self::Ema { .. } => true,
        }
    }
}

/// A checked pool configuration; build with [`PoolConfig::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    method: PoolMethod,
    search_num: usize,
    prunable: Vec<String>,
}

impl PoolConfig {
    /// A builder for `method`, with `search_num` 3 (the official default) and no
    /// prunable tensors yet.
    pub fn builder(method: PoolMethod) -> PoolConfigBuilder {
        PoolConfigBuilder(Self {
            method,
            search_num: 3,
            prunable: Vec::new(),
        })
    }

    /// The merge rule.
    pub fn method(&self) -> &PoolMethod {
        &self.method
    }

    /// How many tickets the search uses, the target included (`search_num`).
    pub fn search_num(&self) -> usize {
        self.search_num
    }

    /// The tensors re-pruned to the target's density (the convolution weights).
    pub fn prunable(&self) -> &[String] {
        &self.prunable
    }
}

/// Builder of a [`PoolConfig`]; [`build`](Self::build) checks it.
#[derive(Debug, Clone)]
pub struct PoolConfigBuilder(PoolConfig);

impl PoolConfigBuilder {
    /// How many tickets the search uses, the target included (the official
    /// `search_num`: candidates are the first `search_num − 1` of [`candidate_order`]).
    pub fn search_num(mut self, search_num: usize) -> Self {
        self.0.search_num = search_num;
        self
    }

    /// The tensors re-pruned to the target's density (official: every convolution
    /// weight; the classifier and BatchNorm are never pruned).
    pub fn prunable<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.0.prunable = names.into_iter().map(Into::into).collect();
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<PoolConfig> {
        let c = self.0;
        if c.search_num == 0 {
            return Err(SparseError::invalid(
                "search_num",
                0,
                "counts the target ticket, so it is at least 1",
            ));
        }
        match &c.method {
            PoolMethod::Greedy { coefficients, .. } => {
                if coefficients.is_empty() {
                    return Err(SparseError::invalid(
                        "coefficients",
                        "[]",
                        "a greedy pool needs at least one coefficient",
                    ));
                }
                if let Some(bad) = coefficients
                    .iter()
                    .find(|a| !(a.is_finite() && (0.0..=1.0).contains(*a)))
                {
                    return Err(SparseError::invalid(
                        "coefficients",
                        bad,
                        "every coefficient must lie in [0, 1]",
                    ));
                }
            }
            PoolMethod::Ema { decay } => crate::validate::check_fraction("decay", *decay)?,
            PoolMethod::Swa => {}
        }
        Ok(c)
    }
}

/// The tickets the search visits for target `target` among `tickets` tickets: `t−1,
/// t+1, t−2, t+2, …` (indices that exist only), the first `search_num − 1` of them.
pub fn candidate_order(target: usize, tickets: usize, search_num: usize) -> Vec<usize> {
    let mut order = Vec::new();
    for d in 1..tickets.max(1) {
        if let Some(below) = target.checked_sub(d) {
            order.push(below);
        }
        if target + d < tickets {
            order.push(target + d);
        }
    }
    order.truncate(search_num.saturating_sub(1));
    order
}

/// One candidate's step of the search.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStep {
    /// The candidate ticket's index.
    pub candidate: usize,
    /// `(α, score)` for every coefficient tried, in the pool's order.
    pub scores: Vec<(f64, f64)>,
    /// The coefficient whose model was kept, if any.
    pub accepted: Option<f64>,
    /// The best score after this step.
    pub best_score: f64,
}

/// What a search returns.
#[derive(Debug, Clone)]
pub struct PoolOutcome {
    /// The final model (re-pruned and as the score closure left it, e.g. recalibrated).
    pub state: ModelState,
    /// Its score.
    pub score: f64,
    /// The target ticket's own score through the same closure.
    pub start_score: f64,
    /// One entry per candidate, in search order.
    pub steps: Vec<PoolStep>,
}

/// Runs the pool search of `config` for ticket `target` of `tickets` (one IMP run's
/// tickets, dense first, all with the same tensors).
///
/// `density` is the fraction of the prunable entries the result keeps (the target's
/// remaining fraction; `None` for the dense ticket: no re-pruning). `score` prepares a
/// model in place and scores it, higher is better: typically it loads the state into
/// the model, recalibrates BatchNorm over one training pass
/// ([`batchnorm::recalibrate`](crate::batchnorm::recalibrate)), captures the state
/// back into the argument and returns the validation accuracy. It is called once for
/// the target and once per coefficient per candidate. Ties between coefficients go to
/// the earlier one in the pool.
pub fn lottery_pool<F>(
    tickets: &[ModelState],
    target: usize,
    density: Option<f64>,
    config: &PoolConfig,
    mut score: F,
) -> Result<PoolOutcome>
where
    F: FnMut(&mut ModelState) -> Result<f64>,
{
    check_target(tickets, target)?;
    let mut best = tickets[target].clone();
    let start_score = checked_score(&mut score, &mut best)?;
    let mut best_score = start_score;
    let mut steps = Vec::new();
    for candidate in candidate_order(target, tickets.len(), config.search_num) {
        let mut tried: Vec<(f64, f64)> = Vec::new();
        let mut top: Option<(f64, f64, ModelState)> = None;
        for alpha in config.method.coefficients(steps.len()) {
            let mut merged = ModelState::lerp(&best, &tickets[candidate], alpha)?;
            if let Some(d) = density {
                merged.prune_to_density(&config.prunable, d, ThresholdScope::Global)?;
            }
            let s = checked_score(&mut score, &mut merged)?;
            tried.push((alpha, s));
            if top.as_ref().is_none_or(|(_, best_s, _)| s > *best_s) {
                top = Some((alpha, s, merged));
            }
        }
        let mut accepted = None;
        if let Some((alpha, s, merged)) = top
            && config.method.accepts(s, best_score)
        {
            best = merged;
            best_score = s;
            accepted = Some(alpha);
        }
        steps.push(PoolStep {
            candidate,
            scores: tried,
            accepted,
            best_score,
        });
    }
    Ok(PoolOutcome {
        state: best,
        score: best_score,
        start_score,
        steps,
    })
}

/// Scores the models on the straight line `(1 − α)·a + α·b` for every `α` of `alphas`
/// (not re-pruned), as `(α, score)`: the linear-mode-connectivity check between two
/// adjacent tickets. `score` prepares and scores each model as in [`lottery_pool`].
pub fn linear_path<F>(
    a: &ModelState,
    b: &ModelState,
    alphas: &[f64],
    mut score: F,
) -> Result<Vec<(f64, f64)>>
where
    F: FnMut(&mut ModelState) -> Result<f64>,
{
    alphas
        .iter()
        .map(|&alpha| {
            let mut state = ModelState::lerp(a, b, alpha)?;
            Ok((alpha, checked_score(&mut score, &mut state)?))
        })
        .collect()
}

fn check_target(tickets: &[ModelState], target: usize) -> Result<()> {
    if target >= tickets.len() {
        return Err(SparseError::invalid(
            "target",
            target,
            format!("there are {} tickets", tickets.len()),
        ));
    }
    Ok(())
}

/// A score that is not a number would make every comparison false: refuse it.
fn checked_score<F>(score: &mut F, state: &mut ModelState) -> Result<f64>
where
    F: FnMut(&mut ModelState) -> Result<f64>,
{
    let s = score(state)?;
    if s.is_nan() {
        return Err(SparseError::invalid(
            "score",
            s,
            "the score closure returned NaN",
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests;
