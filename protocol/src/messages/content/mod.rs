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

use distsoc_schema::content_capnp;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::common::VisibilityHint;
use super::signed::{Signed, SignedBody};
use crate::codec::{self, len32, Struct};
use crate::envelope::{self, Cek, EnvelopeError, NONCE_LEN, TAG_LEN, WRAPPED_LEN};
use crate::error::{DecodeError, ErrorCode};
use crate::fof::{self, FofError, VouchKey, SEALED_LEN, VOUCH_MAC_LEN};
use crate::ids::{BlobId, CommentHash, PostId, PostingId};
use crate::limits::{MAX_BLOB_BYTES, MAX_RECENT_POSTS_BYTES, MAX_RECIPIENTS, WORD_BYTES};
use crate::sign::{self, Purpose, SignatureError, SigningKey, SIGNATURE_LEN};

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

/// Why a received content object was refused. Maps to the wire error code with
/// [`IngestError::error_code`].
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

impl IngestError {
    /// The wire error code to answer with.
    pub fn error_code(&self) -> ErrorCode {
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

// ---------------------------------------------------------------------------
// Attachment, PostBody, SealedBody, Post
// ---------------------------------------------------------------------------

/// `Attachment`: a media blob referenced by a post.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attachment {
    /// BLAKE3-256 of the blob's bytes.
    pub blob_id: BlobId,
    /// IANA media type (non-empty, at most [`MAX_MIME_TYPE_BYTES`]).
    pub mime_type: String,
    /// Length of the blob (at most [`MAX_ATTACHMENT_SIZE_BYTES`]).
    pub size_bytes: u32,
    /// Original file name, for display (at most [`MAX_ATTACHMENT_NAME_BYTES`]).
    pub name: Option<String>,
}

impl Attachment {
    /// Describes `blob` (computes its id and size).
    pub fn for_blob(blob: &[u8], mime_type: impl Into<String>, name: Option<String>) -> Self {
        Self {
            blob_id: BlobId::of_blob(blob),
            mime_type: mime_type.into(),
            size_bytes: u32::try_from(blob.len()).unwrap_or(u32::MAX),
            name,
        }
    }

    /// Checks a received blob against this attachment: its BLAKE3 must equal
    /// `blob_id` (`idMismatch`) and its length `size_bytes` (`malformed`).
    pub fn check_blob(&self, blob: &[u8]) -> Result<(), IngestError> {
        let got = BlobId::of_blob(blob);
        if got != self.blob_id {
            return Err(IngestError::IdMismatch {
                what: "blob",
                expected: self.blob_id.0,
                got: got.0,
            });
        }
        if blob.len() != self.size_bytes as usize {
            return Err(IngestError::Malformed {
                what: "blob",
                reason: "length differs from sizeBytes",
            });
        }
        Ok(())
    }
}

impl Struct for Attachment {
    type Schema = content_capnp::attachment::Owned;

    fn read(r: content_capnp::attachment::Reader<'_>) -> Result<Self, DecodeError> {
        let size_bytes = r.get_size_bytes();
        if size_bytes as usize > MAX_ATTACHMENT_SIZE_BYTES {
            return Err(DecodeError::TooLong {
                field: "sizeBytes",
                max: MAX_ATTACHMENT_SIZE_BYTES,
                got: size_bytes as usize,
            });
        }
        let mime_type = codec::text("mimeType", r.get_mime_type(), MAX_MIME_TYPE_BYTES)?;
        if mime_type.is_empty() {
            return Err(DecodeError::Missing("mimeType"));
        }
        Ok(Self {
            blob_id: BlobId(codec::id("blobId", r.get_blob_id())?),
            mime_type,
            size_bytes,
            name: opt_text(codec::text(
                "name",
                r.get_name(),
                MAX_ATTACHMENT_NAME_BYTES,
            )?),
        })
    }

    fn write(&self, mut b: content_capnp::attachment::Builder<'_>) {
        b.set_blob_id(self.blob_id.as_bytes());
        b.set_mime_type(self.mime_type.as_str());
        b.set_size_bytes(self.size_bytes);
        if let Some(name) = &self.name {
            b.set_name(name.as_str());
        }
    }
}

/// `PostBody`: the readable part of a post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PostBody {
    /// The post text (at most [`MAX_POST_TEXT_BYTES`]).
    pub text: String,
    /// Media in display order (at most [`MAX_ATTACHMENTS`]).
    pub attachments: Vec<Attachment>,
}

impl Struct for PostBody {
    type Schema = content_capnp::post_body::Owned;

    fn read(r: content_capnp::post_body::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            text: codec::text("text", r.get_text(), MAX_POST_TEXT_BYTES)?,
            attachments: codec::list(
                "attachments",
                r.get_attachments(),
                MAX_ATTACHMENTS,
                Attachment::read,
            )?,
        })
    }

    fn write(&self, mut b: content_capnp::post_body::Builder<'_>) {
        b.set_text(self.text.as_str());
        let mut l = b.init_attachments(len32(&self.attachments));
        for (i, a) in self.attachments.iter().enumerate() {
            a.write(l.reborrow().get(i as u32));
        }
    }
}

/// `SealedBody`: a [`PostBody`] encrypted under the post's CEK.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SealedBody {
    /// The AEAD nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Canonical bytes of a `PostBody`, encrypted, tag appended (at least
    /// 16 bytes).
    pub ciphertext: Vec<u8>,
}

impl Struct for SealedBody {
    type Schema = content_capnp::sealed_body::Owned;

    fn read(r: content_capnp::sealed_body::Reader<'_>) -> Result<Self, DecodeError> {
        let nonce = codec::id("nonce", r.get_nonce())?;
        let ciphertext = codec::nonempty_bytes("ciphertext", r.get_ciphertext(), MAX_POST_BYTES)?;
        if ciphertext.len() < TAG_LEN {
            return Err(DecodeError::Invalid {
                field: "ciphertext",
                reason: "shorter than the 16-byte tag",
            });
        }
        Ok(Self { nonce, ciphertext })
    }

    fn write(&self, mut b: content_capnp::sealed_body::Builder<'_>) {
        b.set_nonce(&self.nonce);
        b.set_ciphertext(&self.ciphertext);
    }
}

/// The `Post.content` union: the body in clear or sealed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PostContent {
    /// A public post's body.
    Plain(PostBody),
    /// An encrypted post's body.
    Sealed(SealedBody),
}

/// `Post`: an immutable post. Its canonical bytes are signed and hashed into
/// the [`PostId`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Post {
    /// The author's posting key, which signs the post.
    pub author: PostingId,
    /// Creation time, ms since epoch.
    pub created_at_ms: u64,
    /// The body, in clear or sealed.
    pub content: PostContent,
    /// The post this one replies to.
    pub reply_to: Option<PostId>,
    /// An earlier post of the same author that this one replaces.
    pub replaces: Option<PostId>,
}

impl Post {
    /// A public post.
    pub fn new_public(
        author: PostingId,
        created_at_ms: u64,
        text: impl Into<String>,
        attachments: Vec<Attachment>,
    ) -> Self {
        Self {
            author,
            created_at_ms,
            content: PostContent::Plain(PostBody {
                text: text.into(),
                attachments,
            }),
            reply_to: None,
            replaces: None,
        }
    }

    /// An encrypted post: the canonical bytes of `body` sealed under `cek`
    /// with `nonce` ([`envelope::seal_content`]). The nonce must be fresh per
    /// CEK.
    pub fn new_sealed(
        author: PostingId,
        created_at_ms: u64,
        body: &PostBody,
        cek: &Cek,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Self, ContentError> {
        // Built in scratch space that is wiped, like the plaintext itself.
        let plain = codec::canonical_secret("body", body, MAX_POST_BYTES).map_err(|e| match e {
            DecodeError::TooLong { field, max, got } => ContentError::TooLarge {
                what: field,
                max,
                got,
            },
            other => ContentError::Decode(other),
        })?;
        let ciphertext = envelope::seal_content(cek, &nonce, &plain)?;
        Ok(Self {
            author,
            created_at_ms,
            content: PostContent::Sealed(SealedBody { nonce, ciphertext }),
            reply_to: None,
            replaces: None,
        })
    }

    /// Whether the content is sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self.content, PostContent::Sealed(_))
    }

    /// The visibility hint matching the content.
    pub fn hint(&self) -> VisibilityHint {
        if self.is_sealed() {
            VisibilityHint::Encrypted
        } else {
            VisibilityHint::Public
        }
    }

    /// The readable body: decrypts sealed content with `cek` and decodes the
    /// canonical `PostBody`; a public post's body is returned as is.
    pub fn open(&self, cek: &Cek) -> Result<PostBody, ContentError> {
        match &self.content {
            PostContent::Plain(body) => Ok(body.clone()),
            PostContent::Sealed(sealed) => {
                let plain = Zeroizing::new(envelope::open_content(
                    cek,
                    &sealed.nonce,
                    &sealed.ciphertext,
                )?);
                Ok(codec::from_canonical_secret::<PostBody>(
                    "body",
                    &plain,
                    MAX_POST_BYTES,
                )?)
            }
        }
    }

    /// Signs the post with the author's key (checks key and size).
    pub fn sign(self, key: &SigningKey) -> Result<SignedPost, ContentError> {
        sign_checked(self, key)
    }
}

impl Struct for Post {
    type Schema = content_capnp::post::Owned;

    fn read(r: content_capnp::post::Reader<'_>) -> Result<Self, DecodeError> {
        use content_capnp::post::content::Which;
        let content = match r
            .get_content()
            .which()
            .map_err(|_| DecodeError::UnknownVariant("content"))?
        {
            Which::Plain(p) => PostContent::Plain(PostBody::read(p?)?),
            Which::Sealed(s) => PostContent::Sealed(SealedBody::read(s?)?),
        };
        Ok(Self {
            author: posting_id("author", r.get_author())?,
            created_at_ms: r.get_created_at_ms(),
            content,
            reply_to: codec::opt_id("replyTo", r.get_reply_to())?.map(PostId),
            replaces: codec::opt_id("replaces", r.get_replaces())?.map(PostId),
        })
    }

    fn write(&self, mut b: content_capnp::post::Builder<'_>) {
        b.set_author(self.author.as_bytes());
        b.set_created_at_ms(self.created_at_ms);
        match &self.content {
            PostContent::Plain(body) => body.write(b.reborrow().init_content().init_plain()),
            PostContent::Sealed(sealed) => sealed.write(b.reborrow().init_content().init_sealed()),
        }
        if let Some(id) = &self.reply_to {
            b.set_reply_to(id.as_bytes());
        }
        if let Some(id) = &self.replaces {
            b.set_replaces(id.as_bytes());
        }
    }
}

impl SignedBody for Post {
    const PURPOSE: Purpose = Purpose::Post;
    const MAX_BYTES: usize = MAX_POST_BYTES;
    const FIELD: &'static str = "post";
    fn signer(&self) -> PostingId {
        self.author
    }
}

crate::signed_carrier!(Post, content_capnp::signed_post::Owned, get_post, set_post);

/// `SignedPost`: a post's canonical bytes and the author's signature.
pub type SignedPost = Signed<Post>;

impl Signed<Post> {
    /// The PostId: BLAKE3-256 of the canonical bytes.
    pub fn post_id(&self) -> PostId {
        PostId::of_canonical(self.bytes())
    }
}

// ---------------------------------------------------------------------------
// Visibility
// ---------------------------------------------------------------------------

impl Struct for WrappedKey {
    type Schema = content_capnp::wrapped_key::Owned;

    fn read(r: content_capnp::wrapped_key::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            recipient: codec::id("recipient", r.get_recipient())?,
            wrapped: codec::id::<WRAPPED_LEN>("wrapped", r.get_wrapped())?,
        })
    }

    fn write(&self, mut b: content_capnp::wrapped_key::Builder<'_>) {
        b.set_recipient(&self.recipient);
        b.set_wrapped(&self.wrapped);
    }
}

/// Reads a `List(WrappedKey)` of at most `max` entries.
pub(crate) fn read_wrapped_keys(
    field: &'static str,
    l: capnp::Result<capnp::struct_list::Reader<'_, content_capnp::wrapped_key::Owned>>,
    max: usize,
) -> Result<Vec<WrappedKey>, DecodeError> {
    codec::list(field, l, max, WrappedKey::read)
}

/// Writes a `List(WrappedKey)`.
pub(crate) fn write_wrapped_keys(
    mut l: capnp::struct_list::Builder<'_, content_capnp::wrapped_key::Owned>,
    keys: &[WrappedKey],
) {
    for (i, k) in keys.iter().enumerate() {
        k.write(l.reborrow().get(i as u32));
    }
}

/// `EncryptedVisibility`: the key envelope of an encrypted post.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncryptedVisibility {
    /// The envelope's ephemeral X25519 public key.
    pub ephemeral_key: [u8; 32],
    /// One wrapped CEK per recipient (at most [`MAX_RECIPIENTS`], which keeps
    /// the canonical `PostVisibility` within 256 KiB).
    pub recipients: Vec<WrappedKey>,
}

impl EncryptedVisibility {
    /// Wraps `cek` for `recipients` with the ephemeral secret `eph_secret`
    /// (32 fresh random bytes per envelope).
    pub fn wrap(
        cek: &Cek,
        eph_secret: &[u8; 32],
        recipients: &[PostingId],
    ) -> Result<Self, ContentError> {
        if recipients.len() > MAX_RECIPIENTS {
            return Err(ContentError::TooMany {
                what: "recipients",
                max: MAX_RECIPIENTS,
                got: recipients.len(),
            });
        }
        let ids: Vec<[u8; 32]> = recipients.iter().map(|r| r.0).collect();
        let (ephemeral_key, recipients) = envelope::wrap_for_recipients(cek, eph_secret, &ids)?;
        Ok(Self {
            ephemeral_key,
            recipients,
        })
    }

    /// Recovers the CEK with our ed25519 seed (or a group's seed).
    pub fn unwrap_cek(&self, my_seed: &[u8; 32]) -> Result<Cek, ContentError> {
        Ok(envelope::unwrap_cek(
            my_seed,
            &self.ephemeral_key,
            &self.recipients,
        )?)
    }

    /// Whether `id` has a wrapped key here.
    pub fn is_recipient(&self, id: &PostingId) -> bool {
        self.recipients.iter().any(|w| w.recipient == id.0)
    }
}

impl Struct for EncryptedVisibility {
    type Schema = content_capnp::encrypted_visibility::Owned;

    fn read(r: content_capnp::encrypted_visibility::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            ephemeral_key: codec::id("ephemeralKey", r.get_ephemeral_key())?,
            recipients: read_wrapped_keys("recipients", r.get_recipients(), MAX_RECIPIENTS)?,
        })
    }

    fn write(&self, mut b: content_capnp::encrypted_visibility::Builder<'_>) {
        b.set_ephemeral_key(&self.ephemeral_key);
        write_wrapped_keys(b.init_recipients(len32(&self.recipients)), &self.recipients);
    }
}

/// `PostVisibility`: who can read a post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum PostVisibility {
    /// Anyone; the content is plain.
    #[default]
    Public,
    /// Holders of a wrapped key; the content is sealed.
    Encrypted(EncryptedVisibility),
}

impl PostVisibility {
    /// Whether the visibility is encrypted.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, PostVisibility::Encrypted(_))
    }

    /// The matching visibility hint.
    pub fn hint(&self) -> VisibilityHint {
        if self.is_encrypted() {
            VisibilityHint::Encrypted
        } else {
            VisibilityHint::Public
        }
    }

    /// The wrapped keys (empty for public).
    pub fn recipients(&self) -> &[WrappedKey] {
        match self {
            PostVisibility::Public => &[],
            PostVisibility::Encrypted(e) => &e.recipients,
        }
    }

    /// What a `SyncPost.visibilitySignature` signs:
    /// `BLAKE3-256(postId ‖ canonical bytes of this visibility)`.
    pub fn signing_digest(&self, post_id: &PostId) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(post_id.as_bytes());
        h.update(&codec::canonical_of(self));
        *h.finalize().as_bytes()
    }

    /// The author's `visibilitySignature` for this visibility of `post_id`
    /// (purpose `post-visibility`). Only for the visibility chosen at
    /// creation; a later change travels as a [`SignedVisibilityUpdate`].
    pub fn sign_for(&self, post_id: &PostId, author_key: &SigningKey) -> [u8; SIGNATURE_LEN] {
        author_key.sign(Purpose::PostVisibility, &self.signing_digest(post_id))
    }

    /// Verifies a `visibilitySignature` by `author` (purpose
    /// `post-visibility`).
    pub fn verify_for(
        &self,
        post_id: &PostId,
        author: &PostingId,
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), SignatureError> {
        sign::verify(
            &author.0,
            Purpose::PostVisibility,
            &self.signing_digest(post_id),
            signature,
        )
    }
}

impl Struct for PostVisibility {
    type Schema = content_capnp::post_visibility::Owned;

    fn read(r: content_capnp::post_visibility::Reader<'_>) -> Result<Self, DecodeError> {
        use content_capnp::post_visibility::Which;
        match r
            .which()
            .map_err(|_| DecodeError::UnknownVariant("visibility"))?
        {
            Which::Public(()) => Ok(PostVisibility::Public),
            Which::Encrypted(e) => Ok(PostVisibility::Encrypted(EncryptedVisibility::read(e?)?)),
        }
    }

    fn write(&self, mut b: content_capnp::post_visibility::Builder<'_>) {
        match self {
            PostVisibility::Public => b.set_public(()),
            PostVisibility::Encrypted(e) => e.write(b.init_encrypted()),
        }
    }
}

/// Seals `body` as a new encrypted post by `author_key` for `recipients`
/// (1..=[`MAX_RECIPIENTS`] posting ids, node ids or group ids; include your
/// own id to read your post back). Draws, in this order, the CEK (32 bytes),
/// the content nonce (12) and the ephemeral secret (32) from `rng`.
///
/// Returns the signed post and its visibility; sign the visibility with
/// [`PostVisibility::sign_for`] (or build the [`SyncPost`] with
/// [`SyncPost::new`]).
pub fn seal_post<R: RngCore + CryptoRng + ?Sized>(
    author_key: &SigningKey,
    created_at_ms: u64,
    body: &PostBody,
    recipients: &[PostingId],
    rng: &mut R,
) -> Result<(SignedPost, PostVisibility), ContentError> {
    let cek = Cek::generate(rng);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut eph = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(eph.as_mut());
    let visibility = EncryptedVisibility::wrap(&cek, &eph, recipients)?;
    let post = Post::new_sealed(
        PostingId(author_key.public()),
        created_at_ms,
        body,
        &cek,
        nonce,
    )?;
    Ok((
        post.sign(author_key)?,
        PostVisibility::Encrypted(visibility),
    ))
}

/// Reads a post with our seed (or a group seed for a post to a group): a
/// public post's body as is, an encrypted one's after unwrapping the CEK
/// addressed to us. Content and visibility must agree.
pub fn open_post(
    my_seed: &[u8; 32],
    post: &SignedPost,
    visibility: &PostVisibility,
) -> Result<PostBody, ContentError> {
    match (&post.body().content, visibility) {
        (PostContent::Plain(body), PostVisibility::Public) => Ok(body.clone()),
        (PostContent::Sealed(_), PostVisibility::Encrypted(e)) => {
            post.body().open(&e.unwrap_cek(my_seed)?)
        }
        _ => Err(ContentError::VisibilityMismatch),
    }
}

// ---------------------------------------------------------------------------
// Comment policy, wrap slots, headers
// ---------------------------------------------------------------------------

/// `CommentPolicy`: who may comment on a post.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CommentPolicy {
    /// Anyone.
    #[default]
    Public,
    /// Only people the author follows (enforced by the author's node).
    FollowersOnly,
    /// Nobody.
    None,
    /// Holders of a vouch key that opens one of the header's wrap slots.
    FriendsOfFriends,
}

impl CommentPolicy {
    /// From the generated enum.
    pub fn from_wire(
        r: Result<content_capnp::CommentPolicy, capnp::NotInSchema>,
    ) -> Result<Self, DecodeError> {
        use content_capnp::CommentPolicy as W;
        match r {
            Ok(W::Public) => Ok(Self::Public),
            Ok(W::FollowersOnly) => Ok(Self::FollowersOnly),
            Ok(W::None) => Ok(Self::None),
            Ok(W::FriendsOfFriends) => Ok(Self::FriendsOfFriends),
            Err(_) => Err(DecodeError::UnknownVariant("commentPolicy")),
        }
    }

    /// To the generated enum.
    pub fn to_wire(self) -> content_capnp::CommentPolicy {
        use content_capnp::CommentPolicy as W;
        match self {
            Self::Public => W::Public,
            Self::FollowersOnly => W::FollowersOnly,
            Self::None => W::None,
            Self::FriendsOfFriends => W::FriendsOfFriends,
        }
    }
}

impl Struct for WrapSlot {
    type Schema = content_capnp::wrap_slot::Owned;

    fn read(r: content_capnp::wrap_slot::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            tag: codec::id::<{ fof::TAG_LEN }>("tag", r.get_tag())?,
            sealed: codec::id::<SEALED_LEN>("sealed", r.get_sealed())?,
        })
    }

    fn write(&self, mut b: content_capnp::wrap_slot::Builder<'_>) {
        b.set_tag(&self.tag);
        b.set_sealed(&self.sealed);
    }
}

/// `PostHeader`: mutable, author-signed metadata of one post.
///
/// Invariant (checked on decode): `pub_post` is present exactly when the policy
/// is [`CommentPolicy::FriendsOfFriends`], and `wrap_slots` is empty otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PostHeader {
    /// The post this header belongs to.
    pub post_id: PostId,
    /// The post's author, who signs the header.
    pub author: PostingId,
    /// Who may comment.
    pub comment_policy: CommentPolicy,
    /// For friends-of-friends: the per-post FoF public key.
    pub pub_post: Option<[u8; 32]>,
    /// For friends-of-friends: one slot per vouch key (at most
    /// [`MAX_WRAP_SLOTS`]).
    pub wrap_slots: Vec<WrapSlot>,
    /// When the author produced this header, ms since epoch.
    pub updated_at_ms: u64,
}

impl PostHeader {
    /// A header with a policy other than friends-of-friends (use
    /// [`PostHeader::new_fof`] for that one).
    pub fn new(
        post_id: PostId,
        author: PostingId,
        comment_policy: CommentPolicy,
        updated_at_ms: u64,
    ) -> Result<Self, ContentError> {
        if comment_policy == CommentPolicy::FriendsOfFriends {
            return Err(ContentError::InvalidArgument(
                "friendsOfFriends headers are built with new_fof",
            ));
        }
        Ok(Self {
            post_id,
            author,
            comment_policy,
            pub_post: None,
            wrap_slots: Vec::new(),
            updated_at_ms,
        })
    }

    /// A friends-of-friends header: the per-post key pair (`pub_post`,
    /// `priv_seed`) and one wrap slot per vouch key ([`fof::make_slots`]).
    /// Shuffle `vouch_keys` first if their order should not leak.
    pub fn new_fof(
        post_id: PostId,
        author: PostingId,
        pub_post: [u8; 32],
        vouch_keys: &[VouchKey],
        priv_seed: &[u8; 32],
        updated_at_ms: u64,
    ) -> Result<Self, ContentError> {
        if vouch_keys.len() > MAX_WRAP_SLOTS {
            return Err(ContentError::TooMany {
                what: "wrapSlots",
                max: MAX_WRAP_SLOTS,
                got: vouch_keys.len(),
            });
        }
        let wrap_slots = fof::make_slots(priv_seed, &pub_post, vouch_keys)?;
        Ok(Self {
            post_id,
            author,
            comment_policy: CommentPolicy::FriendsOfFriends,
            pub_post: Some(pub_post),
            wrap_slots,
            updated_at_ms,
        })
    }

    /// The FoF public key, if the policy is friends-of-friends.
    pub fn fof_pub_post(&self) -> Option<&[u8; 32]> {
        match self.comment_policy {
            CommentPolicy::FriendsOfFriends => self.pub_post.as_ref(),
            _ => None,
        }
    }

    /// Tries our vouch keys against the wrap slots ([`fof::open_slots`]):
    /// the index of the key that worked and `priv_post`'s seed, or `None`.
    pub fn open_fof(&self, my_vouch_keys: &[VouchKey]) -> Option<(usize, Zeroizing<[u8; 32]>)> {
        let pub_post = self.fof_pub_post()?;
        fof::open_slots(my_vouch_keys, pub_post, &self.wrap_slots)
    }

    /// Signs the header with the author's key (checks key and size).
    pub fn sign(self, key: &SigningKey) -> Result<SignedPostHeader, ContentError> {
        sign_checked(self, key)
    }
}

impl Struct for PostHeader {
    type Schema = content_capnp::post_header::Owned;

    fn read(r: content_capnp::post_header::Reader<'_>) -> Result<Self, DecodeError> {
        let comment_policy = CommentPolicy::from_wire(r.get_comment_policy())?;
        let pub_post = codec::opt_id::<32>("pubPost", r.get_pub_post())?;
        let wrap_slots = codec::list(
            "wrapSlots",
            r.get_wrap_slots(),
            MAX_WRAP_SLOTS,
            WrapSlot::read,
        )?;
        if comment_policy == CommentPolicy::FriendsOfFriends {
            if pub_post.is_none() {
                return Err(DecodeError::Missing("pubPost"));
            }
        } else if pub_post.is_some() {
            return Err(DecodeError::Invalid {
                field: "pubPost",
                reason: "only allowed for friendsOfFriends",
            });
        } else if !wrap_slots.is_empty() {
            return Err(DecodeError::Invalid {
                field: "wrapSlots",
                reason: "only allowed for friendsOfFriends",
            });
        }
        Ok(Self {
            post_id: post_id("postId", r.get_post_id())?,
            author: posting_id("author", r.get_author())?,
            comment_policy,
            pub_post,
            wrap_slots,
            updated_at_ms: r.get_updated_at_ms(),
        })
    }

    fn write(&self, mut b: content_capnp::post_header::Builder<'_>) {
        b.set_post_id(self.post_id.as_bytes());
        b.set_author(self.author.as_bytes());
        b.set_comment_policy(self.comment_policy.to_wire());
        if let Some(p) = &self.pub_post {
            b.set_pub_post(p);
        }
        let mut l = b.reborrow().init_wrap_slots(len32(&self.wrap_slots));
        for (i, s) in self.wrap_slots.iter().enumerate() {
            s.write(l.reborrow().get(i as u32));
        }
        b.set_updated_at_ms(self.updated_at_ms);
    }
}

impl SignedBody for PostHeader {
    const PURPOSE: Purpose = Purpose::PostHeader;
    const MAX_BYTES: usize = MAX_HEADER_BYTES;
    const FIELD: &'static str = "header";
    fn signer(&self) -> PostingId {
        self.author
    }
}

crate::signed_carrier!(
    PostHeader,
    content_capnp::signed_post_header::Owned,
    get_header,
    set_header
);

/// `SignedPostHeader`: a post header and the author's signature.
pub type SignedPostHeader = Signed<PostHeader>;

impl Signed<PostHeader> {
    /// Checks that this header belongs to the post `post_id` by `author`
    /// (`idMismatch`, `unauthorized`) and that its signature verifies
    /// (`badSignature`).
    pub fn validate_for(&self, post_id: &PostId, author: &PostingId) -> Result<(), IngestError> {
        let h = self.body();
        if h.post_id != *post_id {
            return Err(IngestError::IdMismatch {
                what: "header",
                expected: post_id.0,
                got: h.post_id.0,
            });
        }
        if h.author != *author {
            return Err(IngestError::Unauthorized {
                what: "header",
                reason: "not signed by the post's author",
            });
        }
        self.verify().map_err(bad_sig("header"))
    }
}

// ---------------------------------------------------------------------------
// SyncPost
// ---------------------------------------------------------------------------

/// `SyncPost`: a post with the metadata needed to store and read it.
///
/// The visibility is authenticated by the author in one of two ways: by
/// `visibility_signature` (the visibility chosen at creation, purpose
/// `post-visibility`), or, once the author changed it ("sync access list"), by
/// `visibility_update`, whose visibility `visibility` must equal. A relay that
/// receives an update applies it with [`SyncPost::apply_update`] and keeps
/// relaying the post with the update attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPost {
    /// The immutable post.
    pub post: SignedPost,
    /// Current visibility (absent on the wire = public).
    pub visibility: PostVisibility,
    /// Current header, if the author published one.
    pub header: Option<SignedPostHeader>,
    /// The author's signature over the visibility chosen at creation (see
    /// [`PostVisibility::signing_digest`]). Required for an encrypted post
    /// without `visibility_update`; ignored when `visibility_update` is
    /// present.
    pub visibility_signature: Option<[u8; SIGNATURE_LEN]>,
    /// The newest visibility update held, if the visibility changed after
    /// creation. `visibility` then equals its visibility.
    pub visibility_update: Option<SignedVisibilityUpdate>,
}

impl SyncPost {
    /// Assembles a sync post as its author: signs the visibility when it is
    /// encrypted.
    pub fn new(
        author_key: &SigningKey,
        post: SignedPost,
        visibility: PostVisibility,
        header: Option<SignedPostHeader>,
    ) -> Self {
        let visibility_signature = visibility
            .is_encrypted()
            .then(|| visibility.sign_for(&post.post_id(), author_key));
        Self {
            post,
            visibility,
            header,
            visibility_signature,
            visibility_update: None,
        }
    }

    /// The post's id.
    pub fn post_id(&self) -> PostId {
        self.post.post_id()
    }

    /// Validates a received sync post and returns its id:
    ///
    /// 1. the id equals `expected_id`, if given (`idMismatch`);
    /// 2. the post's signature verifies (`badSignature`);
    /// 3. the content is sealed iff the visibility is encrypted (`malformed`);
    /// 4. the visibility is the author's:
    ///    - with a `visibilityUpdate`: the update names this post
    ///      (`idMismatch`), is by the post's author (`unauthorized`), agrees
    ///      with the content (`malformed`), its visibility has the same
    ///      canonical bytes as `visibility` (`malformed`) and its signature
    ///      verifies (`badSignature`); `visibilitySignature` is then ignored;
    ///    - without one: an encrypted post carries a `visibilitySignature`
    ///      (`malformed`), and any `visibilitySignature` present verifies by
    ///      the author (`badSignature`);
    /// 5. the header, if any, is for this post id (`idMismatch`), by this
    ///    author (`unauthorized`) and verifies (`badSignature`).
    pub fn validate(&self, expected_id: Option<PostId>) -> Result<PostId, IngestError> {
        let id = self.post.post_id();
        if let Some(expected) = expected_id {
            if expected != id {
                return Err(IngestError::IdMismatch {
                    what: "post",
                    expected: expected.0,
                    got: id.0,
                });
            }
        }
        self.post.verify().map_err(bad_sig("post"))?;
        let post = self.post.body();
        if post.is_sealed() != self.visibility.is_encrypted() {
            return Err(IngestError::Malformed {
                what: "syncPost",
                reason: "content must be sealed exactly when the visibility is encrypted",
            });
        }
        match (&self.visibility_update, &self.visibility_signature) {
            (Some(update), _) => {
                let body = update.body();
                body.applies_to(&self.post)?;
                if codec::canonical_of(&body.visibility) != codec::canonical_of(&self.visibility) {
                    return Err(IngestError::Malformed {
                        what: "visibility",
                        reason: "must equal the visibility of the visibilityUpdate",
                    });
                }
                update.verify().map_err(bad_sig("visibilityUpdate"))?;
            }
            (None, Some(sig)) => self
                .visibility
                .verify_for(&id, &post.author, sig)
                .map_err(bad_sig("visibility"))?,
            (None, None) if self.visibility.is_encrypted() => {
                return Err(IngestError::Malformed {
                    what: "visibilitySignature",
                    reason: "an encrypted post needs a visibilitySignature or a visibilityUpdate",
                })
            }
            (None, None) => {}
        }
        if let Some(header) = &self.header {
            header.validate_for(&id, &post.author)?;
        }
        Ok(id)
    }

    /// Applies a received visibility update to this (already validated) post,
    /// as a relay does before passing the post on:
    ///
    /// 1. the update names this post (`idMismatch`), is by its author
    ///    (`unauthorized`), agrees with the content (`malformed`) and its
    ///    signature verifies (`badSignature`);
    /// 2. it is not older than the update held (`stale`). An update with the
    ///    same `updatedAtMs` as the held one changes nothing: `Ok` if it is the
    ///    same update, `stale` otherwise (the first one seen is kept).
    ///
    /// On success `visibility` becomes the update's visibility, the update is
    /// stored in `visibility_update`, and `visibility_signature` (which signs
    /// the creation-time visibility and no longer matches) is cleared. On
    /// error nothing changes.
    pub fn apply_update(&mut self, update: SignedVisibilityUpdate) -> Result<(), IngestError> {
        update.validate_for(&self.post)?;
        if let Some(held) = &self.visibility_update {
            let (held_ms, got_ms) = (held.body().updated_at_ms, update.body().updated_at_ms);
            if got_ms == held_ms && held.bytes() == update.bytes() {
                return Ok(());
            }
            if got_ms <= held_ms {
                return Err(IngestError::Stale {
                    what: "visibilityUpdate",
                    held: held_ms,
                    got: got_ms,
                });
            }
        }
        self.visibility = update.body().visibility.clone();
        self.visibility_signature = None;
        self.visibility_update = Some(update);
        Ok(())
    }
}

impl Struct for SyncPost {
    type Schema = content_capnp::sync_post::Owned;

    fn read(r: content_capnp::sync_post::Reader<'_>) -> Result<Self, DecodeError> {
        if !r.has_post() {
            return Err(DecodeError::Missing("post"));
        }
        Ok(Self {
            post: SignedPost::read(r.get_post()?)?,
            visibility: if r.has_visibility() {
                PostVisibility::read(r.get_visibility()?)?
            } else {
                PostVisibility::Public
            },
            header: if r.has_header() {
                Some(SignedPostHeader::read(r.get_header()?)?)
            } else {
                None
            },
            visibility_signature: codec::opt_id(
                "visibilitySignature",
                r.get_visibility_signature(),
            )?,
            visibility_update: if r.has_visibility_update() {
                Some(SignedVisibilityUpdate::read(r.get_visibility_update()?)?)
            } else {
                None
            },
        })
    }

    fn write(&self, mut b: content_capnp::sync_post::Builder<'_>) {
        self.post.write(b.reborrow().init_post());
        self.visibility.write(b.reborrow().init_visibility());
        if let Some(h) = &self.header {
            h.write(b.reborrow().init_header());
        }
        if let Some(sig) = &self.visibility_signature {
            b.set_visibility_signature(sig);
        }
        if let Some(u) = &self.visibility_update {
            u.write(b.reborrow().init_visibility_update());
        }
    }
}

// ---------------------------------------------------------------------------
// Comments
// ---------------------------------------------------------------------------

/// `CommentBody`: the signed part of a comment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommentBody {
    /// The post commented on.
    pub parent_post_id: PostId,
    /// The commenter's posting key.
    pub author: PostingId,
    /// When the comment was written, ms since epoch.
    pub created_at_ms: u64,
    /// The comment text (at most [`MAX_COMMENT_TEXT_BYTES`]).
    pub text: String,
    /// The comment this one answers.
    pub reply_to: Option<CommentHash>,
}

impl Struct for CommentBody {
    type Schema = content_capnp::comment_body::Owned;

    fn read(r: content_capnp::comment_body::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            parent_post_id: post_id("parentPostId", r.get_parent_post_id())?,
            author: posting_id("author", r.get_author())?,
            created_at_ms: r.get_created_at_ms(),
            text: codec::text("text", r.get_text(), MAX_COMMENT_TEXT_BYTES)?,
            reply_to: codec::opt_id("replyTo", r.get_reply_to())?.map(CommentHash),
        })
    }

    fn write(&self, mut b: content_capnp::comment_body::Builder<'_>) {
        b.set_parent_post_id(self.parent_post_id.as_bytes());
        b.set_author(self.author.as_bytes());
        b.set_created_at_ms(self.created_at_ms);
        b.set_text(self.text.as_str());
        if let Some(h) = &self.reply_to {
            b.set_reply_to(h.as_bytes());
        }
    }
}

impl SignedBody for CommentBody {
    const PURPOSE: Purpose = Purpose::Comment;
    const MAX_BYTES: usize = MAX_COMMENT_BODY_BYTES;
    const FIELD: &'static str = "body";
    fn signer(&self) -> PostingId {
        self.author
    }
}

/// How a comment fares against its post's header (filter-at-render).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommentVerdict {
    /// Show it.
    Accepted,
    /// Keep and propagate it, but do not show it: the post is
    /// friends-of-friends and the comment's `groupSig` is missing or does not
    /// verify.
    Unverified,
    /// Drop it: forged signature, wrong post, or comments are off.
    Invalid,
}

/// `InlineComment`: a signed comment body plus the friend-of-friend proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineComment {
    /// The body and the commenter's signature.
    pub comment: Signed<CommentBody>,
    /// For FoF posts: signature by the per-post key over the comment hash.
    pub group_sig: Option<[u8; SIGNATURE_LEN]>,
    /// For FoF posts: which vouch chain the commenter used
    /// ([`fof::vouch_mac`]).
    pub vouch_mac: Option<[u8; VOUCH_MAC_LEN]>,
}

impl InlineComment {
    /// Signs `body` with the commenter's key. For a friends-of-friends post,
    /// pass `(priv_post seed, the vouch key that opened the slot, pub_post)`
    /// (see [`PostHeader::open_fof`]) to add `groupSig` and `vouchMac`.
    pub fn new(
        commenter_key: &SigningKey,
        body: CommentBody,
        fof: Option<(&[u8; 32], &VouchKey, &[u8; 32])>,
    ) -> Result<Self, ContentError> {
        let comment = sign_checked(body, commenter_key)?;
        let hash = CommentHash::of_canonical(comment.bytes());
        let (group_sig, vouch_mac) = match fof {
            None => (None, None),
            Some((priv_seed, v, pub_post)) => {
                if SigningKey::from_seed(priv_seed).public() != *pub_post {
                    return Err(FofError::KeyMismatch.into());
                }
                (
                    Some(fof::group_sig(priv_seed, &hash.0)),
                    Some(fof::vouch_mac(v, pub_post, &hash.0)),
                )
            }
        };
        Ok(Self {
            comment,
            group_sig,
            vouch_mac,
        })
    }

    /// The validated body.
    pub fn body(&self) -> &CommentBody {
        self.comment.body()
    }

    /// The comment hash: BLAKE3-256 of the body's canonical bytes.
    pub fn comment_hash(&self) -> CommentHash {
        CommentHash::of_canonical(self.comment.bytes())
    }

    /// Judges the comment against its post's (already validated) header;
    /// `None` means the author published no header (public comments).
    ///
    /// - forged commenter signature, a header of another post, or policy
    ///   `none` → [`CommentVerdict::Invalid`];
    /// - `public` and `followersOnly` (enforced by the author's node) →
    ///   [`CommentVerdict::Accepted`];
    /// - `friendsOfFriends`: accepted if `groupSig` verifies against
    ///   `pubPost` (or the commenter is the post's author), otherwise
    ///   [`CommentVerdict::Unverified`].
    pub fn check(&self, header: Option<&PostHeader>) -> CommentVerdict {
        if self.comment.verify().is_err() {
            return CommentVerdict::Invalid;
        }
        let Some(h) = header else {
            return CommentVerdict::Accepted;
        };
        let body = self.body();
        if h.post_id != body.parent_post_id {
            return CommentVerdict::Invalid;
        }
        match h.comment_policy {
            CommentPolicy::Public | CommentPolicy::FollowersOnly => CommentVerdict::Accepted,
            CommentPolicy::None => CommentVerdict::Invalid,
            CommentPolicy::FriendsOfFriends => {
                if body.author == h.author {
                    return CommentVerdict::Accepted;
                }
                match (h.fof_pub_post(), &self.group_sig) {
                    (Some(pub_post), Some(sig))
                        if fof::verify_group_sig(pub_post, &self.comment_hash().0, sig).is_ok() =>
                    {
                        CommentVerdict::Accepted
                    }
                    _ => CommentVerdict::Unverified,
                }
            }
        }
    }

    /// Author-strict mode: [`check`](Self::check) accepts the comment and, on
    /// a friends-of-friends post, its `vouchMac` matches one of the vouch keys
    /// the author issued ([`fof::check_vouch_mac`]). The author's own comments
    /// need no vouch.
    pub fn check_strict(
        &self,
        header: Option<&PostHeader>,
        author_vouch_keys: &[VouchKey],
    ) -> bool {
        if self.check(header) != CommentVerdict::Accepted {
            return false;
        }
        let Some(h) = header else {
            return true;
        };
        if h.comment_policy != CommentPolicy::FriendsOfFriends || self.body().author == h.author {
            return true;
        }
        match (h.fof_pub_post(), &self.vouch_mac) {
            (Some(pub_post), Some(mac)) => {
                fof::check_vouch_mac(author_vouch_keys, pub_post, &self.comment_hash().0, mac)
                    .is_some()
            }
            _ => false,
        }
    }
}

impl Struct for InlineComment {
    type Schema = content_capnp::inline_comment::Owned;

    fn read(r: content_capnp::inline_comment::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            comment: Signed::<CommentBody>::decode(r.get_body(), r.get_signature())?,
            group_sig: codec::opt_id("groupSig", r.get_group_sig())?,
            vouch_mac: codec::opt_id("vouchMac", r.get_vouch_mac())?,
        })
    }

    fn write(&self, mut b: content_capnp::inline_comment::Builder<'_>) {
        b.set_body(self.comment.bytes());
        b.set_signature(self.comment.signature());
        if let Some(s) = &self.group_sig {
            b.set_group_sig(s);
        }
        if let Some(m) = &self.vouch_mac {
            b.set_vouch_mac(m);
        }
    }
}

// ---------------------------------------------------------------------------
// Delete records and visibility updates
// ---------------------------------------------------------------------------

/// `DeleteRecordBody`: an author's request that everyone delete a post.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeleteRecordBody {
    /// The post to delete.
    pub post_id: PostId,
    /// The post's author, who signs the record.
    pub author: PostingId,
    /// When the delete was issued, ms since epoch.
    pub deleted_at_ms: u64,
    /// The post replacing the deleted one (re-encrypt revocation).
    pub replaced_by: Option<PostId>,
}

impl DeleteRecordBody {
    /// Checks that the record targets `post` (`idMismatch`) and comes from its
    /// author (`unauthorized`). Does not verify the record's signature (the
    /// signed record's `validate_for` does both).
    pub fn applies_to(&self, post: &SignedPost) -> Result<(), IngestError> {
        let id = post.post_id();
        if self.post_id != id {
            return Err(IngestError::IdMismatch {
                what: "deleteRecord",
                expected: id.0,
                got: self.post_id.0,
            });
        }
        if self.author != post.body().author {
            return Err(IngestError::Unauthorized {
                what: "deleteRecord",
                reason: "not the post's author",
            });
        }
        Ok(())
    }
}

impl Struct for DeleteRecordBody {
    type Schema = content_capnp::delete_record_body::Owned;

    fn read(r: content_capnp::delete_record_body::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            post_id: post_id("postId", r.get_post_id())?,
            author: posting_id("author", r.get_author())?,
            deleted_at_ms: r.get_deleted_at_ms(),
            replaced_by: codec::opt_id("replacedBy", r.get_replaced_by())?.map(PostId),
        })
    }

    fn write(&self, mut b: content_capnp::delete_record_body::Builder<'_>) {
        b.set_post_id(self.post_id.as_bytes());
        b.set_author(self.author.as_bytes());
        b.set_deleted_at_ms(self.deleted_at_ms);
        if let Some(id) = &self.replaced_by {
            b.set_replaced_by(id.as_bytes());
        }
    }
}

impl SignedBody for DeleteRecordBody {
    const PURPOSE: Purpose = Purpose::DeleteRecord;
    const MAX_BYTES: usize = MAX_DELETE_RECORD_BYTES;
    const FIELD: &'static str = "record";
    fn signer(&self) -> PostingId {
        self.author
    }
}

crate::signed_carrier!(
    DeleteRecordBody,
    content_capnp::signed_delete_record::Owned,
    get_record,
    set_record
);

/// `SignedDeleteRecord`: a delete record and the author's signature.
pub type SignedDeleteRecord = Signed<DeleteRecordBody>;

impl Signed<DeleteRecordBody> {
    /// [`DeleteRecordBody::applies_to`], then verifies the signature
    /// (`badSignature`).
    pub fn validate_for(&self, post: &SignedPost) -> Result<(), IngestError> {
        self.body().applies_to(post)?;
        self.verify().map_err(bad_sig("deleteRecord"))
    }
}

/// `VisibilityUpdateBody`: new visibility for an existing post.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VisibilityUpdateBody {
    /// The post whose visibility changes.
    pub post_id: PostId,
    /// The post's author, who signs the update.
    pub author: PostingId,
    /// The complete new visibility.
    pub visibility: PostVisibility,
    /// When the change was made, ms since epoch.
    pub updated_at_ms: u64,
}

impl VisibilityUpdateBody {
    /// Checks that the update targets `post` (`idMismatch`), comes from its
    /// author (`unauthorized`) and keeps visibility and content consistent:
    /// encrypted exactly when the content is sealed (`malformed`). Does not
    /// verify the update's signature.
    pub fn applies_to(&self, post: &SignedPost) -> Result<(), IngestError> {
        let id = post.post_id();
        if self.post_id != id {
            return Err(IngestError::IdMismatch {
                what: "visibilityUpdate",
                expected: id.0,
                got: self.post_id.0,
            });
        }
        if self.author != post.body().author {
            return Err(IngestError::Unauthorized {
                what: "visibilityUpdate",
                reason: "not the post's author",
            });
        }
        if self.visibility.is_encrypted() != post.body().is_sealed() {
            return Err(IngestError::Malformed {
                what: "visibilityUpdate",
                reason: "visibility must be encrypted exactly when the content is sealed",
            });
        }
        Ok(())
    }
}

impl Struct for VisibilityUpdateBody {
    type Schema = content_capnp::visibility_update_body::Owned;

    fn read(r: content_capnp::visibility_update_body::Reader<'_>) -> Result<Self, DecodeError> {
        if !r.has_visibility() {
            return Err(DecodeError::Missing("visibility"));
        }
        Ok(Self {
            post_id: post_id("postId", r.get_post_id())?,
            author: posting_id("author", r.get_author())?,
            visibility: PostVisibility::read(r.get_visibility()?)?,
            updated_at_ms: r.get_updated_at_ms(),
        })
    }

    fn write(&self, mut b: content_capnp::visibility_update_body::Builder<'_>) {
        b.set_post_id(self.post_id.as_bytes());
        b.set_author(self.author.as_bytes());
        self.visibility.write(b.reborrow().init_visibility());
        b.set_updated_at_ms(self.updated_at_ms);
    }
}

impl SignedBody for VisibilityUpdateBody {
    const PURPOSE: Purpose = Purpose::VisibilityUpdate;
    const MAX_BYTES: usize = MAX_VISIBILITY_UPDATE_BYTES;
    const FIELD: &'static str = "update";
    fn signer(&self) -> PostingId {
        self.author
    }
}

crate::signed_carrier!(
    VisibilityUpdateBody,
    content_capnp::signed_visibility_update::Owned,
    get_update,
    set_update
);

/// `SignedVisibilityUpdate`: a visibility update and the author's signature.
pub type SignedVisibilityUpdate = Signed<VisibilityUpdateBody>;

impl Signed<VisibilityUpdateBody> {
    /// [`VisibilityUpdateBody::applies_to`], then verifies the signature
    /// (`badSignature`).
    pub fn validate_for(&self, post: &SignedPost) -> Result<(), IngestError> {
        self.body().applies_to(post)?;
        self.verify().map_err(bad_sig("visibilityUpdate"))
    }
}

// ---------------------------------------------------------------------------
// Recent posts and hearts
// ---------------------------------------------------------------------------

/// `RecentPost`: one entry of an author's recent-post list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecentPost {
    /// The post.
    pub post_id: PostId,
    /// The post's `createdAtMs`.
    pub created_at_ms: u64,
    /// Whether the post is encrypted.
    pub hint: VisibilityHint,
}

impl Struct for RecentPost {
    type Schema = content_capnp::recent_post::Owned;

    fn read(r: content_capnp::recent_post::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            post_id: post_id("postId", r.get_post_id())?,
            created_at_ms: r.get_created_at_ms(),
            hint: VisibilityHint::from_wire(r.get_hint())?,
        })
    }

    fn write(&self, mut b: content_capnp::recent_post::Builder<'_>) {
        b.set_post_id(self.post_id.as_bytes());
        b.set_created_at_ms(self.created_at_ms);
        b.set_hint(self.hint.to_wire());
    }
}

/// `AuthorRecentPosts`: an author's signed list of recent posts. Its
/// canonical encoding is at most [`MAX_RECENT_POSTS_BYTES`] (enforced when the
/// signed list is decoded, and by [`sign_checked`] when signing).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthorRecentPosts {
    /// The author, who signs the list.
    pub author: PostingId,
    /// Strictly increasing per author.
    pub seq: u64,
    /// When the list was produced, ms since epoch.
    pub updated_at_ms: u64,
    /// Recent posts, newest first.
    pub posts: Vec<RecentPost>,
}

impl AuthorRecentPosts {
    /// Length of the canonical encoding, bytes.
    pub fn canonical_len(&self) -> usize {
        codec::canonical_of(self).len()
    }

    /// Drops the oldest entries (from the end) until the canonical encoding
    /// fits [`MAX_RECENT_POSTS_BYTES`]; returns how many were dropped.
    pub fn trim_to_fit(&mut self) -> usize {
        // An entry takes at most 7 words (pointer + 2 data words + 32-byte id).
        const MAX_ENTRY_BYTES: usize = 7 * WORD_BYTES;
        let before = self.posts.len();
        loop {
            let len = self.canonical_len();
            if len <= MAX_RECENT_POSTS_BYTES || self.posts.is_empty() {
                break;
            }
            let excess = (len - MAX_RECENT_POSTS_BYTES)
                .div_ceil(MAX_ENTRY_BYTES)
                .max(1);
            let keep = self.posts.len().saturating_sub(excess);
            self.posts.truncate(keep);
        }
        before - self.posts.len()
    }
}

impl Struct for AuthorRecentPosts {
    type Schema = content_capnp::author_recent_posts::Owned;

    fn read(r: content_capnp::author_recent_posts::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            author: posting_id("author", r.get_author())?,
            seq: r.get_seq(),
            updated_at_ms: r.get_updated_at_ms(),
            posts: codec::list(
                "posts",
                r.get_posts(),
                MAX_RECENT_POST_ENTRIES,
                RecentPost::read,
            )?,
        })
    }

    fn write(&self, mut b: content_capnp::author_recent_posts::Builder<'_>) {
        b.set_author(self.author.as_bytes());
        b.set_seq(self.seq);
        b.set_updated_at_ms(self.updated_at_ms);
        let mut l = b.init_posts(len32(&self.posts));
        for (i, p) in self.posts.iter().enumerate() {
            p.write(l.reborrow().get(i as u32));
        }
    }
}

impl SignedBody for AuthorRecentPosts {
    const PURPOSE: Purpose = Purpose::RecentPosts;
    const MAX_BYTES: usize = MAX_RECENT_POSTS_BYTES;
    const FIELD: &'static str = "recent";
    fn signer(&self) -> PostingId {
        self.author
    }
}

crate::signed_carrier!(
    AuthorRecentPosts,
    content_capnp::signed_author_recent_posts::Owned,
    get_recent,
    set_recent
);

/// `SignedAuthorRecentPosts`: an author_recent_posts list and its signature.
pub type SignedAuthorRecentPosts = Signed<AuthorRecentPosts>;

impl Signed<AuthorRecentPosts> {
    /// The list's author.
    pub fn author(&self) -> PostingId {
        self.body().author
    }

    /// The list's sequence number.
    pub fn seq(&self) -> u64 {
        self.body().seq
    }

    /// When the list was produced, ms since epoch.
    pub fn updated_at_ms(&self) -> u64 {
        self.body().updated_at_ms
    }

    /// The entries, newest first.
    pub fn posts(&self) -> &[RecentPost] {
        &self.body().posts
    }
}

/// `HeartBody`: an endorsement of a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeartBody {
    /// The post endorsed.
    pub post_id: PostId,
    /// Who endorses it; signs the heart.
    pub reactor: PostingId,
    /// When, ms since epoch.
    pub created_at_ms: u64,
}

impl Struct for HeartBody {
    type Schema = content_capnp::heart_body::Owned;

    fn read(r: content_capnp::heart_body::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            post_id: post_id("postId", r.get_post_id())?,
            reactor: posting_id("reactor", r.get_reactor())?,
            created_at_ms: r.get_created_at_ms(),
        })
    }

    fn write(&self, mut b: content_capnp::heart_body::Builder<'_>) {
        b.set_post_id(self.post_id.as_bytes());
        b.set_reactor(self.reactor.as_bytes());
        b.set_created_at_ms(self.created_at_ms);
    }
}

impl SignedBody for HeartBody {
    const PURPOSE: Purpose = Purpose::Heart;
    const MAX_BYTES: usize = MAX_HEART_BYTES;
    const FIELD: &'static str = "heart";
    fn signer(&self) -> PostingId {
        self.reactor
    }
}

crate::signed_carrier!(
    HeartBody,
    content_capnp::signed_heart::Owned,
    get_heart,
    set_heart
);

/// `SignedHeart`: a heart and its signature.
pub type SignedHeart = Signed<HeartBody>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use core::fmt::Debug;

    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::limits::MAX_VISIBILITY_BYTES;

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
            PostBody { text, attachments }
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
        };
        assert!(matches!(
            codec::from_canonical::<PostBody>("body", &codec::canonical_of(&body), usize::MAX),
            Err(DecodeError::TooLong { field: "text", .. })
        ));
        let a = Attachment::for_blob(b"x", "text/plain", None);
        let body = PostBody {
            text: String::new(),
            attachments: vec![a.clone(); MAX_ATTACHMENTS + 1],
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
}
