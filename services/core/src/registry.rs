//! The model registry: [`Registry`], integer versions per model name and the aliases
//! `stable` and `candidate`, in `<home>/registry.json`.
//!
//! Every change is read–modify–write under an exclusive lock on `<home>/registry.lock`, and the
//! new file replaces the old by an atomic rename, so readers (serve) never see half a registry
//! and concurrent writers never lose each other's versions.

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

#[derive(Debug, Clone)]
pub struct Registry {
    path: PathBuf,
    lock_path: PathBuf,
}

impl Registry {
    pub fn open(home: impl Into<PathBuf>) -> Registry {
        let home = home.into();
        Registry { path: home.join("registry.json"), lock_path: home.join("registry.lock") }
    }

    pub fn load(&self) -> Result<RegistryData, RegistryError> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistryData::default()),
            Err(e) => Err(StoreError::Io { path: self.path.clone(), source: e }.into()),
        }
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
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| StoreError::Io { path: self.lock_path.clone(), source: e })?;
        lock.lock().map_err(|e| StoreError::Io { path: self.lock_path.clone(), source: e })?;
        let mut data = self.load()?;
        let result = change(&mut data)?;
        let bytes = serde_json::to_vec_pretty(&data).map_err(|e| RegistryError::Corrupt(e.to_string()))?;
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
        assert!(matches!(reg.register("m", "a", None, None), Err(RegistryError::Corrupt(_))));
        assert_eq!(fs::read(dir.path().join("registry.json")).expect("reads"), b"{not json");
    }
}
