//! The fused kernels against a point-by-point oracle, and their invariants.

use candle_core::{Device, Tensor};
use opencfd_scu::GHOST;
use opencfd_scu::gas::Gas;
use opencfd_scu::geometry::{JACOBIAN, geometry_values};
use opencfd_scu::kernels::halo::{FillGhosts, SelfFill, Side};
use opencfd_scu::kernels::inviscid::{InviscidFlux, InviscidScheme};
use opencfd_scu::kernels::primitives::{PRIMITIVE_COMPONENTS, Primitives};
use opencfd_scu::kernels::region::Region;
use opencfd_scu::kernels::viscous::{VISCOUS_COMPONENTS, ViscousDivergence, ViscousFlux};
use opencfd_scu::metrics::{Coordinates, Extent, Metrics};
use opencfd_scu::scheme::{CentralDifference, Omp6Variant, Reconstruction};
use opencfd_scu::split::steger_warming;

/// A smooth, non-uniform periodic state on a perturbed periodic grid.
fn setup(extent: Extent) -> (Vec<f64>, Vec<f64>, Coordinates) {
    let grid = Coordinates::perturbed(extent, [1.0, 1.2, 0.9], [0.0; 3], [true; 3], 0.03);
    let metrics = Metrics::compute(&grid, [true; 3], [false; 3]).unwrap();
    let gas = Gas::euler_air();
    let len = extent.len_padded();
    let mut state = vec![0.0; 5 * len];
    for at in 0..len {
        let (x, y, z) = (grid.x[at], grid.y[at], grid.z[at]);
        let tau = std::f64::consts::TAU;
        let q = gas.conservative(
            1.0 + 0.2 * (tau * x).sin() * (tau * z).cos(),
            [
                0.3 * (tau * y).cos(),
                -0.2 + 0.1 * (tau * x).sin(),
                0.1 * (tau * (x + z)).sin(),
            ],
            1.0 + 0.1 * (tau * (y - z)).cos(),
        );
        for c in 0..5 {
            state[c * len + at] = q[c];
        }
    }
    (state, geometry_values(&metrics), grid)
}

/// `∂U/∂t` of the inviscid terms by the textbook loop: per point, per direction.
fn oracle(state: &[f64], geometry: &[f64], extent: Extent, scheme: Reconstruction) -> Vec<f64> {
    let len = extent.len_padded();
    let strides = extent.strides();
    let spacing = extent.spacing();
    let point = |at: usize| std::array::from_fn::<f64, 5, _>(|c| state[c * len + at]);
    let split = |at: usize, d: usize| {
        let metric = [
            geometry[3 * d * len + at],
            geometry[(3 * d + 1) * len + at],
            geometry[(3 * d + 2) * len + at],
        ];
        steger_warming(&point(at), &metric, 1.4, 0.0)
    };
    let face = |at: usize, d: usize| -> [f64; 5] {
        // Face between `at` and its + neighbour.
        let s = strides[d] as isize;
        let offset = |m: isize| (at as isize + m * s) as usize;
        std::array::from_fn(|c| {
            let plus: [f64; 8] = std::array::from_fn(|m| split(offset(m as isize - 3), d).0[c]);
            let minus: [f64; 8] = std::array::from_fn(|m| split(offset(4 - m as isize), d).1[c]);
            scheme.reconstruct(&plus) + scheme.reconstruct(&minus)
        })
    };
    let mut rhs = vec![0.0; 5 * len];
    for k in GHOST..GHOST + extent.nz {
        for j in GHOST..GHOST + extent.ny {
            for i in GHOST..GHOST + extent.nx {
                let at = extent.index(i, j, k);
                for d in 0..3 {
                    let (right, left) = (face(at, d), face(at - strides[d], d));
                    let scale = -geometry[JACOBIAN * len + at] / spacing[d];
                    for c in 0..5 {
                        rhs[c * len + at] += scale * (right[c] - left[c]);
                    }
                }
            }
        }
    }
    rhs
}

fn fused(state: &[f64], geometry: &[f64], extent: Extent, scheme: Reconstruction) -> Vec<f64> {
    fused_with(
        state,
        geometry,
        extent,
        scheme,
        NO_FACES,
        NO_FACES,
        [0, 1, 2],
    )
}

const NO_FACES: [[bool; 2]; 3] = [[false; 2]; 3];

/// The inviscid right-hand side of `directions` with `DIF_BOUND` closures and
/// non-reflecting faces.
fn fused_with(
    state: &[f64],
    geometry: &[f64],
    extent: Extent,
    scheme: Reconstruction,
    closures: [[bool; 2]; 3],
    non_reflecting: [[bool; 2]; 3],
    directions: impl IntoIterator<Item = usize>,
) -> Vec<f64> {
    let [px, py, pz] = extent.padded();
    let q = Tensor::from_vec(state.to_vec(), (5, pz, py, px), &Device::Cpu).unwrap();
    let g = Tensor::from_vec(
        geometry.to_vec(),
        (geometry.len() / (px * py * pz), pz, py, px),
        &Device::Cpu,
    )
    .unwrap();
    let rhs = q.zeros_like().unwrap();
    let primitives = Tensor::zeros(
        (PRIMITIVE_COMPONENTS, pz, py, px),
        candle_core::DType::F64,
        &Device::Cpu,
    )
    .unwrap();
    primitives
        .inplace_op2(&q, &Primitives::everywhere(Gas::euler_air()))
        .unwrap();
    for direction in directions {
        let op = InviscidFlux {
            direction,
            scheme: InviscidScheme::Fixed(scheme),
            gamma: 1.4,
            entropy_fix: 0.0,
            spacing: extent.spacing()[direction],
            closures: closures[direction],
            non_reflecting: non_reflecting[direction],
            region: Region::All,
        };
        rhs.inplace_op3(&primitives, &g, &op).unwrap();
    }
    rhs.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn fused_inviscid_kernel_matches_the_point_by_point_oracle() {
    let extent = Extent::new(9, 7, 6);
    let (state, geometry, _) = setup(extent);
    for scheme in [
        Reconstruction::Up7,
        Reconstruction::Weno5,
        Reconstruction::Weno7,
        Reconstruction::Omp6(Omp6Variant::Hr),
        Reconstruction::Nnd2,
    ] {
        let expected = oracle(&state, &geometry, extent, scheme);
        let got = fused(&state, &geometry, extent, scheme);
        let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let worst = expected
            .iter()
            .zip(&got)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(scale > 1e-3, "the test state must have fluxes");
        assert!(
            worst <= 1e-13 * scale,
            "{}: fused differs from the oracle by {worst:e} (scale {scale:e})",
            scheme.name()
        );
    }
}

#[test]
fn periodic_ghosts_wrap_and_outflow_ghosts_copy_the_edge() {
    let extent = Extent::new(5, 6, 1);
    let [px, py, pz] = extent.padded();
    let values: Vec<f64> = (0..px * py * pz).map(|v| v as f64).collect();
    let field = Tensor::from_vec(values.clone(), (1, pz, py, px), &Device::Cpu).unwrap();
    field
        .inplace_op1(&FillGhosts {
            direction: 0,
            side: Side::Low,
            fill: SelfFill::Periodic,
        })
        .unwrap();
    field
        .inplace_op1(&FillGhosts {
            direction: 1,
            side: Side::High,
            fill: SelfFill::Outflow,
        })
        .unwrap();
    let filled: Vec<f64> = field.flatten_all().unwrap().to_vec1().unwrap();
    let (j, k) = (GHOST + 2, GHOST);
    for p in 0..GHOST {
        // Ghost p ≡ interior point p − GHOST (mod 5).
        let source = GHOST + (p + 5 - GHOST % 5) % 5;
        assert_eq!(
            filled[extent.index(p, j, k)],
            values[extent.index(source, j, k)]
        );
        assert_eq!(
            filled[extent.index(GHOST + 1, GHOST + 6 + p, k)],
            values[extent.index(GHOST + 1, GHOST + 5, k)]
        );
    }
}

/// `state` with every x ghost point (both ends, all components) set to `value`.
fn with_x_ghosts(state: &[f64], extent: Extent, value: f64) -> Vec<f64> {
    let len = extent.len_padded();
    let [px, py, pz] = extent.padded();
    let mut out = state.to_vec();
    for c in 0..5 {
        for k in 0..pz {
            for j in 0..py {
                for i in (0..GHOST).chain(px - GHOST..px) {
                    out[c * len + extent.index(i, j, k)] = value;
                }
            }
        }
    }
    out
}

/// Interior values of component `c` along the x line `(j, k)`.
fn x_line(field: &[f64], extent: Extent, c: usize, j: usize, k: usize) -> Vec<f64> {
    let len = extent.len_padded();
    (GHOST..GHOST + extent.nx)
        .map(|i| field[c * len + extent.index(i, j, k)])
        .collect()
}

#[test]
fn boundary_closures_read_no_ghost_and_leave_the_interior_scheme_alone() {
    let extent = Extent::new(16, 5, 4);
    let (state, geometry, _) = setup(extent);
    let closed = [[true, true], [false; 2], [false; 2]];
    for scheme in [
        Reconstruction::Up7,
        Reconstruction::Weno5,
        Reconstruction::Weno7,
        Reconstruction::Weno7Symbo,
        Reconstruction::Omp6(Omp6Variant::Cd8),
        Reconstruction::Nnd2,
    ] {
        let name = scheme.name();
        let reference = fused_with(&state, &geometry, extent, scheme, closed, NO_FACES, [0]);
        let poisoned = with_x_ghosts(&state, extent, f64::NAN);
        let got = fused_with(&poisoned, &geometry, extent, scheme, closed, NO_FACES, [0]);
        assert!(
            got.iter().all(|v| v.is_finite()),
            "{name}: a closure read a ghost"
        );
        assert_eq!(
            got, reference,
            "{name}: the ghosts changed the closed result"
        );
        let open = fused_with(&state, &geometry, extent, scheme, NO_FACES, NO_FACES, [0]);
        for c in 0..5 {
            let (a, b) = (
                x_line(&reference, extent, c, GHOST + 2, GHOST + 1),
                x_line(&open, extent, c, GHOST + 2, GHOST + 1),
            );
            // The middle points (faces 3½ … n−7½) keep the interior scheme.
            assert_eq!(a[4..extent.nx - 6], b[4..extent.nx - 6], "{name}");
            assert_ne!(a[0], b[0], "{name}: the first point is closed");
            assert_ne!(
                a[extent.nx - 1],
                b[extent.nx - 1],
                "{name}: the last point is closed"
            );
        }
    }
}

#[test]
fn non_reflecting_faces_drop_the_incoming_flux_part() {
    // Supersonic along +x (u = 3 > c ≈ 1.2) without entropy fix: F⁻ vanishes, so the
    // high end drops nothing and the low end's first point keeps no x flux at all.
    let extent = Extent::new(12, 4, 3);
    let len = extent.len_padded();
    let gas = Gas::euler_air();
    let mut state = vec![0.0; 5 * len];
    for at in 0..len {
        let q = gas.conservative(1.0 + 0.1 * (at as f64 * 0.37).sin(), [3.0, 0.0, 0.0], 1.0);
        for c in 0..5 {
            state[c * len + at] = q[c];
        }
    }
    let periodic = [false, true, true];
    let grid = Coordinates::uniform(extent, [1.0; 3], [0.0; 3], periodic);
    let geometry =
        geometry_values(&Metrics::compute(&grid, periodic, periodic.map(|p| !p)).unwrap());
    let scheme = Reconstruction::Weno7Symbo;
    let closed = [[true, true], [false; 2], [false; 2]];
    let plain = fused_with(&state, &geometry, extent, scheme, closed, NO_FACES, [0]);
    let high = [[false, true], [false; 2], [false; 2]];
    let low = [[true, false], [false; 2], [false; 2]];
    assert_eq!(
        fused_with(&state, &geometry, extent, scheme, closed, high, [0]),
        plain
    );
    let dropped = fused_with(&state, &geometry, extent, scheme, closed, low, [0]);
    for c in 0..5 {
        for (j, k) in [(GHOST, GHOST), (GHOST + 3, GHOST + 2)] {
            let (a, b) = (
                x_line(&dropped, extent, c, j, k),
                x_line(&plain, extent, c, j, k),
            );
            assert_eq!(a[0], 0.0, "component {c}: the first point keeps F⁺");
            if c != 2 && c != 3 {
                assert_ne!(b[0], 0.0, "component {c}: the test needs a flux there");
            }
            assert_eq!(a[1..], b[1..], "component {c}");
        }
    }
}

#[test]
fn viscous_closures_read_no_ghost() {
    let extent = Extent::new(12, 5, 4);
    let (state, geometry, _) = setup(extent);
    let [px, py, pz] = extent.padded();
    let gas = Gas::new(1.4, 0.5, 100.0, 0.7, 288.15).unwrap();
    let g = Tensor::from_vec(
        geometry.clone(),
        (geometry.len() / (px * py * pz), pz, py, px),
        &Device::Cpu,
    )
    .unwrap();
    let closures = [[true, true], [false; 2], [false; 2]];
    let spacing = extent.spacing();
    let viscous = |state: &[f64], flux_ghosts: Option<f64>| -> Vec<f64> {
        let q = Tensor::from_vec(state.to_vec(), (5, pz, py, px), &Device::Cpu).unwrap();
        let zeros = |c: usize| {
            Tensor::zeros((c, pz, py, px), candle_core::DType::F64, &Device::Cpu).unwrap()
        };
        let primitives = zeros(PRIMITIVE_COMPONENTS);
        primitives
            .inplace_op2(&q, &Primitives::everywhere(gas))
            .unwrap();
        let flux = zeros(VISCOUS_COMPONENTS);
        let op = ViscousFlux {
            gas,
            scheme: CentralDifference::Cd8,
            spacing,
            closures,
            region: Region::All,
        };
        flux.inplace_op3(&primitives, &g, &op).unwrap();
        // The flux's ghosts as a halo exchange would leave them: here constant or poison.
        let mut values: Vec<f64> = flux.flatten_all().unwrap().to_vec1().unwrap();
        let len = extent.len_padded();
        for c in 0..VISCOUS_COMPONENTS {
            for k in 0..pz {
                for j in 0..py {
                    for i in (0..GHOST).chain(px - GHOST..px) {
                        values[c * len + extent.index(i, j, k)] = flux_ghosts.unwrap_or(0.0);
                    }
                }
            }
        }
        let flux =
            Tensor::from_vec(values, (VISCOUS_COMPONENTS, pz, py, px), &Device::Cpu).unwrap();
        let rhs = zeros(5);
        let divergence = ViscousDivergence {
            scheme: CentralDifference::Cd8,
            spacing,
            closures,
            region: Region::All,
        };
        rhs.inplace_op3(&flux, &g, &divergence).unwrap();
        rhs.flatten_all().unwrap().to_vec1().unwrap()
    };
    let reference = viscous(&state, None);
    let poisoned = viscous(&with_x_ghosts(&state, extent, f64::NAN), Some(f64::NAN));
    assert!(
        poisoned.iter().all(|v| v.is_finite()),
        "a viscous closure read a ghost"
    );
    assert_eq!(poisoned, reference);
    assert!(
        reference.iter().any(|v| *v != 0.0),
        "the test needs viscous terms"
    );
}
