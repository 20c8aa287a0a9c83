//! `smoe-dropout`: the SMoE-Dropout reproduction's command line (sparse-repro's harness).

fn main() -> anyhow::Result<()> {
    sparse_repro::harness::main::<smoe_dropout::SmoeDropout>()
}
