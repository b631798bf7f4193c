//! What an infer request gets back: [`Output`]s of a model's rows, typed once and written by
//! the JSON, binary and gRPC paths alike.
//!
//! - `probability` (FP64): a binary model's P(positive class), `[N, 1]`; a K-class model's
//!   probability of each class, `[N, K]`, in the classes' order.
//! - `label` (BYTES, `[N]`): the most probable class's name.
//! - Triton's classification extension: an output asked for with `classification: k` comes as
//!   BYTES `[N, k]`, each element `"score:index:label"`, the k most probable classes first.

use bytes::BufMut;
use logitflow_core::metrics::most_probable;
use logitflow_core::model::Model;
use logitflow_kit::ApiError;
use logitflow_kit::tensor::Datatype;
use logitflow_kit::wire::{InferRequest, OutputData};

/// One output's values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Values {
    Fp64(Vec<f64>),
    Bytes(Vec<String>),
}

impl Values {
    pub(crate) fn datatype(&self) -> Datatype {
        match self {
            Values::Fp64(_) => Datatype::Fp64,
            Values::Bytes(_) => Datatype::Bytes,
        }
    }

    /// How many bytes [`Values::write_raw`] writes.
    pub(crate) fn raw_len(&self) -> usize {
        match self {
            Values::Fp64(values) => values.len() * 8,
            Values::Bytes(texts) => texts.iter().map(|t| 4 + t.len()).sum(),
        }
    }

    /// The values as the binary extension carries them: little-endian FP64s, or each BYTES
    /// element as its 4-byte little-endian length and then its bytes.
    pub(crate) fn write_raw(&self, out: &mut impl BufMut) {
        match self {
            Values::Fp64(values) => {
                for v in values {
                    out.put_slice(&v.to_le_bytes());
                }
            }
            Values::Bytes(texts) => {
                for text in texts {
                    out.put_slice(&(text.len() as u32).to_le_bytes());
                    out.put_slice(text.as_bytes());
                }
            }
        }
    }

    pub(crate) fn into_data(self) -> OutputData {
        match self {
            Values::Fp64(values) => OutputData::Numbers(values),
            Values::Bytes(texts) => OutputData::Texts(texts),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Output {
    pub(crate) name: &'static str,
    pub(crate) shape: Vec<usize>,
    pub(crate) values: Values,
}

/// An output a request names, and whether it asks for its top classes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wanted {
    pub(crate) name: String,
    pub(crate) classification: Option<u64>,
}

pub(crate) const PROBABILITY: &str = "probability";
pub(crate) const LABEL: &str = "label";

/// The outputs a model answers with when none are named: a binary model its probability, a
/// K-class model each class's probability and the most probable class.
pub(crate) fn default_outputs(model: &Model) -> Vec<&'static str> {
    if model.class_count() > 2 { vec![PROBABILITY, LABEL] } else { vec![PROBABILITY] }
}

/// The outputs an HTTP request names (none: the model's defaults).
pub(crate) fn wanted_of(request: &InferRequest) -> Vec<Wanted> {
    request
        .outputs
        .iter()
        .flatten()
        .map(|o| Wanted {
            name: o.name.clone(),
            classification: o.parameters.as_ref().and_then(|p| p.classification),
        })
        .collect()
}

/// The outputs for `rows` rows of terms `x` (in the data's units) under `model`, as `wanted`
/// names them, or the model's defaults.
pub(crate) fn answer(
    model: &Model,
    x: &[f64],
    rows: usize,
    wanted: &[Wanted],
) -> Result<Vec<Output>, ApiError> {
    let width = model.row_width().max(1);
    if wanted.is_empty() && model.class_count() == 2 {
        // The binary model's one output, computed straight into its buffer.
        let values = x.chunks_exact(width).map(|row| model.probability_raw(row)).collect();
        return Ok(vec![Output {
            name: PROBABILITY,
            shape: vec![rows, 1],
            values: Values::Fp64(values),
        }]);
    }
    let k = model.class_count();
    let mut probabilities = vec![0.0; rows * k];
    for (row, out) in x.chunks_exact(width).zip(probabilities.chunks_exact_mut(k)) {
        model.probabilities_raw(row, out);
    }
    let wanted: Vec<Wanted> = if wanted.is_empty() {
        default_outputs(model)
            .into_iter()
            .map(|name| Wanted { name: name.into(), classification: None })
            .collect()
    } else {
        wanted.to_vec()
    };
    wanted.iter().map(|w| output(model, &probabilities, rows, w)).collect()
}

fn output(
    model: &Model,
    probabilities: &[f64],
    rows: usize,
    wanted: &Wanted,
) -> Result<Output, ApiError> {
    let k = model.class_count();
    let names = model.class_list();
    let name = match wanted.name.as_str() {
        PROBABILITY => PROBABILITY,
        LABEL => LABEL,
        other => {
            let known = default_outputs(model).join(", ");
            return Err(ApiError::invalid(
                "INVALID_INPUT",
                format!("the model has no output {other:?}; it has {known}"),
            ));
        }
    };
    if let Some(top) = wanted.classification {
        let top = usize::try_from(top).unwrap_or(usize::MAX).clamp(1, k);
        let texts =
            probabilities.chunks_exact(k).flat_map(|row| top_classes(row, top, &names)).collect();
        return Ok(Output { name, shape: vec![rows, top], values: Values::Bytes(texts) });
    }
    Ok(match name {
        LABEL => {
            let texts = probabilities
                .chunks_exact(k)
                .map(|row| names[most_probable(row)].clone())
                .collect();
            Output { name, shape: vec![rows], values: Values::Bytes(texts) }
        }
        _ if k == 2 => {
            let values = probabilities.chunks_exact(2).map(|row| row[1]).collect();
            Output { name, shape: vec![rows, 1], values: Values::Fp64(values) }
        }
        _ => Output { name, shape: vec![rows, k], values: Values::Fp64(probabilities.to_vec()) },
    })
}

/// A row's `top` most probable classes as Triton writes them: `"score:index:label"`, the most
/// probable first (a tie in class order).
fn top_classes(row: &[f64], top: usize, names: &[String]) -> Vec<String> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    order.into_iter().take(top).map(|c| format!("{}:{c}:{}", row[c], names[c])).collect()
}
