//! The seam between the store and where its objects are: [`Storage`] (a home on one disk, an
//! object store many machines share), what it hands back ([`StoredObject`], [`Sealing`]) and
//! takes ([`Contents`]), and [`StoreError`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no artifact {0} in the store")]
    NotFound(String),
    #[error("artifact {id} is corrupt: {detail}; it will not be loaded")]
    Corrupt { id: String, detail: String },
    #[error("artifact {id} is a {found}, not a {expected}")]
    WrongKind { id: String, expected: &'static str, found: String },
    #[error("{0:?} is not an artifact id (64 hex digits)")]
    BadId(String),
    /// An object store failed or refused a request.
    #[error("{uri}: {detail}")]
    Remote { uri: String, detail: String },
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io { path: path.to_path_buf(), source }
    }
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Where a [`Store`] keeps its objects: the one seam between a home on one disk
/// ([`crate::home::HomeStorage`]) and an object store that many machines share. Keys are
/// `/`-separated paths under the store's root (`artifacts/<id>/<name>`, `steps/<key>.json`).
///
/// The methods block; services call them from blocking threads, never on an async worker.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Where it is: `file:///path` or `s3://bucket/prefix`.
    fn uri(&self) -> String;
    /// An object's length and its bytes to read, or `None` when there is no such object.
    fn open(&self, key: &str) -> Result<Option<StoredObject<'_>>, StoreError>;
    /// Writes artifact `id`'s files under `artifacts/<id>/`; the last of `files` is its
    /// `manifest.json`, the commit point: written only once every other file is whole, so
    /// readers see the whole artifact or none. `whole` tells whether a whole copy is there
    /// already (another writer of the same content finished first).
    fn commit(
        &self,
        id: &str,
        files: &[(&str, &dyn Contents)],
        whole: &dyn Fn() -> bool,
    ) -> Result<(), StoreError>;
    /// A new file in the staging area, with its path, for a file written before its artifact's
    /// id is known (a dataset's values while its CSV is read; see [`Contents::staged_file`]);
    /// `None` where objects are put only whole (S3), and such a file is staged in memory.
    fn staging_file(&self) -> Result<Option<StagingFile>, StoreError> {
        Ok(None)
    }
    /// Replaces a small object whole (a step record): readers see the old bytes or the new.
    fn replace(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// The names of the objects directly under `prefix` (`runs` → `["1700…-ab12.json", …]`);
    /// none when there is nothing there.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Marks the object at `key` as used now: a step cache hit, so that the home's garbage
    /// collection keeps what a running step reuses. Where nothing ages objects, nothing to do.
    fn touch(&self, _key: &str) {}
}

/// A file in a storage's staging area ([`Storage::staging_file`]), open for reading and
/// writing, and whatever says its writer is alive while it is held (a lock on the file, in a
/// home, so that no cleanup takes it from a live writer).
pub struct StagingFile {
    pub file: std::fs::File,
    pub path: PathBuf,
    pub alive: Option<std::fs::File>,
}

/// An object opened for reading: its length, known before anything is allocated for it.
pub struct StoredObject<'a> {
    pub len: u64,
    pub reader: Box<dyn Read + 'a>,
    /// What the storage knows of its hash check without hashing it.
    pub sealing: Sealing,
}

/// What a storage knows of a file's hash check without hashing it: seals (see
/// `crate::home::seal`; only a home keeps them).
pub enum Sealing {
    /// Nothing: it is hashed.
    None,
    /// A seal vouches for its hash.
    Sealed(Seal),
    /// No seal vouches for it: once it has been hashed whole and matched, this seals it with
    /// that BLAKE3, if it is still as it was opened.
    Unsealed(Box<dyn FnOnce(String) + Send>),
}

/// A file's seal, found as it was opened: the BLAKE3 its writer hashed it to, which stands for
/// the reader's own hash check for as long as the file is not written to.
pub struct Seal {
    pub blake3: String,
    /// Whether the file is still as it was sealed: asked once it has been read.
    pub unchanged: Box<dyn Fn() -> bool + Send>,
}

/// A file's bytes, written on demand to whatever asks: the hash, then the file.
pub trait Contents {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()>;
    /// Its BLAKE3 (hex) and length when they are known without writing it: a file hashed as
    /// it was staged.
    fn blake3(&self) -> Option<(String, u64)> {
        None
    }
    /// The file in the storage's staging area ([`Storage::staging_file`]) that holds it
    /// already, for a storage that can move it into the artifact rather than copy it.
    fn staged_file(&self) -> Option<&Path> {
        None
    }
}

impl Contents for Vec<u8> {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(self)
    }
}
