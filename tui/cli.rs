//! The command line: `logitflow [COMMAND]`. With no command, the dashboard opens.

use clap::{Args, Parser, Subcommand};
use logitflow_core::clean::{MissingPolicy, TextMissing};
use logitflow_core::logistic::{ClassWeight, Covariance, Penalty, Solver};
use logitflow_core::scale::{Scaling, Value};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "logitflow",
    version,
    about = "A logistic-regression pipeline as microservices, run from one terminal"
)]
pub struct Cli {
    /// Home directory: artifact store, model registry, runs.
    #[arg(long, env = "LOGITFLOW_HOME", global = true)]
    pub home: Option<PathBuf>,
    /// Where the artifacts and the model registry are, if not in the home: file:///path, or
    /// s3://bucket/prefix (with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    /// AWS_ENDPOINT_URL). The services the console starts use it too.
    #[arg(long, env = "LOGITFLOW_STORE", global = true)]
    pub store: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Dashboard options (when no command is given).
    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline headless through the services and print a report.
    Run(Box<RunArgs>),
    /// The probability from the promoted model, for one value per feature.
    Predict(PredictArgs),
    /// Score a CSV file through the batch service: its rows again, with a `probability` column.
    Score(ScoreArgs),
    /// The run history.
    Runs(RunsArgs),
    /// Remove the artifacts that no registered version and no recently used cached step
    /// reaches (`--dry-run` lists them and their size first).
    Gc(GcArgs),
    /// Export a run's loss, ROC and precision-recall curves and reliability diagram as PNG, SVG and CSV.
    Export(ExportArgs),
    /// Two runs side by side: parameters, metrics and coefficients, and their loss curves in one plot.
    Compare(CompareArgs),
    /// Run one service alone, in the foreground.
    Service(ServiceCommand),
    /// Write rows drawn from a logistic model as CSV (this made assets/admissions.csv).
    Synth(SynthArgs),
}

/// What data to use and how to train: shared by `run` and the dashboard.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The file to train on: CSV (plain, .gz or .zst) or Parquet, a path or an object of a
    /// bucket, s3://bucket/key, read where it lies with the AWS_* variables' credentials
    /// (default: the bundled admissions data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The label column (default: the last column).
    #[arg(long)]
    pub label: Option<String>,
    /// Feature columns, comma-separated (default: all but the label).
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Feature columns to read as categories even though they hold numbers (a rank 1–4),
    /// comma-separated. Columns holding text are categorical anyway.
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// The label value that is the positive class (default: for a text label, the later of its
    /// two values in sorted order, as R's glm takes it).
    #[arg(long)]
    pub positive: Option<String>,
    /// Rename the two classes in reports and answers: POSITIVE,NEGATIVE.
    #[arg(long, value_delimiter = ',', num_args = 1)]
    pub labels: Option<Vec<String>>,
    /// Cells that mean "missing" besides an empty one, comma-separated
    /// (default: NA,N/A,NaN,nan,null,NULL,None,#N/A).
    #[arg(long, value_delimiter = ',')]
    pub na_values: Option<Vec<String>>,
    /// The CSV delimiter (default: ',' unless the header shows ';' or tabs).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// The numbers' decimal mark: '.' (default) or ',' (as European spreadsheets write
    /// `729,53`, with ';' between fields).
    #[arg(long, value_parser = [".", ","])]
    pub decimal: Option<String>,
    /// A separate CSV to test on; the whole --data file then trains.
    #[arg(long)]
    pub test_data: Option<PathBuf>,
    /// The part of --data held out for testing.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Seeds the split, the shuffles and the validation hold-out.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// What to do with missing cells (empty or NA): refuse the file, drop the row, or impute
    /// (numbers: mean or median; text: see --missing-text).
    #[arg(long, value_enum, default_value_t = MissingArg::Error)]
    pub missing: MissingArg,
    /// What imputation puts in a missing text cell: the most frequent level, or a level of its
    /// own, "(missing)".
    #[arg(long, value_enum, default_value_t = MissingTextArg::MostFrequent)]
    pub missing_text: MissingTextArg,
    /// Drop exact duplicate rows.
    #[arg(long)]
    pub drop_duplicates: bool,
    /// Feature scaling, fitted on the training split.
    #[arg(long, value_enum, default_value_t = ScalingArg::Standard)]
    pub scaling: ScalingArg,
    /// The solver: auto picks newton, or lbfgs for 200 terms or more, and the report says
    /// which; sgd is the seed's per-sample rule, saga the same rule made to converge.
    #[arg(long, value_enum, default_value_t = SolverArg::Auto)]
    pub solver: SolverArg,
    /// Learning rate (sgd, minibatch, batch).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Epoch limit (newton: iteration limit).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Rows per minibatch.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// L2 strength on the weights.
    #[arg(long, allow_negative_numbers = true)]
    pub l2: Option<f64>,
    /// Epochs without improvement before stopping early; 0 never stops early.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Stop when the gradient norm (or the loss's improvement) falls below this.
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// The part of the training rows held out to watch the validation loss (sgd and
    /// minibatch: default 0.1; the others: default 0, every training row fits). 0 for
    /// none: early stopping then watches the training loss.
    #[arg(long)]
    pub validation_fraction: Option<f64>,
    /// Weigh the classes in the loss: none, or balanced (n / (2·n_class), as scikit-learn).
    #[arg(long, value_enum, default_value_t = ClassWeightArg::None)]
    pub class_weight: ClassWeightArg,
    /// The covariance the standard errors come from: the inverse Hessian (nonrobust),
    /// White's heteroscedasticity-robust sandwich (hc0; hc1 scales it by n/(n − k)), or the
    /// sandwich of each cluster's summed score (cluster:COLUMN, a column that is not a feature;
    /// statsmodels' small-sample correction).
    #[arg(long, default_value = "nonrobust", value_parser = CovarianceArg::parse)]
    pub cov: CovarianceArg,
    /// A column of frequency weights (not a feature): each row counts that many times, so the
    /// fit equals the file with each row repeated; 0 drops the row.
    #[arg(long)]
    pub weights: Option<String>,
    /// A column added to each row's logit with coefficient 1 (a log exposure, a known part):
    /// not a coefficient of the fit, but an input the served model requires.
    #[arg(long)]
    pub offset: Option<String>,
    /// The penalty on the coefficients, with glmnet's objective: mean log loss +
    /// λ·(α‖β‖₁ + (1−α)/2·‖β‖²) on the scaled terms. l1 and elasticnet select terms (some
    /// coefficients exactly zero), fitted by coordinate descent along a path of λ.
    /// `--l2 v` is `--penalty l2 --lambda v`.
    #[arg(long, value_enum, default_value_t = PenaltyArg::None)]
    pub penalty: PenaltyArg,
    /// α, the L1 part of an elasticnet penalty, between 0 and 1.
    #[arg(long, allow_negative_numbers = true)]
    pub l1_ratio: Option<f64>,
    /// λ, the penalty's strength (or --cv to choose it).
    #[arg(long, allow_negative_numbers = true)]
    pub lambda: Option<f64>,
    /// Choose λ by K-fold cross-validation along glmnet's path (stratified folds from --seed).
    #[arg(long, allow_negative_numbers = true)]
    pub cv: Option<usize>,
    /// A column that gives each row's fold for --cv (K distinct values), as glmnet's foldid:
    /// not a feature.
    #[arg(long, requires = "cv")]
    pub folds: Option<String>,
    /// The λ cross-validation chooses: the lowest mean deviance (min), or the largest λ within
    /// one standard error of it (1se).
    #[arg(long, value_parser = ["min", "1se"], default_value = "1se")]
    pub select: String,
    /// For a label of three or more classes: the class the estimates are against (default: the
    /// first in sorted order).
    #[arg(long)]
    pub reference: Option<String>,
    /// The model's name in the registry (default: the data file's stem).
    #[arg(long)]
    pub model: Option<String>,
    /// Decision threshold for the metrics.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MissingArg {
    Error,
    Drop,
    ImputeMean,
    ImputeMedian,
}

impl From<MissingArg> for MissingPolicy {
    fn from(m: MissingArg) -> Self {
        match m {
            MissingArg::Error => MissingPolicy::Error,
            MissingArg::Drop => MissingPolicy::Drop,
            MissingArg::ImputeMean => MissingPolicy::ImputeMean,
            MissingArg::ImputeMedian => MissingPolicy::ImputeMedian,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MissingTextArg {
    MostFrequent,
    Level,
}

impl From<MissingTextArg> for TextMissing {
    fn from(m: MissingTextArg) -> Self {
        match m {
            MissingTextArg::MostFrequent => TextMissing::MostFrequent,
            MissingTextArg::Level => TextMissing::Level,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassWeightArg {
    None,
    Balanced,
}

impl From<ClassWeightArg> for ClassWeight {
    fn from(w: ClassWeightArg) -> Self {
        match w {
            ClassWeightArg::None => ClassWeight::None,
            ClassWeightArg::Balanced => ClassWeight::Balanced,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScalingArg {
    Standard,
    Minmax,
    None,
}

impl From<ScalingArg> for Scaling {
    fn from(s: ScalingArg) -> Self {
        match s {
            ScalingArg::Standard => Scaling::Standard,
            ScalingArg::Minmax => Scaling::MinMax,
            ScalingArg::None => Scaling::None,
        }
    }
}

/// `--cov`: a covariance, and for `cluster:COLUMN` the cluster column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CovarianceArg {
    pub kind: Covariance,
    pub cluster: Option<String>,
}

impl CovarianceArg {
    pub const NONROBUST: CovarianceArg =
        CovarianceArg { kind: Covariance::Nonrobust, cluster: None };

    fn parse(text: &str) -> Result<CovarianceArg, String> {
        if let Some(column) = text.strip_prefix("cluster:") {
            if column.trim().is_empty() {
                return Err("cluster: needs the cluster column's name, as in cluster:island".into());
            }
            return Ok(CovarianceArg {
                kind: Covariance::Cluster,
                cluster: Some(column.trim().to_string()),
            });
        }
        let kind = [Covariance::Nonrobust, Covariance::Hc0, Covariance::Hc1]
            .into_iter()
            .find(|c| c.name() == text)
            .ok_or_else(|| {
                format!("{text:?} is not a covariance: nonrobust, hc0, hc1 or cluster:COLUMN")
            })?;
        Ok(CovarianceArg { kind, cluster: None })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SolverArg {
    Auto,
    Sgd,
    Minibatch,
    Batch,
    Newton,
    Lbfgs,
    Saga,
    Cd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PenaltyArg {
    None,
    L2,
    L1,
    Elasticnet,
}

impl From<PenaltyArg> for Penalty {
    fn from(p: PenaltyArg) -> Self {
        match p {
            PenaltyArg::None => Penalty::None,
            PenaltyArg::L2 => Penalty::L2,
            PenaltyArg::L1 => Penalty::L1,
            PenaltyArg::Elasticnet => Penalty::Elasticnet,
        }
    }
}

impl From<SolverArg> for Solver {
    fn from(s: SolverArg) -> Self {
        match s {
            SolverArg::Auto => Solver::Auto,
            SolverArg::Sgd => Solver::Sgd,
            SolverArg::Minibatch => Solver::Minibatch,
            SolverArg::Batch => Solver::Batch,
            SolverArg::Newton => Solver::Newton,
            SolverArg::Lbfgs => Solver::Lbfgs,
            SolverArg::Saga => Solver::Saga,
            SolverArg::Cd => Solver::Cd,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Ask the served model for these inputs: one value per feature in the data's column
    /// order, comma-separated (text for categorical features), e.g. `--predict Yes,1500,40000`.
    #[arg(long, value_parser = parse_row, allow_hyphen_values = true)]
    pub predict: Vec<Vec<Value>>,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Drive services someone else started, named by URL in this TOML file (`[services]`
    /// ingest = "http://…", …; the token from LOGITFLOW_TOKEN), instead of starting them.
    /// The data is sent to ingest.
    #[arg(long)]
    pub connect: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Where `e` writes exports.
    #[arg(long, default_value = "exports")]
    pub export_dir: PathBuf,
    /// Attach to services someone else started, named by URL in this TOML file (as for
    /// `run --connect`), instead of starting them: the panel shows their health, uptime,
    /// memory and logs as they report them.
    #[arg(long)]
    pub connect: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// One value per feature, in the model's feature order (text for categorical features).
    #[arg(allow_negative_numbers = true, value_parser = parse_value)]
    pub values: Vec<Value>,
    /// A feature's value by name, instead of positional values: `--feature student=Yes`.
    #[arg(long = "feature", value_parser = parse_feature)]
    pub features: Vec<(String, Value)>,
    /// The model (default: the only one, or `admissions`).
    #[arg(long)]
    pub model: Option<String>,
    /// `stable` (default), `candidate` or a version number.
    #[arg(long, default_value = "stable")]
    pub version: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// The CSV to score: its header names the model's features; other columns pass through.
    pub file: PathBuf,
    /// Where to write the scored CSV; `-` for standard output. A file is written whole or not
    /// at all.
    #[arg(long, short)]
    pub out: PathBuf,
    /// The model (default: the only one, or `admissions`).
    #[arg(long)]
    pub model: Option<String>,
    /// `stable` (default), `candidate` or a version number.
    #[arg(long, default_value = "stable")]
    pub version: String,
}

#[derive(Debug, Clone, Args)]
pub struct RunsArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    /// List what would be removed, and its size; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Cached steps used within this many days keep what they made.
    #[arg(long, default_value_t = 7.0)]
    pub keep_days: f64,
    /// Artifacts younger than this many hours are kept whatever reaches them (a run writing
    /// while the collection runs has not registered its model yet).
    #[arg(long, default_value_t = 1.0)]
    pub grace_hours: f64,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// A run id (or a prefix of exactly one), as `logitflow runs` lists them.
    pub a: String,
    /// The run to compare it with.
    pub b: String,
    /// Also write both loss curves in one plot (`<a>-vs-<b>-loss.{csv,png,svg}`) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The run to export (default: the latest).
    #[arg(long)]
    pub run: Option<String>,
    #[arg(long, default_value = "exports")]
    pub out: PathBuf,
    /// Plot the loss on a log scale.
    #[arg(long)]
    pub log: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ServiceCommand {
    /// ingest, preprocess, features, train, evaluate, serve, advisor or batch.
    pub name: crate::supervisor::ServiceName,
    /// Where to listen; loopback only unless told otherwise.
    #[arg(long, env = "LOGITFLOW_LISTEN", default_value = logitflow_kit::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// serve only: also answer gRPC (`inference.GRPCInferenceService`) on this address.
    #[arg(long, env = "LOGITFLOW_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "LOGITFLOW_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "LOGITFLOW_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SynthArgs {
    #[arg(long)]
    pub rows: usize,
    #[arg(long, allow_hyphen_values = true)]
    pub intercept: f64,
    /// One coefficient per feature (repeat the flag).
    #[arg(long = "coef", required = true, allow_hyphen_values = true)]
    pub coefficients: Vec<f64>,
    /// One LOW:HIGH range per feature (repeat the flag).
    #[arg(long = "range", required = true, value_parser = parse_range, allow_hyphen_values = true)]
    pub ranges: Vec<(f64, f64)>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The services' fields an error names (in backticks, as core and the services write them)
/// and the flag that sets each here.
const FIELD_FLAGS: [(&str, &str); 12] = [
    ("`categorical`", "--categorical"),
    ("`na_values`", "--na-values"),
    ("`positive`", "--positive"),
    ("`features`", "--features"),
    ("`decimal`", "--decimal"),
    ("`delimiter`", "--delimiter"),
    ("`class_labels`", "--labels"),
    ("`weights`", "--weights"),
    ("`offset`", "--offset"),
    ("`cluster`", "--cov cluster"),
    ("`folds`", "--folds"),
    ("`solver`", "--solver"),
];

/// An error or note from core or a service as the console shows it: each field it names, as
/// the flag that sets it (`weights` w → --weights w).
pub fn with_flag_hints(message: &str) -> String {
    let mut text = message.to_string();
    for (field, flag) in FIELD_FLAGS {
        if text.contains(field) {
            text = text.replace(field, flag);
        }
    }
    text
}

fn parse_finite(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() { Ok(v) } else { Err(format!("{s:?} is not a finite number")) }
}

/// One feature value: a finite number, or text (a level of a categorical feature). A
/// non-finite number (`nan`, `inf`) is refused rather than taken as text.
pub fn parse_value(s: &str) -> Result<Value, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("a value is empty".into());
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Value::Number(v)),
        Ok(_) => Err(format!("{s:?} is not a finite number")),
        Err(_) => Ok(Value::Text(s.to_string())),
    }
}

/// `80`, `80,3.5` or `Yes,1500`: one row of feature values.
pub fn parse_row(s: &str) -> Result<Vec<Value>, String> {
    s.split(',').map(parse_value).collect()
}

fn parse_feature(s: &str) -> Result<(String, Value), String> {
    let (name, value) = s.split_once('=').ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    Ok((name.trim().to_string(), parse_value(value)?))
}

fn parse_range(s: &str) -> Result<(f64, f64), String> {
    let (lo, hi) = s.split_once(':').ok_or_else(|| format!("{s:?} is not LOW:HIGH"))?;
    let (lo, hi) = (parse_finite(lo)?, parse_finite(hi)?);
    if lo < hi { Ok((lo, hi)) } else { Err(format!("{s:?}: LOW must be below HIGH")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_names_fields_and_the_console_shows_their_flags() {
        use logitflow_core::table::{CsvOptions, RawTable};
        let options = CsvOptions { positive: Some("maybe".into()), ..CsvOptions::default() };
        let e = RawTable::from_csv("x,y\n1,yes\n2,no\n".as_bytes(), &options)
            .map(drop)
            .expect_err("no such class");
        let said = e.to_string();
        assert!(said.starts_with("`positive` \"maybe\" is not a value"), "{said}");
        assert!(with_flag_hints(&said).starts_with("--positive \"maybe\" is not a value"));
        assert_eq!(
            with_flag_hints("`cluster`:island names the label; `weights` and `offset` clash"),
            "--cov cluster:island names the label; --weights and --offset clash"
        );
    }

    #[test]
    fn parses_rows_ranges_and_features() {
        assert_eq!(parse_row("80"), Ok(vec![Value::Number(80.0)]));
        assert_eq!(parse_row("1,-2.5"), Ok(vec![Value::Number(1.0), Value::Number(-2.5)]));
        assert!(parse_row("nan").is_err());
        assert_eq!(
            parse_row("Yes, 1500"),
            Ok(vec![Value::Text("Yes".into()), Value::Number(1500.0)])
        );
        assert!(parse_row("1,,2").is_err());
        assert_eq!(parse_range("0:100"), Ok((0.0, 100.0)));
        assert!(parse_range("5:1").is_err());
        assert_eq!(parse_feature("score=80"), Ok(("score".into(), Value::Number(80.0))));
        assert_eq!(parse_feature("student=Yes"), Ok(("student".into(), Value::Text("Yes".into()))));
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
