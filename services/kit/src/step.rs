use crate::wire::{DatasetInfo, SplitInfo, TransformInfo};

/// What a cached step answers with; it says whether it came from the cache.
pub trait StepSummary: serde::Serialize + serde::de::DeserializeOwned {
    fn set_cached(&mut self, cached: bool);
}

/// Runs a pipeline step through the store's step cache. When `key` (the step's inputs and
/// parameters, hashed) was recorded before and its output is still in the store, the recorded
/// summary is returned, marked cached. Otherwise `run` does the work and returns the id of the
/// artifact it stored and a summary; both are recorded under `key` as `output`, and the summary
/// is returned, marked not cached.
pub fn cached_step<T: StepSummary>(
    store: &logitflow_store::Store,
    key: &str,
    output: &str,
    run: impl FnOnce() -> Result<(String, T), crate::ApiError>,
) -> Result<T, crate::ApiError> {
    if let Some(record) = store.step_lookup(key)
        && let Ok(mut summary) = serde_json::from_value::<T>(record.summary)
    {
        summary.set_cached(true);
        return Ok(summary);
    }
    let (id, mut summary) = run()?;
    summary.set_cached(false);
    let value =
        serde_json::to_value(&summary).map_err(|e| crate::ApiError::Internal(e.to_string()))?;
    store.step_record(
        key,
        &logitflow_store::StepRecord { outputs: [(output.to_string(), id)].into(), summary: value },
    )?;
    Ok(summary)
}

// The summaries of the cached pipeline steps (ingest, preprocess, features).

impl StepSummary for DatasetInfo {
    fn set_cached(&mut self, cached: bool) {
        self.cached = cached;
    }
}

impl StepSummary for SplitInfo {
    fn set_cached(&mut self, cached: bool) {
        self.cached = cached;
    }
}

impl StepSummary for TransformInfo {
    fn set_cached(&mut self, cached: bool) {
        self.cached = cached;
    }
}
