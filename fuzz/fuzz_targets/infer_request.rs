//! Any bytes as an inference request body: decoding either fails with an error or yields
//! rows that fit the model, never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use logitflow_core::model::Model;
use logitflow_kit::wire::InferRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<InferRequest>(data) else { return };
    let model = Model::worked_example();
    let Ok((x, rows)) = logitflow_serve::decode_inputs(request.inputs, &model) else { return };
    assert_eq!(x.len(), rows * model.term_count(), "rows × terms values");
    assert!(x.iter().all(|v| v.is_finite()), "only finite values reach the model");
    assert!(x.chunks_exact(model.width()).all(|row| (0.0..=1.0).contains(&model.probability_raw(row))));
});
