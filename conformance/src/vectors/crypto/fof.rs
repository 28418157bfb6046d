//! `fof.json`: friend-of-friend vouch keys, wrap slots and vouch MACs.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

use distsoc_protocol::envelope::{self};
use distsoc_protocol::fof::{self, VouchKey, WrapSlot};
use distsoc_protocol::sign::{self, Purpose, SigningKey};

use super::{file, h, public_of, rand32, rand_n, rec};
use crate::vectors::VectorFile;

// ---------------------------------------------------------------------------
// fof.json

pub(super) fn fof_file() -> VectorFile {
    let mut rng = ChaCha20Rng::from_seed([0xf0; 32]);
    let mut records = Vec::new();
    let post_seed = rand32(&mut rng);
    let pub_post = public_of(&post_seed);
    let keys: Vec<[u8; 32]> = (0..5).map(|_| rand32(&mut rng)).collect();
    let vkeys: Vec<VouchKey> = keys.iter().map(|k| VouchKey::from_bytes(*k)).collect();
    let comment_hash = *blake3::hash(b"a canonical comment body").as_bytes();

    for (i, v) in vkeys.iter().enumerate().take(3) {
        records.push(rec(
            &format!("derive-{i}"),
            "per-(vouch key, post) values: tag = HMAC-SHA256(V, \"fof-tag\" ‖ pub_post)[0..2], slot_key = HMAC-SHA256(V, \"fof-slot\" ‖ pub_post), vouch_mac = HMAC-SHA256(V, \"fof-vouch\" ‖ pub_post ‖ comment_hash)[0..16]",
            &["derive"],
            true,
            json!({"kind": "derive", "vouch_key": h(v.as_bytes()), "pub_post": h(pub_post), "comment_hash": h(comment_hash)}),
            json!({
                "tag": h(fof::prefilter_tag(v, &pub_post)),
                "slot_key": h(*fof::slot_key(v, &pub_post)),
                "vouch_mac": h(fof::vouch_mac(v, &pub_post, &comment_hash)),
            }),
        ));
    }

    let slots = fof::make_slots(&post_seed, &pub_post, &vkeys).expect("slots");
    let slots_json = |s: &[WrapSlot]| Value::Array(s.iter().map(|x| h(x.to_bytes())).collect());
    records.push(rec(
        "make-slots-5",
        "five wrap slots for priv_post's seed, one per vouch key in order: slot = tag ‖ ChaCha20-Poly1305(slot_key, 0^12, aad = pub_post, seed)",
        &["slots"],
        true,
        json!({"kind": "make_slots", "priv_post_seed": h(post_seed), "pub_post": h(pub_post), "vouch_keys": keys.iter().map(h).collect::<Vec<_>>()}),
        json!({"slots": slots_json(&slots)}),
    ));
    let other_seed = rand32(&mut rng);
    let err = fof::make_slots(&other_seed, &pub_post, &vkeys).expect_err("mismatch");
    records.push(rec(
        "make-slots-key-mismatch",
        "priv_post seed that does not belong to pub_post",
        &["slots", "negative"],
        false,
        json!({"kind": "make_slots", "priv_post_seed": h(other_seed), "pub_post": h(pub_post), "vouch_keys": keys.iter().map(h).collect::<Vec<_>>()}),
        json!({"error": err.name()}),
    ));

    let open_rec = |id: &str,
                    comment: &str,
                    tags: &[&str],
                    mine: &[[u8; 32]],
                    slots: &[WrapSlot]| {
        let vk: Vec<VouchKey> = mine.iter().map(|k| VouchKey::from_bytes(*k)).collect();
        let res = fof::open_slots(&vk, &pub_post, slots);
        let expected = match &res {
            Some((i, seed)) => json!({"found": true, "index": i, "seed": h(**seed)}),
            None => json!({"found": false}),
        };
        rec(
            id,
            comment,
            tags,
            true,
            json!({"kind": "open_slots", "vouch_keys": mine.iter().map(h).collect::<Vec<_>>(), "pub_post": h(pub_post), "slots": slots_json(slots)}),
            expected,
        )
    };
    let stranger = rand32(&mut rng);
    records.push(open_rec("open-slots-hit", "our keyring [stranger, V3]: V3's slot opens, index 1 (into our keys) and the seed of pub_post", &["open_slots"], &[stranger, keys[3]], &slots));
    records.push(open_rec(
        "open-slots-first-key",
        "our keyring [V0]",
        &["open_slots"],
        &[keys[0]],
        &slots,
    ));
    records.push(open_rec(
        "open-slots-miss",
        "a keyring without any of the author's vouch keys: not in the FoF set",
        &["open_slots", "negative"],
        &[stranger, rand32(&mut rng)],
        &slots,
    ));
    records.push(open_rec(
        "open-slots-empty",
        "no slots at all",
        &["open_slots", "negative"],
        &[keys[0]],
        &[],
    ));
    // decoy slot with V1's tag but garbage content, before the real one
    let mut decoy = slots[1];
    decoy.sealed = rand_n::<48>(&mut rng);
    let with_decoy = vec![decoy, slots[0], slots[1]];
    records.push(open_rec("open-slots-tag-collision", "a decoy slot carrying V1's tag but undecryptable content comes first; trial decryption skips it and the real slot opens", &["open_slots", "edge"], &[keys[1]], &with_decoy));
    // a slot that decrypts but holds a seed of another key
    let v4 = VouchKey::from_bytes(keys[4]);
    let sk4 = fof::slot_key(&v4, &pub_post);
    let forged_sealed =
        envelope::aead_seal(&sk4, &[0u8; 12], &pub_post, &other_seed).expect("seal");
    let forged = WrapSlot {
        tag: fof::prefilter_tag(&v4, &pub_post),
        sealed: forged_sealed.try_into().expect("48"),
    };
    records.push(open_rec(
        "open-slots-wrong-seed",
        "V4's slot decrypts but holds a seed whose public key is not pub_post: rejected, not found",
        &["open_slots", "edge", "negative"],
        &[keys[4]],
        &[forged],
    ));
    let mut tampered = slots.clone();
    tampered[2].sealed[0] ^= 1;
    records.push(open_rec(
        "open-slots-tampered",
        "V2's slot with one ciphertext bit flipped",
        &["open_slots", "tamper", "negative"],
        &[keys[2]],
        &tampered,
    ));

    // group_sig
    let sig = fof::group_sig(&post_seed, &comment_hash);
    let gs = |id: &str,
              comment: &str,
              tags: &[&str],
              public: [u8; 32],
              hash: [u8; 32],
              sig: [u8; 64],
              seed: Option<[u8; 32]>| {
        let res = fof::verify_group_sig(&public, &hash, &sig);
        let mut input = json!({"kind": "group_sig", "pub_post": h(public), "comment_hash": h(hash), "signature": h(sig)});
        if let Some(s) = seed {
            input["priv_post_seed"] = h(s);
        }
        let expected = match res {
            Ok(()) => {
                json!({"signing_input": h(sign::signing_input(Purpose::CommentGroup, &hash))})
            }
            Err(e) => json!({"error": e.name()}),
        };
        rec(id, comment, tags, res.is_ok(), input, expected)
    };
    records.push(gs("group-sig-valid", "group_sig = ed25519 with priv_post over comment_hash, purpose comment-group; signing with priv_post_seed must reproduce it", &["group_sig"], pub_post, comment_hash, sig, Some(post_seed)));
    let mut other_hash = comment_hash;
    other_hash[0] ^= 1;
    records.push(gs(
        "group-sig-other-comment",
        "the signature of another comment hash",
        &["group_sig", "negative"],
        pub_post,
        other_hash,
        sig,
        None,
    ));
    let wrong_purpose = SigningKey::from_seed(&post_seed).sign(Purpose::Comment, &comment_hash);
    records.push(gs(
        "group-sig-wrong-purpose",
        "signed with purpose comment instead of comment-group",
        &["group_sig", "negative"],
        pub_post,
        comment_hash,
        wrong_purpose,
        None,
    ));
    records.push(gs(
        "group-sig-wrong-post-key",
        "verified against another post's pub_post",
        &["group_sig", "negative"],
        public_of(&other_seed),
        comment_hash,
        sig,
        None,
    ));
    let small = EIGHT_TORSION[0].compress().to_bytes();
    let mut universal = [0u8; 64];
    universal[..32].copy_from_slice(&ED25519_BASEPOINT_POINT.compress().to_bytes());
    universal[32] = 1;
    records.push(gs("group-sig-small-order-pub-post", "pub_post is the identity point: a universal signature (R = B, S = 1) must not prove anything", &["group_sig", "small-order", "negative"], small, comment_hash, universal, None));

    // vouch_mac
    let vm = |id: &str, comment: &str, tags: &[&str], cands: &[[u8; 32]], mac: [u8; 16]| {
        let vk: Vec<VouchKey> = cands.iter().map(|k| VouchKey::from_bytes(*k)).collect();
        let res = fof::check_vouch_mac(&vk, &pub_post, &comment_hash, &mac);
        rec(
            id,
            comment,
            tags,
            true,
            json!({"kind": "vouch_mac", "candidates": cands.iter().map(h).collect::<Vec<_>>(), "pub_post": h(pub_post), "comment_hash": h(comment_hash), "mac": h(mac)}),
            json!({"index": res}),
        )
    };
    let mac2 = fof::vouch_mac(&vkeys[2], &pub_post, &comment_hash);
    records.push(vm(
        "vouch-mac-match",
        "the commenter holds V2: the author's candidates match at index 2",
        &["vouch_mac"],
        &keys,
        mac2,
    ));
    let mut mac_bad = mac2;
    mac_bad[15] ^= 0x01;
    records.push(vm(
        "vouch-mac-flipped-bit",
        "last bit of the MAC flipped: no candidate matches (index null)",
        &["vouch_mac", "negative"],
        &keys,
        mac_bad,
    ));
    let mac_stranger = fof::vouch_mac(&VouchKey::from_bytes(stranger), &pub_post, &comment_hash);
    records.push(vm(
        "vouch-mac-unknown-key",
        "MAC made with a vouch key the author never distributed",
        &["vouch_mac", "negative"],
        &keys,
        mac_stranger,
    ));
    let mac_other_post = fof::vouch_mac(&vkeys[2], &public_of(&other_seed), &comment_hash);
    records.push(vm(
        "vouch-mac-other-post",
        "V2's MAC for the same comment hash on another post",
        &["vouch_mac", "negative"],
        &keys,
        mac_other_post,
    ));

    file(
        "fof.json",
        "Friend-of-friend comment gating (protocol/src/fof.rs, DESIGN §6). Kinds: derive (tag, slot key, vouch MAC), make_slots, open_slots (first of our keys, in order, whose slot opens and yields a seed of pub_post; index into our keys), group_sig (ed25519, purpose comment-group, over the 32-byte comment hash; full strictness rule), vouch_mac (index of the first matching candidate, or null). open_slots and vouch_mac records are lookups: valid = true and the result is in expected.",
        records,
    )
}
