/// Runs a pipeline step through the store's step cache. When `key` (the step's inputs and
/// parameters, hashed) was recorded before and its output is still in the store, the recorded
/// summary is returned with `true`. Otherwise `run` does the work and returns the id of the
/// artifact it stored and a summary; both are recorded under `key` as `output`, and the summary
/// is returned with `false`.
pub fn cached_step<T: serde::Serialize + serde::de::DeserializeOwned>(
    store: &logitflow_core::store::Store,
    key: &str,
    output: &str,
    run: impl FnOnce() -> Result<(String, T), crate::ApiError>,
) -> Result<(T, bool), crate::ApiError> {
    if let Some(record) = store.step_lookup(key)
        && let Ok(summary) = serde_json::from_value::<T>(record.summary)
    {
        return Ok((summary, true));
    }
    let (id, summary) = run()?;
    let value = serde_json::to_value(&summary).map_err(|e| crate::ApiError::Internal(e.to_string()))?;
    store.step_record(key, &logitflow_core::store::StepRecord { outputs: [(output.to_string(), id)].into(), summary: value })?;
    Ok((summary, false))
}
