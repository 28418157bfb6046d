//! SIG: the strict signature rule of schema/README.md §4 at the wire level,
//! with the boundaries of `conformance/vectors/signatures.json` applied to
//! real signed objects (posts; on nodes also profiles and recent-post
//! lists): non-canonical S, small-order keys, wrong purpose or domain
//! prefix are refused; a mixed-order key with a cofactored-valid signature
//! is accepted.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;

use super::def;
use super::node::{
    author_update_push, profile_bytes, profile_update, push_refused_any, recent_bytes,
};
use super::post::{
    accepting_session, is_ack, post_bytes, push_accepted, push_refused, served_back, signing_input,
    text, Signer, Sp,
};
use crate::suite::ctx::{now_ms, CaseError, Ctx, Outcome};
use crate::suite::model::{Kind, Level, Role};
use crate::suite::registry::Case;

const RULE: &str = "Verification rule (strict, and identical for single and batch verification). Reject if: S ≥ L (non-canonical scalar); the public key A or R is not a canonical point encoding [...]; A is one of the 8 small-order points. Otherwise accept iff the **cofactored** equation `[8][S]B = [8]R + [8][k]A` holds.";
const ACK_VALIDATED: &str = "Ack: the message was parsed, validated and accepted (stored or knowingly ignored). (wire.capnp Ack) An anchor acknowledges a ProfileUpdate only if its signature verifies; otherwise it answers badSignature. (schema/README.md §12)";
const DOMAIN: &str = "Signature = Ed25519 (RFC 8032, pure) over `\"distsoc/2/\" ‖ purpose ‖ 0x00 ‖ canonical bytes`, with these purposes: [...] `post` signs `Post`.";

/// The group order L, little endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// `s + L` as 32 little-endian bytes (fits: s < L < 2^253).
fn plus_l(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s.get(i).copied().unwrap_or(0)) + u16::from(L[i]) + carry;
        out[i] = (v & 0xff) as u8;
        carry = v >> 8;
    }
    out
}

/// A valid post by fixture 0 whose signature is then replaced by `f(sig)`.
fn resigned(
    ctx: &mut Ctx,
    what: &str,
    f: impl Fn(&Signer, &[u8], Vec<u8>) -> Vec<u8>,
) -> (Signer, Vec<u8>) {
    let a = Signer::fixture(0);
    let mut sp = Sp::public(&a, &text(ctx, what));
    sp.sig = f(&a, &sp.post, sp.sig);
    let frame = sp.push();
    (a, frame)
}

/// A post by the small-order key `torsion` with R = [r]B, S = r: it passes
/// the bare cofactored equation for any message.
fn small_order_post(ctx: &mut Ctx, torsion: usize) -> Sp {
    let key = EIGHT_TORSION[torsion % 8].compress().to_bytes();
    let post = post_bytes(&key, now_ms(), &text(ctx, "small-order key"));
    let r = Scalar::from_bytes_mod_order(ctx.random32());
    let mut sig = (ED25519_BASEPOINT_POINT * r).compress().to_bytes().to_vec();
    sig.extend_from_slice(r.as_bytes());
    Sp {
        post,
        sig,
        ..Sp::default()
    }
}

async fn small_order(ctx: &mut Ctx, torsion: usize) -> Result<Outcome, CaseError> {
    let sp = small_order_post(ctx, torsion);
    // The baseline: a valid post by a fresh author, like this one unknown.
    let fresh = Signer::Seed(ctx.random32());
    push_refused(ctx, &fresh, &sp.push(), &["badSignature"]).await
}

/// The SIG cases.
pub(crate) fn cases() -> Vec<Case> {
    use Kind::{Negative, Positive};
    use Level::Must;
    vec![
        def("SIG-4-001", Must, Negative, Role::Any, None, "a post signature with S replaced by S + L (same scalar mod L) is refused badSignature", "schema/README.md §4", RULE)
            .run(|ctx| Box::pin(async move {
                let (a, f) = resigned(ctx, "s+l", |_, _, sig| {
                    let mut out = sig[..32].to_vec();
                    out.extend(plus_l(&sig[32..]));
                    out
                });
                push_refused(ctx, &a, &f, &["badSignature"]).await
            })),
        def("SIG-4-002", Must, Negative, Role::Any, None, "a post signature with the top bit of S set is refused badSignature", "schema/README.md §4", RULE)
            .run(|ctx| Box::pin(async move {
                let (a, f) = resigned(ctx, "s bit 255", |_, _, mut sig| {
                    if let Some(b) = sig.get_mut(63) {
                        *b |= 0x80;
                    }
                    sig
                });
                push_refused(ctx, &a, &f, &["badSignature"]).await
            })),
        def("SIG-4-003", Must, Negative, Role::Any, None, "an all-zero post signature is refused badSignature", "schema/README.md §4", RULE)
            .run(|ctx| Box::pin(async move {
                let (a, f) = resigned(ctx, "zero sig", |_, _, _| vec![0; 64]);
                push_refused(ctx, &a, &f, &["badSignature"]).await
            })),
        def("SIG-4-004", Must, Negative, Role::Any, None, "a post signed with purpose `comment` instead of `post` is refused badSignature", "schema/README.md §4", DOMAIN)
            .run(|ctx| Box::pin(async move {
                let (a, f) = resigned(ctx, "wrong purpose", |k, post, _| k.sign("comment", post).to_vec());
                push_refused(ctx, &a, &f, &["badSignature"]).await
            })),
        def("SIG-4-005", Must, Negative, Role::Any, None, "a post signed as raw Ed25519 without the domain prefix is refused badSignature", "schema/README.md §4", DOMAIN)
            .run(|ctx| Box::pin(async move {
                let (a, f) = resigned(ctx, "raw", |k, post, _| k.sign_raw(post).to_vec());
                push_refused(ctx, &a, &f, &["badSignature"]).await
            })),
        def("SIG-4-006", Must, Negative, Role::Any, None, "a post signed under the prefix `distsoc/1/` is refused badSignature", "schema/README.md §4", DOMAIN)
            .run(|ctx| Box::pin(async move {
                let (a, f) = resigned(ctx, "v1 prefix", |k, post, _| {
                    let mut input = b"distsoc/1/post\0".to_vec();
                    input.extend_from_slice(post);
                    k.sign_raw(&input).to_vec()
                });
                push_refused(ctx, &a, &f, &["badSignature"]).await
            })),
        def("SIG-4-007", Must, Negative, Role::Any, None, "a post signed without the 0x00 after the purpose is refused badSignature", "schema/README.md §4", DOMAIN)
            .run(|ctx| Box::pin(async move {
                let (a, f) = resigned(ctx, "no separator", |k, post, _| {
                    let mut input = b"distsoc/2/post".to_vec();
                    input.extend_from_slice(post);
                    k.sign_raw(&input).to_vec()
                });
                push_refused(ctx, &a, &f, &["badSignature"]).await
            })),
        def("SIG-4-008", Must, Negative, Role::Any, None, "a post by the small-order key 0x01 00…00 (identity point; R = [r]B, S = r) is refused badSignature", "schema/README.md §4", RULE)
            .run(|ctx| Box::pin(small_order(ctx, 0))),
        def("SIG-4-009", Must, Negative, Role::Any, None, "a post by a small-order key of order 8 (R = [r]B, S = r) is refused badSignature", "schema/README.md §4", RULE)
            .run(|ctx| Box::pin(small_order(ctx, 1))),
        def("SIG-4-010", Must, Positive, Role::Any, None, "a post by a mixed-order key with a cofactored-valid signature is accepted (cofactorless verifiers refuse it)", "schema/README.md §4", RULE)
            .run(|ctx| Box::pin(async move {
                let a = Signer::mixed();
                let sp = Sp::public(&a, &text(ctx, "mixed-order"));
                push_accepted(ctx, &a, &sp.push(), &sp.post, "post by a mixed-order key").await
            })),
        def("SIG-4-011", Must, Negative, Role::Any, None, "a post signed by the mixed-order key's prime-order part is refused badSignature", "schema/README.md §4", RULE)
            .run(|ctx| Box::pin(async move {
                let a = Signer::mixed();
                let mut sp = Sp::public(&a, &text(ctx, "mixed-order wrong key"));
                if let Signer::Mixed { a: secret, .. } = &a {
                    // Sign as the key [a]B (k computed over that key), present A + T.
                    let prime = (ED25519_BASEPOINT_POINT * secret).compress().to_bytes();
                    let input = signing_input("post", &sp.post);
                    let r = Scalar::from_bytes_mod_order(ctx.random32());
                    let big_r = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
                    let k = {
                        use sha2::{Digest, Sha512};
                        let mut w = [0u8; 64];
                        w.copy_from_slice(&Sha512::new().chain_update(big_r).chain_update(prime).chain_update(&input).finalize());
                        Scalar::from_bytes_mod_order_wide(&w)
                    };
                    let s = r + k * secret;
                    sp.sig = [big_r, *s.as_bytes()].concat();
                }
                push_refused(ctx, &a, &sp.push(), &["badSignature"]).await
            })),
        def("SIG-4-012", Must, Negative, Role::Node, None, "a ProfileUpdate signed by a small-order key is refused badSignature", "schema/README.md §4", RULE)
            .run(|ctx| Box::pin(async move {
                let key = EIGHT_TORSION[2].compress().to_bytes();
                let body = profile_bytes(&key, "small", now_ms());
                let r = Scalar::from_bytes_mod_order(ctx.random32());
                let mut sig = (ED25519_BASEPOINT_POINT * r).compress().to_bytes().to_vec();
                sig.extend_from_slice(r.as_bytes());
                push_refused_any(ctx, &profile_update(&body, &sig), &["badSignature"]).await
            })),
        def("SIG-4-300", Must, Negative, Role::Anchor, None, "an anchor refuses a ProfileUpdate with a flipped signature bit with badSignature (Ack means validated and accepted)", "schema/README.md §12", ACK_VALIDATED)
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let body = profile_bytes(&a.public(), "x", now_ms());
                let mut sig = a.sign("profile", &body).to_vec();
                sig[3] ^= 0x01;
                push_refused_any(ctx, &profile_update(&body, &sig), &["badSignature"]).await
            })),
        def("SIG-4-301", Must, Positive, Role::Anchor, None, "an anchor acknowledges a validly signed ProfileUpdate", "schema/README.md §12", ACK_VALIDATED)
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let body = profile_bytes(&a.public(), "valid", now_ms());
                let sig = a.sign("profile", &body);
                let s = ctx.connect().await?;
                let r = s.request(&profile_update(&body, &sig)).await;
                let expected = "Ack";
                let outcome = match is_ack(&r) {
                    Ok(()) => Outcome::pass(expected, "Ack"),
                    Err(e) => Outcome::fail(expected, e),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
        def("SIG-4-013", Must, Negative, Role::Node, None, "a ProfileUpdate signed with purpose `post` is refused badSignature", "schema/README.md §4", DOMAIN)
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let body = profile_bytes(&a.public(), "purpose", now_ms());
                let sig = a.sign("post", &body);
                push_refused_any(ctx, &profile_update(&body, &sig), &["badSignature"]).await
            })),
        def("SIG-4-014", Must, Negative, Role::Node, None, "an AuthorUpdatePush whose list is signed with S + L is refused badSignature", "schema/README.md §4", RULE)
            .run(|ctx| Box::pin(async move {
                let a = Signer::Seed(ctx.random32());
                let body = recent_bytes(&a.public(), 5, now_ms(), &[]);
                let sig = a.sign("recent-posts", &body);
                let mut bad = sig[..32].to_vec();
                bad.extend(plus_l(&sig[32..]));
                push_refused_any(ctx, &author_update_push(&body, &bad), &["badSignature"]).await
            })),
        def("SIG-4-015", Must, Positive, Role::Any, None, "the same post signed twice with different valid nonces is one post (PostId does not cover the signature)", "schema/README.md §4", "**PostId** = BLAKE3-256(canonical bytes of `Post`).")
            .run(|ctx| Box::pin(async move {
                let a = Signer::mixed();
                let s = match accepting_session(ctx, &a).await? { Ok(s) => s, Err(o) => return Ok(o) };
                let sp = Sp::public(&a, &text(ctx, "two signatures"));
                let r1 = s.request(&sp.push()).await;
                // Signer::Mixed is deterministic; change the nonce by hand.
                let mut sp2 = sp.clone();
                if let Signer::Mixed { a: secret, public } = &a {
                    let input = signing_input("post", &sp.post);
                    let r = Scalar::from_bytes_mod_order(ctx.random32());
                    let big_r = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
                    let k = {
                        use sha2::{Digest, Sha512};
                        let mut w = [0u8; 64];
                        w.copy_from_slice(&Sha512::new().chain_update(big_r).chain_update(public).chain_update(&input).finalize());
                        Scalar::from_bytes_mod_order_wide(&w)
                    };
                    sp2.sig = [big_r, *(r + k * secret).as_bytes()].concat();
                }
                let r2 = s.request(&sp2.push()).await;
                let expected = "both pushes acknowledged; the post is served under its one PostId";
                let outcome = match (is_ack(&r1), is_ack(&r2)) {
                    (Ok(()), Ok(())) => {
                        let id = sp.id();
                        match served_back(ctx, &s, &a.public(), &id, &sp.post).await {
                            Ok(how) => Outcome::pass(expected, format!("Ack, Ack; {how}")),
                            Err(e) => Outcome::fail(expected, format!("Ack, Ack; {e}")),
                        }
                    }
                    (x, y) => Outcome::fail(expected, format!("first {x:?}, second {y:?}")),
                };
                Ok(outcome.and_usable(ctx.still_usable(&s).await))
            })),
    ]
}
