//! Envelope encryption of posts and DMs (DESIGN §5, roadmap D-1 and D-3).
//!
//! # Construction
//!
//! 1. A random 32-byte content-encryption key ([`Cek`]) seals the content with
//!    ChaCha20-Poly1305 (RFC 8439), a random 12-byte nonce and the associated
//!    data [`CONTENT_AAD`] = `"distsoc/2/content"` ([`seal_content`]). The
//!    sealed content is `ciphertext ‖ tag` (plaintext length + 16 bytes); the
//!    nonce travels next to it.
//! 2. Per post, one ephemeral X25519 key `eph` (32 random secret bytes,
//!    clamped as X25519 does). Its public key `eph_pub` travels with the post.
//! 3. For every recipient — an ed25519 public key: a NodeId, a PostingId or a
//!    group id — the recipient's X25519 key `R` is the Montgomery form of that
//!    ed25519 key (rejecting malformed, non-canonical and small-order keys, see
//!    [`crate::sign::x25519_public_from_ed25519`]), then
//!    - `ss = X25519(eph, R)`, rejected if all-zero;
//!    - `KEK = BLAKE3.derive_key("distsoc/2 envelope kek", ss ‖ eph_pub ‖ R)`;
//!    - `wrapped = ChaCha20-Poly1305(KEK, nonce = 0^12, aad = recipient
//!      ed25519 id, CEK)`, 48 bytes. The all-zero nonce is safe because a KEK
//!      is used exactly once: it is unique per (ephemeral key, recipient).
//!
//!    A [`WrappedKey`] is `recipient (32) ‖ wrapped (48)` = 80 bytes on the
//!    wire.
//! 4. A recipient finds the entry whose `recipient` equals its own public key
//!    and reverses the steps with its X25519 secret (derived from its ed25519
//!    seed, [`crate::sign::x25519_secret_from_seed`]).
//!
//! **The ephemeral secret must be fresh for every envelope.** Reusing it with
//! the same recipient reuses the KEK (harmless only if the CEK is the same).
//!
//! # Groups (D-3)
//!
//! A group is an ed25519 key pair; the group id is its public key. A post to a
//! group wraps its CEK once, with recipient = group id. Members receive the
//! group's 32-byte secret seed wrapped for them with the very same
//! construction ([`wrap_group_seed`] / [`unwrap_group_seed`]), and open group
//! posts with [`unwrap_cek_with_group`].

use core::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::sign::{self, SigningKey};

/// Associated data of the content AEAD.
pub const CONTENT_AAD: &[u8] = b"distsoc/2/content";

/// BLAKE3 `derive_key` context string of the key-encryption key.
pub const KEK_CONTEXT: &str = "distsoc/2 envelope kek";

/// Length of a content-encryption key.
pub const CEK_LEN: usize = 32;

/// Length of a ChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 12;

/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// Length of a wrapped 32-byte key (ciphertext + tag).
pub const WRAPPED_LEN: usize = CEK_LEN + TAG_LEN;

/// Length of a [`WrappedKey`] on the wire (recipient id + wrapped key).
pub const WRAPPED_KEY_LEN: usize = 32 + WRAPPED_LEN;

/// Why an envelope operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EnvelopeError {
    /// None of the wrapped keys is addressed to our public key.
    #[error("not a recipient of this envelope")]
    NotARecipient,
    /// Input has the wrong length or shape (e.g. a wrapped key that is not 80
    /// bytes, sealed content shorter than a tag).
    #[error("malformed envelope data")]
    Malformed,
    /// Authentication failed: wrong key, or the data was tampered with.
    #[error("decryption failed (wrong key or tampered data)")]
    DecryptFailed,
    /// A recipient key or the ephemeral key is unusable: not a curve point,
    /// not canonical, of small order, or the shared secret is all-zero.
    #[error("invalid recipient or ephemeral key")]
    InvalidKey,
    /// No recipients were given.
    #[error("an envelope needs at least one recipient")]
    NoRecipients,
    /// The same recipient appears twice in the recipient list.
    #[error("duplicate recipient")]
    DuplicateRecipient,
    /// An unwrapped group seed does not belong to the expected group id.
    #[error("unwrapped group seed does not match the group id")]
    GroupMismatch,
    /// The AEAD refused to encrypt (only for inputs beyond ChaCha20-Poly1305's
    /// 256 GiB limit).
    #[error("encryption failed")]
    EncryptFailed,
}

impl EnvelopeError {
    /// Stable, language-neutral name of the error, as used in the
    /// `expected.error` field of `conformance/vectors/*.json`.
    pub const fn name(&self) -> &'static str {
        match self {
            EnvelopeError::NotARecipient => "notARecipient",
            EnvelopeError::Malformed => "malformed",
            EnvelopeError::DecryptFailed => "decryptFailed",
            EnvelopeError::InvalidKey => "invalidKey",
            EnvelopeError::NoRecipients => "noRecipients",
            EnvelopeError::DuplicateRecipient => "duplicateRecipient",
            EnvelopeError::GroupMismatch => "groupMismatch",
            EnvelopeError::EncryptFailed => "encryptFailed",
        }
    }
}

/// ChaCha20-Poly1305 (RFC 8439) encryption: returns `ciphertext ‖ tag`.
/// The one AEAD primitive used by envelopes, FoF slots and passphrase
/// sealing.
pub fn aead_seal(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    ChaCha20Poly1305::new(&(*key).into())
        .encrypt(
            &(*nonce).into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| EnvelopeError::EncryptFailed)
}

/// ChaCha20-Poly1305 (RFC 8439) decryption of `ciphertext ‖ tag`.
pub fn aead_open(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    if sealed.len() < TAG_LEN {
        return Err(EnvelopeError::Malformed);
    }
    ChaCha20Poly1305::new(&(*key).into())
        .decrypt(&(*nonce).into(), Payload { msg: sealed, aad })
        .map_err(|_| EnvelopeError::DecryptFailed)
}

/// A content-encryption key. Zeroized on drop; `Debug` does not print it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Cek([u8; CEK_LEN]);

impl Cek {
    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: [u8; CEK_LEN]) -> Self {
        Cek(bytes)
    }

    /// A fresh random key.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = [0u8; CEK_LEN];
        rng.fill_bytes(&mut k);
        Cek(k)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; CEK_LEN] {
        &self.0
    }
}

impl fmt::Debug for Cek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cek(..)")
    }
}

/// Seals content under `cek`: ChaCha20-Poly1305 with [`CONTENT_AAD`].
/// Returns `ciphertext ‖ tag`.
pub fn seal_content(
    cek: &Cek,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    aead_seal(cek.as_bytes(), nonce, CONTENT_AAD, plaintext)
}

/// Opens content sealed with [`seal_content`].
pub fn open_content(
    cek: &Cek,
    nonce: &[u8; NONCE_LEN],
    sealed: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    aead_open(cek.as_bytes(), nonce, CONTENT_AAD, sealed)
}

/// One recipient's copy of the key: 80 bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WrappedKey {
    /// The recipient's ed25519 public key (NodeId, PostingId or group id).
    pub recipient: [u8; 32],
    /// The key sealed under the recipient's KEK (ciphertext ‖ tag).
    pub wrapped: [u8; WRAPPED_LEN],
}

impl WrappedKey {
    /// Wire form: `recipient ‖ wrapped`.
    pub fn to_bytes(&self) -> [u8; WRAPPED_KEY_LEN] {
        let mut out = [0u8; WRAPPED_KEY_LEN];
        out[..32].copy_from_slice(&self.recipient);
        out[32..].copy_from_slice(&self.wrapped);
        out
    }

    /// Parses the wire form; anything but exactly 80 bytes is
    /// [`EnvelopeError::Malformed`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() != WRAPPED_KEY_LEN {
            return Err(EnvelopeError::Malformed);
        }
        let mut recipient = [0u8; 32];
        recipient.copy_from_slice(&bytes[..32]);
        let mut wrapped = [0u8; WRAPPED_LEN];
        wrapped.copy_from_slice(&bytes[32..]);
        Ok(WrappedKey { recipient, wrapped })
    }
}

/// The public key of an ephemeral X25519 secret (after clamping).
pub fn ephemeral_public(eph_secret: &[u8; 32]) -> [u8; 32] {
    let secret = x25519_dalek::StaticSecret::from(*eph_secret);
    x25519_dalek::PublicKey::from(&secret).to_bytes()
}

/// `BLAKE3.derive_key(KEK_CONTEXT, ss ‖ eph_pub ‖ recipient_x25519)`.
fn derive_kek(ss: &[u8; 32], eph_pub: &[u8; 32], recipient_x: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut hasher = blake3::Hasher::new_derive_key(KEK_CONTEXT);
    hasher.update(ss);
    hasher.update(eph_pub);
    hasher.update(recipient_x);
    Zeroizing::new(*hasher.finalize().as_bytes())
}

/// Wraps any 32-byte secret (a CEK or a group seed) for each recipient.
fn wrap_secret(
    secret: &[u8; 32],
    eph_secret: &[u8; 32],
    recipients: &[[u8; 32]],
) -> Result<([u8; 32], Vec<WrappedKey>), EnvelopeError> {
    if recipients.is_empty() {
        return Err(EnvelopeError::NoRecipients);
    }
    let mut seen = std::collections::HashSet::with_capacity(recipients.len());
    if !recipients.iter().all(|r| seen.insert(r)) {
        return Err(EnvelopeError::DuplicateRecipient);
    }
    let eph = x25519_dalek::StaticSecret::from(*eph_secret);
    let eph_pub = x25519_dalek::PublicKey::from(&eph).to_bytes();
    let mut out = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        let rx =
            sign::x25519_public_from_ed25519(recipient).map_err(|_| EnvelopeError::InvalidKey)?;
        let ss = eph.diffie_hellman(&x25519_dalek::PublicKey::from(rx));
        if !ss.was_contributory() {
            return Err(EnvelopeError::InvalidKey);
        }
        let kek = derive_kek(ss.as_bytes(), &eph_pub, &rx);
        let sealed = aead_seal(&kek, &[0u8; NONCE_LEN], recipient, secret)?;
        let mut wrapped = [0u8; WRAPPED_LEN];
        if sealed.len() != WRAPPED_LEN {
            return Err(EnvelopeError::EncryptFailed);
        }
        wrapped.copy_from_slice(&sealed);
        out.push(WrappedKey {
            recipient: *recipient,
            wrapped,
        });
    }
    Ok((eph_pub, out))
}

/// Unwraps the 32-byte secret addressed to the holder of `my_seed`.
fn unwrap_secret(
    my_seed: &[u8; 32],
    eph_pub: &[u8; 32],
    wrapped: &[WrappedKey],
) -> Result<Zeroizing<[u8; 32]>, EnvelopeError> {
    let me = SigningKey::from_seed(my_seed);
    let my_pub = me.public();
    let entry = wrapped
        .iter()
        .find(|w| w.recipient == my_pub)
        .ok_or(EnvelopeError::NotARecipient)?;
    let my_x = me.x25519_secret();
    let my_x_pub = x25519_dalek::PublicKey::from(&my_x).to_bytes();
    let ss = my_x.diffie_hellman(&x25519_dalek::PublicKey::from(*eph_pub));
    if !ss.was_contributory() {
        return Err(EnvelopeError::InvalidKey);
    }
    let kek = derive_kek(ss.as_bytes(), eph_pub, &my_x_pub);
    let plain = Zeroizing::new(aead_open(&kek, &[0u8; NONCE_LEN], &my_pub, &entry.wrapped)?);
    if plain.len() != 32 {
        return Err(EnvelopeError::Malformed);
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&plain);
    Ok(out)
}

/// Wraps `cek` for every recipient with the ephemeral X25519 secret
/// `eph_secret` (32 fresh random bytes per envelope). Returns the ephemeral
/// public key and one [`WrappedKey`] per recipient, in input order.
///
/// Recipients are ed25519 public keys; an empty list, a duplicate, or a key
/// that is malformed, non-canonical or of small order is rejected.
pub fn wrap_for_recipients(
    cek: &Cek,
    eph_secret: &[u8; 32],
    recipients: &[[u8; 32]],
) -> Result<([u8; 32], Vec<WrappedKey>), EnvelopeError> {
    wrap_secret(cek.as_bytes(), eph_secret, recipients)
}

/// Recovers the CEK addressed to the ed25519 key whose seed is `my_seed`:
/// finds the entry whose `recipient` is our public key and unwraps it.
pub fn unwrap_cek(
    my_seed: &[u8; 32],
    eph_pub: &[u8; 32],
    wrapped: &[WrappedKey],
) -> Result<Cek, EnvelopeError> {
    let secret = unwrap_secret(my_seed, eph_pub, wrapped)?;
    Ok(Cek::from_bytes(*secret))
}

/// Wraps a group's 32-byte secret seed for its members (same construction as
/// [`wrap_for_recipients`], the seed in place of a CEK).
pub fn wrap_group_seed(
    group_seed: &[u8; 32],
    eph_secret: &[u8; 32],
    members: &[[u8; 32]],
) -> Result<([u8; 32], Vec<WrappedKey>), EnvelopeError> {
    wrap_secret(group_seed, eph_secret, members)
}

/// Recovers a group's signing key from a group key wrap addressed to us and
/// checks that it belongs to `group_id` ([`EnvelopeError::GroupMismatch`]
/// otherwise).
pub fn unwrap_group_seed(
    my_seed: &[u8; 32],
    group_id: &[u8; 32],
    eph_pub: &[u8; 32],
    wrapped: &[WrappedKey],
) -> Result<SigningKey, EnvelopeError> {
    let seed = unwrap_secret(my_seed, eph_pub, wrapped)?;
    let group = SigningKey::from_seed(&seed);
    if group.public() != *group_id {
        return Err(EnvelopeError::GroupMismatch);
    }
    Ok(group)
}

/// Recovers the CEK of a post addressed to a group, with the group's seed.
pub fn unwrap_cek_with_group(
    group_seed: &[u8; 32],
    eph_pub: &[u8; 32],
    wrapped: &[WrappedKey],
) -> Result<Cek, EnvelopeError> {
    unwrap_cek(group_seed, eph_pub, wrapped)
}

/// A sealed message with everything a recipient needs besides its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEnvelope {
    /// The ephemeral X25519 public key.
    pub eph_pub: [u8; 32],
    /// One wrapped CEK per recipient.
    pub recipients: Vec<WrappedKey>,
    /// The content nonce.
    pub nonce: [u8; NONCE_LEN],
    /// `ciphertext ‖ tag` of the content.
    pub ciphertext: Vec<u8>,
}

/// Seals `plaintext` for 1..N recipients with explicit randomness: the CEK,
/// the content nonce and the ephemeral secret. Deterministic; use
/// [`seal_for`] unless you need to pin the randomness (test vectors).
pub fn seal_with(
    plaintext: &[u8],
    recipients: &[[u8; 32]],
    cek: &Cek,
    nonce: &[u8; NONCE_LEN],
    eph_secret: &[u8; 32],
) -> Result<SealedEnvelope, EnvelopeError> {
    let (eph_pub, wrapped) = wrap_for_recipients(cek, eph_secret, recipients)?;
    let ciphertext = seal_content(cek, nonce, plaintext)?;
    Ok(SealedEnvelope {
        eph_pub,
        recipients: wrapped,
        nonce: *nonce,
        ciphertext,
    })
}

/// Seals `plaintext` for 1..N recipients. Draws, in this order, the 32-byte
/// CEK, the 12-byte nonce and the 32-byte ephemeral secret from `rng`.
pub fn seal_for<R: RngCore + CryptoRng + ?Sized>(
    plaintext: &[u8],
    recipients: &[[u8; 32]],
    rng: &mut R,
) -> Result<SealedEnvelope, EnvelopeError> {
    let cek = Cek::generate(rng);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut eph = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(eph.as_mut());
    seal_with(plaintext, recipients, &cek, &nonce, &eph)
}

/// Opens an envelope with our ed25519 seed (or a group seed, for a post whose
/// recipient is the group).
pub fn open(my_seed: &[u8; 32], envelope: &SealedEnvelope) -> Result<Vec<u8>, EnvelopeError> {
    let cek = unwrap_cek(my_seed, &envelope.eph_pub, &envelope.recipients)?;
    open_content(&cek, &envelope.nonce, &envelope.ciphertext)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use rand_core::RngCore;

    fn seeds(n: usize, base: u8) -> Vec<[u8; 32]> {
        (0..n).map(|i| [base.wrapping_add(i as u8); 32]).collect()
    }

    fn pubs(seeds: &[[u8; 32]]) -> Vec<[u8; 32]> {
        seeds
            .iter()
            .map(|s| SigningKey::from_seed(s).public())
            .collect()
    }

    #[test]
    fn round_trip_and_not_a_recipient() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let s = seeds(3, 10);
        let env = seal_for(b"hello world", &pubs(&s), &mut rng).unwrap();
        assert_eq!(env.recipients.len(), 3);
        for seed in &s {
            assert_eq!(open(seed, &env).unwrap(), b"hello world");
        }
        assert_eq!(open(&[99; 32], &env), Err(EnvelopeError::NotARecipient));
    }

    #[test]
    fn tampering_is_detected() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let s = seeds(2, 1);
        let env = seal_for(b"secret", &pubs(&s), &mut rng).unwrap();
        let mut t = env.clone();
        t.recipients[0].wrapped[5] ^= 1;
        assert_eq!(open(&s[0], &t), Err(EnvelopeError::DecryptFailed));
        assert_eq!(open(&s[1], &t).unwrap(), b"secret");
        let mut t = env.clone();
        t.ciphertext[0] ^= 1;
        assert_eq!(open(&s[0], &t), Err(EnvelopeError::DecryptFailed));
        let mut t = env.clone();
        t.eph_pub[3] ^= 1;
        assert!(open(&s[0], &t).is_err());
        // an entry moved to another recipient id does not open (AAD binds it)
        let mut t = env;
        t.recipients[1].wrapped = t.recipients[0].wrapped;
        assert_eq!(open(&s[1], &t), Err(EnvelopeError::DecryptFailed));
    }

    #[test]
    fn bad_recipient_lists() {
        let cek = Cek::from_bytes([5; 32]);
        let small = EIGHT_TORSION[3].compress().to_bytes();
        assert_eq!(
            wrap_for_recipients(&cek, &[7; 32], &[small]),
            Err(EnvelopeError::InvalidKey)
        );
        assert_eq!(
            wrap_for_recipients(&cek, &[7; 32], &[]),
            Err(EnvelopeError::NoRecipients)
        );
        let p = pubs(&seeds(1, 3))[0];
        assert_eq!(
            wrap_for_recipients(&cek, &[7; 32], &[p, p]),
            Err(EnvelopeError::DuplicateRecipient)
        );
    }

    #[test]
    fn small_order_ephemeral_rejected() {
        let s = seeds(1, 40);
        let cek = Cek::from_bytes([5; 32]);
        let (_, w) = wrap_for_recipients(&cek, &[8; 32], &pubs(&s)).unwrap();
        // u = 0 and u = 1 are small-order Montgomery points
        for u in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            assert_eq!(
                unwrap_cek(&s[0], &u, &w).unwrap_err(),
                EnvelopeError::InvalidKey
            );
        }
    }

    #[test]
    fn group_flow() {
        let group = SigningKey::from_seed(&[77; 32]);
        let members = seeds(4, 100);
        let (geph, gw) = wrap_group_seed(&group.seed(), &[11; 32], &pubs(&members)).unwrap();
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let env = seal_for(b"to the group", &[group.public()], &mut rng).unwrap();
        for m in &members {
            let g = unwrap_group_seed(m, &group.public(), &geph, &gw).unwrap();
            let cek = unwrap_cek_with_group(&g.seed(), &env.eph_pub, &env.recipients).unwrap();
            assert_eq!(
                open_content(&cek, &env.nonce, &env.ciphertext).unwrap(),
                b"to the group"
            );
        }
        assert_eq!(
            unwrap_group_seed(&members[0], &[1; 32], &geph, &gw).unwrap_err(),
            EnvelopeError::GroupMismatch
        );
    }

    #[test]
    fn wrapped_key_wire_form() {
        let w = WrappedKey {
            recipient: [1; 32],
            wrapped: [2; 48],
        };
        assert_eq!(WrappedKey::from_bytes(&w.to_bytes()).unwrap(), w);
        assert_eq!(
            WrappedKey::from_bytes(&[0; 79]),
            Err(EnvelopeError::Malformed)
        );
        assert_eq!(
            aead_open(&[0; 32], &[0; 12], b"", &[0; 15]),
            Err(EnvelopeError::Malformed)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn seal_open_round_trip(n in 1usize..12, seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut rng = ChaCha20Rng::from_seed(seed);
            let s: Vec<[u8; 32]> = (0..n).map(|_| { let mut b = [0u8; 32]; rng.fill_bytes(&mut b); b }).collect();
            let env = seal_for(&msg, &pubs(&s), &mut rng).unwrap();
            prop_assert_eq!(env.ciphertext.len(), msg.len() + TAG_LEN);
            for sd in &s {
                prop_assert_eq!(open(sd, &env).unwrap(), msg.clone());
            }
        }
    }
}
