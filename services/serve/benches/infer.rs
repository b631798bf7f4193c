//! serve's infer route in-process, without the network: the same one-row request as JSON and
//! with binary tensors (in and out, tritonclient.http's defaults), and the same at 1,000 rows.
//! What one request costs serve's code between the socket and the socket;
//! `logitflow-bench serve --binary` measures the same over real connections.
//!
//! `cargo bench -p logitflow-serve --bench infer`

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, Request};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use logitflow_core::model::Model;
use logitflow_kit::Config;
use logitflow_store::registry::{Registry, STABLE};
use logitflow_store::{Kind, Store};
use tower::ServiceExt;

/// The JSON body and the binary one (its JSON header's length too) for `rows` rows.
fn bodies(rows: usize) -> (Vec<u8>, (Vec<u8>, usize)) {
    let values: Vec<f64> = (0..rows).map(|i| 40.0 + (i % 60) as f64).collect();
    let json = serde_json::to_vec(&serde_json::json!({
        "inputs": [{"name": "score", "shape": [rows, 1], "datatype": "FP64", "data": values}],
    }))
    .expect("json");
    let mut binary = serde_json::to_vec(&serde_json::json!({
        "inputs": [{"name": "score", "shape": [rows, 1], "datatype": "FP64", "parameters": {"binary_data_size": rows * 8}}],
        "parameters": {"binary_data_output": true},
    }))
    .expect("json");
    let header_length = binary.len();
    binary.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    (json, (binary, header_length))
}

fn infer(c: &mut Criterion) {
    let home = tempfile::tempdir().expect("tempdir");
    let store = Store::open(home.path()).expect("store");
    let id = store
        .put_json(
            Kind::Model,
            "bench",
            vec![],
            serde_json::json!({}),
            "model.json",
            &Model::worked_example(),
        )
        .expect("model");
    let registry = Registry::open(home.path());
    registry.register("admissions", &id, None, None).expect("register");
    registry.set_alias("admissions", STABLE, 1).expect("alias");
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let state = logitflow_serve::AppState::new(&Config::for_home(home.path())).expect("state");
    runtime.block_on(state.load_all()).expect("loaded");
    let app = logitflow_serve::app(state);
    // The header's name and value made once, outside the timing: what a client spends on its
    // request is not serve's.
    let length_header = HeaderName::from_static("inference-header-content-length");
    // Every request carries a header, as any over a socket does (Host, Content-Length): a
    // request with none would skip the header map the other one pays for.
    let call = |body: &[u8], header_length: Option<&HeaderValue>| {
        let mut request = Request::post("/v2/models/admissions/infer")
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(n) = header_length {
            request = request.header(&length_header, n.clone());
        }
        let request = request.body(Body::from(body.to_vec())).expect("request");
        runtime.block_on(async {
            let response = app.clone().oneshot(request).await.expect("infallible");
            assert!(response.status().is_success());
            response.into_body().collect().await.expect("body").to_bytes().len()
        })
    };
    for rows in [1, 1000] {
        let (json, (binary, header_length)) = bodies(rows);
        let header_length = HeaderValue::from(header_length);
        let mut group = c.benchmark_group(format!("infer_{rows}_rows"));
        group.bench_function("json", |b| b.iter(|| call(&json, None)));
        group.bench_function("binary", |b| b.iter(|| call(&binary, Some(&header_length))));
        group.finish();
    }
}

criterion_group!(benches, infer);
criterion_main!(benches);
