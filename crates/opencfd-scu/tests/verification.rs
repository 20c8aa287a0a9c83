//! The smoke verification suite: the checks that hold at any grid size must pass.

use opencfd_scu::verify::{SuiteSize, run_suite};

fn claim(report: &opencfd_scu::verify::VerificationReport, id: &str) -> bool {
    let claim = report
        .cases
        .iter()
        .flat_map(|case| &case.claims)
        .find(|claim| claim.id == id)
        .unwrap_or_else(|| panic!("no claim {id}"));
    claim.passed
}

#[test]
fn smoke_suite_runs_every_case_and_writes_its_report() {
    let report = run_suite(SuiteSize::Smoke, &[], |_| {}).unwrap();
    let names: Vec<&str> = report.cases.iter().map(|case| case.name.as_str()).collect();
    assert_eq!(names, opencfd_scu::verify::CASES);
    // Exact properties of the discretisation, independent of resolution.
    for id in [
        "decomposition-2x1x1",
        "decomposition-1x2x2",
        "conservation-mass",
        "conservation-energy",
        "conservation-x-momentum",
        "sod-l1-falls",
        "taylor-green-initial-energy",
        "taylor-green-energy-decays",
    ] {
        assert!(claim(&report, id), "{id} failed");
    }
    let dir = tempfile::tempdir().unwrap();
    report.write_to_dir(dir.path()).unwrap();
    let markdown = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(markdown.contains("| decomposition |") && markdown.contains("**PASS**"));
    for plot in [
        "sod-density.svg",
        "vortex-order-cartesian.svg",
        "taylor-green-dissipation.svg",
    ] {
        assert!(dir.path().join(plot).exists(), "{plot} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["cases"].as_array().unwrap().len(), names.len());
}

#[test]
fn unknown_case_names_are_refused() {
    let error = run_suite(SuiteSize::Smoke, &["sodd".to_string()], |_| {}).unwrap_err();
    assert!(error.to_string().contains("sodd"), "{error}");
}
