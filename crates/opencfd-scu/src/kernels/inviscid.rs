//! The fused inviscid kernel: split, reconstruct and difference along one direction.
//!
//! One pass per direction reads the primitive variables and the geometry once,
//! splits the fluxes of a batch of grid lines into a cache-sized buffer, reconstructs
//! the face fluxes `h(i+½) = R(F⁺; i−3..i+4) + R(F⁻ mirrored; i+4..i−3)` and adds
//! `−J (h(i+½) − h(i−½))` to the right-hand side. Lines along `y` and `z` are batched
//! over `x` so that the inner loops run over contiguous memory.

use candle_core::{CpuStorage, InplaceOp3, Layout};
use rayon::prelude::*;

use super::primitives::{DENSITY, PRIMITIVE_COMPONENTS, SOUND_SPEED, VELOCITY};
use super::storage::{DisjointWriter, FieldShape, values, values_mut};
use crate::GHOST;
use crate::geometry::{GEOMETRY_COMPONENTS, JACOBIAN, SENSOR};
use crate::hybrid::HybridSensor;
use crate::scheme::{Reconstruction, mirror};
use std::ops::Range;

use super::region::Region;
use crate::split::steger_warming_primitive;

/// How the reconstruction is chosen at each face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InviscidScheme {
    /// One scheme everywhere.
    Fixed(Reconstruction),
    /// The official hybrid scheme: a shock sensor picks the scheme per face.
    Hybrid(HybridSensor),
}

/// Adds the inviscid flux difference along `direction` to a right-hand side.
///
/// Applied as `rhs.inplace_op3(&primitives, &geometry, &op)`; the right-hand side is
/// a `[5, z, y, x]` field, the primitives a `[7, z, y, x]` one (see
/// [`super::primitives`]), the geometry a
/// `[11, z, y, x]` field (see [`crate::geometry`]). Only interior points are written.
#[derive(Debug, Clone, Copy)]
pub struct InviscidFlux {
    /// 0 = x, 1 = y, 2 = z.
    pub direction: usize,
    /// The reconstruction.
    pub scheme: InviscidScheme,
    /// Ratio of specific heats.
    pub gamma: f64,
    /// The Steger–Warming entropy fix `EPSL_SW`.
    pub entropy_fix: f64,
    /// The computational spacing `h` of the direction (see [`crate::metrics::Extent::spacing`]).
    pub spacing: f64,
    /// `[low, high]`: the block's end is a domain boundary with the official one-sided
    /// closure (`DIF_BOUND`), so faces near it use lower-order stencils that read no ghost.
    pub closures: [bool; 2],
    /// `[low, high]`: the official non-reflecting treatment (`NON_REFLETION`) of a domain
    /// boundary: the boundary point drops the flux part travelling into the domain (`F⁺`
    /// at the low end, `F⁻` at the high end).
    pub non_reflecting: [bool; 2],
    /// The points written (all, or one pass of the interior/halo overlap).
    pub region: Region,
}

/// One batch of lines along the sweep direction: `lanes` lines whose first points are
/// `base`, `base + lane_stride`, ..., each `len` points long with stride `stride`.
#[derive(Debug, Clone, Copy)]
struct Batch {
    base: usize,
    lanes: usize,
    lane_stride: usize,
    stride: usize,
    len: usize,
    segment: Segment,
}

/// The points of its lines a batch writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    /// The whole interior.
    Full,
    /// The inner range ([`Region::inner_range`]).
    Middle,
    /// The interior outside the inner range.
    Ends,
}

impl Segment {
    /// Padded index ranges of the written points on a line of padded length `len`.
    fn writes(self, len: usize) -> [Range<usize>; 2] {
        let interior = GHOST..len - GHOST;
        let inner = Region::inner_range(len);
        match self {
            Segment::Full => [interior, 0..0],
            Segment::Middle => [inner, 0..0],
            Segment::Ends if inner.is_empty() => [interior, 0..0],
            Segment::Ends => [GHOST..inner.start, inner.end..len - GHOST],
        }
    }
}

impl Batch {
    #[inline]
    fn at(&self, p: usize, lane: usize) -> usize {
        self.base + p * self.stride + lane * self.lane_stride
    }
}

/// The schemes of a batch's faces.
enum FaceSchemes {
    /// The same scheme at every face.
    Uniform(Reconstruction),
    /// One scheme per face, in the scratch buffer.
    PerFace,
}

/// Per-worker scratch buffers, laid out `[component][point][lane]` so that the
/// reconstruction's inner loop runs over contiguous lanes.
#[derive(Default)]
struct Scratch {
    plus: Vec<f64>,
    minus: Vec<f64>,
    faces: Vec<f64>,
    schemes: Vec<Reconstruction>,
}

/// Face values `faces[c][p][lane]` for faces `first..=last` from the split fluxes,
/// with one reconstruction for the whole batch. Generic so that each scheme's formula
/// is inlined into its own loop.
#[inline(always)]
fn uniform_faces(
    reconstruct: impl Fn(&[f64; 8]) -> f64,
    scratch: &mut Scratch,
    len: usize,
    lanes: usize,
    first: usize,
    last: usize,
) {
    for c in 0..5 {
        let plus = &scratch.plus[c * len * lanes..(c + 1) * len * lanes];
        let minus = &scratch.minus[c * len * lanes..(c + 1) * len * lanes];
        let faces = &mut scratch.faces[c * len * lanes..(c + 1) * len * lanes];
        for p in first..=last {
            let up: [&[f64]; 8] =
                std::array::from_fn(|m| &plus[(p + m - 3) * lanes..(p + m - 2) * lanes]);
            let down: [&[f64]; 8] =
                std::array::from_fn(|m| &minus[(p + 4 - m) * lanes..(p + 5 - m) * lanes]);
            let out = &mut faces[p * lanes..(p + 1) * lanes];
            for (lane, value) in out.iter_mut().enumerate() {
                let upwind: [f64; 8] = std::array::from_fn(|m| up[m][lane]);
                let downwind: [f64; 8] = std::array::from_fn(|m| down[m][lane]);
                *value = reconstruct(&upwind) + reconstruct(&downwind);
            }
        }
    }
}

impl InviscidFlux {
    /// The batches of lines of `region`: lines along the sweep direction, batched over
    /// the lane direction, one batch per plane of the third direction; with the overlap,
    /// split by lanes so that no batch computes points it does not write.
    fn batches(&self, shape: &FieldShape) -> Vec<Batch> {
        let d = self.direction;
        // (lane direction, batch direction): rows for x lines, x for y and z lines.
        let (lane_dim, batch_dim) = match d {
            0 => (1, 2),
            1 => (0, 2),
            _ => (0, 1),
        };
        let padded = shape.padded;
        let interior = |dim: usize| GHOST..padded[dim] - GHOST;
        let inner = |dim: usize| Region::inner_range(padded[dim]);
        let batch = |plane: usize, lanes: Range<usize>, segment: Segment| {
            let mut first = [GHOST; 3];
            first[d] = 0;
            first[batch_dim] = plane;
            first[lane_dim] = lanes.start;
            Batch {
                base: shape.at(first[0], first[1], first[2]),
                lanes: lanes.len(),
                lane_stride: shape.stride(lane_dim),
                stride: shape.stride(d),
                len: padded[d],
                segment,
            }
        };
        let mut out = Vec::new();
        for plane in interior(batch_dim) {
            match self.region {
                Region::All => out.push(batch(plane, interior(lane_dim), Segment::Full)),
                Region::Inner => {
                    if inner(batch_dim).contains(&plane) && !inner(lane_dim).is_empty() {
                        out.push(batch(plane, inner(lane_dim), Segment::Middle));
                    }
                }
                Region::Outer => {
                    let lanes = inner(lane_dim);
                    if !inner(batch_dim).contains(&plane) || lanes.is_empty() {
                        out.push(batch(plane, interior(lane_dim), Segment::Full));
                    } else {
                        out.push(batch(plane, GHOST..lanes.start, Segment::Full));
                        out.push(batch(
                            plane,
                            lanes.end..padded[lane_dim] - GHOST,
                            Segment::Full,
                        ));
                        out.push(batch(plane, lanes, Segment::Ends));
                    }
                }
            }
        }
        out.retain(|b| b.lanes > 0);
        out
    }

    fn sweep(
        &self,
        batch: Batch,
        shape: &FieldShape,
        primitives: &[f64],
        geometry: &[f64],
        rhs: DisjointWriter,
        scratch: &mut Scratch,
    ) {
        let Batch { lanes, len, .. } = batch;
        let plane = shape.plane_len();
        let size = 5 * len * lanes;
        scratch.plus.resize(size, 0.0);
        scratch.minus.resize(size, 0.0);
        scratch.faces.resize(size, 0.0);
        let metric_offset = 3 * self.direction;
        let writes = batch.segment.writes(len);
        let writes = writes.iter().filter(|w| !w.is_empty());
        // A written point reads the split fluxes of points up to GHOST away.
        let split_points = writes.clone().flat_map(|w| w.start - GHOST..w.end + GHOST);
        for p in split_points {
            for lane in 0..lanes {
                let at = batch.at(p, lane);
                let density = primitives[DENSITY * plane + at];
                let velocity: [f64; 3] =
                    std::array::from_fn(|m| primitives[(VELOCITY + m) * plane + at]);
                let sound_speed = primitives[SOUND_SPEED * plane + at];
                let metric = [
                    geometry[metric_offset * plane + at],
                    geometry[(metric_offset + 1) * plane + at],
                    geometry[(metric_offset + 2) * plane + at],
                ];
                let (plus, minus) = steger_warming_primitive(
                    density,
                    velocity,
                    sound_speed,
                    &metric,
                    self.gamma,
                    self.entropy_fix,
                );
                for c in 0..5 {
                    let slot = (c * len + p) * lanes + lane;
                    scratch.plus[slot] = plus[c];
                    scratch.minus[slot] = minus[c];
                }
            }
        }

        // The faces p + ½ around the written points; face p + ½ reads points p-3 ..= p+4.
        let face_ranges: Vec<(usize, usize)> =
            writes.clone().map(|w| (w.start - 1, w.end - 1)).collect();
        let schemes = self.face_schemes(batch, shape, geometry, scratch);
        for &(first, last) in &face_ranges {
            match schemes {
                FaceSchemes::Uniform(scheme) => match scheme {
                    Reconstruction::Up7 => uniform_faces(
                        |s| Reconstruction::Up7.reconstruct(s),
                        scratch,
                        len,
                        lanes,
                        first,
                        last,
                    ),
                    Reconstruction::Weno5 => uniform_faces(
                        |s| Reconstruction::Weno5.reconstruct(s),
                        scratch,
                        len,
                        lanes,
                        first,
                        last,
                    ),
                    Reconstruction::Weno7 => uniform_faces(
                        |s| Reconstruction::Weno7.reconstruct(s),
                        scratch,
                        len,
                        lanes,
                        first,
                        last,
                    ),
                    other => {
                        uniform_faces(|s| other.reconstruct(s), scratch, len, lanes, first, last)
                    }
                },
                FaceSchemes::PerFace => {
                    for c in 0..5 {
                        for p in first..=last {
                            for lane in 0..lanes {
                                let scheme = scratch.schemes[p * lanes + lane];
                                let upwind: [f64; 8] = std::array::from_fn(|m| {
                                    scratch.plus[(c * len + p + m - 3) * lanes + lane]
                                });
                                let downwind: [f64; 8] = std::array::from_fn(|m| {
                                    scratch.minus[(c * len + p + 4 - m) * lanes + lane]
                                });
                                scratch.faces[(c * len + p) * lanes + lane] =
                                    scheme.reconstruct(&upwind) + scheme.reconstruct(&downwind);
                            }
                        }
                    }
                }
            }
        }

        if self.closures.contains(&true) {
            self.close_boundary_faces(batch, scratch, &face_ranges);
        }

        for p in writes.clone().flat_map(|w| w.clone()) {
            for lane in 0..lanes {
                let at = batch.at(p, lane);
                let scale = -geometry[JACOBIAN * plane + at] / self.spacing;
                for c in 0..5 {
                    let difference = scratch.faces[(c * len + p) * lanes + lane]
                        - scratch.faces[(c * len + p - 1) * lanes + lane];
                    // SAFETY: each batch owns its lines' interior points.
                    unsafe { rhs.add(c * plane + at, scale * difference) };
                }
            }
        }

        // Non-reflecting ends: the boundary point gives back the part of its difference
        // carried by the flux travelling into the domain.
        for (end, p, incoming_is_plus) in [(0, GHOST, true), (1, len - GHOST - 1, false)] {
            if !self.non_reflecting[end] || !writes.clone().any(|w| w.contains(&p)) {
                continue;
            }
            for lane in 0..lanes {
                let at = batch.at(p, lane);
                let scale = -geometry[JACOBIAN * plane + at] / self.spacing;
                for c in 0..5 {
                    let part = |face| {
                        let (up, down) = self.face_parts(batch, scratch, c, face, lane);
                        if incoming_is_plus { up } else { down }
                    };
                    let incoming = part(p) - part(p - 1);
                    // SAFETY: each batch owns its lines' interior points.
                    unsafe { rhs.add(c * plane + at, -scale * incoming) };
                }
            }
        }
    }

    /// The reconstruction at face `p + ½` of a line, at padded index `p`.
    fn scheme_at(&self, scratch: &Scratch, lanes: usize, p: usize, lane: usize) -> Reconstruction {
        match self.scheme {
            InviscidScheme::Fixed(scheme) => scheme,
            InviscidScheme::Hybrid(_) => scratch.schemes[p * lanes + lane],
        }
    }

    /// The `F⁺` and `F⁻` parts of face `p + ½` of component `c`, with the `DIF_BOUND`
    /// closures where they apply.
    fn face_parts(
        &self,
        batch: Batch,
        scratch: &Scratch,
        c: usize,
        p: usize,
        lane: usize,
    ) -> (f64, f64) {
        let Batch { lanes, len, .. } = batch;
        let plus: [f64; 8] =
            std::array::from_fn(|m| scratch.plus[(c * len + p + m - 3) * lanes + lane]);
        let minus: [f64; 8] =
            std::array::from_fn(|m| scratch.minus[(c * len + p + m - 3) * lanes + lane]);
        let scheme = self.scheme_at(scratch, lanes, p, lane);
        // The hybrid kernels close with the 8-point extents.
        let extents = match self.scheme {
            InviscidScheme::Fixed(scheme) => scheme,
            InviscidScheme::Hybrid(_) => Reconstruction::Up7,
        };
        let [left, right] = self.closures;
        let (face, n) = (p as i64 - GHOST as i64, (len - 2 * GHOST) as i64);
        let up = extents
            .dif_bound_plus(&plus, face, n, left, right)
            .unwrap_or_else(|| scheme.reconstruct(&plus));
        let down = extents
            .dif_bound_minus(&minus, face, n, left, right)
            .unwrap_or_else(|| scheme.reconstruct(&mirror(&minus)));
        (up, down)
    }

    /// Recomputes the faces near closed ends (the first 6 and the last 7 of a line).
    fn close_boundary_faces(
        &self,
        batch: Batch,
        scratch: &mut Scratch,
        computed: &[(usize, usize)],
    ) {
        let Batch { lanes, len, .. } = batch;
        let (first, last) = (GHOST - 1, len - GHOST - 1);
        let near_low = first..=(first + 5).min(last);
        let near_high = last.saturating_sub(6).max(first)..=last;
        let mut faces: Vec<usize> = Vec::new();
        if self.closures[0] {
            faces.extend(near_low);
        }
        if self.closures[1] {
            faces.extend(near_high);
        }
        faces.sort_unstable();
        faces.dedup();
        // Only the faces this batch computed (with the overlap, a pass computes a part).
        faces.retain(|p| {
            computed
                .iter()
                .any(|&(first, last)| (first..=last).contains(p))
        });
        for c in 0..5 {
            for &p in &faces {
                for lane in 0..lanes {
                    let (up, down) = self.face_parts(batch, scratch, c, p, lane);
                    scratch.faces[(c * len + p) * lanes + lane] = up + down;
                }
            }
        }
    }

    /// The scheme of every face of a batch: fixed, or from the sensor of the face's
    /// lower point (the official hybrid rule).
    fn face_schemes(
        &self,
        batch: Batch,
        shape: &FieldShape,
        geometry: &[f64],
        scratch: &mut Scratch,
    ) -> FaceSchemes {
        match self.scheme {
            InviscidScheme::Fixed(scheme) => FaceSchemes::Uniform(scheme),
            InviscidScheme::Hybrid(sensor) => {
                let sensors = &geometry[SENSOR * shape.plane_len()..];
                scratch.schemes.clear();
                for p in 0..batch.len {
                    for lane in 0..batch.lanes {
                        scratch
                            .schemes
                            .push(sensor.scheme(sensors[batch.at(p, lane)]));
                    }
                }
                FaceSchemes::PerFace
            }
        }
    }
}

impl InplaceOp3 for InviscidFlux {
    fn name(&self) -> &'static str {
        "opencfd-inviscid-flux"
    }

    fn cpu_fwd(
        &self,
        rhs: &mut CpuStorage,
        rhs_layout: &Layout,
        primitives_storage: &CpuStorage,
        primitives_layout: &Layout,
        geometry_storage: &CpuStorage,
        geometry_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = FieldShape::of(primitives_layout)?;
        let geometry_shape = FieldShape::of(geometry_layout)?;
        let rhs_shape = FieldShape::of(rhs_layout)?;
        if shape.components != PRIMITIVE_COMPONENTS
            || rhs_shape.components != 5
            || rhs_shape.padded != shape.padded
            || geometry_shape.padded != shape.padded
            || geometry_shape.components != GEOMETRY_COMPONENTS
        {
            candle_core::bail!(
                "inviscid flux: mismatched fields {shape:?}, {rhs_shape:?}, {geometry_shape:?}"
            );
        }
        if self.direction > 2 {
            candle_core::bail!(
                "inviscid flux: direction {} is not 0, 1 or 2",
                self.direction
            );
        }
        let primitives = values(primitives_storage, primitives_layout)?;
        let geometry = values(geometry_storage, geometry_layout)?;
        let rhs = DisjointWriter::new(values_mut(rhs, rhs_layout)?);
        self.batches(&shape)
            .into_par_iter()
            .for_each_init(Scratch::default, |scratch, batch| {
                self.sweep(batch, &shape, primitives, geometry, rhs, scratch)
            });
        Ok(())
    }
}
