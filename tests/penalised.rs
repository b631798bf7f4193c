//! Penalties that select terms, through the real binary and services, on scikit-learn's breast
//! cancer data (569 × 30, separated by a combination of terms when unpenalised): L1 and elastic
//! net against glum's optimum, `--cv 10` against R's cv.glmnet with the same folds, and the
//! parameters refused with what is wrong. The reference numbers are in
//! `tests/fixtures/penalised.json`, made by `tests/fixtures/make_penalised.py`.

mod common;

use common::{fixture, json, run, stderr};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixture("penalised.json")).expect("penalised.json"),
    )
    .expect("parses")
}

/// The breast cancer file's features (row-major, 30 a row) and its 0/1 label (malignant = 1).
fn breast_cancer() -> (Vec<f64>, Vec<f64>) {
    let text = std::fs::read_to_string(fixture("breast_cancer.csv")).expect("breast_cancer.csv");
    let mut x = Vec::new();
    let mut y = Vec::new();
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        x.extend(cells[1..31].iter().map(|c| c.parse::<f64>().expect("a number")));
        y.push(f64::from(cells[31] == "malignant"));
    }
    (x, y)
}

/// glmnet's objective at coefficients in the data's units: the mean log loss plus
/// λ·(α‖β‖₁ + (1−α)/2·‖β‖²) on the standardised scale (β times the population deviation).
fn objective(intercept: f64, coefficients: &[f64], lambda: f64, alpha: f64) -> f64 {
    let (x, y) = breast_cancer();
    let (n, d) = (y.len(), coefficients.len());
    let mean_log_loss = (0..n)
        .map(|i| {
            let z = intercept + (0..d).map(|j| x[i * d + j] * coefficients[j]).sum::<f64>();
            z.max(0.0) + (-z.abs()).exp().ln_1p() - y[i] * z
        })
        .sum::<f64>()
        / n as f64;
    let scaled: Vec<f64> = (0..d)
        .map(|j| {
            let mean = (0..n).map(|i| x[i * d + j]).sum::<f64>() / n as f64;
            let deviation =
                ((0..n).map(|i| (x[i * d + j] - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
            coefficients[j] * deviation
        })
        .collect();
    let l1: f64 = scaled.iter().map(|b| b.abs()).sum();
    let l2: f64 = scaled.iter().map(|b| b * b).sum();
    mean_log_loss + lambda * (alpha * l1 + (1.0 - alpha) / 2.0 * l2)
}

fn whole_file_args<'a>(data: &'a str, penalty: &[&'a str]) -> Vec<&'a str> {
    [&["run", "--data", data, "--test-data", data, "--label", "diagnosis", "--json"][..], penalty]
        .concat()
}

#[test]
fn lasso_and_elastic_net_reach_glums_optimum_with_the_same_zeros() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = fixture("breast_cancer.csv");
    let data = data.to_str().expect("utf8");
    let reference = reference();
    let terms: Vec<&str> =
        reference["terms"].as_array().expect("terms").iter().filter_map(Value::as_str).collect();
    for case in reference["glum"].as_array().expect("glum") {
        let (alpha, lambda) = (
            case["alpha"].as_f64().unwrap_or(f64::NAN),
            case["lambda"].as_f64().unwrap_or(f64::NAN),
        );
        let (alpha_text, lambda_text) = (alpha.to_string(), lambda.to_string());
        let penalty: Vec<&str> = if alpha == 1.0 {
            vec!["--penalty", "l1", "--lambda", &lambda_text]
        } else {
            vec!["--penalty", "elasticnet", "--l1-ratio", &alpha_text, "--lambda", &lambda_text]
        };
        let report = json(&run(home.path(), &whole_file_args(data, &penalty)));
        let model = &report["model"];
        assert_eq!(
            report["stop_reason"], "converged",
            "a penalty gives finite estimates: no separation ({model})"
        );
        assert!(model["separation"].is_null(), "{model}");
        assert_eq!(model["solver_choice"]["solver"], "cd", "{model}");
        let coefficients: Vec<f64> =
            terms.iter().map(|t| model["coefficients"][t].as_f64().unwrap_or(f64::NAN)).collect();
        let intercept = model["intercept"].as_f64().unwrap_or(f64::NAN);
        let ours = objective(intercept, &coefficients, lambda, alpha);
        let glum = case["objective"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (ours - glum).abs() <= 1e-8 * glum,
            "α {alpha}, λ {lambda}: objective {ours} vs glum's {glum}"
        );
        let zeros: Vec<&str> =
            terms.iter().zip(&coefficients).filter(|(_, c)| **c == 0.0).map(|(t, _)| *t).collect();
        let glum_zeros: Vec<&str> = case["zero_terms"]
            .as_array()
            .expect("zero_terms")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(zeros, glum_zeros, "α {alpha}, λ {lambda}: exactly zero where glum's are");
        let nonzero: Vec<&str> = model["path"]["nonzero_terms"]
            .as_array()
            .expect("path")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            nonzero.len() + zeros.len(),
            terms.len(),
            "the report names the terms kept: {nonzero:?}"
        );
        assert!(
            model["statistics_note"].as_str().is_some_and(|n| n.contains("penalty")),
            "{model}"
        );
        assert!(model["terms"][1]["std_error"].is_null(), "no standard errors for a penalised fit");
    }
}

#[test]
fn cross_validation_matches_cv_glmnet_with_the_same_folds() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = fixture("breast_cancer.csv");
    let data = data.to_str().expect("utf8");
    let reference = reference();
    for case in reference["cv_glmnet"].as_array().expect("cv_glmnet") {
        let alpha = case["alpha"].as_f64().unwrap_or(f64::NAN);
        let mut penalty = vec!["--cv", "10", "--seed", "42", "--penalty"];
        penalty.extend(if alpha == 1.0 {
            &["l1"][..]
        } else {
            &["elasticnet", "--l1-ratio", "0.5"][..]
        });
        let report = json(&run(home.path(), &whole_file_args(data, &penalty)));
        let cv = &report["model"]["cv"];
        assert_eq!(
            cv["fold_of_row"], reference["fold_of_row"],
            "the folds --seed 42 draws (regenerate the fixture if they change)"
        );
        let numbers = |v: &Value, key: &str| -> Vec<f64> {
            v[key].as_array().expect(key).iter().filter_map(Value::as_f64).collect()
        };
        let (lambdas, want_lambdas) = (numbers(cv, "lambdas"), numbers(case, "lambdas"));
        assert_eq!(
            lambdas.len(),
            want_lambdas.len(),
            "α {alpha}: the path's length, glmnet's stopping rule included"
        );
        for (got, want) in lambdas.iter().zip(&want_lambdas) {
            assert!((got - want).abs() <= 1e-12 * want, "α {alpha}: λ {got} vs glmnet's {want}");
        }
        for key in ["mean_deviance", "std_error"] {
            for (m, (got, want)) in numbers(cv, key).iter().zip(numbers(case, key)).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-3 * want,
                    "α {alpha}, λ #{m}: {key} {got} vs cv.glmnet's {want}"
                );
            }
        }
        for key in ["lambda_min", "lambda_1se"] {
            let (got, want) =
                (cv[key].as_f64().unwrap_or(f64::NAN), case[key].as_f64().unwrap_or(f64::NAN));
            assert!(
                (got - want).abs() <= 1e-12 * want,
                "α {alpha}: {key} {got} vs cv.glmnet's {want}"
            );
        }
        let path = &report["model"]["path"];
        assert_eq!(
            path["lambda"], cv["lambda_1se"],
            "1se is the default choice, refitted on every training row"
        );
        assert_eq!(
            path["coefficients"].as_array().map(Vec::len),
            Some(lambdas.len()),
            "the path's coefficients, one row per λ"
        );
    }
}

#[test]
fn penalty_parameters_out_of_range_are_refused_naming_them() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = fixture("breast_cancer.csv");
    let data = data.to_str().expect("utf8");
    let refused = |args: &[&str], says: &str| {
        let out = run(
            home.path(),
            &[&["run", "--data", data, "--label", "diagnosis"][..], args].concat(),
        );
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    };
    refused(
        &["--penalty", "elasticnet", "--l1-ratio", "1.5", "--lambda", "0.1"],
        "l1_ratio (α) must be between 0 and 1, got 1.5",
    );
    refused(
        &["--penalty", "l1", "--lambda", "-0.1"],
        "lambda (λ) must be a finite number of 0 or more, got -0.1",
    );
    refused(&["--penalty", "l1", "--cv", "1"], "cv needs 2 folds or more, got 1");
    refused(&["--penalty", "l1"], "penalty l1 needs a strength");
    refused(&["--penalty", "l1", "--cv", "5", "--lambda", "0.1"], "cross-validation chooses λ");
    refused(
        &["--penalty", "l1", "--lambda", "0.1", "--solver", "newton"],
        "solver newton cannot fit an L1 penalty",
    );
    // 569 rows, 80% of them training: 170 malignant ones, too few for 200 folds.
    refused(
        &["--penalty", "l1", "--cv", "200"],
        "cv 200 needs 200 rows or more of each class; the training rows hold 170 of class 1",
    );
}
