//! The batch service: an application over serve. CSV in, the same CSV out with a
//! `probability` column appended, streamed.
//!
//! `POST /v1/score?model=NAME&version=V` with a `text/csv` body. The model's feature columns
//! are found by name in the header; other columns pass through. The body is never held whole:
//! it streams into a parser on a blocking thread, which hands chunks of [`CHUNK_ROWS`] rows to
//! the scorer, which asks serve and streams the answer back as it goes. Memory is bounded by
//! a few chunks, not the body; when the client goes away, everything stops.
//!
//! The first chunk is checked before the first byte is answered, so a bad cell in it is a 422
//! naming its line and column; a bad cell further on ends the stream (the status is sent by
//! then, and a broken download is the honest signal left), as does serve failing mid-way.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use logitflow_core::scale::Value;
use logitflow_kit::client::{ServiceClient, path_segment};
use logitflow_kit::tensor::{Datatype, TensorData};
use logitflow_kit::wire::{InferInput, InferRequest, InferResponse, ModelMetadata, OutputData};
use logitflow_kit::{ApiError, Config, Readiness};
use serde::Deserialize;

pub const NAME: &str = "batch";
/// Rows per chunk: parsed, scored by one request to serve, and written back together.
pub const CHUNK_ROWS: usize = 4096;
/// The largest CSV accepted.
pub const MAX_BODY: usize = 64 << 20;
/// Chunks in flight between the stages (body → parser → scorer → response).
const IN_FLIGHT: usize = 2;

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
    Router::new()
        .route("/v1/score", post(score).layer(DefaultBodyLimit::disable()))
        .with_state(state)
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

/// Rows of one chunk, flat (a row's worth of allocations each cost more than the scoring):
/// each record as CSV, to write back with its probability, and the model's features.
struct Chunk {
    /// The records one after another, each written as CSV ending in `\n`.
    records: Vec<u8>,
    /// Where each record ends in `records`, past its `\n`.
    ends: Vec<usize>,
    /// The model's features, row after row.
    cells: Vec<Value>,
}

impl Chunk {
    fn with_capacity(rows: usize, width: usize) -> Chunk {
        Chunk {
            records: Vec::with_capacity(rows * 16),
            ends: Vec::with_capacity(rows),
            cells: Vec::with_capacity(rows * width),
        }
    }

    fn rows(&self) -> usize {
        self.ends.len()
    }

    /// The records again, each with its probability appended (a K-class model's: each class's
    /// probability, then the most probable class's name), as CSV lines.
    fn with_probabilities(
        &self,
        probabilities: &[f64],
        labels: &[String],
    ) -> Result<Bytes, std::io::Error> {
        use std::io::Write;
        let per_row = probabilities.len() / self.rows().max(1);
        let expected_labels = if per_row > 1 { self.rows() } else { 0 };
        if probabilities.len() != self.rows() * per_row.max(1) || labels.len() != expected_labels {
            return Err(std::io::Error::other(format!(
                "serve answered {} probabilities and {} labels for {} rows",
                probabilities.len(),
                labels.len(),
                self.rows()
            )));
        }
        let mut out = Vec::with_capacity(self.records.len() + self.rows() * 24 * per_row.max(1));
        let mut start = 0;
        for (row, &end) in self.ends.iter().enumerate() {
            out.extend_from_slice(&self.records[start..end - 1]);
            for p in &probabilities[row * per_row.max(1)..(row + 1) * per_row.max(1)] {
                write!(out, ",{p}")?;
            }
            if let Some(label) = labels.get(row) {
                out.push(b',');
                out.extend_from_slice(&csv_field(label));
            }
            out.push(b'\n');
            start = end;
        }
        Ok(Bytes::from(out))
    }
}

/// Where a chunk's records are written back as the csv crate writes them (quoted where they
/// must be), each ending in `\n`.
fn record_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::with_capacity(CHUNK_ROWS * 16))
}

/// A chunk of rows as serve takes them: one FP64 matrix for a numeric model, else one tensor
/// per feature (BYTES for text).
fn infer_request(meta: &ModelMetadata, text: &[bool], chunk: &Chunk) -> InferRequest {
    let width = meta.feature_names.len();
    let rows = chunk.rows();
    if !text.contains(&true) {
        let numbers = chunk
            .cells
            .iter()
            .map(|v| if let Value::Number(n) = v { *n } else { f64::NAN })
            .collect();
        return InferRequest::matrix(rows, width, numbers);
    }
    let inputs = meta
        .feature_names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let column = chunk.cells.iter().skip(j).step_by(width.max(1));
            let (datatype, data) = if text[j] {
                let texts = column.map(|v| match v {
                    Value::Text(t) => t.clone(),
                    Value::Number(n) => n.to_string(),
                });
                (Datatype::Bytes, TensorData::Bytes(texts.collect()))
            } else {
                let numbers = column.map(|v| if let Value::Number(n) = v { *n } else { f64::NAN });
                (Datatype::Fp64, TensorData::Fp64(numbers.collect()))
            };
            InferInput { name: name.clone(), shape: vec![rows], datatype, data, parameters: None }
        })
        .collect();
    InferRequest { id: None, parameters: None, inputs, outputs: None }
}

/// Bytes arriving on a channel, read as a `Read` by the parser's blocking thread.
struct ChannelReader {
    chunks: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(next) => self.current = next,
                None => return Ok(0), // the body ended (or was cut off: the sender says which)
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

/// The parser: reads the CSV as it streams in, and hands on chunks of rows, each checked.
/// Runs on a blocking thread; ends when the body ends, a row is bad, or no one listens.
fn parse_chunks(
    reader: ChannelReader,
    features: &[String],
    is_text: &[bool],
    header_out: tokio::sync::oneshot::Sender<Result<csv::ByteRecord, ApiError>>,
    chunks: tokio::sync::mpsc::Sender<Result<Chunk, ApiError>>,
) {
    let bad = |m: String| ApiError::invalid("DATA_ERROR", m);
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let line = |csv: &csv::Reader<ChannelReader>| csv.position().line();
    let (header, names, index) = match read_header(&mut csv, features) {
        Ok(read) => read,
        Err(e) => {
            let _ = header_out.send(Err(e));
            return;
        }
    };
    if header_out.send(Ok(header)).is_err() {
        return;
    }
    let width = index.len();
    let mut chunk = Chunk::with_capacity(CHUNK_ROWS, width);
    let mut writer = record_writer();
    let mut any = false;
    loop {
        let more = match csv.read_byte_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                let _ = chunks.blocking_send(Err(bad(format!("line {}: {e}", line(&csv)))));
                return;
            }
        };
        if more && !record.iter().all(|f| f.trim_ascii().is_empty()) {
            let at = record.position().map_or(0, csv::Position::line);
            if record.len() != names.len() {
                let _ = chunks.blocking_send(Err(bad(format!(
                    "line {at}: expected {} fields like the header, found {}",
                    names.len(),
                    record.len()
                ))));
                return;
            }
            if let Err(e) = take_cells(&record, (&index, is_text), &names, at, &mut chunk.cells) {
                let _ = chunks.blocking_send(Err(e));
                return;
            }
            if let Err(e) = writer
                .write_byte_record(&record)
                .and_then(|()| writer.flush().map_err(csv::Error::from))
            {
                let _ = chunks.blocking_send(Err(ApiError::Internal(format!("line {at}: {e}"))));
                return;
            }
            chunk.ends.push(writer.get_ref().len());
            any = true;
        }
        if chunk.rows() == CHUNK_ROWS || (!more && chunk.rows() > 0) {
            let mut full = std::mem::replace(&mut chunk, Chunk::with_capacity(CHUNK_ROWS, width));
            match std::mem::replace(&mut writer, record_writer()).into_inner() {
                Ok(records) => full.records = records,
                Err(e) => {
                    let _ = chunks.blocking_send(Err(ApiError::Internal(e.to_string())));
                    return;
                }
            }
            // The scorer is gone: the client left. Stop reading.
            if chunks.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
        if !more {
            if !any {
                let _ = chunks.blocking_send(Err(bad("the CSV has a header but no rows".into())));
            }
            return;
        }
    }
}

/// The header, past a byte-order mark and blank lines: the record, its column names, and
/// where each of the model's `features` is among them.
fn read_header(
    csv: &mut csv::Reader<ChannelReader>,
    features: &[String],
) -> Result<(csv::ByteRecord, Vec<String>, Vec<usize>), ApiError> {
    let bad = |m: String| ApiError::invalid("DATA_ERROR", m);
    let mut record = csv::ByteRecord::new();
    let header = loop {
        match csv.read_byte_record(&mut record) {
            Ok(false) => return Err(bad("the CSV is empty".into())),
            Ok(true) if record.iter().all(|f| f.trim_ascii().is_empty()) => continue,
            Ok(true) => break record,
            Err(e) => return Err(bad(format!("cannot read the header: {e}"))),
        }
    };
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = String::from_utf8_lossy(f);
            if i == 0 {
                name.trim_start_matches('\u{feff}').trim().to_string()
            } else {
                name.trim().to_string()
            }
        })
        .collect();
    let index = features
        .iter()
        .map(|f| {
            names.iter().position(|c| c == f).ok_or_else(|| {
                bad(format!(
                    "the header has no column {f:?}; the model needs {}",
                    features.join(", ")
                ))
            })
        })
        .collect::<Result<Vec<usize>, ApiError>>()?;
    Ok((header, names, index))
}

/// The model's cells of one row (line `at`) into `cells`: the columns at `index`, text where
/// `is_text` says, else finite numbers.
fn take_cells(
    record: &csv::ByteRecord,
    (index, is_text): (&[usize], &[bool]),
    names: &[String],
    at: u64,
    cells: &mut Vec<Value>,
) -> Result<(), ApiError> {
    for (&i, &text) in index.iter().zip(is_text) {
        let cell = String::from_utf8_lossy(record[i].trim_ascii());
        if text {
            cells.push(Value::Text(cell.into_owned()));
            continue;
        }
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => cells.push(Value::Number(v)),
            _ => {
                return Err(ApiError::invalid(
                    "DATA_ERROR",
                    format!("line {at}, column {:?}: {cell:?} is not a finite number", names[i]),
                ));
            }
        }
    }
    Ok(())
}

/// One CSV field as the csv crate writes it: quoted, its quotes doubled, where it must be.
fn csv_field(text: &str) -> Vec<u8> {
    let mut out = record_writer();
    let _ = out.write_field(text);
    let _ = out.write_record(None::<&[u8]>);
    let mut bytes = out.into_inner().unwrap_or_default();
    bytes.pop();
    bytes
}

/// The header written back with `probability` appended, as the rows are ([`record_writer`]);
/// for a K-class model (`classes`), `probability_<class>` for each class and then `label`.
fn header_with_probability(
    header: &csv::ByteRecord,
    classes: &[&str],
) -> Result<Bytes, std::io::Error> {
    let mut line = header.clone();
    if classes.len() > 2 {
        for class in classes {
            line.push_field(format!("probability_{class}").as_bytes());
        }
        line.push_field(b"label");
    } else {
        line.push_field(b"probability");
    }
    let mut out = record_writer();
    out.write_byte_record(&line)?;
    out.into_inner().map(Bytes::from).map_err(|e| std::io::Error::other(e.to_string()))
}

/// The body's frames, forwarded to the parser as they arrive; a body that fails on the way
/// says why on the second channel.
fn forward_body(
    body: Body,
) -> (tokio::sync::mpsc::Receiver<Bytes>, tokio::sync::oneshot::Receiver<ApiError>) {
    let (bytes_tx, bytes_rx) = tokio::sync::mpsc::channel::<Bytes>(IN_FLIGHT * 4);
    let (body_error_tx, body_error_rx) = tokio::sync::oneshot::channel::<ApiError>();
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(frame) = stream.next().await {
            match frame {
                // The parser is gone (a bad row, or the client left): stop reading the body.
                Ok(bytes) => {
                    if bytes_tx.send(bytes).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = body_error_tx.send(ApiError::from_body_error(e));
                    return;
                }
            }
        }
    });
    (bytes_rx, body_error_rx)
}

type ParsedHeader = tokio::sync::oneshot::Receiver<Result<csv::ByteRecord, ApiError>>;
type ParsedChunks = tokio::sync::mpsc::Receiver<Result<Chunk, ApiError>>;

/// The parser on a blocking thread ([`parse_chunks`]): the header, then checked chunks of rows.
fn start_parser(
    bytes: tokio::sync::mpsc::Receiver<Bytes>,
    features: &[String],
    text: &[bool],
) -> (ParsedHeader, ParsedChunks) {
    let (header_tx, header_rx) = tokio::sync::oneshot::channel();
    let (chunks_tx, chunks_rx) = tokio::sync::mpsc::channel::<Result<Chunk, ApiError>>(IN_FLIGHT);
    let (features, text) = (features.to_vec(), text.to_vec());
    tokio::task::spawn_blocking(move || {
        let reader = ChannelReader { chunks: bytes, current: Bytes::new() };
        parse_chunks(reader, &features, &text, header_tx, chunks_tx);
    });
    (header_rx, chunks_rx)
}

/// The header and the first chunk, checked before answering, so that a bad header or a bad
/// cell in the first rows is a clean 422.
async fn first_parsed(
    header: ParsedHeader,
    chunks: &mut ParsedChunks,
) -> Result<(csv::ByteRecord, Chunk), ApiError> {
    let stopped = || ApiError::Internal("the parser stopped".into());
    let header = header.await.map_err(|_| stopped())??;
    let first = chunks.recv().await.ok_or_else(stopped)??;
    Ok((header, first))
}

/// What scores the chunks: serve, the model's infer route and what it takes.
struct Scoring {
    serve: ServiceClient,
    path: String,
    meta: ModelMetadata,
    text: Vec<bool>,
}

impl Scoring {
    /// Writes the header, then each chunk with its answers, in order, to `out_tx`: two
    /// chunks asked of serve at a time, so that serve scores one while the other is written
    /// back. A failure breaks the stream, the only honest signal once the headers are sent.
    async fn write_back(
        self,
        header_bytes: Result<Bytes, std::io::Error>,
        (first, chunks_rx): (Chunk, ParsedChunks),
        out_tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    ) {
        if out_tx.send(header_bytes).await.is_err() {
            return;
        }
        // Chunks in order, two asked of serve at a time, so that serve scores one while this
        // task writes the other back.
        let chunks = futures::stream::once(async { Ok(first) })
            .chain(futures::stream::unfold(chunks_rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            }));
        let answers = chunks
            .map(|item| {
                let (serve, path, meta, text) = (&self.serve, &self.path, &self.meta, &self.text);
                async move {
                    // Headers are sent already; breaking the stream is the only honest signal left.
                    let chunk = item.map_err(|e| std::io::Error::other(e.to_string()))?;
                    let answer = serve
                        .post::<_, InferResponse>(path, &infer_request(meta, text, &chunk))
                        .await;
                    let answer = answer.map_err(|e| std::io::Error::other(e.to_string()))?;
                    let output = |name: &str| {
                        answer.outputs.iter().find(|o| o.name == name).map(|o| &o.data)
                    };
                    let probabilities = output("probability").map_or(&[][..], |d| d.numbers());
                    let labels = match output("label") {
                        Some(OutputData::Texts(labels)) => labels.as_slice(),
                        _ => &[],
                    };
                    chunk.with_probabilities(probabilities, labels)
                }
            })
            .buffered(IN_FLIGHT);
        let mut answers = std::pin::pin!(answers);
        while let Some(written) = answers.next().await {
            let failed = written.is_err();
            // The client left (or serve failed): dropping the chunk receiver stops the parser.
            if out_tx.send(written).await.is_err() || failed {
                return;
            }
        }
    }
}

async fn score(
    State(state): State<AppState>,
    Query(query): Query<ScoreQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let serve = state
        .serve
        .clone()
        .ok_or_else(|| ApiError::NotReady("serve's address is not configured".into()))?;
    let model = path_segment(&query.model);
    let meta: ModelMetadata =
        serve.get(&format!("/v2/models/{model}/versions/{}", path_segment(&query.version))).await?;
    let version = meta.versions.first().cloned().unwrap_or(query.version);
    let text: Vec<bool> = meta
        .feature_names
        .iter()
        .map(|f| meta.inputs.iter().any(|i| i.name == *f && i.datatype == "BYTES"))
        .collect();

    let (bytes_rx, mut body_error_rx) = forward_body(body);
    let (header_rx, mut chunks_rx) = start_parser(bytes_rx, &meta.feature_names, &text);
    let (header, first) = first_parsed(header_rx, &mut chunks_rx).await.map_err(|e| {
        // A body that failed while it streamed is why the parser failed.
        body_error_rx.try_recv().unwrap_or(e)
    })?;
    let path = format!("/v2/models/{model}/versions/{}/infer", path_segment(&version));
    let classes = meta.classes.as_ref().map(|c| c.names()).unwrap_or_default();
    let header_bytes = header_with_probability(&header, &classes);
    // scorer → response.
    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(IN_FLIGHT);
    let scoring = Scoring { serve, path, meta, text };
    tokio::spawn(scoring.write_back(header_bytes, (first, chunks_rx), out_tx));
    let stream =
        futures::stream::unfold(
            out_rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        );
    Ok((
        [(header::CONTENT_TYPE, "text/csv")],
        [("x-model-version", version)],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use logitflow_kit::testing::call_raw;

    async fn setup() -> (tempfile::TempDir, Router) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_home(dir.path());
        config.serve_url =
            Some(logitflow_serve::testing::spawn_with_worked_example(dir.path()).await);
        (dir, app(AppState::new(&config)))
    }

    #[tokio::test]
    async fn appends_probabilities_and_passes_other_columns() {
        let (_dir, app) = setup().await;
        let csv = "name,score\n\"Ann, B\",80\nbob,50\n";
        let (status, out) =
            call_raw(&app, "POST", "/v1/score", "text/csv", csv.as_bytes().to_vec()).await;
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
        let (status, out) =
            call_raw(&app, "POST", "/v1/score?model=credit", "text/csv", csv.as_bytes().to_vec())
                .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&out));
        let text = String::from_utf8(out).expect("utf8");
        let probability = |line: &str| {
            line.rsplit(',').next().and_then(|p| p.parse::<f64>().ok()).unwrap_or(f64::NAN)
        };
        let lines: Vec<&str> = text.lines().collect();
        let sigmoid = logitflow_core::logistic::sigmoid;
        assert!((probability(lines[1]) - sigmoid(-10.7 + 7.5)).abs() < 1e-12, "{text}");
        assert!((probability(lines[2]) - sigmoid(-10.0 + 7.5)).abs() < 1e-12, "{text}");
    }

    #[tokio::test]
    async fn a_body_of_many_chunks_streams_back_whole_and_in_order() {
        let (_dir, app) = setup().await;
        let rows = CHUNK_ROWS * 2 + 17;
        let mut csv = String::from("id,score\n");
        for i in 0..rows {
            csv.push_str(&format!("{i},{}\n", i % 101));
        }
        let (status, out) = call_raw(&app, "POST", "/v1/score", "text/csv", csv.into_bytes()).await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), rows + 1, "every row answered");
        for (i, line) in lines[1..].iter().enumerate() {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields[0], i.to_string(), "in order");
            let expected = logitflow_core::logistic::sigmoid(-10.0 + 0.2 * (i % 101) as f64);
            assert!(
                (fields[2].parse::<f64>().unwrap_or(f64::NAN) - expected).abs() < 1e-12,
                "{line}"
            );
        }
    }

    /// serve going away mid-stream: the chunks scored before are sent, then the body breaks
    /// off — never a whole-looking answer with rows missing, never a hang.
    #[tokio::test]
    async fn serve_stopping_mid_stream_breaks_the_body_off_after_the_chunks_it_scored() {
        let dir = tempfile::tempdir().expect("tempdir");
        logitflow_serve::testing::spawn_with_worked_example(dir.path()).await; // stores the models
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let serve_addr = listener.local_addr().expect("addr").to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(logitflow_serve::run(listener, Config::for_home(dir.path()), async move {
            let _ = stopped.await;
        }));
        let mut config = Config::for_home(dir.path());
        config.serve_url = Some(serve_addr.clone());
        let client = logitflow_kit::client::ServiceClient::new("serve", serve_addr, None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while client.get::<serde_json::Value>("/v2/models/admissions/ready").await.is_err() {
            assert!(std::time::Instant::now() < deadline, "serve never became ready");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let app = app(AppState::new(&config));
        // The body streams in: one chunk and a row, then (serve stopped) two chunks more.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
        let rows = |n: usize| bytes::Bytes::from("50\n".repeat(n));
        tx.send(Ok(bytes::Bytes::from_static(b"score\n"))).await.expect("send");
        tx.send(Ok(rows(CHUNK_ROWS + 1))).await.expect("send");
        let stream =
            futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
            );
        let request = axum::http::Request::post("/v1/score")
            .header("content-type", "text/csv")
            .body(Body::from_stream(stream))
            .expect("request");
        let response = tower::ServiceExt::oneshot(app, request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        // The first chunk comes back scored.
        let mut received = 0usize;
        while received < CHUNK_ROWS {
            let frame = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                http_body_util::BodyExt::frame(&mut body),
            )
            .await
            .expect("the first chunk within 10 s")
            .expect("a frame")
            .expect("the first chunk is whole");
            if let Ok(data) = frame.into_data() {
                received += data.iter().filter(|&&b| b == b'\n').count();
            }
        }
        let _ = stop.send(());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while client.get::<serde_json::Value>("/v2/health/live").await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "serve did not stop");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tx.send(Ok(rows(CHUNK_ROWS * 2))).await.expect("send");
        drop(tx);
        let rest = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            http_body_util::BodyExt::collect(body),
        )
        .await
        .expect("the stream ends, it does not hang");
        assert!(
            rest.is_err(),
            "the body breaks off: rows scored after serve stopped cannot be there"
        );
    }

    #[tokio::test]
    async fn a_bad_cell_past_the_first_chunk_ends_the_stream_early() {
        let (_dir, app) = setup().await;
        let mut csv = String::from("score\n");
        for i in 0..CHUNK_ROWS * 3 {
            csv.push_str(if i == CHUNK_ROWS + 5 { "oops\n" } else { "50\n" });
        }
        let request = axum::http::Request::post("/v1/score")
            .header("content-type", "text/csv")
            .body(Body::from(csv))
            .expect("request");
        let response = tower::ServiceExt::oneshot(app, request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK, "the first chunk was whole");
        let read = http_body_util::BodyExt::collect(response.into_body()).await;
        assert!(read.is_err(), "the body breaks off rather than ending as if whole");
    }

    #[tokio::test]
    async fn bad_csv_names_line_and_column() {
        let (_dir, app) = setup().await;
        let (status, out) =
            call_raw(&app, "POST", "/v1/score", "text/csv", b"score\n80\nabc\n".to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            String::from_utf8_lossy(&out).contains("line 3, column \\\"score\\\""),
            "{}",
            String::from_utf8_lossy(&out)
        );
        let (status, _) =
            call_raw(&app, "POST", "/v1/score", "text/csv", b"other\n1\n".to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) =
            call_raw(&app, "POST", "/v1/score?model=nope", "text/csv", b"score\n1\n".to_vec())
                .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // The name is one path segment to serve: "admissions?x=" is no model, not "admissions"
        // with a query (which answered 200 with a cut-off body).
        let (status, _) = call_raw(
            &app,
            "POST",
            "/v1/score?model=admissions%3Fx%3D",
            "text/csv",
            b"score\n1\n".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call_raw(
            &app,
            "POST",
            "/v1/score?model=..%2Fadmissions",
            "text/csv",
            b"score\n1\n".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call_raw(&app, "POST", "/v1/score", "text/csv", vec![0xff, 0xfe]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
