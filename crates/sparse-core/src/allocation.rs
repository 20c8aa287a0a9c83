//! Layer-wise density allocation and random masks at initialisation.
//!
//! Given the masked layers in model order and a global density `d` (kept weights over
//! masked weights), an [`Allocation`] computes one density per layer, exactly as the
//! official ITOP / GraNet / Random_Pruning / SLaK code does (methods note B §1.7):
//!
//! - [`Allocation::Uniform`]: every layer at `d`.
//! - [`Allocation::UniformPlus`] (Random_Pruning `uniform_plus`): the first layer is
//!   dense; when `d < 0.2` the classifier (last layer) is held at 0.2; the other
//!   layers share `d' = (d·N − N_first − [d < 0.2]·0.2·N_fc) / N`. The official code
//!   divides by the *total* `N` (first layer and classifier included), so the result
//!   is slightly under budget; `exact_budget: true` divides by the weights of the
//!   remaining layers instead and meets `d·N` exactly.
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

use candle_nn::VarMap;
use rand::Rng;

use crate::error::{Result, SparseError};
use crate::mask::Mask;
use crate::registry::SparseParams;
use crate::saliency::global_topk_densities;
use crate::selection::SelectionPolicy;

/// Checks that a global density lies in `(0, 1]`; the error names `density`.
pub fn check_density(density: f64) -> Result<()> {
    if density > 0.0 && density <= 1.0 {
        Ok(())
    } else {
        Err(SparseError::InvalidHyperparameter {
            name: "density",
            value: density.to_string(),
            reason: "must lie in (0, 1]".into(),
        })
    }
}

/// One masked layer: its name and the shape of its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    /// The weight's name (e.g. `layer1.0.conv1.weight`).
    pub name: String,
    /// The weight's shape, output dimension first (`[out, in, kh, kw]`, `[out, in]`).
    pub shape: Vec<usize>,
}

impl LayerSpec {
    /// A layer from a name and a shape.
    pub fn new(name: impl Into<String>, shape: &[usize]) -> Self {
        Self {
            name: name.into(),
            shape: shape.to_vec(),
        }
    }

    /// Number of weights.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// How the global density is split across layers (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allocation {
    /// Every layer at the global density.
    Uniform,
    /// First layer dense, classifier at 0.2 when the density is below 0.2.
    UniformPlus {
        /// `false`: official (slightly under budget); `true`: meets the budget exactly.
        exact_budget: bool,
    },
    /// Erdős–Rényi from `(n_out, n_in)` only.
    Er {
        /// Exponent `p` applied to the raw ratio (official default 1; 0 gives uniform).
        power_scale: f64,
    },
    /// Erdős–Rényi-Kernel from every dimension.
    Erk {
        /// Exponent `p` applied to the raw ratio (official default 1; 0 gives uniform).
        power_scale: f64,
    },
    /// ERK on every layer but the classifier, which gets its own density.
    ErkPlus {
        /// Density of the classifier (last layer), in `(0, 1]` (official README: 1.0).
        classifier_density: f64,
        /// Exponent of the ERK ratio on the other layers.
        power_scale: f64,
    },
    /// Global top-k of SNIP scores.
    SnipRatio,
    /// Global bottom-k of GraSP scores `−W ⊙ Hg`.
    GraspRatio,
    /// Global top-k of magnitudes.
    GlobalMagnitude,
}

impl Allocation {
    /// Official ERK (`power_scale = 1`).
    pub fn erk() -> Self {
        Self::Erk { power_scale: 1.0 }
    }

    /// Official ER (`power_scale = 1`).
    pub fn er() -> Self {
        Self::Er { power_scale: 1.0 }
    }

    /// Official uniform+ (under budget, as coded).
    pub fn uniform_plus() -> Self {
        Self::UniformPlus {
            exact_budget: false,
        }
    }

    /// Whether [`Allocation::densities`] needs per-layer scores.
    pub fn needs_scores(&self) -> bool {
        matches!(
            self,
            Self::SnipRatio | Self::GraspRatio | Self::GlobalMagnitude
        )
    }

    /// Whether the result depends on which layer is first or last (the model order).
    pub fn needs_model_order(&self) -> bool {
        matches!(self, Self::UniformPlus { .. } | Self::ErkPlus { .. })
    }

    /// Checks the variant's hyperparameters (`erk_power_scale >= 0` and finite,
    /// `classifier_density` in `(0, 1]`).
    pub fn validate(&self) -> Result<()> {
        let power = match *self {
            Self::Er { power_scale } | Self::Erk { power_scale } => Some(power_scale),
            Self::ErkPlus {
                classifier_density,
                power_scale,
            } => {
                if !(classifier_density > 0.0 && classifier_density <= 1.0) {
                    return Err(SparseError::InvalidHyperparameter {
                        name: "classifier_density",
                        value: classifier_density.to_string(),
                        reason: "must lie in (0, 1]".into(),
                    });
                }
                Some(power_scale)
            }
            _ => None,
        };
        match power {
            Some(p) if !(p.is_finite() && p >= 0.0) => Err(SparseError::InvalidHyperparameter {
                name: "erk_power_scale",
                value: p.to_string(),
                reason: "must be finite and >= 0".into(),
            }),
            _ => Ok(()),
        }
    }

    /// One density per layer of `layers` (model order: first layer first, classifier
    /// last), for the global `density`. `scores` (one vector per layer, flat
    /// row-major) is required by the score-based allocations and ignored otherwise.
    pub fn densities(
        &self,
        layers: &[LayerSpec],
        density: f64,
        scores: Option<&[Vec<f32>]>,
    ) -> Result<Vec<f64>> {
        self.validate()?;
        check_density(density)?;
        if layers.is_empty() {
            return Err(invalid("layers", "no layers to allocate".into()));
        }
        if let Some(l) = layers.iter().find(|l| l.numel() == 0) {
            return Err(invalid(
                "layers",
                format!("layer `{}` has no weights", l.name),
            ));
        }
        if self.needs_model_order() && layers.len() < 2 {
            return Err(invalid(
                "layers",
                "uniform+ / ERK+ need a first layer and a distinct classifier".into(),
            ));
        }
        match *self {
            Self::Uniform => Ok(vec![density; layers.len()]),
            Self::UniformPlus { exact_budget } => uniform_plus(layers, density, exact_budget),
            Self::Er { power_scale } => erk(layers, density, power_scale, true),
            Self::Erk { power_scale } => erk(layers, density, power_scale, false),
            Self::ErkPlus {
                classifier_density,
                power_scale,
            } => {
                let (rest, fc) = layers.split_at(layers.len() - 1);
                let n_total = total(layers);
                let n_fc = fc[0].numel() as f64;
                let d_rest = (density * n_total - n_fc * classifier_density) / (n_total - n_fc);
                if !(d_rest > 0.0 && d_rest <= 1.0) {
                    return Err(invalid(
                        "density",
                        format!(
                            "ERK+ leaves density {d_rest} for the non-classifier layers \
                             (density {density}, classifier_density {classifier_density})"
                        ),
                    ));
                }
                let mut out = erk(rest, d_rest, power_scale, false)?;
                out.push(classifier_density);
                Ok(out)
            }
            Self::SnipRatio | Self::GlobalMagnitude | Self::GraspRatio => {
                let scores = scores.ok_or_else(|| {
                    invalid(
                        "scores",
                        format!("{self:?} needs one score vector per layer"),
                    )
                })?;
                if scores.len() != layers.len() {
                    return Err(invalid(
                        "scores",
                        format!("{} score vectors for {} layers", scores.len(), layers.len()),
                    ));
                }
                for (l, s) in layers.iter().zip(scores) {
                    if s.len() != l.numel() {
                        return Err(SparseError::ShapeMismatch {
                            what: format!("scores of `{}`", l.name),
                            expected: l.shape.clone(),
                            got: vec![s.len()],
                        });
                    }
                }
                if matches!(self, Self::GraspRatio) {
                    let negated: Vec<Vec<f32>> = scores
                        .iter()
                        .map(|s| s.iter().map(|v| -v).collect())
                        .collect();
                    global_topk_densities(&negated, density)
                } else {
                    global_topk_densities(scores, density)
                }
            }
        }
    }
}

fn invalid(what: &str, reason: String) -> SparseError {
    SparseError::InvalidInput {
        what: what.to_string(),
        reason,
    }
}

fn total(layers: &[LayerSpec]) -> f64 {
    layers.iter().map(|l| l.numel() as f64).sum()
}

fn uniform_plus(layers: &[LayerSpec], density: f64, exact_budget: bool) -> Result<Vec<f64>> {
    let n_total = total(layers);
    let n_first = layers[0].numel() as f64;
    let n_fc = layers[layers.len() - 1].numel() as f64;
    let fc_floor = density < 0.2;
    let mut budget = density * n_total - n_first;
    let mut divisor = n_total;
    if exact_budget {
        divisor -= n_first;
    }
    if fc_floor {
        budget -= 0.2 * n_fc;
        if exact_budget {
            divisor -= n_fc;
        }
    }
    let d_rest = if divisor > 0.0 { budget / divisor } else { 0.0 };
    if !(d_rest > 0.0 && d_rest <= 1.0) {
        return Err(invalid(
            "density",
            format!(
                "uniform+ at density {density} leaves {d_rest} for the middle layers \
                 (the dense first layer and the classifier floor exceed the budget)"
            ),
        ));
    }
    let last = layers.len() - 1;
    Ok((0..layers.len())
        .map(|i| match i {
            0 => 1.0,
            i if i == last && fc_floor => 0.2,
            _ => d_rest,
        })
        .collect())
}

/// The ITOP-lineage ERK/ER loop (methods note B §1.7), including dense promotion.
fn erk(layers: &[LayerSpec], density: f64, power_scale: f64, er: bool) -> Result<Vec<f64>> {
    if density >= 1.0 {
        return Ok(vec![1.0; layers.len()]);
    }
    let numel: Vec<f64> = layers.iter().map(|l| l.numel() as f64).collect();
    let raw: Vec<f64> = layers
        .iter()
        .map(|l| {
            let dims = if er {
                &l.shape[..l.shape.len().min(2)]
            } else {
                &l.shape[..]
            };
            let sum: f64 = dims.iter().map(|&d| d as f64).sum();
            let prod: f64 = dims.iter().map(|&d| d as f64).product();
            (sum / prod).powf(power_scale)
        })
        .collect();
    let mut dense = vec![false; layers.len()];
    loop {
        let (mut rhs, mut divisor) = (0.0, 0.0);
        for i in 0..layers.len() {
            if dense[i] {
                rhs -= numel[i] * (1.0 - density);
            } else {
                rhs += numel[i] * density;
                divisor += raw[i] * numel[i];
            }
        }
        // With density < 1 at least one layer stays sparse (the budget cannot cover
        // every layer densely), so the divisor is positive.
        let eps = rhs / divisor;
        let max_raw = (0..layers.len())
            .filter(|&i| !dense[i])
            .map(|i| raw[i])
            .fold(f64::NEG_INFINITY, f64::max);
        if max_raw * eps > 1.0 {
            // Exact float equality, as the official code: equal shapes tie exactly.
            for i in 0..layers.len() {
                if !dense[i] && raw[i] == max_raw {
                    dense[i] = true;
                }
            }
            continue;
        }
        if !(eps.is_finite() && eps > 0.0) {
            return Err(invalid(
                "density",
                format!("ERK found no feasible allocation for density {density}"),
            ));
        }
        return Ok((0..layers.len())
            .map(|i| if dense[i] { 1.0 } else { eps * raw[i] })
            .collect());
    }
}

/// How mask positions are drawn once the layer densities are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sampling {
    /// Each weight kept independently with probability `d_l` (official): the counts
    /// are random, the expected total is the budget.
    #[default]
    Bernoulli,
    /// Exactly `c_l` weights per layer, chosen uniformly without replacement. The
    /// counts are `floor(d_l·n_l)` plus one for the layers with the largest remainders
    /// `d_l·n_l − floor(d_l·n_l)` (ties: model order) until the total is
    /// `round(Σ_l d_l·n_l)`, which equals `round(d·N)` whenever the allocation meets
    /// the budget (every allocation but the official uniform+).
    ExactCount,
}

/// Exact per-layer counts for [`Sampling::ExactCount`] (largest remainder).
pub fn exact_counts(layers: &[LayerSpec], densities: &[f64]) -> Result<Vec<usize>> {
    check_layer_densities(layers, densities)?;
    let targets: Vec<f64> = layers
        .iter()
        .zip(densities)
        .map(|(l, &d)| d * l.numel() as f64)
        .collect();
    let mut counts: Vec<usize> = layers
        .iter()
        .zip(&targets)
        .map(|(l, &t)| (t.floor() as usize).min(l.numel()))
        .collect();
    let wanted = targets.iter().sum::<f64>().round() as usize;
    let mut missing = wanted.saturating_sub(counts.iter().sum());
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = targets[a] - targets[a].floor();
        let rb = targets[b] - targets[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for i in order {
        if missing == 0 {
            break;
        }
        if counts[i] < layers[i].numel() && targets[i] > counts[i] as f64 {
            counts[i] += 1;
            missing -= 1;
        }
    }
    Ok(counts)
}

fn check_layer_densities(layers: &[LayerSpec], densities: &[f64]) -> Result<()> {
    if layers.len() != densities.len() {
        return Err(invalid(
            "densities",
            format!("{} densities for {} layers", densities.len(), layers.len()),
        ));
    }
    for (l, &d) in layers.iter().zip(densities) {
        if !(0.0..=1.0).contains(&d) {
            return Err(invalid(
                "densities",
                format!("density {d} of layer `{}` is outside [0, 1]", l.name),
            ));
        }
    }
    Ok(())
}

/// Random masks with the given per-layer densities, layers drawn in the given order
/// from `rng` (use a seeded `ChaCha8Rng`: the same seed gives the same masks).
pub fn sample_masks<R: Rng + ?Sized>(
    layers: &[LayerSpec],
    densities: &[f64],
    sampling: Sampling,
    rng: &mut R,
) -> Result<Vec<Mask>> {
    check_layer_densities(layers, densities)?;
    match sampling {
        Sampling::Bernoulli => layers
            .iter()
            .zip(densities)
            .map(|(l, &d)| {
                let bits = (0..l.numel())
                    .map(|_| u8::from(rng.random::<f64>() < d))
                    .collect();
                Mask::from_bits(&l.shape, bits)
            })
            .collect(),
        Sampling::ExactCount => {
            let counts = exact_counts(layers, densities)?;
            layers
                .iter()
                .zip(counts)
                .map(|(l, c)| {
                    let mut bits = vec![0u8; l.numel()];
                    for i in rand::seq::index::sample(rng, l.numel(), c) {
                        bits[i] = 1;
                    }
                    Mask::from_bits(&l.shape, bits)
                })
                .collect()
        }
    }
}

/// A validated density + allocation + sampling; build it with
/// [`AllocationConfig::builder`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AllocationConfig {
    density: f64,
    allocation: Allocation,
    sampling: Sampling,
}

impl AllocationConfig {
    /// A builder: density required, allocation defaults to ERK (p = 1), sampling to
    /// Bernoulli (the official choices of Random_Pruning's README).
    pub fn builder() -> AllocationConfigBuilder {
        AllocationConfigBuilder {
            density: None,
            allocation: Allocation::erk(),
            sampling: Sampling::Bernoulli,
        }
    }

    /// The global density.
    pub fn density(&self) -> f64 {
        self.density
    }

    /// The layer-wise allocation.
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// The sampling of positions.
    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// Per-layer densities; see [`Allocation::densities`].
    pub fn layer_densities(
        &self,
        layers: &[LayerSpec],
        scores: Option<&[Vec<f32>]>,
    ) -> Result<Vec<f64>> {
        self.allocation.densities(layers, self.density, scores)
    }

    /// Random pruning at initialisation: selects the vars of `varmap` with `policy`
    /// (in its `layer_order`, needed by uniform+ / ERK+), allocates densities, draws
    /// masks from `rng` in model order, and registers each masked var (its weights are
    /// zeroed at once). A layer whose mask density is `>= policy.dense_threshold()`
    /// is left out, i.e. stays dense (SLaK). `scores` (name → flat scores) is needed
    /// by the score-based allocations.
    pub fn init_sparse_params<R: Rng + ?Sized>(
        &self,
        varmap: &VarMap,
        policy: &SelectionPolicy,
        scores: Option<&std::collections::BTreeMap<String, Vec<f32>>>,
        rng: &mut R,
    ) -> Result<SparseParams> {
        if self.allocation.needs_model_order() && policy.layer_order().is_none() {
            return Err(invalid(
                "selection policy",
                format!(
                    "{:?} singles out the first layer / classifier: give the model order \
                     with `SelectionPolicy::builder().layer_order(..)`",
                    self.allocation
                ),
            ));
        }
        let vars = policy.select_in_model_order(varmap)?;
        let layers: Vec<LayerSpec> = vars
            .iter()
            .map(|(n, v)| LayerSpec::new(n.clone(), v.dims()))
            .collect();
        let ordered_scores = match (self.allocation.needs_scores(), scores) {
            (false, _) => None,
            (true, None) => {
                return Err(invalid(
                    "scores",
                    format!("{:?} needs scores", self.allocation),
                ));
            }
            (true, Some(map)) => Some(
                layers
                    .iter()
                    .map(|l| {
                        map.get(&l.name)
                            .cloned()
                            .ok_or_else(|| invalid("scores", format!("no scores for `{}`", l.name)))
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        let densities = self.layer_densities(&layers, ordered_scores.as_deref())?;
        let masks = sample_masks(&layers, &densities, self.sampling, rng)?;
        let mut params = SparseParams::new();
        for ((name, var), mask) in vars.into_iter().zip(masks) {
            if !policy.keeps_dense(mask.density()) {
                params.insert(name, var, mask)?;
            }
        }
        Ok(params)
    }
}

/// Checked builder of an [`AllocationConfig`].
#[derive(Debug, Clone, Copy)]
pub struct AllocationConfigBuilder {
    density: Option<f64>,
    allocation: Allocation,
    sampling: Sampling,
}

impl AllocationConfigBuilder {
    /// The global density (kept / masked weights), in `(0, 1]`. Required.
    pub fn density(mut self, density: f64) -> Self {
        self.density = Some(density);
        self
    }

    /// The layer-wise allocation (default ERK, `power_scale = 1`).
    pub fn allocation(mut self, allocation: Allocation) -> Self {
        self.allocation = allocation;
        self
    }

    /// How positions are drawn (default Bernoulli).
    pub fn sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = sampling;
        self
    }

    /// Validates: `density` in `(0, 1]`, `erk_power_scale` finite and `>= 0`,
    /// `classifier_density` in `(0, 1]`. The error names the parameter.
    pub fn build(self) -> Result<AllocationConfig> {
        let density = self
            .density
            .ok_or_else(|| SparseError::InvalidHyperparameter {
                name: "density",
                value: "unset".into(),
                reason: "is required".into(),
            })?;
        check_density(density)?;
        self.allocation.validate()?;
        Ok(AllocationConfig {
            density,
            allocation: self.allocation,
            sampling: self.sampling,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, batch_norm, conv2d_no_bias, linear};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// CIFAR ResNet-20 (He et al. 2016, option-B shortcuts), masked weights in model
    /// order: conv 3→16 3x3; stage 1: 3 blocks of two 16→16 3x3 convs; stages 2 and 3
    /// (32 and 64 channels): block 0 = conv in→out 3x3, conv out→out 3x3 and a 1x1
    /// in→out downsample conv, blocks 1-2 = two out→out 3x3 convs; fc 64→10.
    fn resnet20() -> Vec<LayerSpec> {
        let mut layers = vec![LayerSpec::new("conv1", &[16, 3, 3, 3])];
        for b in 0..3 {
            for c in 1..=2 {
                layers.push(LayerSpec::new(
                    format!("layer1.{b}.conv{c}"),
                    &[16, 16, 3, 3],
                ));
            }
        }
        for (stage, cin, cout) in [(2, 16, 32), (3, 32, 64)] {
            layers.push(LayerSpec::new(
                format!("layer{stage}.0.conv1"),
                &[cout, cin, 3, 3],
            ));
            layers.push(LayerSpec::new(
                format!("layer{stage}.0.conv2"),
                &[cout, cout, 3, 3],
            ));
            layers.push(LayerSpec::new(
                format!("layer{stage}.0.shortcut"),
                &[cout, cin, 1, 1],
            ));
            for b in 1..3 {
                for c in 1..=2 {
                    layers.push(LayerSpec::new(
                        format!("layer{stage}.{b}.conv{c}"),
                        &[cout, cout, 3, 3],
                    ));
                }
            }
        }
        layers.push(LayerSpec::new("fc", &[10, 64]));
        layers
    }

    fn budget(layers: &[LayerSpec], densities: &[f64]) -> f64 {
        layers
            .iter()
            .zip(densities)
            .map(|(l, d)| d * l.numel() as f64)
            .sum()
    }

    fn dense_names(layers: &[LayerSpec], densities: &[f64]) -> Vec<String> {
        layers
            .iter()
            .zip(densities)
            .filter(|(_, d)| **d == 1.0)
            .map(|(l, _)| l.name.clone())
            .collect()
    }

    fn erk_ratio(shape: &[usize]) -> f64 {
        shape.iter().sum::<usize>() as f64 / shape.iter().product::<usize>() as f64
    }

    #[test]
    fn resnet20_has_the_expected_size() {
        let layers = resnet20();
        assert_eq!(layers.len(), 22);
        assert_eq!(total(&layers), 270_896.0);
    }

    #[test]
    fn erk_meets_the_budget_and_promotes_dense_layers_on_resnet20() {
        let layers = resnet20();
        let n = total(&layers);
        let stage1: Vec<String> = (0..3)
            .flat_map(|b| (1..=2).map(move |c| format!("layer1.{b}.conv{c}")))
            .collect();
        let cases: [(f64, Vec<String>); 3] = [
            (0.05, vec![]),
            (0.1, vec!["layer2.0.shortcut".into(), "fc".into()]),
            (0.5, {
                // First conv, classifier, both shortcuts, the 16→32 conv and (a tie) all
                // six identical stage-1 convs.
                let mut v = vec!["conv1".to_string()];
                v.extend(stage1.iter().cloned());
                v.extend(
                    [
                        "layer2.0.conv1",
                        "layer2.0.shortcut",
                        "layer3.0.shortcut",
                        "fc",
                    ]
                    .map(String::from),
                );
                v
            }),
        ];
        for (d, expected_dense) in cases {
            let dens = Allocation::erk().densities(&layers, d, None).unwrap();
            let rel = (budget(&layers, &dens) - d * n).abs() / (d * n);
            assert!(rel < 1e-9, "density {d}: budget off by {rel}");
            assert_eq!(dense_names(&layers, &dens), expected_dense, "density {d}");
            // Sparse layers are proportional to their ERK ratio, below 1, and every
            // dense layer's ratio is at least every sparse layer's ratio.
            let sparse: Vec<usize> = (0..layers.len()).filter(|&i| dens[i] < 1.0).collect();
            let eps = dens[sparse[0]] / erk_ratio(&layers[sparse[0]].shape);
            for &i in &sparse {
                assert!((dens[i] - eps * erk_ratio(&layers[i].shape)).abs() < 1e-12);
            }
            let max_sparse = sparse
                .iter()
                .map(|&i| erk_ratio(&layers[i].shape))
                .fold(0.0, f64::max);
            for (l, &dl) in layers.iter().zip(&dens) {
                if dl == 1.0 {
                    assert!(erk_ratio(&l.shape) > max_sparse);
                }
            }
        }
    }

    #[test]
    fn erk_ties_go_dense_together() {
        // Two identical small layers share the largest ratio; both must turn dense.
        let layers = vec![
            LayerSpec::new("a", &[4, 4]),
            LayerSpec::new("big", &[100, 100]),
            LayerSpec::new("b", &[4, 4]),
        ];
        let d = Allocation::erk().densities(&layers, 0.3, None).unwrap();
        assert_eq!(d[0], 1.0);
        assert_eq!(d[2], 1.0);
        assert!(d[1] < 1.0);
        assert!((budget(&layers, &d) - 0.3 * total(&layers)).abs() < 1e-9 * total(&layers));
    }

    #[test]
    fn erk_power_scale_zero_is_uniform_and_full_density_is_dense() {
        let layers = resnet20();
        let d = Allocation::Erk { power_scale: 0.0 }
            .densities(&layers, 0.2, None)
            .unwrap();
        assert!(d.iter().all(|&x| (x - 0.2).abs() < 1e-12));
        let d = Allocation::erk().densities(&layers, 1.0, None).unwrap();
        assert!(d.iter().all(|&x| x == 1.0));
    }

    #[test]
    fn er_uses_only_out_and_in() {
        // A conv-only net: changing every kernel from 3x3 to 5x5 changes ERK but not ER.
        let net = |k: usize| {
            vec![
                LayerSpec::new("c1", &[16, 3, k, k]),
                LayerSpec::new("c2", &[32, 16, k, k]),
                LayerSpec::new("c3", &[64, 32, k, k]),
                LayerSpec::new("c4", &[64, 64, k, k]),
            ]
        };
        let (small, large) = (net(3), net(5));
        let er3 = Allocation::er().densities(&small, 0.1, None).unwrap();
        let er5 = Allocation::er().densities(&large, 0.1, None).unwrap();
        for (a, b) in er3.iter().zip(&er5) {
            assert!((a - b).abs() < 1e-12, "{er3:?} vs {er5:?}");
        }
        // ER ratio of c2 over c3 is (48/512) / (96/2048).
        let ratio = (48.0 / 512.0) / (96.0 / 2048.0);
        assert!((er3[1] / er3[2] - ratio).abs() < 1e-12);
        let erk3 = Allocation::erk().densities(&small, 0.1, None).unwrap();
        let erk5 = Allocation::erk().densities(&large, 0.1, None).unwrap();
        assert!((erk3[1] - erk5[1]).abs() > 1e-3);
    }

    #[test]
    fn uniform_plus_first_dense_classifier_floor_and_budget() {
        let layers = resnet20();
        let n = total(&layers);
        let (n_first, n_fc) = (432.0, 640.0);
        for d in [0.05, 0.1] {
            let off = Allocation::uniform_plus()
                .densities(&layers, d, None)
                .unwrap();
            assert_eq!(off[0], 1.0);
            assert_eq!(off[21], 0.2);
            let expected = (d * n - n_first - 0.2 * n_fc) / n;
            assert!(off[1..21].iter().all(|&x| (x - expected).abs() < 1e-15));
            // Official quirk: slightly under budget.
            assert!(budget(&layers, &off) < d * n);
            let exact = Allocation::UniformPlus { exact_budget: true }
                .densities(&layers, d, None)
                .unwrap();
            assert_eq!((exact[0], exact[21]), (1.0, 0.2));
            assert!((budget(&layers, &exact) - d * n).abs() < 1e-9 * d * n);
        }
        // At d >= 0.2 the classifier is an ordinary layer.
        let d = Allocation::uniform_plus()
            .densities(&layers, 0.5, None)
            .unwrap();
        assert_eq!(d[0], 1.0);
        assert!((d[21] - (0.5 * n - n_first) / n).abs() < 1e-15);
        // A dense first layer bigger than the budget is an error, not a negative density.
        let tiny = vec![
            LayerSpec::new("first", &[100, 100]),
            LayerSpec::new("fc", &[10, 10]),
        ];
        assert!(
            Allocation::uniform_plus()
                .densities(&tiny, 0.1, None)
                .is_err()
        );
    }

    #[test]
    fn erk_plus_fixes_the_classifier_and_meets_the_budget() {
        let layers = resnet20();
        let n = total(&layers);
        let alloc = Allocation::ErkPlus {
            classifier_density: 1.0,
            power_scale: 1.0,
        };
        let d = alloc.densities(&layers, 0.1, None).unwrap();
        assert_eq!(d[21], 1.0);
        assert!((budget(&layers, &d) - 0.1 * n).abs() < 1e-9 * n);
        let rest = Allocation::erk()
            .densities(&layers[..21], (0.1 * n - 640.0) / (n - 640.0), None)
            .unwrap();
        assert_eq!(&d[..21], rest.as_slice());
    }

    #[test]
    fn score_allocations_use_a_global_top_k() {
        let layers = vec![LayerSpec::new("a", &[2, 2]), LayerSpec::new("b", &[4])];
        let scores = vec![vec![4.0, 3.0, 0.0, 0.0], vec![2.0, 1.0, -1.0, -2.0]];
        let snip = Allocation::SnipRatio
            .densities(&layers, 0.25, Some(&scores))
            .unwrap();
        assert_eq!(snip, vec![0.5, 0.0]);
        // GraSP keeps the lowest scores.
        let grasp = Allocation::GraspRatio
            .densities(&layers, 0.25, Some(&scores))
            .unwrap();
        assert_eq!(grasp, vec![0.0, 0.5]);
        assert!(
            Allocation::GlobalMagnitude
                .densities(&layers, 0.25, None)
                .is_err()
        );
        let short = vec![vec![1.0; 4], vec![1.0; 3]];
        assert!(
            Allocation::SnipRatio
                .densities(&layers, 0.25, Some(&short))
                .is_err()
        );
    }

    #[test]
    fn exact_count_meets_the_budget_exactly() {
        let layers = resnet20();
        let n = total(&layers);
        for d in [0.05, 0.1, 0.37] {
            let dens = Allocation::erk().densities(&layers, d, None).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let masks = sample_masks(&layers, &dens, Sampling::ExactCount, &mut rng).unwrap();
            let nnz: usize = masks.iter().map(Mask::nnz).sum();
            assert_eq!(nnz, (d * n).round() as usize, "density {d}");
            for ((l, m), dl) in layers.iter().zip(&masks).zip(&dens) {
                assert_eq!(m.shape(), l.shape.as_slice());
                assert!((m.nnz() as f64 - dl * l.numel() as f64).abs() < 1.0);
            }
        }
    }

    #[test]
    fn largest_remainder_rounding() {
        // Targets 1.5, 1.5, 1.2, total 4.2 -> 4: floors 1,1,1 plus one for layer 0
        // (remainder 0.5 ties with layer 1; model order breaks the tie).
        let layers = vec![
            LayerSpec::new("a", &[10]),
            LayerSpec::new("b", &[10]),
            LayerSpec::new("c", &[10]),
        ];
        assert_eq!(
            exact_counts(&layers, &[0.15, 0.15, 0.12]).unwrap(),
            vec![2, 1, 1]
        );
        assert!(exact_counts(&layers, &[0.1, 0.2]).is_err());
        assert!(exact_counts(&layers, &[0.1, 0.2, 1.5]).is_err());
    }

    #[test]
    fn bernoulli_density_is_close_to_the_target() {
        let layer = [LayerSpec::new("big", &[1000, 1000])];
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let masks = sample_masks(&layer, &[0.1], Sampling::Bernoulli, &mut rng).unwrap();
        let n = 1e6;
        let sigma = (n * 0.1 * 0.9f64).sqrt();
        let nnz = masks[0].nnz() as f64;
        assert!((nnz - 0.1 * n).abs() < 4.0 * sigma, "nnz {nnz}");
        // Not exact: Bernoulli counts vary (an exact count would hint at a bug).
        assert_ne!(masks[0].nnz(), 100_000);
    }

    #[test]
    fn same_seed_same_masks() {
        let layers = resnet20();
        let dens = Allocation::erk().densities(&layers, 0.1, None).unwrap();
        for sampling in [Sampling::Bernoulli, Sampling::ExactCount] {
            let draw = |seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                sample_masks(&layers, &dens, sampling, &mut rng).unwrap()
            };
            assert_eq!(draw(5), draw(5));
            assert_ne!(draw(5), draw(6));
        }
    }

    #[test]
    fn invalid_hyperparameters_are_rejected_by_name() {
        let named = |r: Result<AllocationConfig>| match r {
            Err(SparseError::InvalidHyperparameter { name, .. }) => name,
            other => panic!("expected a hyperparameter error, got {other:?}"),
        };
        for bad in [0.0, 1.5, f64::NAN, -0.1] {
            assert_eq!(
                named(AllocationConfig::builder().density(bad).build()),
                "density"
            );
        }
        assert_eq!(named(AllocationConfig::builder().build()), "density");
        let alloc = Allocation::Erk { power_scale: -1.0 };
        assert_eq!(
            named(
                AllocationConfig::builder()
                    .density(0.1)
                    .allocation(alloc)
                    .build()
            ),
            "erk_power_scale"
        );
        let alloc = Allocation::ErkPlus {
            classifier_density: 0.0,
            power_scale: 1.0,
        };
        assert_eq!(
            named(
                AllocationConfig::builder()
                    .density(0.1)
                    .allocation(alloc)
                    .build()
            ),
            "classifier_density"
        );
        let layers = resnet20();
        let err = Allocation::erk().densities(&layers, 1.5, None).unwrap_err();
        assert!(err.to_string().contains("density"), "{err}");
        let cfg = AllocationConfig::builder().density(0.2).build().unwrap();
        assert_eq!(cfg.allocation(), Allocation::erk());
        assert_eq!(cfg.sampling(), Sampling::Bernoulli);
    }

    /// conv 3→8 (3x3) + bn + conv 8→8 + fc 8→4, in a VarMap.
    fn small_model() -> VarMap {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        conv2d_no_bias(3, 8, 3, Default::default(), vb.pp("conv1")).unwrap();
        batch_norm(8, 1e-5, vb.pp("bn1")).unwrap();
        conv2d_no_bias(8, 8, 3, Default::default(), vb.pp("conv2")).unwrap();
        linear(8, 4, vb.pp("fc")).unwrap();
        varmap
    }

    #[test]
    fn init_sparse_params_masks_the_selected_weights() {
        let varmap = small_model();
        let order = ["conv1.weight", "conv2.weight", "fc.weight"];
        let policy = SelectionPolicy::builder()
            .layer_order(order)
            .build()
            .unwrap();
        let cfg = AllocationConfig::builder()
            .density(0.3)
            .allocation(Allocation::UniformPlus { exact_budget: true })
            .sampling(Sampling::ExactCount)
            .build()
            .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let params = cfg
            .init_sparse_params(&varmap, &policy, None, &mut rng)
            .unwrap();
        let names: Vec<&str> = params.names().collect();
        assert_eq!(names, vec!["conv1.weight", "conv2.weight", "fc.weight"]);
        assert_eq!(params.mask("conv1.weight").unwrap().density(), 1.0);
        // Budget: 0.3 · (216 + 576 + 32) = 247.2 -> 247 kept weights.
        let nnz: usize = params.iter().map(|p| p.mask.nnz()).sum();
        assert_eq!(nnz, 247);
        // The weights themselves are zero where the mask is.
        let w = params.get("conv2.weight").unwrap();
        let values = w
            .var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (i, v) in values.iter().enumerate() {
            if !w.mask.is_active(i) {
                assert_eq!(*v, 0.0);
            }
        }
        // SLaK's rule leaves the dense first layer out of the registry.
        let policy = SelectionPolicy::builder()
            .layer_order(order)
            .dense_threshold(0.99)
            .build()
            .unwrap();
        let params = cfg
            .init_sparse_params(&varmap, &policy, None, &mut rng)
            .unwrap();
        assert!(!params.contains("conv1.weight"));
        assert!(params.contains("conv2.weight"));
        // uniform+ without a model order is refused.
        let unordered = SelectionPolicy::default();
        assert!(
            cfg.init_sparse_params(&varmap, &unordered, None, &mut rng)
                .is_err()
        );
    }
}
