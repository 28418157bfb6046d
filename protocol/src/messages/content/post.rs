//! Posts on the wire: [`Attachment`], [`PostBody`], [`SealedBody`],
//! [`PostContent`] and the signed [`Post`].

use distsoc_schema::content_capnp;
use zeroize::Zeroizing;

use crate::codec::{self, len32, Struct};
use crate::envelope::{self, Cek, NONCE_LEN, TAG_LEN};
use crate::error::DecodeError;
use crate::ids::{BlobId, PostId, PostingId};
use crate::messages::common::VisibilityHint;
use crate::messages::signed::{Signed, SignedBody};
use crate::sign::{Purpose, SigningKey};

use super::{
    opt_text, posting_id, sign_checked, ContentError, IngestError, DM_GROUP_THREAD_ID_LEN,
    MAX_ARCHIVE_ENTRIES, MAX_ATTACHMENTS, MAX_ATTACHMENT_NAME_BYTES, MAX_ATTACHMENT_SIZE_BYTES,
    MAX_DM_GROUP_MEMBERS, MAX_MIME_TYPE_BYTES, MAX_POST_BYTES, MAX_POST_TEXT_BYTES,
};

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
    /// The rotation handshake of a direct message (`schema/README.md`
    /// §9.1): the seed of the sender's next message in the thread. `None`
    /// in every other post.
    pub rotation: Option<DmRotation>,
    /// A batch of the author's own DM archive (`schema/README.md` §9.1): only
    /// in an archive post, sealed to its author alone. `None` in every
    /// other post.
    pub archive: Option<DmArchiveChunk>,
    /// The group thread of a direct message sent to a group
    /// (`schema/README.md` §9.1, "Group threads"). `None` in every other
    /// post.
    pub group: Option<DmGroup>,
}

/// `DmGroup`: the group thread a DM belongs to, and its members. Only
/// inside a sealed body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DmGroup {
    /// The 16-byte group thread id.
    pub thread_id: [u8; DM_GROUP_THREAD_ID_LEN],
    /// The members' 32-byte ids, the sender and the recipient included (at
    /// most [`MAX_DM_GROUP_MEMBERS`]).
    pub members: Vec<[u8; 32]>,
}

impl Struct for DmGroup {
    type Schema = content_capnp::dm_group::Owned;

    fn read(r: content_capnp::dm_group::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            thread_id: codec::id("threadId", r.get_thread_id())?,
            members: codec::id_list::<32>("members", r.get_members(), MAX_DM_GROUP_MEMBERS)?,
        })
    }

    fn write(&self, mut b: content_capnp::dm_group::Builder<'_>) {
        b.set_thread_id(&self.thread_id);
        codec::write_ids(b.init_members(len32(&self.members)), &self.members);
    }
}

/// `DmArchiveChunk`: archived DMs carried in the sealed body of an archive
/// post (at most [`MAX_ARCHIVE_ENTRIES`] entries, oldest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DmArchiveChunk {
    /// The archived messages.
    pub entries: Vec<DmArchiveEntry>,
}

/// `DmArchiveEntry`: one archived DM. Secret (it is a message's text); it
/// only travels inside a sealed body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DmArchiveEntry {
    /// The other side of the thread (its NodeId).
    pub peer: [u8; 32],
    /// Sent by the archive's owner (`false`: received from `peer`).
    pub outgoing: bool,
    /// The message's signed creation time, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// The text (at most [`MAX_POST_TEXT_BYTES`]).
    pub text: String,
    /// BLAKE3-256 of the DM payload as it travelled: the row's
    /// deduplication key.
    pub dedup: [u8; 32],
    /// Set for a message of a group thread: the thread and its members as
    /// that message named them; `peer` is then the message's sender (for an
    /// outgoing one, the archive owner's own id). `None` for a 1:1 message.
    pub group: Option<DmGroup>,
}

impl Struct for DmArchiveEntry {
    type Schema = content_capnp::dm_archive_entry::Owned;

    fn read(r: content_capnp::dm_archive_entry::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            peer: codec::id("peer", r.get_peer())?,
            outgoing: r.get_outgoing(),
            created_at_ms: r.get_created_at_ms(),
            text: codec::text("text", r.get_text(), MAX_POST_TEXT_BYTES)?,
            dedup: codec::id("dedup", r.get_dedup())?,
            group: codec::optional(r.has_group(), r.get_group(), DmGroup::read)?,
        })
    }

    fn write(&self, mut b: content_capnp::dm_archive_entry::Builder<'_>) {
        b.set_peer(&self.peer);
        b.set_outgoing(self.outgoing);
        b.set_created_at_ms(self.created_at_ms);
        b.set_text(self.text.as_str());
        b.set_dedup(&self.dedup);
        if let Some(g) = &self.group {
            g.write(b.init_group());
        }
    }
}

impl Struct for DmArchiveChunk {
    type Schema = content_capnp::dm_archive_chunk::Owned;

    fn read(r: content_capnp::dm_archive_chunk::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            entries: codec::list(
                "entries",
                r.get_entries(),
                MAX_ARCHIVE_ENTRIES,
                DmArchiveEntry::read,
            )?,
        })
    }

    fn write(&self, b: content_capnp::dm_archive_chunk::Builder<'_>) {
        codec::write_structs(b.init_entries(len32(&self.entries)), &self.entries);
    }
}

/// `DmRotation`: the seed of the sender's next message in a DM thread
/// ([`crate::dm_rotation`]). Secret: it only travels inside a sealed body;
/// its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DmRotation {
    /// The 32-byte seed s(n+1).
    pub next_posting_id: [u8; 32],
}

impl std::fmt::Debug for DmRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DmRotation { next_posting_id: <secret> }")
    }
}

impl Struct for DmRotation {
    type Schema = content_capnp::dm_rotation::Owned;

    fn read(r: content_capnp::dm_rotation::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            next_posting_id: codec::id("nextPostingId", r.get_next_posting_id())?,
        })
    }

    fn write(&self, mut b: content_capnp::dm_rotation::Builder<'_>) {
        b.set_next_posting_id(&self.next_posting_id);
    }
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
            rotation: codec::optional(r.has_rotation(), r.get_rotation(), DmRotation::read)?,
            archive: codec::optional(r.has_archive(), r.get_archive(), DmArchiveChunk::read)?,
            group: codec::optional(r.has_group(), r.get_group(), DmGroup::read)?,
        })
    }

    fn write(&self, mut b: content_capnp::post_body::Builder<'_>) {
        b.set_text(self.text.as_str());
        let mut l = b.reborrow().init_attachments(len32(&self.attachments));
        for (i, a) in self.attachments.iter().enumerate() {
            a.write(l.reborrow().get(i as u32));
        }
        if let Some(rotation) = &self.rotation {
            rotation.write(b.reborrow().init_rotation());
        }
        if let Some(archive) = &self.archive {
            archive.write(b.reborrow().init_archive());
        }
        if let Some(group) = &self.group {
            group.write(b.init_group());
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
                rotation: None,
                archive: None,
                group: None,
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
