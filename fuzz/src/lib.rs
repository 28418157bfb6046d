//! Fuzz harnesses for the distsoc decoders.
//!
//! Each harness takes arbitrary bytes and must never panic except on a broken
//! invariant (the `assert!`s below, which are the properties being fuzzed). The
//! same functions are replayed over `fuzz/regressions/<target>/*` by
//! `protocol/tests/fuzz_regressions.rs`, which includes this file, so a crash
//! becomes an ordinary named test by saving its input there.
//!
//! Adding a target: a harness function here (or reuse [`message`]), a file in
//! `fuzz_targets/` calling it, a `[[bin]]` entry in `Cargo.toml`, and a line in
//! the regression test's `harness_for`.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use distsoc_protocol::canonical::{canonical_bytes_of_any, read_canonical, CanonicalError};
use distsoc_protocol::error::{ErrorCode, WireCode};
use distsoc_protocol::frame::{decode_frame, Frame, FrameDecoder, FrameError};

/// Decodes `data` incrementally in chunks of `chunk` bytes, then ends the stream.
fn incremental(data: &[u8], chunk: usize) -> Result<Frame, FrameError> {
    let mut decoder = FrameDecoder::new();
    let mut frame = None;
    for part in data.chunks(chunk.max(1)) {
        if let Some(f) = decoder.push(part)? {
            frame = Some(f);
        }
    }
    decoder.finish()?;
    frame.ok_or(FrameError::Truncated { needed: 0 })
}

/// `data` is everything one stream direction carried.
///
/// Properties: one-shot and incremental decoding (chunk size from the last byte)
/// agree on the verdict; an accepted frame re-validates, re-encodes to a frame
/// that decodes equal, and canonicalizes to bytes that `read_canonical` accepts
/// and that canonicalize to themselves.
pub fn frame_decoder(data: &[u8]) {
    let one_shot = decode_frame(data);
    let chunk = data.last().map_or(1, |&b| usize::from(b) + 1);
    let chunked = incremental(data, chunk);
    match (&one_shot, &chunked) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.reason(), b.reason(), "{a} vs {b}"),
        (a, b) => panic!("one-shot {a:?} vs incremental {b:?}"),
    }
    let Ok(frame) = one_shot else { return };

    frame.validate().expect("a decoded frame re-validates");
    let again = decode_frame(&frame.to_bytes()).expect("a re-encoded frame decodes");
    assert_eq!(again, frame);

    let reader = frame.reader();
    let root: capnp::any_pointer::Reader<'_> = reader.get_root().expect("validated root");
    match canonical_bytes_of_any(root) {
        Ok(canonical) => match read_canonical(&canonical, canonical.len()) {
            Ok(back) => {
                let root: capnp::any_pointer::Reader<'_> = back.get_root().expect("canonical root");
                assert_eq!(
                    canonical_bytes_of_any(root).expect("re-canonicalize"),
                    canonical
                );
            }
            // Lists of void or of zero-sized structs cost no words but are
            // charged one traversal word per element. Canonicalization drops
            // the words around such a list that paid for it in the frame, so
            // the canonical form can exceed its own, smaller, budget.
            Err(CanonicalError::TraversalLimit) => {}
            Err(e) => panic!("canonical bytes do not read back: {e}"),
        },
        // Canonicalizing walks the message a second time (the copy); sharing
        // within the traversal budget, or lists of void / empty structs (which
        // `total_size` does not charge), can exhaust the budget then. That is a
        // peer fault (`malformed`), never `internal`.
        Err(e) => assert_eq!(e.error_code(), ErrorCode::Malformed, "{e}"),
    }
}

/// `data` is the Cap'n Proto body of a frame with code `code` (padded to whole
/// words and framed as one segment), so the fuzzer works on the message
/// structure rather than on the framing.
///
/// Properties: decoding never panics; an accepted message has the frame's
/// code, re-encodes (unless the peer's shared pointers made it larger than the
/// cap) and decodes to an equal value.
pub fn message(code: distsoc_protocol::codes::MessageCode, data: &[u8]) {
    use distsoc_protocol::messages::Message;
    let words = data.len().div_ceil(8);
    let Ok(words32) = u32::try_from(words) else {
        return;
    };
    let mut bytes = Vec::with_capacity(9 + words * 8);
    bytes.push(code.as_u8());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&words32.to_le_bytes());
    bytes.extend_from_slice(data);
    bytes.resize(9 + words * 8, 0);
    let Ok(frame) = decode_frame(&bytes) else {
        return;
    };
    let Ok(message) = Message::from_frame(&frame) else {
        return;
    };
    assert_eq!(message.code(), code);
    let Ok(again) = message.to_frame() else {
        return;
    };
    let frame = decode_frame(&again).expect("a re-encoded message frames");
    let back = Message::from_frame(&frame).expect("a re-encoded message decodes");
    assert_eq!(back, message);
}

macro_rules! message_targets {
    ($($fn_name:ident => $code:ident),* $(,)?) => {
        $(
            /// Fuzz harness for one top-level message type (see [`message`]).
            pub fn $fn_name(data: &[u8]) {
                message(distsoc_protocol::codes::MessageCode::$code, data);
            }
        )*

        /// The harness of a fuzz target by name (`frame_decoder`, `msg_*`).
        pub fn harness(target: &str) -> Option<fn(&[u8])> {
            match target {
                "frame_decoder" => Some(frame_decoder),
                $(stringify!($fn_name) => Some($fn_name),)*
                _ => None,
            }
        }
    };
}

message_targets! {
    msg_hello => Hello,
    msg_routing_diff => RoutingDiff,
    msg_initial_map_sync => InitialMapSync,
    msg_bootstrap_request => BootstrapRequest,
    msg_bootstrap_response => BootstrapResponse,
    msg_hello_response => HelloResponse,
    msg_map_sync_request => MapSyncRequest,
    msg_worm_request => WormRequest,
    msg_worm_query => WormQuery,
    msg_worm_response => WormResponse,
    msg_address_request => AddressRequest,
    msg_address_response => AddressResponse,
    msg_file_request => FileRequest,
    msg_file_response => FileResponse,
    msg_author_update_request => AuthorUpdateRequest,
    msg_author_update_response => AuthorUpdateResponse,
    msg_author_update_push => AuthorUpdatePush,
    msg_post_notification => PostNotification,
    msg_manifest_push => ManifestPush,
    msg_blob_header_diff => BlobHeaderDiff,
    msg_pull_sync_request => PullSyncRequest,
    msg_pull_sync_response => PullSyncResponse,
    msg_push_post => PushPost,
    msg_audience_request => AudienceRequest,
    msg_audience_response => AudienceResponse,
    msg_profile_update => ProfileUpdate,
    msg_delete_record => DeleteRecord,
    msg_visibility_update => VisibilityUpdate,
    msg_vouch_grant => VouchGrant,
    msg_comment => Comment,
    msg_create_channel => CreateChannel,
    msg_create_channel_response => CreateChannelResponse,
    msg_enqueue => Enqueue,
    msg_enqueue_response => EnqueueResponse,
    msg_fetch => Fetch,
    msg_fetch_response => FetchResponse,
    msg_fetch_wait => FetchWait,
    msg_fetch_wait_response => FetchWaitResponse,
    msg_list_channels => ListChannels,
    msg_list_channels_response => ListChannelsResponse,
    msg_ack => Ack,
    msg_error => Error,
}
