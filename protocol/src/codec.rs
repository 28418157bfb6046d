//! The edge between generated Cap'n Proto readers/builders and validated domain
//! types.
//!
//! Every domain type implements [`Struct`]: `read` turns an *unchecked* generated
//! reader into a value whose every field has been bounds- and length-checked, and
//! `write` fills a generated builder. Top-level messages (the root struct of a
//! frame) also implement [`WireMessage`], which adds the message code and the
//! version check. Nothing outside this crate's message modules touches a raw
//! reader.
//!
//! The free functions here are the field readers every `read` uses: fixed-length
//! ids, bounded bytes and text, bounded lists, required and optional struct
//! fields, struct lists. Each checks its limit from the
//! pointer's declared length *before* copying anything.
//!
//! # Secret plaintext
//!
//! [`canonical_of`] and [`from_canonical`] leave copies of the value in freed
//! Cap'n Proto segments. For values that are secret — the plaintext
//! `PostBody` of an encrypted post or DM — use [`canonical_secret`] and
//! [`from_canonical_secret`]: every buffer they use on the way (the builder's
//! segment, the canonical copy, the reader's segments) is wiped before it is
//! freed, and the canonical bytes come back in a [`Zeroizing`] buffer. (The
//! identity bundle has its own scrubbing path,
//! `messages::identity::IdentityBundle::canonical_bytes`.)

use capnp::message::{Builder, HeapAllocator, Reader, ReaderSegments, ScratchSpaceHeapAllocator};
use capnp::serialize::OwnedSegments;
use capnp::traits::Owned;
use zeroize::{Zeroize, Zeroizing};

use crate::codes::MessageCode;
use crate::error::DecodeError;
use crate::ids::{NodeId, PostId};
use crate::limits::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// A validated domain type backed by one schema struct.
pub trait Struct: Sized {
    /// The generated struct (`foo_capnp::bar::Owned`).
    type Schema: Owned;

    /// Reads and validates from an unchecked reader.
    fn read(r: <Self::Schema as Owned>::Reader<'_>) -> Result<Self, DecodeError>;

    /// Writes into a builder.
    fn write(&self, b: <Self::Schema as Owned>::Builder<'_>);
}

/// A top-level message: the root struct of a frame, introduced by a code.
pub trait WireMessage: Struct {
    /// The message code that precedes it.
    const CODE: MessageCode;

    /// The `version` field (every top-level message has one at ordinal 0).
    fn version(&self) -> u16;

    /// Reads only the `version` field from an unchecked reader, so the version
    /// check runs before the rest of the message is looked at.
    fn read_version(r: &<Self::Schema as Owned>::Reader<'_>) -> u16;
}

/// Checks a message version against the range this implementation speaks.
pub fn check_version(got: u16) -> Result<(), DecodeError> {
    if (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&got) {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedVersion {
            got,
            min: MIN_PROTOCOL_VERSION,
            max: PROTOCOL_VERSION,
        })
    }
}

/// Reads a top-level message from a message reader: version first, then the
/// whole struct.
pub fn read_message<M: WireMessage, S: ReaderSegments>(msg: &Reader<S>) -> Result<M, DecodeError> {
    let root: <M::Schema as Owned>::Reader<'_> = msg.get_root()?;
    check_version(M::read_version(&root))?;
    M::read(root)
}

/// Encodes a top-level message as a frame (code byte, segment table,
/// segments) without naming a Cap'n Proto type. Fails if the message exceeds
/// its code's frame cap.
pub fn to_frame<M: WireMessage>(msg: &M) -> Result<Vec<u8>, crate::frame::FrameError> {
    crate::frame::encode_frame(M::CODE, &build(msg))
}

/// Decodes a received, validated frame as `M` (version first, then the whole
/// struct). The caller has checked that the frame's code is `M::CODE` (the
/// frame reader refuses other codes); this reads the message whatever it is.
pub fn from_frame<M: WireMessage>(frame: &crate::frame::Frame) -> Result<M, DecodeError> {
    read_message::<M, _>(&frame.reader())
}

/// Builds a message with `value` as its root.
pub(crate) fn build<T: Struct>(value: &T) -> Builder<HeapAllocator> {
    let mut b = Builder::new_default();
    value.write(b.init_root::<<T::Schema as Owned>::Builder<'_>>());
    b
}

/// Reads a value back from a builder (used by tests for round trips).
#[cfg(test)]
pub(crate) fn reread<T: Struct>(b: &Builder<HeapAllocator>) -> Result<T, DecodeError> {
    let r: <T::Schema as Owned>::Reader<'_> = b.get_root_as_reader()?;
    T::read(r)
}

/// A fixed-length id field; absent or empty is [`DecodeError::Missing`].
pub(crate) fn id<const N: usize>(
    field: &'static str,
    data: capnp::Result<&[u8]>,
) -> Result<[u8; N], DecodeError> {
    let data = data?;
    if data.is_empty() {
        return Err(DecodeError::Missing(field));
    }
    <[u8; N]>::try_from(data).map_err(|_| DecodeError::BadLength {
        field,
        expected: N,
        got: data.len(),
    })
}

/// An optional fixed-length id field: empty means `None`.
pub(crate) fn opt_id<const N: usize>(
    field: &'static str,
    data: capnp::Result<&[u8]>,
) -> Result<Option<[u8; N]>, DecodeError> {
    let data = data?;
    if data.is_empty() {
        return Ok(None);
    }
    <[u8; N]>::try_from(data)
        .map(Some)
        .map_err(|_| DecodeError::BadLength {
            field,
            expected: N,
            got: data.len(),
        })
}

/// A variable-length byte field of at most `max` bytes.
pub(crate) fn bytes(
    field: &'static str,
    data: capnp::Result<&[u8]>,
    max: usize,
) -> Result<Vec<u8>, DecodeError> {
    let data = data?;
    if data.len() > max {
        return Err(DecodeError::TooLong {
            field,
            max,
            got: data.len(),
        });
    }
    Ok(data.to_vec())
}

/// A non-empty variable-length byte field of at most `max` bytes.
pub(crate) fn nonempty_bytes(
    field: &'static str,
    data: capnp::Result<&[u8]>,
    max: usize,
) -> Result<Vec<u8>, DecodeError> {
    let v = bytes(field, data, max)?;
    if v.is_empty() {
        return Err(DecodeError::Missing(field));
    }
    Ok(v)
}

/// A UTF-8 text field of at most `max` bytes (absent = empty).
pub(crate) fn text(
    field: &'static str,
    t: capnp::Result<capnp::text::Reader<'_>>,
    max: usize,
) -> Result<String, DecodeError> {
    let t = t?;
    let raw = t.as_bytes();
    if raw.len() > max {
        return Err(DecodeError::TooLong {
            field,
            max,
            got: raw.len(),
        });
    }
    core::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| DecodeError::BadUtf8(field))
}

/// Checks a list length against its limit before any element is read.
pub fn check_len(field: &'static str, len: u32, max: usize) -> Result<(), DecodeError> {
    let len = len as usize;
    if len > max {
        return Err(DecodeError::TooMany {
            field,
            max,
            got: len,
        });
    }
    Ok(())
}

/// A list of structs of at most `max` elements, each read with `f` (normally
/// the element type's [`Struct::read`]).
pub(crate) fn list<'a, S, T, F>(
    field: &'static str,
    l: capnp::Result<capnp::struct_list::Reader<'a, S>>,
    max: usize,
    f: F,
) -> Result<Vec<T>, DecodeError>
where
    S: capnp::traits::OwnedStruct,
    F: FnMut(S::Reader<'a>) -> Result<T, DecodeError>,
{
    let l = l?;
    check_len(field, l.len(), max)?;
    l.iter().map(f).collect()
}

/// A list of fixed-length ids, of at most `max` elements.
pub(crate) fn id_list<const N: usize>(
    field: &'static str,
    l: capnp::Result<capnp::data_list::Reader<'_>>,
    max: usize,
) -> Result<Vec<[u8; N]>, DecodeError> {
    let l = l?;
    check_len(field, l.len(), max)?;
    l.iter().map(|d| id::<N>(field, d)).collect()
}

/// A list of bounded texts.
pub(crate) fn text_list(
    field: &'static str,
    l: capnp::Result<capnp::text_list::Reader<'_>>,
    max_items: usize,
    max_bytes: usize,
) -> Result<Vec<String>, DecodeError> {
    let l = l?;
    check_len(field, l.len(), max_items)?;
    l.iter().map(|t| text(field, t, max_bytes)).collect()
}

/// Writes a list of ids into a data-list builder.
pub(crate) fn write_ids<T: AsRef<[u8]>>(mut b: capnp::data_list::Builder<'_>, ids: &[T]) {
    for (i, id) in ids.iter().enumerate() {
        b.set(i as u32, id.as_ref());
    }
}

/// Length of a collection as a Cap'n Proto list length (saturating).
pub fn len32<T>(v: &[T]) -> u32 {
    u32::try_from(v.len()).unwrap_or(u32::MAX)
}

/// Reads a required struct field: absent is [`DecodeError::Missing`].
pub(crate) fn required<R, T>(
    field: &'static str,
    has: bool,
    r: capnp::Result<R>,
    f: impl FnOnce(R) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    if !has {
        return Err(DecodeError::Missing(field));
    }
    f(r?)
}

/// Reads an optional struct field: absent is `None`.
pub(crate) fn optional<R, T>(
    has: bool,
    r: capnp::Result<R>,
    f: impl FnOnce(R) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    if has {
        f(r?).map(Some)
    } else {
        Ok(None)
    }
}

/// A list of 32-byte NodeIds of at most `max` entries.
pub(crate) fn node_ids(
    field: &'static str,
    l: capnp::Result<capnp::data_list::Reader<'_>>,
    max: usize,
) -> Result<Vec<NodeId>, DecodeError> {
    Ok(id_list::<32>(field, l, max)?
        .into_iter()
        .map(NodeId)
        .collect())
}

/// A list of 32-byte PostIds of at most `max` entries.
pub(crate) fn post_ids(
    field: &'static str,
    l: capnp::Result<capnp::data_list::Reader<'_>>,
    max: usize,
) -> Result<Vec<PostId>, DecodeError> {
    Ok(id_list::<32>(field, l, max)?
        .into_iter()
        .map(PostId)
        .collect())
}

/// Reads a list of struct values with their [`Struct::read`].
pub(crate) fn structs<'a, T: Struct>(
    field: &'static str,
    l: capnp::Result<capnp::struct_list::Reader<'a, T::Schema>>,
    max: usize,
) -> Result<Vec<T>, DecodeError>
where
    T::Schema: capnp::traits::OwnedStruct,
    <T::Schema as capnp::traits::OwnedStruct>::Reader<'a>:
        Into<<T::Schema as capnp::traits::Owned>::Reader<'a>>,
{
    list(field, l, max, |r| T::read(r.into()))
}

/// Writes a list of struct values into a struct-list builder.
pub(crate) fn write_structs<T>(mut b: capnp::struct_list::Builder<'_, T::Schema>, items: &[T])
where
    T: Struct,
    T::Schema: capnp::traits::OwnedStruct,
    for<'b> <T::Schema as capnp::traits::OwnedStruct>::Builder<'b>:
        Into<<T::Schema as capnp::traits::Owned>::Builder<'b>>,
{
    for (i, item) in items.iter().enumerate() {
        item.write(b.reborrow().get(i as u32).into());
    }
}

/// The canonical bytes of `value`: the single segment of its Cap'n Proto
/// canonical encoding, without a segment table. These are the bytes that are
/// signed and hashed (PostId = BLAKE3 of a post's canonical bytes).
pub fn canonical_of<T: Struct>(value: &T) -> Vec<u8> {
    let b = build(value);
    // Canonicalizing a message we just built cannot fail: it is well formed and
    // within limits (capnp sizes the output segment from the root's total size).
    match b.into_reader().canonicalize() {
        Ok(words) => capnp::Word::words_to_bytes(&words).to_vec(),
        Err(_) => Vec::new(),
    }
}

/// [`canonical_of`] for a secret value: the canonical bytes in a buffer wiped
/// on drop, built in scratch space that is wiped before it is freed.
///
/// `max` bounds the canonical size (the value's limit, e.g.
/// `limits::MAX_POST_BYTES`); the scratch space is sized from it so that the
/// builder never spills into an unwiped heap segment. A value over `max` is
/// [`DecodeError::TooLong`].
pub fn canonical_secret<T: Struct>(
    field: &'static str,
    value: &T,
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
    // Builder layout = canonical layout + the root pointer + slack for the
    // alignment of a builder's data sections; twice `max` is ample.
    let words = max.saturating_mul(2) / 8 + 64;
    // Both are wiped by `canonical_in` before it returns.
    let mut scratch = capnp::Word::allocate_zeroed_vec(words);
    let mut canonical = capnp::Word::allocate_zeroed_vec(words);
    canonical_in(field, value, max, &mut scratch, &mut canonical)
}

/// [`canonical_secret`] with caller-provided scratch (`scratch` for the
/// builder, `canonical` for the canonical copy); both are all zeros again when
/// this returns.
fn canonical_in<T: Struct>(
    field: &'static str,
    value: &T,
    max: usize,
    scratch: &mut [capnp::Word],
    canonical: &mut [capnp::Word],
) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
    let too_long = |got: usize| DecodeError::TooLong { field, max, got };
    let result = (|| {
        let mut b = Builder::new(ScratchSpaceHeapAllocator::new(
            capnp::Word::words_to_bytes_mut(scratch),
        ));
        value.write(b.init_root::<<T::Schema as Owned>::Builder<'_>>());
        if b.get_segments_for_output().len() != 1 {
            // Spilled past the scratch space: far over `max`.
            return Err(too_long(usize::MAX));
        }
        let root = b.get_root_as_reader::<<T::Schema as Owned>::Reader<'_>>()?;
        let mut c = Builder::new(ScratchSpaceHeapAllocator::new(
            capnp::Word::words_to_bytes_mut(canonical),
        ));
        c.set_root_canonical::<T::Schema>(root)?;
        let segments = c.get_segments_for_output();
        match &segments[..] {
            [only] if only.len() <= max => Ok(Zeroizing::new(only.to_vec())),
            [only] => Err(too_long(only.len())),
            _ => Err(too_long(usize::MAX)),
        }
    })();
    // The builders are gone; wipe what they wrote.
    capnp::Word::words_to_bytes_mut(scratch).zeroize();
    capnp::Word::words_to_bytes_mut(canonical).zeroize();
    result
}

/// [`from_canonical`] for a secret value: the reader's copy of `bytes` is
/// wiped before it is freed (the caller owns `bytes` and the value).
pub fn from_canonical_secret<T: Struct>(
    field: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<T, DecodeError> {
    read_then_wipe(field, bytes, max).0
}

/// [`from_canonical_secret`], also returning the reader's (wiped) segments.
fn read_then_wipe<T: Struct>(
    field: &'static str,
    bytes: &[u8],
    max: usize,
) -> (Result<T, DecodeError>, Option<OwnedSegments>) {
    let reader = match canonical_reader(field, bytes, max) {
        Ok(r) => r,
        Err(e) => return (Err(e), None),
    };
    let value = reader
        .get_root::<<T::Schema as Owned>::Reader<'_>>()
        .map_err(DecodeError::from)
        .and_then(T::read);
    let mut segments = reader.into_segments();
    let words: &mut [u8] = &mut segments;
    words.zeroize();
    (value, Some(segments))
}

/// Decodes canonical bytes produced by [`canonical_of`]: bounds them by `max`
/// bytes first, walks the whole message under the reader limits and rejects
/// any encoding that is not canonical ([`crate::canonical::read_canonical`]),
/// then validates the value.
pub fn from_canonical<T: Struct>(
    field: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<T, DecodeError> {
    let reader = canonical_reader(field, bytes, max)?;
    let root: <T::Schema as Owned>::Reader<'_> = reader.get_root()?;
    T::read(root)
}

/// [`crate::canonical::read_canonical`] with its errors as [`DecodeError`]s
/// naming `field`.
fn canonical_reader(
    field: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<Reader<OwnedSegments>, DecodeError> {
    use crate::canonical::{read_canonical, CanonicalError};
    read_canonical(bytes, max).map_err(|e| match e {
        CanonicalError::TooLarge { .. } => DecodeError::TooLong {
            field,
            max,
            got: bytes.len(),
        },
        CanonicalError::Empty => DecodeError::Missing(field),
        CanonicalError::NonCanonical | CanonicalError::NotWordAligned { .. } => {
            DecodeError::NonCanonical(field)
        }
        other => DecodeError::Capnp(format!("{field}: {other}")),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::messages::content::{PostBody, MAX_POST_BYTES};

    fn body(text: &str) -> PostBody {
        PostBody {
            text: text.into(),
            attachments: Vec::new(),
            rotation: None,
            archive: None,
            group: None,
        }
    }

    fn all_zero(words: &[capnp::Word]) -> bool {
        capnp::Word::words_to_bytes(words).iter().all(|b| *b == 0)
    }

    /// The secret encoder gives exactly the canonical bytes, and both of its
    /// working buffers are wiped when it returns.
    #[test]
    fn secret_encoding_is_canonical_and_wipes_its_buffers() {
        for text in ["", "attack at dawn", &"s".repeat(10_000)] {
            let v = body(text);
            let mut scratch = capnp::Word::allocate_zeroed_vec(4096);
            let mut canonical = capnp::Word::allocate_zeroed_vec(4096);
            let out =
                canonical_in("body", &v, MAX_POST_BYTES, &mut scratch, &mut canonical).unwrap();
            assert_eq!(out.as_slice(), canonical_of(&v).as_slice());
            assert!(all_zero(&scratch) && all_zero(&canonical), "buffers wiped");
            assert_eq!(canonical_secret("body", &v, MAX_POST_BYTES).unwrap(), out);
        }
    }

    /// Over the bound, or too big for the scratch space: a typed error, and
    /// the buffers are still wiped.
    #[test]
    fn secret_encoding_refuses_values_over_the_bound() {
        let v = body(&"x".repeat(3000));
        let mut scratch = capnp::Word::allocate_zeroed_vec(4096);
        let mut canonical = capnp::Word::allocate_zeroed_vec(4096);
        let e = canonical_in("body", &v, 1024, &mut scratch, &mut canonical).unwrap_err();
        assert!(
            matches!(
                e,
                DecodeError::TooLong {
                    field: "body",
                    max: 1024,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(all_zero(&scratch) && all_zero(&canonical));
        let mut small = capnp::Word::allocate_zeroed_vec(64);
        let e = canonical_in("body", &v, MAX_POST_BYTES, &mut small, &mut canonical).unwrap_err();
        assert!(matches!(e, DecodeError::TooLong { .. }), "{e:?}");
        assert!(all_zero(&small) && all_zero(&canonical));
    }

    /// The secret decoder returns the value and wipes the reader's copy.
    #[test]
    fn secret_decoding_wipes_the_reader_copy() {
        let v = body("the plaintext");
        let bytes = canonical_of(&v);
        let (back, segments) = read_then_wipe::<PostBody>("body", &bytes, MAX_POST_BYTES);
        assert_eq!(back.unwrap(), v);
        let segments = segments.unwrap();
        let copy: &[u8] = &segments;
        assert_eq!(copy.len(), bytes.len());
        assert!(copy.iter().all(|b| *b == 0), "reader copy wiped");
        assert_eq!(
            from_canonical_secret::<PostBody>("body", &bytes, MAX_POST_BYTES).unwrap(),
            v
        );
        assert!(matches!(
            from_canonical_secret::<PostBody>("body", &bytes, 8),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
