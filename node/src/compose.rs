//! What the node's author side builds: posts for a visibility intent, the
//! author's recent-post list, and the two revocation operations
//! (architecture-roadmap D-1/D-2). Pure functions: time and randomness are
//! passed in; storing and sending is the caller's job.

use std::str::FromStr;

use distsoc_protocol::codec::{self, Struct};
use distsoc_protocol::envelope::Cek;
use distsoc_protocol::error::DecodeError;
use distsoc_protocol::ids::{PostId, PostingId};
use distsoc_protocol::messages::common::VisibilityHint;
use distsoc_protocol::messages::content::{
    seal_post, sign_checked, Attachment, AuthorRecentPosts, ContentError, DeleteRecordBody,
    EncryptedVisibility, Post, PostBody, PostContent, PostVisibility, RecentPost,
    SignedAuthorRecentPosts, SignedDeleteRecord, SignedVisibilityUpdate, SyncPost,
    VisibilityUpdateBody,
};
use distsoc_protocol::sign::SigningKey;
use rand_core::{CryptoRng, RngCore};

/// Who a new post is for, as the user says it (resolved to recipients at
/// creation; the recipient list is then fixed until revocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisibilityIntent {
    /// Everyone.
    Public,
    /// Everyone the author follows ("friends" = follows; follow-back decides
    /// who actually pulls it).
    Friends,
    /// The members of a named circle.
    Circle(String),
    /// These posting ids.
    Direct(Vec<PostingId>),
}

/// Why `--to` could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--to must be `public`, `friends`, `circle:NAME` or posting ids (64 hex digits): {0}")]
pub struct IntentParseError(pub String);

impl FromStr for VisibilityIntent {
    type Err = IntentParseError;

    /// `public`, `friends`, `circle:NAME`, or one or more comma-separated ids.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(Self::Public),
            "friends" => Ok(Self::Friends),
            _ => {
                if let Some(name) = s.strip_prefix("circle:") {
                    if name.is_empty() {
                        return Err(IntentParseError(s.into()));
                    }
                    return Ok(Self::Circle(name.into()));
                }
                s.split(',')
                    .map(|id| id.trim().parse::<PostingId>())
                    .collect::<Result<Vec<_>, _>>()
                    .map(Self::Direct)
                    .map_err(|_| IntentParseError(s.into()))
            }
        }
    }
}

/// Why a post could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The intent resolved to no recipient other than the author.
    #[error("no recipients: the circle is empty, or you follow nobody")]
    NoRecipients,
    /// Building or sealing failed (size limits, keys).
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The post is not encrypted (revocation applies to encrypted posts).
    #[error("post {0} is public: there is no access list to change")]
    NotEncrypted(PostId),
    /// The author cannot open its own post (it is not among the recipients).
    #[error("cannot open post {0} with the author's key")]
    NotOpenable(PostId),
    /// A field is over a limit of the protocol (the error names the field
    /// and the limit): peers would refuse it, so it is neither stored nor
    /// sent.
    #[error("{what} is over a protocol limit: {error}")]
    Limit {
        /// What was being composed (`post`, `profile`, ...).
        what: &'static str,
        /// The field and its limit.
        error: DecodeError,
    },
}

/// Checks a value the user composed against every limit of the protocol
/// before it is signed, stored or sent: it is encoded and read back with the
/// same bounded reader a peer uses, so whatever a receiver would refuse
/// (over-long text, too many attachments or anchors, ...) is refused here,
/// with the field and its limit named.
pub fn check_limits<T: Struct>(what: &'static str, value: &T) -> Result<(), ComposeError> {
    codec::from_canonical::<T>(what, &codec::canonical_of(value), usize::MAX)
        .map(drop)
        .map_err(|error| ComposeError::Limit { what, error })
}

/// The recipients of an encrypted post: the resolved audience plus the author
/// (so the author's other devices can read it back), deduplicated, in a stable
/// order.
pub fn recipients_with_author(author: PostingId, audience: &[PostingId]) -> Vec<PostingId> {
    let mut all: Vec<PostingId> = audience.iter().copied().filter(|r| *r != author).collect();
    all.sort();
    all.dedup();
    all.insert(0, author);
    all
}

/// Builds a post: public when `audience` is `None`, else sealed for the
/// audience (which must contain someone besides the author).
pub fn compose<R: RngCore + CryptoRng>(
    key: &SigningKey,
    now_ms: u64,
    text: String,
    attachments: Vec<Attachment>,
    audience: Option<&[PostingId]>,
    rng: &mut R,
) -> Result<SyncPost, ComposeError> {
    compose_reply(key, now_ms, text, attachments, audience, None, rng)
}

/// [`compose`] with `Post.replyTo` set to `reply_to` (signed, so part of
/// the PostId): a reply, public or sealed like any other post.
pub fn compose_reply<R: RngCore + CryptoRng>(
    key: &SigningKey,
    now_ms: u64,
    text: String,
    attachments: Vec<Attachment>,
    audience: Option<&[PostingId]>,
    reply_to: Option<PostId>,
    rng: &mut R,
) -> Result<SyncPost, ComposeError> {
    let author = PostingId(key.public());
    let body = PostBody {
        text,
        attachments,
        rotation: None,
        archive: None,
        group: None,
    };
    // The body first: once sealed, its limits are invisible to relays, and a
    // recipient would find the post unreadable.
    check_limits("post", &body)?;
    let post = match audience {
        None => {
            let post = Post {
                reply_to,
                ..Post::new_public(author, now_ms, body.text, body.attachments)
            }
            .sign(key)?;
            SyncPost::new(key, post, PostVisibility::Public, None)
        }
        Some(audience) => {
            let recipients = recipients_with_author(author, audience);
            if recipients.len() < 2 {
                return Err(ComposeError::NoRecipients);
            }
            let (post, visibility) = match reply_to {
                None => seal_post(key, now_ms, &body, &recipients, rng)?,
                // seal_post's draws, in its order, with replyTo set before
                // the post is signed.
                Some(parent) => {
                    let cek = Cek::generate(rng);
                    let mut nonce = [0u8; distsoc_protocol::envelope::NONCE_LEN];
                    rng.fill_bytes(&mut nonce);
                    let mut eph = zeroize::Zeroizing::new([0u8; 32]);
                    rng.fill_bytes(eph.as_mut());
                    let visibility = EncryptedVisibility::wrap(&cek, &eph, &recipients)?;
                    let post = Post {
                        reply_to: Some(parent),
                        ..Post::new_sealed(author, now_ms, &body, &cek, nonce)?
                    };
                    (post.sign(key)?, PostVisibility::Encrypted(visibility))
                }
            };
            SyncPost::new(key, post, visibility, None)
        }
    };
    check_limits("post", &post)?;
    Ok(post)
}

/// The author's next recent-post list with `post` added first: seq + 1,
/// trimmed to 256 KiB (oldest entries dropped).
pub fn next_recent(
    key: &SigningKey,
    previous: Option<&AuthorRecentPosts>,
    post: &SyncPost,
    now_ms: u64,
) -> Result<SignedAuthorRecentPosts, ComposeError> {
    let body = post.post.body();
    let entry = RecentPost {
        post_id: post.post_id(),
        created_at_ms: body.created_at_ms,
        hint: if body.is_sealed() {
            VisibilityHint::Encrypted
        } else {
            VisibilityHint::Public
        },
    };
    let mut posts = vec![entry];
    if let Some(prev) = previous {
        posts.extend(
            prev.posts
                .iter()
                .filter(|p| p.post_id != entry.post_id)
                .cloned(),
        );
    }
    let mut list = AuthorRecentPosts {
        author: PostingId(key.public()),
        seq: distsoc_protocol::recent::next_seq(previous.map(|p| p.seq)),
        updated_at_ms: now_ms,
        posts,
    };
    list.trim_to_fit();
    Ok(sign_checked(list, key)?)
}

fn author_cek(
    key: &SigningKey,
    post: &SyncPost,
) -> Result<(Cek, EncryptedVisibility), ComposeError> {
    let id = post.post_id();
    match &post.visibility {
        PostVisibility::Public => Err(ComposeError::NotEncrypted(id)),
        PostVisibility::Encrypted(e) => {
            let cek = e
                .unwrap_cek(&key.seed())
                .map_err(|_| ComposeError::NotOpenable(id))?;
            Ok((cek, e.clone()))
        }
        // A visibility this build does not know has no CEK it can unwrap.
        _ => Err(ComposeError::NotOpenable(id)),
    }
}

/// "Sync access list": the same CEK re-wrapped for `audience` (plus the
/// author), as a signed visibility update. Cheap; enough when the removed
/// members never fetched the ciphertext.
pub fn rewrap<R: RngCore + CryptoRng>(
    key: &SigningKey,
    post: &SyncPost,
    audience: &[PostingId],
    now_ms: u64,
    rng: &mut R,
) -> Result<SignedVisibilityUpdate, ComposeError> {
    let (cek, _) = author_cek(key, post)?;
    let author = PostingId(key.public());
    let recipients = recipients_with_author(author, audience);
    let mut eph = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(eph.as_mut());
    let visibility = PostVisibility::Encrypted(EncryptedVisibility::wrap(&cek, &eph, &recipients)?);
    let body = VisibilityUpdateBody {
        post_id: post.post_id(),
        author,
        visibility,
        updated_at_ms: now_ms,
    };
    Ok(sign_checked(body, key)?)
}

/// "Re-encrypt": a new post with a new CEK for `audience` (plus the author),
/// the same text, attachments and creation time, `replaces` = the old id; and
/// the delete record for the old id. Heavy; for when removed members may hold
/// the old ciphertext.
pub fn reencrypt<R: RngCore + CryptoRng>(
    key: &SigningKey,
    post: &SyncPost,
    audience: &[PostingId],
    now_ms: u64,
    rng: &mut R,
) -> Result<(SyncPost, SignedDeleteRecord), ComposeError> {
    let (cek, _) = author_cek(key, post)?;
    let old = post.post.body();
    let body = match &old.content {
        PostContent::Sealed(_) => old.open(&cek)?,
        PostContent::Plain(b) => b.clone(),
    };
    let author = PostingId(key.public());
    let recipients = recipients_with_author(author, audience);
    let new_cek = Cek::generate(rng);
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let mut eph = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(eph.as_mut());
    let mut new_post = Post::new_sealed(author, old.created_at_ms, &body, &new_cek, nonce)?;
    new_post.reply_to = old.reply_to;
    new_post.replaces = Some(post.post_id());
    let signed = new_post.sign(key)?;
    let visibility =
        PostVisibility::Encrypted(EncryptedVisibility::wrap(&new_cek, &eph, &recipients)?);
    let new_id = signed.post_id();
    let replacement = SyncPost::new(key, signed, visibility, None);
    let delete = sign_checked(
        DeleteRecordBody {
            post_id: post.post_id(),
            author,
            deleted_at_ms: now_ms,
            replaced_by: Some(new_id),
        },
        key,
    )?;
    Ok((replacement, delete))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use distsoc_protocol::messages::content::open_post;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_seed(&[b; 32])
    }

    #[test]
    fn intents_parse() {
        assert_eq!(
            "public".parse::<VisibilityIntent>().unwrap(),
            VisibilityIntent::Public
        );
        assert_eq!(
            "friends".parse::<VisibilityIntent>().unwrap(),
            VisibilityIntent::Friends
        );
        assert_eq!(
            "circle:family".parse::<VisibilityIntent>().unwrap(),
            VisibilityIntent::Circle("family".into())
        );
        let a = "11".repeat(32);
        let b = "22".repeat(32);
        assert_eq!(
            format!("{a},{b}").parse::<VisibilityIntent>().unwrap(),
            VisibilityIntent::Direct(vec![a.parse().unwrap(), b.parse().unwrap()])
        );
        assert!("circle:".parse::<VisibilityIntent>().is_err());
        assert!("bob".parse::<VisibilityIntent>().is_err());
    }

    #[test]
    fn compose_public_and_sealed_and_recent() {
        let (a, b, c) = (key(1), key(2), key(3));
        let mut rng = rand_core::OsRng;
        let public = compose(&a, 10, "hi".into(), vec![], None, &mut rng).unwrap();
        assert!(public.validate(None).is_ok());
        let dm = compose(
            &a,
            11,
            "psst".into(),
            vec![],
            Some(&[PostingId(b.public())]),
            &mut rng,
        )
        .unwrap();
        assert!(dm.validate(None).is_ok());
        assert_eq!(
            open_post(&b.seed(), &dm.post, &dm.visibility).unwrap().text,
            "psst"
        );
        assert_eq!(
            open_post(&a.seed(), &dm.post, &dm.visibility).unwrap().text,
            "psst"
        );
        assert!(open_post(&c.seed(), &dm.post, &dm.visibility).is_err());
        assert!(matches!(
            compose(
                &a,
                12,
                "x".into(),
                vec![],
                Some(&[PostingId(a.public())]),
                &mut rng
            ),
            Err(ComposeError::NoRecipients)
        ));
        let r1 = next_recent(&a, None, &public, 20).unwrap();
        let r2 = next_recent(&a, Some(r1.body()), &dm, 21).unwrap();
        assert_eq!((r1.body().seq, r2.body().seq), (1, 2));
        assert_eq!(r2.body().posts[0].post_id, dm.post_id());
        assert_eq!(r2.body().posts[1].post_id, public.post_id());
        assert!(r2.verify().is_ok());
    }

    #[test]
    fn revocation_rewrap_and_reencrypt() {
        let (a, b, c) = (key(1), key(2), key(3));
        let mut rng = rand_core::OsRng;
        let audience = [PostingId(b.public()), PostingId(c.public())];
        let mut post = compose(
            &a,
            10,
            "circle news".into(),
            vec![],
            Some(&audience),
            &mut rng,
        )
        .unwrap();
        // Sync access list: C removed, B keeps access, relays accept it.
        let update = rewrap(&a, &post, &audience[..1], 20, &mut rng).unwrap();
        post.apply_update(update).unwrap();
        assert!(post.validate(None).is_ok());
        assert!(open_post(&b.seed(), &post.post, &post.visibility).is_ok());
        assert!(open_post(&c.seed(), &post.post, &post.visibility).is_err());
        // Re-encrypt: new id, replaces the old, delete record for the old.
        let (new, delete) = reencrypt(&a, &post, &audience[..1], 30, &mut rng).unwrap();
        assert_ne!(new.post_id(), post.post_id());
        assert_eq!(new.post.body().replaces, Some(post.post_id()));
        assert_eq!(new.post.body().created_at_ms, 10);
        assert!(delete.validate_for(&post.post).is_ok());
        assert_eq!(
            open_post(&b.seed(), &new.post, &new.visibility)
                .unwrap()
                .text,
            "circle news"
        );
        assert!(open_post(&c.seed(), &new.post, &new.visibility).is_err());
        let public = compose(&a, 10, "p".into(), vec![], None, &mut rng).unwrap();
        assert!(matches!(
            rewrap(&a, &public, &[], 1, &mut rng),
            Err(ComposeError::NotEncrypted(_))
        ));
    }
}
