//! The report of a two-class fit beyond its weights, built here so that every service tells
//! the same story: which statistics are withheld and why ([`withheld_statistics`]), the
//! statistics themselves ([`add_statistics`]), each estimate per standard deviation of its term
//! ([`standardize_estimates`]), and the exact optimum an iterative fit is measured against
//! ([`exact_reference`], [`optimality`]).

use crate::inference::{FitReport, FitStatistics, Optimality, PathReport, statistics};
use crate::logistic::{
    ClassWeight, Covariance, Examples, FitOutcome, LambdaRule, Penalty, Solver, StopReason,
    TrainParams, Weights, fit, objective,
};
use crate::model::Model;
use crate::scale::{Encoding, Transform};
use std::sync::atomic::AtomicBool;

/// Why the fit's coefficient table has no standard errors, if it has none by its kind: separated
/// classes, a penalty, class weights, or a fit that is not an exact, converged one.
pub fn withheld_statistics(
    report: &FitReport,
    params: &TrainParams,
    stop_reason: StopReason,
) -> Option<String> {
    if report.separation.is_some() {
        Some("not given: the classes are separated, so the estimates and their standard errors are not finite".to_string())
    } else if params.is_penalised() {
        Some(format!(
            "not given with a penalty ({}): the penalty shrinks the estimates, and the unpenalised theory's standard errors, p-values and intervals do not hold",
            describe_penalty(params, report.path.as_ref())
        ))
    } else if params.class_weight != ClassWeight::None {
        Some("not given with class weights: the weighted likelihood's inverse Hessian is not the estimates' covariance".to_string())
    } else if !params.solver.is_exact() || stop_reason != StopReason::Converged {
        Some(format!(
            "given for an exact, converged fit: this {} fit {}; train with `solver` newton for them",
            params.solver,
            stop_reason.describe()
        ))
    } else {
        None
    }
}

/// Why a model with sparse terms has no standard errors: their covariance is the inverse of a
/// dense Hessian of every term, which is what holding them sparse avoids.
pub fn sparse_statistics_note(transform: &Transform) -> Option<String> {
    let sparse: Vec<String> = transform
        .feature_names
        .iter()
        .enumerate()
        .filter_map(|(j, name)| match transform.encoding(j) {
            Encoding::Sparse { levels, .. } => Some(format!("{name:?}, {} levels", levels.len())),
            _ => None,
        })
        .collect();
    (!sparse.is_empty()).then(|| {
        format!(
            "not given for sparse terms ({}): their covariance is the inverse of a dense {k} × {k} Hessian; the estimates are the fit's",
            sparse.join("; "),
            k = transform.terms() + 1
        )
    })
}

/// "L2, λ = 0.5", "L1, λ = 0.0123 chosen by 10-fold cross-validation (1se)".
pub fn describe_penalty(params: &TrainParams, path: Option<&PathReport>) -> String {
    let lambda = path.map_or(params.ridge(), |p| p.lambda);
    let kind = match params.penalty {
        Penalty::None | Penalty::L2 => "L2".to_string(),
        Penalty::L1 => "L1".to_string(),
        Penalty::Elasticnet => format!("elastic net, α = {}", params.l1_ratio.unwrap_or(f64::NAN)),
    };
    match params.cv {
        Some(folds) => {
            let rule = if params.select == LambdaRule::Min { "min" } else { "1se" };
            format!("{kind}, λ = {lambda:.6} chosen by {folds}-fold cross-validation ({rule})")
        }
        None => format!("{kind}, λ = {lambda}"),
    }
}

/// The coefficient table with its statistics (from `covariance`), and the fit statistics under
/// it, for the exact fit `weights` of `train_ex` with mean log loss `mean_loss`; or, where the
/// Hessian is singular, why not.
pub fn add_statistics(
    model: &mut Model,
    weights: &Weights,
    train_ex: Examples<'_>,
    hessian: Option<&[f64]>,
    (covariance, clusters): (Covariance, Option<&[f64]>),
    mean_loss: f64,
) {
    let estimates = (model.intercept, &model.coefficients);
    let Some(terms) =
        statistics(weights, train_ex, hessian, covariance, clusters, &model.transform, estimates)
    else {
        model.fit.statistics_note =
            Some("not given: the Hessian is singular (collinear terms, or a level no training row shows)".to_string());
        return;
    };
    model.fit.terms = terms;
    model.fit.covariance = Some(covariance).filter(|c| *c != Covariance::Nonrobust);
    model.fit.fit_statistics =
        Some(FitStatistics::of(mean_loss * train_ex.weight_sum(), train_ex, train_ex.d));
}

/// The largest fit (rows × terms) whose distance from the exact optimum is measured after an
/// iterative one, by the exact fit `auto` would make on the same rows: about as long as the
/// default fit of them, which the iterative solvers' many passes take several times over.
pub const OPTIMALITY_CHECK_CELLS: usize = 100_000_000;

/// Whether a fit is the exact optimum itself: newton's (its last step is exact, whatever its
/// stop), or L-BFGS's or SAGA's once the gradient is below the tolerance. Such a fit needs no
/// reference.
pub fn is_exact_fit(solver: Solver, stop_reason: StopReason) -> bool {
    solver == Solver::Newton
        || (matches!(solver, Solver::Lbfgs | Solver::Saga | Solver::Cd)
            && stop_reason == StopReason::Converged)
}

/// The exact fit `auto` makes (newton, or L-BFGS for many terms) on an iterative fit's rows and
/// parameters, up to [`OPTIMALITY_CHECK_CELLS`]: the optimum the iterative fit is measured
/// against, and the fit whose certain rows say whether a combination of terms separates the
/// classes. `None` where it is too large, or did not reach the optimum itself.
pub fn exact_reference(train_ex: Examples<'_>, params: &TrainParams) -> Option<FitOutcome> {
    if train_ex.rows() * (train_ex.d + 1) > OPTIMALITY_CHECK_CELLS {
        return None;
    }
    let (solver, _) = Solver::Auto.choose(train_ex.terms());
    // Newton's iterations are few (the limit only ends separated data); L-BFGS's many.
    let epochs = if solver == Solver::Newton { 50 } else { 1000 };
    let exact_params = TrainParams {
        solver,
        epochs,
        patience: 0,
        validation_fraction: Some(0.0),
        ..params.clone()
    };
    let reference = fit(train_ex, None, &exact_params, &AtomicBool::new(false), |_| {}).ok()?;
    is_exact_fit(solver, reference.stop_reason).then_some(reference)
}

/// Each estimate per standard deviation of its term, for the magnitudes' sake: `deviations` are
/// the scaled terms' deviations over the fit's rows, and a scaled term's deviation times its
/// scale is the raw one's.
pub fn standardize_estimates(model: &mut Model, deviations: &[f64]) {
    let scales = &model.transform.scale;
    for (row, (deviation, scale)) in
        model.fit.terms.iter_mut().skip(1).zip(deviations.iter().zip(scales))
    {
        row.standardized = Some(row.estimate * deviation * scale).filter(|v| v.is_finite());
    }
}

/// How close the fit at `weights` came to the exact optimum of the same rows, in the objective
/// the fit minimised.
pub fn optimality(
    weights: &Weights,
    optimum: &FitOutcome,
    train_ex: Examples<'_>,
    params: &TrainParams,
) -> Optimality {
    let (at_fit, _) = objective(weights, train_ex, params.ridge());
    let (at_optimum, _) = objective(&optimum.weights, train_ex, params.ridge());
    Optimality::new(at_fit, at_optimum)
}
