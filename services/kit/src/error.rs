use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use logitflow_core::registry::RegistryError;
use logitflow_core::store::StoreError;
use serde::Serialize;

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        }
        error_response(self.status(), self.code(), self.to_string())
    }
}

/// Every error answer, whoever makes it: `{"error": message, "code": code}` with `status`.
pub(crate) fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    (status, axum::Json(crate::wire::ErrorBody { error: message, code: code.to_string() })).into_response()
}

/// Whether the body timeout is somewhere in the error's chain of causes.
fn caused_by_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<crate::server::BodyTimedOut>() {
            return true;
        }
        cause = e.source();
    }
    false
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        let timed_out = caused_by_timeout(&rejection);
        match rejection {
            JsonRejection::JsonDataError(_) => ApiError::invalid("INVALID_FIELDS", message),
            JsonRejection::JsonSyntaxError(_) => ApiError::BadRequest(message),
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType("expected a JSON body with `Content-Type: application/json`".into())
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge(format!("the request body is over the limit: {message}"))
            }
            _ if timed_out => ApiError::Timeout("the request body did not arrive in time and was cut off".into()),
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
            StoreError::Io { .. } => ApiError::Storage(e.to_string()),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Store(store) => store.into(),
            RegistryError::UnknownModel(_) | RegistryError::UnknownVersion { .. } => ApiError::NotFound(e.to_string()),
            RegistryError::BadName(_) => ApiError::invalid("BAD_MODEL_NAME", e),
            RegistryError::NothingToRollBack { .. } => ApiError::Conflict(e.to_string()),
            RegistryError::Corrupt(_) => ApiError::Storage(e.to_string()),
        }
    }
}

impl From<logitflow_core::table::DataError> for ApiError {
    fn from(e: logitflow_core::table::DataError) -> Self {
        ApiError::invalid("DATA_ERROR", e)
    }
}

impl From<logitflow_core::logistic::ParamError> for ApiError {
    fn from(e: logitflow_core::logistic::ParamError) -> Self {
        ApiError::invalid("INVALID_PARAMS", e)
    }
}

/// axum's `Json`, with its rejections answered as [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Runs blocking work (disk, CPU) off the async workers, turning a panic into a 500.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::Internal(format!("a worker failed: {e}")))?
}

impl From<crate::client::ClientError> for ApiError {
    /// Another service's answer, passed on: its 404 and other 4xx as ours, anything else
    /// (unreachable, 5xx, unreadable) as "not ready".
    fn from(e: crate::client::ClientError) -> Self {
        use crate::client::ClientError;
        match e {
            ClientError::Api { status: 404, message, .. } => ApiError::NotFound(message),
            ClientError::Api { status, message, .. } if (400..500).contains(&status) => ApiError::invalid("INVALID_INPUT", message),
            other => ApiError::NotReady(format!("a service it needs did not answer: {other}")),
        }
    }
}
