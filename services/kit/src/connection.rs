//! Per-connection state: each connection's request counters, and the header watchdog that
//! closes connections which take too long to send a request head.
//!
//! - [`Connections`]: the service's registry of open connections and the counts of closed ones;
//!   `/metrics` sums them.
//! - [`Connection`]: one connection's counters and whether it is waiting for a request head.
//! - [`watch_headers`]: the watchdog task; [`WatchedIo`]: the socket wrapper through which it
//!   closes a connection.
//!
//! Why per connection: a request then writes only to its own connection's state. Counters and
//! reference counts shared by the whole service are written by every request from both
//! cores, and each such write moves a cache line between them.
//!
//! Why a watchdog: hyper's `header_read_timeout` does the same job but starts and cancels a
//! timer in the runtime's timer wheel for every request. Here one task looks at every
//! connection a few times per timeout, and a request costs two atomic stores.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Request counters: answers by status class (1xx–5xx) and the time spent answering.
#[derive(Debug, Default)]
pub(crate) struct HttpMetrics {
    by_class: [AtomicU64; 6],
    micros_total: AtomicU64,
}

/// A sum of [`HttpMetrics`], for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetricsTotals {
    /// Requests answered, by status class; index 2 is 2xx.
    pub(crate) by_class: [u64; 6],
    pub(crate) micros_total: u64,
}

impl HttpMetrics {
    pub(crate) fn count(&self, status: axum::http::StatusCode, took: Duration) {
        let class = usize::from(status.as_u16() / 100).min(5);
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        self.micros_total.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    fn add_to(&self, totals: &mut MetricsTotals) {
        for (total, counter) in totals.by_class.iter_mut().zip(&self.by_class) {
            *total += counter.load(Ordering::Relaxed);
        }
        totals.micros_total += self.micros_total.load(Ordering::Relaxed);
    }

    fn add(&self, other: &HttpMetrics) {
        for (mine, theirs) in self.by_class.iter().zip(&other.by_class) {
            mine.fetch_add(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.micros_total.fetch_add(other.micros_total.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// The value of [`Connection::waiting_since`] while a request is being answered.
const BUSY: u64 = u64::MAX - 1;
/// The value of [`Connection::waiting_since`] once the watchdog has given up on the connection.
const EXPIRED: u64 = u64::MAX;

/// The open connections of one service, and what the closed ones counted.
#[derive(Debug)]
pub(crate) struct Connections {
    /// When the service started: connections keep time in milliseconds since then.
    origin: Instant,
    open: Mutex<Vec<Weak<Connection>>>,
    closed: Arc<HttpMetrics>,
}

impl Connections {
    /// Connections of a service started at `origin`.
    pub(crate) fn new(origin: Instant) -> Self {
        Connections { origin, open: Mutex::default(), closed: Arc::default() }
    }

    /// Registers a new connection, waiting for its first request head from now.
    pub(crate) fn open(&self) -> Arc<Connection> {
        let connection = Arc::new(Connection {
            metrics: HttpMetrics::default(),
            origin: self.origin,
            waiting_since: AtomicU64::new(millis_since(self.origin, Instant::now())),
            reader: futures::task::AtomicWaker::new(),
            closed: self.closed.clone(),
        });
        self.open.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::downgrade(&connection));
        connection
    }

    /// Every request answered so far, on open and closed connections.
    pub(crate) fn totals(&self) -> MetricsTotals {
        let mut totals = MetricsTotals::default();
        self.closed.add_to(&mut totals);
        for connection in self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
        {
            connection.metrics.add_to(&mut totals);
        }
        totals
    }

    /// Expires every connection that has waited longer than `limit` for a request head, and
    /// forgets the closed ones.
    fn expire_waiting_longer_than(&self, limit: Duration) {
        let now = millis_since(self.origin, Instant::now());
        let limit = limit.as_millis() as u64;
        self.open.lock().unwrap_or_else(PoisonError::into_inner).retain(|weak| {
            let Some(connection) = weak.upgrade() else { return false };
            let since = connection.waiting_since.load(Ordering::Acquire);
            // The exchange fails if a request head arrived since the load: it is not expired.
            if since < BUSY
                && now.saturating_sub(since) > limit
                && connection
                    .waiting_since
                    .compare_exchange(since, EXPIRED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                connection.reader.wake();
            }
            true
        });
    }
}

fn millis_since(origin: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(origin).as_millis() as u64
}

/// One connection: its counters, and since when it has been waiting for a request head.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) metrics: HttpMetrics,
    origin: Instant,
    /// Milliseconds since `origin` at which the connection began waiting for a request head;
    /// [`BUSY`] while a request is answered; [`EXPIRED`] once the watchdog gave up on it.
    waiting_since: AtomicU64,
    /// The task reading the socket, woken when the connection expires.
    reader: futures::task::AtomicWaker,
    /// Where the counts go when the connection closes.
    closed: Arc<HttpMetrics>,
}

impl Connection {
    /// A request head has arrived. False if the watchdog expired the connection first.
    pub(crate) fn begin_request(&self) -> bool {
        self.waiting_since.swap(BUSY, Ordering::AcqRel) != EXPIRED || {
            self.waiting_since.store(EXPIRED, Ordering::Release);
            false
        }
    }

    /// The response is written (or handed to hyper whole): the connection waits for the next
    /// request head from `at`.
    pub(crate) fn end_request(&self, at: Instant) {
        let _ = self.waiting_since.compare_exchange(
            BUSY,
            millis_since(self.origin, at),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    fn is_expired(&self) -> bool {
        self.waiting_since.load(Ordering::Acquire) == EXPIRED
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.closed.add(&self.metrics);
    }
}

/// The header watchdog: every quarter of `timeout` (at least 10 ms, at most 1 s), expires the
/// connections that have waited longer than `timeout` for a request head — idle keep-alive
/// connections, and clients trickling their headers. Runs until the service stops.
pub(crate) async fn watch_headers(connections: Arc<Connections>, timeout: Duration) {
    let tick = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        connections.expire_waiting_longer_than(timeout);
    }
}

pin_project_lite::pin_project! {
    /// A connection's socket, whose reads fail once the watchdog has expired the connection, so
    /// that hyper closes it.
    pub(crate) struct WatchedIo<T> {
        #[pin]
        inner: T,
        connection: Arc<Connection>,
        // One of hyper's own error answers, rewritten with a JSON body, being written out:
        // the bytes, how many are written, and how many hyper handed over.
        rewritten: Option<(Vec<u8>, usize, usize)>,
    }
}

impl<T> WatchedIo<T> {
    pub(crate) fn new(inner: T, connection: Arc<Connection>) -> Self {
        WatchedIo { inner, connection, rewritten: None }
    }
}

/// hyper answers a request it cannot parse (400), a URI too long (414) or header fields too
/// large (431) itself, before any service code runs, with an empty body. Every other error a
/// service answers has a JSON `{error, code}` body, so these are recognised by their empty
/// body and given one.
fn with_json_body(head: &[u8]) -> Option<Vec<u8>> {
    const EMPTY: &[u8] = b"\r\ncontent-length: 0\r\n";
    if !(head.starts_with(b"HTTP/1.1 4") && head.ends_with(b"\r\n\r\n")) {
        return None;
    }
    let at = head.windows(EMPTY.len()).position(|w| w == EMPTY)?;
    let (error, code) = match head.get(9..12)? {
        b"400" => ("the request could not be read as HTTP", "MALFORMED_REQUEST"),
        b"414" => ("the request's URI is too long", "URI_TOO_LONG"),
        b"431" => ("the request's header fields are too large", "HEADERS_TOO_LARGE"),
        _ => ("the request was refused", "BAD_REQUEST"),
    };
    let body = serde_json::json!({"error": error, "code": code}).to_string();
    let mut out = Vec::with_capacity(head.len() + body.len() + 64);
    out.extend_from_slice(&head[..at]);
    out.extend_from_slice(
        format!("\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", body.len())
            .as_bytes(),
    );
    out.extend_from_slice(&head[at + EMPTY.len()..]);
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

fn header_timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no request head arrived within the header timeout")
}

impl<T: hyper::rt::Read> hyper::rt::Read for WatchedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if this.connection.is_expired() {
            return Poll::Ready(Err(header_timed_out()));
        }
        let read = this.inner.poll_read(cx, buf);
        if read.is_pending() {
            this.connection.reader.register(cx.waker());
            // The watchdog may have expired the connection before the waker was registered.
            if this.connection.is_expired() {
                return Poll::Ready(Err(header_timed_out()));
            }
        }
        read
    }
}

impl<T: hyper::rt::Write> WatchedIo<T> {
    /// Writes out a rewritten answer; ready with the length hyper handed over once it is all out.
    fn poll_rewritten(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut this = self.project();
        while let Some((bytes, written, handed)) = this.rewritten.as_mut() {
            if *written == bytes.len() {
                let handed = *handed;
                *this.rewritten = None;
                return Poll::Ready(Ok(handed));
            }
            match this.inner.as_mut().poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(0))
    }
}

impl<T: hyper::rt::Write> hyper::rt::Write for WatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.rewritten.is_none()
            && let Some(bytes) = with_json_body(buf)
        {
            *self.as_mut().project().rewritten = Some((bytes, 0, buf.len()));
        }
        if self.rewritten.is_some() {
            return self.poll_rewritten(cx);
        }
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // hyper's error answers are a head alone, in one slice.
        if let [only] = bufs
            && self.rewritten.is_none()
            && let Some(bytes) = with_json_body(only)
        {
            *self.as_mut().project().rewritten = Some((bytes, 0, only.len()));
        }
        if self.rewritten.is_some() {
            return self.poll_rewritten(cx);
        }
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_own_empty_error_answers_get_a_json_body_and_nothing_else_changes() {
        let head = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(with_json_body(head).expect("rewritten")).expect("utf8");
        let (head, body) = out.split_once("\r\n\r\n").expect("a head and a body");
        assert!(
            head.starts_with(
                "HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-type: application/json"
            ),
            "{head}"
        );
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(body["code"], "URI_TOO_LONG");
        for untouched in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 20\r\n\r\n",
        ] {
            assert_eq!(with_json_body(untouched), None);
        }
    }

    #[test]
    fn closed_connections_keep_their_counts() {
        let connections = Connections::new(Instant::now());
        let first = connections.open();
        first.metrics.count(axum::http::StatusCode::OK, Duration::from_micros(10));
        let second = connections.open();
        second.metrics.count(axum::http::StatusCode::NOT_FOUND, Duration::from_micros(5));
        drop(first);
        let totals = connections.totals();
        assert_eq!((totals.by_class[2], totals.by_class[4], totals.micros_total), (1, 1, 15));
    }

    #[test]
    fn only_a_connection_waiting_for_a_head_expires() {
        let connections = Connections::new(Instant::now());
        let (idle, busy) = (connections.open(), connections.open());
        assert!(busy.begin_request());
        // Margins of hundreds of milliseconds: a shared machine may pause the test for tens.
        std::thread::sleep(Duration::from_millis(400));
        connections.expire_waiting_longer_than(Duration::from_millis(100));
        assert!(idle.is_expired(), "idle for 400 ms with a 100 ms limit");
        assert!(!busy.is_expired(), "a request is being answered");
        // A head that arrives after the watchdog gave up is refused, and stays refused.
        assert!(!idle.begin_request());
        assert!(idle.is_expired());
        // The busy one waits from the end of its request, not from when it opened.
        busy.end_request(Instant::now());
        connections.expire_waiting_longer_than(Duration::from_millis(300));
        assert!(!busy.is_expired(), "open for 400 ms, but waiting only since its request ended");
    }
}
