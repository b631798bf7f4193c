use crate::config::Config;
use crate::error::{ApiError, error_response};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tower_http::trace::TraceLayer;

/// How long in-flight requests (and event streams) get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What `GET /v2/health/ready` answers: ready, or not ready and why. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<Mutex<Result<(), String>>>);

impl Readiness {
    pub fn ready() -> Self {
        Readiness(Arc::new(Mutex::new(Ok(()))))
    }
    pub fn not_ready(why: impl Into<String>) -> Self {
        Readiness(Arc::new(Mutex::new(Err(why.into()))))
    }
    pub fn set(&self, state: Result<(), String>) {
        if let Ok(mut guard) = self.0.lock() {
            *guard = state;
        }
    }
    pub fn get(&self) -> Result<(), String> {
        self.0.lock().map_or_else(|_| Err("readiness state poisoned".into()), |g| g.clone())
    }
}

/// The service's identity, for `GET /v1/info`.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub name: &'static str,
    pub started: Instant,
}

/// Request counters, kept lock-free so they cost nothing on hot routes.
#[derive(Debug, Default)]
struct HttpMetrics {
    by_class: [AtomicU64; 6],
    micros_total: AtomicU64,
}

/// What the common routes and the [`Guard`] share; one per service, behind an `Arc`.
struct Common {
    info: ServiceInfo,
    readiness: Readiness,
    metrics: HttpMetrics,
    token: Option<Box<str>>,
    body_limit: usize,
    request_timeout: Duration,
    body_timeout: Duration,
}

impl Common {
    fn new(name: &'static str, readiness: Readiness, config: &Config) -> Arc<Self> {
        Arc::new(Common {
            info: ServiceInfo { name, started: Instant::now() },
            readiness,
            metrics: HttpMetrics::default(),
            token: config.token.as_deref().map(Box::from),
            body_limit: config.body_limit,
            request_timeout: config.request_timeout,
            body_timeout: config.body_timeout,
        })
    }

    fn count(&self, status: StatusCode, took: Duration) {
        let class = (status.as_u16() / 100) as usize;
        self.metrics.by_class[class.min(5)].fetch_add(1, Ordering::Relaxed);
        self.metrics.micros_total.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Logs JSON lines to stderr; `LOGITFLOW_LOG` sets the filter (default `info`).
pub fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("LOGITFLOW_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_writer(std::io::stderr).with_env_filter(filter).with_current_span(false).try_init();
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
/// `axum::serve`, because only hyper's connection builder can time out slow headers.
pub async fn serve(
    name: &'static str,
    config: &Config,
    readiness: Readiness,
    routes: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(Common::new(name, readiness, config), routes);
    let addr = listener.local_addr()?;
    {
        use std::io::Write;
        let line = serde_json::json!({"event": "listening", "service": name, "addr": addr.to_string()});
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
    }
    tracing::info!(service = name, %addr, "listening");
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(config.header_timeout);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(service = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = connections.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that goes away or times out mid-request is routine, not an error.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    tracing::info!(service = name, "shutting down");
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.shutdown()).await.is_err() {
        tracing::warn!(service = name, "in-flight requests did not finish within the grace period");
    }
    Ok(())
}

/// The service's routes and the common ones, behind the [`Guard`].
fn router(common: Arc<Common>, routes: Router) -> Guard<Router> {
    let common_routes = Router::new()
        .route("/metrics", get(metrics_route))
        .route("/v1/info", get(info_route))
        .route("/v2/health/live", get(|| async { Json(serde_json::json!({"live": true})) }))
        .route("/v2/health/ready", get(ready_route))
        .with_state(common.clone());
    let routes = routes.merge(common_routes).fallback(|| async { ApiError::NotFound("no such route".into()) }).method_not_allowed_fallback(
        || async { error_response(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "method not allowed on this route".into()) },
    );
    // tower-http traces requests at DEBUG. Below that level its spans are never recorded, yet
    // wrapping every request and response still cost serve ≈ 5% of its throughput.
    let routes = if tracing::level_filters::LevelFilter::current() >= tracing::Level::DEBUG {
        routes.layer(TraceLayer::new_for_http())
    } else {
        routes
    };
    Guard { common, routes }
}

fn is_health(path: &str) -> bool {
    path.starts_with("/v2/health/")
}

/// Compares without stopping at the first difference, so timing does not leak the token.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The one middleware every request passes, wrapped once around the whole router: auth (every
/// non-health route needs the bearer token when one is set), the body limit, the request and
/// body timeouts, JSON bodies for the errors that axum answers in plain text (405, 413, …),
/// and the counters.
///
/// It is a hand-written tower `Service` with its own future, not `axum::middleware::from_fn`
/// applied per route: that boxed the middleware's future, cloned the route's boxed service and
/// wrapped the body three times on every request, which cost serve ≈ 10% of its throughput.
/// The timeouts are armed only when the work they bound has to wait, so a request whose body
/// is in and whose handler answers at once never touches the runtime's timer wheel.
/// (tower-http's timeout layers start a timer for every request and every body frame, which
/// cost serve a third of its throughput.)
#[derive(Clone)]
struct Guard<S> {
    common: Arc<Common>,
    routes: S,
}

impl<S, B> tower::Service<Request<B>> for Guard<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.routes.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let common = self.common.clone();
        if let Some(refused) = refusal(&common, &request) {
            return GuardFuture { route: None, refused: Some(refused.into_response()), timer: None, common, started };
        }
        let (limit, timeout) = (common.body_limit, common.body_timeout);
        let request =
            request.map(|body| Body::new(IdleTimeoutBody { inner: http_body_util::Limited::new(body, limit), timeout, timer: None }));
        GuardFuture { route: Some(self.routes.call(request)), refused: None, timer: None, common, started }
    }
}

/// Why the guard answers a request itself: a missing or wrong token, or a body whose declared
/// length is over the limit (a body that turns out longer is cut off as it is read).
fn refusal<B>(common: &Common, request: &Request<B>) -> Option<ApiError> {
    if let Some(token) = &common.token
        && !is_health(request.uri().path())
    {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|given| same_token(given.as_bytes(), token.as_bytes())) {
            return Some(ApiError::Unauthorized);
        }
    }
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > common.body_limit as u64) {
        return Some(ApiError::PayloadTooLarge(format!("the request body is over the limit of {} bytes", common.body_limit)));
    }
    None
}

pin_project_lite::pin_project! {
    /// The [`Guard`]'s answer: the route's response, or the guard's own refusal, counted.
    struct GuardFuture<F> {
        #[pin]
        route: Option<F>,
        refused: Option<Response>,
        // The request timeout, started only if the route has to wait.
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        common: Arc<Common>,
        started: Instant,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for GuardFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.route.as_pin_mut() {
            None => this.refused.take().unwrap_or_default(),
            Some(route) => match route.poll(cx) {
                Poll::Ready(Ok(response)) => json_errors(response),
                Poll::Ready(Err(never)) => match never {},
                Poll::Pending => {
                    let timeout = this.common.request_timeout;
                    ready!(this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout))).as_mut().poll(cx));
                    ApiError::Timeout("the request took too long and was cut off".into()).into_response()
                }
            },
        };
        this.common.count(response.status(), this.started.elapsed());
        Poll::Ready(Ok(response))
    }
}

fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge("the request body is over the limit".into()).into_response(),
        _ => {
            let reason = status.canonical_reason().unwrap_or("error").to_string();
            error_response(status, &reason.to_uppercase().replace([' ', '-'], "_"), reason)
        }
    }
}

/// The error a request body fails with when no byte arrives for the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("no part of the request body arrived for {0:?}")]
pub(crate) struct BodyTimedOut(Duration);

pin_project_lite::pin_project! {
    /// A request body that fails with [`BodyTimedOut`] when it goes `timeout` without a frame.
    /// The timer starts only when the body has to wait for the client.
    struct IdleTimeoutBody<B> {
        #[pin]
        inner: B,
        timeout: Duration,
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<B> http_body::Body for IdleTimeoutBody<B>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<axum::BoxError>,
{
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = *this.timeout;
                ready!(this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout))).as_mut().poll(cx));
                Poll::Ready(Some(Err(Box::new(BodyTimedOut(timeout)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

async fn ready_route(State(common): State<Arc<Common>>) -> Response {
    match common.readiness.get() {
        Ok(()) => Json(serde_json::json!({"ready": true})).into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"ready": false, "reason": why}))).into_response(),
    }
}

async fn info_route(State(common): State<Arc<Common>>) -> Response {
    Json(serde_json::json!({
        "name": common.info.name,
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "uptime_s": common.info.started.elapsed().as_secs_f64(),
    }))
    .into_response()
}

async fn metrics_route(State(common): State<Arc<Common>>) -> Response {
    use std::fmt::Write;
    let name = common.info.name;
    let mut text = String::new();
    let _ = writeln!(text, "# HELP logitflow_http_requests_total HTTP requests answered, by status class.");
    let _ = writeln!(text, "# TYPE logitflow_http_requests_total counter");
    let mut total = 0;
    for (class, counter) in common.metrics.by_class.iter().enumerate().skip(1) {
        let n = counter.load(Ordering::Relaxed);
        total += n;
        let _ = writeln!(text, "logitflow_http_requests_total{{service=\"{name}\",class=\"{class}xx\"}} {n}");
    }
    let _ = writeln!(text, "# HELP logitflow_http_request_seconds Time spent answering HTTP requests.");
    let _ = writeln!(text, "# TYPE logitflow_http_request_seconds summary");
    let seconds = common.metrics.micros_total.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(text, "logitflow_http_request_seconds_sum{{service=\"{name}\"}} {seconds}");
    let _ = writeln!(text, "logitflow_http_request_seconds_count{{service=\"{name}\"}} {total}");
    let _ = writeln!(text, "# HELP logitflow_uptime_seconds Seconds since the service started.");
    let _ = writeln!(text, "# TYPE logitflow_uptime_seconds gauge");
    let _ = writeln!(text, "logitflow_uptime_seconds{{service=\"{name}\"}} {}", common.info.started.elapsed().as_secs_f64());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app(token: Option<&str>) -> Guard<Router> {
        let mut config = Config::for_home(std::env::temp_dir());
        config.token = token.map(String::from);
        config.body_limit = 64;
        let common = Common::new("test", Readiness::not_ready("loading"), &config);
        let routes = Router::new()
            .route("/echo", axum::routing::post(|crate::Json(v): crate::Json<serde_json::Value>| async move { crate::Json(v) }));
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
        let (status, body) = call(app(Some("s3cret")), Request::get("/v2/health/live").body(Body::empty()).expect("req")).await;
        assert_eq!((status, body["live"].as_bool()), (StatusCode::OK, Some(true)));
        let (status, body) = call(app(Some("s3cret")), Request::get("/v2/health/ready").body(Body::empty()).expect("req")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["reason"], "loading");
    }

    #[tokio::test]
    async fn token_required_on_other_routes() {
        let (status, body) = call(app(Some("s3cret")), post("/echo", "{}", None)).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED")));
        let (status, _) = call(app(Some("s3cret")), post("/echo", "{}", Some("wrong!"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = call(app(Some("s3cret")), post("/echo", "{}", Some("s3cret"))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call(app(Some("s3cret")), Request::get("/metrics").body(Body::empty()).expect("req")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn bad_bodies_get_json_errors() {
        let cases = [
            (post("/echo", "{not json", None), StatusCode::BAD_REQUEST, "MALFORMED_REQUEST"),
            (post("/echo", "[NaN]", None), StatusCode::BAD_REQUEST, "MALFORMED_REQUEST"),
            (post("/echo", &"x".repeat(100), None), StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            // Refused on its declared length, before any of it is read.
            (
                Request::post("/echo").header(header::CONTENT_LENGTH, "100").body(Body::from("x".repeat(100))).expect("req"),
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
            ),
            (Request::post("/echo").body(Body::from("{}")).expect("req"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
            (Request::get("/echo").body(Body::empty()).expect("req"), StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            (Request::get("/nope").body(Body::empty()).expect("req"), StatusCode::NOT_FOUND, "NOT_FOUND"),
        ];
        for (request, status, code) in cases {
            let (got, body) = call(app(None), request).await;
            assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
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
        let routes = Router::new()
            .route("/echo", axum::routing::post(|crate::Json(v): crate::Json<serde_json::Value>| async move { crate::Json(v) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { serve("test", &config, Readiness::ready(), routes, listener, std::future::pending()).await });
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
            let n = tokio::time::timeout(Duration::from_secs(5), read.read(&mut answer)).await.map_or(0, |r| r.unwrap_or(0));
            (started.elapsed(), String::from_utf8_lossy(&answer[..n]).into_owned())
        });
        // Meanwhile, other clients are answered at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let client = crate::client::ServiceClient::new("test", addr.to_string(), None);
        for _ in 0..5 {
            let t = Instant::now();
            let v: serde_json::Value = client.post("/echo", &serde_json::json!({"a": 1})).await.expect("fast client answered");
            assert_eq!(v["a"], 1);
            assert!(t.elapsed() < Duration::from_millis(200), "a fast client waited {:?}", t.elapsed());
        }
        // A client that stops sending mid-body hits the idle body timeout (300 ms), before the
        // total (800 ms): the rejection is recognised as a timeout, not a malformed body.
        let stalled = tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let head = "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";
            stream.write_all(head.as_bytes()).await.expect("head");
            let started = Instant::now();
            let mut answer = vec![0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await.map_or(0, |r| r.unwrap_or(0));
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
        tokio::spawn(async move { serve("test", &config, Readiness::ready(), Router::new(), listener, std::future::pending()).await });
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
        assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "disconnected after {took:?}");
        // The server still answers others.
        let client = crate::client::ServiceClient::new("test", addr.to_string(), None);
        let live: serde_json::Value = client.get("/v2/health/live").await.expect("answered");
        assert_eq!(live["live"], true);
    }

    #[tokio::test]
    async fn info_and_metrics() {
        let (status, body) = call(app(None), Request::get("/v1/info").body(Body::empty()).expect("req")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "test");
        assert_eq!(body["pid"], std::process::id());
        let response = app(None).oneshot(Request::get("/metrics").body(Body::empty()).expect("req")).await.expect("ok");
        let text = response.into_body().collect().await.expect("body").to_bytes();
        assert!(String::from_utf8_lossy(&text).contains("logitflow_http_requests_total{service=\"test\""));
    }
}
