//! Point-wise difference formulas of OpenCFD-SCU: the upwind flux reconstructions used for
//! the Steger–Warming split inviscid fluxes, and the central differences of the viscous terms.
//!
//! # Conventions
//!
//! The inviscid derivative at point `i` is `(h_{i+1/2} - h_{i-1/2}) / dx` where the face value
//! `h = h⁺ + h⁻` is reconstructed from the positive and the negative split fluxes.
//!
//! * `h⁺_{i+1/2} = scheme.reconstruct(&[f⁺_{i-3}, …, f⁺_{i+4}])` (`stencil[3]` is point `i`);
//! * `h⁻_{i+1/2} = scheme.reconstruct(&mirror)` with `mirror[m] = f⁻_{i+4-m}`, which is what
//!   [`Reconstruction::reconstruct_minus`] does from the natural-order window
//!   `[f⁻_{i-3}, …, f⁻_{i+4}]`.
//!
//! This is exactly the official indexing: the official `*_P` kernels evaluate `f⁺` at face
//! `j+1/2` from the window `f[j-3..=j+4]` (UP7 and WENO7 only use `f[j-3..=j+3]`, WENO5 uses
//! `f[j-2..=j+2]`, NND2 `f[j-1..=j+1]`), and the official `*_M` kernels evaluate `f⁻` at face
//! `j-1/2` from `f[j-4..=j+3]`, i.e. at face `i+1/2` (`i = j-1`) from `f[i-3..=i+4]`, with
//! formulas that are the mirror images of the `*_P` ones. Two official `*_M` kernels are *not*
//! exact mirrors (OMP6 and the WENO7-SYMBO limiter); [`Reconstruction::reconstruct_minus_official`]
//! reproduces them literally. No official scheme needs more than these 8 points.
//!
//! All values are dimensionless: the caller divides by `dx` (the official code uses the uniform
//! computational spacing `hx = 1/(nx_global-1)` … and multiplies by the Jacobian, see the notes at
//! the end of this file).

use serde::{Deserialize, Serialize};

/// Threshold `WENO_TV_Limiter` of the WENO7-SYMBO total-variation limiter (official default).
pub const WENO_TV_LIMITER: f64 = 5.0;
/// Threshold `WENO_TV_MAX` of the WENO7-SYMBO total-variation limiter (official default).
pub const WENO_TV_MAX: f64 = 0.2;

/// The three official parameter sets of the optimized monotonicity-preserving OMP6 scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Omp6Variant {
    /// `OMP6_HR`, "high robustness": m = 0.015, n = 0.
    Hr,
    /// `OMP6_LD`, "low dissipation": m = 0.001, n = 0.
    Ld,
    /// `OMP6_CD8`: m = 0, n = -1/140, whose linear part is the 8th-order central interpolation.
    Cd8,
}

impl Omp6Variant {
    /// The free parameters `(m, n)` of the OMP6 family.
    pub fn parameters(self) -> (f64, f64) {
        match self {
            Omp6Variant::Hr => (0.015, 0.0),
            Omp6Variant::Ld => (0.001, 0.0),
            Omp6Variant::Cd8 => (0.0, -1.0 / 140.0),
        }
    }
}

/// The inviscid schemes (official names via `name()`).
///
/// The official `SCHEME_HYBRIDAUTO` is not a point-wise formula: it picks one of these per face
/// (see [`HybridStyle`]). There is no `UD7L` in OpenCFD-SCU's scheme list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reconstruction {
    /// `UP7`: 7th-order linear upwind.
    Up7,
    /// `WENO5`: Jiang–Shu WENO, ε = 1e-6, p = 2.
    Weno5,
    /// `WENO7`: Balsara–Shu 7th-order WENO.
    Weno7,
    /// `WENO7_SYMBO`: bandwidth-optimized symmetric WENO (Martin et al. 2006), 8 points.
    Weno7Symbo,
    /// `WENO7_SYMBO_LIM`: WENO7_SYMBO with the total-variation switch to the linear weights.
    Weno7SymboLim,
    /// `OMP6_HR`, `OMP6_LD`, `OMP6_CD8`: optimized 6th-order monotonicity-preserving scheme.
    ///
    /// Its limiter uses the published (Suresh–Huynh) four-argument minmod, not the official
    /// code's, which takes the signed minimum and so clips smooth maxima (first order there);
    /// the official variant stays available as [`Reconstruction::reconstruct_minus_official`]
    /// for the negative flux and [`omp6_official`] for the positive one.
    Omp6(Omp6Variant),
    /// `NND2`: 2nd-order minmod (TVD) upwind.
    Nnd2,
}

impl Reconstruction {
    /// Every point-wise inviscid scheme of the official code.
    pub const ALL: [Reconstruction; 9] = [
        Reconstruction::Up7,
        Reconstruction::Weno5,
        Reconstruction::Weno7,
        Reconstruction::Weno7Symbo,
        Reconstruction::Weno7SymboLim,
        Reconstruction::Omp6(Omp6Variant::Hr),
        Reconstruction::Omp6(Omp6Variant::Ld),
        Reconstruction::Omp6(Omp6Variant::Cd8),
        Reconstruction::Nnd2,
    ];

    /// Value of the positive split flux at face `i+1/2` from the 8 point values
    /// `f[i-3..=i+4]` (`stencil[3]` is point `i`). The negative split flux at `i+1/2` is
    /// `reconstruct(mirror)` with `mirror[m] = f[i+4-m]`.
    #[inline(always)]
    pub fn reconstruct(self, stencil: &[f64; 8]) -> f64 {
        let s = stencil;
        match self {
            Reconstruction::Up7 => up7(s),
            Reconstruction::Weno5 => weno5(&[s[1], s[2], s[3], s[4], s[5]]),
            Reconstruction::Weno7 => weno7(s),
            Reconstruction::Weno7Symbo => weno7_symbo(s, false),
            Reconstruction::Weno7SymboLim => weno7_symbo(s, true),
            Reconstruction::Omp6(v) => omp6_plus(s, v, true),
            Reconstruction::Nnd2 => nnd2(s[2], s[3], s[4]),
        }
    }

    /// Negative-split flux at face i+1/2 from the natural-order window `f[i-3..=i+4]`:
    /// `reconstruct` of the mirrored window (the symmetric, intended formula).
    #[inline]
    pub fn reconstruct_minus(self, f: &[f64; 8]) -> f64 {
        self.reconstruct(&mirror(f))
    }

    /// Negative-split flux at face i+1/2 from the natural-order window `f[i-3..=i+4]`, exactly as
    /// the official `*_M` kernels compute it. It equals [`Self::reconstruct_minus`] except for
    /// * OMP6: the official `f⁻` limiter takes the large-curvature bound as
    ///   `f_j + (f_j - f_{j-1})/2 + 4/3 d^{M4}` (mirror would be `f_j + (f_j - f_{j+1})/2 …`) and
    ///   the lower bound `min(f_{j+1}, f_{j-1}, f^{MD})` (mirror would be `min(f_j, f_{j-1}, …)`),
    ///   where `j = i+1` is the upwind point of `f⁻`;
    /// * WENO7_SYMBO_LIM: the official `f⁻` kernel never computes `TVmin` (left at 0), so the
    ///   switch to linear weights never fires: it equals WENO7_SYMBO for `f⁻`.
    #[inline]
    pub fn reconstruct_minus_official(self, f: &[f64; 8]) -> f64 {
        match self {
            Reconstruction::Omp6(v) => omp6_minus_official(f, v),
            Reconstruction::Weno7SymboLim => weno7_symbo(&mirror(f), false),
            _ => self.reconstruct_minus(f),
        }
    }

    /// Official input name (`SCHEME_INVIS` of `opencfd-scu.in`).
    pub fn name(self) -> &'static str {
        match self {
            Reconstruction::Up7 => "UP7",
            Reconstruction::Weno5 => "WENO5",
            Reconstruction::Weno7 => "WENO7",
            Reconstruction::Weno7Symbo => "WENO7_SYMBO",
            Reconstruction::Weno7SymboLim => "WENO7_SYMBO_LIM",
            Reconstruction::Omp6(Omp6Variant::Hr) => "OMP6_HR",
            Reconstruction::Omp6(Omp6Variant::Ld) => "OMP6_LD",
            Reconstruction::Omp6(Omp6Variant::Cd8) => "OMP6_CD8",
            Reconstruction::Nnd2 => "NND2",
        }
    }

    /// Parses an official name (exact, case-sensitive, as the official `strcmp`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Official `Scheme_invis_ID` (301..=309; 310 is SCHEME_HYBRIDAUTO).
    pub fn official_id(self) -> u32 {
        match self {
            Reconstruction::Up7 => 301,
            Reconstruction::Weno5 => 302,
            Reconstruction::Weno7 => 303,
            Reconstruction::Weno7Symbo => 304,
            Reconstruction::Weno7SymboLim => 305,
            Reconstruction::Nnd2 => 306,
            Reconstruction::Omp6(Omp6Variant::Hr) => 307,
            Reconstruction::Omp6(Omp6Variant::Ld) => 308,
            Reconstruction::Omp6(Omp6Variant::Cd8) => 309,
        }
    }

    /// Formal order of `(h_{i+1/2} - h_{i-1/2})/dx` on smooth data with the optimal (linear)
    /// weights. WENO7-SYMBO's bandwidth-optimized weights give only 4th order (all its 4-point
    /// candidates are 4th order, the optimized weights buy resolution, not order).
    pub fn formal_order(self) -> usize {
        match self {
            Reconstruction::Up7 => 7,
            Reconstruction::Weno5 => 5,
            Reconstruction::Weno7 => 7,
            Reconstruction::Weno7Symbo | Reconstruction::Weno7SymboLim => 4,
            Reconstruction::Omp6(Omp6Variant::Cd8) => 8,
            Reconstruction::Omp6(_) => 6,
            Reconstruction::Nnd2 => 2,
        }
    }

    /// Which entries of the 8-point window `reconstruct` reads.
    pub fn stencil_range(self) -> std::ops::RangeInclusive<usize> {
        match self {
            Reconstruction::Up7 | Reconstruction::Weno7 => 0..=6,
            Reconstruction::Weno5 => 1..=5,
            Reconstruction::Nnd2 => 2..=4,
            _ => 0..=7,
        }
    }

    /// Coefficients `c` of the underlying linear scheme, `h⁺ = Σ c[m] f[i-3+m]` (the optimal
    /// weights of the WENO schemes, the unlimited OMP6); `None` for NND2.
    pub fn linear_coefficients(self) -> Option<[f64; 8]> {
        let unit = |m: usize| -> [f64; 8] { std::array::from_fn(|k| f64::from(u8::from(k == m))) };
        match self {
            Reconstruction::Up7 | Reconstruction::Weno7 => {
                Some([-3.0, 25.0, -101.0, 319.0, 214.0, -38.0, 4.0, 0.0].map(|c| c / 420.0))
            }
            Reconstruction::Weno5 => {
                Some([0.0, 2.0, -13.0, 47.0, 27.0, -3.0, 0.0, 0.0].map(|c| c / 60.0))
            }
            Reconstruction::Weno7Symbo | Reconstruction::Weno7SymboLim => {
                let am: f64 = SYMBO_WEIGHTS.iter().sum();
                Some(std::array::from_fn(|m| {
                    let q = weno7_candidates(&unit(m));
                    q.iter().zip(SYMBO_WEIGHTS).map(|(q, d)| q * d).sum::<f64>() / (12.0 * am)
                }))
            }
            Reconstruction::Omp6(v) => Some(std::array::from_fn(|m| omp6_linear(&unit(m), v))),
            Reconstruction::Nnd2 => None,
        }
    }

    /// `true` for the schemes whose weights depend on the data.
    pub fn is_nonlinear(self) -> bool {
        !matches!(self, Reconstruction::Up7)
    }

    /// Official point extents `(ka, kb)` of the window read by the `*_P` kernel (positive flux at
    /// face j+1/2 reads f[j+ka..=j+kb]); they set how many faces get a boundary closure.
    fn extent_plus(self) -> (i64, i64) {
        match self {
            Reconstruction::Weno7 => (-3, 3),
            Reconstruction::Weno5 | Reconstruction::Nnd2 => (-2, 2),
            _ => (-3, 4),
        }
    }

    /// Official extents of the `*_M` kernel (negative flux at face j-1/2 reads f[j+ka..=j+kb]).
    fn extent_minus(self) -> (i64, i64) {
        match self {
            Reconstruction::Weno7 => (-3, 3),
            Reconstruction::Weno5 | Reconstruction::Nnd2 => (-2, 2),
            _ => (-4, 3),
        }
    }

    /// Official `DIF_BOUND` closure of the POSITIVE flux at face `i+1/2` (`i` in `-1..n`, interior
    /// points `0..n`), from the window `f[i-3..=i+4]` (entries outside `0..n` are never read).
    /// Returns `None` where the interior scheme applies. `left`/`right` say whether that side is a
    /// physical boundary with `DIF_BOUND = 1`; the left rule wins when both apply (tiny `n`).
    /// For SCHEME_HYBRIDAUTO pass `Up7` (the hybrid kernels use the 8-point extents).
    pub fn dif_bound_plus(
        self,
        f: &[f64; 8],
        i: i64,
        n: i64,
        left: bool,
        right: bool,
    ) -> Option<f64> {
        let (ka, kb) = self.extent_plus();
        let w5 = [f[1], f[2], f[3], f[4], f[5]];
        if left && i < -ka {
            return Some(match i {
                -1 => f[4],
                0 => weno5_subset(&w5, [true, false, false]),
                1 => weno5_subset(&w5, [true, true, false]),
                _ => weno5(&w5),
            });
        }
        if right && i - n >= -kb {
            return Some(match i - n {
                -1 => f[3] + 0.5 * minmod2(f[3] - f[2], f[3] - f[2]),
                -2 => weno5_subset(&w5, [false, true, true]),
                _ => weno5(&w5),
            });
        }
        None
    }

    /// Official `DIF_BOUND` closure of the NEGATIVE flux at face `i+1/2`; same arguments as
    /// [`Self::dif_bound_plus`] (window in natural order `f[i-3..=i+4]`).
    pub fn dif_bound_minus(
        self,
        f: &[f64; 8],
        i: i64,
        n: i64,
        left: bool,
        right: bool,
    ) -> Option<f64> {
        let (ka, kb) = self.extent_minus();
        // mirrored 5-point window centred on the upwind point i+1: f[i+3], …, f[i-1]
        let w5 = [f[6], f[5], f[4], f[3], f[2]];
        if left && i + 1 < -ka {
            return Some(match i {
                -1 => weno5_subset(&w5, [false, false, true]),
                0 => weno5_subset(&w5, [false, true, true]),
                _ => weno5(&w5),
            });
        }
        if right && i - n >= -kb - 1 {
            return Some(match i - n {
                -1 => f[3],
                -2 => f[4] - 0.5 * minmod2(f[4] - f[3], f[4] - f[3]),
                -3 => weno5_subset(&w5, [true, true, false]),
                _ => weno5(&w5),
            });
        }
        None
    }
}

/// OMP6 positive flux with the textbook (Suresh–Huynh) four-argument minmod instead of the
/// official one. NOT the official formula: the official minmod4 returns `+max|x|` for four
/// negative curvatures, which makes the limiter clip smooth maxima (observed L∞ order 1 on
/// sin x for all three OMP6 variants); with this minmod4 OMP6 converges at 6 (8 for OMP6_CD8).
/// For the negative flux pass the mirrored window.
#[inline]
pub fn omp6_textbook_minmod4(stencil: &[f64; 8], variant: Omp6Variant) -> f64 {
    omp6_plus(stencil, variant, true)
}

/// OMP6 positive flux exactly as the official kernel computes it, minmod included (see
/// [`Reconstruction::Omp6`]).
#[inline]
pub fn omp6_official(stencil: &[f64; 8], variant: Omp6Variant) -> f64 {
    omp6_plus(stencil, variant, false)
}

/// Mirror of an 8-point window: `out[m] = f[7-m]`.
#[inline]
pub fn mirror(f: &[f64; 8]) -> [f64; 8] {
    [f[7], f[6], f[5], f[4], f[3], f[2], f[1], f[0]]
}

/// Official `sign(1, x)`: +1 for x ≥ 0, -1 otherwise.
#[inline]
fn sgn(x: f64) -> f64 {
    if x >= 0.0 { 1.0 } else { -1.0 }
}

/// minmod of two arguments (0 when the signs differ).
#[inline]
fn minmod2(a: f64, b: f64) -> f64 {
    0.5 * (sgn(a) + sgn(b)) * a.abs().min(b.abs())
}

/// The official four-argument minmod, reproduced literally: nonzero only when all four share
/// a sign, and then `sign * min(x1, x2, x3, x4)` with the *signed* minimum (for four negative
/// arguments this is `+max|x|`, not the textbook `-min|x|`).
/// With `textbook`, the Suresh–Huynh `sign * min(|x1|, |x2|, |x3|, |x4|)` instead.
#[inline]
fn minmod4(x1: f64, x2: f64, x3: f64, x4: f64, textbook: bool) -> f64 {
    let s1 = sgn(x1);
    let f = 0.5 * (s1 + sgn(x2)) * (0.5 * (s1 + sgn(x3))).abs() * (0.5 * (s1 + sgn(x4))).abs();
    if textbook {
        f * x1.abs().min(x2.abs()).min(x3.abs().min(x4.abs()))
    } else {
        f * x1.min(x2).min(x3.min(x4))
    }
}

/// UP7 face value from f[i-3..=i+3].
#[inline(always)]
fn up7(s: &[f64; 8]) -> f64 {
    (-3.0 * s[0] + 25.0 * s[1] - 101.0 * s[2] + 319.0 * s[3] + 214.0 * s[4] - 38.0 * s[5]
        + 4.0 * s[6])
        / 420.0
}

/// NND2 face value: `f_i + minmod(f_{i+1} - f_i, f_i - f_{i-1}) / 2`.
#[inline(always)]
fn nnd2(fm: f64, f0: f64, fp: f64) -> f64 {
    f0 + 0.5 * minmod2(fp - f0, f0 - fm)
}

/// Jiang–Shu WENO5 from f[i-2..=i+2]: smoothness indicators scaled by 12, ε scaled to 12e-6,
/// linear weights (3, 6, 1)/10 on the candidates {i..i+2}, {i-1..i+1}, {i-2..i}.
#[inline(always)]
fn weno5(p: &[f64; 5]) -> f64 {
    let (b, q) = weno5_parts(p);
    let e = 12.0 * WENO5_EPS;
    let t0 = (e + b[0]) * (e + b[0]);
    let t1 = (e + b[1]) * (e + b[1]);
    let t2 = (e + b[2]) * (e + b[2]);
    let a0 = 3.0 * t1 * t2;
    let a1 = 6.0 * t0 * t2;
    let a2 = t0 * t1;
    (a0 * q[0] + a1 * q[1] + a2 * q[2]) / (6.0 * (a0 + a1 + a2))
}

const WENO5_EPS: f64 = 1e-6;

/// Smoothness indicators (times 12) and candidate values (times 6) of WENO5.
#[inline]
fn weno5_parts(p: &[f64; 5]) -> ([f64; 3], [f64; 3]) {
    let sq = |x: f64| x * x;
    let b0 = 13.0 * sq(p[2] - 2.0 * p[3] + p[4]) + 3.0 * sq(3.0 * p[2] - 4.0 * p[3] + p[4]);
    let b1 = 13.0 * sq(p[1] - 2.0 * p[2] + p[3]) + 3.0 * sq(p[1] - p[3]);
    let b2 = 13.0 * sq(p[0] - 2.0 * p[1] + p[2]) + 3.0 * sq(p[0] - 4.0 * p[1] + 3.0 * p[2]);
    let q0 = 2.0 * p[2] + 5.0 * p[3] - p[4];
    let q1 = -p[1] + 5.0 * p[2] + 2.0 * p[3];
    let q2 = 2.0 * p[0] - 7.0 * p[1] + 11.0 * p[2];
    ([b0, b1, b2], [q0, q1, q2])
}

/// WENO5 restricted to a subset of its candidates (official boundary closures), with the
/// official reciprocal form of the weights `d_k / (12ε + β_k)²`.
#[inline]
fn weno5_subset(p: &[f64; 5], used: [bool; 3]) -> f64 {
    let (b, q) = weno5_parts(p);
    let d = [3.0, 6.0, 1.0];
    let e = 12.0 * WENO5_EPS;
    let (mut num, mut den) = (0.0, 0.0);
    for k in 0..3 {
        if used[k] {
            let a = d[k] / ((e + b[k]) * (e + b[k]));
            num += a * q[k];
            den += a;
        }
    }
    num / (6.0 * den)
}

/// The four 4-point candidate values (times 12) of the 7th-order WENO family on f[i-3..=i+4]:
/// candidate k uses f[i-3+k..=i+k] (k = 4 is the fully downwind one used by WENO7-SYMBO).
#[inline]
fn weno7_candidates(s: &[f64; 8]) -> [f64; 5] {
    [
        -3.0 * s[0] + 13.0 * s[1] - 23.0 * s[2] + 25.0 * s[3],
        s[1] - 5.0 * s[2] + 13.0 * s[3] + 3.0 * s[4],
        -s[2] + 7.0 * s[3] + 7.0 * s[4] - s[5],
        3.0 * s[3] + 13.0 * s[4] - 5.0 * s[5] + s[6],
        25.0 * s[4] - 23.0 * s[5] + 13.0 * s[6] - 3.0 * s[7],
    ]
}

/// The (first, second, third) difference combinations of the 4-point candidate k on f[k..k+3]
/// that build the WENO7 smoothness indicators.
#[inline]
fn weno7_differences(s: &[f64; 8], k: usize) -> (f64, f64, f64) {
    let (a, b, c, d) = (s[k], s[k + 1], s[k + 2], s[k + 3]);
    let third = -6.0 * a + 18.0 * (b - c) + 6.0 * d;
    match k {
        0 => (
            -2.0 * a + 9.0 * b - 18.0 * c + 11.0 * d,
            -6.0 * a + 24.0 * b - 30.0 * c + 12.0 * d,
            third,
        ),
        1 => (
            a - 6.0 * b + 3.0 * c + 2.0 * d,
            6.0 * b - 12.0 * c + 6.0 * d,
            third,
        ),
        2 => (
            -2.0 * a - 3.0 * b + 6.0 * c - d,
            6.0 * a - 12.0 * b + 6.0 * c,
            third,
        ),
        3 => (
            -11.0 * a + 18.0 * b - 9.0 * c + 2.0 * d,
            12.0 * a - 30.0 * b + 24.0 * c - 6.0 * d,
            third,
        ),
        _ => (
            -26.0 * a + 57.0 * b - 42.0 * c + 11.0 * d,
            18.0 * a - 48.0 * b + 42.0 * c - 12.0 * d,
            third,
        ),
    }
}

/// Balsara–Shu WENO7 from f[i-3..=i+3]: β_k = 960 a² + 1040 b² + 1043 c² + 80 a c, weights
/// (1, 12, 18, 4)/35 over (ε + β_k)², ε = 3.456e-4 (all in the official scaling).
#[inline(always)]
fn weno7(s: &[f64; 8]) -> f64 {
    const EPS: f64 = 3.456e-4;
    let mut t = [0.0; 4];
    for (k, tk) in t.iter_mut().enumerate() {
        let (a, b, c) = weno7_differences(s, k);
        let beta = 960.0 * a * a + 1040.0 * b * b + 1043.0 * c * c + 80.0 * (a * c);
        let e = EPS + beta;
        *tk = e * e;
    }
    let w0 = t[1] * t[2] * t[3];
    let w1 = 12.0 * t[0] * t[2] * t[3];
    let w2 = 18.0 * t[0] * t[1] * t[3];
    let w3 = 4.0 * t[0] * t[1] * t[2];
    let q = weno7_candidates(s);
    (w0 * q[0] + w1 * q[1] + w2 * q[2] + w3 * q[3]) / (12.0 * (w0 + w1 + w2 + w3))
}

/// Bandwidth-optimized linear weights of WENO7-SYMBO (candidates 0..=4).
const SYMBO_WEIGHTS: [f64; 5] = [
    0.0401954833730,
    0.2493800006710,
    0.4802686256260,
    0.2009775476730,
    0.0291783426580,
];

/// WENO7-SYMBO from f[i-3..=i+4] (Martin et al.): β_k = 720 a² + 780 b² + 781 c², the downwind
/// β_4 replaced by max β_k, weights d_k / (ε + β_k) with ε = 2.592e-6. With `limiter`, the
/// linear weights are used where `TVmax < WENO_TV_LIMITER·TVmin` and `TVmax < WENO_TV_MAX`,
/// TV_k being the total variation of candidate k's four points.
#[inline(always)]
fn weno7_symbo(s: &[f64; 8], limiter: bool) -> f64 {
    const EPS: f64 = 2.592e-6;
    let (mut tv_min, mut tv_max) = (0.0, 1.0);
    if limiter {
        let tv = |k: usize| {
            (s[k + 1] - s[k]).abs() + (s[k + 2] - s[k + 1]).abs() + (s[k + 3] - s[k + 2]).abs()
        };
        let all = [tv(0), tv(1), tv(2), tv(3), tv(4)];
        tv_min = all.iter().copied().fold(f64::INFINITY, f64::min);
        tv_max = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    }
    let w: [f64; 5] = if tv_max < WENO_TV_LIMITER * tv_min && tv_max < WENO_TV_MAX {
        SYMBO_WEIGHTS
    } else {
        let mut b = [0.0; 5];
        for (k, bk) in b.iter_mut().enumerate() {
            let (x, y, z) = weno7_differences(s, k);
            *bk = 720.0 * x * x + 780.0 * y * y + 781.0 * z * z;
        }
        b[4] = b[0].max(b[1]).max(b[2].max(b[3])).max(b[4]);
        let e = b.map(|bk| EPS + bk);
        [
            SYMBO_WEIGHTS[0] * e[1] * e[2] * e[3] * e[4],
            SYMBO_WEIGHTS[1] * e[0] * e[2] * e[3] * e[4],
            SYMBO_WEIGHTS[2] * e[0] * e[1] * e[3] * e[4],
            SYMBO_WEIGHTS[3] * e[0] * e[1] * e[2] * e[4],
            SYMBO_WEIGHTS[4] * e[0] * e[1] * e[2] * e[3],
        ]
    };
    let am = w[0] + w[1] + w[2] + w[3] + w[4];
    let q = weno7_candidates(s);
    let num = w[0] * q[0] + w[1] * q[1] + w[2] * q[2] + w[3] * q[3] + w[4] * q[4];
    num / (12.0 * am)
}

/// Linear part of OMP6 on the window s (upwind point s[3], face between s[3] and s[4]).
#[inline]
fn omp6_linear(s: &[f64; 8], v: Omp6Variant) -> f64 {
    let (m0, n0) = v.parameters();
    let c = 0.5 * (m0 + n0);
    let m = 0.5 * (m0 - n0);
    (60.0 * c * s[7]
        + (1.0 - 60.0 * m - 360.0 * c) * s[6]
        + (-8.0 + 360.0 * m + 900.0 * c) * s[5]
        + (37.0 - 900.0 * m - 1200.0 * c) * s[4]
        + (37.0 + 1200.0 * m + 900.0 * c) * s[3]
        + (-8.0 - 900.0 * m - 360.0 * c) * s[2]
        + (1.0 + 360.0 * m + 60.0 * c) * s[1]
        - 60.0 * m * s[0])
        / 60.0
}

/// Threshold of the official OMP6 limiter activation test.
const OMP6_MP_TOL: f64 = 1e-10;

/// OMP6 positive flux: the linear 8-point value, then the Suresh–Huynh monotonicity-preserving
/// bound (official form: `f^MP = f_i + minmod(f_{i+1}-f_i, f_i-f_{i-1})`, α = 4 in the
/// upper-limit value, the literal official minmod4 unless `textbook`).
#[inline(always)]
fn omp6_plus(s: &[f64; 8], v: Omp6Variant, textbook: bool) -> f64 {
    let lin = omp6_linear(s, v);
    let f_mp = s[3] + minmod2(s[4] - s[3], s[3] - s[2]);
    if (lin - s[3]) * (lin - f_mp) < OMP6_MP_TOL {
        return lin;
    }
    let d0 = s[2] + s[4] - 2.0 * s[3]; // curvature at i
    let d1 = s[3] + s[5] - 2.0 * s[4]; // curvature at i+1
    let dm = s[1] + s[3] - 2.0 * s[2]; // curvature at i-1
    let f_md = 0.5 * (s[3] + s[4]) - 0.5 * minmod4(4.0 * d0 - d1, 4.0 * d1 - d0, d1, d0, textbook);
    let f_lc = s[3]
        + 0.5 * (s[3] - s[2])
        + 4.0 * minmod4(4.0 * dm - d0, 4.0 * d0 - dm, d0, dm, textbook) / 3.0;
    let f_ul = s[3] + 4.0 * (s[3] - s[2]);
    let f_min = s[3].min(s[4]).min(f_md).max(s[3].min(f_ul).min(f_lc));
    let f_max = s[3].max(s[4]).max(f_md).min(s[3].max(f_ul).max(f_lc));
    lin + minmod2(f_max - lin, f_min - lin)
}

/// OMP6 negative flux exactly as the official `OCFD_OMP6_kernel_M` (natural-order window,
/// upwind point f[4], face between f[3] and f[4]); see `reconstruct_minus_official`.
#[inline]
fn omp6_minus_official(f: &[f64; 8], v: Omp6Variant) -> f64 {
    let textbook = false;
    let lin = omp6_linear(&mirror(f), v);
    let f_mp = f[4] + minmod2(f[3] - f[4], f[4] - f[5]);
    if (lin - f[4]) * (lin - f_mp) < OMP6_MP_TOL {
        return lin;
    }
    let d0 = f[5] + f[3] - 2.0 * f[4];
    let d1 = f[4] + f[2] - 2.0 * f[3];
    let dm = f[6] + f[4] - 2.0 * f[5];
    let f_md = 0.5 * (f[4] + f[3]) - 0.5 * minmod4(4.0 * d0 - d1, 4.0 * d1 - d0, d1, d0, textbook);
    // official quirk: (f_j - f_{j-1}) instead of the mirrored (f_j - f_{j+1})
    let f_lc = f[4]
        + 0.5 * (f[4] - f[3])
        + 4.0 * minmod4(4.0 * dm - d0, 4.0 * d0 - dm, d0, dm, textbook) / 3.0;
    let f_ul = f[4] + 4.0 * (f[4] - f[5]);
    // official quirk: min(f_{j+1}, f_{j-1}, f_md) instead of min(f_j, f_{j-1}, f_md)
    let f_min = f[5].min(f[3]).min(f_md).max(f[4].min(f_ul).min(f_lc));
    let f_max = f[4].max(f[3]).max(f_md).min(f[4].max(f_ul).max(f_lc));
    lin + minmod2(f_max - lin, f_min - lin)
}

// ------------------------------------------------------------------------------------------
// Hybrid (SCHEME_HYBRIDAUTO) helpers
// ------------------------------------------------------------------------------------------

/// `HY_STYLE` of SCHEME_HYBRIDAUTO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HybridStyle {
    /// `HY_STYLE = 1`: normalized pressure-gradient sensor; OMP6_HR / WENO7 / NND2.
    Gradient,
    /// `HY_STYLE = 2`: Jameson pressure sensor; UP7 / WENO7 / WENO5.
    Jameson,
}

impl HybridStyle {
    /// From the official integer (1 or 2).
    pub fn from_official(style: i64) -> Option<Self> {
        match style {
            1 => Some(HybridStyle::Gradient),
            2 => Some(HybridStyle::Jameson),
            _ => None,
        }
    }

    /// The schemes of classes 1, 2, 3 (smooth → strongest shock).
    pub fn schemes(self) -> [Reconstruction; 3] {
        match self {
            HybridStyle::Gradient => [
                Reconstruction::Omp6(Omp6Variant::Hr),
                Reconstruction::Weno7,
                Reconstruction::Nnd2,
            ],
            HybridStyle::Jameson => [
                Reconstruction::Up7,
                Reconstruction::Weno7,
                Reconstruction::Weno5,
            ],
        }
    }

    /// Scheme of a face class `kp` in 1..=3 (values ≥ 3 give the third scheme, as officially).
    pub fn scheme(self, kp: u8) -> Reconstruction {
        let s = self.schemes();
        match kp {
            0 | 1 => s[0],
            2 => s[1],
            _ => s[2],
        }
    }
}

/// Official face class from the sensor value: `1 + [dp > HY_DP_INTV[0]] + [dp > HY_DP_INTV[1]]`.
#[inline]
pub fn hybrid_class(dp: f64, thresholds: [f64; 2]) -> u8 {
    1 + u8::from(dp > thresholds[0]) + u8::from(dp > thresholds[1])
}

/// One direction's term of the official Jameson sensor: `|p₋ - 2p₀ + p₊| / (p₋ + 2p₀ + p₊)`.
#[inline]
pub fn jameson_term(p_minus: f64, p0: f64, p_plus: f64) -> f64 {
    (-p_minus + 2.0 * p0 - p_plus).abs() / (p_minus + 2.0 * p0 + p_plus)
}

// ------------------------------------------------------------------------------------------
// Central differences for the viscous terms
// ------------------------------------------------------------------------------------------

/// The viscous central differences (official `SCHEME_VIS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CentralDifference {
    /// `CD6`: (45 δ₁ - 9 δ₂ + δ₃)/60.
    Cd6,
    /// `CD8`: (672 δ₁ - 168 δ₂ + 32 δ₃ - 3 δ₄)/840.
    Cd8,
}

const CD6_COEFFS: [f64; 3] = [45.0 / 60.0, -9.0 / 60.0, 1.0 / 60.0];
const CD8_COEFFS: [f64; 4] = [672.0 / 840.0, -168.0 / 840.0, 32.0 / 840.0, -3.0 / 840.0];

impl CentralDifference {
    /// Both official choices.
    pub const ALL: [CentralDifference; 2] = [CentralDifference::Cd6, CentralDifference::Cd8];

    /// Points on each side of the centre.
    pub fn half_width(self) -> usize {
        match self {
            CentralDifference::Cd6 => 3,
            CentralDifference::Cd8 => 4,
        }
    }

    /// `a_k` (k = 1..=half_width) of `f'_i ≈ Σ a_k (f_{i+k} - f_{i-k}) / h`.
    pub fn coefficients(self) -> &'static [f64] {
        match self {
            CentralDifference::Cd6 => &CD6_COEFFS,
            CentralDifference::Cd8 => &CD8_COEFFS,
        }
    }

    /// Official name.
    pub fn name(self) -> &'static str {
        match self {
            CentralDifference::Cd6 => "CD6",
            CentralDifference::Cd8 => "CD8",
        }
    }

    /// Parses an official name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Official `Scheme_vis_ID`.
    pub fn official_id(self) -> u32 {
        match self {
            CentralDifference::Cd6 => 203,
            CentralDifference::Cd8 => 204,
        }
    }

    /// Formal order.
    pub fn formal_order(self) -> usize {
        2 * self.half_width()
    }

    /// `f'(x_i)` from `f[i-4..=i+4]` (`f[4]` is point i) and the spacing `h`, in the official
    /// operation order.
    #[inline(always)]
    pub fn derivative(self, f: &[f64; 9], h: f64) -> f64 {
        match self {
            CentralDifference::Cd6 => {
                (45.0 * (f[5] - f[3]) - 9.0 * (f[6] - f[2]) + (f[7] - f[1])) / 60.0 / h
            }
            CentralDifference::Cd8 => {
                (672.0 * (f[5] - f[3]) - 168.0 * (f[6] - f[2]) + 32.0 * (f[7] - f[1])
                    - 3.0 * (f[8] - f[0]))
                    / 840.0
                    / h
            }
        }
    }

    /// Derivative with the official `DIF_BOUND` closure (`OCFD_D0bound_scheme_kernel`).
    /// `from_left = Some(k)`: point i is the k-th interior point from a left boundary with
    /// `DIF_BOUND = 1` (likewise `from_right`, k = n-1-i); the left rule is tried first. Closures:
    /// k = 0 one-sided first order (inward), k = 1 2nd-order central, k = 2 4th-order central,
    /// k = 3 6th-order central (also for CD8); k ≥ 4 the interior formula.
    #[inline]
    pub fn derivative_dif_bound(
        self,
        f: &[f64; 9],
        h: f64,
        from_left: Option<usize>,
        from_right: Option<usize>,
    ) -> f64 {
        let c = |k: Option<usize>, inward_forward: bool| -> Option<f64> {
            match k? {
                0 if inward_forward => Some(f[5] - f[4]),
                0 => Some(f[4] - f[3]),
                1 => Some((f[5] - f[3]) * 0.5),
                2 => Some((f[2] - 8.0 * f[3] + 8.0 * f[5] - f[6]) / 12.0),
                3 => Some((f[7] - f[1] - 9.0 * (f[6] - f[2]) + 45.0 * (f[5] - f[3])) / 60.0),
                _ => None,
            }
        };
        match c(from_left, true).or_else(|| c(from_right, false)) {
            Some(v) => v / h,
            None => self.derivative(f, h),
        }
    }
}

// ==========================================================================================
// Notes on the official implementation (OpenCFD-SCU, src/*.cu), in our words.
// ==========================================================================================
//
// ## (1) SCHEME_HYBRIDAUTO (OCFD_Schemes_hybrid_auto.cu), per time step before the fluxes
//
// Face classes kp ∈ {1,2,3} are stored per direction on the nx+1 (resp. ny+1, nz+1) faces;
// face k of the x array is the face between interior points k-1 and k. kp = 1 + [s > T0] +
// [s > T1] with (T0, T1) = HY_DP_INTV (HybridA_Stage = 3, i.e. two thresholds, strict `>`).
// The same kp is used for f⁺ and f⁻ at that face and for all five equations.
//
// HY_STYLE = 1 (gradient sensor; schemes kp=1 OMP6_HR, 2 WENO7, 3 NND2):
//   p = ρT/(γ Ma²) everywhere (ghosts included);
//   p_ξ, p_η, p_ζ by the viscous central difference (CD6/CD8 with the DIF_BOUND closure);
//   |∇p| = sqrt(Σ_d (p_ξ ξ_d + p_η η_d + p_ζ ζ_d)²), with (ξ_d, η_d, ζ_d) the stored metric arrays
//   Akx.., Aix.., Asx.. (which are ∂ξ/∂x etc. divided by J, i.e. cofactors — not normalized);
//   G = |∇p| / mean(|∇p|), mean over all NX·NY·NZ global points (MPI all-reduce).
//   Negative-temperature repair: where T < 0, T := mean of its 6 neighbours and
//   G := max(10·G, T1 + 1) (forces class 3).
//   HY_SMOOTH_DP = 1: F = G, F := 3G where G ≥ HY_DP_INTV[2] (an out-of-range read of the
//   2-element threshold array in the official code), ghost exchange, then
//   G := F/3 + (sum of the 6 neighbours of F)/9 in the interior; on the first/last plane of a
//   non-periodic direction G := F (unsmoothed).
//   HY_PATCH_ZONE = N, HY_ZONEi = ib ie jb je kb ke value: G := value on that global index box
//   (forces a class in user zones).
//   Boundary_dp: G copied to a ghosted array, exchanged, and at non-periodic domain ends the
//   ghost just outside takes the first/last interior value.
//   Face sensor s_{k-1/2} = (G_{k-1} + G_k)/2.
// HY_STYLE = 2 (Jameson sensor; schemes kp=1 UP7, 2 WENO7, 3 WENO5), raw p with ghosts, no
//   normalization/smoothing/patches/repair:
//   s = Σ_{d∈{x,y,z}} |p_{-1} - 2p_0 + p_{+1}|_d / (p_{-1} + 2p_0 + p_{+1})_d evaluated at the
//   LOWER point of the face (point k-1 for face k-1/2), not averaged over the two points.
// Official caveat: the non-characteristic hybrid kernels read kp only `if (i == 0)` (equation
//   index) into an uninitialized local, so for equations 1..4 kp is undefined in the source.
// With CHARTERIC = 1 the hybrid (and WENO7_SYMBO[_LIM], the only other schemes allowed) work in
//   characteristic variables: the 8 split-flux vectors are projected with the left eigenvectors
//   of the flux Jacobian at the arithmetic mean (u, v, w, c, metric) of the two face points,
//   reconstructed component-wise, and projected back; the Jameson variant skips the projection
//   on class-1 (UP7) faces. With CHARTERIC = 0 (default) every scheme acts component-wise on the
//   five split-flux components. UP7, WENO5, WENO7, NND2, OMP6 print "does not support charteric"
//   and compute nothing when CHARTERIC = 1.
//
// ## (2) Steger–Warming splitting (OCFD_split.cu), per point incl. LAP ghost layers
//
// For each direction with metric vector A = (A1, A2, A3) = (Akx, Aky, Akz) (resp. Aix.., Asx..),
// i.e. ∇ξ / J (not normalized): s = |A|, n = A/s,
//   λ1 = A·u, λ2 = λ1 - c s, λ3 = λ1 + c s    (c = sqrt(T)/Ma),
//   λk⁺ = (λk + sqrt(λk² + ε²))/2, λk⁻ = λk - λk⁺, ε = EPSL_SW (absolute, not scaled by s),
//   F± = ρ/(2γ) · [ 2(γ-1)λ1± + λ2± + λ3±,
//                   2(γ-1)λ1± u + λ2±(u - c n_x) + λ3±(u + c n_x),   (same for v/n_y, w/n_z)
//                   (γ-1)|u|² λ1± + λ2± |u - c n|²/2 + λ3± |u + c n|²/2
//                     + (3-γ)c²/(2(γ-1)) (λ2± + λ3±) ],
// so F⁺ + F⁻ = the contravariant flux (ρU, ρuU + p A1, …)/… with U = A·u. The metric enters
// only through A (fluxes are already multiplied by the cofactor metrics ∂ξ/∂x / J); the
// residual is du += -Ajac · (h_{i+1/2} - h_{i-1/2}) / hx per split part, with Ajac = J =
// 1/det(∂(x,y,z)/∂(i,j,k)) and hx the computational spacing; du is the rate of the physical
// conserved variables (not divided by J).
//
// ## (3) Boundary schemes (OCFD_bound_Scheme.cu), DIF_BOUND = bl br bl br bl br (x, y, z)
//
// A closure applies only on a physical domain end (first/last rank in that direction, job
// touching it) whose DIF_BOUND flag is 1; otherwise the interior scheme reads the ghost layers
// filled by the boundary conditions. Faces i+1/2, interior points 0..n-1, f⁺ faces -1/2..n-1/2:
//   f⁺ left:  -1/2 → f_0; 1/2 → (2f_0 + 5f_1 - f_2)/6; 3/2 → WENO5 with only the candidates
//             {i..i+2} and {i-1..i+1} (weights 3:6); 5/2 (8- and 7-point schemes only) → full
//             WENO5. [`Reconstruction::dif_bound_plus`]
//   f⁺ right: n-1/2 → f_{n-1} + (f_{n-1} - f_{n-2})/2; n-3/2 → WENO5 with {i-1..i+1},{i-2..i}
//             (6:1); faces down to i = n-kb (kb = 4 for UP7/SYMBO/OMP6/hybrid, 3 for WENO7,
//             2 for WENO5/NND2) → full WENO5.
//   f⁻ left:  -1/2 → (11f_0 - 7f_1 + 2f_2)/6; 1/2 → mirrored WENO5 with two candidates (6:1 on
//             {0,1,2},{1,2,3}); then full mirrored WENO5 up to face i = -ka-2 (ka = -4 for
//             8-point, -3 WENO7, -2 WENO5/NND2). [`Reconstruction::dif_bound_minus`]
//   f⁻ right: n-1/2 → f_{n-1}; n-3/2 → (f_{n-2} + f_{n-1})/2; n-5/2 → mirrored WENO5 with
//             two candidates (3:6); n-7/2 (kb = 3 schemes) → full mirrored WENO5.
// NON_REFLETION flags (per side) zero the f⁺ contribution at the first point (left side) and
// the f⁻ contribution at the last point (right side). Viscous/CD closures (same DIF_BOUND):
// point 0 one-sided first order, 1 → 2nd, 2 → 4th, 3 → 6th order central
// ([`CentralDifference::derivative_dif_bound`]); grid metrics always use CD6 with JAC_BOUND.

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// Observed (L∞, L1) orders of `(h_{i+1/2} - h_{i-1/2})/dx ≈ cos x` for `sin x` on the
    /// periodic grids n and 2n, the face value given by `face(window)` (window f[i-3..=i+4]).
    fn observed_orders(face: impl Fn(&[f64; 8]) -> f64, n: usize) -> (f64, f64) {
        let err = |n: usize| {
            let h = 2.0 * PI / n as f64;
            let at = |k: i64| (k as f64 * h).sin();
            let hf = |i: i64| face(&std::array::from_fn(|m| at(i - 3 + m as i64)));
            let e: Vec<f64> = (0..n as i64)
                .map(|i| ((hf(i) - hf(i - 1)) / h - (i as f64 * h).cos()).abs())
                .collect();
            (
                e.iter().copied().fold(0.0, f64::max),
                e.iter().sum::<f64>() / n as f64,
            )
        };
        let (a, b) = (err(n), err(2 * n));
        ((a.0 / b.0).log2(), (a.1 / b.1).log2())
    }

    #[test]
    fn scheme_names_round_trip() {
        for r in Reconstruction::ALL {
            assert_eq!(Reconstruction::from_name(r.name()), Some(r));
        }
        for c in CentralDifference::ALL {
            assert_eq!(CentralDifference::from_name(c.name()), Some(c));
        }
        assert_eq!(Reconstruction::from_name("UD7L"), None);
        let mut ids: Vec<u32> = Reconstruction::ALL
            .iter()
            .map(|r| r.official_id())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (301..=309).collect::<Vec<u32>>());
    }

    /// Exactness: for polynomials of degree ≤ the degree every candidate reproduces, the
    /// flux difference is the exact derivative (no cell averages involved).
    #[test]
    fn scheme_polynomial_exactness() {
        let exact_degree = |r: Reconstruction| match r {
            Reconstruction::Up7 => 7,
            Reconstruction::Weno5 => 2,
            Reconstruction::Weno7 | Reconstruction::Weno7Symbo | Reconstruction::Weno7SymboLim => 3,
            Reconstruction::Omp6(Omp6Variant::Cd8) => 8,
            Reconstruction::Omp6(_) => 6,
            Reconstruction::Nnd2 => 1,
        };
        let h = 0.05;
        for r in Reconstruction::ALL {
            for deg in 0..=exact_degree(r) {
                // (x+3)^deg is monotone and convex on the stencil: no limiter fires.
                let p = |x: f64| (x + 3.0).powi(deg);
                let dp = |x: f64| {
                    if deg == 0 {
                        0.0
                    } else {
                        deg as f64 * (x + 3.0).powi(deg - 1)
                    }
                };
                for negative in [false, true] {
                    let face = |i: i64| {
                        let w: [f64; 8] = std::array::from_fn(|m| p((i - 3 + m as i64) as f64 * h));
                        if negative {
                            r.reconstruct_minus(&w)
                        } else {
                            r.reconstruct(&w)
                        }
                    };
                    for i in [2i64, 5] {
                        let d = (face(i) - face(i - 1)) / h;
                        let e = dp(i as f64 * h);
                        assert!(
                            (d - e).abs() <= 1e-9 * e.abs().max(1.0),
                            "{} deg {deg} neg {negative}: {d} vs {e}",
                            r.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn scheme_linear_parts_reach_formal_order() {
        for r in Reconstruction::ALL {
            let Some(c) = r.linear_coefficients() else {
                continue;
            };
            let lin = |w: &[f64; 8]| c.iter().zip(w).map(|(c, w)| c * w).sum::<f64>();
            let lin_minus = |w: &[f64; 8]| lin(&mirror(w));
            let want = r.formal_order() as f64 - 0.3;
            for (q, _) in [observed_orders(lin, 32), observed_orders(lin_minus, 32)] {
                assert!(
                    q >= want,
                    "{} linear part: observed {q:.2} < {want}",
                    r.name()
                );
            }
            // the linear coefficients are consistent: they sum to one
            assert!((c.iter().sum::<f64>() - 1.0).abs() < 1e-11, "{}", r.name());
        }
    }

    /// Observed orders of the official nonlinear formulas on sin x. Where they fall short of
    /// the formal order it is a property of the official formulas (documented in the report):
    /// WENO7's JS weights (ω - d = O(h²)) give 5 in L∞ / 6 in L1; the official OMP6 minmod4
    /// clips smooth maxima (1 in L∞ / 2 in L1); NND2's minmod clips extrema.
    #[test]
    fn scheme_observed_orders_on_sine() {
        for r in Reconstruction::ALL {
            let (n, inf, l1) = match r {
                Reconstruction::Up7 => (32, 6.7, 6.7),
                Reconstruction::Weno5 => (32, 4.7, 4.7),
                Reconstruction::Weno7 => (64, 4.7, 5.7),
                Reconstruction::Weno7Symbo | Reconstruction::Weno7SymboLim => (64, 3.7, 3.7),
                Reconstruction::Omp6(_) => (64, 0.9, 1.7),
                Reconstruction::Nnd2 => (64, 0.9, 1.7),
            };
            let plus = observed_orders(|w| r.reconstruct(w), n);
            let minus = observed_orders(|w| r.reconstruct_minus(w), n);
            let official = observed_orders(|w| r.reconstruct_minus_official(w), n);
            for (qi, q1) in [plus, minus, official] {
                assert!(
                    qi >= inf && q1 >= l1,
                    "{}: observed {qi:.2}/{q1:.2}",
                    r.name()
                );
            }
        }
        // the formal orders are reached by UP7, WENO5, WENO7-SYMBO in L∞
        for r in [
            Reconstruction::Up7,
            Reconstruction::Weno5,
            Reconstruction::Weno7Symbo,
        ] {
            let (qi, _) = observed_orders(|w| r.reconstruct(w), 64);
            assert!(qi >= r.formal_order() as f64 - 0.3, "{}: {qi}", r.name());
        }
    }

    #[test]
    fn scheme_omp6_textbook_minmod4_restores_order() {
        for v in [Omp6Variant::Hr, Omp6Variant::Ld, Omp6Variant::Cd8] {
            let want = Reconstruction::Omp6(v).formal_order() as f64 - 0.3;
            let (qi, q1) = observed_orders(|w| omp6_textbook_minmod4(w, v), 32);
            assert!(qi >= want && q1 >= want, "{v:?}: {qi:.2}/{q1:.2}");
            let (qi, _) = observed_orders(|w| omp6_textbook_minmod4(&mirror(w), v), 32);
            assert!(qi >= want, "{v:?} minus: {qi:.2}");
        }
    }

    #[test]
    fn scheme_nnd2_second_order_away_from_extrema() {
        // monotone smooth data: NND2 is 2nd order.
        let err = |n: usize| {
            let h = 1.0 / n as f64;
            let face = |i: i64| {
                let w: [f64; 8] = std::array::from_fn(|m| ((i - 3 + m as i64) as f64 * h).exp());
                Reconstruction::Nnd2.reconstruct(&w)
            };
            (0..n as i64)
                .map(|i| ((face(i) - face(i - 1)) / h - (i as f64 * h).exp()).abs())
                .fold(0.0, f64::max)
        };
        assert!((err(64) / err(128)).log2() > 1.8);
    }

    #[test]
    fn scheme_no_overshoot_at_step() {
        for r in Reconstruction::ALL
            .into_iter()
            .filter(|r| *r != Reconstruction::Up7)
        {
            for (lo, hi) in [(0.0, 1.0), (1.0, 0.0), (-0.3, 2.0)] {
                let n = 40i64;
                let at = |k: i64| if k < n / 2 { lo } else { hi };
                let (mn, mx) = (f64::min(lo, hi), f64::max(lo, hi));
                for i in 0..n - 1 {
                    let w: [f64; 8] = std::array::from_fn(|m| at(i - 3 + m as i64));
                    for v in [
                        r.reconstruct(&w),
                        r.reconstruct_minus(&w),
                        r.reconstruct_minus_official(&w),
                    ] {
                        let tol = 1e-6 * (mx - mn);
                        assert!(
                            v >= mn - tol && v <= mx + tol,
                            "{} overshoot {v} at face {i}",
                            r.name()
                        );
                    }
                }
            }
        }
        // the linear UP7 does overshoot (sanity check of the test itself)
        let w = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        assert!(Reconstruction::Up7.reconstruct(&w) > 1.1);
    }

    #[test]
    fn scheme_mirror_symmetry() {
        // reversing the data swaps the roles of f⁺ and f⁻ at the mirrored face.
        let data: Vec<f64> = (0..16)
            .map(|k| ((k * k) as f64 * 0.37).sin() + 0.1 * k as f64)
            .collect();
        for r in Reconstruction::ALL {
            for i in 3..8usize {
                let w: [f64; 8] = std::array::from_fn(|m| data[i - 3 + m]);
                let wm = mirror(&w);
                assert_eq!(r.reconstruct_minus(&wm), r.reconstruct(&w), "{}", r.name());
                assert_eq!(r.reconstruct_minus(&w), r.reconstruct(&wm), "{}", r.name());
                // invariance under adding a constant
                let ws = w.map(|x| x + 2.5);
                assert!(
                    (r.reconstruct(&ws) - r.reconstruct(&w) - 2.5).abs() < 1e-12,
                    "{}",
                    r.name()
                );
                // official f⁻ equals the mirror except OMP6 / SYMBO_LIM quirks
                match r {
                    Reconstruction::Omp6(_) | Reconstruction::Weno7SymboLim => {}
                    _ => assert_eq!(r.reconstruct_minus_official(&w), r.reconstruct_minus(&w)),
                }
            }
        }
        // On smooth monotone data the OMP6 limiter is inactive: official f⁻ = mirror.
        let w: [f64; 8] = std::array::from_fn(|m| (0.1 * m as f64).exp());
        for v in [Omp6Variant::Hr, Omp6Variant::Ld, Omp6Variant::Cd8] {
            let r = Reconstruction::Omp6(v);
            assert_eq!(r.reconstruct_minus_official(&w), r.reconstruct_minus(&w));
        }
        // SYMBO_LIM: on quiet smooth data the f⁺ limiter switches to linear weights,
        // the official f⁻ never does.
        let w: [f64; 8] = std::array::from_fn(|m| 0.01 * (0.3 * m as f64).sin());
        let lin = weno7_candidates(&w)
            .iter()
            .zip(SYMBO_WEIGHTS)
            .map(|(q, d)| q * d)
            .sum::<f64>()
            / (12.0 * SYMBO_WEIGHTS.iter().sum::<f64>());
        assert_eq!(Reconstruction::Weno7SymboLim.reconstruct(&w), lin);
        let wm = mirror(&w);
        assert_eq!(
            Reconstruction::Weno7SymboLim.reconstruct_minus_official(&wm),
            Reconstruction::Weno7Symbo.reconstruct(&w)
        );
    }

    #[test]
    fn scheme_hybrid_classes() {
        assert_eq!(hybrid_class(0.1, [0.5, 2.0]), 1);
        assert_eq!(hybrid_class(0.5, [0.5, 2.0]), 1);
        assert_eq!(hybrid_class(1.0, [0.5, 2.0]), 2);
        assert_eq!(hybrid_class(3.0, [0.5, 2.0]), 3);
        assert_eq!(HybridStyle::Jameson.scheme(1), Reconstruction::Up7);
        assert_eq!(HybridStyle::Gradient.scheme(3), Reconstruction::Nnd2);
        assert_eq!(jameson_term(1.0, 1.0, 1.0), 0.0);
    }

    #[test]
    fn scheme_dif_bound_closures() {
        // linear data: every closure is exact for f⁺ + f⁻ faces of a linear function
        let n = 20i64;
        let lin = |k: i64| 1.0 + 0.5 * k as f64;
        for r in Reconstruction::ALL {
            for i in -1..n {
                let w: [f64; 8] = std::array::from_fn(|m| lin(i - 3 + m as i64));
                let exact = lin(i) + 0.25; // face value of a linear function
                // the first f⁺ face and the last f⁻ face are first order on purpose
                if let Some(v) = r.dif_bound_plus(&w, i, n, true, true)
                    && i != -1
                {
                    assert!((v - exact).abs() < 1e-12, "{} + face {i}: {v}", r.name());
                }
                if let Some(v) = r.dif_bound_minus(&w, i, n, true, true)
                    && i != n - 1
                {
                    assert!((v - exact).abs() < 1e-12, "{} - face {i}: {v}", r.name());
                }
            }
            // only near the ends
            let w = [0.0; 8];
            assert!(r.dif_bound_plus(&w, n / 2, n, true, true).is_none());
            assert!(r.dif_bound_minus(&w, n / 2, n, true, true).is_none());
            assert!(r.dif_bound_plus(&w, 0, n, false, true).is_none());
        }
        let w = [9.0, 9.0, 9.0, 9.0, 1.0, 2.0, 9.0, 9.0];
        assert_eq!(
            Reconstruction::Up7.dif_bound_plus(&w, -1, n, true, false),
            Some(1.0)
        );
        assert_eq!(
            Reconstruction::Up7.dif_bound_plus(&w, 3, n, true, false),
            None
        );
        assert!(
            Reconstruction::Up7
                .dif_bound_plus(&w, 2, n, true, false)
                .is_some()
        );
        assert!(
            Reconstruction::Weno5
                .dif_bound_plus(&w, 2, n, true, false)
                .is_none()
        );
        assert!(
            Reconstruction::Up7
                .dif_bound_minus(&w, n - 4, n, false, true)
                .is_some()
        );
        assert!(
            Reconstruction::Weno5
                .dif_bound_minus(&w, n - 4, n, false, true)
                .is_none()
        );
    }

    #[test]
    fn scheme_central_difference_orders() {
        for c in CentralDifference::ALL {
            // exact on polynomials up to the formal order
            for deg in 0..=c.formal_order() as i32 {
                let h = 0.1;
                let f: [f64; 9] = std::array::from_fn(|m| (1.0 + (m as f64 - 4.0) * h).powi(deg));
                let e = deg as f64;
                assert!(
                    (c.derivative(&f, h) - e).abs() < 1e-8,
                    "{} deg {deg}",
                    c.name()
                );
            }
            let err = |n: usize| {
                let h = 2.0 * PI / n as f64;
                (0..n)
                    .map(|i| {
                        let x = i as f64 * h;
                        let f: [f64; 9] = std::array::from_fn(|m| (x + (m as f64 - 4.0) * h).sin());
                        (c.derivative(&f, h) - x.cos()).abs()
                    })
                    .fold(0.0, f64::max)
            };
            let q = (err(16) / err(32)).log2();
            assert!(q >= c.formal_order() as f64 - 0.3, "{}: {q}", c.name());
        }
        // closures
        let f: [f64; 9] = std::array::from_fn(|m| 2.0 * m as f64);
        for k in 0..6 {
            let d = CentralDifference::Cd8.derivative_dif_bound(&f, 1.0, Some(k), None);
            assert!((d - 2.0).abs() < 1e-12);
            let d = CentralDifference::Cd6.derivative_dif_bound(&f, 1.0, None, Some(k));
            assert!((d - 2.0).abs() < 1e-12);
        }
        let q: [f64; 9] = std::array::from_fn(|m| ((m as f64) - 4.0).powi(2));
        assert_eq!(
            CentralDifference::Cd6.derivative_dif_bound(&q, 1.0, Some(0), None),
            1.0
        );
        assert_eq!(
            CentralDifference::Cd6.derivative_dif_bound(&q, 1.0, None, Some(0)),
            -1.0
        );
    }
}
