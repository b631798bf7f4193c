//! [`Services`]: the services a console drives — its own children ([`Supervisor`]) or
//! services someone else started, attached by URL ([`Remote`]) — behind the one handle the
//! dashboard and the pipeline driver use.

use crate::clients::Clients;
use crate::connect::Remote;
use crate::supervisor::{LogLine, NotReady, ServiceName, ServiceSnapshot, Status, Supervisor};
use logitflow_kit::client::ServiceClient;
use std::time::Duration;

/// Why a service cannot be restarted, stopped or started from here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("{0} runs elsewhere: restart or stop it where it runs (kubectl rollout restart, say)")]
    Elsewhere(ServiceName),
}

#[derive(Clone)]
pub enum Services {
    /// Children this console started and supervises.
    Children(Supervisor),
    /// Services started elsewhere, named in a connection file (`--connect`).
    Remote(Remote),
}

impl Services {
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        match self {
            Services::Children(s) => s.subscribe(),
            Services::Remote(r) => r.subscribe(),
        }
    }

    pub fn snapshots(&self) -> Vec<ServiceSnapshot> {
        match self {
            Services::Children(s) => s.snapshots(),
            Services::Remote(r) => r.snapshots(),
        }
    }

    pub fn logs(&self, name: ServiceName, n: usize) -> Vec<LogLine> {
        match self {
            Services::Children(s) => s.logs(name, n),
            Services::Remote(r) => r.logs(name, n),
        }
    }

    pub fn client(&self, name: ServiceName) -> Option<ServiceClient> {
        match self {
            Services::Children(s) => s.client(name),
            Services::Remote(r) => r.client(name),
        }
    }

    /// Clients for a pipeline run; `None` while a service has no address.
    pub fn clients(&self) -> Option<Clients> {
        Some(Clients {
            ingest: self.client(ServiceName::Ingest)?,
            preprocess: self.client(ServiceName::Preprocess)?,
            features: self.client(ServiceName::Features)?,
            train: self.client(ServiceName::Train)?,
            evaluate: self.client(ServiceName::Evaluate)?,
            serve: self.client(ServiceName::Serve)?,
            // Services elsewhere cannot read this machine's files: the data goes with the request.
            upload_data: matches!(self, Services::Remote(_)),
        })
    }

    /// Restarts, stops or starts a child; services elsewhere are restarted where they run
    /// (their platform's job), so this says so instead.
    pub fn control(&self, name: ServiceName, action: Control) -> Result<(), ControlError> {
        match (self, action) {
            (Services::Children(s), Control::Restart) => s.restart(name),
            (Services::Children(s), Control::Stop) => s.stop_service(name),
            (Services::Children(s), Control::Start) => s.start_service(name),
            (Services::Remote(_), _) => return Err(ControlError::Elsewhere(name)),
        }
        Ok(())
    }

    /// The pids to sample for CPU and memory: only children have pids of this machine.
    pub fn local_pids(&self) -> Vec<u32> {
        match self {
            Services::Children(s) => s.snapshots().iter().filter_map(|s| s.pid).collect(),
            Services::Remote(_) => Vec::new(),
        }
    }

    /// Waits until every service that matters is ready.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), NotReady> {
        match self {
            Services::Children(s) => s.wait_ready(timeout).await,
            Services::Remote(r) => {
                let deadline = tokio::time::Instant::now() + timeout;
                let mut changed = r.subscribe();
                loop {
                    let snapshots = r.snapshots();
                    let waiting: Vec<String> = snapshots
                        .iter()
                        .filter(|s| s.status != Status::Ready && s.status != Status::Stopped)
                        .map(|s| {
                            format!(
                                "{} ({})",
                                s.name,
                                s.last_error.as_deref().unwrap_or(s.status.as_str())
                            )
                        })
                        .collect();
                    if waiting.is_empty() {
                        return Ok(());
                    }
                    if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                        return Err(NotReady::TimedOut { after: timeout, waiting });
                    }
                }
            }
        }
    }

    /// Stops the children; from services elsewhere, only detaches.
    pub async fn shutdown(&self) {
        match self {
            Services::Children(s) => s.shutdown().await,
            Services::Remote(r) => r.detach(),
        }
    }
}

/// What a person can do to a service from the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Restart,
    Stop,
    Start,
}

impl Clients {
    /// Clients for the supervisor's current addresses; `None` if a service has none yet.
    pub fn from_supervisor(sup: &Supervisor) -> Option<Clients> {
        Services::Children(sup.clone()).clients()
    }
}
