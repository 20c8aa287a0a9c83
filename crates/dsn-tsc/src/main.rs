//! `dsn-tsc`: reproduce / train / eval on sparse-repro's harness (see the crate README).

fn main() -> anyhow::Result<()> {
    sparse_repro::harness::main::<dsn_tsc::DsnTsc>()
}
