//! PostgreSQL: DM channels, enqueue and fetch.

use tokio_postgres::types::ToSql;

use super::batch::{write_batch, Batch, Conn};
use super::*;

/// The text of [`FETCH_PAGE_SQL`], also the end of [`FETCH_ACK_PAGE_SQL`].
macro_rules! fetch_page_sql {
    () => {
        "SELECT k.i, m.id, m.payload_len, m.sender, m.received_at_ms,
        m.expires_at_ms, m.payload
   FROM unnest($1::int4[], $2::bytea[], $3::bytea[], $4::int8[], $5::int8[], $6::int8[],
               $7::int8[]) AS k(i, r, c, now, lim, max_bytes, after)
   CROSS JOIN LATERAL (
     SELECT q.id, q.payload_len,
            CASE WHEN q.fits THEN q.sender END AS sender,
            CASE WHEN q.fits THEN q.received_at_ms END AS received_at_ms,
            CASE WHEN q.fits THEN q.expires_at_ms END AS expires_at_ms,
            CASE WHEN q.fits THEN q.payload END AS payload
       FROM (SELECT id, payload_len, sender, received_at_ms, expires_at_ms, payload,
                    row_number() OVER w = 1 OR sum(payload_len) OVER w <= k.max_bytes AS fits
               FROM (SELECT id, payload_len, sender, received_at_ms, expires_at_ms, payload
                       FROM (SELECT id, payload_len, sender, received_at_ms, expires_at_ms, payload
                               FROM messages
                              WHERE recipient = k.r AND channel = k.c AND id > k.after
                              ORDER BY id OFFSET 0) AS queue
                      WHERE expires_at_ms > k.now
                      ORDER BY id LIMIT k.lim) AS first
             WINDOW w AS (ORDER BY id)) AS q) AS m
  ORDER BY k.i, m.id"
    };
}

/// The pages of several fetches at once: row `i` of the arrays is one
/// fetch (recipient, channel, now, limit = max_messages + 1, max_bytes,
/// after), each an index range scan of `messages_by_queue` for the
/// queue's first `limit` unexpired messages with an id above `after` (0,
/// or in a write batch the largest `ackThrough` of that queue in the
/// batch: [`FETCH_ACK_PAGE_SQL`]). Only the key can serve it: the key
/// range is a subquery the planner cannot flatten (`OFFSET 0`) and the
/// expiry test is applied to its rows, so no plan reads
/// `messages_by_expiry` (every unexpired message of every queue, filtered
/// by queue, then sorted: the generic plan on a small table with fresh
/// statistics, kept by a connection until the next `ANALYZE`). Every row
/// comes with its length; the message itself (sender, times, payload)
/// only for the rows a page can keep (the first, and those within
/// `max_bytes` counting from the first), so a page never reads a payload
/// it does not send. The cut itself is `fetch_cut`'s.
pub(super) const FETCH_PAGE_SQL: &str = fetch_page_sql!();

/// The acknowledgements and the pages of a write batch's fetches in one
/// statement: [`FETCH_PAGE_SQL`] (its arguments) after deleting every
/// message of each fetch's queue up to its `after` (the largest
/// `ackThrough` of that queue in the batch, so the union of what the
/// batch's fetches acknowledged). The delete is a data-modifying `WITH`
/// (run to completion though nothing reads it); the page reads the
/// snapshot from before it, hence its `id > after`.
///
/// The rows are found by one range scan of the key per queue (a lateral
/// subquery that cannot be flattened into a join, `OFFSET 0`, so the
/// generic plan, [`MAILBOX_SESSION_OPTIONS`](super::pool::MAILBOX_SESSION_OPTIONS),
/// cannot join over the whole index) and deleted by their tuple ids, in
/// tuple-id order (so two batches lock rows in the same order). Safe
/// because the ids are found and used in this one statement, under one
/// snapshot: `VACUUM` frees no tuple a running statement can see, `VACUUM
/// FULL` and `CLUSTER` wait for its lock, rows of `messages` are never
/// updated (a tuple id is its row's for life), and a row deleted meanwhile
/// by another batch or the sweep is skipped, as a delete by key would.
pub(super) const FETCH_ACK_PAGE_SQL: &str = concat!(
    "WITH acked AS (
  DELETE FROM messages
   WHERE ctid = ANY (ARRAY(
     SELECT x.ctid FROM unnest($2::bytea[], $3::bytea[], $7::int8[]) AS k(r, c, a)
      CROSS JOIN LATERAL (
        SELECT ctid FROM messages
         WHERE recipient = k.r AND channel = k.c AND id <= k.a
        OFFSET 0) AS x)))
",
    fetch_page_sql!()
);

/// Example arguments of [`FETCH_PAGE_SQL`] for its plan: one fetch.
pub(super) const FETCH_EXPLAIN_ARGS: &str =
    "'{0}', ARRAY['\\x00'::bytea], ARRAY[''::bytea], '{0}', '{101}', '{1048576}', '{0}'";

/// The generic plan of `sql` on `c` (as the mailbox's connections use it,
/// [`MAILBOX_SESSION_OPTIONS`](super::pool::MAILBOX_SESSION_OPTIONS)): prepared
/// under a name of its own, explained with `args`, deallocated, in one
/// message. (`EXPLAIN` of a statement with bound parameters shows a plan
/// made for those values, not the generic one.)
pub(super) async fn explain_generic(c: &Conn, sql: &str, args: &str) -> Result<String, StoreError> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "distsoc_explain_{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let msgs = c
        .simple_query(&format!(
            "PREPARE {name} AS {sql}; EXPLAIN EXECUTE {name}({args}); DEALLOCATE {name}"
        ))
        .await
        .map_err(pg_err)?;
    let lines: Vec<&str> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0),
            _ => None,
        })
        .collect();
    Ok(lines.join("\n"))
}

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

    pub(crate) async fn enqueue(
        &self,
        m: NewMessage,
        audit: Option<AuditRow>,
    ) -> Result<Enqueued, StoreError> {
        self.submit(|r| PgJob::Enqueue(m, audit, r)).await
    }

    pub(crate) async fn enqueue_batch(
        &self,
        ms: Vec<NewMessage>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        // Spawned: once started, the transaction commits (and wakes) even
        // if the caller goes away.
        let pool = self.inner.mailbox.clone();
        let registry = Arc::clone(&self.inner.registry);
        let limit = self.inner.op_timeout;
        tokio::spawn(async move {
            let b = Batch {
                msgs: &ms,
                ..Batch::default()
            };
            let (results, _) = write_batch(&pool, limit, &b).await?;
            let out: Vec<Enqueued> = results.into_iter().collect::<Result<_, _>>()?;
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

    /// With an acknowledgement: a group-committed write (the delete, the
    /// page and its audit row in the batch transaction, answered after the
    /// commit). Without (a read, nothing to commit): the page statement
    /// alone on a mailbox connection
    /// ([`MAILBOX_SESSION_OPTIONS`](super::pool::MAILBOX_SESSION_OPTIONS)), one
    /// round trip and no transaction of its own, then the audit row is
    /// queued for the group commit if the page has messages, without
    /// waiting for its commit.
    pub(crate) async fn fetch(&self, q: FetchQuery) -> Result<FetchPage, StoreError> {
        if q.ack_through > 0 {
            return self.submit(|r| PgJob::Fetch(q, r)).await;
        }
        let page = self
            .timed(async {
                let c = client(&self.inner.mailbox).await?;
                read_pages(&c, std::slice::from_ref(&q))
                    .await?
                    .pop()
                    .ok_or_else(|| StoreError::corrupt("fetch", "no page"))
            })
            .await?;
        if let Some(row) = q.audit.and_then(|a| a.for_page(page.messages.len())) {
            self.submit_detached(|r| PgJob::Audit(row, r)).await?;
        }
        Ok(page)
    }
}

/// The pages of several fetches (one per query, in order) with one
/// prepared statement, whatever their number ([`FETCH_PAGE_SQL`]): each
/// queue's first `max_messages + 1` unexpired messages, cut by
/// [`fetch_cut`]. One statement, in a transaction of its own (implicit:
/// it reads one snapshot and writes nothing), on a mailbox connection
/// ([`MAILBOX_SESSION_OPTIONS`](super::pool::MAILBOX_SESSION_OPTIONS)).
async fn read_pages(c: &Conn, qs: &[FetchQuery]) -> Result<Vec<FetchPage>, StoreError> {
    if qs.is_empty() {
        return Ok(Vec::new());
    }
    let args = PageArgs::new(qs);
    let st = c.prepare_cached(FETCH_PAGE_SQL).await.map_err(pg_err)?;
    let rows = c.query(&st, &args.params()).await.map_err(pg_err)?;
    pages_from_rows(qs, &rows)
}

/// The parameters of [`FETCH_PAGE_SQL`] for some fetches.
pub(super) struct PageArgs<'a> {
    idx: Vec<i32>,
    recipient: Vec<&'a [u8]>,
    channel: Vec<&'a [u8]>,
    now: Vec<i64>,
    limit: Vec<i64>,
    max_bytes: Vec<i64>,
    after: Vec<i64>,
}

impl<'a> PageArgs<'a> {
    /// `after` of a fetch is the largest `ack_through` among the fetches
    /// of its queue in `qs` (the ids [`FETCH_ACK_PAGE_SQL`] deletes from
    /// that queue; 0 for reads).
    pub(super) fn new(qs: &'a [FetchQuery]) -> Self {
        let mut acked: HashMap<(&[u8], &[u8]), u64> = HashMap::new();
        for q in qs {
            let a = acked
                .entry((&q.recipient.0[..], channel_col(q.channel.as_ref())))
                .or_insert(0);
            *a = (*a).max(q.ack_through);
        }
        PageArgs {
            after: qs
                .iter()
                .map(|q| {
                    let key = (&q.recipient.0[..], channel_col(q.channel.as_ref()));
                    to_i64(acked.get(&key).copied().unwrap_or(0))
                })
                .collect(),
            idx: (0..qs.len()).map(i32_len).collect(),
            recipient: qs.iter().map(|q| &q.recipient.0[..]).collect(),
            channel: qs.iter().map(|q| channel_col(q.channel.as_ref())).collect(),
            now: qs.iter().map(|q| to_i64(q.now_ms)).collect(),
            limit: qs
                .iter()
                .map(|q| i64_len(q.max_messages.saturating_add(1)))
                .collect(),
            max_bytes: qs.iter().map(|q| i64_len(q.max_bytes)).collect(),
        }
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.idx,
            &self.recipient,
            &self.channel,
            &self.now,
            &self.limit,
            &self.max_bytes,
            &self.after,
        ]
    }

    /// Whether a fetch acknowledges something (then the batch runs
    /// [`FETCH_ACK_PAGE_SQL`]).
    pub(super) fn acknowledges(&self) -> bool {
        self.after.iter().any(|&a| a > 0)
    }
}

/// The pages of `qs` from the rows of [`FETCH_PAGE_SQL`].
pub(super) fn pages_from_rows(
    qs: &[FetchQuery],
    rows: &[Row],
) -> Result<Vec<FetchPage>, StoreError> {
    // Rows come by query, then id.
    let mut by_query: Vec<Vec<&Row>> = vec![Vec::new(); qs.len()];
    for r in rows {
        let i: i32 = r.try_get(0).map_err(pg_err)?;
        usize::try_from(i)
            .ok()
            .and_then(|i| by_query.get_mut(i))
            .ok_or_else(|| StoreError::corrupt("fetch", "query index out of range"))?
            .push(r);
    }
    let mut pages = Vec::with_capacity(qs.len());
    for (q, rows) in qs.iter().zip(by_query) {
        let mut lens = Vec::with_capacity(rows.len());
        for r in &rows {
            let len: i32 = r.try_get(2).map_err(pg_err)?;
            lens.push((
                get_u64(r, 1, "message id")?,
                usize::try_from(len).unwrap_or(0),
            ));
        }
        let n = fetch_cut(&lens, q.max_messages, q.max_bytes);
        let mut page = FetchPage {
            messages: Vec::with_capacity(n),
            more: rows.len() > n,
        };
        for (row, (id, _)) in rows.iter().zip(&lens).take(n) {
            let sender: Option<&[u8]> = row.try_get(3).map_err(pg_err)?;
            let payload: Option<&[u8]> = row.try_get(6).map_err(pg_err)?;
            let (Some(sender), Some(payload)) = (sender, payload) else {
                return Err(StoreError::corrupt("fetch", "a kept message was not read"));
            };
            page.messages.push(StoredMessage {
                message_id: *id,
                channel: q.channel,
                sender: node_from("sender", sender)?,
                received_at_ms: get_u64(row, 4, "received_at_ms")?,
                expires_at_ms: get_u64(row, 5, "expires_at_ms")?,
                payload: payload.to_vec(),
            });
        }
        pages.push(page);
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn fetch(recipient: u8, channel: Option<u8>, ack_through: u64) -> FetchQuery {
        FetchQuery {
            recipient: NodeId([recipient; 32]),
            channel: channel.map(|c| ChannelId([c; 16])),
            ack_through,
            max_messages: 10,
            max_bytes: 1 << 20,
            now_ms: 1,
            audit: None,
        }
    }

    /// A batch's page of a queue starts after every id any fetch of the
    /// batch acknowledged in that queue (what its delete removes), and
    /// only that queue's.
    #[test]
    fn pages_start_after_the_largest_acknowledgement_of_their_queue() {
        let qs = [
            fetch(1, None, 5),
            fetch(1, None, 9),
            fetch(1, Some(7), 3),
            fetch(2, None, 0),
            fetch(1, None, 0),
        ];
        let args = PageArgs::new(&qs);
        assert_eq!(args.after, vec![9, 9, 3, 0, 9]);
        assert!(args.acknowledges());
        let reads = [fetch(1, None, 0), fetch(2, Some(7), 0)];
        let args = PageArgs::new(&reads);
        assert_eq!(args.after, vec![0, 0]);
        assert!(!args.acknowledges(), "reads run the page alone");
    }
}
