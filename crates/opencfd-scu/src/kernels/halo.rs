//! Ghost layers: filled from the block's own interior (periodic wrap, outflow) or
//! copied from a neighbouring block's interior (the halo exchange).
//!
//! Only the ghosts along each direction, beside the interior of the other two, are
//! filled: the kernels never read corner or edge ghosts.

use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout};
use rayon::prelude::*;

use super::storage::{FieldShape, values, values_mut};
use crate::GHOST;

/// Which side of a block along a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Side {
    /// The side of index 0.
    Low,
    /// The side of the last index.
    High,
}

/// How a block fills its own ghosts on one face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SelfFill {
    /// Periodic wrap onto the block's own interior (a direction with one block).
    Periodic,
    /// Zero-gradient extrapolation: every ghost copies the nearest interior point.
    Outflow,
}

/// Fills the ghosts of one face of a field from its own interior (`field.inplace_op1(&op)`).
#[derive(Debug, Clone, Copy)]
pub struct FillGhosts {
    /// 0 = x, 1 = y, 2 = z.
    pub direction: usize,
    /// Which face.
    pub side: Side,
    /// How.
    pub fill: SelfFill,
}

/// Copies a neighbour's interior into the ghosts of one face
/// (`field.inplace_op2(&neighbour, &op)`): on the low side the neighbour's last
/// `GHOST` interior layers, on the high side its first.
#[derive(Debug, Clone, Copy)]
pub struct CopyHalo {
    /// 0 = x, 1 = y, 2 = z.
    pub direction: usize,
    /// The face of the destination block.
    pub side: Side,
}

/// Calls `visit(offset, p)` for every point whose index along `direction` is in
/// `layers` and whose other two indices are interior, in `k, j, i` order; `p` is the
/// index along `direction` and offsets are within one component.
fn for_each_in_layers(
    shape: &FieldShape,
    direction: usize,
    layers: std::ops::Range<usize>,
    mut visit: impl FnMut(usize, usize),
) {
    let n = shape.interior();
    let range = |d: usize| {
        if d == direction {
            layers.clone()
        } else {
            GHOST..GHOST + n[d]
        }
    };
    for k in range(2) {
        for j in range(1) {
            for i in range(0) {
                let p = [i, j, k][direction];
                visit(shape.at(i, j, k), p);
            }
        }
    }
}

/// The ghost layers of one face.
fn ghost_layers(shape: &FieldShape, direction: usize, side: Side) -> std::ops::Range<usize> {
    let n = shape.interior()[direction];
    match side {
        Side::Low => 0..GHOST,
        Side::High => GHOST + n..2 * GHOST + n,
    }
}

/// Calls `visit(ghost_offset, p)` for every ghost point of a face.
fn for_each_ghost(
    shape: &FieldShape,
    direction: usize,
    side: Side,
    visit: impl FnMut(usize, usize),
) {
    for_each_in_layers(
        shape,
        direction,
        ghost_layers(shape, direction, side),
        visit,
    )
}

/// The interior layers a neighbour across `side` needs for its ghosts, packed in the
/// order [`UnpackHalo`] reads them: the first `GHOST` layers for the low neighbour,
/// the last `GHOST` for the high one.
pub fn pack_halo(
    field: &candle_core::Tensor,
    direction: usize,
    side: Side,
) -> candle_core::Result<Vec<f64>> {
    let (storage, layout) = field.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("halo packing reads CPU fields");
    };
    let shape = FieldShape::of(layout)?;
    let data = values(cpu, layout)?;
    let n = shape.interior()[direction];
    let layers = match side {
        Side::Low => GHOST..2 * GHOST,
        Side::High => n..n + GHOST,
    };
    let plane = shape.plane_len();
    let mut out = Vec::new();
    for c in 0..shape.components {
        for_each_in_layers(&shape, direction, layers.clone(), |at, _| {
            out.push(data[c * plane + at])
        });
    }
    Ok(out)
}

/// Writes a slab packed by [`pack_halo`] on a neighbouring rank into the ghosts of one
/// face (`field.inplace_op1(&op)`).
#[derive(Debug, Clone)]
pub struct UnpackHalo {
    /// 0 = x, 1 = y, 2 = z.
    pub direction: usize,
    /// The face whose ghosts are written.
    pub side: Side,
    /// The packed values.
    pub data: Vec<f64>,
}

impl InplaceOp1 for UnpackHalo {
    fn name(&self) -> &'static str {
        "opencfd-unpack-halo"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let shape = FieldShape::of(layout)?;
        let data = values_mut(storage, layout)?;
        let plane = shape.plane_len();
        let mut next = self.data.iter();
        for c in 0..shape.components {
            let mut missing = false;
            for_each_ghost(&shape, self.direction, self.side, |at, _| {
                match next.next() {
                    Some(value) => data[c * plane + at] = *value,
                    None => missing = true,
                }
            });
            if missing {
                candle_core::bail!(
                    "halo slab of {} values is too short for {shape:?}",
                    self.data.len()
                );
            }
        }
        if next.next().is_some() {
            candle_core::bail!(
                "halo slab of {} values is too long for {shape:?}",
                self.data.len()
            );
        }
        Ok(())
    }
}

impl InplaceOp1 for FillGhosts {
    fn name(&self) -> &'static str {
        "opencfd-fill-ghosts"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let shape = FieldShape::of(layout)?;
        let data = values_mut(storage, layout)?;
        let n = shape.interior()[self.direction];
        let stride = shape.stride(self.direction);
        let plane = shape.plane_len();
        // Components are independent: one worker each.
        data[..shape.components * plane]
            .par_chunks_mut(plane)
            .for_each(|component| {
                for_each_ghost(&shape, self.direction, self.side, |at, p| {
                    let source = match self.fill {
                        SelfFill::Periodic => GHOST + (p + n - GHOST % n) % n,
                        SelfFill::Outflow => p.clamp(GHOST, GHOST + n - 1),
                    };
                    component[at] = component[at + source * stride - p * stride];
                });
            });
        Ok(())
    }
}

impl InplaceOp2 for CopyHalo {
    fn name(&self) -> &'static str {
        "opencfd-copy-halo"
    }

    fn cpu_fwd(
        &self,
        storage: &mut CpuStorage,
        layout: &Layout,
        neighbour_storage: &CpuStorage,
        neighbour_layout: &Layout,
    ) -> candle_core::Result<()> {
        let shape = FieldShape::of(layout)?;
        let neighbour_shape = FieldShape::of(neighbour_layout)?;
        let d = self.direction;
        let same_section = (0..3).all(|m| m == d || shape.padded[m] == neighbour_shape.padded[m]);
        let neighbour_n = neighbour_shape.interior()[d];
        if shape.components != neighbour_shape.components || !same_section || neighbour_n < GHOST {
            candle_core::bail!(
                "halo copy: block {shape:?} and neighbour {neighbour_shape:?} do not fit along direction {d}"
            );
        }
        let n = shape.interior()[d];
        let data = values_mut(storage, layout)?;
        let neighbour = values(neighbour_storage, neighbour_layout)?;
        let plane = shape.plane_len();
        let neighbour_plane = neighbour_shape.plane_len();
        for_each_ghost(&shape, d, self.side, |at, p| {
            let mut ijk = [
                at % shape.padded[0],
                (at / shape.padded[0]) % shape.padded[1],
                at / (shape.padded[0] * shape.padded[1]),
            ];
            ijk[d] = match self.side {
                Side::Low => neighbour_n + p,
                Side::High => p - n,
            };
            let from = neighbour_shape.at(ijk[0], ijk[1], ijk[2]);
            for c in 0..shape.components {
                data[c * plane + at] = neighbour[c * neighbour_plane + from];
            }
        });
        Ok(())
    }
}
