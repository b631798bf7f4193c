//! The ML domain of logitflow, with no HTTP in it.
//!
//! - [`table::RawTable`]: a CSV read into numbers and categorical codes, with every bad cell
//!   reported by line and column.
//! - [`clean`]: missing values, bounds, duplicates and the seeded, stratified [`clean::Split`].
//! - [`scale::Transform`]: treatment coding of text features and scaling, fitted on the
//!   training split only; a column of more than 200 levels held as sparse terms, which the
//!   solvers read through [`logistic::SparseTerms`].
//! - [`logistic`]: the model h(x) = 1/(1+e^−θᵀx) and its four solvers ([`logistic::Solver`]),
//!   with one [`logistic::EpochEvent`] per epoch and a stated [`logistic::StopReason`].
//! - [`roles::RoleColumns`]: the columns of weights, offsets, clusters and folds, carried with
//!   the rows and taken out of them before the terms are made.
//! - [`inference`]: standard errors, z, p-values, intervals and odds ratios of an exact fit;
//!   separation detected and named; how close an iterative fit came to the optimum.
//! - [`metrics::Metrics`]: accuracy, precision, recall, F1, ROC AUC, log loss, Brier score.
//! - [`model::Model`]: the artifact that serve loads, coefficients in the data's own units.
//! - [`synth`]: rows drawn from a given logistic model and a seed.
//!
//! What it makes is kept by the `logitflow-store` crate; nothing here touches a file.

pub mod clean;
pub mod coefficients;
pub mod column;
pub mod inference;
pub mod logistic;
pub mod metrics;
pub mod model;
pub mod report;
pub mod roles;
pub mod scale;
pub mod synth;
pub mod table;
mod table_exp;

/// Hex SHA-256 of some bytes: the identity of artifacts and cache keys.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

/// Hex BLAKE3 of some bytes.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Hex BLAKE3 of what `reader` reads to its end: how a source file is known (the digest
/// `b3sum` prints): faster than SHA-256, and every source file is hashed before its ingest.
pub fn blake3_hex_of(reader: impl std::io::Read) -> std::io::Result<String> {
    Blake3Reader::new(reader).finish()
}

/// A reader that hashes (BLAKE3) what passes through it, in order: a file can be hashed by
/// whatever reads it (ingest's parse reads a CSV of a new length through one).
pub struct Blake3Reader<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: std::io::Read> Blake3Reader<R> {
    pub fn new(inner: R) -> Self {
        Blake3Reader { inner, hasher: blake3::Hasher::new() }
    }

    /// Reads what is left and gives the hex BLAKE3 of everything read. 64 KiB at a time, which
    /// stays in the core's cache while it is hashed.
    pub fn finish(mut self) -> std::io::Result<String> {
        let mut buffer = vec![0u8; 64 << 10];
        loop {
            match std::io::Read::read(&mut self, &mut buffer) {
                Ok(0) => return Ok(self.hasher.finalize().to_hex().to_string()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<R: std::io::Read> std::io::Read for Blake3Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Drops `value` on a thread of its own: giving a large table's memory back to the kernel is
/// work a service's answer need not wait for, and the second core is otherwise idle then. If
/// no thread can be started, it is dropped here.
pub fn drop_in_background<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new().name("drop".into()).spawn(move || drop(value));
}

/// Lower-case hex of a digest.
pub fn hex(digest: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}
