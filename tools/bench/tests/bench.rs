//! `logitflow-bench` as a person runs it: its own binary, driving the services of the
//! `logitflow` binary that cargo built beside it (`cargo test --workspace` builds both).

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `logitflow-bench ARGS...` to its end (at most two minutes) and parses what it printed
/// with `--json`.
fn bench(args: &[&str]) -> Value {
    let scratch = tempfile::tempdir().expect("tempdir");
    let child = Command::new(env!("CARGO_BIN_EXE_logitflow-bench"))
        .args(args)
        .env("LOGITFLOW_HOME", scratch.path())
        .env_remove("LOGITFLOW_SERVICE_EXE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("logitflow-bench starts");
    // Read to the end on a thread of its own, so that a bench that hangs fails the test.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let Ok(out) = rx.recv_timeout(Duration::from_secs(120)) else {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        panic!("logitflow-bench {args:?} did not finish within two minutes");
    };
    let out = out.expect("its output");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstderr: {stderr}", out.status);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn pipeline_rounds_time_each_run_in_a_fresh_home_and_summarise_them() {
    let out = bench(&["pipeline", "--rows", "3000", "--rounds", "2", "--json"]);
    let runs = out["large_csv"].as_array().expect("a run per round");
    assert_eq!(runs.len(), 2, "{out}");
    let totals: Vec<f64> = runs
        .iter()
        .map(|r| {
            assert_eq!(r["rows"], 3000, "{r}");
            let stages: Vec<&str> = r["stages_ms"]
                .as_array()
                .expect("stages")
                .iter()
                .filter_map(|s| s[0].as_str())
                .collect();
            assert_eq!(stages, ["ingest", "preprocess", "features", "train", "evaluate", "serve"]);
            r["stage_total_ms"].as_f64().expect("a total")
        })
        .collect();
    let summary = &out["large_csv_summary"];
    assert_eq!(summary["rounds"], 2);
    let stages = summary["stages_ms"].as_array().expect("the stages' spreads");
    assert_eq!(stages.len(), 7, "six stages and their sum: {summary}");
    for stage in stages {
        let spread = &stage[1];
        let (min, median, max) =
            (spread["min"].as_f64(), spread["median"].as_f64(), spread["max"].as_f64());
        assert!(min > Some(0.0) && min <= median && median <= max, "{stage}");
    }
    let sum = &stages[6];
    assert_eq!(sum[0], "stages");
    let (least, most) = (totals[0].min(totals[1]), totals[0].max(totals[1]));
    assert_eq!(
        (sum[1]["min"].as_f64(), sum[1]["max"].as_f64()),
        (Some(least), Some(most)),
        "{summary}"
    );
    assert_eq!(sum[1]["median"].as_f64(), Some((least + most) / 2.0));
}

/// `serve` starts serve and its bare handler (a child of the bench binary, by its own
/// subcommand) and loads both, over HTTP and over gRPC: a second of each on two connections,
/// answered without an error.
#[test]
fn serve_loads_serve_and_its_bare_handler_over_http_and_grpc_without_an_error() {
    let short = ["--seconds", "1", "--rounds", "1", "--connections", "2", "--json"];
    for wire in [&[][..], &["--grpc"][..]] {
        let out = bench(&[&["serve"][..], wire, &short[..]].concat());
        for target in ["serve", "bare"] {
            assert!(out[target]["requests"].as_u64() > Some(0), "{wire:?}: {out}");
            assert_eq!(out[target]["errors"], 0, "{wire:?}: {out}");
        }
    }
}
