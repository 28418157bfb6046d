//! PostgreSQL: DM channels, enqueue and fetch.

use super::batch::enqueue_rows;
use super::*;

impl PgStore {
    pub(crate) async fn create_channel(
        &self,
        members: [NodeId; 2],
        now_ms: u64,
    ) -> Result<Channel, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            for _ in 0..4 {
                let rows = c
                    .query(
                        "WITH ins AS (
                            INSERT INTO channels (id, member_a, member_b, created_at_ms)
                            VALUES ($1::bytea, $2::bytea, $3::bytea, $4::int8)
                            ON CONFLICT DO NOTHING
                            RETURNING id, member_a, member_b, created_at_ms)
                         SELECT id, member_a, member_b, created_at_ms FROM ins
                         UNION ALL
                         SELECT id, member_a, member_b, created_at_ms FROM channels
                          WHERE member_a = $2::bytea AND member_b = $3::bytea",
                        &[
                            &&random_channel_id().0[..],
                            &&members[0].0[..],
                            &&members[1].0[..],
                            &to_i64(now_ms),
                        ],
                    )
                    .await
                    .map_err(pg_err)?;
                if let Some(row) = rows.first() {
                    return read_channel(row);
                }
                // The pair was inserted concurrently by another transaction
                // not yet visible to our snapshot, or the random id
                // collided: look again.
            }
            Err(StoreError::corrupt(
                "channels",
                "could not create or find the channel",
            ))
        })
        .await
    }

    pub(crate) async fn channel(&self, id: ChannelId) -> Result<Option<Channel>, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let st = c
                .prepare_cached(
                    "SELECT id, member_a, member_b, created_at_ms FROM channels WHERE id = $1::bytea",
                )
                .await
                .map_err(pg_err)?;
            c.query_opt(&st, &[&&id.0[..]])
                .await
                .map_err(pg_err)?
                .map(|r| read_channel(&r))
                .transpose()
        })
        .await
    }

    pub(crate) async fn waiting_channels(
        &self,
        member: NodeId,
        after: Option<ChannelId>,
        n: usize,
    ) -> Result<Vec<ChannelSummary>, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let from: &[u8] = after.as_ref().map_or(&[], |a| &a.0[..]);
            let rows = c
                .query(WAITING_CHANNELS_SQL, &[&&member.0[..], &from, &i64_len(n)])
                .await
                .map_err(pg_err)?;
            rows.iter().map(|row| read_summary(row, &member)).collect()
        })
        .await
    }

    pub(crate) async fn empty_channels(
        &self,
        member: NodeId,
        after: Option<ChannelId>,
        n: usize,
    ) -> Result<Vec<ChannelSummary>, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let from: &[u8] = after.as_ref().map_or(&[], |a| &a.0[..]);
            let mut halves = Vec::with_capacity(2);
            for sql in [EMPTY_CHANNELS_A_SQL, EMPTY_CHANNELS_B_SQL] {
                let rows = c
                    .query(sql, &[&&member.0[..], &from, &i64_len(n)])
                    .await
                    .map_err(pg_err)?;
                halves.push(
                    rows.iter()
                        .map(|row| read_summary(row, &member))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
            let b = halves.pop().unwrap_or_default();
            let a = halves.pop().unwrap_or_default();
            Ok(merge_by_id(a, b, n))
        })
        .await
    }

    pub(crate) async fn legacy_queued(&self, member: NodeId) -> Result<u64, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let row = c
                .query_one(
                    "SELECT count(*) FROM messages WHERE recipient = $1::bytea AND channel = ''::bytea",
                    &[&&member.0[..]],
                )
                .await
                .map_err(pg_err)?;
            get_u64(&row, 0, "count")
        })
        .await
    }

    // -- mailbox ------------------------------------------------------------

    pub(crate) async fn enqueue(&self, m: NewMessage) -> Result<Enqueued, StoreError> {
        self.submit(|r| PgJob::Enqueue(m, r)).await
    }

    pub(crate) async fn enqueue_batch(
        &self,
        ms: Vec<NewMessage>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        // Spawned: once started, the transaction commits (and wakes) even
        // if the caller goes away.
        let pool = self.inner.pool.clone();
        let registry = Arc::clone(&self.inner.registry);
        let limit = self.inner.op_timeout;
        tokio::spawn(async move {
            let out = bounded(limit, async {
                let mut c = client(&pool).await?;
                let tx = c.transaction().await.map_err(pg_err)?;
                let results = enqueue_rows(&tx, &ms).await?;
                let out: Vec<Enqueued> = results.into_iter().collect::<Result<_, _>>()?;
                tx.commit().await.map_err(pg_err)?;
                Ok(out)
            })
            .await?;
            let mut woken = HashSet::new();
            for (m, e) in ms.iter().zip(&out) {
                let key = QueueKey::new(&m.recipient, m.channel.as_ref());
                if !e.duplicate && woken.insert(key) {
                    registry.wake(&key);
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::unavailable(format!("enqueue task: {e}")))?
    }

    pub(crate) async fn fetch(&self, q: FetchQuery) -> Result<FetchPage, StoreError> {
        self.timed(async {
            let mut c = client(&self.inner.pool).await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let recipient = &q.recipient.0[..];
            let channel = channel_col(q.channel.as_ref());
            if q.ack_through > 0 {
                let st = tx
                    .prepare_cached(
                        "DELETE FROM messages
                          WHERE recipient = $1::bytea AND channel = $2::bytea AND id <= $3::int8",
                    )
                    .await
                    .map_err(pg_err)?;
                tx.execute(&st, &[&recipient, &channel, &to_i64(q.ack_through)])
                    .await
                    .map_err(pg_err)?;
            }
            let st = tx.prepare_cached(FETCH_LENS_SQL).await.map_err(pg_err)?;
            let lens: Vec<(u64, usize)> = tx
                .query(
                    &st,
                    &[
                        &recipient,
                        &channel,
                        &to_i64(q.now_ms),
                        &i64_len(q.max_messages.saturating_add(1)),
                    ],
                )
                .await
                .map_err(pg_err)?
                .iter()
                .map(|r| {
                    let id = get_u64(r, 0, "message id")?;
                    let len: i32 = r.try_get(1).map_err(pg_err)?;
                    Ok((id, usize::try_from(len).unwrap_or(0)))
                })
                .collect::<Result<_, StoreError>>()?;
            let n = fetch_cut(&lens, q.max_messages, q.max_bytes);
            let mut page = FetchPage {
                messages: Vec::with_capacity(n),
                more: lens.len() > n,
            };
            if n > 0 {
                let ids: Vec<i64> = lens[..n].iter().map(|&(id, _)| to_i64(id)).collect();
                let st = tx
                    .prepare_cached(
                        "SELECT id, sender, received_at_ms, expires_at_ms, payload FROM messages
                          WHERE recipient = $1::bytea AND channel = $2::bytea AND id = ANY($3::int8[])
                          ORDER BY id",
                    )
                    .await
                    .map_err(pg_err)?;
                for row in tx
                    .query(&st, &[&recipient, &channel, &ids])
                    .await
                    .map_err(pg_err)?
                {
                    page.messages.push(StoredMessage {
                        message_id: get_u64(&row, 0, "message id")?,
                        channel: q.channel,
                        sender: node_from("sender", get_bytes(&row, 1)?)?,
                        received_at_ms: get_u64(&row, 2, "received_at_ms")?,
                        expires_at_ms: get_u64(&row, 3, "expires_at_ms")?,
                        payload: get_bytes(&row, 4)?.to_vec(),
                    });
                }
            }
            tx.commit().await.map_err(pg_err)?;
            Ok(page)
        })
        .await
    }
}
