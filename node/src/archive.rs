//! The archive deposit (`schema/README.md` §9.1, "The archive deposit"):
//! the local DM archive travels to this identity's other devices as
//! **archive posts** — ordinary encrypted posts by the node's NodeId, sealed
//! to that NodeId alone, whose sealed `PostBody` carries a
//! `DmArchiveChunk` and no text.
//!
//! * Who can open one: a holder of the network key (this node, or a device
//!   restored from its identity bundle). Peers and anchors hold it as
//!   ciphertext; by the self-wrap rule (§7) a pull serves it only to a
//!   requester whose NodeId is its author, so followers never even receive
//!   it. The node's own feed does not show it ([`is_archive_post`]).
//! * Deposit ([`Node::deposit_archive`]): the rows no archive post carries
//!   yet — the 1:1 archive's, then the group threads' messages (entries
//!   with `group` set, `peer` their sender) — are packed, oldest first,
//!   into posts of at most [`CHUNK_MAX_ENTRIES`] entries and [`CHUNK_BUDGET_BYTES`] bytes of
//!   entries, stored as our own posts, and the rows marked deposited. The
//!   posts then reach anchors the way all our posts do (`deposit_at`, the
//!   start of which packs first). It runs before every deposit at an
//!   anchor — each sync with an anchor (the `run` timer, `sync`, `connect`)
//!   and the end of `distsoc-node dm send` / `dm read` — so one DM command
//!   costs at most one archive post (a DM is at most 64 KiB of text), and
//!   a node that archived nothing since its last deposit does two indexed
//!   queries (1:1 rows, group rows) and writes nothing.
//! * Restore ([`Node::restore_archive`]): our own stored posts after a
//!   cursor are looked at; each archive post is opened with the network key
//!   and its entries are merged into the archive, deduplicated by the
//!   entry's `dedup` (BLAKE3-256 of the DM payload as it travelled, the key
//!   the archive already dedups on), so restoring twice, or restoring a
//!   message this device archived itself, keeps one row. An entry with
//!   `group` goes into its group thread (`store::dm_groups`), whose
//!   membership it sets if it is not older than the stored one. Restored
//!   rows count as deposited, so they never travel again. It runs after
//!   every pull sync that stored new posts, so an identity imported on a
//!   new device gets its DM history (group threads included) back at its
//!   first sync with the anchors its bundle names
//!   (`IdentityBundle.archiveAnchors`).

use distsoc_net::now_ms;
use distsoc_protocol::ids::{NodeId, PostingId};
use distsoc_protocol::messages::content::{
    open_post, seal_post, DmArchiveChunk, DmArchiveEntry, DmGroup, PostBody, SyncPost,
    MAX_ARCHIVE_ENTRIES, MAX_POST_BYTES,
};

use crate::compose::check_limits;
use crate::node::{Node, NodeError};
use crate::store::{ArchivedDm, GroupDm};

/// Most entries a node packs into one archive post (the schema allows
/// [`MAX_ARCHIVE_ENTRIES`]).
pub const CHUNK_MAX_ENTRIES: usize = 256;

/// Most bytes of entries (their canonical size) a node packs into one
/// archive post: 192 KiB, well within the 256 KiB a
/// sealed body may hold. One entry over it (a 64 KiB text cannot be) still
/// goes, alone.
pub const CHUNK_BUDGET_BYTES: usize = 192 * 1024;

/// Own posts looked at per store read during a restore.
const RESTORE_BATCH: usize = 256;

const _: () = assert!(CHUNK_MAX_ENTRIES <= MAX_ARCHIVE_ENTRIES);
const _: () = assert!(CHUNK_BUDGET_BYTES < MAX_POST_BYTES);

/// What one deposit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveDeposit {
    /// Archive posts made.
    pub posts: usize,
    /// Archived DMs they carry.
    pub entries: usize,
}

/// What one restore did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveRestore {
    /// Archive posts opened.
    pub posts: usize,
    /// Entries that were new to the local archive.
    pub restored: usize,
    /// Entries already there (restored before, or archived here).
    pub known: usize,
}

/// Whether `post` has the shape of an archive post of `node`: by `node`'s
/// NodeId, encrypted, and sealed to that NodeId alone. (A post composed by
/// `post` always has another recipient, so no other post has this shape.)
pub fn is_archive_post(post: &SyncPost, node: NodeId) -> bool {
    let body = post.post.body();
    let recipients = post.visibility.recipients();
    body.author.0 == node.0
        && body.is_sealed()
        && recipients.len() == 1
        && recipients[0].recipient == node.0
}

/// An entry's canonical size, at most: its list element (2 data words, 4
/// pointers; a chunk with no group entry drops the 4th), the two 32-byte
/// ids and the text with its NUL, word-aligned, and for a group message
/// its `DmGroup` (2 pointers, the 16-byte thread id, a pointer and 32
/// bytes per member) (the body around the entries adds a few words).
fn entry_bytes(e: &DmArchiveEntry) -> usize {
    let group = e
        .group
        .as_ref()
        .map_or(0, |g| 16 + 16 + 40 * g.members.len());
    48 + 32 + 32 + (e.text.len() + 1).div_ceil(8) * 8 + group
}

/// Where a packed entry came from: the row to mark deposited.
#[derive(Debug, Clone, Copy)]
enum Row {
    /// A `dm_archive` row.
    Dm(i64),
    /// A `dm_group_messages` row.
    Group(i64),
}

impl Node {
    /// Packs every archived DM (1:1 and group messages) no archive post
    /// carries yet into archive posts (stored as our own posts, deposited
    /// at anchors like them) and marks the rows deposited. The 1:1 rows go
    /// first, then the group messages, each oldest row first.
    pub fn deposit_archive(&self) -> Result<ArchiveDeposit, NodeError> {
        let key = self.archive_key();
        let mut done = ArchiveDeposit::default();
        loop {
            let mut pending: Vec<(DmArchiveEntry, Row)> = self
                .store
                .archive_pending(&key, CHUNK_MAX_ENTRIES)?
                .into_iter()
                .map(|p| {
                    let e = DmArchiveEntry {
                        peer: p.dm.peer.0,
                        outgoing: p.dm.outgoing,
                        created_at_ms: p.dm.sent_at_ms,
                        text: p.dm.text,
                        dedup: p.dedup,
                        group: None,
                    };
                    (e, Row::Dm(p.archive_id))
                })
                .collect();
            if pending.len() < CHUNK_MAX_ENTRIES {
                let more = self
                    .store
                    .group_archive_pending(&key, CHUNK_MAX_ENTRIES - pending.len())?;
                pending.extend(more.into_iter().map(|p| {
                    let e = DmArchiveEntry {
                        peer: p.dm.sender.0,
                        outgoing: p.dm.outgoing,
                        created_at_ms: p.dm.sent_at_ms,
                        text: p.dm.text,
                        dedup: p.dedup,
                        group: Some(DmGroup {
                            thread_id: p.thread,
                            members: p.members.iter().map(|m| m.0).collect(),
                        }),
                    };
                    (e, Row::Group(p.id))
                }));
            }
            if pending.is_empty() {
                return Ok(done);
            }
            let mut n = 0;
            let mut bytes = 0;
            for (e, _) in &pending {
                let b = entry_bytes(e);
                if n > 0 && bytes + b > CHUNK_BUDGET_BYTES {
                    break;
                }
                bytes += b;
                n += 1;
            }
            pending.truncate(n);
            let (entries, rows): (Vec<DmArchiveEntry>, Vec<Row>) = pending.into_iter().unzip();
            self.store_archive_post(entries)?;
            let mut dms = Vec::new();
            let mut groups = Vec::new();
            for r in rows {
                match r {
                    Row::Dm(id) => dms.push(id),
                    Row::Group(id) => groups.push(id),
                }
            }
            self.store.mark_deposited(&dms, &groups)?;
            done.posts += 1;
            done.entries += n;
        }
    }

    fn store_archive_post(&self, entries: Vec<DmArchiveEntry>) -> Result<SyncPost, NodeError> {
        let body = PostBody {
            text: String::new(),
            attachments: Vec::new(),
            rotation: None,
            archive: Some(DmArchiveChunk { entries }),
            group: None,
        };
        check_limits("archive post", &body)?;
        let key = self.key.signing_key();
        let me = PostingId(self.node_id().0);
        let now = now_ms();
        let (post, visibility) = seal_post(key, now, &body, &[me], &mut rand_core::OsRng)
            .map_err(crate::compose::ComposeError::from)?;
        let post = SyncPost::new(key, post, visibility, None);
        check_limits("archive post", &post)?;
        // Not added to the author's recent-post list: nobody else may learn
        // that it exists.
        self.store.insert_post(&post, now)?;
        Ok(post)
    }

    /// Merges the entries of every archive post stored since the last
    /// restore into the local archive (deduplicated by `dedup`).
    pub fn restore_archive(&self) -> Result<ArchiveRestore, NodeError> {
        let me = self.node_id();
        let seed = self.key.signing_key().seed();
        let key = self.archive_key();
        let mut done = ArchiveRestore::default();
        let mut cursor = self.store.archive_restored_seq()?;
        loop {
            let batch =
                self.store
                    .posts_by_authors_since(&[PostingId(me.0)], cursor, RESTORE_BATCH)?;
            let full = batch.len() == RESTORE_BATCH;
            for (seq, post) in batch {
                cursor = seq;
                if !is_archive_post(&post, me) {
                    continue;
                }
                // A post of this shape that does not open, or carries no
                // chunk, is not ours to restore: skipped, not fatal.
                let Some(chunk) = open_post(&seed, &post.post, &post.visibility)
                    .ok()
                    .and_then(|b| b.archive)
                else {
                    continue;
                };
                done.posts += 1;
                let now = now_ms();
                for e in chunk.entries {
                    if let Some(g) = &e.group {
                        if self.restore_group_entry(&key, g, &e, now)? {
                            done.restored += 1;
                        } else {
                            done.known += 1;
                        }
                        continue;
                    }
                    let dm = ArchivedDm {
                        peer: NodeId(e.peer),
                        outgoing: e.outgoing,
                        sent_at_ms: e.created_at_ms,
                        text: e.text,
                    };
                    if self.store.restore_archived_dm(&key, &dm, e.dedup, now)? {
                        done.restored += 1;
                    } else {
                        done.known += 1;
                    }
                }
            }
            self.store.set_archive_restored_seq(cursor)?;
            if !full {
                return Ok(done);
            }
        }
    }

    /// Files a restored group message in its group thread, and takes the
    /// members it names if it is at least as new as the stored membership
    /// (the rule of a received group message). Returns whether it was new.
    fn restore_group_entry(
        &self,
        key: &[u8; 32],
        g: &DmGroup,
        e: &DmArchiveEntry,
        now: u64,
    ) -> Result<bool, NodeError> {
        let members: Vec<NodeId> = g.members.iter().map(|m| NodeId(*m)).collect();
        self.store
            .upsert_dm_group(&g.thread_id, &members, e.created_at_ms)?;
        let dm = GroupDm {
            sender: NodeId(e.peer),
            outgoing: e.outgoing,
            sent_at_ms: e.created_at_ms,
            text: e.text.clone(),
        };
        Ok(self
            .store
            .restore_group_dm(key, &g.thread_id, &dm, e.dedup, now)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distsoc_protocol::codec;

    #[test]
    fn the_size_estimate_bounds_the_canonical_body() {
        for members in [None, Some(2), Some(32)] {
            for len in [0, 1, 7, 8, 9, 100, 4096, 65_536] {
                let entry = DmArchiveEntry {
                    peer: [1; 32],
                    outgoing: true,
                    created_at_ms: u64::MAX,
                    text: "x".repeat(len),
                    dedup: [2; 32],
                    group: members.map(|n| DmGroup {
                        thread_id: [3; 16],
                        members: (0..n).map(|i| [i as u8; 32]).collect(),
                    }),
                };
                let n = 200;
                let estimate = n * entry_bytes(&entry);
                let body = codec::canonical_of(&PostBody {
                    archive: Some(DmArchiveChunk {
                        entries: vec![entry; n],
                    }),
                    ..PostBody::default()
                });
                // The body's own overhead (root, its pointers, the empty
                // text and attachments, the chunk and its list tag) is a few
                // words; a chunk of 1:1 entries only is one word per entry
                // smaller (canonical lists drop the null `group` pointer).
                let slack = if members.is_none() { 8 * n } else { 0 };
                assert!(
                    (estimate - slack..=estimate + 128).contains(&body.len()),
                    "{members:?} {len}: {} vs {estimate}",
                    body.len()
                );
            }
        }
    }
}
