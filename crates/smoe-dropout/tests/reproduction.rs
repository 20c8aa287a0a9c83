//! The smoke preset end to end: report, claims, plot, resume and `eval`.

use sparse_repro::cli::Preset;
use sparse_repro::harness::{self, DataPolicy};

#[test]
fn smoke_reproduces_resumes_and_eval_matches() {
    let root = tempfile::tempdir().unwrap();
    let check = harness::check_resume::<smoe_dropout::SmoeDropout>(
        Preset::Smoke,
        &smoe_dropout::paper::SmoeArgs::default(),
        None,
        None,
        root.path(),
        3,
    )
    .unwrap();
    assert_eq!(check.taken_from_records, 3);
    let run = root.path().join("uninterrupted");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    for claim in [
        "self-slimmable",
        "routers-frozen",
        "learned-router-saturates",
        "smoe-dropout-vs-dense",
        "smoe-dropout-step-faster",
    ] {
        assert!(report.contains(claim), "{claim}");
    }
    assert!(report.contains("**PASS** `routers-frozen`"), "{report}");
    assert!(run.join("tinyshakespeare-bpc-by-k.svg").is_file());
    for checkpoint in [
        "checkpoints/tinyshakespeare-smoe-dropout-seed1.safetensors",
        "checkpoints/tinyshakespeare-dense-seed0.safetensors",
        "checkpoints/tinyshakespeare-smoe-seed0.safetensors",
    ] {
        let evaluated = harness::evaluate::<smoe_dropout::SmoeDropout>(
            &run.join(checkpoint),
            None,
            DataPolicy::NoFetch,
        )
        .unwrap();
        assert_eq!(
            evaluated.measured.to_bits(),
            evaluated.recorded.to_bits(),
            "{checkpoint}"
        );
    }
}
