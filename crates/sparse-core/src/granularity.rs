//! The granularity of a mask: which groups of weights are kept or removed together.
//!
//! All four papers of methods note B are unstructured; the structured options follow
//! the taxonomy of "Ten Lessons in Sparseland" (§6.3) and Random_Pruning's N:M flags.
//! [`mask_from_scores`] turns per-weight scores into a mask of the requested
//! granularity. Scores are "higher = more important": pass magnitudes `|W|`, SNIP
//! scores, ... as computed by [`crate::saliency`].
//!
//! - [`Granularity::Unstructured`]: exactly the `keep` highest scores, ties broken by
//!   the lower flat index (deterministic).
//! - [`Granularity::NM`]: in every group of `m` consecutive weights along the input
//!   dimension (the flattened rest of each output row, i.e. `numel / shape[0]`
//!   weights per row), exactly the `n` highest-scoring ones are kept. `keep` is
//!   ignored: the density is `n / m` by construction.
//! - [`Granularity::Channel`]: whole output channels (slices along dim 0), ranked by
//!   the mean of `|score|` over the channel; `round(keep / channel_size)` channels kept.
//! - [`Granularity::Block`]: `rows x cols` blocks of the 2-D view `(shape[0], rest)`,
//!   ranked by the mean `|score|` in the block; `round(keep / (rows * cols))` blocks
//!   kept. `rows` must divide `shape[0]` and `cols` the rest.

use std::cmp::Ordering;

use crate::error::{Result, SparseError};
use crate::mask::Mask;
use crate::validate::check_nonzero;

/// How weights are grouped when a mask is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// Every weight on its own.
    Unstructured,
    /// `n` weights kept in every group of `m` consecutive input weights (2:4, 8:16, ...).
    NM {
        /// Weights kept per group, `1 <= n <= m`.
        n: usize,
        /// Group size, `m >= 1`.
        m: usize,
    },
    /// Whole output channels (filters / rows of a linear weight).
    Channel,
    /// Rectangular blocks of the 2-D view `(shape[0], numel / shape[0])`.
    Block {
        /// Block height (along dim 0), `>= 1`.
        rows: usize,
        /// Block width (along the flattened remaining dims), `>= 1`.
        cols: usize,
    },
}

impl Granularity {
    /// A checked N:M granularity (`1 <= n <= m`).
    pub fn nm(n: usize, m: usize) -> Result<Self> {
        let g = Self::NM { n, m };
        g.validate()?;
        Ok(g)
    }

    /// A checked block granularity (`rows, cols >= 1`).
    pub fn block(rows: usize, cols: usize) -> Result<Self> {
        let g = Self::Block { rows, cols };
        g.validate()?;
        Ok(g)
    }

    /// Checks the hyperparameters; the error names the offending one.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Unstructured | Self::Channel => Ok(()),
            Self::NM { n, m } => {
                check_nonzero("m", m)?;
                if n == 0 || n > m {
                    return Err(SparseError::invalid(
                        "n",
                        n,
                        format!("must lie in 1..={m} (m)"),
                    ));
                }
                Ok(())
            }
            Self::Block { rows, cols } => {
                check_nonzero("rows", rows)?;
                check_nonzero("cols", cols)
            }
        }
    }
}

/// "Higher score first, then lower index": a total order, so selection is deterministic.
fn by_score_desc(scores: &[f32]) -> impl Fn(&usize, &usize) -> Ordering + '_ {
    move |&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b))
}

/// Indices of the `k` best entries of `scores` (any order).
fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    if k == 0 {
        return Vec::new();
    }
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, by_score_desc(scores));
        idx.truncate(k);
    }
    idx
}

/// A mask of `granularity` keeping the highest `scores` (row-major, one per weight of
/// `shape`); see the module docs for how `keep` is read by each granularity.
///
/// Errors: `scores.len() != numel` (shape mismatch), a NaN score, `keep > numel`, an
/// invalid granularity, or a shape the N:M / block groups do not tile.
pub fn mask_from_scores(
    scores: &[f32],
    shape: &[usize],
    keep: usize,
    granularity: Granularity,
) -> Result<Mask> {
    granularity.validate()?;
    let numel: usize = shape.iter().product();
    if scores.len() != numel {
        return Err(SparseError::ShapeMismatch {
            what: "scores".into(),
            expected: shape.to_vec(),
            got: vec![scores.len()],
        });
    }
    if let Some(i) = scores.iter().position(|s| s.is_nan()) {
        return Err(SparseError::invalid_input(
            "scores",
            format!("NaN score at flat index {i}"),
        ));
    }
    if keep > numel {
        return Err(SparseError::invalid_input(
            "keep",
            format!("{keep} weights requested but the tensor has {numel}"),
        ));
    }
    let mut bits = vec![0u8; numel];
    let rows = shape.first().copied().unwrap_or(1).max(1);
    let row_len = numel.checked_div(rows).unwrap_or(0);
    match granularity {
        Granularity::Unstructured => {
            for i in top_k(scores, keep) {
                bits[i] = 1;
            }
        }
        Granularity::NM { n, m } => {
            if row_len % m != 0 {
                return Err(SparseError::invalid_input(
                    "N:M group size",
                    format!(
                        "m = {m} does not divide the input dimension {row_len} of shape {shape:?}"
                    ),
                ));
            }
            for (g, group) in scores.chunks(m).enumerate() {
                for i in top_k(group, n) {
                    bits[g * m + i] = 1;
                }
            }
        }
        Granularity::Channel => {
            if row_len > 0 {
                let channel_scores: Vec<f32> = scores.chunks(row_len).map(mean_abs).collect();
                let channels = (keep as f64 / row_len as f64).round() as usize;
                for c in top_k(&channel_scores, channels.min(rows)) {
                    bits[c * row_len..(c + 1) * row_len].fill(1);
                }
            }
        }
        Granularity::Block { rows: bh, cols: bw } => {
            if rows % bh != 0 || row_len % bw != 0 {
                return Err(SparseError::invalid_input(
                    "block size",
                    format!(
                        "{bh}x{bw} blocks do not tile the 2-D view {rows}x{row_len} of shape {shape:?}"
                    ),
                ));
            }
            let (grid_r, grid_c) = (rows / bh, row_len / bw);
            let block_scores: Vec<f32> = (0..grid_r * grid_c)
                .map(|b| {
                    let (br, bc) = (b / grid_c, b % grid_c);
                    let total: f32 = (0..bh)
                        .map(|r| {
                            let start = (br * bh + r) * row_len + bc * bw;
                            scores[start..start + bw]
                                .iter()
                                .map(|s| s.abs())
                                .sum::<f32>()
                        })
                        .sum();
                    total / (bh * bw) as f32
                })
                .collect();
            let blocks = (keep as f64 / (bh * bw) as f64).round() as usize;
            for b in top_k(&block_scores, blocks.min(grid_r * grid_c)) {
                let (br, bc) = (b / grid_c, b % grid_c);
                for r in 0..bh {
                    let start = (br * bh + r) * row_len + bc * bw;
                    bits[start..start + bw].fill(1);
                }
            }
        }
    }
    Mask::from_bits(shape, bits)
}

fn mean_abs(values: &[f32]) -> f32 {
    values.iter().map(|v| v.abs()).sum::<f32>() / values.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstructured_keeps_exact_count_with_index_tie_break() {
        let scores = [0.5, 0.9, 0.5, 0.1, 0.5, 0.9];
        let m = mask_from_scores(&scores, &[2, 3], 3, Granularity::Unstructured).unwrap();
        // Both 0.9s, then the lowest-index 0.5.
        assert_eq!(m.as_bits(), &[1, 1, 0, 0, 0, 1]);
        let m = mask_from_scores(&scores, &[2, 3], 0, Granularity::Unstructured).unwrap();
        assert_eq!(m.nnz(), 0);
        let m = mask_from_scores(&scores, &[2, 3], 6, Granularity::Unstructured).unwrap();
        assert_eq!(m.nnz(), 6);
        assert!(mask_from_scores(&scores, &[2, 3], 7, Granularity::Unstructured).is_err());
        assert!(mask_from_scores(&scores, &[2, 2], 1, Granularity::Unstructured).is_err());
        let nan = [0.1, f32::NAN];
        assert!(mask_from_scores(&nan, &[2], 1, Granularity::Unstructured).is_err());
    }

    #[test]
    fn n_m_keeps_exactly_n_of_every_m() {
        // Shape [3, 2, 2, 2]: rows of 8 inputs, groups of 4.
        let scores: Vec<f32> = (0..24).map(|i| ((i * 7) % 11) as f32).collect();
        let m =
            mask_from_scores(&scores, &[3, 2, 2, 2], 0, Granularity::nm(2, 4).unwrap()).unwrap();
        for (g, group) in m.as_bits().chunks(4).enumerate() {
            assert_eq!(
                group.iter().map(|&b| b as usize).sum::<usize>(),
                2,
                "group {g}"
            );
            let s = &scores[g * 4..g * 4 + 4];
            // The kept ones are the two largest of their group.
            let kept_min = (0..4)
                .filter(|&i| group[i] == 1)
                .map(|i| s[i])
                .fold(f32::MAX, f32::min);
            let dropped_max = (0..4)
                .filter(|&i| group[i] == 0)
                .map(|i| s[i])
                .fold(f32::MIN, f32::max);
            assert!(kept_min >= dropped_max);
        }
        assert_eq!(m.nnz(), 12);
        // m must divide the row length (6 here).
        assert!(mask_from_scores(&[0.0; 12], &[2, 6], 0, Granularity::nm(2, 4).unwrap()).is_err());
    }

    #[test]
    fn bad_granularities_are_rejected_with_the_parameter_named() {
        let err = Granularity::nm(5, 4).unwrap_err();
        assert!(
            matches!(err, SparseError::InvalidHyperparameter { name: "n", .. }),
            "{err}"
        );
        let err = Granularity::nm(0, 4).unwrap_err();
        assert!(matches!(
            err,
            SparseError::InvalidHyperparameter { name: "n", .. }
        ));
        let err = Granularity::nm(0, 0).unwrap_err();
        assert!(matches!(
            err,
            SparseError::InvalidHyperparameter { name: "m", .. }
        ));
        let err = Granularity::block(0, 2).unwrap_err();
        assert!(matches!(
            err,
            SparseError::InvalidHyperparameter { name: "rows", .. }
        ));
        let err = Granularity::block(2, 0).unwrap_err();
        assert!(matches!(
            err,
            SparseError::InvalidHyperparameter { name: "cols", .. }
        ));
        let err =
            mask_from_scores(&[0.0; 8], &[2, 4], 0, Granularity::NM { n: 3, m: 2 }).unwrap_err();
        assert!(matches!(
            err,
            SparseError::InvalidHyperparameter { name: "n", .. }
        ));
    }

    #[test]
    fn channel_masks_are_whole_channels() {
        // 4 output channels of 3 weights; channel means |s| = 1, 5, 2, 4.
        let scores = [1.0, -1.0, 1.0, 5.0, 5.0, -5.0, 2.0, 2.0, 2.0, 4.0, 0.0, 8.0];
        // keep 7 weights ≈ round(7/3) = 2 channels: channels 1 and 3.
        let m = mask_from_scores(&scores, &[4, 3], 7, Granularity::Channel).unwrap();
        assert_eq!(m.as_bits(), &[0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]);
        for ch in m.as_bits().chunks(3) {
            assert!(ch.iter().all(|&b| b == ch[0]));
        }
    }

    #[test]
    fn block_masks_are_whole_blocks() {
        // 4x4 view, 2x2 blocks; the bottom-right block has the largest scores.
        let mut scores = vec![0.1f32; 16];
        for (r, c) in [(2, 2), (2, 3), (3, 2), (3, 3)] {
            scores[r * 4 + c] = 1.0;
        }
        let m = mask_from_scores(&scores, &[4, 4], 4, Granularity::block(2, 2).unwrap()).unwrap();
        let expect: Vec<u8> = (0..16)
            .map(|i| u8::from(i / 4 >= 2 && i % 4 >= 2))
            .collect();
        assert_eq!(m.as_bits(), expect.as_slice());
        assert!(mask_from_scores(&scores, &[4, 4], 4, Granularity::block(3, 2).unwrap()).is_err());
    }
}
