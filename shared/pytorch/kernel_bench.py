#!/usr/bin/env python3
"""Time PyTorch on the shapes of Sparseland's kernel report, for a side-by-side view.

Sparseland's report (`cargo run --release -p sparse-benches -- kernels`) times our
candle custom kernels against candle's own ops and writes `target/kernel-report.json`.
This script times the PyTorch equivalents of the same operations on the same shapes,
densities and passes, with the same statistic (median wall-clock time over repetitions,
first run discarded as warm-up when it is fast), and writes
`target/pytorch-kernel-report.json`: a JSON array of objects
`{"kernel", "shape", "density", "pass", "variant", "torch_ms"}`.
With `--ours target/kernel-report.json` it also prints our and candle's times next to
PyTorch's.

PyTorch has no sparse convolution, so sparse conv kernels are timed as masked-dense
ops (the weight multiplied by its mask), which is what PyTorch sparse-training code
does. The sparse linear layer is timed both masked-dense and with a CSR weight
(`torch.sparse.mm`, forward only: PyTorch's autograd for CSR weights is limited).

Usage:
    python3 shared/pytorch/kernel_bench.py [--quick] [--threads 2] [--ours PATH] [--out PATH]

Requires torch (CPU build is enough). Run with the same core count as the Rust report
(our numbers use 2 threads).
"""

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

DW_SHAPES = [(7, 7), (13, 13), (31, 31), (51, 5), (5, 51)]
SPARSE_DENSITIES = [1.0, 0.5, 0.2, 0.1, 0.05]
CONV1D_DENSITIES = [1.0, 0.5, 0.2, 0.13, 0.1, 0.05]
SPARSE_DW_DENSITIES = [1.0, 0.5, 0.4, 0.2, 0.1, 0.05]


def measure(fn, reps, budget_s, min_sampled_s):
    """Median milliseconds of `fn()` over at least `reps` runs and `min_sampled_s`
    seconds of runs, within `budget_s`; a first run under 1 s is a discarded warm-up
    (the rule of the Rust report's `Timer`)."""
    start = time.perf_counter()
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    samples = [first * 1e3] if first > 1.0 else []
    sampled = time.perf_counter()

    def wants_more():
        return len(samples) < reps or time.perf_counter() - sampled < min_sampled_s

    while wants_more() and (not samples or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return statistics.median(samples), len(samples)


def uniform(shape, gen):
    return torch.rand(shape, generator=gen) * 2 - 1


def random_mask(shape, density, gen):
    """Exactly round(density * numel) ones, uniformly placed."""
    n = 1
    for d in shape:
        n *= d
    mask = torch.zeros(n)
    mask[torch.randperm(n, generator=gen)[: round(density * n)]] = 1
    return mask.reshape(shape)


def fwd_bwd(fn, *leaves):
    def run():
        for t in leaves:
            t.grad = None
        fn().sum().backward()

    return run


def no_grad(fn):
    def run():
        with torch.no_grad():
            fn()

    return run


class Report:
    def __init__(self, quick, out):
        self.reps, self.budget, self.min_sampled = (3, 3.0, 0.0) if quick else (15, 10.0, 0.5)
        self.rows = []
        self.out = out

    def row(self, kernel, shape, density, pass_, variant, fn):
        ms, n = measure(fn, self.reps, self.budget, self.min_sampled)
        self.rows.append(
            {"kernel": kernel, "shape": shape, "density": density, "pass": pass_, "variant": variant, "torch_ms": ms}
        )
        print(f"{kernel:<24} {shape:<34} {density:>5.2f} {pass_:<8} {variant:<13} {ms:>10.3f} ms ({n} reps)", flush=True)
        os.makedirs(os.path.dirname(self.out) or ".", exist_ok=True)
        with open(self.out, "w") as f:
            json.dump(self.rows, f, indent=2)


def sparse_linear(rep, gen):
    shape = "b256 1024x1024"
    x = uniform((256, 1024), gen)
    w = uniform((1024, 1024), gen)
    for density in SPARSE_DENSITIES:
        wm = w * random_mask((1024, 1024), density, gen)
        rep.row("sparse_linear", shape, density, "fwd", "masked-dense", no_grad(lambda: x @ wm.t()))
        xg, wg = x.clone().requires_grad_(), wm.clone().requires_grad_()
        rep.row("sparse_linear", shape, density, "fwd+bwd", "masked-dense", fwd_bwd(lambda: xg @ wg.t(), xg, wg))
        w_csr = wm.to_sparse_csr()
        rep.row("sparse_linear", shape, density, "fwd", "csr", no_grad(lambda: torch.sparse.mm(w_csr, x.t()).t()))


def sparse_conv1d(rep, gen):
    shape = "b16 c141->141 L128 k39 replicate"
    b, c, length, k = 16, 141, 128, 39
    x = uniform((b, c, length), gen)
    w = uniform((c, c, k), gen)

    def conv(x_, w_):
        return F.conv1d(F.pad(x_, (0, k - 1), mode="replicate"), w_)

    for density in CONV1D_DENSITIES:
        wm = w * random_mask((c, c, k), density, gen)
        rep.row("sparse_conv1d", shape, density, "fwd", "masked-dense", no_grad(lambda: conv(x, wm)))
        xg, wg = x.clone().requires_grad_(), wm.clone().requires_grad_()
        rep.row("sparse_conv1d", shape, density, "fwd+bwd", "masked-dense", fwd_bwd(lambda: conv(xg, wg), xg, wg))


def conv2d(rep, gen):
    cases = [
        ("b32 64->64 32x32 k3 s1 p1", 64, 3, 1, 1),
        ("b32 64->128 32x32 k3 s2 p1", 128, 3, 2, 1),
        ("b32 64->128 32x32 k1 s2 p0", 128, 1, 2, 0),
        ("b32 64->64 32x32 k1 s1 p0", 64, 1, 1, 0),
    ]
    for shape, cout, k, stride, padding in cases:
        x = uniform((32, 64, 32, 32), gen)
        w = uniform((cout, 64, k, k), gen)
        rep.row("conv2d", shape, 1.0, "fwd", "dense", no_grad(lambda: F.conv2d(x, w, stride=stride, padding=padding)))
        xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
        rep.row(
            "conv2d", shape, 1.0, "fwd+bwd", "dense",
            fwd_bwd(lambda: F.conv2d(xg, wg, stride=stride, padding=padding), xg, wg),
        )


SPARSE_CONV2D_SHAPES = [
    ("b32 16->16 32x32 k3 s1 p1", (32, 16, 32, 32), 16),
    ("b32 32->32 16x16 k3 s1 p1", (32, 32, 16, 16), 32),
    ("b32 64->64 8x8 k3 s1 p1", (32, 64, 8, 8), 64),
    ("b32 64->64 32x32 k3 s1 p1", (32, 64, 32, 32), 64),
]
SPARSE_CONV2D_DENSITIES = [0.05, 0.1, 0.2, 0.3, 0.5]


def sparse_conv2d(rep, gen):
    """Masked-dense 3x3 convs (`F.conv2d(x, w * mask)`), as PyTorch lottery-ticket code
    runs them; the backward pass includes the mask multiplication's gradient."""
    for shape, xs, cout in SPARSE_CONV2D_SHAPES:
        x = uniform(xs, gen)
        w = uniform((cout, xs[1], 3, 3), gen)
        for density in SPARSE_CONV2D_DENSITIES:
            mask = random_mask((cout, xs[1], 3, 3), density, gen)
            rep.row(
                "sparse_conv2d", shape, density, "fwd", "masked-dense",
                no_grad(lambda: F.conv2d(x, w * mask, padding=1)),
            )
            xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
            rep.row(
                "sparse_conv2d", shape, density, "fwd+bwd", "masked-dense",
                fwd_bwd(lambda: F.conv2d(xg, wg * mask, padding=1), xg, wg),
            )


def depthwise(rep, gen, sparse):
    x = uniform((8, 96, 56, 56), gen)
    shapes = [(31, 31), (51, 5)] if sparse else DW_SHAPES
    densities = SPARSE_DW_DENSITIES if sparse else [1.0]
    kernel = "sparse_depthwise_conv2d" if sparse else "depthwise_conv2d"
    variant = "masked-dense" if sparse else "dense"
    for k, n in shapes:
        shape = f"b8 c96 56x56 k{k}x{n}"
        w = uniform((96, 1, k, n), gen)
        for density in densities:
            wm = w * random_mask((96, 1, k, n), density, gen) if sparse else w
            # padding="same" pads like our kernel: the extra row/column of an even
            # kernel goes to the bottom/right.
            def conv(x_, w_):
                return F.conv2d(x_, w_, padding="same", groups=96)

            rep.row(kernel, shape, density, "fwd", variant, no_grad(lambda: conv(x, wm)))
            xg, wg = x.clone().requires_grad_(), wm.clone().requires_grad_()
            rep.row(kernel, shape, density, "fwd+bwd", variant, fwd_bwd(lambda: conv(xg, wg), xg, wg))


def side_by_side(rows, ours_path):
    with open(ours_path) as f:
        ours = {(r["kernel"], r["shape"], round(r["density"], 6), r["pass"]): r for r in json.load(f)}
    print(f"\n{'kernel':<24} {'shape':<34} {'dens':>5} {'pass':<8} {'variant':<13} {'torch_ms':>9} {'ours_ms':>9} {'candle_ms':>10} {'torch/ours':>10}")
    # Our packed-weight sparse linear layer computes the same product as `sparse_linear`.
    same_op = {"sparse_linear": ["sparse_linear", "sparse_linear_packed"]}
    for r in rows:
        for kernel in same_op.get(r["kernel"], [r["kernel"]]):
            o = ours.get((kernel, r["shape"], round(r["density"], 6), r["pass"]))
            if o is None:
                continue
            candle = o.get("candle_ms")
            candle_s = f"{candle:>10.3f}" if candle is not None else f"{'-':>10}"
            print(
                f"{kernel:<24} {r['shape']:<34} {r['density']:>5.2f} {r['pass']:<8} {r['variant']:<13} "
                f"{r['torch_ms']:>9.3f} {o['ours_ms']:>9.3f} {candle_s} {r['torch_ms'] / o['ours_ms']:>9.2f}x"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2, as our report)")
    parser.add_argument("--ours", default=None, help="our target/kernel-report.json, to print side by side")
    parser.add_argument("--out", default="target/pytorch-kernel-report.json")
    parser.add_argument("--only", default=None, help="only kernels whose name contains this")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {'quick' if args.quick else 'full'}")
    rep = Report(args.quick, args.out)
    sections = [
        ("sparse_linear", lambda: sparse_linear(rep, gen)),
        ("sparse_conv1d", lambda: sparse_conv1d(rep, gen)),
        ("conv2d", lambda: conv2d(rep, gen)),
        ("sparse_conv2d", lambda: sparse_conv2d(rep, gen)),
        ("depthwise_conv2d", lambda: depthwise(rep, gen, sparse=False)),
        ("sparse_depthwise_conv2d", lambda: depthwise(rep, gen, sparse=True)),
    ]
    for name, run in sections:
        if args.only is None or args.only in name:
            run()
    print(f"wrote {args.out}")
    if args.ours:
        side_by_side(rep.rows, args.ours)


if __name__ == "__main__":
    main()
