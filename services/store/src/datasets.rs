//! Datasets in the store: a dataset is `x.npy`, `y.npy`, the file line of each row and
//! `columns.json` (which counts each column's missing cells). The lines are stored as runs of
//! consecutive lines, `line_runs.npy` (a file without blank lines or multi-line records is one
//! run: 16 bytes, not 8 MB for a million rows), or as `lines.npy`, one per row, where that is
//! smaller. A dataset's values can be written as they are parsed ([`DatasetWriter`]).

mod writer;
pub use writer::DatasetWriter;

use crate::npy::Npy;
use crate::npy::count_missing;
use crate::storage::{Contents, StoreError};
use crate::store::json_bytes;
use crate::store::{Kind, Store};
use logitflow_core::clean::Dataset;
use logitflow_core::roles::RoleColumns;
use logitflow_core::table::{Classes, ColumnKind, RawTable};
use serde::{Deserialize, Serialize};
impl Store {
    /// Freezes a raw table as a dataset artifact: `x.npy`, `y.npy`, its lines, `columns.json`
    /// (which counts each column's missing cells, so that a split can know that it need not
    /// read the values).
    pub fn put_table(
        &self,
        table: &RawTable,
        producer: &str,
        params: serde_json::Value,
    ) -> Result<String, StoreError> {
        let d = table.width();
        let mut missing = vec![0u64; d];
        count_missing(&mut missing, &table.x);
        self.put_table_files(table, missing, &Npy::matrix(&table.x, d), producer, params)
    }

    /// Stores `table` as a dataset whose feature matrix is `x` and which misses `missing`
    /// cells per feature: [`Store::put_table`], and [`Store::put_streamed_table`] of a table
    /// whose values went to the store as they were read.
    fn put_table_files(
        &self,
        table: &RawTable,
        missing: Vec<u64>,
        x: &dyn Contents,
        producer: &str,
        params: serde_json::Value,
    ) -> Result<String, StoreError> {
        let columns = Columns {
            feature_names: table.feature_names.clone(),
            label_name: table.label_name.clone(),
            kinds: stored_kinds(&table.kinds),
            classes: table.classes.clone(),
            missing: Some(missing),
            roles: table.roles.clone(),
        };
        self.put_dataset_files(&columns, x, &table.y, &table.lines, producer, Vec::new(), params)
    }

    /// Stores clean rows (a dataset that cleaning changed, or a part of a split given whole) as
    /// a dataset artifact that splits can take rows from; `lines` are the file lines the rows
    /// came from.
    pub fn put_dataset(
        &self,
        data: &Dataset,
        lines: &[u64],
        producer: &str,
        inputs: Vec<String>,
        params: serde_json::Value,
    ) -> Result<String, StoreError> {
        let columns = Columns::of(data, Some(vec![0; data.width()]));
        self.put_dataset_files(
            &columns,
            &Npy::matrix(&data.x, data.width()),
            &data.y,
            lines,
            producer,
            inputs,
            params,
        )
    }

    /// Stores a dataset of `columns`, whose feature matrix is `x` (`x.npy`).
    #[allow(clippy::too_many_arguments)]
    fn put_dataset_files(
        &self,
        columns: &Columns,
        x: &dyn Contents,
        y: &[f64],
        lines: &[u64],
        producer: &str,
        inputs: Vec<String>,
        params: serde_json::Value,
    ) -> Result<String, StoreError> {
        let columns = json_bytes(columns)?;
        let runs = line_runs(lines);
        let lines: (&str, &dyn Contents) = if runs.len() < lines.len() {
            ("line_runs.npy", &Npy::matrix(&runs, 2))
        } else {
            ("lines.npy", &Npy::vector(lines))
        };
        let files: [(&str, &dyn Contents); 4] =
            [("x.npy", x), ("y.npy", &Npy::vector(y)), lines, ("columns.json", &columns)];
        self.put_contents(Kind::Dataset, producer, inputs, params, &files)
    }

    /// The file line of each of a dataset's `rows` rows, from whichever of `line_runs.npy` and
    /// `lines.npy` it has.
    fn read_lines(&self, id: &str, rows: usize) -> Result<Vec<u64>, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt { id: id.into(), detail };
        if self.manifest(id)?.files.contains_key("line_runs.npy") {
            let (shape, runs) = self.read_npy::<u64>(id, Kind::Dataset, "line_runs.npy")?;
            if shape[..] != [runs.len() / 2, 2] {
                return Err(corrupt(format!("line_runs.npy has shape {shape:?}, not (runs, 2)")));
            }
            lines_from_runs(&runs, rows).map_err(|e| corrupt(format!("line_runs.npy: {e}")))
        } else {
            let lines: Vec<u64> = self.read_vector(id, Kind::Dataset, "lines.npy")?;
            if lines.len() != rows {
                return Err(corrupt("y.npy and lines.npy disagree in length".into()));
            }
            Ok(lines)
        }
    }

    /// A dataset's columns, labels and file lines, without its values: what a split needs when
    /// the columns say that no value is missing.
    pub fn load_labels(&self, id: &str) -> Result<Labels, StoreError> {
        let columns: Columns = self.read_json(id, Kind::Dataset, "columns.json")?;
        let y: Vec<f64> = self.read_vector(id, Kind::Dataset, "y.npy")?;
        let lines = self.read_lines(id, y.len())?;
        Ok(Labels { columns, y, lines })
    }

    pub fn load_table(&self, id: &str) -> Result<RawTable, StoreError> {
        let columns: Columns = self.read_json(id, Kind::Dataset, "columns.json")?;
        let (rows, columns_read, x) = self.read_matrix(id, Kind::Dataset, "x.npy")?;
        let y: Vec<f64> = self.read_vector(id, Kind::Dataset, "y.npy")?;
        let lines = self.read_lines(id, y.len())?;
        if columns_read != columns.feature_names.len() || rows != y.len() {
            return Err(StoreError::Corrupt {
                id: id.into(),
                detail: "matrix shapes disagree".into(),
            });
        }
        Ok(RawTable {
            feature_names: columns.feature_names,
            label_name: columns.label_name,
            kinds: columns.kinds,
            classes: columns.classes,
            x,
            y,
            lines,
            notes: Vec::new(),
            roles: columns.roles,
        })
    }

    /// A dataset's rows read whole and hash-checked, for a part of a split of it to be taken
    /// out of in place ([`Store::take_split_part`]): train loads them while preprocess, which
    /// leaves a core idle, is still splitting them.
    pub fn load_dataset_rows(&self, id: &str) -> Result<DatasetRows, StoreError> {
        let columns: Columns = self.read_json(id, Kind::Dataset, "columns.json")?;
        let y: Vec<f64> = self.read_vector(id, Kind::Dataset, "y.npy")?;
        let (shape, x, start) = self.read_npy_unmoved::<f64>(id, Kind::Dataset, "x.npy")?;
        let width = columns.feature_names.len();
        if shape[..] != [y.len(), width] {
            let detail = format!(
                "x.npy has shape {shape:?}, not ({}, {width}) as y.npy and columns.json say",
                y.len()
            );
            return Err(StoreError::Corrupt { id: id.into(), detail });
        }
        Ok(DatasetRows { id: id.to_string(), x, start, width, y })
    }
}

/// The column names of a dataset or split artifact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Columns {
    pub feature_names: Vec<String>,
    pub label_name: String,
    /// One per feature; empty (as written before text features) means all numeric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<ColumnKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Classes>,
    /// A dataset's missing cells, one count per feature; absent in a split, and in datasets
    /// stored before it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<u64>>,
    /// The features that have a role: weights, offset, cluster, folds.
    #[serde(default, skip_serializing_if = "RoleColumns::is_empty")]
    pub roles: RoleColumns,
}

impl Columns {
    /// The columns of clean data.
    pub fn of(data: &Dataset, missing: Option<Vec<u64>>) -> Columns {
        Columns {
            feature_names: data.feature_names.clone(),
            label_name: data.label_name.clone(),
            kinds: stored_kinds(&data.kinds),
            classes: data.classes.clone(),
            missing,
            roles: data.roles.clone(),
        }
    }

    /// The clean data of these columns with rows `x` and labels `y`: what [`Columns::of`] was
    /// taken from.
    pub(crate) fn into_dataset(self, x: Vec<f64>, y: Vec<f64>) -> Dataset {
        Dataset {
            feature_names: self.feature_names,
            label_name: self.label_name,
            kinds: self.kinds,
            classes: self.classes,
            x,
            y,
            roles: self.roles,
        }
    }

    /// True when every feature is numeric (no kinds listed, as written before text features,
    /// means all numeric).
    pub fn all_numeric(&self) -> bool {
        self.kinds.iter().all(|kind| *kind == ColumnKind::Numeric)
    }

    /// True when the columns are known to have no missing cell.
    pub fn none_missing(&self) -> bool {
        self.missing.as_ref().is_some_and(|counts| {
            counts.len() == self.feature_names.len() && counts.iter().all(|&c| c == 0)
        })
    }
}

/// `lines` as runs of consecutive lines, flat: (the run's first row, its line) for each row
/// whose line is not the one after the row before's.
pub(crate) fn line_runs(lines: &[u64]) -> Vec<u64> {
    let mut runs = Vec::new();
    for (row, &line) in lines.iter().enumerate() {
        if row == 0 || lines[row - 1].checked_add(1) != Some(line) {
            runs.extend([row as u64, line]);
        }
    }
    runs
}

/// The lines of `rows` rows from [`line_runs`]; runs no writer makes (the first not at row 0,
/// out of order, past the rows, or past the largest line number) are refused.
pub(crate) fn lines_from_runs(runs: &[u64], rows: usize) -> Result<Vec<u64>, String> {
    let runs: Vec<(usize, u64)> =
        runs.chunks_exact(2).map(|r| (usize::try_from(r[0]).unwrap_or(usize::MAX), r[1])).collect();
    match runs.first() {
        None if rows == 0 => return Ok(Vec::new()),
        Some(&(0, _)) => {}
        _ => return Err(format!("its runs do not start at row 0 of {rows}")),
    }
    let mut lines = Vec::with_capacity(rows);
    for (i, &(start, first)) in runs.iter().enumerate() {
        let end = runs.get(i + 1).map_or(rows, |next| next.0);
        if end <= start || end > rows {
            return Err(format!("run {i} covers rows {start}..{end} of {rows}"));
        }
        let last = first
            .checked_add((end - start - 1) as u64)
            .ok_or_else(|| format!("run {i} runs past the last line number"))?;
        lines.extend(first..=last);
    }
    Ok(lines)
}

/// A dataset's labels and file lines with its columns ([`Store::load_labels`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    pub columns: Columns,
    pub y: Vec<f64>,
    pub lines: Vec<u64>,
}

/// A dataset's rows read whole ([`Store::load_dataset_rows`]): its features as read from
/// `x.npy`, its header's place included, and its labels.
pub struct DatasetRows {
    pub(crate) id: String,
    /// The file's values from index `start`, row-major, `width` a row.
    pub(crate) x: Vec<f64>,
    pub(crate) start: usize,
    pub(crate) width: usize,
    pub(crate) y: Vec<f64>,
}

impl DatasetRows {
    /// The dataset's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The column kinds as stored: none when every column is numeric, as before text columns.
pub(crate) fn stored_kinds(kinds: &[ColumnKind]) -> Vec<ColumnKind> {
    if kinds.iter().all(|k| *k == ColumnKind::Numeric) { Vec::new() } else { kinds.to_vec() }
}

/// Refuses split `id` whose `source` dataset has rows of another width than the split's
/// columns.
pub(crate) fn check_source_width(
    id: &str,
    source: &str,
    source_width: usize,
    columns: &Columns,
) -> Result<(), StoreError> {
    let width = columns.feature_names.len();
    if source_width != width {
        let detail = format!("its source {source} has {source_width} columns, the split {width}");
        return Err(StoreError::Corrupt { id: id.into(), detail });
    }
    Ok(())
}
