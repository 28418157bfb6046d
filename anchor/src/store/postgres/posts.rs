//! PostgreSQL: posts, tombstones and the pull queries.

use super::super::pull::PullRounds;
use super::*;

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
                reply: tx,
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

    pub(crate) async fn pull_candidates(
        &self,
        requester: NodeId,
        ids: &[[u8; 32]],
        since_seq: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        self.candidates(PULL_SQL, requester, ids, since_seq, limit)
            .await
    }

    pub(crate) async fn tombstone_candidates(
        &self,
        requester: NodeId,
        ids: &[[u8; 32]],
        since_seq: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        self.candidates(PULL_TOMBSTONES_SQL, requester, ids, since_seq, limit)
            .await
    }

    /// The first `limit` seqs after `since_seq` a pull may return, by one
    /// of the [`pull_sql!`] statements (posts or tombstones): its streams
    /// read a few rows at a time by [`PullRounds`], one statement a round.
    async fn candidates(
        &self,
        sql: &'static str,
        requester: NodeId,
        ids: &[[u8; 32]],
        since_seq: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let mut ids: Vec<&[u8]> = ids.iter().map(|i| &i[..]).collect();
        ids.sort_unstable();
        ids.dedup();
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let st = c.prepare_cached(sql).await.map_err(pg_err)?;
            let mut rounds = PullRounds::new(limit, 2 + 2 * ids.len());
            loop {
                let per = i64_len(rounds.per_stream());
                let rows = c
                    .query(&st, &[&&requester.0[..], &to_i64(since_seq), &ids, &per])
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
        })
        .await
    }

    pub(crate) async fn tombstones_by_seq(
        &self,
        seqs: &[u64],
    ) -> Result<Vec<TombstoneRow>, StoreError> {
        let seqs: Vec<i64> = seqs.iter().map(|&s| to_i64(s)).collect();
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let mut recipients: HashMap<i64, Vec<[u8; 32]>> = HashMap::new();
            for r in c
                .query(
                    "SELECT seq, recipient FROM tombstone_recipients WHERE seq = ANY($1::int8[])",
                    &[&seqs],
                )
                .await
                .map_err(pg_err)?
            {
                let seq: i64 = r.try_get(0).map_err(pg_err)?;
                recipients
                    .entry(seq)
                    .or_default()
                    .push(id32_from("tombstone recipient", get_bytes(&r, 1)?)?);
            }
            c.query(
                "SELECT seq, encrypted, record, signature FROM tombstones
                  WHERE seq = ANY($1::int8[]) ORDER BY seq",
                &[&seqs],
            )
            .await
            .map_err(pg_err)?
            .iter()
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

    pub(crate) async fn posts_by_seq(
        &self,
        seqs: &[u64],
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let seqs: Vec<i64> = seqs.iter().map(|&s| to_i64(s)).collect();
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            c.query(
                "SELECT seq, sync_post FROM posts WHERE seq = ANY($1::int8[]) ORDER BY seq",
                &[&seqs],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| Ok((get_u64(r, 0, "seq")?, get_bytes(r, 1)?.to_vec())))
            .collect()
        })
        .await
    }

    // -- admin --------------------------------------------------------------
}
