//! The refused records of `canonical.json`: bytes a receiver must reject,
//! each with its error.

use serde_json::{json, Value};

use distsoc_protocol::codec::{self};
use distsoc_protocol::ids::PostId;
use distsoc_protocol::messages::content::{
    CommentBody, CommentPolicy, Post, PostBody, PostContent, PostHeader, PostVisibility,
    SealedBody, MAX_POST_BYTES,
};
use distsoc_protocol::messages::identity::{IdentityBundle, KdfParams};
use distsoc_protocol::sign::{Purpose, SigningKey};

use super::encoder::{
    encode, encode_obj, encode_with, fp, lp, sp, tree, words_to_bytes, Knobs, Obj,
};
use super::json::{
    bundle_json, comment_json, h, header_json, hex_list, kdf_json, post_body_json, post_json,
    visibility_json,
};
use super::layout::{COMMENT_BODY, POST, POST_HEADER};
use super::{pid, pk, Gen, ALICE, ANCHOR_1, BOB, NETWORK, T0};

#[allow(clippy::too_many_arguments)]
pub(super) fn reject_records(
    g: &mut Gen,
    p1: &Post,
    p1_bytes: &[u8],
    p2_id: PostId,
    heart_bytes: &[u8],
    u2_value: &Value,
    c1: &CommentBody,
    sealed_id: PostId,
    sealed_vis: &PostVisibility,
) {
    let p1_value = post_json(p1);
    let p1_sig = SigningKey::from_seed(&ALICE).sign(Purpose::Post, p1_bytes);
    let none = json!({});

    // ---- Canonical form ----------------------------------------------------------------
    let mut b = p1_bytes.to_vec();
    b.extend_from_slice(&[0; 8]);
    g.reject(
        "reject-trailing-zero-word",
        "post-public-text followed by one zero word: every word must be reached from the root.",
        &["non-canonical"],
        "Post",
        &b,
        none.clone(),
        "nonCanonical",
    );
    let b = encode_with(
        "Post",
        &p1_value,
        Knobs {
            root_extra_data: 1,
            ..Knobs::default()
        },
    );
    assert_eq!(b.len(), p1_bytes.len() + 8);
    g.reject(
        "reject-data-section-not-truncated",
        "post-public-text re-encoded with the root struct's data section at its schema size (2 words): the root pointer claims one more data word, whose value is zero (the plain discriminant). Offsets are unchanged (pointers and targets both move by one word). Trailing zero data words must be truncated.",
        &["non-canonical", "truncation"],
        "Post",
        &b,
        none.clone(),
        "nonCanonical",
    );
    let b = encode_with(
        "Post",
        &p1_value,
        Knobs {
            root_extra_ptrs: 2,
            ..Knobs::default()
        },
    );
    g.reject(
        "reject-pointer-section-not-truncated",
        "post-public-text re-encoded with the root's pointer section at its schema size (4 pointers; replyTo and replaces null), the objects after it moved by two words and the offsets adjusted. Trailing null pointers must be truncated.",
        &["non-canonical", "truncation"],
        "Post",
        &b,
        none.clone(),
        "nonCanonical",
    );
    let b = encode_with(
        "Post",
        &p1_value,
        Knobs {
            root_reverse: true,
            ..Knobs::default()
        },
    );
    assert_eq!(b.len(), p1_bytes.len());
    g.reject(
        "reject-objects-out-of-order",
        "post-public-text with the same words rearranged: the content (PostBody and its children) laid out before the author bytes. Valid Cap'n Proto, but objects must follow in pre-order (pointer order, depth first).",
        &["non-canonical", "order"],
        "Post",
        &b,
        none.clone(),
        "nonCanonical",
    );
    let root = u64::from_le_bytes(p1_bytes[..8].try_into().expect("8"));
    let n = p1_bytes.len() / 8;
    let mut b = fp(n, 0).to_le_bytes().to_vec();
    b.extend_from_slice(&p1_bytes[8..]);
    // Landing pad at word n: the original root pointer, offset retargeted to word 1.
    let pad = (root & !0xffff_fffc) | u64::from(((-(n as i64)) as u32) << 2);
    b.extend_from_slice(&pad.to_le_bytes());
    g.reject(
        "reject-far-pointer-root",
        "post-public-text with its root pointer replaced by a far pointer to a landing pad appended after the last object (same segment). A valid single-segment Cap'n Proto message, but canonical bytes contain no far pointers.",
        &["non-canonical", "far-pointer"],
        "Post",
        &b,
        none.clone(),
        "nonCanonical",
    );
    let mut b = fp(0, 1).to_le_bytes().to_vec();
    b.extend_from_slice(
        &sp(0, (root >> 32 & 0xffff) as usize, (root >> 48) as usize).to_le_bytes(),
    );
    b.extend_from_slice(&p1_bytes[8..]);
    g.reject(
        "reject-two-segments",
        "A two-segment encoding of post-public-text (segment 0: a far pointer to segment 1; segment 1: the landing pad, then the struct and its objects), presented as canonical bytes: the two segments concatenated, segment table dropped. Canonical bytes are read as exactly one segment, so the far pointer names a segment that does not exist: malformed (a receiver may also call it nonCanonical before following the pointer; distsoc walks the message first and answers malformed).",
        &["far-pointer", "segments"],
        "Post",
        &b,
        none.clone(),
        "malformed",
    );
    let mut b = p1_bytes.to_vec();
    b.extend_from_slice(&[0; 4]);
    g.reject(
        "reject-length-not-word-multiple",
        "post-public-text followed by 4 zero bytes: canonical bytes are whole words.",
        &["non-canonical", "length"],
        "Post",
        &b,
        none.clone(),
        "nonCanonical",
    );
    g.reject(
        "reject-empty",
        "Zero bytes: there is no root pointer (a required field is missing).",
        &["length"],
        "Post",
        &[],
        none.clone(),
        "malformed",
    );
    let mut b = p1_bytes.to_vec();
    let at = b
        .windows(13)
        .position(|w| w == b"hello, world\0")
        .expect("text");
    b[at + 13] = 0x20;
    g.reject(
        "reject-text-padding-not-zero",
        "post-public-text with a non-zero byte in the padding after the text's NUL: the unused bytes of a list's last word must be zero.",
        &["non-canonical", "padding"],
        "Post",
        &b,
        none.clone(),
        "nonCanonical",
    );
    let b = encode_with(
        "PostBody",
        &post_body_json(&PostBody::default()),
        Knobs {
            list_size: Some((1, 3)),
            ..Knobs::default()
        },
    );
    g.reject(
        "reject-empty-list-tag-not-truncated",
        "post-body-empty with the empty attachments list's tag word declaring Attachment's schema size (1 data word, 3 pointers) instead of 0/0: struct list element sizes are truncated too, to 0 for an empty list.",
        &["non-canonical", "truncation", "struct-list"],
        "PostBody",
        &b,
        none.clone(),
        "nonCanonical",
    );
    let mut b = encode("VisibilityUpdateBody", u2_value);
    let at = b
        .chunks(8)
        .position(|w| w == sp(-1, 0, 0).to_le_bytes())
        .expect("zero-sized struct pointer");
    b[at * 8..at * 8 + 8].copy_from_slice(&sp(1, 0, 0).to_le_bytes());
    g.reject(
        "reject-zero-sized-struct-offset",
        "visibility-update-public with the public visibility's zero-sized struct pointer given offset 1 (in bounds, pointing into the postId bytes) instead of -1.",
        &["non-canonical", "zero-sized-struct"],
        "VisibilityUpdateBody",
        &b,
        none.clone(),
        "nonCanonical",
    );

    // ---- Size caps -------------------------------------------------------------------
    let cap = MAX_POST_BYTES;
    // 13 words besides the ciphertext: root pointer, 2 data words, 2 pointers,
    // author (4), SealedBody (2), nonce (2).
    let big = Post {
        author: pid(&ALICE),
        created_at_ms: T0 + 7,
        content: PostContent::Sealed(SealedBody {
            nonce: [0; 12],
            ciphertext: vec![0; cap + 8 - 13 * 8],
        }),
        reply_to: None,
        replaces: None,
    };
    let b = encode("Post", &post_json(&big));
    assert_eq!(b.len(), cap + 8);
    assert_eq!(b, codec::canonical_of(&big));
    g.reject(
        "reject-post-too-large",
        "A canonical Post of 262,152 bytes (a sealed post with a 262,048-byte ciphertext): one word over the 256 KiB cap, checked on the length alone before anything is parsed.",
        &["size"],
        "Post",
        &b,
        none.clone(),
        "tooLarge",
    );
    let mut b = heart_bytes.to_vec();
    b.resize(1032, 0);
    g.reject(
        "reject-heart-too-large",
        "heart padded with zero words to 1,032 bytes, over the 1,024-byte HeartBody cap: the cap is checked before the bytes are parsed (otherwise this would be nonCanonical).",
        &["size"],
        "HeartBody",
        &b,
        none.clone(),
        "tooLarge",
    );
    let long = CommentBody {
        text: "x".repeat(8193),
        ..c1.clone()
    };
    let b = encode("CommentBody", &comment_json(&long));
    g.reject(
        "reject-comment-text-too-long",
        "A canonical CommentBody within its 16 KiB cap whose text is 8,193 bytes, one over the field's 8,192-byte limit.",
        &["size", "field-limit"],
        "CommentBody",
        &b,
        none.clone(),
        "tooLarge",
    );
    let many = json!({
        "postingId": h(pk(&ALICE)),
        "displayName": "Alice",
        "bio": "",
        "anchors": hex_list(&vec![pk(&ANCHOR_1); 17]),
        "updatedAtMs": T0,
    });
    g.reject(
        "reject-profile-too-many-anchors",
        "A canonical PublicProfile with 17 anchors; at most 16.",
        &["size", "field-limit"],
        "PublicProfile",
        &encode("PublicProfile", &many),
        none.clone(),
        "tooLarge",
    );

    // ---- Field rules -------------------------------------------------------------------
    let mut v = p1_value.clone();
    v["author"] = h(&pk(&ALICE)[..31]);
    g.reject(
        "reject-author-31-bytes",
        "Canonical bytes of a Post whose author is 31 bytes: ids are exactly 32.",
        &["field"],
        "Post",
        &encode("Post", &v),
        none.clone(),
        "malformed",
    );
    let mut v = p1_value.clone();
    v.as_object_mut().expect("post").remove("author");
    g.reject(
        "reject-author-missing",
        "Canonical bytes of a Post without author (null pointer): required.",
        &["field"],
        "Post",
        &encode("Post", &v),
        none.clone(),
        "malformed",
    );
    let mut st = tree(&COMMENT_BODY, &comment_json(c1));
    st.ptrs[2] = Obj::Bytes(b"nice post".to_vec());
    g.reject(
        "reject-text-not-nul-terminated",
        "record comment with its text as a 9-byte list without the NUL terminator: Text must end with NUL.",
        &["field", "text"],
        "CommentBody",
        &encode_obj(&Obj::Struct(st), Knobs::default()),
        none.clone(),
        "malformed",
    );
    let mut st = tree(&COMMENT_BODY, &comment_json(c1));
    st.ptrs[2] = Obj::Bytes(vec![0xff, 0xfe, 0]);
    g.reject(
        "reject-text-bad-utf8",
        "record comment with text bytes ff fe (then NUL): not UTF-8.",
        &["field", "text"],
        "CommentBody",
        &encode_obj(&Obj::Struct(st), Knobs::default()),
        none.clone(),
        "malformed",
    );
    let mut st = tree(&POST, &p1_value);
    st.data[8] = 2;
    g.reject(
        "reject-unknown-union-arm",
        "post-public-text with the content discriminant (UInt16 at byte 8) set to 2, an arm the schema does not have (the data section grows to 2 words to hold it).",
        &["field", "union"],
        "Post",
        &encode_obj(&Obj::Struct(st), Knobs::default()),
        none.clone(),
        "malformed",
    );
    let x = PostHeader::new(p2_id, pid(&ALICE), CommentPolicy::Public, T0 + 12).expect("header");
    let mut st = tree(&POST_HEADER, &header_json(&x));
    st.data[0] = 4;
    g.reject(
        "reject-unknown-enumerant",
        "A PostHeader whose commentPolicy is 4, not an enumerant of CommentPolicy.",
        &["field", "enum"],
        "PostHeader",
        &encode_obj(&Obj::Struct(st), Knobs::default()),
        none.clone(),
        "malformed",
    );
    let mut v = header_json(&x);
    v["commentPolicy"] = json!("friendsOfFriends");
    g.reject(
        "reject-fof-header-without-pub-post",
        "A friendsOfFriends PostHeader without pubPost: required for that policy.",
        &["field"],
        "PostHeader",
        &encode("PostHeader", &v),
        none.clone(),
        "malformed",
    );
    let mut v = visibility_json(sealed_vis);
    v["encrypted"]["recipients"][1]["wrapped"] = h([0x33; 47]);
    g.reject(
        "reject-wrapped-key-47-bytes",
        "post-visibility-encrypted with the second wrapped key 47 bytes long instead of 48.",
        &["field"],
        "PostVisibility",
        &encode("PostVisibility", &v),
        none.clone(),
        "malformed",
    );
    g.reject(
        "reject-root-not-struct",
        "A root pointer to a byte list (\"abc\") where a struct is expected.",
        &["field"],
        "HeartBody",
        &words_to_bytes(&[lp(0, 2, 3), 0x0063_6261]),
        none.clone(),
        "malformed",
    );
    let low = KdfParams {
        memory_kib: 4096,
        ..KdfParams::recommended([0x5a; 16])
    };
    g.reject(
        "reject-kdf-memory-too-small",
        "KdfParams with memoryKib 4096, below the 8192 minimum.",
        &["field", "kdf-params"],
        "KdfParams",
        &encode("KdfParams", &kdf_json(&low)),
        none.clone(),
        "malformed",
    );
    let mut v = bundle_json(&IdentityBundle::new(
        SigningKey::from_seed(&NETWORK).seed(),
        T0 + 123,
    ));
    v["version"] = json!(2);
    g.reject(
        "reject-bundle-version",
        "identity-bundle-minimal with version 2: only version 1 is known.",
        &["field", "identity-bundle"],
        "IdentityBundle",
        &encode("IdentityBundle", &v),
        none.clone(),
        "unsupportedVersion",
    );

    // ---- Ids and signatures ------------------------------------------------------------
    g.reject(
        "reject-post-id-mismatch",
        "post-public-text with a valid signature, received as the post with id input.expected_post_id (the PostId of post-public-attachments): the receiver computes BLAKE3 of the bytes and compares.",
        &["id"],
        "Post",
        p1_bytes,
        json!({ "signature": h(p1_sig), "expected_post_id": h(p2_id.0) }),
        "idMismatch",
    );
    g.reject(
        "reject-post-wrong-key",
        "post-public-text signed (purpose post) by Bob instead of its author Alice.",
        &["signature"],
        "Post",
        p1_bytes,
        json!({ "signature": h(SigningKey::from_seed(&BOB).sign(Purpose::Post, p1_bytes)) }),
        "badSignature",
    );
    g.reject(
        "reject-post-wrong-purpose",
        "post-public-text signed by its author with purpose post-header instead of post.",
        &["signature", "purpose"],
        "Post",
        p1_bytes,
        json!({ "signature": h(SigningKey::from_seed(&ALICE).sign(Purpose::PostHeader, p1_bytes)) }),
        "badSignature",
    );
    let c1_bytes = encode("CommentBody", &comment_json(c1));
    g.reject(
        "reject-comment-wrong-purpose",
        "record comment signed by its author with purpose post instead of comment.",
        &["signature", "purpose"],
        "CommentBody",
        &c1_bytes,
        json!({ "signature": h(SigningKey::from_seed(&BOB).sign(Purpose::Post, &c1_bytes)) }),
        "badSignature",
    );
    g.reject(
        "reject-post-raw-signature",
        "post-public-text with the author's signature over the canonical bytes alone (plain Ed25519, no \"distsoc/2/post\" 0x00 prefix).",
        &["signature", "purpose"],
        "Post",
        p1_bytes,
        json!({ "signature": h(SigningKey::from_seed(&ALICE).sign_raw(p1_bytes)) }),
        "badSignature",
    );
    g.reject(
        "reject-signature-63-bytes",
        "post-public-text with its valid signature cut to 63 bytes: a signature is exactly 64.",
        &["signature", "field"],
        "Post",
        p1_bytes,
        json!({ "signature": h(&p1_sig[..63]) }),
        "malformed",
    );
    let vis_bytes = encode("PostVisibility", &visibility_json(sealed_vis));
    let vis_sig = sealed_vis.sign_for(&sealed_id, &SigningKey::from_seed(&ALICE));
    g.reject(
        "reject-post-visibility-other-post",
        "post-visibility-encrypted with its valid signature, checked for another post (input.post_id = the PostId of post-public-attachments): the digest covers the post id, so a visibility cannot be moved to another post.",
        &["signature", "post-visibility"],
        "PostVisibility",
        &vis_bytes,
        json!({
            "signature": h(vis_sig),
            "post_id": h(p2_id.0),
            "public_key": h(pk(&ALICE)),
        }),
        "badSignature",
    );
}
