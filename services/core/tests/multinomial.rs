//! K-class fits against statsmodels' `MNLogit` and scikit-learn's `LogisticRegression`
//! (`tests/fixtures/make_multinomial.py` made the numbers).

use logitflow_core::logistic::multinomial::{
    Coding, fit_multinomial, in_data_units, multinomial_statistics,
};
use logitflow_core::logistic::{Examples, StopReason};
use logitflow_core::metrics::multiclass_metrics;
use logitflow_core::scale::{Scaling, Transform};
use std::sync::atomic::AtomicBool;

fn fixture(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn numbers(value: &serde_json::Value) -> Vec<f64> {
    value.as_array().expect("an array").iter().map(|v| v.as_f64().expect("a number")).collect()
}

/// The columns `names` of a CSV with a header, each row's text cells; rows missing any of them
/// (empty or `NA`) are left out, as pandas' `dropna` does.
fn columns(csv: &str, names: &[&str]) -> Vec<Vec<String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let at: Vec<usize> =
        names.iter().map(|n| header.iter().position(|h| h == n).expect("a column")).collect();
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|cells| at.iter().all(|&j| !cells[j].is_empty() && cells[j] != "NA"))
        .map(|cells| at.iter().map(|&j| cells[j].to_string()).collect())
        .collect()
}

/// Standard scaling as scikit-learn's `StandardScaler`: the mean and the population deviation.
fn standard_transform(x: &[f64], d: usize, names: &[&str]) -> Transform {
    let n = (x.len() / d) as f64;
    let offset: Vec<f64> = (0..d).map(|j| x.iter().skip(j).step_by(d).sum::<f64>() / n).collect();
    let scale = (0..d)
        .map(|j| {
            (x.iter().skip(j).step_by(d).map(|v| (v - offset[j]).powi(2)).sum::<f64>() / n).sqrt()
        })
        .collect();
    Transform {
        scaling: Scaling::Standard,
        feature_names: names.iter().map(|s| s.to_string()).collect(),
        encodings: Vec::new(),
        term_names: Vec::new(),
        offset,
        scale,
    }
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// anes96's standardised rows, its classes and statsmodels' MNLogit fit of them.
struct Anes {
    reference: serde_json::Value,
    features: [&'static str; 5],
    transform: Transform,
    x: Vec<f64>,
    y: Vec<f64>,
}

fn anes96() -> Anes {
    let all: serde_json::Value =
        serde_json::from_str(&fixture("multinomial.json")).expect("parses");
    let features = ["logpopul", "selfLR", "age", "educ", "income"];
    let rows =
        columns(&fixture("anes96.csv"), &["PID", "logpopul", "selfLR", "age", "educ", "income"]);
    let y: Vec<f64> = rows.iter().map(|r| r[0].parse().expect("a class")).collect();
    let raw: Vec<f64> = rows
        .iter()
        .flat_map(|r| r[1..].iter().map(|v| v.parse::<f64>().expect("a number")))
        .collect();
    let transform = standard_transform(&raw, 5, &features);
    let x = transform.apply(&raw);
    Anes { reference: all["anes96"].clone(), features, transform, x, y }
}

#[test]
fn anes96_reference_coded_fit_equals_statsmodels_mnlogit() {
    let Anes { reference: anes, features, transform, x, y } = anes96();
    let fit = fit_multinomial(
        Examples::new(&x, &y, 5),
        (7, Coding::Reference { class: 0 }),
        0.0,
        &AtomicBool::new(false),
        |_| {},
    );
    assert_eq!(fit.stop_reason, StopReason::Converged);
    let llf = -fit.loss_sum;
    let expected_llf = anes["log_likelihood"].as_f64().expect("llf");
    assert!(relative(llf, expected_llf) < 1e-9, "log-likelihood {llf} against {expected_llf}");

    let names: Vec<String> = features.iter().map(|s| s.to_string()).collect();
    let tables = multinomial_statistics(&fit, &transform, &names).expect("a regular Hessian");
    assert_eq!(tables.iter().map(|t| t.class).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    let estimates = anes["estimates"].as_array().expect("blocks");
    let errors = anes["std_errors"].as_array().expect("blocks");
    for (table, (estimate, error)) in tables.iter().zip(estimates.iter().zip(errors)) {
        let (estimate, error) = (numbers(estimate), numbers(error));
        let (intercept, coefficients) =
            in_data_units(&fit.model.blocks[table.class], &transform, &names);
        assert_eq!(table.terms[0].estimate, intercept);
        for (t, term) in table.terms.iter().enumerate() {
            assert!(
                relative(term.estimate, estimate[t]) < 1e-6,
                "class {} {}: {} against {}",
                table.class,
                term.term,
                term.estimate,
                estimate[t]
            );
            let se = term.std_error.expect("a standard error");
            assert!(
                (se - error[t]).abs() < 1e-5,
                "class {} {} se: {se} against {}",
                table.class,
                term.term,
                error[t]
            );
            assert_eq!(term.odds_ratio, Some(term.estimate.exp()), "the relative-risk ratio");
        }
        assert_eq!(coefficients.len(), 5);
    }
}

#[test]
fn penguins_species_with_l2_gives_scikit_learns_probabilities() {
    let reference: serde_json::Value =
        serde_json::from_str(&fixture("multinomial.json")).expect("parses");
    let penguins = &reference["penguins"];
    let measurements = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"];
    let rows = columns(
        &fixture("penguins.csv"),
        &["species", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
    );
    let classes: Vec<String> = penguins["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c.as_str().expect("a name").to_string())
        .collect();
    let y: Vec<f64> = rows
        .iter()
        .map(|r| classes.iter().position(|c| *c == r[0]).expect("a known species") as f64)
        .collect();
    let raw: Vec<f64> = rows
        .iter()
        .flat_map(|r| r[1..].iter().map(|v| v.parse::<f64>().expect("a number")))
        .collect();
    assert_eq!(y.len() as u64, penguins["rows"].as_u64().expect("rows"));
    let x = standard_transform(&raw, 4, &measurements).apply(&raw);
    let lambda = penguins["lambda"].as_f64().expect("λ");
    let fit = fit_multinomial(
        Examples::new(&x, &y, 4),
        (3, Coding::Symmetric),
        lambda,
        &AtomicBool::new(false),
        |_| {},
    );
    assert_eq!(fit.stop_reason, StopReason::Converged);
    let mut p = [0.0; 3];
    let mut worst: f64 = 0.0;
    for (i, expected) in penguins["probabilities"].as_array().expect("rows").iter().enumerate() {
        fit.model.probabilities(&x[i * 4..(i + 1) * 4], &mut p);
        for (got, want) in p.iter().zip(numbers(expected)) {
            worst = worst.max((got - want).abs());
        }
    }
    assert!(worst < 1e-6, "the largest difference in a probability is {worst}");
    // The symmetric optimum: each term's weights, and the intercepts, sum to zero.
    for j in 0..4 {
        let sum: f64 = fit.model.blocks.iter().map(|b| b.weights[j]).sum();
        assert!(sum.abs() < 1e-9, "term {j}'s weights sum to {sum}");
    }
    let intercepts: f64 = fit.model.blocks.iter().map(|b| b.bias).sum();
    assert!(intercepts.abs() < 1e-9, "the intercepts sum to {intercepts}");
}

#[test]
fn multiclass_metrics_equal_scikit_learns_on_its_own_probabilities() {
    let reference: serde_json::Value =
        serde_json::from_str(&fixture("multinomial.json")).expect("parses");
    let penguins = &reference["penguins"];
    let classes: Vec<String> = penguins["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c.as_str().expect("a name").to_string())
        .collect();
    let rows = columns(
        &fixture("penguins.csv"),
        &["species", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
    );
    let y: Vec<f64> = rows
        .iter()
        .map(|r| classes.iter().position(|c| *c == r[0]).expect("a known species") as f64)
        .collect();
    let probabilities: Vec<f64> =
        penguins["probabilities"].as_array().expect("rows").iter().flat_map(numbers).collect();
    let metrics = multiclass_metrics(&probabilities, &y, &classes, 0.5);
    let close = |got: f64, key: &str| {
        let want = penguins[key].as_f64().expect("a figure");
        assert!((got - want).abs() <= 1e-12, "{key}: {got} against scikit-learn's {want}");
    };
    close(metrics.log_loss, "log_loss");
    close(metrics.auc, "auc_ovr_macro");
    close(metrics.brier, "brier");
    close(metrics.accuracy, "accuracy");
    let multiclass = metrics.multiclass.expect("the per-class figures");
    close(multiclass.auc_weighted, "auc_ovr_weighted");
    let confusion: Vec<Vec<u64>> = penguins["confusion"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            row.as_array().expect("a row").iter().map(|v| v.as_u64().expect("a count")).collect()
        })
        .collect();
    assert_eq!(multiclass.confusion, confusion);
    let [precision, recall, f1] = [0, 1, 2].map(|i| numbers(&penguins["precision_recall_f1"][i]));
    let average_precision = numbers(&penguins["average_precision_ovr"]);
    for (c, class) in multiclass.classes.iter().enumerate() {
        assert_eq!(class.class, classes[c]);
        for (got, want, what) in [
            (class.precision, precision[c], "precision"),
            (class.recall, recall[c], "recall"),
            (class.f1, f1[c], "F1"),
            (class.average_precision, average_precision[c], "average precision"),
        ] {
            assert!((got - want).abs() <= 1e-12, "{} {what}: {got} against {want}", class.class);
        }
    }
}

/// The seed's per-sample rule with the softmax gradient comes close to newton's optimum on the
/// penguins (scikit-learn's L2), keeps its blocks symmetric, and stops on the plateau.
#[test]
fn sgd_with_the_softmax_gradient_comes_within_half_a_percent_of_newtons_optimum() {
    use logitflow_core::logistic::multinomial::{SgdSchedule, fit_multinomial_sgd, mean_objective};
    let reference: serde_json::Value =
        serde_json::from_str(&fixture("multinomial.json")).expect("parses");
    let penguins = &reference["penguins"];
    let classes: Vec<String> = penguins["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c.as_str().expect("a name").to_string())
        .collect();
    let measurements = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"];
    let rows = columns(
        &fixture("penguins.csv"),
        &["species", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
    );
    let y: Vec<f64> = rows
        .iter()
        .map(|r| classes.iter().position(|c| *c == r[0]).expect("a known species") as f64)
        .collect();
    let raw: Vec<f64> = rows
        .iter()
        .flat_map(|r| r[1..].iter().map(|v| v.parse::<f64>().expect("a number")))
        .collect();
    let x = standard_transform(&raw, 4, &measurements).apply(&raw);
    let ex = Examples::new(&x, &y, 4);
    let lambda = penguins["lambda"].as_f64().expect("λ");
    let never = AtomicBool::new(false);
    let optimum = fit_multinomial(ex, (3, Coding::Symmetric), lambda, &never, |_| {});
    let schedule = SgdSchedule {
        learning_rate: 0.2,
        lr_decay: 0.1,
        epochs: 1000,
        tolerance: 1e-7,
        patience: 10,
        seed: 42,
    };
    let mut epochs = 0;
    let sgd = fit_multinomial_sgd(ex, 3, (lambda, schedule), &never, |_| epochs += 1);
    let (at_sgd, at_optimum) =
        (mean_objective(&sgd.model, ex, lambda), mean_objective(&optimum.model, ex, lambda));
    assert!(at_sgd >= at_optimum - 1e-12, "newton's is the optimum: {at_sgd} < {at_optimum}");
    assert!(
        (at_sgd - at_optimum) / at_optimum < 5e-3,
        "sgd's objective {at_sgd} against the optimum's {at_optimum}"
    );
    assert_eq!(sgd.curve.len(), epochs);
    assert!(
        matches!(sgd.stop_reason, StopReason::Plateau | StopReason::MaxEpochs),
        "{:?}",
        sgd.stop_reason
    );
    for j in 0..4 {
        let sum: f64 = sgd.model.blocks.iter().map(|b| b.weights[j]).sum();
        assert!(sum.abs() < 1e-9, "term {j}'s weights sum to {sum}");
    }
}

/// L-BFGS, what `auto` runs for many parameters, reaches MNLogit's optimum on anes96 too (to a
/// gradient of 1e-8: every estimate within 1e-5 of its standard error, the log-likelihood to
/// 1e-12), and has the Hessian there for the statistics.
#[test]
fn lbfgs_reaches_mnlogits_optimum_with_its_standard_errors() {
    use logitflow_core::logistic::multinomial::fit_multinomial_lbfgs;
    let Anes { reference: anes, features, transform, x, y } = anes96();
    let never = AtomicBool::new(false);
    let fit = fit_multinomial_lbfgs(
        Examples::new(&x, &y, 5),
        (7, Coding::Reference { class: 0 }),
        (0.0, 1e-8, 1000),
        &never,
        |_| {},
    );
    assert_eq!(fit.stop_reason, StopReason::Converged, "after {} iterations", fit.curve.len());
    assert!(relative(-fit.loss_sum, anes["log_likelihood"].as_f64().expect("llf")) < 1e-12);
    // Below a gradient of 1e-4 it turned to newton's steps: the last took the gradient down
    // by orders, where L-BFGS's steps take it down by a factor.
    let grads: Vec<f64> = fit.curve.iter().map(|e| e.grad_norm).collect();
    let [.., before, last] = grads.as_slice() else { panic!("{grads:?}") };
    assert!(*before <= 1e-4 && *last < 1e-3 * before, "{grads:?}");
    let names: Vec<String> = features.iter().map(|s| s.to_string()).collect();
    let tables =
        multinomial_statistics(&fit, &transform, &names).expect("the Hessian at the optimum");
    for (table, (estimate, error)) in tables.iter().zip(
        anes["estimates"]
            .as_array()
            .expect("blocks")
            .iter()
            .zip(anes["std_errors"].as_array().expect("blocks")),
    ) {
        for (term, (e, se)) in
            table.terms.iter().zip(numbers(estimate).into_iter().zip(numbers(error)))
        {
            assert!(
                (term.estimate - e).abs() <= 1e-5 * se,
                "{}: {} against {e}",
                term.term,
                term.estimate
            );
            assert!((term.std_error.expect("se") - se).abs() < 1e-5, "{}", term.term);
        }
    }
}
