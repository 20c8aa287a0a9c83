//! The hybrid scheme (`SCHEME_HYBRIDAUTO` with `HY_STYLE = 2`): Jameson's pressure
//! sensor picks, face by face, UP7 in smooth flow, WENO7 near weak gradients and
//! WENO5 at shocks, with the two thresholds of `HY_DP_INTV`.
//!
//! As in the official code the sensor of a point is the sum over the directions of
//! `|p₋ − 2p + p₊| / (p₋ + 2p + p₊)`, a face takes the value of its lower point, and
//! the class is `1 + [s > T₀] + [s > T₁]`, one choice for both split fluxes and all
//! five equations. The sensor is computed on the interior ([`JamesonSensor`]), its
//! halos exchanged like the flow's, and stored in the geometry field's sensor slot
//! ([`StoreSensor`]) where the inviscid kernel reads it.

use candle_core::{CpuStorage, InplaceOp2, Layout};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::GHOST;
use crate::geometry::{GEOMETRY_COMPONENTS, SENSOR};
use crate::kernels::primitives::{PRESSURE, PRIMITIVE_COMPONENTS};
use crate::kernels::storage::{DisjointWriter, FieldShape, values, values_mut};
use crate::scheme::Reconstruction;

/// The hybrid scheme's thresholds `HY_DP_INTV`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HybridSensor {
    /// At or below `thresholds[0]` UP7 is used, at or below `thresholds[1]` WENO7, else WENO5.
    pub thresholds: [f64; 2],
}

impl HybridSensor {
    /// The scheme of a face whose sensor value is `sensor`.
    #[inline]
    pub fn scheme(&self, sensor: f64) -> Reconstruction {
        if sensor > self.thresholds[1] {
            Reconstruction::Weno5
        } else if sensor > self.thresholds[0] {
            Reconstruction::Weno7
        } else {
            Reconstruction::Up7
        }
    }
}

/// Writes Jameson's sensor of every interior point (`sensor.inplace_op2(&primitives, &op)`,
/// `sensor` a `[1, z, y, x]` field, primitives as in [`crate::kernels::primitives`]).
#[derive(Debug, Clone, Copy)]
pub struct JamesonSensor;

/// Copies a `[1, z, y, x]` sensor field, ghosts included, into the geometry's sensor
/// slot (`geometry.inplace_op2(&sensor, &op)`).
#[derive(Debug, Clone, Copy)]
pub struct StoreSensor;

impl InplaceOp2 for JamesonSensor {
    fn name(&self) -> &'static str {
        "opencfd-jameson-sensor"
    }

    fn cpu_fwd(
        &self,
        sensor: &mut CpuStorage,
        sensor_layout: &Layout,
        primitives_storage: &CpuStorage,
        primitives_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = FieldShape::of(primitives_layout)?;
        let sensor_shape = FieldShape::of(sensor_layout)?;
        if shape.components != PRIMITIVE_COMPONENTS
            || sensor_shape.components != 1
            || sensor_shape.padded != shape.padded
        {
            candle_core::bail!("jameson sensor: mismatched fields {shape:?}, {sensor_shape:?}");
        }
        let plane = shape.plane_len();
        let pressures = &values(primitives_storage, primitives_layout)?
            [PRESSURE * plane..(PRESSURE + 1) * plane];
        let pressure = |at: usize| pressures[at];
        let [nx, ny, nz] = shape.interior();
        let active: Vec<usize> = (0..3)
            .filter(|&d| shape.interior()[d] > 1)
            .map(|d| shape.stride(d))
            .collect();
        let out = DisjointWriter::new(values_mut(sensor, sensor_layout)?);
        (GHOST..GHOST + nz).into_par_iter().for_each(|k| {
            for j in GHOST..GHOST + ny {
                for i in GHOST..GHOST + nx {
                    let at = shape.at(i, j, k);
                    let centre = pressure(at);
                    let value: f64 = active
                        .iter()
                        .map(|&s| {
                            let (left, right) = (pressure(at - s), pressure(at + s));
                            (left - 2.0 * centre + right).abs() / (left + 2.0 * centre + right)
                        })
                        .sum();
                    // SAFETY: one worker per k-plane.
                    unsafe { out.set(at, value) };
                }
            }
        });
        Ok(())
    }
}

impl InplaceOp2 for StoreSensor {
    fn name(&self) -> &'static str {
        "opencfd-store-sensor"
    }

    fn cpu_fwd(
        &self,
        geometry: &mut CpuStorage,
        geometry_layout: &Layout,
        sensor_storage: &CpuStorage,
        sensor_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = FieldShape::of(geometry_layout)?;
        let sensor_shape = FieldShape::of(sensor_layout)?;
        if shape.components != GEOMETRY_COMPONENTS
            || sensor_shape.components != 1
            || sensor_shape.padded != shape.padded
        {
            candle_core::bail!("store sensor: mismatched fields {shape:?}, {sensor_shape:?}");
        }
        let plane = shape.plane_len();
        let sensor = values(sensor_storage, sensor_layout)?;
        values_mut(geometry, geometry_layout)?[SENSOR * plane..(SENSOR + 1) * plane]
            .copy_from_slice(&sensor[..plane]);
        Ok(())
    }
}
