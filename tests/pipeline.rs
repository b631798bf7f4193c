//! The pipeline end to end through the real binary and real service processes.

mod common;

use common::{assert_no_services, run, stderr, stdout, write};
use serde_json::Value;
use std::time::Duration;

fn json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "exit {:?}\nstderr: {}", out.status, stderr(out));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

fn stage_names_and_cached(report: &Value) -> Vec<(String, bool)> {
    report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| (s["name"].as_str().unwrap_or("").to_string(), s["cached"].as_bool().unwrap_or(false)))
        .collect()
}

#[test]
fn full_run_on_the_bundled_data_then_all_cached() {
    let home = tempfile::tempdir().expect("tempdir");
    let report = json(&run(home.path(), &["run", "--json", "--predict", "80"]));
    assert_no_services(home.path(), Duration::from_secs(2));
    let stages = stage_names_and_cached(&report);
    let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["ingest", "preprocess", "features", "train", "evaluate", "serve"]);
    assert!(stages.iter().all(|(_, cached)| !cached), "a fresh home caches nothing: {stages:?}");
    assert_eq!(report["model"]["name"], "admissions");
    assert_eq!(report["model"]["version"], 1);
    let intercept = report["model"]["intercept"].as_f64().expect("intercept");
    let slope = report["model"]["coefficients"]["score"].as_f64().expect("score coefficient");
    assert!((-11.0..-9.0).contains(&intercept), "θ0 = {intercept}");
    assert!((0.18..0.22).contains(&slope), "θ1 = {slope}");
    for metric in ["accuracy", "precision", "recall", "f1", "auc", "log_loss", "brier"] {
        assert!(report["metrics"][metric].as_f64().is_some(), "metric {metric} missing");
    }
    assert!(report["metrics"]["auc"].as_f64().unwrap_or(0.0) > 0.95);
    let confusion = &report["metrics"]["confusion"];
    let total: u64 = ["tp", "fp", "tn", "fn"].iter().map(|k| confusion[k].as_u64().unwrap_or(0)).sum();
    assert_eq!(total, 400, "the test split is 20% of 2000 rows");
    let curve = report["loss_curve"].as_array().expect("curve");
    assert!(!curve.is_empty() && curve[0]["train_loss"].is_number() && curve[0]["val_loss"].is_number());
    let p = report["predictions"][0]["probability"].as_f64().expect("probability");
    assert!((0.99..1.0).contains(&p), "P(80) = {p}");
    assert_eq!(report["predictions"][0]["model_version"], "1");

    let again = json(&run(home.path(), &["run", "--json", "--predict", "80"]));
    assert_no_services(home.path(), Duration::from_secs(2));
    let stages = stage_names_and_cached(&again);
    assert!(stages.iter().all(|(_, cached)| *cached), "the same run again is all cached: {stages:?}");
    assert_eq!(again["model"]["version"], 1);
    assert_ne!(again["run_id"], report["run_id"]);

    let runs = run(home.path(), &["runs"]);
    assert!(runs.status.success());
    assert_eq!(stdout(&runs).lines().filter(|l| l.contains("admissions")).count(), 2, "{}", stdout(&runs));
}

#[test]
fn new_parameters_make_version_2_and_serve_answers_with_it() {
    let home = tempfile::tempdir().expect("tempdir");
    json(&run(home.path(), &["run", "--json"]));
    let second = json(&run(home.path(), &["run", "--json", "--solver", "newton", "--predict", "80", "--predict", "50"]));
    assert_eq!(second["model"]["version"], 2);
    assert_eq!(second["promoted"], true, "{}", second["decision"]);
    assert_eq!(second["predictions"][0]["model_version"], "2");
    assert_eq!(second["predictions"].as_array().map(Vec::len), Some(2));
    assert_eq!(second["stages"][0]["cached"], true, "ingest is reused");
    assert_eq!(second["stages"][3]["cached"], false, "train is not");

    let predict = run(home.path(), &["predict", "80", "--json"]);
    assert!(predict.status.success(), "{}", stderr(&predict));
    let answer: Value = serde_json::from_str(&stdout(&predict)).expect("json");
    assert_eq!(answer["model_version"], "2");
    assert!((0.99..1.0).contains(&answer["probability"].as_f64().unwrap_or(0.0)));
    let by_name = run(home.path(), &["predict", "--feature", "score=80"]);
    assert!(stdout(&by_name).contains("probability 0.99"), "{}", stdout(&by_name));
    assert_no_services(home.path(), Duration::from_secs(2));
}

#[test]
fn export_writes_valid_png_svg_and_csv() {
    let home = tempfile::tempdir().expect("tempdir");
    json(&run(home.path(), &["run", "--json"]));
    let out_dir = home.path().join("exports");
    let out = run(home.path(), &["export", "--out", out_dir.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let paths: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(paths.len(), 6, "{paths:?}");
    for path in &paths {
        let bytes = std::fs::read(path).expect("exported file exists");
        if path.ends_with(".png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{path}");
            assert!(bytes.len() > 5_000, "{path} is too small to hold a chart");
        } else if path.ends_with(".svg") {
            let text = String::from_utf8(bytes).expect("svg is text");
            assert!(text.contains("<svg") && text.contains("epoch") || text.contains("false positive rate"), "{path}");
        } else {
            assert!(String::from_utf8(bytes).expect("csv").lines().count() > 2, "{path}");
        }
    }
}

#[test]
fn bad_csvs_give_a_clear_error_and_leave_nothing_running() {
    let home = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("not_a_number.csv", "score,admitted\n80,1\nabc,0\n", "line 3, column \"score\""),
        ("empty.csv", "", "empty"),
        ("one_class.csv", "score,admitted\n80,1\n90,1\n70,1\n", "both classes"),
        ("bad_label.csv", "score,admitted\n80,1\n20,7\n", "labels must be 0 or 1"),
        ("ragged.csv", "score,admitted\n80,1\n20,0,5\n", "line 3: expected 2 fields"),
        ("infinite.csv", "score,admitted\n80,1\ninf,0\n", "not finite"),
    ];
    for (name, text, expected) in cases {
        let path = write(home.path(), name, text);
        let out = run(home.path(), &["run", "--data", path.to_str().expect("utf8")]);
        assert!(!out.status.success(), "{name} should fail");
        assert!(stderr(&out).contains(expected), "{name}: stderr should say {expected:?}, got: {}", stderr(&out));
        assert_no_services(home.path(), Duration::from_secs(2));
    }
    let path = write(home.path(), "ok.csv", "score,admitted\n80,1\n20,0\n");
    let out = run(home.path(), &["run", "--data", path.to_str().expect("utf8"), "--label", "nope"]);
    assert!(stderr(&out).contains("unknown column \"nope\""), "{}", stderr(&out));
}

#[test]
fn bad_flags_give_a_clear_error_before_anything_starts() {
    let home = tempfile::tempdir().expect("tempdir");
    let cases: [(&[&str], &str); 6] = [
        (&["run", "--lr", "-1"], "learning_rate"),
        (&["run", "--epochs", "0"], "epochs"),
        (&["run", "--solver", "adam"], "invalid value 'adam'"),
        (&["run", "--test-fraction", "1.5"], "--test-fraction"),
        (&["run", "--data", "/no/such/file.csv"], "/no/such/file.csv"),
        (&["run", "--predict", "eighty"], "not a number"),
    ];
    for (args, expected) in cases {
        let out = run(home.path(), args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr(&out).contains(expected), "{args:?}: stderr should say {expected:?}, got: {}", stderr(&out));
    }
    let out = run(home.path(), &["predict", "80"]);
    assert!(stderr(&out).contains("run `logitflow run` first"), "{}", stderr(&out));
    assert_no_services(home.path(), Duration::from_secs(2));
}

/// The artifact directories of one kind in a home.
fn artifacts_of_kind(home: &std::path::Path, kind: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(home.join("artifacts"))
        .expect("artifacts")
        .flatten()
        .map(|e| e.path())
        .filter(|p| std::fs::read_to_string(p.join("manifest.json")).is_ok_and(|m| m.contains(&format!("\"kind\": \"{kind}\""))))
        .collect()
}

#[test]
fn a_damaged_or_unlisted_dataset_is_frozen_again_from_the_intact_csv() {
    let home = tempfile::tempdir().expect("tempdir");
    let first = json(&run(home.path(), &["run", "--json", "--epochs", "5"]));
    let dataset = artifacts_of_kind(home.path(), "dataset").pop().expect("a dataset artifact");
    // A flipped byte in x.npy: the next run does not reuse it, and heals it.
    let mut bytes = std::fs::read(dataset.join("x.npy")).expect("x.npy");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(dataset.join("x.npy"), &bytes).expect("damage");
    let second = json(&run(home.path(), &["run", "--json", "--epochs", "5"]));
    assert_eq!(second["stages"][0]["cached"], false, "the damaged dataset is frozen again");
    assert_eq!(second["model"]["coefficients"], first["model"]["coefficients"], "from the same CSV, the same model");
    // Its manifest deleted: the same (this used to fail every run with "Directory not empty").
    std::fs::remove_file(dataset.join("manifest.json")).expect("remove");
    let third = json(&run(home.path(), &["run", "--json", "--epochs", "5"]));
    assert_eq!(third["stages"][0]["cached"], false);
    let fourth = json(&run(home.path(), &["run", "--json", "--epochs", "5"]));
    assert!(fourth["stages"].as_array().is_some_and(|s| s.iter().all(|s| s["cached"] == true)), "whole again: {}", fourth["stages"]);
}
