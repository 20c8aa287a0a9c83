//! The geometry field the kernels read: metric vectors and Jacobian per point.
//!
//! Eleven components on the padded block layout: the official cofactors `A_ξ =
//! (Akx, Aky, Akz)` (0..3), `A_η` (3..6), `A_ζ` (6..9) and `Ajac` (9) from
//! [`Metrics`], and a slot (10) where hybrid runs store the shock sensor of the
//! current stage (the kernels take at most two input fields, so the sensor rides
//! with the geometry rather than in a third). `A_d = det(∂x/∂ξ) ∇ξ_d` is the scaled normal of the computational
//! direction `d` and `J = Ajac = 1 / det`, with the official spacing `h` of
//! [`Extent::spacing`]. The flux through direction `d` is `A_d · F`, its contribution
//! to `∂U/∂t` is `−J ∂(A_d·F)/∂ξ_d`, and physical gradients are
//! `∇φ = J Σ_d A_d ∂φ/∂ξ_d`.

use crate::metrics::{Extent, Metrics};

/// Number of geometry components.
pub const GEOMETRY_COMPONENTS: usize = 11;
/// Index of the hybrid scheme's shock sensor.
pub const SENSOR: usize = 10;
/// Index of the Jacobian `J = 1 / det`.
pub const JACOBIAN: usize = 9;

/// The geometry components of a block, `[11][padded points]`, from its metrics (sensor 0).
pub fn geometry_values(metrics: &Metrics) -> Vec<f64> {
    let mut out = Vec::with_capacity(GEOMETRY_COMPONENTS * metrics.extent.len_padded());
    for direction in &metrics.cofactors {
        for component in direction {
            out.extend_from_slice(component);
        }
    }
    out.extend_from_slice(&metrics.jacobian);
    out.resize(GEOMETRY_COMPONENTS * metrics.extent.len_padded(), 0.0);
    out
}

/// Copies the padded sub-box of `values` (a `[components][global padded]` array)
/// whose interior starts at global interior index `offset` and has size `extent`.
pub fn sub_box(values: &[f64], global: Extent, offset: [usize; 3], extent: Extent) -> Vec<f64> {
    let components = values.len() / global.len_padded();
    let [px, py, pz] = extent.padded();
    let mut out = Vec::with_capacity(components * extent.len_padded());
    for c in 0..components {
        let base = c * global.len_padded();
        for k in 0..pz {
            for j in 0..py {
                let start = base + global.index(offset[0], j + offset[1], k + offset[2]);
                out.extend_from_slice(&values[start..start + px]);
            }
        }
    }
    out
}
