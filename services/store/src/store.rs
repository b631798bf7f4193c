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
//! An artifact's id is the SHA-256 of its kind and its files' BLAKE3 digests, so the same
//! content is stored once. (Artifacts written before BLAKE3 list SHA-256 digests, and are
//! checked by them.)
//! Its manifest is written last: an artifact without one does not exist to any reader, so a
//! crash mid-write leaves nothing anyone will look at. Reads check every file against the
//! manifest's hash, so a truncated or altered file is refused, never loaded.
//!
//! What artifacts hold is read and written in [`crate::datasets`], [`crate::splits`] and
//! [`crate::npy`]; files are checked by [`crate::digest`].

use crate::digest::Digest;
use crate::digest::{FileEntry, HASH_CHUNK_BYTES, Hasher, HashingReader};
use crate::registry::{Registry, RegistryStorage};
use crate::storage::{Contents, Sealing, Storage, StoreError};
use crate::storage::{StoredObject, now_unix_ms};
use logitflow_core::sha256_hex;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

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

/// The datasets a split's parts take their rows from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitSources {
    pub train: String,
    pub test: String,
}

/// The artifact store over a [`Storage`]. Cheap to clone; nothing is cached in memory, so
/// several processes (on one disk, or on many machines sharing a bucket) can share it.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) storage: Arc<dyn Storage>,
    registry: Arc<dyn RegistryStorage>,
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
    /// The store on any [`Storage`].
    pub fn on<S: Storage + RegistryStorage + 'static>(storage: Arc<S>) -> Store {
        Store { storage: storage.clone(), registry: storage }
    }

    /// The registry kept beside these artifacts.
    pub fn registry(&self) -> Registry {
        Registry::on(self.registry.clone())
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
    pub(crate) fn put_contents(
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
                        &mut std::io::BufReader::with_capacity(HASH_CHUNK_BYTES, &mut file),
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
    pub(crate) fn read_into<T: bytemuck::Pod>(
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
        for chunk in bytes.chunks_mut(HASH_CHUNK_BYTES) {
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
    pub(crate) fn open_hashing(
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

pub(crate) fn json_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(value).map_err(|e| StoreError::io(Path::new("json"), e.into()))
}

pub(crate) fn hash_mismatch(id: &str, name: &str, entry: &FileEntry) -> StoreError {
    StoreError::Corrupt {
        id: id.to_string(),
        detail: format!("{name} does not match its hash ({} bytes)", entry.bytes),
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
