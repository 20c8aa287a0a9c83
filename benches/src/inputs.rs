//! Seeded benchmark inputs.

use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparse_core::Mask;

/// Uniform(-1, 1) f32 tensor on the CPU.
pub fn uniform(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}

/// A mask with exactly `round(density * numel)` active entries, uniformly placed.
pub fn random_mask(shape: &[usize], density: f64, seed: u64) -> Result<Mask> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        idx.swap(i, rng.random_range(0..=i));
    }
    let mut bits = vec![0u8; n];
    for &i in &idx[..(density * n as f64).round() as usize] {
        bits[i] = 1;
    }
    Ok(Mask::from_bits(shape, bits)?)
}

/// `w ⊙ mask`.
pub fn masked(w: &Tensor, mask: &Mask) -> Result<Tensor> {
    Ok((w * mask.to_tensor(w.dtype(), w.device())?)?)
}
