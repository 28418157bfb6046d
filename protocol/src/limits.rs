//! Protocol constants: sizes, counts and Cap'n Proto reader limits.
//!
//! These are part of the wire protocol (`schema/README.md` §10): every
//! implementation enforces them *before* allocating for or acting on peer input,
//! and answers a violation with a typed error on that stream (`tooLarge` or
//! `malformed`) while the connection stays usable. Values that also exist as
//! constants in `schema/common.capnp` are pinned against them by a test.
//!
//! Per-message-type frame caps live with the message codes:
//! [`crate::codes::MessageCode::max_frame_bytes`].
//!
//! The schema is the one source of every limit: each field limit is a
//! `$maxBytes`/`$maxItems`/`$maxItemBytes` annotation in `schema/*.capnp`
//! (`distsoc_schema::limits::FIELD_LIMITS`). The constants here and in the
//! message modules keep their names for readability; the test
//! `protocol/tests/limits_annotated.rs` pins each one to its annotation and
//! proves the decoder refuses every annotated field at exactly its limit + 1.

use capnp::message::ReaderOptions;

/// Current protocol version, carried in the `version` field of every request.
pub const PROTOCOL_VERSION: u16 = 2;

/// Lowest protocol version this implementation accepts; a request outside
/// `MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION` is refused with `unsupportedVersion`.
pub const MIN_PROTOCOL_VERSION: u16 = 2;

const _: () = assert!(MIN_PROTOCOL_VERSION <= PROTOCOL_VERSION);

/// The one QUIC ALPN protocol id of distsoc (`schema/README.md` §1).
pub const ALPN: &[u8] = b"distsoc/2";

/// Largest content blob (an attachment, or a post's canonical bytes): 256 KiB.
pub const MAX_BLOB_BYTES: usize = 256 * 1024;

/// Largest mailbox / DM-channel payload accepted by `Enqueue`: 5 MiB.
pub const MAX_MAILBOX_PAYLOAD_BYTES: usize = 5 * 1024 * 1024;

/// Largest canonical `AuthorRecentPosts` record: 256 KiB.
pub const MAX_RECENT_POSTS_BYTES: usize = 256 * 1024;

/// Largest canonical `PostVisibility` (the key envelope of an encrypted post):
/// 256 KiB. Bounds [`MAX_RECIPIENTS`].
pub const MAX_VISIBILITY_BYTES: usize = 256 * 1024;

/// Most recipients (`WrappedKey` entries) of one `PostVisibility`: 2,729.
///
/// A `WrappedKey` carries 80 bytes of payload (32-byte recipient key + 48-byte
/// wrapped CEK), but its Cap'n Proto encoding takes 12 words = 96 bytes: a
/// 2-word struct in the inline-composite list (two pointers), 4 words for the
/// 32-byte `recipient` and 6 words for the 48-byte `wrapped`. The rest of a
/// canonical encrypted `PostVisibility` is 10 words: root pointer (1),
/// `PostVisibility` (1 data word for the union tag + 1 pointer), `EncryptedVisibility`
/// (2 pointers), the 32-byte `ephemeralKey` (4) and the list tag (1). So
/// `10 + 12·n ≤ 32,768` words (256 KiB) gives `n ≤ 2,729`. Counting payload bytes
/// alone (262,144 / 80 = 3,276) overstates what fits; the "~3,000" of the design
/// brief is this order of magnitude.
pub const MAX_RECIPIENTS: usize = (MAX_VISIBILITY_BYTES / WORD_BYTES - 10) / 12;

/// Deepest pointer nesting a receiver follows (the Cap'n Proto default). The
/// root struct is at depth 1; a message with a non-null pointer at depth 65 is
/// `malformed`.
pub const NESTING_LIMIT: u32 = 64;

/// Segment-count limit of a framed message: at most 512 segments (the segment
/// table's first word holds `count - 1`); more is `malformed`.
///
/// Note for implementers: the stock Cap'n Proto stream readers (C++
/// `readMessage`, capnp-rust `serialize::read_message`) refuse 512 or more
/// segments, one fewer than this limit. Encoders never need more than a few
/// segments; a conforming sender should stay at or below 511.
pub const MAX_SEGMENTS: usize = 512;

/// Traversal budget of a Cap'n Proto reader, as a multiple of the message size.
///
/// The traversal limit in words is `TRAVERSAL_FACTOR × message words +`
/// [`TRAVERSAL_SLACK_WORDS`]. A well-formed message has no shared or overlapping
/// objects, so one complete walk of its tree (the validation every frame gets at
/// the edge, `total_size`) reads each word at most once, and a decoder that turns
/// the reader into domain types reads most pointers once and a few of them a
/// couple of times. Four times the message size leaves room for that, and no
/// more: a hostile message whose pointers all point at the same large list (an
/// amplification attack: small on the wire, huge when traversed) is refused with
/// `malformed` as soon as any one reader of it has done four times the work its
/// size justifies, so the CPU spent per received byte stays bounded.
pub const TRAVERSAL_FACTOR: usize = 4;

/// Constant part of the traversal budget, in words: lets tiny messages (a null
/// root, a far-pointer landing pad) be read even though their size in words is
/// close to zero.
pub const TRAVERSAL_SLACK_WORDS: usize = 64;

/// Longest `FetchWait` long-poll an anchor holds, in milliseconds.
pub const MAX_FETCH_WAIT_MS: u32 = 60_000;

/// Most peers a `BootstrapResponse` returns.
pub const BOOTSTRAP_MAX_PEERS: usize = 200;

/// Mailbox requests accepted per second, per identity and per IP address;
/// above it requests are refused with `rateLimited`.
pub const RATE_LIMIT_PER_SECOND: u32 = 50;

/// Bytes in a Cap'n Proto word.
pub const WORD_BYTES: usize = 8;

/// Reader options for a message of `message_words` words (all segments, segment
/// table excluded): nesting limit [`NESTING_LIMIT`] and traversal limit
/// `TRAVERSAL_FACTOR × message_words + TRAVERSAL_SLACK_WORDS` (saturating).
///
/// Every `capnp::message::Reader` over peer input must be built with these
/// options, one fresh reader per consumer: the traversal budget is spent as the
/// reader is used.
pub fn reader_options(message_words: usize) -> ReaderOptions {
    let traversal = message_words
        .saturating_mul(TRAVERSAL_FACTOR)
        .saturating_add(TRAVERSAL_SLACK_WORDS);
    let mut options = ReaderOptions::new();
    options
        .nesting_limit(NESTING_LIMIT as i32)
        .traversal_limit_in_words(Some(traversal));
    options
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn max_recipients_is_computed_from_the_encoding() {
        assert_eq!(MAX_RECIPIENTS, 2729);
        let words = |n: usize| 10 + 12 * n;
        assert!(words(MAX_RECIPIENTS) * WORD_BYTES <= MAX_VISIBILITY_BYTES);
        assert!(words(MAX_RECIPIENTS + 1) * WORD_BYTES > MAX_VISIBILITY_BYTES);
    }

    #[test]
    fn reader_options_scale_with_size() {
        let o = reader_options(0);
        assert_eq!(o.nesting_limit, 64);
        assert_eq!(o.traversal_limit_in_words, Some(TRAVERSAL_SLACK_WORDS));
        let o = reader_options(1000);
        assert_eq!(o.traversal_limit_in_words, Some(4064));
        let o = reader_options(usize::MAX);
        assert_eq!(o.traversal_limit_in_words, Some(usize::MAX));
    }

    #[test]
    fn constants_match_schema() {
        use distsoc_schema::common_capnp as c;
        assert_eq!(PROTOCOL_VERSION, c::PROTOCOL_VERSION);
        assert_eq!(MIN_PROTOCOL_VERSION, c::MIN_PROTOCOL_VERSION);
        assert_eq!(ALPN, c::ALPN.as_bytes());
        assert_eq!(MAX_BLOB_BYTES, c::MAX_BLOB_BYTES as usize);
        assert_eq!(
            MAX_MAILBOX_PAYLOAD_BYTES,
            c::MAX_MAILBOX_PAYLOAD_BYTES as usize
        );
        assert_eq!(MAX_RECENT_POSTS_BYTES, c::MAX_RECENT_POSTS_BYTES as usize);
        assert_eq!(NESTING_LIMIT, c::NESTING_LIMIT);
        assert_eq!(MAX_SEGMENTS, c::MAX_SEGMENTS as usize);
        assert_eq!(BOOTSTRAP_MAX_PEERS, usize::from(c::BOOTSTRAP_MAX_PEERS));
        assert_eq!(MAX_FETCH_WAIT_MS, c::MAX_FETCH_WAIT_MS);
    }

    #[test]
    fn alpn_matches_version() {
        assert_eq!(ALPN, format!("distsoc/{PROTOCOL_VERSION}").as_bytes());
    }
}
