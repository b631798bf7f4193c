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

/// One service's base URL, its name (for error messages) and the bearer token.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    name: String,
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    timeout: Duration,
}

impl ServiceClient {
    pub fn new(name: impl Into<String>, base: impl Into<String>, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self::with_http(name, base, token, http)
    }

    /// Shares one connection pool between clients.
    pub fn with_http(name: impl Into<String>, base: impl Into<String>, token: Option<String>, http: reqwest::Client) -> Self {
        let base = base.into();
        let base = if base.starts_with("http") { base } else { format!("http://{base}") };
        ServiceClient { name: name.into(), base: base.trim_end_matches('/').to_string(), token, http, timeout: Duration::from_secs(120) }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
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
            format!("cannot connect to {}", self.base)
        } else if e.is_timeout() {
            "no answer in time".to_string()
        } else {
            e.to_string()
        };
        ClientError::Transport { service: self.name.clone(), detail }
    }

    async fn send<T: DeserializeOwned>(&self, builder: reqwest::RequestBuilder) -> Result<T, ClientError> {
        let response = builder.timeout(self.timeout).send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
                error: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                code: "UNKNOWN".into(),
            });
            return Err(ClientError::Api { service: self.name.clone(), status: status.as_u16(), code: body.code, message: body.error });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { service: self.name.clone(), detail: e.to_string() })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.send(self.request(reqwest::Method::POST, path).json(body)).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// Follows a Server-Sent Events stream of [`TrainEvent`]s until the service ends it.
    pub async fn train_events(&self, path: &str) -> Result<EventStream, ClientError> {
        let response = self.request(reqwest::Method::GET, path).send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.unwrap_or_default();
            let body: ErrorBody = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| ErrorBody { error: "event stream refused".into(), code: "UNKNOWN".into() });
            return Err(ClientError::Api { service: self.name.clone(), status: status.as_u16(), code: body.code, message: body.error });
        }
        let name = self.name.clone();
        let bytes = response.bytes_stream();
        let stream = futures::stream::unfold((bytes, String::new(), name), |(mut bytes, mut buffer, name)| async move {
            loop {
                if let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let data: Vec<&str> = block.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
                    if data.is_empty() {
                        continue; // a comment or keep-alive
                    }
                    let event = serde_json::from_str::<TrainEvent>(&data.join("\n"))
                        .map_err(|e| ClientError::Decode { service: name.clone(), detail: format!("event stream: {e}") });
                    return Some((event, (bytes, buffer, name)));
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => buffer.push_str(&String::from_utf8_lossy(&chunk).replace('\r', "")),
                    Some(Err(e)) => {
                        let error = ClientError::Transport { service: name.clone(), detail: format!("event stream broke: {e}") };
                        return Some((Err(error), (bytes, String::new(), name)));
                    }
                    None => return None,
                }
            }
        });
        Ok(Box::pin(stream))
    }
}

/// A name as one URL path segment: anything but ASCII letters, digits, `-`, `_` and `.` is
/// percent-encoded, so a model name cannot add a query or another segment to a path.
pub fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.".contains(&b) { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}
