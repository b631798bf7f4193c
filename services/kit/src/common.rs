//! What every route of a service shares: its [`Readiness`], its [`ServiceInfo`], and the
//! [`Common`] state the common routes and the guard read (limits, timeouts, the token, the
//! connections). Its own module so that the server and the guard both read it, neither
//! through the other.

use crate::config::Config;
use crate::connection::Connections;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// What the common routes and the [`Guard`] share; one per service, behind an `Arc`.
pub(crate) struct Common {
    pub(crate) info: ServiceInfo,
    pub(crate) readiness: Readiness,
    pub(crate) connections: Arc<Connections>,
    pub(crate) token: Option<Box<str>>,
    pub(crate) body_limit: usize,
    pub(crate) large_body_routes: Vec<(&'static str, u64)>,
    pub(crate) request_timeout: Duration,
    pub(crate) body_timeout: Duration,
    /// The service's own series, appended to `/metrics`.
    pub(crate) extra_metrics: Box<dyn Fn(&mut String) + Send + Sync>,
}

impl Common {
    #[cfg(test)]
    pub(crate) fn new(name: &'static str, readiness: Readiness, config: &Config) -> Arc<Self> {
        Self::with_metrics(name, readiness, config, Box::new(|_| {}))
    }

    pub(crate) fn with_metrics(
        name: &'static str,
        readiness: Readiness,
        config: &Config,
        extra_metrics: Box<dyn Fn(&mut String) + Send + Sync>,
    ) -> Arc<Self> {
        let started = Instant::now();
        Arc::new(Common {
            info: ServiceInfo { name, started },
            readiness,
            connections: Arc::new(Connections::new(started)),
            token: config.token.as_deref().map(Box::from),
            body_limit: config.body_limit,
            large_body_routes: config.large_body_routes.clone(),
            request_timeout: config.request_timeout,
            body_timeout: config.body_timeout,
            extra_metrics,
        })
    }
}

impl Common {
    /// The largest body a request to `path` may carry.
    pub(crate) fn body_limit_for(&self, path: &str) -> u64 {
        self.large_body_routes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .map_or(self.body_limit as u64, |(_, limit)| *limit)
    }
}
