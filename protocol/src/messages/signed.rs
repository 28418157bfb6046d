//! Signed objects: canonical bytes of a body struct plus an ed25519 signature.
//!
//! Every signed wire object (`SignedPost`, `SignedProfile`, ...) is a pair of
//! `Data` fields: the canonical bytes of a body struct and a 64-byte signature
//! over them, made with a purpose string for domain separation
//! ([`crate::sign::Purpose`]). [`Signed<T>`] is that pair as a domain value.
//!
//! Decoding ([`Signed::decode`]) bounds the bytes, rejects non-canonical
//! encodings and validates the body; it does **not** check the signature, so a
//! receiver can batch-verify many objects ([`verify_all`]). Call
//! [`Signed::verify`] (or [`verify_all`]) before trusting one.

use rand_core::{CryptoRng, RngCore};

use crate::codec::{self, Struct};
use crate::error::DecodeError;
use crate::ids::PostingId;
use crate::sign::{
    self, BatchError, PendingSignature, Purpose, SignatureError, SigningKey, SIGNATURE_LEN,
};

/// A struct that travels signed.
pub trait SignedBody: Struct + Clone {
    /// Purpose string of its signatures.
    const PURPOSE: Purpose;
    /// Largest canonical encoding accepted, bytes.
    const MAX_BYTES: usize;
    /// Field name of the bytes in the carrying struct (for errors).
    const FIELD: &'static str;
    /// The key that must have signed it.
    fn signer(&self) -> PostingId;
}

/// A body, its canonical bytes, and the signature over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    body: T,
    bytes: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

impl<T: SignedBody> Signed<T> {
    /// Signs `body` with `key`. The caller must use the key of
    /// [`SignedBody::signer`]; [`Signed::verify`] checks it.
    pub fn sign(body: T, key: &SigningKey) -> Self {
        let bytes = codec::canonical_of(&body);
        let signature = key.sign(T::PURPOSE, &bytes);
        Self {
            body,
            bytes,
            signature,
        }
    }

    /// Decodes from the two wire fields. Checks size, canonical form and the
    /// body's own rules; does not verify the signature.
    pub fn decode(
        bytes: capnp::Result<&[u8]>,
        signature: capnp::Result<&[u8]>,
    ) -> Result<Self, DecodeError> {
        let bytes = bytes?;
        let body = codec::from_canonical::<T>(T::FIELD, bytes, T::MAX_BYTES)?;
        let signature = codec::id::<SIGNATURE_LEN>("signature", signature)?;
        Ok(Self {
            body,
            bytes: bytes.to_vec(),
            signature,
        })
    }

    /// Assembles from parts already known to belong together (e.g. read back
    /// from one's own store); checks nothing.
    pub fn from_parts_unchecked(body: T, bytes: Vec<u8>, signature: [u8; SIGNATURE_LEN]) -> Self {
        Self {
            body,
            bytes,
            signature,
        }
    }

    /// Verifies the signature against the body's signer.
    pub fn verify(&self) -> Result<(), SignatureError> {
        self.pending_signature().verify()
    }

    /// The signature check [`Signed::verify`] makes, to verify later or in a
    /// batch.
    pub fn pending_signature(&self) -> PendingSignature<'_> {
        PendingSignature {
            public: self.body.signer().0,
            purpose: T::PURPOSE,
            message: std::borrow::Cow::Borrowed(&self.bytes),
            signature: self.signature,
        }
    }

    /// The validated body.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// The canonical bytes that were signed.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// BLAKE3-256 of the canonical bytes (the PostId, for posts).
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(&self.bytes).as_bytes()
    }
}

/// Verifies many signed objects of one type with one batch verification. The
/// verdict equals verifying each one ([`crate::sign::verify_batch`]).
pub fn verify_all<T: SignedBody, R: RngCore + CryptoRng + ?Sized>(
    items: &[&Signed<T>],
    rng: &mut R,
) -> Result<(), BatchError> {
    let batch: Vec<_> = items
        .iter()
        .map(|s| {
            (
                s.body.signer().0,
                T::PURPOSE,
                s.bytes.as_slice(),
                s.signature,
            )
        })
        .collect();
    sign::verify_batch(&batch, rng)
}

/// Implements [`Struct`] for a carrying struct `Signed*` whose two fields are
/// `$bytes` and `signature`, and the [`SignedBody`] trait for its body.
#[macro_export]
#[doc(hidden)]
macro_rules! signed_carrier {
    ($body:ty, $schema:path, $bytes_get:ident, $bytes_set:ident) => {
        impl $crate::codec::Struct for $crate::messages::signed::Signed<$body> {
            type Schema = $schema;

            fn read(
                r: <$schema as capnp::traits::Owned>::Reader<'_>,
            ) -> Result<Self, $crate::error::DecodeError> {
                Self::decode(r.$bytes_get(), r.get_signature())
            }

            fn write(&self, mut b: <$schema as capnp::traits::Owned>::Builder<'_>) {
                b.$bytes_set(self.bytes());
                b.set_signature(self.signature());
            }
        }
    };
}
