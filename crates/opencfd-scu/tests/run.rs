//! `opencfd-scu run` on control files.

mod common;

use opencfd_scu::control::Control;
use opencfd_scu::run::{InitialField, RunOptions, run, solver_config};

const SHIPPED: &str = include_str!("../cases/taylor-green-32.in");

fn small_control(extra: &str) -> Control {
    let text = SHIPPED
        .replace("GRID_3D = 32 32 32", "GRID_3D = 8 8 8")
        .replace("END_TIME = 10", "END_TIME = 0.02")
        .replace("KSTEP_SHOW = 100", "KSTEP_SHOW = 2")
        .replace("KSTEP_SAVE = 1000", "KSTEP_SAVE = 3");
    Control::parse(&format!("{text}{extra}"), "test.in").unwrap()
}

/// The Taylor–Green vortex on the default box, inputs and outputs in `dir`.
fn taylor_green_options(dir: &std::path::Path) -> RunOptions {
    RunOptions {
        box_lengths: [std::f64::consts::TAU; 3],
        origin: [-std::f64::consts::PI; 3],
        initial: InitialField::TaylorGreen,
        inputs: dir.to_path_buf(),
        out: dir.to_path_buf(),
    }
}

#[test]
fn shipped_control_file_runs_and_writes_statistics_fields_and_summary() {
    let control = small_control("");
    let out = tempfile::tempdir().unwrap();
    let options = taylor_green_options(out.path());
    let summary = run(&control, &options, |_| {}).unwrap();
    assert_eq!(summary.steps, 4);
    assert!((summary.time - 0.02).abs() < 1e-12);
    let statistics = std::fs::read_to_string(out.path().join("statistics.csv")).unwrap();
    assert_eq!(statistics.lines().count(), 3, "{statistics}");
    assert_eq!(summary.fields.len(), 2, "step 3 and the last step");
    let fields =
        candle_core::safetensors::load(&summary.fields[1], &candle_core::Device::Cpu).unwrap();
    assert_eq!(fields["density"].dims(), &[8, 8, 8]);
    let energy: f64 = statistics
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert!(energy > 0.1 && energy < 0.125, "{energy}");
    assert!(out.path().join("run.json").exists());
    // The same control file gives the same file, byte for byte.
    let again = tempfile::tempdir().unwrap();
    let options = RunOptions {
        out: again.path().to_path_buf(),
        ..options
    };
    let repeat = run(&control, &options, |_| {}).unwrap();
    let first = std::fs::read(&summary.fields[1]).unwrap();
    assert_eq!(std::fs::read(&repeat.fields[1]).unwrap(), first);
    let header_len = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8_lossy(&first[8..8 + header_len]);
    assert!(
        header.contains(r#""opencfd-scu":"{\"step\":4,"#),
        "{header}"
    );
}

#[test]
fn gradient_sensor_hybrid_runs_from_the_control_file() {
    let base = SHIPPED
        .lines()
        .filter(|l| !l.starts_with("SCHEME_INVIS"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!(
        "{base}\nSCHEME_INVIS = SCHEME_HYBRIDAUTO\nHY_STYLE = 1\nHY_DP_INTV = 0.5 3.0\n\
         HY_SMOOTH_DP = 1\nHY_PATCH_ZONE = 1\nHY_ZONE0 = 0 4 0 8 0 8 5.0\n"
    )
    .replace("GRID_3D = 32 32 32", "GRID_3D = 8 8 8")
    .replace("END_TIME = 10", "END_TIME = 0.02");
    let control = Control::parse(&text, "hybrid.in").unwrap();
    let out = tempfile::tempdir().unwrap();
    let options = taylor_green_options(out.path());
    let summary = run(&control, &options, |_| {}).unwrap();
    assert_eq!(summary.steps, 4);
}

#[test]
fn keys_of_unimplemented_features_are_refused_by_name() {
    for (line, key) in [
        (
            "IBC = 124\nBC_NPARA = 1 0 1 0 0\nBC_RPARA = 0 3.8 0.02 0 0.1 50 60\n",
            "IBC",
        ),
        ("ANA_EVENT0 = 101 1\n", "ANA_EVENT"),
        ("CHARTERIC = 1\nSCHEME_INVIS = WENO7_SYMBO\n", "CHARTERIC"),
    ] {
        let base = SHIPPED
            .lines()
            .filter(|l| {
                !(l.starts_with(key) || key == "CHARTERIC" && l.starts_with("SCHEME_INVIS"))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let control = Control::parse(&format!("{base}\n{line}"), "test.in").unwrap();
        let error = solver_config(&control).unwrap_err().to_string();
        assert!(error.starts_with(key), "{error}");
    }
}

#[test]
fn the_ramp_without_its_grid_file_is_refused_naming_the_file() {
    let control = Control::parse(&common::control("1 1 1", 0), "ramp.in").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = taylor_green_options(dir.path());
    options.initial = InitialField::Control;
    let error = run(&control, &options, |_| {}).unwrap_err().to_string();
    assert!(error.contains("OCFD3d-Mesh.dat"), "{error}");
}
