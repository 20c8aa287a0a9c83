//! Mean average distance (MAD, Chen et al. 2020, "Measuring and Relieving the
//! Over-smoothing Problem"): how far apart node embeddings are. Over-smoothed
//! embeddings all point the same way and have a MAD near 0.
//!
//! `D_ij = 1 − cos(h_i, h_j)`; each node's average is taken over its non-zero
//! distances, and MAD is the mean of those averages over the nodes that have any
//! (the global MAD, every pair of nodes counted). A zero embedding has cosine 0 with
//! everything (the norm is clamped at `1e-12`), i.e. distance 1.

use candle_core::{D, DType, Tensor};

use crate::error::Result;

/// The MAD of the rows of `embeddings` (`(nodes, dim)`).
pub fn mean_average_distance(embeddings: &Tensor) -> Result<f64> {
    let h = embeddings.to_dtype(DType::F64)?;
    let norm = h
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    let unit = h.broadcast_div(&norm)?;
    let cosine = unit.matmul(&unit.t()?)?;
    let distance = (1.0 - cosine)?.clamp(0.0, 2.0)?;
    let rows = distance.to_vec2::<f64>()?;
    let mut sum = 0.0;
    let mut counted = 0usize;
    for row in rows {
        // Distances below this are rounding noise of identical directions.
        let nonzero: Vec<f64> = row.into_iter().filter(|&d| d > 1e-12).collect();
        if !nonzero.is_empty() {
            sum += nonzero.iter().sum::<f64>() / nonzero.len() as f64;
            counted += 1;
        }
    }
    Ok(if counted == 0 {
        0.0
    } else {
        sum / counted as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn identical_directions_have_zero_mad_and_orthogonal_ones_one() {
        let dev = Device::Cpu;
        let same = Tensor::new(&[[1f32, 2.], [2., 4.], [0.5, 1.]], &dev).unwrap();
        assert_eq!(mean_average_distance(&same).unwrap(), 0.0);
        let orth = Tensor::new(&[[1f32, 0.], [0., 3.]], &dev).unwrap();
        assert!((mean_average_distance(&orth).unwrap() - 1.0).abs() < 1e-12);
        // Node 0 ⟂ node 1, node 2 opposite node 0: row averages (1+2)/2, (1+1)/2, (2+1)/2.
        let mixed = Tensor::new(&[[1f32, 0.], [0., 1.], [-1., 0.]], &dev).unwrap();
        let expected = (1.5 + 1.0 + 1.5) / 3.0;
        assert!((mean_average_distance(&mixed).unwrap() - expected).abs() < 1e-12);
    }
}
