//! An object of a bucket as the Parquet reader reads a file ([`ObjectChunks`]): its footer,
//! then for each page of each column chunk it needs a header and the page's bytes, each asked
//! for at an offset. Asked of the bucket one by one, that is two requests a page; they are
//! served instead from a window of the object fetched in one ranged request, so that reading
//! a column chunk costs about one request per [`WINDOW`] of it, and what is held is one window.

use bytes::Bytes;
use logitflow_objects::S3Object;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};
use std::io::Read;
use std::sync::{Arc, Mutex};

/// The bytes fetched in one request, at most.
const WINDOW: u64 = 8 << 20;

/// Bytes a page header's reader asks for at a time: headers are tens of bytes.
const HEADER_READ: usize = 16 << 10;

/// An object read in ranges, the last window fetched kept.
pub(crate) struct ObjectChunks(Arc<Windowed>);

struct Windowed {
    object: Arc<S3Object>,
    /// The window's first byte's offset, and its bytes.
    window: Mutex<(u64, Bytes)>,
}

impl ObjectChunks {
    pub(crate) fn new(object: Arc<S3Object>) -> ObjectChunks {
        ObjectChunks(Arc::new(Windowed { object, window: Mutex::new((0, Bytes::new())) }))
    }
}

impl Windowed {
    /// `length` bytes from `start`: from the window when it holds them, else in a request of
    /// their own when they are more than a window, else from a window fetched from `start`.
    fn bytes(&self, start: u64, length: usize) -> std::io::Result<Bytes> {
        let end = start.saturating_add(length as u64).min(self.object.size());
        if end <= start {
            return Ok(Bytes::new());
        }
        if end - start > WINDOW {
            return self.object.read_range(start..end);
        }
        let mut window = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (at, held) = &*window;
        if start < *at || end > at + held.len() as u64 {
            let fetched =
                self.object.read_range(start..(start + WINDOW).min(self.object.size()))?;
            *window = (start, fetched);
        }
        let (at, held) = &*window;
        let from = usize::try_from(start - at).map_err(std::io::Error::other)?;
        let to = usize::try_from(end - at).map_err(std::io::Error::other)?;
        Ok(held.slice(from..to))
    }
}

impl Length for ObjectChunks {
    fn len(&self) -> u64 {
        self.0.object.size()
    }
}

impl ChunkReader for ObjectChunks {
    type T = WindowReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<WindowReader> {
        Ok(WindowReader { chunks: self.0.clone(), at: start })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.0.bytes(start, length).map_err(|e| ParquetError::External(Box::new(e)))
    }
}

/// [`ObjectChunks::get_read`]'s reader: from the window, a little at a time.
pub(crate) struct WindowReader {
    chunks: Arc<Windowed>,
    at: u64,
}

impl Read for WindowReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let bytes = self.chunks.bytes(self.at, out.len().min(HEADER_READ))?;
        out[..bytes.len()].copy_from_slice(&bytes);
        self.at += bytes.len() as u64;
        Ok(bytes.len())
    }
}
