//! The request's input tensors decoded into rows of terms: one typed decoding for the three
//! ways they arrive (JSON, binary data after it, gRPC), which all give [`InferInput`]s whose
//! values are a [`TensorData`](logitflow_kit::tensor::TensorData) already.

use crate::MAX_ROWS;
use logitflow_core::model::{Model, PredictError};
use logitflow_core::scale::{EncodeError, Value};
use logitflow_kit::ApiError;
use logitflow_kit::tensor::Datatype;
use logitflow_kit::wire::InferInput;

pub(crate) fn invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::invalid("INVALID_INPUT", message)
}

/// The error of a value that cannot be predicted from: an unseen level is named as such.
pub(crate) fn unusable(row: usize, e: PredictError) -> ApiError {
    match e {
        PredictError::Encode(e @ EncodeError::UnseenLevel { .. }) => {
            ApiError::invalid("UNKNOWN_LEVEL", format!("row {row}: {e}"))
        }
        e => invalid(format!("row {row}: {e}")),
    }
}

/// Turns the request's tensors into rows of terms in the data's units. A numeric model takes
/// one tensor `[N, d]` (or `[d]` for one row), or one tensor `[N]`/`[N, 1]` per feature, named
/// by feature; a model with text features takes one tensor per feature, `BYTES` for text.
pub fn decode_inputs(
    inputs: Vec<InferInput>,
    model: &Model,
) -> Result<(Vec<f64>, usize), ApiError> {
    if !model.takes_numbers_only() {
        return decode_named_values(inputs, model);
    }
    let d = model.width();
    let (mut x, rows) = match inputs.len() {
        0 => return Err(invalid("inputs is empty: send one tensor of shape [N, features]")),
        1 => one_matrix(inputs.into_iter().next().expect("one tensor"), model)?,
        n if n == d => columns_by_name(inputs, model)?,
        n => {
            return Err(invalid(missing_input(&inputs, model).unwrap_or_else(|| {
                format!("{n} input tensors; expected 1 (shape [N, {d}]) or {d} (one per feature)")
            })));
        }
    };
    check_row_count(rows)?;
    for (i, row) in x.chunks_exact(d).enumerate() {
        model.check_row(row).map_err(|e| invalid(format!("row {i}: {e}")))?;
    }
    // A row of terms carries the offset last.
    if let Some(j) = model.transform.offset_input() {
        x.chunks_exact_mut(d).for_each(|row| row[j..].rotate_left(1));
    }
    Ok((x, rows))
}

/// The rows of one tensor `[N, d]` (or `[d]`, one row): its values as they are.
fn one_matrix(mut t: InferInput, model: &Model) -> Result<(Vec<f64>, usize), ApiError> {
    let d = model.width();
    // Values first: a tensor too large to hold is refused as that (413), whatever its shape.
    let values = numbers_of(&mut t)?;
    let (name, shape) = (&t.name, &t.shape);
    let rows = match shape.as_slice() {
        [n, w] if *w == d => *n,
        [w] if *w == d && d > 1 => 1,
        [n] if d == 1 => *n,
        _ => {
            return Err(invalid(format!(
                "tensor {name:?} has shape {shape:?}; expected [N, {d}] ({})",
                model.feature_names.join(", ")
            )));
        }
    };
    Ok((values, rows))
}

/// The rows of one tensor `[N]` or `[N, 1]` per feature, each named after its feature.
fn columns_by_name(inputs: Vec<InferInput>, model: &Model) -> Result<(Vec<f64>, usize), ApiError> {
    let d = model.width();
    let columns: Vec<(InferInput, Vec<f64>)> = inputs
        .into_iter()
        .map(|mut t| numbers_of(&mut t).map(|values| (t, values)))
        .collect::<Result<_, ApiError>>()?;
    let rows = columns[0].1.len();
    let mut x = vec![0.0; rows * d];
    for (j, feature) in model.feature_names.iter().enumerate() {
        let (InferInput { shape, .. }, values) = columns.iter().find(|(t, _)| t.name == *feature).ok_or_else(|| {
            invalid(format!(
                "no input tensor named {feature:?}; with one tensor per feature, name each after its feature"
            ))
        })?;
        if values.len() != rows || !(shape.len() == 1 || *shape == [rows, 1]) {
            return Err(invalid(format!(
                "tensor {feature:?} has shape {shape:?}; expected [{rows}]"
            )));
        }
        for (i, v) in values.iter().enumerate() {
            x[i * d + j] = *v;
        }
    }
    Ok((x, rows))
}

/// Refuses a request of no rows, or of more than [`MAX_ROWS`].
fn check_row_count(rows: usize) -> Result<(), ApiError> {
    if rows == 0 {
        return Err(invalid("no rows to predict"));
    }
    if rows > MAX_ROWS {
        return Err(ApiError::PayloadTooLarge(format!(
            "{rows} rows in one request; send at most {MAX_ROWS}"
        )));
    }
    Ok(())
}

/// What is missing from tensors named after `model`'s inputs but too few: its first input no
/// tensor is named after ("the offset" when it is that). `None` when no tensor is named after an
/// input (one matrix, say), whose problem is another.
fn missing_input(inputs: &[InferInput], model: &Model) -> Option<String> {
    if !inputs.iter().any(|t| model.feature_names.contains(&t.name)) {
        return None;
    }
    let j =
        (0..model.width()).find(|&j| inputs.iter().all(|t| t.name != model.feature_names[j]))?;
    let what = if model.transform.offset_input() == Some(j) { "the offset " } else { "" };
    Some(format!(
        "no input tensor named {what}{:?}; this model takes one per input: {}",
        model.feature_names[j],
        model.feature_names.join(", ")
    ))
}

/// One tensor per feature, of numbers or text, encoded row by row.
fn decode_named_values(
    inputs: Vec<InferInput>,
    model: &Model,
) -> Result<(Vec<f64>, usize), ApiError> {
    let d = model.width();
    if inputs.len() < d
        && let Some(missing) = missing_input(&inputs, model)
    {
        return Err(invalid(missing));
    }
    if inputs.len() != d {
        return Err(invalid(format!(
            "{} input tensor(s); this model has text features or an offset, so send one tensor per feature, named \
             after it (BYTES for text, FP64 for numbers): {}",
            inputs.len(),
            model.feature_names.join(", ")
        )));
    }
    let mut inputs: Vec<Option<InferInput>> = inputs.into_iter().map(Some).collect();
    let mut columns = Vec::with_capacity(d);
    for feature in &model.feature_names {
        let mut t = inputs
            .iter_mut()
            .find(|t| t.as_ref().is_some_and(|t| t.name == *feature))
            .and_then(Option::take)
            .ok_or_else(|| invalid(format!("no input tensor named {feature:?}")))?;
        columns.push(cells_of(&mut t)?);
    }
    let rows = columns[0].len();
    if let Some((j, c)) = columns.iter().enumerate().find(|(_, c)| c.len() != rows) {
        return Err(invalid(format!(
            "tensor {:?} has {} values; {:?} has {rows}",
            model.feature_names[j],
            c.len(),
            model.feature_names[0]
        )));
    }
    check_row_count(rows)?;
    let mut x = Vec::with_capacity(rows * model.row_width());
    let mut row = Vec::with_capacity(d);
    for i in 0..rows {
        row.clear();
        row.extend(columns.iter_mut().map(|c| std::mem::replace(&mut c[i], Value::Number(0.0))));
        model.encode_row(&row, &mut x).map_err(|e| unusable(i, e))?;
    }
    Ok((x, rows))
}

/// The values a tensor's shape says it holds; a shape that overflows, or holds more than one
/// request may carry (`MAX_ROWS` rows of up to 64 values), is refused before any allocation.
pub(crate) fn element_count(name: &str, shape: &[usize]) -> Result<usize, ApiError> {
    shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .filter(|&n| n <= MAX_ROWS * 64)
        .ok_or_else(|| {
            ApiError::PayloadTooLarge(format!("tensor {name:?} of shape {shape:?} is too large"))
        })
}

/// The cells of one tensor, numbers or (for `BYTES`) text, checked against its shape.
fn cells_of(t: &mut InferInput) -> Result<Vec<Value>, ApiError> {
    if t.datatype != Datatype::Bytes {
        return Ok(numbers_of(t)?.into_iter().map(Value::Number).collect());
    }
    let expected = element_count(&t.name, &t.shape)?;
    let texts = std::mem::take(&mut t.data).texts().map_err(|value| {
        invalid(format!(
            "tensor {:?}: data holds {value}, not text (the datatype is BYTES)",
            t.name
        ))
    })?;
    check_count(&t.name, &t.shape, texts.len(), expected)?;
    Ok(texts.into_iter().map(Value::Text).collect())
}

/// The numbers of one tensor, checked against its shape and datatype: taken out of it (moved,
/// for FP64), its name and shape left for what follows to name.
fn numbers_of(t: &mut InferInput) -> Result<Vec<f64>, ApiError> {
    if !t.datatype.is_number() {
        return Err(invalid(format!(
            "tensor {:?} has datatype {:?}; expected a numeric type such as FP64",
            t.name,
            t.datatype.name()
        )));
    }
    let expected = element_count(&t.name, &t.shape)?;
    let values = std::mem::take(&mut t.data).numbers().map_err(|value| {
        invalid(format!("tensor {:?}: data holds {value}, not a number", t.name))
    })?;
    check_count(&t.name, &t.shape, values.len(), expected)?;
    Ok(values)
}

fn check_count(name: &str, shape: &[usize], count: usize, expected: usize) -> Result<(), ApiError> {
    if count != expected {
        return Err(invalid(format!(
            "tensor {name:?} has {count} values but its shape {shape:?} needs {expected}"
        )));
    }
    Ok(())
}
