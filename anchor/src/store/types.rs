//! The store's data types: channels, messages, audit records, check-ins,
//! posts and the queries over them.

use super::*;

/// A 1:1 DM channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    /// 16 random bytes from the OS CSPRNG.
    pub id: ChannelId,
    /// The two members, sorted bytewise.
    pub members: [NodeId; 2],
    /// When it was created, ms.
    pub created_at_ms: u64,
}

impl Channel {
    /// Whether `node` is a member.
    pub fn is_member(&self, node: &NodeId) -> bool {
        self.members.contains(node)
    }

    /// The other member, if `me` is one.
    pub fn other(&self, me: &NodeId) -> Option<NodeId> {
        if self.members[0] == *me {
            Some(self.members[1])
        } else if self.members[1] == *me {
            Some(self.members[0])
        } else {
            None
        }
    }
}

/// A channel as listed for one member ([`AnchorStore::list_channels`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelSummary {
    /// The channel.
    pub id: ChannelId,
    /// The other member.
    pub peer: NodeId,
    /// When it was created, ms.
    pub created_at_ms: u64,
    /// Messages queued for the listing member in this channel (including
    /// expired ones the sweeper has not removed yet).
    pub queued: u64,
}

/// One page of [`AnchorStore::list_channels`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPage {
    /// Channels with messages waiting first, then the others; each group
    /// by channel id.
    pub channels: Vec<ChannelSummary>,
    /// The listing continues after this page.
    pub more: bool,
    /// Where the next page starts (set when `more`).
    pub next: Option<ChannelCursor>,
}

/// A message to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The channel, or `None` for the recipient's legacy mailbox.
    pub channel: Option<ChannelId>,
    /// Who sent it (the authenticated caller).
    pub sender: NodeId,
    /// Whose queue it goes to; in channel mode the other member.
    pub recipient: NodeId,
    /// The sealed payload, 1..=[`MAX_PAYLOAD_BYTES`] bytes.
    pub payload: Vec<u8>,
    /// Sender-chosen id: a repeat in the same queue from the same sender
    /// returns the original instead of storing a copy.
    pub client_message_id: Option<[u8; 16]>,
    /// When the anchor accepted it, ms.
    pub received_at_ms: u64,
    /// When it expires (received + TTL), ms.
    pub expires_at_ms: u64,
}

/// The outcome of an enqueue: what `EnqueueResponse` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The message's id (store-wide counter; increasing within a queue).
    pub message_id: u64,
    /// When it was accepted, ms (the original's, for a duplicate).
    pub received_at_ms: u64,
    /// When it expires, ms (the original's, for a duplicate).
    pub expires_at_ms: u64,
    /// The `client_message_id` was already queued: nothing was stored.
    pub duplicate: bool,
}

/// A queued message as delivered ([`AnchorStore::fetch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its id (acknowledge with `ack_through`).
    pub message_id: u64,
    /// The channel, or `None` for the legacy mailbox.
    pub channel: Option<ChannelId>,
    /// The sender.
    pub sender: NodeId,
    /// When it was accepted, ms.
    pub received_at_ms: u64,
    /// When it expires, ms.
    pub expires_at_ms: u64,
    /// The sealed payload.
    pub payload: Vec<u8>,
}

/// One page of a queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPage {
    /// Messages in id order.
    pub messages: Vec<StoredMessage>,
    /// More messages are queued than were returned.
    pub more: bool,
}

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// A channel was created (or looked up by `CreateChannel`).
    ChannelCreated,
    /// A request was refused as unauthorized.
    AuthzFailure,
    /// A message was enqueued.
    Send,
    /// Messages were delivered.
    Receive,
}

impl AuditKind {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditKind::ChannelCreated => "channel_created",
            AuditKind::AuthzFailure => "authz_failure",
            AuditKind::Send => "send",
            AuditKind::Receive => "receive",
        }
    }

    pub(super) fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "channel_created" => AuditKind::ChannelCreated,
            "authz_failure" => AuditKind::AuthzFailure,
            "send" => AuditKind::Send,
            "receive" => AuditKind::Receive,
            other => return Err(StoreError::corrupt("audit kind", other)),
        })
    }
}

/// An event for the audit log. The store never keeps `actor` itself: only
/// its redacted form ([`AnchorStore::redact`]). `detail` is stored as given
/// — put no identities in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When, ms.
    pub at_ms: u64,
    /// What.
    pub kind: AuditKind,
    /// Who (redacted before storing).
    pub actor: NodeId,
    /// Which channel, if any.
    pub channel: Option<ChannelId>,
    /// Free text without identities (a count, a reason).
    pub detail: String,
}

/// A stored audit log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its place in the log.
    pub id: u64,
    /// When, ms.
    pub at_ms: u64,
    /// What.
    pub kind: AuditKind,
    /// The redacted actor: the first [`REDACTED_ID_LEN`] bytes of BLAKE3
    /// keyed with this store's secret salt.
    pub actor: [u8; REDACTED_ID_LEN],
    /// Which channel, if any.
    pub channel: Option<ChannelId>,
    /// The detail text.
    pub detail: String,
}

/// A node's latest check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    /// The node.
    pub node: NodeId,
    /// Where it can be reached (at most [`MAX_CHECKIN_ADDRS`]).
    pub addrs: Vec<SocketAddr>,
    /// It announced the anchor role.
    pub is_anchor: bool,
    /// When it last checked in, ms.
    pub last_seen_ms: u64,
    /// When the anchor verified `addrs` by dialling back with the NodeId
    /// pinned, ms. Only verified check-ins are stored and served
    /// (migration 6; older rows without it are never returned).
    pub verified_at_ms: u64,
}

/// One row of [`AnchorStore::post_volume_since`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostVolume {
    /// The posts' author.
    pub author: PostingId,
    /// Start of the time bucket, ms.
    pub bucket_start_ms: u64,
    /// Posts received in it.
    pub posts: u64,
    /// Their canonical `SyncPost` bytes.
    pub bytes: u64,
}

/// Sizes, for metrics and the admin API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Channels.
    pub channels: u64,
    /// Queued messages (all queues, including expired not yet swept).
    pub queued_messages: u64,
    /// Their payload bytes.
    pub queued_bytes: u64,
    /// Stored posts.
    pub posts: u64,
    /// Nodes in the check-in table.
    pub checkins: u64,
}

/// Cheap, in-memory gauges of a store (no database access), for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreGauges {
    /// `"sqlite"` or `"postgres"`.
    pub backend: &'static str,
    /// Write requests queued for the writer (SQLite: the writer thread;
    /// PostgreSQL: the write workers and the post writer), not yet taken.
    pub write_queue: usize,
    /// How many write requests the queue holds before callers wait.
    pub write_queue_capacity: usize,
    /// The PostgreSQL connection pool (`None` on SQLite).
    pub pool: Option<PoolGauges>,
}

/// The PostgreSQL connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGauges {
    /// Most connections (`pool_size`).
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    /// Open connections not checked out.
    pub available: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// The [`AnchorStore::setting`] holding the mailbox retention set through
/// the admin API, in milliseconds.
pub const SETTING_MAILBOX_TTL_MS: &str = "mailbox_ttl_ms";

/// What [`AnchorStore::insert_posts`] did with one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored at this store `seq` (the pull cursor).
    New {
        /// The post's place in store order.
        seq: u64,
    },
    /// Already stored; nothing changed.
    Duplicate,
    /// Its author deleted it (a tombstone is held); not stored again.
    Tombstoned,
}

/// What [`AnchorStore::apply_delete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The post was stored and is now deleted; the tombstone is at this
    /// `seq` and carries the post's recipients.
    Deleted {
        /// The tombstone's place in store order.
        seq: u64,
    },
    /// The post is not stored; the tombstone was recorded (served to pulls
    /// by its author's id) and keeps the post out.
    Recorded {
        /// The tombstone's place in store order.
        seq: u64,
    },
    /// A tombstone for this post by this author is already held.
    AlreadyDeleted,
}

/// What [`AnchorStore::apply_visibility_update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityOutcome {
    /// Applied: the post carries the new visibility and moved to this `seq`.
    Applied {
        /// The post's new place in store order.
        seq: u64,
    },
    /// The same update is already applied.
    Unchanged,
    /// Not newer than the update held; nothing changed (wire `stale`).
    Stale,
    /// The post is not stored (never deposited, pruned or deleted).
    NotHeld,
}

/// One page of [`AnchorStore::pull`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPage {
    /// Posts the filter lets through, in store order.
    pub posts: Vec<SyncPost>,
    /// Delete records the filter lets through, in store order (at most
    /// `MAX_PULL_DELETES`): each is sent to exactly the pulls the deleted
    /// post would have been sent to.
    pub deletes: Vec<SignedDeleteRecord>,
    /// The `seq` of the last row examined (or `since_seq` if none): the
    /// requester's next `sinceSeq`.
    pub next_seq: u64,
    /// Stopped at the limit; pull again at once.
    pub more: bool,
}

/// One page of [`AnchorStore::pull_stored`]: [`PullPage`] with the posts
/// as stored (canonical bytes, not decoded).
#[derive(Debug)]
pub struct StoredPullPage {
    /// Posts the filter lets through, in store order.
    pub posts: Vec<StoredSyncPost>,
    /// As [`PullPage::deletes`].
    pub deletes: Vec<SignedDeleteRecord>,
    /// As [`PullPage::next_seq`].
    pub next_seq: u64,
    /// As [`PullPage::more`].
    pub more: bool,
}

impl PullPage {
    /// The `PullSyncResponse` that carries this page (no profiles).
    pub fn into_response(self) -> distsoc_protocol::messages::social::PullSyncResponse {
        distsoc_protocol::messages::social::PullSyncResponse {
            version: distsoc_protocol::limits::PROTOCOL_VERSION,
            posts: self.posts,
            next_seq: self.next_seq,
            more: self.more,
            deletes: self.deletes,
            profiles: Vec::new(),
        }
    }
}

impl StoredPullPage {
    /// The reply that carries this page as stored (no profiles): the same
    /// frame as [`PullPage::into_response`] of the decoded page.
    pub fn into_response(self) -> distsoc_protocol::messages::stored::StoredPullSyncResponse {
        distsoc_protocol::messages::stored::StoredPullSyncResponse {
            version: distsoc_protocol::limits::PROTOCOL_VERSION,
            posts: self.posts,
            next_seq: self.next_seq,
            more: self.more,
            deletes: self.deletes,
            profiles: Vec::new(),
        }
    }
}

/// A query whose plan [`AnchorStore::explain`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanQuery {
    /// The queue read of a fetch.
    Fetch,
    /// The candidate lookups of a pull (posts by author, recipient index).
    Pull,
    /// The two phases of a channel listing page (waiting, empty).
    ListChannels,
}

/// Tuning knobs; [`StoreOptions::default`] suits most deployments.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// PostgreSQL: most pooled connections (plus one `LISTEN` connection):
    /// half, rounded up, for the mailbox, the rest for everything else
    /// (at least one each).
    pub pool_size: usize,
    /// PostgreSQL: longest wait for a pooled connection, and for creating
    /// one; beyond it a call fails with [`StoreError::Unavailable`].
    pub connect_timeout: Duration,
    /// PostgreSQL: longest time one operation may take before it fails with
    /// [`StoreError::Unavailable`].
    pub op_timeout: Duration,
    /// Most write requests group-committed in one transaction.
    pub max_write_batch: usize,
    /// PostgreSQL: group-commit workers (transactions in flight at once).
    /// Few is better: a worker that is idle takes a request alone, so many
    /// workers under moderate load mean many one-request transactions. The
    /// default is one: it takes everything queued while its previous
    /// transaction committed, so batches are larger, commits fewer, and no
    /// batch waits for another's queue locks (docs/BENCHMARKS.md, issue 12:
    /// 17–21 % less anchor + PostgreSQL CPU per mailbox operation than two,
    /// throughput the same or higher on a quiet machine).
    pub write_workers: usize,
    /// SQLite: how long a write waits for another process holding the
    /// database's write lock.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: Duration::from_secs(3),
            op_timeout: Duration::from_secs(10),
            max_write_batch: 256,
            write_workers: 1,
            busy_timeout: Duration::from_secs(5),
        }
    }
}
