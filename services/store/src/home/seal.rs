//! Seals: a large file's hash check, remembered for as long as the file is not written to.
//!
//! Every read of an artifact checks its bytes against the manifest's BLAKE3. For the 80 MB
//! `x.npy` of a 1M × 10 CSV that meant hashing, moments apart, bytes that ingest had just
//! hashed as it wrote them: features, train's load ahead and evaluate each hashed the whole file
//! again.
//!
//! So a file of [`SEAL_MIN_BYTES`] or more that the store writes is sealed once it is in
//! place: `<home>/seals/<its key>.json` holds what the file system says of it ([`FileState`]:
//! device, inode, size, modification and change times to the nanosecond) and the BLAKE3 it
//! was written with. A reader that opens the file and finds it in that state takes the seal's
//! BLAKE3 for the one it would have hashed, and looks again once it has read the file. A reader
//! that hashed such a file whole, finding no seal it could trust, seals it.
//!
//! - Any write to the file, and any change of its times, sets its change time, which no one
//!   can set back: the seal is void, and a byte changed, a truncation or a replacement is
//!   refused by the hash check as before.
//! - A seal written in the same clock tick as the file's last change could miss a change made
//!   in that tick, so a seal file no newer than the file's change time is not trusted (git's
//!   "racily clean" rule), and the file is hashed.
//! - What a seal does not catch is what the kernel never sees: bits that decay on the disk
//!   under an unchanged file. (The hash check is against damage, not against someone who can
//!   write the home: they could as well rewrite a manifest.)

use crate::storage::{Seal, Sealing};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Files below this size are not sealed: hashing them costs less than a seal's write and read.
pub(crate) const SEAL_MIN_BYTES: u64 = 1 << 20;

/// A seal file is a few hundred bytes; anything longer is no seal.
const SEAL_FILE_LIMIT: u64 = 4096;

/// What the file system says of a file: the same reading later means it was not written to,
/// nor replaced, in between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileState {
    device: u64,
    inode: u64,
    bytes: u64,
    /// Seconds and nanoseconds since the epoch.
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileState {
    pub(crate) fn of(metadata: &fs::Metadata) -> FileState {
        FileState {
            device: metadata.dev(),
            inode: metadata.ino(),
            bytes: metadata.size(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// A seal file's contents.
#[derive(Serialize, Deserialize)]
struct SealFile {
    blake3: String,
    file: FileState,
}

/// Writes the seal of a file now in state `state` with digest `blake3` to `seal_path`, through
/// a temporary file in `tmp` and a rename, so a reader sees a whole seal or none. Not synced:
/// a seal lost in a crash only costs the next reader a hash. Best effort for the same reason.
pub(crate) fn write(seal_path: &Path, tmp: &Path, state: FileState, blake3: String) {
    let Ok(bytes) = serde_json::to_vec(&SealFile { blake3, file: state }) else { return };
    let staged = tmp.join(super::unique_name("seal"));
    let written = seal_path.parent().is_some_and(|dir| fs::create_dir_all(dir).is_ok())
        && fs::write(&staged, bytes).is_ok()
        && fs::rename(&staged, seal_path).is_ok();
    if !written {
        let _ = fs::remove_file(&staged);
    }
}

/// What vouches for `file`, just opened and found in `state`: the seal at `seal_path` if it was
/// written for this very state and is newer than the file's last change; else a way to seal
/// it once a reader has hashed it whole (a file stored before seals, or sealed in the tick of
/// its last change).
pub(crate) fn sealing(
    seal_path: PathBuf,
    tmp: PathBuf,
    file: &fs::File,
    state: FileState,
) -> Sealing {
    if let Some(seal) = find(&seal_path, file, &state) {
        return Sealing::Sealed(seal);
    }
    let Ok(file) = file.try_clone() else { return Sealing::None };
    Sealing::Unsealed(Box::new(move |blake3| {
        if file.metadata().is_ok_and(|now| FileState::of(&now) == state) {
            write(&seal_path, &tmp, state, blake3);
        }
    }))
}

fn find(seal_path: &Path, file: &fs::File, state: &FileState) -> Option<Seal> {
    let seal = fs::File::open(seal_path).ok()?;
    let sealed_at = seal.metadata().ok()?;
    if sealed_at.len() > SEAL_FILE_LIMIT
        || (sealed_at.mtime(), sealed_at.mtime_nsec()) <= state.changed
    {
        return None;
    }
    let mut bytes = Vec::new();
    seal.take(SEAL_FILE_LIMIT).read_to_end(&mut bytes).ok()?;
    let sealed: SealFile = serde_json::from_slice(&bytes).ok()?;
    if sealed.file != *state {
        return None;
    }
    let (file, state) = (file.try_clone().ok()?, state.clone());
    Some(Seal {
        blake3: sealed.blake3,
        unchanged: Box::new(move || file.metadata().is_ok_and(|m| FileState::of(&m) == state)),
    })
}
