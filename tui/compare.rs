//! Two runs side by side: their parameters, metrics and coefficients as rows of
//! [`ComparedRow`]s (what differs marked, numbers with their difference), shared by
//! `logitflow compare` and the dashboard's runs view, and the runs named on a command line
//! ([`find_run`]).

use crate::pipeline::RunReport;
use logitflow_core::inference::FitStatistics;
use logitflow_core::logistic::Covariance;

/// One line of a comparison: what it is, its value in each run, and B − A for numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparedRow {
    pub name: String,
    pub a: String,
    pub b: String,
    /// `b − a` for numbers that differ, as text with its sign; empty when equal or not numbers.
    pub delta: String,
    pub differs: bool,
}

impl ComparedRow {
    fn text(name: &str, a: String, b: String) -> ComparedRow {
        let differs = a != b;
        ComparedRow { name: name.to_string(), a, b, delta: String::new(), differs }
    }

    fn number(name: &str, a: Option<f64>, b: Option<f64>, digits: usize) -> ComparedRow {
        // A number too small for the digits asked (a tolerance of 1e-7, a coefficient of 3e-6)
        // keeps three of its own, and so does the difference of two such (it read `-0.0000`).
        let show = |v: Option<f64>| {
            v.map_or_else(|| "-".to_string(), |v| crate::numbers::readable(v, digits))
        };
        let (a_text, b_text) = (show(a), show(b));
        let scientific = a_text.contains('e') || b_text.contains('e');
        let delta = match (a, b) {
            (Some(a), Some(b)) if a_text != b_text && scientific => {
                crate::numbers::readable_signed(b - a, digits)
            }
            (Some(a), Some(b)) if a_text != b_text => format!("{:+.digits$}", b - a),
            _ => String::new(),
        };
        ComparedRow {
            name: name.to_string(),
            differs: a_text != b_text,
            a: a_text,
            b: b_text,
            delta,
        }
    }
}

/// The rows comparing run `a` with run `b`: the model and data, every training parameter, the
/// test metrics, the fit's stop, and each coefficient (in `a`'s term order, then `b`'s own).
pub fn compare_runs(a: &RunReport, b: &RunReport) -> Vec<ComparedRow> {
    let mut rows = vec![
        ComparedRow::text("run", a.run_id.clone(), b.run_id.clone()),
        ComparedRow::text(
            "model",
            format!("{} v{}", a.model.name, a.model.version),
            format!("{} v{}", b.model.name, b.model.version),
        ),
        ComparedRow::text("data", a.data.clone(), b.data.clone()),
    ];
    let (pa, pb) = (&a.params, &b.params);
    rows.push(ComparedRow::text("solver", pa.solver.to_string(), pb.solver.to_string()));
    let whole = |v: usize| Some(v as f64);
    for (name, x, y, digits) in [
        ("learning_rate", Some(pa.learning_rate), Some(pb.learning_rate), 4),
        ("lr_decay", Some(pa.lr_decay), Some(pb.lr_decay), 4),
        ("l2", Some(pa.l2), Some(pb.l2), 4),
        ("epochs (limit)", whole(pa.epochs), whole(pb.epochs), 0),
        ("batch_size", whole(pa.batch_size), whole(pb.batch_size), 0),
        ("patience", whole(pa.patience), whole(pb.patience), 0),
        ("tolerance", Some(pa.tolerance), Some(pb.tolerance), 4),
        ("validation_fraction", pa.validation_fraction, pb.validation_fraction, 3),
        ("seed", Some(pa.seed as f64), Some(pb.seed as f64), 0),
    ] {
        rows.push(ComparedRow::number(name, x, y, digits));
    }
    rows.push(ComparedRow::text(
        "class_weight",
        format!("{:?}", pa.class_weight),
        format!("{:?}", pb.class_weight),
    ));
    rows.extend(penalty_rows(a, b));
    rows.extend(row_role_rows(a, b));
    rows.push(ComparedRow::number(
        "epochs run",
        whole(a.loss_curve.len()),
        whole(b.loss_curve.len()),
        0,
    ));
    rows.push(ComparedRow::text(
        "stop",
        a.stop_reason.short().to_string(),
        b.stop_reason.short().to_string(),
    ));
    let (ma, mb) = (&a.metrics, &b.metrics);
    for (name, x, y) in [
        ("test rows", ma.rows as f64, mb.rows as f64),
        ("accuracy", ma.accuracy, mb.accuracy),
        ("precision", ma.precision, mb.precision),
        ("recall", ma.recall, mb.recall),
        ("f1", ma.f1, mb.f1),
        ("auc", ma.auc, mb.auc),
        ("average precision", ma.pr_auc, mb.pr_auc),
        ("log loss", ma.log_loss, mb.log_loss),
        ("brier", ma.brier, mb.brier),
    ] {
        rows.push(ComparedRow::number(
            name,
            Some(x),
            Some(y),
            if name == "test rows" { 0 } else { 4 },
        ));
    }
    // The likelihood figures of exact fits: what models of the same rows are compared by.
    let (fa, fb) = (a.model.fit.fit_statistics.as_ref(), b.model.fit.fit_statistics.as_ref());
    if fa.is_some() || fb.is_some() {
        for (name, figure) in [
            ("log-likelihood", (|f: &FitStatistics| f.log_likelihood) as fn(&FitStatistics) -> f64),
            ("AIC", |f| f.aic),
            ("BIC", |f| f.bic),
            ("pseudo R²", |f| f.pseudo_r2),
        ] {
            rows.push(ComparedRow::number(name, fa.map(figure), fb.map(figure), 4));
        }
    }
    let (ea, eb) = (estimates(a), estimates(b));
    let find = |e: &[(String, f64)], term: &str| e.iter().find(|(t, _)| t == term).map(|(_, v)| *v);
    let mut terms: Vec<&String> = ea.iter().map(|(t, _)| t).collect();
    terms.extend(eb.iter().map(|(t, _)| t).filter(|t| find(&ea, t).is_none()));
    for term in terms {
        rows.push(ComparedRow::number(term, find(&ea, term), find(&eb, term), 4));
    }
    rows
}

/// A run's estimates by name: the intercept and each term; for a K-class model, each fitted
/// class's, named `class: term`.
fn estimates(run: &RunReport) -> Vec<(String, f64)> {
    let intercept = logitflow_core::inference::INTERCEPT;
    let Some(multinomial) = &run.model.multinomial else {
        let terms = run.model.coefficients.iter().map(|(t, v)| (t.clone(), *v));
        return std::iter::once((intercept.to_string(), run.model.intercept))
            .chain(terms)
            .collect();
    };
    let fitted = multinomial.weights.fitted();
    fitted
        .into_iter()
        .filter_map(|c| multinomial.estimates.get(c))
        .flat_map(|e| {
            let terms = e.coefficients.iter().map(|(t, v)| (format!("{}: {t}", e.class), *v));
            std::iter::once((format!("{}: {intercept}", e.class), e.intercept)).chain(terms)
        })
        .collect()
}

/// The penalty's parameters, where either run has a penalty other than `--l2`'s, and the λ
/// each fit holds.
fn penalty_rows(a: &RunReport, b: &RunReport) -> Vec<ComparedRow> {
    let (pa, pb) = (&a.params, &b.params);
    if !(pa.fits_path() || pb.fits_path() || pa.lambda.is_some() || pb.lambda.is_some()) {
        return Vec::new();
    }
    let held = |r: &RunReport| r.model.fit.path.as_ref().map(|p| p.lambda).or(r.params.lambda);
    let whole = |v: Option<usize>| v.map(|v| v as f64);
    vec![
        ComparedRow::text("penalty", pa.penalty.name().to_string(), pb.penalty.name().to_string()),
        ComparedRow::number("l1_ratio (α)", pa.alpha(), pb.alpha(), 3),
        ComparedRow::number("cv folds", whole(pa.cv), whole(pb.cv), 0),
        ComparedRow::number("λ held", held(a), held(b), 4),
    ]
}

/// The covariance and the rows' weight, offset, cluster and fold columns, where either run
/// has one other than the default.
fn row_role_rows(a: &RunReport, b: &RunReport) -> Vec<ComparedRow> {
    let mut rows = Vec::new();
    let (ca, cb) = (a.params.covariance, b.params.covariance);
    if ca != Covariance::Nonrobust || cb != Covariance::Nonrobust {
        rows.push(ComparedRow::text("covariance", ca.name().to_string(), cb.name().to_string()));
    }
    let columns = |r: &RunReport| {
        r.model.fit.row_roles.as_ref().map(|roles| roles.columns.clone()).unwrap_or_default()
    };
    let (ra, rb) = (columns(a), columns(b));
    let show = |name: &Option<String>| name.clone().unwrap_or_else(|| "-".to_string());
    for (name, x, y) in [
        ("weights", &ra.weights, &rb.weights),
        ("offset", &ra.offset, &rb.offset),
        ("cluster", &ra.cluster, &rb.cluster),
        ("folds", &ra.folds, &rb.folds),
    ] {
        if x.is_some() || y.is_some() {
            rows.push(ComparedRow::text(name, show(x), show(y)));
        }
    }
    rows
}

/// Why a command line's run name names no one run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindRunError {
    #[error("no run {0:?}; `logitflow runs` lists them")]
    None(String),
    #[error("{name:?} names {count} runs ({first}, …); give more of the id")]
    Several { name: String, count: usize, first: String },
}

/// The run a command line names: its whole id, or a prefix of exactly one id.
pub fn find_run<'r>(runs: &'r [RunReport], name: &str) -> Result<&'r RunReport, FindRunError> {
    if let Some(run) = runs.iter().find(|r| r.run_id == name) {
        return Ok(run);
    }
    let matching: Vec<&RunReport> = runs.iter().filter(|r| r.run_id.starts_with(name)).collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(FindRunError::None(name.to_string())),
        many => Err(FindRunError::Several {
            name: name.to_string(),
            count: many.len(),
            first: many[0].run_id.clone(),
        }),
    }
}

/// The rows as a plain table, for the terminal: `*` marks what differs.
pub fn table(rows: &[ComparedRow]) -> String {
    let width =
        |f: fn(&ComparedRow) -> &str| rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0);
    let (wn, wa, wb) = (width(|r| &r.name), width(|r| &r.a), width(|r| &r.b));
    rows.iter()
        .map(|r| {
            let line = format!(
                "{} {:<wn$}  {:>wa$}  {:>wb$}  {}",
                if r.differs { "*" } else { " " },
                r.name,
                r.a,
                r.b,
                r.delta
            );
            line.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        id: &str,
        solver: &str,
        l2: f64,
        log_loss: f64,
        coefficients: serde_json::Value,
    ) -> RunReport {
        let metrics = serde_json::json!({"rows": 10, "threshold": 0.5, "accuracy": 0.9, "precision": 0.9, "recall": 0.9, "f1": 0.9,
            "auc": 0.95, "log_loss": log_loss, "brier": 0.1, "confusion": {"tp": 5, "fp": 0, "tn": 4, "fn": 1}});
        let params = serde_json::json!({"solver": solver, "learning_rate": 0.2, "lr_decay": 0.1, "epochs": 1000, "batch_size": 32,
            "l2": l2, "seed": 42, "tolerance": 1e-7, "patience": 10});
        serde_json::from_value(serde_json::json!({
            "run_id": id, "started_unix_ms": 0, "data": "d.csv",
            "model": {"name": "m", "version": 1, "intercept": -1.0, "coefficients": coefficients, "label_name": "y"},
            "metrics": metrics, "loss_curve": [{"epoch": 1, "train_loss": 0.5, "val_loss": null, "grad_norm": 0.1, "elapsed_ms": 1.0}],
            "stages": [], "predictions": [], "promoted": true, "decision": "", "stop_reason": "converged", "stable_version": 1,
            "roc": [], "params": params, "feature_names": ["x"], "train_to_served_ms": 1.0,
        }))
        .expect("a run report")
    }

    #[test]
    fn differences_are_marked_with_their_sign_and_terms_of_either_run_are_listed() {
        let a = run("1796-aaaa", "newton", 0.0, 0.2330, serde_json::json!({"x": 0.5, "z": 2.0}));
        let b = run("1796-bbbb", "sgd", 0.01, 0.2337, serde_json::json!({"x": 0.45, "w": 1.0}));
        let rows = compare_runs(&a, &b);
        let row = |name: &str| {
            rows.iter()
                .find(|r| r.name == name)
                .unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
        };
        assert!(row("solver").differs && row("solver").delta.is_empty());
        assert_eq!(
            (row("l2").a.as_str(), row("l2").b.as_str(), row("l2").delta.as_str()),
            ("0.0000", "0.0100", "+0.0100")
        );
        assert_eq!((row("log loss").delta.as_str(), row("accuracy").differs), ("+0.0007", false));
        assert_eq!((row("tolerance").a.as_str(), row("tolerance").differs), ("1.00e-7", false));
        assert_eq!(
            (row("x").delta.as_str(), row("z").b.as_str(), row("w").a.as_str()),
            ("-0.0500", "-", "-")
        );
        // A coefficient in large units (income: 3e-6 per unit) and its difference keep their
        // significant digits, where four decimals said 0.0000 and -0.0000.
        let before = run("1796-cccc", "newton", 0.0, 0.2330, serde_json::json!({"income": 9.0e-6}));
        let after = run("1796-dddd", "newton", 0.0, 0.2330, serde_json::json!({"income": 3.0e-6}));
        let income_rows = compare_runs(&before, &after);
        let income = income_rows.iter().find(|r| r.name == "income").expect("an income row");
        assert_eq!(
            (income.a.as_str(), income.b.as_str(), income.delta.as_str(), income.differs),
            ("9.00e-6", "3.00e-6", "-6.00e-6", true)
        );
        let table = table(&rows);
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("* solver") && l.contains("newton") && l.contains("sgd")),
            "{table}"
        );
        assert!(table.lines().any(|l| l.starts_with("  accuracy")), "{table}");
        let runs = [a, b];
        assert_eq!(find_run(&runs, "1796-b").map(|r| r.run_id.as_str()), Ok("1796-bbbb"));
        assert!(find_run(&runs, "1796").is_err_and(|e| e.to_string().contains("names 2 runs")));
        assert!(find_run(&runs, "x").is_err_and(|e| e.to_string().contains("logitflow runs")));
    }

    #[test]
    fn exact_fits_are_compared_by_their_likelihood_figures() {
        let (mut a, mut b) = (
            run("a", "newton", 0.0, 0.2, serde_json::json!({})),
            run("b", "sgd", 0.0, 0.2, serde_json::json!({})),
        );
        let names = |rows: &[ComparedRow]| rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert!(!names(&compare_runs(&a, &b)).contains(&"AIC".to_string()), "neither has them");
        let y = [0.0, 1.0, 1.0, 0.0, 1.0];
        a.model.fit.fit_statistics = Some(FitStatistics::new(2.0, &y, 1));
        let rows = compare_runs(&a, &b);
        let aic = rows.iter().find(|r| r.name == "AIC").expect("an AIC row");
        assert_eq!(
            (aic.a.as_str(), aic.b.as_str(), aic.differs),
            ("8.0000", "-", true),
            "sgd's fit has none"
        );
        b.model.fit.fit_statistics = Some(FitStatistics::new(1.5, &y, 2));
        let rows = compare_runs(&a, &b);
        let aic = rows.iter().find(|r| r.name == "AIC").expect("an AIC row");
        assert_eq!((aic.b.as_str(), aic.delta.as_str()), ("9.0000", "+1.0000"));
    }
}
