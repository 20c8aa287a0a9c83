//! The compression ramp of the official `benchmark_comp` case (`IBC = 108`): the grid
//! generator (`swept-compression-grid.in`), the initial field built from the inflow
//! profile, and the boundary condition (profile inflow, isothermal no-slip wall with
//! blowing and suction, free stream on the upper boundary past the corner).
//!
//! Written from the official `swept-compression-ramp.c`, `init3d-inlet1d.c` and
//! `OCFD_boundary_compression_conner.cu`, with their quirks where they change the
//! numbers (noted where they occur).

use std::path::Path;

use candle_core::{CpuStorage, InplaceOp1, Layout};

use crate::GHOST;
use crate::boundary::StateBoundary;
use crate::control::Control;
use crate::domain::{Block, Domain};
use crate::error::{CfdError, CfdResult};
use crate::formats::{FlowField, InletProfile};
use crate::gas::Gas;
use crate::kernels::storage::{FieldShape, values_mut};
use crate::metrics::{Coordinates, Extent};

/// The official user boundary number of the compression ramp.
pub const COMPRESSION_RAMP_IBC: i64 = 108;

/// The grid file `swept-compression-grid.in` of the official ramp generator.
#[derive(Debug, Clone, PartialEq)]
pub struct RampGridSpec {
    /// Points per direction (streamwise, wall-normal, spanwise).
    pub extent: Extent,
    /// Streamwise points upstream of the corner region, in it, and in the buffer after it.
    pub points: [usize; 3],
    /// First streamwise spacing at the inflow.
    pub inlet_spacing: f64,
    /// Length of the flat plate upstream of the corner region.
    pub inlet_length: f64,
    /// Half length of the corner region (it spans `−L … L` around the corner).
    pub corner_half_length: f64,
    /// Stretching factor of the buffer cells.
    pub buffer_stretch: f64,
    /// Sweep angle in degrees.
    pub sweep_degrees: f64,
    /// Ramp angle in degrees.
    pub ramp_degrees: f64,
    /// Height of the domain above the plate.
    pub height: f64,
    /// Wall-normal size of the first cell.
    pub wall_spacing: f64,
    /// Spanwise width.
    pub span: f64,
}

/// The numbers of one line of a text input, or an error naming the file and line.
fn numbers<const N: usize>(file: &str, line: usize, text: Option<&str>) -> CfdResult<[f64; N]> {
    let text = text.ok_or_else(|| {
        CfdError::Config(format!(
            "{file}:{line}: missing; expected {N} numbers on this line"
        ))
    })?;
    let values: Vec<f64> = text
        .split_whitespace()
        .take(N)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| CfdError::Config(format!("{file}:{line}: `{}`: {e}", text.trim())))?;
    values.try_into().map_err(|v: Vec<f64>| {
        CfdError::Config(format!(
            "{file}:{line}: expected {N} numbers, found {}",
            v.len()
        ))
    })
}

fn count(file: &str, line: usize, value: f64, what: &str) -> CfdResult<usize> {
    if value.fract() != 0.0 || value < 1.0 {
        return Err(CfdError::Config(format!(
            "{file}:{line}: {what} = {value} must be a positive whole number"
        )));
    }
    Ok(value as usize)
}

impl RampGridSpec {
    /// Reads `swept-compression-grid.in`.
    pub fn read(path: &Path) -> CfdResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| CfdError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the text of `swept-compression-grid.in`: six pairs of a comment line and a
    /// line of numbers (`nx ny nz ranks`, `nx_inlet nx_corner nx_buffer`, `dx_inlet
    /// Lx_inlet Lx_corner buffer_stretch`, `sweep ramp` angles, `height wall_spacing span`,
    /// three output flags); `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> CfdResult<Self> {
        let lines: Vec<&str> = text.lines().collect();
        let line = |n: usize| lines.get(n - 1).copied();
        let [nx, ny, nz, _ranks] = numbers::<4>(file, 2, line(2))?;
        let [n_inlet, n_corner, n_buffer] = numbers::<3>(file, 4, line(4))?;
        let [dx_inlet, lx_inlet, lx_corner, stretch] = numbers::<4>(file, 6, line(6))?;
        let [sweep, ramp] = numbers::<2>(file, 8, line(8))?;
        let [height, wall, span] = numbers::<3>(file, 10, line(10))?;
        let extent = Extent::new(
            count(file, 2, nx, "nx")?,
            count(file, 2, ny, "ny")?,
            count(file, 2, nz, "nz")?,
        );
        let points = [
            count(file, 4, n_inlet, "nx_inlet")?,
            count(file, 4, n_corner, "nx_corner")?,
            count(file, 4, n_buffer, "nx_buffer")?,
        ];
        let spec = Self {
            extent,
            points,
            inlet_spacing: dx_inlet,
            inlet_length: lx_inlet,
            corner_half_length: lx_corner,
            buffer_stretch: stretch,
            sweep_degrees: sweep,
            ramp_degrees: ramp,
            height,
            wall_spacing: wall,
            span,
        };
        spec.check(file)?;
        Ok(spec)
    }

    fn check(&self, file: &str) -> CfdResult<()> {
        let fail = |line: usize, message: String| {
            Err(CfdError::Config(format!("{file}:{line}: {message}")))
        };
        if self.points.iter().sum::<usize>() != self.extent.nx {
            return fail(
                4,
                format!(
                    "nx_inlet + nx_corner + nx_buffer = {} must equal nx = {}",
                    self.points.iter().sum::<usize>(),
                    self.extent.nx
                ),
            );
        }
        if self.points[0] < 2 || self.points[1] < 2 {
            return fail(
                4,
                "nx_inlet and nx_corner need at least 2 points each".into(),
            );
        }
        // The wall orthogonalisation smooths rows 1..19.
        if self.extent.ny < ORTHOGONAL_ROWS {
            return fail(
                2,
                format!("ny = {} must be at least {ORTHOGONAL_ROWS}", self.extent.ny),
            );
        }
        if self.extent.nz < 2 {
            return fail(2, format!("nz = {} must be at least 2", self.extent.nz));
        }
        let positive = [
            (6, "dx_inlet", self.inlet_spacing),
            (6, "Lx_inlet", self.inlet_length),
            (6, "Lx_corner", self.corner_half_length),
            (6, "buffer_stretch", self.buffer_stretch),
            (10, "height", self.height),
            (10, "wall_spacing", self.wall_spacing),
            (10, "span", self.span),
        ];
        for (line, name, value) in positive {
            if !(value > 0.0 && value.is_finite()) {
                return fail(line, format!("{name} = {value} must be positive"));
            }
        }
        if !(self.ramp_degrees > 0.0 && self.ramp_degrees < 90.0) {
            return fail(
                8,
                format!(
                    "ramp angle {} must lie in (0, 90) degrees",
                    self.ramp_degrees
                ),
            );
        }
        if self.sweep_degrees.is_nan() || self.sweep_degrees.abs() >= 90.0 {
            return fail(
                8,
                format!(
                    "sweep angle {} must lie in (−90, 90) degrees",
                    self.sweep_degrees
                ),
            );
        }
        Ok(())
    }

    /// The interior coordinate arrays `[x, y, z]`, each `[nz][ny][nx]`.
    pub fn coordinates(&self) -> [Vec<f64>; 3] {
        let Extent { nx, ny, nz } = self.extent;
        let [n_inlet, n_corner, _] = self.points;
        // Rounded as the official generator does, so that the grid matches its bit for bit.
        let radians = |degrees: f64| degrees * std::f64::consts::PI / 180.0;
        let ramp = radians(self.ramp_degrees);
        let sweep = radians(self.sweep_degrees);
        let corner_spacing = 2.0 * self.corner_half_length / (n_corner - 1) as f64;
        let radius = self.corner_half_length / (ramp / 2.0).tan() - self.height;

        // Wall (a) and upper (b) points of every streamwise station.
        let mut wall = vec![[0.0; 2]; nx];
        let mut upper = vec![[0.0; 2]; nx];
        let inlet = hermite_stations(
            n_inlet + 1,
            self.inlet_length,
            self.inlet_spacing,
            corner_spacing,
        );
        for i in 0..n_inlet {
            let x = inlet[i] - self.corner_half_length - self.inlet_length;
            wall[i] = [x, 0.0];
            upper[i] = [x, self.height];
        }
        for i in 0..n_corner {
            let angle = ramp * i as f64 / (n_corner - 1) as f64;
            let along = i as f64 * corner_spacing - self.corner_half_length;
            wall[n_inlet + i] = if angle < ramp / 2.0 {
                [along, 0.0]
            } else {
                [along * ramp.cos(), along * ramp.sin()]
            };
            upper[n_inlet + i] = [
                radius * angle.sin() - self.corner_half_length,
                radius * (1.0 - angle.cos()) + self.height,
            ];
        }
        for i in n_inlet + n_corner..nx {
            let dx = (wall[i - 1][0] - wall[i - 2][0]) * self.buffer_stretch;
            wall[i] = [wall[i - 1][0] + dx, wall[i - 1][1] + dx * ramp.tan()];
            upper[i] = [upper[i - 1][0] + dx, upper[i - 1][1] + dx * ramp.tan()];
        }

        // Exponential clustering towards the wall along each station's line.
        let mut plane_x = vec![0.0; nx * ny];
        let mut plane_y = vec![0.0; nx * ny];
        let mut b = 3.5;
        for i in 0..nx {
            let length =
                ((upper[i][0] - wall[i][0]).powi(2) + (upper[i][1] - wall[i][1]).powi(2)).sqrt();
            let delta = self.wall_spacing / length;
            // The official loop's counter is shared by all stations: ten Newton steps for
            // the first, one (from the previous station's b) for each of the others.
            for _ in 0..if i == 0 { 10 } else { 1 } {
                b = newton_step(b, delta, ny);
            }
            let a = 1.0 / (b.exp() - 1.0);
            let dy = 1.0 / (ny - 1) as f64;
            for j in 0..ny {
                let s = j as f64 * dy;
                let fraction = a * ((s * b).exp() - 1.0);
                plane_x[j * nx + i] = wall[i][0] + (upper[i][0] - wall[i][0]) * fraction;
                plane_y[j * nx + i] = wall[i][1] + (upper[i][1] - wall[i][1]) * fraction;
            }
        }
        orthogonalise_near_wall(&mut plane_x, &mut plane_y, nx);

        let mut x = Vec::with_capacity(nx * ny * nz);
        let mut y = Vec::with_capacity(nx * ny * nz);
        let mut z = Vec::with_capacity(nx * ny * nz);
        let last = (nz - 1) as f64;
        for k in 0..nz {
            let dz = self.span / last;
            let swept_length =
                self.inlet_length - self.span * sweep.tan() + dz * k as f64 * sweep.tan();
            let spanwise = k as f64 * self.span * last / (last * last);
            for j in 0..ny {
                let row = &plane_x[j * nx..(j + 1) * nx];
                let first = row[0];
                let swept = |x: f64| (x - first) * swept_length / self.inlet_length + first;
                let swept_inlet_end = swept(row[n_inlet - 1]);
                for i in 0..nx {
                    x.push(if i < n_inlet {
                        swept(row[i])
                    } else {
                        swept_inlet_end + row[i] - row[n_inlet - 1]
                    });
                    y.push(plane_y[j * nx + i]);
                    z.push(spanwise);
                }
            }
        }
        [x, y, z]
    }
}

/// Rows that the wall orthogonalisation moves (`1..ORTHOGONAL_ROWS`).
const ORTHOGONAL_ROWS: usize = 20;

/// `n` stations from 0 to `length` on a cubic with end spacings `start` and `end`.
fn hermite_stations(n: usize, length: f64, start: f64, end: f64) -> Vec<f64> {
    let m = (n - 1) as f64;
    (0..n)
        .map(|i| {
            let s = i as f64 / m;
            let h1 = (1.0 - 2.0 * (s - 1.0)) * s * s;
            let g0 = s * ((s - 1.0) * (s - 1.0));
            let g1 = (s - 1.0) * s * s;
            length * h1 + start * m * g0 + end * m * g1
        })
        .collect()
}

/// One Newton step on the clustering exponent `b` so that the first of `ny` cells has
/// the fraction `delta` of the line.
fn newton_step(b: f64, delta: f64, ny: usize) -> f64 {
    let m = (ny - 1) as f64;
    let (e1, e) = ((b / m).exp(), b.exp());
    let f = (e1 - 1.0) / (e - 1.0) - delta;
    let df = (e1 / m * (e - 1.0) - (e1 - 1.0) * e) / (e - 1.0).powi(2);
    b - f / df
}

/// The official near-wall smoothing: ten sweeps that move rows `1..20` towards lines
/// normal to the row below, fading with the distance from the wall.
fn orthogonalise_near_wall(x: &mut [f64], y: &mut [f64], nx: usize) {
    let (sweeps, rows, fade) = (10, ORTHOGONAL_ROWS, 3.0);
    let mut shift = vec![[0.0; 2]; nx];
    for _ in 0..sweeps {
        for j in 1..rows {
            let at = |i: usize| j * nx + i;
            let below = |i: usize| (j - 1) * nx + i;
            shift[0] = [0.0; 2];
            shift[nx - 1] = [0.0; 2];
            for i in 1..nx - 1 {
                let (tx, ty) = (x[at(i + 1)] - x[at(i - 1)], y[at(i + 1)] - y[at(i - 1)]);
                let norm = (tx * tx + ty * ty).sqrt();
                let normal = [-ty / norm, tx / norm];
                let step = [x[at(i)] - x[below(i)], y[at(i)] - y[below(i)]];
                let s = step[0] * normal[0] + step[1] * normal[1];
                shift[i] = [s * normal[0] - step[0], s * normal[1] - step[1]];
            }
            let weight = (-fade * j as f64 / rows as f64).exp() / 2.0;
            for i in 1..nx - 1 {
                for (c, field) in [&mut *x, &mut *y].into_iter().enumerate() {
                    let smoothed = (shift[i - 1][c] + 2.0 * shift[i][c] + shift[i + 1][c]) / 4.0;
                    field[at(i)] += weight * smoothed;
                }
            }
        }
    }
}

/// The initial field of the official `init3d-inlet1d`: the inflow profile at every
/// streamwise and spanwise station (matched by wall-normal index), `w = 0`.
pub fn initial_field(extent: Extent, inlet: &InletProfile) -> CfdResult<FlowField> {
    let Extent { nx, ny, nz } = extent;
    if inlet.len() != ny {
        return Err(CfdError::Config(format!(
            "the inflow profile has {} points, the grid {ny} in y",
            inlet.len()
        )));
    }
    let mut field = FlowField::uniform(extent, 0, 0.0, [0.0; 5]);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let at = (k * ny + j) * nx + i;
                field.density[at] = inlet.density[j];
                field.u[at] = inlet.u[j];
                field.v[at] = inlet.v[j];
                field.temperature[at] = inlet.temperature[j];
            }
        }
    }
    Ok(field)
}

/// C's `rand()` on glibc without `srand` (seed 1), scaled to `[0, 1]` as the official
/// code scales it: its blowing-and-suction phases are the first numbers of this sequence.
#[derive(Debug, Clone)]
struct GlibcRandom {
    state: Vec<u32>,
}

impl GlibcRandom {
    fn new() -> Self {
        // glibc's TYPE_3 additive generator: 31 words from a Lehmer sequence, 310
        // discarded outputs, then r[i] = r[i−31] + r[i−3].
        let mut r: Vec<u32> = Vec::with_capacity(400);
        r.push(1);
        for i in 1..31 {
            let product = 16807 * i64::from(r[i - 1] as i32) % 2_147_483_647;
            let word = if product < 0 {
                product + 2_147_483_647
            } else {
                product
            };
            r.push(word as u32);
        }
        for i in 31..34 {
            r.push(r[i - 31]);
        }
        for i in 34..344 {
            r.push(r[i - 31].wrapping_add(r[i - 3]));
        }
        Self { state: r }
    }

    fn next_unit(&mut self) -> f64 {
        let i = self.state.len();
        let word = self.state[i - 31].wrapping_add(self.state[i - 3]);
        self.state.push(word);
        f64::from(word >> 1) / 2_147_483_647.0
    }
}

/// The parameters of `IBC = 108` (`BC_NPARA`, `BC_RPARA`).
#[derive(Debug, Clone, PartialEq)]
pub struct RampParameters {
    /// `MZMAX`: spanwise modes of the wall disturbance (0: uniform, < 0: one mode).
    pub spanwise_modes: i64,
    /// `MTMAX`: temporal harmonics of the wall disturbance.
    pub temporal_modes: usize,
    /// `Inlet_boundary = 1`: read the inflow profile from `flow1d-inlet.dat`.
    pub inlet_from_file: bool,
    /// `Tw`: wall temperature (≤ 0: adiabatic, extrapolated).
    pub wall_temperature: f64,
    /// `epsl`: blowing-and-suction amplitude.
    pub amplitude: f64,
    /// `x_dis_begin`, `x_dis_end`: the streamwise band of the disturbance.
    pub band: [f64; 2],
    /// `beta`: disturbance frequency (≤ 0: steady).
    pub frequency: f64,
    /// `x_wall_begin` (read, unused by the official condition).
    pub wall_begin: f64,
    /// `x_up_bound_begin`: the upper boundary is held at the profile's last point from
    /// the last station at or before this `x` on.
    pub upper_begin: f64,
    /// `SLZ`: spanwise period of the disturbance.
    pub spanwise_period: f64,
}

impl RampParameters {
    /// The parameters in a control file with `IBC = 108`.
    pub fn from_control(control: &Control) -> CfdResult<Self> {
        let n = &control.bc_npara;
        let r = &control.bc_rpara;
        if n.len() < 4 {
            return Err(CfdError::Config(format!(
                "BC_NPARA: IBC = 108 needs 4 values (MZMAX MTMAX Inlet_boundary If_wall_not_normal), found {}",
                n.len()
            )));
        }
        if r.len() < 8 {
            return Err(CfdError::Config(format!(
                "BC_RPARA: IBC = 108 needs 8 values (Tw epsl x_dis_begin x_dis_end beta x_wall_begin x_up_bound_begin SLZ), found {}",
                r.len()
            )));
        }
        if n[3] != 0 {
            return Err(CfdError::Unsupported {
                key: "BC_NPARA".into(),
                feature: "a wall that is not normal to the grid (its fourth value must be 0, as in the official code)".into(),
            });
        }
        let temporal_modes = usize::try_from(n[1]).map_err(|_| {
            CfdError::Config(format!("BC_NPARA: MTMAX = {} must not be negative", n[1]))
        })?;
        if r[7] == 0.0 && n[0] > 0 {
            return Err(CfdError::Config(
                "BC_RPARA: SLZ must not be 0 with MZMAX > 0".into(),
            ));
        }
        Ok(Self {
            spanwise_modes: n[0],
            temporal_modes,
            inlet_from_file: n[2] == 1,
            wall_temperature: r[0],
            amplitude: r[1],
            band: [r[2], r[3]],
            frequency: r[4],
            wall_begin: r[5],
            upper_begin: r[6],
            spanwise_period: r[7],
        })
    }
}

/// The boundary condition `IBC = 108` on a grid.
#[derive(Debug, Clone)]
pub struct CompressionRamp {
    parameters: RampParameters,
    inlet: InletProfile,
    gas: Gas,
    /// Streamwise shape of the blowing and suction, per global `i`.
    streamwise: Vec<f64>,
    /// Spanwise shape, per global `k`.
    spanwise: Vec<f64>,
    /// Weights of the temporal harmonics.
    harmonics: Vec<f64>,
    /// First global `i` of the free-stream upper boundary.
    upper_first: usize,
}

impl CompressionRamp {
    /// The condition for `grid` (padded coordinates), with inflow profile `inlet`.
    pub fn new(
        parameters: RampParameters,
        inlet: InletProfile,
        gas: Gas,
        grid: &Coordinates,
    ) -> CfdResult<Self> {
        let Extent { nx, ny, nz } = grid.extent;
        if inlet.len() != ny {
            return Err(CfdError::Config(format!(
                "the inflow profile has {} points, the grid {ny} in y",
                inlet.len()
            )));
        }
        if ny < 5 {
            return Err(CfdError::Config(format!(
                "the wall condition needs at least 5 points in y, the grid has {ny}"
            )));
        }
        let mut random = GlibcRandom::new();
        let modes = parameters.spanwise_modes.unsigned_abs() as usize;
        let phases: Vec<f64> = (0..modes).map(|_| random.next_unit()).collect();
        // Each mode 1.25 times weaker than the one before, normalised to sum 1 (divided
        // step by step, as officially, for the same rounding).
        let weights = |n: usize| {
            let raw: Vec<f64> = std::iter::successors(Some(1.0), |w| Some(w / 1.25))
                .take(n)
                .collect();
            let total: f64 = raw.iter().sum();
            raw.into_iter().map(|w| w / total).collect::<Vec<f64>>()
        };
        let spanwise_weights = weights(modes);
        let [begin, end] = parameters.band;
        let streamwise = (0..nx)
            .map(|i| {
                let x = grid.point(i + GHOST, GHOST, GHOST)[0];
                if x >= begin && x <= end {
                    // The official phase runs backwards (divided by begin − end).
                    let angle = 10.0 * std::f64::consts::PI * (x - begin) / (begin - end);
                    4.0 / 27f64.sqrt() * angle.sin() * (1.0 - angle.cos())
                } else {
                    0.0
                }
            })
            .collect();
        let spanwise = (0..nz)
            .map(|k| {
                let theta = grid.point(GHOST, GHOST, k + GHOST)[2] / parameters.spanwise_period;
                let two_pi = 2.0 * std::f64::consts::PI;
                match parameters.spanwise_modes {
                    0 => 1.0,
                    m if m < 0 => (-two_pi * m as f64 * theta).sin(),
                    _ => (0..modes)
                        .map(|m| {
                            spanwise_weights[m]
                                * (two_pi * (m + 1) as f64 * (theta + phases[m])).sin()
                        })
                        .sum(),
                }
            })
            .collect();
        let top = ny - 1 + GHOST;
        let upper_first = (0..nx)
            .rev()
            .find(|&i| grid.point(i + GHOST, top, GHOST)[0] <= parameters.upper_begin)
            .unwrap_or(0);
        Ok(Self {
            harmonics: weights(parameters.temporal_modes),
            parameters,
            inlet,
            gas,
            streamwise,
            spanwise,
            upper_first,
        })
    }

    /// The temporal factor of the wall disturbance at `time`.
    fn temporal(&self, time: f64) -> f64 {
        if self.parameters.frequency > 0.0 {
            self.harmonics
                .iter()
                .enumerate()
                .map(|(m, w)| w * ((m + 1) as f64 * self.parameters.frequency * time).sin())
                .sum()
        } else {
            1.0
        }
    }
}

impl StateBoundary for CompressionRamp {
    fn apply(&self, block: &Block, domain: &Domain, time: f64) -> CfdResult<()> {
        let faces = domain.boundary_faces(block);
        let op = RampBoundaryOp {
            ramp: self,
            offset: block.offset,
            inlet: faces[0][0],
            wall: faces[1][0],
            upper: faces[1][1],
            temporal: self.temporal(time),
        };
        Ok(block.state.inplace_op1(&op)?)
    }
}

/// Sets the ramp's boundary values on one block's conservative state.
struct RampBoundaryOp<'a> {
    ramp: &'a CompressionRamp,
    offset: [usize; 3],
    inlet: bool,
    wall: bool,
    upper: bool,
    temporal: f64,
}

impl RampBoundaryOp<'_> {
    fn profile(&self, global_j: usize) -> [f64; 5] {
        let p = &self.ramp.inlet;
        let gas = self.ramp.gas;
        let density = p.density[global_j];
        gas.conservative(
            density,
            [p.u[global_j], p.v[global_j], 0.0],
            gas.pressure(density, p.temperature[global_j]),
        )
    }
}

impl InplaceOp1 for RampBoundaryOp<'_> {
    fn name(&self) -> &'static str {
        "opencfd-compression-ramp-boundary"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let shape = FieldShape::of(layout)?;
        if shape.components != 5 {
            candle_core::bail!(
                "ramp boundary: expected the 5 conservative variables, got {shape:?}"
            );
        }
        let state = values_mut(storage, layout)?;
        let plane = shape.plane_len();
        let [nx, ny, nz] = shape.interior();
        let gas = self.ramp.gas;
        let get = |state: &[f64], at: usize| -> [f64; 5] {
            std::array::from_fn(|c| state[c * plane + at])
        };
        let set = |state: &mut [f64], at: usize, q: [f64; 5]| {
            for (c, value) in q.into_iter().enumerate() {
                state[c * plane + at] = value;
            }
        };
        if self.wall && ny <= GHOST {
            candle_core::bail!(
                "ramp boundary: the wall's ghosts mirror {GHOST} points above it, the block has {ny} in y"
            );
        }
        let [i0, j0, k0] = self.offset;
        for k in GHOST..GHOST + nz {
            // Inflow: the profile on the ghosts and the first station.
            if self.inlet {
                for j in GHOST..GHOST + ny {
                    let q = self.profile(j0 + j - GHOST);
                    for i in 0..=GHOST {
                        set(state, shape.at(i, j, k), q);
                    }
                }
            }
            // Upper boundary past the corner: the profile's last point.
            if self.upper {
                let top = self.ramp.inlet.len() - 1;
                let q = self.profile(top);
                for i in GHOST..GHOST + nx {
                    if i0 + i - GHOST >= self.ramp.upper_first {
                        set(state, shape.at(i, GHOST + ny - 1, k), q);
                    }
                }
            }
            // Wall: no slip with blowing and suction, isothermal (or extrapolated
            // temperature), pressure extrapolated from the three points above, and
            // ghosts mirrored (density and temperature even, velocity odd).
            if self.wall {
                for i in GHOST..GHOST + nx {
                    let above = |m: usize| {
                        let (density, _, pressure) =
                            gas.primitive(get(state, shape.at(i, GHOST + m, k)));
                        (density, gas.temperature(density, pressure))
                    };
                    let [(d1, t1), (d2, t2), (d3, t3)] = [above(1), above(2), above(3)];
                    let wall_dt = (18.0 * d1 * t1 - 9.0 * d2 * t2 + 2.0 * d3 * t3) / 11.0;
                    let temperature = if self.ramp.parameters.wall_temperature > 0.0 {
                        self.ramp.parameters.wall_temperature
                    } else {
                        (18.0 * t1 - 9.0 * t2 + 2.0 * t3) / 11.0
                    };
                    let density = wall_dt / temperature;
                    let blowing = self.ramp.parameters.amplitude
                        * self.ramp.streamwise[i0 + i - GHOST]
                        * self.ramp.spanwise[k0 + k - GHOST]
                        * self.temporal;
                    let q = gas.conservative(
                        density,
                        [0.0, blowing, 0.0],
                        gas.pressure(density, temperature),
                    );
                    set(state, shape.at(i, GHOST, k), q);
                    for m in 1..=GHOST {
                        let [rho, mx, my, mz, energy] = get(state, shape.at(i, GHOST + m, k));
                        set(
                            state,
                            shape.at(i, GHOST - m, k),
                            [rho, -mx, -my, -mz, energy],
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark's generator input, with our own comment lines.
    const BENCHMARK_GRID: &str = "points nx ny nz, ranks\n25 240 20 1\n\
        streamwise points: inlet corner buffer\n12 12 1\n\
        dx_inlet Lx_inlet Lx_corner buffer_stretch\n0.05 300. 50. 1.01\n\
        sweep and ramp angles\n0. 24.\n\
        height wall_spacing span\n35. 0.01 14.\n\
        output flags\n1 1 0\n";

    #[test]
    fn glibc_rand_sequence_without_srand() {
        let mut random = GlibcRandom::new();
        // The first outputs of rand() on glibc with the default seed.
        for expected in [1804289383u32, 846930886, 1681692777, 1714636915, 1957747793] {
            let unit = random.next_unit();
            assert_eq!(unit, f64::from(expected) / 2_147_483_647.0);
        }
    }

    #[test]
    fn benchmark_grid_matches_the_official_generator_bit_for_bit() {
        let spec = RampGridSpec::parse(BENCHMARK_GRID, "grid.in").unwrap();
        let [x, y, z] = spec.coordinates();
        let Extent { nx, ny, .. } = spec.extent;
        // Values of OCFD3d-Mesh.dat written by the official swept-compression-ramp.c.
        for ([k, j, i], expected) in [
            ([0, 0, 0], [-350.0, 0.0, 0.0]),
            ([0, 1, 0], [-350.0, 0.009999999999999997, 0.0]),
            ([0, 3, 9], [-112.18778080026522, 0.030525484495418496, 0.0]),
            ([0, 0, 24], [54.0652811750303, 24.07141405839509, 0.0]),
            (
                [5, 239, 24],
                [39.8294986673773, 56.04550507588607, 3.6842105263157894],
            ),
            (
                [19, 10, 13],
                [-40.91289451820338, 0.10813261322793685, 14.0],
            ),
            ([7, 120, 12], [-50.0, 3.9846238802876863, 5.157894736842105]),
        ] {
            let at = (k * ny + j) * nx + i;
            assert_eq!(
                [x[at], y[at], z[at]],
                expected,
                "point (i, j, k) = ({i}, {j}, {k})"
            );
        }
    }

    #[test]
    fn grid_input_errors_name_the_line() {
        let short = BENCHMARK_GRID.replace("12 12 1", "12 11 1");
        let error = RampGridSpec::parse(&short, "grid.in")
            .unwrap_err()
            .to_string();
        assert!(error.contains("grid.in:4"), "{error}");
        let bad = BENCHMARK_GRID.replace("0. 24.", "0. x");
        let error = RampGridSpec::parse(&bad, "grid.in")
            .unwrap_err()
            .to_string();
        assert!(error.contains("grid.in:8"), "{error}");
        let error = RampGridSpec::parse("header\n25 240\n", "grid.in")
            .unwrap_err()
            .to_string();
        assert!(error.contains("grid.in:2"), "{error}");
    }
}
