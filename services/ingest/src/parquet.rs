//! Parquet in: [`ParquetAsCsv`] reads a Parquet file's row groups through the `parquet` crate's
//! Arrow reader and hands them on as the CSV the file would export to, so that one parser reads
//! both and a Parquet file gives the same dataset, notes and errors as its CSV export.
//!
//! The file's schema is kept where the text would lose it: a string or dictionary column is read
//! as text terms even when its values are numbers ([`ParquetAsCsv::options`] adds it to
//! `categorical`), and a null is an empty cell, which the parser takes as missing. Only the
//! columns the options select are decoded.

use arrow_array::{Array, ArrayRef, Float32Array, Float64Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Schema};
use logitflow_core::table::CsvOptions;
use logitflow_kit::ApiError;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;
use std::io::Read;

/// Rows decoded at a time: the text of one batch is what the reader holds.
const BATCH_ROWS: usize = 8192;

/// The column pandas writes for an index that is not a plain range; its CSV export's first,
/// unnamed column is skipped likewise.
const PANDAS_INDEX: &str = "__index_level_";

/// A Parquet file's selected columns as CSV text (a header line, then a line a row), decoded a
/// batch of rows at a time as the text is read.
pub(crate) struct ParquetAsCsv {
    batches: ParquetRecordBatchReader,
    /// The options to parse the text with: the file's own, with its text columns categorical.
    options: CsvOptions,
    /// The first row of each row group after the first, to name the group a decoding error is in.
    group_starts: Vec<u64>,
    rows_read: u64,
    text: Vec<u8>,
    at: usize,
}

impl ParquetAsCsv {
    /// Opens `file` (a local file, or an object of a bucket read in ranges; `name` in
    /// messages) to be read with `options`.
    pub(crate) fn open(
        file: impl ChunkReader + 'static,
        name: &str,
        options: &CsvOptions,
    ) -> Result<ParquetAsCsv, ApiError> {
        let unreadable = |e: parquet::errors::ParquetError| {
            ApiError::invalid(
                "DATA_ERROR",
                format!("{name}: not a Parquet file that can be read: {e}"),
            )
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(unreadable)?;
        let schema = builder.schema().clone();
        let kept = kept_columns(&schema, options);
        let group_starts = builder
            .metadata()
            .row_groups()
            .iter()
            .scan(0u64, |start, group| {
                *start += u64::try_from(group.num_rows()).unwrap_or(0);
                Some(*start)
            })
            .collect();
        let projection = ProjectionMask::roots(builder.parquet_schema(), kept.iter().copied());
        let batches = builder
            .with_projection(projection)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(unreadable)?;
        let mut reader = ParquetAsCsv {
            batches,
            options: parse_options(&schema, &kept, options),
            group_starts,
            rows_read: 0,
            text: Vec::new(),
            at: 0,
        };
        let header: Vec<&str> = kept.iter().map(|&i| schema.field(i).name().as_str()).collect();
        reader.text = csv_line(&header);
        Ok(reader)
    }

    /// The options the text is to be parsed with.
    pub(crate) fn options(&self) -> &CsvOptions {
        &self.options
    }

    /// The next batch's rows as CSV lines into `self.text`; false once the file is read.
    fn next_batch(&mut self) -> std::io::Result<bool> {
        let Some(batch) = self.batches.next() else { return Ok(false) };
        let batch = batch.map_err(|e| {
            let group = self.group_starts.partition_point(|&start| start <= self.rows_read);
            std::io::Error::other(format!(
                "Parquet row group {} (from row {}): {e}",
                group + 1,
                self.rows_read + 1
            ))
        })?;
        self.rows_read += batch.num_rows() as u64;
        self.text.clear();
        self.at = 0;
        write_rows(&batch, &mut self.text).map_err(std::io::Error::other)?;
        Ok(true)
    }
}

impl Read for ParquetAsCsv {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.text.len() {
            if buf.is_empty() || !self.next_batch()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.text.len() - self.at);
        buf[..n].copy_from_slice(&self.text[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The file's columns to read, by index: those the options name (the label, the features and
/// the rows' roles), or every column but a pandas index when they name no features. Without a
/// label named, the last column is the label, so every column is read.
fn kept_columns(schema: &Schema, options: &CsvOptions) -> Vec<usize> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let all = || (0..names.len()).filter(|&i| !names[i].starts_with(PANDAS_INDEX)).collect();
    let (Some(label), Some(features)) = (&options.label, &options.features) else { return all() };
    let wanted: Vec<&str> = std::iter::once(label.as_str())
        .chain(features.iter().map(String::as_str))
        .chain(options.roles.named().map(|(_, n)| n))
        .collect();
    // A name the file lacks is left to the parser, which names the columns there are.
    if wanted.iter().any(|w| !names.contains(w)) {
        return all();
    }
    (0..names.len()).filter(|&i| wanted.contains(&names[i])).collect()
}

/// `options` for the text of the `kept` columns: comma-separated with a decimal point, and the
/// columns the schema holds as text read as text terms (all but the label and the roles').
fn parse_options(schema: &Schema, kept: &[usize], options: &CsvOptions) -> CsvOptions {
    let label =
        options.label.clone().or_else(|| kept.last().map(|&i| schema.field(i).name().clone()));
    let roles: Vec<&str> = options.roles.named().map(|(_, n)| n).collect();
    let mut categorical = options.categorical.clone();
    for &i in kept {
        let field = schema.field(i);
        let name = field.name();
        let is_feature = options.features.as_ref().is_none_or(|f| f.contains(name));
        if is_text(field.data_type())
            && is_feature
            && Some(name) != label.as_ref()
            && !roles.contains(&name.as_str())
            && !categorical.contains(name)
        {
            categorical.push(name.clone());
        }
    }
    CsvOptions { delimiter: Some(",".into()), decimal: None, categorical, ..options.clone() }
}

fn is_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

/// One CSV line of `fields`, quoted where a field needs it.
fn csv_line(fields: &[&str]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(fields);
    writer.into_inner().unwrap_or_default()
}

/// `batch`'s rows as CSV lines. Floats are written by Rust's shortest round-trip formatting, so
/// that the parser reads back the file's very numbers; other types as Arrow displays them; a
/// null as an empty cell.
fn write_rows(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), arrow_schema::ArrowError> {
    let format = FormatOptions::default().with_null("");
    let columns: Vec<Cells<'_>> =
        batch.columns().iter().map(|c| Cells::of(c, &format)).collect::<Result<_, _>>()?;
    let mut writer = csv::WriterBuilder::new().from_writer(out);
    let mut cell = String::new();
    let mut row: Vec<String> = vec![String::new(); columns.len()];
    for i in 0..batch.num_rows() {
        for (text, column) in row.iter_mut().zip(&columns) {
            text.clear();
            column.write(i, &mut cell);
            std::mem::swap(text, &mut cell);
        }
        writer
            .write_record(&row)
            .map_err(|e| arrow_schema::ArrowError::ExternalError(Box::new(e)))?;
    }
    writer.flush().map_err(|e| arrow_schema::ArrowError::ExternalError(Box::new(e)))
}

/// A column's cells as text.
enum Cells<'a> {
    F64(&'a Float64Array),
    F32(&'a Float32Array),
    Other(ArrayFormatter<'a>),
}

impl<'a> Cells<'a> {
    fn of(
        column: &'a ArrayRef,
        format: &'a FormatOptions<'a>,
    ) -> Result<Cells<'a>, arrow_schema::ArrowError> {
        let any = column.as_any();
        Ok(match (any.downcast_ref::<Float64Array>(), any.downcast_ref::<Float32Array>()) {
            (Some(f), _) => Cells::F64(f),
            (_, Some(f)) => Cells::F32(f),
            _ => Cells::Other(ArrayFormatter::try_new(column.as_ref(), format)?),
        })
    }

    fn write(&self, row: usize, cell: &mut String) {
        use std::fmt::Write as _;
        cell.clear();
        // Writing to a String cannot fail.
        let _ = match self {
            // Debug is Display with an exponent for the very large and small (`-2.5e-300`).
            Cells::F64(f) if f.is_valid(row) => write!(cell, "{:?}", f.value(row)),
            Cells::F32(f) if f.is_valid(row) => write!(cell, "{:?}", f.value(row)),
            Cells::F64(_) | Cells::F32(_) => Ok(()),
            Cells::Other(f) => write!(cell, "{}", f.value(row)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{DictionaryArray, Int64Array, StringArray, types::Int32Type};
    use parquet::arrow::ArrowWriter;
    use std::io::Write;
    use std::sync::Arc;

    fn parquet_file(batch: &RecordBatch) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let mut writer = ArrowWriter::try_new(file.reopen().expect("reopen"), batch.schema(), None)
            .expect("writer");
        writer.write(batch).expect("write");
        writer.close().expect("close");
        file
    }

    fn text_of(file: &tempfile::NamedTempFile, options: &CsvOptions) -> (String, CsvOptions) {
        let mut reader = ParquetAsCsv::open(
            file.reopen().expect("reopen"),
            &file.path().display().to_string(),
            options,
        )
        .expect("opens");
        let mut text = String::new();
        reader.read_to_string(&mut text).expect("reads");
        (text, reader.options().clone())
    }

    #[test]
    fn columns_are_written_as_their_csv_export_with_text_columns_categorical() {
        let shop: DictionaryArray<Int32Type> =
            vec![Some("7"), None, Some("a, \"b\""), Some("7")].into_iter().collect();
        let batch = RecordBatch::try_from_iter([
            (
                "x",
                Arc::new(Float64Array::from(vec![Some(0.1), Some(-2.5e-300), None, Some(3.0)]))
                    as ArrayRef,
            ),
            ("shop", Arc::new(shop) as ArrayRef),
            ("n", Arc::new(Int64Array::from(vec![1, 2, 3, -4])) as ArrayRef),
            ("y", Arc::new(StringArray::from(vec!["yes", "no", "no", "yes"])) as ArrayRef),
        ])
        .expect("batch");
        let (text, options) = text_of(&parquet_file(&batch), &CsvOptions::default());
        assert_eq!(
            text,
            "x,shop,n,y\n0.1,7,1,yes\n-2.5e-300,,2,no\n,\"a, \"\"b\"\"\",3,no\n3.0,7,-4,yes\n"
        );
        assert_eq!(
            options.categorical,
            vec!["shop".to_string()],
            "the label is text, but no feature"
        );
        assert_eq!(options.delimiter.as_deref(), Some(","));
    }

    #[test]
    fn only_the_named_columns_are_read() {
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef),
            ("b", Arc::new(Float64Array::from(vec![3.0, 4.0])) as ArrayRef),
            ("y", Arc::new(Int64Array::from(vec![0, 1])) as ArrayRef),
        ])
        .expect("batch");
        let options = CsvOptions {
            label: Some("y".into()),
            features: Some(vec!["b".into()]),
            ..CsvOptions::default()
        };
        assert_eq!(text_of(&parquet_file(&batch), &options).0, "b,y\n3.0,0\n4.0,1\n");
    }

    #[test]
    fn a_file_that_is_no_parquet_is_named() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(b"PAR1 and then nothing a reader can use").expect("write");
        let error = ParquetAsCsv::open(
            file.reopen().expect("reopen"),
            &file.path().display().to_string(),
            &CsvOptions::default(),
        )
        .err()
        .expect("refused");
        let message = error.to_string();
        assert!(
            message.contains(&file.path().display().to_string())
                && message.contains("not a Parquet file"),
            "{message}"
        );
    }
}
