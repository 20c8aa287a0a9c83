//! Which points a kernel pass computes, for the interior/halo overlap (`STREAM = 1`).
//!
//! With the overlap, a stage first computes the points whose stencils read no ghost
//! ([`Region::Inner`]) while the halos travel, then the rest ([`Region::Outer`]). Each
//! point is computed by exactly one pass with the same arithmetic in the same order,
//! so the result is bitwise that of one pass over [`Region::All`].

use std::ops::Range;

use crate::GHOST;

/// A set of interior points of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Region {
    /// Every interior point.
    #[default]
    All,
    /// The points at least `2·GHOST` from every face of the padded block: a stencil
    /// of half-width `GHOST` around them reads interior points only.
    Inner,
    /// The interior points that are not inner.
    Outer,
}

impl Region {
    /// The inner range of padded indices along a direction of padded length `len`
    /// (empty when the direction has `2·GHOST` interior points or fewer).
    #[inline]
    pub fn inner_range(len: usize) -> Range<usize> {
        2 * GHOST..len.saturating_sub(2 * GHOST).max(2 * GHOST)
    }

    /// Whether the padded point `index` of a block with padded sizes `padded` belongs
    /// to the region (`index` must be an interior point).
    #[inline]
    pub fn contains(self, padded: [usize; 3], index: [usize; 3]) -> bool {
        match self {
            Region::All => true,
            Region::Inner => Self::is_inner(padded, index),
            Region::Outer => !Self::is_inner(padded, index),
        }
    }

    #[inline]
    fn is_inner(padded: [usize; 3], index: [usize; 3]) -> bool {
        (0..3).all(|d| Self::inner_range(padded[d]).contains(&index[d]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_and_outer_split_the_interior() {
        let padded = [24, 9, 30];
        let mut counts = [0usize; 2];
        for k in GHOST..30 - GHOST {
            for j in GHOST..9 - GHOST {
                for i in GHOST..24 - GHOST {
                    let index = [i, j, k];
                    let inner = Region::Inner.contains(padded, index);
                    assert_ne!(inner, Region::Outer.contains(padded, index));
                    assert!(Region::All.contains(padded, index));
                    counts[usize::from(inner)] += 1;
                }
            }
        }
        // A one-point direction has no inner points.
        assert_eq!(counts[1], 0);
        assert!(Region::inner_range(9).is_empty());
        assert_eq!(Region::inner_range(24), 8..16);
    }
}
