//! The `train` report: one whole training step and one evaluation pass of every
//! paper crate's `quick` model at its `quick` densities, on seeded synthetic inputs
//! of the real shapes (speed only).
//!
//! Each model, optimizer, mask and engine is built through the paper crate's own
//! public API from its `quick` plan, so the step timed here is the step the runs
//! take: random-pruning's [`Network::train_step`], dsn-tsc's [`RunState::train_step`](dsn_tsc::training::RunState::train_step)
//! (engine included) and untrained-gnn's [`RunState::train_step`](untrained_gnn::RunState::train_step)
//! on a random graph of Cora's sizes ([`gcn`]).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparse_repro::cli::Preset;
use sparse_repro::harness::{NoArgs, Paper};
use sparse_repro::models::{Architecture, InputShape};

use crate::inputs::uniform;
use crate::kernel_report::machine;
use crate::timing::Timer;
use crate::train_compare::{self, Entry, TorchRow};

use random_pruning::training::Network;

/// Seed of every synthetic input and of every model.
const SEED: u64 = 0;

/// Command-line options of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Fewer repetitions.
    pub quick: bool,
    /// Where the JSON array goes.
    pub out: PathBuf,
    /// Only rows whose `paper / model / arm` label contains this.
    pub only: Option<String>,
    /// PyTorch's `pytorch-train-report.json`, to print side by side with the targets.
    pub torch: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            quick: false,
            out: PathBuf::from("target/train-report.json"),
            only: None,
            torch: None,
        }
    }
}

impl Options {
    /// Parses the flags after `train`.
    pub fn parse(flags: &[String]) -> Result<Self> {
        let mut options = Self::default();
        let mut flags = flags.iter();
        while let Some(flag) = flags.next() {
            let mut value = |what: &str| match flags.next() {
                Some(v) => Ok(v.clone()),
                None => bail!("`{flag}` needs {what}"),
            };
            match flag.as_str() {
                "--quick" => options.quick = true,
                "--only" => options.only = Some(value("a row filter")?),
                "--out" => options.out = value("a path")?.into(),
                "--torch" => options.torch = Some(value("a path")?.into()),
                other => bail!("unknown flag `{other}`"),
            }
        }
        Ok(options)
    }
}

/// The rows measured so far; rewritten to disk after each.
struct Report {
    timer: Timer,
    only: Option<String>,
    entries: Vec<Entry>,
    out: PathBuf,
}

/// What one row needs besides its closures.
struct RowSpec<'a> {
    paper: &'a str,
    model: &'a str,
    arm: String,
    density: f64,
    shape: String,
    period: usize,
}

impl Report {
    fn wants(&self, paper: &str, model: &str, arm: &str) -> bool {
        let label = format!("{paper} / {model} / {arm}");
        self.only.as_deref().is_none_or(|o| label.contains(o))
    }

    /// Times `step` (a block of `spec.period` steps) and `eval`, records the row.
    fn row(
        &mut self,
        spec: RowSpec<'_>,
        step: impl FnMut() -> Result<()>,
        eval: impl FnMut() -> Result<()>,
    ) -> Result<()> {
        let s = self.timer.measure(step)?;
        let e = self.timer.measure(eval)?;
        let entry = Entry {
            paper: spec.paper.into(),
            model: spec.model.into(),
            arm: spec.arm,
            density: spec.density,
            shape: spec.shape,
            period: spec.period,
            step_ms: s.median_ms / spec.period as f64,
            eval_ms: e.median_ms,
            step_reps: s.reps,
            eval_reps: e.reps,
        };
        println!(
            "{:<15} {:<20} {:<12} {:>7.3} {:<34} {:>6} {:>10.3} {:>10.3}   ({}/{} reps)",
            entry.paper,
            entry.model,
            entry.arm,
            entry.density,
            entry.shape,
            entry.period,
            entry.step_ms,
            entry.eval_ms,
            s.reps,
            e.reps
        );
        std::io::stdout().flush()?;
        self.entries.push(entry);
        self.write()
    }

    fn write(&self) -> Result<()> {
        crate::report_file::write_json(&self.out, &self.entries)
    }
}

/// `n` class labels in `0..classes`, seeded.
fn labels(n: usize, classes: usize, seed: u64) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<u32> = (0..n)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    Ok(Tensor::from_vec(v, n, &Device::Cpu)?)
}

/// random-pruning: the MLP-256 of the digits `quick` plan on 28×28×1 inputs (the
/// issue's MLP 784-256-256-10) and ResNet-8 width 16 of the image `quick` plan,
/// each dense, ERK@0.10 and ERK@0.05, batch 64 (the plans' batch).
fn random_pruning(rep: &mut Report) -> Result<()> {
    use random_pruning::Sparsity;
    use random_pruning::config::AllocationKind;
    use random_pruning::data::DatasetName;
    use random_pruning::paper::plan;
    use random_pruning::training::{EVAL_BATCH, optimizer};

    let input = InputShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let classes = 10;
    let mlp = Architecture::Mlp {
        width: 256,
        depth: 2,
    };
    let resnet = Architecture::ResNet {
        depth: 8,
        width: 16,
    };
    let digits = plan(Preset::Quick, Some(DatasetName::Digits))?;
    let images = plan(Preset::Quick, Some(DatasetName::FashionMnist))?;
    let wanted = |s: &Sparsity| {
        *s == Sparsity::Dense
            || s.is_allocation_at(AllocationKind::Erk, 0.1)
            || s.is_allocation_at(AllocationKind::Erk, 0.05)
    };
    for (plan, arch, model) in [
        (&digits, &mlp, "mlp 784-256-256-10"),
        (&images, &resnet, "resnet-8 w16"),
    ] {
        let arms: Vec<_> = plan
            .arms
            .iter()
            .filter(|a| a.config.architecture() == arch && wanted(&a.config.sparsity()))
            .collect();
        if arms.len() != 3 {
            bail!(
                "random-pruning's quick plan has {} of the 3 {model} arms",
                arms.len()
            );
        }
        for arm in arms {
            let config = &arm.config;
            let arm_label = config.sparsity().label();
            if !rep.wants("random-pruning", model, &arm_label) {
                continue;
            }
            let batch = config.batch_size();
            let net = Network::for_shape(config, input, classes, SEED)?;
            let mut opt = optimizer(config, &net)?;
            let x = uniform(&[batch, 1, 28, 28], SEED + 1)?;
            let y = labels(batch, classes, SEED + 2)?;
            let xe = uniform(&[EVAL_BATCH, 1, 28, 28], SEED + 3)?;
            let spec = RowSpec {
                paper: "random-pruning",
                model,
                arm: arm_label,
                density: config.density(),
                shape: format!("b{batch} 1x28x28, eval b{EVAL_BATCH}"),
                period: 1,
            };
            rep.row(
                spec,
                || {
                    // The loop reads every step's loss, so the step includes it.
                    net.train_step(&mut opt, &x, &y)?.to_scalar::<f32>()?;
                    Ok(())
                },
                || {
                    net.logits(&xe)?.argmax(1)?.to_vec1::<u32>()?;
                    Ok(())
                },
            )?;
        }
    }
    Ok(())
}

/// dsn-tsc: the SCNN of the `quick` plan on OSULeaf's shape (univariate, length
/// 427, 200 training cases, 6 classes: the quick set with the largest batch, 16),
/// dense and DSN; DSN's prune-and-regrow runs at its quick period.
fn dsn_tsc(rep: &mut Report) -> Result<()> {
    use dsn_tsc::training::{EVAL_BATCH, RunState};
    use dsn_tsc::{Arm, DsnTsc};

    let (dims, length, n_train, classes) = (1, 427, 200, 6);
    let model = "scnn nf16 d3 k39";
    let plan = <DsnTsc as Paper>::plan(Preset::Quick, &NoArgs {})?;
    for want in [Arm::Dense, Arm::Dsn] {
        let arm = plan
            .arms
            .iter()
            .find(|a| a.dataset == "osuleaf" && a.config.arm() == want)
            .with_context(|| format!("dsn-tsc's quick plan has no osuleaf {} arm", want.name()))?;
        let config = arm.config.train_config(dims, SEED)?;
        let density = if want.is_sparse() {
            config.density()
        } else {
            1.0
        };
        let arm_label = if want.is_sparse() {
            format!("DSN@{density:.2}")
        } else {
            "dense".to_string()
        };
        if !rep.wants("dsn-tsc", model, &arm_label) {
            continue;
        }
        let batch = config.batch_size_for(n_train);
        let period = if want == Arm::Dsn {
            config.update_every_epochs() * n_train.div_ceil(batch)
        } else {
            1
        };
        let mut run = RunState::new(&config, dims, classes, n_train, &Device::Cpu)?;
        let x = uniform(&[batch, dims, length], SEED + 1)?;
        let y = labels(batch, classes, SEED + 2)?;
        let xe = uniform(&[EVAL_BATCH, dims, length], SEED + 3)?;
        let spec = RowSpec {
            paper: "dsn-tsc",
            model,
            arm: arm_label,
            density,
            shape: format!("b{batch} 1x{length}, eval b{EVAL_BATCH}"),
            period,
        };
        // Evaluation does not touch the run's state, so it can borrow a copy of the
        // model taken before the steps move the masks (same topology cost).
        let eval_model = run.model.clone();
        rep.row(
            spec,
            || {
                let before = run.step;
                for _ in 0..period {
                    run.train_step(&x, &y)?.0.to_scalar::<f32>()?;
                }
                // A block of `period` consecutive steps holds exactly one update.
                debug_assert_eq!(run.step - before, period);
                Ok(())
            },
            || {
                eval_model
                    .forward_t(&xe, false)?
                    .argmax(1)?
                    .to_vec1::<u32>()?;
                Ok(())
            },
        )?;
    }
    Ok(())
}

/// A random graph of Cora's sizes for untrained-gnn's rows.
mod gcn {
    use std::collections::BTreeSet;

    use anyhow::Result;
    use candle_core::Device;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use sparse_data::data::Planetoid;
    use untrained_gnn::data::GraphData;

    /// Cora's sizes: nodes, features, classes, stored feature entries, undirected
    /// edges (PyG's 10 556 directed), and the public split.
    pub const NODES: usize = 2708;
    pub const FEATURES: usize = 1433;
    pub const CLASSES: usize = 7;
    pub const FEATURE_NNZ: usize = 49_216;
    pub const EDGES: usize = 5278;
    pub const TRAIN: usize = 140;
    pub const VAL: usize = 500;
    pub const TEST: usize = 1000;

    /// A random graph of Cora's sizes, through sparse-data's own Planetoid parser
    /// (so the features are row-normalised and `Â` built as for Cora).
    pub fn synthetic_cora(seed: u64) -> Result<GraphData> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut nodes = String::from("node\tlabel\tsplit\n");
        for i in 0..NODES {
            let split = match i {
                i if i < TRAIN => "train",
                i if i < TRAIN + VAL => "val",
                i if i >= NODES - TEST => "test",
                _ => "-",
            };
            nodes.push_str(&format!("{i}\t{}\t{split}\n", i % CLASSES));
        }
        let mut features = String::from("node\tfeature\tvalue\n");
        for i in 0..NODES {
            // Spread FEATURE_NNZ entries as evenly as possible over the nodes.
            let k = FEATURE_NNZ / NODES + usize::from(i < FEATURE_NNZ % NODES);
            let mut cols = BTreeSet::new();
            while cols.len() < k {
                cols.insert(rng.random_range(0..FEATURES));
            }
            for c in cols {
                features.push_str(&format!("{i}\t{c}\t1\n"));
            }
        }
        let mut edges = String::from("src\tdst\n");
        let mut seen = BTreeSet::new();
        while seen.len() < EDGES {
            let (a, b) = (rng.random_range(0..NODES), rng.random_range(0..NODES));
            if a != b && seen.insert((a.min(b), a.max(b))) {
                edges.push_str(&format!("{a}\t{b}\n"));
            }
        }
        let g = Planetoid::parse(
            (nodes.as_bytes(), "synthetic nodes"),
            (features.as_bytes(), "synthetic features"),
            (edges.as_bytes(), "synthetic edges"),
        )?;
        Ok(GraphData::from_planetoid("cora-shaped", &g, &Device::Cpu)?)
    }
}

/// untrained-gnn: the 2-layer GCN of the `quick` plan (hidden 256) on a random
/// graph of Cora's sizes, dense (weights trained) and UGT at sparsity 0.9 (scores
/// trained, density 0.1).
fn untrained_gnn(rep: &mut Report) -> Result<()> {
    use untrained_gnn::{Method, ModelKind, RunState, UntrainedGnn};

    let plan =
        <UntrainedGnn as Paper>::plan(Preset::Quick, &untrained_gnn::paper::SubsetArgs::default())?;
    let graph = gcn::synthetic_cora(SEED)?;
    for (method, sparsity) in [(Method::Dense, 0.0), (Method::Ugt, 0.9)] {
        let arm = plan
            .arms
            .iter()
            .find(|a| {
                a.dataset == "cora"
                    && a.config.model() == ModelKind::Gcn
                    && a.config.layers() == 2
                    && a.config.ood_classes() == 0
                    && a.config.method() == method
                    && (a.config.sparsity() - sparsity).abs() < 1e-9
            })
            .with_context(|| {
                format!(
                    "untrained-gnn's quick plan has no 2-layer Cora GCN {} arm at {sparsity}",
                    method.as_str()
                )
            })?;
        let config = &arm.config;
        let model = format!("gcn 2x{}", config.hidden());
        let arm_label = match method {
            Method::Dense => "dense".to_string(),
            _ => format!("UGT s={sparsity:.2}"),
        };
        if !rep.wants("untrained-gnn", &model, &arm_label) {
            continue;
        }
        // the crate's own step, at the last epoch (the ramp, if any, is over)
        let epoch = config.epochs() - 1;
        let mut run = RunState::new(config, &graph, &Device::Cpu)?;
        let mut eval_run = RunState::new(config, &graph, &Device::Cpu)?;
        let spec = RowSpec {
            paper: "untrained-gnn",
            model: &model,
            arm: arm_label,
            density: 1.0 - config.sparsity(),
            shape: format!("{} nodes {} feats, full graph", gcn::NODES, gcn::FEATURES),
            period: 1,
        };
        rep.row(
            spec,
            || Ok(run.train_step(config, &graph, epoch).map(drop)?),
            || Ok(eval_run.evaluate_step(config, &graph).map(drop)?),
        )?;
    }
    Ok(())
}

/// sparse-core: RigL training the MLP 784-256-256-10 with every weight stored packed
/// (`PackedSparseLinear` over a `PackedWeight` registered with the engine), ERK
/// masks at 0.10 and 0.05, batch 64, SGD Nesterov 0.9 (wd 5e-4 on the weights) as
/// random-pruning's MLP. One block is a whole RigL period of 100 steps: 99 steps with
/// the masked gradient and one with the dense gradient plus the prune-and-regrow.
fn packed_rigl(rep: &mut Report) -> Result<()> {
    use candle_core::{DType, Var};
    use sparse_core::kernels::{
        Activation, PackedSparseLinear, PackedWeight, WeightGrad, cross_entropy,
    };
    use sparse_core::{
        Allocation, DynamicSparsity, LayerSpec, Mask, Optimizer, ParamGroup, Sgd, SgdConfig,
        SparseParams, SparsityEngine,
    };

    use random_pruning::training::EVAL_BATCH;

    const PERIOD: usize = 100;
    let model = "mlp 784-256-256-10";
    let shapes = [
        ("fc1.weight", [256usize, 784]),
        ("fc2.weight", [256, 256]),
        ("fc3.weight", [10, 256]),
    ];
    for density in [0.1, 0.05] {
        let arm = format!("RigL ERK@{density:.2}");
        if !rep.wants("sparse-core", model, &arm) {
            continue;
        }
        let specs: Vec<LayerSpec> = shapes.iter().map(|(n, s)| LayerSpec::new(*n, s)).collect();
        let densities = Allocation::erk().densities(&specs, density, None)?;
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        let mut params = SparseParams::new();
        let mut layers = Vec::new();
        let mut biases = Vec::new();
        for ((name, shape), d) in shapes.iter().zip(&densities) {
            let n = shape[0] * shape[1];
            let bound = (1.0 / shape[1] as f32).sqrt();
            let w: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
            let keep: Vec<bool> = (0..n).map(|_| rng.random::<f64>() < *d).collect();
            let weight = PackedWeight::new(
                &Tensor::from_vec(w, &shape[..], &Device::Cpu)?,
                &Mask::from_bools(shape, &keep)?,
            )?;
            params.insert_packed(*name, &weight)?;
            let bias = Var::zeros(shape[0], DType::F32, &Device::Cpu)?;
            let activation = if layers.len() < 2 {
                Activation::Relu
            } else {
                Activation::Identity
            };
            layers.push(
                PackedSparseLinear::from_packed(weight)?
                    .with_bias(bias.as_tensor().clone())?
                    .with_activation(activation)
                    .with_name(*name),
            );
            biases.push((name.replace("weight", "bias"), bias));
        }
        let config = SgdConfig::builder(0.05)
            .momentum(0.9)
            .nesterov(true)
            .weight_decay(5e-4)
            .build()?;
        let groups = vec![
            ParamGroup::new(Vec::new()).with_packed(params.packed_weights()),
            ParamGroup::with_weight_decay(biases, 0.0),
        ];
        let mut opt = Sgd::new(groups, config)?;
        // a long schedule: the death rate stays near its initial 0.5 over the timed steps
        let rigl = DynamicSparsity::rigl(PERIOD, 1_000_000)
            .seed(SEED)
            .build()?;
        let mut engine = SparsityEngine::new(rigl, &params)?;
        let x = uniform(&[64, 784], SEED + 1)?;
        let y = labels(64, 10, SEED + 2)?;
        let xe = uniform(&[EVAL_BATCH, 784], SEED + 3)?;
        let forward = |layers: &[PackedSparseLinear], x: &Tensor| -> Result<Tensor> {
            let h = layers[0].forward(x)?;
            let h = layers[1].forward(&h)?;
            Ok(layers[2].forward(&h)?)
        };
        let mut step = 0usize;
        let spec = RowSpec {
            paper: "sparse-core",
            model,
            arm,
            density,
            shape: format!("b64 784, eval b{EVAL_BATCH}"),
            period: PERIOD,
        };
        rep.row(
            spec,
            || {
                for _ in 0..PERIOD {
                    step += 1;
                    // the mode lives in the shared weights: no `&mut` layers needed
                    let mode = if engine.needs_dense_gradients(step) {
                        WeightGrad::Dense
                    } else {
                        WeightGrad::Masked
                    };
                    for layer in &layers {
                        layer.set_weight_grad(mode)?;
                    }
                    let loss = cross_entropy(&forward(&layers, &x)?, &y, 0.0)?;
                    let grads = loss.backward()?;
                    loss.to_scalar::<f32>()?;
                    opt.step(&grads)?;
                    engine.after_optimizer_step(step, &mut params, &grads, Some(&mut opt))?;
                }
                Ok(())
            },
            || {
                forward(&layers, &xe)?.argmax(1)?.to_vec1::<u32>()?;
                Ok(())
            },
        )?;
    }
    Ok(())
}

/// Prints our rows beside PyTorch's from `path`, with the targets.
fn side_by_side(entries: &[Entry], path: &std::path::Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let torch: Vec<TorchRow> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let comparisons = train_compare::compare(entries, &torch);
    let show =
        |v: Option<f64>, unit: &str| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}{unit}"));
    println!(
        "\n{:<52} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8}",
        "row", "ours_step", "torch_step", "ratio", "ours_eval", "torch_eval", "ratio"
    );
    for c in &comparisons {
        println!(
            "{:<52} {:>10.3} {:>10} {:>8} {:>10.3} {:>10} {:>8}",
            c.label,
            c.ours_step_ms,
            show(c.torch_step_ms, ""),
            show(c.step_ratio(), "x"),
            c.ours_eval_ms,
            show(c.torch_eval_ms, ""),
            show(c.eval_ratio(), "x"),
        );
    }
    println!("\ntargets (ratio = PyTorch ms / ours ms, measured in these runs):");
    for t in train_compare::targets(&comparisons) {
        let value = show(t.value, "x");
        let verdict = t.verdict.as_str();
        println!(
            "  {verdict:<12} {:<78} {value:>8} (target >= {})",
            t.what, t.bound
        );
    }
    Ok(())
}

/// Runs the whole report.
pub fn run(options: &Options) -> Result<()> {
    let timer = if options.quick {
        Timer {
            reps: 5,
            budget: Duration::from_secs(3),
            min_sampled: Duration::ZERO,
        }
    } else {
        Timer {
            reps: 15,
            budget: Duration::from_secs(15),
            min_sampled: Duration::from_millis(1000),
        }
    };
    let mut rep = Report {
        timer,
        only: options.only.clone(),
        entries: Vec::new(),
        out: options.out.clone(),
    };
    println!(
        "machine: {}{}",
        machine(),
        if options.quick { " (--quick)" } else { "" }
    );
    println!(
        "{:<15} {:<20} {:<12} {:>7} {:<34} {:>6} {:>10} {:>10}",
        "paper", "model", "arm", "density", "shape", "period", "step_ms", "eval_ms"
    );
    random_pruning(&mut rep)?;
    dsn_tsc(&mut rep)?;
    untrained_gnn(&mut rep)?;
    packed_rigl(&mut rep)?;
    println!("\nwrote {}", options.out.display());
    if let Some(torch) = &options.torch {
        side_by_side(&rep.entries, torch)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn flags_parse() -> Result<()> {
        let o = Options::parse(&args(&[
            "--quick", "--only", "resnet", "--out", "x.json", "--torch", "t.json",
        ]))?;
        assert_eq!(
            o,
            Options {
                quick: true,
                out: "x.json".into(),
                only: Some("resnet".into()),
                torch: Some("t.json".into()),
            }
        );
        assert_eq!(Options::parse(&[])?, Options::default());
        Ok(())
    }

    #[test]
    fn bad_flags_are_errors() {
        let err = Options::parse(&args(&["--out"])).unwrap_err().to_string();
        assert!(err.contains("`--out` needs a path"), "{err}");
        let err = Options::parse(&args(&["--fast"])).unwrap_err().to_string();
        assert!(err.contains("unknown flag `--fast`"), "{err}");
    }

    #[test]
    fn labels_are_seeded_and_in_range() -> Result<()> {
        let a = labels(64, 7, 3)?.to_vec1::<u32>()?;
        assert_eq!(a, labels(64, 7, 3)?.to_vec1::<u32>()?);
        assert!(a.iter().all(|&l| l < 7));
        Ok(())
    }

    #[test]
    fn the_synthetic_graph_has_coras_sizes() -> Result<()> {
        let g = gcn::synthetic_cora(0)?;
        assert_eq!(g.num_nodes, gcn::NODES);
        assert_eq!(g.num_features, gcn::FEATURES);
        assert_eq!(g.num_classes, gcn::CLASSES);
        assert_eq!(g.features.nnz(), gcn::FEATURE_NNZ);
        // Both directions of every edge plus one self-loop per node.
        assert_eq!(g.gcn_adjacency.nnz(), 2 * gcn::EDGES + gcn::NODES);
        assert_eq!(
            (g.train.len(), g.val.len(), g.test.len()),
            (gcn::TRAIN, gcn::VAL, gcn::TEST)
        );
        Ok(())
    }
}
