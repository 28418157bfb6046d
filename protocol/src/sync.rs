//! The pull-sync filter: which stored posts a responder sends to a requester.
//!
//! A `PullSyncRequest` carries a list of ids: the authors the requester
//! follows plus its own posting ids and NodeId. The responder sends a stored
//! post when [`PullFilter::decide`] returns a reason (architecture-roadmap
//! Phase C-2, identity-rollout phase 3):
//!
//! 1. the author is the requester itself (its authenticated NodeId; for a
//!    pre-split identity the posting id equals the NodeId) — own posts are
//!    relayed back, whatever their visibility;
//! 2. the post is public and its author is in the request's ids;
//! 3. the post is encrypted and one of its recipients *other than its author*
//!    is in the request's ids (recipient match: a DM from an author the
//!    requester does not follow is still found).
//!
//! The author's own wrapped key is left out of recipient match on purpose: one
//! list carries both followed authors and the requester's own ids (so a
//! responder cannot tell a persona from a follow), and an author who wraps the
//! CEK for itself to read its post back would otherwise have every encrypted
//! post sent to every follower.
//!
//! Otherwise the post is skipped. An encrypted post is never sent merely
//! because its author is followed: followers who are not recipients cannot read
//! it, and not sending it hides that it exists.
//!
//! The filter is a pure function over ids; the responder's store must find the
//! candidates with an index on authors and on wrapped-key recipients so the
//! cost does not grow with the store (see the node and anchor stores).

use std::collections::HashSet;

use crate::ids::{NodeId, PostingId};

/// Why a post is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendReason {
    /// The requester authored it.
    OwnPost,
    /// Public, by an author in the request's ids.
    FollowedAuthor,
    /// Encrypted, and a recipient is in the request's ids.
    Recipient,
}

/// Who can read a stored post, as far as the filter is concerned.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// Anyone.
    Public,
    /// The recipients of the wrapped keys (posting ids, NodeIds or group ids).
    Encrypted(&'a [PostingId]),
}

/// The requester side of one pull: its authenticated NodeId and the ids it
/// asked for.
#[derive(Debug, Clone)]
pub struct PullFilter {
    requester: NodeId,
    ids: HashSet<[u8; 32]>,
}

impl PullFilter {
    /// Builds the filter for one request. `ids` is `PullSyncRequest.ids`
    /// (already bounded by the decoder).
    pub fn new(requester: NodeId, ids: impl IntoIterator<Item = [u8; 32]>) -> Self {
        Self {
            requester,
            ids: ids.into_iter().collect(),
        }
    }

    /// The ids asked for.
    pub fn ids(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.ids.iter()
    }

    /// Whether (and why) to send a post by `author` with `audience`.
    pub fn decide(&self, author: &PostingId, audience: Audience<'_>) -> Option<SendReason> {
        if author.0 == self.requester.0 {
            return Some(SendReason::OwnPost);
        }
        match audience {
            Audience::Public => self
                .ids
                .contains(&author.0)
                .then_some(SendReason::FollowedAuthor),
            Audience::Encrypted(recipients) => {
                let matched = recipients
                    .iter()
                    .any(|r| r != author && self.ids.contains(&r.0));
                matched.then_some(SendReason::Recipient)
            }
        }
    }
}

/// `should_send_post` as a single call: true when [`PullFilter::decide`] gives a
/// reason.
pub fn should_send_post(filter: &PullFilter, author: &PostingId, audience: Audience<'_>) -> bool {
    filter.decide(author, audience).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ME: NodeId = NodeId([1; 32]);
    const ALICE: PostingId = PostingId([2; 32]);
    const BOB: PostingId = PostingId([3; 32]);
    const MY_PERSONA: PostingId = PostingId([4; 32]);

    fn filter() -> PullFilter {
        PullFilter::new(ME, [ALICE.0, MY_PERSONA.0, ME.0])
    }

    #[test]
    fn own_posts_always_come_back() {
        let mine = PostingId(ME.0);
        assert_eq!(
            filter().decide(&mine, Audience::Public),
            Some(SendReason::OwnPost)
        );
        assert_eq!(
            filter().decide(&mine, Audience::Encrypted(&[BOB])),
            Some(SendReason::OwnPost)
        );
    }

    #[test]
    fn public_posts_of_followed_authors_only() {
        assert_eq!(
            filter().decide(&ALICE, Audience::Public),
            Some(SendReason::FollowedAuthor)
        );
        assert_eq!(filter().decide(&BOB, Audience::Public), None);
    }

    #[test]
    fn encrypted_posts_by_recipient_match_only() {
        // Followed author, but we are not a recipient: not sent.
        assert_eq!(filter().decide(&ALICE, Audience::Encrypted(&[BOB])), None);
        // Not followed, but addressed to one of our personas: sent (DM found).
        assert_eq!(
            filter().decide(&BOB, Audience::Encrypted(&[ALICE, MY_PERSONA])),
            Some(SendReason::Recipient)
        );
        // Addressed to our NodeId.
        assert_eq!(
            filter().decide(&BOB, Audience::Encrypted(&[PostingId(ME.0)])),
            Some(SendReason::Recipient)
        );
        assert!(!should_send_post(&filter(), &BOB, Audience::Encrypted(&[])));
        // A followed author wrapping the key for itself does not make its
        // encrypted posts go to its followers.
        assert_eq!(
            filter().decide(&ALICE, Audience::Encrypted(&[ALICE, BOB])),
            None
        );
    }

    proptest! {
        #[test]
        fn encrypted_sent_iff_recipient_listed_or_own(
            author in any::<[u8; 32]>(),
            recips in proptest::collection::vec(any::<[u8; 32]>(), 0..8),
            ids in proptest::collection::vec(any::<[u8; 32]>(), 0..8),
        ) {
            let f = PullFilter::new(ME, ids.clone());
            let r: Vec<PostingId> = recips.iter().copied().map(PostingId).collect();
            let sent = should_send_post(&f, &PostingId(author), Audience::Encrypted(&r));
            let expect = author == ME.0 || recips.iter().any(|x| *x != author && ids.contains(x));
            prop_assert_eq!(sent, expect);
        }
    }
}
