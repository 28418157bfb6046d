//! Offline checks of `frames.json`: a frame reader of its own (code byte,
//! segment table, the code table and caps of `schema/README.md` §2), one
//! bounded walk, and the cross-check with `distsoc_protocol::frame`.

use capnp::message::{ReaderOptions, ReaderSegments, SegmentArray};
use capnp::Word;

use super::{eq_val, exp, expected_error, ih, mismatch, sx, ux, Check};
use crate::vectors::Record;

// ---------------------------------------------------------------------------
// frames.json (schema/README.md §2)

/// Most segments a message may have.
const MAX_SEGMENTS: u64 = crate::suite::wire::MAX_SEGMENTS;
/// Pointer nesting limit (root = depth 1).
const NESTING_LIMIT: i32 = crate::suite::wire::NESTING_LIMIT;

/// A frame accepted by [`judge_frame`].
#[derive(Debug)]
struct FrameOk {
    code: u8,
    name: &'static str,
    segments: u64,
    words: u64,
}

/// A frame refused by [`judge_frame`]: wire error, finer reason, detail.
#[derive(Debug)]
pub(super) struct FrameRefusal {
    pub(super) error: &'static str,
    pub(super) reason: &'static str,
    pub(super) detail: String,
}

fn refuse(error: &'static str, reason: &'static str, detail: impl Into<String>) -> FrameRefusal {
    FrameRefusal {
        error,
        reason,
        detail: detail.into(),
    }
}

fn u32_le(b: &[u8]) -> u64 {
    u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reader options of the specified walk: nesting 64, traversal 4 × words + 64.
pub(super) fn walk_options(words: u64) -> ReaderOptions {
    let mut options = ReaderOptions::new();
    options
        .nesting_limit(NESTING_LIMIT)
        .traversal_limit_in_words(Some(
            usize::try_from(words.saturating_mul(4).saturating_add(64)).unwrap_or(usize::MAX),
        ));
    options
}

/// The wire error class of a `capnp` reading error.
fn capnp_refusal(e: &capnp::Error) -> FrameRefusal {
    use capnp::ErrorKind as K;
    let reason = match e.kind {
        K::MessageIsTooDeeplyNested
        | K::MessageIsTooDeeplyNestedOrContainsCycles
        | K::NestingLimitExceeded => "nestingTooDeep",
        K::ReadLimitExceeded => "traversalLimit",
        _ => "malformed",
    };
    refuse("malformed", reason, e.to_string())
}

/// Copies `bytes` into word-aligned storage (the `capnp` reader needs it).
pub(super) fn to_words(bytes: &[u8]) -> Vec<Word> {
    let mut words = Word::allocate_zeroed_vec(bytes.len() / 8);
    Word::words_to_bytes_mut(&mut words).copy_from_slice(&bytes[..bytes.len() / 8 * 8]);
    words
}

/// One walk of the whole message: bounds, far pointers, pointer kinds,
/// nesting, traversal. Capabilities are refused.
pub(super) fn walk_message<S: ReaderSegments>(segments: S, words: u64) -> Result<(), FrameRefusal> {
    let reader = capnp::message::Reader::new(segments, walk_options(words));
    let root: capnp::any_pointer::Reader<'_> = reader.get_root().map_err(|e| capnp_refusal(&e))?;
    let size = root.target_size().map_err(|e| capnp_refusal(&e))?;
    if size.cap_count != 0 {
        return Err(refuse("malformed", "capability", "capability pointer"));
    }
    Ok(())
}

/// Judges everything one stream direction carried, by the checks of
/// `schema/README.md` §2 in their order.
fn judge_frame(bytes: &[u8]) -> Result<FrameOk, FrameRefusal> {
    let Some(&code) = bytes.first() else {
        return Err(refuse("malformed", "truncated", "empty stream"));
    };
    // The message-code table is the schema's (`$frameCap` annotations).
    let Some((name, cap)) =
        distsoc_schema::limits::message_code(code).map(|c| (c.name, u64::from(c.frame_cap)))
    else {
        return Err(refuse(
            "unknownMessage",
            "unknownCode",
            format!("code 0x{code:02x}"),
        ));
    };
    let rest = &bytes[1..];
    if rest.len() < 4 {
        return Err(refuse("malformed", "truncated", "segment count missing"));
    }
    let count = u32_le(&rest[..4]) + 1;
    if count > MAX_SEGMENTS {
        return Err(refuse(
            "malformed",
            "tooManySegments",
            format!("{count} segments"),
        ));
    }
    let table_len = 8 * (count / 2 + 1);
    let mut sizes = Vec::new();
    let mut words = 0u64;
    for i in 0..count {
        let at = usize::try_from(4 + 4 * i).unwrap_or(usize::MAX);
        let Some(b) = rest.get(at..at.saturating_add(4)) else {
            break;
        };
        let size = u32_le(b);
        sizes.push(size);
        words += size;
        if table_len + 8 * words > cap {
            return Err(refuse(
                "tooLarge",
                "tooLarge",
                format!(
                    "{name} declares at least {} bytes (cap {cap})",
                    table_len + 8 * words
                ),
            ));
        }
    }
    if (sizes.len() as u64) < count || (rest.len() as u64) < table_len {
        return Err(refuse("malformed", "truncated", "segment table incomplete"));
    }
    if sizes.first() == Some(&0) {
        return Err(refuse(
            "malformed",
            "emptyMessage",
            "first segment is empty",
        ));
    }
    let frame_len = table_len + 8 * words;
    if (rest.len() as u64) < frame_len {
        return Err(refuse(
            "malformed",
            "truncated",
            format!("{} of {frame_len} bytes", rest.len()),
        ));
    }
    // Both bounded by rest.len() now.
    let (table_len, frame_len) = (table_len as usize, frame_len as usize);
    let storage = to_words(&rest[table_len..frame_len]);
    let all = Word::words_to_bytes(&storage);
    let mut slices: Vec<&[u8]> = Vec::with_capacity(sizes.len());
    let mut at = 0usize;
    for size in &sizes {
        let len = *size as usize * 8;
        slices.push(&all[at..at + len]);
        at += len;
    }
    walk_message(SegmentArray::new(&slices), words)?;
    if rest.len() > frame_len {
        return Err(refuse(
            "malformed",
            "trailingBytes",
            format!("{} byte(s) after the frame", rest.len() - frame_len),
        ));
    }
    Ok(FrameOk {
        code,
        name,
        segments: count,
        words,
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
        (Err(r), None) => {
            return Err(mismatch(
                "frame",
                "accepted",
                format!("rejected with `{}` ({}: {})", r.error, r.reason, r.detail),
            ))
        }
        (Ok(_), Some(want)) => {
            return Err(mismatch(
                "frame",
                format!("rejected with `{want}`"),
                "accepted",
            ))
        }
        (Err(r), Some(want)) => {
            if r.error != want {
                return Err(mismatch(
                    "frame",
                    format!("rejected with `{want}`"),
                    format!("rejected with `{}` ({}: {})", r.error, r.reason, r.detail),
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
