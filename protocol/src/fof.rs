//! Friend-of-friend (FoF) comment gating primitives (DESIGN §6, seed
//! `fof-layer2-comments`).
//!
//! An author who vouches for people hands each of them a random 32-byte
//! [`VouchKey`] `V`. For a post with FoF-gated comments the author makes a
//! per-post ed25519 key pair (`pub_post`, `priv_post`), publishes `pub_post` in
//! the post header, and adds one [`WrapSlot`] per vouch key in the keyring:
//!
//! ```text
//! tag      = HMAC-SHA256(V, "fof-tag"  ‖ pub_post)[..2]
//! slot_key = HMAC-SHA256(V, "fof-slot" ‖ pub_post)
//! sealed   = ChaCha20-Poly1305(slot_key, nonce = 0^12, aad = pub_post, seed(priv_post))
//! WrapSlot = tag (2) ‖ sealed (48)            -- 50 bytes
//! ```
//!
//! The per-post identifier is `pub_post`, not the post id: the post id is a
//! hash that covers the slots, so it cannot be an input to them. The zero
//! nonce is safe because a slot key is used exactly once (unique per vouch key
//! and per-post key).
//!
//! A commenter holding some `V` finds the slot by its 2-byte prefilter tag,
//! trial-decrypts it ([`open_slots`]), checks that the recovered seed really
//! belongs to `pub_post`, and signs the comment hash with it
//! ([`group_sig`], purpose [`Purpose::CommentGroup`]) — the proof of
//! FoF-reachability anyone can verify ([`verify_group_sig`]). It also attaches
//! `vouch_mac = HMAC-SHA256(V, "fof-vouch" ‖ pub_post ‖ comment_hash)[..16]`
//! ([`vouch_mac`]), which lets the author in strict mode learn which of the
//! vouch keys it distributed the commenter holds ([`check_vouch_mac`]).
//!
//! The HMAC labels are ASCII without a terminator; the three labels differ in
//! their first bytes after `fof-`, and `pub_post` / `comment_hash` have fixed
//! lengths, so the inputs cannot collide across uses.
//!
//! # Secrets held here and how they are wiped
//!
//! * [`VouchKey`] — the 32-byte key; `ZeroizeOnDrop`, `Debug` prints nothing.
//! * the HMAC-SHA256 state keyed with a vouch key (`KeyedMac`, private): its
//!   two SHA-256 states are derived from the key and are as secret as the key,
//!   so they are SHA-256 states that wipe themselves on drop (`sha2` with its
//!   `zeroize` feature), and the padded key blocks and the inner hash are held
//!   in [`Zeroizing`] buffers while they exist. `KeyedMac` is `ZeroizeOnDrop`.
//! * slot keys ([`slot_key`]) and recovered `priv_post` seeds ([`open_slots`])
//!   are returned in [`Zeroizing`] buffers; the AEAD plaintext of a slot is
//!   wiped as soon as the seed is copied out.

use core::fmt;

use rand_core::{CryptoRng, RngCore};
use sha2_zeroize::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::envelope::{aead_open, aead_seal, NONCE_LEN};
use crate::sign::{self, Purpose, SignatureError, SigningKey};

/// HMAC label of the prefilter tag.
pub const TAG_LABEL: &[u8] = b"fof-tag";
/// HMAC label of the slot key.
pub const SLOT_LABEL: &[u8] = b"fof-slot";
/// HMAC label of the vouch MAC.
pub const VOUCH_LABEL: &[u8] = b"fof-vouch";

/// Length of the prefilter tag.
pub const TAG_LEN: usize = 2;
/// Length of a sealed seed in a slot (32-byte seed + 16-byte tag).
pub const SEALED_LEN: usize = 48;
/// Length of a [`WrapSlot`] on the wire.
pub const SLOT_LEN: usize = TAG_LEN + SEALED_LEN;
/// Length of a vouch MAC.
pub const VOUCH_MAC_LEN: usize = 16;

/// Why an FoF operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FofError {
    /// The `priv_post` seed given does not belong to the `pub_post` given.
    #[error("priv_post seed does not match pub_post")]
    KeyMismatch,
    /// A wrap slot is not exactly 50 bytes.
    #[error("malformed wrap slot")]
    Malformed,
    /// The AEAD refused to seal (cannot happen for 32-byte seeds; kept so no
    /// code path can panic).
    #[error("sealing a slot failed")]
    SealFailed,
}

impl FofError {
    /// Stable, language-neutral name of the error, as used in the
    /// `expected.error` field of `conformance/vectors/*.json`.
    pub const fn name(&self) -> &'static str {
        match self {
            FofError::KeyMismatch => "keyMismatch",
            FofError::Malformed => "malformed",
            FofError::SealFailed => "sealFailed",
        }
    }
}

/// A vouch key: a random 32-byte secret the author shares with someone it
/// vouches for. Zeroized on drop; `Debug` does not print it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct VouchKey([u8; 32]);

impl VouchKey {
    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        VouchKey(bytes)
    }

    /// A fresh random vouch key.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        VouchKey(k)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// HMAC-SHA256 keyed with this vouch key, over the concatenated parts.
    fn mac(&self, parts: &[&[u8]]) -> KeyedMac {
        let mut mac = KeyedMac::new(&self.0);
        for part in parts {
            mac.inner.update(part);
        }
        mac
    }
}

/// SHA-256 block length (the HMAC block).
const BLOCK_LEN: usize = 64;

/// An HMAC-SHA256 (RFC 2104) in progress, keyed with a 32-byte secret. Both
/// SHA-256 states are functions of the key, so they are wiped on drop; so are
/// the padded key blocks and the inner hash, which are only ever held in
/// [`Zeroizing`] buffers.
struct KeyedMac {
    /// SHA-256 after absorbing `key ⊕ ipad`; the message goes here.
    inner: Sha256,
    /// SHA-256 after absorbing `key ⊕ opad`; takes the inner hash.
    outer: Sha256,
}

// Both fields wipe themselves when dropped (sha2's `zeroize` feature).
impl ZeroizeOnDrop for KeyedMac {}

impl KeyedMac {
    fn new(key: &[u8; 32]) -> Self {
        // A 32-byte key is zero-padded to the 64-byte block (RFC 2104 §2).
        let mut block = Zeroizing::new([0x36u8; BLOCK_LEN]);
        for (b, k) in block.iter_mut().zip(key) {
            *b ^= k;
        }
        let mut inner = Sha256::new();
        inner.update(block.as_slice());
        for b in block.iter_mut() {
            *b ^= 0x36 ^ 0x5c;
        }
        let mut outer = Sha256::new();
        outer.update(block.as_slice());
        KeyedMac { inner, outer }
    }

    /// The 32-byte HMAC, in a buffer wiped on drop.
    fn finalize(self) -> Zeroizing<[u8; 32]> {
        let KeyedMac { inner, mut outer } = self;
        let mut inner_hash = Zeroizing::new([0u8; 32]);
        let mut h = inner.finalize();
        inner_hash.copy_from_slice(&h);
        h.as_mut_slice().zeroize();
        outer.update(inner_hash.as_slice());
        let mut out = Zeroizing::new([0u8; 32]);
        let mut h = outer.finalize();
        out.copy_from_slice(&h);
        h.as_mut_slice().zeroize();
        out
    }

    /// Whether the first `expected.len()` bytes of the HMAC equal `expected`,
    /// compared in constant time (no early exit on the first difference).
    fn verify_truncated(self, expected: &[u8]) -> bool {
        let full = self.finalize();
        if expected.is_empty() || expected.len() > full.len() {
            return false;
        }
        let diff = full
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        core::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for VouchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VouchKey(..)")
    }
}

/// The 2-byte prefilter tag of `V`'s slot on the post `pub_post`.
pub fn prefilter_tag(v: &VouchKey, pub_post: &[u8; 32]) -> [u8; TAG_LEN] {
    let full = v.mac(&[TAG_LABEL, pub_post]).finalize();
    [full[0], full[1]]
}

/// The key that seals `priv_post`'s seed in `V`'s slot on `pub_post`.
pub fn slot_key(v: &VouchKey, pub_post: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    v.mac(&[SLOT_LABEL, pub_post]).finalize()
}

/// One wrap slot of a post header: 50 bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WrapSlot {
    /// Prefilter tag ([`prefilter_tag`]).
    pub tag: [u8; TAG_LEN],
    /// `priv_post`'s seed sealed under [`slot_key`] (ciphertext ‖ tag).
    pub sealed: [u8; SEALED_LEN],
}

impl WrapSlot {
    /// Wire form: `tag ‖ sealed`.
    pub fn to_bytes(&self) -> [u8; SLOT_LEN] {
        let mut out = [0u8; SLOT_LEN];
        out[..TAG_LEN].copy_from_slice(&self.tag);
        out[TAG_LEN..].copy_from_slice(&self.sealed);
        out
    }

    /// Parses the wire form (exactly 50 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FofError> {
        if bytes.len() != SLOT_LEN {
            return Err(FofError::Malformed);
        }
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&bytes[..TAG_LEN]);
        let mut sealed = [0u8; SEALED_LEN];
        sealed.copy_from_slice(&bytes[TAG_LEN..]);
        Ok(WrapSlot { tag, sealed })
    }
}

/// Makes one slot per vouch key, in the order of `keys` (shuffle the keys
/// first if the order should not reveal the keyring order). Fails with
/// [`FofError::KeyMismatch`] if `priv_post_seed` is not the seed of
/// `pub_post`.
pub fn make_slots(
    priv_post_seed: &[u8; 32],
    pub_post: &[u8; 32],
    keys: &[VouchKey],
) -> Result<Vec<WrapSlot>, FofError> {
    if SigningKey::from_seed(priv_post_seed).public() != *pub_post {
        return Err(FofError::KeyMismatch);
    }
    keys.iter()
        .map(|v| {
            let key = slot_key(v, pub_post);
            let sealed_vec = aead_seal(&key, &[0u8; NONCE_LEN], pub_post, priv_post_seed)
                .map_err(|_| FofError::SealFailed)?;
            let mut sealed = [0u8; SEALED_LEN];
            if sealed_vec.len() != SEALED_LEN {
                return Err(FofError::SealFailed);
            }
            sealed.copy_from_slice(&sealed_vec);
            Ok(WrapSlot {
                tag: prefilter_tag(v, pub_post),
                sealed,
            })
        })
        .collect()
}

/// Tries our vouch keys against a post's slots: for each key (in order), every
/// slot with a matching prefilter tag is trial-decrypted, and a recovered
/// seed is accepted only if its public key is `pub_post`. Returns the index
/// of the vouch key (into `keys`) that worked and `priv_post`'s seed, or
/// `None` if we are not in the author's FoF set.
pub fn open_slots(
    keys: &[VouchKey],
    pub_post: &[u8; 32],
    slots: &[WrapSlot],
) -> Option<(usize, Zeroizing<[u8; 32]>)> {
    for (index, v) in keys.iter().enumerate() {
        let tag = prefilter_tag(v, pub_post);
        let mut key: Option<Zeroizing<[u8; 32]>> = None;
        for slot in slots.iter().filter(|s| s.tag == tag) {
            let k = key.get_or_insert_with(|| slot_key(v, pub_post));
            let Ok(plain) = aead_open(k, &[0u8; NONCE_LEN], pub_post, &slot.sealed) else {
                continue;
            };
            let plain = Zeroizing::new(plain);
            if plain.len() != 32 {
                continue;
            }
            let mut seed = Zeroizing::new([0u8; 32]);
            seed.copy_from_slice(&plain);
            if SigningKey::from_seed(&seed).public() == *pub_post {
                return Some((index, seed));
            }
        }
    }
    None
}

/// The FoF `group_sig`: an ed25519 signature with `priv_post` over the
/// 32-byte comment hash, purpose [`Purpose::CommentGroup`].
pub fn group_sig(priv_post_seed: &[u8; 32], comment_hash: &[u8; 32]) -> [u8; 64] {
    SigningKey::from_seed(priv_post_seed).sign(Purpose::CommentGroup, comment_hash)
}

/// Verifies a `group_sig` against the parent post's `pub_post` (full
/// strictness rule of [`crate::sign`]).
pub fn verify_group_sig(
    pub_post: &[u8; 32],
    comment_hash: &[u8; 32],
    sig: &[u8; 64],
) -> Result<(), SignatureError> {
    sign::verify(pub_post, Purpose::CommentGroup, comment_hash, sig)
}

/// `HMAC-SHA256(V, "fof-vouch" ‖ pub_post ‖ comment_hash)[..16]`.
pub fn vouch_mac(
    v: &VouchKey,
    pub_post: &[u8; 32],
    comment_hash: &[u8; 32],
) -> [u8; VOUCH_MAC_LEN] {
    let full = v.mac(&[VOUCH_LABEL, pub_post, comment_hash]).finalize();
    let mut out = [0u8; VOUCH_MAC_LEN];
    out.copy_from_slice(&full[..VOUCH_MAC_LEN]);
    out
}

/// Strict-mode check by the author: the index of the first candidate vouch
/// key whose [`vouch_mac`] equals `mac` (compared in constant time), or
/// `None`.
pub fn check_vouch_mac(
    candidates: &[VouchKey],
    pub_post: &[u8; 32],
    comment_hash: &[u8; 32],
    mac: &[u8; VOUCH_MAC_LEN],
) -> Option<usize> {
    candidates.iter().position(|v| {
        v.mac(&[VOUCH_LABEL, pub_post, comment_hash])
            .verify_truncated(mac)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    fn post_key() -> SigningKey {
        SigningKey::from_seed(&[0x55; 32])
    }

    /// The wiping HMAC equals the reference `hmac` crate for 32-byte keys,
    /// whatever the message split.
    #[test]
    fn wiping_hmac_equals_reference_hmac() {
        use hmac::{Hmac, Mac};
        for (key, parts) in [
            ([0x0b; 32], vec![&b"abc"[..]]),
            ([0x00; 32], vec![]),
            (
                [0xff; 32],
                vec![&b"fof-vouch"[..], &[7u8; 32][..], &[9u8; 32][..]],
            ),
            ([0x5a; 32], vec![&[0x61u8; 200][..]]),
        ] {
            let ours = VouchKey::from_bytes(key).mac(&parts).finalize();
            let mut reference = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
            for p in &parts {
                reference.update(p);
            }
            assert_eq!(
                ours.as_slice(),
                reference.finalize().into_bytes().as_slice()
            );
        }
    }

    /// Every type here that holds a secret, or state derived from one, wipes
    /// itself when dropped.
    #[test]
    fn secret_holders_wipe_on_drop() {
        fn wipes_on_drop<T: ZeroizeOnDrop>() {}
        wipes_on_drop::<VouchKey>();
        wipes_on_drop::<KeyedMac>();
        wipes_on_drop::<Sha256>();
        wipes_on_drop::<Zeroizing<[u8; 32]>>();
        // `Zeroize` on a held key clears it (what the drop glue runs).
        let mut v = VouchKey::from_bytes([0xaa; 32]);
        v.zeroize();
        assert_eq!(v.as_bytes(), &[0u8; 32]);
    }

    #[test]
    fn truncated_verification_is_exact() {
        let v = VouchKey::from_bytes([3; 32]);
        let full = v.mac(&[b"x"]).finalize();
        assert!(v.mac(&[b"x"]).verify_truncated(&full[..16]));
        assert!(v.mac(&[b"x"]).verify_truncated(&full[..]));
        let mut bad = *full;
        bad[0] ^= 0x80;
        assert!(!v.mac(&[b"x"]).verify_truncated(&bad[..16]));
        assert!(!v.mac(&[b"x"]).verify_truncated(&[]));
        assert!(!v.mac(&[b"x"]).verify_truncated(&[0; 33]));
    }

    #[test]
    fn slots_open_for_holders_only() {
        let pk = post_key();
        let pub_post = pk.public();
        let keys: Vec<VouchKey> = (0..5u8).map(|i| VouchKey::from_bytes([i; 32])).collect();
        let slots = make_slots(&pk.seed(), &pub_post, &keys).unwrap();
        assert_eq!(slots.len(), 5);
        let mine = vec![VouchKey::from_bytes([200; 32]), keys[3].clone()];
        let (idx, seed) = open_slots(&mine, &pub_post, &slots).unwrap();
        assert_eq!(idx, 1);
        assert_eq!(*seed, *pk.seed());
        assert!(open_slots(&[VouchKey::from_bytes([201; 32])], &pub_post, &slots).is_none());
        assert_eq!(
            make_slots(&[1; 32], &pub_post, &keys),
            Err(FofError::KeyMismatch)
        );
        let s = slots[0];
        assert_eq!(WrapSlot::from_bytes(&s.to_bytes()).unwrap(), s);
        assert_eq!(WrapSlot::from_bytes(&[0; 49]), Err(FofError::Malformed));
    }

    #[test]
    fn group_sig_and_vouch_mac() {
        let pk = post_key();
        let h = [9u8; 32];
        let sig = group_sig(&pk.seed(), &h);
        assert_eq!(verify_group_sig(&pk.public(), &h, &sig), Ok(()));
        assert_eq!(
            verify_group_sig(&pk.public(), &[8; 32], &sig),
            Err(SignatureError::Invalid)
        );
        let keys: Vec<VouchKey> = (0..4u8).map(|i| VouchKey::from_bytes([i; 32])).collect();
        let mac = vouch_mac(&keys[2], &pk.public(), &h);
        assert_eq!(check_vouch_mac(&keys, &pk.public(), &h, &mac), Some(2));
        let mut bad = mac;
        bad[15] ^= 1;
        assert_eq!(check_vouch_mac(&keys, &pk.public(), &h, &bad), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn any_holder_opens(post_seed in any::<[u8; 32]>(), n in 1usize..20, pick in any::<prop::sample::Index>()) {
            let pk = SigningKey::from_seed(&post_seed);
            let keys: Vec<VouchKey> = (0..n).map(|i| VouchKey::from_bytes([i as u8 ^ post_seed[0]; 32])).collect();
            let slots = make_slots(&post_seed, &pk.public(), &keys).unwrap();
            let i = pick.index(n);
            let (idx, seed) = open_slots(&keys[i..=i], &pk.public(), &slots).unwrap();
            prop_assert_eq!(idx, 0);
            prop_assert_eq!(*seed, post_seed);
        }
    }
}
