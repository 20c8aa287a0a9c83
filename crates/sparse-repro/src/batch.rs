//! Mini-batching: shuffled and fixed-order index batches, batch tensors from flat
//! sample stores, and a seeded train/validation split.
//!
//! Loaders produce one flat `Vec<f32>` of samples (sample `i` occupies
//! `samples[i * len .. (i + 1) * len]` with `len` the product of the per-sample shape)
//! and one `Vec<u32>` of labels. Batches are index lists into that store.
//!
//! ```
//! use candle_core::Device;
//! use sparse_repro::batch::{BatchIndices, gather_batch};
//! use sparse_repro::rng::{derive_rng, streams};
//! // 5 samples of shape [2], labels 0..5.
//! let samples: Vec<f32> = (0..10).map(|v| v as f32).collect();
//! let labels: Vec<u32> = (0..5).collect();
//! let mut rng = derive_rng(0, streams::SHUFFLE);
//! let batches = BatchIndices::shuffled(5, 2, false, &mut rng).unwrap();
//! assert_eq!(batches.num_batches(), 3);
//! for indices in batches {
//!     let (xs, ys) = gather_batch(&samples, &[2], &labels, &indices, &Device::Cpu).unwrap();
//!     assert_eq!(xs.dims(), &[indices.len(), 2]);
//!     assert_eq!(ys.dims(), &[indices.len()]);
//! }
//! ```

use candle_core::{Device, Tensor};
use rand::Rng;

use crate::error::{HarnessError, HarnessResult};

/// A uniformly random permutation of `0..n` (Fisher–Yates, driven by `rng`).
pub fn shuffled_indices<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        indices.swap(i, j);
    }
    indices
}

/// An iterator over the batches (lists of sample indices) of one epoch.
#[derive(Debug, Clone)]
pub struct BatchIndices {
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
    position: usize,
}

impl BatchIndices {
    /// The batches of one training epoch over `n` samples, in a fresh random order.
    ///
    /// With `drop_last`, a final batch smaller than `batch_size` is skipped.
    pub fn shuffled<R: Rng + ?Sized>(
        n: usize,
        batch_size: usize,
        drop_last: bool,
        rng: &mut R,
    ) -> HarnessResult<Self> {
        Self::from_order(shuffled_indices(n, rng), batch_size, drop_last)
    }

    /// The batches of `0..n` in order (for evaluation).
    pub fn sequential(n: usize, batch_size: usize, drop_last: bool) -> HarnessResult<Self> {
        Self::from_order((0..n).collect(), batch_size, drop_last)
    }

    /// The batches of an explicit index list, in the given order (e.g. a split's
    /// validation indices).
    pub fn from_order(
        order: Vec<usize>,
        batch_size: usize,
        drop_last: bool,
    ) -> HarnessResult<Self> {
        if batch_size == 0 {
            return Err(HarnessError::invalid("batch_size", 0, "must be at least 1"));
        }
        Ok(Self {
            order,
            batch_size,
            drop_last,
            position: 0,
        })
    }

    /// The total number of batches this iterator yields from the start.
    pub fn num_batches(&self) -> usize {
        let n = self.order.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The order of all sample indices of the epoch.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

impl Iterator for BatchIndices {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        let remaining = self.order.len() - self.position;
        if remaining == 0 || (self.drop_last && remaining < self.batch_size) {
            return None;
        }
        let end = self.position + remaining.min(self.batch_size);
        let batch = self.order[self.position..end].to_vec();
        self.position = end;
        Some(batch)
    }
}

/// Stacks the samples `indices` of a flat store into one `f32` tensor of shape
/// `[indices.len(), sample_shape...]` on `device`.
pub fn gather_samples(
    samples: &[f32],
    sample_shape: &[usize],
    indices: &[usize],
    device: &Device,
) -> HarnessResult<Tensor> {
    let len: usize = sample_shape.iter().product();
    if len == 0 {
        return Err(HarnessError::invalid(
            "sample_shape",
            format!("{sample_shape:?}"),
            "every dimension must be at least 1",
        ));
    }
    if !samples.len().is_multiple_of(len) {
        return Err(HarnessError::SizeMismatch {
            what: format!("sample store length (a multiple of the sample size {len})"),
            expected: samples.len() / len * len,
            got: samples.len(),
        });
    }
    let count = samples.len() / len;
    let mut data = Vec::with_capacity(indices.len() * len);
    for &i in indices {
        if i >= count {
            return Err(HarnessError::invalid(
                "indices",
                i,
                format!("sample index out of range: the store holds {count} samples"),
            ));
        }
        data.extend_from_slice(&samples[i * len..(i + 1) * len]);
    }
    let mut shape = Vec::with_capacity(sample_shape.len() + 1);
    shape.push(indices.len());
    shape.extend_from_slice(sample_shape);
    Ok(Tensor::from_vec(data, shape, device)?)
}

/// The labels `indices` as a `u32` tensor of shape `[indices.len()]` on `device`.
pub fn gather_labels(labels: &[u32], indices: &[usize], device: &Device) -> HarnessResult<Tensor> {
    let picked = indices
        .iter()
        .map(|&i| {
            labels.get(i).copied().ok_or_else(|| {
                HarnessError::invalid(
                    "indices",
                    i,
                    format!(
                        "label index out of range: there are {} labels",
                        labels.len()
                    ),
                )
            })
        })
        .collect::<HarnessResult<Vec<u32>>>()?;
    Ok(Tensor::from_vec(picked, indices.len(), device)?)
}

/// One batch of a classification store: `(samples, labels)` as returned by
/// [`gather_samples`] and [`gather_labels`]. The store must hold exactly one label
/// per sample.
pub fn gather_batch(
    samples: &[f32],
    sample_shape: &[usize],
    labels: &[u32],
    indices: &[usize],
    device: &Device,
) -> HarnessResult<(Tensor, Tensor)> {
    let len: usize = sample_shape.iter().product();
    if len > 0 && samples.len() / len != labels.len() {
        return Err(HarnessError::SizeMismatch {
            what: "number of labels (one per sample)".into(),
            expected: samples.len() / len,
            got: labels.len(),
        });
    }
    Ok((
        gather_samples(samples, sample_shape, indices, device)?,
        gather_labels(labels, indices, device)?,
    ))
}

/// A partition of `0..n` into training and held-out validation indices, each sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Indices kept for training.
    pub train: Vec<usize>,
    /// Indices held out for validation (model selection), never trained on.
    pub validation: Vec<usize>,
}

/// Holds out `round(n * validation_fraction)` of `0..n`, chosen by a seeded permutation.
///
/// `validation_fraction` must lie in `[0, 1)`. Use a dedicated stream
/// (e.g. [`crate::rng::streams::SPLIT`]) so that the split does not depend on other draws.
pub fn train_validation_split<R: Rng + ?Sized>(
    n: usize,
    validation_fraction: f64,
    rng: &mut R,
) -> HarnessResult<Split> {
    if !(0.0..1.0).contains(&validation_fraction) {
        return Err(HarnessError::invalid(
            "validation_fraction",
            validation_fraction,
            "must be in [0, 1)",
        ));
    }
    let held_out = (n as f64 * validation_fraction).round() as usize;
    let permutation = shuffled_indices(n, rng);
    let mut validation = permutation[..held_out].to_vec();
    let mut train = permutation[held_out..].to_vec();
    validation.sort_unstable();
    train.sort_unstable();
    Ok(Split { train, validation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::rng_from_seed;

    #[test]
    fn shuffle_is_a_permutation_reproducible_and_seed_dependent() {
        let a = shuffled_indices(100, &mut rng_from_seed(1));
        let b = shuffled_indices(100, &mut rng_from_seed(1));
        let c = shuffled_indices(100, &mut rng_from_seed(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn consecutive_epochs_differ() {
        let mut rng = rng_from_seed(9);
        let first: Vec<_> = BatchIndices::shuffled(50, 8, false, &mut rng)
            .unwrap()
            .collect();
        let second: Vec<_> = BatchIndices::shuffled(50, 8, false, &mut rng)
            .unwrap()
            .collect();
        assert_ne!(first, second);
    }

    #[test]
    fn batch_sizes_with_and_without_drop_last() {
        let keep: Vec<Vec<usize>> = BatchIndices::sequential(10, 4, false).unwrap().collect();
        assert_eq!(keep, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        let drop: Vec<Vec<usize>> = BatchIndices::sequential(10, 4, true).unwrap().collect();
        assert_eq!(drop, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        assert_eq!(
            BatchIndices::sequential(10, 4, false)
                .unwrap()
                .num_batches(),
            3
        );
        assert_eq!(
            BatchIndices::sequential(10, 4, true).unwrap().num_batches(),
            2
        );
        assert!(BatchIndices::sequential(10, 0, true).is_err());
        let mut rng = rng_from_seed(0);
        let seen: usize = BatchIndices::shuffled(10, 3, false, &mut rng)
            .unwrap()
            .map(|b| b.len())
            .sum();
        assert_eq!(seen, 10);
    }

    #[test]
    fn gather_batch_picks_the_right_samples() -> HarnessResult<()> {
        // 3 samples of shape [2, 2]: sample i holds 4 copies of i.
        let samples: Vec<f32> = (0..3).flat_map(|i| [i as f32; 4]).collect();
        let labels = vec![10, 11, 12];
        let (xs, ys) = gather_batch(&samples, &[2, 2], &labels, &[2, 0], &Device::Cpu)?;
        assert_eq!(xs.dims(), &[2, 2, 2]);
        assert_eq!(
            xs.flatten_all()?.to_vec1::<f32>()?,
            vec![2., 2., 2., 2., 0., 0., 0., 0.]
        );
        assert_eq!(ys.to_vec1::<u32>()?, vec![12, 10]);
        assert!(gather_batch(&samples, &[2, 2], &labels, &[3], &Device::Cpu).is_err());
        assert!(gather_batch(&samples, &[2, 2], &labels[..2], &[0], &Device::Cpu).is_err());
        assert!(gather_samples(&samples[..5], &[2, 2], &[0], &Device::Cpu).is_err());
        Ok(())
    }

    #[test]
    fn split_sizes_disjoint_and_seeded() -> HarnessResult<()> {
        let split = train_validation_split(1000, 0.1, &mut rng_from_seed(4))?;
        assert_eq!(split.validation.len(), 100);
        assert_eq!(split.train.len(), 900);
        let mut all: Vec<usize> = split
            .train
            .iter()
            .chain(&split.validation)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(
            split,
            train_validation_split(1000, 0.1, &mut rng_from_seed(4))?
        );
        assert_ne!(
            split,
            train_validation_split(1000, 0.1, &mut rng_from_seed(5))?
        );
        assert_eq!(
            train_validation_split(15, 0.1, &mut rng_from_seed(4))?
                .validation
                .len(),
            2
        );
        assert!(train_validation_split(10, 1.0, &mut rng_from_seed(4)).is_err());
        Ok(())
    }
}
