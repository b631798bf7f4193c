//! The evaluate service: scores a model on the test split, registers it as a new version, and
//! promotes it by a stated rule.
//!
//! The rule: a new version becomes `stable` when there is no stable version yet, or when its
//! test log loss is at most the stable version's plus `promote_tolerance` (default 0.01).
//! Otherwise it becomes the `candidate`, for a person to compare and promote by hand.
//!
//! - `POST /v1/evaluations` ([`EvaluateRequest`] → [`Evaluation`])
//! - `GET /v1/models`, `GET /v1/models/{name}` ([`ModelVersions`])
//! - `POST /v1/models/{name}/promote` ([`PromoteRequest`]), `POST /v1/models/{name}/rollback`
//! - `POST /v1/models/{name}/aliases/{stable|candidate}` ([`AliasRequest`]): applies a decision
//!   that `POST /v1/evaluations` with `decide_only` made without setting an alias

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use logitflow_core::clean::RowColumns;
use logitflow_core::metrics::{
    CALIBRATION_BINS, CalibrationBin, Metrics, PrPoint, Ranking, RocPoint, calibration_bins,
    multiclass_metrics,
};
use logitflow_core::model::Model;
use logitflow_core::scale::UnseenLevels;
use logitflow_kit::wire::{
    AliasRequest, ClassCurves, EvaluateRequest, Evaluation, ModelVersions, PromoteRequest,
    RowCounts, VersionMetrics,
};
use logitflow_kit::{ApiError, Config, Json, Readiness, blocking};
use logitflow_store::registry::{CANDIDATE, Registry, STABLE, check_name};
use logitflow_store::{Kind, SplitPart, Store};
use std::sync::Arc;

pub const NAME: &str = "evaluate";

#[derive(Clone)]
pub struct AppState {
    store: Store,
    registry: Registry,
    /// Evaluations register and alias in one go; one at a time keeps their decisions coherent.
    decide: Arc<tokio::sync::Mutex<()>>,
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<AppState> {
        let store = config.open_store()?;
        Ok(AppState { registry: store.registry(), store, decide: Arc::default() })
    }
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/evaluations", post(evaluate))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{name}", get(model_versions))
        .route("/v1/models/{name}/promote", post(promote))
        .route("/v1/models/{name}/aliases/{alias}", post(set_alias))
        .route("/v1/models/{name}/rollback", post(rollback))
        .with_state(state)
}

pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(&config)?;
    logitflow_kit::serve(NAME, &config, Readiness::ready(), app(state), listener, shutdown).await?;
    Ok(())
}

/// Scores a model on rows of terms in the data's units ([`Transform::terms_of`]).
///
/// [`Transform::terms_of`]: logitflow_core::scale::Transform::terms_of
/// Also returns the probabilities and their [`Ranking`], which the curves share.
pub fn score(model: &Model, x: &[f64], y: &[f64], threshold: f64) -> (Metrics, Vec<f64>, Ranking) {
    let k = model.row_width().max(1);
    let logits: Vec<f64> = x.chunks_exact(k).map(|row| model.logit_raw(row)).collect();
    let probabilities: Vec<f64> =
        logits.iter().map(|&z| logitflow_core::logistic::sigmoid(z)).collect();
    let (metrics, ranking) = Metrics::compute_with_ranking(&probabilities, &logits, y, threshold);
    (metrics, probabilities, ranking)
}

/// Scores a K-class model on rows of terms in the data's units: its metrics
/// ([`multiclass_metrics`]) and each class's curves against the rest.
pub fn score_classes(
    model: &Model,
    x: &[f64],
    y: &[f64],
    threshold: f64,
) -> (Metrics, Vec<ClassCurves>) {
    let (width, k) = (model.row_width().max(1), model.class_count());
    let mut probabilities = vec![0.0; y.len() * k];
    for (row, out) in x.chunks_exact(width).zip(probabilities.chunks_exact_mut(k)) {
        model.probabilities_raw(row, out);
    }
    let names = model.class_list();
    let metrics = multiclass_metrics(&probabilities, y, &names, threshold);
    let curves = names
        .into_iter()
        .enumerate()
        .map(|(c, class)| {
            let scores: Vec<f64> = probabilities.iter().skip(c).step_by(k).copied().collect();
            let is_class: Vec<f64> =
                y.iter().map(|&v| f64::from(u8::from(v as usize == c))).collect();
            let ranking = Ranking::new(&scores, &is_class);
            let calibration = calibration_bins(&scores, &is_class, CALIBRATION_BINS);
            ClassCurves {
                class,
                roc: ranking.roc_curve(),
                precision_recall: ranking.precision_recall_curve(),
                calibration,
            }
        })
        .collect();
    (metrics, curves)
}

async fn evaluate(
    State(state): State<AppState>,
    Json(request): Json<EvaluateRequest>,
) -> Result<Json<Evaluation>, ApiError> {
    check_request(&request)?;
    let _one_at_a_time = state.decide.lock().await;
    blocking(move || {
        let model: Model = state.store.read_json(&request.model, Kind::Model, "model.json")?;
        let (test, unscored) = test_rows(&state.store, &model, &request.split)?;
        let terms = model
            .transform
            .design_of(&test)
            .map_err(|e| ApiError::invalid("DATA_ERROR", format!("test data: {e}")))?;
        let scores = Scores::of(&model, &terms, &test.y, request.threshold);
        let report = store_report(&state.store, &request, &scores)?;
        let decision = register_and_decide(&state.registry, &request, &report, &scores.metrics)?;
        let sample = if model.width() == 1 && model.is_numeric() {
            let step = test.rows().div_ceil(200).max(1);
            (0..test.rows()).step_by(step).map(|i| (test.x[i], test.y[i])).collect()
        } else {
            Vec::new()
        };
        // Stored and registered: the answer does not wait for the test rows' memory to be
        // given back.
        let test_rows = test.rows();
        drop(terms);
        logitflow_core::drop_in_background(test);
        let Decision { version, new_version, previous, promote, decision, alias } = decision;
        Ok(Json(Evaluation {
            name: request.name,
            version,
            new_version,
            metrics: scores.metrics,
            roc: scores.roc,
            precision_recall: scores.precision_recall,
            calibration: scores.calibration,
            previous,
            promoted: promote,
            decision,
            alias: alias.map(String::from),
            applied: !request.decide_only,
            report,
            intercept: model.intercept,
            coefficients: model.coefficients,
            sample,
            feature_names: model.feature_names,
            fit: model.fit,
            classes: model.classes,
            rows: RowCounts {
                train: model.train_rows,
                validation: model.validation_rows,
                test: test_rows,
            },
            multinomial: model.multinomial,
            class_curves: scores.class_curves,
            unscored: unscored.map(|u| u.describe()),
        }))
    })
    .await
}

/// Refuses a threshold outside [0, 1] or a negative promotion tolerance, and a bad name.
fn check_request(request: &EvaluateRequest) -> Result<(), ApiError> {
    check_name(&request.name)?;
    if !(request.threshold.is_finite() && (0.0..=1.0).contains(&request.threshold)) {
        return Err(ApiError::invalid(
            "INVALID_PARAMS",
            format!("threshold must be between 0 and 1, got {}", request.threshold),
        ));
    }
    if !(request.promote_tolerance.is_finite() && request.promote_tolerance >= 0.0) {
        return Err(ApiError::invalid(
            "INVALID_PARAMS",
            "promote_tolerance must be a finite number of 0 or more",
        ));
    }
    Ok(())
}

/// The split's test rows, without their weights, clusters or folds (which are not the model's
/// inputs), refused where they cannot be scored.
/// The test rows the model can score, and those it cannot (a level training never saw, which a
/// column of many levels leaves in a test split) left out and named.
fn test_rows(
    store: &Store,
    model: &Model,
    split: &str,
) -> Result<(logitflow_core::clean::Dataset, Option<UnseenLevels>), ApiError> {
    let mut test = store.load_split_part(split, SplitPart::Test)?;
    RowColumns::take(&mut test);
    if test.feature_names != model.feature_names {
        return Err(ApiError::invalid(
            "MISMATCHED_INPUTS",
            "the split's features differ from the model's",
        ));
    }
    if test.rows() == 0 {
        return Err(ApiError::invalid("DATA_ERROR", "the test split has no rows"));
    }
    let unscored = model.transform.keep_seen_levels(&mut test);
    if let Some(unscored) = unscored.as_ref().filter(|_| test.rows() == 0) {
        let why = format!("test data: every one of its {}", unscored.describe());
        return Err(ApiError::invalid("DATA_ERROR", why));
    }
    test.check_both_classes().map_err(|e| {
        let why = format!("test data: {e}; metrics such as AUC need both classes");
        ApiError::invalid("DATA_ERROR", why)
    })?;
    Ok((test, unscored))
}

/// A model's metrics on the test rows and its curves: ROC, precision-recall and calibration
/// for two classes, each class's against the rest for K.
struct Scores {
    metrics: Metrics,
    roc: Vec<RocPoint>,
    precision_recall: Vec<PrPoint>,
    calibration: Vec<CalibrationBin>,
    class_curves: Vec<ClassCurves>,
}

impl Scores {
    fn of(model: &Model, terms: &[f64], y: &[f64], threshold: f64) -> Scores {
        if model.multinomial.is_some() {
            let (metrics, class_curves) = score_classes(model, terms, y, threshold);
            let (roc, precision_recall, calibration) = (Vec::new(), Vec::new(), Vec::new());
            return Scores { metrics, roc, precision_recall, calibration, class_curves };
        }
        let (metrics, probabilities, ranking) = score(model, terms, y, threshold);
        let calibration = calibration_bins(&probabilities, y, CALIBRATION_BINS);
        let (roc, precision_recall) = (ranking.roc_curve(), ranking.precision_recall_curve());
        logitflow_core::drop_in_background((probabilities, ranking));
        Scores { metrics, roc, precision_recall, calibration, class_curves: Vec::new() }
    }
}

/// Stores the evaluation's report (metrics and curves); returns its id.
fn store_report(
    store: &Store,
    request: &EvaluateRequest,
    scores: &Scores,
) -> Result<String, ApiError> {
    let report_body = serde_json::json!({
        "model": request.model, "split": request.split, "metrics": scores.metrics,
        "roc": scores.roc, "precision_recall": scores.precision_recall,
        "calibration": scores.calibration, "class_curves": scores.class_curves,
    });
    Ok(store.put_json(
        Kind::Report,
        NAME,
        vec![request.model.clone(), request.split.clone()],
        serde_json::json!({"threshold": request.threshold}),
        "evaluation.json",
        &report_body,
    )?)
}

/// What registering a model came to: its version, and the decision on it against stable.
struct Decision {
    version: u32,
    new_version: bool,
    previous: Option<VersionMetrics>,
    promote: bool,
    decision: String,
    alias: Option<&'static str>,
}

/// Registers the model with its report and metrics, decides whether it replaces stable (by
/// the test log loss) and, unless only the decision is asked, moves the alias it earned.
fn register_and_decide(
    registry: &Registry,
    request: &EvaluateRequest,
    report: &str,
    metrics: &Metrics,
) -> Result<Decision, ApiError> {
    let before = registry.load()?.models.get(&request.name).cloned();
    let stable_before = before.as_ref().and_then(|e| e.resolve(STABLE)).cloned();
    let (version, new_version) = registry.register(
        &request.name,
        &request.model,
        Some(report.to_string()),
        Some(metrics.clone()),
    )?;
    let previous = stable_before
        .as_ref()
        .and_then(|s| s.metrics.clone().map(|m| VersionMetrics { version: s.version, metrics: m }));
    let already_stable = stable_before.as_ref().is_some_and(|s| s.version == version);
    let (promote, decision) = if already_stable {
        (false, format!("version {version} is already stable"))
    } else {
        let stable = previous.as_ref().map(|p| (p.version, p.metrics.log_loss));
        decide(version, metrics.log_loss, stable, request.promote_tolerance)
    };
    let alias = if promote {
        Some(STABLE)
    } else if !already_stable {
        Some(CANDIDATE)
    } else {
        None
    };
    if let Some(alias) = alias.filter(|_| !request.decide_only) {
        registry.set_alias(&request.name, alias, version)?;
    }
    Ok(Decision { version, new_version, previous, promote, decision, alias })
}

async fn list_models(State(state): State<AppState>) -> Result<Json<Vec<ModelVersions>>, ApiError> {
    blocking(move || {
        Ok(Json(
            state
                .registry
                .load()?
                .models
                .into_iter()
                .map(|(name, entry)| ModelVersions { name, entry })
                .collect(),
        ))
    })
    .await
}

async fn model_versions(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ModelVersions>, ApiError> {
    blocking(move || {
        let entry = state.registry.model(&name)?;
        Ok(Json(ModelVersions { name, entry }))
    })
    .await
}

/// The promotion rule: a new `version` with test log loss `loss` becomes stable when there is
/// no stable version with metrics yet, or when `loss` is at most the stable one's plus
/// `tolerance`; otherwise it is the candidate. Says which, and why, in words.
pub fn decide(
    version: u32,
    loss: f64,
    stable: Option<(u32, f64)>,
    tolerance: f64,
) -> (bool, String) {
    match stable {
        None => (true, format!("version {version} is the first with metrics: promoted to stable")),
        Some((stable, stable_loss)) if loss <= stable_loss + tolerance => (
            true,
            format!(
                "test log loss {loss:.4} ≤ stable v{stable}'s {stable_loss:.4} + {tolerance}: promoted to stable"
            ),
        ),
        Some((stable, stable_loss)) => (
            false,
            format!(
                "test log loss {loss:.4} > stable v{stable}'s {stable_loss:.4} + {tolerance}: kept as candidate"
            ),
        ),
    }
}

async fn promote(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<PromoteRequest>,
) -> Result<Json<ModelVersions>, ApiError> {
    let _one_at_a_time = state.decide.lock().await;
    blocking(move || {
        let entry = state.registry.model(&name)?;
        let version = match request.version {
            Some(v) => v,
            None => *entry.aliases.get(CANDIDATE).ok_or_else(|| {
                ApiError::Conflict(format!("model {name:?} has no candidate to promote"))
            })?,
        };
        let entry = state.registry.set_alias(&name, STABLE, version)?;
        Ok(Json(ModelVersions { name, entry }))
    })
    .await
}

/// Points `stable` or `candidate` at a version: what a decision made with `decide_only`
/// becomes once the caller has kept its record.
async fn set_alias(
    State(state): State<AppState>,
    Path((name, alias)): Path<(String, String)>,
    Json(request): Json<AliasRequest>,
) -> Result<Json<ModelVersions>, ApiError> {
    if alias != STABLE && alias != CANDIDATE {
        return Err(ApiError::invalid(
            "BAD_ALIAS",
            format!("{alias:?} is not an alias: use stable or candidate"),
        ));
    }
    let _one_at_a_time = state.decide.lock().await;
    blocking(move || {
        let entry = state.registry.set_alias(&name, &alias, request.version)?;
        Ok(Json(ModelVersions { name, entry }))
    })
    .await
}

async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ModelVersions>, ApiError> {
    let _one_at_a_time = state.decide.lock().await;
    blocking(move || {
        let entry = state.registry.rollback(&name)?;
        Ok(Json(ModelVersions { name, entry }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use logitflow_core::clean::{Dataset, Split};

    use logitflow_kit::testing::call;
    use logitflow_store::SplitReport;

    fn model(store: &Store, bias: f64, slope: f64) -> String {
        let m = Model::one_feature(bias, slope);
        store
            .put_json(Kind::Model, "test", vec![], serde_json::json!({}), "model.json", &m)
            .expect("model")
    }

    #[tokio::test]
    async fn registers_promotes_by_rule_and_rolls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path())).expect("state");
        let data = Dataset {
            feature_names: vec!["score".into()],
            label_name: "admitted".into(),
            x: vec![20.0, 40.0, 60.0, 80.0],
            y: vec![0.0, 0.0, 1.0, 1.0],
            ..Dataset::default()
        };
        let split = state
            .store
            .put_split(
                &Split { train: data.clone(), test: data },
                &SplitReport::default(),
                vec![],
                serde_json::json!({}),
            )
            .expect("split");
        let good = model(&state.store, -10.0, 0.2);
        let bad = model(&state.store, -10.0, 0.01);
        let better = model(&state.store, -12.5, 0.25); // same centre, sharper
        let app = app(state);
        let eval = |m: &str| serde_json::json!({"name": "admissions", "model": m, "split": split});
        let (status, first) = call(&app, "POST", "/v1/evaluations", Some(eval(&good))).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!((first["version"].as_u64(), first["promoted"].as_bool()), (Some(1), Some(true)));
        assert_eq!(first["metrics"]["accuracy"].as_f64(), Some(1.0));
        let (_, second) = call(&app, "POST", "/v1/evaluations", Some(eval(&bad))).await;
        assert_eq!(
            (second["version"].as_u64(), second["promoted"].as_bool()),
            (Some(2), Some(false)),
            "{second}"
        );
        assert!(second["decision"].as_str().is_some_and(|d| d.contains("candidate")));
        let (_, again) = call(&app, "POST", "/v1/evaluations", Some(eval(&good))).await;
        assert_eq!(
            (again["version"].as_u64(), again["new_version"].as_bool()),
            (Some(1), Some(false))
        );
        let (_, third) = call(&app, "POST", "/v1/evaluations", Some(eval(&better))).await;
        assert_eq!((third["version"].as_u64(), third["promoted"].as_bool()), (Some(3), Some(true)));
        let (status, rolled) = call(&app, "POST", "/v1/models/admissions/rollback", None).await;
        assert_eq!(
            (status, rolled["aliases"]["stable"].as_u64()),
            (StatusCode::OK, Some(1)),
            "{rolled}"
        );
        let (status, promoted) = call(
            &app,
            "POST",
            "/v1/models/admissions/promote",
            Some(serde_json::json!({"version": 2})),
        )
        .await;
        assert_eq!((status, promoted["aliases"]["stable"].as_u64()), (StatusCode::OK, Some(2)));
        let (status, _) = call(
            &app,
            "POST",
            "/v1/models/admissions/promote",
            Some(serde_json::json!({"version": 9})),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(&app, "GET", "/v1/models/nothing", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = call(
            &app,
            "POST",
            "/v1/evaluations",
            Some(serde_json::json!({"name": "../x", "model": good, "split": split})),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("BAD_MODEL_NAME"))
        );
        let (status, _) = call(
            &app,
            "POST",
            "/v1/evaluations",
            Some(serde_json::json!({"name": "m", "model": split, "split": split})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn the_rule_promotes_at_most_the_stable_loss_plus_the_tolerance_and_not_a_hair_more() {
        // Losses exact in binary, so the boundary is the boundary: 0.25 + 0.125 = 0.375.
        let (at, _) = decide(2, 0.375, Some((1, 0.25)), 0.125);
        let (above, why) =
            decide(2, f64::from_bits(0.375f64.to_bits() + 1), Some((1, 0.25)), 0.125);
        assert!(at, "equal to stable + tolerance is promoted (≤, not <)");
        assert!(!above && why.contains("kept as candidate") && why.contains("stable v1"), "{why}");
        assert!(
            decide(2, 0.3, Some((1, 0.25)), 0.125).0,
            "worse than stable but within the tolerance"
        );
        assert!(!decide(2, 0.3, Some((1, 0.25)), 0.0).0, "worse with no tolerance");
        assert!(decide(2, 0.2, Some((1, 0.25)), 0.0).0, "better");
        assert!(decide(1, 9.0, None, 0.0).0, "the first with metrics");
    }

    #[tokio::test]
    async fn a_new_version_is_judged_against_stable_not_the_latest_and_p_promotes_the_candidate() {
        let (_dir, app, _, split) = stored();
        let store = Store::open(_dir.path()).expect("store");
        // On the split (x 20 → 0, 80 → 1), log losses: good ≈ 0.018, medium ≈ 0.13, bad ≈ 0.69.
        let (good, medium, bad) =
            (model(&store, -10.0, 0.2), model(&store, -4.0, 0.08), model(&store, 0.0, 0.0));
        let eval = |m: &str| serde_json::json!({"name": "admissions", "model": m, "split": split, "promote_tolerance": 0.05});
        let (_, v1) = call(&app, "POST", "/v1/evaluations", Some(eval(&good))).await;
        let (_, v2) = call(&app, "POST", "/v1/evaluations", Some(eval(&bad))).await;
        let (_, v3) = call(&app, "POST", "/v1/evaluations", Some(eval(&medium))).await;
        let loss = |v: &serde_json::Value| v["metrics"]["log_loss"].as_f64().unwrap_or(f64::NAN);
        assert!(
            loss(&v1) + 0.05 < loss(&v3) && loss(&v3) + 0.05 < loss(&v2),
            "the fixture: {} {} {}",
            loss(&v1),
            loss(&v3),
            loss(&v2)
        );
        assert_eq!((v1["promoted"].as_bool(), v2["promoted"].as_bool()), (Some(true), Some(false)));
        // Within the tolerance of v2 (the latest) but not of v1 (stable): a candidate.
        assert_eq!(
            (v3["version"].as_u64(), v3["promoted"].as_bool()),
            (Some(3), Some(false)),
            "{v3}"
        );
        assert!(v3["decision"].as_str().is_some_and(|d| d.contains("stable v1")), "{v3}");
        // The dashboard's `P`: a promote with no version promotes the candidate, v3.
        let (status, promoted) =
            call(&app, "POST", "/v1/models/admissions/promote", Some(serde_json::json!({}))).await;
        assert_eq!(
            (status, promoted["aliases"]["stable"].as_u64()),
            (StatusCode::OK, Some(3)),
            "{promoted}"
        );
        let (status, body) =
            call(&app, "POST", "/v1/models/nothing/promote", Some(serde_json::json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }

    #[tokio::test]
    async fn decide_only_registers_and_decides_and_moves_no_alias_until_asked() {
        let (_dir, app, good, split) = stored();
        let body = serde_json::json!({"name": "admissions", "model": good, "split": split, "decide_only": true});
        let (status, decided) = call(&app, "POST", "/v1/evaluations", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{decided}");
        assert_eq!(
            (decided["version"].as_u64(), decided["promoted"].as_bool()),
            (Some(1), Some(true))
        );
        assert_eq!(
            (decided["alias"].as_str(), decided["applied"].as_bool()),
            (Some("stable"), Some(false))
        );
        let (_, versions) = call(&app, "GET", "/v1/models/admissions", None).await;
        assert_eq!(
            versions["aliases"],
            serde_json::json!({}),
            "nothing is promoted yet: {versions}"
        );
        let (status, applied) = call(
            &app,
            "POST",
            "/v1/models/admissions/aliases/stable",
            Some(serde_json::json!({"version": 1})),
        )
        .await;
        assert_eq!(
            (status, applied["aliases"]["stable"].as_u64()),
            (StatusCode::OK, Some(1)),
            "{applied}"
        );
        let (status, body) = call(
            &app,
            "POST",
            "/v1/models/admissions/aliases/latest",
            Some(serde_json::json!({"version": 1})),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("BAD_ALIAS"))
        );
        let (status, _) = call(
            &app,
            "POST",
            "/v1/models/admissions/aliases/candidate",
            Some(serde_json::json!({"version": 7})),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    fn stored() -> (tempfile::TempDir, Router, String, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path())).expect("state");
        let data = Dataset {
            feature_names: vec!["score".into()],
            label_name: "admitted".into(),
            x: vec![20.0, 80.0],
            y: vec![0.0, 1.0],
            ..Dataset::default()
        };
        let split = state
            .store
            .put_split(
                &Split { train: data.clone(), test: data },
                &SplitReport::default(),
                vec![],
                serde_json::json!({}),
            )
            .expect("split");
        let m = model(&state.store, -10.0, 0.2);
        (dir, app(state), m, split)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
        /// Any JSON to evaluate's JSON routes, with a real model and split id among the values.
        #[test]
        fn any_json_body_gets_an_answer_never_a_5xx(
            body in logitflow_kit::testing::bodies::any_json(
                &["name", "model", "split", "threshold", "promote_tolerance", "version"],
                { let (_dir, _, m, split) = stored(); vec![serde_json::json!(m), serde_json::json!(split), serde_json::json!("admissions")] },
            ),
            route in 0usize..3,
        ) {
            let path = ["/v1/evaluations", "/v1/models/admissions/promote", "/v1/models/admissions/rollback"][route];
            logitflow_kit::testing::bodies::assert_answers(|| async { let (dir, app, _, _) = stored(); (dir, app) }, "POST", path, &body);
        }
    }
}
