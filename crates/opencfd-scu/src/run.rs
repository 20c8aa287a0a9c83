//! `opencfd-scu run`: a control file's flow, with statistics, field files and a summary.
//!
//! The control file is the official `opencfd-scu.in` ([`Control`]). Like the official
//! program, a run reads its other inputs from one directory ([`RunOptions::inputs`],
//! by default the control file's): the grid from `OCFD3d-Mesh.dat` when that file is
//! there (otherwise a uniform Cartesian box, [`RunOptions::box_lengths`]), the initial
//! field from `opencfd.dat` when `INIT_STAT = 1`, and the compression ramp's inflow
//! profile from `flow1d-inlet.dat` (`IBC = 108`, see [`crate::ramp`]). Keys whose
//! features are not implemented yet are refused by name before anything runs.

use std::path::{Path, PathBuf};

use sparse_repro::run_dir::write_atomic;
use std::rc::Rc;
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::GHOST;
use crate::cases::taylor_green_initial;
use crate::control::{Control, HybridIndicator, InitialState, InviscidSchemeName, StreamMode};
use crate::domain::Boundary;
use crate::error::{CfdError, CfdResult};
use crate::formats::{FlowField, InletProfile, read_mesh};
use crate::gas::Gas;
use crate::hybrid::HybridSensor;
use crate::kernels::inviscid::InviscidScheme;
use crate::metrics::{Coordinates, Extent};
use crate::ramp::{COMPRESSION_RAMP_IBC, CompressionRamp, RampParameters};
use crate::scheme::{HybridStyle, Omp6Variant, Reconstruction};
use crate::solver::{Solver, SolverConfig};
use crate::transport::{SingleProcess, Transport};

/// The initial field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum InitialField {
    /// What `INIT_STAT` says (0: uniform ρ = u = T = 1).
    Control,
    /// The Taylor–Green vortex of the verification suite (box `[−π, π]³`).
    TaylorGreen,
}

/// What the control file does not say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Box lengths of the uniform Cartesian grid.
    pub box_lengths: [f64; 3],
    /// Lower corner of the box.
    pub origin: [f64; 3],
    /// The initial field.
    pub initial: InitialField,
    /// Where the input files are (`OCFD3d-Mesh.dat`, `opencfd.dat`, `flow1d-inlet.dat`).
    pub inputs: PathBuf,
    /// Where statistics, fields and the summary go.
    pub out: PathBuf,
}

/// The official grid file name.
pub const MESH_FILE: &str = "OCFD3d-Mesh.dat";
/// The official initial (restart) flow file name.
pub const INITIAL_FLOW_FILE: &str = "opencfd.dat";
/// The official inflow profile file name of the compression ramp.
pub const INLET_FILE: &str = "flow1d-inlet.dat";

/// The summary `run.json` of a finished run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// The control file as run.
    pub control: Control,
    /// The options.
    pub options: RunOptions,
    /// Steps taken.
    pub steps: usize,
    /// Simulated time reached.
    pub time: f64,
    /// Wall-clock seconds of the time loop.
    pub seconds: f64,
    /// Nanoseconds per grid point per Runge–Kutta stage.
    pub nanoseconds_per_point_stage: f64,
    /// Field files written.
    pub fields: Vec<PathBuf>,
    /// Where the grid came from: the mesh file, or `box` for the uniform box.
    pub grid: String,
}

fn unsupported(key: &str, feature: &str) -> CfdError {
    CfdError::Unsupported {
        key: key.into(),
        feature: feature.into(),
    }
}

/// The solver configuration of a control file, or an error naming the first key
/// that asks for something not implemented.
pub fn solver_config(control: &Control) -> CfdResult<SolverConfig> {
    if control.ibc != 0 && control.ibc != COMPRESSION_RAMP_IBC {
        return Err(unsupported(
            "IBC",
            &format!("the user boundary condition {}", control.ibc),
        ));
    }
    if control.characteristic {
        return Err(unsupported(
            "CHARTERIC",
            "characteristic-variable reconstruction",
        ));
    }
    if !control.filters.is_empty() {
        return Err(unsupported("FILTER_NPARA", "filtering"));
    }
    if !control.analyses.is_empty() {
        return Err(unsupported("ANA_EVENT", "on-line analysis"));
    }
    let inviscid = match control.inviscid {
        InviscidSchemeName::Up7 => InviscidScheme::Fixed(Reconstruction::Up7),
        InviscidSchemeName::Weno5 => InviscidScheme::Fixed(Reconstruction::Weno5),
        InviscidSchemeName::Weno7 => InviscidScheme::Fixed(Reconstruction::Weno7),
        InviscidSchemeName::Weno7Symbo => InviscidScheme::Fixed(Reconstruction::Weno7Symbo),
        InviscidSchemeName::Weno7SymboLim => InviscidScheme::Fixed(Reconstruction::Weno7SymboLim),
        InviscidSchemeName::Nnd2 => InviscidScheme::Fixed(Reconstruction::Nnd2),
        InviscidSchemeName::Omp6Hr => InviscidScheme::Fixed(Reconstruction::Omp6(Omp6Variant::Hr)),
        InviscidSchemeName::Omp6Ld => InviscidScheme::Fixed(Reconstruction::Omp6(Omp6Variant::Ld)),
        InviscidSchemeName::Omp6Cd8 => {
            InviscidScheme::Fixed(Reconstruction::Omp6(Omp6Variant::Cd8))
        }
        InviscidSchemeName::HybridAuto => {
            let hybrid = control.active_hybrid().ok_or_else(|| {
                CfdError::Config("HY_DP_INTV: the hybrid scheme needs its settings".into())
            })?;
            InviscidScheme::Hybrid(HybridSensor {
                thresholds: hybrid.thresholds,
                style: match hybrid.indicator {
                    HybridIndicator::PressureGradient => HybridStyle::Gradient,
                    HybridIndicator::Jameson => HybridStyle::Jameson,
                },
                smoothing: hybrid.smooth_indicator,
            })
        }
    };
    let viscous = control.viscous;
    let mut boundaries = control.periodic.map(|periodic| {
        if periodic {
            [Boundary::Periodic; 2]
        } else {
            [Boundary::Outflow; 2]
        }
    });
    if control.ibc == COMPRESSION_RAMP_IBC {
        // Checked here so that a bad BC_NPARA or BC_RPARA stops the run before it starts.
        RampParameters::from_control(control)?;
        if control.periodic[0] || control.periodic[1] {
            return Err(CfdError::Config(
                "IPERIODIC: the compression ramp (IBC = 108) needs x and y non-periodic".into(),
            ));
        }
        // Inflow and wall set by the condition; the outflow and upper faces close with
        // one-sided stencils (or zero-gradient ghosts).
        boundaries[0][0] = Boundary::Imposed;
        boundaries[1][0] = Boundary::Imposed;
    }
    let pairs = |flags: [bool; 6]| std::array::from_fn(|d| [flags[2 * d], flags[2 * d + 1]]);
    let config = SolverConfig {
        gas: Gas::new(
            control.gamma,
            control.ama,
            control.re,
            control.pr,
            control.t_ref,
        )?,
        inviscid,
        viscous: Some(viscous),
        entropy_fix: control.epsl_sw,
        dt: control.dt,
        blocks: control.blocks,
        boundaries,
        closures: pairs(control.dif_bound),
        non_reflecting: pairs(control.non_reflection),
        jacobian_closures: Some(std::array::from_fn(|d| {
            control.jac_bound[d] || !control.periodic[d]
        })),
        overlap: control.stream == StreamMode::Overlapped,
    };
    config.check()?;
    Ok(config)
}

/// Writes density, velocity and temperature of the whole grid as a safetensors file
/// (`[nz, ny, nx]` f64 arrays named `density`, `u`, `v`, `w`, `temperature`; the
/// metadata key `opencfd-scu` holds `{"step": …, "time": …}` as JSON).
/// Every rank of a multi-process run must call it (the flow is gathered); only those
/// with `write` set write the file.
pub fn write_fields(solver: &Solver, path: &Path, write: bool) -> CfdResult<()> {
    let Extent { nx, ny, nz } = solver.extent();
    let cells = nx * ny * nz;
    let q = solver.conservative()?;
    if !write {
        return Ok(());
    }
    let gas = solver.config.gas;
    let mut columns: [Vec<f64>; 5] = std::array::from_fn(|_| Vec::with_capacity(cells));
    for at in 0..cells {
        let (density, velocity, pressure) = gas.primitive([
            q[at],
            q[cells + at],
            q[2 * cells + at],
            q[3 * cells + at],
            q[4 * cells + at],
        ]);
        columns[0].push(density);
        columns[1].push(velocity[0]);
        columns[2].push(velocity[1]);
        columns[3].push(velocity[2]);
        columns[4].push(gas.temperature(density, pressure));
    }
    let names = ["density", "u", "v", "w", "temperature"];
    let tensors = names
        .iter()
        .zip(columns)
        .map(|(name, values)| {
            Ok((
                name.to_string(),
                Tensor::from_vec(values, (nz, ny, nx), &Device::Cpu)?,
            ))
        })
        .collect::<CfdResult<Vec<_>>>()?;
    // One metadata key: safetensors keeps metadata in a hash map, whose order (and so
    // the file's bytes) would change from run to run with two.
    let state = serde_json::json!({ "step": solver.steps, "time": solver.time }).to_string();
    let metadata = [("opencfd-scu".to_string(), state)].into_iter().collect();
    let bytes =
        safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
            .map_err(|e| CfdError::Config(format!("{}: {e}", path.display())))?;
    Ok(write_atomic(path, &bytes)?)
}

/// The conservative variables of the padded grid, `[5][z][y][x]`, from a flow file's
/// primitive variables (ghosts zero).
fn padded_state(flow: &FlowField, gas: Gas) -> Vec<f64> {
    let extent = flow.extent;
    let Extent { nx, ny, nz } = extent;
    let len = extent.len_padded();
    let mut state = vec![0.0; 5 * len];
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let from = (k * ny + j) * nx + i;
                let at = extent.index(i + GHOST, j + GHOST, k + GHOST);
                let density = flow.density[from];
                let q = gas.conservative(
                    density,
                    [flow.u[from], flow.v[from], flow.w[from]],
                    gas.pressure(density, flow.temperature[from]),
                );
                for (c, value) in q.into_iter().enumerate() {
                    state[c * len + at] = value;
                }
            }
        }
    }
    state
}

/// Box-averaged statistics of the current flow: `(kinetic energy per mass, mean density)`.
pub fn box_statistics(solver: &Solver) -> CfdResult<(f64, f64)> {
    let Extent { nx, ny, nz } = solver.extent();
    let cells = nx * ny * nz;
    let q = solver.conservative()?;
    let (mut energy, mut mass) = (0.0, 0.0);
    for at in 0..cells {
        energy += 0.5
            * (q[cells + at].powi(2) + q[2 * cells + at].powi(2) + q[3 * cells + at].powi(2))
            / q[at];
        mass += q[at];
    }
    Ok((energy / mass, mass / cells as f64))
}

/// Runs a control file to its `END_TIME`, writing `statistics.csv` every `KSTEP_SHOW`
/// steps, a field file every `KSTEP_SAVE` steps and at the end, and `run.json`.
pub fn run(
    control: &Control,
    options: &RunOptions,
    show: impl FnMut(&str),
) -> CfdResult<RunSummary> {
    run_on(control, options, Rc::new(SingleProcess), show)
}

/// As [`run`] on one rank of a multi-process run: every rank advances its blocks, rank 0
/// writes the files and shows progress.
pub fn run_on(
    control: &Control,
    options: &RunOptions,
    transport: Rc<dyn Transport>,
    mut show: impl FnMut(&str),
) -> CfdResult<RunSummary> {
    let writer = transport.rank() == 0;
    let config = solver_config(control)?;
    let [nx, ny, nz] = control.grid;
    let extent = Extent::new(nx, ny, nz);
    let mesh = options.inputs.join(MESH_FILE);
    if control.ibc == COMPRESSION_RAMP_IBC && !mesh.is_file() {
        return Err(CfdError::Config(format!(
            "IBC = 108 runs on the ramp's grid file {}, which is missing (write it with \
             `opencfd-scu ramp-inputs`)",
            mesh.display()
        )));
    }
    let (grid, grid_source) = if mesh.is_file() {
        (
            read_mesh(&mesh, extent, control.periodic)?,
            mesh.display().to_string(),
        )
    } else {
        let grid = Coordinates::uniform(
            extent,
            options.box_lengths,
            options.origin,
            control.periodic,
        );
        (grid, "box".to_string())
    };
    let gas = config.gas;
    let mut solver = match (options.initial, control.init_stat) {
        (InitialField::TaylorGreen, InitialState::ReadFile) => {
            return Err(CfdError::Config(
                "INIT_STAT = 1 reads opencfd.dat: drop --initial taylor-green".into(),
            ));
        }
        (InitialField::TaylorGreen, _) => {
            Solver::distributed(config, &grid, taylor_green_initial(gas), transport)?
        }
        (InitialField::Control, InitialState::ReadFile) => {
            let flow = FlowField::read(&options.inputs.join(INITIAL_FLOW_FILE), extent)?;
            let mut solver =
                Solver::from_state(config, &grid, &padded_state(&flow, gas), transport)?;
            solver.time = flow.time;
            solver.steps = flow.step as usize;
            solver
        }
        (InitialField::Control, InitialState::Uniform) => {
            let uniform = gas.conservative(1.0, [1.0, 0.0, 0.0], gas.pressure(1.0, 1.0));
            Solver::distributed(config, &grid, |_| uniform, transport)?
        }
    };
    if let Some(hybrid) = control.active_hybrid() {
        solver.set_sensor_zones(hybrid.active_zones().cloned().collect());
    }
    if control.ibc == COMPRESSION_RAMP_IBC {
        let parameters = RampParameters::from_control(control)?;
        let inlet = if parameters.inlet_from_file {
            InletProfile::read(&options.inputs.join(INLET_FILE), ny)?
        } else {
            InletProfile::free_stream(
                (0..ny)
                    .map(|j| grid.point(GHOST, j + GHOST, GHOST)[1])
                    .collect(),
            )
        };
        let ramp = CompressionRamp::new(parameters, inlet, gas, &grid)?;
        solver.set_boundary(Rc::new(ramp))?;
    }
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(|source| CfdError::Io {
        path: out.clone(),
        source,
    })?;
    let mut statistics = String::from("step,time,kinetic_energy,mean_density\n");
    let mut fields = Vec::new();
    let timer = Instant::now();
    // END_TIME ≤ 0 runs one step, as the official code does.
    let end_time = control.end_time;
    let first_step = solver.steps;
    loop {
        solver.step()?;
        let steps = solver.steps as u64;
        let done = solver.time >= end_time - 1e-12 * end_time.abs().max(1.0);
        if steps.is_multiple_of(control.kstep_show) || done {
            let (energy, density) = box_statistics(&solver)?;
            if !energy.is_finite() {
                return Err(CfdError::Config(format!(
                    "the flow diverged at step {steps} (t = {}): reduce DT",
                    solver.time
                )));
            }
            statistics.push_str(&format!(
                "{steps},{:e},{energy:e},{density:e}\n",
                solver.time
            ));
            show(&format!(
                "step {steps:>7}  t = {:<12.6}  kinetic energy = {energy:.8e}",
                solver.time
            ));
        }
        if steps.is_multiple_of(control.kstep_save) || done {
            // Every rank takes part in the gather; rank 0 writes.
            let path = out.join(format!("flow-{steps:08}.safetensors"));
            write_fields(&solver, &path, writer)?;
            fields.push(path);
        }
        if done || control.test {
            break;
        }
    }
    let seconds = timer.elapsed().as_secs_f64();
    if writer {
        write_atomic(&out.join("statistics.csv"), statistics.as_bytes())?;
    }
    let summary = RunSummary {
        control: control.clone(),
        options: options.clone(),
        steps: solver.steps,
        time: solver.time,
        seconds,
        nanoseconds_per_point_stage: seconds * 1e9
            / (3.0 * (solver.steps - first_step) as f64 * (nx * ny * nz) as f64),
        fields,
        grid: grid_source,
    };
    let json = serde_json::to_string_pretty(&summary)
        .map_err(|e| CfdError::Config(format!("run.json: {e}")))?;
    if writer {
        write_atomic(&out.join("run.json"), json.as_bytes())?;
    }
    Ok(summary)
}
