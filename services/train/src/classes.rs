//! K-class fits (a label of K ≥ 3 classes): [`train_classes`] fits the multinomial model by
//! Newton's method, reference-coded with a coefficient table per class when unpenalised and
//! symmetric under an L2 penalty ([`logitflow_core::logistic::multinomial`]).

use super::{FitInputs, Job, Loaded};
use logitflow_core::inference::{FitStatistics, Optimality, separating_term};
use logitflow_core::logistic::multinomial::{
    ClassModel, Coding, Multinomial, MultinomialFit, SgdSchedule, fit_multinomial,
    fit_multinomial_lbfgs, fit_multinomial_sgd, mean_objective, multinomial_statistics,
};
use logitflow_core::logistic::{
    AUTO_NEWTON_TERMS, ClassWeight, Covariance, EpochEvent, Examples, Penalty, Solver,
    SolverChoice, StopReason, TrainParams, Weights,
};
use logitflow_core::model::Model;
use logitflow_core::scale::Transform;
use logitflow_core::table::Classes;
use logitflow_kit::ApiError;
use logitflow_kit::wire::{TrainEvent, TrainRequest};
use logitflow_store::Store;
use std::sync::atomic::{AtomicBool, Ordering};

/// Fits the K-class model of `inputs`, whose label has the classes `classes`, and stores it
/// with its curve, as the binary fit does.
pub(crate) fn train_classes(
    store: &Store,
    request: &TrainRequest,
    inputs: FitInputs,
    classes: Classes,
    (params_json, key): (&serde_json::Value, &str),
    job: &Job,
) -> Result<Option<TrainEvent>, ApiError> {
    let FitInputs { training_rows: mut rows, transform, loaded } = inputs;
    check_params(&request.params, &rows, &classes)?;
    if transform.dense_terms() < transform.terms() {
        return Err(ApiError::invalid(
            "SPARSE_TERMS",
            format!(
                "a model of {} classes cannot yet hold sparse terms (a text column of more than {} levels); two classes can",
                classes.count(),
                logitflow_core::scale::MAX_DENSE_LEVELS
            ),
        ));
    }
    let (solver, solver_choice) = choose_solver(
        request.params.solver,
        classes.count(),
        transform.terms(),
        request.params.ridge(),
    );
    let params = TrainParams { solver, ..request.params.clone() };
    let coding = coding_of(&params, &classes);
    let k = transform.terms();
    let unencodable =
        |e: logitflow_core::scale::EncodeError| ApiError::invalid("DATA_ERROR", e.to_string());
    let mut x = transform.take_terms(&mut rows).map_err(unencodable)?;
    let names = classes.names();
    // A penalised likelihood has its maximum whatever the data: separation is not looked for.
    let (unpenalised, scaled) = (params.ridge() == 0.0, matches!(loaded, Loaded::Scaled(_)));
    let separation = if unpenalised {
        separated_class(&mut x, &rows.y, &transform, (&names, scaled))
    } else {
        None
    };
    // The check leaves the rows in the data's units; rows loaded scaled and not checked are so.
    if unpenalised || !scaled {
        transform.scale_in_place(&mut x);
    }
    let ex = Examples::new(&x, &rows.y, k);
    let started = std::time::Instant::now();
    let on_epoch = |event: &EpochEvent| job.push(TrainEvent::Epoch(event.clone()));
    let fit = fit_with(&params, ex, (classes.count(), coding), &job.cancel, on_epoch);
    let solve_ms = started.elapsed().as_secs_f64() * 1e3;
    let cancelled = fit.stop_reason == StopReason::Cancelled;
    if cancelled && !job.keep_best.load(Ordering::Relaxed) {
        return Ok(None);
    }
    // Newton's Hessian turns singular as estimates grow without bound: a combination of terms
    // separates a class, where no one term does.
    let separation = separation.or_else(|| {
        (fit.stop_reason == StopReason::Separated).then(|| {
            "a combination of terms separates a class from the others: the likelihood has no finite maximum, \
             and newton's Hessian became singular as the estimates grew"
                .to_string()
        })
    });
    let stop_reason = if separation.is_some() { StopReason::Separated } else { fit.stop_reason };
    let lineage = super::lineage_of(store, request, params_json);
    let epochs = fit.curve.len();
    let label = rows.label_name.clone();
    let mut model = Model::new(
        transform,
        Weights::zeros(k),
        label,
        params.clone(),
        stop_reason,
        epochs,
        rows.rows(),
        lineage,
    );
    model.fit.terms = Vec::new();
    model.fit.separation = separation;
    model.fit.solver_choice = solver_choice;
    let class_model = class_report(&mut model, (&fit, ex), (&params, coding), &classes);
    model.classes = Some(classes);
    model.multinomial = Some(class_model);
    let model_id =
        super::store_model(store, request, (params_json, key), &model, (fit.curve, cancelled))?;
    Ok(Some(super::fresh_model(model_id, stop_reason, epochs, solve_ms)))
}

/// How the classes' blocks are coded: one per class under a penalty (as scikit-learn and
/// glmnet), else against a reference class, the first or the one named.
fn coding_of(params: &TrainParams, classes: &Classes) -> Coding {
    match (params.ridge() > 0.0, &params.reference) {
        (true, _) => Coding::Symmetric,
        (false, Some(name)) => {
            Coding::Reference { class: classes.names().iter().position(|c| c == name).unwrap_or(0) }
        }
        (false, None) => Coding::Reference { class: 0 },
    }
}

/// The fit by `params.solver`: the seed's per-sample rule, L-BFGS, or newton.
fn fit_with(
    params: &TrainParams,
    ex: Examples<'_>,
    (classes, coding): (usize, Coding),
    cancel: &AtomicBool,
    on_epoch: impl FnMut(&EpochEvent),
) -> MultinomialFit {
    match params.solver {
        Solver::Sgd => {
            fit_multinomial_sgd(ex, classes, (params.ridge(), schedule(params)), cancel, on_epoch)
        }
        Solver::Lbfgs => {
            let limits = (params.ridge(), params.tolerance, params.epochs);
            fit_multinomial_lbfgs(ex, (classes, coding), limits, cancel, on_epoch)
        }
        _ => fit_multinomial(ex, (classes, coding), params.ridge(), cancel, on_epoch),
    }
}

/// The class model of `fit` and the report beyond it: for sgd how far above newton's optimum
/// it stopped, and the tables with their statistics, or why they are withheld.
fn class_report(
    model: &mut Model,
    (fit, ex): (&MultinomialFit, Examples<'_>),
    (params, coding): (&TrainParams, Coding),
    classes: &Classes,
) -> ClassModel {
    let mut class_model = ClassModel::new(fit, &model.transform, &classes.several);
    if params.solver == Solver::Sgd && model.fit.separation.is_none() {
        // How far the per-sample fit stopped from the optimum newton finds on the same rows.
        let optimum = fit_multinomial(
            ex,
            (classes.count(), coding),
            params.ridge(),
            &AtomicBool::new(false),
            |_| {},
        );
        if optimum.stop_reason == StopReason::Converged {
            let at = |m: &Multinomial| mean_objective(m, ex, params.ridge());
            model.fit.optimality = Some(Optimality::new(at(&fit.model), at(&optimum.model)));
        }
    }
    match withheld(params, model.stop_reason, model.fit.separation.is_some()) {
        Some(note) => model.fit.statistics_note = Some(note),
        None => match multinomial_statistics(fit, &model.transform, model.transform.term_names()) {
            Some(tables) => {
                class_model.tables = tables;
                model.fit.fit_statistics =
                    Some(FitStatistics::of_classes(fit.loss_sum, ex.y, classes.count(), ex.d));
            }
            None => {
                model.fit.statistics_note =
                    Some("not given: the Hessian is singular (collinear terms, or a level no training row shows)".into());
            }
        },
    }
    if class_model.tables.is_empty() {
        class_model.tables = class_model.estimates_only();
    }
    class_model
}

/// The first class that one term separates from the others, in words: looked for in the data's
/// units, so rows loaded scaled (`scaled`) are unscaled first, and left so.
fn separated_class(
    x: &mut [f64],
    y: &[f64],
    transform: &Transform,
    (names, scaled): (&[&str], bool),
) -> Option<String> {
    let k = transform.terms();
    if scaled {
        for row in x.chunks_exact_mut(k.max(1)) {
            for ((v, offset), scale) in row.iter_mut().zip(&transform.offset).zip(&transform.scale)
            {
                *v = *v * scale + offset;
            }
        }
    }
    (0..names.len()).find_map(|c| {
        let one_vs_rest: Vec<f64> =
            y.iter().map(|&v| f64::from(u8::from(v as usize == c))).collect();
        let rest = format!("not {}", names[c]);
        separating_term(x, &one_vs_rest, k, transform.term_names(), [&rest, names[c]])
    })
}

/// The solver that runs for a K-class model of `terms` terms, and for `auto` the choice and
/// why: newton below [`AUTO_NEWTON_TERMS`] parameters ((K−1) blocks of terms and an
/// intercept; K under a penalty), L-BFGS from there, as for two classes.
fn choose_solver(
    asked: Solver,
    classes: usize,
    terms: usize,
    ridge: f64,
) -> (Solver, Option<SolverChoice>) {
    if asked != Solver::Auto {
        return (asked, None);
    }
    let blocks = if ridge > 0.0 { classes } else { classes - 1 };
    let parameters = blocks * (terms + 1);
    let reason = format!("{classes} classes, {parameters} parameters");
    let choice = if parameters < AUTO_NEWTON_TERMS {
        SolverChoice { solver: Solver::Newton, reason }
    } else {
        SolverChoice {
            solver: Solver::Lbfgs,
            reason: format!("{reason}, too many for newton's Hessian"),
        }
    };
    (choice.solver, Some(choice))
}

/// The binary sgd's step and stop parameters, for the K-class one.
fn schedule(params: &TrainParams) -> SgdSchedule {
    SgdSchedule {
        learning_rate: params.learning_rate,
        lr_decay: params.lr_decay,
        epochs: params.epochs,
        tolerance: params.tolerance,
        patience: params.patience,
        seed: params.seed,
    }
}

/// Why the per-class tables have no standard errors, if they have none by the fit's kind.
fn withheld(params: &TrainParams, stop_reason: StopReason, separated: bool) -> Option<String> {
    if separated {
        Some("not given: a class is separated from the others, so the estimates and their standard errors are not finite".into())
    } else if params.ridge() > 0.0 {
        Some(format!(
            "not given with a penalty (L2, λ = {}): the penalty shrinks the estimates, and the unpenalised theory's standard errors, p-values and intervals do not hold",
            params.ridge()
        ))
    } else if params.solver == Solver::Sgd {
        Some(format!(
            "given for an exact, converged fit: this sgd fit {}; train with `solver` newton for them",
            stop_reason.describe()
        ))
    } else if stop_reason != StopReason::Converged {
        Some(format!("given for a converged fit: this fit {}", stop_reason.describe()))
    } else {
        None
    }
}

/// Refuses what a K-class fit does not take yet, naming it.
fn check_params(
    params: &TrainParams,
    rows: &logitflow_core::clean::Dataset,
    classes: &Classes,
) -> Result<(), ApiError> {
    let refuse = |what: &str| {
        Err(ApiError::invalid(
            "INVALID_PARAMS",
            format!("the label {:?} has {} classes; {what}", rows.label_name, classes.count()),
        ))
    };
    if !matches!(params.solver, Solver::Auto | Solver::Newton | Solver::Lbfgs | Solver::Sgd) {
        return refuse(&format!(
            "K-class models are fitted by newton, lbfgs (or auto) or sgd, not {}",
            params.solver
        ));
    }
    if matches!(params.penalty, Penalty::L1 | Penalty::Elasticnet) || params.cv.is_some() {
        return refuse("K-class models take an L2 penalty (l2), not an L1 or elastic-net path");
    }
    if params.class_weight != ClassWeight::None {
        return refuse("class weights are for two classes");
    }
    if params.covariance != Covariance::Nonrobust {
        return refuse("K-class standard errors are from the inverse Hessian (nonrobust) only");
    }
    if !rows.roles.is_empty() {
        return refuse(
            "weights, offsets, clusters and fold columns are not taken with K classes yet",
        );
    }
    if let Some(reference) = params.reference.as_deref().filter(|r| !classes.names().contains(r)) {
        return refuse(&format!(
            "the reference {reference:?} is not one of them ({})",
            classes.names().join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// auto counts a K-class model's parameters, K−1 blocks unpenalised and K under a penalty,
    /// and hands newton's Hessian over to L-BFGS where two classes would.
    #[test]
    fn auto_counts_every_class_block_of_parameters() {
        assert_eq!(choose_solver(Solver::Newton, 7, 500, 0.0), (Solver::Newton, None));
        let (solver, choice) = choose_solver(Solver::Auto, 7, 5, 0.0);
        assert_eq!(
            (solver, choice.map(|c| c.reason)),
            (Solver::Newton, Some("7 classes, 36 parameters".to_string()))
        );
        // 5 classes of 40 terms: 4 × 41 = 164 parameters unpenalised, 5 × 41 = 205 penalised.
        assert_eq!(choose_solver(Solver::Auto, 5, 40, 0.0).0, Solver::Newton);
        let (solver, choice) = choose_solver(Solver::Auto, 5, 40, 1e-3);
        assert_eq!(solver, Solver::Lbfgs);
        assert_eq!(
            choice.map(|c| c.reason),
            Some("5 classes, 205 parameters, too many for newton's Hessian".to_string())
        );
    }
}
