//! Smooth-flow accuracy: the isentropic vortex's observed order per scheme, on a
//! Cartesian and a perturbed curvilinear grid, and free-stream preservation.

use sparse_repro::claim::Claim;
use sparse_repro::plot::{LinePlot, Series};

use super::{CaseResult, SuiteSize, observed_order};
use crate::GHOST;
use crate::cases::{IsentropicVortex, periodic_boundaries};
use crate::error::CfdResult;
use crate::gas::Gas;
use crate::kernels::inviscid::InviscidScheme;
use crate::metrics::{Coordinates, Extent};
use crate::scheme::{Omp6Variant, Reconstruction};
use crate::solver::{Solver, SolverConfig};

/// The schemes whose order is measured, with the order each must reach at the finest pair.
const ORDER_TARGETS: [(Reconstruction, f64); 4] = [
    (Reconstruction::Weno5, 4.5),
    (Reconstruction::Up7, 6.0),
    (Reconstruction::Omp6(Omp6Variant::Ld), 6.0),
    (Reconstruction::Weno7, 6.0),
];

/// Relative amplitude of the curvilinear grid perturbation.
const PERTURBATION: f64 = 0.02;

fn periodic_config(scheme: Reconstruction, dt: f64) -> SolverConfig {
    SolverConfig {
        gas: Gas::euler_air(),
        inviscid: InviscidScheme::Fixed(scheme),
        viscous: None,
        entropy_fix: 0.0,
        dt,
        blocks: [1, 1, 1],
        boundaries: periodic_boundaries(),
        closures: [[false; 2]; 3],
        non_reflecting: [[false; 2]; 3],
        jacobian_closures: None,
        overlap: false,
    }
}

/// Mean absolute density error against the exact vortex at `end_time`.
fn vortex_error(
    vortex: &IsentropicVortex,
    scheme: Reconstruction,
    grid: &Coordinates,
    dt: f64,
    end_time: f64,
) -> CfdResult<f64> {
    let mut solver = Solver::new(periodic_config(scheme, dt), grid, |point| {
        vortex.exact(point, 0.0)
    })?;
    solver.run_until(end_time)?;
    let q = solver.conservative()?;
    let Extent { nx, ny, .. } = grid.extent;
    let mut sum = 0.0;
    for j in 0..ny {
        for i in 0..nx {
            let exact = vortex.exact(grid.point(i + GHOST, j + GHOST, GHOST), end_time);
            sum += (q[j * nx + i] - exact[0]).abs();
        }
    }
    Ok(sum / (nx * ny) as f64)
}

/// Observed orders of the isentropic vortex per scheme.
pub(super) fn vortex_order(size: SuiteSize) -> CfdResult<CaseResult> {
    let grids: &[usize] = match size {
        SuiteSize::Smoke => &[20, 40],
        SuiteSize::Quick => &[40, 80, 160],
        SuiteSize::Full => &[40, 80, 160, 320],
    };
    let end_time = 1.0;
    let side = 20.0;
    // Supersonic along x and y (|u| − c > 0.6 everywhere), so no characteristic speed
    // changes sign: Steger–Warming's split fluxes have a kink where one does, which
    // caps any scheme at second order. The y velocity is negative so that the negative
    // split flux carries the whole flux there and both reconstructions are measured.
    // Strength 1 rather than Shu's 5: the official WENO weights use an absolute ε, and
    // the stronger vortex's larger flux variations keep WENO5 in its critical-point
    // regime (third order) on every grid this suite can afford.
    let velocity = [2.0, -2.0];
    let strength = 1.0;
    let vortex = IsentropicVortex::standard(Gas::euler_air(), strength, side, velocity);
    let mut case = CaseResult::new(
        "vortex-order",
        format!(
            "Isentropic vortex (strength {strength}, periodic box of side {side}, advected at (2, −2), supersonic so that no split eigenvalue changes sign) to t = {end_time}; mean absolute density error against the exact solution on {grids:?}² grids, Cartesian and perturbed ({PERTURBATION} relative amplitude). The time step is scaled as Δx^(p/3) from CFL 0.4 on the coarsest grid so that RK3's third-order error stays below the scheme's p-th order error."
        ),
    );
    let coarsest = side / grids[0] as f64;
    for (grid_name, perturbation) in [("cartesian", 0.0), ("curvilinear", PERTURBATION)] {
        let mut plot = LinePlot::new(
            format!("Isentropic vortex, {grid_name} grid"),
            "points per side",
            "log10 mean |density error|",
        )
        .log_x(true);
        for (scheme, target) in ORDER_TARGETS {
            let mut errors = Vec::new();
            for &n in grids {
                let dx = side / n as f64;
                let dt =
                    0.4 * coarsest / 3.5 * (dx / coarsest).powf(scheme.formal_order() as f64 / 3.0);
                let error =
                    vortex_error(&vortex, scheme, &vortex.grid(n, perturbation), dt, end_time)?;
                case.metric(format!("{grid_name}_{}_error_n{n}", scheme.name()), error);
                errors.push(error);
            }
            let order = observed_order(errors[errors.len() - 2], errors[errors.len() - 1], 2.0);
            case.metric(format!("{grid_name}_{}_order", scheme.name()), order);
            case.claims.push(Claim::at_least(
                format!("vortex-order-{grid_name}-{}", scheme.name().to_lowercase()),
                format!("Isentropic vortex, {grid_name} grid: {} reaches order {target} at the finest pair", scheme.name()),
                "observed_order",
                order,
                "target",
                target,
            ));
            plot = plot.with_series(Series::new(
                scheme.name(),
                grids
                    .iter()
                    .zip(&errors)
                    .map(|(n, e)| (*n as f64, e.log10()))
                    .collect(),
            ));
        }
        case.plots
            .push((format!("vortex-order-{grid_name}.svg"), plot));
    }
    Ok(case)
}

/// Uniform flow on a perturbed 3-D periodic grid must stay uniform.
pub(super) fn freestream(size: SuiteSize) -> CfdResult<CaseResult> {
    let (grids, steps): (&[usize], usize) = match size {
        SuiteSize::Smoke => (&[12], 5),
        SuiteSize::Quick => (&[16, 32], 20),
        SuiteSize::Full => (&[16, 32, 64], 40),
    };
    let bound = 1e-4;
    let gas = Gas::euler_air();
    let scheme = Reconstruction::Up7;
    let mut case = CaseResult::new(
        "freestream",
        format!(
            "Uniform flow (ρ = 1, u = (1, 0.5, 0.25), p = 1/γ) on a 3-D periodic grid with a {PERTURBATION} relative sinusoidal perturbation, {steps} steps of {} at CFL 0.4; the largest density deviation from 1. The official metrics (cross-product form) satisfy the geometric conservation law only to truncation error in 3-D, and the split fluxes are nonlinear in the metrics, so uniform flow is preserved to truncation error: the bound stated here is {bound:e}, and the deviation must fall with refinement.",
            scheme.name()
        ),
    );
    let velocity = [1.0, 0.5, 0.25];
    let uniform = gas.conservative(1.0, velocity, 1.0 / gas.gamma);
    let mut deviations = Vec::new();
    for &n in grids {
        let grid = Coordinates::perturbed(
            Extent::new(n, n, n),
            [1.0; 3],
            [0.0; 3],
            [true; 3],
            PERTURBATION,
        );
        let dx = 1.0 / n as f64;
        let mut solver = Solver::new(periodic_config(scheme, 0.4 * dx / 2.2), &grid, |_| uniform)?;
        for _ in 0..steps {
            solver.step()?;
        }
        let q = solver.conservative()?;
        let cells = n * n * n;
        let deviation = q[..cells]
            .iter()
            .map(|rho| (rho - 1.0).abs())
            .fold(0.0, f64::max);
        case.metric(format!("max_density_deviation_n{n}"), deviation);
        deviations.push((format!("deviation_n{n}"), deviation));
    }
    let finest = deviations.last().unwrap().1;
    case.claims.push(Claim::at_most(
        "freestream-bound",
        format!("Free stream on the perturbed grid: density deviation at most {bound:e} on the finest grid"),
        "max_deviation",
        finest,
        "bound",
        bound,
    ));
    if deviations.len() > 1 {
        case.claims.push(Claim::non_increasing(
            "freestream-converges",
            "Free stream: the deviation falls with refinement",
            deviations,
        ));
    }
    Ok(case)
}
