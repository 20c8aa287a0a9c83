//! Probe: can an arm learn far-pairs with more images? `cargo run --release -p slak
//! --example far_pairs_probe -- ARM TRAIN_IMAGES EPOCHS [LAYER_SCALE]`.

use sparse_data::images::ImageData;
use sparse_repro::cli::Preset;
use sparse_repro::progress::ProgressMode;
use sparse_repro::splits::ImageSplits;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arm_name = args.get(1).map(String::as_str).unwrap_or("c-13");
    let images: usize = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let epochs: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let mut arm = slak::presets::arms(Preset::Quick, "far-pairs")?
        .into_iter()
        .find(|a| a.name == arm_name)
        .ok_or_else(|| anyhow::anyhow!("no arm {arm_name}"))?;
    arm.config.data.train_pool = Some(images);
    arm.config.epochs = epochs;
    if let Some(ls) = args.get(4) {
        arm.config.model.layer_scale = ls.parse()?;
    }
    let splits = ImageSplits::new(ImageData::far_pairs()?, &arm.config.data)?;
    let run = slak::training::train(&arm.config, &splits, 0, ProgressMode::Lines, arm_name)?;
    println!("{:?}", run.outcome);
    Ok(())
}
