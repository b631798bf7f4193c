//! The pipeline end to end through the real binary and real service processes.

mod common;

use common::{assert_no_services, json, run, stderr, stdout, write};
use serde_json::Value;
use std::time::Duration;

fn stage_names_and_cached(report: &Value) -> Vec<(String, bool)> {
    report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (s["name"].as_str().unwrap_or("").to_string(), s["cached"].as_bool().unwrap_or(false))
        })
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
    // Near the truth (θ0 = −10, θ1 = 0.2), by the exact fit auto chose: converged, the
    // optimum itself (no distance from it to report), with standard errors.
    assert!((-10.5..-9.5).contains(&intercept), "θ0 = {intercept}");
    assert!((0.19..0.21).contains(&slope), "θ1 = {slope}");
    assert_eq!(
        report["model"]["solver_choice"],
        serde_json::json!({"solver": "newton", "reason": "1 term"})
    );
    assert_eq!(report["params"]["solver"], "newton", "the run records the solver that ran");
    assert_eq!(report["stop_reason"], "converged");
    assert!(report["model"]["optimality"].is_null(), "{}", report["model"]);
    assert!(
        report["model"]["terms"][1]["std_error"].as_f64().is_some_and(|se| se > 0.0),
        "{}",
        report["model"]
    );
    // The seed's SGD, one flag away: near the exact fit (its log loss within 0.1% of the
    // optimum, which the report measures), stopped early on its validation loss.
    let sgd = json(&run(
        tempfile::tempdir().expect("tempdir").path(),
        &["run", "--json", "--solver", "sgd"],
    ));
    let gap = sgd["model"]["optimality"]["gap_percent"].as_f64().expect("optimality");
    assert!((0.0..0.1).contains(&gap), "SGD's objective is {gap}% above the optimum");
    assert_eq!(sgd["stop_reason"], "early_stopped", "sgd stops early on its validation loss");
    assert!(sgd["loss_curve"][0]["val_loss"].is_number(), "sgd holds out validation rows");
    // Deterministic bit for bit: a fresh home fits the very same numbers.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let twin = json(&run(elsewhere.path(), &["run", "--json"]));
    for (a, b) in [
        (&report["model"]["intercept"], &twin["model"]["intercept"]),
        (&report["model"]["coefficients"], &twin["model"]["coefficients"]),
    ] {
        assert_eq!(a, b, "the same data, seed and parameters give the same model");
    }
    assert_eq!(report["loss_curve"], twin["loss_curve"], "and the same curve, epoch for epoch");
    for metric in ["accuracy", "precision", "recall", "f1", "auc", "log_loss", "brier"] {
        assert!(report["metrics"][metric].as_f64().is_some(), "metric {metric} missing");
    }
    assert!(report["metrics"]["auc"].as_f64().unwrap_or(0.0) > 0.95);
    let confusion = &report["metrics"]["confusion"];
    let total: u64 =
        ["tp", "fp", "tn", "fn"].iter().map(|k| confusion[k].as_u64().unwrap_or(0)).sum();
    assert_eq!(total, 400, "the test split is 20% of 2000 rows");
    let curve = report["loss_curve"].as_array().expect("curve");
    assert!(
        !curve.is_empty() && curve[0]["train_loss"].is_number() && curve[0]["val_loss"].is_null(),
        "newton fits every row"
    );
    let p = report["predictions"][0]["probability"].as_f64().expect("probability");
    assert!((0.99..1.0).contains(&p), "P(80) = {p}");
    assert_eq!(report["predictions"][0]["model_version"], "1");

    let again = json(&run(home.path(), &["run", "--json", "--predict", "80"]));
    assert_no_services(home.path(), Duration::from_secs(2));
    let stages = stage_names_and_cached(&again);
    assert!(
        stages.iter().all(|(_, cached)| *cached),
        "the same run again is all cached: {stages:?}"
    );
    assert_eq!(again["model"]["version"], 1);
    assert_ne!(again["run_id"], report["run_id"]);

    let runs = run(home.path(), &["runs"]);
    assert!(runs.status.success());
    assert_eq!(
        stdout(&runs).lines().filter(|l| l.contains("admissions")).count(),
        2,
        "{}",
        stdout(&runs)
    );
}

#[test]
fn new_parameters_make_version_2_and_serve_answers_with_it() {
    let home = tempfile::tempdir().expect("tempdir");
    json(&run(home.path(), &["run", "--json"]));
    let second = json(&run(
        home.path(),
        &["run", "--json", "--solver", "newton", "--predict", "80", "--predict", "50"],
    ));
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
    let report = json(&run(home.path(), &["run", "--json"]));
    let out_dir = home.path().join("exports");
    let out = run(home.path(), &["export", "--out", out_dir.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let paths: Vec<String> = stdout(&out).lines().map(String::from).collect();
    let suffixes: Vec<&str> =
        paths.iter().filter_map(|p| p.rsplit_once('-').map(|(_, s)| s)).collect();
    let expected = [
        "loss.csv",
        "roc.csv",
        "pr.csv",
        "calibration.csv",
        "loss.png",
        "loss.svg",
        "roc.png",
        "roc.svg",
        "pr.png",
    ];
    assert_eq!(
        suffixes,
        [&expected[..], &["pr.svg", "calibration.png", "calibration.svg"]].concat(),
        "{paths:?}"
    );
    let curve = report["loss_curve"].as_array().expect("curve");
    let roc = report["roc"].as_array().expect("roc");
    let read = |suffix: &str| {
        std::fs::read(paths.iter().find(|p| p.ends_with(suffix)).expect("exported"))
            .expect("readable")
    };
    let number =
        |cell: &str| cell.parse::<f64>().unwrap_or_else(|_| panic!("{cell:?} is not a number"));
    // The CSVs hold the run's own curves, value for value.
    let loss = String::from_utf8(read("loss.csv")).expect("csv");
    let mut lines = loss.lines();
    assert_eq!(lines.next(), Some("epoch,train_loss,val_loss"));
    // An empty cell where the fit had no validation rows (the default's newton fits them all).
    let rows: Vec<Vec<Option<f64>>> =
        lines.map(|l| l.split(',').map(|c| (!c.is_empty()).then(|| number(c))).collect()).collect();
    assert_eq!(rows.len(), curve.len());
    for (row, point) in rows.iter().zip(curve) {
        let expected =
            [&point["epoch"], &point["train_loss"], &point["val_loss"]].map(Value::as_f64);
        assert_eq!(row.as_slice(), expected, "loss.csv against the run's curve");
    }
    assert!(rows.iter().all(|row| row[2].is_none()), "no validation loss to write");
    let roc_csv = String::from_utf8(read("roc.csv")).expect("csv");
    let rows: Vec<Vec<f64>> =
        roc_csv.lines().skip(1).map(|l| l.split(',').map(number).collect()).collect();
    assert_eq!(rows.len(), roc.len());
    assert_eq!(rows[0][0], f64::INFINITY, "the first threshold is written `inf`, not 309 digits");
    for (row, point) in rows.iter().zip(roc).skip(1) {
        let expected = [&point["threshold"], &point["fpr"], &point["tpr"]]
            .map(|v| v.as_f64().unwrap_or(f64::NAN));
        assert_eq!(row.as_slice(), expected, "roc.csv against the run's curve");
    }
    // The precision-recall curve and the reliability diagram, as evaluate computed them.
    let table = |suffix: &str| -> Vec<Vec<f64>> {
        let text = String::from_utf8(read(suffix)).expect("csv");
        text.lines().skip(1).map(|l| l.split(',').map(number).collect()).collect()
    };
    let as_rows = |points: &serde_json::Value, fields: &[&str]| -> Vec<Vec<f64>> {
        let points = points.as_array().expect("points");
        points
            .iter()
            .map(|p| fields.iter().map(|f| p[*f].as_f64().unwrap_or(f64::NAN)).collect())
            .collect()
    };
    let pr = as_rows(&report["precision_recall"], &["threshold", "precision", "recall"]);
    assert!(
        pr.len() > 10
            && pr.iter().all(|p| (0.0..=1.0).contains(&p[1]) && (0.0..=1.0).contains(&p[2])),
        "{pr:?}"
    );
    assert_eq!(table("pr.csv"), pr, "pr.csv against the run's curve");
    let bins = as_rows(
        &report["calibration"],
        &["lower", "upper", "rows", "mean_probability", "fraction_positive"],
    );
    assert_eq!(
        bins.iter().map(|b| b[2]).sum::<f64>(),
        report["metrics"]["rows"].as_f64().expect("rows"),
        "every test row in a bin"
    );
    assert_eq!(table("calibration.csv"), bins, "calibration.csv against the run's bins");
    // The PNGs: 900 × 560 and 640 × 600 (the IHDR chunk), with more than a blank image's data.
    for (suffix, width, height) in [
        ("loss.png", 900, 560),
        ("roc.png", 640, 600),
        ("pr.png", 640, 600),
        ("calibration.png", 640, 600),
    ] {
        let png = read(suffix);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{suffix}");
        let size = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
        assert_eq!((size(16), size(20)), (width, height), "{suffix}");
        assert!(png.len() > 5_000, "{suffix} is too small to hold a chart");
    }
    // The SVGs: their axis titles, and one line per curve with a point per epoch (per ROC point).
    let lines_of = |svg: &str, points: usize| {
        svg.split("<polyline")
            .skip(1)
            .filter_map(|p| p.split("points=\"").nth(1)?.split('"').next())
            .filter(|p| p.split_whitespace().count() == points)
            .count()
    };
    let loss_svg = String::from_utf8(read("loss.svg")).expect("svg");
    assert!(loss_svg.starts_with("<svg") && loss_svg.contains("epoch"), "loss.svg");
    assert_eq!(
        lines_of(&loss_svg, curve.len()),
        1,
        "a train line of {} epochs, and no validation line",
        curve.len()
    );
    let roc_svg = String::from_utf8(read("roc.svg")).expect("svg");
    assert!(roc_svg.starts_with("<svg") && roc_svg.contains("false positive rate"), "roc.svg");
    assert_eq!(lines_of(&roc_svg, roc.len()), 1, "the ROC curve's {} points", roc.len());
    let pr_svg = String::from_utf8(read("pr.svg")).expect("svg");
    assert!(pr_svg.contains("recall") && pr_svg.contains("precision"), "pr.svg");
    assert_eq!(
        lines_of(&pr_svg, pr.len() + 1),
        1,
        "the curve's {} points and its start at recall 0",
        pr.len()
    );
    let calibration_svg = String::from_utf8(read("calibration.svg")).expect("svg");
    assert!(calibration_svg.contains("fraction positive"), "calibration.svg");
    assert_eq!(
        lines_of(&calibration_svg, bins.len()),
        1,
        "a point per bin that has rows ({})",
        bins.len()
    );

    // The seed's sgd holds out validation rows: its loss files have both curves, value for value.
    let sgd = json(&run(home.path(), &["run", "--json", "--solver", "sgd"]));
    let sgd_dir = home.path().join("sgd-exports");
    let out = run(home.path(), &["export", "--out", sgd_dir.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sgd_paths: Vec<String> = stdout(&out).lines().map(String::from).collect();
    let sgd_read = |suffix: &str| {
        std::fs::read_to_string(sgd_paths.iter().find(|p| p.ends_with(suffix)).expect("exported"))
            .expect("readable")
    };
    let sgd_curve = sgd["loss_curve"].as_array().expect("curve");
    let loss = sgd_read("loss.csv");
    for (line, point) in loss.lines().skip(1).zip(sgd_curve) {
        let row: Vec<f64> = line.split(',').map(number).collect();
        let expected = [&point["epoch"], &point["train_loss"], &point["val_loss"]]
            .map(|v| v.as_f64().unwrap_or(f64::NAN));
        assert_eq!(row, expected, "sgd's loss.csv against its curve");
    }
    assert_eq!(
        lines_of(&sgd_read("loss.svg"), sgd_curve.len()),
        2,
        "a train and a validation line of {} epochs",
        sgd_curve.len()
    );
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
        (
            "duplicate_header.csv",
            "score,score,admitted\n1,2,0\n3,4,1\n",
            "the header names column \"score\" twice",
        ),
        (
            "trailing_delimiter.csv",
            "score,admitted,\n1,0,\n3,1,\n",
            "the header has an empty column name (column 3)",
        ),
        // A quoted field across two lines: the bad cell's line is counted in the file's lines.
        (
            "quoted_newline.csv",
            "score,note,admitted\n1,\"a\nb\",0\nabc,x,1\n5,y,0\n",
            "line 4, column \"score\": \"abc\" is not a number",
        ),
    ];
    for (name, text, expected) in cases {
        let path = write(home.path(), name, text);
        let out = run(home.path(), &["run", "--data", path.to_str().expect("utf8")]);
        assert!(!out.status.success(), "{name} should fail");
        assert!(
            stderr(&out).contains(expected),
            "{name}: stderr should say {expected:?}, got: {}",
            stderr(&out)
        );
        assert_no_services(home.path(), Duration::from_secs(2));
    }
    let path = write(home.path(), "ok.csv", "score,admitted\n80,1\n20,0\n");
    let out = run(home.path(), &["run", "--data", path.to_str().expect("utf8"), "--label", "nope"]);
    assert!(stderr(&out).contains("unknown column \"nope\""), "{}", stderr(&out));
}

#[test]
fn bad_flags_give_a_clear_error_before_anything_starts() {
    let cases: [(&[&str], &str); 5] = [
        (&["run", "--lr", "-1"], "learning_rate"),
        (&["run", "--epochs", "0"], "epochs"),
        (&["run", "--solver", "adam"], "invalid value 'adam'"),
        (&["run", "--test-fraction", "1.5"], "--test-fraction"),
        (&["run", "--data", "/no/such/file.csv"], "/no/such/file.csv"),
    ];
    for (args, expected) in cases {
        // A home of its own per case: what is in it afterwards shows what was started.
        let home = tempfile::tempdir().expect("tempdir");
        let out = run(home.path(), args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: stderr should say {expected:?}, got: {}",
            stderr(&out)
        );
        // The supervisor writes its record in run/ before the first child starts, and any
        // service that ran would have stored something in artifacts/: neither exists, so the
        // words came from the CLI's own check, not from a service's 422.
        for started in ["run", "artifacts", "steps"] {
            assert!(
                !home.path().join(started).exists(),
                "{args:?}: {started}/ exists, so the pipeline started"
            );
        }
    }
    // A predict value can only be judged once the data's columns are known (a text feature
    // takes words): it fails after ingest, before anything is trained.
    let home = tempfile::tempdir().expect("tempdir");
    let out = run(home.path(), &["run", "--predict", "eighty"]);
    assert!(!out.status.success() && stderr(&out).contains("not a number"), "{}", stderr(&out));
    assert!(!home.path().join("registry.json").exists(), "nothing was registered");
    assert!(artifacts_of_kind(home.path(), "model").is_empty(), "nothing was trained");
    assert_no_services(home.path(), Duration::from_secs(2));
    let out = run(home.path(), &["predict", "80"]);
    assert!(stderr(&out).contains("run `logitflow run` first"), "{}", stderr(&out));
}

/// The artifact directories of one kind in a home.
fn artifacts_of_kind(home: &std::path::Path, kind: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(home.join("artifacts"))
        .expect("artifacts")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            std::fs::read_to_string(p.join("manifest.json"))
                .is_ok_and(|m| m.contains(&format!("\"kind\": \"{kind}\"")))
        })
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
    assert_eq!(
        second["model"]["coefficients"], first["model"]["coefficients"],
        "from the same CSV, the same model"
    );
    // Its manifest deleted: the same (this used to fail every run with "Directory not empty").
    std::fs::remove_file(dataset.join("manifest.json")).expect("remove");
    let third = json(&run(home.path(), &["run", "--json", "--epochs", "5"]));
    assert_eq!(third["stages"][0]["cached"], false);
    let fourth = json(&run(home.path(), &["run", "--json", "--epochs", "5"]));
    assert!(
        fourth["stages"].as_array().is_some_and(|s| s.iter().all(|s| s["cached"] == true)),
        "whole again: {}",
        fourth["stages"]
    );
}

/// The README says `assets/admissions.csv` is made bit for bit by one `synth` command.
#[test]
fn synth_makes_the_bundled_data_bit_for_bit() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = home.path().join("admissions.csv");
    let args = [
        "synth",
        "--rows",
        "2000",
        "--intercept",
        "-10",
        "--coef",
        "0.2",
        "--range",
        "0:100",
        "--seed",
        "42",
        "--out",
    ];
    let made = run(home.path(), &[&args[..], &[out.to_str().expect("path")]].concat());
    assert!(made.status.success(), "{}", stderr(&made));
    let bundled = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/admissions.csv"))
        .expect("the bundled data");
    assert!(
        std::fs::read(&out).expect("the made file") == bundled,
        "synth no longer makes assets/admissions.csv"
    );
}

/// The step cache reuses a step only for the same inputs and parameters: an edited CSV makes
/// every step run again; changed cleaning options rerun preprocess and what follows, not ingest.
#[test]
fn an_edited_csv_or_new_cleaning_options_are_not_served_from_the_cache() {
    let home = tempfile::tempdir().expect("tempdir");
    let rows: String =
        (0..300).map(|i| format!("{},{}\n", i % 100, u8::from(i % 100 > 50))).collect();
    let csv = write(home.path(), "data.csv", &format!("score,admitted\n{rows}"));
    let data = csv.to_str().expect("utf8");
    let args = |missing: &'static str| vec!["run", "--json", "--data", data, "--missing", missing];
    let first = json(&run(home.path(), &args("error")));
    assert!(stage_names_and_cached(&first).iter().all(|(_, c)| !c));
    let same = json(&run(home.path(), &args("error")));
    assert!(
        stage_names_and_cached(&same).iter().all(|(_, c)| *c),
        "the same run again is all cached"
    );

    // One more row, with a missing score: nothing cached, and the run refuses it as asked.
    std::fs::write(&csv, format!("score,admitted\n{rows},1\n")).expect("edit");
    let refused = run(home.path(), &args("error"));
    assert!(
        !refused.status.success() && stderr(&refused).contains("missing"),
        "{}",
        stderr(&refused)
    );
    // Dropping it: ingest is the edited file's (cached from the refused run), the rest runs again.
    let dropped = json(&run(home.path(), &args("drop")));
    let cached: Vec<bool> = stage_names_and_cached(&dropped).into_iter().map(|(_, c)| c).collect();
    assert_eq!(
        cached,
        [true, false, false, false, false, false],
        "only ingest is reused: {cached:?}"
    );
    assert_eq!(dropped["data_summary"]["rows_in"], 301, "the edited file was read");
    // Imputing instead: ingest reused, preprocess and after run again.
    let imputed = json(&run(home.path(), &args("impute-median")));
    let cached: Vec<bool> = stage_names_and_cached(&imputed).into_iter().map(|(_, c)| c).collect();
    assert_eq!(&cached[..2], [true, false], "{cached:?}");
    let total = |r: &Value| {
        ["train", "validation", "test"]
            .iter()
            .map(|k| r["rows"][k].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(
        (total(&dropped), total(&imputed)),
        (300, 301),
        "the row with the missing score dropped, then imputed"
    );
}

/// Exit codes: 0 on success, 2 for a usage error (clap's), 1 for a run that fails.
#[test]
fn exit_codes_tell_success_usage_errors_and_failures_apart() {
    let home = tempfile::tempdir().expect("tempdir");
    assert_eq!(run(home.path(), &["runs"]).status.code(), Some(0));
    assert_eq!(run(home.path(), &["run", "--solver", "adam"]).status.code(), Some(2));
    assert_eq!(run(home.path(), &["run", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(run(home.path(), &["run", "--epochs", "0"]).status.code(), Some(1));
    assert_eq!(run(home.path(), &["predict", "80"]).status.code(), Some(1), "no model yet");
    assert_eq!(run(home.path(), &["run", "--data", "/no/such.csv"]).status.code(), Some(1));
    // The dashboard without a terminal (here stdin is /dev/null, stdout a pipe): said, not a panic.
    let no_terminal = run(home.path(), &[]);
    assert_eq!(no_terminal.status.code(), Some(1), "{}", stderr(&no_terminal));
    assert!(
        stderr(&no_terminal).contains("needs a terminal")
            && stderr(&no_terminal).contains("logitflow run"),
        "{}",
        stderr(&no_terminal)
    );
}

/// `export --run ID` exports that run, not the latest; `--log` writes files of its own.
#[test]
fn export_picks_the_run_asked_for_and_log_scale_keeps_the_linear_files() {
    let home = tempfile::tempdir().expect("tempdir");
    let first = json(&run(home.path(), &["run", "--json"]));
    let second = json(&run(home.path(), &["run", "--json", "--solver", "newton"]));
    let (first_id, second_id) =
        (first["run_id"].as_str().expect("id"), second["run_id"].as_str().expect("id"));
    let out_dir = home.path().join("exports");
    let out = out_dir.to_str().expect("utf8");
    let latest = run(home.path(), &["export", "--out", out]);
    assert!(
        stdout(&latest).lines().all(|p| p.contains(second_id)),
        "the latest run by default: {}",
        stdout(&latest)
    );
    let linear = run(home.path(), &["export", "--out", out, "--run", first_id]);
    let log = run(home.path(), &["export", "--out", out, "--run", first_id, "--log"]);
    assert!(linear.status.success() && log.status.success(), "{}{}", stderr(&linear), stderr(&log));
    let (linear, log) = (stdout(&linear), stdout(&log));
    assert!(linear.lines().chain(log.lines()).all(|p| p.contains(first_id)), "{linear}{log}");
    let log_plots: Vec<&str> = log.lines().filter(|p| p.contains("loss-log.")).collect();
    assert_eq!(log_plots.len(), 2, "a log PNG and SVG: {log}");
    assert!(linear.lines().all(|p| !p.contains("-log.")), "{linear}");
    let svg = std::fs::read_to_string(log_plots.iter().find(|p| p.ends_with(".svg")).expect("svg"))
        .expect("svg");
    assert!(svg.contains("log scale"), "the title says the scale");
    let missing = run(home.path(), &["export", "--out", out, "--run", "no-such-run"]);
    assert!(
        !missing.status.success() && stderr(&missing).contains("no-such-run"),
        "{}",
        stderr(&missing)
    );
}

/// Ctrl-C (SIGINT) during `run`: it stops, says so, exits non-zero and leaves no service.
#[test]
fn sigint_during_a_run_stops_it_and_leaves_no_service() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut command = common::logitflow(home.path());
    command.args([
        "run",
        "--solver",
        "batch",
        "--lr",
        "0.0001",
        "--epochs",
        "1000000",
        "--patience",
        "0",
        "--tolerance",
        "0",
    ]);
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("run starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while common::service_pid(home.path(), "train").is_none() {
        assert!(std::time::Instant::now() < deadline, "train never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let out = common::finish_within(child, Duration::from_secs(20));
    assert!(!out.status.success(), "an interrupted run does not succeed");
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert_no_services(home.path(), Duration::from_secs(3));
}

/// `logitflow score` writes the file again with the served model's probability on every row —
/// the same number `predict` gives — and a file it cannot score leaves no output behind.
#[test]
fn score_writes_the_rows_again_with_the_served_probability_or_nothing() {
    let home = tempfile::tempdir().expect("tempdir");
    let trained = run(home.path(), &["run", "--json"]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    let scored = home.path().join("scored.csv");
    let bundled = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/admissions.csv");
    let out = run(home.path(), &["score", bundled, "--out", scored.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("scored 2000 rows") && stderr(&out).contains("admissions v1"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&scored).expect("the scored file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "score,admitted,probability");
    assert_eq!(lines.len(), 2001, "every row, once");
    let source = std::fs::read_to_string(bundled).expect("the bundled data");
    for (i, (line, original)) in lines.iter().zip(source.lines()).enumerate().skip(1).step_by(397) {
        let (row, probability) = line.rsplit_once(',').expect("a probability column");
        assert_eq!(row, original, "row {i} passes through unchanged");
        let score = row.split(',').next().expect("a score");
        let predicted: Value =
            serde_json::from_str(&stdout(&run(home.path(), &["predict", score, "--json"])))
                .expect("json");
        assert_eq!(
            probability.parse::<f64>().ok(),
            predicted["probability"].as_f64(),
            "row {i}: score {score}"
        );
    }
    // A file without the model's feature: refused, naming it, and nothing written.
    let bad = write(home.path(), "ages.csv", "age,admitted\n30,1\n");
    let refused_out = home.path().join("refused.csv");
    let refused = run(
        home.path(),
        &["score", bad.to_str().expect("utf8"), "--out", refused_out.to_str().expect("utf8")],
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("\"score\""),
        "names the missing column: {}",
        stderr(&refused)
    );
    let left: Vec<String> = std::fs::read_dir(home.path())
        .expect("home")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!left.iter().any(|n| n.contains("refused")), "no output, whole or partial: {left:?}");
    assert_no_services(home.path(), Duration::from_secs(2));
}

#[test]
fn compare_lists_two_runs_differences_and_plots_both_loss_curves() {
    let home = tempfile::tempdir().expect("tempdir");
    let first = json(&run(home.path(), &["run", "--json", "--solver", "newton"]));
    let second = json(&run(home.path(), &["run", "--json", "--solver", "sgd", "--l2", "0.01"]));
    let (a, b) = (first["run_id"].as_str().expect("id"), second["run_id"].as_str().expect("id"));
    let out_dir = home.path().join("compared");
    let out = run(home.path(), &["compare", a, b, "--out", out_dir.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = |name: &str| {
        text.lines()
            .find(|l| l[2..].starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line: {text}"))
            .to_string()
    };
    assert!(
        line("solver").starts_with('*')
            && line("solver").contains("newton")
            && line("solver").contains("sgd"),
        "{text}"
    );
    assert!(line("l2").starts_with('*') && line("l2").ends_with("+0.0100"), "{text}");
    assert!(line("test rows").starts_with(' '), "the same test rows: {text}");
    let expected_loss = second["metrics"]["log_loss"].as_f64().expect("loss")
        - first["metrics"]["log_loss"].as_f64().expect("loss");
    assert!(line("log loss").ends_with(&format!("{expected_loss:+.4}")), "{text}");
    let files: Vec<&str> =
        text.lines().filter(|l| l.starts_with(out_dir.to_str().expect("utf8"))).collect();
    let stem = format!("{}/{a}-vs-{b}-loss", out_dir.display());
    assert_eq!(
        files,
        [format!("{stem}.csv"), format!("{stem}.png"), format!("{stem}.svg")],
        "{text}"
    );
    let csv = std::fs::read_to_string(format!("{stem}.csv")).expect("csv");
    let curve = |r: &Value| r["loss_curve"].as_array().map_or(0, Vec::len);
    assert_eq!(
        csv.lines().count(),
        1 + curve(&first).max(curve(&second)),
        "a row per epoch of the longer run"
    );
    let png = std::fs::read(format!("{stem}.png")).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // A prefix names a run; a name of none is refused, saying where to look.
    let out = run(home.path(), &["compare", &a[..a.len() - 2], b]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(home.path(), &["compare", "no-such-run", b]);
    assert!(!out.status.success() && stderr(&out).contains("logitflow runs"), "{}", stderr(&out));
}

/// `logitflow gc` removes what nothing reaches and keeps what the registry does: a run that
/// failed after ingest leaves its dataset behind, and with no step kept (`--keep-days 0`) the
/// first run's training curve (an artifact only its train step names) goes too. The dry run
/// lists both with their sizes; the collection removes them and the step records that named
/// them; the served model is as it was, and the next run finds its data steps cached.
#[test]
fn gc_removes_a_failed_runs_dataset_and_keeps_what_the_registry_reaches() {
    let home = tempfile::tempdir().expect("tempdir");
    let first = json(&run(home.path(), &["run", "--json"]));
    assert_eq!(first["model"]["version"], 1);
    let gaps = write(home.path(), "gaps.csv", "x,y\n1,0\n2,1\nNA,0\n4,1\n");
    let failed = run(home.path(), &["run", "--data", gaps.to_str().expect("utf8"), "--label", "y"]);
    assert!(!failed.status.success() && stderr(&failed).contains("missing"), "{}", stderr(&failed));
    let artifacts =
        || std::fs::read_dir(home.path().join("artifacts")).map(Iterator::count).unwrap_or(0);
    let before = artifacts();

    let now = ["gc", "--keep-days", "0", "--grace-hours", "0"];
    let dry = run(home.path(), &[&now[..], &["--dry-run"]].concat());
    assert!(dry.status.success(), "{}", stderr(&dry));
    let said = stdout(&dry);
    let mut kinds: Vec<&str> = said
        .lines()
        .filter(|l| !l.starts_with("would"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["dataset", "report"], "the failed run's dataset, the curve: {said}");
    assert!(
        said.contains("would remove 2 artifact(s)") && said.contains("2 cached step(s)"),
        "{said}"
    );
    assert_eq!(artifacts(), before, "a dry run removes nothing");
    let done = run(home.path(), &now);
    assert!(
        stdout(&done).contains("removed 2 artifact(s)")
            && stdout(&done).contains(&format!("kept {}", before - 2)),
        "{}",
        stdout(&done)
    );
    assert_eq!(artifacts(), before - 2);

    let predict = run(home.path(), &["predict", "80"]);
    assert!(
        predict.status.success() && stdout(&predict).contains("admissions v1"),
        "{}",
        stderr(&predict)
    );
    let again = json(&run(home.path(), &["run", "--json"]));
    let cached: Vec<bool> = again["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["cached"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(
        &cached[..3],
        [true; 3],
        "the first run's data steps are still cached: {}",
        again["stages"]
    );
    let after = run(home.path(), &["gc", "--dry-run"]);
    assert!(stdout(&after).contains("would remove 0 artifact(s)"), "{}", stdout(&after));
    assert_no_services(home.path(), Duration::from_secs(2));
}

/// The product's command line holds the product alone: the benchmarks are `logitflow-bench`'s,
/// and `bench` is no command here.
#[test]
fn help_lists_the_products_commands_and_no_benchmark() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = run(home.path(), &["--help"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let help = stdout(&out);
    for command in
        ["run", "predict", "score", "runs", "gc", "export", "compare", "service", "synth"]
    {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "no {command} in:\n{help}"
        );
    }
    assert!(!help.to_lowercase().contains("bench"), "{help}");
    let out = run(home.path(), &["bench", "serve"]);
    assert!(
        !out.status.success() && stderr(&out).contains("unrecognized subcommand 'bench'"),
        "{}",
        stderr(&out)
    );
}
