//! Sparseland benchmark reports.
//!
//! `cargo run --release -p sparse-benches -- kernels [--quick] [--only KERNEL] [--out PATH]`
//! times every
//! custom kernel of `sparse_core::kernels` against candle's own op on the same inputs,
//! prints a table plus the performance targets with PASS/FAIL, and writes a JSON array
//! to `target/kernel-report.json` (or `PATH`).
//!
//! `cargo run --release -p sparse-benches -- train [--quick] [--only TEXT] [--out PATH]
//! [--torch PATH]` times one whole training step and one evaluation pass of every
//! paper crate's `quick` model at its `quick` densities and writes
//! `target/train-report.json` (or `PATH`); with `--torch` it prints them beside
//! `shared/pytorch/train_step_bench.py`'s JSON with the targets of issue #20.
//!
//! `cargo run --release -p sparse-benches -- cfd [--sizes 32,64] [--threads 1,all]
//! [--steps N] [--quick] [--only SCHEME] [--no-stream] [--out PATH]` times opencfd-scu's
//! Taylor–Green vortex step per inviscid scheme in ns per grid point per RK stage,
//! beside the STREAM-triad bandwidth of the machine and the bandwidth the solver
//! achieves under its byte model, and writes `runs/benches/cfd.json` (or `PATH`).

mod cfd_report;
mod inputs;
mod kernel_report;
mod report_file;
mod timing;
mod train_compare;
mod train_report;

use anyhow::{Result, bail};

const USAGE: &str = "usage: sparse-benches kernels [--quick] [--only KERNEL] [--out PATH]
       sparse-benches train [--quick] [--only TEXT] [--out PATH] [--torch PATH]
       sparse-benches cfd [--sizes 32,64] [--threads 1,all] [--steps N] [--quick] [--only SCHEME] [--no-stream] [--out PATH]";

fn main() -> Result<()> {
    sparse_core::malloc::retain_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let Some((command, flags)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match command.as_str() {
        "kernels" => kernels(flags),
        "train" => match train_report::Options::parse(flags) {
            Ok(options) => train_report::run(&options),
            Err(e) => bail!("{e}; {USAGE}"),
        },
        "cfd" => match cfd_report::Options::parse(flags) {
            Ok(options) => cfd_report::run(&options),
            Err(e) => bail!("{e}; {USAGE}"),
        },
        _ => bail!("unknown command `{command}`; {USAGE}"),
    }
}

fn kernels(flags: &[String]) -> Result<()> {
    let mut options = kernel_report::Options::default();
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        match flag.as_str() {
            "--quick" => options.quick = true,
            "--only" => match flags.next() {
                Some(kernel) => options.only = Some(kernel.clone()),
                None => bail!("`--only` needs a kernel name; {USAGE}"),
            },
            "--out" => match flags.next() {
                Some(path) => options.out = path.into(),
                None => bail!("`--out` needs a path; {USAGE}"),
            },
            other => bail!("unknown flag `{other}`; {USAGE}"),
        }
    }
    kernel_report::run(&options)
}
