//! Score-based subnetworks (edge-popup, Ramanujan et al. 2020; untrained GNN
//! tickets, UGTs, Huang et al. 2022): frozen weights, a learnable score per weight,
//! and the mask "top-(1 − sparsity) scores".
//!
//! The effective weight is `W ⊙ m(S)`. Its gradient with respect to the scores uses
//! the straight-through estimator of edge-popup, `∂L/∂S = ∂L/∂W̃ ⊙ W`, built as
//! `W̃ = W ⊙ (m + S − detach(S))`: the forward value is exactly `W ⊙ m` (`S − S` is
//! exactly zero in floating point) and only the `S` term carries a gradient.
//! candle's `detach` returns a tensor that shares `S`'s storage but has no graph
//! node, so the effective weight must be rebuilt after each optimizer step (it is
//! cheap) rather than cached across steps.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor, Var};

use crate::error::{Result, SparseError};
use crate::mask::Mask;
use crate::validate::check_fraction;

/// One layer of a score-based subnetwork: a frozen weight and its score `Var`.
#[derive(Debug, Clone)]
pub struct ScoredLayer {
    name: String,
    weight: Tensor,
    scores: Var,
}

impl ScoredLayer {
    /// A layer from its (frozen) weight and a score `Var` of the same shape.
    pub fn new(name: impl Into<String>, weight: &Tensor, scores: Var) -> Result<Self> {
        let name = name.into();
        if weight.dims() != scores.dims() {
            return Err(SparseError::ShapeMismatch {
                what: format!("scores of `{name}`"),
                expected: weight.dims().to_vec(),
                got: scores.dims().to_vec(),
            });
        }
        Ok(Self {
            name,
            weight: weight.detach(),
            scores,
        })
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The frozen weight (detached: it never receives a gradient).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The learnable scores (give these to the optimizer).
    pub fn scores(&self) -> &Var {
        &self.scores
    }

    /// `W ⊙ (m + S − detach(S))`: value `W ⊙ m`, gradient `∂L/∂W̃ ⊙ W` for the scores.
    pub fn effective_weight(&self, mask: &Mask) -> Result<Tensor> {
        if mask.shape() != self.weight.dims() {
            return Err(SparseError::ShapeMismatch {
                what: format!("mask of `{}`", self.name),
                expected: self.weight.dims().to_vec(),
                got: mask.shape().to_vec(),
            });
        }
        let s = self.scores.as_tensor();
        let m = mask.to_tensor(s.dtype(), s.device())?;
        let ste = m.add(&s.sub(&s.detach())?)?;
        Ok(self.weight.mul(&ste)?)
    }
}

/// Whether one threshold ranks all layers' scores together or each layer alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdScope {
    /// One threshold over the concatenated scores of every layer (UGTs).
    Global,
    /// One threshold per layer (edge-popup).
    PerLayer,
}

/// How many of `n` ranked scores a sparsity `s` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreCount {
    /// edge-popup's `GetSubnet`: `floor(s·n)` removed, the rest kept.
    Floor,
    /// UGTs' `percentile`: threshold = `kthvalue(k = 1 + round(s·(n − 1)))`, so
    /// `round(s·(n − 1))` are removed (round half to even, as Python's `round`).
    Percentile,
}

impl ScoreCount {
    /// Number of the `n` scores removed at sparsity `s`.
    pub fn removed(&self, sparsity: f64, n: usize) -> usize {
        let z = match self {
            Self::Floor => (sparsity * n as f64 + 1e-9).floor(),
            Self::Percentile => (sparsity * n.saturating_sub(1) as f64).round_ties_even(),
        };
        (z.max(0.0) as usize).min(n)
    }
}

/// Sparsity rising linearly from 0 to `target` over the first `ramp_fraction` of
/// training, then constant (UGTs' `--sparse_decay` uses `ramp_fraction = 0.5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparsityRamp {
    target: f64,
    ramp_fraction: f64,
}

impl SparsityRamp {
    /// A checked ramp; both values in `[0, 1]` (`ramp_fraction = 0`: no ramp).
    pub fn new(target: f64, ramp_fraction: f64) -> Result<Self> {
        check_fraction("sparsity", target)?;
        check_fraction("ramp_fraction", ramp_fraction)?;
        Ok(Self {
            target,
            ramp_fraction,
        })
    }

    /// The target sparsity.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// The sparsity at `step` of `total_steps`: `target · step / (ramp_fraction ·
    /// total_steps)` during the ramp, `target` after.
    pub fn sparsity_at(&self, step: usize, total_steps: usize) -> f64 {
        let ramp = self.ramp_fraction * total_steps as f64;
        if (step as f64) >= ramp || ramp <= 0.0 {
            self.target
        } else {
            self.target * step as f64 / ramp
        }
    }
}

/// The scored layers of one model, kept in name order.
#[derive(Debug, Clone)]
pub struct ScoreSubnetwork {
    layers: BTreeMap<String, ScoredLayer>,
    scope: ThresholdScope,
    count: ScoreCount,
    abs_scores: bool,
}

impl ScoreSubnetwork {
    /// A subnetwork over `layers`. Ranking uses the raw scores (UGTs); call
    /// [`ScoreSubnetwork::with_abs_scores`] for edge-popup's `|S|`.
    pub fn new(layers: Vec<ScoredLayer>, scope: ThresholdScope, count: ScoreCount) -> Result<Self> {
        let mut map = BTreeMap::new();
        for layer in layers {
            if map.contains_key(&layer.name) {
                return Err(SparseError::invalid(
                    "layers",
                    &layer.name,
                    "duplicate layer name",
                ));
            }
            map.insert(layer.name.clone(), layer);
        }
        Ok(Self {
            layers: map,
            scope,
            count,
            abs_scores: false,
        })
    }

    /// Ranks by `|S|` (edge-popup) instead of `S`.
    pub fn with_abs_scores(mut self, on: bool) -> Self {
        self.abs_scores = on;
        self
    }

    /// The layers in name order.
    pub fn layers(&self) -> impl Iterator<Item = &ScoredLayer> {
        self.layers.values()
    }

    /// The score `Var`s in name order (the only trainable tensors).
    pub fn score_vars(&self) -> Vec<Var> {
        self.layers.values().map(|l| l.scores.clone()).collect()
    }

    /// The masks at `sparsity`: the scores ranked lowest are removed, exactly
    /// [`ScoreCount::removed`] of them per scope; ties go by layer name, then index
    /// (the official `>=` threshold would keep every tie instead). The map is a
    /// [`crate::MaskSet`]: pass it to [`crate::checkpoint::Sources::masks`] or count it.
    pub fn masks(&self, sparsity: f64) -> Result<BTreeMap<String, Mask>> {
        check_fraction("sparsity", sparsity)?;
        let mut host: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        for layer in self.layers.values() {
            let s = layer
                .scores
                .as_tensor()
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?;
            let s = if self.abs_scores {
                s.into_iter().map(f32::abs).collect()
            } else {
                s
            };
            host.push((layer.name.clone(), layer.weight.dims().to_vec(), s));
        }
        let mut masks: Vec<Mask> = host.iter().map(|(_, shape, _)| Mask::ones(shape)).collect();
        let groups: Vec<Vec<usize>> = match self.scope {
            ThresholdScope::Global => vec![(0..host.len()).collect()],
            ThresholdScope::PerLayer => (0..host.len()).map(|l| vec![l]).collect(),
        };
        for group in groups {
            let mut all: Vec<(f32, usize, usize)> = group
                .iter()
                .flat_map(|&l| host[l].2.iter().enumerate().map(move |(i, &s)| (s, l, i)))
                .collect();
            let z = self.count.removed(sparsity, all.len());
            // The order is total, so the z smallest are one well-defined set: a linear
            // selection finds it without sorting everything.
            let order = |a: &(f32, usize, usize), b: &(f32, usize, usize)| {
                a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
            };
            if z > 0 && z < all.len() {
                all.select_nth_unstable_by(z, order);
            }
            for &(_, l, i) in all.iter().take(z) {
                masks[l].set(i, false);
            }
        }
        Ok(host.into_iter().map(|(n, _, _)| n).zip(masks).collect())
    }

    /// The effective weights `W ⊙ m(S)` (with the straight-through gradient) at
    /// `sparsity`, by layer name.
    pub fn effective_weights(&self, sparsity: f64) -> Result<BTreeMap<String, Tensor>> {
        let masks = self.masks(sparsity)?;
        self.layers
            .values()
            .map(|l| Ok((l.name.clone(), l.effective_weight(&masks[&l.name])?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn layer(name: &str, w: &[f32], s: &[f32], shape: &[usize]) -> ScoredLayer {
        let dev = Device::Cpu;
        let w = Tensor::from_slice(w, shape, &dev).unwrap();
        let s = Var::from_tensor(&Tensor::from_slice(s, shape, &dev).unwrap()).unwrap();
        ScoredLayer::new(name, &w, s).unwrap()
    }

    #[test]
    fn ste_gradient_is_grad_of_effective_weight_times_weight() {
        let dev = Device::Cpu;
        // y = x W̃ᵀ, loss = Σ c ⊙ y  ⇒  ∂L/∂W̃ = cᵀ x
        let w = [0.5f32, -1.0, 2.0, 0.25, -0.75, 1.5];
        let s = [0.9f32, 0.1, 0.8, 0.3, 0.2, 0.7];
        let l = layer("fc", &w, &s, &[2, 3]);
        let net =
            ScoreSubnetwork::new(vec![l], ThresholdScope::PerLayer, ScoreCount::Floor).unwrap();
        let masks = net.masks(0.5).unwrap();
        // lowest three scores (0.1, 0.2, 0.3) removed
        assert_eq!(masks["fc"].as_bits(), &[1, 0, 1, 0, 0, 1]);
        let w_eff = net.effective_weights(0.5).unwrap()["fc"].clone();
        assert_eq!(
            w_eff.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![0.5, 0.0, 2.0, 0.0, 0.0, 1.5]
        );
        let x = Tensor::new(&[[1f32, 2., 3.]], &dev).unwrap();
        let c = Tensor::new(&[[1f32, -2.]], &dev).unwrap();
        let loss = x
            .matmul(&w_eff.t().unwrap())
            .unwrap()
            .mul(&c)
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let gs = grads
            .get(net.layers().next().unwrap().scores().as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let (xv, cv) = ([1f32, 2., 3.], [1f32, -2.]);
        for o in 0..2 {
            for i in 0..3 {
                let expected = cv[o] * xv[i] * w[o * 3 + i];
                assert!((gs[o * 3 + i] - expected).abs() < 1e-6, "{o},{i}");
            }
        }
    }

    #[test]
    fn global_threshold_removes_exactly_the_scheduled_fraction() {
        let s1: Vec<f32> = (0..8).map(|i| i as f32 * 0.1).collect();
        let s2: Vec<f32> = (0..12).map(|i| 0.05 + i as f32 * 0.1).collect();
        let net = ScoreSubnetwork::new(
            vec![
                layer("a", &[1.0; 8], &s1, &[8]),
                layer("b", &[1.0; 12], &s2, &[12]),
            ],
            ThresholdScope::Global,
            ScoreCount::Floor,
        )
        .unwrap();
        let masks = net.masks(0.3).unwrap();
        let zeros: usize = masks.values().map(|m| m.numel() - m.nnz()).sum();
        assert_eq!(zeros, 6);
        // the 6 lowest of the union: a0..a2 (0, .1, .2) and b0..b2 (.05, .15, .25)
        assert_eq!(masks["a"].as_bits()[..4], [0, 0, 0, 1]);
        assert_eq!(masks["b"].as_bits()[..4], [0, 0, 0, 1]);
        // per layer: floor(0.3·8)=2 and floor(0.3·12)=3
        let per = ScoreSubnetwork {
            scope: ThresholdScope::PerLayer,
            ..net
        };
        let masks = per.masks(0.3).unwrap();
        assert_eq!(masks["a"].numel() - masks["a"].nnz(), 2);
        assert_eq!(masks["b"].numel() - masks["b"].nnz(), 3);
        assert_eq!(ScoreCount::Percentile.removed(0.5, 100), 50); // round(49.5) = 50 (even)
        assert_eq!(ScoreCount::Percentile.removed(0.3, 20), 6); // round(5.7)
        assert!(per.masks(1.2).is_err());
    }

    #[test]
    fn selection_removes_the_same_set_as_a_full_sort_even_with_ties() {
        // Scores from a small set of values: many ties across and within layers.
        let s1: Vec<f32> = (0..37).map(|i| ((i * 7) % 5) as f32 * 0.5 - 1.0).collect();
        let s2: Vec<f32> = (0..23).map(|i| ((i * 3) % 4) as f32 * 0.5 - 1.0).collect();
        let net = ScoreSubnetwork::new(
            vec![
                layer("a", &[1.0; 37], &s1, &[37]),
                layer("b", &[1.0; 23], &s2, &[23]),
            ],
            ThresholdScope::Global,
            ScoreCount::Percentile,
        )
        .unwrap();
        let mut all: Vec<(f32, usize, usize)> = s1
            .iter()
            .enumerate()
            .map(|(i, &v)| (v, 0, i))
            .chain(s2.iter().enumerate().map(|(i, &v)| (v, 1, i)))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        for sparsity in [0.0, 0.1, 0.33, 0.5, 0.9, 1.0] {
            let z = ScoreCount::Percentile.removed(sparsity, 60);
            let mut expected = [vec![1u8; 37], vec![1u8; 23]];
            for &(_, l, i) in all.iter().take(z) {
                expected[l][i] = 0;
            }
            let masks = net.masks(sparsity).unwrap();
            assert_eq!(masks["a"].as_bits(), &expected[0][..], "s = {sparsity}");
            assert_eq!(masks["b"].as_bits(), &expected[1][..], "s = {sparsity}");
        }
    }

    #[test]
    fn ramp_is_linear_then_constant() {
        let r = SparsityRamp::new(0.8, 0.5).unwrap();
        assert_eq!(r.sparsity_at(0, 100), 0.0);
        assert!((r.sparsity_at(25, 100) - 0.4).abs() < 1e-12);
        assert_eq!(r.sparsity_at(50, 100), 0.8);
        assert_eq!(r.sparsity_at(99, 100), 0.8);
        assert!(SparsityRamp::new(-0.1, 0.5).is_err());
    }
}
