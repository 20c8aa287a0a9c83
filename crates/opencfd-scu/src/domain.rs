//! Block decomposition: the global grid cut into blocks with [`GHOST`]-layer halos.
//!
//! Each block holds its own candle tensors (state, geometry) and exchanges halos with
//! its neighbours: through [`CopyHalo`] when the neighbour lives in the same process,
//! through the run's [`Transport`] (packed slabs) when it lives on another rank; faces
//! on the domain's edge are filled by the boundary condition. The kernels read only
//! ghost values, never a neighbour directly, so a decomposed run performs the same
//! arithmetic on every point as a single block and gives bitwise identical results.

use std::rc::Rc;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::GHOST;
use crate::error::{CfdError, CfdResult};
use crate::geometry::{GEOMETRY_COMPONENTS, sub_box};
use crate::kernels::halo::{CopyHalo, FillGhosts, SelfFill, Side, UnpackHalo, pack_halo};
use crate::metrics::Extent;
use crate::transport::{Incoming, Outgoing, SingleProcess, Transport};

/// The boundary condition of one face of the global domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Boundary {
    /// Periodic (both faces of the direction must say so).
    Periodic,
    /// Zero-gradient outflow (transmissive) ghosts.
    Outflow,
    /// Ghosts (and boundary points) set by a user boundary condition after every
    /// Runge–Kutta stage (see [`crate::ramp`]); the halo fill leaves them alone.
    Imposed,
}

/// One block of the decomposition.
#[derive(Debug)]
pub struct Block {
    /// Index in the global block grid (x fastest).
    pub index: usize,
    /// Global interior index of the block's first interior point.
    pub offset: [usize; 3],
    /// Interior size.
    pub extent: Extent,
    /// Position in the block grid.
    pub position: [usize; 3],
    /// Conservative variables `[5, z, y, x]`.
    pub state: Tensor,
    /// Geometry `[11, z, y, x]` (see [`crate::geometry`]).
    pub geometry: Tensor,
}

/// The blocks of a global grid that this process owns.
pub struct Domain {
    /// Global interior size.
    pub global: Extent,
    /// Blocks per direction.
    pub grid: [usize; 3],
    /// Boundary conditions `[direction][side]`.
    pub boundaries: [[Boundary; 2]; 3],
    /// This process's blocks, in global index order.
    pub blocks: Vec<Block>,
    transport: Rc<dyn Transport>,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Domain")
            .field("global", &self.global)
            .field("grid", &self.grid)
            .field("boundaries", &self.boundaries)
            .field("blocks", &self.blocks)
            .field("rank", &self.transport.rank())
            .field("ranks", &self.transport.ranks())
            .finish()
    }
}

/// Splits `n` points into `parts` nearly equal runs, `(start, length)` each.
fn split(n: usize, parts: usize) -> Vec<(usize, usize)> {
    (0..parts)
        .map(|p| (p * n / parts, (p + 1) * n / parts - p * n / parts))
        .collect()
}

/// The message tag of the slab filling `side` of block `block` along `direction`.
fn tag(block: usize, direction: usize, side: Side) -> i32 {
    ((block * 3 + direction) * 2 + usize::from(side == Side::High)) as i32
}

impl Domain {
    /// Cuts global padded fields (`state`: 5 components, `geometry`: 11) into
    /// `grid[0] × grid[1] × grid[2]` blocks, all in this process.
    pub fn new(
        global: Extent,
        grid: [usize; 3],
        boundaries: [[Boundary; 2]; 3],
        state: &[f64],
        geometry: &[f64],
        device: &Device,
    ) -> CfdResult<Self> {
        Self::distributed(
            global,
            grid,
            boundaries,
            state,
            geometry,
            device,
            Rc::new(SingleProcess),
        )
    }

    /// As [`Domain::new`], keeping only the blocks `transport`'s rank owns: ranks own
    /// contiguous runs of block indices.
    pub fn distributed(
        global: Extent,
        grid: [usize; 3],
        boundaries: [[Boundary; 2]; 3],
        state: &[f64],
        geometry: &[f64],
        device: &Device,
        transport: Rc<dyn Transport>,
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
        let count = grid.iter().product::<usize>();
        if transport.ranks() > count {
            return Err(CfdError::Config(format!(
                "{} ranks for {count} blocks: every rank needs a block (raise PARALLEL_3D)",
                transport.ranks()
            )));
        }
        if state.len() != 5 * global.len_padded()
            || geometry.len() != GEOMETRY_COMPONENTS * global.len_padded()
        {
            return Err(CfdError::Config(
                "global fields do not match the grid".into(),
            ));
        }
        let cuts: Vec<Vec<(usize, usize)>> = (0..3).map(|d| split(dims[d], grid[d])).collect();
        let mut domain = Self {
            global,
            grid,
            boundaries,
            blocks: Vec::new(),
            transport,
        };
        for index in 0..count {
            if domain.owner(index) != domain.transport.rank() {
                continue;
            }
            let position = [
                index % grid[0],
                (index / grid[0]) % grid[1],
                index / (grid[0] * grid[1]),
            ];
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
            domain.blocks.push(Block {
                index,
                offset,
                extent,
                position,
                state: field(state, 5)?,
                geometry: field(geometry, GEOMETRY_COMPONENTS)?,
            });
        }
        Ok(domain)
    }

    /// The rank that owns block `index`.
    pub fn owner(&self, index: usize) -> usize {
        index * self.transport.ranks() / self.grid.iter().product::<usize>()
    }

    /// The run's transport.
    pub fn transport(&self) -> &dyn Transport {
        self.transport.as_ref()
    }

    fn block_at(&self, position: [usize; 3]) -> usize {
        (position[2] * self.grid[1] + position[1]) * self.grid[0] + position[0]
    }

    /// The global index of the neighbour of block `index` across a face, if shared.
    fn neighbour(&self, index: usize, direction: usize, side: Side) -> Option<usize> {
        let mut position = [
            index % self.grid[0],
            (index / self.grid[0]) % self.grid[1],
            index / (self.grid[0] * self.grid[1]),
        ];
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

    /// `[direction][low, high]`: which faces of `block` lie on a non-periodic edge of
    /// the global domain.
    pub fn boundary_faces(&self, block: &Block) -> [[bool; 2]; 3] {
        std::array::from_fn(|d| {
            let open = self.boundaries[d][0] != Boundary::Periodic;
            [
                open && block.position[d] == 0,
                open && block.position[d] + 1 == self.grid[d],
            ]
        })
    }

    fn local(&self, index: usize) -> Option<usize> {
        self.blocks.binary_search_by_key(&index, |b| b.index).ok()
    }

    /// Fills the ghost layers of one field of every local block (`field(local)` picks
    /// it by position in [`Domain::blocks`]): halos from neighbours, boundary
    /// conditions on the domain's faces.
    pub fn exchange(&self, field: impl Fn(usize) -> Tensor) -> CfdResult<()> {
        self.exchange_filling(field, None, &mut || Ok(()))
    }

    /// As [`Domain::exchange`], with zero-gradient ghosts on [`Boundary::Imposed`] faces
    /// too (for derived fields, such as the hybrid sensor, that no boundary condition sets).
    pub fn exchange_to_edges(&self, field: impl Fn(usize) -> Tensor) -> CfdResult<()> {
        self.exchange_filling(field, Some(SelfFill::Outflow), &mut || Ok(()))
    }

    /// As [`Domain::exchange`], running `during` while the slabs between ranks travel
    /// (`STREAM = 1`); `during` must not read ghost layers.
    pub fn exchange_during(
        &self,
        field: impl Fn(usize) -> Tensor,
        during: &mut dyn FnMut() -> CfdResult<()>,
    ) -> CfdResult<()> {
        self.exchange_filling(field, None, during)
    }

    fn exchange_filling(
        &self,
        field: impl Fn(usize) -> Tensor,
        imposed: Option<SelfFill>,
        during: &mut dyn FnMut() -> CfdResult<()>,
    ) -> CfdResult<()> {
        let mut outgoing = Vec::new();
        let mut incoming = Vec::new();
        let mut targets = Vec::new();
        for (local, block) in self.blocks.iter().enumerate() {
            let target = field(local);
            for direction in 0..3 {
                for (s, side) in [Side::Low, Side::High].into_iter().enumerate() {
                    match self.neighbour(block.index, direction, side) {
                        Some(neighbour) => match self.local(neighbour) {
                            Some(other) => {
                                target.inplace_op2(&field(other), &CopyHalo { direction, side })?
                            }
                            None => {
                                // The neighbour needs our layers next to this face for its opposite face.
                                let theirs = if side == Side::Low {
                                    Side::High
                                } else {
                                    Side::Low
                                };
                                let rank = self.owner(neighbour);
                                outgoing.push(Outgoing {
                                    rank,
                                    tag: tag(neighbour, direction, theirs),
                                    data: pack_halo(&target, direction, side)?,
                                });
                                let len = outgoing.last().map_or(0, |o| o.data.len());
                                incoming.push(Incoming {
                                    rank,
                                    tag: tag(block.index, direction, side),
                                    len,
                                });
                                targets.push((local, direction, side));
                            }
                        },
                        None => {
                            let fill = match self.boundaries[direction][s] {
                                Boundary::Periodic => SelfFill::Periodic,
                                Boundary::Outflow => SelfFill::Outflow,
                                Boundary::Imposed => match imposed {
                                    Some(fill) => fill,
                                    None => continue,
                                },
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
        if outgoing.is_empty() {
            return during();
        }
        let received = self
            .transport
            .exchange_during(outgoing, &incoming, during)?;
        for ((local, direction, side), data) in targets.into_iter().zip(received) {
            field(local).inplace_op1(&UnpackHalo {
                direction,
                side,
                data,
            })?;
        }
        Ok(())
    }

    /// A global `[components][nz][ny][nx]` interior array of one field, assembled from
    /// the blocks of every rank (each rank gets the whole array).
    pub fn gather(&self, field: impl Fn(&Block) -> &Tensor) -> CfdResult<Vec<f64>> {
        let [nx, ny, nz] = self.global.dims();
        // Every rank owns at least one block (checked when the domain was cut).
        let components = field(&self.blocks[0]).dim(0)?;
        // −0 is the exact identity of addition (x + −0 = x, also for x = −0), so the
        // sum over ranks below returns each owner's value bit for bit, signed zeros too.
        let mut out = vec![-0.0; components * nx * ny * nz];
        for block in &self.blocks {
            let values: Vec<f64> = field(block)
                .to_dtype(DType::F64)?
                .flatten_all()?
                .to_vec1()?;
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
        if self.transport.ranks() > 1 {
            self.transport.sum(&mut out)?;
        }
        Ok(out)
    }
}
