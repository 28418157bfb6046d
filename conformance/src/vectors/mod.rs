//! Golden vector files: format and generators.
//!
//! Every file in `conformance/vectors/` is one [`VectorFile`]. Each record carries a
//! stable `id`, a human `comment`, `tags`, a `valid` flag and `input` / `expected`
//! maps whose byte values are lowercase hex strings. For an invalid record,
//! `expected.error` names the error code (the `ErrorCode` enumerant of
//! `schema/wire.capnp`, or a documented local error name).

mod canonical;
mod crypto;
mod frames;
mod ids;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the vector file format described in `conformance/vectors/README.md`.
pub const FORMAT_VERSION: u32 = 1;

/// One JSON vector file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorFile {
    /// File name inside `conformance/vectors/`, e.g. `signatures.json`.
    pub file: String,
    /// What the file covers and how to check a record.
    pub description: String,
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The records, in a stable order.
    pub records: Vec<Record>,
}

/// One test record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Stable identifier, unique in the file, never reused.
    pub id: String,
    /// What the record exercises, for a human.
    pub comment: String,
    /// Free-form tags (`rfc8032`, `edge`, `malformed`, ...).
    pub tags: Vec<String>,
    /// Whether a conforming implementation accepts the input.
    pub valid: bool,
    /// Inputs; bytes as lowercase hex.
    pub input: BTreeMap<String, serde_json::Value>,
    /// Expected outputs; bytes as lowercase hex; `error` for invalid records.
    pub expected: BTreeMap<String, serde_json::Value>,
}

/// Generates every vector file. Published vectors (RFC 8032, RFC 8439, BLAKE3)
/// are kept as data in their generators, which recompute and check them, so
/// every file in `conformance/vectors/` is reproduced exactly.
pub fn generate_all() -> Vec<VectorFile> {
    let mut files = vec![ids::generate(), frames::generate(), canonical::generate()];
    files.extend(crypto::files());
    files
}
