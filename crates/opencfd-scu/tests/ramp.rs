//! The compression ramp (`IBC = 108`) end to end through the binary: the official
//! benchmark_comp control file's settings on a small grid.

mod common;

use candle_core::{Device, Tensor};
use common::{EXTENT, WALL_TEMPERATURE, ramp_run};
use opencfd_scu::formats::InletProfile;
use opencfd_scu::metrics::Extent;

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
