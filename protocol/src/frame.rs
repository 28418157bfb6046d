//! Wire framing of one stream message (sans-IO).
//!
//! # Format
//!
//! Every QUIC stream carries exactly **one frame in each direction** (`schema/README.md`
//! §1, "Streams"). A frame is:
//!
//! ```text
//! +------+------------------------------------------+---------------------------+
//! | code | segment table                            | segments                  |
//! | u8   | u32 LE: segment count - 1                | segment 0 words,          |
//! |      | u32 LE × count: segment size in words    | segment 1 words, ...      |
//! |      | u32 zero padding if count is even        |                           |
//! +------+------------------------------------------+---------------------------+
//! ```
//!
//! `code` is a [`MessageCode`]; the rest is the standard Cap'n Proto stream
//! encoding (<https://capnproto.org/encoding.html#serialization-over-a-stream>).
//! The segment table is `8 × (count / 2 + 1)` bytes. Its padding is ignored, as by
//! the reference implementations.
//!
//! # Rules a receiver enforces, in this order
//!
//! 1. The code byte is known, else `unknownMessage` ([`FrameError::UnknownCode`]).
//! 2. The segment count is at most [`MAX_SEGMENTS`], else `malformed`
//!    ([`FrameError::TooManySegments`]).
//! 3. The frame size declared by the segment table (table + segments, code byte
//!    excluded) is at most the code's [`MessageCode::max_frame_bytes`], else
//!    `tooLarge` ([`FrameError::TooLarge`]). This is checked as the table arrives,
//!    before any of the body is buffered.
//! 4. Segment 0 is not empty (it holds the root pointer), else `malformed`
//!    ([`FrameError::EmptyMessage`]).
//! 5. The stream holds at least the declared bytes, else `malformed`
//!    ([`FrameError::Truncated`]).
//! 6. The whole message tree is walked once before anything acts on it ("full
//!    recognition before processing"), with the reader limits of
//!    [`reader_options`]: out-of-bounds pointers, bad far pointers, unknown pointer
//!    kinds, capability pointers ([`FrameError::Malformed`],
//!    [`FrameError::Capability`]), nesting deeper than 64
//!    ([`FrameError::NestingTooDeep`]) and traversal amplification
//!    ([`FrameError::TraversalLimit`]) are all `malformed`.
//! 7. Nothing follows the frame on the stream, else `malformed`
//!    ([`FrameError::TrailingBytes`]): a second message needs a new stream.
//!    Checked after 6, so that where a chunk boundary falls never changes the
//!    verdict.
//!
//! Known gap of rule 6 as implemented: capnp's `total_size` walk does not charge
//! the traversal budget for `List(Void)` or lists of zero-sized structs, which
//! can claim up to 2^29 elements in one word. Such a frame passes
//! [`Frame::validate`]; the first typed read of that list (which does charge
//! the element count) fails with [`FrameError::TraversalLimit`], before any
//! element is visited.
//!
//! A frame that passes is a [`Frame`]; its [`Frame::reader`] is the only way to
//! read it. Which root struct a code carries, and its field rules, are checked by
//! the message layer on top.
//!
//! # Decoding
//!
//! [`FrameDecoder`] is incremental: feed it stream chunks with
//! [`FrameDecoder::push`]; it returns the frame once complete, never buffers more
//! than the code's cap plus the header, and says how many more bytes it needs
//! ([`FrameDecoder::needed`]). Call [`FrameDecoder::finish`] at end of stream.
//! [`decode_frame`] decodes a complete stream in one call.

use capnp::message::{Allocator, Builder, Reader, ReaderSegments};
use capnp::{ErrorKind, Word};

use crate::codes::MessageCode;
use crate::error::{ErrorCode, ToWireError, WireCode};
use crate::limits::{reader_options, MAX_SEGMENTS, WORD_BYTES};

/// Length of the message-code prefix in bytes.
pub const CODE_BYTES: usize = 1;

/// Longest possible frame header: the code byte plus the segment table of a
/// message with [`MAX_SEGMENTS`] segments.
pub const MAX_HEADER_BYTES: usize = CODE_BYTES + segment_table_bytes(MAX_SEGMENTS);

/// Size in bytes of the segment table of a message with `segment_count` segments
/// (`segment_count ≥ 1`): `8 × (segment_count / 2 + 1)`.
pub const fn segment_table_bytes(segment_count: usize) -> usize {
    WORD_BYTES * (segment_count / 2 + 1)
}

/// Why a frame was refused. Its [`WireCode`] is the wire error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The code byte is not a known [`MessageCode`]. Wire error `unknownMessage`.
    #[error("unknown message code 0x{0:02x}")]
    UnknownCode(u8),

    /// The stream ended before the frame was complete; `needed` more bytes (at
    /// least) were expected. Wire error `malformed`.
    #[error("stream ended {needed} byte(s) before the end of the frame")]
    Truncated {
        /// Minimum number of further bytes the frame needed.
        needed: usize,
    },

    /// The segment table declares more than [`MAX_SEGMENTS`] segments.
    /// Wire error `malformed`.
    #[error("segment table declares {count} segments (at most {MAX_SEGMENTS})")]
    TooManySegments {
        /// Declared segment count.
        count: u64,
    },

    /// The segment table declares a frame larger than the code's cap. Detected
    /// from the table alone; the body is not read. Wire error `tooLarge`.
    #[error("{code} frame declares at least {size} bytes (cap {max})")]
    TooLarge {
        /// The frame's message code.
        code: MessageCode,
        /// Declared size (table + segments) as far as the table was read; the
        /// full declared size is at least this.
        size: u64,
        /// The cap, [`MessageCode::max_frame_bytes`].
        max: usize,
    },

    /// Segment 0 is empty, so the message has no root pointer.
    /// Wire error `malformed`.
    #[error("first segment is empty: no root pointer")]
    EmptyMessage,

    /// Bytes followed the complete frame on the same stream (each stream carries
    /// exactly one frame per direction). Wire error `malformed`.
    #[error("{extra} byte(s) after the end of the frame")]
    TrailingBytes {
        /// How many unexpected bytes were seen (at least).
        extra: usize,
    },

    /// The message is not valid Cap'n Proto: out-of-bounds or malformed pointer,
    /// bad far pointer, unknown pointer kind, ... (the capnp error text).
    /// Wire error `malformed`.
    #[error("malformed message: {0}")]
    Malformed(String),

    /// The message contains a capability pointer; distsoc messages never carry
    /// capabilities. Wire error `malformed`.
    #[error("message contains a capability pointer")]
    Capability,

    /// Pointers nest deeper than [`crate::limits::NESTING_LIMIT`] (or form a
    /// cycle). Wire error `malformed`.
    #[error("message nests deeper than the nesting limit, or contains a cycle")]
    NestingTooDeep,

    /// Reading the message would traverse more words than its traversal budget
    /// (pointers sharing data: an amplification attack). Wire error `malformed`.
    #[error("message exceeds its traversal limit (shared or overlapping pointers)")]
    TraversalLimit,
}

impl WireCode for FrameError {
    /// `unknownMessage`, `tooLarge` or `malformed`.
    fn error_code(&self) -> ErrorCode {
        match self {
            FrameError::UnknownCode(_) => ErrorCode::UnknownMessage,
            FrameError::TooLarge { .. } => ErrorCode::TooLarge,
            FrameError::Truncated { .. }
            | FrameError::TooManySegments { .. }
            | FrameError::EmptyMessage
            | FrameError::TrailingBytes { .. }
            | FrameError::Malformed(_)
            | FrameError::Capability
            | FrameError::NestingTooDeep
            | FrameError::TraversalLimit => ErrorCode::Malformed,
        }
    }
}

impl ToWireError for FrameError {}

impl FrameError {
    /// A stable lower-camel-case name of the variant, for logs and vector files.
    pub const fn reason(&self) -> &'static str {
        match self {
            FrameError::UnknownCode(_) => "unknownCode",
            FrameError::Truncated { .. } => "truncated",
            FrameError::TooManySegments { .. } => "tooManySegments",
            FrameError::TooLarge { .. } => "tooLarge",
            FrameError::EmptyMessage => "emptyMessage",
            FrameError::TrailingBytes { .. } => "trailingBytes",
            FrameError::Malformed(_) => "malformed",
            FrameError::Capability => "capability",
            FrameError::NestingTooDeep => "nestingTooDeep",
            FrameError::TraversalLimit => "traversalLimit",
        }
    }

    /// Classifies an error of the capnp reader: nesting and traversal limits get
    /// their own variants, everything else is [`FrameError::Malformed`].
    ///
    /// capnp 0.27 reports the nesting limit with three kinds
    /// (`MessageIsTooDeeplyNested` from `total_size`,
    /// `MessageIsTooDeeplyNestedOrContainsCycles` from struct reads,
    /// `NestingLimitExceeded` from list reads) and the traversal limit with
    /// `ReadLimitExceeded`.
    pub fn from_capnp(error: capnp::Error) -> Self {
        match error.kind {
            ErrorKind::MessageIsTooDeeplyNested
            | ErrorKind::MessageIsTooDeeplyNestedOrContainsCycles
            | ErrorKind::NestingLimitExceeded => FrameError::NestingTooDeep,
            ErrorKind::ReadLimitExceeded => FrameError::TraversalLimit,
            _ => FrameError::Malformed(error.to_string()),
        }
    }
}

impl From<capnp::Error> for FrameError {
    fn from(error: capnp::Error) -> Self {
        FrameError::from_capnp(error)
    }
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Encodes `message` as a frame with `code`.
///
/// Refuses (like a receiver would) a message with more than [`MAX_SEGMENTS`]
/// segments ([`FrameError::TooManySegments`]) or larger than the code's cap
/// ([`FrameError::TooLarge`]). A builder whose root was never set is encoded as a
/// one-word message with a null root pointer.
pub(crate) fn encode_frame<A: Allocator>(
    code: MessageCode,
    message: &Builder<A>,
) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_frame_into(code, message, &mut out)?;
    Ok(out)
}

/// Like [`encode_frame`], appending the frame to `out`. On error `out` is left
/// unchanged.
pub(crate) fn encode_frame_into<A: Allocator>(
    code: MessageCode,
    message: &Builder<A>,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let segments = message.get_segments_for_output();
    encode_segments_into(code, &segments, out)
}

/// Encodes already-built segments (each a whole number of words) as a frame
/// with `code`, appending to `out`. Same checks as
/// [`Message::to_frame`](crate::messages::Message::to_frame). Zero segments
/// are encoded as one segment holding a null root pointer.
pub fn encode_segments_into(
    code: MessageCode,
    segments: &[&[u8]],
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    const NULL_ROOT: [u8; WORD_BYTES] = [0; WORD_BYTES];
    let null_root: [&[u8]; 1] = [&NULL_ROOT];
    let segments = if segments.is_empty() {
        &null_root[..]
    } else {
        segments
    };
    let count = segments.len();
    if count > MAX_SEGMENTS {
        return Err(FrameError::TooManySegments {
            count: count as u64,
        });
    }
    if let Some(bad) = segments.iter().find(|s| s.len() % WORD_BYTES != 0) {
        return Err(FrameError::Malformed(format!(
            "segment of {} bytes is not a whole number of words",
            bad.len()
        )));
    }
    if segments[0].is_empty() {
        return Err(FrameError::EmptyMessage);
    }
    let table = segment_table_bytes(count);
    let body: usize = segments.iter().map(|s| s.len()).sum();
    let size = table + body;
    if size > code.max_frame_bytes() {
        return Err(FrameError::TooLarge {
            code,
            size: size as u64,
            max: code.max_frame_bytes(),
        });
    }
    out.reserve(CODE_BYTES + size);
    out.push(code.as_u8());
    // count ≤ 512 and each segment ≤ 16 MiB: the casts cannot truncate.
    out.extend_from_slice(&((count - 1) as u32).to_le_bytes());
    for segment in segments {
        out.extend_from_slice(&((segment.len() / WORD_BYTES) as u32).to_le_bytes());
    }
    if count % 2 == 0 {
        out.extend_from_slice(&[0; 4]);
    }
    for segment in segments {
        out.extend_from_slice(segment);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Decoded frames
// ---------------------------------------------------------------------------

/// The segments of a received message, 8-byte aligned, owned.
///
/// Implements [`ReaderSegments`]; obtained from a [`Frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSegments {
    words: Vec<Word>,
    /// `(start, end)` word index of each segment in `words`.
    bounds: Vec<(usize, usize)>,
}

impl FrameSegments {
    /// Number of segments (at least 1).
    pub fn count(&self) -> usize {
        self.bounds.len()
    }

    /// Total words in all segments.
    pub fn total_words(&self) -> usize {
        self.bounds.last().map_or(0, |&(_, end)| end)
    }

    /// The segments as byte slices, in order.
    pub fn as_slices(&self) -> Vec<&[u8]> {
        self.bounds
            .iter()
            .map(|&(start, end)| Word::words_to_bytes(&self.words[start..end]))
            .collect()
    }
}

impl ReaderSegments for FrameSegments {
    fn get_segment(&self, idx: u32) -> Option<&[u8]> {
        let &(start, end) = self.bounds.get(idx as usize)?;
        self.words.get(start..end).map(Word::words_to_bytes)
    }

    fn len(&self) -> usize {
        self.bounds.len()
    }
}

/// A complete, validated frame: a known code and a message whose whole tree
/// passed the checks of the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    code: MessageCode,
    segments: FrameSegments,
}

impl Frame {
    /// Builds and validates a frame from its parts.
    fn new(code: MessageCode, segments: FrameSegments) -> Result<Self, FrameError> {
        let frame = Frame { code, segments };
        frame.validate()?;
        Ok(frame)
    }

    /// The message code.
    pub fn code(&self) -> MessageCode {
        self.code
    }

    /// The message's segments.
    pub fn segments(&self) -> &FrameSegments {
        &self.segments
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.count()
    }

    /// Total words in all segments (segment table excluded).
    pub fn words(&self) -> usize {
        self.segments.total_words()
    }

    /// Size of the framed message as checked against the code's cap: segment
    /// table plus segments, code byte excluded.
    pub fn encoded_len(&self) -> usize {
        segment_table_bytes(self.segment_count()) + self.words() * WORD_BYTES
    }

    /// A fresh reader over the message, with the limits of
    /// [`reader_options`]`(self.words())`. Each call gets a full traversal budget;
    /// use one reader per consumer.
    pub fn reader(&self) -> Reader<&FrameSegments> {
        Reader::new(&self.segments, reader_options(self.words()))
    }

    /// Consumes the frame into an owning reader, with the same limits as
    /// [`Frame::reader`].
    pub fn into_reader(self) -> Reader<FrameSegments> {
        let options = reader_options(self.words());
        Reader::new(self.segments, options)
    }

    /// Walks the whole message tree once with a fresh reader and returns its size.
    ///
    /// Every [`Frame`] handed out by this module has already passed this check;
    /// it is public for callers that want to re-check or measure.
    pub fn validate(&self) -> Result<capnp::MessageSize, FrameError> {
        validate_message(&self.reader())
    }

    /// Re-encodes the frame: code byte, segment table, segments. Decoding the
    /// result gives an equal frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CODE_BYTES + self.encoded_len());
        out.push(self.code.as_u8());
        let count = self.segment_count();
        out.extend_from_slice(&((count - 1) as u32).to_le_bytes());
        for &(start, end) in &self.segments.bounds {
            out.extend_from_slice(&((end - start) as u32).to_le_bytes());
        }
        if count.is_multiple_of(2) {
            out.extend_from_slice(&[0; 4]);
        }
        out.extend_from_slice(Word::words_to_bytes(
            &self.segments.words[..self.segments.total_words()],
        ));
        out
    }
}

/// Walks the whole tree of `reader` once (`total_size` of the root): the "full
/// recognition" check shared by frames and canonical bytes.
pub(crate) fn validate_message<S: ReaderSegments>(
    reader: &Reader<S>,
) -> Result<capnp::MessageSize, FrameError> {
    let root: capnp::any_pointer::Reader<'_> = reader.get_root()?;
    let size = root.target_size()?;
    if size.cap_count != 0 {
        return Err(FrameError::Capability);
    }
    Ok(size)
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// A fully parsed frame header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    code: MessageCode,
    /// Segment sizes in words.
    sizes: Vec<u32>,
    /// Total words of all segments.
    total_words: usize,
}

/// Result of parsing a (possibly partial) header.
enum HeaderStatus {
    /// At least this many more bytes are needed.
    Need(usize),
    /// The header is complete; it is `len` bytes long.
    Complete { header: Header, len: usize },
}

/// Parses the code byte and segment table at the start of `head`, applying rules
/// 1–4 as early as the bytes allow.
fn parse_header(head: &[u8]) -> Result<HeaderStatus, FrameError> {
    let Some(&code_byte) = head.first() else {
        return Ok(HeaderStatus::Need(CODE_BYTES));
    };
    let code = MessageCode::from_u8(code_byte).ok_or(FrameError::UnknownCode(code_byte))?;
    let table = &head[CODE_BYTES..];
    let Some(count_bytes) = table.get(..4) else {
        return Ok(HeaderStatus::Need(4 - table.len()));
    };
    let count = u64::from(u32::from_le_bytes([
        count_bytes[0],
        count_bytes[1],
        count_bytes[2],
        count_bytes[3],
    ])) + 1;
    if count > MAX_SEGMENTS as u64 {
        return Err(FrameError::TooManySegments { count });
    }
    let count = count as usize;
    let table_len = segment_table_bytes(count);
    let max = code.max_frame_bytes();

    // Sizes present so far; check the cap on the running total.
    let available = ((table.len() - 4) / 4).min(count);
    let mut sizes = Vec::with_capacity(available);
    let mut words: u64 = 0;
    for i in 0..available {
        let at = 4 + 4 * i;
        let size = u32::from_le_bytes([table[at], table[at + 1], table[at + 2], table[at + 3]]);
        words += u64::from(size);
        let declared = table_len as u64 + words * WORD_BYTES as u64;
        if declared > max as u64 {
            return Err(FrameError::TooLarge {
                code,
                size: declared,
                max,
            });
        }
        sizes.push(size);
    }
    if table.len() < table_len {
        return Ok(HeaderStatus::Need(table_len - table.len()));
    }
    if sizes.first() == Some(&0) {
        return Err(FrameError::EmptyMessage);
    }
    Ok(HeaderStatus::Complete {
        header: Header {
            code,
            sizes,
            // ≤ max / 8: fits usize.
            total_words: words as usize,
        },
        len: CODE_BYTES + table_len,
    })
}

#[derive(Debug)]
enum State {
    /// Reading the code byte and segment table into `head`.
    Header { head: Vec<u8> },
    /// Reading the segments.
    Body {
        header: Header,
        /// Buffer, grown as bytes arrive; never longer than `header.total_words`.
        words: Vec<Word>,
        /// Bytes of the body received so far.
        filled: usize,
    },
    /// The frame was returned; only end of stream may follow.
    Complete,
    /// An error was returned; it is returned again on every call.
    Failed(FrameError),
}

/// Incremental decoder of the one frame a stream direction carries.
///
/// ```text
/// let mut decoder = FrameDecoder::new();
/// while let Some(chunk) = stream.read_chunk()? {
///     if let Some(frame) = decoder.push(&chunk)? { /* handle frame */ }
/// }
/// decoder.finish()?;   // at end of stream
/// ```
///
/// Memory: at most [`MAX_HEADER_BYTES`] for the header, then a buffer that grows
/// with the bytes received and never exceeds the size the (already checked)
/// segment table declares, i.e. the code's cap.
#[derive(Debug)]
pub struct FrameDecoder {
    state: State,
    code: Option<MessageCode>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Initial body buffer (in words) for frames whose size is known but whose bytes
/// have not arrived yet: 64 KiB, then doubling.
const INITIAL_BODY_WORDS: usize = 8 * 1024;

impl FrameDecoder {
    /// A decoder waiting for the first byte.
    pub fn new() -> Self {
        FrameDecoder {
            state: State::Header {
                head: Vec::with_capacity(CODE_BYTES + WORD_BYTES),
            },
            code: None,
        }
    }

    /// The message code, once the first byte has been seen and is known. Use it
    /// as `requestCode` when answering an error.
    pub fn code(&self) -> Option<MessageCode> {
        self.code
    }

    /// Minimum number of further bytes needed to complete the frame (0 once the
    /// frame is complete or the decoder has failed).
    pub fn needed(&self) -> usize {
        match &self.state {
            State::Header { head } => match parse_header(head) {
                Ok(HeaderStatus::Need(n)) => n,
                Ok(HeaderStatus::Complete { .. }) | Err(_) => 0,
            },
            State::Body { header, filled, .. } => header.total_words * WORD_BYTES - filled,
            State::Complete | State::Failed(_) => 0,
        }
    }

    /// Feeds the next chunk of the stream. Returns `Ok(None)` while more bytes
    /// are needed and `Ok(Some(frame))` once, when the frame is complete and
    /// validated. Bytes beyond the end of a valid frame, in this chunk or a
    /// later one, are [`FrameError::TrailingBytes`] (a runtime that acts on the
    /// frame before the end of the stream may see this error only afterwards).
    /// After an error the decoder is spent and returns the same error again.
    pub fn push(&mut self, input: &[u8]) -> Result<Option<Frame>, FrameError> {
        let result = self.advance(input);
        if let Err(error) = &result {
            self.state = State::Failed(error.clone());
        }
        result
    }

    /// Declares the end of the stream: `Ok(())` if a frame was completed,
    /// [`FrameError::Truncated`] if the stream ended early, or the error the
    /// decoder already failed with.
    pub fn finish(&self) -> Result<(), FrameError> {
        match &self.state {
            State::Complete => Ok(()),
            State::Failed(error) => Err(error.clone()),
            State::Header { .. } | State::Body { .. } => Err(FrameError::Truncated {
                needed: self.needed(),
            }),
        }
    }

    fn advance(&mut self, mut input: &[u8]) -> Result<Option<Frame>, FrameError> {
        loop {
            match &mut self.state {
                State::Failed(error) => return Err(error.clone()),
                State::Complete => {
                    return if input.is_empty() {
                        Ok(None)
                    } else {
                        Err(FrameError::TrailingBytes { extra: input.len() })
                    };
                }
                State::Header { head } => match parse_header(head)? {
                    HeaderStatus::Need(n) => {
                        if input.is_empty() {
                            return Ok(None);
                        }
                        let take = n.min(input.len());
                        head.extend_from_slice(&input[..take]);
                        input = &input[take..];
                        if head.len() == CODE_BYTES {
                            self.code = MessageCode::from_u8(head[0]);
                        }
                    }
                    HeaderStatus::Complete { header, .. } => {
                        let initial = header.total_words.min(INITIAL_BODY_WORDS);
                        self.state = State::Body {
                            words: Vec::with_capacity(initial),
                            header,
                            filled: 0,
                        };
                    }
                },
                State::Body {
                    header,
                    words,
                    filled,
                } => {
                    let total_bytes = header.total_words * WORD_BYTES;
                    let take = (total_bytes - *filled).min(input.len());
                    let new_filled = *filled + take;
                    let need_words = new_filled.div_ceil(WORD_BYTES);
                    if words.len() < need_words {
                        let target = need_words
                            .max(words.len().saturating_mul(2))
                            .max(INITIAL_BODY_WORDS)
                            .min(header.total_words);
                        words.reserve_exact(target - words.len());
                        words.resize(target, capnp::word(0, 0, 0, 0, 0, 0, 0, 0));
                    }
                    Word::words_to_bytes_mut(words)[*filled..new_filled]
                        .copy_from_slice(&input[..take]);
                    *filled = new_filled;
                    input = &input[take..];
                    if *filled < total_bytes {
                        return Ok(None);
                    }
                    let code = header.code;
                    let mut bounds = Vec::with_capacity(header.sizes.len());
                    let mut start = 0usize;
                    for &size in &header.sizes {
                        let end = start + size as usize;
                        bounds.push((start, end));
                        start = end;
                    }
                    let words = std::mem::take(words);
                    self.state = State::Complete;
                    // Validate before looking at what follows: whether extra
                    // bytes arrive in this chunk or a later one must not change
                    // the verdict on an invalid message.
                    let frame = Frame::new(code, FrameSegments { words, bounds })?;
                    if !input.is_empty() {
                        return Err(FrameError::TrailingBytes { extra: input.len() });
                    }
                    return Ok(Some(frame));
                }
            }
        }
    }
}

/// Decodes the complete contents of one stream direction: exactly one frame,
/// validated. Fewer bytes are [`FrameError::Truncated`], more are
/// [`FrameError::TrailingBytes`].
pub fn decode_frame(stream: &[u8]) -> Result<Frame, FrameError> {
    let mut decoder = FrameDecoder::new();
    match decoder.push(stream)? {
        Some(frame) => Ok(frame),
        None => Err(FrameError::Truncated {
            needed: decoder.needed(),
        }),
    }
}

/// Reads only the header at the start of `stream` and returns the code and the
/// total frame length in bytes (code byte included), applying rules 1–4; `None`
/// if more bytes are needed to know. Lets a runtime size a read before buffering.
pub fn peek_frame_len(stream: &[u8]) -> Result<Option<(MessageCode, usize)>, FrameError> {
    match parse_header(stream)? {
        HeaderStatus::Need(_) => Ok(None),
        HeaderStatus::Complete { header, len } => {
            Ok(Some((header.code, len + header.total_words * WORD_BYTES)))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use capnp::message::{AllocationStrategy, HeapAllocator};
    use capnp::schema_capnp::value;
    use capnp::{primitive_list, struct_list};
    use proptest::prelude::*;

    // ---- hand-written Cap'n Proto words -------------------------------------

    /// Struct pointer: offset (words, from the end of the pointer), data words,
    /// pointer count.
    fn sp(offset: i32, data: u16, ptrs: u16) -> u64 {
        (((offset as u32) << 2) as u64) | (u64::from(data) << 32) | (u64::from(ptrs) << 48)
    }

    /// List pointer: offset, element size tag (0..=7), element count (or word
    /// count for inline composite).
    fn lp(offset: i32, size: u8, count: u32) -> u64 {
        (((offset as u32) << 2) as u64 | 1) | (u64::from(size) << 32) | (u64::from(count) << 35)
    }

    /// Far pointer: landing pad offset in words, double-far flag, segment id.
    fn fp(pad: u32, double: bool, segment: u32) -> u64 {
        (u64::from(pad) << 3) | (u64::from(double) << 2) | 2 | (u64::from(segment) << 32)
    }

    /// Frame bytes from a code and segments of words.
    fn frame(code: u8, segments: &[&[u64]]) -> Vec<u8> {
        let mut out = vec![code];
        out.extend_from_slice(&(segments.len() as u32 - 1).to_le_bytes());
        for s in segments {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        }
        if segments.len().is_multiple_of(2) {
            out.extend_from_slice(&[0; 4]);
        }
        for s in segments {
            for w in *s {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    const PUSH: u8 = 0x42; // PushPost, a push with a large cap

    fn err(bytes: &[u8]) -> FrameError {
        decode_frame(bytes).expect_err("frame must be refused")
    }

    // ---- valid frames --------------------------------------------------------

    #[test]
    fn null_root_and_empty_struct_are_valid() {
        let f = decode_frame(&frame(PUSH, &[&[0]])).unwrap();
        assert_eq!(
            (f.code(), f.segment_count(), f.words()),
            (MessageCode::PushPost, 1, 1)
        );
        let f = decode_frame(&frame(PUSH, &[&[sp(-1, 0, 0)]])).unwrap();
        assert_eq!(f.words(), 1);
    }

    #[test]
    fn builder_round_trip_single_segment() {
        let mut message = Builder::new_default();
        let mut v = message.init_root::<value::Builder<'_>>();
        v.set_text("hello");
        let bytes = encode_frame(MessageCode::Hello, &message).unwrap();
        assert_eq!(bytes[0], 0x00);
        let f = decode_frame(&bytes).unwrap();
        assert_eq!(f.to_bytes(), bytes);
        let r = f.reader();
        let v = r.get_root::<value::Reader<'_>>().unwrap();
        match v.which().unwrap() {
            value::Text(t) => assert_eq!(t.unwrap().to_str().unwrap(), "hello"),
            _ => panic!("wrong union"),
        }
    }

    #[test]
    fn unset_builder_encodes_null_root() {
        let message = Builder::new_default();
        let bytes = encode_frame(MessageCode::Ack, &message).unwrap();
        assert_eq!(bytes, frame(0x7e, &[&[0]]));
        decode_frame(&bytes).unwrap();
    }

    #[test]
    fn multi_segment_far_and_double_far() {
        // Root in segment 0 is a far pointer to a landing pad in segment 1 that
        // points at a 1-word struct in segment 1.
        let f = decode_frame(&frame(PUSH, &[&[fp(0, false, 1)], &[sp(0, 1, 0), 42]])).unwrap();
        assert_eq!((f.segment_count(), f.words()), (2, 3));
        // Double far: pad in segment 1 = far pointer to the content start in
        // segment 2 + tag.
        let f = decode_frame(&frame(
            PUSH,
            &[&[fp(0, true, 1)], &[fp(0, false, 2), sp(0, 1, 0)], &[7]],
        ))
        .unwrap();
        assert_eq!((f.segment_count(), f.words()), (3, 4));
        let r = f.reader();
        let v = r.get_root::<capnp::any_pointer::Reader<'_>>().unwrap();
        assert_eq!(v.target_size().unwrap().word_count, 1);
    }

    #[test]
    fn segment_count_limits() {
        let mut segs: Vec<&[u64]> = vec![&[0]];
        segs.resize(MAX_SEGMENTS, &[]);
        let f = decode_frame(&frame(PUSH, &segs)).unwrap();
        assert_eq!(f.segment_count(), MAX_SEGMENTS);
        segs.push(&[]);
        assert_eq!(
            err(&frame(PUSH, &segs)),
            FrameError::TooManySegments { count: 513 }
        );
        let mut huge = vec![PUSH];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(err(&huge), FrameError::TooManySegments { count: 1 << 32 });
    }

    #[test]
    fn size_cap_is_exact_and_checked_from_table() {
        // BootstrapRequest: 4 KiB cap. 8-byte table + 511 words = 4096 bytes.
        let mut body = vec![lp(0, 2, 510 * 8)];
        body.resize(511, 0);
        let at_cap = frame(0x03, &[&body]);
        assert_eq!(at_cap.len(), 1 + 4096);
        assert_eq!(decode_frame(&at_cap).unwrap().encoded_len(), 4096);
        body.push(0);
        let over = frame(0x03, &[&body]);
        assert_eq!(
            err(&over),
            FrameError::TooLarge {
                code: MessageCode::BootstrapRequest,
                size: 4104,
                max: 4096
            }
        );
        // The header alone is enough.
        assert!(matches!(err(&over[..9]), FrameError::TooLarge { .. }));
        let mut d = FrameDecoder::new();
        assert!(matches!(
            d.push(&over[..9]),
            Err(FrameError::TooLarge { .. })
        ));
        // Even a partial table: 3 segments, the first already too big.
        let mut partial = vec![0x03];
        partial.extend_from_slice(&2u32.to_le_bytes());
        partial.extend_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(
            err(&partial),
            FrameError::TooLarge { size: 8016, .. }
        ));
    }

    #[test]
    fn header_errors() {
        assert_eq!(err(&[]), FrameError::Truncated { needed: 1 });
        assert_eq!(err(&[PUSH]), FrameError::Truncated { needed: 4 });
        assert_eq!(err(&[PUSH, 0, 0]), FrameError::Truncated { needed: 2 });
        assert_eq!(
            err(&[PUSH, 0, 0, 0, 0]),
            FrameError::Truncated { needed: 4 }
        );
        assert_eq!(err(&[0x07]), FrameError::UnknownCode(0x07));
        assert_eq!(err(&frame(0xff, &[&[0]])), FrameError::UnknownCode(0xff));
        assert_eq!(err(&frame(PUSH, &[&[]])), FrameError::EmptyMessage);
        let mut short = frame(PUSH, &[&[sp(0, 1, 0), 1]]);
        short.truncate(short.len() - 3);
        assert_eq!(err(&short), FrameError::Truncated { needed: 3 });
        let mut long = frame(PUSH, &[&[0]]);
        long.push(0);
        assert_eq!(err(&long), FrameError::TrailingBytes { extra: 1 });
    }

    #[test]
    fn validation_precedes_trailing_bytes() {
        let mut bytes = frame(PUSH, &[&[sp(0, 2, 0), 1]]);
        bytes.extend_from_slice(&[0; 9]);
        assert!(matches!(err(&bytes), FrameError::Malformed(_)));
        let mut d = FrameDecoder::new();
        assert!(matches!(d.push(&bytes), Err(FrameError::Malformed(_))));
        let mut d = FrameDecoder::new();
        assert!(matches!(
            d.push(&bytes[..bytes.len() - 9]),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn void_list_amplification_is_caught_by_the_first_typed_read() {
        // A root List(Void) of 2^29 - 1 elements in one word: `total_size` does
        // not charge it, so the frame validates...
        let f = decode_frame(&frame(PUSH, &[&[lp(0, 0, (1 << 29) - 1)]])).unwrap();
        // ...but obtaining the list reader charges its element count.
        let r = f.reader();
        let root: capnp::any_pointer::Reader<'_> = r.get_root().unwrap();
        let list = root.get_as::<primitive_list::Reader<'_, ()>>();
        assert_eq!(
            list.map(|_| ()).map_err(FrameError::from),
            Err(FrameError::TraversalLimit)
        );
    }

    #[test]
    fn table_padding_is_ignored() {
        let mut bytes = frame(PUSH, &[&[fp(0, false, 1)], &[sp(0, 1, 0), 42]]);
        // 2 segments: padding is bytes 1+12 .. 1+16.
        bytes[13..17].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        decode_frame(&bytes).unwrap();
    }

    // ---- structural errors ---------------------------------------------------

    #[test]
    fn out_of_bounds_pointers() {
        let e = err(&frame(PUSH, &[&[sp(0, 10, 0), 0]]));
        assert!(
            matches!(e, FrameError::Malformed(ref m) if m.contains("out-of-bounds")),
            "{e}"
        );
        let e = err(&frame(PUSH, &[&[lp(0, 2, 1000)]]));
        assert!(
            matches!(e, FrameError::Malformed(ref m) if m.contains("out-of-bounds")),
            "{e}"
        );
        let e = err(&frame(PUSH, &[&[sp(-5, 1, 0)]]));
        assert!(matches!(e, FrameError::Malformed(_)), "{e}");
        // Far pointer to a missing segment; landing pad out of bounds.
        let e = err(&frame(PUSH, &[&[fp(0, false, 1)]]));
        assert!(
            matches!(e, FrameError::Malformed(ref m) if m.contains("segment")),
            "{e}"
        );
        let e = err(&frame(PUSH, &[&[fp(100, false, 0)]]));
        assert!(
            matches!(e, FrameError::Malformed(ref m) if m.contains("out-of-bounds")),
            "{e}"
        );
        // Single-far landing pad that is itself a far pointer.
        let e = err(&frame(PUSH, &[&[fp(1, false, 0), fp(1, false, 0)]]));
        assert!(matches!(e, FrameError::Malformed(_)), "{e}");
        // Inline-composite list whose elements overrun its word count.
        let e = err(&frame(PUSH, &[&[lp(0, 7, 1), sp(2, 1, 0), 0]]));
        assert!(matches!(e, FrameError::Malformed(_)), "{e}");
    }

    #[test]
    fn capability_and_unknown_pointers() {
        assert_eq!(err(&frame(PUSH, &[&[3]])), FrameError::Capability);
        let e = err(&frame(PUSH, &[&[7]]));
        assert!(matches!(e, FrameError::Malformed(_)), "{e}");
    }

    /// `depth` nested structs, each with one pointer to the next; the last is an
    /// empty struct.
    fn nested_structs(depth: usize) -> Vec<u64> {
        let mut w = vec![sp(0, 0, 1); depth];
        w[depth - 1] = sp(-1, 0, 0);
        w
    }

    /// `depth` nested one-element pointer lists; the innermost element is null.
    fn nested_lists(depth: usize) -> Vec<u64> {
        let mut w = vec![lp(0, 6, 1); depth];
        w.push(0);
        w
    }

    #[test]
    fn nesting_limit_is_64() {
        decode_frame(&frame(PUSH, &[&nested_structs(64)])).unwrap();
        assert_eq!(
            err(&frame(PUSH, &[&nested_structs(65)])),
            FrameError::NestingTooDeep
        );
        decode_frame(&frame(PUSH, &[&nested_lists(64)])).unwrap();
        assert_eq!(
            err(&frame(PUSH, &[&nested_lists(65)])),
            FrameError::NestingTooDeep
        );
        // A cycle (a struct pointing to itself) is caught by the same limit.
        assert_eq!(
            err(&frame(PUSH, &[&[sp(0, 0, 1), sp(-1, 0, 1)]])),
            FrameError::NestingTooDeep
        );
    }

    /// A root struct with `n` pointers all pointing at one byte list of
    /// `list_words` words.
    fn amplified(n: usize, list_words: usize) -> Vec<u64> {
        let mut w = vec![sp(0, 0, n as u16)];
        let target = 1 + n; // index of the list
        for i in 0..n {
            let at = 1 + i;
            w.push(lp((target - at - 1) as i32, 2, (list_words * 8) as u32));
        }
        w.resize(1 + n + list_words, 0x4141_4141_4141_4141);
        w
    }

    #[test]
    fn traversal_amplification_is_refused() {
        // Shared twice: within budget (legal Cap'n Proto, if unusual).
        decode_frame(&frame(PUSH, &[&amplified(2, 64)])).unwrap();
        assert_eq!(
            err(&frame(PUSH, &[&amplified(64, 64)])),
            FrameError::TraversalLimit
        );
    }

    #[test]
    fn capnp_error_kinds_are_mapped() {
        for kind in [
            ErrorKind::MessageIsTooDeeplyNested,
            ErrorKind::MessageIsTooDeeplyNestedOrContainsCycles,
            ErrorKind::NestingLimitExceeded,
        ] {
            assert_eq!(
                FrameError::from_capnp(capnp::Error::from_kind(kind)),
                FrameError::NestingTooDeep
            );
        }
        assert_eq!(
            FrameError::from_capnp(capnp::Error::from_kind(ErrorKind::ReadLimitExceeded)),
            FrameError::TraversalLimit
        );
    }

    #[test]
    fn typed_reads_hit_the_same_limits() {
        // A typed decoder reading a 2x-shared list many times runs out of budget.
        let f = decode_frame(&frame(PUSH, &[&amplified(2, 64)])).unwrap();
        let r = f.reader();
        let root: capnp::any_pointer::Reader<'_> = r.get_root().unwrap();
        let mut last = Ok(());
        for _ in 0..10 {
            last = root.target_size().map(|_| ()).map_err(FrameError::from);
        }
        assert_eq!(last, Err(FrameError::TraversalLimit));
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            FrameError::UnknownCode(1).error_code(),
            ErrorCode::UnknownMessage
        );
        assert_eq!(
            FrameError::TooLarge {
                code: MessageCode::Ack,
                size: 1,
                max: 0
            }
            .error_code(),
            ErrorCode::TooLarge
        );
        for e in [
            FrameError::Truncated { needed: 1 },
            FrameError::TooManySegments { count: 600 },
            FrameError::EmptyMessage,
            FrameError::TrailingBytes { extra: 1 },
            FrameError::Malformed(String::new()),
            FrameError::Capability,
            FrameError::NestingTooDeep,
            FrameError::TraversalLimit,
        ] {
            assert_eq!(e.error_code(), ErrorCode::Malformed, "{e}");
        }
    }

    // ---- incremental decoding -----------------------------------------------

    #[test]
    fn incremental_byte_by_byte() {
        let bytes = frame(PUSH, &[&[fp(0, false, 1)], &[sp(0, 1, 0), 42]]);
        let mut d = FrameDecoder::new();
        assert_eq!(d.needed(), 1);
        for (i, b) in bytes.iter().enumerate() {
            assert!(d.needed() >= 1);
            assert!(d.needed() <= bytes.len() - i);
            let out = d.push(std::slice::from_ref(b)).unwrap();
            if i + 1 < bytes.len() {
                assert!(out.is_none());
                assert_eq!(
                    d.finish(),
                    Err(FrameError::Truncated { needed: d.needed() })
                );
            } else {
                assert_eq!(out.unwrap().to_bytes(), bytes);
            }
            if i == 0 {
                assert_eq!(d.code(), Some(MessageCode::PushPost));
            }
        }
        assert_eq!(d.needed(), 0);
        assert_eq!(d.finish(), Ok(()));
        assert_eq!(d.push(&[]), Ok(None));
        assert_eq!(d.push(&[1, 2]), Err(FrameError::TrailingBytes { extra: 2 }));
        // Spent: the error sticks.
        assert_eq!(d.push(&[]), Err(FrameError::TrailingBytes { extra: 2 }));
        assert_eq!(d.finish(), Err(FrameError::TrailingBytes { extra: 2 }));
    }

    #[test]
    fn body_buffer_grows_with_input_not_with_claim() {
        // A 16 MiB claim with only the header sent allocates nothing for the body.
        let mut header = vec![0x65];
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&((16 * 1024 * 1024 - 8) / 8u32).to_le_bytes());
        let mut d = FrameDecoder::new();
        assert_eq!(d.push(&header), Ok(None));
        assert_eq!(d.needed(), 16 * 1024 * 1024 - 8);
        match &d.state {
            State::Body { words, .. } => assert!(words.capacity() <= INITIAL_BODY_WORDS),
            other => panic!("{other:?}"),
        }
        d.push(&[0; 100]).unwrap();
        match &d.state {
            State::Body { words, .. } => assert_eq!(words.capacity(), INITIAL_BODY_WORDS),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn peek_reports_length() {
        let bytes = frame(PUSH, &[&[fp(0, false, 1)], &[sp(0, 1, 0), 42]]);
        assert_eq!(peek_frame_len(&bytes[..5]), Ok(None));
        assert_eq!(
            peek_frame_len(&bytes),
            Ok(Some((MessageCode::PushPost, bytes.len())))
        );
    }

    #[test]
    fn encoder_refuses_what_decoder_refuses() {
        let mut message = Builder::new_default();
        message
            .init_root::<value::Builder<'_>>()
            .set_data(&[0u8; 5000]);
        assert!(matches!(
            encode_frame(MessageCode::FileRequest, &message),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(encode_frame(MessageCode::FileResponse, &message).is_ok());
        let segs: Vec<&[u8]> = vec![&[0u8; 8]; MAX_SEGMENTS + 1];
        assert_eq!(
            encode_segments_into(MessageCode::PushPost, &segs, &mut Vec::new()),
            Err(FrameError::TooManySegments { count: 513 })
        );
    }

    // ---- property tests -------------------------------------------------------

    /// An arbitrary message tree, built with `schema.capnp`'s `Value` struct.
    #[derive(Debug, Clone)]
    enum Tree {
        Void,
        Int(i64),
        Data(Vec<u8>),
        Text(String),
        Words(Vec<u64>),
        Struct(Box<Tree>),
        List(Vec<Tree>),
    }

    fn tree() -> impl Strategy<Value = Tree> {
        let leaf = prop_oneof![
            Just(Tree::Void),
            any::<i64>().prop_map(Tree::Int),
            proptest::collection::vec(any::<u8>(), 0..200).prop_map(Tree::Data),
            "[a-z]{0,40}".prop_map(Tree::Text),
            proptest::collection::vec(any::<u64>(), 0..40).prop_map(Tree::Words),
        ];
        leaf.prop_recursive(8, 128, 6, |inner| {
            prop_oneof![
                inner.clone().prop_map(|t| Tree::Struct(Box::new(t))),
                proptest::collection::vec(inner, 0..6).prop_map(Tree::List),
            ]
        })
    }

    fn build(mut v: value::Builder<'_>, t: &Tree) {
        match t {
            Tree::Void => v.set_void(()),
            Tree::Int(i) => v.set_int64(*i),
            Tree::Data(d) => v.set_data(d),
            Tree::Text(s) => v.set_text(s.as_str()),
            Tree::Words(w) => {
                let mut l = v
                    .init_list()
                    .initn_as::<primitive_list::Builder<'_, u64>>(w.len() as u32);
                for (i, x) in w.iter().enumerate() {
                    l.set(i as u32, *x);
                }
            }
            Tree::Struct(inner) => build(v.init_struct().init_as::<value::Builder<'_>>(), inner),
            Tree::List(items) => {
                let mut l = v
                    .init_list()
                    .initn_as::<struct_list::Builder<'_, value::Owned>>(items.len() as u32);
                for (i, item) in items.iter().enumerate() {
                    build(l.reborrow().get(i as u32), item);
                }
            }
        }
    }

    fn check(v: value::Reader<'_>, t: &Tree) {
        match (v.which().unwrap(), t) {
            (value::Void(()), Tree::Void) => {}
            (value::Int64(a), Tree::Int(b)) => assert_eq!(a, *b),
            (value::Data(a), Tree::Data(b)) => assert_eq!(a.unwrap(), &b[..]),
            (value::Text(a), Tree::Text(b)) => assert_eq!(a.unwrap().to_str().unwrap(), b),
            (value::List(a), Tree::Words(b)) => {
                let l = a.get_as::<primitive_list::Reader<'_, u64>>().unwrap();
                assert_eq!(l.iter().collect::<Vec<_>>(), *b);
            }
            (value::Struct(a), Tree::Struct(b)) => check(a.get_as().unwrap(), b),
            (value::List(a), Tree::List(b)) => {
                let l = a.get_as::<struct_list::Reader<'_, value::Owned>>().unwrap();
                assert_eq!(l.len() as usize, b.len());
                for (x, y) in l.iter().zip(b) {
                    check(x, y);
                }
            }
            (_, t) => panic!("mismatch for {t:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn round_trip(t in tree(), first in 1u32..64, fixed in any::<bool>(), split in 1usize..64) {
            let strategy = if fixed { AllocationStrategy::FixedSize } else { AllocationStrategy::GrowHeuristically };
            let mut message = Builder::new(HeapAllocator::new().first_segment_words(first).allocation_strategy(strategy));
            build(message.init_root(), &t);
            let code = MessageCode::FetchResponse;
            let bytes = match encode_frame(code, &message) {
                Ok(b) => b,
                Err(FrameError::TooManySegments { .. }) => return Ok(()),
                Err(e) => panic!("{e}"),
            };
            let segments = message.get_segments_for_output();
            let frame = decode_frame(&bytes).unwrap();
            prop_assert_eq!(frame.code(), code);
            prop_assert_eq!(frame.segment_count(), segments.len());
            prop_assert_eq!(frame.segments().as_slices(), segments.to_vec());
            prop_assert_eq!(frame.to_bytes(), bytes.clone());
            check(frame.reader().get_root().unwrap(), &t);

            // Incremental, in chunks of `split` bytes, gives the same frame.
            let mut d = FrameDecoder::new();
            let mut got = None;
            for chunk in bytes.chunks(split) {
                if let Some(f) = d.push(chunk).unwrap() {
                    got = Some(f);
                }
            }
            prop_assert_eq!(got, Some(frame));
            prop_assert_eq!(d.finish(), Ok(()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let one_shot = decode_frame(&bytes);
            let mut d = FrameDecoder::new();
            let mut incremental = Ok(None);
            for chunk in bytes.chunks(7) {
                incremental = d.push(chunk);
                if incremental.is_err() { break; }
            }
            match (&one_shot, incremental) {
                (Ok(f), Ok(Some(g))) => prop_assert_eq!(f, &g),
                // Counts (`extra`, `needed`) depend on chunking; the verdict does not.
                (Err(e), Err(g)) => prop_assert_eq!(e.reason(), g.reason()),
                (Err(FrameError::Truncated { .. }), Ok(None)) => {}
                (a, b) => prop_assert!(false, "one-shot {:?} vs incremental {:?}", a, b),
            }
        }

        #[test]
        fn mutated_frames_never_panic(t in tree(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut message = Builder::new(HeapAllocator::new().first_segment_words(4).allocation_strategy(AllocationStrategy::FixedSize));
            build(message.init_root(), &t);
            let Ok(mut bytes) = encode_frame(MessageCode::FetchResponse, &message) else { return Ok(()) };
            for (at, x) in flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            if let Ok(f) = decode_frame(&bytes) {
                // Whatever passed validation can be walked again, and canonicalized.
                f.validate().unwrap();
                let r = f.reader();
                let root: capnp::any_pointer::Reader<'_> = r.get_root().unwrap();
                let _ = crate::canonical::canonical_bytes_of_any(root);
            }
        }
    }
}
