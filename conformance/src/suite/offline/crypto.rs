//! Offline checks of the crypto vector files: `blake3.json`,
//! `chacha20poly1305.json`, `passphrase.json`, `signatures.json`,
//! `envelope.json`, `fof.json` and `dm_rotation.json`, recomputed with
//! `crate::refcrypto`.

use sha2::{Digest, Sha512};

use super::{
    ax, bad, bx, eh, eq_hex, eq_hex_list, eq_val, exp, expected_error, h_list, hx, ia, ia_list, ih,
    inp, lx, mismatch, signing_input, sx, ux, verdict, Check, Problem,
};
use crate::refcrypto::{
    aead_open, aead_seal, cofactorless_ok, ed_public, ed_sign, ed_to_x25519, hmac_sha256,
    strict_verify, unwrap_secret, wrap_secret, x25519_base, x25519_secret, zip215_ok, CONTENT_AAD,
    TAG_LEN,
};
use crate::vectors::Record;

// ---------------------------------------------------------------------------
// blake3.json

pub(super) fn check_blake3(rec: &Record) -> Check {
    let len = usize::try_from(ux(inp(rec, "input_len")?, "input.input_len")?)
        .map_err(|_| bad("input_len too large"))?;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    // The 32 ASCII bytes of the published key, hex-encoded like every byte
    // string of the vector format.
    let key: [u8; 32] = ia(rec, "key")?;
    let context = sx(inp(rec, "context_string")?, "input.context_string")?;
    for (name, mut hasher) in [
        ("hash", blake3::Hasher::new()),
        ("keyed_hash", blake3::Hasher::new_keyed(&key)),
        ("derive_key", blake3::Hasher::new_derive_key(context)),
    ] {
        let want = eh(rec, name)?;
        let mut got = vec![0u8; want.len()];
        hasher.update(&data).finalize_xof().fill(&mut got);
        eq_hex(&format!("expected.{name}"), &want, &got)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// chacha20poly1305.json

pub(super) fn check_chacha(rec: &Record, kind: &str) -> Check {
    match kind {
        "aead" => {
            let key: [u8; 32] = ia(rec, "key")?;
            let nonce: [u8; 12] = ia(rec, "nonce")?;
            let (aad, pt) = (ih(rec, "aad")?, ih(rec, "plaintext")?);
            let sealed = aead_seal(&key, &nonce, &aad, &pt)?;
            let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
            eq_hex("expected.ciphertext", &eh(rec, "ciphertext")?, ct)?;
            eq_hex("expected.tag", &eh(rec, "tag")?, tag)?;
            let opened = aead_open(&key, &nonce, &aad, &sealed);
            eq_val("opening the sealed bytes", Ok(pt), opened)
        }
        "open" => {
            let got = aead_open(
                &ia(rec, "key")?,
                &ia(rec, "nonce")?,
                &ih(rec, "aad")?,
                &ih(rec, "sealed")?,
            );
            verdict(
                "opening input.sealed",
                rec,
                got.map(drop).map_err(str::to_owned),
            )
        }
        _ => {
            eq_hex(
                "expected.aad (the content AAD)",
                &eh(rec, "aad")?,
                CONTENT_AAD,
            )?;
            let cek: [u8; 32] = ia(rec, "cek")?;
            let nonce: [u8; 12] = ia(rec, "nonce")?;
            let pt = ih(rec, "plaintext")?;
            let sealed = aead_seal(&cek, &nonce, CONTENT_AAD, &pt)?;
            eq_hex("expected.sealed", &eh(rec, "sealed")?, &sealed)?;
            eq_val(
                "opening the sealed content",
                Ok(pt),
                aead_open(&cek, &nonce, CONTENT_AAD, &sealed),
            )
        }
    }
}

// ---------------------------------------------------------------------------
// passphrase.json

pub(super) fn check_passphrase(rec: &Record, kind: &str) -> Check {
    let kdf = inp(rec, "kdf")?;
    let param = |k: &str| -> Result<u64, Problem> {
        ux(
            kdf.get(k)
                .ok_or_else(|| bad(format!("input.kdf.{k} is missing")))?,
            k,
        )
    };
    let (m, t, p) = (
        param("memory_kib")?,
        param("iterations")?,
        param("parallelism")?,
    );
    let salt: [u8; 16] = ax(
        kdf.get("salt")
            .ok_or_else(|| bad("input.kdf.salt is missing"))?,
        "input.kdf.salt",
    )?;
    let pass = ih(rec, "passphrase")?;
    let nonce: [u8; 12] = ia(rec, "nonce")?;
    let aad = ih(rec, "aad")?;
    // Bounds, checked before any work.
    let in_bounds =
        (8192..=1_048_576).contains(&m) && (1..=10).contains(&t) && (1..=4).contains(&p);
    let derive = || -> Result<[u8; 32], Problem> {
        let to32 = |v: u64| u32::try_from(v).map_err(|_| bad("KDF parameter above u32"));
        let params = argon2::Params::new(to32(m)?, to32(t)?, to32(p)?, Some(32))
            .map_err(|e| bad(format!("argon2 parameters: {e}")))?;
        let mut key = [0u8; 32];
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(&pass, &salt, &mut key)
            .map_err(|e| bad(format!("argon2: {e}")))?;
        Ok(key)
    };
    match kind {
        "seal" => {
            if !in_bounds {
                return Err(mismatch(
                    "KDF parameters",
                    "within bounds",
                    format!("m={m} t={t} p={p}"),
                ));
            }
            let key = derive()?;
            eq_hex("expected.key", &eh(rec, "key")?, &key)?;
            let pt = ih(rec, "plaintext")?;
            let sealed = aead_seal(&key, &nonce, &aad, &pt)?;
            eq_hex("expected.sealed", &eh(rec, "sealed")?, &sealed)?;
            eq_val(
                "opening the sealed bytes",
                Ok(pt),
                aead_open(&key, &nonce, &aad, &sealed),
            )
        }
        _ => {
            let sealed = ih(rec, "sealed")?;
            let got = if !in_bounds {
                Err("paramsOutOfBounds".to_owned())
            } else if sealed.len() < TAG_LEN {
                Err("malformed".to_owned())
            } else {
                let key = derive()?;
                aead_open(&key, &nonce, &aad, &sealed)
                    .map(drop)
                    .map_err(|_| "wrongPassphraseOrCorrupt".to_owned())
            };
            verdict("opening input.sealed", rec, got)
        }
    }
}

// ---------------------------------------------------------------------------
// signatures.json

pub(super) fn check_signatures(rec: &Record, kind: &str) -> Check {
    if kind == "batch" {
        // Batch verification gives exactly the verdict of single verification,
        // reporting the first failing index in slice order.
        let mut first: Option<(usize, &'static str)> = None;
        for (i, item) in lx(inp(rec, "items")?, "input.items")?.iter().enumerate() {
            let f = |k: &str| {
                item.get(k)
                    .ok_or_else(|| bad(format!("input.items[{i}].{k} is missing")))
            };
            let public: [u8; 32] = ax(f("public_key")?, "public_key")?;
            let sig: [u8; 64] = ax(f("signature")?, "signature")?;
            let signed = signing_input(
                sx(f("purpose")?, "purpose")?,
                &hx(f("message")?, "message")?,
            )?;
            if let Err(e) = strict_verify(&public, &signed, &sig) {
                first = Some((i, e));
                break;
            }
        }
        return match (expected_error(rec)?, first) {
            (None, None) => Ok(()),
            (None, Some((i, e))) => Err(mismatch(
                "batch",
                "all verify",
                format!("item {i} fails with `{e}`"),
            )),
            (Some(want), None) => Err(mismatch(
                "batch",
                format!("fails with `{want}`"),
                "all verify",
            )),
            (Some(want), Some((i, e))) => {
                let index = ux(exp(rec, "index")?, "expected.index")?;
                eq_val(
                    "first failing item (index, error)",
                    (index, want),
                    (i as u64, e),
                )
            }
        };
    }
    let public: [u8; 32] = ia(rec, "public_key")?;
    let msg = ih(rec, "message")?;
    let sig: [u8; 64] = ia(rec, "signature")?;
    let domain = bx(inp(rec, "domain")?, "input.domain")?;
    let signed = if domain {
        let si = signing_input(sx(inp(rec, "purpose")?, "input.purpose")?, &msg)?;
        eq_hex("expected.signing_input", &eh(rec, "signing_input")?, &si)?;
        si
    } else {
        msg
    };
    if rec.input.contains_key("seed") {
        let seed: [u8; 32] = ia(rec, "seed")?;
        eq_hex("public key of input.seed", &public, &ed_public(&seed))?;
        eq_hex(
            "deterministic signature by input.seed",
            &sig,
            &ed_sign(&seed, &signed),
        )?;
    }
    verdict(
        "strict verification",
        rec,
        strict_verify(&public, &signed, &sig).map_err(str::to_owned),
    )?;
    eq_val(
        "expected.zip215_valid",
        bx(exp(rec, "zip215_valid")?, "expected.zip215_valid")?,
        zip215_ok(&public, &signed, &sig),
    )?;
    eq_val(
        "expected.cofactorless_valid",
        bx(
            exp(rec, "cofactorless_valid")?,
            "expected.cofactorless_valid",
        )?,
        cofactorless_ok(&public, &signed, &sig),
    )
}

// ---------------------------------------------------------------------------
// envelope.json

/// Opens a sealed envelope as the holder of `seed`.
fn open_envelope(
    seed: &[u8; 32],
    eph_pub: &[u8; 32],
    entries: &[Vec<u8>],
    nonce: &[u8; 12],
    ciphertext: &[u8],
) -> Result<Vec<u8>, &'static str> {
    let cek = unwrap_secret(seed, eph_pub, entries)?;
    aead_open(&cek, nonce, CONTENT_AAD, ciphertext)
}

pub(super) fn check_envelope(rec: &Record, kind: &str) -> Check {
    match kind {
        "seal" => {
            let seeds: Vec<[u8; 32]> = ia_list(rec, "recipient_seeds")?;
            let recipients: Vec<[u8; 32]> = ia_list(rec, "recipients")?;
            let pubs: Vec<Vec<u8>> = seeds.iter().map(|s| ed_public(s).to_vec()).collect();
            let rec_v: Vec<Vec<u8>> = recipients.iter().map(|r| r.to_vec()).collect();
            eq_hex_list("input.recipients (public keys of the seeds)", &rec_v, &pubs)?;
            let cek: [u8; 32] = ia(rec, "cek")?;
            let nonce: [u8; 12] = ia(rec, "nonce")?;
            let eph: [u8; 32] = ia(rec, "eph_secret")?;
            let pt = ih(rec, "plaintext")?;
            let (eph_pub, entries, traces) = wrap_secret(&cek, &eph, &recipients)
                .map_err(|e| mismatch("wrapping the CEK", "success", format!("`{e}`")))?;
            eq_hex("expected.eph_pub", &eh(rec, "eph_pub")?, &eph_pub)?;
            eq_hex_list(
                "expected.wrapped",
                &h_list(exp(rec, "wrapped")?, "expected.wrapped")?,
                &entries,
            )?;
            let ct = aead_seal(&cek, &nonce, CONTENT_AAD, &pt)?;
            eq_hex("expected.ciphertext", &eh(rec, "ciphertext")?, &ct)?;
            let first = exp(rec, "first_recipient")?;
            let fv = |k: &str| -> Result<Vec<u8>, Problem> {
                hx(
                    first
                        .get(k)
                        .ok_or_else(|| bad(format!("expected.first_recipient.{k} is missing")))?,
                    k,
                )
            };
            let t = traces.first().ok_or_else(|| bad("no recipients"))?;
            eq_hex(
                "expected.first_recipient.recipient_x25519",
                &fv("recipient_x25519")?,
                &t.recipient_x,
            )?;
            eq_hex(
                "expected.first_recipient.shared_secret",
                &fv("shared_secret")?,
                &t.shared,
            )?;
            eq_hex("expected.first_recipient.kek", &fv("kek")?, &t.kek)?;
            for (i, seed) in seeds.iter().enumerate() {
                eq_val(
                    &format!("recipient {i} opening the envelope"),
                    Ok(pt.clone()),
                    open_envelope(seed, &eph_pub, &entries, &nonce, &ct),
                )?;
            }
            Ok(())
        }
        "open" => {
            let got = open_envelope(
                &ia(rec, "seed")?,
                &ia(rec, "eph_pub")?,
                &h_list(inp(rec, "wrapped")?, "input.wrapped")?,
                &ia(rec, "nonce")?,
                &ih(rec, "ciphertext")?,
            );
            match got {
                Ok(pt) if rec.valid => eq_hex("expected.plaintext", &eh(rec, "plaintext")?, &pt),
                other => verdict("opening", rec, other.map(drop).map_err(str::to_owned)),
            }
        }
        "wrap" => {
            let got = wrap_secret(
                &ia(rec, "cek")?,
                &ia(rec, "eph_secret")?,
                &ia_list(rec, "recipients")?,
            );
            verdict("wrapping", rec, got.map(drop))
        }
        "group" => {
            let group_seed: [u8; 32] = ia(rec, "group_seed")?;
            let group_id = ed_public(&group_seed);
            eq_hex("expected.group_id", &eh(rec, "group_id")?, &group_id)?;
            let member_seeds: Vec<[u8; 32]> = ia_list(rec, "member_seeds")?;
            let members: Vec<[u8; 32]> = ia_list(rec, "members")?;
            let (geph, gw, _) = wrap_secret(&group_seed, &ia(rec, "group_eph_secret")?, &members)
                .map_err(|e| {
                mismatch("wrapping the group seed", "success", format!("`{e}`"))
            })?;
            eq_hex("expected.group_eph_pub", &eh(rec, "group_eph_pub")?, &geph)?;
            eq_hex_list(
                "expected.group_wrapped",
                &h_list(exp(rec, "group_wrapped")?, "expected.group_wrapped")?,
                &gw,
            )?;
            let cek: [u8; 32] = ia(rec, "cek")?;
            let nonce: [u8; 12] = ia(rec, "nonce")?;
            let pt = ih(rec, "plaintext")?;
            let (eph_pub, entries, _) = wrap_secret(&cek, &ia(rec, "eph_secret")?, &[group_id])
                .map_err(|e| {
                    mismatch(
                        "wrapping the CEK for the group",
                        "success",
                        format!("`{e}`"),
                    )
                })?;
            eq_hex("expected.eph_pub", &eh(rec, "eph_pub")?, &eph_pub)?;
            eq_hex_list(
                "expected.wrapped",
                &h_list(exp(rec, "wrapped")?, "expected.wrapped")?,
                &entries,
            )?;
            let ct = aead_seal(&cek, &nonce, CONTENT_AAD, &pt)?;
            eq_hex("expected.ciphertext", &eh(rec, "ciphertext")?, &ct)?;
            for (i, (seed, member)) in member_seeds.iter().zip(&members).enumerate() {
                eq_hex(
                    &format!("public key of member seed {i}"),
                    member,
                    &ed_public(seed),
                )?;
                let got = unwrap_secret(seed, &geph, &gw);
                eq_val(
                    &format!("member {i} unwrapping the group seed"),
                    Ok(group_seed),
                    got,
                )?;
                eq_val(
                    &format!("member {i} opening the group post with the group seed"),
                    Ok(pt.clone()),
                    open_envelope(&group_seed, &eph_pub, &entries, &nonce, &ct),
                )?;
                eq_val(
                    &format!("member {i} opening the group post with its own key"),
                    Err("notARecipient"),
                    open_envelope(seed, &eph_pub, &entries, &nonce, &ct),
                )?;
            }
            Ok(())
        }
        "group-unwrap" => {
            let group_id: [u8; 32] = ia(rec, "group_id")?;
            let got = unwrap_secret(
                &ia(rec, "seed")?,
                &ia(rec, "eph_pub")?,
                &h_list(inp(rec, "wrapped")?, "input.wrapped")?,
            )
            .and_then(|seed| {
                if ed_public(&seed) == group_id {
                    Ok(())
                } else {
                    Err("groupMismatch")
                }
            });
            verdict("unwrapping the group seed", rec, got.map_err(str::to_owned))
        }
        _ => {
            // keyconv
            let public: [u8; 32] = ia(rec, "public_key")?;
            match ed_to_x25519(&public) {
                Ok(x) if rec.valid => {
                    eq_hex("expected.x25519_public", &eh(rec, "x25519_public")?, &x)?;
                    if rec.input.contains_key("seed") {
                        let seed: [u8; 32] = ia(rec, "seed")?;
                        eq_hex("public key of input.seed", &public, &ed_public(&seed))?;
                        // The vector holds SHA-512(seed)[0..32] as is (what
                        // ed25519-dalek's `to_scalar_bytes` returns); X25519
                        // clamps on use, so it is the same secret as
                        // clamp(SHA-512(seed)[0..32]), which the README names.
                        let prefix = &Sha512::digest(seed)[..32];
                        let want = eh(rec, "x25519_secret")?;
                        eq_hex(
                            "expected.x25519_secret (SHA-512(seed)[0..32])",
                            &want,
                            prefix,
                        )?;
                        let secret = x25519_secret(&seed);
                        eq_hex(
                            "X25519(clamp(SHA-512(seed)[0..32]), 9)",
                            &x,
                            &x25519_base(&secret),
                        )?;
                        let as_given: [u8; 32] =
                            ax(exp(rec, "x25519_secret")?, "expected.x25519_secret")?;
                        eq_hex(
                            "X25519(expected.x25519_secret, 9)",
                            &x,
                            &x25519_base(&as_given),
                        )?;
                    }
                    Ok(())
                }
                other => verdict(
                    "key conversion",
                    rec,
                    other.map(drop).map_err(str::to_owned),
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// fof.json (schema/README.md §6)

fn fof_tag(v: &[u8; 32], pub_post: &[u8; 32]) -> [u8; 2] {
    let full = hmac_sha256(v, &[b"fof-tag", pub_post]);
    [full[0], full[1]]
}

fn fof_slot_key(v: &[u8; 32], pub_post: &[u8; 32]) -> [u8; 32] {
    hmac_sha256(v, &[b"fof-slot", pub_post])
}

fn fof_vouch_mac(v: &[u8; 32], pub_post: &[u8; 32], comment_hash: &[u8; 32]) -> [u8; 16] {
    let full = hmac_sha256(v, &[b"fof-vouch", pub_post, comment_hash]);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// The first of `keys` (in order) whose slot opens to a seed of `pub_post`.
pub(super) fn fof_open_slots(
    keys: &[[u8; 32]],
    pub_post: &[u8; 32],
    slots: &[Vec<u8>],
) -> Option<(usize, [u8; 32])> {
    for (index, v) in keys.iter().enumerate() {
        let tag = fof_tag(v, pub_post);
        let key = fof_slot_key(v, pub_post);
        for slot in slots.iter().filter(|s| s.len() == 50 && s[..2] == tag) {
            let Ok(plain) = aead_open(&key, &[0u8; 12], pub_post, &slot[2..]) else {
                continue;
            };
            let Ok(seed) = <[u8; 32]>::try_from(plain) else {
                continue;
            };
            if ed_public(&seed) == *pub_post {
                return Some((index, seed));
            }
        }
    }
    None
}

pub(super) fn check_fof(rec: &Record, kind: &str) -> Check {
    let pub_post: [u8; 32] = ia(rec, "pub_post")?;
    match kind {
        "derive" => {
            let v: [u8; 32] = ia(rec, "vouch_key")?;
            let h: [u8; 32] = ia(rec, "comment_hash")?;
            eq_hex("expected.tag", &eh(rec, "tag")?, &fof_tag(&v, &pub_post))?;
            eq_hex(
                "expected.slot_key",
                &eh(rec, "slot_key")?,
                &fof_slot_key(&v, &pub_post),
            )?;
            eq_hex(
                "expected.vouch_mac",
                &eh(rec, "vouch_mac")?,
                &fof_vouch_mac(&v, &pub_post, &h),
            )
        }
        "make_slots" => {
            let seed: [u8; 32] = ia(rec, "priv_post_seed")?;
            let keys: Vec<[u8; 32]> = ia_list(rec, "vouch_keys")?;
            if ed_public(&seed) != pub_post {
                return verdict("making slots", rec, Err("keyMismatch".into()));
            }
            verdict("making slots", rec, Ok(()))?;
            let mut slots = Vec::new();
            for v in &keys {
                let mut slot = fof_tag(v, &pub_post).to_vec();
                slot.extend(aead_seal(
                    &fof_slot_key(v, &pub_post),
                    &[0u8; 12],
                    &pub_post,
                    &seed,
                )?);
                slots.push(slot);
            }
            eq_hex_list(
                "expected.slots",
                &h_list(exp(rec, "slots")?, "expected.slots")?,
                &slots,
            )?;
            for (i, v) in keys.iter().enumerate() {
                eq_val(
                    &format!("vouch key {i} opening its slot"),
                    Some((0, seed)),
                    fof_open_slots(std::slice::from_ref(v), &pub_post, &slots),
                )?;
            }
            Ok(())
        }
        "open_slots" => {
            let got = fof_open_slots(
                &ia_list(rec, "vouch_keys")?,
                &pub_post,
                &h_list(inp(rec, "slots")?, "input.slots")?,
            );
            let found = bx(exp(rec, "found")?, "expected.found")?;
            let want = if found {
                Some((
                    usize::try_from(ux(exp(rec, "index")?, "expected.index")?)
                        .unwrap_or(usize::MAX),
                    ax::<32>(exp(rec, "seed")?, "expected.seed")?,
                ))
            } else {
                None
            };
            let show = |x: &Option<(usize, [u8; 32])>| match x {
                None => "not found".to_owned(),
                Some((i, s)) => format!("index {i}, seed {}", hex::encode(s)),
            };
            if want == got {
                Ok(())
            } else {
                Err(mismatch("open_slots", show(&want), show(&got)))
            }
        }
        "group_sig" => {
            let h: [u8; 32] = ia(rec, "comment_hash")?;
            let sig: [u8; 64] = ia(rec, "signature")?;
            let signed = signing_input("comment-group", &h)?;
            if rec.input.contains_key("priv_post_seed") {
                let seed: [u8; 32] = ia(rec, "priv_post_seed")?;
                eq_hex(
                    "public key of input.priv_post_seed",
                    &pub_post,
                    &ed_public(&seed),
                )?;
                eq_hex(
                    "deterministic group signature",
                    &sig,
                    &ed_sign(&seed, &signed),
                )?;
            }
            if rec.valid {
                eq_hex(
                    "expected.signing_input",
                    &eh(rec, "signing_input")?,
                    &signed,
                )?;
            }
            verdict(
                "verifying the group signature",
                rec,
                strict_verify(&pub_post, &signed, &sig).map_err(str::to_owned),
            )
        }
        _ => {
            // vouch_mac: index of the first matching candidate, or null.
            let h: [u8; 32] = ia(rec, "comment_hash")?;
            let mac = ih(rec, "mac")?;
            let got = ia_list::<32>(rec, "candidates")?
                .iter()
                .position(|v| fof_vouch_mac(v, &pub_post, &h)[..] == mac[..])
                .map(|i| i as u64);
            let want = exp(rec, "index")?;
            let want = if want.is_null() {
                None
            } else {
                Some(ux(want, "expected.index")?)
            };
            eq_val("index of the matching candidate", want, got)
        }
    }
}

// ---------------------------------------------------------------------------
// dm_rotation.json (schema/README.md §9.1), from the spec's context strings

const DM_SEND: &str = "distsoc 2026-12 dm send v1";
const DM_RECV: &str = "distsoc 2026-12 dm recv v1";
const DM_NEXT: &str = "distsoc 2026-12 dm next v1";

pub(super) fn check_dm_rotation(rec: &Record, kind: &str) -> Check {
    let seed: [u8; 32] = ia(rec, "seed")?;
    match kind {
        "step" => {
            let send_seed = blake3::derive_key(DM_SEND, &seed);
            let recv_seed = blake3::derive_key(DM_RECV, &seed);
            eq_hex("expected.send_seed", &eh(rec, "send_seed")?, &send_seed)?;
            eq_hex(
                "expected.send_id",
                &eh(rec, "send_id")?,
                &ed_public(&send_seed),
            )?;
            eq_hex("expected.recv_seed", &eh(rec, "recv_seed")?, &recv_seed)?;
            eq_hex(
                "expected.recv_id",
                &eh(rec, "recv_id")?,
                &ed_public(&recv_seed),
            )?;
            eq_hex(
                "expected.next_seed",
                &eh(rec, "next_seed")?,
                &blake3::derive_key(DM_NEXT, &seed),
            )
        }
        "window" => {
            let size = usize::try_from(ux(inp(rec, "size")?, "input.size")?)
                .map_err(|_| bad("size too large"))?;
            let mut s = seed;
            let mut ids = Vec::with_capacity(size.min(64));
            for _ in 0..size.min(64) {
                ids.push(ed_public(&blake3::derive_key(DM_RECV, &s)).to_vec());
                s = blake3::derive_key(DM_NEXT, &s);
            }
            eq_hex_list(
                "expected.recv_ids",
                &h_list(exp(rec, "recv_ids")?, "expected.recv_ids")?,
                &ids,
            )
        }
        other => Err(bad(format!("unknown kind {other}"))),
    }
}
