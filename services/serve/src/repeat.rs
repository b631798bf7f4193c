//! A binary infer request whose JSON header repeats the last one's on this thread.
//!
//! tritonclient (and any client scoring the same shape again) sends the same JSON header with
//! every request: the names, shapes and sizes are the same, only the bytes after it change.
//! [`Remembered`] holds the last such header's parsed request and the JSON header of its
//! answer, so that a repeat is answered from the new bytes alone, with no JSON parsed or
//! written. Each worker thread remembers its own, so no request waits on another. The answer
//! is built by the same functions as any other's, and its outputs checked against the
//! remembered ones' names and shapes before the remembered header is sent with them.

use crate::binary;
use crate::inputs::decode_inputs;
use crate::outputs::{self, Output, Values, Wanted};
use axum::response::Response;
use logitflow_core::model::Model;
use logitflow_kit::ApiError;
use logitflow_kit::wire::{InferInput, InferRequest};
use std::cell::RefCell;
use std::sync::{Arc, Weak};

/// Longer headers are not remembered: each thread holds one, and a header of a request's
/// size would be held after it.
const MAX_HEADER: usize = 4096;

/// A binary request's header and what its answer's header was.
pub(crate) struct Remembered {
    /// The model that answered: held weakly, so an unloaded model's memory goes with it, and
    /// its address is not reused while this is held.
    pub(crate) model: Weak<Model>,
    pub(crate) version: u32,
    pub(crate) name: String,
    pub(crate) header: Vec<u8>,
    /// The inputs as the header says them, their values not yet attached.
    pub(crate) inputs: Vec<InferInput>,
    pub(crate) wanted: Vec<Wanted>,
    /// Each output's name and shape, which the answer's header states.
    pub(crate) outputs: Vec<(&'static str, Vec<usize>)>,
    pub(crate) answer_header: Vec<u8>,
}

thread_local! {
    static LAST: RefCell<Option<Remembered>> = const { RefCell::new(None) };
}

/// Whether a request whose outputs go back as binary data can be answered from its remembered
/// header: every input's values come after the header.
pub(crate) fn can_remember(request: &InferRequest, header: &[u8]) -> bool {
    header.len() <= MAX_HEADER
        && request.inputs.iter().all(|i| i.data.is_empty() && binary::size_of(i).is_some())
}

/// Whether the answer's outputs can be sent after a header written once: numbers only, whose
/// length the shape fixes (a text's length is its own).
pub(crate) fn fixed_length(answers: &[Output]) -> bool {
    answers.iter().all(|a| matches!(a.values, Values::Fp64(_)))
}

pub(crate) fn remember(remembered: Remembered) {
    LAST.with_borrow_mut(|last| *last = Some(remembered));
}

/// The answer to a request whose header (`header`, followed by `binary`) is the one this
/// thread remembers for `model` at `version` under `name`; `None` when it is not, or when the
/// answer's outputs are not those the remembered header states.
pub(crate) fn answer(
    model: &Arc<Model>,
    version: u32,
    name: &str,
    header: &[u8],
    binary: &[u8],
) -> Option<Result<(Response, usize), ApiError>> {
    LAST.with_borrow(|last| {
        let last = last.as_ref().filter(|last| {
            last.header == header
                && last.version == version
                && last.name == name
                && std::ptr::eq(last.model.as_ptr(), Arc::as_ptr(model))
        })?;
        last.answer(model, binary).transpose()
    })
}

impl Remembered {
    fn answer(&self, model: &Model, binary: &[u8]) -> Result<Option<(Response, usize)>, ApiError> {
        let mut inputs = self.inputs.clone();
        binary::attach_inputs(&mut inputs, binary)?;
        let (x, rows) = decode_inputs(inputs, model)?;
        let answers = outputs::answer(model, &x, rows, &self.wanted)?;
        let same = answers.len() == self.outputs.len()
            && fixed_length(&answers)
            && answers
                .iter()
                .zip(&self.outputs)
                .all(|(a, (name, shape))| a.name == *name && a.shape == *shape);
        if !same {
            return Ok(None);
        }
        let raw: Vec<Values> = answers.into_iter().map(|a| a.values).collect();
        Ok(Some((binary::respond(&self.answer_header, &raw), rows)))
    }
}

/// Whether this thread remembers `header`.
#[cfg(test)]
pub(crate) fn remembers(header: &[u8]) -> bool {
    LAST.with_borrow(|last| last.as_ref().is_some_and(|last| last.header == header))
}
