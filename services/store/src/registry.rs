//! The model registry: [`Registry`], integer versions per model name and the aliases
//! `stable` and `candidate`, in the store's `registry.json`.
//!
//! Every change is a read–modify–write that its [`RegistryStorage`] makes safe against concurrent
//! writers: in a home, under an exclusive lock and journalled
//! ([`crate::home::HomeStorage`]); in an object store, by compare-and-swap on the object's
//! ETag, retried on conflict. Readers (serve) never see half a registry, and writers on one
//! machine or many never lose or duplicate each other's versions.

use crate::storage::{StoreError, now_unix_ms};
use logitflow_core::metrics::Metrics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// How many changes made this state, where the store counts them (a bucket's registry log
    /// names each state by it); 0 where it does not.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub fn check_name(name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name != "."
        && name != "..";
    if ok { Ok(()) } else { Err(RegistryError::BadName(name.to_string())) }
}

/// Where a [`Registry`] is kept: beside the artifacts in a home (under a lock, journalled) or
/// in an object store (by compare-and-swap). Its own seam, apart from the artifacts'
/// [`crate::Storage`], because its guarantee is another: no lost update between writers.
///
/// The methods block; services call them from blocking threads, never on an async worker.
pub trait RegistryStorage: Send + Sync + std::fmt::Debug {
    /// The registry as it is now (empty when there is none yet).
    fn load_registry(&self) -> Result<RegistryData, RegistryError>;
    /// Applies `change` to the registry so that concurrent writers, here or on other machines,
    /// never lose each other's changes (a lock, or compare-and-swap retried with `change` run
    /// again on the newer registry). Nothing is written when `change` fails.
    fn update_registry(
        &self,
        change: &mut dyn FnMut(&mut RegistryData) -> Result<(), RegistryError>,
    ) -> Result<(), RegistryError>;
    /// Something that changes whenever the registry does (its hash, its ETag); `None` when it
    /// cannot be read. What serve polls to notice a promotion made anywhere.
    fn registry_fingerprint(&self) -> Option<String>;
}

/// The model registry of a store. Cheap to clone; every call reads or writes through its
/// [`RegistryStorage`], so every process sharing the store sees one registry. A home's
/// registry is opened by [`Registry::open`] (in [`crate::home`]).
#[derive(Debug, Clone)]
pub struct Registry {
    storage: Arc<dyn RegistryStorage>,
}

impl Registry {
    /// The registry kept in any [`RegistryStorage`].
    pub fn on(storage: Arc<dyn RegistryStorage>) -> Registry {
        Registry { storage }
    }

    pub fn load(&self) -> Result<RegistryData, RegistryError> {
        self.storage.load_registry()
    }

    /// Changes whenever the registry does; `None` when it cannot be read.
    pub fn fingerprint(&self) -> Option<String> {
        self.storage.registry_fingerprint()
    }

    pub fn model(&self, name: &str) -> Result<ModelEntry, RegistryError> {
        self.load()?
            .models
            .remove(name)
            .ok_or_else(|| RegistryError::UnknownModel(name.to_string()))
    }

    pub fn resolve(&self, name: &str, selector: &str) -> Result<VersionEntry, RegistryError> {
        self.model(name)?.resolve(selector).cloned().ok_or_else(|| RegistryError::UnknownVersion {
            name: name.to_string(),
            selector: selector.to_string(),
        })
    }

    /// Runs `change` on the registry and writes the result, safe against concurrent writers
    /// ([`RegistryStorage::update_registry`]); `change` may run more than once, each time on the
    /// newest registry. Nothing is written when `change` fails.
    pub fn update<R>(
        &self,
        mut change: impl FnMut(&mut RegistryData) -> Result<R, RegistryError>,
    ) -> Result<R, RegistryError> {
        let mut result = None;
        self.storage.update_registry(&mut |data| {
            result = Some(change(data)?);
            Ok(())
        })?;
        result.ok_or_else(|| RegistryError::Corrupt("the registry update ran no change".into()))
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
                    existing.metrics = metrics.clone();
                    existing.report = report.clone();
                }
                return Ok((existing.version, false));
            }
            let version = entry.versions.last().map_or(1, |v| v.version + 1);
            entry.versions.push(VersionEntry {
                version,
                artifact: artifact.to_string(),
                report: report.clone(),
                metrics: metrics.clone(),
                created_unix_ms: now_unix_ms(),
            });
            Ok((version, true))
        })
    }

    /// Points `alias` at `version`. Making a version stable also clears a candidate alias that
    /// pointed at it, and records it for rollback.
    pub fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: u32,
    ) -> Result<ModelEntry, RegistryError> {
        self.update(|data| {
            let entry = data
                .models
                .get_mut(name)
                .ok_or_else(|| RegistryError::UnknownModel(name.to_string()))?;
            if entry.version(version).is_none() {
                return Err(RegistryError::UnknownVersion {
                    name: name.to_string(),
                    selector: version.to_string(),
                });
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
            let entry = data
                .models
                .get_mut(name)
                .ok_or_else(|| RegistryError::UnknownModel(name.to_string()))?;
            let current = entry.aliases.get(STABLE).copied().unwrap_or(0);
            if entry.stable_history.len() < 2 {
                return Err(RegistryError::NothingToRollBack {
                    name: name.to_string(),
                    version: current,
                });
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
    use std::fs;

    #[test]
    fn versions_aliases_and_rollback() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Registry::open(dir.path());
        assert_eq!(
            reg.register("admissions", &"a".repeat(64), None, None).expect("registers"),
            (1, true)
        );
        assert_eq!(
            reg.register("admissions", &"b".repeat(64), None, None).expect("registers"),
            (2, true)
        );
        assert_eq!(
            reg.register("admissions", &"a".repeat(64), None, None).expect("registers"),
            (1, false)
        );
        reg.set_alias("admissions", STABLE, 1).expect("aliases");
        reg.set_alias("admissions", CANDIDATE, 2).expect("aliases");
        assert_eq!(reg.resolve("admissions", "candidate").expect("resolves").version, 2);
        reg.set_alias("admissions", STABLE, 2).expect("aliases");
        let entry = reg.model("admissions").expect("exists");
        assert_eq!(entry.aliases.get(CANDIDATE), None);
        assert_eq!(reg.rollback("admissions").expect("rolls back").aliases[STABLE], 1);
        assert!(matches!(reg.rollback("admissions"), Err(RegistryError::NothingToRollBack { .. })));
        assert!(matches!(
            reg.resolve("admissions", "9"),
            Err(RegistryError::UnknownVersion { .. })
        ));
        assert!(matches!(reg.register("../x", "a", None, None), Err(RegistryError::BadName(_))));
    }

    #[test]
    fn corrupt_registry_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("registry.json"), b"{not json").expect("writes");
        let reg = Registry::open(dir.path());
        let err = reg.register("m", "a", None, None).expect_err("refused");
        assert!(
            matches!(&err, RegistryError::Corrupt(why) if why.contains("registry.json") && why.contains("no journal")),
            "{err}"
        );
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
                            .map(|i| {
                                reg.register("m", &format!("{w:032}{i:032}"), None, None)
                                    .expect("registers")
                                    .0
                            })
                            .collect::<Vec<u32>>()
                    })
                })
                .collect();
            let mut versions: Vec<u32> =
                writers.into_iter().flat_map(|w| w.join().expect("writer")).collect();
            versions.sort_unstable();
            assert_eq!(
                versions,
                (1..=100).collect::<Vec<u32>>(),
                "every writer told a distinct version"
            );
        });
        assert_eq!(Registry::open(dir.path()).model("m").expect("model").versions.len(), 100);
    }
}
