//! `untrained-gnn`: reproduce the paper, train one arm, or evaluate a checkpoint
//! (sparse-repro's harness command line; see [`untrained_gnn::UntrainedGnn`]).

fn main() -> anyhow::Result<()> {
    sparse_repro::harness::main::<untrained_gnn::UntrainedGnn>()
}
