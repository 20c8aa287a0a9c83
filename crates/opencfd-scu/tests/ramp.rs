//! The compression ramp (`IBC = 108`) end to end through the binary: the official
//! benchmark_comp control file's settings on a small grid.

use std::path::Path;
use std::process::Command;

use candle_core::{Device, Tensor};
use opencfd_scu::formats::{InletProfile, read_mesh_interior};
use opencfd_scu::metrics::Extent;

const BINARY: &str = env!("CARGO_BIN_EXE_opencfd-scu");
const EXTENT: Extent = Extent {
    nx: 16,
    ny: 24,
    nz: 12,
};
const WALL_TEMPERATURE: f64 = 2.84;

/// The generator input: the benchmark's geometry with fewer points.
const GRID: &str = "points nx ny nz, ranks\n16 24 12 1\n\
    streamwise points: inlet corner buffer\n6 8 2\n\
    dx_inlet Lx_inlet Lx_corner buffer_stretch\n0.05 300. 50. 1.01\n\
    sweep and ramp angles\n0. 24.\n\
    height wall_spacing span\n35. 0.05 14.\n\
    output flags\n0 0 0\n";

/// The benchmark's control settings (WENO7_SYMBO, CD8, one-sided closures at the outflow
/// and upper faces, non-reflecting there, isothermal wall with blowing and suction).
fn control(blocks: &str, stream: u8) -> String {
    format!(
        "GRID_3D = 16 24 12\nPARALLEL_3D = {blocks}\nSTREAM = {stream}\nIPERIODIC = 0 0 1\nJAC_BOUND = 1 1 1\n\
         DIF_BOUND = 0 1 0 1 0 0\nNON_REFLETION = 0 1 0 1 0 0\n\
         SCHEME_INVIS = WENO7_SYMBO\nSCHEME_VIS = CD8\n\
         RE = 5581.4\nAMA = 2.9\nGAMMA = 1.40\nPR = 0.70\nT_REF = 108.1\nEPSL_SW = 0.0\n\
         DT = 0.01\nEND_TIME = 0.05\nKSTEP_SHOW = 1\nKSTEP_SAVE = 1000\nINIT_STAT = 1\n\
         IBC = 108\nBC_NPARA = 10 5 1 0\n\
         BC_RPARA = {WALL_TEMPERATURE} 0.2 -320. -300 0.1 -400. -50. 14.\n"
    )
}

/// A laminar-like inflow: u = tanh(y/δ), temperature from the wall value to 1, ρ = 1/T.
fn inlet(y: &[f64]) -> InletProfile {
    let mut profile = InletProfile::free_stream(y.to_vec());
    for (j, &height) in y.iter().enumerate() {
        let u = (height / 2.0).tanh();
        profile.u[j] = u;
        profile.temperature[j] = WALL_TEMPERATURE + (1.0 - WALL_TEMPERATURE) * u;
        profile.density[j] = 1.0 / profile.temperature[j];
    }
    profile
}

fn run(args: &[&str], dir: &Path) {
    let output = Command::new(BINARY)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "opencfd-scu {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Prepares the inputs in a fresh directory and runs the control file with `blocks`;
/// returns the directory and the last field file.
fn ramp_run(blocks: &str, stream: u8) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("swept-compression-grid.in"), GRID).unwrap();
    run(&["ramp-inputs", "swept-compression-grid.in"], dir.path());
    let [_, y, _] = read_mesh_interior(&dir.path().join("OCFD3d-Mesh.dat"), EXTENT).unwrap();
    let first_station: Vec<f64> = (0..EXTENT.ny).map(|j| y[j * EXTENT.nx]).collect();
    inlet(&first_station)
        .write(&dir.path().join("flow1d-inlet.dat"))
        .unwrap();
    // The initial field again, now from the profile.
    run(
        &[
            "ramp-inputs",
            "swept-compression-grid.in",
            "--inlet",
            "flow1d-inlet.dat",
        ],
        dir.path(),
    );
    std::fs::write(dir.path().join("opencfd-scu.in"), control(blocks, stream)).unwrap();
    run(&["run", "opencfd-scu.in", "--out", "out"], dir.path());
    let last = dir.path().join("out/flow-00000005.safetensors");
    assert!(last.is_file(), "five steps of 0.01 reach END_TIME = 0.05");
    (dir, last)
}

fn array(fields: &std::collections::HashMap<String, Tensor>, name: &str) -> Vec<f64> {
    fields[name].flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn benchmark_settings_run_with_wall_inflow_and_closures() {
    let (dir, last) = ramp_run("1 1 1", 0);
    let fields = candle_core::safetensors::load(&last, &Device::Cpu).unwrap();
    let (u, v, t) = (
        array(&fields, "u"),
        array(&fields, "v"),
        array(&fields, "temperature"),
    );
    let density = array(&fields, "density");
    assert!(
        density.iter().chain(&u).chain(&t).all(|x| x.is_finite()),
        "the flow stays finite"
    );
    let Extent { nx, ny, nz } = EXTENT;
    let profile = InletProfile::read(&dir.path().join("flow1d-inlet.dat"), ny).unwrap();
    for k in 0..nz {
        for i in 0..nx {
            // No slip (the blowing band x ∈ [−320, −300] holds v), fixed wall temperature.
            let at = k * ny * nx + i;
            assert_eq!(u[at], 0.0, "u at the wall, i = {i}, k = {k}");
            assert!((t[at] - WALL_TEMPERATURE).abs() < 1e-12, "T at the wall");
        }
        for j in 1..ny {
            // The first station holds the inflow profile.
            let at = (k * ny + j) * nx;
            assert!((u[at] - profile.u[j]).abs() < 1e-12, "inflow u at j = {j}");
            assert!((density[at] - profile.density[j]).abs() < 1e-12);
        }
    }
    // Something happens inside: the flow turns at the ramp.
    assert!(
        v.iter().any(|v| v.abs() > 1e-6),
        "the ramp deflects the flow"
    );
}

#[test]
fn decomposed_and_overlapped_ramp_runs_are_bitwise_identical() {
    let (_one, single) = ramp_run("1 1 1", 0);
    let single = std::fs::read(&single).unwrap();
    // 1 × 2 × 1 blocks of 16 × 12 × 12 points have inner points for the overlap.
    for (blocks, stream) in [("2 2 1", 0), ("1 2 1", 1), ("1 1 1", 1)] {
        let (_dir, last) = ramp_run(blocks, stream);
        assert!(
            std::fs::read(&last).unwrap() == single,
            "{blocks} blocks with STREAM = {stream} change the flow"
        );
    }
}
