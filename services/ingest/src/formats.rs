//! Files as people keep them: a CSV compressed by gzip or zstd, or a Parquet file, is told by
//! its first bytes ([`Format::sniff`]) and read as CSV text ([`Format::text`]): through its
//! decoder, or as the CSV the Parquet file would export to ([`ParquetAsCsv`]). A file in a
//! format logitflow does not read (a spreadsheet, another archive, binary data) is named for
//! what it is rather than parsed into nonsense.

use crate::bucket::ObjectChunks;
use crate::parquet::ParquetAsCsv;
use logitflow_core::table::CsvOptions;
use logitflow_kit::ApiError;
use logitflow_objects::S3Object;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a file's bytes hold its CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Plain,
    Gzip,
    Zstd,
    Parquet,
}

/// Bytes looked at to tell a file's format: magic numbers, and a NUL that text never holds.
const SNIFFED: usize = 4096;

impl Format {
    /// The format of `source`, from its first bytes, read in place.
    pub(crate) fn sniff(source: Source<'_>) -> Result<Format, ApiError> {
        let unreadable = |e: &dyn std::fmt::Display| {
            ApiError::invalid("FILE_NOT_READABLE", format!("{}: {e}", source.name()))
        };
        let head = match source {
            Source::File(file, _) => {
                use std::os::unix::fs::FileExt;
                let mut head = vec![0u8; SNIFFED];
                let mut read = 0;
                while read < SNIFFED {
                    match file.read_at(&mut head[read..], read as u64) {
                        Ok(0) => break,
                        Ok(n) => read += n,
                        Err(e) => return Err(unreadable(&e)),
                    }
                }
                head.truncate(read);
                head
            }
            // Its errors name the object already.
            Source::Object(object) => object
                .read_range(0..object.size().min(SNIFFED as u64))
                .map_err(|e| ApiError::invalid("FILE_NOT_READABLE", e.to_string()))?
                .to_vec(),
        };
        Format::of(&head)
            .map_err(|what| ApiError::invalid("NOT_CSV", format!("{}: {what}", source.name())))
    }

    /// The format of a file that starts with `head`, or what it is when it is no CSV.
    fn of(head: &[u8]) -> Result<Format, String> {
        let not_csv = |what: &str| Err(format!("this is {what}, not a CSV file"));
        match head {
            [0x1f, 0x8b, ..] => Ok(Format::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Format::Zstd),
            [b'P', b'A', b'R', b'1', ..] => Ok(Format::Parquet),
            [b'P', b'K', 3, 4, ..] => {
                not_csv("a ZIP archive (an Excel .xlsx workbook? save the sheet as CSV)")
            }
            [0xd0, 0xcf, 0x11, 0xe0, ..] => {
                not_csv("an old Excel .xls workbook (save the sheet as CSV)")
            }
            [b'B', b'Z', b'h', ..] => {
                not_csv("a bzip2 archive (decompress it, or compress the CSV with gzip or zstd)")
            }
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
                not_csv("an xz archive (decompress it, or compress the CSV with gzip or zstd)")
            }
            _ if head.contains(&0) => not_csv("binary data (it holds NUL bytes)"),
            _ => Ok(Format::Plain),
        }
    }

    /// The CSV text of a file of this format, and the options to parse it with: `reader` (the
    /// file's bytes from its start) as they are or decompressed as they are read, or for Parquet
    /// the columns of `source` as text, until `stop` is set.
    pub(crate) fn text<'r>(
        self,
        reader: impl Read + Send + 'r,
        source: Source<'_>,
        options: &CsvOptions,
        stop: &'r AtomicBool,
    ) -> Result<(Box<dyn Read + Send + 'r>, CsvOptions), ApiError> {
        let name = source.name();
        let unreadable =
            |e: std::io::Error| ApiError::invalid("FILE_NOT_READABLE", format!("{name}: {e}"));
        let plain = |text: Box<dyn Read + Send + 'r>| Ok((text, options.clone()));
        match self {
            Format::Plain => plain(Box::new(reader)),
            // Multi-member, as `cat a.gz b.gz` and bgzip write them.
            Format::Gzip => plain(Box::new(flate2::read::MultiGzDecoder::new(reader))),
            Format::Zstd => plain(Box::new(ZstdFrames::new(reader).map_err(unreadable)?)),
            Format::Parquet => {
                let columns = match source {
                    Source::File(file, _) => {
                        ParquetAsCsv::open(file.try_clone().map_err(unreadable)?, &name, options)?
                    }
                    Source::Object(object) => {
                        ParquetAsCsv::open(ObjectChunks::new(object.clone()), &name, options)?
                    }
                };
                let options = columns.options().clone();
                Ok((Box::new(UntilStopped { inner: columns, stop }), options))
            }
        }
    }
}

/// Where a file's bytes are: a file here (and its path), or an object of a bucket.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    File(&'a std::fs::File, &'a Path),
    Object(&'a Arc<S3Object>),
}

impl Source<'_> {
    /// What messages call it.
    pub(crate) fn name(&self) -> String {
        match self {
            Source::File(_, path) => path.display().to_string(),
            Source::Object(object) => object.uri().to_string(),
        }
    }
}

/// A reader that fails once `stop` is set, as the file's own readers do when the step turns out
/// to be cached.
struct UntilStopped<'a, R> {
    inner: R,
    stop: &'a AtomicBool,
}

impl<R: Read> Read for UntilStopped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("the read was stopped: the step is cached"));
        }
        self.inner.read(buf)
    }
}

/// Every frame of a zstd stream in turn (`zstd` writes one, `cat` of two files two), read by
/// ruzstd, a decoder in Rust: no C library to build.
struct ZstdFrames<R: Read> {
    decoder: ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>,
}

impl<R: Read> ZstdFrames<R> {
    fn new(reader: R) -> std::io::Result<Self> {
        let decoder = ruzstd::decoding::StreamingDecoder::new(reader)
            .map_err(|e| std::io::Error::other(format!("zstd: {e}")))?;
        Ok(ZstdFrames { decoder })
    }
}

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        loop {
            let n = self.decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // This frame is done: another may follow, or the stream ends.
            let mut frame =
                std::mem::replace(&mut self.decoder.decoder, ruzstd::decoding::FrameDecoder::new());
            let next = frame.reset(self.decoder.get_mut());
            self.decoder.decoder = frame;
            match next {
                Ok(()) => {}
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    std::io::copy(
                        &mut self.decoder.get_mut().take(u64::from(length)),
                        &mut std::io::sink(),
                    )?;
                }
                Err(FrameDecoderError::ReadFrameHeaderError(
                    ReadFrameHeaderError::MagicNumberReadError(e),
                )) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(0);
                }
                Err(e) => return Err(std::io::Error::other(format!("zstd: {e}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_first_bytes() {
        assert_eq!(Format::of(b"a,b\n1,2\n"), Ok(Format::Plain));
        assert_eq!(Format::of(&[0x1f, 0x8b, 8, 0]), Ok(Format::Gzip));
        assert_eq!(Format::of(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Ok(Format::Zstd));
        assert_eq!(Format::of(b"PAR1\x15\x04"), Ok(Format::Parquet));
        assert!(Format::of(b"PK\x03\x04rest").is_err_and(|e| e.contains("Excel .xlsx")));
        assert!(Format::of(b"a,b\n1,\x002\n").is_err_and(|e| e.contains("binary data")));
    }

    #[test]
    fn gzip_and_zstd_read_back_the_bytes_they_hold() {
        use std::io::Write;
        let text = "x,y\n1.5,0\n2.5,1\n".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let zst = ruzstd::encoding::compress_to_vec(
            text.as_bytes(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        for (format, bytes) in [(Format::Gzip, gz), (Format::Zstd, zst)] {
            assert_eq!(Format::of(&bytes), Ok(format));
            // Two members (or frames) in a row, as `cat` makes them, read as one stream.
            let twice = [bytes.clone(), bytes].concat();
            let mut out = String::new();
            let file = tempfile::tempfile().expect("a file");
            let never = AtomicBool::new(false);
            let (mut csv, _) = format
                .text(
                    twice.as_slice(),
                    Source::File(&file, Path::new("f")),
                    &CsvOptions::default(),
                    &never,
                )
                .expect("decoder");
            csv.read_to_string(&mut out).expect("decodes");
            assert_eq!(out, text.repeat(2), "{format:?}");
        }
    }
}
