//! Comment gating: the post header with its [`CommentPolicy`] and wrap
//! slots ([`PostHeader`]), comment bodies and [`InlineComment`] with its
//! friend-of-friend proof and [`CommentVerdict`].

use distsoc_schema::content_capnp;
use zeroize::Zeroizing;

use crate::codec::{self, len32, Struct};
use crate::error::DecodeError;
use crate::fof::{self, FofError, VouchKey, WrapSlot, SEALED_LEN, VOUCH_MAC_LEN};
use crate::ids::{CommentHash, PostId, PostingId};
use crate::messages::signed::{Signed, SignedBody};
use crate::sign::{Purpose, SigningKey, SIGNATURE_LEN};

use super::{
    bad_sig, post_id, posting_id, sign_checked, ContentError, IngestError, MAX_COMMENT_BODY_BYTES,
    MAX_COMMENT_TEXT_BYTES, MAX_HEADER_BYTES, MAX_WRAP_SLOTS,
};

// ---------------------------------------------------------------------------
// Comment policy, wrap slots, headers
// ---------------------------------------------------------------------------

/// `CommentPolicy`: who may comment on a post.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
        self.belongs_to(post_id, author)?;
        self.verify().map_err(bad_sig("header"))
    }

    /// The checks of [`validate_for`](Self::validate_for) but the signature.
    pub fn belongs_to(&self, post_id: &PostId, author: &PostingId) -> Result<(), IngestError> {
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
        Ok(())
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
