//! The layer-density rules: one density per layer from a global density (uniform,
//! uniform+, ER, ERK, ERK+, and the global top-k of SNIP / GraSP / magnitude scores).

use crate::error::{Result, SparseError};
use crate::saliency::global_topk_densities;
use crate::validate::{check_density, check_fraction_above_zero, check_non_negative};

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
        /// `false`: official (under budget below density 0.2, over it from 0.2 on);
        /// `true`: meets the budget exactly.
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

    /// Official uniform+ (off budget, as coded; see the module docs).
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
        match *self {
            Self::Er { power_scale } | Self::Erk { power_scale } => {
                check_non_negative("erk_power_scale", power_scale)
            }
            Self::ErkPlus {
                classifier_density,
                power_scale,
            } => {
                check_fraction_above_zero("classifier_density", classifier_density)?;
                check_non_negative("erk_power_scale", power_scale)
            }
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
            return Err(SparseError::invalid_input(
                "layers",
                "no layers to allocate",
            ));
        }
        if let Some(l) = layers.iter().find(|l| l.numel() == 0) {
            return Err(SparseError::invalid_input(
                "layers",
                format!("layer `{}` has no weights", l.name),
            ));
        }
        if self.needs_model_order() && layers.len() < 2 {
            return Err(SparseError::invalid_input(
                "layers",
                "uniform+ / ERK+ need a first layer and a distinct classifier",
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
                    return Err(SparseError::invalid_input(
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
                    SparseError::invalid_input(
                        "scores",
                        format!("{self:?} needs one score vector per layer"),
                    )
                })?;
                if scores.len() != layers.len() {
                    return Err(SparseError::invalid_input(
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

pub(super) fn total(layers: &[LayerSpec]) -> f64 {
    layers.iter().map(|l| l.numel() as f64).sum()
}

fn uniform_plus(layers: &[LayerSpec], density: f64, exact_budget: bool) -> Result<Vec<f64>> {
    let n_total = total(layers);
    let n_first = layers[0].numel() as f64;
    let n_fc = layers[layers.len() - 1].numel() as f64;
    let fc_floor = density < 0.2;
    let d_rest = if exact_budget {
        let mut budget = density * n_total - n_first;
        let mut divisor = n_total - n_first;
        if fc_floor {
            budget -= 0.2 * n_fc;
            divisor -= n_fc;
        }
        if divisor > 0.0 { budget / divisor } else { 0.0 }
    } else if fc_floor {
        (density * n_total - n_first - 0.2 * n_fc) / n_total
    } else {
        // Random_Pruning computes a reduced budget here too but never uses it: every
        // layer but the first is drawn at the global density itself.
        density
    };
    if !(d_rest > 0.0 && d_rest <= 1.0) {
        return Err(SparseError::invalid_input(
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
            return Err(SparseError::invalid_input(
                "density",
                format!("ERK found no feasible allocation for density {density}"),
            ));
        }
        return Ok((0..layers.len())
            .map(|i| if dense[i] { 1.0 } else { eps * raw[i] })
            .collect());
    }
}
