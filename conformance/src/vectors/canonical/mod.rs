//! Generator of `conformance/vectors/canonical.json`: the canonical bytes,
//! BLAKE3 hash and domain-separated signature of every signed or hashed struct
//! (`schema/README.md` §4).
//!
//! Each valid record gives a struct's field values in a language-neutral JSON
//! form (`conformance/vectors/README.md`, section `canonical.json`). The
//! canonical bytes are computed here twice, independently:
//!
//! * by the small Cap'n Proto encoder of this module, written from the encoding
//!   specification (capnproto.org/encoding.html, "Canonicalization") and driven
//!   by the JSON form alone, with struct layouts transcribed below from the
//!   `.capnp` files as the schema compiler lays them out;
//! * by `distsoc-protocol`: `codec::canonical_of` of the domain value.
//!
//! The generator panics if the two differ (except for the `alternative-form`
//! records, which exist to show that they can). The same encoder, with one rule
//! deliberately broken at a time ([`Knobs`]), produces the non-canonical
//! records. Signatures are made with `distsoc-protocol` and cross-checked with
//! `ed25519-dalek` over the domain-separated input written out here.
//!
//! Keys are fixed seeds, times are fixed, and every random-looking field (CEK,
//! content nonce, ephemeral secrets) comes from a fixed-seed [`ChaCha20Rng`].
//!
//! Generator code: an inconsistency is a bug in the generator, so it panics
//! rather than writing a wrong vector file.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod dm;
mod encoder;
mod json;
mod layout;
mod reject;
mod social;

use std::collections::BTreeMap;
use std::fmt::Debug;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

use distsoc_protocol::codec::{self, Struct};
use distsoc_protocol::envelope::Cek;
use distsoc_protocol::fof;
use distsoc_protocol::ids::{BlobId, CommentHash, NodeId, PostId, PostingId};
use distsoc_protocol::messages::common::VisibilityHint;
use distsoc_protocol::messages::content::{
    seal_post, Attachment, AuthorRecentPosts, CommentBody, CommentPolicy, DeleteRecordBody,
    EncryptedVisibility, HeartBody, Post, PostBody, PostHeader, PostVisibility, RecentPost,
    VisibilityUpdateBody, MAX_POST_BYTES,
};
use distsoc_protocol::messages::identity::{
    GroupKey, GroupKeyWrapBody, IdentityBundle, KdfParams, PostingIdentity, PublicProfile,
    VouchGrantBody, VouchKey, MAX_BUNDLE_BYTES,
};
use distsoc_protocol::messages::signed::SignedBody;
use distsoc_protocol::messages::social::{
    AudienceDecision, AudienceRequestBody, AudienceResponseBody,
};
use distsoc_protocol::sign::{Purpose, SigningKey};

use self::encoder::encode;
use self::json::{
    audience_request_json, audience_response_json, bundle_json, comment_json, delete_json,
    group_key_wrap_json, h, header_json, heart_json, hex_list, kdf_json, post_body_json, post_json,
    profile_json, recent_json, visibility_json, visibility_update_json, vouch_grant_json,
};
use self::reject::reject_records;
use super::{Record, VectorFile, FORMAT_VERSION};
use crate::refcrypto;

const DESCRIPTION: &str = "Canonical bytes (schema/README.md §4) of every signed or hashed \
struct. Valid records: build input.value (a struct of schema type input.type, in the JSON form \
of conformance/vectors/README.md: schema field names, bytes as lowercase hex, enums by \
enumerant name, unions as {\"arm\": value}, a key present = field set, a key absent = field \
not set) and encode it canonically: the result must be exactly expected.canonical (hex, no \
segment table); expected.blake3 is BLAKE3-256 of it (the PostId of a Post, the comment_hash of \
a CommentBody). Signed types give input.signer_seed and input.purpose; expected.signature is \
Ed25519 over \"distsoc/2/\" || purpose || 0x00 || canonical (for PostVisibility over \
expected.signing_digest = BLAKE3-256(input.post_id || canonical)) and expected.public_key the \
signer's key. Decoding expected.canonical must give input.value back. Records tagged \
alternative-form are accepted encodings that differ from what an encoder writing every Text \
and List field produces (expected.reencoded): receivers hash and verify the bytes as \
received, never a re-encoding. Invalid records: input.canonical are the bytes a receiver got \
for input.type (with input.signature, input.expected_post_id, input.post_id / \
input.public_key where the record is about them); expected.error is the ErrorCode to answer \
with: tooLarge, malformed, nonCanonical, badSignature, idMismatch or unsupportedVersion.";

// ---------------------------------------------------------------------------
// Fixed keys, times and randomness.

const ALICE: [u8; 32] = [0xa1; 32];
const BOB: [u8; 32] = [0xb0; 32];
const CAROL: [u8; 32] = [0xc0; 32];
const NETWORK: [u8; 32] = [0x4e; 32];
const DM: [u8; 32] = [0xe1; 32];
const GROUP: [u8; 32] = [0x67; 32];
const PRIV_POST: [u8; 32] = [0x9f; 32];
const V1: [u8; 32] = [0x71; 32];
const V2: [u8; 32] = [0x72; 32];
const V3: [u8; 32] = [0x73; 32];
const ANCHOR_1: [u8; 32] = [0x01; 32];
const ANCHOR_2: [u8; 32] = [0x02; 32];
/// 2023-11-14T22:13:20Z in ms.
const T0: u64 = 1_700_000_000_000;

fn pk(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_seed(seed).public()
}

fn pid(seed: &[u8; 32]) -> PostingId {
    PostingId(pk(seed))
}

/// A ChaCha20 stream keyed by BLAKE3 of a label, so each record's randomness
/// is independent of the others.
fn rng(label: &str) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(
        *blake3::hash(format!("distsoc canonical.json {label}").as_bytes()).as_bytes(),
    )
}

fn rand32(r: &mut ChaCha20Rng) -> [u8; 32] {
    let mut b = [0u8; 32];
    r.fill_bytes(&mut b);
    b
}

// ---------------------------------------------------------------------------
// Records.

fn obj(v: Value) -> BTreeMap<String, Value> {
    match v {
        Value::Object(m) => m.into_iter().collect(),
        other => panic!("expected a JSON object, got {other}"),
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// A valid record before its type-specific parts are added.
struct Valid {
    id: &'static str,
    comment: &'static str,
    tags: &'static [&'static str],
    ty: &'static str,
    value: Value,
    /// Extra `input` keys (derivation details, post id, ...).
    input: Value,
    /// Extra `expected` keys.
    expected: Value,
}

impl Valid {
    fn new(
        id: &'static str,
        comment: &'static str,
        tags: &'static [&'static str],
        ty: &'static str,
        value: Value,
    ) -> Self {
        Self {
            id,
            comment,
            tags,
            ty,
            value,
            input: json!({}),
            expected: json!({}),
        }
    }

    fn input(mut self, extra: Value) -> Self {
        self.input = merge(self.input, extra);
        self
    }

    fn expected(mut self, extra: Value) -> Self {
        self.expected = merge(self.expected, extra);
        self
    }
}

struct Gen {
    records: Vec<Record>,
}

impl Gen {
    /// Adds a valid record for `domain`, whose JSON form is `v.value`, and
    /// returns its canonical bytes. Checks the hand encoder against
    /// distsoc-protocol and the decoder round trip.
    fn value<T: Struct + PartialEq + Debug>(
        &mut self,
        v: Valid,
        domain: &T,
        max: usize,
    ) -> Vec<u8> {
        let canonical = encode(v.ty, &v.value);
        let ours = codec::canonical_of(domain);
        let mut expected = json!({
            "canonical": h(&canonical),
            "blake3": h(blake3::hash(&canonical).as_bytes()),
        });
        if v.tags.contains(&"alternative-form") {
            assert_ne!(canonical, ours, "{}: not an alternative form", v.id);
            expected["reencoded"] = h(&ours);
        } else {
            assert_eq!(
                hex::encode(&canonical),
                hex::encode(&ours),
                "{}: the hand encoder and distsoc-protocol disagree",
                v.id
            );
        }
        let back: T = codec::from_canonical(v.ty, &canonical, max)
            .unwrap_or_else(|e| panic!("{}: {e}", v.id));
        assert_eq!(&back, domain, "{}", v.id);
        self.records.push(Record {
            id: v.id.to_owned(),
            comment: v.comment.to_owned(),
            tags: v.tags.iter().map(|t| (*t).to_owned()).collect(),
            valid: true,
            input: obj(merge(json!({ "type": v.ty, "value": v.value }), v.input)),
            expected: obj(merge(expected, v.expected)),
        });
        canonical
    }

    /// [`Gen::value`] for a signed body, plus `signer_seed`, `purpose`,
    /// `signature` and `public_key`.
    fn signed<T: SignedBody + PartialEq + Debug>(
        &mut self,
        v: Valid,
        domain: &T,
        seed: &[u8; 32],
    ) -> Vec<u8> {
        let key = SigningKey::from_seed(seed);
        assert_eq!(key.public(), domain.signer().0, "{}: signer", v.id);
        let canonical = encode(v.ty, &v.value);
        let signature = key.sign(T::PURPOSE, &canonical);
        assert_eq!(
            signature,
            dalek_sign(seed, T::PURPOSE, &canonical),
            "{}",
            v.id
        );
        let v = v
            .input(json!({ "signer_seed": h(seed), "purpose": T::PURPOSE.as_str() }))
            .expected(json!({ "signature": h(signature), "public_key": h(key.public()) }));
        self.value(v, domain, T::MAX_BYTES)
    }

    /// An invalid record: `bytes` as received for `ty`, plus `input` extras.
    #[allow(clippy::too_many_arguments)]
    fn reject(
        &mut self,
        id: &str,
        comment: &str,
        tags: &[&str],
        ty: &str,
        bytes: &[u8],
        input: Value,
        error: &str,
    ) {
        let mut all_tags = vec!["invalid".to_owned()];
        all_tags.extend(tags.iter().map(|t| (*t).to_owned()));
        self.records.push(Record {
            id: id.to_owned(),
            comment: comment.to_owned(),
            tags: all_tags,
            valid: false,
            input: obj(merge(json!({ "type": ty, "canonical": h(bytes) }), input)),
            expected: obj(json!({ "error": error })),
        });
    }
}

/// Ed25519 (the crate's reference crypto, not distsoc-protocol) over the
/// domain-separated input `"distsoc/2/" || purpose || 0x00 || message`.
fn dalek_sign(seed: &[u8; 32], purpose: Purpose, message: &[u8]) -> [u8; 64] {
    refcrypto::ed_sign(seed, &refcrypto::signing_input(purpose.as_str(), message))
}

/// Generates `canonical.json`.
pub(super) fn generate() -> VectorFile {
    let mut g = Gen {
        records: Vec::new(),
    };
    let alice = SigningKey::from_seed(&ALICE);

    // ---- Post ---------------------------------------------------------------
    let p1 = Post::new_public(pid(&ALICE), T0, "hello, world", Vec::new());
    let p1_bytes = g.signed(
        Valid::new(
            "post-public-text",
            "A public text post. createdAtMs is data word 0; the content union's discriminant (plain = 0) is a UInt16 at byte 8 of the data section, so word 1 is zero and truncated: 1 data word. Pointers: author, content (PostBody); replyTo and replaces are not set, so the pointer section is truncated to 2. The text is 12 bytes + NUL = a 13-byte list in 2 words (3 zero padding bytes). attachments is an empty struct list: a list pointer with 0 words and its tag word. blake3 is the PostId.",
            &["post", "text"],
            "Post",
            post_json(&p1),
        ),
        &p1,
        &ALICE,
    );
    let p1_id = PostId::of_canonical(&p1_bytes);

    let cat = Attachment::for_blob(
        b"\xff\xd8\xff\xe0 not really a jpeg",
        "image/jpeg",
        Some("cat.jpg".into()),
    );
    let pdf = Attachment::for_blob(b"%PDF-1.7 not really a pdf", "application/pdf", None);
    let p2 = Post::new_public(pid(&ALICE), T0 + 1, "two files", vec![cat.clone(), pdf]);
    let p2_bytes = g.signed(
        Valid::new(
            "post-public-attachments",
            "A public post with two attachments. Struct-list elements all have the size of the largest truncated element: the second attachment has no name (null pointer) but keeps 3 pointers because the first has one. blobId = BLAKE3 of the blob; sizeBytes is a UInt32 at byte 0.",
            &["post", "attachments", "struct-list"],
            "Post",
            post_json(&p2),
        ),
        &p2,
        &ALICE,
    );
    let p2_id = PostId::of_canonical(&p2_bytes);

    let reply = Post {
        reply_to: Some(p1_id),
        ..Post::new_public(pid(&BOB), T0 + 2, "a reply", Vec::new())
    };
    g.signed(
        Valid::new(
            "post-reply",
            "A reply: replyTo = the PostId of post-public-text. replaces is not set, so the pointer section ends at replyTo (3 pointers).",
            &["post", "reply"],
            "Post",
            post_json(&reply),
        ),
        &reply,
        &BOB,
    );

    let replacement = Post {
        replaces: Some(p2_id),
        ..Post::new_public(pid(&ALICE), T0 + 3, "two files, fixed", vec![cat])
    };
    let replacement_bytes = g.signed(
        Valid::new(
            "post-replaces",
            "A post replacing post-public-attachments: replaces is set and replyTo is not, so the pointer section keeps all 4 pointers with a null one (replyTo) before replaces. Only trailing null pointers are truncated.",
            &["post", "replaces", "null-pointer"],
            "Post",
            post_json(&replacement),
        ),
        &replacement,
        &ALICE,
    );
    let replacement_id = PostId::of_canonical(&replacement_bytes);

    // Sealed post: seal_post draws CEK (32 bytes), content nonce (12) and the
    // ephemeral secret (32), in this order.
    let sealed_body = PostBody {
        text: "for Alice and Bob only".into(),
        attachments: vec![Attachment::for_blob(
            b"a private picture",
            "image/png",
            Some("us.png".into()),
        )],
        rotation: None,
        archive: None,
        group: None,
    };
    let mut r = rng("post-sealed");
    let mut draws = r.clone();
    let cek = rand32(&mut draws);
    let (sealed_post, sealed_vis) = seal_post(
        &alice,
        T0 + 4,
        &sealed_body,
        &[pid(&ALICE), pid(&BOB)],
        &mut r,
    )
    .expect("seal");
    let sealed = sealed_post.body().clone();
    assert_eq!(
        sealed.open(&Cek::from_bytes(cek)).expect("open"),
        sealed_body
    );
    let sealed_bytes = g.signed(
        Valid::new(
            "post-sealed",
            "An encrypted post: content.sealed (discriminant 1 at byte 8, so both data words are kept). ciphertext = ChaCha20-Poly1305(CEK, nonce, aad \"distsoc/2/content\", canonical PostBody of input.derivation.body), i.e. the bytes of record post-body-sealed-plaintext. input.derivation is informative: the CEK and the plaintext body, drawn from a ChaCha20 stream (CEK, nonce, ephemeral secret, in this order).",
            &["post", "sealed"],
            "Post",
            post_json(&sealed),
        )
        .input(json!({ "derivation": { "cek": h(cek), "body": post_body_json(&sealed_body) } })),
        &sealed,
        &ALICE,
    );
    assert_eq!(sealed_bytes, sealed_post.bytes());
    let sealed_id = PostId::of_canonical(&sealed_bytes);

    let empty = Post::new_public(pid(&ALICE), T0 + 5, "", Vec::new());
    let empty_post = g.signed(
        Valid::new(
            "post-empty-text",
            "Encoding rule: an empty Text that is set is NOT a null pointer: it is a 1-element byte list holding the NUL terminator (list pointer with element size 2 and count 1, then one zero word). An empty struct list that is set is a list pointer with word count 0 followed by its tag word (element count 0, data 0, pointers 0), here all zero.",
            &["post", "encoding-rule", "empty-text"],
            "Post",
            post_json(&empty),
        ),
        &empty,
        &ALICE,
    );
    let empty_value = post_json(&empty);

    let zero = Post::new_public(pid(&ALICE), 0, "epoch", Vec::new());
    g.signed(
        Valid::new(
            "post-created-at-zero",
            "Encoding rule: a field at its default value (createdAtMs = 0) is all zero bits, and with the plain discriminant (0) the whole data section is zero: it is truncated to 0 words (root pointer data size 0).",
            &["post", "encoding-rule", "default-value"],
            "Post",
            post_json(&zero),
        ),
        &zero,
        &ALICE,
    );

    for (id, text, comment) in [
        (
            "post-text-7-bytes",
            "seven!!",
            "Encoding rule: 7 bytes of text + NUL = exactly one word, no padding.",
        ),
        (
            "post-text-8-bytes",
            "eight!!!",
            "Encoding rule: 8 bytes of text + NUL = 9 bytes: two words, the last 7 bytes zero padding.",
        ),
        (
            "post-unicode-text",
            "héllo 👋 世界",
            "Text is UTF-8; its list length counts bytes (18 + NUL = 19), not characters.",
        ),
    ] {
        let p = Post::new_public(pid(&ALICE), T0 + 6, text, Vec::new());
        g.signed(
            Valid::new(id, comment, &["post", "encoding-rule", "text"], "Post", post_json(&p)),
            &p,
            &ALICE,
        );
    }

    // ---- PostBody -------------------------------------------------------------
    g.value(
        Valid::new(
            "post-body-sealed-plaintext",
            "A PostBody: the AEAD plaintext of record post-sealed (not signed; hashed by nobody, but its exact bytes decide the ciphertext). Decrypting post-sealed's ciphertext with its CEK gives exactly these bytes.",
            &["post-body", "sealed"],
            "PostBody",
            post_body_json(&sealed_body),
        ),
        &sealed_body,
        MAX_POST_BYTES,
    );
    dm::dm_bodies(&mut g);
    let empty_body = PostBody::default();
    g.value(
        Valid::new(
            "post-body-empty",
            "Encoding rule: an empty PostBody as distsoc writes it: text \"\" (a 1-byte list holding NUL) and attachments [] (a zero-length struct list with its tag word). Both pointers are set, so nothing is truncated.",
            &["post-body", "encoding-rule", "empty-text"],
            "PostBody",
            post_body_json(&empty_body),
        ),
        &empty_body,
        MAX_POST_BYTES,
    );

    // ---- PostHeader -------------------------------------------------------------
    for (id, policy, comment) in [
        (
            "header-public",
            CommentPolicy::Public,
            "A header with commentPolicy public (enumerant 0): data word 0 is zero but kept, because word 1 (updatedAtMs) is not. Only trailing zero words are truncated. pubPost is not set and wrapSlots is an empty list.",
        ),
        (
            "header-followers-only",
            CommentPolicy::FollowersOnly,
            "commentPolicy followersOnly (enumerant 1, a UInt16 at byte 0).",
        ),
        (
            "header-none",
            CommentPolicy::None,
            "commentPolicy none (enumerant 2).",
        ),
    ] {
        let x = PostHeader::new(p1_id, pid(&ALICE), policy, T0 + 10).expect("header");
        g.signed(
            Valid::new(id, comment, &["post-header"], "PostHeader", header_json(&x)),
            &x,
            &ALICE,
        );
    }
    let vouch_keys = [fof::VouchKey::from_bytes(V1), fof::VouchKey::from_bytes(V2)];
    let fof_header = PostHeader::new_fof(
        p1_id,
        pid(&ALICE),
        pk(&PRIV_POST),
        &vouch_keys,
        &PRIV_POST,
        T0 + 11,
    )
    .expect("fof header");
    g.signed(
        Valid::new(
            "header-fof",
            "A friendsOfFriends header (enumerant 3): pubPost = the public key of the per-post seed, two 50-byte wrap slots (2-byte tag, 48-byte sealed seed), one per vouch key of input.derivation (fof.json has the slot construction).",
            &["post-header", "fof"],
            "PostHeader",
            header_json(&fof_header),
        )
        .input(json!({ "derivation": {
            "priv_post_seed": h(PRIV_POST),
            "vouch_keys": hex_list(&[V1, V2]),
        } })),
        &fof_header,
        &ALICE,
    );

    // ---- CommentBody -------------------------------------------------------------
    let c1 = CommentBody {
        parent_post_id: p1_id,
        author: pid(&BOB),
        created_at_ms: T0 + 20,
        text: "nice post".into(),
        reply_to: None,
    };
    let c1_bytes = g.signed(
        Valid::new(
            "comment",
            "A comment. blake3 is its comment_hash.",
            &["comment"],
            "CommentBody",
            comment_json(&c1),
        ),
        &c1,
        &BOB,
    );
    let c1_hash = CommentHash::of_canonical(&c1_bytes);
    let c2 = CommentBody {
        parent_post_id: p1_id,
        author: pid(&CAROL),
        created_at_ms: T0 + 21,
        text: "agreed".into(),
        reply_to: Some(c1_hash),
    };
    let c2_canonical = encode("CommentBody", &comment_json(&c2));
    let c2_hash = *blake3::hash(&c2_canonical).as_bytes();
    let group_sig = SigningKey::from_seed(&PRIV_POST).sign(Purpose::CommentGroup, &c2_hash);
    assert_eq!(
        group_sig,
        dalek_sign(&PRIV_POST, Purpose::CommentGroup, &c2_hash)
    );
    g.signed(
        Valid::new(
            "comment-reply-fof",
            "A reply to record comment (replyTo = its comment_hash) on the friends-of-friends post of header-fof. Besides the commenter's signature, expected.group_signature is the per-post key's signature (input.group_seed, public key expected.group_public_key = the header's pubPost), purpose comment-group, over the 32-byte comment_hash (= expected.blake3).",
            &["comment", "reply", "fof"],
            "CommentBody",
            comment_json(&c2),
        )
        .input(json!({ "group_seed": h(PRIV_POST), "group_purpose": "comment-group" }))
        .expected(json!({
            "group_signature": h(group_sig),
            "group_public_key": h(pk(&PRIV_POST)),
        })),
        &c2,
        &CAROL,
    );
    let c3 = CommentBody {
        text: String::new(),
        created_at_ms: T0 + 22,
        ..c1.clone()
    };
    g.signed(
        Valid::new(
            "comment-empty-text",
            "Encoding rule: text \"\" is set: a 1-byte list (NUL), not a null pointer; replyTo is not set, so the pointer section ends at text (3 pointers).",
            &["comment", "encoding-rule", "empty-text"],
            "CommentBody",
            comment_json(&c3),
        ),
        &c3,
        &BOB,
    );

    // ---- DeleteRecordBody --------------------------------------------------------
    let d1 = DeleteRecordBody {
        post_id: p1_id,
        author: pid(&ALICE),
        deleted_at_ms: T0 + 30,
        replaced_by: None,
    };
    g.signed(
        Valid::new(
            "delete",
            "A delete record for post-public-text.",
            &["delete"],
            "DeleteRecordBody",
            delete_json(&d1),
        ),
        &d1,
        &ALICE,
    );
    let d2 = DeleteRecordBody {
        post_id: p2_id,
        author: pid(&ALICE),
        deleted_at_ms: T0 + 31,
        replaced_by: Some(replacement_id),
    };
    g.signed(
        Valid::new(
            "delete-replaced-by",
            "A delete record of post-public-attachments naming its replacement (replacedBy = PostId of post-replaces).",
            &["delete"],
            "DeleteRecordBody",
            delete_json(&d2),
        ),
        &d2,
        &ALICE,
    );

    // ---- PostVisibility ----------------------------------------------------------
    for (id, vis, post, comment) in [
        (
            "post-visibility-public",
            PostVisibility::Public,
            p1_id,
            "Public visibility: the union discriminant (0) is the only data and it is zero, and public is Void, so the struct is zero-sized: the canonical form is the single root pointer fcffffff00000000 (offset -1, no data, no pointers; offset 0 would be the null pointer). signing_digest = BLAKE3(post_id || canonical); the post-visibility signature is over that digest.",
        ),
        (
            "post-visibility-encrypted",
            sealed_vis.clone(),
            sealed_id,
            "The visibility of post-sealed: encrypted (discriminant 1), ephemeral key and two wrapped keys (Alice, Bob; envelope.json has the construction). expected.signature is the SyncPost.visibilitySignature: Ed25519 by the post's author, purpose post-visibility, over expected.signing_digest = BLAKE3-256(post_id || canonical). input.derivation (informative): the CEK, which every input.derivation.recipient_seeds unwraps.",
        ),
    ] {
        let value = visibility_json(&vis);
        let canonical = encode("PostVisibility", &value);
        let mut hasher = blake3::Hasher::new();
        hasher.update(&post.0);
        hasher.update(&canonical);
        let digest = *hasher.finalize().as_bytes();
        assert_eq!(digest, vis.signing_digest(&post));
        let signature = vis.sign_for(&post, &alice);
        assert_eq!(signature, dalek_sign(&ALICE, Purpose::PostVisibility, &digest));
        let mut v = Valid::new(id, comment, &["post-visibility"], "PostVisibility", value)
            .input(json!({
                "post_id": h(post.0),
                "signer_seed": h(ALICE),
                "purpose": Purpose::PostVisibility.as_str(),
            }))
            .expected(json!({
                "signing_digest": h(digest),
                "signature": h(signature),
                "public_key": h(pk(&ALICE)),
            }));
        if vis.is_encrypted() {
            v = v.input(json!({ "derivation": {
                "cek": h(cek),
                "recipient_seeds": hex_list(&[ALICE, BOB]),
            } }));
        }
        g.value(v, &vis, distsoc_protocol::limits::MAX_VISIBILITY_BYTES);
    }

    // ---- VisibilityUpdateBody ------------------------------------------------------
    let mut r = rng("visibility-update");
    let eph = rand32(&mut r);
    let rewrapped =
        EncryptedVisibility::wrap(&Cek::from_bytes(cek), &eph, &[pid(&ALICE), pid(&CAROL)])
            .expect("wrap");
    let u1 = VisibilityUpdateBody {
        post_id: sealed_id,
        author: pid(&ALICE),
        visibility: PostVisibility::Encrypted(rewrapped),
        updated_at_ms: T0 + 40,
    };
    g.signed(
        Valid::new(
            "visibility-update-encrypted",
            "Sync access list for post-sealed: the same CEK re-wrapped (new ephemeral key) for Alice and Carol (Bob removed). The visibility is a nested struct. input.derivation (informative): the CEK, which each recipient seed unwraps.",
            &["visibility-update"],
            "VisibilityUpdateBody",
            visibility_update_json(&u1),
        )
        .input(json!({ "derivation": {
            "cek": h(cek),
            "recipient_seeds": hex_list(&[ALICE, CAROL]),
        } })),
        &u1,
        &ALICE,
    );
    let u2 = VisibilityUpdateBody {
        post_id: p1_id,
        author: pid(&ALICE),
        visibility: PostVisibility::Public,
        updated_at_ms: T0 + 41,
    };
    let u2_value = visibility_update_json(&u2);
    g.signed(
        Valid::new(
            "visibility-update-public",
            "Encoding rule: a nested zero-sized struct (public visibility) is a pointer with offset -1 (fcffffff00000000) and takes no words. (Decodes fine; applying it is another matter: a public visibility never applies to a sealed post.)",
            &["visibility-update", "encoding-rule", "zero-sized-struct"],
            "VisibilityUpdateBody",
            u2_value.clone(),
        ),
        &u2,
        &ALICE,
    );

    // ---- AuthorRecentPosts ----------------------------------------------------------
    let recent = AuthorRecentPosts {
        author: pid(&ALICE),
        seq: 7,
        updated_at_ms: T0 + 50,
        posts: vec![
            RecentPost {
                post_id: sealed_id,
                created_at_ms: T0 + 4,
                hint: VisibilityHint::Encrypted,
            },
            RecentPost {
                post_id: p2_id,
                created_at_ms: T0 + 1,
                hint: VisibilityHint::Public,
            },
            RecentPost {
                post_id: p1_id,
                created_at_ms: T0,
                hint: VisibilityHint::Public,
            },
        ],
    };
    g.signed(
        Valid::new(
            "recent-posts",
            "Alice's recent posts, seq 7, newest first. One entry is encrypted (hint 1 in data word 1), so every element keeps 2 data words.",
            &["recent-posts", "struct-list"],
            "AuthorRecentPosts",
            recent_json(&recent),
        ),
        &recent,
        &ALICE,
    );
    let recent_public = AuthorRecentPosts {
        seq: 8,
        updated_at_ms: T0 + 51,
        posts: recent.posts[1..].to_vec(),
        ..recent.clone()
    };
    g.signed(
        Valid::new(
            "recent-posts-all-public",
            "Encoding rule: in a struct list every element is truncated to the largest truncated element. All hints are public (0), so the tag word declares 1 data word per element, not 2.",
            &["recent-posts", "encoding-rule", "struct-list"],
            "AuthorRecentPosts",
            recent_json(&recent_public),
        ),
        &recent_public,
        &ALICE,
    );

    // ---- HeartBody -------------------------------------------------------------------
    let heart = HeartBody {
        post_id: p1_id,
        reactor: pid(&BOB),
        created_at_ms: T0 + 60,
    };
    let heart_bytes = g.signed(
        Valid::new(
            "heart",
            "Bob hearts post-public-text.",
            &["heart"],
            "HeartBody",
            heart_json(&heart),
        ),
        &heart,
        &BOB,
    );
    let heart0 = HeartBody {
        created_at_ms: 0,
        ..heart
    };
    g.signed(
        Valid::new(
            "heart-created-at-zero",
            "Encoding rule: the only data field is 0 (its default), so the data section is truncated to 0 words: the root pointer declares data size 0.",
            &["heart", "encoding-rule", "default-value"],
            "HeartBody",
            heart_json(&heart0),
        ),
        &heart0,
        &BOB,
    );

    // ---- PublicProfile ---------------------------------------------------------------
    let profile = PublicProfile {
        posting_id: pid(&ALICE),
        display_name: "Alice".into(),
        bio: "Writes about mushrooms.".into(),
        anchors: vec![NodeId(pk(&ANCHOR_1)), NodeId(pk(&ANCHOR_2))],
        avatar: Some(BlobId::of_blob(b"a small avatar")),
        updated_at_ms: T0 + 70,
        network_id: Some(NodeId(pk(&NETWORK))),
    };
    g.signed(
        Valid::new(
            "profile",
            "A full profile: two anchors (a List(Data): a pointer list, each element a byte-list pointer), avatar blob id and networkId.",
            &["profile"],
            "PublicProfile",
            profile_json(&profile),
        ),
        &profile,
        &ALICE,
    );
    let minimal = PublicProfile {
        posting_id: pid(&BOB),
        display_name: "Bob".into(),
        bio: String::new(),
        anchors: Vec::new(),
        avatar: None,
        updated_at_ms: T0 + 71,
        network_id: None,
    };
    g.signed(
        Valid::new(
            "profile-minimal",
            "Encoding rule: bio \"\" is a NUL-only byte list and anchors [] a zero-length pointer list (its pointer's offset points where the next object starts); avatar and networkId are not set, so the pointer section is truncated to 4.",
            &["profile", "encoding-rule", "empty-text"],
            "PublicProfile",
            profile_json(&minimal),
        ),
        &minimal,
        &BOB,
    );

    // ---- GroupKeyWrapBody ------------------------------------------------------------
    let group = GroupKey {
        group_id: pid(&GROUP),
        secret_seed: SigningKey::from_seed(&GROUP).seed(),
        epoch: 3,
        name: "friends".into(),
    };
    let mut r = rng("group-key-wrap");
    let eph = rand32(&mut r);
    let wrap = GroupKeyWrapBody::new(
        pid(&ALICE),
        &group,
        &[pid(&BOB), pid(&CAROL)],
        &eph,
        T0 + 80,
    )
    .expect("group wrap");
    g.signed(
        Valid::new(
            "group-key-wrap",
            "Alice (admin) distributes epoch 3 of a group's seed to Bob and Carol: members (List(Data)) and one wrapped key each. input.derivation (informative): the group seed and the members' seeds, each of which unwraps it.",
            &["group-key"],
            "GroupKeyWrapBody",
            group_key_wrap_json(&wrap),
        )
        .input(json!({ "derivation": {
            "group_seed": h(GROUP),
            "member_seeds": hex_list(&[BOB, CAROL]),
        } })),
        &wrap,
        &ALICE,
    );

    // ---- VouchGrantBody --------------------------------------------------------------
    let mut r = rng("vouch-grant");
    let grant = VouchGrantBody::new(
        &alice,
        pid(&BOB),
        &fof::VouchKey::from_bytes(V1),
        T0 + 90,
        &mut r,
    )
    .expect("grant");
    g.signed(
        Valid::new(
            "vouch-grant",
            "Alice hands vouch key V1 to Bob, sealed like a wrapped key. input.derivation (informative): the vouch key and the grantee's seed, which opens sealedKey.",
            &["vouch-grant"],
            "VouchGrantBody",
            vouch_grant_json(&grant),
        )
        .input(json!({ "derivation": { "vouch_key": h(V1), "grantee_seed": h(BOB) } })),
        &grant,
        &ALICE,
    );

    // ---- Audience bodies -------------------------------------------------------------
    for (id, message, comment) in [
        ("audience-request", "may I follow you?", "Bob asks to join Alice's audience."),
        (
            "audience-request-empty-message",
            "",
            "Encoding rule: message \"\" is set (a NUL-only byte list), so no pointer is truncated.",
        ),
    ] {
        let a = AudienceRequestBody {
            requester: pid(&BOB),
            author: pid(&ALICE),
            message: message.into(),
            created_at_ms: T0 + 100,
        };
        g.signed(
            Valid::new(id, comment, &["audience"], "AudienceRequestBody", audience_request_json(&a)),
            &a,
            &BOB,
        );
    }
    for (id, decision, at, comment) in [
        (
            "audience-response-approved",
            AudienceDecision::Approved,
            T0 + 110,
            "Approved is enumerant 0: data word 0 is zero but kept, since decidedAtMs (word 1) is not zero.",
        ),
        (
            "audience-response-denied",
            AudienceDecision::Denied,
            T0 + 111,
            "Denied is enumerant 1.",
        ),
        (
            "audience-response-revoked-at-zero",
            AudienceDecision::Revoked,
            0,
            "Encoding rule: decidedAtMs = 0 makes data word 1 zero: truncated, 1 data word (revoked = 2 in word 0).",
        ),
    ] {
        let a = AudienceResponseBody {
            author: pid(&ALICE),
            requester: pid(&BOB),
            decision,
            decided_at_ms: at,
        };
        g.signed(
            Valid::new(id, comment, &["audience"], "AudienceResponseBody", audience_response_json(&a)),
            &a,
            &ALICE,
        );
    }

    // ---- IdentityBundle ---------------------------------------------------------------
    let bundle = IdentityBundle {
        posting_identities: vec![
            PostingIdentity::from_key(&alice, "Alice", T0, false),
            PostingIdentity::from_key(&SigningKey::from_seed(&DM), "", T0 + 120, true),
        ],
        default_posting_id: pid(&ALICE),
        vouch_keys: vec![
            VouchKey {
                key: fof::VouchKey::from_bytes(V1),
                grantor: pid(&ALICE),
                grantee: Some(pid(&BOB)),
                created_at_ms: T0 + 90,
            },
            VouchKey {
                key: fof::VouchKey::from_bytes(V3),
                grantor: pid(&CAROL),
                grantee: None,
                created_at_ms: T0 + 91,
            },
        ],
        group_keys: vec![group],
        ..IdentityBundle::new(SigningKey::from_seed(&NETWORK).seed(), T0 + 121)
    };
    assert_eq!(
        *bundle.canonical_bytes().expect("bundle"),
        codec::canonical_of(&bundle)
    );
    g.value(
        Valid::new(
            "identity-bundle",
            "An identity bundle (not signed; its canonical bytes are the plaintext sealed into EncryptedIdentityBundle.ciphertext, passphrase.json has the sealing): version 1, the network seed, a persona and an ephemeral DM id (ephemeral is a Bool at bit 64: data word 1), a vouch key issued to Bob and one received from Carol (no grantee: 2 pointers in that element, but the list keeps 3 per element), a group key. Every secretSeed must belong to its public key.",
            &["identity-bundle"],
            "IdentityBundle",
            bundle_json(&bundle),
        ),
        &bundle,
        MAX_BUNDLE_BYTES,
    );
    let social_bundle = social::social_bundle(&bundle);
    g.value(
        Valid::new(
            "identity-bundle-social",
            "The identity-bundle vector with the social state a node exports: three follows (BundleFollow: postingId, followedAtMs, persona): Bob and Carol by the default persona Alice (persona empty), and Bob again by the network key's own persona (persona = the NodeId of networkSeed; the same postingId may be followed by several personas) two circles (BundleCircle: name, createdAtMs, members), the second with no members (a zero-length list, set like every list), two rotating-DM thread directions (BundleDmThread: peer, outgoing (Bool at bit 0), n, atMs, seed): our chain to Bob at n = 3 and Carol's chain we read at n = 1, and the archive pointers (archiveAnchors, pointer 8: a List(Text) of anchor connect strings NodeId@host:port, each element UTF-8 with its NUL).",
            &["identity-bundle"],
            "IdentityBundle",
            bundle_json(&social_bundle),
        ),
        &social_bundle,
        MAX_BUNDLE_BYTES,
    );
    let minimal_bundle = IdentityBundle::new(SigningKey::from_seed(&NETWORK).seed(), T0 + 122);
    g.value(
        Valid::new(
            "identity-bundle-minimal",
            "The smallest bundle: only the network seed; defaultPostingId is the network key's public key; the seven lists are set and empty (archiveAnchors a zero-length List(Text), the others zero-length struct lists) (zero-length struct lists, tag words only).",
            &["identity-bundle", "encoding-rule"],
            "IdentityBundle",
            bundle_json(&minimal_bundle),
        ),
        &minimal_bundle,
        MAX_BUNDLE_BYTES,
    );

    // ---- KdfParams --------------------------------------------------------------------
    let recommended = KdfParams::recommended([0x5a; 16]);
    g.value(
        Valid::new(
            "kdf-params-recommended",
            "The default KDF parameters (Argon2id, 64 MiB, 3 iterations, 1 lane). Not signed: these canonical bytes are the AAD of the identity bundle's sealing. kdf argon2id = 0 shares word 0 with memoryKib (UInt32 at byte 4).",
            &["kdf-params"],
            "KdfParams",
            kdf_json(&recommended),
        ),
        &recommended,
        usize::MAX,
    );
    let minimum = KdfParams {
        memory_kib: 8192,
        iterations: 1,
        parallelism: 1,
        ..recommended
    };
    g.value(
        Valid::new(
            "kdf-params-minimum",
            "The smallest parameters accepted (8 MiB, 1 iteration, 1 lane).",
            &["kdf-params"],
            "KdfParams",
            kdf_json(&minimum),
        ),
        &minimum,
        usize::MAX,
    );

    // ---- Alternative forms: accepted, but not what an encoder that sets every
    // Text and List field writes. ------------------------------------------------------
    let mut no_text = empty_value.clone();
    no_text["content"]["plain"]
        .as_object_mut()
        .expect("plain")
        .remove("text");
    let no_text_bytes = g.signed(
        Valid::new(
            "alt-post-text-absent",
            "Alternative form: post-empty-text with the text pointer null instead of a NUL-only list. Cap'n Proto reads an absent Text as \"\", so this decodes to the same value, yet the bytes (hence the PostId and the signature) differ: a different, equally valid post. Receivers must hash and verify the bytes they received; re-encoding the decoded value gives expected.reencoded (= post-empty-text's canonical bytes), not these.",
            &["post", "alternative-form", "empty-text"],
            "Post",
            no_text,
        ),
        &empty,
        &ALICE,
    );
    assert_ne!(no_text_bytes, empty_post);
    let mut no_list = post_body_json(&empty_body);
    no_list.as_object_mut().expect("body").remove("attachments");
    g.value(
        Valid::new(
            "alt-post-body-attachments-absent",
            "Alternative form: attachments as a null pointer instead of an empty list. Decodes to the same value as post-body-empty (no attachments) but the bytes differ; expected.reencoded is post-body-empty's encoding.",
            &["post-body", "alternative-form"],
            "PostBody",
            no_list,
        ),
        &empty_body,
        MAX_POST_BYTES,
    );
    let mut empty_reply = post_json(&p1);
    empty_reply["replyTo"] = json!("");
    g.signed(
        Valid::new(
            "alt-post-reply-to-empty-data",
            "Alternative form: replyTo set to zero-length Data (a byte-list pointer with count 0, whose offset points where the next object starts) instead of not set. An empty optional id means \"none\", so it decodes to post-public-text's value; the bytes and the PostId differ.",
            &["post", "alternative-form", "empty-data"],
            "Post",
            empty_reply,
        ),
        &p1,
        &ALICE,
    );
    g.value(
        Valid::new(
            "alt-post-visibility-null-root",
            "Alternative form: a null root pointer (input.value null). Every field reads as its default, so it decodes as public visibility, but it is not the zero-sized struct fcffffff00000000. Note that SyncPost carries the visibility as a struct and the post-visibility digest is computed over the canonical encoding of the decoded value (expected.reencoded), as in post-visibility-public.",
            &["post-visibility", "alternative-form", "zero-sized-struct"],
            "PostVisibility",
            Value::Null,
        ),
        &PostVisibility::Public,
        distsoc_protocol::limits::MAX_VISIBILITY_BYTES,
    );

    reject_records(
        &mut g,
        &p1,
        &p1_bytes,
        p2_id,
        &heart_bytes,
        &u2_value,
        &c1,
        sealed_id,
        &sealed_vis,
    );

    let mut seen = std::collections::BTreeSet::new();
    for r in &g.records {
        assert!(seen.insert(r.id.clone()), "duplicate record id {}", r.id);
    }
    VectorFile {
        file: "canonical.json".into(),
        description: DESCRIPTION.into(),
        format_version: FORMAT_VERSION,
        records: g.records,
    }
}
