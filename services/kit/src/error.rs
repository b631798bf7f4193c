use crate::wire::ErrorBody;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use logitflow_store::StoreError;
use logitflow_store::registry::RegistryError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every error a service answers, as `{"error": "<message>", "code": "<SNAKE_CASE>"}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Valid JSON that cannot be used; `code` says which kind of problem.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    NotReady(String),
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Storage(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "MALFORMED_REQUEST",
            ApiError::Unauthorized => "UNAUTHORIZED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            ApiError::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::Timeout(_) => "TIMEOUT",
            ApiError::NotReady(_) => "NOT_READY",
            ApiError::Storage(_) => "STORAGE_ERROR",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    pub fn invalid(code: &'static str, message: impl std::fmt::Display) -> Self {
        ApiError::Unprocessable { code, message: message.to_string() }
    }
}

impl ApiError {
    /// What a client is told of this error, logged when it is the service's own fault. An
    /// internal error's words (a state, a path, a library's message) are the service's inside:
    /// they go to the log under a new request id, and the client gets the code, a safe message
    /// and that id. A storage error keeps its words, which name what to fix (a full disk, a
    /// bucket refusing), for the operator who reads them.
    pub fn public(&self) -> ErrorBody {
        let code = self.code().to_string();
        match self {
            ApiError::Internal(detail) => {
                let id = request_id();
                tracing::error!(request_id = %id, code, error = %detail, "request failed");
                ErrorBody {
                    error: format!(
                        "an internal error; its detail is in the service's log under request id {id}"
                    ),
                    code,
                    request_id: Some(id),
                }
            }
            other => {
                if other.status().is_server_error() {
                    tracing::error!(code, error = %other, "request failed");
                }
                ErrorBody { error: other.to_string(), code, request_id: None }
            }
        }
    }
}

/// A request id unique to this process's errors and, by its start time, across restarts.
fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let started = *STARTED.get_or_init(|| {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        since.map_or(0, |d| d.as_millis() as u64)
    });
    format!("{started:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.public())).into_response()
    }
}

/// Every error answer, whoever makes it: `{"error": message, "code": code}` with `status`.
pub(crate) fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody { error: message, code: code.to_string(), request_id: None };
    (status, axum::Json(body)).into_response()
}

/// The error a request body fails with when no byte arrives for the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("no part of the request body arrived for {0:?}")]
pub(crate) struct BodyTimedOut(pub(crate) std::time::Duration);

/// Whether the body timeout is somewhere in the error's chain of causes.
/// Whether an `E` is anywhere in `error`'s chain of sources.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<E>() {
            return true;
        }
        cause = e.source();
    }
    false
}

fn caused_by_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    caused_by::<BodyTimedOut>(error)
}

impl ApiError {
    /// The error of a request body that failed while it streamed in: cut off for trickling,
    /// over the size limit, or broken.
    pub fn from_body_error(e: axum::Error) -> ApiError {
        if caused_by_timeout(&e) {
            ApiError::Timeout("the request body did not arrive in time and was cut off".into())
        } else if caused_by::<http_body_util::LengthLimitError>(&e) {
            ApiError::PayloadTooLarge(format!("the request body is over the limit: {e}"))
        } else {
            ApiError::BadRequest(format!("the request body could not be read: {e}"))
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        let timed_out = caused_by_timeout(&rejection);
        match rejection {
            JsonRejection::JsonDataError(_) => ApiError::invalid("INVALID_FIELDS", message),
            JsonRejection::JsonSyntaxError(_) => ApiError::BadRequest(message),
            JsonRejection::MissingJsonContentType(_) => not_json(),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge(format!("the request body is over the limit: {message}"))
            }
            _ if timed_out => {
                ApiError::Timeout("the request body did not arrive in time and was cut off".into())
            }
            _ => ApiError::BadRequest(message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            StoreError::BadId(_) => ApiError::invalid("BAD_ARTIFACT_ID", e),
            StoreError::WrongKind { .. } => ApiError::invalid("WRONG_ARTIFACT_KIND", e),
            StoreError::Corrupt { .. } => ApiError::invalid("CORRUPT_ARTIFACT", e),
            StoreError::Io { .. } | StoreError::Remote { .. } => ApiError::Storage(e.to_string()),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Store(store) => store.into(),
            RegistryError::UnknownModel(_) | RegistryError::UnknownVersion { .. } => {
                ApiError::NotFound(e.to_string())
            }
            RegistryError::BadName(_) => ApiError::invalid("BAD_MODEL_NAME", e),
            RegistryError::NothingToRollBack { .. } => ApiError::Conflict(e.to_string()),
            RegistryError::Corrupt(_) => ApiError::Storage(e.to_string()),
        }
    }
}

impl From<logitflow_core::table::DataError> for ApiError {
    fn from(e: logitflow_core::table::DataError) -> Self {
        let message = e.to_string();
        ApiError::of_data_error(&e, message)
    }
}

impl ApiError {
    /// The error of a table read from `source` (a file, a collection), which the message names.
    pub fn reading(source: impl std::fmt::Display, e: logitflow_core::table::DataError) -> Self {
        let message = format!("{source}: {e}");
        ApiError::of_data_error(&e, message)
    }

    /// The data's fault (422 `DATA_ERROR`), unless storing what was read failed: the store's.
    fn of_data_error(e: &logitflow_core::table::DataError, message: String) -> Self {
        match e {
            logitflow_core::table::DataError::Storing(_) => ApiError::Storage(message),
            _ => ApiError::invalid("DATA_ERROR", message),
        }
    }
}

impl From<logitflow_core::logistic::ParamError> for ApiError {
    fn from(e: logitflow_core::logistic::ParamError) -> Self {
        ApiError::invalid("INVALID_PARAMS", e)
    }
}

fn not_json() -> ApiError {
    ApiError::UnsupportedMediaType(
        "expected a JSON body with `Content-Type: application/json`".into(),
    )
}

/// axum's `Json`, with its rejections answered as [`ApiError`]s, and a faster way in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    /// The body is parsed with plain serde_json. Only a body that fails is parsed again as
    /// axum's `Json` parses it, through serde_path_to_error, for an error that names the field
    /// (`inputs[0].shape: invalid type …`): tracking the path on every parse, as axum does,
    /// copies every key into a `String` and cost serve ≈ 3% of its throughput.
    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(request.headers()) {
            return Err(not_json());
        }
        let bytes = bytes::Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::from(JsonRejection::from(e)))?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON request body as the [`Json`] extractor does (an object; a failure names the
/// field's path), for routes that read their body themselves.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body is an object. serde's derived structs also take an array of their
    // fields in order, so `[]` passed as a promote body meant "the candidate". (Scalars are
    // refused by the structs themselves.) An array that is not even JSON stays a 400.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes);
        let malformed =
            json.as_ref().is_err_and(|e| !e.to_string().starts_with("recursion limit exceeded"));
        if !malformed {
            return Err(ApiError::invalid(
                "INVALID_FIELDS",
                "the body must be a JSON object, got an array",
            ));
        }
    }
    serde_json::from_slice(bytes).map_err(|plain| match axum::Json::<T>::from_bytes(bytes) {
        Err(rejection) => rejection.into(),
        // The two parsers agree on what they accept; this is for completeness only.
        Ok(_) => ApiError::BadRequest(plain.to_string()),
    })
}

/// `application/json` or `application/*+json`, with any parameters: what axum's `Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let mime = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok());
    mime.is_some_and(|m| {
        m.type_() == mime::APPLICATION
            && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
    })
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Runs blocking work (disk, CPU) off the async workers, turning a panic into a 500.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("a worker failed: {e}")))?
}

impl From<crate::client::ClientError> for ApiError {
    /// Another service's answer, passed on: its 404 and other 4xx as ours, anything else
    /// (unreachable, 5xx, unreadable) as "not ready".
    fn from(e: crate::client::ClientError) -> Self {
        use crate::client::ClientError;
        match e {
            ClientError::Api { status: 404, message, .. } => ApiError::NotFound(message),
            // A level serve does not know is the caller's to fix, and worth its own code.
            ClientError::Api { status: 422, code, message, .. } if code == "UNKNOWN_LEVEL" => {
                ApiError::invalid("UNKNOWN_LEVEL", message)
            }
            ClientError::Api { status, message, .. } if (400..500).contains(&status) => {
                ApiError::invalid("INVALID_INPUT", message)
            }
            other => ApiError::NotReady(format!("a service it needs did not answer: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_internal_error_is_logged_under_a_request_id_the_client_gets_instead_of_it() {
        let secret = "state of /home/me/.logitflow/ingest.sqlite poisoned";
        let response = ApiError::Internal(secret.into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
        let body: ErrorBody = serde_json::from_slice(&bytes).expect("an error body");
        let id = body.request_id.clone().expect("a request id");
        assert_eq!(body.code, "INTERNAL");
        assert!(!body.error.contains("home") && body.error.contains(&id), "{body:?}");
        // Another error gets another id; a client's own error keeps its words and has none.
        let again = ApiError::Internal(secret.into()).public();
        assert_ne!(again.request_id, Some(id));
        let client = ApiError::invalid("INVALID_INPUT", "row 3: score is missing").public();
        assert_eq!((client.error.as_str(), client.request_id), ("row 3: score is missing", None));
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        count: u32,
    }

    async fn extract(content_type: &str, body: &str) -> Result<Json<Order>, ApiError> {
        let request = axum::http::Request::post("/")
            .header("content-type", content_type)
            .body(axum::body::Body::from(body.to_string()));
        Json::<Order>::from_request(request.expect("request"), &()).await
    }

    #[tokio::test]
    async fn json_content_types_are_those_axum_accepts() {
        for accepted in
            ["application/json", "application/json; charset=utf-8", "application/cloudevents+json"]
        {
            assert!(extract(accepted, r#"{"items": []}"#).await.is_ok(), "{accepted}");
        }
        for refused in ["text/json", "application/xml", "json"] {
            let e = extract(refused, r#"{"items": []}"#).await.expect_err(refused);
            assert_eq!(e.code(), "UNSUPPORTED_MEDIA_TYPE");
        }
    }

    #[tokio::test]
    async fn a_body_that_is_not_an_object_is_refused_even_where_fields_have_defaults() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct AllOptional {
            #[serde(default)]
            version: Option<u32>,
        }
        let take = |body: &'static str| async move {
            let request = axum::http::Request::post("/")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body));
            Json::<AllOptional>::from_request(request.expect("request"), &()).await
        };
        assert!(take(" {}").await.is_ok());
        for body in ["[]", "[1]", "[[[[[[[[1]]]]]]]]"] {
            let e = take(body).await.expect_err(body);
            assert_eq!((e.code(), e.status().as_u16()), ("INVALID_FIELDS", 422), "{body}: {e}");
            assert!(e.to_string().contains("must be a JSON object"), "{e}");
        }
    }

    #[tokio::test]
    async fn a_bad_field_is_named_by_its_path() {
        let Json(order) =
            extract("application/json", r#"{"items": [{"count": 2}]}"#).await.expect("valid");
        assert_eq!(order.items[0].count, 2);
        let e = extract("application/json", r#"{"items": [{"count": 2}, {"count": "three"}]}"#)
            .await
            .expect_err("a string count");
        assert_eq!(e.code(), "INVALID_FIELDS");
        assert!(e.to_string().contains("items[1].count"), "{e}");
        let e = extract("application/json", r#"{"items": [] } trailing"#)
            .await
            .expect_err("trailing characters");
        assert_eq!(e.code(), "MALFORMED_REQUEST");
    }
}
