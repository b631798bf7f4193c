//! The preprocess service: schema and type checks, missing values, bounds, duplicates, and the
//! seeded, stratified train/test split.
//!
//! `POST /v1/splits` ([`SplitRequest`]) turns a dataset artifact into a split artifact with a
//! report of the rows kept and dropped, by reason, with line numbers ([`SplitInfo`]).

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use logitflow_core::clean::{
    CleanOptions, CleanReport, Dataset, align_to, check_both_classes, clean_keeping, clean_labels,
    needs_values, stratified_rows,
};
use logitflow_core::table::RawTable;
use logitflow_kit::wire::{SplitInfo, SplitRequest};
use logitflow_kit::{ApiError, Config, Json, Readiness, blocking, cached_step};
use logitflow_store::{Columns, Kind, SplitReport, SplitRows, SplitSources, Store, step_key};

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

async fn split(
    State(state): State<AppState>,
    Json(request): Json<SplitRequest>,
) -> Result<Json<SplitInfo>, ApiError> {
    if !(request.test_fraction.is_finite()
        && request.test_fraction > 0.0
        && request.test_fraction < 1.0)
        && request.test_dataset.is_none()
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

/// Cleans the dataset (and the test dataset, if any), splits, and stores the split as row
/// numbers into the datasets its parts come from ([`SplitRows`]). Rows that cleaning keeps as
/// they are are taken from the ingested dataset itself; clean data is stored again only where
/// cleaning changed values (an imputed cell, or a test file's codes made the training file's).
fn make_split(
    store: &Store,
    request: &SplitRequest,
    inputs: &[&str],
    params: serde_json::Value,
) -> Result<(String, SplitInfo), ApiError> {
    let (columns, rows, report, test_report) = match &request.test_dataset {
        None => {
            let clean = clean_rows(store, &request.dataset, &request.clean, &params)?;
            check_both_classes(&clean.y, clean.columns.classes.as_ref())?;
            let (train, test) = stratified_rows(&clean.y, request.test_fraction, request.seed);
            let pick = |part: Vec<usize>| match &clean.rows {
                Some(rows) => part.into_iter().map(|i| rows[i]).collect(),
                None => part.into_iter().map(|i| i as u64).collect(),
            };
            let sources = SplitSources { train: clean.source.clone(), test: clean.source.clone() };
            let rows = SplitRows { sources, train: pick(train), test: pick(test) };
            (clean.columns, rows, clean.report, None)
        }
        Some(test_id) => {
            let (columns, rows, report, test_report) =
                against_test_file(store, request, test_id, &params)?;
            (columns, rows, report, Some(test_report))
        }
    };
    let report = SplitReport {
        clean: report,
        test_clean: test_report,
        train_rows: rows.train.len(),
        test_rows: rows.test.len(),
    };
    let id = store.put_split_rows(
        &columns,
        &rows,
        &report,
        inputs.iter().map(|s| s.to_string()).collect(),
        params,
    )?;
    Ok((id.clone(), SplitInfo { split: id, report, cached: false }))
}

/// The rows of a dataset that cleaning keeps, as rows of a stored dataset.
struct CleanRows {
    columns: Columns,
    /// The dataset the rows are in.
    source: String,
    /// The rows of `source` kept, in order; `None` for every one of them.
    rows: Option<Vec<u64>>,
    /// The kept rows' labels.
    y: Vec<f64>,
    report: CleanReport,
}

/// Cleans dataset `id`. When its columns say that no value is missing and the options need no
/// value, only its labels are read ([`clean_labels`]); otherwise the whole table.
fn clean_rows(
    store: &Store,
    id: &str,
    options: &CleanOptions,
    params: &serde_json::Value,
) -> Result<CleanRows, ApiError> {
    let columns: Columns = store.read_json(id, Kind::Dataset, "columns.json")?;
    if columns.none_missing() && !needs_values(options, &columns.kinds) {
        let labels = store.load_labels(id)?;
        let (kept, report) =
            clean_labels(&labels.y, &labels.lines, &labels.columns.label_name, options)?;
        // Every row kept (no label missing, the usual case): the labels are the kept rows' as
        // they are, not copied (8 MB of fresh memory at 1M rows), and no row is listed.
        let (y, rows) = match kept {
            None => (labels.y, None),
            Some(kept) => (
                kept.iter().map(|&i| labels.y[i]).collect(),
                Some(kept.into_iter().map(|i| i as u64).collect()),
            ),
        };
        return Ok(CleanRows { columns: labels.columns, source: id.to_string(), rows, y, report });
    }
    let raw = store.load_table(id)?;
    let (data, kept, report) = clean_keeping(&raw, options)?;
    let (source, rows) = source_rows(store, id, &raw, &data, &kept, &report, params)?;
    Ok(CleanRows { columns: Columns::of(&data, None), source, rows: Some(rows), y: data.y, report })
}

/// The split of a training dataset against a test dataset of its own: every clean training
/// row trains (cleaned as [`clean_rows`] cleans, so a numeric file is not loaded whole), and
/// the clean test rows, made to speak the training codes, are stored as they now are.
fn against_test_file(
    store: &Store,
    request: &SplitRequest,
    test_id: &str,
    params: &serde_json::Value,
) -> Result<(Columns, SplitRows, CleanReport, CleanReport), ApiError> {
    let mut clean = clean_rows(store, &request.dataset, &request.clean, params)?;
    let raw_test = store.load_table(test_id)?;
    let columns = &clean.columns;
    if raw_test.feature_names != columns.feature_names || raw_test.label_name != columns.label_name
    {
        return Err(ApiError::invalid(
            "DATA_ERROR",
            format!(
                "the test data's columns ({}; label {}) differ from the training data's ({}; label {})",
                raw_test.feature_names.join(", "),
                raw_test.label_name,
                columns.feature_names.join(", "),
                columns.label_name
            ),
        ));
    }
    let (mut test, test_kept, test_report) = clean_keeping(&raw_test, &request.clean)?;
    align_to(&mut clean.columns.kinds, clean.columns.classes.as_ref(), &mut test)?;
    check_both_classes(&clean.y, clean.columns.classes.as_ref())?;
    // The test file's codes are now the training file's: stored as they are now.
    let test_lines: Vec<u64> = test_kept.iter().map(|&i| raw_test.lines[i]).collect();
    let test_source =
        store.put_dataset(&test, &test_lines, NAME, vec![test_id.to_string()], params.clone())?;
    let train = clean.rows.unwrap_or_else(|| (0..clean.y.len() as u64).collect());
    let rows = SplitRows {
        sources: SplitSources { train: clean.source, test: test_source },
        train,
        test: (0..test.rows() as u64).collect(),
    };
    Ok((clean.columns, rows, clean.report, test_report))
}

/// Where the clean rows `data` (rows `kept` of dataset `id`, read as `raw`) are to be found:
/// in the dataset itself when cleaning left their values as they were, else in the clean data
/// stored as a dataset of its own.
fn source_rows(
    store: &Store,
    id: &str,
    raw: &RawTable,
    data: &Dataset,
    kept: &[usize],
    report: &CleanReport,
    params: &serde_json::Value,
) -> Result<(String, Vec<u64>), ApiError> {
    if report.imputed.is_empty() {
        return Ok((id.to_string(), kept.iter().map(|&i| i as u64).collect()));
    }
    let lines: Vec<u64> = kept.iter().map(|&i| raw.lines[i]).collect();
    let source = store.put_dataset(data, &lines, NAME, vec![id.to_string()], params.clone())?;
    Ok((source, (0..data.rows() as u64).collect()))
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
        assert_eq!(
            info["report"]["train_rows"].as_u64().unwrap_or(0)
                + info["report"]["test_rows"].as_u64().unwrap_or(0),
            50
        );
        let (_, again) = call(&app, "POST", "/v1/splits", Some(body)).await;
        assert_eq!(
            (again["split"].clone(), again["cached"].as_bool()),
            (info["split"].clone(), Some(true))
        );
    }

    #[tokio::test]
    async fn bad_requests_are_named() {
        let (_dir, app, id) = setup(&rows(20));
        let (status, body) =
            call(&app, "POST", "/v1/splits", Some(serde_json::json!({"dataset": id}))).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("DATA_ERROR"))
        );
        assert!(body["error"].as_str().is_some_and(|e| e.contains("line 22")), "{body}");
        let (status, _) = call(
            &app,
            "POST",
            "/v1/splits",
            Some(serde_json::json!({"dataset": id, "test_fraction": 1.5})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) =
            call(&app, "POST", "/v1/splits", Some(serde_json::json!({"dataset": "0".repeat(64)})))
                .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) =
            call(&app, "POST", "/v1/splits", Some(serde_json::json!({"dataset": id, "bogus": 1})))
                .await;
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

    /// The parts of a stored split are the rows cleaning and the stratified split give, and
    /// they are taken from the ingested dataset itself unless cleaning changed a value; then
    /// the clean data is stored once as a dataset of its own.
    #[tokio::test]
    async fn parts_are_the_clean_split_and_rows_are_copied_only_when_cleaning_changed_them() {
        use logitflow_core::clean::{clean, stratified_split};
        use logitflow_store::{Kind, SplitPart};
        let mut csv = String::from("score,hours,admitted\n");
        for i in 0..200 {
            let hours = if i % 7 == 3 { String::new() } else { (i % 13).to_string() };
            let label = if i == 50 { String::new() } else { u8::from(i % 3 == 0).to_string() };
            csv.push_str(&format!("{i},{hours},{label}\n"));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path())).expect("state");
        let table = RawTable::from_csv(csv.as_bytes(), &CsvOptions::default()).expect("csv");
        let id = state.store.put_table(&table, "test", serde_json::json!({})).expect("put");
        let complete =
            RawTable::from_csv(csv.replace(",,", ",1,").as_bytes(), &CsvOptions::default())
                .expect("csv");
        let complete_id =
            state.store.put_table(&complete, "test", serde_json::json!({})).expect("put");
        let app = app(state.clone());
        for (dataset, raw, missing, copied) in [
            (&complete_id, &complete, "drop", false),
            (&id, &table, "drop", false),
            (&id, &table, "impute_mean", true),
        ] {
            let body = serde_json::json!({"dataset": dataset, "clean": {"missing": missing}, "test_fraction": 0.25, "seed": 3});
            let (status, info) = call(&app, "POST", "/v1/splits", Some(body)).await;
            assert_eq!(status, StatusCode::OK, "{info}");
            let split = info["split"].as_str().expect("id");
            let options: logitflow_core::clean::CleanOptions =
                serde_json::from_value(serde_json::json!({"missing": missing})).expect("options");
            let expected = stratified_split(&clean(raw, &options).expect("cleans").0, 0.25, 3)
                .expect("splits");
            let train = state.store.load_split_part(split, SplitPart::Train).expect("train");
            let test = state.store.load_split_part(split, SplitPart::Test).expect("test");
            // Stored, all-numeric kinds are written as none.
            let stored = |mut part: Dataset| {
                part.kinds.retain(|kind| *kind != logitflow_core::table::ColumnKind::Numeric);
                part
            };
            assert_eq!((train, test), (stored(expected.train), stored(expected.test)), "{missing}");
            let sources: SplitSources =
                state.store.read_json(split, Kind::Split, "sources.json").expect("sources");
            assert_eq!(sources.train, sources.test);
            assert_eq!(
                sources.train != *dataset,
                copied,
                "{missing}: rows copied only when values changed"
            );
            let manifest = state.store.manifest(split).expect("manifest");
            assert!(
                manifest.files.keys().all(|name| !name.contains("_x")),
                "no copy of the rows in the split: {:?}",
                manifest.files.keys()
            );
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
        let body = serde_json::json!({"dataset": train, "test_dataset": test, "clean": {"missing": "drop"}, "test_fraction": 0.2, "seed": 1});
        let (status, error) = call(&app, "POST", "/v1/splits", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        let message = error["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(
                "(age; label admitted) differ from the training data's (score; label admitted)"
            ),
            "{message}"
        );
    }
}
