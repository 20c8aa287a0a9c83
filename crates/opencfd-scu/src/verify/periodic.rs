//! Periodic-box checks: decomposition invariance, discrete conservation and the
//! Taylor–Green vortex at Mach 0.1, Re 1600.

use sparse_repro::claim::Claim;
use sparse_repro::plot::{LinePlot, Series};

use super::{CaseResult, SuiteSize};
use crate::cases::{periodic_boundaries, taylor_green_grid, taylor_green_initial};
use crate::error::CfdResult;
use crate::gas::Gas;
use crate::hybrid::HybridSensor;
use crate::kernels::inviscid::InviscidScheme;
use crate::run::box_statistics;
use crate::scheme::{CentralDifference, Reconstruction};
use crate::solver::{Solver, SolverConfig};

/// The Taylor–Green gas: Mach 0.1, Re 1600, Pr 0.72.
fn taylor_green_gas() -> CfdResult<Gas> {
    Gas::new(1.4, 0.1, 1600.0, 0.72, 288.15)
}

fn taylor_green_config(
    inviscid: InviscidScheme,
    dt: f64,
    blocks: [usize; 3],
) -> CfdResult<SolverConfig> {
    Ok(SolverConfig {
        gas: taylor_green_gas()?,
        inviscid,
        viscous: Some(CentralDifference::Cd6),
        entropy_fix: 0.0,
        dt,
        blocks,
        boundaries: periodic_boundaries(),
        closures: [[false; 2]; 3],
        non_reflecting: [[false; 2]; 3],
        jacobian_closures: None,
        overlap: false,
    })
}

/// A stable time step for the Taylor–Green box of `n³` (acoustic CFL 0.5).
fn taylor_green_dt(n: usize) -> f64 {
    let dx = 2.0 * std::f64::consts::PI / n as f64;
    0.5 * dx / (1.0 / 0.1 + 1.0)
}

/// 1×1×1, 2×1×1 and 1×2×2 blocks give the same flow.
pub(super) fn decomposition(size: SuiteSize) -> CfdResult<CaseResult> {
    let (n, steps) = match size {
        SuiteSize::Smoke => (12, 2),
        SuiteSize::Quick => (16, 5),
        SuiteSize::Full => (32, 10),
    };
    let hybrid = InviscidScheme::Hybrid(HybridSensor::jameson([0.01, 0.2]));
    let mut case = CaseResult::new(
        "decomposition",
        format!(
            "Taylor–Green vortex on {n}³ with the hybrid scheme and CD6 viscous terms, {steps} steps on 1×1×1, 2×1×1 and 1×2×2 blocks; the largest difference of any conservative variable from the single block. The kernels read neighbours only through the halos, so the arithmetic per point is the same and the results must agree bitwise."
        ),
    );
    let grid = taylor_green_grid(n);
    let gas = taylor_green_gas()?;
    let run = |blocks: [usize; 3]| -> CfdResult<Vec<f64>> {
        let mut solver = Solver::new(
            taylor_green_config(hybrid, taylor_green_dt(n), blocks)?,
            &grid,
            taylor_green_initial(gas),
        )?;
        for _ in 0..steps {
            solver.step()?;
        }
        solver.conservative()
    };
    let single = run([1, 1, 1])?;
    for blocks in [[2, 1, 1], [1, 2, 2]] {
        let split = run(blocks)?;
        let difference = single
            .iter()
            .zip(&split)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let name = format!("{}x{}x{}", blocks[0], blocks[1], blocks[2]);
        case.metric(format!("max_difference_{name}"), difference);
        case.claims.push(Claim::at_most(
            format!("decomposition-{name}"),
            format!("{name} blocks reproduce the single block bitwise"),
            "max_difference",
            difference,
            "bound",
            0.0,
        ));
    }
    Ok(case)
}

/// Sums of the conservative variables over the periodic box stay put.
pub(super) fn conservation(size: SuiteSize) -> CfdResult<CaseResult> {
    let (n, steps) = match size {
        SuiteSize::Smoke => (12, 3),
        SuiteSize::Quick => (24, 20),
        SuiteSize::Full => (32, 50),
    };
    let mut case = CaseResult::new(
        "conservation",
        format!(
            "Taylor–Green vortex on a uniform {n}³ periodic grid with WENO7 and CD6 viscous terms, {steps} steps: the change of the box sums of mass, momentum and energy, relative to the sum of |value| (round-off is about 1e-16 per operation)."
        ),
    );
    let grid = taylor_green_grid(n);
    let gas = taylor_green_gas()?;
    let mut solver = Solver::new(
        taylor_green_config(
            InviscidScheme::Fixed(Reconstruction::Weno7),
            taylor_green_dt(n),
            [2, 1, 1],
        )?,
        &grid,
        taylor_green_initial(gas),
    )?;
    let cells = n * n * n;
    let sums = |q: &[f64]| -> Vec<(f64, f64)> {
        (0..5)
            .map(|c| {
                let slice = &q[c * cells..(c + 1) * cells];
                (
                    slice.iter().sum::<f64>(),
                    slice.iter().map(|v| v.abs()).sum::<f64>(),
                )
            })
            .collect()
    };
    let before = sums(&solver.conservative()?);
    for _ in 0..steps {
        solver.step()?;
    }
    let after = sums(&solver.conservative()?);
    let names = ["mass", "x-momentum", "y-momentum", "z-momentum", "energy"];
    for (c, name) in names.iter().enumerate() {
        let drift = (after[c].0 - before[c].0).abs() / before[c].1.max(after[c].1);
        case.metric(format!("relative_drift_{name}"), drift);
        case.claims.push(Claim::at_most(
            format!("conservation-{name}"),
            format!("{name} is conserved to round-off (relative drift at most 1e-12)"),
            "relative_drift",
            drift,
            "bound",
            1e-12,
        ));
    }
    Ok(case)
}

/// The Taylor–Green vortex: kinetic-energy decay and the dissipation-rate peak.
pub(super) fn taylor_green(size: SuiteSize) -> CfdResult<CaseResult> {
    let (n, end_time) = match size {
        SuiteSize::Smoke => (12, 1.0),
        SuiteSize::Quick => (32, 12.0),
        SuiteSize::Full => (64, 14.0),
    };
    let scheme = Reconstruction::Up7;
    let mut case = CaseResult::new(
        "taylor-green",
        format!(
            "Taylor–Green vortex, Mach 0.1, Re 1600, Pr 0.72, Sutherland viscosity, on {n}³ with {} and CD6 to t = {end_time}. Kinetic energy E = ⟨ρ|u|²⟩/(2⟨ρ⟩); its dissipation rate ε = −dE/dt by central differences of samples every 0.1. Reference: spectral DNS (Brachet et al. 1983; van Rees et al. 2011) puts the peak ε ≈ 0.0127 at t ≈ 9; grids below about 128³ under-resolve it.",
            scheme.name()
        ),
    );
    let grid = taylor_green_grid(n);
    let gas = taylor_green_gas()?;
    let sample_every = 0.1;
    let dt = taylor_green_dt(n).min(sample_every);
    let steps_per_sample = (sample_every / dt).ceil() as usize;
    let dt = sample_every / steps_per_sample as f64;
    let mut solver = Solver::new(
        taylor_green_config(InviscidScheme::Fixed(scheme), dt, [1, 1, 1])?,
        &grid,
        taylor_green_initial(gas),
    )?;
    let kinetic = |solver: &Solver| box_statistics(solver).map(|(energy, _)| energy);
    let mut samples = vec![(0.0, kinetic(&solver)?)];
    let samples_total = (end_time / sample_every).round() as usize;
    for _ in 0..samples_total {
        for _ in 0..steps_per_sample {
            solver.step()?;
        }
        samples.push((solver.time, kinetic(&solver)?));
    }
    let dissipation: Vec<(f64, f64)> = samples
        .windows(3)
        .map(|w| (w[1].0, -(w[2].1 - w[0].1) / (w[2].0 - w[0].0)))
        .collect();
    let (peak_time, peak) =
        dissipation.iter().cloned().fold(
            (0.0, f64::MIN),
            |best, s| if s.1 > best.1 { s } else { best },
        );
    case.metric("initial_kinetic_energy", samples[0].1);
    case.metric("final_kinetic_energy", samples.last().unwrap().1);
    case.metric("peak_dissipation", peak);
    case.metric("peak_dissipation_time", peak_time);
    case.metric("steps", solver.steps as f64);
    case.claims.push(Claim::close_to(
        "taylor-green-initial-energy",
        "Taylor–Green: the initial kinetic energy is 1/8",
        "initial_kinetic_energy",
        samples[0].1,
        "exact",
        0.125,
        1e-3,
    ));
    let largest_rise = samples
        .windows(2)
        .map(|w| w[1].1 - w[0].1)
        .fold(f64::MIN, f64::max);
    case.metric("largest_energy_rise_between_samples", largest_rise);
    case.claims.push(Claim::at_most(
        "taylor-green-energy-decays",
        "Taylor–Green: the kinetic energy decays monotonically (no rise between samples 0.1 apart)",
        "largest_rise",
        largest_rise,
        "bound",
        0.0,
    ));
    if end_time >= 10.0 {
        case.claims.push(Claim::close_to(
            "taylor-green-peak-near-9",
            "Taylor–Green: the dissipation rate peaks near t = 9 (within ±1)",
            "peak_time",
            peak_time,
            "reference",
            9.0,
            1.0,
        ));
    }
    case.plots.push((
        "taylor-green-energy.svg".into(),
        LinePlot::new(
            format!("Taylor–Green vortex {n}³: kinetic energy"),
            "t",
            "E",
        )
        .with_series(Series::new(scheme.name(), samples.clone())),
    ));
    case.plots.push((
        "taylor-green-dissipation.svg".into(),
        LinePlot::new(
            format!("Taylor–Green vortex {n}³: dissipation rate"),
            "t",
            "−dE/dt",
        )
        .with_series(Series::new(scheme.name(), dissipation)),
    ));
    Ok(case)
}
