//! A dataset's feature matrix written while its CSV is still being read: [`DatasetWriter`].
//!
//! Parsed whole into memory and only then stored, a dataset's copy into the page cache would
//! wait for the parse and then run on one core, the other idle. The writer takes the values a
//! block of rows at a time (it is the table reader's [`ValueSink`]), writes them to the
//! storage's staging area and hashes them on the way; the dataset is stored once the labels
//! and columns are known ([`Store::put_streamed_table`]), with the same bytes, the same
//! digests and so the same id as [`Store::put_table`] of the whole table gives (a proptest
//! holds the two to it).
//!
//! `x.npy` begins with its header, which holds the row count, known only at the end. BLAKE3
//! hashes a file as a tree whose leaves are 1024-byte chunks, so everything after the first
//! chunk can be hashed as it comes ([`HeadLastHasher`]) and the first chunk — the header
//! and the first values — at the end.

use crate::npy::count_missing;
use crate::storage::{Contents, StagingFile, StoreError};
use crate::store::Store;
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};
use logitflow_core::table::ValueSink;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The length of the `.npy` header of a 2-D `f64` matrix: ndarray-npy pads it to a multiple
/// of 64 bytes, and the dictionary of any shape a `usize` can hold fits in 128.
const HEADER_BYTES: usize = 128;
const CHUNK_BYTES: usize = blake3::CHUNK_LEN;
/// How much is written before its writeback to the disk is started.
const WRITEBACK_BYTES: u64 = 8 << 20;

/// The feature values of a dataset being read, written and hashed as they come.
pub struct DatasetWriter {
    /// Values a row; set by the first rows taken.
    width: Option<usize>,
    rows: u64,
    /// Missing (`NaN`) cells per feature.
    missing: Vec<u64>,
    /// The values' first bytes, which share BLAKE3's first chunk with the header.
    head: Vec<u8>,
    hasher: HeadLastHasher,
    out: Staged,
    /// Where the writeback started so far ends ([`start_writeback`]).
    written_back: u64,
}

/// Where the file is staged: a file in the home's staging area, or memory for a storage that
/// takes objects only whole (S3). Either begins with room for the header.
enum Staged {
    File(std::fs::File, StagedPath),
    Memory(Vec<u8>),
}

/// A staged file's path, removed with it unless it has been moved into an artifact, and the
/// lock that says its writer is alive ([`StagingFile::alive`]).
struct StagedPath {
    path: PathBuf,
    _alive: Option<std::fs::File>,
}

impl Drop for StagedPath {
    fn drop(&mut self) {
        // Moved into an artifact, it is no longer here; otherwise it was never stored.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Store {
    /// A writer for the feature values of a dataset to be stored by
    /// [`Store::put_streamed_table`].
    pub fn dataset_writer(&self) -> Result<DatasetWriter, StoreError> {
        let out = match self.storage.staging_file()? {
            Some(StagingFile { mut file, path, alive }) => {
                let path = StagedPath { _alive: alive, path };
                file.write_all(&[0; HEADER_BYTES]).map_err(|e| StoreError::io(&path.path, e))?;
                Staged::File(file, path)
            }
            None => Staged::Memory(vec![0; HEADER_BYTES]),
        };
        Ok(DatasetWriter {
            width: None,
            rows: 0,
            missing: Vec::new(),
            head: Vec::new(),
            hasher: HeadLastHasher::new(),
            out,
            written_back: 0,
        })
    }

    /// Stores a table whose feature values went to `writer` as they were read (the table
    /// itself holds none): the dataset [`Store::put_table`] stores for the whole table.
    pub fn put_streamed_table(
        &self,
        writer: DatasetWriter,
        table: &logitflow_core::table::RawTable,
        producer: &str,
        params: serde_json::Value,
    ) -> Result<String, StoreError> {
        let width = table.width();
        if writer.rows != table.rows() as u64
            || writer.width.is_some_and(|w| w != width)
            || !table.x.is_empty()
        {
            let detail = format!(
                "{} rows of values written for a table of {} rows × {width}",
                writer.rows,
                table.rows()
            );
            return Err(StoreError::io(Path::new("x.npy"), std::io::Error::other(detail)));
        }
        let x = writer.finish(table.rows(), width)?;
        self.put_table_files(table, x.missing.clone(), &x, producer, params)
    }
}

impl DatasetWriter {
    /// The header written in, the digest finished: the staged `x.npy` of `rows × width`.
    fn finish(self, rows: usize, width: usize) -> Result<StagedNpy, StoreError> {
        use ndarray_npy::WritableElement;
        let DatasetWriter { mut missing, head, hasher, out, .. } = self;
        let header = ndarray_npy::npy::header::Header {
            type_descriptor: f64::type_descriptor(),
            layout: ndarray_npy::npy::header::Layout::Standard,
            shape: vec![rows, width],
        }
        .to_bytes()
        .map_err(|e| StoreError::io(Path::new("x.npy"), std::io::Error::other(e.to_string())))?;
        if header.len() != HEADER_BYTES {
            let detail = format!(
                "the .npy header of {rows} × {width} is {} bytes, not {HEADER_BYTES}",
                header.len()
            );
            return Err(StoreError::io(Path::new("x.npy"), std::io::Error::other(detail)));
        }
        let first_chunk = [header.as_slice(), &head].concat();
        let blake3 = hasher.finish(&first_chunk).to_hex().to_string();
        let (bytes, staged) = match out {
            Staged::File(file, path) => {
                use std::os::unix::fs::FileExt;
                let io = |e| StoreError::io(&path.path, e);
                file.write_all_at(&header, 0).map_err(io)?;
                (file.metadata().map_err(io)?.len(), StagedBytes::File(path))
            }
            Staged::Memory(mut bytes) => {
                bytes[..HEADER_BYTES].copy_from_slice(&header);
                (bytes.len() as u64, StagedBytes::Memory(bytes))
            }
        };
        missing.resize(width, 0);
        Ok(StagedNpy { blake3, bytes, staged, missing })
    }
}

/// Starts writing bytes `from..to` of `file` to the disk, without waiting for it, so that the
/// fsync that stores the dataset finds little left to write: the disk is idle while the CSV is
/// parsed. (Started while a parsed table was written out whole, it gained nothing and stalled
/// the writes: BENCHMARKS.md.) A failure changes nothing: the fsync writes what is left.
fn start_writeback(file: &std::fs::File, from: u64, to: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) else { return };
        // SAFETY: the call takes a descriptor this writer owns and two numbers; it reads and
        // writes no memory of the process.
        #[allow(unsafe_code)]
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, to);
}

impl ValueSink for DatasetWriter {
    fn append(&mut self, values: &[f64], width: usize) -> std::io::Result<()> {
        if width == 0
            || !values.len().is_multiple_of(width)
            || self.width.is_some_and(|w| w != width)
        {
            return Err(std::io::Error::other(format!(
                "{} values do not make rows of {width}",
                values.len()
            )));
        }
        if self.width.is_none() {
            self.width = Some(width);
            self.missing = vec![0; width];
        }
        count_missing(&mut self.missing, values);
        self.rows += (values.len() / width) as u64;
        // `.npy` values are little-endian, as this machine's (the store reads them so too).
        let bytes: &[u8] = bytemuck::cast_slice(values);
        let head_room =
            (CHUNK_BYTES - HEADER_BYTES).saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..head_room]);
        self.hasher.update(&bytes[head_room..]);
        match &mut self.out {
            Staged::File(file, path) => {
                file.write_all(bytes).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("{}: {e}", path.path.display()))
                })?;
                let written = HEADER_BYTES as u64 + self.rows * 8 * width as u64;
                if written - self.written_back >= WRITEBACK_BYTES {
                    start_writeback(file, self.written_back, written);
                    self.written_back = written;
                }
            }
            Staged::Memory(out) => out.extend_from_slice(bytes),
        }
        Ok(())
    }

    fn take_back(&mut self) -> std::io::Result<Vec<f64>> {
        let values = match &mut self.out {
            Staged::File(file, _) => {
                let len = file.seek(std::io::SeekFrom::End(0))? as usize - HEADER_BYTES;
                let mut values = vec![0.0f64; len / 8];
                file.seek(std::io::SeekFrom::Start(HEADER_BYTES as u64))?;
                file.read_exact(bytemuck::cast_slice_mut(&mut values))?;
                file.set_len(HEADER_BYTES as u64)?;
                file.seek(std::io::SeekFrom::Start(HEADER_BYTES as u64))?;
                values
            }
            Staged::Memory(out) => {
                let values = out[HEADER_BYTES..]
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
                    .collect();
                out.truncate(HEADER_BYTES);
                values
            }
        };
        (self.width, self.rows, self.missing, self.head, self.hasher) =
            (None, 0, Vec::new(), Vec::new(), HeadLastHasher::new());
        self.written_back = 0;
        Ok(values)
    }
}

/// A staged `x.npy`, its digest taken as it was written.
struct StagedNpy {
    blake3: String,
    bytes: u64,
    staged: StagedBytes,
    missing: Vec<u64>,
}

enum StagedBytes {
    File(StagedPath),
    Memory(Vec<u8>),
}

impl Contents for StagedNpy {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match &self.staged {
            StagedBytes::File(path) => {
                std::io::copy(&mut std::fs::File::open(&path.path)?, out).map(drop)
            }
            StagedBytes::Memory(bytes) => out.write_all(bytes),
        }
    }

    fn blake3(&self) -> Option<(String, u64)> {
        Some((self.blake3.clone(), self.bytes))
    }

    fn staged_file(&self) -> Option<&Path> {
        match &self.staged {
            StagedBytes::File(path) => Some(&path.path),
            StagedBytes::Memory(_) => None,
        }
    }
}

/// BLAKE3 of a stream whose first chunk (1024 bytes) is given only at its end.
///
/// BLAKE3's tree over an input of any length has, after the first chunk, the subtrees
/// `[1024, 2048)`, `[2048, 4096)`, `[4096, 8192)`, … each twice the one before, for as long as
/// they are complete; the last, unfinished one is the root's right child, and the complete
/// ones folded with the first chunk are its left. So each is hashed as the bytes come (at its
/// offset, with `hazmat`), and joined once the first chunk is there.
struct HeadLastHasher {
    /// The complete subtrees after the first chunk, in order.
    complete: Vec<ChainingValue>,
    /// The subtree being filled: it starts at `start` and is complete at `start` bytes.
    current: blake3::Hasher,
    start: u64,
    filled: u64,
}

impl HeadLastHasher {
    fn new() -> Self {
        HeadLastHasher {
            complete: Vec::new(),
            current: Self::subtree_at(CHUNK_BYTES as u64),
            start: CHUNK_BYTES as u64,
            filled: 0,
        }
    }

    fn subtree_at(offset: u64) -> blake3::Hasher {
        let mut hasher = blake3::Hasher::new();
        hasher.set_input_offset(offset);
        hasher
    }

    /// Hashes the next bytes after the first chunk.
    fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = usize::try_from(self.start - self.filled).unwrap_or(usize::MAX);
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.current.update(now);
            self.filled += now.len() as u64;
            bytes = later;
            if self.filled == self.start {
                self.complete.push(self.current.finalize_non_root());
                self.start *= 2;
                self.current = Self::subtree_at(self.start);
                self.filled = 0;
            }
        }
    }

    /// The hash of `first_chunk` followed by every byte updated with. `first_chunk` is the
    /// whole first chunk whenever anything follows it.
    fn finish(self, first_chunk: &[u8]) -> blake3::Hash {
        if self.complete.is_empty() && self.filled == 0 {
            return blake3::hash(first_chunk);
        }
        debug_assert_eq!(first_chunk.len(), CHUNK_BYTES);
        let mut subtrees = vec![blake3::Hasher::new().update(first_chunk).finalize_non_root()];
        subtrees.extend(self.complete);
        let right = match self.filled {
            0 => subtrees.pop().unwrap_or_default(),
            _ => self.current.finalize_non_root(),
        };
        let left = subtrees
            .into_iter()
            .reduce(|left, right| merge_subtrees_non_root(&left, &right, Mode::Hash))
            .unwrap_or_default();
        merge_subtrees_root(&left, &right, Mode::Hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logitflow_core::table::RawTable;
    use proptest::prelude::*;

    fn head_last_hash(input: &[u8], pieces: &[usize]) -> blake3::Hash {
        let (first, rest) = input.split_at(input.len().min(CHUNK_BYTES));
        let mut hasher = HeadLastHasher::new();
        let mut rest = rest;
        for &piece in pieces.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at(piece.clamp(1, rest.len()));
            hasher.update(now);
            rest = later;
        }
        hasher.finish(first)
    }

    #[test]
    fn values_taken_back_are_forgotten_and_an_unstored_writer_leaves_nothing() {
        let whole = table(&(0..3000).map(f64::from).collect::<Vec<_>>(), 3);
        let dir = tempfile::tempdir().expect("tempdir");
        let expected = Store::open(dir.path().join("whole"))
            .expect("store")
            .put_table(&whole, "ingest", serde_json::json!({"source": "test"}))
            .expect("stored");
        for home in ["disk", "memory"] {
            let storage = crate::home::HomeStorage::open(dir.path().join(home)).expect("storage");
            let store = match home {
                "disk" => Store::on(std::sync::Arc::new(storage)),
                _ => Store::on(std::sync::Arc::new(WholeObjectsOnly(storage))),
            };
            let mut writer = store.dataset_writer().expect("a writer");
            writer.append(&[f64::NAN; 6], 3).expect("appended");
            writer.append(&whole.x[..600], 3).expect("appended");
            assert!(writer.append(&whole.x[..4], 2).is_err(), "{home}: rows of another width");
            let back = writer.take_back().expect("taken back");
            assert_eq!(
                format!("{back:?}"),
                format!("{:?}", [&[f64::NAN; 6][..], &whole.x[..600]].concat()),
                "{home}"
            );
            // Past the stride of the writeback, and taken back again.
            let big = vec![1.5; 3 * 400_000];
            writer.append(&big, 3).expect("appended");
            assert_eq!(writer.take_back().expect("taken back"), big, "{home}");
            for rows in whole.x.chunks(999) {
                writer.append(rows, 3).expect("appended");
            }
            let labels = RawTable { x: Vec::new(), ..whole.clone() };
            let id = store
                .put_streamed_table(
                    writer,
                    &labels,
                    "ingest",
                    serde_json::json!({"source": "test"}),
                )
                .expect("stored");
            assert_eq!(id, expected, "{home}");
            // A writer dropped before its dataset is stored (a cached step, a bad file).
            let mut writer = store.dataset_writer().expect("a writer");
            writer.append(&whole.x, 3).expect("appended");
            let short = RawTable {
                x: Vec::new(),
                y: vec![0.0; 10],
                lines: (2..12).collect(),
                ..whole.clone()
            };
            assert!(
                store.put_streamed_table(writer, &short, "ingest", serde_json::json!({})).is_err(),
                "{home}: rows the table has not"
            );
            assert!(staged_left(&dir.path().join(home)).is_empty(), "{home}");
        }
    }

    #[test]
    fn the_hash_of_the_head_given_last_is_blake3_at_every_tree_edge() {
        let input: Vec<u8> = (0..(1u32 << 20) + 3000).map(|i| (i * 7 + i / 251) as u8).collect();
        let edges =
            (0..=10).map(|k| (CHUNK_BYTES << k) as i64).flat_map(|edge| [edge - 1, edge, edge + 1]);
        for len in [0, 1, 100, 1023].into_iter().chain(edges).chain([
            3 * 1024 + 5,
            1_000_000,
            input.len() as i64,
        ]) {
            let input = &input[..len as usize];
            for pieces in [&[1 << 20][..], &[1000, 7, 4096]] {
                assert_eq!(
                    head_last_hash(input, pieces),
                    blake3::hash(input),
                    "{len} bytes in pieces of {pieces:?}"
                );
            }
        }
    }

    /// A storage that takes objects only whole, as S3 does: its staged files are in memory.
    #[derive(Debug)]
    struct WholeObjectsOnly(crate::home::HomeStorage);

    impl crate::Storage for WholeObjectsOnly {
        fn uri(&self) -> String {
            self.0.uri()
        }
        fn open(&self, key: &str) -> Result<Option<crate::StoredObject<'_>>, StoreError> {
            self.0.open(key)
        }
        fn commit(
            &self,
            id: &str,
            files: &[(&str, &dyn Contents)],
            whole: &dyn Fn() -> bool,
        ) -> Result<(), StoreError> {
            self.0.commit(id, files, whole)
        }
        fn replace(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
            self.0.replace(key, bytes)
        }
        fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
            self.0.list(prefix)
        }
    }

    impl crate::registry::RegistryStorage for WholeObjectsOnly {
        fn load_registry(
            &self,
        ) -> Result<crate::registry::RegistryData, crate::registry::RegistryError> {
            self.0.load_registry()
        }
        fn update_registry(
            &self,
            change: &mut dyn FnMut(
                &mut crate::registry::RegistryData,
            ) -> Result<(), crate::registry::RegistryError>,
        ) -> Result<(), crate::registry::RegistryError> {
            self.0.update_registry(change)
        }
        fn registry_fingerprint(&self) -> Option<String> {
            self.0.registry_fingerprint()
        }
    }

    fn table(values: &[f64], width: usize) -> RawTable {
        let rows = values.len() / width;
        RawTable {
            feature_names: (0..width).map(|j| format!("x{j}")).collect(),
            label_name: "y".into(),
            kinds: vec![logitflow_core::table::ColumnKind::Numeric; width],
            classes: None,
            x: values.to_vec(),
            y: (0..rows).map(|i| (i % 2) as f64).collect(),
            lines: (2..rows as u64 + 2).collect(),
            notes: Vec::new(),
            roles: Default::default(),
        }
    }

    /// Stores `whole`'s values through a writer, `rows_at_a_time` rows to an append.
    fn put_streamed(store: &Store, whole: &RawTable, rows_at_a_time: usize) -> String {
        let width = whole.width();
        let mut writer = store.dataset_writer().expect("a writer");
        for rows in whole.x.chunks(rows_at_a_time * width) {
            writer.append(rows, width).expect("appended");
        }
        let labels = RawTable { x: Vec::new(), ..whole.clone() };
        store
            .put_streamed_table(writer, &labels, "ingest", serde_json::json!({"source": "test"}))
            .expect("stored")
    }

    fn staged_left(home: &Path) -> Vec<std::ffi::OsString> {
        std::fs::read_dir(home.join("tmp"))
            .expect("tmp")
            .map(|e| e.expect("entry").file_name())
            .collect()
    }

    proptest! {
        /// A dataset stored as its values were read is the dataset `put_table` stores from the
        /// whole table: the same id, the same bytes, on a home and on a storage of whole objects;
        /// and nothing is left staged.
        #[test]
        fn a_streamed_dataset_is_the_one_put_table_stores(
            width in 1usize..6,
            cells in prop::collection::vec(prop_oneof![4 => any::<f64>(), 1 => Just(f64::NAN)], 1..900),
            rows_at_a_time in 1usize..70,
        ) {
            let rows = cells.len() / width;
            prop_assume!(rows > 0);
            let whole = table(&cells[..rows * width], width);
            let dir = tempfile::tempdir().expect("tempdir");
            let expected = Store::open(dir.path().join("whole")).expect("store").put_table(&whole, "ingest", serde_json::json!({"source": "test"})).expect("stored");
            let on_disk = Store::open(dir.path().join("disk")).expect("store");
            prop_assert_eq!(&put_streamed(&on_disk, &whole, rows_at_a_time), &expected);
            let whole_objects = crate::home::HomeStorage::open(dir.path().join("memory")).expect("storage");
            let in_memory = Store::on(std::sync::Arc::new(WholeObjectsOnly(whole_objects)));
            prop_assert_eq!(&put_streamed(&in_memory, &whole, rows_at_a_time), &expected);
            for home in ["disk", "memory"] {
                let x = |home: &str| std::fs::read(dir.path().join(home).join("artifacts").join(&expected).join("x.npy")).expect("x.npy");
                prop_assert!(x(home) == x("whole"), "{home}: x.npy differs");
                prop_assert!(staged_left(&dir.path().join(home)).is_empty());
            }
            let stored = on_disk.load_table(&expected).expect("loads");
            prop_assert_eq!(stored.x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), whole.x.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }

        #[test]
        fn the_hash_of_the_head_given_last_is_blake3(len in 0usize..40_000, seed: u8, pieces in prop::collection::vec(1usize..5000, 1..6)) {
            let input: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            prop_assert_eq!(head_last_hash(&input, &pieces), blake3::hash(&input));
        }
    }
}
