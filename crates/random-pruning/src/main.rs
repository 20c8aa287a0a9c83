//! `random-pruning`: reproduce, train one arm, or evaluate a checkpoint.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use random_pruning::data::{DatasetName, ImageData};
use random_pruning::experiment::{self, EvalSpec, Plan};
use random_pruning::training::{self, RunOptions};
use random_pruning::{AllocationKind, Sparsity, TrainConfig};
use sparse_repro::cli::{EvalArgs, OutArgs, ReproduceArgs};
use sparse_repro::models::Architecture;
use sparse_repro::progress::ProgressMode;
use sparse_repro::utc::UtcDateTime;

/// Static sparse training from random masks (Liu et al., ICLR 2022).
#[derive(Debug, Parser)]
#[command(name = "random-pruning", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a preset's grid of arms and seeds; write report.json, report.md, plots and checkpoints.
    Reproduce {
        #[command(flatten)]
        args: ReproduceArgs,
        /// Data set (default: digits for smoke/quick, cifar10 for paper).
        #[arg(long, value_enum)]
        dataset: Option<DatasetName>,
    },
    /// Train one arm and write its checkpoint and outcome.
    Train(TrainArgs),
    /// Reload a checkpoint and print its test accuracy.
    Eval(EvalArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ArchKind {
    Mlp,
    Resnet,
    Vgg,
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// Data set.
    #[arg(long, value_enum, default_value_t = DatasetName::Digits)]
    dataset: DatasetName,
    /// Where the fetched data sets are.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Model family.
    #[arg(long, value_enum, default_value_t = ArchKind::Mlp)]
    arch: ArchKind,
    /// Width multiplier (hidden units or first-stage channels).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// MLP hidden layers or ResNet depth (6n+2).
    #[arg(long)]
    depth: Option<usize>,
    /// Density of the random mask; 1 trains the dense model.
    #[arg(long, default_value_t = 1.0)]
    density: f64,
    /// Layer-wise allocation of the density.
    #[arg(long, value_enum, default_value_t = AllocationKind::Erk)]
    allocation: AllocationKind,
    /// Draw exactly round(d_l·N_l) weights per layer instead of Bernoulli(d_l) each.
    #[arg(long)]
    exact: bool,
    /// Epochs.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Initial learning rate.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Seed.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Keep only the first N training images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Keep only the first N test images.
    #[arg(long)]
    test_limit: Option<usize>,
    #[command(flatten)]
    out: OutArgs,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Reproduce { args, dataset } => reproduce(args, dataset),
        Command::Train(args) => train(args),
        Command::Eval(args) => eval(args),
    }
}

fn reproduce(args: ReproduceArgs, dataset: Option<DatasetName>) -> Result<()> {
    let plan = Plan::new(args.preset, dataset)?;
    let seeds = args.seed_list(plan.seeds)?;
    let started = UtcDateTime::now();
    let out = args.out_dir(env!("CARGO_PKG_NAME"), &started)?;
    eprintln!(
        "random-pruning {} on {}: {} architectures x {} arms x {} seeds -> {}",
        plan.preset,
        plan.dataset.as_str(),
        plan.architectures.len(),
        plan.sparsities.len(),
        seeds.len(),
        out.display()
    );
    let report = experiment::reproduce(
        &plan,
        &seeds,
        args.data_dir.as_deref(),
        &out,
        ProgressMode::Auto,
    )?;
    for claim in &report.claims {
        println!("[{}] {}: {}", claim.status(), claim.id, claim.statement);
    }
    println!(
        "wrote {} and {} ({:.0} s)",
        out.join("report.md").display(),
        out.join("report.json").display(),
        report.wall_seconds
    );
    Ok(())
}

fn train(args: TrainArgs) -> Result<()> {
    let architecture = match args.arch {
        ArchKind::Mlp => Architecture::Mlp {
            width: args.width,
            depth: args.depth.unwrap_or(2),
        },
        ArchKind::Resnet => Architecture::ResNet {
            depth: args.depth.unwrap_or(20),
            width: args.width,
        },
        ArchKind::Vgg => Architecture::Vgg { width: args.width },
    };
    let sparsity = if args.density >= 1.0 {
        Sparsity::Dense
    } else {
        Sparsity::Random {
            density: args.density,
            allocation: args.allocation,
            exact: args.exact,
        }
    };
    let config = TrainConfig::builder(architecture)
        .sparsity(sparsity)
        .epochs(args.epochs)
        .batch_size(args.batch_size)
        .learning_rate(args.lr)
        .seed(args.seed)
        .build()?;
    let data = ImageData::load(args.dataset, args.data_dir.as_deref())?
        .truncated(args.train_limit, args.test_limit);
    let out = args
        .out
        .out_dir(env!("CARGO_PKG_NAME"), "train", &UtcDateTime::now())?;
    let name = experiment::arm_name(&config.architecture, &config.sparsity);
    let options = RunOptions {
        progress: ProgressMode::Auto,
        label: name.clone(),
    };
    let (outcome, net) = training::train(&config, &data, &options)?;
    let spec = EvalSpec {
        config,
        dataset: args.dataset,
        train_limit: args.train_limit,
        test_limit: args.test_limit,
        test_accuracy: outcome.test_accuracy,
    };
    let ckpt = out.join("model.safetensors");
    experiment::save_checkpoint(&ckpt, &net, &spec)?;
    let json = serde_json::to_string_pretty(&outcome)?;
    std::fs::write(out.join("outcome.json"), &json)
        .with_context(|| format!("writing {}", out.join("outcome.json").display()))?;
    println!(
        "{name}: test accuracy {:.4} (best validation epoch {})",
        outcome.test_accuracy, outcome.best_epoch
    );
    println!("checkpoint: {}", ckpt.display());
    Ok(())
}

fn eval(args: EvalArgs) -> Result<()> {
    let (spec, accuracy) =
        experiment::evaluate_checkpoint(&args.checkpoint, args.data_dir.as_deref())
            .with_context(|| format!("evaluating {}", args.checkpoint.display()))?;
    println!(
        "{} on {}: test accuracy {accuracy} (recorded at training: {})",
        experiment::arm_name(&spec.config.architecture, &spec.config.sparsity),
        spec.dataset.as_str(),
        spec.test_accuracy
    );
    if accuracy != spec.test_accuracy {
        anyhow::bail!(
            "the reloaded model gives {accuracy}, the run recorded {}",
            spec.test_accuracy
        );
    }
    Ok(())
}
