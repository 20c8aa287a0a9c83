//! Shock tubes: Sod against the exact Riemann solution, Shu–Osher against a fine
//! run of the same code.

use sparse_repro::claim::Claim;
use sparse_repro::plot::{LinePlot, Series};

use super::{CaseResult, SuiteSize, observed_order};
use crate::cases::{
    one_dimensional_boundaries, riemann_initial, shock_tube_grid, shu_osher_grid, shu_osher_initial,
};
use crate::error::CfdResult;
use crate::gas::Gas;
use crate::kernels::inviscid::InviscidScheme;
use crate::metrics::Coordinates;
use crate::riemann::RiemannProblem;
use crate::scheme::Reconstruction;
use crate::solver::{Solver, SolverConfig};

/// The shock-capturing scheme of both shock tubes.
const SHOCK_SCHEME: Reconstruction = Reconstruction::Weno5;

fn euler_config(dt: f64) -> SolverConfig {
    SolverConfig {
        gas: Gas::euler_air(),
        inviscid: InviscidScheme::Fixed(SHOCK_SCHEME),
        viscous: None,
        entropy_fix: 0.0,
        dt,
        blocks: [1, 1, 1],
        boundaries: one_dimensional_boundaries(),
        closures: [[false; 2]; 3],
        non_reflecting: [[false; 2]; 3],
        jacobian_closures: None,
        overlap: false,
    }
}

/// Density and x of the interior points of a 1-D run.
fn density_profile(solver: &Solver, grid: &Coordinates) -> CfdResult<(Vec<f64>, Vec<f64>)> {
    let n = solver.extent().nx;
    let q = solver.conservative()?;
    let x = (0..n)
        .map(|i| grid.point(i + crate::GHOST, crate::GHOST, crate::GHOST)[0])
        .collect();
    Ok((x, q[..n].to_vec()))
}

/// Sod's shock tube at t = 0.2 on refined grids.
pub(super) fn sod(size: SuiteSize) -> CfdResult<CaseResult> {
    let grids: &[usize] = match size {
        SuiteSize::Smoke => &[51, 101],
        SuiteSize::Quick => &[101, 201, 401],
        SuiteSize::Full => &[101, 201, 401, 801, 1601],
    };
    let problem = RiemannProblem::sod();
    let gas = Gas::euler_air();
    let end_time = 0.2;
    let mut case = CaseResult::new(
        "sod",
        format!(
            "Sod's shock tube on [0, 1] at t = 0.2, {} with Steger–Warming splitting, CFL 0.4 at the fastest exact wave speed; grids {grids:?}.",
            SHOCK_SCHEME.name()
        ),
    );
    let max_speed = 1.8;
    let jump = problem.left.density - problem.right.density;
    let mut errors = Vec::new();
    let mut excess_variation = 0.0;
    let mut plot = LinePlot::new("Sod shock tube, density at t = 0.2", "x", "density");
    for &n in grids {
        let grid = shock_tube_grid(n);
        let dx = 1.0 / (n - 1) as f64;
        let mut solver = Solver::new(
            euler_config(0.4 * dx / max_speed),
            &grid,
            riemann_initial(gas, problem.left, problem.right, 0.5),
        )?;
        solver.run_until(end_time)?;
        let (x, density) = density_profile(&solver, &grid)?;
        let exact: Vec<f64> = problem
            .profile(&x, 0.5, end_time)
            .iter()
            .map(|p| p.density)
            .collect();
        let l1 = density
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            * dx;
        case.metric(format!("l1_density_n{n}"), l1);
        errors.push(l1);
        let variation = |v: &[f64]| v.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>();
        excess_variation = (variation(&density) - variation(&exact)) / jump;
        case.metric(format!("excess_total_variation_n{n}"), excess_variation);
        if n == *grids.last().unwrap() {
            plot = plot
                .with_series(Series::new(
                    "exact",
                    x.iter().cloned().zip(exact.iter().cloned()).collect(),
                ))
                .with_series(Series::new(
                    format!("{} n = {n}", SHOCK_SCHEME.name()),
                    x.into_iter().zip(density).collect(),
                ));
        }
    }
    case.claims.push(Claim::non_increasing(
        "sod-l1-falls",
        "Sod: the L1 density error falls with every refinement",
        grids
            .iter()
            .zip(&errors)
            .map(|(n, e)| (format!("l1_n{n}"), *e)),
    ));
    let order = observed_order(errors[errors.len() - 2], errors[errors.len() - 1], 2.0);
    case.metric("observed_order_finest_pair", order);
    case.claims.push(Claim::at_least(
        "sod-first-order",
        "Sod: observed L1 order at the finest pair is at least 0.6 (first order near discontinuities)",
        "order",
        order,
        "bound",
        0.6,
    ));
    case.claims.push(Claim::at_most(
        "sod-no-oscillation",
        "Sod: total variation beyond the exact solution's is at most 1 % of the density jump (finest grid)",
        "excess_total_variation",
        excess_variation,
        "bound",
        0.01,
    ));
    case.plots.push(("sod-density.svg".into(), plot));
    Ok(case)
}

/// Shu–Osher at t = 1.8: coarse runs against a fine run of the same code.
pub(super) fn shu_osher(size: SuiteSize) -> CfdResult<CaseResult> {
    let (coarse, fine): (&[usize], usize) = match size {
        SuiteSize::Smoke => (&[101], 401),
        SuiteSize::Quick => (&[201, 401], 1601),
        SuiteSize::Full => (&[201, 401, 801], 3201),
    };
    let gas = Gas::euler_air();
    let end_time = 1.8;
    let max_speed = 4.6;
    let mut case = CaseResult::new(
        "shu-osher",
        format!(
            "Shu–Osher shock/entropy-wave interaction on [−5, 5] at t = 1.8 with {}; coarse grids {coarse:?} against a {fine}-point run of the same code (every coarse point is a fine point). The entropy-wave amplitude is half the density range on 0.5 ≤ x ≤ 2.4.",
            SHOCK_SCHEME.name()
        ),
    );
    let run = |n: usize| -> CfdResult<(Vec<f64>, Vec<f64>)> {
        let grid = shu_osher_grid(n);
        let dx = 10.0 / (n - 1) as f64;
        let mut solver = Solver::new(
            euler_config(0.4 * dx / max_speed),
            &grid,
            shu_osher_initial(gas),
        )?;
        solver.run_until(end_time)?;
        density_profile(&solver, &grid)
    };
    let amplitude = |x: &[f64], density: &[f64]| {
        let band: Vec<f64> = x
            .iter()
            .zip(density)
            .filter(|(x, _)| (0.5..=2.4).contains(*x))
            .map(|(_, d)| *d)
            .collect();
        let max = band.iter().cloned().fold(f64::MIN, f64::max);
        let min = band.iter().cloned().fold(f64::MAX, f64::min);
        0.5 * (max - min)
    };
    let (fine_x, fine_density) = run(fine)?;
    let reference_amplitude = amplitude(&fine_x, &fine_density);
    case.metric(
        format!("entropy_wave_amplitude_n{fine}"),
        reference_amplitude,
    );
    let mut plot =
        LinePlot::new("Shu–Osher, density at t = 1.8", "x", "density").with_series(Series::new(
            format!("n = {fine}"),
            fine_x
                .iter()
                .cloned()
                .zip(fine_density.iter().cloned())
                .collect(),
        ));
    let mut errors = Vec::new();
    let mut ratios = Vec::new();
    for &n in coarse {
        let (x, density) = run(n)?;
        let every = (fine - 1) / (n - 1);
        let dx = 10.0 / (n - 1) as f64;
        let l1 = density
            .iter()
            .enumerate()
            .map(|(i, d)| (d - fine_density[i * every]).abs())
            .sum::<f64>()
            * dx;
        let ratio = amplitude(&x, &density) / reference_amplitude;
        case.metric(format!("l1_vs_fine_n{n}"), l1);
        case.metric(format!("amplitude_ratio_n{n}"), ratio);
        errors.push((format!("l1_n{n}"), l1));
        ratios.push(ratio);
        plot = plot.with_series(Series::new(
            format!("n = {n}"),
            x.into_iter().zip(density).collect(),
        ));
    }
    if errors.len() > 1 {
        case.claims.push(Claim::non_increasing(
            "shu-osher-converges",
            "Shu–Osher: the L1 density difference to the fine run falls with refinement",
            errors,
        ));
    }
    let finest = *ratios.last().unwrap();
    case.claims.push(Claim::close_to(
        "shu-osher-entropy-waves",
        format!("Shu–Osher: the {}-point run keeps the entropy-wave amplitude within 10 % of the fine run's", coarse.last().unwrap()),
        "amplitude_ratio",
        finest,
        "fine",
        1.0,
        0.1,
    ));
    case.plots.push(("shu-osher-density.svg".into(), plot));
    Ok(case)
}
