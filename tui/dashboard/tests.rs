//! The dashboard at three levels: widgets on buffers, whole screens as insta snapshots from a
//! `TestBackend`, and the app driven headless through its events and keys.

use super::app::{Action, App, AppEvent, Focus, Overlay, StageState};
use crate::pipeline::{PipelineEvent, Stage};
use crate::supervisor::{ServiceName, ServiceSnapshot, Status};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use logitflow_core::logistic::{EpochEvent, Solver, TrainParams};
use logitflow_core::metrics::{Confusion, Metrics};
use logitflow_core::scale::Value;
use logitflow_core::table::Classes;
use logitflow_kit::wire::{Evaluation, RowCounts, VersionMetrics};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use std::time::{Duration, Instant};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ready_services(now: Instant) -> Vec<ServiceSnapshot> {
    ServiceName::ALL
        .iter()
        .enumerate()
        .map(|(i, &name)| ServiceSnapshot {
            grpc_addr: None,
            name,
            status: Status::Ready,
            pid: Some(4000 + i as u32),
            addr: Some(format!("127.0.0.1:{}", 41000 + i).parse().expect("addr")),
            started: Some(now - Duration::from_secs(65)),
            restarts: 0,
            last_probe: Some(Duration::from_micros(1200)),
            last_error: None,
            reported_memory: None,
        })
        .collect()
}

fn metrics(accuracy: f64, log_loss: f64) -> Metrics {
    Metrics {
        rows: 400,
        threshold: 0.5,
        accuracy,
        precision: 0.9190,
        recall: 0.9554,
        f1: 0.9369,
        auc: 0.9893,
        log_loss,
        brier: 0.043,
        confusion: Confusion { tp: 193, fp: 17, tn: 181, fn_: 9 },
        pr_auc: 0.9871,
        suggested_thresholds: None,
        multiclass: None,
    }
}

fn evaluation(version: u32) -> Evaluation {
    Evaluation {
        name: "admissions".into(),
        version,
        new_version: true,
        metrics: metrics(0.935, 0.1358),
        roc: Vec::new(),
        precision_recall: Vec::new(),
        calibration: Vec::new(),
        previous: (version > 1)
            .then(|| VersionMetrics { version: version - 1, metrics: metrics(0.9325, 0.1366) }),
        promoted: true,
        decision: "promoted".into(),
        alias: Some("stable".into()),
        applied: true,
        report: "r".repeat(64),
        intercept: -9.87,
        coefficients: [("score".to_string(), 0.1976)].into(),
        sample: (0..40).map(|i| (f64::from(i) * 2.5, f64::from(u8::from(i > 20)))).collect(),
        feature_names: vec!["score".into()],
        fit: Default::default(),
        classes: Some(Classes::for_numeric_label("admitted")),
        rows: RowCounts { train: 1440, validation: 160, test: 400 },
        multinomial: None,
        class_curves: Vec::new(),
        unscored: None,
    }
}

fn epoch(n: usize, train: f64, val: f64) -> AppEvent {
    AppEvent::Pipeline(PipelineEvent::Epoch(EpochEvent {
        epoch: n,
        train_loss: train,
        val_loss: Some(val),
        grad_norm: 0.1,
        elapsed_ms: n as f64,
        path: None,
    }))
}

/// The seed's solver, which the runs these tests replay used: a validation curve, an early stop.
fn sgd_params() -> TrainParams {
    TrainParams { solver: Solver::Sgd, ..TrainParams::default() }
}

/// An app as it is after one training run (sgd's), with everything deterministic.
fn trained_app() -> App {
    let mut app = App::new("/home/test".into(), "admissions".into(), sgd_params(), 0.5);
    let now = app.now;
    app.on_event(AppEvent::Services(ready_services(now)));
    assert_eq!(app.on_key(key(KeyCode::Char('t'))), Some(Action::Train(sgd_params())));
    for stage in Stage::STAGES {
        app.on_event(AppEvent::Pipeline(PipelineEvent::StageStarted(stage)));
        if stage == Stage::Train {
            for n in 1..=30 {
                let x = n as f64;
                app.on_event(epoch(n, 0.17 + 0.05 / x, 0.15 + 0.04 / x));
            }
        }
        app.on_event(AppEvent::Pipeline(PipelineEvent::StageFinished {
            stage,
            ms: 10.0 + stage as u8 as f64,
            cached: stage == Stage::Ingest,
            detail: String::new(),
        }));
    }
    let evaluated = evaluation(1);
    app.on_event(AppEvent::Pipeline(PipelineEvent::Evaluated(Box::new(evaluated.clone()))));
    let served = logitflow_kit::wire::LoadInfo {
        name: "admissions".into(),
        aliases: [("stable".to_string(), 1)].into(),
        changed: true,
    };
    app.on_event(AppEvent::Pipeline(PipelineEvent::Served(served)));
    app.on_event(AppEvent::RunFinished(Ok(Box::new(run_report(&evaluated, 30)))));
    app.on_event(AppEvent::Predicted { alias: "stable".into(), result: Ok((0.9974, "1".into())) });
    app
}

/// The report a run with `evaluation` and `epochs` epochs (as [`trained_app`] sends them)
/// ends with, as the pipeline driver makes it.
fn run_report(evaluation: &Evaluation, epochs: usize) -> crate::pipeline::RunReport {
    let curve: Vec<serde_json::Value> = (1..=epochs)
        .map(|n| {
            let x = n as f64;
            serde_json::json!({"epoch": n, "train_loss": 0.17 + 0.05 / x, "val_loss": 0.15 + 0.04 / x})
        })
        .collect();
    let report = serde_json::json!({
        "run_id": "1796129370686-a60d", "started_unix_ms": 1_796_129_370_686u64, "data": "/home/test/datasets/admissions.csv",
        "model": {"name": "admissions", "version": evaluation.version, "intercept": evaluation.intercept,
                  "coefficients": evaluation.coefficients, "terms": [], "classes": evaluation.classes, "label_name": "admitted"},
        "metrics": evaluation.metrics, "loss_curve": curve, "stages": [], "predictions": [],
        "promoted": evaluation.promoted, "decision": evaluation.decision, "stop_reason": "early_stopped",
        "stable_version": evaluation.version, "roc": [], "params": sgd_params(), "feature_names": ["score"],
        "train_to_served_ms": 120.0, "rows": evaluation.rows,
    });
    serde_json::from_value(report).expect("a run report")
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|f| f.render_widget(app, f.area())).expect("draw");
    let buffer = terminal.backend().buffer().clone();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Pids, ports, uptimes and latencies change from run to run; snapshots must not.
fn volatile_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\b4\d{3}\b", "[pid]"),
        (r"\b4\d{4}\b", "[port]"),
        (r"\b\d+m\d\ds\b", "[up]"),
        (r"\d+\.\dms", "[probe]"),
        (r"answering \d+ ms after", "answering [ms] after"),
    ]
}

#[test]
fn services_widget_shows_every_service_and_its_status() {
    let mut app = App::new("/h".into(), "admissions".into(), TrainParams::default(), 0.5);
    let mut services = ready_services(app.now);
    services[3].status = Status::Restarting;
    services[3].restarts = 2;
    app.on_event(AppEvent::Services(services));
    let area = Rect::new(0, 0, 80, 11);
    let mut buf = Buffer::empty(area);
    super::ui::render_services_for_test(&app, area, &mut buf);
    let text: String = (0..area.height)
        .map(|y| (0..area.width).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect();
    assert!(text.contains("Services 7/8 ready"), "{text}");
    for name in ServiceName::ALL {
        assert!(text.contains(name.as_str()), "{name} missing:\n{text}");
    }
    assert!(text.contains("restarting"), "status is readable without colour:\n{text}");
    assert!(text.contains("1m05s"));
}

#[test]
fn whole_screen_120x40() {
    let app = trained_app();
    insta::with_settings!({ filters => volatile_filters() }, {
        insta::assert_snapshot!("screen_120x40", screen(&app, 120, 40));
    });
}

#[test]
fn whole_screen_80x24() {
    let app = trained_app();
    insta::with_settings!({ filters => volatile_filters() }, {
        insta::assert_snapshot!("screen_80x24", screen(&app, 80, 24));
    });
}

#[test]
fn too_small_says_what_size_it_needs() {
    let text = screen(&trained_app(), 60, 20);
    assert!(text.contains("at least 80×24") && text.contains("60×20"), "{text}");
}

#[test]
fn a_training_run_fills_the_chart_metrics_and_version() {
    let app = trained_app();
    assert_eq!(app.train_curve.len(), 30);
    assert_eq!(app.val_curve.len(), 30);
    assert_eq!(app.train_curve[0], (1.0, 0.17 + 0.05));
    assert!(app.stages.iter().all(|(_, s)| matches!(s, StageState::Done { .. })));
    let evaluation = app.evaluation.as_ref().expect("evaluated");
    assert_eq!(evaluation.version, 1);
    let text = screen(&app, 120, 40);
    assert!(text.contains("admissions v1"), "{text}");
    assert!(text.contains("acc 0.9350"), "{text}");
    assert!(text.contains("sgd 30/1000 epochs"), "{text}");
    assert!(text.contains("stable v1 P(admitted) 0.9974 → admitted"), "{text}");
}

/// An answer below the threshold names the probability it shows, of the positive class, apart
/// from the decision: "0.0677 not admitted" read as a 6.8% chance of the decision.
#[test]
fn an_answer_says_which_class_its_probability_is_of() {
    let mut app = trained_app();
    app.on_event(AppEvent::Predicted { alias: "stable".into(), result: Ok((0.0677, "1".into())) });
    let text = screen(&app, 120, 40);
    let (negative, positive) = app.class_names();
    assert_eq!(positive, "admitted");
    assert!(text.contains(&format!("stable v1 P(admitted) 0.0677 → {negative}")), "{text}");
    // The Model panel names the positive class its precision and recall are of.
    assert!(text.contains("admitted: prec 0.919 rec 0.955 F1 0.937"), "{text}");
}

#[test]
fn retraining_keeps_the_previous_curve_and_shows_the_change() {
    let mut app = trained_app();
    app.on_event(AppEvent::RunFinished(Err("x".into())));
    assert_eq!(
        app.on_key(key(KeyCode::Char('t'))).map(|a| matches!(a, Action::Train(_))),
        Some(true)
    );
    assert_eq!(app.previous_curve.len(), 30, "the older run stays, dimmed");
    assert!(app.train_curve.is_empty());
    app.on_event(epoch(1, 0.3, 0.29));
    app.on_event(AppEvent::Pipeline(PipelineEvent::Evaluated(Box::new(evaluation(2)))));
    let text = screen(&app, 120, 40);
    assert!(text.contains("admissions v2") && text.contains("(+0.0025)"), "{text}");
}

#[test]
fn the_form_refuses_bad_values_inline_and_retrains_with_good_ones() {
    let mut app = trained_app();
    app.on_event(AppEvent::RunFinished(Err("done".into())));
    app.on_key(key(KeyCode::Char('h')));
    assert_eq!(app.overlay, Overlay::Params);
    app.on_key(key(KeyCode::Down));
    for _ in 0..10 {
        app.on_key(key(KeyCode::Backspace));
    }
    app.on_key(key(KeyCode::Char('-')));
    app.on_key(key(KeyCode::Char('1')));
    assert!(
        app.overlays.params.error.as_deref().is_some_and(|e| e.contains("learning_rate")),
        "{:?}",
        app.overlays.params.error
    );
    assert_eq!(app.on_key(key(KeyCode::Enter)), None, "refused");
    assert!(screen(&app, 120, 40).contains("learning_rate must be"));
    app.on_key(key(KeyCode::Backspace));
    app.on_key(key(KeyCode::Backspace));
    app.on_key(key(KeyCode::Char('1')));
    app.on_key(key(KeyCode::Up));
    app.on_key(key(KeyCode::Right));
    app.on_key(key(KeyCode::Right));
    app.on_key(key(KeyCode::Right));
    match app.on_key(key(KeyCode::Enter)) {
        Some(Action::Train(p)) => {
            assert_eq!(p.learning_rate, 1.0);
            assert_eq!(p.solver, logitflow_core::logistic::Solver::Newton);
        }
        other => panic!("expected a retrain, got {other:?}"),
    }
}

#[test]
fn a_one_feature_model_gets_its_fitted_curve_and_the_query_marked() {
    let mut app = trained_app();
    assert_eq!(app.fit_points.len(), 40);
    assert_eq!(app.fit_curve.len(), 101, "built when the evaluation arrived");
    let (x0, p0) = app.fit_curve[0];
    assert_eq!(x0, 0.0);
    assert!((p0 - logitflow_core::logistic::sigmoid(-9.87)).abs() < 1e-12);
    app.on_key(key(KeyCode::Char('p')));
    app.on_key(key(KeyCode::Char('8')));
    app.on_key(key(KeyCode::Char('0')));
    assert!(matches!(app.on_key(key(KeyCode::Enter)), Some(Action::Predict(..))));
    app.on_event(AppEvent::Predicted { alias: "stable".into(), result: Ok((0.9974, "1".into())) });
    assert_eq!(app.fit_query, Some((80.0, 0.9974)));
    let text = screen(&app, 120, 40);
    assert!(text.contains("score"), "the curve's axis is named after the feature:\n{text}");
    // A new version's curve: the old point goes, and a stable answer from the old version
    // (v1 still stable, v2 the candidate) is not marked on v2's curve; v2's own answer is.
    app.on_event(AppEvent::Pipeline(PipelineEvent::Evaluated(Box::new(evaluation(2)))));
    assert_eq!(app.fit_query, None);
    app.on_event(AppEvent::Predicted { alias: "stable".into(), result: Ok((0.9974, "1".into())) });
    assert_eq!(app.fit_query, None, "v1's answer is not on v2's curve");
    app.on_event(AppEvent::Predicted {
        alias: "candidate".into(),
        result: Ok((0.9969, "2".into())),
    });
    assert_eq!(app.fit_query, Some((80.0, 0.9969)));
}

#[test]
fn serves_grpc_port_is_in_the_services_title() {
    let mut app = trained_app();
    if let Some(serve) = app.services.iter_mut().find(|s| s.name == ServiceName::Serve) {
        serve.grpc_addr = Some("127.0.0.1:43210".parse().expect("addr"));
    }
    let text = screen(&app, 120, 40);
    assert!(text.contains("Services 8/8 ready · serve gRPC 43210"), "{text}");
}

#[test]
fn a_version_serve_could_not_load_is_shown_unavailable() {
    let mut app = trained_app();
    let why = "artifact 9aef… is corrupt: model.json does not match its hash (120 bytes, 121 expected); it will not be loaded";
    app.on_event(AppEvent::Unavailable([("2".to_string(), why.to_string())].into()));
    let text = screen(&app, 120, 40);
    assert!(text.contains("v2 unavailable: corrupt artifact"), "{text}");
}

#[test]
fn keys_predict_quit_and_confirm() {
    let mut app = trained_app();
    app.on_key(key(KeyCode::Char('p')));
    assert_eq!(app.focus, Focus::Predict);
    for c in "80".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        Some(Action::Predict(vec![Value::Number(80.0)], vec!["stable".into()]))
    );
    app.on_key(key(KeyCode::Char('x')));
    assert_eq!(
        app.predict_input, "80x",
        "letters are typed too: a categorical feature takes a level"
    );
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.focus, Focus::Services);
    // Without a run under way, q quits at once; while one runs, q asks first.
    assert_eq!(app.clone().on_key(key(KeyCode::Char('q'))), Some(Action::Quit));
    assert!(matches!(app.on_key(key(KeyCode::Char('t'))), Some(Action::Train(_))));
    assert_eq!(app.on_key(key(KeyCode::Char('q'))), None);
    assert_eq!(app.overlay, Overlay::ConfirmQuit);
    assert_eq!(app.on_key(key(KeyCode::Char('n'))), None);
    assert!(!app.quit);
    // Ctrl-C asks too while training; a second Ctrl-C quits.
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.on_key(ctrl_c), None);
    assert_eq!(app.overlay, Overlay::ConfirmQuit);
    assert!(!app.quit);
    assert_eq!(app.on_key(ctrl_c), Some(Action::Quit));
    assert!(app.quit);
}

#[test]
fn logs_overlay_filters_by_search() {
    let mut app = trained_app();
    assert_eq!(app.on_key(key(KeyCode::Enter)), Some(Action::ShowLogs(ServiceName::Ingest)));
    let lines = [
        "{\"level\":\"INFO\",\"message\":\"listening\"}",
        "{\"level\":\"WARN\",\"message\":\"slow\"}",
    ];
    app.on_event(AppEvent::Logs(
        ServiceName::Ingest,
        lines
            .iter()
            .map(|t| crate::supervisor::LogLine { stream: "stderr", text: t.to_string() })
            .collect(),
    ));
    assert_eq!(app.visible_logs().len(), 2);
    app.on_key(key(KeyCode::Char('/')));
    for c in "slow".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.visible_logs().len(), 1);
    assert!(screen(&app, 120, 40).contains("matching \"slow\""));
}

#[test]
fn t_before_every_service_is_ready_is_queued_names_what_it_waits_for_and_then_trains() {
    let mut app = App::new("/h".into(), "admissions".into(), TrainParams::default(), 0.5);
    let mut services = ready_services(app.now);
    services[3].status = Status::Starting;
    services[5].status = Status::Starting;
    app.on_event(AppEvent::Services(services.clone()));
    assert_eq!(app.on_key(key(KeyCode::Char('t'))), None, "nothing to start yet");
    assert!(app.status.contains("waiting for train, serve"), "{}", app.status);
    services[3].status = Status::Ready;
    assert_eq!(app.on_event(AppEvent::Services(services.clone())), None, "serve is still starting");
    assert!(app.status.contains("waiting for"), "the message is not overwritten: {}", app.status);
    services[5].status = Status::Ready;
    assert_eq!(
        app.on_event(AppEvent::Services(services.clone())),
        Some(Action::Train(TrainParams::default()))
    );
    assert!(app.training && app.queued_train.is_none());
    assert_eq!(app.on_event(AppEvent::Services(services)), None, "and only once");
}

/// `admissions` with versions 1 and 2 (v1's metrics 0.9325/0.1366) and `aliases`.
fn versions(aliases: &[(&str, u32)]) -> logitflow_kit::wire::ModelVersions {
    use logitflow_store::registry::{ModelEntry, VersionEntry};
    let version = |v: u32, m: Metrics| VersionEntry {
        version: v,
        artifact: "a".repeat(64),
        report: None,
        metrics: Some(m),
        created_unix_ms: 0,
    };
    logitflow_kit::wire::ModelVersions {
        name: "admissions".into(),
        entry: ModelEntry {
            versions: vec![version(1, metrics(0.9325, 0.1366)), version(2, metrics(0.935, 0.1358))],
            aliases: aliases.iter().map(|(a, v)| (a.to_string(), *v)).collect(),
            stable_history: vec![1, 2],
        },
    }
}

#[test]
fn answers_go_when_an_alias_moves_or_serve_comes_back_and_a_rollback_shows_the_stable_figures() {
    let mut app = trained_app();
    // The last trained version is v1 (trained_app); another console made v2 and it is stable.
    app.on_event(AppEvent::Models(versions(&[("stable", 1), ("candidate", 2)])));
    app.on_event(AppEvent::Predicted { alias: "stable".into(), result: Ok((0.9974, "1".into())) });
    assert_eq!(app.answers.len(), 1);
    assert!(
        !screen(&app, 120, 40).contains("(last trained)"),
        "the stable version is the one shown"
    );
    // The same aliases again (a refresh): the answer stands.
    app.on_event(AppEvent::Models(versions(&[("stable", 1), ("candidate", 2)])));
    assert_eq!(app.answers.len(), 1);
    // `P`: v2 is stable; the answer that named v1 goes, and the Model panel, which shows the
    // last trained version's figures, puts the stable one's first.
    app.on_event(AppEvent::Models(versions(&[("stable", 2)])));
    assert!(app.answers.is_empty(), "stale once the alias moved");
    let text = screen(&app, 120, 40);
    assert!(text.contains("stable v2: acc 0.9350 auc 0.9893 loss 0.1358"), "{text}");
    assert!(text.contains("v1 (last trained):"), "{text}");

    // serve down: an answer fails; serve back: the error row goes, a good answer would stay.
    let mut services = ready_services(app.now);
    services[5].status = Status::Restarting;
    app.on_event(AppEvent::Services(services.clone()));
    app.on_event(AppEvent::Predicted {
        alias: "stable".into(),
        result: Err("serve is not answering".into()),
    });
    app.on_event(AppEvent::Predicted { alias: "candidate".into(), result: Ok((0.9, "2".into())) });
    services[5].status = Status::Ready;
    app.on_event(AppEvent::Services(services));
    assert_eq!(app.answers.iter().map(|a| a.alias.as_str()).collect::<Vec<_>>(), ["candidate"]);
}

#[test]
fn the_status_line_names_cancelled_runs_reused_stable_versions_and_keeps_a_failure() {
    let mut app = trained_app();
    assert!(matches!(app.on_key(key(KeyCode::Char('t'))), Some(Action::Train(_))));
    for n in 1..=4 {
        app.on_event(epoch(n, 0.2, 0.2));
    }
    app.on_event(AppEvent::RunFinished(Err("train: training was cancelled".into())));
    assert_eq!(app.status, "training cancelled at epoch 4; no version was made");
    // A run that reproduced v1, already stable: not promoted, yet stable, not "the candidate".
    assert!(matches!(app.on_key(key(KeyCode::Char('t'))), Some(Action::Train(_))));
    let mut reused = run_report(&evaluation(1), 30);
    reused.promoted = false;
    app.on_event(AppEvent::RunFinished(Ok(Box::new(reused))));
    assert!(app.status.starts_with("v1 is stable"), "{}", app.status);
    // A failure, then the services all ready again: the reason stays.
    app.on_event(AppEvent::RunFinished(Err("ingest: the CSV has no rows".into())));
    let mut services = ready_services(app.now);
    services[0].status = Status::Restarting;
    app.on_event(AppEvent::Services(services.clone()));
    services[0].status = Status::Ready;
    app.on_event(AppEvent::Services(services));
    assert_eq!(app.status, "run failed: ingest: the CSV has no rows");
}

#[test]
fn the_form_has_the_stopping_parameters_and_greys_what_the_solver_ignores() {
    let mut app = trained_app();
    app.on_key(key(KeyCode::Char('h')));
    // Down to patience (the seventh field), replace 10 by 50000.
    for _ in 0..6 {
        app.on_key(key(KeyCode::Down));
    }
    app.on_key(key(KeyCode::Backspace));
    app.on_key(key(KeyCode::Backspace));
    for c in "50000".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    app.on_key(key(KeyCode::Down)); // tolerance
    app.on_key(key(KeyCode::Down)); // validation: empty is auto
    for c in "0.2".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    let text = screen(&app, 80, 24);
    assert!(text.contains("patience  50000") && text.contains("validation  0.2"), "{text}");
    assert!(text.contains("batch size  32  (not used by sgd)"), "{text}");
    let Some(Action::Train(params)) = app.on_key(key(KeyCode::Enter)) else {
        panic!("trains: {}", app.status)
    };
    assert_eq!((params.patience, params.validation_fraction), (50_000, Some(0.2)));

    // A refusal's whole reason shows, not its first 40 characters.
    let mut app = trained_app();
    app.on_key(key(KeyCode::Char('h')));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    for c in "000000".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    let error = app.overlays.params.error.clone().expect("too many epochs");
    assert!(error.contains("1000000000"), "{error}");
    let text: String = screen(&app, 80, 24)
        .lines()
        .map(|l| l.trim_matches(|c: char| c == '│' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("got 1000000000"), "the end of the reason is on screen: {text}");
}

#[test]
fn json_log_lines_read_as_time_level_message_and_fields() {
    use super::app::readable_log_line;
    let line = r#"{"timestamp":"2026-12-01T12:01:02.123456Z","level":"WARN","fields":{"message":"model not loaded","model":"admissions","error":"v2: corrupt"},"target":"logitflow_serve"}"#;
    assert_eq!(
        readable_log_line(line),
        "12:01:02.123 WARN  model not loaded error=v2: corrupt model=admissions"
    );
    let listening = r#"{"addr":"127.0.0.1:4000","event":"listening","service":"serve"}"#;
    assert_eq!(readable_log_line(listening), "addr=127.0.0.1:4000 event=listening service=serve");
    assert_eq!(
        readable_log_line("ingest cannot start: a fault"),
        "ingest cannot start: a fault",
        "plain text stays"
    );
}

#[test]
fn p_asks_before_promoting_a_candidate_that_tested_worse() {
    let mut app = trained_app();
    // v2 is better (log loss 0.1358 against v1's 0.1366): P promotes at once.
    app.on_event(AppEvent::Models(versions(&[("stable", 1), ("candidate", 2)])));
    assert_eq!(app.on_key(key(KeyCode::Char('P'))), Some(Action::Promote));
    // v1 as the candidate is worse: P asks, saying why; n keeps stable, y promotes.
    app.on_event(AppEvent::Models(versions(&[("stable", 2), ("candidate", 1)])));
    assert_eq!(app.on_key(key(KeyCode::Char('P'))), None);
    assert_eq!(app.overlay, Overlay::ConfirmPromote);
    let text = screen(&app, 120, 40);
    assert!(
        text.contains("candidate v1's test log loss 0.1366 is worse than stable")
            && text.contains("v2's 0.1358. Promote anyway?"),
        "{text}"
    );
    assert_eq!(app.on_key(key(KeyCode::Char('n'))), None);
    assert_eq!((app.overlay, app.status.as_str()), (Overlay::None, "not promoted"));
    app.on_key(key(KeyCode::Char('P')));
    assert_eq!(app.on_key(key(KeyCode::Char('y'))), Some(Action::Promote));
}

#[test]
fn an_export_names_its_directory_and_files_within_the_status_line() {
    let mut app = trained_app();
    let dir = std::path::Path::new("/home/test/exports");
    let names = [
        "1796-a60d-loss.csv",
        "1796-a60d-roc.csv",
        "1796-a60d-loss.png",
        "1796-a60d-loss.svg",
        "1796-a60d-roc.png",
        "1796-a60d-roc.svg",
    ];
    app.on_event(AppEvent::Exported(Ok(names.iter().map(|n| dir.join(n)).collect())));
    assert_eq!(
        app.status,
        "exported 6 files to /home/test/exports/: 1796-a60d-{loss,roc}.{csv,png,svg}"
    );
    assert!(app.status.chars().count() < 120, "fits a 120-column status line");
}

#[test]
fn a_remark_on_a_key_gives_way_to_the_next_answer_but_a_failure_does_not() {
    let mut app = trained_app();
    app.on_key(key(KeyCode::Char('c')));
    assert_eq!(app.status, "nothing is training");
    app.on_event(AppEvent::Predicted { alias: "stable".into(), result: Ok((0.9974, "1".into())) });
    assert_eq!(app.status, "stable v1 answered 0.9974");
    app.on_event(AppEvent::RunFinished(Err("ingest: the CSV has no rows".into())));
    app.on_event(AppEvent::Predicted { alias: "stable".into(), result: Ok((0.9974, "1".into())) });
    assert_eq!(app.status, "run failed: ingest: the CSV has no rows");
}

/// An exact fit's coefficient table: estimate, standard error, p-value and odds ratio in term
/// order at 120 columns, the estimate and p-value at 80, and what does not fit counted.
#[test]
fn the_model_panel_shows_an_exact_fits_coefficient_table() {
    use logitflow_core::inference::{INTERCEPT, TermStatistics};
    let mut app = trained_app();
    let term = |name: &str, estimate: f64, se: f64, p: f64| TermStatistics {
        term: name.into(),
        estimate,
        std_error: Some(se),
        z: Some(estimate / se),
        p_value: Some(p),
        ci_low: Some(estimate - 1.96 * se),
        ci_high: Some(estimate + 1.96 * se),
        odds_ratio: Some(estimate.exp()),
        standardized: (name != INTERCEPT).then_some(estimate * 2.0),
    };
    let mut terms = vec![
        term(INTERCEPT, -687.3501, 737.7269, 0.35),
        term("score", 0.1990, 0.0120, 2e-7),
        term("species=a level with a very long name", 0.75, 0.25, 0.003),
    ];
    for j in 0..12 {
        terms.push(term(
            &format!("island=L{j}"),
            0.5 - 0.1 * f64::from(j),
            0.25,
            0.0312 * f64::from(j + 1),
        ));
    }
    if let Some(report) = app.last_report.as_mut() {
        report.model.fit.terms = terms;
    }
    let wide = screen(&app, 120, 40);
    assert!(
        wide.contains("term")
            && wide.contains("coef")
            && wide.contains(" se ")
            && wide.contains(" OR"),
        "{wide}"
    );
    // An intercept of a few hundred keeps the columns: fewer decimals, not a wider cell.
    assert!(wide.contains("(intercept)  -687.350 737.727 0.3500       -│"), "{wide}");
    assert!(wide.contains("<1e-4"), "{wide}");
    assert!(
        wide.contains("score") && wide.contains("0.1990") && wide.contains("1.220"),
        "the odds ratio e^0.199: {wide}"
    );
    let lines: Vec<&str> = wide.lines().collect();
    let row = |needle: &str| lines.iter().position(|l| l.contains(needle));
    assert!(
        row("(intercept)") < row("score ")
            && row("score ") < row("island=L0 ")
            && row("island=L0 ") < row("island=L1 "),
        "term order:\n{wide}"
    );
    assert!(wide.contains("speci…g name"), "a long name keeps its start and end:\n{wide}");
    assert!(
        wide.contains("+3 more terms: C shows them all"),
        "what does not fit is counted:\n{wide}"
    );
    // At 80×24 the panel keeps the metrics and counts the terms; at 80×40 the table has the
    // estimate and p-value, without the confusion matrix.
    let small = screen(&app, 80, 24);
    assert!(small.contains("acc 0.9350") && small.contains("15 terms"), "{small}");
    let narrow = screen(&app, 80, 40);
    assert!(
        narrow.contains("coef")
            && narrow.contains("(intercept)")
            && narrow.contains("<1e-4")
            && !narrow.contains(" OR"),
        "{narrow}"
    );
    // A coefficient in large units (income, 3.0e-6 per unit) keeps its significant digits, in
    // the panel and in the C view, where four decimals said 0.0000.
    if let Some(report) = app.last_report.as_mut() {
        report.model.fit.terms[1] = term("income", 3.0e-6, 1.1e-6, 0.006);
    }
    let wide = screen(&app, 120, 40);
    assert!(
        wide.lines()
            .any(|l| l.contains("income") && l.contains("3.00e-6") && l.contains("1.10e-6")),
        "{wide}"
    );
    app.on_key(key(KeyCode::Char('C')));
    let view = screen(&app, 120, 40);
    assert!(
        view.lines()
            .any(|l| l.contains("income") && l.contains("3.00e-6") && l.contains("1.10e-6")),
        "{view}"
    );
}

#[test]
fn exported_names_are_grouped_by_figure_and_format() {
    use super::app::grouped_names;
    let all = [
        "loss.csv",
        "roc.csv",
        "pr.csv",
        "calibration.csv",
        "loss.png",
        "loss.svg",
        "roc.png",
        "roc.svg",
    ];
    let all = [&all[..], &["pr.png", "pr.svg", "calibration.png", "calibration.svg"]].concat();
    assert_eq!(grouped_names(&all), "{loss,roc,pr,calibration}.{csv,png,svg}");
    let log = ["loss.csv", "roc.csv", "loss-log.png", "loss-log.svg", "roc.png", "roc.svg"];
    assert_eq!(grouped_names(&log), "{loss.csv,roc.{csv,png,svg},loss-log.{png,svg}}");
    assert_eq!(grouped_names(&["loss.png"]), "loss.png");
}

#[test]
fn cancel_asks_whether_to_keep_the_best_epoch_and_the_status_names_the_one_kept() {
    let mut app = trained_app();
    app.on_event(AppEvent::RunFinished(Err("done".into())));
    assert!(matches!(app.on_key(key(KeyCode::Char('t'))), Some(Action::Train(_))));
    app.on_event(AppEvent::Pipeline(PipelineEvent::TrainStarted { job: "job-7".into() }));
    // The validation loss is lowest at epoch 3, then rises.
    for (n, val) in [(1, 0.30), (2, 0.25), (3, 0.21), (4, 0.23), (5, 0.26)] {
        app.on_event(epoch(n, 0.2, val));
    }
    assert_eq!(app.on_key(key(KeyCode::Char('c'))), None, "c asks first");
    assert_eq!(app.overlay, Overlay::ConfirmCancel);
    for (width, height) in [(120, 40), (80, 24)] {
        let text = screen(&app, width, height);
        assert!(text.contains("Stop training at epoch 5?"), "{text}");
        assert!(
            text.contains("keep epoch 3 (the best so far, validation loss 0.2100)"),
            "the best epoch is named at {width}×{height}:\n{text}"
        );
        assert!(
            text.contains("d  discard the run") && text.contains("any other key: go on training"),
            "{text}"
        );
    }
    assert_eq!(app.on_key(key(KeyCode::Esc)), None);
    assert_eq!((app.overlay, app.status.as_str()), (Overlay::None, "training goes on"));
    app.on_key(key(KeyCode::Char('c')));
    assert_eq!(
        app.on_key(key(KeyCode::Char('k'))),
        Some(Action::Cancel { job: "job-7".into(), keep_best: true })
    );
    app.on_key(key(KeyCode::Char('c')));
    assert_eq!(
        app.on_key(key(KeyCode::Char('d'))),
        Some(Action::Cancel { job: "job-7".into(), keep_best: false })
    );
    // The run ends with the kept epoch as a version: the status says which epoch it holds.
    let mut kept = run_report(&evaluation(2), 5);
    kept.stop_reason = logitflow_core::logistic::StopReason::Cancelled;
    kept.model.fit.kept_epoch = Some(3);
    app.on_event(AppEvent::RunFinished(Ok(Box::new(kept))));
    assert!(
        app.status.starts_with("stopped at epoch 5, epoch 3 kept: v2 is stable"),
        "{}",
        app.status
    );
    // Nothing training: c says so and asks nothing.
    assert_eq!(app.on_key(key(KeyCode::Char('c'))), None);
    assert_eq!((app.overlay, app.status.as_str()), (Overlay::None, "nothing is training"));
}

/// An app whose model has the penguins' seven features, two of them categorical.
fn penguins_app() -> App {
    let mut app = trained_app();
    app.on_event(AppEvent::RunFinished(Err("done".into())));
    let names = [
        "species",
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "year",
    ];
    app.feature_names = names.iter().map(|n| n.to_string()).collect();
    let report = app.last_report.get_or_insert_with(|| run_report(&evaluation(1), 10));
    report.data_summary.categorical = [
        ("species".to_string(), vec!["Adelie".to_string(), "Chinstrap".into(), "Gentoo".into()]),
        ("island".to_string(), vec!["Biscoe".to_string(), "Dream".into(), "Torgersen".into()]),
    ]
    .into();
    app
}

#[test]
fn many_features_take_a_field_each_and_a_pasted_row_fills_them() {
    let mut app = penguins_app();
    assert_eq!(app.on_key(key(KeyCode::Char('p'))), None);
    assert_eq!(app.overlay, Overlay::PredictForm);
    // A row pasted (or typed) with commas: each comma moves to the next field.
    for c in "Gentoo,Biscoe,47.5,15,217,5200,2008".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    let text = screen(&app, 80, 24);
    assert!(text.contains("species  Gentoo  ◀▶ Adelie | Chinstrap | Gentoo"), "{text}");
    assert!(text.contains("body_mass_g  5200") && text.contains("field 7 of 7"), "{text}");
    let row = vec![
        Value::Text("Gentoo".into()),
        Value::Text("Biscoe".into()),
        Value::Number(47.5),
        Value::Number(15.0),
        Value::Number(217.0),
        Value::Number(5200.0),
        Value::Number(2008.0),
    ];
    assert_eq!(app.on_key(key(KeyCode::Enter)), Some(Action::Predict(row, vec!["stable".into()])));
    assert_eq!(app.overlay, Overlay::None);
    // Opened again, the values are kept; ← and → step a categorical field through its levels.
    app.on_key(key(KeyCode::Char('p')));
    for _ in 0..6 {
        app.on_key(key(KeyCode::Up));
    }
    app.on_key(key(KeyCode::Right));
    assert_eq!(app.overlays.predict.values[0], "Adelie", "after Gentoo comes Adelie again");
    app.on_key(key(KeyCode::Left));
    app.on_key(key(KeyCode::Left));
    assert_eq!(app.overlays.predict.values[0], "Chinstrap");
    // A field left empty, or a word where a number goes, is named and nothing is sent.
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    for _ in 0..4 {
        app.on_key(key(KeyCode::Backspace));
    }
    assert_eq!(app.on_key(key(KeyCode::Enter)), None);
    assert_eq!(app.overlays.predict.error.as_deref(), Some("bill_length_mm has no value"));
    assert!(screen(&app, 80, 24).contains("bill_length_mm has no value"));
    for c in "4 7".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    assert_eq!(app.on_key(key(KeyCode::Enter)), None);
    assert_eq!(
        app.overlays.predict.error.as_deref(),
        Some("bill_length_mm: \"4 7\" is not a number")
    );
    insta::with_settings!({ filters => volatile_filters() }, {
        insta::assert_snapshot!("predict_form_80x24", screen(&app, 80, 24));
    });
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn a_form_of_forty_features_scrolls_to_keep_the_field_in_view() {
    let mut app = trained_app();
    app.feature_names = (0..40).map(|i| format!("f{i:02}")).collect();
    app.on_key(key(KeyCode::Char('p')));
    let first = screen(&app, 80, 24);
    assert!(
        first.contains("f00") && !first.contains("f39") && first.contains("field 1 of 40"),
        "{first}"
    );
    for _ in 0..3 {
        app.on_key(key(KeyCode::PageDown));
    }
    for _ in 0..5 {
        app.on_key(key(KeyCode::Down));
    }
    let text = screen(&app, 80, 24);
    assert!(
        text.contains("f35  █") && !text.contains("f00") && text.contains("field 36 of 40"),
        "{text}"
    );
    assert!(text.contains("rows 19–36 of 40"), "the rows shown are named: {text}");
}

#[test]
fn the_runs_view_orders_marks_compares_and_trains_again_with_a_runs_parameters() {
    let mut app = trained_app();
    app.on_event(AppEvent::RunFinished(Err("done".into())));
    assert_eq!(app.on_key(key(KeyCode::Char('R'))), Some(Action::LoadRuns));
    assert_eq!(app.overlay, Overlay::Runs);
    assert!(screen(&app, 120, 40).contains("reading the kept runs"), "until the runs arrive");
    // Three runs: v1 newton, v2 sgd with a penalty (best AUC), v3 batch (lowest log loss).
    let mut runs = Vec::new();
    for (version, solver, l2, auc, log_loss) in [
        (1, Solver::Newton, 0.0, 0.90, 0.30),
        (2, Solver::Sgd, 0.01, 0.97, 0.25),
        (3, Solver::Batch, 0.0, 0.95, 0.20),
    ] {
        let mut run = run_report(&evaluation(version), 10 + version as usize);
        run.run_id = format!("179612937{version}000-a60{version}");
        run.params.solver = solver;
        run.params.l2 = l2;
        run.metrics.auc = auc;
        run.metrics.log_loss = log_loss;
        runs.push(run);
    }
    app.on_event(AppEvent::Runs(runs));
    let text = screen(&app, 120, 40);
    assert!(text.contains("Runs — newest first · 0 marked"), "{text}");
    let order = |text: &str| {
        ["batch", "sgd", "newton"].map(|s| text.find(&format!(" {s} ")).unwrap_or(usize::MAX))
    };
    let at = order(&text);
    assert!(at[0] < at[1] && at[1] < at[2], "newest first: {text}");
    assert!(text.contains("2026-12-01") || text.contains("2026-11-30"), "the run's time: {text}");
    app.on_key(key(KeyCode::Char('s')));
    assert_eq!(
        app.overlays.runs.selected_run().map(|r| r.model.version),
        Some(2),
        "highest AUC first"
    );
    app.on_key(key(KeyCode::Char('s')));
    assert_eq!(
        app.overlays.runs.selected_run().map(|r| r.model.version),
        Some(3),
        "lowest log loss first"
    );
    // Mark v3 and v1, compare them.
    app.on_key(key(KeyCode::Char(' ')));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Char(' ')));
    assert_eq!(app.overlays.runs.marked.len(), 2);
    assert_eq!(app.on_key(key(KeyCode::Enter)), None);
    assert_eq!(app.overlay, Overlay::RunView);
    let comparison = app.overlays.comparison.as_ref().expect("a comparison");
    assert!(comparison.two && comparison.title.starts_with("v3 batch"), "{}", comparison.title);
    assert_eq!(comparison.curves.len(), 4, "each run's train and validation curves");
    assert!(!comparison.log_epochs, "13 and 11 epochs share a linear axis");
    let solver = comparison.rows.iter().find(|r| r.name == "solver").expect("a solver row");
    assert_eq!((solver.a.as_str(), solver.b.as_str(), solver.differs), ("batch", "newton", true));
    let loss = comparison.rows.iter().find(|r| r.name == "log loss").expect("a log loss row");
    assert_eq!(loss.delta, "+0.1000", "second − first");
    let first_same =
        comparison.rows.iter().skip(2).position(|r| !r.differs).expect("rows the two share");
    assert!(
        comparison.rows.iter().skip(2 + first_same).all(|r| !r.differs),
        "what differs comes first: {:?}",
        comparison.rows
    );
    for (width, height) in [(120, 40), (80, 24)] {
        let text = screen(&app, width, height);
        assert!(
            text.contains("v3 batch") && text.contains("second − first") && text.contains("solver"),
            "{width}×{height}:\n{text}"
        );
        if width == 120 {
            assert!(
                text.contains("v3 batch train") && text.contains("v1 newton validation"),
                "the legend names the curves:\n{text}"
            );
        }
        assert!(
            text.contains("first blue, second red"),
            "the colours are named at every size:\n{text}"
        );
    }
    // e: both loss curves in one plot, the runs as compared.
    match app.on_key(key(KeyCode::Char('e'))) {
        Some(Action::ExportComparison(a, b)) => {
            assert_eq!((a.model.version, b.model.version), (3, 1))
        }
        other => panic!("expected the comparison's export, got {other:?}"),
    }
    // Back to the runs; Enter with fewer than two marked opens the selected run alone.
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.overlay, Overlay::Runs);
    app.on_key(key(KeyCode::Char(' ')));
    app.on_key(key(KeyCode::Enter));
    assert!(
        app.overlays
            .comparison
            .as_ref()
            .is_some_and(|c| !c.two && c.title.starts_with("v1 newton"))
    );
    app.on_key(key(KeyCode::Esc));
    // / filters: only the runs whose data, solver, version or stop contains the text.
    app.on_key(key(KeyCode::Char('/')));
    for c in "batch".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    app.on_key(key(KeyCode::Enter));
    assert_eq!(
        app.overlays.runs.visible().iter().map(|r| r.model.version).collect::<Vec<_>>(),
        [3]
    );
    assert!(screen(&app, 120, 40).contains("filter: batch"), "the filter is shown");
    app.on_key(key(KeyCode::Char('/')));
    for _ in 0..5 {
        app.on_key(key(KeyCode::Backspace));
    }
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.overlays.runs.visible().len(), 3);
    for _ in 0..3 {
        if app.overlays.runs.selected_run().map(|r| r.model.version) == Some(1) {
            break;
        }
        app.on_key(key(KeyCode::Down));
    }
    assert_eq!(app.overlays.runs.selected_run().map(|r| r.model.version), Some(1));
    // t trains again with the selected run's parameters.
    match app.on_key(key(KeyCode::Char('t'))) {
        Some(Action::Train(params)) => assert_eq!(params.solver, Solver::Newton),
        other => panic!("expected a run with v1's parameters, got {other:?}"),
    }
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn the_loss_chart_shows_pace_and_time_left_marks_the_best_epoch_and_windows_long_runs() {
    let mut app = trained_app();
    app.on_event(AppEvent::RunFinished(Err("done".into())));
    assert!(matches!(app.on_key(key(KeyCode::Char('t'))), Some(Action::Train(_))));
    // 500 epochs in 2 s, of 1000 planned: 250 epochs/s, 2 s left; the validation loss is
    // lowest at epoch 300.
    for n in 1..=500 {
        let x = n as f64;
        let event = epoch(n, 0.2 + 1.0 / x, 0.25 + 1.0 / x + (x - 300.0).max(0.0) * 1e-4);
        let AppEvent::Pipeline(PipelineEvent::Epoch(mut e)) = event else { unreachable!() };
        e.elapsed_ms = x * 4.0;
        app.on_event(AppEvent::Pipeline(PipelineEvent::Epoch(e)));
    }
    let text = screen(&app, 120, 40);
    assert!(text.contains("500/1000 epochs · 250 epochs/s · ≤2s left · best 300"), "{text}");
    assert_eq!(app.chart.best.map(|b| b.0), Some(300.0));
    assert_eq!(app.chart.best_point.len(), 1, "the best epoch is drawn");
    // w: only the latest epochs; the best one is out of view, still named in the title.
    app.on_key(key(KeyCode::Char('w')));
    assert_eq!((app.chart.x, app.chart.train.len()), ([301.0, 500.0], super::chart::WINDOW_EPOCHS));
    let text = screen(&app, 120, 40);
    assert!(text.contains("Loss (latest epochs) — sgd 500/1000 epochs · 250 epochs/s"), "{text}");
    assert!(app.chart.best_point.is_empty(), "epoch 300 is out of view");
    assert!(
        text.lines().any(|l| l.contains("301") && l.contains("500")),
        "the axis runs from 301 to 500:\n{text}"
    );
    app.on_key(key(KeyCode::Char('l')));
    assert!(screen(&app, 120, 40).contains("Loss (log₁₀, latest epochs)"));
    app.on_key(key(KeyCode::Char('w')));
    app.on_key(key(KeyCode::Char('l')));
    assert_eq!(app.chart.x, [1.0, 500.0]);
    // Done: the pace gives way to the stop reason.
    app.on_event(AppEvent::RunFinished(Ok(Box::new(run_report(&evaluation(2), 500)))));
    let text = screen(&app, 120, 40);
    assert!(!text.contains("epochs/s") && text.contains("· stopped early"), "{text}");
}

#[test]
fn c_on_a_penalised_fit_marks_the_dropped_terms_and_says_why_there_are_no_standard_errors() {
    use logitflow_core::inference::TermStatistics;
    let mut app = trained_app();
    // As train reports a penalised fit: the estimates alone, each term's per-sd value beside.
    let coefficients =
        [("mean_radius".to_string(), 0.0), ("worst_smoothness".to_string(), 22.0864)].into();
    let mut terms = TermStatistics::estimates_only(-22.2357, &coefficients);
    terms.iter_mut().skip(1).for_each(|t| t.standardized = Some(t.estimate / 10.0));
    if let Some(report) = app.last_report.as_mut() {
        report.model.fit.terms = terms;
        report.model.fit.statistics_note = Some("not given with a penalty (L1, λ = 0.01)".into());
    }
    app.on_key(key(KeyCode::Char('C')));
    assert_eq!(app.overlay, Overlay::Coefficients);
    let text = screen(&app, 120, 40);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.contains(&format!("{name} ")))
            .map(str::to_string)
            .unwrap_or_default()
    };
    assert!(
        row("mean_radius").contains(" 0 ") && !row("mean_radius").contains("0.0000"),
        "an exact zero: {}",
        row("mean_radius")
    );
    assert!(
        row("worst_smoothness").contains("3.91e9"),
        "e^22.09 in a column's width: {}",
        row("worst_smoothness")
    );
    assert!(text.contains("standard errors not given with a penalty (L1, λ = 0.01)"), "{text}");
}

#[test]
fn c_shows_every_coefficient_with_its_standardized_magnitude_scrolling_and_ordered() {
    use logitflow_core::inference::{INTERCEPT, TermStatistics};
    let mut app = trained_app();
    let term = |name: &str, estimate: f64, standardized: Option<f64>| TermStatistics {
        term: name.into(),
        estimate,
        std_error: Some(0.1),
        z: Some(estimate / 0.1),
        p_value: Some(0.01),
        ci_low: Some(estimate - 0.196),
        ci_high: Some(estimate + 0.196),
        odds_ratio: Some(estimate.exp()),
        standardized,
    };
    let mut terms = vec![term(INTERCEPT, -3.0, None)];
    for j in 0..40 {
        // Term 17 has the largest magnitude per standard deviation, and a negative one.
        let standardized = if j == 17 { -4.0 } else { 0.1 * f64::from(j % 10) };
        terms.push(term(&format!("x{j:02}"), 0.5, Some(standardized)));
    }
    if let Some(report) = app.last_report.as_mut() {
        report.model.fit.terms = terms;
    }
    assert_eq!(app.on_key(key(KeyCode::Char('C'))), None);
    assert_eq!(app.overlay, Overlay::Coefficients);
    let text = screen(&app, 120, 40);
    assert!(text.contains("Coefficients of v1 — term order · rows 1–35 of 41"), "{text}");
    assert!(text.contains("95% interval") && text.contains("per sd"), "{text}");
    let row = |text: &str, name: &str| {
        text.lines().find(|l| l.contains(&format!("{name} "))).map(str::to_string)
    };
    let largest = row(&text, "x17").expect("x17's row");
    assert!(
        largest.contains("-4.000") && largest.contains("████████████████"),
        "the largest fills the bar: {largest}"
    );
    let small = row(&text, "x01").expect("x01's row");
    assert!(
        small.contains("0.100") && small.contains('▍') && !small.contains('█'),
        "a tenth of 4 is 0.4 of a block: {small}"
    );
    // Ordered by magnitude: x17 first; scrolling reaches the last terms.
    app.on_key(key(KeyCode::Char('s')));
    let text = screen(&app, 80, 24);
    assert!(text.contains("largest standardized first"), "{text}");
    let first_row =
        text.lines().skip(3).find(|l| l.contains("│x") || l.contains("│(")).unwrap_or_default();
    assert!(first_row.contains("x17"), "{text}");
    for _ in 0..5 {
        app.on_key(key(KeyCode::PageDown));
    }
    let text = screen(&app, 80, 24);
    assert!(
        text.contains("of 41") && text.contains("(intercept)"),
        "the intercept, which has no magnitude, comes last:\n{text}"
    );
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.overlay, Overlay::None);

    // With the fit statistics, they are under the table, and the table gives them two rows.
    if let Some(report) = app.last_report.as_mut() {
        report.model.fit.fit_statistics =
            Some(logitflow_core::inference::FitStatistics::new(62.8, &[0.0, 1.0, 1.0, 0.0], 2));
    }
    app.on_key(key(KeyCode::Char('C')));
    app.on_key(key(KeyCode::Char('s')));
    let text = screen(&app, 120, 40);
    assert!(text.contains("rows 1–33 of 41"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| {
        l.contains("log-likelihood -62.8000  null -2.7726  LLR -120.055 on 2 df, p 1.0000")
    });
    assert!(
        at.is_some_and(|i| lines[i + 1].contains(
            "pseudo R² -21.6503  AIC 131.600  BIC 129.759  deviance 125.600  n 4, residual df 1"
        )),
        "{text}"
    );
}

#[test]
fn a_sweep_is_made_from_the_keyboard_watched_ranked_and_its_best_promoted() {
    let mut app = trained_app();
    app.on_event(AppEvent::RunFinished(Err("done".into())));
    assert_eq!(app.on_key(key(KeyCode::Char('S'))), None);
    assert_eq!(app.overlay, Overlay::SweepForm);
    let form = screen(&app, 80, 24);
    assert!(
        form.contains("learning rates  0.1,0.2,0.4") && form.contains("9 combinations"),
        "three rates × three penalties:\n{form}"
    );
    assert!(
        form.contains("│        solvers  sgd█") && form.contains("│   L2 penalties  0,0.001,0.01"),
        "labels right-aligned:\n{form}"
    );
    // One penalty only: three members, the learning rates 0.1, 0.2 and 0.4.
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Down));
    for _ in 0..20 {
        app.on_key(key(KeyCode::Backspace));
    }
    app.on_key(key(KeyCode::Char('0')));
    let grid = match app.on_key(key(KeyCode::Enter)) {
        Some(Action::Sweep(grid)) => grid,
        other => panic!("expected a sweep, got {other:?}"),
    };
    assert_eq!(grid.iter().map(|p| p.learning_rate).collect::<Vec<_>>(), [0.1, 0.2, 0.4]);
    assert_eq!(app.overlay, Overlay::Sweep);
    // Member 1 reaches the lowest validation loss; member 2 fails.
    for (member, losses) in [(0, [0.30, 0.26]), (1, [0.28, 0.21]), (2, [0.5, 0.6])] {
        for (n, loss) in losses.iter().enumerate() {
            let event = EpochEvent {
                epoch: n + 1,
                train_loss: 0.3,
                val_loss: Some(*loss),
                grad_norm: 0.1,
                elapsed_ms: 1.0,
                path: None,
            };
            app.on_event(AppEvent::SweepEpoch { member, epoch: event });
        }
    }
    let text = screen(&app, 120, 40);
    assert!(text.contains("Sweep — 0/3 done") && text.contains("epoch 2"), "{text}");
    app.on_event(AppEvent::SweepFinished {
        member: 2,
        result: Err("train: the fit diverged".into()),
    });
    for (member, version) in [(0, 2), (1, 3)] {
        let mut report = run_report(&evaluation(version), 2);
        report.promoted = false;
        app.on_event(AppEvent::SweepFinished { member, result: Ok(Box::new(report)) });
    }
    assert!(app.status.starts_with("sweep done — best: v3 (sgd lr 0.2 l2 0)"), "{}", app.status);
    assert_eq!(
        app.last_report.as_ref().map(|r| r.model.version),
        Some(3),
        "the panels show the best member's run"
    );
    assert_eq!(app.feature_names, ["score"]);
    // Behind the sweep, the chart names the member's solver and the Model panel its version,
    // not the run before the sweep (v1).
    app.on_key(key(KeyCode::Esc));
    let behind = screen(&app, 120, 40);
    assert!(behind.contains("Loss — sgd 2/") && behind.contains("admissions v3"), "{behind}");
    app.on_key(key(KeyCode::Char('S')));
    let text = screen(&app, 120, 40);
    assert!(text.contains("Sweep — 3/3 done"), "{text}");
    let ranked: Vec<&str> = text.lines().filter(|l| l.contains(" sgd ")).collect();
    assert!(
        ranked.len() == 3
            && ranked[0].contains("★1")
            && ranked[0].contains("0.2100")
            && ranked[0].contains("v3"),
        "{ranked:?}"
    );
    assert!(ranked[2].contains("failed: train: the fit diverged"), "failures last: {ranked:?}");
    assert_eq!(app.on_key(key(KeyCode::Char('P'))), Some(Action::PromoteVersion(3)));
    assert_eq!(app.overlay, Overlay::None);
    // S shows the finished sweep again; n there makes a new one.
    app.on_key(key(KeyCode::Char('S')));
    assert_eq!(app.overlay, Overlay::Sweep);
    app.on_key(key(KeyCode::Char('n')));
    assert_eq!(app.overlay, Overlay::SweepForm);
}

#[test]
fn the_answer_panel_shows_advisors_decision_and_where_the_first_feature_flips_it() {
    let mut app = trained_app();
    app.on_event(AppEvent::Predicted { alias: "stable".into(), result: Ok((0.9974, "1".into())) });
    let advice = logitflow_kit::wire::Advice {
        model_name: "admissions".into(),
        model_version: "1".into(),
        probability: 0.9974,
        threshold: 0.5,
        positive: true,
        decision: "admitted".into(),
        needed: Some(logitflow_kit::wire::Needed {
            feature: "score".into(),
            target: 0.5,
            value: 48.6123,
        }),
        class: None,
    };
    app.on_event(AppEvent::Advised(Ok(advice)));
    let text = screen(&app, 120, 40);
    assert!(
        text.contains("threshold 0.5 → admitted; flips at score = 48.61 · advisor v1"),
        "{text}"
    );
    // A move of the aliases makes it stale with the answers.
    app.on_event(AppEvent::Models(versions(&[("stable", 1)])));
    app.on_event(AppEvent::Models(versions(&[("stable", 2)])));
    assert!(app.advice.is_none() && !screen(&app, 120, 40).contains("advisor v1"));
    app.on_event(AppEvent::Advised(Err("advisor: serve is not ready".into())));
    app.on_event(AppEvent::Predicted { alias: "stable".into(), result: Ok((0.9974, "2".into())) });
    assert!(screen(&app, 80, 24).contains("advisor: advisor: serve is not ready"));
}

#[test]
fn b_scores_a_file_through_batch_with_progress_and_says_where_it_went() {
    let mut app = trained_app();
    app.overlays.score.paths =
        ["/data/admissions.csv".into(), "/home/test/exports/admissions-scored.csv".into()];
    assert_eq!(app.on_key(key(KeyCode::Char('B'))), None);
    assert_eq!(app.overlay, Overlay::Score);
    let text = screen(&app, 80, 24);
    assert!(
        text.contains("Batch scoring") && text.contains("│    score  /data/admissions.csv█"),
        "labels right-aligned:\n{text}"
    );
    // The output path edited: the second field.
    app.on_key(key(KeyCode::Down));
    for _ in 0.."admissions-scored.csv".len() {
        app.on_key(key(KeyCode::Backspace));
    }
    for c in "out.csv".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    let expected = Action::Score {
        input: "/data/admissions.csv".into(),
        output: "/home/test/exports/out.csv".into(),
    };
    assert_eq!(app.on_key(key(KeyCode::Enter)), Some(expected));
    assert_eq!((app.overlay, app.scoring), (Overlay::None, Some(0)));
    app.on_event(AppEvent::Scoring(8192));
    assert_eq!(app.status, "scoring… 8192 rows");
    // One at a time.
    app.on_key(key(KeyCode::Char('B')));
    assert_eq!(app.on_key(key(KeyCode::Enter)), None);
    assert_eq!(app.status, "a scoring is already running");
    app.on_key(key(KeyCode::Esc));
    app.on_event(AppEvent::Scored(Ok((2000, "1".into(), "/home/test/exports/out.csv".into()))));
    assert_eq!(
        (app.scoring, app.status.as_str()),
        (None, "scored 2000 rows with admissions v1 → /home/test/exports/out.csv")
    );
    app.on_event(AppEvent::Scored(Err(
        "line 5, column \"score\": \"x\" is not a finite number".into()
    )));
    assert!(app.status.starts_with("scoring failed: line 5"), "{}", app.status);
}

#[test]
fn m_smooths_the_loss_curves_and_says_so() {
    let mut app = trained_app();
    let raw = app.chart.train.clone();
    app.on_key(key(KeyCode::Char('m')));
    assert!(screen(&app, 120, 40).contains("Loss (smoothed) — sgd"));
    assert_ne!(app.chart.train, raw, "the drawn curve is the moving average");
    assert_eq!(app.chart.train.first(), raw.first(), "which starts where the losses do");
    app.on_key(key(KeyCode::Char('l')));
    assert!(screen(&app, 120, 40).contains("Loss (log₁₀, smoothed)"));
    app.on_key(key(KeyCode::Char('l')));
    app.on_key(key(KeyCode::Char('m')));
    assert_eq!(app.chart.train, raw);
}

#[test]
fn runs_ten_times_apart_in_length_are_compared_on_a_log_epoch_axis() {
    let (short, long) = (run_report(&evaluation(1), 7), run_report(&evaluation(2), 625));
    let comparison = super::app::RunComparison::of(&short, Some(&long));
    assert!(comparison.log_epochs);
    let last =
        comparison.curves.iter().flat_map(|(_, _, p)| p.iter()).map(|p| p.0).fold(0.0, f64::max);
    assert!((last - 625f64.log10()).abs() < 1e-12, "{last}");
    let mut app = trained_app();
    app.overlays.comparison = Some(comparison);
    app.overlay = Overlay::RunView;
    let text = screen(&app, 120, 40);
    assert!(text.contains("epoch (log)") && text.contains("100") && text.contains("625"), "{text}");
}

#[test]
fn a_run_names_the_solver_auto_chose_and_an_iterative_fit_its_distance_from_the_optimum() {
    // An sgd run that stopped away from the optimum: the Model panel says how far, and `C`
    // says why there is no coefficient table rather than that there is no model.
    let mut app = trained_app();
    let mut report = run_report(&evaluation(1), 30);
    report.model.fit.optimality =
        Some(logitflow_core::inference::Optimality::new(0.169045, 0.168976));
    report.model.fit.statistics_note =
        Some("given for an exact, converged fit: this sgd fit stopped early".into());
    app.on_event(AppEvent::RunFinished(Ok(Box::new(report.clone()))));
    let text = screen(&app, 120, 40);
    assert!(text.contains("train loss 0.041% above optimum"), "{text}");
    assert!(text.contains("Loss — sgd 30/1000 epochs"), "{text}");
    app.on_key(key(KeyCode::Char('C')));
    assert_eq!(app.overlay, Overlay::None);
    assert_eq!(
        app.status,
        "no coefficient table for v1: standard errors given for an exact, converged fit: this sgd fit stopped early \
         (training log loss 0.041% above the exact optimum (0.169045 vs 0.168976))"
    );

    // With its estimates (no standard errors), `C` shows them and says how far they are.
    let mut with_terms = report.clone();
    let coefficients = logitflow_core::coefficients::Coefficients::from([("score".into(), 0.2)]);
    with_terms.model.fit.terms =
        logitflow_core::inference::TermStatistics::estimates_only(-10.0, &coefficients);
    app.on_event(AppEvent::RunFinished(Ok(Box::new(with_terms))));
    app.on_key(key(KeyCode::Char('C')));
    assert_eq!(app.overlay, Overlay::Coefficients);
    let text = screen(&app, 120, 40);
    assert!(
        text.contains("estimates not exact: training log loss 0.041% above the exact optimum"),
        "{text}"
    );
    app.on_key(key(KeyCode::Esc));

    // A run by auto: the title names its choice once the run is over.
    report.params.solver = Solver::Newton;
    report.model.fit.optimality = None;
    report.model.fit.solver_choice = Some(logitflow_core::logistic::SolverChoice {
        solver: Solver::Newton,
        reason: "1 term".into(),
    });
    app.on_event(AppEvent::RunFinished(Ok(Box::new(report))));
    let text = screen(&app, 120, 40);
    assert!(text.contains("Loss — auto → newton 30/1000 epochs"), "{text}");
    assert!(!text.contains("above optimum"), "{text}");
}

#[test]
fn the_form_names_the_weight_offset_and_cluster_columns_of_the_next_run() {
    let mut app = trained_app();
    app.row_roles.weights = Some("w".into());
    app.on_key(key(KeyCode::Char('h')));
    let text = screen(&app, 80, 24);
    assert!(text.contains("weights  w") && text.contains("offset  none"), "{text}");
    assert!(
        text.contains("(not used with covariance nonrobust)"),
        "the cluster field waits for the covariance: {text}"
    );
    for _ in 0..super::app::ParamsForm::COVARIANCE {
        app.on_key(key(KeyCode::Down));
    }
    // Back from nonrobust to cluster: refused until the cluster column is named.
    app.on_key(key(KeyCode::Left));
    let text = screen(&app, 80, 24);
    assert!(
        text.contains("covariance  ◀ cluster ▶")
            && text.contains("cluster: name the cluster column"),
        "{text}"
    );
    for _ in super::app::ParamsForm::COVARIANCE..16 {
        app.on_key(key(KeyCode::Down));
    }
    for c in "island".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    match app.on_key(key(KeyCode::Enter)) {
        Some(Action::Train(params)) => {
            assert_eq!(params.covariance, logitflow_core::logistic::Covariance::Cluster)
        }
        other => panic!("expected a retrain, got {other:?}"),
    }
    assert_eq!(
        app.row_roles,
        logitflow_core::roles::RoleColumns {
            weights: Some("w".into()),
            cluster: Some("island".into()),
            ..Default::default()
        }
    );
}

#[test]
fn the_form_chooses_the_covariance_by_arrows_and_trains_with_it() {
    let mut app = trained_app();
    app.on_key(key(KeyCode::Char('h')));
    for _ in 0..super::app::ParamsForm::COVARIANCE {
        app.on_key(key(KeyCode::Down));
    }
    assert!(screen(&app, 80, 24).contains("covariance  ◀ nonrobust ▶"), "{}", screen(&app, 80, 24));
    app.on_key(key(KeyCode::Right));
    // Typing on a choice types nothing: the other fields are as they were.
    app.on_key(key(KeyCode::Char('7')));
    app.on_key(key(KeyCode::Backspace));
    let text = screen(&app, 80, 24);
    assert!(text.contains("covariance  ◀ hc0 ▶") && text.contains("validation  auto"), "{text}");
    match app.on_key(key(KeyCode::Enter)) {
        Some(Action::Train(params)) => {
            assert_eq!(params.covariance, logitflow_core::logistic::Covariance::Hc0);
            assert_eq!(params.validation_fraction, None);
        }
        other => panic!("expected a retrain, got {other:?}"),
    }
    // The form opens with the parameters trained last (hc0); ← twice: nonrobust, then round to
    // cluster.
    app.on_key(key(KeyCode::Char('h')));
    for _ in 0..super::app::ParamsForm::COVARIANCE {
        app.on_key(key(KeyCode::Down));
    }
    app.on_key(key(KeyCode::Left));
    app.on_key(key(KeyCode::Left));
    assert!(screen(&app, 80, 24).contains("covariance  ◀ cluster ▶"), "{}", screen(&app, 80, 24));
}

/// A penalised run's form and its epochs as the app gets them: penalty l1 and ten folds from the
/// form train by coordinate descent, and each λ's event grows the path and CV charts that stand
/// where the loss chart was, a new run clearing them.
#[test]
fn a_path_from_the_form_draws_its_charts_lambda_by_lambda() {
    let mut app = App::new("/home/test".into(), "admissions".into(), TrainParams::default(), 0.5);
    let now = app.now;
    app.on_event(AppEvent::Services(ready_services(now)));
    app.on_key(key(KeyCode::Char('h')));
    for _ in 0..super::app::ParamsForm::PENALTY {
        app.on_key(key(KeyCode::Down));
    }
    app.on_key(key(KeyCode::Right));
    app.on_key(key(KeyCode::Right));
    for _ in 0..3 {
        app.on_key(key(KeyCode::Down));
    }
    app.on_key(key(KeyCode::Char('5')));
    let Some(Action::Train(params)) = app.on_key(key(KeyCode::Enter)) else {
        panic!("no training: {:?}", app.overlays.params.error)
    };
    assert_eq!(
        (params.penalty, params.cv, params.lambda, params.l2),
        (logitflow_core::logistic::Penalty::L1, Some(5), None, 0.0)
    );
    app.on_event(AppEvent::Pipeline(PipelineEvent::StageStarted(Stage::Train)));
    for n in 1..=3 {
        let lambda = 10f64.powi(-(n as i32));
        let point = logitflow_core::logistic::PathEvent {
            lambda,
            weights: vec![0.1 * (n - 1) as f64],
            cv: Some([1.0 / n as f64, 0.05]),
        };
        let event = EpochEvent {
            epoch: n,
            train_loss: 0.5,
            val_loss: None,
            grad_norm: 1e-9,
            elapsed_ms: 1.0,
            path: Some(point),
        };
        app.on_event(AppEvent::Pipeline(PipelineEvent::Epoch(event)));
        let text = screen(&app, 120, 40);
        assert!(text.contains(&format!("Path — L1 — {n} λ")), "λ {n}:\n{text}");
        assert!(text.contains("CV deviance ± 1 s.e."), "{text}");
    }
    assert_eq!(app.path.chosen(), Some((2, 2)));
}

/// An app after a K-class run: a three-class model fitted by the core on a small grid of rows
/// (the species of a made-up island), its metrics, and its report.
fn three_class_app() -> App {
    use logitflow_core::logistic::Examples;
    use logitflow_core::logistic::multinomial::{
        ClassModel, Coding, fit_multinomial, multinomial_statistics,
    };
    let mut app = trained_app();
    let names: Vec<String> = ["Adelie", "Chinstrap", "Gentoo"].map(String::from).into();
    // Two terms, three overlapping classes: the fit converges and has statistics.
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..90 {
        let t = f64::from(i);
        x.extend([(t * 0.37).sin() + f64::from(i % 3), (t * 0.11).cos()]);
        y.push(f64::from((i + i / 7) % 3));
    }
    let fit = fit_multinomial(
        Examples::new(&x, &y, 2),
        (3, Coding::Reference { class: 0 }),
        0.0,
        &Default::default(),
        |_| {},
    );
    let transform = logitflow_core::scale::Transform {
        scaling: logitflow_core::scale::Scaling::None,
        feature_names: vec!["bill".into(), "flipper".into()],
        encodings: Vec::new(),
        term_names: Vec::new(),
        offset: vec![0.0, 0.0],
        scale: vec![1.0, 1.0],
    };
    let mut model = ClassModel::new(&fit, &transform, &names);
    model.tables = multinomial_statistics(&fit, &transform, transform.term_names())
        .expect("a regular Hessian");
    let mut probabilities = vec![0.0; 90 * 3];
    for (row, out) in x.chunks_exact(2).zip(probabilities.chunks_exact_mut(3)) {
        model.probabilities_raw(&transform, row, out);
    }
    let mut evaluated = evaluation(2);
    evaluated.metrics =
        logitflow_core::metrics::multiclass_metrics(&probabilities, &y, &names, 0.5);
    evaluated.classes = Some(Classes::several(names));
    evaluated.multinomial = Some(model);
    evaluated.feature_names = vec!["bill".into(), "flipper".into()];
    evaluated.sample = Vec::new();
    app.on_event(AppEvent::Pipeline(PipelineEvent::Evaluated(Box::new(evaluated.clone()))));
    let mut report = run_report(&evaluated, 30);
    report.model.multinomial = evaluated.multinomial.clone();
    app.on_event(AppEvent::RunFinished(Ok(Box::new(report))));
    app
}

/// A K-class model's answer is a labelled bar per class, the most probable marked; the Model
/// panel shows the K×K confusion and one class's table against the reference, and K moves to
/// the next class, in the panel and in the C view.
#[test]
fn a_k_class_model_answers_with_a_bar_per_class_and_a_table_per_class() {
    use logitflow_kit::wire::ClassProbability;
    let mut app = three_class_app();
    let class = |name: &str, probability: f64| ClassProbability { class: name.into(), probability };
    let answer = vec![class("Adelie", 0.0712), class("Chinstrap", 0.8123), class("Gentoo", 0.1165)];
    app.on_event(AppEvent::PredictedClasses {
        alias: "stable".into(),
        result: Ok((answer, "2".into())),
    });
    let text = screen(&app, 120, 40);
    let line =
        |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap_or_default().to_string();
    assert!(line("stable v2 Adelie").contains("0.0712 ██"), "{text}");
    assert!(line("Chinstrap 0.8123").contains("░ ←"), "the most probable is marked: {text}");
    assert!(
        line("Gentoo    0.1165").contains("░") && !line("Gentoo    0.1165").contains("←"),
        "{text}"
    );
    assert!(text.contains("confusion: true ↓ predicted →"), "{text}");
    assert!(text.contains("macro: prec"), "{text}");
    assert!(line("Chinstrap against Adelie").contains("K: next class"), "{text}");
    assert!(line("term ").contains("RRR"), "{text}");
    assert_eq!(app.on_key(key(KeyCode::Char('K'))), None);
    assert_eq!(app.status, "coefficients of Gentoo against Adelie");
    assert!(screen(&app, 120, 40).contains("Gentoo against Adelie  K: next class"));
    assert_eq!(app.on_key(key(KeyCode::Char('C'))), None);
    assert_eq!(app.overlay, Overlay::Coefficients);
    let view = screen(&app, 120, 40);
    assert!(
        view.contains("Coefficients of v2 — Gentoo against Adelie (←→ class)")
            && view.contains("RRR"),
        "{view}"
    );
    app.on_key(key(KeyCode::Right));
    assert!(screen(&app, 120, 40).contains("— Chinstrap against Adelie (←→ class)"));
    app.on_key(key(KeyCode::Esc));
    insta::with_settings!({ filters => volatile_filters() }, {
        insta::assert_snapshot!("three_classes_120x40", screen(&app, 120, 40));
    });
}

#[test]
fn a_column_of_thousands_of_levels_shows_its_largest_terms_and_steps_its_levels() {
    use logitflow_core::inference::{SparseColumnTerms, TermStatistics};
    let mut app = penguins_app();
    let shops: Vec<String> = (0..5_000).map(|i| format!("s{i:04}")).collect();
    // As train reports a column held sparse: a term a level but the first, last in the table.
    let coefficients = std::iter::once(("bill_length_mm".to_string(), 0.5))
        .chain(shops[1..].iter().enumerate().map(|(i, s)| {
            let estimate =
                if i % 1_000 == 7 { 9.0 + i as f64 / 1e4 } else { 0.001 * i as f64 / 5e3 };
            (format!("species={s}"), estimate)
        }))
        .collect();
    if let Some(report) = app.last_report.as_mut() {
        report.data_summary.categorical.insert("species".into(), shops);
        report.model.fit.terms = TermStatistics::estimates_only(-1.0, &coefficients);
        report.model.fit.sparse_columns =
            vec![SparseColumnTerms { column: "species".into(), terms: 4_999 }];
    }
    app.on_key(key(KeyCode::Char('C')));
    assert_eq!(app.overlay, Overlay::Coefficients);
    let text = screen(&app, 120, 40);
    // The five largest (levels 8, 1008, …) among the ten shown, in term order; the rest left out.
    for level in ["s0008", "s1008", "s2008", "s3008", "s4008"] {
        assert!(text.contains(&format!("species={level} ")), "{level}: {text}");
    }
    assert!(text.contains("bill_length_mm") && !text.contains("species=s0002 "), "{text}");
    assert!(text.contains("species: the 10 largest of its 4999 level terms shown"), "{text}");
    // The form lists the first levels and how many there are, and ← → step through them all.
    app.on_key(key(KeyCode::Esc));
    app.on_key(key(KeyCode::Char('p')));
    let text = screen(&app, 120, 40);
    assert!(text.contains("◀▶ 5000 levels: s0000 | s0001 |"), "how many, the first: {text}");
    app.on_key(key(KeyCode::Left));
    assert_eq!(app.overlays.predict.values[0], "s4999", "from none, ← is the last level");
    app.on_key(key(KeyCode::Right));
    assert_eq!(app.overlays.predict.values[0], "s0000");
}
