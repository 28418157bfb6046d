//! Peers and pull cursors, `author_recent_posts` lists, blobs.

use std::net::SocketAddr;

use distsoc_protocol::ids::{BlobId, NodeId, PostingId};
use distsoc_protocol::limits::MAX_BLOB_BYTES;
use distsoc_protocol::messages::content::{
    AuthorRecentPosts, IngestError, SignedAuthorRecentPosts,
};
use distsoc_protocol::recent::{self, RecentDecision, RecentVersion};
use rusqlite::{params, OptionalExtension, Row};

use super::{
    blob, decode_signed, evict_lru, from_sql_u64, id32, to_sql_u64, touch, Store, StoreError,
};

/// Most recent-post lists held for authors that are neither ours nor
/// followed.
pub const MAX_CACHED_RECENT_LISTS: usize = 64;

/// Most bytes of recent-post lists held for authors that are neither ours
/// nor followed.
pub const MAX_CACHED_RECENT_LIST_BYTES: usize = 4 * 1024 * 1024;

/// The evictable recent-post lists, most recently seen first.
const CACHED_RECENT_LISTS_SQL: &str = "
SELECT l.author, length(l.list) + length(l.signature)
  FROM author_recent_posts AS l
 WHERE l.author NOT IN (
           SELECT posting_id FROM posting_identities
           UNION SELECT posting_id FROM follows)
 ORDER BY l.seen_order DESC";

/// Most addresses kept per peer by [`Store::add_peer_candidates`] (the
/// Hello's own bound on `listenAddresses`).
pub const MAX_PEER_ADDRESSES: usize = 8;

/// A known peer node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    /// The peer's network key.
    pub node_id: NodeId,
    /// Where it was last reachable, most preferred first.
    pub addresses: Vec<SocketAddr>,
    /// Whether it is an anchor (an always-on node).
    pub is_anchor: bool,
    /// When it was last seen, ms since epoch.
    pub last_seen_ms: u64,
}

fn peer_from_row(r: &Row<'_>) -> Result<PeerRecord, StoreError> {
    let addresses: String = r.get(1)?;
    let addresses: Vec<String> =
        serde_json::from_str(&addresses).map_err(|e| StoreError::corrupt("peer addresses", e))?;
    let addresses = addresses
        .iter()
        .map(|a| a.parse::<SocketAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::corrupt("peer address", e))?;
    Ok(PeerRecord {
        node_id: NodeId(id32("peer id", blob(r, 0)?)?),
        addresses,
        is_anchor: r.get(2)?,
        last_seen_ms: from_sql_u64("last_seen_ms", r.get(3)?)?,
    })
}

impl Store {
    // -----------------------------------------------------------------------
    // Peers
    // -----------------------------------------------------------------------

    /// Records a peer: its addresses and anchor flag replace the held ones;
    /// `last_seen_ms` only moves forward (a late write from another process
    /// with an older time does not move it back).
    pub fn upsert_peer(
        &self,
        node_id: NodeId,
        addresses: &[SocketAddr],
        is_anchor: bool,
        last_seen_ms: u64,
    ) -> Result<(), StoreError> {
        let addrs: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        let addrs =
            serde_json::to_string(&addrs).map_err(|e| StoreError::corrupt("peer addresses", e))?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO peers (node_id, addresses, is_anchor, last_seen_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node_id) DO UPDATE SET
                   addresses = excluded.addresses,
                   is_anchor = excluded.is_anchor,
                   last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
                params![&node_id.0[..], addrs, is_anchor, to_sql_u64(last_seen_ms)],
            )?;
            Ok(())
        })
    }

    /// Records the listen addresses an inbound peer announced in its Hello
    /// as candidates: a new peer is stored with them (and `is_anchor`
    /// false: an inbound claim is not verified); a known peer keeps its
    /// addresses first (those we dialled) and gains the new ones after
    /// them, at most [`MAX_PEER_ADDRESSES`] in all. Unspecified addresses
    /// and port 0 are skipped; the address the peer was seen at is never
    /// recorded (it did not offer it).
    pub fn add_peer_candidates(
        &self,
        node_id: NodeId,
        announced: &[SocketAddr],
        seen_ms: u64,
    ) -> Result<(), StoreError> {
        let fresh: Vec<SocketAddr> = announced
            .iter()
            .filter(|a| !a.ip().is_unspecified() && a.port() != 0)
            .copied()
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let held = self.get_peer(node_id)?;
        let (mut addrs, is_anchor, last_seen) = match held {
            Some(p) => (p.addresses, p.is_anchor, p.last_seen_ms.max(seen_ms)),
            None => (Vec::new(), false, seen_ms),
        };
        for a in fresh {
            if addrs.len() >= MAX_PEER_ADDRESSES {
                break;
            }
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        self.upsert_peer(node_id, &addrs, is_anchor, last_seen)
    }

    /// A known peer.
    pub fn get_peer(&self, node_id: NodeId) -> Result<Option<PeerRecord>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT node_id, addresses, is_anchor, last_seen_ms FROM peers WHERE node_id = ?1",
            )?;
            let mut rows = stmt.query([&node_id.0[..]])?;
            rows.next()?.map(peer_from_row).transpose()
        })
    }

    /// Known peers, most recently seen first, at most `limit`.
    pub fn peers(&self, limit: usize) -> Result<Vec<PeerRecord>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT node_id, addresses, is_anchor, last_seen_ms FROM peers
                  ORDER BY last_seen_ms DESC, node_id LIMIT ?1",
            )?;
            let mut rows = stmt.query([super::sql_limit(limit)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(peer_from_row(r)?);
            }
            Ok(out)
        })
    }

    /// Forgets a peer (and its pull cursor). Returns whether it was known.
    pub fn remove_peer(&self, node_id: NodeId) -> Result<bool, StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM pull_cursors WHERE node_id = ?1",
                [&node_id.0[..]],
            )?;
            Ok(tx.execute("DELETE FROM peers WHERE node_id = ?1", [&node_id.0[..]])? == 1)
        })
    }

    // -----------------------------------------------------------------------
    // Pull cursors (our position in each peer's store order)
    // -----------------------------------------------------------------------

    /// The `sinceSeq` to send to `peer` (0 if we never pulled from it).
    pub fn get_cursor(&self, peer: NodeId) -> Result<u64, StoreError> {
        self.peer_seq(
            "SELECT since_seq FROM pull_cursors WHERE node_id = ?1",
            "since_seq",
            peer,
        )
    }

    /// Stores the cursor for `peer` (its `PullSyncResponse.nextSeq`). The
    /// value is taken as given: a peer that lost its store restarts its
    /// order, and the caller may reset the cursor to 0.
    pub fn set_cursor(&self, peer: NodeId, since_seq: u64) -> Result<(), StoreError> {
        self.set_peer_seq(SET_CURSOR_SQL, peer, since_seq)
    }

    /// The local `seq` through which our own posts were deposited at
    /// `anchor` (0: none yet).
    pub fn get_deposit_cursor(&self, anchor: NodeId) -> Result<u64, StoreError> {
        self.peer_seq(
            "SELECT through_seq FROM deposit_cursors WHERE anchor = ?1",
            "through_seq",
            anchor,
        )
    }

    /// Records that our own posts through local `seq` are deposited at
    /// `anchor`.
    pub fn set_deposit_cursor(&self, anchor: NodeId, seq: u64) -> Result<(), StoreError> {
        self.set_peer_seq(
            "INSERT INTO deposit_cursors (anchor, through_seq) VALUES (?1, ?2)
             ON CONFLICT (anchor) DO UPDATE SET through_seq = excluded.through_seq",
            anchor,
            seq,
        )
    }

    /// A per-peer sequence number read by `sql` (one parameter: the peer);
    /// 0 when there is no row.
    fn peer_seq(&self, sql: &str, what: &'static str, peer: NodeId) -> Result<u64, StoreError> {
        self.read(|tx| {
            let v: Option<i64> = tx.query_row(sql, [&peer.0[..]], |r| r.get(0)).optional()?;
            v.map_or(Ok(0), |v| from_sql_u64(what, v))
        })
    }

    /// Upserts a per-peer sequence number with `sql` (parameters: the peer,
    /// the value).
    fn set_peer_seq(&self, sql: &str, peer: NodeId, seq: u64) -> Result<(), StoreError> {
        self.write(|tx| write_cursor_sql(tx, sql, peer, seq))
    }
}

/// Upserts a pull cursor (`?1` = peer, `?2` = since_seq).
const SET_CURSOR_SQL: &str = "INSERT INTO pull_cursors (node_id, since_seq) VALUES (?1, ?2)
             ON CONFLICT (node_id) DO UPDATE SET since_seq = excluded.since_seq";

/// [`Store::set_cursor`] in an open write transaction.
pub(super) fn write_cursor(
    tx: &rusqlite::Transaction<'_>,
    peer: NodeId,
    since_seq: u64,
) -> Result<(), StoreError> {
    write_cursor_sql(tx, SET_CURSOR_SQL, peer, since_seq)
}

fn write_cursor_sql(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    peer: NodeId,
    seq: u64,
) -> Result<(), StoreError> {
    tx.prepare_cached(sql)?
        .execute(params![&peer.0[..], to_sql_u64(seq)])?;
    Ok(())
}

impl Store {
    // -----------------------------------------------------------------------
    // author_recent_posts
    // -----------------------------------------------------------------------

    /// Offers an author's signed recent-post list. The signature is
    /// verified first ([`StoreError::Invalid`]); then the seq rule
    /// ([`recent::decide`]) against the held list decides, and the list is
    /// stored only on [`RecentDecision::Accept`].
    ///
    /// Lists of our own posting ids and of followed authors are kept; the
    /// others are a cache of at most [`MAX_CACHED_RECENT_LISTS`] lists and
    /// [`MAX_CACHED_RECENT_LIST_BYTES`] bytes, least recently seen evicted
    /// first (a list is up to 256 KiB: without the bound, lists pushed for
    /// fresh keys would fill the disk).
    pub fn put_recent(&self, list: &SignedAuthorRecentPosts) -> Result<RecentDecision, StoreError> {
        list.verify().map_err(|error| IngestError::BadSignature {
            what: "authorRecentPosts",
            error,
        })?;
        let author = list.author();
        let offered = RecentVersion {
            seq: list.seq(),
            hash: list.hash(),
        };
        self.write(|tx| {
            let held: Option<(Vec<u8>, Vec<u8>)> = tx
                .query_row(
                    "SELECT list, signature FROM author_recent_posts WHERE author = ?1",
                    [&author.0[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let held = held
                .map(|(b, s)| {
                    decode_signed::<AuthorRecentPosts>("author recent posts", &b, &s).map(|h| {
                        RecentVersion {
                            seq: h.seq(),
                            hash: h.hash(),
                        }
                    })
                })
                .transpose()?;
            let decision = recent::decide(held, offered);
            if decision != RecentDecision::Accept {
                touch(tx, "author_recent_posts", "author", &author.0)?;
            }
            if decision == RecentDecision::Accept {
                tx.execute(
                    "INSERT INTO author_recent_posts (author, updated_at_ms, list, signature)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (author) DO UPDATE SET
                       updated_at_ms = excluded.updated_at_ms,
                       list = excluded.list,
                       signature = excluded.signature",
                    params![
                        &author.0[..],
                        to_sql_u64(list.updated_at_ms()),
                        list.bytes(),
                        &list.signature()[..],
                    ],
                )?;
                touch(tx, "author_recent_posts", "author", &author.0)?;
                evict_lru(
                    tx,
                    CACHED_RECENT_LISTS_SQL,
                    "DELETE FROM author_recent_posts WHERE author = ?1",
                    MAX_CACHED_RECENT_LISTS,
                    MAX_CACHED_RECENT_LIST_BYTES,
                )?;
            }
            Ok(decision)
        })
    }

    /// The held recent-post list of `author`.
    pub fn get_recent(
        &self,
        author: PostingId,
    ) -> Result<Option<SignedAuthorRecentPosts>, StoreError> {
        self.read(|tx| {
            let held: Option<(Vec<u8>, Vec<u8>)> = tx
                .query_row(
                    "SELECT list, signature FROM author_recent_posts WHERE author = ?1",
                    [&author.0[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            held.map(|(b, s)| decode_signed::<AuthorRecentPosts>("author recent posts", &b, &s))
                .transpose()
        })
    }

    // -----------------------------------------------------------------------
    // Blobs
    // -----------------------------------------------------------------------

    /// Stores a blob (at most 256 KiB, [`StoreError::TooLarge`]) under its
    /// BLAKE3 id and returns the id. Storing the same bytes again is a no-op.
    pub fn put_blob(&self, data: &[u8], now_ms: u64) -> Result<BlobId, StoreError> {
        if data.len() > MAX_BLOB_BYTES {
            return Err(StoreError::TooLarge {
                what: "blob",
                max: MAX_BLOB_BYTES,
                got: data.len(),
            });
        }
        let id = BlobId::of_blob(data);
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO blobs (blob_id, data, stored_at_ms) VALUES (?1, ?2, ?3)",
                params![&id.0[..], data, to_sql_u64(now_ms)],
            )?;
            Ok(())
        })?;
        Ok(id)
    }

    /// A stored blob. Its bytes are re-hashed on the way out: a blob that no
    /// longer matches its id is [`StoreError::Corrupt`].
    pub fn get_blob(&self, id: BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        let data: Option<Vec<u8>> = self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT data FROM blobs WHERE blob_id = ?1",
                    [&id.0[..]],
                    |r| r.get(0),
                )
                .optional()?)
        })?;
        match data {
            Some(d) if BlobId::of_blob(&d) != id => Err(StoreError::corrupt(
                "blob",
                format!("bytes of {} do not hash to its id", id.short()),
            )),
            other => Ok(other),
        }
    }

    /// Whether a blob is stored.
    pub fn has_blob(&self, id: BlobId) -> Result<bool, StoreError> {
        self.read(|tx| {
            Ok(tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM blobs WHERE blob_id = ?1)",
                [&id.0[..]],
                |r| r.get(0),
            )?)
        })
    }
}
