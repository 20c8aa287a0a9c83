//! The shared inner engine of every kernel here: sums of shifted, weighted rows.
//!
//! A depthwise conv output row, a conv1d output row, a row of `x W^T` in transposed
//! layout and their input gradients are all `out[j] = Σ_taps w · src[off + j]`: a list of
//! *taps* (an offset into a zero-padded source and a weight) applied to contiguous
//! rows. Weight gradients are the dual, `g_tap = Σ_j dy[j] · src[off + j]`. Writing both
//! once, with register-resident accumulator tiles, gives every kernel the same
//! vectorised loop, and a sparse kernel is simply a shorter tap list.

use super::simd::{Fma, multiversion};

/// Width granularity of rows: every row handed to the engine is padded to a multiple of
/// this many floats so that the tiles below never need a scalar remainder loop.
pub(crate) const LANES: usize = 16;

/// Rounds `n` up to a multiple of [`LANES`].
pub(crate) fn round_up(n: usize) -> usize {
    n.div_ceil(LANES) * LANES
}

/// One weighted shift: `w` times the source starting at `off`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tap {
    /// Offset of the tap into the source row block.
    pub off: usize,
    /// The tap's weight.
    pub w: f32,
}

/// `src[start..start + T]` as an array, so that every loop over it has a trip count
/// LLVM knows (a runtime count would keep the accumulators in memory).
#[inline(always)]
pub(crate) fn lanes<const T: usize>(src: &[f32], start: usize) -> &[f32; T] {
    match src[start..start + T].try_into() {
        Ok(array) => array,
        Err(_) => unreachable!("a slice of length T converts to [f32; T]"),
    }
}

#[inline(always)]
fn fwd_tile<F: Fma, const T: usize>(
    src: &[f32],
    j: usize,
    taps: &[Tap],
    init: f32,
    out: &mut [f32],
) {
    // The accumulator is a fixed-size array so that LLVM keeps it in vector registers
    // across all taps: each multiply-add then costs one load.
    let mut acc = [init; T];
    for tap in taps {
        let xs = lanes::<T>(src, tap.off + j);
        for t in 0..T {
            acc[t] = F::fma(tap.w, xs[t], acc[t]);
        }
    }
    out[..T].copy_from_slice(&acc);
}

multiversion! {
    /// For `r < rows`, `j < width`:
    /// `out[r * out_stride + j] = init + Σ_taps w · src[r * src_stride + off + j]`.
    /// `width` must be a multiple of [`LANES`] and `src` long enough for every read.
    pub(crate) fn taps_fwd<F>(
        src: &[f32],
        src_stride: usize,
        taps: &[Tap],
        init: f32,
        out: &mut [f32],
        out_stride: usize,
        rows: usize,
        width: usize,
    ) {
        debug_assert_eq!(width % LANES, 0);
        for r in 0..rows {
            let s = &src[r * src_stride..];
            let o = &mut out[r * out_stride..r * out_stride + width];
            let mut j = 0;
            while F::MAX_TILE >= 256 && j + 256 <= width {
                fwd_tile::<F, 256>(s, j, taps, init, &mut o[j..]);
                j += 256;
            }
            while F::MAX_TILE >= 128 && j + 128 <= width {
                fwd_tile::<F, 128>(s, j, taps, init, &mut o[j..]);
                j += 128;
            }
            while F::MAX_TILE >= 64 && j + 64 <= width {
                fwd_tile::<F, 64>(s, j, taps, init, &mut o[j..]);
                j += 64;
            }
            while j + 32 <= width {
                fwd_tile::<F, 32>(s, j, taps, init, &mut o[j..]);
                j += 32;
            }
            while j < width {
                fwd_tile::<F, 16>(s, j, taps, init, &mut o[j..]);
                j += 16;
            }
        }
    }
}

/// Pairwise sum of the lanes: four vector adds instead of fifteen dependent scalar ones
/// (which cost as much as the whole dot product on short rows).
#[inline(always)]
pub(crate) fn horizontal_sum(mut v: [f32; LANES]) -> f32 {
    let mut half = LANES / 2;
    while half > 0 {
        for l in 0..half {
            v[l] += v[l + half];
        }
        half /= 2;
    }
    v[0]
}

/// Accumulates `G` taps' products. With `LANEWISE`, `out` holds `G` lane vectors
/// (`G * LANES` floats) that are loaded, extended and stored back; otherwise `out`
/// holds `G` scalars that receive the lane sums.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn wgrad_group<F: Fma, const G: usize, const LANEWISE: bool>(
    dy: &[f32],
    dy_stride: usize,
    src: &[f32],
    src_stride: usize,
    offs: &[usize],
    out: &mut [f32],
    rows: usize,
    width: usize,
) {
    // G taps share each loaded `dy` vector; partial sums stay lane-wise until the end.
    let mut acc = [[0.0f32; LANES]; G];
    if LANEWISE {
        for (g, a) in acc.iter_mut().enumerate() {
            *a = *lanes::<LANES>(out, g * LANES);
        }
    }
    let offs: &[usize; G] = match offs[..G].try_into() {
        Ok(array) => array,
        Err(_) => unreachable!("a slice of length G converts to [usize; G]"),
    };
    for r in 0..rows {
        let d_base = r * dy_stride;
        let s_base = r * src_stride;
        let mut j = 0;
        while j < width {
            let d = lanes::<LANES>(dy, d_base + j);
            for g in 0..G {
                let xs = lanes::<LANES>(src, s_base + offs[g] + j);
                for l in 0..LANES {
                    acc[g][l] = F::fma(d[l], xs[l], acc[g][l]);
                }
            }
            j += LANES;
        }
    }
    for g in 0..G {
        if LANEWISE {
            out[g * LANES..(g + 1) * LANES].copy_from_slice(&acc[g]);
        } else {
            out[g] += horizontal_sum(acc[g]);
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn wgrad_taps<F: Fma, const LANEWISE: bool>(
    dy: &[f32],
    dy_stride: usize,
    src: &[f32],
    src_stride: usize,
    offs: &[usize],
    out: &mut [f32],
    rows: usize,
    width: usize,
) {
    debug_assert_eq!(width % LANES, 0);
    let per_tap = if LANEWISE { LANES } else { 1 };
    debug_assert_eq!(offs.len() * per_tap, out.len());
    let mut t = 0;
    while F::WGRAD_GROUP >= 8 && t + 8 <= offs.len() {
        let o = &mut out[t * per_tap..];
        wgrad_group::<F, 8, LANEWISE>(dy, dy_stride, src, src_stride, &offs[t..], o, rows, width);
        t += 8;
    }
    while F::WGRAD_GROUP >= 4 && t + 4 <= offs.len() {
        let o = &mut out[t * per_tap..];
        wgrad_group::<F, 4, LANEWISE>(dy, dy_stride, src, src_stride, &offs[t..], o, rows, width);
        t += 4;
    }
    while t + 2 <= offs.len() {
        let o = &mut out[t * per_tap..];
        wgrad_group::<F, 2, LANEWISE>(dy, dy_stride, src, src_stride, &offs[t..], o, rows, width);
        t += 2;
    }
    while t < offs.len() {
        let o = &mut out[t * per_tap..];
        wgrad_group::<F, 1, LANEWISE>(dy, dy_stride, src, src_stride, &offs[t..], o, rows, width);
        t += 1;
    }
}

multiversion! {
    /// For each tap `t`: `grads[t] += Σ_{r < rows, j < width} dy[r * dy_stride + j] ·
    /// src[r * src_stride + offs[t] + j]`. `width` must be a multiple of [`LANES`].
    pub(crate) fn taps_wgrad<F>(
        dy: &[f32],
        dy_stride: usize,
        src: &[f32],
        src_stride: usize,
        offs: &[usize],
        grads: &mut [f32],
        rows: usize,
        width: usize,
    ) {
        wgrad_taps::<F, false>(dy, dy_stride, src, src_stride, offs, grads, rows, width);
    }
}

multiversion! {
    /// [`taps_wgrad`] into lane-wise partial sums (`LANES` floats per tap), so that many
    /// calls (e.g. one per image) pay for one final [`reduce_lanes`] instead of one
    /// reduction each.
    pub(crate) fn taps_wgrad_lanes<F>(
        dy: &[f32],
        dy_stride: usize,
        src: &[f32],
        src_stride: usize,
        offs: &[usize],
        lane_sums: &mut [f32],
        rows: usize,
        width: usize,
    ) {
        wgrad_taps::<F, true>(dy, dy_stride, src, src_stride, offs, lane_sums, rows, width);
    }
}

/// `grads[t] = Σ lanes of tap t` for lane-wise sums from [`taps_wgrad_lanes`].
pub(crate) fn reduce_lanes(lane_sums: &[f32], grads: &mut [f32]) {
    for (g, l) in grads.iter_mut().zip(lane_sums.chunks_exact(LANES)) {
        let l: [f32; LANES] = match l.try_into() {
            Ok(array) => array,
            Err(_) => unreachable!("chunks_exact yields LANES floats"),
        };
        *g = horizontal_sum(l);
    }
}
