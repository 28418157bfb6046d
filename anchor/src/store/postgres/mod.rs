//! The PostgreSQL backend (`deadpool-postgres` over `tokio-postgres`).
//!
//! * **Pool.** `pool_size` connections, created lazily; a checkout waits at
//!   most `connect_timeout`, creating a connection likewise, and every
//!   operation is bounded by `op_timeout`. A server that is down or
//!   restarting makes calls fail fast with [`StoreError::Unavailable`];
//!   closed connections are dropped at checkout (`RecyclingMethod::Fast`)
//!   and replaced, so the store recovers by itself. No TLS: connect over a
//!   unix socket or a trusted network.
//! * **Group commit.** Enqueues, audit events and check-ins go through a
//!   bounded queue to `write_workers` tasks; each takes what is queued (up
//!   to `max_write_batch`) into one transaction of multi-row `UNNEST`
//!   statements and answers every request after the `COMMIT`. Requests
//!   refused on their own (not a member) do not affect the others.
//! * **Ids in commit order.** Within the transaction, the queues written
//!   are locked with `pg_advisory_xact_lock(QUEUE_LOCK_CLASS, key)` (sorted,
//!   so batches cannot deadlock) *before* ids are drawn from the
//!   `message_ids` sequence. A later id in a queue is therefore drawn only
//!   after every earlier writer of that queue committed: what a fetch sees
//!   is always a prefix of the queue in id order, and `ackThrough` never
//!   deletes an unseen message. The same lock makes the `clientMessageId`
//!   check race-free. Posts are serialized by locking the `post_seq`
//!   counter row, for the same reason (the pull cursor).
//! * **Cross-process wakeups.** The enqueue transaction sends
//!   `NOTIFY distsoc_mailbox, 'hex(recipient):hex(channel)'` per queue
//!   written (delivered at commit). Each store holds one dedicated
//!   connection that `LISTEN`s, pings it every few seconds, and on loss
//!   reconnects with backoff (50 ms doubling to 2 s) and wakes every local
//!   waiter so they re-check what they may have missed.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use distsoc_protocol::ids::{ChannelId, NodeId, PostingId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{AsyncMessage, NoTls, Row};

use super::migrations::{self, PG_MIGRATION_LOCK};
use super::wake::{QueueKey, Registry};
use super::{
    channel_col, channel_from_col, check_member, decode_addrs, encode_addrs, fetch_cut, from_i64,
    id32_from, merge_by_id, node_from, random_channel_id, random_salt, redact, to_i64, AuditEvent,
    AuditKind, AuditRecord, BootstrapQuery, Channel, ChannelSummary, CheckIn, DeleteOutcome,
    Enqueued, FetchPage, FetchQuery, Inserted, NewMessage, PlanQuery, PostVolume, PreparedDelete,
    PreparedPost, Stats, StoreError, StoreOptions, StoredMessage, TombstoneRow, REDACTED_ID_LEN,
    SWEEP_CHUNK,
};

/// The `LISTEN`/`NOTIFY` channel.
pub const NOTIFY_CHANNEL: &str = "distsoc_mailbox";

/// First key of the two-key advisory locks on queues (`"mb"`).
const QUEUE_LOCK_CLASS: i32 = 0x6d62;

/// Write requests queued before callers wait (backpressure).
const JOB_QUEUE: usize = 4096;

/// Payload bytes per multi-row `INSERT` statement.
const INSERT_CHUNK_BYTES: usize = 8 * 1024 * 1024;

const LISTEN_MIN_BACKOFF: Duration = Duration::from_millis(50);
const LISTEN_MAX_BACKOFF: Duration = Duration::from_secs(2);
const LISTEN_PING_EVERY: Duration = Duration::from_secs(5);

/// A member's channels with messages waiting for it, after a channel id
/// (`''` = from the start, which also skips the legacy queue), by id: one
/// range scan of `messages_by_queue`.
const WAITING_CHANNELS_SQL: &str = "SELECT ch.id, ch.member_a, ch.member_b, ch.created_at_ms, q.n
   FROM (SELECT channel, count(*) AS n FROM messages
          WHERE recipient = $1::bytea AND channel > $2::bytea
          GROUP BY channel ORDER BY channel LIMIT $3::int8) AS q
   JOIN channels AS ch ON ch.id = q.channel
  ORDER BY ch.id";

/// A member's channels without waiting messages where it is `member_a`,
/// after a channel id, by id (range scan of `channels_by_member_a_id`).
const EMPTY_CHANNELS_A_SQL: &str =
    "SELECT id, member_a, member_b, created_at_ms, 0::int8 FROM channels AS ch
  WHERE member_a = $1::bytea AND id > $2::bytea
    AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.recipient = $1::bytea AND m.channel = ch.id)
  ORDER BY id LIMIT $3::int8";

/// As [`EMPTY_CHANNELS_A_SQL`] where the member is `member_b`.
const EMPTY_CHANNELS_B_SQL: &str =
    "SELECT id, member_a, member_b, created_at_ms, 0::int8 FROM channels AS ch
  WHERE member_b = $1::bytea AND id > $2::bytea
    AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.recipient = $1::bytea AND m.channel = ch.id)
  ORDER BY id LIMIT $3::int8";

const FETCH_LENS_SQL: &str = "SELECT id, payload_len FROM messages
  WHERE recipient = $1::bytea AND channel = $2::bytea AND expires_at_ms > $3::int8
  ORDER BY id LIMIT $4::int8";

/// The seqs a pull may return from one table pair: the requester's own
/// rows (both visibilities), public rows by an author in the ids, and rows
/// whose recipient (other than their author) is in the ids. `$1` requester,
/// `$2` since, `$3` ids, `$4` limit.
macro_rules! pull_sql {
    ($rows:literal, $recipients:literal) => {
        concat!(
            "SELECT s.seq FROM (
    (SELECT p.seq FROM ",
            $rows,
            " AS p
      WHERE p.author = $1::bytea AND p.encrypted = false AND p.seq > $2::int8
      ORDER BY p.seq LIMIT $4::int8)
    UNION
    (SELECT p.seq FROM ",
            $rows,
            " AS p
      WHERE p.author = $1::bytea AND p.encrypted = true AND p.seq > $2::int8
      ORDER BY p.seq LIMIT $4::int8)
    UNION
    (SELECT x.seq FROM unnest($3::bytea[]) AS i(id)
      CROSS JOIN LATERAL (
        SELECT p.seq FROM ",
            $rows,
            " AS p
         WHERE p.author = i.id AND p.encrypted = false AND p.seq > $2::int8
         ORDER BY p.seq LIMIT $4::int8) AS x)
    UNION
    (SELECT y.seq FROM unnest($3::bytea[]) AS i(id)
      CROSS JOIN LATERAL (
        SELECT r.seq FROM ",
            $recipients,
            " AS r
         WHERE r.recipient = i.id AND r.author <> r.recipient AND r.seq > $2::int8
         ORDER BY r.seq LIMIT $4::int8) AS y)
  ) AS s
  ORDER BY s.seq LIMIT $4::int8"
        )
    };
}

/// The post half of a pull.
const PULL_SQL: &str = pull_sql!("posts", "post_recipients");

/// The tombstone half of a pull: own tombstones, those of public posts by
/// an author in the ids, and those whose deleted post had a recipient
/// (other than its author) in the ids.
const PULL_TOMBSTONES_SQL: &str = pull_sql!("tombstones", "tombstone_recipients");

/// Locks the `post_seq` counter row until commit and returns its value:
/// writers of posts and tombstones serialize, so seq order is commit order.
async fn lock_post_seq(tx: &tokio_postgres::Transaction<'_>) -> Result<i64, StoreError> {
    tx.query_one(
        "SELECT value FROM counters WHERE name = 'post_seq' FOR UPDATE",
        &[],
    )
    .await
    .map_err(pg_err)?
    .try_get(0)
    .map_err(pg_err)
}

async fn store_post_seq(tx: &tokio_postgres::Transaction<'_>, seq: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE counters SET value = $1::int8 WHERE name = 'post_seq'",
        &[&seq],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

/// The columns [`read_checkin`] reads. Every query that serves check-ins
/// also has `verified_at_ms IS NOT NULL` (migration 6).
const CHECKIN_COLS: &str = "node, addrs, is_anchor, last_seen_ms, verified_at_ms";

/// The PostgreSQL backend. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    jobs: mpsc::Sender<PgJob>,
    posts: mpsc::Sender<PostJob>,
    registry: Arc<Registry>,
    salt: [u8; 32],
    op_timeout: Duration,
    /// The `LISTEN` connection is up.
    listening: Arc<AtomicBool>,
    /// Dropped with the store: stops the listener task.
    _shutdown: watch::Sender<()>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.inner.pool.status())
            .field("registry", &self.inner.registry)
            .finish_non_exhaustive()
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A group-committed write.
enum PgJob {
    Enqueue(NewMessage, Reply<Enqueued>),
    Audit(AuditRow, Reply<()>),
    CheckIn(CheckIn, Reply<()>),
}

/// A post ingest, group-committed by the single post writer.
struct PostJob {
    posts: Vec<PreparedPost>,
    now_ms: u64,
    reply: Reply<Vec<Result<Inserted, StoreError>>>,
}

struct AuditRow {
    at_ms: u64,
    kind: AuditKind,
    actor: [u8; REDACTED_ID_LEN],
    channel: Option<ChannelId>,
    detail: String,
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Whether a PostgreSQL error means "the server is out of reach for now".
fn pg_is_unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        // 08: connection exception; 57P01..03: admin/crash shutdown, cannot
        // connect now (starting up); 53300: too many connections.
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300");
    }
    // No SQLSTATE: a transport failure (I/O, connect, timeout) shows as an
    // io::Error somewhere in the source chain.
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if s.is::<std::io::Error>() {
            return true;
        }
        src = s.source();
    }
    false
}

pub(crate) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    if pg_is_unavailable(&e) {
        StoreError::unavailable(e)
    } else {
        StoreError::Postgres(e)
    }
}

fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Timeout(t) => {
            StoreError::unavailable(format!("connection pool timeout ({t:?})"))
        }
        PoolError::Backend(e) => pg_err(e),
        PoolError::Closed => StoreError::unavailable("connection pool closed"),
        PoolError::NoRuntimeSpecified => StoreError::unavailable("no runtime for the pool"),
        PoolError::PostCreateHook(e) => StoreError::unavailable(e),
    }
}

async fn client(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get().await.map_err(pool_err)
}

async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| StoreError::unavailable(format!("no answer within {limit:?}")))?
}

// ---------------------------------------------------------------------------
// Row helpers
// ---------------------------------------------------------------------------

fn get_u64(row: &Row, idx: usize, what: &'static str) -> Result<u64, StoreError> {
    from_i64(what, row.try_get::<_, i64>(idx).map_err(pg_err)?)
}

fn get_bytes(row: &Row, idx: usize) -> Result<&[u8], StoreError> {
    row.try_get::<_, &[u8]>(idx).map_err(pg_err)
}

fn read_checkin(row: &Row) -> Result<CheckIn, StoreError> {
    Ok(CheckIn {
        node: node_from("check-in node", get_bytes(row, 0)?)?,
        addrs: decode_addrs(row.try_get::<_, &str>(1).map_err(pg_err)?)?,
        is_anchor: row.try_get::<_, bool>(2).map_err(pg_err)?,
        last_seen_ms: get_u64(row, 3, "last_seen_ms")?,
        verified_at_ms: get_u64(row, 4, "verified_at_ms")?,
    })
}

fn read_channel(row: &Row) -> Result<Channel, StoreError> {
    Ok(Channel {
        id: ChannelId::from_slice(get_bytes(row, 0)?)
            .map_err(|e| StoreError::corrupt("channel id", e))?,
        members: [
            node_from("member", get_bytes(row, 1)?)?,
            node_from("member", get_bytes(row, 2)?)?,
        ],
        created_at_ms: get_u64(row, 3, "created_at_ms")?,
    })
}

/// A `(id, member_a, member_b, created_at_ms, queued)` row as listed for
/// `member`.
fn read_summary(row: &Row, member: &NodeId) -> Result<ChannelSummary, StoreError> {
    let ch = read_channel(row)?;
    Ok(ChannelSummary {
        id: ch.id,
        peer: ch.other(member).unwrap_or(ch.members[0]),
        created_at_ms: ch.created_at_ms,
        queued: get_u64(row, 4, "count")?,
    })
}

fn i32_len(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn i64_len(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------
// Opening, migrations, listener
// ---------------------------------------------------------------------------

async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let supported = migrations::postgres_supported();
    loop {
        let mut c = client(pool).await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        // Serializes concurrent starts; released at commit/rollback.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1::int8)",
            &[&PG_MIGRATION_LOCK],
        )
        .await
        .map_err(pg_err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS anchor_schema_version (
                 singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
                 version   INTEGER NOT NULL
             );
             INSERT INTO anchor_schema_version (singleton, version) VALUES (TRUE, 0)
                 ON CONFLICT DO NOTHING;",
        )
        .await
        .map_err(pg_err)?;
        let v: i32 = tx
            .query_one("SELECT version FROM anchor_schema_version", &[])
            .await
            .map_err(pg_err)?
            .try_get(0)
            .map_err(pg_err)?;
        let found = u32::try_from(v).map_err(|_| StoreError::corrupt("schema version", v))?;
        if found > supported {
            return Err(StoreError::TooNew { found, supported });
        }
        let Some(sql) = migrations::POSTGRES.get(found as usize) else {
            tx.commit().await.map_err(pg_err)?;
            return Ok(());
        };
        tx.batch_execute(sql).await.map_err(pg_err)?;
        tx.execute(
            "UPDATE anchor_schema_version SET version = $1::int4",
            &[&(v + 1)],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        tracing::info!(version = found + 1, "postgres store migrated");
    }
}

async fn load_salt(pool: &Pool) -> Result<[u8; 32], StoreError> {
    let c = client(pool).await?;
    c.execute(
        "INSERT INTO meta (key, value) VALUES ('audit_salt', $1::bytea) ON CONFLICT DO NOTHING",
        &[&&random_salt()[..]],
    )
    .await
    .map_err(pg_err)?;
    let row = c
        .query_one("SELECT value FROM meta WHERE key = 'audit_salt'", &[])
        .await
        .map_err(pg_err)?;
    <[u8; 32]>::try_from(get_bytes(&row, 0)?)
        .map_err(|_| StoreError::corrupt("audit salt", "length"))
}

type Notes = mpsc::UnboundedReceiver<String>;

/// A dedicated connection that `LISTEN`s; its notifications arrive on the
/// returned receiver, which closes when the connection ends.
async fn connect_listener(
    cfg: &tokio_postgres::Config,
    limit: Duration,
) -> Result<(tokio_postgres::Client, Notes), StoreError> {
    bounded(limit, async {
        let (client, mut conn) = cfg.connect(NoTls).await.map_err(pg_err)?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if tx.send(n.payload().to_owned()).is_err() {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "mailbox listener connection failed");
                        break;
                    }
                    None => break,
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
            .await
            .map_err(pg_err)?;
        Ok((client, rx))
    })
    .await
}

async fn listener_task(
    cfg: tokio_postgres::Config,
    registry: Weak<Registry>,
    mut shutdown: watch::Receiver<()>,
    first: (tokio_postgres::Client, Notes),
    connect_timeout: Duration,
    listening: Arc<AtomicBool>,
) {
    let mut current = Some(first);
    let mut backoff = LISTEN_MIN_BACKOFF;
    loop {
        let (client, mut notes) = match current.take() {
            Some(c) => c,
            None => match connect_listener(&cfg, connect_timeout).await {
                Ok(c) => {
                    tracing::info!("mailbox listener reconnected");
                    backoff = LISTEN_MIN_BACKOFF;
                    listening.store(true, Ordering::SeqCst);
                    // Notifications sent while we were away are lost:
                    // every waiter re-checks its queue.
                    let Some(reg) = registry.upgrade() else {
                        return;
                    };
                    reg.wake_all();
                    c
                }
                Err(e) => {
                    tracing::debug!(error = %e, ?backoff, "mailbox listener reconnect failed");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(LISTEN_MAX_BACKOFF);
                    continue;
                }
            },
        };
        let mut ping = tokio::time::interval(LISTEN_PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                n = notes.recv() => match n {
                    Some(payload) => {
                        let Some(reg) = registry.upgrade() else { return };
                        if let Some(key) = QueueKey::from_notify_payload(&payload) {
                            reg.wake(&key);
                        }
                    }
                    None => break,
                },
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(connect_timeout, client.simple_query("SELECT 1"))
                        .await
                        .is_ok_and(|r| r.is_ok());
                    if !alive {
                        break;
                    }
                }
            }
        }
        tracing::warn!("mailbox listener connection lost; reconnecting");
        listening.store(false, Ordering::SeqCst);
        drop(client);
        let Some(reg) = registry.upgrade() else {
            return;
        };
        reg.wake_all();
    }
}

// ---------------------------------------------------------------------------
// Group commit
// ---------------------------------------------------------------------------

async fn worker(
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
    let mut msg_replies = Vec::new();
    let mut audits = Vec::new();
    let mut audit_replies = Vec::new();
    let mut checkins = Vec::new();
    let mut checkin_replies = Vec::new();
    for job in batch {
        match job {
            PgJob::Enqueue(m, r) => {
                msgs.push(m);
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
        }
    }
    let outcome = bounded(op_timeout, async {
        let mut c = client(pool).await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        let results = enqueue_rows(&tx, &msgs).await?;
        insert_audits(&tx, &audits).await?;
        upsert_checkins(&tx, &checkins).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(results)
    })
    .await;
    match outcome {
        Ok(results) => {
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
            for reply in audit_replies.into_iter().chain(checkin_replies) {
                let _ = reply.send(Err(StoreError::Batch(Arc::clone(&e))));
            }
        }
    }
}

/// Stores `msgs` in the open transaction `tx`; per-message outcomes (a
/// refused message is its own `Err`). The outer `Err` is a database failure.
/// Sends the `NOTIFY`s for the queues written.
async fn enqueue_rows(
    tx: &tokio_postgres::Transaction<'_>,
    msgs: &[NewMessage],
) -> Result<Vec<Result<Enqueued, StoreError>>, StoreError> {
    let mut results: Vec<Option<Result<Enqueued, StoreError>>> =
        msgs.iter().map(|_| None).collect();
    if msgs.is_empty() {
        return Ok(Vec::new());
    }

    // 1. Channel membership.
    let mut chan_ids: Vec<&[u8]> = msgs
        .iter()
        .filter_map(|m| m.channel.as_ref().map(|c| &c.0[..]))
        .collect();
    chan_ids.sort_unstable();
    chan_ids.dedup();
    let mut channels = HashMap::new();
    if !chan_ids.is_empty() {
        for row in tx
            .query(
                "SELECT id, member_a, member_b, created_at_ms FROM channels WHERE id = ANY($1::bytea[])",
                &[&chan_ids],
            )
            .await
            .map_err(pg_err)?
        {
            let c = read_channel(&row)?;
            channels.insert(c.id, c);
        }
    }
    for (i, m) in msgs.iter().enumerate() {
        let row = m.channel.as_ref().and_then(|c| channels.get(c));
        if let Err(e) = check_member(m, row) {
            results[i] = Some(Err(e));
        }
    }

    // 2. Lock the queues (sorted: no deadlocks between batches).
    let mut locks: Vec<i32> = msgs
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_none())
        .map(|(m, _)| QueueKey::new(&m.recipient, m.channel.as_ref()).lock_key())
        .collect();
    if locks.is_empty() {
        return finish_results(results);
    }
    locks.sort_unstable();
    locks.dedup();
    tx.execute(
        "SELECT pg_advisory_xact_lock($1::int4, k) FROM unnest($2::int4[]) AS k",
        &[&QUEUE_LOCK_CLASS, &locks],
    )
    .await
    .map_err(pg_err)?;

    // 3. clientMessageId already queued (checked under the queue lock).
    type DedupKey = ([u8; 32], Vec<u8>, [u8; 32], [u8; 16]);
    let key_of = |m: &NewMessage, cm: [u8; 16]| -> DedupKey {
        (
            m.recipient.0,
            channel_col(m.channel.as_ref()).to_vec(),
            m.sender.0,
            cm,
        )
    };
    let with_cm: Vec<usize> = (0..msgs.len())
        .filter(|&i| results[i].is_none() && msgs[i].client_message_id.is_some())
        .collect();
    if !with_cm.is_empty() {
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
        let rows = tx
            .query(
                "SELECT m.recipient, m.channel, m.sender, m.client_msg_id,
                        m.id, m.received_at_ms, m.expires_at_ms
                   FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[]) AS k(r, c, s, cm)
                   JOIN messages AS m
                     ON m.recipient = k.r AND m.channel = k.c AND m.sender = k.s
                    AND m.client_msg_id = k.cm AND m.client_msg_id IS NOT NULL",
                &[&r, &c, &s, &cm],
            )
            .await
            .map_err(pg_err)?;
        let mut found: HashMap<DedupKey, Enqueued> = HashMap::new();
        for row in rows {
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
        for &i in &with_cm {
            if let Some(cm) = msgs[i].client_message_id {
                if let Some(e) = found.get(&key_of(&msgs[i], cm)) {
                    results[i] = Some(Ok(*e));
                }
            }
        }
    }

    // 4. Repeats inside this batch refer to their first occurrence.
    let mut first_of: HashMap<DedupKey, usize> = HashMap::new();
    let mut repeat_of: Vec<Option<usize>> = vec![None; msgs.len()];
    let mut to_insert = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
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
        to_insert.push(i);
    }

    // 5. Ids, drawn under the queue locks, assigned in batch order.
    let mut ids: Vec<i64> = tx
        .query(
            "SELECT nextval('message_ids') FROM generate_series(1, $1::int4)",
            &[&i32_len(to_insert.len())],
        )
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| r.try_get::<_, i64>(0).map_err(pg_err))
        .collect::<Result<_, _>>()?;
    ids.sort_unstable();
    if ids.len() != to_insert.len() {
        return Err(StoreError::corrupt(
            "message_ids",
            "sequence returned too few ids",
        ));
    }

    // 6. Multi-row inserts, in chunks of bounded payload size.
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
        tx.execute(
            "INSERT INTO messages
                (id, recipient, channel, sender, client_msg_id, received_at_ms, expires_at_ms, payload_len, payload)
             SELECT * FROM unnest($1::int8[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[],
                                  $6::int8[], $7::int8[], $8::int4[], $9::bytea[])",
            &[&id_col, &recipient, &channel, &sender, &cm, &received, &expires, &lens, &payload],
        )
        .await
        .map_err(pg_err)?;
        start = end;
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

    // 7. Wake other processes at commit.
    let mut notes: Vec<String> = to_insert
        .iter()
        .map(|&i| QueueKey::new(&msgs[i].recipient, msgs[i].channel.as_ref()).notify_payload())
        .collect();
    notes.sort_unstable();
    notes.dedup();
    if !notes.is_empty() {
        tx.execute(
            "SELECT pg_notify($1::text, p) FROM unnest($2::text[]) AS p",
            &[&NOTIFY_CHANNEL, &notes],
        )
        .await
        .map_err(pg_err)?;
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
async fn post_writer(
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
                    let _ = j.reply.send(Ok(mine));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "postgres post batch failed");
                let e = Arc::new(e);
                for j in jobs {
                    let _ = j.reply.send(Err(StoreError::Batch(Arc::clone(&e))));
                }
            }
        }
    }
}

/// Stores `posts` (each with its receive time) in the open transaction
/// `tx`. Locks the `post_seq` counter row until commit: post inserts
/// serialize, so seq order is commit order (the pull cursor never skips).
async fn insert_post_rows(
    tx: &tokio_postgres::Transaction<'_>,
    posts: &[(PreparedPost, u64)],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let mut seq: i64 = lock_post_seq(tx).await?;
    let ids: Vec<&[u8]> = posts.iter().map(|p| &p.0.post_id[..]).collect();
    // Posts deleted by their author are not stored again.
    let mut tombstoned: HashSet<([u8; 32], [u8; 32])> = HashSet::new();
    for row in tx
        .query(
            "SELECT post_id, author FROM tombstones WHERE post_id = ANY($1::bytea[])",
            &[&ids],
        )
        .await
        .map_err(pg_err)?
    {
        tombstoned.insert((
            id32_from("post id", get_bytes(&row, 0)?)?,
            id32_from("author", get_bytes(&row, 1)?)?,
        ));
    }
    let mut held: HashSet<[u8; 32]> = HashSet::new();
    for row in tx
        .query(
            "SELECT post_id FROM posts WHERE post_id = ANY($1::bytea[])",
            &[&ids],
        )
        .await
        .map_err(pg_err)?
    {
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
        tx.execute(
                "INSERT INTO posts (seq, post_id, author, encrypted, created_at_ms, received_at_ms, sync_post)
                 SELECT * FROM unnest($1::int8[], $2::bytea[], $3::bytea[], $4::bool[],
                                      $5::int8[], $6::int8[], $7::bytea[])",
                &[&seqs, &post_ids, &authors, &enc, &created, &received, &bytes_col],
            )
            .await
            .map_err(pg_err)?;
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
        if !r_rec.is_empty() {
            tx.execute(
                "INSERT INTO post_recipients (recipient, seq, author)
                     SELECT * FROM unnest($1::bytea[], $2::int8[], $3::bytea[])
                     ON CONFLICT DO NOTHING",
                &[&r_rec, &r_seq, &r_author],
            )
            .await
            .map_err(pg_err)?;
        }
        start = end;
    }
    store_post_seq(tx, seq).await?;
    Ok(out)
}

async fn insert_audits(
    tx: &tokio_postgres::Transaction<'_>,
    rows: &[AuditRow],
) -> Result<(), StoreError> {
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
    tx.execute(
        "INSERT INTO audit_log (at_ms, kind, actor, channel, detail)
         SELECT * FROM unnest($1::int8[], $2::text[], $3::bytea[], $4::bytea[], $5::text[])",
        &[&at, &kind, &actor, &channel, &detail],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

async fn upsert_checkins(
    tx: &tokio_postgres::Transaction<'_>,
    rows: &[CheckIn],
) -> Result<(), StoreError> {
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
    tx.execute(
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
    .await
    .map_err(pg_err)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------

impl PgStore {
    /// Connects, migrates, starts the listener and the write workers.
    pub(crate) async fn open(
        mut cfg: tokio_postgres::Config,
        opts: &StoreOptions,
    ) -> Result<Self, StoreError> {
        let ct = opts.connect_timeout;
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(ct);
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("distsoc-anchor");
        }
        let mgr = Manager::from_config(
            cfg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(opts.pool_size.max(1))
            .wait_timeout(Some(ct))
            .create_timeout(Some(ct))
            .recycle_timeout(Some(ct))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::InvalidArgument(format!("postgres pool: {e}")))?;
        migrate(&pool).await?;
        let salt = bounded(opts.op_timeout, load_salt(&pool)).await?;

        let registry = Arc::new(Registry::default());
        let (shutdown_tx, shutdown_rx) = watch::channel(());
        // The first LISTEN is in place before `open` returns: a waiter
        // registered afterwards sees every later enqueue.
        let first = connect_listener(&cfg, ct).await?;
        let listening = Arc::new(AtomicBool::new(true));
        tokio::spawn(listener_task(
            cfg,
            Arc::downgrade(&registry),
            shutdown_rx,
            first,
            ct,
            Arc::clone(&listening),
        ));

        let (tx, rx) = mpsc::channel(JOB_QUEUE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..opts.write_workers.max(1) {
            tokio::spawn(worker(
                Arc::clone(&rx),
                pool.clone(),
                Arc::clone(&registry),
                opts.max_write_batch.max(1),
                opts.op_timeout,
            ));
        }
        let (posts_tx, posts_rx) = mpsc::channel(JOB_QUEUE);
        tokio::spawn(post_writer(
            posts_rx,
            pool.clone(),
            opts.max_write_batch.max(1),
            opts.op_timeout,
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                jobs: tx,
                posts: posts_tx,
                registry,
                salt,
                op_timeout: opts.op_timeout,
                listening,
                _shutdown: shutdown_tx,
            }),
        })
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    pub(crate) fn salt(&self) -> &[u8; 32] {
        &self.inner.salt
    }

    pub(crate) fn listening(&self) -> bool {
        self.inner.listening.load(Ordering::SeqCst)
    }

    async fn timed<T>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        bounded(self.inner.op_timeout, fut).await
    }

    /// Queues a group-committed write and waits for its answer.
    async fn submit<T>(&self, job: impl FnOnce(Reply<T>) -> PgJob) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let limit = self.inner.op_timeout;
        tokio::time::timeout(limit, self.inner.jobs.send(job(tx)))
            .await
            .map_err(|_| StoreError::unavailable("write queue full"))?
            .map_err(|_| StoreError::unavailable("postgres writers stopped"))?;
        // The worker bounds its own transaction by op_timeout after it
        // picks the job up; this bounds queueing plus that.
        tokio::time::timeout(limit * 2, rx)
            .await
            .map_err(|_| StoreError::unavailable(format!("no answer within {:?}", limit * 2)))?
            .map_err(|_| StoreError::unavailable("postgres writers stopped"))?
    }

    pub(crate) async fn schema_version(&self) -> Result<u32, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let v: i32 = c
                .query_one("SELECT version FROM anchor_schema_version", &[])
                .await
                .map_err(pg_err)?
                .try_get(0)
                .map_err(pg_err)?;
            u32::try_from(v).map_err(|_| StoreError::corrupt("schema version", v))
        })
        .await
    }

    // -- channels -----------------------------------------------------------

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

    pub(crate) async fn sweep_expired(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.delete_in_chunks(
            "DELETE FROM messages WHERE id IN (
                SELECT id FROM messages WHERE expires_at_ms <= $1::int8
                 ORDER BY expires_at_ms LIMIT $2::int8)",
            now_ms,
        )
        .await
    }

    pub(crate) async fn prune_posts_received_before(
        &self,
        before_ms: u64,
    ) -> Result<u64, StoreError> {
        self.delete_in_chunks(
            "DELETE FROM posts WHERE seq IN (
                SELECT seq FROM posts WHERE received_at_ms < $1::int8
                 ORDER BY received_at_ms LIMIT $2::int8)",
            before_ms,
        )
        .await
    }

    pub(crate) async fn post_volume_since(
        &self,
        since_ms: u64,
        bucket_ms: u64,
    ) -> Result<Vec<PostVolume>, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let rows = c
                .query(
                    "SELECT author, received_at_ms / $2::int8 AS b, count(*)::int8,
                            sum(octet_length(sync_post))::int8
                       FROM posts WHERE received_at_ms >= $1::int8 GROUP BY author, b",
                    &[&to_i64(since_ms), &to_i64(bucket_ms)],
                )
                .await
                .map_err(pg_err)?;
            rows.iter()
                .map(|r| {
                    Ok(PostVolume {
                        author: PostingId(node_from("post author", get_bytes(r, 0)?)?.0),
                        bucket_start_ms: get_u64(r, 1, "bucket")?.saturating_mul(bucket_ms),
                        posts: get_u64(r, 2, "count")?,
                        bytes: get_u64(r, 3, "bytes")?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Runs `sql` (parameters: a time in ms, a row limit) with a limit of
    /// [`SWEEP_CHUNK`], one statement per chunk, until a chunk deletes fewer
    /// rows; returns how many were deleted.
    async fn delete_in_chunks(&self, sql: &str, ms: u64) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let n = self
                .timed(async {
                    let c = client(&self.inner.pool).await?;
                    c.execute(sql, &[&to_i64(ms), &i64_len(SWEEP_CHUNK)])
                        .await
                        .map_err(pg_err)
                })
                .await?;
            total = total.saturating_add(n);
            if n < SWEEP_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    // -- audit --------------------------------------------------------------

    pub(crate) async fn audit(&self, e: AuditEvent) -> Result<(), StoreError> {
        let row = AuditRow {
            at_ms: e.at_ms,
            kind: e.kind,
            actor: redact(&self.inner.salt, &e.actor),
            channel: e.channel,
            detail: e.detail,
        };
        self.submit(|r| PgJob::Audit(row, r)).await
    }

    pub(crate) async fn prune_audit_before(&self, before_ms: u64) -> Result<u64, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            c.execute(
                "DELETE FROM audit_log WHERE at_ms < $1::int8",
                &[&to_i64(before_ms)],
            )
            .await
            .map_err(pg_err)
        })
        .await
    }

    pub(crate) async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let rows = c
                .query(
                    "SELECT id, at_ms, kind, actor, channel, detail FROM audit_log
                      ORDER BY id DESC LIMIT $1::int8",
                    &[&i64_len(limit)],
                )
                .await
                .map_err(pg_err)?;
            rows.iter()
                .map(|row| {
                    let channel: Option<&[u8]> = row.try_get(4).map_err(pg_err)?;
                    Ok(AuditRecord {
                        id: get_u64(row, 0, "audit id")?,
                        at_ms: get_u64(row, 1, "at_ms")?,
                        kind: AuditKind::parse(row.try_get::<_, &str>(2).map_err(pg_err)?)?,
                        actor: <[u8; REDACTED_ID_LEN]>::try_from(get_bytes(row, 3)?)
                            .map_err(|_| StoreError::corrupt("audit actor", "length"))?,
                        channel: match channel {
                            Some(b) => channel_from_col(b)?,
                            None => None,
                        },
                        detail: row.try_get::<_, String>(5).map_err(pg_err)?,
                    })
                })
                .collect()
        })
        .await
    }

    // -- check-in -----------------------------------------------------------

    pub(crate) async fn check_in(&self, ci: CheckIn) -> Result<(), StoreError> {
        self.submit(|r| PgJob::CheckIn(ci, r)).await
    }

    pub(crate) async fn address(&self, node: NodeId) -> Result<Option<CheckIn>, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            c.query_opt(
                &format!(
                    "SELECT {CHECKIN_COLS} FROM checkins
                      WHERE node = $1::bytea AND verified_at_ms IS NOT NULL"
                ),
                &[&&node.0[..]],
            )
            .await
            .map_err(pg_err)?
            .map(|r| read_checkin(&r))
            .transpose()
        })
        .await
    }

    pub(crate) async fn bootstrap_candidates(
        &self,
        q: BootstrapQuery,
    ) -> Result<Vec<CheckIn>, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let read = |rows: Vec<Row>| -> Result<Vec<CheckIn>, StoreError> {
                rows.iter().map(read_checkin).collect()
            };
            let seen = to_i64(q.seen_after_ms);
            let recent = read(
                c.query(
                    &format!(
                        "SELECT {CHECKIN_COLS} FROM checkins WHERE last_seen_ms >= $1::int8
                            AND verified_at_ms IS NOT NULL
                          ORDER BY last_seen_ms DESC LIMIT $2::int8"
                    ),
                    &[&seen, &i64_len(q.recent_limit)],
                )
                .await
                .map_err(pg_err)?,
            )?;
            let anchors = read(
                c.query(
                    &format!(
                        "SELECT {CHECKIN_COLS} FROM checkins
                          WHERE is_anchor AND last_seen_ms >= $1::int8
                            AND verified_at_ms IS NOT NULL
                          ORDER BY last_seen_ms DESC LIMIT $2::int8"
                    ),
                    &[&seen, &i64_len(q.anchor_limit)],
                )
                .await
                .map_err(pg_err)?,
            )?;
            let start = &q.sample_start[..];
            let mut sample = read(
                c.query(
                    &format!(
                        "SELECT {CHECKIN_COLS} FROM checkins WHERE node >= $1::bytea
                            AND verified_at_ms IS NOT NULL
                          ORDER BY node LIMIT $2::int8"
                    ),
                    &[&start, &i64_len(q.sample_limit)],
                )
                .await
                .map_err(pg_err)?,
            )?;
            if sample.len() < q.sample_limit {
                let rest = q.sample_limit - sample.len();
                sample.extend(read(
                    c.query(
                        &format!(
                            "SELECT {CHECKIN_COLS} FROM checkins WHERE node < $1::bytea
                                AND verified_at_ms IS NOT NULL
                              ORDER BY node LIMIT $2::int8"
                        ),
                        &[&start, &i64_len(rest)],
                    )
                    .await
                    .map_err(pg_err)?,
                )?);
            }
            Ok(super::sqlite::interleave(sample, recent, anchors))
        })
        .await
    }

    pub(crate) async fn forget_checkins_before(&self, before_ms: u64) -> Result<u64, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            c.execute(
                "DELETE FROM checkins WHERE last_seen_ms < $1::int8",
                &[&to_i64(before_ms)],
            )
            .await
            .map_err(pg_err)
        })
        .await
    }

    // -- operator state -----------------------------------------------------

    pub(crate) async fn set_ban(
        &self,
        node: NodeId,
        banned: bool,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let n = if banned {
                c.execute(
                    "INSERT INTO bans (node, banned_at_ms) VALUES ($1::bytea, $2::int8)
                     ON CONFLICT DO NOTHING",
                    &[&&node.0[..], &to_i64(now_ms)],
                )
                .await
            } else {
                c.execute("DELETE FROM bans WHERE node = $1::bytea", &[&&node.0[..]])
                    .await
            }
            .map_err(pg_err)?;
            Ok(n > 0)
        })
        .await
    }

    pub(crate) async fn bans(&self) -> Result<Vec<NodeId>, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            c.query("SELECT node FROM bans ORDER BY node", &[])
                .await
                .map_err(pg_err)?
                .iter()
                .map(|r| Ok(NodeId(id32_from("banned node", get_bytes(r, 0)?)?)))
                .collect()
        })
        .await
    }

    pub(crate) async fn setting(&self, name: &'static str) -> Result<Option<u64>, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let row = c
                .query_opt("SELECT value FROM settings WHERE name = $1::text", &[&name])
                .await
                .map_err(pg_err)?;
            row.map(|r| {
                let v: i64 = r.try_get(0).map_err(pg_err)?;
                from_i64(name, v)
            })
            .transpose()
        })
        .await
    }

    pub(crate) async fn set_setting(
        &self,
        name: &'static str,
        value: u64,
    ) -> Result<(), StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            c.execute(
                "INSERT INTO settings (name, value) VALUES ($1::text, $2::int8)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[&name, &to_i64(value)],
            )
            .await
            .map_err(pg_err)?;
            Ok(())
        })
        .await
    }

    // -- posts --------------------------------------------------------------

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
    /// of the [`pull_sql!`] statements (posts or tombstones).
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
            c.query(
                &st,
                &[&&requester.0[..], &to_i64(since_seq), &ids, &i64_len(limit)],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| get_u64(r, 0, "seq"))
            .collect()
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
                    return Err(super::foreign_delete());
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

    pub(crate) async fn stats(&self) -> Result<Stats, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let row = c
                .query_one(
                    "SELECT (SELECT count(*) FROM channels),
                            (SELECT count(*) FROM messages),
                            (SELECT coalesce(sum(payload_len), 0)::int8 FROM messages),
                            (SELECT count(*) FROM posts),
                            (SELECT count(*) FROM checkins)",
                    &[],
                )
                .await
                .map_err(pg_err)?;
            Ok(Stats {
                channels: get_u64(&row, 0, "count")?,
                queued_messages: get_u64(&row, 1, "count")?,
                queued_bytes: get_u64(&row, 2, "sum")?,
                posts: get_u64(&row, 3, "count")?,
                checkins: get_u64(&row, 4, "count")?,
            })
        })
        .await
    }

    pub(crate) async fn analyze(&self) -> Result<(), StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            c.batch_execute(
                "ANALYZE channels, messages, posts, post_recipients, checkins, tombstones, tombstone_recipients",
            )
                .await
                .map_err(pg_err)
        })
        .await
    }

    pub(crate) async fn explain(&self, q: PlanQuery) -> Result<String, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let rows = match q {
                PlanQuery::Fetch => {
                    c.query(
                        &format!("EXPLAIN {FETCH_LENS_SQL}"),
                        &[&&[0u8; 32][..], &&[0u8; 16][..], &0i64, &101i64],
                    )
                    .await
                }
                PlanQuery::ListChannels => {
                    let mut lines = Vec::new();
                    for sql in [
                        WAITING_CHANNELS_SQL,
                        EMPTY_CHANNELS_A_SQL,
                        EMPTY_CHANNELS_B_SQL,
                    ] {
                        lines.extend(
                            c.query(
                                &format!("EXPLAIN {sql}"),
                                &[&&[0u8; 32][..], &&[0u8; 16][..], &101i64],
                            )
                            .await
                            .map_err(pg_err)?,
                        );
                    }
                    Ok(lines)
                }
                PlanQuery::Pull => {
                    let ids: Vec<&[u8]> = vec![&[1u8; 32][..], &[2u8; 32][..]];
                    let mut rows = Vec::new();
                    for sql in [PULL_SQL, PULL_TOMBSTONES_SQL] {
                        rows.extend(
                            c.query(
                                &format!("EXPLAIN {sql}"),
                                &[&&[0u8; 32][..], &0i64, &ids, &101i64],
                            )
                            .await
                            .map_err(pg_err)?,
                        );
                    }
                    Ok(rows)
                }
            }
            .map_err(pg_err)?;
            let lines: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<_, String>(0).map_err(pg_err))
                .collect::<Result<_, _>>()?;
            Ok(lines.join("\n"))
        })
        .await
    }
}
