//! Train one `quick` arm on border-half with another image count or epoch count, to
//! see what a budget buys before sizing a preset:
//! `cargo run --release -p slak --example arm_probe -- ARM TRAIN_IMAGES EPOCHS [BATCH] [LR]`.

use sparse_data::images::ImageData;
use sparse_repro::cli::Preset;
use sparse_repro::progress::ProgressMode;
use sparse_repro::splits::ImageSplits;

fn main() -> anyhow::Result<()> {
    sparse_core::malloc::retain_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let arm_name = args.get(1).map(String::as_str).unwrap_or("c-13");
    let images: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(4_000);
    let epochs: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(4);
    let mut arm = slak::presets::arms(Preset::Quick, "border-half")?
        .into_iter()
        .find(|a| a.name == arm_name)
        .ok_or_else(|| anyhow::anyhow!("no arm {arm_name}"))?;
    arm.config.data.train_pool = Some(images);
    arm.config.epochs = epochs;
    if let Some(batch) = args.get(4) {
        arm.config.batch_size = batch.parse()?;
    }
    if let Some(lr) = args.get(5) {
        arm.config.lr = lr.parse()?;
    }
    arm.config.validate()?;
    let splits = ImageSplits::new(ImageData::border_half()?, &arm.config.data)?;
    let run = slak::training::train(&arm.config, &splits, 0, ProgressMode::Lines, arm_name)?;
    println!("{:?}", run.outcome);
    Ok(())
}
