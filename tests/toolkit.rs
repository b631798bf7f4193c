//! The statistician's toolkit through the real binary and services: frequency weights
//! (`--weights`), an offset (`--offset`, then a required input of the served model),
//! cluster-robust standard errors (`--cov cluster:COL`) and folds given as a column
//! (`--folds`), against statsmodels' GLM and Logit and R's cv.glmnet. The reference numbers are
//! in `tests/fixtures/toolkit.json` (made by `tests/fixtures/make_toolkit.py`, which also wrote
//! `spector_toolkit.csv`: Spector and Mazzeo's data with a weight column `w` and an offset `o`)
//! and `penalised.json`.

mod common;

use common::{fixture, json, run, stderr, stdout, write};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("toolkit.json")).expect("toolkit.json"))
        .expect("parses")
}

fn number(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// `run` on `data`, trained and tested on the whole file, with `more` arguments: its `--json`.
fn fit(home: &std::path::Path, data: &str, label: &str, more: &[&str]) -> Value {
    let args =
        [&["run", "--data", data, "--test-data", data, "--label", label, "--json"][..], more]
            .concat();
    let out = run(home, &args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    json(&out)
}

/// Each term's estimate and standard error as `run --json` reports them.
fn table(report: &Value) -> Vec<(String, f64, f64)> {
    let terms = report["model"]["terms"].as_array().expect("model.terms");
    terms
        .iter()
        .map(|t| {
            (
                t["term"].as_str().expect("term").to_string(),
                number(t, "estimate"),
                number(t, "std_error"),
            )
        })
        .collect()
}

/// Every term of `report` within `within` (relatively) of statsmodels' estimate and standard
/// error in `want`, and no term missing.
fn assert_table_matches(report: &Value, want: &Value, within: f64, what: &str) {
    let got = table(report);
    assert_eq!(got.len(), want.as_object().expect("terms").len(), "{what}: {got:?}");
    for (term, estimate, se) in got {
        let expected = &want[&term];
        assert!(
            relative(estimate, number(expected, "estimate")) <= within,
            "{what}, {term}: {estimate} vs {}",
            expected["estimate"]
        );
        assert!(
            relative(se, number(expected, "std_error")) <= within,
            "{what}, {term}: standard error {se} vs {}",
            expected["std_error"]
        );
    }
}

/// Spector's file with each row written `w` times and no weight column: what a weighted fit
/// must equal.
fn repeated_rows(dir: &std::path::Path) -> std::path::PathBuf {
    let text =
        std::fs::read_to_string(fixture("spector_toolkit.csv")).expect("spector_toolkit.csv");
    let mut lines = text.lines();
    let mut out = String::from("GPA,TUCE,PSI,GRADE\n");
    assert_eq!(lines.next(), Some("GPA,TUCE,PSI,GRADE,w,o"));
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let times: usize = cells[4].parse().expect("an integer weight");
        out.push_str(&format!("{}\n", cells[..4].join(",")).repeat(times));
    }
    write(dir, "repeated.csv", &out)
}

#[test]
fn frequency_weights_fit_the_rows_repeated_and_statsmodels_glm() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = fixture("spector_toolkit.csv");
    let data = data.to_str().expect("utf8");
    let features = ["--features", "GPA,TUCE,PSI"];
    let weighted = fit(home.path(), data, "GRADE", &[&features[..], &["--weights", "w"]].concat());
    let repeated = repeated_rows(home.path());
    let repeated = fit(home.path(), repeated.to_str().expect("utf8"), "GRADE", &features);
    // The file's 32 rows hold 8 of weight 0; the others' weights sum to 51.
    assert_eq!(weighted["rows"]["train"], 24, "rows of weight 0 are left out");
    assert_eq!(repeated["rows"]["train"], 51);
    for ((term, estimate, se), (_, want_estimate, want_se)) in
        table(&weighted).into_iter().zip(table(&repeated))
    {
        assert!(
            relative(estimate, want_estimate) <= 1e-10,
            "{term}: {estimate} vs the repeated rows' {want_estimate}"
        );
        assert!(
            relative(se, want_se) <= 1e-8,
            "{term}: standard error {se} vs the repeated rows' {want_se}"
        );
    }
    // The estimates per standard deviation of their terms too: the deviation is the repeated rows'.
    let per_sd = |report: &Value| -> Vec<f64> {
        report["model"]["terms"]
            .as_array()
            .expect("terms")
            .iter()
            .skip(1)
            .map(|t| number(t, "standardized"))
            .collect()
    };
    for (got, want) in per_sd(&weighted).iter().zip(per_sd(&repeated)) {
        assert!(relative(*got, want) <= 1e-10, "per sd: {got} vs the repeated rows' {want}");
    }
    let want = &reference()["weights"];
    assert_table_matches(&weighted, &want["terms"], 1e-8, "weights against GLM(freq_weights=w)");
    let (got, want) = (&weighted["model"]["fit_statistics"], &want["fit_statistics"]);
    for figure in ["log_likelihood", "log_likelihood_null", "aic", "bic"] {
        assert!(
            relative(number(got, figure), number(want, figure)) <= 1e-8,
            "{figure}: {} vs {}",
            got[figure],
            want[figure]
        );
    }
    assert_eq!(number(got, "n"), 51.0, "n is the weights' sum");
    assert_eq!(number(got, "df_residual"), 47.0);
    assert_eq!(weighted["model"]["row_roles"]["dropped_rows"], 8);
    let args = [
        "run",
        "--data",
        data,
        "--test-data",
        data,
        "--label",
        "GRADE",
        "--features",
        "GPA,TUCE,PSI",
        "--weights",
        "w",
    ];
    let printed = stdout(&run(home.path(), &args));
    assert!(
        printed.contains("weights: w, Σ 51 over 24 rows (8 of weight 0 left out)"),
        "{printed}"
    );
}

#[test]
fn an_offset_fits_as_glm_and_is_a_required_input_of_the_served_model() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = fixture("spector_toolkit.csv");
    let data = data.to_str().expect("utf8");
    let report = fit(
        home.path(),
        data,
        "GRADE",
        &["--features", "GPA,TUCE,PSI", "--offset", "o", "--model", "offset"],
    );
    let want = &reference()["offset"];
    assert_table_matches(&report, &want["terms"], 1e-8, "offset against GLM(offset=o)");
    let (got, want_figures) = (&report["model"]["fit_statistics"], &want["fit_statistics"]);
    for figure in ["log_likelihood", "log_likelihood_null", "aic", "bic"] {
        let (value, expected) = (number(got, figure), number(want_figures, figure));
        assert!(
            relative(value, expected) <= 1e-8,
            "{figure}: {value} vs {expected} (the null model keeps the offset)"
        );
    }
    // Served: the offset is an input by name, and a request without it is refused naming it.
    let row = &want["predict"]["row"];
    let features: Vec<String> =
        ["GPA", "TUCE", "PSI", "o"].iter().map(|f| format!("{f}={}", row[*f])).collect();
    let mut args = vec!["predict", "--model", "offset", "--json"];
    for feature in &features {
        args.extend(["--feature", feature.as_str()]);
    }
    let answer = run(home.path(), &args);
    assert!(answer.status.success(), "{}", stderr(&answer));
    let probability = number(&json(&answer), "probability");
    let expected = number(&want["predict"], "probability");
    assert!(
        (probability - expected).abs() <= 1e-9,
        "served {probability} vs statsmodels' predict(offset=…) {expected}"
    );
    let without = run(home.path(), &args[..args.len() - 2]);
    assert!(!without.status.success());
    let message = stderr(&without);
    assert!(
        message.contains("features is missing the offset \"o\"") && message.contains("HTTP 422"),
        "{message}"
    );
    // batch: the offset is a column of the file scored, each row's added to its logit.
    let scored = run(home.path(), &["score", data, "--model", "offset", "-o", "-"]);
    assert!(scored.status.success(), "{}", stderr(&scored));
    let estimates: Vec<f64> = table(&report).iter().map(|(_, estimate, _)| *estimate).collect();
    for line in stdout(&scored).lines().skip(1) {
        let cells: Vec<f64> = line.split(',').map(|c| c.parse().expect("a number")).collect();
        let z = estimates[0] + (0..3).map(|j| estimates[j + 1] * cells[j]).sum::<f64>() + cells[5];
        let p = 1.0 / (1.0 + (-z).exp());
        assert!(
            (cells[6] - p).abs() <= 1e-12,
            "{line}: {p} from the estimates and the row's offset"
        );
    }
    let no_offset = write(home.path(), "no_offset.csv", "GPA,TUCE,PSI\n3.1,24,1\n");
    let refused = run(
        home.path(),
        &["score", no_offset.to_str().expect("utf8"), "--model", "offset", "-o", "-"],
    );
    assert!(
        !refused.status.success() && stderr(&refused).contains("the header has no column \"o\""),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn cluster_robust_standard_errors_match_statsmodels() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = fixture("penguins.csv");
    let data = data.to_str().expect("utf8");
    let report = fit(home.path(), data, "sex", &["--missing", "drop", "--cov", "cluster:island"]);
    let want = &reference()["cluster"];
    assert_eq!(report["model"]["covariance"], "cluster");
    assert_eq!(report["model"]["row_roles"]["clusters"], want["clusters"]);
    assert_eq!(report["rows"]["train"], want["rows"]);
    // statsmodels stops on its estimates' change, which rounding keeps above its 1e-12 on this
    // ill-conditioned design: its estimates are the optimum to about 1e-9.
    assert_table_matches(
        &report,
        &want["terms"],
        1e-7,
        "cluster:island against Logit(cov_type=\"cluster\")",
    );
}

/// `--folds COL` with `--cv K`: the folds the file gives, whatever values name them. The same
/// folds as `penalised.json`'s (named in reverse order here) give cv.glmnet's curve.
#[test]
fn folds_given_as_a_column_give_cv_glmnets_curve() {
    let home = tempfile::tempdir().expect("tempdir");
    let penalised: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("penalised.json")).expect("penalised.json"),
    )
    .expect("parses");
    let folds: Vec<u64> = penalised["fold_of_row"]
        .as_array()
        .expect("fold_of_row")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    let text = std::fs::read_to_string(fixture("breast_cancer.csv")).expect("breast_cancer.csv");
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let fold = if i == 0 { "fold".to_string() } else { format!("k{:02}", 11 - folds[i - 1]) };
        out.push_str(&format!("{line},{fold}\n"));
    }
    let data = write(home.path(), "folds.csv", &out);
    let report = fit(
        home.path(),
        data.to_str().expect("utf8"),
        "diagnosis",
        &["--penalty", "l1", "--cv", "10", "--folds", "fold"],
    );
    let cv = &report["model"]["cv"];
    let fold_of_row: Vec<u64> = cv["fold_of_row"]
        .as_array()
        .expect("fold_of_row")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(
        fold_of_row,
        folds.iter().map(|f| 11 - f).collect::<Vec<_>>(),
        "k01 … k10 are folds 1 … 10"
    );
    let case = &penalised["cv_glmnet"]
        .as_array()
        .expect("cv_glmnet")
        .iter()
        .find(|c| c["alpha"] == 1.0)
        .expect("the lasso's");
    let numbers = |v: &Value, key: &str| -> Vec<f64> {
        v[key].as_array().expect(key).iter().filter_map(Value::as_f64).collect()
    };
    for (m, (got, want)) in
        numbers(cv, "mean_deviance").iter().zip(numbers(case, "mean_deviance")).enumerate()
    {
        assert!(
            (got - want).abs() <= 1e-3 * want,
            "λ #{m}: mean deviance {got} vs cv.glmnet's {want}"
        );
    }
    assert!(
        relative(number(cv, "lambda_1se"), number(case, "lambda_1se")) <= 1e-12,
        "λ_1se {} vs {}",
        cv["lambda_1se"],
        case["lambda_1se"]
    );
    assert_eq!(
        report["model"]["terms"].as_array().map(Vec::len),
        Some(31),
        "the fold column is not a feature"
    );
}

#[test]
fn bad_row_columns_are_named() {
    let home = tempfile::tempdir().expect("tempdir");
    let csv = "x,y,w,o,g,one\n1,0,1,0.1,a,c\n2,1,2,0.2,b,c\n3,0,1,0.3,a,c\n4,1,1,0.1,b,c\n5,1,3,0.2,a,c\n0,0,1,0.1,b,c\n";
    let good = write(home.path(), "good.csv", csv);
    let bad_values = [
        ("negative.csv", csv.replace("2,1,2,", "2,1,-2,"), "line 3: the weight -2 is negative"),
        ("missing.csv", csv.replace("2,1,2,", "2,1,,"), "line 3: the weight is missing"),
        (
            "stray.csv",
            csv.replace(",0.2,b,", ",high,b,"),
            "line 3, column \"o\": \"high\" is not a number",
        ),
        (
            "text.csv",
            csv.replace(",0.1,", ",low,").replace(",0.2,", ",high,").replace(",0.3,", ",mid,"),
            "column \"o\": the offset column must hold numbers",
        ),
    ];
    let refused = |data: &std::path::Path, more: &[&str], expected: &str| {
        let args =
            [&["run", "--data", data.to_str().expect("utf8"), "--label", "y"][..], more].concat();
        let out = run(home.path(), &args);
        assert!(!out.status.success(), "{args:?} was not refused");
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    };
    for (name, text, expected) in &bad_values {
        let data = write(home.path(), name, text);
        refused(&data, &["--features", "x", "--weights", "w", "--offset", "o"], expected);
    }
    refused(
        &good,
        &["--features", "x,w", "--weights", "w"],
        "--weights w names a feature; a weight column is not a feature",
    );
    refused(
        &good,
        &["--features", "x,g", "--cov", "cluster:g"],
        "a cluster column is not a feature",
    );
    refused(
        &good,
        &["--features", "x", "--cov", "cluster:one"],
        "the cluster column holds one cluster",
    );
    refused(&good, &["--features", "x", "--weights", "y"], "a weight column cannot be the label");
    refused(
        &good,
        &["--features", "x", "--weights", "w", "--offset", "w"],
        "--weights and --offset name the same column",
    );
    refused(&good, &["--features", "x", "--weights", "nope"], "unknown column \"nope\"");
}
