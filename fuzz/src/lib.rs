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
        Err(e) => assert_eq!(e.error_code(), "malformed", "{e}"),
    }
}
