//! Checks every record of `conformance/vectors/canonical.json` against
//! `distsoc-protocol`, reading only the JSON (the generator is not used).
//!
//! Valid records: the value is built from `input.value` with the crate's public
//! domain types (the small JSON → domain converters below follow the JSON form
//! of `conformance/vectors/README.md`); `codec::canonical_of` must give
//! `expected.canonical` (or `expected.reencoded` for alternative forms),
//! `codec::from_canonical` of `expected.canonical` must give the value back,
//! and the BLAKE3 hash and signatures must match and verify.
//!
//! Invalid records: the receiver path (`codec::from_canonical` /
//! `Signed::decode`, then `verify`, then the PostId comparison of
//! `SyncPost::validate`) must refuse the bytes with the wire error named by
//! `expected.error`.
// Reads its vector files: the sans-IO lint (protocol/clippy.toml) does not apply to tests.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Debug;

use distsoc_protocol::codec::{self, Struct};
use distsoc_protocol::envelope::{Cek, WrappedKey};
use distsoc_protocol::error::{ErrorCode, WireCode};
use distsoc_protocol::fof::{self, WrapSlot};
use distsoc_protocol::ids::{BlobId, CommentHash, NodeId, PostId, PostingId};
use distsoc_protocol::limits::MAX_VISIBILITY_BYTES;
use distsoc_protocol::messages::common::VisibilityHint;
use distsoc_protocol::messages::content::{
    Attachment, AuthorRecentPosts, CommentBody, CommentPolicy, DeleteRecordBody, DmArchiveChunk,
    DmArchiveEntry, DmGroup, DmRotation, EncryptedVisibility, HeartBody, Post, PostBody,
    PostContent, PostHeader, PostVisibility, RecentPost, SealedBody, SignedPost, SyncPost,
    VisibilityUpdateBody, MAX_POST_BYTES,
};
use distsoc_protocol::messages::identity::{
    BundleCircle, BundleDmThread, BundleFollow, GroupKey, GroupKeyWrapBody, IdentityBundle, Kdf,
    KdfParams, PostingIdentity, PublicProfile, VouchGrantBody, VouchKey, MAX_BUNDLE_BYTES,
};
use distsoc_protocol::messages::signed::{Signed, SignedBody};
use distsoc_protocol::messages::social::{
    AudienceDecision, AudienceRequestBody, AudienceResponseBody,
};
use distsoc_protocol::sign::{self, Purpose, SigningKey};
use serde_json::Value;
use zeroize::Zeroizing;

fn load() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/vectors/canonical.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("canonical.json")).expect("json")
}

// ---- JSON helpers ------------------------------------------------------------

fn field<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get(k).unwrap_or_else(|| panic!("missing {k} in {v}"))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    field(v, k)
        .as_str()
        .unwrap_or_else(|| panic!("{k} is not a string"))
}

/// An absent Text reads as "" (Cap'n Proto's default).
fn text(v: &Value, k: &str) -> String {
    v.get(k)
        .map(|t| t.as_str().expect("text").to_owned())
        .unwrap_or_default()
}

fn n(v: &Value, k: &str) -> u64 {
    field(v, k)
        .as_u64()
        .unwrap_or_else(|| panic!("{k} is not a number"))
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn bytes(v: &Value, k: &str) -> Vec<u8> {
    hx(field(v, k))
}

fn arr<const N: usize>(v: &Value, k: &str) -> [u8; N] {
    bytes(v, k)
        .try_into()
        .unwrap_or_else(|b: Vec<u8>| panic!("{k}: {} bytes, not {N}", b.len()))
}

/// An optional id: absent or empty means none.
fn opt<const N: usize>(v: &Value, k: &str) -> Option<[u8; N]> {
    match v.get(k) {
        None => None,
        Some(x) if x.as_str() == Some("") => None,
        Some(_) => Some(arr(v, k)),
    }
}

/// An absent list reads as empty.
fn list<T>(v: &Value, k: &str, f: impl Fn(&Value) -> T) -> Vec<T> {
    v.get(k)
        .map(|l| l.as_array().expect("array").iter().map(f).collect())
        .unwrap_or_default()
}

fn id32(x: &Value) -> [u8; 32] {
    hx(x).try_into().expect("32 bytes")
}

// ---- JSON form -> domain values -----------------------------------------------

fn attachment(v: &Value) -> Attachment {
    Attachment {
        blob_id: BlobId(arr(v, "blobId")),
        mime_type: text(v, "mimeType"),
        size_bytes: n(v, "sizeBytes") as u32,
        name: Some(text(v, "name")).filter(|t| !t.is_empty()),
    }
}

fn post_body(v: &Value) -> PostBody {
    PostBody {
        text: text(v, "text"),
        attachments: list(v, "attachments", attachment),
        rotation: v.get("rotation").map(|r| DmRotation {
            next_posting_id: arr(r, "nextPostingId"),
        }),
        archive: v.get("archive").map(|a| DmArchiveChunk {
            entries: list(a, "entries", |e| DmArchiveEntry {
                peer: arr(e, "peer"),
                outgoing: field(e, "outgoing").as_bool().expect("bool"),
                created_at_ms: n(e, "createdAtMs"),
                text: text(e, "text"),
                dedup: arr(e, "dedup"),
                group: e.get("group").map(dm_group),
            }),
        }),
        group: v.get("group").map(dm_group),
    }
}

fn dm_group(g: &Value) -> DmGroup {
    DmGroup {
        thread_id: arr(g, "threadId"),
        members: list(g, "members", id32),
    }
}

fn post(v: &Value) -> Post {
    let content = field(v, "content");
    let content = match (content.get("plain"), content.get("sealed")) {
        (Some(p), None) => PostContent::Plain(post_body(p)),
        (None, Some(x)) => PostContent::Sealed(SealedBody {
            nonce: arr(x, "nonce"),
            ciphertext: bytes(x, "ciphertext"),
        }),
        _ => panic!("content: exactly one arm"),
    };
    Post {
        author: PostingId(arr(v, "author")),
        created_at_ms: n(v, "createdAtMs"),
        content,
        reply_to: opt(v, "replyTo").map(PostId),
        replaces: opt(v, "replaces").map(PostId),
    }
}

fn wrapped(v: &Value) -> WrappedKey {
    WrappedKey {
        recipient: arr(v, "recipient"),
        wrapped: arr(v, "wrapped"),
    }
}

/// `null` (the null pointer) and `{"public": null}` are public.
fn visibility(v: &Value) -> PostVisibility {
    if v.is_null() || v.get("public").is_some() {
        return PostVisibility::Public;
    }
    let e = field(v, "encrypted");
    PostVisibility::Encrypted(EncryptedVisibility {
        ephemeral_key: arr(e, "ephemeralKey"),
        recipients: list(e, "recipients", wrapped),
    })
}

fn comment_policy(name: &str) -> CommentPolicy {
    match name {
        "public" => CommentPolicy::Public,
        "followersOnly" => CommentPolicy::FollowersOnly,
        "none" => CommentPolicy::None,
        "friendsOfFriends" => CommentPolicy::FriendsOfFriends,
        other => panic!("commentPolicy {other}"),
    }
}

fn header(v: &Value) -> PostHeader {
    PostHeader {
        post_id: PostId(arr(v, "postId")),
        author: PostingId(arr(v, "author")),
        comment_policy: comment_policy(s(v, "commentPolicy")),
        pub_post: opt(v, "pubPost"),
        wrap_slots: list(v, "wrapSlots", |x| WrapSlot {
            tag: arr(x, "tag"),
            sealed: arr(x, "sealed"),
        }),
        updated_at_ms: n(v, "updatedAtMs"),
    }
}

fn comment(v: &Value) -> CommentBody {
    CommentBody {
        parent_post_id: PostId(arr(v, "parentPostId")),
        author: PostingId(arr(v, "author")),
        created_at_ms: n(v, "createdAtMs"),
        text: text(v, "text"),
        reply_to: opt(v, "replyTo").map(CommentHash),
    }
}

fn delete(v: &Value) -> DeleteRecordBody {
    DeleteRecordBody {
        post_id: PostId(arr(v, "postId")),
        author: PostingId(arr(v, "author")),
        deleted_at_ms: n(v, "deletedAtMs"),
        replaced_by: opt(v, "replacedBy").map(PostId),
    }
}

fn visibility_update(v: &Value) -> VisibilityUpdateBody {
    VisibilityUpdateBody {
        post_id: PostId(arr(v, "postId")),
        author: PostingId(arr(v, "author")),
        visibility: visibility(field(v, "visibility")),
        updated_at_ms: n(v, "updatedAtMs"),
    }
}

fn recent(v: &Value) -> AuthorRecentPosts {
    AuthorRecentPosts {
        author: PostingId(arr(v, "author")),
        seq: n(v, "seq"),
        updated_at_ms: n(v, "updatedAtMs"),
        posts: list(v, "posts", |p| RecentPost {
            post_id: PostId(arr(p, "postId")),
            created_at_ms: n(p, "createdAtMs"),
            hint: match s(p, "hint") {
                "public" => VisibilityHint::Public,
                "encrypted" => VisibilityHint::Encrypted,
                other => panic!("hint {other}"),
            },
        }),
    }
}

fn heart(v: &Value) -> HeartBody {
    HeartBody {
        post_id: PostId(arr(v, "postId")),
        reactor: PostingId(arr(v, "reactor")),
        created_at_ms: n(v, "createdAtMs"),
    }
}

fn profile(v: &Value) -> PublicProfile {
    PublicProfile {
        posting_id: PostingId(arr(v, "postingId")),
        display_name: text(v, "displayName"),
        bio: text(v, "bio"),
        anchors: list(v, "anchors", |a| NodeId(id32(a))),
        avatar: opt(v, "avatar").map(BlobId),
        updated_at_ms: n(v, "updatedAtMs"),
        network_id: opt(v, "networkId").map(NodeId),
    }
}

fn group_key_wrap(v: &Value) -> GroupKeyWrapBody {
    GroupKeyWrapBody {
        group_id: PostingId(arr(v, "groupId")),
        epoch: n(v, "epoch") as u32,
        admin: PostingId(arr(v, "admin")),
        ephemeral_key: arr(v, "ephemeralKey"),
        members: list(v, "members", |m| PostingId(id32(m))),
        wraps: list(v, "wraps", wrapped),
        created_at_ms: n(v, "createdAtMs"),
    }
}

fn vouch_grant(v: &Value) -> VouchGrantBody {
    VouchGrantBody {
        grantor: PostingId(arr(v, "grantor")),
        grantee: PostingId(arr(v, "grantee")),
        ephemeral_key: arr(v, "ephemeralKey"),
        sealed_key: arr(v, "sealedKey"),
        created_at_ms: n(v, "createdAtMs"),
    }
}

fn audience_request(v: &Value) -> AudienceRequestBody {
    AudienceRequestBody {
        requester: PostingId(arr(v, "requester")),
        author: PostingId(arr(v, "author")),
        message: text(v, "message"),
        created_at_ms: n(v, "createdAtMs"),
    }
}

fn audience_response(v: &Value) -> AudienceResponseBody {
    AudienceResponseBody {
        author: PostingId(arr(v, "author")),
        requester: PostingId(arr(v, "requester")),
        decision: match s(v, "decision") {
            "approved" => AudienceDecision::Approved,
            "denied" => AudienceDecision::Denied,
            "revoked" => AudienceDecision::Revoked,
            other => panic!("decision {other}"),
        },
        decided_at_ms: n(v, "decidedAtMs"),
    }
}

fn bundle(v: &Value) -> IdentityBundle {
    IdentityBundle {
        version: n(v, "version") as u16,
        network_seed: Zeroizing::new(arr(v, "networkSeed")),
        posting_identities: list(v, "postingIdentities", |p| PostingIdentity {
            posting_id: PostingId(arr(p, "postingId")),
            secret_seed: Zeroizing::new(arr(p, "secretSeed")),
            display_name: text(p, "displayName"),
            created_at_ms: n(p, "createdAtMs"),
            ephemeral: field(p, "ephemeral").as_bool().expect("bool"),
        }),
        default_posting_id: PostingId(arr(v, "defaultPostingId")),
        vouch_keys: list(v, "vouchKeys", |k| VouchKey {
            key: fof::VouchKey::from_bytes(arr(k, "key")),
            grantor: PostingId(arr(k, "grantor")),
            grantee: opt(k, "grantee").map(PostingId),
            created_at_ms: n(k, "createdAtMs"),
        }),
        group_keys: list(v, "groupKeys", |g| GroupKey {
            group_id: PostingId(arr(g, "groupId")),
            secret_seed: Zeroizing::new(arr(g, "secretSeed")),
            epoch: n(g, "epoch") as u32,
            name: text(g, "name"),
        }),
        created_at_ms: n(v, "createdAtMs"),
        follows: list(v, "follows", |f| BundleFollow {
            posting_id: PostingId(arr(f, "postingId")),
            followed_at_ms: n(f, "followedAtMs"),
            persona: opt(f, "persona").map(PostingId),
        }),
        circles: list(v, "circles", |c| BundleCircle {
            name: text(c, "name"),
            created_at_ms: n(c, "createdAtMs"),
            members: list(c, "members", |m| PostingId(id32(m))),
        }),
        dm_threads: list(v, "dmThreads", |t| BundleDmThread {
            peer: NodeId(arr(t, "peer")),
            outgoing: field(t, "outgoing").as_bool().expect("bool"),
            n: n(t, "n"),
            at_ms: n(t, "atMs"),
            seed: Zeroizing::new(arr(t, "seed")),
        }),
        archive_anchors: list(v, "archiveAnchors", |a| {
            a.as_str().expect("string").to_string()
        }),
    }
}

fn kdf_params(v: &Value) -> KdfParams {
    assert_eq!(s(v, "kdf"), "argon2id");
    KdfParams {
        kdf: Kdf::Argon2id,
        memory_kib: n(v, "memoryKib") as u32,
        iterations: n(v, "iterations") as u32,
        parallelism: n(v, "parallelism") as u32,
        salt: arr(v, "salt"),
    }
}

// ---- Size caps (conformance/vectors/README.md, canonical.json) ---------------

/// The canonical-bytes cap of each type, as the README states it.
const CAPS: &[(&str, usize)] = &[
    ("Post", 262_144),
    ("PostBody", 262_144),
    ("PostHeader", 262_144),
    ("CommentBody", 16_384),
    ("DeleteRecordBody", 4_096),
    ("VisibilityUpdateBody", 266_240),
    ("PostVisibility", 262_144),
    ("AuthorRecentPosts", 262_144),
    ("HeartBody", 1_024),
    ("PublicProfile", 16_384),
    ("GroupKeyWrapBody", 266_240),
    ("VouchGrantBody", 1_024),
    ("AudienceRequestBody", 4_096),
    ("AudienceResponseBody", 4_096),
    ("IdentityBundle", 64 * 1024 * 1024 - 16),
    ("KdfParams", usize::MAX),
];

fn cap(ty: &str) -> usize {
    CAPS.iter()
        .find(|(t, _)| *t == ty)
        .unwrap_or_else(|| panic!("no cap for {ty}"))
        .1
}

#[test]
fn caps_match_the_implementation() {
    let ours: &[(&str, usize)] = &[
        ("Post", Post::MAX_BYTES),
        ("PostBody", MAX_POST_BYTES),
        ("PostHeader", PostHeader::MAX_BYTES),
        ("CommentBody", CommentBody::MAX_BYTES),
        ("DeleteRecordBody", DeleteRecordBody::MAX_BYTES),
        ("VisibilityUpdateBody", VisibilityUpdateBody::MAX_BYTES),
        ("PostVisibility", MAX_VISIBILITY_BYTES),
        ("AuthorRecentPosts", AuthorRecentPosts::MAX_BYTES),
        ("HeartBody", HeartBody::MAX_BYTES),
        ("PublicProfile", PublicProfile::MAX_BYTES),
        ("GroupKeyWrapBody", GroupKeyWrapBody::MAX_BYTES),
        ("VouchGrantBody", VouchGrantBody::MAX_BYTES),
        ("AudienceRequestBody", AudienceRequestBody::MAX_BYTES),
        ("AudienceResponseBody", AudienceResponseBody::MAX_BYTES),
        ("IdentityBundle", MAX_BUNDLE_BYTES),
    ];
    for (ty, max) in ours {
        assert_eq!(cap(ty), *max, "{ty}");
    }
}

// ---- Valid records -------------------------------------------------------------

/// Checks a valid record's bytes against `built` and returns the canonical
/// bytes.
fn check_value<T: Struct + PartialEq + Debug>(id: &str, r: &Value, built: &T) -> Vec<u8> {
    let (input, expected) = (&r["input"], &r["expected"]);
    let canonical = bytes(expected, "canonical");
    let ours = codec::canonical_of(built);
    match expected.get("reencoded") {
        Some(re) => {
            assert_eq!(
                hex::encode(&ours),
                s(expected, "reencoded"),
                "{id}: reencoded"
            );
            assert_ne!(hx(re), canonical, "{id}: an alternative form must differ");
        }
        None => assert_eq!(
            hex::encode(&ours),
            s(expected, "canonical"),
            "{id}: canonical"
        ),
    }
    let ty = s(input, "type");
    let back: T = codec::from_canonical("value", &canonical, cap(ty))
        .unwrap_or_else(|e| panic!("{id}: decoding the canonical bytes: {e}"));
    assert_eq!(&back, built, "{id}: decoded value");
    assert_eq!(
        hex::encode(blake3::hash(&canonical).as_bytes()),
        s(expected, "blake3"),
        "{id}: blake3"
    );
    canonical
}

/// [`check_value`], then the signature: reproduced from the seed, verified
/// by `Signed::decode` + `verify` and by `sign::verify` with the record's
/// purpose.
fn check_signed<T: SignedBody + PartialEq + Debug>(id: &str, r: &Value, built: &T) -> Vec<u8> {
    let canonical = check_value(id, r, built);
    let (input, expected) = (&r["input"], &r["expected"]);
    let purpose = Purpose::from_name(s(input, "purpose")).expect("purpose");
    assert_eq!(purpose, T::PURPOSE, "{id}: purpose");
    let key = SigningKey::from_seed(&arr(input, "signer_seed"));
    let public: [u8; 32] = arr(expected, "public_key");
    assert_eq!(key.public(), public, "{id}: public_key");
    assert_eq!(built.signer().0, public, "{id}: the body's signer");
    let signature: [u8; 64] = arr(expected, "signature");
    assert_eq!(key.sign(purpose, &canonical), signature, "{id}: signature");
    sign::verify(&public, purpose, &canonical, &signature).unwrap_or_else(|e| panic!("{id}: {e}"));
    let signed =
        Signed::<T>::decode(Ok(&canonical), Ok(&signature)).unwrap_or_else(|e| panic!("{id}: {e}"));
    signed.verify().unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(signed.body(), built, "{id}");
    assert_eq!(signed.hash(), *blake3::hash(&canonical).as_bytes(), "{id}");
    canonical
}

fn seeds(v: &Value, k: &str) -> Vec<[u8; 32]> {
    list(v, k, id32)
}

fn check_valid(id: &str, r: &Value) {
    let input = &r["input"];
    let value = field(input, "value");
    let derivation = input.get("derivation");
    match s(input, "type") {
        "Post" => {
            let p = post(value);
            let canonical = check_signed(id, r, &p);
            let signed =
                SignedPost::decode(Ok(&canonical), Ok(&bytes(&r["expected"], "signature")))
                    .unwrap();
            assert_eq!(
                signed.post_id().to_hex(),
                s(&r["expected"], "blake3"),
                "{id}: PostId"
            );
            if let Some(d) = derivation {
                let body = p.open(&Cek::from_bytes(arr(d, "cek"))).expect("open");
                assert_eq!(body, post_body(field(d, "body")), "{id}: sealed body");
            }
        }
        "PostBody" => {
            check_value(id, r, &post_body(value));
        }
        "PostHeader" => {
            let x = header(value);
            check_signed(id, r, &x);
            if let Some(d) = derivation {
                let keys = list(d, "vouch_keys", |k| fof::VouchKey::from_bytes(id32(k)));
                for i in 0..keys.len() {
                    let (index, seed) = x.open_fof(&keys[i..=i]).expect("a slot opens");
                    assert_eq!(index, 0);
                    assert_eq!(*seed, arr::<32>(d, "priv_post_seed"), "{id}");
                }
                let seed: [u8; 32] = arr(d, "priv_post_seed");
                assert_eq!(x.pub_post, Some(SigningKey::from_seed(&seed).public()));
            }
        }
        "CommentBody" => {
            let c = comment(value);
            let canonical = check_signed(id, r, &c);
            let hash = CommentHash::of_canonical(&canonical);
            assert_eq!(
                hash.to_hex(),
                s(&r["expected"], "blake3"),
                "{id}: comment_hash"
            );
            if input.get("group_seed").is_some() {
                let expected = &r["expected"];
                assert_eq!(s(input, "group_purpose"), Purpose::CommentGroup.as_str());
                let key = SigningKey::from_seed(&arr(input, "group_seed"));
                let public: [u8; 32] = arr(expected, "group_public_key");
                assert_eq!(key.public(), public, "{id}");
                let sig: [u8; 64] = arr(expected, "group_signature");
                assert_eq!(
                    fof::group_sig(&arr(input, "group_seed"), &hash.0),
                    sig,
                    "{id}"
                );
                fof::verify_group_sig(&public, &hash.0, &sig).unwrap();
            }
        }
        "DeleteRecordBody" => {
            check_signed(id, r, &delete(value));
        }
        "VisibilityUpdateBody" => {
            let u = visibility_update(value);
            check_signed(id, r, &u);
            if let (Some(d), PostVisibility::Encrypted(e)) = (derivation, &u.visibility) {
                for seed in seeds(d, "recipient_seeds") {
                    let cek = e.unwrap_cek(&seed).expect("unwrap");
                    assert_eq!(*cek.as_bytes(), arr::<32>(d, "cek"), "{id}");
                }
            }
        }
        "PostVisibility" => {
            let vis = visibility(value);
            let canonical = check_value(id, r, &vis);
            let expected = &r["expected"];
            if input.get("signer_seed").is_none() {
                return;
            }
            assert_eq!(s(input, "purpose"), Purpose::PostVisibility.as_str());
            let post_id = PostId(arr(input, "post_id"));
            let digest = vis.signing_digest(&post_id);
            let mut h = blake3::Hasher::new();
            h.update(&post_id.0);
            h.update(&canonical);
            assert_eq!(
                digest,
                *h.finalize().as_bytes(),
                "{id}: digest over the bytes"
            );
            assert_eq!(hex::encode(digest), s(expected, "signing_digest"), "{id}");
            let key = SigningKey::from_seed(&arr(input, "signer_seed"));
            let sig: [u8; 64] = arr(expected, "signature");
            assert_eq!(vis.sign_for(&post_id, &key), sig, "{id}: signature");
            let author = PostingId(arr(expected, "public_key"));
            vis.verify_for(&post_id, &author, &sig).unwrap();
            if let (Some(d), PostVisibility::Encrypted(e)) = (derivation, &vis) {
                for seed in seeds(d, "recipient_seeds") {
                    let cek = e.unwrap_cek(&seed).expect("unwrap");
                    assert_eq!(*cek.as_bytes(), arr::<32>(d, "cek"), "{id}");
                }
            }
        }
        "AuthorRecentPosts" => {
            check_signed(id, r, &recent(value));
        }
        "HeartBody" => {
            check_signed(id, r, &heart(value));
        }
        "PublicProfile" => {
            check_signed(id, r, &profile(value));
        }
        "GroupKeyWrapBody" => {
            let w = group_key_wrap(value);
            check_signed(id, r, &w);
            if let Some(d) = derivation {
                for seed in seeds(d, "member_seeds") {
                    let g = w.unwrap(&seed).expect("unwrap");
                    assert_eq!(*g.secret_seed, arr::<32>(d, "group_seed"), "{id}");
                }
            }
        }
        "VouchGrantBody" => {
            let grant = vouch_grant(value);
            check_signed(id, r, &grant);
            if let Some(d) = derivation {
                let k = grant.open(&arr(d, "grantee_seed")).expect("open");
                assert_eq!(*k.key.as_bytes(), arr::<32>(d, "vouch_key"), "{id}");
            }
        }
        "AudienceRequestBody" => {
            check_signed(id, r, &audience_request(value));
        }
        "AudienceResponseBody" => {
            check_signed(id, r, &audience_response(value));
        }
        "IdentityBundle" => {
            let b = bundle(value);
            let canonical = check_value(id, r, &b);
            assert_eq!(
                *b.canonical_bytes().unwrap(),
                canonical,
                "{id}: canonical_bytes"
            );
            assert_eq!(
                IdentityBundle::from_canonical(&canonical).unwrap(),
                b,
                "{id}"
            );
        }
        "KdfParams" => {
            let k = kdf_params(value);
            check_value(id, r, &k);
            k.validate().unwrap();
        }
        other => panic!("{id}: unknown type {other}"),
    }
}

// ---- Invalid records: the receiver path -----------------------------------------

/// Decodes `bytes` as a signed `T` as a receiver does: with a signature,
/// `Signed::decode` then `verify`; without, the canonical decode alone.
fn receive_signed<T: SignedBody>(
    bytes: &[u8],
    signature: Option<&[u8]>,
) -> Result<Option<Signed<T>>, ErrorCode> {
    match signature {
        None => codec::from_canonical::<T>(T::FIELD, bytes, T::MAX_BYTES)
            .map(|_| None)
            .map_err(|e| e.error_code()),
        Some(sig) => {
            let signed = Signed::<T>::decode(Ok(bytes), Ok(sig)).map_err(|e| e.error_code())?;
            signed.verify().map_err(|_| ErrorCode::BadSignature)?;
            Ok(Some(signed))
        }
    }
}

fn receive(input: &Value) -> Result<(), ErrorCode> {
    let b = bytes(input, "canonical");
    let sig = input.get("signature").map(hx);
    let sig = sig.as_deref();
    match s(input, "type") {
        "Post" => match input.get("expected_post_id") {
            None => receive_signed::<Post>(&b, sig).map(drop),
            Some(expected) => {
                // As a relay receiving a SyncPost for a known id: id first,
                // then the signature.
                let post = SignedPost::decode(Ok(&b), Ok(sig.expect("signature")))
                    .map_err(|e| e.error_code())?;
                let sync = SyncPost {
                    post,
                    visibility: PostVisibility::Public,
                    header: None,
                    visibility_signature: None,
                    visibility_update: None,
                };
                sync.validate(Some(PostId(id32(expected))))
                    .map(drop)
                    .map_err(|e| e.error_code())
            }
        },
        "PostBody" => codec::from_canonical::<PostBody>("body", &b, MAX_POST_BYTES)
            .map(drop)
            .map_err(|e| e.error_code()),
        "PostHeader" => receive_signed::<PostHeader>(&b, sig).map(drop),
        "CommentBody" => receive_signed::<CommentBody>(&b, sig).map(drop),
        "DeleteRecordBody" => receive_signed::<DeleteRecordBody>(&b, sig).map(drop),
        "VisibilityUpdateBody" => receive_signed::<VisibilityUpdateBody>(&b, sig).map(drop),
        "AuthorRecentPosts" => receive_signed::<AuthorRecentPosts>(&b, sig).map(drop),
        "HeartBody" => receive_signed::<HeartBody>(&b, sig).map(drop),
        "PublicProfile" => receive_signed::<PublicProfile>(&b, sig).map(drop),
        "GroupKeyWrapBody" => receive_signed::<GroupKeyWrapBody>(&b, sig).map(drop),
        "VouchGrantBody" => receive_signed::<VouchGrantBody>(&b, sig).map(drop),
        "AudienceRequestBody" => receive_signed::<AudienceRequestBody>(&b, sig).map(drop),
        "AudienceResponseBody" => receive_signed::<AudienceResponseBody>(&b, sig).map(drop),
        "PostVisibility" => {
            let vis =
                codec::from_canonical::<PostVisibility>("visibility", &b, MAX_VISIBILITY_BYTES)
                    .map_err(|e| e.error_code())?;
            if let Some(sig) = sig {
                let sig: [u8; 64] = sig.try_into().map_err(|_| ErrorCode::Malformed)?;
                vis.verify_for(
                    &PostId(arr(input, "post_id")),
                    &PostingId(arr(input, "public_key")),
                    &sig,
                )
                .map_err(|_| ErrorCode::BadSignature)?;
            }
            Ok(())
        }
        "IdentityBundle" => IdentityBundle::from_canonical(&b)
            .map(drop)
            .map_err(|e| e.error_code()),
        "KdfParams" => codec::from_canonical::<KdfParams>("kdfParams", &b, cap("KdfParams"))
            .map(drop)
            .map_err(|e| e.error_code()),
        other => panic!("unknown type {other}"),
    }
}

#[test]
fn every_canonical_record() {
    let file = load();
    assert_eq!(file["file"], "canonical.json");
    let records = file["records"].as_array().unwrap();
    let mut checked = 0;
    let (mut valid, mut invalid) = (0, 0);
    let mut types = std::collections::BTreeSet::new();
    for r in records {
        let id = s(r, "id");
        types.insert(s(&r["input"], "type").to_owned());
        if r["valid"].as_bool().unwrap() {
            check_valid(id, r);
            valid += 1;
        } else {
            let got = receive(&r["input"]).err();
            let want = s(&r["expected"], "error");
            assert_eq!(
                got.map(ErrorCode::name),
                Some(want),
                "{id}: expected {want}"
            );
            invalid += 1;
        }
        checked += 1;
    }
    assert_eq!(checked, records.len());
    assert!(valid >= 45, "{valid} valid records");
    assert!(invalid >= 12, "{invalid} invalid records");
    // Every signed or hashed type has records.
    for (ty, _) in CAPS {
        assert!(types.contains(*ty), "no record for {ty}");
    }
}

/// The error names used by the file are wire `ErrorCode` names.
#[test]
fn errors_are_error_codes() {
    let file = load();
    for r in file["records"].as_array().unwrap() {
        if let Some(e) = r["expected"].get("error") {
            assert!(ErrorCode::from_name(e.as_str().unwrap()).is_some(), "{e}");
        }
    }
}
