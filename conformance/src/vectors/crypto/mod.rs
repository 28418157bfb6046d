//! Generators of the crypto vector files: `signatures.json`, `envelope.json`,
//! `fof.json`, `passphrase.json`, `blake3.json`, `chacha20poly1305.json` and
//! `dm_rotation.json`.
//!
//! Computed records use fixed-seed [`ChaCha20Rng`] streams, so regeneration is
//! byte-for-byte reproducible. Published vectors (RFC 8032 §7.1, RFC 8439
//! §2.8.2 and A.5, the official BLAKE3 `test_vectors.json`) are transcribed
//! verbatim as data below. The edge cases of the signature strictness rule are
//! built by hand with curve25519-dalek (torsion points, non-canonical
//! encodings) and each one is cross-checked against the bare ZIP-215 equation
//! computed here, independently of `distsoc-protocol`.
//!
//! Generator code: an inconsistency is a bug in the generator, so it panics
//! (`expect`) rather than writing a wrong vector file.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod dm_rotation;
mod envelope;
mod fof;
mod passphrase;
mod signatures;
mod symmetric;

use std::collections::BTreeMap;

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha20Rng;
use serde_json::Value;

use distsoc_protocol::sign::SigningKey;

use self::dm_rotation::dm_rotation_file;
use self::envelope::envelope_file;
use self::fof::fof_file;
use self::passphrase::passphrase_file;
use self::signatures::signatures_file;
use self::symmetric::{blake3_file, chacha_file};
use super::{Record, VectorFile, FORMAT_VERSION};

/// All crypto vector files, in file-name order.
pub(crate) fn files() -> Vec<VectorFile> {
    vec![
        blake3_file(),
        chacha_file(),
        dm_rotation_file(),
        envelope_file(),
        fof_file(),
        passphrase_file(),
        signatures_file(),
    ]
}

// ---------------------------------------------------------------------------
// helpers

fn h(bytes: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(bytes))
}

fn obj(v: Value) -> BTreeMap<String, Value> {
    match v {
        Value::Object(m) => m.into_iter().collect(),
        other => panic!("expected a JSON object, got {other}"),
    }
}

fn rec(
    id: &str,
    comment: &str,
    tags: &[&str],
    valid: bool,
    input: Value,
    expected: Value,
) -> Record {
    Record {
        id: id.to_owned(),
        comment: comment.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        valid,
        input: obj(input),
        expected: obj(expected),
    }
}

fn file(name: &str, description: &str, records: Vec<Record>) -> VectorFile {
    let mut seen = std::collections::BTreeSet::new();
    for r in &records {
        assert!(seen.insert(r.id.clone()), "duplicate record id {}", r.id);
    }
    VectorFile {
        file: name.to_owned(),
        description: description.to_owned(),
        format_version: FORMAT_VERSION,
        records,
    }
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("transcribed hex")
}

fn arr32(s: &str) -> [u8; 32] {
    unhex(s).try_into().expect("32 bytes")
}

fn rand32(rng: &mut ChaCha20Rng) -> [u8; 32] {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    b
}

fn rand_n<const N: usize>(rng: &mut ChaCha20Rng) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    b
}

fn public_of(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_seed(seed).public()
}
