//! The binary tensor data extension, as Triton and KServe speak it: an input's values may come
//! after the JSON header as raw little-endian bytes (`parameters.binary_data_size`; `BYTES`
//! elements each with a 4-byte length), and outputs go back that way when asked
//! (`parameters.binary_data` on an output, or `binary_data_output` on the request), with
//! `Inference-Header-Content-Length` saying where the JSON ends. The bytes become typed
//! tensors by [`TensorData::from_le_bytes`], as gRPC's raw contents do.

use crate::inputs::{element_count, invalid};
use crate::outputs::Values;
use axum::http::HeaderValue;
use axum::response::Response;
use logitflow_kit::ApiError;
use logitflow_kit::tensor::TensorData;
use logitflow_kit::wire::{InferInput, InferRequest, InferResponse};

/// The header of the binary tensor data extension: the length of the JSON at the body's start.
/// A `HeaderName` made once: looked up by a `&str`, the name would be parsed on every request.
pub(crate) static HEADER_LENGTH: axum::http::HeaderName =
    axum::http::HeaderName::from_static("inference-header-content-length");

/// An infer body split into its JSON and the binary data after it, as the header says; the
/// whole body is JSON without the header.
pub(crate) fn split_body<'b>(
    headers: &axum::http::HeaderMap,
    body: &'b [u8],
) -> Result<(&'b [u8], &'b [u8]), ApiError> {
    let Some(v) = headers.get(&HEADER_LENGTH) else { return Ok((body, &[])) };
    let n: usize =
        v.to_str().ok().and_then(|v| v.trim().parse().ok()).filter(|&n| n <= body.len()).ok_or_else(
            || {
                ApiError::BadRequest(format!(
                    "{HEADER_LENGTH} must be the length of the JSON header, at most the body's {} bytes",
                    body.len()
                ))
            },
        )?;
    Ok(body.split_at(n))
}

pub(crate) fn size_of(input: &InferInput) -> Option<u64> {
    input.parameters.as_ref()?.binary_data_size
}

/// Moves each binary input's values from `binary` into its `data`, in the inputs' order.
pub(crate) fn attach_inputs(inputs: &mut [InferInput], mut binary: &[u8]) -> Result<(), ApiError> {
    for input in inputs.iter_mut() {
        let Some(size) = size_of(input) else { continue };
        let size = usize::try_from(size).ok().filter(|&s| s <= binary.len()).ok_or_else(|| {
            invalid(format!(
                "input {:?}: binary_data_size {size} is more than the {} bytes after the JSON header",
                input.name,
                binary.len()
            ))
        })?;
        let (bytes, rest) = binary.split_at(size);
        binary = rest;
        let count = element_count(&input.name, &input.shape)?;
        input.data = TensorData::from_le_bytes(input.datatype, bytes, count)
            .map_err(|e| invalid(format!("input {:?}: {e}", input.name)))?;
    }
    if !binary.is_empty() {
        return Err(invalid(format!(
            "{} bytes after the JSON header belong to no input's binary_data_size",
            binary.len()
        )));
    }
    Ok(())
}

/// Whether the request asks for its outputs as binary data: an output asks with
/// `binary_data`, or the request for all with `binary_data_output`.
pub(crate) fn output_wanted(request: &InferRequest) -> bool {
    let on_request =
        request.parameters.as_ref().and_then(|p| p.binary_data_output).unwrap_or(false);
    match request.outputs.as_deref() {
        None | Some([]) => on_request,
        Some(outputs) => outputs
            .iter()
            .any(|o| o.parameters.as_ref().and_then(|p| p.binary_data).unwrap_or(on_request)),
    }
}

/// The JSON header of a binary answer.
pub(crate) fn header_of(response: &InferResponse) -> Result<Vec<u8>, ApiError> {
    // Sized for a header of every output's name, shape and size, so that it is not grown
    // and copied on the way.
    let mut header = Vec::with_capacity(128 + 96 * response.outputs.len());
    serde_json::to_writer(&mut header, response).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(header)
}

/// The response as a JSON `header` followed by `raw`, the outputs' bytes.
pub(crate) fn respond(header: &[u8], raw: &[Values]) -> Response {
    use axum::http::header::CONTENT_TYPE;
    // One buffer for the header and the values, frozen as axum's `Json` does its own; the
    // values are written into it straight, with no buffer of their own.
    let raw_len: usize = raw.iter().map(Values::raw_len).sum();
    let mut body = bytes::BytesMut::with_capacity(header.len() + raw_len);
    body.extend_from_slice(header);
    raw.iter().for_each(|values| values.write_raw(&mut body));
    let mut answer = Response::new(axum::body::Body::from(body.freeze()));
    let headers = answer.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(HEADER_LENGTH.clone(), length_value(header.len()));
    answer
}

/// The header's value for a JSON header of `length` bytes. The small lengths' digits are
/// written once, as formatting them costs an allocation per request, and held as static text:
/// a value made from it refers to it, where a clone of a shared value counts a reference that
/// both cores write on every answer.
fn length_value(length: usize) -> HeaderValue {
    static SMALL: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let small = SMALL
        .get_or_init(|| (0..1024usize).map(|n| -> &'static str { n.to_string().leak() }).collect());
    small.get(length).map_or_else(|| HeaderValue::from(length), |s| HeaderValue::from_static(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_length_is_written_as_its_digits_whether_held_or_formatted() {
        for length in (0..1100).chain([9_999, 123_456_789]) {
            assert_eq!(length_value(length), HeaderValue::from(length), "{length}");
        }
    }
}
