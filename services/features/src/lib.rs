//! The features service: scaling fitted on the training split only.
//!
//! `POST /v1/transforms` ([`TransformRequest`]) fits a [`Transform`] (standard, min-max or
//! none) on a split's training rows and stores it as an artifact that travels with the model.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use logitflow_core::clean::RowColumns;
use logitflow_core::scale::Transform;
use logitflow_kit::wire::{TransformInfo, TransformRequest};
use logitflow_kit::{ApiError, Config, Json, Readiness, blocking, cached_step};
use logitflow_store::{Columns, Kind, SplitPart, Store, step_key};

pub const NAME: &str = "features";

#[derive(Clone)]
pub struct AppState {
    store: Store,
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<AppState> {
        Ok(AppState { store: config.open_store()? })
    }
}

pub fn app(state: AppState) -> Router {
    Router::new().route("/v1/transforms", post(fit_transform)).with_state(state)
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

async fn fit_transform(
    State(state): State<AppState>,
    Json(request): Json<TransformRequest>,
) -> Result<Json<TransformInfo>, ApiError> {
    blocking(move || {
        let params = serde_json::json!({"scaling": request.scaling});
        let key = step_key(NAME, &[&request.split], &params);
        let info = cached_step(&state.store, &key, "transform", || {
            let columns: Columns =
                state.store.read_json(&request.split, Kind::Split, "columns.json")?;
            // Numeric features' scaling needs only sums over the rows: they stream past, twice
            // for standard scaling, and no copy of the part is made (the 201 MB file's: 64 MB).
            let transform = if columns.all_numeric() && columns.roles.is_empty() {
                Transform::fit_numeric(columns.feature_names, request.scaling, |visit| {
                    state.store.visit_split_part(&request.split, SplitPart::Train, visit)
                })?
            } else {
                // Weights, clusters and folds are not inputs of the model: out before the fit.
                let mut train = state.store.load_split_part(&request.split, SplitPart::Train)?;
                RowColumns::take(&mut train);
                let transform = Transform::fit(&train, request.scaling);
                if let Some(identifier) = transform.identifier(train.rows()) {
                    return Err(ApiError::invalid("DATA_ERROR", identifier.to_string()));
                }
                transform
            };
            let id = state.store.put_json(
                Kind::Transform,
                NAME,
                vec![request.split.clone()],
                params,
                "transform.json",
                &transform,
            )?;
            let info = TransformInfo {
                transform: id.clone(),
                scaling: transform.scaling,
                term_names: transform.term_names().to_vec(),
                offset: transform.offset,
                scale: transform.scale,
                cached: false,
            };
            Ok((id, info))
        })?;
        Ok(Json(info))
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

    #[tokio::test]
    async fn fits_on_train_only_and_caches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path())).expect("state");
        let part = |x: Vec<f64>| Dataset {
            feature_names: vec!["score".into()],
            label_name: "y".into(),
            y: vec![0.0; x.len()],
            x,
            ..Dataset::default()
        };
        let split = Split { train: part(vec![0.0, 10.0]), test: part(vec![1000.0]) };
        let id = state
            .store
            .put_split(&split, &SplitReport::default(), vec![], serde_json::json!({}))
            .expect("put");
        let app = app(state);
        let (status, body) = call(
            &app,
            "POST",
            "/v1/transforms",
            Some(serde_json::json!({"split": id, "scaling": "standard"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["offset"][0].as_f64(), body["scale"][0].as_f64()), (Some(5.0), Some(5.0)));
        let (_, again) = call(
            &app,
            "POST",
            "/v1/transforms",
            Some(serde_json::json!({"split": id, "scaling": "standard"})),
        )
        .await;
        assert_eq!(again["cached"].as_bool(), Some(true));
        let (status, body) = call(
            &app,
            "POST",
            "/v1/transforms",
            Some(serde_json::json!({"split": id, "scaling": "cubic"})),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("INVALID_FIELDS"))
        );
    }

    #[tokio::test]
    async fn levels_are_learned_on_the_training_rows_only() {
        use logitflow_core::table::ColumnKind;
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path())).expect("state");
        // The file has levels a, b and c; only a and b are in the training rows.
        let kinds = vec![
            ColumnKind::Categorical { levels: vec!["a".into(), "b".into(), "c".into()] },
            ColumnKind::Numeric,
        ];
        let part = |x: Vec<f64>| Dataset {
            feature_names: vec!["group".into(), "dose".into()],
            label_name: "y".into(),
            kinds: kinds.clone(),
            y: vec![0.0; x.len() / 2],
            x,
            ..Dataset::default()
        };
        let split =
            Split { train: part(vec![0.0, 1.0, 1.0, 2.0, 0.0, 3.0]), test: part(vec![2.0, 1.0]) };
        let id = state
            .store
            .put_split(&split, &SplitReport::default(), vec![], serde_json::json!({}))
            .expect("put");
        let (status, body) = call(
            &app(state),
            "POST",
            "/v1/transforms",
            Some(serde_json::json!({"split": id, "scaling": "none"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["term_names"],
            serde_json::json!(["group=b", "dose"]),
            "a is the reference, c was never trained on"
        );
    }

    fn split_setup() -> (tempfile::TempDir, Router, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path())).expect("state");
        let part = |x: Vec<f64>| Dataset {
            feature_names: vec!["score".into()],
            label_name: "y".into(),
            y: vec![0.0; x.len()],
            x,
            ..Dataset::default()
        };
        let split = Split { train: part(vec![0.0, 10.0]), test: part(vec![1000.0]) };
        let id = state
            .store
            .put_split(&split, &SplitReport::default(), vec![], serde_json::json!({}))
            .expect("put");
        (dir, app(state), id)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
        /// Any JSON to `POST /v1/transforms`, including a real split id among its values.
        #[test]
        fn any_json_body_gets_an_answer_never_a_5xx(
            body in logitflow_kit::testing::bodies::any_json(
                &["split", "scaling"],
                vec![serde_json::json!(split_setup().2), serde_json::json!("standard"), serde_json::json!("min_max")],
            ),
        ) {
            logitflow_kit::testing::bodies::assert_answers(|| async { let (dir, app, _) = split_setup(); (dir, app) }, "POST", "/v1/transforms", &body);
        }
    }
}
