//! PostgreSQL group commit: the write workers and the multi-row statements
//! of one batch (enqueues, posts, audit events, check-ins).

use std::sync::OnceLock;

use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::mailbox::{pages_from_rows, PageArgs, FETCH_ACK_PAGE_SQL, FETCH_PAGE_SQL};
use super::*;

/// Locks the queues of an enqueue batch: `$1` the lock class, `$2` the
/// sorted queue keys.
const LOCK_QUEUES_SQL: &str =
    "SELECT pg_advisory_xact_lock($1::int4, k) FROM unnest($2::int4[]) AS k";

/// The messages already queued under a clientMessageId: row `i` of the
/// arrays is (recipient, channel, sender, clientMessageId). One probe of
/// `messages_dedup` per row: the subquery is a lateral one that cannot be
/// flattened into a join (`OFFSET 0`), so the generic plan
/// ([`MAILBOX_SESSION_OPTIONS`](super::pool::MAILBOX_SESSION_OPTIONS))
/// cannot be a join over the whole index.
const QUEUED_CM_SQL: &str = "SELECT m.recipient, m.channel, m.sender, m.client_msg_id,
        m.id, m.received_at_ms, m.expires_at_ms
   FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[]) AS k(r, c, s, cm)
   CROSS JOIN LATERAL (
     SELECT recipient, channel, sender, client_msg_id, id, received_at_ms, expires_at_ms
       FROM messages
      WHERE recipient = k.r AND channel = k.c AND sender = k.s
        AND client_msg_id = k.cm AND client_msg_id IS NOT NULL
     OFFSET 0) AS m";

/// `$1` new message ids.
const DRAW_IDS_SQL: &str = "SELECT nextval('message_ids') FROM generate_series(1, $1::int4)";

/// One chunk of new messages, row `i` of the arrays each.
const INSERT_MESSAGES_SQL: &str = "INSERT INTO messages
    (id, recipient, channel, sender, client_msg_id, received_at_ms, expires_at_ms, payload_len, payload)
 SELECT * FROM unnest($1::int8[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[],
                      $6::int8[], $7::int8[], $8::int4[], $9::bytea[])";

/// `NOTIFY $1, p` for every payload `p` of `$2` (delivered at commit).
const NOTIFY_SQL: &str = "SELECT pg_notify($1::text, p) FROM unnest($2::text[]) AS p";

/// Which of the last statements of a write batch it has, all sent as one
/// ([`Finish::sql`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Finish {
    /// The (last chunk of) messages: [`INSERT_MESSAGES_SQL`].
    insert: bool,
    /// Audit rows: [`INSERT_AUDITS_SQL`].
    audit: bool,
    /// Check-ins: [`UPSERT_CHECKINS_SQL`].
    checkin: bool,
    /// `NOTIFY`s: [`NOTIFY_SQL`].
    notify: bool,
}

impl Finish {
    /// The parts as one statement, their parameters in this order
    /// (messages, audit rows, check-ins, notifications; those present),
    /// or none if none is present. The inserts are data-modifying `WITH`s
    /// (each run to completion, though nothing reads them), the
    /// `pg_notify` select the main statement (otherwise the last insert):
    /// what the separate statements did, in one protocol message. Every
    /// part writes a different table, and the `NOTIFY`s take effect at
    /// the commit, as before.
    fn sql(self) -> Option<&'static str> {
        static ALL: OnceLock<Vec<Option<String>>> = OnceLock::new();
        let all = ALL.get_or_init(|| (0..16).map(|i| Finish::from_index(i).build()).collect());
        all.get(self.index()).and_then(Option::as_deref)
    }

    fn index(self) -> usize {
        usize::from(self.insert)
            | usize::from(self.audit) << 1
            | usize::from(self.checkin) << 2
            | usize::from(self.notify) << 3
    }

    fn from_index(i: usize) -> Finish {
        Finish {
            insert: i & 1 != 0,
            audit: i & 2 != 0,
            checkin: i & 4 != 0,
            notify: i & 8 != 0,
        }
    }

    fn build(self) -> Option<String> {
        let mut statements = Vec::new();
        let mut params = 0;
        for (present, sql, n) in [
            (self.insert, INSERT_MESSAGES_SQL, 9),
            (self.audit, INSERT_AUDITS_SQL, 5),
            (self.checkin, UPSERT_CHECKINS_SQL, 5),
            (self.notify, NOTIFY_SQL, 2),
        ] {
            if present {
                statements.push(shift_params(sql, params));
                params += n;
            }
        }
        let main = statements.pop()?;
        if statements.is_empty() {
            return Some(main);
        }
        let with: Vec<String> = statements
            .iter()
            .enumerate()
            .map(|(i, s)| format!("w{i} AS ({s})"))
            .collect();
        Some(format!("WITH {}\n{main}", with.join(",\n")))
    }
}

/// `sql` with every parameter `$n` renumbered `$(n + by)`.
fn shift_params(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(n) = rest[..digits].parse::<usize>() {
            out.push_str(&(n + by).to_string());
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// The deadpool client: statements prepared once per connection.
pub(super) type Conn = deadpool_postgres::ClientWrapper;

/// A statement result, for statements a batch may leave out.
async fn maybe<T: Default>(
    skip: bool,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    if skip {
        Ok(T::default())
    } else {
        fut.await
    }
}

pub(super) async fn worker(
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<PgJob>>>,
    pool: Pool,
    registry: Arc<Registry>,
    max_batch: usize,
    op_timeout: Duration,
) {
    loop {
        let batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut v = vec![first];
            while v.len() < max_batch {
                match rx.try_recv() {
                    Ok(j) => v.push(j),
                    Err(_) => break,
                }
            }
            v
        };
        run_batch(&pool, &registry, batch, op_timeout).await;
    }
}

/// What one group commit writes.
#[derive(Default)]
pub(super) struct Batch<'a> {
    /// Messages (senders already checked: `AnchorStore::check_sender`).
    pub(super) msgs: &'a [NewMessage],
    /// Audit rows written with the messages (and standalone ones).
    pub(super) audits: Vec<&'a AuditRow>,
    /// Fetches: their acknowledgements, pages and page audit rows.
    pub(super) fetches: &'a [FetchQuery],
    pub(super) checkins: &'a [CheckIn],
}

async fn run_batch(pool: &Pool, registry: &Registry, batch: Vec<PgJob>, op_timeout: Duration) {
    let mut msgs = Vec::new();
    let mut msg_audits = Vec::new();
    let mut msg_replies = Vec::new();
    let mut audits = Vec::new();
    let mut audit_replies = Vec::new();
    let mut checkins = Vec::new();
    let mut checkin_replies = Vec::new();
    let mut fetches = Vec::new();
    let mut fetch_replies = Vec::new();
    for job in batch {
        match job {
            PgJob::Enqueue(m, a, r) => {
                msgs.push(m);
                msg_audits.push(a);
                msg_replies.push(r);
            }
            PgJob::Audit(a, r) => {
                audits.push(a);
                audit_replies.push(r);
            }
            PgJob::CheckIn(c, r) => {
                checkins.push(c);
                checkin_replies.push(r);
            }
            PgJob::Fetch(q, r) => {
                fetches.push(q);
                fetch_replies.push(r);
            }
        }
    }
    tracing::trace!(
        enqueues = msgs.len(),
        fetches = fetches.len(),
        audits = audits.len(),
        checkins = checkins.len(),
        "postgres write batch"
    );
    // Each audit row goes with its operation, in its transaction: an
    // enqueue's with the message (the batch stores every message or fails
    // as a whole); a fetch's only if it returned messages.
    let b = Batch {
        msgs: &msgs,
        audits: audits.iter().chain(msg_audits.iter().flatten()).collect(),
        fetches: &fetches,
        checkins: &checkins,
    };
    let outcome = write_batch(pool, op_timeout, &b).await;
    match outcome {
        Ok((results, pages)) => {
            let mut woken = HashSet::new();
            for (m, r) in msgs.iter().zip(&results) {
                if matches!(r, Ok(e) if !e.duplicate) {
                    let key = QueueKey::new(&m.recipient, m.channel.as_ref());
                    if woken.insert(key) {
                        registry.wake(&key);
                    }
                }
            }
            for (reply, r) in msg_replies.into_iter().zip(results) {
                let _ = reply.send(r);
            }
            for (reply, p) in fetch_replies.into_iter().zip(pages) {
                let _ = reply.send(Ok(p));
            }
            for reply in audit_replies.into_iter().chain(checkin_replies) {
                let _ = reply.send(Ok(()));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "postgres write batch failed");
            let e = Arc::new(e);
            for reply in msg_replies {
                let _ = reply.send(Err(StoreError::Batch(Arc::clone(&e))));
            }
            for reply in fetch_replies {
                let _ = reply.send(Err(StoreError::Batch(Arc::clone(&e))));
            }
            for reply in audit_replies.into_iter().chain(checkin_replies) {
                let _ = reply.send(Err(StoreError::Batch(Arc::clone(&e))));
            }
        }
    }
}

/// A pooled connection inside a transaction of [`write_batch`]: dropped
/// before the transaction is over (the operation timed out), the
/// connection is closed instead of going back to the pool, so the server
/// rolls the transaction back and no later user of the pool runs inside it.
pub(super) struct InTransaction(pub(super) Option<deadpool_postgres::Object>);

impl InTransaction {
    pub(super) fn conn(&self) -> Result<&Conn, StoreError> {
        self.0
            .as_deref()
            .ok_or_else(|| StoreError::corrupt("postgres batch", "no connection"))
    }

    /// The transaction is over (committed or rolled back): back to the pool.
    pub(super) fn done(mut self) {
        drop(self.0.take());
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(o) = self.0.take() {
            drop(deadpool_postgres::Object::take(o));
        }
    }
}

/// Stores a batch in one transaction of two round trips, and returns
/// the per-message outcomes (in `b.msgs` order; the outer `Err` is a
/// database failure, and then nothing was stored) and the pages (in
/// `b.fetches` order). Answered only after the `COMMIT` succeeded.
///
/// `pool` is the mailbox pool
/// ([`MAILBOX_SESSION_OPTIONS`](super::pool::MAILBOX_SESSION_OPTIONS)).
///
/// 1. `BEGIN`; the queues written are locked (sorted, so batches cannot
///    deadlock), the clientMessageIds already queued are looked up and an
///    id is drawn for every candidate message, in that order (under the
///    locks: race-free, ids in commit order; a candidate found queued
///    leaves its id unused, a gap); the fetches' acknowledgements are
///    deleted and their pages read, one statement
///    ([`FETCH_ACK_PAGE_SQL`]).
/// 2. One statement ([`Finish`]) for the inserts, every audit row (the
///    enqueues', the non-empty pages', standalone ones), the check-ins
///    and the `NOTIFY`s of the queues written (delivered at commit, they
///    wake other processes); then `COMMIT`. (Messages beyond one insert's
///    [`INSERT_CHUNK_BYTES`] go first, a statement per chunk.)
///
/// Statements of a round trip are pipelined on the connection: each is
/// sent when its future is first polled, in the order of the (biased)
/// `join!`, and the server runs them in that order. A failing statement
/// aborts the transaction, so the rest fail and the `COMMIT` rolls back:
/// the batch committed only if every statement succeeded.
pub(super) async fn write_batch(
    pool: &Pool,
    op_timeout: Duration,
    b: &Batch<'_>,
) -> Result<(Vec<Result<Enqueued, StoreError>>, Vec<FetchPage>), StoreError> {
    bounded(op_timeout, async {
        let held = InTransaction(Some(client(pool).await?));
        let c = held.conn()?;
        match pipelined_batch(c, b).await {
            Ok(out) => {
                held.done();
                Ok(out)
            }
            Err((e, open)) => {
                // Still open only if the failure came before the COMMIT
                // was sent; a failed ROLLBACK leaves the connection to the
                // guard (closed).
                if !open || c.batch_execute("ROLLBACK").await.is_ok() {
                    held.done();
                }
                Err(e)
            }
        }
    })
    .await
}

/// The work of [`write_batch`]; an error says whether the transaction may
/// still be open (no `COMMIT` sent).
async fn pipelined_batch(
    c: &Conn,
    b: &Batch<'_>,
) -> Result<(Vec<Result<Enqueued, StoreError>>, Vec<FetchPage>), (StoreError, bool)> {
    let open = |e: StoreError| (e, true);
    let msgs = b.msgs;
    let mut results: Vec<Option<Result<Enqueued, StoreError>>> =
        msgs.iter().map(|_| None).collect();

    type DedupKey = ([u8; 32], Vec<u8>, [u8; 32], [u8; 16]);
    let key_of = |m: &NewMessage, cm: [u8; 16]| -> DedupKey {
        (
            m.recipient.0,
            channel_col(m.channel.as_ref()).to_vec(),
            m.sender.0,
            cm,
        )
    };

    // Repeats inside this batch refer to their first occurrence; the first
    // occurrences are the candidates.
    let mut first_of: HashMap<DedupKey, usize> = HashMap::new();
    let mut repeat_of: Vec<Option<usize>> = vec![None; msgs.len()];
    let mut candidates = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        if let Some(cm) = m.client_message_id {
            match first_of.entry(key_of(m, cm)) {
                std::collections::hash_map::Entry::Occupied(o) => {
                    repeat_of[i] = Some(*o.get());
                    continue;
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(i);
                }
            }
        }
        candidates.push(i);
    }
    let mut locks: Vec<i32> = candidates
        .iter()
        .map(|&i| QueueKey::new(&msgs[i].recipient, msgs[i].channel.as_ref()).lock_key())
        .collect();
    locks.sort_unstable();
    locks.dedup();
    let with_cm: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| msgs[i].client_message_id.is_some())
        .collect();
    let cm_r: Vec<&[u8]> = with_cm.iter().map(|&i| &msgs[i].recipient.0[..]).collect();
    let cm_c: Vec<&[u8]> = with_cm
        .iter()
        .map(|&i| channel_col(msgs[i].channel.as_ref()))
        .collect();
    let cm_s: Vec<&[u8]> = with_cm.iter().map(|&i| &msgs[i].sender.0[..]).collect();
    let cm_id: Vec<&[u8]> = with_cm
        .iter()
        .filter_map(|&i| msgs[i].client_message_id.as_ref().map(|x| &x[..]))
        .collect();
    let n_ids = i32_len(candidates.len());

    let pages_in = PageArgs::new(b.fetches);

    // The statements of round trip 1 prepared before the first is sent
    // (a round trip each only the first time on this connection; so are
    // those of round trip 2, which depend on its answers).
    let prep = |sql: &'static str| async move { c.prepare_cached(sql).await.map_err(pg_err) };
    let lock_st = prep(LOCK_QUEUES_SQL).await.map_err(open)?;
    let dedup_st = prep(QUEUED_CM_SQL).await.map_err(open)?;
    let ids_st = prep(DRAW_IDS_SQL).await.map_err(open)?;
    let page_st = prep(if pages_in.acknowledges() {
        FETCH_ACK_PAGE_SQL
    } else {
        FETCH_PAGE_SQL
    })
    .await
    .map_err(open)?;

    // Round trip 1.
    let lock_p: [&(dyn ToSql + Sync); 2] = [&QUEUE_LOCK_CLASS, &locks];
    let dedup_p: [&(dyn ToSql + Sync); 4] = [&cm_r, &cm_c, &cm_s, &cm_id];
    let ids_p: [&(dyn ToSql + Sync); 1] = [&n_ids];
    let page_p = pages_in.params();
    let (begun, locked, found_rows, id_rows, page_rows) = tokio::join!(
        biased;
        c.batch_execute("BEGIN"),
        maybe(locks.is_empty(), c.execute(&lock_st, &lock_p)),
        maybe(with_cm.is_empty(), c.query(&dedup_st, &dedup_p)),
        maybe(candidates.is_empty(), c.query(&ids_st, &ids_p)),
        maybe(b.fetches.is_empty(), c.query(&page_st, &page_p)),
    );
    begun.map_err(pg_err).map_err(open)?;
    locked.map_err(pg_err).map_err(open)?;
    let found_rows = found_rows.map_err(pg_err).map_err(open)?;
    let id_rows = id_rows.map_err(pg_err).map_err(open)?;
    let page_rows = page_rows.map_err(pg_err).map_err(open)?;
    let pages = pages_from_rows(b.fetches, &page_rows).map_err(open)?;

    let mut found: HashMap<DedupKey, Enqueued> = HashMap::new();
    for row in found_rows {
        let cm = <[u8; 16]>::try_from(get_bytes(&row, 3).map_err(open)?)
            .map_err(|_| open(StoreError::corrupt("client_msg_id", "length")))?;
        let key = (
            id32_from("recipient", get_bytes(&row, 0).map_err(open)?).map_err(open)?,
            get_bytes(&row, 1).map_err(open)?.to_vec(),
            id32_from("sender", get_bytes(&row, 2).map_err(open)?).map_err(open)?,
            cm,
        );
        let e = (|| {
            Ok::<_, StoreError>(Enqueued {
                message_id: get_u64(&row, 4, "message id")?,
                received_at_ms: get_u64(&row, 5, "received_at_ms")?,
                expires_at_ms: get_u64(&row, 6, "expires_at_ms")?,
                duplicate: true,
            })
        })()
        .map_err(open)?;
        found.insert(key, e);
    }
    let mut to_insert = Vec::with_capacity(candidates.len());
    for &i in &candidates {
        match msgs[i]
            .client_message_id
            .and_then(|cm| found.get(&key_of(&msgs[i], cm)))
        {
            Some(e) => results[i] = Some(Ok(*e)),
            None => to_insert.push(i),
        }
    }
    // The ids, assigned in batch order.
    let mut ids: Vec<i64> = id_rows
        .iter()
        .map(|r| r.try_get::<_, i64>(0).map_err(pg_err))
        .collect::<Result<_, _>>()
        .map_err(open)?;
    ids.sort_unstable();
    if ids.len() < to_insert.len() {
        return Err(open(StoreError::corrupt(
            "message_ids",
            "sequence returned too few ids",
        )));
    }

    let page_audits: Vec<AuditRow> = b
        .fetches
        .iter()
        .zip(&pages)
        .filter_map(|(q, p)| q.audit.as_ref()?.for_page(p.messages.len()))
        .collect();
    let audit_rows: Vec<&AuditRow> = b.audits.iter().copied().chain(&page_audits).collect();
    let audits_in = AuditArgs::new(&audit_rows);
    let checkins_in = CheckinArgs::new(b.checkins);
    let mut notes: Vec<String> = to_insert
        .iter()
        .map(|&i| QueueKey::new(&msgs[i].recipient, msgs[i].channel.as_ref()).notify_payload())
        .collect();
    notes.sort_unstable();
    notes.dedup();

    // Multi-row inserts in chunks of bounded payload size; all but the
    // last (a batch rarely has more than one) each in its own round trip.
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < to_insert.len() {
        let mut end = start;
        let mut bytes = 0usize;
        while end < to_insert.len()
            && (end == start || bytes + msgs[to_insert[end]].payload.len() <= INSERT_CHUNK_BYTES)
        {
            bytes += msgs[to_insert[end]].payload.len();
            end += 1;
        }
        chunks.push(MessageArgs::new(
            msgs,
            &to_insert[start..end],
            &ids[start..end],
        ));
        start = end;
    }
    let last = chunks.pop();
    if !chunks.is_empty() {
        let insert_st = prep(INSERT_MESSAGES_SQL).await.map_err(open)?;
        for chunk in &chunks {
            c.execute(&insert_st, &chunk.params())
                .await
                .map_err(pg_err)
                .map_err(open)?;
        }
    }

    // Round trip 2: one statement (the last chunk, the audit rows, the
    // check-ins, the NOTIFYs; those the batch has) and the COMMIT.
    let last_p = last.as_ref().map(MessageArgs::params);
    let audit_p = audits_in.params();
    let checkin_p = checkins_in.params();
    let notify_p: [&(dyn ToSql + Sync); 2] = [&NOTIFY_CHANNEL, &notes];
    let parts = Finish {
        insert: last_p.is_some(),
        audit: !audit_rows.is_empty(),
        checkin: !b.checkins.is_empty(),
        notify: !notes.is_empty(),
    };
    let mut finish_p: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(21);
    if let Some(p) = &last_p {
        finish_p.extend_from_slice(p);
    }
    if parts.audit {
        finish_p.extend_from_slice(&audit_p);
    }
    if parts.checkin {
        finish_p.extend_from_slice(&checkin_p);
    }
    if parts.notify {
        finish_p.extend_from_slice(&notify_p);
    }
    let finish_st = match parts.sql() {
        Some(sql) => Some(prep(sql).await.map_err(open)?),
        None => None,
    };
    let (finished, committed) = tokio::join!(
        biased;
        async {
            match &finish_st {
                Some(st) => c.execute(st, &finish_p).await,
                None => Ok(0),
            }
        },
        c.batch_execute("COMMIT"),
    );
    // The COMMIT was sent: the transaction is over whatever the outcome
    // (a COMMIT of an aborted transaction rolls back).
    let closed = |e: tokio_postgres::Error| (pg_err(e), false);
    finished.map_err(closed)?;
    committed.map_err(closed)?;

    for (k, &i) in to_insert.iter().enumerate() {
        let m = &msgs[i];
        results[i] = Some(Ok(Enqueued {
            message_id: from_i64("message id", ids[k]).map_err(|e| (e, false))?,
            received_at_ms: m.received_at_ms,
            expires_at_ms: m.expires_at_ms,
            duplicate: false,
        }));
    }
    for i in 0..msgs.len() {
        if let Some(first) = repeat_of[i] {
            let e = match &results[first] {
                Some(Ok(e)) => Enqueued {
                    duplicate: true,
                    ..*e
                },
                _ => return Err((StoreError::corrupt("enqueue", "lost a batch result"), false)),
            };
            results[i] = Some(Ok(e));
        }
    }
    let results = results
        .into_iter()
        .map(|r| r.ok_or_else(|| StoreError::corrupt("enqueue", "message without outcome")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (e, false))?;
    Ok((results, pages))
}

/// The columns of one multi-row message insert.
struct MessageArgs<'a> {
    id: Vec<i64>,
    recipient: Vec<&'a [u8]>,
    channel: Vec<&'a [u8]>,
    sender: Vec<&'a [u8]>,
    cm: Vec<Option<&'a [u8]>>,
    received: Vec<i64>,
    expires: Vec<i64>,
    lens: Vec<i32>,
    payload: Vec<&'a [u8]>,
}

impl<'a> MessageArgs<'a> {
    /// `rows` (indexes into `msgs`) with their `ids`.
    fn new(msgs: &'a [NewMessage], rows: &[usize], ids: &[i64]) -> Self {
        let m = |f: &dyn Fn(&'a NewMessage) -> &'a [u8]| -> Vec<&'a [u8]> {
            rows.iter().map(|&i| f(&msgs[i])).collect()
        };
        MessageArgs {
            id: ids.to_vec(),
            recipient: m(&|x| &x.recipient.0[..]),
            channel: m(&|x| channel_col(x.channel.as_ref())),
            sender: m(&|x| &x.sender.0[..]),
            cm: rows
                .iter()
                .map(|&i| msgs[i].client_message_id.as_ref().map(|x| &x[..]))
                .collect(),
            received: rows
                .iter()
                .map(|&i| to_i64(msgs[i].received_at_ms))
                .collect(),
            expires: rows
                .iter()
                .map(|&i| to_i64(msgs[i].expires_at_ms))
                .collect(),
            lens: rows
                .iter()
                .map(|&i| i32_len(msgs[i].payload.len()))
                .collect(),
            payload: m(&|x| &x.payload[..]),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 9] {
        [
            &self.id,
            &self.recipient,
            &self.channel,
            &self.sender,
            &self.cm,
            &self.received,
            &self.expires,
            &self.lens,
            &self.payload,
        ]
    }
}

/// The one post writer: post inserts serialize on the `post_seq` row
/// anyway, so one task takes everything queued (up to `max_batch` posts)
/// into one transaction instead of many transactions queueing on the lock.
pub(super) async fn post_writer(
    mut rx: mpsc::Receiver<PostJob>,
    pool: Pool,
    max_batch: usize,
    op_timeout: Duration,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut n = jobs[0].posts.len();
        while n < max_batch {
            match rx.try_recv() {
                Ok(j) => {
                    n += j.posts.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let lens: Vec<usize> = jobs.iter().map(|j| j.posts.len()).collect();
        let rows: Vec<(PreparedPost, u64)> = jobs
            .iter_mut()
            .flat_map(|j| {
                let now = j.now_ms;
                std::mem::take(&mut j.posts)
                    .into_iter()
                    .map(move |p| (p, now))
            })
            .collect();
        let outcome = bounded(op_timeout, async {
            let mut c = client(&pool).await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let out = insert_post_rows(&tx, &rows).await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(out)
        })
        .await;
        match outcome {
            Ok(results) => {
                let mut results = results.into_iter();
                for (j, len) in jobs.into_iter().zip(lens) {
                    let mine: Vec<_> = results.by_ref().take(len).collect();
                    (j.reply)(Ok(mine));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "postgres post batch failed");
                let e = Arc::new(e);
                for j in jobs {
                    (j.reply)(Err(StoreError::Batch(Arc::clone(&e))));
                }
            }
        }
    }
}

/// Locks the `post_seq` counter row until commit.
const LOCK_POST_SEQ_SQL: &str = "SELECT value FROM counters WHERE name = 'post_seq' FOR UPDATE";

/// Sets the `post_seq` counter.
const STORE_POST_SEQ_SQL: &str = "UPDATE counters SET value = $1::int8 WHERE name = 'post_seq'";

/// Of the `$1` post ids, those deleted by their author `$2` (row `i`).
const TOMBSTONED_SQL: &str = "SELECT t.post_id, t.author
   FROM unnest($1::bytea[], $2::bytea[]) AS k(p, a)
   JOIN tombstones AS t ON t.post_id = k.p AND t.author = k.a";

/// Of the `$1` post ids, those already held.
const HELD_SQL: &str = "SELECT post_id FROM posts WHERE post_id = ANY($1::bytea[])";

/// One chunk of new posts, row `i` of the arrays each.
const INSERT_POSTS_SQL: &str =
    "INSERT INTO posts (seq, post_id, author, encrypted, created_at_ms, received_at_ms, sync_post)
 SELECT * FROM unnest($1::int8[], $2::bytea[], $3::bytea[], $4::bool[],
                      $5::int8[], $6::int8[], $7::bytea[])";

/// The recipient rows of a chunk of new posts.
const INSERT_POST_RECIPIENTS_SQL: &str = "INSERT INTO post_recipients (recipient, seq, author)
 SELECT * FROM unnest($1::bytea[], $2::int8[], $3::bytea[])
 ON CONFLICT DO NOTHING";

/// Stores `posts` (each with its receive time) in the open transaction
/// `tx`. Locks the `post_seq` counter row until commit: post inserts
/// serialize, so seq order is commit order (the pull cursor never skips).
/// Every statement is prepared once per connection; the counter lock and
/// the two lookups go out together (one round trip).
async fn insert_post_rows(
    tx: &Transaction<'_>,
    posts: &[(PreparedPost, u64)],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let (lock_st, tomb_st, held_st) = tokio::try_join!(
        tx.prepare_cached(LOCK_POST_SEQ_SQL),
        tx.prepare_cached(TOMBSTONED_SQL),
        tx.prepare_cached(HELD_SQL),
    )
    .map_err(pg_err)?;
    let ids: Vec<&[u8]> = posts.iter().map(|p| &p.0.post_id[..]).collect();
    let authors: Vec<&[u8]> = posts.iter().map(|p| &p.0.author[..]).collect();
    // The lock is taken first (statements of one connection run in order),
    // so the lookups see every post committed before it.
    let tomb_params: [&(dyn ToSql + Sync); 2] = [&ids, &authors];
    let held_params: [&(dyn ToSql + Sync); 1] = [&ids];
    let (seq_row, tomb_rows, held_rows) = tokio::try_join!(
        tx.query_one(&lock_st, &[]),
        tx.query(&tomb_st, &tomb_params),
        tx.query(&held_st, &held_params),
    )
    .map_err(pg_err)?;
    let mut seq: i64 = seq_row.try_get(0).map_err(pg_err)?;
    // Posts deleted by their author are not stored again.
    let mut tombstoned: HashSet<([u8; 32], [u8; 32])> = HashSet::new();
    for row in tomb_rows {
        tombstoned.insert((
            id32_from("post id", get_bytes(&row, 0)?)?,
            id32_from("author", get_bytes(&row, 1)?)?,
        ));
    }
    let mut held: HashSet<[u8; 32]> = HashSet::new();
    for row in held_rows {
        held.insert(id32_from("post id", get_bytes(&row, 0)?)?);
    }
    let mut out = Vec::with_capacity(posts.len());
    let mut new: Vec<(i64, &(PreparedPost, u64))> = Vec::new();
    for p in posts {
        if tombstoned.contains(&(p.0.post_id, p.0.author)) {
            out.push(Ok(Inserted::Tombstoned));
            continue;
        }
        if !held.insert(p.0.post_id) {
            out.push(Ok(Inserted::Duplicate));
            continue;
        }
        seq += 1;
        new.push((seq, p));
        out.push(Ok(Inserted::New {
            seq: from_i64("seq", seq)?,
        }));
    }
    if new.is_empty() {
        return Ok(out);
    }
    let (insert_st, recipients_st, store_st) = tokio::try_join!(
        tx.prepare_cached(INSERT_POSTS_SQL),
        tx.prepare_cached(INSERT_POST_RECIPIENTS_SQL),
        tx.prepare_cached(STORE_POST_SEQ_SQL),
    )
    .map_err(pg_err)?;
    let mut start = 0;
    while start < new.len() {
        let mut end = start;
        let mut bytes = 0usize;
        while end < new.len()
            && (end == start || bytes + new[end].1 .0.bytes.len() <= INSERT_CHUNK_BYTES)
        {
            bytes += new[end].1 .0.bytes.len();
            end += 1;
        }
        let chunk = &new[start..end];
        let seqs: Vec<i64> = chunk.iter().map(|(s, _)| *s).collect();
        let post_ids: Vec<&[u8]> = chunk.iter().map(|(_, p)| &p.0.post_id[..]).collect();
        let authors: Vec<&[u8]> = chunk.iter().map(|(_, p)| &p.0.author[..]).collect();
        let enc: Vec<bool> = chunk.iter().map(|(_, p)| p.0.encrypted).collect();
        let created: Vec<i64> = chunk
            .iter()
            .map(|(_, p)| to_i64(p.0.created_at_ms))
            .collect();
        let received: Vec<i64> = chunk.iter().map(|(_, p)| to_i64(p.1)).collect();
        let bytes_col: Vec<&[u8]> = chunk.iter().map(|(_, p)| &p.0.bytes[..]).collect();
        let mut r_rec: Vec<&[u8]> = Vec::new();
        let mut r_seq: Vec<i64> = Vec::new();
        let mut r_author: Vec<&[u8]> = Vec::new();
        for (s, p) in chunk {
            for r in &p.0.recipients {
                r_rec.push(&r[..]);
                r_seq.push(*s);
                r_author.push(&p.0.author[..]);
            }
        }
        // The posts and their recipient rows in one round trip.
        let insert_params: [&(dyn ToSql + Sync); 7] = [
            &seqs, &post_ids, &authors, &enc, &created, &received, &bytes_col,
        ];
        tokio::try_join!(tx.execute(&insert_st, &insert_params), async {
            if r_rec.is_empty() {
                Ok(0)
            } else {
                tx.execute(&recipients_st, &[&r_rec, &r_seq, &r_author])
                    .await
            }
        },)
        .map_err(pg_err)?;
        start = end;
    }
    tx.execute(&store_st, &[&seq]).await.map_err(pg_err)?;
    Ok(out)
}

/// Audit rows, row `i` of the arrays each.
const INSERT_AUDITS_SQL: &str = "INSERT INTO audit_log (at_ms, kind, actor, channel, detail)
 SELECT * FROM unnest($1::int8[], $2::text[], $3::bytea[], $4::bytea[], $5::text[])";

/// Check-ins, one row per node (a multi-row upsert may not touch a row
/// twice), row `i` of the arrays each.
const UPSERT_CHECKINS_SQL: &str =
    "INSERT INTO checkins (node, addrs, is_anchor, last_seen_ms, verified_at_ms)
 SELECT * FROM unnest($1::bytea[], $2::text[], $3::bool[], $4::int8[], $5::int8[])
 ON CONFLICT (node) DO UPDATE SET
     addrs = excluded.addrs,
     is_anchor = excluded.is_anchor,
     last_seen_ms = excluded.last_seen_ms,
     verified_at_ms = excluded.verified_at_ms
  WHERE excluded.last_seen_ms >= checkins.last_seen_ms";

/// The columns of [`INSERT_AUDITS_SQL`].
struct AuditArgs<'a> {
    at: Vec<i64>,
    kind: Vec<&'a str>,
    actor: Vec<&'a [u8]>,
    channel: Vec<Option<&'a [u8]>>,
    detail: Vec<&'a str>,
}

impl<'a> AuditArgs<'a> {
    fn new(rows: &[&'a AuditRow]) -> Self {
        AuditArgs {
            at: rows.iter().map(|r| to_i64(r.at_ms)).collect(),
            kind: rows.iter().map(|r| r.kind.as_str()).collect(),
            actor: rows.iter().map(|r| &r.actor[..]).collect(),
            channel: rows
                .iter()
                .map(|r| r.channel.as_ref().map(|c| &c.0[..]))
                .collect(),
            detail: rows.iter().map(|r| r.detail.as_str()).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 5] {
        [
            &self.at,
            &self.kind,
            &self.actor,
            &self.channel,
            &self.detail,
        ]
    }
}

/// The columns of [`UPSERT_CHECKINS_SQL`]: the newest check-in per node.
struct CheckinArgs<'a> {
    node: Vec<&'a [u8]>,
    addrs: Vec<String>,
    anchor: Vec<bool>,
    seen: Vec<i64>,
    verified: Vec<i64>,
}

impl<'a> CheckinArgs<'a> {
    fn new(rows: &'a [CheckIn]) -> Self {
        let mut newest: HashMap<NodeId, &CheckIn> = HashMap::new();
        for c in rows {
            newest
                .entry(c.node)
                .and_modify(|old| {
                    if c.last_seen_ms >= old.last_seen_ms {
                        *old = c;
                    }
                })
                .or_insert(c);
        }
        let mut list: Vec<&CheckIn> = newest.into_values().collect();
        list.sort_by_key(|c| c.node);
        CheckinArgs {
            node: list.iter().map(|c| &c.node.0[..]).collect(),
            addrs: list.iter().map(|c| encode_addrs(&c.addrs)).collect(),
            anchor: list.iter().map(|c| c.is_anchor).collect(),
            seen: list.iter().map(|c| to_i64(c.last_seen_ms)).collect(),
            verified: list.iter().map(|c| to_i64(c.verified_at_ms)).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 5] {
        [
            &self.node,
            &self.addrs,
            &self.anchor,
            &self.seen,
            &self.verified,
        ]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn parameters_are_renumbered() {
        assert_eq!(
            shift_params("SELECT $1::int4, $10, '$' || $2", 9),
            "SELECT $10::int4, $19, '$' || $11"
        );
        assert_eq!(shift_params("SELECT 1", 3), "SELECT 1");
    }

    #[test]
    fn the_last_statements_of_a_batch_are_one_with_parameters_in_order() {
        for i in 0..16 {
            assert_eq!(Finish::from_index(i).index(), i);
        }
        let none = Finish::from_index(0);
        assert_eq!(none.sql(), None);
        let audit_only = Finish {
            audit: true,
            ..none
        };
        assert_eq!(audit_only.sql(), Some(INSERT_AUDITS_SQL));
        let all = Finish::from_index(15).sql().unwrap();
        assert!(all.starts_with("WITH w0 AS (INSERT INTO messages"), "{all}");
        // Messages $1..$9, audit rows $10..$14, check-ins $15..$19, the
        // NOTIFYs $20, $21: each parameter once.
        for n in 1..=21 {
            assert_eq!(all.matches(&format!("${n}:")).count(), 1, "${n} in {all}");
        }
        assert!(all.contains("unnest($10::int8[], $11::text[]"), "{all}");
        assert!(all.contains("unnest($15::bytea[], $16::text[]"), "{all}");
        assert!(
            all.ends_with("SELECT pg_notify($20::text, p) FROM unnest($21::text[]) AS p"),
            "{all}"
        );
        let no_notify = Finish {
            notify: false,
            ..Finish::from_index(15)
        };
        let sql = no_notify.sql().unwrap();
        assert!(
            sql.contains("\nINSERT INTO checkins"),
            "the last insert is the main statement: {sql}"
        );
    }
}
