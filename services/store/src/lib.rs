//! Where logitflow keeps what it makes, and the only crate of it that touches files.
//!
//! - [`Store`]: content-addressed artifacts (datasets, splits, transforms, models, reports),
//!   each a manifest and its files, over a [`Storage`]; and the step cache.
//! - [`Storage`]: the seam between a home on one disk ([`home::HomeStorage`]) and an object
//!   store many machines share (`s3://`, in the `logitflow-objects` crate).
//! - [`registry::Registry`]: integer model versions with aliases, persisted through its own
//!   seam, [`registry::RegistryStorage`].
//! - [`home`]: the home directory: its layout, locks, seals ([`home::seal`]) and garbage
//!   collection ([`home::gc`]).
//!
//! An artifact's commit point is its `manifest.json`, written last: an artifact without one
//! does not exist to any reader. The registry's is the replacement of `registry.json` whole (a
//! rename in a home, a compare-and-swap in a bucket).

mod datasets;
mod digest;
pub mod home;
mod npy;
mod prefault;
pub mod registry;
mod splits;
mod storage;
mod store;
#[cfg(test)]
mod tests;

pub use datasets::{Columns, DatasetRows, DatasetWriter, Labels};
pub use digest::FileEntry;
pub use splits::{SplitPart, SplitReport, SplitRows};
pub use storage::{
    Contents, Seal, Sealing, StagingFile, Storage, StoreError, StoredObject, now_unix_ms,
};
pub use store::{Kind, Manifest, SplitSources, StepRecord, Store, check_artifact_id, step_key};
