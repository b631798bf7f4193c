//! The home's store does not grow for ever: [`collect_garbage`] removes the artifacts nothing
//! reaches, and the step records that name them.
//!
//! What is kept: every registered version's model and evaluation report, everything their
//! manifests name as inputs (split, transform, dataset, transitively), and the outputs of every
//! step record used or written within the retention window (a step cache hit refreshes its
//! record's time, so a run reusing an old dataset keeps it). An artifact younger than the grace
//! window is kept whatever reaches it: a run writing at the same time has not registered its
//! model yet. The registry must read whole: with its roots unknown, nothing is removed.
//!
//! An artifact goes in one rename out of `artifacts/` into the staging area, then is deleted, so
//! a reader finds it whole or not at all; its seals go with it.

use super::{HomeStorage, unique_name};
use crate::registry::{RegistryData, RegistryStorage};
use crate::storage::{Storage, StoreError, now_unix_ms};
use crate::store::{Manifest, StepRecord};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::Duration;

/// What [`collect_garbage`] keeps, and whether it removes anything.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Step records used or written within this long keep their outputs.
    pub keep_steps: Duration,
    /// Artifacts younger than this are kept, reached or not.
    pub grace: Duration,
    /// List what would go, and remove nothing.
    pub dry_run: bool,
}

/// An artifact nothing reaches.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreached {
    pub id: String,
    /// Its kind (`dataset`, `model`, …), or `incomplete` for a directory with no manifest.
    pub kind: String,
    pub bytes: u64,
    /// Milliseconds since it was made.
    pub age_ms: u64,
}

/// What a collection found and did.
#[derive(Debug, Clone, PartialEq)]
pub struct GcReport {
    /// The artifacts reached, or young enough to keep.
    pub kept: usize,
    /// The artifacts removed (or, in a dry run, that would be).
    pub removed: Vec<Unreached>,
    /// The step records removed with them.
    pub steps_removed: usize,
    pub dry_run: bool,
}

impl GcReport {
    pub fn bytes(&self) -> u64 {
        self.removed.iter().map(|u| u.bytes).sum()
    }
}

/// Removes from the store in `home` what nothing reaches ([`GcOptions`] says what is kept).
pub fn collect_garbage(home: &Path, options: &GcOptions) -> Result<GcReport, StoreError> {
    let storage = HomeStorage::at(home);
    let registry = storage.load_registry().map_err(|e| {
        StoreError::io(
            &home.join("registry.json"),
            std::io::Error::other(format!("{e}; nothing was removed")),
        )
    })?;
    let now = now_unix_ms();
    let manifests = manifests(home)?;
    let steps = step_records(&storage, home)?;
    let recent_ms = now.saturating_sub(options.keep_steps.as_millis() as u64);
    let roots = registry_roots(&registry).chain(
        steps.iter().filter(|s| s.used_ms >= recent_ms).flat_map(|s| s.outputs.iter().cloned()),
    );
    let reached = reached_from(roots, &manifests);
    let young_ms = now.saturating_sub(options.grace.as_millis() as u64);
    let unreached: Vec<Unreached> = manifests
        .iter()
        .filter(|(id, found)| !reached.contains(*id) && found.made_ms < young_ms)
        .map(|(id, found)| Unreached {
            id: id.clone(),
            kind: found.kind.clone(),
            bytes: found.bytes,
            age_ms: now - found.made_ms,
        })
        .collect();
    let gone: BTreeSet<&str> = unreached.iter().map(|u| u.id.as_str()).collect();
    let stale_steps: Vec<&StepFile> =
        steps.iter().filter(|s| s.outputs.iter().any(|o| gone.contains(o.as_str()))).collect();
    let report = GcReport {
        kept: manifests.len() - unreached.len(),
        steps_removed: stale_steps.len(),
        dry_run: options.dry_run,
        removed: unreached,
    };
    if options.dry_run {
        return Ok(report);
    }
    // A step record first, so that no cache hit finds an output about to go.
    for step in stale_steps {
        let _ = fs::remove_file(&step.path);
    }
    for artifact in &report.removed {
        remove_artifact(home, &artifact.id)?;
    }
    Ok(report)
}

/// Every registered version's model and evaluation report.
fn registry_roots(registry: &RegistryData) -> impl Iterator<Item = String> + '_ {
    registry
        .models
        .values()
        .flat_map(|m| &m.versions)
        .flat_map(|v| std::iter::once(v.artifact.clone()).chain(v.report.clone()))
}

/// What is reached from `roots` through the manifests' inputs.
fn reached_from(
    roots: impl Iterator<Item = String>,
    manifests: &BTreeMap<String, Found>,
) -> BTreeSet<String> {
    let mut reached = BTreeSet::new();
    let mut frontier: Vec<String> = roots.collect();
    while let Some(id) = frontier.pop() {
        if let Some(found) = manifests.get(&id)
            && reached.insert(id)
        {
            frontier.extend(found.inputs.iter().cloned());
        }
    }
    reached
}

/// An artifact directory as found: its manifest's kind, inputs and time, and its size.
struct Found {
    kind: String,
    inputs: Vec<String>,
    made_ms: u64,
    bytes: u64,
}

/// Every directory in `artifacts/`, made at the later of its manifest's time and its
/// directory's (young if either says so). One with no readable manifest (half-written, damaged
/// or foreign) counts as made when its directory last changed, and reaches nothing.
fn manifests(home: &Path) -> Result<BTreeMap<String, Found>, StoreError> {
    let dir = home.join("artifacts");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(StoreError::io(&dir, e)),
    };
    let mut found = BTreeMap::new();
    for entry in entries.flatten().filter(|e| e.path().is_dir()) {
        let path = entry.path();
        let bytes = fs::read_dir(&path)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum();
        let manifest = fs::read(path.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok());
        let changed_ms = modified_ms(&path);
        let artifact = match manifest {
            Some(m) => Found {
                kind: m.kind.name().to_string(),
                inputs: m.inputs,
                made_ms: m.created_unix_ms.max(changed_ms),
                bytes,
            },
            None => {
                Found { kind: "incomplete".into(), inputs: Vec::new(), made_ms: changed_ms, bytes }
            }
        };
        found.insert(entry.file_name().to_string_lossy().into_owned(), artifact);
    }
    Ok(found)
}

/// A step record: its file, when it was last used or written, and the artifacts it names.
struct StepFile {
    path: std::path::PathBuf,
    used_ms: u64,
    outputs: Vec<String>,
}

fn step_records(storage: &HomeStorage, home: &Path) -> Result<Vec<StepFile>, StoreError> {
    let dir = home.join("steps");
    Ok(storage
        .list("steps")?
        .into_iter()
        .filter(|name| name.ends_with(".json"))
        .map(|name| {
            let path = dir.join(name);
            let record =
                fs::read(&path).ok().and_then(|b| serde_json::from_slice::<StepRecord>(&b).ok());
            let outputs = record.map(|r| r.outputs.into_values().collect()).unwrap_or_default();
            StepFile { used_ms: modified_ms(&path), path, outputs }
        })
        .collect())
}

/// When `path` last changed, in ms since the epoch (now, if that cannot be read: kept).
fn modified_ms(path: &Path) -> u64 {
    let modified = fs::metadata(path).and_then(|m| m.modified()).ok();
    modified
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(now_unix_ms, |d| d.as_millis() as u64)
}

/// Moves artifact `id` out of `artifacts/` in one rename, then deletes it and its seals.
fn remove_artifact(home: &Path, id: &str) -> Result<(), StoreError> {
    let (dir, aside) =
        (home.join("artifacts").join(id), home.join("tmp").join(unique_name(&format!("{id}.gc"))));
    match fs::rename(&dir, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(&dir, e)),
    }
    let _ = fs::remove_dir_all(&aside);
    let _ = fs::remove_dir_all(home.join("seals").join("artifacts").join(id));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;
    use crate::registry::Registry;

    /// An artifact as the store lays it out: a manifest naming its inputs, and a file.
    fn artifact(home: &Path, id: &str, kind: Kind, inputs: &[&str]) {
        let dir = home.join("artifacts").join(id);
        fs::create_dir_all(&dir).expect("dir");
        fs::write(dir.join("x.npy"), vec![0u8; 1000]).expect("file");
        let manifest = Manifest {
            id: id.into(),
            kind,
            producer: "test".into(),
            inputs: inputs.iter().map(|i| i.to_string()).collect(),
            params: serde_json::Value::Null,
            created_unix_ms: now_unix_ms(),
            files: BTreeMap::new(),
        };
        fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest).expect("json"))
            .expect("manifest");
    }

    fn step(home: &Path, name: &str, output: &str, used: std::time::SystemTime) {
        let path = home.join("steps").join(format!("{name}.json"));
        let record = crate::StepRecord {
            outputs: [("dataset".to_string(), output.to_string())].into(),
            summary: Default::default(),
        };
        fs::write(&path, serde_json::to_vec(&record).expect("json")).expect("step");
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(used))
            .expect("dated");
    }

    /// A registered model keeps its lineage, and a step record used lately its output; an
    /// orphan goes with the old step record that named it, unless it is younger than the grace
    /// window; a dry run removes nothing; an unreadable registry stops it all.
    #[test]
    fn what_nothing_reaches_goes_and_what_a_version_or_a_recent_step_reaches_stays() {
        let home = tempfile::tempdir().expect("tempdir");
        let home = home.path();
        HomeStorage::open(home).expect("a store");
        fs::create_dir_all(home.join("steps")).expect("steps");
        artifact(home, "dataset", Kind::Dataset, &[]);
        artifact(home, "split", Kind::Split, &["dataset"]);
        artifact(home, "model", Kind::Model, &["split"]);
        artifact(home, "report", Kind::Report, &["model"]);
        artifact(home, "orphan", Kind::Dataset, &[]);
        artifact(home, "reused", Kind::Dataset, &[]);
        Registry::open(home)
            .register("m", "model", Some("report".into()), None)
            .expect("registers");
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(30 * 86_400);
        step(home, "old", "orphan", long_ago);
        step(home, "recent", "reused", std::time::SystemTime::now());
        std::thread::sleep(Duration::from_millis(5));

        let young = GcOptions {
            keep_steps: Duration::from_secs(7 * 86_400),
            grace: Duration::from_secs(3600),
            dry_run: false,
        };
        assert_eq!(
            collect_garbage(home, &young).expect("collects").removed,
            [],
            "everything is younger than an hour"
        );
        let options = GcOptions { grace: Duration::ZERO, dry_run: true, ..young };
        let dry = collect_garbage(home, &options).expect("collects");
        assert_eq!(dry.removed.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["orphan"]);
        assert_eq!(
            (dry.kept, dry.steps_removed, dry.bytes()),
            (
                5,
                1,
                1000 + fs::metadata(home.join("artifacts/orphan/manifest.json")).expect("m").len()
            )
        );
        assert!(
            home.join("artifacts/orphan").exists() && home.join("steps/old.json").exists(),
            "a dry run removes nothing"
        );

        let done =
            collect_garbage(home, &GcOptions { dry_run: false, ..options }).expect("collects");
        let ids = |r: &GcReport| r.removed.iter().map(|u| u.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&done), ids(&dry), "what the dry run listed");
        assert!(!home.join("artifacts/orphan").exists() && !home.join("steps/old.json").exists());
        for kept in ["dataset", "split", "model", "report", "reused"] {
            assert!(
                home.join("artifacts").join(kept).join("manifest.json").exists(),
                "{kept} stays"
            );
        }
        assert!(
            fs::read_dir(home.join("tmp")).expect("tmp").next().is_none(),
            "nothing left aside"
        );

        fs::write(home.join("registry.json"), b"{ damaged").expect("damage");
        fs::remove_file(home.join("registry.journal")).expect("no journal");
        let refused = collect_garbage(home, &options).expect_err("roots unknown").to_string();
        assert!(refused.contains("nothing was removed"), "{refused}");
    }

    /// A step cache hit marks its record as used now, so that a run reusing an old dataset
    /// keeps it through a collection made meanwhile.
    #[test]
    fn a_step_cache_hit_refreshes_its_records_time() {
        let home = tempfile::tempdir().expect("tempdir");
        let store = crate::Store::open(home.path()).expect("a store");
        let id = store
            .put_json(
                Kind::Dataset,
                "test",
                Vec::new(),
                serde_json::Value::Null,
                "d.json",
                &[1, 2, 3],
            )
            .expect("stored");
        let record = crate::StepRecord {
            outputs: [("dataset".to_string(), id)].into(),
            summary: Default::default(),
        };
        store.step_record("k", &record).expect("recorded");
        let path = home.path().join("steps/k.json");
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(30 * 86_400);
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(long_ago))
            .expect("dated");
        assert!(modified_ms(&path) < now_unix_ms() - 86_400_000);
        assert_eq!(store.step_lookup("k"), Some(record));
        assert!(modified_ms(&path) + 60_000 > now_unix_ms(), "used just now");
    }
}
