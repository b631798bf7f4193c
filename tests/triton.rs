//! serve against the clients people use with the Open Inference Protocol: NVIDIA's
//! `tritonclient` (HTTP, its defaults with binary tensors, JSON, binary outputs, the asyncio
//! client; gRPC with its defaults), driven by `tests/clients/triton_http.py` and
//! `triton_grpc.py` against a real `logitflow service serve --grpc-listen`, and a request with
//! no content type, as `curl -d` sends it.
//!
//! The Python side needs `tritonclient[http,grpc]`: `LOGITFLOW_TEST_PYTHON` names a python with
//! it, or the tests install it in a virtual environment of their own (`common::test_tools`).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// A home with the worked example (θ0 = −10, θ1 = 0.2) as `admissions` v1, stable, and a serve
/// on it (with gRPC too); returns the serve process and its HTTP and gRPC addresses.
fn serve_worked_example(home: &std::path::Path) -> (std::process::Child, String, String) {
    let store = logitflow_store::Store::open(home).expect("store");
    let model = logitflow_core::model::Model::worked_example();
    let id = store
        .put_json(
            logitflow_store::Kind::Model,
            "test",
            vec![],
            serde_json::json!({}),
            "model.json",
            &model,
        )
        .expect("model");
    let registry = logitflow_store::registry::Registry::open(home);
    registry.register("admissions", &id, None, None).expect("register");
    registry.set_alias("admissions", logitflow_store::registry::STABLE, 1).expect("alias");
    serve(home)
}

/// A serve on the models of `home` (with gRPC too), once ready: the process and its HTTP and
/// gRPC addresses.
fn serve(home: &std::path::Path) -> (std::process::Child, String, String) {
    let mut child = common::logitflow(home)
        .args(["service", "serve", "--grpc-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let (mut addr, mut grpc) = (None, None);
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    while addr.is_none() || grpc.is_none() {
        let line;
        (line, lines) =
            common::line_within(lines, std::time::Duration::from_secs(30), "listening line");
        assert!(!line.is_empty(), "serve ended before it listened");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let at = value["addr"].as_str().map(String::from);
        if value["protocol"] == "grpc" { grpc = at } else { addr = at }
    }
    let (addr, grpc) = (addr.unwrap_or_default(), grpc.unwrap_or_default());
    // Ready once the registry is loaded.
    for _ in 0..200 {
        if let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
            let _ = stream.write_all(
                b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            );
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    (child, addr, grpc)
}

#[test]
fn tritonclient_http_with_its_defaults_gets_the_probability() {
    let python = &common::test_tools().python;
    let home = tempfile::tempdir().expect("tempdir");
    let (mut serve, addr, grpc) = serve_worked_example(home.path());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/triton_http.py");
    let out = Command::new(python).arg(script).arg(&addr).output().expect("python runs");
    let grpc_script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/triton_grpc.py");
    let grpc_out = Command::new(python).arg(grpc_script).arg(&grpc).output().expect("python runs");
    let metrics = http_get(&addr, "/metrics");
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(out.status.success(), "tritonclient failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(
        (results["live"].as_bool(), results["ready"].as_bool(), results["model_ready"].as_bool()),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(
        results["metadata_inputs"],
        serde_json::json!(["score"]),
        "the model's real input name"
    );
    for (case, id) in [
        ("http_default", "r1"),
        ("http_json", "r2"),
        ("http_binary_output", "r3"),
        ("http_version", "r4"),
        ("aio", "r5"),
    ] {
        let r = &results[case];
        let p = r["probability"].as_f64().unwrap_or(f64::NAN);
        assert!((p - 0.997_527_376_84).abs() < 1e-9, "{case}: {r}");
        assert_eq!(
            (r["model_version"].as_str(), r["id"].as_str()),
            (Some("1"), Some(id)),
            "{case}: {r}"
        );
    }
    // tritonclient.grpc, with its defaults (raw input contents), on serve's gRPC port.
    assert!(
        grpc_out.status.success(),
        "tritonclient.grpc failed:\n{}",
        String::from_utf8_lossy(&grpc_out.stderr)
    );
    let grpc: serde_json::Value =
        serde_json::from_slice(&grpc_out.stdout).expect("one JSON object");
    assert_eq!(
        (grpc["live"].as_bool(), grpc["ready"].as_bool(), grpc["model_ready"].as_bool()),
        (Some(true), Some(true), Some(true)),
        "{grpc}"
    );
    assert_eq!(grpc["metadata_inputs"], serde_json::json!(["score"]));
    let p = grpc["infer"]["probability"].as_f64().unwrap_or(f64::NAN);
    assert!((p - 0.997_527_376_84).abs() < 1e-9, "{grpc}");
    assert_eq!(
        (grpc["infer"]["model_version"].as_str(), grpc["infer"]["id"].as_str()),
        (Some("1"), Some("g1")),
        "{grpc}"
    );
    // Statistics, load and index, from both clients: the HTTP client's five infers, then the
    // gRPC client's one, all counted to v1.
    let index = serde_json::json!([["admissions", "1", "READY"]]);
    assert_eq!(
        results["statistics"],
        serde_json::json!([{"version": "1", "success": 5, "rows": 5}]),
        "{results}"
    );
    assert_eq!(results["index"], index, "{results}");
    assert_eq!(
        grpc["statistics"],
        serde_json::json!([{"version": "1", "success": 6, "rows": 6}]),
        "{grpc}"
    );
    assert_eq!(grpc["index"], index, "{grpc}");
    for series in ["nv_inference_request_success", "nv_inference_count", "nv_inference_exec_count"]
    {
        assert!(
            metrics.contains(&format!("{series}{{model=\"admissions\",version=\"1\"}} 6\n")),
            "{series}:\n{metrics}"
        );
    }
    assert!(
        metrics.contains("logitflow_inference_request_duration_seconds_bucket{model=\"admissions\",version=\"1\",le=\"+Inf\"} 6\n"),
        "{metrics}"
    );
}

/// A model trained with an offset (Spector's data with `--offset o`), asked by tritonclient:
/// the metadata lists the offset among the inputs and names it, a row with it gets statsmodels'
/// `predict(offset=…)` (`toolkit.json`), and a row without it is a 422 naming the offset.
#[test]
fn tritonclient_sends_the_offset_and_is_refused_without_it() {
    let python = &common::test_tools().python;
    let home = tempfile::tempdir().expect("tempdir");
    let data = common::fixture("spector_toolkit.csv");
    let data = data.to_str().expect("utf8");
    let features =
        ["--label", "GRADE", "--features", "GPA,TUCE,PSI", "--offset", "o", "--model", "offset"];
    let trained = common::run(
        home.path(),
        &[&["run", "--data", data, "--test-data", data][..], &features].concat(),
    );
    assert!(trained.status.success(), "{}", common::stderr(&trained));
    let (mut serve, addr, _) = serve(home.path());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/triton_offset.py");
    let out =
        Command::new(python).arg(script).arg(&addr).arg("offset").output().expect("python runs");
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(out.status.success(), "tritonclient failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(results["inputs"], serde_json::json!(["GPA", "TUCE", "PSI", "o"]), "{results}");
    assert_eq!(results["offset"], "o", "{results}");
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("toolkit.json")).expect("toolkit.json"),
    )
    .expect("parses");
    let expected = reference["offset"]["predict"]["probability"].as_f64().unwrap_or(f64::NAN);
    let p = results["probability"].as_f64().unwrap_or(f64::NAN);
    assert!((p - expected).abs() <= 1e-9, "served {p} vs statsmodels' {expected}");
    let refused = &results["without_offset"];
    assert_eq!(refused["status"], "422", "{results}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no input tensor named the offset \"o\""),
        "{results}"
    );
}

/// The body of `GET path` from `addr`, over a plain HTTP/1.1 connection.
fn http_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    answer.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

#[test]
fn a_request_with_no_content_type_is_read_as_json() {
    let home = tempfile::tempdir().expect("tempdir");
    let (mut serve, addr, _) = serve_worked_example(home.path());
    let body = r#"{"inputs":[{"name":"score","shape":[1,1],"datatype":"FP64","data":[80]}]}"#;
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        stream,
        "POST /v2/models/admissions/infer HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("0.9975"), "{answer}");
}

/// A K-class model (the penguins' species) to tritonclient over HTTP (binary and JSON) and
/// gRPC: `probability` [N, K] whose rows sum to 1 and equal `logitflow predict`'s, the same bits
/// on every path; `label` the most probable class; the classification extension's top two.
#[test]
fn tritonclient_gets_each_class_s_probability_its_label_and_the_top_classes() {
    let python = &common::test_tools().python;
    let home = tempfile::tempdir().expect("tempdir");
    let data = common::fixture("penguins.csv");
    let data = data.to_str().expect("utf8");
    let features = "bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g";
    let args = [
        "run",
        "--data",
        data,
        "--label",
        "species",
        "--features",
        features,
        "--missing",
        "drop",
        "--l2",
        "0.003",
    ];
    let trained = common::run(home.path(), &[&args[..], &["--model", "species"]].concat());
    assert!(trained.status.success(), "{}", common::stderr(&trained));
    let predicted = common::run(
        home.path(),
        &["predict", "--model", "species", "--json", "39.1", "18.7", "181", "3750"],
    );
    assert!(predicted.status.success(), "{}", common::stderr(&predicted));
    let predicted = common::json(&predicted);
    let (mut serve, addr, grpc) = serve(home.path());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/triton_classes.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&addr)
        .arg(&grpc)
        .arg("species")
        .output()
        .expect("python runs");
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(out.status.success(), "tritonclient failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(results["outputs"][0]["shape"], serde_json::json!([-1, 3]), "{results}");
    assert_eq!(results["outputs"][1]["datatype"], "BYTES", "{results}");
    assert_eq!(
        results["classes"]["several"],
        serde_json::json!(["Adelie", "Chinstrap", "Gentoo"]),
        "{results}"
    );
    let binary = &results["http_binary"];
    for path in ["http_json", "http_default", "grpc"] {
        assert_eq!(&results[path], binary, "{path} differs from HTTP binary");
    }
    let rows = binary["probability"].as_array().expect("rows");
    assert_eq!(rows.len(), 5);
    for row in rows {
        let p: Vec<f64> = row
            .as_array()
            .expect("a row")
            .iter()
            .map(|v| v.as_f64().expect("a probability"))
            .collect();
        assert_eq!(p.len(), 3);
        assert!((p.iter().sum::<f64>() - 1.0).abs() <= 1e-12, "{p:?}");
    }
    let first: Vec<f64> =
        rows[0].as_array().expect("a row").iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect();
    let by_predict: Vec<f64> = predicted["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c["probability"].as_f64().unwrap_or(f64::NAN))
        .collect();
    assert_eq!(first, by_predict, "tritonclient and logitflow predict");
    assert_eq!(
        binary["label"],
        serde_json::json!(["Adelie", "Chinstrap", "Gentoo", "Gentoo", "Chinstrap"]),
        "{results}"
    );
    // Triton's classification extension: "score:index:label", the most probable first.
    for path in ["classification_http", "classification_grpc"] {
        let top = results[path].as_array().expect("rows");
        assert_eq!(top.len(), 5, "{path}");
        let best = top[0][0].as_str().unwrap_or_default();
        assert_eq!(best, format!("{}:0:Adelie", first[0]), "{path}");
        assert!(
            top[0][1].as_str().unwrap_or_default().ends_with(":1:Chinstrap"),
            "{path}: {results}"
        );
    }
}

/// A CSV of `rows` rows: two numeric features and `shop`, one of `levels` shops (each with an
/// effect of its own), and a 0/1 label drawn from the logistic model of them; by a fixed
/// generator, so the file is the same every run.
fn shops_csv(dir: &std::path::Path, rows: usize, levels: usize) -> std::path::PathBuf {
    use std::fmt::Write as _;
    // SplitMix64: uniform 64-bit draws.
    let mut state = 0x5eed_u64;
    let mut uniform = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let effects: Vec<f64> = (0..levels).map(|_| uniform() - 0.5).collect();
    let mut text = String::from("x0,x1,shop,y\n");
    for _ in 0..rows {
        let (x0, x1, shop) =
            (uniform() * 4.0 - 2.0, uniform() * 100.0, (uniform() * levels as f64) as usize);
        let z = 0.3 + 0.8 * x0 - 0.01 * (x1 - 50.0) + effects[shop];
        let y = u8::from(uniform() < 1.0 / (1.0 + (-z).exp()));
        let _ = writeln!(text, "{x0:.6},{x1:.4},s{shop:04},{y}");
    }
    common::write(dir, "shops.csv", &text)
}

#[test]
fn a_text_column_of_5000_levels_fits_serves_by_name_and_bytes_and_scores_in_batch() {
    let python = &common::test_tools().python;
    let home = tempfile::tempdir().expect("tempdir");
    let data = shops_csv(home.path(), 200_000, 5_000);
    // A test file of rows the training file has, and one at a shop it never saw.
    let text = std::fs::read_to_string(&data).expect("the data");
    let mut test: String = text.lines().take(201).map(|l| format!("{l}\n")).collect();
    test.push_str("0.1,50,s9999,1\n");
    let test = common::write(home.path(), "test.csv", &test);
    let (data, test) = (data.to_str().expect("utf8"), test.to_str().expect("utf8"));
    let args = ["run", "--data", data, "--test-data", test, "--label", "y", "--json"];
    let trained = common::run(home.path(), &args);
    assert!(trained.status.success(), "{}", common::stderr(&trained));
    let report = common::json(&trained);
    // The row at an unseen shop is left out of the metrics, and said to be.
    assert_eq!(report["metrics"]["rows"], 200);
    assert_eq!(
        report["unscored"], "1 row not scored: a level training never saw (shop: s9999)",
        "{}",
        report["rows"]
    );
    assert_eq!(report["stop_reason"], "converged", "{}", report["model"]);
    assert_eq!(report["model"]["solver_choice"]["solver"], "lbfgs");
    let terms = report["model"]["terms"].as_array().expect("terms");
    assert_eq!(terms.len(), 1 + 2 + 4_999, "the intercept, two numbers and a term a level but one");
    // By name, as `logitflow predict` asks serve's /v1/predict.
    let row = ["--feature", "x0=0.5", "--feature", "x1=20", "--feature", "shop=s0042"];
    let predicted =
        common::run(home.path(), &[&["predict", "--model", "shops", "--json"], &row[..]].concat());
    assert!(predicted.status.success(), "{}", common::stderr(&predicted));
    let by_name = common::json(&predicted)["probability"].as_f64().expect("a probability");
    // The same row by hand from the report's coefficients: the level's own one is added.
    let coefficient = |name: &str| {
        terms.iter().find(|t| t["term"] == name).and_then(|t| t["estimate"].as_f64()).expect(name)
    };
    let z = coefficient("(intercept)")
        + 0.5 * coefficient("x0")
        + 20.0 * coefficient("x1")
        + coefficient("shop=s0042");
    assert!((by_name - 1.0 / (1.0 + (-z).exp())).abs() <= 1e-12, "{by_name} vs logit {z}");
    let (mut serve, addr, grpc) = serve(home.path());
    let rows = r#"[[0.5, 20.0, "s0042"], [-1.0, 80.0, "s0000"], [1.5, 50.0, "s4999"]]"#;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/triton_sparse.py");
    let out = Command::new(python).args([script, &addr, &grpc, "shops", rows]).output();
    let _ = serve.kill();
    let _ = serve.wait();
    let out = out.expect("python runs");
    assert!(out.status.success(), "tritonclient failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(results["inputs"][2], serde_json::json!({"name": "shop", "datatype": "BYTES"}));
    assert_eq!(results["http_binary"][0].as_f64(), Some(by_name), "{results}");
    for path in ["http_json", "grpc"] {
        assert_eq!(results[path], results["http_binary"], "{path} differs from HTTP binary");
    }
    let unseen = results["unseen"]["message"].as_str().unwrap_or_default();
    assert!(unseen.contains("\"no-such-shop\" was not seen in training"), "{results}");
    assert!(unseen.contains("… and 4980 more"), "the known levels listed, not 5,000: {unseen}");
    // In batch: the file's rows again, with their probability, the first row's as predicted.
    let batch = common::write(home.path(), "batch.csv", "x0,x1,shop\n0.5,20,s0042\n1.5,50,s4999\n");
    let scored = home.path().join("scored.csv");
    let args = ["score", batch.to_str().expect("utf8"), "--out", scored.to_str().expect("utf8")];
    let out = common::run(home.path(), &[&args[..], &["--model", "shops"]].concat());
    assert!(out.status.success(), "{}", common::stderr(&out));
    let scored = std::fs::read_to_string(&scored).expect("scored file");
    let first: f64 = scored
        .lines()
        .nth(1)
        .and_then(|l| l.rsplit(',').next())
        .and_then(|p| p.parse().ok())
        .expect("a probability");
    assert!((first - by_name).abs() <= 1e-12, "{scored}");
}
