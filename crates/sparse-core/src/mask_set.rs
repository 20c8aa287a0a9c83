//! One read-only view over every kind of named mask collection.
//!
//! A [`SparseParams`] registry, the masks a [`crate::ScoreSubnetwork`] derives at a
//! sparsity ([`crate::ScoreSubnetwork::masks`] returns a `BTreeMap<String, Mask>`)
//! and a plain `BTreeMap<String, Mask>` all implement [`MaskSet`], so checkpoints,
//! parameter counts and density reports take any of them without hand counting.

use std::collections::BTreeMap;

use crate::kernels::PackedWeight;
use crate::mask::Mask;
use crate::registry::SparseParams;

/// Named masks, visited in ascending name order.
///
/// The trait is object safe: [`crate::checkpoint::Sources::masks`] holds a
/// `&dyn MaskSet`.
pub trait MaskSet {
    /// Every `(name, mask)` pair, in ascending name order.
    fn mask_entries(&self) -> Box<dyn Iterator<Item = (&str, &Mask)> + '_>;

    /// The mask of `name`, if there is one.
    fn mask_of(&self, name: &str) -> Option<&Mask> {
        self.mask_entries()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m)
    }

    /// Number of masks.
    fn mask_count(&self) -> usize {
        self.mask_entries().count()
    }

    /// Active entries over all masks.
    fn total_nnz(&self) -> usize {
        self.mask_entries().map(|(_, m)| m.nnz()).sum()
    }

    /// Entries (active or not) over all masks.
    fn total_numel(&self) -> usize {
        self.mask_entries().map(|(_, m)| m.numel()).sum()
    }

    /// `total_nnz / total_numel`; 1 when there is nothing to mask (as
    /// [`SparseParams::total_density`]).
    fn overall_density(&self) -> f64 {
        let numel = self.total_numel();
        if numel == 0 {
            1.0
        } else {
            self.total_nnz() as f64 / numel as f64
        }
    }

    /// Each mask's density, by name.
    fn mask_densities(&self) -> BTreeMap<String, f64> {
        self.mask_entries()
            .map(|(n, m)| (n.to_string(), m.density()))
            .collect()
    }

    /// An owned copy of the masks, by name.
    fn to_mask_map(&self) -> BTreeMap<String, Mask> {
        self.mask_entries()
            .map(|(n, m)| (n.to_string(), m.clone()))
            .collect()
    }

    /// The weights stored as their active values that belong with these masks, by
    /// name: checkpoints save them in their dense shape beside the `VarMap` entries.
    /// None for a plain set of masks.
    fn packed_weights(&self) -> Vec<(String, PackedWeight)> {
        Vec::new()
    }
}

impl MaskSet for SparseParams {
    fn mask_entries(&self) -> Box<dyn Iterator<Item = (&str, &Mask)> + '_> {
        Box::new(self.iter().map(|p| (p.name.as_str(), &p.mask)))
    }

    fn mask_of(&self, name: &str) -> Option<&Mask> {
        self.get(name).map(|p| &p.mask)
    }

    fn packed_weights(&self) -> Vec<(String, PackedWeight)> {
        SparseParams::packed_weights(self)
    }
}

impl MaskSet for BTreeMap<String, Mask> {
    fn mask_entries(&self) -> Box<dyn Iterator<Item = (&str, &Mask)> + '_> {
        Box::new(self.iter().map(|(n, m)| (n.as_str(), m)))
    }

    fn mask_of(&self, name: &str) -> Option<&Mask> {
        self.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::{ScoreCount, ScoreSubnetwork, ScoredLayer, ThresholdScope};
    use candle_core::{Device, Tensor, Var};

    fn var(values: &[f32]) -> Var {
        Var::from_tensor(&Tensor::new(values, &Device::Cpu).unwrap()).unwrap()
    }

    #[test]
    fn registry_and_map_give_the_same_sorted_view_and_counts() {
        let mut params = SparseParams::new();
        // Inserted out of order: the view must still be sorted by name.
        params
            .insert(
                "z",
                var(&[1., 2., 3., 4.]),
                Mask::from_bits(&[4], vec![1, 0, 0, 0]).unwrap(),
            )
            .unwrap();
        params
            .insert(
                "a",
                var(&[1., 2.]),
                Mask::from_bits(&[2], vec![1, 1]).unwrap(),
            )
            .unwrap();
        let names: Vec<&str> = params.mask_entries().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "z"]);
        assert_eq!(params.total_nnz(), 3);
        assert_eq!(params.total_numel(), 6);
        assert_eq!(params.mask_count(), 2);
        assert!((params.overall_density() - 0.5).abs() < 1e-12);
        assert_eq!(params.mask_densities(), params.densities());
        assert_eq!(params.mask_of("z").unwrap().nnz(), 1);
        assert!(params.mask_of("nope").is_none());

        let map = params.to_mask_map();
        assert_eq!(map.mask_densities(), params.mask_densities());
        assert_eq!(map.total_nnz(), 3);
        let as_dyn: &dyn MaskSet = &map;
        assert_eq!(as_dyn.mask_of("a"), params.mask_of("a"));
    }

    #[test]
    fn score_subnetwork_masks_are_counted_without_hand_counting() {
        let dev = Device::Cpu;
        let layer = |name: &str, n: usize| {
            let w = Tensor::ones(n, candle_core::DType::F32, &dev).unwrap();
            let s: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let s = Var::from_tensor(&Tensor::new(s.as_slice(), &dev).unwrap()).unwrap();
            ScoredLayer::new(name, &w, s).unwrap()
        };
        let net = ScoreSubnetwork::new(
            vec![layer("b", 10), layer("a", 10)],
            ThresholdScope::PerLayer,
            ScoreCount::Floor,
        )
        .unwrap();
        let masks = net.masks(0.7).unwrap();
        assert_eq!(masks.total_nnz(), 6); // 3 of 10 kept per layer
        assert_eq!(masks.total_numel(), 20);
        assert!((masks.mask_densities()["b"] - 0.3).abs() < 1e-12);
        let empty = BTreeMap::<String, Mask>::new();
        assert_eq!(empty.overall_density(), 1.0);
    }
}
