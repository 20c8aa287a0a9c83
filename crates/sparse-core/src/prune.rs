//! Pruning criteria: which active weights a topology update removes.
//!
//! Everything here is host-side bookkeeping on `&[f32]` views of the weights
//! (exact and deterministic); [`crate::updater`] moves tensors to and from the host.

use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, SparseError};
use crate::mask::Mask;
use crate::schedule::{CubicDensitySchedule, PruningWindow};
use crate::validate::{check_fraction, check_non_negative};

/// One masked layer as the pruning and growth criteria see it: row-major host copies
/// of the weight (and of its gradient when one is needed) plus its current mask.
#[derive(Debug, Clone, Copy)]
pub struct LayerView<'a> {
    /// The parameter's name (used in error messages).
    pub name: &'a str,
    /// The weight, row-major; inactive positions are zero.
    pub weights: &'a [f32],
    /// The dense gradient of the last backward pass, if available.
    pub grads: Option<&'a [f32]>,
    /// The current mask.
    pub mask: &'a Mask,
}

/// How a topology update chooses the active weights to remove.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PruneMethod {
    /// The official ITOP / GraNet / RigL-port criterion: `k = ceil(rate·nnz)`,
    /// `t = sort_ascending(|W|)[nz + k - 1]` over all entries (inactive ones are 0),
    /// keep `|W| > t`. Weights tied with the k-th smallest are removed too, so more
    /// than `k` may go when magnitudes tie. When `k = 0` the mask is kept as is (the
    /// official code returns `W != 0`, which would also drop active weights that are
    /// exactly zero, e.g. grown ones that were never updated).
    Magnitude,
    /// Removes exactly `ceil(rate·nnz)` active weights of smallest `|W|`; ties are
    /// broken by the lower flat index first (SLaK / Dettmers `funcs.py` exact count).
    MagnitudeExact,
    /// SET's "smallest positive and largest negative" rule as SET's paper states it
    /// (not either official implementation, whose variants are buggy, see the notes
    /// §1.5): `k = ceil(rate·nnz)` is split into `k - k/2` positive weights of smallest
    /// value and `k/2` negative weights closest to zero; if one sign has too few
    /// active weights the other sign supplies the rest, so exactly `k` are removed.
    /// Active exact zeros count as positive.
    Set,
    /// Removes every active weight with `|W| <= threshold` (the rate is ignored).
    Threshold(f32),
    /// Removes exactly `ceil(rate·nnz)` active weights of smallest first-order Taylor
    /// score `(W·g)^2`; needs the gradient.
    TaylorFirstOrder,
    /// Removes exactly `ceil(rate·nnz)` active weights chosen uniformly at random.
    Random,
    /// One magnitude threshold across all layers: removes exactly
    /// `ceil(rate·Σ nnz)` active weights of smallest `|W|` over every layer (ties by
    /// layer order, then index). Dettmers' code searches this threshold by
    /// bisection with a 2 % tolerance; the exact count is what it approximates.
    GlobalMagnitude,
}

impl PruneMethod {
    /// Whether the criterion ranks all layers together.
    pub fn is_global(&self) -> bool {
        matches!(self, Self::GlobalMagnitude)
    }

    /// Whether the criterion reads the gradient.
    pub fn needs_gradients(&self) -> bool {
        matches!(self, Self::TaylorFirstOrder)
    }

    /// Checks the method's own parameter (a finite, non-negative threshold).
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Threshold(t) => check_non_negative("prune.threshold", f64::from(t)),
            _ => Ok(()),
        }
    }

    /// The masks after removing `rate` of each layer's active weights (or of all
    /// active weights together for [`PruneMethod::GlobalMagnitude`]). New masks are
    /// always subsets of the old ones.
    pub fn prune(
        &self,
        layers: &[LayerView<'_>],
        rate: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<Mask>> {
        check_fraction("death_rate", rate)?;
        for layer in layers {
            check_len(layer)?;
        }
        if self.is_global() {
            return Ok(global_magnitude(layers, rate));
        }
        layers
            .iter()
            .map(|layer| self.prune_layer(layer, rate, rng))
            .collect()
    }

    fn prune_layer(&self, layer: &LayerView<'_>, rate: f64, rng: &mut ChaCha8Rng) -> Result<Mask> {
        let mask = layer.mask;
        let k = removal_count(rate, mask.nnz());
        let w = layer.weights;
        Ok(match *self {
            Self::Magnitude => magnitude_threshold(w, mask, k),
            Self::MagnitudeExact | Self::GlobalMagnitude => {
                remove_smallest(mask, &mask.active_indices(), k, |i| w[i].abs())
            }
            Self::Set => set_prune(w, mask, k),
            Self::Threshold(t) => {
                let mut out = mask.clone();
                for i in mask.active_indices() {
                    if w[i].abs() <= t {
                        out.set(i, false);
                    }
                }
                out
            }
            Self::TaylorFirstOrder => {
                let g = layer
                    .grads
                    .ok_or_else(|| SparseError::MissingGradient(layer.name.to_string()))?;
                remove_smallest(mask, &mask.active_indices(), k, |i| {
                    let s = w[i] * g[i];
                    s * s
                })
            }
            Self::Random => {
                let active = mask.active_indices();
                let mut out = mask.clone();
                for j in sample(rng, active.len(), k.min(active.len())) {
                    out.set(active[j], false);
                }
                out
            }
        })
    }
}

/// `ceil(rate·nnz)`, guarded against float noise just above an integer.
pub fn removal_count(rate: f64, nnz: usize) -> usize {
    let x = rate * nnz as f64;
    let k = (x - 1e-9).ceil().max(0.0) as usize;
    k.min(nnz)
}

fn check_len(layer: &LayerView<'_>) -> Result<()> {
    let n = layer.mask.numel();
    let bad = |len: usize| SparseError::ShapeMismatch {
        what: format!("host data of `{}`", layer.name),
        expected: vec![n],
        got: vec![len],
    };
    if layer.weights.len() != n {
        return Err(bad(layer.weights.len()));
    }
    match layer.grads {
        Some(g) if g.len() != n => Err(bad(g.len())),
        _ => Ok(()),
    }
}

fn magnitude_threshold(w: &[f32], mask: &Mask, k: usize) -> Mask {
    if k == 0 {
        return mask.clone();
    }
    let nz = mask.numel() - mask.nnz();
    // inactive entries count as 0, exactly as the zeroed weights do in the official code
    let mut sorted: Vec<f32> = (0..w.len())
        .map(|i| if mask.is_active(i) { w[i].abs() } else { 0.0 })
        .collect();
    sorted.sort_unstable_by(f32::total_cmp);
    let t = sorted[nz + k - 1];
    let mut out = mask.clone();
    for i in mask.active_indices() {
        if w[i].abs() <= t {
            out.set(i, false);
        }
    }
    out
}

/// Removes the `k` candidates of smallest score (ties: lower index first).
fn remove_smallest(
    mask: &Mask,
    candidates: &[usize],
    k: usize,
    score: impl Fn(usize) -> f32,
) -> Mask {
    let mut order = candidates.to_vec();
    order.sort_by(|&a, &b| score(a).total_cmp(&score(b)).then(a.cmp(&b)));
    let mut out = mask.clone();
    for &i in order.iter().take(k) {
        out.set(i, false);
    }
    out
}

fn set_prune(w: &[f32], mask: &Mask, k: usize) -> Mask {
    let active = mask.active_indices();
    // positives ascending by value, negatives descending by value (closest to zero first)
    let mut pos: Vec<usize> = active.iter().copied().filter(|&i| w[i] >= 0.0).collect();
    let mut neg: Vec<usize> = active.iter().copied().filter(|&i| w[i] < 0.0).collect();
    pos.sort_by(|&a, &b| w[a].total_cmp(&w[b]).then(a.cmp(&b)));
    neg.sort_by(|&a, &b| w[b].total_cmp(&w[a]).then(a.cmp(&b)));
    let mut k_neg = (k / 2).min(neg.len());
    let k_pos = (k - k_neg).min(pos.len());
    k_neg = (k - k_pos).min(neg.len());
    let mut out = mask.clone();
    for &i in pos.iter().take(k_pos).chain(neg.iter().take(k_neg)) {
        out.set(i, false);
    }
    out
}

fn global_magnitude(layers: &[LayerView<'_>], rate: f64) -> Vec<Mask> {
    let nnz = layers.iter().map(|l| l.mask.nnz()).sum();
    remove_smallest_globally(layers, removal_count(rate, nnz))
}

/// Removes the `k` active weights of smallest `|W|` over all layers (ties by layer
/// order, then index).
fn remove_smallest_globally(layers: &[LayerView<'_>], k: usize) -> Vec<Mask> {
    let mut all: Vec<(f32, usize, usize)> = Vec::new();
    for (l, layer) in layers.iter().enumerate() {
        for i in layer.mask.active_indices() {
            all.push((layer.weights[i].abs(), l, i));
        }
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut out: Vec<Mask> = layers.iter().map(|l| l.mask.clone()).collect();
    for &(_, l, i) in all.iter().take(k) {
        out[l].set(i, false);
    }
    out
}

/// How a pruning rate becomes a number of weights to remove from `n` active ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemovalCount {
    /// `ceil(rate·n)`: the ITOP lineage and OpenLTH's IMP
    /// (`np.ceil(fraction · remaining)`).
    #[default]
    Ceil,
    /// `round(rate·n)`, ties to even: PyTorch's `torch.nn.utils.prune` (Python's
    /// `round`), which Lottery Pools' IMP prunes with (`global_unstructured`).
    Nearest,
}

impl RemovalCount {
    /// The number of weights to remove from `n` active ones at `rate` (at most `n`).
    pub fn of(self, rate: f64, n: usize) -> usize {
        match self {
            Self::Ceil => removal_count(rate, n),
            Self::Nearest => ((rate * n as f64).round_ties_even().max(0.0) as usize).min(n),
        }
    }
}

/// One round of iterative magnitude pruning (IMP, lottery tickets): removes
/// `count.of(rate, n)` of the `n` weights still active, smallest `|W|` first (exact
/// count; ties by layer order, then index), over all layers together (`global`, as
/// `global_unstructured`) or in each layer. Masks only shrink; after `r` rounds about
/// `(1 − rate)^r` of the weights remain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImpRound {
    /// Share of the active weights removed per round (`0.2` in most LTH code).
    pub rate: f64,
    /// One ranking over all layers, or one per layer.
    pub global: bool,
    /// How the share becomes a count (default `ceil`).
    pub count: RemovalCount,
}

impl ImpRound {
    /// A checked round (`rate` in `[0, 1]`) with the `ceil` count.
    pub fn new(rate: f64, global: bool) -> Result<Self> {
        check_fraction("imp.rate", rate)?;
        Ok(Self {
            rate,
            global,
            count: RemovalCount::Ceil,
        })
    }

    /// The same round with another count rule ([`RemovalCount::Nearest`] for
    /// PyTorch-pruned tickets).
    pub fn with_count(self, count: RemovalCount) -> Self {
        Self { count, ..self }
    }

    /// The masks after this round.
    pub fn prune(&self, layers: &[LayerView<'_>]) -> Result<Vec<Mask>> {
        check_fraction("imp.rate", self.rate)?;
        for layer in layers {
            check_len(layer)?;
        }
        if self.global {
            let nnz = layers.iter().map(|l| l.mask.nnz()).sum();
            return Ok(remove_smallest_globally(
                layers,
                self.count.of(self.rate, nnz),
            ));
        }
        Ok(layers
            .iter()
            .map(|l| {
                let k = self.count.of(self.rate, l.mask.nnz());
                remove_smallest(l.mask, &l.mask.active_indices(), k, |i| l.weights[i].abs())
            })
            .collect())
    }
}

/// How "keep the `keep` largest magnitudes" treats ties at the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepRule {
    /// GraNet / GMP official: `t` = the `keep`-th largest `|W|`, keep `|W| > t`
    /// ("must be > to prevent acceptable_score is zero"). Keeps `keep − 1` on
    /// distinct magnitudes and drops every tie at `t`.
    #[default]
    Strict,
    /// Sup-tickets' re-prune of the superposition: keep `|W| >= t`, so ties at `t`
    /// are all kept (exactly `keep` on distinct magnitudes).
    Inclusive,
    /// Exactly `keep` (ties by layer order, then lower index).
    Exact,
}

/// Keeps the `floor(N·density)` active weights of largest `|W|`, counted over all
/// layers together (`global`, `N` = all entries) or per layer (`N` = the layer's
/// entries), with ties at the cut resolved by `rule`. Masks only shrink.
pub fn keep_top_magnitude(
    layers: &[LayerView<'_>],
    density: f64,
    global: bool,
    rule: KeepRule,
) -> Result<Vec<Mask>> {
    check_fraction("density", density)?;
    for layer in layers {
        check_len(layer)?;
    }
    let groups: Vec<Vec<usize>> = if global {
        vec![(0..layers.len()).collect()]
    } else {
        (0..layers.len()).map(|l| vec![l]).collect()
    };
    let mut out: Vec<Mask> = layers.iter().map(|l| Mask::zeros(l.mask.shape())).collect();
    for group in groups {
        let n: usize = group.iter().map(|&l| layers[l].mask.numel()).sum();
        let keep = (n as f64 * density + 1e-9).floor() as usize;
        let mut all: Vec<(f32, usize, usize)> = group
            .iter()
            .flat_map(|&l| {
                let layer = &layers[l];
                layer
                    .mask
                    .active_indices()
                    .into_iter()
                    .map(move |i| (layer.weights[i].abs(), l, i))
            })
            .collect();
        for (l, i) in select_kept(&mut all, keep, rule) {
            out[l].set(i, true);
        }
    }
    Ok(out)
}

/// Sorts candidates by descending magnitude and returns the kept (layer, index).
fn select_kept(
    all: &mut [(f32, usize, usize)],
    keep: usize,
    rule: KeepRule,
) -> Vec<(usize, usize)> {
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    if keep >= all.len() {
        return all.iter().map(|&(_, l, i)| (l, i)).collect();
    }
    if keep == 0 {
        return Vec::new();
    }
    let t = all[keep - 1].0;
    let kept = all
        .iter()
        .enumerate()
        .filter(|&(rank, &(s, _, _))| match rule {
            KeepRule::Strict => s > t,
            KeepRule::Inclusive => s >= t,
            KeepRule::Exact => rank < keep,
        });
    kept.map(|(_, &(_, l, i))| (l, i)).collect()
}

/// Gradual magnitude pruning (GMP; GraNet's `pruning()`): at every pruning step of
/// the cubic schedule ([`CubicDensitySchedule`]) the weights of largest magnitude
/// are kept ([`keep_top_magnitude`]), globally over all layers or per layer. By
/// default the window is the official one ([`PruningWindow::Official`]: the last
/// iteration is skipped, so the run ends just above `final_density`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradualPruning {
    /// Density before pruning starts (`1.0` for dense-to-sparse).
    pub initial_density: f64,
    /// Density of the cubic formula at `end_step` (reached only with
    /// [`PruningWindow::ReachesFinal`]).
    pub final_density: f64,
    /// First pruning step (`init_prune_epoch · steps per epoch`).
    pub start_step: usize,
    /// Step at which the formula reaches `final_density` (`final_prune_epoch · …`).
    pub end_step: usize,
    /// Steps between pruning iterations.
    pub period: usize,
    /// One ranking over all layers (GraNet, GMP) or one per layer (`*_uniform`).
    pub global: bool,
    /// Tie rule at the cut (official GraNet: [`KeepRule::Strict`]).
    pub rule: KeepRule,
    /// Which iterations prune (official: [`PruningWindow::Official`]).
    pub window: PruningWindow,
}

impl GradualPruning {
    /// A checked configuration with the official tie rule (strict threshold) and
    /// window (the last iteration skipped).
    pub fn new(
        initial_density: f64,
        final_density: f64,
        start_step: usize,
        end_step: usize,
        period: usize,
        global: bool,
    ) -> Result<Self> {
        let g = Self {
            initial_density,
            final_density,
            start_step,
            end_step,
            period,
            global,
            rule: KeepRule::Strict,
            window: PruningWindow::Official,
        };
        g.validate()?;
        Ok(g)
    }

    /// The same configuration with another tie rule.
    pub fn with_rule(self, rule: KeepRule) -> Self {
        Self { rule, ..self }
    }

    /// The same configuration with another window ([`PruningWindow::ReachesFinal`]
    /// prunes down to `final_density` itself).
    pub fn with_window(self, window: PruningWindow) -> Self {
        Self { window, ..self }
    }

    /// The cubic density schedule.
    pub fn schedule(&self) -> CubicDensitySchedule {
        CubicDensitySchedule {
            initial_density: self.initial_density,
            final_density: self.final_density,
            start_step: self.start_step,
            end_step: self.end_step,
            period: self.period,
            window: self.window,
        }
    }

    /// Checks the schedule (densities in `[0, 1]`, `period > 0`, a non-empty window).
    pub fn validate(&self) -> Result<()> {
        self.schedule().validate()
    }

    /// The masks after pruning to the scheduled density of `step`. Masks only
    /// shrink: a layer already below its target is left alone.
    pub fn prune(&self, step: usize, layers: &[LayerView<'_>]) -> Result<Vec<Mask>> {
        keep_top_magnitude(
            layers,
            self.schedule().density_at(step),
            self.global,
            self.rule,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn view<'a>(w: &'a [f32], m: &'a Mask) -> LayerView<'a> {
        LayerView {
            name: "w",
            weights: w,
            grads: None,
            mask: m,
        }
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(0)
    }

    #[test]
    fn removal_counts_ceil_and_round_half_to_even() {
        // 0.2 · 10 = 2 exactly: both give 2. 0.2 · 12 = 2.4: ceil 3, round 2.
        // 0.25 · 10 = 2.5 and 0.25 · 14 = 3.5: Python's round goes to even (2, 4).
        let cases = [
            (0.2, 10, 2, 2),
            (0.2, 12, 3, 2),
            (0.25, 10, 3, 2),
            (0.25, 14, 4, 4),
        ];
        for (rate, n, ceil, nearest) in cases {
            assert_eq!(RemovalCount::Ceil.of(rate, n), ceil, "{rate} {n}");
            assert_eq!(RemovalCount::Nearest.of(rate, n), nearest, "{rate} {n}");
        }
        assert_eq!(RemovalCount::Nearest.of(1.0, 7), 7);
        assert_eq!(RemovalCount::Nearest.of(0.0, 7), 0);
    }

    #[test]
    fn imp_round_prunes_the_global_smallest_with_either_count() {
        // 12 active weights over two layers; 20 % is 2.4 -> ceil 3, round 2.
        let w1 = [0.5, -0.05, 0.3, 0.9, -0.7, 0.2];
        let w2 = [0.01, 0.8, -0.4, 0.6, 0.35, -0.15];
        let m = Mask::ones(&[6]);
        let layers = [view(&w1, &m), view(&w2, &m)];
        let ceil = ImpRound::new(0.2, true).unwrap().prune(&layers).unwrap();
        // smallest |w|: 0.01 (l2), 0.05 (l1), 0.15 (l2)
        assert_eq!(ceil[0].as_bits(), &[1, 0, 1, 1, 1, 1]);
        assert_eq!(ceil[1].as_bits(), &[0, 1, 1, 1, 1, 0]);
        let torch = ImpRound::new(0.2, true)
            .unwrap()
            .with_count(RemovalCount::Nearest)
            .prune(&layers)
            .unwrap();
        assert_eq!(torch[0].as_bits(), &[1, 0, 1, 1, 1, 1]);
        assert_eq!(torch[1].as_bits(), &[0, 1, 1, 1, 1, 1]);
        // per layer: 20 % of 6 = 1.2 -> ceil 2 per layer
        let local = ImpRound::new(0.2, false).unwrap().prune(&layers).unwrap();
        assert_eq!(local[0].as_bits(), &[1, 0, 1, 1, 1, 0]);
        assert_eq!(local[1].as_bits(), &[0, 1, 1, 1, 1, 0]);
        // a second round counts from what is left (10 active): 2 either way
        let again = [view(&w1, &torch[0]), view(&w2, &torch[1])];
        let second = ImpRound::new(0.2, true)
            .unwrap()
            .with_count(RemovalCount::Nearest)
            .prune(&again)
            .unwrap();
        assert_eq!(second.iter().map(Mask::nnz).sum::<usize>(), 8);
        assert!(
            ImpRound::new(1.5, true)
                .unwrap_err()
                .to_string()
                .contains("imp.rate")
        );
    }

    #[test]
    fn magnitude_variants_remove_ceil_rate_nnz_on_distinct_values() {
        // 8 entries, 2 inactive (zeros), 6 active with distinct magnitudes
        let w = [0.0, -0.5, 0.1, 0.9, 0.0, -0.3, 0.7, 0.2];
        let m = Mask::from_bits(&[8], vec![0, 1, 1, 1, 0, 1, 1, 1]).unwrap();
        // ceil(0.4 * 6) = 3 removed: 0.1, 0.2, -0.3
        for method in [PruneMethod::Magnitude, PruneMethod::MagnitudeExact] {
            let out = method.prune(&[view(&w, &m)], 0.4, &mut rng()).unwrap();
            assert_eq!(out[0].as_bits(), &[0, 1, 0, 1, 0, 0, 1, 0], "{method:?}");
        }
    }

    #[test]
    fn ties_are_removed_by_the_threshold_variant_only() {
        let w = [0.1, 0.2, 0.2, 0.2, 0.9];
        let m = Mask::ones(&[5]);
        // k = ceil(0.4 * 5) = 2; threshold = 0.2 removes all three 0.2s
        let out = PruneMethod::Magnitude
            .prune(&[view(&w, &m)], 0.4, &mut rng())
            .unwrap();
        assert_eq!(out[0].as_bits(), &[0, 0, 0, 0, 1]);
        // exact: removes 0.1 and the first 0.2 (lowest index)
        let out = PruneMethod::MagnitudeExact
            .prune(&[view(&w, &m)], 0.4, &mut rng())
            .unwrap();
        assert_eq!(out[0].as_bits(), &[0, 0, 1, 1, 1]);
    }

    #[test]
    fn set_splits_between_small_positives_and_large_negatives() {
        let w = [0.3, 0.1, -0.05, -0.8, 0.6, -0.2];
        let m = Mask::ones(&[6]);
        // k = ceil(0.5*6) = 3 -> 2 smallest positives (0.1, 0.3) + 1 largest negative (-0.05)
        let out = PruneMethod::Set
            .prune(&[view(&w, &m)], 0.5, &mut rng())
            .unwrap();
        assert_eq!(out[0].as_bits(), &[0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn threshold_taylor_random_and_global() {
        let w = [0.05, -0.5, 0.01, 0.9];
        let m = Mask::ones(&[4]);
        let out = PruneMethod::Threshold(0.05)
            .prune(&[view(&w, &m)], 0.0, &mut rng())
            .unwrap();
        assert_eq!(out[0].as_bits(), &[0, 1, 0, 1]);

        let g = [10.0, 0.1, 1.0, 0.01];
        let layer = LayerView {
            grads: Some(&g),
            ..view(&w, &m)
        };
        // (w g)^2 = 0.25, 0.0025, 0.0001, 0.000081 -> remove indices 3 and 2
        let out = PruneMethod::TaylorFirstOrder
            .prune(&[layer], 0.5, &mut rng())
            .unwrap();
        assert_eq!(out[0].as_bits(), &[1, 1, 0, 0]);
        assert!(matches!(
            PruneMethod::TaylorFirstOrder.prune(&[view(&w, &m)], 0.5, &mut rng()),
            Err(SparseError::MissingGradient(_))
        ));

        let out = PruneMethod::Random
            .prune(&[view(&w, &m)], 0.5, &mut rng())
            .unwrap();
        assert_eq!(out[0].nnz(), 2);
        let again = PruneMethod::Random
            .prune(&[view(&w, &m)], 0.5, &mut rng())
            .unwrap();
        assert_eq!(out, again, "same seed, same result");

        let w2 = [0.02, 0.8];
        let m2 = Mask::ones(&[2]);
        // global: ceil(0.5 * 6) = 3 smallest of {0.05,0.5,0.01,0.9,0.02,0.8}: 0.01, 0.02, 0.05
        let out = PruneMethod::GlobalMagnitude
            .prune(&[view(&w, &m), view(&w2, &m2)], 0.5, &mut rng())
            .unwrap();
        assert_eq!(out[0].as_bits(), &[0, 1, 0, 1]);
        assert_eq!(out[1].as_bits(), &[0, 1]);
    }

    proptest::proptest! {
        #[test]
        fn exact_methods_remove_exactly_ceil_rate_nnz(
            raw in proptest::collection::vec((-1.0f32..1.0, proptest::bool::ANY), 1..40),
            rate in 0.0f64..=1.0,
        ) {
            let w: Vec<f32> = raw.iter().map(|&(v, on)| if on { v } else { 0.0 }).collect();
            let m = Mask::from_bools(&[w.len()], &raw.iter().map(|r| r.1).collect::<Vec<_>>()).unwrap();
            let g: Vec<f32> = w.iter().map(|v| v * 0.5 + 0.1).collect();
            let layer = LayerView { grads: Some(&g), ..view(&w, &m) };
            let k = removal_count(rate, m.nnz());
            for method in [
                PruneMethod::MagnitudeExact,
                PruneMethod::Set,
                PruneMethod::TaylorFirstOrder,
                PruneMethod::Random,
                PruneMethod::GlobalMagnitude,
            ] {
                let out = method.prune(&[layer], rate, &mut rng()).unwrap();
                proptest::prop_assert_eq!(out[0].nnz(), m.nnz() - k, "{:?}", method);
                // a subset of the old mask
                proptest::prop_assert!(out[0].active_indices().iter().all(|&i| m.is_active(i)));
            }
            // the threshold variant removes at least k
            let out = PruneMethod::Magnitude.prune(&[layer], rate, &mut rng()).unwrap();
            proptest::prop_assert!(out[0].nnz() <= m.nnz() - k);
        }
    }

    #[test]
    fn invalid_rate_is_rejected() {
        let w = [1.0];
        let m = Mask::ones(&[1]);
        let err = PruneMethod::Magnitude
            .prune(&[view(&w, &m)], 1.5, &mut rng())
            .unwrap_err();
        assert!(err.to_string().contains("death_rate"));
    }

    #[test]
    fn gradual_pruning_global_and_per_layer() {
        let g = GradualPruning::new(1.0, 0.5, 0, 10, 10, true)
            .unwrap()
            .with_window(PruningWindow::ReachesFinal);
        let a = [0.1, 0.2, 0.3, 0.4];
        let b = [0.9, 0.8, 0.05, 0.06];
        let (ma, mb) = (Mask::ones(&[4]), Mask::ones(&[4]));
        // step 10 = end: density 0.5 -> keep 4 of 8: 0.9, 0.8, 0.4, 0.3
        let out = g
            .with_rule(KeepRule::Exact)
            .prune(10, &[view(&a, &ma), view(&b, &mb)])
            .unwrap();
        assert_eq!(out[0].as_bits(), &[0, 0, 1, 1]);
        assert_eq!(out[1].as_bits(), &[1, 1, 0, 0]);
        // official strict rule keeps one fewer on distinct magnitudes (drops 0.3)
        let out = g.prune(10, &[view(&a, &ma), view(&b, &mb)]).unwrap();
        assert_eq!(out[0].as_bits(), &[0, 0, 0, 1]);
        // per layer: each layer keeps 2
        let per = GradualPruning { global: false, ..g }.with_rule(KeepRule::Exact);
        let out = per.prune(10, &[view(&a, &ma), view(&b, &mb)]).unwrap();
        assert_eq!(out[0].as_bits(), &[0, 0, 1, 1]);
        assert_eq!(out[1].as_bits(), &[1, 1, 0, 0]);
        // Sup-tickets' inclusive rule keeps every tie at the cut
        let tied = [0.5, 0.2, 0.2, 0.1];
        let out = keep_top_magnitude(&[view(&tied, &ma)], 0.5, true, KeepRule::Inclusive).unwrap();
        assert_eq!(out[0].as_bits(), &[1, 1, 1, 0]);
        let out = keep_top_magnitude(&[view(&tied, &ma)], 0.5, true, KeepRule::Strict).unwrap();
        assert_eq!(out[0].as_bits(), &[1, 0, 0, 0]);
        // before the window nothing changes
        let out = g
            .with_rule(KeepRule::Exact)
            .prune(0, &[view(&a, &ma)])
            .unwrap();
        assert_eq!(out[0].nnz(), 4);
        assert!(GradualPruning::new(0.5, 0.8, 0, 10, 1, true).is_err());
    }
}
