//! Preprocessing: from a [`RawTable`] to a clean [`Dataset`], and the seeded, stratified
//! train/test [`Split`], with a [`CleanReport`] of what was kept and dropped, by reason.

use crate::table::{DataError, RawTable};
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
    /// Replace an empty feature with the column's mean over the rows that have it. Rows with
    /// an empty label are dropped: a label cannot be made up.
    ImputeMean,
}

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
}

/// A clean dataset: no missing values, labels 0/1.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub feature_names: Vec<String>,
    pub label_name: String,
    /// `rows × features`, row-major.
    pub x: Vec<f64>,
    pub y: Vec<f64>,
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
        Dataset { feature_names: self.feature_names.clone(), label_name: self.label_name.clone(), x, y }
    }
    /// Checks that both classes are present, which fitting and AUC need.
    pub fn check_both_classes(&self) -> Result<(), DataError> {
        let positives = self.y.iter().filter(|&&v| v == 1.0).count();
        if positives == 0 {
            return Err(DataError::SingleClass(0));
        }
        if positives == self.rows() {
            return Err(DataError::SingleClass(1));
        }
        Ok(())
    }
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DroppedLine {
    pub line: u64,
    pub reason: String,
}

impl CleanReport {
    pub const MAX_LINES: usize = 100;
    fn drop_row(&mut self, line: u64, reason: &str) {
        *self.dropped.entry(reason.to_string()).or_default() += 1;
        if self.dropped_lines.len() < Self::MAX_LINES {
            self.dropped_lines.push(DroppedLine { line, reason: reason.to_string() });
        }
    }
}

/// Cleans a raw table by the options.
pub fn clean(raw: &RawTable, options: &CleanOptions) -> Result<(Dataset, CleanReport), DataError> {
    let d = raw.width();
    let mut report = CleanReport { rows_in: raw.rows(), ..CleanReport::default() };
    let bounds: Vec<(usize, &Bound)> = options
        .bounds
        .iter()
        .map(|b| {
            raw.feature_names
                .iter()
                .position(|n| *n == b.column)
                .map(|i| (i, b))
                .ok_or_else(|| DataError::UnknownColumn { name: b.column.clone(), available: raw.feature_names.join(", ") })
        })
        .collect::<Result<_, _>>()?;
    let means: Vec<f64> = if options.missing == MissingPolicy::ImputeMean {
        (0..d)
            .map(|j| {
                let (sum, n) =
                    (0..raw.rows()).map(|i| raw.x[i * d + j]).filter(|v| !v.is_nan()).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
                if n == 0 { 0.0 } else { sum / n as f64 }
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut seen: HashSet<Vec<u64>> = HashSet::new();
    let mut x = Vec::with_capacity(raw.x.len());
    let mut y = Vec::with_capacity(raw.rows());
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
            if options.missing == MissingPolicy::Error {
                return Err(DataError::EmptyValue { line, column: raw.label_name.clone() });
            }
            report.drop_row(line, "missing label");
            continue;
        }
        if first_missing.is_some() {
            match options.missing {
                MissingPolicy::Drop => {
                    report.drop_row(line, "missing value");
                    continue;
                }
                _ => {
                    for (j, v) in row.iter_mut().enumerate() {
                        if v.is_nan() {
                            *v = means[j];
                            *report.imputed.entry(raw.feature_names[j].clone()).or_default() += 1;
                        }
                    }
                }
            }
        }
        for (j, bound) in &bounds {
            let v = row[*j];
            if bound.min.is_some_and(|m| v < m) || bound.max.is_some_and(|m| v > m) {
                report.drop_row(line, &format!("{} out of bounds", bound.column));
                continue 'rows;
            }
        }
        if options.drop_duplicates {
            let key: Vec<u64> = row.iter().chain(std::iter::once(&label)).map(|v| v.to_bits()).collect();
            if !seen.insert(key) {
                report.drop_row(line, "duplicate");
                continue;
            }
        }
        x.extend_from_slice(&row);
        y.push(label);
    }
    report.rows_kept = y.len();
    let dataset = Dataset { feature_names: raw.feature_names.clone(), label_name: raw.label_name.clone(), x, y };
    if dataset.rows() == 0 {
        return Err(DataError::NoRows);
    }
    Ok((dataset, report))
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
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut train_idx = Vec::new();
    let mut test_idx = Vec::new();
    for class in [0.0, 1.0] {
        let mut idx: Vec<usize> = (0..data.rows()).filter(|&i| data.y[i] == class).collect();
        idx.shuffle(&mut rng);
        let mut n_test = (idx.len() as f64 * test_fraction).round() as usize;
        if test_fraction > 0.0 && n_test == 0 && idx.len() >= 2 {
            n_test = 1;
        }
        n_test = n_test.min(idx.len().saturating_sub(1));
        test_idx.extend_from_slice(&idx[..n_test]);
        train_idx.extend_from_slice(&idx[n_test..]);
    }
    // Sorted, so the split keeps the file's order within each part.
    train_idx.sort_unstable();
    test_idx.sort_unstable();
    Ok(Split { train: data.subset(&train_idx), test: data.subset(&test_idx) })
}

/// Splits off a validation part of the training rows (for the validation loss curve and
/// early stopping); stratified and seeded like [`stratified_split`].
pub fn validation_split(train: &Dataset, fraction: f64, seed: u64) -> Result<Split, DataError> {
    stratified_split(train, fraction, seed ^ 0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{ColumnSelection, RawTable};

    fn raw(text: &str) -> RawTable {
        RawTable::from_csv(text.as_bytes(), &ColumnSelection::default()).expect("valid csv")
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
        };
        let (d, report) = clean(&raw("a,y\n1,1\n,0\n200,1\n1,1\n5,\n7,0\n"), &options).expect("cleans");
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
        assert_eq!(stratified_split(&one, 0.2, 1).unwrap_err(), DataError::SingleClass(1));
    }
}
