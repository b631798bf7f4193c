//! The model registry: [`Registry`], integer versions per model name and the aliases
//! `stable` and `candidate`, in `<home>/registry.json`.
//!
//! Every change is read–modify–write under an exclusive lock on the home directory, is
//! appended to `<home>/registry.journal`, and the new file replaces the old by an atomic
//! rename, so readers (serve) never see half a registry, concurrent writers never lose each
//! other's versions, and a damaged or deleted `registry.json` is recovered, not started over.

use crate::metrics::Metrics;
use crate::store::{StoreError, now_unix_ms, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

pub const STABLE: &str = "stable";
pub const CANDIDATE: &str = "candidate";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no model named {0:?} in the registry")]
    UnknownModel(String),
    #[error("model {name:?} has no version {selector}")]
    UnknownVersion { name: String, selector: String },
    #[error("{0:?} is not a model name: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("registry.json does not parse ({0}); it was left as it is")]
    Corrupt(String),
    #[error("model {name:?} has no version before {version} to roll back to")]
    NothingToRollBack { name: String, version: u32 },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionEntry {
    pub version: u32,
    /// The model artifact's id.
    pub artifact: String,
    /// The evaluation report artifact's id.
    #[serde(default)]
    pub report: Option<String>,
    #[serde(default)]
    pub metrics: Option<Metrics>,
    pub created_unix_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ModelEntry {
    pub versions: Vec<VersionEntry>,
    /// Alias → version.
    pub aliases: BTreeMap<String, u32>,
    /// Every version that was ever stable, oldest first: what rollback walks back along.
    #[serde(default)]
    pub stable_history: Vec<u32>,
}

impl ModelEntry {
    pub fn version(&self, v: u32) -> Option<&VersionEntry> {
        self.versions.iter().find(|e| e.version == v)
    }
    /// Resolves `stable`, `candidate`, `latest` or a number.
    pub fn resolve(&self, selector: &str) -> Option<&VersionEntry> {
        match selector {
            "latest" => self.versions.last(),
            alias if self.aliases.contains_key(alias) => self.version(self.aliases[alias]),
            number => number.parse().ok().and_then(|v| self.version(v)),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RegistryData {
    pub models: BTreeMap<String, ModelEntry>,
}

pub fn check_name(name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name != "."
        && name != "..";
    if ok { Ok(()) } else { Err(RegistryError::BadName(name.to_string())) }
}

/// The model registry of a home: `registry.json`, and `registry.journal`, an append-only
/// record of every state it was written in (one JSON line each, fsynced before the update
/// returns).
///
/// - Updates are serialised by an exclusive lock on the home directory itself (flock on its
///   open descriptor), which no one breaks by deleting a file: with a lock file, deleting it
///   mid-run let two runs be told the same version.
/// - A `registry.json` that is damaged or deleted is recovered from the journal's last state
///   (and written back), so versions never start over at 1 while models exist; a damaged one
///   with no journal to recover from is refused, naming the file.
#[derive(Debug, Clone)]
pub struct Registry {
    home: PathBuf,
    path: PathBuf,
    journal_path: PathBuf,
}

/// Journal lines kept before it is compacted to the last state.
const JOURNAL_LINES: usize = 256;

impl Registry {
    pub fn open(home: impl Into<PathBuf>) -> Registry {
        let home = home.into();
        Registry { path: home.join("registry.json"), journal_path: home.join("registry.journal"), home }
    }

    pub fn load(&self) -> Result<RegistryData, RegistryError> {
        let damage = match fs::read(&self.path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(data) => return Ok(data),
                Err(e) => format!("{} does not parse: {e}", self.path.display()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!("{} is missing", self.path.display()),
            Err(e) => return Err(StoreError::Io { path: self.path.clone(), source: e }.into()),
        };
        match self.journal_last_state()? {
            Some(data) => {
                // Written back so the next reader finds the file whole; a failure to write it
                // still serves the recovered state.
                if let Ok(bytes) = serde_json::to_vec_pretty(&data) {
                    let _ = write_atomic(&self.path, &bytes);
                }
                Ok(data)
            }
            None if damage.ends_with("is missing") => Ok(RegistryData::default()),
            None => Err(RegistryError::Corrupt(format!(
                "{damage}, and there is no journal ({}) to recover it from",
                self.journal_path.display()
            ))),
        }
    }

    /// The last whole state in the journal, if there is one.
    fn journal_last_state(&self) -> Result<Option<RegistryData>, RegistryError> {
        let text = match fs::read_to_string(&self.journal_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Io { path: self.journal_path.clone(), source: e }.into()),
        };
        // A line cut short by a crash mid-append is skipped: the one before it is whole.
        Ok(text.lines().rev().find_map(|line| serde_json::from_str(line).ok()))
    }

    /// Appends a state to the journal (compacting it when long), fsynced.
    fn journal(&self, data: &RegistryData) -> Result<(), RegistryError> {
        use std::io::Write;
        let line = serde_json::to_string(data).map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        let lines = fs::read_to_string(&self.journal_path).map_or(0, |t| t.lines().count());
        if lines >= JOURNAL_LINES {
            return Ok(write_atomic(&self.journal_path, format!("{line}\n").as_bytes())?);
        }
        let io = |e| RegistryError::Store(StoreError::Io { path: self.journal_path.clone(), source: e });
        let mut file = fs::OpenOptions::new().create(true).append(true).open(&self.journal_path).map_err(io)?;
        file.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(())
    }

    pub fn model(&self, name: &str) -> Result<ModelEntry, RegistryError> {
        self.load()?.models.remove(name).ok_or_else(|| RegistryError::UnknownModel(name.to_string()))
    }

    pub fn resolve(&self, name: &str, selector: &str) -> Result<VersionEntry, RegistryError> {
        self.model(name)?
            .resolve(selector)
            .cloned()
            .ok_or_else(|| RegistryError::UnknownVersion { name: name.to_string(), selector: selector.to_string() })
    }

    /// Runs `change` on the registry under the lock and writes the result atomically. Nothing
    /// is written when `change` fails.
    pub fn update<R>(&self, change: impl FnOnce(&mut RegistryData) -> Result<R, RegistryError>) -> Result<R, RegistryError> {
        let io = |e| RegistryError::Store(StoreError::Io { path: self.home.clone(), source: e });
        let lock = fs::File::open(&self.home).map_err(io)?;
        lock.lock().map_err(io)?;
        let mut data = self.load()?;
        let result = change(&mut data)?;
        let bytes = serde_json::to_vec_pretty(&data).map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        // The journal first: a crash between the two leaves a state the journal recovers.
        self.journal(&data)?;
        write_atomic(&self.path, &bytes)?;
        drop(lock);
        Ok(result)
    }

    /// Registers a model artifact under `name` and returns its version, and whether it is new.
    /// The same artifact registered again keeps its version.
    pub fn register(
        &self,
        name: &str,
        artifact: &str,
        report: Option<String>,
        metrics: Option<Metrics>,
    ) -> Result<(u32, bool), RegistryError> {
        check_name(name)?;
        self.update(|data| {
            let entry = data.models.entry(name.to_string()).or_default();
            if let Some(existing) = entry.versions.iter_mut().find(|v| v.artifact == artifact) {
                if existing.metrics.is_none() {
                    existing.metrics = metrics;
                    existing.report = report;
                }
                return Ok((existing.version, false));
            }
            let version = entry.versions.last().map_or(1, |v| v.version + 1);
            entry.versions.push(VersionEntry { version, artifact: artifact.to_string(), report, metrics, created_unix_ms: now_unix_ms() });
            Ok((version, true))
        })
    }

    /// Points `alias` at `version`. Making a version stable also clears a candidate alias that
    /// pointed at it, and records it for rollback.
    pub fn set_alias(&self, name: &str, alias: &str, version: u32) -> Result<ModelEntry, RegistryError> {
        self.update(|data| {
            let entry = data.models.get_mut(name).ok_or_else(|| RegistryError::UnknownModel(name.to_string()))?;
            if entry.version(version).is_none() {
                return Err(RegistryError::UnknownVersion { name: name.to_string(), selector: version.to_string() });
            }
            entry.aliases.insert(alias.to_string(), version);
            if alias == STABLE {
                if entry.aliases.get(CANDIDATE) == Some(&version) {
                    entry.aliases.remove(CANDIDATE);
                }
                if entry.stable_history.last() != Some(&version) {
                    entry.stable_history.push(version);
                }
            }
            Ok(entry.clone())
        })
    }

    /// Makes the previously stable version stable again.
    pub fn rollback(&self, name: &str) -> Result<ModelEntry, RegistryError> {
        self.update(|data| {
            let entry = data.models.get_mut(name).ok_or_else(|| RegistryError::UnknownModel(name.to_string()))?;
            let current = entry.aliases.get(STABLE).copied().unwrap_or(0);
            if entry.stable_history.len() < 2 {
                return Err(RegistryError::NothingToRollBack { name: name.to_string(), version: current });
            }
            entry.stable_history.pop();
            let previous = entry.stable_history.last().copied().unwrap_or(current);
            entry.aliases.insert(STABLE.to_string(), previous);
            Ok(entry.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_aliases_and_rollback() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Registry::open(dir.path());
        assert_eq!(reg.register("admissions", &"a".repeat(64), None, None).expect("registers"), (1, true));
        assert_eq!(reg.register("admissions", &"b".repeat(64), None, None).expect("registers"), (2, true));
        assert_eq!(reg.register("admissions", &"a".repeat(64), None, None).expect("registers"), (1, false));
        reg.set_alias("admissions", STABLE, 1).expect("aliases");
        reg.set_alias("admissions", CANDIDATE, 2).expect("aliases");
        assert_eq!(reg.resolve("admissions", "candidate").expect("resolves").version, 2);
        reg.set_alias("admissions", STABLE, 2).expect("aliases");
        let entry = reg.model("admissions").expect("exists");
        assert_eq!(entry.aliases.get(CANDIDATE), None);
        assert_eq!(reg.rollback("admissions").expect("rolls back").aliases[STABLE], 1);
        assert!(matches!(reg.rollback("admissions"), Err(RegistryError::NothingToRollBack { .. })));
        assert!(matches!(reg.resolve("admissions", "9"), Err(RegistryError::UnknownVersion { .. })));
        assert!(matches!(reg.register("../x", "a", None, None), Err(RegistryError::BadName(_))));
    }

    #[test]
    fn corrupt_registry_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("registry.json"), b"{not json").expect("writes");
        let reg = Registry::open(dir.path());
        let err = reg.register("m", "a", None, None).expect_err("refused");
        assert!(matches!(&err, RegistryError::Corrupt(why) if why.contains("registry.json") && why.contains("no journal")), "{err}");
        assert_eq!(fs::read(dir.path().join("registry.json")).expect("reads"), b"{not json");
    }

    #[test]
    fn a_damaged_or_deleted_registry_is_recovered_from_the_journal_not_started_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Registry::open(dir.path());
        reg.register("m", &"a".repeat(64), None, None).expect("registers");
        reg.register("m", &"b".repeat(64), None, None).expect("registers");
        // Garbage written over it: recovered; the next version is 3, not a second "v1".
        fs::write(dir.path().join("registry.json"), b"garbage").expect("damages");
        assert_eq!(reg.model("m").expect("recovered").versions.len(), 2);
        assert_eq!(reg.register("m", &"c".repeat(64), None, None).expect("registers"), (3, true));
        // Deleted: the same.
        fs::remove_file(dir.path().join("registry.json")).expect("deletes");
        assert_eq!(reg.model("m").expect("recovered").versions.len(), 3);
        assert_eq!(reg.register("m", &"d".repeat(64), None, None).expect("registers"), (4, true));
        // A journal line cut short by a crash mid-append is skipped.
        let mut journal = fs::read_to_string(dir.path().join("registry.journal")).expect("journal");
        journal.push_str("{\"models\": {\"m\"");
        fs::write(dir.path().join("registry.journal"), journal).expect("writes");
        fs::remove_file(dir.path().join("registry.json")).expect("deletes");
        assert!(reg.model("m").is_ok());
    }

    #[test]
    fn concurrent_writers_lose_no_update_even_when_a_lock_file_is_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        /// Stops the deleting thread when dropped, so that a writer's panic (a lost or doubled
        /// version) fails the test instead of leaving the scope waiting on that thread.
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            // What broke the old lock: its file deleted while runs wait on it.
            scope.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = fs::remove_file(dir.path().join("registry.lock"));
                    std::thread::yield_now();
                }
            });
            let _stop = StopOnDrop(&stop);
            let writers: Vec<_> = (0..4)
                .map(|w| {
                    let reg = Registry::open(dir.path());
                    scope.spawn(move || {
                        (0..25)
                            .map(|i| reg.register("m", &format!("{w:032}{i:032}"), None, None).expect("registers").0)
                            .collect::<Vec<u32>>()
                    })
                })
                .collect();
            let mut versions: Vec<u32> = writers.into_iter().flat_map(|w| w.join().expect("writer")).collect();
            versions.sort_unstable();
            assert_eq!(versions, (1..=100).collect::<Vec<u32>>(), "every writer told a distinct version");
        });
        assert_eq!(Registry::open(dir.path()).model("m").expect("model").versions.len(), 100);
    }
}
