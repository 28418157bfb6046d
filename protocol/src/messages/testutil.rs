//! Round-trip helpers shared by the message modules' tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use core::fmt::Debug;

use proptest::prelude::*;

use crate::codec::{self, Struct, WireMessage};
use crate::error::DecodeError;
use crate::limits::reader_options;

/// Encodes `v` as a framed-style flat message and decodes it again with
/// the peer-input reader options.
pub(crate) fn wire_round_trip<T: Struct>(v: &T) -> Result<T, DecodeError> {
    let bytes = capnp::serialize::write_message_to_words(&codec::build(v));
    let mut slice = bytes.as_slice();
    let reader = capnp::serialize::read_message_from_flat_slice(
        &mut slice,
        reader_options(bytes.len() / 8),
    )?;
    let root: <T::Schema as capnp::traits::Owned>::Reader<'_> = reader.get_root()?;
    T::read(root)
}

/// Asserts that `v` survives a wire round trip unchanged.
pub(crate) fn assert_round_trip<T: Struct + PartialEq + Debug>(v: &T) -> Result<(), TestCaseError> {
    let back =
        wire_round_trip(v).map_err(|e| TestCaseError::fail(format!("decode failed: {e}")))?;
    prop_assert_eq!(&back, v);
    Ok(())
}

/// Decodes `v` (built as is) as a top-level message, version check first.
pub(crate) fn read_as_message<T: WireMessage>(v: &T) -> Result<T, DecodeError> {
    let b = codec::build(v);
    codec::read_message::<T, _>(&b.into_reader())
}

/// [`wire_round_trip`] that must succeed.
pub(crate) fn wire_round_trip_ok<T: Struct>(v: &T) -> T {
    wire_round_trip(v).expect("round trip decodes")
}

/// Wire round trip, canonical round trip, and canonical bytes stable under
/// re-encoding.
pub(crate) fn round_trips<T: Struct + PartialEq + Debug>(v: &T) -> Result<(), TestCaseError> {
    prop_assert_eq!(&wire_round_trip_ok(v), v);
    let canonical = codec::canonical_of(v);
    let back: T = codec::from_canonical("value", &canonical, usize::MAX).unwrap();
    prop_assert_eq!(&back, v);
    prop_assert_eq!(codec::canonical_of(&back), canonical);
    Ok(())
}
