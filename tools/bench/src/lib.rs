//! `logitflow-bench`: measurements that are not tests (BENCHMARKS.md shows the figures), in
//! their own package so that the product's binary carries none of them. [`BenchArgs`] is its
//! command line and [`run`] runs one; the services are the `logitflow` binary's own, started
//! from beside this one ([`use_sibling_logitflow`]).
//!
//! - `serve`: N keep-alive connections for T seconds against serve's inference route —
//!   a real serve process with the worked example's model — and the same load against a bare
//!   axum handler (started by the same command, in its own process) that decodes the same
//!   request and does the same arithmetic with none of the service runtime. Reports requests/s,
//!   p50/p99/p99.9 latency, errors, the ratio, and serve's resident memory when idle.
//!   `--grpc` does the same over gRPC against a bare tonic handler; `--binary` compares serve's
//!   HTTP with binary tensors against its HTTP with JSON; `--rows` sets the rows per request.
//! - `pipeline`: time from launch to all services ready, train-to-served on the bundled
//!   data, and each service's resident memory; with `--rows N` or `--csv FILE`, a large CSV
//!   through every stage, each stage's time, the solver's own, each service's peak memory, and
//!   with `--vs-python` pandas + scikit-learn doing the same work on the same file.
//! - `batch`: a CSV of N scores through a real batch and serve, end to end, every answer
//!   checked; `--vs-python` scores it with pandas + scikit-learn in the same run.
//! - `shapes`: the default fit on written data of several shapes (rows × features)
//!   against scikit-learn's on the same rows, in the same run (`shapes`).

mod bare;
mod cv;
mod shapes;

use anyhow::Context;
use logitflow::supervisor::{ServiceName, Supervisor, SupervisorConfig};
use logitflow_core::logistic::sigmoid;
use logitflow_kit::wire::InferRequest;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "logitflow-bench",
    version,
    about = "logitflow's benchmarks, each against a peer measured in the same run"
)]
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
    /// A large CSV scored by batch through serve, end to end.
    Batch(BatchBench),
    /// The default fit on data of several shapes against scikit-learn, in the same run.
    Shapes(shapes::ShapesBench),
    /// A cross-validated lasso or elastic-net path against R's cv.glmnet, in the same run.
    Cv(cv::CvBench),
    /// The bare handler `bench serve` compares with (started by it; not for people).
    #[command(hide = true)]
    BareServer,
    /// The bare gRPC handler `bench serve --grpc` compares with (started by it; not for people).
    #[command(hide = true)]
    BareGrpcServer,
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
    /// Rows in each request.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub rows: u64,
    /// Drive serve's gRPC port (raw tensor contents, as tritonclient.grpc sends them) against a
    /// bare tonic handler, instead of HTTP against a bare axum handler.
    #[arg(long, conflicts_with = "binary")]
    pub grpc: bool,
    /// Compare serve's HTTP with binary tensors (in and out, as tritonclient.http sends by default)
    /// against serve's HTTP with JSON, both on the same serve.
    #[arg(long)]
    pub binary: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PipelineBench {
    /// Also time a generated CSV of this many rows × 10 features, written at full precision
    /// (each value's shortest round-trip form, as numpy's `%.17g` writes: ≈ 200 bytes a row),
    /// ingest included.
    #[arg(long, conflicts_with = "csv")]
    pub rows: Option<usize>,
    /// Also time this CSV (its label column is `--label`), ingest included.
    #[arg(long, requires = "label")]
    pub csv: Option<PathBuf>,
    /// The label column of `--csv`.
    #[arg(long)]
    pub label: Option<String>,
    /// Runs of the large CSV's pipeline, each in a fresh home (the Python peer after each with
    /// `--vs-python`); more than one prints each figure's median and range, and each ratio
    /// taken within a round. This machine kind drifts by a third within minutes: one run is
    /// an anecdote.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    #[command(flatten)]
    pub peer: PythonPeer,
    #[arg(long)]
    pub json: bool,
}

/// A bench's Python peer: pandas + scikit-learn doing the same work, in the same run.
#[derive(Debug, Clone, clap::Args)]
pub struct PythonPeer {
    /// Run the same work in Python (pandas + scikit-learn, in one process) on the same data in
    /// the same run, and print the ratios. Needs a python with pandas and scikit-learn.
    #[arg(long)]
    pub vs_python: bool,
    /// The python for `--vs-python`.
    #[arg(long, env = "LOGITFLOW_BENCH_PYTHON", default_value = "python3")]
    pub python: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BatchBench {
    /// Rows of the CSV scored (one feature, `score`, with two decimals).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    #[command(flatten)]
    pub peer: PythonPeer,
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

/// Has the supervisor run the services as `<dir>/logitflow service <name>`, `<dir>` this
/// executable's own (cargo builds both into one target directory), unless
/// `LOGITFLOW_SERVICE_EXE` already names one. Call it before any thread starts.
pub fn use_sibling_logitflow() -> anyhow::Result<()> {
    use logitflow::supervisor::SERVICE_EXE_ENV;
    if std::env::var_os(SERVICE_EXE_ENV).is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe()?.with_file_name("logitflow");
    anyhow::ensure!(
        exe.is_file(),
        "the benchmarks run logitflow's own services, and {} is not there: build it too \
         (cargo build --release -p logitflow -p logitflow-bench), or name it in {SERVICE_EXE_ENV}",
        exe.display()
    );
    // SAFETY: called from `main` before the runtime or any other thread starts, so nothing
    // reads the environment while it changes.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(SERVICE_EXE_ENV, exe)
    };
    Ok(())
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Serve(a) => serve_bench(a).await,
        BenchWhat::Pipeline(a) => pipeline_bench(a).await,
        BenchWhat::Batch(a) => batch_bench(a).await,
        BenchWhat::Shapes(a) => shapes::shapes_bench(a).await,
        BenchWhat::Cv(a) => cv::cv_bench(a).await,
        BenchWhat::BareServer => bare::bare_server().await,
        BenchWhat::BareGrpcServer => bare::bare_grpc_server().await,
    }
}

/// A home holding the worked example's model as `admissions` v1, stable.
fn worked_example_home() -> anyhow::Result<tempfile::TempDir> {
    use logitflow_core::model::Model;
    use logitflow_store::registry::{Registry, STABLE};
    use logitflow_store::{Kind, Store};
    let home = tempfile::tempdir()?;
    let store = Store::open(home.path())?;
    let id = store.put_json(
        Kind::Model,
        "bench",
        vec![],
        serde_json::json!({}),
        "model.json",
        &Model::worked_example(),
    )?;
    let registry = Registry::open(home.path());
    registry.register("admissions", &id, None, None)?;
    registry.set_alias("admissions", STABLE, 1)?;
    Ok(home)
}

fn resident_bytes(pid: u32) -> Option<u64> {
    logitflow_kit::proc_status_bytes(&pid.to_string(), "VmRSS")
}

/// How a load generator speaks to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// Open Inference Protocol over HTTP, the tensors in JSON.
    HttpJson,
    /// The same with the binary tensor data extension, in and out.
    HttpBinary,
    /// `inference.GRPCInferenceService/ModelInfer` with raw input contents.
    Grpc,
}

/// One side of a comparison: where it listens, how to speak to it, and the process answering.
struct Target {
    name: &'static str,
    addr: std::net::SocketAddr,
    wire: Wire,
    token: Option<String>,
    pid: u32,
}

/// Starts this binary's bare handler `command` (`bare-server`, `bare-grpc-server`) as a child
/// killed with its handle; its address (from its listening line) and pid.
async fn start_bare(
    command: &str,
) -> anyhow::Result<(tokio::process::Child, std::net::SocketAddr, u32)> {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg(command)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("bare stdout")?;
    let line = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .context("bare listening line")?;
    let addr = logitflow::supervisor::listening_addr(&line).context("bare address")?;
    let pid = child.id().context("bare pid")?;
    Ok((child, addr, pid))
}

/// `serve`'s results: JSON with `--json`, else a table of the two targets and their ratio.
fn print_load_results(
    args: &ServeBench,
    (measured, baseline): (&LoadResult, &LoadResult),
    idle_rss: Option<u64>,
) {
    let rows = args.rows as usize;
    let ratio = measured.requests_per_s / baseline.requests_per_s.max(1e-9);
    if args.json {
        let (measured_key, baseline_key) =
            if args.binary { ("binary", "json") } else { ("serve", "bare") };
        println!(
            "{}",
            serde_json::json!({measured_key: measured, baseline_key: baseline, "ratio": ratio, "rows": rows, "serve_idle_rss_bytes": idle_rss})
        );
    } else {
        println!(
            "{} connections, {} s per target in {} alternating rounds, same request ({rows} row{}), same run",
            args.connections,
            args.seconds,
            args.rounds,
            if rows == 1 { "" } else { "s" }
        );
        println!(
            "{:<22} {:>10} {:>9} {:>9} {:>9} {:>7} {:>12}",
            "target", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "CPU µs/req"
        );
        for r in [measured, baseline] {
            let cpu = r
                .server_cpu_us_per_request
                .map_or_else(|| "-".to_string(), |us| format!("{us:.1}"));
            println!(
                "{:<22} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>12}",
                r.target, r.requests_per_s, r.p50_ms, r.p99_ms, r.p999_ms, r.errors, cpu
            );
        }
        println!("{} / {} throughput: {:.1}%", measured.target, baseline.target, ratio * 100.0);
        if let Some(rss) = idle_rss {
            println!("serve resident memory when idle: {:.1} MB", rss as f64 / 1e6);
        }
    }
}

async fn serve_bench(args: ServeBench) -> anyhow::Result<()> {
    let home = worked_example_home()?;
    let config = SupervisorConfig::new(home.path().to_path_buf(), Vec::new())?;
    let token = config.token.clone();
    let supervisor = Supervisor::start(config, &[ServiceName::Serve])?;
    let rows = args.rows as usize;
    let outcome = async {
        supervisor.wait_ready(Duration::from_secs(20)).await.map_err(|e| anyhow::anyhow!(e))?;
        let serve = supervisor.snapshot(ServiceName::Serve).context("serve")?;
        let (addr, pid) = (serve.addr.context("serve address")?, serve.pid.context("serve pid")?);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle_rss = resident_bytes(pid);
        let serve_target =
            |name, addr, wire| Target { name, addr, wire, token: Some(token.clone()), pid };
        // The baseline (bare handler, or serve with JSON) and what is measured against it.
        let mut bare = None;
        let (baseline, measured) = if args.binary {
            (
                serve_target("serve HTTP JSON", addr, Wire::HttpJson),
                serve_target("serve HTTP binary", addr, Wire::HttpBinary),
            )
        } else {
            let (command, wire, served) = if args.grpc {
                let grpc = serve.grpc_addr.context("serve's gRPC address")?;
                (
                    "bare-grpc-server",
                    Wire::Grpc,
                    serve_target("logitflow serve gRPC", grpc, Wire::Grpc),
                )
            } else {
                (
                    "bare-server",
                    Wire::HttpJson,
                    serve_target("logitflow serve", addr, Wire::HttpJson),
                )
            };
            let (child, bare_addr, bare_pid) = start_bare(command).await?;
            bare = Some(child);
            let name = if args.grpc { "bare tonic handler" } else { "bare axum handler" };
            (Target { name, addr: bare_addr, wire, token: None, pid: bare_pid }, served)
        };
        let round = Duration::from_secs_f64(args.seconds as f64 / f64::from(args.rounds.max(1)));
        let (mut baseline_samples, mut measured_samples) = (Samples::default(), Samples::default());
        for _ in 0..args.rounds.max(1) {
            baseline_samples.add(load(&baseline, rows, args.connections, round).await?);
            measured_samples.add(load(&measured, rows, args.connections, round).await?);
        }
        if let Some(mut bare) = bare {
            let _ = bare.kill().await;
        }
        Ok::<_, anyhow::Error>((
            measured_samples.result(measured.name),
            baseline_samples.result(baseline.name),
            idle_rss,
        ))
    }
    .await;
    supervisor.shutdown().await;
    let (measured, baseline, idle_rss) = outcome?;
    print_load_results(&args, (&measured, &baseline), idle_rss);
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
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .map_or(f64::NAN, |&us| f64::from(us) / 1e3)
        };
        LoadResult {
            target: target.to_string(),
            requests: l.len() as u64,
            errors: self.errors,
            seconds: self.seconds,
            requests_per_s: l.len() as f64 / self.seconds.max(1e-9),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            p999_ms: pct(0.999),
            server_cpu_us_per_request: self
                .server_cpu_seconds
                .map(|s| s * 1e6 / (l.len() as f64).max(1.0)),
        }
    }
}

/// `connections` keep-alive connections to `target`, each sending one request of `rows` rows
/// after another for `length`.
async fn load(
    target: &Target,
    rows: usize,
    connections: usize,
    length: Duration,
) -> anyhow::Result<Samples> {
    let cpu_before = logitflow_kit::cpu_seconds(target.pid);
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(match target.wire {
            Wire::Grpc => {
                tokio::spawn(grpc_connection(target.addr, target.token.clone(), rows, deadline))
            }
            wire => tokio::spawn(http_connection(
                http_request(target, wire, rows)?,
                target.addr,
                deadline,
            )),
        });
    }
    let mut samples = Samples::default();
    for task in tasks {
        let (l, e) = task.await?;
        samples.latencies.extend(l);
        samples.errors += e;
    }
    samples.seconds = started.elapsed().as_secs_f64();
    samples.server_cpu_seconds = cpu_before
        .zip(logitflow_kit::cpu_seconds(target.pid))
        .map(|(before, after)| after - before);
    Ok(samples)
}

/// The scores of a request's rows: 80 and others around it, all valid.
fn scores(rows: usize) -> Vec<f64> {
    (0..rows).map(|i| 40.0 + (i % 60) as f64).collect()
}

type HttpRequest = hyper::Request<http_body_util::Full<bytes::Bytes>>;

/// A maker of the same HTTP request over and over, prepared once.
///
/// The client is hyper's connection-level HTTP/1.1 client with the request prepared once: the
/// load generator shares the machine with the server, so every cycle it spends (a general
/// client parses the URL and builds its headers on each request) is taken from the server.
fn http_request(
    target: &Target,
    wire: Wire,
    rows: usize,
) -> anyhow::Result<impl Fn() -> HttpRequest + Clone + Send + 'static> {
    use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
    let values = scores(rows);
    let (body, header_length) = match wire {
        Wire::HttpBinary => {
            // What tritonclient.http sends by default: the input as binary data, and (naming
            // no outputs) every output asked for as binary data.
            let mut body = serde_json::to_vec(&serde_json::json!({
                "inputs": [{"name": "score", "shape": [rows, 1], "datatype": "FP64", "parameters": {"binary_data_size": rows * 8}}],
                "parameters": {"binary_data_output": true},
            }))?;
            let header_length = body.len();
            body.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            (body, Some(HeaderValue::from(header_length)))
        }
        _ => (
            serde_json::to_vec(&InferRequest::rows(
                &values.iter().map(|&v| vec![v]).collect::<Vec<_>>(),
            ))?,
            None,
        ),
    };
    let body = bytes::Bytes::from(body);
    let host = HeaderValue::from_str(&target.addr.to_string())?;
    let auth =
        target.token.as_ref().map(|t| HeaderValue::from_str(&format!("Bearer {t}"))).transpose()?;
    Ok(move || {
        let mut r = hyper::Request::new(http_body_util::Full::new(body.clone()));
        *r.method_mut() = hyper::Method::POST;
        *r.uri_mut() = hyper::Uri::from_static(INFER_PATH);
        let headers = r.headers_mut();
        headers.insert(HOST, host.clone());
        match &header_length {
            Some(length) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                headers.insert(
                    HeaderName::from_static("inference-header-content-length"),
                    length.clone(),
                );
            }
            None => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
        }
        if let Some(auth) = &auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        r
    })
}

/// One keep-alive HTTP/1.1 connection's requests until `deadline`: latencies (µs) and errors.
async fn http_connection(
    request: impl Fn() -> HttpRequest,
    addr: std::net::SocketAddr,
    deadline: Instant,
) -> (Vec<u32>, u64) {
    use http_body_util::BodyExt;
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 14);
    let mut errors = 0u64;
    'connect: while Instant::now() < deadline {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            errors += 1;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, connection)) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await
        else {
            errors += 1;
            continue;
        };
        tokio::spawn(connection);
        while Instant::now() < deadline {
            let t = Instant::now();
            let answered = match sender.send_request(request()).await {
                Ok(response) => {
                    response.status().is_success() && response.into_body().collect().await.is_ok()
                }
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
}

/// One gRPC (HTTP/2) connection's `ModelInfer` calls, one at a time, until `deadline`.
async fn grpc_connection(
    addr: std::net::SocketAddr,
    token: Option<String>,
    rows: usize,
    deadline: Instant,
) -> (Vec<u32>, u64) {
    use logitflow_serve::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
    use logitflow_serve::grpc::proto::{ModelInferRequest, model_infer_request::InferInputTensor};
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 14);
    let mut errors = 0u64;
    let request = ModelInferRequest {
        model_name: "admissions".into(),
        inputs: vec![InferInputTensor {
            name: "score".into(),
            datatype: "FP64".into(),
            shape: vec![rows as i64, 1],
            ..Default::default()
        }],
        raw_input_contents: vec![scores(rows).iter().flat_map(|v| v.to_le_bytes()).collect()],
        ..Default::default()
    };
    let auth: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> =
        token.and_then(|t| format!("Bearer {t}").parse().ok());
    'connect: while Instant::now() < deadline {
        let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{addr}")) {
            Ok(endpoint) => endpoint.tcp_nodelay(true),
            Err(_) => return (latencies, errors + 1),
        };
        let Ok(channel) = endpoint.connect().await else {
            errors += 1;
            continue;
        };
        let mut client = GrpcInferenceServiceClient::new(channel);
        while Instant::now() < deadline {
            let mut call = tonic::Request::new(request.clone());
            if let Some(auth) = &auth {
                call.metadata_mut().insert("authorization", auth.clone());
            }
            let t = Instant::now();
            match client.model_infer(call).await {
                Ok(answer)
                    if answer
                        .get_ref()
                        .raw_output_contents
                        .first()
                        .is_some_and(|o| o.len() == rows * 8) =>
                {
                    latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                }
                _ => {
                    errors += 1;
                    continue 'connect;
                }
            }
        }
    }
    (latencies, errors)
}

const INFER_PATH: &str = "/v2/models/admissions/infer";

async fn pipeline_bench(args: PipelineBench) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let mut results = serde_json::Map::new();
    let request =
        logitflow::commands::pipeline_request(scratch.path(), &bundled_args(), Vec::new())?;
    let (startup, served_ms, rss) = time_pipeline(scratch.path(), request).await?;
    results.insert("startup_to_all_ready_ms".into(), startup.into());
    results.insert("train_to_served_ms_bundled".into(), served_ms.into());
    results.insert("resident_bytes_per_service".into(), serde_json::to_value(&rss)?);
    let large = match (&args.csv, args.rows) {
        (Some(csv), _) => Some((csv.clone(), args.label.clone().unwrap_or_default())),
        (None, Some(rows)) => {
            let csv = scratch.path().join(format!("{rows}x10.csv"));
            write_full_precision_csv(&csv, rows, 10)?;
            Some((csv, "y".to_string()))
        }
        (None, None) => None,
    };
    if let Some((csv, label)) = large {
        let (mut runs, mut peers) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            let home = scratch.path().join(format!("large-home-{round}"));
            let run = large_run(&home, &csv, &label).await?;
            // Each round's home holds a copy of the data: gone before the next, so that a
            // long series does not fill the disk.
            std::fs::remove_dir_all(&home)?;
            let peer = if args.peer.vs_python {
                Some(python_peer(&args.peer.python, scratch.path(), &csv, &label).await?)
            } else {
                None
            };
            if !args.json {
                if args.rounds > 1 {
                    println!("round {} of {}", round + 1, args.rounds);
                }
                print!("{}", render_large_run(&run, peer.as_ref()));
            }
            runs.push(run);
            peers.extend(peer);
        }
        if args.rounds > 1 {
            let summary = RoundsSummary::of(&runs, &peers);
            if !args.json {
                print!("{}", summary.render());
            }
            results.insert("large_csv".into(), serde_json::to_value(&runs)?);
            results.insert("large_csv_summary".into(), serde_json::to_value(&summary)?);
            if args.peer.vs_python {
                results.insert("python_peer".into(), serde_json::Value::Array(peers));
            }
        } else {
            if let Some(run) = runs.pop() {
                results.insert("large_csv".into(), serde_json::to_value(&run)?);
            }
            if let Some(peer) = peers.pop() {
                results.insert("python_peer".into(), peer);
            }
        }
    }
    if args.json {
        println!("{}", serde_json::Value::Object(results));
    } else {
        for (k, v) in results.iter().filter(|(k, _)| {
            !matches!(k.as_str(), "large_csv" | "large_csv_summary" | "python_peer")
        }) {
            println!("{k:<34} {v}");
        }
    }
    Ok(())
}

/// A CSV of `rows` rows of `features` values uniform in (−2, 2), each written in its shortest
/// round-trip form (17 significant digits or so, like numpy's `%.17g`), and a 0/1 label `y`
/// drawn from a logistic model of them.
fn write_full_precision_csv(path: &Path, rows: usize, features: usize) -> anyhow::Result<()> {
    use rand::{Rng, SeedableRng};
    use std::io::Write;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let names: Vec<String> = (0..features).map(|j| format!("x{j}")).collect();
    writeln!(out, "{},y", names.join(","))?;
    for _ in 0..rows {
        let mut z = 0.3;
        for j in 0..features {
            let v: f64 = rng.random_range(-2.0..2.0);
            z += if j % 2 == 0 { 0.8 } else { -0.5 } * v;
            write!(out, "{v},")?;
        }
        writeln!(out, "{}", u8::from(rng.random::<f64>() < sigmoid(z)))?;
    }
    out.flush()?;
    Ok(())
}

/// One pipeline run (`auto`: newton for the generated file's 10 features, L-BFGS for a CSV of
/// many terms or sparse ones) on a large CSV, stage by stage, with each service's peak memory.
#[derive(Debug, Serialize)]
struct LargeRun {
    file: String,
    file_bytes: u64,
    rows: usize,
    features: usize,
    /// rows × (features + 1) × 8: the data as f64, the measure of the memory target.
    data_as_f64_bytes: u64,
    /// Each stage's time, in pipeline order.
    stages_ms: Vec<(String, f64)>,
    stage_total_ms: f64,
    /// The parse alone (`RawTable::from_csv_parallel`, what ingest runs), in this process
    /// before the run.
    parse_ms: f64,
    /// From the first request to ingest to the new version answering.
    wall_ms: f64,
    /// The solver's own part of the train stage.
    solver_ms: Option<f64>,
    /// Each service's peak resident memory over its life (VmHWM), this run included.
    peak_resident_bytes: std::collections::BTreeMap<String, u64>,
}

impl LargeRun {
    fn stage_ms(&self, name: &str) -> Option<f64> {
        self.stages_ms.iter().find(|(s, _)| s == name).map(|(_, ms)| *ms)
    }
}

/// One of the peer's figures beside logitflow's for the same work, the same run.
struct PeerComparison {
    work: &'static str,
    peer_side: &'static str,
    peer_ms: f64,
    our_side: &'static str,
    our_ms: f64,
}

/// The whole work, the parse against `read_csv`, and the train stage against the lbfgs fit
/// (when the run has a train stage).
fn peer_comparisons(peer: &serde_json::Value, run: &LargeRun) -> Vec<PeerComparison> {
    let step = |name: &str| peer_ms(peer, &["steps_s", name]);
    let mut comparisons = vec![
        PeerComparison {
            work: "whole work",
            peer_side: "python",
            peer_ms: peer_ms(peer, &["total_s"]),
            our_side: "logitflow stages",
            our_ms: run.stage_total_ms,
        },
        PeerComparison {
            work: "parse",
            peer_side: "read_csv",
            peer_ms: step("read_csv"),
            our_side: "logitflow's parse",
            our_ms: run.parse_ms,
        },
    ];
    comparisons.extend(run.stage_ms("train").map(|train| PeerComparison {
        work: "fit",
        peer_side: "lbfgs",
        peer_ms: step("fit_lbfgs"),
        our_side: "train stage",
        our_ms: train,
    }));
    comparisons
}

async fn large_run(home: &Path, csv: &Path, label: &str) -> anyhow::Result<LargeRun> {
    std::fs::create_dir_all(home)?;
    let parse_ms = {
        let (csv, label) = (csv.to_path_buf(), label.to_string());
        tokio::task::spawn_blocking(move || {
            let options =
                logitflow_core::table::CsvOptions { label: Some(label), ..Default::default() };
            let started = Instant::now();
            logitflow_core::table::RawTable::from_csv_parallel(
                std::fs::File::open(&csv)?,
                &options,
            )?;
            Ok::<_, anyhow::Error>(started.elapsed().as_secs_f64() * 1e3)
        })
        .await??
    };
    let mut data = bundled_args();
    data.data = Some(csv.to_path_buf());
    data.label = Some(label.to_string());
    data.solver = logitflow::cli::SolverArg::Auto;
    let request = logitflow::commands::pipeline_request(home, &data, Vec::new())?;
    let (report, wall_ms, peak_resident_bytes) = run_once(home, &request, |supervisor| {
        supervisor
            .snapshots()
            .iter()
            .filter_map(|s| Some((s.name.as_str().to_string(), peak_resident_bytes(s.pid?)?)))
            .collect()
    })
    .await?;
    let rows = report.rows.train + report.rows.validation + report.rows.test;
    let features = report.feature_names.len();
    Ok(LargeRun {
        file: csv.display().to_string(),
        file_bytes: std::fs::metadata(csv)?.len(),
        rows,
        features,
        data_as_f64_bytes: (rows * (features + 1) * 8) as u64,
        stages_ms: report.stages.iter().map(|s| (s.name.as_str().to_string(), s.ms)).collect(),
        stage_total_ms: report.stages.iter().map(|s| s.ms).sum(),
        parse_ms,
        wall_ms,
        solver_ms: report.stages.iter().find_map(|s| s.solver_ms),
        peak_resident_bytes,
    })
}

/// Starts the services for `request` in `home`, runs the pipeline once through them, and stops
/// them: the run's report, its wall time in ms (the first request to the new version
/// answering), and what `inspect` reads off the supervisor before the services stop.
async fn run_once<T>(
    home: &Path,
    request: &logitflow::pipeline::PipelineRequest,
    inspect: impl FnOnce(&Supervisor) -> T,
) -> anyhow::Result<(logitflow::pipeline::RunReport, f64, T)> {
    let home = logitflow::commands::Home::new(home.to_path_buf(), None);
    let supervisor = logitflow::commands::start_services(&home, request)?;
    let outcome = async {
        supervisor.wait_ready(Duration::from_secs(30)).await.map_err(|e| anyhow::anyhow!(e))?;
        let clients =
            logitflow::pipeline::Clients::from_supervisor(&supervisor).context("addresses")?;
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let t = Instant::now();
        let report = logitflow::pipeline::run_pipeline(&clients, request, tx, None).await?;
        let wall_ms = t.elapsed().as_secs_f64() * 1e3;
        Ok::<_, anyhow::Error>((report, wall_ms, inspect(&supervisor)))
    }
    .await;
    supervisor.shutdown().await;
    outcome
}

/// A process's peak resident memory so far (VmHWM), from `/proc/PID/status`.
fn peak_resident_bytes(pid: u32) -> Option<u64> {
    logitflow_kit::proc_status_bytes(&pid.to_string(), "VmHWM")
}

/// The same work in Python in one process (`peers/pipeline.py`): its JSON answer.
async fn python_peer(
    python: &Path,
    scratch: &Path,
    csv: &Path,
    label: &str,
) -> anyhow::Result<serde_json::Value> {
    // The held-out fraction and the seed the logitflow run used: the defaults.
    let data = bundled_args();
    let (fraction, seed) = (data.test_fraction.to_string(), data.seed.to_string());
    let args = [csv.as_os_str(), label.as_ref(), fraction.as_ref(), seed.as_ref()];
    run_peer(python, scratch, "pipeline.py", include_str!("../peers/pipeline.py"), &args).await
}

/// Runs the peer `script` (one of `tools/bench/peers/`, written to `scratch` as `name`) and parses the
/// JSON object it prints.
async fn run_peer(
    python: &Path,
    scratch: &Path,
    name: &str,
    script: &str,
    args: &[&std::ffi::OsStr],
) -> anyhow::Result<serde_json::Value> {
    let stdout = run_python(python, scratch, name, script, args).await?;
    serde_json::from_slice(&stdout).context("the Python peer's answer is not JSON")
}

/// Runs `script` (written to `scratch` as `name`) with `args`: what it prints, once it has
/// succeeded.
async fn run_python(
    python: &Path,
    scratch: &Path,
    name: &str,
    script: &str,
    args: &[&std::ffi::OsStr],
) -> anyhow::Result<Vec<u8>> {
    let path = scratch.join(name);
    std::fs::write(&path, script)?;
    let out = tokio::process::Command::new(python)
        .arg(&path)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot run {} for the Python peer", python.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "the Python peer failed ({}); it needs pandas and scikit-learn: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out.stdout)
}

/// "peak resident: advisor 10 MB, batch 10 MB, …".
fn peaks(peak_resident_bytes: &std::collections::BTreeMap<String, u64>) -> String {
    let each: Vec<String> =
        peak_resident_bytes.iter().map(|(k, v)| format!("{k} {}", megabytes(*v))).collect();
    format!("peak resident: {}", each.join(", "))
}

/// A time in the peer's answer (seconds, at `path`), in ms.
fn peer_ms(peer: &serde_json::Value, path: &[&str]) -> f64 {
    path.iter().fold(peer, |v, key| &v[*key]).as_f64().unwrap_or(f64::NAN) * 1e3
}

/// The peer's figures in a line: its versions, each (label, step) in ms, the total, the peak.
fn peer_line(peer: &serde_json::Value, data: &str, steps: &[(&str, &str)]) -> String {
    let each: Vec<String> = steps
        .iter()
        .map(|(label, step)| format!("{label} {:.1}", peer_ms(peer, &["steps_s", step])))
        .collect();
    format!(
        "python peer (pandas {}, scikit-learn {}), same {data}, same run: {} ms; total {:.1} ms; peak {}",
        peer["pandas"].as_str().unwrap_or("?"),
        peer["sklearn"].as_str().unwrap_or("?"),
        each.join(", "),
        peer_ms(peer, &["total_s"]),
        megabytes(peer["peak_rss_bytes"].as_u64().unwrap_or(0)),
    )
}

fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// The large run as a table, with the peer's figures and the ratios the targets are set in.
fn render_large_run(run: &LargeRun, peer: Option<&serde_json::Value>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} rows × {} features, {} ({} as f64)",
        run.file,
        run.rows,
        run.features,
        megabytes(run.file_bytes),
        megabytes(run.data_as_f64_bytes)
    );
    for (stage, ms) in &run.stages_ms {
        let inside = match stage.as_str() {
            "train" => {
                run.solver_ms.map(|s| format!("  (the solver {s:.0} ms)")).unwrap_or_default()
            }
            "ingest" => format!("  (the parse alone {:.0} ms)", run.parse_ms),
            _ => String::new(),
        };
        let _ = writeln!(out, "  {stage:<11} {ms:>8.1} ms{inside}");
    }
    let _ = writeln!(
        out,
        "  {:<11} {:>8.1} ms   wall {:.1} ms",
        "stages", run.stage_total_ms, run.wall_ms
    );
    let _ = writeln!(out, "  {}", peaks(&run.peak_resident_bytes));
    let largest = run.peak_resident_bytes.values().copied().max().unwrap_or(0);
    let _ = writeln!(
        out,
        "  largest peak {} = {:.2}× the data as f64",
        megabytes(largest),
        largest as f64 / run.data_as_f64_bytes as f64
    );
    if let (Some(train), Some(solver)) = (run.stage_ms("train"), run.solver_ms) {
        let _ = writeln!(out, "  train stage / solver = {:.2}", train / solver);
    }
    if let Some(peer) = peer {
        let steps = [
            ("read_csv", "read_csv"),
            ("split", "split"),
            ("scale", "scale"),
            ("fit lbfgs", "fit_lbfgs"),
            ("fit newton-cholesky", "fit_newton_cholesky"),
            ("predict", "predict_test"),
        ];
        let _ = writeln!(out, "{}", peer_line(peer, "file", &steps));
        for c in peer_comparisons(peer, run) {
            let _ = writeln!(
                out,
                "  {}: {} {:.0} ms / {} {:.0} ms = {:.2}×",
                c.work,
                c.peer_side,
                c.peer_ms,
                c.our_side,
                c.our_ms,
                c.peer_ms / c.our_ms
            );
        }
    }
    out
}

/// Several rounds of the large pipeline (and its peer) in figures: each as the median and
/// range over the rounds. A ratio is taken within each round, where both sides met the same
/// spell of the machine, and only then summarised.
#[derive(Debug, Serialize, PartialEq)]
struct RoundsSummary {
    rounds: usize,
    /// Each stage's time, in pipeline order, then "stages" (their sum).
    stages_ms: Vec<(String, Spread)>,
    parse_ms: Option<Spread>,
    solver_ms: Option<Spread>,
    train_stage_per_solver: Option<Spread>,
    /// The largest peak resident memory of any service, per round, over the data as f64.
    largest_peak_per_data: Option<Spread>,
    /// The peer's time over logitflow's, each round: the whole work, the parse against
    /// `read_csv`, the train stage against the lbfgs fit. Empty without a peer.
    peer_ratios: Vec<(String, Spread)>,
}

/// The median and range of some figures.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    /// `None` for no figures (or a NaN among them).
    fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() || v.iter().any(|x| x.is_nan()) {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 };
        Some(Spread { median, min: v[0], max: v[v.len() - 1] })
    }

    fn render(&self, digits: usize, unit: &str) -> String {
        format!("{:.digits$}{unit} ({:.digits$}–{:.digits$})", self.median, self.min, self.max)
    }
}

impl RoundsSummary {
    fn of(runs: &[LargeRun], peers: &[serde_json::Value]) -> RoundsSummary {
        let stage = |run: &LargeRun, name: &str| run.stage_ms(name).unwrap_or(f64::NAN);
        let names = runs
            .first()
            .map(|r| r.stages_ms.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>())
            .unwrap_or_default();
        let mut stages_ms: Vec<(String, Spread)> = names
            .iter()
            .filter_map(|name| {
                Some((name.clone(), Spread::of(runs.iter().map(|r| stage(r, name)))?))
            })
            .collect();
        stages_ms.extend(
            Spread::of(runs.iter().map(|r| r.stage_total_ms)).map(|s| ("stages".to_string(), s)),
        );
        let solver = |r: &LargeRun| r.solver_ms.unwrap_or(f64::NAN);
        // Each comparison's ratio in every round, labelled as the first round's are.
        let per_round: Vec<Vec<PeerComparison>> =
            peers.iter().zip(runs).map(|(p, r)| peer_comparisons(p, r)).collect();
        let peer_ratios = match per_round.first() {
            Some(first) if peers.len() == runs.len() => first
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let ratios = per_round
                        .iter()
                        .map(|round| round.get(i).map_or(f64::NAN, |c| c.peer_ms / c.our_ms));
                    Some((
                        format!("{}: {} / {}", c.work, c.peer_side, c.our_side),
                        Spread::of(ratios)?,
                    ))
                })
                .collect(),
            _ => Vec::new(),
        };
        RoundsSummary {
            rounds: runs.len(),
            stages_ms,
            parse_ms: Spread::of(runs.iter().map(|r| r.parse_ms)),
            solver_ms: Spread::of(runs.iter().map(solver)),
            train_stage_per_solver: Spread::of(runs.iter().map(|r| stage(r, "train") / solver(r))),
            largest_peak_per_data: Spread::of(runs.iter().map(|r| {
                r.peak_resident_bytes.values().copied().max().unwrap_or(0) as f64
                    / r.data_as_f64_bytes as f64
            })),
            peer_ratios,
        }
    }

    fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = format!("over {} rounds: median (least–most)\n", self.rounds);
        for (stage, ms) in &self.stages_ms {
            let _ = writeln!(out, "  {stage:<11} {}", ms.render(1, " ms"));
        }
        if let Some(parse) = self.parse_ms {
            let _ = writeln!(out, "  the parse alone {}", parse.render(0, " ms"));
        }
        if let (Some(solver), Some(ratio)) = (self.solver_ms, self.train_stage_per_solver) {
            let _ = writeln!(
                out,
                "  the solver {}; train stage / solver {}",
                solver.render(0, " ms"),
                ratio.render(2, "")
            );
        }
        if let Some(peak) = self.largest_peak_per_data {
            let _ = writeln!(out, "  largest peak / the data as f64 {}", peak.render(2, "×"));
        }
        for (label, ratio) in &self.peer_ratios {
            let _ = writeln!(out, "  {label} {}", ratio.render(2, "×"));
        }
        out
    }
}

fn bundled_args() -> logitflow::cli::DataArgs {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        data: logitflow::cli::DataArgs,
    }
    Wrapper::parse_from(["x"]).data
}

/// Launch → all ready (ms), then ingest → served for the request (ms, ingest included), and
/// each service's resident memory when idle after startup.
async fn time_pipeline(
    home: &Path,
    request: logitflow::pipeline::PipelineRequest,
) -> anyhow::Result<(f64, f64, std::collections::BTreeMap<String, u64>)> {
    let launched = Instant::now();
    let home = logitflow::commands::Home::new(home.to_path_buf(), None);
    let supervisor = logitflow::commands::start_services(&home, &request)?;
    let outcome = async {
        supervisor.wait_ready(Duration::from_secs(30)).await.map_err(|e| anyhow::anyhow!(e))?;
        let startup = launched.elapsed().as_secs_f64() * 1e3;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss = supervisor
            .snapshots()
            .iter()
            .filter_map(|s| Some((s.name.as_str().to_string(), resident_bytes(s.pid?)?)))
            .collect();
        let clients =
            logitflow::pipeline::Clients::from_supervisor(&supervisor).context("addresses")?;
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let t = Instant::now();
        logitflow::pipeline::run_pipeline(&clients, &request, tx, None).await?;
        Ok::<_, anyhow::Error>((startup, t.elapsed().as_secs_f64() * 1e3, rss))
    }
    .await;
    supervisor.shutdown().await;
    outcome
}

/// A CSV scored by a real batch service through a real serve, end to end over HTTP.
#[derive(Debug, Serialize)]
struct BatchRun {
    rows: usize,
    body_bytes: usize,
    answer_bytes: usize,
    /// From the first byte sent to the last byte of the answer read.
    ms: f64,
    rows_per_s: f64,
    /// Every answered row's probability equals the model's to 1e-12 (checked after timing).
    answers_checked: bool,
    peak_resident_bytes: std::collections::BTreeMap<String, u64>,
}

/// A CSV of `rows` scores (two decimals, seeded), and the scores.
fn score_csv(rows: usize) -> (String, Vec<f64>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut body = String::with_capacity(rows * 7 + 8);
    body.push_str("score\n");
    let mut scores = Vec::with_capacity(rows);
    for _ in 0..rows {
        let score = (rng.random_range(0.0..100.0_f64) * 100.0).round() / 100.0;
        scores.push(score);
        body.push_str(&format!("{score}\n"));
    }
    (body, scores)
}

/// Every row of batch's answer is the worked example's probability of its score, to 1e-12.
fn check_answers(answer: &[u8], scores: &[f64]) -> anyhow::Result<()> {
    let text = std::str::from_utf8(answer).context("the answer is not UTF-8")?;
    let mut lines = text.lines();
    anyhow::ensure!(
        lines.next() == Some("score,probability"),
        "the answer's header is score,probability"
    );
    let mut answered = 0;
    for (line, score) in lines.zip(scores) {
        let probability: f64 = line
            .rsplit(',')
            .next()
            .and_then(|p| p.parse().ok())
            .context("a probability per row")?;
        anyhow::ensure!(
            (probability - sigmoid(-10.0 + 0.2 * score)).abs() <= 1e-12,
            "row {answered}: {line} is not the model's answer"
        );
        answered += 1;
    }
    anyhow::ensure!(answered == scores.len(), "{answered} of {} rows answered", scores.len());
    Ok(())
}

async fn batch_bench(args: BatchBench) -> anyhow::Result<()> {
    let home = worked_example_home()?;
    let (body, scores) = score_csv(args.rows);
    let config = SupervisorConfig::new(home.path().to_path_buf(), Vec::new())?;
    let supervisor = Supervisor::start(config, &[ServiceName::Serve, ServiceName::Batch])?;
    let outcome = async {
        supervisor.wait_ready(Duration::from_secs(30)).await.map_err(|e| anyhow::anyhow!(e))?;
        let batch = supervisor.client(ServiceName::Batch).context("batch's address")?;
        let body_bytes = body.len();
        let started = Instant::now();
        let response = batch
            .post_bytes("/v1/score?model=admissions", "text/csv", body.clone().into_bytes())
            .await?;
        let answer = response.bytes().await?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let peak_resident_bytes = supervisor
            .snapshots()
            .iter()
            .filter_map(|s| Some((s.name.as_str().to_string(), peak_resident_bytes(s.pid?)?)))
            .collect();
        Ok::<_, anyhow::Error>((answer, body_bytes, ms, peak_resident_bytes))
    }
    .await;
    supervisor.shutdown().await;
    let (answer, body_bytes, ms, peak_resident_bytes) = outcome?;
    check_answers(&answer, &scores)?;
    let run = BatchRun {
        rows: args.rows,
        body_bytes,
        answer_bytes: answer.len(),
        ms,
        rows_per_s: args.rows as f64 / (ms / 1e3),
        answers_checked: true,
        peak_resident_bytes,
    };
    let peer = if args.peer.vs_python {
        let scratch = tempfile::tempdir()?;
        let csv = scratch.path().join("scores.csv");
        std::fs::write(&csv, &body)?;
        let peer_args = [csv.as_os_str(), "-10".as_ref(), "0.2".as_ref()];
        Some(
            run_peer(
                &args.peer.python,
                scratch.path(),
                "batch.py",
                include_str!("../peers/batch.py"),
                &peer_args,
            )
            .await?,
        )
    } else {
        None
    };
    if args.json {
        println!("{}", serde_json::json!({"batch": run, "python_peer": peer}));
        return Ok(());
    }
    println!(
        "batch: {} rows ({} in, {} out) scored through serve in {:.1} ms ({:.2} M rows/s), every answer checked",
        run.rows,
        megabytes(run.body_bytes as u64),
        megabytes(run.answer_bytes as u64),
        run.ms,
        run.rows_per_s / 1e6
    );
    println!("  {}", peaks(&run.peak_resident_bytes));
    if let Some(peer) = peer {
        let steps =
            [("read_csv", "read_csv"), ("predict_proba", "predict_proba"), ("to_csv", "to_csv")];
        println!("{}", peer_line(&peer, "CSV", &steps));
        let total = peer_ms(&peer, &["total_s"]);
        println!("  logitflow {:.0} ms / python {total:.0} ms = {:.2}×", run.ms, run.ms / total);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_is_the_median_and_range() {
        let spread = |v: &[f64]| Spread::of(v.iter().copied());
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some(Spread { median: 2.0, min: 1.0, max: 3.0 }));
        assert_eq!(
            spread(&[4.0, 1.0, 2.0, 10.0]),
            Some(Spread { median: 3.0, min: 1.0, max: 10.0 })
        );
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[1.0, f64::NAN]), None, "a missing figure is not summarised");
    }

    fn run(ingest: f64, train: f64, solver: f64, parse: f64) -> LargeRun {
        LargeRun {
            file: "big.csv".into(),
            file_bytes: 201_000_000,
            rows: 1_000_000,
            features: 10,
            data_as_f64_bytes: 88_000_000,
            stages_ms: vec![("ingest".into(), ingest), ("train".into(), train)],
            stage_total_ms: ingest + train,
            parse_ms: parse,
            wall_ms: ingest + train + 1.0,
            solver_ms: Some(solver),
            peak_resident_bytes: [
                ("ingest".to_string(), 132_000_000),
                ("train".to_string(), 88_000_000),
            ]
            .into(),
        }
    }

    #[test]
    fn rounds_are_summarised_stage_by_stage_and_ratios_within_each_round() {
        let runs = [
            run(600.0, 200.0, 100.0, 300.0),
            run(900.0, 300.0, 100.0, 450.0),
            run(500.0, 250.0, 125.0, 250.0),
        ];
        // Within each round the peer took 2×, 2× and 3× as long, though the ratio of the
        // medians would read 2250 / 800 = 2.8×: a slow spell hit both sides of round 2.
        let peers: Vec<serde_json::Value> = [(1600.0, 600.0, 100.0), (2400.0, 900.0, 600.0), (2250.0, 250.0, 500.0)]
            .iter()
            .map(|&(total, read_csv, lbfgs)| {
                serde_json::json!({"total_s": total / 1e3, "steps_s": {"read_csv": read_csv / 1e3, "fit_lbfgs": lbfgs / 1e3}})
            })
            .collect();
        let summary = RoundsSummary::of(&runs, &peers);
        let named = |list: &[(String, Spread)], name: &str| {
            list.iter().find(|(n, _)| n.starts_with(name)).map(|(_, s)| *s)
        };
        assert_eq!(summary.rounds, 3);
        assert_eq!(
            named(&summary.stages_ms, "ingest"),
            Some(Spread { median: 600.0, min: 500.0, max: 900.0 })
        );
        assert_eq!(
            named(&summary.stages_ms, "stages"),
            Some(Spread { median: 800.0, min: 750.0, max: 1200.0 })
        );
        assert_eq!(
            summary.train_stage_per_solver,
            Some(Spread { median: 2.0, min: 2.0, max: 3.0 })
        );
        assert_eq!(summary.largest_peak_per_data, Some(Spread { median: 1.5, min: 1.5, max: 1.5 }));
        assert_eq!(
            named(&summary.peer_ratios, "whole work"),
            Some(Spread { median: 2.0, min: 2.0, max: 3.0 })
        );
        assert_eq!(
            named(&summary.peer_ratios, "parse"),
            Some(Spread { median: 2.0, min: 1.0, max: 2.0 })
        );
        assert_eq!(
            named(&summary.peer_ratios, "fit"),
            Some(Spread { median: 2.0, min: 0.5, max: 2.0 })
        );
        assert!(RoundsSummary::of(&runs, &[]).peer_ratios.is_empty(), "no peer, no ratios");
        let text = summary.render();
        assert!(
            text.starts_with(
                "over 3 rounds: median (least–most)\n  ingest      600.0 ms (500.0–900.0)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  whole work: python / logitflow stages 2.00× (2.00–3.00)\n"),
            "{text}"
        );
    }
}
