//! The feed: stored posts, newest first, decrypted where this node holds a
//! key, each labelled with the personas whose follows surfaced it; and the
//! per-persona view (`feed --persona`). A reply carries the id of the post
//! it answers ([`FeedItem::reply_to`]); [`threaded`] orders a page so that
//! replies follow their post.

use std::collections::{HashMap, HashSet};

use distsoc_protocol::ids::{PostId, PostingId};
use distsoc_protocol::messages::content::{open_post, PostBody, SyncPost};

use crate::node::{Node, NodeError};

/// A post as shown in a feed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedItem {
    /// Post id (hex).
    pub id: String,
    /// Author posting id (hex).
    pub author: String,
    /// The author's display name, if their profile is known.
    pub author_name: Option<String>,
    /// Creation time, ms since epoch.
    pub created_at_ms: u64,
    /// Whether the post is encrypted.
    pub encrypted: bool,
    /// The text, or `None` when we cannot decrypt it.
    pub text: Option<String>,
    /// Number of attachments (0 when unreadable).
    pub attachments: usize,
    /// The names of the personas whose follows surfaced this post (empty
    /// for a post by one of our personas or by someone no persona follows,
    /// e.g. an encrypted post found by recipient match).
    pub followed_by: Vec<String>,
    /// The post this one replies to (`Post.replyTo`, hex), if it is a
    /// reply.
    pub reply_to: Option<String>,
}

/// Who follows whom, per persona, read once per feed.
struct Follows {
    /// Followed posting id -> the names of the personas following it.
    by_author: HashMap<PostingId, Vec<String>>,
}

impl Follows {
    fn read(node: &Node) -> Result<Self, NodeError> {
        let names: HashMap<PostingId, String> = node
            .store
            .posting_identities()?
            .into_iter()
            .map(|p| (p.posting_id, p.display_name))
            .collect();
        let mut by_author: HashMap<PostingId, Vec<String>> = HashMap::new();
        for f in node.store.follow_entries()? {
            let name = names
                .get(&f.persona)
                .cloned()
                .unwrap_or_else(|| f.persona.to_hex()[..8].to_string());
            by_author.entry(f.posting_id).or_default().push(name);
        }
        Ok(Self { by_author })
    }
}

/// Which posts a per-persona feed shows: those by the persona, by an id
/// it follows, or sealed to it.
struct PersonaFilter {
    persona: PostingId,
    follows: HashSet<PostingId>,
}

impl PersonaFilter {
    fn admits(&self, post: &SyncPost) -> bool {
        let author = post.post.body().author;
        author == self.persona
            || self.follows.contains(&author)
            || post
                .visibility
                .recipients()
                .iter()
                .any(|w| w.recipient == self.persona.0)
    }
}

impl Node {
    /// The reverse-chronological feed of every persona, decrypted where we
    /// hold a key. A post superseded by a held post of the same author that
    /// `replaces` it (a re-encrypted copy) is not shown: one logical post,
    /// one item.
    pub fn feed(&self, limit: usize) -> Result<Vec<FeedItem>, NodeError> {
        self.feed_of(limit, None)
    }

    /// The feed as persona `persona` sees it (`None`: every persona, the
    /// merged feed): its own posts, posts by the ids it follows, and posts
    /// sealed to it.
    pub fn feed_of(&self, limit: usize, persona: Option<&str>) -> Result<Vec<FeedItem>, NodeError> {
        let filter = match persona {
            None => None,
            Some(name) => {
                let p = self.persona(name)?.posting_id;
                Some(PersonaFilter {
                    persona: p,
                    follows: self.store.follows_of(p)?.into_iter().collect(),
                })
            }
        };
        let seeds = self.reading_seeds()?;
        let follows = Follows::read(self)?;
        let mut items = Vec::new();
        let mut replaced: HashSet<(PostId, PostingId)> = HashSet::new();
        let mut before = None;
        while items.len() < limit {
            // A replacement keeps its original's createdAtMs, so the two
            // meet in one page; read one more than needed for ties.
            let want = limit - items.len() + 1;
            let page = self.store.feed(want, before)?;
            let last_page = page.len() < want;
            for post in &page {
                let body = post.post.body();
                if let Some(old) = body.replaces {
                    replaced.insert((old, body.author));
                }
            }
            for post in page {
                if items.len() >= limit {
                    break;
                }
                let body = post.post.body();
                before = Some((body.created_at_ms, post.post_id()));
                if replaced.contains(&(post.post_id(), body.author)) {
                    continue;
                }
                if filter.as_ref().is_some_and(|f| !f.admits(&post))
                    || crate::archive::is_archive_post(&post, self.node_id())
                {
                    continue;
                }
                items.push(self.feed_item(&post, &seeds, &follows)?);
            }
            if last_page {
                break;
            }
        }
        Ok(items)
    }

    fn feed_item(
        &self,
        post: &SyncPost,
        seeds: &[zeroize::Zeroizing<[u8; 32]>],
        follows: &Follows,
    ) -> Result<FeedItem, NodeError> {
        let body = post.post.body();
        let encrypted = body.is_sealed();
        let opened: Option<PostBody> = seeds
            .iter()
            .find_map(|s| open_post(s, &post.post, &post.visibility).ok());
        let author_name = self
            .store
            .get_profile(body.author)?
            .map(|p| p.body().display_name.clone());
        Ok(FeedItem {
            id: post.post_id().to_hex(),
            author: body.author.to_hex(),
            author_name,
            created_at_ms: body.created_at_ms,
            encrypted,
            attachments: opened.as_ref().map_or(0, |b| b.attachments.len()),
            text: opened.map(|b| b.text),
            followed_by: follows
                .by_author
                .get(&body.author)
                .cloned()
                .unwrap_or_default(),
            reply_to: body.reply_to.map(|p| p.to_hex()),
        })
    }
}

/// The display order of a feed page: each item not answering another item
/// of the page, newest first as the feed is, directly followed by the
/// replies to it found in the page (depth-first, oldest reply first), each
/// with its depth (0 for a top-level item). A reply whose post is not in
/// the page stays at its own place, depth 0 (it is still marked as a reply
/// by its `reply_to`).
pub fn threaded(items: &[FeedItem]) -> Vec<(usize, &FeedItem)> {
    let in_page: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&FeedItem>> = HashMap::new();
    for i in items {
        if let Some(parent) = i.reply_to.as_deref().filter(|p| in_page.contains(p)) {
            children.entry(parent).or_default().push(i);
        }
    }
    for replies in children.values_mut() {
        // The page is newest first; a thread reads oldest first.
        replies.sort_by_key(|i| (i.created_at_ms, i.id.clone()));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack: Vec<(usize, &FeedItem)> = Vec::new();
    for top in items
        .iter()
        .filter(|i| !i.reply_to.as_deref().is_some_and(|p| in_page.contains(p)))
    {
        stack.push((0, top));
        while let Some((depth, item)) = stack.pop() {
            // A cycle is impossible (ids are hashes), but a page is input.
            if !seen.insert(item.id.as_str()) {
                continue;
            }
            out.push((depth, item));
            if let Some(replies) = children.get(item.id.as_str()) {
                for r in replies.iter().rev() {
                    stack.push((depth + 1, r));
                }
            }
        }
    }
    out
}
