//! Out-of-place matrix transpose in 8x8 register blocks.
//!
//! The batch-tiled kernels move every operand through a transpose, so a scalar one
//! (one strided load or store per element) cost as much as a fifth of a sparse
//! product. Here full 8x8 blocks go through eight AVX registers (three rounds of
//! shuffles), and only the ragged edges are copied element by element.

#[cfg(target_arch = "x86_64")]
use super::simd::{Level, level};

/// Block edge: one AVX register of f32.
#[cfg(target_arch = "x86_64")]
const B: usize = 8;

/// `dst[c * dst_stride + r] = src[r * src_stride + c]` for `r < rows`, `c < cols`.
pub(crate) fn transpose(
    src: &[f32],
    src_stride: usize,
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    dst_stride: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        src.len() >= (rows - 1) * src_stride + cols,
        "transpose: source too short"
    );
    assert!(
        dst.len() >= (cols - 1) * dst_stride + rows,
        "transpose: destination too short"
    );
    // The top-left corner of whole 8x8 blocks done in registers, if the CPU allows.
    #[cfg(target_arch = "x86_64")]
    let (full_rows, full_cols) = if level() != Level::Baseline {
        let (full_rows, full_cols) = (rows / B * B, cols / B * B);
        // SAFETY: AVX2 is available (checked above), and the asserts above keep every
        // full 8x8 block of `src` and of `dst` in bounds.
        unsafe { avx2::blocks(src, src_stride, full_rows, full_cols, dst, dst_stride) };
        (full_rows, full_cols)
    } else {
        (0, 0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (full_rows, full_cols) = (0, 0);
    edges(
        src, src_stride, rows, cols, dst, dst_stride, full_rows, full_cols,
    );
}

/// The elements outside the `full_rows x full_cols` block, one by one.
#[allow(clippy::too_many_arguments)]
fn edges(
    src: &[f32],
    src_stride: usize,
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    dst_stride: usize,
    full_rows: usize,
    full_cols: usize,
) {
    for r in 0..rows {
        let c_start = if r < full_rows { full_cols } else { 0 };
        for c in c_start..cols {
            dst[c * dst_stride + r] = src[r * src_stride + c];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Transposes the `rows x cols` top-left corner of `src` (both multiples of 8)
    /// into `dst`.
    ///
    /// # Safety
    /// The CPU supports AVX2; `src` holds `rows` rows of stride `ss` and `dst` holds
    /// `cols` rows of stride `ds`, each at least as long as the block read or written.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn blocks(
        src: &[f32],
        ss: usize,
        rows: usize,
        cols: usize,
        dst: &mut [f32],
        ds: usize,
    ) {
        // Strips of source columns walked down the rows, so that each strip fills a
        // run of whole destination rows front to back. How wide depends on which side
        // has the long stride (measured single-threaded on 64x1024 <-> 1024x64 f32
        // tiles, 4 KiB rows): reading long rows into short ones is fastest with
        // 64-column strips (16 KiB of contiguous destination per strip; 6.9 us against
        // 12.9 us with 16-column strips), writing short rows into long ones with
        // 8-column strips (eight destination rows written as streams; 9.2 us against
        // 24 us with 16 and 62 us with 32).
        let strip = if ds > ss { 8 } else { 64 };
        for c0 in (0..cols).step_by(strip) {
            for r in (0..rows).step_by(8) {
                for c in (c0..cols.min(c0 + strip)).step_by(8) {
                    // SAFETY: the caller guarantees both 8x8 blocks are in bounds.
                    unsafe {
                        block(
                            src.as_ptr().add(r * ss + c),
                            ss,
                            dst.as_mut_ptr().add(c * ds + r),
                            ds,
                        )
                    }
                }
            }
        }
    }

    /// Transposes the 8x8 block at `src` (row stride `ss`) into `dst` (row stride `ds`).
    ///
    /// # Safety
    /// The CPU supports AVX2; rows `0..8` of 8 floats at `src + i * ss` are readable and
    /// at `dst + i * ds` writable.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn block(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        let mut r = [_mm256_setzero_ps(); 8];
        for (i, row) in r.iter_mut().enumerate() {
            // SAFETY: the caller guarantees the 8 source rows are in bounds.
            *row = unsafe { _mm256_loadu_ps(src.add(i * ss)) };
        }
        // Interleave pairs of rows: (a0 b0 a1 b1 | a4 b4 a5 b5) and the high halves.
        let mut t = [_mm256_setzero_ps(); 8];
        for p in 0..4 {
            t[2 * p] = _mm256_unpacklo_ps(r[2 * p], r[2 * p + 1]);
            t[2 * p + 1] = _mm256_unpackhi_ps(r[2 * p], r[2 * p + 1]);
        }
        // Pairs of pairs: q[g + c] holds column c (low lane) and c + 4 (high lane) of
        // the four source rows of group g.
        let mut q = [_mm256_setzero_ps(); 8];
        for g in [0, 4] {
            q[g] = _mm256_shuffle_ps::<0x44>(t[g], t[g + 2]);
            q[g + 1] = _mm256_shuffle_ps::<0xEE>(t[g], t[g + 2]);
            q[g + 2] = _mm256_shuffle_ps::<0x44>(t[g + 1], t[g + 3]);
            q[g + 3] = _mm256_shuffle_ps::<0xEE>(t[g + 1], t[g + 3]);
        }
        // Join the two groups' halves into whole columns.
        for c in 0..4 {
            let low = _mm256_permute2f128_ps::<0x20>(q[c], q[c + 4]);
            let high = _mm256_permute2f128_ps::<0x31>(q[c], q[c + 4]);
            // SAFETY: the caller guarantees the 8 destination rows are in bounds.
            unsafe {
                _mm256_storeu_ps(dst.add(c * ds), low);
                _mm256_storeu_ps(dst.add((c + 4) * ds), high);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition_on_ragged_shapes_and_strides() {
        for (rows, cols) in [(1, 1), (8, 8), (3, 17), (16, 24), (19, 9), (33, 70)] {
            let (ss, ds) = (cols + 3, rows + 5);
            let src: Vec<f32> = (0..rows * ss).map(|i| i as f32).collect();
            let mut dst = vec![f32::NAN; cols * ds];
            transpose(&src, ss, rows, cols, &mut dst, ds);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        dst[c * ds + r],
                        src[r * ss + c],
                        "{rows}x{cols} at ({r}, {c})"
                    );
                }
            }
            // The padding columns of `dst` are left alone.
            for c in 0..cols {
                assert!(dst[c * ds + rows..(c + 1) * ds].iter().all(|v| v.is_nan()));
            }
        }
    }
}
