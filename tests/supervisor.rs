//! The supervisor driven directly, with the real `logitflow` binary as its children: a person's
//! restart gives a failed service its crash budget back, and a service whose old port was
//! taken comes back on a new one, with the apps that call serve following it.

mod common;

use common::kill9;
use logitflow::supervisor::{ServiceName, Status, Supervisor, SupervisorConfig};
use std::path::Path;
use std::time::{Duration, Instant};

fn config(home: &Path) -> SupervisorConfig {
    let mut config =
        SupervisorConfig::new(home.to_path_buf(), vec![home.to_path_buf()]).expect("config");
    config.exe = env!("CARGO_BIN_EXE_logitflow").into();
    config.restart.limit = 2;
    config.restart.backoff_base = Duration::from_millis(300);
    config.grace = Duration::from_secs(1);
    config
}

/// A stand-in for the binary that makes `service ingest` fail at start while `blocker` exists,
/// and runs the real binary otherwise: a service that crashes at every start.
pub fn failing_ingest(dir: &Path, blocker: &Path) -> std::path::PathBuf {
    let script = dir.join("failing-ingest.sh");
    let body = format!(
        "#!/bin/sh\nif [ \"$2\" = ingest ] && [ -e '{}' ]; then echo 'ingest cannot start: a fault the test made' >&2; exit 3; fi\nexec {} \"$@\"\n",
        blocker.display(),
        env!("CARGO_BIN_EXE_logitflow")
    );
    std::fs::write(&script, body).expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    script
}

/// Waits for `check` on the service's snapshot, with a bound and a message.
async fn until(
    sup: &Supervisor,
    name: ServiceName,
    what: &str,
    limit: Duration,
    check: impl Fn(&logitflow::supervisor::ServiceSnapshot) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        if sup.snapshot(name).is_some_and(|s| check(&s)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {name} to be {what}: {:?}",
            sup.snapshot(name)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A service that crashes on every start: the backoff doubles from 250 ms, after five restarts
/// it is marked failed and left alone, and the other seven stay ready (RELIABILITY.md, fault 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_crashes_on_every_start_is_given_up_on_and_the_rest_keep_running() {
    let home = tempfile::tempdir().expect("tempdir");
    let blocker = home.path().join("blocker");
    std::fs::write(&blocker, b"").expect("blocker");
    let mut config =
        SupervisorConfig::new(home.path().to_path_buf(), vec![home.path().to_path_buf()])
            .expect("config");
    config.exe = failing_ingest(home.path(), &blocker);
    let started = Instant::now();
    let sup = Supervisor::start(config, &ServiceName::ALL).expect("starts");
    until(&sup, ServiceName::Ingest, "failed", Duration::from_secs(40), |s| {
        s.status == Status::Failed
    })
    .await;
    // The policy itself is unit-tested (`supervisor::tests`); here, that the supervisor follows
    // it: the delays it announced, in order, and at least their sum spent before giving up.
    let announced: Vec<String> = sup
        .logs(ServiceName::Ingest, 2000)
        .into_iter()
        .filter(|l| l.stream == "supervisor")
        .filter_map(|l| l.text.split_once("restarting in ").map(|(_, delay)| delay.to_string()))
        .collect();
    assert_eq!(announced, ["250ms", "500ms", "1s", "2s", "4s"], "the backoff doubles from 250 ms");
    assert!(
        sup.logs(ServiceName::Ingest, 2000)
            .iter()
            .any(|l| l.text.ends_with("gave up after 5 restarts"))
    );
    assert!(
        started.elapsed() >= Duration::from_millis(7_750),
        "gave up too soon: {:?}",
        started.elapsed()
    );
    let ingest = sup.snapshot(ServiceName::Ingest).expect("ingest");
    assert_eq!(ingest.restarts, 5, "five restarts counted: {ingest:?}");
    assert!(
        ingest.last_error.as_deref().is_some_and(|e| e.contains("a fault the test made")),
        "the cause is shown: {ingest:?}"
    );
    for name in ServiceName::ALL.into_iter().filter(|n| *n != ServiceName::Ingest) {
        until(&sup, name, "ready", Duration::from_secs(30), |s| s.status == Status::Ready).await;
    }
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_restart_gives_a_failed_service_its_crash_budget_back() {
    let home = tempfile::tempdir().expect("tempdir");
    // While the blocker exists, ingest fails at every start.
    let blocker = home.path().join("blocker");
    std::fs::write(&blocker, b"").expect("blocker");
    let mut config = config(home.path());
    config.exe = failing_ingest(home.path(), &blocker);
    let sup = Supervisor::start(config, &[ServiceName::Ingest]).expect("starts");
    until(&sup, ServiceName::Ingest, "failed", Duration::from_secs(30), |s| {
        s.status == Status::Failed
    })
    .await;

    // The cause is fixed and a person restarts it: it runs.
    std::fs::remove_file(&blocker).expect("unblock");
    sup.restart(ServiceName::Ingest);
    until(&sup, ServiceName::Ingest, "ready", Duration::from_secs(20), |s| {
        s.status == Status::Ready
    })
    .await;

    // One crash now is restarted like any first crash, not marked failed at once.
    let pid = sup.snapshot(ServiceName::Ingest).and_then(|s| s.pid).expect("a pid");
    kill9(pid);
    until(&sup, ServiceName::Ingest, "ready under a new pid", Duration::from_secs(20), |s| {
        assert_ne!(s.status, Status::Failed, "the spent budget was kept: {s:?}");
        s.status == Status::Ready && s.pid.is_some_and(|p| p != pid)
    })
    .await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_port_was_taken_comes_back_on_a_new_one_and_the_apps_follow_serve() {
    let home = tempfile::tempdir().expect("tempdir");
    // A model for advisor to ask serve about.
    let store = logitflow_store::Store::open(home.path()).expect("store");
    let id = store
        .put_json(
            logitflow_store::Kind::Model,
            "test",
            vec![],
            serde_json::json!({}),
            "model.json",
            &logitflow_core::model::Model::worked_example(),
        )
        .expect("model");
    let registry = logitflow_store::registry::Registry::open(home.path());
    registry.register("admissions", &id, None, None).expect("register");
    registry.set_alias("admissions", logitflow_store::registry::STABLE, 1).expect("alias");

    let sup = Supervisor::start(config(home.path()), &[ServiceName::Serve, ServiceName::Advisor])
        .expect("starts");
    sup.wait_ready(Duration::from_secs(30)).await.expect("ready");
    let old = sup.snapshot(ServiceName::Serve).expect("serve");
    let (old_addr, old_pid) = (old.addr.expect("an address"), old.pid.expect("a pid"));
    let advisor_pid =
        sup.snapshot(ServiceName::Advisor).and_then(|s| s.pid).expect("advisor's pid");

    // serve dies and another process takes its port before the restart.
    kill9(old_pid);
    let squatting_by = Instant::now() + Duration::from_secs(10);
    let squatter = loop {
        match std::net::TcpListener::bind(old_addr) {
            Ok(listener) => break listener,
            Err(e) => {
                assert!(
                    Instant::now() < squatting_by,
                    "serve's old port {old_addr} was not free within 10 s of its kill: {e}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    until(&sup, ServiceName::Serve, "ready on a new port", Duration::from_secs(30), |s| {
        s.status == Status::Ready && s.addr.is_some_and(|a| a.port() != old_addr.port())
    })
    .await;
    // advisor was restarted with serve's new address, and answers through it.
    until(&sup, ServiceName::Advisor, "restarted and ready", Duration::from_secs(30), |s| {
        s.status == Status::Ready && s.pid.is_some_and(|p| p != advisor_pid)
    })
    .await;
    let advisor = sup.client(ServiceName::Advisor).expect("advisor client");
    let advice: serde_json::Value =
        advisor.post("/v1/advice", &serde_json::json!({"inputs": [80.0]})).await.expect("advice");
    assert!(
        (advice["probability"].as_f64().unwrap_or(0.0) - 0.997_527_376_84).abs() < 1e-9,
        "{advice}"
    );
    drop(squatter);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_out_of_file_descriptors_fails_its_probes_and_is_restarted() {
    let home = tempfile::tempdir().expect("tempdir");
    // The child runs with 64 file descriptors at most.
    let wrapper = home.path().join("limited.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec prlimit --nofile=64:64 {} \"$@\"\n",
            env!("CARGO_BIN_EXE_logitflow")
        ),
    )
    .expect("script");
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mut config = config(home.path());
    config.exe = wrapper;
    config.probe_interval = Duration::from_millis(200);
    let sup = Supervisor::start(config, &[ServiceName::Preprocess]).expect("starts");
    sup.wait_ready(Duration::from_secs(30)).await.expect("ready");
    let before = sup.snapshot(ServiceName::Preprocess).expect("snapshot");
    let (addr, pid) = (before.addr.expect("addr"), before.pid.expect("pid"));
    // Idle connections until the service can accept no more.
    let mut held = Vec::new();
    for _ in 0..100 {
        if let Ok(stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
        {
            held.push(stream);
        }
    }
    until(
        &sup,
        ServiceName::Preprocess,
        "restarted under a new pid",
        Duration::from_secs(20),
        |s| s.pid.is_some_and(|p| p != pid),
    )
    .await;
    drop(held);
    until(&sup, ServiceName::Preprocess, "ready again", Duration::from_secs(20), |s| {
        s.status == Status::Ready
    })
    .await;
    assert!(sup.snapshot(ServiceName::Preprocess).is_some_and(|s| s.restarts >= 1));
    sup.shutdown().await;
}

/// Services listen on loopback unless told otherwise: a service started by hand with no
/// `--listen` (and no `LOGITFLOW_LISTEN`), and every service the supervisor starts, HTTP and
/// gRPC, announce 127.0.0.1 (RELIABILITY.md, Access).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_listen_on_loopback_only_unless_told_otherwise() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut by_hand = common::logitflow(home.path())
        .args(["service", "ingest"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ingest starts");
    let stdout = std::io::BufReader::new(by_hand.stdout.take().expect("stdout"));
    let (line, _stdout) =
        common::line_within(stdout, Duration::from_secs(30), "ingest's listening line");
    kill9(by_hand.id());
    let _ = by_hand.wait();
    let announced: serde_json::Value = serde_json::from_str(&line).expect("a JSON listening line");
    let addr: std::net::SocketAddr =
        announced["addr"].as_str().and_then(|a| a.parse().ok()).expect("an address");
    assert_eq!(
        addr.ip(),
        std::net::Ipv4Addr::LOCALHOST,
        "a service started with no --listen: {line}"
    );

    // Off loopback, not without a token: refused before anything is bound.
    for args in [
        &["service", "ingest", "--listen", "0.0.0.0:0"][..],
        &["service", "serve", "--grpc-listen", "0.0.0.0:0"][..],
    ] {
        let mut command = common::logitflow(home.path());
        command.args(args);
        let refused = common::run_for(command, Duration::from_secs(30));
        assert!(!refused.status.success(), "{args:?} started without a token");
        let said = common::stderr(&refused);
        assert!(
            said.contains("refusing to listen on 0.0.0.0:") && said.contains("LOGITFLOW_TOKEN"),
            "{args:?}: {said}"
        );
        // Nor with a token a few dozen guesses find.
        let mut command = common::logitflow(home.path());
        command.args(args).env("LOGITFLOW_TOKEN", "a");
        let refused = common::run_for(command, Duration::from_secs(30));
        assert!(!refused.status.success(), "{args:?} started with a one-character token");
        let said = common::stderr(&refused);
        assert!(
            said.contains("a 1-character token") && said.contains("at least 32"),
            "{args:?}: {said}"
        );
    }

    let sup = Supervisor::start(config(home.path()), &ServiceName::ALL).expect("starts");
    for name in ServiceName::ALL {
        until(&sup, name, "ready", Duration::from_secs(60), |s| s.status == Status::Ready).await;
        let service = sup.snapshot(name).expect("a snapshot");
        let addrs: Vec<_> = service.addr.into_iter().chain(service.grpc_addr).collect();
        assert!(!addrs.is_empty(), "{name} announced no address: {service:?}");
        assert!(
            addrs.iter().all(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST),
            "{name} under the supervisor: {service:?}"
        );
        if name == ServiceName::Serve {
            assert_eq!(addrs.len(), 2, "serve announces HTTP and gRPC: {service:?}");
        }
    }
    sup.shutdown().await;
}
