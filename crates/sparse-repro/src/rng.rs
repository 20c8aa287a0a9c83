//! Seeded randomness: one master seed, independent named sub-streams, seeded dropout.
//!
//! candle's CPU RNG cannot be seeded, so every random decision of a reproduction
//! (initialisation, dropout, masks, shuffling) draws from a [`ChaCha8Rng`] built here.
//! Each concern gets its own stream, derived from the run seed and a label, so that
//! adding a dropout layer does not change the initial weights or the data order.
//!
//! ```
//! use sparse_repro::rng::{derive_rng, rng_from_seed};
//! use rand::Rng;
//! let mut init = derive_rng(0, "init");
//! let mut shuffle = derive_rng(0, "shuffle");
//! let a: u64 = init.random();
//! let b: u64 = shuffle.random();
//! assert_ne!(a, b);
//! // The same (seed, label) always gives the same stream.
//! assert_eq!(a, derive_rng(0, "init").random::<u64>());
//! let _plain = rng_from_seed(42);
//! ```

use candle_core::{Device, Shape, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::error::{HarnessError, HarnessResult};

/// Well-known sub-stream labels, so that crates agree on spelling.
pub mod streams {
    /// Weight initialisation.
    pub const INIT: &str = "init";
    /// Dropout masks.
    pub const DROPOUT: &str = "dropout";
    /// Sparsity masks (random initial masks, random regrowth).
    pub const MASK: &str = "mask";
    /// Epoch shuffling of the training set.
    pub const SHUFFLE: &str = "shuffle";
    /// The train/validation split.
    pub const SPLIT: &str = "split";
    /// Data augmentation.
    pub const AUGMENT: &str = "augment";
}

/// A ChaCha8 generator seeded from `seed` (via `SeedableRng::seed_from_u64`, portable).
pub fn rng_from_seed(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Derives the seed of the sub-stream `label` of the run seed `seed`.
///
/// It is the first 8 bytes (little endian) of SHA-256 over `seed` (little endian)
/// followed by the label's UTF-8 bytes: stable across platforms and releases, and
/// unrelated for different labels or seeds.
pub fn derive_seed(seed: u64, label: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(label.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The generator of the sub-stream `label` of the run seed `seed`:
/// `rng_from_seed(derive_seed(seed, label))`.
pub fn derive_rng(seed: u64, label: &str) -> ChaCha8Rng {
    rng_from_seed(derive_seed(seed, label))
}

/// A seeded inverted-dropout mask of `shape`, as an `f32` tensor on `device`.
///
/// Each entry is kept with probability `1 - p` and then holds `1 / (1 - p)`, otherwise
/// `0`, so that `x * mask` has the expectation of `x` (PyTorch's convention).
/// `p` must lie in `[0, 1)`; `p = 0` gives a tensor of ones.
pub fn dropout_mask<R: Rng + ?Sized>(
    rng: &mut R,
    shape: impl Into<Shape>,
    p: f32,
    device: &Device,
) -> HarnessResult<Tensor> {
    if !(0.0..1.0).contains(&p) {
        return Err(HarnessError::invalid(
            "p",
            p,
            "dropout probability must be in [0, 1)",
        ));
    }
    let shape = shape.into();
    let scale = 1.0 / (1.0 - p);
    let values: Vec<f32> = (0..shape.elem_count())
        .map(|_| if rng.random::<f32>() < p { 0.0 } else { scale })
        .collect();
    Ok(Tensor::from_vec(values, shape, device)?)
}

/// Applies seeded inverted dropout to `xs` when `train` is true; returns `xs` unchanged otherwise.
pub fn dropout<R: Rng + ?Sized>(
    rng: &mut R,
    xs: &Tensor,
    p: f32,
    train: bool,
) -> HarnessResult<Tensor> {
    if !train || p == 0.0 {
        if !(0.0..1.0).contains(&p) {
            return Err(HarnessError::invalid(
                "p",
                p,
                "dropout probability must be in [0, 1)",
            ));
        }
        return Ok(xs.clone());
    }
    let mask = dropout_mask(rng, xs.shape(), p, xs.device())?.to_dtype(xs.dtype())?;
    Ok(xs.mul(&mask)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(rng: &mut ChaCha8Rng, n: usize) -> Vec<u64> {
        (0..n).map(|_| rng.random()).collect()
    }

    #[test]
    fn same_seed_same_stream_different_seed_different() {
        assert_eq!(
            draws(&mut rng_from_seed(7), 8),
            draws(&mut rng_from_seed(7), 8)
        );
        assert_ne!(
            draws(&mut rng_from_seed(7), 8),
            draws(&mut rng_from_seed(8), 8)
        );
    }

    #[test]
    fn sub_streams_are_distinct_and_reproducible() {
        let init = draws(&mut derive_rng(3, streams::INIT), 16);
        let shuffle = draws(&mut derive_rng(3, streams::SHUFFLE), 16);
        let master = draws(&mut rng_from_seed(3), 16);
        assert_ne!(init, shuffle);
        assert_ne!(init, master);
        assert_eq!(init, draws(&mut derive_rng(3, streams::INIT), 16));
        assert_ne!(derive_seed(3, "init"), derive_seed(4, "init"));
    }

    #[test]
    fn drawing_from_one_stream_does_not_move_another() {
        let mut init = derive_rng(5, streams::INIT);
        let mut dropout = derive_rng(5, streams::DROPOUT);
        let _ = draws(&mut dropout, 1000);
        let after = draws(&mut init, 4);
        assert_eq!(after, draws(&mut derive_rng(5, streams::INIT), 4));
    }

    #[test]
    fn dropout_mask_values_and_rate() -> HarnessResult<()> {
        let mut rng = rng_from_seed(0);
        let mask = dropout_mask(&mut rng, (100, 100), 0.25, &Device::Cpu)?;
        let values = mask.flatten_all()?.to_vec1::<f32>()?;
        let scale = 1.0 / 0.75;
        assert!(values.iter().all(|&v| v == 0.0 || (v - scale).abs() < 1e-6));
        let dropped = values.iter().filter(|&&v| v == 0.0).count() as f64 / 10_000.0;
        // 10 000 Bernoulli(0.25): std of the rate is 0.0043, so 0.02 is > 4 sigma.
        assert!((dropped - 0.25).abs() < 0.02, "dropped rate {dropped}");
        let again = dropout_mask(&mut rng_from_seed(0), (100, 100), 0.25, &Device::Cpu)?;
        assert_eq!(values, again.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }

    #[test]
    fn dropout_rejects_bad_p_and_is_identity_in_eval() -> HarnessResult<()> {
        let mut rng = rng_from_seed(0);
        assert!(dropout_mask(&mut rng, 4, 1.0, &Device::Cpu).is_err());
        assert!(dropout_mask(&mut rng, 4, -0.1, &Device::Cpu).is_err());
        let xs = Tensor::new(&[1f32, 2., 3.], &Device::Cpu)?;
        let ys = dropout(&mut rng, &xs, 0.5, false)?;
        assert_eq!(ys.to_vec1::<f32>()?, vec![1., 2., 3.]);
        Ok(())
    }
}
