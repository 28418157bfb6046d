//! The two-pass strict verifier this crate used before the one-pass one in
//! [`super`]: every check done the straightforward way — each point decoded,
//! re-encoded and compared with its bytes, then decoded again by
//! [`ed25519_zebra`] for the equation.
//!
//! Kept, unchanged, as the reference that the one-pass verifier is tested
//! against (same verdict on every vector and on a large random and mutated
//! corpus: `protocol/tests/verify_agreement.rs`) and measured against
//! (`protocol/benches/protocol.rs`). Not for protocol use: it is slower and
//! gives the same verdicts.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};

use super::{signing_input, BatchError, BatchItem, SignatureError, PUBLIC_KEY_LEN, SIGNATURE_LEN};

/// The key checks: decode, small order, then canonical by re-encoding.
pub fn check_public_key(public: &[u8; PUBLIC_KEY_LEN]) -> Result<EdwardsPoint, SignatureError> {
    let point = CompressedEdwardsY(*public)
        .decompress()
        .ok_or(SignatureError::MalformedKey)?;
    if point.is_small_order() {
        return Err(SignatureError::SmallOrderKey);
    }
    if point.compress().to_bytes() != *public {
        return Err(SignatureError::NonCanonicalKey);
    }
    Ok(point)
}

/// The signature checks that are pure functions of the encodings (everything
/// but the equation), in the documented order.
fn precheck(
    public: &[u8; PUBLIC_KEY_LEN],
    sig: &[u8; SIGNATURE_LEN],
) -> Result<(), SignatureError> {
    check_public_key(public)?;
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig[32..]);
    if Option::<Scalar>::from(Scalar::from_canonical_bytes(s)).is_none() {
        return Err(SignatureError::NonCanonicalS);
    }
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    let r_point = CompressedEdwardsY(r)
        .decompress()
        .ok_or(SignatureError::Invalid)?;
    if r_point.compress().to_bytes() != r {
        return Err(SignatureError::NonCanonicalR);
    }
    Ok(())
}

/// [`super::verify_raw`], the two-pass way.
pub fn verify_raw(
    public: &[u8; PUBLIC_KEY_LEN],
    message: &[u8],
    sig: &[u8; SIGNATURE_LEN],
) -> Result<(), SignatureError> {
    precheck(public, sig)?;
    let vk = ed25519_zebra::VerificationKey::try_from(*public)
        .map_err(|_| SignatureError::MalformedKey)?;
    let signature = ed25519_zebra::Signature::from_bytes(sig);
    vk.verify(&signature, message)
        .map_err(|_| SignatureError::Invalid)
}

/// [`super::verify_batch`], the two-pass way (pre-checks, then
/// [`ed25519_zebra::batch`]).
pub fn verify_batch<R: RngCore + CryptoRng + ?Sized>(
    items: &[BatchItem<'_>],
    rng: &mut R,
) -> Result<(), BatchError> {
    let inputs: Vec<Vec<u8>> = items
        .iter()
        .map(|(_, purpose, msg, _)| signing_input(*purpose, msg))
        .collect();
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for (index, ((public, _, _, sig), input)) in items.iter().zip(&inputs).enumerate() {
        if let Err(error) = precheck(public, sig) {
            // An earlier item may fail its equation: report whichever fails
            // first in slice order, exactly as single verification would.
            return Err(first_failure(&items[..index], &inputs[..index])
                .unwrap_or(BatchError { index, error }));
        }
        let vk_bytes = ed25519_zebra::VerificationKeyBytes::from(*public);
        let signature = ed25519_zebra::Signature::from_bytes(sig);
        batch.queue((vk_bytes, signature, input));
    }
    if batch.verify(&mut *rng).is_ok() {
        return Ok(());
    }
    match first_failure(items, &inputs) {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Verifies items one by one and returns the first failure.
fn first_failure(items: &[BatchItem<'_>], inputs: &[Vec<u8>]) -> Option<BatchError> {
    items
        .iter()
        .zip(inputs)
        .enumerate()
        .find_map(|(index, ((public, _, _, sig), input))| {
            verify_raw(public, input, sig)
                .err()
                .map(|error| BatchError { index, error })
        })
}
