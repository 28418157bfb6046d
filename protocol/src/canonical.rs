//! Canonical Cap'n Proto bytes: what is hashed and signed.
//!
//! Everything the protocol hashes or signs (PostIds, signatures;
//! `schema/README.md` §4) is computed over **canonical bytes**: the single segment that
//! Cap'n Proto canonicalization produces
//! (<https://capnproto.org/encoding.html#canonicalization>), i.e. the root pointer
//! followed by the objects in pre-order, data sections without trailing zero
//! words, pointer sections without trailing null pointers, no far pointers. Just
//! the segment's words: **no** segment table.
//!
//! [`canonical_bytes`] (and its variants) produce them from any message;
//! [`read_canonical`] reads them back, refusing anything that is not exactly
//! canonical ([`CanonicalError::NonCanonical`]), so that one value has one
//! encoding and one hash.
//!
//! capnp-rust note: `message::Builder::set_root_canonical` asserts (panics) if
//! the canonical copy does not fit the builder's first segment, and the default
//! first segment is 1024 words (8 KiB). This module always sizes the builder
//! from the value's `total_size()` first.

use capnp::message::{Allocator, Builder, HeapAllocator, Reader};
use capnp::serialize::{OwnedSegments, SegmentLengthsBuilder};
use capnp::traits::Owned;

use crate::error::{ErrorCode, ToWireError, WireCode};
use crate::frame::{validate_message, FrameError};
use crate::limits::{reader_options, WORD_BYTES};

/// Largest canonical message this module builds: capnp's segment limit
/// (2^29 words, 4 GiB); protocol caps are far below.
const MAX_CANONICAL_WORDS: u64 = 1 << 29;

/// Why canonical bytes could not be produced or were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// The input is longer than the caller's bound. Wire error `tooLarge`.
    #[error("canonical bytes are {size} bytes long (at most {max})")]
    TooLarge {
        /// Length of the input (or of the value to encode) in bytes.
        size: u64,
        /// The bound.
        max: usize,
    },

    /// The input length is not a multiple of 8 bytes: it cannot be the canonical
    /// encoding of anything. Wire error `nonCanonical`.
    #[error("canonical bytes are {len} bytes long, not a whole number of words")]
    NotWordAligned {
        /// Length of the input in bytes.
        len: usize,
    },

    /// The input is empty: there is no root pointer. Wire error `malformed`.
    #[error("canonical bytes are empty: no root pointer")]
    Empty,

    /// The input is not a valid Cap'n Proto message (out-of-bounds or malformed
    /// pointer, ...; the capnp error text). Wire error `malformed`.
    #[error("malformed canonical bytes: {0}")]
    Malformed(String),

    /// The message contains a capability pointer. Wire error `malformed`.
    #[error("canonical bytes contain a capability pointer")]
    Capability,

    /// Pointers nest deeper than the nesting limit (or form a cycle).
    /// Wire error `malformed`.
    #[error("canonical bytes nest deeper than the nesting limit")]
    NestingTooDeep,

    /// Reading the message exceeds its traversal budget. Wire error `malformed`.
    #[error("canonical bytes exceed their traversal limit")]
    TraversalLimit,

    /// Valid Cap'n Proto, but not the canonical encoding of its value (extra
    /// words, far pointers, objects out of pre-order, untruncated sections).
    /// Wire error `nonCanonical`.
    #[error("bytes are not in canonical form")]
    NonCanonical,

    /// Canonicalizing a local value failed (capnp error text). Not a peer fault;
    /// wire error `internal` if it must be reported at all.
    #[error("cannot canonicalize: {0}")]
    Encode(String),
}

impl WireCode for CanonicalError {
    fn error_code(&self) -> ErrorCode {
        match self {
            CanonicalError::TooLarge { .. } => ErrorCode::TooLarge,
            CanonicalError::NonCanonical | CanonicalError::NotWordAligned { .. } => {
                ErrorCode::NonCanonical
            }
            CanonicalError::Encode(_) => ErrorCode::Internal,
            CanonicalError::Empty
            | CanonicalError::Malformed(_)
            | CanonicalError::Capability
            | CanonicalError::NestingTooDeep
            | CanonicalError::TraversalLimit => ErrorCode::Malformed,
        }
    }
}

impl ToWireError for CanonicalError {}

impl CanonicalError {
    fn from_frame(error: FrameError) -> Self {
        match error {
            FrameError::Capability => CanonicalError::Capability,
            FrameError::NestingTooDeep => CanonicalError::NestingTooDeep,
            FrameError::TraversalLimit => CanonicalError::TraversalLimit,
            other => CanonicalError::Malformed(match other {
                FrameError::Malformed(text) => text,
                other => other.to_string(),
            }),
        }
    }

    fn from_capnp(error: capnp::Error) -> Self {
        Self::from_frame(FrameError::from_capnp(error))
    }
}

/// Canonical bytes of a typed value (e.g. `post::Reader`).
///
/// The value is first copied into a scratch message to measure it; use
/// [`canonical_bytes_of_any`] or [`canonical_bytes_of_builder`] to skip that copy
/// when you hold an `any_pointer` or the builder itself.
pub fn canonical_bytes<T: Owned>(root: T::Reader<'_>) -> Result<Vec<u8>, CanonicalError> {
    let mut scratch = Builder::new_default();
    // Copying reads `root`, which may come from peer input: classify its errors.
    scratch
        .set_root::<T>(root)
        .map_err(CanonicalError::from_capnp)?;
    canonical_bytes_of_builder(&scratch)
}

/// Canonical bytes of the root of a message being built.
pub fn canonical_bytes_of_builder<A: Allocator>(
    message: &Builder<A>,
) -> Result<Vec<u8>, CanonicalError> {
    let root: capnp::any_pointer::Reader<'_> = message
        .get_root_as_reader()
        .map_err(|e| CanonicalError::Encode(e.to_string()))?;
    canonical_bytes_of_any(root)
}

/// Canonical bytes of whatever `root` points at (struct, list, blob or null).
///
/// Measures the value (`target_size`, which also walks and bounds-checks it),
/// sizes a single-segment builder to fit, and canonicalizes into it. Errors
/// reading `root` are classified like received bytes (`Malformed`,
/// `NestingTooDeep`, `TraversalLimit`, ...): a root read from peer input can fail
/// here, e.g. when its reader's traversal budget runs out.
pub fn canonical_bytes_of_any(
    root: capnp::any_pointer::Reader<'_>,
) -> Result<Vec<u8>, CanonicalError> {
    let size = root.target_size().map_err(CanonicalError::from_capnp)?;
    if size.cap_count != 0 {
        return Err(CanonicalError::Capability);
    }
    // One extra word for the root pointer. Canonicalization only ever drops
    // words, so the canonical copy fits in the measured size.
    let words = size.word_count.saturating_add(1);
    if words > MAX_CANONICAL_WORDS {
        return Err(CanonicalError::TooLarge {
            size: words.saturating_mul(WORD_BYTES as u64),
            max: MAX_CANONICAL_WORDS as usize * WORD_BYTES,
        });
    }
    // ≤ 2^29: fits u32 and satisfies HeapAllocator's own bound.
    let allocator = HeapAllocator::new().first_segment_words(words as u32);
    let mut message = Builder::new(allocator);
    // The builder is sized and capability-free, so a failure here comes from
    // reading `root` (e.g. its traversal budget: `total_size` does not charge
    // lists of void or of empty structs, the copy does).
    message
        .set_root_canonical(root)
        .map_err(CanonicalError::from_capnp)?;
    let segments = message.get_segments_for_output();
    match &segments[..] {
        [segment] => Ok(segment.to_vec()),
        other => Err(CanonicalError::Encode(format!(
            "canonical copy spans {} segments",
            other.len()
        ))),
    }
}

/// Reads canonical bytes received from a peer (or from storage).
///
/// In order: refuses input longer than `max_len` ([`CanonicalError::TooLarge`])
/// before copying it, empty input ([`CanonicalError::Empty`]) and input that is
/// not a whole number of words ([`CanonicalError::NotWordAligned`]); copies it
/// into an aligned single segment; walks the whole tree with the limits of
/// [`reader_options`] (`Malformed`, `Capability`, `NestingTooDeep`,
/// `TraversalLimit`); and checks that the bytes are exactly the canonical
/// encoding of their value ([`CanonicalError::NonCanonical`]).
///
/// The returned reader is fresh (full traversal budget, limits of
/// [`reader_options`]); read the root with `get_root::<T::Reader>()`.
///
/// Note: a list of void or of zero-sized structs occupies no words but is
/// charged one traversal word per element (as by every Cap'n Proto reader), so
/// canonical bytes holding such a list with more than about `4 × words + 64`
/// elements are refused with [`CanonicalError::TraversalLimit`]. distsoc
/// schemas never need such lists.
pub fn read_canonical(
    bytes: &[u8],
    max_len: usize,
) -> Result<Reader<OwnedSegments>, CanonicalError> {
    if bytes.len() > max_len {
        return Err(CanonicalError::TooLarge {
            size: bytes.len() as u64,
            max: max_len,
        });
    }
    if bytes.is_empty() {
        return Err(CanonicalError::Empty);
    }
    if !bytes.len().is_multiple_of(WORD_BYTES) {
        return Err(CanonicalError::NotWordAligned { len: bytes.len() });
    }
    let words = bytes.len() / WORD_BYTES;
    let mut lengths = SegmentLengthsBuilder::with_capacity(1);
    lengths
        .try_push_segment(words)
        .map_err(CanonicalError::from_capnp)?;
    let mut segments = lengths.into_owned_segments();
    segments.copy_from_slice(bytes);

    let checker = Reader::new(segments, reader_options(words));
    validate_message(&checker).map_err(CanonicalError::from_frame)?;
    if !checker.is_canonical().map_err(CanonicalError::from_capnp)? {
        return Err(CanonicalError::NonCanonical);
    }
    Ok(Reader::new(checker.into_segments(), reader_options(words)))
}

/// Whether `bytes` are valid canonical bytes of at most `max_len` bytes; the
/// error says why not. Same checks as [`read_canonical`].
pub fn check_canonical(bytes: &[u8], max_len: usize) -> Result<(), CanonicalError> {
    read_canonical(bytes, max_len).map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use capnp::message::AllocationStrategy;
    use capnp::schema_capnp::{node, value};
    use capnp::struct_list;

    fn sp(offset: i32, data: u16, ptrs: u16) -> u64 {
        (((offset as u32) << 2) as u64) | (u64::from(data) << 32) | (u64::from(ptrs) << 48)
    }

    fn lp(offset: i32, size: u8, count: u32) -> u64 {
        (((offset as u32) << 2) as u64 | 1) | (u64::from(size) << 32) | (u64::from(count) << 35)
    }

    fn fp(pad: u32, double: bool, segment: u32) -> u64 {
        (u64::from(pad) << 3) | (u64::from(double) << 2) | 2 | (u64::from(segment) << 32)
    }

    fn bytes(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    const MAX: usize = 1 << 24;

    fn data_value(len: usize) -> Builder<HeapAllocator> {
        let mut message = Builder::new_default();
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        message.init_root::<value::Builder<'_>>().set_data(&data);
        message
    }

    #[test]
    fn small_value_round_trips() {
        let message = data_value(5);
        let root = message.get_root_as_reader::<value::Reader<'_>>().unwrap();
        let canon = canonical_bytes::<value::Owned>(root).unwrap();
        // root pointer, Value (1 data word: the union tag; 1 pointer), 1 word of data.
        assert_eq!(canon.len(), 4 * 8);
        let reader = read_canonical(&canon, MAX).unwrap();
        let v = reader.get_root::<value::Reader<'_>>().unwrap();
        match v.which().unwrap() {
            value::Data(d) => assert_eq!(d.unwrap(), &[0, 1, 2, 3, 4]),
            _ => panic!("wrong union"),
        }
        // Idempotent.
        let again = canonical_bytes::<value::Owned>(v).unwrap();
        assert_eq!(again, canon);
        assert_eq!(canonical_bytes_of_builder(&message).unwrap(), canon);
    }

    #[test]
    fn large_values_fit_one_segment() {
        for len in [9 * 1024, 1024 * 1024] {
            let message = data_value(len);
            // Larger than the default 1024-word first segment: the source is
            // multi-segment.
            assert!(message.get_segments_for_output().len() > 1);
            let root = message.get_root_as_reader::<value::Reader<'_>>().unwrap();
            let canon = canonical_bytes::<value::Owned>(root).unwrap();
            assert_eq!(canon.len(), 3 * 8 + len.div_ceil(8) * 8, "{len}");
            read_canonical(&canon, MAX).unwrap();
            assert_eq!(canonical_bytes_of_builder(&message).unwrap(), canon);
        }
    }

    /// Documents the capnp-rust pitfall this module exists for: an unsized
    /// builder panics in `set_root_canonical` once the value exceeds the default
    /// 1024-word first segment.
    #[test]
    fn naive_set_root_canonical_panics_on_large_values() {
        let message = data_value(64 * 1024);
        let root = message.get_root_as_reader::<value::Reader<'_>>().unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut naive = Builder::new_default();
            let _ = naive.set_root_canonical::<value::Owned>(root);
        }));
        assert!(result.is_err(), "capnp now sizes canonical builders itself");
    }

    #[test]
    fn multi_segment_source_with_struct_lists() {
        // A node with many nested nodes, built in tiny fixed segments (far pointers
        // everywhere), canonicalizes to one segment and reads back.
        let mut message = Builder::new(
            HeapAllocator::new()
                .first_segment_words(2)
                .allocation_strategy(AllocationStrategy::FixedSize),
        );
        {
            let mut n = message.init_root::<node::Builder<'_>>();
            n.set_id(7);
            n.set_display_name("root");
            let mut nested = n.init_nested_nodes(50);
            for i in 0..50 {
                let mut e = nested.reborrow().get(i);
                e.set_id(u64::from(i));
                e.set_name(format!("n{i}").as_str());
            }
        }
        assert!(message.get_segments_for_output().len() > 10);
        let canon = canonical_bytes_of_builder(&message).unwrap();
        let reader = read_canonical(&canon, MAX).unwrap();
        let n = reader.get_root::<node::Reader<'_>>().unwrap();
        assert_eq!(n.get_id(), 7);
        let nested: struct_list::Reader<'_, node::nested_node::Owned> =
            n.get_nested_nodes().unwrap();
        assert_eq!(nested.len(), 50);
        assert_eq!(nested.get(49).get_name().unwrap().to_str().unwrap(), "n49");
    }

    #[test]
    fn hand_written_canonical_forms_are_accepted() {
        for words in [
            vec![0],                                        // null root
            vec![sp(-1, 0, 0)],                             // empty struct
            vec![sp(0, 1, 0), 5],                           // one data word
            vec![sp(0, 1, 1), 5, lp(0, 2, 3), 0x0063_6261], // data + "abc" bytes
            vec![lp(0, 7, 2), sp(2, 1, 0), 1, 2],           // list of two 1-word structs
        ] {
            let b = bytes(&words);
            read_canonical(&b, MAX).unwrap_or_else(|e| panic!("{words:x?}: {e}"));
            // And canonicalizing them is the identity.
            let reader = read_canonical(&b, MAX).unwrap();
            let root: capnp::any_pointer::Reader<'_> = reader.get_root().unwrap();
            assert_eq!(canonical_bytes_of_any(root).unwrap(), b);
        }
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        let cases: &[(&str, Vec<u64>)] = &[
            ("trailing zero data word", vec![sp(0, 2, 0), 5, 0]),
            (
                "trailing null pointer",
                vec![sp(0, 1, 2), 5, sp(1, 1, 0), 0, 9],
            ),
            ("unreferenced trailing word", vec![sp(0, 1, 0), 5, 0]),
            ("gap before the root object", vec![sp(1, 1, 0), 0, 5]),
            (
                "far pointer root (landing pad in the same segment)",
                vec![fp(1, false, 0), sp(0, 1, 0), 5],
            ),
            (
                "objects out of pre-order",
                // Root struct with two pointers to 1-word structs A(1), B(2);
                // B is laid out before A.
                vec![sp(0, 0, 2), sp(2, 1, 0), sp(0, 1, 0), 2, 1],
            ),
            (
                "struct list with trailing zero data word in every element",
                vec![lp(0, 7, 4), sp(2, 2, 0), 1, 0, 2, 0],
            ),
            (
                "struct list elements with pointers laid out out of order",
                // Two elements (0 data, 1 ptr) each pointing at a 1-word struct;
                // the second element's target comes first.
                vec![lp(0, 7, 2), sp(2, 0, 1), sp(2, 1, 0), sp(0, 1, 0), 2, 1],
            ),
        ];
        for (name, words) in cases {
            let b = bytes(words);
            assert_eq!(
                read_canonical(&b, MAX).err(),
                Some(CanonicalError::NonCanonical),
                "{name}"
            );
            // Canonicalizing fixes them.
            let mut segments = SegmentLengthsBuilder::with_capacity(1);
            segments.try_push_segment(words.len()).unwrap();
            let mut owned = segments.into_owned_segments();
            owned.copy_from_slice(&b);
            let reader = Reader::new(owned, reader_options(words.len()));
            let fixed = canonical_bytes_of_any(reader.get_root().unwrap()).unwrap();
            read_canonical(&fixed, MAX).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn malformed_and_bounded_input_is_refused() {
        assert_eq!(read_canonical(&[], MAX).err(), Some(CanonicalError::Empty));
        assert_eq!(
            read_canonical(&[0; 12], MAX).err(),
            Some(CanonicalError::NotWordAligned { len: 12 })
        );
        assert_eq!(
            read_canonical(&[0; 24], 16).err(),
            Some(CanonicalError::TooLarge { size: 24, max: 16 })
        );
        // Far pointer to a segment that does not exist.
        assert!(matches!(
            read_canonical(&bytes(&[fp(0, false, 1)]), MAX),
            Err(CanonicalError::Malformed(_))
        ));
        // Out-of-bounds struct.
        assert!(matches!(
            read_canonical(&bytes(&[sp(0, 4, 0), 1]), MAX),
            Err(CanonicalError::Malformed(_))
        ));
        assert_eq!(
            read_canonical(&bytes(&[3]), MAX).err(),
            Some(CanonicalError::Capability)
        );
        let mut deep = vec![sp(0, 0, 1); 65];
        deep[64] = sp(-1, 0, 0);
        assert_eq!(
            read_canonical(&bytes(&deep), MAX).err(),
            Some(CanonicalError::NestingTooDeep)
        );
        deep.truncate(64);
        deep[63] = sp(-1, 0, 0);
        read_canonical(&bytes(&deep), MAX).unwrap();
    }

    #[test]
    fn amplified_input_is_refused_before_the_canonical_check() {
        // Root struct with 64 pointers to one 64-word byte list.
        let mut w = vec![sp(0, 0, 64)];
        for i in 0..64 {
            w.push(lp(63 - i, 2, 512));
        }
        w.resize(1 + 64 + 64, 1);
        assert_eq!(
            read_canonical(&bytes(&w), MAX).err(),
            Some(CanonicalError::TraversalLimit)
        );
    }

    /// Lists of void or of zero-sized structs occupy no words but are charged
    /// one traversal word per element, so a long one exceeds the budget of a
    /// small canonical message: refused as amplification, by design.
    #[test]
    fn long_lists_of_empty_elements_are_amplification() {
        read_canonical(&bytes(&[lp(0, 0, 60)]), MAX).unwrap();
        assert_eq!(
            read_canonical(&bytes(&[lp(0, 0, 100)]), MAX).err(),
            Some(CanonicalError::TraversalLimit)
        );
        // 100 empty structs: one tag word.
        assert_eq!(
            read_canonical(&bytes(&[lp(0, 7, 0), sp(100, 0, 0)]), MAX).err(),
            Some(CanonicalError::TraversalLimit)
        );
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            CanonicalError::NonCanonical.error_code(),
            ErrorCode::NonCanonical
        );
        assert_eq!(
            CanonicalError::TooLarge { size: 1, max: 0 }.error_code(),
            ErrorCode::TooLarge
        );
        assert_eq!(CanonicalError::Empty.error_code(), ErrorCode::Malformed);
        assert_eq!(
            CanonicalError::Encode(String::new()).error_code(),
            ErrorCode::Internal
        );
    }
}
