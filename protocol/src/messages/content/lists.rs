//! Recent-post lists ([`AuthorRecentPosts`]) and hearts ([`HeartBody`]).

use distsoc_schema::content_capnp;

use crate::codec::{self, len32, Struct};
use crate::error::DecodeError;
use crate::ids::{PostId, PostingId};
use crate::limits::{MAX_RECENT_POSTS_BYTES, WORD_BYTES};
use crate::messages::common::VisibilityHint;
use crate::messages::signed::{Signed, SignedBody};
use crate::sign::Purpose;

use super::{post_id, posting_id, MAX_HEART_BYTES, MAX_RECENT_POST_ENTRIES};

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
/// signed list is decoded, and by [`sign_checked`](super::sign_checked) when signing).
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
