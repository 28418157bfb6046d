//! The conformance crate's one frame reader (schema/README.md §2), checked
//! independently of `distsoc-protocol`: the wire suite reads every reply
//! with it ([`RawFrame::parse`]) and offline mode judges `frames.json` with
//! it (`offline::frames`).
//!
//! [`read`] takes the code byte, the segment table and the segments, in the
//! order of checks of §2: code known (the schema's message-code table,
//! `distsoc_schema::limits::message_code`) → segment count ≤ 512 → declared
//! size within the code's cap (judged from the table as it is read) → table
//! complete → first segment non-empty → body complete. What follows is the
//! caller's: one bounded walk ([`RawFrame::walk`]) and the end of the stream
//! ([`end_of_stream`]), in that order for the offline judge.

use std::fmt;

use capnp::message::{ReaderOptions, ReaderSegments};
use capnp::Word;

use super::wire::{MAX_SEGMENTS, NESTING_LIMIT};

/// One frame as read by [`read`]: the code, its name in the schema's table
/// and the segments (8-byte aligned words). The schema readers over it are
/// in [`super::wire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame {
    /// The message code byte.
    pub code: u8,
    /// The code's name in the schema's message-code table (`Hello`, `Ack`, …).
    pub name: &'static str,
    /// The segments, in words.
    pub segments: Vec<Vec<Word>>,
}

/// Segments of a [`RawFrame`] as the capnp reader wants them.
#[derive(Debug)]
pub struct Segments<'a>(&'a [Vec<Word>]);

impl ReaderSegments for Segments<'_> {
    fn get_segment(&self, idx: u32) -> Option<&[u8]> {
        self.0
            .get(idx as usize)
            .map(|s| Word::words_to_bytes(s.as_slice()))
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// A frame refused by [`read`], [`RawFrame::walk`] or [`end_of_stream`]:
/// the wire `ErrorCode` name, the finer reason `frames.json` documents, and
/// a human detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameRefusal {
    /// `ErrorCode` enumerant name (`malformed`, `tooLarge`, `unknownMessage`).
    pub error: &'static str,
    /// Stable finer reason (`truncated`, `tooManySegments`, `nestingTooDeep`, …).
    pub reason: &'static str,
    /// What exactly was wrong, for reports.
    pub detail: String,
}

impl fmt::Display for FrameRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ({}: {})", self.error, self.reason, self.detail)
    }
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

/// Reads the frame at the start of `bytes` (everything one stream direction
/// carried), by the checks of schema/README.md §2 in their order up to the
/// body; bytes after the frame are left to [`end_of_stream`].
pub fn read(bytes: &[u8]) -> Result<RawFrame, FrameRefusal> {
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
    // Bounded by rest.len() now.
    let mut at = table_len as usize;
    let mut segments = Vec::with_capacity(sizes.len());
    for size in sizes {
        let len = size as usize * 8;
        segments.push(to_words(&rest[at..at + len]));
        at += len;
    }
    Ok(RawFrame {
        code,
        name,
        segments,
    })
}

/// The last check of §2: nothing may follow `frame` (read by [`read`] from
/// the start of `bytes`).
pub fn end_of_stream(bytes: &[u8], frame: &RawFrame) -> Result<(), FrameRefusal> {
    let end = frame.wire_len();
    if bytes.len() > end {
        return Err(refuse(
            "malformed",
            "trailingBytes",
            format!("{} byte(s) after the frame", bytes.len() - end),
        ));
    }
    Ok(())
}

/// Reader options of the specified walk: nesting 64, traversal 4 × words + 64.
#[must_use]
pub fn walk_options(words: u64) -> ReaderOptions {
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

/// Copies `bytes` into word-aligned storage (the `capnp` reader needs it);
/// a partial last word is dropped.
#[must_use]
pub fn to_words(bytes: &[u8]) -> Vec<Word> {
    let mut words = Word::allocate_zeroed_vec(bytes.len() / 8);
    Word::words_to_bytes_mut(&mut words).copy_from_slice(&bytes[..bytes.len() / 8 * 8]);
    words
}

/// One walk of the whole message: bounds, far pointers, pointer kinds,
/// nesting, traversal. Capabilities are refused.
pub fn walk_message<S: ReaderSegments>(segments: S, words: u64) -> Result<(), FrameRefusal> {
    let reader = capnp::message::Reader::new(segments, walk_options(words));
    let root: capnp::any_pointer::Reader<'_> = reader.get_root().map_err(|e| capnp_refusal(&e))?;
    let size = root.target_size().map_err(|e| capnp_refusal(&e))?;
    if size.cap_count != 0 {
        return Err(refuse("malformed", "capability", "capability pointer"));
    }
    Ok(())
}

impl RawFrame {
    /// Reads exactly one frame from `bytes` (the whole content of a stream
    /// direction): [`read`], then [`end_of_stream`]. The message is not
    /// walked ([`RawFrame::validate`] does); the error is the refusal's
    /// display.
    pub fn parse(bytes: &[u8]) -> Result<RawFrame, String> {
        let frame = read(bytes).map_err(|r| r.to_string())?;
        end_of_stream(bytes, &frame).map_err(|r| r.to_string())?;
        Ok(frame)
    }

    /// Total words of all segments.
    #[must_use]
    pub fn words(&self) -> usize {
        self.segments.iter().map(Vec::len).sum()
    }

    /// A capnp reader with the spec's limits ([`walk_options`]).
    #[must_use]
    pub fn reader(&self) -> capnp::message::Reader<Segments<'_>> {
        capnp::message::Reader::new(Segments(&self.segments), walk_options(self.words() as u64))
    }

    /// [`RawFrame::walk`], its refusal as text.
    pub fn validate(&self) -> Result<(), String> {
        self.walk().map_err(|r| r.to_string())
    }

    /// Bytes the frame takes on the wire: code byte, segment table (padded
    /// to a word), segments.
    #[must_use]
    pub fn wire_len(&self) -> usize {
        1 + 8 * (self.segments.len() / 2 + 1) + 8 * self.words()
    }

    /// The specified walk of the whole message ([`walk_message`]).
    pub fn walk(&self) -> Result<(), FrameRefusal> {
        walk_message(Segments(&self.segments), self.words() as u64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::suite::wire::{code, header, single, sp};

    #[test]
    fn checks_run_in_the_order_of_section_2() {
        let reason = |b: &[u8]| read(b).map(|_| ()).unwrap_err().reason;
        // Unknown code before anything else, even an empty table.
        assert_eq!(reason(&[0x0f]), "unknownCode");
        assert_eq!(reason(&[]), "truncated");
        // Too many segments before the (missing) table.
        assert_eq!(
            reason(&header(code::HELLO, 512, &[], false)),
            "tooManySegments"
        );
        // The cap is judged as the table is read, before it is complete.
        assert_eq!(
            reason(&header(code::HELLO, 3, &[u32::MAX], false)),
            "tooLarge"
        );
        assert_eq!(reason(&header(code::HELLO, 1, &[1], false)), "truncated");
        // An empty first segment before the missing body.
        assert_eq!(reason(&header(code::HELLO, 0, &[0], true)), "emptyMessage");
        assert_eq!(reason(&header(code::HELLO, 0, &[1], true)), "truncated");
    }

    #[test]
    fn walk_then_trailing_bytes() {
        let ok = single(code::ACK, &[sp(0, 1, 0), 2]);
        let frame = read(&ok).unwrap();
        assert_eq!(
            (frame.code, frame.name, frame.wire_len()),
            (code::ACK, "Ack", ok.len())
        );
        frame.walk().unwrap();
        end_of_stream(&ok, &frame).unwrap();
        let mut long = ok.clone();
        long.push(0);
        assert_eq!(
            end_of_stream(&long, &read(&long).unwrap())
                .unwrap_err()
                .reason,
            "trailingBytes"
        );
        // A root pointing outside its segment fails the walk.
        let bad = read(&single(code::ACK, &[sp(5, 1, 0)])).unwrap();
        assert_eq!(bad.walk().unwrap_err().error, "malformed");
    }
}
