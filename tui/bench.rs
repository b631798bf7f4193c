//! `logitflow bench`: measurements that are not tests (BENCHMARKS.md shows the figures).
//!
//! - `bench serve`: N keep-alive connections for T seconds against serve's inference route —
//!   a real serve process with the worked example's model — and the same load against a bare
//!   axum handler (started by the same command, in its own process) that decodes the same
//!   request and does the same arithmetic with none of the service runtime. Reports requests/s,
//!   p50/p99/p99.9 latency, errors, the ratio, and serve's resident memory when idle.
//! - `bench pipeline`: time from launch to all services ready, train-to-served on the bundled
//!   data (and on a generated CSV of any size), and each service's resident memory.

use crate::supervisor::{ServiceName, Supervisor, SupervisorConfig};
use anyhow::Context;
use logitflow_core::logistic::sigmoid;
use logitflow_kit::wire::{InferOutput, InferRequest, InferResponse};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchWhat {
    /// Load-test serve against a bare handler.
    Serve(ServeBench),
    /// Startup, train-to-served and memory of the whole pipeline.
    Pipeline(PipelineBench),
    /// The bare handler `bench serve` compares with (started by it; not for people).
    #[command(hide = true)]
    BareServer,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeBench {
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds of load per target, split into alternating rounds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// The two targets take turns this many times, so drift on a shared machine hits both.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PipelineBench {
    /// Also time a generated CSV of this many rows (10 features), ingest included.
    #[arg(long)]
    pub rows: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub target: String,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// The server process's CPU time (user + system) per answered request, in µs: steadier
    /// than throughput on a shared machine, where the load generator competes for the cores.
    pub server_cpu_us_per_request: Option<f64>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Serve(a) => serve_bench(a).await,
        BenchWhat::Pipeline(a) => pipeline_bench(a).await,
        BenchWhat::BareServer => bare_server().await,
    }
}

/// A home holding the worked example's model as `admissions` v1, stable.
fn worked_example_home() -> anyhow::Result<tempfile::TempDir> {
    use logitflow_core::model::Model;
    use logitflow_core::registry::{Registry, STABLE};
    use logitflow_core::store::{Kind, Store};
    let home = tempfile::tempdir()?;
    let store = Store::open(home.path())?;
    let id = store.put_json(Kind::Model, "bench", vec![], serde_json::json!({}), "model.json", &Model::worked_example())?;
    let registry = Registry::open(home.path());
    registry.register("admissions", &id, None, None)?;
    registry.set_alias("admissions", STABLE, 1)?;
    Ok(home)
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let mut after_name = stat.rsplit_once(')')?.1.split_whitespace();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name, in clock ticks.
    let utime: u64 = after_name.nth(11)?.parse().ok()?;
    let stime: u64 = after_name.next()?.parse().ok()?;
    // The kernel reports /proc times in USER_HZ, which is 100 on every Linux ABI.
    Some((utime + stime) as f64 / 100.0)
}

fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

async fn serve_bench(args: ServeBench) -> anyhow::Result<()> {
    let home = worked_example_home()?;
    let config = SupervisorConfig::new(home.path().to_path_buf(), Vec::new())?;
    let token = config.token.clone();
    let supervisor = Supervisor::start(config, &[ServiceName::Serve])?;
    let outcome = async {
        supervisor.wait_ready(Duration::from_secs(20)).await.map_err(|e| anyhow::anyhow!(e))?;
        let serve = supervisor.snapshot(ServiceName::Serve).context("serve")?;
        let (addr, pid) = (serve.addr.context("serve address")?, serve.pid.context("serve pid")?);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle_rss = resident_bytes(pid);
        let mut bare = tokio::process::Command::new(std::env::current_exe()?)
            .args(["bench", "bare-server"])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let bare_addr = {
            use tokio::io::AsyncBufReadExt;
            let stdout = bare.stdout.take().context("bare stdout")?;
            let line = tokio::io::BufReader::new(stdout).lines().next_line().await?.context("bare listening line")?;
            crate::supervisor::listening_addr(&line).context("bare address")?
        };
        let round = Duration::from_secs_f64(args.seconds as f64 / f64::from(args.rounds.max(1)));
        let bare_pid = bare.id().context("bare pid")?;
        let (mut bare_samples, mut serve_samples) = (Samples::default(), Samples::default());
        for _ in 0..args.rounds.max(1) {
            bare_samples.add(load(bare_addr, None, args.connections, round, bare_pid).await?);
            serve_samples.add(load(addr, Some(token.clone()), args.connections, round, pid).await?);
        }
        let bare_result = bare_samples.result("bare axum handler");
        let serve_result = serve_samples.result("logitflow serve");
        let _ = bare.kill().await;
        Ok::<_, anyhow::Error>((serve_result, bare_result, idle_rss))
    }
    .await;
    supervisor.shutdown().await;
    let (serve, bare, idle_rss) = outcome?;
    let ratio = serve.requests_per_s / bare.requests_per_s.max(1e-9);
    if args.json {
        println!("{}", serde_json::json!({"serve": serve, "bare": bare, "ratio": ratio, "serve_idle_rss_bytes": idle_rss}));
    } else {
        println!(
            "{} connections, {} s per target in {} alternating rounds, same request (1 row), same run",
            args.connections, args.seconds, args.rounds
        );
        println!("{:<20} {:>10} {:>9} {:>9} {:>9} {:>7} {:>12}", "target", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "CPU µs/req");
        for r in [&serve, &bare] {
            let cpu = r.server_cpu_us_per_request.map_or_else(|| "-".to_string(), |us| format!("{us:.1}"));
            println!(
                "{:<20} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>12}",
                r.target, r.requests_per_s, r.p50_ms, r.p99_ms, r.p999_ms, r.errors, cpu
            );
        }
        println!("serve / bare throughput: {:.1}%", ratio * 100.0);
        if let Some(rss) = idle_rss {
            println!("serve resident memory when idle: {:.1} MB", rss as f64 / 1e6);
        }
    }
    Ok(())
}

/// Latencies (µs), errors, time under load and the server's CPU time, summed over rounds.
#[derive(Debug, Default)]
struct Samples {
    latencies: Vec<u32>,
    errors: u64,
    seconds: f64,
    server_cpu_seconds: Option<f64>,
}

impl Samples {
    fn add(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.seconds += other.seconds;
        self.server_cpu_seconds = match (self.server_cpu_seconds, other.server_cpu_seconds) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }

    fn result(mut self, target: &str) -> LoadResult {
        self.latencies.sort_unstable();
        let l = &self.latencies;
        let pct =
            |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).map_or(f64::NAN, |&us| f64::from(us) / 1e3);
        LoadResult {
            target: target.to_string(),
            requests: l.len() as u64,
            errors: self.errors,
            seconds: self.seconds,
            requests_per_s: l.len() as f64 / self.seconds.max(1e-9),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            p999_ms: pct(0.999),
            server_cpu_us_per_request: self.server_cpu_seconds.map(|s| s * 1e6 / (l.len() as f64).max(1.0)),
        }
    }
}

/// `connections` keep-alive connections, each sending one request after another for `length`.
///
/// The client is hyper's connection-level HTTP/1.1 client with the request prepared once: the
/// load generator shares the machine with the server, so every cycle it spends (a general
/// client parses the URL and builds its headers on each request) is taken from the server.
async fn load(
    addr: std::net::SocketAddr,
    token: Option<String>,
    connections: usize,
    length: Duration,
    server_pid: u32,
) -> anyhow::Result<Samples> {
    use http_body_util::{BodyExt, Full};
    use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
    let body = bytes::Bytes::from(serde_json::to_vec(&InferRequest::rows(&[vec![80.0]]))?);
    let host = HeaderValue::from_str(&addr.to_string())?;
    let auth = token.map(|t| HeaderValue::from_str(&format!("Bearer {t}"))).transpose()?;
    let request = move || {
        let mut r = hyper::Request::new(Full::new(body.clone()));
        *r.method_mut() = hyper::Method::POST;
        *r.uri_mut() = hyper::Uri::from_static(INFER_PATH);
        let headers = r.headers_mut();
        headers.insert(HOST, host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(auth) = &auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        r
    };
    let cpu_before = cpu_seconds(server_pid);
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 14);
            let mut errors = 0u64;
            'connect: while Instant::now() < deadline {
                let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                    errors += 1;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let Ok((mut sender, connection)) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await else {
                    errors += 1;
                    continue;
                };
                tokio::spawn(connection);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let answered = match sender.send_request(request()).await {
                        Ok(response) => response.status().is_success() && response.into_body().collect().await.is_ok(),
                        Err(_) => false,
                    };
                    if answered {
                        latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    } else {
                        errors += 1;
                        // A failed exchange may leave the connection unusable: open a new one.
                        continue 'connect;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut samples = Samples::default();
    for task in tasks {
        let (l, e) = task.await?;
        samples.latencies.extend(l);
        samples.errors += e;
    }
    samples.seconds = started.elapsed().as_secs_f64();
    samples.server_cpu_seconds = cpu_before.zip(cpu_seconds(server_pid)).map(|(before, after)| after - before);
    Ok(samples)
}

const INFER_PATH: &str = "/v2/models/admissions/infer";

/// The limit: decode the same request, the same arithmetic, no middleware, no auth, no catalog.
async fn bare_server() -> anyhow::Result<()> {
    use axum::routing::post;
    async fn infer(axum::Json(request): axum::Json<InferRequest>) -> axum::Json<InferResponse> {
        let x = request.inputs.first().and_then(|t| t.data.as_array().cloned()).unwrap_or_default();
        let data: Vec<f64> = x
            .iter()
            .filter_map(|v| v.as_f64().or_else(|| v.get(0).and_then(serde_json::Value::as_f64)))
            .map(|v| sigmoid(-10.0 + 0.2 * v))
            .collect();
        axum::Json(InferResponse {
            model_name: "admissions".into(),
            model_version: "1".into(),
            id: request.id,
            outputs: vec![InferOutput {
                name: "probability".into(),
                shape: vec![data.len(), 1],
                datatype: "FP64".into(),
                data,
                parameters: None,
            }],
        })
    }
    let app = axum::Router::new().route(INFER_PATH, post(infer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", serde_json::json!({"event": "listening", "service": "bare", "addr": listener.local_addr()?.to_string()}));
    axum::serve(listener, app).with_graceful_shutdown(logitflow_kit::shutdown_signal()).await?;
    Ok(())
}

async fn pipeline_bench(args: PipelineBench) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let mut results = serde_json::Map::new();
    let request = crate::commands::pipeline_request(scratch.path(), &bundled_args(), Vec::new())?;
    let (startup, served_ms, rss) = time_pipeline(scratch.path(), request).await?;
    results.insert("startup_to_all_ready_ms".into(), startup.into());
    results.insert("train_to_served_ms_bundled".into(), served_ms.into());
    results.insert("resident_bytes_per_service".into(), serde_json::to_value(&rss)?);
    if let Some(rows) = args.rows {
        let csv = scratch.path().join("big.csv");
        let g = logitflow_core::synth::Generator {
            intercept: 0.3,
            coefficients: (0..10).map(|j| if j % 2 == 0 { 0.8 } else { -0.5 }).collect(),
            ranges: vec![(-2.0, 2.0); 10],
            rows,
            seed: 7,
        };
        let mut bytes = Vec::new();
        logitflow_core::synth::write_csv(&logitflow_core::synth::generate(&g), &mut bytes)?;
        std::fs::write(&csv, bytes)?;
        let mut data = bundled_args();
        data.data = Some(csv);
        data.solver = crate::cli::SolverArg::Newton;
        let big_home = scratch.path().join("big-home");
        std::fs::create_dir_all(&big_home)?;
        let request = crate::commands::pipeline_request(&big_home, &data, Vec::new())?;
        let (_, big_ms, _) = time_pipeline(&big_home, request).await?;
        results.insert(format!("csv_to_served_ms_{rows}x10"), big_ms.into());
    }
    if args.json {
        println!("{}", serde_json::Value::Object(results));
    } else {
        for (k, v) in results {
            println!("{k:<34} {v}");
        }
    }
    Ok(())
}

fn bundled_args() -> crate::cli::DataArgs {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        data: crate::cli::DataArgs,
    }
    Wrapper::parse_from(["x"]).data
}

/// Launch → all ready (ms), then ingest → served for the request (ms, ingest included), and
/// each service's resident memory when idle after startup.
async fn time_pipeline(
    home: &Path,
    request: crate::pipeline::PipelineRequest,
) -> anyhow::Result<(f64, f64, std::collections::BTreeMap<String, u64>)> {
    let launched = Instant::now();
    let supervisor = crate::commands::start_services(home, &request)?;
    let outcome = async {
        supervisor.wait_ready(Duration::from_secs(30)).await.map_err(|e| anyhow::anyhow!(e))?;
        let startup = launched.elapsed().as_secs_f64() * 1e3;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss = supervisor.snapshots().iter().filter_map(|s| Some((s.name.as_str().to_string(), resident_bytes(s.pid?)?))).collect();
        let clients = crate::pipeline::Clients::from_supervisor(&supervisor).context("addresses")?;
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let t = Instant::now();
        crate::pipeline::run_pipeline(&clients, &request, tx, None).await?;
        Ok::<_, anyhow::Error>((startup, t.elapsed().as_secs_f64() * 1e3, rss))
    }
    .await;
    supervisor.shutdown().await;
    outcome
}
