//! Reference crypto of the distsoc layer, written from `schema/README.md`
//! §4–§6 on the primitive crates alone (no `distsoc-protocol`): domain
//! separation, the strict signature rule (and the bare ZIP-215 and
//! cofactorless equations the vectors contrast it with), ChaCha20-Poly1305,
//! the envelope key wrapping, HMAC-SHA-256.
//!
//! The one reference implementation of the crate: offline mode
//! (`suite::offline`), the wire suite (`suite::cases`) and the vector
//! generators (`vectors`) all use it.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use sha2::{Digest, Sha256, Sha512};

/// Domain separation prefix of every distsoc signature.
pub(crate) const DOMAIN_PREFIX: &[u8] = b"distsoc/2/";

/// The signature purposes (conformance/vectors/README.md "signatures.json").
pub(crate) const PURPOSES: [&str; 15] = [
    "post",
    "profile",
    "post-header",
    "comment",
    "comment-group",
    "delete",
    "visibility",
    "post-visibility",
    "recent-posts",
    "audience-request",
    "audience-response",
    "vouch-grant",
    "heart",
    "group-key",
    "handshake",
];

/// AAD of sealed post content.
pub(crate) const CONTENT_AAD: &[u8] = b"distsoc/2/content";
/// BLAKE3 `derive_key` context of the envelope KEK.
pub(crate) const KEK_CONTEXT: &str = "distsoc/2 envelope kek";
/// Poly1305 tag length.
pub(crate) const TAG_LEN: usize = 16;

/// Refuses a purpose that is not one of [`PURPOSES`].
pub(crate) fn check_purpose(purpose: &str) -> Result<(), String> {
    if PURPOSES.contains(&purpose) {
        Ok(())
    } else {
        Err(format!("unknown signature purpose {purpose:?}"))
    }
}

/// `"distsoc/2/" ‖ purpose ‖ 0x00 ‖ message` (the purpose is not checked: see
/// [`check_purpose`]).
pub(crate) fn signing_input(purpose: &str, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN_PREFIX.len() + purpose.len() + 1 + message.len());
    out.extend_from_slice(DOMAIN_PREFIX);
    out.extend_from_slice(purpose.as_bytes());
    out.push(0);
    out.extend_from_slice(message);
    out
}

/// The Ed25519 public key of `seed` (RFC 8032 §5.1.5).
pub(crate) fn ed_public(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// RFC 8032 signing (deterministic) of exactly `bytes`.
pub(crate) fn ed_sign(seed: &[u8; 32], bytes: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    ed25519_dalek::SigningKey::from_bytes(seed)
        .sign(bytes)
        .to_bytes()
}

/// The public key rule: decodes, not small order (in any encoding), canonical.
pub(crate) fn check_key(public: &[u8; 32]) -> Result<EdwardsPoint, &'static str> {
    let point = CompressedEdwardsY(*public)
        .decompress()
        .ok_or("malformedKey")?;
    if point.is_small_order() {
        return Err("smallOrderKey");
    }
    if point.compress().to_bytes() != *public {
        return Err("nonCanonicalKey");
    }
    Ok(point)
}

/// `k = SHA-512(R ‖ A ‖ M) mod L`.
pub(crate) fn challenge(r: &[u8], a: &[u8], m: &[u8]) -> Scalar {
    let digest = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(m)
        .finalize();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&digest);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// `R` and `S` of a 64-byte signature.
pub(crate) fn split_sig(sig: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    s.copy_from_slice(&sig[32..]);
    (r, s)
}

/// The distsoc strict verification rule (schema/README.md §4), checks in the
/// documented order; the error is the vector error name.
pub(crate) fn strict_verify(
    public: &[u8; 32],
    signed: &[u8],
    sig: &[u8; 64],
) -> Result<(), &'static str> {
    let a = check_key(public)?;
    let (r_bytes, s_bytes) = split_sig(sig);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or("nonCanonicalS")?;
    let r = CompressedEdwardsY(r_bytes).decompress().ok_or("invalid")?;
    if r.compress().to_bytes() != r_bytes {
        return Err("nonCanonicalR");
    }
    let k = challenge(&r_bytes, public, signed);
    let check = ED25519_BASEPOINT_POINT * s - a * k - r;
    if check.mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err("invalid")
    }
}

/// The parts of a signature check: `[S]B - [k]A - R` for any decodable A
/// and R encoding and a canonical S (`None` otherwise); both equations
/// below compare it with the identity.
fn verification_residue(public: &[u8; 32], signed: &[u8], sig: &[u8; 64]) -> Option<EdwardsPoint> {
    let (r_bytes, s_bytes) = split_sig(sig);
    let a = CompressedEdwardsY(*public).decompress()?;
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let k = challenge(&r_bytes, public, signed);
    Some(ED25519_BASEPOINT_POINT * s - a * k - r)
}

/// The bare ZIP-215 rule: any decodable A and R encoding, canonical S,
/// cofactored equation.
pub(crate) fn zip215_ok(public: &[u8; 32], signed: &[u8], sig: &[u8; 64]) -> bool {
    verification_residue(public, signed, sig).is_some_and(|d| d.mul_by_cofactor().is_identity())
}

/// The cofactorless equation `[S]B = R + [k]A`.
pub(crate) fn cofactorless_ok(public: &[u8; 32], signed: &[u8], sig: &[u8; 64]) -> bool {
    verification_residue(public, signed, sig).is_some_and(|d| d.is_identity())
}

/// ChaCha20-Poly1305 `ciphertext ‖ tag` of `plaintext` (RFC 8439).
pub(crate) fn aead_seal(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, String> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    chacha20poly1305::ChaCha20Poly1305::new(key.into())
        .encrypt(
            nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| "ChaCha20-Poly1305 refused to seal".to_owned())
}

/// Opens `ciphertext ‖ tag`: `malformed` if shorter than a tag,
/// `decryptFailed` if it does not authenticate.
pub(crate) fn aead_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, &'static str> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    if sealed.len() < TAG_LEN {
        return Err("malformed");
    }
    chacha20poly1305::ChaCha20Poly1305::new(key.into())
        .decrypt(nonce.into(), Payload { msg: sealed, aad })
        .map_err(|_| "decryptFailed")
}

/// `clamp(SHA-512(seed)[0..32])`: a recipient's X25519 secret (RFC 8032 §5.1.5).
pub(crate) fn x25519_secret(seed: &[u8; 32]) -> [u8; 32] {
    let h = Sha512::digest(seed);
    let mut s = [0u8; 32];
    s.copy_from_slice(&h[..32]);
    s[0] &= 248;
    s[31] &= 127;
    s[31] |= 64;
    s
}

/// The X25519 public key of `secret`.
pub(crate) fn x25519_base(secret: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*secret, x25519_dalek::X25519_BASEPOINT_BYTES)
}

/// Montgomery u of an Ed25519 key, with the public key rule.
pub(crate) fn ed_to_x25519(public: &[u8; 32]) -> Result<[u8; 32], &'static str> {
    Ok(check_key(public)?.to_montgomery().to_bytes())
}

/// The envelope KEK: `BLAKE3.derive_key(KEK_CONTEXT, ss ‖ eph_pub ‖ recipient_x)`.
pub(crate) fn kek(ss: &[u8; 32], eph_pub: &[u8; 32], recipient_x: &[u8; 32]) -> [u8; 32] {
    let mut material = Vec::with_capacity(96);
    material.extend_from_slice(ss);
    material.extend_from_slice(eph_pub);
    material.extend_from_slice(recipient_x);
    blake3::derive_key(KEK_CONTEXT, &material)
}

/// One recipient's intermediate values.
pub(crate) struct WrapTrace {
    pub(crate) recipient_x: [u8; 32],
    pub(crate) shared: [u8; 32],
    pub(crate) kek: [u8; 32],
}

/// The ephemeral public key, one 80-byte entry per recipient, and the
/// recipients' traces.
pub(crate) type Wrapped = ([u8; 32], Vec<Vec<u8>>, Vec<WrapTrace>);

/// Wraps a 32-byte secret for `recipients` (schema/README.md §5, step 3):
/// the ephemeral public key, the 80-byte entries and the first trace.
pub(crate) fn wrap_secret(
    secret: &[u8; 32],
    eph_secret: &[u8; 32],
    recipients: &[[u8; 32]],
) -> Result<Wrapped, String> {
    if recipients.is_empty() {
        return Err("noRecipients".into());
    }
    for (i, r) in recipients.iter().enumerate() {
        if recipients[..i].contains(r) {
            return Err("duplicateRecipient".into());
        }
    }
    let eph_pub = x25519_base(eph_secret);
    let mut entries = Vec::new();
    let mut traces = Vec::new();
    for recipient in recipients {
        let rx = ed_to_x25519(recipient).map_err(|_| "invalidKey".to_owned())?;
        let ss = x25519_dalek::x25519(*eph_secret, rx);
        if ss == [0u8; 32] {
            return Err("invalidKey".into());
        }
        let k = kek(&ss, &eph_pub, &rx);
        let wrapped =
            aead_seal(&k, &[0u8; 12], recipient, secret).map_err(|_| "sealFailed".to_owned())?;
        let mut entry = recipient.to_vec();
        entry.extend_from_slice(&wrapped);
        entries.push(entry);
        traces.push(WrapTrace {
            recipient_x: rx,
            shared: ss,
            kek: k,
        });
    }
    Ok((eph_pub, entries, traces))
}

/// Unwraps the 32-byte secret wrapped for the holder of `seed`.
pub(crate) fn unwrap_secret(
    seed: &[u8; 32],
    eph_pub: &[u8; 32],
    entries: &[Vec<u8>],
) -> Result<[u8; 32], &'static str> {
    if entries.iter().any(|e| e.len() != 80) {
        return Err("malformed");
    }
    let me = ed_public(seed);
    let entry = entries
        .iter()
        .find(|e| e[..32] == me)
        .ok_or("notARecipient")?;
    let my_x = x25519_secret(seed);
    let my_x_pub = x25519_base(&my_x);
    let ss = x25519_dalek::x25519(my_x, *eph_pub);
    if ss == [0u8; 32] {
        return Err("invalidKey");
    }
    let k = kek(&ss, eph_pub, &my_x_pub);
    let plain = aead_open(&k, &[0u8; 12], &me, &entry[32..])?;
    plain.try_into().map_err(|_| "malformed")
}

/// HMAC-SHA-256 of the concatenated `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC accepts keys of any length; this cannot fail.
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(key) else {
        return [0u8; 32];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}
