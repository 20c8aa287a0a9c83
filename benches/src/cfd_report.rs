//! The `cfd` report: opencfd-scu's time step on the Taylor–Green vortex box, per
//! inviscid scheme, in nanoseconds per grid point per Runge–Kutta stage, at 1 thread
//! and on the global rayon pool, beside the machine's STREAM-triad bandwidth.
//!
//! The case is the verification suite's Taylor–Green vortex (Mach 0.1, Re 1600,
//! Pr 0.72, Sutherland at 288.15 K, CD6 viscous terms, Steger–Warming without entropy
//! fix, TVD RK3, one block, `dt = 0.5 (2π/n) / 11`). Each row builds a fresh solver,
//! takes two warm-up steps and reports the median wall time of `Solver::step` over
//! the timed steps, divided by `3 n³` (three stages per step).
//!
//! The achieved bandwidth divides the [byte model](TRAFFIC) of one stage by that
//! time; the model counts the compulsory memory traffic of the fused kernels, the
//! same convention as STREAM's (no write-allocate traffic), so it is a lower bound
//! of what the hardware moves and the ratio to STREAM says how far from
//! memory-bound the solver is.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use opencfd_scu::cases::{periodic_boundaries, taylor_green_grid, taylor_green_initial};
use opencfd_scu::gas::Gas;
use opencfd_scu::hybrid::HybridSensor;
use opencfd_scu::kernels::inviscid::InviscidScheme;
use opencfd_scu::scheme::{CentralDifference, Omp6Variant, Reconstruction};
use opencfd_scu::solver::{Solver, SolverConfig};
use rayon::prelude::*;
use serde::Serialize;

use crate::kernel_report::machine;
use crate::report_file::write_json;

/// Untimed steps before the timed ones.
const WARM_UP_STEPS: usize = 2;

/// Command-line options of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Grid sizes `n` of the `n³` box.
    pub sizes: Vec<usize>,
    /// Timed steps per row (after the warm-up).
    pub steps: usize,
    /// Thread counts: `None` is the global pool (all cores).
    pub threads: Vec<Option<usize>>,
    /// Only the schemes whose name contains this (case-insensitive).
    pub only: Option<String>,
    /// Skip the STREAM measurement.
    pub no_stream: bool,
    /// Where the JSON goes.
    pub out: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sizes: vec![64],
            steps: 10,
            threads: vec![Some(1), None],
            only: None,
            no_stream: false,
            out: PathBuf::from("runs/benches/cfd.json"),
        }
    }
}

/// Parses a comma-separated list.
fn list<T>(text: &str, item: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    let items = text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| item(s.trim()))
        .collect::<Result<Vec<_>>>()?;
    if items.is_empty() {
        bail!("empty list `{text}`");
    }
    Ok(items)
}

impl Options {
    /// Parses the flags after `cfd`.
    pub fn parse(flags: &[String]) -> Result<Self> {
        let mut options = Self::default();
        let mut flags = flags.iter();
        while let Some(flag) = flags.next() {
            let mut value = |what: &str| match flags.next() {
                Some(v) => Ok(v.clone()),
                None => bail!("`{flag}` needs {what}"),
            };
            match flag.as_str() {
                "--quick" => options.steps = 3,
                "--sizes" => {
                    options.sizes = list(&value("grid sizes such as 32,64")?, |s| {
                        match s.parse::<usize>() {
                            Ok(n) if n >= 8 => Ok(n),
                            _ => bail!("grid size `{s}` is not an integer ≥ 8"),
                        }
                    })?
                }
                "--steps" => {
                    options.steps = match value("a step count")?.parse::<usize>() {
                        Ok(n) if n > 0 => n,
                        _ => bail!("`--steps` needs a positive integer"),
                    }
                }
                "--threads" => {
                    options.threads = list(&value("thread counts such as 1,all")?, |s| match s {
                        "all" => Ok(None),
                        _ => match s.parse::<usize>() {
                            Ok(n) if n > 0 => Ok(Some(n)),
                            _ => bail!("thread count `{s}` is neither `all` nor positive"),
                        },
                    })?
                }
                "--only" => options.only = Some(value("a scheme filter")?),
                "--no-stream" => options.no_stream = true,
                "--out" => options.out = value("a path")?.into(),
                other => bail!("unknown flag `{other}`"),
            }
        }
        Ok(options)
    }
}

/// The inviscid schemes of the report, by their official names.
fn schemes() -> Vec<(&'static str, InviscidScheme)> {
    use Reconstruction::*;
    vec![
        ("UP7", InviscidScheme::Fixed(Up7)),
        ("WENO5", InviscidScheme::Fixed(Weno5)),
        ("WENO7", InviscidScheme::Fixed(Weno7)),
        ("OMP6_LD", InviscidScheme::Fixed(Omp6(Omp6Variant::Ld))),
        (
            "hybrid",
            InviscidScheme::Hybrid(HybridSensor::jameson([0.01, 0.2])),
        ),
        ("NND2", InviscidScheme::Fixed(Nnd2)),
    ]
}

/// One pass of the byte model: `f64` values read and written per interior grid
/// point per Runge–Kutta stage.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Traffic {
    /// The kernel or operation.
    pub pass: &'static str,
    /// Values read.
    pub reads: f64,
    /// Values written.
    pub writes: f64,
    /// Whether only the hybrid scheme runs it.
    pub hybrid_only: bool,
}

const fn traffic(pass: &'static str, reads: f64, writes: f64, hybrid_only: bool) -> Traffic {
    Traffic {
        pass,
        reads,
        writes,
        hybrid_only,
    }
}

/// The byte model of one stage (`Solver::step` is three): every field a kernel
/// touches counted once per point per pass, stencil neighbours assumed to come from
/// cache (a y or z sweep batches whole planes or pencils, the viscous stencils span
/// 9 planes of 72² points, under the 2 MiB L2), ghost layers and halo fills not
/// counted (at 64³ the padded field is 1.42× the interior), no write-allocate
/// traffic (as STREAM counts). Read from `opencfd_scu::solver::Solver::step` and
/// `opencfd_scu::kernels`:
///
/// - `Solver::right_hand_sides` allocates the right-hand side `zeros_like` (5 writes);
/// - `Primitives`: the 5 conservative variables read, density, velocity, pressure,
///   sound speed and temperature written (7), once per stage for all kernels;
/// - `InviscidFlux`, once per direction: density, velocity and sound speed (5), the
///   direction's 3 metric cofactors and the Jacobian, and the right-hand side it adds
///   to (5 reads, 5 writes); the hybrid scheme also reads the sensor slot;
/// - `ViscousFlux`: velocity and temperature (their CD6 stencils) and the 9
///   cofactors + Jacobian, and 12 flux components written;
/// - `ViscousDivergence`: the 12 flux components, the Jacobian, and the 4 momentum
///   and energy right-hand sides it adds to;
/// - `RungeKuttaStage`: state, start-of-step state and right-hand side (15 reads),
///   state written (5);
/// - once per step, the start-of-step copy of the state (5 + 5), a third per stage;
/// - hybrid only: `JamesonSensor` (pressure read, 1 write) and `StoreSensor` (1 + 1).
///
/// 144.3 values (1155 bytes) per point per stage, 151.3 (1211 bytes) for hybrid.
pub const TRAFFIC: [Traffic; 10] = [
    traffic("rhs zeros_like", 0.0, 5.0, false),
    traffic(
        "InviscidFlux x3 (ρ u v w c 5, metrics 3, J 1, rhs 5 / rhs 5)",
        42.0,
        15.0,
        false,
    ),
    traffic("InviscidFlux hybrid sensor x3", 3.0, 0.0, true),
    traffic("Primitives (q 5 / ρ u v w p c T 7)", 5.0, 7.0, false),
    traffic(
        "ViscousFlux fluxes (u v w T 4, geometry 10 / 12)",
        14.0,
        12.0,
        false,
    ),
    traffic(
        "ViscousDivergence (flux 12, J 1, rhs 4 / rhs 4)",
        17.0,
        4.0,
        false,
    ),
    traffic("RungeKuttaStage (q, q0, rhs / q)", 15.0, 5.0, false),
    traffic(
        "start-of-step copy, 1/3 per stage",
        5.0 / 3.0,
        5.0 / 3.0,
        false,
    ),
    traffic("JamesonSensor (p 1 / sensor 1)", 1.0, 1.0, true),
    traffic("StoreSensor (sensor / geometry slot)", 1.0, 1.0, true),
];

/// Bytes per interior point per stage under [`TRAFFIC`].
pub fn bytes_per_point_stage(hybrid: bool) -> f64 {
    let values: f64 = TRAFFIC
        .iter()
        .filter(|t| hybrid || !t.hybrid_only)
        .map(|t| t.reads + t.writes)
        .sum();
    values * std::mem::size_of::<f64>() as f64
}

/// The STREAM-triad measurement.
#[derive(Debug, Clone, Serialize)]
struct Stream {
    /// Elements of each of the three `f64` arrays.
    elements: usize,
    /// Size of each array in MiB.
    array_mib: f64,
    /// The largest cache the kernel reports, in MiB.
    largest_cache_mib: f64,
    /// Repetitions; the best is kept.
    reps: usize,
    /// Bytes counted per element: 2 reads + 1 write.
    bytes_per_element: usize,
    /// Best bandwidth on 1 thread, GB/s (1e9 bytes).
    gb_s_1_thread: f64,
    /// Best bandwidth on the global pool, GB/s.
    gb_s_all_threads: f64,
    /// Threads of the global pool.
    all_threads: usize,
}

/// The largest data or unified cache of CPU 0 in bytes (sysfs), if readable.
fn largest_cache_bytes() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dir.filter_map(|entry| {
        let path = entry.ok()?.path();
        let kind = std::fs::read_to_string(path.join("type")).ok()?;
        if kind.trim() == "Instruction" {
            return None;
        }
        let size = std::fs::read_to_string(path.join("size")).ok()?;
        let size = size.trim();
        let (digits, scale) = match size.as_bytes().last()? {
            b'K' => (&size[..size.len() - 1], 1 << 10),
            b'M' => (&size[..size.len() - 1], 1 << 20),
            b'G' => (&size[..size.len() - 1], 1 << 30),
            _ => (size, 1),
        };
        Some(digits.parse::<usize>().ok()? * scale)
    })
    .max()
}

/// The best bandwidth of `reps` runs of `pass`, which moves `bytes`, in GB/s.
fn best_gb_s(reps: usize, bytes: f64, mut pass: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            pass();
            bytes / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// `a[i] = b[i] + s c[i]` over arrays of twice the largest cache each (at least 64
/// MiB, at most 1 GiB), first-touched by the threads that stream them; best of
/// `reps` passes, single thread and on the global pool (chunks of 64 Ki elements).
fn stream_triad(reps: usize) -> Stream {
    const MIB: usize = 1 << 20;
    let cache = largest_cache_bytes().unwrap_or(64 * MIB);
    let array_bytes = (2 * cache).clamp(64 * MIB, 1024 * MIB);
    let n = array_bytes / std::mem::size_of::<f64>();
    const CHUNK: usize = 1 << 16;
    let mut a = vec![0.0f64; n];
    let mut b = vec![0.0f64; n];
    let mut c = vec![0.0f64; n];
    // First touch in parallel (`vec!` of zeros maps fresh pages).
    a.par_chunks_mut(CHUNK)
        .zip(b.par_chunks_mut(CHUNK))
        .zip(c.par_chunks_mut(CHUNK))
        .for_each(|((a, b), c)| {
            a.fill(0.5);
            b.fill(1.0);
            c.fill(2.0);
        });
    let s = 3.0f64;
    let bytes = (3 * n * std::mem::size_of::<f64>()) as f64;
    let gb_s_1_thread = best_gb_s(reps, bytes, || {
        for ((a, b), c) in a.iter_mut().zip(&b).zip(&c) {
            *a = b + s * c;
        }
        std::hint::black_box(&a);
    });
    let gb_s_all_threads = best_gb_s(reps, bytes, || {
        a.par_chunks_mut(CHUNK)
            .zip(b.par_chunks(CHUNK))
            .zip(c.par_chunks(CHUNK))
            .for_each(|((a, b), c)| {
                for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
                    *a = b + s * c;
                }
            });
        std::hint::black_box(&a);
    });
    Stream {
        elements: n,
        array_mib: array_bytes as f64 / MIB as f64,
        largest_cache_mib: cache as f64 / MIB as f64,
        reps,
        bytes_per_element: 3 * std::mem::size_of::<f64>(),
        gb_s_1_thread,
        gb_s_all_threads,
        all_threads: rayon::current_num_threads(),
    }
}

/// One measured row.
#[derive(Debug, Clone, Serialize)]
struct Row {
    n: usize,
    scheme: String,
    threads: usize,
    timed_steps: usize,
    warm_up_steps: usize,
    step_ms_median: f64,
    step_ms_min: f64,
    ns_per_point_stage: f64,
    bytes_per_point_stage: f64,
    /// `bytes_per_point_stage / ns_per_point_stage`.
    achieved_gb_s: f64,
    /// Achieved over STREAM triad at the same thread count.
    fraction_of_stream: Option<f64>,
    /// Whether the flow was still finite after the timed steps (a blown-up flow is
    /// reported, flagged, rather than ending the report).
    finite: bool,
}

/// The whole JSON file.
#[derive(Debug, Clone, Serialize)]
struct Report {
    machine: String,
    case: String,
    byte_model: Vec<Traffic>,
    stream: Option<Stream>,
    rows: Vec<Row>,
}

/// A row's timings.
struct Timing {
    /// Median step, ms.
    median_ms: f64,
    /// Fastest step, ms.
    min_ms: f64,
    /// Whether the flow was still finite after the last step.
    finite: bool,
}

/// Times `steps` steps of a fresh solver after the warm-up.
fn time_steps(n: usize, scheme: InviscidScheme, steps: usize) -> Result<Timing> {
    let gas = Gas::new(1.4, 0.1, 1600.0, 0.72, 288.15)?;
    let config = SolverConfig {
        gas,
        inviscid: scheme,
        viscous: Some(CentralDifference::Cd6),
        entropy_fix: 0.0,
        dt: 0.5 * (2.0 * std::f64::consts::PI / n as f64) / 11.0,
        blocks: [1, 1, 1],
        boundaries: periodic_boundaries(),
        closures: [[false; 2]; 3],
        non_reflecting: [[false; 2]; 3],
        jacobian_closures: None,
        overlap: false,
    };
    let mut solver = Solver::new(config, &taylor_green_grid(n), taylor_green_initial(gas))?;
    for _ in 0..WARM_UP_STEPS {
        solver.step()?;
    }
    let mut samples = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = Instant::now();
        solver.step()?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let finite = solver.conservative()?.iter().all(|v| v.is_finite());
    samples.sort_by(f64::total_cmp);
    let m = samples.len();
    let median = if m % 2 == 1 {
        samples[m / 2]
    } else {
        0.5 * (samples[m / 2 - 1] + samples[m / 2])
    };
    Ok(Timing {
        median_ms: median,
        min_ms: samples[0],
        finite,
    })
}

fn threads_label(threads: Option<usize>) -> String {
    match threads {
        Some(t) => t.to_string(),
        None => format!("all ({})", rayon::current_num_threads()),
    }
}

/// Runs the whole report.
pub fn run(options: &Options) -> Result<()> {
    let machine = machine();
    println!("# cfd: opencfd-scu Taylor–Green vortex step ({machine})");
    println!();
    println!(
        "Case: periodic TGV box n³, M 0.1, Re 1600, Pr 0.72, Steger–Warming, CD6 viscous, RK3, \
         dt = 0.5 (2π/n)/11, 1 block; median of {} steps after {WARM_UP_STEPS} warm-up steps; \
         ns per point per RK stage = step / (3 n³).",
        options.steps
    );
    println!();
    println!("Byte model (f64 values per interior point per stage, reads / writes):");
    for t in &TRAFFIC {
        let hybrid = if t.hybrid_only { " [hybrid only]" } else { "" };
        println!(
            "  {:<58} {:>6.2} / {:>5.2}{hybrid}",
            t.pass, t.reads, t.writes
        );
    }
    println!(
        "  total: {:.0} bytes per point per stage ({:.0} for hybrid)",
        bytes_per_point_stage(false),
        bytes_per_point_stage(true)
    );
    println!();

    let mut report = Report {
        machine,
        case: format!(
            "Taylor–Green vortex n³ in [-π, π]³, Gas::new(1.4, 0.1, 1600, 0.72, 288.15), \
             viscous CD6, entropy fix 0, dt = 0.5 (2π/n)/11, blocks [1,1,1]; \
             {WARM_UP_STEPS} warm-up steps, median of {} timed steps",
            options.steps
        ),
        byte_model: TRAFFIC.to_vec(),
        stream: None,
        rows: Vec::new(),
    };
    if !options.no_stream {
        let stream = stream_triad(10);
        println!(
            "STREAM triad (a = b + s·c, 3 arrays of {:.0} MiB, largest cache {:.0} MiB, best of {}): \
             {:.1} GB/s on 1 thread, {:.1} GB/s on {} threads",
            stream.array_mib,
            stream.largest_cache_mib,
            stream.reps,
            stream.gb_s_1_thread,
            stream.gb_s_all_threads,
            stream.all_threads
        );
        println!();
        report.stream = Some(stream);
    }
    write_json(&options.out, &report)?;

    println!(
        "| n | scheme | threads | step ms (median) | ns/point/stage | achieved GB/s | of STREAM |"
    );
    println!("|---|---|---|---|---|---|---|");
    let only = options.only.as_ref().map(|o| o.to_lowercase());
    for &n in &options.sizes {
        for &threads in &options.threads {
            for (name, scheme) in schemes() {
                if only
                    .as_ref()
                    .is_some_and(|o| !name.to_lowercase().contains(o.as_str()))
                {
                    continue;
                }
                let steps = options.steps;
                let timing = match threads {
                    Some(t) => rayon::ThreadPoolBuilder::new()
                        .num_threads(t)
                        .build()?
                        .install(|| time_steps(n, scheme, steps))?,
                    None => time_steps(n, scheme, steps)?,
                };
                let thread_count = threads.unwrap_or_else(rayon::current_num_threads);
                let Timing {
                    median_ms: median,
                    min_ms: min,
                    finite,
                } = timing;
                let ns = median * 1e6 / (3.0 * (n * n * n) as f64);
                let bytes = bytes_per_point_stage(matches!(scheme, InviscidScheme::Hybrid(_)));
                let achieved = bytes / ns;
                let stream = report.stream.as_ref().and_then(|s| match thread_count {
                    1 => Some(s.gb_s_1_thread),
                    t if t == s.all_threads => Some(s.gb_s_all_threads),
                    _ => None,
                });
                let fraction = stream.map(|s| achieved / s);
                // A flow that blew up is still timed, but flagged: NaN arithmetic
                // may run at another speed.
                let flag = if finite { "" } else { " (not finite!)" };
                println!(
                    "| {n}³ | {name}{flag} | {} | {median:.1} | {ns:.1} | {achieved:.2} | {} |",
                    threads_label(threads),
                    fraction.map_or("-".into(), |f| format!("{:.0} %", 100.0 * f))
                );
                std::io::stdout().flush()?;
                report.rows.push(Row {
                    n,
                    scheme: name.into(),
                    threads: thread_count,
                    timed_steps: steps,
                    warm_up_steps: WARM_UP_STEPS,
                    step_ms_median: median,
                    step_ms_min: min,
                    ns_per_point_stage: ns,
                    bytes_per_point_stage: bytes,
                    achieved_gb_s: achieved,
                    fraction_of_stream: fraction,
                    finite,
                });
                write_json(&options.out, &report)?;
            }
        }
    }
    println!();
    println!("wrote {}", options.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_model_totals_are_the_documented_ones() {
        assert!((bytes_per_point_stage(false) - 144.0 / 0.125 - 8.0 / 3.0).abs() < 1e-9);
        assert!((bytes_per_point_stage(true) - 151.0 / 0.125 - 8.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn flags_parse() {
        let flags: Vec<String> = ["--sizes", "32,64", "--threads", "1", "--steps", "4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let options = Options::parse(&flags).unwrap();
        assert_eq!(options.sizes, vec![32, 64]);
        assert_eq!(options.threads, vec![Some(1)]);
        assert_eq!(options.steps, 4);
        assert!(Options::parse(&["--sizes".to_string(), "x".to_string()]).is_err());
    }
}
