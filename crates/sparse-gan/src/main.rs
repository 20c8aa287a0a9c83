//! `sparse-gan`: reproduce, train one arm, or evaluate a checkpoint, through
//! sparse-repro's harness.

fn main() -> anyhow::Result<()> {
    sparse_repro::harness::main::<sparse_gan::StuGan>()
}
