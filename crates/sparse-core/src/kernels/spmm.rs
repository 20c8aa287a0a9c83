//! Batch-tiled sparse-times-dense product `dst = src · Sᵀ` for a compressed sparse `S`.
//!
//! `src` is `[batch, n_src]` row-major and `S` is given row by row (`ptr`, `idx`,
//! `vals`: row `r` of `S` has the entries `vals[i]` at columns `idx[i]` for
//! `i ∈ ptr[r]..ptr[r + 1]`). Each thread takes a tile of at most [`MAX_TILE`] batch
//! rows, transposes it into a reused scratch buffer (`[n_src, tile]`, small enough
//! for L2), computes every output row of the tile with its accumulators in registers
//! (`outT[r, :] = Σ vals[i] · srcT[idx[i], :]`, a contiguous multiply-add per
//! non-zero), and transposes the tile back into `dst`. The transposes touch each
//! element once while it is in cache, and no buffer is allocated per call beyond
//! `dst` itself.

use std::cell::RefCell;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout};

use rayon::prelude::*;

use super::simd::{Fma, multiversion};
use super::taps::{LANES, lanes, round_up};

/// Largest batch tile: `[n_src, 64]` floats is 256 KiB for `n_src = 1024`, which stays
/// in L2 while all output rows stream through it; 64 floats are 4 AVX-512 registers
/// per accumulator, leaving room to interleave two non-zeros.
pub(crate) const MAX_TILE: usize = 64;

/// Columns of the matrices handled per transpose block: one cache line of floats.
const BLOCK: usize = 16;

thread_local! {
    /// Per-thread transposed source and output tiles, reused across calls.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A read-only 2-D f32 view with arbitrary strides (a broadcast gradient has stride 0),
/// so that the kernels read candle's layouts directly instead of copying them first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    start: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A contiguous row-major `[rows, cols]` matrix.
    #[cfg(test)]
    pub(crate) fn contiguous(data: &'a [f32], rows: usize, cols: usize) -> Self {
        debug_assert!(data.len() >= rows * cols);
        Self {
            data,
            start: 0,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The rank-2 f32 tensor described by a custom op's storage and layout.
    pub(crate) fn from_layout(
        storage: &'a CpuStorage,
        layout: &Layout,
        what: &str,
    ) -> candle_core::Result<Self> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("{what}: only f32 is supported, got {:?}", storage.dtype())
        };
        let (rows, cols) = layout.shape().dims2()?;
        let (row_stride, col_stride) = match layout.stride() {
            &[rs, cs] => (rs, cs),
            other => candle_core::bail!("{what}: rank-2 strides expected, got {other:?}"),
        };
        Ok(Self {
            data,
            start: layout.start_offset(),
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// Number of rows.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Writes rows `r0..r0 + nb` transposed into `dst: [cols, bp]`, padding columns
    /// `nb..bp` with zeros.
    pub(crate) fn transpose_rows_into(&self, r0: usize, nb: usize, dst: &mut [f32], bp: usize) {
        self.transpose_block_into(r0, nb, 0, self.cols, dst, bp);
    }

    /// [`transpose_rows_into`](Self::transpose_rows_into) in parallel.
    pub(crate) fn par_transpose_rows_into(&self, r0: usize, nb: usize, dst: &mut [f32], bp: usize) {
        dst[..self.cols * bp]
            .par_chunks_mut(BLOCK * bp)
            .enumerate()
            .for_each(|(blk, chunk)| {
                let c0 = blk * BLOCK;
                self.transpose_block_into(r0, nb, c0, c0 + chunk.len() / bp, chunk, bp);
            });
    }

    /// Columns `c_lo..c_hi` of rows `r0..r0 + nb`, transposed into `dst: [c_hi - c_lo,
    /// bp]` with zero padding.
    fn transpose_block_into(
        &self,
        r0: usize,
        nb: usize,
        c_lo: usize,
        c_hi: usize,
        dst: &mut [f32],
        bp: usize,
    ) {
        for c0 in (c_lo..c_hi).step_by(BLOCK) {
            let nc = BLOCK.min(c_hi - c0);
            let d0 = c0 - c_lo;
            for r in 0..nb {
                let base = self.start + (r0 + r) * self.row_stride + c0 * self.col_stride;
                if self.col_stride == 1 {
                    for (c, &v) in self.data[base..base + nc].iter().enumerate() {
                        dst[(d0 + c) * bp + r] = v;
                    }
                } else {
                    for c in 0..nc {
                        dst[(d0 + c) * bp + r] = self.data[base + c * self.col_stride];
                    }
                }
            }
            for c in 0..nc {
                dst[(d0 + c) * bp + nb..(d0 + c + 1) * bp].fill(0.0);
            }
        }
    }
}

/// Where the kernel finds the value of entry `i` (in row `r`, column `idx[i]`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Values<'a> {
    /// Packed in entry order: `vals[i]`.
    Packed(&'a [f32]),
    /// Read from a dense row-major matrix with `stride` columns: `w[r * stride + idx[i]]`
    /// (no separate gather pass when the rows are the compressed dimension).
    DenseRows {
        /// The dense matrix.
        w: &'a [f32],
        /// Its row length.
        stride: usize,
    },
}

/// The batch tile for `batch` rows on `threads` threads: at most [`MAX_TILE`], a
/// multiple of [`LANES`], and small enough that every thread gets a tile.
fn tile_rows(batch: usize, threads: usize) -> usize {
    round_up(batch.div_ceil(threads.max(1))).clamp(LANES, MAX_TILE)
}

/// `dst[b, r] = Σ_{i ∈ ptr[r]..ptr[r+1]} v_i · src[b, idx[i]]` (`v_i` from [`Values`]) for `src: [batch,
/// n_src]` and `dst: [batch, n_dst]` with `n_dst = ptr.len() - 1`.
pub(crate) fn spmm_rows(
    src: MatRef<'_>,
    ptr: &[usize],
    idx: &[u32],
    vals: Values<'_>,
    dst: &mut [f32],
) {
    let (batch, n_src) = (src.rows(), src.cols());
    let n_dst = ptr.len() - 1;
    debug_assert_eq!(dst.len(), batch * n_dst);
    if batch * n_src * n_dst == 0 {
        dst.fill(0.0);
        return;
    }
    let tile = tile_rows(batch, rayon::current_num_threads());
    dst.par_chunks_mut(tile * n_dst)
        .enumerate()
        .for_each(|(t, d)| {
            SCRATCH.with(|cell| {
                let (src_t, dst_t) = &mut *cell.borrow_mut();
                let nb = d.len() / n_dst;
                let bp = round_up(nb);
                src_t.resize(n_src * bp, 0.0);
                dst_t.resize(n_dst * bp, 0.0);
                src.transpose_rows_into(t * tile, nb, src_t, bp);
                match vals {
                    Values::Packed(v) => sparse_rows_tile(src_t, bp, ptr, idx, v, 0, dst_t),
                    Values::DenseRows { w, stride } => {
                        sparse_rows_tile(src_t, bp, ptr, idx, w, stride, dst_t)
                    }
                }
                transpose_out(dst_t, n_dst, bp, d, nb);
            })
        });
}

/// `src: [n, bp]` → the first `nb` columns transposed into `dst: [nb, n]`.
fn transpose_out(src: &[f32], n: usize, bp: usize, dst: &mut [f32], nb: usize) {
    for j0 in (0..n).step_by(BLOCK) {
        let nj = BLOCK.min(n - j0);
        for r in 0..nb {
            let d = &mut dst[r * n + j0..r * n + j0 + nj];
            for (j, v) in d.iter_mut().enumerate() {
                *v = src[(j0 + j) * bp + r];
            }
        }
    }
}

/// One output row over tile columns `j..j + T`, two non-zeros per step into separate
/// accumulators so that twice as many independent multiply-adds are in flight. The
/// value of entry `n` of the row is `vals[n]`, or `vals[idx[n]]` with `DENSE`.
#[inline(always)]
fn row_tile<F: Fma, const T: usize, const DENSE: bool>(
    src_t: &[f32],
    bp: usize,
    j: usize,
    idx: &[u32],
    vals: &[f32],
    out: &mut [f32],
) {
    let value = |n: usize| {
        if DENSE {
            vals[idx[n] as usize]
        } else {
            vals[n]
        }
    };
    let mut even = [0.0f32; T];
    let mut odd = [0.0f32; T];
    let pairs = idx.len() / 2;
    for p in 0..pairs {
        let (n0, n1) = (2 * p, 2 * p + 1);
        let (v0, v1) = (value(n0), value(n1));
        let x0 = lanes::<T>(src_t, idx[n0] as usize * bp + j);
        let x1 = lanes::<T>(src_t, idx[n1] as usize * bp + j);
        for t in 0..T {
            even[t] = F::fma(v0, x0[t], even[t]);
            odd[t] = F::fma(v1, x1[t], odd[t]);
        }
    }
    if idx.len() % 2 == 1 {
        let n = idx.len() - 1;
        let (v, x) = (value(n), lanes::<T>(src_t, idx[n] as usize * bp + j));
        for t in 0..T {
            even[t] = F::fma(v, x[t], even[t]);
        }
    }
    for t in 0..T {
        out[t] = even[t] + odd[t];
    }
}

/// One output row over all tile columns, widest register tiles first.
#[inline(always)]
fn row_tiles<F: Fma, const DENSE: bool>(
    src_t: &[f32],
    bp: usize,
    idx: &[u32],
    vals: &[f32],
    o: &mut [f32],
) {
    let mut j = 0;
    while j + 64 <= bp {
        row_tile::<F, 64, DENSE>(src_t, bp, j, idx, vals, &mut o[j..]);
        j += 64;
    }
    while j + 32 <= bp {
        row_tile::<F, 32, DENSE>(src_t, bp, j, idx, vals, &mut o[j..]);
        j += 32;
    }
    while j < bp {
        row_tile::<F, 16, DENSE>(src_t, bp, j, idx, vals, &mut o[j..]);
        j += 16;
    }
}

multiversion! {
    /// `out[r * bp + j] = Σ_{i ∈ ptr[r]..ptr[r+1]} v_i · src_t[idx[i] * bp + j]` for
    /// every row `r` and `j < bp` (a multiple of [`LANES`]), with `v_i = vals[i]` when
    /// `dense_stride` is 0 and `v_i = vals[r * dense_stride + idx[i]]` otherwise.
    fn sparse_rows_tile<F>(
        src_t: &[f32],
        bp: usize,
        ptr: &[usize],
        idx: &[u32],
        vals: &[f32],
        dense_stride: usize,
        out: &mut [f32],
    ) {
        debug_assert_eq!(bp % LANES, 0);
        for (r, o) in out.chunks_exact_mut(bp).enumerate() {
            let idx = &idx[ptr[r]..ptr[r + 1]];
            if dense_stride == 0 {
                row_tiles::<F, false>(src_t, bp, idx, &vals[ptr[r]..ptr[r + 1]], o);
            } else {
                let row = &vals[r * dense_stride..(r + 1) * dense_stride];
                row_tiles::<F, true>(src_t, bp, idx, row, o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_dense_product_on_awkward_shapes() {
        // S = [[2 0 1], [0 0 0], [0 -1 3], [1 1 1]] (n_dst 4, n_src 3).
        let ptr = [0, 2, 2, 4, 7];
        let idx = [0, 2, 1, 2, 0, 1, 2];
        let vals = [2.0, 1.0, -1.0, 3.0, 1.0, 1.0, 1.0];
        let dense = [[2.0, 0.0, 1.0], [0.0; 3], [0.0, -1.0, 3.0], [1.0; 3]];
        for batch in [1, 15, 17, 70, 131] {
            let src: Vec<f32> = (0..batch * 3).map(|i| (i % 7) as f32 - 3.0).collect();
            let flat: Vec<f32> = dense.iter().flatten().copied().collect();
            let sources = [
                Values::Packed(&vals),
                Values::DenseRows {
                    w: &flat,
                    stride: 3,
                },
            ];
            for values in sources {
                let mut dst = vec![f32::NAN; batch * 4];
                let src_ref = MatRef::contiguous(&src, batch, 3);
                spmm_rows(src_ref, &ptr, &idx, values, &mut dst);
                for b in 0..batch {
                    for (r, row) in dense.iter().enumerate() {
                        let want: f32 = (0..3).map(|k| row[k] * src[b * 3 + k]).sum();
                        assert_eq!(dst[b * 4 + r], want, "{values:?} b {b} r {r}");
                    }
                }
            }
        }
    }
}
