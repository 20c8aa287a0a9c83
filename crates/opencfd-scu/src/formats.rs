//! Readers and writers of the official OpenCFD-SCU input and output files: the grid
//! `OCFD3d-Mesh.dat`, the flow field `opencfd.dat` (and its restart copies `OCFDnnnnnnnn.dat`
//! and averages `opencfd.average`), and the 1-D inlet profiles `flow1d-inlet.dat` and
//! `flow-inlet.dat` of the compression-corner case (`IBC = 108`).
//!
//! # Binary record files
//!
//! The two binary files are laid out the way a Fortran program writes unformatted
//! sequential records: each record is a 4-byte signed integer holding the payload length in
//! bytes, the payload, and the same integer again. Everything is little-endian (the official
//! code writes native x86 byte order), integers are `i32` and reals `f64`. A 3-D array of the
//! global grid (`GRID_3D` = `nx ny nz`) is stored as `nz` records, one per k-plane, each
//! holding the `nx·ny` values of the plane with `i` varying fastest, then `j`. With
//! `P = nx·ny` and `B = 8P` one such array takes `nz·(B + 8)` bytes.
//!
//! ## Grid file `OCFD3d-Mesh.dat`
//!
//! No header; three arrays, x then y then z.
//!
//! | bytes (per plane record, k = 0‥nz−1) | content |
//! |---|---|
//! | `4` | `i32` marker = `B` |
//! | `B` | `f64` `x[k][j][i]`, `i` fastest, `j` = 0‥ny−1 |
//! | `4` | `i32` marker = `B` |
//! | … | the nz records of x, then the nz records of y, then the nz records of z |
//!
//! Total `3·nz·(B + 8)` bytes; a 2 × 2 × 1 grid gives 3 records of `4 + 32 + 4` bytes.
//!
//! ## Flow file `opencfd.dat`
//!
//! A header record, then five arrays: density, u, v, w, temperature (non-dimensional
//! primitive variables).
//!
//! | offset | bytes | content |
//! |---|---|---|
//! | 0 | 4 | `i32` marker = 12 |
//! | 4 | 4 | `i32` time step number |
//! | 8 | 8 | `f64` time |
//! | 16 | 4 | `i32` marker = 12 |
//! | 20 | `nz·(B+8)` | density, one plane record per k as in the grid file |
//! | … | `4·nz·(B+8)` | u, v, w, temperature, likewise |
//!
//! Total `20 + 5·nz·(B + 8)` bytes. The solver writes the same layout to
//! `OCFDnnnnnnnn.dat` (step number in eight digits, see [`restart_file_name`]) and, for the
//! time averages, to `opencfd.average` / `OCFDnnnnnnnn.average`. The official reader takes
//! the header at fixed offsets and never looks at the markers; the readers here check every
//! marker, so a file written for another `GRID_3D`, a truncated file or a big-endian file is
//! reported instead of being misread.
//!
//! # Text inlet profiles
//!
//! ## `flow1d-inlet.dat` (read by `IBC = 108` when `BC_NPARA`'s third value is 1)
//!
//! | line | content |
//! |---|---|
//! | 1 | a header, ignored (the shipped file has ` variables=y,d,u,v,T`) |
//! | 2‥ny+1 | five reals per line: `y  d  u  v  T` at the inlet point `j` = 0‥ny−1 |
//!
//! The numbers are whitespace-separated; the official files write them as Fortran
//! `5F16.8` (16 columns, 8 decimals each), which [`InletProfile::to_text`] reproduces. The
//! solver ignores the `y` column (the profile is matched to the grid by index `j`) and uses
//! d, u, v, T for the inflow plane (w = 0) and along the upper boundary. Here there must be
//! exactly `ny` data lines; blank lines are skipped.
//!
//! ## `flow-inlet.dat`
//!
//! The same profile without header and without the `y` column: `ny` lines of `d u v T`
//! (Fortran `4F16.8`). The official interpolation tool writes it beside
//! `flow1d-inlet.dat`; the solver itself does not read it.
//!
//! # Conventions
//!
//! Readers take the expected global [`Extent`] (from `GRID_3D`) and fail with
//! [`CfdError::Config`] naming the file and the offending record, line or value when the
//! content does not match; operating-system failures are [`CfdError::Io`]. Non-finite reals
//! are rejected. Writers write a temporary file in the target's directory and rename it
//! over the target, so a reader never sees a half-written file.

use crate::GHOST;
use crate::error::{CfdError, CfdResult};
use crate::metrics::{Coordinates, Extent};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Official name of the grid file.
pub const MESH_FILE: &str = "OCFD3d-Mesh.dat";
/// Official name of the initial flow field (read when no restart step is recorded).
pub const FLOW_FILE: &str = "opencfd.dat";
/// Official name of the time-averaged field.
pub const AVERAGE_FILE: &str = "opencfd.average";
/// Official name of the compression-corner inlet profile (with `y` column and header).
pub const INLET_PROFILE_FILE: &str = "flow1d-inlet.dat";
/// Official name of the headerless four-column inlet profile.
pub const INLET_COLUMNS_FILE: &str = "flow-inlet.dat";

/// Payload length of the flow file's header record: one `i32` step and one `f64` time.
const HEADER_PAYLOAD: i32 = 12;
/// Names of the flow file's arrays, in file order.
const FLOW_ARRAYS: [&str; 5] = ["density", "u", "v", "w", "temperature"];
/// Names of the grid file's arrays, in file order.
const MESH_ARRAYS: [&str; 3] = ["x", "y", "z"];

/// Name of the solver's flow output for step `step`, `OCFD` and eight digits, e.g.
/// `OCFD00001000.dat`.
pub fn restart_file_name(step: u64) -> String {
    format!("OCFD{step:08}.dat")
}

/// Name of the solver's averaged-field output for step `step`, e.g. `OCFD00001000.average`.
pub fn average_file_name(step: u64) -> String {
    format!("OCFD{step:08}.average")
}

/// A flow field of the whole grid as the flow file stores it: primitive variables on the
/// interior points only, each array `[nz][ny][nx]` with `i` fastest (index
/// `(k·ny + j)·nx + i`).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowField {
    /// Grid size (`GRID_3D`).
    pub extent: Extent,
    /// Time step number.
    pub step: u64,
    /// Non-dimensional time.
    pub time: f64,
    /// Density.
    pub density: Vec<f64>,
    /// Velocity along x.
    pub u: Vec<f64>,
    /// Velocity along y.
    pub v: Vec<f64>,
    /// Velocity along z.
    pub w: Vec<f64>,
    /// Temperature.
    pub temperature: Vec<f64>,
}

impl FlowField {
    /// A field with the same `[d, u, v, w, T]` at every point.
    pub fn uniform(extent: Extent, step: u64, time: f64, values: [f64; 5]) -> Self {
        let n = extent.len_interior();
        let [d, u, v, w, t] = values;
        Self {
            extent,
            step,
            time,
            density: vec![d; n],
            u: vec![u; n],
            v: vec![v; n],
            w: vec![w; n],
            temperature: vec![t; n],
        }
    }

    /// The five arrays in file order: density, u, v, w, temperature.
    pub fn arrays(&self) -> [&[f64]; 5] {
        [&self.density, &self.u, &self.v, &self.w, &self.temperature]
    }

    /// Reads a flow file (`opencfd.dat`, `OCFDnnnnnnnn.dat`, `opencfd.average`) written for
    /// the grid `extent`.
    pub fn read(path: &Path, extent: Extent) -> CfdResult<Self> {
        let layout = Layout::new(path, extent, &FLOW_ARRAYS, true)?;
        let mut reader = RecordReader::open(path, &layout)?;
        let (step, time) = reader.header()?;
        let mut arrays = Vec::with_capacity(FLOW_ARRAYS.len());
        for name in FLOW_ARRAYS {
            arrays.push(reader.array(name)?);
        }
        reader.finish()?;
        let [density, u, v, w, temperature]: [Vec<f64>; 5] = arrays
            .try_into()
            .map_err(|_| CfdError::Config("flow file: internal array count".into()))?;
        Ok(Self {
            extent,
            step,
            time,
            density,
            u,
            v,
            w,
            temperature,
        })
    }

    /// Writes the field in the official flow-file layout (atomically). Fails when an array
    /// does not have `nx·ny·nz` values, a value is not finite, or the step does not fit the
    /// file's 32-bit integer.
    pub fn write(&self, path: &Path) -> CfdResult<()> {
        let layout = Layout::new(path, self.extent, &FLOW_ARRAYS, true)?;
        let step = i32::try_from(self.step).map_err(|_| {
            CfdError::Config(format!(
                "{}: step {} does not fit the flow file's 32-bit step field",
                path.display(),
                self.step
            ))
        })?;
        if !self.time.is_finite() {
            return Err(CfdError::Config(format!(
                "{}: time {} is not finite",
                path.display(),
                self.time
            )));
        }
        let arrays = self.arrays();
        layout.check_arrays(&arrays)?;
        write_atomically(path, |out| {
            out.write_all(&HEADER_PAYLOAD.to_le_bytes())?;
            out.write_all(&step.to_le_bytes())?;
            out.write_all(&self.time.to_le_bytes())?;
            out.write_all(&HEADER_PAYLOAD.to_le_bytes())?;
            for a in arrays {
                layout.write_array(out, a)?;
            }
            Ok(())
        })
    }
}

/// Copies an interior array `[nz][ny][nx]` into a padded one (see [`Extent::index`]) with
/// zero ghost layers.
///
/// # Panics
/// If `interior` does not have `extent.len_interior()` values.
pub fn pad(extent: Extent, interior: &[f64]) -> Vec<f64> {
    assert_eq!(
        interior.len(),
        extent.len_interior(),
        "interior array length does not match the extent"
    );
    let mut padded = vec![0.0; extent.len_padded()];
    let nx = extent.nx;
    for k in 0..extent.nz {
        for j in 0..extent.ny {
            let src = (k * extent.ny + j) * nx;
            let dst = extent.index(GHOST, j + GHOST, k + GHOST);
            padded[dst..dst + nx].copy_from_slice(&interior[src..src + nx]);
        }
    }
    padded
}

/// Extracts the interior `[nz][ny][nx]` of a padded array.
///
/// # Panics
/// If `padded` does not have `extent.len_padded()` values.
pub fn unpad(extent: Extent, padded: &[f64]) -> Vec<f64> {
    assert_eq!(
        padded.len(),
        extent.len_padded(),
        "padded array length does not match the extent"
    );
    let nx = extent.nx;
    let mut interior = Vec::with_capacity(extent.len_interior());
    for k in 0..extent.nz {
        for j in 0..extent.ny {
            let src = extent.index(GHOST, j + GHOST, k + GHOST);
            interior.extend_from_slice(&padded[src..src + nx]);
        }
    }
    interior
}

/// Reads the interior coordinate arrays `[x, y, z]` (each `[nz][ny][nx]`) of a grid file
/// written for `extent`.
pub fn read_mesh_interior(path: &Path, extent: Extent) -> CfdResult<[Vec<f64>; 3]> {
    let layout = Layout::new(path, extent, &MESH_ARRAYS, false)?;
    let mut reader = RecordReader::open(path, &layout)?;
    let x = reader.array("x")?;
    let y = reader.array("y")?;
    let z = reader.array("z")?;
    reader.finish()?;
    Ok([x, y, z])
}

/// Reads a grid file written for `extent` into padded [`Coordinates`]: the interior from the
/// file, the ghost layers from [`Coordinates::fill_ghosts`] with the given periodicity. The
/// period vectors are zero (the official plain copy); to shift periodic ghosts by a period,
/// call [`Coordinates::with_period`] and `fill_ghosts` again.
pub fn read_mesh(path: &Path, extent: Extent, periodic: [bool; 3]) -> CfdResult<Coordinates> {
    let [x, y, z] = read_mesh_interior(path, extent)?;
    let mut grid = Coordinates::new(extent, pad(extent, &x), pad(extent, &y), pad(extent, &z))?;
    grid.fill_ghosts(periodic);
    Ok(grid)
}

/// Writes interior coordinate arrays (each `[nz][ny][nx]`) as a grid file (atomically).
pub fn write_mesh_interior(
    path: &Path,
    extent: Extent,
    x: &[f64],
    y: &[f64],
    z: &[f64],
) -> CfdResult<()> {
    let layout = Layout::new(path, extent, &MESH_ARRAYS, false)?;
    let arrays = [x, y, z];
    layout.check_arrays(&arrays)?;
    write_atomically(path, |out| {
        for a in arrays {
            layout.write_array(out, a)?;
        }
        Ok(())
    })
}

/// Writes the interior points of `grid` as a grid file (atomically); ghosts are not stored.
pub fn write_mesh(path: &Path, grid: &Coordinates) -> CfdResult<()> {
    let e = grid.extent;
    for (name, a) in [("x", &grid.x), ("y", &grid.y), ("z", &grid.z)] {
        if a.len() != e.len_padded() {
            return Err(CfdError::Config(format!(
                "{}: coordinate array {name} has {} values, the padded {}×{}×{} grid needs {}",
                path.display(),
                a.len(),
                e.nx,
                e.ny,
                e.nz,
                e.len_padded()
            )));
        }
    }
    write_mesh_interior(
        path,
        e,
        &unpad(e, &grid.x),
        &unpad(e, &grid.y),
        &unpad(e, &grid.z),
    )
}

/// Reads a headerless file of 3-D arrays in the plane-record layout (the grid file's layout;
/// `OCFD3d-Jacobi.dat` holds 13 such arrays), one interior array per name, in order. The
/// names only label error messages.
pub fn read_plane_arrays(path: &Path, extent: Extent, names: &[&str]) -> CfdResult<Vec<Vec<f64>>> {
    let layout = Layout::new(path, extent, names, false)?;
    let mut reader = RecordReader::open(path, &layout)?;
    let mut arrays = Vec::with_capacity(names.len());
    for name in names {
        arrays.push(reader.array(name)?);
    }
    reader.finish()?;
    Ok(arrays)
}

/// Writes interior arrays as a headerless plane-record file (atomically).
pub fn write_plane_arrays(path: &Path, extent: Extent, arrays: &[&[f64]]) -> CfdResult<()> {
    let names: Vec<String> = (0..arrays.len()).map(|m| format!("array {m}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let layout = Layout::new(path, extent, &names, false)?;
    layout.check_arrays(arrays)?;
    write_atomically(path, |out| {
        for a in arrays {
            layout.write_array(out, a)?;
        }
        Ok(())
    })
}

/// The inflow profile of the compression-corner case: values at the `ny` inlet points
/// `j = 0‥ny−1` (wall first).
#[derive(Debug, Clone, PartialEq)]
pub struct InletProfile {
    /// Wall-normal coordinate (informative; the solver matches points by index).
    pub y: Vec<f64>,
    /// Density.
    pub density: Vec<f64>,
    /// Velocity along x.
    pub u: Vec<f64>,
    /// Velocity along y.
    pub v: Vec<f64>,
    /// Temperature.
    pub temperature: Vec<f64>,
}

impl InletProfile {
    /// The profile the official code uses when no inlet file is read (`BC_NPARA`'s third
    /// value ≠ 1): d = 1, u = 1, v = 0, T = 1 at every point of `y`.
    pub fn free_stream(y: Vec<f64>) -> Self {
        let n = y.len();
        Self {
            y,
            density: vec![1.0; n],
            u: vec![1.0; n],
            v: vec![0.0; n],
            temperature: vec![1.0; n],
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether the profile has no points.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Reads `flow1d-inlet.dat`: a header line, then exactly `ny` lines `y d u v T`.
    pub fn read(path: &Path, ny: usize) -> CfdResult<Self> {
        let text = read_text(path)?;
        Self::parse(&text, &path.display().to_string(), ny)
    }

    /// Parses the text of `flow1d-inlet.dat`; `file` names it in error messages.
    pub fn parse(text: &str, file: &str, ny: usize) -> CfdResult<Self> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            None => {
                return Err(CfdError::Config(format!(
                    "{file}: empty; expected a header line and {ny} lines of y d u v T"
                )));
            }
            Some((_, header)) => {
                if !header.trim().is_empty() && parse_numbers(header).is_some() {
                    return Err(CfdError::Config(format!(
                        "{file}:1: the first line holds numbers, but it is a header line that \
                         the solver skips (a header such as `variables=y,d,u,v,T` is missing?)"
                    )));
                }
            }
        }
        let rows = parse_rows::<5>(lines, file, ny, "y d u v T")?;
        let mut p = Self::with_capacity(ny);
        for [y, d, u, v, t] in rows {
            p.y.push(y);
            p.push(d, u, v, t);
        }
        Ok(p)
    }

    /// Reads the headerless four-column `flow-inlet.dat` (`d u v T`); `y` supplies the
    /// coordinates the file lacks and its length is the number of lines expected.
    pub fn read_columns(path: &Path, y: &[f64]) -> CfdResult<Self> {
        let text = read_text(path)?;
        Self::parse_columns(&text, &path.display().to_string(), y)
    }

    /// Parses the text of `flow-inlet.dat`; `file` names it in error messages.
    pub fn parse_columns(text: &str, file: &str, y: &[f64]) -> CfdResult<Self> {
        let rows = parse_rows::<4>(text.lines().enumerate(), file, y.len(), "d u v T")?;
        let mut p = Self::with_capacity(y.len());
        p.y.extend_from_slice(y);
        for [d, u, v, t] in rows {
            p.push(d, u, v, t);
        }
        Ok(p)
    }

    /// The text of `flow1d-inlet.dat` as the official tools write it: the header
    /// ` variables=y,d,u,v,T`, then one `5F16.8` line per point (values rounded to 8
    /// decimals).
    pub fn to_text(&self) -> String {
        let mut s = String::from(" variables=y,d,u,v,T\n");
        for j in 0..self.len() {
            let row = [
                self.y[j],
                self.density[j],
                self.u[j],
                self.v[j],
                self.temperature[j],
            ];
            push_fixed_row(&mut s, &row);
        }
        s
    }

    /// The text of `flow-inlet.dat`: one `4F16.8` line `d u v T` per point.
    pub fn to_columns_text(&self) -> String {
        let mut s = String::new();
        for j in 0..self.len() {
            let row = [self.density[j], self.u[j], self.v[j], self.temperature[j]];
            push_fixed_row(&mut s, &row);
        }
        s
    }

    /// Writes `flow1d-inlet.dat` (atomically), see [`InletProfile::to_text`].
    pub fn write(&self, path: &Path) -> CfdResult<()> {
        self.check(path)?;
        let text = self.to_text();
        write_atomically(path, |out| out.write_all(text.as_bytes()))
    }

    /// Writes `flow-inlet.dat` (atomically), see [`InletProfile::to_columns_text`].
    pub fn write_columns(&self, path: &Path) -> CfdResult<()> {
        self.check(path)?;
        let text = self.to_columns_text();
        write_atomically(path, |out| out.write_all(text.as_bytes()))
    }

    fn with_capacity(n: usize) -> Self {
        Self {
            y: Vec::with_capacity(n),
            density: Vec::with_capacity(n),
            u: Vec::with_capacity(n),
            v: Vec::with_capacity(n),
            temperature: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, d: f64, u: f64, v: f64, t: f64) {
        self.density.push(d);
        self.u.push(u);
        self.v.push(v);
        self.temperature.push(t);
    }

    fn check(&self, path: &Path) -> CfdResult<()> {
        let n = self.len();
        let columns = [
            ("y", &self.y),
            ("density", &self.density),
            ("u", &self.u),
            ("v", &self.v),
            ("temperature", &self.temperature),
        ];
        for (name, c) in columns {
            if c.len() != n {
                return Err(CfdError::Config(format!(
                    "{}: inlet profile column {name} has {} values, y has {n}",
                    path.display(),
                    c.len()
                )));
            }
            if let Some(j) = c.iter().position(|v| !v.is_finite()) {
                return Err(CfdError::Config(format!(
                    "{}: inlet profile {name}[{j}] = {} is not finite",
                    path.display(),
                    c[j]
                )));
            }
        }
        Ok(())
    }
}

/// Appends one line of Fortran `F16.8` fields.
fn push_fixed_row(s: &mut String, row: &[f64]) {
    use std::fmt::Write as _;
    for v in row {
        // Writing to a String cannot fail.
        let _ = write!(s, "{v:16.8}");
    }
    s.push('\n');
}

/// Parses a whitespace-separated line of reals (Fortran `D` exponents accepted); `None` if a
/// token is not a number.
fn parse_numbers(line: &str) -> Option<Vec<f64>> {
    line.split_whitespace().map(parse_real).collect()
}

fn parse_real(token: &str) -> Option<f64> {
    token
        .parse::<f64>()
        .ok()
        .or_else(|| token.replace(['D', 'd'], "E").parse::<f64>().ok())
}

/// Parses exactly `expected` non-blank data lines of `N` finite reals each.
fn parse_rows<'a, const N: usize>(
    lines: impl Iterator<Item = (usize, &'a str)>,
    file: &str,
    expected: usize,
    columns: &str,
) -> CfdResult<Vec<[f64; N]>> {
    let mut rows = Vec::with_capacity(expected);
    for (index, line) in lines {
        let lineno = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        if rows.len() == expected {
            return Err(CfdError::Config(format!(
                "{file}:{lineno}: more than the {expected} data lines GRID_3D's NY asks for"
            )));
        }
        let mut row = [0.0; N];
        let mut tokens = line.split_whitespace();
        for (c, slot) in row.iter_mut().enumerate() {
            let token = tokens.next().ok_or_else(|| {
                CfdError::Config(format!(
                    "{file}:{lineno}: {c} values, expected {N} ({columns})"
                ))
            })?;
            let value = parse_real(token).ok_or_else(|| {
                CfdError::Config(format!(
                    "{file}:{lineno}: value {} `{token}` is not a number",
                    c + 1
                ))
            })?;
            if !value.is_finite() {
                return Err(CfdError::Config(format!(
                    "{file}:{lineno}: value {} `{token}` is not finite",
                    c + 1
                )));
            }
            *slot = value;
        }
        if let Some(extra) = tokens.next() {
            return Err(CfdError::Config(format!(
                "{file}:{lineno}: unexpected value `{extra}` after {N} values ({columns})"
            )));
        }
        rows.push(row);
    }
    if rows.len() != expected {
        return Err(CfdError::Config(format!(
            "{file}: {} data lines, GRID_3D's NY needs {expected}",
            rows.len()
        )));
    }
    Ok(rows)
}

fn read_text(path: &Path) -> CfdResult<String> {
    std::fs::read_to_string(path).map_err(|source| CfdError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The record structure of one binary file.
struct Layout<'a> {
    path: &'a Path,
    extent: Extent,
    names: &'a [&'a str],
    header: bool,
    /// Values per plane record, `nx·ny`.
    plane: usize,
    /// Payload bytes per plane record, `8·nx·ny`, as the `i32` the markers hold.
    plane_bytes: i32,
}

impl<'a> Layout<'a> {
    fn new(path: &'a Path, extent: Extent, names: &'a [&'a str], header: bool) -> CfdResult<Self> {
        let [nx, ny, nz] = extent.dims();
        if nx == 0 || ny == 0 || nz == 0 {
            return Err(CfdError::Config(format!(
                "{}: grid {nx}×{ny}×{nz} has an empty direction",
                path.display()
            )));
        }
        let plane = nx.checked_mul(ny);
        let plane_bytes = plane
            .and_then(|p| p.checked_mul(8))
            .and_then(|b| i32::try_from(b).ok());
        let (Some(plane), Some(plane_bytes)) = (plane, plane_bytes) else {
            return Err(CfdError::Config(format!(
                "{}: a {nx}×{ny} plane does not fit one record (its 32-bit length marker)",
                path.display()
            )));
        };
        Ok(Self {
            path,
            extent,
            names,
            header,
            plane,
            plane_bytes,
        })
    }

    fn grid(&self) -> String {
        let [nx, ny, nz] = self.extent.dims();
        format!("GRID_3D {nx} {ny} {nz}")
    }

    /// Bytes of the whole file.
    fn file_len(&self) -> u64 {
        let record = self.plane_bytes as u64 + 8;
        let header = if self.header {
            HEADER_PAYLOAD as u64 + 8
        } else {
            0
        };
        header + self.names.len() as u64 * self.extent.nz as u64 * record
    }

    fn check_arrays(&self, arrays: &[&[f64]]) -> CfdResult<()> {
        let n = self.extent.len_interior();
        for (m, a) in arrays.iter().enumerate() {
            let name = self.names.get(m).copied().unwrap_or("array");
            if a.len() != n {
                return Err(CfdError::Config(format!(
                    "{}: array {name} has {} values, {} needs {n}",
                    self.path.display(),
                    a.len(),
                    self.grid()
                )));
            }
            if let Some(p) = a.iter().position(|v| !v.is_finite()) {
                let (i, j, k) = self.point(p);
                return Err(CfdError::Config(format!(
                    "{}: array {name} at (i, j, k) = ({i}, {j}, {k}) is {}, not finite",
                    self.path.display(),
                    a[p]
                )));
            }
        }
        Ok(())
    }

    /// `(i, j, k)` of interior index `p`.
    fn point(&self, p: usize) -> (usize, usize, usize) {
        let [nx, ny, _] = self.extent.dims();
        (p % nx, (p / nx) % ny, p / (nx * ny))
    }

    fn write_array(&self, out: &mut impl Write, a: &[f64]) -> io::Result<()> {
        let marker = self.plane_bytes.to_le_bytes();
        let mut buf = Vec::with_capacity(self.plane_bytes as usize);
        for plane in a.chunks_exact(self.plane) {
            buf.clear();
            for v in plane {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            out.write_all(&marker)?;
            out.write_all(&buf)?;
            out.write_all(&marker)?;
        }
        Ok(())
    }
}

/// Sequential reader of a record file that checks markers and reports positions.
struct RecordReader<'a> {
    layout: &'a Layout<'a>,
    input: BufReader<File>,
    /// Bytes consumed so far.
    offset: u64,
    /// Length of the file on disk.
    len: u64,
    /// Records started so far (the current record's 1-based number).
    record: usize,
    buf: Vec<u8>,
}

impl<'a> RecordReader<'a> {
    fn open(path: &Path, layout: &'a Layout<'a>) -> CfdResult<Self> {
        let io_err = |source| CfdError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        Ok(Self {
            layout,
            input: BufReader::with_capacity(1 << 20, file),
            offset: 0,
            len,
            record: 0,
            buf: Vec::new(),
        })
    }

    fn path(&self) -> String {
        self.layout.path.display().to_string()
    }

    fn truncated(&self, what: &str, needed: usize) -> CfdError {
        CfdError::Config(format!(
            "{}: truncated in record {} ({what}): it needs bytes {}..{} but the file has {} \
             bytes; {} needs {} bytes",
            self.path(),
            self.record,
            self.offset,
            self.offset + needed as u64,
            self.len,
            self.layout.grid(),
            self.layout.file_len()
        ))
    }

    /// Reads exactly `n` bytes into `self.buf`.
    fn bytes(&mut self, n: usize, what: &str) -> CfdResult<()> {
        if self.offset + n as u64 > self.len {
            return Err(self.truncated(what, n));
        }
        self.buf.resize(n, 0);
        match self.input.read_exact(&mut self.buf) {
            Ok(()) => {
                self.offset += n as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(self.truncated(what, n)),
            Err(source) => Err(CfdError::Io {
                path: self.layout.path.to_path_buf(),
                source,
            }),
        }
    }

    /// Reads one record marker and checks it against `expected`.
    fn marker(&mut self, expected: i32, what: &str, which: &str) -> CfdResult<()> {
        let at = self.offset;
        self.bytes(4, what)?;
        let raw: [u8; 4] = self.buf[..4].try_into().expect("four bytes were read");
        let found = i32::from_le_bytes(raw);
        if found == expected {
            return Ok(());
        }
        let hint = if i32::from_be_bytes(raw) == expected {
            "; it matches when read big-endian, but these files are little-endian".to_string()
        } else if which == "leading" && expected != HEADER_PAYLOAD && found > 0 && found % 8 == 0 {
            format!(
                "; the file's records hold {} values per plane, {} gives nx·ny = {} \
                 (was the file written for another grid?)",
                found / 8,
                self.layout.grid(),
                self.layout.plane
            )
        } else {
            String::new()
        };
        Err(CfdError::Config(format!(
            "{}: record {} ({what}): {which} record marker at byte {at} is {found}, expected \
             {expected}{hint}",
            self.path(),
            self.record,
        )))
    }

    /// Reads the header record and returns `(step, time)`.
    fn header(&mut self) -> CfdResult<(u64, f64)> {
        self.record += 1;
        let what = "header: step and time";
        self.marker(HEADER_PAYLOAD, what, "leading")?;
        self.bytes(HEADER_PAYLOAD as usize, what)?;
        let step = i32::from_le_bytes(self.buf[0..4].try_into().expect("4 bytes"));
        let time = f64::from_le_bytes(self.buf[4..12].try_into().expect("8 bytes"));
        self.marker(HEADER_PAYLOAD, what, "trailing")?;
        let step = u64::try_from(step).map_err(|_| {
            CfdError::Config(format!(
                "{}: record 1 (header): step {step} is negative",
                self.path()
            ))
        })?;
        if !time.is_finite() {
            return Err(CfdError::Config(format!(
                "{}: record 1 (header): time {time} is not finite",
                self.path()
            )));
        }
        Ok((step, time))
    }

    /// Reads the `nz` plane records of one array.
    fn array(&mut self, name: &str) -> CfdResult<Vec<f64>> {
        let e = self.layout.extent;
        let plane = self.layout.plane;
        let bytes = self.layout.plane_bytes;
        let mut out = Vec::with_capacity(e.len_interior());
        for k in 0..e.nz {
            self.record += 1;
            let what = format!("array {name}, plane k = {k} of {}", e.nz);
            self.marker(bytes, &what, "leading")?;
            self.bytes(plane * 8, &what)?;
            for (p, chunk) in self.buf.chunks_exact(8).enumerate() {
                let v = f64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                if !v.is_finite() {
                    return Err(CfdError::Config(format!(
                        "{}: record {} ({what}): value at (i, j) = ({}, {}) is {v}, not finite",
                        self.path(),
                        self.record,
                        p % e.nx,
                        p / e.nx
                    )));
                }
                out.push(v);
            }
            self.marker(bytes, &what, "trailing")?;
        }
        Ok(out)
    }

    /// Checks that nothing follows the last record.
    fn finish(self) -> CfdResult<()> {
        if self.len > self.offset {
            return Err(CfdError::Config(format!(
                "{}: {} bytes follow the last record (the file has {} bytes, {} needs {}); \
                 was it written for another grid?",
                self.path(),
                self.len - self.offset,
                self.len,
                self.layout.grid(),
                self.layout.file_len()
            )));
        }
        Ok(())
    }
}

/// Distinguishes temporary files of concurrent writers within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes a file through `fill` into a temporary sibling, syncs it and renames it over
/// `path`; the temporary file is removed on failure.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> CfdResult<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CfdError::Config(format!("{}: not a file name to write", path.display())))?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp: PathBuf = path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()));
    let written = (|| -> io::Result<()> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    })()
    .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        CfdError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: CfdError) -> String {
        e.to_string()
    }

    /// A field whose every value is distinct and depends on the array, i, j and k.
    fn ramp(extent: Extent, array: usize) -> Vec<f64> {
        (0..extent.len_interior())
            .map(|p| array as f64 * 1000.0 + p as f64 * 0.125 + 1.0 / 3.0)
            .collect()
    }

    fn sample_grid(extent: Extent) -> Coordinates {
        let [x, y, z] = [0, 1, 2].map(|c| pad(extent, &ramp(extent, c)));
        let mut grid = Coordinates::new(extent, x, y, z).unwrap();
        grid.fill_ghosts([false, false, true]);
        grid
    }

    fn sample_flow(extent: Extent) -> FlowField {
        FlowField {
            extent,
            step: 4321,
            time: 12.375,
            density: ramp(extent, 1),
            u: ramp(extent, 2),
            v: ramp(extent, 3),
            w: ramp(extent, 4),
            temperature: ramp(extent, 5),
        }
    }

    fn truncate(path: &Path, len: u64) {
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(len).unwrap();
    }

    #[test]
    fn pad_and_unpad_are_inverse() {
        let e = Extent::new(3, 2, 2);
        let a = ramp(e, 0);
        let p = pad(e, &a);
        assert_eq!(
            p[e.index(GHOST + 2, GHOST + 1, GHOST + 1)],
            a[(2 + 1) * 3 + 2]
        );
        assert_eq!(p[e.index(0, 0, 0)], 0.0);
        assert_eq!(unpad(e, &p), a);
    }

    #[test]
    fn mesh_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MESH_FILE);
        let e = Extent::new(3, 2, 2);
        let grid = sample_grid(e);
        write_mesh(&path, &grid).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len, 3 * 2 * (6 * 8 + 8));
        let back = read_mesh(&path, e, [false, false, true]).unwrap();
        assert_eq!(back, grid);
        let [x, y, z] = read_mesh_interior(&path, e).unwrap();
        assert_eq!([x, y, z], [0, 1, 2].map(|c| ramp(e, c)));
        // Only the target remains in the directory: no temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn mesh_layout_of_a_2x2x1_grid_is_byte_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MESH_FILE);
        let e = Extent::new(2, 2, 1);
        let x = [0.0, 1.0, 0.0, 1.0];
        let y = [0.0, 0.0, 2.0, 2.0];
        let z = [0.5; 4];
        write_mesh_interior(&path, e, &x, &y, &z).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // Hand-built: three records "32, four doubles, 32", little-endian.
        let mut expected: Vec<u8> = Vec::new();
        let marker = [32u8, 0, 0, 0];
        let one = [0, 0, 0, 0, 0, 0, 0xf0, 0x3f];
        let two = [0, 0, 0, 0, 0, 0, 0x00, 0x40];
        let half = [0, 0, 0, 0, 0, 0, 0xe0, 0x3f];
        let zero = [0u8; 8];
        for values in [[zero, one, zero, one], [zero, zero, two, two], [half; 4]] {
            expected.extend_from_slice(&marker);
            for v in values {
                expected.extend_from_slice(&v);
            }
            expected.extend_from_slice(&marker);
        }
        assert_eq!(bytes.len(), 120);
        assert_eq!(bytes, expected);
        let [rx, ry, rz] = read_mesh_interior(&path, e).unwrap();
        assert_eq!((rx, ry, rz), (x.to_vec(), y.to_vec(), z.to_vec()));
    }

    #[test]
    fn flow_round_trip_and_header_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FLOW_FILE);
        let e = Extent::new(3, 2, 2);
        let flow = sample_flow(e);
        flow.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, 20 + 5 * 2 * (6 * 8 + 8));
        assert_eq!(bytes[0..4], 12i32.to_le_bytes());
        assert_eq!(bytes[4..8], 4321i32.to_le_bytes());
        assert_eq!(bytes[8..16], 12.375f64.to_le_bytes());
        assert_eq!(bytes[16..20], 12i32.to_le_bytes());
        assert_eq!(bytes[20..24], 48i32.to_le_bytes());
        assert_eq!(bytes[24..32], flow.density[0].to_le_bytes());
        // Temperature's last plane record ends the file.
        let n = bytes.len();
        assert_eq!(bytes[n - 12..n - 4], flow.temperature[11].to_le_bytes());
        assert_eq!(FlowField::read(&path, e).unwrap(), flow);
        // Overwriting an existing file works.
        let uniform = FlowField::uniform(e, 0, 0.0, [1.0, 1.0, 0.0, 0.0, 1.0]);
        uniform.write(&path).unwrap();
        assert_eq!(FlowField::read(&path, e).unwrap(), uniform);
    }

    #[test]
    fn truncated_files_name_the_file_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let e = Extent::new(3, 2, 2);
        let mesh = dir.path().join(MESH_FILE);
        write_mesh(&mesh, &sample_grid(e)).unwrap();
        // Records are 56 bytes; cut inside record 4 (y, k = 1).
        truncate(&mesh, 3 * 56 + 20);
        let m = message(read_mesh(&mesh, e, [false; 3]).unwrap_err());
        assert!(m.contains(MESH_FILE), "{m}");
        assert!(
            m.contains("truncated in record 4 (array y, plane k = 1 of 2)"),
            "{m}"
        );
        assert!(m.contains("GRID_3D 3 2 2 needs 336 bytes"), "{m}");

        let flow = dir.path().join(FLOW_FILE);
        sample_flow(e).write(&flow).unwrap();
        truncate(&flow, 10);
        let m = message(FlowField::read(&flow, e).unwrap_err());
        assert!(
            m.contains(FLOW_FILE) && m.contains("record 1 (header"),
            "{m}"
        );

        sample_flow(e).write(&flow).unwrap();
        let full = std::fs::metadata(&flow).unwrap().len();
        truncate(&flow, full - 2);
        let m = message(FlowField::read(&flow, e).unwrap_err());
        assert!(
            m.contains("record 11 (array temperature, plane k = 1 of 2)"),
            "{m}"
        );

        truncate(&flow, 0);
        assert!(FlowField::read(&flow, e).is_err());
    }

    #[test]
    fn grid_size_mismatches_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MESH_FILE);
        write_mesh(&path, &sample_grid(Extent::new(3, 2, 2))).unwrap();
        // Different plane size: the first marker disagrees.
        let m = message(read_mesh(&path, Extent::new(2, 2, 2), [false; 3]).unwrap_err());
        assert!(m.contains("record 1 (array x, plane k = 0 of 2)"), "{m}");
        assert!(m.contains("marker at byte 0 is 48, expected 32"), "{m}");
        assert!(m.contains("6 values per plane"), "{m}");
        // Same plane, more planes expected: truncated.
        let m = message(read_mesh(&path, Extent::new(3, 2, 3), [false; 3]).unwrap_err());
        assert!(m.contains("truncated"), "{m}");
        // Same plane, fewer planes expected: bytes left over.
        let m = message(read_mesh(&path, Extent::new(3, 2, 1), [false; 3]).unwrap_err());
        assert!(m.contains("168 bytes follow the last record"), "{m}");
        // Transposed plane (same nx·ny): the structure fits but a mesh read with the wrong
        // nx cannot be detected from the records alone; it reads without error.
        assert!(read_mesh_interior(&path, Extent::new(2, 3, 2)).is_ok());

        let flow = dir.path().join(FLOW_FILE);
        sample_flow(Extent::new(3, 2, 2)).write(&flow).unwrap();
        let m = message(FlowField::read(&flow, Extent::new(4, 2, 2)).unwrap_err());
        assert!(m.contains("record 2 (array density"), "{m}");
    }

    #[test]
    fn bad_markers_and_values_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let e = Extent::new(2, 2, 1);
        let path = dir.path().join(FLOW_FILE);
        sample_flow(e).write(&path).unwrap();
        let good = std::fs::read(&path).unwrap();

        let mut bytes = good.clone();
        bytes[0..4].copy_from_slice(&12i32.to_be_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let m = message(FlowField::read(&path, e).unwrap_err());
        assert!(m.contains("big-endian"), "{m}");

        // Trailing marker of the u record (record 3) damaged.
        let mut bytes = good.clone();
        let at = 20 + 40 + 4 + 32;
        bytes[at..at + 4].copy_from_slice(&31i32.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let m = message(FlowField::read(&path, e).unwrap_err());
        assert!(m.contains("record 3 (array u, plane k = 0 of 1)"), "{m}");
        assert!(m.contains("trailing record marker at byte 96 is 31"), "{m}");

        // A NaN in v at (i, j) = (1, 1).
        let mut bytes = good.clone();
        let at = 20 + 2 * 40 + 4 + 3 * 8;
        bytes[at..at + 8].copy_from_slice(&f64::NAN.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let m = message(FlowField::read(&path, e).unwrap_err());
        assert!(
            m.contains("record 4 (array v") && m.contains("(1, 1)"),
            "{m}"
        );

        // A negative step.
        let mut bytes = good;
        bytes[4..8].copy_from_slice(&(-1i32).to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let m = message(FlowField::read(&path, e).unwrap_err());
        assert!(m.contains("step -1 is negative"), "{m}");

        let missing = dir.path().join("missing.dat");
        match FlowField::read(&missing, e) {
            Err(CfdError::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }

    #[test]
    fn writers_reject_inconsistent_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FLOW_FILE);
        let e = Extent::new(2, 2, 1);
        let mut flow = sample_flow(e);
        flow.u.pop();
        let m = message(flow.write(&path).unwrap_err());
        assert!(m.contains("array u has 3 values"), "{m}");
        let mut flow = sample_flow(e);
        flow.step = u64::MAX;
        assert!(flow.write(&path).is_err());
        let mut flow = sample_flow(e);
        flow.w[2] = f64::INFINITY;
        let m = message(flow.write(&path).unwrap_err());
        assert!(m.contains("array w at (i, j, k) = (0, 1, 0)"), "{m}");
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(write_mesh_interior(&path, Extent::new(0, 1, 1), &[], &[], &[]).is_err());
    }

    #[test]
    fn plane_arrays_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("OCFD3d-Jacobi.dat");
        let e = Extent::new(2, 3, 2);
        let arrays: Vec<Vec<f64>> = (0..13).map(|m| ramp(e, m)).collect();
        let refs: Vec<&[f64]> = arrays.iter().map(Vec::as_slice).collect();
        write_plane_arrays(&path, e, &refs).unwrap();
        let names = ["a"; 13];
        assert_eq!(read_plane_arrays(&path, e, &names).unwrap(), arrays);
    }

    /// The first and last lines of the benchmark's `flow1d-inlet.dat` layout (header, then
    /// `5F16.8`), shortened to three points.
    const INLET: &str = " variables=y,d,u,v,T
      0.00000000      0.35639366      0.00000000      0.00000000      2.84000000
      0.01000000      0.35679395      0.00673511      0.00001281      2.83681376
     35.00000000      1.01313558      0.99810238     -0.00382550      1.00560058
";

    #[test]
    fn inlet_profile_reads_the_official_layout_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(INLET_PROFILE_FILE);
        std::fs::write(&path, INLET).unwrap();
        let p = InletProfile::read(&path, 3).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p.y, [0.0, 0.01, 35.0]);
        assert_eq!(p.density[1], 0.35679395);
        assert_eq!(p.v[2], -0.0038255);
        assert_eq!(p.temperature[0], 2.84);
        // The writer reproduces the official text exactly.
        assert_eq!(p.to_text(), INLET);
        let out = dir.path().join("copy.dat");
        p.write(&out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), INLET);
        assert_eq!(InletProfile::read(&out, 3).unwrap(), p);

        // The four-column companion file.
        let cols = dir.path().join(INLET_COLUMNS_FILE);
        p.write_columns(&cols).unwrap();
        let text = std::fs::read_to_string(&cols).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "      0.35639366      0.00000000      0.00000000      2.84000000"
        );
        assert_eq!(InletProfile::read_columns(&cols, &p.y).unwrap(), p);

        // Fortran D exponents and free spacing are accepted.
        let q = InletProfile::parse("h\n0 1D0 2 0 3.5d-1\n\n", "t", 1).unwrap();
        assert_eq!((q.density[0], q.temperature[0]), (1.0, 0.35));
        assert_eq!(InletProfile::free_stream(vec![0.0, 1.0]).u, [1.0, 1.0]);
    }

    #[test]
    fn malformed_inlet_profiles_are_reported() {
        let f = "flow1d-inlet.dat";
        let m = message(InletProfile::parse(INLET, f, 4).unwrap_err());
        assert!(m.contains("3 data lines, GRID_3D's NY needs 4"), "{m}");
        let m = message(InletProfile::parse(INLET, f, 2).unwrap_err());
        assert!(m.contains("flow1d-inlet.dat:4: more than the 2"), "{m}");
        let short = INLET.replace("2.83681376", "");
        let m = message(InletProfile::parse(&short, f, 3).unwrap_err());
        assert!(
            m.contains("flow1d-inlet.dat:3: 4 values, expected 5"),
            "{m}"
        );
        let bad = INLET.replace("0.00673511", "0.0067x511");
        let m = message(InletProfile::parse(&bad, f, 3).unwrap_err());
        assert!(
            m.contains(":3: value 3 `0.0067x511` is not a number"),
            "{m}"
        );
        let nan = INLET.replace("0.00673511", "NaN");
        assert!(InletProfile::parse(&nan, f, 3).is_err());
        let extra = INLET.replace("2.84000000", "2.84000000 7");
        let m = message(InletProfile::parse(&extra, f, 3).unwrap_err());
        assert!(m.contains(":2: unexpected value `7`"), "{m}");
        let headless: String = INLET.lines().skip(1).map(|l| format!("{l}\n")).collect();
        let m = message(InletProfile::parse(&headless, f, 3).unwrap_err());
        assert!(m.contains(":1: the first line holds numbers"), "{m}");
        assert!(InletProfile::parse("", f, 3).is_err());
        let m = message(
            InletProfile::parse_columns("1 2 3 4\n", "flow-inlet.dat", &[0.0, 1.0]).unwrap_err(),
        );
        assert!(m.contains("flow-inlet.dat: 1 data lines"), "{m}");
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join(f);
        assert!(matches!(
            InletProfile::read(&missing, 3),
            Err(CfdError::Io { .. })
        ));
    }

    #[test]
    fn file_names() {
        assert_eq!(restart_file_name(1000), "OCFD00001000.dat");
        assert_eq!(average_file_name(7), "OCFD00000007.average");
    }
}
