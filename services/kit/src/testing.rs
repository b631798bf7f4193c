//! Helpers for the services' route tests: send one request through a router with
//! `tower::ServiceExt::oneshot` and read the status and JSON body.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Sends `method path` with an optional JSON body; returns the status and the body as JSON
/// (`Null` when it is not JSON).
pub async fn call(app: &Router, method: &str, path: &str, body: Option<serde_json::Value>) -> (StatusCode, serde_json::Value) {
    let (status, bytes) =
        call_raw(app, method, path, "application/json", body.map(|b| b.to_string().into_bytes()).unwrap_or_default()).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// Sends raw bytes with a content type; returns the status and the body's bytes.
pub async fn call_raw(app: &Router, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let request = Request::builder().method(method).uri(path).header("content-type", content_type).body(Body::from(body));
    let Ok(request) = request else { return (StatusCode::IM_A_TEAPOT, b"bad test request".to_vec()) };
    let Ok(response) = app.clone().oneshot(request).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    (status, bytes)
}
