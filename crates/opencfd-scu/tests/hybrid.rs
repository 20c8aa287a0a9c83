//! The hybrid scheme's gradient sensor (`HY_STYLE = 1`) through the solver.

use opencfd_scu::GHOST;
use opencfd_scu::cases::{one_dimensional_boundaries, riemann_initial, shock_tube_grid};
use opencfd_scu::control::HybridZone;
use opencfd_scu::gas::Gas;
use opencfd_scu::geometry::SENSOR;
use opencfd_scu::hybrid::HybridSensor;
use opencfd_scu::kernels::inviscid::InviscidScheme;
use opencfd_scu::riemann::Primitive;
use opencfd_scu::scheme::{HybridStyle, Omp6Variant, Reconstruction};
use opencfd_scu::solver::{Solver, SolverConfig};

const POINTS: usize = 101;
const THRESHOLDS: [f64; 2] = [0.5, 3.0];

fn sod_solver(smoothing: bool, zones: Vec<HybridZone>) -> Solver {
    let config = SolverConfig {
        gas: Gas::euler_air(),
        inviscid: InviscidScheme::Hybrid(HybridSensor {
            thresholds: THRESHOLDS,
            style: HybridStyle::Gradient,
            smoothing,
        }),
        viscous: None,
        entropy_fix: 0.0,
        dt: 0.002,
        blocks: [1, 1, 1],
        boundaries: one_dimensional_boundaries(),
        closures: [[true; 2], [false; 2], [false; 2]],
        non_reflecting: [[false; 2]; 3],
        jacobian_closures: None,
        overlap: false,
    };
    let (left, right) = (
        Primitive {
            density: 1.0,
            velocity: 0.0,
            pressure: 1.0,
        },
        Primitive {
            density: 0.125,
            velocity: 0.0,
            pressure: 0.1,
        },
    );
    let grid = shock_tube_grid(POINTS);
    let mut solver = Solver::new(
        config,
        &grid,
        riemann_initial(Gas::euler_air(), left, right, 0.5),
    )
    .unwrap();
    solver.set_sensor_zones(zones);
    solver
}

/// The sensor of the interior points after one step (the step's first stage sets it).
fn sensor_after_step(solver: &mut Solver) -> Vec<f64> {
    solver.step().unwrap();
    let geometry: Vec<f64> = solver.domain.blocks[0]
        .geometry
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let plane = geometry.len() / opencfd_scu::geometry::GEOMETRY_COMPONENTS;
    let row = (GHOST * (1 + 2 * GHOST) + GHOST) * (POINTS + 2 * GHOST);
    (0..POINTS)
        .map(|i| geometry[SENSOR * plane + row + GHOST + i])
        .collect()
}

#[test]
fn gradient_sensor_is_normalised_and_marks_the_jump() {
    let mut solver = sod_solver(false, Vec::new());
    let g = sensor_after_step(&mut solver);
    let mean = g.iter().sum::<f64>() / POINTS as f64;
    assert!((mean - 1.0).abs() < 1e-12, "mean of the sensor {mean}");
    // The jump at x = 0.5 (points 49, 50) gets the strongest class, the plateaus the first.
    assert!(g[50] > THRESHOLDS[1], "sensor at the jump {}", g[50]);
    assert!(g[10] < THRESHOLDS[0] && g[90] < THRESHOLDS[0], "{g:?}");
    let hybrid = HybridSensor {
        thresholds: THRESHOLDS,
        style: HybridStyle::Gradient,
        smoothing: false,
    };
    assert_eq!(hybrid.face_scheme(g[49], g[50]), Reconstruction::Nnd2);
    assert_eq!(
        hybrid.face_scheme(g[10], g[11]),
        Reconstruction::Omp6(Omp6Variant::Hr)
    );
    let q = solver.conservative().unwrap();
    assert!(q.iter().all(|v| v.is_finite()));
}

#[test]
fn smoothing_spreads_the_sensor_and_zones_override_it() {
    let plain = sensor_after_step(&mut sod_solver(false, Vec::new()));
    let smoothed = sensor_after_step(&mut sod_solver(true, Vec::new()));
    // Away from the edges: G = F/3 + (F₋ + F₊ + 4 F)/9 with F tripled above T₁ (the y and
    // z neighbours of a 1-point direction are the point itself).
    let f = |i: usize| {
        if plain[i] >= THRESHOLDS[1] {
            3.0 * plain[i]
        } else {
            plain[i]
        }
    };
    for i in [20, 48, 49, 50, 51, 70] {
        let expected = f(i) / 3.0 + (f(i - 1) + f(i + 1) + 4.0 * f(i)) / 9.0;
        assert!(
            (smoothed[i] - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "point {i}: {} vs {expected}",
            smoothed[i]
        );
    }
    // The closed ends keep F.
    assert_eq!(smoothed[0], f(0));
    let zone = HybridZone {
        index: 0,
        begin: [10, 0, 0],
        end: [20, 1, 1],
        indicator: 7.5,
    };
    let patched = sensor_after_step(&mut sod_solver(false, vec![zone]));
    for i in 0..POINTS {
        if (10..20).contains(&i) {
            assert_eq!(patched[i], 7.5);
        } else {
            assert_eq!(patched[i], plain[i]);
        }
    }
}
