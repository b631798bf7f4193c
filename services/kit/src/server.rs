use crate::common::Common;
pub use crate::common::{Readiness, ServiceInfo};
use crate::config::Config;
use crate::connection::{WatchedIo, watch_headers};
use crate::error::{ApiError, error_response};
use crate::guard::Guard;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower_http::trace::TraceLayer;

/// How long in-flight requests (and event streams) get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What a service's `main` does first: tracing, configuration, and the bound listener.
pub async fn start(
    args: &crate::config::ServiceArgs,
) -> std::io::Result<(tokio::net::TcpListener, Config)> {
    init_tracing();
    let config = Config::from_env(args);
    crate::config::check_exposure(args.listen, config.token.as_deref())?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    Ok((listener, config))
}

/// Logs JSON lines to stderr, and keeps the last [`RECENT_LOG_LINES`] of them for
/// `GET /v1/logs` (what a console attached by URL shows, having no pipe to the process);
/// `LOGITFLOW_LOG` sets the filter (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGITFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_writer(|| RecentLogs)
        .with_env_filter(filter)
        .with_current_span(false)
        .try_init();
}

/// How many log lines a service keeps for `GET /v1/logs`, and the longest kept whole.
pub(crate) const RECENT_LOG_LINES: usize = 500;
const RECENT_LOG_LINE_BYTES: usize = 4096;

fn recent_logs() -> &'static std::sync::Mutex<std::collections::VecDeque<String>> {
    static RECENT: std::sync::OnceLock<std::sync::Mutex<std::collections::VecDeque<String>>> =
        std::sync::OnceLock::new();
    RECENT.get_or_init(|| {
        std::sync::Mutex::new(std::collections::VecDeque::with_capacity(RECENT_LOG_LINES))
    })
}

/// The writer of each log event: stderr, and a copy of each line in a bounded ring.
struct RecentLogs;

impl std::io::Write for RecentLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // tracing-subscriber writes each event whole, newline included, in one call.
        let written = std::io::stderr().write(buf)?;
        let text = String::from_utf8_lossy(&buf[..written]);
        if let Ok(mut recent) = recent_logs().lock() {
            for line in text.lines().filter(|l| !l.is_empty()) {
                if recent.len() == RECENT_LOG_LINES {
                    recent.pop_front();
                }
                let mut end = line.len().min(RECENT_LOG_LINE_BYTES);
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                recent.push_back(line[..end].to_string());
            }
        }
        Ok(written)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[derive(Debug, serde::Deserialize)]
struct LogsQuery {
    lines: Option<usize>,
}

/// `GET /v1/logs?lines=N`: the last N (at most [`RECENT_LOG_LINES`]) log lines, oldest first.
async fn logs_route(axum::extract::Query(query): axum::extract::Query<LogsQuery>) -> Response {
    let wanted = query.lines.unwrap_or(RECENT_LOG_LINES).min(RECENT_LOG_LINES);
    let lines: Vec<String> = recent_logs()
        .lock()
        .map(|r| r.iter().skip(r.len().saturating_sub(wanted)).cloned().collect())
        .unwrap_or_default();
    Json(serde_json::json!({ "lines": lines })).into_response()
}

/// This process's resident memory in bytes, as `/v1/info` and `/metrics` report it to a
/// console that cannot see the process.
fn resident_bytes() -> Option<u64> {
    proc_status_bytes("self", "VmRSS")
}

/// A memory figure of a process from `/proc/<process>/status` (Linux), in bytes: `field` is
/// `VmRSS` (resident now), `VmHWM` (the peak so far), …; `process` a pid or `self`.
pub fn proc_status_bytes(process: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let line =
        status.lines().find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let mut after_name = stat.rsplit_once(')')?.1.split_whitespace();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name, in clock ticks.
    let utime: u64 = after_name.nth(11)?.parse().ok()?;
    let stime: u64 = after_name.next()?.parse().ok()?;
    // The kernel reports /proc times in USER_HZ, which is 100 on every Linux ABI.
    Some((utime + stime) as f64 / 100.0)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The accept loop's failures, logged at most once per [`AcceptFailures::EVERY`]: the first at
/// once, then how many more there were.
#[derive(Default)]
struct AcceptFailures {
    since_logged: u64,
    logged_at: Option<std::time::Instant>,
}

impl AcceptFailures {
    const EVERY: Duration = Duration::from_secs(10);

    /// Counts a failure; `Some(n)` when it should be logged, with the failures since the last.
    fn note(&mut self) -> Option<u64> {
        self.since_logged += 1;
        if self.logged_at.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return None;
        }
        self.logged_at = Some(std::time::Instant::now());
        Some(std::mem::take(&mut self.since_logged))
    }
}

/// Prints a service's listening line on stdout, the one line the supervisor reads there:
/// `{"event":"listening","service":NAME,"addr":ADDR}`, with `"protocol"` for a port that is
/// not the HTTP one (serve's gRPC).
pub fn announce_listening(
    service: &str,
    protocol: Option<&str>,
    addr: std::net::SocketAddr,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut line =
        serde_json::json!({"event": "listening", "service": service, "addr": addr.to_string()});
    if let Some(protocol) = protocol {
        line["protocol"] = protocol.into();
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

/// Serves `routes` with everything every service shares, and prints the listening line.
///
/// Adds `GET /v2/health/live`, `GET /v2/health/ready`, `GET /metrics`, `GET /v1/info`; bearer
/// auth on every non-health route when a token is configured; the body limit; a header
/// timeout, a request timeout and a body timeout (a client trickling its headers or its body
/// is cut off, not waited for); JSON bodies for every error, including those the layers
/// produce. On `shutdown` it stops accepting, gives in-flight requests [`SHUTDOWN_GRACE`], then
/// returns.
///
/// The accept loop is hyper's own (as in axum's `serve-with-hyper` example) rather than
/// `axum::serve`, which has no header timeout: a client could hold a connection forever by
/// trickling its headers. The header timeout is [`watch_headers`]'s.
pub async fn serve(
    name: &'static str,
    config: &Config,
    readiness: Readiness,
    routes: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_metrics(name, config, readiness, |_| {}, routes, listener, shutdown).await
}

/// As [`serve`], with the service's own Prometheus series: `metrics` appends them (HELP and
/// TYPE lines included) to what `GET /metrics` answers, each time it is asked.
pub async fn serve_with_metrics(
    name: &'static str,
    config: &Config,
    readiness: Readiness,
    metrics: impl Fn(&mut String) + Send + Sync + 'static,
    routes: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = config.tls.as_ref().map(|(cert, key)| tls_acceptor(cert, key)).transpose()?;
    let common = Common::with_metrics(name, readiness, config, Box::new(metrics));
    // The guard each connection's own is made from (`for_connection`).
    let app = router(common.clone(), routes);
    let addr = listener.local_addr()?;
    announce_listening(name, tls.as_ref().map(|_| "https"), addr)?;
    tracing::info!(service = name, %addr, "listening");
    let http = hyper::server::conn::http1::Builder::new();
    let watchdog = tokio::spawn(watch_headers(common.connections.clone(), config.header_timeout));
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut accept_failures = AcceptFailures::default();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin,
                    // and say so once in a while rather than 20 times a second.
                    if let Some(repeated) = accept_failures.note() {
                        tracing::warn!(service = name, error = %e, repeated, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let guard = app.for_connection();
        let watcher = connections.watcher();
        let http = http.clone();
        match &tls {
            None => {
                let io = WatchedIo::new(
                    hyper_util::rt::TokioIo::new(stream),
                    guard.connection().clone(),
                );
                let connection = watcher.watch(http.serve_connection(io, guard));
                tokio::spawn(async move {
                    // A client that goes away or times out mid-request is routine, not an error.
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended");
                    }
                });
            }
            Some(acceptor) => {
                let (acceptor, handshake_timeout) = (acceptor.clone(), config.header_timeout);
                tokio::spawn(async move {
                    // The handshake is bounded like the headers that follow it: a client that
                    // starts one and stalls holds nothing for longer.
                    let stream = match tokio::time::timeout(
                        handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => return tracing::debug!("TLS handshake timed out"),
                    };
                    let io = WatchedIo::new(
                        hyper_util::rt::TokioIo::new(stream),
                        guard.connection().clone(),
                    );
                    if let Err(e) = watcher.watch(http.serve_connection(io, guard)).await {
                        tracing::debug!(error = %e, "connection ended");
                    }
                });
            }
        }
    }
    drop(listener);
    watchdog.abort();
    tracing::info!(service = name, "shutting down");
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.shutdown()).await.is_err() {
        tracing::warn!(service = name, "in-flight requests did not finish within the grace period");
    }
    Ok(())
}

/// Makes aws-lc-rs the process's rustls provider, for libraries that take the process default
/// (tonic's TLS server): more than one provider is linked in, and with no default chosen they
/// would refuse to start.
pub fn use_aws_lc_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The TLS side of `--tls-cert`/`--tls-key`: both PEM files, read and checked at start, so a
/// wrong path or a key that does not match is an error before the service listens.
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |path: &std::path::Path, e: &dyn std::fmt::Display| {
        std::io::Error::other(format!("{}: {e}", path.display()))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, &e))?;
    if chain.is_empty() {
        return Err(bad(cert, &"no certificate in it (PEM, -----BEGIN CERTIFICATE-----)"));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    // The provider named, not the process default: more than one may be linked in.
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, &e))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| bad(key, &format!("does not go with the certificate: {e}")))?;
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

/// The service's routes and the common ones, behind the [`Guard`].
fn router(common: Arc<Common>, routes: Router) -> Guard<Router> {
    let common_routes = Router::new()
        .route("/metrics", get(metrics_route))
        .route("/v1/info", get(info_route))
        .route("/v1/logs", get(logs_route))
        .route("/v2/health/live", get(|| async { Json(serde_json::json!({"live": true})) }))
        .route("/v2/health/ready", get(ready_route))
        .with_state(common.clone());
    let routes = routes
        .merge(common_routes)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "method not allowed on this route".into(),
            )
        });
    // tower-http traces requests at DEBUG. Below that level its spans are never recorded, yet
    // wrapping every request and response still cost serve ≈ 5% of its throughput.
    let routes = if tracing::level_filters::LevelFilter::current() >= tracing::Level::DEBUG {
        routes.layer(TraceLayer::new_for_http())
    } else {
        routes
    };
    Guard::new(common, routes)
}

async fn ready_route(State(common): State<Arc<Common>>) -> Response {
    match common.readiness.get() {
        Ok(()) => Json(serde_json::json!({"ready": true})).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"ready": false, "reason": why})),
        )
            .into_response(),
    }
}

async fn info_route(State(common): State<Arc<Common>>) -> Response {
    Json(serde_json::json!({
        "name": common.info.name,
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "uptime_s": common.info.started.elapsed().as_secs_f64(),
        "resident_bytes": resident_bytes(),
    }))
    .into_response()
}

async fn metrics_route(State(common): State<Arc<Common>>) -> Response {
    use std::fmt::Write;
    let name = common.info.name;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# HELP logitflow_http_requests_total HTTP requests answered, by status class."
    );
    let _ = writeln!(text, "# TYPE logitflow_http_requests_total counter");
    let mut total = 0;
    let totals = common.connections.totals();
    for (class, &n) in totals.by_class.iter().enumerate().skip(1) {
        total += n;
        let _ = writeln!(
            text,
            "logitflow_http_requests_total{{service=\"{name}\",class=\"{class}xx\"}} {n}"
        );
    }
    let _ =
        writeln!(text, "# HELP logitflow_http_request_seconds Time spent answering HTTP requests.");
    let _ = writeln!(text, "# TYPE logitflow_http_request_seconds summary");
    let seconds = totals.micros_total as f64 / 1e6;
    let _ = writeln!(text, "logitflow_http_request_seconds_sum{{service=\"{name}\"}} {seconds}");
    let _ = writeln!(text, "logitflow_http_request_seconds_count{{service=\"{name}\"}} {total}");
    let _ = writeln!(text, "# HELP logitflow_uptime_seconds Seconds since the service started.");
    let _ = writeln!(text, "# TYPE logitflow_uptime_seconds gauge");
    let _ = writeln!(
        text,
        "logitflow_uptime_seconds{{service=\"{name}\"}} {}",
        common.info.started.elapsed().as_secs_f64()
    );
    if let Some(bytes) = resident_bytes() {
        let _ =
            writeln!(text, "# HELP process_resident_memory_bytes Resident memory size in bytes.");
        let _ = writeln!(text, "# TYPE process_resident_memory_bytes gauge");
        let _ = writeln!(text, "process_resident_memory_bytes {bytes}");
    }
    (common.extra_metrics)(&mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn accept_failures_are_logged_once_per_period_with_their_count() {
        let mut failures = super::AcceptFailures::default();
        assert_eq!(failures.note(), Some(1), "the first is logged at once");
        assert_eq!(
            (0..99).filter_map(|_| failures.note()).count(),
            0,
            "the next ones wait for the period"
        );
        failures.logged_at = Some(std::time::Instant::now() - super::AcceptFailures::EVERY);
        assert_eq!(failures.note(), Some(100), "then they are logged with their count");
    }

    use super::*;
    use axum::body::Body;
    use axum::extract::Request;
    use http_body_util::BodyExt;
    use std::time::Instant;
    use tower::ServiceExt;

    fn app(token: Option<&str>) -> Guard<Router> {
        let mut config = Config::for_home(std::env::temp_dir());
        config.token = token.map(String::from);
        config.body_limit = 64;
        let common = Common::new("test", Readiness::not_ready("loading"), &config);
        let routes = Router::new().route(
            "/echo",
            axum::routing::post(|crate::Json(v): crate::Json<serde_json::Value>| async move {
                crate::Json(v)
            }),
        );
        router(common, routes)
    }

    async fn call(app: Guard<Router>, request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = app.oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    fn post(path: &str, body: &str, token: Option<&str>) -> Request<Body> {
        let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        b.body(Body::from(body.to_string())).expect("request")
    }

    #[tokio::test]
    async fn health_routes_and_readiness_reason() {
        let (status, body) = call(
            app(Some("s3cret")),
            Request::get("/v2/health/live").body(Body::empty()).expect("req"),
        )
        .await;
        assert_eq!((status, body["live"].as_bool()), (StatusCode::OK, Some(true)));
        let (status, body) = call(
            app(Some("s3cret")),
            Request::get("/v2/health/ready").body(Body::empty()).expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["reason"], "loading");
    }

    #[tokio::test]
    async fn token_required_on_other_routes() {
        let (status, body) = call(app(Some("s3cret")), post("/echo", "{}", None)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"))
        );
        let (status, _) = call(app(Some("s3cret")), post("/echo", "{}", Some("wrong!"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = call(app(Some("s3cret")), post("/echo", "{}", Some("s3cret"))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) =
            call(app(Some("s3cret")), Request::get("/metrics").body(Body::empty()).expect("req"))
                .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn bad_bodies_get_json_errors() {
        let cases = [
            (post("/echo", "{not json", None), StatusCode::BAD_REQUEST, "MALFORMED_REQUEST"),
            (post("/echo", "[NaN]", None), StatusCode::BAD_REQUEST, "MALFORMED_REQUEST"),
            (
                post("/echo", &"x".repeat(100), None),
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
            ),
            // Refused on its declared length, before any of it is read.
            (
                Request::post("/echo")
                    .header(header::CONTENT_LENGTH, "100")
                    .body(Body::from("x".repeat(100)))
                    .expect("req"),
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
            ),
            (
                Request::post("/echo").body(Body::from("{}")).expect("req"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (
                Request::get("/echo").body(Body::empty()).expect("req"),
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
            ),
            (
                Request::get("/nope").body(Body::empty()).expect("req"),
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
            ),
        ];
        for (request, status, code) in cases {
            let (got, body) = call(app(None), request).await;
            assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }

    /// hyper's own answers to what it cannot parse come with JSON bodies like every other error.
    #[tokio::test]
    async fn requests_hyper_refuses_itself_get_json_errors_too() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let config = Config::for_home(std::env::temp_dir());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            serve(
                "test",
                &config,
                Readiness::ready(),
                Router::new(),
                listener,
                std::future::pending(),
            )
            .await
        });
        let long_uri = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(100_000));
        for (request, status, code) in [
            ("GARBAGE\r\n\r\n".to_string(), "400", "MALFORMED_REQUEST"),
            (long_uri, "414", "URI_TOO_LONG"),
        ] {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let _ = stream.write_all(request.as_bytes()).await;
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
            let answer = String::from_utf8_lossy(&answer);
            let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}"))
                    && head.contains("application/json"),
                "{answer}"
            );
            let body: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            assert_eq!(body["code"], code, "{answer}");
        }
    }

    /// A client that writes its whole body before it reads (Python's urllib and requests):
    /// the 413 reaches it, instead of a broken pipe mid-write.
    #[tokio::test]
    async fn a_client_that_writes_a_too_large_body_first_still_reads_the_413() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut config = Config::for_home(std::env::temp_dir());
        config.body_limit = 1024;
        let routes = Router::new().route(
            "/echo",
            axum::routing::post(|crate::Json(v): crate::Json<serde_json::Value>| async move {
                crate::Json(v)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            serve("test", &config, Readiness::ready(), routes, listener, std::future::pending())
                .await
        });
        for size in [64 << 10, 4 << 20] {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let head = format!(
                "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.expect("head");
            stream
                .write_all(&vec![b' '; size])
                .await
                .expect("the whole body is taken, not refused mid-write");
            // Read until the JSON body has come (the connection may stay open for the next).
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            let deadline = Instant::now() + Duration::from_secs(5);
            while !String::from_utf8_lossy(&answer).ends_with('}') && Instant::now() < deadline {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let answer = String::from_utf8_lossy(&answer);
            assert!(
                answer.starts_with("HTTP/1.1 413") && answer.contains("PAYLOAD_TOO_LARGE"),
                "{size}: {answer}"
            );
        }
    }

    #[tokio::test]
    async fn a_trickling_client_is_cut_off_and_does_not_stall_others() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut config = Config::for_home(std::env::temp_dir());
        // The body timeout is idle time between chunks; the request timeout bounds the total,
        // and is what stops a client that sends a byte every 100 ms.
        config.body_timeout = Duration::from_millis(300);
        config.request_timeout = Duration::from_millis(800);
        let routes = Router::new().route(
            "/echo",
            axum::routing::post(|crate::Json(v): crate::Json<serde_json::Value>| async move {
                crate::Json(v)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            serve("test", &config, Readiness::ready(), routes, listener, std::future::pending())
                .await
        });
        let slow = tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let (mut read, mut write) = stream.into_split();
            let head = "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";
            write.write_all(head.as_bytes()).await.expect("head");
            let started = Instant::now();
            // One byte every 100 ms, in the background, for up to 5 s.
            tokio::spawn(async move {
                for _ in 0..50 {
                    if write.write_all(b" ").await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            let mut answer = vec![0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(5), read.read(&mut answer))
                .await
                .map_or(0, |r| r.unwrap_or(0));
            (started.elapsed(), String::from_utf8_lossy(&answer[..n]).into_owned())
        });
        // Meanwhile, other clients are answered at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let client = crate::client::ServiceClient::new("test", addr.to_string(), None);
        for _ in 0..5 {
            let t = Instant::now();
            let v: serde_json::Value = client
                .post("/echo", &serde_json::json!({"a": 1}))
                .await
                .expect("fast client answered");
            assert_eq!(v["a"], 1);
            // The trickler takes 5 s; a second is far from it even in a debug build on a busy machine.
            assert!(t.elapsed() < Duration::from_secs(1), "a fast client waited {:?}", t.elapsed());
        }
        // A client that stops sending mid-body hits the idle body timeout (300 ms), before the
        // total (800 ms): the rejection is recognised as a timeout, not a malformed body.
        let stalled = tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let head = "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";
            stream.write_all(head.as_bytes()).await.expect("head");
            let started = Instant::now();
            let mut answer = vec![0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
                .await
                .map_or(0, |r| r.unwrap_or(0));
            (started.elapsed(), String::from_utf8_lossy(&answer[..n]).into_owned())
        });
        let (took, answer) = stalled.await.expect("stalled client");
        assert!(
            answer.starts_with("HTTP/1.1 408") && answer.contains("\"code\":\"TIMEOUT\""),
            "the stalled client gets 408 TIMEOUT: {answer:?}"
        );
        assert!(took < Duration::from_millis(800), "cut off by the idle timeout, after {took:?}");
        let (took, answer) = slow.await.expect("slow client");
        assert!(answer.starts_with("HTTP/1.1 408"), "the trickler gets 408: {answer:?}");
        assert!(took < Duration::from_secs(2), "cut off after {took:?}");
    }

    #[tokio::test]
    async fn a_client_trickling_its_headers_is_disconnected() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut config = Config::for_home(std::env::temp_dir());
        config.header_timeout = Duration::from_millis(300);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            serve(
                "test",
                &config,
                Readiness::ready(),
                Router::new(),
                listener,
                std::future::pending(),
            )
            .await
        });
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let started = Instant::now();
        // Half a request line, then one header byte every 100 ms: the headers never end.
        stream.write_all(b"GET /v2/health/live HTTP/1.1\r\nx-slow: ").await.expect("head");
        let mut buf = [0u8; 256];
        let closed = loop {
            tokio::select! {
                read = stream.read(&mut buf) => break matches!(read, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408"),
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if stream.write_all(b"a").await.is_err() {
                        break true;
                    }
                }
            }
            if started.elapsed() > Duration::from_secs(5) {
                break false;
            }
        };
        assert!(closed, "the connection was still open after {:?}", started.elapsed());
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(2),
            "disconnected after {took:?}"
        );
        // The server still answers others.
        let client = crate::client::ServiceClient::new("test", addr.to_string(), None);
        let live: serde_json::Value = client.get("/v2/health/live").await.expect("answered");
        assert_eq!(live["live"], true);
    }

    #[tokio::test]
    async fn a_stream_outlives_the_header_timeout_and_an_idle_connection_does_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut config = Config::for_home(std::env::temp_dir());
        config.header_timeout = Duration::from_millis(200);
        // Six chunks 100 ms apart: the response lasts three header timeouts.
        let chunks = || {
            futures::stream::unfold(0, |i| async move {
                (i < 6).then_some(())?;
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(format!("chunk {i}\n"))), i + 1))
            })
        };
        let routes =
            Router::new().route("/stream", get(move || async move { Body::from_stream(chunks()) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            serve("test", &config, Readiness::ready(), routes, listener, std::future::pending())
                .await
        });
        let mut connection = tokio::net::TcpStream::connect(addr).await.expect("connect");
        connection.write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("request");
        let mut received = Vec::new();
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&received).contains("chunk 5")
            && started.elapsed() < Duration::from_secs(5)
        {
            match tokio::time::timeout(Duration::from_secs(5), connection.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&received);
        assert!(
            text.contains("chunk 0") && text.contains("chunk 5"),
            "the whole stream arrived: {text:?}"
        );
        // The stream is over and the connection idle: it is closed after the header timeout.
        let idle = Instant::now();
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(3), connection.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break true,
                Ok(Ok(_)) => continue,
                Err(_) => break false,
            }
        };
        assert!(closed, "the idle connection was still open after {:?}", idle.elapsed());
        assert!(
            idle.elapsed() >= Duration::from_millis(150),
            "closed after {:?}, before the timeout",
            idle.elapsed()
        );
    }

    /// `--tls-cert`/`--tls-key`: HTTPS with the token as before, and nothing in plain HTTP; a
    /// key that is not the certificate's is refused at start, naming the file.
    #[tokio::test]
    async fn a_service_with_a_certificate_speaks_https_only() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().expect("tempdir");
        let made =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).expect("cert");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("key");
        let mut config = Config::for_home(dir.path());
        config.token = Some("s3cret".into());
        config.tls = Some((cert.clone(), key.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let serving = config.clone();
        tokio::spawn(async move {
            serve(
                "test",
                &serving,
                Readiness::ready(),
                Router::new(),
                listener,
                std::future::pending(),
            )
            .await
        });

        let root = reqwest::Certificate::from_pem(made.cert.pem().as_bytes()).expect("root");
        let trusting =
            reqwest::Client::builder().add_root_certificate(root).build().expect("client");
        let url = |path: &str| format!("https://localhost:{port}{path}");
        let live = trusting.get(url("/v2/health/live")).send().await.expect("https answers");
        assert_eq!(live.status(), 200);
        let refused = trusting.get(url("/v1/info")).send().await.expect("answers");
        assert_eq!(refused.status(), 401, "the token is still required");
        let info =
            trusting.get(url("/v1/info")).bearer_auth("s3cret").send().await.expect("answers");
        assert_eq!(info.status(), 200);
        // A client that does not trust the certificate gets no answer, and neither does plain HTTP.
        let untrusting = reqwest::Client::new().get(url("/v2/health/live")).send().await;
        assert!(untrusting.is_err(), "a certificate nobody vouches for was accepted");
        let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let _ = plain.write_all(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
        assert!(
            !answer.starts_with(b"HTTP/1.1 200"),
            "plain HTTP was answered: {}",
            String::from_utf8_lossy(&answer)
        );

        // Another key than the certificate's: refused before listening, naming the key file.
        let other = rcgen::KeyPair::generate().expect("key");
        std::fs::write(&key, other.serialize_pem()).expect("other key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let refused = serve(
            "test",
            &config,
            Readiness::ready(),
            Router::new(),
            listener,
            std::future::pending(),
        )
        .await
        .expect_err("mismatch");
        assert!(
            refused.to_string().contains("key.pem")
                && refused.to_string().contains("does not go with the certificate"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn info_and_metrics() {
        let (status, body) =
            call(app(None), Request::get("/v1/info").body(Body::empty()).expect("req")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "test");
        assert_eq!(body["pid"], std::process::id());
    }

    #[tokio::test]
    async fn metrics_count_every_answer_by_status_class() {
        let app = app(None);
        for _ in 0..3 {
            assert_eq!(call(app.clone(), post("/echo", "{}", None)).await.0, StatusCode::OK);
        }
        assert_eq!(
            call(app.clone(), Request::get("/nowhere").body(Body::empty()).expect("req")).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(app.clone(), post("/echo", &"x".repeat(100), None)).await.0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let response = app
            .oneshot(Request::get("/metrics").body(Body::empty()).expect("req"))
            .await
            .expect("ok");
        let text = String::from_utf8(
            response.into_body().collect().await.expect("body").to_bytes().to_vec(),
        )
        .expect("utf8");
        let count = |class: &str| -> Option<u64> {
            let series =
                format!("logitflow_http_requests_total{{service=\"test\",class=\"{class}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(series.as_str()))?.parse().ok()
        };
        // The metrics request itself is counted once answered, so it is not in its own figures.
        assert_eq!(
            [count("2xx"), count("4xx"), count("5xx")],
            [Some(3), Some(2), Some(0)],
            "{text}"
        );
        assert!(
            text.contains("logitflow_http_request_seconds_count{service=\"test\"} 5\n"),
            "{text}"
        );
    }
}
