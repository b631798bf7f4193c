//! Matrices and vectors as numpy's `.npy` files: written from values in place ([`Npy`]), read
//! whole or row by row as they stream from storage ([`NpyRows`]), each file's hash checked as
//! it is read.

use crate::digest::FileEntry;
use crate::digest::HashingReader;
use crate::storage::{Contents, StoreError};
use crate::store::hash_mismatch;
use crate::store::{Kind, Store};
use ndarray_npy::{ViewNpyExt, WriteNpyExt};
use std::io::{Read, Write};

impl Store {
    /// Some rows of an `.npy` matrix (or elements of a vector), picked by increasing row
    /// numbers while the file streams past: what is held is the rows picked and a chunk, never
    /// the file. The whole file is hash-checked as it goes, and nothing is returned unless it
    /// matches. Returns the matrix's width (1 for a vector) and the rows, row-major.
    pub(crate) fn read_npy_rows<T: bytemuck::Pod + ndarray_npy::WritableElement + Send>(
        &self,
        id: &str,
        kind: Kind,
        name: &str,
        rows: &[u64],
    ) -> Result<(usize, Vec<T>), StoreError> {
        let file = self.open_npy_rows::<T>(id, kind, name)?;
        let width = file.width;
        let mut picked = Vec::with_capacity(rows.len().saturating_mul(width));
        // The part's fresh memory is faulted in on the second core, ahead of the picking.
        let spare = crate::prefault::SparePages::of(&picked);
        file.visit(rows, spare, |row| picked.extend_from_slice(row))?;
        Ok((width, picked))
    }

    /// An `.npy` matrix (or vector) of `T` opened for [`NpyRows::visit`]: its header read and
    /// checked against its type and size.
    pub(crate) fn open_npy_rows<T: bytemuck::Pod + ndarray_npy::WritableElement>(
        &self,
        id: &str,
        kind: Kind,
        name: &str,
    ) -> Result<NpyRows<'_, T>, StoreError> {
        let (entry, mut file) = self.open_hashing(id, kind, name)?;
        let corrupt = |detail: String| StoreError::Corrupt {
            id: id.to_string(),
            detail: format!("{name}: {detail}"),
        };
        let header = npy_header(&mut file, entry.bytes).map_err(&corrupt)?;
        if header.type_descriptor != T::type_descriptor() || header.layout.is_fortran() {
            return Err(corrupt(format!(
                "holds {} in {:?} order, not {} in row-major order",
                header.type_descriptor,
                header.layout,
                T::type_descriptor()
            )));
        }
        let (count, width) = match header.shape[..] {
            [count] => (count, 1),
            [count, width] => (count, width),
            _ => {
                return Err(corrupt(format!(
                    "has shape {:?}, neither a vector nor a matrix",
                    header.shape
                )));
            }
        };
        let size = std::mem::size_of::<T>() as u64;
        if count
            .checked_mul(width)
            .and_then(|n| (n as u64).checked_mul(size))
            .and_then(|n| n.checked_add(file.digest.bytes))
            != Some(entry.bytes)
        {
            return Err(corrupt(format!(
                "its shape {:?} disagrees with its {} bytes",
                header.shape, entry.bytes
            )));
        }
        Ok(NpyRows {
            id: id.to_string(),
            name: name.to_string(),
            entry,
            count,
            width,
            file,
            values: std::marker::PhantomData,
        })
    }

    /// An `.npy` matrix of f64: (rows, columns, the values row-major).
    pub(crate) fn read_matrix(
        &self,
        id: &str,
        kind: Kind,
        name: &str,
    ) -> Result<(usize, usize, Vec<f64>), StoreError> {
        let (shape, values) = self.read_npy::<f64>(id, kind, name)?;
        match shape[..] {
            [rows, columns] => Ok((rows, columns, values)),
            _ => Err(StoreError::Corrupt {
                id: id.to_string(),
                detail: format!("{name}: not a matrix"),
            }),
        }
    }

    pub(crate) fn read_vector<T: bytemuck::Pod + ndarray_npy::ViewElement>(
        &self,
        id: &str,
        kind: Kind,
        name: &str,
    ) -> Result<Vec<T>, StoreError> {
        let (shape, values) = self.read_npy::<T>(id, kind, name)?;
        match shape[..] {
            [_] => Ok(values),
            _ => Err(StoreError::Corrupt {
                id: id.to_string(),
                detail: format!("{name}: not a vector"),
            }),
        }
    }

    /// An `.npy` file's shape and values (row-major), read into one buffer and taken in place:
    /// the file is read straight into the memory of the vector it returns, its header checked
    /// by ndarray-npy, and the values moved to the front. Reading it into bytes and decoding
    /// those into a new array held the data twice (a 1M × 10 split part: 160 MB, not 80).
    pub(crate) fn read_npy<T: bytemuck::Pod + ndarray_npy::ViewElement>(
        &self,
        id: &str,
        kind: Kind,
        name: &str,
    ) -> Result<(Vec<usize>, Vec<T>), StoreError> {
        let (shape, mut buffer, start) = self.read_npy_unmoved::<T>(id, kind, name)?;
        let count = buffer.len() - start;
        buffer.copy_within(start.., 0);
        buffer.truncate(count);
        Ok((shape, buffer))
    }

    /// [`Store::read_npy`] without moving the values to the front: the buffer the file was read
    /// into, truncated after the values, and the index at which they start.
    pub(crate) fn read_npy_unmoved<T: bytemuck::Pod + ndarray_npy::ViewElement>(
        &self,
        id: &str,
        kind: Kind,
        name: &str,
    ) -> Result<(Vec<usize>, Vec<T>, usize), StoreError> {
        let (mut buffer, len) = self.read_into::<T>(id, kind, name)?;
        let corrupt = |detail: String| StoreError::Corrupt {
            id: id.to_string(),
            detail: format!("{name}: {detail}"),
        };
        let bytes = &bytemuck::cast_slice::<T, u8>(&buffer)[..len];
        let view = ndarray::ArrayViewD::<T>::view_npy(bytes).map_err(|e| corrupt(e.to_string()))?;
        if !view.is_standard_layout() {
            return Err(corrupt("not in row-major order".into()));
        }
        let shape = view.shape().to_vec();
        let count = view.len();
        // The values are the file's last bytes, after a header whose length keeps them aligned.
        let size = std::mem::size_of::<T>();
        let start = (len - count * size) / size;
        buffer.truncate(start + count);
        Ok((shape, buffer, start))
    }
}

/// Bytes read at a time when rows are picked on one thread and hashed on another
/// ([`Store::read_npy_rows`]). Each chunk is a hand-off between the two, whose wake-ups cost:
/// large chunks make few of them.
pub(crate) const PICK_CHUNK_BYTES: usize = 1 << 20;

/// The header of an `.npy` file of `len` bytes, read from its start by ndarray-npy once its
/// stated length has been checked against the file's (so that damage cannot make it allocate
/// more than the file holds).
fn npy_header(file: &mut impl Read, len: u64) -> Result<ndarray_npy::npy::header::Header, String> {
    let mut prefix = [0u8; 12];
    file.read_exact(&mut prefix[..10]).map_err(|e| format!("its header: {e}"))?;
    let header_len = match prefix[6] {
        1 => 10 + u64::from(u16::from_le_bytes([prefix[8], prefix[9]])),
        2 | 3 => {
            file.read_exact(&mut prefix[10..]).map_err(|e| format!("its header: {e}"))?;
            12 + u64::from(u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]))
        }
        version => {
            return Err(format!("not an .npy file of a known version (byte 6 is {version})"));
        }
    };
    if header_len > len.min(1 << 20) {
        return Err(format!("its header says it is {header_len} bytes long"));
    }
    let prefix_len = if prefix[6] == 1 { 10 } else { 12 };
    let mut reader =
        (&prefix[..prefix_len]).chain(file.by_ref().take(header_len - prefix_len as u64));
    ndarray_npy::npy::header::Header::from_reader(&mut reader).map_err(|e| e.to_string())
}

/// Adds the missing (`NaN`) cells of `values`, rows of `counts.len()`, to `counts`.
pub(crate) fn count_missing(counts: &mut [u64], values: &[f64]) {
    for row in values.chunks_exact(counts.len().max(1)) {
        for (count, v) in counts.iter_mut().zip(row) {
            *count += u64::from(v.is_nan());
        }
    }
}

/// Moves rows `rows` (increasing numbers, each of a row in `values`) of `values`, rows of
/// `width` values from index `start`, to its front in their order, and gives back the rest of
/// its memory. A row only ever moves towards the front, onto rows already moved or not kept,
/// so one pass in order does it in place; a run of consecutive rows moves as one.
pub(crate) fn keep_rows<T: Copy>(values: &mut Vec<T>, start: usize, width: usize, rows: &[u64]) {
    let mut kept = 0;
    for run in rows.chunk_by(|a, b| a + 1 == *b) {
        let first = usize::try_from(run[0]).unwrap_or(usize::MAX);
        let from = start + first * width;
        values.copy_within(from..from + run.len() * width, kept * width);
        kept += run.len();
    }
    values.truncate(kept * width);
    // Shrinking a large block is done in place (`mremap`): nothing is copied.
    values.shrink_to_fit();
}

/// An `.npy` file of `T` whose header has been read ([`Store::open_npy_rows`]): its rows
/// still to stream past, through the digest its manifest lists.
pub(crate) struct NpyRows<'s, T> {
    id: String,
    name: String,
    entry: FileEntry,
    count: usize,
    pub(crate) width: usize,
    file: HashingReader<Box<dyn Read + 's>>,
    values: std::marker::PhantomData<T>,
}

impl<T: bytemuck::Pod + Send> NpyRows<'_, T> {
    /// Hands `visit` each of `rows` (increasing row numbers; `width` values each) as the file
    /// streams past, a chunk at a time, and hash-checks the whole file meanwhile: an error if
    /// a row is out of order or beyond the file, or the file does not match its hash, in which
    /// case what `visit` was handed must not be used. `spare`, memory that `visit` will fill,
    /// is faulted in on the hashing core while the first chunks are read.
    pub(crate) fn visit(
        self,
        rows: &[u64],
        spare: Option<crate::prefault::SparePages>,
        mut visit: impl FnMut(&[T]),
    ) -> Result<(), StoreError> {
        let NpyRows { id, name, entry, count, width, file, .. } = self;
        let corrupt = |detail: String| StoreError::Corrupt {
            id: id.clone(),
            detail: format!("{name}: {detail}"),
        };
        let chunk_rows = (PICK_CHUNK_BYTES / (width.max(1) * std::mem::size_of::<T>())).max(1);
        let HashingReader { inner: mut reader, digest } = file;
        // The hash is taken on a second core while this one reads and picks: each chunk, once
        // its rows are visited, goes to the hashing thread, and its buffer comes back for a
        // later chunk.
        let (visited, digest) = std::thread::scope(|scope| {
            if let Some(spare) = spare {
                scope.spawn(move || spare.populate());
            }
            let (to_hash, chunks) = std::sync::mpsc::sync_channel::<Vec<T>>(2);
            let (give_back, returned) = std::sync::mpsc::channel::<Vec<T>>();
            let hashing = scope.spawn(move || {
                let mut digest = digest;
                for chunk in chunks {
                    digest.update(bytemuck::cast_slice(&chunk));
                    // The reader stops taking buffers back once it has read the file.
                    let _ = give_back.send(chunk);
                }
                digest
            });
            let mut visiting = || -> Result<(), StoreError> {
                let mut wanted =
                    rows.iter().map(|&r| usize::try_from(r).unwrap_or(usize::MAX)).peekable();
                let mut start = 0;
                while start < count {
                    let in_chunk = (count - start).min(chunk_rows);
                    let mut chunk = returned.try_recv().unwrap_or_default();
                    chunk.resize(in_chunk * width, T::zeroed());
                    reader
                        .read_exact(bytemuck::cast_slice_mut(&mut chunk))
                        .map_err(|e| corrupt(e.to_string()))?;
                    while let Some(row) = wanted.next_if(|&row| row < start + in_chunk) {
                        if row < start {
                            return Err(corrupt(format!("row {row} asked for out of order")));
                        }
                        visit(&chunk[(row - start) * width..][..width]);
                    }
                    to_hash
                        .send(chunk)
                        .map_err(|_| corrupt("the hashing thread stopped".into()))?;
                    start += in_chunk;
                }
                if let Some(row) = wanted.next() {
                    return Err(corrupt(format!("row {row} asked for, but it has {count}")));
                }
                Ok(())
            };
            let visited = visiting();
            drop(to_hash);
            (visited, hashing.join())
        });
        visited?;
        let digest = digest.map_err(|_| corrupt("the hashing thread failed".into()))?;
        if !digest.matches(&entry) {
            return Err(hash_mismatch(&id, &name, &entry));
        }
        Ok(())
    }
}

/// Values as an `.npy` file (a row-major matrix, or a vector), written from them in place.
pub(crate) struct Npy<'a, T> {
    values: &'a [T],
    /// Columns, for a matrix.
    columns: Option<usize>,
}

impl<'a, T> Npy<'a, T> {
    pub(crate) fn matrix(values: &'a [T], columns: usize) -> Self {
        Npy { values, columns: Some(columns) }
    }
    pub(crate) fn vector(values: &'a [T]) -> Self {
        Npy { values, columns: None }
    }
}

impl<T: ndarray_npy::WritableElement> Contents for Npy<'_, T> {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let written = match self.columns {
            Some(d) => {
                let rows = self.values.len().checked_div(d).unwrap_or(0);
                ndarray::ArrayView2::from_shape((rows, d), self.values)
                    .map_err(std::io::Error::other)?
                    .write_npy(out)
            }
            None => ndarray::ArrayView1::from(self.values).write_npy(out),
        };
        written.map_err(|e| match e {
            ndarray_npy::WriteNpyError::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        })
    }
}
