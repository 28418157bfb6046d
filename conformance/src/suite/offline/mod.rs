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
//!   labels, the passphrase bounds — is written again (`crate::refcrypto`) from
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

mod canonical;
mod crypto;
mod frames;
mod ids;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use self::canonical::{check_canonical, TYPES};
use self::crypto::{
    check_blake3, check_chacha, check_dm_rotation, check_envelope, check_fof, check_passphrase,
    check_signatures,
};
use self::frames::check_frame;
use self::ids::check_ids;
use super::model::{CaseInfo, CaseResult, Kind, Level, Role, Verdict};
use crate::refcrypto;
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

/// The vector files of `conformance/vectors/`, built into the crate (and
/// so into the `distsoc-conformance` binary): `(file name, contents)`, in
/// name order. A test checks that the list is the directory's `*.json`.
pub const EMBEDDED: [(&str, &str); 10] = [
    ("blake3.json", include_str!("../../../vectors/blake3.json")),
    (
        "canonical.json",
        include_str!("../../../vectors/canonical.json"),
    ),
    (
        "chacha20poly1305.json",
        include_str!("../../../vectors/chacha20poly1305.json"),
    ),
    (
        "dm_rotation.json",
        include_str!("../../../vectors/dm_rotation.json"),
    ),
    (
        "envelope.json",
        include_str!("../../../vectors/envelope.json"),
    ),
    ("fof.json", include_str!("../../../vectors/fof.json")),
    ("frames.json", include_str!("../../../vectors/frames.json")),
    ("ids.json", include_str!("../../../vectors/ids.json")),
    (
        "passphrase.json",
        include_str!("../../../vectors/passphrase.json"),
    ),
    (
        "signatures.json",
        include_str!("../../../vectors/signatures.json"),
    ),
];

/// Checks the vector files built into the crate ([`EMBEDDED`]), as
/// [`check_all`] checks a directory; works from any working directory.
///
/// # Errors
///
/// As [`check_all`].
pub fn check_embedded() -> Result<Vec<CaseResult>, OfflineError> {
    let mut results = Vec::new();
    for (name, text) in EMBEDDED {
        results.extend(check_text(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors"))
                .join(name)
                .as_path(),
            text,
        )?);
    }
    Ok(results)
}

/// Checks every record of one vector file (see [`check_all`]).
///
/// # Errors
///
/// As [`check_all`], for this one file.
pub fn check_file(path: &Path) -> Result<Vec<CaseResult>, OfflineError> {
    let text = std::fs::read_to_string(path).map_err(|source| OfflineError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    check_text(path, &text)
}

/// Checks the records of vector file `path` whose contents are `text`.
fn check_text(path: &Path, text: &str) -> Result<Vec<CaseResult>, OfflineError> {
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
    let vf: VectorFile = serde_json::from_str(text).map_err(|source| OfflineError::Json {
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
    DmRotation,
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
            "dm_rotation.json" => FileKind::DmRotation,
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
            FileKind::DmRotation => {
                "schema/README.md §9.1; conformance/vectors/README.md \"dm_rotation.json\""
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
        FileKind::DmRotation => pick(&["step", "window"], kind),
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

impl From<String> for Problem {
    fn from(msg: String) -> Self {
        Problem::BadRecord(msg)
    }
}

/// [`refcrypto::signing_input`] of a purpose the record must name correctly.
fn signing_input(purpose: &str, message: &[u8]) -> Result<Vec<u8>, Problem> {
    refcrypto::check_purpose(purpose)?;
    Ok(refcrypto::signing_input(purpose, message))
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
        FileKind::DmRotation => check_dm_rotation(rec, record_kind),
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
        rerun: String::new(),
        frames: Vec::new(),
        frames_omitted: 0,
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
