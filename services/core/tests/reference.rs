//! The exact fit and its statistics against statsmodels, on real datasets exported from the
//! packages that ship them (`tests/fixtures/make_reference.py` made the numbers).

use logitflow_core::clean::{CleanOptions, MissingPolicy, clean};
use logitflow_core::inference::{
    certain_rows, separated_by_combination, separating_term, statistics,
};
use logitflow_core::logistic::{Covariance, Examples, Solver, StopReason, TrainParams, fit};
use logitflow_core::model::{Lineage, Model};
use logitflow_core::scale::{Scaling, Transform, Value};
use logitflow_core::table::{CsvOptions, RawTable};
use std::sync::atomic::AtomicBool;

fn fixture(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&fixture("reference.json")).expect("reference.json parses")
}

/// Reads, cleans, encodes, scales and fits with newton on every row, as `run --solver newton
/// --l2 0` does with `--test-data` the same file.
fn exact_fit(csv: &str, options: &CsvOptions) -> (Model, Vec<f64>) {
    let raw = RawTable::from_csv(csv.as_bytes(), options).expect("reads");
    let (data, _) =
        clean(&raw, &CleanOptions { missing: MissingPolicy::Drop, ..CleanOptions::default() })
            .expect("cleans");
    let transform = Transform::fit(&data, Scaling::Standard);
    let k = transform.terms();
    let mut x = transform.terms_of(&data).expect("encodes");
    transform.scale_in_place(&mut x);
    let params =
        TrainParams { solver: Solver::Newton, epochs: 100, l2: 0.0, ..TrainParams::default() };
    let ex = Examples::new(&x, &data.y, k);
    let out = fit(ex, None, &params, &AtomicBool::new(false), |_| {}).expect("fits");
    assert_eq!(out.stop_reason, StopReason::Converged);
    let mut model = Model::new(
        transform,
        out.weights.clone(),
        data.label_name.clone(),
        params,
        out.stop_reason,
        0,
        data.rows(),
        Lineage::default(),
    );
    // The fit hands over the Hessian of its last pass: the very one a pass of its own makes.
    let handed = out.hessian_sum.as_deref().expect("newton hands over its last pass's Hessian");
    assert_eq!(handed, logitflow_core::logistic::hessian_sum(&out.weights, ex), "bit for bit");
    model.fit.terms = statistics(
        &out.weights,
        ex,
        Some(handed),
        Covariance::Nonrobust,
        None,
        &model.transform,
        (model.intercept, &model.coefficients),
    )
    .expect("the Hessian inverts");
    (model, data.y)
}

fn assert_matches_statsmodels(model: &Model, expected: &serde_json::Value) {
    let expected = expected.as_array().expect("terms");
    assert_eq!(model.fit.terms.len(), expected.len());
    for (got, want) in model.fit.terms.iter().zip(expected) {
        let field = |name: &str| want[name].as_f64().unwrap_or(f64::NAN);
        assert_eq!(got.term, want["term"].as_str().unwrap_or(""), "terms in statsmodels' order");
        let relative = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-12);
        assert!(
            relative(got.estimate, field("estimate")) < 1e-9,
            "{}: estimate {} vs {}",
            got.term,
            got.estimate,
            field("estimate")
        );
        let se = got.std_error.expect("a standard error");
        assert!(
            relative(se, field("std_error")) < 1e-8,
            "{}: std error {se} vs {}",
            got.term,
            field("std_error")
        );
        let z = got.z.expect("z");
        assert!(relative(z, field("z")) < 1e-8, "{}: z {z} vs {}", got.term, field("z"));
        let p = got.p_value.expect("p");
        assert!(
            (p - field("p_value")).abs() <= 1e-8 * field("p_value"),
            "{}: p {p} vs {}",
            got.term,
            field("p_value")
        );
        let (lo, hi) = (got.ci_low.expect("low"), got.ci_high.expect("high"));
        assert!(
            (lo - field("ci_low")).abs() < 1e-8 * (1.0 + field("ci_low").abs()),
            "{}: low {lo} vs {}",
            got.term,
            field("ci_low")
        );
        assert!(
            (hi - field("ci_high")).abs() < 1e-8 * (1.0 + field("ci_high").abs()),
            "{}: high {hi} vs {}",
            got.term,
            field("ci_high")
        );
        assert!(relative(got.odds_ratio.expect("finite"), got.estimate.exp()) < 1e-12);
    }
}

#[test]
fn spector_matches_statsmodels_logit() {
    let (model, _) = exact_fit(
        &fixture("spector.csv"),
        &CsvOptions { label: Some("GRADE".into()), ..CsvOptions::default() },
    );
    assert_matches_statsmodels(&model, &reference()["spector"]["terms"]);
}

#[test]
fn penguins_with_text_columns_text_label_and_na_cells_match_statsmodels() {
    let options = CsvOptions {
        label: Some("sex".into()),
        features: Some(
            [
                "species",
                "island",
                "bill_length_mm",
                "bill_depth_mm",
                "flipper_length_mm",
                "body_mass_g",
                "year",
            ]
            .map(String::from)
            .to_vec(),
        ),
        ..CsvOptions::default()
    };
    let (model, y) = exact_fit(&fixture("penguins.csv"), &options);
    let reference = reference();
    assert_eq!(
        y.len() as u64,
        reference["penguins"]["rows_used"].as_u64().unwrap_or(0),
        "rows with an NA cell are dropped"
    );
    assert_matches_statsmodels(&model, &reference["penguins"]["terms"]);
    // A prediction with text values, as statsmodels' `predict` gives it.
    let row = &reference["penguins"]["predict"]["row"];
    let values: Vec<Value> = model
        .feature_names
        .iter()
        .map(|f| match &row[f] {
            serde_json::Value::String(t) => Value::Text(t.clone()),
            v => Value::Number(v.as_f64().unwrap_or(f64::NAN)),
        })
        .collect();
    let mut terms = Vec::new();
    model.encode_row(&values, &mut terms).expect("encodes");
    let expected = reference["penguins"]["predict"]["probability"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (model.probability_raw(&terms) - expected).abs() < 1e-10,
        "{} vs {expected}",
        model.probability_raw(&terms)
    );
}

#[test]
fn breast_cancer_is_separated_by_a_combination_of_its_30_features() {
    let csv = fixture("breast_cancer.csv");
    let raw = RawTable::from_csv(
        csv.as_bytes(),
        &CsvOptions { label: Some("diagnosis".into()), ..CsvOptions::default() },
    )
    .expect("reads");
    assert_eq!(raw.width(), 30, "pandas' unnamed index column is skipped");
    assert!(raw.notes.iter().any(|n| n.contains("index")), "{:?}", raw.notes);
    let (data, _) = clean(&raw, &CleanOptions::default()).expect("cleans");
    let transform = Transform::fit(&data, Scaling::Standard);
    let k = transform.terms();
    let mut x = transform.terms_of(&data).expect("encodes");
    assert_eq!(
        separating_term(&x, &data.y, k, transform.term_names(), ["benign", "malignant"]),
        None,
        "no single feature separates"
    );
    transform.scale_in_place(&mut x);
    let params = TrainParams { solver: Solver::Newton, epochs: 100, ..TrainParams::default() };
    let out = fit(Examples::new(&x, &data.y, k), None, &params, &AtomicBool::new(false), |_| {})
        .expect("fits");
    let logits: Vec<f64> = x.chunks_exact(k).map(|row| out.weights.logit(row)).collect();
    let certain = certain_rows(logits, &data.y);
    assert_eq!(
        out.certain_rows,
        Some(certain),
        "newton's last pass counts the rows the logits give"
    );
    let found = separated_by_combination(certain, data.y.len()).expect("separation is detected");
    assert!(found.contains("combination"), "{found}");
}

#[test]
fn a_single_term_that_separates_is_named() {
    let names = ["dose".to_string(), "group=b".to_string()];
    // dose: class 0 all ≤ 2, class 1 all ≥ 3; group=b: present in both classes.
    let design = [1.0, 0.0, 2.0, 1.0, 3.0, 1.0, 4.0, 0.0];
    let y = [0.0, 0.0, 1.0, 1.0];
    let found = separating_term(&design, &y, 2, &names, ["no", "yes"]).expect("dose separates");
    assert!(found.starts_with("dose separates the classes completely"), "{found}");
    // Every row with group=b is "yes": quasi-complete separation by that level.
    let design = [1.0, 0.0, 2.0, 0.0, 1.5, 1.0, 2.0, 1.0, 2.5, 0.0];
    let y = [0.0, 1.0, 1.0, 1.0, 0.0];
    let found = separating_term(&design, &y, 2, &names, ["no", "yes"]).expect("group=b separates");
    assert!(found.contains("every row with group=b is \"yes\""), "{found}");
}

#[test]
fn balanced_class_weights_match_scikit_learn() {
    use logitflow_core::logistic::ClassWeight;
    let csv = fixture("spector.csv");
    let raw = RawTable::from_csv(
        csv.as_bytes(),
        &CsvOptions { label: Some("GRADE".into()), ..CsvOptions::default() },
    )
    .expect("reads");
    let (data, _) = clean(&raw, &CleanOptions::default()).expect("cleans");
    let transform = Transform::fit(&data, Scaling::Standard);
    let x = transform.apply(&transform.terms_of(&data).expect("encodes"));
    let weights = ClassWeight::Balanced.weights(&data.y);
    // 21 of 32 rows are class 0: weights 32/42 and 32/22.
    assert!(
        (weights[0] - 32.0 / 42.0).abs() < 1e-12 && (weights[1] - 32.0 / 22.0).abs() < 1e-12,
        "{weights:?}"
    );
    let ex = Examples::new(&x, &data.y, 3).with_class_weights(weights);
    let params = TrainParams {
        solver: Solver::Newton,
        epochs: 100,
        class_weight: ClassWeight::Balanced,
        ..TrainParams::default()
    };
    let out = fit(ex, None, &params, &AtomicBool::new(false), |_| {}).expect("fits");
    let model = Model::new(
        transform,
        out.weights,
        "GRADE".into(),
        params,
        out.stop_reason,
        0,
        data.rows(),
        Lineage::default(),
    );
    let expected = &reference()["spector"]["balanced"];
    let relative = |a: f64, b: f64| (a - b).abs() / b.abs();
    let intercept = expected["intercept"].as_f64().unwrap_or(f64::NAN);
    assert!(
        relative(model.intercept, intercept) < 1e-8,
        "intercept {} vs {intercept}",
        model.intercept
    );
    for name in ["GPA", "TUCE", "PSI"] {
        let want = expected["coefficients"][name].as_f64().unwrap_or(f64::NAN);
        let got = model.coefficients.get(name).unwrap_or(f64::NAN);
        assert!(relative(got, want) < 1e-8, "{name}: {got} vs {want}");
    }
}
