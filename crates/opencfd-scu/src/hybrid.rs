//! The hybrid scheme (`SCHEME_HYBRIDAUTO`): a shock sensor picks the scheme face by
//! face from the two thresholds of `HY_DP_INTV`, class `1 + [s > T₀] + [s > T₁]`, one
//! choice for both split fluxes and all five equations. As in the official code the
//! sensor is computed once per time step, before the first Runge–Kutta stage.
//!
//! - `HY_STYLE = 2` ([`JamesonSensor`]): the sum over the directions of
//!   `|p₋ − 2p + p₊| / (p₋ + 2p + p₊)`; a face takes its lower point's value; UP7 in
//!   smooth flow, WENO7 near weak gradients, WENO5 at shocks.
//! - `HY_STYLE = 1` ([`PressureGradient`] and the ops after it): `|∇p|` from the
//!   viscous central difference, divided by its mean over the whole grid
//!   ([`NormalizeGradient`], which also forces the strongest class where the
//!   temperature is negative), optionally smoothed ([`AmplifyAbove`],
//!   [`SmoothIndicator`]) and overridden in index boxes (`HY_ZONE`, [`PatchZone`]); a
//!   face takes the mean of its two points; OMP6_HR, WENO7, NND2.
//!
//! The sensor is computed on the interior, its halos exchanged like the flow's, and
//! stored in the geometry field's sensor slot ([`StoreSensor`]) where the inviscid
//! kernel reads it.

use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::GHOST;
use crate::control::HybridZone;
use crate::geometry::{GEOMETRY_COMPONENTS, SENSOR};
use crate::kernels::primitives::TEMPERATURE;
use crate::kernels::primitives::{PRESSURE, PRIMITIVE_COMPONENTS};
use crate::kernels::storage::{DisjointWriter, FieldShape, values, values_mut};
use crate::kernels::viscous::{LinePosition, derivative};
use crate::scheme::{CentralDifference, HybridStyle, Reconstruction, hybrid_class};

/// The hybrid scheme's sensor and thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HybridSensor {
    /// `HY_DP_INTV`: at or below `thresholds[0]` the style's first scheme is used, at or
    /// below `thresholds[1]` its second, else its third.
    pub thresholds: [f64; 2],
    /// `HY_STYLE`: which sensor and which three schemes.
    pub style: HybridStyle,
    /// `HY_SMOOTH_DP` (gradient sensor only).
    pub smoothing: bool,
}

impl HybridSensor {
    /// Jameson's sensor (`HY_STYLE = 2`) with `thresholds`.
    pub fn jameson(thresholds: [f64; 2]) -> Self {
        Self {
            thresholds,
            style: HybridStyle::Jameson,
            smoothing: false,
        }
    }

    /// The scheme of a face whose sensor value is `sensor`.
    #[inline]
    pub fn scheme(&self, sensor: f64) -> Reconstruction {
        self.style.scheme(hybrid_class(sensor, self.thresholds))
    }

    /// The scheme of the face between points with sensor values `lower` and `upper`.
    #[inline]
    pub fn face_scheme(&self, lower: f64, upper: f64) -> Reconstruction {
        match self.style {
            HybridStyle::Jameson => self.scheme(lower),
            HybridStyle::Gradient => self.scheme(0.5 * (lower + upper)),
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

/// Writes `|∇p|` of every interior point, the gradient sensor before normalisation
/// (`sensor.inplace_op3(&primitives, &geometry, &op)`). As officially, the gradient is
/// `Σ_d ∂p/∂ξ_d · A_d` with the cofactor metrics `A_d` (`Akx` …, not divided by the
/// Jacobian) and the derivatives of the viscous scheme with its `DIF_BOUND` closures.
#[derive(Debug, Clone, Copy)]
pub struct PressureGradient {
    /// The viscous scheme.
    pub scheme: CentralDifference,
    /// The computational spacings `h`.
    pub spacing: [f64; 3],
    /// `[direction][low, high]`: closed block faces.
    pub closures: [[bool; 2]; 3],
}

/// Divides the interior sensor by the grid's mean and, where the temperature is
/// negative, raises it to at least `threshold + 1`, ten times itself
/// (`sensor.inplace_op2(&primitives, &op)`).
#[derive(Debug, Clone, Copy)]
pub struct NormalizeGradient {
    /// `1 / mean |∇p|`.
    pub scale: f64,
    /// The upper threshold `HY_DP_INTV[1]`.
    pub threshold: f64,
}

/// The smoothing's input: the interior sensor tripled where it reaches `threshold`
/// (`field.inplace_op2(&sensor, &op)`; ghosts are then exchanged).
#[derive(Debug, Clone, Copy)]
pub struct AmplifyAbove {
    /// The threshold.
    pub threshold: f64,
}

/// `G = F/3 + (sum of the six neighbours of F)/9` on the interior, `G = F` on the first
/// and last planes of closed (non-periodic) domain edges (`sensor.inplace_op2(&f, &op)`).
#[derive(Debug, Clone, Copy)]
pub struct SmoothIndicator {
    /// `[direction][low, high]`: the block's faces on a non-periodic domain edge.
    pub edges: [[bool; 2]; 3],
}

/// Sets the sensor to `zone.indicator` inside the zone's global index box
/// (`sensor.inplace_op1(&op)`).
#[derive(Debug, Clone, Copy)]
pub struct PatchZone<'a> {
    /// The zone.
    pub zone: &'a HybridZone,
    /// Global index of the block's first interior point.
    pub offset: [usize; 3],
}

fn sensor_and(
    name: &str,
    sensor_layout: &Layout,
    other_layout: &Layout,
    other_components: usize,
) -> candle_core::Result<FieldShape> {
    let shape = FieldShape::of(other_layout)?;
    let sensor_shape = FieldShape::of(sensor_layout)?;
    if shape.components != other_components
        || sensor_shape.components != 1
        || sensor_shape.padded != shape.padded
    {
        candle_core::bail!("{name}: mismatched fields {sensor_shape:?}, {shape:?}");
    }
    Ok(sensor_shape)
}

/// The sum of a `[1, z, y, x]` field over its interior points, in `k, j, i` order.
pub fn interior_sum(sensor: &candle_core::Tensor) -> candle_core::Result<f64> {
    let (_, pz, py, px) = sensor.dims4()?;
    let values: Vec<f64> = sensor.flatten_all()?.to_vec1()?;
    let mut sum = 0.0;
    for k in GHOST..pz - GHOST {
        for j in GHOST..py - GHOST {
            let row = (k * py + j) * px;
            sum += values[row + GHOST..row + px - GHOST].iter().sum::<f64>();
        }
    }
    Ok(sum)
}

/// Calls `visit(at)` for every interior point, in parallel over `k`.
fn for_interior(shape: &FieldShape, visit: impl Fn([usize; 3], usize) + Sync) {
    let [nx, ny, nz] = shape.interior();
    (GHOST..GHOST + nz).into_par_iter().for_each(|k| {
        for j in GHOST..GHOST + ny {
            for i in GHOST..GHOST + nx {
                visit([i, j, k], shape.at(i, j, k));
            }
        }
    });
}

impl candle_core::InplaceOp3 for PressureGradient {
    fn name(&self) -> &'static str {
        "opencfd-pressure-gradient"
    }

    fn cpu_fwd(
        &self,
        sensor: &mut CpuStorage,
        sensor_layout: &Layout,
        primitives_storage: &CpuStorage,
        primitives_layout: &Layout,
        geometry_storage: &CpuStorage,
        geometry_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = sensor_and(
            self.name(),
            sensor_layout,
            primitives_layout,
            PRIMITIVE_COMPONENTS,
        )?;
        sensor_and(
            self.name(),
            sensor_layout,
            geometry_layout,
            GEOMETRY_COMPONENTS,
        )?;
        let plane = shape.plane_len();
        let pressure = &values(primitives_storage, primitives_layout)?
            [PRESSURE * plane..(PRESSURE + 1) * plane];
        let geometry = values(geometry_storage, geometry_layout)?;
        let interior = shape.interior();
        let strides = [shape.stride(0), shape.stride(1), shape.stride(2)];
        let out = DisjointWriter::new(values_mut(sensor, sensor_layout)?);
        for_interior(&shape, |index, at| {
            let along: [f64; 3] = std::array::from_fn(|d| {
                let position = LinePosition {
                    index: index[d] - GHOST,
                    len: interior[d],
                    closures: self.closures[d],
                };
                derivative::<true>(
                    self.scheme,
                    pressure,
                    at,
                    strides[d],
                    self.spacing[d],
                    position,
                )
            });
            let gradient: [f64; 3] = std::array::from_fn(|m| {
                (0..3)
                    .map(|d| along[d] * geometry[(3 * d + m) * plane + at])
                    .sum()
            });
            let norm = gradient.iter().map(|g| g * g).sum::<f64>().sqrt();
            // SAFETY: every interior point is written by exactly one worker.
            unsafe { out.set(at, norm) };
        });
        Ok(())
    }
}

impl InplaceOp2 for NormalizeGradient {
    fn name(&self) -> &'static str {
        "opencfd-normalize-gradient"
    }

    fn cpu_fwd(
        &self,
        sensor: &mut CpuStorage,
        sensor_layout: &Layout,
        primitives_storage: &CpuStorage,
        primitives_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = sensor_and(
            self.name(),
            sensor_layout,
            primitives_layout,
            PRIMITIVE_COMPONENTS,
        )?;
        let plane = shape.plane_len();
        let temperature = &values(primitives_storage, primitives_layout)?
            [TEMPERATURE * plane..(TEMPERATURE + 1) * plane];
        let out = DisjointWriter::new(values_mut(sensor, sensor_layout)?);
        for_interior(&shape, |_, at| {
            // SAFETY: one worker per point.
            unsafe {
                let g = out.get(at) * self.scale;
                let g = if temperature[at] < 0.0 {
                    (10.0 * g).max(self.threshold + 1.0)
                } else {
                    g
                };
                out.set(at, g);
            }
        });
        Ok(())
    }
}

impl InplaceOp2 for AmplifyAbove {
    fn name(&self) -> &'static str {
        "opencfd-amplify-sensor"
    }

    fn cpu_fwd(
        &self,
        field: &mut CpuStorage,
        field_layout: &Layout,
        sensor_storage: &CpuStorage,
        sensor_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = sensor_and(self.name(), field_layout, sensor_layout, 1)?;
        let sensor = values(sensor_storage, sensor_layout)?;
        let out = DisjointWriter::new(values_mut(field, field_layout)?);
        for_interior(&shape, |_, at| {
            let g = sensor[at];
            // SAFETY: one worker per point.
            unsafe { out.set(at, if g >= self.threshold { 3.0 * g } else { g }) };
        });
        Ok(())
    }
}

impl InplaceOp2 for SmoothIndicator {
    fn name(&self) -> &'static str {
        "opencfd-smooth-sensor"
    }

    fn cpu_fwd(
        &self,
        sensor: &mut CpuStorage,
        sensor_layout: &Layout,
        field_storage: &CpuStorage,
        field_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = sensor_and(self.name(), sensor_layout, field_layout, 1)?;
        let f = values(field_storage, field_layout)?;
        let interior = shape.interior();
        let strides = [shape.stride(0), shape.stride(1), shape.stride(2)];
        let out = DisjointWriter::new(values_mut(sensor, sensor_layout)?);
        for_interior(&shape, |index, at| {
            let on_edge = (0..3).any(|d| {
                (self.edges[d][0] && index[d] == GHOST)
                    || (self.edges[d][1] && index[d] == GHOST + interior[d] - 1)
            });
            let value = if on_edge {
                f[at]
            } else {
                let neighbours: f64 = strides.iter().map(|&s| f[at - s] + f[at + s]).sum();
                f[at] / 3.0 + neighbours / 9.0
            };
            // SAFETY: one worker per point.
            unsafe { out.set(at, value) };
        });
        Ok(())
    }
}

impl InplaceOp1 for PatchZone<'_> {
    fn name(&self) -> &'static str {
        "opencfd-patch-zone"
    }

    fn cpu_fwd(&self, sensor: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let shape = FieldShape::of(layout)?;
        let interior = shape.interior();
        let local: [std::ops::Range<usize>; 3] = std::array::from_fn(|d| {
            let (begin, end) = (self.zone.begin[d], self.zone.end[d]);
            let first = begin.max(self.offset[d]).min(self.offset[d] + interior[d]);
            let last = end.max(first).min(self.offset[d] + interior[d]);
            first - self.offset[d] + GHOST..last - self.offset[d] + GHOST
        });
        let out = values_mut(sensor, layout)?;
        for k in local[2].clone() {
            for j in local[1].clone() {
                for i in local[0].clone() {
                    out[shape.at(i, j, k)] = self.zone.indicator;
                }
            }
        }
        Ok(())
    }
}
