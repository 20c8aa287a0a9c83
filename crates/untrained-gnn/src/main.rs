//! `untrained-gnn`: reproduce the paper, train one arm, or evaluate a checkpoint.

use anyhow::{Context, Result};
use candle_core::Device;
use clap::{Args, Parser, Subcommand};
use sparse_data::location::DataLocation;
use sparse_repro::cli::{EvalArgs, OutArgs, ReproduceArgs};
use sparse_repro::progress::ProgressMode;
use sparse_repro::utc::UtcDateTime;
use untrained_gnn::data::DatasetName;
use untrained_gnn::experiment;
use untrained_gnn::training::{self, NodeSplits};
use untrained_gnn::{Method, ModelKind, TrainConfig};

/// Options of one run.
#[derive(Debug, Args)]
struct TrainArgs {
    /// Layer family.
    #[arg(long, value_enum, default_value_t = ModelKind::Gcn)]
    model: ModelKind,
    /// UGTs, edge-popup or trained dense.
    #[arg(long, value_enum, default_value_t = Method::Ugt)]
    method: Method,
    /// Graph.
    #[arg(long, value_enum, default_value_t = DatasetName::Cora)]
    dataset: DatasetName,
    /// Target sparsity (fraction of weights removed); ignored for dense.
    #[arg(long, default_value_t = 0.9)]
    sparsity: f64,
    /// Number of graph layers.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Hidden width.
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    /// Full-batch epochs.
    #[arg(long, default_value_t = 400)]
    epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// Weight decay (default: 0 for score methods, 5e-4 for dense).
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Dropout (default: 0.6 for dense GAT/GIN, else 0).
    #[arg(long)]
    dropout: Option<f64>,
    /// Classes held out as out-of-distribution (0: none).
    #[arg(long, default_value_t = 0)]
    ood_classes: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where the datasets are.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every arm of the paper and write the report.
    Reproduce(ReproduceArgs),
    /// Train one arm and save its best-validation checkpoint.
    Train(TrainArgs),
    /// Reload a checkpoint and print its test accuracy.
    Eval(EvalArgs),
}

#[derive(Debug, Parser)]
#[command(
    name = "untrained-gnn",
    version,
    about = "Untrained GNN tickets (LoG 2022) on Sparseland"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Reproduce(args) => reproduce(&args),
        Command::Train(args) => train(&args),
        Command::Eval(args) => eval(&args),
    }
}

fn reproduce(args: &ReproduceArgs) -> Result<()> {
    let started = UtcDateTime::now();
    let plan = experiment::Plan::for_preset(args.preset, args.seeds)?;
    let out = args.out_dir(env!("CARGO_PKG_NAME"), &started)?;
    let location = DataLocation::from_process(args.data_dir.as_deref());
    eprintln!(
        "untrained-gnn: preset {} ({} runs) -> {}",
        args.preset,
        plan.run_count(),
        out.display()
    );
    let report = experiment::run(&plan, &location, &out, &started, ProgressMode::Auto)?;
    println!("{}", report.to_markdown());
    println!("report written to {}", out.display());
    Ok(())
}

fn train(args: &TrainArgs) -> Result<()> {
    let mut builder = TrainConfig::builder(args.model, args.method)
        .layers(args.layers)
        .hidden(args.hidden)
        .epochs(args.epochs)
        .lr(args.lr)
        .ood_classes(args.ood_classes)
        .seed(args.seed);
    if args.method.trains_scores() {
        builder = builder.sparsity(args.sparsity);
    }
    if let Some(wd) = args.weight_decay {
        builder = builder.weight_decay(wd);
    }
    if let Some(p) = args.dropout {
        builder = builder.dropout(p);
    }
    let config = builder.build()?;
    let location = DataLocation::from_process(args.data_dir.as_deref());
    let device = Device::Cpu;
    let graph = args.dataset.load(&location, &device)?;
    let out = args
        .out
        .out_dir(env!("CARGO_PKG_NAME"), "train", &UtcDateTime::now())?;
    let path = out.join(format!(
        "{}-seed{}.safetensors",
        config.label(),
        config.seed()
    ));
    let (_, outcome) = training::train(&config, &graph, &device, ProgressMode::Auto, Some(&path))?;
    let json = serde_json::to_string_pretty(&outcome)?;
    std::fs::write(out.join("outcome.json"), json).context("writing outcome.json")?;
    println!(
        "{} on {}: best epoch {}, val {:.4}, test {:.4}, MAD {:.4}, density {:.4}, {:.1} s",
        config.label(),
        graph.name,
        outcome.best_epoch,
        outcome.eval.val_accuracy,
        outcome.eval.test_accuracy,
        outcome.eval.mad,
        outcome.eval.density,
        outcome.seconds
    );
    println!("checkpoint: {}", path.display());
    Ok(())
}

fn eval(args: &EvalArgs) -> Result<()> {
    let stored = training::read_checkpoint_config(&args.checkpoint)?;
    let location = DataLocation::from_process(args.data_dir.as_deref());
    let device = Device::Cpu;
    let graph = stored.dataset.load(&location, &device)?;
    let reloaded = training::load_checkpoint(
        &args.checkpoint,
        graph.num_features,
        graph.num_classes,
        &device,
    )?;
    let splits = NodeSplits::new(&graph, &reloaded.config.train, &device)?;
    let eval = training::evaluate(
        &reloaded.network,
        &graph,
        &splits,
        reloaded.config.train.sparsity(),
    )?;
    println!("test_accuracy {}", eval.test_accuracy);
    if let Some(auroc) = eval.ood_auroc {
        println!("ood_auroc {auroc}");
    }
    match reloaded.recorded_test_accuracy {
        Some(recorded) if recorded == eval.test_accuracy => {
            println!("matches the accuracy recorded at training time ({recorded})")
        }
        Some(recorded) => anyhow::bail!(
            "test accuracy {} differs from the recorded {recorded}",
            eval.test_accuracy
        ),
        None => println!("(no accuracy recorded in the checkpoint)"),
    }
    Ok(())
}
