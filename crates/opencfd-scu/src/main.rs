//! `opencfd-scu`: run a control file, or the verification suite.

use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use opencfd_scu::control::Control;
use opencfd_scu::formats::{InletProfile, write_mesh_interior};
use opencfd_scu::ramp::{RampGridSpec, initial_field};
use opencfd_scu::run::{INITIAL_FLOW_FILE, InitialField, MESH_FILE, RunOptions, run_on};
use opencfd_scu::transport::{SingleProcess, Transport};
use opencfd_scu::verify::{SuiteSize, run_suite};

#[derive(Parser)]
#[command(
    name = "opencfd-scu",
    version,
    about = "OpenCFD-SCU finite-difference DNS solver on candle"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the flow of an official `opencfd-scu.in` control file.
    Run {
        /// The control file.
        control: PathBuf,
        /// Where statistics.csv, the field files and run.json go.
        #[arg(long, default_value = "runs/opencfd-scu/run")]
        out: PathBuf,
        /// Box lengths of the uniform Cartesian grid.
        #[arg(long, num_args = 3, value_names = ["LX", "LY", "LZ"], default_values_t = [std::f64::consts::TAU; 3])]
        box_lengths: Vec<f64>,
        /// Lower corner of the box.
        #[arg(long, num_args = 3, value_names = ["X0", "Y0", "Z0"], default_values_t = [-std::f64::consts::PI; 3], allow_negative_numbers = true)]
        origin: Vec<f64>,
        /// The initial field.
        #[arg(long, value_enum, default_value = "control")]
        initial: InitialField,
        /// Where OCFD3d-Mesh.dat, opencfd.dat and flow1d-inlet.dat are read from
        /// (default: the control file's directory).
        #[arg(long)]
        inputs: Option<PathBuf>,
        /// One rank of an MPI run (start with `mpirun -n R`; PARALLEL_3D blocks are
        /// shared among the ranks).
        #[cfg(feature = "mpi")]
        #[arg(long)]
        mpi: bool,
    },
    /// Writes the compression ramp's grid (OCFD3d-Mesh.dat) and initial field
    /// (opencfd.dat) as the official benchmark_comp generators do.
    RampInputs {
        /// The generator's input, `swept-compression-grid.in`.
        grid: PathBuf,
        /// The inflow profile `flow1d-inlet.dat` (one line per wall-normal point); without
        /// it the initial field is the uniform free stream.
        #[arg(long)]
        inlet: Option<PathBuf>,
        /// Where the two files go.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Runs the verification suite and writes report.json, report.md and SVG plots.
    Verify {
        /// The quick suite (under 15 minutes on 2 cores); the default is the full one.
        #[arg(long, conflicts_with = "size")]
        quick: bool,
        /// Suite size, for `smoke` runs in tests.
        #[arg(long, value_enum)]
        size: Option<SuiteSize>,
        /// Only these cases (repeatable).
        #[arg(long = "case")]
        cases: Vec<String>,
        /// Where the report goes.
        #[arg(long, default_value = "runs/opencfd-scu/verify")]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Run {
            control,
            out,
            box_lengths,
            origin,
            initial,
            inputs,
            #[cfg(feature = "mpi")]
                mpi: mpi_run,
        } => {
            let parsed = Control::from_file(&control)?;
            let inputs = inputs.unwrap_or_else(|| match control.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => PathBuf::from("."),
            });
            let options = RunOptions {
                box_lengths: [box_lengths[0], box_lengths[1], box_lengths[2]],
                origin: [origin[0], origin[1], origin[2]],
                initial,
                inputs,
                out,
            };
            #[cfg(feature = "mpi")]
            let transport: Rc<dyn Transport> = if mpi_run {
                Rc::new(opencfd_scu::mpi_transport::MpiTransport::initialize()?)
            } else {
                Rc::new(SingleProcess)
            };
            #[cfg(not(feature = "mpi"))]
            let transport: Rc<dyn Transport> = Rc::new(SingleProcess);
            let rank = transport.rank();
            let summary = run_on(&parsed, &options, transport, |line| eprintln!("{line}"))?;
            if rank != 0 {
                return Ok(());
            }
            println!(
                "{} steps to t = {} in {:.1} s ({:.0} ns per point per stage); results in {}",
                summary.steps,
                summary.time,
                summary.seconds,
                summary.nanoseconds_per_point_stage,
                options.out.display()
            );
            Ok(())
        }
        Command::RampInputs { grid, inlet, out } => {
            let spec = RampGridSpec::read(&grid)?;
            let extent = spec.extent;
            let [x, y, z] = spec.coordinates();
            let profile = match &inlet {
                Some(path) => InletProfile::read(path, extent.ny)?,
                None => InletProfile::free_stream(
                    y[..extent.ny * extent.nx]
                        .iter()
                        .step_by(extent.nx)
                        .copied()
                        .collect(),
                ),
            };
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let mesh = out.join(MESH_FILE);
            write_mesh_interior(&mesh, extent, &x, &y, &z)?;
            let flow = out.join(INITIAL_FLOW_FILE);
            initial_field(extent, &profile)?.write(&flow)?;
            println!(
                "{} × {} × {} grid in {}, initial field in {}",
                extent.nx,
                extent.ny,
                extent.nz,
                mesh.display(),
                flow.display()
            );
            Ok(())
        }
        Command::Verify {
            quick,
            size,
            cases,
            out,
        } => {
            let size = size.unwrap_or(if quick {
                SuiteSize::Quick
            } else {
                SuiteSize::Full
            });
            let report = run_suite(size, &cases, |case| {
                let passed = case.claims.iter().filter(|c| c.passed).count();
                eprintln!(
                    "{:<14} {passed}/{} checks pass ({:.1} s)",
                    case.name,
                    case.claims.len(),
                    case.seconds
                );
                for claim in &case.claims {
                    eprintln!("  {} {}", claim.status(), claim.statement);
                }
            })?;
            report
                .write_to_dir(&out)
                .with_context(|| format!("writing the report to {}", out.display()))?;
            let (passed, total) = report.tally();
            println!(
                "{passed}/{total} checks pass; report in {}",
                out.join("report.md").display()
            );
            if !report.all_passed() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
