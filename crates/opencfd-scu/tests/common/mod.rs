//! The compression-ramp case of the tests: the official benchmark_comp control
//! settings on a small grid with a synthetic inflow profile, prepared and run through
//! the binary.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use opencfd_scu::formats::{InletProfile, read_mesh_interior};
use opencfd_scu::metrics::Extent;

pub const BINARY: &str = env!("CARGO_BIN_EXE_opencfd-scu");
pub const EXTENT: Extent = Extent {
    nx: 16,
    ny: 24,
    nz: 12,
};
pub const WALL_TEMPERATURE: f64 = 2.84;

/// The generator input: the benchmark's geometry with fewer points.
const GRID: &str = "points nx ny nz, ranks\n16 24 12 1\n\
    streamwise points: inlet corner buffer\n6 8 2\n\
    dx_inlet Lx_inlet Lx_corner buffer_stretch\n0.05 300. 50. 1.01\n\
    sweep and ramp angles\n0. 24.\n\
    height wall_spacing span\n35. 0.05 14.\n\
    output flags\n0 0 0\n";

/// The benchmark's control settings (WENO7_SYMBO, CD8, one-sided closures at the outflow
/// and upper faces, non-reflecting there, isothermal wall with blowing and suction).
pub fn control(blocks: &str, stream: u8) -> String {
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
pub fn inlet(y: &[f64]) -> InletProfile {
    let mut profile = InletProfile::free_stream(y.to_vec());
    for (j, &height) in y.iter().enumerate() {
        let u = (height / 2.0).tanh();
        profile.u[j] = u;
        profile.temperature[j] = WALL_TEMPERATURE + (1.0 - WALL_TEMPERATURE) * u;
        profile.density[j] = 1.0 / profile.temperature[j];
    }
    profile
}

pub fn run(args: &[&str], dir: &Path) {
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
pub fn ramp_run(blocks: &str, stream: u8) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = prepare();
    std::fs::write(dir.path().join("opencfd-scu.in"), control(blocks, stream)).unwrap();
    run(&["run", "opencfd-scu.in", "--out", "out"], dir.path());
    let last = dir.path().join(LAST_FIELDS);
    assert!(last.is_file(), "five steps of 0.01 reach END_TIME = 0.05");
    (dir, last)
}

/// The field file of the last step, relative to the output directory's parent.
pub const LAST_FIELDS: &str = "out/flow-00000005.safetensors";

/// A fresh directory with the grid, the inflow profile and the initial field.
pub fn prepare() -> tempfile::TempDir {
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
    dir
}
