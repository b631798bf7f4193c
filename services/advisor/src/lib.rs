//! The advisor service: an application over serve. For one applicant's values it answers the
//! probability, the decision at a threshold, and — the inverse of the logit — the value of the
//! first feature needed to reach a target probability, with the model version that answered.
//! For a K-class model: the probability of the class asked (default: the most probable), the
//! most probable class as the decision, and the value of the feature from which the class asked
//! is the most probable.
//!
//! `POST /v1/advice` ([`AdviceRequest`] → [`Advice`]). Serve is found at
//! `LOGITFLOW_SERVE_URL`; until then the service is not ready.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use logitflow_core::logistic::value_reaching;
use logitflow_core::scale::{Value, level_term};
use logitflow_kit::client::{ServiceClient, path_segment};
use logitflow_kit::wire::{
    Advice, AdviceRequest, InferRequest, InferResponse, ModelMetadata, Needed,
};
use logitflow_kit::{ApiError, Config, Json, Readiness};

pub const NAME: &str = "advisor";
/// The model asked when a request names none.
pub const DEFAULT_MODEL: &str = "admissions";

#[derive(Clone)]
pub struct AppState {
    serve: Option<ServiceClient>,
}

impl AppState {
    pub fn new(config: &Config) -> AppState {
        AppState { serve: config.serve_client() }
    }
}

pub fn app(state: AppState) -> Router {
    Router::new().route("/v1/advice", post(advice)).with_state(state)
}

pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(&config);
    let readiness = if state.serve.is_some() {
        Readiness::ready()
    } else {
        Readiness::not_ready(format!("{} is not set", logitflow_kit::SERVE_URL_ENV))
    };
    logitflow_kit::serve(NAME, &config, readiness, app(state), listener, shutdown).await?;
    Ok(())
}

async fn advice(
    State(state): State<AppState>,
    Json(request): Json<AdviceRequest>,
) -> Result<Json<Advice>, ApiError> {
    let serve = state
        .serve
        .as_ref()
        .ok_or_else(|| ApiError::NotReady("serve's address is not configured".into()))?;
    check_probabilities(&request)?;
    let name = request.model.clone().unwrap_or_else(|| DEFAULT_MODEL.to_string());
    let meta: ModelMetadata =
        serve.get(&format!("/v2/models/{}/versions/stable", path_segment(&name))).await?;
    if request.inputs.len() != meta.feature_names.len() {
        return Err(ApiError::invalid(
            "INVALID_INPUT",
            format!(
                "expected {} value(s): {}",
                meta.feature_names.len(),
                meta.feature_names.join(", ")
            ),
        ));
    }
    let solve_for = feature_to_solve_for(&meta, request.feature.as_deref())?;
    // Ask for the exact version whose coefficients we hold, so the answer is coherent even if
    // a promotion happens between the two calls.
    let version = meta.versions.first().cloned().unwrap_or_else(|| "stable".into());
    let answer: InferResponse = serve
        .post(
            &format!("/v2/models/{}/versions/{version}/infer", path_segment(&name)),
            &InferRequest::named(&meta.feature_names, &request.inputs),
        )
        .await?;
    if !meta.class_estimates.is_empty() {
        return advise_classes(&meta, &request, (name, answer), solve_for).map(Json);
    }
    let probability = answer
        .outputs
        .first()
        .and_then(|o| o.data.numbers().first())
        .copied()
        .ok_or_else(|| ApiError::Internal("serve answered no probability".into()))?;
    let needed = request
        .target
        .zip(solve_for)
        .and_then(|(target, j)| needed_value(&meta, &request.inputs, target, j));
    let positive = probability >= request.threshold;
    let (negative_word, positive_word) = match &meta.classes {
        Some(c) => (c.negative.clone(), c.positive.clone()),
        None => ("negative".to_string(), "positive".to_string()),
    };
    Ok(Json(Advice {
        model_name: name,
        model_version: answer.model_version,
        probability,
        threshold: request.threshold,
        positive,
        decision: if positive { positive_word } else { negative_word },
        needed,
        class: None,
    }))
}

/// Refuses a threshold outside [0, 1] or a target probability outside (0, 1).
fn check_probabilities(request: &AdviceRequest) -> Result<(), ApiError> {
    if !(request.threshold.is_finite() && (0.0..=1.0).contains(&request.threshold)) {
        return Err(ApiError::invalid(
            "INVALID_PARAMS",
            format!("threshold must be between 0 and 1, got {}", request.threshold),
        ));
    }
    if let Some(target) = request.target
        && !(target > 0.0 && target < 1.0)
    {
        return Err(ApiError::invalid(
            "INVALID_PARAMS",
            format!("target must be strictly between 0 and 1, got {target}"),
        ));
    }
    Ok(())
}

/// The feature to solve for: the one asked (a numeric one of the model's), else the first
/// numeric one; `None` where the model has none.
fn feature_to_solve_for(
    meta: &ModelMetadata,
    asked: Option<&str>,
) -> Result<Option<usize>, ApiError> {
    let is_text = |j: usize| meta.inputs.get(j).is_some_and(|i| i.datatype == "BYTES");
    let Some(f) = asked else {
        return Ok((0..meta.feature_names.len()).find(|&j| !is_text(j)));
    };
    let j = meta.feature_names.iter().position(|n| n == f).ok_or_else(|| {
        ApiError::invalid(
            "INVALID_INPUT",
            format!("feature {f:?} is not one of the model's: {}", meta.feature_names.join(", ")),
        )
    })?;
    if is_text(j) {
        return Err(ApiError::invalid(
            "INVALID_INPUT",
            format!("feature {f:?} is categorical; the value needed is solved for a numeric one"),
        ));
    }
    Ok(Some(j))
}

/// The value of feature `j` at which a two-class model's probability is `target`, the other
/// `inputs` held; `None` where the feature's coefficient is 0 (no value reaches it).
fn needed_value(meta: &ModelMetadata, inputs: &[Value], target: f64, j: usize) -> Option<Needed> {
    let feature = &meta.feature_names[j];
    let theta = meta.coefficients.get(feature)?;
    // The rest of the logit: the intercept, every other numeric feature's term, and the
    // term of each text feature's level (none for the reference level).
    let mut rest = meta.intercept;
    for (k, (name, value)) in meta.feature_names.iter().zip(inputs).enumerate() {
        if k == j {
            continue;
        }
        rest += match value {
            Value::Number(v) => meta.coefficients.get(name).unwrap_or(0.0) * v,
            Value::Text(level) => {
                meta.coefficients.get(&level_term(name, level.trim())).unwrap_or(0.0)
            }
        };
    }
    let value = value_reaching(target, rest, theta)?;
    Some(Needed { feature: feature.clone(), target, value })
}

/// Advice from a K-class model: the probability of the class asked (default: the most
/// probable), the most probable class as the decision, and the value of feature `solve_for`
/// from which on the class asked is the most probable, the other features held.
fn advise_classes(
    meta: &ModelMetadata,
    request: &AdviceRequest,
    (name, answer): (String, InferResponse),
    solve_for: Option<usize>,
) -> Result<Advice, ApiError> {
    let classes: Vec<&str> = meta.class_estimates.iter().map(|e| e.class.as_str()).collect();
    let probabilities = answer
        .outputs
        .iter()
        .find(|o| o.name == "probability")
        .map(|o| o.data.numbers())
        .unwrap_or_default();
    if probabilities.len() != classes.len() {
        return Err(ApiError::Internal(format!(
            "serve answered {} probabilities for {} classes",
            probabilities.len(),
            classes.len()
        )));
    }
    let best = logitflow_core::metrics::most_probable(probabilities);
    let asked = match &request.class {
        Some(class) => classes.iter().position(|c| c == class).ok_or_else(|| {
            ApiError::invalid(
                "INVALID_INPUT",
                format!("class {class:?} is not one of the model's: {}", classes.join(", ")),
            )
        })?,
        None => best,
    };
    let needed =
        solve_for.and_then(|j| value_making_most_probable(meta, &request.inputs, j, asked));
    Ok(Advice {
        model_name: name,
        model_version: answer.model_version,
        probability: probabilities[asked],
        threshold: request.threshold,
        positive: asked == best,
        decision: classes[best].to_string(),
        needed,
        class: Some(classes[asked].to_string()),
    })
}

/// The value of feature `j` nearest its value in `inputs` at which class `class` is the most
/// probable, the other inputs held; with the class's probability there. Each class's logit is
/// a line in that value, and the class is the most probable on an interval where its line is
/// above every other: `None` when there is no such interval.
fn value_making_most_probable(
    meta: &ModelMetadata,
    inputs: &[Value],
    j: usize,
    class: usize,
) -> Option<Needed> {
    let feature = &meta.feature_names[j];
    // Each class's logit as rest + slope·x.
    let lines: Vec<(f64, f64)> = meta
        .class_estimates
        .iter()
        .map(|e| {
            let mut rest = e.intercept;
            for (k, (name, value)) in meta.feature_names.iter().zip(inputs).enumerate() {
                rest += match value {
                    _ if k == j => 0.0,
                    Value::Number(v) => e.coefficients.get(name).unwrap_or(0.0) * v,
                    Value::Text(level) => {
                        e.coefficients.get(&level_term(name, level.trim())).unwrap_or(0.0)
                    }
                };
            }
            (rest, e.coefficients.get(feature).unwrap_or(0.0))
        })
        .collect();
    let (mut low, mut high) = (f64::NEG_INFINITY, f64::INFINITY);
    let (rest, slope) = lines[class];
    for &(other_rest, other_slope) in
        lines.iter().enumerate().filter(|&(k, _)| k != class).map(|(_, line)| line)
    {
        // rest + slope·x ≥ other_rest + other_slope·x
        let (d0, d1) = (rest - other_rest, slope - other_slope);
        match d1 {
            d1 if d1 > 0.0 => low = low.max(-d0 / d1),
            d1 if d1 < 0.0 => high = high.min(-d0 / d1),
            _ if d0 < 0.0 => return None,
            _ => {}
        }
    }
    let now = match inputs.get(j) {
        Some(Value::Number(v)) => *v,
        _ => return None,
    };
    if low > high {
        return None;
    }
    let value = now.clamp(low, high);
    let mut logits: Vec<f64> = lines.iter().map(|(r, s)| r + s * value).collect();
    let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    logits.iter_mut().for_each(|z| *z = (*z - top).exp());
    let sum: f64 = logits.iter().sum();
    Some(Needed { feature: feature.clone(), target: logits[class] / sum, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use logitflow_kit::testing::call;

    #[tokio::test]
    async fn advises_probability_decision_and_needed_score() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_home(dir.path());
        config.serve_url =
            Some(logitflow_serve::testing::spawn_with_worked_example(dir.path()).await);
        let app = app(AppState::new(&config));
        let (status, advice) = call(
            &app,
            "POST",
            "/v1/advice",
            Some(serde_json::json!({"inputs": [80.0], "target": 0.5})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{advice}");
        assert!((advice["probability"].as_f64().unwrap_or(0.0) - 0.99752737684).abs() < 1e-9);
        assert_eq!(
            (advice["positive"].as_bool(), advice["model_version"].as_str()),
            (Some(true), Some("1"))
        );
        assert!((advice["needed"]["value"].as_f64().unwrap_or(0.0) - 50.0).abs() < 1e-9);
        let (status, _) =
            call(&app, "POST", "/v1/advice", Some(serde_json::json!({"inputs": [80.0, 1.0]})))
                .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = call(
            &app,
            "POST",
            "/v1/advice",
            Some(serde_json::json!({"inputs": [80.0], "target": 1.0})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = call(
            &app,
            "POST",
            "/v1/advice",
            Some(serde_json::json!({"inputs": [80.0], "model": "nope"})),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(
            &app,
            "POST",
            "/v1/advice",
            Some(serde_json::json!({"inputs": [80.0], "model": "admissions?x="})),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "the name is one path segment, not a query");
    }

    /// A K-class model (logits 0, −2 + x, −6 + 2x for A, B, C): the class asked's probability,
    /// the most probable class as the decision, and where the class asked becomes the most
    /// probable, with its probability there.
    #[tokio::test]
    async fn a_k_class_model_advises_a_class_and_where_it_becomes_the_most_probable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_home(dir.path());
        config.serve_url =
            Some(logitflow_serve::testing::spawn_with_worked_example(dir.path()).await);
        let app = app(AppState::new(&config));
        let softmax = |z: [f64; 3]| {
            let sum: f64 = z.iter().map(|v| v.exp()).sum();
            z.map(|v| v.exp() / sum)
        };
        let body = serde_json::json!({"model": "grades", "inputs": [1.0], "class": "C"});
        let (status, advice) = call(&app, "POST", "/v1/advice", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{advice}");
        assert!(
            (advice["probability"].as_f64().unwrap_or(0.0) - softmax([0.0, -1.0, -4.0])[2]).abs()
                < 1e-12,
            "{advice}"
        );
        assert_eq!(
            (advice["decision"].as_str(), advice["positive"].as_bool(), advice["class"].as_str()),
            (Some("A"), Some(false), Some("C"))
        );
        // C's line passes B's at x = 4 (A's at 3): from there on C is the most probable.
        assert!(
            (advice["needed"]["value"].as_f64().unwrap_or(0.0) - 4.0).abs() < 1e-12,
            "{advice}"
        );
        assert!(
            (advice["needed"]["target"].as_f64().unwrap_or(0.0) - softmax([0.0, 2.0, 2.0])[2])
                .abs()
                < 1e-12,
            "{advice}"
        );
        // B at x = 3 is the most probable already: the value given is the answer.
        let body = serde_json::json!({"model": "grades", "inputs": [3.0], "class": "B"});
        let (_, advice) = call(&app, "POST", "/v1/advice", Some(body)).await;
        assert_eq!(
            (advice["decision"].as_str(), advice["positive"].as_bool()),
            (Some("B"), Some(true)),
            "{advice}"
        );
        assert_eq!(advice["needed"]["value"].as_f64(), Some(3.0), "{advice}");
        let body = serde_json::json!({"model": "grades", "inputs": [3.0], "class": "D"});
        let (status, advice) = call(&app, "POST", "/v1/advice", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{advice}");
        assert_eq!(advice["error"], "class \"D\" is not one of the model's: A, B, C", "{advice}");
    }

    #[tokio::test]
    async fn the_needed_value_of_a_scaled_model_of_three_features_gives_the_target_when_fed_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_home(dir.path());
        config.serve_url =
            Some(logitflow_serve::testing::spawn_with_worked_example(dir.path()).await);
        let app = app(AppState::new(&config));
        for (feature, j) in [("a", 0), ("c", 2)] {
            let body = serde_json::json!({"model": "scaled", "inputs": [12.0, -4.0, 150.0], "target": 0.8, "feature": feature});
            let (status, advice) = call(&app, "POST", "/v1/advice", Some(body)).await;
            assert_eq!(status, StatusCode::OK, "{advice}");
            let needed = advice["needed"]["value"].as_f64().expect("a needed value");
            // The rest of the logit holds the other two features' terms, in the data's units.
            let mut inputs = vec![12.0, -4.0, 150.0];
            inputs[j] = needed;
            let (_, again) = call(
                &app,
                "POST",
                "/v1/advice",
                Some(serde_json::json!({"model": "scaled", "inputs": inputs})),
            )
            .await;
            let p = again["probability"].as_f64().unwrap_or(f64::NAN);
            assert!((p - 0.8).abs() < 1e-9, "{feature} = {needed} gives {p}, not the target 0.8");
        }
    }

    #[tokio::test]
    async fn text_features_take_their_level_and_the_needed_value_solves_for_a_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_home(dir.path());
        config.serve_url =
            Some(logitflow_serve::testing::spawn_with_worked_example(dir.path()).await);
        let app = app(AppState::new(&config));
        let body = serde_json::json!({"model": "credit", "inputs": ["Yes", 1500.0], "target": 0.5});
        let (status, advice) = call(&app, "POST", "/v1/advice", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{advice}");
        let expected = logitflow_core::logistic::sigmoid(-10.0 - 0.7 + 0.005 * 1500.0);
        assert!(
            (advice["probability"].as_f64().unwrap_or(0.0) - expected).abs() < 1e-12,
            "{advice}"
        );
        // The decision in the data's words; logit(0.5) = 0 = −10.7 + 0.005·balance.
        assert_eq!(advice["decision"], "No");
        assert_eq!(advice["needed"]["feature"], "balance");
        assert!(
            (advice["needed"]["value"].as_f64().unwrap_or(0.0) - 2140.0).abs() < 1e-9,
            "{advice}"
        );
        let body = serde_json::json!({"model": "credit", "inputs": ["Yes", 1500.0], "target": 0.5, "feature": "student"});
        let (status, advice) = call(&app, "POST", "/v1/advice", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{advice}");
        let body = serde_json::json!({"model": "credit", "inputs": ["Sometimes", 1500.0]});
        let (status, advice) = call(&app, "POST", "/v1/advice", Some(body)).await;
        assert_eq!(
            (status, advice["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("UNKNOWN_LEVEL")),
            "{advice}"
        );
    }

    #[tokio::test]
    async fn without_serve_it_says_not_ready() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = app(AppState::new(&Config::for_home(dir.path())));
        let (status, body) =
            call(&app, "POST", "/v1/advice", Some(serde_json::json!({"inputs": [80.0]}))).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("NOT_READY"))
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, ..Default::default() })]
        /// Any JSON to `POST /v1/advice`, with a real serve behind it.
        #[test]
        fn any_json_body_gets_an_answer_never_a_5xx(
            body in logitflow_kit::testing::bodies::any_json(
                &["inputs", "features", "target", "model", "version", "threshold"],
                vec![serde_json::json!([80.0]), serde_json::json!({"score": 80.0}), serde_json::json!(0.5)],
            ),
        ) {
            logitflow_kit::testing::bodies::assert_answers(
                || async {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let mut config = Config::for_home(dir.path());
                    config.serve_url = Some(logitflow_serve::testing::spawn_with_worked_example(dir.path()).await);
                    let app = app(AppState::new(&config));
                    (dir, app)
                },
                "POST",
                "/v1/advice",
                &body,
            );
        }
    }
}
