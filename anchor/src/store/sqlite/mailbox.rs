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

    pub(crate) async fn enqueue(
        &self,
        m: NewMessage,
        audit: Option<AuditRow>,
    ) -> Result<Enqueued, StoreError> {
        self.write(move |c| {
            let e = enqueue_one(c, &m)?;
            if let Some(row) = &audit {
                insert_audit(c, row)?;
            }
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

    /// With an acknowledgement: one write job deletes the acknowledged
    /// messages, reads the page and appends the audit row (one commit,
    /// group-committed with concurrent writes). Without (a read, nothing
    /// to commit): a read on a reader connection, then the audit row is
    /// queued for the writer if the page has messages, without waiting
    /// for its commit, which comes no later than the caller's next write.
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
                let page = read_page(c, &q)?;
                audit_page(c, q.audit.as_ref(), page.messages.len())?;
                Ok((page, Vec::new()))
            })
            .await
        } else {
            let audit = q.audit.clone();
            let page = self.read(move |c| read_page(c, &q)).await?;
            let n = page.messages.len();
            if n > 0 && audit.is_some() {
                self.write_detached(move |c| {
                    audit_page(c, audit.as_ref(), n)?;
                    Ok(((), Vec::new()))
                })
                .await?;
            }
            Ok(page)
        }
    }
}

/// Appends the `receive` audit row of a page of `n` messages, if any.
fn audit_page(c: &Connection, audit: Option<&AuditRow>, n: usize) -> Result<(), StoreError> {
    match audit.and_then(|a| a.for_page(n)) {
        Some(row) => insert_audit(c, &row),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// With STAT4 statistics (after `ANALYZE`), SQLite re-plans a statement
    /// whenever a parameter the planner probed the statistics with is
    /// rebound, unless the query planner stability guarantee is on: the
    /// cached fetch statement must be compiled once, not once per call.
    #[test]
    fn fetch_statement_is_not_recompiled_per_call() -> Result<(), StoreError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("anchor.sqlite");
        let mut w = open_conn(&path)?;
        setup_writer(&mut w, true, Duration::from_secs(5))?;
        let channel = [7u8; 16];
        let tx = w.unchecked_transaction()?;
        for r in 0u8..40 {
            for i in 0..(u64::from(r) * 5 + 1) {
                let m = NewMessage {
                    channel: Some(ChannelId(channel)),
                    sender: NodeId([200; 32]),
                    recipient: NodeId([r; 32]),
                    payload: vec![1; 64],
                    client_message_id: None,
                    received_at_ms: i,
                    expires_at_ms: 1_000 + i * 10,
                };
                enqueue_one(&tx, &m)?;
            }
        }
        tx.commit()?;
        w.execute_batch("ANALYZE")?;
        let reader = open_reader(&path, Duration::from_secs(5))?;
        for round in 0u8..30 {
            let q = FetchQuery {
                recipient: NodeId([round % 40; 32]),
                channel: Some(ChannelId(channel)),
                ack_through: 0,
                max_messages: 10,
                max_bytes: 1 << 20,
                now_ms: 1_000 + u64::from(round) * 7,
                audit: None,
            };
            read_page(&reader, &q)?;
        }
        let reprepared = reader
            .prepare_cached(FETCH_SQL)?
            .get_status(StatementStatus::RePrepare);
        assert_eq!(reprepared, 0, "the fetch statement was re-planned");
        // And the one plan is the queue's index range, in id order.
        let mut st = reader.prepare(&format!("EXPLAIN QUERY PLAN {FETCH_SQL}"))?;
        let plan: Vec<String> = st
            .query_map(params![&[0u8; 32][..], &channel[..], 0, 10], |r| r.get(3))?
            .collect::<Result<_, _>>()?;
        assert_eq!(
            plan,
            ["SEARCH messages USING INDEX messages_by_queue (recipient=? AND channel=?)"],
            "{plan:?}"
        );
        Ok(())
    }
}
