//! Helpers for the services' route tests: send one request through a router with
//! `tower::ServiceExt::oneshot` and read the status and JSON body; with the `testing`
//! feature, [`bodies`] generates arbitrary JSON bodies for property tests.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Sends `method path` with an optional JSON body; returns the status and the body as JSON
/// (`Null` when it is not JSON).
pub async fn call(
    app: &Router,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let (status, bytes) = call_raw(
        app,
        method,
        path,
        "application/json",
        body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
    )
    .await;
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// How long a test's call may take, its whole body read: an answer that never ends (a job's
/// event stream whose job never finishes) fails the test instead of holding it.
pub const CALL_BOUND: std::time::Duration = std::time::Duration::from_secs(120);

/// Sends raw bytes with a content type; returns the status and the body's bytes, or
/// `504 Gateway Timeout` and a message when the answer is not whole within [`CALL_BOUND`].
pub async fn call_raw(
    app: &Router,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(Body::from(body));
    let Ok(request) = request else {
        return (StatusCode::IM_A_TEAPOT, b"bad test request".to_vec());
    };
    let answer = async {
        let Ok(response) = app.clone().oneshot(request).await;
        let status = response.status();
        let bytes =
            response.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
        (status, bytes)
    };
    tokio::time::timeout(CALL_BOUND, answer).await.unwrap_or_else(|_| {
        let said = format!("{method} {path}: no whole answer within {} s", CALL_BOUND.as_secs());
        (StatusCode::GATEWAY_TIMEOUT, said.into_bytes())
    })
}

/// Property tests for JSON routes: every route promises a 2xx, or a 4xx whose JSON body names
/// the problem, for any body at all — never a 5xx, never a panic.
#[cfg(feature = "testing")]
pub mod bodies {
    use super::call;
    use axum::Router;
    use proptest::prelude::*;
    use std::future::Future;

    /// Arbitrary JSON, nested up to six deep, whose objects mostly use the route's own field
    /// names (so the generator reaches past "missing field" into each field's own checks),
    /// and whose leaves include `samples` (valid values such as `"FP64"` or a stored id).
    pub fn any_json(
        field_names: &'static [&'static str],
        samples: Vec<serde_json::Value>,
    ) -> impl Strategy<Value = serde_json::Value> {
        let names: Vec<String> = field_names.iter().map(|s| s.to_string()).collect();
        leaf(samples).prop_recursive(6, 64, 8, move |inner| {
            let key = prop_oneof![3 => proptest::sample::select(names.clone()), 1 => "[a-z]{1,6}"];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(key, inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// One JSON value that is no array or object: null, booleans, integers (small ones often),
    /// any finite number, short strings, and the route's `samples`.
    fn leaf(samples: Vec<serde_json::Value>) -> impl Strategy<Value = serde_json::Value> + Clone {
        prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (0u8..4).prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("JSON numbers are finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            "[a-zA-Z0-9 ./_-]{0,12}".prop_map(serde_json::Value::from),
            proptest::sample::select(if samples.is_empty() {
                vec![serde_json::Value::Null]
            } else {
                samples
            }),
            // Numbers at and past the usual bounds of a parameter.
            proptest::sample::select(vec![
                serde_json::json!(-1),
                serde_json::json!(-0.5),
                serde_json::json!(0.0),
                serde_json::json!(1e300),
                serde_json::json!(1_000_001)
            ]),
        ]
    }

    /// A valid body with some of its fields left out or replaced by [`any_json`] (one in eight
    /// each), or, for a nested object (train's `params`), one of its fields given another value
    /// (one in four), the rest kept: cases that get past the route's first check into its work (a
    /// fully random body rarely names two stored ids at once, and a random `params` object
    /// rarely holds only known fields, so it never reached the parameters' own checks).
    pub fn near(
        valid: serde_json::Value,
        field_names: &'static [&'static str],
        samples: Vec<serde_json::Value>,
    ) -> impl Strategy<Value = serde_json::Value> {
        let fields: Vec<(String, serde_json::Value)> =
            valid.as_object().cloned().unwrap_or_default().into_iter().collect();
        let n = fields.len();
        let nested = proptest::collection::vec((any::<usize>(), leaf(samples.clone())), n);
        (
            proptest::collection::vec(0u8..8, n),
            proptest::collection::vec(any_json(field_names, samples), n),
            nested,
        )
            .prop_map(move |(choices, randoms, nested)| {
                let mut out = serde_json::Map::new();
                for (((name, value), (choice, random)), (which, other)) in
                    fields.iter().zip(choices.into_iter().zip(randoms)).zip(nested)
                {
                    match (choice, value) {
                        (0, _) => {}
                        (1, _) => {
                            out.insert(name.clone(), random);
                        }
                        // One field at a time: a second wrong one would often hide the first's check.
                        (2 | 3, serde_json::Value::Object(object)) if !object.is_empty() => {
                            let mut changed = object.clone();
                            if let Some((_, field)) = changed.iter_mut().nth(which % object.len()) {
                                *field = other;
                            }
                            out.insert(name.clone(), serde_json::Value::Object(changed));
                        }
                        _ => {
                            out.insert(name.clone(), value.clone());
                        }
                    }
                }
                serde_json::Value::Object(out)
            })
    }

    /// Sends `body` to `method path` of the app that `setup` builds (on a fresh runtime, so it
    /// can run inside `proptest!`), and checks the promise. `setup` returns whatever must live
    /// as long as the app (a temp dir, say) with it.
    pub fn assert_answers<G, F: Future<Output = (G, Router)>>(
        setup: impl FnOnce() -> F,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let (_keep, app) = setup().await;
            let (status, out) = call(&app, method, path, Some(body.clone())).await;
            assert!(
                status.is_success() || status.is_client_error(),
                "{method} {path} {body} → {status} {out}"
            );
            if status.is_client_error() {
                assert!(
                    out["error"].as_str().is_some_and(|e| !e.is_empty()) && out["code"].is_string(),
                    "{method} {path} {body} → {status} {out}"
                );
            }
        });
    }
}
