//! Splits in the store. A split is no copy of rows but their numbers: each part names rows of
//! the dataset given in `sources.json` (the ingested one, or clean data preprocess stored
//! because cleaning changed values), and its readers take their part's rows as the dataset
//! streams past ([`Store::load_split_part`]). A part is stored as `train_mask.npy` /
//! `test_mask.npy`, one bit per row of its dataset in numpy's `packbits` order
//! (`np.unpackbits` reads it), or as `train_rows.npy` / `test_rows.npy`, the row numbers
//! (u64), where that is smaller: a part of a few rows of a large dataset, or a split stored
//! before masks.

use crate::datasets::Columns;
use crate::datasets::{DatasetRows, check_source_width};
use crate::npy::Npy;
use crate::npy::{NpyRows, keep_rows};
use crate::storage::{Contents, StoreError};
use crate::store::json_bytes;
use crate::store::{Kind, SplitSources, Store};
use logitflow_core::clean::{CleanReport, Dataset, Split};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// The two parts of a stored train/test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitPart {
    Train,
    Test,
}

/// A split's part stored as row numbers ([`Store::open_split_part`]): the numbers, the dataset
/// they index, and that dataset's `x.npy`, opened.
struct NumberedPart<'s> {
    rows: Vec<u64>,
    source: String,
    x: NpyRows<'s, f64>,
}

impl Store {
    /// The rows of a split's part, handed to `visit` one at a time in order and never held:
    /// for work that only sums over them, such as fitting the scaling (features), which then
    /// needs no copy of the part (64 MB of fresh memory for the 201 MB file's training part).
    /// The rows' file is hash-checked whole on each call; on an error, what `visit` was handed
    /// must not be used. Splits stored as copies of their rows (before row numbers) are read
    /// whole, then visited.
    pub fn visit_split_part(
        &self,
        id: &str,
        part: SplitPart,
        mut visit: impl FnMut(&[f64]),
    ) -> Result<(), StoreError> {
        let columns: Columns = self.read_json(id, Kind::Split, "columns.json")?;
        match self.open_split_part(id, part, &columns)? {
            Some(NumberedPart { rows, x, .. }) => x.visit(&rows, None, visit),
            None => self.load_split_part_with(id, part, |row, _, _| visit(row)).map(drop),
        }
    }

    /// A split's part stored as row numbers: the numbers, the dataset they index, and its
    /// `x.npy` opened and checked to be as wide as the split's `columns`. `None` for a split
    /// stored as copies of its rows (before row numbers).
    fn open_split_part(
        &self,
        id: &str,
        part: SplitPart,
        columns: &Columns,
    ) -> Result<Option<NumberedPart<'_>>, StoreError> {
        let Some((rows, source)) = self.split_part_rows(id, part)? else { return Ok(None) };
        let x = self.open_npy_rows::<f64>(&source, Kind::Dataset, "x.npy")?;
        check_source_width(id, &source, x.width, columns)?;
        Ok(Some(NumberedPart { rows, source, x }))
    }

    /// The row numbers of a split's part (checked to increase), and the dataset they index.
    /// `None` for a split stored as copies of its rows (before row numbers).
    fn split_part_rows(
        &self,
        id: &str,
        part: SplitPart,
    ) -> Result<Option<(Vec<u64>, String)>, StoreError> {
        let files = self.manifest(id)?.files;
        if !files.contains_key("sources.json") {
            return Ok(None);
        }
        let sources: SplitSources = self.read_json(id, Kind::Split, "sources.json")?;
        let source = match part {
            SplitPart::Train => sources.train,
            SplitPart::Test => sources.test,
        };
        let (mask, name) = part_file_names(part);
        if files.contains_key(mask) {
            let bits: Vec<u8> = self.read_vector(id, Kind::Split, mask)?;
            return Ok(Some((unpacked_rows(&bits), source)));
        }
        let rows: Vec<u64> = self.read_vector(id, Kind::Split, name)?;
        if !rows.windows(2).all(|w| w[0] < w[1]) {
            return Err(StoreError::Corrupt {
                id: id.into(),
                detail: format!("{name}: the rows are not in increasing order"),
            });
        }
        Ok(Some((rows, source)))
    }

    /// Stores a split given as rows of datasets already stored ([`SplitRows`]): the row numbers
    /// of each part, not a copy of its rows. `columns` are the clean data's (their kinds are
    /// the split's, which cleaning may have added a level to).
    pub fn put_split_rows(
        &self,
        columns: &Columns,
        split: &SplitRows,
        report: &SplitReport,
        inputs: Vec<String>,
        params: serde_json::Value,
    ) -> Result<String, StoreError> {
        for (part, rows) in [("train", &split.train), ("test", &split.test)] {
            if !rows.windows(2).all(|w| w[0] < w[1]) {
                return Err(StoreError::io(
                    Path::new(part),
                    std::io::Error::other("a split's rows must be in increasing order"),
                ));
            }
        }
        let columns = Columns { missing: None, ..columns.clone() };
        let (columns, sources, report) =
            (json_bytes(&columns)?, json_bytes(&split.sources)?, json_bytes(report)?);
        let (train, test) = (PartFile::of(&split.train), PartFile::of(&split.test));
        let files: [(&str, &dyn Contents); 5] = [
            (train.name(SplitPart::Train), &train),
            (test.name(SplitPart::Test), &test),
            ("sources.json", &sources),
            ("columns.json", &columns),
            ("report.json", &report),
        ];
        self.put_contents(Kind::Split, "preprocess", inputs, params, &files)
    }

    /// Stores a split given whole: each part becomes a dataset of its own (lines numbered from
    /// 1, as they came from no file), and the split takes all of each.
    pub fn put_split(
        &self,
        split: &Split,
        report: &SplitReport,
        inputs: Vec<String>,
        params: serde_json::Value,
    ) -> Result<String, StoreError> {
        let put_part = |part: &Dataset| {
            let lines: Vec<u64> = (1..=part.rows() as u64).collect();
            Ok::<_, StoreError>((
                self.put_dataset(part, &lines, "preprocess", inputs.clone(), params.clone())?,
                (0..part.rows() as u64).collect(),
            ))
        };
        let ((train_source, train), (test_source, test)) =
            (put_part(&split.train)?, put_part(&split.test)?);
        let rows = SplitRows {
            sources: SplitSources { train: train_source, test: test_source },
            train,
            test,
        };
        self.put_split_rows(&Columns::of(&split.train, None), &rows, report, inputs, params)
    }

    /// One part of a split: its rows taken from their dataset as it streams past (hash-checked
    /// whole), so the only copy made is the part's own. Evaluate needs the test rows, train the
    /// training rows ([`Store::load_split_part_with`]). Splits stored before rows were numbers
    /// (`train_x.npy`…) are read as they were written.
    pub fn load_split_part(&self, id: &str, part: SplitPart) -> Result<Dataset, StoreError> {
        self.load_split_part_with(id, part, |row, _, x| x.extend_from_slice(row))
    }

    /// [`Store::load_split_part`], with each row of features and its label handed to `keep` as
    /// the rows stream past, to append to the part's `x` what is to be kept of the row: train
    /// keeps each row scaled, having looked at it in the data's units first, and so makes no
    /// pass over the part for either (≈ 10 ms at 800k × 10). The labels are read first.
    pub fn load_split_part_with(
        &self,
        id: &str,
        part: SplitPart,
        mut keep: impl FnMut(&[f64], f64, &mut Vec<f64>),
    ) -> Result<Dataset, StoreError> {
        let columns: Columns = self.read_json(id, Kind::Split, "columns.json")?;
        let corrupt = |detail: String| StoreError::Corrupt { id: id.into(), detail };
        let width = columns.feature_names.len();
        let (x, y) = if let Some(NumberedPart { rows, source, x: file }) =
            self.open_split_part(id, part, &columns)?
        {
            let (_, y) = self.read_npy_rows::<f64>(&source, Kind::Dataset, "y.npy", &rows)?;
            let mut x = Vec::with_capacity(rows.len().saturating_mul(width));
            // The part's fresh memory is faulted in on the second core, ahead of the rows.
            let spare = crate::prefault::SparePages::of(&x);
            let mut labels = y.iter();
            file.visit(&rows, spare, |row| {
                keep(row, labels.next().copied().unwrap_or(f64::NAN), &mut x)
            })?;
            (x, y)
        } else {
            let (x, y) = match part {
                SplitPart::Train => ("train_x.npy", "train_y.npy"),
                SplitPart::Test => ("test_x.npy", "test_y.npy"),
            };
            let (rows, columns_read, stored) = self.read_matrix(id, Kind::Split, x)?;
            let y: Vec<f64> = self.read_vector(id, Kind::Split, y)?;
            if columns_read != width || rows != y.len() {
                return Err(corrupt("matrix shapes disagree".into()));
            }
            let mut x = Vec::with_capacity(stored.len());
            for (row, &label) in stored.chunks_exact(width.max(1)).zip(&y) {
                keep(row, label, &mut x);
            }
            (x, y)
        };
        Ok(columns.into_dataset(x, y))
    }

    /// One part of a split, taken out of its dataset's rows loaded whole before
    /// ([`Store::load_dataset_rows`]): the part's rows are moved to the front of the memory
    /// they were read into and the rest is given back, so the part takes no fresh memory and
    /// no second read of the dataset. Rows of another dataset than the part's (the split of
    /// cleaned data, or the test part of a file given for testing) are let go first, and the
    /// part is loaded as [`Store::load_split_part`] loads it.
    pub fn take_split_part(
        &self,
        id: &str,
        part: SplitPart,
        whole: DatasetRows,
    ) -> Result<Dataset, StoreError> {
        if let Some((rows, source)) = self.split_part_rows(id, part)?
            && source == whole.id
        {
            let columns: Columns = self.read_json(id, Kind::Split, "columns.json")?;
            let count = whole.y.len();
            if let Some(&last) = rows
                .last()
                .filter(|&&last| usize::try_from(last).map_or(true, |last| last >= count))
            {
                let detail = format!("x.npy: row {last} asked for, but it has {count}");
                return Err(StoreError::Corrupt { id: source, detail });
            }
            check_source_width(id, &source, whole.width, &columns)?;
            let DatasetRows { mut x, start, width, mut y, .. } = whole;
            keep_rows(&mut x, start, width, &rows);
            keep_rows(&mut y, 0, 1, &rows);
            return Ok(columns.into_dataset(x, y));
        }
        drop(whole);
        self.load_split_part(id, part)
    }
}

/// A train/test split as row numbers (from 0, increasing) into the datasets its parts come
/// from: a split of a 1M × 10 file is 8 MB of numbers instead of 88 MB of copied rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitRows {
    pub sources: SplitSources,
    pub train: Vec<u64>,
    pub test: Vec<u64>,
}

/// What preprocess reports about a split.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SplitReport {
    pub clean: CleanReport,
    /// Present when a separate test file was cleaned.
    #[serde(default)]
    pub test_clean: Option<CleanReport>,
    pub train_rows: usize,
    pub test_rows: usize,
}

/// The files a split's part may be stored as: (its mask, its row numbers).
fn part_file_names(part: SplitPart) -> (&'static str, &'static str) {
    match part {
        SplitPart::Train => ("train_mask.npy", "train_rows.npy"),
        SplitPart::Test => ("test_mask.npy", "test_rows.npy"),
    }
}

/// A split's part as it is stored: a mask where that is smaller (nearly always), else its row
/// numbers.
enum PartFile<'a> {
    Mask(Vec<u8>),
    Rows(&'a [u64]),
}

impl<'a> PartFile<'a> {
    fn of(rows: &'a [u64]) -> Self {
        packed_rows(rows).map_or(PartFile::Rows(rows), PartFile::Mask)
    }

    fn name(&self, part: SplitPart) -> &'static str {
        let (mask, rows) = part_file_names(part);
        match self {
            PartFile::Mask(_) => mask,
            PartFile::Rows(_) => rows,
        }
    }
}

impl Contents for PartFile<'_> {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            PartFile::Mask(mask) => Npy::vector(mask).write_to(out),
            PartFile::Rows(rows) => Npy::vector(rows).write_to(out),
        }
    }
}

/// Increasing row numbers as a mask, numpy's `packbits` order: row r is bit 7 − r % 8 of
/// byte r / 8, and the mask ends with the byte of the last row. `None` when the mask would
/// not be smaller than the numbers themselves (8 bytes a row).
pub(crate) fn packed_rows(rows: &[u64]) -> Option<Vec<u8>> {
    let bytes = usize::try_from(rows.last()? / 8 + 1).ok()?;
    if bytes >= rows.len().saturating_mul(8) {
        return None;
    }
    let mut mask = vec![0u8; bytes];
    for &row in rows {
        mask[(row / 8) as usize] |= 0x80 >> (row % 8);
    }
    Some(mask)
}

/// The row numbers a [`packed_rows`] mask holds, increasing.
pub(crate) fn unpacked_rows(mask: &[u8]) -> Vec<u64> {
    let mut rows = Vec::with_capacity(mask.iter().map(|b| b.count_ones() as usize).sum());
    for (byte, &bits) in mask.iter().enumerate() {
        let mut bits = bits;
        while bits != 0 {
            let bit = bits.leading_zeros();
            rows.push(byte as u64 * 8 + u64::from(bit));
            bits &= !(0x80 >> bit);
        }
    }
    rows
}
