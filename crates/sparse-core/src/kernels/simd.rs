//! Runtime SIMD dispatch for the kernels' hot loops.
//!
//! The workspace compiles for baseline x86-64 (SSE2), so without help LLVM would never
//! emit AVX2/AVX-512 code. Each hot function is written once as a generic body over
//! [`Fma`] and instantiated three times by [`multiversion!`]: with `avx512f`, with
//! `avx2,fma`, and without extra features; the best one supported by the running CPU is
//! picked once per call (the check is a cached atomic load).

use std::sync::atomic::{AtomicU8, Ordering};

/// One instruction-set instantiation: its multiply-add and its register budget.
pub(crate) trait Fma {
    /// Widest accumulator tile (in f32) that fits the vector registers with room for
    /// operands: 16 vectors of 16 (AVX-512), 8 of 8 (AVX2), 8 of 4 (SSE2).
    const MAX_TILE: usize;
    /// Taps per weight-gradient group: 16-float accumulators held in registers.
    const WGRAD_GROUP: usize;
    /// `a * b + c`.
    fn fma(a: f32, b: f32, c: f32) -> f32;
}

/// AVX-512F + FMA (32 vector registers of 16 floats).
pub(crate) struct Avx512;

/// AVX2 + FMA (16 vector registers of 8 floats).
pub(crate) struct Avx2;

/// Baseline SSE2 without FMA (16 registers of 4 floats): `mul_add` would be a slow
/// libm call here, so multiply and add stay separate.
pub(crate) struct Baseline;

impl Fma for Avx512 {
    const MAX_TILE: usize = 256;
    const WGRAD_GROUP: usize = 8;
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl Fma for Avx2 {
    const MAX_TILE: usize = 64;
    const WGRAD_GROUP: usize = 4;
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl Fma for Baseline {
    const MAX_TILE: usize = 32;
    const WGRAD_GROUP: usize = 2;
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// The widest instruction set the running CPU supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// No usable extension beyond the compile-time baseline.
    Baseline = 1,
    /// AVX2 with FMA.
    Avx2 = 2,
    /// AVX-512F (plus AVX2 and FMA).
    Avx512 = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The detected [`Level`], cached after the first call.
#[inline]
pub(crate) fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        1 => Level::Baseline,
        2 => Level::Avx2,
        3 => Level::Avx512,
        _ => {
            let detected = detect();
            LEVEL.store(detected as u8, Ordering::Relaxed);
            detected
        }
    }
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        if avx2 && is_x86_feature_detected!("avx512f") {
            return Level::Avx512;
        }
        if avx2 {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// Defines `fn name(args)` that runs the generic body `fn<F: Fma>(args)` compiled for the
/// best instruction set available at run time.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident<$F:ident>($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn imp<$F: $crate::kernels::simd::Fma>($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v512($($arg: $ty),*) {
                    imp::<$crate::kernels::simd::Avx512>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v256($($arg: $ty),*) {
                    imp::<$crate::kernels::simd::Avx2>($($arg),*)
                }
                match $crate::kernels::simd::level() {
                    // SAFETY: `level()` checked at run time that the CPU has these features.
                    $crate::kernels::simd::Level::Avx512 => return unsafe { v512($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::simd::Level::Avx2 => return unsafe { v256($($arg),*) },
                    $crate::kernels::simd::Level::Baseline => {}
                }
            }
            imp::<$crate::kernels::simd::Baseline>($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// Floats per 64-byte cache line.
const LINE_FLOATS: usize = 16;

/// A reusable scratch buffer whose slices start on a cache line, so that every
/// 16-float vector load of a row whose length is a multiple of 16 touches one line
/// instead of two (a plain `Vec<f32>` is only 16-byte aligned).
#[derive(Debug, Default)]
pub(crate) struct AlignedScratch(Vec<f32>);

impl AlignedScratch {
    /// An empty buffer (usable in `thread_local!` initialisers).
    pub(crate) const fn new() -> Self {
        Self(Vec::new())
    }

    /// `len` floats starting on a cache line; their values are whatever the previous
    /// use left (zeros when the buffer grows).
    pub(crate) fn slice(&mut self, len: usize) -> &mut [f32] {
        if self.0.len() < len + LINE_FLOATS {
            self.0.resize(len + LINE_FLOATS, 0.0);
        }
        let misaligned = (self.0.as_ptr() as usize / std::mem::size_of::<f32>()) % LINE_FLOATS;
        let start = (LINE_FLOATS - misaligned) % LINE_FLOATS;
        &mut self.0[start..start + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_scratch_slices_start_on_a_cache_line() {
        let mut scratch = AlignedScratch::new();
        for len in [1, 17, 1000, 5, 70_000] {
            let slice = scratch.slice(len);
            assert_eq!(slice.len(), len);
            assert_eq!(slice.as_ptr() as usize % 64, 0, "len {len}");
        }
    }
}
