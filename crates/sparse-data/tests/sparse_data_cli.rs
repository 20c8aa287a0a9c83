//! End-to-end tests of the `sparse-data` binary. Tests that need data say
//! so and return early when it is absent (CI fetches it first with
//! `.ci/fetch-test-data`; the shared data folder is on every CI machine).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sparse_data::catalogue;
use sparse_data::location::DataLocation;

fn sparse_data(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sparse-data"))
        .args(args)
        .env_remove("SPARSELAND_DATA")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the sparse-data binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON statistics of a data set, or `None` (with a note) when it is absent.
fn stats_json(name: &str, extra: &[&str]) -> Option<serde_json::Value> {
    let location = DataLocation::from_process(None);
    let dataset = catalogue::find(name).unwrap();
    if let Err(missing) = dataset.resolve(&location) {
        eprintln!("skipping: {missing}");
        return None;
    }
    let mut args = vec!["stats", name, "--json"];
    args.extend_from_slice(extra);
    let output = sparse_data(&args);
    assert!(output.status.success(), "stats {name}: {}", stderr(&output));
    Some(serde_json::from_str(&stdout(&output)).unwrap())
}

fn splits(stats: &serde_json::Value) -> Vec<(String, u64)> {
    stats["splits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|split| {
            (
                split["name"].as_str().unwrap().to_string(),
                split["samples"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter()
        .map(|(name, n)| (name.to_string(), *n))
        .collect()
}

#[test]
fn list_shows_every_data_set() {
    let output = sparse_data(&["list"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for name in catalogue::known_names() {
        assert!(
            text.lines()
                .any(|line| line.split_whitespace().next() == Some(name)),
            "{name} missing from:\n{text}"
        );
    }
    let output = sparse_data(&["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let digits = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["name"] == "digits")
        .unwrap();
    assert_eq!(digits["present"], true);
    assert_eq!(digits["storage"], "embedded");
}

#[test]
fn env_var_and_flag_choose_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sparse-data"))
        .arg("list")
        .env("SPARSELAND_DATA", dir.path())
        .output()
        .unwrap();
    assert!(
        stdout(&output).contains(&format!(
            "fetch root (SPARSELAND_DATA): {}",
            dir.path().display()
        )),
        "{}",
        stdout(&output)
    );
    let flag_dir = dir.path().join("flag");
    let output = Command::new(env!("CARGO_BIN_EXE_sparse-data"))
        .args(["list", "--data-dir"])
        .arg(&flag_dir)
        .env("SPARSELAND_DATA", dir.path())
        .output()
        .unwrap();
    assert!(
        stdout(&output).contains(&format!("fetch root (--data-dir): {}", flag_dir.display())),
        "{}",
        stdout(&output)
    );
}

#[test]
fn unknown_name_lists_the_known_names() {
    let output = sparse_data(&["stats", "imagenet"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("unknown data set `imagenet`"), "{err}");
    assert!(
        err.contains("gunpoint") && err.contains("bert-vocab"),
        "{err}"
    );
    let output = sparse_data(&["fetch", "imagenet"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("known data sets: mnist"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_fetched_set_says_how_to_fetch_it() {
    let dir = tempfile::tempdir().unwrap();
    let empty: &Path = dir.path();
    let output = sparse_data(&["stats", "gunpoint", "--data-dir", empty.to_str().unwrap()]);
    assert!(!output.status.success());
    let expected = format!(
        "gunpoint not found in {}: run `cargo run -p sparse-data -- fetch gunpoint`",
        PathBuf::from(empty).join("ucr/GunPoint").display()
    );
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
}

#[test]
fn embedded_digits_stats() {
    let stats = stats_json("digits", &[]).unwrap();
    assert_eq!(splits(&stats), pairs(&[("all", 1797)]));
    assert_eq!(stats["classes"], 10);
}

#[test]
fn cora_stats_match_the_planetoid_numbers() {
    let Some(stats) = stats_json("cora", &[]) else {
        return;
    };
    assert_eq!(
        splits(&stats),
        pairs(&[("train", 140), ("val", 500), ("test", 1000)])
    );
    assert_eq!(stats["classes"], 7);
    assert_eq!(stats["details"]["nodes"], 2708);
    assert_eq!(stats["details"]["undirected_edges"], 5278);
    assert_eq!(stats["details"]["features"], 1433);
    assert_eq!(stats["details"]["nonzero_features"], 49216);
}

#[test]
fn citeseer_stats_match_the_planetoid_numbers() {
    let Some(stats) = stats_json("citeseer", &[]) else {
        return;
    };
    assert_eq!(
        splits(&stats),
        pairs(&[("train", 120), ("val", 500), ("test", 1000)])
    );
    assert_eq!(stats["details"]["nodes"], 3327);
    assert_eq!(stats["details"]["labelled_nodes"], 3312);
    assert_eq!(stats["details"]["undirected_edges"], 4552);
}

#[test]
fn math_word_problem_stats() {
    if let Some(stats) = stats_json("svamp", &[]) {
        assert_eq!(splits(&stats), pairs(&[("train", 3138), ("test", 1000)]));
    }
    if let Some(stats) = stats_json("mawps", &[]) {
        assert_eq!(splits(&stats), pairs(&[("train", 1537), ("test", 384)]));
        assert_eq!(stats["details"]["fold"], 0);
    }
    if let Some(stats) = stats_json("asdiv-a", &["--fold", "0"]) {
        assert_eq!(splits(&stats), pairs(&[("train", 979), ("test", 238)]));
    }
}

#[test]
fn tinyshakespeare_stats() {
    let Some(stats) = stats_json("tinyshakespeare", &[]) else {
        return;
    };
    assert_eq!(stats["details"]["characters"], 1_115_394);
    assert_eq!(stats["details"]["vocabulary"], 65);
}

#[test]
fn fetched_sets_stats() {
    if let Some(stats) = stats_json("mnist", &[]) {
        assert_eq!(splits(&stats), pairs(&[("train", 60000), ("test", 10000)]));
        assert_eq!(stats["sample_shape"], serde_json::json!([1, 28, 28]));
    }
    if let Some(stats) = stats_json("fashion-mnist", &[]) {
        assert_eq!(splits(&stats), pairs(&[("train", 60000), ("test", 10000)]));
    }
    if let Some(stats) = stats_json("gunpoint", &[]) {
        assert_eq!(splits(&stats), pairs(&[("train", 50), ("test", 150)]));
        assert_eq!(stats["details"]["max_length"], 150);
    }
    if let Some(stats) = stats_json("basicmotions", &[]) {
        assert_eq!(stats["sample_shape"], serde_json::json!([6, 100]));
    }
    if let Some(stats) = stats_json("bert-vocab", &[]) {
        assert_eq!(stats["details"]["tokens"], 30522);
    }
}
