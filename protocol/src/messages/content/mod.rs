//! Domain types of `schema/content.capnp`: posts, visibility, headers,
//! comments, deletes, recent-post lists and hearts.
//!
//! Every schema struct has one validated Rust type here. Signed bodies
//! ([`Post`], [`PostHeader`], [`CommentBody`], [`DeleteRecordBody`],
//! [`VisibilityUpdateBody`], [`AuthorRecentPosts`], [`HeartBody`]) implement
//! [`SignedBody`]; their carriers are [`Signed<Body>`](Signed) ([`SignedPost`],
//! [`SignedPostHeader`], ...). `InlineComment` carries its signed body plus the
//! friend-of-friend proof ([`InlineComment`]).
//!
//! Besides decoding, this module holds the pure content semantics the node
//! calls: sealing and opening encrypted posts ([`seal_post`], [`open_post`]),
//! validating a received [`SyncPost`] ([`SyncPost::validate`]), friend-of-friend
//! comment gating ([`PostHeader::new_fof`], [`InlineComment::new`],
//! [`InlineComment::check`]) and whether a delete or visibility update applies
//! to a post ([`DeleteRecordBody::applies_to`],
//! [`VisibilityUpdateBody::applies_to`]).
//!
//! Comment gating follows filter-at-render: comments that fail the
//! friend-of-friend proof are kept and propagated as
//! [`CommentVerdict::Unverified`] and hidden when rendering; only comments that
//! are forged or forbidden outright are [`CommentVerdict::Invalid`].
//!
//! One file per reason to change: `post` (the post's wire types), `sealing`
//! (visibility, sealing and opening), `comments` (header, comment policy and
//! comment gating), `ingest` (validating a received [`SyncPost`]), `records`
//! (delete records and visibility updates), `lists` (recent-post lists and
//! hearts). This file keeps the size limits, the errors and the helpers they
//! share, and the tests of the whole module; every item is re-exported here,
//! so `messages::content::X` is the one path to use.

use super::signed::{Signed, SignedBody};
use crate::codec;
use crate::envelope::EnvelopeError;
use crate::error::{DecodeError, ErrorCode, ToWireError, WireCode};
use crate::fof::FofError;
use crate::ids::{PostId, PostingId};
use crate::limits::{MAX_BLOB_BYTES, MAX_RECENT_POSTS_BYTES, WORD_BYTES};
use crate::sign::{SignatureError, SigningKey};

pub use crate::envelope::WrappedKey;
pub use crate::fof::WrapSlot;

/// Longest `Attachment.mimeType`, bytes.
pub const MAX_MIME_TYPE_BYTES: usize = 128;
/// Longest `Attachment.name`, bytes.
pub const MAX_ATTACHMENT_NAME_BYTES: usize = 256;
/// Largest `Attachment.sizeBytes` (a blob is at most 256 KiB).
pub const MAX_ATTACHMENT_SIZE_BYTES: usize = MAX_BLOB_BYTES;
/// Longest `PostBody.text`, bytes.
pub const MAX_POST_TEXT_BYTES: usize = 65_536;
/// Most attachments of one post.
pub const MAX_ATTACHMENTS: usize = 32;
/// Most entries in one `DmArchiveChunk` (an archive post's batch).
pub const MAX_ARCHIVE_ENTRIES: usize = 1_024;
/// Most members of a DM group thread (`DmGroup.members`), the sender
/// included.
pub const MAX_DM_GROUP_MEMBERS: usize = 32;
/// Length of a DM group thread id (`DmGroup.threadId`), bytes.
pub const DM_GROUP_THREAD_ID_LEN: usize = 16;
/// Largest canonical `Post` (`SignedPost.post`), bytes.
pub const MAX_POST_BYTES: usize = MAX_BLOB_BYTES;
/// Most wrap slots of a `PostHeader` (schema limit; the 256 KiB header bound
/// is reached first, at about 3,600 slots).
pub const MAX_WRAP_SLOTS: usize = 4_096;
/// Largest canonical `PostHeader` (`SignedPostHeader.header`), bytes.
pub const MAX_HEADER_BYTES: usize = 262_144;
/// Longest `CommentBody.text`, bytes.
pub const MAX_COMMENT_TEXT_BYTES: usize = 8_192;
/// Largest canonical `CommentBody` (`InlineComment.body`), bytes.
pub const MAX_COMMENT_BODY_BYTES: usize = 16_384;
/// Largest canonical `DeleteRecordBody` (`SignedDeleteRecord.record`), bytes.
pub const MAX_DELETE_RECORD_BYTES: usize = 4_096;
/// Largest canonical `VisibilityUpdateBody` (`SignedVisibilityUpdate.update`),
/// bytes.
pub const MAX_VISIBILITY_UPDATE_BYTES: usize = 266_240;
/// Largest canonical `HeartBody` (`SignedHeart.heart`), bytes.
pub const MAX_HEART_BYTES: usize = 1_024;
/// Upper bound on `AuthorRecentPosts.posts` checked before any entry is read.
///
/// The real limit is the 256 KiB canonical size of the whole list
/// ([`MAX_RECENT_POSTS_BYTES`], enforced on decode). The smallest possible
/// entry is 5 words (a list pointer to a 32-byte `postId`, all data trimmed)
/// and the smallest possible rest of the struct 8 words, so no list with more
/// entries than this can fit.
pub const MAX_RECENT_POST_ENTRIES: usize = (MAX_RECENT_POSTS_BYTES / WORD_BYTES - 8) / 5;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a received content object was refused. Its [`WireCode`] is the wire
/// error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// A signature does not verify.
    #[error("{what}: signature does not verify: {error}")]
    BadSignature {
        /// Which object's signature.
        what: &'static str,
        /// Why it failed.
        error: SignatureError,
    },
    /// A content id does not match the object.
    #[error("{what}: expected id {}, got {}", hex::encode(.expected), hex::encode(.got))]
    IdMismatch {
        /// Which object.
        what: &'static str,
        /// The id required.
        expected: [u8; 32],
        /// The id found.
        got: [u8; 32],
    },
    /// The parts of the object do not fit together.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which object or field.
        what: &'static str,
        /// The rule broken.
        reason: &'static str,
    },
    /// The signer may not do this (e.g. deleting someone else's post).
    #[error("unauthorized {what}: {reason}")]
    Unauthorized {
        /// Which object.
        what: &'static str,
        /// The rule broken.
        reason: &'static str,
    },
    /// The object is not newer than the one held; nothing was changed.
    #[error("stale {what}: updatedAtMs {got} is not newer than the held {held}")]
    Stale {
        /// Which object.
        what: &'static str,
        /// `updatedAtMs` of the object held.
        held: u64,
        /// `updatedAtMs` of the object refused.
        got: u64,
    },
    /// The object did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl WireCode for IngestError {
    fn error_code(&self) -> ErrorCode {
        match self {
            IngestError::BadSignature { .. } => ErrorCode::BadSignature,
            IngestError::IdMismatch { .. } => ErrorCode::IdMismatch,
            IngestError::Malformed { .. } => ErrorCode::Malformed,
            IngestError::Unauthorized { .. } => ErrorCode::Unauthorized,
            IngestError::Stale { .. } => ErrorCode::Stale,
            IngestError::Decode(e) => e.error_code(),
        }
    }
}

impl ToWireError for IngestError {}

/// Why a local content operation (building, sealing, opening) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// The signing key is not the key the body names as its signer.
    #[error("signing key does not match the signer named in the body")]
    WrongSigner,
    /// The canonical encoding is larger than the schema allows.
    #[error("{what}: {got} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Which object.
        what: &'static str,
        /// The limit.
        max: usize,
        /// Actual size.
        got: usize,
    },
    /// A list has more entries than the schema allows.
    #[error("{what}: {got} entries exceeds the limit of {max}")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// The limit.
        max: usize,
        /// Actual count.
        got: usize,
    },
    /// The post's content and its visibility disagree (sealed content with
    /// public visibility or the other way around).
    #[error("post content and visibility disagree")]
    VisibilityMismatch,
    /// An argument is not valid for this operation.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// Envelope encryption failed (not a recipient, tampered data, bad key).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// Friend-of-friend crypto failed.
    #[error(transparent)]
    Fof(#[from] FofError),
    /// Decrypted bytes did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Signs `body` with `key` after checking that `key` is the body's signer and
/// that the canonical encoding fits [`SignedBody::MAX_BYTES`] (so receivers
/// will accept it).
pub fn sign_checked<T: SignedBody>(body: T, key: &SigningKey) -> Result<Signed<T>, ContentError> {
    if key.public() != body.signer().0 {
        return Err(ContentError::WrongSigner);
    }
    let signed = Signed::sign(body, key);
    if signed.bytes().len() > T::MAX_BYTES {
        return Err(ContentError::TooLarge {
            what: T::FIELD,
            max: T::MAX_BYTES,
            got: signed.bytes().len(),
        });
    }
    Ok(signed)
}

fn posting_id(field: &'static str, d: capnp::Result<&[u8]>) -> Result<PostingId, DecodeError> {
    Ok(PostingId(codec::id(field, d)?))
}

fn post_id(field: &'static str, d: capnp::Result<&[u8]>) -> Result<PostId, DecodeError> {
    Ok(PostId(codec::id(field, d)?))
}

fn opt_text(s: String) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

fn bad_sig(what: &'static str) -> impl FnOnce(SignatureError) -> IngestError {
    move |error| IngestError::BadSignature { what, error }
}

mod comments;
mod ingest;
mod lists;
mod post;
mod records;
mod sealing;

pub use comments::*;
pub use ingest::*;
pub use lists::*;
pub use post::*;
pub use records::*;
pub use sealing::*;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use core::fmt::Debug;

    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::codec::Struct;
    use crate::envelope::Cek;
    use crate::fof::VouchKey;
    use crate::ids::{BlobId, CommentHash};
    use crate::limits::MAX_RECIPIENTS;
    use crate::limits::MAX_VISIBILITY_BYTES;
    use crate::messages::common::VisibilityHint;
    use crate::sign::{self, Purpose};
    use distsoc_schema::content_capnp;

    // ---- helpers ---------------------------------------------------------

    use crate::messages::testutil::{round_trips, wire_round_trip_ok as wire_round_trip};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed(&[seed; 32])
    }

    fn pid(k: &SigningKey) -> PostingId {
        PostingId(k.public())
    }

    fn rng(seed: u8) -> ChaCha20Rng {
        ChaCha20Rng::from_seed([seed; 32])
    }

    // ---- strategies ------------------------------------------------------

    fn arr<const N: usize>() -> impl Strategy<Value = [u8; N]> {
        proptest::array::uniform(any::<u8>())
    }

    fn text(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("\\PC{{0,{max}}}")).unwrap()
    }

    prop_compose! {
        fn arb_attachment()(
            blob in arr::<32>(),
            mime in "[a-z]{1,10}/[a-z0-9.+-]{1,20}",
            size in 0u32..=262_144,
            name in proptest::option::of("[^\u{0}]{1,40}"),
        ) -> Attachment {
            Attachment { blob_id: BlobId(blob), mime_type: mime, size_bytes: size, name }
        }
    }

    prop_compose! {
        fn arb_post_body()(text in text(80), attachments in proptest::collection::vec(arb_attachment(), 0..4)) -> PostBody {
            PostBody {
                text,
                attachments,
                rotation: None,
                archive: None,
                group: None,
            }
        }
    }

    prop_compose! {
        fn arb_sealed()(nonce in arr::<12>(), ciphertext in proptest::collection::vec(any::<u8>(), 16..120)) -> SealedBody {
            SealedBody { nonce, ciphertext }
        }
    }

    fn arb_content() -> impl Strategy<Value = PostContent> {
        prop_oneof![
            arb_post_body().prop_map(PostContent::Plain),
            arb_sealed().prop_map(PostContent::Sealed)
        ]
    }

    prop_compose! {
        fn arb_post()(
            author in arr::<32>(),
            created_at_ms in any::<u64>(),
            content in arb_content(),
            reply_to in proptest::option::of(arr::<32>()),
            replaces in proptest::option::of(arr::<32>()),
        ) -> Post {
            Post {
                author: PostingId(author),
                created_at_ms,
                content,
                reply_to: reply_to.map(PostId),
                replaces: replaces.map(PostId),
            }
        }
    }

    /// A body strategy signed by a key derived from a random seed, with the
    /// signer field overwritten by that key.
    fn signed<T: SignedBody + Debug>(
        body: impl Strategy<Value = T>,
        set_signer: fn(&mut T, PostingId),
    ) -> impl Strategy<Value = Signed<T>> {
        (arr::<32>(), body).prop_map(move |(seed, mut b)| {
            let k = SigningKey::from_seed(&seed);
            set_signer(&mut b, pid(&k));
            Signed::sign(b, &k)
        })
    }

    fn arb_signed_post() -> impl Strategy<Value = SignedPost> {
        signed(arb_post(), |p, a| p.author = a)
    }

    prop_compose! {
        fn arb_wrapped_key()(recipient in arr::<32>(), wrapped in arr::<48>()) -> WrappedKey {
            WrappedKey { recipient, wrapped }
        }
    }

    prop_compose! {
        fn arb_encrypted()(ephemeral_key in arr::<32>(), recipients in proptest::collection::vec(arb_wrapped_key(), 0..6)) -> EncryptedVisibility {
            EncryptedVisibility { ephemeral_key, recipients }
        }
    }

    fn arb_visibility() -> impl Strategy<Value = PostVisibility> {
        prop_oneof![
            Just(PostVisibility::Public),
            arb_encrypted().prop_map(PostVisibility::Encrypted)
        ]
    }

    prop_compose! {
        fn arb_slot()(tag in arr::<2>(), sealed in arr::<48>()) -> WrapSlot {
            WrapSlot { tag, sealed }
        }
    }

    fn arb_header() -> impl Strategy<Value = PostHeader> {
        let plain = (
            arr::<32>(),
            arr::<32>(),
            prop_oneof![
                Just(CommentPolicy::Public),
                Just(CommentPolicy::FollowersOnly),
                Just(CommentPolicy::None)
            ],
            any::<u64>(),
        )
            .prop_map(|(p, a, comment_policy, updated_at_ms)| PostHeader {
                post_id: PostId(p),
                author: PostingId(a),
                comment_policy,
                pub_post: None,
                wrap_slots: Vec::new(),
                updated_at_ms,
            });
        let fof = (
            arr::<32>(),
            arr::<32>(),
            arr::<32>(),
            proptest::collection::vec(arb_slot(), 0..5),
            any::<u64>(),
        )
            .prop_map(|(p, a, pub_post, wrap_slots, updated_at_ms)| PostHeader {
                post_id: PostId(p),
                author: PostingId(a),
                comment_policy: CommentPolicy::FriendsOfFriends,
                pub_post: Some(pub_post),
                wrap_slots,
                updated_at_ms,
            });
        prop_oneof![plain, fof]
    }

    fn arb_signed_header() -> impl Strategy<Value = SignedPostHeader> {
        signed(arb_header(), |h, a| h.author = a)
    }

    prop_compose! {
        fn arb_sync_post()(
            post in arb_signed_post(),
            visibility in arb_visibility(),
            header in proptest::option::of(arb_signed_header()),
            visibility_signature in proptest::option::of(arr::<64>()),
            visibility_update in proptest::option::of(signed(arb_visibility_update(), |u, a| u.author = a)),
        ) -> SyncPost {
            SyncPost { post, visibility, header, visibility_signature, visibility_update }
        }
    }

    prop_compose! {
        fn arb_comment_body()(
            parent in arr::<32>(),
            author in arr::<32>(),
            created_at_ms in any::<u64>(),
            text in text(60),
            reply_to in proptest::option::of(arr::<32>()),
        ) -> CommentBody {
            CommentBody {
                parent_post_id: PostId(parent),
                author: PostingId(author),
                created_at_ms,
                text,
                reply_to: reply_to.map(CommentHash),
            }
        }
    }

    prop_compose! {
        fn arb_inline_comment()(
            comment in signed(arb_comment_body(), |c, a| c.author = a),
            group_sig in proptest::option::of(arr::<64>()),
            vouch_mac in proptest::option::of(arr::<16>()),
        ) -> InlineComment {
            InlineComment { comment, group_sig, vouch_mac }
        }
    }

    prop_compose! {
        fn arb_delete()(p in arr::<32>(), a in arr::<32>(), t in any::<u64>(), r in proptest::option::of(arr::<32>())) -> DeleteRecordBody {
            DeleteRecordBody { post_id: PostId(p), author: PostingId(a), deleted_at_ms: t, replaced_by: r.map(PostId) }
        }
    }

    prop_compose! {
        fn arb_visibility_update()(p in arr::<32>(), a in arr::<32>(), visibility in arb_visibility(), t in any::<u64>()) -> VisibilityUpdateBody {
            VisibilityUpdateBody { post_id: PostId(p), author: PostingId(a), visibility, updated_at_ms: t }
        }
    }

    prop_compose! {
        fn arb_recent_post()(p in arr::<32>(), t in any::<u64>(), enc in any::<bool>()) -> RecentPost {
            RecentPost {
                post_id: PostId(p),
                created_at_ms: t,
                hint: if enc { VisibilityHint::Encrypted } else { VisibilityHint::Public },
            }
        }
    }

    prop_compose! {
        fn arb_recent()(a in arr::<32>(), seq in any::<u64>(), t in any::<u64>(), posts in proptest::collection::vec(arb_recent_post(), 0..8)) -> AuthorRecentPosts {
            AuthorRecentPosts { author: PostingId(a), seq, updated_at_ms: t, posts }
        }
    }

    prop_compose! {
        fn arb_heart()(p in arr::<32>(), a in arr::<32>(), t in any::<u64>()) -> HeartBody {
            HeartBody { post_id: PostId(p), reactor: PostingId(a), created_at_ms: t }
        }
    }

    // ---- round trips: one per schema struct ------------------------------

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn rt_attachment(v in arb_attachment()) { round_trips(&v)?; }

        #[test]
        fn rt_post_body(v in arb_post_body()) { round_trips(&v)?; }

        #[test]
        fn rt_sealed_body(v in arb_sealed()) { round_trips(&v)?; }

        #[test]
        fn rt_post(v in arb_post()) { round_trips(&v)?; }

        #[test]
        fn rt_signed_post(v in arb_signed_post()) {
            round_trips(&v)?;
            let back = wire_round_trip(&v);
            prop_assert!(back.verify().is_ok());
            prop_assert_eq!(back.post_id(), PostId::of_canonical(&codec::canonical_of(v.body())));
        }

        #[test]
        fn rt_wrapped_key(v in arb_wrapped_key()) { round_trips(&v)?; }

        #[test]
        fn rt_post_visibility(v in arb_visibility()) { round_trips(&v)?; }

        #[test]
        fn rt_encrypted_visibility(v in arb_encrypted()) { round_trips(&v)?; }

        #[test]
        fn rt_wrap_slot(v in arb_slot()) { round_trips(&v)?; }

        #[test]
        fn rt_post_header(v in arb_header()) { round_trips(&v)?; }

        #[test]
        fn rt_signed_post_header(v in arb_signed_header()) {
            round_trips(&v)?;
            prop_assert!(wire_round_trip(&v).verify().is_ok());
        }

        #[test]
        fn rt_sync_post(v in arb_sync_post()) { round_trips(&v)?; }

        #[test]
        fn rt_comment_body(v in arb_comment_body()) { round_trips(&v)?; }

        #[test]
        fn rt_inline_comment(v in arb_inline_comment()) {
            round_trips(&v)?;
            prop_assert!(wire_round_trip(&v).comment.verify().is_ok());
        }

        #[test]
        fn rt_delete_record(v in arb_delete()) { round_trips(&v)?; }

        #[test]
        fn rt_signed_delete_record(v in signed(arb_delete(), |d, a| d.author = a)) {
            round_trips(&v)?;
            prop_assert!(wire_round_trip(&v).verify().is_ok());
        }

        #[test]
        fn rt_visibility_update(v in arb_visibility_update()) { round_trips(&v)?; }

        #[test]
        fn rt_signed_visibility_update(v in signed(arb_visibility_update(), |u, a| u.author = a)) {
            round_trips(&v)?;
            prop_assert!(wire_round_trip(&v).verify().is_ok());
        }

        #[test]
        fn rt_recent_post(v in arb_recent_post()) { round_trips(&v)?; }

        #[test]
        fn rt_author_recent_posts(v in arb_recent()) { round_trips(&v)?; }

        #[test]
        fn rt_signed_author_recent_posts(v in signed(arb_recent(), |r, a| r.author = a)) {
            round_trips(&v)?;
            let back = wire_round_trip(&v);
            prop_assert!(back.verify().is_ok());
            prop_assert_eq!(back.seq(), v.body().seq);
        }

        #[test]
        fn rt_heart(v in arb_heart()) { round_trips(&v)?; }

        #[test]
        fn rt_signed_heart(v in signed(arb_heart(), |h, a| h.reactor = a)) {
            round_trips(&v)?;
            prop_assert!(wire_round_trip(&v).verify().is_ok());
        }
    }

    // ---- posts, tampering, ids -------------------------------------------

    fn public_sync_post(k: &SigningKey) -> SyncPost {
        let post = Post::new_public(pid(k), 1_700_000_000_123, "hello", Vec::new())
            .sign(k)
            .unwrap();
        SyncPost::new(k, post, PostVisibility::Public, None)
    }

    #[test]
    fn valid_public_post() {
        let k = key(1);
        let sp = public_sync_post(&k);
        let id = sp.validate(None).unwrap();
        assert_eq!(id, sp.post.post_id());
        assert_eq!(sp.validate(Some(id)).unwrap(), id);
        assert_eq!(wire_round_trip(&sp).validate(Some(id)).unwrap(), id);
        assert_eq!(sp.visibility_signature, None);
    }

    #[test]
    fn flipped_byte_is_bad_signature() {
        let k = key(1);
        let sp = public_sync_post(&k);
        // Byte 8 is the low byte of createdAtMs: still canonical, new content.
        let mut bytes = sp.post.bytes().to_vec();
        bytes[8] ^= 1;
        let tampered = SignedPost::decode(Ok(&bytes), Ok(sp.post.signature())).unwrap();
        let t = SyncPost {
            post: tampered,
            ..sp.clone()
        };
        let e = t.validate(None).unwrap_err();
        assert!(
            matches!(e, IngestError::BadSignature { what: "post", .. }),
            "{e:?}"
        );
        assert_eq!(e.error_code(), ErrorCode::BadSignature);

        let mut sig = *sp.post.signature();
        sig[0] ^= 1;
        let t = SyncPost {
            post: SignedPost::decode(Ok(sp.post.bytes()), Ok(&sig)).unwrap(),
            ..sp
        };
        assert_eq!(
            t.validate(None).unwrap_err().error_code(),
            ErrorCode::BadSignature
        );
    }

    #[test]
    fn wrong_expected_id_is_id_mismatch() {
        let sp = public_sync_post(&key(1));
        let e = sp.validate(Some(PostId([0; 32]))).unwrap_err();
        assert!(matches!(e, IngestError::IdMismatch { what: "post", .. }));
        assert_eq!(e.error_code(), ErrorCode::IdMismatch);
        assert!(e.to_string().contains(&"00".repeat(32)));
    }

    #[test]
    fn non_canonical_bytes_are_rejected() {
        let sp = public_sync_post(&key(1));
        let mut bytes = sp.post.bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        let e = SignedPost::decode(Ok(&bytes), Ok(sp.post.signature())).unwrap_err();
        assert_eq!(e, DecodeError::NonCanonical("post"));
        assert_eq!(IngestError::from(e).error_code(), ErrorCode::NonCanonical);
        // Same through the wire struct.
        let mut m = capnp::message::Builder::new_default();
        let mut b = m.init_root::<content_capnp::signed_post::Builder<'_>>();
        b.set_post(&bytes);
        b.set_signature(sp.post.signature());
        let r = m
            .get_root_as_reader::<content_capnp::signed_post::Reader<'_>>()
            .unwrap();
        assert_eq!(
            SignedPost::read(r).unwrap_err().error_code(),
            ErrorCode::NonCanonical
        );
        // Not a multiple of 8 and oversize.
        assert_eq!(
            SignedPost::decode(Ok(&bytes[..bytes.len() - 3]), Ok(sp.post.signature())).unwrap_err(),
            DecodeError::NonCanonical("post")
        );
        let huge = vec![0u8; MAX_POST_BYTES + 8];
        assert!(matches!(
            SignedPost::decode(Ok(&huge), Ok(sp.post.signature())),
            Err(DecodeError::TooLong { field: "post", .. })
        ));
    }

    #[test]
    fn signing_checks_key_and_size() {
        let k = key(1);
        let post = Post::new_public(pid(&key(2)), 1, "x", Vec::new());
        assert_eq!(post.sign(&k).unwrap_err(), ContentError::WrongSigner);
        let big = Post::new_public(pid(&k), 1, "x".repeat(MAX_POST_TEXT_BYTES), Vec::new());
        assert!(big.clone().sign(&k).is_ok());
        let mut too_big = big;
        too_big.content = PostContent::Sealed(SealedBody {
            nonce: [0; 12],
            ciphertext: vec![1; MAX_POST_BYTES],
        });
        assert!(matches!(
            too_big.sign(&k),
            Err(ContentError::TooLarge { what: "post", .. })
        ));
    }

    // ---- encryption ------------------------------------------------------

    fn sample_body() -> PostBody {
        PostBody {
            text: "for your eyes only".into(),
            attachments: vec![Attachment::for_blob(
                b"jpeg bytes",
                "image/jpeg",
                Some("cat.jpg".into()),
            )],
            rotation: None,
            archive: None,
            group: None,
        }
    }

    #[test]
    fn encrypted_post_visible_to_recipients_only() {
        let author = key(1);
        let readers: Vec<SigningKey> = (10..13).map(key).collect();
        let mut ids: Vec<PostingId> = readers.iter().map(pid).collect();
        ids.push(pid(&author));
        let body = sample_body();
        let (post, visibility) = seal_post(&author, 42, &body, &ids, &mut rng(3)).unwrap();
        assert!(post.body().is_sealed());
        assert_eq!(post.body().hint(), VisibilityHint::Encrypted);
        let sp = SyncPost::new(&author, post.clone(), visibility.clone(), None);
        let sp = wire_round_trip(&sp);
        assert_eq!(sp.validate(Some(post.post_id())).unwrap(), post.post_id());

        for r in readers.iter().chain([&author]) {
            assert_eq!(
                open_post(&r.seed(), &sp.post, &sp.visibility).unwrap(),
                body
            );
        }
        assert_eq!(
            open_post(&key(99).seed(), &sp.post, &sp.visibility).unwrap_err(),
            ContentError::Envelope(EnvelopeError::NotARecipient)
        );
        // Wrong CEK does not open.
        assert_eq!(
            post.body().open(&Cek::from_bytes([0; 32])).unwrap_err(),
            ContentError::Envelope(EnvelopeError::DecryptFailed)
        );
        // A public visibility on sealed content is a mismatch.
        assert_eq!(
            open_post(&readers[0].seed(), &post, &PostVisibility::Public).unwrap_err(),
            ContentError::VisibilityMismatch
        );
    }

    #[test]
    fn sync_post_visibility_rules() {
        let author = key(1);
        let ids = [pid(&key(10)), pid(&key(11))];
        let (post, visibility) = seal_post(&author, 42, &sample_body(), &ids, &mut rng(4)).unwrap();
        let good = SyncPost::new(&author, post.clone(), visibility.clone(), None);
        assert!(good.validate(None).is_ok());

        // Missing visibility signature.
        let t = SyncPost {
            visibility_signature: None,
            ..good.clone()
        };
        let e = t.validate(None).unwrap_err();
        assert!(matches!(
            e,
            IngestError::Malformed {
                what: "visibilitySignature",
                ..
            }
        ));
        assert_eq!(e.error_code(), ErrorCode::Malformed);

        // A relay drops a recipient: the visibility signature no longer matches.
        let PostVisibility::Encrypted(mut enc) = visibility.clone() else {
            panic!()
        };
        enc.recipients.pop();
        let t = SyncPost {
            visibility: PostVisibility::Encrypted(enc),
            ..good.clone()
        };
        assert!(matches!(
            t.validate(None),
            Err(IngestError::BadSignature {
                what: "visibility",
                ..
            })
        ));

        // Sealed content with public visibility, plain content with encrypted visibility.
        let t = SyncPost {
            visibility: PostVisibility::Public,
            visibility_signature: None,
            ..good.clone()
        };
        assert_eq!(
            t.validate(None).unwrap_err().error_code(),
            ErrorCode::Malformed
        );
        let public = public_sync_post(&author);
        let t = SyncPost {
            visibility,
            ..public
        };
        assert_eq!(
            t.validate(None).unwrap_err().error_code(),
            ErrorCode::Malformed
        );

        // Visibility signed by someone else.
        let sig = good.visibility.sign_for(&post.post_id(), &key(2));
        let t = SyncPost {
            visibility_signature: Some(sig),
            ..good
        };
        assert_eq!(
            t.validate(None).unwrap_err().error_code(),
            ErrorCode::BadSignature
        );
    }

    // ---- visibility updates ("sync access list") ---------------------------

    /// An encrypted post by `key(1)` for readers `key(10..13)` and the author.
    fn encrypted_sync_post() -> (SigningKey, Vec<SigningKey>, SyncPost) {
        let author = key(1);
        let readers: Vec<SigningKey> = (10..13).map(key).collect();
        let mut ids: Vec<PostingId> = readers.iter().map(pid).collect();
        ids.push(pid(&author));
        let (post, visibility) = seal_post(&author, 42, &sample_body(), &ids, &mut rng(5)).unwrap();
        let sp = SyncPost::new(&author, post, visibility, None);
        assert!(sp.validate(None).is_ok());
        (author, readers, sp)
    }

    /// As the author: re-wraps the CEK of `sp` for `keep` only (fresh
    /// ephemeral key `[eph; 32]`) and signs the update.
    fn rewrap(
        author: &SigningKey,
        sp: &SyncPost,
        keep: &[PostingId],
        eph: u8,
        updated_at_ms: u64,
    ) -> SignedVisibilityUpdate {
        let PostVisibility::Encrypted(enc) = &sp.visibility else {
            panic!("not encrypted")
        };
        let cek = enc.unwrap_cek(&author.seed()).unwrap();
        let visibility =
            PostVisibility::Encrypted(EncryptedVisibility::wrap(&cek, &[eph; 32], keep).unwrap());
        let body = VisibilityUpdateBody {
            post_id: sp.post_id(),
            author: pid(author),
            visibility,
            updated_at_ms,
        };
        sign_checked(body, author).unwrap()
    }

    #[test]
    fn post_visibility_purpose_is_separate_from_visibility_update() {
        let (author, _, sp) = encrypted_sync_post();
        let id = sp.post_id();
        let digest = sp.visibility.signing_digest(&id);
        let sig = sp.visibility_signature.unwrap();
        assert_eq!(
            sign::verify(&author.public(), Purpose::PostVisibility, &digest, &sig),
            Ok(())
        );
        assert_eq!(
            sign::verify(&author.public(), Purpose::VisibilityUpdate, &digest, &sig),
            Err(SignatureError::Invalid)
        );
        // A signature made with the update purpose is no visibilitySignature.
        let old = author.sign(Purpose::VisibilityUpdate, &digest);
        assert_eq!(
            sp.visibility.verify_for(&id, &pid(&author), &old),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn rewrapped_post_relays_through_apply_update() {
        let (author, readers, sp) = encrypted_sync_post();
        let id = sp.post_id();
        let removed = &readers[2];
        let keep = [pid(&readers[0]), pid(&readers[1]), pid(&author)];
        let update = rewrap(&author, &sp, &keep, 0x77, 1_000);
        // Before the fix: a relay that only swaps the visibility breaks the post.
        let naive = SyncPost {
            visibility: update.body().visibility.clone(),
            ..sp.clone()
        };
        assert!(matches!(
            naive.validate(None),
            Err(IngestError::BadSignature {
                what: "visibility",
                ..
            })
        ));

        // Hop 1 received the post, then the update.
        let mut relayed = wire_round_trip(&sp);
        relayed.apply_update(update.clone()).unwrap();
        assert_eq!(relayed.visibility, update.body().visibility);
        assert_eq!(relayed.visibility_signature, None);
        assert_eq!(relayed.visibility_update.as_ref(), Some(&update));
        assert_eq!(relayed.validate(Some(id)).unwrap(), id);
        // Applying the same update again is a no-op.
        let before = relayed.clone();
        relayed.apply_update(update.clone()).unwrap();
        assert_eq!(relayed, before);

        // Hop 2 receives the relayed post over the wire and accepts it.
        let next = wire_round_trip(&relayed);
        assert_eq!(next, relayed);
        assert_eq!(next.validate(Some(id)).unwrap(), id);
        let canonical: SyncPost =
            codec::from_canonical("syncPost", &codec::canonical_of(&relayed), usize::MAX).unwrap();
        assert_eq!(canonical.validate(Some(id)).unwrap(), id);

        // The remaining recipients still read it; the removed one no longer
        // can from the new visibility (though it could from the old one).
        for r in [&readers[0], &readers[1], &author] {
            assert_eq!(
                open_post(&r.seed(), &next.post, &next.visibility).unwrap(),
                sample_body()
            );
        }
        assert_eq!(
            open_post(&removed.seed(), &sp.post, &sp.visibility).unwrap(),
            sample_body()
        );
        assert_eq!(
            open_post(&removed.seed(), &next.post, &next.visibility).unwrap_err(),
            ContentError::Envelope(EnvelopeError::NotARecipient)
        );
        let PostVisibility::Encrypted(enc) = &next.visibility else {
            panic!()
        };
        assert!(!enc.is_recipient(&pid(removed)));

        // Both present: the update wins, the creation signature is ignored.
        let both = SyncPost {
            visibility_signature: sp.visibility_signature,
            ..next.clone()
        };
        assert_eq!(wire_round_trip(&both).validate(Some(id)).unwrap(), id);
        let garbage = SyncPost {
            visibility_signature: Some([0; 64]),
            ..next
        };
        assert_eq!(garbage.validate(Some(id)).unwrap(), id);
    }

    #[test]
    fn bad_visibility_updates_are_rejected() {
        let (author, readers, sp) = encrypted_sync_post();
        let keep = [pid(&readers[0]), pid(&author)];
        let good = rewrap(&author, &sp, &keep, 0x61, 1_000);
        let with = |update: SignedVisibilityUpdate| SyncPost {
            visibility: update.body().visibility.clone(),
            visibility_signature: None,
            visibility_update: Some(update),
            ..sp.clone()
        };
        assert!(with(good.clone()).validate(None).is_ok());
        let check = |update: SignedVisibilityUpdate, code: ErrorCode| {
            let e = with(update.clone()).validate(None).unwrap_err();
            assert_eq!(e.error_code(), code, "validate: {e:?}");
            let mut t = sp.clone();
            let e = t.apply_update(update).unwrap_err();
            assert_eq!(e.error_code(), code, "apply_update: {e:?}");
            assert_eq!(t, sp, "a refused update changes nothing");
        };

        // For another post of the same author.
        let (other_post, other_vis) =
            seal_post(&author, 43, &sample_body(), &keep, &mut rng(6)).unwrap();
        let other = SyncPost::new(&author, other_post, other_vis, None);
        let for_other = rewrap(&author, &other, &keep, 0x62, 1_000);
        assert!(matches!(
            with(for_other.clone()).validate(None),
            Err(IngestError::IdMismatch {
                what: "visibilityUpdate",
                ..
            })
        ));
        check(for_other, ErrorCode::IdMismatch);

        // By another author (correctly signed by that author).
        let stranger = key(2);
        let mut body = good.body().clone();
        body.author = pid(&stranger);
        let foreign = sign_checked(body, &stranger).unwrap();
        assert!(matches!(
            with(foreign.clone()).validate(None),
            Err(IngestError::Unauthorized {
                what: "visibilityUpdate",
                ..
            })
        ));
        check(foreign, ErrorCode::Unauthorized);

        // Naming the author but signed by someone else, or tampered.
        let forged = Signed::sign(good.body().clone(), &stranger);
        check(forged, ErrorCode::BadSignature);
        let mut sig = *good.signature();
        sig[5] ^= 1;
        let tampered =
            Signed::from_parts_unchecked(good.body().clone(), good.bytes().to_vec(), sig);
        assert!(matches!(
            with(tampered.clone()).validate(None),
            Err(IngestError::BadSignature {
                what: "visibilityUpdate",
                ..
            })
        ));
        check(tampered, ErrorCode::BadSignature);

        // A public visibility for sealed content.
        let mut body = good.body().clone();
        body.visibility = PostVisibility::Public;
        let public = sign_checked(body, &author).unwrap();
        let e = sp.clone().apply_update(public).unwrap_err();
        assert_eq!(e.error_code(), ErrorCode::Malformed);

        // The carried visibility is not the update's.
        for visibility in [
            sp.visibility.clone(),
            rewrap(&author, &sp, &keep, 0x63, 1_000)
                .body()
                .visibility
                .clone(),
        ] {
            let t = SyncPost {
                visibility,
                ..with(good.clone())
            };
            let e = t.validate(None).unwrap_err();
            assert!(
                matches!(
                    e,
                    IngestError::Malformed {
                        what: "visibility",
                        ..
                    }
                ),
                "{e:?}"
            );
            assert_eq!(e.error_code(), ErrorCode::Malformed);
        }

        // No signature and no update.
        let t = SyncPost {
            visibility_signature: None,
            visibility_update: None,
            ..with(good)
        };
        assert!(matches!(
            t.validate(None),
            Err(IngestError::Malformed {
                what: "visibilitySignature",
                ..
            })
        ));
    }

    #[test]
    fn stale_visibility_update_is_refused() {
        let (author, readers, sp) = encrypted_sync_post();
        let all = [pid(&readers[0]), pid(&readers[1]), pid(&author)];
        let fewer = [pid(&readers[0]), pid(&author)];
        let mut relay = sp.clone();
        let newer = rewrap(&author, &sp, &fewer, 0x71, 2_000);
        relay.apply_update(newer.clone()).unwrap();

        // Older than the held one.
        let older = rewrap(&author, &sp, &all, 0x72, 1_999);
        let held = relay.clone();
        let e = relay.apply_update(older).unwrap_err();
        assert_eq!(
            e,
            IngestError::Stale {
                what: "visibilityUpdate",
                held: 2_000,
                got: 1_999
            }
        );
        assert_eq!(e.error_code(), ErrorCode::Stale);
        assert_eq!(relay, held);

        // Same time, different content: the first one seen is kept.
        let rival = rewrap(&author, &sp, &all, 0x73, 2_000);
        assert_eq!(
            relay.apply_update(rival).unwrap_err().error_code(),
            ErrorCode::Stale
        );
        assert_eq!(relay, held);

        // A newer one replaces it, even re-adding a recipient.
        let newest = rewrap(&author, &sp, &all, 0x74, 2_001);
        relay.apply_update(newest.clone()).unwrap();
        assert_eq!(relay.visibility_update, Some(newest));
        assert_eq!(
            wire_round_trip(&relay).validate(None).unwrap(),
            sp.post_id()
        );
        assert!(open_post(&readers[1].seed(), &relay.post, &relay.visibility).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Any chain of re-wraps (kept recipients drawn at random, newest
        /// last) relays hop to hop: every hop validates, and exactly the kept
        /// recipients can unwrap the CEK.
        #[test]
        fn rewrap_chain_relays(keeps in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 3), 1..4)) {
            let (author, readers, sp) = encrypted_sync_post();
            let id = sp.post_id();
            let mut hop = sp.clone();
            for (i, keep) in keeps.iter().enumerate() {
                let mut ids: Vec<PostingId> = readers
                    .iter()
                    .zip(keep)
                    .filter(|(_, k)| **k)
                    .map(|(r, _)| pid(r))
                    .collect();
                ids.push(pid(&author));
                let step = u8::try_from(i).unwrap();
                let update = rewrap(&author, &sp, &ids, 0x40 + step, 1_000 + u64::from(step));
                hop.apply_update(update).unwrap();
                hop = wire_round_trip(&hop);
                prop_assert_eq!(hop.validate(Some(id)).unwrap(), id);
                let PostVisibility::Encrypted(enc) = &hop.visibility else { panic!() };
                for (r, k) in readers.iter().zip(keep) {
                    prop_assert_eq!(enc.unwrap_cek(&r.seed()).is_ok(), *k);
                }
            }
        }
    }

    #[test]
    fn sync_post_header_rules() {
        let author = key(1);
        let sp = public_sync_post(&author);
        let id = sp.post_id();
        let header = PostHeader::new(id, pid(&author), CommentPolicy::FollowersOnly, 5)
            .unwrap()
            .sign(&author)
            .unwrap();
        let ok = SyncPost {
            header: Some(header),
            ..sp.clone()
        };
        assert!(ok.validate(Some(id)).is_ok());

        let other =
            PostHeader::new(PostId([7; 32]), pid(&author), CommentPolicy::Public, 5).unwrap();
        let t = SyncPost {
            header: Some(other.sign(&author).unwrap()),
            ..sp.clone()
        };
        assert_eq!(
            t.validate(None).unwrap_err().error_code(),
            ErrorCode::IdMismatch
        );

        let stranger = key(2);
        let foreign = PostHeader::new(id, pid(&stranger), CommentPolicy::None, 5).unwrap();
        let t = SyncPost {
            header: Some(foreign.sign(&stranger).unwrap()),
            ..sp.clone()
        };
        assert_eq!(
            t.validate(None).unwrap_err().error_code(),
            ErrorCode::Unauthorized
        );

        let h = PostHeader::new(id, pid(&author), CommentPolicy::None, 5).unwrap();
        let forged = Signed::from_parts_unchecked(h.clone(), codec::canonical_of(&h), [0; 64]);
        let t = SyncPost {
            header: Some(forged),
            ..sp
        };
        assert_eq!(
            t.validate(None).unwrap_err().error_code(),
            ErrorCode::BadSignature
        );

        assert!(PostHeader::new(id, pid(&author), CommentPolicy::FriendsOfFriends, 5).is_err());
    }

    // ---- friend-of-friend comments ---------------------------------------

    struct Fof {
        author: SigningKey,
        vouch: Vec<VouchKey>,
        post_id: PostId,
        header: PostHeader,
    }

    fn fof_setup() -> Fof {
        let author = key(1);
        let post_id = public_sync_post(&author).post_id();
        let vouch: Vec<VouchKey> = (0..3u8)
            .map(|i| VouchKey::from_bytes([i + 50; 32]))
            .collect();
        let per_post = key(77);
        let header = PostHeader::new_fof(
            post_id,
            pid(&author),
            per_post.public(),
            &vouch,
            &per_post.seed(),
            9,
        )
        .unwrap();
        assert_eq!(header.wrap_slots.len(), 3);
        Fof {
            author,
            vouch,
            post_id,
            header,
        }
    }

    fn comment_body(author: &SigningKey, post_id: PostId) -> CommentBody {
        CommentBody {
            parent_post_id: post_id,
            author: pid(author),
            created_at_ms: 10,
            text: "hi".into(),
            reply_to: None,
        }
    }

    #[test]
    fn fof_comment_accepted_and_unverified() {
        let f = fof_setup();
        let header = wire_round_trip(&f.header.clone().sign(&f.author).unwrap())
            .body()
            .clone();
        let commenter = key(20);
        let v = f.vouch[1].clone();

        // The commenter holds V1 (and an unrelated key) and opens the slot.
        let (idx, seed) = header
            .open_fof(&[VouchKey::from_bytes([9; 32]), v.clone()])
            .unwrap();
        assert_eq!(idx, 1);
        let pub_post = *header.fof_pub_post().unwrap();
        let c = InlineComment::new(
            &commenter,
            comment_body(&commenter, f.post_id),
            Some((&seed, &v, &pub_post)),
        )
        .unwrap();
        let c = wire_round_trip(&c);
        assert_eq!(c.check(Some(&header)), CommentVerdict::Accepted);
        assert!(c.check_strict(Some(&header), &f.vouch));
        assert!(!c.check_strict(Some(&header), &f.vouch[..1]));
        assert_eq!(
            c.comment_hash(),
            CommentHash::of_canonical(&codec::canonical_of(c.body()))
        );

        // Someone outside the FoF set cannot open a slot; without a group
        // signature the comment is kept but unverified.
        assert!(header.open_fof(&[VouchKey::from_bytes([8; 32])]).is_none());
        let outsider = key(21);
        let plain =
            InlineComment::new(&outsider, comment_body(&outsider, f.post_id), None).unwrap();
        assert_eq!(plain.check(Some(&header)), CommentVerdict::Unverified);
        assert!(!plain.check_strict(Some(&header), &f.vouch));

        // A group signature by the wrong per-post key is unverified too.
        let wrong = key(78);
        let forged = InlineComment::new(
            &outsider,
            comment_body(&outsider, f.post_id),
            Some((&wrong.seed(), &v, &wrong.public())),
        )
        .unwrap();
        assert_eq!(forged.check(Some(&header)), CommentVerdict::Unverified);

        // The author needs no vouch on their own post.
        let own = InlineComment::new(&f.author, comment_body(&f.author, f.post_id), None).unwrap();
        assert_eq!(own.check(Some(&header)), CommentVerdict::Accepted);
        assert!(own.check_strict(Some(&header), &[]));

        // Mismatched priv/pub post key is refused when building.
        assert_eq!(
            InlineComment::new(
                &outsider,
                comment_body(&outsider, f.post_id),
                Some((&seed, &v, &wrong.public()))
            )
            .unwrap_err(),
            ContentError::Fof(FofError::KeyMismatch)
        );
    }

    #[test]
    fn comment_invalid_cases() {
        let f = fof_setup();
        let commenter = key(20);
        let c = InlineComment::new(&commenter, comment_body(&commenter, f.post_id), None).unwrap();
        // No header: public comments.
        assert_eq!(c.check(None), CommentVerdict::Accepted);
        assert!(c.check_strict(None, &[]));
        // Comments off.
        let off = PostHeader::new(f.post_id, pid(&f.author), CommentPolicy::None, 1).unwrap();
        assert_eq!(c.check(Some(&off)), CommentVerdict::Invalid);
        let followers = PostHeader {
            comment_policy: CommentPolicy::FollowersOnly,
            ..off.clone()
        };
        assert_eq!(c.check(Some(&followers)), CommentVerdict::Accepted);
        // Header of another post.
        let other = PostHeader {
            post_id: PostId([3; 32]),
            ..f.header.clone()
        };
        assert_eq!(c.check(Some(&other)), CommentVerdict::Invalid);
        // Forged commenter signature.
        let mut sig = *c.comment.signature();
        sig[5] ^= 0x40;
        let forged = InlineComment {
            comment: Signed::decode(Ok(c.comment.bytes()), Ok(&sig)).unwrap(),
            ..c.clone()
        };
        assert_eq!(forged.check(None), CommentVerdict::Invalid);
        assert!(!forged.check_strict(None, &[]));
        // Wrong signer.
        assert_eq!(
            InlineComment::new(&key(5), comment_body(&commenter, f.post_id), None).unwrap_err(),
            ContentError::WrongSigner
        );
    }

    #[test]
    fn comment_body_limits() {
        let k = key(20);
        let mut body = comment_body(&k, PostId([1; 32]));
        body.text = "x".repeat(MAX_COMMENT_TEXT_BYTES + 1);
        let bytes = codec::canonical_of(&body);
        let e = Signed::<CommentBody>::decode(Ok(&bytes), Ok(&[0; 64])).unwrap_err();
        assert_eq!(
            e,
            DecodeError::TooLong {
                field: "text",
                max: MAX_COMMENT_TEXT_BYTES,
                got: MAX_COMMENT_TEXT_BYTES + 1
            }
        );
        let mut m = capnp::message::Builder::new_default();
        let mut b = m.init_root::<content_capnp::inline_comment::Builder<'_>>();
        b.set_body(&codec::canonical_of(&comment_body(&k, PostId([1; 32]))));
        b.set_signature(&[0; 64]);
        b.set_vouch_mac(&[0; 15]);
        let r = m
            .get_root_as_reader::<content_capnp::inline_comment::Reader<'_>>()
            .unwrap();
        assert_eq!(
            InlineComment::read(r).unwrap_err(),
            DecodeError::BadLength {
                field: "vouchMac",
                expected: 16,
                got: 15
            }
        );
    }

    // ---- deletes and visibility updates ----------------------------------

    #[test]
    fn delete_record_applies_to() {
        let author = key(1);
        let post = public_sync_post(&author).post;
        let rec = DeleteRecordBody {
            post_id: post.post_id(),
            author: pid(&author),
            deleted_at_ms: 3,
            replaced_by: None,
        };
        let signed = sign_checked(rec.clone(), &author).unwrap();
        assert!(wire_round_trip(&signed).validate_for(&post).is_ok());

        let other = DeleteRecordBody {
            post_id: PostId([1; 32]),
            ..rec.clone()
        };
        assert_eq!(
            other.applies_to(&post).unwrap_err().error_code(),
            ErrorCode::IdMismatch
        );
        let mallory = key(6);
        let theirs = DeleteRecordBody {
            author: pid(&mallory),
            ..rec.clone()
        };
        let e = sign_checked(theirs, &mallory)
            .unwrap()
            .validate_for(&post)
            .unwrap_err();
        assert_eq!(e.error_code(), ErrorCode::Unauthorized);
        let forged = Signed::from_parts_unchecked(rec.clone(), codec::canonical_of(&rec), [0; 64]);
        assert_eq!(
            forged.validate_for(&post).unwrap_err().error_code(),
            ErrorCode::BadSignature
        );
    }

    #[test]
    fn visibility_update_applies_to() {
        let author = key(1);
        let ids = [pid(&key(10)), pid(&key(11)), pid(&key(12))];
        let (post, visibility) = seal_post(&author, 42, &sample_body(), &ids, &mut rng(5)).unwrap();
        // "Sync access list": same CEK, re-wrapped for the remaining two.
        let PostVisibility::Encrypted(enc) = &visibility else {
            panic!()
        };
        let cek = enc.unwrap_cek(&key(10).seed()).unwrap();
        let fewer = EncryptedVisibility::wrap(&cek, &[9; 32], &ids[..2]).unwrap();
        let upd = VisibilityUpdateBody {
            post_id: post.post_id(),
            author: pid(&author),
            visibility: PostVisibility::Encrypted(fewer),
            updated_at_ms: 50,
        };
        let signed = wire_round_trip(&sign_checked(upd.clone(), &author).unwrap());
        signed.validate_for(&post).unwrap();
        let new_vis = &signed.body().visibility;
        assert!(open_post(&key(11).seed(), &post, new_vis).is_ok());
        assert_eq!(
            open_post(&key(12).seed(), &post, new_vis).unwrap_err(),
            ContentError::Envelope(EnvelopeError::NotARecipient)
        );

        let public = VisibilityUpdateBody {
            visibility: PostVisibility::Public,
            ..upd.clone()
        };
        assert_eq!(
            public.applies_to(&post).unwrap_err().error_code(),
            ErrorCode::Malformed
        );
        let other = VisibilityUpdateBody {
            post_id: PostId([0; 32]),
            ..upd.clone()
        };
        assert_eq!(
            other.applies_to(&post).unwrap_err().error_code(),
            ErrorCode::IdMismatch
        );
        let theirs = VisibilityUpdateBody {
            author: pid(&key(2)),
            ..upd
        };
        assert_eq!(
            theirs.applies_to(&post).unwrap_err().error_code(),
            ErrorCode::Unauthorized
        );
    }

    // ---- limits and decode errors ----------------------------------------

    #[test]
    fn field_limits() {
        let body = PostBody {
            text: "x".repeat(MAX_POST_TEXT_BYTES + 1),
            attachments: Vec::new(),
            rotation: None,
            archive: None,
            group: None,
        };
        assert!(matches!(
            codec::from_canonical::<PostBody>("body", &codec::canonical_of(&body), usize::MAX),
            Err(DecodeError::TooLong { field: "text", .. })
        ));
        let a = Attachment::for_blob(b"x", "text/plain", None);
        let body = PostBody {
            text: String::new(),
            attachments: vec![a.clone(); MAX_ATTACHMENTS + 1],
            rotation: None,
            archive: None,
            group: None,
        };
        assert!(matches!(
            codec::from_canonical::<PostBody>("body", &codec::canonical_of(&body), usize::MAX),
            Err(DecodeError::TooMany {
                field: "attachments",
                max: 32,
                got: 33
            })
        ));
        for (bad, field) in [
            (
                Attachment {
                    size_bytes: 262_145,
                    ..a.clone()
                },
                "sizeBytes",
            ),
            (
                Attachment {
                    mime_type: "m".repeat(129),
                    ..a.clone()
                },
                "mimeType",
            ),
            (
                Attachment {
                    name: Some("n".repeat(257)),
                    ..a.clone()
                },
                "name",
            ),
        ] {
            let e =
                codec::from_canonical::<Attachment>("a", &codec::canonical_of(&bad), usize::MAX)
                    .unwrap_err();
            assert!(
                matches!(e, DecodeError::TooLong { field: f, .. } if f == field),
                "{e:?}"
            );
            assert_eq!(e.error_code(), ErrorCode::TooLarge);
        }
        let e = codec::from_canonical::<Attachment>(
            "a",
            &codec::canonical_of(&Attachment {
                mime_type: String::new(),
                ..a
            }),
            usize::MAX,
        )
        .unwrap_err();
        assert_eq!(e, DecodeError::Missing("mimeType"));

        let sealed = SealedBody {
            nonce: [0; 12],
            ciphertext: vec![0; 15],
        };
        assert!(matches!(
            codec::from_canonical::<SealedBody>("s", &codec::canonical_of(&sealed), usize::MAX),
            Err(DecodeError::Invalid {
                field: "ciphertext",
                ..
            })
        ));
    }

    #[test]
    fn ids_lengths_and_required_fields() {
        let mut m = capnp::message::Builder::new_default();
        let mut h = m.init_root::<content_capnp::heart_body::Builder<'_>>();
        h.set_post_id(&[1; 31]);
        h.set_reactor(&[2; 32]);
        let r = m
            .get_root_as_reader::<content_capnp::heart_body::Reader<'_>>()
            .unwrap();
        let e = HeartBody::read(r).unwrap_err();
        assert_eq!(
            e,
            DecodeError::BadLength {
                field: "postId",
                expected: 32,
                got: 31
            }
        );
        assert_eq!(e.error_code(), ErrorCode::Malformed);

        let mut m = capnp::message::Builder::new_default();
        m.init_root::<content_capnp::heart_body::Builder<'_>>()
            .set_post_id(&[1; 32]);
        let r = m
            .get_root_as_reader::<content_capnp::heart_body::Reader<'_>>()
            .unwrap();
        assert_eq!(
            HeartBody::read(r).unwrap_err(),
            DecodeError::Missing("reactor")
        );

        let mut m = capnp::message::Builder::new_default();
        m.init_root::<content_capnp::sync_post::Builder<'_>>();
        let r = m
            .get_root_as_reader::<content_capnp::sync_post::Reader<'_>>()
            .unwrap();
        assert_eq!(SyncPost::read(r).unwrap_err(), DecodeError::Missing("post"));

        let mut m = capnp::message::Builder::new_default();
        let mut u = m.init_root::<content_capnp::visibility_update_body::Builder<'_>>();
        u.set_post_id(&[1; 32]);
        u.set_author(&[1; 32]);
        let r = m
            .get_root_as_reader::<content_capnp::visibility_update_body::Reader<'_>>()
            .unwrap();
        assert_eq!(
            VisibilityUpdateBody::read(r).unwrap_err(),
            DecodeError::Missing("visibility")
        );

        // An absent visibility in a SyncPost means public.
        let sp = public_sync_post(&key(1));
        let mut m = capnp::message::Builder::new_default();
        sp.post.write(
            m.init_root::<content_capnp::sync_post::Builder<'_>>()
                .init_post(),
        );
        let r = m
            .get_root_as_reader::<content_capnp::sync_post::Reader<'_>>()
            .unwrap();
        let back = SyncPost::read(r).unwrap();
        assert_eq!(back.visibility, PostVisibility::Public);
        assert!(back.validate(None).is_ok());
    }

    #[test]
    fn header_fof_invariants() {
        let base = PostHeader::new(
            PostId([1; 32]),
            PostingId([2; 32]),
            CommentPolicy::Public,
            1,
        )
        .unwrap();
        let with_pub = PostHeader {
            pub_post: Some([3; 32]),
            ..base.clone()
        };
        assert!(matches!(
            codec::from_canonical::<PostHeader>("h", &codec::canonical_of(&with_pub), usize::MAX),
            Err(DecodeError::Invalid {
                field: "pubPost",
                ..
            })
        ));
        let with_slots = PostHeader {
            wrap_slots: vec![WrapSlot {
                tag: [0; 2],
                sealed: [0; 48],
            }],
            ..base.clone()
        };
        assert!(matches!(
            codec::from_canonical::<PostHeader>("h", &codec::canonical_of(&with_slots), usize::MAX),
            Err(DecodeError::Invalid {
                field: "wrapSlots",
                ..
            })
        ));
        let fof_no_pub = PostHeader {
            comment_policy: CommentPolicy::FriendsOfFriends,
            ..base.clone()
        };
        assert_eq!(
            codec::from_canonical::<PostHeader>("h", &codec::canonical_of(&fof_no_pub), usize::MAX)
                .unwrap_err(),
            DecodeError::Missing("pubPost")
        );
        let many = PostHeader {
            comment_policy: CommentPolicy::FriendsOfFriends,
            pub_post: Some([3; 32]),
            wrap_slots: vec![
                WrapSlot {
                    tag: [1; 2],
                    sealed: [1; 48]
                };
                MAX_WRAP_SLOTS + 1
            ],
            ..base
        };
        let bytes = codec::canonical_of(&many);
        assert!(matches!(
            codec::from_canonical::<PostHeader>("h", &bytes, usize::MAX),
            Err(DecodeError::TooMany {
                field: "wrapSlots",
                ..
            })
        ));
        // The 256 KiB header bound bites first (see the report on the schema).
        assert!(matches!(
            SignedPostHeader::decode(Ok(&bytes), Ok(&[0; 64])),
            Err(DecodeError::TooLong {
                field: "header",
                ..
            })
        ));
        assert!(matches!(
            PostHeader::new_fof(
                PostId([1; 32]),
                PostingId([2; 32]),
                [0; 32],
                &vec![VouchKey::from_bytes([0; 32]); MAX_WRAP_SLOTS + 1],
                &[0; 32],
                0
            ),
            Err(ContentError::TooMany { .. })
        ));
    }

    #[test]
    fn unknown_union_and_enum_are_unknown_variant() {
        // Post.content: discriminant at data byte 8 (u16 index 4).
        let p = Post {
            content: PostContent::Sealed(SealedBody {
                nonce: [1; 12],
                ciphertext: vec![2; 16],
            }),
            ..Post::new_public(PostingId([1; 32]), 5, "", Vec::new())
        };
        let mut bytes = codec::canonical_of(&p);
        assert_eq!(bytes[16], 1);
        bytes[16] = 7;
        let e = codec::from_canonical::<Post>("post", &bytes, MAX_POST_BYTES).unwrap_err();
        assert_eq!(e, DecodeError::UnknownVariant("content"));
        assert_eq!(e.error_code(), ErrorCode::Malformed);

        // PostHeader.commentPolicy: u16 index 0.
        let h = PostHeader::new(
            PostId([1; 32]),
            PostingId([2; 32]),
            CommentPolicy::FollowersOnly,
            9,
        )
        .unwrap();
        let mut bytes = codec::canonical_of(&h);
        assert_eq!(bytes[8], 1);
        bytes[8] = 9;
        assert_eq!(
            codec::from_canonical::<PostHeader>("h", &bytes, MAX_HEADER_BYTES).unwrap_err(),
            DecodeError::UnknownVariant("commentPolicy")
        );

        // PostVisibility union: u16 index 0.
        let v = PostVisibility::Encrypted(EncryptedVisibility {
            ephemeral_key: [1; 32],
            recipients: Vec::new(),
        });
        let mut bytes = codec::canonical_of(&v);
        assert_eq!(bytes[8], 1);
        bytes[8] = 5;
        assert_eq!(
            codec::from_canonical::<PostVisibility>("v", &bytes, MAX_VISIBILITY_BYTES).unwrap_err(),
            DecodeError::UnknownVariant("visibility")
        );
    }

    // ---- large messages --------------------------------------------------

    fn visibility_with(n: usize) -> PostVisibility {
        let recipients = (0..n)
            .map(|i| {
                let mut recipient = [0u8; 32];
                recipient[..8].copy_from_slice(&(i as u64).to_le_bytes());
                WrappedKey {
                    recipient,
                    wrapped: [(i % 251) as u8; 48],
                }
            })
            .collect();
        PostVisibility::Encrypted(EncryptedVisibility {
            ephemeral_key: [7; 32],
            recipients,
        })
    }

    #[test]
    fn large_visibility_multi_segment_canonical_round_trip() {
        let v = visibility_with(2_500);
        let b = codec::build(&v);
        assert!(
            b.get_segments_for_output().len() > 1,
            "builder should have grown past one segment"
        );
        let bytes = codec::canonical_of(&v);
        assert_eq!(bytes.len(), (10 + 12 * 2_500) * 8);
        let back: PostVisibility =
            codec::from_canonical("visibility", &bytes, MAX_VISIBILITY_BYTES).unwrap();
        assert_eq!(back, v);
        assert_eq!(codec::canonical_of(&back), bytes);
        assert_eq!(wire_round_trip(&v), v);
    }

    #[test]
    fn recipient_limit_is_the_256_kib_bound() {
        let author = key(1);
        let max = visibility_with(MAX_RECIPIENTS);
        assert!(codec::canonical_of(&max).len() <= MAX_VISIBILITY_BYTES);
        let upd = VisibilityUpdateBody {
            post_id: PostId([1; 32]),
            author: pid(&author),
            visibility: max,
            updated_at_ms: 1,
        };
        let s = sign_checked(upd, &author).unwrap();
        assert_eq!(wire_round_trip(&s), s);

        let over = visibility_with(MAX_RECIPIENTS + 1);
        assert!(codec::canonical_of(&over).len() > MAX_VISIBILITY_BYTES);
        assert!(matches!(
            codec::from_canonical::<PostVisibility>("v", &codec::canonical_of(&over), usize::MAX),
            Err(DecodeError::TooMany {
                field: "recipients",
                ..
            })
        ));
        assert!(matches!(
            EncryptedVisibility::wrap(
                &Cek::from_bytes([0; 32]),
                &[1; 32],
                &vec![PostingId([0; 32]); MAX_RECIPIENTS + 1]
            ),
            Err(ContentError::TooMany { .. })
        ));
    }

    #[test]
    fn recent_posts_bounded_by_bytes() {
        let author = key(1);
        let posts: Vec<RecentPost> = (0..6_000u64)
            .map(|i| RecentPost {
                post_id: PostId(*blake3::hash(&i.to_le_bytes()).as_bytes()),
                created_at_ms: 1_700_000_000_000 + i,
                hint: if i % 2 == 0 {
                    VisibilityHint::Encrypted
                } else {
                    VisibilityHint::Public
                },
            })
            .collect();
        let mut list = AuthorRecentPosts {
            author: pid(&author),
            seq: 7,
            updated_at_ms: 8,
            posts,
        };
        let too_big = Signed::sign(list.clone(), &author);
        assert!(matches!(
            SignedAuthorRecentPosts::decode(Ok(too_big.bytes()), Ok(too_big.signature())),
            Err(DecodeError::TooLong {
                field: "recent",
                ..
            })
        ));
        assert!(matches!(
            sign_checked(list.clone(), &author),
            Err(ContentError::TooLarge { .. })
        ));
        let dropped = list.trim_to_fit();
        assert!(dropped > 0);
        assert!(list.canonical_len() <= MAX_RECENT_POSTS_BYTES);
        // Minimal: one more entry would not fit.
        assert_eq!(list.posts.len(), (MAX_RECENT_POSTS_BYTES / 8 - 10) / 7);
        let s = sign_checked(list, &author).unwrap();
        let back = wire_round_trip(&s);
        assert_eq!(back.seq(), 7);
        assert_eq!(back.author(), pid(&author));
        assert_eq!(back.updated_at_ms(), 8);
        assert_eq!(back.posts().len(), s.posts().len());
        assert!(back.verify().is_ok());
    }

    #[test]
    fn attachment_blob_check() {
        let a = Attachment::for_blob(b"some bytes", "application/octet-stream", None);
        assert!(a.check_blob(b"some bytes").is_ok());
        assert_eq!(
            a.check_blob(b"other bytes").unwrap_err().error_code(),
            ErrorCode::IdMismatch
        );
        let wrong_size = Attachment { size_bytes: 3, ..a };
        assert_eq!(
            wrong_size
                .check_blob(b"some bytes")
                .unwrap_err()
                .error_code(),
            ErrorCode::Malformed
        );
    }

    // ---- deferred validation ---------------------------------------------

    /// Valid sync posts of every shape (public, with a header, encrypted
    /// with a visibility signature, re-wrapped with an update), then
    /// `mutation` applied: 0 none, 1 post signature, 2 header signature,
    /// 3 header of another post, 4 visibility signature dropped, 5
    /// visibility signature flipped, 6 sealed/visibility mismatch and a bad
    /// post signature (the signature is reported first), 7 update flipped.
    fn shaped_sync_post(shape: u8, mutation: u8) -> SyncPost {
        let author = key(1);
        let mut sp = match shape % 4 {
            0 => public_sync_post(&author),
            1 => {
                let mut sp = public_sync_post(&author);
                let h =
                    PostHeader::new(sp.post_id(), pid(&author), CommentPolicy::Public, 5).unwrap();
                sp.header = Some(Signed::sign(h, &author));
                sp
            }
            2 => encrypted_sync_post().2,
            _ => {
                let (author, readers, mut sp) = encrypted_sync_post();
                let update = rewrap(&author, &sp, &[pid(&readers[0]), pid(&author)], 7, 99);
                sp.apply_update(update).unwrap();
                sp
            }
        };
        let flip = |sig: &[u8; 64]| {
            let mut s = *sig;
            s[3] ^= 0x10;
            s
        };
        match mutation % 8 {
            1 => {
                sp.post =
                    SignedPost::decode(Ok(sp.post.bytes()), Ok(&flip(sp.post.signature()))).unwrap()
            }
            2 => {
                if let Some(h) = &sp.header {
                    sp.header = Some(Signed::from_parts_unchecked(
                        h.body().clone(),
                        h.bytes().to_vec(),
                        flip(h.signature()),
                    ));
                }
            }
            3 => {
                let h = PostHeader::new(PostId([9; 32]), pid(&author), CommentPolicy::Public, 5)
                    .unwrap();
                sp.header = Some(Signed::sign(h, &author));
            }
            4 => sp.visibility_signature = None,
            5 => sp.visibility_signature = sp.visibility_signature.map(|s| flip(&s)),
            6 => {
                sp.post = SignedPost::decode(Ok(sp.post.bytes()), Ok(&flip(sp.post.signature())))
                    .unwrap();
                sp.visibility = if sp.visibility.is_encrypted() {
                    PostVisibility::Public
                } else {
                    encrypted_sync_post().2.visibility
                };
            }
            7 => {
                if let Some(u) = &sp.visibility_update {
                    sp.visibility_update = Some(Signed::from_parts_unchecked(
                        u.body().clone(),
                        u.bytes().to_vec(),
                        flip(u.signature()),
                    ));
                }
            }
            _ => {}
        }
        sp
    }

    /// Deferred validation with the signatures of many posts verified in
    /// one batch gives exactly `validate`'s result for each post, and
    /// finishing without verdicts is `validate`.
    fn deferred_agrees(posts: &[SyncPost], seed: u8) {
        let deferred: Vec<DeferredValidation<'_>> =
            posts.iter().map(|p| p.validate_deferred(None)).collect();
        let items: Vec<crate::sign::BatchItem<'_>> = deferred
            .iter()
            .flat_map(|d| d.signatures().map(|s| s.as_batch_item()))
            .collect();
        let mut verdicts = crate::sign::verify_each(&items, &mut rng(seed)).into_iter();
        for (post, d) in posts.iter().zip(deferred) {
            let n = d.signatures().len();
            let mine: Vec<_> = verdicts.by_ref().take(n).collect();
            assert_eq!(d.finish(mine), post.validate(None));
            assert_eq!(post.validate_deferred(None).finish([]), post.validate(None));
        }
        let all = SyncPost::validate_all(posts, &mut rng(seed));
        let one: Vec<_> = posts.iter().map(|p| p.validate(None)).collect();
        assert_eq!(all, one);
    }

    #[test]
    fn deferred_validation_agrees_on_every_shape_and_mutation() {
        let posts: Vec<SyncPost> = (0..4u8)
            .flat_map(|shape| (0..8u8).map(move |m| shaped_sync_post(shape, m)))
            .collect();
        let results: Vec<_> = posts.iter().map(|p| p.validate(None)).collect();
        assert!(results.iter().filter(|r| r.is_ok()).count() >= 6);
        assert!(results
            .iter()
            .any(|r| matches!(r, Err(IngestError::BadSignature { what: "header", .. }))));
        assert!(results.iter().any(|r| matches!(
            r,
            Err(IngestError::BadSignature {
                what: "visibility",
                ..
            })
        )));
        assert!(results.iter().any(|r| matches!(
            r,
            Err(IngestError::BadSignature {
                what: "visibilityUpdate",
                ..
            })
        )));
        assert!(results
            .iter()
            .any(|r| matches!(r, Err(IngestError::IdMismatch { what: "header", .. }))));
        assert!(results
            .iter()
            .any(|r| matches!(r, Err(IngestError::Malformed { .. }))));
        deferred_agrees(&posts, 1);
        // A good batch and batches of one.
        let good: Vec<SyncPost> = (0..4u8).map(|s| shaped_sync_post(s, 0)).collect();
        deferred_agrees(&good, 2);
        for p in &posts {
            deferred_agrees(std::slice::from_ref(p), 3);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// Random sync posts (mostly failing some check) agree too.
        #[test]
        fn deferred_validation_agrees_on_random_posts(posts in proptest::collection::vec(arb_sync_post(), 1..5)) {
            deferred_agrees(&posts, 4);
        }
    }
}
