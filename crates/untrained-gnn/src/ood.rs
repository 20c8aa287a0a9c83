//! The leave-out-classes split of the OOD experiment.
//!
//! The official `get_ood_split` shuffles the class list with the run's seeded
//! generator, holds out its last `k` classes as out-of-distribution and relabels
//! the remaining ones `0..C − k` in shuffled order. Which classes are held out
//! therefore changes from seed to seed; always holding out the same classes would
//! measure one particular pair of classes rather than the method.

use rand::Rng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};

/// Label of the sub-stream (of the run seed) that draws the held-out classes.
pub const OOD_STREAM: &str = "ood-classes";

/// Which classes a run predicts (and under which label) and which it holds out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSplit {
    /// In-distribution classes; the class at position `i` gets label `i`.
    in_distribution: Vec<u32>,
    /// Held-out (out-of-distribution) classes, in drawn order.
    held_out: Vec<u32>,
}

impl ClassSplit {
    /// Every class in distribution, labels unchanged.
    pub fn all(num_classes: usize) -> Self {
        Self {
            in_distribution: (0..num_classes as u32).collect(),
            held_out: Vec::new(),
        }
    }

    /// `held_out` classes drawn by shuffling `0..num_classes` with `rng` and taking
    /// the last ones, as the official code does; at least 2 classes stay in.
    pub fn drawn<R: Rng + ?Sized>(
        num_classes: usize,
        held_out: usize,
        rng: &mut R,
    ) -> Result<Self> {
        if held_out + 2 > num_classes {
            return Err(Error::invalid(
                "ood_classes",
                held_out,
                &format!("must leave at least 2 of the {num_classes} classes in distribution"),
            ));
        }
        let mut classes: Vec<u32> = (0..num_classes as u32).collect();
        classes.shuffle(rng);
        let held_out = classes.split_off(num_classes - held_out);
        Ok(Self {
            in_distribution: classes,
            held_out,
        })
    }

    /// Number of classes the model predicts.
    pub fn predicted(&self) -> usize {
        self.in_distribution.len()
    }

    /// The held-out classes (original class ids).
    pub fn held_out(&self) -> &[u32] {
        &self.held_out
    }

    /// The model's label for the original class `class`, `None` when it is held out
    /// (or unknown).
    pub fn label(&self, class: u32) -> Option<u32> {
        self.in_distribution
            .iter()
            .position(|&c| c == class)
            .map(|i| i as u32)
    }

    /// Whether the original class `class` is held out.
    pub fn is_held_out(&self, class: u32) -> bool {
        self.held_out.contains(&class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparse_repro::rng::derive_rng;
    use std::collections::BTreeSet;

    #[test]
    fn all_keeps_every_label() {
        let s = ClassSplit::all(4);
        assert_eq!(s.predicted(), 4);
        assert!(s.held_out().is_empty());
        assert_eq!(
            (0..4).map(|c| s.label(c)).collect::<Vec<_>>(),
            [Some(0), Some(1), Some(2), Some(3)]
        );
    }

    #[test]
    fn drawn_split_partitions_the_classes_and_relabels_densely() {
        let s = ClassSplit::drawn(7, 2, &mut derive_rng(5300, OOD_STREAM)).unwrap();
        assert_eq!(s.predicted(), 5);
        assert_eq!(s.held_out().len(), 2);
        let labels: BTreeSet<u32> = (0..7).filter_map(|c| s.label(c)).collect();
        assert_eq!(labels, (0..5).collect());
        for c in 0..7 {
            assert_eq!(s.is_held_out(c), s.label(c).is_none(), "class {c}");
        }
        // Same seed, same draw.
        assert_eq!(
            s,
            ClassSplit::drawn(7, 2, &mut derive_rng(5300, OOD_STREAM)).unwrap()
        );
    }

    #[test]
    fn held_out_classes_change_with_the_seed() {
        // The official split shuffles the classes per seed: over a few seeds more
        // than one pair is held out (a fixed "last two classes" would give one).
        let pairs: BTreeSet<Vec<u32>> = (0..10u64)
            .map(|seed| {
                let mut h = ClassSplit::drawn(7, 2, &mut derive_rng(seed, OOD_STREAM))
                    .unwrap()
                    .held_out()
                    .to_vec();
                h.sort_unstable();
                h
            })
            .collect();
        assert!(pairs.len() > 1, "{pairs:?}");
    }

    #[test]
    fn too_many_held_out_classes_are_rejected() {
        let err = ClassSplit::drawn(3, 2, &mut derive_rng(0, OOD_STREAM)).unwrap_err();
        assert!(err.to_string().contains("ood_classes"), "{err}");
    }
}
