//! Checks `conformance/vectors/frames.json` against the frame decoder.
//!
//! The JSON is read on its own terms (no dependency on the generator): every
//! record is decoded in one call and incrementally in several chunkings, and
//! must give the expected code / segment count / words, or the expected wire
//! error and reason.
// Reads its vector files: the sans-IO lint (protocol/clippy.toml) does not apply to tests.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use distsoc_protocol::error::WireCode;
use distsoc_protocol::frame::{decode_frame, Frame, FrameDecoder, FrameError};
use serde_json::Value;

/// Records in the committed file; update deliberately when vectors are added.
const RECORD_COUNT: usize = 196;

fn load() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors/frames.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Feeds `bytes` to a decoder in chunks of `chunk` bytes, then ends the stream.
fn incremental(bytes: &[u8], chunk: usize) -> Result<Frame, FrameError> {
    let mut decoder = FrameDecoder::new();
    let mut frame = None;
    for part in bytes.chunks(chunk) {
        if let Some(f) = decoder.push(part)? {
            frame = Some(f);
        }
    }
    decoder.finish()?;
    Ok(frame.expect("finish() succeeded, so a frame was returned"))
}

#[test]
fn every_frame_vector_holds() {
    let file = load();
    assert_eq!(file["file"], "frames.json");
    assert_eq!(file["format_version"], 1);
    let records = file["records"].as_array().unwrap();
    assert_eq!(records.len(), RECORD_COUNT);

    let mut valid = 0;
    for record in records {
        let id = record["id"].as_str().unwrap();
        let bytes = hex::decode(record["input"]["frame"].as_str().unwrap()).unwrap();
        let expected = &record["expected"];
        let one_shot = decode_frame(&bytes);
        if record["valid"].as_bool().unwrap() {
            valid += 1;
            let frame = one_shot.unwrap_or_else(|e| panic!("{id}: refused: {e}"));
            assert_eq!(
                u64::from(frame.code().as_u8()),
                expected["code"].as_u64().unwrap(),
                "{id}"
            );
            assert_eq!(
                frame.code().name(),
                expected["name"].as_str().unwrap(),
                "{id}"
            );
            assert_eq!(
                frame.segment_count() as u64,
                expected["segments"].as_u64().unwrap(),
                "{id}"
            );
            assert_eq!(
                frame.words() as u64,
                expected["words"].as_u64().unwrap(),
                "{id}"
            );
            // Re-encoding is the identity, except for ignored table padding.
            if !record["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "lenient")
            {
                assert_eq!(frame.to_bytes(), bytes, "{id}");
            }
            for chunk in [1, 7, 4096] {
                assert_eq!(
                    incremental(&bytes, chunk).as_ref(),
                    Ok(&frame),
                    "{id} chunk {chunk}"
                );
            }
        } else {
            let error = match one_shot {
                Ok(_) => panic!("{id}: accepted"),
                Err(e) => e,
            };
            assert_eq!(
                error.error_code().name(),
                expected["error"].as_str().unwrap(),
                "{id}: {error}"
            );
            assert_eq!(
                error.reason(),
                expected["reason"].as_str().unwrap(),
                "{id}: {error}"
            );
            for chunk in [1, 7, 4096] {
                let e = incremental(&bytes, chunk).expect_err(id);
                assert_eq!(e.reason(), error.reason(), "{id} chunk {chunk}: {e}");
            }
        }
    }
    assert!(valid > 0 && valid < RECORD_COUNT);
}
