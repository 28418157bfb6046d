//! The anchor's storage layer: one interface, two backends.
//!
//! What it keeps: the 1:1 DM channels (two members each) and their message
//! queues, the legacy per-recipient mailboxes, a redacted audit log,
//! check-ins (the address cache and bootstrap peers), and posts for
//! store-and-forward and pull sync with recipient match.
//!
//! [`AnchorStore`] is an enum over the two backends — [`SqliteStore`]
//! (embedded, the default) and [`PgStore`] (PostgreSQL through
//! `deadpool-postgres`, for production and for several anchor processes on
//! one database). Both pass the same test suite (`anchor/tests/store_suite.rs`).
//! Times are milliseconds passed in by the caller; the store never reads the
//! clock, and never decides protocol rules: posts are validated with
//! [`SyncPost::validate`], pull decisions are [`PullFilter::decide`]'s.
//!
//! # Opening
//!
//! [`AnchorStore::open`] takes a URL: `sqlite:PATH`, `sqlite::memory:`,
//! `postgres://…` / `postgresql://…`, or a libpq `key=value` string
//! (`host=/run/postgresql dbname=anchor user=anchor`; a `host` that starts
//! with `/` is a unix-socket directory). It applies the missing schema
//! migrations (see `migrations.rs`) and refuses a database written by a newer
//! build ([`StoreError::TooNew`]). Open it inside the tokio runtime that will
//! use it: the PostgreSQL backend spawns its background tasks there.
//!
//! # Queues, ids and acknowledgement
//!
//! A queue is `(recipient, channel)`, with the legacy mailbox as the queue
//! whose channel is `None`. Message ids come from one store-wide counter and
//! never go back (SQLite `AUTOINCREMENT`, a PostgreSQL sequence); within a
//! queue they are also in *commit* order — SQLite has one writer, and on
//! PostgreSQL ids are drawn under a per-queue transaction-scoped advisory
//! lock — so a `Fetch` with `ackThrough = n` can never delete a message it
//! has not returned. [`AnchorStore::enqueue`] returns only after the commit:
//! on SQLite the database runs in WAL mode with `synchronous = FULL`; on
//! PostgreSQL the server's `synchronous_commit` (default `on`) applies.
//!
//! # Batching
//!
//! Writes that arrive in volume are group-committed. SQLite: every write goes
//! to one writer thread, which takes everything queued (up to
//! [`StoreOptions::max_write_batch`]) into one transaction and answers each
//! request after the one `COMMIT`; a refused request does not affect the
//! others (if one fails, the batch is rolled back and run again with each
//! request in its own savepoint). PostgreSQL: enqueues, audit
//! events and check-ins go to a few worker tasks that do the same with
//! multi-row `UNNEST` statements. [`AnchorStore::enqueue_batch`] and
//! [`AnchorStore::insert_posts`] are one transaction each.
//!
//! # Waiting for messages
//!
//! [`AnchorStore::waiter`] registers interest in a queue; the returned
//! [`Waiter`] resolves once a message for that queue is committed after
//! the registration, by this process or — on PostgreSQL — by any process on
//! the same database (`NOTIFY distsoc_mailbox` in the enqueue transaction, a
//! dedicated `LISTEN` connection per store that reconnects with backoff and
//! wakes every waiter when it does, so nothing sent while it was down is
//! missed). Register before the first fetch:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use distsoc_anchor::store::{AnchorStore, StoreError};
//! # use distsoc_protocol::ids::{ChannelId, NodeId};
//! # async fn example(store: AnchorStore, me: NodeId, channel: ChannelId,
//! #     ack: u64, now: u64, wait: Duration) -> Result<(), StoreError> {
//! let waiter = store.waiter(me, Some(channel));
//! let page = store.fetch(me, Some(channel), ack, 100, 1 << 20, now).await?;
//! if page.messages.is_empty() {
//!     if tokio::time::timeout(wait, waiter.wait()).await.is_ok() {
//!         /* fetch again */
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Failures
//!
//! Every PostgreSQL call is bounded: the pool waits at most
//! [`StoreOptions::connect_timeout`] for a connection and every operation at
//! most [`StoreOptions::op_timeout`]. A database that is down, restarting or
//! out of connections is [`StoreError::Unavailable`]
//! ([`StoreError::is_unavailable`]) — answer `unavailable` with a retry-after
//! — and the pool reconnects by itself once the server is back.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use distsoc_protocol::codec;
use distsoc_protocol::error::{ErrorCode, StorageFault, ToWireError, WireCode};
use distsoc_protocol::ids::{ChannelId, NodeId, PostId, PostingId};
use distsoc_protocol::limits::MAX_MAILBOX_PAYLOAD_BYTES;
use distsoc_protocol::messages::content::{
    DeleteRecordBody, IngestError, SignedDeleteRecord, SignedVisibilityUpdate, SyncPost,
};
use distsoc_protocol::messages::mailbox::ChannelCursor;
use distsoc_protocol::messages::signed::Signed;
use distsoc_protocol::messages::stored::StoredSyncPost;
use distsoc_protocol::sync::{Audience, PullFilter};

mod bootstrap;
mod cache;
mod error;
mod mailbox;
mod migrations;
mod postgres;
mod pull;
mod sqlite;
mod types;
mod wake;

pub use error::{describe_pg, sqlite_fault, StoreError};
pub use types::*;

pub use postgres::{PgStore, NOTIFY_CHANNEL};
pub use sqlite::SqliteStore;
pub use wake::Waiter;

#[cfg(test)]
use bootstrap::prefix_of;
pub(crate) use bootstrap::BootstrapQuery;
use bootstrap::{anchor_quota, pick_diverse};
use cache::ChannelCache;
pub use cache::CHANNEL_CACHE_ENTRIES;
pub(crate) use mailbox::{
    channel_col, channel_from_col, check_member, check_message, fetch_cut, random_channel_id,
    AuditRow, FetchQuery,
};
pub(crate) use pull::PullRows;
use wake::QueueKey;

/// Largest mailbox payload, bytes (5 MiB, `schema/README.md` §9).
pub const MAX_PAYLOAD_BYTES: usize = MAX_MAILBOX_PAYLOAD_BYTES;

/// Largest canonical `SyncPost` stored, bytes (the `PushPost` frame cap, as
/// in the node's store).
pub const MAX_STORED_SYNC_POST_BYTES: usize = 2 * 1024 * 1024;

/// Most addresses kept per check-in.
pub const MAX_CHECKIN_ADDRS: usize = 16;

/// Most channels in one page of [`AnchorStore::list_channels`] (the
/// `ListChannelsResponse` list limit).
pub const MAX_CHANNELS_LISTED: usize = distsoc_protocol::messages::mailbox::MAX_CHANNELS;

/// Most peers [`AnchorStore::bootstrap_peers`] returns.
pub const MAX_BOOTSTRAP_PEERS: usize = distsoc_protocol::limits::BOOTSTRAP_MAX_PEERS;

/// Rows deleted per transaction by [`AnchorStore::sweep_expired`].
const SWEEP_CHUNK: usize = 5_000;

/// Longest audit `detail` stored, characters.
pub const MAX_AUDIT_DETAIL_CHARS: usize = 512;

/// Bytes of the redacted actor id kept in the audit log.
pub const REDACTED_ID_LEN: usize = 8;

// ---------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------

/// The anchor's store: SQLite or PostgreSQL. Cheap to clone (all clones
/// share one backend); `Send + Sync`.
#[derive(Debug, Clone)]
pub enum AnchorStore {
    /// Embedded SQLite (the default).
    Sqlite(SqliteStore),
    /// PostgreSQL through a connection pool.
    Postgres(PgStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnchorStore::Sqlite($s) => $e,
            AnchorStore::Postgres($s) => $e,
        }
    };
}

/// Where a store URL points.
#[derive(Debug)]
enum Target {
    SqliteMemory,
    SqliteFile(std::path::PathBuf),
    Postgres(Box<tokio_postgres::Config>),
}

fn parse_url(url: &str) -> Result<Target, StoreError> {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("sqlite:") {
        if rest == ":memory:" || rest == "//:memory:" {
            return Ok(Target::SqliteMemory);
        }
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(StoreError::InvalidArgument(
                "sqlite URL without a path".into(),
            ));
        }
        return Ok(Target::SqliteFile(path.into()));
    }
    let is_pg_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let is_key_value = !url.contains("://") && url.contains('=');
    if is_pg_url || is_key_value {
        let cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::InvalidArgument(format!("postgres URL: {e}")))?;
        return Ok(Target::Postgres(Box::new(cfg)));
    }
    Err(StoreError::InvalidArgument(
        "store URL must be sqlite:PATH, sqlite::memory:, postgres://… or a key=value string".into(),
    ))
}

/// Where a store URL points, for messages: the backend, database, user,
/// host(s) and port(s) — never a password. An unparsable URL is described
/// as such.
pub fn describe_target(url: &str) -> String {
    match parse_url(url) {
        Ok(Target::SqliteMemory) => "SQLite in memory".into(),
        Ok(Target::SqliteFile(path)) => format!("SQLite database {}", path.display()),
        Ok(Target::Postgres(cfg)) => {
            use tokio_postgres::config::Host;
            let user = cfg.get_user().unwrap_or("(none given)");
            let db = cfg.get_dbname().unwrap_or(user);
            let ports = cfg.get_ports();
            let hosts: Vec<String> = cfg
                .get_hosts()
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                    match h {
                        Host::Tcp(name) => format!("{name}:{port}"),
                        Host::Unix(dir) => format!("unix socket {}/.s.PGSQL.{port}", dir.display()),
                    }
                })
                .collect();
            let hosts = if hosts.is_empty() {
                "no host given".to_string()
            } else {
                hosts.join(", ")
            };
            format!("PostgreSQL database \"{db}\" as user \"{user}\" at {hosts}")
        }
        Err(e) => format!("store {url:?} ({e})"),
    }
}

impl AnchorStore {
    /// Opens the store at `url` with default [`StoreOptions`] and applies
    /// the missing migrations. See the [module docs](self) for URL forms.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// [`AnchorStore::open`] with explicit options.
    pub async fn open_with(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        Ok(match parse_url(url)? {
            Target::SqliteMemory => AnchorStore::Sqlite(SqliteStore::open(None, opts).await?),
            Target::SqliteFile(path) => {
                AnchorStore::Sqlite(SqliteStore::open(Some(path), opts).await?)
            }
            Target::Postgres(cfg) => AnchorStore::Postgres(PgStore::open(*cfg, opts).await?),
        })
    }

    /// Which backend: `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnchorStore::Sqlite(_) => "sqlite",
            AnchorStore::Postgres(_) => "postgres",
        }
    }

    /// The schema version of the open database (the number of migrations
    /// applied).
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        dispatch!(self, s => s.schema_version().await)
    }

    /// The newest schema version this build knows, per backend.
    pub fn supported_schema_version(&self) -> u32 {
        match self {
            AnchorStore::Sqlite(_) => migrations::sqlite_supported(),
            AnchorStore::Postgres(_) => migrations::postgres_supported(),
        }
    }

    // -- channels -----------------------------------------------------------

    /// Creates the channel between `caller` and `peer`, or returns the
    /// existing one (per unordered pair). The id is 16 bytes from the OS
    /// CSPRNG; members are sorted. `caller == peer` is
    /// [`StoreError::InvalidArgument`].
    pub async fn create_channel(
        &self,
        caller: NodeId,
        peer: NodeId,
        now_ms: u64,
    ) -> Result<Channel, StoreError> {
        if caller == peer {
            return Err(StoreError::InvalidArgument(
                "a channel needs two different members".into(),
            ));
        }
        let members = if caller < peer {
            [caller, peer]
        } else {
            [peer, caller]
        };
        let c = dispatch!(self, s => s.create_channel(members, now_ms).await)?;
        self.channel_cache().insert(c);
        Ok(c)
    }

    /// The channel with this id. Channels never change once created, so
    /// one read once is served from memory afterwards (see `cache.rs`);
    /// an unknown id is looked up every time.
    pub async fn channel(&self, id: ChannelId) -> Result<Option<Channel>, StoreError> {
        let cache = self.channel_cache();
        if let Some(c) = cache.get(&id) {
            return Ok(Some(c));
        }
        let found = dispatch!(self, s => s.channel(id).await)?;
        if let Some(c) = found {
            cache.insert(c);
        }
        Ok(found)
    }

    fn channel_cache(&self) -> &ChannelCache {
        dispatch!(self, s => s.channel_cache())
    }

    /// Refuses `m` unless its sender may write to its queue: in channel
    /// mode the sender is a member and the recipient the other member
    /// ([`StoreError::Unauthorized`], also for an unknown channel).
    async fn check_sender(&self, m: &NewMessage) -> Result<(), StoreError> {
        match m.channel {
            None => Ok(()),
            Some(id) => check_member(m, self.channel(id).await?.as_ref()),
        }
    }

    /// The first page (at most [`MAX_CHANNELS_LISTED`]) of
    /// [`AnchorStore::list_channels`] over all of `member`'s channels.
    pub async fn channels_of(&self, member: NodeId) -> Result<Vec<ChannelSummary>, StoreError> {
        Ok(self
            .list_channels(member, None, MAX_CHANNELS_LISTED, false)
            .await?
            .channels)
    }

    /// One page of the channels `member` belongs to, each with the number
    /// of messages queued for `member` (the `ListChannels` order of
    /// `schema/mailbox.capnp`): first the channels with messages waiting,
    /// then (unless `pending_only`) the others, each group by channel id,
    /// starting after `after`. At most `limit` (clamped to
    /// 1..=[`MAX_CHANNELS_LISTED`]) channels. Each phase is an index range
    /// scan (`messages_by_queue`; `channels_by_member_a_id` /
    /// `channels_by_member_b_id`), so a page costs the same at 10 or 10^5
    /// channels.
    pub async fn list_channels(
        &self,
        member: NodeId,
        after: Option<ChannelCursor>,
        limit: usize,
        pending_only: bool,
    ) -> Result<ChannelPage, StoreError> {
        let limit = limit.clamp(1, MAX_CHANNELS_LISTED);
        // One more than the page to learn whether the listing continues.
        let want = limit + 1;
        let (mut waiting, mut from) = match after {
            None => (true, None),
            Some(c) => (c.waiting, Some(c.last)),
        };
        let mut out: Vec<(bool, ChannelSummary)> = Vec::new();
        loop {
            if !waiting && pending_only {
                break;
            }
            let n = want - out.len();
            let rows = if waiting {
                dispatch!(self, s => s.waiting_channels(member, from, n).await)?
            } else {
                dispatch!(self, s => s.empty_channels(member, from, n).await)?
            };
            out.extend(rows.into_iter().map(|c| (waiting, c)));
            if out.len() >= want || !waiting {
                break;
            }
            waiting = false;
            from = None;
        }
        let more = out.len() > limit;
        out.truncate(limit);
        let next = if more {
            out.last().map(|(waiting, c)| ChannelCursor {
                waiting: *waiting,
                last: c.id,
            })
        } else {
            None
        };
        Ok(ChannelPage {
            channels: out.into_iter().map(|(_, c)| c).collect(),
            more,
            next,
        })
    }

    /// Messages queued in `member`'s legacy mailbox.
    pub async fn legacy_queued(&self, member: NodeId) -> Result<u64, StoreError> {
        dispatch!(self, s => s.legacy_queued(member).await)
    }

    // -- mailbox ------------------------------------------------------------

    /// Queues one message and returns after the commit; then wakes the
    /// queue's waiters. Group-committed with concurrent writes.
    ///
    /// Refused: an empty payload ([`StoreError::InvalidArgument`]), over
    /// [`MAX_PAYLOAD_BYTES`] ([`StoreError::TooLarge`]), and in channel mode
    /// a sender that is not a member, a recipient that is not the other
    /// member, or an unknown channel ([`StoreError::Unauthorized`]). A
    /// repeated `client_message_id` (same queue, same sender) returns the
    /// original with `duplicate = true` and stores nothing.
    pub async fn enqueue(&self, m: NewMessage) -> Result<Enqueued, StoreError> {
        check_message(&m)?;
        self.check_sender(&m).await?;
        dispatch!(self, s => s.enqueue(m, None).await)
    }

    /// [`AnchorStore::enqueue`] that also appends `audit` (see
    /// [`AnchorStore::audit`]) in the same transaction as the message: both
    /// are committed, or neither. Nothing is audited for a refused message.
    pub async fn enqueue_audited(
        &self,
        m: NewMessage,
        audit: AuditEvent,
    ) -> Result<Enqueued, StoreError> {
        check_message(&m)?;
        self.check_sender(&m).await?;
        let row = AuditRow::new(self.salt(), audit);
        dispatch!(self, s => s.enqueue(m, Some(row)).await)
    }

    fn salt(&self) -> &[u8; 32] {
        dispatch!(self, s => s.salt())
    }

    /// Queues many messages in one transaction: all or nothing (the first
    /// refusal fails the call and nothing is stored). Results in input
    /// order.
    pub async fn enqueue_batch(&self, ms: Vec<NewMessage>) -> Result<Vec<Enqueued>, StoreError> {
        for m in &ms {
            check_message(m)?;
            self.check_sender(m).await?;
        }
        if ms.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self, s => s.enqueue_batch(ms).await)
    }

    /// `recipient`'s queue in `channel` (or its legacy mailbox): first
    /// deletes the messages with id `<= ack_through` in that queue (0
    /// acknowledges nothing), then returns the unexpired ones in id order —
    /// at most `max_messages` (at least 1 is used) and `max_bytes` of
    /// payload, but always at least one message if any is queued. `more`
    /// says more are queued. Only ever reads `recipient`'s own queue;
    /// whether `recipient` may use `channel` is the caller's check.
    pub async fn fetch(
        &self,
        recipient: NodeId,
        channel: Option<ChannelId>,
        ack_through: u64,
        max_messages: usize,
        max_bytes: usize,
        now_ms: u64,
    ) -> Result<FetchPage, StoreError> {
        let q = FetchQuery {
            recipient,
            channel,
            ack_through,
            max_messages: max_messages.max(1),
            max_bytes,
            now_ms,
            audit: None,
        };
        self.fetch_query(q).await
    }

    /// [`AnchorStore::fetch`] that, when it returns messages, also appends
    /// a `receive` audit event for `recipient` (detail `"{n} messages"`,
    /// at `now_ms`) in the transaction that applies `ack_through`: the
    /// acknowledgement and its audit row commit together, with one commit.
    pub async fn fetch_audited(
        &self,
        recipient: NodeId,
        channel: Option<ChannelId>,
        ack_through: u64,
        max_messages: usize,
        max_bytes: usize,
        now_ms: u64,
    ) -> Result<FetchPage, StoreError> {
        let audit = AuditEvent {
            at_ms: now_ms,
            kind: AuditKind::Receive,
            actor: recipient,
            channel,
            detail: String::new(),
        };
        let q = FetchQuery {
            recipient,
            channel,
            ack_through,
            max_messages: max_messages.max(1),
            max_bytes,
            now_ms,
            audit: Some(AuditRow::new(self.salt(), audit)),
        };
        self.fetch_query(q).await
    }

    /// Runs a fetch. An acknowledgement whose delete this store has
    /// already committed (`cache::AppliedAcks`: the usual case of a poll that
    /// found nothing) is dropped, so the fetch is a read; one that
    /// deletes is recorded once committed.
    async fn fetch_query(&self, mut q: FetchQuery) -> Result<FetchPage, StoreError> {
        let acks = dispatch!(self, s => s.applied_acks());
        let queue = QueueKey::new(&q.recipient, q.channel.as_ref());
        let ack = q.ack_through;
        if ack > 0 && acks.covers(&queue, ack) {
            q.ack_through = 0;
        }
        let deletes = q.ack_through > 0;
        let page = dispatch!(self, s => s.fetch(q).await)?;
        if deletes {
            acks.applied(queue, ack);
        }
        Ok(page)
    }

    /// A [`Waiter`] for `(recipient, channel)`: resolves once a message for
    /// that queue is committed after this call (in this process, or on
    /// PostgreSQL in any process on the same database). Register it before
    /// the fetch whose emptiness makes you wait.
    pub fn waiter(&self, recipient: NodeId, channel: Option<ChannelId>) -> Waiter {
        let key = QueueKey::new(&recipient, channel.as_ref());
        dispatch!(self, s => s.registry().waiter(key))
    }

    /// Whether waiters hear about enqueues by other processes right now:
    /// `None` on SQLite (in-process only), on PostgreSQL whether the
    /// `LISTEN` connection is up (it reconnects by itself; while it is down,
    /// waiters are woken when it comes back). For health checks.
    pub fn listener_connected(&self) -> Option<bool> {
        match self {
            AnchorStore::Sqlite(_) => None,
            AnchorStore::Postgres(s) => Some(s.listening()),
        }
    }

    /// Watches whether the database is reachable, for the health service:
    /// `None` on SQLite (embedded, always there); on PostgreSQL the state
    /// of the dedicated `LISTEN` connection, which notices a lost server at
    /// once (the server closes it) or within its ping interval, and comes
    /// back when its reconnect (with backoff, at most 2 s apart) succeeds.
    pub fn reachable_watch(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        match self {
            AnchorStore::Sqlite(_) => None,
            AnchorStore::Postgres(s) => Some(s.listening_watch()),
        }
    }

    /// In-memory gauges (write queue, connection pool) for metrics; no
    /// database access.
    pub fn gauges(&self) -> StoreGauges {
        dispatch!(self, s => s.gauges())
    }

    /// How many queues currently have registered waiters (diagnostics; the
    /// registry drops a queue's entry with its last waiter).
    pub fn waiting_queues(&self) -> usize {
        dispatch!(self, s => s.registry().len())
    }

    /// Deletes every expired message (`expires_at_ms <= now_ms`), in
    /// chunks of a few thousand rows per transaction; returns how many.
    pub async fn sweep_expired(&self, now_ms: u64) -> Result<u64, StoreError> {
        dispatch!(self, s => s.sweep_expired(now_ms).await)
    }

    /// Deletes stored posts received before `before_ms` (post retention;
    /// their recipient index rows go with them), in chunks; returns how
    /// many. Pull cursors stay valid: later posts keep their `seq`.
    pub async fn prune_posts_received_before(&self, before_ms: u64) -> Result<u64, StoreError> {
        dispatch!(self, s => s.prune_posts_received_before(before_ms).await)
    }

    /// Stored posts received at or after `since_ms`, per author and per
    /// `bucket_ms`-long time bucket (`received_at_ms / bucket_ms`): count
    /// and canonical bytes. Seeds the deposit quotas at start; one scan of
    /// the receive-time index over the quota window.
    pub async fn post_volume_since(
        &self,
        since_ms: u64,
        bucket_ms: u64,
    ) -> Result<Vec<PostVolume>, StoreError> {
        let bucket_ms = bucket_ms.max(1);
        dispatch!(self, s => s.post_volume_since(since_ms, bucket_ms).await)
    }

    // -- audit --------------------------------------------------------------

    /// Appends an audit event (group-committed). The actor is stored only
    /// as [`AnchorStore::redact`] of it.
    ///
    /// `detail` is cleaned before storing: NUL and other control characters
    /// become spaces (PostgreSQL `TEXT` refuses NUL, and one bad event must
    /// not fail the enqueues group-committed with it) and it is cut to
    /// [`MAX_AUDIT_DETAIL_CHARS`] characters.
    pub async fn audit(&self, e: AuditEvent) -> Result<(), StoreError> {
        let row = AuditRow::new(self.salt(), e);
        dispatch!(self, s => s.audit(row).await)
    }

    /// Deletes audit entries older than `before_ms` (retention); returns
    /// how many.
    pub async fn prune_audit_before(&self, before_ms: u64) -> Result<u64, StoreError> {
        dispatch!(self, s => s.prune_audit_before(before_ms).await)
    }

    /// The redacted form of an identity as the audit log stores it: the
    /// first [`REDACTED_ID_LEN`] bytes of BLAKE3 keyed with this store's
    /// secret salt (random per database, kept in its `meta` table). Use it
    /// to correlate log lines with audit entries.
    pub fn redact(&self, id: &NodeId) -> [u8; REDACTED_ID_LEN] {
        redact(self.salt(), id)
    }

    /// The newest audit entries, newest first, at most `limit`.
    pub async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        dispatch!(self, s => s.recent_audit(limit).await)
    }

    // -- check-in, address cache, bootstrap ---------------------------------

    /// Records that `node` checked in at `addrs` (1..=[`MAX_CHECKIN_ADDRS`]
    /// addresses), verified now. An older check-in than the one held
    /// changes nothing. See [`AnchorStore::check_in_verified`].
    pub async fn check_in(
        &self,
        node: NodeId,
        addrs: &[SocketAddr],
        is_anchor: bool,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.check_in_verified(node, addrs, is_anchor, now_ms, now_ms)
            .await
    }

    /// Records that `node` was seen at `seen_ms` at `addrs`
    /// (1..=[`MAX_CHECKIN_ADDRS`] addresses) that the anchor verified at
    /// `verified_at_ms` by dialling back with the NodeId pinned. Pass only
    /// verified addresses: whatever is stored here is served by
    /// [`AnchorStore::address`] and [`AnchorStore::bootstrap_peers`]. An
    /// older check-in than the one held changes nothing.
    pub async fn check_in_verified(
        &self,
        node: NodeId,
        addrs: &[SocketAddr],
        is_anchor: bool,
        seen_ms: u64,
        verified_at_ms: u64,
    ) -> Result<(), StoreError> {
        let now_ms = seen_ms;
        if addrs.is_empty() || addrs.len() > MAX_CHECKIN_ADDRS {
            return Err(StoreError::InvalidArgument(format!(
                "a check-in carries 1..={MAX_CHECKIN_ADDRS} addresses, got {}",
                addrs.len()
            )));
        }
        let c = CheckIn {
            node,
            addrs: addrs.to_vec(),
            is_anchor,
            last_seen_ms: now_ms,
            verified_at_ms,
        };
        dispatch!(self, s => s.check_in(c).await)
    }

    /// `node`'s latest verified check-in (compare `last_seen_ms` with your
    /// window).
    pub async fn address(&self, node: NodeId) -> Result<Option<CheckIn>, StoreError> {
        dispatch!(self, s => s.address(node).await)
    }

    /// Up to `want` (at most [`MAX_BOOTSTRAP_PEERS`]) peers with verified
    /// addresses seen at or after `seen_after_ms`, none in `exclude`, chosen for diversity: some
    /// anchors (about a tenth), then one peer per address prefix (/16 for
    /// IPv4, /32 for IPv6) before any prefix repeats.
    ///
    /// The candidates come from bounded index scans only — the most
    /// recently seen, the most recent anchors, and a sample from a random
    /// point of the node-id key space — so the cost does not grow with the
    /// table.
    pub async fn bootstrap_peers(
        &self,
        want: usize,
        exclude: &[NodeId],
        seen_after_ms: u64,
    ) -> Result<Vec<CheckIn>, StoreError> {
        let want = want.min(MAX_BOOTSTRAP_PEERS);
        if want == 0 {
            return Ok(Vec::new());
        }
        let per_source = want.saturating_mul(3).saturating_add(exclude.len());
        let mut start = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut start);
        let q = BootstrapQuery {
            seen_after_ms,
            recent_limit: per_source,
            anchor_limit: anchor_quota(want)
                .saturating_mul(2)
                .saturating_add(exclude.len()),
            sample_start: start,
            sample_limit: per_source,
        };
        let candidates = dispatch!(self, s => s.bootstrap_candidates(q).await)?;
        Ok(pick_diverse(candidates, want, exclude, seen_after_ms))
    }

    /// Removes check-ins last seen before `before_ms`; returns how many.
    pub async fn forget_checkins_before(&self, before_ms: u64) -> Result<u64, StoreError> {
        dispatch!(self, s => s.forget_checkins_before(before_ms).await)
    }

    // -- operator state -----------------------------------------------------

    /// Bans (`banned = true`) or lifts the ban on `node`, for every anchor
    /// on this database and across restarts. Returns whether anything
    /// changed (`false`: already banned / was not banned).
    pub async fn set_ban(
        &self,
        node: NodeId,
        banned: bool,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.set_ban(node, banned, now_ms).await)
    }

    /// The banned identities, sorted.
    pub async fn bans(&self) -> Result<Vec<NodeId>, StoreError> {
        dispatch!(self, s => s.bans().await)
    }

    /// An operator setting ([`SETTING_MAILBOX_TTL_MS`]), if one was stored.
    pub async fn setting(&self, name: &'static str) -> Result<Option<u64>, StoreError> {
        dispatch!(self, s => s.setting(name).await)
    }

    /// Deletes an operator setting; returns whether one was stored.
    pub async fn clear_setting(&self, name: &'static str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.clear_setting(name).await)
    }

    /// Stores an operator setting (shared by every anchor on the database).
    pub async fn set_setting(&self, name: &'static str, value: u64) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_setting(name, value).await)
    }

    // -- posts --------------------------------------------------------------

    /// Stores posts already validated and encoded by [`PreparedPost::new`]
    /// (one result each, in order), like [`AnchorStore::insert_posts`].
    pub(crate) async fn insert_prepared(
        &self,
        posts: Vec<PreparedPost>,
        now_ms: u64,
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        dispatch!(self, s => s.insert_posts(posts, now_ms).await)
    }

    /// Hands `posts` (validated, charged) to the backend's post writer as
    /// one batch from a thread outside the runtime, without waiting:
    /// `done` is called once with the results (one per post, in order)
    /// after the commit, or with the failure. Blocks while the writer's
    /// queue is full (backpressure on the caller's thread).
    pub(crate) fn submit_posts(&self, posts: Vec<PreparedPost>, now_ms: u64, done: PostsDone) {
        dispatch!(self, s => s.submit_posts(posts, now_ms, done));
    }

    /// Stores posts (store-and-forward) in one transaction. Each post is
    /// first checked with [`SyncPost::validate`] and against
    /// [`MAX_STORED_SYNC_POST_BYTES`]; an invalid one is its own `Err` and
    /// does not stop the others. The outer `Err` is a database failure
    /// (nothing stored).
    pub async fn insert_posts(
        &self,
        posts: &[SyncPost],
        now_ms: u64,
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        let prepared: Vec<Result<PreparedPost, StoreError>> =
            posts.iter().map(PreparedPost::new).collect();
        let valid: Vec<PreparedPost> = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok().cloned())
            .collect();
        let mut stored = if valid.is_empty() {
            Vec::new()
        } else {
            dispatch!(self, s => s.insert_posts(valid, now_ms).await)?
        }
        .into_iter();
        let mut out = Vec::with_capacity(prepared.len());
        for p in prepared {
            out.push(match p {
                Ok(_) => stored.next().ok_or_else(|| {
                    StoreError::corrupt("insert_posts", "backend returned too few results")
                })?,
                Err(e) => Err(e),
            });
        }
        Ok(out)
    }

    /// The posts after `since_seq` that `requester` (the authenticated
    /// NodeId) may receive given `ids` (`PullSyncRequest.ids`), in store
    /// order: own posts, public posts by an author in `ids`, encrypted
    /// posts with a recipient other than the author in `ids`. Candidates
    /// come from index range scans bounded per id (authors:
    /// `posts (author, encrypted, seq)`; recipients:
    /// `post_recipients (recipient, seq)`), or near the head from a bounded
    /// scan of the rows after `since_seq` (`pull.rs`), so the cost depends
    /// on the ids and `limit`, not the table size; each candidate then goes
    /// through [`PullFilter::decide`], the final authority. At most `limit`
    /// rows are examined. The backend reads the page in one go (one reader
    /// thread hand-off on SQLite, one pooled connection on PostgreSQL).
    ///
    /// The posts are the stored canonical bytes, not decoded
    /// ([`StoredSyncPost`]: the filter reads their author and recipients);
    /// [`StoredPullSyncResponse`](distsoc_protocol::messages::stored::StoredPullSyncResponse)
    /// sends them as they are. [`AnchorStore::pull`] decodes them.
    pub async fn pull_stored(
        &self,
        requester: NodeId,
        ids: &[[u8; 32]],
        since_seq: u64,
        limit: usize,
    ) -> Result<StoredPullPage, StoreError> {
        let limit = limit.max(1);
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let filter = PullFilter::new(requester, ids.iter().copied());
        let PullRows {
            posts: rows,
            tombs: tomb_rows,
            next_seq,
            more,
        } = dispatch!(self, s => s.pull_rows(requester, ids, since_seq, limit).await)?;
        let mut page = StoredPullPage {
            posts: Vec::with_capacity(rows.len()),
            deletes: Vec::new(),
            next_seq,
            more,
        };
        for (_seq, bytes) in rows {
            let post = StoredSyncPost::new(&bytes, MAX_STORED_SYNC_POST_BYTES)
                .map_err(|e| StoreError::corrupt("post", e))?;
            let audience = match post.recipients() {
                Some(r) => Audience::Encrypted(r),
                None => Audience::Public,
            };
            if filter.decide(post.author(), audience).is_some() {
                page.posts.push(post);
            }
        }
        for t in tomb_rows {
            let record = decode_delete(&t.record, &t.signature)?;
            let author = record.body().author;
            let recipients: Vec<PostingId> = t.recipients.into_iter().map(PostingId).collect();
            let audience = if t.encrypted {
                Audience::Encrypted(&recipients)
            } else {
                Audience::Public
            };
            if filter.decide(&author, audience).is_some() {
                page.deletes.push(record);
            }
        }
        Ok(page)
    }

    /// [`AnchorStore::pull_stored`] with every post decoded and validated.
    pub async fn pull(
        &self,
        requester: NodeId,
        ids: &[[u8; 32]],
        since_seq: u64,
        limit: usize,
    ) -> Result<PullPage, StoreError> {
        let page = self.pull_stored(requester, ids, since_seq, limit).await?;
        Ok(PullPage {
            posts: page
                .posts
                .iter()
                .map(|p| p.decode().map_err(|e| StoreError::corrupt("post", e)))
                .collect::<Result<_, _>>()?,
            deletes: page.deletes,
            next_seq: page.next_seq,
            more: page.more,
        })
    }

    /// Applies an author's delete record (store-and-forward of deletes).
    ///
    /// The record's signature is verified first (`badSignature`). If the
    /// post is stored, the record must be by its author (`unauthorized`;
    /// the PostId commits to the author, so the post id and author columns
    /// decide it); the post is removed and stops being served. Either way a
    /// tombstone with a new `seq` keeps the signed record, the deleted
    /// post's visibility kind and its recipients: [`AnchorStore::pull`]
    /// serves the delete to exactly the pulls the post would have been
    /// served to, and the post is never stored again.
    pub async fn apply_delete(
        &self,
        record: &SignedDeleteRecord,
        now_ms: u64,
    ) -> Result<DeleteOutcome, StoreError> {
        record.verify().map_err(|error| IngestError::BadSignature {
            what: "deleteRecord",
            error,
        })?;
        let body = record.body();
        let d = PreparedDelete {
            post_id: body.post_id.0,
            author: body.author.0,
            record: record.bytes().to_vec(),
            signature: record.signature().to_vec(),
            now_ms,
        };
        dispatch!(self, s => s.apply_delete(d).await)
    }

    /// Applies an author's visibility update to a stored post
    /// ([`SyncPost::apply_update`]: signature, author, post id and content
    /// checks; an invalid update is [`StoreError::Invalid`]). On success the
    /// stored `SyncPost` carries the new visibility and the update, its
    /// recipient rows are rewritten and it moves to a new `seq`: dropped
    /// recipients stop finding it, new ones find it on their next pull.
    pub async fn apply_visibility_update(
        &self,
        update: &SignedVisibilityUpdate,
    ) -> Result<VisibilityOutcome, StoreError> {
        let id = update.body().post_id;
        // A concurrent change of the same post makes `replace_post` find a
        // different seq; read again and retry a few times.
        for _ in 0..3 {
            let Some((seq, bytes)) = dispatch!(self, s => s.post_by_id(id.0).await)? else {
                return Ok(VisibilityOutcome::NotHeld);
            };
            let mut post = decode_sync_post(&bytes)?;
            let before = post.visibility_update.clone();
            match post.apply_update(update.clone()) {
                Ok(()) => {}
                Err(IngestError::Stale { .. }) => return Ok(VisibilityOutcome::Stale),
                Err(e) => return Err(e.into()),
            }
            if post.visibility_update == before {
                return Ok(VisibilityOutcome::Unchanged);
            }
            let prepared = PreparedPost::new(&post)?;
            if let Some(seq) = dispatch!(self, s => s.replace_post(seq, prepared).await)? {
                return Ok(VisibilityOutcome::Applied { seq });
            }
        }
        Err(StoreError::unavailable(
            "visibility update: the post kept changing, retry",
        ))
    }

    // -- admin --------------------------------------------------------------

    /// Counts for metrics and the admin API.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        dispatch!(self, s => s.stats().await)
    }

    /// Refreshes the planner's statistics (`ANALYZE`).
    pub async fn analyze(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.analyze().await)
    }

    /// The query plan of one of the hot queries (`EXPLAIN QUERY PLAN` on
    /// SQLite, `EXPLAIN` on PostgreSQL), one line per plan node: operators
    /// check that they use indexes.
    pub async fn explain(&self, q: PlanQuery) -> Result<String, StoreError> {
        dispatch!(self, s => s.explain(q).await)
    }
}

// ---------------------------------------------------------------------------
// Shared helpers for the backends
// ---------------------------------------------------------------------------

/// The lowest `n` of two lists each sorted by channel id (the member-a and
/// member-b halves of a member's empty channels).
pub(crate) fn merge_by_id(
    a: Vec<ChannelSummary>,
    b: Vec<ChannelSummary>,
    n: usize,
) -> Vec<ChannelSummary> {
    let mut out: Vec<ChannelSummary> = a.into_iter().chain(b).collect();
    out.sort_by_key(|x| x.id.0);
    out.truncate(n);
    out
}

/// A signature-checked delete record ready to store.
#[derive(Debug, Clone)]
pub(crate) struct PreparedDelete {
    pub(crate) post_id: [u8; 32],
    pub(crate) author: [u8; 32],
    pub(crate) record: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) now_ms: u64,
}

/// A stored tombstone as the backends return it.
#[derive(Debug, Clone)]
pub(crate) struct TombstoneRow {
    pub(crate) encrypted: bool,
    pub(crate) record: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) recipients: Vec<[u8; 32]>,
}

/// The refusal for a delete record whose author is not the stored post's.
pub(crate) fn foreign_delete() -> StoreError {
    StoreError::Invalid(IngestError::Unauthorized {
        what: "deleteRecord",
        reason: "not by the post's author",
    })
}

/// The answer to a post batch handed over with
/// [`AnchorStore::submit_posts`]: one result per post, or the batch's
/// failure (nothing stored).
pub(crate) type PostsDone =
    Box<dyn FnOnce(Result<Vec<Result<Inserted, StoreError>>, StoreError>) + Send>;

/// A validated post ready to store.
#[derive(Debug, Clone)]
pub(crate) struct PreparedPost {
    pub(crate) post_id: [u8; 32],
    pub(crate) author: [u8; 32],
    pub(crate) encrypted: bool,
    pub(crate) created_at_ms: u64,
    pub(crate) recipients: Vec<[u8; 32]>,
    pub(crate) bytes: Vec<u8>,
}

impl PreparedPost {
    /// Validates `post` and encodes its canonical bytes (once: the quota
    /// charge and the insert both use them).
    pub(crate) fn new(post: &SyncPost) -> Result<Self, StoreError> {
        let id = post.validate(None)?;
        Self::from_validated(post, id)
    }

    /// Encodes `post`, validated as `id`, for the store (refused if its
    /// canonical bytes exceed what a stored post may take).
    pub(crate) fn from_validated(post: &SyncPost, id: PostId) -> Result<Self, StoreError> {
        let bytes = codec::canonical_of(post);
        if bytes.len() > MAX_STORED_SYNC_POST_BYTES {
            return Err(StoreError::TooLarge {
                what: "syncPost",
                max: MAX_STORED_SYNC_POST_BYTES,
                got: bytes.len(),
            });
        }
        let mut recipients: Vec<[u8; 32]> = post
            .visibility
            .recipients()
            .iter()
            .map(|w| w.recipient)
            .collect();
        recipients.sort_unstable();
        recipients.dedup();
        let body = post.post.body();
        Ok(Self {
            post_id: id.0,
            author: body.author.0,
            encrypted: post.visibility.is_encrypted(),
            created_at_ms: body.created_at_ms,
            recipients,
            bytes,
        })
    }
}

pub(crate) fn redact(salt: &[u8; 32], id: &NodeId) -> [u8; REDACTED_ID_LEN] {
    let h = blake3::keyed_hash(salt, &id.0);
    let mut out = [0u8; REDACTED_ID_LEN];
    out.copy_from_slice(&h.as_bytes()[..REDACTED_ID_LEN]);
    out
}

pub(crate) fn random_salt() -> [u8; 32] {
    let mut s = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut s);
    s
}

/// A `u64` (time, id) as a signed 64-bit SQL integer; values above
/// `i64::MAX` (no real clock or counter reaches them) clamp, staying last.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn from_i64(what: &'static str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::corrupt(what, format!("negative value {v}")))
}

pub(crate) fn node_from(what: &'static str, b: &[u8]) -> Result<NodeId, StoreError> {
    NodeId::from_slice(b).map_err(|e| StoreError::corrupt(what, e))
}

pub(crate) fn id32_from(what: &'static str, b: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(b)
        .map_err(|_| StoreError::corrupt(what, format!("{} bytes, expected 32", b.len())))
}

pub(crate) fn encode_addrs(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn decode_addrs(s: &str) -> Result<Vec<SocketAddr>, StoreError> {
    s.split_whitespace()
        .map(|a| {
            a.parse()
                .map_err(|e| StoreError::corrupt("check-in address", e))
        })
        .collect()
}

pub(crate) fn decode_sync_post(bytes: &[u8]) -> Result<SyncPost, StoreError> {
    codec::from_canonical::<SyncPost>("syncPost", bytes, MAX_STORED_SYNC_POST_BYTES)
        .map_err(|e| StoreError::corrupt("post", e))
}

fn decode_delete(bytes: &[u8], signature: &[u8]) -> Result<SignedDeleteRecord, StoreError> {
    Signed::<DeleteRecordBody>::decode(Ok(bytes), Ok(signature))
        .map_err(|e| StoreError::corrupt("delete record", e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::mailbox::clean_detail;
    use super::*;

    #[test]
    fn urls_parse() {
        assert!(matches!(
            parse_url("sqlite::memory:").unwrap(),
            Target::SqliteMemory
        ));
        match parse_url("sqlite:/a/b.sqlite").unwrap() {
            Target::SqliteFile(p) => assert_eq!(p, std::path::Path::new("/a/b.sqlite")),
            t => panic!("{t:?}"),
        }
        match parse_url("sqlite:///a/b.sqlite").unwrap() {
            Target::SqliteFile(p) => assert_eq!(p, std::path::Path::new("/a/b.sqlite")),
            t => panic!("{t:?}"),
        }
        assert!(matches!(
            parse_url("postgres://u@h/db").unwrap(),
            Target::Postgres(_)
        ));
        assert!(matches!(
            parse_url("postgresql://u@%2Ftmp%2Fs/db").unwrap(),
            Target::Postgres(_)
        ));
        match parse_url("host=/tmp/sock port=5432 user=x dbname=y").unwrap() {
            Target::Postgres(c) => assert_eq!(c.get_dbname(), Some("y")),
            t => panic!("{t:?}"),
        }
        assert!(parse_url("mysql://x").is_err());
        assert!(parse_url("sqlite:").is_err());
        assert!(parse_url("anchor.sqlite").is_err());
    }

    #[test]
    fn fetch_cut_rules() {
        let rows = [(1, 10), (2, 10), (3, 10)];
        assert_eq!(fetch_cut(&rows, 100, 100), 3);
        assert_eq!(fetch_cut(&rows, 2, 100), 2);
        assert_eq!(fetch_cut(&rows, 100, 20), 2);
        assert_eq!(fetch_cut(&rows, 100, 19), 1);
        assert_eq!(fetch_cut(&rows, 100, 0), 1, "at least one");
        assert_eq!(fetch_cut(&[], 100, 0), 0);
    }

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    /// Every variant reaches the wire by the shared rule: storage failures
    /// by `StorageFault` with a generic message, refusals with their text.
    #[test]
    fn errors_map_to_wire_codes() {
        use distsoc_protocol::error::{
            INTERNAL_MESSAGE, STORAGE_RETRY_AFTER_MS, UNAVAILABLE_MESSAGE,
        };
        use rusqlite::ffi;
        let pg = "port=not-a-number"
            .parse::<tokio_postgres::Config>()
            .unwrap_err();
        let unavailable = [
            StoreError::unavailable("pool timed out"),
            StoreError::from(sqlite(ffi::SQLITE_BUSY)),
            StoreError::from(sqlite(ffi::SQLITE_LOCKED)),
            StoreError::from(sqlite(ffi::SQLITE_IOERR)),
            StoreError::from(sqlite(ffi::SQLITE_FULL)),
            StoreError::Batch(Arc::new(StoreError::unavailable("x"))),
            StoreError::Io(std::io::Error::other("/var/lib/anchor.db")),
        ];
        for e in unavailable {
            assert!(e.is_unavailable(), "{e}");
            let w = e.to_wire_error();
            assert_eq!(w.code, ErrorCode::Unavailable, "{e}");
            assert_eq!(w.message, UNAVAILABLE_MESSAGE, "{e}");
            assert_eq!(w.retry_after_ms, STORAGE_RETRY_AFTER_MS, "{e}");
        }
        let internal = [
            StoreError::from(sqlite(ffi::SQLITE_CORRUPT)),
            StoreError::from(sqlite(ffi::SQLITE_CONSTRAINT)),
            StoreError::Postgres(pg),
            StoreError::corrupt("mailbox row", "bad bytes"),
            StoreError::TooNew {
                found: 9,
                supported: 1,
            },
            StoreError::Batch(Arc::new(StoreError::corrupt("x", "y"))),
        ];
        for e in internal {
            assert!(!e.is_unavailable(), "{e}");
            let w = e.to_wire_error();
            assert_eq!(w.code, ErrorCode::Internal, "{e}");
            assert_eq!(w.message, INTERNAL_MESSAGE, "{e}");
            assert_eq!(w.retry_after_ms, 0, "{e}");
        }
        let refusals = [
            (
                StoreError::InvalidArgument("empty payload".into()),
                ErrorCode::Malformed,
            ),
            (
                StoreError::Unauthorized("not a member"),
                ErrorCode::Unauthorized,
            ),
            (
                StoreError::TooLarge {
                    what: "payload",
                    max: 1,
                    got: 2,
                },
                ErrorCode::TooLarge,
            ),
            (
                StoreError::Invalid(IngestError::Stale {
                    what: "post",
                    held: 2,
                    got: 1,
                }),
                ErrorCode::Stale,
            ),
        ];
        for (e, code) in refusals {
            assert!(!e.is_unavailable(), "{e}");
            assert_eq!(e.storage_fault(), None, "{e}");
            let w = e.to_wire_error();
            assert_eq!(w.code, code, "{e}");
            assert_eq!(w.message, e.to_string());
            assert_eq!(w.retry_after_ms, 0, "{e}");
        }
    }

    #[test]
    fn audit_detail_is_cleaned() {
        assert_eq!(clean_detail("a\0b\nc"), "a b c");
        assert_eq!(
            clean_detail(&"x".repeat(2000)).len(),
            MAX_AUDIT_DETAIL_CHARS
        );
        assert_eq!(clean_detail("3 messages"), "3 messages");
    }

    #[test]
    fn redaction_is_keyed_and_short() {
        let id = NodeId([7; 32]);
        let a = redact(&[1; 32], &id);
        let b = redact(&[2; 32], &id);
        assert_ne!(a, b);
        assert_eq!(a, redact(&[1; 32], &id));
    }

    #[test]
    fn prefixes() {
        let c = |a: &str| CheckIn {
            node: NodeId([0; 32]),
            addrs: vec![a.parse().unwrap()],
            is_anchor: false,
            last_seen_ms: 0,
            verified_at_ms: 0,
        };
        assert_eq!(prefix_of(&c("10.1.2.3:1")), prefix_of(&c("10.1.9.9:2")));
        assert_ne!(prefix_of(&c("10.1.2.3:1")), prefix_of(&c("10.2.2.3:1")));
        assert_eq!(
            prefix_of(&c("[::ffff:10.1.2.3]:1")),
            prefix_of(&c("10.1.0.0:1"))
        );
        assert_eq!(
            prefix_of(&c("[2001:db8:1::1]:1")),
            prefix_of(&c("[2001:db8:2::1]:1"))
        );
        assert_ne!(
            prefix_of(&c("[2001:db8::1]:1")),
            prefix_of(&c("[2001:db9::1]:1"))
        );
    }
}
