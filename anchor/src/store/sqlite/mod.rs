//! The embedded SQLite backend.
//!
//! One writer thread owns the write connection. Every write is a job sent
//! to it; the thread takes everything queued (up to `max_write_batch`) into
//! one `BEGIN IMMEDIATE` transaction, runs the jobs one after the other,
//! commits once, wakes the waiters of the queues written, and only then
//! answers each job — so an answer means committed (WAL, `synchronous =
//! FULL`: one fsync per batch). The answers go back to the runtime in
//! one hand-off per batch (a task there answers each job), not one per
//! job. A refused job rolls back only itself: if
//! one fails, the whole transaction is rolled back and the batch is run
//! again with each job in its own savepoint (jobs are re-runnable). The
//! savepoints are kept off the common path because SQLite copies every
//! page a job changes into the statement journal of its savepoint first.
//!
//! Reads run on a small pool of read connections through
//! `spawn_blocking`; WAL lets them proceed while the writer commits. An
//! in-memory database (`sqlite::memory:`) has no readers: its reads go
//! through the writer too (a private in-memory database is one
//! connection).
//!
//! Files: the database is created with mode 0600 and an existing looser
//! mode is tightened, as for the node's store. Several anchor processes on
//! one SQLite file are safe (SQLite locking, busy timeout) but FetchWait
//! wakeups only reach waiters in the process that enqueued: share a
//! database between anchor processes with PostgreSQL.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use distsoc_protocol::ids::{ChannelId, NodeId, PostingId};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use super::cache::{AppliedAcks, ChannelCache};
use super::migrations;
use super::wake::{QueueKey, Registry};
use super::{
    channel_col, channel_from_col, decode_addrs, encode_addrs, from_i64, merge_by_id, node_from,
    random_channel_id, random_salt, to_i64, AuditKind, AuditRecord, AuditRow, BootstrapQuery,
    Channel, ChannelSummary, CheckIn, DeleteOutcome, Enqueued, FetchPage, FetchQuery, Inserted,
    NewMessage, PlanQuery, PostVolume, PostsDone, PreparedDelete, PreparedPost, Stats, StoreError,
    StoreGauges, StoreOptions, StoredMessage, TombstoneRow, SWEEP_CHUNK,
};

mod mailbox;
mod posts;
mod writer;

use writer::{answer_loop, job_outcome, writer_loop, Job, JobResult, WriteJob};

/// Read connections kept open (file databases).
const READERS: usize = 4;

/// Pages written to the WAL before the writer checkpoints it (SQLite's
/// default is 1,000): 10,000 pages of 4 KiB, within `journal_size_limit`.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// Write jobs queued before `enqueue` waits (backpressure).
const JOB_QUEUE: usize = 4096;

const FETCH_SQL: &str = "SELECT id, payload_len, sender, received_at_ms, expires_at_ms, payload
   FROM messages
  WHERE recipient = ?1 AND channel = ?2 AND expires_at_ms > ?3
  ORDER BY id
  LIMIT ?4";

/// A member's channels with messages waiting for it, after a channel id
/// (`X''` = from the start, which also skips the legacy queue), by id:
/// one range scan of `messages_by_queue`.
const WAITING_CHANNELS_SQL: &str = "SELECT ch.id, ch.member_a, ch.member_b, ch.created_at_ms, q.n
   FROM (SELECT channel, count(*) AS n FROM messages
          WHERE recipient = ?1 AND channel > ?2
          GROUP BY channel ORDER BY channel LIMIT ?3) AS q
   JOIN channels AS ch ON ch.id = q.channel
  ORDER BY ch.id";

/// A member's channels without waiting messages where it is `member_a`,
/// after a channel id, by id (range scan of `channels_by_member_a_id`).
const EMPTY_CHANNELS_A_SQL: &str =
    "SELECT id, member_a, member_b, created_at_ms, 0 FROM channels AS ch
  WHERE member_a = ?1 AND id > ?2
    AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.recipient = ?1 AND m.channel = ch.id)
  ORDER BY id LIMIT ?3";

/// As [`EMPTY_CHANNELS_A_SQL`] where the member is `member_b`.
const EMPTY_CHANNELS_B_SQL: &str =
    "SELECT id, member_a, member_b, created_at_ms, 0 FROM channels AS ch
  WHERE member_b = ?1 AND id > ?2
    AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.recipient = ?1 AND m.channel = ch.id)
  ORDER BY id LIMIT ?3";

const POSTS_BY_AUTHOR_SQL: &str = "SELECT seq FROM posts
  WHERE author = ?1 AND encrypted = ?2 AND seq > ?3
  ORDER BY seq LIMIT ?4";

const POSTS_BY_RECIPIENT_SQL: &str = "SELECT seq FROM post_recipients
  WHERE recipient = ?1 AND seq > ?2 AND author <> recipient
  ORDER BY seq LIMIT ?3";

const TOMBSTONES_BY_AUTHOR_SQL: &str = "SELECT seq FROM tombstones
  WHERE author = ?1 AND encrypted = ?2 AND seq > ?3
  ORDER BY seq LIMIT ?4";

const TOMBSTONES_BY_RECIPIENT_SQL: &str = "SELECT seq FROM tombstone_recipients
  WHERE recipient = ?1 AND seq > ?2 AND author <> recipient
  ORDER BY seq LIMIT ?3";

/// Draws the next `post_seq` (posts and tombstones share it).
fn next_post_seq(c: &Connection) -> Result<i64, StoreError> {
    Ok(c.prepare_cached(
        "UPDATE counters SET value = value + 1 WHERE name = 'post_seq' RETURNING value",
    )?
    .query_row([], |r| r.get(0))?)
}

/// Writes the recipient rows of a post at `seq`.
fn insert_post_recipients(c: &Connection, p: &PreparedPost, seq: i64) -> Result<(), StoreError> {
    let mut ins = c.prepare_cached(
        "INSERT INTO post_recipients (recipient, seq, author) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )?;
    for r in &p.recipients {
        ins.execute(params![&r[..], seq, &p.author[..]])?;
    }
    Ok(())
}

/// The SQLite backend. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: mpsc::Sender<Box<dyn WriteJob>>,
    readers: Option<Mutex<Vec<Connection>>>,
    path: Option<PathBuf>,
    registry: Arc<Registry>,
    channels: ChannelCache,
    acks: AppliedAcks,
    salt: [u8; 32],
    busy_timeout: Duration,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("registry", &self.inner.registry)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    Ok(Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?)
}

/// Settings of every connection, writer and readers.
///
/// The query planner stability guarantee: plans never depend on the
/// values bound to a statement. Without it, once `ANALYZE` has gathered
/// STAT4 samples, SQLite probes them with the bound recipient, channel and
/// time, and then re-plans (recompiles) the cached statement every time
/// one of those is rebound — on every fetch. The plans are fixed by the
/// indexes instead (`SqliteStore::explain`).
fn tune(conn: &Connection, busy: Duration) -> Result<(), StoreError> {
    conn.busy_timeout(busy)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// The writer's connection settings; returns the journal mode after them.
fn connection_pragmas(conn: &Connection, wal: bool) -> rusqlite::Result<String> {
    let mut mode = String::new();
    if wal {
        mode = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        // A checkpoint copies the newest frame of every page written since
        // the last one back into the file (a read and a write each, then an
        // fsync of the file). The pages ingest writes again and again (the
        // table's last leaf, the author and `post_id` index leaves) are
        // copied once per checkpoint, so fewer, larger checkpoints copy
        // fewer pages per post. Durability is the WAL's fsync at every
        // commit, as before.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "secure_delete", "FAST")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(mode)
}

/// Sets up the writer connection and migrates.
fn setup_writer(conn: &mut Connection, wal: bool, busy: Duration) -> Result<(), StoreError> {
    tune(conn, busy)?;
    // Refuse a newer database before changing anything in it (the journal
    // mode is stored in the file).
    let found = migrations::sqlite_user_version(conn)?;
    let supported = migrations::sqlite_supported();
    if found > supported {
        return Err(StoreError::TooNew { found, supported });
    }
    // Several processes (or stores) opening a new database at once race for
    // the switch to WAL, which needs an exclusive lock; SQLite reports that
    // as busy at once, without its busy handler (it would deadlock). The
    // pragmas are idempotent, so they are retried within the busy timeout.
    let deadline = std::time::Instant::now() + busy;
    loop {
        match connection_pragmas(conn, wal) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
            Ok(mode) => {
                if wal && !mode.eq_ignore_ascii_case("wal") {
                    return Err(StoreError::corrupt(
                        "journal mode",
                        format!("could not switch to WAL (got {mode})"),
                    ));
                }
                break;
            }
        }
    }
    migrations::migrate_sqlite(conn)?;
    Ok(())
}

fn open_reader(path: &Path, busy: Duration) -> Result<Connection, StoreError> {
    let conn = open_conn(path)?;
    tune(&conn, busy)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

/// The per-database audit salt: created once, random.
fn load_salt(conn: &Connection) -> Result<[u8; 32], StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('audit_salt', ?1) ON CONFLICT DO NOTHING",
        [&random_salt()[..]],
    )?;
    let v: Vec<u8> =
        conn.query_row("SELECT value FROM meta WHERE key = 'audit_salt'", [], |r| {
            r.get(0)
        })?;
    <[u8; 32]>::try_from(v.as_slice()).map_err(|_| StoreError::corrupt("audit salt", "length"))
}

fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn col_u64(row: &rusqlite::Row<'_>, idx: usize, what: &'static str) -> Result<u64, StoreError> {
    from_i64(what, row.get::<_, i64>(idx)?)
}

fn col_blob<'a>(row: &'a rusqlite::Row<'_>, idx: usize) -> Result<&'a [u8], StoreError> {
    row.get_ref(idx)?
        .as_blob()
        .map_err(|e| StoreError::corrupt("column", format!("column {idx}: {e}")))
}

/// A `(id, member_a, member_b, created_at_ms, queued)` row as listed for
/// `member`.
fn read_summary(row: &rusqlite::Row<'_>, member: &NodeId) -> Result<ChannelSummary, StoreError> {
    let a = node_from("member", col_blob(row, 1)?)?;
    let b = node_from("member", col_blob(row, 2)?)?;
    Ok(ChannelSummary {
        id: ChannelId::from_slice(col_blob(row, 0)?)
            .map_err(|e| StoreError::corrupt("channel id", e))?,
        peer: if a == *member { b } else { a },
        created_at_ms: col_u64(row, 3, "created_at_ms")?,
        queued: col_u64(row, 4, "count")?,
    })
}

fn read_checkin(row: &rusqlite::Row<'_>) -> Result<CheckIn, StoreError> {
    Ok(CheckIn {
        node: node_from("check-in node", col_blob(row, 0)?)?,
        addrs: decode_addrs(&row.get::<_, String>(1)?)?,
        is_anchor: row.get::<_, i64>(2)? != 0,
        last_seen_ms: col_u64(row, 3, "last_seen_ms")?,
        verified_at_ms: col_u64(row, 4, "verified_at_ms")?,
    })
}

/// The columns [`read_checkin`] reads. Every query that serves check-ins
/// also has `verified_at_ms IS NOT NULL` (migration 6).
const CHECKIN_COLS: &str = "node, addrs, is_anchor, last_seen_ms, verified_at_ms";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, or a private
    /// in-memory one for `None`, and migrates it.
    pub(crate) async fn open(
        path: Option<PathBuf>,
        opts: &StoreOptions,
    ) -> Result<Self, StoreError> {
        let busy = opts.busy_timeout;
        let p = path.clone();
        let (conn, readers, salt) = tokio::task::spawn_blocking(move || {
            let mut conn = match &p {
                Some(p) => {
                    distsoc_net::datadir::prepare_file(p)?;
                    open_conn(p)?
                }
                None => Connection::open_in_memory()?,
            };
            setup_writer(&mut conn, p.is_some(), busy)?;
            let salt = load_salt(&conn)?;
            let readers = match &p {
                Some(p) => {
                    distsoc_net::datadir::tighten_sidecars(p)?;
                    let mut v = Vec::with_capacity(READERS);
                    for _ in 0..2 {
                        v.push(open_reader(p, busy)?);
                    }
                    Some(Mutex::new(v))
                }
                None => None,
            };
            Ok::<_, StoreError>((conn, readers, salt))
        })
        .await
        .map_err(|e| StoreError::unavailable(format!("open task: {e}")))??;
        let registry = Arc::new(Registry::default());
        let (tx, rx) = mpsc::channel(JOB_QUEUE);
        let max_batch = opts.max_write_batch.max(1);
        let reg = Arc::clone(&registry);
        // Answers go through a task only on a multi-threaded runtime, whose
        // workers run it for as long as the runtime lives (a
        // current-thread runtime runs tasks only while it is driven, and
        // the store may be used from another one meanwhile).
        let answer_tx = (tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread)
            .then(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(answer_loop(rx));
                tx
            });
        std::thread::Builder::new()
            .name("anchor-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, reg, max_batch, answer_tx))?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs: tx,
                readers,
                path,
                registry,
                channels: ChannelCache::default(),
                acks: AppliedAcks::default(),
                salt,
                busy_timeout: busy,
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

    /// Runs `f` on the writer thread inside the current batch; answers
    /// after the commit. `f` runs again if another job of its batch fails
    /// ([`WriteJob`]), so it must redo all of its work on every call.
    async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&Connection) -> JobResult<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Job {
            f,
            result: None,
            reply: tx,
        });
        self.inner
            .jobs
            .send(job)
            .await
            .map_err(|_| StoreError::unavailable("sqlite writer stopped"))?;
        rx.await
            .map_err(|_| StoreError::unavailable("sqlite writer stopped"))?
    }

    /// Queues `f` for the writer thread like [`SqliteStore::write`] but
    /// does not wait for the commit: jobs run in the order they are queued,
    /// so it commits no later than any write queued after this returns.
    async fn write_detached<F>(&self, f: F) -> Result<(), StoreError>
    where
        F: Fn(&Connection) -> JobResult<()> + Send + 'static,
    {
        let (tx, _) = oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Job {
            f,
            result: None,
            reply: tx,
        });
        self.inner
            .jobs
            .send(job)
            .await
            .map_err(|_| StoreError::unavailable("sqlite writer stopped"))
    }

    /// Runs `f` in a read transaction on a reader connection (or on the
    /// writer for an in-memory database, where it may run more than once,
    /// like a write job).
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        if self.inner.readers.is_none() {
            return self.write(move |c| f(c).map(|r| (r, Vec::new()))).await;
        }
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let (Some(readers), Some(path)) = (&inner.readers, &inner.path) else {
                return Err(StoreError::corrupt("sqlite store", "no readers"));
            };
            let pooled = lock(readers).pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_reader(path, inner.busy_timeout)?,
            };
            let out = (|| {
                let tx = conn.unchecked_transaction()?;
                let r = f(&tx)?;
                tx.commit()?;
                Ok(r)
            })();
            let mut pool = lock(readers);
            if pool.len() < READERS {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::unavailable(format!("sqlite reader task: {e}")))?
    }

    pub(crate) async fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(migrations::sqlite_user_version).await
    }

    // -- channels -----------------------------------------------------------

    pub(crate) async fn sweep_expired(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.delete_in_chunks(
            "DELETE FROM messages WHERE id IN (
                SELECT id FROM messages WHERE expires_at_ms <= ?1
                 ORDER BY expires_at_ms LIMIT ?2)",
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
                SELECT seq FROM posts WHERE received_at_ms < ?1
                 ORDER BY received_at_ms LIMIT ?2)",
            before_ms,
        )
        .await
    }

    pub(crate) async fn post_volume_since(
        &self,
        since_ms: u64,
        bucket_ms: u64,
    ) -> Result<Vec<PostVolume>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT author, received_at_ms / ?2 AS b, count(*), sum(length(sync_post))
                   FROM posts WHERE received_at_ms >= ?1 GROUP BY author, b",
            )?;
            let mut rows = st.query(params![to_i64(since_ms), to_i64(bucket_ms)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(PostVolume {
                    author: PostingId(node_from("post author", col_blob(row, 0)?)?.0),
                    bucket_start_ms: col_u64(row, 1, "bucket")?.saturating_mul(bucket_ms),
                    posts: col_u64(row, 2, "count")?,
                    bytes: col_u64(row, 3, "bytes")?,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Runs `sql` (parameters: a time in ms, a row limit) with a limit of
    /// [`SWEEP_CHUNK`], one transaction per chunk, until a chunk deletes
    /// fewer rows; returns how many were deleted.
    async fn delete_in_chunks(&self, sql: &'static str, ms: u64) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let n = self
                .write(move |c| {
                    let n = c
                        .prepare_cached(sql)?
                        .execute(params![to_i64(ms), sql_limit(SWEEP_CHUNK)])?;
                    Ok((n, Vec::new()))
                })
                .await?;
            total = total.saturating_add(n as u64);
            if n < SWEEP_CHUNK {
                return Ok(total);
            }
        }
    }

    // -- audit --------------------------------------------------------------

    pub(crate) async fn audit(&self, row: AuditRow) -> Result<(), StoreError> {
        self.write(move |c| {
            insert_audit(c, &row)?;
            Ok(((), Vec::new()))
        })
        .await
    }

    pub(crate) async fn prune_audit_before(&self, before_ms: u64) -> Result<u64, StoreError> {
        self.write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM audit_log WHERE at_ms < ?1")?
                .execute([to_i64(before_ms)])?;
            Ok((n as u64, Vec::new()))
        })
        .await
    }

    pub(crate) async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, at_ms, kind, actor, channel, detail FROM audit_log
                  ORDER BY id DESC LIMIT ?1",
            )?;
            let mut rows = st.query([sql_limit(limit)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let actor = <[u8; 8]>::try_from(col_blob(row, 3)?)
                    .map_err(|_| StoreError::corrupt("audit actor", "length"))?;
                let channel: Option<Vec<u8>> = row.get(4)?;
                out.push(AuditRecord {
                    id: col_u64(row, 0, "audit id")?,
                    at_ms: col_u64(row, 1, "at_ms")?,
                    kind: AuditKind::parse(&row.get::<_, String>(2)?)?,
                    actor,
                    channel: match channel {
                        Some(b) => channel_from_col(&b)?,
                        None => None,
                    },
                    detail: row.get(5)?,
                });
            }
            Ok(out)
        })
        .await
    }

    // -- check-in -----------------------------------------------------------

    pub(crate) async fn check_in(&self, ci: CheckIn) -> Result<(), StoreError> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO checkins (node, addrs, is_anchor, last_seen_ms, verified_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (node) DO UPDATE SET
                    addrs = excluded.addrs,
                    is_anchor = excluded.is_anchor,
                    last_seen_ms = excluded.last_seen_ms,
                    verified_at_ms = excluded.verified_at_ms
                  WHERE excluded.last_seen_ms >= checkins.last_seen_ms",
            )?
            .execute(params![
                &ci.node.0[..],
                encode_addrs(&ci.addrs),
                ci.is_anchor,
                to_i64(ci.last_seen_ms),
                to_i64(ci.verified_at_ms)
            ])?;
            Ok(((), Vec::new()))
        })
        .await
    }

    pub(crate) async fn address(&self, node: NodeId) -> Result<Option<CheckIn>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {CHECKIN_COLS} FROM checkins WHERE node = ?1 AND verified_at_ms IS NOT NULL"
            ))?;
            let mut rows = st.query([&node.0[..]])?;
            match rows.next()? {
                Some(row) => Ok(Some(read_checkin(row)?)),
                None => Ok(None),
            }
        })
        .await
    }

    pub(crate) async fn bootstrap_candidates(
        &self,
        q: BootstrapQuery,
    ) -> Result<Vec<CheckIn>, StoreError> {
        self.read(move |c| {
            let collect =
                |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<Vec<CheckIn>, StoreError> {
                    let mut st = c.prepare_cached(sql)?;
                    let mut rows = st.query(p)?;
                    let mut out = Vec::new();
                    while let Some(row) = rows.next()? {
                        out.push(read_checkin(row)?);
                    }
                    Ok(out)
                };
            let seen = to_i64(q.seen_after_ms);
            let recent = collect(
                &format!(
                    "SELECT {CHECKIN_COLS} FROM checkins
                      WHERE last_seen_ms >= ?1 AND verified_at_ms IS NOT NULL
                      ORDER BY last_seen_ms DESC LIMIT ?2"
                ),
                &[&seen, &sql_limit(q.recent_limit)],
            )?;
            let anchors = collect(
                &format!(
                    "SELECT {CHECKIN_COLS} FROM checkins WHERE is_anchor = 1 AND last_seen_ms >= ?1
                        AND verified_at_ms IS NOT NULL
                      ORDER BY last_seen_ms DESC LIMIT ?2"
                ),
                &[&seen, &sql_limit(q.anchor_limit)],
            )?;
            let start = &q.sample_start[..];
            let mut sample = collect(
                &format!(
                    "SELECT {CHECKIN_COLS} FROM checkins WHERE node >= ?1 AND verified_at_ms IS NOT NULL
                      ORDER BY node LIMIT ?2"
                ),
                &[&start, &sql_limit(q.sample_limit)],
            )?;
            if sample.len() < q.sample_limit {
                let rest = q.sample_limit - sample.len();
                sample.extend(collect(
                    &format!(
                        "SELECT {CHECKIN_COLS} FROM checkins WHERE node < ?1 AND verified_at_ms IS NOT NULL
                          ORDER BY node LIMIT ?2"
                    ),
                    &[&start, &sql_limit(rest)],
                )?);
            }
            Ok(interleave(sample, recent, anchors))
        })
        .await
    }

    pub(crate) async fn forget_checkins_before(&self, before_ms: u64) -> Result<u64, StoreError> {
        self.write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM checkins WHERE last_seen_ms < ?1")?
                .execute([to_i64(before_ms)])?;
            Ok((n as u64, Vec::new()))
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
        self.write(move |c| {
            let n = if banned {
                c.prepare_cached(
                    "INSERT INTO bans (node, banned_at_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )?
                .execute(params![&node.0[..], to_i64(now_ms)])?
            } else {
                c.prepare_cached("DELETE FROM bans WHERE node = ?1")?
                    .execute([&node.0[..]])?
            };
            Ok((n > 0, Vec::new()))
        })
        .await
    }

    pub(crate) async fn bans(&self) -> Result<Vec<NodeId>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached("SELECT node FROM bans ORDER BY node")?;
            let mut rows = st.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let b: Vec<u8> = row.get(0)?;
                out.push(node_from("banned node", &b)?);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn setting(&self, name: &'static str) -> Result<Option<u64>, StoreError> {
        self.read(move |c| {
            let v: Option<i64> = c
                .prepare_cached("SELECT value FROM settings WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()?;
            v.map(|v| from_i64(name, v)).transpose()
        })
        .await
    }

    pub(crate) async fn set_setting(
        &self,
        name: &'static str,
        value: u64,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO settings (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![name, to_i64(value)])?;
            Ok(((), Vec::new()))
        })
        .await
    }

    pub(crate) async fn clear_setting(&self, name: &'static str) -> Result<bool, StoreError> {
        self.write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM settings WHERE name = ?1")?
                .execute([name])?;
            Ok((n > 0, Vec::new()))
        })
        .await
    }

    pub(crate) fn gauges(&self) -> StoreGauges {
        let jobs = &self.inner.jobs;
        StoreGauges {
            backend: "sqlite",
            write_queue: jobs.max_capacity() - jobs.capacity(),
            write_queue_capacity: jobs.max_capacity(),
            pool: None,
        }
    }

    // -- posts --------------------------------------------------------------

    pub(crate) async fn stats(&self) -> Result<Stats, StoreError> {
        self.read(|c| {
            let one = |sql: &str| -> Result<u64, StoreError> {
                let v: i64 = c.query_row(sql, [], |r| r.get(0))?;
                from_i64("count", v)
            };
            Ok(Stats {
                channels: one("SELECT count(*) FROM channels")?,
                queued_messages: one("SELECT count(*) FROM messages")?,
                queued_bytes: one("SELECT coalesce(sum(payload_len), 0) FROM messages")?,
                posts: one("SELECT count(*) FROM posts")?,
                checkins: one("SELECT count(*) FROM checkins")?,
            })
        })
        .await
    }

    pub(crate) async fn analyze(&self) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute_batch("ANALYZE")?;
            Ok(((), Vec::new()))
        })
        .await
    }

    pub(crate) async fn explain(&self, q: PlanQuery) -> Result<String, StoreError> {
        self.read(move |c| {
            let sqls: &[&str] = match q {
                PlanQuery::Fetch => &[FETCH_SQL],
                PlanQuery::Pull => &[
                    POSTS_BY_AUTHOR_SQL,
                    POSTS_BY_RECIPIENT_SQL,
                    TOMBSTONES_BY_AUTHOR_SQL,
                    TOMBSTONES_BY_RECIPIENT_SQL,
                ],
                PlanQuery::ListChannels => &[
                    WAITING_CHANNELS_SQL,
                    EMPTY_CHANNELS_A_SQL,
                    EMPTY_CHANNELS_B_SQL,
                ],
            };
            let mut out = Vec::new();
            for sql in sqls {
                let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let n = st.parameter_count();
                let params: Vec<i64> = vec![0; n];
                let mut rows = st.query(rusqlite::params_from_iter(params))?;
                while let Some(row) = rows.next()? {
                    out.push(row.get::<_, String>(3)?);
                }
            }
            Ok(out.join("\n"))
        })
        .await
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sample and recent candidates alternately, then anchors.
pub(crate) fn interleave(a: Vec<CheckIn>, b: Vec<CheckIn>, tail: Vec<CheckIn>) -> Vec<CheckIn> {
    let mut out = Vec::with_capacity(a.len() + b.len() + tail.len());
    let mut a = a.into_iter();
    let mut b = b.into_iter();
    loop {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
    out.extend(tail);
    out
}

/// Appends one audit row.
fn insert_audit(c: &Connection, row: &AuditRow) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO audit_log (at_ms, kind, actor, channel, detail)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        to_i64(row.at_ms),
        row.kind.as_str(),
        &row.actor[..],
        row.channel.as_ref().map(|c| &c.0[..]),
        row.detail
    ])?;
    Ok(())
}

fn channel_row(c: &Connection, id: &ChannelId) -> Result<Option<Channel>, StoreError> {
    let row: Option<(Vec<u8>, Vec<u8>, i64)> = c
        .prepare_cached("SELECT member_a, member_b, created_at_ms FROM channels WHERE id = ?1")?
        .query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(a, b, at)| {
        Ok(Channel {
            id: *id,
            members: [node_from("member", &a)?, node_from("member", &b)?],
            created_at_ms: from_i64("created_at_ms", at)?,
        })
    })
    .transpose()
}

/// Stores one message whose sender the caller has checked
/// (`AnchorStore::check_sender`: channels never change, so the check
/// needs no lock).
///
/// Insert first: a message with a `clientMessageId` already queued for
/// the same recipient, channel and sender conflicts on `messages_dedup`
/// and inserts nothing (`ON CONFLICT DO NOTHING`); only then is the
/// original read. The common case, a new message, is one statement (the
/// unique index is probed by the insert itself) instead of a lookup and
/// an insert.
fn enqueue_one(c: &Connection, m: &NewMessage) -> Result<Enqueued, StoreError> {
    let chan = channel_col(m.channel.as_ref());
    let inserted = c
        .prepare_cached(
            "INSERT INTO messages
                (recipient, channel, sender, client_msg_id, received_at_ms, expires_at_ms, payload_len, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            &m.recipient.0[..],
            chan,
            &m.sender.0[..],
            m.client_message_id.as_ref().map(|c| &c[..]),
            to_i64(m.received_at_ms),
            to_i64(m.expires_at_ms),
            sql_limit(m.payload.len()),
            &m.payload
        ])?;
    if inserted == 1 {
        return Ok(Enqueued {
            message_id: from_i64("message id", c.last_insert_rowid())?,
            received_at_ms: m.received_at_ms,
            expires_at_ms: m.expires_at_ms,
            duplicate: false,
        });
    }
    // The only uniqueness constraint an insert can meet is the dedup
    // index (the rowid is drawn by AUTOINCREMENT), so there is a message
    // with this clientMessageId.
    let found: Option<(i64, i64, i64)> = c
        .prepare_cached(
            "SELECT id, received_at_ms, expires_at_ms FROM messages
              WHERE recipient = ?1 AND channel = ?2 AND sender = ?3 AND client_msg_id = ?4",
        )?
        .query_row(
            params![
                &m.recipient.0[..],
                chan,
                &m.sender.0[..],
                m.client_message_id.as_ref().map(|c| &c[..])
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((id, recv, exp)) = found else {
        return Err(StoreError::corrupt(
            "messages",
            "an insert conflicted but no message has its clientMessageId",
        ));
    };
    Ok(Enqueued {
        message_id: from_i64("message id", id)?,
        received_at_ms: from_i64("received_at_ms", recv)?,
        expires_at_ms: from_i64("expires_at_ms", exp)?,
        duplicate: true,
    })
}

/// One page of a queue: columns are read lazily, so the payload of the row
/// that does not fit is never loaded.
fn read_page(c: &Connection, q: &FetchQuery) -> Result<FetchPage, StoreError> {
    let mut st = c.prepare_cached(FETCH_SQL)?;
    let mut rows = st.query(params![
        &q.recipient.0[..],
        channel_col(q.channel.as_ref()),
        to_i64(q.now_ms),
        sql_limit(q.max_messages.saturating_add(1))
    ])?;
    let mut page = FetchPage::default();
    let mut bytes = 0usize;
    while let Some(row) = rows.next()? {
        if page.messages.len() >= q.max_messages {
            page.more = true;
            break;
        }
        let len = usize::try_from(row.get::<_, i64>(1)?)
            .map_err(|e| StoreError::corrupt("payload_len", e))?;
        if !page.messages.is_empty() && bytes.saturating_add(len) > q.max_bytes {
            page.more = true;
            break;
        }
        bytes = bytes.saturating_add(len);
        page.messages.push(StoredMessage {
            message_id: col_u64(row, 0, "message id")?,
            channel: q.channel,
            sender: node_from("sender", col_blob(row, 2)?)?,
            received_at_ms: col_u64(row, 3, "received_at_ms")?,
            expires_at_ms: col_u64(row, 4, "expires_at_ms")?,
            payload: col_blob(row, 5)?.to_vec(),
        });
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::writer::run_batch;
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn message(payload: &[u8]) -> NewMessage {
        NewMessage {
            channel: None,
            sender: NodeId([1; 32]),
            recipient: NodeId([2; 32]),
            payload: payload.to_vec(),
            client_message_id: None,
            received_at_ms: 1,
            expires_at_ms: u64::from(u32::MAX),
        }
    }

    /// A job that stores `payload`, then fails (`fail`), panics (`panic`)
    /// or succeeds; counts its runs.
    fn job(
        payload: &'static [u8],
        fail: bool,
        panic: bool,
        runs: &Arc<AtomicUsize>,
    ) -> (
        Box<dyn WriteJob>,
        oneshot::Receiver<Result<u64, StoreError>>,
    ) {
        let runs = Arc::clone(runs);
        let (tx, rx) = oneshot::channel();
        let f = move |c: &Connection| -> JobResult<u64> {
            runs.fetch_add(1, Ordering::SeqCst);
            let m = message(payload);
            let e = enqueue_one(c, &m)?;
            assert!(!panic, "job panics after its write");
            if fail {
                return Err(StoreError::corrupt("test job", "refused after its write"));
            }
            Ok((e.message_id, vec![QueueKey::new(&m.recipient, None)]))
        };
        let j: Box<dyn WriteJob> = Box::new(Job {
            f,
            result: None,
            reply: tx,
        });
        (j, rx)
    }

    fn stored(conn: &Connection) -> Vec<Vec<u8>> {
        let mut st = conn
            .prepare("SELECT payload FROM messages ORDER BY id")
            .unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// On a multi-threaded runtime the writer answers through a task on
    /// the runtime: concurrent writes, some refused, each get their own
    /// outcome after the commit, and only the accepted ones are stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_answered_through_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(Some(dir.path().join("a.sqlite")), &StoreOptions::default())
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for t in 0u8..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0u8..25 {
                    let refuse = i % 5 == 4;
                    let out = s
                        .write(move |c| {
                            let e = enqueue_one(
                                c,
                                &NewMessage {
                                    channel: None,
                                    sender: NodeId([t; 32]),
                                    recipient: NodeId([200; 32]),
                                    payload: vec![t, i],
                                    client_message_id: None,
                                    received_at_ms: 1,
                                    expires_at_ms: 1_000_000,
                                },
                            )?;
                            if refuse {
                                return Err(StoreError::corrupt("test", "refused"));
                            }
                            Ok((e.message_id, Vec::new()))
                        })
                        .await;
                    match out {
                        Ok(id) if !refuse => ids.push(id),
                        Err(StoreError::Corrupt { .. }) if refuse => {}
                        other => panic!("write {t}/{i}: {other:?}"),
                    }
                }
                ids
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.extend(t.await.unwrap());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 8 * 20);
        let stored: i64 = s
            .read(|c| Ok(c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(stored, 8 * 20);
    }

    /// A batch whose jobs all succeed runs each job once (no savepoint
    /// pass); a batch with a job that fails after writing and one that
    /// panics after writing answers those two with their errors and
    /// commits the others, each run twice (the second time in its own
    /// savepoint), with nothing of the failed jobs stored.
    #[test]
    fn a_failing_job_rolls_back_alone() {
        let mut conn = Connection::open_in_memory().unwrap();
        setup_writer(&mut conn, false, Duration::from_secs(1)).unwrap();
        let registry = Registry::default();

        let runs: Vec<Arc<AtomicUsize>> = (0..5).map(|_| Arc::default()).collect();
        let (mut jobs, mut rxs): (Vec<_>, Vec<_>) = [b"a", b"b", b"c"]
            .iter()
            .zip(&runs)
            .map(|(p, n)| job(*p, false, false, n))
            .unzip();
        run_batch(&conn, &mut jobs, &registry);
        assert!(rxs.iter_mut().all(|rx| matches!(rx.try_recv(), Ok(Ok(_)))));
        assert!(runs.iter().take(3).all(|n| n.load(Ordering::SeqCst) == 1));
        assert_eq!(stored(&conn), [b"a", b"b", b"c"]);
        assert!(conn.is_autocommit());

        let runs: Vec<Arc<AtomicUsize>> = (0..5).map(|_| Arc::default()).collect();
        let spec: [(&'static [u8], bool, bool); 5] = [
            (b"d", false, false),
            (b"refused", true, false),
            (b"e", false, false),
            (b"panics", false, true),
            (b"f", false, false),
        ];
        let (mut jobs, rxs): (Vec<_>, Vec<_>) = spec
            .iter()
            .zip(&runs)
            .map(|(&(p, fail, panic), n)| job(p, fail, panic, n))
            .unzip();
        run_batch(&conn, &mut jobs, &registry);
        let answers: Vec<bool> = rxs
            .into_iter()
            .map(|mut rx| rx.try_recv().unwrap().is_ok())
            .collect();
        assert_eq!(answers, [true, false, true, false, true]);
        let counts: Vec<usize> = runs.iter().map(|n| n.load(Ordering::SeqCst)).collect();
        assert_eq!(counts, [2, 2, 1, 1, 1], "rolled back at the first failure");
        assert_eq!(stored(&conn), [b"a", b"b", b"c", b"d", b"e", b"f"]);
        assert!(conn.is_autocommit());
    }
}
