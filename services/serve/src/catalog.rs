//! What serve serves: the [`Catalog`] of every model's loaded versions ([`Served`]), each
//! [`Version`] with its statistics, swapped whole on a load, and how a model's versions are
//! loaded from the registry and the store.

use crate::stats::VersionStats;
use logitflow_core::model::Model;
use logitflow_kit::ApiError;
use logitflow_store::Kind;
use logitflow_store::Store;
use logitflow_store::registry::{Registry, STABLE};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Every version of one model that could be loaded, with its aliases, and the versions that
/// could not, with why.
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) versions: BTreeMap<u32, Version>,
    pub(crate) aliases: BTreeMap<String, u32>,
    pub(crate) unavailable: BTreeMap<u32, String>,
    /// Aliases that point at an unavailable version: (alias, version, why). Such an alias keeps
    /// the version it served before, if any.
    pub(crate) refused: Vec<(String, u32, String)>,
}

/// One loaded version: its artifact, its model, and its inference statistics (kept while the
/// version is served, across swaps).
#[derive(Debug)]
pub(crate) struct Version {
    pub(crate) artifact: String,
    pub(crate) model: Arc<Model>,
    pub(crate) stats: Arc<VersionStats>,
}

impl Version {
    /// Counts what one request that began at `started` came to — its rows answered, or a
    /// refusal — in the version's statistics, and passes the answer on.
    pub(crate) fn count<T>(
        &self,
        started: std::time::Instant,
        answered: Result<(T, usize), ApiError>,
    ) -> Result<T, ApiError> {
        self.stats.record(started, answered.as_ref().map(|&(_, rows)| rows).map_err(|_| ()));
        answered.map(|(answer, _)| answer)
    }
}

pub(crate) type Catalog = HashMap<String, Arc<Served>>;

pub(crate) fn served_in<'c>(catalog: &'c Catalog, name: &str) -> Result<&'c Arc<Served>, ApiError> {
    catalog.get(name).ok_or_else(|| ApiError::NotFound(format!("model {name:?} is not loaded")))
}

impl Served {
    /// The version for `selector` (alias or number; `stable` when absent); `name` is for errors.
    pub(crate) fn resolve(
        &self,
        name: &str,
        selector: Option<&str>,
    ) -> Result<(u32, &Version), ApiError> {
        let selector = selector.unwrap_or(STABLE);
        let version = match self.aliases.get(selector) {
            Some(v) => *v,
            None => selector.parse::<u32>().map_err(|_| {
                ApiError::NotFound(format!("model {name:?} has no version or alias {selector:?}"))
            })?,
        };
        let loaded = self.versions.get(&version).ok_or_else(|| {
            ApiError::NotFound(format!("model {name:?} has no version {selector}"))
        })?;
        Ok((version, loaded))
    }
}

impl Served {
    /// Loads and checks every registered version of `name`, reusing those of `reusable` (what
    /// is served now) whose artifact is the same, and warms each new one. A version that cannot
    /// be loaded is reported, never takes the others down; an alias pointing at one keeps what
    /// it served before. Also gives the first refusal, for the load to answer with. Blocks.
    pub(crate) fn load(
        store: &Store,
        registry: &Registry,
        name: &str,
        reusable: Option<&Served>,
    ) -> Result<(Served, Option<ApiError>), ApiError> {
        let entry = registry.model(name)?;
        let mut versions = BTreeMap::new();
        let mut unavailable = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for v in &entry.versions {
            let loaded = reusable.as_ref().and_then(|c| c.versions.get(&v.version));
            let stats = loaded.map_or_else(Arc::default, |l| l.stats.clone());
            let model = match loaded.filter(|l| l.artifact == v.artifact) {
                Some(loaded) => loaded.model.clone(),
                None => match store.read_json::<Model>(&v.artifact, Kind::Model, "model.json") {
                    Ok(model) => {
                        // Warm: one prediction through the same code path requests take.
                        let _ = model.probability_raw(&vec![0.0; model.row_width()]);
                        Arc::new(model)
                    }
                    Err(e) => {
                        tracing::warn!(model = %name, version = v.version, error = %e, "version unavailable");
                        unavailable.insert(v.version, e.to_string());
                        errors.insert(v.version, ApiError::from(e));
                        continue;
                    }
                },
            };
            versions.insert(v.version, Version { artifact: v.artifact.clone(), model, stats });
        }
        let mut aliases = BTreeMap::new();
        let mut refused = Vec::new();
        let mut first_refusal = None;
        for (alias, version) in entry.aliases {
            if versions.contains_key(&version) {
                aliases.insert(alias, version);
                continue;
            }
            let why = unavailable.get(&version).cloned().unwrap_or_else(|| "not registered".into());
            let before = reusable
                .as_ref()
                .and_then(|c| c.aliases.get(&alias).copied())
                .filter(|v| versions.contains_key(v));
            if let Some(previous) = before {
                aliases.insert(alias.clone(), previous);
            }
            if first_refusal.is_none() {
                let kept = before.map_or_else(
                    || format!("{alias} serves nothing"),
                    |v| format!("{alias} still serves v{v}"),
                );
                first_refusal = Some(match errors.remove(&version) {
                    Some(ApiError::Unprocessable { code, message }) => ApiError::Unprocessable {
                        code,
                        message: format!("v{version}: {message}; {kept}"),
                    },
                    Some(other) => other,
                    None => {
                        ApiError::NotFound(format!("{alias} points at v{version}, which is {why}"))
                    }
                });
            }
            refused.push((alias, version, why));
        }
        Ok((Served { versions, aliases, unavailable, refused }, first_refusal))
    }
}
