//! A bounds-checked entry point to the `gemm` crate (candle's own matrix product) on
//! plain slices.
//!
//! Going through candle tensors costs an allocation for every operand and result and a
//! copy for every transposed view; a kernel that multiplies one image at a time into a
//! buffer it already owns wants none of that. The `gemm` crate takes any row and
//! column strides, so transposes are free here.

pub(crate) use super::tiled::MatRef;

/// One past the largest index of `m.data()` a product reads (0 when empty).
fn extent(m: &MatRef<'_>) -> usize {
    let (rs, cs) = m.strides();
    if m.rows() == 0 || m.cols() == 0 {
        0
    } else {
        (m.rows() - 1) * rs + (m.cols() - 1) * cs + 1
    }
}

/// Whether [`gemm`] overwrites its destination or adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    Overwrite,
    Accumulate,
}

/// `dst (row-major rows x cols) = a × b` (or `+=`), single-threaded: for callers
/// that parallelise over images themselves.
///
/// # Panics
/// When the shapes disagree or a view reaches past its slice (a bug in the caller,
/// never a user input: the kernels validate shapes before they get here).
pub(crate) fn gemm(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, write: Write) {
    gemm_with(dst, a, b, write, ::gemm::Parallelism::None);
}

/// Multiply-adds above which [`gemm_auto`] splits a product over rayon's threads:
/// below it, waking the pool costs more than it saves.
pub(crate) const PARALLEL_MACS: usize = 1 << 24;

/// [`gemm`] for a product that stands alone (not inside a per-image loop): on
/// rayon's threads when it is large enough. The `gemm` crate splits the output, not
/// the inner dimension, so the result is the same either way.
pub(crate) fn gemm_auto(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, write: Write) {
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 && a.rows() * a.cols() * b.cols() >= PARALLEL_MACS {
        ::gemm::Parallelism::Rayon(threads)
    } else {
        ::gemm::Parallelism::None
    };
    gemm_with(dst, a, b, write, parallelism);
}

fn gemm_with(
    dst: &mut [f32],
    a: MatRef<'_>,
    b: MatRef<'_>,
    write: Write,
    parallelism: ::gemm::Parallelism,
) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    assert_eq!(b.rows(), k, "gemm: inner dimensions differ");
    assert!(dst.len() >= m * n, "gemm: destination too small");
    assert!(extent(&a) <= a.data().len() && extent(&b) <= b.data().len());
    let ((a_rs, a_cs), (b_rs, b_cs)) = (a.strides(), b.strides());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if write == Write::Overwrite {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: every index the product touches was checked above: `dst` holds `m * n`
    // row-major floats and each operand's largest index is inside its slice.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            write == Write::Accumulate,
            a.data().as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.data().as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: MatRef<'_>, b: MatRef<'_>) -> Vec<f32> {
        let ((a_rs, a_cs), (b_rs, b_cs)) = (a.strides(), b.strides());
        let mut out = vec![0.0; a.rows() * b.cols()];
        for i in 0..a.rows() {
            for j in 0..b.cols() {
                for l in 0..a.cols() {
                    out[i * b.cols() + j] +=
                        a.data()[i * a_rs + l * a_cs] * b.data()[l * b_rs + j * b_cs];
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_naive_product_with_transposed_views() {
        let a: Vec<f32> = (0..15).map(|v| (v as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..20).map(|v| (v as f32 * 0.91).cos()).collect();
        // a: 3x5, b stored as 4x5 and used transposed (5x4).
        let (ma, mb) = (
            MatRef::contiguous(&a, 3, 5),
            MatRef::contiguous(&b, 4, 5).t(),
        );
        let mut dst = vec![f32::NAN; 12];
        gemm(&mut dst, ma, mb, Write::Overwrite);
        let want = naive(ma, mb);
        for (x, y) in dst.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        gemm(&mut dst, ma, mb, Write::Accumulate);
        for (x, y) in dst.iter().zip(&want) {
            assert!((x - 2.0 * y).abs() < 1e-5, "{x} vs 2 * {y}");
        }
    }

    #[test]
    #[should_panic(expected = "inner dimensions")]
    fn refuses_mismatched_shapes() {
        let a = [0.0f32; 6];
        gemm(
            &mut [0.0; 4],
            MatRef::contiguous(&a, 2, 3),
            MatRef::contiguous(&a, 2, 3),
            Write::Overwrite,
        );
    }
}
