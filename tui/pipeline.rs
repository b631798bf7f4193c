//! The pipeline driver: runs ingest → preprocess → features → train → evaluate → serve through
//! the services' HTTP APIs, sending a [`PipelineEvent`] as each stage starts and ends and as
//! each epoch arrives from train's event stream, and returns a [`RunReport`].
//!
//! Both `logitflow run` and the dashboard drive the pipeline through [`run_pipeline`].

pub use crate::clients::Clients;
use crate::home::Home;
use crate::supervisor::ServiceName;
use futures::StreamExt;
use logitflow_core::clean::CleanOptions;
use logitflow_core::inference::FitReport;
use logitflow_core::logistic::multinomial::ClassModel;
use logitflow_core::logistic::{EpochEvent, StopReason, TrainParams};
use logitflow_core::metrics::{CalibrationBin, Metrics, PrPoint, RocPoint};
use logitflow_core::model::Coefficients;
use logitflow_core::scale::Scaling;
use logitflow_core::scale::Value;
use logitflow_core::table::{Classes, CsvOptions};
use logitflow_kit::client::ClientError;
use logitflow_kit::wire::{
    AliasRequest, ClassCurves, ClassProbability, CsvSource, DatasetInfo, EvaluateRequest,
    Evaluation, InferRequest, InferResponse, JobInfo, LoadInfo, PrefetchInfo, PrefetchRequest,
    RowCounts, SplitInfo, SplitRequest, TrainEvent, TrainRequest, TransformInfo, TransformRequest,
    UploadInfo,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::sync::mpsc;

/// A stage of the pipeline: the service that does it, one of [`ServiceName::STAGES`].
pub type Stage = ServiceName;

/// What a run is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PipelineRequest {
    pub data: PathBuf,
    /// How to read the CSV files: columns, categorical columns, positive class, NA markers,
    /// delimiter, class names.
    pub read: CsvOptions,
    pub test_data: Option<PathBuf>,
    pub test_fraction: f64,
    pub split_seed: u64,
    pub clean: CleanOptions,
    pub scaling: Scaling,
    pub params: TrainParams,
    pub model_name: String,
    pub threshold: f64,
    /// Rows to ask serve for once the model is served.
    pub predict: Vec<Vec<Value>>,
    /// Whether the promotion rule's decision moves an alias. A sweep's members register
    /// versions only: a person promotes the one chosen.
    pub apply_decision: bool,
}

/// Something that happened during a run, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineEvent {
    StageStarted(Stage),
    StageFinished {
        stage: Stage,
        ms: f64,
        cached: bool,
        detail: String,
    },
    StageFailed {
        stage: Stage,
        error: String,
    },
    /// The train job started: its id, to cancel it.
    TrainStarted {
        job: String,
    },
    Epoch(EpochEvent),
    Evaluated(Box<Evaluation>),
    Served(LoadInfo),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageReport {
    pub name: Stage,
    pub status: String,
    pub ms: f64,
    pub cached: bool,
    /// Train: the solver's own part of `ms` (the rest is loading, checks and writing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelReport {
    pub name: String,
    pub version: u32,
    pub intercept: f64,
    /// In the model's term order.
    pub coefficients: Coefficients,
    /// The coefficient table (standard errors, z, p-values, 95% intervals and odds ratios for
    /// an unpenalised exact fit), separation, optimality.
    #[serde(flatten)]
    pub fit: FitReport,
    /// Class 0 and class 1 by name.
    #[serde(default)]
    pub classes: Option<Classes>,
    #[serde(default)]
    pub label_name: String,
    /// A K-class model's estimates and tables per class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multinomial: Option<ClassModel>,
}

/// What became of the data on its way to the model.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DataSummary {
    /// Rows read from the training file (and the test file, if any).
    pub rows_in: usize,
    /// Rows dropped, by reason.
    pub dropped: BTreeMap<String, usize>,
    /// Column → rows dropped because it was missing.
    pub missing_by_column: BTreeMap<String, usize>,
    /// Column → cells imputed.
    pub imputed: BTreeMap<String, usize>,
    /// Categorical features and their levels.
    pub categorical: BTreeMap<String, Vec<String>>,
    /// What the CSV reader decided (delimiter, skipped index column, text columns).
    pub notes: Vec<String>,
    /// The separate test file's rows read and dropped, when there is one.
    #[serde(default)]
    pub test_file: Option<TestFileSummary>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TestFileSummary {
    pub rows_in: usize,
    pub dropped: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CurvePoint {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Prediction {
    pub input: Vec<Value>,
    /// A binary model's probability of the positive class; a K-class model's of `label`.
    pub probability: f64,
    pub model_version: String,
    /// A K-class model's most probable class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A K-class model's probability of each class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassProbability>,
}

/// The outcome of a run: what `logitflow run --json` prints, and what `<home>/runs/` keeps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunReport {
    pub run_id: String,
    pub started_unix_ms: u64,
    pub data: String,
    pub model: ModelReport,
    pub metrics: Metrics,
    pub loss_curve: Vec<CurvePoint>,
    pub stages: Vec<StageReport>,
    pub predictions: Vec<Prediction>,
    /// Whether the run's version became stable. Read through [`load_runs`], it is what the
    /// registry says, even for a run that stopped between deciding and promoting.
    pub promoted: bool,
    /// The version a run is promoting while it moves the alias: the report is kept with this
    /// (and `promoted` false) before the alias moves, and kept again without it once it has,
    /// so a run stopped in between is settled against the registry when it is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoting: Option<u32>,
    pub decision: String,
    pub stop_reason: StopReason,
    pub stable_version: Option<u32>,
    pub roc: Vec<RocPoint>,
    #[serde(default)]
    pub precision_recall: Vec<PrPoint>,
    #[serde(default)]
    pub calibration: Vec<CalibrationBin>,
    pub params: TrainParams,
    pub feature_names: Vec<String>,
    /// From the keypress (or command) to the new version answering predictions, in ms.
    pub train_to_served_ms: f64,
    /// Rows that trained, were held out for validation, and tested.
    #[serde(default)]
    pub rows: RowCounts,
    #[serde(default)]
    pub data_summary: DataSummary,
    /// A K-class model's curves, one class against the rest each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_curves: Vec<ClassCurves>,
    /// The test rows left out of the metrics, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unscored: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{stage}: {error}", stage = .stage.as_str())]
    Stage { stage: Stage, error: String },
    #[error("training was cancelled")]
    Cancelled,
}

/// A new run id: the time and a random suffix, sortable.
pub fn new_run_id() -> String {
    let ms = logitflow_store::now_unix_ms();
    format!("{ms}-{:04x}", rand::random::<u16>())
}

/// What the train stage came to.
struct Trained {
    model: String,
    stop_reason: StopReason,
    epochs: usize,
    cached: bool,
    curve: Vec<EpochEvent>,
    solve_ms: Option<f64>,
}

/// Runs the stages one after another: each announced, timed, recorded, and its error made the
/// run's.
struct StageRunner<'e> {
    events: &'e mpsc::UnboundedSender<PipelineEvent>,
    stages: Vec<StageReport>,
}

impl StageRunner<'_> {
    fn send(&self, event: PipelineEvent) {
        let _ = self.events.send(event);
    }

    /// Runs `stage` as `work`; `summary` says of its value whether it was cached, and the
    /// detail the dashboard shows beside the stage.
    async fn run<T>(
        &mut self,
        stage: Stage,
        work: impl std::future::Future<Output = Result<T, ClientError>>,
        summary: impl FnOnce(&T) -> (bool, String),
    ) -> Result<T, PipelineError> {
        self.send(PipelineEvent::StageStarted(stage));
        let started = Instant::now();
        let value = work.await.map_err(|e| self.fail(stage, describe(e)))?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let (cached, detail) = summary(&value);
        self.send(PipelineEvent::StageFinished { stage, ms, cached, detail });
        let status = "ok".into();
        self.stages.push(StageReport { name: stage, status, ms, cached, solver_ms: None });
        Ok(value)
    }

    /// The run's error for `stage`, announced.
    fn fail(&self, stage: Stage, error: String) -> PipelineError {
        let error = crate::cli::with_flag_hints(&error);
        self.send(PipelineEvent::StageFailed { stage, error: error.clone() });
        PipelineError::Stage { stage, error }
    }
}

/// Runs every stage and returns the report. Events go to `events` as they happen. With
/// `keep_in` (a home), the run's report is kept in `<home>/runs/` before the new version is
/// promoted or served, and again once it is.
pub async fn run_pipeline(
    clients: &Clients,
    request: &PipelineRequest,
    events: mpsc::UnboundedSender<PipelineEvent>,
    keep_in: Option<&Home>,
) -> Result<RunReport, PipelineError> {
    let (run_id, started_unix_ms) = (new_run_id(), logitflow_store::now_unix_ms());
    let mut runner = StageRunner { events: &events, stages: Vec::new() };
    let (dataset, test_dataset) = ingest(&mut runner, clients, request).await?;
    // Rows to predict are checked against the data's columns now, not after training.
    check_predict_rows(&request.predict, &dataset).map_err(|e| runner.fail(Stage::Ingest, e))?;
    // Train loads the dataset's rows while preprocess splits them, on the core preprocess
    // leaves idle, and then takes the training part out of them in place. A hint, as the
    // part's below; not asked for when ingest found the dataset stored before, as every later
    // stage may well have.
    if !dataset.cached {
        prefetch(clients, PrefetchRequest::Dataset(dataset.dataset.clone())).await;
    }
    let split = split(&mut runner, clients, request, &dataset, test_dataset).await?;
    // Train loads the training part now, while features fits its scaling, and the job takes
    // it instead of loading it. Only a hint: a train service that fails it, or has no such
    // route, loads the part with the job.
    prefetch(clients, PrefetchRequest::Split(split.split.clone())).await;
    let transform_request =
        TransformRequest { split: split.split.clone(), scaling: request.scaling };
    let transform: TransformInfo = runner
        .run(
            Stage::Features,
            clients.features.post("/v1/transforms", &transform_request),
            |v: &TransformInfo| (v.cached, format!("{:?} scaling", v.scaling).to_lowercase()),
        )
        .await?;
    let train_started = Instant::now();
    let trained = train(&mut runner, clients, request, (&split, &transform)).await?;
    let evaluation =
        evaluate(&mut runner, clients, request, (&split, &trained.model), keep_in).await?;
    runner.send(PipelineEvent::Evaluated(Box::new(evaluation.clone())));
    let run = RunOf { run_id, started_unix_ms, dataset: &dataset, split: &split };
    let mut report = report_of(run, request, &evaluation, trained, runner.stages.clone());
    // The record of the run is kept before its decision is applied: if it cannot be kept, the
    // new version stays registered but is neither promoted nor served, so nothing anyone sees
    // comes from a run with no record.
    if let Some(home) = keep_in
        && let Err(e) = keep_run(home, &report).await
    {
        let error = format!(
            "cannot keep the run's report ({e}); v{} is registered but was neither promoted nor served",
            evaluation.version
        );
        return Err(runner.fail(Stage::Serve, error));
    }
    let loaded = serve(&mut runner, clients, request, &evaluation).await?;
    runner.send(PipelineEvent::Served(loaded.clone()));
    report.promoted = report.promoting.take().is_some();
    report.stages = runner.stages;
    report.train_to_served_ms = train_started.elapsed().as_secs_f64() * 1e3;
    report.stable_version = loaded.aliases.get(logitflow_store::registry::STABLE).copied();
    report.predictions = answer_rows(clients, request, &evaluation).await?;
    // The whole record, now with the serve stage and the answers. The first one stays if
    // this cannot be written: the run happened, and it is on record.
    if let Some(home) = keep_in {
        let _ = keep_run(home, &report).await;
    }
    Ok(report)
}

/// Asks `train` to load ahead what its job will need; a hint, so its answer does not matter.
async fn prefetch(clients: &Clients, what: PrefetchRequest) {
    let _: Result<PrefetchInfo, _> = clients.train.post("/v1/prefetches", &what).await;
}

/// The ingest stage: the training file, and the test file if one is given.
async fn ingest(
    runner: &mut StageRunner<'_>,
    clients: &Clients,
    request: &PipelineRequest,
) -> Result<(DatasetInfo, Option<DatasetInfo>), PipelineError> {
    let ingest = async {
        let source = source_of(clients, request, &request.data).await?;
        let train: DatasetInfo = clients.ingest.post("/v1/datasets/csv", &source).await?;
        let test = match &request.test_data {
            Some(path) => {
                let source = source_of(clients, request, path).await?;
                Some(clients.ingest.post::<_, DatasetInfo>("/v1/datasets/csv", &source).await?)
            }
            None => None,
        };
        Ok((train, test))
    };
    runner
        .run(Stage::Ingest, ingest, |(train, test)| {
            let cached = train.cached && test.as_ref().is_none_or(|t| t.cached);
            (cached, format!("{} rows", train.rows + test.as_ref().map_or(0, |t| t.rows)))
        })
        .await
}

/// Whether `path` names an object of a bucket (`s3://bucket/key`) rather than a file.
pub fn is_object(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with("s3://"))
}

/// What ingest is told to read: the file at `path` here, or the copy of it sent to ingest.
async fn source_of(
    clients: &Clients,
    request: &PipelineRequest,
    path: &PathBuf,
) -> Result<CsvSource, ClientError> {
    let o = &request.read;
    let mut source = CsvSource {
        path: absolute(path),
        label: o.label.clone(),
        features: o.features.clone(),
        categorical: o.categorical.clone(),
        positive: o.positive.clone(),
        na_values: o.na_values.clone(),
        delimiter: o.delimiter.clone(),
        class_labels: o.class_labels.clone(),
        roles: o.roles.clone(),
        decimal: o.decimal.clone(),
    };
    // An object of a bucket is read by ingest where it lies, wherever ingest runs.
    if clients.upload_data && !is_object(path) {
        let upload: UploadInfo = clients.ingest.put_file("/v1/uploads", path).await?;
        source.path = upload.path;
    }
    Ok(source)
}

/// `path` as the services are to read it: absolute, links resolved where it exists.
fn absolute(path: &PathBuf) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()).display().to_string()
}

/// The preprocess stage: the dataset cleaned and split (or the test file cleaned).
async fn split(
    runner: &mut StageRunner<'_>,
    clients: &Clients,
    request: &PipelineRequest,
    dataset: &DatasetInfo,
    test_dataset: Option<DatasetInfo>,
) -> Result<SplitInfo, PipelineError> {
    let split_request = SplitRequest {
        dataset: dataset.dataset.clone(),
        test_dataset: test_dataset.map(|t| t.dataset),
        clean: request.clean.clone(),
        test_fraction: request.test_fraction,
        seed: request.split_seed,
    };
    runner
        .run(
            Stage::Preprocess,
            clients.preprocess.post("/v1/splits", &split_request),
            |v: &SplitInfo| {
                let (r, clean) = (&v.report, &v.report.clean);
                let dropped = clean.rows_in - clean.rows_kept;
                (
                    v.cached,
                    format!("{} train / {} test, {dropped} dropped", r.train_rows, r.test_rows),
                )
            },
        )
        .await
}

/// The train stage: a job started, and its epochs followed to its end.
async fn train(
    runner: &mut StageRunner<'_>,
    clients: &Clients,
    request: &PipelineRequest,
    (split, transform): (&SplitInfo, &TransformInfo),
) -> Result<Trained, PipelineError> {
    let train_request = TrainRequest {
        split: split.split.clone(),
        transform: transform.transform.clone(),
        params: request.params.clone(),
    };
    let events = runner.events.clone();
    let send = move |e: PipelineEvent| {
        let _ = events.send(e);
    };
    let trained = async {
        let job: JobInfo = clients.train.post("/v1/jobs", &train_request).await?;
        send(PipelineEvent::TrainStarted { job: job.job.clone() });
        let stream = clients.train.train_events(&format!("/v1/jobs/{}/events", job.job)).await?;
        let most = most_epoch_events(&request.params);
        match follow_training(stream, most, |e| send(PipelineEvent::Epoch(e))).await? {
            Ok(done) => Ok(done),
            Err(message) => Err(ClientError::Api {
                service: "train".into(),
                status: 500,
                code: "TRAINING_FAILED".into(),
                message,
            }),
        }
    };
    let trained = runner
        .run(Stage::Train, trained, |v: &Trained| {
            (v.cached, format!("{} epochs, {}", v.epochs, v.stop_reason.describe()))
        })
        .await?;
    if let Some(stage) = runner.stages.last_mut() {
        stage.solver_ms = trained.solve_ms;
    }
    Ok(trained)
}

/// The evaluate stage: the model tested and registered, its promotion decided (and applied,
/// unless the run is kept first or told not to).
async fn evaluate(
    runner: &mut StageRunner<'_>,
    clients: &Clients,
    request: &PipelineRequest,
    (split, model): (&SplitInfo, &str),
    keep_in: Option<&Home>,
) -> Result<Evaluation, PipelineError> {
    let evaluate_request = EvaluateRequest {
        name: request.model_name.clone(),
        model: model.to_string(),
        split: split.split.clone(),
        threshold: request.threshold,
        promote_tolerance: logitflow_kit::wire::default_promote_tolerance(),
        // The run's record is kept before the decision is applied (in `run_pipeline`).
        decide_only: keep_in.is_some() || !request.apply_decision,
    };
    runner
        .run(
            Stage::Evaluate,
            clients.evaluate.post("/v1/evaluations", &evaluate_request),
            |v: &Evaluation| (!v.new_version, format!("v{}: {}", v.version, v.decision)),
        )
        .await
}

/// The serve stage: the decision applied (the alias moved) and serve told to load.
async fn serve(
    runner: &mut StageRunner<'_>,
    clients: &Clients,
    request: &PipelineRequest,
    evaluation: &Evaluation,
) -> Result<LoadInfo, PipelineError> {
    let apply = async {
        if let Some(alias) =
            evaluation.alias.as_ref().filter(|_| !evaluation.applied && request.apply_decision)
        {
            let path = format!("/v1/models/{}/aliases/{alias}", request.model_name);
            let moved = AliasRequest { version: evaluation.version };
            clients.evaluate.post::<_, serde_json::Value>(&path, &moved).await?;
        }
        let path = format!("/v2/repository/models/{}/load", request.model_name);
        clients.serve.post::<_, LoadInfo>(&path, &serde_json::json!({})).await
    };
    // Serve also watches the registry, and may have loaded the version this run registered
    // just before it is told to: then its answer says nothing changed, yet the run's new
    // version is what it now serves (a first run once read "serve cached" so, under load).
    runner
        .run(Stage::Serve, apply, |v: &LoadInfo| {
            let aliases: Vec<String> = v.aliases.iter().map(|(a, v)| format!("{a}=v{v}")).collect();
            (!v.changed && !evaluation.new_version, aliases.join(" "))
        })
        .await
}

/// The served model's answers to the rows the run was asked to predict.
async fn answer_rows(
    clients: &Clients,
    request: &PipelineRequest,
    evaluation: &Evaluation,
) -> Result<Vec<Prediction>, PipelineError> {
    let path = format!("/v2/models/{}/infer", request.model_name);
    let mut predictions = Vec::with_capacity(request.predict.len());
    for row in &request.predict {
        let asked = InferRequest::named(&evaluation.feature_names, row);
        let answer: InferResponse = clients
            .serve
            .post(&path, &asked)
            .await
            .map_err(|e| PipelineError::Stage { stage: Stage::Serve, error: describe(e) })?;
        predictions.push(prediction_of(row, answer, evaluation.classes.as_ref()));
    }
    Ok(predictions)
}

/// The run a report is of: its id, when it started, its data and their split.
struct RunOf<'a> {
    run_id: String,
    started_unix_ms: u64,
    dataset: &'a DatasetInfo,
    split: &'a SplitInfo,
}

/// The run's report once it is evaluated: promoting (not yet promoted) where the decision
/// was to promote, with no serve stage and no answers yet.
fn report_of(
    run: RunOf<'_>,
    request: &PipelineRequest,
    evaluation: &Evaluation,
    trained: Trained,
    stages: Vec<StageReport>,
) -> RunReport {
    let e = evaluation;
    RunReport {
        run_id: run.run_id,
        started_unix_ms: run.started_unix_ms,
        data: absolute(&request.data),
        model: ModelReport {
            name: request.model_name.clone(),
            version: e.version,
            intercept: e.intercept,
            coefficients: e.coefficients.clone(),
            fit: e.fit.clone(),
            classes: e.classes.clone(),
            label_name: run.dataset.label_name.clone(),
            multinomial: e.multinomial.clone(),
        },
        metrics: e.metrics.clone(),
        loss_curve: trained
            .curve
            .iter()
            .map(|e| CurvePoint { epoch: e.epoch, train_loss: e.train_loss, val_loss: e.val_loss })
            .collect(),
        stages,
        predictions: Vec::new(),
        // Promoted once the alias has moved; until then the kept report says it is
        // promoting, so that a run stopped in between never reads as promoted.
        promoted: false,
        promoting: (e.promoted && request.apply_decision).then_some(e.version),
        decision: e.decision.clone(),
        stop_reason: trained.stop_reason,
        stable_version: None,
        roc: e.roc.clone(),
        precision_recall: e.precision_recall.clone(),
        calibration: e.calibration.clone(),
        class_curves: e.class_curves.clone(),
        // The solver that ran: what `auto` chose, so that the run is trained again as it was.
        params: TrainParams {
            solver: e.fit.solver_choice.as_ref().map_or(request.params.solver, |c| c.solver),
            ..request.params.clone()
        },
        feature_names: run.dataset.feature_names.clone(),
        train_to_served_ms: 0.0,
        rows: e.rows,
        unscored: e.unscored.clone(),
        data_summary: data_summary(run.dataset, run.split),
    }
}

/// What the data came to: the columns read as text, the reader's notes, and what cleaning
/// kept, dropped and imputed, of the training file and of a test file.
fn data_summary(dataset: &DatasetInfo, split: &SplitInfo) -> DataSummary {
    let clean = &split.report.clean;
    DataSummary {
        categorical: dataset.categorical.clone(),
        notes: dataset.notes.clone(),
        rows_in: clean.rows_in,
        dropped: clean.dropped.clone(),
        missing_by_column: clean.missing_by_column.clone(),
        imputed: clean.imputed.clone(),
        test_file: split
            .report
            .test_clean
            .as_ref()
            .map(|t| TestFileSummary { rows_in: t.rows_in, dropped: t.rows_in - t.rows_kept }),
    }
}

/// A served answer to one row: a binary model's probability, or a K-class model's probability
/// of each class and the most probable.
fn prediction_of(row: &[Value], answer: InferResponse, classes: Option<&Classes>) -> Prediction {
    let output = |name: &str| {
        answer.outputs.iter().find(|o| o.name == name).map(|o| o.data.numbers()).unwrap_or_default()
    };
    let probabilities = output("probability");
    let mut prediction = Prediction {
        input: row.to_vec(),
        probability: probabilities.first().copied().unwrap_or(f64::NAN),
        model_version: answer.model_version.clone(),
        label: None,
        classes: Vec::new(),
    };
    if let Some(classes) = classes.filter(|c| c.count() > 2 && probabilities.len() == c.count()) {
        let best = logitflow_core::metrics::most_probable(probabilities);
        prediction.probability = probabilities[best];
        prediction.label = Some(classes.names()[best].to_string());
        prediction.classes = classes
            .names()
            .into_iter()
            .zip(probabilities)
            .map(|(class, &probability)| ClassProbability { class: class.to_string(), probability })
            .collect();
    }
    prediction
}

/// Follows a training job's events to its end, handing each epoch to `on_epoch`: what it came
/// to (a model, or the job's error), or why the stream could not be followed, which is also
/// the case once it sends more than `most` epochs.
async fn follow_training(
    mut stream: logitflow_kit::client::EventStream,
    most: usize,
    on_epoch: impl Fn(EpochEvent),
) -> Result<Result<Trained, String>, ClientError> {
    let mut curve = Vec::new();
    while let Some(event) = stream.next().await {
        match event? {
            TrainEvent::Epoch(_) if curve.len() == most => {
                let detail = format!(
                    "sent more than {most} epoch events for this fit; stopped reading them"
                );
                return Err(ClientError::Decode { service: "train".into(), detail });
            }
            TrainEvent::Epoch(e) => {
                curve.push(e.clone());
                on_epoch(e);
            }
            TrainEvent::Done { model, stop_reason, epochs, cached, solve_ms } => {
                return Ok(Ok(Trained { model, stop_reason, epochs, cached, curve, solve_ms }));
            }
            TrainEvent::Failed { error } => return Ok(Err(error)),
            TrainEvent::Cancelled => return Ok(Err("cancelled".to_string())),
        }
    }
    Err(ClientError::Transport {
        service: "train".into(),
        detail: "the event stream ended before the job did (did the train service die?)".into(),
    })
}

/// The most epoch events a fit with `params` sends: one an epoch (or iteration), or one a λ of
/// a path. More come only from a broken or hostile service (`--connect`), and are not held.
fn most_epoch_events(params: &TrainParams) -> usize {
    const MOST_PATH_POINTS: usize = 101;
    params.epochs + MOST_PATH_POINTS
}

/// Each row to predict has one value per feature, text only where the feature is text.
fn check_predict_rows(rows: &[Vec<Value>], dataset: &DatasetInfo) -> Result<(), String> {
    for row in rows {
        let shown = || row.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        if row.len() != dataset.feature_names.len() {
            return Err(format!(
                "--predict {}: give {} value(s), one per feature in this order: {}",
                shown(),
                dataset.feature_names.len(),
                dataset.feature_names.join(", ")
            ));
        }
        for (name, value) in dataset.feature_names.iter().zip(row) {
            if let Value::Text(text) = value
                && !dataset.categorical.contains_key(name)
            {
                return Err(format!(
                    "--predict {}: {text:?} is not a number, and feature {name:?} is numeric",
                    shown()
                ));
            }
        }
    }
    Ok(())
}

fn describe(e: ClientError) -> String {
    match e {
        ClientError::Api { message, code, .. } => format!("{message} ({code})"),
        other => other.to_string(),
    }
}

/// Keeps a run's report as `runs/<run_id>.json` in the store (`<home>/runs/` unless
/// `--store` names another), replacing it whole. Blocks: called off the async workers.
pub fn save_run(home: &Home, report: &RunReport) -> Result<(), KeepError> {
    let storage = home.runs_storage().map_err(KeepError::Store)?;
    let bytes = serde_json::to_vec_pretty(report).map_err(|e| KeepError::Encode(e.to_string()))?;
    let key = format!("runs/{}.json", report.run_id);
    storage.replace(&key, &bytes).map_err(|e| KeepError::Store(e.to_string()))
}

/// Why a run's report could not be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeepError {
    #[error("{0}")]
    Store(String),
    #[error("the report does not encode: {0}")]
    Encode(String),
    #[error("the thread writing it stopped: {0}")]
    Stopped(String),
}

/// [`save_run`] on a blocking thread.
async fn keep_run(home: &Home, report: &RunReport) -> Result<(), KeepError> {
    let (home, report) = (home.clone(), report.clone());
    tokio::task::spawn_blocking(move || save_run(&home, &report))
        .await
        .map_err(|e| KeepError::Stopped(e.to_string()))?
}

/// Every kept run, oldest first. Unreadable reports are skipped.
pub fn load_runs(home: &Home) -> Vec<RunReport> {
    use std::io::Read;
    let Ok(storage) = home.runs_storage() else { return Vec::new() };
    let names = storage.list("runs").unwrap_or_default();
    let mut runs: Vec<RunReport> = names
        .iter()
        .filter(|name| name.ends_with(".json"))
        .filter_map(|name| storage.open(&format!("runs/{name}")).ok().flatten())
        // A report is some kilobytes: a larger object is not one, and is not read.
        .filter(|object| object.len < 64 << 20)
        .filter_map(|mut object| {
            let mut bytes = Vec::new();
            object.reader.read_to_end(&mut bytes).ok().map(|_| bytes)
        })
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    runs.sort_by(|a: &RunReport, b: &RunReport| a.run_id.cmp(&b.run_id));
    if runs.iter().any(|r| r.promoting.is_some()) {
        let registry = home.registry().and_then(|r| Ok(r.load()?));
        runs.iter_mut().for_each(|run| settle_promotion(run, registry.as_ref().ok()));
    }
    runs
}

/// Settles the report of a run that stopped while promoting its version: promoted if the
/// registry made that version stable (it may have been replaced since, so its stable history
/// is asked), not promoted otherwise, with the decision saying why. A registry that cannot be
/// read promotes nothing.
fn settle_promotion(
    run: &mut RunReport,
    registry: Option<&logitflow_store::registry::RegistryData>,
) {
    let Some(version) = run.promoting.take() else { return };
    let model = registry.and_then(|r| r.models.get(&run.model.name));
    let was_stable = model.is_some_and(|m| {
        m.stable_history.contains(&version)
            || m.aliases.get(logitflow_store::registry::STABLE) == Some(&version)
    });
    run.promoted = was_stable;
    if !was_stable {
        run.decision = format!(
            "{} — not applied: the run stopped before v{version} became stable",
            run.decision
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn epoch(epoch: usize) -> Result<TrainEvent, ClientError> {
        Ok(TrainEvent::Epoch(EpochEvent {
            epoch,
            train_loss: 0.5,
            val_loss: None,
            grad_norm: 0.1,
            elapsed_ms: 1.0,
            path: None,
        }))
    }

    /// A train service that sends epochs without end (a hostile one, behind `--connect`) is
    /// read up to the fit's bound and no further, with a message; an honest one whole.
    #[test]
    fn epochs_past_what_the_fit_can_send_are_refused_not_held() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let seen = AtomicUsize::new(0);
        let count = |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        };
        let endless = futures::stream::iter(1..).map(epoch);
        let followed = runtime.block_on(follow_training(Box::pin(endless), 50, count));
        assert!(
            matches!(&followed, Err(ClientError::Decode { detail, .. }) if detail.contains("more than 50 epoch events")),
            "{:?}",
            followed.err()
        );
        assert_eq!(seen.load(Ordering::Relaxed), 50);

        let done = TrainEvent::Done {
            model: "m".into(),
            stop_reason: StopReason::Converged,
            epochs: 50,
            cached: false,
            solve_ms: None,
        };
        let honest = futures::stream::iter((1..=50).map(epoch).chain([Ok(done)]));
        let trained = runtime
            .block_on(follow_training(Box::pin(honest), 50, |_| {}))
            .expect("followed")
            .expect("trained");
        assert_eq!((trained.curve.len(), trained.model.as_str()), (50, "m"));
        assert_eq!(
            most_epoch_events(&TrainParams { epochs: 1000, ..TrainParams::default() }),
            1101,
            "the epochs and a whole path"
        );
    }
}
