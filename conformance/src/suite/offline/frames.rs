//! Offline checks of `frames.json`: the crate's frame reader
//! ([`crate::suite::frame`]: code byte, segment table, the code table and
//! caps of `schema/README.md` §2), one bounded walk, the end of the stream,
//! and the cross-check with `distsoc_protocol::frame`.

use super::{eq_val, exp, expected_error, ih, mismatch, sx, ux, Check};
use crate::suite::frame::{self, FrameRefusal};
use crate::vectors::Record;

// ---------------------------------------------------------------------------
// frames.json (schema/README.md §2)

/// A frame accepted by [`judge_frame`].
#[derive(Debug)]
struct FrameOk {
    code: u8,
    name: &'static str,
    segments: u64,
    words: u64,
}

/// Judges everything one stream direction carried, by the checks of
/// `schema/README.md` §2 in their order: the reader's ([`frame::read`]),
/// then the walk, then trailing bytes.
fn judge_frame(bytes: &[u8]) -> Result<FrameOk, FrameRefusal> {
    let read = frame::read(bytes)?;
    read.walk()?;
    frame::end_of_stream(bytes, &read)?;
    Ok(FrameOk {
        code: read.code,
        name: read.name,
        segments: read.segments.len() as u64,
        words: read.words() as u64,
    })
}

pub(super) fn check_frame(rec: &Record) -> Check {
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
        (Err(r), None) => return Err(mismatch("frame", "accepted", format!("rejected with {r}"))),
        (Ok(_), Some(want)) => {
            return Err(mismatch(
                "frame",
                format!("rejected with `{want}`"),
                "accepted",
            ))
        }
        (Err(r), Some(want)) => {
            let reason = sx(exp(rec, "reason")?, "expected.reason")?;
            if r.error != want || r.reason != reason {
                return Err(mismatch(
                    "frame",
                    format!("rejected with `{want}` ({reason})"),
                    format!("rejected with {r}"),
                ));
            }
        }
    }
    // Cross-check: distsoc-protocol's decoder (our node's and anchor's) must
    // agree with the vector, including the finer reason it documents.
    use distsoc_protocol::error::WireCode;
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
