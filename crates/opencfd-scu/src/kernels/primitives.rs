//! Primitive variables of every point, computed once per stage and shared by the
//! kernels (the official code likewise keeps `d, u, v, w, T` and the sound speed).
//!
//! A `[7, z, y, x]` field: density, the three velocity components, pressure, sound
//! speed and temperature ([`DENSITY`] … [`TEMPERATURE`]), ghosts included.

use candle_core::{CpuStorage, InplaceOp2, Layout};
use rayon::prelude::*;

use super::storage::{DisjointWriter, FieldShape, values, values_mut};
use crate::GHOST;
use crate::gas::Gas;

/// Number of primitive components.
pub const PRIMITIVE_COMPONENTS: usize = 7;
/// Density.
pub const DENSITY: usize = 0;
/// First velocity component (`u`; `v` and `w` follow).
pub const VELOCITY: usize = 1;
/// Pressure.
pub const PRESSURE: usize = 4;
/// Speed of sound.
pub const SOUND_SPEED: usize = 5;
/// Temperature.
pub const TEMPERATURE: usize = 6;

/// Writes the primitive variables of every point (`primitives.inplace_op2(&state, &op)`),
/// or of the interior or the ghosts only (see [`Primitives::points`]).
#[derive(Debug, Clone, Copy)]
pub struct Primitives {
    /// The gas.
    pub gas: Gas,
    /// Which points.
    pub points: PointSet,
}

impl Primitives {
    /// Every point of the padded block.
    pub fn everywhere(gas: Gas) -> Self {
        Self {
            gas,
            points: PointSet::All,
        }
    }
}

/// The points of a padded block an op writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointSet {
    /// All of them.
    All,
    /// The interior (before the halos arrive, with `STREAM = 1`).
    Interior,
    /// The ghost layers (after they arrive).
    Ghosts,
}

impl InplaceOp2 for Primitives {
    fn name(&self) -> &'static str {
        "opencfd-primitives"
    }

    fn cpu_fwd(
        &self,
        primitives: &mut CpuStorage,
        primitives_layout: &Layout,
        q_storage: &CpuStorage,
        q_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = FieldShape::of(q_layout)?;
        let out_shape = FieldShape::of(primitives_layout)?;
        if shape.components != 5
            || out_shape.components != PRIMITIVE_COMPONENTS
            || out_shape.padded != shape.padded
        {
            candle_core::bail!("primitives: mismatched fields {shape:?}, {out_shape:?}");
        }
        let q = values(q_storage, q_layout)?;
        let plane = shape.plane_len();
        let out = DisjointWriter::new(values_mut(primitives, primitives_layout)?);
        let gamma = self.gas.gamma;
        let temperature_scale = gamma * self.gas.mach * self.gas.mach;
        let [px, py, pz] = shape.padded;
        let inside = |n: usize, p: usize| p >= GHOST && p < n - GHOST;
        let points = self.points;
        (0..pz).into_par_iter().for_each(|k| {
            for j in 0..py {
                for i in 0..px {
                    let interior = inside(pz, k) && inside(py, j) && inside(px, i);
                    match points {
                        PointSet::Interior if !interior => continue,
                        PointSet::Ghosts if interior => continue,
                        _ => {}
                    }
                    let at = (k * py + j) * px + i;
                    let density = q[at];
                    let inverse = 1.0 / density;
                    let (u, v, w) = (
                        q[plane + at] * inverse,
                        q[2 * plane + at] * inverse,
                        q[3 * plane + at] * inverse,
                    );
                    let pressure = (gamma - 1.0)
                        * (q[4 * plane + at] - 0.5 * density * (u * u + v * v + w * w));
                    let values = [
                        density,
                        u,
                        v,
                        w,
                        pressure,
                        (gamma * pressure * inverse).sqrt(),
                        temperature_scale * pressure * inverse,
                    ];
                    for (c, value) in values.into_iter().enumerate() {
                        // SAFETY: one worker per k-plane.
                        unsafe { out.set(c * plane + at, value) };
                    }
                }
            }
        });
        Ok(())
    }
}
