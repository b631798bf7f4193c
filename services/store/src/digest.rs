//! The digests that check a file: BLAKE3, or SHA-256 for artifacts written before it
//! ([`Digest`]), taken as the bytes pass ([`HashingReader`]).

use crate::storage::Seal;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// A file of an artifact as its manifest lists it: its size and one digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// BLAKE3, hex: how files are checked (faster than SHA-256, which older manifests hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// SHA-256, hex: how files written before were checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub bytes: u64,
}

/// Bytes read and hashed at a time by one thread: 64 KiB, which a core's cache holds while
/// they are hashed (with 1 MiB, hashing alone took 1.5× as long).
pub(crate) const HASH_CHUNK_BYTES: usize = 64 << 10;

/// A reader that hashes (and counts) what passes through it.
pub(crate) struct HashingReader<R> {
    pub(crate) inner: R,
    pub(crate) digest: Digest,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A writer that keeps only a digest (BLAKE3, or SHA-256 to check a file written before
/// BLAKE3) and the length of what is written to it.
pub(crate) struct Digest {
    pub(crate) hasher: Hasher,
    pub(crate) bytes: u64,
    /// Called with the BLAKE3 when it matches ([`Sealing::Unsealed`]).
    pub(crate) seal_on_match: Option<Box<dyn FnOnce(String) + Send>>,
}

pub(crate) enum Hasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
    /// No hashing: the file's seal vouches for its BLAKE3 while the file is unchanged.
    Sealed(Seal),
}

impl Default for Digest {
    /// The digest new files are listed by.
    fn default() -> Self {
        Digest { hasher: Hasher::Blake3(Box::default()), bytes: 0, seal_on_match: None }
    }
}

impl Digest {
    /// The digest that checks a file listed as `entry`; none if it lists no digest.
    pub(crate) fn checking(entry: &FileEntry) -> Option<Digest> {
        let hasher = match (&entry.blake3, &entry.sha256) {
            (Some(_), _) => Hasher::Blake3(Box::default()),
            (None, Some(_)) => Hasher::Sha256(sha2::Sha256::default()),
            (None, None) => return None,
        };
        Some(Digest { hasher, bytes: 0, seal_on_match: None })
    }

    /// The digest of a file its seal vouches for: bytes are counted, not hashed.
    pub(crate) fn sealed(seal: Seal) -> Digest {
        Digest { hasher: Hasher::Sealed(seal), bytes: 0, seal_on_match: None }
    }

    /// The hex digest and the length.
    pub(crate) fn finish(self) -> (String, u64) {
        use sha2::Digest as _;
        let hex = match self.hasher {
            Hasher::Blake3(hasher) => hasher.finalize().to_hex().to_string(),
            Hasher::Sha256(sha) => logitflow_core::hex(&sha.finalize()),
            // Changed since it was sealed (or while it was read): no digest it could match.
            Hasher::Sealed(seal) if !(seal.unchanged)() => String::new(),
            Hasher::Sealed(seal) => seal.blake3,
        };
        (hex, self.bytes)
    }

    /// True when what was written is the file `entry` lists.
    pub(crate) fn matches(mut self, entry: &FileEntry) -> bool {
        let seal_on_match = self.seal_on_match.take();
        let is_blake3 = !matches!(self.hasher, Hasher::Sha256(_));
        let (hex, bytes) = self.finish();
        let expected = if is_blake3 { &entry.blake3 } else { &entry.sha256 };
        let matched = bytes == entry.bytes && expected.as_deref() == Some(hex.as_str());
        if matched
            && is_blake3
            && let Some(seal) = seal_on_match
        {
            seal(hex);
        }
        matched
    }
}

impl Digest {
    pub(crate) fn update(&mut self, buf: &[u8]) {
        match &mut self.hasher {
            Hasher::Blake3(hasher) => {
                hasher.update(buf);
            }
            Hasher::Sha256(sha) => sha2::Digest::update(sha, buf),
            Hasher::Sealed(_) => {}
        }
        self.bytes += buf.len() as u64;
    }
}

impl Write for Digest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
