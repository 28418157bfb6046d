//! Domain types of `schema/files.capnp`: fetching posts and blobs from any
//! holder, author_recent_posts propagation and header diffs.

use distsoc_schema::files_capnp;

use super::common::VisibilityHint;
use super::content::{
    InlineComment, SignedAuthorRecentPosts, SignedHeart, SignedPostHeader, SyncPost,
};
use crate::codec::{self, len32, write_ids, Struct, WireMessage};
use crate::codec::{optional, required, structs, write_structs};
use crate::codes::MessageCode;
use crate::error::DecodeError;
use crate::ids::{BlobId, CommentHash, PostId, PostingId};
use crate::limits::MAX_BLOB_BYTES;

/// Most comments kept with a [`StoredFile`].
pub const MAX_STORED_COMMENTS: usize = 1024;
/// Most hearts kept with a [`StoredFile`].
pub const MAX_STORED_HEARTS: usize = 4096;
/// Most added (and most removed) comments in a [`BlobHeaderDiff`].
pub const MAX_DIFF_COMMENTS: usize = 256;
/// Most added hearts in a [`BlobHeaderDiff`].
pub const MAX_DIFF_HEARTS: usize = 1024;

/// `StoredFile`: a post as held by a file holder, with the author's recent
/// posts and the engagement the holder keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The post, visibility and header (required).
    pub post: SyncPost,
    /// The freshest recent-post list the holder has for the author.
    pub author_recent_posts: Option<SignedAuthorRecentPosts>,
    /// Comments kept for this post (at most [`MAX_STORED_COMMENTS`]).
    pub comments: Vec<InlineComment>,
    /// Hearts kept for this post (at most [`MAX_STORED_HEARTS`]).
    pub hearts: Vec<SignedHeart>,
}

impl Struct for StoredFile {
    type Schema = files_capnp::stored_file::Owned;

    fn read(r: files_capnp::stored_file::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            post: required("post", r.has_post(), r.get_post(), SyncPost::read)?,
            author_recent_posts: optional(
                r.has_author_recent_posts(),
                r.get_author_recent_posts(),
                SignedAuthorRecentPosts::read,
            )?,
            comments: structs("comments", r.get_comments(), MAX_STORED_COMMENTS)?,
            hearts: structs("hearts", r.get_hearts(), MAX_STORED_HEARTS)?,
        })
    }

    fn write(&self, mut b: files_capnp::stored_file::Builder<'_>) {
        self.post.write(b.reborrow().init_post());
        if let Some(recent) = &self.author_recent_posts {
            recent.write(b.reborrow().init_author_recent_posts());
        }
        write_structs(
            b.reborrow().init_comments(len32(&self.comments)),
            &self.comments,
        );
        write_structs(b.reborrow().init_hearts(len32(&self.hearts)), &self.hearts);
    }
}

/// What a [`FileRequest`] asks for (the schema's anonymous union).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileTarget {
    /// A post, by PostId.
    Post(PostId),
    /// A blob, by BlobId (BLAKE3-256 of its bytes).
    Blob(BlobId),
}

/// Code 0x30, request: fetch a post or a blob from a node that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRequest {
    /// Version of this message.
    pub version: u16,
    /// What is asked for.
    pub target: FileTarget,
}

impl Struct for FileRequest {
    type Schema = files_capnp::file_request::Owned;

    fn read(r: files_capnp::file_request::Reader<'_>) -> Result<Self, DecodeError> {
        let target = match r.which() {
            Ok(files_capnp::file_request::Post(d)) => {
                FileTarget::Post(PostId(codec::id("post", d)?))
            }
            Ok(files_capnp::file_request::Blob(d)) => {
                FileTarget::Blob(BlobId(codec::id("blob", d)?))
            }
            Err(_) => return Err(DecodeError::UnknownVariant("fileRequest")),
        };
        Ok(Self {
            version: r.get_version(),
            target,
        })
    }

    fn write(&self, mut b: files_capnp::file_request::Builder<'_>) {
        b.set_version(self.version);
        match &self.target {
            FileTarget::Post(id) => b.set_post(id.as_bytes()),
            FileTarget::Blob(id) => b.set_blob(id.as_bytes()),
        }
    }
}

impl WireMessage for FileRequest {
    const CODE: MessageCode = MessageCode::FileRequest;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &files_capnp::file_request::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// The content of a [`FileResponse`] (the schema's anonymous union).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// The requested post with its metadata.
    Post(Box<StoredFile>),
    /// The requested blob's bytes (at most [`MAX_BLOB_BYTES`]); the receiver
    /// checks them against the BlobId it asked for.
    Blob(Vec<u8>),
}

/// Code 0x31, response to [`FileRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileResponse {
    /// Version of this message.
    pub version: u16,
    /// The content.
    pub content: FileContent,
}

impl Struct for FileResponse {
    type Schema = files_capnp::file_response::Owned;

    fn read(r: files_capnp::file_response::Reader<'_>) -> Result<Self, DecodeError> {
        let content = match r.which() {
            Ok(files_capnp::file_response::Post(p)) => FileContent::Post(Box::new(required(
                "post",
                r.has_post(),
                p,
                StoredFile::read,
            )?)),
            Ok(files_capnp::file_response::Blob(d)) => {
                FileContent::Blob(codec::bytes("blob", d, MAX_BLOB_BYTES)?)
            }
            Err(_) => return Err(DecodeError::UnknownVariant("fileResponse")),
        };
        Ok(Self {
            version: r.get_version(),
            content,
        })
    }

    fn write(&self, mut b: files_capnp::file_response::Builder<'_>) {
        b.set_version(self.version);
        match &self.content {
            FileContent::Post(file) => file.write(b.reborrow().init_post()),
            FileContent::Blob(bytes) => b.set_blob(bytes),
        }
    }
}

impl WireMessage for FileResponse {
    const CODE: MessageCode = MessageCode::FileResponse;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &files_capnp::file_response::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x32, request: ask for a fresher author_recent_posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorUpdateRequest {
    /// Version of this message.
    pub version: u16,
    /// The author.
    pub author: PostingId,
    /// The `seq` the requester holds (0 if none).
    pub have_seq: u64,
}

impl Struct for AuthorUpdateRequest {
    type Schema = files_capnp::author_update_request::Owned;

    fn read(r: files_capnp::author_update_request::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            author: PostingId(codec::id("author", r.get_author())?),
            have_seq: r.get_have_seq(),
        })
    }

    fn write(&self, mut b: files_capnp::author_update_request::Builder<'_>) {
        b.set_version(self.version);
        b.set_author(self.author.as_bytes());
        b.set_have_seq(self.have_seq);
    }
}

impl WireMessage for AuthorUpdateRequest {
    const CODE: MessageCode = MessageCode::AuthorUpdateRequest;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &files_capnp::author_update_request::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// The outcome of an [`AuthorUpdateResponse`] (the schema's anonymous
/// union).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorUpdate {
    /// A list with `seq > have_seq`.
    Recent(SignedAuthorRecentPosts),
    /// The responder holds nothing newer than `have_seq`.
    NotModified,
}

/// Code 0x33, response to [`AuthorUpdateRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorUpdateResponse {
    /// Version of this message.
    pub version: u16,
    /// The outcome.
    pub outcome: AuthorUpdate,
}

impl Struct for AuthorUpdateResponse {
    type Schema = files_capnp::author_update_response::Owned;

    fn read(r: files_capnp::author_update_response::Reader<'_>) -> Result<Self, DecodeError> {
        let outcome = match r.which() {
            Ok(files_capnp::author_update_response::Recent(recent)) => {
                AuthorUpdate::Recent(required(
                    "recent",
                    r.has_recent(),
                    recent,
                    SignedAuthorRecentPosts::read,
                )?)
            }
            Ok(files_capnp::author_update_response::NotModified(())) => AuthorUpdate::NotModified,
            Err(_) => return Err(DecodeError::UnknownVariant("authorUpdateResponse")),
        };
        Ok(Self {
            version: r.get_version(),
            outcome,
        })
    }

    fn write(&self, mut b: files_capnp::author_update_response::Builder<'_>) {
        b.set_version(self.version);
        match &self.outcome {
            AuthorUpdate::Recent(recent) => recent.write(b.reborrow().init_recent()),
            AuthorUpdate::NotModified => b.set_not_modified(()),
        }
    }
}

impl WireMessage for AuthorUpdateResponse {
    const CODE: MessageCode = MessageCode::AuthorUpdateResponse;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &files_capnp::author_update_response::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x34, push: a fresher author_recent_posts for holders of the author's
/// files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorUpdatePush {
    /// Version of this message.
    pub version: u16,
    /// The list (required).
    pub recent: SignedAuthorRecentPosts,
}

impl Struct for AuthorUpdatePush {
    type Schema = files_capnp::author_update_push::Owned;

    fn read(r: files_capnp::author_update_push::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            recent: required(
                "recent",
                r.has_recent(),
                r.get_recent(),
                SignedAuthorRecentPosts::read,
            )?,
        })
    }

    fn write(&self, mut b: files_capnp::author_update_push::Builder<'_>) {
        b.set_version(self.version);
        self.recent.write(b.reborrow().init_recent());
    }
}

impl WireMessage for AuthorUpdatePush {
    const CODE: MessageCode = MessageCode::AuthorUpdatePush;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &files_capnp::author_update_push::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x35, push: a "new post" notice without content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostNotification {
    /// Version of this message.
    pub version: u16,
    /// The author.
    pub author: PostingId,
    /// The new post.
    pub post_id: PostId,
    /// Public or encrypted.
    pub hint: VisibilityHint,
    /// The author's new recent-post list, if sent.
    pub recent: Option<SignedAuthorRecentPosts>,
}

impl Struct for PostNotification {
    type Schema = files_capnp::post_notification::Owned;

    fn read(r: files_capnp::post_notification::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            author: PostingId(codec::id("author", r.get_author())?),
            post_id: PostId(codec::id("postId", r.get_post_id())?),
            hint: VisibilityHint::from_wire(r.get_hint())?,
            recent: optional(
                r.has_recent(),
                r.get_recent(),
                SignedAuthorRecentPosts::read,
            )?,
        })
    }

    fn write(&self, mut b: files_capnp::post_notification::Builder<'_>) {
        b.set_version(self.version);
        b.set_author(self.author.as_bytes());
        b.set_post_id(self.post_id.as_bytes());
        b.set_hint(self.hint.to_wire());
        if let Some(recent) = &self.recent {
            recent.write(b.reborrow().init_recent());
        }
    }
}

impl WireMessage for PostNotification {
    const CODE: MessageCode = MessageCode::PostNotification;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &files_capnp::post_notification::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x36, push: a file's updated manifest (header and/or recent posts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestPush {
    /// Version of this message.
    pub version: u16,
    /// The file whose manifest changed.
    pub post_id: PostId,
    /// The post's current header; `None` if unchanged.
    pub header: Option<SignedPostHeader>,
    /// The author's current recent-post list; `None` if unchanged.
    pub recent: Option<SignedAuthorRecentPosts>,
}

impl Struct for ManifestPush {
    type Schema = files_capnp::manifest_push::Owned;

    fn read(r: files_capnp::manifest_push::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            post_id: PostId(codec::id("postId", r.get_post_id())?),
            header: optional(r.has_header(), r.get_header(), SignedPostHeader::read)?,
            recent: optional(
                r.has_recent(),
                r.get_recent(),
                SignedAuthorRecentPosts::read,
            )?,
        })
    }

    fn write(&self, mut b: files_capnp::manifest_push::Builder<'_>) {
        b.set_version(self.version);
        b.set_post_id(self.post_id.as_bytes());
        if let Some(header) = &self.header {
            header.write(b.reborrow().init_header());
        }
        if let Some(recent) = &self.recent {
            recent.write(b.reborrow().init_recent());
        }
    }
}

impl WireMessage for ManifestPush {
    const CODE: MessageCode = MessageCode::ManifestPush;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &files_capnp::manifest_push::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x37, push: engagement changes on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHeaderDiff {
    /// Version of this message.
    pub version: u16,
    /// The post the engagement belongs to.
    pub post_id: PostId,
    /// New comments (at most [`MAX_DIFF_COMMENTS`]).
    pub added_comments: Vec<InlineComment>,
    /// Hashes of removed comments (at most [`MAX_DIFF_COMMENTS`]).
    pub removed_comments: Vec<CommentHash>,
    /// New hearts (at most [`MAX_DIFF_HEARTS`]).
    pub added_hearts: Vec<SignedHeart>,
}

impl Struct for BlobHeaderDiff {
    type Schema = files_capnp::blob_header_diff::Owned;

    fn read(r: files_capnp::blob_header_diff::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            post_id: PostId(codec::id("postId", r.get_post_id())?),
            added_comments: structs("addedComments", r.get_added_comments(), MAX_DIFF_COMMENTS)?,
            removed_comments: codec::id_list::<32>(
                "removedComments",
                r.get_removed_comments(),
                MAX_DIFF_COMMENTS,
            )?
            .into_iter()
            .map(CommentHash)
            .collect(),
            added_hearts: structs("addedHearts", r.get_added_hearts(), MAX_DIFF_HEARTS)?,
        })
    }

    fn write(&self, mut b: files_capnp::blob_header_diff::Builder<'_>) {
        b.set_version(self.version);
        b.set_post_id(self.post_id.as_bytes());
        write_structs(
            b.reborrow()
                .init_added_comments(len32(&self.added_comments)),
            &self.added_comments,
        );
        write_ids(
            b.reborrow()
                .init_removed_comments(len32(&self.removed_comments)),
            &self.removed_comments,
        );
        write_structs(
            b.reborrow().init_added_hearts(len32(&self.added_hearts)),
            &self.added_hearts,
        );
    }
}

impl WireMessage for BlobHeaderDiff {
    const CODE: MessageCode = MessageCode::BlobHeaderDiff;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &files_capnp::blob_header_diff::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Signed content values for the message modules' tests, built with the
/// content module's own constructors.
#[cfg(test)]
pub(crate) mod fixtures {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::super::common::VisibilityHint;
    use super::super::content::{
        AuthorRecentPosts, CommentBody, CommentPolicy, DeleteRecordBody, HeartBody, InlineComment,
        Post, PostHeader, PostVisibility, RecentPost, SignedAuthorRecentPosts, SignedDeleteRecord,
        SignedHeart, SignedPostHeader, SignedVisibilityUpdate, SyncPost, VisibilityUpdateBody,
    };
    use super::super::signed::Signed;
    use crate::ids::{CommentHash, PostId, PostingId};
    use crate::sign::SigningKey;

    /// The signing key of test identity `seed`.
    pub(crate) fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed(&[seed; 32])
    }

    /// The PostingId of test identity `seed`.
    pub(crate) fn author(seed: u8) -> PostingId {
        PostingId(key(seed).public())
    }

    /// A signed public post by `seed`, with an optional header.
    pub(crate) fn sync_post(
        seed: u8,
        created_at_ms: u64,
        text: &str,
        with_header: bool,
    ) -> SyncPost {
        let k = key(seed);
        let post = Post::new_public(author(seed), created_at_ms, text, Vec::new())
            .sign(&k)
            .unwrap();
        let header = with_header.then(|| header(seed, post.post_id(), created_at_ms));
        SyncPost::new(&k, post, PostVisibility::Public, header)
    }

    /// A signed header of `post_id` by `seed`.
    pub(crate) fn header(seed: u8, post_id: PostId, updated_at_ms: u64) -> SignedPostHeader {
        PostHeader::new(
            post_id,
            author(seed),
            CommentPolicy::FollowersOnly,
            updated_at_ms,
        )
        .unwrap()
        .sign(&key(seed))
        .unwrap()
    }

    /// A signed recent-post list of `seed` with `n` entries.
    pub(crate) fn recent(seed: u8, seq: u64, n: usize) -> SignedAuthorRecentPosts {
        let posts = (0..n)
            .map(|i| RecentPost {
                post_id: PostId([i as u8; 32]),
                created_at_ms: i as u64,
                hint: if i % 2 == 0 {
                    VisibilityHint::Public
                } else {
                    VisibilityHint::Encrypted
                },
            })
            .collect();
        Signed::sign(
            AuthorRecentPosts {
                author: author(seed),
                seq,
                updated_at_ms: seq * 10,
                posts,
            },
            &key(seed),
        )
    }

    /// A signed comment by `seed` on `parent`.
    pub(crate) fn comment(
        seed: u8,
        parent: PostId,
        text: &str,
        reply_to: Option<CommentHash>,
    ) -> InlineComment {
        let body = CommentBody {
            parent_post_id: parent,
            author: author(seed),
            created_at_ms: 7,
            text: text.into(),
            reply_to,
        };
        InlineComment::new(&key(seed), body, None).unwrap()
    }

    /// A signed heart by `seed` on `post_id`.
    pub(crate) fn heart(seed: u8, post_id: PostId, created_at_ms: u64) -> SignedHeart {
        Signed::sign(
            HeartBody {
                post_id,
                reactor: author(seed),
                created_at_ms,
            },
            &key(seed),
        )
    }

    /// A signed delete record by `seed`.
    pub(crate) fn delete(
        seed: u8,
        post_id: PostId,
        replaced_by: Option<PostId>,
    ) -> SignedDeleteRecord {
        Signed::sign(
            DeleteRecordBody {
                post_id,
                author: author(seed),
                deleted_at_ms: 9,
                replaced_by,
            },
            &key(seed),
        )
    }

    /// A signed visibility update by `seed` (to public).
    pub(crate) fn visibility_update(
        seed: u8,
        post_id: PostId,
        updated_at_ms: u64,
    ) -> SignedVisibilityUpdate {
        Signed::sign(
            VisibilityUpdateBody {
                post_id,
                author: author(seed),
                visibility: PostVisibility::Public,
                updated_at_ms,
            },
            &key(seed),
        )
    }

    /// Short text.
    pub(crate) fn text() -> impl Strategy<Value = String> {
        "[a-z ]{0,24}"
    }

    /// Any signed public post.
    pub(crate) fn sync_post_strategy() -> impl Strategy<Value = SyncPost> {
        (any::<u8>(), any::<u64>(), text(), any::<bool>())
            .prop_map(|(s, t, x, h)| sync_post(s, t, &x, h))
    }

    /// Any signed recent-post list.
    pub(crate) fn recent_strategy() -> impl Strategy<Value = SignedAuthorRecentPosts> {
        (any::<u8>(), 0u64..1 << 40, 0usize..6).prop_map(|(s, seq, n)| recent(s, seq, n))
    }

    /// Any signed comment.
    pub(crate) fn comment_strategy() -> impl Strategy<Value = InlineComment> {
        (
            any::<u8>(),
            any::<[u8; 32]>(),
            text(),
            prop::option::of(any::<[u8; 32]>()),
        )
            .prop_map(|(s, p, x, r)| comment(s, PostId(p), &x, r.map(CommentHash)))
    }

    /// Any signed heart.
    pub(crate) fn heart_strategy() -> impl Strategy<Value = SignedHeart> {
        (any::<u8>(), any::<[u8; 32]>(), any::<u64>()).prop_map(|(s, p, t)| heart(s, PostId(p), t))
    }

    /// Any signed delete record.
    pub(crate) fn delete_strategy() -> impl Strategy<Value = SignedDeleteRecord> {
        (
            any::<u8>(),
            any::<[u8; 32]>(),
            prop::option::of(any::<[u8; 32]>()),
        )
            .prop_map(|(s, p, r)| delete(s, PostId(p), r.map(PostId)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::super::discovery::strategies::*;
    use super::fixtures::*;
    use super::*;
    use crate::error::{ErrorCode, WireCode};

    fn stored_file() -> impl Strategy<Value = StoredFile> {
        (
            sync_post_strategy(),
            prop::option::of(recent_strategy()),
            prop::collection::vec(comment_strategy(), 0..3),
            prop::collection::vec(heart_strategy(), 0..3),
        )
            .prop_map(|(post, author_recent_posts, comments, hearts)| StoredFile {
                post,
                author_recent_posts,
                comments,
                hearts,
            })
    }

    fn file_request() -> impl Strategy<Value = FileRequest> {
        (
            version(),
            prop_oneof![
                any::<[u8; 32]>().prop_map(|b| FileTarget::Post(PostId(b))),
                any::<[u8; 32]>().prop_map(|b| FileTarget::Blob(BlobId(b))),
            ],
        )
            .prop_map(|(version, target)| FileRequest { version, target })
    }

    fn file_response() -> impl Strategy<Value = FileResponse> {
        (
            version(),
            prop_oneof![
                stored_file().prop_map(|f| FileContent::Post(Box::new(f))),
                bytes(300).prop_map(FileContent::Blob),
            ],
        )
            .prop_map(|(version, content)| FileResponse { version, content })
    }

    fn author_update_request() -> impl Strategy<Value = AuthorUpdateRequest> {
        (version(), posting_id(), any::<u64>()).prop_map(|(version, author, have_seq)| {
            AuthorUpdateRequest {
                version,
                author,
                have_seq,
            }
        })
    }

    fn author_update_response() -> impl Strategy<Value = AuthorUpdateResponse> {
        (
            version(),
            prop_oneof![
                Just(AuthorUpdate::NotModified),
                recent_strategy().prop_map(AuthorUpdate::Recent)
            ],
        )
            .prop_map(|(version, outcome)| AuthorUpdateResponse { version, outcome })
    }

    fn author_update_push() -> impl Strategy<Value = AuthorUpdatePush> {
        (version(), recent_strategy())
            .prop_map(|(version, recent)| AuthorUpdatePush { version, recent })
    }

    fn post_notification() -> impl Strategy<Value = PostNotification> {
        (
            version(),
            posting_id(),
            post_id(),
            prop_oneof![
                Just(VisibilityHint::Public),
                Just(VisibilityHint::Encrypted)
            ],
            prop::option::of(recent_strategy()),
        )
            .prop_map(
                |(version, author, post_id, hint, recent)| PostNotification {
                    version,
                    author,
                    post_id,
                    hint,
                    recent,
                },
            )
    }

    fn manifest_push() -> impl Strategy<Value = ManifestPush> {
        (
            version(),
            any::<u8>(),
            post_id(),
            any::<bool>(),
            prop::option::of(recent_strategy()),
        )
            .prop_map(
                |(version, seed, post_id, with_header, recent)| ManifestPush {
                    version,
                    post_id,
                    header: with_header.then(|| header(seed, post_id, 5)),
                    recent,
                },
            )
    }

    fn blob_header_diff() -> impl Strategy<Value = BlobHeaderDiff> {
        (
            version(),
            post_id(),
            prop::collection::vec(comment_strategy(), 0..3),
            prop::collection::vec(any::<[u8; 32]>().prop_map(CommentHash), 0..4),
            prop::collection::vec(heart_strategy(), 0..3),
        )
            .prop_map(
                |(version, post_id, added_comments, removed_comments, added_hearts)| {
                    BlobHeaderDiff {
                        version,
                        post_id,
                        added_comments,
                        removed_comments,
                        added_hearts,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn stored_file_round_trips(v in stored_file()) { assert_round_trip(&v)?; }
        #[test]
        fn file_request_round_trips(v in file_request()) { assert_round_trip(&v)?; }
        #[test]
        fn file_response_round_trips(v in file_response()) { assert_round_trip(&v)?; }
        #[test]
        fn author_update_request_round_trips(v in author_update_request()) { assert_round_trip(&v)?; }
        #[test]
        fn author_update_response_round_trips(v in author_update_response()) { assert_round_trip(&v)?; }
        #[test]
        fn author_update_push_round_trips(v in author_update_push()) { assert_round_trip(&v)?; }
        #[test]
        fn post_notification_round_trips(v in post_notification()) { assert_round_trip(&v)?; }
        #[test]
        fn manifest_push_round_trips(v in manifest_push()) { assert_round_trip(&v)?; }
        #[test]
        fn blob_header_diff_round_trips(v in blob_header_diff()) { assert_round_trip(&v)?; }
    }

    fn blob_response(len: usize) -> FileResponse {
        FileResponse {
            version: 2,
            content: FileContent::Blob(vec![7; len]),
        }
    }

    #[test]
    fn blob_limit() {
        assert_eq!(
            wire_round_trip(&blob_response(MAX_BLOB_BYTES)).unwrap(),
            blob_response(MAX_BLOB_BYTES)
        );
        assert_eq!(
            wire_round_trip(&blob_response(0)).unwrap(),
            blob_response(0)
        );
        let e = wire_round_trip(&blob_response(MAX_BLOB_BYTES + 1)).unwrap_err();
        assert_eq!(
            e,
            DecodeError::TooLong {
                field: "blob",
                max: MAX_BLOB_BYTES,
                got: MAX_BLOB_BYTES + 1
            }
        );
        assert_eq!(e.error_code(), ErrorCode::TooLarge);
    }

    #[test]
    fn union_arms_are_checked() {
        // An empty `post` arm (the default of a fresh FileRequest).
        let mut b = capnp::message::Builder::new_default();
        b.init_root::<files_capnp::file_request::Builder<'_>>()
            .set_version(2);
        let e = codec::reread::<FileRequest>(&b).unwrap_err();
        assert_eq!(e, DecodeError::Missing("post"));
        assert_eq!(e.error_code(), ErrorCode::Malformed);

        let mut b = capnp::message::Builder::new_default();
        b.init_root::<files_capnp::file_request::Builder<'_>>()
            .set_blob(&[1; 31]);
        assert_eq!(
            codec::reread::<FileRequest>(&b).unwrap_err(),
            DecodeError::BadLength {
                field: "blob",
                expected: 32,
                got: 31
            }
        );

        // A `post` arm with no StoredFile.
        let mut b = capnp::message::Builder::new_default();
        b.init_root::<files_capnp::file_response::Builder<'_>>()
            .set_version(2);
        assert_eq!(
            codec::reread::<FileResponse>(&b).unwrap_err(),
            DecodeError::Missing("post")
        );

        // A `recent` arm with no list.
        let mut b = capnp::message::Builder::new_default();
        b.init_root::<files_capnp::author_update_response::Builder<'_>>()
            .set_version(2);
        assert_eq!(
            codec::reread::<AuthorUpdateResponse>(&b).unwrap_err(),
            DecodeError::Missing("recent")
        );

        // A union discriminant from a newer schema (arm 7): the discriminant
        // of FileRequest's union is the UInt16 at data offset 1.
        let b = codec::build(&FileRequest {
            version: 2,
            target: FileTarget::Blob(BlobId([1; 32])),
        });
        let mut words = capnp::serialize::write_message_to_words(&b);
        // Segment table (8 bytes) + root pointer (8 bytes) + data word: the
        // discriminant is bytes 2..4 of the data word.
        words[16 + 2] = 7;
        let mut slice = words.as_slice();
        let reader =
            capnp::serialize::read_message_from_flat_slice(&mut slice, Default::default()).unwrap();
        let e = codec::read_message::<FileRequest, _>(&reader).unwrap_err();
        assert_eq!(e, DecodeError::UnknownVariant("fileRequest"));
        assert_eq!(e.error_code(), ErrorCode::Malformed);
    }

    #[test]
    fn list_limits() {
        let sp = sync_post(1, 5, "hi", false);
        let h = heart(2, sp.post_id(), 1);
        let file = StoredFile {
            post: sp.clone(),
            author_recent_posts: None,
            comments: Vec::new(),
            hearts: vec![h.clone(); MAX_STORED_HEARTS + 1],
        };
        let e = wire_round_trip(&file).unwrap_err();
        assert_eq!(
            e,
            DecodeError::TooMany {
                field: "hearts",
                max: MAX_STORED_HEARTS,
                got: MAX_STORED_HEARTS + 1
            }
        );
        assert_eq!(e.error_code(), ErrorCode::TooLarge);

        let c = comment(3, sp.post_id(), "x", None);
        let file = StoredFile {
            post: sp.clone(),
            author_recent_posts: None,
            comments: vec![c.clone(); MAX_STORED_COMMENTS + 1],
            hearts: Vec::new(),
        };
        assert!(matches!(
            wire_round_trip(&file),
            Err(DecodeError::TooMany {
                field: "comments",
                max: 1024,
                ..
            })
        ));

        let diff = BlobHeaderDiff {
            version: 2,
            post_id: sp.post_id(),
            added_comments: vec![c; MAX_DIFF_COMMENTS + 1],
            removed_comments: Vec::new(),
            added_hearts: Vec::new(),
        };
        assert!(matches!(
            wire_round_trip(&diff),
            Err(DecodeError::TooMany {
                field: "addedComments",
                max: 256,
                ..
            })
        ));
        let diff = BlobHeaderDiff {
            added_comments: Vec::new(),
            removed_comments: vec![CommentHash([1; 32]); MAX_DIFF_COMMENTS + 1],
            ..diff
        };
        assert!(matches!(
            wire_round_trip(&diff),
            Err(DecodeError::TooMany {
                field: "removedComments",
                max: 256,
                ..
            })
        ));
        let diff = BlobHeaderDiff {
            removed_comments: Vec::new(),
            added_hearts: vec![h; MAX_DIFF_HEARTS + 1],
            ..diff
        };
        assert!(matches!(
            wire_round_trip(&diff),
            Err(DecodeError::TooMany {
                field: "addedHearts",
                max: 1024,
                ..
            })
        ));

        // StoredFile without its post.
        let mut b = capnp::message::Builder::new_default();
        b.init_root::<files_capnp::stored_file::Builder<'_>>()
            .init_hearts(0);
        assert_eq!(
            codec::reread::<StoredFile>(&b).unwrap_err(),
            DecodeError::Missing("post")
        );
    }

    #[test]
    fn version_out_of_range_is_unsupported() {
        assert_eq!(
            read_as_message(&blob_response(1)).unwrap(),
            blob_response(1)
        );
        let e = read_as_message(&FileResponse {
            version: 3,
            ..blob_response(1)
        })
        .unwrap_err();
        assert_eq!(
            e,
            DecodeError::UnsupportedVersion {
                got: 3,
                min: 2,
                max: 2
            }
        );
        assert_eq!(e.error_code(), ErrorCode::UnsupportedVersion);
        let push = AuthorUpdatePush {
            version: 0,
            recent: recent(1, 1, 1),
        };
        assert!(matches!(
            read_as_message(&push),
            Err(DecodeError::UnsupportedVersion { got: 0, .. })
        ));
    }
}
