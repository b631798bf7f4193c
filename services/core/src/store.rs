//! The content-addressed artifact store: [`Store`], over a [`Storage`] — the home directory
//! on one machine ([`crate::home::HomeStorage`], `file://`) or an object store shared by many
//! (`s3://bucket/prefix`, in the `logitflow-objects` crate).
//!
//! ```text
//! artifacts/<id>/manifest.json   kind, producer, inputs, parameters, time, file hashes
//! artifacts/<id>/<files>         .npy matrices, JSON
//! steps/<key>.json               step cache: inputs+parameters hash → output ids
//! registry.json                  the model registry (crate::registry)
//! ```
//!
//! A dataset is `x.npy`, `y.npy`, the file line of each row and `columns.json` (which counts
//! each column's missing cells). The lines are stored as runs of consecutive lines,
//! `line_runs.npy` (a file without blank lines or multi-line records is one run: 16 bytes, not
//! 8 MB for a million rows), or as `lines.npy`, one per row, where that is smaller.
//!
//! A split is no copy of rows but their numbers: each part names rows of the dataset given in
//! `sources.json` (the ingested one, or clean data preprocess stored because cleaning changed
//! values), and its readers take their part's rows as the dataset streams past
//! ([`Store::load_split_part`]). A part is stored as `train_mask.npy` / `test_mask.npy`, one
//! bit per row of its dataset in numpy's `packbits` order (`np.unpackbits` reads it), or as
//! `train_rows.npy` / `test_rows.npy`, the row numbers (u64), where that is smaller: a part
//! of a few rows of a large dataset, or a split stored before masks.
//!
//! An artifact's id is the SHA-256 of its kind and its files' BLAKE3 digests, so the same
//! content is stored once. (Artifacts written before BLAKE3 list SHA-256 digests, and are
//! checked by them.)
//! Its manifest is written last: an artifact without one does not exist to any reader, so a
//! crash mid-write leaves nothing anyone will look at. Reads check every file against the
//! manifest's hash, so a truncated or altered file is refused, never loaded.

use crate::clean::{CleanReport, Dataset, Split};
use crate::roles::RoleColumns;
use crate::sha256_hex;
use crate::table::{Classes, ColumnKind, RawTable};
use ndarray_npy::{ViewNpyExt, WriteNpyExt};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

mod dataset_writer;
pub use dataset_writer::DatasetWriter;

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

/// What an artifact holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Dataset,
    Split,
    Transform,
    Model,
    Report,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Dataset => "dataset",
            Kind::Split => "split",
            Kind::Transform => "transform",
            Kind::Model => "model",
            Kind::Report => "report",
        }
    }
}

/// A file of an artifact as its manifest lists it: its size and one digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// BLAKE3, hex: how files are checked (faster than SHA-256, which older manifests hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// SHA-256, hex: how files written before were checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub id: String,
    pub kind: Kind,
    pub producer: String,
    pub inputs: Vec<String>,
    pub params: serde_json::Value,
    pub created_unix_ms: u64,
    pub files: BTreeMap<String, FileEntry>,
}

/// A finished step: which artifacts it produced, so the same inputs and parameters reuse them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    pub outputs: BTreeMap<String, String>,
    #[serde(default)]
    pub summary: serde_json::Value,
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
    fn staging_file(&self) -> Result<Option<(std::fs::File, PathBuf)>, StoreError> {
        Ok(None)
    }
    /// Replaces a small object whole (a step record): readers see the old bytes or the new.
    fn replace(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// The names of the objects directly under `prefix` (`runs` → `["1700…-ab12.json", …]`);
    /// none when there is nothing there.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// The registry as it is now (empty when there is none yet).
    fn load_registry(
        &self,
    ) -> Result<crate::registry::RegistryData, crate::registry::RegistryError>;
    /// Applies `change` to the registry so that concurrent writers, here or on other machines,
    /// never lose each other's changes (a lock, or compare-and-swap retried with `change` run
    /// again on the newer registry). Nothing is written when `change` fails.
    fn update_registry(
        &self,
        change: &mut dyn FnMut(
            &mut crate::registry::RegistryData,
        ) -> Result<(), crate::registry::RegistryError>,
    ) -> Result<(), crate::registry::RegistryError>;
    /// Something that changes whenever the registry does (its hash, its ETag); `None` when it
    /// cannot be read. What serve polls to notice a promotion made anywhere.
    fn registry_fingerprint(&self) -> Option<String>;

    /// Marks the object at `key` as used now: a step cache hit, so that the home's garbage
    /// collection keeps what a running step reuses. Where nothing ages objects, nothing to do.
    fn touch(&self, _key: &str) {}
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

/// The artifact store over a [`Storage`]. Cheap to clone; nothing is cached in memory, so
/// several processes (on one disk, or on many machines sharing a bucket) can share it.
#[derive(Debug, Clone)]
pub struct Store {
    storage: Arc<dyn Storage>,
}

/// The two parts of a stored train/test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitPart {
    Train,
    Test,
}

/// `Ok` when `id` can name an artifact (64 lowercase hex digits), else [`StoreError::BadId`].
pub fn check_artifact_id(id: &str) -> Result<(), StoreError> {
    if is_artifact_id(id) { Ok(()) } else { Err(StoreError::BadId(id.to_string())) }
}

fn is_artifact_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn artifact_key(id: &str, name: &str) -> Result<String, StoreError> {
    if !is_artifact_id(id) {
        return Err(StoreError::BadId(id.to_string()));
    }
    Ok(format!("artifacts/{id}/{name}"))
}

impl Store {
    /// The store in a home directory (`file://`), created if needed; see
    /// [`crate::home::HomeStorage::open`].
    pub fn open(home: impl Into<PathBuf>) -> Result<Store, StoreError> {
        Ok(Store::on(Arc::new(crate::home::HomeStorage::open(home)?)))
    }

    /// The store on any [`Storage`].
    pub fn on(storage: Arc<dyn Storage>) -> Store {
        Store { storage }
    }

    /// The registry kept beside these artifacts.
    pub fn registry(&self) -> crate::registry::Registry {
        crate::registry::Registry::on(self.storage.clone())
    }

    /// `file:///path` or `s3://bucket/prefix`.
    pub fn uri(&self) -> String {
        self.storage.uri()
    }

    /// Stores files as one artifact and returns its id. Storing the same kind and files again
    /// returns the same id and writes nothing.
    pub fn put(
        &self,
        kind: Kind,
        producer: &str,
        inputs: Vec<String>,
        params: serde_json::Value,
        files: Vec<(&str, Vec<u8>)>,
    ) -> Result<String, StoreError> {
        let files: Vec<(&str, &dyn Contents)> =
            files.iter().map(|(name, bytes)| (*name, bytes as &dyn Contents)).collect();
        self.put_contents(kind, producer, inputs, params, &files)
    }

    /// [`Store::put`] of files made on demand ([`Contents`]): each is made once to be hashed and
    /// once more to be written, so a large matrix goes from its values to the disk without a
    /// copy of it in memory.
    fn put_contents(
        &self,
        kind: Kind,
        producer: &str,
        inputs: Vec<String>,
        params: serde_json::Value,
        files: &[(&str, &dyn Contents)],
    ) -> Result<String, StoreError> {
        let mut entries = BTreeMap::new();
        let mut identity = format!("logitflow-artifact\0{}\0", kind.name());
        let mut sorted: Vec<&(&str, &dyn Contents)> = files.iter().collect();
        sorted.sort_by_key(|(name, _)| *name);
        // Each file with the digest taken of it here, which a storage may seal it with.
        let mut hashed = Vec::with_capacity(files.len());
        for &&(name, contents) in &sorted {
            let (blake3, bytes) = match contents.blake3() {
                Some(known) => known,
                None => {
                    let mut digest = Digest::default();
                    contents
                        .write_to(&mut digest)
                        .map_err(|e| StoreError::io(Path::new(name), e))?;
                    digest.finish()
                }
            };
            identity.push_str(&format!("{name}\0blake3:{blake3}\0"));
            entries.insert(
                name.to_string(),
                FileEntry { blake3: Some(blake3.clone()), sha256: None, bytes },
            );
            hashed.push((name, Hashed { contents, blake3, bytes }));
        }
        let id = sha256_hex(identity.as_bytes());
        // The same content stored whole already: nothing to write. Stored damaged (a file
        // altered or missing, the manifest gone): written again below, replacing it.
        if self.verify(&id).is_ok() {
            return Ok(id);
        }
        let manifest = Manifest {
            id: id.clone(),
            kind,
            producer: producer.to_string(),
            inputs,
            params,
            created_unix_ms: now_unix_ms(),
            files: entries,
        };
        let manifest_bytes = json_bytes(&manifest)?;
        let all: Vec<(&str, &dyn Contents)> = hashed
            .iter()
            .map(|(name, hashed)| (*name, hashed as &dyn Contents))
            .chain([("manifest.json", &manifest_bytes as &dyn Contents)])
            .collect();
        self.storage.commit(&id, &all, &|| self.verify(&id).is_ok())?;
        Ok(id)
    }

    /// Checks an artifact whole: its manifest, and every file's size and hash; and for a split,
    /// the datasets its rows are in, since it is nothing without them (so that a step cache
    /// does not reuse a split whose rows were damaged, but makes it, and them, again).
    pub fn verify(&self, id: &str) -> Result<(), StoreError> {
        let manifest = self.verify_files(id)?;
        if manifest.kind == Kind::Split && manifest.files.contains_key("sources.json") {
            let sources: SplitSources = self.read_json(id, Kind::Split, "sources.json")?;
            let mut datasets = vec![&sources.train, &sources.test];
            datasets.dedup();
            for source in datasets {
                let found = self.verify_files(source)?.kind;
                if found != Kind::Dataset {
                    return Err(StoreError::WrongKind {
                        id: source.to_string(),
                        expected: Kind::Dataset.name(),
                        found: found.name().into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks an artifact's manifest and files, and returns the manifest. The files stream
    /// through the hash; none is held.
    fn verify_files(&self, id: &str) -> Result<Manifest, StoreError> {
        let manifest = self.manifest(id)?;
        for name in manifest.files.keys() {
            let (entry, mut file) = self.open_hashing(id, manifest.kind, name)?;
            // A sealed file's size was checked as it was opened, and its seal vouches for the
            // rest while it is unchanged: nothing to read.
            let vouched = match &file.digest.hasher {
                Hasher::Sealed(seal) => (seal.unchanged)(),
                _ => {
                    std::io::copy(
                        &mut std::io::BufReader::with_capacity(NPY_CHUNK_BYTES, &mut file),
                        &mut std::io::sink(),
                    )
                    .map_err(|e| StoreError::Corrupt {
                        id: id.to_string(),
                        detail: format!("{name}: {e}"),
                    })?;
                    file.digest.matches(&entry)
                }
            };
            if !vouched {
                return Err(hash_mismatch(id, name, &entry));
            }
        }
        Ok(manifest)
    }

    pub fn exists(&self, id: &str) -> bool {
        artifact_key(id, "manifest.json")
            .is_ok_and(|key| self.storage.open(&key).is_ok_and(|object| object.is_some()))
    }

    pub fn manifest(&self, id: &str) -> Result<Manifest, StoreError> {
        let key = artifact_key(id, "manifest.json")?;
        let Some(mut object) = self.storage.open(&key)? else {
            return Err(StoreError::NotFound(id.to_string()));
        };
        if object.len > MANIFEST_LIMIT {
            return Err(StoreError::Corrupt {
                id: id.to_string(),
                detail: format!("manifest.json is {} bytes", object.len),
            });
        }
        let mut bytes = Vec::new();
        object.reader.read_to_end(&mut bytes).map_err(|e| StoreError::Corrupt {
            id: id.to_string(),
            detail: format!("manifest.json: {e}"),
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                id: id.to_string(),
                detail: format!("manifest.json does not parse: {e}"),
            })?;
        if manifest.id != id {
            return Err(StoreError::Corrupt {
                id: id.to_string(),
                detail: "manifest names another id".into(),
            });
        }
        Ok(manifest)
    }

    /// Reads one file of an artifact, checking its size and hash against the manifest.
    pub fn read(&self, id: &str, expected: Kind, name: &str) -> Result<Vec<u8>, StoreError> {
        self.read_into::<u8>(id, expected, name).map(|(bytes, _)| bytes)
    }

    /// [`Store::read`] into a buffer of `T`s, so that numbers can be taken in place: the file's
    /// bytes fill the buffer's memory from the start; also returns the file's length.
    fn read_into<T: bytemuck::Pod>(
        &self,
        id: &str,
        expected: Kind,
        name: &str,
    ) -> Result<(Vec<T>, usize), StoreError> {
        let (entry, mut file) = self.open_hashing(id, expected, name)?;
        let corrupt = |detail: String| StoreError::Corrupt { id: id.to_string(), detail };
        let len = usize::try_from(entry.bytes)
            .map_err(|_| corrupt(format!("{name} is too large to read")))?;
        let mut buffer = vec![T::zeroed(); len.div_ceil(std::mem::size_of::<T>())];
        let bytes = &mut bytemuck::cast_slice_mut::<T, u8>(&mut buffer)[..len];
        // Read a chunk at a time, so each is hashed as it arrives, while the cache still holds it.
        for chunk in bytes.chunks_mut(NPY_CHUNK_BYTES) {
            file.read_exact(chunk).map_err(|e| corrupt(format!("{name}: {e}")))?;
        }
        if !file.digest.matches(&entry) {
            return Err(hash_mismatch(id, name, &entry));
        }
        Ok((buffer, len))
    }

    /// One file of an artifact of the expected kind, opened, its size checked against the
    /// manifest (before anything is allocated for it); the hash is the reader's to check.
    fn open_file(
        &self,
        id: &str,
        expected: Kind,
        name: &str,
    ) -> Result<(FileEntry, StoredObject<'_>), StoreError> {
        let manifest = self.manifest(id)?;
        if manifest.kind != expected {
            return Err(StoreError::WrongKind {
                id: id.to_string(),
                expected: expected.name(),
                found: manifest.kind.name().to_string(),
            });
        }
        let corrupt = |detail: String| StoreError::Corrupt { id: id.to_string(), detail };
        let entry = manifest
            .files
            .get(name)
            .ok_or_else(|| corrupt(format!("the manifest lists no file {name}")))?
            .clone();
        let object = self
            .storage
            .open(&artifact_key(id, name)?)?
            .ok_or_else(|| corrupt(format!("{name} is missing")))?;
        if object.len != entry.bytes {
            return Err(corrupt(format!(
                "{name} does not match its hash ({} bytes, {} expected)",
                object.len, entry.bytes
            )));
        }
        Ok((entry, object))
    }

    /// [`Store::open_file`] through the digest its manifest lists it by: whatever is read from
    /// it is hashed, for [`Digest::matches`] at the end; or, where the file's seal vouches for
    /// that very digest, counted, and the seal asked again at the end.
    fn open_hashing(
        &self,
        id: &str,
        kind: Kind,
        name: &str,
    ) -> Result<(FileEntry, HashingReader<Box<dyn Read + '_>>), StoreError> {
        let (entry, file) = self.open_file(id, kind, name)?;
        let checking = || {
            Digest::checking(&entry).ok_or_else(|| StoreError::Corrupt {
                id: id.to_string(),
                detail: format!("the manifest gives {name} no digest"),
            })
        };
        let digest = match file.sealing {
            Sealing::Sealed(seal) if entry.blake3.as_ref() == Some(&seal.blake3) => {
                Digest::sealed(seal)
            }
            Sealing::Unsealed(seal) if entry.blake3.is_some() => {
                Digest { seal_on_match: Some(seal), ..checking()? }
            }
            _ => checking()?,
        };
        Ok((entry, HashingReader { inner: file.reader, digest }))
    }

    /// Some rows of an `.npy` matrix (or elements of a vector), picked by increasing row
    /// numbers while the file streams past: what is held is the rows picked and a chunk, never
    /// the file. The whole file is hash-checked as it goes, and nothing is returned unless it
    /// matches. Returns the matrix's width (1 for a vector) and the rows, row-major.
    fn read_npy_rows<T: bytemuck::Pod + ndarray_npy::WritableElement + Send>(
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
    fn open_npy_rows<T: bytemuck::Pod + ndarray_npy::WritableElement>(
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

    pub fn put_json<T: Serialize>(
        &self,
        kind: Kind,
        producer: &str,
        inputs: Vec<String>,
        params: serde_json::Value,
        name: &str,
        value: &T,
    ) -> Result<String, StoreError> {
        let bytes = serde_json::to_vec_pretty(value)
            .map_err(|e| StoreError::io(Path::new(name), e.into()))?;
        self.put(kind, producer, inputs, params, vec![(name, bytes)])
    }

    pub fn read_json<T: DeserializeOwned>(
        &self,
        id: &str,
        kind: Kind,
        name: &str,
    ) -> Result<T, StoreError> {
        let bytes = self.read(id, kind, name)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt { id: id.to_string(), detail: format!("{name}: {e}") })
    }

    /// An `.npy` matrix of f64: (rows, columns, the values row-major).
    fn read_matrix(
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

    fn read_vector<T: bytemuck::Pod + ndarray_npy::ViewElement>(
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
    fn read_npy<T: bytemuck::Pod + ndarray_npy::ViewElement>(
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
    fn read_npy_unmoved<T: bytemuck::Pod + ndarray_npy::ViewElement>(
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

    /// Freezes a raw table as a dataset artifact: `x.npy`, `y.npy`, its lines, `columns.json`
    /// (which counts each column's missing cells, so that a split can know that it need not
    /// read the values).
    pub fn put_table(
        &self,
        table: &RawTable,
        producer: &str,
        params: serde_json::Value,
    ) -> Result<String, StoreError> {
        let d = table.width();
        let mut missing = vec![0u64; d];
        count_missing(&mut missing, &table.x);
        self.put_table_files(table, missing, &Npy::matrix(&table.x, d), producer, params)
    }

    /// Stores `table` as a dataset whose feature matrix is `x` and which misses `missing`
    /// cells per feature: [`Store::put_table`], and [`Store::put_streamed_table`] of a table
    /// whose values went to the store as they were read.
    fn put_table_files(
        &self,
        table: &RawTable,
        missing: Vec<u64>,
        x: &dyn Contents,
        producer: &str,
        params: serde_json::Value,
    ) -> Result<String, StoreError> {
        let columns = Columns {
            feature_names: table.feature_names.clone(),
            label_name: table.label_name.clone(),
            kinds: stored_kinds(&table.kinds),
            classes: table.classes.clone(),
            missing: Some(missing),
            roles: table.roles.clone(),
        };
        self.put_dataset_files(&columns, x, &table.y, &table.lines, producer, Vec::new(), params)
    }

    /// Stores clean rows (a dataset that cleaning changed, or a part of a split given whole) as
    /// a dataset artifact that splits can take rows from; `lines` are the file lines the rows
    /// came from.
    pub fn put_dataset(
        &self,
        data: &Dataset,
        lines: &[u64],
        producer: &str,
        inputs: Vec<String>,
        params: serde_json::Value,
    ) -> Result<String, StoreError> {
        let columns = Columns::of(data, Some(vec![0; data.width()]));
        self.put_dataset_files(
            &columns,
            &Npy::matrix(&data.x, data.width()),
            &data.y,
            lines,
            producer,
            inputs,
            params,
        )
    }

    /// Stores a dataset of `columns`, whose feature matrix is `x` (`x.npy`).
    #[allow(clippy::too_many_arguments)]
    fn put_dataset_files(
        &self,
        columns: &Columns,
        x: &dyn Contents,
        y: &[f64],
        lines: &[u64],
        producer: &str,
        inputs: Vec<String>,
        params: serde_json::Value,
    ) -> Result<String, StoreError> {
        let columns = json_bytes(columns)?;
        let runs = line_runs(lines);
        let lines: (&str, &dyn Contents) = if runs.len() < lines.len() {
            ("line_runs.npy", &Npy::matrix(&runs, 2))
        } else {
            ("lines.npy", &Npy::vector(lines))
        };
        let files: [(&str, &dyn Contents); 4] =
            [("x.npy", x), ("y.npy", &Npy::vector(y)), lines, ("columns.json", &columns)];
        self.put_contents(Kind::Dataset, producer, inputs, params, &files)
    }

    /// The file line of each of a dataset's `rows` rows, from whichever of `line_runs.npy` and
    /// `lines.npy` it has.
    fn read_lines(&self, id: &str, rows: usize) -> Result<Vec<u64>, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt { id: id.into(), detail };
        if self.manifest(id)?.files.contains_key("line_runs.npy") {
            let (shape, runs) = self.read_npy::<u64>(id, Kind::Dataset, "line_runs.npy")?;
            if shape[..] != [runs.len() / 2, 2] {
                return Err(corrupt(format!("line_runs.npy has shape {shape:?}, not (runs, 2)")));
            }
            lines_from_runs(&runs, rows).map_err(|e| corrupt(format!("line_runs.npy: {e}")))
        } else {
            let lines: Vec<u64> = self.read_vector(id, Kind::Dataset, "lines.npy")?;
            if lines.len() != rows {
                return Err(corrupt("y.npy and lines.npy disagree in length".into()));
            }
            Ok(lines)
        }
    }

    /// A dataset's columns, labels and file lines, without its values: what a split needs when
    /// the columns say that no value is missing.
    pub fn load_labels(&self, id: &str) -> Result<Labels, StoreError> {
        let columns: Columns = self.read_json(id, Kind::Dataset, "columns.json")?;
        let y: Vec<f64> = self.read_vector(id, Kind::Dataset, "y.npy")?;
        let lines = self.read_lines(id, y.len())?;
        Ok(Labels { columns, y, lines })
    }

    pub fn load_table(&self, id: &str) -> Result<RawTable, StoreError> {
        let columns: Columns = self.read_json(id, Kind::Dataset, "columns.json")?;
        let (rows, columns_read, x) = self.read_matrix(id, Kind::Dataset, "x.npy")?;
        let y: Vec<f64> = self.read_vector(id, Kind::Dataset, "y.npy")?;
        let lines = self.read_lines(id, y.len())?;
        if columns_read != columns.feature_names.len() || rows != y.len() {
            return Err(StoreError::Corrupt {
                id: id.into(),
                detail: "matrix shapes disagree".into(),
            });
        }
        Ok(RawTable {
            feature_names: columns.feature_names,
            label_name: columns.label_name,
            kinds: columns.kinds,
            classes: columns.classes,
            x,
            y,
            lines,
            notes: Vec::new(),
            roles: columns.roles,
        })
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

    /// A dataset's rows read whole and hash-checked, for a part of a split of it to be taken
    /// out of in place ([`Store::take_split_part`]): train loads them while preprocess, which
    /// leaves a core idle, is still splitting them.
    pub fn load_dataset_rows(&self, id: &str) -> Result<DatasetRows, StoreError> {
        let columns: Columns = self.read_json(id, Kind::Dataset, "columns.json")?;
        let y: Vec<f64> = self.read_vector(id, Kind::Dataset, "y.npy")?;
        let (shape, x, start) = self.read_npy_unmoved::<f64>(id, Kind::Dataset, "x.npy")?;
        let width = columns.feature_names.len();
        if shape[..] != [y.len(), width] {
            let detail = format!(
                "x.npy has shape {shape:?}, not ({}, {width}) as y.npy and columns.json say",
                y.len()
            );
            return Err(StoreError::Corrupt { id: id.into(), detail });
        }
        Ok(DatasetRows { id: id.to_string(), x, start, width, y })
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

    /// The step cache: the outputs recorded under `key`, if every one is still in the store
    /// and whole (hash-checked): a damaged output is not reused but made again, which
    /// replaces the damaged copy.
    pub fn step_lookup(&self, key: &str) -> Option<StepRecord> {
        let mut object = self.storage.open(&format!("steps/{key}.json")).ok()??;
        if object.len > MANIFEST_LIMIT {
            return None;
        }
        let mut bytes = Vec::new();
        object.reader.read_to_end(&mut bytes).ok()?;
        let record: StepRecord = serde_json::from_slice(&bytes).ok()?;
        let whole = record.outputs.values().all(|id| self.verify(id).is_ok());
        if whole {
            self.storage.touch(&format!("steps/{key}.json"));
        }
        whole.then_some(record)
    }

    pub fn step_record(&self, key: &str, record: &StepRecord) -> Result<(), StoreError> {
        self.storage.replace(&format!("steps/{key}.json"), &json_bytes(record)?)
    }
}

/// The largest manifest or step record read: they list a handful of files, so anything
/// larger is damage, refused before it is read.
const MANIFEST_LIMIT: u64 = 1 << 20;

/// The cache key of a step: its name, its input ids and its parameters, hashed.
pub fn step_key(step: &str, inputs: &[&str], params: &serde_json::Value) -> String {
    let mut text = format!("{step}\0");
    for input in inputs {
        text.push_str(input);
        text.push('\0');
    }
    text.push_str(&params.to_string());
    sha256_hex(text.as_bytes())
}

/// The column names of a dataset or split artifact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Columns {
    pub feature_names: Vec<String>,
    pub label_name: String,
    /// One per feature; empty (as written before text features) means all numeric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<ColumnKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Classes>,
    /// A dataset's missing cells, one count per feature; absent in a split, and in datasets
    /// stored before it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<u64>>,
    /// The features that have a role: weights, offset, cluster, folds.
    #[serde(default, skip_serializing_if = "RoleColumns::is_empty")]
    pub roles: RoleColumns,
}

impl Columns {
    /// The columns of clean data.
    pub fn of(data: &Dataset, missing: Option<Vec<u64>>) -> Columns {
        Columns {
            feature_names: data.feature_names.clone(),
            label_name: data.label_name.clone(),
            kinds: stored_kinds(&data.kinds),
            classes: data.classes.clone(),
            missing,
            roles: data.roles.clone(),
        }
    }

    /// The clean data of these columns with rows `x` and labels `y`: what [`Columns::of`] was
    /// taken from.
    pub(crate) fn into_dataset(self, x: Vec<f64>, y: Vec<f64>) -> Dataset {
        Dataset {
            feature_names: self.feature_names,
            label_name: self.label_name,
            kinds: self.kinds,
            classes: self.classes,
            x,
            y,
            roles: self.roles,
        }
    }

    /// True when every feature is numeric (no kinds listed, as written before text features,
    /// means all numeric).
    pub fn all_numeric(&self) -> bool {
        self.kinds.iter().all(|kind| *kind == ColumnKind::Numeric)
    }

    /// True when the columns are known to have no missing cell.
    pub fn none_missing(&self) -> bool {
        self.missing.as_ref().is_some_and(|counts| {
            counts.len() == self.feature_names.len() && counts.iter().all(|&c| c == 0)
        })
    }
}

/// `lines` as runs of consecutive lines, flat: (the run's first row, its line) for each row
/// whose line is not the one after the row before's.
fn line_runs(lines: &[u64]) -> Vec<u64> {
    let mut runs = Vec::new();
    for (row, &line) in lines.iter().enumerate() {
        if row == 0 || lines[row - 1].checked_add(1) != Some(line) {
            runs.extend([row as u64, line]);
        }
    }
    runs
}

/// The lines of `rows` rows from [`line_runs`]; runs no writer makes (the first not at row 0,
/// out of order, past the rows, or past the largest line number) are refused.
fn lines_from_runs(runs: &[u64], rows: usize) -> Result<Vec<u64>, String> {
    let runs: Vec<(usize, u64)> =
        runs.chunks_exact(2).map(|r| (usize::try_from(r[0]).unwrap_or(usize::MAX), r[1])).collect();
    match runs.first() {
        None if rows == 0 => return Ok(Vec::new()),
        Some(&(0, _)) => {}
        _ => return Err(format!("its runs do not start at row 0 of {rows}")),
    }
    let mut lines = Vec::with_capacity(rows);
    for (i, &(start, first)) in runs.iter().enumerate() {
        let end = runs.get(i + 1).map_or(rows, |next| next.0);
        if end <= start || end > rows {
            return Err(format!("run {i} covers rows {start}..{end} of {rows}"));
        }
        let last = first
            .checked_add((end - start - 1) as u64)
            .ok_or_else(|| format!("run {i} runs past the last line number"))?;
        lines.extend(first..=last);
    }
    Ok(lines)
}

/// A dataset's labels and file lines with its columns ([`Store::load_labels`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    pub columns: Columns,
    pub y: Vec<f64>,
    pub lines: Vec<u64>,
}

/// The datasets a split's parts take their rows from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitSources {
    pub train: String,
    pub test: String,
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

/// The column kinds as stored: none when every column is numeric, as before text columns.
fn stored_kinds(kinds: &[ColumnKind]) -> Vec<ColumnKind> {
    if kinds.iter().all(|k| *k == ColumnKind::Numeric) { Vec::new() } else { kinds.to_vec() }
}

fn json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(value).map_err(|e| StoreError::io(Path::new("json"), e.into()))
}

fn hash_mismatch(id: &str, name: &str, entry: &FileEntry) -> StoreError {
    StoreError::Corrupt {
        id: id.to_string(),
        detail: format!("{name} does not match its hash ({} bytes)", entry.bytes),
    }
}

/// Bytes read and hashed at a time by one thread: 64 KiB, which a core's cache holds while
/// they are hashed (with 1 MiB, hashing alone took 1.5× as long).
const NPY_CHUNK_BYTES: usize = 64 << 10;

/// Bytes read at a time when rows are picked on one thread and hashed on another
/// ([`Store::read_npy_rows`]). Each chunk is a hand-off between the two, whose wake-ups cost:
/// large chunks make few of them.
const PICK_CHUNK_BYTES: usize = 1 << 20;

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
fn count_missing(counts: &mut [u64], values: &[f64]) {
    for row in values.chunks_exact(counts.len().max(1)) {
        for (count, v) in counts.iter_mut().zip(row) {
            *count += u64::from(v.is_nan());
        }
    }
}

/// A dataset's rows read whole ([`Store::load_dataset_rows`]): its features as read from
/// `x.npy`, its header's place included, and its labels.
pub struct DatasetRows {
    id: String,
    /// The file's values from index `start`, row-major, `width` a row.
    x: Vec<f64>,
    start: usize,
    width: usize,
    y: Vec<f64>,
}

impl DatasetRows {
    /// The dataset's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Refuses split `id` whose `source` dataset has rows of another width than the split's
/// columns.
fn check_source_width(
    id: &str,
    source: &str,
    source_width: usize,
    columns: &Columns,
) -> Result<(), StoreError> {
    let width = columns.feature_names.len();
    if source_width != width {
        let detail = format!("its source {source} has {source_width} columns, the split {width}");
        return Err(StoreError::Corrupt { id: id.into(), detail });
    }
    Ok(())
}

/// Moves rows `rows` (increasing numbers, each of a row in `values`) of `values`, rows of
/// `width` values from index `start`, to its front in their order, and gives back the rest of
/// its memory. A row only ever moves towards the front, onto rows already moved or not kept,
/// so one pass in order does it in place; a run of consecutive rows moves as one.
fn keep_rows<T: Copy>(values: &mut Vec<T>, start: usize, width: usize, rows: &[u64]) {
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

/// A split's part stored as row numbers ([`Store::open_split_part`]): the numbers, the dataset
/// they index, and that dataset's `x.npy`, opened.
struct NumberedPart<'s> {
    rows: Vec<u64>,
    source: String,
    x: NpyRows<'s, f64>,
}

/// An `.npy` file of `T` whose header has been read ([`Store::open_npy_rows`]): its rows
/// still to stream past, through the digest its manifest lists.
struct NpyRows<'s, T> {
    id: String,
    name: String,
    entry: FileEntry,
    count: usize,
    width: usize,
    file: HashingReader<Box<dyn Read + 's>>,
    values: std::marker::PhantomData<T>,
}

impl<T: bytemuck::Pod + Send> NpyRows<'_, T> {
    /// Hands `visit` each of `rows` (increasing row numbers; `width` values each) as the file
    /// streams past, a chunk at a time, and hash-checks the whole file meanwhile: an error if
    /// a row is out of order or beyond the file, or the file does not match its hash, in which
    /// case what `visit` was handed must not be used. `spare`, memory that `visit` will fill,
    /// is faulted in on the hashing core while the first chunks are read.
    fn visit(
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
fn packed_rows(rows: &[u64]) -> Option<Vec<u8>> {
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
fn unpacked_rows(mask: &[u8]) -> Vec<u64> {
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

/// A reader that hashes (and counts) what passes through it.
struct HashingReader<R> {
    inner: R,
    digest: Digest,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.write_all(&buf[..n])?;
        Ok(n)
    }
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

/// A file's contents with the digest [`Store::put_contents`] took of them.
struct Hashed<'a> {
    contents: &'a dyn Contents,
    blake3: String,
    bytes: u64,
}

impl Contents for Hashed<'_> {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.contents.write_to(out)
    }
    fn blake3(&self) -> Option<(String, u64)> {
        Some((self.blake3.clone(), self.bytes))
    }
    fn staged_file(&self) -> Option<&Path> {
        self.contents.staged_file()
    }
}

/// Values as an `.npy` file (a row-major matrix, or a vector), written from them in place.
pub(crate) struct Npy<'a, T> {
    values: &'a [T],
    /// Columns, for a matrix.
    columns: Option<usize>,
}

impl<'a, T> Npy<'a, T> {
    fn matrix(values: &'a [T], columns: usize) -> Self {
        Npy { values, columns: Some(columns) }
    }
    fn vector(values: &'a [T]) -> Self {
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

/// A writer that keeps only a digest (BLAKE3, or SHA-256 to check a file written before
/// BLAKE3) and the length of what is written to it.
struct Digest {
    hasher: Hasher,
    bytes: u64,
    /// Called with the BLAKE3 when it matches ([`Sealing::Unsealed`]).
    seal_on_match: Option<Box<dyn FnOnce(String) + Send>>,
}

enum Hasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
    /// No hashing: the file's seal vouches for its BLAKE3 while the file is unchanged.
    Sealed(Seal),
}

impl Default for Digest {
    /// The digest new files are listed by.
    fn default() -> Self {
        Digest { hasher: Hasher::Blake3(Box::default()), bytes: 0, seal_on_match: None }
    }
}

impl Digest {
    /// The digest that checks a file listed as `entry`; none if it lists no digest.
    fn checking(entry: &FileEntry) -> Option<Digest> {
        let hasher = match (&entry.blake3, &entry.sha256) {
            (Some(_), _) => Hasher::Blake3(Box::default()),
            (None, Some(_)) => Hasher::Sha256(sha2::Sha256::default()),
            (None, None) => return None,
        };
        Some(Digest { hasher, bytes: 0, seal_on_match: None })
    }

    /// The digest of a file its seal vouches for: bytes are counted, not hashed.
    fn sealed(seal: Seal) -> Digest {
        Digest { hasher: Hasher::Sealed(seal), bytes: 0, seal_on_match: None }
    }

    /// The hex digest and the length.
    fn finish(self) -> (String, u64) {
        use sha2::Digest as _;
        let hex = match self.hasher {
            Hasher::Blake3(hasher) => hasher.finalize().to_hex().to_string(),
            Hasher::Sha256(sha) => crate::hex(&sha.finalize()),
            // Changed since it was sealed (or while it was read): no digest it could match.
            Hasher::Sealed(seal) if !(seal.unchanged)() => String::new(),
            Hasher::Sealed(seal) => seal.blake3,
        };
        (hex, self.bytes)
    }

    /// True when what was written is the file `entry` lists.
    fn matches(mut self, entry: &FileEntry) -> bool {
        let seal_on_match = self.seal_on_match.take();
        let is_blake3 = !matches!(self.hasher, Hasher::Sha256(_));
        let (hex, bytes) = self.finish();
        let expected = if is_blake3 { &entry.blake3 } else { &entry.sha256 };
        let matched = bytes == entry.bytes && expected.as_deref() == Some(hex.as_str());
        if matched
            && is_blake3
            && let Some(seal) = seal_on_match
        {
            seal(hex);
        }
        matched
    }
}

impl Digest {
    fn update(&mut self, buf: &[u8]) {
        match &mut self.hasher {
            Hasher::Blake3(hasher) => {
                hasher.update(buf);
            }
            Hasher::Sha256(sha) => sha2::Digest::update(sha, buf),
            Hasher::Sealed(_) => {}
        }
        self.bytes += buf.len() as u64;
    }
}

impl Write for Digest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::CsvOptions;
    use std::fs;

    fn table() -> RawTable {
        RawTable::from_csv("score,admitted\n80,1\n20,0\n,1\n".as_bytes(), &CsvOptions::default())
            .expect("valid")
    }

    #[test]
    fn same_content_same_id_and_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("opens");
        let a = store.put_table(&table(), "test", serde_json::json!({})).expect("stores");
        let b = store.put_table(&table(), "test", serde_json::json!({"other": 1})).expect("stores");
        assert_eq!(a, b);
        let back = store.load_table(&a).expect("loads");
        assert_eq!(back.lines, vec![2, 3, 4]);
        assert!(back.x[2].is_nan());
        assert_eq!(store.manifest(&a).expect("manifest").kind, Kind::Dataset);
        assert!(
            fs::read_dir(dir.path().join("tmp")).expect("tmp").next().is_none(),
            "nothing left staged"
        );
    }

    /// Writers of the same content at once (two sweep members freezing the same step): once
    /// one has stored it, readers always find it whole. A later writer used to take the first
    /// one's copy for damaged and move it aside, and in that moment it was not there.
    #[test]
    fn writers_of_the_same_content_at_once_never_hide_it_from_readers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("opens");
        for round in 0..20 {
            let bytes = format!("round {round}\n").repeat(20_000).into_bytes();
            let start = std::sync::Barrier::new(4);
            let stored = std::sync::OnceLock::new();
            let writing = std::sync::atomic::AtomicUsize::new(3);
            let missing = std::thread::scope(|scope| {
                for _ in 0..3 {
                    scope.spawn(|| {
                        start.wait();
                        let put = store.put(
                            Kind::Report,
                            "test",
                            vec![],
                            serde_json::json!({}),
                            vec![("r.txt", bytes.clone())],
                        );
                        if let Ok(id) = &put {
                            let _ = stored.set(id.clone());
                        }
                        // Counted down before any failure is reported, so the reader stops.
                        writing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        put.expect("stores");
                    });
                }
                let reader = scope.spawn(|| {
                    start.wait();
                    let mut missing = 0;
                    while writing.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                        if let Some(id) = stored.get()
                            && let Err(e) = store.verify(id)
                        {
                            if missing == 0 {
                                eprintln!("round {round}: {e}");
                            }
                            missing += 1;
                        }
                    }
                    missing
                });
                reader.join().expect("reader")
            });
            assert_eq!(
                missing, 0,
                "round {round}: an artifact already stored was not found whole {missing} times"
            );
        }
    }

    /// A large file the store wrote is read on its seal's word while it is unchanged. Any write
    /// to it voids the seal: a byte changed in place, the size kept, is refused by the hash as
    /// before, and the file written back as it was is hashed and read again.
    #[test]
    fn a_sealed_file_is_taken_on_its_word_only_while_unchanged() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("opens");
        let table = numbered_table(20_000, 10);
        let id = store.put_table(&table, "test", serde_json::json!({})).expect("stores");
        let seals = dir.path().join("seals").join("artifacts").join(&id);
        assert!(seals.join("x.npy.json").is_file(), "the 1.6 MB x.npy is sealed");
        assert!(!seals.join("y.npy.json").exists(), "a small file is hashed, never sealed");
        let sealed = |store: &Store| is_sealed(store, &id, "x.npy");
        assert!(sealed_once_read(&store, &id, "x.npy"), "read on its seal's word");
        assert_eq!(store.load_table(&id).expect("loads").x, table.x);
        store.verify(&id).expect("whole");

        let path = dir.path().join("artifacts").join(&id).join("x.npy");
        let file = fs::OpenOptions::new().write(true).open(&path).expect("opens for writing");
        let at = fs::metadata(&path).expect("stat").len() - 8;
        let mut byte = [0u8];
        fs::File::open(&path).expect("opens").read_exact_at(&mut byte, at).expect("reads");
        file.write_all_at(&[byte[0] ^ 1], at).expect("writes");
        assert!(!sealed(&store), "a write voids the seal");
        assert!(matches!(store.load_table(&id), Err(StoreError::Corrupt { .. })));
        assert!(store.verify(&id).is_err());
        file.write_all_at(&byte, at).expect("writes back");
        assert!(!sealed(&store));
        assert_eq!(store.load_table(&id).expect("hashed and loaded").x, table.x);

        // Hashed whole and matched, it is sealed again.
        assert!(sealed_once_read(&store, &id, "x.npy"));

        // Written while it is read on its seal's word: refused once read.
        let again = store
            .put_table(&numbered_table(20_001, 10), "test", serde_json::json!({}))
            .expect("stores");
        assert!(sealed_once_read(&store, &again, "x.npy"));
        let (entry, mut reading) =
            store.open_hashing(&again, Kind::Dataset, "x.npy").expect("opens");
        assert!(matches!(reading.digest.hasher, Hasher::Sealed(_)));
        std::io::copy(&mut reading, &mut std::io::sink()).expect("reads");
        let path = dir.path().join("artifacts").join(&again).join("x.npy");
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("opens")
            .write_all_at(b"\x93NUMPY", 0)
            .expect("writes the same bytes");
        assert!(!reading.digest.matches(&entry), "changed since it was sealed");
    }

    fn is_sealed(store: &Store, id: &str, name: &str) -> bool {
        let (_, file) = store.open_hashing(id, Kind::Dataset, name).expect("opens");
        matches!(file.digest.hasher, Hasher::Sealed(_))
    }

    /// Whether the file is read on a seal's word, after as many whole readings as it takes: a
    /// seal made in the clock tick of the file's last change is not trusted, and each reading
    /// that hashes the file seals it anew, until a seal is newer than the change.
    fn sealed_once_read(store: &Store, id: &str, name: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !is_sealed(store, id, name) {
            if std::time::Instant::now() > deadline || store.verify(id).is_err() {
                return false;
            }
        }
        true
    }

    /// A seal vouches only for the digest it names and the file state it was made for.
    #[test]
    fn a_seal_for_another_digest_or_file_is_not_taken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("opens");
        let table = numbered_table(20_000, 10);
        let id = store.put_table(&table, "test", serde_json::json!({})).expect("stores");
        let seal = dir.path().join("seals").join("artifacts").join(&id).join("x.npy.json");
        assert!(sealed_once_read(&store, &id, "x.npy"));
        let original = fs::read_to_string(&seal).expect("sealed");
        let sealed = || is_sealed(&store, &id, "x.npy");
        let value: serde_json::Value = serde_json::from_str(&original).expect("parses");
        let blake3 = value["blake3"].as_str().expect("names a digest").to_string();
        let elsewhere = dir.path().join("tmp").join("seal");
        for forged in [
            original.replace(&blake3, &"0".repeat(64)),
            original.replace("\"inode\":", "\"inode\":1"),
            "{".into(),
            "x".repeat(5000),
        ] {
            // Written elsewhere and moved in, so the seal file is newer than the file it seals.
            fs::write(&elsewhere, &forged).expect("writes");
            fs::rename(&elsewhere, &seal).expect("moves");
            assert!(!sealed(), "{forged:.80}");
            assert_eq!(store.load_table(&id).expect("hashed and loaded").x, table.x);
            // (Loaded, it is sealed again as it is: the next forgery replaces that seal.)
        }
        fs::write(&elsewhere, &original).expect("writes");
        fs::rename(&elsewhere, &seal).expect("moves");
        assert!(sealed(), "the seal as written");
    }

    #[test]
    fn corrupt_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("opens");
        let id = store.put_table(&table(), "test", serde_json::json!({})).expect("stores");
        let path = dir.path().join("artifacts").join(&id).join("y.npy");
        let mut bytes = fs::read(&path).expect("reads");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).expect("writes");
        assert!(matches!(store.load_table(&id), Err(StoreError::Corrupt { .. })));
        fs::write(&path, &bytes[..10]).expect("truncates");
        assert!(matches!(store.load_table(&id), Err(StoreError::Corrupt { .. })));
        assert!(matches!(store.load_table("nothex"), Err(StoreError::BadId(_))));
        assert!(matches!(store.load_table(&"0".repeat(64)), Err(StoreError::NotFound(_))));
        assert!(matches!(
            store.load_split_part(&id, SplitPart::Train),
            Err(StoreError::WrongKind { .. })
        ));
    }

    #[test]
    fn staging_left_by_a_dead_writer_is_cleared_at_open_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tmp = dir.path().join("tmp");
        let dead = tmp.join(format!("{}.999999999.1", "a".repeat(64)));
        let live = tmp.join(format!("{}.{}.1", "b".repeat(64), std::process::id()));
        for staging in [&dead, &live] {
            fs::create_dir_all(staging).expect("mkdir");
            fs::write(staging.join("x.npy"), vec![0u8; 4096]).expect("half-written file");
        }
        Store::open(dir.path()).expect("opens");
        assert!(!dead.exists(), "a dead writer's staging is removed");
        assert!(live.exists(), "a live writer's staging is left to it");
    }

    #[test]
    fn a_damaged_artifact_is_not_reused_and_storing_it_again_heals_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("opens");
        let id = store.put_table(&table(), "test", serde_json::json!({})).expect("stores");
        let key = step_key("ingest", &[], &serde_json::json!({}));
        let record = StepRecord {
            outputs: [("dataset".to_string(), id.clone())].into(),
            summary: serde_json::Value::Null,
        };
        store.step_record(&key, &record).expect("records");
        let artifact = dir.path().join("artifacts").join(&id);
        // A flipped byte in a data file: the cache does not reuse it; storing again replaces it.
        let mut bytes = fs::read(artifact.join("x.npy")).expect("reads");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(artifact.join("x.npy"), &bytes).expect("damages");
        assert_eq!(store.step_lookup(&key), None);
        assert_eq!(
            store.put_table(&table(), "test", serde_json::json!({})).expect("stores again"),
            id
        );
        assert_eq!(store.load_table(&id).expect("whole again").lines, vec![2, 3, 4]);
        assert_eq!(store.step_lookup(&key), Some(record));
        // The manifest deleted (this used to fail with "Directory not empty"): the same.
        fs::remove_file(artifact.join("manifest.json")).expect("removes");
        assert_eq!(
            store.put_table(&table(), "test", serde_json::json!({})).expect("stores again"),
            id
        );
        assert!(store.verify(&id).is_ok());
        assert!(
            fs::read_dir(dir.path().join("tmp")).expect("tmp").next().is_none(),
            "nothing left aside"
        );
    }

    #[test]
    fn step_cache_needs_its_outputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("opens");
        let id = store.put_table(&table(), "test", serde_json::json!({})).expect("stores");
        let key = step_key("ingest", &[], &serde_json::json!({"path": "x"}));
        assert_ne!(key, step_key("ingest", &[], &serde_json::json!({"path": "y"})));
        let record = StepRecord {
            outputs: [("dataset".to_string(), id.clone())].into(),
            summary: serde_json::Value::Null,
        };
        store.step_record(&key, &record).expect("records");
        assert_eq!(store.step_lookup(&key), Some(record));
        fs::remove_dir_all(dir.path().join("artifacts").join(&id)).expect("removes");
        assert_eq!(store.step_lookup(&key), None);
    }

    #[test]
    fn npy_files_are_written_as_owned_arrays_write_them_and_read_back_in_place() {
        let (rows, d) = (1234, 3);
        let x: Vec<f64> = (0..rows * d).map(|i| i as f64 * 0.5 - 7.0).collect();
        let mut owned = Vec::new();
        ndarray::Array2::from_shape_vec((rows, d), x.clone())
            .expect("shape")
            .write_npy(&mut owned)
            .expect("npy");
        let mut streamed = Vec::new();
        Npy::matrix(&x, d).write_to(&mut streamed).expect("npy");
        assert_eq!(streamed, owned, "the same bytes, so the same artifact ids as before");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let table = RawTable {
            feature_names: vec!["a".into(), "b".into(), "c".into()],
            label_name: "y".into(),
            kinds: vec![ColumnKind::Numeric; 3],
            x: x.clone(),
            y: (0..rows).map(|i| (i % 2) as f64).collect(),
            lines: (2..rows as u64 + 2).collect(),
            ..RawTable::default()
        };
        let id = store.put_table(&table, "test", serde_json::json!({})).expect("put");
        let back = store.load_table(&id).expect("load");
        assert_eq!((back.x, back.y, back.lines), (table.x, table.y, table.lines));
    }

    #[test]
    fn an_npy_file_that_is_whole_but_not_a_matrix_is_refused_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let columns = Columns {
            feature_names: vec!["a".into()],
            label_name: "y".into(),
            kinds: stored_kinds(&[ColumnKind::Numeric]),
            classes: None,
            missing: None,
            roles: Default::default(),
        };
        let columns = json_bytes(&columns).expect("json");
        let npy = |contents: &dyn Contents| {
            let mut out = Vec::new();
            contents.write_to(&mut out).expect("npy");
            out
        };
        for x in [b"not an npy file".to_vec(), npy(&Npy::vector(&[1.0f64, 2.0]))] {
            let files = vec![
                ("x.npy", x),
                ("y.npy", npy(&Npy::vector(&[1.0f64]))),
                ("lines.npy", npy(&Npy::vector(&[2u64]))),
                ("columns.json", columns.clone()),
            ];
            let id = store
                .put(Kind::Dataset, "test", Vec::new(), serde_json::json!({}), files)
                .expect("put");
            match store.load_table(&id) {
                Err(StoreError::Corrupt { detail, .. }) => {
                    assert!(detail.contains("x.npy"), "{detail}")
                }
                other => panic!("refused as corrupt, not {other:?}"),
            }
        }
    }

    fn numbered_table(rows: usize, d: usize) -> RawTable {
        RawTable {
            feature_names: (0..d).map(|j| format!("x{j}")).collect(),
            label_name: "y".into(),
            kinds: vec![ColumnKind::Numeric; d],
            x: (0..rows * d).map(|i| i as f64 + 0.25).collect(),
            y: (0..rows).map(|i| (i % 3 == 0) as u8 as f64).collect(),
            lines: (2..rows as u64 + 2).collect(),
            ..RawTable::default()
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]
        /// A split stored as row numbers gives each part the rows of its dataset it names, in
        /// order, whatever the rows and wherever they fall against the chunks read.
        #[test]
        fn a_split_of_rows_reads_back_the_rows_it_names(
            rows in 1usize..3 * PICK_CHUNK_BYTES / 8,
            d in 1usize..4,
            seed in proptest::num::u64::ANY,
        ) {
            // About 30% of the rows, drawn from the seed (a vector of as many picks took
            // proptest longer to make than the test to run).
            let picks: Vec<bool> =
                (0..rows as u64).map(|i| (i ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) % 10 < 3).collect();
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(dir.path()).expect("store");
            let table = numbered_table(rows, d);
            let id = store.put_table(&table, "test", serde_json::json!({})).expect("put");
            let train: Vec<u64> = (0..rows as u64).filter(|&i| picks[i as usize]).collect();
            let test: Vec<u64> = (0..rows as u64).filter(|&i| !picks[i as usize]).collect();
            let split = SplitRows { sources: SplitSources { train: id.clone(), test: id.clone() }, train: train.clone(), test };
            let columns = store.load_labels(&id).expect("labels").columns;
            let split_id = store.put_split_rows(&columns, &split, &SplitReport::default(), vec![id.clone()], serde_json::json!({})).expect("split");
            let part = store.load_split_part(&split_id, SplitPart::Train).expect("train part");
            let expected_x: Vec<f64> = train.iter().flat_map(|&i| table.x[i as usize * d..(i as usize + 1) * d].to_vec()).collect();
            let expected_y: Vec<f64> = train.iter().map(|&i| table.y[i as usize]).collect();
            // Each row handed over with its own label.
            let with_labels = store
                .load_split_part_with(&split_id, SplitPart::Train, |row, label, x| {
                    x.extend_from_slice(row);
                    x.push(label);
                })
                .expect("train part, rows with labels");
            let expected_with_labels: Vec<f64> =
                train.iter().flat_map(|&i| [&table.x[i as usize * d..(i as usize + 1) * d], &[table.y[i as usize]][..]].concat()).collect();
            proptest::prop_assert_eq!(with_labels.x, expected_with_labels);
            let mut visited = Vec::new();
            store.visit_split_part(&split_id, SplitPart::Train, |row| visited.extend_from_slice(row)).expect("visits the train part");
            proptest::prop_assert_eq!(&visited, &expected_x, "the rows visited are the rows loaded");
            proptest::prop_assert_eq!((&part.x, &part.y, &part.feature_names), (&expected_x, &expected_y, &table.feature_names));
            let test_part = store.load_split_part(&split_id, SplitPart::Test).expect("test part");
            let expected_test_y: Vec<f64> = split.test.iter().map(|&i| table.y[i as usize]).collect();
            proptest::prop_assert_eq!(&test_part.y, &expected_test_y);
            // Each part taken out of the dataset's rows loaded whole is the part loaded.
            for (part, loaded) in [(SplitPart::Train, &part), (SplitPart::Test, &test_part)] {
                let whole = store.load_dataset_rows(&id).expect("the dataset's rows");
                proptest::prop_assert_eq!(&store.take_split_part(&split_id, part, whole).expect("taken"), loaded);
            }
        }

        /// A mask gives back the rows it was made of, and is made only when smaller than the
        /// rows' numbers.
        #[test]
        fn a_mask_holds_exactly_its_rows(rows in proptest::collection::btree_set(0u64..5000, 0..300)) {
            let rows: Vec<u64> = rows.into_iter().collect();
            match packed_rows(&rows) {
                Some(mask) => {
                    proptest::prop_assert!(mask.len() < rows.len() * 8);
                    proptest::prop_assert_eq!(unpacked_rows(&mask), rows);
                }
                None => proptest::prop_assert!(rows.last().is_none_or(|&last| last / 8 + 1 >= rows.len() as u64 * 8)),
            }
        }
    }

    /// A dense part is stored as a mask in numpy's `packbits` order, a sparse one as its row
    /// numbers; both read back, and a mask naming a row its dataset lacks is refused.
    #[test]
    fn split_parts_are_masks_where_smaller_and_numbers_elsewhere() {
        assert_eq!(
            packed_rows(&[0, 9, 10]),
            Some(vec![0x80, 0x60]),
            "np.packbits([1,0,0,0,0,0,0,0, 0,1,1])"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let id =
            store.put_table(&numbered_table(1000, 2), "test", serde_json::json!({})).expect("put");
        let columns = store.load_labels(&id).expect("labels").columns;
        let split_of = |train: Vec<u64>, test: Vec<u64>| {
            let rows = SplitRows {
                sources: SplitSources { train: id.clone(), test: id.clone() },
                train,
                test,
            };
            store
                .put_split_rows(
                    &columns,
                    &rows,
                    &SplitReport::default(),
                    vec![],
                    serde_json::json!({}),
                )
                .expect("split")
        };
        let split = split_of((0..1000).filter(|i| i % 5 != 0).collect(), vec![2, 998]);
        let files: Vec<String> =
            store.manifest(&split).expect("manifest").files.into_keys().collect();
        assert!(
            files.contains(&"train_mask.npy".to_string())
                && files.contains(&"test_rows.npy".to_string()),
            "{files:?}"
        );
        assert_eq!(store.load_split_part(&split, SplitPart::Train).expect("train").rows(), 800);
        assert_eq!(
            store.load_split_part(&split, SplitPart::Test).expect("test").x,
            vec![4.25, 5.25, 1996.25, 1997.25]
        );
        let beyond = split_of((0..=1000).collect(), vec![]);
        match store.load_split_part(&beyond, SplitPart::Train) {
            Err(StoreError::Corrupt { detail, .. }) => {
                assert!(detail.contains("row 1000 asked for, but it has 1000"), "{detail}")
            }
            other => panic!("refused, not {other:?}"),
        }
        match store.take_split_part(
            &beyond,
            SplitPart::Train,
            store.load_dataset_rows(&id).expect("rows"),
        ) {
            Err(StoreError::Corrupt { detail, .. }) => {
                assert!(detail.contains("row 1000 asked for, but it has 1000"), "{detail}")
            }
            other => panic!("taken out of the rows loaded whole, refused too, not {other:?}"),
        }
    }

    /// A part is taken out only of its own dataset's rows: given another's (here a dataset's,
    /// then the part's own dataset's, which `put_split` stores it as), it is loaded from the
    /// store.
    #[test]
    fn a_part_is_taken_out_of_its_own_datasets_rows_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let (ours, theirs) = (numbered_table(100, 2), numbered_table(300, 2));
        let id = store.put_table(&ours, "test", serde_json::json!({})).expect("put");
        let other = store.put_table(&theirs, "test", serde_json::json!({})).expect("put another");
        let columns = store.load_labels(&id).expect("labels").columns;
        let rows = SplitRows {
            sources: SplitSources { train: id.clone(), test: id.clone() },
            train: (0..80).collect(),
            test: (80..100).collect(),
        };
        let split = store
            .put_split_rows(&columns, &rows, &SplitReport::default(), vec![], serde_json::json!({}))
            .expect("split");
        let loaded = store.load_split_part(&split, SplitPart::Train).expect("loaded");
        assert_eq!(loaded.x[..4], [0.25, 1.25, 2.25, 3.25]);
        let their_rows = store.load_dataset_rows(&other).expect("their rows");
        assert_eq!(their_rows.id(), other);
        assert_eq!(
            store.take_split_part(&split, SplitPart::Train, their_rows).expect("loaded instead"),
            loaded
        );
        let copies = Split {
            train: Dataset {
                x: vec![1.0, 2.0],
                y: vec![1.0],
                feature_names: vec!["a".into(), "b".into()],
                ..Dataset::default()
            },
            test: Dataset::default(),
        };
        let copied = store
            .put_split(&copies, &SplitReport::default(), vec![], serde_json::json!({}))
            .expect("split of copies");
        let taken = store
            .take_split_part(&copied, SplitPart::Train, store.load_dataset_rows(&id).expect("rows"))
            .expect("loaded instead");
        assert_eq!((taken.x, taken.y), (vec![1.0, 2.0], vec![1.0]));
    }

    /// Rows kept in place are the rows asked for, in order, from wherever the values start.
    #[test]
    fn rows_kept_in_place_are_the_rows_asked_for() {
        let mut values: Vec<u32> = (0..23).collect();
        keep_rows(&mut values, 3, 2, &[0, 1, 2, 5, 7, 8, 9]);
        assert_eq!(values, [3, 4, 5, 6, 7, 8, 13, 14, 17, 18, 19, 20, 21, 22]);
        let mut none: Vec<u32> = (0..10).collect();
        keep_rows(&mut none, 0, 5, &[]);
        assert!(none.is_empty() && none.capacity() == 0, "nothing kept, nothing held");
    }

    /// The rows a split names are read only from a whole source: a damaged dataset, a row it
    /// does not have, and a lying header are refused by name, and nothing is returned.
    #[test]
    fn a_split_of_rows_refuses_a_damaged_source_and_rows_it_lacks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let id = store
            .put_table(&numbered_table(10_000, 3), "test", serde_json::json!({}))
            .expect("put");
        let columns = store.load_labels(&id).expect("labels").columns;
        assert_eq!(columns.missing, Some(vec![0, 0, 0]), "the dataset counts its missing cells");
        let split_of = |train: Vec<u64>| {
            let rows = SplitRows {
                sources: SplitSources { train: id.clone(), test: id.clone() },
                train,
                test: vec![1],
            };
            store
                .put_split_rows(
                    &columns,
                    &rows,
                    &SplitReport::default(),
                    vec![],
                    serde_json::json!({}),
                )
                .expect("split")
        };
        let beyond = split_of(vec![5, 10_000]);
        match store.load_split_part(&beyond, SplitPart::Train) {
            Err(StoreError::Corrupt { detail, .. }) => {
                assert!(detail.contains("row 10000 asked for, but it has 10000"), "{detail}")
            }
            other => panic!("refused, not {other:?}"),
        }
        match store.visit_split_part(&beyond, SplitPart::Train, |_| {}) {
            Err(StoreError::Corrupt { detail, .. }) => {
                assert!(detail.contains("row 10000 asked for, but it has 10000"), "{detail}")
            }
            other => panic!("visiting refused too, not {other:?}"),
        }
        let unordered = SplitRows {
            sources: SplitSources { train: id.clone(), test: id.clone() },
            train: vec![3, 2],
            test: vec![],
        };
        assert!(
            store
                .put_split_rows(
                    &columns,
                    &unordered,
                    &SplitReport::default(),
                    vec![],
                    serde_json::json!({})
                )
                .is_err()
        );
        let good = split_of(vec![0, 9_999]);
        assert_eq!(
            store.load_split_part(&good, SplitPart::Train).expect("whole").x,
            vec![0.25, 1.25, 2.25, 29_997.25, 29_998.25, 29_999.25]
        );
        let path = dir.path().join("artifacts").join(&id).join("x.npy");
        let whole = fs::read(&path).expect("reads");
        let mut bytes = whole.clone();
        bytes[whole.len() / 2] ^= 1;
        fs::write(&path, &bytes).expect("damages");
        match store.load_split_part(&good, SplitPart::Train) {
            Err(StoreError::Corrupt { detail, .. }) => {
                assert!(detail.contains("x.npy does not match its hash"), "{detail}")
            }
            other => panic!("refused, not {other:?}"),
        }
        match store.visit_split_part(&good, SplitPart::Train, |_| {}) {
            Err(StoreError::Corrupt { detail, .. }) => {
                assert!(detail.contains("x.npy does not match its hash"), "{detail}")
            }
            other => panic!("visiting refused too, not {other:?}"),
        }
        assert!(store.verify(&good).is_err(), "a split is whole only with the rows it names");
        // A header that claims to be longer than the file: refused before it is read.
        let mut bytes = whole.clone();
        bytes[6] = 2;
        bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        fs::write(&path, &bytes).expect("damages");
        match store.load_split_part(&good, SplitPart::Train) {
            Err(StoreError::Corrupt { detail, .. }) => {
                assert!(
                    detail.contains("x.npy: its header says it is 4294967307 bytes long"),
                    "{detail}"
                )
            }
            other => panic!("refused, not {other:?}"),
        }
        fs::write(&path, &whole).expect("mends");
        assert!(store.load_split_part(&good, SplitPart::Test).is_ok());
        assert!(store.verify(&good).is_ok());
    }

    /// Artifacts written before BLAKE3 list SHA-256 digests: they still read, checked by them.
    #[test]
    fn an_artifact_listed_by_sha256_is_still_read_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let bytes = br#"{"a": 1}"#.to_vec();
        let id = "ab".repeat(32);
        let files = [(
            "r.json".to_string(),
            FileEntry { blake3: None, sha256: Some(sha256_hex(&bytes)), bytes: bytes.len() as u64 },
        )];
        let manifest = Manifest {
            id: id.clone(),
            kind: Kind::Report,
            producer: "test".into(),
            inputs: vec![],
            params: serde_json::json!({}),
            created_unix_ms: 0,
            files: files.into_iter().collect(),
        };
        let manifest = json_bytes(&manifest).expect("json");
        store
            .storage
            .commit(&id, &[("r.json", &bytes), ("manifest.json", &manifest)], &|| false)
            .expect("commits");
        assert_eq!(
            store.read_json::<serde_json::Value>(&id, Kind::Report, "r.json").expect("reads")["a"],
            1
        );
        fs::write(dir.path().join("artifacts").join(&id).join("r.json"), br#"{"a": 2}"#)
            .expect("damages");
        assert!(matches!(store.read(&id, Kind::Report, "r.json"), Err(StoreError::Corrupt { .. })));
    }

    /// Splits stored before their rows were numbers (the parts' rows copied into the split)
    /// still read.
    #[test]
    fn a_split_stored_with_its_rows_copied_still_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let npy = |contents: &dyn Contents| {
            let mut out = Vec::new();
            contents.write_to(&mut out).expect("npy");
            out
        };
        let columns = Columns {
            feature_names: vec!["a".into(), "b".into()],
            label_name: "y".into(),
            kinds: vec![],
            classes: None,
            missing: None,
            roles: Default::default(),
        };
        let files = vec![
            ("train_x.npy", npy(&Npy::matrix(&[1.0f64, 2.0, 3.0, 4.0], 2))),
            ("train_y.npy", npy(&Npy::vector(&[0.0f64, 1.0]))),
            ("test_x.npy", npy(&Npy::matrix(&[5.0f64, 6.0], 2))),
            ("test_y.npy", npy(&Npy::vector(&[1.0f64]))),
            ("columns.json", json_bytes(&columns).expect("json")),
            ("report.json", json_bytes(&SplitReport::default()).expect("json")),
        ];
        let id = store
            .put(Kind::Split, "preprocess", vec![], serde_json::json!({}), files)
            .expect("put");
        let train = store.load_split_part(&id, SplitPart::Train).expect("train");
        assert_eq!((train.x, train.y), (vec![1.0, 2.0, 3.0, 4.0], vec![0.0, 1.0]));
        assert_eq!(store.load_split_part(&id, SplitPart::Test).expect("test").x, vec![5.0, 6.0]);
    }

    #[test]
    fn consecutive_lines_are_stored_as_runs_and_scattered_lines_one_per_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let rows = 1000;
        for (lines, file, bytes) in [
            // A file's rows with a header and no blank lines: one run, 16 bytes of values.
            ((2..rows as u64 + 2).collect::<Vec<u64>>(), "line_runs.npy", 16),
            // Every other line blank: a run per row would be larger than a line per row.
            ((0..rows as u64).map(|i| 2 + 2 * i).collect(), "lines.npy", 8 * rows as u64),
            // A blank line in the middle: two runs.
            (
                (0..rows as u64).map(|i| if i < 500 { 2 + i } else { 3 + i }).collect(),
                "line_runs.npy",
                32,
            ),
        ] {
            let table = RawTable {
                y: vec![1.0; rows],
                x: vec![0.5; rows],
                lines: lines.clone(),
                ..table()
            };
            let id = store.put_table(&table, "test", serde_json::json!({})).expect("put");
            let manifest = store.manifest(&id).expect("manifest");
            let names: Vec<&String> = manifest.files.keys().collect();
            assert_eq!(names, ["columns.json", file, "x.npy", "y.npy"], "{lines:?}");
            // The values after the .npy header (128 bytes as ndarray-npy writes them).
            assert_eq!(manifest.files[file].bytes, 128 + bytes, "{file}");
            assert_eq!(store.load_table(&id).expect("reads").lines, lines);
            assert_eq!(store.load_labels(&id).expect("labels").lines, lines);
        }
    }

    #[test]
    fn line_runs_no_writer_makes_are_refused() {
        for (runs, rows) in [
            (vec![1, 5], 3),              // the first run is not at row 0
            (vec![0, 2, 0, 7], 3),        // a run of no rows
            (vec![0, 2, 2, 9, 1, 20], 3), // runs out of order
            (vec![0, 2, 5, 9], 3),        // a run past the rows
            (vec![0, u64::MAX - 1], 5),   // past the largest line number
            (vec![], 2),                  // no runs for two rows
        ] {
            assert!(lines_from_runs(&runs, rows).is_err(), "{runs:?} for {rows} rows");
        }
        assert_eq!(lines_from_runs(&[], 0), Ok(vec![]));
        assert_eq!(lines_from_runs(&[0, u64::MAX - 1], 2), Ok(vec![u64::MAX - 1, u64::MAX]));
    }

    proptest::proptest! {
        /// Numbers stored in JSON artifacts (a model's coefficients, a transform's offsets and
        /// scales) read back bit for bit. serde_json's default parsing of floats misses by an
        /// ulp about one value in ten (97,419 of 1,000,000 uniform ones, measured); the
        /// workspace enables its `float_roundtrip`, which reads them exactly.
        #[test]
        fn numbers_in_json_artifacts_read_back_bit_for_bit(
            values in proptest::collection::vec(
                proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO | proptest::num::f64::NEGATIVE,
                64..65,
            ),
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(dir.path()).expect("store");
            let id = store.put_json(Kind::Report, "test", Vec::new(), serde_json::json!({}), "values.json", &values).expect("put");
            let back: Vec<f64> = store.read_json(&id, Kind::Report, "values.json").expect("read");
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
            proptest::prop_assert_eq!(bits(&back), bits(&values));
        }

        /// Any lines, in any order, come back from their runs as they were.
        #[test]
        fn lines_come_back_from_their_runs(
            steps in proptest::collection::vec((proptest::sample::select(vec![1u64, 1, 1, 0, 2, 7]), proptest::bool::weighted(0.05)), 0..200),
            start in proptest::sample::select(vec![0u64, 1, 2, u64::MAX - 300]),
        ) {
            let mut line = start;
            let lines: Vec<u64> = steps
                .iter()
                .map(|&(step, back)| {
                    line = if back { line.saturating_sub(step * 3) } else { line.saturating_add(step) };
                    line
                })
                .collect();
            let runs = line_runs(&lines);
            proptest::prop_assert_eq!(lines_from_runs(&runs, lines.len()), Ok(lines));
        }
    }
}
