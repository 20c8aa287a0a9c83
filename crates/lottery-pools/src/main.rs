//! `lottery-pools`: reproduce, train one arm, evaluate a checkpoint, or pool a
//! directory of saved tickets, through sparse-repro's harness.

fn main() -> anyhow::Result<()> {
    sparse_repro::harness::main::<lottery_pools::LotteryPools>()
}
