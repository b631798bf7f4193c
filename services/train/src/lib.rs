//! The train service: fits logistic regression as a job and streams its progress.
//!
//! - `POST /v1/jobs` ([`TrainRequest`]) starts a job and answers at once ([`JobInfo`]); the
//!   same split, transform and parameters as an earlier job reuse its model (`cached`).
//! - `GET /v1/jobs/{id}/events`: Server-Sent Events, one [`TrainEvent::Epoch`] per epoch, then
//!   `done`, `failed` or `cancelled`. A late subscriber gets the events so far first.
//! - `GET /v1/jobs/{id}`, `GET /v1/jobs`, `DELETE /v1/jobs/{id}` (cancel between epochs;
//!   `?keep=best` keeps the best epoch so far as a model).
//! - `POST /v1/prefetches` ([`PrefetchRequest`]) loads ahead a split's training part, which
//!   its job takes instead of loading it, or a dataset's rows, which that part is then taken
//!   out of in place; `GET /v1/prefetches` says what is held and whether it is loaded
//!   ([`PrefetchInfo`]). The pipeline asks for the dataset as soon as ingest has stored it and
//!   for the part as soon as the split exists, so the load runs beside preprocess and
//!   features rather than inside the train stage. One of each is held at most.
//!
//! The model is written to the store only when the fit has finished, in one atomic step, so a
//! crash mid-training leaves nothing half-written behind.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use futures::Stream;
use logitflow_core::clean::RowColumns;
use logitflow_core::clean::{Dataset, validation_split};
use logitflow_core::inference::{
    PathReport, TermBounds, certain_rows, scale_gathering_bounds, separated_by_combination,
    separating_level,
};
use logitflow_core::logistic::{
    Covariance, EpochEvent, Examples, FitOutcome, SparseTerms, StopReason, TrainParams, Weights,
    fit, logits, objective,
};
use logitflow_core::model::{Lineage, Model, TrainingLog};
use logitflow_core::report;
use logitflow_core::scale::{EncodeError, Scaling, Transform};
use logitflow_core::table::Classes;
use logitflow_kit::wire::{
    JobInfo, JobState, PrefetchInfo, PrefetchRequest, TrainEvent, TrainRequest,
};
use logitflow_kit::{ApiError, Config, Json, Readiness, blocking};
use logitflow_store::{
    Columns, DatasetRows, Kind, SplitPart, StepRecord, Store, StoreError, step_key,
};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::watch;

mod classes;

pub const NAME: &str = "train";
/// Finished jobs kept in memory for late readers.
const KEEP_FINISHED: usize = 100;

struct Job {
    cancel: AtomicBool,
    /// Set with `cancel` by `DELETE /v1/jobs/{id}?keep=best`: the fit stops, and its best
    /// epoch so far is kept as a model.
    keep_best: AtomicBool,
    log: Mutex<JobLog>,
    /// Bumped on every new event, so streams wake without polling.
    changed: watch::Sender<usize>,
}

struct JobLog {
    info: JobInfo,
    events: Vec<TrainEvent>,
}

impl Job {
    fn push(&self, event: TrainEvent) {
        let count = {
            let Ok(mut log) = self.log.lock() else { return };
            match &event {
                TrainEvent::Epoch(e) => log.info.epochs = e.epoch,
                TrainEvent::Done { model, stop_reason, epochs, .. } => {
                    log.info.state = JobState::Succeeded;
                    log.info.model = Some(model.clone());
                    log.info.stop_reason = Some(*stop_reason);
                    log.info.epochs = *epochs;
                }
                TrainEvent::Failed { error } => {
                    log.info.state = JobState::Failed;
                    log.info.error = Some(error.clone());
                }
                TrainEvent::Cancelled => log.info.state = JobState::Cancelled,
            }
            log.events.push(event);
            log.events.len()
        };
        self.changed.send_replace(count);
    }

    fn info(&self) -> Option<JobInfo> {
        self.log.lock().ok().map(|l| l.info.clone())
    }
}

#[derive(Clone)]
pub struct AppState {
    store: Store,
    jobs: Arc<Mutex<BTreeMap<u64, Arc<Job>>>>,
    next_id: Arc<AtomicU64>,
    shutting_down: watch::Receiver<bool>,
    /// The training part loaded ahead of its job, if one was asked for.
    parts_ahead: Arc<Ahead<Dataset>>,
    /// The rows of a dataset loaded ahead of its split, for the part to be taken out of.
    datasets_ahead: Arc<Ahead<DatasetRows>>,
}

/// Rows of one kind loaded ahead of the work that needs them: at most one held (loading or
/// loaded) until it is taken or replaced, and one load at a time: requests for others
/// meanwhile are refused, so that they cannot pile up rows in memory.
struct Ahead<T> {
    held: Mutex<Option<Held<T>>>,
    loads: Arc<tokio::sync::Semaphore>,
    /// What the refusal says is loading.
    what: &'static str,
}

/// Rows loading or loaded ahead, and the artifact they are of.
struct Held<T> {
    id: String,
    loaded: Arc<Loading<T>>,
}

impl<T: Send + 'static> Ahead<T> {
    fn new(what: &'static str) -> Ahead<T> {
        Ahead { held: Mutex::new(None), loads: Arc::new(tokio::sync::Semaphore::new(1)), what }
    }

    /// What is held, and whether it is loaded.
    fn held(&self) -> Option<(String, bool)> {
        self.held.lock().ok()?.as_ref().map(|held| (held.id.clone(), held.loaded.is_done()))
    }

    /// Whatever is held, let go of here.
    fn let_go(&self) -> Option<Held<T>> {
        self.held.lock().ok()?.take()
    }

    /// Whatever is held, let go of here: the rows of `id`, if it is they.
    fn take(&self, id: &str) -> Option<Arc<Loading<T>>> {
        self.let_go().filter(|held| held.id == id).map(|held| held.loaded)
    }

    /// Whether the rows of artifact `id` are loaded, if they are held already; else starts
    /// `load` on a blocking thread as them, replacing (and so freeing) what was held, and
    /// answers `false`. Refused while another load runs.
    fn load_unless_held(
        &self,
        id: &str,
        load: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<bool, ApiError> {
        logitflow_store::check_artifact_id(id)?;
        if let Some((_, loaded)) = self.held().filter(|(held, _)| held == id) {
            return Ok(loaded);
        }
        let Ok(one_at_a_time) = self.loads.clone().try_acquire_owned() else {
            return Err(ApiError::Conflict(format!(
                "{} is loading ahead already; ask again once it has",
                self.what
            )));
        };
        let loaded = Arc::new(Loading::default());
        if let Ok(mut held) = self.held.lock() {
            *held = Some(Held { id: id.to_string(), loaded: loaded.clone() });
        }
        tokio::task::spawn_blocking(move || {
            // A load that panicked is a load that failed: those waiting for it must hear so.
            let rows = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(load)) {
                Ok(rows) => rows.map_err(|e| e.to_string()),
                Err(_) => Err("the load ahead panicked".to_string()),
            };
            if let Ok(mut slot) = loaded.rows.lock() {
                *slot = Some(rows);
            }
            loaded.done.notify_all();
            drop(one_at_a_time);
        });
        Ok(false)
    }
}

/// Rows as the loading thread leaves them: `None` until it is done.
struct Loading<T> {
    rows: Mutex<Option<Result<T, String>>>,
    done: Condvar,
}

impl<T> Default for Loading<T> {
    fn default() -> Self {
        Loading { rows: Mutex::new(None), done: Condvar::new() }
    }
}

impl<T> Loading<T> {
    fn is_done(&self) -> bool {
        self.rows.lock().is_ok_and(|rows| rows.is_some())
    }

    /// The rows, once loaded; `None` if the load failed (the job then loads them itself and
    /// reports the failure as it always has).
    fn wait(&self) -> Option<T> {
        let mut rows = self.rows.lock().ok()?;
        while rows.is_none() {
            rows = self.done.wait(rows).ok()?;
        }
        rows.take()?.ok()
    }
}

impl AppState {
    /// Adds a running job numbered `number`, forgetting the oldest finished ones past
    /// [`KEEP_FINISHED`].
    fn register(&self, number: u64, info: JobInfo) -> Arc<Job> {
        let job = Arc::new(Job {
            cancel: AtomicBool::new(false),
            keep_best: AtomicBool::new(false),
            log: Mutex::new(JobLog { info: info.clone(), events: Vec::new() }),
            changed: watch::channel(0).0,
        });
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(number, job.clone());
            let finished: Vec<u64> = jobs
                .iter()
                .filter(|(_, j)| j.info().is_some_and(|i| i.state.is_finished()))
                .map(|(k, _)| *k)
                .collect();
            for k in finished.iter().take(finished.len().saturating_sub(KEEP_FINISHED)) {
                jobs.remove(k);
            }
        }
        job
    }

    pub fn new(config: &Config, shutting_down: watch::Receiver<bool>) -> anyhow::Result<AppState> {
        Ok(AppState {
            store: config.open_store()?,
            jobs: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            shutting_down,
            parts_ahead: Arc::new(Ahead::new("a training part")),
            datasets_ahead: Arc::new(Ahead::new("a dataset")),
        })
    }

    fn job(&self, id: &str) -> Result<Arc<Job>, ApiError> {
        let number =
            parse_job_id(id).ok_or_else(|| ApiError::NotFound(format!("no job {id:?}")))?;
        self.jobs
            .lock()
            .ok()
            .and_then(|jobs| jobs.get(&number).cloned())
            .ok_or_else(|| ApiError::NotFound(format!("no job {id:?}")))
    }
}

fn job_id(number: u64) -> String {
    format!("job-{number}")
}

fn parse_job_id(id: &str) -> Option<u64> {
    id.strip_prefix("job-")?.parse().ok()
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/jobs", post(start_job).get(list_jobs))
        .route("/v1/jobs/{id}", get(job_info).delete(cancel_job))
        .route("/v1/jobs/{id}/events", get(job_events))
        .route("/v1/prefetches", post(prefetch).get(prefetches))
        .with_state(state)
}

pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = AppState::new(&config, stop_rx)?;
    let jobs = state.jobs.clone();
    let shutdown = async move {
        shutdown.await;
        // Running fits stop at their next epoch, and event streams end, so shutdown is prompt.
        if let Ok(jobs) = jobs.lock() {
            jobs.values().for_each(|job| job.cancel.store(true, Ordering::Relaxed));
        }
        let _ = stop_tx.send(true);
    };
    logitflow_kit::serve(NAME, &config, Readiness::ready(), app(state), listener, shutdown).await?;
    Ok(())
}

/// What a job request turned out to need, found before the job exists.
enum Prepared {
    /// The same inputs and parameters trained before: the model and its curve.
    Cached { model: String, stop_reason: StopReason, curve: Vec<EpochEvent> },
    /// A new fit of these rows.
    Fresh(Box<FitInputs>),
}

/// What a new fit starts from, loaded before its job exists.
struct FitInputs {
    training_rows: Dataset,
    transform: Transform,
    loaded: Loaded,
}

/// How the training rows were loaded.
enum Loaded {
    /// As stored: in the data's units.
    AsStored,
    /// Scaled as they streamed in, with the separation check's bounds (for an exact fit) taken
    /// from each row before it was scaled: what a numeric model fitted on every training row
    /// gets, which then needs no pass over the rows for either.
    Scaled(Option<TermBounds>),
}

/// Starts loading rows ahead: a dataset's, or a split's training part for the job that will
/// fit it, taken out of its dataset's rows if they are held (whatever the part turns out to
/// be, they are let go, so that a dataset is only ever held until its split exists). Rows held
/// already are not loaded again. The load is checked as any other: a part that fails to load
/// is loaded again by the job, which reports why.
async fn prefetch(
    State(state): State<AppState>,
    Json(request): Json<PrefetchRequest>,
) -> Result<(StatusCode, Json<PrefetchInfo>), ApiError> {
    let store = state.store.clone();
    let ready = match &request {
        PrefetchRequest::Dataset(id) => {
            let dataset = id.clone();
            state.datasets_ahead.load_unless_held(id, move || store.load_dataset_rows(&dataset))?
        }
        PrefetchRequest::Split(id) => {
            let (datasets_ahead, split) = (state.datasets_ahead.clone(), id.clone());
            state.parts_ahead.load_unless_held(id, move || {
                match datasets_ahead.let_go().and_then(|held| held.loaded.wait()) {
                    Some(whole) => store.take_split_part(&split, SplitPart::Train, whole),
                    None => store.load_split_part(&split, SplitPart::Train),
                }
            })?
        }
    };
    Ok((StatusCode::ACCEPTED, Json(PrefetchInfo { of: request, ready })))
}

async fn prefetches(State(state): State<AppState>) -> Json<Vec<PrefetchInfo>> {
    let datasets = state
        .datasets_ahead
        .held()
        .map(|(id, ready)| PrefetchInfo { of: PrefetchRequest::Dataset(id), ready });
    let parts = state
        .parts_ahead
        .held()
        .map(|(id, ready)| PrefetchInfo { of: PrefetchRequest::Split(id), ready });
    Json(datasets.into_iter().chain(parts).collect())
}

async fn start_job(
    State(state): State<AppState>,
    Json(request): Json<TrainRequest>,
) -> Result<(StatusCode, Json<JobInfo>), ApiError> {
    request.params.validate()?;
    let params =
        serde_json::to_value(&request.params).map_err(|e| ApiError::Internal(e.to_string()))?;
    let key = step_key(NAME, &[&request.split, &request.transform], &params);
    // The store is read off the async workers, and before the job exists: a request whose
    // inputs cannot be loaded is a 4xx and leaves no job behind (20,000 of them once left as
    // many jobs "running" forever).
    let (store, split_id, transform_id, cache_key) =
        (state.store.clone(), request.split.clone(), request.transform.clone(), key.clone());
    let train_params = request.params.clone();
    // A part loaded ahead for this split is this job's, whatever it turns out to need; one
    // loaded for another split is let go, so that at most one is ever held.
    let prefetched = state.parts_ahead.take(&split_id);
    // A dataset's rows loaded ahead with no part taken out of them yet: this job's part is
    // taken out of them, if they are its dataset's, or they are let go.
    let whole = state.datasets_ahead.let_go();
    let ahead = (prefetched, whole);
    let prepared = blocking(move || {
        prepare(&store, &cache_key, (&split_id, &transform_id), &train_params, ahead)
    })
    .await?;
    let number = state.next_id.fetch_add(1, Ordering::Relaxed);
    let info = JobInfo {
        job: job_id(number),
        state: JobState::Running,
        cached: false,
        epochs: 0,
        model: None,
        stop_reason: None,
        error: None,
    };
    let job = state.register(number, info.clone());
    match prepared {
        Prepared::Cached { model, stop_reason, curve } => {
            let epochs = curve.len();
            for event in curve {
                job.push(TrainEvent::Epoch(event));
            }
            if let Ok(mut l) = job.log.lock() {
                l.info.cached = true;
            }
            job.push(TrainEvent::Done { model, stop_reason, epochs, cached: true, solve_ms: None });
            let info = job.info().unwrap_or(info);
            Ok((StatusCode::OK, Json(info)))
        }
        Prepared::Fresh(inputs) => {
            let store = state.store.clone();
            let worker = job.clone();
            tokio::task::spawn_blocking(move || {
                let outcome = train(&store, &request, *inputs, &params, &key, &worker);
                match outcome {
                    Ok(Some(event)) => worker.push(event),
                    Ok(None) => worker.push(TrainEvent::Cancelled),
                    Err(e) => worker.push(TrainEvent::Failed { error: e.to_string() }),
                }
            });
            Ok((StatusCode::ACCEPTED, Json(info)))
        }
    }
}

/// What a job needs, read from the store off the async workers: the model and curve of the same
/// step trained before, or the inputs of a new fit. The training rows come from what was loaded
/// `ahead` (this split's part, or its dataset's rows to take the part out of), else the store:
/// scaled as they stream in, where a numeric model fitted on every training row allows it.
fn prepare(
    store: &Store,
    cache_key: &str,
    (split_id, transform_id): (&str, &str),
    train_params: &TrainParams,
    (prefetched, whole): (Option<Arc<Loading<Dataset>>>, Option<Held<DatasetRows>>),
) -> Result<Prepared, ApiError> {
    if let Some(record) = store.step_lookup(cache_key)
        && let (Some(model), Some(log)) = (record.outputs.get("model"), record.outputs.get("log"))
        && let Ok(log) = store.read_json::<TrainingLog>(log, Kind::Report, "curve.json")
    {
        let model_info: Model = store.read_json(model, Kind::Model, "model.json")?;
        return Ok(Prepared::Cached {
            model: model.clone(),
            stop_reason: model_info.stop_reason,
            curve: log.curve,
        });
    }
    let transform: Transform = store.read_json(transform_id, Kind::Transform, "transform.json")?;
    let (training_rows, loaded) = if let Some(rows) = prefetched.and_then(|loading| loading.wait())
    {
        (rows, Loaded::AsStored)
    } else if let Some(whole) = whole.and_then(|held| held.loaded.wait()) {
        (store.take_split_part(split_id, SplitPart::Train, whole)?, Loaded::AsStored)
    } else if transform.is_numeric()
        && train_params.holds_out_no_rows()
        && split_has_no_roles(store, split_id)?
    {
        let mut bounds = (!train_params.is_penalised()).then(|| TermBounds::new(transform.terms()));
        let training_rows =
            store.load_split_part_with(split_id, SplitPart::Train, |row, label, x| {
                if let Some(bounds) = &mut bounds {
                    bounds.add(row, label);
                }
                transform.push_scaled(row, x);
            })?;
        (training_rows, Loaded::Scaled(bounds))
    } else {
        (store.load_split_part(split_id, SplitPart::Train)?, Loaded::AsStored)
    };
    if transform.feature_names != RowColumns::model_inputs(&training_rows) {
        return Err(ApiError::invalid(
            "MISMATCHED_INPUTS",
            "the transform was fitted on other features than the split's",
        ));
    }
    Ok(Prepared::Fresh(Box::new(FitInputs { training_rows, transform, loaded })))
}

/// The fit itself, on a blocking thread. `Ok(None)` when cancelled.
fn train(
    store: &Store,
    request: &TrainRequest,
    inputs: FitInputs,
    params_json: &serde_json::Value,
    key: &str,
    job: &Job,
) -> Result<Option<TrainEvent>, ApiError> {
    let FitInputs { training_rows, transform, loaded } = inputs;
    // `auto` becomes a solver here, before the hold-out (which depends on the solver) is cut.
    let (solver, solver_choice) = request.params.choose_solver(transform.terms());
    training_rows.check_both_classes()?;
    if let Some(classes) = training_rows.classes.clone().filter(|c| c.count() > 2) {
        let inputs = FitInputs { training_rows, transform, loaded };
        return classes::train_classes(store, request, inputs, classes, (params_json, key), job);
    }
    let params = &TrainParams { solver, ..request.params.clone() };
    let label_name = training_rows.label_name.clone();
    let classes = training_rows.classes.clone();
    // A row of terms holds a slot for each dense term and each sparse column.
    let k = transform.slots();
    let rows = prepare_rows(training_rows, &transform, loaded, params)?;
    let PreparedRows { x, separating, .. } = &rows;
    let FitRows { fit_part, row_columns, dropped, val_part, .. } = &rows.parts;
    let (train_ex, val_ex) = rows.examples(params, k);
    let solve_started = std::time::Instant::now();
    let outcome = fit(train_ex, val_ex, params, &job.cancel, |event| {
        job.push(TrainEvent::Epoch(event.clone()))
    })?;
    let solve_ms = solve_started.elapsed().as_secs_f64() * 1e3;
    let cancelled = outcome.stop_reason == StopReason::Cancelled;
    if cancelled && !job.keep_best.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let (separation, reference) =
        judge_separation(separating.clone(), &outcome, params, train_ex, &fit_part.y);
    let stop_reason =
        if separation.is_some() { StopReason::Separated } else { outcome.stop_reason };
    let lineage = lineage_of(store, request, params_json);
    let epochs = outcome.curve.len();
    let curve_end_loss = outcome.curve.last().map(|e| e.train_loss);
    let weights = outcome.weights.clone();
    let hessian_sum = outcome.hessian_sum.clone();
    let mut model = Model::new(
        transform,
        weights.clone(),
        label_name,
        params.clone(),
        stop_reason,
        epochs,
        fit_part.rows(),
        lineage,
    );
    model.validation_rows = val_part.as_ref().map_or(0, Dataset::rows);
    // A 0/1 label's classes are named after the column, so every answer can use words.
    model.classes = Some(classes.unwrap_or_else(|| Classes::for_numeric_label(&model.label_name)));
    model.fit.separation = separation;
    model.fit.kept_epoch = outcome.kept_epoch;
    model.fit.solver_choice = solver_choice;
    model.fit.row_roles = row_columns.report(fit_part.rows(), *dropped);
    add_path(&mut model, params, &outcome);
    // The terms' deviations, for the estimates per standard deviation: two passes over the
    // rows, taken only when there are estimates to give, and not when the scaling already
    // says what they would find.
    let deviations = |model: &Model| {
        let exactly = val_part.is_none()
            && row_columns.weights.is_none()
            && standardized_on_these_rows(
                store,
                &request.transform,
                &request.split,
                &model.transform,
            );
        let standardized_rows = exactly.then_some(fit_part.rows());
        term_deviations(x, &model.transform, standardized_rows, row_columns.weights.as_deref())
    };
    let ends = FitEnds { weights: &weights, hessian: hessian_sum.as_deref(), curve_end_loss };
    let clusters = row_columns.cluster.as_deref();
    complete_report(
        &mut model,
        params,
        (train_ex, clusters),
        ends,
        (reference.as_ref(), deviations),
    );
    let model_id =
        store_model(store, request, (params_json, key), &model, (outcome.curve, cancelled))?;
    // The rows are done with: another thread gives their memory back while the answer goes
    // out. Not sooner: while the memory is unmapped, no thread of the process can fault a page
    // in, and storing the model, which allocates, waited for it.
    logitflow_core::drop_in_background(rows);
    Ok(Some(fresh_model(model_id, stop_reason, epochs, solve_ms)))
}

/// The end of a job that fitted and stored `model` (not one found stored before).
fn fresh_model(model: String, stop_reason: StopReason, epochs: usize, solve_ms: f64) -> TrainEvent {
    TrainEvent::Done { model, stop_reason, epochs, cached: false, solve_ms: Some(solve_ms) }
}

/// Whether the classes are separated (`separating`: by one term, as found while scaling), and
/// the exact optimum an iterative fit is measured against. Whether a combination of terms
/// separates them is read off an exact fit only: an iterative one that has not converged can
/// leave rows at probability 0 or 1 on data that is not separated. Without an exact fit on
/// these rows, nothing is claimed; with a penalty, nothing is (its estimates are finite).
fn judge_separation(
    separating: Option<String>,
    outcome: &FitOutcome,
    params: &TrainParams,
    train_ex: Examples<'_>,
    y: &[f64],
) -> (Option<String>, Option<FitOutcome>) {
    let fit_is_exact = report::is_exact_fit(params.solver, outcome.stop_reason);
    let reference = if separating.is_none() && !fit_is_exact {
        report::exact_reference(train_ex, params)
    } else {
        None
    };
    let exact_fit = if fit_is_exact { Some(outcome) } else { reference.as_ref() };
    let exact = !params.is_penalised();
    let separation =
        separating.or_else(|| separated_at_optimum(exact_fit.filter(|_| exact)?, train_ex, y));
    (separation, reference)
}

/// A penalised path's report, and its cross-validation's, where the fit chose a λ on one.
fn add_path(model: &mut Model, params: &TrainParams, outcome: &FitOutcome) {
    if let (Some(alpha), Some(chosen)) =
        (params.alpha(), outcome.path_choice.and_then(|i| outcome.path.get(i)))
    {
        model.fit.path =
            Some(PathReport::new(&outcome.path, alpha, chosen.lambda, &model.transform));
        model.fit.cv = outcome.cross_validation.clone();
    }
}

/// A two-class fit's rows, cut and scaled: what the solvers see, and what the report reads.
struct PreparedRows {
    parts: FitRows,
    /// The fit part's terms, scaled, and its offset apart.
    x: Vec<f64>,
    offset: Option<Vec<f64>>,
    /// The validation part's, likewise.
    val_x: Option<(Vec<f64>, Option<Vec<f64>>)>,
    /// The one term that separates the classes, if one does (looked for in an exact fit only).
    separating: Option<String>,
    /// The text columns of many levels, if some are.
    sparse: Option<SparseTerms>,
}

impl PreparedRows {
    /// The fit's examples (with their class weights, row weights, offset and folds) and the
    /// validation part's, for `k` terms.
    fn examples(&self, params: &TrainParams, k: usize) -> (Examples<'_>, Option<Examples<'_>>) {
        let FitRows { fit_part, row_columns, val_part, val_columns, .. } = &self.parts;
        let class_weights = params.class_weight.weights(&fit_part.y);
        let sparse = self.sparse.as_ref();
        let train_ex = Examples::new(&self.x, &fit_part.y, k)
            .with_sparse(sparse)
            .with_class_weights(class_weights)
            .with_rows(row_columns.weights.as_deref(), self.offset.as_deref())
            .with_folds(row_columns.folds.as_deref());
        let val_weights = val_columns.as_ref().and_then(|c| c.weights.as_deref());
        let val_ex = val_part.as_ref().zip(self.val_x.as_ref()).map(|(v, (vx, vo))| {
            Examples::new(vx, &v.y, k).with_sparse(sparse).with_rows(val_weights, vo.as_deref())
        });
        (train_ex, val_ex)
    }
}

/// Cuts the validation rows off `training_rows` (for the iterative solvers), takes the terms
/// out of both parts and scales them, looking for a separating term as it goes.
fn prepare_rows(
    training_rows: Dataset,
    transform: &Transform,
    loaded: Loaded,
    params: &TrainParams,
) -> Result<PreparedRows, ApiError> {
    let class_names = [training_rows.class_name(false), training_rows.class_name(true)];
    let mut parts = cut_fit_rows(training_rows, params)?;
    let unencodable = |e: EncodeError| ApiError::invalid("DATA_ERROR", e.to_string());
    // The fit's rows are taken from the fit part, whose labels and size are all that is used
    // after.
    let (mut x, offset) =
        transform.split_offset(transform.take_terms(&mut parts.fit_part).map_err(unencodable)?);
    let class_names = [class_names[0].as_str(), class_names[1].as_str()];
    let exact = !params.is_penalised();
    let labels = &parts.fit_part.y;
    let separating =
        scale_finding_separation(loaded, transform, (&mut x, labels), exact, class_names);
    let val_x = match &parts.val_part {
        Some(v) => Some(scaled_terms(transform, v).map_err(unencodable)?),
        None => None,
    };
    let sparse = SparseTerms::of(transform);
    let separating = separating.or_else(|| {
        let level_of = |sparse| {
            let (x, names) = ((x.as_slice(), transform.slots()), transform.term_names());
            separating_level(x, &parts.fit_part.y, sparse, names, class_names)
        };
        sparse.as_ref().filter(|_| exact).and_then(level_of)
    });
    Ok(PreparedRows { parts, x, offset, val_x, separating, sparse })
}

/// Scales the fit's rows `x` in place, and says which one term separates the classes, if one
/// does. Separation is looked for in the data's units, so in the scaling's pass, before each row
/// is scaled: as the rows were loaded (`Loaded::Scaled`: every training row, no validation part
/// split off them), or here. Only for an unpenalised (`exact`) fit, whose estimates it concerns.
fn scale_finding_separation(
    loaded: Loaded,
    transform: &Transform,
    (x, y): (&mut [f64], &[f64]),
    exact: bool,
    class_names: [&str; 2],
) -> Option<String> {
    match loaded {
        Loaded::Scaled(bounds) => {
            bounds.and_then(|bounds| bounds.separating_term(transform.term_names(), class_names))
        }
        Loaded::AsStored if exact => {
            let threads =
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
            scale_gathering_bounds(transform, x, y, threads)
                .separating_term(transform.term_names(), class_names)
        }
        Loaded::AsStored => {
            transform.scale_in_place(x);
            None
        }
    }
}

/// `rows`' terms, scaled, and their offset apart.
fn scaled_terms(
    transform: &Transform,
    rows: &Dataset,
) -> Result<(Vec<f64>, Option<Vec<f64>>), EncodeError> {
    let (mut x, offset) = transform.split_offset(transform.terms_of(rows)?);
    transform.scale_in_place(&mut x);
    Ok((x, offset))
}

/// Whether a combination of terms separates the classes, read off the exact fit `optimum`: the
/// rows it predicts with certainty. Newton counted them in its last pass; otherwise the logits
/// are taken again.
fn separated_at_optimum(optimum: &FitOutcome, train_ex: Examples<'_>, y: &[f64]) -> Option<String> {
    let certain =
        optimum.certain_rows.unwrap_or_else(|| certain_rows(logits(&optimum.weights, train_ex), y));
    separated_by_combination(certain, y.len())
}

/// Where a two-class fit ended: its weights, their Hessian (newton's) and the mean training loss
/// of its last event.
struct FitEnds<'a> {
    weights: &'a Weights,
    hessian: Option<&'a [f64]>,
    curve_end_loss: Option<f64>,
}

/// The report beyond the weights, by core's rules: the statistics or why they are withheld,
/// each estimate per standard deviation of its term (`deviations` measures them, when there
/// are estimates), and how far an iterative fit stopped from the exact `reference` on the
/// same rows.
fn complete_report(
    model: &mut Model,
    params: &TrainParams,
    (train_ex, clusters): (Examples<'_>, Option<&[f64]>),
    ends: FitEnds<'_>,
    (reference, deviations): (Option<&FitOutcome>, impl FnOnce(&Model) -> Vec<f64>),
) {
    let withheld = report::sparse_statistics_note(&model.transform)
        .or_else(|| report::withheld_statistics(&model.fit, params, model.stop_reason));
    match withheld {
        Some(note) => model.fit.statistics_note = Some(note),
        None => {
            // The fit's last event was measured at these weights, unpenalised and unweighted
            // here: its mean log loss is the log-likelihood's, with no pass of its own.
            let mean_loss =
                ends.curve_end_loss.unwrap_or_else(|| objective(ends.weights, train_ex, 0.0).0);
            let covariance = (params.covariance, clusters);
            report::add_statistics(
                model,
                ends.weights,
                train_ex,
                ends.hessian,
                covariance,
                mean_loss,
            );
        }
    }
    if !model.fit.terms.is_empty() {
        let deviations = deviations(model);
        report::standardize_estimates(model, &deviations);
    }
    if let Some(optimum) = reference.filter(|_| model.fit.separation.is_none()) {
        model.fit.optimality = Some(report::optimality(ends.weights, optimum, train_ex, params));
    }
}

/// Each scaled term's standard deviation over the fit's rows `x`. Standardised on these very
/// rows (`standardized_rows`: their count), each term has mean 0 and population deviation 1,
/// so its sample deviation is √(n / (n − 1)) with no pass over the rows; weighted, the rows'
/// deviation is the repeated rows'.
fn term_deviations(
    x: &[f64],
    transform: &Transform,
    standardized_rows: Option<usize>,
    weights: Option<&[f64]>,
) -> Vec<f64> {
    let k = transform.terms();
    match (standardized_rows, SparseTerms::of(transform)) {
        (Some(n), _) => vec![(n as f64 / (n as f64 - 1.0)).sqrt(); k],
        (None, None) => Transform::weighted_column_standard_deviations(x, k, weights),
        (None, Some(sparse)) => sparse_term_deviations(x, transform.slots(), &sparse, weights),
    }
}

/// [`term_deviations`] of rows with sparse terms: the dense terms' measured, each sparse term's
/// from the (weighted) rows at its level, as its 0/1 values would give it.
fn sparse_term_deviations(
    x: &[f64],
    slots: usize,
    sparse: &SparseTerms,
    weights: Option<&[f64]>,
) -> Vec<f64> {
    let mut deviations = Transform::weighted_column_standard_deviations(x, slots, weights);
    deviations.truncate(sparse.dense);
    let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
    let n: f64 = (0..x.len() / slots.max(1)).map(weight).sum();
    for column in &sparse.columns {
        let mut at_level = vec![0.0; column.at.terms + 1];
        for (i, row) in x.chunks_exact(slots).enumerate() {
            at_level[row[column.at.slot] as usize] += weight(i);
        }
        // A 0/1 term's sample variance is n·p(1 − p)/(n − 1), scaled as its term is.
        let deviation = |(m, scale): (&f64, &f64)| {
            let p = m / n;
            (n * p * (1.0 - p) / (n - 1.0)).sqrt() / scale
        };
        deviations.extend(at_level[1..].iter().zip(&column.scale).map(deviation));
    }
    deviations
}

/// Stores `model` and its loss curve, and (unless the fit was cancelled) records them as the
/// step's outputs; returns the model's id.
fn store_model(
    store: &Store,
    request: &TrainRequest,
    (params_json, key): (&serde_json::Value, &str),
    model: &Model,
    (curve, cancelled): (Vec<EpochEvent>, bool),
) -> Result<String, ApiError> {
    let inputs = vec![request.split.clone(), request.transform.clone()];
    let model_id =
        store.put_json(Kind::Model, NAME, inputs, params_json.clone(), "model.json", model)?;
    let log_id = store.put_json(
        Kind::Report,
        NAME,
        vec![model_id.clone()],
        serde_json::json!({"of": "training"}),
        "curve.json",
        &TrainingLog { curve },
    )?;
    // A fit a person stopped is no answer to the request's parameters: the same request
    // trains in full next time, rather than being handed this model from the cache.
    if !cancelled {
        let outputs = [("model".into(), model_id.clone()), ("log".into(), log_id)].into();
        store.step_record(key, &StepRecord { outputs, summary: serde_json::Value::Null })?;
    }
    Ok(model_id)
}

/// Where a model of `request` comes from: its dataset (the split's input), split, transform and
/// the hash of its parameters.
fn lineage_of(store: &Store, request: &TrainRequest, params_json: &serde_json::Value) -> Lineage {
    Lineage {
        dataset: store
            .manifest(&request.split)
            .ok()
            .and_then(|m| m.inputs.first().cloned())
            .unwrap_or_default(),
        split: request.split.clone(),
        transform: request.transform.clone(),
        params: logitflow_core::sha256_hex(params_json.to_string().as_bytes()),
    }
}

/// Whether a split's rows carry no weights, offset, clusters or folds: then a numeric model's
/// rows are its features, and can be scaled as they stream in.
fn split_has_no_roles(store: &Store, split: &str) -> Result<bool, ApiError> {
    Ok(store.read_json::<Columns>(split, Kind::Split, "columns.json")?.roles.is_empty())
}

/// The training rows cut for the fit: the fit's part, with its weights, clusters and folds taken
/// out of it (and its rows of weight 0 left out, `dropped` of them), and the validation part
/// with its own.
struct FitRows {
    fit_part: Dataset,
    row_columns: RowColumns,
    dropped: usize,
    val_part: Option<Dataset>,
    val_columns: Option<RowColumns>,
}

/// Validation rows come out of the training split (seeded, stratified) only for the iterative
/// solvers; an exact fit uses every training row. The test split is left alone for evaluate.
fn cut_fit_rows(training_rows: Dataset, params: &TrainParams) -> Result<FitRows, ApiError> {
    let fraction = params.validation_fraction(training_rows.rows());
    let (mut fit_part, mut val_part) = if fraction > 0.0 {
        match validation_split(&training_rows, fraction, params.seed) {
            Ok(parts) if parts.test.rows() > 0 => (parts.train, Some(parts.test)),
            _ => (training_rows, None),
        }
    } else {
        (training_rows, None)
    };
    let mut row_columns = RowColumns::take(&mut fit_part);
    let dropped = row_columns.drop_unweighted(&mut fit_part);
    if dropped > 0 {
        fit_part.check_both_classes()?;
    }
    check_row_columns(params, &row_columns, fit_part.rows())?;
    let val_columns = val_part.as_mut().map(RowColumns::take);
    Ok(FitRows { fit_part, row_columns, dropped, val_part, val_columns })
}

/// What a fit's parameters need of the rows' clusters: a cluster column for the cluster
/// covariance, with two clusters or more.
fn check_row_columns(
    params: &TrainParams,
    row_columns: &RowColumns,
    rows: usize,
) -> Result<(), ApiError> {
    let invalid = |message: String| Err(ApiError::invalid("INVALID_PARAMS", message));
    if params.covariance == Covariance::Cluster {
        let Some(clusters) = row_columns.clusters() else {
            return invalid(
                "covariance cluster needs the data's cluster column: `cluster`:COLUMN".into(),
            );
        };
        if clusters < 2 {
            return invalid(format!(
                "the cluster column holds one cluster in the {rows} training rows; clustering needs two or more"
            ));
        }
    }
    Ok(())
}

/// Whether `transform` is standard scaling fitted on the training part of `split` (the rows
/// an exact fit uses), with a deviation for every term: 1 is its stand-in where a term has
/// none (a constant column), and such a term is measured rather than assumed.
fn standardized_on_these_rows(
    store: &Store,
    transform_id: &str,
    split: &str,
    transform: &Transform,
) -> bool {
    transform.scaling == Scaling::Standard
        && transform.scale.iter().all(|&s| s != 1.0)
        && store.manifest(transform_id).is_ok_and(|m| m.inputs == [split])
}

async fn list_jobs(State(state): State<AppState>) -> Json<Vec<JobInfo>> {
    let jobs: Vec<Arc<Job>> =
        state.jobs.lock().map(|j| j.values().cloned().collect()).unwrap_or_default();
    Json(jobs.iter().filter_map(|j| j.info()).collect())
}

async fn job_info(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobInfo>, ApiError> {
    state.job(&id)?.info().map(Json).ok_or_else(|| ApiError::Internal("job state poisoned".into()))
}

/// `DELETE /v1/jobs/{id}` stops the fit between epochs and keeps nothing; with `?keep=best`,
/// its best epoch so far (the lowest validation loss, or the last epoch without validation)
/// becomes a model, stopped as `cancelled`, and the job ends `done`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelQuery {
    keep: Option<KeepOnCancel>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum KeepOnCancel {
    Best,
}

async fn cancel_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<CancelQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobInfo>, ApiError> {
    let query = query.map_err(|e| {
        ApiError::invalid(
            "INVALID_QUERY",
            format!("{}; the one choice is ?keep=best", e.body_text()),
        )
    })?;
    let job = state.job(&id)?;
    if matches!(query.keep, Some(KeepOnCancel::Best)) {
        job.keep_best.store(true, Ordering::Relaxed);
    }
    job.cancel.store(true, Ordering::Relaxed);
    job.info().map(Json).ok_or_else(|| ApiError::Internal("job state poisoned".into()))
}

async fn job_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let job = state.job(&id)?;
    let changed = job.changed.subscribe();
    let stream = futures::stream::unfold(
        (job, changed, state.shutting_down.clone(), 0usize, false),
        |(job, mut changed, mut stop, next, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let event = job.log.lock().ok().and_then(|log| log.events.get(next).cloned());
                if let Some(event) = event {
                    let last = event.is_final();
                    let sse = Event::default()
                        .event(event.name())
                        .json_data(&event)
                        .unwrap_or_else(|_| Event::default().comment("unserialisable event"));
                    return Some((Ok(sse), (job, changed, stop, next + 1, last)));
                }
                tokio::select! {
                    result = changed.changed() => if result.is_err() { return None },
                    // A dropped sender means no shutdown will ever come, not that one came.
                    () = async {
                        if stop.wait_for(|s| *s).await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    } => return None,
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use logitflow_core::clean::{Dataset, Split};
    use logitflow_core::logistic::Solver;
    use logitflow_core::scale::Scaling;
    use logitflow_core::table::{ColumnKind, RawTable};
    use logitflow_kit::testing::{call, call_raw};
    use logitflow_store::{SplitReport, SplitRows, SplitSources};

    fn setup() -> (tempfile::TempDir, Router, String, String) {
        let (dir, state, split, transform) = setup_with(watch::channel(false).1);
        (dir, app(state), split, transform)
    }

    /// Stops the case's training jobs (the service's shutdown signal) when it ends, and waits
    /// for them to end before its home is removed: a job that finished its epochs as the signal
    /// came stores its model, and storing into a removed home made its `tmp/` again (a train
    /// test run left some fifty such directories in the system's temporary directory).
    struct StopJobsOnDrop(watch::Sender<bool>, AppState, #[allow(dead_code)] tempfile::TempDir);

    impl Drop for StopJobsOnDrop {
        fn drop(&mut self) {
            let _ = self.0.send(true);
            let running = || {
                self.1.jobs.lock().map_or(0, |jobs| {
                    jobs.values()
                        .filter(|job| job.info().is_some_and(|i| !i.state.is_finished()))
                        .count()
                })
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while running() > 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }

    /// The service in a home of its own, with nothing stored yet: its store and its routes.
    fn service() -> (tempfile::TempDir, Store, Router) {
        let (dir, state) = state_in_a_new_home(watch::channel(false).1);
        (dir, state.store.clone(), app(state))
    }

    fn state_in_a_new_home(shutting_down: watch::Receiver<bool>) -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AppState::new(&Config::for_home(dir.path()), shutting_down).expect("state");
        (dir, state)
    }

    fn setup_with(
        shutting_down: watch::Receiver<bool>,
    ) -> (tempfile::TempDir, AppState, String, String) {
        let (dir, state) = state_in_a_new_home(shutting_down);
        let x: Vec<f64> = (0..200).map(|i| f64::from(i) / 2.0).collect();
        let y: Vec<f64> =
            x.iter().map(|&v| f64::from(u8::from((v * 7.0) % 100.0 > 50.0 - (v - 50.0)))).collect();
        let data = Dataset {
            feature_names: vec!["score".into()],
            label_name: "admitted".into(),
            x,
            y,
            ..Dataset::default()
        };
        let split = Split { train: data.clone(), test: data };
        let split_id = state
            .store
            .put_split(&split, &SplitReport::default(), vec![], serde_json::json!({}))
            .expect("split");
        let t = Transform::fit(&split.train, Scaling::Standard);
        let t_id = state
            .store
            .put_json(Kind::Transform, "test", vec![], serde_json::json!({}), "transform.json", &t)
            .expect("transform");
        (dir, state, split_id, t_id)
    }

    #[tokio::test]
    async fn job_streams_one_event_per_epoch_then_done_and_caches() {
        let (_dir, app, split, transform) = setup();
        let body = serde_json::json!({"split": split, "transform": transform, "params": {"solver": "sgd", "epochs": 5, "patience": 0}});
        let (status, info) = call(&app, "POST", "/v1/jobs", Some(body.clone())).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{info}");
        let id = info["job"].as_str().expect("id").to_string();
        let (status, bytes) =
            call_raw(&app, "GET", &format!("/v1/jobs/{id}/events"), "text/plain", vec![]).await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches("event: epoch").count(), 5, "{text}");
        assert!(text.contains("event: done"), "{text}");
        let (_, info) = call(&app, "GET", &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(info["state"], "succeeded");
        assert!(info["model"].as_str().is_some());
        let (status, again) = call(&app, "POST", "/v1/jobs", Some(body)).await;
        assert_eq!(
            (status, again["cached"].as_bool(), again["model"].clone()),
            (StatusCode::OK, Some(true), info["model"].clone())
        );
    }

    /// Starts a job, follows its events to the end, and returns the finished job's info.
    async fn finished_job(app: &Router, body: serde_json::Value) -> serde_json::Value {
        let (status, info) = call(app, "POST", "/v1/jobs", Some(body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{info}");
        let id = info["job"].as_str().expect("id").to_string();
        let (_, events) =
            call_raw(app, "GET", &format!("/v1/jobs/{id}/events"), "text/plain", vec![]).await;
        assert!(String::from_utf8_lossy(&events).contains("event: done"));
        call(app, "GET", &format!("/v1/jobs/{id}"), None).await.1
    }

    /// Damages every stored feature matrix of the home at `dir`, keeping its length.
    fn damage_the_rows(dir: &std::path::Path) {
        let mut damaged = 0;
        for artifact in std::fs::read_dir(dir.join("artifacts")).expect("artifacts") {
            let x = artifact.expect("entry").path().join("x.npy");
            if let Ok(bytes) = std::fs::read(&x) {
                std::fs::write(&x, vec![0xA5; bytes.len()]).expect("damage");
                damaged += 1;
            }
        }
        assert!(damaged > 0, "the split's rows are somewhere");
    }

    /// A part loaded ahead of its job is the job's: the job trains the model it would have
    /// trained, without loading the part again (here the store's copy is damaged once the part
    /// is loaded, and the job still succeeds, where a job that loads it fails), and lets it go.
    #[tokio::test]
    async fn a_prefetched_part_is_taken_by_its_job_and_trains_the_same_model() {
        let body = |epochs: u32| serde_json::json!({"split": "", "transform": "", "params": {"solver": "newton", "epochs": epochs}});
        let with = |mut body: serde_json::Value, split: &str, transform: &str| {
            body["split"] = split.into();
            body["transform"] = transform.into();
            body
        };
        let (_dir, app, split, transform) = setup();
        let loaded_by_the_job = finished_job(&app, with(body(50), &split, &transform)).await;
        let (dir, app, split, transform) = setup();
        let (status, info) =
            call(&app, "POST", "/v1/prefetches", Some(serde_json::json!({"split": split}))).await;
        assert_eq!(
            (status, info["ready"].as_bool()),
            (StatusCode::ACCEPTED, Some(false)),
            "{info}"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (_, held) = call(&app, "GET", "/v1/prefetches", None).await;
            assert_eq!(held[0]["split"].as_str(), Some(split.as_str()), "{held}");
            if held[0]["ready"] == true {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the part never loaded");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // Asked again, the part held is not loaded again.
        let (status, info) =
            call(&app, "POST", "/v1/prefetches", Some(serde_json::json!({"split": split}))).await;
        assert_eq!((status, info["ready"].as_bool()), (StatusCode::ACCEPTED, Some(true)), "{info}");
        damage_the_rows(dir.path());
        let prefetched = finished_job(&app, with(body(50), &split, &transform)).await;
        assert_eq!(prefetched["state"], "succeeded", "{prefetched}");
        assert_eq!(prefetched["model"], loaded_by_the_job["model"], "the same model, bit for bit");
        let (_, held) = call(&app, "GET", "/v1/prefetches", None).await;
        assert_eq!(held, serde_json::json!([]), "taken by the job");
        // Another fit of the same split now loads the damaged rows itself.
        let (status, refused) =
            call(&app, "POST", "/v1/jobs", Some(with(body(49), &split, &transform))).await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("CORRUPT_ARTIFACT")),
            "{refused}"
        );
        // A prefetch names an artifact.
        let (status, _) =
            call(&app, "POST", "/v1/prefetches", Some(serde_json::json!({"split": "../x"}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    /// Polls `GET /v1/prefetches` until it holds just `held` (`{"dataset": id}` or
    /// `{"split": id}`), loaded.
    async fn until_loaded_ahead(app: &Router, mut held: serde_json::Value) {
        held["ready"] = true.into();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (_, now) = call(app, "GET", "/v1/prefetches", None).await;
            if now == serde_json::json!([held]) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never held loaded: {now}, not {held}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// A dataset's rows loaded ahead are what its split's training part is taken out of: the
    /// job fits the model it would have fitted, though the store's copy of the dataset was
    /// damaged once the rows were loaded (a job that loads the part itself is refused), and
    /// nothing stays held.
    #[tokio::test]
    async fn a_part_is_taken_out_of_its_datasets_rows_loaded_ahead() {
        let (dir, state) = state_in_a_new_home(watch::channel(false).1);
        let store = state.store.clone();
        let app = app(state);
        let rows = 300u32;
        let x: Vec<f64> = (0..rows).map(|i| f64::from(i) / 3.0).collect();
        let y: Vec<f64> =
            x.iter().map(|&v| f64::from(u8::from((v * 7.0) % 100.0 > 50.0 - (v - 50.0)))).collect();
        let lines = (2..u64::from(rows) + 2).collect();
        let kinds = vec![ColumnKind::Numeric];
        let table = RawTable {
            feature_names: vec!["score".into()],
            label_name: "admitted".into(),
            kinds,
            x,
            y,
            lines,
            ..RawTable::default()
        };
        let dataset = store.put_table(&table, "test", serde_json::json!({})).expect("dataset");
        let columns = store.load_labels(&dataset).expect("labels").columns;
        let sources = SplitSources { train: dataset.clone(), test: dataset.clone() };
        let (train, test) = (0..u64::from(rows)).partition(|i| i % 4 != 0);
        let split_rows = SplitRows { sources, train, test };
        let split = store
            .put_split_rows(
                &columns,
                &split_rows,
                &SplitReport::default(),
                vec![],
                serde_json::json!({}),
            )
            .expect("split");
        let scaling = Transform::fit(
            &store.load_split_part(&split, SplitPart::Train).expect("part"),
            Scaling::Standard,
        );
        let transform = store
            .put_json(
                Kind::Transform,
                "test",
                vec![],
                serde_json::json!({}),
                "transform.json",
                &scaling,
            )
            .expect("transform");
        let body = |epochs: u32| serde_json::json!({"split": split, "transform": transform, "params": {"solver": "newton", "epochs": epochs}});
        let fitted = |job: &serde_json::Value| {
            let model: Model = store
                .read_json(job["model"].as_str().expect("a model"), Kind::Model, "model.json")
                .expect("model");
            (model.intercept, model.coefficients)
        };
        let loaded_by_the_job = finished_job(&app, body(50)).await;

        let (status, info) =
            call(&app, "POST", "/v1/prefetches", Some(serde_json::json!({"dataset": dataset})))
                .await;
        assert_eq!(
            (status, info["ready"].as_bool()),
            (StatusCode::ACCEPTED, Some(false)),
            "{info}"
        );
        until_loaded_ahead(&app, serde_json::json!({"dataset": dataset})).await;
        damage_the_rows(dir.path());
        let (status, info) =
            call(&app, "POST", "/v1/prefetches", Some(serde_json::json!({"split": split}))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{info}");
        until_loaded_ahead(&app, serde_json::json!({"split": split})).await;
        let taken_out = finished_job(&app, body(49)).await;
        assert_eq!(taken_out["state"], "succeeded", "{taken_out}");
        assert_eq!(fitted(&taken_out), fitted(&loaded_by_the_job), "the same fit, bit for bit");
        let (_, held) = call(&app, "GET", "/v1/prefetches", None).await;
        assert_eq!(held, serde_json::json!([]), "taken by the job");
        let (status, refused) = call(&app, "POST", "/v1/jobs", Some(body(48))).await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("CORRUPT_ARTIFACT")),
            "{refused}"
        );
        let (status, _) =
            call(&app, "POST", "/v1/prefetches", Some(serde_json::json!({"dataset": "../x"})))
                .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a prefetch names an artifact");
    }

    /// Each standardized estimate is the estimate (per unit of its term) times the term's
    /// sample deviation over the fit's rows, taken here from the raw rows: whether the scaling
    /// says what the deviation is (standard, fitted on these rows) or it must be measured
    /// (min-max; standard scaling fitted on other rows).
    #[tokio::test]
    async fn standardized_estimates_use_each_terms_deviation_whatever_the_scaling() {
        let (_dir, store, app) = service();
        let rows = 400;
        let noise = |i: usize, m: usize| ((i * m + 7) % 97) as f64 / 97.0;
        let x: Vec<f64> = (0..rows)
            .flat_map(|i| [10.0 + 3.0 * noise(i, 31), -2.0 + 0.5 * noise(i, 53)])
            .collect();
        let y: Vec<f64> = (0..rows)
            .map(|i| f64::from(u8::from(noise(i, 31) + noise(i, 53) + noise(i, 11) > 1.5)))
            .collect();
        let data = Dataset {
            feature_names: vec!["a".into(), "b".into()],
            label_name: "y".into(),
            x: x.clone(),
            y,
            ..Dataset::default()
        };
        let split = Split { train: data.clone(), test: data };
        let split_id = store
            .put_split(&split, &SplitReport::default(), vec![], serde_json::json!({}))
            .expect("split");
        let sample_deviation = |j: usize| {
            let column: Vec<f64> = x.iter().skip(j).step_by(2).copied().collect();
            let mean = column.iter().sum::<f64>() / rows as f64;
            (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (rows - 1) as f64).sqrt()
        };
        let some_rows = Dataset {
            x: x[..300 * 2].to_vec(),
            y: split.train.y[..300].to_vec(),
            ..split.train.clone()
        };
        for (scaling, fitted_on) in [
            (Scaling::Standard, vec![split_id.clone()]),
            (Scaling::MinMax, vec![split_id.clone()]),
            (Scaling::Standard, vec![]),
        ] {
            let fitted_rows = if fitted_on.is_empty() { &some_rows } else { &split.train };
            let t = Transform::fit(fitted_rows, scaling);
            let transform = store
                .put_json(
                    Kind::Transform,
                    "test",
                    fitted_on.clone(),
                    serde_json::json!({}),
                    "transform.json",
                    &t,
                )
                .expect("transform");
            let body = serde_json::json!({"split": split_id, "transform": transform, "params": {"solver": "newton"}});
            let info = finished_job(&app, body).await;
            let model: Model = store
                .read_json(info["model"].as_str().expect("a model"), Kind::Model, "model.json")
                .expect("model");
            assert_eq!(
                model.fit.terms.len(),
                3,
                "{scaling:?} on {fitted_on:?}: {:?}",
                model.fit.statistics_note
            );
            for (j, term) in model.fit.terms.iter().skip(1).enumerate() {
                let expected = term.estimate * sample_deviation(j);
                let got = term.standardized.expect("a standardized estimate");
                assert!(
                    (got - expected).abs() <= 1e-12 * expected.abs(),
                    "{scaling:?} on {fitted_on:?}, term {j}: {got} vs {expected}"
                );
            }
        }
    }

    /// A term that separates the classes is named with its bounds in the data's units: the
    /// check sees each row before the scaling's pass scales it.
    #[tokio::test]
    async fn a_separating_term_is_named_in_the_datas_units() {
        let (_dir, store, app) = service();
        let x: Vec<f64> = (0..100).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|&v| f64::from(u8::from(v >= 50.0))).collect();
        let (split_id, transform) = stored_split(&store, &["score"], "admitted", x, y);
        // Newton's rows are scaled as they are loaded; SGD may hold some out, so it scales them
        // once they are split.
        for solver in ["newton", "sgd"] {
            let body = serde_json::json!({"split": split_id, "transform": transform, "params": {"solver": solver, "epochs": 20}});
            let info = finished_job(&app, body).await;
            assert_eq!(info["stop_reason"], "separated", "{solver}: {info}");
            let model: Model = store
                .read_json(info["model"].as_str().expect("a model"), Kind::Model, "model.json")
                .expect("model");
            assert_eq!(
                model.fit.separation.as_deref(),
                Some(
                    "score separates the classes completely: every \"0\" row has score ≤ 49, every \"1\" row has score ≥ 50"
                ),
                "{solver}"
            );
        }
    }

    /// A split whose two parts are the same rows, stored with its standardising transform.
    fn stored_split(
        store: &Store,
        features: &[&str],
        label: &str,
        x: Vec<f64>,
        y: Vec<f64>,
    ) -> (String, String) {
        let feature_names = features.iter().map(|&f| f.to_string()).collect();
        let data = Dataset { feature_names, label_name: label.into(), x, y, ..Dataset::default() };
        let split = Split { train: data.clone(), test: data };
        let split_id = store
            .put_split(&split, &SplitReport::default(), vec![], serde_json::json!({}))
            .expect("split");
        let t = Transform::fit(&split.train, Scaling::Standard);
        let transform = store
            .put_json(
                Kind::Transform,
                "test",
                vec![split_id.clone()],
                serde_json::json!({}),
                "transform.json",
                &t,
            )
            .expect("transform");
        (split_id, transform)
    }

    /// `auto` fits 220 terms by L-BFGS, to the optimum: the model says what ran and why, and an
    /// exact fit's statistics are given, as newton's would be; its estimates are newton's.
    #[tokio::test]
    async fn auto_fits_many_terms_by_lbfgs_to_newtons_optimum_and_says_so() {
        let (_dir, store, app) = service();
        let (rows, d) = (1_500, 220);
        // A deterministic, well-spread design: each term a different frequency of the row.
        let x: Vec<f64> = (0..rows)
            .flat_map(|i| {
                (0..d).map(move |j| (f64::from(i as u32) * (0.37 + 0.011 * j as f64)).sin())
            })
            .collect();
        let y: Vec<f64> = x
            .chunks_exact(d)
            .enumerate()
            .map(|(i, r)| {
                f64::from(u8::from(
                    r[0] + 0.5 * r[1] - 0.3 * r[2] + ((i * 7919) % 1000) as f64 / 500.0 - 1.0 > 0.0,
                ))
            })
            .collect();
        let names: Vec<String> = (0..d).map(|j| format!("x{j}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (split, transform) = stored_split(&store, &names, "y", x, y);
        let mut fitted = Vec::new();
        for solver in ["auto", "newton"] {
            let params = serde_json::json!({"solver": solver});
            let info = finished_job(
                &app,
                serde_json::json!({"split": split, "transform": transform, "params": params}),
            )
            .await;
            assert_eq!(info["stop_reason"], "converged", "{solver}: {info}");
            let model: Model = store
                .read_json(info["model"].as_str().expect("a model"), Kind::Model, "model.json")
                .expect("model");
            assert_eq!(model.fit.statistics_note, None, "{solver}");
            assert_eq!(model.fit.terms.len(), d + 1, "{solver}");
            fitted.push(model);
        }
        let (auto, newton) = (&fitted[0], &fitted[1]);
        let choice = auto.fit.solver_choice.as_ref().expect("auto says what it chose");
        assert_eq!(choice.describe(), "auto → lbfgs: 220 terms, too many for newton's Hessian");
        assert_eq!((auto.params.solver, newton.fit.solver_choice.as_ref()), (Solver::Lbfgs, None));
        // The same estimates, far inside a standard error of each other.
        for (a, n) in auto.fit.terms.iter().zip(&newton.fit.terms) {
            let se = n.std_error.expect("a standard error");
            assert!(
                (a.estimate - n.estimate).abs() < 1e-3 * se,
                "{}: {} vs {} (se {se})",
                a.term,
                a.estimate,
                n.estimate
            );
        }
    }

    /// Separation by a combination of terms is read off an exact fit only. An SGD fit thrown far
    /// off by a huge step leaves rows at probability 0 or 1 on classes that overlap; that
    /// claimed "separated" before. A combination that does separate is still named by every
    /// solver.
    #[tokio::test]
    async fn separation_is_decided_by_an_exact_fit_never_by_an_iterative_one_that_ran_off() {
        let (_dir, store, app) = service();
        // 400 rows on a spiral of (a, b); a and b each overlap the classes alone.
        let x: Vec<f64> = (0..400)
            .flat_map(|i| {
                [f64::from(i).sin() * 3.0, f64::from(i).cos() * 2.0 + f64::from(i % 7) * 0.1]
            })
            .collect();
        let combined: Vec<f64> =
            x.chunks_exact(2).map(|r| f64::from(u8::from(r[0] + r[1] > 0.0))).collect();
        // Overlapping: the combination's label, flipped on every fifth row.
        let overlapping: Vec<f64> = combined
            .iter()
            .enumerate()
            .map(|(i, &v)| if i % 5 == 0 { 1.0 - v } else { v })
            .collect();
        let (split, transform) = stored_split(&store, &["a", "b"], "y", x.clone(), overlapping);
        let params =
            serde_json::json!({"solver": "sgd", "learning_rate": 1e6, "epochs": 3, "patience": 0});
        let info = finished_job(
            &app,
            serde_json::json!({"split": split, "transform": transform, "params": params}),
        )
        .await;
        let model: Model = store
            .read_json(info["model"].as_str().expect("a model"), Kind::Model, "model.json")
            .expect("model");
        let ran_off =
            model.intercept.abs() + model.coefficients.values().map(|v| v.abs()).sum::<f64>();
        assert!(ran_off > 1e4, "the step did not throw the fit off: {model:?}");
        assert_ne!(info["stop_reason"], "separated", "{info}");
        assert_eq!(model.fit.separation, None, "{info}");

        let (split, transform) = stored_split(&store, &["a", "b"], "y", x, combined);
        for solver in ["auto", "newton", "lbfgs", "saga", "batch", "sgd", "minibatch"] {
            let params = serde_json::json!({"solver": solver, "epochs": 20});
            let info = finished_job(
                &app,
                serde_json::json!({"split": split, "transform": transform, "params": params}),
            )
            .await;
            assert_eq!(info["stop_reason"], "separated", "{solver}: {info}");
            let model: Model = store
                .read_json(info["model"].as_str().expect("a model"), Kind::Model, "model.json")
                .expect("model");
            let said = model.fit.separation.unwrap_or_default();
            assert!(
                said.starts_with("a combination of terms separates the classes"),
                "{solver}: {said}"
            );
        }
    }

    #[tokio::test]
    async fn bad_requests_are_refused() {
        let (_dir, app, split, transform) = setup();
        let (status, body) = call(
            &app,
            "POST",
            "/v1/jobs",
            Some(serde_json::json!({"split": split, "transform": transform, "params": {"learning_rate": -1.0}})),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("INVALID_PARAMS"))
        );
        let (status, _) = call(
            &app,
            "POST",
            "/v1/jobs",
            Some(serde_json::json!({"split": transform, "transform": transform})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = call(&app, "GET", "/v1/jobs/job-999/events", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(&app, "DELETE", "/v1/jobs/nope", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_request_whose_inputs_cannot_be_loaded_leaves_no_job() {
        let (_dir, app, split, _) = setup();
        for _ in 0..3 {
            let body = serde_json::json!({"split": split, "transform": "0".repeat(64)});
            let (status, _) = call(&app, "POST", "/v1/jobs", Some(body)).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        let (status, jobs) = call(&app, "GET", "/v1/jobs", None).await;
        assert_eq!((status, jobs.as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{jobs}");
    }

    #[tokio::test]
    async fn cancel_stops_between_epochs_and_stores_nothing() {
        let (dir, app, split, transform) = setup();
        let body = serde_json::json!({"split": split, "transform": transform, "params": {"epochs": 1000000, "patience": 0, "tolerance": 0.0}});
        let (_, info) = call(&app, "POST", "/v1/jobs", Some(body)).await;
        let id = info["job"].as_str().expect("id").to_string();
        let (_, info) = call(&app, "DELETE", &format!("/v1/jobs/{id}"), None).await;
        assert!(info["job"].is_string());
        let (_, bytes) =
            call_raw(&app, "GET", &format!("/v1/jobs/{id}/events"), "text/plain", vec![]).await;
        assert!(String::from_utf8_lossy(&bytes).contains("event: cancelled"));
        let models = std::fs::read_dir(dir.path().join("artifacts")).expect("dir").filter(|e| {
            e.as_ref().is_ok_and(|e| {
                std::fs::read_to_string(e.path().join("manifest.json"))
                    .is_ok_and(|m| m.contains("\"kind\": \"model\""))
            })
        });
        assert_eq!(models.count(), 0);
    }

    #[tokio::test]
    async fn cancel_keeping_the_best_epoch_stores_it_as_a_model_and_caches_nothing() {
        let (dir, app, split, transform) = setup();
        let body = serde_json::json!({"split": split, "transform": transform, "params": {"epochs": 1000000, "patience": 0, "tolerance": 0.0}});
        let (_, info) = call(&app, "POST", "/v1/jobs", Some(body.clone())).await;
        let id = info["job"].as_str().expect("id").to_string();
        let (status, refused) =
            call(&app, "DELETE", &format!("/v1/jobs/{id}?keep=all"), None).await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("INVALID_QUERY")),
            "{refused}"
        );
        // Let it train a few epochs, so that there is a best one to keep.
        for _ in 0..200 {
            let (_, now) = call(&app, "GET", &format!("/v1/jobs/{id}"), None).await;
            if now["epochs"].as_u64().unwrap_or(0) >= 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let (status, _) = call(&app, "DELETE", &format!("/v1/jobs/{id}?keep=best"), None).await;
        assert_eq!(status, StatusCode::OK);
        let (_, bytes) =
            call_raw(&app, "GET", &format!("/v1/jobs/{id}/events"), "text/plain", vec![]).await;
        let events = String::from_utf8_lossy(&bytes).to_string();
        assert!(events.contains("event: done") && !events.contains("event: cancelled"), "{events}");
        let (_, done) = call(&app, "GET", &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(
            (done["state"].as_str(), done["stop_reason"].as_str()),
            (Some("succeeded"), Some("cancelled")),
            "{done}"
        );
        let model_id = done["model"].as_str().expect("a model").to_string();
        let model: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("artifacts").join(&model_id).join("model.json"))
                .expect("the model is stored"),
        )
        .expect("json");
        assert_eq!(model["stop_reason"].as_str(), Some("cancelled"), "{model}");
        // The same request again is trained afresh, not answered with the stopped fit.
        let (_, again) = call(&app, "POST", "/v1/jobs", Some(body)).await;
        assert_eq!(
            (again["cached"].as_bool(), again["state"].as_str()),
            (Some(false), Some("running")),
            "{again}"
        );
        let (status, _) =
            call(&app, "DELETE", &format!("/v1/jobs/{}", again["job"].as_str().expect("id")), None)
                .await;
        assert_eq!(status, StatusCode::OK);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]
        /// Any JSON to `POST /v1/jobs`, with the stored split and transform ids among the values
        /// (artifacts are named by their content, so every case's setup stores the same ids), so
        /// cases get past "not found" into the parameters' checks and start real jobs. Each
        /// case's jobs are stopped as the service's shutdown stops them when the case ends.
        #[test]
        fn any_json_body_gets_an_answer_never_a_5xx(
            body in {
                const FIELDS: &[&str] = &["split", "transform", "params", "solver", "learning_rate", "epochs", "batch_size", "l2", "seed", "tolerance", "patience"];
                let (_dir, _, split, transform) = setup();
                let samples = vec![serde_json::json!(split), serde_json::json!(transform), serde_json::json!("newton"), serde_json::json!(0.1)];
                let params = serde_json::json!({"epochs": 3, "patience": 0, "learning_rate": 0.1, "l2": 0.0, "tolerance": 1e-6, "batch_size": 8});
                let valid = serde_json::json!({"split": split, "transform": transform, "params": params});
                proptest::prop_oneof![
                    logitflow_kit::testing::bodies::any_json(FIELDS, samples.clone()),
                    logitflow_kit::testing::bodies::near(valid, FIELDS, samples),
                ]
            },
        ) {
            logitflow_kit::testing::bodies::assert_answers(
                || async {
                    let (stop, stopped) = watch::channel(false);
                    let (dir, state, _, _) = setup_with(stopped);
                    (StopJobsOnDrop(stop, state.clone(), dir), app(state))
                },
                "POST",
                "/v1/jobs",
                &body,
            );
        }
    }
}
