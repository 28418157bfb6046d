//! Offline mode: every golden vector in `conformance/vectors/` checked.
//!
//! [`check_all`] loads every `*.json` vector file of a directory (the format of
//! [`crate::vectors::VectorFile`], described in `conformance/vectors/README.md`)
//! and checks every record, giving one [`CaseResult`] per record. No target is
//! contacted: what is checked is that the published vectors are what the
//! specification (`schema/README.md`, the `.capnp` schema) says they are, so
//! that other implementations can trust them, and so that a bug that is
//! symmetric in our node and anchor — both built on `distsoc-protocol` — still
//! fails here.
//!
//! # Independence
//!
//! Each record's expected output is recomputed as independently of
//! `distsoc-protocol` as practical:
//!
//! * **crypto** (`signatures`, `envelope`, `fof`, `passphrase`, `blake3`,
//!   `chacha20poly1305`): the primitive crates are called directly
//!   (`curve25519-dalek` / `ed25519-dalek`, `x25519-dalek`, `blake3`,
//!   `chacha20poly1305`, `hmac` + `sha2`, `argon2`). The distsoc layer on top —
//!   domain separation `"distsoc/2/" ‖ purpose ‖ 0x00 ‖ message`, the strict
//!   signature rule and its error order, the envelope KEK derivation, the FoF
//!   labels, the passphrase bounds — is written here again from
//!   `schema/README.md` and `conformance/vectors/README.md`.
//! * **ids**: the text forms are parsed here by the documented rules.
//! * **frames**: a small frame reader of its own (code byte, segment table, the
//!   code table and caps of `schema/README.md` §2), then one walk of the message
//!   by the `capnp` reader with the specified nesting and traversal limits. The
//!   verdict is also cross-checked with `distsoc_protocol::frame::decode_frame`;
//!   a disagreement is reported as a failure naming our decoder.
//! * **canonical**: valid values are built from the record's JSON with the
//!   generated `distsoc-schema` types through `capnp`'s dynamic (reflection)
//!   API — the normative schema, field by field, honouring presence — then
//!   canonicalized by `capnp` and compared byte for byte; the encoder
//!   normalization of the README is applied separately to check
//!   `expected.reencoded`. Received bytes (valid and invalid records) go through
//!   a receiver written here: length caps, word alignment, one bounded walk,
//!   `capnp`'s canonical-form check, a schema-driven field walk (pointer kinds,
//!   Text, union arms, enumerants) plus the field rules stated in the schema
//!   comments (id lengths, required fields, text and list limits, FoF header,
//!   KDF bounds, bundle version), then signature length, PostId and the
//!   signature itself.
//!
//! Nothing here needs `distsoc-protocol` except the frame cross-check.
//!
//! # Case ids
//!
//! A record's case id is `VEC-<FILEAREA>-<NNN>`: `FILEAREA` is the file name
//! without `.json`, upper-cased, keeping only ASCII letters and digits
//! (`frames.json` → `FRAMES`, `chacha20poly1305.json` → `CHACHA20POLY1305`);
//! `NNN` is the record's 0-based index in the file's `records` array, written
//! with at least 3 digits (`VEC-FRAMES-012` is the 13th record of
//! `frames.json`). The ids are stable because vector files are append-only:
//! record ids are never reused and records are never reordered or removed
//! (`conformance/vectors/README.md`), so an index always names the same
//! record. The record's own `id` is the first word of the case title.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use capnp::dynamic_value;
use capnp::introspect::{Introspect, TypeVariant};
use capnp::message::{ReaderOptions, ReaderSegments, SegmentArray};
use capnp::schema::{Field, StructSchema};
use capnp::schema_capnp::field;
use capnp::{dynamic_list, dynamic_struct, Word};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha512};

use super::model::{CaseInfo, CaseResult, Kind, Level, Role, Verdict};
use crate::vectors::{Record, VectorFile, FORMAT_VERSION};

/// Area of every offline case (the first component of its id).
pub const AREA: &str = "VEC";

/// Why the offline run could not check the vectors at all.
///
/// A record whose check fails is not an error: it is a [`Verdict::Fail`]
/// result (or [`Verdict::Error`] if the record itself is unusable, e.g. bad
/// hex). These errors are for a directory or file that cannot be read or
/// understood as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OfflineError {
    /// The vector directory could not be listed.
    #[error("cannot read vector directory {}: {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A vector file could not be read.
    #[error("cannot read vector file {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A vector file is not valid JSON of the vector file format.
    #[error("{}: not a vector file: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A vector file is well-formed JSON but inconsistent (format version,
    /// `file` field not matching its name).
    #[error("{}: {reason}", path.display())]
    Inconsistent {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds a vector file this suite has no checker for.
    #[error("{}: unknown vector file {file:?} (no checker for it)", path.display())]
    UnknownFile {
        /// The file.
        path: PathBuf,
        /// Its name.
        file: String,
    },
    /// A record is of a kind (`input.kind`, `input.type`, ...) this suite has
    /// no checker for.
    #[error("{file}: record {id}: unknown record kind {kind:?}")]
    UnknownRecordKind {
        /// The vector file name.
        file: String,
        /// The record's `id`.
        id: String,
        /// The kind found in the record.
        kind: String,
    },
    /// The directory holds no `*.json` vector file.
    #[error("no vector files (*.json) in {}", path.display())]
    NoVectorFiles {
        /// The directory.
        path: PathBuf,
    },
}

/// Checks every record of every `*.json` vector file in `dir` (normally
/// `conformance/vectors/`): one [`CaseResult`] per record, files in name
/// order, records in file order. See the module docs for ids and for how each
/// kind of record is checked.
///
/// # Errors
///
/// [`OfflineError`] if the directory or a file cannot be read or parsed, a
/// file is unknown, or a record is of an unknown kind. Mismatches are not
/// errors: they are `FAIL` results.
pub fn check_all(dir: &Path) -> Result<Vec<CaseResult>, OfflineError> {
    let entries = std::fs::read_dir(dir).map_err(|source| OfflineError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| OfflineError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(OfflineError::NoVectorFiles {
            path: dir.to_path_buf(),
        });
    }
    files.sort();
    let mut results = Vec::new();
    for path in files {
        results.extend(check_file(&path)?);
    }
    Ok(results)
}

/// Checks every record of one vector file (see [`check_all`]).
///
/// # Errors
///
/// As [`check_all`], for this one file.
pub fn check_file(path: &Path) -> Result<Vec<CaseResult>, OfflineError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let Some(file_kind) = FileKind::of(&name) else {
        return Err(OfflineError::UnknownFile {
            path: path.to_path_buf(),
            file: name,
        });
    };
    let text = std::fs::read_to_string(path).map_err(|source| OfflineError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let vf: VectorFile = serde_json::from_str(&text).map_err(|source| OfflineError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    if vf.format_version != FORMAT_VERSION {
        return Err(OfflineError::Inconsistent {
            path: path.to_path_buf(),
            reason: format!(
                "format_version {} (this suite reads {FORMAT_VERSION})",
                vf.format_version
            ),
        });
    }
    if vf.file != name {
        return Err(OfflineError::Inconsistent {
            path: path.to_path_buf(),
            reason: format!("its \"file\" field says {:?}", vf.file),
        });
    }
    // Classify every record first: an unknown kind stops the run before
    // anything is reported, so a newer vector file is never half-checked.
    let mut kinds = Vec::with_capacity(vf.records.len());
    for rec in &vf.records {
        kinds.push(record_kind(file_kind, rec).map_err(|kind| {
            OfflineError::UnknownRecordKind {
                file: name.clone(),
                id: rec.id.clone(),
                kind,
            }
        })?);
    }
    let area = file_area(&name);
    Ok(vf
        .records
        .iter()
        .zip(kinds)
        .enumerate()
        .map(|(index, (rec, kind))| run_record(&name, &area, file_kind, index, rec, kind))
        .collect())
}

/// `FILEAREA` of a vector file name: the stem, upper-cased, ASCII letters and
/// digits only.
fn file_area(name: &str) -> String {
    name.trim_end_matches(".json")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

// ---------------------------------------------------------------------------
// Files, record kinds, results

/// The vector files this suite knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Ids,
    Frames,
    Canonical,
    Signatures,
    Envelope,
    Fof,
    Passphrase,
    Blake3,
    ChaCha,
}

impl FileKind {
    fn of(name: &str) -> Option<Self> {
        Some(match name {
            "ids.json" => FileKind::Ids,
            "frames.json" => FileKind::Frames,
            "canonical.json" => FileKind::Canonical,
            "signatures.json" => FileKind::Signatures,
            "envelope.json" => FileKind::Envelope,
            "fof.json" => FileKind::Fof,
            "passphrase.json" => FileKind::Passphrase,
            "blake3.json" => FileKind::Blake3,
            "chacha20poly1305.json" => FileKind::ChaCha,
            _ => return None,
        })
    }

    /// Where the rules a record of this file pins are written.
    fn spec_ref(self) -> &'static str {
        match self {
            FileKind::Ids => "conformance/vectors/ids.json (file description); schema/README.md §1",
            FileKind::Frames => "schema/README.md §2; conformance/vectors/README.md \"frames.json\"",
            FileKind::Canonical => {
                "schema/README.md §4; conformance/vectors/README.md \"canonical.json\""
            }
            FileKind::Signatures => {
                "schema/README.md §4; conformance/vectors/README.md \"signatures.json\""
            }
            FileKind::Envelope => {
                "schema/README.md §5; conformance/vectors/README.md \"envelope.json\""
            }
            FileKind::Fof => "schema/README.md §6; conformance/vectors/README.md \"fof.json\"",
            FileKind::Passphrase => {
                "schema/identity.capnp KdfParams; conformance/vectors/README.md \"passphrase.json\""
            }
            FileKind::Blake3 => {
                "schema/README.md §4 (BLAKE3); conformance/vectors/README.md \"blake3.json\""
            }
            FileKind::ChaCha => {
                "schema/README.md §5 (ChaCha20-Poly1305, RFC 8439); conformance/vectors/README.md \"chacha20poly1305.json\""
            }
        }
    }
}

/// The record kinds of each file (`input.kind`, or `input.type` for
/// canonical records).
fn record_kind(file: FileKind, rec: &Record) -> Result<&'static str, String> {
    let kind = rec.input.get("kind").and_then(Value::as_str);
    let pick = |known: &[&'static str], got: Option<&str>| -> Result<&'static str, String> {
        let got = got.unwrap_or("<none>");
        known
            .iter()
            .find(|k| **k == got)
            .copied()
            .ok_or_else(|| got.to_owned())
    };
    match file {
        FileKind::Ids => {
            if rec.tags.iter().any(|t| t == "connect-string") {
                Ok("connect-string")
            } else {
                pick(
                    &["NodeId", "PostingId", "PostId", "ChannelId", "WormId"],
                    kind,
                )
            }
        }
        FileKind::Frames => Ok("frame"),
        FileKind::Canonical => {
            let ty = rec.input.get("type").and_then(Value::as_str);
            let names: Vec<&'static str> = TYPES.iter().map(|t| t.name).collect();
            pick(&names, ty)
        }
        FileKind::Signatures => pick(&["verify", "batch"], kind),
        FileKind::Envelope => pick(
            &["seal", "open", "wrap", "group", "group-unwrap", "keyconv"],
            kind,
        ),
        FileKind::Fof => pick(
            &[
                "derive",
                "make_slots",
                "open_slots",
                "group_sig",
                "vouch_mac",
            ],
            kind,
        ),
        FileKind::Passphrase => pick(&["seal", "open"], kind),
        FileKind::Blake3 => Ok("blake3"),
        FileKind::ChaCha => pick(&["aead", "open", "content"], kind),
    }
}

/// Why a record did not pass.
#[derive(Debug)]
enum Problem {
    /// A recomputed value differs from the record.
    Mismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// The record itself is unusable (missing field, bad hex, ...).
    BadRecord(String),
}

type Check = Result<(), Problem>;

fn mismatch(
    what: impl Into<String>,
    expected: impl fmt::Display,
    actual: impl fmt::Display,
) -> Problem {
    Problem::Mismatch {
        what: what.into(),
        expected: expected.to_string(),
        actual: actual.to_string(),
    }
}

fn bad(msg: impl Into<String>) -> Problem {
    Problem::BadRecord(msg.into())
}

fn run_record(
    file: &str,
    area: &str,
    kind: FileKind,
    index: usize,
    rec: &Record,
    record_kind: &'static str,
) -> CaseResult {
    let start = Instant::now();
    let outcome = match kind {
        FileKind::Ids => check_ids(rec, record_kind),
        FileKind::Frames => check_frame(rec),
        FileKind::Canonical => check_canonical(rec, record_kind),
        FileKind::Signatures => check_signatures(rec, record_kind),
        FileKind::Envelope => check_envelope(rec, record_kind),
        FileKind::Fof => check_fof(rec, record_kind),
        FileKind::Passphrase => check_passphrase(rec, record_kind),
        FileKind::Blake3 => check_blake3(rec),
        FileKind::ChaCha => check_chacha(rec, record_kind),
    };
    let duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let expectation = expectation(rec);
    let (verdict, expected, actual) = match outcome {
        Ok(()) => (Verdict::Pass, expectation.clone(), expectation),
        Err(Problem::Mismatch {
            what,
            expected,
            actual,
        }) => (
            Verdict::Fail,
            format!("{what}: {expected}"),
            format!("{what}: {actual}"),
        ),
        Err(Problem::BadRecord(msg)) => (
            Verdict::Error,
            expectation,
            format!("the vector record is unusable: {msg}"),
        ),
    };
    let mut requirement = rec.comment.clone();
    if let Some(error) = rec.expected.get("error").and_then(Value::as_str) {
        requirement.push_str(&format!(
            " A conforming implementation rejects it with `{error}`."
        ));
    } else if rec.valid {
        requirement
            .push_str(" A conforming implementation accepts it and computes the expected values.");
    }
    CaseResult {
        case: CaseInfo {
            id: format!("{AREA}-{area}-{index:03}"),
            area: AREA.to_owned(),
            title: format!("{file} {}: {}", rec.id, first_sentence(&rec.comment)),
            requirement,
            spec_ref: kind.spec_ref().to_owned(),
            level: Level::Must,
            role: Role::Any,
            capability: None,
            kind: Kind::Vector,
        },
        verdict,
        expected,
        actual,
        duration_ms,
        iteration: 0,
        expected_failure: None,
    }
}

/// What the record asks for, in words.
fn expectation(rec: &Record) -> String {
    match rec.expected.get("error").and_then(Value::as_str) {
        Some(error) => format!("rejected with `{error}`"),
        None if rec.expected.is_empty() => "accepted".to_owned(),
        None => format!(
            "accepted; expected.{{{}}} reproduced",
            rec.expected.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

fn first_sentence(s: &str) -> &str {
    let end = s
        .char_indices()
        .find(|(i, c)| *c == '.' && s[i + 1..].starts_with(' '))
        .map_or(s.len(), |(i, _)| i);
    &s[..end]
}

// ---------------------------------------------------------------------------
// JSON access

fn get<'a>(map: &'a BTreeMap<String, Value>, side: &str, key: &str) -> Result<&'a Value, Problem> {
    map.get(key)
        .ok_or_else(|| bad(format!("{side}.{key} is missing")))
}

fn inp<'a>(rec: &'a Record, key: &str) -> Result<&'a Value, Problem> {
    get(&rec.input, "input", key)
}

fn exp<'a>(rec: &'a Record, key: &str) -> Result<&'a Value, Problem> {
    get(&rec.expected, "expected", key)
}

fn hx(v: &Value, what: &str) -> Result<Vec<u8>, Problem> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("{what} is not a hex string")))?;
    hex::decode(s).map_err(|e| bad(format!("{what}: bad hex: {e}")))
}

fn ax<const N: usize>(v: &Value, what: &str) -> Result<[u8; N], Problem> {
    hx(v, what)?
        .try_into()
        .map_err(|b: Vec<u8>| bad(format!("{what} is {} bytes, not {N}", b.len())))
}

fn sx<'a>(v: &'a Value, what: &str) -> Result<&'a str, Problem> {
    v.as_str()
        .ok_or_else(|| bad(format!("{what} is not a string")))
}

fn ux(v: &Value, what: &str) -> Result<u64, Problem> {
    v.as_u64()
        .ok_or_else(|| bad(format!("{what} is not a non-negative integer")))
}

fn bx(v: &Value, what: &str) -> Result<bool, Problem> {
    v.as_bool()
        .ok_or_else(|| bad(format!("{what} is not a boolean")))
}

fn lx<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, Problem> {
    v.as_array()
        .ok_or_else(|| bad(format!("{what} is not an array")))
}

fn ih(rec: &Record, key: &str) -> Result<Vec<u8>, Problem> {
    hx(inp(rec, key)?, &format!("input.{key}"))
}

fn ia<const N: usize>(rec: &Record, key: &str) -> Result<[u8; N], Problem> {
    ax(inp(rec, key)?, &format!("input.{key}"))
}

fn eh(rec: &Record, key: &str) -> Result<Vec<u8>, Problem> {
    hx(exp(rec, key)?, &format!("expected.{key}"))
}

fn ia_list<const N: usize>(rec: &Record, key: &str) -> Result<Vec<[u8; N]>, Problem> {
    lx(inp(rec, key)?, key)?
        .iter()
        .enumerate()
        .map(|(i, v)| ax(v, &format!("input.{key}[{i}]")))
        .collect()
}

fn h_list(v: &Value, what: &str) -> Result<Vec<Vec<u8>>, Problem> {
    lx(v, what)?
        .iter()
        .enumerate()
        .map(|(i, x)| hx(x, &format!("{what}[{i}]")))
        .collect()
}

fn expected_error(rec: &Record) -> Result<Option<&str>, Problem> {
    match rec.expected.get("error") {
        None if rec.valid => Ok(None),
        None => Err(bad("invalid record without expected.error")),
        Some(e) if !rec.valid => Ok(Some(sx(e, "expected.error")?)),
        Some(_) => Err(bad("valid record with expected.error")),
    }
}

// ---------------------------------------------------------------------------
// Comparisons

fn eq_hex(what: &str, expected: &[u8], actual: &[u8]) -> Check {
    if expected == actual {
        Ok(())
    } else {
        Err(mismatch(what, hex::encode(expected), hex::encode(actual)))
    }
}

fn eq_hex_list(what: &str, expected: &[Vec<u8>], actual: &[Vec<u8>]) -> Check {
    if expected == actual {
        Ok(())
    } else {
        let j = |l: &[Vec<u8>]| {
            format!(
                "[{}]",
                l.iter().map(hex::encode).collect::<Vec<_>>().join(", ")
            )
        };
        Err(mismatch(what, j(expected), j(actual)))
    }
}

fn eq_val<T: PartialEq + fmt::Debug>(what: &str, expected: T, actual: T) -> Check {
    if expected == actual {
        Ok(())
    } else {
        Err(mismatch(
            what,
            format!("{expected:?}"),
            format!("{actual:?}"),
        ))
    }
}

/// Compares an accept / reject outcome with the record's `valid` and
/// `expected.error`.
fn verdict(what: &str, rec: &Record, got: Result<(), String>) -> Check {
    match (expected_error(rec)?, got) {
        (None, Ok(())) => Ok(()),
        (None, Err(e)) => Err(mismatch(what, "accepted", format!("rejected with `{e}`"))),
        (Some(want), Ok(())) => Err(mismatch(
            what,
            format!("rejected with `{want}`"),
            "accepted",
        )),
        (Some(want), Err(e)) if e == want => Ok(()),
        (Some(want), Err(e)) => Err(mismatch(
            what,
            format!("rejected with `{want}`"),
            format!("rejected with `{e}`"),
        )),
    }
}

// ---------------------------------------------------------------------------
// Primitives with the distsoc layer (schema/README.md §4–§6)

/// Domain separation prefix of every distsoc signature.
const DOMAIN_PREFIX: &[u8] = b"distsoc/2/";

/// The signature purposes (conformance/vectors/README.md "signatures.json").
const PURPOSES: [&str; 15] = [
    "post",
    "profile",
    "post-header",
    "comment",
    "comment-group",
    "delete",
    "visibility",
    "post-visibility",
    "recent-posts",
    "audience-request",
    "audience-response",
    "vouch-grant",
    "heart",
    "group-key",
    "handshake",
];

/// AAD of sealed post content.
const CONTENT_AAD: &[u8] = b"distsoc/2/content";
/// BLAKE3 `derive_key` context of the envelope KEK.
const KEK_CONTEXT: &str = "distsoc/2 envelope kek";
/// Poly1305 tag length.
const TAG_LEN: usize = 16;

/// `"distsoc/2/" ‖ purpose ‖ 0x00 ‖ message`.
fn signing_input(purpose: &str, message: &[u8]) -> Result<Vec<u8>, Problem> {
    if !PURPOSES.contains(&purpose) {
        return Err(bad(format!("unknown signature purpose {purpose:?}")));
    }
    let mut out = Vec::with_capacity(DOMAIN_PREFIX.len() + purpose.len() + 1 + message.len());
    out.extend_from_slice(DOMAIN_PREFIX);
    out.extend_from_slice(purpose.as_bytes());
    out.push(0);
    out.extend_from_slice(message);
    Ok(out)
}

fn ed_public(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// RFC 8032 signing (deterministic) of exactly `bytes`.
fn ed_sign(seed: &[u8; 32], bytes: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    ed25519_dalek::SigningKey::from_bytes(seed)
        .sign(bytes)
        .to_bytes()
}

/// The public key rule: decodes, not small order (in any encoding), canonical.
fn check_key(public: &[u8; 32]) -> Result<EdwardsPoint, &'static str> {
    let point = CompressedEdwardsY(*public)
        .decompress()
        .ok_or("malformedKey")?;
    if point.is_small_order() {
        return Err("smallOrderKey");
    }
    if point.compress().to_bytes() != *public {
        return Err("nonCanonicalKey");
    }
    Ok(point)
}

/// `k = SHA-512(R ‖ A ‖ M) mod L`.
fn challenge(r: &[u8], a: &[u8], m: &[u8]) -> Scalar {
    let digest = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(m)
        .finalize();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&digest);
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn split_sig(sig: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    s.copy_from_slice(&sig[32..]);
    (r, s)
}

/// The distsoc strict verification rule (schema/README.md §4), checks in the
/// documented order; the error is the vector error name.
pub(crate) fn strict_verify(
    public: &[u8; 32],
    signed: &[u8],
    sig: &[u8; 64],
) -> Result<(), &'static str> {
    let a = check_key(public)?;
    let (r_bytes, s_bytes) = split_sig(sig);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or("nonCanonicalS")?;
    let r = CompressedEdwardsY(r_bytes).decompress().ok_or("invalid")?;
    if r.compress().to_bytes() != r_bytes {
        return Err("nonCanonicalR");
    }
    let k = challenge(&r_bytes, public, signed);
    let check = ED25519_BASEPOINT_POINT * s - a * k - r;
    if check.mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err("invalid")
    }
}

/// The bare ZIP-215 rule: any decodable A and R encoding, canonical S,
/// cofactored equation.
fn zip215_ok(public: &[u8; 32], signed: &[u8], sig: &[u8; 64]) -> bool {
    let (r_bytes, s_bytes) = split_sig(sig);
    let (Some(a), Some(r)) = (
        CompressedEdwardsY(*public).decompress(),
        CompressedEdwardsY(r_bytes).decompress(),
    ) else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    let k = challenge(&r_bytes, public, signed);
    (ED25519_BASEPOINT_POINT * s - a * k - r)
        .mul_by_cofactor()
        .is_identity()
}

/// The cofactorless equation `[S]B = R + [k]A`.
fn cofactorless_ok(public: &[u8; 32], signed: &[u8], sig: &[u8; 64]) -> bool {
    let (r_bytes, s_bytes) = split_sig(sig);
    let (Some(a), Some(r)) = (
        CompressedEdwardsY(*public).decompress(),
        CompressedEdwardsY(r_bytes).decompress(),
    ) else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    let k = challenge(&r_bytes, public, signed);
    ED25519_BASEPOINT_POINT * s - a * k == r
}

fn aead_seal(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Problem> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    chacha20poly1305::ChaCha20Poly1305::new(key.into())
        .encrypt(
            nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| bad("ChaCha20-Poly1305 refused to seal"))
}

/// Opens `ciphertext ‖ tag`: `malformed` if shorter than a tag,
/// `decryptFailed` if it does not authenticate.
fn aead_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, &'static str> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    if sealed.len() < TAG_LEN {
        return Err("malformed");
    }
    chacha20poly1305::ChaCha20Poly1305::new(key.into())
        .decrypt(nonce.into(), Payload { msg: sealed, aad })
        .map_err(|_| "decryptFailed")
}

/// `clamp(SHA-512(seed)[0..32])`: a recipient's X25519 secret (RFC 8032 §5.1.5).
fn x25519_secret(seed: &[u8; 32]) -> [u8; 32] {
    let h = Sha512::digest(seed);
    let mut s = [0u8; 32];
    s.copy_from_slice(&h[..32]);
    s[0] &= 248;
    s[31] &= 127;
    s[31] |= 64;
    s
}

fn x25519_base(secret: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*secret, x25519_dalek::X25519_BASEPOINT_BYTES)
}

/// Montgomery u of an Ed25519 key, with the public key rule.
fn ed_to_x25519(public: &[u8; 32]) -> Result<[u8; 32], &'static str> {
    Ok(check_key(public)?.to_montgomery().to_bytes())
}

fn kek(ss: &[u8; 32], eph_pub: &[u8; 32], recipient_x: &[u8; 32]) -> [u8; 32] {
    let mut material = Vec::with_capacity(96);
    material.extend_from_slice(ss);
    material.extend_from_slice(eph_pub);
    material.extend_from_slice(recipient_x);
    blake3::derive_key(KEK_CONTEXT, &material)
}

/// One recipient's intermediate values.
struct WrapTrace {
    recipient_x: [u8; 32],
    shared: [u8; 32],
    kek: [u8; 32],
}

/// The ephemeral public key, one 80-byte entry per recipient, and the
/// recipients' traces.
type Wrapped = ([u8; 32], Vec<Vec<u8>>, Vec<WrapTrace>);

/// Wraps a 32-byte secret for `recipients` (schema/README.md §5, step 3):
/// the ephemeral public key, the 80-byte entries and the first trace.
fn wrap_secret(
    secret: &[u8; 32],
    eph_secret: &[u8; 32],
    recipients: &[[u8; 32]],
) -> Result<Wrapped, String> {
    if recipients.is_empty() {
        return Err("noRecipients".into());
    }
    for (i, r) in recipients.iter().enumerate() {
        if recipients[..i].contains(r) {
            return Err("duplicateRecipient".into());
        }
    }
    let eph_pub = x25519_base(eph_secret);
    let mut entries = Vec::new();
    let mut traces = Vec::new();
    for recipient in recipients {
        let rx = ed_to_x25519(recipient).map_err(|_| "invalidKey".to_owned())?;
        let ss = x25519_dalek::x25519(*eph_secret, rx);
        if ss == [0u8; 32] {
            return Err("invalidKey".into());
        }
        let k = kek(&ss, &eph_pub, &rx);
        let wrapped =
            aead_seal(&k, &[0u8; 12], recipient, secret).map_err(|_| "sealFailed".to_owned())?;
        let mut entry = recipient.to_vec();
        entry.extend_from_slice(&wrapped);
        entries.push(entry);
        traces.push(WrapTrace {
            recipient_x: rx,
            shared: ss,
            kek: k,
        });
    }
    Ok((eph_pub, entries, traces))
}

/// Unwraps the 32-byte secret wrapped for the holder of `seed`.
fn unwrap_secret(
    seed: &[u8; 32],
    eph_pub: &[u8; 32],
    entries: &[Vec<u8>],
) -> Result<[u8; 32], &'static str> {
    if entries.iter().any(|e| e.len() != 80) {
        return Err("malformed");
    }
    let me = ed_public(seed);
    let entry = entries
        .iter()
        .find(|e| e[..32] == me)
        .ok_or("notARecipient")?;
    let my_x = x25519_secret(seed);
    let my_x_pub = x25519_base(&my_x);
    let ss = x25519_dalek::x25519(my_x, *eph_pub);
    if ss == [0u8; 32] {
        return Err("invalidKey");
    }
    let k = kek(&ss, eph_pub, &my_x_pub);
    let plain = aead_open(&k, &[0u8; 12], &me, &entry[32..])?;
    plain.try_into().map_err(|_| "malformed")
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC accepts keys of any length; this cannot fail.
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(key) else {
        return [0u8; 32];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

// ---------------------------------------------------------------------------
// blake3.json

fn check_blake3(rec: &Record) -> Check {
    let len = usize::try_from(ux(inp(rec, "input_len")?, "input.input_len")?)
        .map_err(|_| bad("input_len too large"))?;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    // The 32 ASCII bytes of the published key, hex-encoded like every byte
    // string of the vector format.
    let key: [u8; 32] = ia(rec, "key")?;
    let context = sx(inp(rec, "context_string")?, "input.context_string")?;
    for (name, mut hasher) in [
        ("hash", blake3::Hasher::new()),
        ("keyed_hash", blake3::Hasher::new_keyed(&key)),
        ("derive_key", blake3::Hasher::new_derive_key(context)),
    ] {
        let want = eh(rec, name)?;
        let mut got = vec![0u8; want.len()];
        hasher.update(&data).finalize_xof().fill(&mut got);
        eq_hex(&format!("expected.{name}"), &want, &got)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// chacha20poly1305.json

fn check_chacha(rec: &Record, kind: &str) -> Check {
    match kind {
        "aead" => {
            let key: [u8; 32] = ia(rec, "key")?;
            let nonce: [u8; 12] = ia(rec, "nonce")?;
            let (aad, pt) = (ih(rec, "aad")?, ih(rec, "plaintext")?);
            let sealed = aead_seal(&key, &nonce, &aad, &pt)?;
            let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
            eq_hex("expected.ciphertext", &eh(rec, "ciphertext")?, ct)?;
            eq_hex("expected.tag", &eh(rec, "tag")?, tag)?;
            let opened = aead_open(&key, &nonce, &aad, &sealed);
            eq_val("opening the sealed bytes", Ok(pt), opened)
        }
        "open" => {
            let got = aead_open(
                &ia(rec, "key")?,
                &ia(rec, "nonce")?,
                &ih(rec, "aad")?,
                &ih(rec, "sealed")?,
            );
            verdict(
                "opening input.sealed",
                rec,
                got.map(drop).map_err(str::to_owned),
            )
        }
        _ => {
            eq_hex(
                "expected.aad (the content AAD)",
                &eh(rec, "aad")?,
                CONTENT_AAD,
            )?;
            let cek: [u8; 32] = ia(rec, "cek")?;
            let nonce: [u8; 12] = ia(rec, "nonce")?;
            let pt = ih(rec, "plaintext")?;
            let sealed = aead_seal(&cek, &nonce, CONTENT_AAD, &pt)?;
            eq_hex("expected.sealed", &eh(rec, "sealed")?, &sealed)?;
            eq_val(
                "opening the sealed content",
                Ok(pt),
                aead_open(&cek, &nonce, CONTENT_AAD, &sealed),
            )
        }
    }
}

// ---------------------------------------------------------------------------
// passphrase.json

fn check_passphrase(rec: &Record, kind: &str) -> Check {
    let kdf = inp(rec, "kdf")?;
    let param = |k: &str| -> Result<u64, Problem> {
        ux(
            kdf.get(k)
                .ok_or_else(|| bad(format!("input.kdf.{k} is missing")))?,
            k,
        )
    };
    let (m, t, p) = (
        param("memory_kib")?,
        param("iterations")?,
        param("parallelism")?,
    );
    let salt: [u8; 16] = ax(
        kdf.get("salt")
            .ok_or_else(|| bad("input.kdf.salt is missing"))?,
        "input.kdf.salt",
    )?;
    let pass = ih(rec, "passphrase")?;
    let nonce: [u8; 12] = ia(rec, "nonce")?;
    let aad = ih(rec, "aad")?;
    // Bounds, checked before any work.
    let in_bounds =
        (8192..=1_048_576).contains(&m) && (1..=10).contains(&t) && (1..=4).contains(&p);
    let derive = || -> Result<[u8; 32], Problem> {
        let to32 = |v: u64| u32::try_from(v).map_err(|_| bad("KDF parameter above u32"));
        let params = argon2::Params::new(to32(m)?, to32(t)?, to32(p)?, Some(32))
            .map_err(|e| bad(format!("argon2 parameters: {e}")))?;
        let mut key = [0u8; 32];
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(&pass, &salt, &mut key)
            .map_err(|e| bad(format!("argon2: {e}")))?;
        Ok(key)
    };
    match kind {
        "seal" => {
            if !in_bounds {
                return Err(mismatch(
                    "KDF parameters",
                    "within bounds",
                    format!("m={m} t={t} p={p}"),
                ));
            }
            let key = derive()?;
            eq_hex("expected.key", &eh(rec, "key")?, &key)?;
            let pt = ih(rec, "plaintext")?;
            let sealed = aead_seal(&key, &nonce, &aad, &pt)?;
            eq_hex("expected.sealed", &eh(rec, "sealed")?, &sealed)?;
            eq_val(
                "opening the sealed bytes",
                Ok(pt),
                aead_open(&key, &nonce, &aad, &sealed),
            )
        }
        _ => {
            let sealed = ih(rec, "sealed")?;
            let got = if !in_bounds {
                Err("paramsOutOfBounds".to_owned())
            } else if sealed.len() < TAG_LEN {
                Err("malformed".to_owned())
            } else {
                let key = derive()?;
                aead_open(&key, &nonce, &aad, &sealed)
                    .map(drop)
                    .map_err(|_| "wrongPassphraseOrCorrupt".to_owned())
            };
            verdict("opening input.sealed", rec, got)
        }
    }
}

// ---------------------------------------------------------------------------
// signatures.json

fn check_signatures(rec: &Record, kind: &str) -> Check {
    if kind == "batch" {
        // Batch verification gives exactly the verdict of single verification,
        // reporting the first failing index in slice order.
        let mut first: Option<(usize, &'static str)> = None;
        for (i, item) in lx(inp(rec, "items")?, "input.items")?.iter().enumerate() {
            let f = |k: &str| {
                item.get(k)
                    .ok_or_else(|| bad(format!("input.items[{i}].{k} is missing")))
            };
            let public: [u8; 32] = ax(f("public_key")?, "public_key")?;
            let sig: [u8; 64] = ax(f("signature")?, "signature")?;
            let signed = signing_input(
                sx(f("purpose")?, "purpose")?,
                &hx(f("message")?, "message")?,
            )?;
            if let Err(e) = strict_verify(&public, &signed, &sig) {
                first = Some((i, e));
                break;
            }
        }
        return match (expected_error(rec)?, first) {
            (None, None) => Ok(()),
            (None, Some((i, e))) => Err(mismatch(
                "batch",
                "all verify",
                format!("item {i} fails with `{e}`"),
            )),
            (Some(want), None) => Err(mismatch(
                "batch",
                format!("fails with `{want}`"),
                "all verify",
            )),
            (Some(want), Some((i, e))) => {
                let index = ux(exp(rec, "index")?, "expected.index")?;
                eq_val(
                    "first failing item (index, error)",
                    (index, want),
                    (i as u64, e),
                )
            }
        };
    }
    let public: [u8; 32] = ia(rec, "public_key")?;
    let msg = ih(rec, "message")?;
    let sig: [u8; 64] = ia(rec, "signature")?;
    let domain = bx(inp(rec, "domain")?, "input.domain")?;
    let signed = if domain {
        let si = signing_input(sx(inp(rec, "purpose")?, "input.purpose")?, &msg)?;
        eq_hex("expected.signing_input", &eh(rec, "signing_input")?, &si)?;
        si
    } else {
        msg
    };
    if rec.input.contains_key("seed") {
        let seed: [u8; 32] = ia(rec, "seed")?;
        eq_hex("public key of input.seed", &public, &ed_public(&seed))?;
        eq_hex(
            "deterministic signature by input.seed",
            &sig,
            &ed_sign(&seed, &signed),
        )?;
    }
    verdict(
        "strict verification",
        rec,
        strict_verify(&public, &signed, &sig).map_err(str::to_owned),
    )?;
    eq_val(
        "expected.zip215_valid",
        bx(exp(rec, "zip215_valid")?, "expected.zip215_valid")?,
        zip215_ok(&public, &signed, &sig),
    )?;
    eq_val(
        "expected.cofactorless_valid",
        bx(
            exp(rec, "cofactorless_valid")?,
            "expected.cofactorless_valid",
        )?,
        cofactorless_ok(&public, &signed, &sig),
    )
}

// ---------------------------------------------------------------------------
// envelope.json

/// Opens a sealed envelope as the holder of `seed`.
fn open_envelope(
    seed: &[u8; 32],
    eph_pub: &[u8; 32],
    entries: &[Vec<u8>],
    nonce: &[u8; 12],
    ciphertext: &[u8],
) -> Result<Vec<u8>, &'static str> {
    let cek = unwrap_secret(seed, eph_pub, entries)?;
    aead_open(&cek, nonce, CONTENT_AAD, ciphertext)
}

fn check_envelope(rec: &Record, kind: &str) -> Check {
    match kind {
        "seal" => {
            let seeds: Vec<[u8; 32]> = ia_list(rec, "recipient_seeds")?;
            let recipients: Vec<[u8; 32]> = ia_list(rec, "recipients")?;
            let pubs: Vec<Vec<u8>> = seeds.iter().map(|s| ed_public(s).to_vec()).collect();
            let rec_v: Vec<Vec<u8>> = recipients.iter().map(|r| r.to_vec()).collect();
            eq_hex_list("input.recipients (public keys of the seeds)", &rec_v, &pubs)?;
            let cek: [u8; 32] = ia(rec, "cek")?;
            let nonce: [u8; 12] = ia(rec, "nonce")?;
            let eph: [u8; 32] = ia(rec, "eph_secret")?;
            let pt = ih(rec, "plaintext")?;
            let (eph_pub, entries, traces) = wrap_secret(&cek, &eph, &recipients)
                .map_err(|e| mismatch("wrapping the CEK", "success", format!("`{e}`")))?;
            eq_hex("expected.eph_pub", &eh(rec, "eph_pub")?, &eph_pub)?;
            eq_hex_list(
                "expected.wrapped",
                &h_list(exp(rec, "wrapped")?, "expected.wrapped")?,
                &entries,
            )?;
            let ct = aead_seal(&cek, &nonce, CONTENT_AAD, &pt)?;
            eq_hex("expected.ciphertext", &eh(rec, "ciphertext")?, &ct)?;
            let first = exp(rec, "first_recipient")?;
            let fv = |k: &str| -> Result<Vec<u8>, Problem> {
                hx(
                    first
                        .get(k)
                        .ok_or_else(|| bad(format!("expected.first_recipient.{k} is missing")))?,
                    k,
                )
            };
            let t = traces.first().ok_or_else(|| bad("no recipients"))?;
            eq_hex(
                "expected.first_recipient.recipient_x25519",
                &fv("recipient_x25519")?,
                &t.recipient_x,
            )?;
            eq_hex(
                "expected.first_recipient.shared_secret",
                &fv("shared_secret")?,
                &t.shared,
            )?;
            eq_hex("expected.first_recipient.kek", &fv("kek")?, &t.kek)?;
            for (i, seed) in seeds.iter().enumerate() {
                eq_val(
                    &format!("recipient {i} opening the envelope"),
                    Ok(pt.clone()),
                    open_envelope(seed, &eph_pub, &entries, &nonce, &ct),
                )?;
            }
            Ok(())
        }
        "open" => {
            let got = open_envelope(
                &ia(rec, "seed")?,
                &ia(rec, "eph_pub")?,
                &h_list(inp(rec, "wrapped")?, "input.wrapped")?,
                &ia(rec, "nonce")?,
                &ih(rec, "ciphertext")?,
            );
            match got {
                Ok(pt) if rec.valid => eq_hex("expected.plaintext", &eh(rec, "plaintext")?, &pt),
                other => verdict("opening", rec, other.map(drop).map_err(str::to_owned)),
            }
        }
        "wrap" => {
            let got = wrap_secret(
                &ia(rec, "cek")?,
                &ia(rec, "eph_secret")?,
                &ia_list(rec, "recipients")?,
            );
            verdict("wrapping", rec, got.map(drop))
        }
        "group" => {
            let group_seed: [u8; 32] = ia(rec, "group_seed")?;
            let group_id = ed_public(&group_seed);
            eq_hex("expected.group_id", &eh(rec, "group_id")?, &group_id)?;
            let member_seeds: Vec<[u8; 32]> = ia_list(rec, "member_seeds")?;
            let members: Vec<[u8; 32]> = ia_list(rec, "members")?;
            let (geph, gw, _) = wrap_secret(&group_seed, &ia(rec, "group_eph_secret")?, &members)
                .map_err(|e| {
                mismatch("wrapping the group seed", "success", format!("`{e}`"))
            })?;
            eq_hex("expected.group_eph_pub", &eh(rec, "group_eph_pub")?, &geph)?;
            eq_hex_list(
                "expected.group_wrapped",
                &h_list(exp(rec, "group_wrapped")?, "expected.group_wrapped")?,
                &gw,
            )?;
            let cek: [u8; 32] = ia(rec, "cek")?;
            let nonce: [u8; 12] = ia(rec, "nonce")?;
            let pt = ih(rec, "plaintext")?;
            let (eph_pub, entries, _) = wrap_secret(&cek, &ia(rec, "eph_secret")?, &[group_id])
                .map_err(|e| {
                    mismatch(
                        "wrapping the CEK for the group",
                        "success",
                        format!("`{e}`"),
                    )
                })?;
            eq_hex("expected.eph_pub", &eh(rec, "eph_pub")?, &eph_pub)?;
            eq_hex_list(
                "expected.wrapped",
                &h_list(exp(rec, "wrapped")?, "expected.wrapped")?,
                &entries,
            )?;
            let ct = aead_seal(&cek, &nonce, CONTENT_AAD, &pt)?;
            eq_hex("expected.ciphertext", &eh(rec, "ciphertext")?, &ct)?;
            for (i, (seed, member)) in member_seeds.iter().zip(&members).enumerate() {
                eq_hex(
                    &format!("public key of member seed {i}"),
                    member,
                    &ed_public(seed),
                )?;
                let got = unwrap_secret(seed, &geph, &gw);
                eq_val(
                    &format!("member {i} unwrapping the group seed"),
                    Ok(group_seed),
                    got,
                )?;
                eq_val(
                    &format!("member {i} opening the group post with the group seed"),
                    Ok(pt.clone()),
                    open_envelope(&group_seed, &eph_pub, &entries, &nonce, &ct),
                )?;
                eq_val(
                    &format!("member {i} opening the group post with its own key"),
                    Err("notARecipient"),
                    open_envelope(seed, &eph_pub, &entries, &nonce, &ct),
                )?;
            }
            Ok(())
        }
        "group-unwrap" => {
            let group_id: [u8; 32] = ia(rec, "group_id")?;
            let got = unwrap_secret(
                &ia(rec, "seed")?,
                &ia(rec, "eph_pub")?,
                &h_list(inp(rec, "wrapped")?, "input.wrapped")?,
            )
            .and_then(|seed| {
                if ed_public(&seed) == group_id {
                    Ok(())
                } else {
                    Err("groupMismatch")
                }
            });
            verdict("unwrapping the group seed", rec, got.map_err(str::to_owned))
        }
        _ => {
            // keyconv
            let public: [u8; 32] = ia(rec, "public_key")?;
            match ed_to_x25519(&public) {
                Ok(x) if rec.valid => {
                    eq_hex("expected.x25519_public", &eh(rec, "x25519_public")?, &x)?;
                    if rec.input.contains_key("seed") {
                        let seed: [u8; 32] = ia(rec, "seed")?;
                        eq_hex("public key of input.seed", &public, &ed_public(&seed))?;
                        // The vector holds SHA-512(seed)[0..32] as is (what
                        // ed25519-dalek's `to_scalar_bytes` returns); X25519
                        // clamps on use, so it is the same secret as
                        // clamp(SHA-512(seed)[0..32]), which the README names.
                        let prefix = &Sha512::digest(seed)[..32];
                        let want = eh(rec, "x25519_secret")?;
                        eq_hex(
                            "expected.x25519_secret (SHA-512(seed)[0..32])",
                            &want,
                            prefix,
                        )?;
                        let secret = x25519_secret(&seed);
                        eq_hex(
                            "X25519(clamp(SHA-512(seed)[0..32]), 9)",
                            &x,
                            &x25519_base(&secret),
                        )?;
                        let as_given: [u8; 32] =
                            ax(exp(rec, "x25519_secret")?, "expected.x25519_secret")?;
                        eq_hex(
                            "X25519(expected.x25519_secret, 9)",
                            &x,
                            &x25519_base(&as_given),
                        )?;
                    }
                    Ok(())
                }
                other => verdict(
                    "key conversion",
                    rec,
                    other.map(drop).map_err(str::to_owned),
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// fof.json (schema/README.md §6)

fn fof_tag(v: &[u8; 32], pub_post: &[u8; 32]) -> [u8; 2] {
    let full = hmac_sha256(v, &[b"fof-tag", pub_post]);
    [full[0], full[1]]
}

fn fof_slot_key(v: &[u8; 32], pub_post: &[u8; 32]) -> [u8; 32] {
    hmac_sha256(v, &[b"fof-slot", pub_post])
}

fn fof_vouch_mac(v: &[u8; 32], pub_post: &[u8; 32], comment_hash: &[u8; 32]) -> [u8; 16] {
    let full = hmac_sha256(v, &[b"fof-vouch", pub_post, comment_hash]);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// The first of `keys` (in order) whose slot opens to a seed of `pub_post`.
fn fof_open_slots(
    keys: &[[u8; 32]],
    pub_post: &[u8; 32],
    slots: &[Vec<u8>],
) -> Option<(usize, [u8; 32])> {
    for (index, v) in keys.iter().enumerate() {
        let tag = fof_tag(v, pub_post);
        let key = fof_slot_key(v, pub_post);
        for slot in slots.iter().filter(|s| s.len() == 50 && s[..2] == tag) {
            let Ok(plain) = aead_open(&key, &[0u8; 12], pub_post, &slot[2..]) else {
                continue;
            };
            let Ok(seed) = <[u8; 32]>::try_from(plain) else {
                continue;
            };
            if ed_public(&seed) == *pub_post {
                return Some((index, seed));
            }
        }
    }
    None
}

fn check_fof(rec: &Record, kind: &str) -> Check {
    let pub_post: [u8; 32] = ia(rec, "pub_post")?;
    match kind {
        "derive" => {
            let v: [u8; 32] = ia(rec, "vouch_key")?;
            let h: [u8; 32] = ia(rec, "comment_hash")?;
            eq_hex("expected.tag", &eh(rec, "tag")?, &fof_tag(&v, &pub_post))?;
            eq_hex(
                "expected.slot_key",
                &eh(rec, "slot_key")?,
                &fof_slot_key(&v, &pub_post),
            )?;
            eq_hex(
                "expected.vouch_mac",
                &eh(rec, "vouch_mac")?,
                &fof_vouch_mac(&v, &pub_post, &h),
            )
        }
        "make_slots" => {
            let seed: [u8; 32] = ia(rec, "priv_post_seed")?;
            let keys: Vec<[u8; 32]> = ia_list(rec, "vouch_keys")?;
            if ed_public(&seed) != pub_post {
                return verdict("making slots", rec, Err("keyMismatch".into()));
            }
            verdict("making slots", rec, Ok(()))?;
            let mut slots = Vec::new();
            for v in &keys {
                let mut slot = fof_tag(v, &pub_post).to_vec();
                slot.extend(aead_seal(
                    &fof_slot_key(v, &pub_post),
                    &[0u8; 12],
                    &pub_post,
                    &seed,
                )?);
                slots.push(slot);
            }
            eq_hex_list(
                "expected.slots",
                &h_list(exp(rec, "slots")?, "expected.slots")?,
                &slots,
            )?;
            for (i, v) in keys.iter().enumerate() {
                eq_val(
                    &format!("vouch key {i} opening its slot"),
                    Some((0, seed)),
                    fof_open_slots(std::slice::from_ref(v), &pub_post, &slots),
                )?;
            }
            Ok(())
        }
        "open_slots" => {
            let got = fof_open_slots(
                &ia_list(rec, "vouch_keys")?,
                &pub_post,
                &h_list(inp(rec, "slots")?, "input.slots")?,
            );
            let found = bx(exp(rec, "found")?, "expected.found")?;
            let want = if found {
                Some((
                    usize::try_from(ux(exp(rec, "index")?, "expected.index")?)
                        .unwrap_or(usize::MAX),
                    ax::<32>(exp(rec, "seed")?, "expected.seed")?,
                ))
            } else {
                None
            };
            let show = |x: &Option<(usize, [u8; 32])>| match x {
                None => "not found".to_owned(),
                Some((i, s)) => format!("index {i}, seed {}", hex::encode(s)),
            };
            if want == got {
                Ok(())
            } else {
                Err(mismatch("open_slots", show(&want), show(&got)))
            }
        }
        "group_sig" => {
            let h: [u8; 32] = ia(rec, "comment_hash")?;
            let sig: [u8; 64] = ia(rec, "signature")?;
            let signed = signing_input("comment-group", &h)?;
            if rec.input.contains_key("priv_post_seed") {
                let seed: [u8; 32] = ia(rec, "priv_post_seed")?;
                eq_hex(
                    "public key of input.priv_post_seed",
                    &pub_post,
                    &ed_public(&seed),
                )?;
                eq_hex(
                    "deterministic group signature",
                    &sig,
                    &ed_sign(&seed, &signed),
                )?;
            }
            if rec.valid {
                eq_hex(
                    "expected.signing_input",
                    &eh(rec, "signing_input")?,
                    &signed,
                )?;
            }
            verdict(
                "verifying the group signature",
                rec,
                strict_verify(&pub_post, &signed, &sig).map_err(str::to_owned),
            )
        }
        _ => {
            // vouch_mac: index of the first matching candidate, or null.
            let h: [u8; 32] = ia(rec, "comment_hash")?;
            let mac = ih(rec, "mac")?;
            let got = ia_list::<32>(rec, "candidates")?
                .iter()
                .position(|v| fof_vouch_mac(v, &pub_post, &h)[..] == mac[..])
                .map(|i| i as u64);
            let want = exp(rec, "index")?;
            let want = if want.is_null() {
                None
            } else {
                Some(ux(want, "expected.index")?)
            };
            eq_val("index of the matching candidate", want, got)
        }
    }
}

// ---------------------------------------------------------------------------
// ids.json

fn parse_id(text: &str, len: usize) -> Result<Vec<u8>, &'static str> {
    // Exactly 2 × len hex digits; the length is judged on the text first.
    if text.len() != 2 * len {
        return Err("wrongLength");
    }
    hex::decode(text).map_err(|_| "invalidHex")
}

fn is_dns_name(h: &str) -> bool {
    let last_all_digits = h
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    !h.is_empty()
        && h.len() <= 253
        && !last_all_digits
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `NodeId@host:port` → (node id hex, host, host kind, port).
fn parse_connect(text: &str) -> Result<(String, String, &'static str, u16), &'static str> {
    let (id, addr) = text.split_once('@').ok_or("missingAt")?;
    let node_id = parse_id(id, 32).map_err(|_| "nodeId")?;
    let (host, kind, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or("missingPort")?;
        let ip: std::net::Ipv6Addr = h.parse().map_err(|_| "badHost")?;
        (ip.to_string(), "ip", p)
    } else {
        let (h, p) = addr.rsplit_once(':').ok_or("missingPort")?;
        if h.contains(':') {
            return Err("badHost");
        }
        match h.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => (ip.to_string(), "ip", p),
            Err(_) if is_dns_name(h) => (h.to_ascii_lowercase(), "name", p),
            Err(_) => return Err("badHost"),
        }
    };
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("badPort");
    }
    let port: u16 = port.parse().map_err(|_| "badPort")?;
    if port == 0 {
        return Err("badPort");
    }
    Ok((hex::encode(node_id), host, kind, port))
}

fn check_ids(rec: &Record, kind: &str) -> Check {
    let text = sx(inp(rec, "text")?, "input.text")?;
    if kind == "connect-string" {
        return match parse_connect(text) {
            Ok((node_id, host, host_kind, port)) if rec.valid => {
                eq_val(
                    "expected.node_id",
                    sx(exp(rec, "node_id")?, "node_id")?,
                    node_id.as_str(),
                )?;
                eq_val(
                    "expected.host",
                    sx(exp(rec, "host")?, "host")?,
                    host.as_str(),
                )?;
                eq_val(
                    "expected.host_kind",
                    sx(exp(rec, "host_kind")?, "host_kind")?,
                    host_kind,
                )?;
                eq_val(
                    "expected.port",
                    ux(exp(rec, "port")?, "port")?,
                    u64::from(port),
                )
            }
            other => verdict(
                "parsing the connect string",
                rec,
                other.map(drop).map_err(str::to_owned),
            ),
        };
    }
    let len = if matches!(kind, "ChannelId" | "WormId") {
        16
    } else {
        32
    };
    match parse_id(text, len) {
        Ok(bytes) if rec.valid => {
            eq_hex("expected.bytes", &eh(rec, "bytes")?, &bytes)?;
            eq_val(
                "expected.text (canonical form)",
                sx(exp(rec, "text")?, "expected.text")?,
                hex::encode(&bytes).as_str(),
            )
        }
        other => verdict(
            &format!("parsing as {kind}"),
            rec,
            other.map(drop).map_err(str::to_owned),
        ),
    }
}

// ---------------------------------------------------------------------------
// frames.json (schema/README.md §2)

/// The message-code table: code, name, cap in bytes (segment table +
/// segments, code byte excluded).
const CODES: &[(u8, &str, u64)] = &[
    (0x00, "Hello", 64 * KIB),
    (0x01, "RoutingDiff", MIB),
    (0x02, "InitialMapSync", 16 * MIB),
    (0x03, "BootstrapRequest", 4 * KIB),
    (0x04, "BootstrapResponse", 256 * KIB),
    (0x05, "HelloResponse", 64 * KIB),
    (0x10, "WormRequest", 64 * KIB),
    (0x11, "WormQuery", 64 * KIB),
    (0x12, "WormResponse", 64 * KIB),
    (0x20, "AddressRequest", 64 * KIB),
    (0x21, "AddressResponse", 256 * KIB),
    (0x30, "FileRequest", 4 * KIB),
    (0x31, "FileResponse", 2 * MIB),
    (0x32, "AuthorUpdateRequest", 4 * KIB),
    (0x33, "AuthorUpdateResponse", 320 * KIB),
    (0x34, "AuthorUpdatePush", 320 * KIB),
    (0x35, "PostNotification", 16 * KIB),
    (0x36, "ManifestPush", MIB),
    (0x37, "BlobHeaderDiff", MIB),
    (0x40, "PullSyncRequest", 64 * KIB),
    (0x41, "PullSyncResponse", 8 * MIB),
    (0x42, "PushPost", 2 * MIB),
    (0x43, "AudienceRequest", 16 * KIB),
    (0x44, "AudienceResponse", 16 * KIB),
    (0x50, "ProfileUpdate", 64 * KIB),
    (0x51, "DeleteRecord", 16 * KIB),
    (0x52, "VisibilityUpdate", 320 * KIB),
    (0x53, "VouchGrant", 16 * KIB),
    (0x54, "Comment", 64 * KIB),
    (0x60, "CreateChannel", 4 * KIB),
    (0x61, "CreateChannelResponse", 4 * KIB),
    (0x62, "Enqueue", 5 * MIB + 64 * KIB),
    (0x63, "EnqueueResponse", 4 * KIB),
    (0x64, "Fetch", 4 * KIB),
    (0x65, "FetchResponse", 16 * MIB),
    (0x66, "FetchWait", 4 * KIB),
    (0x67, "FetchWaitResponse", 16 * MIB),
    (0x68, "ListChannels", 4 * KIB),
    (0x69, "ListChannelsResponse", MIB),
    (0x7E, "Ack", 4 * KIB),
    (0x7F, "Error", 64 * KIB),
];
const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
/// Most segments a message may have.
const MAX_SEGMENTS: u64 = 512;
/// Pointer nesting limit (root = depth 1).
const NESTING_LIMIT: i32 = 64;

/// A frame accepted by [`judge_frame`].
#[derive(Debug)]
struct FrameOk {
    code: u8,
    name: &'static str,
    segments: u64,
    words: u64,
}

/// A frame refused by [`judge_frame`]: wire error, finer reason, detail.
#[derive(Debug)]
struct FrameRefusal {
    error: &'static str,
    reason: &'static str,
    detail: String,
}

fn refuse(error: &'static str, reason: &'static str, detail: impl Into<String>) -> FrameRefusal {
    FrameRefusal {
        error,
        reason,
        detail: detail.into(),
    }
}

fn u32_le(b: &[u8]) -> u64 {
    u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reader options of the specified walk: nesting 64, traversal 4 × words + 64.
fn walk_options(words: u64) -> ReaderOptions {
    let mut options = ReaderOptions::new();
    options
        .nesting_limit(NESTING_LIMIT)
        .traversal_limit_in_words(Some(
            usize::try_from(words.saturating_mul(4).saturating_add(64)).unwrap_or(usize::MAX),
        ));
    options
}

/// The wire error class of a `capnp` reading error.
fn capnp_refusal(e: &capnp::Error) -> FrameRefusal {
    use capnp::ErrorKind as K;
    let reason = match e.kind {
        K::MessageIsTooDeeplyNested
        | K::MessageIsTooDeeplyNestedOrContainsCycles
        | K::NestingLimitExceeded => "nestingTooDeep",
        K::ReadLimitExceeded => "traversalLimit",
        _ => "malformed",
    };
    refuse("malformed", reason, e.to_string())
}

/// Copies `bytes` into word-aligned storage (the `capnp` reader needs it).
fn to_words(bytes: &[u8]) -> Vec<Word> {
    let mut words = Word::allocate_zeroed_vec(bytes.len() / 8);
    Word::words_to_bytes_mut(&mut words).copy_from_slice(&bytes[..bytes.len() / 8 * 8]);
    words
}

/// One walk of the whole message: bounds, far pointers, pointer kinds,
/// nesting, traversal. Capabilities are refused.
fn walk_message<S: ReaderSegments>(segments: S, words: u64) -> Result<(), FrameRefusal> {
    let reader = capnp::message::Reader::new(segments, walk_options(words));
    let root: capnp::any_pointer::Reader<'_> = reader.get_root().map_err(|e| capnp_refusal(&e))?;
    let size = root.target_size().map_err(|e| capnp_refusal(&e))?;
    if size.cap_count != 0 {
        return Err(refuse("malformed", "capability", "capability pointer"));
    }
    Ok(())
}

/// Judges everything one stream direction carried, by the checks of
/// `schema/README.md` §2 in their order.
fn judge_frame(bytes: &[u8]) -> Result<FrameOk, FrameRefusal> {
    let Some(&code) = bytes.first() else {
        return Err(refuse("malformed", "truncated", "empty stream"));
    };
    let Some(&(_, name, cap)) = CODES.iter().find(|c| c.0 == code) else {
        return Err(refuse(
            "unknownMessage",
            "unknownCode",
            format!("code 0x{code:02x}"),
        ));
    };
    let rest = &bytes[1..];
    if rest.len() < 4 {
        return Err(refuse("malformed", "truncated", "segment count missing"));
    }
    let count = u32_le(&rest[..4]) + 1;
    if count > MAX_SEGMENTS {
        return Err(refuse(
            "malformed",
            "tooManySegments",
            format!("{count} segments"),
        ));
    }
    let table_len = 8 * (count / 2 + 1);
    let mut sizes = Vec::new();
    let mut words = 0u64;
    for i in 0..count {
        let at = usize::try_from(4 + 4 * i).unwrap_or(usize::MAX);
        let Some(b) = rest.get(at..at.saturating_add(4)) else {
            break;
        };
        let size = u32_le(b);
        sizes.push(size);
        words += size;
        if table_len + 8 * words > cap {
            return Err(refuse(
                "tooLarge",
                "tooLarge",
                format!(
                    "{name} declares at least {} bytes (cap {cap})",
                    table_len + 8 * words
                ),
            ));
        }
    }
    if (sizes.len() as u64) < count || (rest.len() as u64) < table_len {
        return Err(refuse("malformed", "truncated", "segment table incomplete"));
    }
    if sizes.first() == Some(&0) {
        return Err(refuse(
            "malformed",
            "emptyMessage",
            "first segment is empty",
        ));
    }
    let frame_len = table_len + 8 * words;
    if (rest.len() as u64) < frame_len {
        return Err(refuse(
            "malformed",
            "truncated",
            format!("{} of {frame_len} bytes", rest.len()),
        ));
    }
    // Both bounded by rest.len() now.
    let (table_len, frame_len) = (table_len as usize, frame_len as usize);
    let storage = to_words(&rest[table_len..frame_len]);
    let all = Word::words_to_bytes(&storage);
    let mut slices: Vec<&[u8]> = Vec::with_capacity(sizes.len());
    let mut at = 0usize;
    for size in &sizes {
        let len = *size as usize * 8;
        slices.push(&all[at..at + len]);
        at += len;
    }
    walk_message(SegmentArray::new(&slices), words)?;
    if rest.len() > frame_len {
        return Err(refuse(
            "malformed",
            "trailingBytes",
            format!("{} byte(s) after the frame", rest.len() - frame_len),
        ));
    }
    Ok(FrameOk {
        code,
        name,
        segments: count,
        words,
    })
}

fn check_frame(rec: &Record) -> Check {
    let bytes = ih(rec, "frame")?;
    let ours = judge_frame(&bytes);
    match (&ours, expected_error(rec)?) {
        (Ok(ok), None) => {
            let want = (
                ux(exp(rec, "code")?, "expected.code")?,
                sx(exp(rec, "name")?, "expected.name")?,
                ux(exp(rec, "segments")?, "expected.segments")?,
                ux(exp(rec, "words")?, "expected.words")?,
            );
            let got = (u64::from(ok.code), ok.name, ok.segments, ok.words);
            eq_val("frame (code, name, segments, words)", want, got)?;
        }
        (Err(r), None) => {
            return Err(mismatch(
                "frame",
                "accepted",
                format!("rejected with `{}` ({}: {})", r.error, r.reason, r.detail),
            ))
        }
        (Ok(_), Some(want)) => {
            return Err(mismatch(
                "frame",
                format!("rejected with `{want}`"),
                "accepted",
            ))
        }
        (Err(r), Some(want)) => {
            if r.error != want {
                return Err(mismatch(
                    "frame",
                    format!("rejected with `{want}`"),
                    format!("rejected with `{}` ({}: {})", r.error, r.reason, r.detail),
                ));
            }
        }
    }
    // Cross-check: distsoc-protocol's decoder (our node's and anchor's) must
    // agree with the vector, including the finer reason it documents.
    let theirs = distsoc_protocol::frame::decode_frame(&bytes);
    let (want, got) = match (&theirs, rec.valid) {
        (Ok(f), true) => {
            let want = (
                ux(exp(rec, "code")?, "code")?,
                ux(exp(rec, "segments")?, "segments")?,
                ux(exp(rec, "words")?, "words")?,
            );
            let got = (
                u64::from(f.code().as_u8()),
                f.segment_count() as u64,
                f.words() as u64,
            );
            (format!("{want:?}"), format!("{got:?}"))
        }
        (Ok(_), false) => ("rejected".to_owned(), "accepted".to_owned()),
        (Err(e), true) => (
            "accepted".to_owned(),
            format!("rejected with `{}` ({e})", e.error_code()),
        ),
        (Err(e), false) => {
            let want = format!(
                "`{}` ({})",
                sx(exp(rec, "error")?, "expected.error")?,
                sx(exp(rec, "reason")?, "expected.reason")?
            );
            (want, format!("`{}` ({})", e.error_code(), e.reason()))
        }
    };
    if want == got {
        Ok(())
    } else {
        Err(mismatch(
            "distsoc-protocol frame decoder (cross-check)",
            want,
            got,
        ))
    }
}

// ---------------------------------------------------------------------------
// canonical.json (schema/README.md §4)

/// One signed or hashed type of `canonical.json`.
struct TypeInfo {
    name: &'static str,
    /// Cap of the canonical bytes.
    cap: usize,
    /// Field holding the signer's key, and the signature purpose.
    signer: Option<(&'static str, &'static str)>,
}

/// The types table of `conformance/vectors/README.md` ("canonical.json").
const TYPES: &[TypeInfo] = &[
    TypeInfo {
        name: "Post",
        cap: 262_144,
        signer: Some(("author", "post")),
    },
    TypeInfo {
        name: "PostBody",
        cap: 262_144,
        signer: None,
    },
    TypeInfo {
        name: "PostHeader",
        cap: 262_144,
        signer: Some(("author", "post-header")),
    },
    TypeInfo {
        name: "CommentBody",
        cap: 16_384,
        signer: Some(("author", "comment")),
    },
    TypeInfo {
        name: "DeleteRecordBody",
        cap: 4_096,
        signer: Some(("author", "delete")),
    },
    TypeInfo {
        name: "VisibilityUpdateBody",
        cap: 266_240,
        signer: Some(("author", "visibility")),
    },
    // Signed over BLAKE3(postId ‖ canonical) by the post's author.
    TypeInfo {
        name: "PostVisibility",
        cap: 262_144,
        signer: None,
    },
    TypeInfo {
        name: "AuthorRecentPosts",
        cap: 262_144,
        signer: Some(("author", "recent-posts")),
    },
    TypeInfo {
        name: "HeartBody",
        cap: 1_024,
        signer: Some(("reactor", "heart")),
    },
    TypeInfo {
        name: "PublicProfile",
        cap: 16_384,
        signer: Some(("postingId", "profile")),
    },
    TypeInfo {
        name: "GroupKeyWrapBody",
        cap: 266_240,
        signer: Some(("admin", "group-key")),
    },
    TypeInfo {
        name: "VouchGrantBody",
        cap: 1_024,
        signer: Some(("grantor", "vouch-grant")),
    },
    TypeInfo {
        name: "AudienceRequestBody",
        cap: 4_096,
        signer: Some(("requester", "audience-request")),
    },
    TypeInfo {
        name: "AudienceResponseBody",
        cap: 4_096,
        signer: Some(("author", "audience-response")),
    },
    TypeInfo {
        name: "IdentityBundle",
        cap: 67_108_848,
        signer: None,
    },
    TypeInfo {
        name: "KdfParams",
        cap: usize::MAX,
        signer: None,
    },
];

fn type_info(name: &str) -> Result<&'static TypeInfo, Problem> {
    TYPES
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| bad(format!("unknown type {name}")))
}

/// Calls `$body` with `$m` bound to the generated module of the type named
/// `$ty` (`distsoc-schema`, the normative schema).
macro_rules! with_schema_type {
    ($ty:expr, $m:ident => $body:expr) => {{
        use distsoc_schema::content_capnp as c;
        use distsoc_schema::identity_capnp as i;
        use distsoc_schema::social_capnp as s;
        match $ty {
            "Post" => {
                use c::post as $m;
                $body
            }
            "PostBody" => {
                use c::post_body as $m;
                $body
            }
            "PostHeader" => {
                use c::post_header as $m;
                $body
            }
            "CommentBody" => {
                use c::comment_body as $m;
                $body
            }
            "DeleteRecordBody" => {
                use c::delete_record_body as $m;
                $body
            }
            "VisibilityUpdateBody" => {
                use c::visibility_update_body as $m;
                $body
            }
            "PostVisibility" => {
                use c::post_visibility as $m;
                $body
            }
            "AuthorRecentPosts" => {
                use c::author_recent_posts as $m;
                $body
            }
            "HeartBody" => {
                use c::heart_body as $m;
                $body
            }
            "PublicProfile" => {
                use i::public_profile as $m;
                $body
            }
            "GroupKeyWrapBody" => {
                use i::group_key_wrap_body as $m;
                $body
            }
            "VouchGrantBody" => {
                use i::vouch_grant_body as $m;
                $body
            }
            "IdentityBundle" => {
                use i::identity_bundle as $m;
                $body
            }
            "KdfParams" => {
                use i::kdf_params as $m;
                $body
            }
            "AudienceRequestBody" => {
                use s::audience_request_body as $m;
                $body
            }
            "AudienceResponseBody" => {
                use s::audience_response_body as $m;
                $body
            }
            other => Err(format!("no schema type {other}")),
        }
    }};
}

fn struct_schema_of(ty: &str) -> Result<StructSchema, String> {
    with_schema_type!(ty, m => match <m::Owned as Introspect>::introspect().which() {
        TypeVariant::Struct(raw) => Ok(StructSchema::new(raw)),
        _ => Err(format!("{ty} is not a struct")),
    })
}

/// Short name of a struct (or group) schema: `Post`, `Post.content`.
fn struct_name(schema: StructSchema) -> String {
    let full = schema
        .get_proto()
        .get_display_name()
        .ok()
        .and_then(|n| n.to_str().ok())
        .unwrap_or("?");
    // `content.capnp:Post.content` → `Post.content`.
    full.split_once(':')
        .map_or(full, |(_, name)| name)
        .to_owned()
}

fn field_name(f: Field) -> String {
    f.get_proto()
        .get_name()
        .ok()
        .and_then(|n| n.to_str().ok())
        .unwrap_or("?")
        .to_owned()
}

fn is_group(f: Field) -> bool {
    matches!(f.get_proto().which(), Ok(field::Group(_)))
}

fn is_union_member(f: Field) -> bool {
    f.get_proto().get_discriminant_value() != field::NO_DISCRIMINANT
}

/// Optional fields: set only when present (`conformance/vectors/README.md`,
/// "The JSON form of a struct"; `schema/*.capnp`: "empty if none").
const OPTIONAL: &[&str] = &[
    "Post.replyTo",
    "Post.replaces",
    "CommentBody.replyTo",
    "DeleteRecordBody.replacedBy",
    "PostHeader.pubPost",
    "PublicProfile.avatar",
    "PublicProfile.networkId",
    "VouchKey.grantee",
    "Attachment.name",
];

// ---- building a value from its JSON form ------------------------------------

fn cerr(e: capnp::Error) -> String {
    e.to_string()
}

/// Sets the fields of `b` from the JSON form of a struct: a key present is a
/// field set (even to an empty value), a key absent is a field left unset.
/// Field order does not matter: canonicalization lays objects out.
fn set_from_json(mut b: dynamic_struct::Builder<'_>, v: &Value) -> Result<(), String> {
    let schema = b.get_schema();
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{}: not an object: {v}", struct_name(schema)))?;
    for (key, fv) in obj {
        let f = schema
            .find_field_by_name(key)
            .map_err(cerr)?
            .ok_or_else(|| format!("{} has no field {key}", struct_name(schema)))?;
        let what = format!("{}.{key}", struct_name(schema));
        if is_group(f) {
            let g: dynamic_struct::Builder<'_> = b.reborrow().init(f).map_err(cerr)?.downcast();
            set_from_json(g, fv)?;
            continue;
        }
        match f.get_type().which() {
            TypeVariant::Void => b.set(f, dynamic_value::Reader::Void).map_err(cerr)?,
            TypeVariant::Struct(_) => {
                if !fv.is_null() {
                    let s: dynamic_struct::Builder<'_> =
                        b.reborrow().init(f).map_err(cerr)?.downcast();
                    set_from_json(s, fv)?;
                }
            }
            TypeVariant::List(elem) => {
                let items = fv
                    .as_array()
                    .ok_or_else(|| format!("{what}: not an array"))?;
                let len = u32::try_from(items.len()).map_err(|_| format!("{what}: too long"))?;
                let mut l: dynamic_list::Builder<'_> =
                    b.reborrow().initn(f, len).map_err(cerr)?.downcast();
                for (i, item) in (0u32..).zip(items) {
                    match elem.which() {
                        TypeVariant::Struct(_) => {
                            let s: dynamic_struct::Builder<'_> =
                                l.reborrow().get(i).map_err(cerr)?.downcast();
                            set_from_json(s, item)?;
                        }
                        TypeVariant::Data => {
                            let bytes = json_hex(item, &what)?;
                            l.set(i, dynamic_value::Reader::Data(&bytes))
                                .map_err(cerr)?;
                        }
                        other => {
                            let v = scalar_value(other, item, &what)?;
                            l.set(i, v.as_reader()).map_err(cerr)?;
                        }
                    }
                }
            }
            TypeVariant::Data => {
                let bytes = json_hex(fv, &what)?;
                b.set(f, dynamic_value::Reader::Data(&bytes))
                    .map_err(cerr)?;
            }
            other => {
                let v = scalar_value(other, fv, &what)?;
                b.set(f, v.as_reader()).map_err(cerr)?;
            }
        }
    }
    Ok(())
}

fn json_hex(v: &Value, what: &str) -> Result<Vec<u8>, String> {
    hex::decode(
        v.as_str()
            .ok_or_else(|| format!("{what}: not a hex string"))?,
    )
    .map_err(|e| format!("{what}: {e}"))
}

/// A scalar, Text or enum value read from JSON.
enum JsonScalar {
    Bool(bool),
    U16(u16),
    U32(u32),
    U64(u64),
    Text(String),
    Enum(u16, capnp::schema::EnumSchema),
}

impl JsonScalar {
    fn as_reader(&self) -> dynamic_value::Reader<'_> {
        match self {
            JsonScalar::Bool(b) => dynamic_value::Reader::Bool(*b),
            JsonScalar::U16(n) => dynamic_value::Reader::UInt16(*n),
            JsonScalar::U32(n) => dynamic_value::Reader::UInt32(*n),
            JsonScalar::U64(n) => dynamic_value::Reader::UInt64(*n),
            JsonScalar::Text(t) => dynamic_value::Reader::Text(t.as_str().into()),
            JsonScalar::Enum(v, s) => dynamic_value::Reader::Enum(dynamic_value::Enum::new(*v, *s)),
        }
    }
}

fn scalar_value(ty: TypeVariant, v: &Value, what: &str) -> Result<JsonScalar, String> {
    let num = || v.as_u64().ok_or_else(|| format!("{what}: not a number"));
    Ok(match ty {
        TypeVariant::Bool => {
            JsonScalar::Bool(v.as_bool().ok_or_else(|| format!("{what}: not a bool"))?)
        }
        TypeVariant::UInt16 => {
            JsonScalar::U16(u16::try_from(num()?).map_err(|_| format!("{what}: above u16"))?)
        }
        TypeVariant::UInt32 => {
            JsonScalar::U32(u32::try_from(num()?).map_err(|_| format!("{what}: above u32"))?)
        }
        TypeVariant::UInt64 => JsonScalar::U64(num()?),
        TypeVariant::Text => JsonScalar::Text(
            v.as_str()
                .ok_or_else(|| format!("{what}: not a string"))?
                .to_owned(),
        ),
        TypeVariant::Enum(raw) => {
            let schema = capnp::schema::EnumSchema::new(raw);
            let name = v
                .as_str()
                .ok_or_else(|| format!("{what}: not an enumerant name"))?;
            let e = schema
                .get_enumerants()
                .map_err(cerr)?
                .iter()
                .find(|e| e.get_proto().get_name().ok().and_then(|n| n.to_str().ok()) == Some(name))
                .ok_or_else(|| format!("{what}: no enumerant {name}"))?;
            JsonScalar::Enum(e.get_ordinal(), schema)
        }
        _ => return Err(format!("{what}: type not used by the vectors")),
    })
}

/// Canonical bytes of a message's root (capnp canonicalization).
fn canonicalize_segments<S: ReaderSegments>(segments: S) -> Result<Vec<u8>, String> {
    let mut options = ReaderOptions::new();
    options.traversal_limit_in_words(None);
    let reader = capnp::message::Reader::new(segments, options);
    let words = reader.canonicalize().map_err(cerr)?;
    Ok(Word::words_to_bytes(&words).to_vec())
}

/// Builds `value` (JSON form, presence honoured) as a `ty` and returns its
/// canonical bytes. `null` is the null root pointer.
fn build_canonical(ty: &str, value: &Value) -> Result<Vec<u8>, String> {
    if value.is_null() {
        let null_root = to_words(&[0u8; 8]);
        return canonicalize_segments(SegmentArray::new(&[Word::words_to_bytes(&null_root)]));
    }
    let mut message = capnp::message::Builder::new_default();
    with_schema_type!(ty, m => {
        let root: m::Builder<'_> = message.init_root();
        let dynb: dynamic_struct::Builder<'_> = dynamic_value::Builder::from(root).downcast();
        set_from_json(dynb, value)
    })?;
    let segments = message.get_segments_for_output();
    canonicalize_segments(SegmentArray::new(&segments))
}

/// The encoder normalization of `conformance/vectors/README.md`: every Text
/// and List set (even empty), optional ids and `Attachment.name` set only when
/// non-empty, exactly one union arm set (a null struct reads as the default).
fn normalize(schema: StructSchema, v: &Value) -> Result<Value, String> {
    let mut obj: Map<String, Value> = match v {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        other => return Err(format!("not an object: {other}")),
    };
    let sname = struct_name(schema);
    for f in schema.get_fields().map_err(cerr)? {
        let name = field_name(f);
        let optional = OPTIONAL.contains(&format!("{sname}.{name}").as_str());
        if is_union_member(f) && !obj.contains_key(&name) {
            continue;
        }
        let ty = f.get_type();
        if is_group(f) {
            if let TypeVariant::Struct(raw) = ty.which() {
                let g = normalize(
                    StructSchema::new(raw),
                    obj.get(&name).unwrap_or(&Value::Null),
                )?;
                obj.insert(name, g);
            }
            continue;
        }
        match ty.which() {
            TypeVariant::Text | TypeVariant::Data
                if optional && obj.get(&name).and_then(Value::as_str) == Some("") =>
            {
                obj.remove(&name);
            }
            TypeVariant::Text | TypeVariant::Data if optional => {}
            TypeVariant::Text => {
                obj.entry(name)
                    .or_insert_with(|| Value::String(String::new()));
            }
            TypeVariant::List(elem) => {
                let items = obj.entry(name).or_insert_with(|| Value::Array(Vec::new()));
                if let (TypeVariant::Struct(raw), Value::Array(items)) = (elem.which(), items) {
                    for item in items.iter_mut() {
                        *item = normalize(StructSchema::new(raw), item)?;
                    }
                }
            }
            TypeVariant::Struct(raw) => {
                if let Some(x) = obj.get(&name).filter(|x| x.is_object()) {
                    let n = normalize(StructSchema::new(raw), x)?;
                    obj.insert(name, n);
                }
            }
            _ => {}
        }
    }
    // A union with no arm set: the default arm (discriminant 0).
    let union = schema.get_union_fields().map_err(cerr)?;
    if !union.is_empty() && !union.iter().any(|f| obj.contains_key(&field_name(f))) {
        if let Some(f) = union
            .iter()
            .find(|f| f.get_proto().get_discriminant_value() == 0)
        {
            let default = match f.get_type().which() {
                TypeVariant::Struct(raw) => normalize(StructSchema::new(raw), &Value::Null)?,
                TypeVariant::Void => Value::Null,
                _ => Value::Null,
            };
            obj.insert(field_name(f), default);
        }
    }
    Ok(Value::Object(obj))
}

// ---- the receiver ------------------------------------------------------------

/// A field rule stated in the schema comments.
#[derive(Clone, Copy)]
enum Rule {
    /// A 32-byte id that must be present.
    Id,
    /// Empty (not set) or a 32-byte id.
    OptId,
    /// Exactly this many bytes.
    Len(usize),
    /// Text of at most this many bytes (`tooLarge`).
    MaxText(usize),
    /// List of at most this many elements (`tooLarge`).
    MaxList(usize),
    /// List of at most this many 32-byte ids.
    IdList(usize),
    /// An integer in this range (`malformed`).
    Range(u64, u64),
    /// The bundle version: 1 (`unsupportedVersion`).
    Version1,
}

/// `(struct, field, rule)`, transcribed from `schema/*.capnp`.
const RULES: &[(&str, &str, Rule)] = &[
    ("Attachment", "blobId", Rule::Id),
    ("Attachment", "mimeType", Rule::MaxText(128)),
    ("Attachment", "name", Rule::MaxText(256)),
    ("PostBody", "text", Rule::MaxText(65_536)),
    ("PostBody", "attachments", Rule::MaxList(32)),
    ("SealedBody", "nonce", Rule::Len(12)),
    ("Post", "author", Rule::Id),
    ("Post", "replyTo", Rule::OptId),
    ("Post", "replaces", Rule::OptId),
    ("WrappedKey", "recipient", Rule::Id),
    ("WrappedKey", "wrapped", Rule::Len(48)),
    ("EncryptedVisibility", "ephemeralKey", Rule::Len(32)),
    ("EncryptedVisibility", "recipients", Rule::MaxList(2_729)),
    ("WrapSlot", "tag", Rule::Len(2)),
    ("WrapSlot", "sealed", Rule::Len(48)),
    ("PostHeader", "postId", Rule::Id),
    ("PostHeader", "author", Rule::Id),
    ("PostHeader", "pubPost", Rule::OptId),
    ("PostHeader", "wrapSlots", Rule::MaxList(3_600)),
    ("CommentBody", "parentPostId", Rule::Id),
    ("CommentBody", "author", Rule::Id),
    ("CommentBody", "text", Rule::MaxText(8_192)),
    ("CommentBody", "replyTo", Rule::OptId),
    ("DeleteRecordBody", "postId", Rule::Id),
    ("DeleteRecordBody", "author", Rule::Id),
    ("DeleteRecordBody", "replacedBy", Rule::OptId),
    ("VisibilityUpdateBody", "postId", Rule::Id),
    ("VisibilityUpdateBody", "author", Rule::Id),
    ("RecentPost", "postId", Rule::Id),
    ("AuthorRecentPosts", "author", Rule::Id),
    ("HeartBody", "postId", Rule::Id),
    ("HeartBody", "reactor", Rule::Id),
    ("PublicProfile", "postingId", Rule::Id),
    ("PublicProfile", "displayName", Rule::MaxText(128)),
    ("PublicProfile", "bio", Rule::MaxText(4_096)),
    ("PublicProfile", "anchors", Rule::IdList(16)),
    ("PublicProfile", "avatar", Rule::OptId),
    ("PublicProfile", "networkId", Rule::OptId),
    ("PostingIdentity", "postingId", Rule::Id),
    ("PostingIdentity", "secretSeed", Rule::Len(32)),
    ("PostingIdentity", "displayName", Rule::MaxText(128)),
    ("GroupKey", "groupId", Rule::Id),
    ("GroupKey", "secretSeed", Rule::Len(32)),
    ("GroupKey", "name", Rule::MaxText(128)),
    ("GroupKeyWrapBody", "groupId", Rule::Id),
    ("GroupKeyWrapBody", "admin", Rule::Id),
    ("GroupKeyWrapBody", "ephemeralKey", Rule::Len(32)),
    ("GroupKeyWrapBody", "members", Rule::IdList(4_096)),
    ("GroupKeyWrapBody", "wraps", Rule::MaxList(2_700)),
    ("VouchKey", "key", Rule::Len(32)),
    ("VouchKey", "grantor", Rule::Id),
    ("VouchKey", "grantee", Rule::OptId),
    ("VouchGrantBody", "grantor", Rule::Id),
    ("VouchGrantBody", "grantee", Rule::Id),
    ("VouchGrantBody", "ephemeralKey", Rule::Len(32)),
    ("VouchGrantBody", "sealedKey", Rule::Len(48)),
    ("IdentityBundle", "version", Rule::Version1),
    ("IdentityBundle", "networkSeed", Rule::Len(32)),
    ("IdentityBundle", "postingIdentities", Rule::MaxList(1_024)),
    ("IdentityBundle", "defaultPostingId", Rule::Id),
    ("IdentityBundle", "vouchKeys", Rule::MaxList(65_536)),
    ("IdentityBundle", "groupKeys", Rule::MaxList(4_096)),
    ("KdfParams", "memoryKib", Rule::Range(8_192, 1_048_576)),
    ("KdfParams", "iterations", Rule::Range(1, 10)),
    ("KdfParams", "parallelism", Rule::Range(1, 4)),
    ("KdfParams", "salt", Rule::Len(16)),
    ("AudienceRequestBody", "requester", Rule::Id),
    ("AudienceRequestBody", "author", Rule::Id),
    ("AudienceRequestBody", "message", Rule::MaxText(1_024)),
    ("AudienceResponseBody", "author", Rule::Id),
    ("AudienceResponseBody", "requester", Rule::Id),
];

/// A refusal: the wire error and why.
type Refusal = (&'static str, String);

fn rule_of(sname: &str, fname: &str) -> Option<Rule> {
    RULES
        .iter()
        .find(|(s, f, _)| *s == sname && *f == fname)
        .map(|r| r.2)
}

/// Walks a struct by its schema: every pointer read with its declared kind,
/// Text checked (NUL, UTF-8), the active union arm known, enumerants known;
/// then the field rules and the struct-level rules.
fn validate_struct(s: dynamic_struct::Reader<'_>) -> Result<(), Refusal> {
    let schema = s.get_schema();
    let sname = struct_name(schema);
    let m = |e: capnp::Error| ("malformed", format!("{sname}: {e}"));
    for f in schema.get_non_union_fields().map_err(m)? {
        validate_field(s, f, &sname)?;
    }
    if !schema.get_union_fields().map_err(m)?.is_empty() {
        match s.which().map_err(m)? {
            Some(f) => validate_field(s, f, &sname)?,
            None => return Err(("malformed", format!("{sname}: unknown union arm"))),
        }
    }
    // Struct-level rules from the schema comments.
    if sname == "PostHeader" {
        let policy = match s.get_named("commentPolicy").map_err(m)? {
            dynamic_value::Reader::Enum(e) => e.get_value(),
            _ => 0,
        };
        let pub_post = match s.get_named("pubPost").map_err(m)? {
            dynamic_value::Reader::Data(d) => d.len(),
            _ => 0,
        };
        // friendsOfFriends (3) needs its 32-byte pubPost.
        if policy == 3 && pub_post != 32 {
            return Err((
                "malformed",
                "PostHeader: friendsOfFriends without pubPost".into(),
            ));
        }
    }
    Ok(())
}

fn validate_field(s: dynamic_struct::Reader<'_>, f: Field, sname: &str) -> Result<(), Refusal> {
    let fname = field_name(f);
    let what = format!("{sname}.{fname}");
    let m = |e: capnp::Error| ("malformed", format!("{what}: {e}"));
    let rule = rule_of(sname, &fname);
    let value = s.get(f).map_err(m)?;
    match value {
        dynamic_value::Reader::Text(t) => {
            t.to_str()
                .map_err(|e| ("malformed", format!("{what}: {e}")))?;
            if let Some(Rule::MaxText(max)) = rule {
                if t.len() > max {
                    return Err(("tooLarge", format!("{what}: {} bytes > {max}", t.len())));
                }
            }
        }
        dynamic_value::Reader::Data(d) => match rule {
            Some(Rule::Id) if d.len() != 32 => {
                return Err((
                    "malformed",
                    format!("{what}: {} bytes, not a 32-byte id", d.len()),
                ))
            }
            Some(Rule::OptId) if !d.is_empty() && d.len() != 32 => {
                return Err((
                    "malformed",
                    format!("{what}: {} bytes, not empty or 32", d.len()),
                ))
            }
            Some(Rule::Len(n)) if d.len() != n => {
                return Err(("malformed", format!("{what}: {} bytes, not {n}", d.len())))
            }
            _ => {}
        },
        dynamic_value::Reader::Struct(st) => validate_struct(st)?,
        dynamic_value::Reader::List(l) => {
            let max = match rule {
                Some(Rule::MaxList(n) | Rule::IdList(n)) => n,
                _ => usize::MAX,
            };
            if l.len() as usize > max {
                return Err(("tooLarge", format!("{what}: {} elements > {max}", l.len())));
            }
            for item in l.iter() {
                match item.map_err(m)? {
                    dynamic_value::Reader::Struct(st) => validate_struct(st)?,
                    dynamic_value::Reader::Text(t) => {
                        t.to_str()
                            .map_err(|e| ("malformed", format!("{what}: {e}")))?;
                    }
                    dynamic_value::Reader::Data(d)
                        if matches!(rule, Some(Rule::IdList(_))) && d.len() != 32 =>
                    {
                        return Err(("malformed", format!("{what}: element of {} bytes", d.len())));
                    }
                    _ => {}
                }
            }
        }
        dynamic_value::Reader::Enum(e) if e.get_enumerant().map_err(m)?.is_none() => {
            return Err((
                "malformed",
                format!("{what}: unknown enumerant {}", e.get_value()),
            ));
        }
        dynamic_value::Reader::UInt16(n) => check_number(rule, u64::from(n), &what)?,
        dynamic_value::Reader::UInt32(n) => check_number(rule, u64::from(n), &what)?,
        dynamic_value::Reader::UInt64(n) => check_number(rule, n, &what)?,
        dynamic_value::Reader::Capability(_) | dynamic_value::Reader::AnyPointer(_) => {
            return Err(("malformed", format!("{what}: type not expected here")))
        }
        _ => {}
    }
    Ok(())
}

fn check_number(rule: Option<Rule>, n: u64, what: &str) -> Result<(), Refusal> {
    match rule {
        Some(Rule::Range(lo, hi)) if !(lo..=hi).contains(&n) => {
            Err(("malformed", format!("{what}: {n} outside {lo}..={hi}")))
        }
        Some(Rule::Version1) if n != 1 => Err(("unsupportedVersion", format!("{what}: {n}"))),
        _ => Ok(()),
    }
}

/// What a receiver has besides the bytes.
#[derive(Default)]
struct Received {
    signature: Option<Vec<u8>>,
    /// The PostId the post was requested or announced as.
    expected_post_id: Option<Vec<u8>>,
    /// `PostVisibility`: the post id and the author's key.
    post_id: Option<Vec<u8>>,
    public_key: Option<Vec<u8>>,
}

/// Reads a Data field of the root by name.
fn root_data(s: dynamic_struct::Reader<'_>, name: &str) -> Result<Vec<u8>, Refusal> {
    match s.get_named(name) {
        Ok(dynamic_value::Reader::Data(d)) => Ok(d.to_vec()),
        Ok(_) => Err(("malformed", format!("{name} is not Data"))),
        Err(e) => Err(("malformed", format!("{name}: {e}"))),
    }
}

/// The receiver of canonical bytes, checks in the order of
/// `conformance/vectors/README.md` ("Invalid records").
fn receive(ty: &TypeInfo, bytes: &[u8], got: &Received) -> Result<(), Refusal> {
    // 1–3: on the length alone.
    if bytes.len() > ty.cap {
        return Err(("tooLarge", format!("{} bytes > {}", bytes.len(), ty.cap)));
    }
    if bytes.is_empty() {
        return Err(("malformed", "empty: no root pointer".into()));
    }
    if !bytes.len().is_multiple_of(8) {
        return Err((
            "nonCanonical",
            format!("{} bytes: not whole words", bytes.len()),
        ));
    }
    // 4: one segment, one bounded walk.
    let words = to_words(bytes);
    let segment: [&[u8]; 1] = [Word::words_to_bytes(&words)];
    let n = (bytes.len() / 8) as u64;
    walk_message(SegmentArray::new(&segment), n)
        .map_err(|r| ("malformed", format!("{}: {}", r.reason, r.detail)))?;
    // 5: canonical form.
    let reader = capnp::message::Reader::new(SegmentArray::new(&segment), walk_options(n));
    match reader.is_canonical() {
        Ok(true) => {}
        Ok(false) => return Err(("nonCanonical", "not the canonical encoding".into())),
        Err(e) => return Err(("malformed", e.to_string())),
    }
    // 6: the type's field rules, on a fresh reader.
    let reader = capnp::message::Reader::new(SegmentArray::new(&segment), walk_options(n));
    let root: dynamic_struct::Reader<'_> = with_schema_type!(ty.name, m => {
        reader
            .get_root::<m::Reader<'_>>()
            .map(|r| dynamic_value::Reader::from(r).downcast::<dynamic_struct::Reader<'_>>())
            .map_err(|e| e.to_string())
    })
    .map_err(|e| ("malformed", e))?;
    validate_struct(root)?;
    // 7: the signature's length.
    let Some(sig) = &got.signature else {
        return Ok(());
    };
    let sig: [u8; 64] = sig
        .as_slice()
        .try_into()
        .map_err(|_| ("malformed", format!("signature of {} bytes", sig.len())))?;
    // 8: the PostId, before the signature.
    if let Some(want) = &got.expected_post_id {
        let id = blake3::hash(bytes);
        if id.as_bytes()[..] != want[..] {
            return Err(("idMismatch", format!("PostId {id}")));
        }
    }
    // 9: the signature.
    let (public, signed) = match ty.signer {
        Some((field, purpose)) => {
            let public = root_data(root, field)?;
            let signed =
                signing_input(purpose, bytes).map_err(|_| ("malformed", "purpose".to_owned()))?;
            (public, signed)
        }
        None => {
            // PostVisibility: by the post's author over BLAKE3(postId ‖ bytes).
            let (Some(post_id), Some(public)) = (&got.post_id, &got.public_key) else {
                return Err(("malformed", "no signer for this type".into()));
            };
            let mut h = blake3::Hasher::new();
            h.update(post_id);
            h.update(bytes);
            let digest = h.finalize();
            let signed = signing_input("post-visibility", digest.as_bytes())
                .map_err(|_| ("malformed", "purpose".to_owned()))?;
            (public.clone(), signed)
        }
    };
    let public: [u8; 32] = public
        .as_slice()
        .try_into()
        .map_err(|_| ("badSignature", "signer key is not 32 bytes".to_owned()))?;
    strict_verify(&public, &signed, &sig).map_err(|e| ("badSignature", format!("signature: {e}")))
}

fn opt_hex(rec: &Record, key: &str) -> Result<Option<Vec<u8>>, Problem> {
    rec.input
        .get(key)
        .map(|v| hx(v, &format!("input.{key}")))
        .transpose()
}

fn check_canonical(rec: &Record, ty_name: &str) -> Check {
    let ty = type_info(ty_name)?;
    if !rec.valid {
        let bytes = ih(rec, "canonical")?;
        let got = Received {
            signature: opt_hex(rec, "signature")?,
            expected_post_id: opt_hex(rec, "expected_post_id")?,
            post_id: opt_hex(rec, "post_id")?,
            public_key: opt_hex(rec, "public_key")?,
        };
        let want = expected_error(rec)?.unwrap_or_default();
        let what = "receiving input.canonical";
        return match receive(ty, &bytes, &got) {
            Err((e, _)) if e == want => Ok(()),
            Err((e, why)) => Err(mismatch(
                what,
                format!("rejected with `{want}`"),
                format!("rejected with `{e}` ({why})"),
            )),
            Ok(()) => Err(mismatch(
                what,
                format!("rejected with `{want}`"),
                "accepted",
            )),
        };
    }
    let value = inp(rec, "value")?;
    let canonical = eh(rec, "canonical")?;
    // The value, built field by field from the schema, presence honoured.
    let built =
        build_canonical(ty.name, value).map_err(|e| bad(format!("building input.value: {e}")))?;
    eq_hex(
        "expected.canonical (input.value built and canonicalized)",
        &canonical,
        &built,
    )?;
    // What an encoder following the README's rules writes.
    let schema = struct_schema_of(ty.name).map_err(bad)?;
    let normalized =
        normalize(schema, value).map_err(|e| bad(format!("normalizing input.value: {e}")))?;
    let reencoded =
        build_canonical(ty.name, &normalized).map_err(|e| bad(format!("building: {e}")))?;
    match rec.expected.get("reencoded") {
        Some(v) => {
            let want = hx(v, "expected.reencoded")?;
            eq_hex("expected.reencoded (the encoder's form)", &want, &reencoded)?;
            if want == canonical {
                return Err(mismatch(
                    "expected.reencoded",
                    "differs from expected.canonical",
                    "equal",
                ));
            }
        }
        None => eq_hex(
            "expected.canonical (the encoder's form)",
            &canonical,
            &reencoded,
        )?,
    }
    // The bytes are canonical in the Cap'n Proto sense (re-canonicalizing them
    // is the identity).
    let words = to_words(&canonical);
    let again = canonicalize_segments(SegmentArray::new(&[Word::words_to_bytes(&words)]))
        .map_err(|e| mismatch("re-canonicalizing expected.canonical", "succeeds", e))?;
    eq_hex("expected.canonical re-canonicalized", &canonical, &again)?;
    eq_hex(
        "expected.blake3",
        &eh(rec, "blake3")?,
        blake3::hash(&canonical).as_bytes(),
    )?;
    // Signatures.
    let mut got = Received::default();
    if ty.signer.is_some() || rec.input.contains_key("signer_seed") {
        let seed: [u8; 32] = ia(rec, "signer_seed")?;
        let public = ed_public(&seed);
        eq_hex("expected.public_key", &eh(rec, "public_key")?, &public)?;
        let purpose = sx(inp(rec, "purpose")?, "input.purpose")?;
        let message = match ty.signer {
            Some((field, want_purpose)) => {
                eq_val("input.purpose (the type's purpose)", want_purpose, purpose)?;
                let signer = root_field(ty.name, &canonical, field)?;
                eq_hex(
                    &format!("the body's signer field `{field}`"),
                    &public,
                    &signer,
                )?;
                canonical.clone()
            }
            None => {
                eq_val("input.purpose", "post-visibility", purpose)?;
                let post_id = ih(rec, "post_id")?;
                let mut h = blake3::Hasher::new();
                h.update(&post_id);
                h.update(&canonical);
                let digest = h.finalize();
                eq_hex(
                    "expected.signing_digest",
                    &eh(rec, "signing_digest")?,
                    digest.as_bytes(),
                )?;
                got.post_id = Some(post_id);
                got.public_key = Some(public.to_vec());
                digest.as_bytes().to_vec()
            }
        };
        let sig = ed_sign(&seed, &signing_input(purpose, &message)?);
        eq_hex("expected.signature", &eh(rec, "signature")?, &sig)?;
        got.signature = Some(sig.to_vec());
    }
    // The receiver accepts the bytes (and the signature).
    receive(ty, &canonical, &got).map_err(|(e, why)| {
        mismatch(
            "receiving expected.canonical",
            "accepted",
            format!("rejected with `{e}` ({why})"),
        )
    })?;
    if rec.input.contains_key("group_seed") {
        eq_val(
            "input.group_purpose",
            "comment-group",
            sx(inp(rec, "group_purpose")?, "group_purpose")?,
        )?;
        let gseed: [u8; 32] = ia(rec, "group_seed")?;
        let gpub = ed_public(&gseed);
        eq_hex(
            "expected.group_public_key",
            &eh(rec, "group_public_key")?,
            &gpub,
        )?;
        let signed = signing_input("comment-group", blake3::hash(&canonical).as_bytes())?;
        let gsig = ed_sign(&gseed, &signed);
        eq_hex(
            "expected.group_signature",
            &eh(rec, "group_signature")?,
            &gsig,
        )?;
        eq_val(
            "verifying the group signature",
            Ok(()),
            strict_verify(&gpub, &signed, &gsig),
        )?;
    }
    if let Some(d) = rec.input.get("derivation") {
        check_derivation(ty.name, value, d)?;
    }
    Ok(())
}

/// A Data field of the root of canonical bytes, read through the schema.
fn root_field(ty: &str, bytes: &[u8], field: &str) -> Result<Vec<u8>, Problem> {
    let words = to_words(bytes);
    let segment: [&[u8]; 1] = [Word::words_to_bytes(&words)];
    let reader = capnp::message::Reader::new(
        SegmentArray::new(&segment),
        walk_options((bytes.len() / 8) as u64),
    );
    let root: dynamic_struct::Reader<'_> = with_schema_type!(ty, m => {
        reader
            .get_root::<m::Reader<'_>>()
            .map(|r| dynamic_value::Reader::from(r).downcast::<dynamic_struct::Reader<'_>>())
            .map_err(|e| e.to_string())
    })
    .map_err(|e| mismatch(format!("reading `{field}`"), "readable", e))?;
    root_data(root, field).map_err(|(_, e)| mismatch(format!("reading `{field}`"), "readable", e))
}

/// `input.derivation` (informative): open what the value seals with the
/// primitives above.
fn check_derivation(ty: &str, value: &Value, d: &Value) -> Check {
    let dget = |k: &str| {
        d.get(k)
            .ok_or_else(|| bad(format!("input.derivation.{k} is missing")))
    };
    let vget = |v: &'_ Value, k: &str| -> Result<Value, Problem> {
        v.get(k)
            .cloned()
            .ok_or_else(|| bad(format!("input.value: {k} is missing")))
    };
    let wrapped_entries = |list: &Value| -> Result<Vec<Vec<u8>>, Problem> {
        lx(list, "recipients")?
            .iter()
            .map(|w| {
                let mut e = hx(&vget(w, "recipient")?, "recipient")?;
                e.extend(hx(&vget(w, "wrapped")?, "wrapped")?);
                Ok(e)
            })
            .collect()
    };
    match ty {
        "Post" => {
            let sealed = vget(&vget(value, "content")?, "sealed")?;
            let cek: [u8; 32] = ax(dget("cek")?, "derivation.cek")?;
            let nonce: [u8; 12] = ax(&vget(&sealed, "nonce")?, "nonce")?;
            let ct = hx(&vget(&sealed, "ciphertext")?, "ciphertext")?;
            let body = build_canonical("PostBody", dget("body")?).map_err(bad)?;
            eq_val(
                "the sealed body, opened with derivation.cek",
                Ok(hex::encode(body)),
                aead_open(&cek, &nonce, CONTENT_AAD, &ct).map(hex::encode),
            )
        }
        "PostHeader" => {
            let seed: [u8; 32] = ax(dget("priv_post_seed")?, "derivation.priv_post_seed")?;
            let pub_post: [u8; 32] = ax(&vget(value, "pubPost")?, "pubPost")?;
            eq_hex(
                "pubPost (public key of derivation.priv_post_seed)",
                &pub_post,
                &ed_public(&seed),
            )?;
            let slots: Vec<Vec<u8>> = lx(&vget(value, "wrapSlots")?, "wrapSlots")?
                .iter()
                .map(|s| {
                    let mut b = hx(&vget(s, "tag")?, "tag")?;
                    b.extend(hx(&vget(s, "sealed")?, "sealed")?);
                    Ok(b)
                })
                .collect::<Result<_, Problem>>()?;
            for (i, k) in lx(dget("vouch_keys")?, "vouch_keys")?.iter().enumerate() {
                let v: [u8; 32] = ax(k, "vouch key")?;
                eq_val(
                    &format!("derivation.vouch_keys[{i}] opening a wrap slot"),
                    Some((0, seed)),
                    fof_open_slots(&[v], &pub_post, &slots),
                )?;
            }
            Ok(())
        }
        "PostVisibility" | "VisibilityUpdateBody" => {
            let vis = if ty == "PostVisibility" {
                value.clone()
            } else {
                vget(value, "visibility")?
            };
            let enc = vget(&vis, "encrypted")?;
            let eph: [u8; 32] = ax(&vget(&enc, "ephemeralKey")?, "ephemeralKey")?;
            let entries = wrapped_entries(&vget(&enc, "recipients")?)?;
            let cek: [u8; 32] = ax(dget("cek")?, "derivation.cek")?;
            for (i, s) in lx(dget("recipient_seeds")?, "recipient_seeds")?
                .iter()
                .enumerate()
            {
                let seed: [u8; 32] = ax(s, "recipient seed")?;
                eq_val(
                    &format!("derivation.recipient_seeds[{i}] unwrapping the CEK"),
                    Ok(cek),
                    unwrap_secret(&seed, &eph, &entries),
                )?;
            }
            Ok(())
        }
        "GroupKeyWrapBody" => {
            let eph: [u8; 32] = ax(&vget(value, "ephemeralKey")?, "ephemeralKey")?;
            let entries = wrapped_entries(&vget(value, "wraps")?)?;
            let group_seed: [u8; 32] = ax(dget("group_seed")?, "derivation.group_seed")?;
            let group_id: [u8; 32] = ax(&vget(value, "groupId")?, "groupId")?;
            eq_hex(
                "groupId (public key of derivation.group_seed)",
                &group_id,
                &ed_public(&group_seed),
            )?;
            for (i, s) in lx(dget("member_seeds")?, "member_seeds")?
                .iter()
                .enumerate()
            {
                let seed: [u8; 32] = ax(s, "member seed")?;
                eq_val(
                    &format!("derivation.member_seeds[{i}] unwrapping the group seed"),
                    Ok(group_seed),
                    unwrap_secret(&seed, &eph, &entries),
                )?;
            }
            Ok(())
        }
        "VouchGrantBody" => {
            let eph: [u8; 32] = ax(&vget(value, "ephemeralKey")?, "ephemeralKey")?;
            let mut entry = hx(&vget(value, "grantee")?, "grantee")?;
            entry.extend(hx(&vget(value, "sealedKey")?, "sealedKey")?);
            let seed: [u8; 32] = ax(dget("grantee_seed")?, "derivation.grantee_seed")?;
            let v: [u8; 32] = ax(dget("vouch_key")?, "derivation.vouch_key")?;
            eq_val(
                "derivation.grantee_seed opening sealedKey",
                Ok(v),
                unwrap_secret(&seed, &eph, &[entry]),
            )
        }
        other => Err(bad(format!("no derivation defined for {other}"))),
    }
}
