//! Multi-process runs over MPI (feature `mpi`, needs Open MPI's `mpirun`): the same
//! control file on 2 and 4 ranks writes the same flow file, byte for byte, as one
//! process with one block, also with the interior/halo overlap (`STREAM = 1`).
#![cfg(feature = "mpi")]

mod common;

use std::path::Path;
use std::process::Command;

const SHIPPED: &str = include_str!("../cases/taylor-green-32.in");

/// The shipped case on 20³ points (blocks of 10 points still have inner points to
/// overlap), with the hybrid scheme, `blocks` and `STREAM = stream`.
fn control(dir: &Path, blocks: &str, stream: u8) -> std::path::PathBuf {
    let text = SHIPPED
        .replace("GRID_3D = 32 32 32", "GRID_3D = 20 20 20")
        .replace("PARALLEL_3D = 1 1 1", &format!("PARALLEL_3D = {blocks}"))
        .replace("STREAM = 0", &format!("STREAM = {stream}"))
        .replace(
            "SCHEME_INVIS = UP7",
            "SCHEME_INVIS = SCHEME_HYBRIDAUTO\nHY_DP_INTV = 0.01 0.2\nHY_STYLE = 2",
        )
        .replace("END_TIME = 10", "END_TIME = 0.025")
        .replace("KSTEP_SAVE = 1000", "KSTEP_SAVE = 100");
    let path = dir.join(format!("case-{}-{stream}.in", blocks.replace(' ', "x")));
    std::fs::write(&path, text).unwrap();
    path
}

fn run(launcher: Option<&str>, control: &Path, out: &Path) -> Vec<u8> {
    let binary = env!("CARGO_BIN_EXE_opencfd-scu");
    let mut command = match launcher {
        Some(ranks) => {
            let mut c = Command::new("mpirun");
            c.args([
                "--allow-run-as-root",
                "--oversubscribe",
                "-n",
                ranks,
                binary,
            ]);
            c
        }
        None => Command::new(binary),
    };
    command
        .arg("run")
        .arg(control)
        .args(["--initial", "taylor-green", "--out"])
        .arg(out);
    if launcher.is_some() {
        command.arg("--mpi");
    }
    let output = command
        .output()
        .expect("mpirun (Open MPI) must be installed for the mpi feature's tests");
    assert!(
        output.status.success(),
        "{launcher:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(out.join("flow-00000005.safetensors")).unwrap()
}

#[test]
fn two_and_four_ranks_write_the_single_block_flow_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let single = run(
        None,
        &control(dir.path(), "1 1 1", 0),
        &dir.path().join("single"),
    );
    for (ranks, stream) in [("2", 0), ("4", 0), ("2", 1), ("4", 1)] {
        let distributed = run(
            Some(ranks),
            &control(dir.path(), "2 2 1", stream),
            &dir.path().join(format!("ranks-{ranks}-stream-{stream}")),
        );
        assert!(
            distributed == single,
            "{ranks} ranks with STREAM = {stream} wrote a different flow"
        );
    }
}

#[test]
fn the_ramp_on_two_ranks_writes_the_single_block_flow_byte_for_byte() {
    // Wall, inflow, closures and the overlap; its blowing velocity has signed zeros,
    // which the gather must keep.
    let dir = common::prepare();
    let write = |name: &str, blocks: &str, stream: u8| {
        let path = dir.path().join(name);
        std::fs::write(&path, common::control(blocks, stream)).unwrap();
        path
    };
    write("single.in", "1 1 1", 0);
    common::run(&["run", "single.in", "--out", "single"], dir.path());
    write("split.in", "1 2 1", 1);
    let output = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-n", "2"])
        .arg(common::BINARY)
        .args(["run", "split.in", "--mpi", "--out", "split"])
        .current_dir(dir.path())
        .output()
        .expect("mpirun (Open MPI) must be installed for the mpi feature's tests");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file =
        |run: &str| std::fs::read(dir.path().join(run).join("flow-00000005.safetensors")).unwrap();
    assert!(
        file("split") == file("single"),
        "2 ranks wrote a different ramp flow"
    );
}
