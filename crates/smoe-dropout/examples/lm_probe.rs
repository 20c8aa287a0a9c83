//! Trains one arm of the quick language model for a given number of steps and
//! prints its step time and the test BPC at every k: what sized the quick preset.
//!
//! `cargo run --release -p smoe-dropout --example lm_probe -- smoe-dropout 500 [seed]`

use smoe_dropout::data::{CharData, TINY_SHAKESPEARE};
use smoe_dropout::presets::{self, ArmKind};
use smoe_dropout::schedule::KMode;
use smoe_dropout::training::train;
use sparse_repro::cli::Preset;
use sparse_repro::progress::ProgressMode;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arm = ArmKind::from_name(args.first().map_or("smoe-dropout", String::as_str))?;
    let steps: usize = args.get(1).map_or(Ok(500), |s| s.parse())?;
    let seed: u64 = args.get(2).map_or(Ok(0), |s| s.parse())?;
    let mut config = presets::config(Preset::Quick, arm, KMode::LinearIncrease)?;
    config.steps = steps;
    config.schedule.total_steps = steps;
    config.validate()?;
    let data = CharData::load(TINY_SHAKESPEARE, None)?;
    let run = train(&config, &data, seed, ProgressMode::Lines, arm.name())?;
    let o = &run.outcome;
    println!(
        "{}: {steps} steps, {:.1} ms/step at mean k {:.2}, final loss {:.3}",
        arm.name(),
        1e3 * o.train_seconds_per_step,
        o.mean_k,
        o.final_train_loss
    );
    for (k, bpc) in &o.test_bpc {
        println!("  k = {k}: test BPC {bpc:.4}");
    }
    Ok(())
}
