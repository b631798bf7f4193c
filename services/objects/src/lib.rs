//! The store beyond one machine: [`S3Storage`], the [`Storage`] and [`RegistryStorage`] of
//! `s3://bucket/prefix` in any S3-compatible object store, and [`open_store`], which turns a
//! store URI (`file://` or `s3://`) into a [`Store`]; and [`S3Object`], one object read where it
//! lies, for data given as `s3://bucket/key`.
//!
//! The layout under the prefix is the home's (`artifacts/<id>/…`, `steps/<key>.json`,
//! `registry.json`), and so are the guarantees, kept by the object store's own conditional
//! writes rather than by renames and locks:
//! - an artifact's `manifest.json` is written last, create-if-absent (`If-None-Match: *`): it
//!   is the commit point, so a reader never finds an artifact whose files are not all there;
//! - the registry is updated by compare-and-swap on its ETag (`If-Match`), retried on conflict
//!   with the change run again on the newer registry, so runs on different machines neither
//!   lose nor duplicate a version; each state it commits is also kept as an object of its own,
//!   `registry.log/<generation>.json`, so that a `registry.json` deleted or damaged is read
//!   (and written again) from the log's newest state.
//!
//! Settings come from the standard variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL` (an S3-compatible server) and `AWS_ALLOW_HTTP`.
//!
//! [`Storage`]'s methods block (the store is called from blocking threads); each call here is
//! run on one runtime of this crate's own and waited for, so it works from any thread.

mod object;
pub use object::S3Object;

use bytes::Bytes;
use futures::StreamExt;
use logitflow_store::registry::{Registry, RegistryData, RegistryError, RegistryStorage};
use logitflow_store::{Contents, Sealing, Storage, Store, StoreError, StoredObject};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    MultipartUpload, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Opens the store a URI names: `file:///path` (a home directory), `s3://bucket/prefix`, or,
/// when there is no URI, the home directory `home` itself.
pub fn open_store(uri: Option<&str>, home: &Path) -> Result<Store, StoreError> {
    match locate(uri, home)? {
        Location::Home(path) => Store::open(path),
        Location::S3(uri) => Ok(Store::on(Arc::new(S3Storage::from_env(&uri)?))),
    }
}

/// The storage itself of the store a URI names ([`open_store`]), creating nothing: for what
/// the console keeps beside the artifacts (run reports).
pub fn open_storage(uri: Option<&str>, home: &Path) -> Result<Arc<dyn Storage>, StoreError> {
    match locate(uri, home)? {
        Location::Home(path) => Ok(Arc::new(logitflow_store::home::HomeStorage::at(path))),
        Location::S3(uri) => Ok(Arc::new(S3Storage::from_env(&uri)?)),
    }
}

/// The registry of the store a URI names ([`open_store`]), creating nothing: what a command
/// that only reads the registry opens.
pub fn open_registry(uri: Option<&str>, home: &Path) -> Result<Registry, StoreError> {
    Ok(match locate(uri, home)? {
        Location::Home(path) => Registry::open(path),
        Location::S3(uri) => Registry::on(Arc::new(S3Storage::from_env(&uri)?)),
    })
}

/// Where a store URI points.
enum Location {
    Home(PathBuf),
    S3(String),
}

fn locate(uri: Option<&str>, home: &Path) -> Result<Location, StoreError> {
    match uri.map(str::trim).filter(|u| !u.is_empty()) {
        None => Ok(Location::Home(home.to_path_buf())),
        Some(uri) => match uri.split_once("://") {
            Some(("file", path)) if path.starts_with('/') => {
                Ok(Location::Home(PathBuf::from(path)))
            }
            Some(("file", _)) => Err(bad_uri(
                uri,
                "a file:// store needs an absolute path, as in file:///var/lib/logitflow",
            )),
            Some(("s3", _)) => {
                parse_s3_uri(uri)?;
                Ok(Location::S3(uri.to_string()))
            }
            Some((scheme, _)) => Err(bad_uri(
                uri,
                &format!("{scheme}:// is not a store: use file:///path or s3://bucket/prefix"),
            )),
            None => Err(bad_uri(uri, "not a URI: use file:///path or s3://bucket/prefix")),
        },
    }
}

fn bad_uri(uri: &str, why: &str) -> StoreError {
    StoreError::Remote { uri: uri.to_string(), detail: why.to_string() }
}

/// The bucket and prefix of `s3://bucket/prefix` (the prefix may be empty).
fn parse_s3_uri(uri: &str) -> Result<(String, String), StoreError> {
    let rest = uri.strip_prefix("s3://").ok_or_else(|| bad_uri(uri, "not an s3:// URI"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        return Err(bad_uri(
            uri,
            &format!(
                "{bucket:?} is not a bucket name: 3 to 63 lowercase letters, digits, '-' or '.'"
            ),
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|part| part == "." || part == "..") {
        return Err(bad_uri(uri, "the prefix may not hold '.' or '..'"));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// The runtime every call of this crate runs on: never dropped (dropping a runtime inside
/// another's async context panics, and a service's state is dropped in one).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        #[allow(clippy::expect_used)] // No runtime means no threads: nothing here can work.
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("logitflow-s3")
            .enable_all()
            .build()
            .expect("the object store's runtime starts")
    })
}

/// Runs `future` on [`runtime`] and waits for it, from any thread that may block.
fn wait<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().map_err(|_| "the object store's runtime stopped".to_string())
}

/// Files at least this large go up in parts of this size (S3 takes parts of 5 MiB and more).
const PART_BYTES: usize = 8 << 20;

/// How many times a registry update is tried against writers that changed it meanwhile.
const REGISTRY_ATTEMPTS: u32 = 64;

/// An S3 bucket (or a prefix in one) as a [`Storage`].
#[derive(Debug)]
pub struct S3Storage {
    uri: String,
    prefix: String,
    s3: Arc<AmazonS3>,
}

impl S3Storage {
    /// The storage of `s3://bucket/prefix`, with credentials, region and endpoint from the
    /// standard `AWS_*` variables. Nothing is sent until the first call.
    pub fn from_env(uri: &str) -> Result<S3Storage, StoreError> {
        S3Storage::with_settings(uri, [])
    }

    /// [`S3Storage::from_env`] with some settings given here instead, by the names of the
    /// variables in lower case (`aws_endpoint_url`, `aws_access_key_id`, …).
    pub fn with_settings<'a>(
        uri: &str,
        settings: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<S3Storage, StoreError> {
        let (bucket, prefix) = parse_s3_uri(uri)?;
        let mut builder = AmazonS3Builder::from_env();
        for (name, value) in settings {
            let key =
                name.parse().map_err(|e: object_store::Error| bad_uri(uri, &e.to_string()))?;
            builder = builder.with_config(key, value);
        }
        let s3 =
            builder.with_bucket_name(&bucket).build().map_err(|e| bad_uri(uri, &e.to_string()))?;
        Ok(S3Storage {
            uri: format!("s3://{bucket}/{prefix}").trim_end_matches('/').to_string(),
            prefix,
            s3: Arc::new(s3),
        })
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn failed(&self, key: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Remote { uri: format!("{}/{key}", self.uri), detail: e.to_string() }
    }

    /// Runs one request and waits for it; a stopped runtime is an error of `key`.
    fn call<T: Send + 'static>(
        &self,
        key: &str,
        request: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> Result<object_store::Result<T>, StoreError> {
        wait(request).map_err(|e| self.failed(key, e))
    }

    /// An object's bytes and ETag, or `None` when absent.
    fn get_whole(&self, key: &str, limit: u64) -> Result<Option<Tagged>, StoreError> {
        let (s3, path) = (self.s3.clone(), self.path(key));
        let got = self.call(key, async move {
            let result = s3.get(&path).await?;
            let (size, e_tag) = (result.meta.size, result.meta.e_tag.clone());
            if size > limit {
                return Ok((None, size, e_tag));
            }
            Ok((Some(result.bytes().await?), size, e_tag))
        })?;
        match got {
            Ok((Some(bytes), _, e_tag)) => Ok(Some((bytes.to_vec(), e_tag))),
            Ok((None, size, _)) => {
                Err(self.failed(key, format!("{size} bytes, more than the {limit} expected")))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed(key, e)),
        }
    }

    fn put(
        &self,
        key: &str,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<object_store::Result<object_store::PutResult>, StoreError> {
        let (s3, path) = (self.s3.clone(), self.path(key));
        self.call(key, async move {
            s3.put_opts(&path, PutPayload::from(bytes), PutOptions { mode, ..Default::default() })
                .await
        })
    }

    /// Writes `contents` to `key`: in one request when small, else in parts as it is made, so
    /// a large matrix is never held whole a second time.
    fn upload(&self, key: &str, contents: &dyn Contents) -> Result<(), StoreError> {
        let mut writer = Uploader {
            storage: self,
            key,
            buffer: Vec::with_capacity(PART_BYTES),
            upload: None,
            error: None,
        };
        let written = contents.write_to(&mut writer);
        if let Some(e) = writer.error.take() {
            writer.abort();
            return Err(e);
        }
        if let Err(e) = written {
            writer.abort();
            return Err(self.failed(key, e));
        }
        writer.finish()
    }
}

/// An object's bytes and the ETag they were read at.
type Tagged = (Vec<u8>, Option<String>);

/// A `Write` that sends what is written to an object: one PUT if it stays under a part, a
/// multipart upload otherwise.
struct Uploader<'a> {
    storage: &'a S3Storage,
    key: &'a str,
    buffer: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
    /// The first failure, kept: `Write` can only say "other" of it.
    error: Option<StoreError>,
}

impl Uploader<'_> {
    fn send_part(&mut self) -> Result<(), StoreError> {
        let key = self.key;
        let mut upload = match self.upload.take() {
            Some(upload) => upload,
            None => {
                let (s3, path) = (self.storage.s3.clone(), self.storage.path(key));
                self.storage
                    .call(key, async move { s3.put_multipart(&path).await })?
                    .map_err(|e| self.storage.failed(key, e))?
            }
        };
        let part = std::mem::replace(&mut self.buffer, Vec::with_capacity(PART_BYTES));
        let sent = upload.put_part(PutPayload::from(part));
        self.upload = Some(upload);
        self.storage.call(key, sent)?.map_err(|e| self.storage.failed(key, e))
    }

    fn finish(mut self) -> Result<(), StoreError> {
        let key = self.key;
        if self.upload.is_none() {
            let bytes = Bytes::from(std::mem::take(&mut self.buffer));
            return self
                .storage
                .put(key, bytes, PutMode::Overwrite)?
                .map(drop)
                .map_err(|e| self.storage.failed(key, e));
        }
        if !self.buffer.is_empty() {
            self.send_part()?;
        }
        let Some(mut upload) = self.upload.take() else { return Ok(()) };
        self.storage
            .call(key, async move { upload.complete().await })?
            .map(drop)
            .map_err(|e| self.storage.failed(key, e))
    }

    fn abort(&mut self) {
        if let Some(mut upload) = self.upload.take() {
            let _ = self.storage.call(self.key, async move { upload.abort().await });
        }
    }
}

impl Write for Uploader<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = PART_BYTES - self.buffer.len();
        let taken = buf.len().min(room);
        self.buffer.extend_from_slice(&buf[..taken]);
        if self.buffer.len() == PART_BYTES
            && let Err(e) = self.send_part()
        {
            let message = e.to_string();
            self.error = Some(e);
            return Err(std::io::Error::other(message));
        }
        Ok(taken)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An object's bytes as they arrive, a chunk at a time: what is held is bounded by the
/// channel, not the object.
struct Download {
    chunks: std::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl Download {
    /// The bytes of a GET's answer as they arrive: a task on the runtime this is called on
    /// forwards them a chunk at a time, at most 8 ahead of the reader.
    fn of(result: object_store::GetResult) -> Download {
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let mut stream = result.into_stream();
        tokio::spawn(async move {
            while let Some(chunk) = stream.next().await {
                let failed = chunk.is_err();
                if tx.send(chunk.map_err(|e| e.to_string())).is_err() || failed {
                    break;
                }
            }
        });
        Download { chunks: rx, current: Bytes::new() }
    }
}

impl Read for Download {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(e)) => return Err(std::io::Error::other(e)),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl Storage for S3Storage {
    fn uri(&self) -> String {
        self.uri.clone()
    }

    fn open(&self, key: &str) -> Result<Option<StoredObject<'_>>, StoreError> {
        let (s3, path) = (self.s3.clone(), self.path(key));
        let opened = self.call(key, async move {
            let result = s3.get(&path).await?;
            Ok((result.meta.size, Download::of(result)))
        })?;
        match opened {
            Ok((len, download)) => {
                Ok(Some(StoredObject { len, reader: Box::new(download), sealing: Sealing::None }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed(key, e)),
        }
    }

    fn commit(
        &self,
        id: &str,
        files: &[(&str, &dyn Contents)],
        whole: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        let Some(((manifest_name, manifest), data)) = files.split_last() else { return Ok(()) };
        for (name, contents) in data {
            self.upload(&format!("artifacts/{id}/{name}"), *contents)?;
        }
        let key = format!("artifacts/{id}/{manifest_name}");
        let mut bytes = Vec::new();
        manifest.write_to(&mut bytes).map_err(|e| self.failed(&key, e))?;
        let bytes = Bytes::from(bytes);
        match self.put(&key, bytes.clone(), PutMode::Create)? {
            Ok(_) => Ok(()),
            // Another writer committed the same content first: theirs is as good as ours. A
            // manifest there that is itself damaged is replaced: every file is whole now.
            Err(object_store::Error::AlreadyExists { .. }) if whole() => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => self
                .put(&key, bytes, PutMode::Overwrite)?
                .map(drop)
                .map_err(|e| self.failed(&key, e)),
            Err(e) => Err(self.failed(&key, e)),
        }
    }

    fn replace(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put(key, Bytes::copy_from_slice(bytes), PutMode::Overwrite)?
            .map(drop)
            .map_err(|e| self.failed(key, e))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (s3, path) = (self.s3.clone(), self.path(prefix));
        let listed = self.call(prefix, async move { s3.list_with_delimiter(Some(&path)).await })?;
        let listed = listed.map_err(|e| self.failed(prefix, e))?;
        Ok(listed
            .objects
            .into_iter()
            .filter_map(|o| o.location.filename().map(String::from))
            .collect())
    }
}

/// The registry in the bucket, updated by compare-and-swap on its ETag (see the crate's doc).
impl RegistryStorage for S3Storage {
    fn load_registry(&self) -> Result<RegistryData, RegistryError> {
        Ok(self.read_registry()?.0)
    }

    fn update_registry(
        &self,
        change: &mut dyn FnMut(&mut RegistryData) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        for attempt in 0..REGISTRY_ATTEMPTS {
            let (mut data, e_tag) = self.read_registry()?;
            let generation = data.generation + 1;
            change(&mut data)?;
            data.generation = generation;
            let bytes = Bytes::from(
                serde_json::to_vec_pretty(&data)
                    .map_err(|e| RegistryError::Corrupt(e.to_string()))?,
            );
            let mode = match &e_tag {
                Some(e_tag) => {
                    PutMode::Update(UpdateVersion { e_tag: Some(e_tag.clone()), version: None })
                }
                None => PutMode::Create,
            };
            match self.put(REGISTRY_KEY, bytes.clone(), mode)? {
                Ok(_) => {
                    // Kept once committed, so the log holds committed states only; a crash
                    // before this write leaves it one state behind.
                    let _ = self.put(&log_key(generation), bytes, PutMode::Overwrite);
                    self.compact_log(generation);
                    return Ok(());
                }
                // Another writer changed it since it was read: read it again, change it again.
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => {
                    tracing::debug!(attempt, "the registry changed meanwhile: trying again");
                    std::thread::sleep(std::time::Duration::from_millis(
                        5 + u64::from(attempt) * 3 + u64::from(std::process::id() % 7),
                    ));
                }
                Err(e) => return Err(self.failed(REGISTRY_KEY, e).into()),
            }
        }
        Err(self
            .failed(
                REGISTRY_KEY,
                format!("still changed by other writers after {REGISTRY_ATTEMPTS} attempts"),
            )
            .into())
    }

    fn registry_fingerprint(&self) -> Option<String> {
        let (s3, path) = (self.s3.clone(), self.path(REGISTRY_KEY));
        let meta = self.call(REGISTRY_KEY, async move { s3.head(&path).await }).ok()?.ok()?;
        Some(meta.e_tag.unwrap_or_else(|| format!("{}-{}", meta.size, meta.last_modified)))
    }
}

const REGISTRY_KEY: &str = "registry.json";

/// Where the registry's states are kept, one object each ([`log_key`]).
const REGISTRY_LOG: &str = "registry.log";

/// States kept behind the newest: a reader between listing the log and reading its newest
/// finds that one still there.
const LOG_KEPT: u64 = 16;

/// A state's object, named so that names sort as generations do.
fn log_key(generation: u64) -> String {
    format!("{REGISTRY_LOG}/{generation:020}.json")
}

/// The registry is a few kilobytes per model; anything past this is not one.
const REGISTRY_LIMIT: u64 = 64 << 20;

impl S3Storage {
    /// The registry, and the ETag `registry.json` was read at (`None`: there is none to replace
    /// conditionally). Deleted or damaged, it is the log's newest state, and `registry.json` is
    /// written again from it; the log is listed only then, since it is written after each commit
    /// and so is never ahead of a whole `registry.json`.
    fn read_registry(&self) -> Result<(RegistryData, Option<String>), RegistryError> {
        let damage = match self.get_whole(REGISTRY_KEY, REGISTRY_LIMIT)? {
            Some((bytes, e_tag)) => match serde_json::from_slice::<RegistryData>(&bytes) {
                Ok(data) => return Ok((data, e_tag)),
                Err(e) => Some((e, e_tag)),
            },
            None => None,
        };
        let newest = self.newest_logged()?;
        match (damage, newest) {
            (damage, Some(generation)) => {
                let bytes = self
                    .get_whole(&log_key(generation), REGISTRY_LIMIT)?
                    .map(|(bytes, _)| bytes)
                    .unwrap_or_default();
                let data = serde_json::from_slice::<RegistryData>(&bytes).map_err(|e| {
                    RegistryError::Corrupt(format!(
                        "{}/{} does not parse: {e}",
                        self.uri,
                        log_key(generation)
                    ))
                })?;
                tracing::warn!(
                    generation,
                    "{}/{REGISTRY_KEY} is missing or damaged: rewritten from its log",
                    self.uri
                );
                Ok((
                    data,
                    self.restore_registry(Bytes::from(bytes), damage.and_then(|(_, e_tag)| e_tag)),
                ))
            }
            (None, None) => Ok((RegistryData::default(), None)),
            (Some((e, _)), None) => Err(RegistryError::Corrupt(format!(
                "{}/{REGISTRY_KEY} does not parse, and it has no log to recover from: {e}",
                self.uri
            ))),
        }
    }

    /// The newest generation in the registry's log.
    fn newest_logged(&self) -> Result<Option<u64>, StoreError> {
        let names = self.list(REGISTRY_LOG)?;
        Ok(names.iter().filter_map(|n| n.strip_suffix(".json")?.parse::<u64>().ok()).max())
    }

    /// Writes `bytes`, a state from the log, as `registry.json`, replacing the damaged one of
    /// `e_tag` or creating it, and returns the new ETag. Conditional, so that it never undoes
    /// a writer's commit made meanwhile; then the next reader finds that one.
    fn restore_registry(&self, bytes: Bytes, e_tag: Option<String>) -> Option<String> {
        let mode = match e_tag {
            Some(e_tag) => PutMode::Update(UpdateVersion { e_tag: Some(e_tag), version: None }),
            None => PutMode::Create,
        };
        self.put(REGISTRY_KEY, bytes, mode).ok()?.ok()?.e_tag
    }

    /// Removes the log's states older than [`LOG_KEPT`] behind `generation`. Best effort.
    fn compact_log(&self, generation: u64) {
        if !generation.is_multiple_of(LOG_KEPT) {
            return;
        }
        let Ok(names) = self.list(REGISTRY_LOG) else { return };
        let old = names
            .iter()
            .filter_map(|n| n.strip_suffix(".json")?.parse::<u64>().ok())
            .filter(|g| g + LOG_KEPT < generation);
        for stale in old {
            let (s3, path) = (self.s3.clone(), self.path(&log_key(stale)));
            let _ = self.call(REGISTRY_LOG, async move { s3.delete(&path).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_uris_are_parsed_or_refused_by_name() {
        assert_eq!(
            parse_s3_uri("s3://team-models/a/b/").expect("valid"),
            ("team-models".into(), "a/b".into())
        );
        assert_eq!(parse_s3_uri("s3://bkt").expect("valid"), ("bkt".into(), String::new()));
        for (uri, why) in [
            ("s3://ab/x", "not a bucket name"),
            ("s3://Big/x", "not a bucket name"),
            ("s3://bkt/../x", "'..'"),
        ] {
            let e = parse_s3_uri(uri).expect_err(uri).to_string();
            assert!(e.contains(why) && e.contains(uri), "{uri}: {e}");
        }
        let home = tempfile::tempdir().expect("home");
        for (uri, why) in [
            ("ftp://x/y", "ftp:// is not a store"),
            ("file://relative", "absolute path"),
            ("bucket", "not a URI"),
        ] {
            let e = open_store(Some(uri), home.path()).expect_err(uri).to_string();
            assert!(e.contains(why), "{uri}: {e}");
        }
        let store = open_store(
            Some(&format!("file://{}", home.path().display())),
            Path::new("/nonexistent"),
        )
        .expect("file store");
        assert_eq!(store.uri(), format!("file://{}", home.path().display()));
        assert_eq!(open_store(None, home.path()).expect("home").uri(), store.uri());
    }
}
