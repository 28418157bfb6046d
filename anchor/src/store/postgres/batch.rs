//! PostgreSQL group commit: the write workers and the multi-row statements
//! of one batch (enqueues, posts, audit events, check-ins).

use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::mailbox::read_pages;
use super::*;

/// Locks the queues of an enqueue batch: `$1` the lock class, `$2` the
/// sorted queue keys.
const LOCK_QUEUES_SQL: &str =
    "SELECT pg_advisory_xact_lock($1::int4, k) FROM unnest($2::int4[]) AS k";

/// The messages already queued under a clientMessageId: row `i` of the
/// arrays is (recipient, channel, sender, clientMessageId).
const QUEUED_CM_SQL: &str = "SELECT m.recipient, m.channel, m.sender, m.client_msg_id,
        m.id, m.received_at_ms, m.expires_at_ms
   FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[]) AS k(r, c, s, cm)
   JOIN messages AS m
     ON m.recipient = k.r AND m.channel = k.c AND m.sender = k.s
    AND m.client_msg_id = k.cm AND m.client_msg_id IS NOT NULL";

/// `$1` new message ids.
const DRAW_IDS_SQL: &str = "SELECT nextval('message_ids') FROM generate_series(1, $1::int4)";

/// One chunk of new messages, row `i` of the arrays each.
const INSERT_MESSAGES_SQL: &str = "INSERT INTO messages
    (id, recipient, channel, sender, client_msg_id, received_at_ms, expires_at_ms, payload_len, payload)
 SELECT * FROM unnest($1::int8[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[],
                      $6::int8[], $7::int8[], $8::int4[], $9::bytea[])";

/// `NOTIFY $1, p` for every payload `p` of `$2` (delivered at commit).
const NOTIFY_SQL: &str = "SELECT pg_notify($1::text, p) FROM unnest($2::text[]) AS p";

/// Runs `sql`, prepared once per connection (deadpool's statement cache).
async fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let st = tx.prepare_cached(sql).await.map_err(pg_err)?;
    tx.execute(&st, params).await.map_err(pg_err)
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
    let outcome = bounded(op_timeout, async {
        let mut c = client(pool).await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        // Each audit row goes with its operation, in its transaction: an
        // enqueue's with the message (the batch stores every message or
        // fails as a whole), sent with the last insert; a fetch's only if
        // it returned messages.
        let early: Vec<&AuditRow> = audits.iter().chain(msg_audits.iter().flatten()).collect();
        let results = if msgs.is_empty() {
            Vec::new()
        } else {
            enqueue_rows(&tx, &msgs, &early).await?
        };
        let pages = ack_and_read(&tx, &fetches).await?;
        let page_audits: Vec<AuditRow> = fetches
            .iter()
            .zip(&pages)
            .filter_map(|(q, p)| q.audit.as_ref()?.for_page(p.messages.len()))
            .collect();
        let rows: Vec<&AuditRow> = if msgs.is_empty() {
            audits.iter().chain(&page_audits).collect()
        } else {
            page_audits.iter().collect()
        };
        insert_audits(&tx, &rows).await?;
        upsert_checkins(&tx, &checkins).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok((results, pages))
    })
    .await;
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

/// Applies the acknowledgements of `fetches` (one statement), then reads
/// their pages ([`read_pages`]) in the open transaction `tx`; the delete
/// and the read go in one round trip.
async fn ack_and_read(
    tx: &Transaction<'_>,
    fetches: &[FetchQuery],
) -> Result<Vec<FetchPage>, StoreError> {
    if fetches.is_empty() {
        return Ok(Vec::new());
    }
    let mut acks: Vec<(&[u8], &[u8], i64)> = fetches
        .iter()
        .filter(|q| q.ack_through > 0)
        .map(|q| {
            (
                &q.recipient.0[..],
                channel_col(q.channel.as_ref()),
                to_i64(q.ack_through),
            )
        })
        .collect();
    acks.sort_unstable();
    if acks.is_empty() {
        return read_pages(tx, fetches).await;
    }
    let r: Vec<&[u8]> = acks.iter().map(|a| a.0).collect();
    let c: Vec<&[u8]> = acks.iter().map(|a| a.1).collect();
    let a: Vec<i64> = acks.iter().map(|a| a.2).collect();
    // Both prepared first, so that the two futures below send their
    // statements when first polled, in this order: the server runs the
    // delete before the page read, in one round trip.
    let st = tx.prepare_cached(FETCH_ACK_SQL).await.map_err(pg_err)?;
    tx.prepare_cached(FETCH_PAGE_SQL).await.map_err(pg_err)?;
    let (_, pages) = tokio::try_join!(
        async { tx.execute(&st, &[&r, &c, &a]).await.map_err(pg_err) },
        read_pages(tx, fetches),
    )?;
    Ok(pages)
}

/// Stores `msgs` (senders already checked: `AnchorStore::check_sender`)
/// in the open transaction `tx`, and `audits` with them (in the last round
/// trip); per-message outcomes. The outer `Err` is a database failure.
/// Sends the `NOTIFY`s for the queues written. Every statement is prepared
/// once per connection.
pub(super) async fn enqueue_rows(
    tx: &Transaction<'_>,
    msgs: &[NewMessage],
    audits: &[&AuditRow],
) -> Result<Vec<Result<Enqueued, StoreError>>, StoreError> {
    let mut results: Vec<Option<Result<Enqueued, StoreError>>> =
        msgs.iter().map(|_| None).collect();
    if msgs.is_empty() {
        return Ok(Vec::new());
    }

    type DedupKey = ([u8; 32], Vec<u8>, [u8; 32], [u8; 16]);
    let key_of = |m: &NewMessage, cm: [u8; 16]| -> DedupKey {
        (
            m.recipient.0,
            channel_col(m.channel.as_ref()).to_vec(),
            m.sender.0,
            cm,
        )
    };

    // 1. Repeats inside this batch refer to their first occurrence; the
    //    first occurrences are the candidates.
    let mut first_of: HashMap<DedupKey, usize> = HashMap::new();
    let mut repeat_of: Vec<Option<usize>> = vec![None; msgs.len()];
    let mut candidates = Vec::new();
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

    // 2. In one round trip, executed in this order: lock the queues
    //    (sorted: no deadlocks between batches), look up the
    //    clientMessageIds already queued (under the lock: race-free), draw
    //    an id for every candidate (under the lock: commit order). A
    //    candidate found queued leaves its id unused (a gap).
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
    let r: Vec<&[u8]> = with_cm.iter().map(|&i| &msgs[i].recipient.0[..]).collect();
    let c: Vec<&[u8]> = with_cm
        .iter()
        .map(|&i| channel_col(msgs[i].channel.as_ref()))
        .collect();
    let s: Vec<&[u8]> = with_cm.iter().map(|&i| &msgs[i].sender.0[..]).collect();
    let cm: Vec<&[u8]> = with_cm
        .iter()
        .filter_map(|&i| msgs[i].client_message_id.as_ref().map(|x| &x[..]))
        .collect();
    let lock_st = tx.prepare_cached(LOCK_QUEUES_SQL).await.map_err(pg_err)?;
    let dedup_st = tx.prepare_cached(QUEUED_CM_SQL).await.map_err(pg_err)?;
    let ids_st = tx.prepare_cached(DRAW_IDS_SQL).await.map_err(pg_err)?;
    let n_ids = i32_len(candidates.len());
    let (_, found_rows, id_rows) = tokio::try_join!(
        async { tx.execute(&lock_st, &[&QUEUE_LOCK_CLASS, &locks]).await },
        async {
            if with_cm.is_empty() {
                Ok(Vec::new())
            } else {
                tx.query(&dedup_st, &[&r, &c, &s, &cm]).await
            }
        },
        async { tx.query(&ids_st, &[&n_ids]).await },
    )
    .map_err(pg_err)?;
    let mut found: HashMap<DedupKey, Enqueued> = HashMap::new();
    for row in found_rows {
        let cm = <[u8; 16]>::try_from(get_bytes(&row, 3)?)
            .map_err(|_| StoreError::corrupt("client_msg_id", "length"))?;
        let key = (
            id32_from("recipient", get_bytes(&row, 0)?)?,
            get_bytes(&row, 1)?.to_vec(),
            id32_from("sender", get_bytes(&row, 2)?)?,
            cm,
        );
        found.insert(
            key,
            Enqueued {
                message_id: get_u64(&row, 4, "message id")?,
                received_at_ms: get_u64(&row, 5, "received_at_ms")?,
                expires_at_ms: get_u64(&row, 6, "expires_at_ms")?,
                duplicate: true,
            },
        );
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

    // 3. The ids, assigned in batch order.
    let mut ids: Vec<i64> = id_rows
        .iter()
        .map(|r| r.try_get::<_, i64>(0).map_err(pg_err))
        .collect::<Result<_, _>>()?;
    ids.sort_unstable();
    if ids.len() < to_insert.len() {
        return Err(StoreError::corrupt(
            "message_ids",
            "sequence returned too few ids",
        ));
    }

    // 4. Multi-row inserts, in chunks of bounded payload size, the last
    //    one pipelined with the NOTIFYs that wake other processes at
    //    commit and with the audit rows (one round trip for a batch that
    //    fits one chunk).
    let mut notes: Vec<String> = to_insert
        .iter()
        .map(|&i| QueueKey::new(&msgs[i].recipient, msgs[i].channel.as_ref()).notify_payload())
        .collect();
    notes.sort_unstable();
    notes.dedup();
    let insert_st = tx
        .prepare_cached(INSERT_MESSAGES_SQL)
        .await
        .map_err(pg_err)?;
    let notify_st = tx.prepare_cached(NOTIFY_SQL).await.map_err(pg_err)?;
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
        let rows = &to_insert[start..end];
        let id_col: Vec<i64> = ids[start..end].to_vec();
        let recipient: Vec<&[u8]> = rows.iter().map(|&i| &msgs[i].recipient.0[..]).collect();
        let channel: Vec<&[u8]> = rows
            .iter()
            .map(|&i| channel_col(msgs[i].channel.as_ref()))
            .collect();
        let sender: Vec<&[u8]> = rows.iter().map(|&i| &msgs[i].sender.0[..]).collect();
        let cm: Vec<Option<&[u8]>> = rows
            .iter()
            .map(|&i| msgs[i].client_message_id.as_ref().map(|x| &x[..]))
            .collect();
        let received: Vec<i64> = rows
            .iter()
            .map(|&i| to_i64(msgs[i].received_at_ms))
            .collect();
        let expires: Vec<i64> = rows
            .iter()
            .map(|&i| to_i64(msgs[i].expires_at_ms))
            .collect();
        let lens: Vec<i32> = rows
            .iter()
            .map(|&i| i32_len(msgs[i].payload.len()))
            .collect();
        let payload: Vec<&[u8]> = rows.iter().map(|&i| &msgs[i].payload[..]).collect();
        let insert = async {
            tx.execute(
                &insert_st,
                &[
                    &id_col, &recipient, &channel, &sender, &cm, &received, &expires, &lens,
                    &payload,
                ],
            )
            .await
        };
        if end == to_insert.len() {
            let notify = async { tx.execute(&notify_st, &[&NOTIFY_CHANNEL, &notes]).await };
            tokio::try_join!(
                async { insert.await.map_err(pg_err) },
                async { notify.await.map_err(pg_err) },
                insert_audits(tx, audits),
            )?;
        } else {
            insert.await.map_err(pg_err)?;
        }
        start = end;
    }
    if to_insert.is_empty() {
        insert_audits(tx, audits).await?;
    }
    for (k, &i) in to_insert.iter().enumerate() {
        let m = &msgs[i];
        results[i] = Some(Ok(Enqueued {
            message_id: from_i64("message id", ids[k])?,
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
                _ => return Err(StoreError::corrupt("enqueue", "lost a batch result")),
            };
            results[i] = Some(Ok(e));
        }
    }

    finish_results(results)
}

fn finish_results(
    results: Vec<Option<Result<Enqueued, StoreError>>>,
) -> Result<Vec<Result<Enqueued, StoreError>>, StoreError> {
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| StoreError::corrupt("enqueue", "message without outcome")))
        .collect()
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

async fn insert_audits(tx: &Transaction<'_>, rows: &[&AuditRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let at: Vec<i64> = rows.iter().map(|r| to_i64(r.at_ms)).collect();
    let kind: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    let actor: Vec<&[u8]> = rows.iter().map(|r| &r.actor[..]).collect();
    let channel: Vec<Option<&[u8]>> = rows
        .iter()
        .map(|r| r.channel.as_ref().map(|c| &c.0[..]))
        .collect();
    let detail: Vec<&str> = rows.iter().map(|r| r.detail.as_str()).collect();
    exec(
        tx,
        "INSERT INTO audit_log (at_ms, kind, actor, channel, detail)
         SELECT * FROM unnest($1::int8[], $2::text[], $3::bytea[], $4::bytea[], $5::text[])",
        &[&at, &kind, &actor, &channel, &detail],
    )
    .await?;
    Ok(())
}

async fn upsert_checkins(tx: &Transaction<'_>, rows: &[CheckIn]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    // One row per node (the newest): a multi-row upsert may not touch a row
    // twice.
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
    let node: Vec<&[u8]> = list.iter().map(|c| &c.node.0[..]).collect();
    let addrs: Vec<String> = list.iter().map(|c| encode_addrs(&c.addrs)).collect();
    let anchor: Vec<bool> = list.iter().map(|c| c.is_anchor).collect();
    let seen: Vec<i64> = list.iter().map(|c| to_i64(c.last_seen_ms)).collect();
    let verified: Vec<i64> = list.iter().map(|c| to_i64(c.verified_at_ms)).collect();
    exec(
        tx,
        "INSERT INTO checkins (node, addrs, is_anchor, last_seen_ms, verified_at_ms)
         SELECT * FROM unnest($1::bytea[], $2::text[], $3::bool[], $4::int8[], $5::int8[])
         ON CONFLICT (node) DO UPDATE SET
             addrs = excluded.addrs,
             is_anchor = excluded.is_anchor,
             last_seen_ms = excluded.last_seen_ms,
             verified_at_ms = excluded.verified_at_ms
          WHERE excluded.last_seen_ms >= checkins.last_seen_ms",
        &[&node, &addrs, &anchor, &seen, &verified],
    )
    .await?;
    Ok(())
}
