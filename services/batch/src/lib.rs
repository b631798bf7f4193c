//! The batch service: an application over serve. CSV in, the same CSV out with a
//! `probability` column appended, streamed back in chunks as serve answers them.
//!
//! `POST /v1/score?model=NAME&version=V` with a `text/csv` body. The model's feature columns
//! are found by name in the header; other columns pass through untouched. Every row is checked
//! before the first byte is answered, so a bad cell is a 422 naming its line and column rather
//! than a broken download.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use logitflow_core::scale::Value;
use logitflow_kit::client::{ServiceClient, path_segment};
use logitflow_kit::wire::{InferInput, InferRequest, InferResponse, ModelMetadata};
use logitflow_kit::{ApiError, Config, Readiness};
use serde::Deserialize;

pub const NAME: &str = "batch";
/// Rows per request to serve.
const CHUNK_ROWS: usize = 4096;
/// The largest CSV accepted.
pub const MAX_BODY: usize = 64 << 20;

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
    // The body limit is enforced by the kit's tower-http layer; axum's own default (2 MiB)
    // is lifted for this route.
    Router::new().route("/v1/score", post(score).layer(DefaultBodyLimit::disable())).with_state(state)
}

pub async fn run(
    listener: tokio::net::TcpListener,
    mut config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.body_limit = MAX_BODY;
    config.request_timeout = std::time::Duration::from_secs(300);
    let state = AppState::new(&config);
    let readiness = if state.serve.is_some() {
        Readiness::ready()
    } else {
        Readiness::not_ready(format!("{} is not set", logitflow_kit::SERVE_URL_ENV))
    };
    logitflow_kit::serve(NAME, &config, readiness, app(state), listener, shutdown).await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreQuery {
    #[serde(default = "default_model")]
    model: String,
    #[serde(default = "default_version")]
    version: String,
}

fn default_model() -> String {
    "admissions".into()
}
fn default_version() -> String {
    "stable".into()
}

/// The parsed input: the original lines (to pass through) and the model's features per row.
struct Parsed {
    header: String,
    lines: Vec<String>,
    rows: Vec<Vec<Value>>,
}

/// A chunk of rows as serve takes them: one FP64 matrix for a numeric model, else one tensor
/// per feature (BYTES for text).
fn infer_request(meta: &ModelMetadata, text: &[bool], rows: &[Vec<Value>]) -> InferRequest {
    if !text.contains(&true) {
        let numbers: Vec<Vec<f64>> =
            rows.iter().map(|r| r.iter().map(|v| if let Value::Number(n) = v { *n } else { f64::NAN }).collect()).collect();
        return InferRequest::rows(&numbers);
    }
    let inputs = meta
        .feature_names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let data: serde_json::Value = rows.iter().map(|r| serde_json::to_value(&r[j]).unwrap_or_default()).collect();
            let datatype = if text[j] { "BYTES" } else { "FP64" };
            InferInput { name: name.clone(), shape: vec![rows.len()], datatype: datatype.into(), data, parameters: None }
        })
        .collect();
    InferRequest { id: None, parameters: None, inputs, outputs: None }
}

fn parse(body: &[u8], features: &[String], is_text: &[bool]) -> Result<Parsed, ApiError> {
    let bad = |m: String| ApiError::invalid("DATA_ERROR", m);
    let text = std::str::from_utf8(body).map_err(|e| bad(format!("the CSV is not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| bad("the CSV is empty".into()))?;
    let columns: Vec<String> = split_line(header)?.into_iter().map(|c| c.trim().to_string()).collect();
    let index: Vec<usize> = features
        .iter()
        .map(|f| {
            columns
                .iter()
                .position(|c| c == f)
                .ok_or_else(|| bad(format!("the header has no column {f:?}; the model needs {}", features.join(", "))))
        })
        .collect::<Result<_, _>>()?;
    let mut parsed = Parsed { header: header.trim_end_matches('\r').to_string(), lines: Vec::new(), rows: Vec::new() };
    for (n, line) in lines {
        let fields = split_line(line)?;
        if fields.len() != columns.len() {
            return Err(bad(format!("line {}: expected {} fields like the header, found {}", n + 1, columns.len(), fields.len())));
        }
        let row = index
            .iter()
            .zip(is_text)
            .map(|(&i, &is_text)| {
                let cell = fields[i].trim();
                if is_text {
                    return Ok(Value::Text(cell.to_string()));
                }
                cell.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(Value::Number)
                    .ok_or_else(|| bad(format!("line {}, column {:?}: {cell:?} is not a finite number", n + 1, columns[i])))
            })
            .collect::<Result<Vec<Value>, _>>()?;
        parsed.rows.push(row);
        parsed.lines.push(line.trim_end_matches('\r').to_string());
    }
    if parsed.rows.is_empty() {
        return Err(bad("the CSV has a header but no rows".into()));
    }
    Ok(parsed)
}

/// Splits one CSV line with the csv crate, so quoted fields are understood.
fn split_line(line: &str) -> Result<Vec<String>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_bytes());
    let record = reader.records().next().transpose().map_err(|e| ApiError::invalid("DATA_ERROR", format!("cannot read line: {e}")))?;
    Ok(record.map(|r| r.iter().map(String::from).collect()).unwrap_or_default())
}

async fn score(State(state): State<AppState>, Query(query): Query<ScoreQuery>, body: Bytes) -> Result<Response, ApiError> {
    let serve = state.serve.clone().ok_or_else(|| ApiError::NotReady("serve's address is not configured".into()))?;
    let model = path_segment(&query.model);
    let meta: ModelMetadata = serve.get(&format!("/v2/models/{model}/versions/{}", path_segment(&query.version))).await?;
    let version = meta.versions.first().cloned().unwrap_or(query.version);
    let text: Vec<bool> = meta.feature_names.iter().map(|f| meta.inputs.iter().any(|i| i.name == *f && i.datatype == "BYTES")).collect();
    let parsed = parse(&body, &meta.feature_names, &text)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let path = format!("/v2/models/{model}/versions/{}/infer", path_segment(&version));
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(format!("{},probability\n", parsed.header)))).await.is_err() {
            return;
        }
        for (rows, lines) in parsed.rows.chunks(CHUNK_ROWS).zip(parsed.lines.chunks(CHUNK_ROWS)) {
            let chunk = match serve.post::<_, InferResponse>(&path, &infer_request(&meta, &text, rows)).await {
                Ok(answer) => {
                    let probabilities = answer.outputs.first().map(|o| o.data.clone()).unwrap_or_default();
                    let mut out = String::with_capacity(lines.len() * 32);
                    for (line, p) in lines.iter().zip(probabilities) {
                        out.push_str(line);
                        out.push(',');
                        out.push_str(&p.to_string());
                        out.push('\n');
                    }
                    Ok(Bytes::from(out))
                }
                // Headers are sent already; breaking the stream is the only honest signal left.
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok(([(header::CONTENT_TYPE, "text/csv")], [("x-model-version", version)], Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use logitflow_kit::testing::call_raw;

    async fn setup() -> (tempfile::TempDir, Router) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_home(dir.path());
        config.serve_url = Some(logitflow_serve::testing::spawn_with_worked_example(dir.path()).await);
        (dir, app(AppState::new(&config)))
    }

    #[tokio::test]
    async fn appends_probabilities_and_passes_other_columns() {
        let (_dir, app) = setup().await;
        let csv = "name,score\n\"Ann, B\",80\nbob,50\n";
        let (status, out) = call_raw(&app, "POST", "/v1/score", "text/csv", csv.as_bytes().to_vec()).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&out));
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "name,score,probability");
        assert!(lines[1].starts_with("\"Ann, B\",80,0.99752737684"), "{text}");
        assert_eq!(lines[2], "bob,50,0.5");
    }

    #[tokio::test]
    async fn text_features_are_scored_by_their_level() {
        let (_dir, app) = setup().await;
        let csv = "id,balance,student\n1,1500,Yes\n2,1500,No\n";
        let (status, out) = call_raw(&app, "POST", "/v1/score?model=credit", "text/csv", csv.as_bytes().to_vec()).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&out));
        let text = String::from_utf8(out).expect("utf8");
        let probability = |line: &str| line.rsplit(',').next().and_then(|p| p.parse::<f64>().ok()).unwrap_or(f64::NAN);
        let lines: Vec<&str> = text.lines().collect();
        let sigmoid = logitflow_core::logistic::sigmoid;
        assert!((probability(lines[1]) - sigmoid(-10.7 + 7.5)).abs() < 1e-12, "{text}");
        assert!((probability(lines[2]) - sigmoid(-10.0 + 7.5)).abs() < 1e-12, "{text}");
    }

    #[tokio::test]
    async fn bad_csv_names_line_and_column() {
        let (_dir, app) = setup().await;
        let (status, out) = call_raw(&app, "POST", "/v1/score", "text/csv", b"score\n80\nabc\n".to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(String::from_utf8_lossy(&out).contains("line 3, column \\\"score\\\""), "{}", String::from_utf8_lossy(&out));
        let (status, _) = call_raw(&app, "POST", "/v1/score", "text/csv", b"other\n1\n".to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = call_raw(&app, "POST", "/v1/score?model=nope", "text/csv", b"score\n1\n".to_vec()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // The name is one path segment to serve: "admissions?x=" is no model, not "admissions"
        // with a query (which answered 200 with a cut-off body).
        let (status, _) = call_raw(&app, "POST", "/v1/score?model=admissions%3Fx%3D", "text/csv", b"score\n1\n".to_vec()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call_raw(&app, "POST", "/v1/score?model=..%2Fadmissions", "text/csv", b"score\n1\n".to_vec()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call_raw(&app, "POST", "/v1/score", "text/csv", vec![0xff, 0xfe]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
