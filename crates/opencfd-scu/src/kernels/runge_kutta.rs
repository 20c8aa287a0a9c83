//! The third-order TVD Runge–Kutta update of Shu and Osher, one stage per call.
//!
//! Stage `s` sets `U ← a_s U⁰ + b_s (U + Δt R(U))` on the interior with
//! `(a, b) = (0, 1), (¾, ¼), (⅓, ⅔)`, where `U⁰` is the state at the start of the step.

use candle_core::{CpuStorage, InplaceOp3, Layout};
use rayon::prelude::*;

use super::storage::{FieldShape, values, values_mut};
use crate::GHOST;

/// The stage weights `(a, b)` of the three stages.
pub const STAGES: [(f64, f64); 3] = [(0.0, 1.0), (0.75, 0.25), (1.0 / 3.0, 2.0 / 3.0)];

/// One Runge–Kutta stage (`state.inplace_op3(&start_of_step, &rhs, &op)`).
#[derive(Debug, Clone, Copy)]
pub struct RungeKuttaStage {
    /// 0, 1 or 2.
    pub stage: usize,
    /// The time step.
    pub dt: f64,
}

impl InplaceOp3 for RungeKuttaStage {
    fn name(&self) -> &'static str {
        "opencfd-rk3-stage"
    }

    fn cpu_fwd(
        &self,
        storage: &mut CpuStorage,
        layout: &Layout,
        start_storage: &CpuStorage,
        start_layout: &Layout,
        rhs_storage: &CpuStorage,
        rhs_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = FieldShape::of(layout)?;
        if FieldShape::of(start_layout)? != shape || FieldShape::of(rhs_layout)? != shape {
            candle_core::bail!("runge-kutta stage: mismatched fields");
        }
        let Some(&(a, b)) = STAGES.get(self.stage) else {
            candle_core::bail!("runge-kutta stage {} is not 0, 1 or 2", self.stage);
        };
        let start = values(start_storage, start_layout)?;
        let rhs = values(rhs_storage, rhs_layout)?;
        let state = values_mut(storage, layout)?;
        let [nx, ny, _] = shape.interior();
        let [px, py, pz] = shape.padded;
        let dt = self.dt;
        // Rows of x are contiguous: one work item per (component, k, j) interior row.
        state
            .par_chunks_mut(px)
            .enumerate()
            .filter(|(row, _)| {
                let (j, k) = (row % py, (row / py) % pz);
                (GHOST..GHOST + ny).contains(&j) && (GHOST..pz - GHOST).contains(&k)
            })
            .for_each(|(row, values)| {
                let offset = row * px;
                for i in GHOST..GHOST + nx {
                    let updated = values[i] + dt * rhs[offset + i];
                    values[i] = a * start[offset + i] + b * updated;
                }
            });
        Ok(())
    }
}
