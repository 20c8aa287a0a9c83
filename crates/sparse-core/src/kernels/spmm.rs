//! Constant sparse × dense products with backward, as a candle custom op.
//!
//! GNNs multiply a fixed sparse matrix (a normalised adjacency, sparse node
//! features) with dense activations or weights every step. Through candle's
//! `index_select` + `broadcast_mul` + `index_add` this costs several passes over an
//! `(nnz, k)` temporary; [`SparseMatrix::matmul`] is one CSR pass, parallel over
//! rows with rayon, and its backward is the same product with the transpose
//! (precomputed). Each output row is summed in a fixed order, so results are
//! deterministic whatever the thread count.
//!
//! The sparse entries are constants (no gradient flows to them); only the dense
//! operand is differentiated. Use [`SparseMatrix::with_values`] for per-step
//! values on the same pattern (e.g. dropout on sparse features).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use sparse_core::spmm::SparseMatrix;
//! // [[1, 0], [2, 3]]
//! let a = SparseMatrix::from_csr(2, 2, vec![0, 1, 3], vec![0, 0, 1], vec![1.0, 2.0, 3.0])?;
//! let x = Tensor::new(&[[1f32, 10.], [100., 1000.]], &Device::Cpu)?;
//! let y = a.matmul(&x)?;
//! assert_eq!(y.to_vec2::<f32>()?, vec![vec![1., 10.], vec![302., 3020.]]);
//! # Ok::<(), sparse_core::SparseError>(())
//! ```

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::simd::multiversion;
use crate::error::{Result, SparseError};

#[derive(Debug)]
struct Csr {
    rows: usize,
    cols: usize,
    row_ptr: Vec<usize>,
    col: Vec<u32>,
    values: Vec<f32>,
}

impl Csr {
    /// The transpose, with its entries in row-major order of the transpose.
    fn transpose(&self) -> Csr {
        let mut counts = vec![0usize; self.cols + 1];
        for &c in &self.col {
            counts[c as usize + 1] += 1;
        }
        for i in 0..self.cols {
            counts[i + 1] += counts[i];
        }
        let row_ptr = counts.clone();
        let mut next = counts;
        let mut col = vec![0u32; self.col.len()];
        let mut values = vec![0f32; self.values.len()];
        for r in 0..self.rows {
            for k in self.row_ptr[r]..self.row_ptr[r + 1] {
                let c = self.col[k] as usize;
                col[next[c]] = r as u32;
                values[next[c]] = self.values[k];
                next[c] += 1;
            }
        }
        Csr {
            rows: self.cols,
            cols: self.rows,
            row_ptr,
            col,
            values,
        }
    }

    fn product(&self, dense: &[f32], k: usize) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * k];
        // Batches of rows per task: one row of a graph product is a few hundred flops.
        out.par_chunks_mut(k.max(1))
            .with_min_len(256)
            .enumerate()
            .for_each(|(r, out_row)| {
                let entries = self.row_ptr[r]..self.row_ptr[r + 1];
                row_product(
                    out_row,
                    &self.col[entries.clone()],
                    &self.values[entries],
                    dense,
                );
            });
        out
    }
}

multiversion! {
    /// `out_row += Σ_e values[e] · dense[cols[e]]` (rows of length `out_row.len()`),
    /// compiled for the widest vectors the CPU has. Multiply then add, never fused, so
    /// every instruction set gives the same bits.
    fn row_product<F>(out_row: &mut [f32], cols: &[u32], values: &[f32], dense: &[f32]) {
        let k = out_row.len();
        for (&c, &v) in cols.iter().zip(values) {
            let src = &dense[c as usize * k..(c as usize + 1) * k];
            for (o, &x) in out_row.iter_mut().zip(src) {
                *o += v * x;
            }
        }
    }
}

/// A constant `rows × cols` sparse matrix (CSR) that multiplies dense candle tensors
/// with autograd through the dense operand. Cloning is cheap (shared storage).
#[derive(Debug, Clone)]
pub struct SparseMatrix {
    forward: Arc<Csr>,
    backward: Arc<Csr>,
}

impl SparseMatrix {
    /// From CSR arrays: `row_ptr` has `rows + 1` non-decreasing offsets from 0 to
    /// `nnz`; every column index is below `cols`.
    pub fn from_csr(
        rows: usize,
        cols: usize,
        row_ptr: Vec<usize>,
        col: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<Self> {
        let bad = |name: &'static str, reason: String| {
            SparseError::invalid(name, format!("{rows}x{cols}, nnz {}", values.len()), reason)
        };
        if row_ptr.len() != rows + 1 || row_ptr.first() != Some(&0) {
            return Err(bad(
                "row_ptr",
                format!("needs {} offsets starting at 0", rows + 1),
            ));
        }
        if row_ptr.windows(2).any(|w| w[0] > w[1]) || row_ptr[rows] != col.len() {
            return Err(bad(
                "row_ptr",
                "must not decrease and must end at nnz".into(),
            ));
        }
        if col.len() != values.len() {
            return Err(bad(
                "values",
                format!("{} values for {} columns", values.len(), col.len()),
            ));
        }
        if let Some(c) = col.iter().find(|&&c| c as usize >= cols) {
            return Err(bad("col", format!("column {c} is out of range")));
        }
        let forward = Csr {
            rows,
            cols,
            row_ptr,
            col,
            values,
        };
        let backward = forward.transpose();
        Ok(Self {
            forward: Arc::new(forward),
            backward: Arc::new(backward),
        })
    }

    /// The same pattern with other entries (`values.len()` must equal [`Self::nnz`]).
    pub fn with_values(&self, values: Vec<f32>) -> Result<Self> {
        let f = &self.forward;
        Self::from_csr(f.rows, f.cols, f.row_ptr.clone(), f.col.clone(), values)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.forward.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.forward.cols
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.forward.values.len()
    }

    /// The stored entries, in CSR order.
    pub fn values(&self) -> &[f32] {
        &self.forward.values
    }

    /// The transpose (shares storage; free).
    pub fn transpose(&self) -> Self {
        Self {
            forward: self.backward.clone(),
            backward: self.forward.clone(),
        }
    }

    /// `self × dense` for an `f32` `dense` of shape `(cols, k)`; differentiable with
    /// respect to `dense` (the gradient is `selfᵀ × grad`).
    pub fn matmul(&self, dense: &Tensor) -> Result<Tensor> {
        let (rows, _k) = dense.dims2()?;
        if rows != self.cols() {
            return Err(SparseError::ShapeMismatch {
                what: "dense operand of a sparse product".into(),
                expected: vec![self.cols(), dense.dims()[1]],
                got: dense.dims().to_vec(),
            });
        }
        Ok(dense.contiguous()?.apply_op1(self.clone())?)
    }
}

impl CustomOp1 for SparseMatrix {
    fn name(&self) -> &'static str {
        "sparse-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, k) = layout.shape().dims2()?;
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("sparse-matmul: only f32 dense operands are supported");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("sparse-matmul: the dense operand must be contiguous");
        };
        let out = self.forward.product(&data[start..end], k);
        Ok((CpuStorage::F32(out), Shape::from((self.rows(), k))))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?;
        Ok(Some(grad.apply_op1(self.transpose())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn example() -> SparseMatrix {
        // [[0, 2, 0], [1, 0, 3]]
        SparseMatrix::from_csr(2, 3, vec![0, 1, 3], vec![1, 0, 2], vec![2.0, 1.0, 3.0]).unwrap()
    }

    #[test]
    fn wide_rows_match_the_sequential_sum_bit_for_bit() {
        // Rows wider than a few vector registers, not a multiple of 16.
        let (rows, cols, k) = (4, 6, 133);
        let row_ptr = vec![0, 3, 3, 5, 9];
        let col = vec![0, 2, 5, 1, 4, 0, 1, 3, 5];
        let values: Vec<f32> = (0..col.len()).map(|i| 0.3 * i as f32 - 1.1).collect();
        let a = SparseMatrix::from_csr(rows, cols, row_ptr.clone(), col.clone(), values.clone())
            .unwrap();
        let dense: Vec<f32> = (0..cols * k)
            .map(|i| ((i * 37 % 101) as f32).sin())
            .collect();
        let x = Tensor::from_vec(dense.clone(), (cols, k), &Device::Cpu).unwrap();
        let got = a.matmul(&x).unwrap().to_vec2::<f32>().unwrap();
        for r in 0..rows {
            for j in 0..k {
                let mut want = 0.0f32;
                for e in row_ptr[r]..row_ptr[r + 1] {
                    want += values[e] * dense[col[e] as usize * k + j];
                }
                assert_eq!(got[r][j].to_bits(), want.to_bits(), "row {r}, column {j}");
            }
        }
    }

    #[test]
    fn product_and_gradient_match_the_dense_computation() {
        let dev = Device::Cpu;
        let a = example();
        let x = Var::from_tensor(&Tensor::new(&[[1f32, 2.], [3., 4.], [5., 6.]], &dev).unwrap())
            .unwrap();
        let y = a.matmul(x.as_tensor()).unwrap();
        assert_eq!(
            y.to_vec2::<f32>().unwrap(),
            vec![vec![6., 8.], vec![16., 20.]]
        );
        // loss = Σ c ⊙ y  ⇒  ∂L/∂x = Aᵀ c
        let c = Tensor::new(&[[1f32, -1.], [2., 0.5]], &dev).unwrap();
        let grads = y.mul(&c).unwrap().sum_all().unwrap().backward().unwrap();
        let g = grads.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        // Aᵀ = [[0, 1], [2, 0], [0, 3]]
        assert_eq!(g, vec![vec![2., 0.5], vec![2., -2.], vec![6., 1.5]]);
    }

    #[test]
    fn transpose_and_new_values_keep_the_pattern() {
        let a = example();
        let t = a.transpose();
        assert_eq!((t.rows(), t.cols(), t.nnz()), (3, 2, 3));
        let ones = Tensor::ones((2, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
        let col_sums = t.matmul(&ones).unwrap().flatten_all().unwrap();
        assert_eq!(col_sums.to_vec1::<f32>().unwrap(), vec![1., 2., 3.]);
        let b = a.with_values(vec![1.0, 1.0, 1.0]).unwrap();
        let x = Tensor::new(&[[1f32], [2.], [4.]], &Device::Cpu).unwrap();
        assert_eq!(
            b.matmul(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            vec![2., 5.]
        );
        assert!(a.with_values(vec![1.0]).is_err());
        assert!(a.matmul(&ones).is_err(), "2 rows for 3 columns");
    }

    #[test]
    fn invalid_arrays_are_rejected() {
        assert!(SparseMatrix::from_csr(1, 2, vec![0, 1], vec![2], vec![1.0]).is_err());
        assert!(SparseMatrix::from_csr(1, 2, vec![1, 1], vec![], vec![]).is_err());
        assert!(SparseMatrix::from_csr(2, 2, vec![0, 2, 1], vec![0, 1], vec![1.0, 1.0]).is_err());
    }
}
