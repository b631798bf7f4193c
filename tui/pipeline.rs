//! The pipeline driver: runs ingest → preprocess → features → train → evaluate → serve through
//! the services' HTTP APIs, sending a [`PipelineEvent`] as each stage starts and ends and as
//! each epoch arrives from train's event stream, and returns a [`RunReport`].
//!
//! Both `logitflow run` and the dashboard drive the pipeline through [`run_pipeline`].

use crate::supervisor::Supervisor;
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
use logitflow_kit::client::{ClientError, ServiceClient};
use logitflow_kit::wire::{
    AliasRequest, ClassCurves, ClassProbability, CsvSource, DatasetInfo, EvaluateRequest,
    Evaluation, InferRequest, InferResponse, JobInfo, LoadInfo, PrefetchInfo, PrefetchRequest,
    RowCounts, SplitInfo, SplitRequest, TrainEvent, TrainRequest, TransformInfo, TransformRequest,
    UploadInfo,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;
use tokio::sync::mpsc;

/// The stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Ingest,
    Preprocess,
    Features,
    Train,
    Evaluate,
    Serve,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Ingest,
        Stage::Preprocess,
        Stage::Features,
        Stage::Train,
        Stage::Evaluate,
        Stage::Serve,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Preprocess => "preprocess",
            Stage::Features => "features",
            Stage::Train => "train",
            Stage::Evaluate => "evaluate",
            Stage::Serve => "serve",
        }
    }
}

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
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{stage}: {error}", stage = .stage.as_str())]
    Stage { stage: Stage, error: String },
    #[error("training was cancelled")]
    Cancelled,
}

/// Clients for the services a run needs.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ingest: ServiceClient,
    pub preprocess: ServiceClient,
    pub features: ServiceClient,
    pub train: ServiceClient,
    pub evaluate: ServiceClient,
    pub serve: ServiceClient,
    /// Send the data files to ingest in the request (`PUT /v1/uploads`) instead of naming
    /// their paths: ingest runs elsewhere (`--connect`) and cannot read this machine's files.
    pub upload_data: bool,
}

impl Clients {
    /// Clients for the supervisor's current addresses; `None` if a service has none yet.
    pub fn from_supervisor(sup: &Supervisor) -> Option<Clients> {
        crate::services::Services::Children(sup.clone()).clients()
    }
}

/// A new run id: the time and a random suffix, sortable.
pub fn new_run_id() -> String {
    let ms = logitflow_core::store::now_unix_ms();
    format!("{ms}-{:04x}", rand::random::<u16>())
}

/// Runs every stage and returns the report. Events go to `events` as they happen. With
/// `keep_in` (a home), the run's report is kept in `<home>/runs/` before the new version is
/// promoted or served, and again once it is.
/// What the train stage came to.
struct Trained {
    model: String,
    stop_reason: StopReason,
    epochs: usize,
    cached: bool,
    curve: Vec<EpochEvent>,
    solve_ms: Option<f64>,
}

pub async fn run_pipeline(
    clients: &Clients,
    request: &PipelineRequest,
    events: mpsc::UnboundedSender<PipelineEvent>,
    keep_in: Option<&std::path::Path>,
) -> Result<RunReport, PipelineError> {
    let run_id = new_run_id();
    let started_unix_ms = logitflow_core::store::now_unix_ms();
    let mut stages = Vec::new();
    let send = |e: PipelineEvent| {
        let _ = events.send(e);
    };

    macro_rules! stage {
        ($stage:expr, $cached:expr, $detail:expr, $body:expr) => {{
            let stage: Stage = $stage;
            send(PipelineEvent::StageStarted(stage));
            let t = Instant::now();
            match $body.await {
                Ok(value) => {
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    let cached: bool = $cached(&value);
                    send(PipelineEvent::StageFinished {
                        stage,
                        ms,
                        cached,
                        detail: $detail(&value),
                    });
                    stages.push(StageReport {
                        name: stage,
                        status: "ok".into(),
                        ms,
                        cached,
                        solver_ms: None,
                    });
                    value
                }
                Err(e) => {
                    let error = describe(e);
                    send(PipelineEvent::StageFailed { stage, error: error.clone() });
                    return Err(PipelineError::Stage { stage, error });
                }
            }
        }};
    }

    let absolute =
        |p: &PathBuf| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()).display().to_string();
    let csv_source = |path: &PathBuf| {
        let o = &request.read;
        CsvSource {
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
        }
    };
    // What ingest is told to read: the file here, or the copy of it sent to ingest.
    let source_of = |path: PathBuf| async move {
        let mut source = csv_source(&path);
        if clients.upload_data {
            let upload: UploadInfo = clients.ingest.put_file("/v1/uploads", &path).await?;
            source.path = upload.path;
        }
        Ok::<_, ClientError>(source)
    };
    let ingest = async {
        let source = source_of(request.data.clone()).await?;
        let train: DatasetInfo = clients.ingest.post("/v1/datasets/csv", &source).await?;
        let test = match &request.test_data {
            Some(path) => {
                let source = source_of(path.clone()).await?;
                Some(clients.ingest.post::<_, DatasetInfo>("/v1/datasets/csv", &source).await?)
            }
            None => None,
        };
        Ok::<_, ClientError>((train, test))
    };
    let (dataset, test_dataset) = stage!(
        Stage::Ingest,
        |v: &(DatasetInfo, Option<DatasetInfo>)| v.0.cached
            && v.1.as_ref().is_none_or(|t| t.cached),
        |v: &(DatasetInfo, Option<DatasetInfo>)| format!(
            "{} rows",
            v.0.rows + v.1.as_ref().map_or(0, |t| t.rows)
        ),
        ingest
    );
    // Rows to predict are checked against the data's columns now, not after training.
    check_predict_rows(&request.predict, &dataset).map_err(|error| {
        send(PipelineEvent::StageFailed { stage: Stage::Ingest, error: error.clone() });
        PipelineError::Stage { stage: Stage::Ingest, error }
    })?;
    // Train loads the dataset's rows while preprocess splits them, on the core preprocess
    // leaves idle, and then takes the training part out of them in place (on the 201 MB file
    // the load then ends before features does). A hint, as the part's below; not asked for
    // when ingest found the dataset stored before, as every later stage may well have.
    if !dataset.cached {
        let prefetch = PrefetchRequest::Dataset(dataset.dataset.clone());
        let _: Result<PrefetchInfo, _> = clients.train.post("/v1/prefetches", &prefetch).await;
    }
    let mut data_summary = DataSummary {
        categorical: dataset.categorical.clone(),
        notes: dataset.notes.clone(),
        ..DataSummary::default()
    };
    let split_request = SplitRequest {
        dataset: dataset.dataset.clone(),
        test_dataset: test_dataset.map(|t| t.dataset),
        clean: request.clean.clone(),
        test_fraction: request.test_fraction,
        seed: request.split_seed,
    };
    let split: SplitInfo = stage!(
        Stage::Preprocess,
        |v: &SplitInfo| v.cached,
        |v: &SplitInfo| format!(
            "{} train / {} test, {} dropped",
            v.report.train_rows,
            v.report.test_rows,
            v.report.clean.rows_in - v.report.clean.rows_kept
        ),
        clients.preprocess.post("/v1/splits", &split_request)
    );
    // Train loads the training part now, while features fits its scaling, and the job takes
    // it instead of loading it (on the 201 MB file, ≈ 45 ms less from split to model). Only a
    // hint: a train service that fails it, or has no such route, loads the part with the job.
    let prefetch = PrefetchRequest::Split(split.split.clone());
    let _: Result<PrefetchInfo, _> = clients.train.post("/v1/prefetches", &prefetch).await;
    let clean = &split.report.clean;
    data_summary.rows_in = clean.rows_in;
    data_summary.dropped = clean.dropped.clone();
    data_summary.missing_by_column = clean.missing_by_column.clone();
    data_summary.imputed = clean.imputed.clone();
    data_summary.test_file = split
        .report
        .test_clean
        .as_ref()
        .map(|t| TestFileSummary { rows_in: t.rows_in, dropped: t.rows_in - t.rows_kept });
    let transform: TransformInfo = stage!(
        Stage::Features,
        |v: &TransformInfo| v.cached,
        |v: &TransformInfo| format!("{:?} scaling", v.scaling).to_lowercase(),
        clients.features.post(
            "/v1/transforms",
            &TransformRequest { split: split.split.clone(), scaling: request.scaling }
        )
    );
    let train_started = Instant::now();
    let train_request = TrainRequest {
        split: split.split.clone(),
        transform: transform.transform.clone(),
        params: request.params.clone(),
    };
    let train = async {
        let job: JobInfo = clients.train.post("/v1/jobs", &train_request).await?;
        send(PipelineEvent::TrainStarted { job: job.job.clone() });
        let stream = clients.train.train_events(&format!("/v1/jobs/{}/events", job.job)).await?;
        follow_training(stream, most_epoch_events(&request.params), |e| {
            send(PipelineEvent::Epoch(e))
        })
        .await
    };
    let trained = async {
        match train.await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(error)) => Err(ClientError::Api {
                service: "train".into(),
                status: 500,
                code: "TRAINING_FAILED".into(),
                message: error,
            }),
            Err(e) => Err(e),
        }
    };
    let Trained { model: model_id, stop_reason, curve, solve_ms, .. } = stage!(
        Stage::Train,
        |v: &Trained| v.cached,
        |v: &Trained| format!("{} epochs, {}", v.epochs, v.stop_reason.describe()),
        trained
    );
    if let Some(train) = stages.last_mut() {
        train.solver_ms = solve_ms;
    }
    let evaluate_request = EvaluateRequest {
        name: request.model_name.clone(),
        model: model_id.clone(),
        split: split.split.clone(),
        threshold: request.threshold,
        promote_tolerance: logitflow_kit::wire::default_promote_tolerance(),
        // The run's record is kept before the decision is applied (below).
        decide_only: keep_in.is_some() || !request.apply_decision,
    };
    let evaluation: Evaluation = stage!(
        Stage::Evaluate,
        |v: &Evaluation| !v.new_version,
        |v: &Evaluation| format!("v{}: {}", v.version, v.decision),
        clients.evaluate.post("/v1/evaluations", &evaluate_request)
    );
    send(PipelineEvent::Evaluated(Box::new(evaluation.clone())));
    let mut report = RunReport {
        run_id,
        started_unix_ms,
        data: absolute(&request.data),
        model: ModelReport {
            name: request.model_name.clone(),
            version: evaluation.version,
            intercept: evaluation.intercept,
            coefficients: evaluation.coefficients.clone(),
            fit: evaluation.fit.clone(),
            classes: evaluation.classes.clone(),
            label_name: dataset.label_name.clone(),
            multinomial: evaluation.multinomial.clone(),
        },
        metrics: evaluation.metrics.clone(),
        loss_curve: curve
            .iter()
            .map(|e| CurvePoint { epoch: e.epoch, train_loss: e.train_loss, val_loss: e.val_loss })
            .collect(),
        stages: stages.clone(),
        predictions: Vec::new(),
        // Promoted once the alias has moved (below); until then the kept report says it is
        // promoting, so that a run stopped in between never reads as promoted.
        promoted: false,
        promoting: (evaluation.promoted && request.apply_decision).then_some(evaluation.version),
        decision: evaluation.decision.clone(),
        stop_reason,
        stable_version: None,
        roc: evaluation.roc.clone(),
        precision_recall: evaluation.precision_recall.clone(),
        calibration: evaluation.calibration.clone(),
        class_curves: evaluation.class_curves.clone(),
        // The solver that ran: what `auto` chose, so that the run is trained again as it was.
        params: TrainParams {
            solver: evaluation
                .fit
                .solver_choice
                .as_ref()
                .map_or(request.params.solver, |c| c.solver),
            ..request.params.clone()
        },
        feature_names: dataset.feature_names.clone(),
        train_to_served_ms: 0.0,
        rows: evaluation.rows,
        data_summary,
    };
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
        send(PipelineEvent::StageFailed { stage: Stage::Serve, error: error.clone() });
        return Err(PipelineError::Stage { stage: Stage::Serve, error });
    }
    let apply = async {
        if let Some(alias) =
            evaluation.alias.as_ref().filter(|_| !evaluation.applied && request.apply_decision)
        {
            let path = format!("/v1/models/{}/aliases/{alias}", request.model_name);
            clients
                .evaluate
                .post::<_, serde_json::Value>(&path, &AliasRequest { version: evaluation.version })
                .await?;
        }
        clients
            .serve
            .post::<_, LoadInfo>(
                &format!("/v2/repository/models/{}/load", request.model_name),
                &serde_json::json!({}),
            )
            .await
    };
    // Serve also watches the registry, and may have loaded the version this run registered
    // just before it is told to: then its answer says nothing changed, yet the run's new
    // version is what it now serves (a first run once read "serve cached" so, under load).
    let loaded: LoadInfo = stage!(
        Stage::Serve,
        |v: &LoadInfo| !v.changed && !evaluation.new_version,
        |v: &LoadInfo| v
            .aliases
            .iter()
            .map(|(a, v)| format!("{a}=v{v}"))
            .collect::<Vec<_>>()
            .join(" "),
        apply
    );
    send(PipelineEvent::Served(loaded.clone()));
    report.promoted = report.promoting.take().is_some();
    report.stages = stages;
    report.train_to_served_ms = train_started.elapsed().as_secs_f64() * 1e3;
    report.stable_version = loaded.aliases.get(logitflow_core::registry::STABLE).copied();
    for row in &request.predict {
        let answer: InferResponse = clients
            .serve
            .post(
                &format!("/v2/models/{}/infer", request.model_name),
                &InferRequest::named(&evaluation.feature_names, row),
            )
            .await
            .map_err(|e| PipelineError::Stage { stage: Stage::Serve, error: describe(e) })?;
        report.predictions.push(prediction_of(row, answer, evaluation.classes.as_ref()));
    }
    // The whole record, now with the serve stage and the answers. The first one stays if
    // this cannot be written: the run happened, and it is on record.
    if let Some(home) = keep_in {
        let _ = keep_run(home, &report).await;
    }
    Ok(report)
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
pub fn save_run(home: &std::path::Path, report: &RunReport) -> Result<(), String> {
    let storage = crate::commands::runs_storage(home)?;
    let bytes = serde_json::to_vec_pretty(report).map_err(|e| e.to_string())?;
    storage.replace(&format!("runs/{}.json", report.run_id), &bytes).map_err(|e| e.to_string())
}

/// [`save_run`] on a blocking thread.
async fn keep_run(home: &std::path::Path, report: &RunReport) -> Result<(), String> {
    let (home, report) = (home.to_path_buf(), report.clone());
    tokio::task::spawn_blocking(move || save_run(&home, &report))
        .await
        .map_err(|e| e.to_string())?
}

/// Every kept run, oldest first. Unreadable reports are skipped.
pub fn load_runs(home: &std::path::Path) -> Vec<RunReport> {
    use std::io::Read;
    let Ok(storage) = crate::commands::runs_storage(home) else { return Vec::new() };
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
        let registry = crate::commands::registry(home).and_then(|r| Ok(r.load()?));
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
    registry: Option<&logitflow_core::registry::RegistryData>,
) {
    let Some(version) = run.promoting.take() else { return };
    let model = registry.and_then(|r| r.models.get(&run.model.name));
    let was_stable = model.is_some_and(|m| {
        m.stable_history.contains(&version)
            || m.aliases.get(logitflow_core::registry::STABLE) == Some(&version)
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
