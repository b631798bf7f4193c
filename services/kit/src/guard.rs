//! The one middleware every request passes: [`Guard`] (a tower and hyper `Service`), its
//! future [`GuardFuture`], and the request body wrapper [`IdleTimeoutBody`].

use crate::common::Common;
use crate::connection::Connection;
use crate::error::{ApiError, BodyTimedOut, error_response};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

fn is_health(path: &str) -> bool {
    path.starts_with("/v2/health/")
}

/// Compares without stopping at the first difference, so timing does not leak the token.
pub fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
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
///
/// Each connection has its own guard, holding that connection's state: a request writes only
/// to it, never to state that requests on other connections, on the other core, write too.
#[derive(Clone)]
pub(crate) struct Guard<S> {
    common: Arc<Common>,
    connection: Arc<Connection>,
    routes: S,
}

impl<S: Clone> Guard<S> {
    pub(crate) fn new(common: Arc<Common>, routes: S) -> Self {
        let connection = common.connections.open();
        Guard { common, connection, routes }
    }

    /// The guard of a new connection.
    pub(crate) fn for_connection(&self) -> Self {
        Guard::new(self.common.clone(), self.routes.clone())
    }

    pub(crate) fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }
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
        let routes = &mut self.routes;
        guard(&self.common, &self.connection, request, |request| routes.call(request))
    }
}

/// The accept loop hands requests to the guard directly, rather than through hyper-util's
/// `TowerToHyperService`, which clones the whole service for every request. axum's `Router`
/// is always ready, so it is called without `poll_ready`.
impl hyper::service::Service<Request<hyper::body::Incoming>> for Guard<Router> {
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<<Router as tower::Service<Request<Body>>>::Future>;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        guard(&self.common, &self.connection, request, |request| {
            tower::Service::call(&mut self.routes.clone(), request)
        })
    }
}

fn guard<B, F>(
    common: &Common,
    connection: &Arc<Connection>,
    request: Request<B>,
    route: impl FnOnce(Request<Body>) -> F,
) -> GuardFuture<F>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let started = Instant::now();
    let refused = if connection.begin_request() {
        refusal(common, &request)
    } else {
        // The header watchdog gave up on this connection just before the head arrived; the
        // connection closes after this answer.
        Some(ApiError::Timeout("the request head did not arrive in time".into()))
    };
    let mut future = GuardFuture {
        route: None,
        refused: None,
        draining: None,
        timeout: LazyTimeout::new(common.request_timeout),
        connection: connection.clone(),
        started,
    };
    match refused {
        // A body too large by its declared length is read and thrown away (up to a bound)
        // before the 413 is sent, as nginx's lingering close does: a client that writes its
        // whole body before reading (Python's urllib and requests do) would otherwise be cut
        // off mid-write and see a broken pipe instead of the answer.
        Some(refused @ ApiError::PayloadTooLarge(_))
            if declared_length(&request).is_some_and(|n| n <= DRAIN_LIMIT) =>
        {
            let response = refused.into_response();
            let body = request.into_body();
            future.draining = Some(Box::pin(async move {
                let _ = tokio::time::timeout(DRAIN_TIME, drain(body, DRAIN_LIMIT)).await;
                response
            }));
        }
        Some(refused) => future.refused = Some(refused.into_response()),
        None => {
            let (limit, timeout) = (
                usize::try_from(common.body_limit_for(request.uri().path())).unwrap_or(usize::MAX),
                common.body_timeout,
            );
            let body = |body| {
                Body::new(IdleTimeoutBody {
                    inner: http_body_util::Limited::new(body, limit),
                    timeout: LazyTimeout::new(timeout),
                })
            };
            future.route = Some(route(request.map(body)));
        }
    }
    future
}

/// The most of a refused body read and discarded before answering, and for how long.
const DRAIN_LIMIT: u64 = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads a body and throws it away, up to `limit` bytes.
async fn drain<B>(body: B, limit: u64)
where
    B: http_body::Body<Data = bytes::Bytes>,
{
    use http_body_util::BodyExt;
    let mut body = std::pin::pin!(body);
    let mut read = 0u64;
    while read <= limit {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}

/// Why the guard answers a request itself: a missing or wrong token, or a body whose declared
/// length is over the limit (a body that turns out longer is cut off as it is read).
fn refusal<B>(common: &Common, request: &Request<B>) -> Option<ApiError> {
    if let Some(token) = &common.token
        && !is_health(request.uri().path())
    {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|given| same_token(given.as_bytes(), token.as_bytes())) {
            return Some(ApiError::Unauthorized);
        }
    }
    let limit = common.body_limit_for(request.uri().path());
    if declared_length(request).is_some_and(|length| length > limit) {
        return Some(ApiError::PayloadTooLarge(format!(
            "the request body is over the limit of {limit} bytes"
        )));
    }
    None
}

pin_project_lite::pin_project! {
    /// The [`Guard`]'s answer: the route's response, or the guard's own refusal, counted.
    pub(crate) struct GuardFuture<F> {
        #[pin]
        route: Option<F>,
        refused: Option<Response>,
        // A refusal sent once the body it refuses has been read (boxed: rare).
        draining: Option<Pin<Box<dyn Future<Output = Response> + Send>>>,
        timeout: LazyTimeout,
        connection: Arc<Connection>,
        started: Instant,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for GuardFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.route.as_pin_mut() {
            None if this.draining.is_some() => {
                match this.draining.as_mut().map(|d| d.as_mut().poll(cx)) {
                    Some(Poll::Ready(response)) => {
                        *this.draining = None;
                        response
                    }
                    _ => return Poll::Pending,
                }
            }
            None => this.refused.take().unwrap_or_default(),
            Some(route) => match route.poll(cx) {
                Poll::Ready(Ok(response)) => json_errors(response),
                Poll::Ready(Err(never)) => match never {},
                Poll::Pending => {
                    ready!(this.timeout.poll_expired(cx));
                    ApiError::Timeout("the request took too long and was cut off".into())
                        .into_response()
                }
            },
        };
        let now = Instant::now();
        this.connection.metrics.count(response.status(), now - *this.started);
        let response = if http_body::Body::size_hint(response.body()).exact().is_some() {
            // A whole body: hyper writes it at once, and the connection waits for the next head.
            this.connection.end_request(now);
            response
        } else {
            // A stream (server-sent events): the request lasts until the stream ends.
            let end = RequestEnd(this.connection.clone());
            response.map(|inner| Body::new(StreamedBody { inner, _end: end }))
        };
        Poll::Ready(Ok(response))
    }
}

/// Errors that axum answers in plain text (405, 413, …) answered as JSON `{error, code}`.
fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = || {
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    };
    if !(status.is_client_error() || status.is_server_error()) || is_json() {
        return response;
    }
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("the request body is over the limit".into()).into_response()
        }
        _ => {
            let reason = status.canonical_reason().unwrap_or("error").to_string();
            error_response(status, &reason.to_uppercase().replace([' ', '-'], "_"), reason)
        }
    }
}

/// Ends the connection's request when dropped: hyper drops a response body once it is sent.
struct RequestEnd(Arc<Connection>);

impl Drop for RequestEnd {
    fn drop(&mut self) {
        self.0.end_request(Instant::now());
    }
}

pin_project_lite::pin_project! {
    /// A streamed response body, which ends its connection's request when it is dropped.
    struct StreamedBody {
        #[pin]
        inner: Body,
        _end: RequestEnd,
    }
}

impl http_body::Body for StreamedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A timeout whose timer starts only when the work it bounds first has to wait: work that is
/// ready at once never touches the runtime's timer wheel.
struct LazyTimeout {
    after: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl LazyTimeout {
    fn new(after: Duration) -> Self {
        LazyTimeout { after, timer: None }
    }

    /// Call when the work is pending: ready once it has waited `after` since it first had to.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let after = self.after;
        self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(after))).as_mut().poll(cx)
    }

    /// The work made progress: its next wait is timed afresh.
    fn reset(&mut self) {
        self.timer = None;
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails with [`BodyTimedOut`] when it goes `timeout` without a frame.
    /// The timer starts only when the body has to wait for the client.
    struct IdleTimeoutBody<B> {
        #[pin]
        inner: B,
        timeout: LazyTimeout,
    }
}

impl<B> http_body::Body for IdleTimeoutBody<B>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<axum::BoxError>,
{
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timeout.reset();
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                ready!(this.timeout.poll_expired(cx));
                Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.timeout.after)))))
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
