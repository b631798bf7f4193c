//! The service runtime every logitflow service uses, and the console's view of the services.
//!
//! - [`ServiceArgs`] / [`Config`]: where to listen, the home directory, the token (from the
//!   environment only, never argv), allowed file roots, limits.
//! - [`ApiError`]: every error answered as `{"error", "code"}` with a fitting status.
//! - [`Json`]: axum's JSON extractor with rejections turned into [`ApiError`]s.
//! - [`Readiness`]: what `GET /v2/health/ready` answers.
//! - [`serve`]: adds the common routes (health, metrics, info), auth, body limit, timeouts and
//!   tracing to a service's router, prints the listening line, shuts down gracefully. Inside:
//!   `guard::Guard`, the one middleware every request passes, and `connection::Connection`,
//!   each connection's counters and header watchdog state.
//! - [`cached_step`]: a pipeline step run through the store's step cache.
//! - [`wire`]: the request and response types of every service; [`tensor`]: the typed
//!   tensors of its inference requests, however they arrive.
//! - [`client::ServiceClient`]: a typed HTTP client for the console and the apps.

pub mod client;
mod common;
mod config;
mod connection;
mod error;
mod guard;
mod server;
mod step;
pub mod tensor;
pub mod testing;
pub mod wire;

pub use config::{Config, ServiceArgs, ServiceCli, check_exposure, default_home, token_from_env};
pub use error::{ApiError, Json, blocking, parse_json};
pub use guard::same_token;
pub use server::{
    Readiness, ServiceInfo, announce_listening, cpu_seconds, init_tracing, proc_status_bytes,
    serve, serve_with_metrics, shutdown_signal, start, use_aws_lc_crypto,
};
pub use step::{StepSummary, cached_step};

/// The environment variable that carries the bearer token to a service.
pub const TOKEN_ENV: &str = "LOGITFLOW_TOKEN";
/// Where a service listens unless told otherwise: loopback only, on a free port. Both ways to
/// start one (its own binary and `logitflow service`) take it.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";
/// The environment variable that names the store (`--store`): `file:///path` or
/// `s3://bucket/prefix`.
pub const STORE_ENV: &str = "LOGITFLOW_STORE";
/// The environment variable that tells advisor and batch where serve is.
pub const SERVE_URL_ENV: &str = "LOGITFLOW_SERVE_URL";
/// Directories that file sources may be read from, separated by ':'.
pub const ALLOWED_ROOTS_ENV: &str = "LOGITFLOW_ALLOWED_ROOTS";
