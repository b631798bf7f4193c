//! The dashboard's state, [`App`], and how it changes: [`App::on_key`] turns keys into state
//! changes and [`Action`]s for the runtime to carry out; [`App::on_event`] folds in what
//! background tasks report ([`AppEvent`]). No I/O happens here, so the whole dashboard can be
//! driven headless in tests.

use super::overlays::{
    CoefficientsKey, CoefficientsView, KeyOutcome, LogView, Overlays, ScoreForm,
};
use crate::pipeline::{PipelineEvent, RunReport, Stage};
use crate::supervisor::{LogLine, ServiceName, ServiceSnapshot, Status};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use logitflow_core::logistic::multinomial::ClassTerms;
use logitflow_core::logistic::{Covariance, Penalty, Solver, StopReason, TrainParams};
use logitflow_core::roles::RoleColumns;
use logitflow_core::scale::Value;
use logitflow_kit::wire::{ClassProbability, Evaluation, ModelVersions};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What a background task reports.
#[derive(Debug, Clone)]
pub enum AppEvent {
    /// The supervisor's view of the services changed.
    Services(Vec<ServiceSnapshot>),
    /// CPU % and resident bytes per pid, sampled once a second.
    Stats(BTreeMap<u32, (f32, u64)>),
    Logs(ServiceName, Vec<LogLine>),
    Pipeline(PipelineEvent),
    RunFinished(Result<Box<RunReport>, String>),
    /// An answer to the predict box, from one alias.
    Predicted {
        alias: String,
        result: Result<(f64, String), String>,
    },
    /// A K-class model's answer to the predict box, from one alias: each class's probability,
    /// and the version.
    PredictedClasses {
        alias: String,
        result: Result<(Vec<ClassProbability>, String), String>,
    },
    Models(ModelVersions),
    /// advisor's answer for the row last asked: the decision at the threshold, and the value of
    /// the first numeric feature at which it flips.
    Advised(Result<logitflow_kit::wire::Advice, String>),
    /// The versions serve could not load (a damaged artifact), with why, from its metadata.
    Unavailable(BTreeMap<String, String>),
    Exported(Result<Vec<PathBuf>, String>),
    /// The result of promote, rollback, cancel, restart...
    Status(String),
    /// A run kept from before this session, to show at start.
    PreviousRun(Box<RunReport>),
    /// Every kept run, for the runs view (oldest first, as `logitflow runs` lists them).
    Runs(Vec<RunReport>),
    /// Rows of a batch scoring done so far.
    Scoring(usize),
    /// A batch scoring's end: the rows and the version that scored them, or why not.
    Scored(Result<(usize, String, PathBuf), String>),
    /// An epoch of a sweep's member.
    SweepEpoch {
        member: usize,
        epoch: logitflow_core::logistic::EpochEvent,
    },
    /// A sweep's member has registered its version, or failed.
    SweepFinished {
        member: usize,
        result: Result<Box<RunReport>, String>,
    },
}

/// What the runtime must do for a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Train(TrainParams),
    /// Stop the job between epochs; `keep_best` makes its best epoch so far a version.
    Cancel {
        job: String,
        keep_best: bool,
    },
    /// One row of feature values (in the data's column order) and the aliases to ask.
    Predict(Vec<Value>, Vec<String>),
    Promote,
    Rollback,
    Export {
        log_scale: bool,
    },
    Restart(ServiceName),
    StopStart(ServiceName, bool),
    ShowLogs(ServiceName),
    /// Read the kept runs, for the runs view.
    LoadRuns,
    /// Score a CSV file through the batch service into another, with stable.
    Score {
        input: PathBuf,
        output: PathBuf,
    },
    /// Train every member of a grid, as many at once as there are cores; each registers a
    /// version and moves no alias.
    Sweep(Vec<TrainParams>),
    /// Make this version stable (the sweep's best).
    PromoteVersion(u32),
    /// Both runs' loss curves in one plot (PNG, SVG, CSV), into the export directory.
    ExportComparison(Box<RunReport>, Box<RunReport>),
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Services,
    Predict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    Logs,
    Params,
    ConfirmQuit,
    /// `c` while training: keep the best epoch so far as a version, discard the run, or go on.
    ConfirmCancel,
    /// `p` with a model of more than one feature: one labelled field per feature.
    PredictForm,
    /// `R`: every kept run; Space marks two, Enter compares them (or opens the one selected).
    Runs,
    /// Two runs side by side (or one run alone): loss curves, parameters, metrics, coefficients.
    RunView,
    /// `B`: batch scoring — the CSV to score and the file to write.
    Score,
    /// `S` with no sweep: its grid (solvers × learning rates × L2 penalties).
    SweepForm,
    /// `S`: the sweep's members, their curves growing together, ranked by validation loss.
    Sweep,
    /// `C`: the shown version's whole coefficient table, scrolling, with a bar per term for
    /// its standardized magnitude.
    Coefficients,
    /// `P` with a candidate that tested worse than stable: why, and y promotes anyway.
    ConfirmPromote,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StageState {
    Waiting,
    Running,
    Done { ms: f64, cached: bool, detail: String },
    Failed(String),
}

/// The hyperparameter form: text fields, checked when applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamsForm {
    pub solver: Solver,
    pub covariance: Covariance,
    pub penalty: Penalty,
    /// The typed fields, in [`ParamsForm::LABELS`]' order ([`ParamsForm::field_of`]).
    pub fields: [String; 14],
    pub selected: usize,
    pub error: Option<String>,
}

impl ParamsForm {
    pub const LABELS: [&'static str; 17] = [
        "solver",
        "learning rate",
        "epochs",
        "batch size",
        "l2",
        "seed",
        "patience",
        "tolerance",
        "validation",
        "covariance",
        "penalty",
        "α (l1 ratio)",
        "λ",
        "cv folds",
        "weights",
        "offset",
        "cluster",
    ];
    /// The field that chooses the covariance, by ←→ as the solver's.
    pub const COVARIANCE: usize = 9;
    /// The field that chooses the penalty, by ←→.
    pub const PENALTY: usize = 10;

    /// The form of parameters `p`, with the data's role columns `roles`.
    fn from(p: &TrainParams, roles: &RoleColumns) -> Self {
        let optional = |v: Option<String>| v.unwrap_or_default();
        ParamsForm {
            solver: p.solver,
            covariance: p.covariance,
            penalty: p.penalty,
            fields: [
                p.learning_rate.to_string(),
                p.epochs.to_string(),
                p.batch_size.to_string(),
                p.l2.to_string(),
                p.seed.to_string(),
                p.patience.to_string(),
                p.tolerance.to_string(),
                // Empty: the default (a tenth held out when the training data is large enough).
                optional(p.validation_fraction.map(|f| f.to_string())),
                optional(p.l1_ratio.map(|a| a.to_string())),
                optional(p.lambda.map(|l| l.to_string())),
                optional(p.cv.map(|k| k.to_string())),
                optional(roles.weights.clone()),
                optional(roles.offset.clone()),
                optional(roles.cluster.clone()),
            ],
            selected: 0,
            error: None,
        }
    }

    /// The typed field behind label `i`; `None` for the ←→ choices.
    pub fn field_of(i: usize) -> Option<usize> {
        match i {
            1..=8 => Some(i - 1),
            11..=16 => Some(i - 3),
            _ => None,
        }
    }

    /// Whether field `i` (of [`ParamsForm::LABELS`]) does anything with the chosen solver and
    /// penalty: newton and L-BFGS (and so auto) choose their own steps, only minibatch has a
    /// batch size, l2 is the penalty when none is chosen, α belongs to the elastic net, and
    /// λ and the folds to a penalty.
    pub fn applies(&self, i: usize) -> bool {
        match Self::LABELS[i] {
            "learning rate" => self.solver.uses_learning_rate(),
            "batch size" => self.solver == Solver::Minibatch,
            "l2" => self.penalty == Penalty::None,
            "α (l1 ratio)" => self.penalty == Penalty::Elasticnet,
            "λ" | "cv folds" => self.penalty != Penalty::None,
            "cluster" => self.covariance == Covariance::Cluster,
            _ => true,
        }
    }

    /// Whether the selected field is one typed into (not a ←→ choice).
    fn typed_into(&self) -> Option<usize> {
        Self::field_of(self.selected)
    }

    /// The parameters, or the reason they are refused (naming the field).
    pub fn parse(&self, base: &TrainParams) -> Result<TrainParams, String> {
        let text = |label: usize| Self::field_of(label).map_or("", |f| self.fields[f].trim());
        let number = |label: usize| {
            text(label)
                .parse::<f64>()
                .map_err(|_| format!("{}: {:?} is not a number", Self::LABELS[label], text(label)))
        };
        let whole = |label: usize| {
            text(label).parse::<u64>().map_err(|_| {
                format!("{}: {:?} is not a whole number", Self::LABELS[label], text(label))
            })
        };
        // An optional field, empty for none; one that does not apply is none too.
        let optional = |label: usize| {
            if text(label).is_empty() || !self.applies(label) {
                Ok(None)
            } else {
                number(label).map(Some)
            }
        };
        let params = TrainParams {
            solver: self.solver,
            learning_rate: number(1)?,
            epochs: whole(2)? as usize,
            batch_size: whole(3)? as usize,
            l2: if self.applies(4) { number(4)? } else { 0.0 },
            seed: whole(5)?,
            patience: whole(6)? as usize,
            tolerance: number(7)?,
            validation_fraction: optional(8)?,
            covariance: self.covariance,
            penalty: self.penalty,
            l1_ratio: optional(11)?,
            lambda: optional(12)?,
            cv: if text(13).is_empty() || !self.applies(13) {
                None
            } else {
                Some(whole(13)? as usize)
            },
            ..base.clone()
        };
        params.validate().map_err(|e| e.to_string())?;
        if params.covariance == Covariance::Cluster && text(16).is_empty() {
            return Err("cluster: name the cluster column".into());
        }
        Ok(params)
    }

    /// The data's role columns as the form names them (`folds` as `base` has it): each empty
    /// field is none, and the cluster column is read only for the cluster covariance.
    pub fn roles(&self, base: &RoleColumns) -> RoleColumns {
        let named = |label: usize| {
            Self::field_of(label)
                .map(|f| self.fields[f].trim().to_string())
                .filter(|t| !t.is_empty())
        };
        let cluster = named(16).filter(|_| self.applies(16));
        RoleColumns { weights: named(14), offset: named(15), cluster, folds: base.folds.clone() }
    }
}

/// The choice after `current` in `choices` (before it, `back`), round at the ends.
fn step_through<T: Copy + PartialEq>(choices: &[T], current: T, back: bool) -> T {
    let i = choices.iter().position(|c| *c == current).unwrap_or(0);
    let next = if back { i + choices.len() - 1 } else { i + 1 };
    choices[next % choices.len()]
}

/// Remarks on a key just pressed, which the next answer replaces (see [`TRANSIENT_STATUS`]).
const NOTHING_TRAINING: &str = "nothing is training";
const STILL_HERE: &str = "still here";
const NOT_PROMOTED: &str = "not promoted";
const TRAINING_GOES_ON: &str = "training goes on";
const ALREADY_TRAINING: &str = "training is already running (c cancels it)";
const TRANSIENT_STATUS: [&str; 4] = [NOTHING_TRAINING, STILL_HERE, NOT_PROMOTED, ALREADY_TRAINING];
/// How a failed run's status begins; it stays until something else happens.
const RUN_FAILED: &str = "run failed";

/// The predict form of a model with more than one feature: a value per feature, in the
/// data's column order. `,` moves to the next field, so a comma-separated row pasted into the
/// first field fills them all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PredictForm {
    pub values: Vec<String>,
    pub selected: usize,
    pub error: Option<String>,
}

impl PredictForm {
    /// The longest value a field takes.
    const MAX_VALUE: usize = 256;

    /// The row the fields make, or what is missing or wrong, naming the feature. With the
    /// data's categorical columns known, every other feature must be a number.
    fn row(
        &self,
        names: &[String],
        categorical: Option<&BTreeMap<String, Vec<String>>>,
    ) -> Result<Vec<Value>, String> {
        names
            .iter()
            .zip(&self.values)
            .map(|(name, value)| match crate::cli::parse_row(value.trim()) {
                _ if value.trim().is_empty() => Err(format!("{name} has no value")),
                Ok(one) => match one.as_slice() {
                    [Value::Text(_)] if categorical.is_some_and(|c| !c.contains_key(name)) => {
                        Err(format!("{name}: {:?} is not a number", value.trim()))
                    }
                    [value] => Ok(value.clone()),
                    _ => Err(format!("{name}: {value:?} is one value, not several")),
                },
                Err(e) => Err(format!("{name}: {e}")),
            })
            .collect()
    }
}

/// How the runs view is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RunsOrder {
    #[default]
    Newest,
    BestAuc,
    LowestLogLoss,
}

impl RunsOrder {
    pub fn next(self) -> RunsOrder {
        match self {
            RunsOrder::Newest => RunsOrder::BestAuc,
            RunsOrder::BestAuc => RunsOrder::LowestLogLoss,
            RunsOrder::LowestLogLoss => RunsOrder::Newest,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RunsOrder::Newest => "newest first",
            RunsOrder::BestAuc => "highest AUC first",
            RunsOrder::LowestLogLoss => "lowest log loss first",
        }
    }
}

/// The runs view: the kept runs in the order chosen, the one selected, the ones marked.
#[derive(Debug, Clone, Default)]
pub struct RunsView {
    /// `None` until the runs are read.
    pub runs: Option<Vec<RunReport>>,
    pub order: RunsOrder,
    pub selected: usize,
    /// Run ids marked for comparison, at most two, the first marked first.
    pub marked: Vec<String>,
    /// `/`: only the runs whose data file, solver, version or stop reason contains this.
    pub filter: String,
    pub filtering: bool,
}

impl RunsView {
    fn sort(&mut self) {
        let Some(runs) = self.runs.as_mut() else { return };
        match self.order {
            RunsOrder::Newest => runs.sort_by(|a, b| b.run_id.cmp(&a.run_id)),
            RunsOrder::BestAuc => runs.sort_by(|a, b| b.metrics.auc.total_cmp(&a.metrics.auc)),
            RunsOrder::LowestLogLoss => {
                runs.sort_by(|a, b| a.metrics.log_loss.total_cmp(&b.metrics.log_loss))
            }
        }
    }

    /// The runs the filter lets through, in order.
    pub fn visible(&self) -> Vec<&RunReport> {
        let needle = self.filter.trim().to_lowercase();
        let shown = |r: &&RunReport| {
            needle.is_empty() || {
                let text = format!(
                    "{} {} v{} {}",
                    r.data,
                    r.params.solver,
                    r.model.version,
                    r.stop_reason.short()
                )
                .to_lowercase();
                text.contains(&needle)
            }
        };
        self.runs.iter().flatten().filter(shown).collect()
    }

    pub fn selected_run(&self) -> Option<&RunReport> {
        self.visible().get(self.selected).copied()
    }
}

/// One loss curve of a run: its label, whether it is the validation loss, its points.
pub type LossCurve = (String, bool, Vec<(f64, f64)>);

/// One run, or two side by side, as the run view shows them; built when asked for, so that
/// drawing only reads it.
#[derive(Debug, Clone)]
pub struct RunComparison {
    pub title: String,
    /// The second column is empty for one run alone.
    pub rows: Vec<crate::compare::ComparedRow>,
    pub two: bool,
    /// The first run's curves first; epochs as log₁₀ when `log_epochs`.
    pub curves: Vec<LossCurve>,
    /// Runs of very different lengths (newton's 7 epochs beside SGD's 600) share a log epoch
    /// axis, or the short one is a sliver at the left edge.
    pub log_epochs: bool,
    pub scroll: usize,
    /// The two runs, for `e` (both loss curves in one plot).
    pub pair: Option<(Box<RunReport>, Box<RunReport>)>,
}

impl RunComparison {
    pub fn of(a: &RunReport, b: Option<&RunReport>) -> RunComparison {
        let describe = |r: &RunReport| format!("v{} {}", r.model.version, r.params.solver);
        let mut curves = Vec::new();
        for run in std::iter::once(a).chain(b) {
            let train = run.loss_curve.iter().map(|p| (p.epoch as f64, p.train_loss)).collect();
            let val: Vec<(f64, f64)> = run
                .loss_curve
                .iter()
                .filter_map(|p| p.val_loss.map(|v| (p.epoch as f64, v)))
                .collect();
            curves.push((format!("{} train", describe(run)), false, train));
            if !val.is_empty() {
                curves.push((format!("{} validation", describe(run)), true, val));
            }
        }
        let title = match b {
            Some(b) => format!("{} ({}) vs {} ({})", describe(a), a.run_id, describe(b), b.run_id),
            None => format!("{} ({})", describe(a), a.run_id),
        };
        let lengths: Vec<usize> =
            std::iter::once(a).chain(b).map(|r| r.loss_curve.len().max(1)).collect();
        let log_epochs =
            lengths.iter().max().unwrap_or(&1) / lengths.iter().min().unwrap_or(&1) >= 10;
        if log_epochs {
            for (_, _, points) in &mut curves {
                points.iter_mut().for_each(|p| p.0 = p.0.max(1.0).log10());
            }
        }
        let mut rows = crate::compare::compare_runs(a, b.unwrap_or(a));
        if b.is_some() {
            // What differs first (after the runs' own ids), then what the two share.
            let (mut first, same): (Vec<_>, Vec<_>) =
                rows.into_iter().enumerate().partition(|(i, r)| *i < 2 || r.differs);
            first.extend(same);
            rows = first.into_iter().map(|(_, r)| r).collect();
        }
        let pair = b.map(|b| (Box::new(a.clone()), Box::new(b.clone())));
        RunComparison { title, rows, two: b.is_some(), curves, log_epochs, scroll: 0, pair }
    }
}

/// One answer shown in the predict box.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub alias: String,
    /// The probability (a K-class model's: of the most probable class) and the version.
    pub result: Result<(f64, String), String>,
    /// A K-class model's probability of each class; empty for two classes.
    pub classes: Vec<ClassProbability>,
}

#[derive(Debug, Clone)]
pub struct App {
    pub home: PathBuf,
    /// The columns of the data that are the rows' weights, offset, clusters and folds, as the
    /// next run reads them (the command line's, then the form's).
    pub row_roles: RoleColumns,
    /// A run asked for (`t`, or the form) before every service was ready: started once they are.
    pub queued_train: Option<TrainParams>,
    pub model_name: String,
    pub feature_names: Vec<String>,
    pub threshold: f64,
    pub services: Vec<ServiceSnapshot>,
    pub stats: BTreeMap<u32, (f32, u64)>,
    pub selected: usize,
    pub focus: Focus,
    pub overlay: Overlay,
    /// Each overlay's own state, kept while it is closed.
    pub overlays: Overlays,
    pub stages: Vec<(Stage, StageState)>,
    pub params: TrainParams,
    /// The current run's curve: (epoch, train loss) and (epoch, validation loss).
    pub train_curve: Vec<(f64, f64)>,
    pub val_curve: Vec<(f64, f64)>,
    /// The previous run's training curve, drawn dimmed behind the newest.
    pub previous_curve: Vec<(f64, f64)>,
    pub epochs_planned: usize,
    pub log_scale: bool,
    /// `w`: the chart shows only the latest epochs ([`super::chart::WINDOW_EPOCHS`]).
    pub loss_window: bool,
    /// `m`: the chart's curves smoothed ([`super::chart::SMOOTHING`]).
    pub loss_smoothing: bool,
    /// The chart's series as drawn, kept as epochs arrive.
    pub chart: super::chart::LossChart,
    /// A penalised run's path and cross-validation, drawn instead of the loss while it has any.
    pub path: super::path::PathChart,
    /// While a run trains: epochs per second, and the seconds the epochs left would take.
    pub pace: Option<(f64, f64)>,
    pub training: bool,
    pub job: Option<String>,
    pub evaluation: Option<Evaluation>,
    pub versions: Option<ModelVersions>,
    /// Version → why serve could not load it.
    pub unavailable: BTreeMap<String, String>,
    pub last_report: Option<RunReport>,
    pub predict_input: String,
    /// Rows scored so far while a batch scoring runs.
    pub scoring: Option<usize>,
    pub sweep: Option<super::sweep::Sweep>,
    /// A K-class model's table shown in the Model panel and the `C` view: its place among the
    /// fitted classes (`K` moves to the next).
    pub class_shown: usize,
    pub answers: Vec<Answer>,
    /// advisor's answer for the row last asked (stable's).
    pub advice: Option<Result<logitflow_kit::wire::Advice, String>>,
    /// The values last sent to predict.
    pub last_query: Option<Vec<Value>>,
    /// For a one-feature model: the test rows (value, label) and the fitted curve over their
    /// range, built when the evaluation arrives.
    pub fit_points: Vec<(f64, f64)>,
    pub fit_curve: Vec<(f64, f64)>,
    /// The queried point on the curve (value, probability), once stable answered.
    pub fit_query: Option<(f64, f64)>,
    pub logs: Vec<LogLine>,
    pub status: String,
    pub train_pressed: Option<Instant>,
    /// "Now", set on every tick, so rendering is a pure function of the state.
    pub now: Instant,
    pub quit: bool,
}

impl App {
    pub fn new(home: PathBuf, model_name: String, params: TrainParams, threshold: f64) -> App {
        App {
            home,
            row_roles: RoleColumns::default(),
            queued_train: None,
            model_name,
            feature_names: Vec::new(),
            threshold,
            services: Vec::new(),
            stats: BTreeMap::new(),
            selected: 0,
            focus: Focus::Services,
            overlay: Overlay::None,
            overlays: Overlays {
                params: ParamsForm::from(&params, &RoleColumns::default()),
                predict: PredictForm::default(),
                runs: RunsView::default(),
                sweep: super::sweep::SweepForm::around(&TrainParams::default()),
                score: ScoreForm::default(),
                logs: LogView::default(),
                coefficients: CoefficientsView::default(),
                comparison: None,
            },
            stages: Stage::STAGES.iter().map(|s| (*s, StageState::Waiting)).collect(),
            params,
            train_curve: Vec::new(),
            path: super::path::PathChart::default(),
            val_curve: Vec::new(),
            previous_curve: Vec::new(),
            epochs_planned: 0,
            log_scale: false,
            loss_window: false,
            loss_smoothing: false,
            chart: super::chart::LossChart::new(&[], &[], &[], false, false, false),
            pace: None,
            training: false,
            job: None,
            evaluation: None,
            versions: None,
            unavailable: BTreeMap::new(),
            last_report: None,
            predict_input: String::new(),
            scoring: None,
            sweep: None,
            class_shown: 0,
            answers: Vec::new(),
            advice: None,
            last_query: None,
            fit_points: Vec::new(),
            fit_curve: Vec::new(),
            fit_query: None,
            logs: Vec::new(),
            status: "starting the services…".into(),
            train_pressed: None,
            now: Instant::now(),
            quit: false,
        }
    }

    /// The candidate and stable versions with their test log losses, when the candidate's is
    /// the higher: what `P` asks about before promoting.
    pub fn worse_candidate(&self) -> Option<((u32, f64), (u32, f64))> {
        let entry = &self.versions.as_ref()?.entry;
        let loss = |alias: &str| {
            let v = *entry.aliases.get(alias)?;
            Some((v, entry.version(v)?.metrics.as_ref()?.log_loss))
        };
        let (candidate, stable) =
            (loss(logitflow_store::registry::CANDIDATE)?, loss(logitflow_store::registry::STABLE)?);
        (candidate.1 > stable.1).then_some((candidate, stable))
    }

    pub fn all_ready(&self) -> bool {
        !self.services.is_empty() && self.services.iter().all(|s| s.status == Status::Ready)
    }

    pub fn selected_service(&self) -> Option<ServiceName> {
        self.services.get(self.selected).map(|s| s.name)
    }

    /// Whether a candidate version stands beside the stable one.
    pub fn has_candidate(&self) -> bool {
        self.versions
            .as_ref()
            .is_some_and(|v| v.entry.aliases.contains_key(logitflow_store::registry::CANDIDATE))
    }

    /// Folds in what a background task reported; returns what the runtime must do, if
    /// anything (a training run asked for before every service was ready starts once they are).
    pub fn on_event(&mut self, event: AppEvent) -> Option<Action> {
        self.apply_event(event);
        if self.queued_train.is_some() && self.all_ready() && !self.training {
            let params = self.queued_train.take()?;
            return self.start_training(params);
        }
        None
    }

    fn apply_event(&mut self, event: AppEvent) {
        match event {
            AppEvent::Services(services) => self.on_services(services),
            AppEvent::Stats(stats) => self.stats = stats,
            AppEvent::Logs(name, lines) => self.on_logs(name, lines),
            AppEvent::Pipeline(event) => self.on_pipeline(event),
            AppEvent::RunFinished(result) => self.on_run_finished(result),
            AppEvent::Predicted { alias, result } => self.on_predicted(alias, result),
            AppEvent::PredictedClasses { alias, result } => {
                self.on_predicted_classes(alias, result)
            }
            AppEvent::Models(versions) => self.on_models(versions),
            AppEvent::Unavailable(unavailable) => self.unavailable = unavailable,
            AppEvent::Advised(advice) => self.advice = Some(advice),
            AppEvent::Exported(result) => {
                self.status = match result {
                    Ok(paths) => exported_status(&paths),
                    Err(e) => format!("export failed: {e}"),
                }
            }
            AppEvent::Status(text) => self.status = text,
            AppEvent::SweepEpoch { member, epoch } => {
                if let Some(sweep) = self.sweep.as_mut() {
                    sweep.epoch(member, epoch.epoch, epoch.train_loss, epoch.val_loss);
                }
            }
            AppEvent::SweepFinished { member, result } => self.on_sweep_finished(member, result),
            AppEvent::Scoring(rows) => {
                self.scoring = Some(rows);
                self.status = format!("scoring… {rows} rows");
            }
            AppEvent::Scored(result) => self.on_scored(result),
            AppEvent::Runs(runs) => self.on_runs(runs),
            AppEvent::PreviousRun(report) => self.on_previous_run(report),
        }
    }

    /// The supervisor's view of the services: the ready line once all are, stale errors gone
    /// once serve is back.
    fn on_services(&mut self, services: Vec<ServiceSnapshot>) {
        let was_ready = self.all_ready();
        let serve_ready = |services: &[ServiceSnapshot]| {
            services.iter().any(|s| s.name == ServiceName::Serve && s.status == Status::Ready)
        };
        let serve_was_ready = serve_ready(&self.services);
        self.services = services;
        self.selected = self.selected.min(self.services.len().saturating_sub(1));
        // A failure's reason stays on the status line: it is what the person must read.
        if !was_ready
            && self.all_ready()
            && !self.training
            && self.queued_train.is_none()
            && !self.status.starts_with(RUN_FAILED)
        {
            self.status = "all services ready — press t to train".into();
        }
        // An error answered while serve was down is stale once it is back.
        if !serve_was_ready && serve_ready(&self.services) {
            self.answers.retain(|a| a.result.is_ok());
        }
    }

    /// The shown service's log lines, made readable once as they arrive, not on every frame.
    fn on_logs(&mut self, name: ServiceName, lines: Vec<LogLine>) {
        if self.selected_service() == Some(name) {
            // Read once as they arrive, not on every frame.
            self.logs = lines
                .into_iter()
                .map(|l| LogLine { text: readable_log_line(&l.text), ..l })
                .collect();
        }
    }

    /// A run's end: its report shown and what it came to on the status line, or why it failed.
    fn on_run_finished(&mut self, result: Result<Box<RunReport>, String>) {
        self.training = false;
        self.pace = None;
        self.job = None;
        match result {
            Ok(report) => {
                let served_ms = report.train_to_served_ms;
                let since_key = self.train_pressed.map(|t| t.elapsed());
                self.feature_names = report.feature_names.clone();
                // A run that reproduced a version already registered neither promotes
                // nor demotes it: what it is comes from the aliases.
                let is_stable =
                    report.promoted || report.stable_version == Some(report.model.version);
                let kept = match (report.stop_reason, report.model.fit.kept_epoch) {
                    (StopReason::Cancelled, Some(kept)) => {
                        format!("stopped at epoch {}, epoch {kept} kept: ", report.loss_curve.len())
                    }
                    (StopReason::Cancelled, None) => {
                        format!("stopped at epoch {}, kept: ", report.loss_curve.len())
                    }
                    _ => String::new(),
                };
                self.status = format!(
                    "{kept}v{} {} — answering {} after the keypress (train→served {:.0} ms)",
                    report.model.version,
                    if is_stable { "is stable" } else { "is the candidate" },
                    since_key.map_or_else(|| "-".into(), |d| format!("{} ms", d.as_millis())),
                    served_ms
                );
                self.last_report = Some(*report);
            }
            Err(e) if e.contains("cancelled") => {
                self.status = format!(
                    "training cancelled at epoch {}; no version was made",
                    self.train_curve.len()
                );
            }
            Err(e) => self.status = format!("{RUN_FAILED}: {e}"),
        }
    }

    /// An alias's answer to the predict box; the point marked on the fitted curve when it is
    /// the curve's version.
    fn on_predicted(&mut self, alias: String, result: Result<(f64, String), String>) {
        // The queried point is marked on the fitted curve only when the version that
        // answered is the one the curve is drawn from (stable may be another version).
        let shown = self.evaluation.as_ref().map(|e| e.version);
        if let (Some([Value::Number(x)]), Ok((p, version))) = (self.last_query.as_deref(), &result)
            && version.parse::<u32>().ok() == shown
        {
            self.fit_query = Some((*x, *p));
        }
        // A passing remark about an earlier key ("nothing is training") is stale once
        // serve has answered; what the answer is, is news.
        if let Ok((p, version)) = &result
            && TRANSIENT_STATUS.contains(&self.status.as_str())
        {
            self.status = format!("{alias} v{version} answered {p:.4}");
        }
        self.answers.retain(|a| a.alias != alias);
        self.answers.push(Answer { alias, result, classes: Vec::new() });
        self.answers.sort_by(|a, b| b.alias.cmp(&a.alias)); // stable before candidate
    }

    /// A K-class model's answer: a bar per class, the most probable named on the status line.
    fn on_predicted_classes(
        &mut self,
        alias: String,
        result: Result<(Vec<ClassProbability>, String), String>,
    ) {
        let (result, classes) = match result {
            Ok((classes, version)) => {
                let top = classes.iter().map(|c| c.probability).fold(f64::NAN, f64::max);
                (Ok((top, version)), classes)
            }
            Err(e) => (Err(e), Vec::new()),
        };
        let probabilities: Vec<f64> = classes.iter().map(|c| c.probability).collect();
        if let (Ok((p, version)), Some(best)) =
            (&result, classes.get(logitflow_core::metrics::most_probable(&probabilities)))
            && TRANSIENT_STATUS.contains(&self.status.as_str())
        {
            self.status = format!("{alias} v{version} answered {} {p:.4}", best.class);
        }
        self.answers.retain(|a| a.alias != alias);
        self.answers.push(Answer { alias, result, classes });
        self.answers.sort_by(|a, b| b.alias.cmp(&a.alias));
    }

    /// The registry's versions; answers and advice are stale once an alias has moved.
    fn on_models(&mut self, versions: ModelVersions) {
        // Answers name the version each alias served when asked: once an alias moves
        // (promote, rollback, a new run), they are stale.
        if self.versions.as_ref().is_some_and(|v| v.entry.aliases != versions.entry.aliases) {
            self.answers.clear();
            self.advice = None;
        }
        self.versions = Some(versions);
    }

    /// A sweep member's end; once the last has ended, the best member's run is the one shown.
    fn on_sweep_finished(&mut self, member: usize, result: Result<Box<RunReport>, String>) {
        let Some(sweep) = self.sweep.as_mut() else { return };
        sweep.finished(member, result);
        if !sweep.running() {
            let best = sweep
                .best_version()
                .map(|(i, v)| format!("best: v{v} ({})", sweep.members[i].describe()));
            let status = format!(
                "sweep done — {}; S shows it, P there promotes the best",
                best.unwrap_or_else(|| "every member failed".into())
            );
            // The best member's run is the one the panels show: its curves, its model,
            // its features (a sweep may be the session's first training). The Model
            // panel reads the last evaluation first: that was an earlier run's.
            let report = sweep.best_version().and_then(|(i, _)| sweep.members[i].report.clone());
            if let Some(report) = report {
                self.evaluation = None;
                self.on_event(AppEvent::PreviousRun(report));
            }
            self.status = status;
        }
    }

    /// A batch scoring's end, on the status line.
    fn on_scored(&mut self, result: Result<(usize, String, PathBuf), String>) {
        self.scoring = None;
        self.status = match result {
            Ok((rows, version, out)) => format!(
                "scored {rows} rows with {} v{version} → {}",
                self.model_name,
                out.display()
            ),
            Err(e) => format!("scoring failed: {e}"),
        };
    }

    /// The kept runs for the runs view: sorted, the selection and marks kept where they still
    /// can be.
    fn on_runs(&mut self, runs: Vec<RunReport>) {
        let view = &mut self.overlays.runs;
        view.runs = Some(runs);
        view.sort();
        let count = view.runs.as_ref().map_or(0, Vec::len);
        view.selected = view.selected.min(count.saturating_sub(1));
        let ids: Vec<String> = view.runs.iter().flatten().map(|r| r.run_id.clone()).collect();
        view.marked.retain(|m| ids.contains(m));
    }

    /// A run to show as if just finished: its curves, features and report.
    fn on_previous_run(&mut self, report: Box<RunReport>) {
        self.train_curve =
            report.loss_curve.iter().map(|p| (p.epoch as f64, p.train_loss)).collect();
        self.val_curve = report
            .loss_curve
            .iter()
            .filter_map(|p| p.val_loss.map(|v| (p.epoch as f64, v)))
            .collect();
        self.rebuild_chart();
        self.feature_names = report.feature_names.clone();
        self.last_report = Some(*report);
    }

    fn on_pipeline(&mut self, event: PipelineEvent) {
        match event {
            PipelineEvent::StageStarted(stage) => self.set_stage(stage, StageState::Running),
            PipelineEvent::StageFinished { stage, ms, cached, detail } => {
                self.set_stage(stage, StageState::Done { ms, cached, detail })
            }
            PipelineEvent::StageFailed { stage, error } => {
                self.set_stage(stage, StageState::Failed(error.clone()));
                self.status = format!("{} failed: {error}", stage.as_str());
            }
            PipelineEvent::TrainStarted { job } => self.job = Some(job),
            PipelineEvent::Epoch(e) => {
                // The series are built here, as data arrives, not in render.
                self.train_curve.push((e.epoch as f64, e.train_loss));
                if let Some(v) = e.val_loss {
                    self.val_curve.push((e.epoch as f64, v));
                }
                self.chart.push(e.epoch as f64, e.train_loss, e.val_loss);
                if let Some(point) = &e.path {
                    self.path.push(point);
                }
                self.pace = super::chart::pace(e.epoch, e.elapsed_ms, self.epochs_planned);
            }
            PipelineEvent::Evaluated(evaluation) => {
                self.feature_names = if evaluation.feature_names.is_empty() {
                    evaluation.coefficients.keys().cloned().collect()
                } else {
                    evaluation.feature_names.clone()
                };
                self.set_fit_chart(&evaluation);
                self.evaluation = Some(*evaluation);
            }
            PipelineEvent::Served(_) => {}
        }
    }

    /// The fitted sigmoid over the sample's range, for a one-feature model.
    fn set_fit_chart(&mut self, evaluation: &Evaluation) {
        // A point answered by the version drawn before does not belong on the new curve.
        self.fit_query = None;
        self.fit_points = evaluation.sample.clone();
        self.fit_curve.clear();
        let theta = evaluation.coefficients.values().next().copied();
        let (lo, hi) = self
            .fit_points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
        if let (Some(theta), true) = (theta, lo < hi) {
            self.fit_curve = (0..=100)
                .map(|i| lo + (hi - lo) * f64::from(i) / 100.0)
                .map(|x| (x, logitflow_core::logistic::sigmoid(evaluation.intercept + theta * x)))
                .collect();
        }
    }

    fn set_stage(&mut self, stage: Stage, state: StageState) {
        if let Some(slot) = self.stages.iter_mut().find(|(s, _)| *s == stage) {
            slot.1 = state;
        }
    }

    fn start_training(&mut self, params: TrainParams) -> Option<Action> {
        if self.training {
            self.status = ALREADY_TRAINING.into();
            return None;
        }
        if !self.all_ready() {
            let waiting: Vec<&str> = self
                .services
                .iter()
                .filter(|s| s.status != Status::Ready)
                .map(|s| s.name.as_str())
                .collect();
            self.status = if waiting.is_empty() {
                "training starts once the services are up".into()
            } else {
                format!(
                    "training starts once every service is ready (waiting for {})",
                    waiting.join(", ")
                )
            };
            self.queued_train = Some(params);
            return None;
        }
        self.params = params.clone();
        self.training = true;
        self.train_pressed = Some(Instant::now());
        if !self.train_curve.is_empty() {
            self.previous_curve = std::mem::take(&mut self.train_curve);
        }
        self.val_curve.clear();
        self.path = super::path::PathChart::default();
        self.epochs_planned = params.epochs;
        self.pace = None;
        self.rebuild_chart();
        self.stages = Stage::STAGES.iter().map(|s| (*s, StageState::Waiting)).collect();
        self.status = format!(
            "training with {} (lr {}, {} epochs)…",
            params.solver, params.learning_rate, params.epochs
        );
        Some(Action::Train(params))
    }

    /// The coefficient table of the version the Model panel shows, when it has one.
    /// Why `C` has no table to show: no model yet, or a fit whose statistics are withheld (an
    /// iterative fit away from the optimum says how far, a penalised one why).
    fn why_no_coefficient_table(&self) -> String {
        let Some(report) = &self.last_report else {
            return "no coefficients yet: t trains a model".into();
        };
        let fit = &report.model.fit;
        let gap =
            fit.optimality.as_ref().map_or_else(String::new, |o| format!(" ({})", o.describe()));
        let why = fit.statistics_note.as_deref().unwrap_or("not given");
        format!("no coefficient table for v{}: standard errors {why}{gap}", report.model.version)
    }

    /// The rows of the shown version's coefficient table: every term, but only the largest
    /// of a column held as sparse terms ([`FitReport::shown_terms`]).
    ///
    /// [`FitReport::shown_terms`]: logitflow_core::inference::FitReport::shown_terms
    pub fn shown_terms(&self) -> Option<Vec<&logitflow_core::inference::TermStatistics>> {
        if let Some((table, _)) = self.shown_class_table() {
            return Some(table.terms.iter().collect());
        }
        self.shown_report().map(|r| r.model.fit.shown_terms().0).filter(|t| !t.is_empty())
    }

    /// What [`App::shown_terms`] leaves out, a line for each sparse column.
    pub fn left_out_terms(&self) -> Vec<String> {
        self.shown_report().map(|r| r.model.fit.shown_terms().1).unwrap_or_default()
    }

    /// The last run's report, when it is of the version shown.
    fn shown_report(&self) -> Option<&RunReport> {
        let version = self
            .evaluation
            .as_ref()
            .map(|e| e.version)
            .or(self.last_report.as_ref().map(|r| r.model.version));
        self.last_report.as_ref().filter(|r| Some(r.model.version) == version)
    }

    /// A K-class model's table shown (`K` moves to the next class), with what it is of:
    /// "Chinstrap against Adelie", or "Chinstrap" for a penalised model's estimates.
    pub fn shown_class_table(&self) -> Option<(&ClassTerms, String)> {
        let model = &self.shown_report()?.model;
        let (classes, multinomial) = (model.classes.as_ref()?, model.multinomial.as_ref()?);
        let table = multinomial.tables.get(self.class_shown % multinomial.tables.len().max(1))?;
        let names = classes.names();
        let of = match multinomial.reference() {
            Some(reference) => format!("{} against {}", names[table.class], names[reference]),
            None => names[table.class].to_string(),
        };
        Some((table, of))
    }

    /// Shows the next (or the previous) class's table of a K-class model, round the classes.
    fn step_class(&mut self, forward: bool) {
        let tables = self
            .shown_report()
            .and_then(|r| r.model.multinomial.as_ref())
            .map_or(0, |m| m.tables.len());
        if tables > 0 {
            let now = self.class_shown % tables;
            self.class_shown =
                if forward { (now + 1) % tables } else { (now + tables - 1) % tables };
            self.overlays.coefficients.scroll = 0;
        }
    }

    /// How many classes the model shown tells apart: 2, or K.
    pub fn class_count(&self) -> usize {
        let classes = self
            .evaluation
            .as_ref()
            .and_then(|e| e.classes.as_ref())
            .or(self.last_report.as_ref().and_then(|r| r.model.classes.as_ref()));
        classes.map_or(2, logitflow_core::table::Classes::count)
    }

    /// The chart's series afresh from the curves: when the view or the run changes.
    fn rebuild_chart(&mut self) {
        self.chart = super::chart::LossChart::new(
            &self.train_curve,
            &self.val_curve,
            &self.previous_curve,
            self.log_scale,
            self.loss_window,
            self.loss_smoothing,
        );
    }

    /// The epoch a stop would keep, and its loss: the lowest validation loss so far, as the
    /// fit keeps it, or the last epoch when there is no validation curve (an exact fit).
    pub fn best_epoch_so_far(&self) -> Option<(usize, f64, bool)> {
        if let Some(&(epoch, loss)) = self.val_curve.iter().min_by(|a, b| a.1.total_cmp(&b.1)) {
            return Some((epoch as usize, loss, true));
        }
        self.train_curve.last().map(|&(epoch, loss)| (epoch as usize, loss, false))
    }

    /// Handles a key; returns what the runtime must do, if anything. An open overlay takes
    /// every key; then the prediction line, when it has the focus; then the main screen.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind != crossterm::event::KeyEventKind::Press {
            return None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            // As q: while a run trains it asks first, and a second Ctrl-C is the answer.
            if self.training && self.overlay != Overlay::ConfirmQuit {
                self.overlay = Overlay::ConfirmQuit;
                return None;
            }
            self.quit = true;
            return Some(Action::Quit);
        }
        if self.overlay != Overlay::None {
            return self.on_overlay_key(key);
        }
        if self.focus == Focus::Predict {
            return self.on_predict_key(key);
        }
        self.on_main_key(key)
    }

    /// A key for the open overlay, which owns its keys.
    fn on_overlay_key(&mut self, key: KeyEvent) -> Option<Action> {
        match self.overlay {
            Overlay::ConfirmPromote => self.on_confirm_promote_key(key),
            Overlay::ConfirmCancel => self.on_confirm_cancel_key(key),
            Overlay::ConfirmQuit => self.on_confirm_quit_key(key),
            Overlay::Help => {
                self.overlay = Overlay::None;
                None
            }
            Overlay::Params => self.on_form_key(key),
            Overlay::PredictForm => self.on_predict_form_key(key),
            Overlay::Runs => self.on_runs_key(key),
            Overlay::SweepForm => self.on_sweep_form_key(key),
            Overlay::Score => self.on_score_key(key),
            Overlay::Sweep => self.on_sweep_key(key),
            Overlay::Coefficients => self.on_coefficients_key(key),
            Overlay::RunView => self.on_run_view_key(key),
            Overlay::Logs => self.on_logs_key(key),
            Overlay::None => None,
        }
    }

    /// `P` on a worse candidate: y promotes anyway, any other key does not.
    fn on_confirm_promote_key(&mut self, key: KeyEvent) -> Option<Action> {
        self.overlay = Overlay::None;
        if key.code == KeyCode::Char('y') {
            return Some(Action::Promote);
        }
        self.status = NOT_PROMOTED.into();
        None
    }

    /// `c` while training: k keeps the best epoch, d discards the run, any other key goes on.
    fn on_confirm_cancel_key(&mut self, key: KeyEvent) -> Option<Action> {
        self.overlay = Overlay::None;
        let keep_best = match key.code {
            KeyCode::Char('k') => true,
            KeyCode::Char('d') => false,
            _ => {
                self.status = TRAINING_GOES_ON.into();
                return None;
            }
        };
        // The run may have ended while the question was open.
        let Some(job) = self.job.clone().filter(|_| self.training) else {
            self.status = NOTHING_TRAINING.into();
            return None;
        };
        Some(Action::Cancel { job, keep_best })
    }

    /// `q` while training: q or y quits, any other key stays.
    fn on_confirm_quit_key(&mut self, key: KeyEvent) -> Option<Action> {
        self.overlay = Overlay::None;
        if matches!(key.code, KeyCode::Char('q') | KeyCode::Char('y')) {
            self.quit = true;
            return Some(Action::Quit);
        }
        self.status = STILL_HERE.into();
        None
    }

    /// `B`'s two paths ([`ScoreForm`]); Enter scores with stable.
    fn on_score_key(&mut self, key: KeyEvent) -> Option<Action> {
        match self.overlays.score.on_key(key, self.scoring.is_some()) {
            KeyOutcome::Stay => {}
            KeyOutcome::Close => self.overlay = Overlay::None,
            KeyOutcome::Status(status) => self.status = status,
            KeyOutcome::Score { input, output } => {
                self.overlay = Overlay::None;
                self.scoring = Some(0);
                self.status = format!("scoring {}…", input.display());
                return Some(Action::Score { input, output });
            }
        }
        None
    }

    /// The sweep: P promotes its best member, n starts another once it ends.
    fn on_sweep_key(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Char('P') => match self.sweep.as_ref().and_then(|s| s.best_version()) {
                Some((member, version)) => {
                    let described = self
                        .sweep
                        .as_ref()
                        .map(|s| s.members[member].describe())
                        .unwrap_or_default();
                    self.status =
                        format!("promoting v{version} ({described}), the lowest validation loss…");
                    self.overlay = Overlay::None;
                    return Some(Action::PromoteVersion(version));
                }
                None => self.status = "no member has finished yet".into(),
            },
            KeyCode::Char('n') if !self.sweep.as_ref().is_some_and(|s| s.running()) => {
                self.overlays.sweep = super::sweep::SweepForm::around(&self.params);
                self.overlay = Overlay::SweepForm;
            }
            _ => self.overlay = Overlay::None,
        }
        None
    }

    /// `C` ([`CoefficientsView`]); ←→ or K step through a K-class model's classes.
    fn on_coefficients_key(&mut self, key: KeyEvent) -> Option<Action> {
        let rows = self.shown_terms().map_or(0, |t| t.len());
        match self.overlays.coefficients.on_key(key, rows) {
            CoefficientsKey::Handled => {}
            CoefficientsKey::StepClass(forward) => self.step_class(forward),
            CoefficientsKey::Close => self.overlay = Overlay::None,
        }
        None
    }

    /// Two runs side by side: scroll, e exports the comparison, any other key goes back.
    fn on_run_view_key(&mut self, key: KeyEvent) -> Option<Action> {
        let comparison = self.overlays.comparison.as_mut();
        match key.code {
            KeyCode::Down => comparison
                .into_iter()
                .for_each(|c| c.scroll = (c.scroll + 1).min(c.rows.len().saturating_sub(1))),
            KeyCode::Up => {
                comparison.into_iter().for_each(|c| c.scroll = c.scroll.saturating_sub(1))
            }
            KeyCode::Char('e') => {
                if let Some((a, b)) = comparison.and_then(|c| c.pair.clone()) {
                    return Some(Action::ExportComparison(a, b));
                }
                self.status = "e exports a comparison of two runs: mark two with Space".into();
            }
            _ => self.overlay = Overlay::Runs,
        }
        None
    }

    /// A key on the main screen: a command, or the key that opens an overlay.
    fn on_main_key(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Char('q') if self.training => self.open(Overlay::ConfirmQuit),
            KeyCode::Char('q') => {
                self.quit = true;
                Some(Action::Quit)
            }
            KeyCode::Char('t') => self.start_training(self.params.clone()),
            KeyCode::Char('c') if self.job.is_some() && self.training => {
                self.open(Overlay::ConfirmCancel)
            }
            KeyCode::Char('c') => {
                self.status = NOTHING_TRAINING.into();
                None
            }
            KeyCode::Char('B') => self.open(Overlay::Score),
            KeyCode::Char('S') => self.open_sweep(),
            KeyCode::Char('K') => self.show_next_class(),
            KeyCode::Char('C') => self.open_coefficients(),
            KeyCode::Char('R') => {
                self.overlay = Overlay::Runs;
                Some(Action::LoadRuns)
            }
            KeyCode::Char('h') => {
                self.overlays.params = ParamsForm::from(&self.params, &self.row_roles);
                self.open(Overlay::Params)
            }
            KeyCode::Char('p') | KeyCode::Char('/') => self.open_prediction(),
            KeyCode::Char('P') if self.worse_candidate().is_some() => {
                self.open(Overlay::ConfirmPromote)
            }
            KeyCode::Char('P') => Some(Action::Promote),
            KeyCode::Char('b') => Some(Action::Rollback),
            KeyCode::Char('e') => Some(Action::Export { log_scale: self.log_scale }),
            KeyCode::Char('l') => self.toggle_chart(|app| &mut app.log_scale),
            KeyCode::Char('w') => self.toggle_chart(|app| &mut app.loss_window),
            KeyCode::Char('m') => self.toggle_chart(|app| &mut app.loss_smoothing),
            KeyCode::Char('?') => self.open(Overlay::Help),
            KeyCode::Char('r') => self.selected_service().map(Action::Restart),
            KeyCode::Char('s') => {
                let s = self.services.get(self.selected)?;
                let stopped = matches!(s.status, Status::Stopped | Status::Failed);
                Some(Action::StopStart(s.name, stopped))
            }
            KeyCode::Enter | KeyCode::Char('L') => {
                let name = self.selected_service()?;
                self.overlay = Overlay::Logs;
                self.overlays.logs.scroll = 0;
                Some(Action::ShowLogs(name))
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                None
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(self.services.len().saturating_sub(1));
                None
            }
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = Focus::Predict;
                None
            }
            _ => None,
        }
    }

    /// Opens `overlay`, which asks nothing of the runtime.
    fn open(&mut self, overlay: Overlay) -> Option<Action> {
        self.overlay = overlay;
        None
    }

    /// `S`: the sweep running or done, or the form for a new one.
    fn open_sweep(&mut self) -> Option<Action> {
        if self.sweep.is_some() {
            return self.open(Overlay::Sweep);
        }
        self.overlays.sweep = super::sweep::SweepForm::around(&self.params);
        self.open(Overlay::SweepForm)
    }

    /// `K`: a K-class model's next class in the Model panel, named in the status line.
    fn show_next_class(&mut self) -> Option<Action> {
        self.step_class(true);
        self.status = match self.shown_class_table() {
            Some((_, of)) => format!("coefficients of {of}"),
            None => "K shows a K-class model's next class; this model has two".to_string(),
        };
        None
    }

    /// `C`: the whole coefficient table from its top, or why there is none.
    fn open_coefficients(&mut self) -> Option<Action> {
        if self.shown_terms().is_none() {
            self.status = self.why_no_coefficient_table();
            return None;
        }
        self.overlays.coefficients.scroll = 0;
        self.open(Overlay::Coefficients)
    }

    /// `p`: one line takes one value well; many features take a field each.
    fn open_prediction(&mut self) -> Option<Action> {
        if self.feature_names.len() <= 1 {
            self.focus = Focus::Predict;
            return None;
        }
        if self.overlays.predict.values.len() != self.feature_names.len() {
            self.overlays.predict = PredictForm {
                values: vec![String::new(); self.feature_names.len()],
                ..PredictForm::default()
            };
        }
        self.open(Overlay::PredictForm)
    }

    /// Flips one of the loss chart's switches and redraws it.
    fn toggle_chart(&mut self, switch: fn(&mut App) -> &mut bool) -> Option<Action> {
        let on = switch(self);
        *on = !*on;
        self.rebuild_chart();
        None
    }

    /// The names of class 0 and class 1, as the data has them: the decision words.
    pub fn class_names(&self) -> (&str, &str) {
        let classes = self
            .evaluation
            .as_ref()
            .and_then(|e| e.classes.as_ref())
            .or(self.last_report.as_ref().and_then(|r| r.model.classes.as_ref()));
        match classes {
            Some(c) => (&c.negative, &c.positive),
            None => ("negative", "positive"),
        }
    }

    fn on_predict_key(&mut self, key: KeyEvent) -> Option<Action> {
        /// Enough for a row of many features written out in full.
        const MAX_PREDICT_INPUT: usize = 4096;
        match key.code {
            KeyCode::Esc | KeyCode::Tab | KeyCode::BackTab => self.focus = Focus::Services,
            KeyCode::Backspace => {
                self.predict_input.pop();
            }
            // Text too: a categorical feature's value is one of its levels.
            KeyCode::Char(c) if !c.is_control() && self.predict_input.len() < MAX_PREDICT_INPUT => {
                self.predict_input.push(c);
            }
            KeyCode::Enter => match crate::cli::parse_row(self.predict_input.trim()) {
                Ok(row)
                    if !self.feature_names.is_empty() && row.len() != self.feature_names.len() =>
                {
                    self.status = format!(
                        "enter {} value(s), comma-separated: {}",
                        self.feature_names.len(),
                        self.feature_names.join(", ")
                    );
                }
                Ok(row) => {
                    self.last_query = Some(row.clone());
                    let mut aliases = vec!["stable".to_string()];
                    if self.has_candidate() {
                        aliases.push("candidate".into());
                    }
                    return Some(Action::Predict(row, aliases));
                }
                Err(e) => self.status = format!("cannot predict: {e}"),
            },
            _ => {}
        }
        None
    }

    fn on_sweep_form_key(&mut self, key: KeyEvent) -> Option<Action> {
        let form = &mut self.overlays.sweep;
        let last = super::sweep::SweepForm::LABELS.len() - 1;
        match key.code {
            KeyCode::Esc => self.overlay = Overlay::None,
            KeyCode::Up | KeyCode::BackTab => form.selected = form.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Tab => form.selected = (form.selected + 1).min(last),
            KeyCode::Backspace => {
                form.fields[form.selected].pop();
            }
            KeyCode::Char(c) if !c.is_control() && form.fields[form.selected].len() < 80 => {
                form.fields[form.selected].push(c)
            }
            KeyCode::Enter => {
                if self.training || self.sweep.as_ref().is_some_and(|s| s.running()) {
                    form.error = Some("wait for the run in progress to end".into());
                    return None;
                }
                match form.grid(&self.params) {
                    Ok(grid) => {
                        form.error = None;
                        self.status = format!("sweeping {} combinations…", grid.len());
                        self.sweep = Some(super::sweep::Sweep::new(grid.clone()));
                        self.overlay = Overlay::Sweep;
                        return Some(Action::Sweep(grid));
                    }
                    Err(e) => form.error = Some(e),
                }
            }
            _ => {}
        }
        None
    }

    fn on_runs_key(&mut self, key: KeyEvent) -> Option<Action> {
        let view = &mut self.overlays.runs;
        if view.filtering {
            match key.code {
                KeyCode::Enter | KeyCode::Esc => view.filtering = false,
                KeyCode::Backspace => {
                    view.filter.pop();
                }
                KeyCode::Char(c) if !c.is_control() && view.filter.len() < 64 => {
                    view.filter.push(c)
                }
                _ => {}
            }
            view.selected = view.selected.min(view.visible().len().saturating_sub(1));
            return None;
        }
        let count = view.visible().len();
        match key.code {
            KeyCode::Char('/') => view.filtering = true,
            KeyCode::Esc | KeyCode::Char('q') => self.overlay = Overlay::None,
            KeyCode::Up => view.selected = view.selected.saturating_sub(1),
            KeyCode::Down => view.selected = (view.selected + 1).min(count.saturating_sub(1)),
            KeyCode::Char('s') => {
                view.order = view.order.next();
                view.sort();
            }
            KeyCode::Char(' ') => {
                if let Some(id) = view.selected_run().map(|r| r.run_id.clone()) {
                    if let Some(at) = view.marked.iter().position(|m| *m == id) {
                        view.marked.remove(at);
                    } else {
                        // A third mark replaces the older of the two.
                        if view.marked.len() == 2 {
                            view.marked.remove(0);
                        }
                        view.marked.push(id);
                    }
                }
            }
            KeyCode::Enter => {
                let runs = view.runs.as_deref().unwrap_or_default();
                let find = |id: &String| runs.iter().find(|r| r.run_id == *id);
                // Marked runs stay marked when the filter hides them.
                let comparison = match view.marked.as_slice() {
                    [a, b] => find(a).zip(find(b)).map(|(a, b)| RunComparison::of(a, Some(b))),
                    _ => view.selected_run().map(|r| RunComparison::of(r, None)),
                };
                if comparison.is_some() {
                    self.overlays.comparison = comparison;
                    self.overlay = Overlay::RunView;
                }
            }
            // Train again with the selected run's parameters.
            KeyCode::Char('t') => {
                if let Some(params) = view.selected_run().map(|r| r.params.clone()) {
                    self.overlay = Overlay::None;
                    return self.start_training(params);
                }
            }
            _ => {}
        }
        None
    }

    /// The levels of a categorical feature, as the data has them.
    pub fn levels_of(&self, feature: &str) -> Option<&[String]> {
        self.last_report.as_ref()?.data_summary.categorical.get(feature).map(Vec::as_slice)
    }

    /// The level ← or → (`code`) steps a categorical field `selected` to, from the one it
    /// holds; `None` for another key or field. Only that level is copied, not the column's
    /// levels (5,000 of them, for a column held sparse).
    fn stepped_level(&self, selected: usize, code: KeyCode) -> Option<String> {
        if !matches!(code, KeyCode::Left | KeyCode::Right) {
            return None;
        }
        let levels = self.levels_of(self.feature_names.get(selected)?)?;
        let value = self.overlays.predict.values.get(selected)?.trim();
        let at = levels.iter().position(|l| l == value);
        let next = match (at, code) {
            _ if levels.is_empty() => return None,
            (None, KeyCode::Left) => levels.len() - 1,
            (None, _) => 0,
            (Some(i), KeyCode::Left) => (i + levels.len() - 1) % levels.len(),
            (Some(i), _) => (i + 1) % levels.len(),
        };
        Some(levels[next].clone())
    }

    fn on_predict_form_key(&mut self, key: KeyEvent) -> Option<Action> {
        let last = self.feature_names.len().saturating_sub(1);
        let selected = self.overlays.predict.selected.min(last);
        let stepped = self.stepped_level(selected, key.code);
        let form = &mut self.overlays.predict;
        form.error = None;
        match key.code {
            KeyCode::Esc => self.overlay = Overlay::None,
            KeyCode::Up | KeyCode::BackTab => form.selected = selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Tab | KeyCode::Char(',') => {
                form.selected = (selected + 1).min(last)
            }
            KeyCode::PageUp => form.selected = selected.saturating_sub(10),
            KeyCode::PageDown => form.selected = (selected + 10).min(last),
            // A categorical field steps through its levels.
            KeyCode::Left | KeyCode::Right if stepped.is_some() => {
                form.values[selected] = stepped.unwrap_or_default();
            }
            KeyCode::Backspace => {
                form.values[selected].pop();
            }
            KeyCode::Char(c)
                if !c.is_control() && form.values[selected].len() < PredictForm::MAX_VALUE =>
            {
                form.values[selected].push(c);
            }
            KeyCode::Enter => match form.row(
                &self.feature_names,
                self.last_report.as_ref().map(|r| &r.data_summary.categorical),
            ) {
                Ok(row) => {
                    self.overlay = Overlay::None;
                    self.last_query = Some(row.clone());
                    let mut aliases = vec!["stable".to_string()];
                    if self.has_candidate() {
                        aliases.push("candidate".into());
                    }
                    return Some(Action::Predict(row, aliases));
                }
                Err(e) => form.error = Some(e),
            },
            _ => {}
        }
        None
    }

    fn on_form_key(&mut self, key: KeyEvent) -> Option<Action> {
        let form = &mut self.overlays.params;
        match key.code {
            KeyCode::Esc => self.overlay = Overlay::None,
            KeyCode::Up | KeyCode::BackTab => form.selected = form.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Tab => {
                form.selected = (form.selected + 1).min(ParamsForm::LABELS.len() - 1)
            }
            KeyCode::Left | KeyCode::Right | KeyCode::Char(' ') if form.selected == 0 => {
                form.solver = step_through(&Solver::ALL, form.solver, key.code == KeyCode::Left);
            }
            KeyCode::Left | KeyCode::Right | KeyCode::Char(' ')
                if form.selected == ParamsForm::COVARIANCE =>
            {
                form.covariance =
                    step_through(&Covariance::ALL, form.covariance, key.code == KeyCode::Left);
                form.error = form.parse(&self.params).err();
            }
            KeyCode::Left | KeyCode::Right | KeyCode::Char(' ')
                if form.selected == ParamsForm::PENALTY =>
            {
                form.penalty = step_through(&Penalty::ALL, form.penalty, key.code == KeyCode::Left);
                form.error = form.parse(&self.params).err();
            }
            KeyCode::Backspace if form.typed_into().is_some() => {
                if let Some(field) = form.typed_into() {
                    form.fields[field].pop();
                }
                form.error = form.parse(&self.params).err();
            }
            KeyCode::Char(c)
                if form.typed_into().is_some()
                    && (c.is_ascii_alphanumeric() || ".-+_".contains(c)) =>
            {
                if let Some(field) = form.typed_into().filter(|&f| form.fields[f].len() < 24) {
                    form.fields[field].push(c);
                }
                form.error = form.parse(&self.params).err();
            }
            KeyCode::Enter => match form.parse(&self.params) {
                Ok(params) => {
                    self.overlay = Overlay::None;
                    self.row_roles = form.roles(&self.row_roles);
                    return self.start_training(params);
                }
                Err(e) => form.error = Some(e),
            },
            _ => {}
        }
        None
    }

    /// A service's log ([`LogView`]).
    fn on_logs_key(&mut self, key: KeyEvent) -> Option<Action> {
        if self.overlays.logs.on_key(key) == KeyOutcome::Close {
            self.overlay = Overlay::None;
        }
        None
    }

    /// The log lines to show: matching the search, if any.
    pub fn visible_logs(&self) -> Vec<&LogLine> {
        self.logs.iter().filter(|l| self.overlays.logs.shows(&l.text)).collect()
    }

    /// Sets "now" (on each tick), for uptimes.
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
    }

    pub fn uptime(&self, s: &ServiceSnapshot) -> Option<Duration> {
        s.started
            .filter(|_| s.status == Status::Ready || s.status == Status::Unhealthy)
            .map(|t| self.now.saturating_duration_since(t))
    }
}

/// A service's JSON log line (tracing's format) as a person reads it: the time of day, the
/// level, the message, then the other fields as `key=value` — so what matters fits the pane,
/// where the raw JSON showed only its timestamp and target. Anything else is kept as it is.
pub fn readable_log_line(text: &str) -> String {
    let Ok(serde_json::Value::Object(line)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return text.to_string();
    };
    let plain = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let mut out = String::new();
    if let Some(time) = line.get("timestamp").and_then(|t| t.as_str()) {
        // 2026-12-01T12:01:02.123456Z → 12:01:02.123
        let clock = time.split_once('T').map_or(time, |(_, t)| t);
        out.push_str(clock.get(..12).unwrap_or(clock).trim_end_matches('Z'));
        out.push(' ');
    }
    if let Some(level) = line.get("level") {
        out.push_str(&format!("{:<5} ", plain(level)));
    }
    let fields = line.get("fields").and_then(|f| f.as_object());
    let others =
        fields
            .into_iter()
            .flatten()
            .chain(line.iter().filter(|(k, _)| {
                !["timestamp", "level", "fields", "target"].contains(&k.as_str())
            }));
    if let Some(message) = fields.and_then(|f| f.get("message")).or_else(|| line.get("message")) {
        out.push_str(&plain(message));
    }
    for (key, value) in others.filter(|(k, _)| k.as_str() != "message") {
        out.push_str(&format!(" {key}={}", plain(value)));
    }
    out.trim().to_string()
}

/// What an export wrote, to fit the status line: the directory, the files' shared stem and
/// their names grouped (six whole paths did not fit, and the line was cut in the first).
fn exported_status(paths: &[PathBuf]) -> String {
    let dir = paths
        .first()
        .and_then(|p| p.parent())
        .map_or_else(String::new, |d| d.display().to_string());
    let names: Vec<String> = paths
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    // The run id is `<millis>-<hex>`: the stem is the name up to its second `-`.
    let stem = names
        .first()
        .and_then(|n| n.match_indices('-').nth(1))
        .map_or("", |(at, _)| &names[0][..at])
        .to_string();
    let suffixes: Vec<&str> =
        names.iter().map(|n| n.strip_prefix(&format!("{stem}-")).unwrap_or(n)).collect();
    format!("exported {} files to {dir}/: {stem}-{}", paths.len(), grouped_names(&suffixes))
}

/// File names as brace groups: `{loss,roc}.{csv,png,svg}` when every name has every extension,
/// else each name with its own, `{loss.csv,loss-log.{png,svg},roc.{csv,png,svg}}`.
pub(crate) fn grouped_names(names: &[&str]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for name in names {
        let (base, extension) = name.rsplit_once('.').unwrap_or((name, ""));
        match groups.iter_mut().find(|(b, _)| *b == base) {
            Some((_, extensions)) => extensions.push(extension),
            None => groups.push((base, vec![extension])),
        }
    }
    let braced = |items: Vec<String>| {
        if items.len() == 1 { items.concat() } else { format!("{{{}}}", items.join(",")) }
    };
    let first = groups.first().map(|(_, e)| e.clone()).unwrap_or_default();
    if groups.len() > 1 && first.len() > 1 && groups.iter().all(|(_, e)| *e == first) {
        let bases = braced(groups.iter().map(|(b, _)| b.to_string()).collect());
        return format!("{bases}.{}", braced(first.iter().map(|e| e.to_string()).collect()));
    }
    braced(
        groups
            .into_iter()
            .map(|(base, extensions)| {
                format!("{base}.{}", braced(extensions.into_iter().map(String::from).collect()))
            })
            .collect(),
    )
}
