//! The types `inspect` knows: every top-level message (by code) and every
//! struct the product stores or signs as canonical bytes, each with its
//! schema (for the tree), its size cap and the receiver's checks.

use capnp::any_pointer;
use capnp::dynamic_value;
use capnp::message::Reader;
use capnp::serialize::{OwnedSegments, SegmentLengthsBuilder};
use capnp::traits::Owned;
use distsoc_protocol::codec::{self, Struct};
use distsoc_protocol::error::WireCode;
use distsoc_protocol::ids::PostId;
use distsoc_protocol::limits::{
    reader_options, MAX_MAILBOX_PAYLOAD_BYTES, MAX_VISIBILITY_BYTES, WORD_BYTES,
};
use distsoc_protocol::messages::content::{
    AuthorRecentPosts, CommentBody, DeleteRecordBody, HeartBody, Post, PostBody, PostHeader,
    PostVisibility, SyncPost, VisibilityUpdateBody, MAX_POST_BYTES,
};
use distsoc_protocol::messages::discovery::{
    AddressRequest, AddressResponse, BootstrapRequest, BootstrapResponse, InitialMapSync,
    MapSyncRequest, RoutingDiff, WormQuery, WormRequest, WormResponse,
};
use distsoc_protocol::messages::files::{
    AuthorUpdatePush, AuthorUpdateRequest, AuthorUpdateResponse, BlobHeaderDiff, FileRequest,
    FileResponse, ManifestPush, PostNotification,
};
use distsoc_protocol::messages::identity::{
    EncryptedIdentityBundle, GroupKeyWrapBody, IdentityBundle, KdfParams, PublicProfile,
    VouchGrantBody, MAX_BUNDLE_FILE_BYTES,
};
use distsoc_protocol::messages::mailbox::{
    CreateChannel, CreateChannelResponse, Enqueue, EnqueueResponse, Fetch, FetchResponse,
    FetchWait, FetchWaitResponse, ListChannels, ListChannelsResponse,
};
use distsoc_protocol::messages::signed::SignedBody;
use distsoc_protocol::messages::social::{
    AudienceRequest, AudienceRequestBody, AudienceResponse, AudienceResponseBody, Comment,
    DeleteRecord, ProfileUpdate, PullSyncRequest, PullSyncResponse, PushPost, VisibilityUpdate,
    VouchGrant,
};
use distsoc_protocol::messages::wire::{Ack, Error, Hello, HelloResponse};

use super::tree::{self, Inner, Node};

/// What a check concludes: a note on success, the wire error and reason on
/// failure.
pub(crate) type Verdict = Result<String, String>;

/// One type `inspect` can decode.
pub(crate) struct Ty {
    /// The schema name (`Post`, `SyncPost`, `Hello`, ...).
    pub(crate) name: &'static str,
    /// Where the product keeps or sends bytes of this type.
    pub(crate) what: &'static str,
    /// Whether auto-detection tries it on bytes without a frame header.
    pub(crate) stored: bool,
    /// The tree of a root pointer read as this type.
    pub(crate) tree: fn(any_pointer::Reader<'_>) -> Node,
    /// The receiver's checks on canonical bytes of this type.
    pub(crate) check: fn(&[u8]) -> Verdict,
}

fn tree_as<O: Owned>(root: any_pointer::Reader<'_>) -> Node
where
    for<'a> O::Reader<'a>: Into<dynamic_value::Reader<'a>>,
{
    match root.get_as::<O::Reader<'_>>() {
        Ok(r) => tree::read(r.into(), nest),
        Err(e) => Node::Unreadable(format!("the root is not a {}: {e}", short::<O>())),
    }
}

fn short<O>() -> &'static str {
    let full = std::any::type_name::<O>();
    full.rsplit("::").nth(1).unwrap_or(full)
}

fn reason(e: &impl WireCode, text: impl std::fmt::Display) -> String {
    format!("{}: {text}", e.error_code())
}

/// Canonical decode and field rules of `T` within `max` bytes.
fn canonical<T: Struct>(field: &'static str, b: &[u8], max: usize) -> Result<T, String> {
    codec::from_canonical::<T>(field, b, max).map_err(|e| reason(&e, &e))
}

fn signed_body<T: SignedBody>(b: &[u8]) -> Verdict {
    canonical::<T>(T::FIELD, b, T::MAX_BYTES).map(|v| {
        format!(
            "canonical, fields valid; signer {} (the signature travels beside these bytes)",
            v.signer()
        )
    })
}

fn check_post(b: &[u8]) -> Verdict {
    canonical::<Post>("post", b, MAX_POST_BYTES)
        .map(|p| format!("PostId {} by {}", PostId::of_canonical(b), p.signer()))
}

fn check_sync_post(b: &[u8]) -> Verdict {
    let s = canonical::<SyncPost>("syncPost", b, MAX_MAILBOX_PAYLOAD_BYTES)?;
    match s.validate(None) {
        Ok(id) => Ok(format!("post {id}, every signature verifies")),
        Err(e) => Err(reason(&e, &e)),
    }
}

fn check_post_body(b: &[u8]) -> Verdict {
    canonical::<PostBody>("body", b, MAX_POST_BYTES).map(|_| "canonical, fields valid".into())
}

fn check_visibility(b: &[u8]) -> Verdict {
    canonical::<PostVisibility>("visibility", b, MAX_VISIBILITY_BYTES)
        .map(|_| "canonical, fields valid".into())
}

fn check_identity_bundle(b: &[u8]) -> Verdict {
    IdentityBundle::from_canonical(b)
        .map(|bundle| {
            format!(
                "canonical, fields valid; NodeId {} (this is secret key material)",
                bundle.node_id()
            )
        })
        .map_err(|e| reason(&e, &e))
}

fn check_kdf(b: &[u8]) -> Verdict {
    canonical::<KdfParams>("kdfParams", b, 4096).map(|_| "canonical, fields valid".into())
}

fn check_encrypted_bundle(b: &[u8]) -> Verdict {
    canonical::<EncryptedIdentityBundle>("bundle", b, MAX_BUNDLE_FILE_BYTES)
        .map(|_| "canonical, fields valid (open it with distsoc-node import)".into())
}

/// Checks the bytes of an identity bundle file (standard stream framing,
/// no code byte), as `distsoc-node import` reads it.
pub(crate) fn check_bundle_file(b: &[u8]) -> Verdict {
    EncryptedIdentityBundle::from_file_bytes(b)
        .map(|_| "an identity bundle file (open it with distsoc-node import)".into())
        .map_err(|e| reason(&e, &e))
}

macro_rules! messages {
    ($($ty:ident,)*) => {
        /// Every top-level message: `--as NAME` reads canonical bytes of
        /// its root struct; frames find theirs by code.
        const MESSAGES: &[Ty] = &[
            $(Ty {
                name: stringify!($ty),
                what: "a wire message (normally inside a frame)",
                stored: false,
                tree: tree_as::<<$ty as Struct>::Schema>,
                check: |b| {
                    canonical::<$ty>(stringify!($ty), b, usize::MAX / 2)
                        .map(|_| "canonical, fields valid".into())
                },
            },)*
        ];
    };
}

messages! {
    Hello, RoutingDiff, InitialMapSync, BootstrapRequest, BootstrapResponse, HelloResponse,
    MapSyncRequest, WormRequest, WormQuery, WormResponse, AddressRequest, AddressResponse,
    FileRequest, FileResponse, AuthorUpdateRequest, AuthorUpdateResponse, AuthorUpdatePush,
    PostNotification, ManifestPush, BlobHeaderDiff, PullSyncRequest, PullSyncResponse, PushPost,
    AudienceRequest, AudienceResponse, ProfileUpdate, DeleteRecord, VisibilityUpdate, VouchGrant,
    Comment, CreateChannel, CreateChannelResponse, Enqueue, EnqueueResponse, Fetch, FetchResponse,
    FetchWait, FetchWaitResponse, ListChannels, ListChannelsResponse, Ack, Error,
}

macro_rules! signed {
    ($($ty:ident: $what:literal,)*) => {
        const SIGNED: &[Ty] = &[
            $(Ty {
                name: stringify!($ty),
                what: $what,
                stored: true,
                tree: tree_as::<<$ty as Struct>::Schema>,
                check: signed_body::<$ty>,
            },)*
        ];
    };
}

signed! {
    PublicProfile: "a profile (SignedProfile.profile)",
    PostHeader: "a post header (SignedPostHeader.header)",
    CommentBody: "a comment (InlineComment.body)",
    DeleteRecordBody: "a delete record (SignedDeleteRecord.record)",
    VisibilityUpdateBody: "a visibility update (SignedVisibilityUpdate.update)",
    AuthorRecentPosts: "an author's recent posts (SignedAuthorRecentPosts.recent)",
    HeartBody: "a heart (SignedHeart.heart)",
    GroupKeyWrapBody: "a group key wrap (SignedGroupKeyWrap.wrap)",
    VouchGrantBody: "a vouch grant (SignedVouchGrant.grant)",
    AudienceRequestBody: "an audience request (AudienceRequest.request)",
    AudienceResponseBody: "an audience response (AudienceResponse.response)",
}

/// The stored and signed types, in the order auto-detection tries them.
const STORED: &[Ty] = &[
    Ty {
        name: "SyncPost",
        what: "a stored post (node and anchor stores) or a DM payload (Enqueue.payload)",
        stored: true,
        tree: tree_as::<<SyncPost as Struct>::Schema>,
        check: check_sync_post,
    },
    Ty {
        name: "Post",
        what: "a post (SignedPost.post; PostId = BLAKE3 of these bytes)",
        stored: true,
        tree: tree_as::<<Post as Struct>::Schema>,
        check: check_post,
    },
    Ty {
        name: "EncryptedIdentityBundle",
        what: "an exported identity (distsoc-node export)",
        stored: true,
        tree: tree_as::<<EncryptedIdentityBundle as Struct>::Schema>,
        check: check_encrypted_bundle,
    },
    Ty {
        name: "PostVisibility",
        what: "a post's visibility (SyncPost.visibility)",
        // Nearly any small data-only struct reads as a public visibility:
        // too weak a match to detect.
        stored: false,
        tree: tree_as::<<PostVisibility as Struct>::Schema>,
        check: check_visibility,
    },
    Ty {
        name: "PostBody",
        what: "the plaintext of a sealed post",
        stored: true,
        tree: tree_as::<<PostBody as Struct>::Schema>,
        check: check_post_body,
    },
    Ty {
        name: "IdentityBundle",
        what: "the plaintext of an identity bundle (secret keys)",
        stored: true,
        tree: tree_as::<<IdentityBundle as Struct>::Schema>,
        check: check_identity_bundle,
    },
    Ty {
        name: "KdfParams",
        what: "an identity bundle's key derivation (its AAD)",
        stored: false,
        tree: tree_as::<<KdfParams as Struct>::Schema>,
        check: check_kdf,
    },
];

/// Every known type: stored ones first, then the signed bodies, then the
/// messages.
pub(crate) fn all() -> impl Iterator<Item = &'static Ty> {
    STORED.iter().chain(SIGNED).chain(MESSAGES)
}

/// The type named `name` (case-insensitive).
pub(crate) fn by_name(name: &str) -> Option<&'static Ty> {
    all().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// A single-segment reader over `bytes` (no segment table), with the
/// protocol's reader limits but without the canonical-form check, so the
/// tree of a rejected value can still be shown.
pub(crate) fn single_segment(bytes: &[u8]) -> Option<Reader<OwnedSegments>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(WORD_BYTES) {
        return None;
    }
    let words = bytes.len() / WORD_BYTES;
    let mut lengths = SegmentLengthsBuilder::with_capacity(1);
    lengths.try_push_segment(words).ok()?;
    let mut segments = lengths.into_owned_segments();
    segments.copy_from_slice(bytes);
    Some(Reader::new(segments, reader_options(words)))
}

/// The tree of canonical bytes read as `ty` (even when the checks reject
/// them, as long as they are readable).
pub(crate) fn tree_of_canonical(ty: &Ty, bytes: &[u8]) -> Node {
    match single_segment(bytes) {
        Some(r) => match r.get_root::<any_pointer::Reader<'_>>() {
            Ok(root) => (ty.tree)(root),
            Err(e) => Node::Unreadable(e.to_string()),
        },
        None => Node::Unreadable(format!("{} bytes are not whole 8-byte words", bytes.len())),
    }
}

/// The type a `Data` field carries, by struct and field name.
fn nested(ty: &str, field: &str) -> Option<&'static str> {
    Some(match (ty, field) {
        ("SignedPost", "post") => "Post",
        ("SignedPostHeader", "header") => "PostHeader",
        ("InlineComment", "body") => "CommentBody",
        ("SignedDeleteRecord", "record") => "DeleteRecordBody",
        ("SignedVisibilityUpdate", "update") => "VisibilityUpdateBody",
        ("SignedAuthorRecentPosts", "recent") => "AuthorRecentPosts",
        ("SignedHeart", "heart") => "HeartBody",
        ("SignedProfile", "profile") => "PublicProfile",
        ("SignedGroupKeyWrap", "wrap") => "GroupKeyWrapBody",
        ("SignedVouchGrant", "grant") => "VouchGrantBody",
        ("AudienceRequest", "request") => "AudienceRequestBody",
        ("AudienceResponse", "response") => "AudienceResponseBody",
        // Opaque to the anchor; the node's DMs are canonical SyncPosts.
        ("Enqueue" | "MailboxMessage", "payload") => "SyncPost",
        _ => return None,
    })
}

/// Decodes a nested `Data` field that carries a known struct.
fn nest(ty: &str, field: &str, bytes: &[u8]) -> Option<Inner> {
    let name = nested(ty, field)?;
    let inner = by_name(name)?;
    // An opaque payload is shown decoded only when it is canonical bytes.
    if name == "SyncPost"
        && distsoc_protocol::canonical::check_canonical(bytes, MAX_MAILBOX_PAYLOAD_BYTES).is_err()
    {
        return None;
    }
    if bytes.is_empty() {
        return None;
    }
    Some(Inner {
        ty: inner.name,
        verdict: (inner.check)(bytes),
        value: tree_of_canonical(inner, bytes),
    })
}

/// The largest input `inspect` reads: the largest identity bundle file.
pub(crate) const MAX_INPUT_BYTES: usize = MAX_BUNDLE_FILE_BYTES;
