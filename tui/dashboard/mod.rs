//! The terminal dashboard.
//!
//! Built like ratatui's event-driven async template: one [`Event`] channel, fed by a task
//! reading the terminal, a task watching the services ([`Services`]: the console's children,
//! or services attached by URL), a once-a-second sampler of the children's CPU and memory, and the tasks that carry out [`Action`]s (training, predicting,
//! exporting…), which report back as typed [`AppEvent`]s. State changes only in
//! [`App::on_key`] and [`App::on_event`]; drawing is `impl Widget for &App`. The screen is
//! redrawn when something changed, at most once per frame interval — never on a fast timer.

pub mod app;
pub mod chart;
pub mod overlays;
pub mod path;
pub mod sweep;
pub mod ui;

use crate::cli::DashboardArgs;
use crate::commands::{self, Home};
use crate::pipeline::{self, PipelineRequest, RunReport};
use crate::services::{Control, Services};
use crate::supervisor::ServiceName;
pub use app::{Action, App, AppEvent};
use futures::StreamExt;
use logitflow_core::logistic::TrainParams;
use logitflow_core::scale::Value;
use logitflow_core::table::CsvOptions;
use logitflow_kit::wire::{
    LoadInfo, ModelVersions, PredictRequest, PredictResponse, PromoteRequest,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Everything the event loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// Once a second: uptimes move on.
    Tick,
    Crossterm(crossterm::event::Event),
    App(AppEvent),
    /// SIGTERM or SIGINT: leave as after `q`.
    Terminate,
}

/// The shortest time between two frames.
const FRAME: Duration = Duration::from_millis(33);

/// Runs the dashboard until the user quits; stops every service before returning.
///
/// Generic over the backend so that a test can draw through one that fails on cue: the
/// product always passes `ratatui::init()`'s terminal.
pub async fn run<B>(
    mut terminal: ratatui::Terminal<B>,
    home: Home,
    args: DashboardArgs,
) -> anyhow::Result<()>
where
    B: ratatui::backend::Backend,
    B::Error: Send + Sync + 'static,
{
    let request = commands::pipeline_request(&home.dir, &args.data, Vec::new())?;
    let services = commands::services_for(&home, &request, args.connect.as_deref())?;
    let result = event_loop(&mut terminal, &services, home, args, request).await;
    services.shutdown().await;
    result
}

async fn event_loop<B>(
    terminal: &mut ratatui::Terminal<B>,
    services: &Services,
    home: Home,
    args: DashboardArgs,
    request: PipelineRequest,
) -> anyhow::Result<()>
where
    B: ratatui::backend::Backend,
    B::Error: Send + Sync + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    spawn_terminal_reader(tx.clone());
    spawn_services_watcher(services.clone(), tx.clone());
    spawn_sampler(services.clone(), tx.clone());
    spawn_signal_watcher(tx.clone());
    let mut app = App::new(
        home.dir.clone(),
        request.model_name.clone(),
        request.params.clone(),
        request.threshold,
    );
    app.row_roles = request.read.roles.clone();
    // B's paths to begin with: the data trained on, scored into the exports directory.
    let stem = request
        .data
        .file_stem()
        .map_or_else(|| "data".into(), |s| s.to_string_lossy().into_owned());
    app.overlays.score.paths = [
        request.data.display().to_string(),
        args.export_dir.join(format!("{stem}-scored.csv")).display().to_string(),
    ];
    let runs_home = home.clone();
    let runs = tokio::task::spawn_blocking(move || pipeline::load_runs(&runs_home))
        .await
        .unwrap_or_default();
    if let Some(previous) = runs.into_iter().rev().find(|r| r.model.name == request.model_name) {
        app.on_event(AppEvent::PreviousRun(Box::new(previous)));
    }
    if let (Some(file), Services::Remote(_)) = (&args.connect, services) {
        app.on_event(AppEvent::Status(format!(
            "attached to the services in {}: they run elsewhere",
            file.display()
        )));
    }
    let runtime = Runtime {
        services: services.clone(),
        tx: tx.clone(),
        request,
        home,
        export_dir: args.export_dir,
    };
    let mut dirty = true;
    let mut last_frame = Instant::now() - FRAME;
    let mut fetched_models = false;
    loop {
        if dirty {
            let wait = FRAME.saturating_sub(last_frame.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            // Fold in whatever arrived meanwhile, so a burst of epochs costs one frame.
            while let Ok(event) = rx.try_recv() {
                handle(&mut app, &runtime, event);
            }
            terminal.draw(|frame| frame.render_widget(&app, frame.area()))?;
            last_frame = Instant::now();
        }
        if app.quit {
            break;
        }
        let Some(event) = rx.recv().await else { break };
        dirty = handle(&mut app, &runtime, event);
        if !fetched_models && app.all_ready() {
            fetched_models = true;
            runtime.refresh_models();
        }
        if app.quit {
            break;
        }
    }
    Ok(())
}

/// Applies one event; returns whether the screen needs redrawing.
fn handle(app: &mut App, runtime: &Runtime, event: Event) -> bool {
    match event {
        Event::Tick => app.tick(Instant::now()),
        Event::Terminate => {
            app.quit = true;
        }
        Event::Crossterm(crossterm::event::Event::Key(key)) => {
            if let Some(action) = app.on_key(key) {
                runtime.perform(app, action);
            }
        }
        Event::Crossterm(crossterm::event::Event::Resize(..)) => {}
        Event::Crossterm(_) => return false,
        Event::App(event) => {
            if let AppEvent::Services(_) = &event
                && app.overlay == app::Overlay::Logs
                && let Some(name) = app.selected_service()
            {
                app.on_event(AppEvent::Logs(name, runtime.services.logs(name, 2000)));
            }
            if let Some(action) = app.on_event(event) {
                runtime.perform(app, action);
            }
        }
    }
    true
}

fn spawn_terminal_reader(tx: mpsc::UnboundedSender<Event>) {
    tokio::spawn(async move {
        let mut events = crossterm::event::EventStream::new();
        while let Some(Ok(event)) = events.next().await {
            if tx.send(Event::Crossterm(event)).is_err() {
                break;
            }
        }
    });
}

/// Sends the services' snapshots when they change, at most four times a second.
fn spawn_services_watcher(services: Services, tx: mpsc::UnboundedSender<Event>) {
    tokio::spawn(async move {
        let mut changed = services.subscribe();
        loop {
            if tx.send(Event::App(AppEvent::Services(services.snapshots()))).is_err() {
                break;
            }
            if changed.changed().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
}

/// Samples the children's CPU and memory once a second (and ticks the uptimes).
fn spawn_sampler(services: Services, tx: mpsc::UnboundedSender<Event>) {
    tokio::spawn(async move {
        use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
        let mut system = System::new();
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        loop {
            interval.tick().await;
            let pids: Vec<Pid> = services.local_pids().into_iter().map(Pid::from_u32).collect();
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&pids),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            let stats = pids
                .iter()
                .filter_map(|p| {
                    system
                        .process(*p)
                        .map(|proc_| (p.as_u32(), (proc_.cpu_usage(), proc_.memory())))
                })
                .collect();
            if tx.send(Event::App(AppEvent::Stats(stats))).is_err() || tx.send(Event::Tick).is_err()
            {
                break;
            }
        }
    });
}

fn spawn_signal_watcher(tx: mpsc::UnboundedSender<Event>) {
    tokio::spawn(async move {
        logitflow_kit::shutdown_signal().await;
        let _ = tx.send(Event::Terminate);
    });
}

/// Carries out actions, off the event loop.
struct Runtime {
    services: Services,
    tx: mpsc::UnboundedSender<Event>,
    request: PipelineRequest,
    home: Home,
    export_dir: PathBuf,
}

impl Runtime {
    fn send(tx: &mpsc::UnboundedSender<Event>, event: AppEvent) {
        let _ = tx.send(Event::App(event));
    }

    fn client(&self, name: ServiceName) -> Result<logitflow_kit::client::ServiceClient, String> {
        self.services.client(name).ok_or_else(|| format!("{name} is not running"))
    }

    fn refresh_models(&self) {
        let (Ok(evaluate), tx, name) =
            (self.client(ServiceName::Evaluate), self.tx.clone(), self.request.model_name.clone())
        else {
            return;
        };
        let serve = self.client(ServiceName::Serve).ok();
        tokio::spawn(async move {
            if let Ok(versions) = evaluate.get::<ModelVersions>(&format!("/v1/models/{name}")).await
            {
                Self::send(&tx, AppEvent::Models(versions));
            }
            // What serve could not load, so the panel can say so.
            if let Some(serve) = serve
                && let Ok(meta) = serve
                    .get::<logitflow_kit::wire::ModelMetadata>(&format!("/v2/models/{name}"))
                    .await
            {
                Self::send(&tx, AppEvent::Unavailable(meta.unavailable));
            }
        });
    }

    fn perform(&self, app: &App, action: Action) {
        let tx = self.tx.clone();
        match action {
            Action::Quit => {}
            Action::Train(params) => self.train(app, params),
            Action::Cancel { job, keep_best } => self.cancel(job, keep_best),
            Action::Predict(row, aliases) => self.predict(app, row, aliases),
            Action::Promote | Action::PromoteVersion(_) | Action::Rollback => {
                self.change_stable(action)
            }
            Action::Export { log_scale } => self.export(app, log_scale),
            Action::ExportComparison(a, b) => self.export_comparison(a, b),
            Action::Restart(service) => {
                let said = self
                    .services
                    .control(service, Control::Restart)
                    .map(|()| format!("restarting {service}"));
                Self::send(&tx, AppEvent::Status(said.unwrap_or_else(|why| why.to_string())));
            }
            Action::StopStart(service, start) => {
                let control = if start { Control::Start } else { Control::Stop };
                let said = self
                    .services
                    .control(service, control)
                    .map(|()| format!("{} {service}", if start { "starting" } else { "stopping" }));
                Self::send(&tx, AppEvent::Status(said.unwrap_or_else(|why| why.to_string())));
            }
            Action::ShowLogs(service) => {
                Self::send(&tx, AppEvent::Logs(service, self.services.logs(service, 2000)))
            }
            Action::Sweep(grid) => self.sweep(grid),
            Action::Score { input, output } => self.score(input, output),
            Action::LoadRuns => self.load_runs(),
        }
    }

    /// `t`: the whole pipeline with these parameters, its events forwarded, and the registry's
    /// versions after it.
    fn train(&self, app: &App, params: TrainParams) {
        let tx = self.tx.clone();
        let name = self.request.model_name.clone();
        let Some(clients) = self.services.clients() else {
            Self::send(&tx, AppEvent::RunFinished(Err("a service is not running".into())));
            return;
        };
        let read = CsvOptions { roles: app.row_roles.clone(), ..self.request.read.clone() };
        let request = PipelineRequest { params, read, ..self.request.clone() };
        let (home, evaluate) = (self.home.clone(), self.client(ServiceName::Evaluate).ok());
        tokio::spawn(async move {
            let (events_tx, mut events_rx) = mpsc::unbounded_channel();
            let forward_tx = tx.clone();
            let forward = tokio::spawn(async move {
                while let Some(event) = events_rx.recv().await {
                    Self::send(&forward_tx, AppEvent::Pipeline(event));
                }
            });
            let result = pipeline::run_pipeline(&clients, &request, events_tx, Some(&home)).await;
            let _ = forward.await;
            Self::send(&tx, AppEvent::RunFinished(result.map(Box::new).map_err(|e| e.to_string())));
            if let Some(evaluate) = evaluate
                && let Ok(versions) =
                    evaluate.get::<ModelVersions>(&format!("/v1/models/{name}")).await
            {
                Self::send(&tx, AppEvent::Models(versions));
            }
        });
    }

    /// `c`: train told to stop the job, keeping its best epoch or discarding it.
    fn cancel(&self, job: String, keep_best: bool) {
        let tx = self.tx.clone();
        let Ok(train) = self.client(ServiceName::Train) else { return };
        tokio::spawn(async move {
            let path = if keep_best {
                format!("/v1/jobs/{job}?keep=best")
            } else {
                format!("/v1/jobs/{job}")
            };
            let status = match train.delete::<serde_json::Value>(&path).await {
                Ok(_) if keep_best => {
                    "stopping: the best epoch so far becomes a version".to_string()
                }
                Ok(_) => "cancelling: training stops after this epoch".to_string(),
                Err(e) => format!("cancel failed: {e}"),
            };
            Self::send(&tx, AppEvent::Status(status));
        });
    }

    /// A row to answer: advisor's decision (two classes), then each alias's answer from
    /// serve.
    fn predict(&self, app: &App, row: Vec<Value>, aliases: Vec<String>) {
        let tx = self.tx.clone();
        let name = self.request.model_name.clone();
        let Ok(serve) = self.client(ServiceName::Serve) else { return };
        // advisor answers two-class models; a K-class model's answer is its bars.
        let advisor = self.client(ServiceName::Advisor).ok().filter(|_| app.class_count() <= 2);
        let threshold = app.threshold;
        tokio::spawn(async move {
            // advisor: the decision at the threshold, and where the first numeric
            // feature flips it (the probability reaches the threshold there).
            if let Some(advisor) = advisor {
                let request = logitflow_kit::wire::AdviceRequest {
                    model: Some(name.clone()),
                    inputs: row.clone(),
                    threshold,
                    target: Some(threshold),
                    feature: None,
                    class: None,
                };
                let advice = advisor
                    .post::<_, logitflow_kit::wire::Advice>("/v1/advice", &request)
                    .await
                    .map_err(|e| e.to_string());
                Self::send(&tx, AppEvent::Advised(advice));
            }
            for alias in aliases {
                // The human route takes a row in the data's column order, text and numbers alike.
                let request = PredictRequest {
                    model: Some(name.clone()),
                    version: Some(alias.clone()),
                    inputs: Some(vec![row.clone()]),
                    features: None,
                };
                let answer = serve
                    .post::<_, PredictResponse>("/v1/predict", &request)
                    .await
                    .map_err(|e| e.to_string());
                // A K-class model answers each class's probability by name.
                if let Ok(a) = &answer
                    && !a.classes.is_empty()
                {
                    let classes = a.classes.first().cloned().unwrap_or_default();
                    let result = Ok((classes, a.model_version.clone()));
                    Self::send(&tx, AppEvent::PredictedClasses { alias, result });
                    continue;
                }
                let answer = answer.and_then(|a| {
                    let p =
                        a.probabilities.first().copied().ok_or("no probability in the answer")?;
                    Ok((p, a.model_version))
                });
                Self::send(&tx, AppEvent::Predicted { alias, result: answer });
            }
        });
    }

    /// `P`, a sweep's best or `b`: the stable alias moved, and serve told to load it.
    fn change_stable(&self, action: Action) {
        let tx = self.tx.clone();
        let name = self.request.model_name.clone();
        let (Ok(evaluate), Ok(serve)) =
            (self.client(ServiceName::Evaluate), self.client(ServiceName::Serve))
        else {
            return;
        };
        let promote = action != Action::Rollback;
        let version = if let Action::PromoteVersion(v) = action { Some(v) } else { None };
        tokio::spawn(async move {
            let changed = if promote {
                evaluate
                    .post::<_, ModelVersions>(
                        &format!("/v1/models/{name}/promote"),
                        &PromoteRequest { version },
                    )
                    .await
            } else {
                evaluate
                    .post::<_, ModelVersions>(
                        &format!("/v1/models/{name}/rollback"),
                        &serde_json::json!({}),
                    )
                    .await
            };
            let status = match changed {
                Ok(versions) => {
                    let loaded = serve
                        .post::<_, LoadInfo>(
                            &format!("/v2/repository/models/{name}/load"),
                            &serde_json::json!({}),
                        )
                        .await;
                    let stable = versions.entry.aliases.get("stable").copied().unwrap_or(0);
                    Self::send(&tx, AppEvent::Models(versions));
                    match loaded {
                        Ok(_) => format!(
                            "{} — v{stable} is stable and serving",
                            if promote { "promoted" } else { "rolled back" }
                        ),
                        Err(e) => {
                            format!("registry updated, but serve did not reload: {e}")
                        }
                    }
                }
                Err(e) => {
                    format!("{} failed: {e}", if promote { "promote" } else { "rollback" })
                }
            };
            Self::send(&tx, AppEvent::Status(status));
        });
    }

    /// `e`: the last run's figures and CSVs, written off the async workers.
    fn export(&self, app: &App, log_scale: bool) {
        let tx = self.tx.clone();
        let Some(report) = app.last_report.clone() else {
            Self::send(&tx, AppEvent::Status("nothing to export yet: train first (t)".into()));
            return;
        };
        let dir = self.export_dir.clone();
        tokio::task::spawn_blocking(move || {
            let result =
                crate::export::export_run(&report, &dir, log_scale).map_err(|e| e.to_string());
            Self::send(&tx, AppEvent::Exported(result));
        });
    }

    /// `e` in the runs view: two runs' curves in one plot.
    fn export_comparison(&self, a: Box<RunReport>, b: Box<RunReport>) {
        let tx = self.tx.clone();
        let dir = self.export_dir.clone();
        tokio::task::spawn_blocking(move || {
            let result = crate::export::export_comparison(&a, &b, &dir).map_err(|e| e.to_string());
            Self::send(&tx, AppEvent::Exported(result));
        });
    }

    /// `S`: every member of the grid trained, as many at once as there are cores.
    fn sweep(&self, grid: Vec<TrainParams>) {
        let tx = self.tx.clone();
        let Some(clients) = self.services.clients() else {
            Self::send(&tx, AppEvent::Status("a service is not running".into()));
            return;
        };
        let (base, home) = (self.request.clone(), self.home.clone());
        // As many members at once as there are cores: each fit is one core's work.
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(cores));
        for (member, params) in grid.into_iter().enumerate() {
            let (clients, tx, home, permits) =
                (clients.clone(), tx.clone(), home.clone(), permits.clone());
            let request = PipelineRequest {
                params,
                apply_decision: false,
                predict: Vec::new(),
                ..base.clone()
            };
            tokio::spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else { return };
                let (events_tx, mut events_rx) = mpsc::unbounded_channel();
                let forward_tx = tx.clone();
                let forward = tokio::spawn(async move {
                    while let Some(event) = events_rx.recv().await {
                        if let pipeline::PipelineEvent::Epoch(epoch) = event {
                            Self::send(&forward_tx, AppEvent::SweepEpoch { member, epoch });
                        }
                    }
                });
                let result =
                    pipeline::run_pipeline(&clients, &request, events_tx, Some(&home)).await;
                let _ = forward.await;
                Self::send(
                    &tx,
                    AppEvent::SweepFinished {
                        member,
                        result: result.map(Box::new).map_err(|e| e.to_string()),
                    },
                );
            });
        }
    }

    /// `B`: a CSV scored through the batch service into another, with progress.
    fn score(&self, input: PathBuf, output: PathBuf) {
        let tx = self.tx.clone();
        let name = self.request.model_name.clone();
        let Ok(batch) = self.client(ServiceName::Batch) else {
            Self::send(&tx, AppEvent::Scored(Err("the batch service is not running".into())));
            return;
        };
        tokio::spawn(async move {
            if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
                let _ = tokio::fs::create_dir_all(dir).await;
            }
            // Progress at most every 4,096 rows (a chunk of the batch service's).
            let mut last = 0;
            let progress = tx.clone();
            let scored = commands::score_file(&batch, &name, "stable", &input, &output, |rows| {
                if rows >= last + 4096 {
                    last = rows;
                    Self::send(&progress, AppEvent::Scoring(rows));
                }
            })
            .await;
            Self::send(
                &tx,
                AppEvent::Scored(
                    scored
                        .map(|(rows, version)| (rows, version, output))
                        .map_err(|e| format!("{e:#}")),
                ),
            );
        });
    }

    /// `R`: the kept runs, read off the async workers.
    fn load_runs(&self) {
        let tx = self.tx.clone();
        let home = self.home.clone();
        tokio::spawn(async move {
            let runs = tokio::task::spawn_blocking(move || pipeline::load_runs(&home))
                .await
                .unwrap_or_default();
            Self::send(&tx, AppEvent::Runs(runs));
        });
    }
}

#[cfg(test)]
mod tests;
