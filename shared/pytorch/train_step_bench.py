#!/usr/bin/env python3
"""Time one whole training step and one evaluation pass in PyTorch, for the rows of
Sparseland's `train` report (`cargo run --release -p sparse-benches -- train`).

Same models, shapes, optimizers and steps as the paper crates' `quick` presets, on
seeded random inputs (speed only). Sparse arms train masked-dense, as the official
code does: the weights are multiplied by their masks after every optimizer step
(random-pruning, DSN), or by the score mask in the forward (UGT).

  random-pruning  MLP 784-256-256-10 and ResNet-8 width 16 on 1x28x28, batch 64,
                  SGD Nesterov 0.9, wd 5e-4 on weights; dense, ERK@0.10, ERK@0.05
                  (Bernoulli ERK masks); eval: one batch of 512.
  dsn-tsc         SCNN nf 16, depth 3, kernel 39 (replicate padding on the right),
                  OSULeaf's shape (1x427, 6 classes, batch 16), Adam 3e-4, NLL; DSN
                  at density 0.2 prunes (magnitude, rate 0.5) and regrows (random)
                  every 26 steps (its quick period), timed as a block of 26 steps
                  divided by 26; eval: one batch of 64.
  untrained-gnn   2-layer GCN, hidden 256, on a random graph of Cora's sizes (2708
                  nodes, 1433 features with 49 216 stored entries, 5278 undirected
                  edges, 140 training nodes), sparse features and adjacency
                  (torch.sparse.mm); dense: AdamW 0.01, wd 5e-4; UGT s=0.9: frozen
                  weights, scores trained by Adam 0.01 through a straight-through
                  global top-10 % mask recomputed every forward.
  sparse-core     the random-pruning MLP on 784 inputs trained with RigL (ERK@0.10,
                  ERK@0.05): masked-dense steps and, every 100 steps, magnitude
                  pruning of half the active weights and regrowth by dense-gradient
                  magnitude; timed as a block of 100 steps divided by 100 (dense:
                  plain steps).

Timing rule: that of the Rust report's `Timer` (shared with kernel_bench.py): median
wall-clock over at least `reps` runs and `min_sampled` seconds, within a budget, a
first run under 1 s discarded as warm-up.

Writes `target/pytorch-train-report.json`, a JSON array of
`{"paper", "model", "arm", "density", "variant", "step_ms", "eval_ms"}`. With
`--ours target/train-report.json` it prints both side by side with the ratio
(PyTorch ms / ours ms: above 1, ours is faster) and the targets of issue #20,
PASS/FAIL as measured: every step >= 1.0x PyTorch's dense step of its model, and
every arm at density <= 0.1 >= 2x PyTorch's masked-dense step of the same arm.

Usage:
    python3 shared/pytorch/train_step_bench.py [--quick] [--threads 2] [--only TEXT]
        [--ours PATH] [--out PATH]
"""

import argparse
import json
import math
import os
import sys
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_bench import measure  # noqa: E402  (the shared timing rule)

DENSE_TARGET = 1.0
SPARSE_TARGET = 2.0
SPARSE_TARGET_DENSITY = 0.1


# ---------------------------------------------------------------- random-pruning
class ConvBn(nn.Module):
    def __init__(s, ci, co, k, st):
        super().__init__()
        s.conv = nn.Conv2d(ci, co, k, st, k // 2, bias=False)
        s.bn = nn.BatchNorm2d(co)

    def forward(s, x):
        return s.bn(s.conv(x))


class Block(nn.Module):
    def __init__(s, ci, co, st):
        super().__init__()
        s.conv1 = ConvBn(ci, co, 3, st)
        s.conv2 = ConvBn(co, co, 3, 1)
        s.shortcut = ConvBn(ci, co, 1, st) if st != 1 or ci != co else None

    def forward(s, x):
        y = s.conv2(F.relu(s.conv1(x)))
        return F.relu(y + (s.shortcut(x) if s.shortcut is not None else x))


class ResNet(nn.Module):
    """sparse_repro::models::CifarResNet: 3 stages of (depth-2)/6 blocks."""

    def __init__(s, width, depth, cin=1, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        s.stem = ConvBn(cin, width, 3, 1)
        layers, c = [], width
        for stage in range(3):
            co = width << stage
            for b in range(n):
                layers.append(Block(c, co, 2 if stage > 0 and b == 0 else 1))
                c = co
        s.layers = nn.Sequential(*layers)
        s.classifier = nn.Linear(c, classes)

    def forward(s, x):
        x = s.layers(F.relu(s.stem(x)))
        return s.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Mlp(nn.Module):
    def __init__(s, width, depth, inp=784, classes=10):
        super().__init__()
        dims = [inp] + [width] * depth
        s.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        s.classifier = nn.Linear(dims[-1], classes)

    def forward(s, x):
        x = x.flatten(1)
        for layer in s.hidden:
            x = F.relu(layer(x))
        return s.classifier(x)


def erk_densities(shapes, density):
    """Erdős–Rényi-Kernel layer densities with dense layers fixed at 1 (the usual
    iterative rule); `shapes` in forward order."""
    dense = set()
    while True:
        budget = sum(math.prod(s) for s in shapes) * density
        fixed = sum(math.prod(s) for i, s in enumerate(shapes) if i in dense)
        raw = {i: sum(s) / math.prod(s) for i, s in enumerate(shapes) if i not in dense}
        free = sum(raw[i] * math.prod(shapes[i]) for i in raw)
        eps = (budget - fixed) / free
        over = [i for i in raw if eps * raw[i] > 1]
        if not over:
            return [1.0 if i in dense else eps * raw[i] for i in range(len(shapes))]
        dense.update(over)


def sgd_step_masked(model, opt, masks, x, y):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    if masks:
        with torch.no_grad():
            for p, m in masks:
                p.mul_(m)
    loss.item()


def random_pruning_rows(rep, gen):
    for model_name, make, lr in [
        ("mlp 784-256-256-10", lambda: Mlp(256, 2), 0.05),
        ("resnet-8 w16", lambda: ResNet(16, 8), 0.1),
    ]:
        for arm, density in [("dense", 1.0), ("ERK@0.10", 0.1), ("ERK@0.05", 0.05)]:
            if not rep.wants("random-pruning", model_name, arm):
                continue
            torch.manual_seed(0)
            model = make()
            weights = [p for _, p in model.named_parameters() if p.dim() > 1]
            others = [p for _, p in model.named_parameters() if p.dim() <= 1]
            opt = torch.optim.SGD(
                [{"params": weights, "weight_decay": 5e-4}, {"params": others, "weight_decay": 0.0}],
                lr=lr, momentum=0.9, nesterov=True,
            )
            masks = []
            if density < 1.0:
                ds = erk_densities([tuple(p.shape) for p in weights], density)
                for p, d in zip(weights, ds):
                    m = (torch.rand(p.shape, generator=gen) < d).float()
                    with torch.no_grad():
                        p.mul_(m)
                    masks.append((p, m))
            x = torch.rand((64, 1, 28, 28), generator=gen) * 2 - 1
            y = torch.randint(0, 10, (64,), generator=gen)
            xe = torch.rand((512, 1, 28, 28), generator=gen) * 2 - 1

            def evaluate():
                model.eval()
                with torch.no_grad():
                    model(xe).argmax(1)
                model.train()

            rep.row("random-pruning", model_name, arm, density,
                    lambda: sgd_step_masked(model, opt, masks, x, y), evaluate)


# ---------------------------------------------------------------- dsn-tsc
class Inception(nn.Module):
    def __init__(s, cin, ch, k):
        super().__init__()
        s.bottleneck = nn.Conv1d(cin, ch, 1, bias=False) if cin > 1 else None
        s.conv = nn.Conv1d(ch if cin > 1 else 1, 3 * ch, k, bias=False)
        s.bn = nn.BatchNorm1d(3 * ch)
        s.k = k

    def forward(s, x):
        if s.bottleneck is not None:
            x = s.bottleneck(x)
        x = F.pad(x, (0, s.k - 1), mode="replicate")
        return F.relu(s.bn(s.conv(x)))


class Scnn(nn.Module):
    """dsn_tsc::model::Scnn: inception-like modules, pooled head, log-softmax."""

    def __init__(s, dims, classes, ch=16, depth=3, k=39, pooled=50):
        super().__init__()
        s.blocks = nn.ModuleList(Inception(dims if i == 0 else 3 * ch, ch, k) for i in range(depth))
        s.head_conv = nn.Conv1d(3 * ch, classes, 1, bias=False)
        s.head_bn = nn.BatchNorm1d(classes)
        s.pooled = pooled

    def forward(s, x):
        for b in s.blocks:
            x = b(x)
        x = F.adaptive_avg_pool1d(x, s.pooled)
        x = s.head_bn(s.head_conv(x))
        return F.log_softmax(x.mean(-1), -1)


def dsn_tsc_rows(rep, gen):
    model_name = "scnn nf16 d3 k39"
    dims, length, classes, batch, period = 1, 427, 6, 16, 26
    for arm, density in [("dense", 1.0), ("DSN@0.20", 0.2)]:
        if not rep.wants("dsn-tsc", model_name, arm):
            continue
        torch.manual_seed(0)
        model = Scnn(dims, classes)
        opt = torch.optim.Adam(model.parameters(), lr=3e-4)
        masks = []
        if density < 1.0:
            for b in model.blocks:
                m = (torch.rand(b.conv.weight.shape, generator=gen) < density).float()
                with torch.no_grad():
                    b.conv.weight.mul_(m)
                masks.append((b.conv.weight, m))
        x = torch.rand((batch, dims, length), generator=gen) * 2 - 1
        y = torch.randint(0, classes, (batch,), generator=gen)
        xe = torch.rand((64, dims, length), generator=gen) * 2 - 1

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.nll_loss(model(x), y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                for p, m in masks:
                    p.mul_(m)
            loss.item()

        def prune_regrow(rate=0.5):
            # Magnitude prune of the active weights, random regrowth among the
            # inactive ones, regrown weights starting at zero (DSN's update).
            with torch.no_grad():
                for i, (p, m) in enumerate(masks):
                    flat_m, flat_w = m.view(-1), p.view(-1)
                    active = flat_m.nonzero().squeeze(1)
                    n = int(rate * active.numel())
                    drop = active[flat_w[active].abs().topk(n, largest=False).indices]
                    flat_m[drop] = 0
                    inactive = (flat_m == 0).nonzero().squeeze(1)
                    grow = inactive[torch.randperm(inactive.numel(), generator=gen)[:n]]
                    flat_m[grow] = 1
                    p.mul_(m)

        if masks:
            def block():
                for _ in range(period - 1):
                    step()
                step()
                prune_regrow()
            timed, per = block, period
        else:
            timed, per = step, 1

        def evaluate():
            model.eval()
            with torch.no_grad():
                model(xe).argmax(1)
            model.train()

        rep.row("dsn-tsc", model_name, arm, density, timed, evaluate, period=per)


# ---------------------------------------------------------------- untrained-gnn
NODES, FEATURES, CLASSES, FEATURE_NNZ, EDGES, TRAIN = 2708, 1433, 7, 49_216, 5278, 140


def synthetic_cora(gen):
    """Random graph of Cora's sizes: row-normalised binary features and
    D^-1/2 (A + I) D^-1/2, both as sparse CSR tensors."""
    rows, cols = [], []
    for i in range(NODES):
        k = FEATURE_NNZ // NODES + (1 if i < FEATURE_NNZ % NODES else 0)
        c = torch.randperm(FEATURES, generator=gen)[:k].sort().values
        rows += [i] * k
        cols += c.tolist()
    vals = torch.ones(len(rows))
    deg = torch.bincount(torch.tensor(rows), minlength=NODES).float()
    vals = vals / deg[torch.tensor(rows)]
    x = torch.sparse_coo_tensor(torch.tensor([rows, cols]), vals, (NODES, FEATURES)).coalesce().to_sparse_csr()
    seen = set()
    while len(seen) < EDGES:
        a, b = torch.randint(0, NODES, (2,), generator=gen).tolist()
        if a != b:
            seen.add((min(a, b), max(a, b)))
    src = [a for a, b in seen] + [b for a, b in seen] + list(range(NODES))
    dst = [b for a, b in seen] + [a for a, b in seen] + list(range(NODES))
    src, dst = torch.tensor(src), torch.tensor(dst)
    d = torch.bincount(src, minlength=NODES).float()
    w = d[src].rsqrt() * d[dst].rsqrt()
    adj = torch.sparse_coo_tensor(torch.stack([src, dst]), w, (NODES, NODES)).coalesce().to_sparse_csr()
    labels = torch.arange(NODES) % CLASSES
    return x, adj, labels


class GetSubnet(torch.autograd.Function):
    """The mask of the global top-(1-s) scores; straight-through gradient."""

    @staticmethod
    def forward(ctx, scores, threshold):
        return (scores >= threshold).float()

    @staticmethod
    def backward(ctx, g):
        return g, None


def untrained_gnn_rows(rep, gen):
    model_name = "gcn 2x256"
    x, adj, labels = synthetic_cora(gen)
    train = torch.arange(TRAIN)
    y = labels[train]
    for arm, sparsity in [("dense", 0.0), ("UGT s=0.90", 0.9)]:
        if not rep.wants("untrained-gnn", model_name, arm):
            continue
        torch.manual_seed(0)
        shapes = [(256, FEATURES), (CLASSES, 256)]
        ws = [nn.Parameter(torch.randn(s) / math.sqrt(s[1])) for s in shapes]
        if sparsity == 0.0:
            opt = torch.optim.AdamW(ws, lr=0.01, weight_decay=5e-4)
            scores = None
        else:
            for w in ws:
                w.requires_grad_(False)
            scores = [nn.Parameter(torch.rand(s)) for s in shapes]
            opt = torch.optim.Adam(scores, lr=0.01)
        keep = 1.0 - sparsity

        def effective():
            if scores is None:
                return ws
            flat = torch.cat([s.detach().view(-1) for s in scores])
            k = flat.numel() - int(round(keep * flat.numel())) + 1
            thr = flat.kthvalue(k).values
            return [w * GetSubnet.apply(s, thr) for w, s in zip(ws, scores)]

        def forward(weights):
            h = adj @ (x @ weights[0].t())
            return adj @ (F.relu(h) @ weights[1].t())

        def step():
            opt.zero_grad(set_to_none=True)
            out = forward(effective())
            loss = F.cross_entropy(out[train], y)
            loss.backward()
            opt.step()
            loss.item()

        def evaluate():
            with torch.no_grad():
                forward(effective()).argmax(1)

        rep.row("untrained-gnn", model_name, arm, keep, step, evaluate)


# ---------------------------------------------------------------- report
# ---------------------------------------------------------------- sparse-core: RigL
def rigl_update(masks, rate):
    """RigL's prune-and-regrow as the official masked-dense code runs it: per layer,
    drop the `rate` share of active weights with the smallest magnitude, regrow as
    many inactive positions with the largest dense-gradient magnitude, new weights 0."""
    with torch.no_grad():
        for p, m in masks:
            active = int(m.sum().item())
            k = int(round(rate * active))
            if k == 0:
                continue
            score = torch.where(m.bool(), p.abs(), torch.full_like(p, float("inf")))
            drop = torch.topk(score.flatten(), k, largest=False).indices
            m.view(-1)[drop] = 0.0
            grow_score = torch.where(m.bool(), torch.full_like(p, -1.0), p.grad.abs())
            grow = torch.topk(grow_score.flatten(), k).indices
            m.view(-1)[grow] = 1.0
            p.mul_(m)


def sparse_core_rows(rep, gen):
    """The MLP of random-pruning trained with RigL (period 100, death rate 0.5) on
    ERK masks, masked-dense: the rows beside sparse-core's packed-weight RigL."""
    model_name, period = "mlp 784-256-256-10", 100
    for arm, density in [("dense", 1.0), ("RigL ERK@0.10", 0.1), ("RigL ERK@0.05", 0.05)]:
        if not rep.wants("sparse-core", model_name, arm):
            continue
        torch.manual_seed(0)
        model = Mlp(256, 2)
        weights = [p for _, p in model.named_parameters() if p.dim() > 1]
        others = [p for _, p in model.named_parameters() if p.dim() <= 1]
        opt = torch.optim.SGD(
            [{"params": weights, "weight_decay": 5e-4}, {"params": others, "weight_decay": 0.0}],
            lr=0.05, momentum=0.9, nesterov=True,
        )
        masks = []
        if density < 1.0:
            ds = erk_densities([tuple(p.shape) for p in weights], density)
            for p, d in zip(weights, ds):
                m = (torch.rand(p.shape, generator=gen) < d).float()
                with torch.no_grad():
                    p.mul_(m)
                masks.append((p, m))
        x = torch.rand((64, 784), generator=gen) * 2 - 1
        y = torch.randint(0, 10, (64,), generator=gen)
        xe = torch.rand((512, 784), generator=gen) * 2 - 1

        def block():
            for i in range(period):
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                if masks:
                    with torch.no_grad():
                        for p, m in masks:
                            p.mul_(m)
                    if i == period - 1:
                        rigl_update(masks, 0.5)
                        # ITOP-style: the momentum of pruned weights is zeroed too
                        for p, m in masks:
                            opt.state[p]["momentum_buffer"].mul_(m)
                loss.item()

        def evaluate():
            model.eval()
            with torch.no_grad():
                model(xe).argmax(1)
            model.train()

        rep.row("sparse-core", model_name, arm, density, block if masks else
                (lambda: [sgd_step_masked(model, opt, masks, x, y) for _ in range(period)]),
                evaluate, period=period)


class Report:
    def __init__(s, quick, out, only):
        s.timer = (5, 3.0, 0.0) if quick else (15, 15.0, 1.0)
        s.out, s.only, s.rows = out, only, []

    def wants(s, paper, model, arm):
        return s.only is None or s.only in f"{paper} / {model} / {arm}"

    def row(s, paper, model, arm, density, step, evaluate, period=1):
        step_ms, step_reps = measure(step, *s.timer)
        eval_ms, eval_reps = measure(evaluate, *s.timer)
        r = {
            "paper": paper, "model": model, "arm": arm, "density": density,
            "variant": "dense" if density >= 1.0 else "masked-dense",
            "step_ms": step_ms / period, "eval_ms": eval_ms,
        }
        print(f"{paper:<15} {model:<20} {arm:<12} {density:>7.3f} {r['variant']:<13} {period:>6} "
              f"{r['step_ms']:>10.3f} {eval_ms:>10.3f}   ({step_reps}/{eval_reps} reps)", flush=True)
        s.rows.append(r)
        os.makedirs(os.path.dirname(s.out) or ".", exist_ok=True)
        with open(s.out, "w") as f:
            json.dump(s.rows, f, indent=2)


def ratio(torch_ms, ours_ms):
    if torch_ms is None or not (torch_ms > 0) or not (ours_ms > 0):
        return None
    return torch_ms / ours_ms


def side_by_side(rows, ours_path):
    """Our rows beside these; the rules of benches/src/train_compare.rs."""
    with open(ours_path) as f:
        ours = json.load(f)
    find = {(r["paper"], r["model"], r["arm"]): r for r in rows}
    fmt = lambda v, unit="": "-" if v is None else f"{v:.3f}{unit}"  # noqa: E731
    print(f"\n{'row':<52} {'ours_step':>10} {'torch_step':>10} {'ratio':>8} {'ours_eval':>10} {'torch_eval':>10} {'ratio':>8}")
    comps = []
    for o in ours:
        same = find.get((o["paper"], o["model"], o["arm"]))
        dense = find.get((o["paper"], o["model"], "dense"))
        label = f"{o['paper']} / {o['model']} / {o['arm']}"
        t_step = same["step_ms"] if same else None
        t_eval = same["eval_ms"] if same else None
        comps.append((label, o["density"], ratio(t_step, o["step_ms"]),
                      ratio(dense["step_ms"] if dense else None, o["step_ms"])))
        print(f"{label:<52} {o['step_ms']:>10.3f} {fmt(t_step):>10} {fmt(ratio(t_step, o['step_ms']), 'x'):>8} "
              f"{o['eval_ms']:>10.3f} {fmt(t_eval):>10} {fmt(ratio(t_eval, o['eval_ms']), 'x'):>8}")
    print("\ntargets (ratio = PyTorch ms / ours ms, measured in these runs):")

    def judge(what, value, bound):
        verdict = "NOT MEASURED" if value is None else ("PASS" if value >= bound else "FAIL")
        print(f"  {verdict:<12} {what:<78} {fmt(value, 'x'):>8} (target >= {bound})")

    for label, _, _, dense_ratio in comps:
        judge(f"{label} step vs PyTorch dense", dense_ratio, DENSE_TARGET)
    for label, density, same_ratio, _ in comps:
        if density < 1.0 and density <= SPARSE_TARGET_DENSITY + 1e-9:
            judge(f"{label} step vs PyTorch masked-dense", same_ratio, SPARSE_TARGET)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2, as our report)")
    parser.add_argument("--ours", default=None, help="our target/train-report.json, to print side by side")
    parser.add_argument("--out", default="target/pytorch-train-report.json")
    parser.add_argument("--only", default=None, help="only rows whose 'paper / model / arm' contains this")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    # CSR tensors are "beta" in PyTorch: the warning says nothing about speed.
    warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {'quick' if args.quick else 'full'}")
    print(f"{'paper':<15} {'model':<20} {'arm':<12} {'density':>7} {'variant':<13} {'period':>6} {'step_ms':>10} {'eval_ms':>10}")
    rep = Report(args.quick, args.out, args.only)
    random_pruning_rows(rep, gen)
    dsn_tsc_rows(rep, gen)
    untrained_gnn_rows(rep, gen)
    sparse_core_rows(rep, gen)
    print(f"wrote {args.out}")
    if args.ours:
        side_by_side(rep.rows, args.ours)


if __name__ == "__main__":
    main()
