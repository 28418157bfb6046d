//! `envelope.json`: sealing, opening, key wrapping and group keys.

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

use distsoc_protocol::envelope::{self, Cek, WrappedKey};
use distsoc_protocol::sign::{self};

use super::signatures::{classify, p_plus, Enc, RFC8032};
use super::{arr32, file, h, public_of, rand32, rand_n, rec};
use crate::vectors::{Record, VectorFile};

// ---------------------------------------------------------------------------
// envelope.json

fn wrapped_json(list: &[WrappedKey]) -> Value {
    Value::Array(list.iter().map(|w| h(w.to_bytes())).collect())
}

/// The intermediate values of one recipient's wrap, computed with
/// curve25519-dalek and blake3 directly.
fn kek_details(eph_secret: &[u8; 32], recipient: &[u8; 32]) -> Value {
    let rx = CompressedEdwardsY(*recipient)
        .decompress()
        .expect("point")
        .to_montgomery();
    let eph_pub = MontgomeryPoint::mul_base_clamped(*eph_secret);
    let ss = rx.mul_clamped(*eph_secret);
    let mut material = Vec::new();
    material.extend_from_slice(ss.as_bytes());
    material.extend_from_slice(eph_pub.as_bytes());
    material.extend_from_slice(rx.as_bytes());
    let kek = blake3::derive_key(envelope::KEK_CONTEXT, &material);
    json!({
        "recipient_x25519": h(rx.as_bytes()),
        "shared_secret": h(ss.as_bytes()),
        "kek": h(kek),
    })
}

fn seal_record(
    id: &str,
    comment: &str,
    rng: &mut ChaCha20Rng,
    n: usize,
    plaintext: &[u8],
) -> Record {
    let seeds: Vec<[u8; 32]> = (0..n).map(|_| rand32(rng)).collect();
    let recipients: Vec<[u8; 32]> = seeds.iter().map(public_of).collect();
    let cek_bytes = rand32(rng);
    let nonce = rand_n::<12>(rng);
    let eph = rand32(rng);
    let env = envelope::seal_with(
        plaintext,
        &recipients,
        &Cek::from_bytes(cek_bytes),
        &nonce,
        &eph,
    )
    .expect("seal");
    for s in &seeds {
        assert_eq!(envelope::open(s, &env).expect("open"), plaintext);
    }
    let first = kek_details(&eph, &recipients[0]);
    assert_eq!(
        h(MontgomeryPoint::mul_base_clamped(eph).as_bytes()),
        h(env.eph_pub)
    );
    rec(
        id,
        comment,
        &["seal"],
        true,
        json!({
            "kind": "seal",
            "plaintext": h(plaintext),
            "recipient_seeds": seeds.iter().map(h).collect::<Vec<_>>(),
            "recipients": recipients.iter().map(h).collect::<Vec<_>>(),
            "cek": h(cek_bytes),
            "nonce": h(nonce),
            "eph_secret": h(eph),
        }),
        json!({
            "eph_pub": h(env.eph_pub),
            "wrapped": wrapped_json(&env.recipients),
            "ciphertext": h(&env.ciphertext),
            "first_recipient": first,
        }),
    )
}

fn open_record(
    id: &str,
    comment: &str,
    seed: &[u8; 32],
    env: &envelope::SealedEnvelope,
    tags: &[&str],
) -> Record {
    let result = envelope::open(seed, env);
    let expected = match &result {
        Ok(pt) => json!({"plaintext": h(pt)}),
        Err(e) => json!({"error": e.name()}),
    };
    rec(
        id,
        comment,
        tags,
        result.is_ok(),
        json!({
            "kind": "open",
            "seed": h(seed),
            "eph_pub": h(env.eph_pub),
            "wrapped": wrapped_json(&env.recipients),
            "nonce": h(env.nonce),
            "ciphertext": h(&env.ciphertext),
        }),
        expected,
    )
}

pub(super) fn envelope_file() -> VectorFile {
    let mut rng = ChaCha20Rng::from_seed([0xe1; 32]);
    let mut records = vec![
        seal_record("seal-1-recipient", "one recipient; first_recipient shows the X25519 public key of the recipient, the shared secret and the KEK", &mut rng, 1, b"hello, one recipient"),
        seal_record("seal-2-recipients", "two recipients", &mut rng, 2, b"hello, two recipients"),
        seal_record("seal-10-recipients", "ten recipients", &mut rng, 10, &[0x42; 300]),
        seal_record("seal-empty-plaintext", "empty content: ciphertext is the 16-byte tag only", &mut rng, 1, b""),
    ];

    // open: positive and tampered
    let seeds: Vec<[u8; 32]> = (0..3).map(|_| rand32(&mut rng)).collect();
    let recipients: Vec<[u8; 32]> = seeds.iter().map(public_of).collect();
    let env = envelope::seal_with(
        b"three recipients, tampering cases",
        &recipients,
        &Cek::from_bytes(rand32(&mut rng)),
        &rand_n::<12>(&mut rng),
        &rand32(&mut rng),
    )
    .expect("seal");
    records.push(open_record(
        "open-recipient-2",
        "the third recipient opens",
        &seeds[2],
        &env,
        &["open"],
    ));
    let outsider = rand32(&mut rng);
    records.push(open_record(
        "open-not-a-recipient",
        "a key that is not in the recipient list",
        &outsider,
        &env,
        &["open", "negative"],
    ));
    let mut t = env.clone();
    t.recipients[0].wrapped[7] ^= 0x10;
    records.push(open_record(
        "open-tampered-wrapped-key",
        "one bit of the first wrapped key flipped",
        &seeds[0],
        &t,
        &["open", "tamper"],
    ));
    let mut t = env.clone();
    t.recipients[1].wrapped = t.recipients[0].wrapped;
    records.push(open_record("open-wrapped-key-relabelled", "recipient 0's wrapped key placed under recipient 1's id: fails (the AAD binds the recipient id, the KEK binds the X25519 keys)", &seeds[1], &t, &["open", "tamper"]));
    let mut t = env.clone();
    t.ciphertext[0] ^= 0x01;
    records.push(open_record(
        "open-tampered-ciphertext",
        "one bit of the sealed content flipped",
        &seeds[0],
        &t,
        &["open", "tamper"],
    ));
    let mut t = env.clone();
    let last = t.ciphertext.len() - 1;
    t.ciphertext[last] ^= 0x80;
    records.push(open_record(
        "open-tampered-tag",
        "one bit of the content tag flipped",
        &seeds[0],
        &t,
        &["open", "tamper"],
    ));
    let mut t = env.clone();
    t.nonce[0] ^= 0x01;
    records.push(open_record(
        "open-wrong-nonce",
        "content nonce altered",
        &seeds[0],
        &t,
        &["open", "tamper"],
    ));
    let mut t = env.clone();
    t.eph_pub[0] ^= 0x01;
    records.push(open_record(
        "open-tampered-eph-pub",
        "ephemeral public key altered",
        &seeds[0],
        &t,
        &["open", "tamper"],
    ));
    let mut t = env.clone();
    t.eph_pub = [0u8; 32];
    records.push(open_record(
        "open-small-order-eph-pub",
        "ephemeral public key u = 0 (small order): the shared secret would be all-zero",
        &seeds[0],
        &t,
        &["open", "small-order"],
    ));
    let mut t = env.clone();
    t.ciphertext.truncate(15);
    records.push(open_record(
        "open-truncated-ciphertext",
        "sealed content shorter than a tag",
        &seeds[0],
        &t,
        &["open", "malformed"],
    ));

    // wrap: bad recipient lists
    let wrap_err = |id: &str, comment: &str, recipients: Vec<[u8; 32]>| {
        let cek = [0x11u8; 32];
        let eph = [0x22u8; 32];
        let err =
            envelope::wrap_for_recipients(&Cek::from_bytes(cek), &eph, &recipients).expect_err(id);
        rec(
            id,
            comment,
            &["wrap", "negative"],
            false,
            json!({
                "kind": "wrap",
                "cek": h(cek),
                "eph_secret": h(eph),
                "recipients": recipients.iter().map(h).collect::<Vec<_>>(),
            }),
            json!({"error": err.name()}),
        )
    };
    let good_r = recipients[0];
    records.push(wrap_err(
        "wrap-small-order-recipient",
        "recipient key is a small-order point (EIGHT_TORSION[4], y = -1)",
        vec![good_r, EIGHT_TORSION[4].compress().to_bytes()],
    ));
    records.push(wrap_err(
        "wrap-identity-recipient",
        "recipient key is the identity point",
        vec![EIGHT_TORSION[0].compress().to_bytes()],
    ));
    let nc = candidates_non_canonical();
    records.push(wrap_err(
        "wrap-non-canonical-recipient",
        "recipient key is a non-canonical encoding of a non-small-order point",
        vec![nc],
    ));
    records.push(wrap_err(
        "wrap-malformed-recipient",
        "recipient key is not a curve point",
        vec![candidates_malformed()],
    ));
    records.push(wrap_err(
        "wrap-no-recipients",
        "empty recipient list",
        vec![],
    ));
    records.push(wrap_err(
        "wrap-duplicate-recipient",
        "the same recipient twice",
        vec![good_r, recipients[1], good_r],
    ));

    // group: the group seed is wrapped for members, the post for the group id
    let group_seed = rand32(&mut rng);
    let group_id = public_of(&group_seed);
    let member_seeds: Vec<[u8; 32]> = (0..3).map(|_| rand32(&mut rng)).collect();
    let members: Vec<[u8; 32]> = member_seeds.iter().map(public_of).collect();
    let geph = rand32(&mut rng);
    let (g_eph_pub, g_wrapped) =
        envelope::wrap_group_seed(&group_seed, &geph, &members).expect("group wrap");
    let post_cek = rand32(&mut rng);
    let post_nonce = rand_n::<12>(&mut rng);
    let post_eph = rand32(&mut rng);
    let post_pt = b"a post to the group";
    let post = envelope::seal_with(
        post_pt,
        &[group_id],
        &Cek::from_bytes(post_cek),
        &post_nonce,
        &post_eph,
    )
    .expect("group post");
    for m in &member_seeds {
        let g = envelope::unwrap_group_seed(m, &group_id, &g_eph_pub, &g_wrapped).expect("member");
        assert_eq!(envelope::open(&g.seed(), &post).expect("open"), post_pt);
    }
    records.push(rec(
        "group-key-wrap-and-post",
        "a group (ed25519 key pair, id = public key): its seed wrapped for 3 members (recipients = member ids), and a post whose only recipient is the group id; every member recovers the seed, checks it belongs to group_id, and opens the post with it",
        &["group"],
        true,
        json!({
            "kind": "group",
            "group_seed": h(group_seed),
            "member_seeds": member_seeds.iter().map(h).collect::<Vec<_>>(),
            "members": members.iter().map(h).collect::<Vec<_>>(),
            "group_eph_secret": h(geph),
            "plaintext": h(post_pt),
            "cek": h(post_cek),
            "nonce": h(post_nonce),
            "eph_secret": h(post_eph),
        }),
        json!({
            "group_id": h(group_id),
            "group_eph_pub": h(g_eph_pub),
            "group_wrapped": wrapped_json(&g_wrapped),
            "eph_pub": h(post.eph_pub),
            "wrapped": wrapped_json(&post.recipients),
            "ciphertext": h(&post.ciphertext),
        }),
    ));
    let wrong_group = public_of(&rand32(&mut rng));
    let err = envelope::unwrap_group_seed(&member_seeds[0], &wrong_group, &g_eph_pub, &g_wrapped)
        .expect_err("mismatch");
    records.push(rec(
        "group-seed-wrong-group-id",
        "a group key wrap opened while expecting another group id: the recovered seed's public key does not match",
        &["group", "negative"],
        false,
        json!({
            "kind": "group-unwrap",
            "seed": h(member_seeds[0]),
            "group_id": h(wrong_group),
            "eph_pub": h(g_eph_pub),
            "wrapped": wrapped_json(&g_wrapped),
        }),
        json!({"error": err.name()}),
    ));
    let outsider_err = envelope::unwrap_group_seed(&outsider, &group_id, &g_eph_pub, &g_wrapped)
        .expect_err("outsider");
    records.push(rec(
        "group-seed-not-a-member",
        "a non-member tries to open the group key wrap",
        &["group", "negative"],
        false,
        json!({
            "kind": "group-unwrap",
            "seed": h(outsider),
            "group_id": h(group_id),
            "eph_pub": h(g_eph_pub),
            "wrapped": wrapped_json(&g_wrapped),
        }),
        json!({"error": outsider_err.name()}),
    ));

    // key conversion ed25519 -> X25519
    let conv = |id: &str, comment: &str, seed: Option<[u8; 32]>, public: [u8; 32]| {
        let mut input = json!({"kind": "keyconv", "public_key": h(public)});
        let res = sign::x25519_public_from_ed25519(&public);
        let mut expected = match res {
            Ok(x) => json!({"x25519_public": h(x)}),
            Err(e) => json!({"error": e.name()}),
        };
        if let Some(seed) = seed {
            input["seed"] = h(seed);
            let scalar_bytes = sign::x25519_secret_from_seed(&seed).to_bytes();
            expected["x25519_secret"] = h(scalar_bytes);
            let independent = MontgomeryPoint::mul_base_clamped(scalar_bytes);
            assert_eq!(Ok(independent.to_bytes()), res, "{id}");
        }
        rec(id, comment, &["keyconv"], res.is_ok(), input, expected)
    };
    let (_, s1, p1, _, _) = RFC8032[0];
    records.push(conv("keyconv-rfc8032-test-1", "RFC 8032 TEST 1 key: x25519_secret = SHA-512(seed)[0..32] as is (X25519 clamps it on use), x25519_public = Montgomery u of the ed25519 public key = X25519(x25519_secret, 9)", Some(arr32(s1)), arr32(p1)));
    let s = rand32(&mut rng);
    records.push(conv(
        "keyconv-random",
        "a random key",
        Some(s),
        public_of(&s),
    ));
    records.push(conv(
        "keyconv-small-order",
        "small-order ed25519 key (EIGHT_TORSION[1]) has no usable X25519 key",
        None,
        EIGHT_TORSION[1].compress().to_bytes(),
    ));
    records.push(conv(
        "keyconv-non-canonical",
        "non-canonical ed25519 key",
        None,
        nc,
    ));

    file(
        "envelope.json",
        "Envelope encryption (protocol/src/envelope.rs, DESIGN §5): content = ChaCha20-Poly1305(CEK, nonce, aad \"distsoc/2/content\"); per recipient KEK = BLAKE3.derive_key(\"distsoc/2 envelope kek\", X25519(eph, R) ‖ eph_pub ‖ R) with R the Montgomery form of the recipient's ed25519 key; wrapped = ChaCha20-Poly1305(KEK, 0^12, aad = recipient ed25519 id, CEK); a wrapped key is recipient ‖ wrapped (80 bytes). Kinds: seal, open, wrap, group, group-unwrap, keyconv.",
        records,
    )
}

/// A non-canonical encoding of a non-small-order point (y = p + k).
fn candidates_non_canonical() -> [u8; 32] {
    (0..19u8)
        .map(|k| p_plus(k, false))
        .find(|e| matches!(classify(e), Some(Enc::NonCanonical)))
        .expect("exists")
}

/// Bytes that are not a curve point.
fn candidates_malformed() -> [u8; 32] {
    (0..19u8)
        .map(|k| p_plus(k, false))
        .find(|e| matches!(classify(e), Some(Enc::Malformed)))
        .expect("exists")
}
