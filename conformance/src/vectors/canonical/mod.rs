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

use std::collections::BTreeMap;
use std::fmt::Debug;

use ed25519_dalek::Signer;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

use distsoc_protocol::codec::{self, Struct};
use distsoc_protocol::envelope::{Cek, WrappedKey};
use distsoc_protocol::fof;
use distsoc_protocol::ids::{BlobId, CommentHash, NodeId, PostId, PostingId};
use distsoc_protocol::messages::common::VisibilityHint;
use distsoc_protocol::messages::content::{
    seal_post, Attachment, AuthorRecentPosts, CommentBody, CommentPolicy, DeleteRecordBody,
    EncryptedVisibility, HeartBody, Post, PostBody, PostContent, PostHeader, PostVisibility,
    RecentPost, SealedBody, VisibilityUpdateBody, MAX_POST_BYTES,
};
use distsoc_protocol::messages::identity::{
    GroupKey, GroupKeyWrapBody, IdentityBundle, Kdf, KdfParams, PostingIdentity, PublicProfile,
    VouchGrantBody, VouchKey, MAX_BUNDLE_BYTES,
};
use distsoc_protocol::messages::signed::SignedBody;
use distsoc_protocol::messages::social::{
    AudienceDecision, AudienceRequestBody, AudienceResponseBody,
};
use distsoc_protocol::sign::{Purpose, SigningKey};

use super::{Record, VectorFile, FORMAT_VERSION};

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
// Struct layouts, as the schema compiler assigns them (see schema/*.capnp).

/// Where and how one schema field is stored.
#[derive(Clone, Copy)]
enum F {
    /// `UInt16` at a byte offset of the data section.
    U16(usize),
    /// `UInt32` at a byte offset.
    U32(usize),
    /// `UInt64` at a byte offset.
    U64(usize),
    /// `Bool` at a bit offset.
    Bool(usize),
    /// An enum (`UInt16` at a byte offset) and its enumerant names in order.
    Enum(usize, &'static [&'static str]),
    /// `Data` at a pointer index.
    Data(usize),
    /// `Text` at a pointer index (UTF-8 plus a NUL byte).
    Text(usize),
    /// A struct at a pointer index.
    Struct(usize, &'static L),
    /// `List(Struct)` at a pointer index.
    Structs(usize, &'static L),
    /// `List(Data)` at a pointer index.
    DataList(usize),
    /// A named union group sharing the enclosing struct's sections.
    Group(&'static [(&'static str, F)]),
    /// A `Void` union arm: discriminant byte offset and value.
    ArmVoid(usize, u16),
    /// A struct union arm: discriminant byte offset, value, pointer index.
    ArmStruct(usize, u16, usize, &'static L),
}

/// A struct layout: data words, pointer count and fields by schema name.
struct L {
    data: usize,
    ptrs: usize,
    fields: &'static [(&'static str, F)],
}

static ATTACHMENT: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("blobId", F::Data(0)),
        ("mimeType", F::Text(1)),
        ("sizeBytes", F::U32(0)),
        ("name", F::Text(2)),
    ],
};
static POST_BODY: L = L {
    data: 0,
    ptrs: 2,
    fields: &[
        ("text", F::Text(0)),
        ("attachments", F::Structs(1, &ATTACHMENT)),
    ],
};
static SEALED_BODY: L = L {
    data: 0,
    ptrs: 2,
    fields: &[("nonce", F::Data(0)), ("ciphertext", F::Data(1))],
};
static POST: L = L {
    data: 2,
    ptrs: 4,
    fields: &[
        ("author", F::Data(0)),
        ("createdAtMs", F::U64(0)),
        (
            "content",
            F::Group(&[
                ("plain", F::ArmStruct(8, 0, 1, &POST_BODY)),
                ("sealed", F::ArmStruct(8, 1, 1, &SEALED_BODY)),
            ]),
        ),
        ("replyTo", F::Data(2)),
        ("replaces", F::Data(3)),
    ],
};
static WRAPPED_KEY: L = L {
    data: 0,
    ptrs: 2,
    fields: &[("recipient", F::Data(0)), ("wrapped", F::Data(1))],
};
static ENCRYPTED_VISIBILITY: L = L {
    data: 0,
    ptrs: 2,
    fields: &[
        ("ephemeralKey", F::Data(0)),
        ("recipients", F::Structs(1, &WRAPPED_KEY)),
    ],
};
static POST_VISIBILITY: L = L {
    data: 1,
    ptrs: 1,
    fields: &[
        ("public", F::ArmVoid(0, 0)),
        ("encrypted", F::ArmStruct(0, 1, 0, &ENCRYPTED_VISIBILITY)),
    ],
};
static WRAP_SLOT: L = L {
    data: 0,
    ptrs: 2,
    fields: &[("tag", F::Data(0)), ("sealed", F::Data(1))],
};
const COMMENT_POLICIES: &[&str] = &["public", "followersOnly", "none", "friendsOfFriends"];
static POST_HEADER: L = L {
    data: 2,
    ptrs: 4,
    fields: &[
        ("postId", F::Data(0)),
        ("author", F::Data(1)),
        ("commentPolicy", F::Enum(0, COMMENT_POLICIES)),
        ("pubPost", F::Data(2)),
        ("wrapSlots", F::Structs(3, &WRAP_SLOT)),
        ("updatedAtMs", F::U64(8)),
    ],
};
static COMMENT_BODY: L = L {
    data: 1,
    ptrs: 4,
    fields: &[
        ("parentPostId", F::Data(0)),
        ("author", F::Data(1)),
        ("createdAtMs", F::U64(0)),
        ("text", F::Text(2)),
        ("replyTo", F::Data(3)),
    ],
};
static DELETE_RECORD_BODY: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("postId", F::Data(0)),
        ("author", F::Data(1)),
        ("deletedAtMs", F::U64(0)),
        ("replacedBy", F::Data(2)),
    ],
};
static VISIBILITY_UPDATE_BODY: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("postId", F::Data(0)),
        ("author", F::Data(1)),
        ("visibility", F::Struct(2, &POST_VISIBILITY)),
        ("updatedAtMs", F::U64(0)),
    ],
};
const HINTS: &[&str] = &["public", "encrypted"];
static RECENT_POST: L = L {
    data: 2,
    ptrs: 1,
    fields: &[
        ("postId", F::Data(0)),
        ("createdAtMs", F::U64(0)),
        ("hint", F::Enum(8, HINTS)),
    ],
};
static AUTHOR_RECENT_POSTS: L = L {
    data: 2,
    ptrs: 2,
    fields: &[
        ("author", F::Data(0)),
        ("seq", F::U64(0)),
        ("updatedAtMs", F::U64(8)),
        ("posts", F::Structs(1, &RECENT_POST)),
    ],
};
static HEART_BODY: L = L {
    data: 1,
    ptrs: 2,
    fields: &[
        ("postId", F::Data(0)),
        ("reactor", F::Data(1)),
        ("createdAtMs", F::U64(0)),
    ],
};
static PUBLIC_PROFILE: L = L {
    data: 1,
    ptrs: 6,
    fields: &[
        ("postingId", F::Data(0)),
        ("displayName", F::Text(1)),
        ("bio", F::Text(2)),
        ("anchors", F::DataList(3)),
        ("avatar", F::Data(4)),
        ("updatedAtMs", F::U64(0)),
        ("networkId", F::Data(5)),
    ],
};
static POSTING_IDENTITY: L = L {
    data: 2,
    ptrs: 3,
    fields: &[
        ("postingId", F::Data(0)),
        ("secretSeed", F::Data(1)),
        ("displayName", F::Text(2)),
        ("createdAtMs", F::U64(0)),
        ("ephemeral", F::Bool(64)),
    ],
};
static GROUP_KEY: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("groupId", F::Data(0)),
        ("secretSeed", F::Data(1)),
        ("epoch", F::U32(0)),
        ("name", F::Text(2)),
    ],
};
static GROUP_KEY_WRAP_BODY: L = L {
    data: 2,
    ptrs: 5,
    fields: &[
        ("groupId", F::Data(0)),
        ("epoch", F::U32(0)),
        ("admin", F::Data(1)),
        ("ephemeralKey", F::Data(2)),
        ("members", F::DataList(3)),
        ("wraps", F::Structs(4, &WRAPPED_KEY)),
        ("createdAtMs", F::U64(8)),
    ],
};
static VOUCH_KEY: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("key", F::Data(0)),
        ("grantor", F::Data(1)),
        ("grantee", F::Data(2)),
        ("createdAtMs", F::U64(0)),
    ],
};
static VOUCH_GRANT_BODY: L = L {
    data: 1,
    ptrs: 4,
    fields: &[
        ("grantor", F::Data(0)),
        ("grantee", F::Data(1)),
        ("ephemeralKey", F::Data(2)),
        ("sealedKey", F::Data(3)),
        ("createdAtMs", F::U64(0)),
    ],
};
static IDENTITY_BUNDLE: L = L {
    data: 2,
    ptrs: 5,
    fields: &[
        ("version", F::U16(0)),
        ("networkSeed", F::Data(0)),
        ("postingIdentities", F::Structs(1, &POSTING_IDENTITY)),
        ("defaultPostingId", F::Data(2)),
        ("vouchKeys", F::Structs(3, &VOUCH_KEY)),
        ("groupKeys", F::Structs(4, &GROUP_KEY)),
        ("createdAtMs", F::U64(8)),
    ],
};
static KDF_PARAMS: L = L {
    data: 2,
    ptrs: 1,
    fields: &[
        ("kdf", F::Enum(0, &["argon2id"])),
        ("memoryKib", F::U32(4)),
        ("iterations", F::U32(8)),
        ("parallelism", F::U32(12)),
        ("salt", F::Data(0)),
    ],
};
static AUDIENCE_REQUEST_BODY: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("requester", F::Data(0)),
        ("author", F::Data(1)),
        ("message", F::Text(2)),
        ("createdAtMs", F::U64(0)),
    ],
};
static AUDIENCE_RESPONSE_BODY: L = L {
    data: 2,
    ptrs: 2,
    fields: &[
        ("author", F::Data(0)),
        ("requester", F::Data(1)),
        ("decision", F::Enum(0, &["approved", "denied", "revoked"])),
        ("decidedAtMs", F::U64(8)),
    ],
};

fn layout(ty: &str) -> &'static L {
    match ty {
        "Post" => &POST,
        "PostBody" => &POST_BODY,
        "PostHeader" => &POST_HEADER,
        "CommentBody" => &COMMENT_BODY,
        "DeleteRecordBody" => &DELETE_RECORD_BODY,
        "VisibilityUpdateBody" => &VISIBILITY_UPDATE_BODY,
        "PostVisibility" => &POST_VISIBILITY,
        "AuthorRecentPosts" => &AUTHOR_RECENT_POSTS,
        "HeartBody" => &HEART_BODY,
        "PublicProfile" => &PUBLIC_PROFILE,
        "GroupKeyWrapBody" => &GROUP_KEY_WRAP_BODY,
        "VouchGrantBody" => &VOUCH_GRANT_BODY,
        "AudienceRequestBody" => &AUDIENCE_REQUEST_BODY,
        "AudienceResponseBody" => &AUDIENCE_RESPONSE_BODY,
        "IdentityBundle" => &IDENTITY_BUNDLE,
        "KdfParams" => &KDF_PARAMS,
        other => panic!("no layout for {other}"),
    }
}

// ---------------------------------------------------------------------------
// JSON form -> object tree -> canonical words.

/// A Cap'n Proto object, before layout.
#[derive(Clone, Debug)]
enum Obj {
    /// The null pointer.
    Null,
    /// A struct.
    Struct(St),
    /// A byte list (`Data`, or `Text` with its NUL).
    Bytes(Vec<u8>),
    /// A list of pointers (`List(Data)`).
    Ptrs(Vec<Obj>),
    /// A list of structs (inline composite).
    Structs(Vec<St>),
}

/// A struct's sections at their schema size (truncated when encoded).
#[derive(Clone, Debug)]
struct St {
    data: Vec<u8>,
    ptrs: Vec<Obj>,
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn tree(l: &L, v: &Value) -> St {
    let mut st = St {
        data: vec![0; l.data * 8],
        ptrs: vec![Obj::Null; l.ptrs],
    };
    set_fields(&mut st, l.fields, v);
    st
}

fn set_fields(st: &mut St, fields: &[(&str, F)], v: &Value) {
    for (key, value) in v.as_object().expect("a JSON object") {
        let (_, f) = fields
            .iter()
            .find(|(name, _)| name == key)
            .unwrap_or_else(|| panic!("unknown field {key}"));
        set(st, *f, value);
    }
}

fn put_u(st: &mut St, at: usize, value: u64, len: usize) {
    assert!(len == 8 || value < 1 << (8 * len), "{value} does not fit");
    st.data[at..at + len].copy_from_slice(&value.to_le_bytes()[..len]);
}

fn num(v: &Value) -> u64 {
    v.as_u64().expect("a JSON number")
}

fn set(st: &mut St, f: F, v: &Value) {
    match f {
        F::U16(at) => put_u(st, at, num(v), 2),
        F::U32(at) => put_u(st, at, num(v), 4),
        F::U64(at) => put_u(st, at, num(v), 8),
        F::Bool(bit) => {
            if v.as_bool().expect("a JSON boolean") {
                st.data[bit / 8] |= 1 << (bit % 8);
            }
        }
        F::Enum(at, names) => {
            let name = v.as_str().expect("an enumerant name");
            let index = names
                .iter()
                .position(|n| *n == name)
                .unwrap_or_else(|| panic!("unknown enumerant {name}"));
            put_u(st, at, index as u64, 2);
        }
        F::Data(p) => st.ptrs[p] = Obj::Bytes(unhex(v)),
        F::Text(p) => {
            let mut b = v.as_str().expect("a JSON string").as_bytes().to_vec();
            b.push(0);
            st.ptrs[p] = Obj::Bytes(b);
        }
        F::Struct(p, l) => st.ptrs[p] = obj_of(l, v),
        F::Structs(p, l) => {
            let items = v.as_array().expect("a JSON array");
            st.ptrs[p] = Obj::Structs(items.iter().map(|i| tree(l, i)).collect());
        }
        F::DataList(p) => {
            let items = v.as_array().expect("a JSON array");
            st.ptrs[p] = Obj::Ptrs(items.iter().map(|i| Obj::Bytes(unhex(i))).collect());
        }
        F::Group(fields) => set_fields(st, fields, v),
        F::ArmVoid(at, d) => {
            assert!(v.is_null(), "a Void arm's value is null");
            put_u(st, at, u64::from(d), 2);
        }
        F::ArmStruct(at, d, p, l) => {
            put_u(st, at, u64::from(d), 2);
            st.ptrs[p] = obj_of(l, v);
        }
    }
}

/// A struct value; JSON `null` is the null pointer.
fn obj_of(l: &L, v: &Value) -> Obj {
    if v.is_null() {
        Obj::Null
    } else {
        Obj::Struct(tree(l, v))
    }
}

/// Rules of the canonical form that can be broken on purpose (all off = the
/// canonical encoding).
#[derive(Clone, Copy, Default)]
struct Knobs {
    /// Zero words kept after the root struct's truncated data section.
    root_extra_data: usize,
    /// Null pointers kept after the root struct's truncated pointer section.
    root_extra_ptrs: usize,
    /// Lay out the root's children last pointer first (not pre-order).
    root_reverse: bool,
    /// Minimum element size (data words, pointers) of struct lists.
    list_size: Option<(usize, usize)>,
}

/// Struct pointer (or list tag: `offset` = element count).
fn sp(offset: i64, data: usize, ptrs: usize) -> u64 {
    u64::from((offset as u32) << 2) | ((data as u64) << 32) | ((ptrs as u64) << 48)
}

/// List pointer: element size tag (2 byte, 6 pointer, 7 inline composite).
fn lp(offset: i64, size: u8, count: usize) -> u64 {
    (u64::from((offset as u32) << 2) | 1) | (u64::from(size) << 32) | ((count as u64) << 35)
}

/// Far pointer: landing pad position, segment id.
fn fp(pad: usize, segment: u32) -> u64 {
    ((pad as u64) << 3) | 2 | (u64::from(segment) << 32)
}

fn data_words(st: &St) -> usize {
    st.data
        .chunks(8)
        .rposition(|w| w.iter().any(|b| *b != 0))
        .map_or(0, |i| i + 1)
}

fn ptr_count(st: &St) -> usize {
    st.ptrs
        .iter()
        .rposition(|o| !matches!(o, Obj::Null))
        .map_or(0, |i| i + 1)
}

fn off(target: usize, at: usize) -> i64 {
    target as i64 - at as i64 - 1
}

/// The canonical encoder: one segment, root pointer first, objects allocated
/// in pre-order as they are reached, sections truncated.
struct Enc {
    w: Vec<u64>,
    k: Knobs,
}

impl Enc {
    fn alloc(&mut self, n: usize) -> usize {
        let start = self.w.len();
        self.w.resize(start + n, 0);
        start
    }

    fn put(&mut self, at: usize, o: &Obj, root: bool) {
        match o {
            Obj::Null => self.w[at] = 0,
            Obj::Struct(st) => {
                let (mut d, mut p, mut reverse) = (data_words(st), ptr_count(st), false);
                if root {
                    d += self.k.root_extra_data;
                    p += self.k.root_extra_ptrs;
                    reverse = self.k.root_reverse;
                }
                if d == 0 && p == 0 {
                    // A zero-sized struct points just before itself.
                    self.w[at] = sp(-1, 0, 0);
                    return;
                }
                let s = self.alloc(d + p);
                self.w[at] = sp(off(s, at), d, p);
                self.data(s, st, d);
                self.ptrs(s + d, st, p, reverse);
            }
            Obj::Bytes(b) => {
                let s = self.alloc(b.len().div_ceil(8));
                self.w[at] = lp(off(s, at), 2, b.len());
                for (i, chunk) in b.chunks(8).enumerate() {
                    let mut word = [0u8; 8];
                    word[..chunk.len()].copy_from_slice(chunk);
                    self.w[s + i] = u64::from_le_bytes(word);
                }
            }
            Obj::Ptrs(items) => {
                let s = self.alloc(items.len());
                self.w[at] = lp(off(s, at), 6, items.len());
                for (i, item) in items.iter().enumerate() {
                    self.put(s + i, item, false);
                }
            }
            Obj::Structs(items) => {
                // Every element has the size of the largest truncated element.
                let mut d = items.iter().map(data_words).max().unwrap_or(0);
                let mut p = items.iter().map(ptr_count).max().unwrap_or(0);
                if let Some((kd, kp)) = self.k.list_size {
                    (d, p) = (d.max(kd), p.max(kp));
                }
                let n = items.len();
                let s = self.alloc(1 + n * (d + p));
                self.w[at] = lp(off(s, at), 7, n * (d + p));
                self.w[s] = sp(n as i64, d, p);
                for (i, item) in items.iter().enumerate() {
                    self.data(s + 1 + i * (d + p), item, d);
                }
                for (i, item) in items.iter().enumerate() {
                    self.ptrs(s + 1 + i * (d + p) + d, item, p, false);
                }
            }
        }
    }

    fn data(&mut self, at: usize, st: &St, d: usize) {
        for i in 0..d {
            let mut word = [0u8; 8];
            if let Some(bytes) = st.data.get(i * 8..i * 8 + 8) {
                word.copy_from_slice(bytes);
            }
            self.w[at + i] = u64::from_le_bytes(word);
        }
    }

    fn ptrs(&mut self, at: usize, st: &St, p: usize, reverse: bool) {
        let order: Vec<usize> = if reverse {
            (0..p).rev().collect()
        } else {
            (0..p).collect()
        };
        for j in order {
            match st.ptrs.get(j) {
                Some(o) => self.put(at + j, o, false),
                None => self.w[at + j] = 0,
            }
        }
    }
}

fn words_to_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn encode_obj(root: &Obj, k: Knobs) -> Vec<u8> {
    let mut e = Enc { w: vec![0], k };
    e.put(0, root, true);
    words_to_bytes(&e.w)
}

/// Encodes `value` (JSON form) of schema struct `ty`, with `k`'s rules broken.
fn encode_with(ty: &str, value: &Value, k: Knobs) -> Vec<u8> {
    encode_obj(&obj_of(layout(ty), value), k)
}

/// The canonical bytes of `value` (JSON form) of schema struct `ty`.
fn encode(ty: &str, value: &Value) -> Vec<u8> {
    encode_with(ty, value, Knobs::default())
}

// ---------------------------------------------------------------------------
// Domain values -> JSON form (every Text and List field present, as
// distsoc-protocol writes them; optional Data fields only when set).

fn h(bytes: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(bytes))
}

fn hex_list<T: AsRef<[u8]>>(items: &[T]) -> Value {
    Value::Array(items.iter().map(h).collect())
}

fn attachment_json(a: &Attachment) -> Value {
    let mut v = json!({
        "blobId": h(a.blob_id.0),
        "mimeType": a.mime_type,
        "sizeBytes": a.size_bytes,
    });
    if let Some(name) = &a.name {
        v["name"] = json!(name);
    }
    v
}

fn post_body_json(b: &PostBody) -> Value {
    json!({
        "text": b.text,
        "attachments": b.attachments.iter().map(attachment_json).collect::<Vec<_>>(),
    })
}

fn post_json(p: &Post) -> Value {
    let content = match &p.content {
        PostContent::Plain(body) => json!({ "plain": post_body_json(body) }),
        PostContent::Sealed(s) => json!({
            "sealed": { "nonce": h(s.nonce), "ciphertext": h(&s.ciphertext) }
        }),
    };
    let mut v = json!({
        "author": h(p.author.0),
        "createdAtMs": p.created_at_ms,
        "content": content,
    });
    if let Some(id) = &p.reply_to {
        v["replyTo"] = h(id.0);
    }
    if let Some(id) = &p.replaces {
        v["replaces"] = h(id.0);
    }
    v
}

fn wrapped_json(keys: &[WrappedKey]) -> Value {
    Value::Array(
        keys.iter()
            .map(|w| json!({ "recipient": h(w.recipient), "wrapped": h(w.wrapped) }))
            .collect(),
    )
}

fn visibility_json(v: &PostVisibility) -> Value {
    match v {
        PostVisibility::Public => json!({ "public": null }),
        PostVisibility::Encrypted(e) => json!({
            "encrypted": {
                "ephemeralKey": h(e.ephemeral_key),
                "recipients": wrapped_json(&e.recipients),
            }
        }),
    }
}

fn policy_name(p: CommentPolicy) -> &'static str {
    match p {
        CommentPolicy::Public => "public",
        CommentPolicy::FollowersOnly => "followersOnly",
        CommentPolicy::None => "none",
        CommentPolicy::FriendsOfFriends => "friendsOfFriends",
    }
}

fn header_json(x: &PostHeader) -> Value {
    let slots: Vec<Value> = x
        .wrap_slots
        .iter()
        .map(|s| json!({ "tag": h(s.tag), "sealed": h(s.sealed) }))
        .collect();
    let mut v = json!({
        "postId": h(x.post_id.0),
        "author": h(x.author.0),
        "commentPolicy": policy_name(x.comment_policy),
        "wrapSlots": slots,
        "updatedAtMs": x.updated_at_ms,
    });
    if let Some(p) = &x.pub_post {
        v["pubPost"] = h(p);
    }
    v
}

fn comment_json(c: &CommentBody) -> Value {
    let mut v = json!({
        "parentPostId": h(c.parent_post_id.0),
        "author": h(c.author.0),
        "createdAtMs": c.created_at_ms,
        "text": c.text,
    });
    if let Some(r) = &c.reply_to {
        v["replyTo"] = h(r.0);
    }
    v
}

fn delete_json(d: &DeleteRecordBody) -> Value {
    let mut v = json!({
        "postId": h(d.post_id.0),
        "author": h(d.author.0),
        "deletedAtMs": d.deleted_at_ms,
    });
    if let Some(r) = &d.replaced_by {
        v["replacedBy"] = h(r.0);
    }
    v
}

fn visibility_update_json(u: &VisibilityUpdateBody) -> Value {
    json!({
        "postId": h(u.post_id.0),
        "author": h(u.author.0),
        "visibility": visibility_json(&u.visibility),
        "updatedAtMs": u.updated_at_ms,
    })
}

fn hint_name(h: VisibilityHint) -> &'static str {
    match h {
        VisibilityHint::Public => "public",
        VisibilityHint::Encrypted => "encrypted",
    }
}

fn recent_json(r: &AuthorRecentPosts) -> Value {
    let posts: Vec<Value> = r
        .posts
        .iter()
        .map(|p| {
            json!({
                "postId": h(p.post_id.0),
                "createdAtMs": p.created_at_ms,
                "hint": hint_name(p.hint),
            })
        })
        .collect();
    json!({
        "author": h(r.author.0),
        "seq": r.seq,
        "updatedAtMs": r.updated_at_ms,
        "posts": posts,
    })
}

fn heart_json(x: &HeartBody) -> Value {
    json!({
        "postId": h(x.post_id.0),
        "reactor": h(x.reactor.0),
        "createdAtMs": x.created_at_ms,
    })
}

fn profile_json(p: &PublicProfile) -> Value {
    let anchors: Vec<[u8; 32]> = p.anchors.iter().map(|a| a.0).collect();
    let mut v = json!({
        "postingId": h(p.posting_id.0),
        "displayName": p.display_name,
        "bio": p.bio,
        "anchors": hex_list(&anchors),
        "updatedAtMs": p.updated_at_ms,
    });
    if let Some(a) = &p.avatar {
        v["avatar"] = h(a.0);
    }
    if let Some(n) = &p.network_id {
        v["networkId"] = h(n.0);
    }
    v
}

fn group_key_wrap_json(g: &GroupKeyWrapBody) -> Value {
    let members: Vec<[u8; 32]> = g.members.iter().map(|m| m.0).collect();
    json!({
        "groupId": h(g.group_id.0),
        "epoch": g.epoch,
        "admin": h(g.admin.0),
        "ephemeralKey": h(g.ephemeral_key),
        "members": hex_list(&members),
        "wraps": wrapped_json(&g.wraps),
        "createdAtMs": g.created_at_ms,
    })
}

fn vouch_grant_json(g: &VouchGrantBody) -> Value {
    json!({
        "grantor": h(g.grantor.0),
        "grantee": h(g.grantee.0),
        "ephemeralKey": h(g.ephemeral_key),
        "sealedKey": h(g.sealed_key),
        "createdAtMs": g.created_at_ms,
    })
}

fn audience_request_json(a: &AudienceRequestBody) -> Value {
    json!({
        "requester": h(a.requester.0),
        "author": h(a.author.0),
        "message": a.message,
        "createdAtMs": a.created_at_ms,
    })
}

fn decision_name(d: AudienceDecision) -> &'static str {
    match d {
        AudienceDecision::Approved => "approved",
        AudienceDecision::Denied => "denied",
        AudienceDecision::Revoked => "revoked",
    }
}

fn audience_response_json(a: &AudienceResponseBody) -> Value {
    json!({
        "author": h(a.author.0),
        "requester": h(a.requester.0),
        "decision": decision_name(a.decision),
        "decidedAtMs": a.decided_at_ms,
    })
}

fn bundle_json(b: &IdentityBundle) -> Value {
    let identities: Vec<Value> = b
        .posting_identities
        .iter()
        .map(|p| {
            json!({
                "postingId": h(p.posting_id.0),
                "secretSeed": h(*p.secret_seed),
                "displayName": p.display_name,
                "createdAtMs": p.created_at_ms,
                "ephemeral": p.ephemeral,
            })
        })
        .collect();
    let vouch_keys: Vec<Value> = b
        .vouch_keys
        .iter()
        .map(|k| {
            let mut v = json!({
                "key": h(k.key.as_bytes()),
                "grantor": h(k.grantor.0),
                "createdAtMs": k.created_at_ms,
            });
            if let Some(g) = &k.grantee {
                v["grantee"] = h(g.0);
            }
            v
        })
        .collect();
    let group_keys: Vec<Value> = b
        .group_keys
        .iter()
        .map(|g| {
            json!({
                "groupId": h(g.group_id.0),
                "secretSeed": h(*g.secret_seed),
                "epoch": g.epoch,
                "name": g.name,
            })
        })
        .collect();
    json!({
        "version": b.version,
        "networkSeed": h(*b.network_seed),
        "postingIdentities": identities,
        "defaultPostingId": h(b.default_posting_id.0),
        "vouchKeys": vouch_keys,
        "groupKeys": group_keys,
        "createdAtMs": b.created_at_ms,
    })
}

fn kdf_json(k: &KdfParams) -> Value {
    json!({
        "kdf": match k.kdf { Kdf::Argon2id => "argon2id" },
        "memoryKib": k.memory_kib,
        "iterations": k.iterations,
        "parallelism": k.parallelism,
        "salt": h(k.salt),
    })
}

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

/// Ed25519 (ed25519-dalek, not distsoc-protocol) over the domain-separated
/// input `"distsoc/2/" || purpose || 0x00 || message`.
fn dalek_sign(seed: &[u8; 32], purpose: Purpose, message: &[u8]) -> [u8; 64] {
    let mut input = b"distsoc/2/".to_vec();
    input.extend_from_slice(purpose.as_str().as_bytes());
    input.push(0);
    input.extend_from_slice(message);
    ed25519_dalek::SigningKey::from_bytes(seed)
        .sign(&input)
        .to_bytes()
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
    let minimal_bundle = IdentityBundle::new(SigningKey::from_seed(&NETWORK).seed(), T0 + 122);
    g.value(
        Valid::new(
            "identity-bundle-minimal",
            "The smallest bundle: only the network seed; defaultPostingId is the network key's public key; the three lists are set and empty (zero-length struct lists, tag words only).",
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

#[allow(clippy::too_many_arguments)]
fn reject_records(
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
