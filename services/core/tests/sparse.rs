//! A text column of more than 200 levels, held as sparse terms, against statsmodels (the exact
//! fit) and scikit-learn (L2 on the standardised design): `tests/fixtures/make_sparse.py` made
//! the data and the numbers. And the same column held dense gives the same model.

use logitflow_core::clean::{CleanOptions, Dataset, clean};
use logitflow_core::logistic::{
    Examples, Penalty, Solver, SparseTerms, StopReason, TrainParams, fit,
};
use logitflow_core::model::{Lineage, Model};
use logitflow_core::scale::{Encoding, MAX_DENSE_LEVELS, Scaling, Transform, Value};
use logitflow_core::table::{CsvOptions, RawTable};
use std::sync::atomic::AtomicBool;

fn fixture(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn data() -> Dataset {
    let raw = RawTable::from_csv(fixture("sparse.csv").as_bytes(), &CsvOptions::default())
        .expect("reads");
    clean(&raw, &CleanOptions::default()).expect("cleans").0
}

/// Encodes, scales and fits `data` with `transform` as train does, to the optimum.
fn fitted(data: &Dataset, transform: Transform, params: &TrainParams) -> Model {
    let mut x = transform.terms_of(data).expect("encodes");
    transform.scale_in_place(&mut x);
    let sparse = SparseTerms::of(&transform);
    let ex = Examples::new(&x, &data.y, transform.slots()).with_sparse(sparse.as_ref());
    let out = fit(ex, None, params, &AtomicBool::new(false), |_| {}).expect("fits");
    assert!(
        matches!(out.stop_reason, StopReason::Converged | StopReason::Plateau),
        "{:?} after {} iterations",
        out.stop_reason,
        out.curve.len()
    );
    Model::new(
        transform,
        out.weights,
        data.label_name.clone(),
        params.clone(),
        out.stop_reason,
        0,
        data.rows(),
        Lineage::default(),
    )
}

/// Each of the model's coefficients (and the intercept) within `tolerance` of the reference's,
/// relative to the larger of its size and 1.
fn assert_coefficients(model: &Model, reference: &serde_json::Value, tolerance: f64) {
    let close = |got: f64, want: f64| (got - want).abs() <= tolerance * want.abs().max(1.0);
    let intercept = reference["intercept"].as_f64().expect("intercept");
    assert!(close(model.intercept, intercept), "intercept {} vs {intercept}", model.intercept);
    let want = reference["coefficients"].as_object().expect("coefficients");
    assert_eq!(model.coefficients.0.len(), want.len());
    for (name, got) in &model.coefficients.0 {
        let want = want[name].as_f64().unwrap_or_else(|| panic!("{name} in the reference"));
        assert!(close(*got, want), "{name}: {got} vs {want}");
    }
}

#[test]
fn a_column_of_many_levels_fits_sparse_to_statsmodels_optimum() {
    let data = data();
    let reference: serde_json::Value = serde_json::from_str(&fixture("sparse.json")).expect("json");
    let transform = Transform::fit(&data, Scaling::Standard);
    assert!(
        matches!(transform.encoding(2), Encoding::Sparse { levels, .. } if levels.len() == 250)
    );
    const { assert!(250 > MAX_DENSE_LEVELS) };
    // Two numeric slots and one of levels; the terms are the two and 249 levels.
    assert_eq!((transform.slots(), transform.dense_terms(), transform.terms()), (3, 2, 251));
    let params = TrainParams {
        solver: Solver::Auto,
        l2: 0.0,
        epochs: 10_000,
        tolerance: 1e-10,
        ..TrainParams::default()
    };
    let model = fitted(&data, transform, &params);
    assert_coefficients(&model, &reference["exact"], 1e-8);
    // A row is scored by its level's coefficient, as a dense row of 0/1 terms would be.
    let row = [Value::Number(120.0), Value::Number(0.01), Value::Text("s137".into())];
    let mut terms = Vec::new();
    model.encode_row(&row, &mut terms).expect("encodes");
    assert_eq!(terms, vec![120.0, 0.01, 137.0], "the level's index in its slot");
    let coefficient = |name: &str| {
        model.coefficients.0.iter().find(|(n, _)| n == name).map(|(_, c)| *c).expect("a term")
    };
    let by_hand = model.intercept
        + 120.0 * coefficient("x0")
        + 0.01 * coefficient("x1")
        + coefficient("shop=s137");
    assert!((model.logit_raw(&terms) - by_hand).abs() <= 1e-12 * by_hand.abs().max(1.0));
}

#[test]
fn sparse_and_dense_terms_of_one_column_are_one_model_with_a_penalty_too() {
    let data = data();
    let reference: serde_json::Value = serde_json::from_str(&fixture("sparse.json")).expect("json");
    let lambda = reference["l2"]["lambda"].as_f64().expect("lambda");
    let params = |solver| TrainParams {
        solver,
        l2: lambda,
        epochs: 10_000,
        tolerance: 1e-10,
        ..TrainParams::default()
    };
    let sparse = fitted(&data, Transform::fit(&data, Scaling::Standard), &params(Solver::Lbfgs));
    // The penalty is on the standardised terms: the sparse ones centred and scaled as sums.
    assert_coefficients(&sparse, &reference["l2"], 1e-8);
    let dense_transform = Transform::fit_holding_dense(&data, Scaling::Standard, 1000);
    assert!(matches!(dense_transform.encoding(2), Encoding::Categorical { .. }));
    let dense = fitted(&data, dense_transform, &params(Solver::Newton));
    assert_coefficients(&dense, &reference["l2"], 1e-8);
    assert_eq!(sparse.transform.term_names(), dense.transform.term_names());
    for ((name, s), (_, d)) in sparse.coefficients.0.iter().zip(&dense.coefficients.0) {
        assert!((s - d).abs() <= 1e-9 * d.abs().max(1.0), "{name}: sparse {s} vs dense {d}");
    }
}

#[test]
fn solvers_other_than_lbfgs_refuse_sparse_terms_by_name() {
    let data = data();
    let transform = Transform::fit(&data, Scaling::Standard);
    let mut x = transform.terms_of(&data).expect("encodes");
    transform.scale_in_place(&mut x);
    let sparse = SparseTerms::of(&transform);
    let ex = Examples::new(&x, &data.y, transform.slots()).with_sparse(sparse.as_ref());
    for solver in [Solver::Newton, Solver::Sgd, Solver::Saga, Solver::Batch] {
        let params = TrainParams { solver, ..TrainParams::default() };
        let refused = fit(ex, None, &params, &AtomicBool::new(false), |_| {});
        let message = refused.map(|_| ()).expect_err("refused").to_string();
        assert!(message.contains(&format!("solver {solver} cannot fit sparse terms")), "{message}");
    }
    // A lasso path is cd's: what it cannot do, and what can.
    let lasso = TrainParams { penalty: Penalty::L1, lambda: Some(0.01), ..TrainParams::default() };
    let refused = fit(ex, None, &lasso, &AtomicBool::new(false), |_| {});
    let message = refused.map(|_| ()).expect_err("refused").to_string();
    assert!(
        message.starts_with("an L1 or elastic-net penalty") && message.contains("L2"),
        "{message}"
    );
}

#[test]
fn an_unpenalised_sparse_fit_ends_by_newtons_step_at_statsmodels_optimum() {
    let data = data();
    let reference: serde_json::Value = serde_json::from_str(&fixture("sparse.json")).expect("json");
    let transform = Transform::fit(&data, Scaling::Standard);
    let mut x = transform.terms_of(&data).expect("encodes");
    transform.scale_in_place(&mut x);
    let sparse = SparseTerms::of(&transform);
    let ex = Examples::new(&x, &data.y, transform.slots()).with_sparse(sparse.as_ref());
    // The defaults: `auto`, the gradient's tolerance 1e-7.
    let params = TrainParams { epochs: 10_000, ..TrainParams::default() };
    let out = fit(ex, None, &params, &AtomicBool::new(false), |_| {}).expect("fits");
    assert_eq!(out.stop_reason, StopReason::Converged);
    // L-BFGS brought the gradient below 1e-4, then one Newton step took it down by orders
    // where L-BFGS's steps take it down by a factor.
    let grads: Vec<f64> = out.curve.iter().map(|e| e.grad_norm).collect();
    let [.., before, last] = grads.as_slice() else { panic!("{grads:?}") };
    assert!(*before <= 1e-4 && *last < 1e-3 * before, "{grads:?}");
    let model = Model::new(
        transform,
        out.weights,
        data.label_name.clone(),
        params,
        out.stop_reason,
        0,
        data.rows(),
        Lineage::default(),
    );
    // At the default tolerance: the other tests ask 1e-10 of the gradient for 1e-8 here.
    assert_coefficients(&model, &reference["exact"], 1e-6);
}
