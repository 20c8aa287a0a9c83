//! A binary mask over one weight tensor.
//!
//! Masks live on the host as bytes (`1` = the weight exists, `0` = pruned). Mask
//! bookkeeping (sorting, top-k, sampling) is exact and cheap on `Vec`s; the tensor
//! form is built on demand to multiply weights or buffers.

use candle_core::{DType, Device, Tensor};

use crate::error::{Result, SparseError};

/// A binary mask with the shape of the weight it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    shape: Vec<usize>,
    bits: Vec<u8>,
}

impl Mask {
    /// A mask that keeps every weight.
    pub fn ones(shape: &[usize]) -> Self {
        Self {
            shape: shape.to_vec(),
            bits: vec![1; shape.iter().product()],
        }
    }

    /// A mask that keeps no weight.
    pub fn zeros(shape: &[usize]) -> Self {
        Self {
            shape: shape.to_vec(),
            bits: vec![0; shape.iter().product()],
        }
    }

    /// A mask from row-major bytes; any non-zero byte counts as active.
    pub fn from_bits(shape: &[usize], bits: Vec<u8>) -> Result<Self> {
        let numel: usize = shape.iter().product();
        if bits.len() != numel {
            return Err(SparseError::ShapeMismatch {
                what: "mask bits".into(),
                expected: shape.to_vec(),
                got: vec![bits.len()],
            });
        }
        let bits = bits.into_iter().map(|b| u8::from(b != 0)).collect();
        Ok(Self {
            shape: shape.to_vec(),
            bits,
        })
    }

    /// A mask from booleans in row-major order.
    pub fn from_bools(shape: &[usize], keep: &[bool]) -> Result<Self> {
        Self::from_bits(shape, keep.iter().map(|&k| u8::from(k)).collect())
    }

    /// The mask of the non-zero entries of a tensor.
    pub fn from_nonzero(tensor: &Tensor) -> Result<Self> {
        let values = tensor
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        let bits = values.iter().map(|&v| u8::from(v != 0.0)).collect();
        Ok(Self {
            shape: tensor.dims().to_vec(),
            bits,
        })
    }

    /// The shape of the masked tensor.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of entries (active or not).
    pub fn numel(&self) -> usize {
        self.bits.len()
    }

    /// Number of active entries.
    pub fn nnz(&self) -> usize {
        self.bits.iter().map(|&b| b as usize).sum()
    }

    /// Share of active entries, in `[0, 1]` (1 for an empty tensor).
    pub fn density(&self) -> f64 {
        if self.bits.is_empty() {
            1.0
        } else {
            self.nnz() as f64 / self.numel() as f64
        }
    }

    /// Whether the flat position `index` is active.
    pub fn is_active(&self, index: usize) -> bool {
        self.bits[index] != 0
    }

    /// The bytes, row-major, `0` or `1`.
    pub fn as_bits(&self) -> &[u8] {
        &self.bits
    }

    /// Sets one flat position active or inactive.
    pub fn set(&mut self, index: usize, active: bool) {
        self.bits[index] = u8::from(active);
    }

    /// Flat indices of the active entries, ascending.
    pub fn active_indices(&self) -> Vec<usize> {
        (0..self.bits.len())
            .filter(|&i| self.bits[i] != 0)
            .collect()
    }

    /// Flat indices of the inactive entries, ascending.
    pub fn inactive_indices(&self) -> Vec<usize> {
        (0..self.bits.len())
            .filter(|&i| self.bits[i] == 0)
            .collect()
    }

    /// The mask as a tensor of `dtype` (`1` / `0`) on `device`.
    pub fn to_tensor(&self, dtype: DType, device: &Device) -> Result<Tensor> {
        let t = Tensor::from_vec(self.bits.clone(), self.shape.as_slice(), device)?;
        Ok(t.to_dtype(dtype)?)
    }

    /// Element-wise OR (used for the ITOP "ever fired" record).
    pub fn union_with(&mut self, other: &Mask) -> Result<()> {
        self.check_same_shape(other)?;
        for (a, &b) in self.bits.iter_mut().zip(&other.bits) {
            *a |= b;
        }
        Ok(())
    }

    /// Number of positions where `self` and `other` differ.
    pub fn hamming_distance(&self, other: &Mask) -> Result<usize> {
        self.check_same_shape(other)?;
        Ok(self
            .bits
            .iter()
            .zip(&other.bits)
            .filter(|(a, b)| a != b)
            .count())
    }

    fn check_same_shape(&self, other: &Mask) -> Result<()> {
        if self.shape != other.shape {
            return Err(SparseError::ShapeMismatch {
                what: "mask".into(),
                expected: self.shape.clone(),
                got: other.shape.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_density() {
        let m = Mask::from_bits(&[2, 2], vec![1, 0, 5, 0]).unwrap();
        assert_eq!(m.nnz(), 2);
        assert_eq!(m.as_bits(), &[1, 0, 1, 0]);
        assert!((m.density() - 0.5).abs() < 1e-12);
        assert_eq!(m.active_indices(), vec![0, 2]);
        assert_eq!(m.inactive_indices(), vec![1, 3]);
    }

    #[test]
    fn wrong_length_is_an_error() {
        assert!(Mask::from_bits(&[2, 3], vec![1; 5]).is_err());
    }

    #[test]
    fn union_and_distance() {
        let mut a = Mask::from_bits(&[4], vec![1, 0, 0, 0]).unwrap();
        let b = Mask::from_bits(&[4], vec![0, 1, 0, 0]).unwrap();
        assert_eq!(a.hamming_distance(&b).unwrap(), 2);
        a.union_with(&b).unwrap();
        assert_eq!(a.nnz(), 2);
        assert!(a.union_with(&Mask::ones(&[3])).is_err());
    }
}
