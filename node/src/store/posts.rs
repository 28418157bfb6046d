//! Posts, their recipient index, pull, deletes and visibility updates.
//!
//! Store order: every stored post and every tombstone has a `seq`, drawn from
//! one counter, strictly increasing. It is the pull cursor
//! (`PullSyncRequest.sinceSeq`). A post whose visibility changes gets a new
//! `seq`, so a requester whose cursor is past the post but who is a new
//! recipient still finds it on its next pull; a delete gets the next `seq`
//! too, so the same cursor carries deletes.

use distsoc_protocol::ids::{NodeId, PostId, PostingId};
use distsoc_protocol::messages::content::{
    DeleteRecordBody, IngestError, SignedDeleteRecord, SignedVisibilityUpdate, SyncPost,
};
use distsoc_protocol::messages::social::MAX_PULL_DELETES;
use distsoc_protocol::sync::{Audience, PullFilter};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use distsoc_protocol::codec;

use super::{
    blob, canonical_within, decode_signed, decode_sync_post, from_sql_u64, id32, sql_limit,
    to_sql_u64, Store, StoreError, MAX_STORED_SYNC_POST_BYTES,
};

/// What [`Store::insert_post`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored, at this store `seq`.
    New {
        /// The post's place in store order.
        seq: u64,
    },
    /// Already stored; nothing changed. (A newer visibility update carried
    /// by the duplicate is not applied here: pass it to
    /// [`Store::apply_visibility_update`].)
    Duplicate,
    /// Its author deleted it; it is not stored again.
    Tombstoned,
}

/// What [`Store::apply_delete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The post was stored and is now deleted; a tombstone keeps it out.
    Deleted {
        /// The tombstone's place in store order.
        seq: u64,
    },
    /// The post is not stored; the tombstone was recorded so it is never
    /// stored later, and the delete is relayed by pull.
    Recorded {
        /// The tombstone's place in store order.
        seq: u64,
    },
    /// A tombstone for this post by this author is already held.
    AlreadyDeleted,
}

/// What [`Store::apply_visibility_update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityOutcome {
    /// The visibility and recipient index were replaced; the post moved to
    /// this new `seq`.
    Applied {
        /// The post's new place in store order.
        seq: u64,
    },
    /// The same update is already applied.
    Unchanged,
    /// Older than (or as old as, but different from) the update held: kept
    /// ours (wire error `stale`).
    Stale {
        /// `updatedAtMs` of the update held.
        held_ms: u64,
        /// `updatedAtMs` of the update refused.
        got_ms: u64,
    },
    /// The post is not stored (or was deleted).
    NotHeld,
}

/// One page of [`Store::pull`]: what to put in a `PullSyncResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPage {
    /// Posts the filter lets through, in store order.
    pub posts: Vec<SyncPost>,
    /// Delete records by the requester or by an author in the request's ids,
    /// in store order (at most `MAX_PULL_DELETES`).
    pub deletes: Vec<SignedDeleteRecord>,
    /// The `seq` of the last row examined (or the request's `since_seq` if
    /// none): the requester's next `sinceSeq`.
    pub next_seq: u64,
    /// Stopped early (limit reached); pull again at once.
    pub more: bool,
}

/// A tombstone as returned by [`Store::deletes_since`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelete {
    /// Its place in store order.
    pub seq: u64,
    /// The author's signed delete record.
    pub record: SignedDeleteRecord,
}

/// Per-connection setup: the temporary table that holds one pull's ids.
pub(super) fn prepare_connection(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS pull_ids (id BLOB PRIMARY KEY) WITHOUT ROWID",
    )?;
    Ok(())
}

/// The candidate rows of one pull, in store order: `(kind, seq)` with kind 0
/// for a post, 1 for a tombstone. `?1` = requester, `?2` = since_seq,
/// `?3` = row limit; the request's ids are in `temp.pull_ids`.
///
/// Each arm is an index range scan driven by the (small) id list —
/// `CROSS JOIN` pins the id table as the outer loop so the planner can never
/// choose to scan `posts`:
///
/// 1. own posts: `posts_by_author_seq (author = requester, seq > since)`;
/// 2. public posts by an author in ids: `posts_by_author_seq` per id;
/// 3. encrypted posts with a recipient in ids other than the author:
///    `post_recipients_by_recipient (recipient, seq > since)` per id, then the
///    post by primary key;
/// 4. and 5. tombstones by the requester, or of a public (or unknown) post
///    by an author in ids: `tombstones_by_author_seq`;
/// 6. tombstones of an encrypted post with a recipient other than the
///    author in ids: `tombstone_recipients (recipient, seq)` per id — a
///    delete reaches exactly the requesters its post was sent to.
const PULL_CANDIDATES_SQL: &str = "
SELECT kind, seq FROM (
    SELECT 0 AS kind, p.seq AS seq
      FROM posts AS p
     WHERE p.author = ?1 AND p.seq > ?2
    UNION
    SELECT 0, p.seq
      FROM temp.pull_ids AS i CROSS JOIN posts AS p ON p.author = i.id
     WHERE p.seq > ?2 AND p.encrypted = 0
    UNION
    SELECT 0, r.seq
      FROM temp.pull_ids AS i
      CROSS JOIN post_recipients AS r ON r.recipient = i.id
      CROSS JOIN posts AS p ON p.post_id = r.post_id
     WHERE r.seq > ?2 AND p.encrypted = 1 AND r.recipient <> p.author
    UNION
    SELECT 1, t.seq
      FROM tombstones AS t
     WHERE t.author = ?1 AND t.seq > ?2
    UNION
    SELECT 1, t.seq
      FROM temp.pull_ids AS i CROSS JOIN tombstones AS t ON t.author = i.id
     WHERE t.seq > ?2 AND t.encrypted = 0
    UNION
    SELECT 1, r.seq
      FROM temp.pull_ids AS i
      CROSS JOIN tombstone_recipients AS r ON r.recipient = i.id
     WHERE r.seq > ?2 AND r.recipient <> r.author
)
ORDER BY seq
LIMIT ?3";

/// Tombstones by the authors in `temp.pull_ids` after `?1`, in store order,
/// at most `?2`.
const DELETES_SINCE_SQL: &str = "
SELECT t.seq, t.record, t.signature
  FROM temp.pull_ids AS i CROSS JOIN tombstones AS t ON t.author = i.id
 WHERE t.seq > ?1
 ORDER BY t.seq
 LIMIT ?2";

/// The recipients a deleted post had, from its tombstone at `seq`.
fn tombstone_recipients(tx: &Transaction<'_>, seq: i64) -> Result<Vec<PostingId>, StoreError> {
    let mut st = tx.prepare_cached("SELECT recipient FROM tombstone_recipients WHERE seq = ?1")?;
    let rows = st.query_map([seq], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for b in rows {
        out.push(PostingId(id32("tombstone recipient", &b?)?));
    }
    Ok(out)
}

/// Draws the next store `seq`.
fn next_seq(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let v: i64 = tx
        .prepare_cached("UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value")?
        .query_row([], |r| r.get(0))?;
    from_sql_u64("seq counter", v)
}

/// Replaces the `temp.pull_ids` contents with `ids`.
fn load_ids<'a>(
    tx: &Transaction<'_>,
    ids: impl IntoIterator<Item = &'a [u8; 32]>,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM temp.pull_ids", [])?;
    let mut ins = tx.prepare_cached("INSERT OR IGNORE INTO temp.pull_ids (id) VALUES (?1)")?;
    for id in ids {
        ins.execute([&id[..]])?;
    }
    Ok(())
}

/// Rewrites the recipient rows of a post at `seq`.
fn write_recipients(
    tx: &Transaction<'_>,
    post_id: &PostId,
    seq: i64,
    post: &SyncPost,
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM post_recipients WHERE post_id = ?1")?
        .execute([&post_id.0[..]])?;
    let mut ins = tx.prepare_cached(
        "INSERT OR IGNORE INTO post_recipients (post_id, recipient, seq) VALUES (?1, ?2, ?3)",
    )?;
    for w in post.visibility.recipients() {
        ins.execute(params![&post_id.0[..], &w.recipient[..], seq])?;
    }
    Ok(())
}

/// Stores a validated post in an open write transaction.
fn insert_in(
    tx: &Transaction<'_>,
    post: &SyncPost,
    bytes: &[u8],
    now_ms: u64,
) -> Result<Inserted, StoreError> {
    let id = post.post_id();
    let author = post.post.body().author;
    // Statements prepared once per connection (`prepare_cached`): a pull
    // page runs each of them once per post.
    let tombstoned: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM tombstones WHERE post_id = ?1 AND author = ?2)",
        )?
        .query_row(params![&id.0[..], &author.0[..]], |r| r.get(0))?;
    if tombstoned {
        return Ok(Inserted::Tombstoned);
    }
    let exists: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM posts WHERE post_id = ?1)")?
        .query_row([&id.0[..]], |r| r.get(0))?;
    if exists {
        return Ok(Inserted::Duplicate);
    }
    // Tombstones for this id by anyone but its author are forgeries (the
    // PostId commits to the author); now that the post shows who that is,
    // drop them.
    tx.prepare_cached("DELETE FROM tombstones WHERE post_id = ?1 AND author <> ?2")?
        .execute(params![&id.0[..], &author.0[..]])?;
    let seq = next_seq(tx)?;
    let seq_sql = to_sql_u64(seq);
    tx.prepare_cached(
        "INSERT INTO posts (post_id, seq, author, created_at_ms, encrypted, received_at_ms, sync_post)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
            &id.0[..],
            seq_sql,
            &author.0[..],
            to_sql_u64(post.post.body().created_at_ms),
            post.visibility.is_encrypted(),
            to_sql_u64(now_ms),
            bytes,
        ])?;
    write_recipients(tx, &id, seq_sql, post)?;
    Ok(Inserted::New { seq })
}

/// Validates a post and returns its canonical bytes for storing. The bytes
/// are read back with the bounded reader a peer uses, so the store never
/// holds a post that a reader (this node's feed, a follower's pull, an
/// anchor) would refuse — a value built in memory (by compose, say) is not
/// limit-checked until it is encoded.
fn prepare_post(post: &SyncPost) -> Result<Vec<u8>, StoreError> {
    post.validate(None)?;
    encode_checked(post)
}

/// [`prepare_post`] of each post of a page, the signatures of all of them
/// verified in one batch ([`SyncPost::validate_all`]: each verdict is the
/// post's own).
fn prepare_posts(posts: &[SyncPost]) -> Vec<Result<Vec<u8>, StoreError>> {
    SyncPost::validate_all(posts, &mut rand_core::OsRng)
        .into_iter()
        .zip(posts)
        .map(|(id, post)| {
            id?;
            encode_checked(post)
        })
        .collect()
}

/// The canonical bytes of a validated post, read back with the bounded
/// reader (see [`prepare_post`]).
fn encode_checked(post: &SyncPost) -> Result<Vec<u8>, StoreError> {
    let bytes = canonical_within("syncPost", post, MAX_STORED_SYNC_POST_BYTES)?;
    codec::from_canonical::<SyncPost>("syncPost", &bytes, MAX_STORED_SYNC_POST_BYTES)
        .map_err(IngestError::from)?;
    Ok(bytes)
}

impl Store {
    /// Reads stored posts from a statement whose columns are `post_id,
    /// sync_post`; a row that does not decode is skipped, counted and logged
    /// ([`Store::unreadable_rows_skipped`]), not an error for the whole list.
    fn collect_posts(
        &self,
        stmt: &mut rusqlite::CachedStatement<'_>,
        params: impl rusqlite::Params,
    ) -> Result<Vec<SyncPost>, StoreError> {
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            match decode_sync_post(blob(row, 1)?) {
                Ok(post) => out.push(post),
                Err(e) => self.skip_unreadable("post", blob(row, 0)?, &e),
            }
        }
        Ok(out)
    }
}

impl Store {
    /// Stores a received or authored post.
    ///
    /// Checks it first with [`SyncPost::validate`] (signature, visibility
    /// authentication, header) — an invalid post is
    /// [`StoreError::Invalid`] — and its size against
    /// [`MAX_STORED_SYNC_POST_BYTES`]. A post its author deleted is refused
    /// as [`Inserted::Tombstoned`]; a post already held is
    /// [`Inserted::Duplicate`]. The whole `SyncPost` is kept (canonical
    /// bytes), plus indexed columns and one recipient row per wrapped key.
    pub fn insert_post(&self, post: &SyncPost, now_ms: u64) -> Result<Inserted, StoreError> {
        let bytes = prepare_post(post)?;
        self.write(|tx| insert_in(tx, post, &bytes, now_ms))
    }

    /// Stores many posts in one transaction (one fsync): the way to ingest a
    /// pull page. Their signatures are verified in one batch. Each post gets
    /// its own outcome: an invalid or oversized one is its own `Err` (the
    /// same as [`Store::insert_post`] would give) and does not stop the
    /// others. The outer `Err` is a database failure, in which case nothing
    /// was stored.
    pub fn insert_posts(
        &self,
        posts: &[SyncPost],
        now_ms: u64,
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        self.insert_page(posts, now_ms, None)
    }

    /// [`Store::insert_posts`], and with `cursor` = `(peer, since_seq)` the
    /// pull cursor for `peer` ([`Store::set_cursor`]) set in the same
    /// transaction: a pull page and the cursor past it commit together
    /// (one commit, one fsync, instead of two).
    pub fn insert_page(
        &self,
        posts: &[SyncPost],
        now_ms: u64,
        cursor: Option<(NodeId, u64)>,
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        let prepared = prepare_posts(posts);
        self.write(|tx| {
            let mut out = Vec::with_capacity(posts.len());
            for (post, bytes) in posts.iter().zip(prepared) {
                out.push(match bytes {
                    Ok(bytes) => Ok(insert_in(tx, post, &bytes, now_ms)?),
                    Err(e) => Err(e),
                });
            }
            if let Some((peer, since_seq)) = cursor {
                super::network::write_cursor(tx, peer, since_seq)?;
            }
            Ok(out)
        })
    }

    /// The stored post with this id.
    pub fn get_post(&self, id: PostId) -> Result<Option<SyncPost>, StoreError> {
        self.read(|tx| {
            let bytes: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT sync_post FROM posts WHERE post_id = ?1",
                    [&id.0[..]],
                    |r| r.get(0),
                )
                .optional()?;
            bytes.map(|b| decode_sync_post(&b)).transpose()
        })
    }

    /// The author of a stored post, from its indexed column (works for a
    /// stored post that no longer decodes).
    pub fn post_author(&self, id: PostId) -> Result<Option<PostingId>, StoreError> {
        self.read(|tx| {
            let author: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT author FROM posts WHERE post_id = ?1",
                    [&id.0[..]],
                    |r| r.get(0),
                )
                .optional()?;
            author
                .map(|a| id32("post author", &a).map(PostingId))
                .transpose()
        })
    }

    /// The store `seq` of a post, if stored.
    pub fn post_seq(&self, id: PostId) -> Result<Option<u64>, StoreError> {
        self.read(|tx| {
            let seq: Option<i64> = tx
                .query_row(
                    "SELECT seq FROM posts WHERE post_id = ?1",
                    [&id.0[..]],
                    |r| r.get(0),
                )
                .optional()?;
            seq.map(|s| from_sql_u64("seq", s)).transpose()
        })
    }

    /// Whether a delete record for `id` is held. Without the post its author
    /// cannot be checked, so this counts any validly signed record;
    /// [`Store::insert_post`] keeps the post out only for a record by the
    /// post's real author.
    pub fn is_tombstoned(&self, id: PostId) -> Result<bool, StoreError> {
        self.read(|tx| {
            // Only a post's own author can delete it; without the post we do
            // not know the author, so any held tombstone counts (a forged one
            // is dropped when the real post arrives).
            Ok(tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM tombstones WHERE post_id = ?1)",
                [&id.0[..]],
                |r| r.get(0),
            )?)
        })
    }

    /// All stored posts, newest first by `createdAtMs` (ties by PostId,
    /// descending), at most `limit`, strictly before `before` =
    /// `(created_at_ms, post_id)` of the last post of the previous page.
    pub fn feed(
        &self,
        limit: usize,
        before: Option<(u64, PostId)>,
    ) -> Result<Vec<SyncPost>, StoreError> {
        self.read(|tx| match before {
            None => self.collect_posts(
                &mut tx.prepare_cached(
                    "SELECT post_id, sync_post FROM posts
                      ORDER BY created_at_ms DESC, post_id DESC LIMIT ?1",
                )?,
                [sql_limit(limit)],
            ),
            Some((ms, id)) => self.collect_posts(
                &mut tx.prepare_cached(
                    "SELECT post_id, sync_post FROM posts
                      WHERE (created_at_ms, post_id) < (?1, ?2)
                      ORDER BY created_at_ms DESC, post_id DESC LIMIT ?3",
                )?,
                params![to_sql_u64(ms), &id.0[..], sql_limit(limit)],
            ),
        })
    }

    /// One author's stored posts, newest first, paged like [`Store::feed`].
    pub fn posts_by_author(
        &self,
        author: PostingId,
        limit: usize,
        before: Option<(u64, PostId)>,
    ) -> Result<Vec<SyncPost>, StoreError> {
        self.read(|tx| match before {
            None => self.collect_posts(
                &mut tx.prepare_cached(
                    "SELECT post_id, sync_post FROM posts WHERE author = ?1
                      ORDER BY created_at_ms DESC, post_id DESC LIMIT ?2",
                )?,
                params![&author.0[..], sql_limit(limit)],
            ),
            Some((ms, id)) => self.collect_posts(
                &mut tx.prepare_cached(
                    "SELECT post_id, sync_post FROM posts
                      WHERE author = ?1 AND (created_at_ms, post_id) < (?2, ?3)
                      ORDER BY created_at_ms DESC, post_id DESC LIMIT ?4",
                )?,
                params![&author.0[..], to_sql_u64(ms), &id.0[..], sql_limit(limit)],
            ),
        })
    }

    /// Posts by any of `authors` stored after local `since_seq`, in store
    /// order, at most `limit`, each with its `seq` (what a node deposits at
    /// its anchors).
    pub fn posts_by_authors_since(
        &self,
        authors: &[PostingId],
        since_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, SyncPost)>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            let mut stmt = tx.prepare_cached(
                "SELECT seq, sync_post, post_id FROM posts WHERE author = ?1 AND seq > ?2
                  ORDER BY seq LIMIT ?3",
            )?;
            for a in authors {
                let rows = stmt.query_map(
                    params![&a.0[..], to_sql_u64(since_seq), sql_limit(limit)],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, Vec<u8>>(2)?,
                        ))
                    },
                )?;
                for row in rows {
                    let (seq, bytes, id) = row?;
                    match decode_sync_post(&bytes) {
                        Ok(post) => out.push((from_sql_u64("seq", seq)?, post)),
                        Err(e) => self.skip_unreadable("post", &id, &e),
                    }
                }
            }
            out.sort_by_key(|(seq, _)| *seq);
            out.truncate(limit);
            Ok(out)
        })
    }

    /// Posts with a wrapped key for `recipient`, newest first (e.g. the DMs
    /// to one of our personas), at most `limit`.
    pub fn posts_to_recipient(
        &self,
        recipient: PostingId,
        limit: usize,
    ) -> Result<Vec<SyncPost>, StoreError> {
        self.read(|tx| {
            self.collect_posts(
                &mut tx.prepare_cached(
                    "SELECT p.post_id, p.sync_post
                       FROM post_recipients AS r CROSS JOIN posts AS p ON p.post_id = r.post_id
                      WHERE r.recipient = ?1
                      ORDER BY r.seq DESC LIMIT ?2",
                )?,
                params![&recipient.0[..], sql_limit(limit)],
            )
        })
    }

    /// Answers one pull: the stored posts and deletes after `since_seq` that
    /// `requester` (the authenticated NodeId) may receive given `ids`
    /// (`PullSyncRequest.ids`), in store order.
    ///
    /// Candidates come from index range scans only (see
    /// `PULL_CANDIDATES_SQL`): own posts, public posts by an author in `ids`,
    /// encrypted posts with a recipient other than the author in `ids`, and
    /// tombstones by the requester or an author in `ids`. The cost depends on
    /// the number of ids and of matching rows after the cursor, not on the
    /// size of the store. Every candidate post then goes through
    /// [`PullFilter::decide`], the final authority; a delete is sent when the
    /// filter would send a public post by its author.
    ///
    /// At most `limit` rows (posts and deletes) are examined, and at most
    /// `MAX_PULL_DELETES` deletes returned; `more` says the page stopped
    /// early. `next_seq` is the `seq` of the last row examined, or
    /// `since_seq` if there was none.
    pub fn pull(
        &self,
        requester: NodeId,
        ids: &[[u8; 32]],
        since_seq: u64,
        limit: usize,
    ) -> Result<PullPage, StoreError> {
        let filter = PullFilter::new(requester, ids.iter().copied());
        let mut conn = self.lock();
        // A deferred transaction: one snapshot of the main database; only the
        // temp table is written, so no write lock is taken.
        let tx = conn.transaction()?;
        load_ids(&tx, ids.iter())?;
        let candidates: Vec<(i64, i64)> = {
            let mut stmt = tx.prepare_cached(PULL_CANDIDATES_SQL)?;
            let rows = stmt.query_map(
                params![
                    &requester.0[..],
                    to_sql_u64(since_seq),
                    sql_limit(limit.saturating_add(1)),
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            rows.collect::<Result<_, _>>()?
        };
        let mut page = PullPage {
            posts: Vec::new(),
            deletes: Vec::new(),
            next_seq: since_seq,
            more: candidates.len() > limit,
        };
        {
            let mut post_stmt =
                tx.prepare_cached("SELECT sync_post, post_id FROM posts WHERE seq = ?1")?;
            let mut del_stmt = tx.prepare_cached(
                "SELECT record, signature, encrypted FROM tombstones WHERE seq = ?1",
            )?;
            for &(kind, seq) in candidates.iter().take(limit) {
                if kind == 1 {
                    if page.deletes.len() >= MAX_PULL_DELETES {
                        page.more = true;
                        break;
                    }
                    let (bytes, sig, encrypted): (Vec<u8>, Vec<u8>, bool) =
                        del_stmt.query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                    let record: SignedDeleteRecord =
                        decode_signed::<DeleteRecordBody>("delete record", &bytes, &sig)?;
                    let recipients = if encrypted {
                        tombstone_recipients(&tx, seq)?
                    } else {
                        Vec::new()
                    };
                    let audience = if encrypted {
                        Audience::Encrypted(&recipients)
                    } else {
                        Audience::Public
                    };
                    if filter.decide(&record.body().author, audience).is_some() {
                        page.deletes.push(record);
                    }
                } else {
                    let (bytes, id): (Vec<u8>, Vec<u8>) =
                        post_stmt.query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    // An unreadable row is skipped (the cursor still moves
                    // past it): one bad post never fails the whole page.
                    match decode_sync_post(&bytes) {
                        Ok(post) if decide(&filter, &post) => page.posts.push(post),
                        Ok(_) => {}
                        Err(e) => self.skip_unreadable("post", &id, &e),
                    }
                }
                page.next_seq = from_sql_u64("seq", seq)?;
            }
        }
        tx.execute("DELETE FROM temp.pull_ids", [])?;
        tx.commit()?;
        Ok(page)
    }

    /// Tombstones by the `authors` given, after `since_seq`, in store order,
    /// at most `limit` (the delete half of a pull, on its own).
    pub fn deletes_since(
        &self,
        authors: &[PostingId],
        since_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredDelete>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        load_ids(&tx, authors.iter().map(|a| &a.0))?;
        let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = {
            let mut stmt = tx.prepare_cached(DELETES_SINCE_SQL)?;
            let rows = stmt.query_map(params![to_sql_u64(since_seq), sql_limit(limit)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        tx.execute("DELETE FROM temp.pull_ids", [])?;
        tx.commit()?;
        rows.into_iter()
            .map(|(seq, bytes, sig)| {
                Ok(StoredDelete {
                    seq: from_sql_u64("seq", seq)?,
                    record: decode_signed::<DeleteRecordBody>("delete record", &bytes, &sig)?,
                })
            })
            .collect()
    }

    /// Applies an author's delete record.
    ///
    /// The record's signature is always verified. If the post is stored, the
    /// record must also target it and be by its author
    /// (`SignedDeleteRecord::validate_for`); the post and its recipient rows
    /// are then removed. Either way a tombstone (the signed record, with a
    /// new `seq`) is kept: the post is never stored again, and the delete is
    /// relayed by [`Store::pull`] to whoever pulls its author.
    pub fn apply_delete(&self, record: &SignedDeleteRecord) -> Result<DeleteOutcome, StoreError> {
        record.verify().map_err(|error| IngestError::BadSignature {
            what: "deleteRecord",
            error,
        })?;
        let body = record.body();
        self.write(|tx| {
            let held: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM tombstones WHERE post_id = ?1 AND author = ?2)",
                params![&body.post_id.0[..], &body.author.0[..]],
                |r| r.get(0),
            )?;
            if held {
                return Ok(DeleteOutcome::AlreadyDeleted);
            }
            let stored: Option<(Vec<u8>, Vec<u8>, bool)> = tx
                .query_row(
                    "SELECT sync_post, author, encrypted FROM posts WHERE post_id = ?1",
                    [&body.post_id.0[..]],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let mut recipients: Vec<Vec<u8>> = Vec::new();
            let mut encrypted = false;
            let had_post = match stored {
                Some((bytes, author, enc)) => {
                    match decode_sync_post(&bytes) {
                        Ok(post) => record.validate_for(&post.post)?,
                        // A stored post that no longer decodes (written by an
                        // older build without the limits) is still removable
                        // by its author: the indexed author column, taken
                        // from the post when it was stored, decides.
                        Err(_) if author[..] == body.author.0[..] => {}
                        Err(_) => {
                            return Err(IngestError::Unauthorized {
                                what: "deleteRecord",
                                reason: "not by the post's author",
                            }
                            .into())
                        }
                    }
                    encrypted = enc;
                    let mut st = tx.prepare_cached(
                        "SELECT recipient FROM post_recipients WHERE post_id = ?1",
                    )?;
                    let rows = st.query_map([&body.post_id.0[..]], |r| r.get(0))?;
                    recipients = rows.collect::<Result<_, _>>()?;
                    tx.execute(
                        "DELETE FROM posts WHERE post_id = ?1",
                        [&body.post_id.0[..]],
                    )?;
                    true
                }
                None => false,
            };
            let seq = next_seq(tx)?;
            tx.execute(
                "INSERT INTO tombstones (post_id, author, deleted_at_ms, seq, record, signature, encrypted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    &body.post_id.0[..],
                    &body.author.0[..],
                    to_sql_u64(body.deleted_at_ms),
                    to_sql_u64(seq),
                    record.bytes(),
                    &record.signature()[..],
                    encrypted,
                ],
            )?;
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO tombstone_recipients (seq, recipient, author)
                 VALUES (?1, ?2, ?3)",
            )?;
            for r in &recipients {
                ins.execute(params![to_sql_u64(seq), r, &body.author.0[..]])?;
            }
            Ok(if had_post {
                DeleteOutcome::Deleted { seq }
            } else {
                DeleteOutcome::Recorded { seq }
            })
        })
    }

    /// Applies an author's visibility update ("sync access list") to a
    /// stored post with [`SyncPost::apply_update`]: on success the stored
    /// `SyncPost` carries the new visibility and the update, the recipient
    /// rows are rewritten, and the post moves to a new `seq` so that new
    /// recipients find it by pull. An older update is
    /// [`VisibilityOutcome::Stale`]; any other failure of the update
    /// (signature, author, post id, content mismatch) is
    /// [`StoreError::Invalid`].
    pub fn apply_visibility_update(
        &self,
        update: &SignedVisibilityUpdate,
    ) -> Result<VisibilityOutcome, StoreError> {
        let id = update.body().post_id;
        self.write(|tx| {
            let stored: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT sync_post FROM posts WHERE post_id = ?1",
                    [&id.0[..]],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(bytes) = stored else {
                return Ok(VisibilityOutcome::NotHeld);
            };
            let mut post = decode_sync_post(&bytes)?;
            let before = post.visibility_update.clone();
            match post.apply_update(update.clone()) {
                Ok(()) => {}
                Err(IngestError::Stale { held, got, .. }) => {
                    return Ok(VisibilityOutcome::Stale {
                        held_ms: held,
                        got_ms: got,
                    })
                }
                Err(e) => return Err(e.into()),
            }
            if post.visibility_update == before {
                return Ok(VisibilityOutcome::Unchanged);
            }
            let new_bytes = canonical_within("syncPost", &post, MAX_STORED_SYNC_POST_BYTES)?;
            let seq = next_seq(tx)?;
            let seq_sql = to_sql_u64(seq);
            tx.execute(
                "UPDATE posts SET seq = ?2, sync_post = ?3 WHERE post_id = ?1",
                params![&id.0[..], seq_sql, new_bytes],
            )?;
            write_recipients(tx, &id, seq_sql, &post)?;
            Ok(VisibilityOutcome::Applied { seq })
        })
    }
}

/// [`PullFilter::decide`] for a stored post.
fn decide(filter: &PullFilter, post: &SyncPost) -> bool {
    let author = post.post.body().author;
    if post.visibility.is_encrypted() {
        let recipients: Vec<PostingId> = post
            .visibility
            .recipients()
            .iter()
            .map(|w| PostingId(w.recipient))
            .collect();
        filter
            .decide(&author, Audience::Encrypted(&recipients))
            .is_some()
    } else {
        filter.decide(&author, Audience::Public).is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use distsoc_protocol::messages::content::{seal_post, Post, PostBody, PostVisibility};
    use distsoc_protocol::sign::SigningKey;
    use rand_core::OsRng;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_seed(&[i; 32])
    }

    fn public(k: &SigningKey, ms: u64) -> SyncPost {
        let p = Post::new_public(PostingId(k.public()), ms, format!("p{ms}"), vec![])
            .sign(k)
            .unwrap();
        SyncPost::new(k, p, PostVisibility::Public, None)
    }

    fn sealed(k: &SigningKey, ms: u64, to: &[PostingId]) -> SyncPost {
        let body = PostBody {
            text: "secret".into(),
            attachments: vec![],
            rotation: None,
            archive: None,
            group: None,
        };
        let (p, v) = seal_post(k, ms, &body, to, &mut OsRng).unwrap();
        SyncPost::new(k, p, v, None)
    }

    /// `EXPLAIN QUERY PLAN` lines of the pull query.
    fn plan(store: &Store, sql: &str) -> Vec<String> {
        let conn = store.lock();
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = st.parameter_count();
        let params: Vec<i64> = vec![0; n];
        st.query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn assert_no_scan(lines: &[String]) {
        let text = lines.join("\n");
        for l in lines {
            // The id list itself is scanned (it is the request); nothing else.
            let scans_table = l.starts_with("SCAN ")
                && !l.starts_with("SCAN i")
                && !l.contains("pull_ids")
                && !l.starts_with("SCAN (subquery")
                && !l.contains("COMPOUND");
            assert!(!scans_table, "full scan in pull plan:\n{text}");
        }
    }

    fn assert_indexed(lines: &[String]) {
        assert_no_scan(lines);
        let text = lines.join("\n");
        assert!(text.contains("posts_by_author_seq"), "{text}");
        assert!(text.contains("post_recipients_by_recipient"), "{text}");
        assert!(text.contains("tombstones_by_author_seq"), "{text}");
    }

    #[test]
    fn a_post_over_a_field_limit_is_never_stored() {
        let store = Store::open_in_memory().unwrap();
        let k = key(3);
        let text = "x".repeat(distsoc_protocol::messages::content::MAX_POST_TEXT_BYTES + 1);
        // Signing checks only the total size; the field limit is the store's
        // read-back to catch.
        let p = Post::new_public(PostingId(k.public()), 1, text, vec![])
            .sign(&k)
            .unwrap();
        let post = SyncPost::new(&k, p, PostVisibility::Public, None);
        let err = store.insert_post(&post, 1).unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(e) if distsoc_protocol::error::WireCode::error_code(e) == distsoc_protocol::error::ErrorCode::TooLarge),
            "{err}"
        );
        assert!(err.to_string().contains("text"), "{err}");
        assert!(store.feed(10, None).unwrap().is_empty());
        let err = store.insert_posts(&[post], 1).unwrap();
        assert!(err[0].is_err());
        assert!(store.feed(10, None).unwrap().is_empty());
    }

    #[test]
    fn feed_query_plans_use_indexes() {
        let store = Store::open_in_memory().unwrap();
        for (sql, index) in [
            (
                "SELECT sync_post FROM posts ORDER BY created_at_ms DESC, post_id DESC LIMIT ?1",
                "posts_by_created",
            ),
            (
                "SELECT sync_post FROM posts WHERE (created_at_ms, post_id) < (?1, ?2)
                  ORDER BY created_at_ms DESC, post_id DESC LIMIT ?3",
                "posts_by_created",
            ),
            (
                "SELECT sync_post FROM posts WHERE author = ?1 AND (created_at_ms, post_id) < (?2, ?3)
                  ORDER BY created_at_ms DESC, post_id DESC LIMIT ?4",
                "posts_by_author_created",
            ),
            (
                "SELECT p.sync_post
                   FROM post_recipients AS r CROSS JOIN posts AS p ON p.post_id = r.post_id
                  WHERE r.recipient = ?1 ORDER BY r.seq DESC LIMIT ?2",
                "post_recipients_by_recipient",
            ),
        ] {
            let lines = plan(&store, sql);
            let text = lines.join("\n");
            assert!(text.contains(index), "{sql}:\n{text}");
            assert!(!text.contains("TEMP B-TREE"), "{sql} sorts:\n{text}");
        }
    }

    #[test]
    fn pull_query_plan_uses_indexes_only() {
        let store = Store::open_in_memory().unwrap();
        // Fresh schema, no statistics.
        assert_indexed(&plan(&store, PULL_CANDIDATES_SQL));
        let deletes = plan(&store, DELETES_SINCE_SQL);
        assert_no_scan(&deletes);
        assert!(deletes.join("\n").contains("tombstones_by_author_seq"));

        // With data and statistics that make a scan look cheap to a naive
        // planner (few posts, many ids), the plan must not change.
        let keys: Vec<SigningKey> = (1..=6).map(key).collect();
        for (i, k) in keys.iter().enumerate() {
            store.insert_post(&public(k, i as u64), 1).unwrap();
            store
                .insert_post(
                    &sealed(k, 100 + i as u64, &[PostingId(keys[0].public())]),
                    1,
                )
                .unwrap();
        }
        {
            let conn = store.lock();
            conn.execute_batch("ANALYZE").unwrap();
            for b in 0..200u8 {
                conn.execute(
                    "INSERT OR IGNORE INTO temp.pull_ids (id) VALUES (?1)",
                    [&[b; 32][..]],
                )
                .unwrap();
            }
            conn.execute_batch("ANALYZE temp").unwrap();
        }
        assert_indexed(&plan(&store, PULL_CANDIDATES_SQL));
    }
}
