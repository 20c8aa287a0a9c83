//! Multi-process runs over MPI (feature `mpi`): 2 and 4 ranks reproduce one block bitwise.
#![cfg(feature = "mpi")]

use std::process::Command;

#[test]
fn two_and_four_ranks_reproduce_the_single_block_bitwise() {
    // The example sits beside the test binaries: target/<profile>/examples/.
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("mpi_decomposition");
    assert!(
        example.exists(),
        "build the example first: {}",
        example.display()
    );
    for ranks in ["2", "4"] {
        let output = Command::new("mpirun")
            .args(["--allow-run-as-root", "--oversubscribe", "-n", ranks])
            .arg(&example)
            .output()
            .expect("mpirun (Open MPI) must be installed for the mpi feature's tests");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{ranks} ranks: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("bitwise identical"), "{stdout}");
    }
}
