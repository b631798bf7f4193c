//! A typed HTTP client for the services: [`ServiceClient`], used by the console and the apps.

use crate::wire::{ErrorBody, TrainEvent};
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::pin::Pin;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an error body.
    #[error("{service}: {message} ({code}, HTTP {status})")]
    Api { service: String, status: u16, code: String, message: String },
    #[error("{service}: {detail}")]
    Transport { service: String, detail: String },
    #[error("{service}: the answer could not be read: {detail}")]
    Decode { service: String, detail: String },
}

impl ClientError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<TrainEvent, ClientError>> + Send>>;

/// The largest answer read from a service: far above any the services give (a run's ROC points,
/// a model of 100,000 levels), and a bound on what a broken or hostile service (`--connect`)
/// can make the console hold; an endless JSON answer grew it to 3–19 GB in under a minute.
pub const MAX_ANSWER_BYTES: usize = 128 << 20;

/// The most of an error answer that is read: its message is quoted from the start.
const MAX_ERROR_BYTES: usize = 64 << 10;

/// At most `limit` bytes of `response`'s body, read chunk by chunk, and whether that was all.
async fn read_at_most(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            body.extend_from_slice(&chunk[..limit - body.len()]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

/// How long an event stream may go without an event (keep-alive comments do not count) before
/// the client stops waiting: far above the longest pause between a fit's iterations, and a
/// bound on how long a broken or hostile service (`--connect`) can hold a run with pings alone.
pub const EVENT_IDLE: Duration = Duration::from_secs(600);

/// One service's base URL, its name (for error messages) and the bearer token.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    name: String,
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    timeout: Duration,
    event_idle: Duration,
}

impl ServiceClient {
    /// A client of one service. An `https://` service is trusted as the system trusts it, and
    /// also by the certificates in `LOGITFLOW_CA_CERT` (a PEM file), for a private CA or a
    /// self-signed certificate.
    pub fn new(name: impl Into<String>, base: impl Into<String>, token: Option<String>) -> Self {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30));
        for certificate in extra_roots() {
            builder = builder.add_root_certificate(certificate.clone());
        }
        Self::with_http(name, base, token, builder.build().unwrap_or_default())
    }

    /// Shares one connection pool between clients.
    pub fn with_http(
        name: impl Into<String>,
        base: impl Into<String>,
        token: Option<String>,
        http: reqwest::Client,
    ) -> Self {
        let base = base.into();
        let base = if base.starts_with("http") { base } else { format!("http://{base}") };
        let base = base.trim_end_matches('/').to_string();
        ServiceClient {
            name: name.into(),
            base,
            token,
            http,
            timeout: Duration::from_secs(120),
            event_idle: EVENT_IDLE,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long [`ServiceClient::train_events`] waits for an event ([`EVENT_IDLE`] unless set).
    pub fn with_event_idle(mut self, event_idle: Duration) -> Self {
        self.event_idle = event_idle;
        self
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut builder = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            builder = builder.bearer_auth(token);
        }
        builder
    }

    fn transport(&self, e: reqwest::Error) -> ClientError {
        let detail = if e.is_connect() {
            // The innermost cause says why: refused, or a certificate not trusted.
            let mut cause: &dyn std::error::Error = &e;
            while let Some(next) = cause.source() {
                cause = next;
            }
            format!("cannot connect to {}: {cause}", self.base)
        } else if e.is_timeout() {
            "no answer in time".to_string()
        } else {
            e.to_string()
        };
        ClientError::Transport { service: self.name.clone(), detail }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = builder.timeout(self.timeout).send().await.map_err(|e| self.transport(e))?;
        self.answer(response).await
    }

    /// A successful answer's JSON, read up to [`MAX_ANSWER_BYTES`]; a refusal as its error.
    async fn answer<T: DeserializeOwned>(
        &self,
        mut response: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = response.status();
        if !status.is_success() {
            return Err(self.refusal(response, None).await);
        }
        let (bytes, whole) =
            read_at_most(&mut response, MAX_ANSWER_BYTES).await.map_err(|e| self.transport(e))?;
        if !whole {
            let detail = format!(
                "the answer is larger than {} MiB; not read further",
                MAX_ANSWER_BYTES >> 20
            );
            return Err(ClientError::Decode { service: self.name.clone(), detail });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Decode { service: self.name.clone(), detail: e.to_string() })
    }

    /// A refusal's error, from the first [`MAX_ERROR_BYTES`] of its body.
    async fn refusal(
        &self,
        mut response: reqwest::Response,
        otherwise: Option<&str>,
    ) -> ClientError {
        let status = response.status();
        // The start of a longer body still says something; a body that broke off says nothing.
        let bytes = read_at_most(&mut response, MAX_ERROR_BYTES)
            .await
            .map(|(bytes, _)| bytes)
            .unwrap_or_default();
        self.api_error(status, &bytes, otherwise)
    }

    /// A refusal as the error its `{error, code}` body says; a body that is not one is quoted
    /// (its first 200 characters) and said to be no error body, or replaced by `otherwise`.
    fn api_error(
        &self,
        status: reqwest::StatusCode,
        bytes: &[u8],
        otherwise: Option<&str>,
    ) -> ClientError {
        let parsed =
            serde_json::from_slice::<ErrorBody>(bytes).ok().filter(|b| !b.error.trim().is_empty());
        let body = parsed.unwrap_or_else(|| {
            let quoted: String = String::from_utf8_lossy(bytes).chars().take(200).collect();
            let error = match otherwise {
                Some(otherwise) => otherwise.to_string(),
                None if quoted.trim().is_empty() => {
                    format!("HTTP {} with an empty answer", status.as_u16())
                }
                None => format!(
                    "HTTP {} with an answer that is no error body: {quoted}",
                    status.as_u16()
                ),
            };
            ErrorBody { error, code: "UNKNOWN".into(), request_id: None }
        });
        ClientError::Api {
            service: self.name.clone(),
            status: status.as_u16(),
            code: body.code,
            message: body.error,
        }
    }

    /// PUTs a file as the body, streamed from disk (ingest's uploads); no overall timeout,
    /// since a large file takes as long as the network needs.
    pub async fn put_file<T: DeserializeOwned>(
        &self,
        path: &str,
        file: &std::path::Path,
    ) -> Result<T, ClientError> {
        let unreadable = |e: std::io::Error| ClientError::Transport {
            service: self.name.clone(),
            detail: format!("{}: {e}", file.display()),
        };
        let opened = tokio::fs::File::open(file).await.map_err(unreadable)?;
        let length = opened.metadata().await.map_err(unreadable)?.len();
        let builder = self
            .request(reqwest::Method::PUT, path)
            .header(reqwest::header::CONTENT_TYPE, "text/csv")
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(reqwest::Body::from(opened));
        let response = builder.send().await.map_err(|e| self.transport(e))?;
        self.answer(response).await
    }

    /// POSTs `body` as `content_type` and hands back the answer once its status says success,
    /// to be read as it streams: no overall timeout, since it lasts as long as the answer.
    pub async fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, ClientError> {
        let response = self
            .request(reqwest::Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        if !response.status().is_success() {
            return Err(self.refusal(response, None).await);
        }
        Ok(response)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.request(reqwest::Method::POST, path).json(body)).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// Follows a Server-Sent Events stream of [`TrainEvent`]s until the service ends it.
    pub async fn train_events(&self, path: &str) -> Result<EventStream, ClientError> {
        let response =
            self.request(reqwest::Method::GET, path).send().await.map_err(|e| self.transport(e))?;
        if !response.status().is_success() {
            return Err(self.refusal(response, Some("event stream refused")).await);
        }
        let (name, idle) = (self.name.clone(), self.event_idle);
        let bytes = response.bytes_stream();
        let state =
            (bytes, SseDecoder::default(), std::collections::VecDeque::<String>::new(), name);
        let stream = futures::stream::unfold(
            state,
            move |(mut bytes, mut decoder, mut ready, name)| async move {
                let waiting_since = tokio::time::Instant::now();
                loop {
                    if let Some(data) = ready.pop_front() {
                        let event = serde_json::from_str::<TrainEvent>(&data).map_err(|e| {
                            ClientError::Decode {
                                service: name.clone(),
                                detail: format!("event stream: {e}"),
                            }
                        });
                        return Some((event, (bytes, decoder, ready, name)));
                    }
                    let Ok(next) =
                        tokio::time::timeout_at(waiting_since + idle, bytes.next()).await
                    else {
                        let detail = format!(
                            "event stream: no event in {} s; stopped waiting",
                            idle.as_secs_f64()
                        );
                        return Some((
                            Err(ClientError::Transport { service: name.clone(), detail }),
                            (bytes, decoder, ready, name),
                        ));
                    };
                    let failure = match next {
                        Some(Ok(chunk)) => match decoder.push(&chunk) {
                            Ok(events) => {
                                ready.extend(events);
                                continue;
                            }
                            Err(e) => ClientError::Decode {
                                service: name.clone(),
                                detail: format!("event stream: {e}"),
                            },
                        },
                        Some(Err(e)) => ClientError::Transport {
                            service: name.clone(),
                            detail: format!("event stream broke: {e}"),
                        },
                        // An event cut off by the end of the stream is dropped, as the spec says.
                        None => return None,
                    };
                    return Some((Err(failure), (bytes, SseDecoder::default(), ready, name)));
                }
            },
        );
        Ok(Box::pin(stream))
    }
}

/// The longest line (and event) an event stream may send: a stream that never ends a line is
/// refused rather than buffered without end.
const MAX_EVENT_BYTES: usize = 16 << 20;

/// Splits a Server-Sent Events byte stream into the data of each event, as the HTML standard
/// says: lines end in LF, CRLF or CR; an event ends at a blank line; its `data:` lines are
/// joined with LF (one space after the colon dropped); comments (`:…`) and other fields are
/// skipped. Lines are decoded as UTF-8 whole, so a character split across chunks survives.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    /// Bytes after the last complete line.
    pending: Vec<u8>,
    /// The data of the event being read, once it has a `data` line.
    data: Option<String>,
}

impl SseDecoder {
    /// Takes the next chunk; returns the data of the events it completed.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, String> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(offset) =
            self.pending[start..].iter().position(|&b| b == b'\n' || b == b'\r')
        {
            let end = start + offset;
            let next = match (self.pending[end], self.pending.get(end + 1)) {
                (b'\r', Some(b'\n')) => end + 2,
                // A CR ending the chunk may be the first half of a CRLF: wait for the next byte.
                (b'\r', None) => break,
                _ => end + 1,
            };
            Self::line(&mut self.data, &self.pending[start..end], &mut events);
            start = next;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_EVENT_BYTES
            || self.data.as_ref().is_some_and(|d| d.len() > MAX_EVENT_BYTES)
        {
            return Err(format!("an event is over {MAX_EVENT_BYTES} bytes"));
        }
        Ok(events)
    }

    fn line(data: &mut Option<String>, line: &[u8], events: &mut Vec<String>) {
        if line.is_empty() {
            events.extend(data.take());
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*text, ""),
        };
        if field == "data" {
            match data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => *data = Some(value.to_string()),
            }
        }
    }
}

/// A name as one URL path segment: anything but ASCII letters, digits, `-`, `_` and `.` is
/// percent-encoded, so a model name cannot add a query or another segment to a path.
pub fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The environment variable naming extra root certificates (PEM) the clients trust.
pub const CA_CERT_ENV: &str = "LOGITFLOW_CA_CERT";

/// The certificates of `LOGITFLOW_CA_CERT`, read once; one that cannot be read is said once on
/// stderr and trusted by no one (the connection then fails naming the certificate check).
fn extra_roots() -> &'static [reqwest::Certificate] {
    static ROOTS: std::sync::OnceLock<Vec<reqwest::Certificate>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let Some(path) = std::env::var_os(CA_CERT_ENV).filter(|p| !p.is_empty()) else {
            return Vec::new();
        };
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string()))
        {
            Ok(certificates) => certificates,
            Err(e) => {
                eprintln!(
                    "{CA_CERT_ENV}={}: {e}; no extra certificate is trusted",
                    std::path::Path::new(&path).display()
                );
                Vec::new()
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{ClientError, MAX_ANSWER_BYTES, ServiceClient, SseDecoder};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A hostile service on loopback: reads a request's head, then writes `head` and, when
    /// `endless`, JSON without end in chunks (a `[` and `1,` for ever).
    async fn hostile(head: &'static str, endless: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    socket.write_all(head.as_bytes()).await?;
                    if endless {
                        let chunk = format!("{:x}\r\n[{}\r\n", 1 + 2 * 32768, "1,".repeat(32768));
                        loop {
                            socket.write_all(chunk.as_bytes()).await?;
                        }
                    }
                    Ok::<(), std::io::Error>(())
                });
            }
        });
        format!("http://{addr}")
    }

    /// An endless JSON answer is cut off at the bound with a message, not held without end.
    #[tokio::test]
    async fn an_endless_answer_is_refused_at_the_bound() {
        let url = hostile("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n", true).await;
        let client = ServiceClient::new("serve", url, None);
        let refused =
            client.get::<serde_json::Value>("/v1/info").await.expect_err("an endless answer");
        let said = refused.to_string();
        assert!(said.contains(&format!("larger than {} MiB", MAX_ANSWER_BYTES >> 20)), "{said}");
        // An endless error body: its start is quoted, the rest never read.
        let url = hostile("HTTP/1.1 500 Oops\r\ntransfer-encoding: chunked\r\n\r\n", true).await;
        let refused = ServiceClient::new("ingest", url, None)
            .get::<serde_json::Value>("/v1/logs")
            .await
            .expect_err("an error");
        assert!(
            matches!(&refused, ClientError::Api { status: 500, message, .. } if message.contains("no error body: [1,1,")),
            "{refused}"
        );
    }

    /// A refusal whose body is empty or no error body still says what happened, where it said
    /// `serve: {} (UNKNOWN)` and `ingest:  (UNKNOWN)`.
    #[tokio::test]
    async fn a_refusal_without_an_error_body_says_what_came() {
        let url = hostile("HTTP/1.1 503 Busy\r\ncontent-length: 2\r\n\r\n{}", false).await;
        let said = ServiceClient::new("serve", url, None)
            .get::<serde_json::Value>("/v1/info")
            .await
            .expect_err("503")
            .to_string();
        assert_eq!(
            said,
            "serve: HTTP 503 with an answer that is no error body: {} (UNKNOWN, HTTP 503)"
        );
        let url = hostile("HTTP/1.1 502 Bad\r\ncontent-length: 0\r\n\r\n", false).await;
        let said = ServiceClient::new("ingest", url, None)
            .get::<serde_json::Value>("/v1/info")
            .await
            .expect_err("502")
            .to_string();
        assert_eq!(said, "ingest: HTTP 502 with an empty answer (UNKNOWN, HTTP 502)");
    }

    /// An event stream that sends only keep-alive comments holds the client for its idle bound,
    /// not for ever; one that sends events between them is followed as long as it goes.
    #[tokio::test]
    async fn a_stream_of_keep_alives_alone_is_given_up_after_the_idle_bound() {
        use futures::StreamExt;
        async fn stream_of(every: &'static str) -> String {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await?;
                let _ = socket.read(&mut [0u8; 4096]).await;
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
                    .await?;
                for _ in 0..40 {
                    socket.write_all(every.as_bytes()).await?;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Ok::<(), std::io::Error>(())
            });
            format!("http://{addr}")
        }
        let idle = std::time::Duration::from_millis(400);
        let pings =
            ServiceClient::new("train", stream_of(": ping\n\n").await, None).with_event_idle(idle);
        let started = std::time::Instant::now();
        let mut events = pings.train_events("/v1/jobs/j/events").await.expect("a stream");
        let first = events.next().await.expect("an item");
        let said = first.expect_err("no event came").to_string();
        assert!(said.contains("no event in 0.4 s"), "{said}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "given up at the bound: {:?}",
            started.elapsed()
        );
        // Events 50 ms apart, for 2 s in all: five times the bound, and never given up.
        let event = "data: {\"type\":\"cancelled\"}\n\n: ping\n\n";
        let busy = ServiceClient::new("train", stream_of(event).await, None).with_event_idle(idle);
        let events: Vec<_> =
            busy.train_events("/v1/jobs/j/events").await.expect("a stream").collect().await;
        assert_eq!(events.len(), 40, "every event read: {:?}", events.iter().find(|e| e.is_err()));
        assert!(events.iter().all(Result::is_ok));
    }

    /// A stream with CRLF and bare-CR line ends, a comment, a field that is not data, a
    /// two-line event, characters of two to four bytes, and an event cut off by the end.
    const STREAM: &[u8] =
        "data: {\"a\":\"é\"}\r\n\r\n: keep-alive\n\nevent: x\ndata:one\ndata:  two ✓\n\ndata: 🦀\r\rdata: cut off".as_bytes();

    fn expected() -> Vec<String> {
        vec!["{\"a\":\"é\"}".to_string(), "one\n two ✓".to_string(), "🦀".to_string()]
    }

    #[test]
    fn events_are_the_same_however_the_stream_is_cut_into_chunks() {
        let mut whole = SseDecoder::default();
        assert_eq!(whole.push(STREAM).expect("decodes"), expected());
        // Every place for one cut, and a byte at a time: UTF-8 and CRLF split across chunks.
        for cut in 0..=STREAM.len() {
            let mut d = SseDecoder::default();
            let mut events = d.push(&STREAM[..cut]).expect("first part");
            events.extend(d.push(&STREAM[cut..]).expect("second part"));
            assert_eq!(events, expected(), "cut at byte {cut}");
        }
        let mut d = SseDecoder::default();
        let events: Vec<String> =
            STREAM.iter().flat_map(|b| d.push(std::slice::from_ref(b)).expect("a byte")).collect();
        assert_eq!(events, expected(), "a byte at a time");
    }

    #[test]
    fn a_stream_that_never_ends_a_line_is_refused() {
        let mut d = SseDecoder::default();
        let chunk = vec![b'x'; 1 << 20];
        let result = (0..20).try_for_each(|_| d.push(&chunk).map(drop));
        assert!(result.is_err_and(|e| e.contains("over")));
    }
}
