//! The supervisor: runs each service as a child process and keeps it running.
//!
//! Each child is `logitflow service <name>` (the console's own executable), in its own process
//! group, with the token in its environment (never argv). The supervisor reads the child's
//! listening line for its address, waits for `GET /v2/health/ready`, then probes
//! `GET /v2/health/live` every second. A child that exits, or fails three probes in a row, is
//! restarted on the same port after an exponential backoff (on a new one if it cannot listen on
//! the old, and then the apps that call serve are restarted to follow it); after
//! [`RestartPolicy::limit`] restarts without a minute of good health it is marked
//! failed and left alone, and every other service keeps running, until a person restarts it,
//! which gives it its whole crash budget again. stdout and stderr are drained all the time into a bounded
//! buffer per service ([`LogLine`]).
//!
//! Stopping sends SIGTERM to the child's group, waits [`SupervisorConfig::grace`], then sends
//! SIGKILL. On Linux the children also get SIGKILL when the console dies (PR_SET_PDEATHSIG),
//! and the children of a console that was killed are found through `<home>/run/` and reaped
//! by the next console that starts on the same home ([`reap_stale`]).

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

/// Why the services are not ready to be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("{service} failed to start: {why}")]
    Failed { service: ServiceName, why: String },
    /// Each service still waited for, with its state and last error.
    #[error("services not ready after {after:?}: {}", waiting.join(", "))]
    TimedOut { after: Duration, waiting: Vec<String> },
}

/// The services, in pipeline order (also the order they start in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceName {
    Ingest,
    Preprocess,
    Features,
    Train,
    Evaluate,
    Serve,
    Advisor,
    Batch,
}

impl ServiceName {
    pub const ALL: [ServiceName; 8] = [
        ServiceName::Ingest,
        ServiceName::Preprocess,
        ServiceName::Features,
        ServiceName::Train,
        ServiceName::Evaluate,
        ServiceName::Serve,
        ServiceName::Advisor,
        ServiceName::Batch,
    ];

    /// The pipeline's stages, in order: the services before the apps.
    pub const STAGES: [ServiceName; 6] = [
        ServiceName::Ingest,
        ServiceName::Preprocess,
        ServiceName::Features,
        ServiceName::Train,
        ServiceName::Evaluate,
        ServiceName::Serve,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Ingest => "ingest",
            ServiceName::Preprocess => "preprocess",
            ServiceName::Features => "features",
            ServiceName::Train => "train",
            ServiceName::Evaluate => "evaluate",
            ServiceName::Serve => "serve",
            ServiceName::Advisor => "advisor",
            ServiceName::Batch => "batch",
        }
    }

    /// Apps that call serve, and so must start after it.
    fn needs_serve(self) -> bool {
        matches!(self, ServiceName::Advisor | ServiceName::Batch)
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ServiceName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ServiceName::ALL.into_iter().find(|n| n.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = ServiceName::ALL.iter().map(|n| n.as_str()).collect();
            format!("unknown service {s:?}; the services are {}", names.join(", "))
        })
    }
}

/// A service's state, as the dashboard shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Starting,
    Ready,
    Unhealthy,
    Restarting,
    Stopped,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Ready => "ready",
            Status::Unhealthy => "unhealthy",
            Status::Restarting => "restarting",
            Status::Stopped => "stopped",
            Status::Failed => "failed",
        }
    }
}

/// One line a service wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub stream: &'static str,
    pub text: String,
}

/// What is known of one service right now.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSnapshot {
    pub name: ServiceName,
    pub status: Status,
    pub pid: Option<u32>,
    pub addr: Option<SocketAddr>,
    /// serve's gRPC address (`inference.GRPCInferenceService`).
    pub grpc_addr: Option<SocketAddr>,
    pub started: Option<Instant>,
    pub restarts: u32,
    pub last_probe: Option<Duration>,
    pub last_error: Option<String>,
    /// Resident memory as the service itself reports it (`/v1/info`): what the console shows
    /// for a service on another machine, whose process it cannot sample.
    pub reported_memory: Option<u64>,
}

impl ServiceSnapshot {
    /// A service nothing is known of yet: starting, no process, no address.
    pub fn unseen(name: ServiceName) -> ServiceSnapshot {
        ServiceSnapshot {
            name,
            status: Status::Starting,
            pid: None,
            addr: None,
            grpc_addr: None,
            started: None,
            restarts: 0,
            last_probe: None,
            last_error: None,
            reported_memory: None,
        }
    }
}

/// The environment variable naming the executable run as `<exe> service <name>`.
pub const SERVICE_EXE_ENV: &str = "LOGITFLOW_SERVICE_EXE";

#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// The executable to run as `<exe> service <name>`.
    pub exe: PathBuf,
    pub home: PathBuf,
    /// The store the children use (`--store`); `None`: the home.
    pub store: Option<String>,
    pub token: String,
    pub allowed_roots: Vec<PathBuf>,
    /// When a crashed child is restarted, and when it is given up on.
    pub restart: RestartPolicy,
    pub grace: Duration,
    pub probe_interval: Duration,
    pub log_lines: usize,
    /// Extra environment for the children (e.g. a fault to inject, in tests).
    pub extra_env: Vec<(String, String)>,
}

impl SupervisorConfig {
    pub fn new(home: PathBuf, allowed_roots: Vec<PathBuf>) -> std::io::Result<SupervisorConfig> {
        // A launcher may name another build of logitflow (or a wrapper around it) to run the
        // services; by default they are this executable's own `service` commands.
        let exe = match std::env::var_os(SERVICE_EXE_ENV) {
            Some(exe) => PathBuf::from(exe),
            None => std::env::current_exe()?,
        };
        Ok(SupervisorConfig {
            exe,
            home,
            store: None,
            token: random_token(),
            allowed_roots,
            restart: RestartPolicy::default(),
            grace: Duration::from_secs(3),
            probe_interval: Duration::from_secs(1),
            log_lines: 2000,
            extra_env: Vec::new(),
        })
    }
}

/// When a crashed child is started again, and when the supervisor stops trying: a pure policy,
/// asked by each service's task after every crash, failed probe and wait for readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Crashes allowed without [`RestartPolicy::healthy_reset`] of good health in between; the
    /// next one marks the service failed.
    pub limit: u32,
    /// The first restart's delay; each next one doubles, up to [`RestartPolicy::backoff_cap`].
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Ready this long before a crash, a service starts its count of crashes over.
    pub healthy_reset: Duration,
    /// Liveness probes failed in a row that make a ready service restarted.
    pub failed_probes: u32,
    /// How long a child may take to print its listening line, and then to become ready.
    pub start_timeout: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            limit: 5,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(10),
            healthy_reset: Duration::from_secs(60),
            failed_probes: 3,
            start_timeout: Duration::from_secs(15),
        }
    }
}

/// What the policy says after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCrash {
    RestartIn(Duration),
    GiveUp,
}

impl RestartPolicy {
    /// After a crash of a service that was ready for `healthy_for` (zero if it never was):
    /// counts it in `crashes` (the crashes since the count last started over) and says when to
    /// restart, or to give up.
    pub fn after_crash(&self, crashes: &mut u32, healthy_for: Duration) -> AfterCrash {
        if healthy_for >= self.healthy_reset {
            *crashes = 0;
        }
        *crashes += 1;
        if *crashes > self.limit {
            return AfterCrash::GiveUp;
        }
        let doublings = 2u32.saturating_pow(*crashes - 1);
        AfterCrash::RestartIn(
            self.backoff_base
                .checked_mul(doublings)
                .unwrap_or(self.backoff_cap)
                .min(self.backoff_cap),
        )
    }

    /// Whether `in_a_row` failed liveness probes make a ready service restarted.
    pub fn restarts_after_probes(&self, in_a_row: u32) -> bool {
        in_a_row >= self.failed_probes
    }

    /// Whether a child that has been starting for `waited` is overdue and is restarted.
    pub fn start_overdue(&self, waited: Duration) -> bool {
        waited > self.start_timeout
    }
}

/// 32 random bytes, hex: the per-launch bearer token.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug)]
enum Control {
    Restart,
    /// Stop this service and keep it stopped until [`Control::Start`].
    Stop,
    Start,
    /// The supervisor is going away: stop and end the task.
    Shutdown,
}

struct Managed {
    snapshot: Mutex<ServiceSnapshot>,
    logs: Mutex<VecDeque<LogLine>>,
    control: mpsc::UnboundedSender<Control>,
}

/// Runs and watches the services. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    config: Arc<SupervisorConfig>,
    services: Arc<BTreeMap<ServiceName, Arc<Managed>>>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    changed: watch::Sender<u64>,
    /// Probes: a short timeout, so a hung service counts as a failed probe.
    http: reqwest::Client,
    /// One connection pool for every [`ServiceClient`] handed out by [`Supervisor::client`].
    api: reqwest::Client,
    pidfile: PathBuf,
}

impl Supervisor {
    /// Starts `names` (in order; apps wait for serve) and returns at once; use
    /// [`Supervisor::wait_ready`] to wait for them.
    pub fn start(config: SupervisorConfig, names: &[ServiceName]) -> std::io::Result<Supervisor> {
        let run_dir = config.home.join("run");
        std::fs::create_dir_all(&run_dir)?;
        reap_stale(&run_dir);
        let pidfile = run_dir.join(format!("console-{}.json", std::process::id()));
        // No idle connections kept: each probe connects afresh, so a service that can no longer
        // accept connections (out of file descriptors) fails its probes instead of looking
        // healthy over a connection it accepted long ago.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_default();
        let api = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        let mut services = BTreeMap::new();
        let mut receivers = Vec::new();
        for &name in names {
            let (tx, rx) = mpsc::unbounded_channel();
            services.insert(
                name,
                Arc::new(Managed {
                    snapshot: Mutex::new(ServiceSnapshot::unseen(name)),
                    logs: Mutex::new(VecDeque::new()),
                    control: tx,
                }),
            );
            receivers.push((name, rx));
        }
        let supervisor = Supervisor {
            config: Arc::new(config),
            services: Arc::new(services),
            tasks: Arc::default(),
            changed: watch::channel(0).0,
            http,
            api,
            pidfile,
        };
        supervisor.write_pidfile();
        let mut handles = Vec::new();
        for (name, rx) in receivers {
            let sup = supervisor.clone();
            handles.push(tokio::spawn(async move { sup.supervise(name, rx).await }));
        }
        if let Ok(mut tasks) = supervisor.tasks.lock() {
            tasks.extend(handles);
        }
        Ok(supervisor)
    }

    pub fn token(&self) -> &str {
        &self.config.token
    }

    /// A receiver that changes whenever any service's snapshot does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn snapshots(&self) -> Vec<ServiceSnapshot> {
        self.services.values().filter_map(|m| m.snapshot.lock().ok().map(|s| s.clone())).collect()
    }

    pub fn snapshot(&self, name: ServiceName) -> Option<ServiceSnapshot> {
        self.services.get(&name)?.snapshot.lock().ok().map(|s| s.clone())
    }

    /// The last `n` lines a service wrote.
    pub fn logs(&self, name: ServiceName, n: usize) -> Vec<LogLine> {
        self.services
            .get(&name)
            .and_then(|m| {
                m.logs.lock().ok().map(|l| l.iter().rev().take(n).rev().cloned().collect())
            })
            .unwrap_or_default()
    }

    /// A client for a ready service's HTTP API.
    pub fn client(&self, name: ServiceName) -> Option<logitflow_kit::client::ServiceClient> {
        let addr = self.snapshot(name)?.addr?;
        Some(logitflow_kit::client::ServiceClient::with_http(
            name.as_str(),
            addr.to_string(),
            Some(self.config.token.clone()),
            self.api.clone(),
        ))
    }

    pub fn restart(&self, name: ServiceName) {
        self.send(name, Control::Restart);
    }
    pub fn stop_service(&self, name: ServiceName) {
        self.send(name, Control::Stop);
    }
    pub fn start_service(&self, name: ServiceName) {
        self.send(name, Control::Start);
    }
    fn send(&self, name: ServiceName, control: Control) {
        if let Some(m) = self.services.get(&name) {
            let _ = m.control.send(control);
        }
    }

    /// Waits until every service is ready; fails as soon as one has failed, or at `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), NotReady> {
        let mut changed = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let snapshots = self.snapshots();
            if let Some(failed) = snapshots.iter().find(|s| s.status == Status::Failed) {
                return Err(NotReady::Failed {
                    service: failed.name,
                    why: failed.last_error.clone().unwrap_or_else(|| "no reason given".into()),
                });
            }
            if snapshots.iter().all(|s| s.status == Status::Ready) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                let waiting: Vec<String> = snapshots
                    .iter()
                    .filter(|s| s.status != Status::Ready)
                    .map(|s| match &s.last_error {
                        Some(why) => format!("{} ({}: {why})", s.name, s.status.as_str()),
                        None => format!("{} ({})", s.name, s.status.as_str()),
                    })
                    .collect();
                return Err(NotReady::TimedOut { after: timeout, waiting });
            }
        }
    }

    /// Stops every service (SIGTERM, grace, SIGKILL) and waits for them, then removes the
    /// pidfile.
    pub async fn shutdown(&self) {
        for m in self.services.values() {
            let _ = m.control.send(Control::Shutdown);
        }
        let handles: Vec<_> =
            self.tasks.lock().map(|mut t| t.drain(..).collect()).unwrap_or_default();
        for h in handles {
            let _ = h.await;
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }

    fn update(&self, name: ServiceName, change: impl FnOnce(&mut ServiceSnapshot)) {
        if let Some(m) = self.services.get(&name)
            && let Ok(mut s) = m.snapshot.lock()
        {
            change(&mut s);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    fn log(&self, name: ServiceName, stream: &'static str, text: String) {
        if let Some(m) = self.services.get(&name)
            && let Ok(mut logs) = m.logs.lock()
        {
            if logs.len() >= self.config.log_lines {
                logs.pop_front();
            }
            logs.push_back(LogLine { stream, text });
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Records the children's pids, so a console started after this one was killed can reap them.
    fn write_pidfile(&self) {
        let children: Vec<u32> = self.snapshots().iter().filter_map(|s| s.pid).collect();
        let record = serde_json::json!({"console": std::process::id(), "children": children});
        let _ = logitflow_store::home::write_atomic(&self.pidfile, record.to_string().as_bytes());
    }

    fn spawn_child(&self, name: ServiceName, port: u16) -> std::io::Result<Child> {
        let mut command = Command::new(&self.config.exe);
        command
            .arg("service")
            .arg(name.as_str())
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(if name == ServiceName::Serve {
                &["--grpc-listen", "127.0.0.1:0"][..]
            } else {
                &[][..]
            })
            .arg("--home")
            .arg(&self.config.home)
            .env(logitflow_kit::TOKEN_ENV, &self.config.token)
            .env(
                logitflow_kit::ALLOWED_ROOTS_ENV,
                std::env::join_paths(&self.config.allowed_roots).unwrap_or_default(),
            )
            .env_remove("LOGITFLOW_LISTEN")
            .env_remove(logitflow_kit::STORE_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if name.needs_serve()
            && let Some(addr) = self.snapshot(ServiceName::Serve).and_then(|s| s.addr)
        {
            command.env(logitflow_kit::SERVE_URL_ENV, format!("http://{addr}"));
        }
        if let Some(store) = &self.config.store {
            command.arg("--store").arg(store);
        }
        for (k, v) in &self.config.extra_env {
            command.env(k, v);
        }
        die_with_parent(&mut command);
        command.spawn()
    }

    /// One service's whole life: start, watch, restart, stop.
    async fn supervise(self, name: ServiceName, mut control: mpsc::UnboundedReceiver<Control>) {
        if !self.await_serve(name, &mut control).await {
            return;
        }
        let mut port = 0u16;
        let mut failures = 0u32;
        let mut stopped_by_user = false;
        loop {
            if stopped_by_user {
                // Wait for a start (or the final stop).
                match control.recv().await {
                    // A person's start gives the service its whole crash budget again.
                    Some(Control::Start | Control::Restart) => {
                        stopped_by_user = false;
                        failures = 0;
                    }
                    Some(Control::Stop) => continue,
                    Some(Control::Shutdown) | None => return,
                }
                self.update(name, |s| {
                    s.status = Status::Starting;
                    s.last_error = None;
                });
            }
            let outcome = self.run_once(name, &mut port, &mut control).await;
            self.write_pidfile();
            match outcome {
                Exit::Shutdown => {
                    self.update(name, |s| {
                        s.status = Status::Stopped;
                        s.pid = None;
                    });
                    return;
                }
                Exit::StoppedByUser => {
                    self.update(name, |s| {
                        s.status = Status::Stopped;
                        s.pid = None;
                    });
                    stopped_by_user = true;
                    failures = 0;
                }
                Exit::Restart => {
                    self.update(name, |s| {
                        s.status = Status::Restarting;
                        s.restarts += 1;
                        s.pid = None;
                    });
                    failures = 0;
                }
                Exit::Crashed { error, healthy_for } => {
                    match self
                        .after_crash(name, (error, healthy_for), &mut failures, &mut control)
                        .await
                    {
                        AfterCrashStep::Restart => {}
                        AfterCrashStep::WaitForStart => stopped_by_user = true,
                        AfterCrashStep::End => return,
                    }
                }
            }
        }
    }

    /// An app (advisor, batch) is told serve's address at start, so it starts once serve
    /// listens; false where the supervisor ends, or the app is stopped, first.
    async fn await_serve(
        &self,
        name: ServiceName,
        control: &mut mpsc::UnboundedReceiver<Control>,
    ) -> bool {
        if !(name.needs_serve() && self.services.contains_key(&ServiceName::Serve)) {
            return true;
        }
        let mut changed = self.subscribe();
        while self.snapshot(ServiceName::Serve).and_then(|s| s.addr).is_none() {
            tokio::select! {
                result = changed.changed() => if result.is_err() { return false },
                // Told to stop before serve ever listened: there is nothing to stop.
                _ = control.recv() => {
                    self.update(name, |s| s.status = Status::Stopped);
                    return false;
                }
            }
        }
        true
    }

    /// After a crash: a restart after the backoff the restart policy gives, or, past its
    /// limit, the service failed and waiting for a person's start. A stop or shutdown during
    /// the backoff is taken.
    async fn after_crash(
        &self,
        name: ServiceName,
        (error, healthy_for): (String, Duration),
        failures: &mut u32,
        control: &mut mpsc::UnboundedReceiver<Control>,
    ) -> AfterCrashStep {
        let backoff = match self.config.restart.after_crash(failures, healthy_for) {
            AfterCrash::RestartIn(backoff) => backoff,
            AfterCrash::GiveUp => {
                let limit = self.config.restart.limit;
                self.update(name, |s| {
                    s.status = Status::Failed;
                    s.pid = None;
                    s.last_error = Some(format!("{error}; gave up after {limit} restarts"));
                });
                self.log(name, "supervisor", format!("{error}; gave up after {limit} restarts"));
                return AfterCrashStep::WaitForStart;
            }
        };
        self.update(name, |s| {
            s.status = Status::Restarting;
            s.restarts += 1;
            s.pid = None;
            s.last_error = Some(format!("{error}; restarting in {backoff:?}"));
        });
        self.log(name, "supervisor", format!("{error}; restarting in {backoff:?}"));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => AfterCrashStep::Restart,
            msg = control.recv() => match msg {
                Some(Control::Shutdown) | None => {
                    self.update(name, |s| s.status = Status::Stopped);
                    AfterCrashStep::End
                }
                Some(Control::Stop) => {
                    self.update(name, |s| s.status = Status::Stopped);
                    AfterCrashStep::WaitForStart
                }
                Some(Control::Start | Control::Restart) => AfterCrashStep::Restart,
            }
        }
    }

    /// Runs the child once, until it exits or is told to stop: started, its output forwarded,
    /// its listening line awaited, its readiness, then its liveness probed.
    async fn run_once(
        &self,
        name: ServiceName,
        port: &mut u16,
        control: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Exit {
        let mut child = match self.spawn_child(name, *port) {
            Ok(c) => c,
            Err(e) => {
                return Exit::Crashed {
                    error: format!("cannot start: {e}"),
                    healthy_for: Duration::ZERO,
                };
            }
        };
        let pid = child.id();
        self.update(name, |s| {
            s.pid = pid;
            s.status = Status::Starting;
            s.started = Some(Instant::now());
        });
        self.write_pidfile();
        let output = self.forward_output(name, &mut child);
        let addr = match self.await_listening(name, (&mut child, port), output, control).await {
            Ok(addr) => addr,
            Err(exit) => return exit,
        };
        *port = addr.port();
        self.note_address(name, addr);
        if let Err(exit) = self.await_ready(name, addr, &mut child, control).await {
            return exit;
        }
        self.watch_liveness(name, addr, &mut child, control).await
    }

    /// Forwards the child's output to its log as lines: stdout's listening lines give its
    /// addresses (the HTTP one on the channel returned), stderr's reader is returned to be
    /// waited for.
    fn forward_output(&self, name: ServiceName, child: &mut Child) -> ChildOutput {
        let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>(1);
        if let Some(stdout) = child.stdout.take() {
            let sup = self.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = addr_tx.try_send(addr);
                    } else if let Some(grpc) = grpc_listening_addr(&line) {
                        sup.update(name, |s| s.grpc_addr = Some(grpc));
                    }
                    sup.log(name, "stdout", line);
                }
            });
        }
        let mut stderr_reader = None;
        if let Some(stderr) = child.stderr.take() {
            let sup = self.clone();
            stderr_reader = Some(tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    sup.log(name, "stderr", line);
                }
            }));
        }
        (addr_rx, stderr_reader)
    }

    /// The address the child printed in its listening line; or, where it exited, hung or was
    /// told to stop first, how this run of it ended (and, where it printed no line, `port` 0).
    async fn await_listening(
        &self,
        name: ServiceName,
        (child, port): (&mut Child, &mut u16),
        (mut addr_rx, stderr_reader): ChildOutput,
        control: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Result<SocketAddr, Exit> {
        // Wait for the listening line.
        let addr = tokio::select! {
            addr = addr_rx.recv() => addr,
            _ = tokio::time::sleep(self.config.restart.start_timeout) => None,
            msg = control.recv() => return Err(self.stop_child(child, msg).await),
        };
        let Some(addr) = addr else {
            // No listening line: the child closed its stdout because it is exiting (say, its
            // home is read-only), or it is stuck. Either way the reason is in its stderr.
            let error = match tokio::time::timeout(Duration::from_millis(500), child.wait()).await {
                Ok(status) => format!("exited before listening ({})", describe_exit(status)),
                Err(_) => {
                    self.stop_child(child, Some(Control::Restart)).await;
                    "did not print its listening line in time".into()
                }
            };
            if let Some(reader) = stderr_reader {
                let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
            }
            // Its old port may be taken by now: the next start binds a new one (and the
            // services that call this one are told once it listens).
            *port = 0;
            let error = match self.logs(name, 1).pop().filter(|l| l.stream == "stderr") {
                Some(last) => format!("{error}: {}", last.text.trim()),
                None => error,
            };
            return Err(Exit::Crashed { error, healthy_for: Duration::ZERO });
        };
        Ok(addr)
    }

    /// Records the child's address; where serve moved, the apps told its old one restart.
    fn note_address(&self, name: ServiceName, addr: SocketAddr) {
        let moved = self.snapshot(name).and_then(|s| s.addr).is_some_and(|old| old != addr);
        self.update(name, |s| s.addr = Some(addr));
        if moved && name == ServiceName::Serve {
            // The apps were told serve's address when they started: restart them with the new one.
            for app in ServiceName::ALL.into_iter().filter(|n| n.needs_serve()) {
                self.log(
                    app,
                    "supervisor",
                    format!("serve moved to {addr}: restarting to follow it"),
                );
                self.send(app, Control::Restart);
            }
        }
    }

    /// Waits for the child's readiness, showing why it is not ready where it says; or, where it
    /// exits, overstays its start or is told to stop, how this run of it ended.
    async fn await_ready(
        &self,
        name: ServiceName,
        addr: SocketAddr,
        child: &mut Child,
        control: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), Exit> {
        let ready_url = format!("http://{addr}/v2/health/ready");
        let started = Instant::now();
        // Wait for readiness; a service that says why it is not ready has that shown.
        loop {
            let probe = Instant::now();
            match self.http.get(&ready_url).send().await {
                Ok(r) if r.status().is_success() => {
                    self.update(name, |s| {
                        s.status = Status::Ready;
                        s.last_probe = Some(probe.elapsed());
                        s.last_error = None;
                    });
                    break;
                }
                Ok(r) => {
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    if let Some(why) =
                        body.get("reason").or_else(|| body.get("error")).and_then(|v| v.as_str())
                    {
                        let why = format!("not ready: {why}");
                        self.update(name, |s| s.last_error = Some(why));
                    }
                }
                Err(_) => {}
            }
            if self.config.restart.start_overdue(started.elapsed()) {
                self.stop_child(child, Some(Control::Restart)).await;
                return Err(Exit::Crashed {
                    error: "did not become ready in time".into(),
                    healthy_for: Duration::ZERO,
                });
            }
            tokio::select! {
                status = child.wait() => return Err(Exit::Crashed { error: format!("exited while starting ({})", describe_exit(status)), healthy_for: Duration::ZERO }),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                msg = control.recv() => return Err(self.stop_child(child, msg).await),
            }
        }
        Ok(())
    }

    /// Probes the ready child's liveness until it exits, fails too many probes or is told to
    /// stop: how this run of it ended.
    async fn watch_liveness(
        &self,
        name: ServiceName,
        addr: SocketAddr,
        child: &mut Child,
        control: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Exit {
        let live_url = format!("http://{addr}/v2/health/live");
        let ready_at = Instant::now();
        let mut failed_probes = 0;
        let mut probe_timer = tokio::time::interval(self.config.probe_interval);
        probe_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                status = child.wait() => {
                    return Exit::Crashed { error: format!("exited ({})", describe_exit(status)), healthy_for: ready_at.elapsed() };
                }
                msg = control.recv() => return self.stop_child(child, msg).await,
                _ = probe_timer.tick() => {
                    let probe = Instant::now();
                    let ok = self.http.get(&live_url).send().await.is_ok_and(|r| r.status().is_success());
                    let latency = probe.elapsed();
                    if ok {
                        failed_probes = 0;
                        self.update(name, |s| { s.status = Status::Ready; s.last_probe = Some(latency); });
                    } else {
                        failed_probes += 1;
                        self.update(name, |s| { s.status = Status::Unhealthy; s.last_probe = Some(latency); });
                        if self.config.restart.restarts_after_probes(failed_probes) {
                            self.stop_child(child, Some(Control::Restart)).await;
                            let error = format!("failed {failed_probes} liveness probes");
                            return Exit::Crashed { error, healthy_for: ready_at.elapsed() };
                        }
                    }
                }
            }
        }
    }

    /// SIGTERM to the child's group, the grace period, then SIGKILL; reports why it stopped.
    async fn stop_child(&self, child: &mut Child, why: Option<Control>) -> Exit {
        if let Some(pid) = child.id() {
            let group = Pid::from_raw(pid as i32);
            let _ = killpg(group, Signal::SIGTERM);
            if tokio::time::timeout(self.config.grace, child.wait()).await.is_err() {
                let _ = killpg(group, Signal::SIGKILL);
                let _ = child.wait().await;
            }
        }
        match why {
            Some(Control::Restart) | Some(Control::Start) => Exit::Restart,
            Some(Control::Stop) => Exit::StoppedByUser,
            Some(Control::Shutdown) | None => Exit::Shutdown,
        }
    }
}

/// What supervision does after a crash.
enum AfterCrashStep {
    Restart,
    /// Stopped (given up on, or by a person during the backoff) until a person starts it.
    WaitForStart,
    /// The supervisor is going away.
    End,
}

/// A child's output as it is forwarded: the addresses its listening lines give, and the task
/// reading its stderr.
type ChildOutput = (mpsc::Receiver<SocketAddr>, Option<tokio::task::JoinHandle<()>>);

enum Exit {
    /// The supervisor is going away.
    Shutdown,
    StoppedByUser,
    Restart,
    Crashed {
        error: String,
        healthy_for: Duration,
    },
}

fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(sig)) => Signal::try_from(sig)
                .map_or_else(|_| format!("signal {sig}"), |s| format!("killed by {s}")),
            _ => "unknown status".into(),
        },
        Err(e) => format!("cannot wait: {e}"),
    }
}

/// Reads a listening line, `{"event":"listening",...,"addr":"..."}`: the protocol it names
/// (`"http"` when it names none) and the address.
fn listening_line(line: &str) -> Option<(String, SocketAddr)> {
    let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    (value.get("event")?.as_str()? == "listening").then_some(())?;
    let protocol = value.get("protocol").and_then(|p| p.as_str()).unwrap_or("http").to_string();
    Some((protocol, value.get("addr")?.as_str()?.parse().ok()?))
}

/// The HTTP address of a listening line: what the supervisor probes and clients call.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    listening_line(line).filter(|(protocol, _)| protocol == "http").map(|(_, addr)| addr)
}

/// serve's second listening line, for gRPC.
pub fn grpc_listening_addr(line: &str) -> Option<SocketAddr> {
    listening_line(line).filter(|(protocol, _)| protocol == "grpc").map(|(_, addr)| addr)
}

/// On Linux, asks the kernel to SIGKILL the child when the console dies, however it dies.
/// The signal follows the *thread* that spawned the child, so children must be spawned from
/// long-lived runtime worker threads, never from `spawn_blocking` threads that come and go.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (prctl, getppid, _exit via raise).
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
                // The parent may have died between fork and prctl: then nobody will signal us.
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    let _ = nix::sys::signal::raise(Signal::SIGKILL);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// Kills the children of consoles that are gone, as recorded in `run_dir`, and removes their
/// records. A pid is only killed if it still runs a logitflow service, so a reused pid is safe.
pub fn reap_stale(run_dir: &Path) -> usize {
    let mut reaped = 0;
    let Ok(entries) = std::fs::read_dir(run_dir) else { return 0 };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(record) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            continue;
        };
        let console = record["console"].as_u64().unwrap_or(0) as u32;
        if console == std::process::id() || process_alive(console) {
            continue;
        }
        for pid in record["children"].as_array().into_iter().flatten().filter_map(|p| p.as_u64()) {
            let pid = pid as u32;
            if is_logitflow_service(pid) {
                // Our children lead their own groups; a leftover from elsewhere may not.
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                reaped += 1;
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    reaped
}

fn process_alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
}

fn is_logitflow_service(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let args: Vec<&[u8]> = c.split(|&b| b == 0).collect();
        args.iter().any(|a| *a == b"service")
            && args.first().is_some_and(|exe| exe.ends_with(b"logitflow"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_line() {
        let line = r#"{"event":"listening","service":"serve","addr":"127.0.0.1:4242"}"#;
        assert_eq!(listening_addr(line), Some("127.0.0.1:4242".parse().expect("addr")));
        assert_eq!(listening_addr(r#"{"event":"other","addr":"127.0.0.1:1"}"#), None);
        assert_eq!(listening_addr("not json"), None);
        let grpc =
            r#"{"event":"listening","service":"serve","protocol":"grpc","addr":"127.0.0.1:4343"}"#;
        assert_eq!(
            (listening_addr(grpc), grpc_listening_addr(grpc)),
            (None, Some("127.0.0.1:4343".parse().expect("addr")))
        );
        assert_eq!(grpc_listening_addr(line), None);
    }

    #[test]
    fn the_backoff_doubles_from_250_ms_to_its_cap_and_the_sixth_crash_gives_up() {
        let policy = RestartPolicy::default();
        let mut crashes = 0;
        let delays: Vec<AfterCrash> =
            (0..6).map(|_| policy.after_crash(&mut crashes, Duration::ZERO)).collect();
        let ms = |n| AfterCrash::RestartIn(Duration::from_millis(n));
        assert_eq!(delays, [ms(250), ms(500), ms(1000), ms(2000), ms(4000), AfterCrash::GiveUp]);
        // With room for more, the delay stops growing at the cap.
        let patient = RestartPolicy { limit: 100, ..policy };
        let mut crashes = 0;
        let delays: Vec<AfterCrash> =
            (0..100).map(|_| patient.after_crash(&mut crashes, Duration::ZERO)).collect();
        assert_eq!(delays[5..8], [ms(8000), ms(10_000), ms(10_000)]);
        assert_eq!(delays[99], ms(10_000), "no overflow at the hundredth");
    }

    #[test]
    fn a_minute_of_good_health_starts_the_count_of_crashes_over() {
        let policy = RestartPolicy::default();
        let mut crashes = 0;
        for _ in 0..5 {
            policy.after_crash(&mut crashes, Duration::from_secs(59));
        }
        assert_eq!(
            policy.after_crash(&mut crashes, Duration::from_secs(59)),
            AfterCrash::GiveUp,
            "59 s is not a minute"
        );
        let mut crashes = 5;
        assert_eq!(
            policy.after_crash(&mut crashes, Duration::from_secs(60)),
            AfterCrash::RestartIn(Duration::from_millis(250))
        );
        assert_eq!(crashes, 1);
    }

    #[test]
    fn three_failed_probes_in_a_row_restart_and_a_start_may_take_15_s() {
        let policy = RestartPolicy::default();
        assert_eq!(
            (1..=4).map(|n| policy.restarts_after_probes(n)).collect::<Vec<_>>(),
            [false, false, true, true]
        );
        assert!(!policy.start_overdue(Duration::from_secs(15)));
        assert!(policy.start_overdue(Duration::from_millis(15_001)));
    }

    #[test]
    fn names_round_trip_and_tokens_are_random() {
        for name in ServiceName::ALL {
            assert_eq!(name.as_str().parse::<ServiceName>(), Ok(name));
        }
        assert!("nope".parse::<ServiceName>().is_err());
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
