//! Grid coordinates, curvilinear metrics and the Jacobian.
//!
//! The solver works in computational space: a block of `nx × ny × nz` points indexed by
//! `(i, j, k)`, mapped onto physical space by the grid `x(ξ, η, ζ)`, `y(…)`, `z(…)`. This
//! module holds the grid ([`Coordinates`]) and turns it into the transformation
//! coefficients ([`Metrics`]) the way OpenCFD-SCU does in its start-up code
//! (`Comput_Jacobian3d`):
//!
//! * **Computational coordinate.** Along a direction with `n` points the computational
//!   coordinate is `ξ = m·h` with `h = 1/(n − 1)` (the official `hx`, `hy`, `hz`, defined from
//!   the global point count whether or not the direction is periodic), so `ξ` runs over
//!   `[0, 1]` and all `ξ`-derivatives, of the grid here and of the fluxes in the solver, are
//!   divided by this `h`. [`Extent::spacing`] returns it. A direction with a single point has
//!   no spacing; this module then uses `h = 1` and the fixed derivatives described below.
//! * **Grid derivatives.** `x_ξ, y_ξ, …, z_ζ` come from the sixth-order central difference
//!   `(45 (f₊₁ − f₋₁) − 9 (f₊₂ − f₋₂) + (f₊₃ − f₋₃)) / (60 h)`, which reads three ghost
//!   points near the block ends. When the direction's `JAC_BOUND` flag is set the four points
//!   nearest each end use the official one-sided/low-order closures instead and no ghost
//!   coordinates are read: a first-order one-sided difference at the end point, second-order
//!   and fourth-order central differences at the next two points, and the sixth-order central
//!   difference (written on interior points only) at the fourth. The official code applies
//!   these closures whenever the flag is set, periodic direction or not, and so does this
//!   module.
//! * **Inversion.** With `D = det ∂(x, y, z)/∂(ξ, η, ζ)` the official code stores the
//!   cofactors `Akx = y_η z_ζ − z_η y_ζ`, … (nine of them, [`Metrics::cofactors`]), which
//!   are the metrics divided by the Jacobian, `ξ_x / J = D ξ_x`, and `Ajac = 1 / D`
//!   ([`Metrics::jacobian`]), the Jacobian `J = ∂(ξ, η, ζ)/∂(x, y, z)` of the inverse map.
//!   The metrics themselves are `ξ_x = Akx · Ajac` ([`Metrics::xi`] and friends). This is
//!   the plain cross-product ("non-conservative") form, not the symmetric conservative form
//!   of Thomas & Lombard or Vinokur & Yee: in two dimensions the discrete geometric
//!   conservation law still holds to round-off (central differences along different
//!   directions commute), in three dimensions it holds only up to the truncation error of
//!   the scheme (sixth order on smooth periodic grids; see [`Metrics::gcl_residual`]).
//! * **Use in the solver.** The inviscid fluxes are split along the scaled normals
//!   `(Akx, Aky, Akz)` etc., i.e. the transformed flux is `F̂ = Akx F + Aky G + Akz H`, and
//!   the flux-derivative residual is multiplied by `Ajac`: `∂U/∂t = −Ajac Σ_d ∂F̂_d/∂ξ_d`.
//! * **Ghost layers of the metrics.** Each block copies its end values into its ghost layers
//!   (constant extension); periodic directions then receive the opposite end's values. Unlike
//!   the official code, which leaves the corner regions (ghost in two or more directions) at
//!   their initial value 1, this module fills them as well by applying the rule direction by
//!   direction.
//!
//! **Single-point directions.** The official code has no special case for them (its
//! `hz = 1/(NZ − 1)` would be infinite). Here a direction with one point gets the derivatives
//! of a unit-spaced straight grid line: the coordinate of the same name has derivative 1
//! along it (`z_ζ = 1` when `nz == 1`), the other two have derivative 0. A 2-D grid in the
//! `(x, y)` plane with `nz == 1` thus gives `ζ_z = 1`, `ζ_x = ζ_y = ξ_z = η_z = 0` and
//! `Ajac = 1 / (x_ξ y_η − y_ξ x_η)`.
//!
//! **Periodic ghost coordinates.** The official code copies coordinates across a periodic
//! boundary unchanged, which makes the central difference at the ends wrong unless the
//! coordinate does not vary along that direction; its cases therefore set `JAC_BOUND` in
//! periodic directions too. [`Coordinates::fill_ghosts`] instead adds the period vector
//! ([`Coordinates::period`]) when it wraps, so that with `jac_bound` off a periodic direction
//! is differenced with the central scheme all the way through. A zero period vector (the
//! default of [`Coordinates::new`]) reproduces the official plain copy.
//!
//! All arrays use the crate's padded layout: [`crate::GHOST`] ghost layers on each side,
//! row-major `[k][j][i]` with `i` fastest ([`Extent::index`]).

use crate::GHOST;
use crate::error::{CfdError, CfdResult};
use rayon::prelude::*;
use std::f64::consts::PI;

/// Fewest points a direction needs for the official boundary closures (`JAC_BOUND`).
pub const MIN_POINTS_WITH_CLOSURES: usize = 7;

/// The interior size of a block; the padded arrays add [`GHOST`] layers on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Extent {
    /// Interior points along x (ξ, index `i`).
    pub nx: usize,
    /// Interior points along y (η, index `j`).
    pub ny: usize,
    /// Interior points along z (ζ, index `k`).
    pub nz: usize,
}

impl Extent {
    /// A block of `nx × ny × nz` interior points.
    pub fn new(nx: usize, ny: usize, nz: usize) -> Self {
        Self { nx, ny, nz }
    }

    /// Interior sizes as `[nx, ny, nz]`.
    pub fn dims(&self) -> [usize; 3] {
        [self.nx, self.ny, self.nz]
    }

    /// Padded sizes `[nx + 8, ny + 8, nz + 8]`.
    pub fn padded(&self) -> [usize; 3] {
        [
            self.nx + 2 * GHOST,
            self.ny + 2 * GHOST,
            self.nz + 2 * GHOST,
        ]
    }

    /// Number of values in one padded array.
    pub fn len_padded(&self) -> usize {
        let [px, py, pz] = self.padded();
        px * py * pz
    }

    /// Number of interior points.
    pub fn len_interior(&self) -> usize {
        self.nx * self.ny * self.nz
    }

    /// Linear index of padded point `(i, j, k)` (ghosts counted, interior `i` in `4..nx+4`).
    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        let [px, py, _] = self.padded();
        (k * py + j) * px + i
    }

    /// Distance in the linear index between neighbours along x, y and z.
    pub fn strides(&self) -> [usize; 3] {
        let [px, py, _] = self.padded();
        [1, px, px * py]
    }

    /// The official computational spacing `h = 1/(n − 1)` per direction (1 for a direction
    /// with a single point). Every ξ-derivative, of the grid and of the fluxes, divides by it.
    pub fn spacing(&self) -> [f64; 3] {
        self.dims()
            .map(|n| if n > 1 { 1.0 / (n as f64 - 1.0) } else { 1.0 })
    }

    fn check(&self) -> CfdResult<()> {
        if self.nx == 0 || self.ny == 0 || self.nz == 0 {
            return Err(CfdError::Config(format!(
                "block extent {}×{}×{} has an empty direction",
                self.nx, self.ny, self.nz
            )));
        }
        Ok(())
    }
}

/// How one direction's ghost layers are filled.
#[derive(Debug, Clone, Copy, PartialEq)]
enum GhostRule {
    /// Copy from the opposite end, adding this shift once per wrap.
    Periodic(f64),
    /// Continue the two end points' difference (constant copy when the line has one point).
    Linear,
    /// Copy the end value.
    Constant,
}

/// Fills the ghost layers of `field` along `axis`, over the whole padded range of the two
/// other directions (so that applying it for x, then y, then z also fills the corners).
fn fill_axis(field: &mut [f64], extent: Extent, axis: usize, rule: GhostRule) {
    let n = extent.dims()[axis];
    let pad = extent.padded();
    let strides = extent.strides();
    let s = strides[axis];
    let (a, b) = match axis {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let ghosts = (0..GHOST).chain(n + GHOST..n + 2 * GHOST);
    let ghosts: Vec<usize> = ghosts.collect();
    for u in 0..pad[a] {
        for v in 0..pad[b] {
            let base = u * strides[a] + v * strides[b];
            for &p in &ghosts {
                let value = match rule {
                    GhostRule::Periodic(shift) => {
                        let off = p as isize - GHOST as isize;
                        let wraps = off.div_euclid(n as isize);
                        let m = off.rem_euclid(n as isize) as usize + GHOST;
                        field[base + m * s] + wraps as f64 * shift
                    }
                    GhostRule::Constant => {
                        let end = if p < GHOST { GHOST } else { n + GHOST - 1 };
                        field[base + end * s]
                    }
                    GhostRule::Linear if n == 1 => field[base + GHOST * s],
                    GhostRule::Linear => {
                        let (end, inner) = if p < GHOST {
                            (GHOST, GHOST + 1)
                        } else {
                            (n + GHOST - 1, n + GHOST - 2)
                        };
                        let fe = field[base + end * s];
                        let step = fe - field[base + inner * s];
                        fe + step * (p.abs_diff(end) as f64)
                    }
                };
                field[base + p * s] = value;
            }
        }
    }
}

/// The grid of one block: physical coordinates of every padded point.
#[derive(Debug, Clone, PartialEq)]
pub struct Coordinates {
    /// Block size.
    pub extent: Extent,
    /// x of each padded point.
    pub x: Vec<f64>,
    /// y of each padded point.
    pub y: Vec<f64>,
    /// z of each padded point.
    pub z: Vec<f64>,
    /// `period[d]` is the vector `(Δx, Δy, Δz)` added to the coordinates when a ghost point of
    /// a periodic direction `d` is copied from one period back (subtracted one period ahead).
    /// Zero reproduces the official plain copy; the constructors of uniform and perturbed
    /// grids set the box length along the direction's own axis.
    pub period: [[f64; 3]; 3],
}

/// Spacing of a uniform grid line of `n` points over length `l`.
fn line_spacing(l: f64, n: usize, periodic: bool) -> f64 {
    if periodic {
        l / n as f64
    } else if n > 1 {
        l / (n as f64 - 1.0)
    } else {
        l
    }
}

impl Coordinates {
    /// A grid from padded coordinate arrays, with zero period vectors (see
    /// [`Coordinates::period`]); fails when an array does not have the padded length.
    pub fn new(extent: Extent, x: Vec<f64>, y: Vec<f64>, z: Vec<f64>) -> CfdResult<Self> {
        extent.check()?;
        let len = extent.len_padded();
        for (name, a) in [("x", &x), ("y", &y), ("z", &z)] {
            if a.len() != len {
                return Err(CfdError::Config(format!(
                    "coordinate array {name} has {} values, the padded block needs {len}",
                    a.len()
                )));
            }
        }
        Ok(Self {
            extent,
            x,
            y,
            z,
            period: [[0.0; 3]; 3],
        })
    }

    /// The same grid with period vectors `period` (see [`Coordinates::period`]).
    pub fn with_period(mut self, period: [[f64; 3]; 3]) -> Self {
        self.period = period;
        self
    }

    /// A Cartesian grid of box size `lengths` starting at `origin`. The spacing is `L/n` in a
    /// periodic direction (points at `origin + m·h`, the point `m = n` being the first one of
    /// the next period) and `L/(n − 1)` otherwise (the last point lies on `origin + L`); a
    /// single-point direction gets spacing `L`. Ghost points continue the spacing, and the
    /// period of a periodic direction is `L` along its own axis.
    pub fn uniform(
        extent: Extent,
        lengths: [f64; 3],
        origin: [f64; 3],
        periodic: [bool; 3],
    ) -> Self {
        let dims = extent.dims();
        let h: [f64; 3] = std::array::from_fn(|d| line_spacing(lengths[d], dims[d], periodic[d]));
        let [px, py, pz] = extent.padded();
        let len = extent.len_padded();
        let (mut x, mut y, mut z) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
        let g = GHOST as f64;
        for k in 0..pz {
            for j in 0..py {
                for i in 0..px {
                    let p = extent.index(i, j, k);
                    x[p] = origin[0] + (i as f64 - g) * h[0];
                    y[p] = origin[1] + (j as f64 - g) * h[1];
                    z[p] = origin[2] + (k as f64 - g) * h[2];
                }
            }
        }
        let mut period = [[0.0; 3]; 3];
        for d in 0..3 {
            if periodic[d] {
                period[d][d] = lengths[d];
            }
        }
        let mut grid = Self {
            extent,
            x,
            y,
            z,
            period,
        };
        // Makes the periodic ghosts exact copies plus the period.
        grid.fill_periodic(periodic);
        grid
    }

    /// The uniform grid of [`Coordinates::uniform`] displaced by a smooth sinusoidal
    /// perturbation of relative amplitude `amplitude`, as in the usual curvilinear
    /// free-stream-preservation tests. With `s = (x₀ − origin)/L` the normalised uniform
    /// position, in 3-D
    /// `x = x₀ + A Lx sin(2π s_y) sin(2π s_z)`, `y = y₀ + A Ly sin(2π s_x) sin(2π s_z)`,
    /// `z = z₀ + A Lz sin(2π s_x) sin(2π s_y)`;
    /// when `nz == 1`, the 2-D variant `x = x₀ + A Lx sin(2π s_y)`, `y = y₀ + A Ly sin(2π s_x)`,
    /// `z = z₀`. Each displacement is periodic with the box length in every variable, so a
    /// periodic direction stays periodic with period `L`. Ghost points of non-periodic
    /// directions follow the same formula; those of periodic ones are periodic copies.
    /// Amplitudes up to a few percent keep the Jacobian positive.
    pub fn perturbed(
        extent: Extent,
        lengths: [f64; 3],
        origin: [f64; 3],
        periodic: [bool; 3],
        amplitude: f64,
    ) -> Self {
        let mut grid = Self::uniform(extent, lengths, origin, periodic);
        let norm = |v: f64, d: usize| {
            if lengths[d] != 0.0 {
                (v - origin[d]) / lengths[d]
            } else {
                0.0
            }
        };
        let two_d = extent.nz == 1;
        let a = amplitude;
        for p in 0..extent.len_padded() {
            let s = [norm(grid.x[p], 0), norm(grid.y[p], 1), norm(grid.z[p], 2)];
            let sn = s.map(|v| (2.0 * PI * v).sin());
            if two_d {
                grid.x[p] += a * lengths[0] * sn[1];
                grid.y[p] += a * lengths[1] * sn[0];
            } else {
                grid.x[p] += a * lengths[0] * sn[1] * sn[2];
                grid.y[p] += a * lengths[1] * sn[0] * sn[2];
                grid.z[p] += a * lengths[2] * sn[0] * sn[1];
            }
        }
        grid.fill_periodic(periodic);
        grid
    }

    /// Coordinates `[x, y, z]` of padded point `(i, j, k)`.
    pub fn point(&self, i: usize, j: usize, k: usize) -> [f64; 3] {
        let p = self.extent.index(i, j, k);
        [self.x[p], self.y[p], self.z[p]]
    }

    /// Refills every ghost layer from the interior, direction by direction (x, y, z): a
    /// periodic direction copies from the opposite end and adds the period vector
    /// ([`Coordinates::period`]) once per period crossed; a non-periodic one extrapolates
    /// linearly from the two end points (the official code leaves those ghosts unset and
    /// never reads them when `JAC_BOUND` is on).
    pub fn fill_ghosts(&mut self, periodic: [bool; 3]) {
        let extent = self.extent;
        for (d, &per) in periodic.iter().enumerate() {
            let shift = self.period[d];
            for (c, field) in [&mut self.x, &mut self.y, &mut self.z]
                .into_iter()
                .enumerate()
            {
                let rule = if per {
                    GhostRule::Periodic(shift[c])
                } else {
                    GhostRule::Linear
                };
                fill_axis(field, extent, d, rule);
            }
        }
    }

    /// Refills only the ghost layers of the periodic directions.
    fn fill_periodic(&mut self, periodic: [bool; 3]) {
        let extent = self.extent;
        for d in (0..3).filter(|&d| periodic[d]) {
            let shift = self.period[d];
            for (c, field) in [&mut self.x, &mut self.y, &mut self.z]
                .into_iter()
                .enumerate()
            {
                fill_axis(field, extent, d, GhostRule::Periodic(shift[c]));
            }
        }
    }
}

/// Derivative of a padded `field` along `axis` with respect to the computational coordinate
/// (spacing [`Extent::spacing`]), on the interior points: the official sixth-order central
/// difference, with the official `JAC_BOUND` closures at the four points nearest each end
/// when `closures` is set. Ghost values of the result are zero. The direction must have at
/// least two points, and at least [`MIN_POINTS_WITH_CLOSURES`] with `closures`.
pub fn index_derivative(field: &[f64], extent: Extent, axis: usize, closures: bool) -> Vec<f64> {
    let n = extent.dims()[axis];
    let h = extent.spacing()[axis];
    let s = extent.strides()[axis];
    let [px, py, _] = extent.padded();
    let plane = px * py;
    let (nx, ny, nz) = (extent.nx, extent.ny, extent.nz);
    let mut out = vec![0.0; extent.len_padded()];
    out.par_chunks_mut(plane)
        .enumerate()
        .for_each(|(k, chunk)| {
            if !(GHOST..nz + GHOST).contains(&k) {
                return;
            }
            for j in GHOST..ny + GHOST {
                for i in GHOST..nx + GHOST {
                    let p = extent.index(i, j, k);
                    let m = [i, j, k][axis] - GHOST;
                    chunk[p - k * plane] = derivative_at(field, p, s, m, n, h, closures);
                }
            }
        });
    out
}

/// The official difference at padded point `p`, which is point `m` of `n` on its line.
#[inline]
fn derivative_at(f: &[f64], p: usize, s: usize, m: usize, n: usize, h: f64, closures: bool) -> f64 {
    if closures && m < 4 {
        let g = |q: usize| f[p - m * s + q * s];
        return match m {
            0 => (g(1) - g(0)) / h,
            1 => (g(2) - g(0)) * 0.5 / h,
            2 => (g(0) - 8.0 * g(1) + 8.0 * g(3) - g(4)) / (12.0 * h),
            _ => (g(6) - g(0) - 9.0 * (g(5) - g(1)) + 45.0 * (g(4) - g(2))) / (60.0 * h),
        };
    }
    if closures && m + 4 >= n {
        let back = n - 1 - m;
        // Last point of the line, then points counted backwards from it.
        let g = |q: usize| f[p + back * s - q * s];
        return match back {
            0 => (g(0) - g(1)) / h,
            1 => (g(0) - g(2)) * 0.5 / h,
            2 => (g(4) - 8.0 * g(3) + 8.0 * g(1) - g(0)) / (12.0 * h),
            _ => (g(0) - g(6) - 9.0 * (g(1) - g(5)) + 45.0 * (g(2) - g(4))) / (60.0 * h),
        };
    }
    let c = |q: usize| f[p + q * s] - f[p - q * s];
    (45.0 * c(1) - 9.0 * c(2) + c(3)) / (60.0 * h)
}

/// Transformation coefficients of one block, on the padded layout (interior computed, ghost
/// layers filled as the official code does, see the module notes).
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Block size.
    pub extent: Extent,
    /// `(ξ_x, ξ_y, ξ_z)` = `cofactors[0] · jacobian`.
    pub xi: [Vec<f64>; 3],
    /// `(η_x, η_y, η_z)` = `cofactors[1] · jacobian`.
    pub eta: [Vec<f64>; 3],
    /// `(ζ_x, ζ_y, ζ_z)` = `cofactors[2] · jacobian`.
    pub zeta: [Vec<f64>; 3],
    /// The official `Ajac = 1 / det ∂(x, y, z)/∂(ξ, η, ζ)`, i.e. the Jacobian
    /// `∂(ξ, η, ζ)/∂(x, y, z)` of the inverse map; it multiplies the flux-derivative residual.
    pub jacobian: Vec<f64>,
    /// `cofactors[d][c]` = `∂ξ_d/∂x_c / J` = `det · ∂ξ_d/∂x_c`, the cofactors of the grid
    /// derivative matrix: the official `Akx, Aky, Akz` (d = 0), `Aix, Aiy, Aiz` (d = 1) and
    /// `Asx, Asy, Asz` (d = 2), as computed (not re-derived from the metrics). They are the
    /// scaled face normals the fluxes are projected on.
    pub cofactors: [[Vec<f64>; 3]; 3],
}

impl Metrics {
    /// Computes the metrics of `coords` as the official `Comput_Jacobian3d` does (see the
    /// module notes): grid derivatives by the sixth-order central difference divided by
    /// `h = 1/(n − 1)`, with the official closures at the ends of every direction whose
    /// `jac_bound` flag is set (no ghost coordinates read there); otherwise the ghost
    /// coordinates of `coords` are used as they are (fill them first, e.g. with
    /// [`Coordinates::fill_ghosts`]; the constructors already do). The ghost layers of the
    /// result are periodic copies in `periodic` directions and constant extensions otherwise.
    ///
    /// Fails with [`CfdError::Config`] on an empty or mis-sized block, on a `jac_bound`
    /// direction with 2 to 6 points, and at the first interior point whose determinant
    /// `det ∂(x, y, z)/∂(ξ, η, ζ)` is not positive and finite.
    pub fn compute(
        coords: &Coordinates,
        periodic: [bool; 3],
        jac_bound: [bool; 3],
    ) -> CfdResult<Self> {
        let extent = coords.extent;
        extent.check()?;
        let len = extent.len_padded();
        if coords.x.len() != len || coords.y.len() != len || coords.z.len() != len {
            return Err(CfdError::Config(format!(
                "coordinate arrays ({}, {}, {} values) do not match the padded block of {len}",
                coords.x.len(),
                coords.y.len(),
                coords.z.len()
            )));
        }
        let dims = extent.dims();
        for d in 0..3 {
            if jac_bound[d] && dims[d] > 1 && dims[d] < MIN_POINTS_WITH_CLOSURES {
                return Err(CfdError::Config(format!(
                    "JAC_BOUND closures along {} need at least {MIN_POINTS_WITH_CLOSURES} points, \
                     the block has {}",
                    ["x", "y", "z"][d],
                    dims[d]
                )));
            }
        }

        // der[d][c] = ∂x_c/∂ξ_d on the interior.
        let fields = [&coords.x, &coords.y, &coords.z];
        let mut flat: Vec<Vec<f64>> = (0..9)
            .into_par_iter()
            .map(|t| {
                let (d, c) = (t / 3, t % 3);
                if dims[d] == 1 {
                    vec![if c == d { 1.0 } else { 0.0 }; len]
                } else {
                    index_derivative(fields[c], extent, d, jac_bound[d])
                }
            })
            .collect();
        let mut take = || flat.remove(0);
        let der: [[Vec<f64>; 3]; 3] = std::array::from_fn(|_| std::array::from_fn(|_| take()));

        let mut cof: [[Vec<f64>; 3]; 3] =
            std::array::from_fn(|_| std::array::from_fn(|_| vec![1.0; len]));
        let mut jacobian = vec![1.0; len];
        for k in GHOST..extent.nz + GHOST {
            for j in GHOST..extent.ny + GHOST {
                for i in GHOST..extent.nx + GHOST {
                    let p = extent.index(i, j, k);
                    let [xi, yi, zi] = [der[0][0][p], der[0][1][p], der[0][2][p]];
                    let [xj, yj, zj] = [der[1][0][p], der[1][1][p], der[1][2][p]];
                    let [xk, yk, zk] = [der[2][0][p], der[2][1][p], der[2][2][p]];
                    let det = xi * yj * zk + yi * zj * xk + zi * xj * yk
                        - zi * yj * xk
                        - yi * xj * zk
                        - xi * zj * yk;
                    if !(det > 0.0 && det.is_finite()) {
                        return Err(CfdError::Config(format!(
                            "degenerate grid: det ∂(x,y,z)/∂(ξ,η,ζ) = {det:e} at interior point \
                             ({}, {}, {}), coordinates ({}, {}, {})",
                            i - GHOST,
                            j - GHOST,
                            k - GHOST,
                            coords.x[p],
                            coords.y[p],
                            coords.z[p]
                        )));
                    }
                    jacobian[p] = 1.0 / det;
                    cof[0][0][p] = yj * zk - zj * yk;
                    cof[0][1][p] = zj * xk - xj * zk;
                    cof[0][2][p] = xj * yk - yj * xk;
                    cof[1][0][p] = yk * zi - zk * yi;
                    cof[1][1][p] = zk * xi - xk * zi;
                    cof[1][2][p] = xk * yi - yk * xi;
                    cof[2][0][p] = yi * zj - zi * yj;
                    cof[2][1][p] = zi * xj - xi * zj;
                    cof[2][2][p] = xi * yj - yi * xj;
                }
            }
        }
        drop(der);

        for (d, &per) in periodic.iter().enumerate() {
            let rule = if per {
                GhostRule::Periodic(0.0)
            } else {
                GhostRule::Constant
            };
            fill_axis(&mut jacobian, extent, d, rule);
            for field in cof.iter_mut().flatten() {
                fill_axis(field, extent, d, rule);
            }
        }

        let scale = |d: usize| -> [Vec<f64>; 3] {
            std::array::from_fn(|c| {
                cof[d][c]
                    .iter()
                    .zip(&jacobian)
                    .map(|(a, j)| a * j)
                    .collect()
            })
        };
        let (xi, eta, zeta) = (scale(0), scale(1), scale(2));
        Ok(Self {
            extent,
            xi,
            eta,
            zeta,
            jacobian,
            cofactors: cof,
        })
    }

    /// The metrics of direction `d` (0 = ξ, 1 = η, 2 = ζ).
    pub fn direction(&self, d: usize) -> &[Vec<f64>; 3] {
        match d {
            0 => &self.xi,
            1 => &self.eta,
            _ => &self.zeta,
        }
    }

    /// Largest absolute discrete geometric-conservation residual over the interior, per
    /// physical component `c`: `max |Σ_d δ_d (cofactors[d][c])|`, where `δ_d` is the same
    /// difference operator that produced the metrics (sixth-order central, with the official
    /// closures in `jac_bound` directions, none along single-point directions). A uniform
    /// flow keeps its state exactly under a central flux difference only when this vanishes.
    ///
    /// Measured on the fully periodic perturbed grid of [`Coordinates::perturbed`] (amplitude
    /// 0.04, central scheme throughout), as `max |Σ| · h / max |cofactor|`: 3.4e-5 at 16³,
    /// 2.1e-6 at 24³, 2.9e-7 at 32³, 1.7e-8 at 48³ (sixth order in `max |Σ|`). With the
    /// official closures at non-periodic ends it is 4e-3 at 24³ and 1e-3 at 48³, dominated by
    /// the first-order end points. In 2-D it is round-off.
    pub fn gcl_residual(&self, jac_bound: [bool; 3]) -> [f64; 3] {
        let extent = self.extent;
        let dims = extent.dims();
        std::array::from_fn(|c| {
            let mut sum = vec![0.0; extent.len_padded()];
            for d in (0..3).filter(|&d| dims[d] > 1) {
                let dd = index_derivative(&self.cofactors[d][c], extent, d, jac_bound[d]);
                sum.iter_mut().zip(&dd).for_each(|(s, v)| *s += v);
            }
            let mut worst: f64 = 0.0;
            for k in GHOST..extent.nz + GHOST {
                for j in GHOST..extent.ny + GHOST {
                    for i in GHOST..extent.nx + GHOST {
                        worst = worst.max(sum[extent.index(i, j, k)].abs());
                    }
                }
            }
            worst
        })
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops over d, c mirror the formulas
mod tests {
    use super::*;

    fn interior(e: Extent) -> impl Iterator<Item = (usize, usize, usize)> {
        (GHOST..e.nz + GHOST).flat_map(move |k| {
            (GHOST..e.ny + GHOST).flat_map(move |j| (GHOST..e.nx + GHOST).map(move |i| (i, j, k)))
        })
    }

    fn all(e: Extent) -> impl Iterator<Item = (usize, usize, usize)> {
        let [px, py, pz] = e.padded();
        (0..pz).flat_map(move |k| (0..py).flat_map(move |j| (0..px).map(move |i| (i, j, k))))
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    /// Inverse of a 3×3 matrix `m[r][c]`.
    fn inverse(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
        let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
        let mut inv = [[0.0; 3]; 3];
        for (r, row) in inv.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
                let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
                *v = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
            }
        }
        inv
    }

    #[test]
    fn uniform_grid_gives_constant_metrics_everywhere() {
        let e = Extent::new(9, 8, 7);
        let l = [2.0, 3.0, 0.5];
        for (periodic, jac_bound) in [
            ([false; 3], [true; 3]),
            ([true; 3], [false; 3]),
            ([true, false, true], [true, true, false]),
        ] {
            let g = Coordinates::uniform(e, l, [1.0, -1.0, 0.25], periodic);
            let m = Metrics::compute(&g, periodic, jac_bound).unwrap();
            // x_ξ = Δx (n − 1) with the official h = 1/(n − 1).
            let xd: [f64; 3] = std::array::from_fn(|d| {
                let n = e.dims()[d] as f64;
                if periodic[d] {
                    l[d] * (n - 1.0) / n
                } else {
                    l[d]
                }
            });
            for (i, j, k) in all(e) {
                let p = e.index(i, j, k);
                assert!(close(m.jacobian[p], 1.0 / (xd[0] * xd[1] * xd[2]), 1e-13));
                for d in 0..3 {
                    for c in 0..3 {
                        let want = if c == d { 1.0 / xd[d] } else { 0.0 };
                        let got = m.direction(d)[c][p];
                        assert!(
                            close(got, want, 1e-13),
                            "{periodic:?} d{d} c{c} {got} {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn linear_sheared_grid_gives_exact_metrics() {
        let e = Extent::new(10, 9, 8);
        // X(i, j, k) = b + A (i, j, k) with a non-orthogonal A.
        let a = [[0.30, 0.05, -0.02], [0.04, 0.25, 0.03], [-0.01, 0.06, 0.20]];
        let b = [0.5, -0.2, 1.0];
        let len = e.len_padded();
        let (mut x, mut y, mut z) = (
            vec![f64::NAN; len],
            vec![f64::NAN; len],
            vec![f64::NAN; len],
        );
        for (i, j, k) in interior(e) {
            let p = e.index(i, j, k);
            let q = [i, j, k].map(|v| v as f64 - GHOST as f64);
            x[p] = b[0] + a[0][0] * q[0] + a[0][1] * q[1] + a[0][2] * q[2];
            y[p] = b[1] + a[1][0] * q[0] + a[1][1] * q[1] + a[1][2] * q[2];
            z[p] = b[2] + a[2][0] * q[0] + a[2][1] * q[1] + a[2][2] * q[2];
        }
        let mut g = Coordinates::new(e, x, y, z).unwrap();
        g.fill_ghosts([false; 3]);
        // ∂x_c/∂ξ_d = A[c][d] (n_d − 1); the metric matrix ∂ξ_d/∂x_c is its inverse.
        let dims = e.dims();
        let dx: [[f64; 3]; 3] =
            std::array::from_fn(|c| std::array::from_fn(|d| a[c][d] * (dims[d] as f64 - 1.0)));
        let want = inverse(dx);
        let det = 1.0
            / (want[0][0] * (want[1][1] * want[2][2] - want[1][2] * want[2][1])
                - want[0][1] * (want[1][0] * want[2][2] - want[1][2] * want[2][0])
                + want[0][2] * (want[1][0] * want[2][1] - want[1][1] * want[2][0]));
        for jac_bound in [[true; 3], [false; 3], [true, false, true]] {
            let m = Metrics::compute(&g, [false; 3], jac_bound).unwrap();
            for (i, j, k) in all(e) {
                let p = e.index(i, j, k);
                assert!(close(m.jacobian[p], 1.0 / det, 1e-12));
                for d in 0..3 {
                    for c in 0..3 {
                        let got = m.direction(d)[c][p];
                        assert!(
                            (got - want[d][c]).abs() < 1e-11,
                            "d{d} c{c}: {got} vs {}",
                            want[d][c]
                        );
                        assert!(close(m.cofactors[d][c][p], want[d][c] * det, 1e-11));
                    }
                }
            }
        }
    }

    #[test]
    fn closures_are_the_official_low_order_ones() {
        // x = ξ² along a non-periodic line: the end point uses the first-order one-sided
        // difference, the next the second-order central one.
        let e = Extent::new(11, 1, 1);
        let mut g = Coordinates::uniform(e, [1.0, 1.0, 1.0], [0.0; 3], [false; 3]);
        let h = e.spacing()[0];
        for (i, j, k) in all(e) {
            let p = e.index(i, j, k);
            let xi = (i as f64 - GHOST as f64) * h;
            g.x[p] = xi * xi;
        }
        let m = Metrics::compute(&g, [false; 3], [true; 3]).unwrap();
        let xi_x = |i: usize| m.xi[0][e.index(i + GHOST, GHOST, GHOST)];
        assert!(close(1.0 / xi_x(0), h, 1e-12)); // (h² − 0)/h
        assert!(close(1.0 / xi_x(1), 2.0 * h, 1e-12)); // exact for a parabola
        assert!(close(1.0 / xi_x(10), 2.0 - h, 1e-12)); // (1 − (1 − h)²)/h
        assert!(close(1.0 / xi_x(5), 2.0 * 5.0 * h, 1e-12));
        assert!(close(m.zeta[2][e.index(GHOST, GHOST, GHOST)], 1.0, 0.0));
    }

    #[test]
    fn periodic_ghost_coordinates_shift_by_the_period() {
        let l = [2.0, 1.5, 0.75];
        for e in [Extent::new(8, 6, 5), Extent::new(2, 3, 1)] {
            let periodic = [true, true, true];
            for g in [
                Coordinates::uniform(e, l, [0.3, 0.0, -1.0], periodic),
                Coordinates::perturbed(e, l, [0.3, 0.0, -1.0], periodic, 0.04),
            ] {
                for (i, j, k) in all(e) {
                    let off = [i, j, k].map(|v| v as isize - GHOST as isize);
                    let dims = e.dims().map(|n| n as isize);
                    let wraps: [isize; 3] = std::array::from_fn(|d| off[d].div_euclid(dims[d]));
                    let src: [usize; 3] =
                        std::array::from_fn(|d| off[d].rem_euclid(dims[d]) as usize + GHOST);
                    let p = g.point(i, j, k);
                    let q = g.point(src[0], src[1], src[2]);
                    for c in 0..3 {
                        let want = q[c] + wraps[c] as f64 * l[c];
                        assert!(
                            (p[c] - want).abs() < 1e-13,
                            "{:?} c{c}: {} vs {want}",
                            (i, j, k),
                            p[c]
                        );
                    }
                }
            }
        }
        // A zero period reproduces the official plain copy.
        let e = Extent::new(6, 6, 6);
        let mut g = Coordinates::uniform(e, l, [0.0; 3], [true; 3]).with_period([[0.0; 3]; 3]);
        g.fill_ghosts([true; 3]);
        assert_eq!(g.point(0, 5, 5), g.point(6, 5, 5));
    }

    #[test]
    fn non_periodic_ghost_coordinates_are_linear_extrapolations() {
        let e = Extent::new(7, 7, 1);
        let g0 = Coordinates::perturbed(e, [1.0; 3], [0.0; 3], [false; 3], 0.03);
        let mut g = g0.clone();
        g.fill_ghosts([false; 3]);
        let (a, b) = (g.point(4, 6, 4), g.point(5, 6, 4));
        let q = g.point(1, 6, 4);
        for c in 0..3 {
            assert!((q[c] - (a[c] - 3.0 * (b[c] - a[c]))).abs() < 1e-14);
        }
        // The interior is untouched.
        for (i, j, k) in interior(e) {
            assert_eq!(g.point(i, j, k), g0.point(i, j, k));
        }
    }

    #[test]
    fn two_dimensional_grid() {
        let e = Extent::new(24, 20, 1);
        let periodic = [true, false, true];
        let g = Coordinates::perturbed(e, [2.0, 1.0, 0.1], [0.0; 3], periodic, 0.05);
        for jac_bound in [[false, true, true], [true; 3]] {
            let m = Metrics::compute(&g, periodic, jac_bound).unwrap();
            let h = e.spacing();
            for (i, j, k) in all(e) {
                let p = e.index(i, j, k);
                assert_eq!(m.zeta[0][p], 0.0);
                assert_eq!(m.zeta[1][p], 0.0);
                assert!(close(m.zeta[2][p], 1.0, 1e-15));
                assert_eq!(m.xi[2][p], 0.0);
                assert_eq!(m.eta[2][p], 0.0);
            }
            for (i, j, k) in interior(e) {
                let p = e.index(i, j, k);
                // Away from the ends the central difference gives x_ξ etc. directly.
                if !(8..e.ny).contains(&j) || jac_bound[0] && !(8..e.nx).contains(&i) {
                    continue;
                }
                let s = e.strides();
                let cd = |f: &[f64], st: usize, hh: f64| {
                    let c = |q: usize| f[p + q * st] - f[p - q * st];
                    (45.0 * c(1) - 9.0 * c(2) + c(3)) / (60.0 * hh)
                };
                let (xx, yx) = (cd(&g.x, s[0], h[0]), cd(&g.y, s[0], h[0]));
                let (xy, yy) = (cd(&g.x, s[1], h[1]), cd(&g.y, s[1], h[1]));
                let det = xx * yy - yx * xy;
                assert!(close(m.jacobian[p], 1.0 / det, 1e-13));
                assert!(close(m.xi[0][p], yy / det, 1e-12));
                assert!(close(m.xi[1][p], -xy / det, 1e-12));
                assert!(close(m.eta[0][p], -yx / det, 1e-12));
                assert!(close(m.eta[1][p], xx / det, 1e-12));
            }
            // In 2-D the cross-product form satisfies the discrete GCL to round-off.
            let r = m.gcl_residual(jac_bound);
            let scale = m.cofactors[0][0].iter().fold(0.0f64, |a, v| a.max(v.abs())) / h[0];
            assert!(
                r.iter().all(|v| *v < 1e-12 * scale),
                "2-D GCL residual {r:?} (scale {scale})"
            );
        }
    }

    #[test]
    fn one_dimensional_grid() {
        let e = Extent::new(16, 1, 1);
        let g = Coordinates::uniform(e, [4.0, 1.0, 1.0], [0.0; 3], [true, false, false]);
        let m = Metrics::compute(&g, [true, false, false], [false; 3]).unwrap();
        let p = e.index(9, 4, 4);
        assert!(close(m.xi[0][p], 1.0 / (4.0 * 15.0 / 16.0), 1e-14));
        assert_eq!(m.eta[1][p], 1.0);
        assert_eq!(m.zeta[2][p], 1.0);
        assert!(close(m.jacobian[p], m.xi[0][p], 1e-15));
    }

    /// Relative GCL residual `max |Σ_d δ_d cof_d| · h / max |cof|` of the fully periodic
    /// 3-D perturbed grid with `n³` points.
    fn periodic_gcl(n: usize, amplitude: f64) -> f64 {
        let e = Extent::new(n, n, n);
        let g = Coordinates::perturbed(e, [1.0, 2.0, 1.5], [0.0; 3], [true; 3], amplitude);
        let m = Metrics::compute(&g, [true; 3], [false; 3]).unwrap();
        let r = m.gcl_residual([false; 3]);
        let scale = m
            .cofactors
            .iter()
            .flatten()
            .flat_map(|v| v.iter())
            .fold(0.0f64, |a, v| a.max(v.abs()));
        r.iter().fold(0.0f64, |a, v| a.max(*v)) * e.spacing()[0] / scale
    }

    #[test]
    fn perturbed_grid_satisfies_the_gcl_to_truncation_error() {
        let (r16, r32) = (periodic_gcl(16, 0.04), periodic_gcl(32, 0.04));
        assert!(r16 < 5e-5, "n = 16: relative GCL residual {r16:e}");
        assert!(r32 < 5e-7, "n = 32: relative GCL residual {r32:e}");
        // Sixth-order central differences: the residual falls by about 2⁶ per doubling.
        assert!(r16 / r32 > 40.0, "GCL convergence ratio {}", r16 / r32);
    }

    #[test]
    fn official_closures_leave_a_larger_gcl_residual_near_the_ends() {
        let e = Extent::new(24, 24, 24);
        let g = Coordinates::perturbed(e, [1.0; 3], [0.0; 3], [false; 3], 0.04);
        let m = Metrics::compute(&g, [false; 3], [true; 3]).unwrap();
        let r = m.gcl_residual([true; 3]);
        let scale = m
            .cofactors
            .iter()
            .flatten()
            .flat_map(|v| v.iter())
            .fold(0.0f64, |a, v| a.max(v.abs()));
        let rel = r.iter().fold(0.0f64, |a, v| a.max(*v)) * e.spacing()[0] / scale;
        assert!(rel < 0.05, "relative GCL residual with closures {rel:e}");
        assert!(
            rel > periodic_gcl(24, 0.04),
            "closures should be worse than the periodic interior"
        );
    }

    #[test]
    fn metric_ghosts_follow_the_official_rules() {
        let e = Extent::new(10, 9, 8);
        let periodic = [true, false, false];
        let g = Coordinates::perturbed(e, [1.0, 1.0, 1.0], [0.0; 3], periodic, 0.03);
        let m = Metrics::compute(&g, periodic, [false, true, true]).unwrap();
        for k in GHOST..e.nz + GHOST {
            for j in GHOST..e.ny + GHOST {
                // Periodic x: ghosts copy the opposite end.
                assert_eq!(
                    m.jacobian[e.index(1, j, k)],
                    m.jacobian[e.index(e.nx + 1, j, k)]
                );
                assert_eq!(m.xi[1][e.index(e.nx + 5, j, k)], m.xi[1][e.index(5, j, k)]);
            }
            for i in 0..e.nx + 2 * GHOST {
                // Non-periodic y: ghosts repeat the end value.
                assert_eq!(m.eta[0][e.index(i, 0, k)], m.eta[0][e.index(i, GHOST, k)]);
                let last = e.ny + GHOST - 1;
                assert_eq!(
                    m.cofactors[2][2][e.index(i, last + 4, k)],
                    m.cofactors[2][2][e.index(i, last, k)]
                );
            }
        }
    }

    #[test]
    fn degenerate_grids_are_rejected() {
        let e = Extent::new(8, 8, 8);
        let mut g = Coordinates::uniform(e, [1.0; 3], [0.0; 3], [false; 3]);
        // Mirror x: a left-handed grid has a negative determinant.
        g.x.iter_mut().for_each(|v| *v = -*v);
        match Metrics::compute(&g, [false; 3], [true; 3]) {
            Err(CfdError::Config(msg)) => assert!(msg.contains("(0, 0, 0)"), "{msg}"),
            other => panic!("expected a degenerate-grid error, got {other:?}"),
        }
        // Collapsed grid.
        let z = vec![0.0; e.len_padded()];
        let g = Coordinates::new(e, z.clone(), z.clone(), z).unwrap();
        assert!(matches!(
            Metrics::compute(&g, [false; 3], [true; 3]),
            Err(CfdError::Config(_))
        ));
        // Too few points for the closures; wrong array sizes.
        let g = Coordinates::uniform(Extent::new(5, 8, 8), [1.0; 3], [0.0; 3], [false; 3]);
        assert!(matches!(
            Metrics::compute(&g, [false; 3], [true; 3]),
            Err(CfdError::Config(_))
        ));
        assert!(Metrics::compute(&g, [false; 3], [false, true, true]).is_ok());
        assert!(Coordinates::new(e, vec![0.0; 3], vec![], vec![]).is_err());
    }
}
