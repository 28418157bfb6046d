//! FRM: framing (schema/README.md §2) and the one-frame-per-stream rules
//! (§1). Hostile frames are written word by word; most are sent under the
//! code of the target's probe request (a code it serves), so that only the
//! framing decides the verdict.

use std::time::Duration;

use super::{accepted, def, refuse, served};
use crate::suite::ctx::{
    expect_code, expect_error, reply_frame, req, CaseError, Ctx, Outcome, Probe,
};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;
use crate::suite::wire::{self, cap_of, code, fp, frame, header, lp, single, sp};

const UNKNOWN_CODE: &str =
    "Receivers must, before allocating the body: reject an unknown code with `unknownMessage`";
const SEGMENTS: &str = "Receivers must, before allocating the body: [...] reject more than 512 segments with `malformed`";
const CAP: &str = "Receivers must, before allocating the body: [...] compute the total size from the segment table and reject it with `tooLarge` if it exceeds the code's cap (table below)";
const WALK: &str = "before acting on a message: read it with a nesting limit of 64 and a traversal limit of 4 × (message words) + 64 words; walk the whole message once (full recognition before processing) so that out-of-bounds pointers, far-pointer tricks, nesting and traversal amplification are rejected with `malformed`.";
const FRAME: &str = "One frame = 1 byte message code + one Cap'n Proto message in standard stream framing: code:u8 | segment_count-1:u32le | size_of_segment_0_in_words:u32le | ... | padding to 8 bytes | segments. [...] malformed: The frame or message could not be parsed: bad framing (wire.capnp ErrorCode)";
const ONE_FRAME: &str =
    "Each stream carries exactly one frame per direction: bytes after the frame are `malformed`.";
const PUSHES: &str = "Pushes are sent on unidirectional streams and not answered; a push sent on a *bidirectional* stream is answered with `Ack` or `Error` (conformance testers rely on this).";
const RESPONSE_AS_REQUEST: &str = "unknownMessage: The message code is unknown to the receiver or not served in its role (wire.capnp ErrorCode); a response code is never a request (schema/README.md §2, kind column).";
const ROOT: &str = "The frame or message could not be parsed: bad framing, out-of-bounds or far pointers, nesting over 64, traversal limit, wrong id lengths, missing required fields, trailing bytes (wire.capnp ErrorCode.malformed).";

const MALFORMED: &[&str] = &["malformed"];
const TOO_LARGE: &[&str] = &["tooLarge"];
const UNKNOWN: &[&str] = &["unknownMessage"];

/// A pointer to add to the probe's root, into the appended tail.
#[derive(Clone, Copy)]
enum To {
    Struct(usize, u16, u16),
    List(usize, u8, u32),
    Raw(u64),
}

/// The probe's message with extra pointer fields on its root (unknown to
/// the schema) pointing into `tail`, which is appended after everything.
fn graft(p: &Probe, tail: &[u64], ptrs: &[To]) -> Vec<u8> {
    let Some(words) = wire::single_segment_words(&p.frame) else {
        return p.frame.clone();
    };
    let Some((d, known, rest)) = wire::split_root(&words) else {
        return p.frame.clone();
    };
    let mut wide = wire::widen_root(&d, &known, &rest, &[], ptrs.len());
    let tail_start = wide.len();
    for (j, to) in ptrs.iter().enumerate() {
        let idx = 1 + d.len() + known.len() + j;
        let off = (tail_start - (idx + 1)) as i32;
        wide[idx] = match *to {
            To::Struct(at, data, n) => sp(off + at as i32, data, n),
            To::List(at, size, count) => lp(off + at as i32, size, count),
            To::Raw(w) => w,
        };
    }
    wide.extend_from_slice(tail);
    single(p.code, &wide)
}

/// The probe's words padded with zero words to `words` words in total.
fn padded(p: &Probe, words: usize) -> Vec<u8> {
    let mut w = wire::single_segment_words(&p.frame).unwrap_or_default();
    w.resize(words.max(w.len()), 0);
    single(p.code, &w)
}

/// What a hostile frame must get.
#[derive(Clone, Copy)]
enum Expect {
    Error(&'static [&'static str]),
    Served,
}

type Make = fn(&Probe) -> Vec<u8>;

async fn framing(ctx: &mut Ctx, make: Make, expect: Expect) -> Result<Outcome, CaseError> {
    let p = ctx.probe();
    let bytes = make(&p);
    match expect {
        Expect::Error(allowed) => refuse(ctx, &bytes, allowed).await,
        Expect::Served => served(ctx, &bytes, p.response, p.name).await,
    }
}

fn nested_structs(k: usize) -> Vec<u64> {
    let mut w = vec![sp(0, 0, 1); k];
    if let Some(last) = w.last_mut() {
        *last = sp(-1, 0, 0);
    }
    w
}

fn nested_lists(k: usize) -> Vec<u64> {
    let mut w = vec![lp(0, 6, 1); k];
    w.push(0);
    w
}

fn segs_512(p: &Probe, n: usize) -> Vec<u8> {
    let w = wire::single_segment_words(&p.frame).unwrap_or_default();
    let mut segs: Vec<&[u64]> = vec![&w];
    segs.resize(n, &[]);
    frame(p.code, &segs)
}

/// The probe in two segments (root far pointer to segment 1) with
/// `de ad be ef` in the segment table's padding.
fn nonzero_padding(p: &Probe) -> Vec<u8> {
    let w = wire::single_segment_words(&p.frame).unwrap_or_default();
    let mut f = frame(p.code, &[&[fp(0, false, 1)], &w]);
    f[13..17].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    f
}

/// Codes with the role and capability that serve them, for the per-code
/// caps (each code's name and cap come from the schema's table).
#[rustfmt::skip]
const CODES: &[(&str, u8, Role, Option<&str>)] = &[
    ("FRM-2-101", code::BOOTSTRAP_REQUEST, Role::Anchor, Some("bootstrap/1")),
    ("FRM-2-102", code::ADDRESS_REQUEST, Role::Anchor, Some("address-cache/1")),
    ("FRM-2-103", code::FILE_REQUEST, Role::Node, Some("files/1")),
    ("FRM-2-104", code::AUTHOR_UPDATE_REQUEST, Role::Node, None),
    ("FRM-2-105", code::PULL_SYNC_REQUEST, Role::Any, Some("pull-sync/1")),
    ("FRM-2-106", code::CREATE_CHANNEL, Role::Anchor, Some("mailbox/1")),
    ("FRM-2-107", code::ENQUEUE, Role::Anchor, Some("mailbox/1")),
    ("FRM-2-108", code::FETCH, Role::Anchor, Some("mailbox/1")),
    ("FRM-2-109", code::FETCH_WAIT, Role::Anchor, Some("mailbox/1")),
    ("FRM-2-110", code::LIST_CHANNELS, Role::Anchor, Some("mailbox/1")),
    ("FRM-2-111", code::POST_NOTIFICATION, Role::Any, None),
    ("FRM-2-112", code::PUSH_POST, Role::Any, None),
    ("FRM-2-113", code::PROFILE_UPDATE, Role::Any, None),
    ("FRM-2-114", code::AUTHOR_UPDATE_PUSH, Role::Node, None),
    ("FRM-2-115", code::DELETE_RECORD, Role::Node, None),
    ("FRM-2-116", code::VISIBILITY_UPDATE, Role::Node, None),
    ("FRM-2-117", code::AUDIENCE_REQUEST, Role::Node, None),
    ("FRM-2-118", code::AUDIENCE_RESPONSE, Role::Node, None),
];

fn over_cap_cases() -> Vec<Case> {
    CODES
        .iter()
        .map(|&(id, c, role, cap)| {
            let limit = cap_of(c).unwrap_or(4096);
            let name = wire::label_of(c);
            def(id, Level::Must, Kind::Limit, role, cap, format!("{name} (0x{c:02x}) declaring one word over its {limit}-byte cap: Error(tooLarge) from the header alone"), "schema/README.md §2", CAP)
                .run(move |ctx| {
                    Box::pin(async move {
                        let words = (limit - 8) / 8 + 1;
                        refuse(ctx, &header(c, 0, &[words as u32], true), TOO_LARGE).await
                    })
                })
        })
        .collect()
}

/// A frame of exactly the code's cap (padding words after the message).
fn at_cap(bytes: &[u8], c: u8) -> Vec<u8> {
    let limit = cap_of(c).unwrap_or(4096);
    let mut w = wire::single_segment_words(bytes).unwrap_or_default();
    w.resize((limit - 8) / 8, 0);
    single(c, &w)
}

fn at_cap_cases() -> Vec<Case> {
    let mk = |id: &'static str,
              name: &'static str,
              c: u8,
              role: Role,
              cap: Option<&'static str>,
              build: fn(&mut Ctx) -> Vec<u8>| {
        let limit = cap_of(c).unwrap_or(4096);
        def(
            id,
            Level::Must,
            Kind::Limit,
            role,
            cap,
            format!("{name} (0x{c:02x}) of exactly its {limit}-byte cap is not tooLarge"),
            "schema/README.md §2",
            CAP,
        )
        .run(move |ctx| {
            Box::pin(async move {
                let bytes = at_cap(&build(ctx), c);
                accepted(ctx, &bytes, &format!("a {limit}-byte {name}")).await
            })
        })
    };
    vec![
        mk(
            "FRM-2-201",
            "ListChannels",
            code::LIST_CHANNELS,
            Role::Anchor,
            Some("mailbox/1"),
            |_| req::list_channels(2),
        ),
        mk(
            "FRM-2-202",
            "Fetch",
            code::FETCH,
            Role::Anchor,
            Some("mailbox/1"),
            |_| req::fetch(2, None, 0),
        ),
        mk(
            "FRM-2-203",
            "BootstrapRequest",
            code::BOOTSTRAP_REQUEST,
            Role::Anchor,
            Some("bootstrap/1"),
            |_| req::bootstrap(2, 5),
        ),
        mk(
            "FRM-2-204",
            "PullSyncRequest",
            code::PULL_SYNC_REQUEST,
            Role::Any,
            Some("pull-sync/1"),
            |_| req::pull_sync(2, &[], 1),
        ),
        mk(
            "FRM-2-205",
            "FileRequest",
            code::FILE_REQUEST,
            Role::Node,
            Some("files/1"),
            |ctx| req::file_post(2, &ctx.random32()),
        ),
        mk(
            "FRM-2-206",
            "AuthorUpdateRequest",
            code::AUTHOR_UPDATE_REQUEST,
            Role::Node,
            None,
            |ctx| req::author_update(2, &ctx.random32(), 0),
        ),
        mk(
            "FRM-2-207",
            "AddressRequest",
            code::ADDRESS_REQUEST,
            Role::Anchor,
            Some("address-cache/1"),
            |ctx| req::address(2, &[ctx.random32()]),
        ),
        mk(
            "FRM-2-208",
            "CreateChannel",
            code::CREATE_CHANNEL,
            Role::Anchor,
            Some("mailbox/1"),
            |ctx| req::create_channel(2, &ctx.random_node_id()),
        ),
        mk(
            "FRM-2-209",
            "PostNotification (push)",
            code::POST_NOTIFICATION,
            Role::Any,
            None,
            |ctx| {
                let (a, p) = (ctx.random32(), ctx.random32());
                req::post_notification(2, &a, &p)
            },
        ),
    ]
}

/// The FRM cases.
#[allow(clippy::too_many_lines)]
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Limit, Negative, Positive};
    use Level::{May, Must, Should};
    let table: Vec<(
        &'static str,
        Level,
        Kind,
        &'static str,
        &'static str,
        Make,
        Expect,
    )> = vec![
        (
            "FRM-2-001",
            Must,
            Negative,
            "empty stream (no code byte)",
            FRAME,
            |_| Vec::new(),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-002",
            Must,
            Negative,
            "only the code byte",
            FRAME,
            |p| vec![p.code],
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-003",
            Must,
            Negative,
            "truncated segment count (3 of 4 bytes)",
            FRAME,
            |p| vec![p.code, 0, 0, 0],
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-004",
            Must,
            Negative,
            "truncated segment table (2 segments, 1 size)",
            FRAME,
            |p| header(p.code, 1, &[1], false),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-005",
            Must,
            Negative,
            "segment table padding missing (4 segments)",
            FRAME,
            |p| header(p.code, 3, &[1, 0, 0, 0], false),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-006",
            Must,
            Negative,
            "513 segments declared (header only)",
            SEGMENTS,
            |p| header(p.code, 512, &[], false),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-007",
            Must,
            Negative,
            "2^32 segments declared",
            SEGMENTS,
            |p| header(p.code, u32::MAX, &[], false),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-008",
            Must,
            Negative,
            "a complete frame of 513 segments",
            SEGMENTS,
            |p| segs_512(p, 513),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-009",
            Should,
            Limit,
            "exactly 512 segments (511 empty) is served",
            SEGMENTS,
            |p| segs_512(p, 512),
            Expect::Served,
        ),
        (
            "FRM-2-010",
            Must,
            Negative,
            "empty segment 0 (no root pointer)",
            FRAME,
            |p| frame(p.code, &[&[]]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-011",
            Must,
            Negative,
            "empty segment 0 followed by a non-empty segment",
            FRAME,
            |p| frame(p.code, &[&[], &[0]]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-012",
            Must,
            Negative,
            "body missing (table declares 2 words)",
            FRAME,
            |p| header(p.code, 0, &[2], true),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-013",
            Must,
            Negative,
            "body one word short",
            FRAME,
            |p| {
                let mut f = p.frame.clone();
                f.truncate(f.len() - 8);
                f
            },
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-014",
            Must,
            Negative,
            "body cut mid-word",
            FRAME,
            |p| {
                let mut f = p.frame.clone();
                f.truncate(f.len() - 3);
                f
            },
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-015",
            Must,
            Negative,
            "second segment shorter than declared",
            FRAME,
            |p| {
                let mut f = frame(p.code, &[&[fp(0, false, 1)], &[sp(0, 1, 0), 42]]);
                f.truncate(f.len() - 8);
                f
            },
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-016",
            Must,
            Negative,
            "one byte after a valid frame",
            ONE_FRAME,
            |p| {
                let mut f = p.frame.clone();
                f.push(0);
                f
            },
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-017",
            Must,
            Negative,
            "eight zero bytes after a valid frame",
            ONE_FRAME,
            |p| {
                let mut f = p.frame.clone();
                f.extend_from_slice(&[0; 8]);
                f
            },
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-018",
            Must,
            Negative,
            "two complete frames on one stream",
            ONE_FRAME,
            |p| {
                let mut f = p.frame.clone();
                f.extend_from_slice(&p.frame);
                f
            },
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-019",
            Must,
            Negative,
            "root struct data past the end of the segment",
            WALK,
            |p| single(p.code, &[sp(0, 2, 0), 2]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-020",
            Must,
            Negative,
            "root struct pointer with a negative offset before the segment",
            WALK,
            |p| single(p.code, &[sp(-2, 1, 0)]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-021",
            Must,
            Negative,
            "out-of-bounds pointer in a field unknown to the schema",
            WALK,
            |p| graft(p, &[], &[To::Struct(5, 1, 0)]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-022",
            Must,
            Negative,
            "root byte list of 100 bytes in a 1-word segment",
            WALK,
            |p| single(p.code, &[lp(0, 2, 100)]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-023",
            Must,
            Negative,
            "inline-composite list past the end of the segment",
            WALK,
            |p| single(p.code, &[lp(0, 7, 10), sp(1, 1, 0), 1]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-024",
            Must,
            Negative,
            "inline-composite tag claims more elements than its words",
            WALK,
            |p| single(p.code, &[lp(0, 7, 1), sp(2, 1, 0), 0]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-025",
            Must,
            Negative,
            "inline-composite tag is not a struct pointer",
            WALK,
            |p| single(p.code, &[lp(0, 7, 1), lp(0, 2, 0), 0]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-026",
            Must,
            Negative,
            "far pointer to a segment that does not exist",
            WALK,
            |p| single(p.code, &[fp(0, false, 1)]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-027",
            Must,
            Negative,
            "far pointer landing pad out of bounds",
            WALK,
            |p| frame(p.code, &[&[fp(5, false, 1)], &[sp(0, 1, 0), 1]]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-028",
            Must,
            Negative,
            "double-far landing pad runs past the segment",
            WALK,
            |p| frame(p.code, &[&[fp(0, true, 1)], &[fp(0, false, 2)], &[7]]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-029",
            Must,
            Negative,
            "single-far landing pad that is itself a far pointer",
            WALK,
            |p| frame(p.code, &[&[fp(0, false, 1)], &[fp(0, false, 1)]]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-030",
            Must,
            Negative,
            "root is a capability pointer",
            WALK,
            |p| single(p.code, &[3]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-031",
            Must,
            Negative,
            "capability pointer in a field unknown to the schema",
            WALK,
            |p| graft(p, &[], &[To::Raw(3)]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-032",
            Must,
            Negative,
            "root is an 'other' pointer of unknown kind",
            WALK,
            |p| single(p.code, &[7]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-033",
            Must,
            Negative,
            "65 nested structs (through an unknown field)",
            WALK,
            |p| graft(p, &nested_structs(63), &[To::Struct(0, 0, 1)]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-034",
            Must,
            Negative,
            "65 levels of nested lists (through an unknown field)",
            WALK,
            |p| graft(p, &nested_lists(63), &[To::List(0, 6, 1)]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-035",
            Must,
            Limit,
            "exactly 64 levels of nested structs is served",
            WALK,
            |p| graft(p, &nested_structs(62), &[To::Struct(0, 0, 1)]),
            Expect::Served,
        ),
        (
            "FRM-2-036",
            Must,
            Negative,
            "a pointer cycle (struct pointing at itself)",
            WALK,
            |p| graft(p, &[sp(-1, 0, 1)], &[To::Struct(0, 0, 1)]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-037",
            Must,
            Negative,
            "traversal amplification: 64 pointers to one 64-word list",
            WALK,
            |p| graft(p, &[0x6161_6161_6161_6161; 64], &[To::List(0, 2, 512); 64]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-038",
            Must,
            Limit,
            "two pointers to one 64-word list (within the traversal budget) is served",
            WALK,
            |p| graft(p, &[0x6161_6161_6161_6161; 64], &[To::List(0, 2, 512); 2]),
            Expect::Served,
        ),
        (
            "FRM-2-039",
            Must,
            Negative,
            "root is a list where a struct is expected",
            ROOT,
            |p| single(p.code, &[lp(0, 5, 2), 2, 2]),
            Expect::Error(MALFORMED),
        ),
        (
            "FRM-2-041",
            Must,
            Negative,
            "unknown code 0x07 with a valid message",
            UNKNOWN_CODE,
            |p| {
                let mut f = p.frame.clone();
                f[0] = 0x07;
                f
            },
            Expect::Error(UNKNOWN),
        ),
        (
            "FRM-2-042",
            Must,
            Negative,
            "unknown code 0x80 alone: the code is judged first",
            UNKNOWN_CODE,
            |_| vec![0x80],
            Expect::Error(UNKNOWN),
        ),
        (
            "FRM-2-044",
            Must,
            Negative,
            "the probe's response code sent as a request",
            RESPONSE_AS_REQUEST,
            |p| {
                let mut f = p.frame.clone();
                f[0] = p.response;
                f
            },
            Expect::Error(&["unknownMessage", "malformed"]),
        ),
        (
            "FRM-2-045",
            Must,
            Negative,
            "HelloResponse (0x05) sent as a request",
            RESPONSE_AS_REQUEST,
            |_| single(code::HELLO_RESPONSE, &[sp(0, 1, 0), 0x0002_0002_0002]),
            Expect::Error(&["unknownMessage", "malformed"]),
        ),
        (
            "FRM-2-046",
            Must,
            Negative,
            "Ack (0x7E) sent as a request",
            RESPONSE_AS_REQUEST,
            |p| {
                single(
                    code::ACK,
                    &[
                        sp(0, 1, 0),
                        0x0000_0000_0000_0002 | (u64::from(p.code) << 16),
                    ],
                )
            },
            Expect::Error(&["unknownMessage", "malformed"]),
        ),
        (
            "FRM-2-047",
            Must,
            Negative,
            "Error (0x7F) sent as a request",
            RESPONSE_AS_REQUEST,
            |_| single(code::ERROR, &[sp(0, 2, 1), 0x0002_0002, 0, 0]),
            Expect::Error(&["unknownMessage", "malformed"]),
        ),
        (
            "FRM-2-048",
            Must,
            Limit,
            "the probe code one word over its cap, body included",
            CAP,
            |p| {
                let cap = cap_of(p.code).unwrap_or(4096);
                padded(p, (cap - 8) / 8 + 1)
            },
            Expect::Error(TOO_LARGE),
        ),
        (
            "FRM-2-049",
            Must,
            Negative,
            "over cap judged from a partial table (3 segments, the first 1 M words)",
            CAP,
            |p| header(p.code, 2, &[1 << 20], false),
            Expect::Error(TOO_LARGE),
        ),
        (
            "FRM-2-050",
            Must,
            Negative,
            "segment sizes whose sum overflows 32 bits",
            CAP,
            |p| header(p.code, 1, &[u32::MAX, u32::MAX], true),
            Expect::Error(TOO_LARGE),
        ),
        (
            "FRM-2-053",
            May,
            Limit,
            "non-zero bytes in the segment table padding are ignored",
            FRAME,
            nonzero_padding,
            Expect::Served,
        ),
        (
            "FRM-2-054",
            Should,
            Limit,
            "unreferenced words after the message are accepted",
            FRAME,
            |p| {
                let n = wire::single_segment_words(&p.frame).map_or(1, |w| w.len());
                padded(p, n + 4)
            },
            Expect::Served,
        ),
    ];
    let mut v: Vec<Case> = table
        .into_iter()
        .map(|(id, level, kind, title, requirement, make, expect)| {
            def(
                id,
                level,
                kind,
                Role::Any,
                None,
                title,
                if requirement == ONE_FRAME || requirement == PUSHES {
                    "schema/README.md §1"
                } else if requirement == ROOT || requirement == RESPONSE_AS_REQUEST {
                    "wire.capnp ErrorCode"
                } else {
                    "schema/README.md §2"
                },
                requirement,
            )
            .run(move |ctx| Box::pin(framing(ctx, make, expect)))
        })
        .collect();

    v.push(def("FRM-2-040", Must, Negative, Role::Anchor, Some("mailbox/1"), "CreateChannel whose root is a Hello (wrong struct: a list of roles where `peer` Data is expected)", "wire.capnp ErrorCode", ROOT)
        .run(|ctx| Box::pin(async move {
            let mut f = crate::suite::ctx::HelloSpec { roles: vec![0, 1], ..Default::default() }.frame();
            f[0] = code::CREATE_CHANNEL;
            refuse(ctx, &f, MALFORMED).await
        })));
    v.push(
        def(
            "FRM-2-043",
            Must,
            Negative,
            Role::Any,
            None,
            "every unassigned code in a sample of 11 gets Error(unknownMessage)",
            "schema/README.md §2",
            UNKNOWN_CODE,
        )
        .run(|ctx| {
            Box::pin(async move {
                let p = ctx.probe();
                let s = ctx.connect().await?;
                let mut bad = Vec::new();
                for c in [
                    0x0f_u8, 0x13, 0x22, 0x38, 0x45, 0x55, 0x6a, 0x7d, 0x80, 0xfe, 0xff,
                ] {
                    let mut f = p.frame.clone();
                    f[0] = c;
                    let reply = s.exchange(&f).await;
                    if let Err(e) = expect_error(&reply, UNKNOWN) {
                        bad.push(format!("0x{c:02x}: {e}"));
                    }
                }
                let outcome = Outcome::check(
                    bad.is_empty(),
                    "Error(unknownMessage) for each",
                    if bad.is_empty() {
                        "Error(unknownMessage) for each".to_string()
                    } else {
                        bad.join("; ")
                    },
                );
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })
        }),
    );
    v.push(
        def(
            "FRM-2-051",
            Must,
            Negative,
            Role::Any,
            None,
            "an over-cap header is refused before the body arrives (stream left open)",
            "schema/README.md §2",
            CAP,
        )
        .run(|ctx| {
            Box::pin(async move {
                let p = ctx.probe();
                let cap = cap_of(p.code).unwrap_or(4096);
                let s = ctx.connect().await?;
                let (mut send, mut recv) = s.conn.open_bi().await?;
                crate::suite::client::write_all_on(
                    &mut send,
                    &header(p.code, 0, &[((cap - 8) / 8 + 1) as u32], true),
                    false,
                    s.conn.number(),
                )
                .await
                .map_err(CaseError::Setup)?;
                let reply = crate::suite::client::read_reply_on(
                    &mut recv,
                    1 << 20,
                    s.timeouts().reply,
                    s.conn.number(),
                )
                .await;
                let _ = send.reset(0u32.into());
                let outcome = match expect_error(&reply, TOO_LARGE) {
                    Ok(e) => Outcome::pass(
                        "Error(tooLarge) without waiting for the body",
                        e.to_string(),
                    ),
                    Err(e) => Outcome::fail("Error(tooLarge) without waiting for the body", e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })
        }),
    );
    v.push(
        def(
            "FRM-1-060",
            Must,
            Positive,
            Role::Any,
            None,
            "a push on a bidirectional stream is answered with Ack or Error",
            "schema/README.md §1",
            PUSHES,
        )
        .run(|ctx| {
            Box::pin(async move {
                let (a, p) = (ctx.random32(), ctx.random32());
                let s = ctx.connect().await?;
                let reply = s.request(&req::post_notification(2, &a, &p)).await;
                let outcome = match reply_frame(&reply) {
                    Ok(f)
                        if f.code == code::ACK || (f.code == code::ERROR && f.error().is_ok()) =>
                    {
                        Outcome::pass("Ack or Error", reply.to_string())
                    }
                    _ => Outcome::fail("Ack or Error", reply.to_string()),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })
        }),
    );
    v.push(def("FRM-1-061", Should, Positive, Role::Any, None, "a valid PostNotification on a bidirectional stream is acknowledged (Ack.requestCode 0x35)", "wire.capnp Ack", "Ack: Positive reply to a push message [...] that was sent on a bidirectional stream: the message was parsed, validated and accepted (stored or knowingly ignored). requestCode: The message code of the push being acknowledged.")
        .run(|ctx| Box::pin(async move {
            let (a, p) = (ctx.random32(), ctx.random32());
            let s = ctx.connect().await?;
            let reply = s.request(&req::post_notification(2, &a, &p)).await;
            Ok(match expect_code(&reply, code::ACK) {
                Ok(f) => {
                    let r = f.reader();
                    let ack: Result<distsoc_schema::wire_capnp::ack::Reader<'_>, _> = r.get_root();
                    match ack {
                        Ok(ack) => Outcome::check(ack.get_request_code() == code::POST_NOTIFICATION, "Ack with requestCode 0x35", format!("Ack with requestCode 0x{:02x}", ack.get_request_code())),
                        Err(e) => Outcome::fail("Ack with requestCode 0x35", e.to_string()),
                    }
                }
                Err(e) => Outcome::fail("Ack with requestCode 0x35", e),
            })
        })));
    v.push(
        def(
            "FRM-1-062",
            Must,
            Positive,
            Role::Any,
            None,
            "a push on a unidirectional stream gets no reply; the connection stays usable",
            "schema/README.md §1",
            PUSHES,
        )
        .run(|ctx| {
            Box::pin(async move {
                let (a, p) = (ctx.random32(), ctx.random32());
                let s = ctx.connect().await?;
                s.conn.send_uni(&req::post_notification(2, &a, &p)).await?;
                let silence = s.timeouts().silence;
                let uni = tokio::time::timeout(silence, s.conn.quinn().accept_uni()).await;
                let outcome = match uni {
                    Ok(Ok(_)) => Outcome::fail(
                        "no reply stream",
                        "the target opened a unidirectional stream",
                    ),
                    _ => Outcome::pass("no reply", format!("nothing within {silence:?}")),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })
        }),
    );
    v.push(def("FRM-1-063", Must, Negative, Role::Any, None, "a malformed frame on a unidirectional stream does not close the connection", "schema/README.md §1", "An error on one stream never closes the connection: malformed, oversize and unknown messages get an `Error` on their stream and the connection stays usable.")
        .run(|ctx| Box::pin(async move {
            let s = ctx.connect().await?;
            s.conn.send_uni(&single(code::POST_NOTIFICATION, &[sp(0, 3, 0), 2])).await?;
            s.conn.send_uni(&[0x80]).await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let closed = s.conn.close_reason();
            let outcome = Outcome::check(closed.is_none(), "connection open", closed.map_or_else(|| "connection open".to_string(), |c| c.to_string()));
            Ok(outcome.and_usable(ctx.still_usable(&s).await))
        })));
    v.push(def("FRM-1-064", Must, Negative, Role::Any, None, "a request on a unidirectional stream is not answered; the connection stays usable", "schema/README.md §1", "Every request opens a new bidirectional stream [...] Pushes are sent on unidirectional streams and not answered")
        .run(|ctx| Box::pin(async move {
            let p = ctx.probe();
            let s = ctx.connect().await?;
            s.conn.send_uni(&p.frame).await?;
            let silence = s.timeouts().silence;
            let uni = tokio::time::timeout(silence, s.conn.quinn().accept_uni()).await;
            let outcome = match uni {
                Ok(Ok(_)) => Outcome::fail("no reply", "the target opened a unidirectional stream"),
                _ => Outcome::pass("no reply", format!("nothing within {silence:?}")),
            };
            Ok(outcome.and_usable(ctx.still_usable(&s).await))
        })));
    v.extend(over_cap_cases());
    v.extend(at_cap_cases());
    v.sort_by(|a, b| a.info.id.cmp(&b.info.id));
    v
}
