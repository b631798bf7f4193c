//! A bounded chaos test: for a fixed time, the eight real services are killed (SIGKILL),
//! frozen (SIGSTOP for a while, then SIGCONT) and their stored datasets damaged, at random,
//! while pipeline runs, record posts and predictions go on. Then it reports what it did, and
//! checks that no acknowledged state was lost and no answer was wrong:
//!
//! - every run that succeeded has its version in the registry, with the model it reported;
//! - every acknowledged records post is stored exactly once (posts carry an Idempotency-Key and
//!   are retried until acknowledged, so the final count is the sum of what was acknowledged);
//! - every prediction named a registered version and gave that version's exact probability.

mod common;

use logitflow::commands::Home;
use logitflow::pipeline::{Clients, PipelineRequest, run_pipeline};
use logitflow::supervisor::{ServiceName, Status, Supervisor, SupervisorConfig};
use logitflow_core::model::Model;
use logitflow_store::{Kind, Store};
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long the chaos lasts.
const CHAOS: Duration = Duration::from_secs(20);

fn request(home: &std::path::Path, epochs: usize) -> PipelineRequest {
    let args = logitflow::cli::DataArgs {
        data: None,
        label: None,
        features: None,
        categorical: Vec::new(),
        positive: None,
        labels: None,
        na_values: None,
        delimiter: None,
        decimal: None,
        test_data: None,
        test_fraction: 0.2,
        seed: 42,
        missing: logitflow::cli::MissingArg::Error,
        missing_text: logitflow::cli::MissingTextArg::MostFrequent,
        drop_duplicates: false,
        scaling: logitflow::cli::ScalingArg::Standard,
        solver: logitflow::cli::SolverArg::Sgd,
        lr: None,
        epochs: Some(epochs),
        batch_size: None,
        l2: None,
        patience: Some(0),
        tolerance: None,
        validation_fraction: None,
        class_weight: logitflow::cli::ClassWeightArg::None,
        cov: logitflow::cli::CovarianceArg::NONROBUST,
        weights: None,
        offset: None,
        penalty: logitflow::cli::PenaltyArg::None,
        l1_ratio: None,
        lambda: None,
        cv: None,
        folds: None,
        select: "1se".to_string(),
        reference: None,
        model: None,
        threshold: 0.5,
    };
    logitflow::commands::pipeline_request(home, &args, Vec::new()).expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_loses_no_acknowledged_state_and_gives_no_wrong_answer() {
    let home = tempfile::tempdir().expect("tempdir");
    let home_path = home.path().to_path_buf();
    let first = request(&home_path, 3);
    let mut config = SupervisorConfig::new(
        home_path.clone(),
        logitflow::commands::allowed_roots(&home_path, &first),
    )
    .expect("config");
    config.exe = env!("CARGO_BIN_EXE_logitflow").into();
    config.restart.backoff_base = Duration::from_millis(100);
    config.restart.limit = 1000;
    config.grace = Duration::from_secs(1);
    let token = config.token.clone();
    let sup = Supervisor::start(config, &ServiceName::ALL).expect("starts");
    sup.wait_ready(Duration::from_secs(60)).await.expect("ready");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let clients = Clients::from_supervisor(&sup).expect("clients");
    let kept = logitflow::commands::Home::new(home_path.clone(), None);
    run_pipeline(&clients, &first, tx, Some(&kept)).await.expect("a first run before the chaos");

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    // Runs with new parameters (new versions), until the chaos ends.
    let runs = {
        let (sup, stop, home) = (sup.clone(), stop.clone(), home_path.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed, mut reports) = (0, 0, Vec::new());
            let mut epochs = 4;
            while !stop.load(Ordering::Relaxed) {
                epochs += 1;
                let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
                let outcome = match Clients::from_supervisor(&sup) {
                    Some(clients) => {
                        tokio::time::timeout(
                            Duration::from_secs(15),
                            run_pipeline(
                                &clients,
                                &request(&home, epochs),
                                tx,
                                Some(&Home::new(home.clone(), None)),
                            ),
                        )
                        .await
                    }
                    None => Ok(Err(logitflow::pipeline::PipelineError::Cancelled)),
                };
                match outcome {
                    Ok(Ok(report)) => {
                        ok += 1;
                        reports.push(report);
                    }
                    _ => {
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            (ok, failed, reports)
        })
    };

    // Records posts, each retried with its key until acknowledged.
    let posts = {
        let (sup, stop, token) = (sup.clone(), stop.clone(), token.clone());
        tokio::spawn(async move {
            let http =
                reqwest::Client::builder().timeout(Duration::from_secs(3)).build().expect("client");
            let (mut acknowledged, mut retries) = (0usize, 0usize);
            let mut post = 0;
            while !stop.load(Ordering::Relaxed) {
                post += 1;
                let records: Vec<serde_json::Value> =
                    (0..5).map(|i| serde_json::json!({"score": f64::from(post * 5 + i), "admitted": f64::from(i % 2)})).collect();
                // Bounded: a post that no restarted ingest takes in a minute fails the test
                // rather than spinning a worker for ever.
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                loop {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "post {post} was not acknowledged within 60 s ({retries} retries)"
                    );
                    let Some(addr) = sup.snapshot(ServiceName::Ingest).and_then(|s| s.addr) else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let sent = http
                        .post(format!("http://{addr}/v1/collections/chaos/records"))
                        .bearer_auth(&token)
                        .header("idempotency-key", format!("post-{post}"))
                        .json(&serde_json::json!({"records": records}))
                        .send()
                        .await;
                    if sent.is_ok_and(|r| r.status().is_success()) {
                        acknowledged += 5;
                        break;
                    }
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            (acknowledged, retries)
        })
    };

    // Predictions: each answer is checked against the model of the version it names.
    let answers = Arc::new(std::sync::Mutex::new(Vec::<(String, f64)>::new()));
    let predictions = {
        let (sup, stop, answers) = (sup.clone(), stop.clone(), answers.clone());
        tokio::spawn(async move {
            let mut failed = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let answer = match sup.client(ServiceName::Serve) {
                    Some(serve) => {
                        serve
                            .post::<_, logitflow_kit::wire::PredictResponse>(
                                "/v1/predict",
                                &serde_json::json!({"model": "admissions", "inputs": [[80.0]]}),
                            )
                            .await
                    }
                    None => Err(logitflow_kit::client::ClientError::Transport {
                        service: "serve".into(),
                        detail: "no address".into(),
                    }),
                };
                match answer {
                    Ok(a) => {
                        answers.lock().expect("answers").push((a.model_version, a.probabilities[0]))
                    }
                    Err(_) => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failed
        })
    };

    // The chaos itself.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (kills, freezes, damages) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
    while started.elapsed() < CHAOS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..600))).await;
        let victim = ServiceName::ALL[rng.random_range(0..ServiceName::ALL.len())];
        let Some(pid) = sup.snapshot(victim).and_then(|s| s.pid) else { continue };
        match rng.random_range(0..3) {
            0 => {
                common::kill9(pid);
                kills.fetch_add(1, Ordering::Relaxed);
            }
            1 => {
                let _ =
                    std::process::Command::new("kill").args(["-STOP", &pid.to_string()]).status();
                tokio::time::sleep(Duration::from_millis(rng.random_range(100..1500))).await;
                let _ =
                    std::process::Command::new("kill").args(["-CONT", &pid.to_string()]).status();
                freezes.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                // A stored dataset damaged on disk: the next run must not reuse it.
                let artifacts: Vec<std::path::PathBuf> =
                    std::fs::read_dir(home_path.join("artifacts"))
                        .map(|d| {
                            d.flatten()
                                .map(|e| e.path())
                                .filter(|p| p.join("x.npy").exists())
                                .collect()
                        })
                        .unwrap_or_default();
                // One byte cut off the end, of any of them: a second cut never undoes the first,
                // as flipping the same bit of the same file twice did.
                let chosen = (!artifacts.is_empty())
                    .then(|| &artifacts[rng.random_range(0..artifacts.len())]);
                let file = chosen.and_then(|dir| {
                    std::fs::OpenOptions::new().write(true).open(dir.join("x.npy")).ok()
                });
                if let Some(file) = file
                    && let Ok(len) = file.metadata().map(|m| m.len())
                    && len > 0
                    && file.set_len(len - 1).is_ok()
                {
                    damages.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (runs_ok, runs_failed, reports) = runs.await.expect("runs");
    let (acknowledged, retries) = posts.await.expect("posts");
    let failed_predictions = predictions.await.expect("predictions");
    sup.wait_ready(Duration::from_secs(60))
        .await
        .expect("every service ready again after the chaos");

    // Nothing acknowledged is lost, nothing is stored twice.
    let ingest = sup.client(ServiceName::Ingest).expect("ingest");
    let collection: serde_json::Value =
        ingest.get("/v1/collections/chaos").await.expect("the collection");
    let stored = collection["records"].as_u64().unwrap_or(0) as usize;
    // Every successful run's version is registered with the model it reported.
    let registry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home_path.join("registry.json")).expect("registry"))
            .expect("registry json");
    let versions =
        registry["models"]["admissions"]["versions"].as_array().cloned().unwrap_or_default();
    for report in &reports {
        assert!(
            versions.iter().any(|v| v["version"] == report.model.version),
            "v{} of a successful run is registered",
            report.model.version
        );
    }
    // Every answer is that version's model's own answer.
    let store = Store::open(&home_path).expect("store");
    let answers = answers.lock().expect("answers").clone();
    let mut expected = std::collections::BTreeMap::new();
    for (version, p) in &answers {
        let model = expected.entry(version.clone()).or_insert_with(|| {
            let entry = versions
                .iter()
                .find(|v| v["version"].as_u64() == version.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("v{version} answered but is not registered"));
            let artifact = entry["artifact"].as_str().expect("artifact");
            store
                .read_json::<Model>(artifact, Kind::Model, "model.json")
                .expect("the answering model is stored")
        });
        assert!(
            (model.probability_raw(&[80.0]) - p).abs() < 1e-12,
            "v{version} answered {p}, its model says {}",
            model.probability_raw(&[80.0])
        );
    }
    let restarts: u32 = sup.snapshots().iter().map(|s| s.restarts).sum();
    println!(
        "chaos for {CHAOS:?}: {} kills, {} freezes, {} datasets damaged, {restarts} restarts; runs {runs_ok} ok and {runs_failed} failed; \
         records {acknowledged} acknowledged ({retries} retries), {stored} stored; {} predictions checked, {failed_predictions} refused",
        kills.load(Ordering::Relaxed),
        freezes.load(Ordering::Relaxed),
        damages.load(Ordering::Relaxed),
        answers.len()
    );
    assert_eq!(stored, acknowledged, "acknowledged records are stored, once each");
    assert!(runs_ok > 0 && !answers.is_empty(), "work went on during the chaos");
    assert!(sup.snapshots().iter().all(|s| s.status == Status::Ready));
    sup.shutdown().await;
}
