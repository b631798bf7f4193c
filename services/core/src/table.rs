//! A CSV file read into numbers: [`RawTable`].
//!
//! Every cell is parsed here, once, so that every later stage works on `f64`. A cell that is
//! not a finite number is an error naming its line and column; an empty cell is kept as
//! *missing* (`NaN` in storage — never a parsed value, since `NaN` in the input is refused),
//! because what to do with it is preprocess's decision.

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;

/// What can be wrong with a CSV file. Lines are 1-based and count the header as line 1.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DataError {
    #[error("the file is empty: it needs a header line and at least one data row")]
    Empty,
    #[error("the file has a header but no data rows")]
    NoRows,
    #[error("line {line}: expected {expected} fields like the header, found {found}")]
    FieldCount { line: u64, expected: usize, found: usize },
    #[error("line {line}, column {column:?}: {value:?} is not a number")]
    NotANumber { line: u64, column: String, value: String },
    #[error("line {line}, column {column:?}: {value:?} is not finite (NaN and infinities are refused)")]
    NotFinite { line: u64, column: String, value: String },
    #[error("line {line}, column {column:?}: the value is empty")]
    EmptyValue { line: u64, column: String },
    #[error("line {line}, label column {column:?}: {value} is not a label; labels must be 0 or 1")]
    BadLabel { line: u64, column: String, value: String },
    #[error("unknown column {name:?}; the header has: {available}")]
    UnknownColumn { name: String, available: String },
    #[error("the header names column {0:?} twice")]
    DuplicateColumn(String),
    #[error("the header has an empty column name (column {0})")]
    EmptyColumnName(usize),
    #[error("the label column {0:?} cannot also be a feature")]
    LabelIsFeature(String),
    #[error("there must be at least one feature column besides the label")]
    NoFeatures,
    #[error("every row has label {0}: training needs both classes (0 and 1)")]
    SingleClass(u8),
    #[error("line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("reading the file: {0}")]
    Io(String),
}

/// Which columns to use: the label by name (default: the last column), the features by name
/// (default: every other column).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ColumnSelection {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub features: Option<Vec<String>>,
}

/// A CSV file's selected columns as numbers, row-major. Missing cells are `NaN`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTable {
    pub feature_names: Vec<String>,
    pub label_name: String,
    /// `rows × features`, row-major; `NaN` marks an empty cell.
    pub x: Vec<f64>,
    /// One label per row: 0.0, 1.0 or `NaN` (empty).
    pub y: Vec<f64>,
    /// The file line each row came from, so reports can name it.
    pub lines: Vec<u64>,
}

impl RawTable {
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    pub fn width(&self) -> usize {
        self.feature_names.len()
    }

    /// Reads CSV with a header. Accepts a UTF-8 BOM, CRLF line ends, quoted fields and blank
    /// lines; a cell of only spaces counts as empty.
    pub fn from_csv<R: Read>(reader: R, select: &ColumnSelection) -> Result<Self, DataError> {
        let newlines = Rc::new(RefCell::new(Vec::new()));
        let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(NewlineIndex {
            inner: reader,
            offset: 0,
            last_was_cr: false,
            newlines: Rc::clone(&newlines),
        });
        // The csv crate does not count skipped blank lines, so a record's line comes from the
        // reader's byte position after it: the newlines before its end. Rows note only their
        // position; the lines are worked out in one walk at the end (`lines_at`).
        let line_after = |position: u64| lines_at(&newlines.borrow(), &[position])[0];
        let mut rec = csv::ByteRecord::new();
        let header = loop {
            match csv.read_byte_record(&mut rec) {
                Ok(false) => return Err(DataError::Empty),
                Err(e) => return Err(csv_error(e, line_after(csv.position().byte()))),
                Ok(true) if is_blank(&rec) => continue,
                Ok(true) => break rec.clone(),
            }
        };
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let raw = String::from_utf8_lossy(field);
                // The csv crate leaves a UTF-8 byte-order mark on the first field.
                let name = if i == 0 { raw.trim_start_matches('\u{feff}').trim() } else { raw.trim() };
                name.to_string()
            })
            .collect();
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                return Err(DataError::EmptyColumnName(i + 1));
            }
            if names[..i].contains(name) {
                return Err(DataError::DuplicateColumn(name.clone()));
            }
        }
        let (label_idx, feature_idx) = select_columns(&names, select)?;
        let width = names.len();
        let mut table = RawTable {
            feature_names: feature_idx.iter().map(|&i| names[i].clone()).collect(),
            label_name: names[label_idx].clone(),
            x: Vec::new(),
            y: Vec::new(),
            lines: Vec::new(),
        };
        let mut positions = Vec::new();
        loop {
            match csv.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_error(e, line_after(csv.position().byte()))),
            }
            let position = csv.position().byte();
            if is_blank(&rec) {
                continue;
            }
            let line = || line_after(position);
            if rec.len() != width {
                return Err(DataError::FieldCount { line: line(), expected: width, found: rec.len() });
            }
            for &i in &feature_idx {
                table.x.push(parse_cell(&rec[i], &line, &names[i])?);
            }
            let label = parse_cell(&rec[label_idx], &line, &names[label_idx])?;
            if !label.is_nan() && label != 0.0 && label != 1.0 {
                return Err(DataError::BadLabel {
                    line: line(),
                    column: names[label_idx].clone(),
                    value: String::from_utf8_lossy(rec[label_idx].trim_ascii()).into_owned(),
                });
            }
            table.y.push(label);
            positions.push(position);
        }
        table.lines = lines_at(&newlines.borrow(), &positions);
        if table.y.is_empty() {
            return Err(DataError::NoRows);
        }
        Ok(table)
    }
}

/// Passes bytes through, noting where every line break ends: the offset just past its `\n`,
/// `\r\n`, or lone `\r` (the csv crate ends records at all three, so a file with old Mac line
/// ends would otherwise be all on "line 1" — found by the `csv_table` fuzz target).
struct NewlineIndex<R> {
    inner: R,
    offset: u64,
    last_was_cr: bool,
    newlines: Rc<RefCell<Vec<u64>>>,
}

impl<R: Read> Read for NewlineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.newlines.borrow_mut();
        for (i, &b) in buf[..n].iter().enumerate() {
            let end = self.offset + i as u64 + 1;
            match b {
                // The `\n` of a `\r\n` extends the break its `\r` started.
                b'\n' if self.last_was_cr => {
                    if let Some(last) = breaks.last_mut() {
                        *last = end;
                    }
                }
                b'\n' | b'\r' => breaks.push(end),
                _ => {}
            }
            self.last_was_cr = b == b'\r';
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The 1-based line of each reader position (positions ascending), given where the line breaks
/// end: one merge walk over both.
fn lines_at(break_ends: &[u64], positions: &[u64]) -> Vec<u64> {
    let mut before = 0;
    positions
        .iter()
        .map(|&position| {
            while before < break_ends.len() && break_ends[before] <= position {
                before += 1;
            }
            let ends_with_break = before > 0 && break_ends[before - 1] == position;
            before as u64 + u64::from(!ends_with_break)
        })
        .collect()
}

/// A line of only separators and spaces.
fn is_blank(rec: &csv::ByteRecord) -> bool {
    rec.iter().all(|f| f.trim_ascii().is_empty())
}

fn csv_error(e: csv::Error, line: u64) -> DataError {
    match e.kind() {
        csv::ErrorKind::Io(io) => DataError::Io(io.to_string()),
        _ => DataError::Csv { line, message: e.to_string() },
    }
}

fn select_columns(names: &[String], select: &ColumnSelection) -> Result<(usize, Vec<usize>), DataError> {
    let find = |name: &str| {
        names.iter().position(|n| n == name).ok_or_else(|| DataError::UnknownColumn { name: name.to_string(), available: names.join(", ") })
    };
    let label_idx = match &select.label {
        Some(name) => find(name)?,
        None => names.len() - 1,
    };
    let feature_idx = match &select.features {
        Some(features) => {
            let mut idx = Vec::with_capacity(features.len());
            for name in features {
                let i = find(name)?;
                if i == label_idx {
                    return Err(DataError::LabelIsFeature(name.clone()));
                }
                if idx.contains(&i) {
                    return Err(DataError::DuplicateColumn(name.clone()));
                }
                idx.push(i);
            }
            idx
        }
        None => (0..names.len()).filter(|&i| i != label_idx).collect(),
    };
    if feature_idx.is_empty() {
        return Err(DataError::NoFeatures);
    }
    Ok((label_idx, feature_idx))
}

/// Parses one cell, spaces around it ignored: empty is missing (`NaN`), anything else must be
/// a finite number. `line` is called only for an error.
fn parse_cell(field: &[u8], line: &impl Fn() -> u64, column: &str) -> Result<f64, DataError> {
    let field = field.trim_ascii();
    if field.is_empty() {
        return Ok(f64::NAN);
    }
    let value = || String::from_utf8_lossy(field).into_owned();
    let Ok(text) = std::str::from_utf8(field) else {
        return Err(DataError::NotANumber { line: line(), column: column.to_string(), value: value() });
    };
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v + 0.0), // + 0.0 turns −0 into 0, so equal rows hash equal
        Ok(_) => Err(DataError::NotFinite { line: line(), column: column.to_string(), value: value() }),
        Err(_) => Err(DataError::NotANumber { line: line(), column: column.to_string(), value: value() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<RawTable, DataError> {
        RawTable::from_csv(text.as_bytes(), &ColumnSelection::default())
    }

    #[test]
    fn reads_header_rows_and_lines() {
        let t = read("score,admitted\n80,1\n\n20,0\n").expect("valid");
        assert_eq!(t.feature_names, vec!["score"]);
        assert_eq!(t.label_name, "admitted");
        assert_eq!(t.x, vec![80.0, 20.0]);
        assert_eq!(t.y, vec![1.0, 0.0]);
        assert_eq!(t.lines, vec![2, 4]);
    }

    #[test]
    fn accepts_bom_crlf_quotes_and_negative_zero() {
        let t = read("\u{feff}\"score\",admitted\r\n\"-0\",1\r\n1e308,0\r\n").expect("valid");
        assert_eq!(t.feature_names, vec!["score"]);
        assert_eq!(t.x[0].to_bits(), 0.0f64.to_bits());
        assert_eq!(t.x[1], 1e308);
    }

    #[test]
    fn names_line_and_column_of_bad_values() {
        assert_eq!(
            read("score,admitted\n80,1\nabc,0\n"),
            Err(DataError::NotANumber { line: 3, column: "score".into(), value: "abc".into() })
        );
        assert!(matches!(read("score,admitted\nNaN,1\n"), Err(DataError::NotFinite { line: 2, .. })));
        assert!(matches!(read("score,admitted\ninf,1\n"), Err(DataError::NotFinite { line: 2, .. })));
        assert_eq!(read("score,admitted\n80,1,5\n"), Err(DataError::FieldCount { line: 2, expected: 2, found: 3 }));
        assert!(matches!(read("score,admitted\n80,2\n"), Err(DataError::BadLabel { line: 2, .. })));
        assert_eq!(read(""), Err(DataError::Empty));
        assert_eq!(read("score,admitted\n"), Err(DataError::NoRows));
    }

    #[test]
    fn spaces_around_values_are_ignored_and_a_line_of_spaces_is_blank() {
        let t = read(" score , admitted \n 80 , 1 \n  ,  \n\t20,0\n").expect("valid");
        assert_eq!((t.feature_names.clone(), t.label_name.clone()), (vec!["score".to_string()], "admitted".to_string()));
        assert_eq!((t.x.clone(), t.y.clone(), t.lines.clone()), (vec![80.0, 20.0], vec![1.0, 0.0], vec![2, 4]));
        assert_eq!(
            read("score,admitted\n80,1\n\n\n 1 , 2 \n"),
            Err(DataError::BadLabel { line: 5, column: "admitted".into(), value: "2".into() })
        );
    }

    #[test]
    fn lines_count_lf_crlf_and_lone_cr_breaks() {
        let t = read("score,admitted\r80,1\r\r20,0\r").expect("valid");
        assert_eq!((t.x.clone(), t.lines.clone()), (vec![80.0, 20.0], vec![2, 4]));
        let t = read("score,admitted\r\n80,1\n\r\n20,0\r30,1").expect("valid");
        assert_eq!((t.x.clone(), t.lines.clone()), (vec![80.0, 20.0, 30.0], vec![2, 4, 5]));
        // The fuzz target's find: a header ended by a lone `\r`.
        let t = read("score,admit\0sorse\0e\r,1\n");
        assert!(t.is_ok_and(|t| t.lines == vec![2]));
        assert_eq!(read("a,y\r1,1\rx,0\r"), Err(DataError::NotANumber { line: 3, column: "a".into(), value: "x".into() }));
    }

    #[test]
    fn empty_cells_are_missing_not_errors_here() {
        let t = read("a,b,y\n1,,1\n2,3,\n").expect("valid");
        assert!(t.x[1].is_nan());
        assert!(t.y[1].is_nan());
    }

    #[test]
    fn selects_columns_by_name() {
        let sel = ColumnSelection { label: Some("y".into()), features: Some(vec!["b".into()]) };
        let t = RawTable::from_csv("y,a,b\n1,2,3\n".as_bytes(), &sel).expect("valid");
        assert_eq!((t.x.clone(), t.y.clone()), (vec![3.0], vec![1.0]));
        let sel = ColumnSelection { label: Some("nope".into()), features: None };
        assert!(matches!(RawTable::from_csv("y,a\n1,2\n".as_bytes(), &sel), Err(DataError::UnknownColumn { .. })));
    }
}
