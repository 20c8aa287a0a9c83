//! The `kernels` report: ours vs candle on the shapes of the papers we reproduce.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use candle_core::{Tensor, Var};
use serde::Serialize;
use sparse_core::kernels::{
    Conv1dPadding, Conv2dParams, PackedSparseLinear, SparseConv1d, SparseConv2d,
    SparseDepthwiseConv2d, SparseLinear, WeightGrad, conv2d_candle, conv2d_custom,
    depthwise_conv2d_candle, depthwise_conv2d_custom,
};

use crate::inputs::{masked, random_mask, uniform};
use crate::timing::{Measurement, Timer};

/// Command-line options of the report.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fewer repetitions (every baseline is still measured at least once).
    pub quick: bool,
    /// Where the JSON array goes.
    pub out: PathBuf,
    /// Only the sections whose kernel name contains this (for quick iterations).
    pub only: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            quick: false,
            out: PathBuf::from("target/kernel-report.json"),
            only: None,
        }
    }
}

/// One row of `kernel-report.json`.
#[derive(Debug, Clone, Serialize)]
struct Entry {
    kernel: String,
    shape: String,
    density: f64,
    pass: String,
    ours_ms: f64,
    /// `None` (JSON `null`) only if candle was not measured; this report always measures.
    candle_ms: Option<f64>,
    speedup: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Fwd,
    FwdBwd,
}

impl Pass {
    fn as_str(self) -> &'static str {
        match self {
            Pass::Fwd => "fwd",
            Pass::FwdBwd => "fwd+bwd",
        }
    }
}

struct Report {
    ours: Timer,
    candle: Timer,
    /// Candle's dense baseline does not depend on the mask, so sparse rows of one shape
    /// share one measurement of it (taken in this run).
    candle_cache: HashMap<String, Measurement>,
    entries: Vec<Entry>,
    out: PathBuf,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        kernel: &str,
        shape: &str,
        density: f64,
        pass: Pass,
        ours: impl FnMut() -> Result<()>,
        candle_key: &str,
        candle: impl FnMut() -> Result<()>,
    ) -> Result<()> {
        let o = self.ours.measure(ours)?;
        let key = format!("{candle_key}|{}", pass.as_str());
        let c = match self.candle_cache.get(&key) {
            Some(m) => *m,
            None => {
                let m = self.candle.measure(candle)?;
                self.candle_cache.insert(key, m);
                m
            }
        };
        let entry = Entry {
            kernel: kernel.into(),
            shape: shape.into(),
            density,
            pass: pass.as_str().into(),
            ours_ms: o.median_ms,
            candle_ms: Some(c.median_ms),
            speedup: Some(c.median_ms / o.median_ms),
        };
        println!(
            "{:<24} {:<34} {:>7.2} {:<8} {:>10.3} {:>11.3} {:>8.2}x   ({}/{} reps)",
            entry.kernel,
            entry.shape,
            density,
            entry.pass,
            o.median_ms,
            c.median_ms,
            c.median_ms / o.median_ms,
            o.reps,
            c.reps
        );
        std::io::stdout().flush()?;
        self.entries.push(entry);
        self.write()
    }

    fn write(&self) -> Result<()> {
        crate::report_file::write_json(&self.out, &self.entries)
    }

    fn find(&self, kernel: &str, shape: &str, density: f64, pass: Pass) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            e.kernel == kernel
                && e.shape == shape
                && (e.density - density).abs() < 1e-9
                && e.pass == pass.as_str()
        })
    }
}

fn backward(y: Tensor) -> Result<()> {
    y.sum_all()?.backward()?;
    Ok(())
}

const DW_SHAPES: [(usize, usize); 5] = [(7, 7), (13, 13), (31, 31), (51, 5), (5, 51)];
const SPARSE_DENSITIES: [f64; 5] = [1.0, 0.5, 0.2, 0.1, 0.05];

fn dw_shape(k: usize, n: usize) -> String {
    format!("b8 c96 56x56 k{k}x{n}")
}

fn sparse_linear(rep: &mut Report) -> Result<()> {
    let shape = "b256 1024x1024";
    let x = uniform(&[256, 1024], 10)?;
    let w = uniform(&[1024, 1024], 11)?;
    for (i, &density) in SPARSE_DENSITIES.iter().enumerate() {
        let mask = random_mask(&[1024, 1024], density, 12 + i as u64)?;
        let wm = masked(&w, &mask)?;
        let (xv, wv) = (Var::from_tensor(&x)?, Var::from_tensor(&wm)?);
        // The dense-stored layer needs its weight as a `Var` for the backward pass; the
        // packed layer owns its values as a `Var` already.
        let plain = SparseLinear::new(wm.clone(), &mask)?;
        let tracked = SparseLinear::new(wv.as_tensor().clone(), &mask)?;
        let packed = PackedSparseLinear::new(&wm, &mask)?;
        type Forward<'a> = &'a dyn Fn(&Tensor) -> sparse_core::Result<Tensor>;
        let layers: [(&str, Forward, Forward); 2] = [
            ("sparse_linear", &|x| plain.forward_custom(x), &|x| {
                tracked.forward_custom(x)
            }),
            (
                "sparse_linear_packed",
                &|x| packed.forward_custom(x),
                &|x| packed.forward_custom(x),
            ),
        ];
        // Candle: a plain dense matmul on the already-masked weight.
        let key = format!("linear|{shape}|{density}");
        for (kernel, fwd, fwd_tracked) in layers {
            rep.row(
                kernel,
                shape,
                density,
                Pass::Fwd,
                || Ok(fwd(&x).map(drop)?),
                &key,
                || Ok(x.matmul(&wm.t()?).map(drop)?),
            )?;
            rep.row(
                kernel,
                shape,
                density,
                Pass::FwdBwd,
                || backward(fwd_tracked(xv.as_tensor())?),
                &key,
                || backward(xv.as_tensor().matmul(&wv.as_tensor().t()?)?),
            )?;
        }
    }
    Ok(())
}

fn sparse_conv1d(rep: &mut Report) -> Result<()> {
    let shape = "b16 c141->141 L128 k39 replicate";
    let (b, c, l, k) = (16, 141, 128, 39);
    let x = uniform(&[b, c, l], 20)?;
    let w = uniform(&[c, c, k], 21)?;
    let (xv, wv) = (Var::from_tensor(&x)?, Var::from_tensor(&w)?);
    // Candle: its native conv1d on the replicate-padded input (the masked weight's zeros
    // do not change its cost, so one measurement serves every density).
    let candle_fwd = |x: &Tensor, w: &Tensor| -> Result<Tensor> {
        Ok(x.pad_with_same(2, 0, k - 1)?.conv1d(w, 0, 1, 1, 1)?)
    };
    for (i, &density) in [1.0, 0.5, 0.2, 0.13, 0.1, 0.05].iter().enumerate() {
        let mask = random_mask(&[c, c, k], density, 22 + i as u64)?;
        let layer = SparseConv1d::new(w.clone(), &mask, Conv1dPadding::ReplicateRight)?;
        let layer_v =
            SparseConv1d::new(wv.as_tensor().clone(), &mask, Conv1dPadding::ReplicateRight)?;
        rep.row(
            "sparse_conv1d",
            shape,
            density,
            Pass::Fwd,
            || Ok(layer.forward_custom(&x).map(drop)?),
            shape,
            || candle_fwd(&x, &w).map(drop),
        )?;
        rep.row(
            "sparse_conv1d",
            shape,
            density,
            Pass::FwdBwd,
            || backward(layer_v.forward_custom(xv.as_tensor())?),
            shape,
            || backward(candle_fwd(xv.as_tensor(), wv.as_tensor())?),
        )?;
    }
    Ok(())
}

fn conv2d(rep: &mut Report) -> Result<()> {
    let cases = [
        ("b32 64->64 32x32 k3 s1 p1", [32, 64, 32, 32], 64, 3, 1, 1),
        ("b32 64->128 32x32 k3 s2 p1", [32, 64, 32, 32], 128, 3, 2, 1),
        ("b32 64->128 32x32 k1 s2 p0", [32, 64, 32, 32], 128, 1, 2, 0),
        ("b32 64->64 32x32 k1 s1 p0", [32, 64, 32, 32], 64, 1, 1, 0),
    ];
    for (i, (shape, xs, cout, k, stride, padding)) in cases.into_iter().enumerate() {
        let p = Conv2dParams { stride, padding };
        let x = uniform(&xs, 30 + i as u64)?;
        let w = uniform(&[cout, xs[1], k, k], 40 + i as u64)?;
        let (xv, wv) = (Var::from_tensor(&x)?, Var::from_tensor(&w)?);
        rep.row(
            "conv2d",
            shape,
            1.0,
            Pass::Fwd,
            || Ok(conv2d_custom(&x, &w, None, p).map(drop)?),
            shape,
            || Ok(conv2d_candle(&x, &w, None, p).map(drop)?),
        )?;
        rep.row(
            "conv2d",
            shape,
            1.0,
            Pass::FwdBwd,
            || backward(conv2d_custom(xv.as_tensor(), wv.as_tensor(), None, p)?),
            shape,
            || backward(conv2d_candle(xv.as_tensor(), wv.as_tensor(), None, p)?),
        )?;
    }
    Ok(())
}

/// The 3x3 layers of ResNet-8/20 on CIFAR and the reference shape:
/// `(shape, [B, C, H, W], O)`, all stride 1, padding 1.
const SPARSE_CONV2D_SHAPES: [(&str, [usize; 4], usize); 4] = [
    ("b32 16->16 32x32 k3 s1 p1", [32, 16, 32, 32], 16),
    ("b32 32->32 16x16 k3 s1 p1", [32, 32, 16, 16], 32),
    ("b32 64->64 8x8 k3 s1 p1", [32, 64, 8, 8], 64),
    ("b32 64->64 32x32 k3 s1 p1", [32, 64, 32, 32], 64),
];

/// Sparse conv2d (masked weight gradient) against our dense im2col + gemm conv2d on
/// the masked weight (the "candle" column of these rows is `conv2d_custom`).
fn sparse_conv2d(rep: &mut Report) -> Result<()> {
    let p = Conv2dParams {
        stride: 1,
        padding: 1,
    };
    for (i, (shape, xs, cout)) in SPARSE_CONV2D_SHAPES.into_iter().enumerate() {
        let x = uniform(&xs, 70 + i as u64)?;
        let w = uniform(&[cout, xs[1], 3, 3], 80 + i as u64)?;
        let xv = Var::from_tensor(&x)?;
        // The dense conv's cost does not depend on the weight values: one measurement
        // per shape serves every density.
        let key = format!("sparse_conv2d dense|{shape}");
        for (j, &density) in [0.05, 0.1, 0.2, 0.3, 0.5].iter().enumerate() {
            let mask = random_mask(&[cout, xs[1], 3, 3], density, 90 + j as u64)?;
            let wm = masked(&w, &mask)?;
            let wv = Var::from_tensor(&wm)?;
            let layer = SparseConv2d::new(wm.clone(), &mask, p)?;
            let layer_v = SparseConv2d::new(wv.as_tensor().clone(), &mask, p)?
                .with_weight_grad(WeightGrad::Masked);
            rep.row(
                "sparse_conv2d",
                shape,
                density,
                Pass::Fwd,
                || Ok(layer.forward_custom(&x).map(drop)?),
                &key,
                || Ok(conv2d_custom(&x, &wm, None, p).map(drop)?),
            )?;
            rep.row(
                "sparse_conv2d",
                shape,
                density,
                Pass::FwdBwd,
                || backward(layer_v.forward_custom(xv.as_tensor())?),
                &key,
                || backward(conv2d_custom(xv.as_tensor(), wv.as_tensor(), None, p)?),
            )?;
        }
    }
    Ok(())
}

fn depthwise(rep: &mut Report) -> Result<()> {
    let x = uniform(&[8, 96, 56, 56], 50)?;
    let xv = Var::from_tensor(&x)?;
    for (i, (k, n)) in DW_SHAPES.into_iter().enumerate() {
        let shape = dw_shape(k, n);
        let w = uniform(&[96, 1, k, n], 51 + i as u64)?;
        let wv = Var::from_tensor(&w)?;
        rep.row(
            "depthwise_conv2d",
            &shape,
            1.0,
            Pass::Fwd,
            || Ok(depthwise_conv2d_custom(&x, &w, None).map(drop)?),
            &shape,
            || Ok(depthwise_conv2d_candle(&x, &w, None).map(drop)?),
        )?;
        rep.row(
            "depthwise_conv2d",
            &shape,
            1.0,
            Pass::FwdBwd,
            || {
                backward(depthwise_conv2d_custom(
                    xv.as_tensor(),
                    wv.as_tensor(),
                    None,
                )?)
            },
            &shape,
            || {
                backward(depthwise_conv2d_candle(
                    xv.as_tensor(),
                    wv.as_tensor(),
                    None,
                )?)
            },
        )?;
    }
    Ok(())
}

fn sparse_depthwise(rep: &mut Report) -> Result<()> {
    let x = uniform(&[8, 96, 56, 56], 50)?;
    let xv = Var::from_tensor(&x)?;
    for (k, n) in [(31, 31), (51, 5)] {
        let shape = dw_shape(k, n);
        let w = uniform(&[96, 1, k, n], 60)?;
        let wv = Var::from_tensor(&w)?;
        for (i, &density) in [1.0, 0.5, 0.4, 0.2, 0.1, 0.05].iter().enumerate() {
            let mask = random_mask(&[96, 1, k, n], density, 61 + i as u64)?;
            let layer = SparseDepthwiseConv2d::new(w.clone(), &mask)?;
            let layer_v = SparseDepthwiseConv2d::new(wv.as_tensor().clone(), &mask)?;
            // Candle's grouped conv costs the same for any weight values: the dense
            // depthwise rows of this shape measured it in this run.
            rep.row(
                "sparse_depthwise_conv2d",
                &shape,
                density,
                Pass::Fwd,
                || Ok(layer.forward_custom(&x).map(drop)?),
                &shape,
                || Ok(depthwise_conv2d_candle(&x, &w, None).map(drop)?),
            )?;
            rep.row(
                "sparse_depthwise_conv2d",
                &shape,
                density,
                Pass::FwdBwd,
                || backward(layer_v.forward_custom(xv.as_tensor())?),
                &shape,
                || {
                    backward(depthwise_conv2d_candle(
                        xv.as_tensor(),
                        wv.as_tensor(),
                        None,
                    )?)
                },
            )?;
        }
    }
    Ok(())
}

/// A performance target: `value` compared with `bound`.
struct Target {
    what: String,
    value: Option<f64>,
    bound: f64,
    at_least: bool,
}

fn targets(rep: &Report) -> Vec<Target> {
    let speedup = |kernel: &str, shape: &str, density: f64, pass: Pass| {
        rep.find(kernel, shape, density, pass)
            .and_then(|e| e.speedup)
    };
    let mut t = Vec::new();
    let mut at_least = |what: String, value: Option<f64>, bound: f64| {
        t.push(Target {
            what,
            value,
            bound,
            at_least: true,
        })
    };
    at_least(
        "depthwise 7x7 fwd+bwd speedup vs candle".into(),
        speedup("depthwise_conv2d", &dw_shape(7, 7), 1.0, Pass::FwdBwd),
        25.0,
    );
    at_least(
        "depthwise 31x31 fwd+bwd speedup vs candle".into(),
        speedup("depthwise_conv2d", &dw_shape(31, 31), 1.0, Pass::FwdBwd),
        50.0,
    );
    let lin = "b256 1024x1024";
    for (kernel, label) in [
        ("sparse_linear", "sparse linear (dense-stored W)"),
        ("sparse_linear_packed", "sparse linear (packed W)"),
    ] {
        for (density, fwd, fwd_bwd) in [(0.1f64, 4.0, 3.0), (0.05, 8.0, 5.0)] {
            let sparsity = (100.0 * (1.0 - density)).round();
            at_least(
                format!("{label} {sparsity}% sparse fwd speedup"),
                speedup(kernel, lin, density, Pass::Fwd),
                fwd,
            );
            at_least(
                format!("{label} {sparsity}% sparse fwd+bwd speedup"),
                speedup(kernel, lin, density, Pass::FwdBwd),
                fwd_bwd,
            );
        }
    }
    at_least(
        "sparse conv1d k39 density 0.13 fwd+bwd speedup".into(),
        speedup(
            "sparse_conv1d",
            "b16 c141->141 L128 k39 replicate",
            0.13,
            Pass::FwdBwd,
        ),
        3.0,
    );
    at_least(
        "conv2d 3x3 fwd+bwd speedup".into(),
        speedup("conv2d", "b32 64->64 32x32 k3 s1 p1", 1.0, Pass::FwdBwd),
        2.0,
    );
    for (shape, _, _) in SPARSE_CONV2D_SHAPES {
        at_least(
            format!("sparse conv2d {shape} d=0.1 fwd+bwd vs dense custom"),
            speedup("sparse_conv2d", shape, 0.1, Pass::FwdBwd),
            2.0,
        );
    }
    for (k, n) in [(31, 31), (51, 5)] {
        for pass in [Pass::Fwd, Pass::FwdBwd] {
            let shape = dw_shape(k, n);
            let sparse = rep
                .find("sparse_depthwise_conv2d", &shape, 0.4, pass)
                .map(|e| e.ours_ms);
            let dense = rep
                .find("depthwise_conv2d", &shape, 1.0, pass)
                .map(|e| e.ours_ms);
            t.push(Target {
                what: format!(
                    "sparse depthwise {k}x{n} d=0.4 {} time / dense custom",
                    pass.as_str()
                ),
                value: sparse.zip(dense).map(|(s, d)| s / d),
                bound: 0.55,
                at_least: false,
            });
        }
    }
    t
}

/// The CPU model and the rayon thread count, for report headers.
pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpu}, {} rayon threads", rayon_threads())
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// Runs the whole report.
pub fn run(options: &Options) -> Result<()> {
    let (ours, candle) = if options.quick {
        (
            Timer {
                reps: 5,
                budget: Duration::from_secs(2),
                min_sampled: Duration::ZERO,
            },
            Timer {
                reps: 3,
                budget: Duration::from_secs(3),
                min_sampled: Duration::ZERO,
            },
        )
    } else {
        (
            Timer {
                reps: 15,
                budget: Duration::from_secs(10),
                min_sampled: Duration::from_millis(500),
            },
            Timer {
                reps: 7,
                budget: Duration::from_secs(30),
                min_sampled: Duration::from_millis(500),
            },
        )
    };
    let mut rep = Report {
        ours,
        candle,
        candle_cache: HashMap::new(),
        entries: Vec::new(),
        out: options.out.clone(),
    };
    println!(
        "machine: {}{}",
        machine(),
        if options.quick { " (--quick)" } else { "" }
    );
    println!(
        "{:<24} {:<34} {:>7} {:<8} {:>10} {:>11} {:>9}",
        "kernel", "shape", "density", "pass", "ours_ms", "candle_ms", "speedup"
    );
    type Section = fn(&mut Report) -> Result<()>;
    let sections: [(&str, Section); 6] = [
        ("sparse_linear", sparse_linear),
        ("sparse_conv1d", sparse_conv1d),
        ("conv2d", conv2d),
        ("sparse_conv2d", sparse_conv2d),
        ("depthwise_conv2d", depthwise),
        ("sparse_depthwise_conv2d", sparse_depthwise),
    ];
    for (name, section) in sections {
        if options
            .only
            .as_deref()
            .is_none_or(|only| name.contains(only))
        {
            section(&mut rep)?;
        }
    }
    println!("\ntargets (measured in this run):");
    for t in targets(&rep) {
        // Two decimals, or three where two would round onto the bound (a 4.996x FAIL
        // against 5x must not read "5.00").
        let shown = |v: f64| {
            if (v - t.bound).abs() < 0.005 {
                format!("{v:.3}")
            } else {
                format!("{v:.2}")
            }
        };
        let (verdict, value) = match t.value {
            None => ("NOT MEASURED", "-".to_string()),
            Some(v) if (t.at_least && v >= t.bound) || (!t.at_least && v <= t.bound) => {
                ("PASS", shown(v))
            }
            Some(v) => ("FAIL", shown(v)),
        };
        let op = if t.at_least { ">=" } else { "<=" };
        println!(
            "  {verdict:<12} {:<58} {value:>8} (target {op} {})",
            t.what, t.bound
        );
    }
    println!("\nwrote {}", options.out.display());
    Ok(())
}
