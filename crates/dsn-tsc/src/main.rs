//! `dsn-tsc`: reproduce / train / eval (see the crate README).

use anyhow::{Context, Result};
use candle_core::Device;
use clap::{Args, Parser, Subcommand};
use dsn_tsc::data::DatasetSource;
use dsn_tsc::experiment::{CRATE_NAME, Plan, run};
use dsn_tsc::training::{eval_checkpoint, save_checkpoint, train};
use dsn_tsc::{Arm, ConvBackend, Growth, MaskInit, Padding, TrainConfig};
use sparse_data::location::DataLocation;
use sparse_repro::cli::{EvalArgs, OutArgs, ReproduceArgs};
use sparse_repro::progress::ProgressMode;
use sparse_repro::utc::UtcDateTime;

/// `reproduce` with a dry-run switch.
#[derive(Debug, Args)]
struct ReproduceCommand {
    #[command(flatten)]
    args: ReproduceArgs,
    /// Validate the preset's configuration and data, print the plan, train nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Options of one run.
#[derive(Debug, Args)]
struct TrainArgs {
    /// Catalogue name (gunpoint, basicmotions, ...), `<dir>/<Name>_TRAIN.ts`, or
    /// `synthetic:<train>:<test>:<length>:<seed>`.
    #[arg(long, default_value = "gunpoint")]
    dataset: String,
    /// dense, dense-small-kernel, static or dsn.
    #[arg(long, default_value = "dsn")]
    arm: String,
    /// Training epochs.
    #[arg(long, default_value_t = 1000)]
    epochs: usize,
    /// ch_size (modules output 3 x this).
    #[arg(long, default_value_t = 47)]
    channels: usize,
    /// Number of modules.
    #[arg(long, default_value_t = 4)]
    depth: usize,
    /// Density inside the constraint regions.
    #[arg(long, default_value_t = 0.2)]
    density: f64,
    /// Initial masks: remain-sort or remain-random.
    #[arg(long, default_value = "remain-sort")]
    mask_init: String,
    /// Growth: random or gradient.
    #[arg(long, default_value = "random")]
    growth: String,
    /// Padding: replicate or zero.
    #[arg(long, default_value = "replicate")]
    padding: String,
    /// Sparse arms' convolutions: sparse-dense-grad, sparse-masked-grad or masked-dense.
    #[arg(long, default_value = "sparse-dense-grad")]
    conv_backend: String,
    /// The run's seed.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Where the data sets are.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every arm on the preset's data sets and write the report.
    Reproduce(ReproduceCommand),
    /// Train one arm on one data set and save its selected model.
    Train(TrainArgs),
    /// Reload a checkpoint and print its test accuracy.
    Eval(EvalArgs),
}

#[derive(Debug, Parser)]
#[command(
    name = "dsn-tsc",
    version,
    about = "Dynamic Sparse Network for time series classification"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn parse_kebab<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .with_context(|| format!("invalid --{what} `{text}`"))
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Reproduce(cmd) => {
            let args = cmd.args;
            let plan = Plan::for_preset(args.preset, args.seeds)?;
            let runs = plan.validate()?;
            let location = DataLocation::from_process(args.data_dir.as_deref());
            if cmd.dry_run {
                for d in &plan.datasets {
                    let data = DatasetSource::parse(&d.dataset).load(&location)?;
                    let config = plan.config(Arm::Dsn, d, data.dims, 0)?;
                    println!(
                        "{}: {} train / {} test, {} dims, length {}, {} classes, {} epochs, batch {}",
                        data.name,
                        data.train.len(),
                        data.test.len(),
                        data.dims,
                        data.length,
                        data.num_classes(),
                        d.epochs,
                        config.batch_size_for(data.train.len())
                    );
                }
                println!(
                    "{runs} runs ({} arms x {} seeds per data set): configuration valid",
                    plan.arms.len(),
                    plan.seeds.len()
                );
                return Ok(());
            }
            let started = UtcDateTime::now();
            let out = args.out_dir(CRATE_NAME, &started)?;
            let report = run(&plan, &location, &out, &started, ProgressMode::Auto)?;
            for claim in &report.claims {
                println!("{} {}: {}", claim.status(), claim.id, claim.statement);
            }
            println!("report written to {}", out.join("report.md").display());
        }
        Command::Train(a) => {
            let config = TrainConfig::builder()
                .arm(Arm::from_name(&a.arm)?)
                .epochs(a.epochs)
                .channels(a.channels)
                .depth(a.depth)
                .density(a.density)
                .mask_init(parse_kebab::<MaskInit>("mask-init", &a.mask_init)?)
                .growth(parse_kebab::<Growth>("growth", &a.growth)?)
                .padding(parse_kebab::<Padding>("padding", &a.padding)?)
                .conv_backend(parse_kebab::<ConvBackend>("conv-backend", &a.conv_backend)?)
                .seed(a.seed)
                .build()?;
            let location = DataLocation::from_process(a.data_dir.as_deref());
            let source = DatasetSource::parse(&a.dataset);
            let data = source.load(&location)?;
            let started = UtcDateTime::now();
            let out = a.out.out_dir(CRATE_NAME, "train", &started)?;
            let (trained, outcome) = train(&config, &data, &Device::Cpu, ProgressMode::Auto)?;
            let path = out.join(format!("{}-{}-s{}.safetensors", data.name, a.arm, a.seed));
            save_checkpoint(&path, &trained, &source, &outcome)?;
            std::fs::write(
                out.join("outcome.json"),
                serde_json::to_string_pretty(&outcome)?,
            )?;
            println!(
                "{} {}: test accuracy {:.4} (selected epoch {}), last epoch {:.4}, {:.1} s, conv density {:.4}",
                data.name,
                a.arm,
                outcome.test_accuracy,
                outcome.selected_epoch,
                outcome.test_accuracy_last,
                outcome.train_seconds,
                outcome.conv_density
            );
            println!("checkpoint: {}", path.display());
        }
        Command::Eval(a) => {
            let location = DataLocation::from_process(a.data_dir.as_deref());
            let result = eval_checkpoint(&a.checkpoint, &location, &Device::Cpu)?;
            println!(
                "{} {}: test accuracy {} ({} samples)",
                result.info.dataset,
                result.info.config.arm().name(),
                result.evaluation.accuracy,
                result.evaluation.samples
            );
            if let Some(reported) = result.reported_accuracy {
                println!("reported at save time: {reported}");
            }
        }
    }
    Ok(())
}
