//! In-Time Over-Parameterization bookkeeping (Liu et al., ICML 2021): the union of
//! every mask a parameter has had, and the ITOP rate `R_s = Σ_l |∪_t M_l(t)| / Σ_l N_l`.

use std::collections::BTreeMap;

use crate::error::{Result, SparseError};
use crate::mask::Mask;
use crate::registry::SparseParams;

/// The "ever fired" record of each masked parameter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FiredMasks {
    fired: BTreeMap<String, Mask>,
}

impl FiredMasks {
    /// A record starting from the current masks (as ITOP initialises `fired_masks`).
    pub fn new(params: &SparseParams) -> Self {
        Self {
            fired: params
                .iter()
                .map(|p| (p.name.clone(), p.mask.clone()))
                .collect(),
        }
    }

    /// ORs the current masks into the record; parameters not seen before are added.
    pub fn record(&mut self, params: &SparseParams) -> Result<()> {
        for p in params.iter() {
            match self.fired.get_mut(&p.name) {
                Some(f) => f.union_with(&p.mask)?,
                None => {
                    self.fired.insert(p.name.clone(), p.mask.clone());
                }
            }
        }
        Ok(())
    }

    /// The record of one parameter.
    pub fn fired(&self, name: &str) -> Option<&Mask> {
        self.fired.get(name)
    }

    /// Share of parameter `name`'s positions that were ever active.
    pub fn layer_rate(&self, name: &str) -> Result<f64> {
        self.fired
            .get(name)
            .map(Mask::density)
            .ok_or_else(|| SparseError::UnknownParameter(name.to_string()))
    }

    /// Per-parameter rates, in name order.
    pub fn layer_rates(&self) -> BTreeMap<String, f64> {
        self.fired
            .iter()
            .map(|(n, m)| (n.clone(), m.density()))
            .collect()
    }

    /// The ITOP rate over all recorded parameters (1 when there are none).
    pub fn rate(&self) -> f64 {
        let (fired, total) = self
            .fired
            .values()
            .fold((0, 0), |(a, b), m| (a + m.nnz(), b + m.numel()));
        if total == 0 {
            1.0
        } else {
            fired as f64 / total as f64
        }
    }

    /// Share of the positions of `region` (for parameter `name`) that were ever
    /// active, e.g. DSN's "share of region taps ever active" (1 for an empty region).
    pub fn region_rate(&self, name: &str, region: &Mask) -> Result<f64> {
        let fired = self
            .fired
            .get(name)
            .ok_or_else(|| SparseError::UnknownParameter(name.to_string()))?;
        if fired.shape() != region.shape() {
            return Err(SparseError::ShapeMismatch {
                what: format!("region of `{name}`"),
                expected: fired.shape().to_vec(),
                got: region.shape().to_vec(),
            });
        }
        let inside = region.active_indices();
        if inside.is_empty() {
            return Ok(1.0);
        }
        let hit = inside.iter().filter(|&&i| fired.is_active(i)).count();
        Ok(hit as f64 / inside.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor, Var};

    #[test]
    fn rate_on_a_hand_example_and_monotone() {
        let dev = Device::Cpu;
        let mut params = SparseParams::new();
        let a = Var::from_tensor(&Tensor::ones(4, candle_core::DType::F32, &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::ones(4, candle_core::DType::F32, &dev).unwrap()).unwrap();
        params
            .insert("a", a, Mask::from_bits(&[4], vec![1, 0, 0, 0]).unwrap())
            .unwrap();
        params
            .insert("b", b, Mask::from_bits(&[4], vec![0, 1, 1, 0]).unwrap())
            .unwrap();
        let mut itop = FiredMasks::new(&params);
        assert!((itop.rate() - 3.0 / 8.0).abs() < 1e-12);
        params
            .set_mask("a", Mask::from_bits(&[4], vec![0, 1, 0, 0]).unwrap())
            .unwrap();
        itop.record(&params).unwrap();
        assert!((itop.rate() - 4.0 / 8.0).abs() < 1e-12);
        assert!((itop.layer_rate("a").unwrap() - 0.5).abs() < 1e-12);
        // going back to an old mask does not lower the rate
        params
            .set_mask("a", Mask::from_bits(&[4], vec![1, 0, 0, 0]).unwrap())
            .unwrap();
        itop.record(&params).unwrap();
        assert!((itop.rate() - 4.0 / 8.0).abs() < 1e-12);
        let region = Mask::from_bits(&[4], vec![0, 1, 0, 1]).unwrap();
        assert!((itop.region_rate("b", &region).unwrap() - 0.5).abs() < 1e-12);
        assert!(itop.layer_rate("zzz").is_err());
    }
}
