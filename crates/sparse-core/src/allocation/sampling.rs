//! Mask positions at initialisation, once the layer densities are known.

use rand::Rng;

use super::rules::LayerSpec;
use crate::error::{Result, SparseError};
use crate::mask::Mask;

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
        return Err(SparseError::invalid_input(
            "densities",
            format!("{} densities for {} layers", densities.len(), layers.len()),
        ));
    }
    for (l, &d) in layers.iter().zip(densities) {
        if !(0.0..=1.0).contains(&d) {
            return Err(SparseError::invalid_input(
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
