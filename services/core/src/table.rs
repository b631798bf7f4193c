//! A CSV file read into numbers: [`RawTable`], read with [`CsvOptions`].
//!
//! Every cell is parsed here, once, so that every later stage works on `f64`:
//! - a numeric column holds its values;
//! - a text column is categorical ([`ColumnKind::Categorical`]): each cell holds the index of
//!   its value among the column's levels, sorted (numerically when every level is a number, as
//!   R does for a factor of numbers), so the first level is the reference of treatment coding;
//! - a missing cell (empty, or an NA marker: `NA`, `NaN`, `null`, … — [`DEFAULT_NA_VALUES`])
//!   is `NaN`, because what to do with it is preprocess's decision.
//!
//! A column is text when most of its cells are not numbers, or when [`CsvOptions::categorical`]
//! names it. A mostly numeric column with a stray word is an error naming its line, not a
//! column silently turned into text. The label is 0/1, or two text values of which
//! [`CsvOptions::positive`] (default: the later in sorted order, as R's glm) is class 1, or
//! three to [`MAX_CLASSES`] values (text, or numbers other than 0/1): [`Classes::several`], y
//! each row's class index in sorted order.
//!
//! The delimiter is `,` unless told ([`CsvOptions::delimiter`]) or sniffed from the header
//! (`;` or tab). A first column with no name — the index pandas' `to_csv` writes — is skipped
//! with a note.

pub use crate::column::{ColumnKind, DataError, MAX_CLASSES};
use crate::roles::RoleColumns;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read};
use std::rc::Rc;

/// What counts as missing besides an empty cell, unless [`CsvOptions::na_values`] says otherwise.
pub const DEFAULT_NA_VALUES: [&str; 8] =
    ["NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A"];
/// The most levels a text column may have: more is an identifier or free text, not a category.
pub const MAX_LEVELS: usize = 100_000;
/// The most levels a column whose every level is seen on fewer than two training rows, on
/// average, may have: past it such a column names rows (an identifier) rather than grouping
/// them ([`crate::scale::Transform::identifier`]).
pub const MAX_IDENTIFIER_LEVELS: usize = 200;

/// How to read a CSV file: which columns (the label by name, default the last column; the
/// features by name, default every other column), which are categorical, the positive class,
/// the NA markers and the delimiter.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Feature columns read as text even when their values are numbers (a rank 1–4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categorical: Vec<String>,
    /// The label value that is class 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive: Option<String>,
    /// Cells that mean "missing" besides an empty one (default [`DEFAULT_NA_VALUES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub na_values: Option<Vec<String>>,
    /// The field delimiter (default: sniffed from the header among `,`, `;` and tab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// New names for the classes: `[positive, negative]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_labels: Option<Vec<String>>,
    /// Columns read with the rows that are not features: weights, offset, cluster, folds.
    #[serde(default, skip_serializing_if = "RoleColumns::is_empty")]
    pub roles: RoleColumns,
    /// The decimal mark of the file's numbers: `.` (the default) or `,`, as spreadsheets set
    /// to European locales write them (`729,53`, with `;` between fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimal: Option<String>,
}

/// The label's classes by name. Two classes: y = 1 is `positive`; for a 0/1 label the names are
/// made from the column's name (`admitted` / `not admitted`), unless renamed. K ≥ 3 classes:
/// `several` names them all in sorted order and y is a class's index (`negative` and `positive`
/// are then its first two).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Classes {
    pub negative: String,
    pub positive: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub several: Vec<String>,
}

impl Classes {
    pub fn two(negative: impl Into<String>, positive: impl Into<String>) -> Classes {
        Classes { negative: negative.into(), positive: positive.into(), several: Vec::new() }
    }

    pub fn for_numeric_label(label: &str) -> Classes {
        Classes::two(format!("not {label}"), label)
    }

    /// K ≥ 3 classes, named in their order.
    pub fn several(names: Vec<String>) -> Classes {
        Classes { negative: names[0].clone(), positive: names[1].clone(), several: names }
    }

    /// How many classes: 2, or K.
    pub fn count(&self) -> usize {
        if self.several.is_empty() { 2 } else { self.several.len() }
    }

    /// Every class's name, in the order of y's values.
    pub fn names(&self) -> Vec<&str> {
        if self.several.is_empty() {
            vec![&self.negative, &self.positive]
        } else {
            self.several.iter().map(String::as_str).collect()
        }
    }
}

/// A CSV file's selected columns as numbers, row-major. Missing cells are `NaN`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawTable {
    pub feature_names: Vec<String>,
    pub label_name: String,
    /// One per feature.
    pub kinds: Vec<ColumnKind>,
    /// The label's classes when it was text; `None` for a 0/1 label.
    pub classes: Option<Classes>,
    /// `rows × features`, row-major; `NaN` marks a missing cell.
    pub x: Vec<f64>,
    /// One label per row: 0.0, 1.0 or `NaN` (missing).
    pub y: Vec<f64>,
    /// The file line each row came from, so reports can name it.
    pub lines: Vec<u64>,
    /// What the reader decided that a person should know (a skipped index column, the
    /// delimiter it sniffed, columns read as text).
    pub notes: Vec<String>,
    /// The columns among `feature_names` that have a role ([`RoleColumns`]).
    pub roles: RoleColumns,
}

/// The cells of one column that were not numbers, while the file is read.
#[derive(Default)]
struct TextCells {
    /// Row and provisional code (index into `values`).
    cells: Vec<(usize, u32)>,
    values: Vec<String>,
    codes: HashMap<String, u32>,
    numbers: usize,
}

impl TextCells {
    /// The provisional code of every cell of a column whose `numbers` (one per row; `NaN` for a
    /// text or missing cell) were read apart from its text: a text cell's code, a number's as
    /// its text ("2", "2.5"), `u32::MAX` for a missing cell.
    fn every_cells_code(&mut self, numbers: impl Iterator<Item = f64>) -> Vec<u32> {
        let numbers: Vec<f64> = numbers.collect();
        let mut codes = vec![u32::MAX; numbers.len()];
        for &(row, code) in &self.cells {
            codes[row] = code;
        }
        for (code, v) in codes.iter_mut().zip(numbers) {
            if *code == u32::MAX && !v.is_nan() {
                *code = self.intern(&number_text(v));
            }
        }
        codes
    }

    /// Takes in the cells of the rows that follow, whose first row is row `row_offset` here;
    /// returns each of their codes' code here.
    fn absorb(&mut self, other: TextCells, row_offset: usize) -> Vec<u32> {
        let remap: Vec<u32> = other.values.iter().map(|v| self.intern(v)).collect();
        self.cells.extend(
            other.cells.into_iter().map(|(row, code)| (row + row_offset, remap[code as usize])),
        );
        self.numbers += other.numbers;
        remap
    }

    /// The value row `row` holds for `cell` of this column, counted here: a number as it is,
    /// `NaN` for a missing or text cell (a text cell's code kept for the row).
    fn take(&mut self, cell: Cell<'_>, row: usize) -> f64 {
        match cell {
            Cell::Number(v) => {
                self.numbers += 1;
                v
            }
            Cell::Missing => f64::NAN,
            Cell::Text(text) => {
                let code = self.intern(text);
                self.cells.push((row, code));
                f64::NAN
            }
        }
    }

    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&code) = self.codes.get(text) {
            return code;
        }
        let code = self.values.len() as u32;
        self.values.push(text.to_string());
        self.codes.insert(text.to_string(), code);
        code
    }
}

/// A number as a level's text: the shortest form that reads back the same ("2", "2.5").
fn number_text(v: f64) -> String {
    format!("{v}")
}

/// Sorts levels as R sorts a factor's: numerically when every level is a number, else by text.
fn sort_levels(levels: &mut [String]) {
    let numbers: Option<Vec<f64>> =
        levels.iter().map(|l| l.parse::<f64>().ok().filter(|v| v.is_finite())).collect();
    match numbers {
        Some(_) => levels.sort_by(|a, b| {
            let (a, b) = (a.parse::<f64>().unwrap_or(0.0), b.parse::<f64>().unwrap_or(0.0));
            a.total_cmp(&b)
        }),
        None => levels.sort(),
    }
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
    pub fn from_csv<R: Read>(reader: R, options: &CsvOptions) -> Result<Self, DataError> {
        Self::read(reader, options, |layout, csv, newlines| layout.read_rows(csv, newlines, 0, 0))
    }

    /// [`RawTable::from_csv`] on every core: the same table, or the same error. A file with no
    /// quoted field is read in blocks of 1 MiB that end at line ends, parsed side by side while
    /// the next are read, so memory holds a few blocks, not the file; from a block with a quote
    /// on, the rest is read from the start of that block as `from_csv` reads.
    pub fn from_csv_parallel<R: Read + Send>(
        reader: R,
        options: &CsvOptions,
    ) -> Result<Self, DataError> {
        Self::from_csv_in_blocks(reader, options, parsing_threads(), BLOCK_BYTES)
    }

    /// [`RawTable::from_csv_parallel`], handing the feature values to `sink` as the blocks are
    /// read, in file order, when that can be final: every feature numeric, none named
    /// `--categorical`. The table returned then holds none (its `x` is empty): they are all in
    /// the sink. Otherwise ([`ValuesWent::IntoTable`]) they are in the table, and the sink
    /// holds none: values it took before a text cell turned up are taken back.
    pub fn from_csv_streaming<R: Read + Send>(
        reader: R,
        options: &CsvOptions,
        sink: &mut dyn ValueSink,
    ) -> Result<(Self, ValuesWent), DataError> {
        let sizes = (parsing_threads(), BLOCK_BYTES);
        Self::read_in_blocks(reader, options, sizes, Some(sink), MAX_HELD_BYTES)
    }

    /// [`RawTable::from_csv_parallel`] with `threads` parsing threads (1 to 16) and blocks of
    /// about `block_bytes`.
    pub fn from_csv_in_blocks<R: Read + Send>(
        reader: R,
        options: &CsvOptions,
        threads: usize,
        block_bytes: usize,
    ) -> Result<Self, DataError> {
        // Its caller holds the table whatever it is: no bound but the caller's.
        Self::read_in_blocks(reader, options, (threads, block_bytes), None, u64::MAX)
            .map(|(table, _)| table)
    }

    /// [`RawTable::from_csv_in_blocks`], streaming the values to `sink` when there is one (see
    /// [`RawTable::from_csv_streaming`]).
    fn read_in_blocks<R: Read + Send>(
        reader: R,
        options: &CsvOptions,
        (threads, block_bytes): (usize, usize),
        mut sink: Option<&mut dyn ValueSink>,
        held_limit: u64,
    ) -> Result<(Self, ValuesWent), DataError> {
        let io = |e: std::io::Error| DataError::Io(e.to_string());
        let held = Held::default();
        let mut reader =
            HeldReader { inner: reader, held: held.clone(), read: 0, limit: held_limit };
        // Role columns' values are checked once read, so they are held, not streamed away.
        if !options.roles.is_empty() {
            sink = None;
            held.because("its weights, offset or cluster column is checked whole".into());
        }
        let mut blocks = BlockReader::new(block_bytes);
        // The header is read from the first block — grown by the next while it holds only
        // blank lines, which come before a header and are skipped.
        let mut head = blocks.next(&mut reader).map_err(io)?;
        loop {
            if memchr::memchr(b'"', &head).is_some() {
                // A quote (even in the header): the csv crate reads it all, as from_csv does.
                held.because(QUOTED.into());
                return Self::from_csv(blocks.rest(head, reader), options)
                    .map(|table| (table, ValuesWent::IntoTable));
            }
            let sink = reborrow(&mut sink);
            let read = Self::read_to_sink(
                head.as_slice(),
                options,
                sink,
                |layout, csv, newlines, sink| {
                    // Past the header's line end (the csv crate may stop between `\r` and `\n`).
                    let mut body = csv.position().byte() as usize;
                    if body > 0
                        && head.get(body - 1) == Some(&b'\r')
                        && head.get(body) == Some(&b'\n')
                    {
                        body += 1;
                    }
                    if body > head.len() {
                        return layout.read_rows(csv, newlines, 0, 0);
                    }
                    let lines_before = count_line_breaks(&head[..body]);
                    layout.read_in_blocks(
                        (&head[body..], lines_before),
                        (&mut blocks, &mut reader),
                        threads.clamp(1, MAX_THREADS),
                        sink,
                        &held,
                    )
                },
            );
            match read {
                Err(DataError::Empty) => {
                    let more = blocks.next(&mut reader).map_err(io)?;
                    if more.is_empty() {
                        return Err(DataError::Empty);
                    }
                    head.extend(more);
                }
                read => return read,
            }
        }
    }

    /// Reads the header from `reader`, then hands the csv reader, past the header, to `body`
    /// for the rows.
    fn read<R: Read>(
        reader: R,
        options: &CsvOptions,
        body: impl FnOnce(
            &Layout,
            &mut csv::Reader<NewlineIndex<std::io::BufReader<R>>>,
            &RefCell<Vec<u64>>,
        ) -> Result<Rows, DataError>,
    ) -> Result<Self, DataError> {
        Self::read_to_sink(reader, options, None, |layout, csv, newlines, _| {
            body(layout, csv, newlines)
        })
        .map(|(table, _)| table)
    }

    /// [`RawTable::read`], where `body` may hand the first rows' values to `sink`
    /// ([`Rows::streamed`]); they are taken back unless all went there and stay as read.
    fn read_to_sink<R: Read>(
        reader: R,
        options: &CsvOptions,
        mut sink: Option<&mut dyn ValueSink>,
        body: impl FnOnce(
            &Layout,
            &mut csv::Reader<NewlineIndex<std::io::BufReader<R>>>,
            &RefCell<Vec<u64>>,
            Option<&mut dyn ValueSink>,
        ) -> Result<Rows, DataError>,
    ) -> Result<(Self, ValuesWent), DataError> {
        let mut reader = std::io::BufReader::with_capacity(1 << 16, reader);
        let mut notes = Vec::new();
        let delimiter = delimiter_of(options, &mut reader, &mut notes)?;
        let na_values: Vec<String> = match &options.na_values {
            Some(values) => values.iter().map(|v| v.trim().to_string()).collect(),
            None => DEFAULT_NA_VALUES.iter().map(|v| v.to_string()).collect(),
        };
        let (mut csv, newlines) = record_reader(delimiter, reader);
        let (names, skip) = header_names(&mut csv, &newlines, &mut notes)?;
        let (label_idx, feature_idx) = select_columns(&names, skip, options)?;
        let forced = forced_categorical(options, &names, skip, &feature_idx)?;
        let d = feature_idx.len();
        let layout = Layout {
            delimiter,
            width: names.len(),
            feature_idx: &feature_idx,
            label_idx,
            forced: &forced,
            names: &names,
            na_values: &na_values,
            decimal_comma: decimal_comma(options, delimiter)?,
        };
        let rows = body(&layout, &mut csv, &newlines, reborrow(&mut sink))?;
        let Rows { mut x, mut y, lines, text, label_text, streamed } = rows;
        if y.is_empty() {
            return Err(DataError::NoRows);
        }
        // In the sink only if every row's values went there and no column turns out text
        // (whose values are made codes below).
        let mut went = ValuesWent::IntoTable;
        if let Some(sink) = sink
            && streamed > 0
        {
            if streamed == y.len() && text.iter().all(|cells| cells.cells.is_empty()) {
                went = ValuesWent::ToSink;
            } else {
                let mut all = sink
                    .take_back()
                    .map_err(|e| DataError::Storing(format!("taking them back: {e}")))?;
                all.append(&mut x);
                x = all;
            }
        }
        let columns = (&names[..], &feature_idx[..], &forced[..]);
        let kinds = column_kinds(text, (&mut x, d), columns, (&lines, options), &mut notes)?;
        let label_name = names[label_idx].clone();
        let classes = classes_of(&mut y, label_text, (&lines, &label_name), options)?;
        let feature_names: Vec<String> = feature_idx.iter().map(|&i| names[i].clone()).collect();
        options.roles.check(&feature_names, &kinds, &x, &lines)?;
        let table = RawTable {
            feature_names,
            label_name,
            kinds,
            classes,
            x,
            y,
            lines,
            notes,
            roles: options.roles.clone(),
        };
        Ok((table, went))
    }
}

/// The delimiter: the one given, or sniffed from the header (and said, when not a comma).
fn delimiter_of(
    options: &CsvOptions,
    reader: &mut impl BufRead,
    notes: &mut Vec<String>,
) -> Result<u8, DataError> {
    if let Some(d) = &options.delimiter {
        return delimiter_byte(d);
    }
    let sniffed = sniff_delimiter(reader.fill_buf().map_err(|e| DataError::Io(e.to_string()))?);
    if sniffed != b',' {
        notes.push(format!("the delimiter is {:?} (sniffed from the header)", char::from(sniffed)));
    }
    Ok(sniffed)
}

/// The header's column names, past blank lines, and how many leading columns to skip: a first
/// column with no name is a row index, as pandas writes it. Empty and repeated names are
/// refused.
fn header_names<R: Read>(
    csv: &mut csv::Reader<NewlineIndex<R>>,
    newlines: &RefCell<Vec<u64>>,
    notes: &mut Vec<String>,
) -> Result<(Vec<String>, usize), DataError> {
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
    let mut names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let raw = String::from_utf8_lossy(field);
            // The csv crate leaves a UTF-8 byte-order mark on the first field.
            let name = if i == 0 { raw.trim_start_matches('\u{feff}').trim() } else { raw.trim() };
            name.to_string()
        })
        .collect();
    // pandas' `to_csv` writes the row index as a first column with no name.
    let skip = usize::from(names.len() > 1 && names[0].is_empty());
    if skip == 1 {
        notes.push(
            "the first column has no name (a row index, as pandas writes it): skipped".into(),
        );
        names[0] = "(index)".into();
    }
    for (i, name) in names.iter().enumerate().skip(skip) {
        if name.is_empty() {
            return Err(DataError::EmptyColumnName(i + 1));
        }
        if names[skip..i].contains(name) {
            return Err(DataError::DuplicateColumn(name.clone()));
        }
    }
    Ok((names, skip))
}

/// Which features `--categorical` forces to text terms, by feature index; a name that is no
/// feature is refused.
fn forced_categorical(
    options: &CsvOptions,
    names: &[String],
    skip: usize,
    feature_idx: &[usize],
) -> Result<Vec<bool>, DataError> {
    let mut forced = vec![false; feature_idx.len()];
    for name in &options.categorical {
        match feature_idx.iter().position(|&i| names[i] == *name) {
            Some(j) => forced[j] = true,
            None if names[skip..].contains(name) => {
                return Err(DataError::Column(
                    name.clone(),
                    "`categorical` names a column that is not a feature".into(),
                ));
            }
            None => {
                return Err(DataError::UnknownColumn {
                    name: name.clone(),
                    available: names[skip..].join(", "),
                });
            }
        }
    }
    Ok(forced)
}

/// Each feature's kind once the file is read: numeric, or categorical (forced, or holding
/// text), its cells in `x` (`d` to a row) made level codes. A column of numbers with a stray
/// word, or of decimal-comma numbers, is refused naming the cell or the fix.
fn column_kinds(
    text: Vec<TextCells>,
    (x, d): (&mut Vec<f64>, usize),
    (names, feature_idx, forced): (&[String], &[usize], &[bool]),
    (lines, options): (&[u64], &CsvOptions),
    notes: &mut Vec<String>,
) -> Result<Vec<ColumnKind>, DataError> {
    let mut kinds = Vec::with_capacity(d);
    for (j, cells) in text.into_iter().enumerate() {
        let name = &names[feature_idx[j]];
        // A cluster or fold column names groups, not terms: any number of them.
        let max_levels = if options.roles.of_rows_only().any(|(_, role)| role == name) {
            u32::MAX as usize
        } else {
            MAX_LEVELS
        };
        let kind = if forced[j] {
            categorical_from_codes(x, (d, j), cells, name, max_levels)?
        } else if cells.cells.is_empty() {
            ColumnKind::Numeric
        } else if cells.numbers >= cells.cells.len() {
            let (row, code) = cells.cells[0];
            return Err(DataError::NotANumber {
                line: lines[row],
                column: name.clone(),
                value: cells.values[code as usize].clone(),
            });
        } else if let Some(sample) =
            decimal_comma_number(&cells.values).filter(|_| options.decimal.is_none())
        {
            return Err(DataError::Column(
                name.clone(),
                format!(
                    "its values are numbers written with a decimal comma ({sample:?}): read the file with `decimal` ,"
                ),
            ));
        } else {
            notes.push(format!("column {name:?} holds text: read as categorical"));
            categorical_from_mixed(x, (d, j), cells, name, max_levels)?
        };
        kinds.push(kind);
    }
    Ok(kinds)
}

/// The label's classes (text labels made codes in `y`), or those `--labels` names.
fn classes_of(
    y: &mut [f64],
    label_text: TextCells,
    (lines, label_name): (&[u64], &str),
    options: &CsvOptions,
) -> Result<Option<Classes>, DataError> {
    let mut classes = label_classes(y, label_text, lines, label_name, options.positive.as_deref())?;
    if let Some(names) = &options.class_labels {
        match names.as_slice() {
            [positive, negative]
                if !positive.trim().is_empty()
                    && !negative.trim().is_empty()
                    && positive != negative =>
            {
                classes = Some(Classes::two(negative.trim(), positive.trim()));
            }
            _ => {
                return Err(DataError::Column(
                    label_name.to_string(),
                    "`class_labels` takes two different names: POSITIVE,NEGATIVE".into(),
                ));
            }
        }
    }
    Ok(classes)
}

/// Where [`RawTable::from_csv_streaming`] hands a table's feature values as the file is read.
pub trait ValueSink {
    /// Takes the values of the next rows: `width` to a row, row-major, in file order.
    fn append(&mut self, values: &[f64], width: usize) -> std::io::Result<()>;
    /// Hands back every value taken, in order, and holds none after: for a table whose values
    /// turn out to need changing (a column of text, made codes).
    fn take_back(&mut self) -> std::io::Result<Vec<f64>>;
}

impl ValueSink for Vec<f64> {
    fn append(&mut self, values: &[f64], _width: usize) -> std::io::Result<()> {
        self.extend_from_slice(values);
        Ok(())
    }

    fn take_back(&mut self) -> std::io::Result<Vec<f64>> {
        Ok(std::mem::take(self))
    }
}

/// One parsing thread per core, up to [`MAX_THREADS`].
fn parsing_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).min(MAX_THREADS)
}

/// The sink for one call, leaving it for the next: `as_deref_mut` would keep the trait
/// object's lifetime, which `&mut` holds fixed.
fn reborrow<'a>(sink: &'a mut Option<&mut dyn ValueSink>) -> Option<&'a mut dyn ValueSink> {
    match sink {
        Some(sink) => Some(&mut **sink as &mut dyn ValueSink),
        None => None,
    }
}

/// Where [`RawTable::from_csv_streaming`] left a table's feature values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValuesWent {
    /// All in the sink; the table holds none.
    ToSink,
    /// All in the table; the sink holds none.
    IntoTable,
}

/// The byte a `--delimiter` names: one ASCII character, or `\t` / `tab` for a tab. A line end
/// is refused, since it cannot also part the fields of a line.
pub fn delimiter_byte(d: &str) -> Result<u8, DataError> {
    match d.as_bytes() {
        [b] if b.is_ascii() && !matches!(b, b'\n' | b'\r') => Ok(*b),
        _ if d == "\\t" || d == "tab" => Ok(b'\t'),
        _ => Err(DataError::BadDelimiter(d.to_string())),
    }
}

/// The size of the blocks [`RawTable::from_csv_parallel`] parses side by side: as fast as
/// larger ones, with less memory in flight.
const BLOCK_BYTES: usize = 1 << 20;

/// The most of a file [`RawTable::from_csv_streaming`] reads while it holds the values in
/// memory: where they cannot go to the store as they are read (a text or `categorical` column,
/// whose values become codes once all are read; a quoted field, which the csv crate reads; a
/// role column, checked whole). A file of numbers streams, with no bound but the disk.
pub const MAX_HELD_BYTES: u64 = 2 << 30;

/// The longest line read in blocks: a file with a longer one is taken for no CSV, rather than
/// read whole into one block.
pub const MAX_LINE_BYTES: usize = 64 << 20;

const QUOTED: &str = "it has a quoted field";

/// Why a parse holds its values in memory, once it does: set once, by whichever part of the
/// parse (the reader of blocks, or the gatherer of their rows) finds out first.
#[derive(Debug, Clone, Default)]
struct Held(std::sync::Arc<std::sync::OnceLock<String>>);

impl Held {
    fn because(&self, why: String) {
        let _ = self.0.set(why);
    }
}

/// The file as the parse reads it, counted: once the values are held, a read past `limit`
/// bytes fails, saying why they were held.
struct HeldReader<R> {
    inner: R,
    held: Held,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for HeldReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        match self.held.0.get() {
            Some(why) if self.read > self.limit => Err(std::io::Error::other(format!(
                "its values are held in memory while it is read, as {why}, and such a file is \
                 read up to {} MiB; this one is longer (a file of numbers alone goes to the store \
                 as it is read, with no bound)",
                self.limit >> 20
            ))),
            _ => Ok(n),
        }
    }
}

/// At most this many parsing threads.
const MAX_THREADS: usize = 16;

/// What the header decided: how to read each row.
struct Layout<'a> {
    /// Never `\n` or `\r` (refused with the options).
    delimiter: u8,
    /// Fields in every row.
    width: usize,
    feature_idx: &'a [usize],
    label_idx: usize,
    /// Per feature: read as text whatever it holds (`--categorical`).
    forced: &'a [bool],
    names: &'a [String],
    na_values: &'a [String],
    /// Numbers are written with a decimal comma (`--decimal ,`).
    decimal_comma: bool,
}

/// Rows read, in file order: a whole file's, or one block's.
struct Rows {
    x: Vec<f64>,
    y: Vec<f64>,
    lines: Vec<u64>,
    /// Per feature, its text cells (for a `--categorical` column, `x` holds their codes).
    text: Vec<TextCells>,
    label_text: TextCells,
    /// The first rows, whose values went to a [`ValueSink`] instead of `x`.
    streamed: usize,
}

impl Layout<'_> {
    /// Reads rows to the end of `csv`, whose first byte is byte `start` of the file and comes
    /// after `lines_before` line breaks; line numbers are the file's.
    fn read_rows<R: Read>(
        &self,
        csv: &mut csv::Reader<NewlineIndex<R>>,
        newlines: &RefCell<Vec<u64>>,
        start: u64,
        lines_before: u64,
    ) -> Result<Rows, DataError> {
        // The csv crate does not count skipped blank lines, so a record's line comes from the
        // reader's byte position after it: the newlines before its end. Rows note only their
        // position; the lines are worked out in one walk at the end (`lines_at`).
        let line_after =
            |position: u64| lines_before + lines_at(&newlines.borrow(), &[start + position])[0];
        let mut rows = Rows::empty(self.feature_idx.len());
        let mut positions = Vec::new();
        let mut rec = csv::ByteRecord::new();
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
            if rec.len() != self.width {
                return Err(DataError::FieldCount {
                    line: line(),
                    expected: self.width,
                    found: rec.len(),
                });
            }
            self.push_row(&mut rows, |i| &rec[i], |_| None, &line)?;
            positions.push(start + position);
        }
        rows.lines = lines_at(&newlines.borrow(), &positions)
            .into_iter()
            .map(|l| lines_before + l)
            .collect();
        Ok(rows)
    }

    /// Reads the rows of quote-free CSV text that comes after `lines_before` line breaks, as
    /// the csv crate reads such text: records end at `\n`, `\r\n` or a lone `\r`, empty ones
    /// are skipped, and fields end at the delimiter. `reading_in_blocks_gives_what_…` holds the
    /// two to the same answers.
    ///
    /// A record with the right number of fields is read in one walk over its bytes
    /// ([`Layout::walk_record`]); any other (a blank line, a wrong field count) is read by
    /// [`Layout::read_record`], which splits it at its delimiters first, and both hand their
    /// fields to the same [`Layout::take_record`]: the same cells, the same errors.
    fn read_unquoted(&self, text: &[u8], lines_before: u64) -> Result<Rows, DataError> {
        let mut rows = Rows::empty(self.feature_idx.len());
        let mut line = lines_before;
        let mut fields: Vec<&[u8]> = Vec::with_capacity(self.width);
        let mut numbers: Vec<Option<f64>> = vec![None; self.width];
        // Which fields may hold a number to read: the label's and the features', but not a
        // `--categorical` one, whose cells are text whatever they hold.
        // No field when the delimiter may stand inside a number (`--delimiter .`): a number read
        // whole could then run over a field's end.
        let mut numeric = vec![false; self.width];
        if !b"0123456789.+-eE".contains(&self.delimiter) {
            numeric[self.label_idx] = true;
            for (&i, &forced) in self.feature_idx.iter().zip(self.forced) {
                numeric[i] = !forced;
            }
        }
        // Records whose every field was read as a number in the walk (a numeric file's every
        // record, when every column is a feature or the label) go straight into the rows: none
        // is blank, and each of their cells is a number, counted here for all of them at once.
        let every_field_numeric = numeric.iter().all(|&n| n);
        let mut all_numbers = 0;
        let mut start = 0;
        while start < text.len() {
            match self.walk_record(text, start, &numeric, &mut fields, &mut numbers) {
                Some(line_end) => {
                    line += 1;
                    if every_field_numeric && numbers.iter().all(Option::is_some) {
                        // (Every one is `Some`: the NaN is never taken.)
                        let number = |i: usize| numbers[i].unwrap_or(f64::NAN);
                        rows.x.extend(self.feature_idx.iter().map(|&i| number(i)));
                        rows.y.push(number(self.label_idx));
                        rows.lines.push(line);
                        all_numbers += 1;
                    } else {
                        self.take_record(&mut rows, &fields, Some(&numbers), line)?;
                    }
                    start = past_line_end(text, line_end);
                }
                None => start = self.read_record(text, start, &mut line, &mut fields, &mut rows)?,
            }
        }
        for cells in rows.text.iter_mut().chain([&mut rows.label_text]) {
            cells.numbers += all_numbers;
        }
        Ok(rows)
    }

    /// Splits the record at `start` into `fields` in one walk over its bytes, when it has
    /// [`Layout::width`] fields: where a field is `numeric` and starts with a number that
    /// fast-float2 reads finite and that ends just at the field's end, that number goes into
    /// `numbers` and the field ends there; any other field ends at the next delimiter or line
    /// end, found by `memchr3`. Returns where the record's line end is (the end of `text` for
    /// a last line with none), or `None` when the record has another number of fields.
    ///
    /// Splitting at the delimiters first and then parsing each cell read every byte twice,
    /// where the float parser finds the end of a number anyway: the walk takes a quarter off
    /// the parse of a 1M × 10 file, numeric label or text. A number read here is the one
    /// `parse_cell` reads from the same field: `parse` is `parse_partial` taking the whole
    /// field, and a finite number is never an NA marker.
    #[inline]
    fn walk_record<'t>(
        &self,
        text: &'t [u8],
        start: usize,
        numeric: &[bool],
        fields: &mut Vec<&'t [u8]>,
        numbers: &mut [Option<f64>],
    ) -> Option<usize> {
        fields.clear();
        let last = self.width.checked_sub(1)?;
        let mut at = start;
        for (i, (number, &is_numeric)) in numbers.iter_mut().zip(numeric).enumerate() {
            let rest = text.get(at..)?;
            let ends_field = |b: Option<&u8>| match b {
                Some(&b) if b == self.delimiter => i < last,
                Some(b'\n' | b'\r') | None => i == last,
                _ => false,
            };
            let read = if is_numeric
                && let Ok((v, used)) = fast_float2::parse_partial::<f64, _>(rest)
                && v.is_finite()
                && ends_field(rest.get(used))
            {
                Some((v + 0.0, used)) // + 0.0 turns −0 into 0, as parse_cell does
            } else {
                None
            };
            let end = match read {
                Some((v, used)) => {
                    *number = Some(v);
                    at + used
                }
                None => {
                    *number = None;
                    let end = at
                        + memchr::memchr3(self.delimiter, b'\n', b'\r', rest).unwrap_or(rest.len());
                    if !ends_field(text.get(end)) {
                        return None;
                    }
                    end
                }
            };
            fields.push(&text[at..end]);
            if i == last {
                return Some(end);
            }
            at = end + 1;
        }
        None
    }

    /// Reads the record at `start`, which is not at the end of `text`, field by field: up to
    /// its line end, or to the end of `text` for a last line with none. Counts its line into
    /// `line` and returns where the next record starts.
    fn read_record<'t>(
        &self,
        text: &'t [u8],
        start: usize,
        line: &mut u64,
        fields: &mut Vec<&'t [u8]>,
        rows: &mut Rows,
    ) -> Result<usize, DataError> {
        fields.clear();
        let mut field_start = start;
        // One vector search finds every delimiter and the line end (memchr3). (The delimiter
        // is never a line end: see `Layout`.)
        for at in
            memchr::memchr3_iter(self.delimiter, b'\n', b'\r', &text[start..]).map(|at| start + at)
        {
            fields.push(&text[field_start..at]);
            field_start = at + 1;
            if text[at] == self.delimiter {
                continue;
            }
            *line += 1;
            self.take_record(rows, fields, None, *line)?;
            return Ok(past_line_end(text, at));
        }
        // A last line with no line end.
        fields.push(&text[field_start..]);
        self.take_record(rows, fields, None, *line + 1)?;
        Ok(text.len())
    }

    /// One record's fields, read on line `line` into `rows`, unless the record is blank.
    /// `numbers` holds the numbers already read from its fields, if any were.
    fn take_record(
        &self,
        rows: &mut Rows,
        fields: &[&[u8]],
        numbers: Option<&[Option<f64>]>,
        line: u64,
    ) -> Result<(), DataError> {
        // An empty record is one empty field: blank too.
        if is_blank(fields.iter().copied()) {
            return Ok(());
        }
        if fields.len() != self.width {
            return Err(DataError::FieldCount { line, expected: self.width, found: fields.len() });
        }
        let number = |i: usize| numbers.and_then(|n| n[i]);
        self.push_row(rows, |i| fields[i], number, &|| line)?;
        rows.lines.push(line);
        Ok(())
    }

    /// Reads one row's cells into `rows` (all but its line). `field(i)` is the row's field `i`,
    /// and `number(i)` the number already read from it, if one was; `line` is called only for
    /// an error.
    fn push_row<'f>(
        &self,
        rows: &mut Rows,
        field: impl Fn(usize) -> &'f [u8],
        number: impl Fn(usize) -> Option<f64>,
        line: &impl Fn() -> u64,
    ) -> Result<(), DataError> {
        let is_na = |text: &str| text.is_empty() || self.na_values.iter().any(|na| na == text);
        let names = self.names;
        let Rows { x, y, text, label_text, .. } = rows;
        let row = y.len();
        // Field `i`'s cell: the number already read from it, or the field parsed now (with a
        // decimal comma, as the number it writes with a point, if it is one).
        let cell = |i: usize| match number(i) {
            Some(v) => Ok(Cell::Number(v)),
            None if self.decimal_comma && field(i).contains(&b',') => {
                let pointed: Vec<u8> =
                    field(i).iter().map(|&b| if b == b',' { b'.' } else { b }).collect();
                match parse_cell(&pointed, line, &names[i], &is_na) {
                    Ok(Cell::Number(v)) => Ok(Cell::Number(v)),
                    _ => parse_cell(field(i), line, &names[i], &is_na),
                }
            }
            None => parse_cell(field(i), line, &names[i], &is_na),
        };
        for (j, &i) in self.feature_idx.iter().enumerate() {
            let value = if self.forced[j] {
                let cell = cell_text(field(i), line, &names[i])?;
                if is_na(cell) { f64::NAN } else { f64::from(text[j].intern(cell)) }
            } else {
                text[j].take(cell(i)?, row)
            };
            x.push(value);
        }
        let label = label_text.take(cell(self.label_idx)?, row);
        y.push(label);
        Ok(())
    }

    /// Reads the rows of quote-free blocks side by side on `threads` threads: `first` (the rest
    /// of the block the header was in, after `lines_before` line breaks), then the blocks
    /// `blocks` reads from `reader`. A block with a quote, and all after it, are read as
    /// [`Layout::read_rows`] reads. The first error in file order is the one a reading from the
    /// start would have met.
    fn read_in_blocks<R: Read + Send>(
        &self,
        (first, lines_before): (&[u8], u64),
        (blocks, reader): (&mut BlockReader, R),
        threads: usize,
        sink: Option<&mut dyn ValueSink>,
        held: &Held,
    ) -> Result<Rows, DataError> {
        use std::sync::mpsc;
        // Bounded queues: a few blocks are read ahead, no more.
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<BlockJob>(threads);
        // Shared by the parsers only, so that it goes with the last of them: a reader waiting to
        // hand out a block then learns no one will take it.
        let jobs_rx = std::sync::Arc::new(std::sync::Mutex::new(jobs_rx));
        let (done_tx, done_rx) = mpsc::sync_channel::<ParsedBlock>(threads * 2);
        // Parsed blocks go back to the reader, which reads the next ones into them.
        let (spent_tx, spent_rx) = mpsc::channel::<Vec<u8>>();
        blocks.spent = Some(spent_rx);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let (done_tx, spent_tx) = (done_tx.clone(), spent_tx.clone());
                let jobs_rx = std::sync::Arc::clone(&jobs_rx);
                scope.spawn(move || self.parse_blocks(&jobs_rx, &spent_tx, &done_tx));
            }
            drop(spent_tx);
            drop(jobs_rx);
            let reader_done = done_tx.clone();
            drop(done_tx);
            let start = (first, lines_before);
            scope.spawn(move || {
                self.hand_out_blocks(start, (blocks, reader), (&jobs_tx, &reader_done), held)
            });
            self.gather_in_order(done_rx, sink, held)
        })
    }

    /// A parser thread: parses the blocks it is handed until there are no more or no one
    /// listens, each block going back (`spent`) to be read into again.
    fn parse_blocks(
        &self,
        jobs: &std::sync::Mutex<std::sync::mpsc::Receiver<BlockJob>>,
        spent: &std::sync::mpsc::Sender<Vec<u8>>,
        done: &std::sync::mpsc::SyncSender<ParsedBlock>,
    ) {
        loop {
            let job = jobs.lock().map_err(|_| ()).and_then(|rx| rx.recv().map_err(|_| ()));
            let Ok((index, block, before)) = job else { return };
            let rows = self.read_unquoted(&block, before);
            let _ = spent.send(block);
            if done.send((index, rows)).is_err() {
                return;
            }
        }
    }

    /// The reader: hands out blocks (from `first`, after `lines_before` line breaks) with the
    /// line breaks before each, until the end, an error, a quote (then it reads the rest
    /// itself, as [`Layout::read_rows`] reads) or no one listening.
    fn hand_out_blocks<R: Read>(
        &self,
        (first, lines_before): (&[u8], u64),
        (blocks, mut reader): (&mut BlockReader, R),
        (jobs, done): (
            &std::sync::mpsc::SyncSender<BlockJob>,
            &std::sync::mpsc::SyncSender<ParsedBlock>,
        ),
        held: &Held,
    ) {
        let io = |e: std::io::Error| DataError::Io(e.to_string());
        let mut before = lines_before;
        let mut block = first.to_vec();
        let mut index = 0;
        loop {
            if memchr::memchr(b'"', &block).is_some() {
                // The csv crate drops a byte-order mark at the start of what it reads: a
                // leading empty line (skipped, and taken off the line count) keeps one that
                // starts this block a plain byte, as reading from the start has it.
                held.because(QUOTED.into());
                let rest = std::io::Cursor::new(b"\n").chain(blocks.rest(block, &mut reader));
                let (mut csv, newlines) = record_reader(self.delimiter, rest);
                let rows = self.read_rows(&mut csv, &newlines, 0, before.saturating_sub(1));
                let _ = done.send((index, rows));
                return;
            }
            let breaks = count_line_breaks(&block);
            if !block.is_empty() {
                if jobs.send((index, std::mem::take(&mut block), before)).is_err() {
                    return;
                }
                index += 1;
            }
            before += breaks;
            match blocks.next(&mut reader) {
                Ok(next) if next.is_empty() => return,
                Ok(next) => block = next,
                Err(e) => {
                    let _ = done.send((index, Err(io(e))));
                    return;
                }
            }
        }
    }

    /// The rows in file order, as the blocks come back. Their values go to the sink while
    /// they can be final: up to the first block with a text cell (whose column becomes codes,
    /// or an error), and never for a `--categorical` column's codes.
    fn gather_in_order(
        &self,
        done: std::sync::mpsc::Receiver<ParsedBlock>,
        mut sink: Option<&mut dyn ValueSink>,
        held: &Held,
    ) -> Result<Rows, DataError> {
        let d = self.feature_idx.len();
        let mut all = Rows::empty(d);
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        let mut streaming = d > 0 && !self.forced.contains(&true);
        if let Some(j) = self.forced.iter().position(|&forced| forced) {
            held.because(format!(
                "`categorical` names its column {:?}",
                self.names[self.feature_idx[j]]
            ));
        }
        for (index, rows) in done {
            waiting.insert(index, rows);
            while let Some(rows) = waiting.remove(&next) {
                let mut rows = rows?;
                if let Some((j, cells)) =
                    rows.text.iter().enumerate().find(|(_, cells)| !cells.cells.is_empty())
                {
                    streaming = false;
                    let (row, code) = cells.cells[0];
                    held.because(format!(
                        "its column {:?} holds text ({:?} on line {})",
                        self.names[self.feature_idx[j]],
                        cells.values[code as usize],
                        rows.lines[row]
                    ));
                }
                if let Some(sink) = reborrow(&mut sink)
                    && streaming
                {
                    sink.append(&rows.x, d).map_err(|e| DataError::Storing(e.to_string()))?;
                    all.streamed += rows.y.len();
                    rows.x = Vec::new();
                }
                all.append(rows, self.forced);
                next += 1;
            }
        }
        Ok(all)
    }
}

/// Reads into all of `buf` unless the end comes first; returns how much it read.
fn read_fully<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut read = 0;
    while read < buf.len() {
        match reader.read(&mut buf[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(read)
}

/// A block to parse: its index in the file, its bytes and the line breaks before it.
type BlockJob = (usize, Vec<u8>, u64);
/// A parsed block: its index in the file and its rows, or the first error in it.
type ParsedBlock = (usize, Result<Rows, DataError>);

/// Reads a file in blocks that end at line ends (`\n`), keeping what follows the last one.
struct BlockReader {
    /// Read but not yet handed out: the start of the next block.
    buffer: Vec<u8>,
    block_bytes: usize,
    /// Blocks handed out and parsed, whose memory the next blocks are read into.
    spent: Option<std::sync::mpsc::Receiver<Vec<u8>>>,
}

impl BlockReader {
    fn new(block_bytes: usize) -> BlockReader {
        BlockReader { buffer: Vec::new(), block_bytes: block_bytes.max(1), spent: None }
    }

    /// The next block: `block_bytes` or a little more, ending just past a `\n` — or at the end
    /// of the file, or longer where a line is. Empty at the end.
    ///
    /// It is read into the memory of a block handed back as spent, where one is: into memory
    /// of its own, `read_to_end` zeroes it first (the reader has no `read_buf`). Only memory
    /// never used before is zeroed here.
    fn next<R: Read>(&mut self, reader: &mut R) -> std::io::Result<Vec<u8>> {
        let mut block =
            self.spent.as_ref().and_then(|spent| spent.try_recv().ok()).unwrap_or_default();
        let carried = self.buffer.len();
        block.resize(block.len().max(carried), 0);
        block[..carried].copy_from_slice(&self.buffer);
        self.buffer.clear();
        // What is carried over follows the last `\n` handed out: it holds none.
        let mut filled = carried;
        loop {
            let end = filled + self.block_bytes;
            block.resize(block.len().max(end), 0);
            let read = read_fully(reader, &mut block[filled..end])?;
            let searched = filled;
            filled += read;
            if read < self.block_bytes {
                block.truncate(filled);
                return Ok(block); // the end of the file
            }
            if let Some(last) = memchr::memrchr(b'\n', &block[searched..filled]) {
                self.buffer.extend_from_slice(&block[searched + last + 1..filled]);
                block.truncate(searched + last + 1);
                return Ok(block);
            }
            if filled - carried > MAX_LINE_BYTES {
                return Err(std::io::Error::other(format!(
                    "a line is longer than {} MiB: is this a CSV file?",
                    MAX_LINE_BYTES >> 20
                )));
            }
        }
    }

    /// The rest of the file from `block` (just handed out) on: it, what was read past it, and
    /// what `reader` has not read yet.
    fn rest<R: Read>(&mut self, block: Vec<u8>, reader: R) -> impl Read + use<R> {
        std::io::Cursor::new(block)
            .chain(std::io::Cursor::new(std::mem::take(&mut self.buffer)))
            .chain(reader)
    }
}

impl Rows {
    fn empty(d: usize) -> Rows {
        Rows {
            x: Vec::new(),
            y: Vec::new(),
            lines: Vec::new(),
            text: (0..d).map(|_| TextCells::default()).collect(),
            label_text: TextCells::default(),
            streamed: 0,
        }
    }

    /// Appends the next block's rows: its text cells are interned anew, so that every code is
    /// what a reading from the start would have given (values coded in order of appearance).
    fn append(&mut self, mut block: Rows, forced: &[bool]) {
        let d = forced.len();
        let row_offset = self.y.len();
        for (j, cells) in block.text.into_iter().enumerate() {
            let remap = self.text[j].absorb(cells, row_offset);
            if forced[j] {
                for v in block.x.iter_mut().skip(j).step_by(d) {
                    if !v.is_nan() {
                        *v = f64::from(remap[*v as usize]);
                    }
                }
            }
        }
        self.label_text.absorb(block.label_text, row_offset);
        self.x.append(&mut block.x);
        self.y.append(&mut block.y);
        self.lines.append(&mut block.lines);
    }
}

/// Line breaks in `bytes`, as [`NewlineIndex`] counts them: `\n`, `\r\n` and a lone `\r`.
fn count_line_breaks(bytes: &[u8]) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', bytes).count();
    let lone_crs =
        memchr::memchr_iter(b'\r', bytes).filter(|&i| bytes.get(i + 1) != Some(&b'\n')).count();
    (newlines + lone_crs) as u64
}

/// Where the record after the line end at `at` starts: past a `\r\n` as one line end.
/// `at` may be the end of `text`, for a last line with no line end.
fn past_line_end(text: &[u8], at: usize) -> usize {
    match text.get(at..at + 2) {
        Some(b"\r\n") => at + 2,
        _ => (at + 1).min(text.len()),
    }
}

/// The delimiter of a header line: the most frequent of `,`, `;` and tab outside quotes.
fn sniff_delimiter(start: &[u8]) -> u8 {
    let line = start.split(|&b| b == b'\n' || b == b'\r').next().unwrap_or(&[]);
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let best = (0..3).max_by_key(|&i| (counts[i], usize::from(i == 0))).unwrap_or(0);
    if counts[best] == 0 { b',' } else { candidates[best] }
}

/// A column read as text throughout (`--categorical`): its cells hold provisional codes.
fn categorical_from_codes(
    x: &mut [f64],
    (d, j): (usize, usize),
    cells: TextCells,
    name: &str,
    max: usize,
) -> Result<ColumnKind, DataError> {
    let remap = sorted_codes(&cells.values, name, max)?;
    for v in x.iter_mut().skip(j).step_by(d) {
        if !v.is_nan() {
            *v = f64::from(remap.0[*v as usize]);
        }
    }
    Ok(ColumnKind::Categorical { levels: remap.1 })
}

/// A column of mostly text: its text cells are listed apart, its numbers are in `x`, and the
/// numbers become levels too (written as numbers are: "2", "2.5").
fn categorical_from_mixed(
    x: &mut [f64],
    (d, j): (usize, usize),
    mut cells: TextCells,
    name: &str,
    max: usize,
) -> Result<ColumnKind, DataError> {
    let provisional = cells.every_cells_code(x.iter().skip(j).step_by(d).copied());
    let (remap, levels) = sorted_codes(&cells.values, name, max)?;
    for (row, p) in provisional.into_iter().enumerate() {
        x[row * d + j] = if p == u32::MAX { f64::NAN } else { f64::from(remap[p as usize]) };
    }
    Ok(ColumnKind::Categorical { levels })
}

/// The sorted levels, and for each provisional code its index among them: at most `max`.
fn sorted_codes(
    values: &[String],
    name: &str,
    max: usize,
) -> Result<(Vec<u32>, Vec<String>), DataError> {
    let count = values.len();
    if count > max {
        return Err(DataError::TooManyLevels { column: name.to_string(), count, max });
    }
    let mut levels = values.to_vec();
    sort_levels(&mut levels);
    let position: HashMap<&str, u32> =
        levels.iter().enumerate().map(|(i, l)| (l.as_str(), i as u32)).collect();
    Ok((values.iter().map(|v| position[v.as_str()]).collect(), levels))
}

/// Turns the label into classes: a 0/1 column as it is (unless `positive` is given); exactly two
/// other values, of which `positive` (default: the later in sorted order) is 1; or K ≥ 3 values
/// (text, or numbers other than 0/1), each row's y its value's index in sorted order.
fn label_classes(
    y: &mut [f64],
    mut cells: TextCells,
    lines: &[u64],
    column: &str,
    positive: Option<&str>,
) -> Result<Option<Classes>, DataError> {
    let mut numbers_only = false;
    if cells.cells.is_empty() && positive.is_none() {
        let Some(row) = y.iter().position(|&v| !v.is_nan() && v != 0.0 && v != 1.0) else {
            return Ok(None);
        };
        // Numbers other than 0/1: K classes named by their values, or a bad label.
        numbers_only = true;
        let distinct: std::collections::BTreeSet<u64> =
            y.iter().filter(|v| !v.is_nan()).map(|v| v.to_bits()).collect();
        if distinct.len() < 3 {
            return Err(DataError::BadLabel {
                line: lines[row],
                column: column.to_string(),
                value: number_text(y[row]),
            });
        }
    }
    let provisional = cells.every_cells_code(y.iter().copied());
    let mut values = cells.values.clone();
    sort_levels(&mut values);
    if values.len() > MAX_CLASSES {
        let shown: Vec<String> = values.iter().take(6).map(|v| format!("{v:?}")).collect();
        return Err(DataError::TooManyClasses {
            column: column.to_string(),
            count: values.len(),
            values: format!("{}, …", shown.join(", ")),
        });
    }
    if values.len() > 2 {
        if let Some(p) = positive {
            let values = values.join(", ");
            return Err(DataError::Column(
                column.to_string(),
                format!(
                    "`positive` {p:?} names one of two classes, but the label has {} ({values})",
                    cells.values.len()
                ),
            ));
        }
        let index: HashMap<&str, f64> =
            values.iter().enumerate().map(|(i, v)| (v.as_str(), i as f64)).collect();
        let mut rows_of = vec![0usize; values.len()];
        for (row, p) in provisional.into_iter().enumerate() {
            y[row] =
                if p == u32::MAX { f64::NAN } else { index[cells.values[p as usize].as_str()] };
            if !y[row].is_nan() {
                rows_of[y[row] as usize] += 1;
            }
        }
        // One row of a class: most often a typo in a label of fewer classes (a 3 among 0s and 1s).
        if let Some(lone) = rows_of.iter().position(|&n| n == 1) {
            let row = y.iter().position(|&v| v == lone as f64).unwrap_or(0);
            let others = values
                .iter()
                .enumerate()
                .filter(|&(c, _)| c != lone)
                .map(|(_, v)| format!("{v:?}"))
                .collect::<Vec<_>>();
            return Err(DataError::LoneClass {
                line: lines[row],
                column: column.to_string(),
                value: values[lone].clone(),
                others: others.join(", "),
            });
        }
        return Ok(Some(Classes::several(values)));
    }
    debug_assert!(!numbers_only, "numbers other than 0/1 in two values are refused above");
    let positive = match positive {
        Some(p) if values.iter().any(|v| v == p) => p.to_string(),
        Some(p) => {
            return Err(DataError::UnknownPositive {
                column: column.to_string(),
                value: p.to_string(),
                values: values.join(", "),
            });
        }
        None => values.last().cloned().unwrap_or_default(),
    };
    let negative = values
        .iter()
        .find(|v| **v != positive)
        .cloned()
        .unwrap_or_else(|| format!("not {positive}"));
    for (row, p) in provisional.into_iter().enumerate() {
        y[row] = if p == u32::MAX {
            f64::NAN
        } else {
            f64::from(u8::from(cells.values[p as usize] == positive))
        };
    }
    Ok(Some(Classes::two(negative, positive)))
}

/// Passes bytes through, noting where every line break ends: the offset just past its `\n`,
/// `\r\n`, or lone `\r` (the csv crate ends records at all three, so a file with old Mac line
/// ends would otherwise be all on "line 1" — found by the `csv_table` fuzz target).
/// A csv reader of records (no header taken, any field count) over `inner`, and where the line
/// breaks it has read end, which the reader's byte positions turn into line numbers.
fn record_reader<R: Read>(
    delimiter: u8,
    inner: R,
) -> (csv::Reader<NewlineIndex<R>>, Rc<RefCell<Vec<u64>>>) {
    let newlines = Rc::new(RefCell::new(Vec::new()));
    let index =
        NewlineIndex { inner, offset: 0, last_was_cr: false, newlines: Rc::clone(&newlines) };
    (
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(index),
        newlines,
    )
}

struct NewlineIndex<R> {
    inner: R,
    offset: u64,
    last_was_cr: bool,
    newlines: Rc<RefCell<Vec<u64>>>,
}

impl<R: Read> Read for NewlineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = &buf[..n];
        let mut breaks = self.newlines.borrow_mut();
        for i in memchr::memchr2_iter(b'\n', b'\r', read) {
            let end = self.offset + i as u64 + 1;
            let after_cr = if i == 0 { self.last_was_cr } else { read[i - 1] == b'\r' };
            match read[i] {
                // The `\n` of a `\r\n` extends the break its `\r` started.
                b'\n' if after_cr => {
                    if let Some(last) = breaks.last_mut() {
                        *last = end;
                    }
                }
                _ => breaks.push(end),
            }
        }
        if let Some(&last) = read.last() {
            self.last_was_cr = last == b'\r';
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
fn is_blank<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> bool {
    fields.into_iter().all(|f| f.trim_ascii().is_empty())
}

fn csv_error(e: csv::Error, line: u64) -> DataError {
    match e.kind() {
        csv::ErrorKind::Io(io) => DataError::Io(io.to_string()),
        _ => DataError::Csv { line, message: e.to_string() },
    }
}

fn select_columns(
    names: &[String],
    skip: usize,
    select: &CsvOptions,
) -> Result<(usize, Vec<usize>), DataError> {
    let find = |name: &str| {
        names.iter().skip(skip).position(|n| n == name).map(|i| i + skip).ok_or_else(|| {
            DataError::UnknownColumn { name: name.to_string(), available: names[skip..].join(", ") }
        })
    };
    let label_idx = match &select.label {
        Some(name) => find(name)?,
        None => names.len() - 1,
    };
    let mut feature_idx = match &select.features {
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
        None => {
            let row_only: Vec<&str> = select.roles.of_rows_only().map(|(_, name)| name).collect();
            (skip..names.len())
                .filter(|&i| i != label_idx && !row_only.contains(&names[i].as_str()))
                .collect()
        }
    };
    let roles: Vec<&str> = select.roles.named().map(|(_, name)| name).collect();
    if feature_idx.iter().all(|&i| roles.contains(&names[i].as_str())) {
        return Err(DataError::NoFeatures);
    }
    select.roles.select(find, label_idx, &mut feature_idx, select.features.is_some())?;
    Ok((label_idx, feature_idx))
}

/// One of a text column's `values` when every one is a number written with a decimal comma
/// (`729,53`), which a file from a spreadsheet in a European locale holds.
fn decimal_comma_number(values: &[String]) -> Option<&String> {
    let pointed = |v: &String| v.replace(',', ".").parse::<f64>().is_ok_and(f64::is_finite);
    let sample = values.iter().find(|v| v.contains(','))?;
    values.iter().all(|v| v.matches(',').count() <= 1 && pointed(v)).then_some(sample)
}

/// Whether `options` ask for a decimal comma, which a comma delimiter cannot go with.
fn decimal_comma(options: &CsvOptions, delimiter: u8) -> Result<bool, DataError> {
    match options.decimal.as_deref() {
        None | Some(".") => Ok(false),
        Some(",") if delimiter == b',' => Err(DataError::Column(
            "`decimal`".into(),
            "a decimal comma needs another delimiter: give `delimiter` ';'".into(),
        )),
        Some(",") => Ok(true),
        Some(other) => Err(DataError::Column(
            "`decimal`".into(),
            format!("the decimal mark is . or , (got {other:?})"),
        )),
    }
}

/// One cell, read.
enum Cell<'a> {
    Number(f64),
    Missing,
    Text(&'a str),
}

/// A cell as text, spaces around it ignored. `line` is called only for an error.
fn cell_text<'a>(
    field: &'a [u8],
    line: &impl Fn() -> u64,
    column: &str,
) -> Result<&'a str, DataError> {
    std::str::from_utf8(field.trim_ascii()).map_err(|_| {
        DataError::Column(column.to_string(), format!("line {}: the text is not UTF-8", line()))
    })
}

/// Parses one cell, spaces around it ignored: a finite number, missing (empty or an NA
/// marker), or text. Numbers are tried first, so the NA markers cost nothing on numeric data.
fn parse_cell<'a>(
    field: &'a [u8],
    line: &impl Fn() -> u64,
    column: &str,
    is_na: &impl Fn(&str) -> bool,
) -> Result<Cell<'a>, DataError> {
    let field = field.trim_ascii();
    if field.is_empty() {
        return Ok(Cell::Missing);
    }
    // Most cells are numbers: read from the bytes, with no UTF-8 check first (a number is
    // ASCII). fast-float2 takes the same syntax as `str::parse` and rounds as it does (both
    // correctly), in ≈ 2/3 of its time; whatever it does not take whole and finite goes the
    // way below, as before.
    if let Ok(v) = fast_float2::parse::<f64, _>(field)
        && v.is_finite()
    {
        return Ok(Cell::Number(v + 0.0)); // + 0.0 turns −0 into 0, so equal rows hash equal
    }
    let text = cell_text(field, line, column)?;
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Cell::Number(v + 0.0)), // + 0.0 turns −0 into 0, so equal rows hash equal
        _ if is_na(text) => Ok(Cell::Missing),
        Ok(_) => Err(DataError::NotFinite {
            line: line(),
            column: column.to_string(),
            value: text.to_string(),
        }),
        Err(_) => Ok(Cell::Text(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<RawTable, DataError> {
        RawTable::from_csv(text.as_bytes(), &CsvOptions::default())
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
        assert!(matches!(
            read("score,admitted\ninf,1\n"),
            Err(DataError::NotFinite { line: 2, .. })
        ));
        assert_eq!(
            read("score,admitted\n80,1,5\n"),
            Err(DataError::FieldCount { line: 2, expected: 2, found: 3 })
        );
        assert!(matches!(read("score,admitted\n80,2\n"), Err(DataError::BadLabel { line: 2, .. })));
        assert_eq!(read(""), Err(DataError::Empty));
        assert_eq!(read("score,admitted\n"), Err(DataError::NoRows));
    }

    #[test]
    fn spaces_around_values_are_ignored_and_a_line_of_spaces_is_blank() {
        let t = read(" score , admitted \n 80 , 1 \n  ,  \n\t20,0\n").expect("valid");
        assert_eq!(
            (t.feature_names.clone(), t.label_name.clone()),
            (vec!["score".to_string()], "admitted".to_string())
        );
        assert_eq!(
            (t.x.clone(), t.y.clone(), t.lines.clone()),
            (vec![80.0, 20.0], vec![1.0, 0.0], vec![2, 4])
        );
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
        assert_eq!(
            read("a,y\r1,1\rx,0\r"),
            Err(DataError::NotANumber { line: 3, column: "a".into(), value: "x".into() })
        );
    }

    #[test]
    fn empty_cells_are_missing_not_errors_here() {
        let t = read("a,b,y\n1,,1\n2,3,\n").expect("valid");
        assert!(t.x[1].is_nan());
        assert!(t.y[1].is_nan());
    }

    #[test]
    fn na_markers_are_missing_in_any_column() {
        let t = read("a,b,y\nNA,x,1\nNaN,null,0\n3,y,NA\n").expect("valid");
        assert!(t.x[0].is_nan() && t.x[2].is_nan() && t.x[3].is_nan());
        assert_eq!(t.x[4], 3.0);
        assert!(t.y[2].is_nan());
        let own = CsvOptions { na_values: Some(vec!["-".into()]), ..CsvOptions::default() };
        let t = RawTable::from_csv("a,y\n-,1\n2,0\n".as_bytes(), &own).expect("valid");
        assert!(t.x[0].is_nan());
    }

    #[test]
    fn text_columns_are_categorical_with_sorted_levels() {
        let t = read("student,balance,default\nYes,10,No\nNo,20,Yes\nYes,,No\n").expect("valid");
        assert_eq!(t.kinds[0], ColumnKind::Categorical { levels: vec!["No".into(), "Yes".into()] });
        assert_eq!(t.kinds[1], ColumnKind::Numeric);
        assert_eq!(&t.x[..5], &[1.0, 10.0, 0.0, 20.0, 1.0]);
        assert!(t.x[5].is_nan());
        // The positive class is the later in sorted order, as R's glm takes it.
        assert_eq!(t.classes, Some(Classes::two("No", "Yes")));
        assert_eq!(t.y, vec![0.0, 1.0, 0.0]);
        let told = CsvOptions { positive: Some("No".into()), ..CsvOptions::default() };
        let t = RawTable::from_csv("s,y\na,No\nb,Yes\n".as_bytes(), &told).expect("valid");
        assert_eq!(t.y, vec![1.0, 0.0]);
        let wrong = CsvOptions { positive: Some("maybe".into()), ..CsvOptions::default() };
        assert!(matches!(
            RawTable::from_csv("s,y\na,No\nb,Yes\n".as_bytes(), &wrong),
            Err(DataError::UnknownPositive { .. })
        ));
    }

    #[test]
    fn three_or_more_label_values_are_classes_in_sorted_order() {
        // Text: each row's y is its class's index; a missing label stays missing.
        let t = read("s,y\na,z\nb,x\nc,y\nd,\ne,x\nf,y\ng,z\n").expect("valid");
        assert_eq!(t.classes, Some(Classes::several(vec!["x".into(), "y".into(), "z".into()])));
        assert_eq!(&t.y[..3], &[2.0, 0.0, 1.0]);
        assert!(t.y[3].is_nan());
        assert_eq!(t.y[4], 0.0);
        // Numbers other than 0/1 name their classes, sorted as numbers.
        let t = read("s,PID\na,6\nb,0\nc,10\nd,2\ne,6\nf,0\ng,10\nh,2\n").expect("valid");
        assert_eq!(t.classes.as_ref().map(Classes::names), Some(vec!["0", "2", "6", "10"]));
        assert_eq!(t.y[..4], [2.0, 0.0, 3.0, 1.0]);
        // Two numbers other than 0/1 are still not a label; nor is --positive with three classes.
        assert!(matches!(read("s,y\na,1\nb,2\n"), Err(DataError::BadLabel { line: 3, .. })));
        let told = CsvOptions { positive: Some("x".into()), ..CsvOptions::default() };
        let three = RawTable::from_csv("s,y\na,x\nb,y\nc,z\n".as_bytes(), &told);
        assert!(
            matches!(three, Err(DataError::Column(ref c, ref m)) if c == "y" && m.contains("names one of two classes")),
            "{three:?}"
        );
        // More than MAX_CLASSES values: a number to regress, or an identifier.
        let many: String = (0..=MAX_CLASSES).map(|i| format!("r,{i}.5\n")).collect();
        assert!(
            matches!(read(&format!("s,y\n{many}")), Err(DataError::TooManyClasses { count, .. }) if count == MAX_CLASSES + 1)
        );
        // A class of one row is named with its line: a 3 among 0s and 1s is most often a typo.
        let lone = read("s,y\na,0\nb,1\nc,3\nd,0\ne,1\n");
        assert!(
            matches!(&lone, Err(DataError::LoneClass { line: 4, value, .. }) if value == "3"),
            "{lone:?}"
        );
    }

    #[test]
    fn a_stray_word_in_a_numeric_column_names_its_line() {
        assert_eq!(
            read("a,y\n1,1\n2,0\noops,1\n"),
            Err(DataError::NotANumber { line: 4, column: "a".into(), value: "oops".into() })
        );
        // Mostly text with a number: the number is a level too.
        let t = read("a,y\nlow,1\nhigh,0\n3,1\n").expect("valid");
        assert_eq!(
            t.kinds[0],
            ColumnKind::Categorical { levels: vec!["3".into(), "high".into(), "low".into()] }
        );
        assert_eq!(t.x, vec![2.0, 1.0, 0.0]);
    }

    #[test]
    fn categorical_option_reads_numbers_as_levels_sorted_numerically() {
        let options = CsvOptions { categorical: vec!["rank".into()], ..CsvOptions::default() };
        let t = RawTable::from_csv("rank,y\n10,1\n2,0\n1,1\n2,1\n".as_bytes(), &options)
            .expect("valid");
        assert_eq!(
            t.kinds[0],
            ColumnKind::Categorical { levels: vec!["1".into(), "2".into(), "10".into()] }
        );
        assert_eq!(t.x, vec![2.0, 1.0, 0.0, 1.0]);
        let unknown = CsvOptions { categorical: vec!["nope".into()], ..CsvOptions::default() };
        assert!(matches!(
            RawTable::from_csv("rank,y\n1,1\n".as_bytes(), &unknown),
            Err(DataError::UnknownColumn { .. })
        ));
    }

    #[test]
    fn a_column_of_many_levels_is_read_up_to_its_bound() {
        // Two rows a level: a category, however many levels (up to the bound). Whether a column
        // names rows rather than grouping them is a question of the training rows, which the
        // transform asks (`Transform::identifier`): a test file may hold many levels once.
        let mut text = String::from("shop,y\n");
        for i in 0..2 * (MAX_LEVELS + 1) {
            text.push_str(&format!("s{},{}\n", i / 2, i % 2));
        }
        assert!(
            matches!(read(&text), Err(DataError::TooManyLevels { count, .. }) if count == MAX_LEVELS + 1)
        );
        let text: String =
            text.lines().take(2 * MAX_LEVELS + 1).map(|l| format!("{l}\n")).collect();
        let table = read(&text).expect("reads");
        assert_eq!(table.kinds[0].levels().map(<[String]>::len), Some(MAX_LEVELS));
    }

    #[test]
    fn a_cluster_column_may_name_any_number_of_groups() {
        let mut text = String::from("x,firm,y\n");
        for i in 0..=3 * MAX_IDENTIFIER_LEVELS {
            text.push_str(&format!("{i},firm{},{}\n", i / 2, i % 2));
        }
        let clustered = CsvOptions {
            roles: RoleColumns { cluster: Some("firm".into()), ..RoleColumns::default() },
            ..CsvOptions::default()
        };
        let table = RawTable::from_csv(text.as_bytes(), &clustered).expect("reads");
        let groups = 3 * MAX_IDENTIFIER_LEVELS / 2 + 1;
        assert_eq!(table.kinds[1].levels().map(<[String]>::len), Some(groups));
    }

    #[test]
    fn delimiters_are_sniffed_and_a_pandas_index_is_skipped() {
        let t = read("a;b;y\n1,5;2;1\n3;4;0\n");
        assert!(t.is_err(), "1,5 is not a number with ';' as delimiter");
        let t = read("a;b;y\n1;2;1\n3;4;0\n").expect("valid");
        assert_eq!(
            (t.feature_names.clone(), t.x.clone()),
            (vec!["a".to_string(), "b".to_string()], vec![1.0, 2.0, 3.0, 4.0])
        );
        assert!(t.notes.iter().any(|n| n.contains("';'")), "{:?}", t.notes);
        let t = read("a\tb\ty\n1\t2\t1\n").expect("valid");
        assert_eq!(t.x, vec![1.0, 2.0]);
        let t = read(",score,admitted\n0,80,1\n1,20,0\n").expect("valid");
        assert_eq!(
            (t.feature_names.clone(), t.x.clone()),
            (vec!["score".to_string()], vec![80.0, 20.0])
        );
        assert!(t.notes.iter().any(|n| n.contains("index")));
        let told = CsvOptions { delimiter: Some("|".into()), ..CsvOptions::default() };
        assert_eq!(RawTable::from_csv("a|y\n1|1\n".as_bytes(), &told).expect("valid").x, vec![1.0]);
        let bad = CsvOptions { delimiter: Some("||".into()), ..CsvOptions::default() };
        assert!(matches!(
            RawTable::from_csv("a|y\n1|1\n".as_bytes(), &bad),
            Err(DataError::BadDelimiter(_))
        ));
    }

    #[test]
    fn selects_columns_by_name() {
        let sel = CsvOptions {
            label: Some("y".into()),
            features: Some(vec!["b".into()]),
            ..CsvOptions::default()
        };
        let t = RawTable::from_csv("y,a,b\n1,2,3\n".as_bytes(), &sel).expect("valid");
        assert_eq!((t.x.clone(), t.y.clone()), (vec![3.0], vec![1.0]));
        let sel = CsvOptions { label: Some("nope".into()), ..CsvOptions::default() };
        assert!(matches!(
            RawTable::from_csv("y,a\n1,2\n".as_bytes(), &sel),
            Err(DataError::UnknownColumn { .. })
        ));
    }

    /// Generated CSV text with the header `a,b,c,y`: numbers, words, NA markers, blanks, spaces
    /// and every line end; a 0/1 or a yes/no label; and, in one row in fifty or so, a fault (a
    /// wrong field count, bad UTF-8, an infinite number, a third label value).
    fn generated_csv() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let number =
            prop::sample::select(vec!["1", "2.5", "-0", " 3 ", "1e308", "NA", "", "7", "-12.25"]);
        let word = prop::sample::select(vec!["x", "word", "NA", "", "é", "zz", "7"]);
        let cell = (number.clone(), word, number).prop_map(|(a, b, c)| vec![a, b, c]);
        let end = prop::sample::select(vec!["\n", "\r\n", "\r", "\n\n", "\n  \n"]);
        let row = (cell, 0usize..3, end, 0u8..100);
        let header_end = prop::sample::select(vec!["\n", "\r\n", "\r", "\r\n\r\n"]);
        // What may come before the header: a byte-order mark, blank lines.
        let before =
            prop::sample::select(vec!["", "", "\u{feff}", "\n", "\u{feff}\n", "  \r\n\n", ",,\n"]);
        (any::<bool>(), before, header_end, prop::collection::vec(row, 1..80)).prop_map(
            |(text_label, before, header_end, rows)| {
                let labels = if text_label { ["yes", "no", "NA"] } else { ["0", "1", "NA"] };
                let mut text = format!("{before}a,b,c,y{header_end}").into_bytes();
                for (mut cells, label, end, fault) in rows {
                    match fault {
                        0 => cells.push("4"),
                        1 => cells[0] = "1e999",
                        4 => cells[2] = "stray",
                        _ => {}
                    }
                    let mut line = cells.join(",").into_bytes();
                    line.push(b',');
                    line.extend_from_slice(if fault == 2 {
                        b"maybe"
                    } else {
                        labels[label].as_bytes()
                    });
                    if fault == 3 {
                        line.push(0xff);
                    }
                    line.extend_from_slice(end.as_bytes());
                    text.extend(line);
                }
                text
            },
        )
    }

    /// The block test sees tables as well as errors: most generated files read.
    #[test]
    fn most_generated_files_read_as_tables() {
        use proptest::strategy::{Strategy, ValueTree};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = generated_csv();
        let tables = (0..200)
            .filter(|_| {
                let text = strategy.new_tree(&mut runner).map(|t| t.current()).unwrap_or_default();
                let forced = CsvOptions { categorical: vec!["b".into()], ..CsvOptions::default() };
                RawTable::from_csv(text.as_slice(), &forced).is_ok()
            })
            .count();
        assert!((40..200).contains(&tables), "{tables} of 200 generated files read as tables");
    }

    proptest::proptest! {
        /// A cell is the same cell whether its number is read by the fast path or by
        /// `str::parse`: every value (the very bits), every refusal, every NA and text.
        #[test]
        fn the_fast_number_path_reads_every_cell_as_str_parse_does(
            cell in proptest::string::string_regex("[ ]?[+-]?([0-9]{0,20}[.]?[0-9]{0,20}([eE][+-]?[0-9]{1,4})?|inf|Infinity|nan|NA|1_0|0x1f|[a-z]{1,3}|[.]|e5)[ ]?").expect("regex"),
        ) {
            let line = || 7;
            let is_na = |t: &str| t == "NA" || t == "nan";
            let by_std = |field: &[u8]| -> Result<Option<u64>, String> {
                let text = field.trim_ascii();
                if text.is_empty() {
                    return Ok(None);
                }
                let text = std::str::from_utf8(text).map_err(|e| e.to_string())?;
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(Some((v + 0.0).to_bits())),
                    _ if is_na(text) => Ok(None),
                    Ok(_) => Err("not finite".into()),
                    Err(_) => Ok(Some(u64::MAX)),
                }
            };
            let read = match parse_cell(cell.as_bytes(), &line, "c", &is_na) {
                Ok(Cell::Number(v)) => Ok(Some(v.to_bits())),
                Ok(Cell::Missing) => Ok(None),
                Ok(Cell::Text(_)) => Ok(Some(u64::MAX)),
                Err(DataError::NotFinite { .. }) => Err("not finite".to_string()),
                Err(e) => Err(e.to_string()),
            };
            proptest::prop_assert_eq!(read, by_std(cell.as_bytes()), "{:?}", cell);
        }

        /// Read in blocks side by side, any file gives the very table, or the very error, that
        /// reading it from the start gives.
        #[test]
        fn reading_in_blocks_gives_what_reading_from_the_start_gives(
            text in generated_csv(),
            threads in 1usize..4,
            block_bytes in 1usize..200,
            quote in proptest::option::of(0usize..2000),
            forced in proptest::bool::ANY,
            unended in proptest::bool::ANY,
        ) {
            // Now and then a quoted cell somewhere, so the switch to the csv crate mid-file is
            // met, sometimes after a byte-order mark (which the csv crate drops only at the start).
            let mut text = text;
            // Now and then a last line with no line end.
            while unended && matches!(text.last(), Some(b'\n' | b'\r')) {
                text.pop();
            }
            if let Some(at) = quote.filter(|&at| at < text.len()) {
                let inserted: &[u8] = if at % 3 == 0 { b"\xef\xbb\xbf\"q" } else { b"\"q\"" };
                text.splice(at..at, inserted.iter().copied());
            }
            let options = CsvOptions { categorical: if forced { vec!["b".into()] } else { Vec::new() }, ..CsvOptions::default() };
            let whole = RawTable::from_csv(text.as_slice(), &options);
            let in_blocks = RawTable::from_csv_in_blocks(text.as_slice(), &options, threads, block_bytes);
            same_reading(whole, in_blocks)?;
            let whole = RawTable::from_csv(text.as_slice(), &options);
            same_reading(whole, read_streaming(&text, &options, threads, block_bytes))?;
        }

        /// Files of plain numbers, which blocks read in one walk over each record's bytes
        /// (`walk_record`), now and then a cell of another kind: every spelling a number may
        /// have, NA markers, spaces, words, a field too many. A column left out by `--features`
        /// may hold anything; the delimiter may be one that stands in numbers.
        #[test]
        fn plain_numeric_records_read_in_blocks_as_from_the_start(
            rows in proptest::collection::vec((proptest::collection::vec(plain_or_odd_cell(), 4), 0usize..3, 0usize..3), 1..60),
            left_out in proptest::option::of(0usize..4),
            threads in 1usize..4,
            block_bytes in 1usize..300,
            unended in proptest::bool::ANY,
            delimiter in proptest::sample::select(vec![",", ",", ";", "\t", ".", "e", "5"]),
        ) {
            let mut text = ["a", "b", "c", "d", "y\n"].join(delimiter).into_bytes();
            for (cells, label, end) in rows {
                text.extend(cells.join(delimiter).bytes());
                text.extend(delimiter.bytes());
                text.extend(["0", "1", "1.0"][label].bytes());
                text.extend(["\n", "\r\n", "\r"][end].bytes());
            }
            if unended {
                text.pop();
            }
            let features = left_out.map(|out| ["a", "b", "c", "d"].iter().enumerate().filter(|&(j, _)| j != out).map(|(_, f)| f.to_string()).collect());
            let options = CsvOptions { features, label: Some("y".into()), delimiter: Some(delimiter.into()), ..CsvOptions::default() };
            let whole = RawTable::from_csv(text.as_slice(), &options);
            let in_blocks = RawTable::from_csv_in_blocks(text.as_slice(), &options, threads, block_bytes);
            same_reading(whole, in_blocks)?;
            let whole = RawTable::from_csv(text.as_slice(), &options);
            same_reading(whole, read_streaming(&text, &options, threads, block_bytes))?;
        }
    }

    #[test]
    fn a_file_held_in_memory_is_read_up_to_its_bound_and_numbers_alone_with_none() {
        let numeric: String = std::iter::once("a,b,y\n".to_string())
            .chain((0..400).map(|i| format!("{i},{},{}\n", i % 5, i % 2)))
            .collect();
        let text: String = std::iter::once("a,b,y\n".to_string())
            .chain((0..400).map(|i| format!("{i},s{},{}\n", i % 7, i % 2)))
            .collect();
        let quoted = numeric.replace("\n7,2,1\n", "\n7,\"2\",1\n");
        let roles = RoleColumns { weights: Some("b".into()), ..RoleColumns::default() };
        let weighted = CsvOptions { roles, ..CsvOptions::default() };
        let read = |text: &str, options: &CsvOptions, limit| {
            let mut sink = Vec::new();
            RawTable::read_in_blocks(text.as_bytes(), options, (2, 64), Some(&mut sink), limit)
                .map(|(_, went)| went)
        };
        // Just over half of each file: a bound twice as large lets the whole file through.
        let half = |file: &str| file.len() as u64 / 2 + 1;
        let bound = half(&numeric);
        // Numbers alone go to the sink as they are read: no bound holds them.
        assert_eq!(read(&numeric, &CsvOptions::default(), bound).ok(), Some(ValuesWent::ToSink));
        for (file, options, why) in [
            (&text, CsvOptions::default(), "its column \"b\" holds text (\"s0\" on line 2)"),
            (&quoted, CsvOptions::default(), QUOTED),
            (&numeric, weighted, "weights, offset or cluster column"),
            (
                &numeric,
                CsvOptions { categorical: vec!["b".into()], ..CsvOptions::default() },
                "`categorical` names its column \"b\"",
            ),
        ] {
            let err = read(file, &options, half(file)).expect_err("over the bound");
            let message = err.to_string();
            assert!(message.contains(why) && message.contains("held in memory"), "{message}");
            // Within the bound the same file reads, into the table.
            let went = read(file, &options, file.len() as u64).expect("within the bound");
            assert_eq!(went, ValuesWent::IntoTable, "{why}");
        }
        // A line longer than any CSV's is refused rather than read into one block.
        let long = format!("a,y\n1,{}\n", "0".repeat(MAX_LINE_BYTES + 4096));
        let err = read(&long, &CsvOptions::default(), u64::MAX).expect_err("a line too long");
        assert!(err.to_string().contains("a line is longer than 64 MiB"), "{err}");
    }

    /// [`RawTable::read_in_blocks`] with a sink, its values put back: the sink's when they
    /// went there (the table must then hold none), else the table's (the sink must hold none).
    fn read_streaming(
        text: &[u8],
        options: &CsvOptions,
        threads: usize,
        block_bytes: usize,
    ) -> Result<RawTable, DataError> {
        let mut sink = Vec::new();
        let (mut table, went) = RawTable::read_in_blocks(
            text,
            options,
            (threads, block_bytes),
            Some(&mut sink),
            u64::MAX,
        )?;
        match went {
            ValuesWent::ToSink => {
                assert!(table.x.is_empty(), "values in the table and in the sink");
                table.x = sink;
            }
            ValuesWent::IntoTable => assert!(sink.is_empty(), "values left in the sink: {sink:?}"),
        }
        Ok(table)
    }

    #[test]
    fn values_go_to_the_sink_only_while_they_stay_as_read() {
        let numeric = "a,b,y\n1,2,1\n3,NA,0\n5,6,1\n7,8,0\n";
        // A column that turns out text after blocks went to the sink (its values become codes),
        // and a `--categorical` one (codes from the start).
        let text_later = "a,b,y\n1,2,1\n3,4,0\n5,x,1\n7,y,0\n9,w,1\n11,v,0\n";
        let forced = CsvOptions { categorical: vec!["b".into()], ..CsvOptions::default() };
        for (text, options, expected) in [
            (numeric, CsvOptions::default(), ValuesWent::ToSink),
            (text_later, CsvOptions::default(), ValuesWent::IntoTable),
            (numeric, forced, ValuesWent::IntoTable),
        ] {
            let whole = RawTable::from_csv(text.as_bytes(), &options).expect("reads");
            let mut sink = Vec::new();
            let (table, went) = RawTable::read_in_blocks(
                text.as_bytes(),
                &options,
                (2, 8),
                Some(&mut sink),
                u64::MAX,
            )
            .expect("reads");
            assert_eq!(went, expected, "{text:?}");
            let x = if went == ValuesWent::ToSink { sink } else { table.x };
            assert_eq!(format!("{x:?}"), format!("{:?}", whole.x), "{text:?}");
            assert_eq!((table.y, table.kinds), (whole.y, whole.kinds), "{text:?}");
        }
        // Rows after the first text cell are not written only to be taken back.
        struct Counting(Vec<f64>, usize);
        impl ValueSink for Counting {
            fn append(&mut self, values: &[f64], width: usize) -> std::io::Result<()> {
                self.1 += values.len();
                ValueSink::append(&mut self.0, values, width)
            }
            fn take_back(&mut self) -> std::io::Result<Vec<f64>> {
                self.0.take_back()
            }
        }
        let mut counting = Counting(Vec::new(), 0);
        RawTable::read_in_blocks(
            text_later.as_bytes(),
            &CsvOptions::default(),
            (2, 8),
            Some(&mut counting),
            u64::MAX,
        )
        .expect("reads");
        assert_eq!(counting.1, 2, "the one row before the block with the first text cell");
        // A sink that fails (a full disk) is the store's error, not the file's.
        struct Full;
        impl ValueSink for Full {
            fn append(&mut self, _: &[f64], _: usize) -> std::io::Result<()> {
                Err(std::io::Error::from(std::io::ErrorKind::StorageFull))
            }
            fn take_back(&mut self) -> std::io::Result<Vec<f64>> {
                Ok(Vec::new())
            }
        }
        let err = RawTable::read_in_blocks(
            numeric.as_bytes(),
            &CsvOptions::default(),
            (2, 8),
            Some(&mut Full),
            u64::MAX,
        )
        .expect_err("a full disk");
        assert!(matches!(err, DataError::Storing(_)), "{err:?}");
        // A stray word in a numeric column, after values went to the sink: the error reading
        // from the start gives.
        let mut sink = Vec::new();
        let stray = "a,b,y\n1,2,1\n3,4,0\n5,6,1\n7,8,0\n9,oops,1\n";
        let err = RawTable::read_in_blocks(
            stray.as_bytes(),
            &CsvOptions::default(),
            (2, 8),
            Some(&mut sink),
            u64::MAX,
        )
        .expect_err("a stray word");
        assert!(err.to_string().contains("oops"), "{err}");
    }

    /// Mostly numbers as numpy and pandas write them, now and then a cell of another kind.
    fn plain_or_odd_cell() -> impl proptest::strategy::Strategy<Value = &'static str> {
        use proptest::prelude::*;
        let plain = prop::sample::select(vec![
            "1",
            "-0",
            "0.30000000000000004",
            "-1.0991712400376326",
            "1e-320",
            "2.2250738585072014e-308",
            "1.7976931348623157e308",
            "123456789012345678901234567890",
            "7",
            "-12.25",
            "1E5",
        ]);
        let odd = prop::sample::select(vec![
            "+1.5",
            ".5",
            "5.",
            "1e999",
            "inf",
            "-infinity",
            "NaN",
            "nan",
            "NA",
            "",
            " 7",
            "7 ",
            "0x10",
            "1_0",
            "1e",
            "--1",
            "1.5.2",
            "12,3",
            "x",
        ]);
        prop_oneof![6 => plain, 1 => odd]
    }

    /// Both readings gave the same table, bit for bit, or the same error.
    fn same_reading(
        whole: Result<RawTable, DataError>,
        in_blocks: Result<RawTable, DataError>,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        match (whole, in_blocks) {
            (Ok(a), Ok(b)) => {
                proptest::prop_assert_eq!(
                    a.x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    b.x.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
                proptest::prop_assert_eq!(
                    a.y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    b.y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
                proptest::prop_assert_eq!(&a.lines, &b.lines);
                proptest::prop_assert_eq!(&a.kinds, &b.kinds);
                proptest::prop_assert_eq!(&a.classes, &b.classes);
                proptest::prop_assert_eq!(&a.notes, &b.notes);
            }
            (Err(a), Err(b)) => proptest::prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => proptest::prop_assert!(
                false,
                "from the start: {:?}; in blocks: {:?}",
                a.map(|t| t.rows()),
                b.map(|t| t.rows())
            ),
        }
        Ok(())
    }

    /// The ends the generated files rarely have: a last line that ends in a delimiter (an empty
    /// last cell) with no line end after it, a last line of one empty field, a lone `\r`.
    #[test]
    fn a_last_line_without_a_line_end_reads_in_blocks_as_from_the_start() {
        for text in [
            "a,b,y\n1,2,1\n3,4,",
            "a,b,y\n1,2,1\n3,4,0\n,",
            "a,b,y\r1,2,1\r3,,0",
            "a,b,y\n1,2,1\n\r",
        ] {
            let options = CsvOptions::default();
            let whole = RawTable::from_csv(text.as_bytes(), &options);
            for block_bytes in [1, 3, 64] {
                let in_blocks =
                    RawTable::from_csv_in_blocks(text.as_bytes(), &options, 2, block_bytes);
                match (&whole, &in_blocks) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!((&a.lines, a.rows()), (&b.lines, b.rows()), "{text:?}")
                    }
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text:?}"),
                    (a, b) => panic!(
                        "{text:?}: from the start {:?}, in blocks {:?}",
                        a.as_ref().map(RawTable::rows),
                        b.as_ref().map(RawTable::rows)
                    ),
                }
            }
        }
    }

    #[test]
    fn a_large_file_is_read_in_blocks_with_the_lines_of_the_file() {
        let mut text = String::from("score,admitted\n");
        for i in 0..500_000 {
            text.push_str(&format!("{:02}.{:03},{}\r\n", i % 100, i % 997, i % 2));
            if i % 1000 == 0 {
                text.push('\n'); // a blank line now and then
            }
        }
        text.push_str("12,3\n");
        assert!(text.len() >= BLOCK_BYTES, "more than one block");
        let err = RawTable::from_csv_parallel(text.as_bytes(), &CsvOptions::default())
            .expect_err("a bad label at the end");
        let expected_line = 1 + 500_000 + 500 + 1;
        assert!(err.to_string().contains(&format!("line {expected_line}")), "{err}");
        text.truncate(text.len() - "12,3\n".len());
        let parallel =
            RawTable::from_csv_parallel(text.as_bytes(), &CsvOptions::default()).expect("reads");
        let sequential =
            RawTable::from_csv(text.as_bytes(), &CsvOptions::default()).expect("reads");
        assert_eq!(parallel, sequential);
        assert_eq!(parallel.rows(), 500_000);
        assert_eq!(parallel.lines[499_999], expected_line - 1);
    }

    /// Found by the `csv_table` fuzz target: a byte-order mark and a quote past the first block
    /// (the csv crate drops a mark only at the start of what it reads); blank lines, a form
    /// feed among them, filling the first block before the header.
    #[test]
    fn what_the_fuzzer_found_reads_in_blocks_as_from_the_start() {
        let cases: [(&[u8], CsvOptions); 2] = [
            (b"a,bly\n\xef\xbb\xbf\"\xef\n2,3,\n", CsvOptions::default()),
            (b"\n\x0c\n3None02", CsvOptions { label: Some("y".into()), ..CsvOptions::default() }),
        ];
        for (text, options) in cases {
            let whole =
                RawTable::from_csv(text, &options).map(|t| t.rows()).map_err(|e| e.to_string());
            for block_bytes in 1..20 {
                let in_blocks = RawTable::from_csv_in_blocks(text, &options, 2, block_bytes)
                    .map(|t| t.rows())
                    .map_err(|e| e.to_string());
                assert_eq!(
                    in_blocks,
                    whole,
                    "{:?} in blocks of {block_bytes}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }
}
