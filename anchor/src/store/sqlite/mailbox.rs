//! SQLite: DM channels, enqueue and fetch.

use super::*;

impl SqliteStore {
    pub(crate) async fn create_channel(
        &self,
        members: [NodeId; 2],
        now_ms: u64,
    ) -> Result<Channel, StoreError> {
        self.write(move |c| {
            // A fresh random id collides with an existing one with
            // probability ~n/2^128; retry a few times anyway.
            for _ in 0..4 {
                c.prepare_cached(
                    "INSERT INTO channels (id, member_a, member_b, created_at_ms)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    &random_channel_id().0[..],
                    &members[0].0[..],
                    &members[1].0[..],
                    to_i64(now_ms)
                ])?;
                let found = c
                    .prepare_cached(
                        "SELECT id, created_at_ms FROM channels WHERE member_a = ?1 AND member_b = ?2",
                    )?
                    .query_row(params![&members[0].0[..], &members[1].0[..]], |r| {
                        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
                    })
                    .optional()?;
                if let Some((id, at)) = found {
                    let id = ChannelId::from_slice(&id)
                        .map_err(|e| StoreError::corrupt("channel id", e))?;
                    return Ok((
                        Channel {
                            id,
                            members,
                            created_at_ms: from_i64("created_at_ms", at)?,
                        },
                        Vec::new(),
                    ));
                }
            }
            Err(StoreError::corrupt("channels", "could not allocate an id"))
        })
        .await
    }

    pub(crate) async fn channel(&self, id: ChannelId) -> Result<Option<Channel>, StoreError> {
        self.read(move |c| channel_row(c, &id)).await
    }

    pub(crate) async fn waiting_channels(
        &self,
        member: NodeId,
        after: Option<ChannelId>,
        n: usize,
    ) -> Result<Vec<ChannelSummary>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(WAITING_CHANNELS_SQL)?;
            let after = after.map(|a| a.0);
            let from: &[u8] = after.as_ref().map_or(&[], |a| &a[..]);
            let mut rows = st.query(params![&member.0[..], from, sql_limit(n)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(read_summary(row, &member)?);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn empty_channels(
        &self,
        member: NodeId,
        after: Option<ChannelId>,
        n: usize,
    ) -> Result<Vec<ChannelSummary>, StoreError> {
        self.read(move |c| {
            let after = after.map(|a| a.0);
            let from: &[u8] = after.as_ref().map_or(&[], |a| &a[..]);
            let mut halves = Vec::with_capacity(2);
            for sql in [EMPTY_CHANNELS_A_SQL, EMPTY_CHANNELS_B_SQL] {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(params![&member.0[..], from, sql_limit(n)])?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(read_summary(row, &member)?);
                }
                halves.push(out);
            }
            let b = halves.pop().unwrap_or_default();
            let a = halves.pop().unwrap_or_default();
            Ok(merge_by_id(a, b, n))
        })
        .await
    }

    pub(crate) async fn legacy_queued(&self, member: NodeId) -> Result<u64, StoreError> {
        self.read(move |c| {
            let n: i64 = c
                .prepare_cached(
                    "SELECT count(*) FROM messages WHERE recipient = ?1 AND channel = X''",
                )?
                .query_row([&member.0[..]], |r| r.get(0))?;
            from_i64("count", n)
        })
        .await
    }

    // -- mailbox ------------------------------------------------------------

    pub(crate) async fn enqueue(&self, m: NewMessage) -> Result<Enqueued, StoreError> {
        self.write(move |c| {
            let e = enqueue_one(c, &m)?;
            let key = QueueKey::new(&m.recipient, m.channel.as_ref());
            Ok((e, vec![key]))
        })
        .await
    }

    pub(crate) async fn enqueue_batch(
        &self,
        ms: Vec<NewMessage>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.write(move |c| {
            let mut out = Vec::with_capacity(ms.len());
            let mut wake = Vec::with_capacity(ms.len());
            for m in &ms {
                out.push(enqueue_one(c, m)?);
                wake.push(QueueKey::new(&m.recipient, m.channel.as_ref()));
            }
            Ok((out, wake))
        })
        .await
    }

    pub(crate) async fn fetch(&self, q: FetchQuery) -> Result<FetchPage, StoreError> {
        if q.ack_through > 0 {
            self.write(move |c| {
                c.prepare_cached(
                    "DELETE FROM messages WHERE recipient = ?1 AND channel = ?2 AND id <= ?3",
                )?
                .execute(params![
                    &q.recipient.0[..],
                    channel_col(q.channel.as_ref()),
                    to_i64(q.ack_through)
                ])?;
                Ok((read_page(c, &q)?, Vec::new()))
            })
            .await
        } else {
            self.read(move |c| read_page(c, &q)).await
        }
    }
}
