//! Where an invocation keeps things: [`Home`], its home directory and the store it names.

use crate::supervisor::SupervisorConfig;
use anyhow::Context;
use std::path::PathBuf;

/// Where this invocation keeps things: its home directory, and the store of its artifacts,
/// registry and run reports where that is not the home (`--store`, `LOGITFLOW_STORE`). Every
/// command takes it, and hands the store on to the services it starts and to the runs view.
#[derive(Debug, Clone, PartialEq)]
pub struct Home {
    pub dir: PathBuf,
    /// `file:///path` or `s3://bucket/prefix`; `None`: the store is in the home.
    pub store: Option<String>,
}

impl Home {
    /// `dir` (default: [`logitflow_kit::default_home`]), created and made absolute, with the
    /// store named, if any.
    pub fn resolve(dir: Option<PathBuf>, store: Option<String>) -> anyhow::Result<Home> {
        Ok(Home::new(resolve_home(dir)?, store))
    }

    /// A home that exists, with the store named (an empty name is none).
    pub fn new(dir: PathBuf, store: Option<String>) -> Home {
        Home { dir, store: store.filter(|u| !u.trim().is_empty()) }
    }

    /// Where run reports are kept: the store, as the registry is.
    pub fn runs_storage(&self) -> Result<std::sync::Arc<dyn logitflow_store::Storage>, String> {
        logitflow_objects::open_storage(self.store.as_deref(), &self.dir)
            .map_err(|e| format!("the store cannot be opened: {e}"))
    }

    /// The supervisor's configuration for services on this home and its store, reading
    /// files under `allowed_roots`.
    pub fn supervisor_config(
        &self,
        allowed_roots: Vec<PathBuf>,
    ) -> std::io::Result<SupervisorConfig> {
        let mut config = SupervisorConfig::new(self.dir.clone(), allowed_roots)?;
        config.store = self.store.clone();
        Ok(config)
    }

    /// The model registry of the store.
    pub fn registry(&self) -> anyhow::Result<logitflow_store::registry::Registry> {
        logitflow_objects::open_registry(self.store.as_deref(), &self.dir)
            .map_err(|e| anyhow::anyhow!("the store cannot be opened: {e}"))
    }
}

pub fn resolve_home(home: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let home = home.unwrap_or_else(logitflow_kit::default_home);
    std::fs::create_dir_all(&home)
        .with_context(|| format!("cannot create the home directory {}", home.display()))?;
    home.canonicalize()
        .with_context(|| format!("cannot resolve the home directory {}", home.display()))
}
