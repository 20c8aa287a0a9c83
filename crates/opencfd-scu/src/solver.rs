//! The time loop: right-hand side from the fused kernels, three-stage TVD RK3.

use crate::boundary::StateBoundary;
use crate::control::HybridZone;
use crate::domain::{Block, Boundary, Domain};
use crate::error::{CfdError, CfdResult};
use crate::gas::Gas;
use crate::geometry::geometry_values;
use crate::hybrid::{
    AmplifyAbove, HybridSensor, JamesonSensor, NormalizeGradient, PatchZone, PressureGradient,
    SmoothIndicator, StoreSensor, interior_sum,
};
use crate::kernels::inviscid::{InviscidFlux, InviscidScheme};
use crate::kernels::primitives::{PRIMITIVE_COMPONENTS, PointSet, Primitives};
use crate::kernels::region::Region;
use crate::kernels::runge_kutta::RungeKuttaStage;
use crate::kernels::viscous::{VISCOUS_COMPONENTS, ViscousDivergence, ViscousFlux};
use crate::metrics::{Coordinates, Extent, Metrics};
use crate::scheme::CentralDifference;
use crate::scheme::HybridStyle;
use crate::transport::{SingleProcess, Transport};
use std::rc::Rc;

use candle_core::{Device, Tensor};

/// What the solver integrates and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolverConfig {
    /// The gas and flow parameters.
    pub gas: Gas,
    /// The inviscid scheme.
    pub inviscid: InviscidScheme,
    /// The viscous scheme, or `None` for the Euler equations.
    pub viscous: Option<CentralDifference>,
    /// The Steger–Warming entropy fix `EPSL_SW`.
    pub entropy_fix: f64,
    /// The time step.
    pub dt: f64,
    /// Blocks per direction.
    pub blocks: [usize; 3],
    /// Boundary conditions `[direction][low, high]`.
    pub boundaries: [[Boundary; 2]; 3],
    /// `DIF_BOUND`: one-sided closures at the non-periodic domain faces
    /// `[direction][low, high]` (see [`InviscidFlux::closures`]).
    pub closures: [[bool; 2]; 3],
    /// `NON_REFLETION` per face (see [`InviscidFlux::non_reflecting`]).
    pub non_reflecting: [[bool; 2]; 3],
    /// `JAC_BOUND`: one-sided closures of the grid metrics per direction (`None`: in
    /// every non-periodic direction).
    pub jacobian_closures: Option<[bool; 3]>,
    /// `STREAM = 1`: compute the inner points while the halos travel (same result).
    pub overlap: bool,
}

impl SolverConfig {
    /// Checks the numbers a run cannot start with.
    pub fn check(&self) -> CfdResult<()> {
        if !(self.dt > 0.0 && self.dt.is_finite()) {
            return Err(CfdError::Config(format!(
                "time step {} must be positive",
                self.dt
            )));
        }
        if !(self.entropy_fix >= 0.0 && self.entropy_fix.is_finite()) {
            return Err(CfdError::Config(format!(
                "entropy fix {} must be non-negative",
                self.entropy_fix
            )));
        }
        if self.blocks.contains(&0) {
            return Err(CfdError::Config(format!(
                "blocks {:?} must be at least 1 per direction",
                self.blocks
            )));
        }
        Ok(())
    }

    /// Which directions are periodic.
    pub fn periodic(&self) -> [bool; 3] {
        self.boundaries.map(|faces| faces[0] == Boundary::Periodic)
    }
}

/// One zeroed `[components, z, y, x]` field per block.
fn scratch_fields(domain: &Domain, components: usize) -> CfdResult<Vec<Tensor>> {
    let fields = domain.blocks.iter().map(|b| {
        let [px, py, pz] = b.extent.padded();
        Tensor::zeros(
            (components, pz, py, px),
            candle_core::DType::F64,
            &Device::Cpu,
        )
    });
    Ok(fields.collect::<candle_core::Result<_>>()?)
}

/// Time, step count and the decomposed flow.
#[derive(Debug)]
pub struct Solver {
    /// The configuration.
    pub config: SolverConfig,
    /// The blocks.
    pub domain: Domain,
    /// The official spacings `h` per direction.
    pub spacing: [f64; 3],
    /// Simulated time.
    pub time: f64,
    /// Steps taken.
    pub steps: usize,
    viscous_fluxes: Vec<Tensor>,
    sensors: Vec<Tensor>,
    primitives: Vec<Tensor>,
    /// Scratch for the gradient sensor's smoothing.
    smoothing_input: Vec<Tensor>,
    zones: Vec<HybridZone>,
    boundary: Option<Rc<dyn StateBoundary>>,
}

impl Solver {
    /// A solver on grid `coordinates` whose initial state is `initial(x, y, z)` (conservative variables).
    pub fn new(
        config: SolverConfig,
        coordinates: &Coordinates,
        initial: impl Fn([f64; 3]) -> [f64; 5],
    ) -> CfdResult<Self> {
        Self::distributed(config, coordinates, initial, Rc::new(SingleProcess))
    }

    /// As [`Solver::new`] on one rank of a multi-process run: this rank keeps the
    /// blocks it owns and exchanges halos with the others through `transport`.
    pub fn distributed(
        config: SolverConfig,
        coordinates: &Coordinates,
        initial: impl Fn([f64; 3]) -> [f64; 5],
        transport: Rc<dyn Transport>,
    ) -> CfdResult<Self> {
        let len = coordinates.extent.len_padded();
        let mut state = vec![0.0; 5 * len];
        for at in 0..len {
            let q = initial([coordinates.x[at], coordinates.y[at], coordinates.z[at]]);
            for (c, value) in q.into_iter().enumerate() {
                state[c * len + at] = value;
            }
        }
        Self::from_state(config, coordinates, &state, transport)
    }

    /// As [`Solver::distributed`] from the conservative variables of the whole padded
    /// grid, `[5][z][y][x]` (ghost values are overwritten by the first halo exchange or
    /// boundary condition).
    pub fn from_state(
        config: SolverConfig,
        coordinates: &Coordinates,
        state: &[f64],
        transport: Rc<dyn Transport>,
    ) -> CfdResult<Self> {
        config.check()?;
        let periodic = config.periodic();
        let jacobian_closures = config.jacobian_closures.unwrap_or(periodic.map(|p| !p));
        let metrics = Metrics::compute(coordinates, periodic, jacobian_closures)?;
        let global = coordinates.extent;
        if state.len() != 5 * global.len_padded() {
            return Err(CfdError::Config(format!(
                "initial state has {} values, the padded grid needs {}",
                state.len(),
                5 * global.len_padded()
            )));
        }
        let domain = Domain::distributed(
            global,
            config.blocks,
            config.boundaries,
            state,
            &geometry_values(&metrics),
            &Device::Cpu,
            transport,
        )?;
        let viscous_fluxes = match config.viscous {
            Some(_) => scratch_fields(&domain, VISCOUS_COMPONENTS)?,
            None => Vec::new(),
        };
        let sensors = match config.inviscid {
            InviscidScheme::Hybrid(_) => scratch_fields(&domain, 1)?,
            InviscidScheme::Fixed(_) => Vec::new(),
        };
        let primitives = scratch_fields(&domain, PRIMITIVE_COMPONENTS)?;
        let smoothing_input = match config.inviscid {
            InviscidScheme::Hybrid(sensor) if sensor.smoothing => scratch_fields(&domain, 1)?,
            _ => Vec::new(),
        };
        Ok(Self {
            config,
            spacing: global.spacing(),
            domain,
            time: 0.0,
            steps: 0,
            viscous_fluxes,
            sensors,
            primitives,
            smoothing_input,
            zones: Vec::new(),
            boundary: None,
        })
    }

    /// `HY_ZONE` boxes where the gradient sensor (`HY_STYLE = 1`) takes a fixed value.
    pub fn set_sensor_zones(&mut self, zones: Vec<HybridZone>) {
        self.zones = zones;
    }

    /// Sets boundary points and ghosts with `boundary` now and after every Runge–Kutta
    /// stage from here on (the official `OCFD_bc`).
    pub fn set_boundary(&mut self, boundary: Rc<dyn StateBoundary>) -> CfdResult<()> {
        self.boundary = Some(boundary);
        self.apply_boundary()
    }

    fn apply_boundary(&self) -> CfdResult<()> {
        if let Some(boundary) = &self.boundary {
            for block in &self.domain.blocks {
                boundary.apply(block, &self.domain, self.time)?;
            }
        }
        Ok(())
    }

    /// `[direction][low, high]`: the faces of `block` where `flags` (per domain face) apply.
    fn on_block(&self, block: &Block, flags: [[bool; 2]; 3]) -> [[bool; 2]; 3] {
        let edges = self.domain.boundary_faces(block);
        std::array::from_fn(|d| [flags[d][0] && edges[d][0], flags[d][1] && edges[d][1]])
    }

    /// The global grid size.
    pub fn extent(&self) -> Extent {
        self.domain.global
    }

    /// The hybrid scheme's sensor of every block, from the current primitives, into
    /// the geometry's sensor slot.
    fn update_sensors(&self, hybrid: HybridSensor) -> CfdResult<()> {
        let blocks = &self.domain.blocks;
        match hybrid.style {
            HybridStyle::Jameson => {
                for (sensor, primitives) in self.sensors.iter().zip(&self.primitives) {
                    sensor.inplace_op2(primitives, &JamesonSensor)?;
                }
            }
            HybridStyle::Gradient => {
                // The official code differentiates with the viscous scheme (CD6 for Euler runs).
                let scheme = self.config.viscous.unwrap_or(CentralDifference::Cd6);
                let mut sums = vec![0.0; self.domain.grid.iter().product()];
                for ((block, sensor), primitives) in
                    blocks.iter().zip(&self.sensors).zip(&self.primitives)
                {
                    let op = PressureGradient {
                        scheme,
                        spacing: self.spacing,
                        closures: self.on_block(block, self.config.closures),
                    };
                    sensor.inplace_op3(primitives, &block.geometry, &op)?;
                    sums[block.index] = interior_sum(sensor)?;
                }
                // Block sums added in block order, so every rank gets the same mean (another
                // decomposition rounds it differently, hence round-off agreement only).
                self.domain.transport().sum(&mut sums)?;
                let mean = sums.iter().sum::<f64>() / self.domain.global.len_interior() as f64;
                // Uniform pressure (the official code divides by zero): the smooth class.
                let scale = if mean > 0.0 { 1.0 / mean } else { 0.0 };
                let normalize = NormalizeGradient {
                    scale,
                    threshold: hybrid.thresholds[1],
                };
                for (sensor, primitives) in self.sensors.iter().zip(&self.primitives) {
                    sensor.inplace_op2(primitives, &normalize)?;
                }
                if hybrid.smoothing {
                    let amplify = AmplifyAbove {
                        threshold: hybrid.thresholds[1],
                    };
                    for (input, sensor) in self.smoothing_input.iter().zip(&self.sensors) {
                        input.inplace_op2(sensor, &amplify)?;
                    }
                    self.domain
                        .exchange_to_edges(|b| self.smoothing_input[b].clone())?;
                    for ((block, sensor), input) in
                        blocks.iter().zip(&self.sensors).zip(&self.smoothing_input)
                    {
                        let edges = self.domain.boundary_faces(block);
                        sensor.inplace_op2(input, &SmoothIndicator { edges })?;
                    }
                }
                for zone in &self.zones {
                    for (block, sensor) in blocks.iter().zip(&self.sensors) {
                        sensor.inplace_op1(&PatchZone {
                            zone,
                            offset: block.offset,
                        })?;
                    }
                }
            }
        }
        // Faces next to a domain edge read the ghost just outside: zero-gradient there,
        // also on faces whose flow a boundary condition sets.
        self.domain.exchange_to_edges(|b| self.sensors[b].clone())?;
        for (block, sensor) in blocks.iter().zip(&self.sensors) {
            block.geometry.inplace_op2(sensor, &StoreSensor)?;
        }
        Ok(())
    }

    /// `∂U/∂t` of every block from the current state (ghosts filled here); the hybrid
    /// sensor is updated at the first Runge–Kutta stage only, as officially. With the
    /// overlap (`STREAM = 1`) the inner points are computed while the halos travel; the
    /// hybrid sensor's first stage needs the halos first and runs without it.
    fn right_hand_sides(&self, stage: usize) -> CfdResult<Vec<Tensor>> {
        let blocks = &self.domain.blocks;
        let rhs = blocks
            .iter()
            .map(|b| b.state.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let sensor = match self.config.inviscid {
            InviscidScheme::Hybrid(hybrid) if stage == 0 => Some(hybrid),
            _ => None,
        };
        let overlap = self.config.overlap && sensor.is_none();
        if overlap {
            self.update_primitives(PointSet::Interior)?;
            self.domain
                .exchange_during(|b| blocks[b].state.clone(), &mut || {
                    self.fluxes(&rhs, Region::Inner)
                })?;
            self.update_primitives(PointSet::Ghosts)?;
            self.fluxes(&rhs, Region::Outer)?;
        } else {
            self.domain.exchange(|b| blocks[b].state.clone())?;
            self.update_primitives(PointSet::All)?;
            if let Some(hybrid) = sensor {
                self.update_sensors(hybrid)?;
            }
            self.fluxes(&rhs, Region::All)?;
        }
        if let Some(scheme) = self.config.viscous {
            let fluxes = |b: usize| self.viscous_fluxes[b].clone();
            if overlap {
                self.domain.exchange_during(fluxes, &mut || {
                    self.viscous_divergence(&rhs, scheme, Region::Inner)
                })?;
                self.viscous_divergence(&rhs, scheme, Region::Outer)?;
            } else {
                self.domain.exchange(fluxes)?;
                self.viscous_divergence(&rhs, scheme, Region::All)?;
            }
        }
        Ok(rhs)
    }

    fn update_primitives(&self, points: PointSet) -> CfdResult<()> {
        let op = Primitives {
            gas: self.config.gas,
            points,
        };
        for (block, primitives) in self.domain.blocks.iter().zip(&self.primitives) {
            primitives.inplace_op2(&block.state, &op)?;
        }
        Ok(())
    }

    /// Adds the inviscid flux differences of `region`'s points to `rhs` and writes their
    /// viscous fluxes.
    fn fluxes(&self, rhs: &[Tensor], region: Region) -> CfdResult<()> {
        let blocks = &self.domain.blocks;
        let dims = self.domain.global.dims();
        for ((block, primitives), out) in blocks.iter().zip(&self.primitives).zip(rhs) {
            let closures = self.on_block(block, self.config.closures);
            let non_reflecting = self.on_block(block, self.config.non_reflecting);
            for direction in (0..3).filter(|&d| dims[d] > 1) {
                let op = InviscidFlux {
                    direction,
                    scheme: self.config.inviscid,
                    gamma: self.config.gas.gamma,
                    entropy_fix: self.config.entropy_fix,
                    spacing: self.spacing[direction],
                    closures: closures[direction],
                    non_reflecting: non_reflecting[direction],
                    region,
                };
                out.inplace_op3(primitives, &block.geometry, &op)?;
            }
        }
        if let Some(scheme) = self.config.viscous {
            for ((block, fluxes), primitives) in blocks
                .iter()
                .zip(&self.viscous_fluxes)
                .zip(&self.primitives)
            {
                let flux = ViscousFlux {
                    gas: self.config.gas,
                    scheme,
                    spacing: self.spacing,
                    closures: self.on_block(block, self.config.closures),
                    region,
                };
                fluxes.inplace_op3(primitives, &block.geometry, &flux)?;
            }
        }
        Ok(())
    }

    /// Adds the divergence of the viscous fluxes at `region`'s points to `rhs`.
    fn viscous_divergence(
        &self,
        rhs: &[Tensor],
        scheme: CentralDifference,
        region: Region,
    ) -> CfdResult<()> {
        let blocks = &self.domain.blocks;
        for ((block, fluxes), out) in blocks.iter().zip(&self.viscous_fluxes).zip(rhs) {
            let divergence = ViscousDivergence {
                scheme,
                spacing: self.spacing,
                closures: self.on_block(block, self.config.closures),
                region,
            };
            out.inplace_op3(fluxes, &block.geometry, &divergence)?;
        }
        Ok(())
    }

    /// One time step of TVD RK3.
    pub fn step(&mut self) -> CfdResult<()> {
        let dt = self.config.dt;
        let start: Vec<Tensor> = self
            .domain
            .blocks
            .iter()
            .map(|b| b.state.copy())
            .collect::<candle_core::Result<_>>()?;
        for stage in 0..3 {
            let rhs = self.right_hand_sides(stage)?;
            let op = RungeKuttaStage { stage, dt };
            for ((block, start), rhs) in self.domain.blocks.iter().zip(&start).zip(&rhs) {
                block.state.inplace_op3(start, rhs, &op)?;
            }
            // The official code keeps the step's start time through its stages.
            self.apply_boundary()?;
        }
        self.time += dt;
        self.steps += 1;
        Ok(())
    }

    /// Steps until `end_time` (the last step shortened to land on it exactly).
    pub fn run_until(&mut self, end_time: f64) -> CfdResult<()> {
        let full_dt = self.config.dt;
        while self.time < end_time - 1e-12 * end_time.abs().max(1.0) {
            self.config.dt = full_dt.min(end_time - self.time);
            let result = self.step();
            self.config.dt = full_dt;
            result?;
        }
        Ok(())
    }

    /// The conservative variables of the whole grid, `[5][nz][ny][nx]`.
    pub fn conservative(&self) -> CfdResult<Vec<f64>> {
        self.domain.gather(|b| &b.state)
    }
}
