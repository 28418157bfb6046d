//! The suite's own view of the wire: the schema's codes and limits, readers
//! over the normative generated schema (`distsoc-schema`) for a frame read
//! by [`super::frame`], builders for well-formed requests, and word-level
//! helpers for hostile bytes.
//!
//! Nothing here uses `distsoc-protocol`'s frame decoder or validated message
//! types: a reply is judged by the suite's frame reader and the schema's
//! readers alone.

use capnp::Word;
use distsoc_schema::{common_capnp, limits, wire_capnp};

use super::frame::RawFrame;

/// The spec's nesting limit (schema/README.md §2, `common.capnp`
/// `nestingLimit`).
pub const NESTING_LIMIT: i32 = common_capnp::NESTING_LIMIT as i32;
/// The spec's maximum segment count (schema/README.md §2, `common.capnp`
/// `maxSegments`).
pub const MAX_SEGMENTS: u64 = common_capnp::MAX_SEGMENTS as u64;
/// Protocol version the suite speaks (`common.capnp` `protocolVersion`).
pub const PROTOCOL_VERSION: u16 = common_capnp::PROTOCOL_VERSION;

/// Message codes used by the suite: the `code*` constants of
/// `schema/wire.capnp`, read from the normative generated schema (never from
/// `distsoc-protocol`).
pub mod code {
    use distsoc_schema::wire_capnp as w;
    /// Hello.
    pub const HELLO: u8 = w::CODE_HELLO;
    /// RoutingDiff (push).
    pub const ROUTING_DIFF: u8 = w::CODE_ROUTING_DIFF;
    /// InitialMapSync (the largest cap, 16 MiB).
    pub const INITIAL_MAP_SYNC: u8 = w::CODE_INITIAL_MAP_SYNC;
    /// BootstrapRequest.
    pub const BOOTSTRAP_REQUEST: u8 = w::CODE_BOOTSTRAP_REQUEST;
    /// BootstrapResponse.
    pub const BOOTSTRAP_RESPONSE: u8 = w::CODE_BOOTSTRAP_RESPONSE;
    /// HelloResponse.
    pub const HELLO_RESPONSE: u8 = w::CODE_HELLO_RESPONSE;
    /// MapSyncRequest (push).
    pub const MAP_SYNC_REQUEST: u8 = w::CODE_MAP_SYNC_REQUEST;
    /// WormRequest.
    pub const WORM_REQUEST: u8 = w::CODE_WORM_REQUEST;
    /// WormQuery.
    pub const WORM_QUERY: u8 = w::CODE_WORM_QUERY;
    /// WormResponse.
    pub const WORM_RESPONSE: u8 = w::CODE_WORM_RESPONSE;
    /// AddressRequest.
    pub const ADDRESS_REQUEST: u8 = w::CODE_ADDRESS_REQUEST;
    /// AddressResponse.
    pub const ADDRESS_RESPONSE: u8 = w::CODE_ADDRESS_RESPONSE;
    /// FileRequest.
    pub const FILE_REQUEST: u8 = w::CODE_FILE_REQUEST;
    /// FileResponse.
    pub const FILE_RESPONSE: u8 = w::CODE_FILE_RESPONSE;
    /// AuthorUpdateRequest.
    pub const AUTHOR_UPDATE_REQUEST: u8 = w::CODE_AUTHOR_UPDATE_REQUEST;
    /// AuthorUpdateResponse.
    pub const AUTHOR_UPDATE_RESPONSE: u8 = w::CODE_AUTHOR_UPDATE_RESPONSE;
    /// AuthorUpdatePush (push).
    pub const AUTHOR_UPDATE_PUSH: u8 = w::CODE_AUTHOR_UPDATE_PUSH;
    /// PostNotification (push).
    pub const POST_NOTIFICATION: u8 = w::CODE_POST_NOTIFICATION;
    /// PullSyncRequest.
    pub const PULL_SYNC_REQUEST: u8 = w::CODE_PULL_SYNC_REQUEST;
    /// PullSyncResponse.
    pub const PULL_SYNC_RESPONSE: u8 = w::CODE_PULL_SYNC_RESPONSE;
    /// PushPost (push).
    pub const PUSH_POST: u8 = w::CODE_PUSH_POST;
    /// AudienceRequest (push).
    pub const AUDIENCE_REQUEST: u8 = w::CODE_AUDIENCE_REQUEST;
    /// AudienceResponse (push).
    pub const AUDIENCE_RESPONSE: u8 = w::CODE_AUDIENCE_RESPONSE;
    /// ProfileUpdate (push).
    pub const PROFILE_UPDATE: u8 = w::CODE_PROFILE_UPDATE;
    /// DeleteRecord (push).
    pub const DELETE_RECORD: u8 = w::CODE_DELETE_RECORD;
    /// VisibilityUpdate (push).
    pub const VISIBILITY_UPDATE: u8 = w::CODE_VISIBILITY_UPDATE;
    /// CreateChannel.
    pub const CREATE_CHANNEL: u8 = w::CODE_CREATE_CHANNEL;
    /// CreateChannelResponse.
    pub const CREATE_CHANNEL_RESPONSE: u8 = w::CODE_CREATE_CHANNEL_RESPONSE;
    /// Enqueue.
    pub const ENQUEUE: u8 = w::CODE_ENQUEUE;
    /// EnqueueResponse.
    pub const ENQUEUE_RESPONSE: u8 = w::CODE_ENQUEUE_RESPONSE;
    /// Fetch.
    pub const FETCH: u8 = w::CODE_FETCH;
    /// FetchResponse.
    pub const FETCH_RESPONSE: u8 = w::CODE_FETCH_RESPONSE;
    /// FetchWait.
    pub const FETCH_WAIT: u8 = w::CODE_FETCH_WAIT;
    /// FetchWaitResponse.
    pub const FETCH_WAIT_RESPONSE: u8 = w::CODE_FETCH_WAIT_RESPONSE;
    /// ListChannels.
    pub const LIST_CHANNELS: u8 = w::CODE_LIST_CHANNELS;
    /// ListChannelsResponse.
    pub const LIST_CHANNELS_RESPONSE: u8 = w::CODE_LIST_CHANNELS_RESPONSE;
    /// Ack.
    pub const ACK: u8 = w::CODE_ACK;
    /// Error.
    pub const ERROR: u8 = w::CODE_ERROR;
}

/// The per-code frame cap of schema/README.md §2 (table + segments, code byte
/// excluded): the code's `$frameCap` annotation in `schema/wire.capnp`;
/// `None` for an unassigned code.
#[must_use]
pub fn cap_of(code: u8) -> Option<usize> {
    limits::message_code(code).map(|c| c.frame_cap as usize)
}

/// The message's name as the suite prints it: `PushPost (push)` for a push,
/// `Hello` otherwise; `0x..` for an unassigned code.
#[must_use]
pub fn label_of(code: u8) -> String {
    match limits::message_code(code) {
        Some(c) if c.kind == limits::MessageKind::Push => format!("{} (push)", c.name),
        Some(c) => c.name.to_owned(),
        None => format!("0x{code:02x}"),
    }
}

/// The names of `ErrorCode` (wire.capnp), by ordinal.
pub const ERROR_CODES: [&str; 15] = [
    "unspecified",
    "unsupportedVersion",
    "malformed",
    "tooLarge",
    "badSignature",
    "idMismatch",
    "stale",
    "unauthorized",
    "notFound",
    "rateLimited",
    "expired",
    "internal",
    "unknownMessage",
    "unavailable",
    "nonCanonical",
];

/// The name of an `ErrorCode` ordinal, or `unknown(N)`.
#[must_use]
pub fn error_name(ordinal: u16) -> String {
    ERROR_CODES
        .get(usize::from(ordinal))
        .map_or_else(|| format!("unknown({ordinal})"), |s| (*s).to_string())
}

impl RawFrame {
    /// The `version` field (ordinal 0, first 16 bits of the root struct).
    pub fn version(&self) -> Result<u16, String> {
        let reader = self.reader();
        let root: wire_capnp::ack::Reader<'_> = reader.get_root().map_err(|e| e.to_string())?;
        Ok(root.get_version())
    }

    /// Decodes the root as an `Error` (code 0x7F).
    pub fn error(&self) -> Result<ErrorReply, String> {
        if self.code != code::ERROR {
            return Err(format!("code 0x{:02x} is not Error", self.code));
        }
        let reader = self.reader();
        let e: wire_capnp::error::Reader<'_> = reader.get_root().map_err(|e| e.to_string())?;
        let code = match e.get_code() {
            Ok(c) => c as u16,
            Err(capnp::NotInSchema(n)) => n,
        };
        let message = match e.get_message() {
            Ok(t) => t.as_bytes().len(),
            Err(err) => return Err(format!("Error.message: {err}")),
        };
        Ok(ErrorReply {
            version: e.get_version(),
            code,
            message_len: message,
            message: e
                .get_message()
                .ok()
                .and_then(|t| t.to_str().ok())
                .unwrap_or("")
                .chars()
                .take(200)
                .collect(),
            request_code: e.get_request_code(),
            retry_after_ms: e.get_retry_after_ms(),
            min_version: e.get_min_version(),
            max_version: e.get_max_version(),
        })
    }
}

/// An `Error` reply, read with the schema reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReply {
    /// `version`.
    pub version: u16,
    /// `code` ordinal (possibly not in the schema).
    pub code: u16,
    /// `message`, at most 200 characters kept.
    pub message: String,
    /// Length of `message` in bytes as received.
    pub message_len: usize,
    /// `requestCode`.
    pub request_code: u8,
    /// `retryAfterMs`.
    pub retry_after_ms: u32,
    /// `minVersion`.
    pub min_version: u16,
    /// `maxVersion`.
    pub max_version: u16,
}

impl ErrorReply {
    /// The code's enumerant name.
    #[must_use]
    pub fn name(&self) -> String {
        error_name(self.code)
    }

    /// Whether the code is the enumerant called `name`.
    #[must_use]
    pub fn is(&self, name: &str) -> bool {
        ERROR_CODES.get(usize::from(self.code)) == Some(&name)
    }
}

impl std::fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Error({}, requestCode 0x{:02x}, \"{}\")",
            self.name(),
            self.request_code,
            self.message
        )
    }
}

// ---- building frames -------------------------------------------------------

/// A frame from a capnp builder: code byte + standard stream framing.
#[must_use]
pub fn frame_of<A: capnp::message::Allocator>(
    code: u8,
    msg: &capnp::message::Builder<A>,
) -> Vec<u8> {
    let mut out = vec![code];
    out.extend_from_slice(&capnp::serialize::write_message_to_words(msg));
    out
}

/// Builds a one-root message with `f` and frames it under `code`.
pub fn build<T, F>(code: u8, f: F) -> Vec<u8>
where
    T: capnp::traits::Owned,
    F: FnOnce(T::Builder<'_>),
{
    let mut msg = capnp::message::Builder::new_default();
    f(msg.init_root::<T::Builder<'_>>());
    frame_of(code, &msg)
}

/// The single segment of a frame built by [`build`] (in words), for
/// hand-made variations. `None` if the frame has several segments.
#[must_use]
pub fn single_segment_words(frame: &[u8]) -> Option<Vec<u64>> {
    let parsed = RawFrame::parse(frame).ok()?;
    if parsed.segments.len() != 1 {
        return None;
    }
    let bytes = Word::words_to_bytes(&parsed.segments[0]);
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
    )
}

// ---- Cap'n Proto words by hand --------------------------------------------

/// Struct pointer: offset in words from the end of the pointer, data words,
/// pointer count.
#[must_use]
pub fn sp(offset: i32, data: u16, ptrs: u16) -> u64 {
    u64::from((offset as u32) << 2) | (u64::from(data) << 32) | (u64::from(ptrs) << 48)
}

/// List pointer: offset, element size tag (0 void, 1 bit, 2 byte, 3 two
/// bytes, 4 four bytes, 5 eight bytes, 6 pointer, 7 inline composite),
/// element count (word count for inline composite).
#[must_use]
pub fn lp(offset: i32, size: u8, count: u32) -> u64 {
    (u64::from((offset as u32) << 2) | 1) | (u64::from(size) << 32) | (u64::from(count) << 35)
}

/// Far pointer: landing pad position in words, double-far flag, segment id.
#[must_use]
pub fn fp(pad: u32, double: bool, segment: u32) -> u64 {
    (u64::from(pad) << 3) | (u64::from(double) << 2) | 2 | (u64::from(segment) << 32)
}

/// A frame header: code, `count_minus_one`, the given sizes and, if `pad`
/// and the table is complete with an even count, the 4 padding bytes.
#[must_use]
pub fn header(code: u8, count_minus_one: u32, sizes: &[u32], pad: bool) -> Vec<u8> {
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

/// A complete frame: code, segment table, segments.
#[must_use]
pub fn frame(code: u8, segments: &[&[u64]]) -> Vec<u8> {
    let sizes: Vec<u32> = segments.iter().map(|s| s.len() as u32).collect();
    let count = u32::try_from(segments.len().max(1) - 1).unwrap_or(u32::MAX);
    let mut out = header(code, count, &sizes, true);
    for segment in segments {
        for word in *segment {
            out.extend_from_slice(&word.to_le_bytes());
        }
    }
    out
}

/// A single-segment frame.
#[must_use]
pub fn single(code: u8, words: &[u64]) -> Vec<u8> {
    frame(code, &[words])
}

/// Splits a single-segment message whose root is a struct into its data
/// words and pointer words (pointers are relative to their own position).
/// Returns `(data, pointers, rest)` where `rest` is everything after the
/// root struct's body. Only for messages built by [`build`] (root struct
/// right after the root pointer).
#[must_use]
pub fn split_root(words: &[u64]) -> Option<(Vec<u64>, Vec<u64>, Vec<u64>)> {
    let root = *words.first()?;
    if root & 3 != 0 || (root as u32 as i32) >> 2 != 0 {
        return None;
    }
    let data = ((root >> 32) & 0xffff) as usize;
    let ptrs = (root >> 48) as usize;
    let d = words.get(1..1 + data)?.to_vec();
    let p = words.get(1 + data..1 + data + ptrs)?.to_vec();
    let rest = words.get(1 + data + ptrs..)?.to_vec();
    Some((d, p, rest))
}

/// Rebuilds a root struct from [`split_root`]'s parts with `extra_data`
/// more data words and `extra_ptrs` more pointer words inserted after the
/// known ones; existing pointers are re-based so they keep their targets,
/// and the extra pointers (already relative to their final position
/// *before* `rest`) are given as absolute word indexes into the returned
/// vector by the caller through `extra`.
#[must_use]
pub fn widen_root(
    data: &[u64],
    ptrs: &[u64],
    rest: &[u64],
    extra_data: &[u64],
    extra_ptrs: usize,
) -> Vec<u64> {
    let new_data = data.len() + extra_data.len();
    let new_ptrs = ptrs.len() + extra_ptrs;
    let mut out = vec![sp(0, new_data as u16, new_ptrs as u16)];
    out.extend_from_slice(data);
    out.extend_from_slice(extra_data);
    // Known pointers move forward by extra_data words, and their targets (in
    // `rest`) move forward by extra_data + extra_ptrs: offsets grow by extra_ptrs.
    for &p in ptrs {
        if p == 0 || p & 3 == 2 || p & 3 == 3 {
            out.push(p);
            continue;
        }
        let offset = ((p as u32) as i32) >> 2;
        let moved = offset + extra_ptrs as i32;
        out.push((p & 0xffff_ffff_0000_0003) | u64::from((moved as u32) << 2));
    }
    out.extend(std::iter::repeat_n(0, extra_ptrs));
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use distsoc_schema::mailbox_capnp;

    #[test]
    fn build_parse_roundtrip() {
        let f = build::<mailbox_capnp::list_channels::Owned, _>(code::LIST_CHANNELS, |mut b| {
            b.set_version(2)
        });
        let raw = RawFrame::parse(&f).unwrap();
        assert_eq!(raw.code, code::LIST_CHANNELS);
        raw.validate().unwrap();
        assert_eq!(raw.version().unwrap(), 2);
        let mut t = f.clone();
        t.push(0);
        assert!(RawFrame::parse(&t).is_err());
        assert!(RawFrame::parse(&f[..f.len() - 1]).is_err());
    }

    #[test]
    fn widen_keeps_pointers() {
        let f = build::<mailbox_capnp::create_channel::Owned, _>(code::CREATE_CHANNEL, |mut b| {
            b.set_version(2);
            b.set_peer(&[7; 32]);
        });
        let words = single_segment_words(&f).unwrap();
        let (d, p, rest) = split_root(&words).unwrap();
        let wide = widen_root(&d, &p, &rest, &[0xdead, 0xbeef], 3);
        let raw = RawFrame::parse(&single(code::CREATE_CHANNEL, &wide)).unwrap();
        raw.validate().unwrap();
        let r = raw.reader();
        let root: mailbox_capnp::create_channel::Reader<'_> = r.get_root().unwrap();
        assert_eq!(root.get_version(), 2);
        assert_eq!(root.get_peer().unwrap(), &[7; 32]);
    }
}
