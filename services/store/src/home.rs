//! The store in a home directory on one machine's disk: [`HomeStorage`], the `file://`
//! [`Storage`] and [`RegistryStorage`], and [`write_atomic`], the one way anything here replaces a file.
//!
//! ```text
//! <home>/artifacts/<id>/manifest.json   kind, producer, inputs, parameters, time, file hashes
//! <home>/artifacts/<id>/<files>         .npy matrices, JSON
//! <home>/steps/<key>.json               step cache: inputs+parameters hash → output ids
//! <home>/registry.json                  the model registry, and registry.journal beside it
//! <home>/seals/artifacts/<id>/<file>.json   a large file's hash check, while it is unchanged
//! <home>/tmp/                           where writes are staged before their rename
//! ```
//!
//! An artifact is staged whole in `tmp/`, fsynced, then renamed into place: a crash leaves
//! either the whole artifact or nothing that any reader will look at. Registry updates are
//! serialised by a lock on the home directory and journalled, so a damaged `registry.json` is
//! recovered rather than started over.

pub mod gc;
pub(crate) mod seal;

use crate::registry::{Registry, RegistryData, RegistryError, RegistryStorage};
use crate::storage::{
    Contents, Sealing, StagingFile, Storage, StoreError, StoredObject, now_unix_ms,
};
use crate::store::Store;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Writes a file atomically: a temp file beside it, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        unique_name(&path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy()))
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| StoreError::io(&tmp, e))?;
        f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `<stem>.<pid>.<ms>.<n>`: a name no other writer uses at the same time, in this process
/// (`n` counts its writes: two threads of one service writing the same artifact or file in the
/// same millisecond shared a staging directory, and wrote into each other's files) or another.
pub fn unique_name(stem: &str) -> String {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{stem}.{}.{}.{n}", std::process::id(), now_unix_ms())
}

/// The pid in a staging entry's name: `<id>.<pid>.<ms>.<n>` ([`unique_name`]), or the
/// `<id>.<pid>.<ms>` of stores written before it.
fn staging_owner(name: &str) -> Option<u32> {
    let parts: Vec<&str> = name.rsplit('.').take(3).collect();
    let number = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
    match (number(0), number(1), number(2)) {
        (Some(_), Some(_), Some(pid)) => u32::try_from(pid).ok(),
        (Some(_), Some(pid), None) => u32::try_from(pid).ok(),
        _ => None,
    }
}

/// Whether a process with this pid exists (Linux: its `/proc` entry; elsewhere: assumed alive,
/// so only the age rule cleans up).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") { Path::new("/proc").join(pid.to_string()).exists() } else { true }
}

/// Locks a staging entry (a directory or a file) for as long as the returned handle lives, so
/// that [`HomeStorage::open`] knows its writer is alive whatever the clocks say. A lock that
/// cannot be taken (a file system without flock) leaves the entry to the pid rule.
pub fn lock_staged(path: &Path) -> Option<fs::File> {
    let handle = fs::File::open(path).ok()?;
    handle.lock().ok()?;
    Some(handle)
}

/// Whether a live process holds [`lock_staged`]'s lock on `path`.
fn is_locked(path: &Path) -> bool {
    fs::File::open(path)
        .is_ok_and(|handle| matches!(handle.try_lock(), Err(fs::TryLockError::WouldBlock)))
}

/// Removes the files in `dir` that a writer began (named `.<…>.<pid>.<ms>.<n>`, or with
/// `.tmp` after) and a dead one left.
fn remove_dead_writers_files(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let begun = name.starts_with('.')
            && staging_owner(name.trim_end_matches(".tmp")).is_some_and(|pid| !process_alive(pid));
        if begun && entry.path().is_file() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io(dir, e))
}

/// Journal lines kept before it is compacted to the last state.
const JOURNAL_LINES: usize = 256;

/// The store and registry in a home directory. Every method goes to the disk, so several
/// processes can share one home.
#[derive(Debug, Clone)]
pub struct HomeStorage {
    home: PathBuf,
}

impl HomeStorage {
    /// The storage of `home`, touching nothing on disk (the registry's view of a home).
    pub fn at(home: impl Into<PathBuf>) -> HomeStorage {
        HomeStorage { home: home.into() }
    }

    /// Opens (creating if needed) the store under `home`, and clears what dead writers left:
    /// a writer killed mid-write (a 1M-row dataset leaves 58 MiB) is cleaned up by the next
    /// service that opens the store, not an hour later. A staging entry is named
    /// `<id>.<pid>.<ms>.<n>` and locked by its writer while it is used ([`lock_staged`]); one
    /// whose pid is dead goes, and so does one nobody locks that is over an hour old (a reused
    /// pid). Its age alone never decides: a clock that jumps ahead makes a live writer's entry
    /// look old, and removed it under that writer. The half-written files of an upload
    /// (`uploads/.upload.*`) and of a replaced file (`runs/.<name>.*.tmp`) go once their
    /// writer's pid is dead.
    pub fn open(home: impl Into<PathBuf>) -> Result<HomeStorage, StoreError> {
        let storage = HomeStorage::at(home);
        for dir in [storage.home.join("artifacts"), storage.home.join("steps"), storage.tmp_dir()] {
            fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        for entry in fs::read_dir(storage.tmp_dir()).into_iter().flatten().flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            let orphaned = staging_owner(&entry.file_name().to_string_lossy())
                .is_some_and(|pid| !process_alive(pid));
            if orphaned || (old && !is_locked(&entry.path())) {
                let _ = fs::remove_dir_all(entry.path()).or_else(|_| fs::remove_file(entry.path()));
            }
        }
        for dir in [storage.home.join("uploads"), storage.home.join("runs")] {
            remove_dead_writers_files(&dir);
        }
        Ok(storage)
    }

    pub fn home(&self) -> &Path {
        &self.home
    }
    fn tmp_dir(&self) -> PathBuf {
        self.home.join("tmp")
    }
    fn seal_path(&self, key: &str) -> PathBuf {
        self.home.join("seals").join(format!("{key}.json"))
    }
    fn registry_path(&self) -> PathBuf {
        self.home.join("registry.json")
    }
    fn journal_path(&self) -> PathBuf {
        self.home.join("registry.journal")
    }

    /// The last whole state in the journal, if there is one.
    fn journal_last_state(&self) -> Result<Option<RegistryData>, RegistryError> {
        let path = self.journal_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&path, e).into()),
        };
        // A line cut short by a crash mid-append is skipped: the one before it is whole.
        Ok(text.lines().rev().find_map(|line| serde_json::from_str(line).ok()))
    }

    /// Appends a state to the journal (compacting it when long), fsynced.
    fn journal(&self, data: &RegistryData) -> Result<(), RegistryError> {
        let path = self.journal_path();
        let line =
            serde_json::to_string(data).map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        let lines = fs::read_to_string(&path).map_or(0, |t| t.lines().count());
        if lines >= JOURNAL_LINES {
            return Ok(write_atomic(&path, format!("{line}\n").as_bytes())?);
        }
        let io = |e| RegistryError::Store(StoreError::io(&path, e));
        let mut file = fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
        file.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(())
    }
}

impl Storage for HomeStorage {
    fn uri(&self) -> String {
        format!("file://{}", self.home.display())
    }

    fn open(&self, key: &str) -> Result<Option<StoredObject<'_>>, StoreError> {
        let path = self.home.join(key);
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let metadata = file.metadata().map_err(|e| StoreError::io(&path, e))?;
        let len = metadata.len();
        let sealing = match len >= seal::SEAL_MIN_BYTES {
            true => seal::sealing(
                self.seal_path(key),
                self.tmp_dir(),
                &file,
                seal::FileState::of(&metadata),
            ),
            false => Sealing::None,
        };
        Ok(Some(StoredObject { len, reader: Box::new(file), sealing }))
    }

    fn staging_file(&self) -> Result<Option<StagingFile>, StoreError> {
        let tmp = self.tmp_dir();
        fs::create_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let path = tmp.join(unique_name("staged"));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        let alive = lock_staged(&path);
        Ok(Some(StagingFile { file, path, alive }))
    }

    fn commit(
        &self,
        id: &str,
        files: &[(&str, &dyn Contents)],
        whole: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        let artifacts = self.home.join("artifacts");
        let dest = artifacts.join(id);
        let staging = self.tmp_dir().join(unique_name(id));
        // The large files written, as they were once synced, with their digests: sealed once
        // they are in place, if still so.
        let mut to_seal = Vec::new();
        let result = (|| {
            fs::create_dir_all(&staging).map_err(|e| StoreError::io(&staging, e))?;
            let _alive = lock_staged(&staging);
            for (name, contents) in files {
                let path = staging.join(name);
                let io = |e| StoreError::io(&path, e);
                // Written already, into this home's staging area: moved in, not copied.
                let written = if let Some(staged) = contents.staged_file()
                    && staged.starts_with(self.tmp_dir())
                    && fs::rename(staged, &path).is_ok()
                {
                    fs::File::open(&path).map_err(io)?
                } else {
                    let mut f = std::io::BufWriter::with_capacity(
                        1 << 20,
                        fs::File::create(&path).map_err(io)?,
                    );
                    contents.write_to(&mut f).map_err(io)?;
                    f.into_inner().map_err(|e| io(e.into_error()))?
                };
                written.sync_all().map_err(io)?;
                if let Some((blake3, bytes)) = contents.blake3()
                    && bytes >= seal::SEAL_MIN_BYTES
                {
                    to_seal.push((
                        *name,
                        seal::FileState::of(&written.metadata().map_err(io)?),
                        blake3,
                    ));
                }
            }
            sync_dir(&staging)?;
            // Another writer of the same content may have finished meanwhile: its copy is whole,
            // and moving it aside would leave readers a moment with no artifact at all (two
            // sweep members starting together read "no artifact" so). Only a copy that was
            // there before the check and fails it is damaged; whether it was there is looked at
            // once, first, since a copy that appears between two looks is a whole one.
            let existed = dest.exists();
            match whole() {
                true => return Ok(()),
                false if !existed => {}
                false => {
                    // A damaged copy: moved aside in one rename (readers see it whole, damaged,
                    // or not at all), replaced, then removed.
                    let aside = self.tmp_dir().join(unique_name(&format!("{id}.damaged")));
                    match fs::rename(&dest, &aside) {
                        Ok(()) => {
                            let _ = fs::remove_dir_all(&aside);
                        }
                        Err(_) if whole() => return Ok(()),
                        Err(e) => return Err(StoreError::io(&dest, e)),
                    }
                }
            }
            match fs::rename(&staging, &dest) {
                Ok(()) => {
                    sync_dir(&artifacts)?;
                    for (name, written, blake3) in to_seal.drain(..) {
                        if fs::metadata(dest.join(name))
                            .is_ok_and(|now| seal::FileState::of(&now) == written)
                        {
                            seal::write(
                                &self.seal_path(&format!("artifacts/{id}/{name}")),
                                &self.tmp_dir(),
                                written,
                                blake3,
                            );
                        }
                    }
                    Ok(())
                }
                // Another writer stored the same content first: theirs is as good as ours.
                Err(_) if whole() => Ok(()),
                Err(e) => Err(StoreError::io(&dest, e)),
            }
        })();
        if staging.exists() {
            let _ = fs::remove_dir_all(&staging);
        }
        result
    }

    fn replace(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.home.join(key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        write_atomic(&path, bytes)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let dir = self.home.join(prefix);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        Ok(entries
            .flatten()
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect())
    }

    fn touch(&self, key: &str) {
        let _ = fs::File::options()
            .write(true)
            .open(self.home.join(key))
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    }
}

impl RegistryStorage for HomeStorage {
    fn load_registry(&self) -> Result<RegistryData, RegistryError> {
        let path = self.registry_path();
        let damage = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(data) => return Ok(data),
                Err(e) => format!("{} does not parse: {e}", path.display()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("{} is missing", path.display())
            }
            Err(e) => return Err(StoreError::io(&path, e).into()),
        };
        match self.journal_last_state()? {
            Some(data) => {
                // Written back so the next reader finds the file whole; a failure to write it
                // still serves the recovered state.
                if let Ok(bytes) = serde_json::to_vec_pretty(&data) {
                    let _ = write_atomic(&path, &bytes);
                }
                Ok(data)
            }
            None if damage.ends_with("is missing") => Ok(RegistryData::default()),
            None => Err(RegistryError::Corrupt(format!(
                "{damage}, and there is no journal ({}) to recover it from",
                self.journal_path().display()
            ))),
        }
    }

    /// Serialised by an exclusive lock on the home directory itself (flock on its open
    /// descriptor), which no one breaks by deleting a file: with a lock file, deleting it
    /// mid-run let two runs be told the same version. The journal is written first: a crash
    /// between the two leaves a state the journal recovers.
    fn update_registry(
        &self,
        change: &mut dyn FnMut(&mut RegistryData) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError> {
        let io = |e| RegistryError::Store(StoreError::io(&self.home, e));
        let lock = fs::File::open(&self.home).map_err(io)?;
        lock.lock().map_err(io)?;
        let mut data = self.load_registry()?;
        change(&mut data)?;
        let bytes =
            serde_json::to_vec_pretty(&data).map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        self.journal(&data)?;
        write_atomic(&self.registry_path(), &bytes)?;
        drop(lock);
        Ok(())
    }

    fn registry_fingerprint(&self) -> Option<String> {
        fs::read(self.registry_path()).ok().map(|bytes| logitflow_core::sha256_hex(&bytes))
    }
}

impl Store {
    /// The store in a home directory (`file://`), created if needed; see
    /// [`HomeStorage::open`].
    pub fn open(home: impl Into<PathBuf>) -> Result<Store, StoreError> {
        Ok(Store::on(Arc::new(HomeStorage::open(home)?)))
    }
}

impl Registry {
    /// The registry of a home directory (`registry.json` and `registry.journal` in it).
    pub fn open(home: impl Into<PathBuf>) -> Registry {
        Registry::on(Arc::new(HomeStorage::at(home)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_carry_their_writers_pid() {
        assert_eq!(staging_owner(&unique_name("x")), Some(std::process::id()));
        assert_eq!(staging_owner("abc.42.1700000000000"), Some(42));
        assert_eq!(staging_owner("abc"), None);
    }

    /// Liveness is the writer's lock, not the entry's age. With the clock two hours ahead of a
    /// live writer's staging (its time set two hours back), the entry stays; one nobody locks
    /// as old (a reused pid) goes, and so do a dead writer's staging, upload and half-written
    /// report, while a live writer's upload and the reports themselves stay.
    #[test]
    fn a_live_writers_staging_outlives_a_clock_jump_and_dead_writers_files_go() {
        let home = tempfile::tempdir().expect("tempdir");
        HomeStorage::open(home.path()).expect("opens");
        let (tmp, uploads, runs) =
            (home.path().join("tmp"), home.path().join("uploads"), home.path().join("runs"));
        let mut dead = std::process::Command::new("true").spawn().expect("a process");
        let dead = {
            dead.wait().expect("ends");
            dead.id()
        };
        let live = tmp.join(unique_name("live"));
        let reused = tmp.join(unique_name("reused"));
        let dead_staging = tmp.join(format!("artifact.{dead}.1700000000000.0"));
        for dir in [&live, &reused, &dead_staging] {
            fs::create_dir(dir).expect("staging");
        }
        let _held = lock_staged(&live).expect("locked");
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for dir in [&live, &reused] {
            fs::File::open(dir).and_then(|d| d.set_modified(two_hours_ago)).expect("dated");
        }
        fs::create_dir_all(&uploads).and_then(|()| fs::create_dir_all(&runs)).expect("dirs");
        let dead_upload = uploads.join(format!(".upload.{dead}.1700000000000.3"));
        let live_upload = uploads.join(unique_name(".upload"));
        let dead_report = runs.join(format!(".r.json.{dead}.1700000000000.4.tmp"));
        let report = runs.join("r.json");
        for file in [&dead_upload, &live_upload, &dead_report, &report] {
            fs::write(file, b"x").expect("file");
        }
        HomeStorage::open(home.path()).expect("opens again");
        let kept = |path: &PathBuf| path.exists();
        assert_eq!(
            [&live, &reused, &dead_staging, &dead_upload, &live_upload, &dead_report, &report]
                .map(kept),
            [true, false, false, false, true, false, true],
            "live staging, reused pid, dead staging, dead upload, live upload, dead report, report"
        );
    }
}
