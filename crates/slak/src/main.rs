//! `slak`: the SLaK reproduction's command line (sparse-repro's harness).

fn main() -> anyhow::Result<()> {
    sparse_repro::harness::main::<slak::Slak>()
}
