//! Generator of `conformance/vectors/frames.json`: the framing layer.
//!
//! Every record is one complete stream direction (`input.frame`, hex): the 1-byte
//! message code, the Cap'n Proto segment table and the segments, exactly as they
//! arrive on a QUIC stream. The messages are written word by word (no Cap'n Proto
//! library involved), so each record says precisely which rule of
//! `schema/README.md` §2 it exercises. Frames are checked structurally only: a
//! frame's root need not be the struct its code names (that is the message
//! layer's job, with its own vectors).
//!
//! Expected results: for a valid frame, the `code` (number) and its `name`, the
//! number of `segments` and the total `words` in all segments; for an invalid one,
//! the wire `error` (an `ErrorCode` enumerant name: `unknownMessage`, `tooLarge`
//! or `malformed`) and an informative `reason` (this implementation's
//! `FrameError` variant; other implementations need only match `error`).

use std::collections::BTreeMap;

use distsoc_protocol::codes::MessageCode;
use serde_json::{json, Value};

use super::{Record, VectorFile, FORMAT_VERSION};

/// File name of the generated vector file.
pub(crate) const FILE: &str = "frames.json";

const DESCRIPTION: &str = "Framing of one stream message (schema/README.md §2): 1-byte message \
code + Cap'n Proto stream framing (segment count - 1 as u32 LE, one u32 LE size in words per \
segment, 4 bytes of padding when the count is even, then the segments). input.frame is the \
complete content of one stream direction (hex). Check, in this order: known code \
(unknownMessage), at most 512 segments (malformed), size declared by the segment table \
(table + segments, code byte excluded) within the code's cap, checked before the body is \
read (tooLarge), non-empty first segment (malformed), exactly the declared number of bytes \
(fewer or more: malformed; each stream carries exactly one frame per direction), then one \
walk of the whole message with nesting limit 64 and traversal limit 4 x words + 64 \
(out-of-bounds, far-pointer, capability and unknown pointers, nesting, amplification: \
malformed). Valid records give the code, its name, the segment count and the total words \
of all segments. Invalid records give the ErrorCode name to answer with in `error`; \
`reason` is informative. Roots need not match the struct the code names: framing only.";

// ---- Cap'n Proto words, by hand ----------------------------------------------

/// Struct pointer: offset in words from the end of the pointer, data words,
/// pointer count.
fn sp(offset: i32, data: u16, ptrs: u16) -> u64 {
    u64::from((offset as u32) << 2) | (u64::from(data) << 32) | (u64::from(ptrs) << 48)
}

/// List pointer: offset, element size tag (0 void, 1 bit, 2 byte, 3 two bytes,
/// 4 four bytes, 5 eight bytes, 6 pointer, 7 inline composite), element count
/// (word count for inline composite).
fn lp(offset: i32, size: u8, count: u32) -> u64 {
    (u64::from((offset as u32) << 2) | 1) | (u64::from(size) << 32) | (u64::from(count) << 35)
}

/// Far pointer: landing pad position in words, double-far flag, segment id.
fn fp(pad: u32, double: bool, segment: u32) -> u64 {
    (u64::from(pad) << 3) | (u64::from(double) << 2) | 2 | (u64::from(segment) << 32)
}

/// A frame: code, segment table, segments.
fn frame(code: u8, segments: &[&[u64]]) -> Vec<u8> {
    let sizes: Vec<u32> = segments.iter().map(|s| s.len() as u32).collect();
    let mut out = header(code, segments.len() as u32 - 1, &sizes, true);
    for segment in segments {
        for word in *segment {
            out.extend_from_slice(&word.to_le_bytes());
        }
    }
    out
}

/// A frame header: code, `count_minus_one`, the given sizes and, if `pad` and
/// the table is complete with an even count, the 4 padding bytes.
fn header(code: u8, count_minus_one: u32, sizes: &[u32], pad: bool) -> Vec<u8> {
    let mut out = vec![code];
    out.extend_from_slice(&count_minus_one.to_le_bytes());
    for size in sizes {
        out.extend_from_slice(&size.to_le_bytes());
    }
    let complete = sizes.len() as u64 == u64::from(count_minus_one) + 1;
    if pad && complete && sizes.len().is_multiple_of(2) {
        out.extend_from_slice(&[0; 4]);
    }
    out
}

/// A single-segment frame.
fn single(code: u8, words: &[u64]) -> Vec<u8> {
    frame(code, &[words])
}

/// `depth` nested structs, each with one pointer to the next; the last is an
/// empty struct.
fn nested_structs(depth: usize) -> Vec<u64> {
    let mut words = vec![sp(0, 0, 1); depth];
    words[depth - 1] = sp(-1, 0, 0);
    words
}

/// `depth` nested one-element pointer lists; the innermost element is null.
fn nested_lists(depth: usize) -> Vec<u64> {
    let mut words = vec![lp(0, 6, 1); depth];
    words.push(0);
    words
}

/// A root struct with `n` pointers, all to the same byte list of `list_words`
/// words.
fn shared_list(n: usize, list_words: usize) -> Vec<u64> {
    let mut words = vec![sp(0, 0, n as u16)];
    let list_at = 1 + n;
    for i in 0..n {
        let pointer_at = 1 + i;
        words.push(lp(
            (list_at - pointer_at - 1) as i32,
            2,
            (list_words * 8) as u32,
        ));
    }
    words.resize(1 + n + list_words, 0x6161_6161_6161_6161);
    words
}

// ---- records --------------------------------------------------------------------

const PUSH_POST: u8 = 0x42;

struct Records(Vec<Record>);

impl Records {
    fn push(
        &mut self,
        id: &str,
        comment: &str,
        tags: &[&str],
        valid: bool,
        frame: &[u8],
        expected: BTreeMap<String, Value>,
    ) {
        let mut input = BTreeMap::new();
        input.insert("frame".to_owned(), json!(hex::encode(frame)));
        self.0.push(Record {
            id: id.to_owned(),
            comment: comment.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            valid,
            input,
            expected,
        });
    }

    fn valid(&mut self, id: &str, comment: &str, tags: &[&str], frame: &[u8], words: usize) {
        let code = frame[0];
        let name = MessageCode::from_u8(code).map_or("?", MessageCode::name);
        let count = u32::from_le_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize + 1;
        let mut expected = BTreeMap::new();
        expected.insert("code".to_owned(), json!(code));
        expected.insert("name".to_owned(), json!(name));
        expected.insert("segments".to_owned(), json!(count));
        expected.insert("words".to_owned(), json!(words));
        let mut all_tags = vec!["valid"];
        all_tags.extend_from_slice(tags);
        self.push(id, comment, &all_tags, true, frame, expected);
    }

    fn invalid(
        &mut self,
        id: &str,
        comment: &str,
        tags: &[&str],
        frame: &[u8],
        error: &str,
        reason: &str,
    ) {
        let mut expected = BTreeMap::new();
        expected.insert("error".to_owned(), json!(error));
        expected.insert("reason".to_owned(), json!(reason));
        let mut all_tags = vec!["invalid"];
        all_tags.extend_from_slice(tags);
        self.push(id, comment, &all_tags, false, frame, expected);
    }
}

fn valid_records(r: &mut Records) {
    r.valid(
        "valid-null-root",
        "One segment of one word: a null root pointer (reads as the default value of the root struct).",
        &["minimal"],
        &single(PUSH_POST, &[0]),
        1,
    );
    r.valid(
        "valid-empty-struct",
        "Root is an empty struct (offset -1, no data, no pointers): the canonical form of an all-default struct.",
        &["minimal"],
        &single(0x00, &[sp(-1, 0, 0)]),
        1,
    );
    r.valid(
        "valid-ack",
        "An Ack { version = 2, requestCode = 0x42 }: root struct with 1 data word 02 00 42 00 00 00 00 00.",
        &["struct"],
        &single(0x7e, &[sp(0, 1, 0), 0x0000_0000_0042_0002]),
        2,
    );
    r.valid(
        "valid-struct-data-and-text",
        "Root struct with 1 data word and 1 pointer to the byte list \"hello\\0\" (6 bytes in 1 word).",
        &["struct", "list"],
        &single(0x7f, &[sp(0, 1, 1), 0x2a, lp(0, 2, 6), u64::from_le_bytes(*b"hello\0\0\0")]),
        4,
    );
    r.valid(
        "valid-inline-composite-list",
        "Root is a list of 3 structs of 1 data word each (inline composite: tag word + 3 words).",
        &["list"],
        &single(0x41, &[lp(0, 7, 3), sp(3, 1, 0), 1, 2, 3]),
        5,
    );
    r.valid(
        "valid-pointer-list",
        "Root is a list of 2 pointers to 1-word structs.",
        &["list"],
        &single(0x41, &[lp(0, 6, 2), sp(1, 1, 0), sp(1, 1, 0), 10, 20]),
        5,
    );
    r.valid(
        "valid-two-segments-far",
        "Two segments (the table is padded with 4 zero bytes): the root is a far pointer to a landing pad in segment 1 that points at a 1-word struct.",
        &["segments", "far-pointer"],
        &frame(PUSH_POST, &[&[fp(0, false, 1)], &[sp(0, 1, 0), 42]]),
        3,
    );
    r.valid(
        "valid-three-segments-double-far",
        "Three segments: the root is a double-far pointer to a 2-word landing pad in segment 1 (far pointer to segment 2, then the struct tag); the struct's data is in segment 2.",
        &["segments", "far-pointer"],
        &frame(PUSH_POST, &[&[fp(0, true, 1)], &[fp(0, false, 2), sp(0, 1, 0)], &[7]]),
        4,
    );
    r.valid(
        "valid-four-segments",
        "Four segments (table padded): root far to segment 1, whose struct has two far pointers to structs in segments 2 and 3.",
        &["segments", "far-pointer"],
        &frame(
            PUSH_POST,
            &[
                &[fp(0, false, 1)],
                &[sp(0, 0, 2), fp(0, false, 2), fp(0, false, 3)],
                &[sp(0, 1, 0), 0x11],
                &[sp(0, 1, 0), 0x22],
            ],
        ),
        8,
    );
    r.valid(
        "valid-empty-later-segments",
        "Three segments, the last two empty: only the first segment must be non-empty.",
        &["segments", "edge"],
        &frame(PUSH_POST, &[&[0], &[], &[]]),
        1,
    );
    let mut many: Vec<&[u64]> = vec![&[0]];
    many.resize(512, &[]);
    r.valid(
        "valid-512-segments",
        "Exactly 512 segments (511 of them empty): the most a frame may have. Note: stock Cap'n Proto stream readers (C++ readMessage, capnp-rust read_message) refuse 512 and more, so senders should stay at or below 511.",
        &["segments", "edge"],
        &frame(PUSH_POST, &many),
        1,
    );
    let mut padded = frame(PUSH_POST, &[&[fp(0, false, 1)], &[sp(0, 1, 0), 42]]);
    padded[13..17].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    r.valid(
        "valid-nonzero-table-padding",
        "Two segments with non-zero bytes in the segment table's padding: padding is ignored, as by the reference implementations.",
        &["segments", "lenient"],
        &padded,
        3,
    );
    r.valid(
        "valid-unreferenced-words",
        "Words after the root's tree that nothing points to: legal (frames need not be canonical; only signed bytes must be).",
        &["lenient"],
        &single(PUSH_POST, &[sp(0, 1, 0), 5, 0xdead, 0xbeef]),
        4,
    );
    r.valid(
        "valid-nesting-64-structs",
        "64 nested structs (the root is depth 1): exactly the nesting limit.",
        &["nesting", "edge"],
        &single(PUSH_POST, &nested_structs(64)),
        64,
    );
    r.valid(
        "valid-nesting-64-lists",
        "64 nested one-element pointer lists: exactly the nesting limit.",
        &["nesting", "edge"],
        &single(PUSH_POST, &nested_lists(64)),
        65,
    );
    r.valid(
        "valid-shared-list-within-budget",
        "Two pointers to the same 64-word list: about 2x amplification, well inside the traversal budget (4 x 67 + 64 words). Overlap alone is not an error.",
        &["traversal", "edge"],
        &single(PUSH_POST, &shared_list(2, 64)),
        67,
    );
    let mut at_cap = vec![lp(0, 2, 510 * 8)];
    at_cap.resize(511, 0x6262_6262_6262_6262);
    r.valid(
        "valid-at-cap-bootstrap-request",
        "BootstrapRequest (cap 4 KiB) of exactly 4096 bytes: 8-byte table + 511 words (a 4080-byte list).",
        &["size-cap", "edge"],
        &single(0x03, &at_cap),
        511,
    );
    let mut seg1 = vec![lp(0, 2, 508 * 8)];
    seg1.resize(509, 0x6363_6363_6363_6363);
    r.valid(
        "valid-at-cap-two-segments",
        "CreateChannel (cap 4 KiB) of exactly 4096 bytes in two segments: the 16-byte table counts towards the cap (16 + 510 words x 8).",
        &["size-cap", "segments", "edge"],
        &frame(0x60, &[&[fp(0, false, 1)], &seg1]),
        510,
    );
    for code in MessageCode::ALL {
        let byte = code.as_u8();
        r.valid(
            &format!("valid-code-{byte:02x}-{}", code.name().to_lowercase()),
            &format!(
                "Known code 0x{byte:02x} ({}) with an empty-struct root.",
                code.name()
            ),
            &["code"],
            &single(byte, &[sp(-1, 0, 0)]),
            1,
        );
    }
}

fn header_records(r: &mut Records) {
    r.invalid(
        "empty-stream",
        "No bytes at all: the stream ended before the code byte.",
        &["header", "truncated"],
        &[],
        "malformed",
        "truncated",
    );
    r.invalid(
        "code-only",
        "Only the code byte.",
        &["header", "truncated"],
        &[PUSH_POST],
        "malformed",
        "truncated",
    );
    r.invalid(
        "truncated-segment-count",
        "Code and 3 of the 4 bytes of the segment count.",
        &["header", "truncated"],
        &[PUSH_POST, 0, 0, 0],
        "malformed",
        "truncated",
    );
    r.invalid(
        "truncated-segment-table",
        "Two segments declared, only the first size present.",
        &["header", "truncated"],
        &header(PUSH_POST, 1, &[1], false),
        "malformed",
        "truncated",
    );
    r.invalid(
        "truncated-table-padding",
        "Four segments declared and all four sizes present, but the 4 padding bytes are missing.",
        &["header", "truncated"],
        &header(PUSH_POST, 3, &[1, 0, 0, 0], false),
        "malformed",
        "truncated",
    );
    r.invalid(
        "unknown-code-alone",
        "Unknown code 0x07 and nothing else: the code is judged first.",
        &["code"],
        &[0x07],
        "unknownMessage",
        "unknownCode",
    );
    for byte in [
        0x07u8, 0x0f, 0x13, 0x22, 0x38, 0x45, 0x55, 0x6a, 0x7d, 0x80, 0xfe, 0xff,
    ] {
        r.invalid(
            &format!("unknown-code-{byte:02x}"),
            &format!("Unknown code 0x{byte:02x} followed by a valid message."),
            &["code"],
            &single(byte, &[sp(-1, 0, 0)]),
            "unknownMessage",
            "unknownCode",
        );
    }
    r.invalid(
        "too-many-segments-513",
        "Segment count 513 (count - 1 = 512); only the count is sent.",
        &["header", "segments"],
        &header(PUSH_POST, 512, &[], false),
        "malformed",
        "tooManySegments",
    );
    let mut many: Vec<&[u64]> = vec![&[0]];
    many.resize(513, &[]);
    r.invalid(
        "too-many-segments-513-complete",
        "A complete frame of 513 segments (512 empty).",
        &["segments"],
        &frame(PUSH_POST, &many),
        "malformed",
        "tooManySegments",
    );
    r.invalid(
        "too-many-segments-2-pow-32",
        "Segment count field 0xffffffff (2^32 segments).",
        &["header", "segments"],
        &header(PUSH_POST, u32::MAX, &[], false),
        "malformed",
        "tooManySegments",
    );
    r.invalid(
        "empty-first-segment",
        "One segment of zero words: no root pointer.",
        &["segments"],
        &frame(PUSH_POST, &[&[]]),
        "malformed",
        "emptyMessage",
    );
    r.invalid(
        "empty-first-segment-then-data",
        "Two segments, the first empty: the root pointer must be the first word of segment 0.",
        &["segments"],
        &frame(PUSH_POST, &[&[], &[0]]),
        "malformed",
        "emptyMessage",
    );
    r.invalid(
        "body-missing",
        "The table declares 2 words; no body follows.",
        &["truncated"],
        &header(PUSH_POST, 0, &[2], true),
        "malformed",
        "truncated",
    );
    let mut short = single(PUSH_POST, &[sp(0, 1, 0), 5]);
    short.truncate(short.len() - 8);
    r.invalid(
        "body-short-one-word",
        "The table declares 2 words; 1 is present.",
        &["truncated"],
        &short,
        "malformed",
        "truncated",
    );
    let mut mid = single(PUSH_POST, &[sp(0, 1, 0), 5]);
    mid.truncate(mid.len() - 3);
    r.invalid(
        "body-cut-mid-word",
        "The stream ends 3 bytes before the end of the last word.",
        &["truncated"],
        &mid,
        "malformed",
        "truncated",
    );
    let mut short_seg = frame(PUSH_POST, &[&[fp(0, false, 1)], &[sp(0, 1, 0), 42]]);
    short_seg.truncate(short_seg.len() - 8);
    r.invalid(
        "second-segment-short",
        "Two segments; the second is one word shorter than declared.",
        &["truncated", "segments"],
        &short_seg,
        "malformed",
        "truncated",
    );
    let mut trailing = single(PUSH_POST, &[0]);
    trailing.push(0);
    r.invalid(
        "trailing-byte",
        "A valid frame followed by one byte: each stream carries exactly one frame per direction.",
        &["trailing"],
        &trailing,
        "malformed",
        "trailingBytes",
    );
    let mut trailing_word = single(PUSH_POST, &[sp(0, 1, 0), 5]);
    trailing_word.extend_from_slice(&[0; 8]);
    r.invalid(
        "trailing-word",
        "A valid frame followed by 8 zero bytes (a segment one word longer than declared is not the same frame).",
        &["trailing"],
        &trailing_word,
        "malformed",
        "trailingBytes",
    );
    let mut two = single(PUSH_POST, &[0]);
    two.extend_from_slice(&single(PUSH_POST, &[0]));
    r.invalid(
        "two-frames",
        "Two complete frames on one stream: a second message needs a new stream.",
        &["trailing"],
        &two,
        "malformed",
        "trailingBytes",
    );
}

fn size_records(r: &mut Records) {
    let mut over = vec![lp(0, 2, 511 * 8)];
    over.resize(512, 0x6262_6262_6262_6262);
    r.invalid(
        "over-cap-complete",
        "BootstrapRequest (cap 4 KiB) of 4104 bytes (8-byte table + 512 words), body included.",
        &["size-cap"],
        &single(0x03, &over),
        "tooLarge",
        "tooLarge",
    );
    r.invalid(
        "over-cap-partial-table",
        "FileRequest (cap 4 KiB), 3 segments declared, the first of 1000 words; the rest of the table never arrives. The cap is already exceeded by the sizes seen.",
        &["size-cap", "header"],
        &header(0x30, 2, &[1000], false),
        "tooLarge",
        "tooLarge",
    );
    r.invalid(
        "over-cap-u32-overflow",
        "PushPost with two segments of 0xffffffff words each: the total overflows 32 bits and must still be judged too large.",
        &["size-cap", "header"],
        &header(PUSH_POST, 1, &[u32::MAX, u32::MAX], true),
        "tooLarge",
        "tooLarge",
    );
    for code in MessageCode::ALL {
        let byte = code.as_u8();
        let cap = code.max_frame_bytes();
        let at_cap_words = (cap - 8) / 8;
        let name = code.name().to_lowercase();
        r.invalid(
            &format!("over-cap-{byte:02x}-{name}"),
            &format!(
                "{} (cap {cap} bytes): the table declares one segment of {} words, {} bytes with the 8-byte table. Only the header is sent: the cap is judged before the body.",
                code.name(),
                at_cap_words + 1,
                cap + 8
            ),
            &["size-cap", "header"],
            &header(byte, 0, &[(at_cap_words + 1) as u32], true),
            "tooLarge",
            "tooLarge",
        );
        r.invalid(
            &format!("at-cap-body-missing-{byte:02x}-{name}"),
            &format!(
                "{} (cap {cap} bytes): the table declares exactly {cap} bytes ({at_cap_words} words), which is allowed; the body never arrives, so the frame is truncated, not too large.",
                code.name()
            ),
            &["size-cap", "header", "edge"],
            &header(byte, 0, &[at_cap_words as u32], true),
            "malformed",
            "truncated",
        );
    }
}

/// A structurally malformed message: id, comment, tags, frame.
type StructureCase = (&'static str, &'static str, &'static [&'static str], Vec<u8>);

fn structure_records(r: &mut Records) {
    let cases: Vec<StructureCase> = vec![
        (
            "oob-struct-data",
            "Root struct claims 2 data words; the segment has 1 word after the pointer.",
            &["bounds"],
            single(PUSH_POST, &[sp(0, 2, 0), 1]),
        ),
        (
            "oob-struct-negative-offset",
            "Root struct pointer with offset -2: before the start of the segment.",
            &["bounds"],
            single(PUSH_POST, &[sp(-2, 1, 0)]),
        ),
        (
            "oob-nested-struct-pointer",
            "Root struct's pointer points 5 words past the end of the segment.",
            &["bounds"],
            single(PUSH_POST, &[sp(0, 0, 1), sp(5, 1, 0)]),
        ),
        (
            "oob-byte-list",
            "Root byte list of 100 bytes in a 1-word segment.",
            &["bounds", "list"],
            single(PUSH_POST, &[lp(0, 2, 100)]),
        ),
        (
            "oob-inline-composite",
            "Inline-composite list claiming 10 words (plus tag) in a 3-word segment.",
            &["bounds", "list"],
            single(PUSH_POST, &[lp(0, 7, 10), sp(1, 1, 0), 1]),
        ),
        (
            "inline-composite-overrun",
            "Inline-composite list of word count 1 whose tag says 2 elements of 1 data word.",
            &["list"],
            single(PUSH_POST, &[lp(0, 7, 1), sp(2, 1, 0), 0]),
        ),
        (
            "inline-composite-tag-not-struct",
            "Inline-composite list whose tag word is a list pointer.",
            &["list"],
            single(PUSH_POST, &[lp(0, 7, 1), lp(0, 2, 0), 0]),
        ),
        (
            "oob-pointer-list-element",
            "Root pointer list whose only element points 10 words past the end.",
            &["bounds", "list"],
            single(PUSH_POST, &[lp(0, 6, 1), sp(10, 1, 0)]),
        ),
        (
            "far-pointer-missing-segment",
            "Root far pointer to segment 1 of a one-segment message.",
            &["far-pointer"],
            single(PUSH_POST, &[fp(0, false, 1)]),
        ),
        (
            "far-pointer-pad-out-of-bounds",
            "Root far pointer to word 5 of segment 1, which has 2 words.",
            &["far-pointer", "bounds"],
            frame(PUSH_POST, &[&[fp(5, false, 1)], &[sp(0, 1, 0), 1]]),
        ),
        (
            "double-far-pad-out-of-bounds",
            "Double-far root pointer to the last word of segment 1: the 2-word landing pad runs past the end.",
            &["far-pointer", "bounds"],
            frame(PUSH_POST, &[&[fp(0, true, 1)], &[fp(0, false, 2)], &[7]]),
        ),
        (
            "far-pad-is-far",
            "Single-far root pointer whose landing pad is itself a far pointer.",
            &["far-pointer"],
            frame(PUSH_POST, &[&[fp(0, false, 1)], &[fp(0, false, 1)]]),
        ),
        (
            "capability-pointer",
            "Root is a capability pointer (distsoc carries no capabilities).",
            &["pointer-kind"],
            single(PUSH_POST, &[3]),
        ),
        (
            "unknown-pointer-kind",
            "Root is an 'other' pointer that is not a capability (reserved bits set).",
            &["pointer-kind"],
            single(PUSH_POST, &[7]),
        ),
    ];
    for (id, comment, tags, bytes) in cases {
        let reason = match id {
            "capability-pointer" => "capability",
            _ => "malformed",
        };
        r.invalid(id, comment, tags, &bytes, "malformed", reason);
    }
    let mut invalid_then_more = single(PUSH_POST, &[sp(0, 2, 0), 1]);
    invalid_then_more.extend_from_slice(&[0; 9]);
    r.invalid(
        "invalid-message-then-trailing-bytes",
        "An out-of-bounds root struct followed by 9 more bytes: both are malformed; the message is judged before what follows it.",
        &["bounds", "trailing"],
        &invalid_then_more,
        "malformed",
        "malformed",
    );
    r.invalid(
        "nesting-65-structs",
        "65 nested structs: the 65th is one level beyond the nesting limit of 64.",
        &["nesting"],
        &single(PUSH_POST, &nested_structs(65)),
        "malformed",
        "nestingTooDeep",
    );
    r.invalid(
        "nesting-65-lists",
        "65 nested one-element pointer lists.",
        &["nesting"],
        &single(PUSH_POST, &nested_lists(65)),
        "malformed",
        "nestingTooDeep",
    );
    r.invalid(
        "pointer-cycle",
        "A struct whose pointer points back at itself: caught by the nesting limit.",
        &["nesting"],
        &single(PUSH_POST, &[sp(0, 0, 1), sp(-1, 0, 1)]),
        "malformed",
        "nestingTooDeep",
    );
    r.invalid(
        "traversal-amplification",
        "A root struct whose 64 pointers all point at one 64-word list: 129 words on the wire, about 4,160 words to traverse, over the budget of 4 x 129 + 64 = 580.",
        &["traversal"],
        &single(PUSH_POST, &shared_list(64, 64)),
        "malformed",
        "traversalLimit",
    );
}

/// Generates `frames.json`.
pub(crate) fn generate() -> VectorFile {
    let mut records = Records(Vec::new());
    valid_records(&mut records);
    header_records(&mut records);
    size_records(&mut records);
    structure_records(&mut records);
    VectorFile {
        file: FILE.to_owned(),
        description: DESCRIPTION.to_owned(),
        format_version: FORMAT_VERSION,
        records: records.0,
    }
}
