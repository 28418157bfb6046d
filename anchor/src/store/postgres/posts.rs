//! PostgreSQL: posts, tombstones and the pull queries.

use deadpool_postgres::GenericClient;

use super::super::pull::{cut_page, scan_window, Candidates, PullRounds, PullRows};
use super::*;

/// The statements of one table pair of a pull (posts or tombstones).
struct PullTables {
    /// The streams: see [`pull_sql!`].
    streams: &'static str,
    /// ($1 since, $2 limit, $3 head) → seq, author, encrypted: the rows
    /// after the cursor, up to the head.
    scan_rows: &'static str,
    /// ($1 since, $2 limit, $3 head) → seq, recipient, author: their
    /// recipient rows.
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
    streams: PULL_SQL,
    scan_rows: "SELECT seq, author, encrypted FROM posts
      WHERE seq > $1::int8 AND seq <= $3::int8 ORDER BY seq LIMIT $2::int8",
    scan_recipients: "SELECT seq, recipient, author FROM post_recipients
      WHERE seq > $1::int8 AND seq <= $3::int8 ORDER BY seq LIMIT $2::int8",
};

const TOMB_TABLES: PullTables = PullTables {
    scan_first: true,
    streams: PULL_TOMBSTONES_SQL,
    scan_rows: "SELECT seq, author, encrypted FROM tombstones
      WHERE seq > $1::int8 AND seq <= $3::int8 ORDER BY seq LIMIT $2::int8",
    scan_recipients: "SELECT seq, recipient, author FROM tombstone_recipients
      WHERE seq > $1::int8 AND seq <= $3::int8 ORDER BY seq LIMIT $2::int8",
};

/// The last seq drawn (posts and tombstones share the counter; read
/// without the writers' lock). Writers hold the counter row until they
/// commit, so every row up to this value is committed once it is read:
/// bounding every candidate statement by it makes the separate statements
/// (each its own snapshot) agree, and a row committed meanwhile waits for
/// the next pull instead of being skipped by the cursor.
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
    /// The head read before the search: every row up to it was
    /// committed then, so every later statement sees all of them.
    head: u64,
}

/// The first `limit` seqs after `since_seq` a pull may return from one
/// table pair: a bounded scan of the rows after the cursor if few seqs
/// were drawn after it ([`scan_window`]), else the [`pull_sql!`] streams read a few rows
/// at a time by [`PullRounds`], one statement a round. `ids` sorted and
/// deduplicated.
async fn candidates<C: GenericClient + Sync>(
    c: &C,
    t: &PullTables,
    q: PullQuery<'_>,
) -> Result<Vec<u64>, StoreError> {
    let PullQuery {
        requester,
        ids,
        since_seq,
        limit,
        head,
    } = q;
    let since = to_i64(since_seq);
    let streams = 2 + 2 * ids.len();
    let window = scan_window(streams);
    if t.scan_first || head.saturating_sub(since_seq) <= window as u64 {
        let over = i64_len(window.saturating_add(1));
        let (st_rows, st_recipients) = tokio::try_join!(
            c.prepare_cached(t.scan_rows),
            c.prepare_cached(t.scan_recipients)
        )
        .map_err(pg_err)?;
        let head = to_i64(head);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&since, &over, &head];
        let (rows, recipients) =
            tokio::try_join!(c.query(&st_rows, &params), c.query(&st_recipients, &params))
                .map_err(pg_err)?;
        if rows.len() <= window && recipients.len() <= window {
            let mut found = Candidates::new(requester, ids);
            for r in &rows {
                let encrypted: bool = r.try_get(2).map_err(pg_err)?;
                found.row(get_u64(r, 0, "seq")?, get_bytes(r, 1)?, encrypted);
            }
            for r in &recipients {
                found.recipient(get_u64(r, 0, "seq")?, get_bytes(r, 1)?, get_bytes(r, 2)?);
            }
            return Ok(found.first(limit));
        }
    }
    let ids: Vec<&[u8]> = ids.iter().map(|i| &i[..]).collect();
    let st = c.prepare_cached(t.streams).await.map_err(pg_err)?;
    let mut rounds = PullRounds::new(limit, streams);
    loop {
        let per = i64_len(rounds.per_stream());
        let rows = c
            .query(&st, &[&&requester.0[..], &since, &ids, &per, &to_i64(head)])
            .await
            .map_err(pg_err)?;
        let mut streams: HashMap<i64, Vec<u64>> = HashMap::new();
        for r in &rows {
            let tag: i64 = r.try_get(0).map_err(pg_err)?;
            streams.entry(tag).or_default().push(get_u64(r, 1, "seq")?);
        }
        for (_, seqs) in streams {
            rounds.add(seqs);
        }
        if let Some(seqs) = rounds.finish_round() {
            return Ok(seqs);
        }
    }
}

/// The stored `(seq, canonical bytes)` of these posts, in seq order (a
/// post deleted meanwhile is left out).
async fn posts_by_seq<C: GenericClient + Sync>(
    c: &C,
    seqs: &[u64],
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i64> = seqs.iter().map(|&s| to_i64(s)).collect();
    let st = c
        .prepare_cached("SELECT seq, sync_post FROM posts WHERE seq = ANY($1::int8[]) ORDER BY seq")
        .await
        .map_err(pg_err)?;
    c.query(&st, &[&seqs])
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| Ok((get_u64(r, 0, "seq")?, get_bytes(r, 1)?.to_vec())))
        .collect()
}

/// The stored tombstones at these seqs, with their recipients, in seq
/// order.
async fn tombstones_by_seq<C: GenericClient + Sync>(
    c: &C,
    seqs: &[u64],
) -> Result<Vec<TombstoneRow>, StoreError> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let seqs: Vec<i64> = seqs.iter().map(|&s| to_i64(s)).collect();
    let (st_recipients, st_rows) = tokio::try_join!(
        c.prepare_cached(
            "SELECT seq, recipient FROM tombstone_recipients WHERE seq = ANY($1::int8[])"
        ),
        c.prepare_cached(
            "SELECT seq, encrypted, record, signature FROM tombstones
              WHERE seq = ANY($1::int8[]) ORDER BY seq"
        )
    )
    .map_err(pg_err)?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&seqs];
    let (recipient_rows, rows) =
        tokio::try_join!(c.query(&st_recipients, &params), c.query(&st_rows, &params))
            .map_err(pg_err)?;
    let mut recipients: HashMap<i64, Vec<[u8; 32]>> = HashMap::new();
    for r in recipient_rows {
        let seq: i64 = r.try_get(0).map_err(pg_err)?;
        recipients
            .entry(seq)
            .or_default()
            .push(id32_from("tombstone recipient", get_bytes(&r, 1)?)?);
    }
    rows.iter()
        .map(|r| {
            let seq: i64 = r.try_get(0).map_err(pg_err)?;
            Ok(TombstoneRow {
                encrypted: r.try_get(1).map_err(pg_err)?,
                record: get_bytes(r, 2)?.to_vec(),
                signature: get_bytes(r, 3)?.to_vec(),
                recipients: recipients.remove(&seq).unwrap_or_default(),
            })
        })
        .collect()
}

impl PgStore {
    pub(crate) async fn insert_posts(
        &self,
        posts: Vec<PreparedPost>,
        now_ms: u64,
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        let (tx, rx) = oneshot::channel();
        let limit = self.inner.op_timeout;
        tokio::time::timeout(
            limit,
            self.inner.posts.send(PostJob {
                posts,
                now_ms,
                reply: Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            }),
        )
        .await
        .map_err(|_| StoreError::unavailable("post write queue full"))?
        .map_err(|_| StoreError::unavailable("postgres post writer stopped"))?;
        tokio::time::timeout(limit * 2, rx)
            .await
            .map_err(|_| StoreError::unavailable(format!("no answer within {:?}", limit * 2)))?
            .map_err(|_| StoreError::unavailable("postgres post writer stopped"))?
    }

    /// Queues `posts` for the post writer from a thread outside the
    /// runtime, without waiting ([`super::super::AnchorStore::submit_posts`]).
    pub(crate) fn submit_posts(&self, posts: Vec<PreparedPost>, now_ms: u64, done: PostsDone) {
        let job = PostJob {
            posts,
            now_ms,
            reply: done,
        };
        if let Err(mpsc::error::SendError(job)) = self.inner.posts.blocking_send(job) {
            (job.reply)(Err(StoreError::unavailable("postgres post writer stopped")));
        }
    }

    /// One pull page on one pooled connection: the post and tombstone
    /// candidates ([`candidates`], pipelined), the page cut, then its rows
    /// (pipelined). Every statement is prepared once per connection.
    pub(crate) async fn pull_rows(
        &self,
        requester: NodeId,
        ids: Vec<[u8; 32]>,
        since_seq: u64,
        limit: usize,
    ) -> Result<PullRows, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let st = c.prepare_cached(HEAD_SQL).await.map_err(pg_err)?;
            let head: i64 = c
                .query_one(&st, &[])
                .await
                .map_err(pg_err)?
                .try_get(0)
                .map_err(pg_err)?;
            let q = PullQuery {
                requester: &requester,
                ids: &ids,
                since_seq,
                limit: limit + 1,
                head: from_i64("post_seq", head)?,
            };
            let (posts, tombs) = tokio::try_join!(
                candidates(&c, &POST_TABLES, q),
                candidates(&c, &TOMB_TABLES, q),
            )?;
            let cut = cut_page(posts, tombs, since_seq, limit);
            let (posts, tombs) = tokio::try_join!(
                posts_by_seq(&c, &cut.post_seqs),
                tombstones_by_seq(&c, &cut.tomb_seqs),
            )?;
            Ok(PullRows {
                posts,
                tombs,
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
        self.timed(async {
            let mut c = client(&self.inner.pool).await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let seq = lock_post_seq(&tx).await?;
            let held = tx
                .query_opt(
                    "SELECT 1 FROM tombstones WHERE post_id = $1::bytea AND author = $2::bytea",
                    &[&&d.post_id[..], &&d.author[..]],
                )
                .await
                .map_err(pg_err)?;
            if held.is_some() {
                return Ok(DeleteOutcome::AlreadyDeleted);
            }
            let post = tx
                .query_opt(
                    "SELECT seq, author, encrypted FROM posts WHERE post_id = $1::bytea",
                    &[&&d.post_id[..]],
                )
                .await
                .map_err(pg_err)?;
            let mut recipients: Vec<Vec<u8>> = Vec::new();
            let mut encrypted = false;
            if let Some(row) = &post {
                if get_bytes(row, 1)? != &d.author[..] {
                    return Err(super::super::foreign_delete());
                }
                let post_seq: i64 = row.try_get(0).map_err(pg_err)?;
                encrypted = row.try_get(2).map_err(pg_err)?;
                for r in tx
                    .query(
                        "SELECT recipient FROM post_recipients WHERE seq = $1::int8",
                        &[&post_seq],
                    )
                    .await
                    .map_err(pg_err)?
                {
                    recipients.push(get_bytes(&r, 0)?.to_vec());
                }
                tx.execute("DELETE FROM posts WHERE seq = $1::int8", &[&post_seq])
                    .await
                    .map_err(pg_err)?;
            }
            let seq = seq + 1;
            tx.execute(
                "INSERT INTO tombstones (seq, post_id, author, encrypted, received_at_ms, record, signature)
                 VALUES ($1::int8, $2::bytea, $3::bytea, $4::bool, $5::int8, $6::bytea, $7::bytea)",
                &[
                    &seq,
                    &&d.post_id[..],
                    &&d.author[..],
                    &encrypted,
                    &to_i64(d.now_ms),
                    &d.record,
                    &d.signature,
                ],
            )
            .await
            .map_err(pg_err)?;
            if !recipients.is_empty() {
                tx.execute(
                    "INSERT INTO tombstone_recipients (recipient, seq, author)
                     SELECT r, $2::int8, $3::bytea FROM unnest($1::bytea[]) AS r
                     ON CONFLICT DO NOTHING",
                    &[&recipients, &seq, &&d.author[..]],
                )
                .await
                .map_err(pg_err)?;
            }
            store_post_seq(&tx, seq).await?;
            tx.commit().await.map_err(pg_err)?;
            let seq = from_i64("seq", seq)?;
            Ok(if post.is_some() {
                DeleteOutcome::Deleted { seq }
            } else {
                DeleteOutcome::Recorded { seq }
            })
        })
        .await
    }

    pub(crate) async fn post_by_id(
        &self,
        post_id: [u8; 32],
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            c.query_opt(
                "SELECT seq, sync_post FROM posts WHERE post_id = $1::bytea",
                &[&&post_id[..]],
            )
            .await
            .map_err(pg_err)?
            .map(|r| Ok((get_u64(&r, 0, "seq")?, get_bytes(&r, 1)?.to_vec())))
            .transpose()
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
        self.timed(async {
            let mut c = client(&self.inner.pool).await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let seq = lock_post_seq(&tx).await? + 1;
            let old = to_i64(old_seq);
            let still = tx
                .query_opt(
                    "SELECT 1 FROM posts WHERE seq = $1::int8 AND post_id = $2::bytea",
                    &[&old, &&p.post_id[..]],
                )
                .await
                .map_err(pg_err)?;
            if still.is_none() {
                return Ok(None);
            }
            tx.execute("DELETE FROM post_recipients WHERE seq = $1::int8", &[&old])
                .await
                .map_err(pg_err)?;
            tx.execute(
                "UPDATE posts SET seq = $2::int8, encrypted = $3::bool, sync_post = $4::bytea
                  WHERE seq = $1::int8",
                &[&old, &seq, &p.encrypted, &p.bytes],
            )
            .await
            .map_err(pg_err)?;
            let recipients: Vec<&[u8]> = p.recipients.iter().map(|r| &r[..]).collect();
            if !recipients.is_empty() {
                tx.execute(
                    "INSERT INTO post_recipients (recipient, seq, author)
                     SELECT r, $2::int8, $3::bytea FROM unnest($1::bytea[]) AS r
                     ON CONFLICT DO NOTHING",
                    &[&recipients, &seq, &&p.author[..]],
                )
                .await
                .map_err(pg_err)?;
            }
            store_post_seq(&tx, seq).await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(Some(from_i64("seq", seq)?))
        })
        .await
    }

    // -- admin --------------------------------------------------------------
}
