//! Ed25519 signatures with domain separation.
//!
//! Every signature in distsoc is an ed25519 signature (RFC 8032, "PureEdDSA")
//! over a *domain-separated* input:
//!
//! ```text
//! signing_input = "distsoc/2/" ‖ purpose ‖ 0x00 ‖ message
//! ```
//!
//! where `purpose` is the ASCII string of a [`Purpose`] (for example `post`),
//! and `message` is the canonical encoding of whatever is signed. The purpose
//! strings never contain `0x00`, so the input is unambiguous, and a signature
//! made for one purpose never verifies for another one.
//!
//! Network keys (NodeId) and posting keys (PostingId) are both ed25519 keys.
//! The same key also serves as an X25519 key for envelope encryption: see
//! [`x25519_secret_from_seed`] and [`x25519_public_from_ed25519`].
//!
//! # Strictness decision
//!
//! Ed25519 implementations famously disagree about which signatures are
//! valid (cofactored vs cofactorless equation, canonical encodings, small-order
//! points). In a replicated network that is a consensus bug: if two nodes
//! disagree about one signature, they disagree about which posts exist. distsoc
//! therefore fixes one rule, and it is the same for single and batch
//! verification:
//!
//! 1. **Public key `A`** (checked first):
//!    - it must decode to a curve point, else [`SignatureError::MalformedKey`];
//!    - it must not be of small order (one of the 8 points of the torsion
//!      subgroup, *in any encoding*), else [`SignatureError::SmallOrderKey`].
//!      A small-order key lets anyone make a signature (`R = [r]B`, `S = r`)
//!      that verifies for **every** message under the cofactored equation;
//!    - its encoding must be canonical (`y < p`, and re-encoding the decoded
//!      point gives back the same 32 bytes, which also rejects `x = 0` with the
//!      sign bit set), else [`SignatureError::NonCanonicalKey`]. One key must
//!      have exactly one byte string, or ids and signatures become malleable.
//! 2. **`S`** must be canonical, `S < L` (the prime group order), else
//!    [`SignatureError::NonCanonicalS`]. This rejects `S + L` malleability and
//!    any `S` with one of the three top bits set.
//! 3. **`R`** must decode to a curve point (else [`SignatureError::Invalid`])
//!    and its encoding must be canonical, else
//!    [`SignatureError::NonCanonicalR`]. A small-order `R` is *not* rejected:
//!    it does not help a forger and ZIP-215 accepts it.
//! 4. **Equation**: the *cofactored* equation `[8][S]B = [8]R + [8][k]A` with
//!    `k = SHA-512(R ‖ A ‖ signing_input) mod L` (ZIP-215's equation, on the
//!    points decoded by the checks above). Failure is
//!    [`SignatureError::Invalid`].
//!
//! Checks run in that order and the first failing one is reported, so test
//! vectors can name one error per input.
//!
//! The verifier is one pass: each point is decoded once, the canonical
//! encodings are checked on the bytes (no re-encoding), and the equation
//! runs on the decoded points. [`mod@reference`] keeps the earlier two-pass
//! verifier (re-encode to compare, then [`ed25519_zebra`] decoding again);
//! `protocol/tests/verify_agreement.rs` checks that both give the same
//! verdict on every vector and on a large random and mutated corpus.
//!
//! Why cofactored: batch verification (a random linear combination of many
//! equations) is only guaranteed to agree with single verification when both
//! use the cofactored equation. With the cofactorless equation, a signature
//! with a torsion component can pass single verification and fail in a batch,
//! or the other way around depending on the random coefficients, so two nodes
//! could reach different verdicts on the same post. ZIP-215 plus our extra
//! rejections (which are pure functions of the encoded bytes) keeps single and
//! batch verification in exact agreement.
//!
//! Consequence: a **mixed-order** public key (`A = [a]B + T` with `T` a
//! non-trivial torsion point; not small order) is accepted, and a signature
//! `(R = [r]B, S = r + k·a)` made with it is **valid** under our rule even when
//! a cofactorless (RFC 8032 §5.1.7 "may" / `verify_strict`) verifier rejects
//! it. Honest signers never produce such keys; accepting them costs nothing
//! and keeps the rule batch-compatible.

use core::fmt;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::Signer as _;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

pub mod reference;

/// Prefix of every signing input: the protocol name and major version.
pub const DOMAIN_PREFIX: &[u8] = b"distsoc/2/";

/// Length of an ed25519 public key (and of a seed) in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Length of an ed25519 secret seed in bytes.
pub const SEED_LEN: usize = 32;

/// Length of an ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// What a signature is for. The ASCII string of the purpose is part of the
/// signing input, so a signature for one purpose never verifies for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    /// A post (`post`).
    Post,
    /// A profile record (`profile`).
    Profile,
    /// A post header: comment policy and friend-of-friend fields (`post-header`).
    PostHeader,
    /// A comment, signed by the commenter's identity key (`comment`).
    Comment,
    /// The friend-of-friend `group_sig` over a comment hash, signed with the
    /// per-post key `priv_post` (`comment-group`).
    CommentGroup,
    /// A delete record (`delete`).
    DeleteRecord,
    /// A visibility update (re-wrapped recipients), signing the canonical
    /// `VisibilityUpdateBody` (`visibility`).
    VisibilityUpdate,
    /// The visibility a post was created with: `SyncPost.visibilitySignature`
    /// over `BLAKE3-256(postId ‖ canonical PostVisibility)`
    /// (`post-visibility`).
    PostVisibility,
    /// An author's recent-posts list (`recent-posts`).
    RecentPosts,
    /// An audience request (`audience-request`).
    AudienceRequest,
    /// An audience response (`audience-response`).
    AudienceResponse,
    /// A vouch grant (`vouch-grant`).
    VouchGrant,
    /// A heart / reaction (`heart`).
    Heart,
    /// A group key wrap (the group seed wrapped for members) (`group-key`).
    GroupKeyWrap,
    /// A handshake / hello binding (`handshake`).
    Handshake,
}

impl Purpose {
    /// Every purpose, in declaration order.
    pub const ALL: [Purpose; 15] = [
        Purpose::Post,
        Purpose::Profile,
        Purpose::PostHeader,
        Purpose::Comment,
        Purpose::CommentGroup,
        Purpose::DeleteRecord,
        Purpose::VisibilityUpdate,
        Purpose::PostVisibility,
        Purpose::RecentPosts,
        Purpose::AudienceRequest,
        Purpose::AudienceResponse,
        Purpose::VouchGrant,
        Purpose::Heart,
        Purpose::GroupKeyWrap,
        Purpose::Handshake,
    ];

    /// The ASCII string that goes into the signing input.
    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::Post => "post",
            Purpose::Profile => "profile",
            Purpose::PostHeader => "post-header",
            Purpose::Comment => "comment",
            Purpose::CommentGroup => "comment-group",
            Purpose::DeleteRecord => "delete",
            Purpose::VisibilityUpdate => "visibility",
            Purpose::PostVisibility => "post-visibility",
            Purpose::RecentPosts => "recent-posts",
            Purpose::AudienceRequest => "audience-request",
            Purpose::AudienceResponse => "audience-response",
            Purpose::VouchGrant => "vouch-grant",
            Purpose::Heart => "heart",
            Purpose::GroupKeyWrap => "group-key",
            Purpose::Handshake => "handshake",
        }
    }

    /// The purpose whose [`as_str`](Self::as_str) is `name`, if any.
    pub fn from_name(name: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds `"distsoc/2/" ‖ purpose ‖ 0x00 ‖ message`, the bytes that are
/// actually signed.
pub fn signing_input(purpose: Purpose, message: &[u8]) -> Vec<u8> {
    let p = purpose.as_str().as_bytes();
    let mut out = Vec::with_capacity(DOMAIN_PREFIX.len() + p.len() + 1 + message.len());
    out.extend_from_slice(DOMAIN_PREFIX);
    out.extend_from_slice(p);
    out.push(0x00);
    out.extend_from_slice(message);
    out
}

/// Why a signature (or a public key) was rejected. See the module
/// documentation, section "Strictness decision", for the order of the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SignatureError {
    /// The public key bytes do not decode to a point of the curve.
    #[error("public key is not a curve point")]
    MalformedKey,
    /// The public key is a valid point but its encoding is not the canonical
    /// one (`y >= p`, or `x = 0` with the sign bit set).
    #[error("public key encoding is not canonical")]
    NonCanonicalKey,
    /// The public key is one of the 8 small-order (torsion) points.
    #[error("public key has small order")]
    SmallOrderKey,
    /// The signature's `R` is a valid point but not canonically encoded.
    #[error("signature R encoding is not canonical")]
    NonCanonicalR,
    /// The signature's `S` is not a canonical scalar (`S >= L`).
    #[error("signature S is not canonical (S >= L)")]
    NonCanonicalS,
    /// The verification equation does not hold (or `R` is not a point).
    #[error("signature is invalid")]
    Invalid,
}

impl SignatureError {
    /// Stable, language-neutral name of the error, as used in the
    /// `expected.error` field of `conformance/vectors/*.json`.
    pub const fn name(&self) -> &'static str {
        match self {
            SignatureError::MalformedKey => "malformedKey",
            SignatureError::NonCanonicalKey => "nonCanonicalKey",
            SignatureError::SmallOrderKey => "smallOrderKey",
            SignatureError::NonCanonicalR => "nonCanonicalR",
            SignatureError::NonCanonicalS => "nonCanonicalS",
            SignatureError::Invalid => "invalid",
        }
    }
}

/// The first failing item of a batch verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("signature #{index} of the batch failed: {error}")]
pub struct BatchError {
    /// Index (into the slice passed to [`verify_batch`]) of the first item
    /// that fails single verification.
    pub index: usize,
    /// Why that item failed.
    pub error: SignatureError,
}

/// An ed25519 signing key, kept as its 32-byte seed. Zeroized on drop.
#[derive(Clone)]
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// The key whose RFC 8032 secret seed is `seed`.
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        SigningKey {
            inner: ed25519_dalek::SigningKey::from_bytes(seed),
        }
    }

    /// A fresh random key (32 bytes drawn from `rng`).
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The 32-byte secret seed (handle with care; zeroized when dropped).
    pub fn seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
        Zeroizing::new(self.inner.to_bytes())
    }

    /// The public key (NodeId / PostingId / group id bytes).
    pub fn public(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.inner.verifying_key().to_bytes()
    }

    /// Signs `message` for `purpose`, i.e. signs
    /// [`signing_input(purpose, message)`](signing_input). Deterministic.
    pub fn sign(&self, purpose: Purpose, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.sign_raw(&signing_input(purpose, message))
    }

    /// Plain RFC 8032 ed25519 over `message` **without** the distsoc domain
    /// prefix. Only for interoperability with external formats and for the
    /// RFC 8032 test vectors; protocol objects must use [`sign`](Self::sign).
    pub fn sign_raw(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.inner.sign(message).to_bytes()
    }

    /// The X25519 static secret that belongs to this key (see
    /// [`x25519_secret_from_seed`]).
    pub fn x25519_secret(&self) -> x25519_dalek::StaticSecret {
        let seed = Zeroizing::new(self.inner.to_bytes());
        x25519_secret_from_seed(&seed)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &hex::encode(self.public()))
            .finish_non_exhaustive()
    }
}

/// Decodes a public key and applies the key checks of the strictness rule:
/// curve point, not small order, canonical encoding. The point is decoded
/// once; canonicity is checked on the bytes (`is_canonical_encoding`).
pub fn check_public_key(public: &[u8; PUBLIC_KEY_LEN]) -> Result<EdwardsPoint, SignatureError> {
    let point = CompressedEdwardsY(*public)
        .decompress()
        .ok_or(SignatureError::MalformedKey)?;
    if point.is_small_order() {
        return Err(SignatureError::SmallOrderKey);
    }
    if !is_canonical_encoding(public) {
        return Err(SignatureError::NonCanonicalKey);
    }
    Ok(point)
}

/// Whether `enc`, a 32-byte string that decodes to a point, is the
/// canonical encoding of that point: re-encoding the decoded point gives
/// `enc` back. Decided on the bytes, without the field inversion a
/// re-encoding costs.
///
/// Decoding reads `y` modulo `p = 2^255 − 19` (bit 255 is the sign of `x`)
/// and gives `x` the sign bit's parity unless `x = 0`; re-encoding writes
/// `y mod p` and the parity of `x`. So the two differ exactly when
/// `y ≥ p` (the 19 values `p … 2^255 − 1`), or when the sign bit is set
/// and `x = 0`, which happens only for `y = 1` and `y = p − 1`.
fn is_canonical_encoding(enc: &[u8; 32]) -> bool {
    let sign = enc[31] & 0x80 != 0;
    let top = enc[31] & 0x7f;
    let middle_all_ff = enc[1..31].iter().all(|&b| b == 0xff);
    let middle_all_zero = enc[1..31].iter().all(|&b| b == 0);
    // y ≥ p = 2^255 − 19: bytes ed..ff, ff × 30, 7f.
    if top == 0x7f && middle_all_ff && enc[0] >= 0xed {
        return false;
    }
    if sign {
        let y_is_one = top == 0 && middle_all_zero && enc[0] == 1;
        // p − 1 = 2^255 − 20: bytes ec, ff × 30, 7f.
        let y_is_minus_one = top == 0x7f && middle_all_ff && enc[0] == 0xec;
        if y_is_one || y_is_minus_one {
            return false;
        }
    }
    true
}

/// The signature's encoding checks, in the documented order after the key:
/// `S` canonical, then `R` a point with a canonical encoding. Returns `R`
/// (decoded once) and `S`.
fn decode_signature(sig: &[u8; SIGNATURE_LEN]) -> Result<(EdwardsPoint, Scalar), SignatureError> {
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s))
        .ok_or(SignatureError::NonCanonicalS)?;
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    let r_point = CompressedEdwardsY(r)
        .decompress()
        .ok_or(SignatureError::Invalid)?;
    if !is_canonical_encoding(&r) {
        return Err(SignatureError::NonCanonicalR);
    }
    Ok((r_point, s))
}

/// One signature after its encoding checks: every point decoded once, the
/// challenge `k = SHA-512(R ‖ A ‖ input) mod L` computed once.
struct Decoded {
    minus_a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

impl Decoded {
    /// Runs the encoding checks of the strictness rule in their order and
    /// hashes the signing input, given as the concatenation of `input`.
    fn new(
        public: &[u8; PUBLIC_KEY_LEN],
        input: &[&[u8]],
        sig: &[u8; SIGNATURE_LEN],
    ) -> Result<Self, SignatureError> {
        let a = check_public_key(public)?;
        Self::with_key(a, public, input, sig)
    }

    /// [`Decoded::new`] for a key that already passed [`check_public_key`].
    fn with_key(
        a: EdwardsPoint,
        public: &[u8; PUBLIC_KEY_LEN],
        input: &[&[u8]],
        sig: &[u8; SIGNATURE_LEN],
    ) -> Result<Self, SignatureError> {
        let (r, s) = decode_signature(sig)?;
        let mut h = Sha512::new();
        h.update(&sig[..32]);
        h.update(public);
        for piece in input {
            h.update(piece);
        }
        Ok(Decoded {
            minus_a: -a,
            r,
            s,
            k: Scalar::from_hash(h),
        })
    }

    /// The cofactored equation `[8][S]B = [8]R + [8][k]A` (as
    /// `[8](R − ([S]B − [k]A)) = 0`, the form ZIP-215 verifiers compute).
    fn equation_holds(&self) -> bool {
        let r_prime =
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&self.k, &self.minus_a, &self.s);
        (self.r - r_prime).mul_by_cofactor().is_identity()
    }

    fn verify(&self) -> Result<(), SignatureError> {
        if self.equation_holds() {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        }
    }
}

/// The pieces of `"distsoc/2/" ‖ purpose ‖ 0x00 ‖ message`, hashed in place
/// (the same bytes as [`signing_input`], without building them).
fn input_pieces(purpose: Purpose, message: &[u8]) -> [&[u8]; 4] {
    [DOMAIN_PREFIX, purpose.as_str().as_bytes(), &[0x00], message]
}

/// Verifies a domain-separated signature made with [`SigningKey::sign`].
pub fn verify(
    public: &[u8; PUBLIC_KEY_LEN],
    purpose: Purpose,
    message: &[u8],
    sig: &[u8; SIGNATURE_LEN],
) -> Result<(), SignatureError> {
    Decoded::new(public, &input_pieces(purpose, message), sig)?.verify()
}

/// Verifies a plain ed25519 signature over `message` (no domain prefix) with
/// the distsoc strictness rule. Only for interoperability and the RFC 8032
/// vectors; protocol objects must use [`verify`].
pub fn verify_raw(
    public: &[u8; PUBLIC_KEY_LEN],
    message: &[u8],
    sig: &[u8; SIGNATURE_LEN],
) -> Result<(), SignatureError> {
    Decoded::new(public, &[message], sig)?.verify()
}

/// One domain-separated signature waiting to be verified, with its message
/// borrowed from the object that carries it or owned (a digest computed for
/// it). Collect many and verify them together with [`verify_each`] (via
/// [`PendingSignature::as_batch_item`]), or one with
/// [`PendingSignature::verify`]: the verdict is the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignature<'a> {
    /// The key that must have signed.
    pub public: [u8; PUBLIC_KEY_LEN],
    /// The purpose of the signature.
    pub purpose: Purpose,
    /// The message, not yet domain-separated.
    pub message: std::borrow::Cow<'a, [u8]>,
    /// The signature.
    pub signature: [u8; SIGNATURE_LEN],
}

impl PendingSignature<'_> {
    /// [`verify`] of this signature.
    pub fn verify(&self) -> Result<(), SignatureError> {
        verify(&self.public, self.purpose, &self.message, &self.signature)
    }

    /// This signature as an item of [`verify_batch`] / [`verify_each`].
    pub fn as_batch_item(&self) -> BatchItem<'_> {
        (self.public, self.purpose, &self.message, self.signature)
    }
}

/// One item of [`verify_batch`]: public key, purpose, message (not yet
/// domain-separated) and signature.
pub type BatchItem<'a> = ([u8; PUBLIC_KEY_LEN], Purpose, &'a [u8], [u8; SIGNATURE_LEN]);

/// Verifies many domain-separated signatures at once. The verdict is exactly
/// the verdict of calling [`verify`] on each item: on failure the first
/// failing index (in slice order) is reported, with its error.
///
/// `rng` supplies the random batch coefficients (it never influences the
/// verdict, only the speed of detecting a bad batch).
pub fn verify_batch<R: RngCore + CryptoRng + ?Sized>(
    items: &[BatchItem<'_>],
    rng: &mut R,
) -> Result<(), BatchError> {
    verify_each(items, rng)
        .into_iter()
        .enumerate()
        .find_map(|(index, r)| r.err().map(|error| BatchError { index, error }))
        .map_or(Ok(()), Err)
}

/// The verdict of every item, each exactly what [`verify`] says of it, found
/// with one batch equation when all are good.
///
/// Each item's encodings are checked and its points decoded once (a key that
/// repeats in the batch once). The items that pass those checks go into one
/// random linear combination of their cofactored equations; it holds
/// whenever every single equation holds, so a good batch costs one
/// multiscalar multiplication. If it does not hold, each of those items'
/// own equation is checked, reusing the decoded points and challenges: a bad
/// signature costs the others at most their single verification again, never
/// a different verdict.
///
/// `rng` supplies the 128-bit batch coefficients.
pub fn verify_each<R: RngCore + CryptoRng + ?Sized>(
    items: &[BatchItem<'_>],
    rng: &mut R,
) -> Vec<Result<(), SignatureError>> {
    // Keys decoded so far in this batch: bytes, decoded point.
    let mut keys: Vec<([u8; PUBLIC_KEY_LEN], EdwardsPoint)> = Vec::new();
    let mut decoded: Vec<Result<(Decoded, usize), SignatureError>> =
        Vec::with_capacity(items.len());
    for (public, purpose, message, sig) in items {
        let key = match keys.iter().position(|(bytes, _)| bytes == public) {
            Some(i) => Ok(i),
            None => check_public_key(public).map(|a| {
                keys.push((*public, a));
                keys.len() - 1
            }),
        };
        decoded.push(key.and_then(|i| {
            Decoded::with_key(keys[i].1, public, &input_pieces(*purpose, message), sig)
                .map(|d| (d, i))
        }));
    }
    let good: Vec<&(Decoded, usize)> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
    let all_hold = match good.as_slice() {
        [] => true,
        [(one, _)] => one.equation_holds(),
        _ => batch_equation_holds(&good, &keys, rng),
    };
    decoded
        .into_iter()
        .map(|d| match d {
            Err(e) => Err(e),
            Ok(_) if all_hold => Ok(()),
            Ok((d, _)) => d.verify(),
        })
        .collect()
}

/// The batch equation
/// `[8]( −(Σ zᵢsᵢ)B + Σ zᵢRᵢ + Σ_A (Σ_{i with key A} zᵢkᵢ)A ) = 0`
/// with random 128-bit `zᵢ`, one term per distinct key.
fn batch_equation_holds<R: RngCore + CryptoRng + ?Sized>(
    items: &[&(Decoded, usize)],
    keys: &[([u8; PUBLIC_KEY_LEN], EdwardsPoint)],
    rng: &mut R,
) -> bool {
    let mut b_coeff = Scalar::ZERO;
    let mut a_coeffs = vec![Scalar::ZERO; keys.len()];
    let mut r_coeffs = Vec::with_capacity(items.len());
    for (d, key) in items {
        let mut z = [0u8; 32];
        rng.fill_bytes(&mut z[..16]);
        let z = Scalar::from_bytes_mod_order(z);
        b_coeff -= z * d.s;
        a_coeffs[*key] += z * d.k;
        r_coeffs.push(z);
    }
    let scalars = core::iter::once(&b_coeff)
        .chain(a_coeffs.iter())
        .chain(r_coeffs.iter());
    let points = core::iter::once(&ED25519_BASEPOINT_POINT)
        .chain(keys.iter().map(|(_, a)| a))
        .chain(items.iter().map(|(d, _)| &d.r));
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// The X25519 secret that belongs to an ed25519 seed: the first half of
/// `SHA-512(seed)`, clamped (exactly the ed25519 secret scalar). Its X25519
/// public key equals [`x25519_public_from_ed25519`] of the ed25519 public key.
pub fn x25519_secret_from_seed(seed: &[u8; SEED_LEN]) -> x25519_dalek::StaticSecret {
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    let mut scalar = key.to_scalar_bytes();
    let secret = x25519_dalek::StaticSecret::from(scalar);
    scalar.zeroize();
    secret
}

/// The X25519 (Montgomery `u`) public key of an ed25519 public key, after the
/// key checks of the strictness rule (curve point, not small order, canonical).
pub fn x25519_public_from_ed25519(
    public: &[u8; PUBLIC_KEY_LEN],
) -> Result<[u8; 32], SignatureError> {
    Ok(check_public_key(public)?.to_montgomery().to_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n; 32])
    }

    #[test]
    fn purpose_strings_are_unique_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for p in Purpose::ALL {
            assert!(seen.insert(p.as_str()));
            assert!(!p.as_str().as_bytes().contains(&0));
            assert_eq!(Purpose::from_name(p.as_str()), Some(p));
        }
        assert_eq!(Purpose::from_name("nope"), None);
    }

    #[test]
    fn signing_input_layout() {
        assert_eq!(
            signing_input(Purpose::Post, b"abc"),
            b"distsoc/2/post\x00abc".to_vec()
        );
    }

    #[test]
    fn wrong_purpose_and_tamper_rejected() {
        let k = key(7);
        let sig = k.sign(Purpose::Post, b"hello");
        assert_eq!(verify(&k.public(), Purpose::Post, b"hello", &sig), Ok(()));
        assert_eq!(
            verify(&k.public(), Purpose::Comment, b"hello", &sig),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify(&k.public(), Purpose::Post, b"hellO", &sig),
            Err(SignatureError::Invalid)
        );
        // raw verification of a domain-separated signature fails
        assert_eq!(
            verify_raw(&k.public(), b"hello", &sig),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn small_order_keys_rejected_in_any_encoding() {
        for t in EIGHT_TORSION {
            let enc = t.compress().to_bytes();
            assert_eq!(check_public_key(&enc), Err(SignatureError::SmallOrderKey));
            let mut signed = enc;
            signed[31] ^= 0x80;
            // flipping the sign bit gives either another encoding of a
            // small-order point or no point at all
            let r = check_public_key(&signed);
            assert!(
                r == Err(SignatureError::SmallOrderKey) || r == Err(SignatureError::MalformedKey),
                "{r:?}"
            );
        }
    }

    #[test]
    fn non_canonical_s_rejected() {
        let k = key(1);
        let mut sig = k.sign(Purpose::Heart, b"x");
        // S + L
        // L = 2^252 + 27742317777372353535851937790883648493, little endian
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
            sig[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(
            verify(&k.public(), Purpose::Heart, b"x", &sig),
            Err(SignatureError::NonCanonicalS)
        );
    }

    #[test]
    fn mixed_order_key_is_accepted_by_cofactored_rule() {
        let a = Scalar::from(123_456_789u64);
        let big_a = a * ED25519_BASEPOINT_POINT + EIGHT_TORSION[1];
        let a_enc = big_a.compress().to_bytes();
        assert_eq!(check_public_key(&a_enc).map(|_| ()), Ok(()));
        let r = Scalar::from(987_654_321u64);
        let r_enc = (r * ED25519_BASEPOINT_POINT).compress().to_bytes();
        let input = signing_input(Purpose::Post, b"mixed");
        use sha2::Digest;
        let k = Scalar::from_hash(
            sha2::Sha512::new()
                .chain_update(r_enc)
                .chain_update(a_enc)
                .chain_update(&input),
        );
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_enc);
        sig[32..].copy_from_slice(s.as_bytes());
        assert_eq!(verify(&a_enc, Purpose::Post, b"mixed", &sig), Ok(()));
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let items: [BatchItem<'_>; 1] = [(a_enc, Purpose::Post, &b"mixed"[..], sig)];
        assert_eq!(verify_batch(&items, &mut rng), Ok(()));
    }

    #[test]
    fn batch_reports_first_bad_index() {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let keys: Vec<SigningKey> = (0..6).map(key).collect();
        let msgs: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 10]).collect();
        let mut items: Vec<BatchItem<'_>> = keys
            .iter()
            .zip(&msgs)
            .map(|(k, m)| {
                (
                    k.public(),
                    Purpose::Post,
                    m.as_slice(),
                    k.sign(Purpose::Post, m),
                )
            })
            .collect();
        assert_eq!(verify_batch(&items, &mut rng), Ok(()));
        assert_eq!(verify_batch(&[], &mut rng), Ok(()));
        items[4].3[0] ^= 1;
        items[2].3[1] ^= 1;
        let err = verify_batch(&items, &mut rng).unwrap_err();
        assert_eq!(err.index, 2);
        // a pre-check failure later in the slice does not hide an earlier
        // equation failure
        items[5].0 = EIGHT_TORSION[0].compress().to_bytes();
        assert_eq!(
            verify_batch(&items, &mut rng),
            Err(BatchError {
                index: 2,
                error: SignatureError::Invalid
            })
        );
        items[2].3[1] ^= 1;
        items[4].3[0] ^= 1;
        assert_eq!(
            verify_batch(&items, &mut rng),
            Err(BatchError {
                index: 5,
                error: SignatureError::SmallOrderKey
            })
        );
    }

    #[test]
    fn x25519_conversion_agrees() {
        let k = key(42);
        let secret = k.x25519_secret();
        let from_secret = x25519_dalek::PublicKey::from(&secret).to_bytes();
        assert_eq!(
            x25519_public_from_ed25519(&k.public()).unwrap(),
            from_secret
        );
        let t = EIGHT_TORSION[2].compress().to_bytes();
        assert_eq!(
            x25519_public_from_ed25519(&t),
            Err(SignatureError::SmallOrderKey)
        );
    }

    #[test]
    fn debug_does_not_leak_seed() {
        let k = key(0xab);
        let s = format!("{k:?}");
        assert!(!s.contains(&hex::encode([0xab; 32])));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn sign_verify_round_trip(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..300), pi in 0usize..Purpose::ALL.len()) {
            let k = SigningKey::from_seed(&seed);
            let p = Purpose::ALL[pi];
            let sig = k.sign(p, &msg);
            prop_assert_eq!(verify(&k.public(), p, &msg, &sig), Ok(()));
            let other = Purpose::ALL[(pi + 1) % Purpose::ALL.len()];
            prop_assert_eq!(verify(&k.public(), other, &msg, &sig), Err(SignatureError::Invalid));
        }
    }
}
