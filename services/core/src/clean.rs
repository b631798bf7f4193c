//! Preprocessing: from a [`RawTable`] to a clean [`Dataset`], and the seeded, stratified
//! train/test [`Split`], with a [`CleanReport`] of what was kept and dropped, by reason.

use crate::roles::{Role, RoleColumns, RowReport};
use crate::table::{Classes, ColumnKind, DataError, RawTable};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// What to do with an empty cell.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Refuse the file, naming the first empty cell's line and column.
    #[default]
    Error,
    /// Drop the row, and list its line in the report.
    Drop,
    /// Replace a missing number with the column's mean over the rows that have it, and a
    /// missing text value as [`TextMissing`] says. Rows with a missing label are dropped: a
    /// label cannot be made up.
    ImputeMean,
    /// As `ImputeMean`, with the column's median.
    ImputeMedian,
}

/// What imputation puts in a missing text cell.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TextMissing {
    /// The column's most frequent level (the first in sorted order on a tie).
    #[default]
    MostFrequent,
    /// A level of its own, [`MISSING_LEVEL`], added after the others (so never the reference).
    Level,
}

/// The level a missing text value becomes with [`TextMissing::Level`].
pub const MISSING_LEVEL: &str = "(missing)";

/// Bounds a feature must lie within; rows outside are dropped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bound {
    pub column: String,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CleanOptions {
    #[serde(default)]
    pub missing: MissingPolicy,
    #[serde(default)]
    pub bounds: Vec<Bound>,
    #[serde(default)]
    pub drop_duplicates: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub text_missing: TextMissing,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A clean dataset: no missing values, labels 0/1. A categorical column's cells are indices
/// into its levels ([`ColumnKind`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    pub feature_names: Vec<String>,
    pub label_name: String,
    /// One per feature; empty means every feature is numeric.
    pub kinds: Vec<ColumnKind>,
    /// The label's classes when it was text.
    pub classes: Option<Classes>,
    /// `rows × features`, row-major.
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// The features that have a role ([`RoleColumns`]).
    pub roles: RoleColumns,
}

impl Dataset {
    pub fn rows(&self) -> usize {
        self.y.len()
    }
    pub fn width(&self) -> usize {
        self.feature_names.len()
    }
    pub fn row(&self, i: usize) -> &[f64] {
        let d = self.width();
        &self.x[i * d..(i + 1) * d]
    }
    fn subset(&self, idx: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(idx.len() * self.width());
        let mut y = Vec::with_capacity(idx.len());
        for &i in idx {
            x.extend_from_slice(self.row(i));
            y.push(self.y[i]);
        }
        Dataset { x, y, ..self.like() }
    }
    /// An empty dataset with this one's columns.
    pub fn like(&self) -> Dataset {
        Dataset {
            feature_names: self.feature_names.clone(),
            label_name: self.label_name.clone(),
            kinds: self.kinds.clone(),
            classes: self.classes.clone(),
            x: Vec::new(),
            y: Vec::new(),
            roles: self.roles.clone(),
        }
    }
    /// The kind of feature `j`.
    pub fn kind(&self, j: usize) -> &ColumnKind {
        const NUMERIC: ColumnKind = ColumnKind::Numeric;
        self.kinds.get(j).unwrap_or(&NUMERIC)
    }
    /// The name of class 1 or 0, for messages.
    pub fn class_name(&self, positive: bool) -> String {
        class_name(self.classes.as_ref(), positive)
    }
    /// Checks that both classes are present, which fitting and AUC need.
    pub fn check_both_classes(&self) -> Result<(), DataError> {
        check_both_classes(&self.y, self.classes.as_ref())
    }
}

/// The name of class 1 or 0 of a label with these `classes` (none: a 0/1 label).
fn class_name(classes: Option<&Classes>, positive: bool) -> String {
    match (classes, positive) {
        (Some(c), true) => c.positive.clone(),
        (Some(c), false) => c.negative.clone(),
        (None, true) => "1".into(),
        (None, false) => "0".into(),
    }
}

/// Checks that labels `y` hold both classes (or, for K classes, every one), naming the missing
/// one by `classes`.
pub fn check_both_classes(y: &[f64], classes: Option<&Classes>) -> Result<(), DataError> {
    if let Some(classes) = classes.filter(|c| c.count() > 2) {
        let mut seen = vec![false; classes.count()];
        for &v in y {
            seen[v as usize] = true;
        }
        return match seen.iter().position(|s| !s) {
            Some(missing) => Err(DataError::MissingClass(classes.names()[missing].to_string())),
            None => Ok(()),
        };
    }
    let positives = y.iter().filter(|&&v| v == 1.0).count();
    if positives == 0 {
        return Err(DataError::SingleClass(class_name(classes, false)));
    }
    if positives == y.len() {
        return Err(DataError::SingleClass(class_name(classes, true)));
    }
    Ok(())
}

/// How many rows went in, how many were kept, and which were dropped and why.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CleanReport {
    pub rows_in: usize,
    pub rows_kept: usize,
    /// Reason → number of rows dropped for it.
    pub dropped: BTreeMap<String, usize>,
    /// The first dropped lines with their reason (at most [`CleanReport::MAX_LINES`]).
    pub dropped_lines: Vec<DroppedLine>,
    /// Column → number of values imputed.
    pub imputed: BTreeMap<String, usize>,
    /// Column → rows dropped because that column was missing (a row missing two counts twice).
    #[serde(default)]
    pub missing_by_column: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DroppedLine {
    pub line: u64,
    pub reason: String,
}

impl CleanReport {
    pub const MAX_LINES: usize = 100;
    /// A row without a label: the file refused at it when missing cells are refused, else the
    /// row dropped and counted. The one rule of [`clean`] and [`clean_labels`].
    fn missing_label(
        &mut self,
        line: u64,
        label_name: &str,
        missing: MissingPolicy,
    ) -> Result<(), DataError> {
        if missing == MissingPolicy::Error {
            return Err(DataError::EmptyValue { line, column: label_name.to_string() });
        }
        self.drop_row(line, "missing label");
        *self.missing_by_column.entry(label_name.to_string()).or_default() += 1;
        Ok(())
    }
    fn drop_row(&mut self, line: u64, reason: &str) {
        *self.dropped.entry(reason.to_string()).or_default() += 1;
        if self.dropped_lines.len() < Self::MAX_LINES {
            self.dropped_lines.push(DroppedLine { line, reason: reason.to_string() });
        }
    }
}

/// Cleans a raw table by the options.
pub fn clean(raw: &RawTable, options: &CleanOptions) -> Result<(Dataset, CleanReport), DataError> {
    clean_keeping(raw, options).map(|(data, _, report)| (data, report))
}

/// True when cleaning by `options` must look at the feature values even if none is missing:
/// bounds and duplicates are checked on them, and imputation gives a text column a level
/// for missing cells whether or not one is missing.
pub fn needs_values(options: &CleanOptions, kinds: &[ColumnKind]) -> bool {
    let imputes_text =
        matches!(options.missing, MissingPolicy::ImputeMean | MissingPolicy::ImputeMedian)
            && kinds.iter().any(|k| *k != ColumnKind::Numeric);
    !options.bounds.is_empty() || options.drop_duplicates || imputes_text
}

/// [`clean`] of a table none of whose feature cells is missing, from its labels alone, when
/// [`needs_values`] is false: the rows it keeps (indices into the table; `None` when it keeps
/// every row, the usual case, which then needs no list of them: 8 MB of fresh memory at 1M
/// rows) and its report, the same as `clean`'s (a proptest holds them so), without reading the
/// values.
pub fn clean_labels(
    y: &[f64],
    lines: &[u64],
    label_name: &str,
    options: &CleanOptions,
) -> Result<(Option<Vec<usize>>, CleanReport), DataError> {
    let mut report = CleanReport { rows_in: y.len(), ..CleanReport::default() };
    if y.is_empty() {
        return Err(DataError::NoRows);
    }
    if !y.iter().any(|label| label.is_nan()) {
        report.rows_kept = y.len();
        return Ok((None, report));
    }
    let mut kept = Vec::with_capacity(y.len());
    for (i, (label, &line)) in y.iter().zip(lines).enumerate() {
        if label.is_nan() {
            report.missing_label(line, label_name, options.missing)?;
        } else {
            kept.push(i);
        }
    }
    report.rows_kept = kept.len();
    if kept.is_empty() {
        return Err(DataError::NoRows);
    }
    Ok((Some(kept), report))
}

/// [`clean`], with the indices of the rows it kept.
pub fn clean_keeping(
    raw: &RawTable,
    options: &CleanOptions,
) -> Result<(Dataset, Vec<usize>, CleanReport), DataError> {
    let d = raw.width();
    let mut report = CleanReport { rows_in: raw.rows(), ..CleanReport::default() };
    let mut kinds: Vec<ColumnKind> =
        (0..d).map(|j| raw.kinds.get(j).cloned().unwrap_or_default()).collect();
    let bounds = bounded_columns(raw, &kinds, options)?;
    let fills: Vec<f64> = match options.missing {
        MissingPolicy::ImputeMean | MissingPolicy::ImputeMedian => {
            (0..d).map(|j| imputed_value(raw, j, &mut kinds[j], options)).collect()
        }
        _ => Vec::new(),
    };
    let mut seen: HashSet<Vec<u64>> = HashSet::new();
    let mut x = Vec::with_capacity(raw.x.len());
    let mut y = Vec::with_capacity(raw.rows());
    let mut kept = Vec::with_capacity(raw.rows());
    let mut row = vec![0.0; d];
    'rows: for i in 0..raw.rows() {
        let line = raw.lines[i];
        row.copy_from_slice(&raw.x[i * d..(i + 1) * d]);
        let label = raw.y[i];
        let first_missing = row.iter().position(|v| v.is_nan());
        if let (MissingPolicy::Error, Some(j)) = (options.missing, first_missing) {
            return Err(DataError::EmptyValue { line, column: raw.feature_names[j].clone() });
        }
        if label.is_nan() {
            report.missing_label(line, &raw.label_name, options.missing)?;
            continue;
        }
        if first_missing.is_some()
            && !fill_or_drop(&mut row, (line, &raw.feature_names), &fills, options, &mut report)
        {
            continue;
        }
        for (j, bound) in &bounds {
            let v = row[*j];
            if bound.min.is_some_and(|m| v < m) || bound.max.is_some_and(|m| v > m) {
                report.drop_row(line, &format!("{} out of bounds", bound.column));
                continue 'rows;
            }
        }
        if options.drop_duplicates {
            let key: Vec<u64> =
                row.iter().chain(std::iter::once(&label)).map(|v| v.to_bits()).collect();
            if !seen.insert(key) {
                report.drop_row(line, "duplicate");
                continue;
            }
        }
        x.extend_from_slice(&row);
        y.push(label);
        kept.push(i);
    }
    report.rows_kept = y.len();
    let dataset = Dataset {
        feature_names: raw.feature_names.clone(),
        label_name: raw.label_name.clone(),
        kinds,
        classes: raw.classes.clone(),
        x,
        y,
        roles: raw.roles.clone(),
    };
    if dataset.rows() == 0 {
        return Err(DataError::NoRows);
    }
    Ok((dataset, kept, report))
}

/// The columns `options` bounds, by index: each named by the data and numeric.
fn bounded_columns<'o>(
    raw: &RawTable,
    kinds: &[ColumnKind],
    options: &'o CleanOptions,
) -> Result<Vec<(usize, &'o Bound)>, DataError> {
    options
        .bounds
        .iter()
        .map(|b| {
            let j = raw.feature_names.iter().position(|n| *n == b.column).ok_or_else(|| {
                DataError::UnknownColumn {
                    name: b.column.clone(),
                    available: raw.feature_names.join(", "),
                }
            })?;
            if kinds[j] != ColumnKind::Numeric {
                return Err(DataError::Column(
                    b.column.clone(),
                    "bounds apply to numeric columns; this one holds text".into(),
                ));
            }
            Ok((j, b))
        })
        .collect()
}

/// A row with a missing cell (line `line`), by the policy: dropped (false, counted by column)
/// or its missing cells filled from `fills` (true, counted as imputed).
fn fill_or_drop(
    row: &mut [f64],
    (line, names): (u64, &[String]),
    fills: &[f64],
    options: &CleanOptions,
    report: &mut CleanReport,
) -> bool {
    if options.missing == MissingPolicy::Drop {
        report.drop_row(line, "missing value");
        for (j, v) in row.iter().enumerate() {
            if v.is_nan() {
                *report.missing_by_column.entry(names[j].clone()).or_default() += 1;
            }
        }
        return false;
    }
    for (j, v) in row.iter_mut().enumerate() {
        if v.is_nan() {
            *v = fills[j];
            *report.imputed.entry(names[j].clone()).or_default() += 1;
        }
    }
    true
}

/// What a missing cell of column `j` becomes: the mean or median of a numeric column, the most
/// frequent level of a text column or a level of its own (added to `kind`).
fn imputed_value(raw: &RawTable, j: usize, kind: &mut ColumnKind, options: &CleanOptions) -> f64 {
    let d = raw.width();
    let present = || (0..raw.rows()).map(|i| raw.x[i * d + j]).filter(|v| !v.is_nan());
    match kind {
        ColumnKind::Numeric if options.missing == MissingPolicy::ImputeMedian => {
            let mut values: Vec<f64> = present().collect();
            if values.is_empty() {
                return 0.0;
            }
            values.sort_by(f64::total_cmp);
            let mid = values.len() / 2;
            if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
        }
        ColumnKind::Numeric => {
            let (sum, n) = present().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            if n == 0 { 0.0 } else { sum / n as f64 }
        }
        ColumnKind::Categorical { levels } => match options.text_missing {
            TextMissing::Level => {
                let code = levels.iter().position(|l| l == MISSING_LEVEL).unwrap_or_else(|| {
                    levels.push(MISSING_LEVEL.to_string());
                    levels.len() - 1
                });
                code as f64
            }
            TextMissing::MostFrequent => {
                let mut counts = vec![0usize; levels.len()];
                for v in present() {
                    counts[v as usize] += 1;
                }
                // The first of the most frequent: `max_by_key` keeps the last, so reversed.
                counts
                    .iter()
                    .enumerate()
                    .rev()
                    .max_by_key(|(_, c)| **c)
                    .map_or(0.0, |(code, _)| code as f64)
            }
        },
    }
}

/// Makes a separately read test dataset speak the training dataset's codes: each categorical
/// column's test levels are found among the training ones (levels training lacks are added
/// after them, so that evaluation can name them), and a text label's classes are matched by
/// name. Numeric columns are left as they are.
pub fn align_levels(train: &mut Dataset, test: &mut Dataset) -> Result<(), DataError> {
    align_to(&mut train.kinds, train.classes.as_ref(), test)
}

/// [`align_levels`] against the training dataset's column kinds and classes alone (its
/// values are not needed): `kinds` gains the levels only the test dataset has.
pub fn align_to(
    kinds: &mut [ColumnKind],
    classes: Option<&Classes>,
    test: &mut Dataset,
) -> Result<(), DataError> {
    let d = test.width();
    for j in 0..d {
        let name = &test.feature_names[j];
        match (kinds.get_mut(j), test.kind(j).clone()) {
            (None | Some(ColumnKind::Numeric), ColumnKind::Numeric) => {}
            (
                Some(ColumnKind::Categorical { levels }),
                ColumnKind::Categorical { levels: test_levels },
            ) => {
                // By a map of the training levels: a column of 100,000 levels, searched a level
                // at a time, took 9 s.
                let mut codes: std::collections::HashMap<String, usize> =
                    levels.iter().enumerate().map(|(i, l)| (l.clone(), i)).collect();
                let map: Vec<f64> = test_levels
                    .iter()
                    .map(|level| {
                        let code = *codes.entry(level.clone()).or_insert_with(|| {
                            levels.push(level.clone());
                            levels.len() - 1
                        });
                        code as f64
                    })
                    .collect();
                for v in test.x.iter_mut().skip(j).step_by(d) {
                    *v = map[*v as usize];
                }
            }
            _ => {
                return Err(DataError::Column(
                    name.clone(),
                    "holds text in one of the training and test files and numbers in the other"
                        .into(),
                ));
            }
        }
    }
    test.kinds = kinds.to_vec();
    match (classes, &test.classes) {
        (None, None) => {}
        (Some(a), Some(b)) if a == b => {}
        (Some(a), Some(b)) if b.positive == a.negative || b.negative == a.positive => {
            for y in &mut test.y {
                *y = 1.0 - *y;
            }
            test.classes = classes.cloned();
        }
        (Some(a), Some(b)) if b.positive == a.positive => test.classes = classes.cloned(),
        (a, b) => {
            let names = |c: Option<&Classes>| {
                c.map_or("0 and 1".to_string(), |c| format!("{} and {}", c.negative, c.positive))
            };
            return Err(DataError::Column(
                test.label_name.clone(),
                format!(
                    "the test data's labels ({}) differ from the training data's ({})",
                    names(b.as_ref()),
                    names(a)
                ),
            ));
        }
    }
    Ok(())
}

/// A train/test split.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
}

/// Splits stratified by label: each class is shuffled with the seed and `test_fraction` of it
/// (rounded, at least one row when the class has two or more) goes to test. The same seed
/// and data give the same split.
pub fn stratified_split(data: &Dataset, test_fraction: f64, seed: u64) -> Result<Split, DataError> {
    data.check_both_classes()?;
    let (train_idx, test_idx) = stratified_rows(&data.y, test_fraction, seed);
    Ok(Split { train: data.subset(&train_idx), test: data.subset(&test_idx) })
}

/// The rows (indices into `y`) of each part of [`stratified_split`]: (train, test), each in
/// increasing order, so that a part keeps the file's order.
///
/// Class 0's rows are shuffled first and class 1's with the generator where class 0's shuffle
/// left it. The draws of a shuffle depend only on its length, so shuffling a slice of `()` that
/// long moves a copy of the generator to that point at the cost of the draws alone, and the
/// two classes are shuffled on two cores: the same split, row for row, as shuffling one after
/// the other.
pub fn stratified_rows(y: &[f64], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    // Row numbers as u32 where they fit: the shuffles' swaps then move half the memory.
    if u32::try_from(y.len()).is_ok() {
        stratified_rows_as::<u32>(y, test_fraction, seed)
    } else {
        stratified_rows_as::<usize>(y, test_fraction, seed)
    }
}

/// A row number as [`stratified_rows`] holds it while shuffling.
trait RowNumber: Copy + Default + Send {
    /// `row`, which the caller has checked fits.
    fn of(row: usize) -> Self;
    fn row(self) -> usize;
}

impl RowNumber for u32 {
    fn of(row: usize) -> Self {
        row as u32
    }
    fn row(self) -> usize {
        self as usize
    }
}

impl RowNumber for usize {
    fn of(row: usize) -> Self {
        row
    }
    fn row(self) -> usize {
        self
    }
}

fn stratified_rows_as<R: RowNumber>(
    y: &[f64],
    test_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    const NEITHER: u8 = 0;
    const TRAIN: u8 = 1;
    const TEST: u8 = 2;
    // Labels are class indices: 0/1, or 0 to K−1 for K classes.
    let class_count =
        y.iter().filter(|v| !v.is_nan()).fold(1.0f64, |top, &v| top.max(v)) as usize + 1;
    let counts: Vec<usize> = (0..class_count)
        .map(|class| y.iter().filter(|&&label| label == class as f64).count())
        .collect();
    // Class c shuffles with the generator class c − 1 used, advanced past that class's shuffle.
    let mut generators = vec![ChaCha8Rng::seed_from_u64(seed)];
    for &count in &counts[..class_count - 1] {
        let mut next = generators.last().expect("the first generator").clone();
        vec![(); count].shuffle(&mut next);
        generators.push(next);
    }
    let shuffled: Vec<Vec<R>> = std::thread::scope(|scope| {
        let shuffling: Vec<_> = generators
            .into_iter()
            .zip(&counts)
            .enumerate()
            .map(|(class, (mut rng, &count))| {
                let class = class as f64;
                scope.spawn(move || {
                    // Written at every row, kept at the class's: no branch on the labels.
                    let mut rows = vec![R::default(); count + 1];
                    let mut kept = 0;
                    for (i, &label) in y.iter().enumerate() {
                        rows[kept.min(count)] = R::of(i);
                        kept += usize::from(label == class);
                    }
                    rows.truncate(count);
                    rows.shuffle(&mut rng);
                    rows
                })
            })
            .collect();
        shuffling
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let mut parts = vec![NEITHER; y.len()];
    for rows in shuffled {
        let mut n_test = (rows.len() as f64 * test_fraction).round() as usize;
        if test_fraction > 0.0 && n_test == 0 && rows.len() >= 2 {
            n_test = 1;
        }
        n_test = n_test.min(rows.len().saturating_sub(1));
        let (test, train) = rows.split_at(n_test);
        for (part, rows) in [(TEST, test), (TRAIN, train)] {
            for &row in rows {
                parts[row.row()] = part;
            }
        }
    }
    // Each part in the file's order: the rows marked, read off in order, not the shuffled rows
    // sorted back. Every row is written to both parts
    // and counted in the one it belongs to, so the loop has no branch on its random parts.
    let train_rows = counts.iter().sum::<usize>() - parts.iter().filter(|&&p| p == TEST).count();
    let test_rows = y.len() - train_rows;
    let (mut train, mut test) = (vec![0; train_rows + 1], vec![0; test_rows + 1]);
    let (mut in_train, mut in_test) = (0, 0);
    for (i, &part) in parts.iter().enumerate() {
        train[in_train.min(train_rows)] = i;
        test[in_test.min(test_rows)] = i;
        in_train += usize::from(part == TRAIN);
        in_test += usize::from(part == TEST);
    }
    train.truncate(in_train);
    test.truncate(in_test);
    (train, test)
}

/// Splits off a validation part of the training rows (for the validation loss curve and
/// early stopping); stratified and seeded like [`stratified_split`].
pub fn validation_split(train: &Dataset, fraction: f64, seed: u64) -> Result<Split, DataError> {
    stratified_split(train, fraction, seed ^ 0x9e37_79b9_7f4a_7c15)
}

/// The values of the role columns that are not inputs of the model, one per row, taken out
/// of a dataset's rows ([`RowColumns::take`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowColumns {
    /// The role columns' names, the offset among them.
    pub names: RoleColumns,
    pub weights: Option<Vec<f64>>,
    /// Each row's cluster, as the code or number the column holds.
    pub cluster: Option<Vec<f64>>,
    pub folds: Option<Vec<f64>>,
}

impl RowColumns {
    /// The names of `data`'s features that are inputs of the model: all but the weight,
    /// cluster and fold columns.
    pub fn model_inputs(data: &Dataset) -> Vec<&str> {
        let row_only: Vec<&str> = data.roles.of_rows_only().map(|(_, name)| name).collect();
        data.feature_names
            .iter()
            .map(String::as_str)
            .filter(|name| !row_only.contains(name))
            .collect()
    }

    /// Takes the weight, cluster and fold columns out of `data` (its features are then the
    /// model's inputs, the offset among them) and returns their values.
    pub fn take(data: &mut Dataset) -> RowColumns {
        let mut out = RowColumns { names: data.roles.clone(), ..RowColumns::default() };
        let roles: Vec<(Role, usize)> = data
            .roles
            .of_rows_only()
            .filter_map(|(role, name)| {
                Some((role, data.feature_names.iter().position(|n| n == name)?))
            })
            .collect();
        if roles.is_empty() {
            return out;
        }
        let d = data.width();
        for &(role, j) in &roles {
            let values = Some(data.x.iter().skip(j).step_by(d).copied().collect());
            match role {
                Role::Weights => out.weights = values,
                Role::Cluster => out.cluster = values,
                Role::Folds => out.folds = values,
                Role::Offset => {}
            }
        }
        let kept: Vec<usize> = (0..d).filter(|j| !roles.iter().any(|(_, r)| r == j)).collect();
        let mut x = Vec::with_capacity(data.rows() * kept.len());
        for row in data.x.chunks_exact(d) {
            x.extend(kept.iter().map(|&j| row[j]));
        }
        data.x = x;
        if !data.kinds.is_empty() {
            data.kinds = kept.iter().map(|&j| data.kinds[j].clone()).collect();
        }
        data.feature_names = kept.iter().map(|&j| data.feature_names[j].clone()).collect();
        data.roles = RoleColumns { offset: data.roles.offset.take(), ..RoleColumns::default() };
        out
    }

    /// Whether any row's weight is zero.
    fn has_zero_weights(&self) -> bool {
        self.weights.as_ref().is_some_and(|w| w.contains(&0.0))
    }

    /// How many distinct clusters the cluster column holds, if there is one.
    pub fn clusters(&self) -> Option<usize> {
        self.cluster.as_ref().map(|c| {
            let mut distinct: Vec<u64> = c.iter().map(|v| v.to_bits()).collect();
            distinct.sort_unstable();
            distinct.dedup();
            distinct.len()
        })
    }

    /// What the fit's report says of these columns, for a fit of `rows` rows after
    /// [`RowColumns::drop_unweighted`] dropped `dropped` of them.
    pub fn report(&self, rows: usize, dropped: usize) -> Option<RowReport> {
        if self.names.is_empty() {
            return None;
        }
        let clusters = self.clusters();
        let weight_sum = self.weights.as_ref().map(|w| w.iter().sum());
        Some(RowReport {
            columns: self.names.clone(),
            rows,
            weight_sum,
            dropped_rows: dropped,
            clusters,
        })
    }

    /// Drops the rows of weight 0 from `data` and from these columns: such a row is not in the
    /// data the fit equals ("each row repeated w times"), so no check may see it either.
    /// Returns how many it dropped.
    pub fn drop_unweighted(&mut self, data: &mut Dataset) -> usize {
        if !self.has_zero_weights() {
            return 0;
        }
        let Some(weights) = &self.weights else { return 0 };
        let rows = weights.len();
        let keep: Vec<bool> = weights.iter().map(|&w| w != 0.0).collect();
        retain_rows(&mut data.x, &keep, data.feature_names.len());
        retain_rows(&mut data.y, &keep, 1);
        for column in [&mut self.weights, &mut self.cluster, &mut self.folds].into_iter().flatten()
        {
            retain_rows(column, &keep, 1);
        }
        rows - data.y.len()
    }
}

/// Keeps the rows (of `width` values each) whose `keep` is true.
fn retain_rows(values: &mut Vec<f64>, keep: &[bool], width: usize) {
    let mut at = 0;
    values.retain(|_| {
        at += 1;
        keep[(at - 1) / width.max(1)]
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{CsvOptions, RawTable};

    fn raw(text: &str) -> RawTable {
        RawTable::from_csv(text.as_bytes(), &CsvOptions::default()).expect("valid csv")
    }

    #[test]
    fn missing_error_names_line_and_column() {
        let err = clean(&raw("a,y\n1,1\n,0\n"), &CleanOptions::default()).unwrap_err();
        assert_eq!(err, DataError::EmptyValue { line: 3, column: "a".into() });
    }

    #[test]
    fn drop_reports_lines_and_reasons() {
        let options = CleanOptions {
            missing: MissingPolicy::Drop,
            bounds: vec![Bound { column: "a".into(), min: Some(0.0), max: Some(100.0) }],
            drop_duplicates: true,
            ..CleanOptions::default()
        };
        let (d, report) =
            clean(&raw("a,y\n1,1\n,0\n200,1\n1,1\n5,\n7,0\n"), &options).expect("cleans");
        assert_eq!(d.x, vec![1.0, 7.0]);
        assert_eq!(report.rows_in, 6);
        assert_eq!(report.rows_kept, 2);
        assert_eq!(report.dropped["missing value"], 1);
        assert_eq!(report.dropped["a out of bounds"], 1);
        assert_eq!(report.dropped["duplicate"], 1);
        assert_eq!(report.dropped["missing label"], 1);
        let lines: Vec<u64> = report.dropped_lines.iter().map(|l| l.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6]);
    }

    #[test]
    fn impute_mean_fills_features() {
        let options = CleanOptions { missing: MissingPolicy::ImputeMean, ..Default::default() };
        let (d, report) = clean(&raw("a,y\n1,1\n,0\n3,0\n"), &options).expect("cleans");
        assert_eq!(d.x, vec![1.0, 2.0, 3.0]);
        assert_eq!(report.imputed["a"], 1);
    }

    /// The split as it was made before the classes were shuffled on cores of their own: class
    /// 0 shuffled, then class 1 (and each class after it, for K classes) with the same
    /// generator, the parts read off a marked array.
    fn stratified_rows_one_class_after_the_other(
        y: &[f64],
        test_fraction: f64,
        seed: u64,
    ) -> (Vec<usize>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut parts = vec![None; y.len()];
        let classes =
            y.iter().filter(|v| !v.is_nan()).fold(1.0f64, |top, &v| top.max(v)) as usize + 1;
        for class in (0..classes).map(|c| c as f64) {
            let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
            idx.shuffle(&mut rng);
            let mut n_test = (idx.len() as f64 * test_fraction).round() as usize;
            if test_fraction > 0.0 && n_test == 0 && idx.len() >= 2 {
                n_test = 1;
            }
            n_test = n_test.min(idx.len().saturating_sub(1));
            for (position, &i) in idx.iter().enumerate() {
                parts[i] = Some(position < n_test);
            }
        }
        let rows_in = |test: bool| {
            parts.iter().enumerate().filter(|&(_, p)| *p == Some(test)).map(|(i, _)| i).collect()
        };
        (rows_in(false), rows_in(true))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// The same seed splits the same rows as before, whatever the labels (two classes or
        /// three; rows of no class, a missing label, in neither part) and fraction, with row
        /// numbers held as u32 or as usize.
        #[test]
        fn the_classes_shuffled_on_two_cores_split_as_one_after_the_other(
            labels in proptest::collection::vec(proptest::prop_oneof![8 => 0u8..2, 1 => 2u8..4], 0..3000),
            test_fraction in proptest::prop_oneof![0.0..1.0f64, proptest::strategy::Just(0.0), proptest::strategy::Just(0.5)],
            seed in proptest::prelude::any::<u64>(),
        ) {
            let y: Vec<f64> = labels.iter().map(|&l| match l { 0 => 0.0, 1 => 1.0, 2 => 2.0, _ => f64::NAN }).collect();
            let before = stratified_rows_one_class_after_the_other(&y, test_fraction, seed);
            proptest::prop_assert_eq!(&stratified_rows(&y, test_fraction, seed), &before);
            proptest::prop_assert_eq!(&stratified_rows_as::<usize>(&y, test_fraction, seed), &before);
        }
    }

    #[test]
    fn split_is_stratified_seeded_and_refuses_one_class() {
        let mut text = String::from("a,y\n");
        for i in 0..100 {
            text.push_str(&format!("{i},{}\n", u8::from(i % 4 == 0)));
        }
        let (d, _) = clean(&raw(&text), &CleanOptions::default()).expect("cleans");
        let s1 = stratified_split(&d, 0.2, 7).expect("splits");
        let s2 = stratified_split(&d, 0.2, 7).expect("splits");
        assert_eq!(s1, s2);
        assert_eq!(s1.test.rows(), 20);
        assert_eq!(s1.test.y.iter().filter(|&&v| v == 1.0).count(), 5);
        assert_ne!(s1, stratified_split(&d, 0.2, 8).expect("splits"));
        let (one, _) = clean(&raw("a,y\n1,1\n2,1\n"), &CleanOptions::default()).expect("cleans");
        assert_eq!(stratified_split(&one, 0.2, 1).unwrap_err(), DataError::SingleClass("1".into()));
    }

    #[test]
    fn a_separate_test_file_is_recoded_to_the_training_levels_and_classes() {
        let (mut train, _) =
            clean(&raw("g,y\nb,yes\na,no\n"), &CleanOptions::default()).expect("cleans");
        // The test file has its own dictionary (a new level c) and only one class, "no", which
        // it reads as its positive class.
        let (mut test, _) =
            clean(&raw("g,y\nc,no\nb,no\n"), &CleanOptions::default()).expect("cleans");
        assert_eq!(test.y, vec![1.0, 1.0]);
        align_levels(&mut train, &mut test).expect("aligns");
        assert_eq!(
            train.kinds[0],
            ColumnKind::Categorical { levels: vec!["a".into(), "b".into(), "c".into()] }
        );
        assert_eq!(test.x, vec![2.0, 1.0], "c after the training levels, b as training codes it");
        assert_eq!(test.y, vec![0.0, 0.0], "\"no\" is class 0, as in training");
        let (mut numeric, _) =
            clean(&raw("g,y\n1,yes\n2,no\n"), &CleanOptions::default()).expect("cleans");
        assert!(matches!(align_levels(&mut train, &mut numeric), Err(DataError::Column(..))));
    }

    #[test]
    fn impute_median_and_text_values_counted_per_column() {
        let text = "a,s,y\n1,x,1\n,y,0\n10,,0\n4,x,1\n";
        let options = CleanOptions { missing: MissingPolicy::ImputeMedian, ..Default::default() };
        let (d, report) = clean(&raw(text), &options).expect("cleans");
        // Median of 1, 10, 4 is 4; the most frequent level of s is x (code 0).
        assert_eq!(d.x, vec![1.0, 0.0, 4.0, 1.0, 10.0, 0.0, 4.0, 0.0]);
        assert_eq!((report.imputed["a"], report.imputed["s"]), (1, 1));
        let options = CleanOptions {
            missing: MissingPolicy::ImputeMean,
            text_missing: TextMissing::Level,
            ..Default::default()
        };
        let (d, _) = clean(&raw(text), &options).expect("cleans");
        assert_eq!(
            d.kinds[1],
            ColumnKind::Categorical { levels: vec!["x".into(), "y".into(), MISSING_LEVEL.into()] }
        );
        assert_eq!(d.x[5], 2.0);
        let options = CleanOptions { missing: MissingPolicy::Drop, ..Default::default() };
        let (d, report) = clean(&raw(text), &options).expect("cleans");
        assert_eq!(d.rows(), 2);
        assert_eq!((report.missing_by_column["a"], report.missing_by_column["s"]), (1, 1));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]
        /// On a table with every feature cell present, cleaning from the labels alone keeps the
        /// rows `clean` keeps and reports what it reports, refusal for refusal, for every
        /// option that needs no value.
        #[test]
        fn cleaning_from_the_labels_is_cleaning_when_no_feature_is_missing(
            cells in proptest::collection::vec((proptest::collection::vec(-5i32..5, 2), proptest::option::weighted(0.8, 0u8..2)), 1..40),
            missing in proptest::sample::select(vec![MissingPolicy::Error, MissingPolicy::Drop, MissingPolicy::ImputeMean, MissingPolicy::ImputeMedian]),
        ) {
            let mut text = String::from("a,b,y\n");
            for (x, label) in &cells {
                text.push_str(&format!("{},{},{}\n", x[0], x[1], label.map_or(String::new(), |l| l.to_string())));
            }
            let table = raw(&text);
            let options = CleanOptions { missing, ..CleanOptions::default() };
            proptest::prop_assert!(!needs_values(&options, &table.kinds));
            let from_labels = clean_labels(&table.y, &table.lines, &table.label_name, &options)
                .map(|(kept, report)| (kept.unwrap_or_else(|| (0..table.rows()).collect()), report));
            let whole = clean_keeping(&table, &options).map(|(data, kept, report)| {
                assert_eq!(data.x, kept.iter().flat_map(|&i| table.x[i * 2..i * 2 + 2].to_vec()).collect::<Vec<_>>(), "kept rows as they were");
                (kept, report)
            });
            proptest::prop_assert_eq!(from_labels, whole);
        }
    }
}
