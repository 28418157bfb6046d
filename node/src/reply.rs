//! Replies (`distsoc-node reply`): a post whose signed `Post.replyTo` names
//! the post it answers.
//!
//! **Who replies.** With `--as`, that persona. Without it, the persona that
//! decrypted the post (identity rollout phase 5: "replies and comments
//! default to the persona that decrypted the post"):
//!
//! * a sealed post: the first persona (oldest first) whose key is one of its
//!   recipients, preferring one that is not its author (a post one persona
//!   sealed to another is answered by the one it was sealed to);
//! * a public post: the author's own persona when the post is ours; else the
//!   persona that follows its author (the oldest such follow); else the
//!   default persona.
//!
//! **Who can read it.** A reply to a public post is public. A reply to a
//! sealed post is sealed to the same audience the node can name: every
//! recipient of the original's wrapped keys (their ids travel in clear in
//! its visibility), plus its author and the replier, so everyone who could
//! read the post can read the reply, and nobody else. (A member later
//! removed from the original's access list keeps the reply: revocation
//! applies per post.) The original's author finds the reply by recipient
//! match on its next pull; a public reply reaches those who follow the
//! replier.

use distsoc_net::now_ms;
use distsoc_protocol::ids::{PostId, PostingId};
use distsoc_protocol::messages::content::{open_post, SyncPost};
use distsoc_protocol::sign::SigningKey;

use crate::compose;
use crate::node::{Node, NodeError};

/// Why this persona replies, as `reply` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyPersonaReason {
    /// Named with `--as`.
    Chosen,
    /// Its key opened the sealed post.
    Decrypted,
    /// It wrote the post.
    Author,
    /// It follows the post's author.
    Follows,
    /// The default persona (nothing else applied).
    Default,
}

/// A reply as [`Node::reply`] made it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The reply, stored and listed in the persona's recent posts.
    pub post: SyncPost,
    /// The persona that signed it.
    pub persona: String,
    /// Why that persona.
    pub reason: ReplyPersonaReason,
}

impl Node {
    /// Replies to the held post `parent` with `text`, as `persona` or, when
    /// `None`, the persona that decrypted it (module documentation), sealed
    /// to the original's audience when it is sealed.
    pub fn reply(
        &self,
        parent: PostId,
        text: String,
        persona: Option<&str>,
    ) -> Result<Reply, NodeError> {
        let original = self.store.get_post(parent)?.ok_or_else(|| {
            NodeError::Invalid(format!(
                "post {parent} is not held here (sync or connect to pull it first)"
            ))
        })?;
        let (key, name, reason) = match persona {
            Some(name) => (
                self.persona_key(Some(name))?,
                name.to_string(),
                ReplyPersonaReason::Chosen,
            ),
            None => self.replying_persona(&original)?,
        };
        let me = PostingId(key.public());
        let body = original.post.body();
        let audience: Option<Vec<PostingId>> = if body.is_sealed() {
            let mut ids: Vec<PostingId> = original
                .visibility
                .recipients()
                .iter()
                .map(|w| PostingId(w.recipient))
                .collect();
            ids.push(body.author);
            // The replier is added (first) by compose.
            ids.retain(|id| *id != me);
            Some(ids)
        } else {
            None
        };
        let now = now_ms();
        let post = compose::compose_reply(
            &key,
            now,
            text,
            Vec::new(),
            audience.as_deref(),
            Some(parent),
            &mut rand_core::OsRng,
        )?;
        self.store.insert_post(&post, now)?;
        self.publish_recent(&key, &post, now)?;
        Ok(Reply {
            post,
            persona: name,
            reason,
        })
    }

    /// The persona a reply to `post` defaults to (module documentation).
    fn replying_persona(
        &self,
        post: &SyncPost,
    ) -> Result<(SigningKey, String, ReplyPersonaReason), NodeError> {
        let author = post.post.body().author;
        let mut held = Vec::new();
        for p in self.personas()? {
            if let Some(full) = self.store.posting_identity(p.posting_id)? {
                held.push((p, full.secret_seed));
            }
        }
        let key_of = |seed: &[u8; 32]| SigningKey::from_seed(seed);
        if post.post.body().is_sealed() {
            let recipients = post.visibility.recipients();
            let openers: Vec<_> = held
                .iter()
                .filter(|(p, _)| recipients.iter().any(|w| w.recipient == p.posting_id.0))
                .filter(|(_, seed)| open_post(seed, &post.post, &post.visibility).is_ok())
                .collect();
            let chosen = openers
                .iter()
                .find(|(p, _)| p.posting_id != author)
                .or_else(|| openers.first());
            return match chosen {
                Some((p, seed)) => Ok((
                    key_of(seed),
                    p.display_name.clone(),
                    if p.posting_id == author {
                        ReplyPersonaReason::Author
                    } else {
                        ReplyPersonaReason::Decrypted
                    },
                )),
                None => Err(NodeError::Invalid(format!(
                    "none of your personas can read post {}: it was not sealed to you \
                     (name one with --as to reply anyway)",
                    post.post_id()
                ))),
            };
        }
        if let Some((p, seed)) = held.iter().find(|(p, _)| p.posting_id == author) {
            return Ok((
                key_of(seed),
                p.display_name.clone(),
                ReplyPersonaReason::Author,
            ));
        }
        for f in self.store.follow_entries()? {
            if f.posting_id != author {
                continue;
            }
            if let Some((p, seed)) = held.iter().find(|(p, _)| p.posting_id == f.persona) {
                return Ok((
                    key_of(seed),
                    p.display_name.clone(),
                    ReplyPersonaReason::Follows,
                ));
            }
        }
        let key = self.posting_key()?;
        let name = held
            .iter()
            .find(|(p, _)| p.posting_id.0 == key.public())
            .map_or_else(|| "default".to_string(), |(p, _)| p.display_name.clone());
        Ok((key, name, ReplyPersonaReason::Default))
    }
}
