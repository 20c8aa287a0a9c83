//! The fused viscous kernels: stresses and heat flux, then their divergence.
//!
//! [`ViscousFlux`] differentiates velocity and temperature with a central scheme
//! (CD6/CD8) along each computational direction (spacing `h`, as the metrics), forms the physical gradients with the
//! metrics, and writes the viscous fluxes through the three directions,
//! `G_d = A_d · (τ, u·τ + k∇T)`, as a `[12, z, y, x]` field (4 components per
//! direction). After its ghost layers are exchanged like the flow's,
//! [`ViscousDivergence`] adds `J Σ_d ∂G_d/∂ξ_d` to the momentum and energy equations.

use candle_core::{CpuStorage, InplaceOp3, Layout};
use rayon::prelude::*;

use super::primitives::{PRIMITIVE_COMPONENTS, TEMPERATURE, VELOCITY};
use super::storage::{DisjointWriter, FieldShape, values, values_mut};
use crate::GHOST;
use crate::gas::Gas;
use crate::geometry::{GEOMETRY_COMPONENTS, JACOBIAN};
use crate::scheme::CentralDifference;

use super::region::Region;

/// Components of the viscous flux field: 4 per direction.
pub const VISCOUS_COMPONENTS: usize = 12;

/// Writes the viscous fluxes of every interior point
/// (`flux.inplace_op3(&primitives, &geometry, &op)`, primitives as in [`super::primitives`]).
#[derive(Debug, Clone, Copy)]
pub struct ViscousFlux {
    /// The gas (viscosity law, conductivity).
    pub gas: Gas,
    /// The derivative scheme.
    pub scheme: CentralDifference,
    /// The computational spacings `h` (see [`crate::metrics::Extent::spacing`]).
    pub spacing: [f64; 3],
    /// `[direction][low, high]`: the block's faces with the official one-sided
    /// closures (`DIF_BOUND`; see [`CentralDifference::derivative_dif_bound`]).
    pub closures: [[bool; 2]; 3],
    /// The points written (all, or one pass of the interior/halo overlap).
    pub region: Region,
}

/// Adds the divergence of the viscous fluxes (`rhs.inplace_op3(&flux, &geometry, &op)`).
#[derive(Debug, Clone, Copy)]
pub struct ViscousDivergence {
    /// The derivative scheme.
    pub scheme: CentralDifference,
    /// The computational spacings `h` (see [`crate::metrics::Extent::spacing`]).
    pub spacing: [f64; 3],
    /// As [`ViscousFlux::closures`].
    pub closures: [[bool; 2]; 3],
    /// As [`ViscousFlux::region`].
    pub region: Region,
}

/// Where a point lies along one direction of a block: its interior index, the number
/// of interior points and which ends are closed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinePosition {
    pub(crate) index: usize,
    pub(crate) len: usize,
    pub(crate) closures: [bool; 2],
}

impl LinePosition {
    /// The distance to a closed end when it is within a closure's reach, per end.
    #[inline(always)]
    fn near_ends(self) -> (Option<usize>, Option<usize>) {
        let from_high = self.len - 1 - self.index;
        (
            (self.closures[0] && self.index < 4).then_some(self.index),
            (self.closures[1] && from_high < 4).then_some(from_high),
        )
    }
}

/// The central derivative along `direction` at `at` (spacing `h`), with the
/// `DIF_BOUND` closures near closed ends, or 0 for a direction with a single point.
#[inline(always)]
pub(crate) fn derivative<const CLOSED: bool>(
    scheme: CentralDifference,
    field: &[f64],
    at: usize,
    stride: usize,
    spacing: f64,
    position: LinePosition,
) -> f64 {
    if position.len <= 1 {
        return 0.0;
    }
    let first = at - GHOST * stride;
    assert!(
        first + 8 * stride < field.len(),
        "derivative stencil outside the field"
    );
    // SAFETY: the nine indices lie between `first` and the bound checked above.
    let stencil: [f64; 9] =
        std::array::from_fn(|m| unsafe { *field.get_unchecked(first + m * stride) });
    // A block without closed faces skips the test (it costs 7 % of a step).
    if CLOSED {
        let (low, high) = position.near_ends();
        if low.is_some() || high.is_some() {
            return scheme.derivative_dif_bound(&stencil, spacing, low, high);
        }
    }
    scheme.derivative(&stencil, spacing)
}

fn check(
    name: &str,
    dst: FieldShape,
    dst_components: usize,
    a: FieldShape,
    a_components: usize,
    geometry: FieldShape,
) -> candle_core::Result<()> {
    if dst.components != dst_components
        || a.components != a_components
        || geometry.components != GEOMETRY_COMPONENTS
        || dst.padded != a.padded
        || geometry.padded != a.padded
    {
        candle_core::bail!("{name}: mismatched fields {dst:?}, {a:?}, {geometry:?}");
    }
    Ok(())
}

impl ViscousFlux {
    fn fluxes<const CLOSED: bool>(
        &self,
        shape: &FieldShape,
        primitives: &[f64],
        geometry: &[f64],
        out: DisjointWriter,
    ) {
        let plane = shape.plane_len();
        let gas = self.gas;
        // Velocity components and temperature, the fields whose gradients are needed.
        let fields = [VELOCITY, VELOCITY + 1, VELOCITY + 2, TEMPERATURE]
            .map(|c| &primitives[c * plane..(c + 1) * plane]);

        let interior = shape.interior();
        let [nx, ny, nz] = interior;
        let strides = [shape.stride(0), shape.stride(1), shape.stride(2)];
        let closures = self.closures;
        let conductivity_factor = gas.cp() / gas.prandtl;
        (GHOST..GHOST + nz).into_par_iter().for_each(|k| {
            for j in GHOST..GHOST + ny {
                for i in GHOST..GHOST + nx {
                    if !self.region.contains(shape.padded, [i, j, k]) {
                        continue;
                    }
                    let at = shape.at(i, j, k);
                    let index = [i - GHOST, j - GHOST, k - GHOST];
                    let position = |d: usize| LinePosition {
                        index: index[d],
                        len: interior[d],
                        closures: closures[d],
                    };
                    let jacobian = geometry[JACOBIAN * plane + at];
                    let metric = |d: usize, m: usize| geometry[(3 * d + m) * plane + at];
                    // gradient[f][m] = ∂(u, v, w, T)_f / ∂x_m
                    let mut gradient = [[0.0; 3]; 4];
                    for (f, row) in gradient.iter_mut().enumerate() {
                        let field = fields[f];
                        let along: [f64; 3] = std::array::from_fn(|d| {
                            derivative::<CLOSED>(
                                self.scheme,
                                field,
                                at,
                                strides[d],
                                self.spacing[d],
                                position(d),
                            )
                        });
                        for (m, slot) in row.iter_mut().enumerate() {
                            *slot = jacobian
                                * (metric(0, m) * along[0]
                                    + metric(1, m) * along[1]
                                    + metric(2, m) * along[2]);
                        }
                    }
                    let velocity = [fields[0][at], fields[1][at], fields[2][at]];
                    let mu = gas.viscosity(fields[3][at]);
                    let divergence = gradient[0][0] + gradient[1][1] + gradient[2][2];
                    let mut stress = [[0.0; 3]; 3];
                    for m in 0..3 {
                        for n in 0..3 {
                            stress[m][n] = mu * (gradient[m][n] + gradient[n][m]);
                        }
                        stress[m][m] -= mu * 2.0 / 3.0 * divergence;
                    }
                    let conductivity = mu * conductivity_factor;
                    let energy: [f64; 3] = std::array::from_fn(|n| {
                        velocity[0] * stress[0][n]
                            + velocity[1] * stress[1][n]
                            + velocity[2] * stress[2][n]
                            + conductivity * gradient[3][n]
                    });
                    for d in 0..3 {
                        let a = [metric(d, 0), metric(d, 1), metric(d, 2)];
                        let through = |row: [f64; 3]| a[0] * row[0] + a[1] * row[1] + a[2] * row[2];
                        let components = [
                            through(stress[0]),
                            through(stress[1]),
                            through(stress[2]),
                            through(energy),
                        ];
                        for (c, value) in components.into_iter().enumerate() {
                            // SAFETY: one worker per k-plane.
                            unsafe { out.set((4 * d + c) * plane + at, value) };
                        }
                    }
                }
            }
        });
    }
}

impl InplaceOp3 for ViscousFlux {
    fn name(&self) -> &'static str {
        "opencfd-viscous-flux"
    }

    fn cpu_fwd(
        &self,
        flux: &mut CpuStorage,
        flux_layout: &Layout,
        primitives_storage: &CpuStorage,
        primitives_layout: &Layout,
        geometry_storage: &CpuStorage,
        geometry_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = FieldShape::of(primitives_layout)?;
        check(
            self.name(),
            FieldShape::of(flux_layout)?,
            VISCOUS_COMPONENTS,
            shape,
            PRIMITIVE_COMPONENTS,
            FieldShape::of(geometry_layout)?,
        )?;
        let primitives = values(primitives_storage, primitives_layout)?;
        let geometry = values(geometry_storage, geometry_layout)?;
        let out = DisjointWriter::new(values_mut(flux, flux_layout)?);
        if self.closures.iter().flatten().any(|&c| c) {
            self.fluxes::<true>(&shape, primitives, geometry, out);
        } else {
            self.fluxes::<false>(&shape, primitives, geometry, out);
        }
        Ok(())
    }
}

impl ViscousDivergence {
    fn divergence<const CLOSED: bool>(
        &self,
        shape: &FieldShape,
        flux: &[f64],
        geometry: &[f64],
        out: DisjointWriter,
    ) {
        let plane = shape.plane_len();
        let interior = shape.interior();
        let [nx, ny, nz] = interior;
        let strides = [shape.stride(0), shape.stride(1), shape.stride(2)];
        let closures = self.closures;
        (GHOST..GHOST + nz).into_par_iter().for_each(|k| {
            for j in GHOST..GHOST + ny {
                for i in GHOST..GHOST + nx {
                    if !self.region.contains(shape.padded, [i, j, k]) {
                        continue;
                    }
                    let at = shape.at(i, j, k);
                    let index = [i - GHOST, j - GHOST, k - GHOST];
                    let jacobian = geometry[JACOBIAN * plane + at];
                    for c in 0..4 {
                        let mut sum = 0.0;
                        for d in 0..3 {
                            let field = &flux[(4 * d + c) * plane..(4 * d + c + 1) * plane];
                            sum += derivative::<CLOSED>(
                                self.scheme,
                                field,
                                at,
                                strides[d],
                                self.spacing[d],
                                LinePosition {
                                    index: index[d],
                                    len: interior[d],
                                    closures: closures[d],
                                },
                            );
                        }
                        // SAFETY: one worker per k-plane.
                        unsafe { out.add((c + 1) * plane + at, jacobian * sum) };
                    }
                }
            }
        });
    }
}

impl InplaceOp3 for ViscousDivergence {
    fn name(&self) -> &'static str {
        "opencfd-viscous-divergence"
    }

    fn cpu_fwd(
        &self,
        rhs: &mut CpuStorage,
        rhs_layout: &Layout,
        flux_storage: &CpuStorage,
        flux_layout: &Layout,
        geometry_storage: &CpuStorage,
        geometry_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = FieldShape::of(flux_layout)?;
        check(
            self.name(),
            FieldShape::of(rhs_layout)?,
            5,
            shape,
            VISCOUS_COMPONENTS,
            FieldShape::of(geometry_layout)?,
        )?;
        let flux = values(flux_storage, flux_layout)?;
        let geometry = values(geometry_storage, geometry_layout)?;
        let out = DisjointWriter::new(values_mut(rhs, rhs_layout)?);
        if self.closures.iter().flatten().any(|&c| c) {
            self.divergence::<true>(&shape, flux, geometry, out);
        } else {
            self.divergence::<false>(&shape, flux, geometry, out);
        }
        Ok(())
    }
}
