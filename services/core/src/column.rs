//! What a column of a table is ([`ColumnKind`]) and what can be wrong with a file of them
//! ([`DataError`]): the words [`crate::table`] and [`crate::roles`] both speak.

use serde::{Deserialize, Serialize};

/// The most classes a label may have: more is a number to regress or an identifier.
pub const MAX_CLASSES: usize = 100;

/// How a feature column's values are held.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnKind {
    #[default]
    Numeric,
    /// Text: a cell holds the index of its value in `levels`.
    Categorical { levels: Vec<String> },
}

impl ColumnKind {
    pub fn levels(&self) -> Option<&[String]> {
        match self {
            ColumnKind::Numeric => None,
            ColumnKind::Categorical { levels } => Some(levels),
        }
    }
}

/// What can be wrong with a CSV file. Lines are 1-based and count the header as line 1.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DataError {
    #[error("the file is empty: it needs a header line and at least one data row")]
    Empty,
    #[error("the file has a header but no data rows")]
    NoRows,
    #[error("line {line}: expected {expected} fields like the header, found {found}")]
    FieldCount { line: u64, expected: usize, found: usize },
    #[error(
        "line {line}, column {column:?}: {value:?} is not a number (the column is mostly numbers; \
         if it is a category, name it with `categorical`, or mark missing values with `na_values`)"
    )]
    NotANumber { line: u64, column: String, value: String },
    #[error("line {line}, column {column:?}: {value:?} is not finite (infinities are refused)")]
    NotFinite { line: u64, column: String, value: String },
    #[error("line {line}, column {column:?}: the value is missing")]
    EmptyValue { line: u64, column: String },
    #[error(
        "line {line}, label column {column:?}: {value} is not a label; labels must be 0 or 1, two text values \
         (`positive` names the positive one), or three or more classes"
    )]
    BadLabel { line: u64, column: String, value: String },
    #[error(
        "label column {column:?} has {count} distinct values ({values}); a label may have at most {MAX_CLASSES} classes \
         (a number to predict, or an identifier? choose another label)"
    )]
    TooManyClasses { column: String, count: usize, values: String },
    #[error("`positive` {value:?} is not a value of label column {column:?}, which has: {values}")]
    UnknownPositive { column: String, value: String, values: String },
    #[error(
        "column {column:?} has {count} distinct text values; a categorical column may have at most {max} levels \
         (an identifier or free text? leave it out with `features`)"
    )]
    TooManyLevels { column: String, count: usize, max: usize },
    #[error(
        "column {column:?} has {count} distinct text values in {rows} training rows: it names rows rather than \
         grouping them (an identifier or free text? leave it out with `features`)"
    )]
    Identifier { column: String, count: usize, rows: usize },
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
    #[error("every row has label {0}: training needs both classes")]
    SingleClass(String),
    #[error("no row has class {0:?}: training needs a row of every class")]
    MissingClass(String),
    #[error(
        "line {line}, label column {column:?}: {value:?} is the only row of its class (the others: {others}); \
         a class needs rows to train and to test on: a typo, or a class too rare to learn"
    )]
    LoneClass { line: u64, column: String, value: String, others: String },
    #[error("the delimiter must be one ASCII character other than a line end (or tab), got {0:?}")]
    BadDelimiter(String),
    #[error("column {0:?}: {1}")]
    Column(String, String),
    #[error("line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("reading the file: {0}")]
    Io(String),
    /// The sink the values went to ([`crate::table::RawTable::from_csv_streaming`]) failed: the store's
    /// fault, not the file's.
    #[error("storing the values read: {0}")]
    Storing(String),
}
