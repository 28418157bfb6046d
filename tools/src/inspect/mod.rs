//! `distsoc inspect`: decode bytes the product sends or stores and show
//! what a receiver sees, as an indented tree (or JSON).
//!
//! Input: a file, `-` (stdin) or `--hex`; the bytes may be raw or written
//! as hex (whitespace and newlines ignored). A golden vector file
//! (`conformance/vectors/*.json`) lists its records with this tool's
//! verdict beside the expected one; `--record ID` shows one in full.
//!
//! Formats, detected by structure (or named with `--as`):
//!
//! * a **wire frame**: code byte, Cap'n Proto stream framing, one message
//!   (what a QUIC stream carries). Framing is judged first, exactly as a
//!   receiving stream does (the `frames.json` verdict); then the message
//!   layer (version, field rules), so a frame can be structurally valid and
//!   its message still rejected;
//! * an **identity bundle file** (`distsoc-node export`: stream framing,
//!   no code byte);
//! * **canonical bytes** of a stored or signed struct (one segment, no
//!   table): a `SyncPost` (a post in a node's or anchor's store, a DM
//!   payload), a `Post`, a profile, ... — tried in that order, the first
//!   whose checks pass wins.

mod tree;
mod types;

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use distsoc_conformance::vectors::VectorFile;
use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::error::WireCode;
use distsoc_protocol::frame::decode_frame;
use distsoc_protocol::messages::Message;
use serde_json::{json, Value};

use tree::Node;
use types::Ty;

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// A file holding the bytes (raw, or hex with any whitespace), a golden
    /// vector file (JSON), or `-` for stdin.
    #[arg(value_name = "FILE", conflicts_with_all = ["hex", "file"])]
    input: Option<String>,
    /// The bytes as hex on the command line (whitespace ignored).
    #[arg(long, conflicts_with = "file")]
    hex: Option<String>,
    /// Same as FILE.
    #[arg(long, hide = true)]
    file: Option<PathBuf>,
    /// Read the bytes as this format instead of detecting it: `frame`,
    /// `bundle-file`, or the name of a struct whose canonical bytes they
    /// are (`SyncPost`, `Post`, `PublicProfile`, `IdentityBundle`, a message
    /// name, ...; `--as list` lists them).
    #[arg(long = "as", value_name = "TYPE")]
    as_type: Option<String>,
    /// Print JSON instead of the tree.
    #[arg(long)]
    json: bool,
    /// Show every byte and character (the tree cuts long fields).
    #[arg(long)]
    full: bool,
    /// Golden vector files: show only this record, in full.
    #[arg(long, value_name = "ID")]
    record: Option<String>,
}

/// How the bytes were read.
#[derive(Debug, Clone)]
pub(crate) enum Decoded {
    /// A frame whose framing is valid.
    Frame {
        code: MessageCode,
        segments: usize,
        words: usize,
        /// The message layer's verdict.
        message: types::Verdict,
        tree: Node,
    },
    /// A frame refused by the framing layer (the wire error and why).
    FrameRejected { error: String, reason: String },
    /// Canonical bytes of a struct.
    Canonical {
        ty: &'static str,
        what: &'static str,
        verdict: types::Verdict,
        tree: Node,
    },
    /// An identity bundle file.
    BundleFile { verdict: types::Verdict, tree: Node },
}

/// Splits a `code: reason` verdict error.
fn split(e: &str) -> (&str, &str) {
    e.split_once(": ").unwrap_or((e, ""))
}

/// Reads `bytes` as a frame.
pub(crate) fn frame(bytes: &[u8]) -> Decoded {
    let frame = match decode_frame(bytes) {
        Ok(f) => f,
        Err(e) => {
            return Decoded::FrameRejected {
                error: e.error_code().to_string(),
                reason: e.to_string(),
            }
        }
    };
    let code = frame.code();
    let message = match Message::from_frame(&frame) {
        Ok(m) => Ok(format!("version {}", m.version())),
        Err(e) => Err(format!("{}: {e}", e.error_code())),
    };
    let reader = frame.reader();
    let tree = match (
        reader.get_root::<capnp::any_pointer::Reader<'_>>(),
        types::by_name(code.name()),
    ) {
        (Ok(root), Some(ty)) => (ty.tree)(root),
        (Err(e), _) => Node::Unreadable(e.to_string()),
        (_, None) => Node::Unreadable(format!("no schema for {}", code.name())),
    };
    Decoded::Frame {
        code,
        segments: frame.segment_count(),
        words: frame.words(),
        message,
        tree,
    }
}

/// Reads `bytes` as canonical bytes of `ty`.
fn canonical(ty: &'static Ty, bytes: &[u8]) -> Decoded {
    Decoded::Canonical {
        ty: ty.name,
        what: ty.what,
        verdict: (ty.check)(bytes),
        tree: types::tree_of_canonical(ty, bytes),
    }
}

fn bundle_file(bytes: &[u8]) -> Decoded {
    let verdict = types::check_bundle_file(bytes);
    let mut rest = bytes;
    let tree = match capnp::serialize::read_message(
        &mut rest,
        distsoc_protocol::limits::reader_options(bytes.len() / 8),
    ) {
        Ok(msg) => match (
            msg.get_root::<capnp::any_pointer::Reader<'_>>(),
            types::by_name("EncryptedIdentityBundle"),
        ) {
            (Ok(root), Some(ty)) => (ty.tree)(root),
            (Err(e), _) => Node::Unreadable(e.to_string()),
            (_, None) => Node::Unreadable("no schema".into()),
        },
        Err(e) => Node::Unreadable(e.to_string()),
    };
    Decoded::BundleFile { verdict, tree }
}

/// Decodes `bytes`: as `as_type` if given, else by structure (a valid
/// frame; else a valid bundle file; else the first stored type whose
/// checks pass; else the frame layer's refusal when the first byte is a
/// known code).
pub(crate) fn decode(bytes: &[u8], as_type: Option<&str>) -> anyhow::Result<Decoded> {
    if let Some(t) = as_type {
        return Ok(match t {
            "frame" => frame(bytes),
            "bundle-file" => bundle_file(bytes),
            name => match types::by_name(name) {
                Some(ty) => canonical(ty, bytes),
                None => bail!(
                    "unknown type {name:?} for --as; known: frame, bundle-file, {}",
                    type_names()
                ),
            },
        });
    }
    let as_frame = frame(bytes);
    if matches!(as_frame, Decoded::Frame { .. }) {
        return Ok(as_frame);
    }
    // A stream-framed message (a bundle file) also reads as canonical bytes
    // of a data-only struct (its segment table as the root pointer), so the
    // stricter reading goes first.
    let as_bundle = bundle_file(bytes);
    if matches!(as_bundle, Decoded::BundleFile { verdict: Ok(_), .. }) {
        return Ok(as_bundle);
    }
    for ty in types::all().filter(|t| t.stored) {
        if (ty.check)(bytes).is_ok() {
            return Ok(canonical(ty, bytes));
        }
    }
    if bytes
        .first()
        .and_then(|b| MessageCode::from_u8(*b))
        .is_some()
    {
        return Ok(as_frame);
    }
    let why_frame = match &as_frame {
        Decoded::FrameRejected { reason, .. } => reason.clone(),
        _ => String::new(),
    };
    let why_post = types::by_name("SyncPost")
        .map(|t| (t.check)(bytes).err().unwrap_or_default())
        .unwrap_or_default();
    bail!(
        "not a known format: not a frame ({why_frame}), not the canonical bytes of a stored \
         type (as a SyncPost: {why_post}), not an identity bundle file; name the type with \
         --as TYPE (--as list lists them)"
    )
}

fn type_names() -> String {
    types::all().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// The text report of one decoded input.
pub(crate) fn render(d: &Decoded, full: bool) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: &str| {
        out.push_str(&format!("{k:<9} {v}\n"));
    };
    let verdict = |v: &types::Verdict| match v {
        Ok(note) => format!("VALID ({note})"),
        Err(e) => {
            let (code, why) = split(e);
            format!("REJECTED: a receiver answers Error({code}): {why}")
        }
    };
    match d {
        Decoded::Frame {
            code,
            segments,
            words,
            message,
            tree,
        } => {
            line(
                &mut out,
                "format",
                &format!(
                    "wire frame: code 0x{:02x} {} ({}), {segments} segment{}, {words} word{}",
                    code.as_u8(),
                    code.name(),
                    code.kind().name(),
                    if *segments == 1 { "" } else { "s" },
                    if *words == 1 { "" } else { "s" },
                ),
            );
            line(&mut out, "framing", "VALID");
            line(&mut out, "message", &verdict(message));
            out.push_str(&tree::render(tree, full));
        }
        Decoded::FrameRejected { error, reason } => {
            line(&mut out, "format", "wire frame");
            line(
                &mut out,
                "framing",
                &format!("REJECTED: a receiver answers Error({error}): {reason}"),
            );
        }
        Decoded::Canonical {
            ty,
            what,
            verdict: v,
            tree,
        } => {
            line(&mut out, "format", &format!("canonical {ty}: {what}"));
            line(&mut out, "verdict", &verdict(v));
            out.push_str(&tree::render(tree, full));
        }
        Decoded::BundleFile { verdict: v, tree } => {
            line(
                &mut out,
                "format",
                "identity bundle file (distsoc-node export)",
            );
            line(&mut out, "verdict", &verdict(v));
            out.push_str(&tree::render(tree, full));
        }
    }
    out
}

fn verdict_json(v: &types::Verdict) -> Value {
    match v {
        Ok(note) => json!({ "valid": true, "note": note }),
        Err(e) => {
            let (code, why) = split(e);
            json!({ "valid": false, "error": code, "reason": why })
        }
    }
}

/// The JSON report of one decoded input.
pub(crate) fn to_json(d: &Decoded) -> Value {
    match d {
        Decoded::Frame {
            code,
            segments,
            words,
            message,
            tree,
        } => json!({
            "format": "frame",
            "code": code.as_u8(),
            "name": code.name(),
            "segments": segments,
            "words": words,
            "framing": { "valid": true },
            "message": verdict_json(message),
            "value": tree::to_json(tree),
        }),
        Decoded::FrameRejected { error, reason } => json!({
            "format": "frame",
            "framing": { "valid": false, "error": error, "reason": reason },
        }),
        Decoded::Canonical {
            ty, verdict, tree, ..
        } => json!({
            "format": "canonical",
            "type": ty,
            "verdict": verdict_json(verdict),
            "value": tree::to_json(tree),
        }),
        Decoded::BundleFile { verdict, tree } => json!({
            "format": "bundle-file",
            "type": "EncryptedIdentityBundle",
            "verdict": verdict_json(verdict),
            "value": tree::to_json(tree),
        }),
    }
}

/// The bytes of a vector record and how to read them: a frame
/// (`input.frame`) or canonical bytes of `input.type`.
fn record_input(r: &distsoc_conformance::vectors::Record) -> Option<(Vec<u8>, String)> {
    let hexed = |k: &str| {
        r.input
            .get(k)
            .and_then(Value::as_str)
            .and_then(|h| hex::decode(h).ok())
    };
    if let Some(b) = hexed("frame") {
        return Some((b, "frame".into()));
    }
    let ty = r.input.get("type").and_then(Value::as_str)?;
    types::by_name(ty)?;
    let b = hexed("canonical").or_else(|| {
        // Valid canonical records keep the bytes in `expected`.
        r.expected
            .get("canonical")
            .and_then(Value::as_str)
            .and_then(|h| hex::decode(h).ok())
    })?;
    Some((b, ty.to_string()))
}

/// One short verdict for a record: the frame layer's name or error, or
/// the canonical checks' verdict.
fn short_verdict(d: &Decoded) -> (bool, String) {
    match d {
        Decoded::Frame { code, .. } => (true, code.name().to_string()),
        Decoded::FrameRejected { error, .. } => (false, error.clone()),
        Decoded::Canonical { verdict, .. } | Decoded::BundleFile { verdict, .. } => match verdict {
            Ok(_) => (true, "valid".into()),
            Err(e) => (false, split(e).0.to_string()),
        },
    }
}

/// The report of a golden vector file: one line per record with bytes
/// (or the full report of `--record`).
fn vector_file(file: &VectorFile, args: &InspectArgs) -> anyhow::Result<String> {
    let mut out = String::new();
    if let Some(id) = &args.record {
        let r = file
            .records
            .iter()
            .find(|r| &r.id == id)
            .with_context(|| format!("no record {id:?} in {}", file.file))?;
        let (bytes, how) = record_input(r)
            .with_context(|| format!("record {id:?} holds no frame or canonical bytes"))?;
        let d = decode(&bytes, Some(&how))?;
        if args.json {
            let mut v = to_json(&d);
            v["record"] = json!(r.id);
            v["expected"] = json!(r.expected);
            return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
        }
        out.push_str(&format!("record    {} ({})\n", r.id, r.comment));
        out.push_str(&format!(
            "expected  {}\n",
            serde_json::to_string(&r.expected)?
        ));
        out.push_str(&format!("input     {} bytes\n", bytes.len()));
        out.push_str(&render(&d, args.full));
        return Ok(out);
    }
    let mut rows = Vec::new();
    for r in &file.records {
        let Some((bytes, how)) = record_input(r) else {
            continue;
        };
        let d = decode(&bytes, Some(&how))?;
        let (ok, said) = short_verdict(&d);
        let expected = if r.valid {
            r.expected
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("valid")
                .to_string()
        } else {
            r.expected
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("invalid")
                .to_string()
        };
        // Some invalid canonical records are faulty in the signature or
        // the id beside the bytes: the bytes alone pass.
        let outside = !r.valid
            && ok
            && (r.input.contains_key("signature") || r.input.contains_key("expected_post_id"));
        let agrees = ok == r.valid && said == expected;
        rows.push((r.id.clone(), how, expected, said, agrees, outside));
    }
    if args.json {
        let v: Vec<Value> = rows
            .iter()
            .map(|(id, how, exp, said, agrees, outside)| {
                json!({"record": id, "as": how, "expected": exp, "inspect": said,
                       "agrees": agrees, "fault_outside_bytes": outside})
            })
            .collect();
        return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    out.push_str(&format!(
        "{}: {} records, {} with frame or canonical bytes\n",
        file.file,
        file.records.len(),
        rows.len()
    ));
    for (id, how, exp, said, agrees, outside) in &rows {
        let mark = if *agrees {
            "ok"
        } else if *outside {
            "ok (fault is in the signature or id beside the bytes)"
        } else {
            "DIFFERS"
        };
        out.push_str(&format!(
            "{id:<48} {how:<22} expected {exp:<22} inspect {said:<22} {mark}\n"
        ));
    }
    out.push_str("(distsoc inspect FILE --record ID shows one record in full)\n");
    Ok(out)
}

/// Reads at most `max` bytes from `r` (more is an error, found before the
/// rest is read).
fn read_bounded(mut r: impl Read, max: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    (&mut r)
        .take(max as u64 + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {what}"))?;
    if buf.len() > max {
        bail!("{what} is larger than {max} bytes, the largest input inspect reads");
    }
    Ok(buf)
}

/// Hex text (digits and whitespace only, an even number of digits) as
/// bytes; `None` when `text` is not hex.
fn from_hex_text(text: &[u8]) -> Option<Vec<u8>> {
    if !text
        .iter()
        .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace())
    {
        return None;
    }
    let digits: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if digits.is_empty() {
        return None;
    }
    hex::decode(digits).ok()
}

/// The whole output of `inspect` for `args`.
pub(crate) fn output(args: &InspectArgs) -> anyhow::Result<String> {
    if args.as_type.as_deref() == Some("list") {
        let mut out = String::from("frame        a wire frame (code byte + stream framing)\n");
        out.push_str("bundle-file  an identity bundle file (distsoc-node export)\n");
        for t in types::all() {
            out.push_str(&format!("{:<24} {}\n", t.name, t.what));
        }
        return Ok(out);
    }
    // Hex text is up to twice the bytes, plus whitespace.
    let limit = types::MAX_INPUT_BYTES * 3;
    let (raw, label) = match (&args.hex, &args.file, args.input.as_deref()) {
        (Some(h), _, _) => (h.as_bytes().to_vec(), "--hex".to_string()),
        (None, Some(f), _) => (
            read_bounded(
                std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?,
                limit,
                &f.display().to_string(),
            )?,
            f.display().to_string(),
        ),
        (None, None, Some("-")) => (
            read_bounded(std::io::stdin().lock(), limit, "stdin")?,
            "stdin".into(),
        ),
        (None, None, Some(path)) => (
            read_bounded(
                std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?,
                limit,
                path,
            )?,
            path.to_string(),
        ),
        (None, None, None) => {
            bail!("give the bytes: a FILE, - for stdin, or --hex HEX (see distsoc inspect --help)")
        }
    };
    let trimmed = raw.trim_ascii_start();
    if trimmed.first() == Some(&b'{') {
        if let Ok(file) = serde_json::from_slice::<VectorFile>(&raw) {
            return vector_file(&file, args);
        }
    }
    let (bytes, encoding) = match from_hex_text(&raw) {
        Some(b) => (b, "hex"),
        None if args.hex.is_some() => bail!("--hex is not valid hex (an even number of digits)"),
        None => (raw, "raw bytes"),
    };
    if bytes.len() > types::MAX_INPUT_BYTES {
        bail!(
            "{label} holds {} bytes, more than the largest format ({} bytes)",
            bytes.len(),
            types::MAX_INPUT_BYTES
        );
    }
    let d = decode(&bytes, args.as_type.as_deref())?;
    if args.json {
        let mut v = to_json(&d);
        v["bytes"] = json!(bytes.len());
        v["input"] = json!(encoding);
        return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!("input     {} bytes ({encoding}, {label})\n", bytes.len());
    out.push_str(&render(&d, args.full));
    Ok(out)
}

/// `distsoc inspect`: prints the report; a reader that closes the pipe
/// early (`| head`) ends it quietly.
pub(crate) fn run(args: InspectArgs) -> anyhow::Result<()> {
    let out = output(&args)?;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use distsoc_protocol::messages::wire::Ack;

    fn frame_error(bytes: &[u8]) -> String {
        match frame(bytes) {
            Decoded::FrameRejected { error, .. } => error,
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn valid_and_rejected_frames() {
        let ack = Message::Ack(Ack {
            version: 2,
            request_code: 0x50,
        })
        .to_frame()
        .unwrap();
        match decode(&ack, None).unwrap() {
            Decoded::Frame { code, message, .. } => {
                assert_eq!(code, MessageCode::Ack);
                assert!(message.is_ok(), "{message:?}");
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(frame_error(&[0x99, 0, 0, 0, 0]), "unknownMessage");
        let mut trailing = ack.clone();
        trailing.push(0);
        assert_eq!(frame_error(&trailing), "malformed");
        let v3 = Message::Ack(Ack {
            version: 3,
            request_code: 0x50,
        })
        .to_frame()
        .unwrap();
        match frame(&v3) {
            Decoded::Frame { message, .. } => {
                assert!(message.unwrap_err().starts_with("unsupportedVersion"));
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(frame_error(&v3[..5]), "malformed");
    }

    fn vectors(name: &str) -> VectorFile {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../conformance/vectors")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Every valid golden frame decodes and names its message, with the
    /// segment and word counts of the record; every invalid one is refused
    /// with the record's error; both print without a panic.
    #[test]
    fn every_golden_frame() {
        let file = vectors("frames.json");
        let (mut valid, mut invalid) = (0, 0);
        for r in &file.records {
            let bytes = hex::decode(r.input["frame"].as_str().unwrap()).unwrap();
            let d = decode(&bytes, Some("frame")).unwrap();
            let text = render(&d, false);
            let json = to_json(&d);
            if r.valid {
                valid += 1;
                let Decoded::Frame {
                    code,
                    segments,
                    words,
                    ref tree,
                    ref message,
                } = d
                else {
                    panic!("{}: {d:?}", r.id)
                };
                assert_eq!(u64::from(code.as_u8()), r.expected["code"], "{}", r.id);
                assert_eq!(code.name(), r.expected["name"], "{}", r.id);
                assert_eq!(segments as u64, r.expected["segments"], "{}", r.id);
                assert_eq!(words as u64, r.expected["words"], "{}", r.id);
                // Framing is structural: a root that is not the code's
                // struct (a list, say) is shown as unreadable, and the
                // message layer refuses it.
                match tree {
                    Node::Struct { .. } => {}
                    Node::Unreadable(_) => assert!(message.is_err(), "{}", r.id),
                    other => panic!("{}: {other:?}", r.id),
                }
                assert!(text.contains(&format!(" {} (", code.name())), "{text}");
                assert_eq!(json["name"], r.expected["name"]);
                // Detection finds the frame on its own.
                assert!(
                    matches!(decode(&bytes, None).unwrap(), Decoded::Frame { .. }),
                    "{}",
                    r.id
                );
            } else {
                invalid += 1;
                match d {
                    Decoded::FrameRejected { error, .. } => {
                        assert_eq!(error, r.expected["error"].as_str().unwrap(), "{}", r.id);
                    }
                    d => panic!("{}: accepted: {d:?}", r.id),
                }
                assert!(text.contains("REJECTED"), "{text}");
            }
        }
        assert_eq!(valid, 60);
        assert_eq!(valid + invalid, file.records.len());
    }

    /// Every valid canonical record decodes as its type, with the tree of
    /// that struct; every invalid one whose fault is in the bytes is
    /// refused with the record's error.
    #[test]
    fn every_golden_canonical_value() {
        let file = vectors("canonical.json");
        let mut checked = 0;
        for r in &file.records {
            let (bytes, ty) = record_input(r).unwrap();
            let d = decode(&bytes, Some(&ty)).unwrap();
            let Decoded::Canonical {
                ref verdict,
                ref tree,
                ..
            } = d
            else {
                panic!("{}: {d:?}", r.id)
            };
            if r.valid {
                assert!(verdict.is_ok(), "{}: {verdict:?}", r.id);
                match tree {
                    Node::Struct { ty: got, .. } => assert_eq!(got, &ty, "{}", r.id),
                    other => panic!("{}: {other:?}", r.id),
                }
                assert!(render(&d, false).starts_with("format    canonical"));
                checked += 1;
            } else if !(r.input.contains_key("signature")
                || r.input.contains_key("expected_post_id"))
            {
                let e = verdict.clone().unwrap_err();
                assert_eq!(
                    split(&e).0,
                    r.expected["error"].as_str().unwrap(),
                    "{}",
                    r.id
                );
                checked += 1;
            }
        }
        assert!(checked > 60, "{checked}");
    }

    /// Any golden input (valid or hostile) read as any known type, and
    /// every prefix of a few, gives a report and never a panic.
    #[test]
    fn any_bytes_as_any_type_never_panic() {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for name in ["frames.json", "canonical.json"] {
            for r in &vectors(name).records {
                if let Some((b, _)) = record_input(r) {
                    if b.len() <= 8192 {
                        inputs.push(b);
                    }
                }
            }
        }
        let names: Vec<&str> = types::all().map(|t| t.name).collect();
        for b in &inputs {
            for as_type in ["frame", "bundle-file"].iter().chain(&names) {
                let d = decode(b, Some(as_type)).unwrap();
                let _ = render(&d, true);
                let _ = to_json(&d);
            }
            let _ = decode(b, None);
        }
        for b in inputs.iter().take(20) {
            for end in 0..b.len() {
                let _ = decode(&b[..end], None);
            }
        }
    }

    /// A stored post (canonical SyncPost, also the DM payload format) is
    /// found by structure, not taken for a frame; inside a PushPost frame
    /// the post's bytes are decoded in place.
    #[test]
    fn a_stored_post_is_not_a_hello() {
        use distsoc_protocol::codec::canonical_of;
        use distsoc_protocol::messages::content::{Post, PostVisibility, SyncPost};
        use distsoc_protocol::sign::SigningKey;
        let key = SigningKey::from_seed(&[7; 32]);
        let post = Post::new_public(
            distsoc_protocol::ids::PostingId(key.public()),
            1_700_000_000_000,
            "stored",
            vec![],
        )
        .sign(&key)
        .unwrap();
        let id = post.post_id();
        let sync = SyncPost::new(&key, post, PostVisibility::Public, None);
        let bytes = canonical_of(&sync);
        let d = decode(&bytes, None).unwrap();
        let text = render(&d, false);
        assert!(text.starts_with("format    canonical SyncPost"), "{text}");
        assert!(text.contains(&format!("post {id}")), "{text}");
        assert!(text.contains("\"stored\" (6 bytes)"), "{text}");
        assert!(text.contains("canonical Post (valid"), "{text}");

        let frame_bytes = Message::from(distsoc_protocol::messages::social::PushPost {
            version: distsoc_protocol::limits::PROTOCOL_VERSION,
            post: sync,
            recent: None,
        })
        .to_frame()
        .unwrap();
        let d = decode(&frame_bytes, None).unwrap();
        let text = render(&d, false);
        assert!(text.contains("message   VALID"), "{text}");
        assert!(text.contains("\"stored\""), "{text}");
        let json = to_json(&d);
        assert_eq!(
            json["value"]["post"]["post"]["post"]["type"], "Post",
            "{json}"
        );
        assert_eq!(
            json["value"]["post"]["post"]["post"]["value"]["content"]["plain"]["text"],
            "stored"
        );
    }

    /// An exported identity file (stream framing, no code byte) is found by
    /// structure; its canonical form too, by its type.
    #[test]
    fn an_identity_bundle_file() {
        use distsoc_protocol::codec::canonical_of;
        use distsoc_protocol::messages::identity::{
            EncryptedIdentityBundle, KdfParams, ENCRYPTED_BUNDLE_VERSION,
        };
        let bundle = EncryptedIdentityBundle {
            version: ENCRYPTED_BUNDLE_VERSION,
            kdf_params: KdfParams::recommended([5; 16]),
            nonce: [6; 12],
            ciphertext: vec![7; 48],
        };
        let file = bundle.to_file_bytes();
        let d = decode(&file, None).unwrap();
        let text = render(&d, false);
        assert!(text.starts_with("format    identity bundle file"), "{text}");
        assert!(text.contains("verdict   VALID"), "{text}");
        assert!(text.contains("argon2id"), "{text}");
        assert!(text.contains("ciphertext: 48 bytes 0707"), "{text}");
        let d = decode(&canonical_of(&bundle), None).unwrap();
        assert!(
            render(&d, false).starts_with("format    canonical EncryptedIdentityBundle"),
            "{d:?}"
        );
    }

    #[test]
    fn hex_text_with_whitespace() {
        assert_eq!(from_hex_text(b"7e 00\n0a\t"), Some(vec![0x7e, 0, 0x0a]));
        assert_eq!(from_hex_text(b"7e0"), None);
        assert_eq!(from_hex_text(b"zz"), None);
        assert_eq!(from_hex_text(b" \n"), None);
    }
}
