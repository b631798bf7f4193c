//! The request and response bodies of every service, shared by the services and their
//! clients so the two cannot drift apart. Unknown fields in requests are refused.

use crate::tensor::{Datatype, TensorData};
use logitflow_core::clean::CleanOptions;
use logitflow_core::inference::FitReport;
use logitflow_core::logistic::multinomial::{ClassEstimates, ClassModel};
use logitflow_core::logistic::{EpochEvent, StopReason, TrainParams};
use logitflow_core::metrics::{CalibrationBin, Metrics, PrPoint, RocPoint};
use logitflow_core::model::Coefficients;
use logitflow_core::roles::RoleColumns;
use logitflow_core::scale::{Scaling, Value};
use logitflow_core::table::{Classes, CsvOptions};
use logitflow_store::SplitReport;
use logitflow_store::registry::ModelEntry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// ---- ingest ----

/// `POST /v1/datasets/csv`: freeze a CSV file under an allowed root, read as `options` say
/// (columns, categorical columns, the positive class, NA markers, the delimiter). The fields
/// of [`CsvOptions`] are written out here rather than flattened in, because serde cannot both
/// flatten and refuse unknown fields, and a misspelt option must be refused, not ignored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvSource {
    pub path: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categorical: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub na_values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// New names for the classes: `[positive, negative]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_labels: Option<Vec<String>>,
    /// Columns read with the rows that are not features: weights, offset, cluster, folds.
    #[serde(default, skip_serializing_if = "RoleColumns::is_empty")]
    pub roles: RoleColumns,
    /// The numbers' decimal mark: `.` (default) or `,`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimal: Option<String>,
}

impl CsvSource {
    pub fn options(&self) -> CsvOptions {
        CsvOptions {
            label: self.label.clone(),
            features: self.features.clone(),
            categorical: self.categorical.clone(),
            positive: self.positive.clone(),
            na_values: self.na_values.clone(),
            delimiter: self.delimiter.clone(),
            class_labels: self.class_labels.clone(),
            roles: self.roles.clone(),
            decimal: self.decimal.clone(),
        }
    }
}

/// `POST /v1/datasets/synthetic`: rows drawn from a given logistic model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSource {
    pub intercept: f64,
    pub coefficients: Vec<f64>,
    pub ranges: Vec<(f64, f64)>,
    pub rows: usize,
    #[serde(default)]
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatasetInfo {
    pub dataset: String,
    pub rows: usize,
    pub feature_names: Vec<String>,
    pub label_name: String,
    pub cached: bool,
    /// The features read as text (categorical), with their levels.
    #[serde(default)]
    pub categorical: BTreeMap<String, Vec<String>>,
    /// The label's classes when it was text.
    #[serde(default)]
    pub classes: Option<Classes>,
    /// What the reader decided that a person should know.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// `POST /v1/collections/{name}/records`: rows as objects, column → number (or null for a
/// missing value). The first post fixes the collection's columns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordsPost {
    pub records: Vec<BTreeMap<String, Option<f64>>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordsAck {
    pub accepted: usize,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CollectionInfo {
    pub name: String,
    pub columns: Vec<String>,
    pub records: u64,
}

/// `POST /v1/collections/{name}/snapshot`: freeze the collection as a dataset.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub features: Option<Vec<String>>,
}

// ---- preprocess ----

/// `POST /v1/splits`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    pub dataset: String,
    /// A separate test dataset: the whole `dataset` then trains.
    #[serde(default)]
    pub test_dataset: Option<String>,
    #[serde(default)]
    pub clean: CleanOptions,
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

pub fn default_test_fraction() -> f64 {
    0.2
}
pub fn default_seed() -> u64 {
    42
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SplitInfo {
    pub split: String,
    pub report: SplitReport,
    pub cached: bool,
}

// ---- features ----

/// `POST /v1/transforms`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransformRequest {
    pub split: String,
    #[serde(default)]
    pub scaling: Scaling,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TransformInfo {
    pub transform: String,
    pub scaling: Scaling,
    /// The model's terms (a categorical feature gives one per non-reference level).
    #[serde(default)]
    pub term_names: Vec<String>,
    pub offset: Vec<f64>,
    pub scale: Vec<f64>,
    pub cached: bool,
}

// ---- train ----

/// `POST /v1/prefetches`: rows to load ahead of the work that needs them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PrefetchRequest {
    /// `{"split": id}`: the split's training part, for the job that will fit it.
    Split(String),
    /// `{"dataset": id}`: the dataset's rows, which its split's training part is then taken
    /// out of.
    Dataset(String),
}

/// Rows loading, or loaded, ahead (`GET /v1/prefetches`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrefetchInfo {
    #[serde(flatten)]
    pub of: PrefetchRequest,
    /// Loaded (or failed to, which the job then reports as it loads the part itself).
    pub ready: bool,
}

/// `POST /v1/jobs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    pub split: String,
    pub transform: String,
    #[serde(default)]
    pub params: TrainParams,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_finished(self) -> bool {
        self != JobState::Running
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobInfo {
    pub job: String,
    pub state: JobState,
    pub cached: bool,
    pub epochs: usize,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub error: Option<String>,
}

/// One event of `GET /v1/jobs/{id}/events` (Server-Sent Events; the SSE event name is the
/// `type`). A stream replays what happened so far, then follows the job to its end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TrainEvent {
    Epoch(EpochEvent),
    Done {
        model: String,
        stop_reason: StopReason,
        epochs: usize,
        cached: bool,
        /// The solver's own time (ms), apart from loading and writing; none for a cached model.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        solve_ms: Option<f64>,
    },
    Failed {
        error: String,
    },
    Cancelled,
}

impl TrainEvent {
    pub fn name(&self) -> &'static str {
        match self {
            TrainEvent::Epoch(_) => "epoch",
            TrainEvent::Done { .. } => "done",
            TrainEvent::Failed { .. } => "failed",
            TrainEvent::Cancelled => "cancelled",
        }
    }
    pub fn is_final(&self) -> bool {
        !matches!(self, TrainEvent::Epoch(_))
    }
}

// ---- evaluate ----

/// `POST /v1/evaluations`: score a model on the test split, register it, promote by the rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    pub name: String,
    pub model: String,
    pub split: String,
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// The new version becomes stable when its test log loss is at most the stable version's
    /// plus this; otherwise it becomes the candidate.
    #[serde(default = "default_promote_tolerance")]
    pub promote_tolerance: f64,
    /// Register the version and decide, but set no alias: the caller keeps its record of the
    /// run first, then applies the decision ([`Evaluation::alias`] through
    /// `POST /v1/models/{name}/aliases/{alias}`), so a failure in between leaves no version
    /// promoted or served that the run has no record of.
    #[serde(default)]
    pub decide_only: bool,
}

/// `POST /v1/models/{name}/aliases/{alias}`: point `stable` or `candidate` at a version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AliasRequest {
    pub version: u32,
}

fn yes() -> bool {
    true
}

pub fn default_threshold() -> f64 {
    0.5
}
pub fn default_promote_tolerance() -> f64 {
    0.01
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionMetrics {
    pub version: u32,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    pub name: String,
    pub version: u32,
    pub new_version: bool,
    pub metrics: Metrics,
    pub roc: Vec<RocPoint>,
    #[serde(default)]
    pub precision_recall: Vec<PrPoint>,
    /// The reliability diagram of the test split ([`logitflow_core::metrics::CALIBRATION_BINS`] bins).
    #[serde(default)]
    pub calibration: Vec<CalibrationBin>,
    /// The version that was stable before, with its metrics.
    #[serde(default)]
    pub previous: Option<VersionMetrics>,
    pub promoted: bool,
    /// The rule's decision in words.
    pub decision: String,
    /// The alias the decision gives the version (`stable`, `candidate`, or none when it is
    /// stable already).
    #[serde(default)]
    pub alias: Option<String>,
    /// Whether the alias is set already (false when asked to decide only).
    #[serde(default = "yes")]
    pub applied: bool,
    pub report: String,
    pub intercept: f64,
    /// In the model's term order.
    pub coefficients: Coefficients,
    /// For a one-feature model: up to 200 test rows as (value, label), to plot the fitted
    /// curve over the data.
    #[serde(default)]
    pub sample: Vec<(f64, f64)>,
    /// The input features, in order.
    #[serde(default)]
    pub feature_names: Vec<String>,
    /// The coefficient table, separation, optimality.
    #[serde(flatten)]
    pub fit: FitReport,
    /// Class 0 and class 1 by name.
    #[serde(default)]
    pub classes: Option<Classes>,
    /// Rows that trained, that were held out for validation, and that tested.
    #[serde(default)]
    pub rows: RowCounts,
    /// A K-class model's estimates and tables per class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multinomial: Option<ClassModel>,
    /// A K-class model's curves, one class against the rest each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_curves: Vec<ClassCurves>,
    /// The test rows left out of the metrics, and why: a level training never saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unscored: Option<String>,
}

/// One class's curves against the rest: its ROC, precision-recall and reliability diagram.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassCurves {
    pub class: String,
    pub roc: Vec<RocPoint>,
    pub precision_recall: Vec<PrPoint>,
    pub calibration: Vec<CalibrationBin>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RowCounts {
    pub train: usize,
    pub validation: usize,
    pub test: usize,
}

/// `POST /v1/models/{name}/promote`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    /// The version to make stable; the candidate when absent.
    #[serde(default)]
    pub version: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelVersions {
    pub name: String,
    #[serde(flatten)]
    pub entry: ModelEntry,
}

// ---- serve ----

/// One input tensor of the Open Inference Protocol v2.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InferInput {
    pub name: String,
    pub shape: Vec<usize>,
    pub datatype: Datatype,
    /// Row-major; in JSON flat or nested. Empty when the tensor is sent as binary data after
    /// the JSON (`parameters.binary_data_size`, the binary tensor data extension).
    #[serde(default)]
    pub data: TensorData,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
}

/// The `parameters` of a request, a tensor or an output, as far as serve reads them (the binary
/// tensor data extension's); any other key a client sends is accepted and ignored.
///
/// Typed rather than a `serde_json::Value`: a map of values costs an allocation per key and
/// value on every request, and parsing into it was a third of what binary tensors cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Parameters {
    /// On a tensor: the length of its values after the JSON header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_data_size: Option<u64>,
    /// On a requested output: whether to send it as binary data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_data: Option<bool>,
    /// On a request: whether to send every output as binary data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_data_output: Option<bool>,
    /// On a requested output: Triton's classification extension, the k most probable classes
    /// as `"score:index:label"` strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<u64>,
}

/// An output a request asks for, by name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestedOutput {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
}

/// `POST /v2/models/{name}[/versions/{version}]/infer`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InferRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    pub inputs: Vec<InferInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<RequestedOutput>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InferOutput {
    pub name: String,
    pub shape: Vec<usize>,
    pub datatype: Datatype,
    /// Empty when the output is sent as binary data (then `parameters.binary_data_size`).
    #[serde(default, skip_serializing_if = "OutputData::is_empty")]
    pub data: OutputData,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
}

/// An output's values: numbers (FP64) or text (BYTES).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OutputData {
    Numbers(Vec<f64>),
    Texts(Vec<String>),
}

impl Default for OutputData {
    fn default() -> Self {
        OutputData::Numbers(Vec::new())
    }
}

impl OutputData {
    pub fn is_empty(&self) -> bool {
        match self {
            OutputData::Numbers(v) => v.is_empty(),
            OutputData::Texts(v) => v.is_empty(),
        }
    }
    /// The numbers of an FP64 output; none for text.
    pub fn numbers(&self) -> &[f64] {
        match self {
            OutputData::Numbers(v) => v,
            OutputData::Texts(_) => &[],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub outputs: Vec<InferOutput>,
}

impl InferRequest {
    /// A request of one row as one tensor per feature, named after it: `BYTES` for text,
    /// `FP64` for numbers (the convention Triton users know).
    pub fn named(feature_names: &[String], row: &[Value]) -> InferRequest {
        let inputs = feature_names
            .iter()
            .zip(row)
            .map(|(name, value)| {
                let (datatype, data) = match value {
                    Value::Number(v) => (Datatype::Fp64, TensorData::Fp64(vec![*v])),
                    Value::Text(t) => (Datatype::Bytes, TensorData::Bytes(vec![t.clone()])),
                };
                InferInput { name: name.clone(), shape: vec![1], datatype, data, parameters: None }
            })
            .collect();
        InferRequest { id: None, parameters: None, inputs, outputs: None }
    }

    /// A request of `rows` (one value per feature each) as one FP64 tensor.
    pub fn rows(rows: &[Vec<f64>]) -> InferRequest {
        let width = rows.first().map_or(0, Vec::len);
        InferRequest::matrix(rows.len(), width, rows.iter().flatten().copied().collect())
    }

    /// A request of `rows` × `width` values, row after row, as one FP64 tensor.
    pub fn matrix(rows: usize, width: usize, data: Vec<f64>) -> InferRequest {
        InferRequest {
            id: None,
            parameters: None,
            inputs: vec![InferInput {
                name: "input-0".into(),
                shape: vec![rows, width],
                datatype: Datatype::Fp64,
                data: TensorData::Fp64(data),
                parameters: None,
            }],
            outputs: None,
        }
    }
}

/// `POST /v1/predict`: the human route. Either `inputs` (rows of values in feature order) or
/// `features` (one row, by name). Values are numbers, or text for categorical features.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    #[serde(default)]
    pub model: Option<String>,
    /// `stable` (default), `candidate`, or a version number.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub inputs: Option<Vec<Vec<Value>>>,
    #[serde(default)]
    pub features: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PredictResponse {
    pub model_name: String,
    pub model_version: String,
    /// Each row's probability of the positive class (a binary model; empty for K classes).
    pub probabilities: Vec<f64>,
    /// A K-class model's answer per row: the most probable class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// A K-class model's answer per row: each class's probability, in the classes' order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<Vec<ClassProbability>>,
}

/// One class's probability, by name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassProbability {
    pub class: String,
    pub probability: f64,
}

/// `GET /v2/models/{name}`: model metadata, with logitflow's additions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
    /// Alias → version currently loaded.
    pub aliases: BTreeMap<String, String>,
    pub feature_names: Vec<String>,
    pub intercept: f64,
    /// In the model's term order.
    pub coefficients: Coefficients,
    /// Class 0 and class 1 by name.
    #[serde(default)]
    pub classes: Option<Classes>,
    /// Versions that could not be loaded (a damaged artifact), with why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unavailable: BTreeMap<String, String>,
    /// The input that is the model's offset (added to the logit with coefficient 1), if any:
    /// every request must give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// A K-class model's intercept and coefficients per class, in the data's units.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_estimates: Vec<ClassEstimates>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    /// For a categorical input (BYTES): the levels it accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<Vec<String>>,
}

/// `POST /v2/repository/models/{name}/load`: what is now loaded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadInfo {
    pub name: String,
    /// Alias → version.
    pub aliases: BTreeMap<String, u32>,
    /// False when the same versions and aliases were already loaded.
    pub changed: bool,
}

// ---- advisor ----

/// `POST /v1/advice`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdviceRequest {
    #[serde(default)]
    pub model: Option<String>,
    /// One value per feature: numbers, or text for categorical features.
    pub inputs: Vec<Value>,
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// The probability to reach; the answer says what value of `feature` gets there.
    #[serde(default)]
    pub target: Option<f64>,
    /// The numeric feature to solve for (default: the first numeric feature).
    #[serde(default)]
    pub feature: Option<String>,
    /// For a K-class model: the class asked about (default: the most probable); the answer
    /// gives its probability and the value of `feature` that makes it the most probable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Advice {
    pub model_name: String,
    pub model_version: String,
    pub probability: f64,
    pub threshold: f64,
    /// `probability ≥ threshold`.
    pub positive: bool,
    /// The decision in the data's words: the positive class's name when `positive`; for a
    /// K-class model, the most probable class.
    #[serde(default)]
    pub decision: String,
    #[serde(default)]
    pub needed: Option<Needed>,
    /// For a K-class model: the class `probability` is of (`positive`: it is the most probable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Needed {
    pub feature: String,
    /// The probability reached at `value`: the target asked; for a K-class model, the class's
    /// probability where it becomes the most probable (or at the value given, if it is already).
    pub target: f64,
    pub value: f64,
}

/// An error body as every service answers it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
    /// For an internal error: the id its detail is logged under in the service's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// ingest's answer to `PUT /v1/uploads`: where the uploaded CSV is kept, for a `CsvSource`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UploadInfo {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}
