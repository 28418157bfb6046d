//! SQLite: posts, tombstones and the pull queries.

use super::super::pull::{cut_page, scan_window, Candidates, PullRounds, PullRows};
use super::*;

/// The statements of one table pair of a pull (posts or tombstones).
struct PullTables {
    /// (author, encrypted, since, limit) → seq.
    by_author: &'static str,
    /// (recipient, since, limit) → seq.
    by_recipient: &'static str,
    /// (since, limit) → seq, author, encrypted: the rows after the cursor.
    scan_rows: &'static str,
    /// (since, limit) → seq, recipient, author: their recipient rows.
    scan_recipients: &'static str,
    /// Try the bounded scan of the rows after the cursor first, however
    /// far behind the head the cursor is: the table is small (tombstones
    /// are rare), so the scan usually holds every row after the cursor,
    /// and a pull skips one index probe per stream; if it does not, the
    /// streams as for posts.
    scan_first: bool,
}

const POST_TABLES: PullTables = PullTables {
    scan_first: false,
    by_author: POSTS_BY_AUTHOR_SQL,
    by_recipient: POSTS_BY_RECIPIENT_SQL,
    scan_rows: "SELECT seq, author, encrypted FROM posts WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    scan_recipients: "SELECT seq, recipient, author FROM post_recipients
      WHERE seq > ?1 ORDER BY seq LIMIT ?2",
};

const TOMB_TABLES: PullTables = PullTables {
    scan_first: true,
    by_author: TOMBSTONES_BY_AUTHOR_SQL,
    by_recipient: TOMBSTONES_BY_RECIPIENT_SQL,
    scan_rows: "SELECT seq, author, encrypted FROM tombstones WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    scan_recipients: "SELECT seq, recipient, author FROM tombstone_recipients
      WHERE seq > ?1 ORDER BY seq LIMIT ?2",
};

/// The last seq drawn (posts and tombstones share the counter): no row
/// has a larger one.
const HEAD_SQL: &str = "SELECT value FROM counters WHERE name = 'post_seq'";

/// One pull's candidate search, for either table pair.
#[derive(Clone, Copy)]
struct PullQuery<'a> {
    requester: &'a NodeId,
    /// Sorted and deduplicated.
    ids: &'a [[u8; 32]],
    since_seq: u64,
    /// Candidates wanted.
    limit: usize,
    /// Seqs drawn after the cursor: at least the rows a scan would read.
    behind: u64,
}

/// The first `limit` seqs after `since_seq` a pull may return from one
/// table pair: the requester's own rows whatever their visibility; public
/// rows by an author in `ids` (sorted, deduplicated); rows with a recipient
/// in `ids`.
///
/// If few seqs were drawn after the cursor ([`scan_window`]), a scan of
/// the rows after it (nothing to read when the requester is at the head);
/// otherwise, or if the scan finds more rows than the window, the streams, read a few rows at a time
/// ([`PullRounds`]): a page of 200 over 100 followed authors reads ~800
/// index rows, not 100 × 200.
fn candidates(c: &Connection, t: &PullTables, q: &PullQuery<'_>) -> Result<Vec<u64>, StoreError> {
    let PullQuery {
        requester,
        ids,
        since_seq,
        limit,
        behind,
    } = *q;
    let since = to_i64(since_seq);
    let streams = 2 + 2 * ids.len();
    let window = scan_window(streams);
    if t.scan_first || behind <= window as u64 {
        if let Some(found) = scan(c, t, requester, ids, since, window)? {
            return Ok(found.first(limit));
        }
    }
    let mut by_author = c.prepare_cached(t.by_author)?;
    let mut by_recipient = c.prepare_cached(t.by_recipient)?;
    let mut rounds = PullRounds::new(limit, streams);
    loop {
        let per = rounds.per_stream();
        let lim = sql_limit(per);
        // Own rows, whatever their visibility.
        for enc in [false, true] {
            let s = stream(by_author.query(params![&requester.0[..], enc, since, lim])?)?;
            rounds.add(s);
        }
        for id in ids {
            let s = stream(by_author.query(params![&id[..], false, since, lim])?)?;
            rounds.add(s);
            let s = stream(by_recipient.query(params![&id[..], since, lim])?)?;
            rounds.add(s);
        }
        if let Some(seqs) = rounds.finish_round() {
            return Ok(seqs);
        }
    }
}

/// Every row after the cursor through [`Candidates`], if there are at most
/// `window` of them (and of their recipient rows); `None` if there are more.
fn scan<'a>(
    c: &Connection,
    t: &PullTables,
    requester: &'a NodeId,
    ids: &'a [[u8; 32]],
    since: i64,
    window: usize,
) -> Result<Option<Candidates<'a>>, StoreError> {
    let over = sql_limit(window.saturating_add(1));
    let mut found = Candidates::new(requester, ids);
    let mut n = 0usize;
    let mut st = c.prepare_cached(t.scan_rows)?;
    let mut rows = st.query(params![since, over])?;
    while let Some(r) = rows.next()? {
        n += 1;
        if n > window {
            return Ok(None);
        }
        found.row(col_u64(r, 0, "seq")?, col_blob(r, 1)?, r.get(2)?);
    }
    let mut n = 0usize;
    let mut st = c.prepare_cached(t.scan_recipients)?;
    let mut rows = st.query(params![since, over])?;
    while let Some(r) = rows.next()? {
        n += 1;
        if n > window {
            return Ok(None);
        }
        found.recipient(col_u64(r, 0, "seq")?, col_blob(r, 1)?, col_blob(r, 2)?);
    }
    Ok(Some(found))
}

/// The stored `(seq, canonical bytes)` of these posts, in the given order
/// (a post deleted meanwhile is left out).
fn posts_by_seq(c: &Connection, seqs: &[u64]) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let mut st = c.prepare_cached("SELECT sync_post FROM posts WHERE seq = ?1")?;
    let mut out = Vec::with_capacity(seqs.len());
    for &s in seqs {
        if let Some(b) = st
            .query_row([to_i64(s)], |r| r.get::<_, Vec<u8>>(0))
            .optional()?
        {
            out.push((s, b));
        }
    }
    Ok(out)
}

/// The stored tombstones at these seqs, with their recipients.
fn tombstones_by_seq(c: &Connection, seqs: &[u64]) -> Result<Vec<TombstoneRow>, StoreError> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut st =
        c.prepare_cached("SELECT encrypted, record, signature FROM tombstones WHERE seq = ?1")?;
    let mut rec = c.prepare_cached("SELECT recipient FROM tombstone_recipients WHERE seq = ?1")?;
    let mut out = Vec::with_capacity(seqs.len());
    for &s in seqs {
        let row = st
            .query_row([to_i64(s)], |r| {
                Ok((
                    r.get::<_, bool>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .optional()?;
        let Some((encrypted, record, signature)) = row else {
            continue;
        };
        let mut recipients = Vec::new();
        let mut rows = rec.query([to_i64(s)])?;
        while let Some(r) = rows.next()? {
            let b: Vec<u8> = r.get(0)?;
            recipients.push(super::super::id32_from("tombstone recipient", &b)?);
        }
        out.push(TombstoneRow {
            encrypted,
            record,
            signature,
            recipients,
        });
    }
    Ok(out)
}

/// Stores `posts` (received at `now_ms`) in the writer's open
/// transaction, one result each in order: a post deleted by its author is
/// `Tombstoned`, one already held `Duplicate`. The seqs are drawn from the
/// `post_seq` counter once for the whole batch (read once, written once):
/// the writer thread is the only one drawing them inside its transaction.
fn insert_rows(
    c: &Connection,
    posts: &[PreparedPost],
    now_ms: u64,
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let mut held = c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM tombstones WHERE post_id = ?1 AND author = ?2),
                EXISTS (SELECT 1 FROM posts WHERE post_id = ?1)",
    )?;
    let mut insert = c.prepare_cached(
        "INSERT INTO posts (seq, post_id, author, encrypted, created_at_ms, received_at_ms, sync_post)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut out = Vec::with_capacity(posts.len());
    let mut seq: Option<i64> = None;
    let received = to_i64(now_ms);
    for p in posts {
        let (tombstoned, exists): (bool, bool) = held
            .query_row([&p.post_id[..], &p.author[..]], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        if tombstoned {
            out.push(Ok(Inserted::Tombstoned));
            continue;
        }
        if exists {
            out.push(Ok(Inserted::Duplicate));
            continue;
        }
        let s = match seq {
            Some(s) => s + 1,
            None => c
                .prepare_cached(HEAD_SQL)?
                .query_row([], |r| r.get::<_, i64>(0))?
                .checked_add(1)
                .ok_or_else(|| StoreError::corrupt("post_seq", "counter overflow"))?,
        };
        seq = Some(s);
        insert.execute(params![
            s,
            &p.post_id[..],
            &p.author[..],
            p.encrypted,
            to_i64(p.created_at_ms),
            received,
            &p.bytes
        ])?;
        insert_post_recipients(c, p, s)?;
        out.push(Ok(Inserted::New {
            seq: from_i64("seq", s)?,
        }));
    }
    if let Some(s) = seq {
        c.prepare_cached("UPDATE counters SET value = ?1 WHERE name = 'post_seq'")?
            .execute([s])?;
    }
    Ok(out)
}

/// A batch of posts handed to the writer by a thread that does not wait
/// for it ([`SqliteStore::submit_posts`]): one job of the writer's batch
/// (in its own savepoint only when the batch is re-run because another
/// job failed), answered through `done` after the commit.
struct PostBatch {
    posts: Vec<PreparedPost>,
    now_ms: u64,
    result: Option<Result<Vec<Result<Inserted, StoreError>>, StoreError>>,
    done: PostsDone,
}

impl WriteJob for PostBatch {
    fn run(&mut self, conn: &Connection) -> Option<Vec<QueueKey>> {
        let (posts, now_ms) = (&self.posts, self.now_ms);
        let out = catch_unwind(AssertUnwindSafe(|| insert_rows(conn, posts, now_ms)))
            .unwrap_or_else(|_| {
                Err(StoreError::corrupt(
                    "sqlite writer",
                    "a write request panicked",
                ))
            });
        let ok = out.is_ok();
        self.result = Some(out);
        ok.then(Vec::new)
    }

    fn finish(self: Box<Self>, commit: Result<(), &Arc<StoreError>>) {
        let this = *self;
        let out = job_outcome(this.result, commit);
        (this.done)(out);
    }
}

impl SqliteStore {
    pub(crate) async fn insert_posts(
        &self,
        posts: Vec<PreparedPost>,
        now_ms: u64,
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        self.write(move |c| Ok((insert_rows(c, &posts, now_ms)?, Vec::new())))
            .await
    }

    /// Queues `posts` for the writer as one job from a thread outside the
    /// runtime (an ingest verifier thread), without waiting: `done` gets
    /// the results after the commit (or the failure). Blocks while the
    /// writer's queue is full.
    pub(crate) fn submit_posts(&self, posts: Vec<PreparedPost>, now_ms: u64, done: PostsDone) {
        let job: Box<dyn WriteJob> = Box::new(PostBatch {
            posts,
            now_ms,
            result: None,
            done,
        });
        if let Err(mpsc::error::SendError(job)) = self.inner.jobs.blocking_send(job) {
            let e = Arc::new(StoreError::unavailable("sqlite writer stopped"));
            job.finish(Err(&e));
        }
    }

    /// One pull page, read in one reader transaction: post and tombstone
    /// candidates ([`candidates`]), the page cut, then its rows.
    pub(crate) async fn pull_rows(
        &self,
        requester: NodeId,
        ids: Vec<[u8; 32]>,
        since_seq: u64,
        limit: usize,
    ) -> Result<PullRows, StoreError> {
        self.read(move |c| {
            let head: i64 = c.prepare_cached(HEAD_SQL)?.query_row([], |r| r.get(0))?;
            let q = PullQuery {
                requester: &requester,
                ids: &ids,
                since_seq,
                limit: limit + 1,
                behind: from_i64("post_seq", head)?.saturating_sub(since_seq),
            };
            let posts = candidates(c, &POST_TABLES, &q)?;
            let tombs = candidates(c, &TOMB_TABLES, &q)?;
            let cut = cut_page(posts, tombs, since_seq, limit);
            Ok(PullRows {
                posts: posts_by_seq(c, &cut.post_seqs)?,
                tombs: tombstones_by_seq(c, &cut.tomb_seqs)?,
                next_seq: cut.next_seq,
                more: cut.more,
            })
        })
        .await
    }

    pub(crate) async fn apply_delete(
        &self,
        d: PreparedDelete,
    ) -> Result<DeleteOutcome, StoreError> {
        self.write(move |c| {
            let held: bool = c
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM tombstones WHERE post_id = ?1 AND author = ?2)",
                )?
                .query_row([&d.post_id[..], &d.author[..]], |r| r.get(0))?;
            if held {
                return Ok((DeleteOutcome::AlreadyDeleted, Vec::new()));
            }
            let post: Option<(i64, Vec<u8>, bool)> = c
                .prepare_cached("SELECT seq, author, encrypted FROM posts WHERE post_id = ?1")?
                .query_row([&d.post_id[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let mut recipients: Vec<Vec<u8>> = Vec::new();
            let mut encrypted = false;
            if let Some((post_seq, author, enc)) = &post {
                if author[..] != d.author[..] {
                    return Err(super::super::foreign_delete());
                }
                encrypted = *enc;
                let mut st =
                    c.prepare_cached("SELECT recipient FROM post_recipients WHERE seq = ?1")?;
                let mut rows = st.query([post_seq])?;
                while let Some(r) = rows.next()? {
                    recipients.push(r.get(0)?);
                }
                c.prepare_cached("DELETE FROM posts WHERE seq = ?1")?
                    .execute([post_seq])?;
            }
            let seq = next_post_seq(c)?;
            c.prepare_cached(
                "INSERT INTO tombstones (seq, post_id, author, encrypted, received_at_ms, record, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                seq,
                &d.post_id[..],
                &d.author[..],
                encrypted,
                to_i64(d.now_ms),
                &d.record,
                &d.signature
            ])?;
            let mut ins = c.prepare_cached(
                "INSERT INTO tombstone_recipients (recipient, seq, author) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?;
            for r in &recipients {
                ins.execute(params![r, seq, &d.author[..]])?;
            }
            let seq = from_i64("seq", seq)?;
            let outcome = if post.is_some() {
                DeleteOutcome::Deleted { seq }
            } else {
                DeleteOutcome::Recorded { seq }
            };
            Ok((outcome, Vec::new()))
        })
        .await
    }

    pub(crate) async fn post_by_id(
        &self,
        post_id: [u8; 32],
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.read(move |c| {
            let row: Option<(i64, Vec<u8>)> = c
                .prepare_cached("SELECT seq, sync_post FROM posts WHERE post_id = ?1")?
                .query_row([&post_id[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            row.map(|(s, b)| Ok((from_i64("seq", s)?, b))).transpose()
        })
        .await
    }

    /// Replaces the post stored at `old_seq` (same post id) with `p` at a
    /// new seq; `None` if that row is gone or moved meanwhile.
    pub(crate) async fn replace_post(
        &self,
        old_seq: u64,
        p: PreparedPost,
    ) -> Result<Option<u64>, StoreError> {
        self.write(move |c| {
            let still: bool = c
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM posts WHERE seq = ?1 AND post_id = ?2)",
                )?
                .query_row(params![to_i64(old_seq), &p.post_id[..]], |r| r.get(0))?;
            if !still {
                return Ok((None, Vec::new()));
            }
            c.prepare_cached("DELETE FROM post_recipients WHERE seq = ?1")?
                .execute([to_i64(old_seq)])?;
            let seq = next_post_seq(c)?;
            c.prepare_cached(
                "UPDATE posts SET seq = ?2, encrypted = ?3, sync_post = ?4 WHERE seq = ?1",
            )?
            .execute(params![to_i64(old_seq), seq, p.encrypted, &p.bytes])?;
            insert_post_recipients(c, &p, seq)?;
            Ok((Some(from_i64("seq", seq)?), Vec::new()))
        })
        .await
    }

    // -- admin --------------------------------------------------------------
}

/// The seqs of one candidate stream.
fn stream(mut rows: rusqlite::Rows<'_>) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(col_u64(row, 0, "seq")?);
    }
    Ok(out)
}
