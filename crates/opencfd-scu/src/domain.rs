//! Block decomposition: the global grid cut into blocks with [`GHOST`]-layer halos.
//!
//! Each block holds its own candle tensors (state, geometry, right-hand side) and
//! exchanges halos with its neighbours through [`CopyHalo`]; faces on the domain's
//! edge are filled by the boundary condition. The kernels read only ghost values,
//! never a neighbour directly, so a decomposed run performs the same arithmetic on
//! every point as a single block and gives bitwise identical results.

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::GHOST;
use crate::error::{CfdError, CfdResult};
use crate::geometry::{GEOMETRY_COMPONENTS, sub_box};
use crate::kernels::halo::{CopyHalo, FillGhosts, SelfFill, Side};
use crate::metrics::Extent;

/// The boundary condition of one face of the global domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Boundary {
    /// Periodic (both faces of the direction must say so).
    Periodic,
    /// Zero-gradient outflow (transmissive) ghosts.
    Outflow,
}

/// One block of the decomposition.
#[derive(Debug)]
pub struct Block {
    /// Global interior index of the block's first interior point.
    pub offset: [usize; 3],
    /// Interior size.
    pub extent: Extent,
    /// Position in the block grid.
    pub position: [usize; 3],
    /// Conservative variables `[5, z, y, x]`.
    pub state: Tensor,
    /// Geometry `[10, z, y, x]` (see [`crate::geometry`]).
    pub geometry: Tensor,
}

/// The blocks of a global grid.
#[derive(Debug)]
pub struct Domain {
    /// Global interior size.
    pub global: Extent,
    /// Blocks per direction.
    pub grid: [usize; 3],
    /// Boundary conditions `[direction][side]`.
    pub boundaries: [[Boundary; 2]; 3],
    /// The blocks, x fastest.
    pub blocks: Vec<Block>,
}

/// Splits `n` points into `parts` nearly equal runs, `(start, length)` each.
fn split(n: usize, parts: usize) -> Vec<(usize, usize)> {
    (0..parts)
        .map(|p| (p * n / parts, (p + 1) * n / parts - p * n / parts))
        .collect()
}

impl Domain {
    /// Cuts global padded fields (`state`: 5 components, `geometry`: 10) into
    /// `grid[0] × grid[1] × grid[2]` blocks.
    pub fn new(
        global: Extent,
        grid: [usize; 3],
        boundaries: [[Boundary; 2]; 3],
        state: &[f64],
        geometry: &[f64],
        device: &Device,
    ) -> CfdResult<Self> {
        let dims = global.dims();
        for d in 0..3 {
            let periodic = boundaries[d].map(|b| b == Boundary::Periodic);
            if periodic[0] != periodic[1] {
                return Err(CfdError::Config(format!(
                    "direction {d}: periodic on one face only"
                )));
            }
            if grid[d] == 0 || (grid[d] > 1 && dims[d] / grid[d] < GHOST) {
                return Err(CfdError::Config(format!(
                    "direction {d}: {} points cannot be cut into {} blocks of at least {GHOST}",
                    dims[d], grid[d]
                )));
            }
        }
        if state.len() != 5 * global.len_padded()
            || geometry.len() != GEOMETRY_COMPONENTS * global.len_padded()
        {
            return Err(CfdError::Config(
                "global fields do not match the grid".into(),
            ));
        }
        let cuts: Vec<Vec<(usize, usize)>> = (0..3).map(|d| split(dims[d], grid[d])).collect();
        let mut blocks = Vec::new();
        for bz in 0..grid[2] {
            for by in 0..grid[1] {
                for bx in 0..grid[0] {
                    let position = [bx, by, bz];
                    let offset = std::array::from_fn(|d| cuts[d][position[d]].0);
                    let size: [usize; 3] = std::array::from_fn(|d| cuts[d][position[d]].1);
                    let extent = Extent::new(size[0], size[1], size[2]);
                    let [px, py, pz] = extent.padded();
                    let field = |values: &[f64], components: usize| {
                        Tensor::from_vec(
                            sub_box(values, global, offset, extent),
                            (components, pz, py, px),
                            device,
                        )
                    };
                    blocks.push(Block {
                        offset,
                        extent,
                        position,
                        state: field(state, 5)?,
                        geometry: field(geometry, GEOMETRY_COMPONENTS)?,
                    });
                }
            }
        }
        Ok(Self {
            global,
            grid,
            boundaries,
            blocks,
        })
    }

    fn block_at(&self, position: [usize; 3]) -> usize {
        (position[2] * self.grid[1] + position[1]) * self.grid[0] + position[0]
    }

    /// The neighbour of block `index` across a face, if that face is shared.
    fn neighbour(&self, index: usize, direction: usize, side: Side) -> Option<usize> {
        let mut position = self.blocks[index].position;
        let n = self.grid[direction];
        let periodic = self.boundaries[direction][0] == Boundary::Periodic;
        match side {
            Side::Low if position[direction] > 0 => position[direction] -= 1,
            Side::Low if periodic && n > 1 => position[direction] = n - 1,
            Side::High if position[direction] + 1 < n => position[direction] += 1,
            Side::High if periodic && n > 1 => position[direction] = 0,
            _ => return None,
        }
        Some(self.block_at(position))
    }

    /// Fills the ghost layers of one field of every block (`field(block)` picks it):
    /// halos from neighbours, boundary conditions on the domain's faces.
    pub fn exchange(&self, field: impl Fn(usize) -> Tensor) -> CfdResult<()> {
        for index in 0..self.blocks.len() {
            let target = field(index);
            for direction in 0..3 {
                for (s, side) in [Side::Low, Side::High].into_iter().enumerate() {
                    match self.neighbour(index, direction, side) {
                        Some(neighbour) => {
                            target.inplace_op2(&field(neighbour), &CopyHalo { direction, side })?
                        }
                        None => {
                            let fill = match self.boundaries[direction][s] {
                                Boundary::Periodic => SelfFill::Periodic,
                                Boundary::Outflow => SelfFill::Outflow,
                            };
                            target.inplace_op1(&FillGhosts {
                                direction,
                                side,
                                fill,
                            })?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A global `[components][nz][ny][nx]` interior array gathered from one field of every block.
    pub fn gather(&self, field: impl Fn(&Block) -> &Tensor) -> CfdResult<Vec<f64>> {
        let [nx, ny, nz] = self.global.dims();
        let mut components = 0;
        let mut out = Vec::new();
        for block in &self.blocks {
            let tensor = field(block);
            let c = tensor.dim(0)?;
            if out.is_empty() {
                components = c;
                out = vec![0.0; c * nx * ny * nz];
            }
            let values: Vec<f64> = tensor.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
            let [bx, by, bz] = block.extent.dims();
            for c in 0..components {
                for k in 0..bz {
                    for j in 0..by {
                        let from = c * block.extent.len_padded()
                            + block.extent.index(GHOST, j + GHOST, k + GHOST);
                        let to = ((c * nz + k + block.offset[2]) * ny + j + block.offset[1]) * nx
                            + block.offset[0];
                        out[to..to + bx].copy_from_slice(&values[from..from + bx]);
                    }
                }
            }
        }
        Ok(out)
    }
}
