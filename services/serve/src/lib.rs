//! The serve service: model serving over the Open Inference Protocol v2.
//!
//! - `POST /v2/models/{name}[/versions/{version}]/infer` ([`InferRequest`] → [`InferResponse`]):
//!   one FP64 tensor `[N, features]` (or one tensor per feature, by name), answered with a
//!   `probability` tensor `[N, 1]`, the `model_version` that answered, and the echoed `id`.
//!   `version` is a number or an alias (`stable`, the default, or `candidate`).
//! - `GET /v2/models/{name}[/versions/{version}]` ([`ModelMetadata`]), `.../ready`, `GET /v2`.
//! - `POST /v2/repository/models/{name}/load` ([`LoadInfo`]): reads the registry, loads and
//!   checks every version, warms it, then swaps the whole catalog in one atomic store. A
//!   request holds the catalog it started with, so none fails during a swap, and an old
//!   version is dropped when its last request is done. A version that fails its hash check is
//!   refused and the catalog stays as it was.
//! - `POST /v2/repository/index`: every version, loaded or not (and why not).
//! - `GET /v2/models[/{name}[/versions/{version}]]/stats`: Triton's model statistics, from
//!   each version's [`VersionStats`]; `/metrics` shows the same as `nv_inference_*` series and a
//!   latency histogram per model and version.
//! - `POST /v1/predict` ([`PredictRequest`] → [`PredictResponse`]): the same for people.
//! - [`grpc`]: the same over gRPC (`inference.GRPCInferenceService`), from the same catalog.
//!
//! The prediction path takes no lock: it reads the catalog through an [`ArcSwap`], and counts
//! into per-thread shards of its version's statistics. A binary request whose JSON header is
//! the same bytes as the last one on its thread is answered without parsing or writing JSON
//! (`repeat.rs`).

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use logitflow_core::model::Model;
use logitflow_core::scale::{Encoding, Value};
use logitflow_core::table::Classes;
use logitflow_kit::wire::{
    ClassProbability, InferOutput, InferRequest, InferResponse, LoadInfo, ModelMetadata,
    OutputData, Parameters, PredictRequest, PredictResponse, TensorMetadata,
};
use logitflow_kit::{ApiError, Config, Json, Readiness, blocking};
use logitflow_store::registry::{Registry, STABLE};
use logitflow_store::{Kind, Store};
use std::sync::Arc;

mod binary;
mod catalog;
pub mod grpc;
mod inputs;
mod outputs;
mod repeat;
mod stats;

use catalog::{Catalog, Served, served_in};
pub use inputs::decode_inputs;
use inputs::{invalid, unusable};

use stats::Snapshot;

pub const NAME: &str = "serve";
/// Rows in one request, at most.
pub const MAX_ROWS: usize = 100_000;
/// How often the registry is checked for changes made by others.
const REGISTRY_POLL: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Clone)]
pub struct AppState {
    store: Store,
    registry: Registry,
    catalog: Arc<ArcSwap<Catalog>>,
    /// Serialises loads (never taken on the prediction path).
    loading: Arc<tokio::sync::Mutex<()>>,
    /// Ready once [`AppState::load_all`] has gone through every registered model.
    readiness: Readiness,
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<AppState> {
        let store = config.open_store()?;
        Ok(AppState {
            registry: store.registry(),
            store,
            catalog: Arc::new(ArcSwap::from_pointee(Catalog::new())),
            loading: Arc::default(),
            readiness: Readiness::not_ready("loading models from the registry"),
        })
    }

    /// Loads every model the registry names; what fails is logged and left out, and reported
    /// in the model's metadata. Serve is ready once this has gone through every model.
    pub async fn load_all(&self) -> Result<(), ApiError> {
        let registry = self.registry.clone();
        let names =
            blocking(move || Ok(registry.load()?.models.into_keys().collect::<Vec<String>>()))
                .await;
        let names = match names {
            Ok(names) => names,
            Err(e) => {
                self.readiness.set(Err(format!("cannot read the registry: {e}")));
                return Err(e);
            }
        };
        for name in names {
            if let Err(e) = self.load(&name).await {
                tracing::warn!(model = %name, error = %e, "model not loaded");
            }
        }
        // Ready only now: one model loaded is no reason, for a client may ask for the next. An
        // alias whose version cannot be loaded does not make serve unready: the other models and
        // versions are served, the alias keeps what it served before, the model's metadata says
        // why, and the run that stores the damaged artifact again (healing it) needs serve up.
        self.readiness.set(Ok(()));
        Ok(())
    }

    /// The registry's fingerprint (its hash in a home, its ETag in an object store; `None`
    /// when it cannot be read): a cheap test of whether anyone changed it.
    async fn registry_fingerprint(&self) -> Option<String> {
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || registry.fingerprint()).await.ok().flatten()
    }

    /// Loads, checks and warms every registered version of `name` one by one, then swaps them
    /// in. A version that cannot be loaded (a damaged artifact) is skipped and reported, never
    /// takes the others down; an alias pointing at one keeps serving what it served before, and
    /// the load answers with the reason.
    pub async fn load(&self, name: &str) -> Result<LoadInfo, ApiError> {
        let _one_load_at_a_time = self.loading.lock().await;
        let current = self.catalog.load().get(name).cloned();
        let reusable = current.clone();
        let (store, registry, owned_name) =
            (self.store.clone(), self.registry.clone(), name.to_string());
        let (served, first_refusal) =
            blocking(move || Served::load(&store, &registry, &owned_name, reusable.as_deref()))
                .await?;
        // Loads are serialised, so what was loaded before is still `current`.
        let changed = current.is_none_or(|b| {
            b.aliases != served.aliases
                || b.versions
                    .iter()
                    .map(|(v, l)| (v, &l.artifact))
                    .ne(served.versions.iter().map(|(v, l)| (v, &l.artifact)))
        });
        let info = LoadInfo { name: name.to_string(), aliases: served.aliases.clone(), changed };
        let served = Arc::new(served);
        self.catalog.rcu(|catalog| {
            let mut next = Catalog::clone(catalog);
            next.insert(name.to_string(), served.clone());
            next
        });
        tracing::info!(model = name, aliases = ?info.aliases, "loaded");
        match first_refusal {
            Some(refusal) => Err(refusal),
            None => Ok(info),
        }
    }

    /// The loaded versions of `name`.
    fn served(&self, name: &str) -> Result<Arc<Served>, ApiError> {
        served_in(&self.catalog.load(), name).cloned()
    }

    /// Finds the model for `name` and `selector` (alias or number; `stable` when absent).
    fn resolve(&self, name: &str, selector: Option<&str>) -> Result<(u32, Arc<Model>), ApiError> {
        self.served(name)?
            .resolve(name, selector)
            .map(|(version, loaded)| (version, loaded.model.clone()))
    }
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}", get(metadata_version))
        .route("/v2/models/{name}/versions/{version}/ready", get(model_ready_version))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_version))
        .route("/v2/repository/models/{name}/load", post(load_model))
        .route("/v2/repository/index", post(repository_index))
        .route("/v2/models/stats", get(all_statistics))
        .route("/v2/models/{name}/stats", get(model_statistics))
        .route("/v2/models/{name}/versions/{version}/stats", get(version_statistics))
        .route("/v1/predict", post(predict))
        // Behind an `Arc`: handlers get the state by cloning it, and `AppState`'s paths would
        // be copied on every request.
        .with_state(Arc::new(state))
}

pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_grpc(listener, None, config, shutdown).await
}

/// As [`run`], and gRPC (`inference.GRPCInferenceService`) on `grpc` too, from the same
/// catalog. Its own listening line says `"protocol": "grpc"`.
pub async fn run_with_grpc(
    listener: tokio::net::TcpListener,
    grpc: Option<tokio::net::TcpListener>,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use futures::FutureExt;
    let shutdown = shutdown.boxed().shared();
    let state = AppState::new(&config)?;
    if let Some(grpc_listener) = grpc {
        logitflow_kit::announce_listening(NAME, Some("grpc"), grpc_listener.local_addr()?)?;
        let (grpc_state, token, tls, stop) =
            (Arc::new(state.clone()), config.token.clone(), config.tls.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = grpc::serve(grpc_state, token, tls, grpc_listener, stop).await {
                tracing::error!(error = %e, "gRPC stopped");
            }
        });
    }
    let readiness = state.readiness.clone();
    let loader = state.clone();
    // load_all sets readiness: ready, or why not (an unreadable registry, an unservable alias).
    // Then the registry is watched, so a promotion or rollback made by anyone sharing the home
    // (another console, a run elsewhere) is served within a second, told or not.
    tokio::spawn(async move {
        let mut seen = loader.registry_fingerprint().await;
        let _ = loader.load_all().await;
        let mut tick = tokio::time::interval(REGISTRY_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = loader.registry_fingerprint().await;
            if now != seen {
                seen = now;
                tracing::info!("the registry changed: reloading");
                let _ = loader.load_all().await;
            }
        }
    });
    let metrics_state = state.clone();
    let metrics = move |out: &mut String| write_metrics(&metrics_state, out);
    logitflow_kit::serve_with_metrics(
        NAME,
        &config,
        readiness,
        metrics,
        app(state),
        listener,
        shutdown,
    )
    .await?;
    Ok(())
}

async fn server_metadata() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "name": "logitflow-serve",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["model_repository", "binary_tensor_data"],
    }))
}

fn metadata_of(
    state: &AppState,
    name: &str,
    selector: Option<&str>,
) -> Result<ModelMetadata, ApiError> {
    let served = state.served(name)?;
    // The model's own metadata (no version asked) still answers when its stable version cannot
    // be loaded: described by its newest loaded version, it says which versions are unavailable.
    let (version, loaded) = match served.resolve(name, selector) {
        Err(_) if selector.is_none() && !served.refused.is_empty() => {
            served.versions.iter().next_back().map(|(v, l)| (*v, l)).ok_or_else(|| {
                ApiError::NotFound(format!("no version of model {name:?} can be loaded"))
            })?
        }
        resolved => resolved?,
    };
    let model = &loaded.model;
    Ok(ModelMetadata {
        name: name.to_string(),
        versions: if selector.is_some() {
            vec![version.to_string()]
        } else {
            served.versions.keys().map(u32::to_string).collect()
        },
        platform: "logitflow_logistic_regression".into(),
        inputs: input_metadata(model),
        outputs: output_metadata(model),
        aliases: served.aliases.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        feature_names: model.feature_names.clone(),
        intercept: model.intercept,
        coefficients: model.coefficients.clone(),
        classes: Some(match &model.classes {
            Some(classes) if classes.count() > 2 => classes.clone(),
            _ => {
                let (negative, positive) = model.class_names();
                Classes::two(negative, positive)
            }
        }),
        unavailable: served
            .unavailable
            .iter()
            .map(|(v, why)| (v.to_string(), why.clone()))
            .collect(),
        offset: model.transform.offset_input().map(|j| model.feature_names[j].clone()),
        class_estimates: model
            .multinomial
            .as_ref()
            .map(|m| m.estimates.clone())
            .unwrap_or_default(),
    })
}

/// One input per feature, named after it: `FP64` for numbers, `BYTES` with its levels for text.
/// (A numeric model also takes all its features as one FP64 matrix `[N, features]`.)
/// A binary model's probability `[N, 1]`; a K-class model's `[N, K]` and its label `[N]`.
fn output_metadata(model: &Model) -> Vec<TensorMetadata> {
    let k = model.class_count();
    let probability = |width: usize| TensorMetadata {
        name: outputs::PROBABILITY.into(),
        datatype: "FP64".into(),
        shape: vec![-1, width as i64],
        levels: None,
    };
    if k == 2 {
        return vec![probability(1)];
    }
    let label = TensorMetadata {
        name: outputs::LABEL.into(),
        datatype: "BYTES".into(),
        shape: vec![-1],
        levels: Some(model.class_list()),
    };
    vec![probability(k), label]
}

fn input_metadata(model: &Model) -> Vec<TensorMetadata> {
    model
        .feature_names
        .iter()
        .enumerate()
        .map(|(j, name)| match model.transform.encoding(j) {
            Encoding::Numeric | Encoding::Offset => TensorMetadata {
                name: name.clone(),
                datatype: "FP64".into(),
                shape: vec![-1, 1],
                levels: None,
            },
            Encoding::Categorical { levels } | Encoding::Sparse { levels, .. } => TensorMetadata {
                name: name.clone(),
                datatype: "BYTES".into(),
                shape: vec![-1, 1],
                levels: Some(levels.clone()),
            },
        })
        .collect()
}

async fn metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ModelMetadata>, ApiError> {
    metadata_of(&state, &name, None).map(Json)
}

async fn metadata_version(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ModelMetadata>, ApiError> {
    metadata_of(&state, &name, Some(&version)).map(Json)
}

async fn model_ready(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.resolve(&name, None).map(|(v, _)| {
        Json(serde_json::json!({"name": name, "version": v.to_string(), "ready": true}))
    })
}

async fn model_ready_version(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.resolve(&name, Some(&version)).map(|(v, _)| {
        Json(serde_json::json!({"name": name, "version": v.to_string(), "ready": true}))
    })
}

/// One version in the repository index: loaded (`READY`) or not (`UNAVAILABLE`, with why).
pub(crate) struct IndexEntry {
    name: String,
    version: u32,
    unavailable: Option<String>,
}

/// Every version of every model, loaded or not, by name and version; only the loaded ones if
/// `ready_only`.
fn repository_entries(state: &AppState, ready_only: bool) -> Vec<IndexEntry> {
    let catalog = state.catalog.load();
    let mut entries: Vec<IndexEntry> = catalog
        .iter()
        .flat_map(|(name, served)| {
            let ready = served.versions.keys().map(|&version| IndexEntry {
                name: name.clone(),
                version,
                unavailable: None,
            });
            let unavailable =
                served.unavailable.iter().filter(|_| !ready_only).map(|(&version, why)| {
                    IndexEntry { name: name.clone(), version, unavailable: Some(why.clone()) }
                });
            ready.chain(unavailable).collect::<Vec<_>>()
        })
        .collect();
    entries.sort_by(|a, b| (&a.name, a.version).cmp(&(&b.name, b.version)));
    entries
}

/// `POST /v2/repository/index` (body `{"ready": bool}`, or none): every model version, as
/// Triton lists its repository.
async fn repository_index(
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct IndexRequest {
        #[serde(default)]
        ready: bool,
    }
    let request: IndexRequest = if body.iter().all(u8::is_ascii_whitespace) {
        IndexRequest::default()
    } else {
        logitflow_kit::parse_json(&body)?
    };
    let index = repository_entries(&state, request.ready)
        .into_iter()
        .map(|e| match e.unavailable {
            None => serde_json::json!({"name": e.name, "version": e.version.to_string(), "state": "READY"}),
            Some(why) => serde_json::json!({"name": e.name, "version": e.version.to_string(), "state": "UNAVAILABLE", "reason": why}),
        })
        .collect();
    Ok(Json(index))
}

/// The statistics of `name`'s versions (all of them, or the one `selector` names), or of every
/// loaded version when `name` is `None`; by name and version.
fn statistics_of(
    state: &AppState,
    name: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<(String, u32, Snapshot)>, ApiError> {
    let catalog = state.catalog.load();
    let mut all = Vec::new();
    match (name, selector) {
        (Some(name), Some(selector)) => {
            let (version, loaded) = served_in(&catalog, name)?.resolve(name, Some(selector))?;
            all.push((name.to_string(), version, loaded.stats.snapshot()));
        }
        (Some(name), None) => {
            all.extend(
                served_in(&catalog, name)?
                    .versions
                    .iter()
                    .map(|(&v, l)| (name.to_string(), v, l.stats.snapshot())),
            );
        }
        (None, _) => {
            for (name, served) in catalog.iter() {
                all.extend(
                    served.versions.iter().map(|(&v, l)| (name.clone(), v, l.stats.snapshot())),
                );
            }
        }
    }
    all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    Ok(all)
}

/// Triton's statistics answer, `{"model_stats": [...]}`.
fn statistics_json(all: Vec<(String, u32, Snapshot)>) -> Json<serde_json::Value> {
    Json(
        serde_json::json!({"model_stats": all.iter().map(|(name, v, s)| s.triton_json(name, *v)).collect::<Vec<_>>()}),
    )
}

async fn all_statistics(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    statistics_of(&state, None, None).map(statistics_json)
}

async fn model_statistics(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    statistics_of(&state, Some(&name), None).map(statistics_json)
}

async fn version_statistics(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    statistics_of(&state, Some(&name), Some(&version)).map(statistics_json)
}

/// serve's own series for `/metrics`: each loaded version's inference statistics.
fn write_metrics(state: &AppState, out: &mut String) {
    stats::write_prometheus_help(out);
    for (name, version, snapshot) in statistics_of(state, None, None).unwrap_or_default() {
        snapshot.write_prometheus(&name, version, out);
    }
}

async fn load_model(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<LoadInfo>, ApiError> {
    state.load(&name).await.map(Json)
}

async fn infer(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: axum::extract::Request,
) -> Response {
    answer_request(&state, name, None, request).await
}

async fn infer_version(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
    request: axum::extract::Request,
) -> Response {
    answer_request(&state, name, Some(&version), request).await
}

/// [`answer`] to an infer request as it came. Its headers are moved out of it, where axum's
/// `HeaderMap` extractor would clone them, names and all, on every request; its body is read as
/// the `Bytes` extractor reads it (the same limit, the same refusal).
async fn answer_request(
    state: &AppState,
    name: String,
    selector: Option<&str>,
    mut request: axum::extract::Request,
) -> Response {
    use axum::extract::FromRequest;
    let headers = std::mem::take(request.headers_mut());
    match axum::body::Bytes::from_request(request, &()).await {
        Ok(body) => answer(state, name, selector, &headers, &body).into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

/// Answers an infer request for `name` at `selector`, counted in that version's statistics: a
/// request for a model or version that is not served is refused before, and counted nowhere.
fn answer(
    state: &AppState,
    name: String,
    selector: Option<&str>,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    // Borrowed from the catalog as it is now rather than cloned out of it: two fewer reference
    // counts, shared by every request, bounced between the cores on each prediction.
    let catalog = state.catalog.load();
    let (version, loaded) = served_in(&catalog, &name)?.resolve(&name, selector)?;
    loaded.count(started, infer_with(&loaded.model, version, name, headers, body))
}

/// The response to an infer body for `model` (at `version`), and the rows it answered.
fn infer_with(
    model: &Arc<Model>,
    version: u32,
    name: String,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(Response, usize), ApiError> {
    // An infer body is JSON whatever its Content-Type says (absent, application/json,
    // application/octet-stream), as Triton and KServe take it: tritonclient sends none.
    let (json, binary) = binary::split_body(headers, body)?;
    if let Some(answered) = repeat::answer(model, version, &name, json, binary) {
        return answered;
    }
    let mut request: InferRequest = logitflow_kit::parse_json(json)?;
    let as_binary = binary::output_wanted(&request);
    let as_sent =
        (as_binary && repeat::can_remember(&request, json)).then(|| request.inputs.clone());
    binary::attach_inputs(&mut request.inputs, binary)?;
    let (x, rows) = decode_inputs(std::mem::take(&mut request.inputs), model)?;
    let wanted = outputs::wanted_of(&request);
    let answers = outputs::answer(model, &x, rows, &wanted)?;
    let remembered_outputs = as_sent
        .as_ref()
        .filter(|_| repeat::fixed_length(&answers))
        .map(|_| answers.iter().map(|a| (a.name, a.shape.clone())).collect::<Vec<_>>());
    let (response, raw) = response_of((name, version, request.id), answers, as_binary);
    if !as_binary {
        return Ok((Json(response).into_response(), rows));
    }
    let header = binary::header_of(&response)?;
    let answer = binary::respond(&header, &raw);
    if let (Some(inputs), Some(outputs)) = (as_sent, remembered_outputs) {
        repeat::remember(repeat::Remembered {
            model: Arc::downgrade(model),
            version,
            name: response.model_name,
            header: json.to_vec(),
            inputs,
            wanted,
            outputs,
            answer_header: header,
        });
    }
    Ok((answer, rows))
}

/// The response to `answers` for `name` at `version` (echoing `id`), and, as binary data, each
/// output's values to write after its JSON header, which then says how long they are.
fn response_of(
    (name, version, id): (String, u32, Option<String>),
    answers: Vec<outputs::Output>,
    as_binary: bool,
) -> (InferResponse, Vec<outputs::Values>) {
    // Binary outputs' values, written after the JSON header once it is.
    let mut raw = Vec::new();
    let outputs = answers
        .into_iter()
        .map(|answer| {
            let datatype = answer.values.datatype();
            let (data, parameters) = if as_binary {
                // Each output says how long its binary data is.
                let size = Some(answer.values.raw_len() as u64);
                raw.push(answer.values);
                (
                    OutputData::default(),
                    Some(Parameters { binary_data_size: size, ..Parameters::default() }),
                )
            } else {
                (answer.values.into_data(), None)
            };
            InferOutput {
                name: answer.name.into(),
                shape: answer.shape,
                datatype,
                parameters,
                data,
            }
        })
        .collect();
    let response =
        InferResponse { model_name: name, model_version: version.to_string(), id, outputs };
    (response, raw)
}

async fn predict(
    State(state): State<Arc<AppState>>,
    Json(request): Json<PredictRequest>,
) -> Result<Json<PredictResponse>, ApiError> {
    let name = request.model.clone().unwrap_or_else(|| single_model(&state).unwrap_or_default());
    let started = std::time::Instant::now();
    let catalog = state.catalog.load();
    let (version, loaded) =
        served_in(&catalog, &name)?.resolve(&name, request.version.as_deref())?;
    let answer = loaded.count(started, predict_with(&loaded.model, request))?;
    Ok(Json(PredictResponse { model_name: name, model_version: version.to_string(), ..answer }))
}

/// The answer to a predict request's rows under `model` (its names left empty), and how many
/// rows.
fn predict_with(
    model: &Model,
    request: PredictRequest,
) -> Result<(PredictResponse, usize), ApiError> {
    let rows: Vec<Vec<Value>> = match (request.inputs, request.features) {
        (Some(rows), None) => rows,
        (None, Some(features)) => {
            let needs = model.feature_names.join(", ");
            let row = model
                .feature_names
                .iter()
                .enumerate()
                .map(|(j, f)| {
                    let what =
                        if model.transform.offset_input() == Some(j) { "the offset " } else { "" };
                    features.get(f).cloned().ok_or_else(|| {
                        invalid(format!("features is missing {what}{f:?}; the model needs {needs}"))
                    })
                })
                .collect::<Result<Vec<Value>, ApiError>>()?;
            if features.len() != row.len() {
                return Err(invalid(format!(
                    "features has names the model does not know; it needs {}",
                    model.feature_names.join(", ")
                )));
            }
            vec![row]
        }
        _ => {
            return Err(invalid(
                "send either inputs (rows of values) or features (one row by name)",
            ));
        }
    };
    if rows.is_empty() || rows.len() > MAX_ROWS {
        return Err(invalid(format!("send between 1 and {MAX_ROWS} rows")));
    }
    let mut answer = PredictResponse {
        model_name: String::new(),
        model_version: String::new(),
        ..PredictResponse::default()
    };
    let (k, names) = (model.class_count(), model.class_list());
    let mut terms = Vec::with_capacity(model.row_width());
    let mut by_class = vec![0.0; k];
    for (i, row) in rows.iter().enumerate() {
        terms.clear();
        model.encode_row(row, &mut terms).map_err(|e| unusable(i, e))?;
        if k == 2 {
            answer.probabilities.push(model.probability_raw(&terms));
            continue;
        }
        model.probabilities_raw(&terms, &mut by_class);
        answer.labels.push(names[logitflow_core::metrics::most_probable(&by_class)].clone());
        answer.classes.push(
            names
                .iter()
                .zip(&by_class)
                .map(|(class, &probability)| ClassProbability { class: class.clone(), probability })
                .collect(),
        );
    }
    Ok((answer, rows.len()))
}

/// The model's name when exactly one is loaded, so people need not name it.
fn single_model(state: &AppState) -> Option<String> {
    let catalog = state.catalog.load();
    (catalog.len() == 1).then(|| catalog.keys().next().cloned()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::HEADER_LENGTH;
    use axum::http::StatusCode;

    use logitflow_store::registry::CANDIDATE;

    use logitflow_kit::testing::call;

    fn put_model(store: &Store, bias: f64, slope: f64) -> String {
        let m = Model::one_feature(bias, slope);
        store
            .put_json(Kind::Model, "test", vec![], serde_json::json!({}), "model.json", &m)
            .expect("model")
    }

    /// An OIP infer body of one score.
    fn infer_body(score: f64) -> serde_json::Value {
        serde_json::json!({"inputs": [{"name": "score", "shape": [1, 1], "datatype": "FP64", "data": [score]}]})
    }

    async fn setup() -> (tempfile::TempDir, AppState, Router) {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path())).expect("state");
        let v1 = put_model(&state.store, -10.0, 0.2);
        state.registry.register("admissions", &v1, None, None).expect("register");
        state.registry.set_alias("admissions", STABLE, 1).expect("alias");
        state.load_all().await.expect("loads");
        let app = app(state.clone());
        (dir, state, app)
    }

    #[tokio::test]
    async fn statistics_count_each_version_s_answers_refusals_and_rows_and_survive_a_reload() {
        let (_dir, state, app) = setup().await;
        let rows = |n: usize| serde_json::json!({"inputs": [{"name": "score", "shape": [n, 1], "datatype": "FP64", "data": vec![70.0; n]}]});
        for n in [1, 2, 3] {
            let (status, _) =
                call(&app, "POST", "/v2/models/admissions/infer", Some(rows(n))).await;
            assert_eq!(status, StatusCode::OK);
        }
        let bad = serde_json::json!({"inputs": [{"name": "score", "shape": [1, 1], "datatype": "FP64", "data": ["x"]}]});
        let (status, _) = call(&app, "POST", "/v2/models/admissions/infer", Some(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) =
            call(&app, "POST", "/v1/predict", Some(serde_json::json!({"inputs": [[80.0]]}))).await;
        assert_eq!(status, StatusCode::OK);
        // A second version, loaded: v1 keeps its counts, v2 starts from none.
        let v2 = put_model(&state.store, -12.0, 0.2);
        state.registry.register("admissions", &v2, None, None).expect("register");
        state.registry.set_alias("admissions", CANDIDATE, 2).expect("alias");
        let (status, _) = call(&app, "POST", "/v2/repository/models/admissions/load", None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) =
            call(&app, "POST", "/v2/models/admissions/versions/candidate/infer", Some(rows(4)))
                .await;
        assert_eq!(status, StatusCode::OK);

        let (status, stats) = call(&app, "GET", "/v2/models/admissions/stats", None).await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        let versions = stats["model_stats"].as_array().expect("model_stats");
        assert_eq!(versions.len(), 2, "{stats}");
        let v1 = &versions[0];
        assert_eq!((v1["name"].as_str(), v1["version"].as_str()), (Some("admissions"), Some("1")));
        assert_eq!(
            v1["inference_stats"]["success"]["count"], 4,
            "three infers and one predict: {v1}"
        );
        assert_eq!(v1["inference_stats"]["fail"]["count"], 1, "{v1}");
        assert_eq!(v1["inference_count"], 7, "1 + 2 + 3 rows and the predict's one: {v1}");
        assert!(v1["inference_stats"]["success"]["ns"].as_u64().unwrap_or(0) > 0, "{v1}");
        assert!(
            v1["last_inference"].as_u64().unwrap_or(0) > 1_700_000_000_000,
            "milliseconds since the epoch: {v1}"
        );
        assert_eq!(
            (versions[1]["inference_count"].as_u64(), versions[1]["execution_count"].as_u64()),
            (Some(4), Some(1))
        );

        let (_, one) =
            call(&app, "GET", "/v2/models/admissions/versions/candidate/stats", None).await;
        assert_eq!(one["model_stats"].as_array().map(|a| a.len()), Some(1), "{one}");
        assert_eq!(one["model_stats"][0]["version"], "2");
        let (_, all) = call(&app, "GET", "/v2/models/stats", None).await;
        assert_eq!(all["model_stats"].as_array().map(|a| a.len()), Some(2), "{all}");
        let (status, _) = call(&app, "GET", "/v2/models/nosuch/stats", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let mut metrics = String::new();
        write_metrics(&state, &mut metrics);
        assert!(
            metrics
                .contains("nv_inference_request_success{model=\"admissions\",version=\"1\"} 4\n"),
            "{metrics}"
        );
        assert!(
            metrics
                .contains("nv_inference_request_failure{model=\"admissions\",version=\"1\"} 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("nv_inference_count{model=\"admissions\",version=\"2\"} 4\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("logitflow_inference_request_duration_seconds_bucket{model=\"admissions\",version=\"1\",le=\"+Inf\"} 4\n"),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn the_repository_index_lists_every_version_or_only_the_ready_ones() {
        let (dir, state, app) = setup().await;
        let v2 = put_model(&state.store, -12.0, 0.2);
        state.registry.register("admissions", &v2, None, None).expect("register");
        damage(dir.path(), &v2);
        let _ = call(&app, "POST", "/v2/repository/models/admissions/load", None).await;
        let (status, index) = call(&app, "POST", "/v2/repository/index", None).await;
        assert_eq!(status, StatusCode::OK, "{index}");
        assert_eq!(index.as_array().map(|a| a.len()), Some(2), "{index}");
        assert_eq!(
            (index[1]["version"].as_str(), index[1]["state"].as_str()),
            (Some("2"), Some("UNAVAILABLE")),
            "{index}"
        );
        let (_, ready) =
            call(&app, "POST", "/v2/repository/index", Some(serde_json::json!({"ready": true})))
                .await;
        assert_eq!(
            ready,
            serde_json::json!([{"name": "admissions", "version": "1", "state": "READY"}])
        );
        let (status, _) =
            call(&app, "POST", "/v2/repository/index", Some(serde_json::json!({"ready": "yes"})))
                .await;
        assert!(status.is_client_error());
    }

    #[tokio::test]
    async fn a_numeric_model_of_three_features_takes_one_matrix_or_one_tensor_per_feature_in_any_order()
     {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path())).expect("state");
        let id = state
            .store
            .put_json(
                Kind::Model,
                "test",
                vec![],
                serde_json::json!({}),
                "model.json",
                &Model::scaled_example(),
            )
            .expect("model");
        state.registry.register("scaled", &id, None, None).expect("register");
        state.registry.set_alias("scaled", STABLE, 1).expect("alias");
        state.load_all().await.expect("loads");
        let app = app(state);
        // Two rows; z in the data's units: −16.7 + 0.4a − 2.4b + 0.01c.
        let rows = [[12.0, -4.0, 150.0], [10.0, -5.0, 100.0]];
        let expected: Vec<f64> = rows
            .iter()
            .map(|r| {
                logitflow_core::logistic::sigmoid(-16.7 + 0.4 * r[0] - 2.4 * r[1] + 0.01 * r[2])
            })
            .collect();
        let matrix = serde_json::json!({"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": rows}]});
        let column = |name: &str, j: usize| serde_json::json!({"name": name, "shape": [2], "datatype": "FP64", "data": [rows[0][j], rows[1][j]]});
        let named = serde_json::json!({"inputs": [column("c", 2), column("a", 0), column("b", 1)]});
        for body in [matrix, named] {
            let (status, answer) = call(&app, "POST", "/v2/models/scaled/infer", Some(body)).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            let got: Vec<f64> = answer["outputs"][0]["data"]
                .as_array()
                .expect("data")
                .iter()
                .filter_map(|v| v.as_f64())
                .collect();
            assert_eq!(got.len(), 2);
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() < 1e-12, "{got:?} vs {expected:?}");
            }
        }
        let missing =
            serde_json::json!({"inputs": [column("c", 2), column("a", 0), column("z", 1)]});
        let (status, answer) = call(&app, "POST", "/v2/models/scaled/infer", Some(missing)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            answer["error"].as_str().is_some_and(|e| e.contains("\"b\"")),
            "names the missing feature: {answer}"
        );
    }

    #[tokio::test]
    async fn text_features_are_served_as_one_tensor_per_feature_and_unseen_levels_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path())).expect("state");
        let id = state
            .store
            .put_json(
                Kind::Model,
                "test",
                vec![],
                serde_json::json!({}),
                "model.json",
                &Model::credit_example(),
            )
            .expect("model");
        state.registry.register("credit", &id, None, None).expect("register");
        state.registry.set_alias("credit", STABLE, 1).expect("alias");
        state.load_all().await.expect("loads");
        let app = app(state);
        let expected = logitflow_core::logistic::sigmoid(-10.0 - 0.7 + 0.005 * 1500.0);
        let body = serde_json::json!({"id": "c1", "inputs": [
            {"name": "balance", "shape": [2], "datatype": "FP64", "data": [1500.0, 1500.0]},
            {"name": "student", "shape": [2], "datatype": "BYTES", "data": ["Yes", "No"]},
        ]});
        let (status, out) = call(&app, "POST", "/v2/models/credit/infer", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        let p = out["outputs"][0]["data"][0].as_f64().unwrap_or(f64::NAN);
        assert!((p - expected).abs() < 1e-12, "{p} vs {expected}");
        let reference_level = out["outputs"][0]["data"][1].as_f64().unwrap_or(f64::NAN);
        assert!(
            (reference_level - logitflow_core::logistic::sigmoid(-10.0 + 0.005 * 1500.0)).abs()
                < 1e-12
        );

        let (status, out) = call(
            &app,
            "POST",
            "/v1/predict",
            Some(serde_json::json!({"model": "credit", "features": {"student": "Yes", "balance": 1500}})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert!((out["probabilities"][0].as_f64().unwrap_or(f64::NAN) - expected).abs() < 1e-12);

        let unseen = serde_json::json!({"model": "credit", "inputs": [["Maybe", 1500]]});
        let (status, out) = call(&app, "POST", "/v1/predict", Some(unseen)).await;
        assert_eq!(
            (status, out["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("UNKNOWN_LEVEL")),
            "{out}"
        );
        let message = out["error"].as_str().unwrap_or("");
        assert!(
            message.contains("\"student\"")
                && message.contains("\"Maybe\"")
                && message.contains("No, Yes"),
            "{message}"
        );
        let matrix = serde_json::json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 1500.0]}]});
        let (status, out) = call(&app, "POST", "/v2/models/credit/infer", Some(matrix)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            out["error"].as_str().is_some_and(|e| e.contains("one tensor per feature")),
            "{out}"
        );

        let (status, meta) = call(&app, "GET", "/v2/models/credit", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            meta["inputs"][0],
            serde_json::json!({"name": "student", "datatype": "BYTES", "shape": [-1, 1], "levels": ["No", "Yes"]})
        );
        assert_eq!(meta["inputs"][1]["datatype"], "FP64");
        // A JSON value sorts its keys, so the order is read from the text itself.
        let (_, raw) = logitflow_kit::testing::call_raw(
            &app,
            "GET",
            "/v2/models/credit",
            "application/json",
            vec![],
        )
        .await;
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.contains(r#""coefficients":{"student=Yes":-0.7,"balance":0.005}"#),
            "in the model's term order: {text}"
        );
        assert_eq!(meta["classes"]["positive"], "Yes");
    }

    #[tokio::test]
    async fn infer_answers_the_worked_example_with_version_and_id() {
        let (_dir, _state, app) = setup().await;
        let body = serde_json::json!({"id": "q1", "inputs": [{"name": "input-0", "shape": [2, 1], "datatype": "FP64", "data": [[80.0], [50.0]]}]});
        let (status, out) = call(&app, "POST", "/v2/models/admissions/infer", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(
            (out["model_version"].as_str(), out["id"].as_str(), out["model_name"].as_str()),
            (Some("1"), Some("q1"), Some("admissions"))
        );
        let p = out["outputs"][0]["data"][0].as_f64().expect("number");
        assert!((p - 0.99752737684).abs() < 1e-9);
        assert_eq!(out["outputs"][0]["data"][1].as_f64(), Some(0.5));
        let (status, out) = call(
            &app,
            "POST",
            "/v1/predict",
            Some(serde_json::json!({"features": {"score": 80.0}})),
        )
        .await;
        assert_eq!((status, out["model_version"].as_str()), (StatusCode::OK, Some("1")), "{out}");
    }

    #[tokio::test]
    async fn bad_inference_requests_are_422_and_name_the_problem() {
        let (_dir, _state, app) = setup().await;
        let cases = [
            serde_json::json!({"inputs": []}),
            serde_json::json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}),
            serde_json::json!({"inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP64", "data": [1.0]}]}),
            serde_json::json!({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "BYTES", "data": ["a"]}]}),
            serde_json::json!({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": ["80"]}]}),
            serde_json::json!({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [[[[[[80]]]]]]}]}),
            serde_json::json!({"inputs": [{"name": "x", "shape": [0, 1], "datatype": "FP64", "data": []}]}),
            serde_json::json!({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [true]}]}),
        ];
        for body in cases {
            let (status, out) =
                call(&app, "POST", "/v2/models/admissions/infer", Some(body.clone())).await;
            assert!(status.is_client_error(), "{body} → {status} {out}");
            assert!(out["error"].as_str().is_some_and(|e| !e.is_empty()), "{body} → {out}");
        }
        let (status, _) =
            call(&app, "POST", "/v2/models/nope/infer", Some(serde_json::json!({"inputs": []})))
                .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let huge = serde_json::json!({"inputs": [{"name": "x", "shape": [usize::MAX, 2], "datatype": "FP64", "data": []}]});
        let (status, _) = call(&app, "POST", "/v2/models/admissions/infer", Some(huge)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn load_swaps_versions_and_keeps_aliases_apart() {
        let (_dir, state, app) = setup().await;
        let v2 = put_model(&state.store, -12.0, 0.2);
        state.registry.register("admissions", &v2, None, None).expect("register");
        state.registry.set_alias("admissions", CANDIDATE, 2).expect("alias");
        let (status, info) =
            call(&app, "POST", "/v2/repository/models/admissions/load", None).await;
        assert_eq!(
            (status, info["aliases"]["candidate"].as_u64()),
            (StatusCode::OK, Some(2)),
            "{info}"
        );
        let body = serde_json::json!({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [60.0]}]});
        let (_, stable) =
            call(&app, "POST", "/v2/models/admissions/infer", Some(body.clone())).await;
        let (_, candidate) =
            call(&app, "POST", "/v2/models/admissions/versions/candidate/infer", Some(body)).await;
        assert_eq!(
            (stable["model_version"].as_str(), candidate["model_version"].as_str()),
            (Some("1"), Some("2"))
        );
        let (status, meta) = call(&app, "GET", "/v2/models/admissions", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!((meta["coefficients"]["score"].as_f64().unwrap_or(0.0) - 0.2).abs() < 1e-12);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]
        /// Whatever JSON arrives, the answer is a 4xx with a JSON error naming the problem (or a
        /// 200 if it happens to be valid) — never a 5xx, never a panic — and serve keeps answering.
        #[test]
        fn any_json_body_gets_a_4xx_json_error_and_serve_stays_up(
            body in logitflow_kit::testing::bodies::any_json(
                &["inputs", "shape", "data", "datatype", "name", "id", "features", "model", "version"],
                vec![serde_json::json!("FP64"), serde_json::json!([1, 1]), serde_json::json!("score")],
            ),
            route in 0usize..3,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let (_dir, _state, app) = setup().await;
                let path = ["/v2/models/admissions/infer", "/v1/predict", "/v2/models/admissions/versions/1/infer"][route];
                let (status, out) = call(&app, "POST", path, Some(body.clone())).await;
                assert!(status.is_client_error() || status == StatusCode::OK, "{body} → {status} {out}");
                if status.is_client_error() {
                    assert!(out["error"].as_str().is_some_and(|e| !e.is_empty()) && out["code"].is_string(), "{body} → {out}");
                }
                let valid = serde_json::json!({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [80.0]}]});
                let (status, _) = call(&app, "POST", "/v2/models/admissions/infer", Some(valid)).await;
                assert_eq!(status, StatusCode::OK);
            });
        }
    }

    #[tokio::test]
    async fn malformed_bytes_and_wrong_content_types_are_4xx() {
        let (_dir, _state, app) = setup().await;
        let deep_data = format!(
            "{{\"inputs\":[{{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"FP64\",\"data\":{}80{}}}]}}",
            "[".repeat(300),
            "]".repeat(300)
        );
        let cases: [(&str, Vec<u8>, StatusCode); 6] = [
            ("application/json", vec![0xff, 0xfe, 0x00], StatusCode::BAD_REQUEST),
            ("application/json", b"{\"inputs\": [NaN]}".to_vec(), StatusCode::BAD_REQUEST),
            ("application/json", b"{\"inputs\": Infinity}".to_vec(), StatusCode::BAD_REQUEST),
            // Any content type: an infer body is JSON whatever it says (here, with no inputs).
            ("text/plain", b"{}".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
            (
                "application/json",
                format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            ("application/json", deep_data.into_bytes(), StatusCode::BAD_REQUEST),
        ];
        for (content_type, body, expected) in cases {
            let (status, bytes) = logitflow_kit::testing::call_raw(
                &app,
                "POST",
                "/v2/models/admissions/infer",
                content_type,
                body,
            )
            .await;
            let out: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            assert_eq!(status, expected, "{out}");
            assert!(out["error"].is_string(), "{out}");
        }
    }

    /// Damages a stored model's file, as a flipped byte on disk would.
    fn damage(dir: &std::path::Path, artifact: &str) {
        let path = dir.join("artifacts").join(artifact).join("model.json");
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[10] ^= 0x20;
        std::fs::write(&path, bytes).expect("write");
    }

    #[tokio::test]
    async fn a_promotion_made_by_someone_else_is_served_untold() {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = testing::spawn_with_worked_example(dir.path()).await;
        let client = logitflow_kit::client::ServiceClient::new("serve", addr, None);
        // Another console on the same home registers and promotes v2; nobody tells this serve.
        let store = Store::open(dir.path()).expect("store");
        let registry = Registry::open(dir.path());
        let v2 = put_model(&store, -12.0, 0.2);
        registry.register("admissions", &v2, None, None).expect("register");
        registry.set_alias("admissions", STABLE, 2).expect("alias");
        let request = PredictRequest {
            model: Some("admissions".into()),
            inputs: Some(vec![vec![Value::Number(80.0)]]),
            ..PredictRequest::default()
        };
        let started = std::time::Instant::now();
        loop {
            let answer: PredictResponse =
                client.post("/v1/predict", &request).await.expect("answers throughout");
            if answer.model_version == "2" {
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "still v{} after 5 s",
                answer.model_version
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // A rollback, the same.
        registry.rollback("admissions").expect("rollback");
        let started = std::time::Instant::now();
        loop {
            let answer: PredictResponse =
                client.post("/v1/predict", &request).await.expect("answers throughout");
            if answer.model_version == "1" {
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "still v{} after 5 s",
                answer.model_version
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// With a certificate, gRPC speaks TLS: a client trusting it is answered, a plaintext one
    /// is not.
    #[tokio::test]
    async fn grpc_with_a_certificate_speaks_tls() {
        use grpc::proto::ServerLiveRequest;
        use grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
        let (dir, state, _) = setup().await;
        let made =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).expect("cert");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(grpc::serve(
            Arc::new(state),
            None,
            Some((cert, key)),
            listener,
            std::future::pending(),
        ));
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(made.cert.pem()))
            .domain_name("localhost");
        let endpoint = tonic::transport::Endpoint::from_shared(format!("https://localhost:{port}"))
            .expect("endpoint");
        let channel =
            endpoint.tls_config(tls).expect("tls").connect().await.expect("a TLS connection");
        let mut client = GrpcInferenceServiceClient::new(channel);
        assert!(client.server_live(ServerLiveRequest {}).await.expect("live").into_inner().live);
        let plain = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("endpoint")
            .connect()
            .await;
        let answered = match plain {
            Ok(channel) => GrpcInferenceServiceClient::new(channel)
                .server_live(ServerLiveRequest {})
                .await
                .is_ok(),
            Err(_) => false,
        };
        assert!(!answered, "plaintext gRPC was answered");
    }

    /// Values whose decimal and binary forms must agree exactly: long fractions, tiny and large
    /// magnitudes, a negative zero, the double below 50.
    const AWKWARD_SCORES: [f64; 8] = [
        80.0,
        0.1 + 0.2,
        1.0 / 3.0,
        -0.0,
        1e-300,
        123_456.789_012_345,
        49.999_999_999_999_99,
        50.0,
    ];

    fn bits(values: impl IntoIterator<Item = f64>) -> Vec<u64> {
        values.into_iter().map(f64::to_bits).collect()
    }

    fn le_f64(raw: &[u8]) -> Vec<f64> {
        raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default())).collect()
    }

    /// serve's answer to `AWKWARD_SCORES` as HTTP JSON in and out.
    async fn over_json(app: &Router) -> Vec<f64> {
        let n = AWKWARD_SCORES.len();
        let body = serde_json::json!({"inputs": [{"name": "score", "shape": [n, 1], "datatype": "FP64", "data": AWKWARD_SCORES}]});
        let (status, out) = call(app, "POST", "/v2/models/admissions/infer", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        let data = out["outputs"][0]["data"].as_array().cloned().unwrap_or_default();
        data.iter().map(|v| v.as_f64().expect("a number")).collect()
    }

    /// Posts an infer request of a JSON `header` with binary `data` after it to `admissions`.
    async fn post_binary(app: &Router, header: &str, data: &[u8]) -> Response {
        let request = axum::http::Request::post("/v2/models/admissions/infer")
            .header(&HEADER_LENGTH, header.len().to_string())
            .body(axum::body::Body::from([header.as_bytes(), data].concat()))
            .expect("request");
        tower::ServiceExt::oneshot(app.clone(), request).await.expect("infallible")
    }

    /// serve's answer to `AWKWARD_SCORES` as binary tensor data in and out.
    async fn over_binary(app: &Router) -> Vec<f64> {
        let n = AWKWARD_SCORES.len();
        let header = serde_json::json!({
            "inputs": [{"name": "score", "shape": [n, 1], "datatype": "FP64", "parameters": {"binary_data_size": 8 * n}}],
            "parameters": {"binary_data_output": true},
        })
        .to_string();
        let data: Vec<u8> = AWKWARD_SCORES.iter().flat_map(|v| v.to_le_bytes()).collect();
        let response = post_binary(app, &header, &data).await;
        assert_eq!(response.status(), StatusCode::OK);
        let json_length: usize =
            response.headers()[&HEADER_LENGTH].to_str().expect("ascii").parse().expect("a length");
        let bytes =
            http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
        le_f64(&bytes[json_length..])
    }

    /// serve's answers to `AWKWARD_SCORES` over gRPC: as raw contents, then as typed contents.
    async fn over_grpc(state: AppState) -> [Vec<f64>; 2] {
        use grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
        use grpc::proto::{
            InferTensorContents, ModelInferRequest, model_infer_request::InferInputTensor,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(grpc::serve(Arc::new(state), None, None, listener, std::future::pending()));
        let mut client =
            GrpcInferenceServiceClient::connect(format!("http://{addr}")).await.expect("connect");
        let input = |contents| InferInputTensor {
            name: "score".into(),
            datatype: "FP64".into(),
            shape: vec![AWKWARD_SCORES.len() as i64, 1],
            parameters: Default::default(),
            contents,
        };
        let raw: Vec<u8> = AWKWARD_SCORES.iter().flat_map(|v| v.to_le_bytes()).collect();
        let typed =
            InferTensorContents { fp64_contents: AWKWARD_SCORES.to_vec(), ..Default::default() };
        let mut answers = Vec::new();
        for (contents, raw_input_contents) in [(None, vec![raw]), (Some(typed), Vec::new())] {
            let request = ModelInferRequest {
                model_name: "admissions".into(),
                inputs: vec![input(contents)],
                raw_input_contents,
                ..Default::default()
            };
            let answer = client.model_infer(request).await.expect("infer").into_inner();
            answers.push(le_f64(&answer.raw_output_contents[0]));
        }
        answers.try_into().expect("two answers")
    }

    #[tokio::test]
    async fn json_binary_and_grpc_tensors_give_the_same_answers_bit_for_bit() {
        let (_dir, state, app) = setup().await;
        let model = Model::one_feature(-10.0, 0.2);
        let expected = bits(AWKWARD_SCORES.iter().map(|&s| model.probability_raw(&[s])));
        assert_eq!(bits(over_json(&app).await), expected, "HTTP with JSON");
        assert_eq!(bits(over_binary(&app).await), expected, "HTTP with binary data");
        let [raw, typed] = over_grpc(state).await;
        assert_eq!(bits(raw), expected, "gRPC raw contents");
        assert_eq!(bits(typed), expected, "gRPC typed contents");
    }

    #[tokio::test]
    async fn grpc_answers_from_the_same_catalog_with_raw_and_typed_contents_and_checks_the_token() {
        use grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
        use grpc::proto::{
            InferTensorContents, ModelInferRequest, ModelMetadataRequest, ServerLiveRequest,
            model_infer_request::InferInputTensor,
        };
        let (_dir, state, _) = setup().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(grpc::serve(
            Arc::new(state),
            Some("sesame".into()),
            None,
            listener,
            std::future::pending(),
        ));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut client = GrpcInferenceServiceClient::with_interceptor(
            channel.clone(),
            |mut r: tonic::Request<()>| {
                r.metadata_mut()
                    .insert("authorization", "Bearer sesame".parse().expect("metadata"));
                Ok(r)
            },
        );
        assert!(client.server_live(ServerLiveRequest {}).await.expect("live").into_inner().live);
        let meta = client
            .model_metadata(ModelMetadataRequest {
                name: "admissions".into(),
                version: String::new(),
            })
            .await
            .expect("metadata");
        assert_eq!(meta.into_inner().inputs[0].name, "score");
        let input = |contents: Option<InferTensorContents>| InferInputTensor {
            name: "score".into(),
            datatype: "FP64".into(),
            shape: vec![2, 1],
            parameters: Default::default(),
            contents,
        };
        let raw: Vec<u8> = [80f64, 50f64].iter().flat_map(|v| v.to_le_bytes()).collect();
        let typed = InferTensorContents { fp64_contents: vec![80.0, 50.0], ..Default::default() };
        for (contents, raw_input_contents) in [(None, vec![raw]), (Some(typed), Vec::new())] {
            let request = ModelInferRequest {
                model_name: "admissions".into(),
                id: "g1".into(),
                inputs: vec![input(contents)],
                raw_input_contents,
                ..Default::default()
            };
            let answer = client.model_infer(request).await.expect("infer").into_inner();
            assert_eq!((answer.model_version.as_str(), answer.id.as_str()), ("1", "g1"));
            let p: Vec<f64> = answer.raw_output_contents[0]
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect();
            assert!((p[0] - 0.997_527_376_84).abs() < 1e-9 && (p[1] - 0.5).abs() < 1e-12, "{p:?}");
        }
        let stats = client
            .model_statistics(grpc::proto::ModelStatisticsRequest {
                name: "admissions".into(),
                version: String::new(),
            })
            .await
            .expect("statistics")
            .into_inner();
        let v1 = &stats.model_stats[0];
        let success = v1.inference_stats.as_ref().and_then(|s| s.success.as_ref()).map(|d| d.count);
        assert_eq!(
            (v1.version.as_str(), v1.inference_count, success),
            ("1", 4, Some(2)),
            "{stats:?}"
        );
        let index = client
            .repository_index(grpc::proto::RepositoryIndexRequest::default())
            .await
            .expect("index")
            .into_inner();
        assert_eq!(
            index
                .models
                .iter()
                .map(|m| (m.name.as_str(), m.version.as_str(), m.state.as_str()))
                .collect::<Vec<_>>(),
            [("admissions", "1", "READY")]
        );
        let load = grpc::proto::RepositoryModelLoadRequest {
            model_name: "nosuch".into(),
            ..Default::default()
        };
        assert_eq!(
            client.repository_model_load(load).await.expect_err("no such model").code(),
            tonic::Code::NotFound
        );
        let load = grpc::proto::RepositoryModelLoadRequest {
            model_name: "admissions".into(),
            ..Default::default()
        };
        client.repository_model_load(load).await.expect("load");
        let mut anonymous = GrpcInferenceServiceClient::new(channel);
        let refused = anonymous.server_live(ServerLiveRequest {}).await.expect_err("no token");
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }

    /// Bytes sent as a gRPC message as they are, for messages no proto encoder would write.
    #[derive(Default)]
    struct RawBytes;

    impl tonic::codec::Codec for RawBytes {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = RawBytes;
        type Decoder = RawBytes;
        fn encoder(&mut self) -> RawBytes {
            RawBytes
        }
        fn decoder(&mut self) -> RawBytes {
            RawBytes
        }
    }

    impl tonic::codec::Encoder for RawBytes {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn encode(
            &mut self,
            item: Vec<u8>,
            buf: &mut tonic::codec::EncodeBuf<'_>,
        ) -> Result<(), tonic::Status> {
            bytes::BufMut::put_slice(buf, &item);
            Ok(())
        }
    }

    impl tonic::codec::Decoder for RawBytes {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn decode(
            &mut self,
            buf: &mut tonic::codec::DecodeBuf<'_>,
        ) -> Result<Option<Vec<u8>>, tonic::Status> {
            let n = bytes::Buf::remaining(buf);
            Ok(Some(bytes::Buf::copy_to_bytes(buf, n).to_vec()))
        }
    }

    /// 300 malformed messages (seeded random bytes, and protobuf with a truncated field) get
    /// INVALID_ARGUMENT naming the decoding failure, or another client-fault code when the bytes
    /// happen to decode: never INTERNAL, the gRPC twin of a 5xx.
    #[tokio::test]
    async fn a_malformed_grpc_message_is_invalid_argument_never_internal() {
        use rand::{Rng, SeedableRng};
        let (_dir, state, _) = setup().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(grpc::serve(Arc::new(state), None, None, listener, std::future::pending()));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut client = tonic::client::Grpc::new(channel);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(38);
        // Field 1 (model_name) says 100 bytes follow, and 3 do.
        let mut messages = vec![vec![0x0a, 100, b'a', b'd', b'm']];
        messages.extend(
            (1..300).map(|i| (0..1 + i % 64).map(|_| rng.random::<u8>()).collect::<Vec<u8>>()),
        );
        let mut invalid_argument = 0;
        for message in messages {
            client.ready().await.expect("ready");
            let path = axum::http::uri::PathAndQuery::from_static(
                "/inference.GRPCInferenceService/ModelInfer",
            );
            let answer = client.unary(tonic::Request::new(message.clone()), path, RawBytes).await;
            let Err(status) = answer else { continue };
            assert!(
                !matches!(status.code(), tonic::Code::Internal | tonic::Code::Unknown),
                "{message:?}: {status:?}"
            );
            if status.code() == tonic::Code::InvalidArgument
                && status.message().contains("malformed protobuf message")
            {
                invalid_argument += 1;
            }
        }
        assert!(
            invalid_argument >= 150,
            "only {invalid_argument} of 300 named the decoding failure"
        );
    }

    #[tokio::test]
    async fn infer_takes_any_content_type_and_binary_tensors_both_ways() {
        use logitflow_kit::testing::call_raw;
        let (_dir, _state, app) = setup().await;
        let json = br#"{"id": "q", "inputs": [{"name": "score", "shape": [1], "datatype": "FP64", "data": [80.0]}]}"#.to_vec();
        for content_type in ["", "application/json", "application/octet-stream"] {
            let (status, out) =
                call_raw(&app, "POST", "/v2/models/admissions/infer", content_type, json.clone())
                    .await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{content_type:?}: {}",
                String::from_utf8_lossy(&out)
            );
        }
        // As tritonclient sends it by default: the values after the JSON, little-endian.
        let header = serde_json::json!({
            "inputs": [{"name": "score", "shape": [2, 1], "datatype": "FP32", "parameters": {"binary_data_size": 8}}],
            "parameters": {"binary_data_output": true},
        })
        .to_string();
        let data = [80f32.to_le_bytes(), 50f32.to_le_bytes()].concat();
        let (head, values) = binary_answer_of(post_binary(&app, &header, &data).await).await;
        assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 16, "{head}");
        assert!(
            (values[0] - 0.997_527_376_84).abs() < 1e-9 && (values[1] - 0.5).abs() < 1e-12,
            "{values:?}"
        );
        // A size that does not match the shape is named.
        let bad =
            serde_json::json!({"inputs": [{"name": "score", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 8}}]})
                .to_string();
        let mut body = bad.clone().into_bytes();
        body.extend_from_slice(&80f64.to_le_bytes());
        let request = axum::http::Request::post("/v2/models/admissions/infer")
            .header(&HEADER_LENGTH, bad.len().to_string())
            .body(axum::body::Body::from(body))
            .expect("request");
        let response = tower::ServiceExt::oneshot(app.clone(), request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let (status, server) = call(&app, "GET", "/v2", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            server["extensions"]
                .as_array()
                .is_some_and(|e| e.contains(&serde_json::json!("binary_tensor_data"))),
            "{server}"
        );
        let (status, index) = call(&app, "POST", "/v2/repository/index", None).await;
        assert_eq!(
            (status, index[0]["name"].as_str(), index[0]["state"].as_str()),
            (StatusCode::OK, Some("admissions"), Some("READY")),
            "{index}"
        );
    }

    /// A binary answer's JSON header (as JSON) and its FP64 values.
    async fn binary_answer_of(response: Response) -> (serde_json::Value, Vec<f64>) {
        assert_eq!(response.status(), StatusCode::OK);
        let json_length: usize = response.headers()[&HEADER_LENGTH]
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .expect("the header's length");
        let bytes =
            http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
        let (head, raw) = bytes.split_at(json_length);
        let values = raw
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect();
        (serde_json::from_slice(head).expect("json header"), values)
    }

    #[tokio::test]
    async fn a_repeated_binary_header_is_answered_as_the_first_was() {
        let (_dir, state, app) = setup().await;
        let header = serde_json::json!({
            "id": "q",
            "inputs": [{"name": "score", "shape": [1, 1], "datatype": "FP64", "parameters": {"binary_data_size": 8}}],
            "parameters": {"binary_data_output": true},
        })
        .to_string();
        let first = binary_answer_of(post_binary(&app, &header, &80f64.to_le_bytes()).await).await;
        assert!(repeat::remembers(header.as_bytes()), "the header is remembered");
        let again = binary_answer_of(post_binary(&app, &header, &80f64.to_le_bytes()).await).await;
        assert_eq!(first, again);
        assert_eq!(first.0["model_version"], "1", "{}", first.0);
        assert_eq!(first.0["id"], "q", "{}", first.0);
        let (_, other) =
            binary_answer_of(post_binary(&app, &header, &50f64.to_le_bytes()).await).await;
        assert_eq!(other, vec![0.5]);
        // Too few bytes after a remembered header is refused as after any other.
        let short = post_binary(&app, &header, &[0; 4]).await;
        assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // A new stable version answers the same header with its own coefficients.
        let v2 = put_model(&state.store, -12.0, 0.2);
        state.registry.register("admissions", &v2, None, None).expect("register");
        state.registry.set_alias("admissions", STABLE, 2).expect("alias");
        let (status, _) = call(&app, "POST", "/v2/repository/models/admissions/load", None).await;
        assert_eq!(status, StatusCode::OK);
        let (head, values) =
            binary_answer_of(post_binary(&app, &header, &60f64.to_le_bytes()).await).await;
        assert_eq!((head["model_version"].as_str(), values), (Some("2"), vec![0.5]), "{head}");
    }

    #[tokio::test]
    async fn a_damaged_old_version_is_skipped_at_start_and_the_rest_served() {
        let (dir, state, _) = setup().await;
        let v2 = put_model(&state.store, -11.0, 0.2);
        let v3 = put_model(&state.store, -12.0, 0.2);
        state.registry.register("admissions", &v2, None, None).expect("register");
        state.registry.register("admissions", &v3, None, None).expect("register");
        state.registry.set_alias("admissions", STABLE, 3).expect("alias");
        damage(dir.path(), &v2);
        // serve restarted: a fresh process state over the same home.
        let fresh = AppState::new(&Config::for_home(dir.path())).expect("state");
        fresh.load_all().await.expect("the registry reads");
        assert_eq!(fresh.readiness.get(), Ok(()), "v2 is neither stable nor candidate");
        let app = app(fresh.clone());
        let (_, answer) =
            call(&app, "POST", "/v1/predict", Some(serde_json::json!({"inputs": [[80.0]]}))).await;
        assert_eq!(answer["model_version"].as_str(), Some("3"), "{answer}");
        let (_, meta) = call(&app, "GET", "/v2/models/admissions", None).await;
        assert!(
            meta["unavailable"]["2"].as_str().is_some_and(|why| why.contains("corrupt")),
            "{meta}"
        );
        assert_eq!(meta["versions"], serde_json::json!(["1", "3"]));
        // The stable version itself damaged: ready all the same, stable unavailable and named,
        // every loadable version served by number.
        damage(dir.path(), &v3);
        let fresh = AppState::new(&Config::for_home(dir.path())).expect("state");
        fresh.load_all().await.expect("the registry reads");
        assert_eq!(
            fresh.readiness.get(),
            Ok(()),
            "a damaged stable version holds no other model or version"
        );
        let restarted = super::app(fresh.clone());
        let (_, meta) = call(&restarted, "GET", "/v2/models/admissions", None).await;
        assert!(
            meta["unavailable"]["3"].as_str().is_some_and(|why| why.contains("corrupt")),
            "{meta}"
        );
        let (status, answer) = call(
            &restarted,
            "POST",
            "/v2/models/admissions/versions/1/infer",
            Some(infer_body(80.0)),
        )
        .await;
        assert_eq!(
            (status, answer["model_version"].as_str()),
            (StatusCode::OK, Some("1")),
            "{answer}"
        );
    }

    /// Ready means every model loaded: while the first of several is loaded and the others are
    /// not, serve is not ready (it used to say ready after the first, and a client asking for
    /// the next was told "not loaded").
    #[tokio::test]
    async fn serve_is_ready_only_once_every_model_is_loaded() {
        let (dir, state, _) = setup().await;
        for name in ["b_model", "c_model", "d_model"] {
            let id = put_model(&state.store, -10.0, 0.2);
            state.registry.register(name, &id, None, None).expect("register");
        }
        let fresh = AppState::new(&Config::for_home(dir.path())).expect("state");
        assert!(fresh.readiness.get().is_err(), "ready before loading anything");
        fresh.load("admissions").await.expect("one model loads");
        let why = fresh.readiness.get().expect_err("one of four models loaded");
        assert!(why.contains("loading models"), "{why}");
        fresh.load_all().await.expect("the registry reads");
        assert_eq!(fresh.readiness.get(), Ok(()));
        let app = app(fresh);
        for name in ["admissions", "b_model", "c_model", "d_model"] {
            let (status, answer) = call(
                &app,
                "POST",
                &format!("/v2/models/{name}/versions/1/infer"),
                Some(infer_body(80.0)),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{name}: {answer}");
        }
    }

    #[tokio::test]
    async fn a_corrupt_version_is_refused_and_the_served_model_stays() {
        let (dir, state, app) = setup().await;
        let v2 = put_model(&state.store, -12.0, 0.2);
        state.registry.register("admissions", &v2, None, None).expect("register");
        state.registry.set_alias("admissions", STABLE, 2).expect("alias");
        let path = dir.path().join("artifacts").join(&v2).join("model.json");
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[10] ^= 0x20;
        std::fs::write(&path, bytes).expect("write");
        let (status, out) = call(&app, "POST", "/v2/repository/models/admissions/load", None).await;
        assert_eq!(
            (status, out["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("CORRUPT_ARTIFACT")),
            "{out}"
        );
        let (_, answer) =
            call(&app, "POST", "/v1/predict", Some(serde_json::json!({"inputs": [[80.0]]}))).await;
        assert_eq!(answer["model_version"].as_str(), Some("1"));
    }
}

/// For other crates' tests: a real serve on port 0 over a home holding the worked example's
/// model (θ0 = −10, θ1 = 0.2 per point of `score`) as `admissions` version 1, stable.
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// Starts serve with `admissions` ([`Model::worked_example`]), `credit`
    /// ([`Model::credit_example`], a text feature), `scaled` ([`Model::scaled_example`], three
    /// standardised features) and `grades` ([`Model::three_class_example`], three classes), and
    /// returns its address once they answer.
    pub async fn spawn_with_worked_example(home: &std::path::Path) -> String {
        let store = Store::open(home).expect("store");
        let registry = Registry::open(home);
        let models = [
            ("admissions", Model::worked_example()),
            ("credit", Model::credit_example()),
            ("scaled", Model::scaled_example()),
            ("grades", Model::three_class_example()),
        ];
        for (name, m) in models {
            let id = store
                .put_json(Kind::Model, "test", vec![], serde_json::json!({}), "model.json", &m)
                .expect("model");
            registry.register(name, &id, None, None).expect("register");
            registry.set_alias(name, STABLE, 1).expect("alias");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(run(listener, Config::for_home(home), std::future::pending()));
        // Ready once every model registered here is loaded (on a loaded machine that took more
        // than the 2 s this once waited for the first alone, and a test asked for the third).
        let client = logitflow_kit::client::ServiceClient::new("serve", addr.clone(), None);
        for name in ["admissions", "credit", "scaled", "grades"] {
            for _ in 0..2_000 {
                if client
                    .get::<serde_json::Value>(&format!("/v2/models/{name}/ready"))
                    .await
                    .is_ok()
                {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        addr
    }
}
