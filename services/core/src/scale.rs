//! The model's terms and their scaling, fitted on the training split only: [`Transform`].
//!
//! A numeric feature is one term. A categorical feature is treatment-coded, as R's glm and
//! statsmodels' formulas do it: the levels seen in training ([`Encoding::Categorical`]), the
//! first of them the reference with no term, and one 0/1 term `column=level` for each other.
//! The levels travel with the model, so serving encodes exactly as training did, and a level
//! training never saw is refused ([`EncodeError::UnseenLevel`]) rather than guessed.
//!
//! A column of more than [`MAX_DENSE_LEVELS`] levels is coded the same way but held sparse
//! ([`Encoding::Sparse`]): its terms come after every dense term, and a row of terms holds the
//! level's index in one slot instead of a 0/1 value per term ([`Transform::slots`]).
//!
//! Every term is then scaled as `t' = (t − offset) / scale`, which is what lets a model undo
//! it and report its coefficients in the data's own units. A sparse term is scaled the same way
//! without being written out: the solvers and the model apply its offset and scale as sums
//! ([`crate::logistic::SparseTerms`]), so a column fits to the same model dense or sparse.

use crate::clean::Dataset;
use crate::table::{ColumnKind, DataError, MAX_IDENTIFIER_LEVELS};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Mean 0, standard deviation 1.
    #[default]
    Standard,
    /// Minimum 0, maximum 1.
    MinMax,
    /// Leave the data as it is.
    None,
}

impl std::str::FromStr for Scaling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "standard" => Ok(Self::Standard),
            "minmax" | "min_max" => Ok(Self::MinMax),
            "none" => Ok(Self::None),
            other => Err(format!("unknown scaling {other:?}: use standard, minmax or none")),
        }
    }
}

/// How one input feature becomes terms.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Encoding {
    /// One term, the value itself.
    #[default]
    Numeric,
    /// Treatment coding: `levels[0]` is the reference; each other level is a 0/1 term.
    Categorical { levels: Vec<String> },
    /// The offset ([`crate::roles::RoleColumns::offset`]): no term; its value is added to the
    /// logit with coefficient 1. A row of terms carries it last ([`Transform::row_width`]).
    Offset,
    /// Treatment coding as [`Encoding::Categorical`], for a column of more than
    /// [`MAX_DENSE_LEVELS`] levels. Its terms come after every dense term, and a row of terms
    /// holds the level's index (0 the reference) in one slot: the row's single non-zero of
    /// the column's CSR block, its column index being the whole of it. `by_text` lists the
    /// levels' indices in byte order of their text, for a lookup by binary search.
    Sparse { levels: Vec<String>, by_text: Vec<u32> },
}

/// A text column of more levels than this is held as sparse terms ([`Encoding::Sparse`]):
/// dense, its 0/1 terms would take 8 bytes a row each.
pub const MAX_DENSE_LEVELS: usize = 200;

impl Encoding {
    /// A text column's encoding: dense up to [`MAX_DENSE_LEVELS`] levels, sparse past them.
    fn of_levels(levels: Vec<String>, max_dense: usize) -> Encoding {
        if levels.len() <= max_dense {
            return Encoding::Categorical { levels };
        }
        let mut by_text: Vec<u32> = (0..levels.len() as u32).collect();
        by_text.sort_unstable_by(|&a, &b| levels[a as usize].cmp(&levels[b as usize]));
        Encoding::Sparse { levels, by_text }
    }

    /// The levels of a text column, in training's order (the first the reference).
    pub fn levels(&self) -> Option<&[String]> {
        match self {
            Encoding::Categorical { levels } | Encoding::Sparse { levels, .. } => Some(levels),
            Encoding::Numeric | Encoding::Offset => None,
        }
    }

    /// A sparse column's number of terms (its levels but the reference); `None` for the others.
    fn sparse_terms(&self) -> Option<usize> {
        match self {
            Encoding::Sparse { levels, .. } => Some(levels.len().saturating_sub(1)),
            _ => None,
        }
    }

    /// The index among [`Encoding::levels`] of the level `text`.
    fn level_index(&self, text: &str) -> Option<usize> {
        match self {
            Encoding::Categorical { levels } => levels.iter().position(|l| l == text),
            Encoding::Sparse { levels, by_text } => by_text
                .binary_search_by(|&i| levels[i as usize].as_str().cmp(text))
                .ok()
                .map(|p| by_text[p] as usize),
            Encoding::Numeric | Encoding::Offset => None,
        }
    }
}

/// A value of one input feature, as a request or a CSV cell gives it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Number(v) => write!(f, "{v}"),
            Value::Text(t) => f.write_str(t),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum EncodeError {
    #[error(
        "column {column:?}: level {value:?} was not seen in training; the known levels are {}",
        listed_levels(known)
    )]
    UnseenLevel { column: String, value: String, known: Vec<String> },
    #[error("column {column:?}: {value:?} is not a finite number")]
    NotANumber { column: String, value: String },
}

/// A column's levels as an error or a report lists them: every one of a few, the first
/// [`LISTED_LEVELS`] of many.
pub fn listed_levels(levels: &[String]) -> String {
    match levels.len() {
        n if n <= LISTED_LEVELS => levels.join(", "),
        n => format!("{}, … and {} more", levels[..LISTED_LEVELS].join(", "), n - LISTED_LEVELS),
    }
}

/// The most levels a list names.
const LISTED_LEVELS: usize = 20;

/// Encodes a dataset's rows into rows of terms: where each input goes ([`Transform::input_slots`])
/// and, for each text feature, what each of the dataset's codes sets.
struct RowEncoder<'t> {
    transform: &'t Transform,
    slots: Vec<(usize, bool)>,
    maps: Vec<Option<Vec<LevelTerm>>>,
}

impl<'t> RowEncoder<'t> {
    fn new(transform: &'t Transform, data: &Dataset) -> RowEncoder<'t> {
        let d = data.width();
        let maps = (0..d)
            .map(|j| {
                let encoding = transform.encoding(j);
                encoding.levels()?;
                let data_levels = data.kind(j).levels().unwrap_or_default();
                let map = data_levels.iter().map(|level| match encoding.level_index(level) {
                    Some(0) => LevelTerm::Reference,
                    Some(p) => LevelTerm::Term(p - 1),
                    None => LevelTerm::Unseen(level.clone()),
                });
                Some(map.collect())
            })
            .collect();
        RowEncoder { transform, slots: transform.input_slots(d), maps }
    }

    /// One row of data into `out`, a row of terms of zeros.
    fn encode(&self, row: &[f64], out: &mut [f64]) -> Result<(), EncodeError> {
        for (j, (&v, map)) in row.iter().zip(&self.maps).enumerate() {
            let (slot, sparse) = self.slots[j];
            match map.as_ref().map(|map| map.get(v as usize)) {
                None => out[slot] = v,
                Some(Some(LevelTerm::Term(level))) if sparse => out[slot] = (level + 1) as f64,
                Some(Some(LevelTerm::Term(level))) => out[slot + level] = 1.0,
                Some(Some(LevelTerm::Reference)) => {}
                Some(Some(LevelTerm::Unseen(value))) => {
                    return Err(self.transform.unseen(j, value));
                }
                Some(None) => return Err(self.transform.unseen(j, &format!("level #{v}"))),
            }
        }
        Ok(())
    }
}

/// Rows left out of scoring because a text feature held a level training never saw: how many,
/// and by column the levels (in the order met).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnseenLevels {
    pub rows: usize,
    pub columns: Vec<(String, Vec<String>)>,
}

impl UnseenLevels {
    fn add(&mut self, column: &str, level: String) {
        let at = match self.columns.iter().position(|(c, _)| c == column) {
            Some(at) => at,
            None => {
                self.columns.push((column.to_string(), Vec::new()));
                self.columns.len() - 1
            }
        };
        let levels = &mut self.columns[at].1;
        if !levels.contains(&level) {
            levels.push(level);
        }
    }

    /// "12 rows not scored: a level training never saw (shop: s4149, s3712)".
    pub fn describe(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|(column, levels)| format!("{column}: {}", listed_levels(levels)))
            .collect();
        let rows = if self.rows == 1 { "1 row".to_string() } else { format!("{} rows", self.rows) };
        format!("{rows} not scored: a level training never saw ({})", columns.join("; "))
    }
}

/// Where a sparse column is in a row of terms and among the terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseSlot {
    /// Its slot in a row of terms, which holds a level's index (0 the reference).
    pub slot: usize,
    /// The term of its level 1; level `i` is term `first_term + i − 1`.
    pub first_term: usize,
    pub terms: usize,
}

impl SparseSlot {
    /// Its terms' indices among all the terms (and the weights).
    pub fn term_range(&self) -> std::ops::Range<usize> {
        self.first_term..self.first_term + self.terms
    }

    /// The term of the level a row's slot holds; `None` for the reference (or no level).
    #[inline]
    pub fn term_of(&self, code: f64) -> Option<usize> {
        let level = code as usize;
        (level >= 1 && level <= self.terms).then(|| self.first_term + level - 1)
    }
}

/// What a dataset's level becomes in the terms: nothing (the reference level), one 0/1 term of
/// its feature's, or an error (a level training did not see).
enum LevelTerm {
    Reference,
    Term(usize),
    Unseen(String),
}

/// A fitted transform: the encoding of each input feature and the scaling of each term.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transform {
    pub scaling: Scaling,
    /// The input features, in the data's order.
    pub feature_names: Vec<String>,
    /// One per input feature; empty (as in transforms written before text features) means
    /// every feature is numeric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encodings: Vec<Encoding>,
    /// The model's terms, in order; empty means the features themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub term_names: Vec<String>,
    /// Per term.
    pub offset: Vec<f64>,
    /// Per term.
    pub scale: Vec<f64>,
}

/// What fitting a scaling gathers from the rows of terms, a row at a time and pass by pass:
/// standard scaling the means (the first pass), then the squares about them (the second);
/// min-max the bounds (one pass); none nothing. A constant or non-finite term gets scale 1,
/// so that scaling cannot divide by zero.
struct ScalingStatistics {
    scaling: Scaling,
    rows: usize,
    sums: Vec<f64>,
    means: Vec<f64>,
    squares: Vec<f64>,
    bounds: Vec<(f64, f64)>,
}

impl ScalingStatistics {
    /// Each of `k` terms' offset and scale, from the rows `rows` hands over once per pass.
    fn gather<E>(
        scaling: Scaling,
        k: usize,
        mut rows: impl FnMut(&mut dyn FnMut(&[f64])) -> Result<(), E>,
    ) -> Result<(Vec<f64>, Vec<f64>), E> {
        let mut statistics = ScalingStatistics::new(scaling, k);
        for pass in 0..statistics.passes() {
            rows(&mut |row| statistics.add(pass, row))?;
            statistics.end_pass(pass);
        }
        Ok(statistics.offset_and_scale())
    }

    fn new(scaling: Scaling, k: usize) -> Self {
        let zeros = vec![0.0; k];
        let bounds = vec![(f64::INFINITY, f64::NEG_INFINITY); k];
        ScalingStatistics {
            scaling,
            rows: 0,
            sums: zeros.clone(),
            means: zeros.clone(),
            squares: zeros,
            bounds,
        }
    }

    fn passes(&self) -> usize {
        match self.scaling {
            Scaling::Standard => 2,
            Scaling::MinMax => 1,
            Scaling::None => 0,
        }
    }

    #[inline]
    fn add(&mut self, pass: usize, row: &[f64]) {
        match (self.scaling, pass) {
            (Scaling::Standard, 0) => {
                self.rows += 1;
                self.sums.iter_mut().zip(row).for_each(|(sum, v)| *sum += v);
            }
            (Scaling::Standard, _) => {
                let terms = self.squares.iter_mut().zip(row).zip(&self.means);
                terms.for_each(|((square, v), mean)| *square += (v - mean).powi(2));
            }
            (Scaling::MinMax, _) => self
                .bounds
                .iter_mut()
                .zip(row)
                .for_each(|((lo, hi), &v)| (*lo, *hi) = (lo.min(v), hi.max(v))),
            (Scaling::None, _) => {}
        }
    }

    fn end_pass(&mut self, pass: usize) {
        if (self.scaling, pass) == (Scaling::Standard, 0) {
            let n = self.rows.max(1) as f64;
            self.means = self.sums.iter().map(|sum| sum / n).collect();
        }
    }

    /// Each term's offset and scale.
    fn offset_and_scale(self) -> (Vec<f64>, Vec<f64>) {
        let k = self.sums.len();
        match self.scaling {
            Scaling::None => (vec![0.0; k], vec![1.0; k]),
            Scaling::Standard => {
                let n = self.rows.max(1) as f64;
                let deviations = self.squares.iter().map(|square| (square / n).sqrt());
                (
                    self.means,
                    deviations
                        .map(|sd| if sd > 0.0 && sd.is_finite() { sd } else { 1.0 })
                        .collect(),
                )
            }
            Scaling::MinMax => self
                .bounds
                .into_iter()
                .map(|(lo, hi)| {
                    (
                        if lo.is_finite() { lo } else { 0.0 },
                        if hi - lo > 0.0 && (hi - lo).is_finite() { hi - lo } else { 1.0 },
                    )
                })
                .unzip(),
        }
    }
}

/// Each feature's encoding, and the names of the terms: the dense ones in the data's order, then
/// the sparse ones.
fn encodings_of(train: &Dataset, max_dense: usize) -> (Vec<Encoding>, Vec<String>) {
    let d = train.width();
    let (mut encodings, mut dense_names, mut sparse_names) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..d {
        let name = &train.feature_names[j];
        if train.roles.offset.as_ref() == Some(name) {
            encodings.push(Encoding::Offset);
            continue;
        }
        let ColumnKind::Categorical { levels } = train.kind(j) else {
            encodings.push(Encoding::Numeric);
            dense_names.push(name.clone());
            continue;
        };
        let mut seen = vec![false; levels.len()];
        for i in 0..train.rows() {
            if let Some(s) = seen.get_mut(train.x[i * d + j] as usize) {
                *s = true;
            }
        }
        let kept: Vec<String> =
            levels.iter().zip(&seen).filter(|(_, s)| **s).map(|(l, _)| l.clone()).collect();
        let encoding = Encoding::of_levels(kept, max_dense);
        let names = if matches!(encoding, Encoding::Sparse { .. }) {
            &mut sparse_names
        } else {
            &mut dense_names
        };
        names.extend(encoding.levels().into_iter().flatten().skip(1).map(|l| level_term(name, l)));
        encodings.push(encoding);
    }
    dense_names.append(&mut sparse_names);
    (encodings, dense_names)
}

/// The offset and scale of each 0/1 term of a sparse column, from the rows at each of its
/// levels (`counts`, the reference's left out) among `rows`: what [`ScalingStatistics`] makes of
/// the same terms written out, to rounding.
fn level_scaling(scaling: Scaling, counts: &[usize], rows: usize) -> (Vec<f64>, Vec<f64>) {
    let n = rows.max(1) as f64;
    counts
        .iter()
        .map(|&count| {
            let share = count as f64 / n;
            match scaling {
                Scaling::None => (0.0, 1.0),
                Scaling::Standard => {
                    let square =
                        count as f64 * (1.0 - share).powi(2) + (n - count as f64) * share * share;
                    let sd = (square / n).sqrt();
                    (share, if sd > 0.0 && sd.is_finite() { sd } else { 1.0 })
                }
                // 0 unless every row is at the level, 1 if some row is.
                Scaling::MinMax => {
                    let (lo, hi) =
                        (f64::from(u8::from(count == rows)), f64::from(u8::from(count > 0)));
                    (lo, if hi > lo { hi - lo } else { 1.0 })
                }
            }
        })
        .unzip()
}

/// A term's value scaled: the one formula every way of scaling uses, so that they agree to the bit.
#[inline]
fn scaled(v: f64, offset: f64, scale: f64) -> f64 {
    (v - offset) / scale
}

impl Transform {
    /// Fits on the training rows: the levels each categorical feature shows there, then the
    /// scaling of every term. A constant term gets scale 1, so it cannot divide by zero.
    pub fn fit(train: &Dataset, scaling: Scaling) -> Transform {
        Transform::fit_holding_dense(train, scaling, MAX_DENSE_LEVELS)
    }

    /// [`Transform::fit`], a text column held dense up to `max_dense` levels (sparse past
    /// them): the same model either way, which tests hold it to.
    pub fn fit_holding_dense(train: &Dataset, scaling: Scaling, max_dense: usize) -> Transform {
        let (encodings, term_names) = encodings_of(train, max_dense);
        let categorical = encodings.iter().any(|e| *e != Encoding::Numeric);
        let mut transform = Transform {
            scaling,
            feature_names: train.feature_names.clone(),
            encodings: if categorical { encodings } else { Vec::new() },
            term_names: if categorical { term_names } else { Vec::new() },
            offset: Vec::new(),
            scale: Vec::new(),
        };
        let (dense, width) = (transform.dense_terms(), transform.row_width());
        // A numeric dataset is its own design: read in place, not copied (80 MB at 1M × 10).
        // The levels were taken from these rows, so every row encodes.
        let design = transform
            .design_of(train)
            .unwrap_or_else(|_| std::borrow::Cow::Owned(vec![0.0; train.rows() * width]));
        // Row by row, every column's accumulator at once: each column still sums its values in
        // row order (so the same bits as a column at a time), in one pass over the rows instead
        // of one per column. The sparse slots and the offset, last, are not scaled here.
        let rows = |visit: &mut dyn FnMut(&[f64])| {
            design.chunks_exact(width.max(1)).for_each(|row| visit(&row[..dense]));
            Ok::<(), std::convert::Infallible>(())
        };
        let Ok((mut offset, mut scale)) = ScalingStatistics::gather(scaling, dense, rows);
        for SparseSlot { slot, terms, .. } in transform.sparse_slots() {
            let mut counts = vec![0usize; terms + 1];
            design.chunks_exact(width).for_each(|row| counts[row[slot] as usize] += 1);
            let (o, s) = level_scaling(scaling, &counts[1..], train.rows());
            offset.extend(o);
            scale.extend(s);
        }
        (transform.offset, transform.scale) = (offset, scale);
        transform
    }

    /// [`Transform::fit`] for features that are all numeric, from rows that are streamed rather
    /// than held: `rows` hands every training row, in order, to the function it is given, once
    /// for each pass the scaling takes (standard scaling two: the means, then the squares about
    /// them). The same bits as `fit` on the same rows; the first error `rows` returns.
    pub fn fit_numeric<E>(
        feature_names: Vec<String>,
        scaling: Scaling,
        rows: impl FnMut(&mut dyn FnMut(&[f64])) -> Result<(), E>,
    ) -> Result<Transform, E> {
        let (offset, scale) = ScalingStatistics::gather(scaling, feature_names.len(), rows)?;
        Ok(Transform {
            scaling,
            feature_names,
            encodings: Vec::new(),
            term_names: Vec::new(),
            offset,
            scale,
        })
    }

    /// The number of terms (the width of the design matrix, without the intercept).
    pub fn terms(&self) -> usize {
        self.offset.len().max(if self.term_names.is_empty() {
            self.feature_names.len()
        } else {
            self.term_names.len()
        })
    }

    /// The names of the terms: the features themselves unless some are categorical.
    pub fn term_names(&self) -> &[String] {
        if self.term_names.is_empty() { &self.feature_names } else { &self.term_names }
    }

    /// Whether one input is the offset.
    pub fn has_offset(&self) -> bool {
        self.encodings.contains(&Encoding::Offset)
    }

    /// The index among the inputs of the offset, if there is one.
    pub fn offset_input(&self) -> Option<usize> {
        self.encodings.iter().position(|e| *e == Encoding::Offset)
    }

    /// The terms held dense: the first of the terms, and of a row's slots.
    pub fn dense_terms(&self) -> usize {
        self.terms() - self.encodings.iter().filter_map(Encoding::sparse_terms).sum::<usize>()
    }

    /// Each sparse column's slot in a row of terms, its first term and its number of terms, in
    /// slot order (the data's): the slots follow the dense terms, and so do the columns' terms.
    pub fn sparse_slots(&self) -> impl Iterator<Item = SparseSlot> + '_ {
        let dense = self.dense_terms();
        let sparse = self.encodings.iter().filter_map(Encoding::sparse_terms);
        sparse.enumerate().scan(dense, move |first_term, (s, terms)| {
            let slot = SparseSlot { slot: dense + s, first_term: *first_term, terms };
            *first_term += terms;
            Some(slot)
        })
    }

    /// The slots of a row of terms, the offset apart: each dense term, then one for each
    /// sparse column.
    pub fn slots(&self) -> usize {
        self.dense_terms() + self.encodings.iter().filter(|e| e.sparse_terms().is_some()).count()
    }

    /// The width of a row of terms as [`Transform::terms_of`] makes it: its slots (the terms,
    /// unless some are sparse), then the offset when there is one.
    pub fn row_width(&self) -> usize {
        self.slots() + usize::from(self.has_offset())
    }

    /// Takes the offset (the last value of each row of [`Transform::terms_of`]) out of the
    /// rows: the design of the terms alone, and each row's offset.
    pub fn split_offset(&self, rows: Vec<f64>) -> (Vec<f64>, Option<Vec<f64>>) {
        if !self.has_offset() {
            return (rows, None);
        }
        let (k, width) = (self.slots(), self.row_width());
        let offsets = rows.iter().skip(k).step_by(width).copied().collect();
        let design = rows.chunks_exact(width).flat_map(|row| &row[..k]).copied().collect();
        (design, Some(offsets))
    }

    /// Whether every feature is one numeric term, so a row of features is a row of terms.
    pub fn is_numeric(&self) -> bool {
        self.encodings.iter().all(|e| *e == Encoding::Numeric)
    }

    /// The encoding of feature `j`.
    pub fn encoding(&self, j: usize) -> &Encoding {
        const NUMERIC: Encoding = Encoding::Numeric;
        self.encodings.get(j).unwrap_or(&NUMERIC)
    }

    /// The design matrix of a dataset (rows × terms, row-major), in the data's units: numbers
    /// as they are, each non-reference level a 0/1 column. A dataset's categorical cells are
    /// indices into its own levels, which may be more than training saw.
    pub fn terms_of(&self, data: &Dataset) -> Result<Vec<f64>, EncodeError> {
        Ok(self.design_of(data)?.into_owned())
    }

    /// [`Transform::terms_of`], borrowing a numeric model's terms from the data, whose values
    /// they are, rather than copying them into fresh memory.
    pub fn design_of<'d>(
        &self,
        data: &'d Dataset,
    ) -> Result<std::borrow::Cow<'d, [f64]>, EncodeError> {
        if self.is_numeric() {
            return Ok(std::borrow::Cow::Borrowed(&data.x));
        }
        self.encoded_terms(data).map(std::borrow::Cow::Owned)
    }

    /// [`Transform::terms_of`], taking the data's values: a numeric model's terms are the values
    /// themselves, moved out of `data` (its `x` is left empty) rather than copied — a 1M × 10
    /// training part is 80 MB.
    ///
    /// Where each input is one slot of a row of terms (numbers, sparse columns, text columns
    /// of two levels), the rows are encoded where they are, and moved out likewise: a sparse
    /// design is as wide as its data, and a copy beside it doubled the train stage's memory.
    /// On an error `data`'s values are then partly encoded.
    pub fn take_terms(&self, data: &mut Dataset) -> Result<Vec<f64>, EncodeError> {
        if self.is_numeric() {
            return Ok(std::mem::take(&mut data.x));
        }
        let d = data.width();
        if self.row_width() != d {
            return self.encoded_terms(data);
        }
        let encoder = RowEncoder::new(self, data);
        let mut out = vec![0.0; d];
        for row in data.x.chunks_exact_mut(d.max(1)) {
            out.fill(0.0);
            encoder.encode(row, &mut out)?;
            row.copy_from_slice(&out);
        }
        Ok(std::mem::take(&mut data.x))
    }

    fn encoded_terms(&self, data: &Dataset) -> Result<Vec<f64>, EncodeError> {
        let (d, k) = (data.width(), self.row_width());
        let encoder = RowEncoder::new(self, data);
        let mut design = vec![0.0; data.rows() * k];
        for (row, out) in data.x.chunks_exact(d.max(1)).zip(design.chunks_exact_mut(k.max(1))) {
            encoder.encode(row, out)?;
        }
        Ok(design)
    }

    /// The first text feature that names rows rather than grouping them: past
    /// [`MAX_IDENTIFIER_LEVELS`] levels, more than one for every two of the `rows` training rows
    /// it was fitted on. Such a column (an identifier, free text) would fit a term to nearly
    /// every row: it is refused, naming it, where the training rows become terms.
    pub fn identifier(&self, rows: usize) -> Option<DataError> {
        self.encodings.iter().zip(&self.feature_names).find_map(|(encoding, column)| {
            let count = encoding.levels()?.len();
            (count > MAX_IDENTIFIER_LEVELS && count * 2 > rows).then(|| DataError::Identifier {
                column: column.clone(),
                count,
                rows,
            })
        })
    }

    /// Keeps the rows of `data` whose every text feature holds a level training saw, and says
    /// what the others were: rows to be scored, such as a test split's, where a column of many
    /// levels (a shop seen once) leaves some levels in the test rows alone. `None` when every
    /// row is kept.
    pub fn keep_seen_levels(&self, data: &mut Dataset) -> Option<UnseenLevels> {
        let d = data.width();
        let maps = RowEncoder::new(self, data).maps;
        let unseen_in = |row: &[f64], j: usize| {
            let level = maps[j].as_ref().and_then(|map| map.get(row[j] as usize));
            matches!(level, Some(LevelTerm::Unseen(_)))
        };
        let mut unseen = UnseenLevels::default();
        let mut kept = 0;
        for i in 0..data.rows() {
            let row = &data.x[i * d..(i + 1) * d];
            let columns: Vec<usize> = (0..d).filter(|&j| unseen_in(row, j)).collect();
            if columns.is_empty() {
                data.x.copy_within(i * d..(i + 1) * d, kept * d);
                data.y[kept] = data.y[i];
                kept += 1;
                continue;
            }
            unseen.rows += 1;
            for j in columns {
                let level = data.kind(j).levels().map(|l| l[row[j] as usize].clone());
                unseen.add(&data.feature_names[j], level.unwrap_or_default());
            }
        }
        data.x.truncate(kept * d);
        data.y.truncate(kept);
        (unseen.rows > 0).then_some(unseen)
    }

    /// Where each of `d` inputs goes in a row of terms: its first slot, and whether that slot
    /// holds a level's index (a sparse column's).
    fn input_slots(&self, d: usize) -> Vec<(usize, bool)> {
        let (mut dense_slot, mut sparse_slot) = (0, self.dense_terms());
        (0..d)
            .map(|j| match self.encoding(j) {
                // Last in the row, after every term.
                Encoding::Offset => (self.slots(), false),
                Encoding::Sparse { .. } => {
                    sparse_slot += 1;
                    (sparse_slot - 1, true)
                }
                encoding => {
                    let slot = dense_slot;
                    dense_slot += encoding.levels().map_or(1, |l| l.len().saturating_sub(1));
                    (slot, false)
                }
            })
            .collect()
    }

    fn unseen(&self, j: usize, value: &str) -> EncodeError {
        let known = self.encoding(j).levels().map(<[String]>::to_vec).unwrap_or_default();
        EncodeError::UnseenLevel {
            column: self.feature_names[j].clone(),
            value: value.to_string(),
            known,
        }
    }

    /// Appends the terms of one row of feature values (in the data's units) to `out`, and the
    /// offset after them ([`Transform::row_width`]). A number for a categorical feature is read
    /// as its text ("2"), as the CSV reader does.
    pub fn encode_values(&self, row: &[Value], out: &mut Vec<f64>) -> Result<(), EncodeError> {
        let mut offset = None;
        // The sparse columns' slots follow every dense term.
        let mut sparse = Vec::new();
        for (j, value) in row.iter().enumerate() {
            let encoding = self.encoding(j);
            match encoding {
                Encoding::Numeric => out.push(self.number(j, value)?),
                Encoding::Offset => offset = Some(self.number(j, value)?),
                Encoding::Categorical { .. } | Encoding::Sparse { .. } => {
                    let text = match value {
                        Value::Text(t) => t.trim().to_string(),
                        Value::Number(v) => v.to_string(),
                    };
                    let p = encoding.level_index(&text).ok_or_else(|| self.unseen(j, &text))?;
                    if let Encoding::Categorical { levels } = encoding {
                        let start = out.len();
                        out.resize(start + levels.len().saturating_sub(1), 0.0);
                        if p > 0 {
                            out[start + p - 1] = 1.0;
                        }
                    } else {
                        sparse.push(p as f64);
                    }
                }
            }
        }
        out.extend(sparse);
        out.extend(offset);
        Ok(())
    }

    /// The value of numeric input `j`: a finite number, or text that reads as one.
    fn number(&self, j: usize, value: &Value) -> Result<f64, EncodeError> {
        let parsed = match value {
            Value::Number(v) => Some(*v),
            Value::Text(t) => t.trim().parse::<f64>().ok(),
        };
        match parsed {
            Some(v) if v.is_finite() => Ok(v),
            _ => Err(EncodeError::NotANumber {
                column: self.feature_names[j].clone(),
                value: value.to_string(),
            }),
        }
    }

    /// The sample standard deviation (n − 1) of each of the `k` columns of a row-major
    /// matrix; 0 with fewer than two rows.
    pub fn column_standard_deviations(design: &[f64], k: usize) -> Vec<f64> {
        Self::weighted_column_standard_deviations(design, k, None)
    }

    /// [`Transform::column_standard_deviations`] of rows with frequency weights: the rows
    /// repeated, n their sum.
    pub fn weighted_column_standard_deviations(
        design: &[f64],
        k: usize,
        weights: Option<&[f64]>,
    ) -> Vec<f64> {
        let rows = design.len().checked_div(k).unwrap_or(0);
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        let n: f64 = weights.map_or(rows as f64, |w| w.iter().sum());
        if n < 2.0 {
            return vec![0.0; k];
        }
        let mut mean = vec![0.0; k];
        for (i, row) in design.chunks_exact(k).enumerate() {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += weight(i) * v);
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut squares = vec![0.0; k];
        for (i, row) in design.chunks_exact(k).enumerate() {
            squares
                .iter_mut()
                .zip(row.iter().zip(&mean))
                .for_each(|(s, (v, m))| *s += weight(i) * (v - m) * (v - m));
        }
        squares.into_iter().map(|s| (s / (n - 1.0)).sqrt()).collect()
    }

    /// The dense terms' offsets and scales.
    fn dense_scaling(&self) -> (&[f64], &[f64]) {
        let dense = self.dense_terms().min(self.offset.len()).min(self.scale.len());
        (&self.offset[..dense], &self.scale[..dense])
    }

    /// Scales a row-major design matrix of terms in place.
    pub fn scale_in_place(&self, design: &mut [f64]) {
        self.scale_in_place_seeing(design, |_, _| {});
    }

    /// [`Transform::scale_in_place`], handing each row (and its index) to `see` before it is
    /// scaled: what needs the terms in the data's units (train's separation check) is then
    /// done in the same pass over the rows, not one of its own.
    pub fn scale_in_place_seeing(&self, design: &mut [f64], mut see: impl FnMut(usize, &[f64])) {
        // A sparse slot holds a level's index, which stays as it is: its terms are scaled by
        // the solvers and the model, as sums.
        let k = self.slots().max(1);
        let (offset, scale) = self.dense_scaling();
        for (i, row) in design.chunks_exact_mut(k).enumerate() {
            see(i, row);
            for ((v, o), s) in row.iter_mut().zip(offset).zip(scale) {
                *v = scaled(*v, *o, *s);
            }
        }
    }

    /// Appends a row of terms, scaled, to `design`: what [`Transform::scale_in_place`] makes
    /// of it, for rows scaled as they are read.
    pub fn push_scaled(&self, row: &[f64], design: &mut Vec<f64>) {
        let (offset, scale) = self.dense_scaling();
        design.extend(row.iter().zip(offset).zip(scale).map(|((v, o), s)| scaled(*v, *o, *s)));
        design.extend(&row[offset.len().min(row.len())..]);
    }

    /// Returns the scaled copy of a row-major matrix of terms.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        let mut out = x.to_vec();
        self.scale_in_place(&mut out);
        out
    }
}

/// The name of the term of a text feature's level (treatment coding; the reference level has
/// none): `feature=level`, as coefficient tables and served metadata name it.
pub fn level_term(feature: &str, level: &str) -> String {
    format!("{feature}={level}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_standard_deviations_are_the_sample_ones() {
        // Columns (1, 2, 3, 4) and (10, 10, 10, 10): numpy's std(ddof=1) is 1.2909944487358056 and 0.
        let design = [1.0, 10.0, 2.0, 10.0, 3.0, 10.0, 4.0, 10.0];
        let sds = Transform::column_standard_deviations(&design, 2);
        assert!((sds[0] - 1.290_994_448_735_805_6).abs() < 1e-15 && sds[1] == 0.0, "{sds:?}");
        assert_eq!(
            Transform::column_standard_deviations(&[5.0, 6.0], 2),
            vec![0.0, 0.0],
            "one row"
        );
    }

    fn data() -> Dataset {
        Dataset {
            feature_names: vec!["a".into(), "c".into()],
            label_name: "y".into(),
            x: vec![0.0, 5.0, 10.0, 5.0],
            y: vec![0.0, 1.0],
            ..Default::default()
        }
    }

    #[test]
    fn standard_centres_and_constant_column_is_safe() {
        let t = Transform::fit(&data(), Scaling::Standard);
        assert_eq!(t.offset, vec![5.0, 5.0]);
        assert_eq!(t.scale, vec![5.0, 1.0]);
        assert_eq!(t.apply(&[10.0, 5.0]), vec![1.0, 0.0]);
    }

    #[test]
    fn minmax_maps_to_unit_interval() {
        let t = Transform::fit(&data(), Scaling::MinMax);
        assert_eq!(t.apply(&[0.0, 5.0, 10.0, 5.0]), vec![0.0, 0.0, 1.0, 0.0]);
    }

    fn species() -> Dataset {
        // Levels of the whole file: Adelie, Chinstrap, Gentoo, Zebra; training saw three.
        let levels = vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into(), "Zebra".into()];
        Dataset {
            feature_names: vec!["mass".into(), "species".into()],
            label_name: "sex".into(),
            kinds: vec![ColumnKind::Numeric, ColumnKind::Categorical { levels }],
            x: vec![1.0, 0.0, 2.0, 1.0, 3.0, 2.0, 4.0, 0.0],
            y: vec![0.0, 1.0, 0.0, 1.0],
            ..Default::default()
        }
    }

    #[test]
    fn treatment_coding_with_the_first_seen_level_as_reference() {
        let t = Transform::fit(&species(), Scaling::None);
        assert_eq!(t.term_names(), ["mass", "species=Chinstrap", "species=Gentoo"]);
        assert_eq!(
            t.encoding(1),
            &Encoding::Categorical {
                levels: vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()]
            }
        );
        let design = t.terms_of(&species()).expect("encodes");
        assert_eq!(design, vec![1.0, 0.0, 0.0, 2.0, 1.0, 0.0, 3.0, 0.0, 1.0, 4.0, 0.0, 0.0]);
        let mut row = Vec::new();
        t.encode_values(&[Value::Number(7.0), Value::Text("Gentoo".into())], &mut row)
            .expect("encodes");
        assert_eq!(row, vec![7.0, 0.0, 1.0]);
        let unseen =
            t.encode_values(&[Value::Number(7.0), Value::Text("Zebra".into())], &mut Vec::new());
        assert!(
            matches!(unseen, Err(EncodeError::UnseenLevel { ref value, ref known, .. }) if value == "Zebra" && known.len() == 3)
        );
        let mut test = species();
        test.x[3] = 3.0;
        assert!(matches!(t.terms_of(&test), Err(EncodeError::UnseenLevel { .. })));
        assert!(matches!(
            t.encode_values(
                &[Value::Text("heavy".into()), Value::Text("Gentoo".into())],
                &mut Vec::new()
            ),
            Err(EncodeError::NotANumber { .. })
        ));
    }

    #[test]
    fn a_column_of_many_levels_is_one_slot_after_the_dense_terms_scaled_as_dense() {
        // Species comes first in the data; held sparse, its terms come after mass's.
        let mut data = species();
        data.feature_names.swap(0, 1);
        data.kinds.swap(0, 1);
        data.x.chunks_exact_mut(2).for_each(|row| row.swap(0, 1));
        let sparse = Transform::fit_holding_dense(&data, Scaling::Standard, 2);
        let dense = Transform::fit_holding_dense(&data, Scaling::Standard, 3);
        assert!(matches!(sparse.encoding(0), Encoding::Sparse { .. }));
        assert_eq!(sparse.term_names(), ["mass", "species=Chinstrap", "species=Gentoo"]);
        assert_eq!((sparse.slots(), sparse.dense_terms(), sparse.terms()), (2, 1, 3));
        let slot = SparseSlot { slot: 1, first_term: 1, terms: 2 };
        assert_eq!(sparse.sparse_slots().collect::<Vec<_>>(), [slot]);
        // Each row: its mass, then its level's index (0 the reference, Adelie).
        let rows = sparse.terms_of(&data).expect("encodes");
        assert_eq!(rows, vec![1.0, 0.0, 2.0, 1.0, 3.0, 2.0, 4.0, 0.0]);
        // As wide as the data: encoded where they are, and moved out.
        let mut taken = data.clone();
        assert_eq!(sparse.take_terms(&mut taken).expect("encodes"), rows);
        assert!(taken.x.is_empty());
        let mut wider = data.clone();
        assert_eq!(dense.take_terms(&mut wider), dense.terms_of(&data));
        let mut row = Vec::new();
        sparse
            .encode_values(&[Value::Text("Gentoo".into()), Value::Number(7.0)], &mut row)
            .expect("encodes");
        assert_eq!(row, vec![7.0, 2.0]);
        let unseen = sparse
            .encode_values(&[Value::Text("Zebra".into()), Value::Number(7.0)], &mut Vec::new());
        assert!(
            matches!(unseen, Err(EncodeError::UnseenLevel { ref value, .. }) if value == "Zebra")
        );
        // Each level's term scaled as the dense 0/1 column would be (the dense coding has the
        // level terms first, in the data's order).
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-15;
        assert!(close(sparse.offset[0], dense.offset[2]) && close(sparse.scale[0], dense.scale[2]));
        for t in 1..3 {
            assert!(close(sparse.offset[t], dense.offset[t - 1]), "{t}");
            assert!(close(sparse.scale[t], dense.scale[t - 1]), "{t}");
        }
        // Scaling a row scales its dense terms and leaves the level's index.
        assert_eq!(sparse.apply(&[4.0, 2.0])[1], 2.0);
    }

    #[test]
    fn a_column_with_a_level_for_nearly_every_training_row_is_an_identifier() {
        let rows = 2 * MAX_IDENTIFIER_LEVELS + 2;
        let data = |levels: usize| Dataset {
            feature_names: vec!["id".into()],
            label_name: "y".into(),
            kinds: vec![ColumnKind::Categorical {
                levels: (0..levels).map(|i| format!("r{i}")).collect(),
            }],
            x: (0..rows).map(|i| (i % levels) as f64).collect(),
            y: (0..rows).map(|i| (i % 2) as f64).collect(),
            ..Dataset::default()
        };
        // More than one level for every two rows, past the bound: named, with its counts.
        let names_rows = Transform::fit(&data(MAX_IDENTIFIER_LEVELS + 2), Scaling::Standard);
        let found = names_rows.identifier(rows);
        assert!(
            matches!(&found, Some(DataError::Identifier { column, count, rows: r })
                if column == "id" && *count == MAX_IDENTIFIER_LEVELS + 2 && *r == rows),
            "{found:?}"
        );
        // Two rows a level, or few levels: a category.
        let groups = Transform::fit(&data(MAX_IDENTIFIER_LEVELS + 1), Scaling::Standard);
        assert_eq!(groups.identifier(rows), None);
        assert_eq!(Transform::fit(&data(150), Scaling::Standard).identifier(150), None);
    }

    #[test]
    fn rows_at_a_level_training_never_saw_are_left_out_and_named() {
        let t = Transform::fit(&species(), Scaling::None);
        // Rows 1 and 3 at Zebra, which training never saw.
        let mut test = species();
        test.x[3] = 3.0;
        test.x[7] = 3.0;
        let unseen = t.keep_seen_levels(&mut test).expect("rows left out");
        assert_eq!((unseen.rows, test.rows()), (2, 2));
        assert_eq!(unseen.columns, vec![("species".to_string(), vec!["Zebra".to_string()])]);
        assert_eq!(
            unseen.describe(),
            "2 rows not scored: a level training never saw (species: Zebra)"
        );
        assert_eq!((test.x, test.y), (vec![1.0, 0.0, 3.0, 2.0], vec![0.0, 0.0]));
        assert_eq!(t.keep_seen_levels(&mut species()), None, "every row kept");
    }

    proptest::proptest! {
        /// Scaling fitted a row at a time is, bit for bit, the mean and population standard
        /// deviation (or the bounds) of each column summed down the column in row order.
        #[test]
        fn fitted_a_row_at_a_time_is_each_column_bit_for_bit(
            rows in proptest::collection::vec(proptest::collection::vec(-1e6f64..1e6, 3), 1..60),
        ) {
            let data = Dataset {
                feature_names: vec!["a".into(), "b".into(), "c".into()],
                label_name: "y".into(),
                y: vec![0.0; rows.len()],
                x: rows.concat(),
                ..Dataset::default()
            };
            let n = rows.len() as f64;
            let standard = Transform::fit(&data, Scaling::Standard);
            let min_max = Transform::fit(&data, Scaling::MinMax);
            // Rows scaled one at a time as they are read are the rows scaled in place.
            let mut in_place = data.x.clone();
            standard.scale_in_place(&mut in_place);
            let mut pushed = Vec::new();
            rows.iter().for_each(|row| standard.push_scaled(row, &mut pushed));
            proptest::prop_assert_eq!(pushed.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), in_place.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            // Fitted from the rows streamed past instead of held: the same transform, bit for bit.
            for scaling in [Scaling::Standard, Scaling::MinMax, Scaling::None] {
                let streamed = Transform::fit_numeric(data.feature_names.clone(), scaling, |visit| {
                    rows.iter().for_each(|row| visit(row));
                    Ok::<(), ()>(())
                });
                proptest::prop_assert_eq!(streamed, Ok(Transform::fit(&data, scaling)));
            }
            for t in 0..3 {
                let column = || rows.iter().map(|row| row[t]);
                let mean = column().sum::<f64>() / n;
                let sd = (column().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
                proptest::prop_assert_eq!(standard.offset[t].to_bits(), mean.to_bits());
                proptest::prop_assert_eq!(standard.scale[t].to_bits(), if sd > 0.0 { sd } else { 1.0 }.to_bits());
                let (lo, hi) = column().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
                proptest::prop_assert_eq!((min_max.offset[t], min_max.scale[t]), (lo, if hi > lo { hi - lo } else { 1.0 }));
            }
        }
    }
}
