//! The headless commands: `run`, `predict`, `runs`, `export`, `service`, `synth`.

use crate::cli::{
    DataArgs, ExportArgs, GcArgs, PredictArgs, RunArgs, RunsArgs, ServiceCommand, SynthArgs,
};
pub use crate::home::{Home, resolve_home};
use crate::pipeline::is_object;
use crate::pipeline::{self, Clients, DataSummary, PipelineEvent, PipelineRequest, RunReport};
use crate::services::Services;
use crate::supervisor::{ServiceName, Supervisor};
use anyhow::{Context, bail};
use logitflow_core::clean::CleanOptions;
use logitflow_core::inference::{FitStatistics, TermStatistics};
use logitflow_core::logistic::TrainParams;
use logitflow_core::logistic::multinomial::{ClassModel, Coding};
use logitflow_core::metrics::{Metrics, MulticlassMetrics};
use logitflow_core::roles::RoleColumns;
use logitflow_core::scale::Value;
use logitflow_core::table::{Classes, CsvOptions};
use logitflow_kit::wire::{PredictRequest, PredictResponse};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prints a line to stdout. A reader that went away (`logitflow runs | head`) ends the command
/// quietly, as other command-line tools end, instead of `println!`'s panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        match writeln!(std::io::stdout().lock(), $($arg)*) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }};
}

/// The bundled admissions data, compiled in so the binary works from any directory.
const BUNDLED_DATA: &str = include_str!("../assets/admissions.csv");
/// How long services get to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Checks that files can be created in the home, so that a read-only or full disk is reported
/// at once and plainly rather than as services failing to start.
pub fn check_home_writable(home: &Path) -> anyhow::Result<()> {
    let tmp = home.join("tmp");
    std::fs::create_dir_all(&tmp).and_then(|()| tempfile::NamedTempFile::new_in(&tmp).map(drop)).with_context(|| {
        format!("the home directory {} is not writable; logitflow keeps its store, registry and runs there", home.display())
    })
}

/// Checks that the model registry reads (recovering it from its journal if need be), so a
/// damaged one is named at once, before any service starts, rather than after serve's
/// readiness wait.
pub fn check_registry(home: &Home) -> anyhow::Result<()> {
    home.registry()?
        .load()
        .map(drop)
        .map_err(|e| anyhow::anyhow!("the model registry cannot be read: {e}"))
}

/// Writes the bundled data to `<home>/datasets/admissions.csv` (if it is not there already).
pub fn bundled_data(home: &Path) -> anyhow::Result<PathBuf> {
    let dir = home.join("datasets");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("admissions.csv");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(BUNDLED_DATA) {
        logitflow_store::home::write_atomic(&path, BUNDLED_DATA.as_bytes())?;
    }
    Ok(path)
}

/// A registry name from a file stem: letters, digits, '-', '_' and '.' kept, the rest '-'.
fn model_name_from(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' })
        .take(64)
        .collect();
    if name.is_empty() || name == "." || name == ".." { "model".into() } else { name }
}

/// Checks the flags and the files before any service starts, so mistakes cost nothing.
pub fn pipeline_request(
    home: &Path,
    args: &DataArgs,
    predict: Vec<Vec<Value>>,
) -> anyhow::Result<PipelineRequest> {
    let data = match &args.data {
        // An object of a bucket, which ingest reads where it lies.
        Some(path) if is_object(path) => path.clone(),
        Some(path) => path
            .canonicalize()
            .with_context(|| format!("--data {}: cannot read the file", path.display()))?,
        None => bundled_data(home)?,
    };
    if !is_object(&data) && !data.is_file() {
        bail!("--data {}: not a file", data.display());
    }
    let test_data = match &args.test_data {
        Some(path) if is_object(path) => Some(path.clone()),
        Some(path) => Some(
            path.canonicalize()
                .with_context(|| format!("--test-data {}: cannot read the file", path.display()))?,
        ),
        None => None,
    };
    if !(args.test_fraction > 0.0 && args.test_fraction < 1.0) && test_data.is_none() {
        bail!("--test-fraction must be above 0 and below 1, got {}", args.test_fraction);
    }
    if !(0.0..=1.0).contains(&args.threshold) {
        bail!("--threshold must be between 0 and 1, got {}", args.threshold);
    }
    let defaults = TrainParams::default();
    let params = TrainParams {
        solver: args.solver.into(),
        learning_rate: args.lr.unwrap_or(defaults.learning_rate),
        epochs: args.epochs.unwrap_or(defaults.epochs),
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        l2: args.l2.unwrap_or(defaults.l2),
        seed: args.seed,
        patience: args.patience.unwrap_or(defaults.patience),
        tolerance: args.tolerance.unwrap_or(defaults.tolerance),
        validation_fraction: args.validation_fraction,
        class_weight: args.class_weight.into(),
        covariance: args.cov.kind,
        penalty: args.penalty.into(),
        l1_ratio: args.l1_ratio,
        lambda: args.lambda,
        cv: args.cv,
        select: args.select.parse().map_err(|e: String| anyhow::anyhow!("--select: {e}"))?,
        reference: args.reference.clone(),
        ..defaults
    };
    if let Some(labels) = &args.labels
        && labels.len() != 2
    {
        bail!("--labels takes two names, POSITIVE,NEGATIVE; got {}", labels.join(","));
    }
    if let Some(d) = &args.delimiter {
        logitflow_core::table::delimiter_byte(d)
            .map_err(|e| anyhow::anyhow!("--delimiter: {e}"))?;
    }
    params.validate().map_err(|e| anyhow::anyhow!("invalid training parameters: {e}"))?;
    let model_name = args.model.clone().unwrap_or_else(|| model_name_from(&data));
    logitflow_store::registry::check_name(&model_name)
        .map_err(|e| anyhow::anyhow!("--model: {e}"))?;
    Ok(PipelineRequest {
        data,
        read: CsvOptions {
            label: args.label.clone(),
            features: args.features.clone(),
            categorical: args.categorical.clone(),
            positive: args.positive.clone(),
            na_values: args.na_values.clone(),
            delimiter: args.delimiter.clone(),
            class_labels: args.labels.clone(),
            decimal: args.decimal.clone(),
            roles: RoleColumns {
                weights: args.weights.clone(),
                offset: args.offset.clone(),
                cluster: args.cov.cluster.clone(),
                folds: args.folds.clone(),
            },
        },
        test_data,
        test_fraction: args.test_fraction,
        split_seed: args.seed,
        clean: CleanOptions {
            missing: args.missing.into(),
            bounds: Vec::new(),
            drop_duplicates: args.drop_duplicates,
            text_missing: args.missing_text.into(),
        },
        scaling: args.scaling.into(),
        params,
        model_name,
        threshold: args.threshold,
        predict,
        apply_decision: true,
    })
}

/// The directories the ingest service may read: where the data files are.
pub fn allowed_roots(home: &Path, request: &PipelineRequest) -> Vec<PathBuf> {
    let mut roots = vec![home.join("datasets")];
    let files = std::iter::once(&request.data).chain(request.test_data.as_ref());
    for file in files.filter(|f| !is_object(f)) {
        if let Some(parent) = file.parent() {
            roots.push(parent.to_path_buf());
        }
    }
    roots
}

/// Starts every service for a run of `request`: ingest may read where its data files are.
pub fn start_services(home: &Home, request: &PipelineRequest) -> anyhow::Result<Supervisor> {
    let config = home.supervisor_config(allowed_roots(&home.dir, request))?;
    Ok(Supervisor::start(config, &ServiceName::ALL)?)
}

/// The services a run or the dashboard drives: the ones named in a connection file
/// (`--connect`), attached, or else every service, started here as children.
pub fn services_for(
    home: &Home,
    request: &PipelineRequest,
    connection: Option<&Path>,
) -> anyhow::Result<Services> {
    Ok(match connection {
        Some(file) => Services::Remote(crate::connect::Remote::attach(
            crate::connect::Connection::load(file)?,
            logitflow_kit::token_from_env(),
        )),
        None => Services::Children(start_services(home, request)?),
    })
}

/// `logitflow run`.
pub async fn run(home: Home, args: RunArgs) -> anyhow::Result<()> {
    let request = pipeline_request(&home.dir, &args.data, args.predict.clone())?;
    let services = services_for(&home, &request, args.connect.as_deref())?;
    let outcome = tokio::select! {
        outcome = drive(&services, &request, &home, args.connect.as_deref()) => outcome,
        _ = logitflow_kit::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
    };
    services.shutdown().await;
    // The pipeline kept the report in the home before the new version went live.
    let report = outcome?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", render_report(&report).trim_end());
    }
    Ok(())
}

/// Waits for the services (children: until ready; attached: until each answers with the
/// token), then runs the pipeline through them.
async fn drive(
    services: &Services,
    request: &PipelineRequest,
    home: &Home,
    connection: Option<&Path>,
) -> anyhow::Result<RunReport> {
    let clients = match connection {
        Some(file) => {
            let clients = services.clients().with_context(|| {
                format!("{} must name ingest, preprocess, features, train, evaluate and serve under [services]", file.display())
            })?;
            crate::connect::check_reachable(&clients).await?;
            clients
        }
        None => {
            if std::io::stderr().is_terminal() {
                eprintln!("starting {} services…", ServiceName::ALL.len());
            }
            services.wait_ready(READY_TIMEOUT).await.map_err(|e| anyhow::anyhow!(e))?;
            services.clients().context("a service has no address")?
        }
    };
    drive_clients(&clients, request, home).await
}

/// Runs the pipeline through `clients` (the supervisor's children, or services by URL),
/// printing progress when stderr is a terminal.
async fn drive_clients(
    clients: &Clients,
    request: &PipelineRequest,
    home: &Home,
) -> anyhow::Result<RunReport> {
    let progress = std::io::stderr().is_terminal();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let epochs = request.params.epochs;
    let printer = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if progress {
                print_progress(&event, epochs);
            }
        }
    });
    let report = pipeline::run_pipeline(clients, request, tx, Some(home)).await;
    let _ = printer.await;
    Ok(report?)
}

/// Progress on stderr, for a person watching a terminal.
fn print_progress(event: &PipelineEvent, epochs: usize) {
    let mut err = std::io::stderr().lock();
    let _ = match event {
        PipelineEvent::StageStarted(stage) => write!(err, "\r\x1b[K  {:<10} …", stage.as_str()),
        PipelineEvent::Epoch(e) => {
            let filled = (e.epoch * 30 / epochs.max(1)).min(30);
            write!(
                err,
                "\r\x1b[K  {:<10} [{}{}] epoch {}/{} loss {:.4}",
                "train",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                e.epoch,
                epochs,
                e.train_loss
            )
        }
        PipelineEvent::StageFinished { stage, ms, cached, detail } => {
            writeln!(
                err,
                "\r\x1b[K  {:<10} ✓ {:>8.1} ms{}  {detail}",
                stage.as_str(),
                ms,
                if *cached { " (cached)" } else { "" }
            )
        }
        PipelineEvent::StageFailed { stage, error } => {
            writeln!(err, "\r\x1b[K  {:<10} ✗ {error}", stage.as_str())
        }
        _ => Ok(()),
    };
    let _ = err.flush();
}

/// The readable report of a run.
pub fn render_report(r: &RunReport) -> String {
    use std::fmt::Write as _;
    let mut s = format!("run {} on {}\n", r.run_id, r.data);
    s.push_str(&render_stages(r));
    s.push_str(&render_data(&r.data_summary));
    s.push_str(&render_model(r));
    s.push_str(&render_terms(&r.model));
    let m = &r.metrics;
    if let Some(multiclass) = &m.multiclass {
        s.push_str(&render_class_metrics(m, multiclass));
        s.push_str(&render_class_predictions(r));
    } else {
        s.push_str(&render_metrics(m));
        s.push_str(&render_predictions(r));
    }
    let _ = writeln!(s, "\ntrain → served in {:.0} ms", r.train_to_served_ms);
    s
}

/// Each stage's status and time, and whether it was cached.
fn render_stages(r: &RunReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "\nstages");
    for st in &r.stages {
        let _ = writeln!(
            s,
            "  {:<11} {:<4} {:>9.1} ms{}",
            st.name.as_str(),
            st.status,
            st.ms,
            if st.cached { "  cached" } else { "" }
        );
    }
    s
}

/// What the reader and the cleaning made of the data, when there is anything to say.
fn render_data(d: &DataSummary) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if !d.notes.is_empty()
        || !d.dropped.is_empty()
        || !d.imputed.is_empty()
        || !d.categorical.is_empty()
    {
        let _ = writeln!(s, "\ndata");
        for note in &d.notes {
            let _ = writeln!(s, "  note: {note}");
        }
        for (column, levels) in &d.categorical {
            let _ = writeln!(
                s,
                "  {column}: categorical, {} levels ({}); reference {}",
                levels.len(),
                logitflow_core::scale::listed_levels(levels),
                levels[0]
            );
        }
        for (reason, count) in &d.dropped {
            let _ = writeln!(s, "  dropped {count} row(s): {reason}");
        }
        if !d.missing_by_column.is_empty() {
            let by: Vec<String> =
                d.missing_by_column.iter().map(|(c, n)| format!("{c} {n}")).collect();
            let _ = writeln!(s, "  rows missing a value, by column: {}", by.join(", "));
        }
        for (column, count) in &d.imputed {
            let _ = writeln!(s, "  imputed {count} cell(s) of {column}");
        }
        if let Some(t) = &d.test_file {
            let _ = writeln!(
                s,
                "  test file: {} rows read, {} dropped the same way",
                t.rows_in, t.dropped
            );
        }
    }
    s
}

/// The model: its version and decision, its label, rows and solver, how the fit ended.
fn render_model(r: &RunReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nmodel {} v{} ({})",
        r.model.name,
        r.model.version,
        if r.promoted { "promoted to stable" } else { "not promoted" }
    );
    let _ = writeln!(s, "  {}", r.decision);
    match (&r.model.classes, &r.model.multinomial) {
        (Some(c), Some(m)) => {
            let names: Vec<String> = c.names().iter().map(|n| format!("{n:?}")).collect();
            let against = match m.weights.coding {
                Coding::Reference { class } => {
                    format!("estimates against the reference {:?}", c.names()[class])
                }
                Coding::Symmetric => {
                    "one block of estimates per class (symmetric, penalised)".to_string()
                }
            };
            let _ = writeln!(s, "  label: {} classes ({}); {against}", c.count(), names.join(", "));
        }
        (Some(c), None) => {
            let _ = writeln!(
                s,
                "  label: {:?} is the positive class (1), {:?} the negative (0)",
                c.positive, c.negative
            );
        }
        _ => {}
    }
    let _ = writeln!(
        s,
        "  rows: {} trained, {} held out for validation, {} tested",
        r.rows.train, r.rows.validation, r.rows.test
    );
    if let Some(unscored) = &r.unscored {
        let _ = writeln!(s, "  test {unscored}");
    }
    if let Some(choice) = &r.model.fit.solver_choice {
        let _ = writeln!(s, "  {}", choice.describe());
    }
    match &r.model.fit.path {
        Some(path) => {
            let _ = writeln!(
                s,
                "  {} solver, {} λ on the path: {}",
                r.params.solver,
                r.loss_curve.len(),
                r.stop_reason.short()
            );
            for line in path.lines(r.model.fit.cv.as_ref(), r.model.coefficients.len()) {
                let _ = writeln!(s, "  {line}");
            }
        }
        None => {
            let _ = writeln!(
                s,
                "  {} solver, {} epochs: {}",
                r.params.solver,
                r.loss_curve.len(),
                r.stop_reason.describe()
            );
        }
    }
    if let Some(separation) = &r.model.fit.separation {
        let _ = writeln!(s, "  separation: {separation}");
    }
    if let Some(o) = &r.model.fit.optimality {
        let _ = writeln!(s, "  {}", o.describe());
    }
    if let (Some(first), Some(last)) = (r.loss_curve.first(), r.loss_curve.last()) {
        let val = last.val_loss.map_or(String::new(), |v| format!(", validation {v:.4}"));
        let _ = writeln!(s, "  train loss {:.4} → {:.4}{val}", first.train_loss, last.train_loss);
    }
    s
}

/// A two-class model's metrics on the test rows, and the thresholds it suggests.
fn render_metrics(m: &Metrics) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "\nmetrics on {} test rows (threshold {})", m.rows, m.threshold);
    let _ = writeln!(
        s,
        "  accuracy {:.4}  precision {:.4}  recall {:.4}  F1 {:.4}",
        m.accuracy, m.precision, m.recall, m.f1
    );
    let _ = writeln!(
        s,
        "  ROC AUC {:.4}  PR AUC {:.4}  log loss {:.4}  Brier {:.4}",
        m.auc, m.pr_auc, m.log_loss, m.brier
    );
    let c = &m.confusion;
    let _ = writeln!(s, "  confusion: tp {}  fp {}  tn {}  fn {}", c.tp, c.fp, c.tn, c.fn_);
    if let Some(t) = &m.suggested_thresholds {
        let _ = writeln!(
            s,
            "  suggested thresholds: {:.4} (maximum F1 {:.4}), {:.4} (Youden's J {:.4}); in use {}",
            t.max_f1, t.f1, t.youden, t.j, m.threshold
        );
    }
    s
}

/// The served model's answers to the rows the run was asked about.
fn render_predictions(r: &RunReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if !r.predictions.is_empty() {
        let _ = writeln!(s, "\npredictions (served model)");
        let (negative, positive) = match &r.model.classes {
            Some(c) => (c.negative.clone(), c.positive.clone()),
            None => (format!("not {}", label_of(r)), label_of(r)),
        };
        for p in &r.predictions {
            let input: Vec<String> =
                r.feature_names.iter().zip(&p.input).map(|(n, v)| format!("{n} {v}")).collect();
            let decision = if p.probability >= r.metrics.threshold { &positive } else { &negative };
            let _ = writeln!(
                s,
                "  {} → probability {:.4} of {positive} (v{}): {decision}",
                input.join(", "),
                p.probability,
                p.model_version
            );
        }
    }
    s
}

/// A K-class model's metrics: the averages, each class against the rest, and the confusion.
fn render_class_metrics(m: &Metrics, multiclass: &MulticlassMetrics) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "\nmetrics on {} test rows (each row's class: its most probable)", m.rows);
    let _ = writeln!(
        s,
        "  accuracy {:.4}  macro precision {:.4}  recall {:.4}  F1 {:.4}",
        m.accuracy, m.precision, m.recall, m.f1
    );
    let _ = writeln!(
        s,
        "  one-vs-rest ROC AUC {:.4} macro, {:.4} weighted  log loss {:.4}  Brier {:.4}",
        multiclass.auc_macro, multiclass.auc_weighted, m.log_loss, m.brier
    );
    let width =
        multiclass.classes.iter().map(|c| c.class.chars().count()).max().unwrap_or(5).max(5);
    let _ = writeln!(
        s,
        "  {:<width$} {:>7} {:>9} {:>7} {:>7} {:>7}",
        "class", "rows", "precision", "recall", "F1", "AUC"
    );
    for c in &multiclass.classes {
        let _ = writeln!(
            s,
            "  {:<width$} {:>7} {:>9.4} {:>7.4} {:>7.4} {:>7.4}",
            c.class, c.support, c.precision, c.recall, c.f1, c.auc
        );
    }
    let _ = writeln!(s, "  confusion (rows: true class, columns: predicted)");
    let cell = multiclass
        .confusion
        .iter()
        .flatten()
        .map(|n| n.to_string().len())
        .max()
        .unwrap_or(1)
        .max(width.min(12));
    let heads: Vec<String> =
        multiclass.classes.iter().map(|c| format!("{:>cell$}", truncate(&c.class, cell))).collect();
    let _ = writeln!(s, "  {:<width$} {}", "", heads.join(" "));
    for (c, row) in multiclass.classes.iter().zip(&multiclass.confusion) {
        let counts: Vec<String> = row.iter().map(|n| format!("{n:>cell$}")).collect();
        let _ = writeln!(s, "  {:<width$} {}", c.class, counts.join(" "));
    }
    s
}

/// `text` cut to `most` characters.
fn truncate(text: &str, most: usize) -> String {
    text.chars().take(most).collect()
}

/// A K-class model's served answers: each class's probability and the most probable.
fn render_class_predictions(r: &RunReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if r.predictions.is_empty() {
        return s;
    }
    let _ = writeln!(s, "\npredictions (served model)");
    for p in &r.predictions {
        let input: Vec<String> =
            r.feature_names.iter().zip(&p.input).map(|(n, v)| format!("{n} {v}")).collect();
        let each: Vec<String> =
            p.classes.iter().map(|c| format!("{} {:.4}", c.class, c.probability)).collect();
        let label = p.label.as_deref().unwrap_or("?");
        let _ = writeln!(
            s,
            "  {} → {} (v{}): {label}",
            input.join(", "),
            each.join(", "),
            p.model_version
        );
    }
    s
}

/// The label's name, the positive class of a 0/1 label.
fn label_of(r: &RunReport) -> String {
    if r.model.label_name.is_empty() { "positive".into() } else { r.model.label_name.clone() }
}

/// An odds ratio in a column 11 wide: plainly, or in scientific notation when far from 1.
fn odds(v: Option<f64>) -> String {
    match v {
        Some(v) if (1e-4..1e6).contains(&v) => format!("{v:.4}"),
        Some(v) => format!("{v:.3e}"),
        None => "inf".into(),
    }
}

/// The coefficient table as statsmodels prints it: estimate, standard error, z, p-value and the
/// 95% interval, plus the odds ratio; in the model's term order.
pub fn render_terms(model: &pipeline::ModelReport) -> String {
    use std::fmt::Write as _;
    let mut s = match (&model.multinomial, &model.classes) {
        (Some(m), Some(classes)) => render_class_terms(m, classes),
        _ => {
            let (shown, left_out) = model.fit.shown_terms();
            let mut table = render_table(shown, "odds ratio");
            left_out.iter().for_each(|line| table.push_str(&format!("  {line}\n")));
            table
        }
    };
    if let Some(note) = &model.fit.statistics_note {
        let note = crate::cli::with_flag_hints(note);
        let _ = writeln!(s, "  standard errors, p-values and intervals: {note}");
    }
    for line in model.fit.row_roles.iter().flat_map(|r| r.lines()) {
        let _ = writeln!(s, "  {line}");
    }
    if let Some(covariance) = model.fit.covariance {
        let _ = writeln!(s, "  covariance: {}", covariance.describe());
    }
    for line in model.fit.fit_statistics.iter().flat_map(FitStatistics::lines) {
        let _ = writeln!(s, "  {line}");
    }
    s
}

/// A K-class model's tables: each class against the reference, with relative-risk ratios;
/// a penalised model's estimates per class.
fn render_class_terms(model: &ClassModel, classes: &Classes) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let names = classes.names();
    for table in &model.tables {
        match model.reference() {
            Some(reference) => {
                write!(s, "\n  {:?} against {:?}", names[table.class], names[reference])
            }
            None => write!(s, "\n  {:?}", names[table.class]),
        }
        .unwrap_or_default();
        s.push_str(&render_table(table.terms.iter().collect(), "RRR"));
    }
    s
}

/// One coefficient table, its ratio column (odds ratio, or relative-risk ratio) so named.
fn render_table(terms: Vec<&TermStatistics>, ratio: &str) -> String {
    use crate::numbers::readable;
    use std::fmt::Write as _;
    let mut s = String::new();
    let width = terms.iter().map(|t| t.term.chars().count()).max().unwrap_or(11).max(11);
    let with_statistics = terms.iter().any(|t| t.std_error.is_some());
    let _ = writeln!(s);
    if with_statistics {
        let _ = writeln!(
            s,
            "  {:<width$} {:>12} {:>11} {:>8} {:>8} {:>12} {:>12} {:>11}",
            "", "coef", "std err", "z", "P>|z|", "[0.025", "0.975]", ratio
        );
    } else {
        let _ = writeln!(s, "  {:<width$} {:>12} {:>11}", "", "coef", ratio);
    }
    for t in terms {
        match (t.std_error, t.z, t.p_value, t.ci_low, t.ci_high) {
            (Some(se), Some(z), Some(p), Some(lo), Some(hi)) => {
                let _ = writeln!(
                    s,
                    "  {:<width$} {:>12} {:>11} {:>8.3} {:>8.3} {:>12} {:>12} {:>11}",
                    t.term,
                    readable(t.estimate, 6),
                    readable(se, 6),
                    z,
                    p,
                    readable(lo, 6),
                    readable(hi, 6),
                    odds(t.odds_ratio)
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "  {:<width$} {:>12} {:>11}",
                    t.term,
                    readable(t.estimate, 6),
                    odds(t.odds_ratio)
                );
            }
        }
    }
    s
}

/// The model a command asks: the one named, else the only one registered, else `admissions`.
fn model_to_ask(home: &Home, named: Option<&str>) -> anyhow::Result<String> {
    let models = home.registry()?.load().map_err(|e| anyhow::anyhow!("{e}"))?.models;
    Ok(match (named, models.len()) {
        (Some(name), _) => name.to_string(),
        (None, 0) => {
            bail!(
                "no model has been trained in {} yet: run `logitflow run` first",
                home.dir.display()
            )
        }
        (None, 1) => models.keys().next().cloned().unwrap_or_default(),
        (None, _) if models.contains_key("admissions") => "admissions".into(),
        (None, _) => {
            bail!(
                "several models are registered ({}): choose one with --model",
                models.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    })
}

/// `logitflow score FILE --out FILE`: the file through a batch service (and the serve it
/// asks), started on the home for the purpose; the answer is streamed to the output as it
/// comes, into a staging file renamed into place once whole, with the rows counted on stderr.
pub async fn score(home: Home, args: crate::cli::ScoreArgs) -> anyhow::Result<()> {
    let name = model_to_ask(&home, args.model.as_deref())?;
    let config = home.supervisor_config(Vec::new())?;
    let supervisor = Supervisor::start(config, &[ServiceName::Serve, ServiceName::Batch])?;
    let progress = std::io::stderr().is_terminal();
    let scored = async {
        supervisor.wait_ready(READY_TIMEOUT).await.map_err(|e| anyhow::anyhow!(e))?;
        let batch = supervisor.client(ServiceName::Batch).context("batch has no address")?;
        let mut shown = std::time::Instant::now();
        score_file(&batch, &name, &args.version, &args.file, &args.out, |rows| {
            if progress && shown.elapsed() >= Duration::from_millis(100) {
                eprint!("\rscored {rows} rows");
                shown = std::time::Instant::now();
            }
        })
        .await
    }
    .await;
    supervisor.shutdown().await;
    let (rows, version) = scored?;
    let to = if args.out.as_os_str() == "-" {
        "standard output".to_string()
    } else {
        args.out.display().to_string()
    };
    if progress {
        eprint!("\r");
    }
    eprintln!("scored {rows} rows of {} with {name} v{version} → {to}", args.file.display());
    Ok(())
}

/// Scores `file` through the batch service with `model` at `version` and streams the answer
/// into `out` (`-`: standard output), which appears whole or not at all: the rows go to a
/// staging file beside it, renamed once the last row is in. `on_rows` sees the rows scored so
/// far as they arrive. Gives the rows scored and the version that scored them. Shared by
/// `logitflow score` and the dashboard.
pub async fn score_file(
    batch: &logitflow_kit::client::ServiceClient,
    model: &str,
    version: &str,
    file: &Path,
    out: &Path,
    mut on_rows: impl FnMut(usize),
) -> anyhow::Result<(usize, String)> {
    use tokio::io::AsyncWriteExt;
    let size = tokio::fs::metadata(file)
        .await
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > logitflow_batch::MAX_BODY as u64 {
        bail!(
            "{} is {size} bytes; batch scores files of up to {} bytes: split it",
            file.display(),
            logitflow_batch::MAX_BODY
        );
    }
    let body =
        tokio::fs::read(file).await.with_context(|| format!("cannot read {}", file.display()))?;
    let to_stdout = out.as_os_str() == "-";
    let staging = out.with_file_name(format!(
        ".{}.{}.partial",
        out.file_name().map_or_else(|| "scored".into(), |n| n.to_string_lossy().into_owned()),
        std::process::id()
    ));
    let streamed = async {
        let path = format!(
            "/v1/score?model={}&version={}",
            logitflow_kit::client::path_segment(model),
            logitflow_kit::client::path_segment(version)
        );
        let mut response = batch
            .post_bytes(&path, "text/csv", body)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let version = response
            .headers()
            .get("x-model-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_string();
        let mut written = match to_stdout {
            true => None,
            false => Some(
                tokio::fs::File::create(&staging)
                    .await
                    .with_context(|| format!("cannot write {}", staging.display()))?,
            ),
        };
        let mut stdout = tokio::io::stdout();
        let mut lines = 0usize;
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            anyhow::anyhow!("the answer broke off after {} rows: {e}", lines.saturating_sub(1))
        })? {
            lines += chunk.iter().filter(|&&b| b == b'\n').count();
            match &mut written {
                Some(f) => f.write_all(&chunk).await,
                None => stdout.write_all(&chunk).await,
            }
            .context("cannot write the scored rows")?;
            on_rows(lines.saturating_sub(1));
        }
        match &mut written {
            Some(f) => {
                f.flush().await?;
                f.sync_all().await?;
            }
            None => stdout.flush().await?,
        }
        Ok::<_, anyhow::Error>((lines.saturating_sub(1), version))
    }
    .await;
    match streamed {
        Ok(done) => {
            if !to_stdout {
                tokio::fs::rename(&staging, out)
                    .await
                    .with_context(|| format!("cannot write {}", out.display()))?;
            }
            Ok(done)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&staging).await;
            Err(e)
        }
    }
}

/// `logitflow predict`: starts serve alone and asks it.
pub async fn predict(home: Home, args: PredictArgs) -> anyhow::Result<()> {
    if args.values.is_empty() == args.features.is_empty() {
        bail!(
            "give the values either positionally (logitflow predict 80) or by name (--feature score=80), not both or neither"
        );
    }
    let name = model_to_ask(&home, args.model.as_deref())?;
    let config = home.supervisor_config(Vec::new())?;
    let supervisor = Supervisor::start(config, &[ServiceName::Serve])?;
    let answer = async {
        supervisor.wait_ready(READY_TIMEOUT).await.map_err(|e| anyhow::anyhow!(e))?;
        let serve = supervisor.client(ServiceName::Serve).context("serve has no address")?;
        let request = PredictRequest {
            model: Some(name.clone()),
            version: Some(args.version.clone()),
            inputs: (!args.values.is_empty()).then(|| vec![args.values.clone()]),
            features: (!args.features.is_empty()).then(|| args.features.iter().cloned().collect()),
        };
        let answer: PredictResponse =
            serve.post("/v1/predict", &request).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let meta: logitflow_kit::wire::ModelMetadata =
            serve.get(&format!("/v2/models/{name}")).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok::<_, anyhow::Error>((answer, meta))
    }
    .await;
    supervisor.shutdown().await;
    let (answer, meta) = answer?;
    let inputs: Vec<String> = if args.values.is_empty() {
        args.features.iter().map(|(n, v)| format!("{n} {v}")).collect()
    } else {
        meta.feature_names.iter().zip(&args.values).map(|(n, v)| format!("{n} {v}")).collect()
    };
    // A K-class model: each class's probability by name, and the most probable.
    if let (Some(classes), Some(label)) = (answer.classes.first(), answer.labels.first()) {
        if args.json {
            let json = serde_json::json!({"model": answer.model_name, "model_version": answer.model_version, "classes": classes, "label": label});
            out!("{json}");
        } else {
            let each: Vec<String> =
                classes.iter().map(|c| format!("{} {:.4}", c.class, c.probability)).collect();
            out!(
                "{} v{}: {} → {}: {label}",
                answer.model_name,
                answer.model_version,
                inputs.join(", "),
                each.join(", ")
            );
        }
        return Ok(());
    }
    let probability = answer.probabilities.first().copied().unwrap_or(f64::NAN);
    if args.json {
        out!(
            "{}",
            serde_json::json!({"model": answer.model_name, "model_version": answer.model_version, "probability": probability})
        );
    } else {
        let positive =
            meta.classes.as_ref().map_or_else(String::new, |c| format!(" of {}", c.positive));
        out!(
            "{} v{}: {} → probability {probability:.4}{positive}",
            answer.model_name,
            answer.model_version,
            inputs.join(", ")
        );
    }
    Ok(())
}

/// `logitflow runs`.
pub fn runs(home: Home, args: RunsArgs) -> anyhow::Result<()> {
    let runs = pipeline::load_runs(&home);
    if args.json {
        let rows: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| serde_json::json!({"run_id": r.run_id, "model": r.model, "metrics": r.metrics, "promoted": r.promoted, "stages": r.stages}))
            .collect();
        out!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if runs.is_empty() {
        out!("no runs yet in {}: `logitflow run` makes one", home.dir.display());
        return Ok(());
    }
    out!(
        "{:<20} {:<16} {:>7} {:>8} {:>8} {:>8} {:<9} cached stages",
        "run",
        "model",
        "version",
        "accuracy",
        "auc",
        "logloss",
        "solver"
    );
    for r in &runs {
        let cached = r.stages.iter().filter(|s| s.cached).count();
        out!(
            "{:<20} {:<16} {:>7} {:>8.4} {:>8.4} {:>8.4} {:<9} {}/{}{}",
            r.run_id,
            r.model.name,
            format!("v{}", r.model.version),
            r.metrics.accuracy,
            r.metrics.auc,
            r.metrics.log_loss,
            r.params.solver.name(),
            cached,
            r.stages.len(),
            if r.promoted { "  promoted" } else { "" }
        );
    }
    Ok(())
}

/// `logitflow gc`: the home's store (or a `file://` one) collected ([`logitflow_store::home::gc`]).
pub fn gc(home: Home, args: GcArgs) -> anyhow::Result<()> {
    use logitflow_store::home::gc::{GcOptions, collect_garbage};
    let store = match home.store {
        None => home.dir,
        Some(uri) if uri.starts_with("file://") => PathBuf::from(uri.trim_start_matches("file://")),
        Some(uri) => bail!(
            "gc collects a store on disk; {uri} is a bucket, whose collection is not built yet"
        ),
    };
    let days = |flag: &str, v: f64, unit: f64| match v.is_finite() && v >= 0.0 {
        true => Ok(Duration::from_secs_f64(v * unit)),
        false => Err(anyhow::anyhow!("--{flag} must be a number of 0 or more, got {v}")),
    };
    let options = GcOptions {
        keep_steps: days("keep-days", args.keep_days, 86_400.0)?,
        grace: days("grace-hours", args.grace_hours, 3_600.0)?,
        dry_run: args.dry_run,
    };
    let report =
        collect_garbage(&store, &options).with_context(|| format!("gc of {}", store.display()))?;
    for artifact in &report.removed {
        let age = artifact.age_ms as f64 / 86_400_000.0;
        out!(
            "{:<10} {}  {:>10}  {age:.1} days old",
            artifact.kind,
            artifact.id,
            bytes_text(artifact.bytes)
        );
    }
    let verb = if report.dry_run { "would remove" } else { "removed" };
    out!(
        "{verb} {} artifact(s), {}, and {} cached step(s) that named them; kept {}",
        report.removed.len(),
        bytes_text(report.bytes()),
        report.steps_removed,
        report.kept
    );
    Ok(())
}

/// A size in bytes for people: `1.9 GB`, `340 kB`.
fn bytes_text(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", units[unit]) }
}

/// `logitflow export`.
pub fn export(home: Home, args: ExportArgs) -> anyhow::Result<()> {
    let runs = pipeline::load_runs(&home);
    let run = match &args.run {
        Some(id) => runs.iter().find(|r| r.run_id == *id).with_context(|| {
            format!("no run {id:?} in {}; `logitflow runs` lists them", home.dir.display())
        })?,
        None => runs.last().with_context(|| {
            format!("no runs yet in {}: `logitflow run` makes one", home.dir.display())
        })?,
    };
    let written = crate::export::export_run(run, &args.out, args.log)?;
    for path in written {
        out!("{}", path.display());
    }
    Ok(())
}

/// `logitflow compare A B`.
pub fn compare(home: Home, args: crate::cli::CompareArgs) -> anyhow::Result<()> {
    let runs = pipeline::load_runs(&home);
    let a = crate::compare::find_run(&runs, &args.a).map_err(anyhow::Error::msg)?;
    let b = crate::compare::find_run(&runs, &args.b).map_err(anyhow::Error::msg)?;
    out!("{}", crate::compare::table(&crate::compare::compare_runs(a, b)));
    if let Some(dir) = &args.out {
        for path in crate::export::export_comparison(a, b, dir)? {
            out!("{}", path.display());
        }
    }
    Ok(())
}

/// `logitflow service NAME`: one service in the foreground.
pub async fn service(
    home: Option<PathBuf>,
    store: Option<String>,
    command: ServiceCommand,
) -> anyhow::Result<()> {
    if command.grpc_listen.is_some() && command.name != ServiceName::Serve {
        bail!("--grpc-listen is for serve only; {} speaks HTTP", command.name);
    }
    let args = logitflow_kit::ServiceArgs {
        listen: command.listen,
        home,
        store,
        tls_cert: command.tls_cert,
        tls_key: command.tls_key,
    };
    let (listener, config) = logitflow_kit::start(&args).await?;
    let shutdown = logitflow_kit::shutdown_signal();
    match command.name {
        ServiceName::Ingest => logitflow_ingest::run(listener, config, shutdown).await,
        ServiceName::Preprocess => logitflow_preprocess::run(listener, config, shutdown).await,
        ServiceName::Features => logitflow_features::run(listener, config, shutdown).await,
        ServiceName::Train => logitflow_train::run(listener, config, shutdown).await,
        ServiceName::Evaluate => logitflow_evaluate::run(listener, config, shutdown).await,
        ServiceName::Serve => {
            let grpc = match command.grpc_listen {
                Some(addr) => {
                    logitflow_kit::check_exposure(addr, config.token.as_deref())?;
                    Some(
                        tokio::net::TcpListener::bind(addr)
                            .await
                            .with_context(|| format!("cannot listen for gRPC on {addr}"))?,
                    )
                }
                None => None,
            };
            logitflow_serve::run_with_grpc(listener, grpc, config, shutdown).await
        }
        ServiceName::Advisor => logitflow_advisor::run(listener, config, shutdown).await,
        ServiceName::Batch => logitflow_batch::run(listener, config, shutdown).await,
    }
}

/// `logitflow synth`.
pub fn synth(args: SynthArgs) -> anyhow::Result<()> {
    use logitflow_core::synth::{Generator, generate, write_csv};
    let generator = Generator {
        intercept: args.intercept,
        coefficients: args.coefficients,
        ranges: args.ranges,
        rows: args.rows,
        seed: args.seed,
    };
    generator.validate()?;
    let data = generate(&generator);
    match args.out {
        Some(path) => {
            let mut bytes = Vec::new();
            write_csv(&data, &mut bytes)?;
            logitflow_store::home::write_atomic(&path, &bytes)?;
        }
        None => write_csv(&data, std::io::stdout().lock())?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_from_file_stems() {
        assert_eq!(model_name_from(Path::new("/a/admissions.csv")), "admissions");
        assert_eq!(model_name_from(Path::new("/a/my data (1).csv")), "my-data--1-");
    }

    /// The report's table keeps six decimals where they show the number (statsmodels' columns)
    /// and significant digits where they do not: an income coefficient of 3.0e-6 printed as
    /// 0.000003, one significant figure.
    #[test]
    fn the_reports_coefficient_table_keeps_significant_digits() {
        let report: pipeline::ModelReport = serde_json::from_value(serde_json::json!({
            "name": "wage", "version": 1, "intercept": -1.5, "coefficients": {"income": 3.0e-6}, "label_name": "y",
            "terms": [
                {"term": "(intercept)", "estimate": -1.5, "std_error": 0.25, "z": -6.0, "p_value": 1e-9, "ci_low": -1.99, "ci_high": -1.01, "odds_ratio": 0.2231},
                {"term": "income", "estimate": 3.0e-6, "std_error": 1.1e-6, "z": 2.73, "p_value": 0.006, "ci_low": 8.4e-7, "ci_high": 5.2e-6, "odds_ratio": 1.000003}
            ]
        }))
        .expect("a model report");
        let table = render_terms(&report);
        let income =
            table.lines().find(|l| l.trim_start().starts_with("income")).expect("an income row");
        for shown in ["3.00e-6", "1.10e-6", "8.40e-7", "5.20e-6"] {
            assert!(income.contains(shown), "{shown} in {income:?}");
        }
        assert!(table.contains("-1.500000") && table.contains("0.250000"), "{table}");
    }
}
