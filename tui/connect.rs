//! `--connect FILE`: services that someone else started, named by URL in a TOML file —
//! [`Connection`] — instead of children the console starts.
//!
//! ```toml
//! [services]
//! ingest = "http://10.0.0.2:8080"
//! preprocess = "http://10.0.0.3:8080"
//! # … and features, train, evaluate, serve (advisor and batch when the dashboard uses them)
//! ```
//!
//! The token is `LOGITFLOW_TOKEN`, as for the services themselves. [`Remote`] watches the
//! services so named; the pipeline driver talks to services by URL either way, through
//! [`crate::services::Services`], with the data sent to ingest in the request (it may run on
//! another machine) rather than named by path.

use crate::clients::Clients;
use crate::supervisor::{LogLine, ServiceName, ServiceSnapshot, Status};
use anyhow::{Context, bail};
use logitflow_kit::client::ServiceClient;
use std::collections::BTreeMap;
use std::path::Path;

/// The services named in a connection file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Service name → its base URL.
    services: BTreeMap<String, String>,
}

/// A connection file is a few lines; anything larger is not one.
const MAX_CONNECTION_BYTES: u64 = 64 << 10;

impl Connection {
    /// Reads and checks a connection file: every name one of the eight services, every URL
    /// an http(s) URL.
    pub fn load(path: &Path) -> anyhow::Result<Connection> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("the connection file {} cannot be read", path.display()))?
            .len();
        if size > MAX_CONNECTION_BYTES {
            bail!("{} is {size} bytes: not a connection file", path.display());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("the connection file {} cannot be read", path.display()))?;
        Connection::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Connection> {
        let connection: Connection =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        for (name, url) in &connection.services {
            if !ServiceName::ALL.iter().any(|s| s.as_str() == name) {
                let known: Vec<&str> = ServiceName::ALL.iter().map(|s| s.as_str()).collect();
                bail!("[services] {name}: not a service (they are {})", known.join(", "));
            }
            let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(|rest| rest.is_empty() || rest.contains(char::is_whitespace)) {
                bail!("[services] {name} = {url:?}: not an http:// or https:// URL");
            }
        }
        Ok(connection)
    }

    /// The URL of a service, without a trailing `/`.
    pub fn url(&self, name: ServiceName) -> Option<&str> {
        self.services.get(name.as_str()).map(|u| u.trim_end_matches('/'))
    }
}

/// Asks every service of `clients` for its `/v1/info`, which needs the token: a service that
/// cannot be reached or refuses the token is named before any data is sent.
pub async fn check_reachable(clients: &Clients) -> anyhow::Result<()> {
    let all = [
        &clients.ingest,
        &clients.preprocess,
        &clients.features,
        &clients.train,
        &clients.evaluate,
        &clients.serve,
    ];
    let answers = futures::future::join_all(
        all.iter().map(|client| client.get::<serde_json::Value>("/v1/info")),
    )
    .await;
    for (client, answer) in all.iter().zip(answers) {
        answer.with_context(|| format!("the service at {} cannot be used", client.base()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_file_names_services_by_url_and_mistakes_are_named() {
        let connection = Connection::parse(
            "[services]\ningest = \"http://10.0.0.2:8080/\"\nserve = \"https://serve.example\"\n",
        )
        .expect("valid");
        assert_eq!(connection.url(ServiceName::Ingest), Some("http://10.0.0.2:8080"));
        assert_eq!(connection.url(ServiceName::Train), None);
        for (text, says) in [
            ("[services]\ningets = \"http://x\"\n", "ingets: not a service"),
            ("[services]\ningest = \"10.0.0.2:8080\"\n", "not an http:// or https:// URL"),
            ("[service]\ningest = \"http://x\"\n", "unknown field"),
            ("[services]\ningest = 8080\n", "invalid type"),
            ("[services\n", "unclosed table"),
        ] {
            let error = format!("{:#}", Connection::parse(text).expect_err(text));
            assert!(error.contains(says), "{text:?}: {error}");
        }
    }
}

/// Services attached by URL, watched as the supervisor watches its children: once a second
/// each is asked `GET /v2/health/ready` (status) and `GET /v1/info` (uptime, memory), and
/// every other second `GET /v1/logs` (its recent log lines). Nothing is started or stopped.
#[derive(Debug, Clone)]
pub struct Remote {
    inner: std::sync::Arc<RemoteInner>,
}

#[derive(Debug)]
struct RemoteInner {
    /// One client per service named, made once: making one loads the TLS roots.
    clients: BTreeMap<ServiceName, ServiceClient>,
    state: std::sync::Mutex<BTreeMap<ServiceName, (ServiceSnapshot, Vec<LogLine>)>>,
    changed: tokio::sync::watch::Sender<u64>,
    poller: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// How often the attached services are asked how they are.
const POLL: std::time::Duration = std::time::Duration::from_secs(1);
/// Log lines fetched from each service.
const REMOTE_LOG_LINES: usize = 200;

impl Remote {
    /// Attaches to the services a connection file names and starts watching them.
    pub fn attach(connection: Connection, token: Option<String>) -> Remote {
        let state = ServiceName::ALL
            .iter()
            .map(|&name| {
                let named = connection.url(name).is_some();
                let mut snapshot = ServiceSnapshot::unseen(name);
                snapshot.addr = connection.url(name).and_then(socket_addr_of);
                if !named {
                    snapshot.status = Status::Stopped;
                    snapshot.last_error = Some("not named in the connection file".to_string());
                }
                (name, (snapshot, Vec::new()))
            })
            .collect();
        let (changed, _) = tokio::sync::watch::channel(0);
        let clients = ServiceName::ALL
            .into_iter()
            .filter_map(|name| {
                Some((
                    name,
                    ServiceClient::new(name.as_str(), connection.url(name)?, token.clone()),
                ))
            })
            .collect();
        let remote = Remote {
            inner: std::sync::Arc::new(RemoteInner {
                clients,
                state: std::sync::Mutex::new(state),
                changed,
                poller: std::sync::Mutex::new(None),
            }),
        };
        let watcher = remote.clone();
        let poller = tokio::spawn(async move { watcher.poll().await });
        if let Ok(mut slot) = remote.inner.poller.lock() {
            *slot = Some(poller);
        }
        remote
    }

    async fn poll(&self) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for round in 0u64.. {
            tick.tick().await;
            let named: Vec<ServiceName> = self.inner.clients.keys().copied().collect();
            let asked =
                futures::future::join_all(named.iter().map(|&name| self.ask(name, round % 2 == 0)))
                    .await;
            if let Ok(mut state) = self.inner.state.lock() {
                for (name, (snapshot, logs)) in named.into_iter().zip(asked) {
                    if let Some(entry) = state.get_mut(&name) {
                        entry.0 = snapshot;
                        if let Some(logs) = logs {
                            entry.1 = logs;
                        }
                    }
                }
            }
            self.inner.changed.send_modify(|n| *n += 1);
        }
    }

    /// One service's state now, and its log lines when `with_logs`.
    async fn ask(
        &self,
        name: ServiceName,
        with_logs: bool,
    ) -> (ServiceSnapshot, Option<Vec<LogLine>>) {
        let before = self.snapshot(name);
        let mut snapshot = before.clone().unwrap_or_else(|| ServiceSnapshot::unseen(name));
        let Some(client) = self.client(name) else { return (snapshot, None) };
        let client = client.with_timeout(std::time::Duration::from_secs(2));
        let asked = std::time::Instant::now();
        let ready = client.get::<serde_json::Value>("/v2/health/ready").await;
        snapshot.last_probe = Some(asked.elapsed());
        match ready {
            Ok(_) => {
                snapshot.status = Status::Ready;
                snapshot.last_error = None;
            }
            Err(e) => {
                snapshot.status = Status::Unhealthy;
                snapshot.last_error = Some(e.to_string());
            }
        }
        if let Ok(info) = client.get::<serde_json::Value>("/v1/info").await {
            let uptime =
                info["uptime_s"].as_f64().filter(|s| s.is_finite() && *s >= 0.0).unwrap_or(0.0);
            let started =
                std::time::Instant::now().checked_sub(std::time::Duration::from_secs_f64(uptime));
            // A service that started again since the last look was restarted where it runs.
            if let (Some(was), Some(now)) = (before.as_ref().and_then(|b| b.started), started)
                && now > was + std::time::Duration::from_secs(2)
            {
                snapshot.restarts += 1;
            }
            snapshot.started = started;
            snapshot.reported_memory = info["resident_bytes"].as_u64();
        }
        let logs = if with_logs {
            client
                .get::<serde_json::Value>(&format!("/v1/logs?lines={REMOTE_LOG_LINES}"))
                .await
                .ok()
                .map(|answer| {
                    answer["lines"]
                        .as_array()
                        .map(|lines| {
                            lines
                                .iter()
                                .filter_map(|l| l.as_str())
                                .map(|text| LogLine { stream: "log", text: text.to_string() })
                                .collect()
                        })
                        .unwrap_or_default()
                })
        } else {
            None
        };
        (snapshot, logs)
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    pub fn snapshots(&self) -> Vec<ServiceSnapshot> {
        self.inner
            .state
            .lock()
            .map(|s| s.values().map(|(snapshot, _)| snapshot.clone()).collect())
            .unwrap_or_default()
    }

    pub fn snapshot(&self, name: ServiceName) -> Option<ServiceSnapshot> {
        self.inner
            .state
            .lock()
            .ok()
            .and_then(|s| s.get(&name).map(|(snapshot, _)| snapshot.clone()))
    }

    pub fn logs(&self, name: ServiceName, n: usize) -> Vec<LogLine> {
        self.inner
            .state
            .lock()
            .ok()
            .and_then(|s| {
                s.get(&name).map(|(_, logs)| logs[logs.len().saturating_sub(n)..].to_vec())
            })
            .unwrap_or_default()
    }

    pub fn client(&self, name: ServiceName) -> Option<ServiceClient> {
        self.inner.clients.get(&name).cloned()
    }

    /// Stops watching; the services go on.
    pub fn detach(&self) {
        if let Ok(mut slot) = self.inner.poller.lock()
            && let Some(poller) = slot.take()
        {
            poller.abort();
        }
    }
}

/// The address of a URL whose host is an IP literal (`http://10.0.0.2:8080`), for the port
/// column; a host name has none.
fn socket_addr_of(url: &str) -> Option<std::net::SocketAddr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    authority.parse().ok().or_else(|| {
        let default = if url.starts_with("https://") { 443 } else { 80 };
        authority.parse::<std::net::IpAddr>().ok().map(|ip| std::net::SocketAddr::new(ip, default))
    })
}
