//! Checks every record of the crypto vector files in `conformance/vectors/`
//! (`signatures`, `envelope`, `fof`, `passphrase`, `blake3`,
//! `chacha20poly1305`, `dm_rotation`) against the protocol functions.
//!
//! This file reads the JSON only; it shares no code with the generator in
//! `conformance/src/vectors/crypto.rs`. Every record is dispatched on its
//! `input.kind`; an unknown kind fails the test, and the number of checked
//! records must equal the file's record count.
// Reads its vector files: the sans-IO lint (protocol/clippy.toml) does not apply to tests.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::Value;
use sha2::{Digest, Sha512};

use distsoc_protocol::envelope::{self, Cek, SealedEnvelope, WrappedKey};
use distsoc_protocol::fof::{self, VouchKey, WrapSlot};
use distsoc_protocol::passphrase::{self, KdfParams};
use distsoc_protocol::sign::{self, BatchItem, Purpose, SigningKey};

// ---------------------------------------------------------------------------
// plumbing

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Runs `check` on every record and asserts that all were checked.
fn check_file(name: &str, check: impl Fn(&Value, &Value, &Value, bool)) -> usize {
    let file = load(name);
    assert_eq!(file["file"], name);
    assert_eq!(file["format_version"], 1);
    let records = file["records"].as_array().expect("records");
    assert!(!records.is_empty());
    let mut checked = 0;
    for r in records {
        let id = r["id"].as_str().expect("id");
        let valid = r["valid"].as_bool().expect("valid");
        if !valid {
            assert!(
                r["expected"]["error"].is_string(),
                "{name}/{id}: invalid without error"
            );
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check(&r["input"], &r["expected"], &r["id"], valid)
        }));
        if result.is_err() {
            panic!("{name}: record {id} failed");
        }
        checked += 1;
    }
    assert_eq!(checked, records.len());
    checked
}

fn b(v: &Value) -> Vec<u8> {
    hex::decode(
        v.as_str()
            .unwrap_or_else(|| panic!("not a hex string: {v}")),
    )
    .unwrap()
}

fn a<const N: usize>(v: &Value) -> [u8; N] {
    b(v).try_into()
        .unwrap_or_else(|_| panic!("not {N} bytes: {v}"))
}

fn list(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn u(v: &Value) -> u32 {
    u32::try_from(v.as_u64().expect("number")).expect("u32")
}

fn hexs(v: &[u8]) -> String {
    hex::encode(v)
}

fn expect_err<T, E: core::fmt::Debug>(
    r: Result<T, E>,
    name: impl Fn(&E) -> &'static str,
    expected: &Value,
) {
    match r {
        Ok(_) => panic!("expected error {expected}, got Ok"),
        Err(e) => assert_eq!(name(&e), expected["error"].as_str().unwrap(), "{e:?}"),
    }
}

fn wrapped_list(v: &Value) -> Vec<WrappedKey> {
    list(v)
        .iter()
        .map(|w| WrappedKey::from_bytes(&b(w)).unwrap())
        .collect()
}

fn wrapped_hex(w: &[WrappedKey]) -> Vec<String> {
    w.iter().map(|x| hexs(&x.to_bytes())).collect()
}

fn hex_list(v: &Value) -> Vec<String> {
    list(v)
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------
// signatures.json

fn zip215_ok(public: &[u8; 32], input: &[u8], sig: &[u8; 64]) -> bool {
    ed25519_zebra::VerificationKey::try_from(*public)
        .and_then(|vk| vk.verify(&ed25519_zebra::Signature::from_bytes(sig), input))
        .is_ok()
}

fn cofactorless_ok(public: &[u8; 32], input: &[u8], sig: &[u8; 64]) -> bool {
    let r: [u8; 32] = sig[..32].try_into().unwrap();
    let s: [u8; 32] = sig[32..].try_into().unwrap();
    let (Some(pa), Some(pr)) = (
        CompressedEdwardsY(*public).decompress(),
        CompressedEdwardsY(r).decompress(),
    ) else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
        return false;
    };
    let digest = Sha512::new()
        .chain_update(r)
        .chain_update(public)
        .chain_update(input)
        .finalize();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&digest);
    let k = Scalar::from_bytes_mod_order_wide(&wide);
    ED25519_BASEPOINT_POINT * s - pa * k == pr
}

#[test]
fn signatures_json() {
    let n = check_file(
        "signatures.json",
        |input, expected, _id, valid| match input["kind"].as_str() {
            Some("verify") => {
                let public: [u8; 32] = a(&input["public_key"]);
                let msg = b(&input["message"]);
                let sig: [u8; 64] = a(&input["signature"]);
                let domain = input["domain"].as_bool().unwrap();
                let purpose =
                    domain.then(|| Purpose::from_name(input["purpose"].as_str().unwrap()).unwrap());
                let signed = match purpose {
                    Some(p) => {
                        let si = sign::signing_input(p, &msg);
                        assert_eq!(hexs(&si), expected["signing_input"].as_str().unwrap());
                        si
                    }
                    None => msg.clone(),
                };
                if input.get("seed").is_some() {
                    let key = SigningKey::from_seed(&a(&input["seed"]));
                    assert_eq!(key.public(), public);
                    let again = match purpose {
                        Some(p) => key.sign(p, &msg),
                        None => key.sign_raw(&msg),
                    };
                    assert_eq!(again, sig, "deterministic signing");
                }
                let result = match purpose {
                    Some(p) => sign::verify(&public, p, &msg, &sig),
                    None => sign::verify_raw(&public, &msg, &sig),
                };
                if valid {
                    assert_eq!(result, Ok(()));
                } else {
                    expect_err(result, |e| e.name(), expected);
                }
                assert_eq!(
                    expected["zip215_valid"].as_bool().unwrap(),
                    zip215_ok(&public, &signed, &sig)
                );
                assert_eq!(
                    expected["cofactorless_valid"].as_bool().unwrap(),
                    cofactorless_ok(&public, &signed, &sig)
                );
            }
            Some("batch") => {
                #[allow(clippy::type_complexity)]
                let items: Vec<([u8; 32], Purpose, Vec<u8>, [u8; 64])> = list(&input["items"])
                    .iter()
                    .map(|it| {
                        (
                            a(&it["public_key"]),
                            Purpose::from_name(it["purpose"].as_str().unwrap()).unwrap(),
                            b(&it["message"]),
                            a(&it["signature"]),
                        )
                    })
                    .collect();
                let refs: Vec<BatchItem<'_>> = items
                    .iter()
                    .map(|(p, pu, m, s)| (*p, *pu, m.as_slice(), *s))
                    .collect();
                // the verdict must not depend on the batch randomness
                for seed in [[1u8; 32], [2u8; 32]] {
                    let result = sign::verify_batch(&refs, &mut ChaCha20Rng::from_seed(seed));
                    if valid {
                        assert_eq!(result, Ok(()));
                    } else {
                        let err = result.unwrap_err();
                        assert_eq!(err.index as u64, expected["index"].as_u64().unwrap());
                        assert_eq!(err.error.name(), expected["error"].as_str().unwrap());
                    }
                }
                // and it equals single verification
                let single = refs
                    .iter()
                    .position(|(p, pu, m, s)| sign::verify(p, *pu, m, s).is_err());
                assert_eq!(single.map(|i| i as u64), expected["index"].as_u64());
            }
            other => panic!("unknown kind {other:?}"),
        },
    );
    assert!(n >= 70, "{n}");
}

// ---------------------------------------------------------------------------
// envelope.json

fn seeds_of(v: &Value) -> Vec<[u8; 32]> {
    list(v).iter().map(a::<32>).collect()
}

#[test]
fn envelope_json() {
    check_file("envelope.json", |input, expected, _id, valid| {
        match input["kind"].as_str() {
            Some("seal") => {
                let seeds = seeds_of(&input["recipient_seeds"]);
                let recipients = seeds_of(&input["recipients"]);
                let pubs: Vec<[u8; 32]> = seeds
                    .iter()
                    .map(|s| SigningKey::from_seed(s).public())
                    .collect();
                assert_eq!(pubs, recipients);
                let plaintext = b(&input["plaintext"]);
                let cek_bytes: [u8; 32] = a(&input["cek"]);
                let nonce: [u8; 12] = a(&input["nonce"]);
                let eph: [u8; 32] = a(&input["eph_secret"]);
                let env = envelope::seal_with(
                    &plaintext,
                    &recipients,
                    &Cek::from_bytes(cek_bytes),
                    &nonce,
                    &eph,
                )
                .unwrap();
                assert_eq!(hexs(&env.eph_pub), expected["eph_pub"].as_str().unwrap());
                assert_eq!(envelope::ephemeral_public(&eph), env.eph_pub);
                assert_eq!(wrapped_hex(&env.recipients), hex_list(&expected["wrapped"]));
                assert_eq!(
                    hexs(&env.ciphertext),
                    expected["ciphertext"].as_str().unwrap()
                );
                for (seed, w) in seeds.iter().zip(&env.recipients) {
                    assert_eq!(w.recipient, SigningKey::from_seed(seed).public());
                    assert_eq!(envelope::open(seed, &env).unwrap(), plaintext);
                    let cek = envelope::unwrap_cek(seed, &env.eph_pub, &env.recipients).unwrap();
                    assert_eq!(cek.as_bytes(), &cek_bytes);
                }
                // intermediate values of the first recipient
                let first = &expected["first_recipient"];
                let rx = sign::x25519_public_from_ed25519(&recipients[0]).unwrap();
                assert_eq!(hexs(&rx), first["recipient_x25519"].as_str().unwrap());
                let ss = x25519_dalek::x25519(eph, rx);
                assert_eq!(hexs(&ss), first["shared_secret"].as_str().unwrap());
                let mut material = ss.to_vec();
                material.extend_from_slice(&env.eph_pub);
                material.extend_from_slice(&rx);
                let kek = blake3::derive_key(envelope::KEK_CONTEXT, &material);
                assert_eq!(hexs(&kek), first["kek"].as_str().unwrap());
                let unwrapped =
                    envelope::aead_open(&kek, &[0; 12], &recipients[0], &env.recipients[0].wrapped)
                        .unwrap();
                assert_eq!(unwrapped, cek_bytes);
            }
            Some("open") => {
                let env = SealedEnvelope {
                    eph_pub: a(&input["eph_pub"]),
                    recipients: wrapped_list(&input["wrapped"]),
                    nonce: a(&input["nonce"]),
                    ciphertext: b(&input["ciphertext"]),
                };
                let result = envelope::open(&a(&input["seed"]), &env);
                if valid {
                    assert_eq!(
                        hexs(&result.unwrap()),
                        expected["plaintext"].as_str().unwrap()
                    );
                } else {
                    expect_err(result, |e| e.name(), expected);
                }
            }
            Some("wrap") => {
                assert!(!valid);
                let result = envelope::wrap_for_recipients(
                    &Cek::from_bytes(a(&input["cek"])),
                    &a(&input["eph_secret"]),
                    &seeds_of(&input["recipients"]),
                );
                expect_err(result, |e| e.name(), expected);
            }
            Some("group") => {
                let group_seed: [u8; 32] = a(&input["group_seed"]);
                let group_id = SigningKey::from_seed(&group_seed).public();
                assert_eq!(hexs(&group_id), expected["group_id"].as_str().unwrap());
                let member_seeds = seeds_of(&input["member_seeds"]);
                let members = seeds_of(&input["members"]);
                let (geph, gw) = envelope::wrap_group_seed(
                    &group_seed,
                    &a(&input["group_eph_secret"]),
                    &members,
                )
                .unwrap();
                assert_eq!(hexs(&geph), expected["group_eph_pub"].as_str().unwrap());
                assert_eq!(wrapped_hex(&gw), hex_list(&expected["group_wrapped"]));
                let plaintext = b(&input["plaintext"]);
                let post = envelope::seal_with(
                    &plaintext,
                    &[group_id],
                    &Cek::from_bytes(a(&input["cek"])),
                    &a(&input["nonce"]),
                    &a(&input["eph_secret"]),
                )
                .unwrap();
                assert_eq!(hexs(&post.eph_pub), expected["eph_pub"].as_str().unwrap());
                assert_eq!(
                    wrapped_hex(&post.recipients),
                    hex_list(&expected["wrapped"])
                );
                assert_eq!(
                    hexs(&post.ciphertext),
                    expected["ciphertext"].as_str().unwrap()
                );
                for (seed, member) in member_seeds.iter().zip(&members) {
                    assert_eq!(SigningKey::from_seed(seed).public(), *member);
                    let group = envelope::unwrap_group_seed(seed, &group_id, &geph, &gw).unwrap();
                    assert_eq!(*group.seed(), group_seed);
                    let cek = envelope::unwrap_cek_with_group(
                        &group.seed(),
                        &post.eph_pub,
                        &post.recipients,
                    )
                    .unwrap();
                    assert_eq!(
                        envelope::open_content(&cek, &post.nonce, &post.ciphertext).unwrap(),
                        plaintext
                    );
                    // a member's own key is not a recipient of the group post
                    assert_eq!(
                        envelope::open(seed, &post).unwrap_err(),
                        envelope::EnvelopeError::NotARecipient
                    );
                }
            }
            Some("group-unwrap") => {
                assert!(!valid);
                let result = envelope::unwrap_group_seed(
                    &a(&input["seed"]),
                    &a(&input["group_id"]),
                    &a(&input["eph_pub"]),
                    &wrapped_list(&input["wrapped"]),
                );
                expect_err(result, |e| e.name(), expected);
            }
            Some("keyconv") => {
                let public: [u8; 32] = a(&input["public_key"]);
                let result = sign::x25519_public_from_ed25519(&public);
                if valid {
                    let x = result.unwrap();
                    assert_eq!(hexs(&x), expected["x25519_public"].as_str().unwrap());
                    if input.get("seed").is_some() {
                        let seed: [u8; 32] = a(&input["seed"]);
                        assert_eq!(SigningKey::from_seed(&seed).public(), public);
                        let secret = sign::x25519_secret_from_seed(&seed);
                        assert_eq!(
                            hexs(&secret.to_bytes()),
                            expected["x25519_secret"].as_str().unwrap()
                        );
                        assert_eq!(x25519_dalek::PublicKey::from(&secret).to_bytes(), x);
                    }
                } else {
                    expect_err(result, |e| e.name(), expected);
                }
            }
            other => panic!("unknown kind {other:?}"),
        }
    });
}

// ---------------------------------------------------------------------------
// fof.json

fn vkeys(v: &Value) -> Vec<VouchKey> {
    list(v).iter().map(|k| VouchKey::from_bytes(a(k))).collect()
}

fn slots_of(v: &Value) -> Vec<WrapSlot> {
    list(v)
        .iter()
        .map(|s| WrapSlot::from_bytes(&b(s)).unwrap())
        .collect()
}

#[test]
fn fof_json() {
    check_file("fof.json", |input, expected, _id, valid| {
        let pub_post: [u8; 32] = a(&input["pub_post"]);
        match input["kind"].as_str() {
            Some("derive") => {
                let v = VouchKey::from_bytes(a(&input["vouch_key"]));
                let h: [u8; 32] = a(&input["comment_hash"]);
                assert_eq!(
                    hexs(&fof::prefilter_tag(&v, &pub_post)),
                    expected["tag"].as_str().unwrap()
                );
                assert_eq!(
                    hexs(&*fof::slot_key(&v, &pub_post)),
                    expected["slot_key"].as_str().unwrap()
                );
                assert_eq!(
                    hexs(&fof::vouch_mac(&v, &pub_post, &h)),
                    expected["vouch_mac"].as_str().unwrap()
                );
            }
            Some("make_slots") => {
                let keys = vkeys(&input["vouch_keys"]);
                let result = fof::make_slots(&a(&input["priv_post_seed"]), &pub_post, &keys);
                if valid {
                    let slots = result.unwrap();
                    let got: Vec<String> = slots.iter().map(|s| hexs(&s.to_bytes())).collect();
                    assert_eq!(got, hex_list(&expected["slots"]));
                    // every vouch key opens its own slot
                    for (i, k) in keys.iter().enumerate() {
                        let (idx, seed) =
                            fof::open_slots(std::slice::from_ref(k), &pub_post, &slots).unwrap();
                        assert_eq!(idx, 0);
                        assert_eq!(*seed, a::<32>(&input["priv_post_seed"]), "key {i}");
                    }
                } else {
                    expect_err(result, |e| e.name(), expected);
                }
            }
            Some("open_slots") => {
                let result = fof::open_slots(
                    &vkeys(&input["vouch_keys"]),
                    &pub_post,
                    &slots_of(&input["slots"]),
                );
                match result {
                    Some((idx, seed)) => {
                        assert!(expected["found"].as_bool().unwrap());
                        assert_eq!(idx as u64, expected["index"].as_u64().unwrap());
                        assert_eq!(hexs(&*seed), expected["seed"].as_str().unwrap());
                        assert_eq!(SigningKey::from_seed(&seed).public(), pub_post);
                    }
                    None => assert!(!expected["found"].as_bool().unwrap()),
                }
            }
            Some("group_sig") => {
                let h: [u8; 32] = a(&input["comment_hash"]);
                let sig: [u8; 64] = a(&input["signature"]);
                if input.get("priv_post_seed").is_some() {
                    assert_eq!(fof::group_sig(&a(&input["priv_post_seed"]), &h), sig);
                }
                let result = fof::verify_group_sig(&pub_post, &h, &sig);
                if valid {
                    assert_eq!(result, Ok(()));
                    assert_eq!(
                        hexs(&sign::signing_input(Purpose::CommentGroup, &h)),
                        expected["signing_input"].as_str().unwrap()
                    );
                } else {
                    expect_err(result, |e| e.name(), expected);
                }
            }
            Some("vouch_mac") => {
                let result = fof::check_vouch_mac(
                    &vkeys(&input["candidates"]),
                    &pub_post,
                    &a(&input["comment_hash"]),
                    &a(&input["mac"]),
                );
                assert_eq!(result.map(|i| i as u64), expected["index"].as_u64());
            }
            other => panic!("unknown kind {other:?}"),
        }
    });
}

// ---------------------------------------------------------------------------
// passphrase.json

fn kdf(v: &Value) -> KdfParams {
    KdfParams {
        memory_kib: u(&v["memory_kib"]),
        iterations: u(&v["iterations"]),
        parallelism: u(&v["parallelism"]),
        salt: a(&v["salt"]),
    }
}

#[test]
fn passphrase_json() {
    check_file("passphrase.json", |input, expected, _id, valid| {
        let pass = b(&input["passphrase"]);
        let params = kdf(&input["kdf"]);
        let nonce: [u8; 12] = a(&input["nonce"]);
        let aad = b(&input["aad"]);
        match input["kind"].as_str() {
            Some("seal") => {
                assert!(valid);
                let key = passphrase::derive_key(&pass, &params).unwrap();
                assert_eq!(hexs(&*key), expected["key"].as_str().unwrap());
                let plaintext = b(&input["plaintext"]);
                let sealed = passphrase::seal(&pass, &params, &nonce, &aad, &plaintext).unwrap();
                assert_eq!(hexs(&sealed), expected["sealed"].as_str().unwrap());
                let opened = passphrase::open(&pass, &params, &nonce, &aad, &sealed).unwrap();
                assert_eq!(opened.as_slice(), plaintext.as_slice());
            }
            Some("open") => {
                assert!(!valid);
                let result = passphrase::open(&pass, &params, &nonce, &aad, &b(&input["sealed"]));
                expect_err(result, |e| e.name(), expected);
            }
            other => panic!("unknown kind {other:?}"),
        }
    });
}

// ---------------------------------------------------------------------------
// blake3.json

#[test]
fn blake3_json() {
    let n = check_file("blake3.json", |input, expected, _id, valid| {
        assert!(valid);
        let len = input["input_len"].as_u64().unwrap() as usize;
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let key: [u8; 32] = a(&input["key"]);
        let context = input["context_string"].as_str().unwrap();
        let xof = |mut hasher: blake3::Hasher, want: &Value| {
            let want = b(want);
            let mut out = vec![0u8; want.len()];
            hasher.update(&data).finalize_xof().fill(&mut out);
            assert_eq!(out, want);
            want
        };
        let hash = xof(blake3::Hasher::new(), &expected["hash"]);
        assert_eq!(blake3::hash(&data).as_bytes()[..], hash[..32]);
        let keyed = xof(blake3::Hasher::new_keyed(&key), &expected["keyed_hash"]);
        assert_eq!(blake3::keyed_hash(&key, &data).as_bytes()[..], keyed[..32]);
        let derived = xof(
            blake3::Hasher::new_derive_key(context),
            &expected["derive_key"],
        );
        assert_eq!(blake3::derive_key(context, &data)[..], derived[..32]);
    });
    assert_eq!(n, 35);
}

// ---------------------------------------------------------------------------
// chacha20poly1305.json

#[test]
fn chacha20poly1305_json() {
    check_file(
        "chacha20poly1305.json",
        |input, expected, _id, valid| match input["kind"].as_str() {
            Some("aead") => {
                assert!(valid);
                let (key, nonce, aad, pt) = (
                    a(&input["key"]),
                    a(&input["nonce"]),
                    b(&input["aad"]),
                    b(&input["plaintext"]),
                );
                let sealed = envelope::aead_seal(&key, &nonce, &aad, &pt).unwrap();
                let want = format!(
                    "{}{}",
                    expected["ciphertext"].as_str().unwrap(),
                    expected["tag"].as_str().unwrap()
                );
                assert_eq!(hexs(&sealed), want);
                assert_eq!(
                    envelope::aead_open(&key, &nonce, &aad, &sealed).unwrap(),
                    pt
                );
            }
            Some("open") => {
                assert!(!valid);
                let result = envelope::aead_open(
                    &a(&input["key"]),
                    &a(&input["nonce"]),
                    &b(&input["aad"]),
                    &b(&input["sealed"]),
                );
                expect_err(result, |e| e.name(), expected);
            }
            Some("content") => {
                assert!(valid);
                assert_eq!(b(&expected["aad"]), envelope::CONTENT_AAD);
                let cek = Cek::from_bytes(a(&input["cek"]));
                let nonce: [u8; 12] = a(&input["nonce"]);
                let pt = b(&input["plaintext"]);
                let sealed = envelope::seal_content(&cek, &nonce, &pt).unwrap();
                assert_eq!(hexs(&sealed), expected["sealed"].as_str().unwrap());
                assert_eq!(envelope::open_content(&cek, &nonce, &sealed).unwrap(), pt);
            }
            other => panic!("unknown kind {other:?}"),
        },
    );
}

#[test]
fn at_least_120_crypto_records() {
    let total: usize = [
        "signatures.json",
        "envelope.json",
        "fof.json",
        "passphrase.json",
        "blake3.json",
        "chacha20poly1305.json",
    ]
    .iter()
    .map(|f| load(f)["records"].as_array().unwrap().len())
    .sum();
    assert!(total >= 120, "{total}");
}

// ---------------------------------------------------------------------------
// dm_rotation.json

#[test]
fn dm_rotation_json() {
    use distsoc_protocol::dm_rotation::{ChainSeed, WINDOW};
    let n = check_file("dm_rotation.json", |input, expected, _, _| {
        let seed = ChainSeed::from_bytes(a(&input["seed"]));
        match input["kind"].as_str().unwrap() {
            "step" => {
                assert_eq!(hexs(&*seed.send_seed()), expected["send_seed"]);
                assert_eq!(hexs(&seed.send_key().public()), expected["send_id"]);
                assert_eq!(hexs(&*seed.recv_seed()), expected["recv_seed"]);
                assert_eq!(hexs(&seed.recv_key().public()), expected["recv_id"]);
                assert_eq!(hexs(seed.next().as_bytes()), expected["next_seed"]);
            }
            "window" => {
                assert_eq!(u(&input["size"]) as usize, WINDOW);
                let ids: Vec<String> = seed
                    .window()
                    .iter()
                    .map(|s| hexs(&s.recv_key().public()))
                    .collect();
                assert_eq!(ids, hex_list(&expected["recv_ids"]));
            }
            other => panic!("unknown kind {other}"),
        }
    });
    assert_eq!(n, 13);
}
