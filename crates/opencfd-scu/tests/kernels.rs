//! The fused kernels against a point-by-point oracle, and their invariants.

use candle_core::{Device, Tensor};
use opencfd_scu::GHOST;
use opencfd_scu::gas::Gas;
use opencfd_scu::geometry::{JACOBIAN, geometry_values};
use opencfd_scu::kernels::halo::{FillGhosts, SelfFill, Side};
use opencfd_scu::kernels::inviscid::{InviscidFlux, InviscidScheme};
use opencfd_scu::kernels::primitives::{PRIMITIVE_COMPONENTS, Primitives};
use opencfd_scu::metrics::{Coordinates, Extent, Metrics};
use opencfd_scu::scheme::{Omp6Variant, Reconstruction};
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
        .inplace_op2(
            &q,
            &Primitives {
                gas: Gas::euler_air(),
            },
        )
        .unwrap();
    for direction in 0..3 {
        let op = InviscidFlux {
            direction,
            scheme: InviscidScheme::Fixed(scheme),
            gamma: 1.4,
            entropy_fix: 0.0,
            spacing: extent.spacing()[direction],
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
