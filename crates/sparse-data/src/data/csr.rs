//! [`CsrMatrix`]: a compressed sparse row matrix of `f32`.

use candle_core::{Device, Tensor};

use super::DataError;

/// A sparse `rows × cols` matrix in compressed sparse row (CSR) form.
///
/// Row `r` holds the entries `col_indices[k]`, `values[k]` for `k` in
/// `row_ptr[r]..row_ptr[r + 1]`, with column indices strictly increasing
/// within a row. A GNN multiplies it with dense node features either through
/// [`CsrMatrix::matmul_dense`] (plain Rust) or, to keep autograd, with the
/// triples of [`CsrMatrix::coo_tensors`]:
/// `zeros(rows, k).index_add(row, x.index_select(col, 0) * value, 0)`.
#[derive(Debug, Clone, PartialEq)]
pub struct CsrMatrix {
    rows: usize,
    cols: usize,
    row_ptr: Vec<usize>,
    col_indices: Vec<u32>,
    values: Vec<f32>,
}

impl CsrMatrix {
    /// Builds a matrix from its CSR arrays, checking every invariant.
    pub fn new(
        rows: usize,
        cols: usize,
        row_ptr: Vec<usize>,
        col_indices: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<Self, DataError> {
        let bad = |message: String| Err(DataError::argument("row_ptr", message));
        if Some(row_ptr.len()) != rows.checked_add(1) || row_ptr.first() != Some(&0) {
            return bad(format!("needs {} entries starting at 0", rows + 1));
        }
        if row_ptr.windows(2).any(|w| w[0] > w[1]) {
            return bad("must not decrease".into());
        }
        if row_ptr[rows] != col_indices.len() || col_indices.len() != values.len() {
            return bad(format!(
                "ends at {} but there are {} column indices and {} values",
                row_ptr[rows],
                col_indices.len(),
                values.len()
            ));
        }
        for r in 0..rows {
            let row = &col_indices[row_ptr[r]..row_ptr[r + 1]];
            if row.windows(2).any(|w| w[0] >= w[1])
                || row.last().is_some_and(|&c| c as usize >= cols)
            {
                return Err(DataError::argument(
                    "col_indices",
                    format!("row {r}: columns must increase strictly and stay below {cols}"),
                ));
            }
        }
        Ok(Self {
            rows,
            cols,
            row_ptr,
            col_indices,
            values,
        })
    }

    /// Builds a matrix from `(row, col, value)` triples; duplicates are summed.
    pub fn from_triples(
        rows: usize,
        cols: usize,
        mut triples: Vec<(u32, u32, f32)>,
    ) -> Result<Self, DataError> {
        if let Some(&(r, c, _)) = triples
            .iter()
            .find(|&&(r, c, _)| r as usize >= rows || c as usize >= cols)
        {
            return Err(DataError::argument(
                "triples",
                format!("entry ({r}, {c}) is outside a {rows}x{cols} matrix"),
            ));
        }
        triples.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut row_ptr = vec![0usize; rows + 1];
        let mut col_indices: Vec<u32> = Vec::with_capacity(triples.len());
        let mut values: Vec<f32> = Vec::with_capacity(triples.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in triples {
            if last == Some((r, c)) {
                if let Some(total) = values.last_mut() {
                    *total += v;
                }
                continue;
            }
            last = Some((r, c));
            row_ptr[r as usize + 1] += 1;
            col_indices.push(c);
            values.push(v);
        }
        for r in 0..rows {
            row_ptr[r + 1] += row_ptr[r];
        }
        Self::new(rows, cols, row_ptr, col_indices, values)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Row start offsets into [`Self::col_indices`] / [`Self::values`], `rows + 1` long.
    pub fn row_ptr(&self) -> &[usize] {
        &self.row_ptr
    }

    /// Column index of every stored entry.
    pub fn col_indices(&self) -> &[u32] {
        &self.col_indices
    }

    /// Value of every stored entry.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The column indices and values of row `r` (empty if out of range).
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        if r >= self.rows {
            return (&[], &[]);
        }
        let range = self.row_ptr[r]..self.row_ptr[r + 1];
        (&self.col_indices[range.clone()], &self.values[range])
    }

    /// The value at `(r, c)`, zero when not stored.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        let (cols, values) = self.row(r);
        u32::try_from(c)
            .ok()
            .and_then(|c| cols.binary_search(&c).ok())
            .map_or(0.0, |k| values[k])
    }

    /// The row index of every stored entry (COO form, with [`Self::col_indices`]).
    pub fn row_indices(&self) -> Vec<u32> {
        let mut rows = Vec::with_capacity(self.nnz());
        for r in 0..self.rows {
            rows.extend(std::iter::repeat_n(
                r as u32,
                self.row_ptr[r + 1] - self.row_ptr[r],
            ));
        }
        rows
    }

    /// The matrix as dense row-major values.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut dense = vec![0.0; self.rows * self.cols];
        for r in 0..self.rows {
            let (cols, values) = self.row(r);
            for (&c, &v) in cols.iter().zip(values) {
                dense[r * self.cols + c as usize] = v;
            }
        }
        dense
    }

    /// The matrix as a dense `(rows, cols)` `f32` tensor.
    pub fn to_dense_tensor(&self, device: &Device) -> Result<Tensor, DataError> {
        Ok(Tensor::from_vec(
            self.to_dense(),
            (self.rows, self.cols),
            device,
        )?)
    }

    /// COO tensors `(row u32 (nnz,), col u32 (nnz,), value f32 (nnz,))`.
    pub fn coo_tensors(&self, device: &Device) -> Result<(Tensor, Tensor, Tensor), DataError> {
        let nnz = self.nnz();
        Ok((
            Tensor::from_vec(self.row_indices(), nnz, device)?,
            Tensor::from_vec(self.col_indices.clone(), nnz, device)?,
            Tensor::from_vec(self.values.clone(), nnz, device)?,
        ))
    }

    /// `self × dense`, where `dense` is `(cols, k)` row-major; returns `(rows, k)`.
    pub fn matmul_dense(&self, dense: &[f32], k: usize) -> Result<Vec<f32>, DataError> {
        if Some(dense.len()) != self.cols.checked_mul(k) {
            return Err(DataError::argument(
                "dense",
                format!("{} values is not {} rows x {k}", dense.len(), self.cols),
            ));
        }
        let size = self.rows.checked_mul(k).ok_or_else(|| {
            DataError::argument("k", format!("{} rows x {k} overflows", self.rows))
        })?;
        let mut out = vec![0.0; size];
        for r in 0..self.rows {
            let (cols, values) = self.row(r);
            let out_row = &mut out[r * k..(r + 1) * k];
            for (&c, &v) in cols.iter().zip(values) {
                let src = &dense[c as usize * k..(c as usize + 1) * k];
                for (o, &x) in out_row.iter_mut().zip(src) {
                    *o += v * x;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_are_sorted_and_summed() {
        let m = CsrMatrix::from_triples(
            2,
            3,
            vec![(1, 2, 1.0), (0, 1, 2.0), (1, 2, 0.5), (1, 0, 3.0)],
        )
        .unwrap();
        assert_eq!(m.row_ptr(), &[0, 1, 3]);
        assert_eq!(m.col_indices(), &[1, 0, 2]);
        assert_eq!(m.values(), &[2.0, 3.0, 1.5]);
        assert_eq!(m.to_dense(), vec![0.0, 2.0, 0.0, 3.0, 0.0, 1.5]);
        assert_eq!(m.row_indices(), vec![0, 1, 1]);
        assert_eq!(m.get(1, 2), 1.5);
        assert_eq!(m.get(0, 0), 0.0);
    }

    #[test]
    fn matmul_matches_dense_product() {
        let m =
            CsrMatrix::from_triples(2, 2, vec![(0, 0, 1.0), (0, 1, 2.0), (1, 1, -1.0)]).unwrap();
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(m.matmul_dense(&x, 2).unwrap(), vec![7.0, 10.0, -3.0, -4.0]);
        assert!(m.matmul_dense(&x, 3).is_err());
    }

    #[test]
    fn coo_tensors_give_the_same_product_in_candle() {
        let m = CsrMatrix::from_triples(3, 2, vec![(0, 1, 0.5), (2, 0, 2.0), (2, 1, 1.0)]).unwrap();
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let (rows, cols, values) = m.coo_tensors(&Device::Cpu).unwrap();
        let xt = Tensor::from_slice(&x, (2, 2), &Device::Cpu).unwrap();
        let gathered = xt
            .index_select(&cols, 0)
            .unwrap()
            .broadcast_mul(&values.unsqueeze(1).unwrap())
            .unwrap();
        let product = Tensor::zeros((3, 2), candle_core::DType::F32, &Device::Cpu)
            .unwrap()
            .index_add(&rows, &gathered, 0)
            .unwrap();
        let product: Vec<f32> = product.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(product, m.matmul_dense(&x, 2).unwrap());
        assert_eq!(product, vec![1.5, 2.0, 0.0, 0.0, 5.0, 8.0]);
    }

    #[test]
    fn invalid_arrays_are_rejected() {
        assert!(CsrMatrix::new(1, 2, vec![0, 2], vec![1, 0], vec![1.0, 1.0]).is_err());
        assert!(CsrMatrix::new(1, 2, vec![0, 1], vec![2], vec![1.0]).is_err());
        assert!(CsrMatrix::from_triples(1, 1, vec![(1, 0, 1.0)]).is_err());
    }
}
