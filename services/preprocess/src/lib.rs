//! The preprocess service: schema and type checks, missing values, bounds, duplicates, and the
//! seeded, stratified train/test split.
//!
//! `POST /v1/splits` ([`SplitRequest`]) turns a dataset artifact into a split artifact with a
//! report of the rows kept and dropped, by reason, with line numbers ([`SplitInfo`]).

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use logitflow_core::clean::{Split, align_levels, clean, stratified_split};
use logitflow_core::store::{SplitReport, Store, step_key};
use logitflow_kit::wire::{SplitInfo, SplitRequest};
use logitflow_kit::{ApiError, Config, Json, Readiness, blocking, cached_step};

pub const NAME: &str = "preprocess";

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
    Router::new().route("/v1/splits", post(split)).with_state(state)
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

async fn split(State(state): State<AppState>, Json(request): Json<SplitRequest>) -> Result<Json<SplitInfo>, ApiError> {
    if !(request.test_fraction.is_finite() && request.test_fraction > 0.0 && request.test_fraction < 1.0) && request.test_dataset.is_none()
    {
        return Err(ApiError::invalid(
            "INVALID_PARAMS",
            format!("test_fraction must be above 0 and below 1, got {}", request.test_fraction),
        ));
    }
    blocking(move || {
        let params = serde_json::json!({"clean": request.clean, "test_fraction": request.test_fraction, "seed": request.seed});
        let mut inputs = vec![request.dataset.as_str()];
        inputs.extend(request.test_dataset.as_deref());
        let key = step_key(NAME, &inputs, &params);
        cached_step(&state.store, &key, "split", || make_split(&state.store, &request, &inputs, params)).map(Json)
    })
    .await
}

/// Cleans the dataset (and the test dataset, if any), splits, and stores the split.
fn make_split(store: &Store, request: &SplitRequest, inputs: &[&str], params: serde_json::Value) -> Result<(String, SplitInfo), ApiError> {
    let raw = store.load_table(&request.dataset)?;
    let (data, report) = clean(&raw, &request.clean)?;
    // Each copy of the rows goes as soon as the next is made: a 1M × 10 table is 88 MB a copy.
    // (The cleaned data keeps the raw table's column names.)
    drop(raw);
    let (split, test_report) = match &request.test_dataset {
        None => {
            let split = stratified_split(&data, request.test_fraction, request.seed)?;
            drop(data);
            (split, None)
        }
        Some(test_id) => {
            let raw_test = store.load_table(test_id)?;
            if raw_test.feature_names != data.feature_names || raw_test.label_name != data.label_name {
                return Err(ApiError::invalid(
                    "DATA_ERROR",
                    format!(
                        "the test data's columns ({}; label {}) differ from the training data's ({}; label {})",
                        raw_test.feature_names.join(", "),
                        raw_test.label_name,
                        data.feature_names.join(", "),
                        data.label_name
                    ),
                ));
            }
            let (mut test, test_report) = clean(&raw_test, &request.clean)?;
            let mut data = data;
            align_levels(&mut data, &mut test)?;
            data.check_both_classes()?;
            (Split { train: data, test }, Some(test_report))
        }
    };
    let report = SplitReport { clean: report, test_clean: test_report, train_rows: split.train.rows(), test_rows: split.test.rows() };
    let id = store.put_split(&split, &report, inputs.iter().map(|s| s.to_string()).collect(), params)?;
    Ok((id.clone(), SplitInfo { split: id, report, cached: false }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use logitflow_core::table::{CsvOptions, RawTable};
    use logitflow_kit::testing::call;

    fn setup(csv: &str) -> (tempfile::TempDir, Router, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path())).expect("state");
        let table = RawTable::from_csv(csv.as_bytes(), &CsvOptions::default()).expect("csv");
        let id = state.store.put_table(&table, "test", serde_json::json!({})).expect("put");
        (dir, app(state), id)
    }

    fn rows(n: usize) -> String {
        let mut csv = String::from("score,admitted\n");
        for i in 0..n {
            csv.push_str(&format!("{i},{}\n", u8::from(i % 3 == 0)));
        }
        csv.push_str(",1\n");
        csv
    }

    #[tokio::test]
    async fn splits_with_report_and_caches() {
        let (_dir, app, id) = setup(&rows(50));
        let body = serde_json::json!({"dataset": id, "clean": {"missing": "drop"}, "test_fraction": 0.2, "seed": 1});
        let (status, info) = call(&app, "POST", "/v1/splits", Some(body.clone())).await;
        assert_eq!(status, StatusCode::OK, "{info}");
        assert_eq!(info["report"]["clean"]["dropped"]["missing value"], 1);
        assert_eq!(info["report"]["clean"]["dropped_lines"][0]["line"], 52);
        assert_eq!(info["report"]["train_rows"].as_u64().unwrap_or(0) + info["report"]["test_rows"].as_u64().unwrap_or(0), 50);
        let (_, again) = call(&app, "POST", "/v1/splits", Some(body)).await;
        assert_eq!((again["split"].clone(), again["cached"].as_bool()), (info["split"].clone(), Some(true)));
    }

    #[tokio::test]
    async fn bad_requests_are_named() {
        let (_dir, app, id) = setup(&rows(20));
        let (status, body) = call(&app, "POST", "/v1/splits", Some(serde_json::json!({"dataset": id}))).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("DATA_ERROR")));
        assert!(body["error"].as_str().is_some_and(|e| e.contains("line 22")), "{body}");
        let (status, _) = call(&app, "POST", "/v1/splits", Some(serde_json::json!({"dataset": id, "test_fraction": 1.5}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = call(&app, "POST", "/v1/splits", Some(serde_json::json!({"dataset": "0".repeat(64)}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(&app, "POST", "/v1/splits", Some(serde_json::json!({"dataset": id, "bogus": 1}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
        /// Any JSON to `POST /v1/splits`, including a real dataset id among its values.
        #[test]
        fn any_json_body_gets_an_answer_never_a_5xx(
            body in logitflow_kit::testing::bodies::any_json(
                &["dataset", "test_dataset", "clean", "missing", "test_fraction", "seed"],
                vec![serde_json::json!(setup(&rows(30)).2), serde_json::json!("drop"), serde_json::json!(0.25)],
            ),
        ) {
            logitflow_kit::testing::bodies::assert_answers(|| async { let (dir, app, _) = setup(&rows(30)); (dir, app) }, "POST", "/v1/splits", &body);
        }
    }

    /// A test file whose columns are not the training file's is refused, naming both.
    #[tokio::test]
    async fn a_test_dataset_with_other_columns_is_refused_naming_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path())).expect("state");
        let put = |csv: &str| {
            let table = RawTable::from_csv(csv.as_bytes(), &CsvOptions::default()).expect("csv");
            state.store.put_table(&table, "test", serde_json::json!({})).expect("put")
        };
        let (train, test) = (put(&rows(20)), put("age,admitted\n30,1\n40,0\n"));
        let app = app(state.clone());
        let body =
            serde_json::json!({"dataset": train, "test_dataset": test, "clean": {"missing": "drop"}, "test_fraction": 0.2, "seed": 1});
        let (status, error) = call(&app, "POST", "/v1/splits", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        let message = error["error"].as_str().unwrap_or_default();
        assert!(message.contains("(age; label admitted) differ from the training data's (score; label admitted)"), "{message}");
    }
}
