//! The PostgreSQL backend (`deadpool-postgres` over `tokio-postgres`).
//!
//! * **Pools.** `pool_size` connections, created lazily, in two pools:
//!   half (rounded up) for the mailbox (write batches and read-only
//!   fetches, with session settings of their own:
//!   [`MAILBOX_SESSION_OPTIONS`](pool::MAILBOX_SESSION_OPTIONS)), the
//!   rest for everything else (at least
//!   one each). A checkout waits at
//!   most `connect_timeout`, creating a connection likewise, and every
//!   operation is bounded by `op_timeout`. A server that is down or
//!   restarting makes calls fail fast with [`StoreError::Unavailable`];
//!   closed connections are dropped at checkout (`RecyclingMethod::Fast`)
//!   and replaced, so the store recovers by itself. No TLS: connect over a
//!   unix socket or a trusted network.
//! * **Group commit.** Enqueues (each with its audit row), fetches that
//!   acknowledge (the deletes, the pages and their audit rows), audit
//!   events and check-ins go through a bounded queue to `write_workers`
//!   tasks; each takes what is queued (up to `max_write_batch`) into one
//!   transaction of multi-row `UNNEST` statements and answers every request
//!   after the `COMMIT`. The transaction takes two round trips: its
//!   statements are pipelined (`BEGIN`, locks, lookups, id draw, the
//!   acknowledgements with the pages; then the inserts, audit rows,
//!   check-ins and `NOTIFY`s as one statement, and `COMMIT`), and a
//!   failed statement rolls the whole batch back (`batch.rs`).
//!   Senders are checked before they are queued (channels never change,
//!   `cache.rs`). Every statement on the mailbox path is prepared once per
//!   pooled connection (deadpool's statement cache).
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
use std::sync::{Arc, Weak};
use std::time::Duration;

use deadpool_postgres::{Pool, PoolError};
use distsoc_protocol::ids::{ChannelId, NodeId, PostingId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{AsyncMessage, NoTls, Row};

use super::cache::{AppliedAcks, ChannelCache};
use super::migrations::{self, PG_MIGRATION_LOCK};
use super::wake::{QueueKey, Registry};
use super::{
    channel_col, channel_from_col, decode_addrs, encode_addrs, fetch_cut, from_i64, id32_from,
    merge_by_id, node_from, random_channel_id, random_salt, to_i64, AuditKind, AuditRecord,
    AuditRow, BootstrapQuery, Channel, ChannelSummary, CheckIn, DeleteOutcome, Enqueued, FetchPage,
    FetchQuery, Inserted, NewMessage, PlanQuery, PoolGauges, PostVolume, PostsDone, PreparedDelete,
    PreparedPost, Stats, StoreError, StoreGauges, StoreOptions, StoredMessage, TombstoneRow,
    REDACTED_ID_LEN, SWEEP_CHUNK,
};

mod batch;
mod mailbox;
mod pool;
mod posts;

use batch::{post_writer, worker};
use mailbox::{explain_generic, FETCH_EXPLAIN_ARGS, FETCH_PAGE_SQL};
use pool::{build_pool, mailbox_config, split_pool};

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

/// The candidate streams of a pull from one table pair, each tagged: the
/// requester's own public (0) and encrypted (1) rows, the public rows by
/// the `n`-th id (`2n`) and the rows whose recipient (other than their
/// author) is the `n`-th id (`2n + 1`), at most `$4` rows per stream, by
/// seq. `$1` requester, `$2` since, `$3` ids, `$4` rows per stream, `$5`
/// the head read before (rows up to it were all committed then, so the
/// post and the tombstone statements see the same rows).
/// Merged by `PullRounds` (`pull.rs`).
macro_rules! pull_sql {
    ($rows:literal, $recipients:literal) => {
        concat!(
            "(SELECT 0::int8 AS s, p.seq FROM ",
            $rows,
            " AS p
      WHERE p.author = $1::bytea AND p.encrypted = false AND p.seq > $2::int8 AND p.seq <= $5::int8
      ORDER BY p.seq LIMIT $4::int8)
    UNION ALL
    (SELECT 1::int8, p.seq FROM ",
            $rows,
            " AS p
      WHERE p.author = $1::bytea AND p.encrypted = true AND p.seq > $2::int8 AND p.seq <= $5::int8
      ORDER BY p.seq LIMIT $4::int8)
    UNION ALL
    (SELECT 2 * i.n, x.seq FROM unnest($3::bytea[]) WITH ORDINALITY AS i(id, n)
      CROSS JOIN LATERAL (
        SELECT p.seq FROM ",
            $rows,
            " AS p
         WHERE p.author = i.id AND p.encrypted = false AND p.seq > $2::int8 AND p.seq <= $5::int8
         ORDER BY p.seq LIMIT $4::int8) AS x)
    UNION ALL
    (SELECT 2 * i.n + 1, y.seq FROM unnest($3::bytea[]) WITH ORDINALITY AS i(id, n)
      CROSS JOIN LATERAL (
        SELECT r.seq FROM ",
            $recipients,
            " AS r
         WHERE r.recipient = i.id AND r.author <> r.recipient AND r.seq > $2::int8 AND r.seq <= $5::int8
         ORDER BY r.seq LIMIT $4::int8) AS y)"
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
    /// Pull, posts, channels, maintenance.
    pool: Pool,
    /// The mailbox: write batches and read-only fetches
    /// ([`MAILBOX_SESSION_OPTIONS`](pool::MAILBOX_SESSION_OPTIONS)).
    mailbox: Pool,
    jobs: mpsc::Sender<PgJob>,
    posts: mpsc::Sender<PostJob>,
    registry: Arc<Registry>,
    channels: ChannelCache,
    acks: AppliedAcks,
    salt: [u8; 32],
    op_timeout: Duration,
    /// The `LISTEN` connection is up (a watch, for the health service).
    listening: watch::Sender<bool>,
    /// Dropped with the store: stops the listener task.
    _shutdown: watch::Sender<()>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.inner.pool.status())
            .field("mailbox_pool", &self.inner.mailbox.status())
            .field("registry", &self.inner.registry)
            .finish_non_exhaustive()
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A group-committed write.
enum PgJob {
    /// A message, and the audit row to write with it.
    Enqueue(NewMessage, Option<AuditRow>, Reply<Enqueued>),
    Audit(AuditRow, Reply<()>),
    CheckIn(CheckIn, Reply<()>),
    /// A fetch with an acknowledgement (a write), and its audit row.
    Fetch(FetchQuery, Reply<FetchPage>),
}

/// A post ingest, group-committed by the single post writer.
struct PostJob {
    posts: Vec<PreparedPost>,
    now_ms: u64,
    /// Called once with the batch's results (or its failure).
    reply: PostsDone,
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
        StoreError::unavailable(super::describe_pg(&e))
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
    listening: watch::Sender<bool>,
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
                    listening.send_replace(true);
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
        listening.send_replace(false);
        drop(client);
        let Some(reg) = registry.upgrade() else {
            return;
        };
        reg.wake_all();
    }
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
        let (mailbox_size, other_size) = split_pool(opts.pool_size);
        let pool = build_pool(cfg.clone(), other_size, ct)?;
        let mailbox = build_pool(mailbox_config(&cfg), mailbox_size, ct)?;
        migrate(&pool).await?;
        let salt = bounded(opts.op_timeout, load_salt(&pool)).await?;

        let registry = Arc::new(Registry::default());
        let (shutdown_tx, shutdown_rx) = watch::channel(());
        // The first LISTEN is in place before `open` returns: a waiter
        // registered afterwards sees every later enqueue.
        let first = connect_listener(&cfg, ct).await?;
        let listening = watch::Sender::new(true);
        tokio::spawn(listener_task(
            cfg,
            Arc::downgrade(&registry),
            shutdown_rx,
            first,
            ct,
            listening.clone(),
        ));

        let (tx, rx) = mpsc::channel(JOB_QUEUE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..opts.write_workers.max(1) {
            tokio::spawn(worker(
                Arc::clone(&rx),
                mailbox.clone(),
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
                mailbox,
                jobs: tx,
                posts: posts_tx,
                registry,
                channels: ChannelCache::default(),
                acks: AppliedAcks::default(),
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

    pub(crate) fn channel_cache(&self) -> &ChannelCache {
        &self.inner.channels
    }

    pub(crate) fn applied_acks(&self) -> &AppliedAcks {
        &self.inner.acks
    }

    pub(crate) fn listening(&self) -> bool {
        *self.inner.listening.borrow()
    }

    /// Watches whether the `LISTEN` connection is up.
    pub(crate) fn listening_watch(&self) -> watch::Receiver<bool> {
        self.inner.listening.subscribe()
    }

    pub(crate) fn gauges(&self) -> StoreGauges {
        let (pool, mailbox) = (self.inner.pool.status(), self.inner.mailbox.status());
        StoreGauges {
            backend: "postgres",
            write_queue: self.inner.jobs.max_capacity() - self.inner.jobs.capacity()
                + (self.inner.posts.max_capacity() - self.inner.posts.capacity()),
            write_queue_capacity: self.inner.jobs.max_capacity() + self.inner.posts.max_capacity(),
            // Both pools together.
            pool: Some(PoolGauges {
                max_size: pool.max_size + mailbox.max_size,
                size: pool.size + mailbox.size,
                available: pool.available + mailbox.available,
                waiting: pool.waiting + mailbox.waiting,
            }),
        }
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

    /// Queues a group-committed write without waiting for its commit.
    async fn submit_detached<T>(
        &self,
        job: impl FnOnce(Reply<T>) -> PgJob,
    ) -> Result<(), StoreError> {
        let (tx, _) = oneshot::channel();
        tokio::time::timeout(self.inner.op_timeout, self.inner.jobs.send(job(tx)))
            .await
            .map_err(|_| StoreError::unavailable("write queue full"))?
            .map_err(|_| StoreError::unavailable("postgres writers stopped"))
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

    pub(crate) async fn sweep_expired(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.delete_in_chunks(
            "DELETE FROM messages WHERE (recipient, channel, id) IN (
                SELECT recipient, channel, id FROM messages WHERE expires_at_ms <= $1::int8
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

    pub(crate) async fn audit(&self, row: AuditRow) -> Result<(), StoreError> {
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

    pub(crate) async fn clear_setting(&self, name: &'static str) -> Result<bool, StoreError> {
        self.timed(async {
            let c = client(&self.inner.pool).await?;
            let n = c
                .execute("DELETE FROM settings WHERE name = $1::text", &[&name])
                .await
                .map_err(pg_err)?;
            Ok(n > 0)
        })
        .await
    }

    // -- posts --------------------------------------------------------------

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
            // The fetch's plan as the mailbox makes it (its own pool).
            let pool = match q {
                PlanQuery::Fetch => &self.inner.mailbox,
                PlanQuery::ListChannels | PlanQuery::Pull => &self.inner.pool,
            };
            let c = client(pool).await?;
            let rows = match q {
                PlanQuery::Fetch => {
                    return explain_generic(&c, FETCH_PAGE_SQL, FETCH_EXPLAIN_ARGS).await
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
                                &[&&[0u8; 32][..], &0i64, &ids, &101i64, &i64::MAX],
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
