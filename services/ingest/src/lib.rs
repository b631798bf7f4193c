//! The ingest service: data collection. Its sources become immutable dataset artifacts.
//!
//! - `POST /v1/datasets/csv` ([`CsvSource`]): a CSV file under an allowed root (`..` escapes
//!   and symlinks out of the roots are refused).
//! - `POST /v1/datasets/synthetic` ([`SyntheticSource`]): rows drawn from a given logistic model.
//! - `POST /v1/collections/{name}/records` ([`RecordsPost`]): records kept in SQLite
//!   (`<home>/ingest.sqlite`, WAL, `synchronous=FULL`), durable once acknowledged;
//!   `GET /v1/collections/{name}`; `POST /v1/collections/{name}/snapshot` freezes them.
//!
//! Every answer is a [`DatasetInfo`] naming the dataset artifact; `cached` says the same
//! content was already frozen.

mod bucket;
mod formats;
mod parquet;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use logitflow_core::Blake3Reader;
use logitflow_core::synth::{Generator, generate};
use logitflow_core::table::{CsvOptions, RawTable, ValuesWent};
use logitflow_kit::wire::{
    CollectionInfo, CsvSource, DatasetInfo, RecordsAck, RecordsPost, SnapshotRequest,
    SyntheticSource, UploadInfo,
};
use logitflow_kit::{ApiError, Config, Json, Readiness, blocking, cached_step};
use logitflow_store::{DatasetWriter, StepRecord, Store, step_key};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub const NAME: &str = "ingest";
/// Records per post; bigger batches should be split by the client.
pub const MAX_RECORDS_PER_POST: usize = 10_000;
/// The longest body an upload may declare. The body goes to disk as it arrives, never held, so
/// this bounds only what one request may write; a file of any size is read from its path.
pub const MAX_UPLOAD_BYTES: u64 = 1 << 40;

#[derive(Clone)]
pub struct AppState {
    store: Store,
    allowed_roots: Arc<Vec<PathBuf>>,
    db: Arc<Database>,
    /// `<home>/uploads`, canonical: where uploaded CSVs are kept.
    uploads: Arc<PathBuf>,
}

/// ingest's SQLite database (`<home>/ingest.sqlite`), opened when a collection is first used:
/// a damaged or unwritable one then fails the collection routes, with the cause, and never
/// the CSV and synthetic sources (it used to stop ingest from starting, which held every CSV
/// run for 8 s of restarts). A failed open is tried again at the next use.
struct Database {
    path: PathBuf,
    connection: Mutex<Option<Connection>>,
}

impl Database {
    /// Runs `work` on the connection, opening it first if need be.
    fn with<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut guard = self
            .connection
            .lock()
            .map_err(|_| ApiError::Internal("ingest database lock poisoned".into()))?;
        if guard.is_none() {
            *guard = Some(open_db(&self.path).map_err(|e| db_error_at(&self.path, e))?);
        }
        match guard.as_mut() {
            Some(db) => work(db),
            None => Err(ApiError::Internal("the ingest database did not open".into())),
        }
    }
}

/// A database error, with the disk named when that is the likely cause (SQLite reports a full
/// disk as "disk I/O error … xShmMap" or "database or disk is full").
fn db_error_at(path: &std::path::Path, e: rusqlite::Error) -> ApiError {
    let text = e.to_string();
    let disk =
        ["disk I/O error", "disk is full", "readonly database", "unable to open database file"]
            .iter()
            .any(|c| text.contains(c));
    let hint = if disk { "; the disk holding it may be full or read-only" } else { "" };
    ApiError::Storage(format!("ingest database {}: {text}{hint}", path.display()))
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<AppState> {
        let store = config.open_store()?;
        let db = Database { path: config.home.join("ingest.sqlite"), connection: Mutex::new(None) };
        // Uploaded files may be read like any other: their directory is one of the roots.
        let uploads = config.home.join("uploads");
        std::fs::create_dir_all(&uploads)
            .map_err(|e| anyhow::anyhow!("{}: {e}", uploads.display()))?;
        let uploads =
            uploads.canonicalize().map_err(|e| anyhow::anyhow!("{}: {e}", uploads.display()))?;
        let mut allowed_roots = config.allowed_roots.clone();
        allowed_roots.push(uploads.clone());
        Ok(AppState {
            store,
            allowed_roots: Arc::new(allowed_roots),
            db: Arc::new(db),
            uploads: Arc::new(uploads),
        })
    }
}

fn open_db(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let db = Connection::open(path)?;
    // WAL with synchronous=FULL: a commit is on disk before the post is acknowledged.
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS collections (name TEXT PRIMARY KEY, columns TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, data TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS records_by_collection ON records(collection, id);
         CREATE TABLE IF NOT EXISTS idempotency (collection TEXT NOT NULL, key TEXT NOT NULL, accepted INTEGER NOT NULL, total INTEGER NOT NULL, PRIMARY KEY (collection, key));",
    )?;
    Ok(db)
}

fn db_error(e: rusqlite::Error) -> ApiError {
    ApiError::Storage(format!("ingest database: {e}"))
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/datasets/csv", post(from_csv))
        .route(UPLOADS, axum::routing::put(upload))
        .route("/v1/datasets/synthetic", post(synthetic))
        .route("/v1/collections/{name}", get(collection))
        .route("/v1/collections/{name}/records", post(post_records))
        .route("/v1/collections/{name}/snapshot", post(snapshot))
        .with_state(state)
}

pub async fn run(
    listener: tokio::net::TcpListener,
    mut config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.body_limit = 16 << 20;
    config.large_body_routes.push((UPLOADS, MAX_UPLOAD_BYTES));
    let state = AppState::new(&config)?;
    logitflow_kit::serve(NAME, &config, Readiness::ready(), app(state), listener, shutdown).await?;
    Ok(())
}

/// Opens a file for reading if, and only if, the file opened lies under an allowed root.
///
/// The check is made on the open file itself (the target of its `/proc/self/fd` link), and
/// the file is then read through that descriptor: checking a path and opening it afterwards
/// let a directory swapped for a symlink in between read a file outside the roots (4,008 of
/// 20,000 tries). A path that is outside the roots as written is refused the same way whether
/// or not it exists, so the answers tell nothing about what lies outside.
fn open_confined(roots: &[PathBuf], path: &str) -> Result<(std::fs::File, PathBuf), ApiError> {
    let outside = || {
        let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        ApiError::Forbidden(format!("{path} is outside the allowed roots ({})", roots.join(", ")))
    };
    let written = lexically_absolute(std::path::Path::new(path)).ok_or_else(outside)?;
    if !roots.iter().any(|root| written.starts_with(root)) {
        return Err(outside());
    }
    let file = std::fs::File::open(&written)
        .map_err(|e| ApiError::invalid("FILE_NOT_READABLE", format!("{path}: {e}")))?;
    let opened = opened_path(&file, &written)
        .map_err(|e| ApiError::invalid("FILE_NOT_READABLE", format!("{path}: {e}")))?;
    if !roots.iter().any(|root| opened.starts_with(root)) {
        return Err(outside());
    }
    let is_file = file
        .metadata()
        .map_err(|e| ApiError::invalid("FILE_NOT_READABLE", format!("{path}: {e}")))?
        .is_file();
    if !is_file {
        return Err(ApiError::invalid("FILE_NOT_READABLE", format!("{path} is not a file")));
    }
    Ok((file, opened))
}

/// A path made absolute with `.` and `..` resolved by their names, without touching the disk.
fn lexically_absolute(path: &std::path::Path) -> Option<PathBuf> {
    use std::path::Component;
    let path = std::path::absolute(path).ok()?;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// Where an open file really is: its descriptor's link in `/proc` on Linux, else the
/// canonical form of the path it was opened by.
fn opened_path(file: &std::fs::File, opened_by: &std::path::Path) -> std::io::Result<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let _ = opened_by;
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        std::fs::canonicalize(opened_by)
    }
}

/// Freezes the table `make` reads as a dataset artifact, through the step cache.
fn freeze(
    store: &Store,
    key: &str,
    make: impl FnOnce() -> Result<(RawTable, serde_json::Value), ApiError>,
) -> Result<DatasetInfo, ApiError> {
    freeze_streamed(store, key, || make().map(|(table, params)| (table, None, params)))
}

/// [`freeze`] of a table whose values may have gone to a [`DatasetWriter`] as it was read.
fn freeze_streamed(
    store: &Store,
    key: &str,
    make: impl FnOnce() -> Result<(RawTable, Option<DatasetWriter>, serde_json::Value), ApiError>,
) -> Result<DatasetInfo, ApiError> {
    cached_step(store, key, "dataset", || {
        let (table, streamed, params) = make()?;
        let dataset = match streamed {
            Some(values) => store.put_streamed_table(values, &table, NAME, params)?,
            None => store.put_table(&table, NAME, params)?,
        };
        let categorical = table
            .feature_names
            .iter()
            .zip(&table.kinds)
            .filter_map(|(name, kind)| kind.levels().map(|levels| (name.clone(), levels.to_vec())))
            .collect();
        let info = DatasetInfo {
            dataset: dataset.clone(),
            rows: table.rows(),
            feature_names: table.feature_names,
            label_name: table.label_name,
            cached: false,
            categorical,
            classes: table.classes,
            notes: table.notes,
        };
        // The values are stored: the answer does not wait for their memory to be given back.
        logitflow_core::drop_in_background((table.x, table.y, table.lines));
        Ok((dataset, info))
    })
}

async fn from_csv(
    State(state): State<AppState>,
    Json(source): Json<CsvSource>,
) -> Result<Json<DatasetInfo>, ApiError> {
    if source.path.starts_with("s3://") {
        return blocking(move || from_object(&state, &source)).await.map(Json);
    }
    blocking(move || {
        let (file, path) = open_confined(&state.allowed_roots, &source.path)?;
        let unreadable = |e: std::io::Error| ApiError::invalid("FILE_NOT_READABLE", format!("{}: {e}", path.display()));
        // No bound on the file's size: a file of numbers goes to the store as it is read; one
        // whose values must be held while it is read is bounded by the parse
        // (`logitflow_core::table::MAX_HELD_BYTES`).
        let size = file.metadata().map_err(unreadable)?.len();
        // Read twice at once through the descriptor that was checked (never the path again),
        // each reading at its own offset, and never held whole: once for its hash, the step
        // cache's key, and once to parse, in blocks, on every core. The parse does not wait for
        // the hash; when the step turns out to be cached, it is stopped and its table never
        // made. A numeric table's values are written to the store's staging area as they are
        // parsed, so the copy into the page cache does not wait for the parse, and the table in
        // memory holds no values.
        // Compressed, its CSV is read through the decoder; Parquet, as the CSV it would export
        // to; in another format, it is named as what it is.
        let format = formats::Format::sniff(formats::Source::File(&file, &path))?;
        let stamp = |file: &std::fs::File| file.metadata().and_then(|m| Ok((m.len(), m.modified()?)));
        let before = stamp(&file).map_err(unreadable)?;
        let selection = source.options();
        // Changed between the readings, the file's hash would name other rows.
        let unchanged = || match stamp(&file).map_err(unreadable)? == before {
            true => Ok(()),
            false => Err(ApiError::invalid(
                "FILE_CHANGED",
                format!("{} changed while it was read; read it again once it is written", path.display()),
            )),
        };
        let params_of = |blake3: &str| serde_json::json!({"source": "csv", "blake3": blake3, "select": selection});
        let with_path = |params: &serde_json::Value| {
            let mut params = params.clone();
            params["path"] = path.display().to_string().into();
            params
        };
        let parse = |reader: &mut dyn ReadSend, stop: &AtomicBool| {
            parse_source(&state.store, (format, formats::Source::File(&file, &path)), reader, &selection, stop)
        };
        // Only a file of a length ingested before can be a cached step. One of a length never
        // seen is read once, hashed as it is parsed: a second reading at once, for a hash that
        // could only miss, would copy every byte for nothing.
        let length_seen = length_seen_key(size);
        if state.store.step_lookup(&length_seen).is_none() {
            let never = AtomicBool::new(false);
            let mut reader = Blake3Reader::new(FileAt::from_start(&file, &never));
            let parsed = parse(&mut reader, &never)?;
            // The hash names every byte of the file, whatever the parse left unread.
            let params = params_of(&reader.finish().map_err(unreadable)?);
            let info = freeze_streamed(&state.store, &step_key(NAME, &[], &params), || {
                unchanged()?;
                Ok((parsed.0, parsed.1, with_path(&params)))
            })?;
            // Only a hint: without it, the next file of this length is read twice at once.
            let _ = state.store.step_record(&length_seen, &StepRecord { outputs: Default::default(), summary: serde_json::Value::Null });
            return Ok(Json(info));
        }
        let stop_parsing = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let parsing = scope.spawn(|| parse(&mut FileAt::from_start(&file, &stop_parsing), &stop_parsing));
            let frozen = (|| {
                let hashed = logitflow_core::blake3_hex_of(FileAt::from_start(&file, &AtomicBool::new(false)));
                let params = params_of(&hashed.map_err(unreadable)?);
                freeze_streamed(&state.store, &step_key(NAME, &[], &params), || {
                    let (table, streamed) = parsing.join().map_err(|_| ApiError::Internal("the parse of the CSV panicked".into()))??;
                    unchanged()?;
                    Ok((table, streamed, with_path(&params)))
                })
            })();
            // Cached, or refused before the table was needed: the parse stops at its next read.
            stop_parsing.store(true, Ordering::Relaxed);
            frozen
        })
        .map(Json)
    })
    .await
}

/// A dataset from the object `source.path` names (`s3://bucket/key`), read where it lies with
/// the store's credentials (the `AWS_*` variables): a CSV (plain or compressed) streamed once,
/// a Parquet file by ranged requests for its footer and the column chunks it needs; nothing is
/// copied to disk but the dataset. The step cache knows the object by its URI, size and ETag,
/// and every read asks for that ETag, so an object replaced while it is read is refused.
fn from_object(state: &AppState, source: &CsvSource) -> Result<DatasetInfo, ApiError> {
    let object = std::sync::Arc::new(
        logitflow_objects::S3Object::open(&source.path)
            .map_err(|e| ApiError::invalid("FILE_NOT_READABLE", e.to_string()))?,
    );
    let format = formats::Format::sniff(formats::Source::Object(&object))?;
    let selection = source.options();
    let params = serde_json::json!({
        "source": "s3",
        "uri": object.uri(),
        "bytes": object.size(),
        "e_tag": object.e_tag(),
        "select": selection,
    });
    freeze_streamed(&state.store, &step_key(NAME, &[], &params), || {
        let mut reader = object.reader_from(0);
        let source = (format, formats::Source::Object(&object));
        let (table, values) =
            parse_source(&state.store, source, &mut reader, &selection, &AtomicBool::new(false))?;
        Ok((table, values, params.clone()))
    })
}

/// The table of `source` (in `format`, its bytes from `reader`), parsed as the options
/// select, with its values gone to a new dataset writer of `store` when they went there as
/// they were read; the parse stops at its next read once `stop` is set.
fn parse_source(
    store: &Store,
    (format, source): (formats::Format, formats::Source<'_>),
    reader: &mut dyn ReadSend,
    selection: &CsvOptions,
    stop: &AtomicBool,
) -> Result<(RawTable, Option<DatasetWriter>), ApiError> {
    let (mut text, options) = format.text(reader, source, selection, stop)?;
    let mut values = store.dataset_writer().map_err(ApiError::from)?;
    let (table, went) = RawTable::from_csv_streaming(&mut text, &options, &mut values)
        .map_err(|e| ApiError::reading(source.name(), e))?;
    Ok((table, (went == ValuesWent::ToSink).then_some(values)))
}

/// The step record that says a CSV of `bytes` bytes has been ingested into this store: no
/// file of another length can be a cached step (see [`from_csv`]).
fn length_seen_key(bytes: u64) -> String {
    step_key(NAME, &[], &serde_json::json!({"source": "csv", "bytes": bytes}))
}

/// A reader the parse can take, on any thread.
trait ReadSend: std::io::Read + Send {}
impl<R: std::io::Read + Send> ReadSend for R {}

/// A file read from `offset` by positioned reads, so that two readers of one descriptor keep
/// their own places; it fails once `stop` is set.
struct FileAt<'a> {
    file: &'a std::fs::File,
    offset: u64,
    stop: &'a AtomicBool,
}

impl<'a> FileAt<'a> {
    /// `file` from its start to its end.
    fn from_start(file: &'a std::fs::File, stop: &'a AtomicBool) -> Self {
        FileAt { file, offset: 0, stop }
    }
}

impl std::io::Read for FileAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("the read was stopped: the step is cached"));
        }
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Where a console on another machine sends its CSV: the body, streamed to disk.
const UPLOADS: &str = "/v1/uploads";

/// `PUT /v1/uploads`: a CSV sent in the body (up to [`MAX_UPLOAD_BYTES`]), written to
/// `<home>/uploads/<sha256>.csv` as it arrives, never held whole; the answer names the path
/// to give `/v1/datasets/csv`. A body cut off or over the limit leaves nothing behind.
async fn upload(
    State(state): State<AppState>,
    body: axum::body::Body,
) -> Result<Json<UploadInfo>, ApiError> {
    use futures::StreamExt;
    use sha2::Digest;
    use tokio::io::AsyncWriteExt;
    let staging = state.uploads.join(logitflow_store::home::unique_name(".upload"));
    let storage = |e: std::io::Error| ApiError::Storage(format!("{}: {e}", staging.display()));
    let mut file = tokio::fs::File::create(&staging).await.map_err(storage)?;
    let (mut sha, mut bytes) = (sha2::Sha256::new(), 0u64);
    let mut stream = body.into_data_stream();
    let received = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(ApiError::from_body_error)?;
            sha.update(&chunk);
            bytes += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(storage)?;
        }
        file.sync_all().await.map_err(storage)
    }
    .await;
    drop(file);
    if let Err(e) = received {
        let _ = tokio::fs::remove_file(&staging).await;
        return Err(e);
    }
    let sha256 = logitflow_core::hex(&sha.finalize());
    let path = state.uploads.join(format!("{sha256}.csv"));
    if let Err(e) = tokio::fs::rename(&staging, &path).await {
        let _ = tokio::fs::remove_file(&staging).await;
        return Err(ApiError::Storage(format!("{}: {e}", path.display())));
    }
    Ok(Json(UploadInfo { path: path.display().to_string(), bytes, sha256 }))
}

async fn synthetic(
    State(state): State<AppState>,
    Json(source): Json<SyntheticSource>,
) -> Result<Json<DatasetInfo>, ApiError> {
    let generator = Generator {
        intercept: source.intercept,
        coefficients: source.coefficients,
        ranges: source.ranges,
        rows: source.rows,
        seed: source.seed,
    };
    generator.validate().map_err(|e| match e {
        // Refused before anything is allocated: the answer to a request that is too large.
        e @ logitflow_core::synth::GeneratorError::TooLarge { .. } => {
            ApiError::PayloadTooLarge(e.to_string())
        }
        e => ApiError::invalid("INVALID_GENERATOR", e),
    })?;
    if generator.rows > 10_000_000 {
        return Err(ApiError::invalid("INVALID_GENERATOR", "rows must be at most 10000000 here"));
    }
    blocking(move || {
        let params = serde_json::json!({"source": "synthetic", "generator": generator});
        let key = step_key(NAME, &[], &params);
        freeze(&state.store, &key, || {
            let data = generate(&generator);
            let lines = (2..data.rows() as u64 + 2).collect();
            let table = RawTable {
                feature_names: data.feature_names,
                label_name: data.label_name,
                x: data.x,
                y: data.y,
                lines,
                ..RawTable::default()
            };
            Ok((table, params.clone()))
        })
        .map(Json)
    })
    .await
}

fn check_collection_name(name: &str) -> Result<(), ApiError> {
    logitflow_store::registry::check_name(name).map_err(|_| {
        ApiError::invalid(
            "BAD_COLLECTION_NAME",
            format!(
                "{name:?} is not a collection name: use 1 to 64 letters, digits, '-', '_' or '.'"
            ),
        )
    })
}

/// A collection's column name: one that survives a CSV header as it is.
fn is_column_name(name: &str) -> bool {
    (1..=128).contains(&name.chars().count())
        && name.trim() == name
        && !name.chars().any(|c| c.is_control() || c == ',' || c == '"')
}

fn columns_of(db: &Connection, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    let text: Option<String> = db
        .query_row("SELECT columns FROM collections WHERE name = ?1", [name], |r| r.get(0))
        .optional()
        .map_err(db_error)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| ApiError::Storage(format!("collection {name}: {e}")))
    })
    .transpose()
}

async fn post_records(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    Json(post): Json<RecordsPost>,
) -> Result<Json<RecordsAck>, ApiError> {
    check_collection_name(&name)?;
    // A retry after a lost acknowledgment sends the same key: it is answered as the first
    // post was, and stores nothing twice.
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(key) if !key.is_empty() && key.len() <= 256 => Some(key.to_string()),
            _ => {
                return Err(ApiError::invalid(
                    "BAD_IDEMPOTENCY_KEY",
                    "Idempotency-Key must be 1 to 256 visible ASCII characters",
                ));
            }
        },
    };
    if post.records.is_empty() {
        return Err(ApiError::invalid("NO_RECORDS", "records is empty"));
    }
    if post.records.len() > MAX_RECORDS_PER_POST {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} records in one post; send at most {MAX_RECORDS_PER_POST}",
            post.records.len()
        )));
    }
    blocking(move || state.db.with(|db| {
        let tx = db.transaction().map_err(db_error)?;
        if let Some(key) = &idempotency_key {
            let done: Option<(u64, u64)> = tx
                .query_row("SELECT accepted, total FROM idempotency WHERE collection = ?1 AND key = ?2", params![name, key], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(db_error)?;
            if let Some((accepted, total)) = done {
                return Ok(Json(RecordsAck { accepted: accepted as usize, total }));
            }
        }
        let columns = match columns_of(&tx, &name)? {
            Some(columns) => columns,
            None => {
                let columns: Vec<String> = post.records[0].keys().cloned().collect();
                if columns.len() < 2 {
                    return Err(ApiError::invalid("BAD_RECORD", "a record needs at least one feature and a label"));
                }
                // The names become a CSV header when the collection is snapshotted.
                if let Some(bad) = columns.iter().find(|c| !is_column_name(c)) {
                    return Err(ApiError::invalid(
                        "BAD_COLUMN_NAME",
                        format!("{bad:?} is not a column name: use 1 to 128 characters, without ',', '\"', control characters or spaces at the ends"),
                    ));
                }
                let text = serde_json::to_string(&columns).map_err(|e| ApiError::Internal(e.to_string()))?;
                tx.execute("INSERT INTO collections (name, columns) VALUES (?1, ?2)", params![name, text]).map_err(db_error)?;
                columns
            }
        };
        {
            let mut insert = tx.prepare_cached("INSERT INTO records (collection, data) VALUES (?1, ?2)").map_err(db_error)?;
            for (i, record) in post.records.iter().enumerate() {
                if record.len() != columns.len() || !columns.iter().all(|c| record.contains_key(c)) {
                    return Err(ApiError::invalid(
                        "BAD_RECORD",
                        format!("record {i}: expected exactly the columns {}", columns.join(", ")),
                    ));
                }
                let values: Vec<Option<f64>> = columns.iter().map(|c| record[c]).collect();
                let text = serde_json::to_string(&values).map_err(|e| ApiError::Internal(e.to_string()))?;
                insert.execute(params![name, text]).map_err(db_error)?;
            }
        }
        let total: u64 = tx.query_row("SELECT COUNT(*) FROM records WHERE collection = ?1", [&name], |r| r.get(0)).map_err(db_error)?;
        if let Some(key) = &idempotency_key {
            tx.execute(
                "INSERT INTO idempotency (collection, key, accepted, total) VALUES (?1, ?2, ?3, ?4)",
                params![name, key, post.records.len() as u64, total],
            )
            .map_err(db_error)?;
        }
        tx.commit().map_err(db_error)?;
        Ok(Json(RecordsAck { accepted: post.records.len(), total }))
    }))
    .await
}

async fn collection(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<CollectionInfo>, ApiError> {
    check_collection_name(&name)?;
    blocking(move || {
        state.db.with(|db| {
            let columns = columns_of(db, &name)?
                .ok_or_else(|| ApiError::NotFound(format!("no collection {name:?}")))?;
            let records: u64 = db
                .query_row("SELECT COUNT(*) FROM records WHERE collection = ?1", [&name], |r| {
                    r.get(0)
                })
                .map_err(db_error)?;
            Ok(Json(CollectionInfo { name, columns, records }))
        })
    })
    .await
}

async fn snapshot(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<SnapshotRequest>,
) -> Result<Json<DatasetInfo>, ApiError> {
    check_collection_name(&name)?;
    blocking(move || {
        // The records are written out as CSV text and read back through the one CSV reader,
        // so a snapshot is checked exactly like a file; "line" k + 1 is record k.
        let csv = state.db.with(|db| {
            let columns = columns_of(db, &name)?.ok_or_else(|| ApiError::NotFound(format!("no collection {name:?}")))?;
            let mut csv = columns.join(",");
            csv.push('\n');
            let mut rows = db.prepare("SELECT data FROM records WHERE collection = ?1 ORDER BY id").map_err(db_error)?;
            let mut it = rows.query([&name]).map_err(db_error)?;
            while let Some(row) = it.next().map_err(db_error)? {
                let text: String = row.get(0).map_err(db_error)?;
                let values: Vec<Option<f64>> = serde_json::from_str(&text).map_err(|e| ApiError::Storage(e.to_string()))?;
                let cells: Vec<String> = values.iter().map(|v| v.map_or_else(String::new, |v| v.to_string())).collect();
                csv.push_str(&cells.join(","));
                csv.push('\n');
            }
            Ok(csv)
        })?;
        let selection =
            CsvOptions { label: request.label, features: request.features, delimiter: Some(",".into()), ..CsvOptions::default() };
        let params = serde_json::json!({"source": "collection", "name": name, "blake3": logitflow_core::blake3_hex(csv.as_bytes()), "select": selection});
        let key = step_key(NAME, &[], &params);
        freeze(&state.store, &key, || {
            let table = RawTable::from_csv(csv.as_bytes(), &selection).map_err(|e| ApiError::reading(format_args!("collection {name}"), e))?;
            Ok((table, params.clone()))
        })
        .map(Json)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn state(dir: &std::path::Path) -> AppState {
        AppState::new(&Config::for_home(dir)).expect("state")
    }

    async fn post(
        app: Router,
        path: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let response = app.oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    /// A file of a length this store has never ingested is read once, hashed as it is parsed;
    /// then its length is seen, and the same file again is the cached step, found before the
    /// parse ends. A store that holds the step but not the length (one written before lengths
    /// were kept) still finds the step, after the parse. Both name the file by the hash of
    /// every byte.
    #[tokio::test]
    async fn a_file_of_a_new_length_is_read_once_and_its_step_found_either_way() {
        let (dir, file, app) = with_a_csv();
        let store = Store::open(dir.path()).expect("store");
        let bytes = std::fs::read(&file).expect("read");
        let seen = length_seen_key(bytes.len() as u64);
        assert!(store.step_lookup(&seen).is_none());
        let (status, first) =
            post(app.clone(), "/v1/datasets/csv", serde_json::json!({"path": file})).await;
        assert_eq!((status, first["cached"].as_bool()), (StatusCode::OK, Some(false)), "{first}");
        assert!(store.step_lookup(&seen).is_some(), "its length is seen now");
        let dataset = first["dataset"].as_str().expect("a dataset id");
        assert_eq!(
            store.manifest(dataset).expect("manifest").params["blake3"],
            logitflow_core::blake3_hex(&bytes)
        );
        let (_, again) =
            post(app.clone(), "/v1/datasets/csv", serde_json::json!({"path": file})).await;
        assert_eq!(
            (again["dataset"].as_str(), again["cached"].as_bool()),
            (Some(dataset), Some(true)),
            "{again}"
        );
        std::fs::remove_file(dir.path().join("steps").join(format!("{seen}.json")))
            .expect("forget the length");
        let (_, read_once) = post(app, "/v1/datasets/csv", serde_json::json!({"path": file})).await;
        assert_eq!(
            (read_once["dataset"].as_str(), read_once["cached"].as_bool()),
            (Some(dataset), Some(true)),
            "{read_once}"
        );
        assert!(store.step_lookup(&seen).is_some(), "seen again");
        let staged: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).expect("tmp").collect();
        assert!(staged.is_empty(), "left staged: {staged:?}");
    }

    /// A service in a home of its own, with `a.csv` (two rows) in it.
    fn with_a_csv() -> (tempfile::TempDir, std::path::PathBuf, Router) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.csv");
        std::fs::write(&file, "score,admitted\n80,1\n20,0\n").expect("write");
        let app = app(state(dir.path()));
        (dir, file, app)
    }

    #[tokio::test]
    async fn csv_source_freezes_once_and_confines_paths() {
        let (dir, file, app) = with_a_csv();
        let (status, body) =
            post(app.clone(), "/v1/datasets/csv", serde_json::json!({"path": file})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["rows"].as_u64(), body["cached"].as_bool()), (Some(2), Some(false)));
        let (_, again) =
            post(app.clone(), "/v1/datasets/csv", serde_json::json!({"path": file})).await;
        assert_eq!(
            (again["dataset"].clone(), again["cached"].as_bool()),
            (body["dataset"].clone(), Some(true))
        );
        // Other options that select the same table: a step of its own, the dataset stored already.
        let (_, same) = post(
            app.clone(),
            "/v1/datasets/csv",
            serde_json::json!({"path": file, "label": "admitted"}),
        )
        .await;
        assert_eq!(
            (same["dataset"].clone(), same["cached"].as_bool()),
            (body["dataset"].clone(), Some(false))
        );
        let escape = format!("{}/../../etc/passwd", dir.path().display());
        let (status, body) =
            post(app.clone(), "/v1/datasets/csv", serde_json::json!({"path": escape})).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("FORBIDDEN")));
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link.csv")).expect("symlink");
        let (status, _) = post(
            app.clone(),
            "/v1/datasets/csv",
            serde_json::json!({"path": dir.path().join("link.csv")}),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        std::fs::write(dir.path().join("bad.csv"), "score,admitted\n80,1\nx,0\n").expect("write");
        let (status, body) = post(
            app.clone(),
            "/v1/datasets/csv",
            serde_json::json!({"path": dir.path().join("bad.csv")}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"].as_str().is_some_and(|e| e.contains("line 3")), "{body}");
        let (status, _) =
            post(app.clone(), "/v1/datasets/csv", serde_json::json!({"path": 5})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        // A file past the 2 GiB that were once the bound (sparse: it takes no disk) is read,
        // not refused for its size: its NUL bytes name it as no CSV.
        let huge = std::fs::File::create(dir.path().join("huge.csv")).expect("create");
        huge.set_len((2 << 30) + 1).expect("sparse file");
        let (status, body) =
            post(app, "/v1/datasets/csv", serde_json::json!({"path": dir.path().join("huge.csv")}))
                .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("NOT_CSV")),
            "{body}"
        );
        // The values staged as each file was parsed went into the dataset, or away with a
        // cached step or a refused file.
        let staged: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).expect("tmp").collect();
        assert!(staged.is_empty(), "left staged: {staged:?}");
    }

    /// A store that cannot take the values (its staging area unusable, as on a full disk) is
    /// the store's error, a 5xx naming it, not the file's; once it can, the same file freezes.
    #[tokio::test]
    async fn a_store_that_cannot_stage_the_values_is_a_storage_error_not_the_files() {
        let (dir, file, app) = with_a_csv();
        let tmp = dir.path().join("tmp");
        std::fs::remove_dir_all(&tmp).expect("tmp");
        std::fs::write(&tmp, "not a directory").expect("a file where tmp/ was");
        let (status, body) =
            post(app.clone(), "/v1/datasets/csv", serde_json::json!({"path": file})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, Some("STORAGE_ERROR")),
            "{body}"
        );
        assert!(body["error"].as_str().is_some_and(|e| e.contains("tmp")), "{body}");
        std::fs::remove_file(&tmp).expect("the file");
        let (status, body) = post(app, "/v1/datasets/csv", serde_json::json!({"path": file})).await;
        assert_eq!((status, body["rows"].as_u64()), (StatusCode::OK, Some(2)), "{body}");
    }

    /// A CSV rewritten while ingest reads it is refused (`FILE_CHANGED`), never frozen under
    /// a hash that names other rows. A writer rewrites the file in place without pause, the
    /// same length each time, all 1s then all 2s: a reading that overlapped it and was kept
    /// would hold a mix, or the rows of one version under the other's hash (which the readings
    /// at rest at the end would be served from the cache).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_rewritten_while_it_is_read_is_refused_never_frozen_as_other_rows() {
        use std::os::unix::fs::FileExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("changing.csv");
        let version = |value: u8| {
            let mut text = String::from("score,admitted\n");
            for i in 0..300_000 {
                text.push_str(&format!("{value},{}\n", i % 2));
            }
            text.into_bytes()
        };
        let (ones, twos) = (version(1), version(2));
        std::fs::write(&path, &ones).expect("write");
        let state = state(dir.path());
        let store = state.store.clone();
        let app = app(state);
        let uniform = |id: &str| {
            let table = store.load_table(id).expect("the frozen table");
            let first = table.x[0];
            table.x.iter().all(|&v| v == first).then_some(first)
        };

        let stop = Arc::new(AtomicBool::new(false));
        let writer = std::thread::spawn({
            let (stop, path, ones, twos) = (stop.clone(), path.clone(), ones.clone(), twos.clone());
            move || {
                let file =
                    std::fs::OpenOptions::new().write(true).open(&path).expect("open for writing");
                while !stop.load(Ordering::Relaxed) {
                    for bytes in [&twos, &ones] {
                        file.write_all_at(bytes, 0).expect("rewrite");
                    }
                }
            }
        });
        let mut refused = 0;
        for _ in 0..6 {
            let (status, body) =
                post(app.clone(), "/v1/datasets/csv", serde_json::json!({"path": path})).await;
            match (status, body["code"].as_str()) {
                (StatusCode::OK, _) => {
                    let id = body["dataset"].as_str().expect("an id").to_string();
                    assert!(
                        uniform(&id).is_some(),
                        "a reading that overlapped a rewrite was kept: {body}"
                    );
                }
                (StatusCode::UNPROCESSABLE_ENTITY, Some("FILE_CHANGED")) => refused += 1,
                other => panic!("{other:?}: {body}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().expect("writer");
        assert!(refused > 0, "every reading overlapped a rewrite, and none was refused");
        for (bytes, value) in [(&ones, 1.0), (&twos, 2.0)] {
            std::fs::write(&path, bytes).expect("write");
            let (status, body) =
                post(app.clone(), "/v1/datasets/csv", serde_json::json!({"path": path})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let id = body["dataset"].as_str().expect("an id").to_string();
            assert_eq!(uniform(&id), Some(value), "the file at rest, all {value}: {body}");
        }
    }

    #[tokio::test]
    async fn outside_the_roots_is_answered_alike_whether_or_not_it_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).expect("mkdir");
        let app = app(state(&root));
        std::fs::write(dir.path().join("there.csv"), "a,y\n1,1\n").expect("write");
        let mut answers = Vec::new();
        for name in ["there.csv", "not-there.csv"] {
            let (status, body) = post(
                app.clone(),
                "/v1/datasets/csv",
                serde_json::json!({"path": dir.path().join(name)}),
            )
            .await;
            answers.push((
                status,
                body["code"].clone(),
                body["error"].as_str().unwrap_or("").replace(name, "NAME"),
            ));
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0].0, StatusCode::FORBIDDEN);
    }

    /// Finding 10: a directory swapped for a symlink between the check and the read. Two
    /// threads swap `root/sub` between a real directory and a link to `outside/sub` while CSV
    /// requests read `root/sub/a.csv`: none may read the outside file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_directory_swapped_for_a_symlink_never_reads_outside_the_roots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        for d in [root.join("real"), outside.join("sub")] {
            std::fs::create_dir_all(&d).expect("mkdir");
        }
        std::fs::write(root.join("real/a.csv"), "inside,admitted\n1,1\n2,0\n").expect("write");
        std::fs::write(outside.join("sub/a.csv"), "secret,admitted\n1,1\n2,0\n").expect("write");
        let link = root.join("sub");
        std::os::unix::fs::symlink(root.join("real"), &link).expect("symlink");
        let app = app(state(&root));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (stop, link, inside, outside) =
                (stop.clone(), link.clone(), root.join("real"), outside.join("sub"));
            std::thread::spawn(move || {
                let staged = link.with_extension("next");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for target in [&outside, &inside] {
                        let _ = std::fs::remove_file(&staged);
                        if std::os::unix::fs::symlink(target, &staged).is_ok() {
                            let _ = std::fs::rename(&staged, &link);
                        }
                    }
                }
            })
        };
        let mut leaked = 0;
        for _ in 0..400 {
            let (_, body) = post(
                app.clone(),
                "/v1/datasets/csv",
                serde_json::json!({"path": link.join("a.csv")}),
            )
            .await;
            leaked += usize::from(body.to_string().contains("secret"));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        swapper.join().expect("swapper");
        assert_eq!(leaked, 0, "answers that read or echoed the outside file");
    }

    #[tokio::test]
    async fn a_broken_database_fails_the_collections_only_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the SQLite file belongs: it cannot be opened.
        std::fs::create_dir_all(dir.path().join("ingest.sqlite")).expect("mkdir");
        let app = app(state(dir.path()));
        std::fs::write(dir.path().join("a.csv"), "score,admitted\n80,1\n20,0\n").expect("write");
        let (status, body) = post(
            app.clone(),
            "/v1/datasets/csv",
            serde_json::json!({"path": dir.path().join("a.csv")}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "CSV sources do not need the database: {body}");
        let records = serde_json::json!({"records": [{"score": 80.0, "admitted": 1.0}]});
        let (status, body) = post(app.clone(), "/v1/collections/c/records", records).await;
        assert!(status.is_server_error(), "{status}: {body}");
        let error = body["error"].as_str().unwrap_or("");
        assert!(error.contains("ingest database") && error.contains("ingest.sqlite"), "{error}");
        // Repaired, the next use opens it.
        std::fs::remove_dir(dir.path().join("ingest.sqlite")).expect("rmdir");
        let records = serde_json::json!({"records": [{"score": 80.0, "admitted": 1.0}]});
        let (status, body) = post(app, "/v1/collections/c/records", records).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    #[tokio::test]
    async fn a_retried_post_with_its_idempotency_key_stores_nothing_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = app(state(dir.path()));
        let records = serde_json::json!({"records": [{"score": 80.0, "admitted": 1.0}, {"score": 20.0, "admitted": 0.0}]});
        let send = |key: Option<&'static str>| {
            let app = app.clone();
            let body = records.to_string();
            async move {
                let mut request = Request::post("/v1/collections/exams/records")
                    .header("content-type", "application/json");
                if let Some(key) = key {
                    request = request.header("idempotency-key", key);
                }
                let response = app
                    .oneshot(request.body(Body::from(body)).expect("request"))
                    .await
                    .expect("infallible");
                let status = response.status();
                let bytes = response.into_body().collect().await.expect("body").to_bytes();
                (status, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default())
            }
        };
        let (status, first) = send(Some("batch-1")).await;
        assert_eq!((status, first["total"].as_u64()), (StatusCode::OK, Some(2)), "{first}");
        let (status, retry) = send(Some("batch-1")).await;
        assert_eq!(
            (status, retry.clone()),
            (StatusCode::OK, first.clone()),
            "the retry is answered as the first post was"
        );
        let (_, other) = send(Some("batch-2")).await;
        assert_eq!(other["total"].as_u64(), Some(4));
        let (_, unkeyed) = send(None).await;
        assert_eq!(unkeyed["total"].as_u64(), Some(6), "without a key every post stores");
    }

    #[tokio::test]
    async fn column_names_that_cannot_be_a_csv_header_are_refused_at_the_first_post() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = app(state(dir.path()));
        for bad in ["a,b", "line\nbreak", "quo\"te", " padded", ""] {
            let mut record = serde_json::Map::new();
            record.insert(bad.to_string(), serde_json::json!(1.0));
            record.insert("admitted".into(), serde_json::json!(1.0));
            let (status, body) = post(
                app.clone(),
                "/v1/collections/c/records",
                serde_json::json!({"records": [record]}),
            )
            .await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("BAD_COLUMN_NAME")),
                "{bad:?}: {body}"
            );
        }
    }

    #[tokio::test]
    async fn records_are_kept_and_snapshotted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = app(state(dir.path()));
        let records = serde_json::json!({"records": [{"score": 80.0, "admitted": 1.0}, {"score": 20.0, "admitted": 0.0}]});
        let (status, body) = post(app.clone(), "/v1/collections/exams/records", records).await;
        assert_eq!((status, body["total"].as_u64()), (StatusCode::OK, Some(2)));
        let (status, body) = post(
            app.clone(),
            "/v1/collections/exams/records",
            serde_json::json!({"records": [{"other": 1.0}]}),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("BAD_RECORD"))
        );
        let (status, body) = post(
            app.clone(),
            "/v1/collections/exams/snapshot",
            serde_json::json!({"label": "admitted"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["rows"].as_u64(), Some(2));
        // Durable: a new state on the same home sees the records.
        let app2 = super::app(state(dir.path()));
        let response = app2
            .oneshot(Request::get("/v1/collections/exams").body(Body::empty()).expect("req"))
            .await
            .expect("ok");
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let info: CollectionInfo = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(info.records, 2);
    }

    #[tokio::test]
    async fn synthetic_source_validates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = app(state(dir.path()));
        let ok = serde_json::json!({"intercept": -10.0, "coefficients": [0.2], "ranges": [[0.0, 100.0]], "rows": 100, "seed": 1});
        let (status, body) = post(app.clone(), "/v1/datasets/synthetic", ok).await;
        assert_eq!((status, body["rows"].as_u64()), (StatusCode::OK, Some(100)));
        let bad = serde_json::json!({"intercept": -10.0, "coefficients": [0.2], "ranges": [], "rows": 100});
        let (status, body) = post(app.clone(), "/v1/datasets/synthetic", bad).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("INVALID_GENERATOR"))
        );
        // 13 KB asking for 10M rows × 1000 features (80 GB) is refused before any allocation.
        let huge = serde_json::json!({"intercept": 0.0, "coefficients": vec![0.1; 1000], "ranges": vec![[0.0, 1.0]; 1000], "rows": 10_000_000});
        let (status, body) = post(app.clone(), "/v1/datasets/synthetic", huge).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        let wide = serde_json::json!({"intercept": 0.0, "coefficients": [0.1], "ranges": [[-1e308, 1e308]], "rows": 10});
        let (status, body) = post(app, "/v1/datasets/synthetic", wide).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("INVALID_GENERATOR")),
            "{body}"
        );
    }

    /// Where the property test's bodies name the CSV: each case puts `data.csv` (`a,y` with
    /// two rows) in a directory of its own, allowed to its service, and names it there instead
    /// ([`naming_the_data`]); a directory shared by the whole run would outlive it.
    const DATA_CSV: &str = "/the-case's-own/data.csv";

    /// `body` with every [`DATA_CSV`] in it made `path`.
    fn naming_the_data(body: &serde_json::Value, path: &std::path::Path) -> serde_json::Value {
        match body {
            serde_json::Value::String(s) if s == DATA_CSV => serde_json::json!(path),
            serde_json::Value::Array(items) => {
                items.iter().map(|v| naming_the_data(v, path)).collect()
            }
            serde_json::Value::Object(fields) => {
                fields.iter().map(|(k, v)| (k.clone(), naming_the_data(v, path))).collect()
            }
            other => other.clone(),
        }
    }

    use proptest::prelude::{Just, Strategy};

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
        /// Any JSON to any of ingest's JSON routes: a 2xx or a 4xx naming the problem. The
        /// CSV's path is absolute, under an allowed root, and collection `c` holds a record, so
        /// valid cases reach the file and the snapshot rather than stopping at "not allowed"
        /// and "not found".
        #[test]
        fn any_json_body_gets_an_answer_never_a_5xx(
            (route, body) in {
                const FIELDS: &[&str] = &["path", "label", "features", "intercept", "coefficients", "ranges", "rows", "seed", "records"];
                let csv = serde_json::json!(DATA_CSV);
                let samples = vec![csv.clone(), serde_json::json!([[0.0, 1.0]]), serde_json::json!([0.5]), serde_json::json!([{"a": 1.0, "y": 0.0}])];
                let valid = [
                    serde_json::json!({"path": csv, "label": "y"}),
                    serde_json::json!({"intercept": -1.0, "coefficients": [0.5], "ranges": [[0.0, 1.0]], "rows": 10, "seed": 1}),
                    serde_json::json!({"records": [{"a": 1.0, "y": 0.0}]}),
                    serde_json::json!({"label": "y"}),
                ];
                (0usize..4).prop_flat_map(move |route| {
                    let body = proptest::prop_oneof![
                        logitflow_kit::testing::bodies::any_json(FIELDS, samples.clone()),
                        logitflow_kit::testing::bodies::near(valid[route].clone(), FIELDS, samples.clone()),
                    ];
                    (Just(route), body)
                })
            },
        ) {
            let path = ["/v1/datasets/csv", "/v1/datasets/synthetic", "/v1/collections/c/records", "/v1/collections/c/snapshot"][route];
            let dir = tempfile::tempdir().expect("tempdir");
            let data = dir.path().join("data");
            std::fs::create_dir(&data).expect("data dir");
            std::fs::write(data.join("data.csv"), "a,y\n1,0\n2,1\n").expect("csv");
            let data = data.canonicalize().expect("canonical");
            let body = naming_the_data(&body, &data.join("data.csv"));
            logitflow_kit::testing::bodies::assert_answers(
                move || async move {
                    let mut config = Config::for_home(dir.path().join("home"));
                    config.allowed_roots = vec![data];
                    let app = app(AppState::new(&config).expect("state"));
                    let (status, _) = post(app.clone(), "/v1/collections/c/records", serde_json::json!({"records": [{"a": 1.0, "y": 0.0}]})).await;
                    assert!(status.is_success(), "the collection is made");
                    (dir, app)
                },
                "POST",
                path,
                &body,
            );
        }
    }
}
