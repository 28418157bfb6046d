//! The storage layer's shared test suite: every case in [`cases`] runs
//! against SQLite (a file in a temp dir) and against PostgreSQL (a fresh
//! database on a real throwaway server, see `pg_harness`). PostgreSQL-only
//! cases (cross-process wakeups, server outage) follow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod pg_harness;

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use distsoc_anchor::store::{
    AnchorStore, AuditEvent, AuditKind, ChannelSummary, CheckIn, DeleteOutcome, FetchPage,
    Inserted, NewMessage, PlanQuery, StoreError, StoreOptions, VisibilityOutcome,
    MAX_CHANNELS_LISTED, MAX_PAYLOAD_BYTES, SETTING_MAILBOX_TTL_MS,
};
use distsoc_protocol::ids::{ChannelId, NodeId, PostingId};
use distsoc_protocol::messages::content::{seal_post, Post, PostBody, PostVisibility, SyncPost};
use distsoc_protocol::messages::mailbox::ChannelCursor;
use distsoc_protocol::sign::SigningKey;

const TTL: u64 = 7 * 24 * 3600 * 1000;
const NOW: u64 = 1_700_000_000_000;
/// Bound on every wait in this suite.
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// A database the cases can open any number of times (restarts, other
/// processes).
pub struct Db {
    url: String,
    sqlite_path: Option<std::path::PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn open(&self) -> AnchorStore {
        AnchorStore::open(&self.url).await.unwrap()
    }

    fn is_pg(&self) -> bool {
        self.sqlite_path.is_none()
    }

    /// Rows of a raw SQL query as text columns (for checks below the API).
    async fn raw_rows(&self, sql: &str) -> Vec<Vec<Vec<u8>>> {
        match &self.sqlite_path {
            Some(p) => {
                let conn = rusqlite::Connection::open(p).unwrap();
                let mut st = conn.prepare(sql).unwrap();
                let n = st.column_count();
                let mut rows = st.query([]).unwrap();
                let mut out = Vec::new();
                while let Some(row) = rows.next().unwrap() {
                    let mut cols = Vec::new();
                    for i in 0..n {
                        let v = row.get_ref(i).unwrap();
                        cols.push(match v {
                            rusqlite::types::ValueRef::Null => Vec::new(),
                            rusqlite::types::ValueRef::Integer(i) => i.to_string().into_bytes(),
                            rusqlite::types::ValueRef::Real(f) => f.to_string().into_bytes(),
                            rusqlite::types::ValueRef::Text(t) => t.to_vec(),
                            rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
                        });
                    }
                    out.push(cols);
                }
                out
            }
            None => {
                let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let driver = tokio::spawn(conn);
                // Text protocol: bytea comes back as \x hex; decode it so raw
                // bytes can be searched too.
                let msgs = client.simple_query(sql).await.unwrap();
                let mut out = Vec::new();
                for m in msgs {
                    if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                        let mut cols = Vec::new();
                        for i in 0..r.len() {
                            let v = r.get(i).unwrap_or("");
                            cols.push(match v.strip_prefix("\\x") {
                                Some(h) => hex::decode(h).unwrap_or_else(|_| v.as_bytes().to_vec()),
                                None => v.as_bytes().to_vec(),
                            });
                        }
                        out.push(cols);
                    }
                }
                drop(client);
                let _ = driver.await;
                out
            }
        }
    }

    async fn raw_exec(&self, sql: &str) {
        match &self.sqlite_path {
            Some(p) => {
                rusqlite::Connection::open(p)
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
            None => {
                let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let driver = tokio::spawn(conn);
                client.batch_execute(sql).await.unwrap();
                drop(client);
                let _ = driver.await;
            }
        }
    }
}

pub async fn sqlite_db() -> Option<Db> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anchor.sqlite");
    Some(Db {
        url: format!("sqlite:{}", path.display()),
        sqlite_path: Some(path),
        _dir: Some(dir),
    })
}

pub async fn pg_db() -> Option<Db> {
    if pg_harness::skip() {
        eprintln!("DISTSOC_SKIP_PG_TESTS=1: skipped");
        return None;
    }
    let url = pg_harness::shared().create_database().await;
    Some(Db {
        url,
        sqlite_path: None,
        _dir: None,
    })
}

fn node(i: u8) -> NodeId {
    NodeId(*blake3::hash(&[b'n', i]).as_bytes())
}

fn random_node() -> NodeId {
    let mut b = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    NodeId(b)
}

fn msg(channel: Option<ChannelId>, from: NodeId, to: NodeId, payload: &[u8]) -> NewMessage {
    NewMessage {
        channel,
        sender: from,
        recipient: to,
        payload: payload.to_vec(),
        client_message_id: None,
        received_at_ms: NOW,
        expires_at_ms: NOW + TTL,
    }
}

async fn fetch_all(s: &AnchorStore, who: NodeId, ch: Option<ChannelId>) -> Vec<(u64, Vec<u8>)> {
    let page = s.fetch(who, ch, 0, 100_000, usize::MAX, NOW).await.unwrap();
    assert!(!page.more);
    page.messages
        .into_iter()
        .map(|m| (m.message_id, m.payload))
        .collect()
}

/// Every page of `member`'s listing with page size `limit`, checking the
/// cursor rules on the way; the channels in listing order.
async fn list_all(
    s: &AnchorStore,
    member: NodeId,
    limit: usize,
    pending_only: bool,
) -> Vec<ChannelSummary> {
    let mut out = Vec::new();
    let mut after = None;
    for _ in 0..100_000 {
        let page = s
            .list_channels(member, after, limit, pending_only)
            .await
            .unwrap();
        assert!(page.channels.len() <= limit.max(1));
        out.extend(page.channels.iter().copied());
        if !page.more {
            assert_eq!(page.next, None, "no cursor on the last page");
            return out;
        }
        assert_eq!(page.channels.len(), limit, "only a full page continues");
        let next = page.next.expect("a cursor when more");
        let last = page.channels.last().unwrap();
        assert_eq!(next.last, last.id);
        assert_eq!(next.waiting, last.queued > 0);
        after = Some(next);
    }
    panic!("the listing never ended")
}

/// Listing order: waiting channels (queued > 0) first, each phase by id.
fn assert_listing_order(listed: &[ChannelSummary]) {
    let key = |c: &ChannelSummary| (c.queued == 0, c.id.0);
    assert!(
        listed.windows(2).all(|w| key(&w[0]) < key(&w[1])),
        "not in listing order"
    );
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {WAIT:?}"))
}

/// Polls a future exactly once (a zero timeout polls before checking the
/// deadline): whether it is ready right now.
async fn ready_now<F: std::future::Future>(f: F) -> bool {
    tokio::time::timeout(Duration::ZERO, f).await.is_ok()
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(db) = super::sqlite_db().await {
                        super::cases::$case(db).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(db) = super::pg_db().await {
                        super::cases::$case(db).await;
                    }
                }
            )*
        }
    };
}

suite!(
    migrations_versioned_and_newer_refused,
    concurrent_opens_migrate_once,
    channels_idempotent_sorted_random,
    enqueue_fetch_in_order,
    ack_deletes_only_the_callers_acked_messages,
    queues_are_isolated,
    legacy_mailbox_is_separate_from_channels,
    enqueue_authorization_and_limits,
    client_message_id_dedup,
    fetch_limits_and_at_least_one,
    ttl_hides_expired_and_sweeper_deletes,
    waiter_in_process_no_lost_wakeup,
    enqueue_batch_is_all_or_nothing,
    concurrent_enqueues_group_commit,
    acknowledged_messages_survive_drop_and_reopen,
    acknowledged_messages_survive_kill_9,
    check_in_and_address,
    bootstrap_is_diverse_and_excludes,
    audit_log_is_redacted,
    stats_count,
    posts_insert_and_pull_with_recipient_match,
    query_plans_use_indexes,
    operator_state_persists_and_is_shared,
    posts_pruned_by_receive_time,
    deletes_and_visibility_updates_are_served_by_pull,
    channel_listing_pages_every_channel_once_waiting_first,
    channel_listing_at_scale_shows_the_newest_waiting_channel,
    enqueue_retry_after_unknown_outcome_is_deduplicated,
    audit_rows_commit_with_their_operation,
    applied_acknowledgement_is_a_read,
    channel_membership_is_read_once,
    pull_pages_follow_the_rule_near_and_far_from_the_head,
    pull_replies_from_stored_bytes_are_the_decoded_frames,
);

// ---------------------------------------------------------------------------
// The shared cases
// ---------------------------------------------------------------------------

mod cases {
    use super::*;

    pub async fn migrations_versioned_and_newer_refused(db: Db) {
        let s = db.open().await;
        assert_eq!(
            s.schema_version().await.unwrap(),
            s.supported_schema_version()
        );
        drop(s);
        // Reopening applies nothing and keeps data.
        let s = db.open().await;
        assert_eq!(
            s.schema_version().await.unwrap(),
            s.supported_schema_version()
        );
        drop(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
        if db.is_pg() {
            db.raw_exec("UPDATE anchor_schema_version SET version = 99")
                .await;
        } else {
            db.raw_exec("PRAGMA user_version = 99").await;
        }
        match AnchorStore::open(&db.url).await {
            Err(StoreError::TooNew { found: 99, .. }) => {}
            other => panic!("expected TooNew, got {other:?}"),
        }
    }

    pub async fn concurrent_opens_migrate_once(db: Db) {
        let (a, b, c) = tokio::join!(
            AnchorStore::open(&db.url),
            AnchorStore::open(&db.url),
            AnchorStore::open(&db.url)
        );
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        for s in [&a, &b, &c] {
            assert_eq!(
                s.schema_version().await.unwrap(),
                s.supported_schema_version()
            );
        }
        // One salt for the database, whoever created it.
        let id = node(1);
        assert_eq!(a.redact(&id), b.redact(&id));
        assert_eq!(a.redact(&id), c.redact(&id));
    }

    pub async fn channels_idempotent_sorted_random(db: Db) {
        let s = db.open().await;
        let (a, b, c) = (node(1), node(2), node(3));
        let ab = s.create_channel(a, b, NOW).await.unwrap();
        let ba = s.create_channel(b, a, NOW + 5).await.unwrap();
        assert_eq!(ab, ba, "idempotent per unordered pair");
        assert_eq!(ba.created_at_ms, NOW);
        assert!(ab.members[0] < ab.members[1], "sorted");
        assert!(ab.is_member(&a) && ab.is_member(&b));
        let ac = s.create_channel(a, c, NOW).await.unwrap();
        assert_ne!(ab.id, ac.id);
        assert_ne!(ab.id.0, [0; 16]);
        // Ids are random, not derived from the members: a second store on a
        // fresh database gives the same pair another id.
        assert_eq!(s.channel(ab.id).await.unwrap(), Some(ab));
        assert_eq!(s.channel(ChannelId([9; 16])).await.unwrap(), None);
        assert!(matches!(
            s.create_channel(a, a, NOW).await,
            Err(StoreError::InvalidArgument(_))
        ));
        // Concurrent creates of one pair converge.
        let (d, e) = (node(4), node(5));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    s.create_channel(d, e, NOW).await.unwrap()
                } else {
                    s.create_channel(e, d, NOW).await.unwrap()
                }
            }));
        }
        let mut ids = HashSet::new();
        for t in tasks {
            ids.insert(t.await.unwrap().id);
        }
        assert_eq!(ids.len(), 1);
        let mine = s.channels_of(a).await.unwrap();
        assert_eq!(mine.len(), 2);
        let peers: HashSet<NodeId> = mine.iter().map(|c| c.peer).collect();
        assert_eq!(peers, HashSet::from([b, c]));
        assert_eq!(s.channels_of(b).await.unwrap().len(), 1);
        assert_eq!(s.channels_of(node(9)).await.unwrap().len(), 0);
    }

    pub async fn enqueue_fetch_in_order(db: Db) {
        let s = db.open().await;
        let (a, b) = (node(1), node(2));
        let ch = s.create_channel(a, b, NOW).await.unwrap().id;
        let mut ids = Vec::new();
        for i in 0..5u8 {
            let e = s.enqueue(msg(Some(ch), a, b, &[i; 10])).await.unwrap();
            assert!(!e.duplicate);
            assert_eq!(e.received_at_ms, NOW);
            assert_eq!(e.expires_at_ms, NOW + TTL);
            ids.push(e.message_id);
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let page = s.fetch(b, Some(ch), 0, 100, 1 << 20, NOW).await.unwrap();
        assert!(!page.more);
        assert_eq!(page.messages.len(), 5);
        for (i, m) in page.messages.iter().enumerate() {
            assert_eq!(m.message_id, ids[i]);
            assert_eq!(m.payload, vec![i as u8; 10]);
            assert_eq!(m.sender, a);
            assert_eq!(m.channel, Some(ch));
            assert_eq!(m.received_at_ms, NOW);
            assert_eq!(m.expires_at_ms, NOW + TTL);
        }
        // Fetch without ack leaves them queued (at-least-once).
        assert_eq!(fetch_all(&s, b, Some(ch)).await.len(), 5);
        // The sender's own queue in the channel is empty.
        assert!(fetch_all(&s, a, Some(ch)).await.is_empty());
        // Ids keep increasing after everything is acknowledged.
        let p = s
            .fetch(b, Some(ch), ids[4], 100, 1 << 20, NOW)
            .await
            .unwrap();
        assert!(p.messages.is_empty());
        let next = s.enqueue(msg(Some(ch), a, b, b"x")).await.unwrap();
        assert!(next.message_id > ids[4]);
    }

    pub async fn ack_deletes_only_the_callers_acked_messages(db: Db) {
        let s = db.open().await;
        let (a, b, c) = (node(1), node(2), node(3));
        let ch = s.create_channel(a, b, NOW).await.unwrap().id;
        let mut to_b = Vec::new();
        for i in 0..4u8 {
            to_b.push(
                s.enqueue(msg(Some(ch), a, b, &[i]))
                    .await
                    .unwrap()
                    .message_id,
            );
        }
        let to_a = s
            .enqueue(msg(Some(ch), b, a, b"for a"))
            .await
            .unwrap()
            .message_id;
        let legacy_b = s
            .enqueue(msg(None, c, b, b"legacy"))
            .await
            .unwrap()
            .message_id;
        // b acknowledges through its second message.
        let p = s
            .fetch(b, Some(ch), to_b[1], 100, 1 << 20, NOW)
            .await
            .unwrap();
        let got: Vec<u64> = p.messages.iter().map(|m| m.message_id).collect();
        assert_eq!(got, to_b[2..].to_vec());
        // b acknowledging everything in the channel touches neither a's
        // queue nor b's legacy mailbox.
        let p = s
            .fetch(b, Some(ch), u64::MAX, 100, 1 << 20, NOW)
            .await
            .unwrap();
        assert!(p.messages.is_empty());
        assert_eq!(
            fetch_all(&s, a, Some(ch)).await,
            vec![(to_a, b"for a".to_vec())]
        );
        assert_eq!(
            fetch_all(&s, b, None).await,
            vec![(legacy_b, b"legacy".to_vec())]
        );
        // A non-member acking in the channel deletes nothing of anyone's.
        let p = s
            .fetch(c, Some(ch), u64::MAX, 100, 1 << 20, NOW)
            .await
            .unwrap();
        assert!(p.messages.is_empty());
        assert_eq!(fetch_all(&s, a, Some(ch)).await.len(), 1);
    }

    pub async fn queues_are_isolated(db: Db) {
        let s = db.open().await;
        let (x, y, z) = (node(1), node(2), node(3));
        for i in 0..3u8 {
            s.enqueue(msg(None, z, x, &[b'x', i])).await.unwrap();
            s.enqueue(msg(None, z, y, &[b'y', i])).await.unwrap();
        }
        let xs = fetch_all(&s, x, None).await;
        let ys = fetch_all(&s, y, None).await;
        assert_eq!(xs.len(), 3);
        assert_eq!(ys.len(), 3);
        assert!(xs.iter().all(|(_, p)| p[0] == b'x'));
        assert!(ys.iter().all(|(_, p)| p[0] == b'y'));
        // Nothing for the sender, nothing for strangers.
        assert!(fetch_all(&s, z, None).await.is_empty());
        assert!(fetch_all(&s, random_node(), None).await.is_empty());
        // A channel between x and z: y cannot read x's channel queue even
        // by naming the channel.
        let ch = s.create_channel(x, z, NOW).await.unwrap().id;
        s.enqueue(msg(Some(ch), z, x, b"private")).await.unwrap();
        assert!(fetch_all(&s, y, Some(ch)).await.is_empty());
        assert_eq!(fetch_all(&s, x, Some(ch)).await.len(), 1);
    }

    pub async fn legacy_mailbox_is_separate_from_channels(db: Db) {
        let s = db.open().await;
        let (a, b) = (node(1), node(2));
        let ch = s.create_channel(a, b, NOW).await.unwrap().id;
        s.enqueue(msg(Some(ch), a, b, b"chan1")).await.unwrap();
        s.enqueue(msg(Some(ch), a, b, b"chan2")).await.unwrap();
        s.enqueue(msg(None, a, b, b"legacy")).await.unwrap();
        let legacy = fetch_all(&s, b, None).await;
        assert_eq!(legacy.len(), 1);
        assert_eq!(legacy[0].1, b"legacy");
        let chan = fetch_all(&s, b, Some(ch)).await;
        assert_eq!(chan.len(), 2);
        let page = s.fetch(b, None, 0, 10, 1 << 20, NOW).await.unwrap();
        assert_eq!(page.messages[0].channel, None);
        assert_eq!(s.legacy_queued(b).await.unwrap(), 1);
        assert_eq!(s.legacy_queued(a).await.unwrap(), 0);
        let listed = s.channels_of(b).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, ch);
        assert_eq!(listed[0].peer, a);
        assert_eq!(listed[0].queued, 2);
        assert_eq!(s.channels_of(a).await.unwrap()[0].queued, 0);
    }

    pub async fn enqueue_authorization_and_limits(db: Db) {
        let s = db.open().await;
        let (a, b, c) = (node(1), node(2), node(3));
        let ch = s.create_channel(a, b, NOW).await.unwrap().id;
        let unauthorized = |r: Result<distsoc_anchor::store::Enqueued, StoreError>| match r {
            Err(e @ StoreError::Unauthorized(_)) => {
                assert_eq!(
                    distsoc_protocol::error::WireCode::error_code(&e),
                    distsoc_protocol::error::ErrorCode::Unauthorized
                );
            }
            other => panic!("expected Unauthorized, got {other:?}"),
        };
        // Unknown channel, non-member sender, wrong recipient.
        unauthorized(s.enqueue(msg(Some(ChannelId([7; 16])), a, b, b"x")).await);
        unauthorized(s.enqueue(msg(Some(ch), c, b, b"x")).await);
        unauthorized(s.enqueue(msg(Some(ch), a, c, b"x")).await);
        unauthorized(s.enqueue(msg(Some(ch), a, a, b"x")).await);
        // Sizes.
        assert!(matches!(
            s.enqueue(msg(None, a, b, b"")).await,
            Err(StoreError::InvalidArgument(_))
        ));
        let too_big = vec![0u8; MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(
            s.enqueue(msg(None, a, b, &too_big)).await,
            Err(StoreError::TooLarge { .. })
        ));
        assert_eq!(
            s.stats().await.unwrap().queued_messages,
            0,
            "nothing stored"
        );
        // Exactly the cap is fine, and comes back whole even with a tiny
        // max_bytes (at least one message).
        let max = vec![0xa5u8; MAX_PAYLOAD_BYTES];
        s.enqueue(msg(Some(ch), b, a, &max)).await.unwrap();
        let page = s.fetch(a, Some(ch), 0, 10, 1, NOW).await.unwrap();
        assert_eq!(page.messages.len(), 1);
        assert_eq!(page.messages[0].payload, max);
    }

    pub async fn client_message_id_dedup(db: Db) {
        let s = db.open().await;
        let (a, b, c) = (node(1), node(2), node(3));
        let ch = s.create_channel(a, b, NOW).await.unwrap().id;
        let with = |m: NewMessage, id: u8| NewMessage {
            client_message_id: Some([id; 16]),
            ..m
        };
        let first = s
            .enqueue(with(msg(Some(ch), a, b, b"one"), 1))
            .await
            .unwrap();
        assert!(!first.duplicate);
        let mut retry = with(msg(Some(ch), a, b, b"one again"), 1);
        retry.received_at_ms = NOW + 1000;
        let again = s.enqueue(retry).await.unwrap();
        assert!(again.duplicate);
        assert_eq!(again.message_id, first.message_id);
        assert_eq!(again.received_at_ms, first.received_at_ms);
        assert_eq!(
            fetch_all(&s, b, Some(ch)).await,
            vec![(first.message_id, b"one".to_vec())]
        );
        // Same id in another queue or from another sender: separate.
        assert!(
            !s.enqueue(with(msg(None, a, b, b"legacy"), 1))
                .await
                .unwrap()
                .duplicate
        );
        assert!(
            !s.enqueue(with(msg(None, c, b, b"other sender"), 1))
                .await
                .unwrap()
                .duplicate
        );
        assert!(
            !s.enqueue(with(msg(Some(ch), b, a, b"reverse"), 1))
                .await
                .unwrap()
                .duplicate
        );
        // Inside one batch: the repeat refers to the first.
        let batch = s
            .enqueue_batch(vec![
                with(msg(None, c, a, b"b1"), 9),
                with(msg(None, c, a, b"b1 retry"), 9),
                msg(None, c, a, b"no id"),
                msg(None, c, a, b"no id"),
            ])
            .await
            .unwrap();
        assert!(!batch[0].duplicate && batch[1].duplicate);
        assert_eq!(batch[0].message_id, batch[1].message_id);
        assert!(
            !batch[2].duplicate && !batch[3].duplicate,
            "no id: no dedup"
        );
        assert_eq!(fetch_all(&s, a, None).await.len(), 3);
        // Concurrent retries store one message.
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.enqueue(with(msg(None, a, c, b"race"), 5)).await.unwrap()
            }));
        }
        let mut ids = HashSet::new();
        for t in tasks {
            ids.insert(t.await.unwrap().message_id);
        }
        assert_eq!(ids.len(), 1);
        assert_eq!(fetch_all(&s, c, None).await.len(), 1);
    }

    pub async fn fetch_limits_and_at_least_one(db: Db) {
        let s = db.open().await;
        let (a, b) = (node(1), node(2));
        let items: Vec<NewMessage> = (0..10u8).map(|i| msg(None, a, b, &[i; 100])).collect();
        s.enqueue_batch(items).await.unwrap();
        let f = |n, bytes| s.fetch(b, None, 0, n, bytes, NOW);
        let p = f(3, 1 << 20).await.unwrap();
        assert_eq!((p.messages.len(), p.more), (3, true));
        let p = f(100, 250).await.unwrap();
        assert_eq!((p.messages.len(), p.more), (2, true));
        let p = f(100, 300).await.unwrap();
        assert_eq!((p.messages.len(), p.more), (3, true));
        let p = f(100, 0).await.unwrap();
        assert_eq!((p.messages.len(), p.more), (1, true), "at least one");
        let p = f(0, 1 << 20).await.unwrap();
        assert_eq!(p.messages.len(), 1, "max_messages 0 counts as 1");
        let p = f(10, 1000).await.unwrap();
        assert_eq!((p.messages.len(), p.more), (10, false));
        let p = f(100, 1 << 20).await.unwrap();
        assert_eq!((p.messages.len(), p.more), (10, false));
        // Paging with ackThrough walks the queue.
        let mut seen = Vec::new();
        let mut ack = 0;
        loop {
            let p = s.fetch(b, None, ack, 4, 1 << 20, NOW).await.unwrap();
            seen.extend(p.messages.iter().map(|m| m.payload[0]));
            if let Some(last) = p.messages.last() {
                ack = last.message_id;
            }
            if !p.more {
                break;
            }
        }
        assert_eq!(seen, (0..10u8).collect::<Vec<_>>());
        // Acknowledge the last page.
        let p = s.fetch(b, None, ack, 4, 1 << 20, NOW).await.unwrap();
        assert!(p.messages.is_empty() && !p.more);
    }

    pub async fn ttl_hides_expired_and_sweeper_deletes(db: Db) {
        let s = db.open().await;
        let (a, b) = (node(1), node(2));
        let short = NewMessage {
            expires_at_ms: NOW + 10,
            ..msg(None, a, b, b"short")
        };
        s.enqueue(short).await.unwrap();
        s.enqueue(msg(None, a, b, b"long")).await.unwrap();
        assert_eq!(
            s.fetch(b, None, 0, 10, 1 << 20, NOW + 9)
                .await
                .unwrap()
                .messages
                .len(),
            2
        );
        let p = s.fetch(b, None, 0, 10, 1 << 20, NOW + 10).await.unwrap();
        assert_eq!(p.messages.len(), 1, "expired at expires_at_ms");
        assert_eq!(p.messages[0].payload, b"long");
        assert!(!p.more);
        assert_eq!(s.sweep_expired(NOW + 10).await.unwrap(), 1);
        assert_eq!(s.sweep_expired(NOW + 10).await.unwrap(), 0);
        assert_eq!(s.stats().await.unwrap().queued_messages, 1);
        assert_eq!(s.sweep_expired(NOW + TTL).await.unwrap(), 1);
        assert_eq!(s.stats().await.unwrap().queued_messages, 0);
        // The sweeper works in chunks: more rows than one chunk.
        let many: Vec<NewMessage> = (0..6_000u32)
            .map(|i| NewMessage {
                expires_at_ms: NOW + 1,
                ..msg(None, a, b, &i.to_le_bytes())
            })
            .collect();
        s.enqueue_batch(many).await.unwrap();
        assert_eq!(s.sweep_expired(NOW + 1).await.unwrap(), 6_000);
    }

    pub async fn waiter_in_process_no_lost_wakeup(db: Db) {
        let s = db.open().await;
        let (a, b) = (node(1), node(2));
        let ch = s.create_channel(a, b, NOW).await.unwrap().id;
        // FetchWait's order: register, fetch (empty), then wait. An enqueue
        // between the fetch and the await is not lost.
        let w = s.waiter(b, Some(ch));
        let other_queue = s.waiter(b, None);
        let other_member = s.waiter(a, Some(ch));
        assert!(s
            .fetch(b, Some(ch), 0, 10, 1 << 20, NOW)
            .await
            .unwrap()
            .messages
            .is_empty());
        assert!(!w.is_woken());
        s.enqueue(msg(Some(ch), a, b, b"hi")).await.unwrap();
        within("in-process wake", w.wait()).await;
        assert!(!other_queue.is_woken(), "another queue of the same node");
        assert!(!other_member.is_woken(), "the other member's queue");
        assert!(!ready_now(other_queue.wait()).await);
        // A waiter already waiting in another task is woken too.
        let w = s.waiter(b, None);
        let waiting = tokio::spawn(w.wait());
        let s2 = s.clone();
        tokio::spawn(async move { s2.enqueue(msg(None, a, b, b"legacy")).await.unwrap() });
        within("woken while waiting", waiting).await.unwrap();
        // Batches and enqueues through a clone wake as well.
        let w = s.waiter(a, Some(ch));
        s.clone()
            .enqueue_batch(vec![msg(Some(ch), b, a, b"1"), msg(Some(ch), b, a, b"2")])
            .await
            .unwrap();
        within("woken by a batch", w.wait()).await;
        drop(other_member);
        assert_eq!(s.waiting_queues(), 0, "registry cleaned up");
    }

    pub async fn enqueue_batch_is_all_or_nothing(db: Db) {
        let s = db.open().await;
        let (a, b, c) = (node(1), node(2), node(3));
        let ch = s.create_channel(a, b, NOW).await.unwrap().id;
        let ok = s
            .enqueue_batch(vec![
                msg(Some(ch), a, b, b"1"),
                msg(None, a, c, b"2"),
                msg(Some(ch), b, a, b"3"),
            ])
            .await
            .unwrap();
        assert_eq!(ok.len(), 3);
        assert!(ok.windows(2).all(|w| w[0].message_id < w[1].message_id));
        let before = s.stats().await.unwrap().queued_messages;
        let bad = s
            .enqueue_batch(vec![
                msg(Some(ch), a, b, b"fine"),
                msg(Some(ch), c, b, b"not a member"),
            ])
            .await;
        assert!(matches!(bad, Err(StoreError::Unauthorized(_))), "{bad:?}");
        assert_eq!(s.stats().await.unwrap().queued_messages, before);
        assert!(s.enqueue_batch(Vec::new()).await.unwrap().is_empty());
    }

    pub async fn concurrent_enqueues_group_commit(db: Db) {
        let s = db.open().await;
        let recipients: Vec<NodeId> = (10..14).map(node).collect();
        let sender = node(1);
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let s = s.clone();
            let to = recipients[i as usize % recipients.len()];
            tasks.push(tokio::spawn(async move {
                let e = s
                    .enqueue(msg(None, sender, to, &i.to_le_bytes()))
                    .await
                    .unwrap();
                s.audit(AuditEvent {
                    at_ms: NOW,
                    kind: AuditKind::Send,
                    actor: sender,
                    channel: None,
                    detail: String::new(),
                })
                .await
                .unwrap();
                (to, e.message_id)
            }));
        }
        let mut acked = HashSet::new();
        for t in tasks {
            assert!(acked.insert(t.await.unwrap()), "ids are unique");
        }
        for r in &recipients {
            let got = fetch_all(&s, *r, None).await;
            assert_eq!(got.len(), 50);
            assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
            for (id, _) in got {
                assert!(acked.contains(&(*r, id)));
            }
        }
        assert_eq!(s.recent_audit(1000).await.unwrap().len(), 200);
    }

    /// Refuses every audit insert (a trigger) or lifts the refusal.
    async fn refuse_audit(db: &Db, refuse: bool) {
        let sql = match (db.is_pg(), refuse) {
            (true, true) => {
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql
                     AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$;
                 CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
                     FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit();"
            }
            (true, false) => {
                "DROP TRIGGER refuse_audit ON audit_log; DROP FUNCTION refuse_audit();"
            }
            (false, true) => {
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
                 BEGIN SELECT RAISE(ABORT, 'audit refused'); END;"
            }
            (false, false) => "DROP TRIGGER refuse_audit;",
        };
        db.raw_exec(sql).await;
    }

    /// An enqueue and its `send` audit row, a fetch's acknowledgement and
    /// its `receive` row: each pair commits together or not at all.
    pub async fn audit_rows_commit_with_their_operation(db: Db) {
        let s = db.open().await;
        let (a, b) = (node(1), node(2));
        let ch = s.create_channel(a, b, NOW).await.unwrap().id;
        let event = |kind, actor| AuditEvent {
            at_ms: NOW,
            kind,
            actor,
            channel: Some(ch),
            detail: String::new(),
        };
        refuse_audit(&db, true).await;
        assert!(s
            .enqueue_audited(msg(Some(ch), a, b, b"one"), event(AuditKind::Send, a))
            .await
            .is_err());
        assert!(fetch_all(&s, b, Some(ch)).await.is_empty(), "not stored");
        refuse_audit(&db, false).await;

        let e = s
            .enqueue_audited(msg(Some(ch), a, b, b"one"), event(AuditKind::Send, a))
            .await
            .unwrap();
        let e2 = s
            .enqueue_audited(msg(Some(ch), a, b, b"two"), event(AuditKind::Send, a))
            .await
            .unwrap();
        let log = s.recent_audit(10).await.unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!((log[0].kind, log[0].actor), (AuditKind::Send, s.redact(&a)));

        // Acknowledging the first message returns the second: audited.
        refuse_audit(&db, true).await;
        assert!(s
            .fetch_audited(b, Some(ch), e.message_id, 10, usize::MAX, NOW)
            .await
            .is_err());
        assert_eq!(
            fetch_all(&s, b, Some(ch)).await.len(),
            2,
            "the acknowledgement was not applied"
        );
        refuse_audit(&db, false).await;

        let page = s
            .fetch_audited(b, Some(ch), e.message_id, 10, usize::MAX, NOW)
            .await
            .unwrap();
        assert_eq!(page.messages.len(), 1);
        let page = s
            .fetch_audited(b, Some(ch), e2.message_id, 10, usize::MAX, NOW)
            .await
            .unwrap();
        assert!(page.messages.is_empty());
        let log = s.recent_audit(10).await.unwrap();
        assert_eq!(log.len(), 3, "an empty page is not audited");
        assert_eq!(log[0].kind, AuditKind::Receive);
        assert_eq!(log[0].detail, "1 messages");
        assert_eq!(log[0].actor, s.redact(&b));
        assert!(fetch_all(&s, b, Some(ch)).await.is_empty(), "acknowledged");
    }

    /// A fetch repeating an acknowledgement this store has already
    /// committed has nothing to delete and is served as a read, outside
    /// any write transaction (seen here: an audit insert that would fail
    /// does not fail it). Messages enqueued since, by this store or another
    /// on the same database, are returned and not deleted; a newer
    /// acknowledgement is a write again, committed with its audit row.
    pub async fn applied_acknowledgement_is_a_read(db: Db) {
        let one = db.open().await;
        let two = db.open().await;
        let (a, b) = (node(1), node(2));
        let ch = one.create_channel(a, b, NOW).await.unwrap().id;
        let enqueue = |s: &AnchorStore, body: &'static [u8]| {
            let s = s.clone();
            async move {
                s.enqueue(msg(Some(ch), a, b, body))
                    .await
                    .unwrap()
                    .message_id
            }
        };
        let ids = |p: &FetchPage| p.messages.iter().map(|m| m.message_id).collect::<Vec<_>>();
        let m1 = enqueue(&one, b"one").await;
        let p = one
            .fetch_audited(b, Some(ch), m1, 10, usize::MAX, NOW)
            .await
            .unwrap();
        assert!(p.messages.is_empty());
        let m2 = enqueue(&two, b"two").await;
        let m3 = enqueue(&one, b"three").await;
        assert!(m1 < m2 && m2 < m3);

        refuse_audit(&db, true).await;
        let p = one
            .fetch_audited(b, Some(ch), m1, 10, usize::MAX, NOW)
            .await
            .unwrap();
        assert_eq!(
            ids(&p),
            vec![m2, m3],
            "the repeated acknowledgement is a read"
        );
        assert!(
            one.fetch_audited(b, Some(ch), m2, 10, usize::MAX, NOW)
                .await
                .is_err(),
            "a new acknowledgement commits with its audit row"
        );
        refuse_audit(&db, false).await;
        assert_eq!(
            fetch_all(&one, b, Some(ch)).await,
            vec![(m2, b"two".to_vec()), (m3, b"three".to_vec())],
            "nothing deleted"
        );
        let p = one
            .fetch_audited(b, Some(ch), m2, 10, usize::MAX, NOW)
            .await
            .unwrap();
        assert_eq!(ids(&p), vec![m3]);
        let p = two
            .fetch(b, Some(ch), m2, 10, usize::MAX, NOW)
            .await
            .unwrap();
        assert_eq!(ids(&p), vec![m3], "the other store sees the same queue");
    }

    /// Channels never change once created, so a store reads a channel's
    /// members once and then serves membership from memory (seen here by
    /// removing the row behind its back, which nothing in the anchor
    /// does); an unknown id is looked up every time, so a channel created
    /// through another store on the same database is found at once.
    pub async fn channel_membership_is_read_once(db: Db) {
        let one = db.open().await;
        let two = db.open().await;
        let (a, b, c) = (node(1), node(2), node(3));
        let ab = one.create_channel(a, b, NOW).await.unwrap();
        assert_eq!(two.channel(ab.id).await.unwrap(), Some(ab));
        let ac_id = {
            assert_eq!(two.channel(ChannelId([5; 16])).await.unwrap(), None);
            let ac = one.create_channel(a, c, NOW).await.unwrap();
            assert_eq!(
                two.channel(ac.id).await.unwrap(),
                Some(ac),
                "not cached as unknown"
            );
            ac.id
        };
        db.raw_exec("DELETE FROM channels").await;
        assert_eq!(two.channel(ab.id).await.unwrap(), Some(ab));
        two.enqueue(msg(Some(ab.id), a, b, b"x")).await.unwrap();
        assert!(matches!(
            two.enqueue(msg(Some(ab.id), c, b, b"x")).await,
            Err(StoreError::Unauthorized(_))
        ));
        assert!(two.channel(ac_id).await.unwrap().is_some());
        let three = db.open().await;
        assert_eq!(three.channel(ab.id).await.unwrap(), None);
        assert!(matches!(
            three.enqueue(msg(Some(ab.id), a, b, b"x")).await,
            Err(StoreError::Unauthorized(_))
        ));
    }

    pub async fn acknowledged_messages_survive_drop_and_reopen(db: Db) {
        let s = db.open().await;
        let (a, b) = (node(1), node(2));
        let mut tasks = Vec::new();
        for i in 0..60u32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.enqueue(msg(None, a, b, &i.to_le_bytes()))
                    .await
                    .unwrap()
                    .message_id
            }));
        }
        let mut acked = BTreeSet::new();
        for t in tasks {
            acked.insert(t.await.unwrap());
        }
        // No close, no flush: just drop every handle.
        drop(s);
        let s = db.open().await;
        let got: BTreeSet<u64> = fetch_all(&s, b, None)
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(got, acked);
    }

    pub async fn acknowledged_messages_survive_kill_9(db: Db) {
        // The writer is another process (this test binary, running only
        // `kill9_child`), killed with SIGKILL mid-load; every message it
        // printed as acknowledged must be fetchable afterwards.
        let url = db.url.clone();
        let acked = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
                .env("DISTSOC_KILL9_URL", &url)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
            let mut acked = Vec::new();
            let started = Instant::now();
            for line in lines.by_ref() {
                if let Some(id) = line.unwrap().strip_prefix("ACK ") {
                    acked.push(id.trim().parse::<u64>().unwrap());
                    if acked.len() >= 300 {
                        break;
                    }
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "child too slow"
                );
            }
            child.kill().unwrap();
            child.wait().unwrap();
            // Acks written before the kill are still in the pipe.
            for line in lines {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("ACK ") {
                    if let Ok(id) = id.trim().parse::<u64>() {
                        acked.push(id);
                    }
                }
            }
            acked
        })
        .await
        .unwrap();
        assert!(acked.len() >= 300);
        let s = db.open().await;
        let got: HashSet<u64> = fetch_all(&s, KILL9_TO, None)
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let lost: Vec<u64> = acked
            .iter()
            .copied()
            .filter(|id| !got.contains(id))
            .collect();
        assert!(
            lost.is_empty(),
            "acknowledged but lost after kill -9: {lost:?}"
        );
    }

    pub async fn check_in_and_address(db: Db) {
        let s = db.open().await;
        let n = node(1);
        let a1: SocketAddr = "192.0.2.1:4433".parse().unwrap();
        let a2: SocketAddr = "[2001:db8::1]:4433".parse().unwrap();
        assert_eq!(s.address(n).await.unwrap(), None);
        s.check_in(n, &[a1, a2], false, NOW).await.unwrap();
        assert_eq!(
            s.address(n).await.unwrap(),
            Some(CheckIn {
                node: n,
                addrs: vec![a1, a2],
                is_anchor: false,
                last_seen_ms: NOW,
                verified_at_ms: NOW,
            })
        );
        // A later sighting of addresses verified earlier keeps both times.
        s.check_in_verified(n, &[a1, a2], false, NOW + 1, NOW - 500)
            .await
            .unwrap();
        let c = s.address(n).await.unwrap().unwrap();
        assert_eq!((c.last_seen_ms, c.verified_at_ms), (NOW + 1, NOW - 500));
        // An older check-in arriving late changes nothing; a newer one wins.
        s.check_in(n, &[a2], true, NOW - 1).await.unwrap();
        assert_eq!(s.address(n).await.unwrap().unwrap().addrs, vec![a1, a2]);
        s.check_in(n, &[a2], true, NOW + 2).await.unwrap();
        let c = s.address(n).await.unwrap().unwrap();
        assert_eq!(
            (c.addrs, c.is_anchor, c.last_seen_ms),
            (vec![a2], true, NOW + 2)
        );
        assert!(matches!(
            s.check_in(n, &[], false, NOW).await,
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(matches!(
            s.check_in(n, &vec![a1; 17], false, NOW).await,
            Err(StoreError::InvalidArgument(_))
        ));
        // Many concurrent check-ins of one node (batched together) keep the
        // newest.
        let mut tasks = Vec::new();
        for i in 0..20u64 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let a: SocketAddr = format!("198.51.100.{}:1", i + 1).parse().unwrap();
                s.check_in(n, &[a], false, NOW + 10 + i).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let c = s.address(n).await.unwrap().unwrap();
        assert_eq!(c.last_seen_ms, NOW + 29);
        assert_eq!(c.addrs, vec!["198.51.100.20:1".parse().unwrap()]);
        assert_eq!(s.forget_checkins_before(NOW + 30).await.unwrap(), 1);
        assert_eq!(s.address(n).await.unwrap(), None);
    }

    pub async fn bootstrap_is_diverse_and_excludes(db: Db) {
        let s = db.open().await;
        let mut i = 0u8;
        let mut next = || {
            i += 1;
            node(i)
        };
        let mut check_ins: Vec<(NodeId, SocketAddr, bool, u64)> = Vec::new();
        // 40 nodes crowded into one /16.
        for k in 0..40u8 {
            check_ins.push((
                next(),
                format!("10.1.{k}.1:4433").parse().unwrap(),
                false,
                NOW,
            ));
        }
        // 30 in distinct /16s.
        let mut distinct = Vec::new();
        for k in 0..30u8 {
            let n = next();
            distinct.push(n);
            check_ins.push((
                n,
                format!("172.{}.0.1:4433", 100 + k).parse().unwrap(),
                false,
                NOW,
            ));
        }
        // 10 IPv6 in distinct /32s, and 10 more in one /32.
        for k in 0..10u16 {
            check_ins.push((
                next(),
                format!("[2001:{:x}::1]:4433", 0x100 + k).parse().unwrap(),
                false,
                NOW,
            ));
            check_ins.push((
                next(),
                format!("[2a00:1::{k:x}]:4433").parse().unwrap(),
                false,
                NOW,
            ));
        }
        // 6 anchors.
        let mut anchors = Vec::new();
        for k in 0..6u8 {
            let n = next();
            anchors.push(n);
            check_ins.push((n, format!("203.{k}.113.1:4433").parse().unwrap(), true, NOW));
        }
        // 5 stale.
        let mut stale = Vec::new();
        for k in 0..5u8 {
            let n = next();
            stale.push(n);
            check_ins.push((
                n,
                format!("198.{k}.0.1:4433").parse().unwrap(),
                false,
                NOW - 10_000,
            ));
        }
        let mut tasks = Vec::new();
        for (n, a, anchor, at) in check_ins {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.check_in(n, &[a], anchor, at).await.unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let exclude: Vec<NodeId> = distinct[..3].to_vec();
        let prefix = |c: &CheckIn| -> Vec<u8> {
            match c.addrs[0].ip() {
                std::net::IpAddr::V4(v) => v.octets()[..2].to_vec(),
                std::net::IpAddr::V6(v) => v.octets()[..4].to_vec(),
            }
        };
        for _round in 0..5 {
            let got = s.bootstrap_peers(20, &exclude, NOW - 1000).await.unwrap();
            assert_eq!(got.len(), 20);
            let nodes: HashSet<NodeId> = got.iter().map(|c| c.node).collect();
            assert_eq!(nodes.len(), 20, "no repeats");
            assert!(exclude.iter().all(|n| !nodes.contains(n)), "excluded");
            assert!(stale.iter().all(|n| !nodes.contains(n)), "stale");
            assert!(got.iter().any(|c| c.is_anchor), "some anchors");
            let prefixes: HashSet<Vec<u8>> = got.iter().map(prefix).collect();
            assert_eq!(prefixes.len(), 20, "one per prefix while prefixes last");
        }
        // Asking for everything returns every eligible peer once.
        let all = s.bootstrap_peers(200, &exclude, NOW - 1000).await.unwrap();
        assert_eq!(all.len(), 40 + 27 + 20 + 6);
        assert!(s.bootstrap_peers(0, &[], 0).await.unwrap().is_empty());
        assert_eq!(s.stats().await.unwrap().checkins, 40 + 30 + 20 + 6 + 5);
        assert!(anchors.iter().all(|a| all.iter().any(|c| c.node == *a)));
    }

    pub async fn audit_log_is_redacted(db: Db) {
        let s = db.open().await;
        let alice = NodeId([0x11; 32]);
        let bob = NodeId([0x22; 32]);
        let ch = s.create_channel(alice, bob, NOW).await.unwrap().id;
        let kinds = [
            AuditKind::ChannelCreated,
            AuditKind::AuthzFailure,
            AuditKind::Send,
            AuditKind::Receive,
        ];
        for (i, k) in kinds.iter().enumerate() {
            s.audit(AuditEvent {
                at_ms: NOW + i as u64,
                kind: *k,
                actor: if i % 2 == 0 { alice } else { bob },
                channel: Some(ch),
                detail: format!("{i} messages"),
            })
            .await
            .unwrap();
        }
        s.audit(AuditEvent {
            at_ms: NOW + 9,
            kind: AuditKind::AuthzFailure,
            actor: alice,
            channel: None,
            detail: "not a member of this channel".into(),
        })
        .await
        .unwrap();
        let log = s.recent_audit(100).await.unwrap();
        assert_eq!(log.len(), 5);
        assert_eq!(log[0].at_ms, NOW + 9, "newest first");
        assert_eq!(log[0].channel, None);
        let by_time: Vec<AuditKind> = log.iter().rev().take(4).map(|r| r.kind).collect();
        assert_eq!(by_time, kinds.to_vec());
        assert_eq!(log[4].actor, s.redact(&alice));
        assert_eq!(log[3].actor, s.redact(&bob));
        assert_ne!(s.redact(&alice), s.redact(&bob));
        assert_eq!(log[4].channel, Some(ch));
        // No raw identity bytes anywhere in the stored rows: not the key,
        // not a prefix of it, not its hex.
        let rows = db.raw_rows("SELECT * FROM audit_log").await;
        assert_eq!(rows.len(), 5);
        for id in [alice, bob] {
            let needles: Vec<Vec<u8>> = vec![
                id.0.to_vec(),
                id.0[..8].to_vec(),
                id.0[..4].to_vec(),
                id.to_hex().into_bytes(),
                id.short().into_bytes(),
            ];
            for row in &rows {
                for col in row {
                    for n in &needles {
                        assert!(
                            !col.windows(n.len()).any(|w| w == n.as_slice()),
                            "raw identity in the audit log: {col:?}"
                        );
                    }
                }
            }
        }
        // Control characters cannot break the log (nor the enqueues
        // group-committed with the event).
        let (x, y) = (node(50), node(51));
        let (e, a) = tokio::join!(
            s.enqueue(msg(None, x, y, b"with a bad audit")),
            s.audit(AuditEvent {
                at_ms: NOW + 10,
                kind: AuditKind::Send,
                actor: x,
                channel: None,
                detail: "nul\0byte".into(),
            })
        );
        e.unwrap();
        a.unwrap();
        assert_eq!(s.recent_audit(1).await.unwrap()[0].detail, "nul byte");
        // Retention.
        assert_eq!(s.prune_audit_before(NOW + 2).await.unwrap(), 2);
        assert_eq!(s.recent_audit(100).await.unwrap().len(), 4);
        // The salt is per database and survives reopening.
        let tag = s.redact(&alice);
        drop(s);
        assert_eq!(db.open().await.redact(&alice), tag);
        let other = AnchorStore::open("sqlite::memory:").await.unwrap();
        assert_ne!(other.redact(&alice), tag);
    }

    pub async fn posts_pruned_by_receive_time(db: Db) {
        let s = db.open().await;
        let (alice, bob) = (key(1), key(2));
        let pid = |k: &SigningKey| PostingId(k.public());
        let old_public = public_post(&alice, 1);
        let old_sealed = sealed_post(&alice, 2, &[pid(&bob)]);
        let new_public = public_post(&alice, 3);
        for r in s
            .insert_posts(&[old_public, old_sealed], NOW)
            .await
            .unwrap()
        {
            r.unwrap();
        }
        s.insert_posts(std::slice::from_ref(&new_public), NOW + 10_000)
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(s.prune_posts_received_before(NOW).await.unwrap(), 0);
        assert_eq!(s.prune_posts_received_before(NOW + 5_000).await.unwrap(), 2);
        // The public one is gone from the author arm, the sealed one from the
        // recipient index; the newer post and its seq are untouched.
        let page = s
            .pull(NodeId(bob.public()), &[alice.public(), bob.public()], 0, 10)
            .await
            .unwrap();
        let ids: Vec<_> = page.posts.iter().map(SyncPost::post_id).collect();
        assert_eq!(ids, vec![new_public.post_id()]);
        assert_eq!(s.stats().await.unwrap().posts, 1);
        if !db.is_pg() {
            let rows = db.raw_rows("SELECT count(*) FROM post_recipients").await;
            assert_eq!(rows[0][0], b"0".to_vec(), "recipient rows cascade");
        }
    }

    pub async fn operator_state_persists_and_is_shared(db: Db) {
        let s = db.open().await;
        let other = db.open().await;
        let (a, b) = (node(1), node(2));
        assert!(s.bans().await.unwrap().is_empty());
        assert_eq!(s.setting(SETTING_MAILBOX_TTL_MS).await.unwrap(), None);
        assert!(s.set_ban(b, true, NOW).await.unwrap());
        assert!(!s.set_ban(b, true, NOW).await.unwrap(), "already banned");
        assert!(s.set_ban(a, true, NOW).await.unwrap());
        s.set_setting(SETTING_MAILBOX_TTL_MS, 3_600_000)
            .await
            .unwrap();
        s.set_setting(SETTING_MAILBOX_TTL_MS, 7_200_000)
            .await
            .unwrap();
        // Another store on the same database sees it.
        assert_eq!(other.bans().await.unwrap(), vec![a, b]);
        assert_eq!(
            other.setting(SETTING_MAILBOX_TTL_MS).await.unwrap(),
            Some(7_200_000)
        );
        assert!(other.set_ban(a, false, NOW).await.unwrap());
        assert!(!other.set_ban(a, false, NOW).await.unwrap(), "not banned");
        drop((s, other));
        // And it survives a restart.
        let s = db.open().await;
        assert_eq!(s.bans().await.unwrap(), vec![b]);
        assert_eq!(
            s.setting(SETTING_MAILBOX_TTL_MS).await.unwrap(),
            Some(7_200_000)
        );
    }

    pub async fn stats_count(db: Db) {
        let s = db.open().await;
        let (a, b) = (node(1), node(2));
        assert_eq!(s.stats().await.unwrap(), Default::default());
        let ch = s.create_channel(a, b, NOW).await.unwrap().id;
        s.create_channel(a, node(3), NOW).await.unwrap();
        s.enqueue(msg(Some(ch), a, b, &[0; 1000])).await.unwrap();
        s.enqueue(msg(None, a, b, &[0; 24])).await.unwrap();
        s.check_in(a, &["192.0.2.1:1".parse().unwrap()], false, NOW)
            .await
            .unwrap();
        let st = s.stats().await.unwrap();
        assert_eq!(st.channels, 2);
        assert_eq!(st.queued_messages, 2);
        assert_eq!(st.queued_bytes, 1024);
        assert_eq!(st.checkins, 1);
        assert_eq!(st.posts, 0);
    }

    fn key(i: u8) -> SigningKey {
        SigningKey::from_seed(&[i; 32])
    }

    fn public_post(k: &SigningKey, ms: u64) -> SyncPost {
        let p = Post::new_public(PostingId(k.public()), ms, format!("p{ms}"), vec![])
            .sign(k)
            .unwrap();
        SyncPost::new(k, p, PostVisibility::Public, None)
    }

    fn sealed_post(k: &SigningKey, ms: u64, to: &[PostingId]) -> SyncPost {
        let body = PostBody {
            text: format!("secret {ms}"),
            attachments: vec![],
            rotation: None,
            archive: None,
            group: None,
        };
        let (p, v) = seal_post(k, ms, &body, to, &mut rand_core::OsRng).unwrap();
        SyncPost::new(k, p, v, None)
    }

    /// A pull far behind the head reads the candidate streams; near the
    /// head it scans the rows after the cursor (`store/pull.rs`). Both
    /// must return exactly the posts the rule admits, in store order, and
    /// paging through everything from cursor 0 must see each once.
    pub async fn pull_pages_follow_the_rule_near_and_far_from_the_head(db: Db) {
        let s = db.open().await;
        let reader = key(10);
        let authors: Vec<SigningKey> = (11..16).map(key).collect();
        let stranger = key(20);
        let pid = |k: &SigningKey| PostingId(k.public());
        let mut posts = Vec::new();
        for i in 0..200u64 {
            let a = &authors[(i % 5) as usize];
            let p = match i % 8 {
                3 => sealed_post(a, i, &[pid(&reader)]),
                5 => sealed_post(a, i, &[pid(&stranger), pid(a)]),
                6 => public_post(&reader, i),
                7 if i % 16 == 7 => sealed_post(&reader, i, &[pid(&stranger)]),
                _ => public_post(a, i),
            };
            posts.push(p);
        }
        let mut seqs = Vec::new();
        for chunk in posts.chunks(50) {
            for r in s.insert_posts(chunk, NOW).await.unwrap() {
                match r.unwrap() {
                    Inserted::New { seq } => seqs.push(seq),
                    other => panic!("{other:?}"),
                }
            }
        }
        // Follows authors 0 and 1, and names itself.
        let ids = [pid(&authors[0]).0, pid(&authors[1]).0, pid(&reader).0];
        let me = NodeId(reader.public());
        let admitted = |p: &SyncPost| {
            let author = p.post.body().author;
            if author == pid(&reader) {
                return true;
            }
            if p.visibility.is_encrypted() {
                p.visibility
                    .recipients()
                    .iter()
                    .any(|w| w.recipient == reader.public() && w.recipient != author.0)
            } else {
                ids.contains(&author.0)
            }
        };
        let expected_after = |cursor: u64| -> Vec<SyncPost> {
            posts
                .iter()
                .zip(&seqs)
                .filter(|(p, &q)| q > cursor && admitted(p))
                .map(|(p, _)| p.clone())
                .collect()
        };
        assert!(expected_after(0).len() > 60, "the data should span pages");
        // Every cursor, from far behind (streams) to the head (scan).
        for cursor in [
            0, seqs[20], seqs[99], seqs[150], seqs[180], seqs[198], seqs[199],
        ] {
            let p = s.pull(me, &ids, cursor, 500).await.unwrap();
            assert_eq!(p.posts, expected_after(cursor), "cursor {cursor}");
            assert!(!p.more);
        }
        // Paging from 0 with a small limit crosses from streams to scan.
        let mut got = Vec::new();
        let mut cursor = 0;
        loop {
            let p = s.pull(me, &ids, cursor, 9).await.unwrap();
            assert!(p.posts.len() <= 9);
            assert!(p.next_seq >= cursor);
            got.extend(p.posts);
            cursor = p.next_seq;
            if !p.more {
                break;
            }
        }
        assert_eq!(got, expected_after(0));
        // At the head: nothing, and the cursor stays.
        let p = s.pull(me, &ids, seqs[199], 9).await.unwrap();
        assert!(p.posts.is_empty() && !p.more);
        assert_eq!(p.next_seq, seqs[199]);
    }

    /// The anchor's reply is built from the stored bytes
    /// (`StoredPullSyncResponse`); it must be the frame of the decoded
    /// reply, byte for byte: public and sealed posts, headers, visibility
    /// updates, deletes, profiles, pages of every size.
    pub async fn pull_replies_from_stored_bytes_are_the_decoded_frames(db: Db) {
        use distsoc_node::compose;
        use distsoc_protocol::limits::PROTOCOL_VERSION;
        use distsoc_protocol::messages::content::{
            sign_checked, CommentPolicy, DeleteRecordBody, PostHeader,
        };
        use distsoc_protocol::messages::identity::PublicProfile;
        use distsoc_protocol::messages::signed::Signed;
        use distsoc_protocol::messages::social::PullSyncResponse;
        use distsoc_protocol::messages::stored::StoredPullSyncResponse;
        use distsoc_protocol::messages::Message;

        let s = db.open().await;
        let (alice, bob, carol) = (key(1), key(2), key(3));
        let pid = |k: &SigningKey| PostingId(k.public());
        let nid = |k: &SigningKey| NodeId(k.public());
        let mut posts = Vec::new();
        for i in 0..60u64 {
            let a = if i % 2 == 0 { &alice } else { &carol };
            let mut p = match i % 4 {
                0 => public_post(a, i),
                1 => sealed_post(a, i, &[pid(&bob), pid(a)]),
                2 => sealed_post(a, i, &[pid(&bob), pid(&carol), pid(&alice)]),
                _ => public_post(a, i),
            };
            if i % 3 == 0 {
                let h = PostHeader::new(p.post_id(), pid(a), CommentPolicy::FollowersOnly, i)
                    .unwrap()
                    .sign(a)
                    .unwrap();
                p.header = Some(h);
            }
            posts.push(p);
        }
        for r in s.insert_posts(&posts, NOW).await.unwrap() {
            assert!(matches!(r.unwrap(), Inserted::New { .. }));
        }
        // A visibility update (re-wrapped for bob alone) and a delete.
        let update =
            compose::rewrap(&alice, &posts[2], &[pid(&bob)], NOW, &mut rand_core::OsRng).unwrap();
        s.apply_visibility_update(&update).await.unwrap();
        let delete = sign_checked(
            DeleteRecordBody {
                post_id: posts[4].post_id(),
                author: pid(&alice),
                deleted_at_ms: NOW,
                replaced_by: None,
            },
            &alice,
        )
        .unwrap();
        s.apply_delete(&delete, NOW).await.unwrap();
        // More tombstones than a scan window of a few streams holds (64):
        // records of posts never held here, served to alice's followers.
        let mut deletes = vec![delete.clone()];
        for i in 0..70u8 {
            let d = sign_checked(
                DeleteRecordBody {
                    post_id: distsoc_protocol::ids::PostId([i; 32]),
                    author: pid(&alice),
                    deleted_at_ms: NOW,
                    replaced_by: None,
                },
                &alice,
            )
            .unwrap();
            s.apply_delete(&d, NOW).await.unwrap();
            deletes.push(d);
        }
        // From the start (streams) and from a cursor near the last ones
        // (the scan), every delete once, in order.
        let p = s.pull(nid(&carol), &[pid(&alice).0], 0, 500).await.unwrap();
        assert_eq!(p.deletes, deletes);
        let mut cursor = 0;
        let mut got = Vec::new();
        loop {
            let p = s
                .pull(nid(&carol), &[pid(&alice).0], cursor, 13)
                .await
                .unwrap();
            got.extend(p.deletes);
            cursor = p.next_seq;
            if !p.more {
                break;
            }
        }
        assert_eq!(got, deletes);
        let profile = Signed::sign(
            PublicProfile {
                posting_id: pid(&alice),
                display_name: "alice".into(),
                bio: "b".into(),
                anchors: vec![],
                avatar: None,
                updated_at_ms: 1,
                network_id: None,
            },
            &alice,
        );

        let mut pages = 0;
        for (who, ids) in [
            (nid(&bob), vec![pid(&bob).0, pid(&alice).0, pid(&carol).0]),
            (nid(&carol), vec![pid(&alice).0]),
            (nid(&alice), vec![]),
        ] {
            for limit in [1, 7, 200] {
                let mut cursor = 0;
                loop {
                    let stored = s.pull_stored(who, &ids, cursor, limit).await.unwrap();
                    let decoded = s.pull(who, &ids, cursor, limit).await.unwrap();
                    assert_eq!(stored.posts.len(), decoded.posts.len());
                    for (a, b) in stored.posts.iter().zip(&decoded.posts) {
                        assert_eq!(&a.decode().unwrap(), b);
                    }
                    let profiles = if limit == 7 {
                        vec![profile.clone()]
                    } else {
                        vec![]
                    };
                    let want = Message::PullSyncResponse(PullSyncResponse {
                        version: PROTOCOL_VERSION,
                        posts: decoded.posts,
                        next_seq: decoded.next_seq,
                        more: decoded.more,
                        deletes: decoded.deletes,
                        profiles: profiles.clone(),
                    });
                    let got = StoredPullSyncResponse {
                        version: PROTOCOL_VERSION,
                        posts: stored.posts,
                        next_seq: stored.next_seq,
                        more: stored.more,
                        deletes: stored.deletes,
                        profiles,
                    };
                    assert_eq!(
                        got.to_frame().unwrap(),
                        want.to_frame().unwrap(),
                        "cursor {cursor}, limit {limit}"
                    );
                    pages += 1;
                    cursor = stored.next_seq;
                    if !stored.more {
                        break;
                    }
                }
            }
        }
        assert!(pages > 20, "{pages} pages");
    }

    pub async fn posts_insert_and_pull_with_recipient_match(db: Db) {
        let s = db.open().await;
        let (alice, bob, carol) = (key(1), key(2), key(3));
        let pid = |k: &SigningKey| PostingId(k.public());
        let nid = |k: &SigningKey| NodeId(k.public());
        let public = public_post(&alice, 1);
        let to_bob = sealed_post(&alice, 2, &[pid(&bob), pid(&alice)]);
        let to_carol = sealed_post(&alice, 3, &[pid(&carol)]);
        let mut tampered = public_post(&alice, 4);
        tampered.post = public_post(&bob, 4).post;
        tampered.visibility_signature = Some([0; 64]);
        let res = s
            .insert_posts(
                &[
                    public.clone(),
                    to_bob.clone(),
                    tampered,
                    to_carol.clone(),
                    public.clone(),
                ],
                NOW,
            )
            .await
            .unwrap();
        assert!(matches!(res[0], Ok(Inserted::New { .. })));
        assert!(matches!(res[1], Ok(Inserted::New { .. })));
        assert!(
            matches!(res[2], Err(StoreError::Invalid(_))),
            "{:?}",
            res[2]
        );
        assert!(matches!(res[3], Ok(Inserted::New { .. })));
        assert!(matches!(res[4], Ok(Inserted::Duplicate)));
        let seqs: Vec<u64> = res
            .iter()
            .filter_map(|r| match r {
                Ok(Inserted::New { seq }) => Some(*seq),
                _ => None,
            })
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        assert!(matches!(
            s.insert_posts(std::slice::from_ref(&public), NOW)
                .await
                .unwrap()[0],
            Ok(Inserted::Duplicate)
        ));
        assert_eq!(s.stats().await.unwrap().posts, 3);

        // Bob follows nobody: finds only the post sealed to him (recipient
        // match), not alice's public post nor the one to carol.
        let p = s.pull(nid(&bob), &[pid(&bob).0], 0, 100).await.unwrap();
        assert_eq!(p.posts, vec![to_bob.clone()]);
        assert!(!p.more);
        // Carol follows alice: public post + the one sealed to her.
        let p = s
            .pull(nid(&carol), &[pid(&alice).0, pid(&carol).0], 0, 100)
            .await
            .unwrap();
        assert_eq!(p.posts, vec![public.clone(), to_carol.clone()]);
        // Following alice alone never yields her encrypted posts (alice's
        // self-wrap on to_bob does not count).
        let p = s.pull(nid(&carol), &[pid(&alice).0], 0, 100).await.unwrap();
        assert_eq!(p.posts, vec![public.clone()]);
        // Alice gets her own posts back, whatever their visibility.
        let p = s.pull(nid(&alice), &[], 0, 100).await.unwrap();
        assert_eq!(
            p.posts,
            vec![public.clone(), to_bob.clone(), to_carol.clone()]
        );
        // A stranger gets nothing.
        let p = s.pull(random_node(), &[[7; 32]], 0, 100).await.unwrap();
        assert!(p.posts.is_empty());
        assert_eq!(p.next_seq, 0);
        // Paging: limit 1, cursor next_seq.
        let p1 = s.pull(nid(&alice), &[], 0, 1).await.unwrap();
        assert_eq!((p1.posts.len(), p1.more), (1, true));
        let p2 = s.pull(nid(&alice), &[], p1.next_seq, 1).await.unwrap();
        assert_eq!(p2.posts, vec![to_bob.clone()]);
        let p3 = s.pull(nid(&alice), &[], p2.next_seq, 5).await.unwrap();
        assert_eq!((p3.posts.len(), p3.more), (1, false));
        let p4 = s.pull(nid(&alice), &[], p3.next_seq, 5).await.unwrap();
        assert!(p4.posts.is_empty());
        assert_eq!(p4.next_seq, p3.next_seq);
    }

    pub async fn channel_listing_pages_every_channel_once_waiting_first(db: Db) {
        let s = db.open().await;
        let me = node(1);
        // 40 channels with random peers (so `me` is member_a in some and
        // member_b in others); every fifth has messages waiting for `me`,
        // one has a message only for the peer (not waiting for `me`).
        let mut waiting = BTreeSet::new();
        let mut all = BTreeSet::new();
        for i in 0..40u32 {
            let peer = random_node();
            let ch = s
                .create_channel(peer, me, NOW + u64::from(i))
                .await
                .unwrap();
            all.insert(ch.id.0);
            if i % 5 == 0 {
                for k in 0..=(i % 3) {
                    s.enqueue(msg(Some(ch.id), peer, me, &k.to_le_bytes()))
                        .await
                        .unwrap();
                }
                waiting.insert(ch.id.0);
            } else if i == 7 {
                s.enqueue(msg(Some(ch.id), me, peer, b"theirs"))
                    .await
                    .unwrap();
            }
        }
        // The legacy queue is not a channel.
        s.enqueue(msg(None, node(2), me, b"legacy")).await.unwrap();
        for limit in [1, 3, 7, 8, 40, 41, 10_000] {
            let listed = list_all(&s, me, limit, false).await;
            assert_listing_order(&listed);
            let ids: Vec<[u8; 16]> = listed.iter().map(|c| c.id.0).collect();
            assert_eq!(ids.len(), 40, "limit {limit}: each channel once");
            assert_eq!(ids.iter().copied().collect::<BTreeSet<_>>(), all);
            let first: BTreeSet<[u8; 16]> = ids[..waiting.len()].iter().copied().collect();
            assert_eq!(first, waiting, "limit {limit}: waiting channels first");
            let pending = list_all(&s, me, limit, true).await;
            assert_eq!(
                pending.iter().map(|c| c.id.0).collect::<Vec<_>>(),
                waiting.iter().copied().collect::<Vec<_>>(),
                "limit {limit}: pendingOnly lists exactly the waiting channels, by id"
            );
            assert!(pending.iter().all(|c| c.queued >= 1 && c.peer != me));
        }
        // A cursor is a position, not a lookup: an id that is no channel
        // continues after it.
        let mid = ChannelId([0x80; 16]);
        let page = s
            .list_channels(
                me,
                Some(ChannelCursor {
                    waiting: false,
                    last: mid,
                }),
                100,
                false,
            )
            .await
            .unwrap();
        let expect: Vec<[u8; 16]> = all
            .iter()
            .filter(|id| !waiting.contains(*id) && **id > mid.0)
            .copied()
            .collect();
        assert_eq!(
            page.channels.iter().map(|c| c.id.0).collect::<Vec<_>>(),
            expect
        );
        assert!(!page.more);
        // An empty-phase cursor with pendingOnly lists nothing.
        let none = s
            .list_channels(
                me,
                Some(ChannelCursor {
                    waiting: false,
                    last: mid,
                }),
                100,
                true,
            )
            .await
            .unwrap();
        assert!(none.channels.is_empty() && !none.more);
        // A limit of 0 is clamped to 1.
        assert_eq!(
            s.list_channels(me, None, 0, false)
                .await
                .unwrap()
                .channels
                .len(),
            1
        );
        // Someone else's listing is empty.
        assert!(list_all(&s, node(9), 10, false).await.is_empty());
    }

    /// Issue 9 item 3: 12,000 older empty channels (spam) and one new
    /// channel from a friend with a message. The friend's channel is the
    /// first of the first page, `pendingOnly` finds it alone, every channel
    /// is reachable by paging, and each phase of a page is an index range
    /// scan.
    pub async fn channel_listing_at_scale_shows_the_newest_waiting_channel(db: Db) {
        let s = db.open().await;
        // The victim sorts between the spam peers: member_b of the 6,000
        // channels whose peer starts with 0x00, member_a of the others.
        let me = NodeId([0x80; 32]);
        if db.is_pg() {
            db.raw_exec(
                "INSERT INTO channels (id, member_a, member_b, created_at_ms)
                 SELECT decode(md5(x::text), 'hex'),
                        CASE WHEN x % 2 = 0 THEN set_byte(sha256(x::text::bytea), 0, 0)
                             ELSE decode(repeat('80', 32), 'hex') END,
                        CASE WHEN x % 2 = 0 THEN decode(repeat('80', 32), 'hex')
                             ELSE set_byte(sha256(x::text::bytea), 0, 255) END,
                        x
                   FROM generate_series(1, 12000) AS x;
                 INSERT INTO messages (id, recipient, channel, sender, received_at_ms, expires_at_ms, payload_len, payload)
                 SELECT nextval('message_ids'), decode(lpad(to_hex(x % 500), 64, '0'), 'hex'), ''::bytea,
                        decode(lpad(to_hex(1), 64, '0'), 'hex'), 0, 9000000000000000, 1, '\\x00'::bytea
                   FROM generate_series(1, 20000) AS x;",
            )
            .await;
        } else {
            db.raw_exec(
                "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 12000)
                 INSERT INTO channels (id, member_a, member_b, created_at_ms)
                 SELECT unhex(printf('%032x', x * 2654435761)),
                        CASE WHEN x % 2 = 0 THEN unhex(printf('00%062x', x)) ELSE X'8080808080808080808080808080808080808080808080808080808080808080' END,
                        CASE WHEN x % 2 = 0 THEN X'8080808080808080808080808080808080808080808080808080808080808080' ELSE unhex(printf('ff%062x', x)) END,
                        x
                   FROM g;
                 WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 20000)
                 INSERT INTO messages (recipient, channel, sender, received_at_ms, expires_at_ms, payload_len, payload)
                 SELECT unhex(printf('%064x', x % 500)), X'', unhex(printf('%064x', 1)), 0,
                        9000000000000000, 1, X'00' FROM g;",
            )
            .await;
        }
        let friend = random_node();
        let ch = s.create_channel(friend, me, NOW).await.unwrap();
        s.enqueue(msg(Some(ch.id), friend, me, b"hi, it's me"))
            .await
            .unwrap();
        s.analyze().await.unwrap();

        // What an old client gets: the first page, the friend first.
        let first = s
            .list_channels(me, None, MAX_CHANNELS_LISTED, false)
            .await
            .unwrap();
        assert_eq!(first.channels.len(), MAX_CHANNELS_LISTED);
        assert!(first.more);
        assert_eq!(first.channels[0].id, ch.id);
        assert_eq!(first.channels[0].peer, friend);
        assert_eq!(first.channels[0].queued, 1);
        assert!(first.channels[1..].iter().all(|c| c.queued == 0));
        // pendingOnly: just the friend.
        let pending = s.list_channels(me, None, 100, true).await.unwrap();
        assert_eq!(
            pending.channels.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![ch.id]
        );
        assert!(!pending.more);
        // Paging reaches every channel once.
        let listed = list_all(&s, me, 5_000, false).await;
        assert_eq!(listed.len(), 12_001);
        assert_listing_order(&listed);
        assert_eq!(
            listed.iter().map(|c| c.id.0).collect::<HashSet<_>>().len(),
            12_001
        );
        assert!(listed.iter().all(|c| c.peer != me));

        let plan = s.explain(PlanQuery::ListChannels).await.unwrap();
        if std::env::var_os("SHOW_PLANS").is_some() {
            eprintln!("--- list plan ({}):\n{plan}", s.backend());
        }
        if db.is_pg() {
            for table in ["channels", "messages"] {
                assert!(
                    !plan.contains(&format!("Seq Scan on {table}")),
                    "sequential scan of {table}:\n{plan}"
                );
            }
            assert!(plan.contains("channels_by_member_a_id"), "{plan}");
            assert!(plan.contains("channels_by_member_b_id"), "{plan}");
        } else {
            for line in plan.lines() {
                let l = line.trim_start();
                assert!(
                    !(l.starts_with("SCAN channels") || l.starts_with("SCAN messages")),
                    "full scan:\n{plan}"
                );
            }
            assert!(plan.contains("channels_by_member_a_id"), "{plan}");
            assert!(plan.contains("channels_by_member_b_id"), "{plan}");
            assert!(plan.contains("messages_by_queue"), "{plan}");
        }
    }

    /// Issue 9 item 12: an `Enqueue` whose outcome the client does not know
    /// (the reply was lost, the connection dropped, the anchor answered
    /// `unavailable` after committing, or restarted) is retried with the
    /// same `clientMessageId`: exactly one copy is delivered, whether the
    /// retry comes after a restart, races the original, or repeats.
    pub async fn enqueue_retry_after_unknown_outcome_is_deduplicated(db: Db) {
        let (a, b) = (node(1), node(2));
        let s = db.open().await;
        let ch = s.create_channel(a, b, NOW).await.unwrap().id;
        let with = |payload: &[u8], id: u8| NewMessage {
            client_message_id: Some([id; 16]),
            ..msg(Some(ch), a, b, payload)
        };
        // 1. Committed, then the process died before answering: the retry
        //    on a reopened store is acknowledged as the original.
        let first = s.enqueue(with(b"m1", 1)).await.unwrap();
        drop(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let s = db.open().await;
        let retry = s.enqueue(with(b"m1", 1)).await.unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.message_id, first.message_id);
        // 2. The retry races the original (a client that timed out while
        //    the first attempt was still in flight): one is stored.
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                let m = with(b"m2", 2);
                tokio::spawn(async move { s.enqueue(m).await.unwrap() })
            })
            .collect();
        let mut ids = HashSet::new();
        let mut fresh = 0;
        for t in tasks {
            let e = t.await.unwrap();
            ids.insert(e.message_id);
            fresh += usize::from(!e.duplicate);
        }
        assert_eq!(
            (ids.len(), fresh),
            (1, 1),
            "one copy, one first acknowledgement"
        );
        // 3. Repeated retries of one message, and of one in a batch.
        for _ in 0..3 {
            assert!(s.enqueue(with(b"m1", 1)).await.unwrap().duplicate);
        }
        let batch = s
            .enqueue_batch(vec![with(b"m3", 3), with(b"m2", 2)])
            .await
            .unwrap();
        assert!(!batch[0].duplicate && batch[1].duplicate);
        // Exactly once each, in order.
        let got: Vec<Vec<u8>> = fetch_all(&s, b, Some(ch))
            .await
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(got, vec![b"m1".to_vec(), b"m2".to_vec(), b"m3".to_vec()]);
    }

    /// Revocation through an anchor (issue 9 item 18): a re-encrypt
    /// (replacement + delete) and a re-wrap (visibility update) stop the
    /// old version being served; the delete reaches the dropped recipient
    /// (by recipient match on the tombstone), the remaining one and the
    /// author, and the deleted post is never stored again.
    pub async fn deletes_and_visibility_updates_are_served_by_pull(db: Db) {
        use distsoc_node::compose;
        use distsoc_protocol::messages::content::{sign_checked, DeleteRecordBody};
        let s = db.open().await;
        let (alice, bob, dave, eve) = (key(1), key(2), key(4), key(5));
        let pid = |k: &SigningKey| PostingId(k.public());
        let nid = |k: &SigningKey| NodeId(k.public());
        let old = sealed_post(&alice, 10, &[pid(&alice), pid(&bob), pid(&dave)]);
        let other = sealed_post(&alice, 11, &[pid(&alice), pid(&bob), pid(&dave)]);
        let public = public_post(&alice, 12);
        s.insert_posts(&[old.clone(), other.clone(), public.clone()], NOW)
            .await
            .unwrap();
        let dave_cursor = s
            .pull(nid(&dave), &[pid(&dave).0, pid(&alice).0], 0, 100)
            .await
            .unwrap();
        assert_eq!(dave_cursor.posts.len(), 3);

        // Re-encrypt `old` for alice and bob only: deposit the replacement,
        // then the delete.
        let (replacement, delete) =
            compose::reencrypt(&alice, &old, &[pid(&bob)], NOW, &mut rand_core::OsRng).unwrap();
        s.insert_posts(std::slice::from_ref(&replacement), NOW)
            .await
            .unwrap();
        // Only the author can delete: a record by eve for alice's post is
        // refused, and a forged signature too.
        let foreign = sign_checked(
            DeleteRecordBody {
                post_id: old.post_id(),
                author: pid(&eve),
                deleted_at_ms: NOW,
                replaced_by: None,
            },
            &eve,
        )
        .unwrap();
        assert!(matches!(
            s.apply_delete(&foreign, NOW).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            s.apply_delete(&delete, NOW).await.unwrap(),
            DeleteOutcome::Deleted { .. }
        ));
        assert_eq!(
            s.apply_delete(&delete, NOW).await.unwrap(),
            DeleteOutcome::AlreadyDeleted
        );
        // Never stored again, whoever deposits it.
        assert!(matches!(
            s.insert_posts(std::slice::from_ref(&old), NOW)
                .await
                .unwrap()[0],
            Ok(Inserted::Tombstoned)
        ));

        // Dave (dropped) pulling from scratch: no old post, no replacement,
        // but the delete; from his earlier cursor: the delete.
        for since in [0, dave_cursor.next_seq] {
            let p = s
                .pull(nid(&dave), &[pid(&dave).0, pid(&alice).0], since, 100)
                .await
                .unwrap();
            assert!(!p.posts.iter().any(|x| x.post_id() == old.post_id()));
            assert!(!p.posts.contains(&replacement));
            assert_eq!(p.deletes, vec![delete.clone()], "since {since}");
        }
        // Dave by recipient match alone (not following alice): still the delete.
        let p = s.pull(nid(&dave), &[pid(&dave).0], 0, 100).await.unwrap();
        assert_eq!(p.deletes, vec![delete.clone()]);
        // Bob: the replacement and the delete, never the old post.
        let p = s.pull(nid(&bob), &[pid(&bob).0], 0, 100).await.unwrap();
        assert_eq!(p.posts, vec![other.clone(), replacement.clone()]);
        assert_eq!(p.deletes, vec![delete.clone()]);
        // Alice gets her own delete back; a stranger following alice does
        // not learn that an encrypted post existed.
        let p = s.pull(nid(&alice), &[], 0, 100).await.unwrap();
        assert_eq!(p.deletes, vec![delete.clone()]);
        let p = s.pull(nid(&eve), &[pid(&alice).0], 0, 100).await.unwrap();
        assert_eq!(p.posts, vec![public.clone()]);
        assert!(p.deletes.is_empty());

        // Re-wrap `other` without dave: he stops finding it, bob gets it
        // again (new seq), a stale or repeated update changes nothing.
        let update =
            compose::rewrap(&alice, &other, &[pid(&bob)], NOW, &mut rand_core::OsRng).unwrap();
        let bob_cursor = s
            .pull(nid(&bob), &[pid(&bob).0], 0, 100)
            .await
            .unwrap()
            .next_seq;
        assert!(matches!(
            s.apply_visibility_update(&update).await.unwrap(),
            VisibilityOutcome::Applied { .. }
        ));
        assert_eq!(
            s.apply_visibility_update(&update).await.unwrap(),
            VisibilityOutcome::Unchanged
        );
        let p = s
            .pull(nid(&dave), &[pid(&dave).0, pid(&alice).0], 0, 100)
            .await
            .unwrap();
        assert_eq!(p.posts, vec![public.clone()]);
        let p = s
            .pull(nid(&bob), &[pid(&bob).0], bob_cursor, 100)
            .await
            .unwrap();
        assert_eq!(p.posts.len(), 1);
        assert_eq!(p.posts[0].post_id(), other.post_id());
        assert_eq!(p.posts[0].visibility_update, Some(update.clone()));

        // A delete for a post never deposited is recorded and served to
        // pulls by its author's id (public rule).
        let unseen = public_post(&alice, 13);
        let d2 = sign_checked(
            DeleteRecordBody {
                post_id: unseen.post_id(),
                author: pid(&alice),
                deleted_at_ms: NOW,
                replaced_by: None,
            },
            &alice,
        )
        .unwrap();
        assert!(matches!(
            s.apply_delete(&d2, NOW).await.unwrap(),
            DeleteOutcome::Recorded { .. }
        ));
        let p = s.pull(nid(&eve), &[pid(&alice).0], 0, 100).await.unwrap();
        assert_eq!(p.deletes, vec![d2.clone()]);
        // Paging carries deletes with the same cursor.
        let mut since = 0;
        let mut seen = Vec::new();
        loop {
            let p = s
                .pull(nid(&bob), &[pid(&bob).0, pid(&alice).0], since, 1)
                .await
                .unwrap();
            seen.extend(p.deletes);
            since = p.next_seq;
            if !p.more {
                break;
            }
        }
        assert_eq!(seen, vec![delete, d2]);
    }

    pub async fn query_plans_use_indexes(db: Db) {
        let s = db.open().await;
        // A few real posts and messages through the API...
        let authors: Vec<SigningKey> = (1..=4).map(key).collect();
        let mut posts: Vec<SyncPost> = authors.iter().map(|k| public_post(k, 1)).collect();
        posts.push(sealed_post(
            &authors[0],
            2,
            &[
                PostingId(authors[1].public()),
                PostingId(authors[2].public()),
            ],
        ));
        for r in s.insert_posts(&posts, NOW).await.unwrap() {
            assert!(matches!(r, Ok(Inserted::New { .. })));
        }
        let batch: Vec<NewMessage> = (0..50u32)
            .map(|i| msg(None, node(1), node((i % 10) as u8), &i.to_le_bytes()))
            .collect();
        s.enqueue_batch(batch).await.unwrap();
        // ...and a large table: 20,000 filler posts by 2,000 authors,
        // 10,000 recipient rows over 3,000 recipients, 20,000 queued
        // messages over 500 recipients (raw SQL: valid posts are too slow to
        // make in an unoptimized build, and plans only need the row
        // statistics). Seqs far above the real ones.
        if db.is_pg() {
            db.raw_exec(
                "INSERT INTO posts (seq, post_id, author, encrypted, created_at_ms, received_at_ms, sync_post)
                 SELECT 1000000000 + x, decode(lpad(to_hex(x), 64, '0'), 'hex'),
                        decode(lpad(to_hex(x % 2000), 64, '0'), 'hex'), x % 2 = 1, 0, 0, '\\x00'::bytea
                   FROM generate_series(1, 20000) AS x;
                 INSERT INTO post_recipients (recipient, seq, author)
                 SELECT decode(lpad(to_hex(5000 + x % 3000), 64, '0'), 'hex'), 1000000000 + x,
                        decode(lpad(to_hex(x % 2000), 64, '0'), 'hex')
                   FROM generate_series(1, 20000) AS x WHERE x % 2 = 1;
                 INSERT INTO messages (id, recipient, channel, sender, received_at_ms, expires_at_ms, payload_len, payload)
                 SELECT nextval('message_ids'), decode(lpad(to_hex(x % 500), 64, '0'), 'hex'), ''::bytea,
                        decode(lpad(to_hex(1), 64, '0'), 'hex'), 0, 9000000000000000, 1, '\\x00'::bytea
                   FROM generate_series(1, 20000) AS x;",
            )
            .await;
        } else {
            db.raw_exec(
                "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 20000)
                 INSERT INTO posts (seq, post_id, author, encrypted, created_at_ms, received_at_ms, sync_post)
                 SELECT 1000000000 + x, unhex(printf('%064x', x)), unhex(printf('%064x', x % 2000)),
                        x % 2, 0, 0, X'00' FROM g;
                 WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 20000)
                 INSERT INTO post_recipients (recipient, seq, author)
                 SELECT unhex(printf('%064x', 5000 + x % 3000)), 1000000000 + x,
                        unhex(printf('%064x', x % 2000)) FROM g WHERE x % 2 = 1;
                 WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 20000)
                 INSERT INTO messages (recipient, channel, sender, received_at_ms, expires_at_ms, payload_len, payload)
                 SELECT unhex(printf('%064x', x % 500)), X'', unhex(printf('%064x', 1)), 0,
                        9000000000000000, 1, X'00' FROM g;",
            )
            .await;
        }
        s.analyze().await.unwrap();
        assert_eq!(s.stats().await.unwrap().posts, 20_005);
        // The real data still pulls right next to the filler.
        let p = s
            .pull(NodeId(authors[1].public()), &[authors[1].public()], 0, 100)
            .await
            .unwrap();
        assert_eq!(p.posts, vec![posts[1].clone(), posts[4].clone()]);

        let pull = s.explain(PlanQuery::Pull).await.unwrap();
        let fetch = s.explain(PlanQuery::Fetch).await.unwrap();
        if std::env::var_os("SHOW_PLANS").is_some() {
            eprintln!(
                "--- pull plan ({}):\n{pull}\n--- fetch plan:\n{fetch}",
                s.backend()
            );
        }
        if db.is_pg() {
            for (plan, table) in [
                (&pull, "posts"),
                (&pull, "post_recipients"),
                (&fetch, "messages"),
            ] {
                assert!(
                    !plan.contains(&format!("Seq Scan on {table}")),
                    "sequential scan of {table}:\n{plan}"
                );
            }
            assert!(pull.contains("posts_by_author_seq"), "{pull}");
            assert!(pull.contains("post_recipients_pkey"), "{pull}");
            // (The tombstone half is shown too; with no tombstones in this
            // database PostgreSQL rightly scans the empty tables.)
            assert!(fetch.contains("messages_by_queue"), "{fetch}");
        } else {
            for line in pull.lines().chain(fetch.lines()) {
                assert!(
                    !line.trim_start().starts_with("SCAN"),
                    "full scan:\n{pull}\n{fetch}"
                );
            }
            assert!(pull.contains("posts_by_author_seq"), "{pull}");
            assert!(pull.contains("post_recipients USING PRIMARY KEY"), "{pull}");
            assert!(pull.contains("tombstones_by_author_seq"), "{pull}");
            assert!(
                pull.contains("tombstone_recipients USING PRIMARY KEY"),
                "{pull}"
            );
            assert!(fetch.contains("messages_by_queue"), "{fetch}");
            assert!(!fetch.contains("TEMP B-TREE"), "fetch sorts:\n{fetch}");
        }
    }
}

// ---------------------------------------------------------------------------
// kill -9: the child side
// ---------------------------------------------------------------------------

const KILL9_TO: NodeId = NodeId([0x99; 32]);

/// Runs only as the child of `acknowledged_messages_survive_kill_9` (with
/// `DISTSOC_KILL9_URL` set): enqueues from 8 tasks forever, printing
/// `ACK <id>` after each acknowledgement, until killed.
#[test]
fn kill9_child() {
    let Ok(url) = std::env::var("DISTSOC_KILL9_URL") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let s = AnchorStore::open(&url).await.unwrap();
        let mut tasks = Vec::new();
        for t in 0..8u32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0u32.. {
                    let payload = [t.to_le_bytes(), i.to_le_bytes()].concat();
                    let e = s
                        .enqueue(msg(None, NodeId([0x98; 32]), KILL9_TO, &payload))
                        .await
                        .unwrap();
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {}", e.message_id).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

// ---------------------------------------------------------------------------
// PostgreSQL only
// ---------------------------------------------------------------------------

/// Two stores on one database stand for two anchor processes: a waiter on
/// one is woken by an enqueue through the other (LISTEN/NOTIFY), with no
/// sleeps — only a bounded wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cross_process_wake() {
    let Some(db) = pg_db().await else { return };
    let one = db.open().await;
    let two = db.open().await;
    assert_eq!(one.listener_connected(), Some(true));
    let (a, b) = (node(1), node(2));
    let ch = one.create_channel(a, b, NOW).await.unwrap().id;
    let w = one.waiter(b, Some(ch));
    let unrelated = one.waiter(a, Some(ch));
    let legacy = one.waiter(b, None);
    two.enqueue(msg(Some(ch), a, b, b"via process two"))
        .await
        .unwrap();
    within("cross-process wake", w.wait()).await;
    assert!(!unrelated.is_woken());
    assert!(!legacy.is_woken());
    assert_eq!(fetch_all(&one, b, Some(ch)).await.len(), 1);
    // Legacy queue and batches too.
    two.enqueue_batch(vec![msg(None, a, b, b"legacy")])
        .await
        .unwrap();
    within("cross-process wake (legacy, batch)", legacy.wait()).await;
    // And the other way round.
    let w = two.waiter(a, Some(ch));
    one.enqueue(msg(Some(ch), b, a, b"back")).await.unwrap();
    within("cross-process wake back", w.wait()).await;
}

/// Schema version 7 keys `messages` by queue: a database of version 6
/// (key on `id`, separate queue index) with queued messages is migrated
/// on open, keeps every message in queue order, and afterwards enqueue
/// deduplication, acknowledgements and the expiry sweep work on the new
/// key. The index set is exactly the key, the dedup and the expiry index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_messages_keyed_by_queue_after_migration() {
    let Some(db) = pg_db().await else { return };
    let s = db.open().await;
    let (a, b) = (node(1), node(2));
    let ch = s.create_channel(a, b, NOW).await.unwrap().id;
    let with = |m: NewMessage, id: u8| NewMessage {
        client_message_id: Some([id; 16]),
        ..m
    };
    let mut queued = Vec::new();
    for i in 0..5u8 {
        let e = s.enqueue(with(msg(Some(ch), a, b, &[i]), i)).await.unwrap();
        queued.push((e.message_id, vec![i]));
    }
    let legacy = s.enqueue(msg(None, b, a, b"legacy")).await.unwrap();
    drop(s);
    // Back to the version-6 shape, data kept.
    db.raw_exec(
        "ALTER TABLE messages DROP CONSTRAINT messages_by_queue;
         ALTER TABLE messages ADD PRIMARY KEY (id);
         CREATE INDEX messages_by_queue ON messages (recipient, channel, id);
         UPDATE anchor_schema_version SET version = 6;",
    )
    .await;
    let indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 'messages' ORDER BY 1";
    let key = "SELECT pg_get_constraintdef(oid) FROM pg_constraint
                WHERE conrelid = 'messages'::regclass AND contype = 'p'";
    assert_eq!(
        db.raw_rows(key).await,
        vec![vec![b"PRIMARY KEY (id)".to_vec()]]
    );

    let s = db.open().await;
    assert_eq!(
        s.schema_version().await.unwrap(),
        s.supported_schema_version()
    );
    assert_eq!(
        db.raw_rows(indexes).await,
        vec![
            vec![b"messages_by_expiry".to_vec()],
            vec![b"messages_by_queue".to_vec()],
            vec![b"messages_dedup".to_vec()],
        ]
    );
    assert_eq!(
        db.raw_rows(key).await,
        vec![vec![b"PRIMARY KEY (recipient, channel, id)".to_vec()]]
    );
    assert_eq!(fetch_all(&s, b, Some(ch)).await, queued);
    assert_eq!(
        fetch_all(&s, a, None).await,
        vec![(legacy.message_id, b"legacy".to_vec())]
    );
    // A retry of a message queued before the migration is found.
    let again = s
        .enqueue(with(msg(Some(ch), a, b, b"retry"), 3))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message_id, queued[3].0);
    // Acknowledging deletes exactly the acknowledged prefix.
    let page = s
        .fetch_audited(b, Some(ch), queued[1].0, 100, usize::MAX, NOW)
        .await
        .unwrap();
    assert_eq!(
        page.messages
            .iter()
            .map(|m| (m.message_id, m.payload.clone()))
            .collect::<Vec<_>>(),
        queued[2..].to_vec()
    );
    assert_eq!(fetch_all(&s, b, Some(ch)).await, queued[2..].to_vec());
    // New messages go after the migrated ones; the sweep deletes by the key.
    let new = s.enqueue(msg(Some(ch), a, b, b"new")).await.unwrap();
    assert!(new.message_id > queued[4].0);
    assert_eq!(s.sweep_expired(NOW + TTL).await.unwrap(), 5);
    assert_eq!(s.stats().await.unwrap().queued_messages, 0);
}

/// Every mailbox operation ends its transaction before its connection goes
/// back to the pool (a read-only fetch is one statement in a transaction of
/// its own; a write batch commits): after concurrent reads and an
/// acknowledgement, no connection of the store is idle in a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_mailbox_operations_leave_no_open_transaction() {
    let Some(db) = pg_db().await else { return };
    let s = db.open().await;
    let (a, b) = (node(1), node(2));
    for i in 0..20u8 {
        s.enqueue(msg(None, a, b, &[i])).await.unwrap();
    }
    let read = || s.fetch(b, None, 0, 5, usize::MAX, NOW);
    let (r1, r2, r3, r4) = tokio::join!(read(), read(), read(), read());
    for r in [r1, r2, r3, r4] {
        assert_eq!(r.unwrap().messages.len(), 5);
    }
    let through = read().await.unwrap().messages[4].message_id;
    let (acked, again) = tokio::join!(s.fetch(b, None, through, 100, usize::MAX, NOW), read());
    assert_eq!(acked.unwrap().messages.len(), 15);
    again.unwrap();
    let open = db
        .raw_rows(
            "SELECT count(*)::text FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND state LIKE 'idle in transaction%'",
        )
        .await;
    assert_eq!(open, vec![vec![b"0".to_vec()]]);
}

/// The mailbox's connections plan for the whole session (a pool of their
/// own: generic plans, never a sequential scan of `messages`), so a
/// read-only fetch needs no `BEGIN` / `SET LOCAL` / `COMMIT` of its own: on
/// a new database with three messages, where the planner left to itself
/// scans the one-page `messages` table sequentially, the fetch's plan has
/// no sequential scan (this test fails with the settings left out).
/// And the settings stay on the mailbox's connections: a pull still plans
/// with its bound values (a custom plan shows none of `$1`..).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_mailbox_never_scans_messages_sequentially_on_its_own_connections() {
    let Some(db) = pg_db().await else { return };
    let s = db.open().await;
    let (a, b) = (node(1), node(2));
    for i in 0..3u8 {
        s.enqueue(msg(None, a, b, &[i])).await.unwrap();
    }
    // Statistics of a one-page table: a sequential scan is what the
    // planner would choose.
    s.analyze().await.unwrap();
    let page = s.fetch(b, None, 0, 5, usize::MAX, NOW).await.unwrap();
    assert_eq!(page.messages.len(), 3);
    let fetch = s.explain(PlanQuery::Fetch).await.unwrap();
    assert!(!fetch.contains("Seq Scan on messages"), "{fetch}");
    let pull = s.explain(PlanQuery::Pull).await.unwrap();
    assert!(!pull.contains("$1"), "pull plans are custom:\n{pull}");
}

/// The fetch's page reads `messages` by the queue key and nothing else,
/// whatever the statistics say: on a new database with one queue of four
/// messages (one expired), analyzed, the generic plan the mailbox makes
/// reads the queue's key range in id order. (It read `messages_by_expiry`
/// there, where the statistics say every row is in the queue: every
/// unexpired message of every queue, filtered by queue, then sorted; a
/// connection keeps its generic plan until the next `ANALYZE`.) The page
/// itself skips the expired message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fetch_reads_messages_by_the_queue_key_alone() {
    let Some(db) = pg_db().await else { return };
    let s = db.open().await;
    let (a, b) = (node(1), node(2));
    let expired = NewMessage {
        expires_at_ms: NOW - 1,
        ..msg(None, a, b, b"old")
    };
    s.enqueue(expired).await.unwrap();
    for i in 0..3u8 {
        s.enqueue(msg(None, a, b, &[i])).await.unwrap();
    }
    s.analyze().await.unwrap();
    let page = s.fetch(b, None, 0, 5, usize::MAX, NOW).await.unwrap();
    let payloads: Vec<Vec<u8>> = page.messages.into_iter().map(|m| m.payload).collect();
    assert_eq!(payloads, vec![vec![0u8], vec![1], vec![2]]);
    let plan = s.explain(PlanQuery::Fetch).await.unwrap();
    let reads: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains(" on messages"))
        .collect();
    assert!(!reads.is_empty(), "{plan}");
    for read in reads {
        assert!(
            read.contains("Index Scan using messages_by_queue on messages"),
            "{plan}"
        );
    }
    assert!(!plan.contains("Sort Key: messages.id"), "{plan}");
}

/// SQLite wakes only in-process: documented limitation (two processes on
/// one SQLite file still share the data).
/// Concurrent fetches that acknowledge messages share transactions with
/// each other (and with enqueues): 64 acknowledgements, each deleting a
/// message, take far fewer than 64 write transactions (counted by the
/// transaction ids PostgreSQL assigns to writing transactions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fetch_acks_are_group_committed() {
    let Some(db) = pg_db().await else { return };
    let s = db.open().await;
    const N: u8 = 64;
    let batch: Vec<NewMessage> = (0..N)
        .map(|i| msg(None, node(0), node(100 + i), b"x"))
        .collect();
    let ids = s.enqueue_batch(batch).await.unwrap();
    let xid = || async {
        let rows = db.raw_rows("SELECT pg_current_xact_id()::text").await;
        String::from_utf8(rows[0][0].clone())
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = xid().await;
    let mut tasks = Vec::new();
    for (i, e) in ids.iter().enumerate() {
        let s = s.clone();
        let id = e.message_id;
        tasks.push(tokio::spawn(async move {
            s.fetch_audited(node(100 + i as u8), None, id, 10, usize::MAX, NOW)
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().messages.is_empty());
    }
    let writes = xid().await - before - 1;
    assert_eq!(
        s.stats().await.unwrap().queued_messages,
        0,
        "all acknowledged"
    );
    assert!(
        writes <= u64::from(N) / 4,
        "{writes} write transactions for {N} acknowledgements"
    );
}

/// A group commit is pipelined (statements sent without waiting for the
/// previous answer, `COMMIT` with the last ones): when a statement of the
/// batch fails, nothing of the batch is stored, every request of it is
/// refused, and the connection goes back to the pool usable (not inside
/// an aborted transaction). The failure here is an audit row refused by a
/// constraint, in the round trip that also inserts the messages and
/// commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failed_batch_stores_nothing_and_connections_recover() {
    let Some(db) = pg_db().await else { return };
    let s = db.open().await;
    let (a, b) = (node(1), node(2));
    let kept = s.enqueue(msg(None, a, b, b"kept")).await.unwrap();
    db.raw_exec("ALTER TABLE audit_log ADD CONSTRAINT no_boom CHECK (detail <> 'boom')")
        .await;
    let boom = |to: NodeId, payload: &'static [u8]| {
        let s = s.clone();
        async move {
            s.enqueue_audited(
                msg(None, a, to, payload),
                AuditEvent {
                    at_ms: NOW,
                    kind: AuditKind::Send,
                    actor: a,
                    channel: None,
                    detail: "boom".into(),
                },
            )
            .await
        }
    };
    // More failing batches than a pool has connections, some with a
    // successful enqueue queued beside them: a batch fails as a whole.
    let mut stored = vec![(kept.message_id, b"kept".to_vec())];
    for round in 0..20u8 {
        let (e, ok) = tokio::join!(boom(b, b"lost"), s.enqueue(msg(None, a, b, &[round])));
        assert!(
            e.is_err(),
            "round {round}: the refused audit row failed the enqueue"
        );
        if let Ok(ok) = ok {
            stored.push((ok.message_id, vec![round]));
        }
    }
    assert_eq!(fetch_all(&s, b, None).await, stored);
    db.raw_exec("ALTER TABLE audit_log DROP CONSTRAINT no_boom")
        .await;
    // Every pooled connection works again.
    for round in 0..20u8 {
        let e = boom(b, b"stored").await.unwrap();
        assert!(!e.duplicate, "round {round}");
    }
    assert_eq!(fetch_all(&s, b, None).await.len(), stored.len() + 20);
    let open = db
        .raw_rows("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")
        .await;
    assert_eq!(
        open,
        vec![vec![b"0".to_vec()]],
        "a connection was left in a transaction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_stores_share_data_but_not_wakeups() {
    let db = sqlite_db().await.unwrap();
    let one = db.open().await;
    let two = db.open().await;
    assert_eq!(one.listener_connected(), None);
    let (a, b) = (node(1), node(2));
    let w = one.waiter(b, None);
    two.enqueue(msg(None, a, b, b"x")).await.unwrap();
    assert_eq!(fetch_all(&one, b, None).await.len(), 1);
    assert!(!w.is_woken());
}

/// SQLite runs a write batch without savepoints and, if a job fails, runs
/// it again with each job in its own savepoint: a refused enqueue (its
/// audit row refused by a trigger, after its message was written) fails
/// alone, and every other enqueue of the same batch commits with its audit
/// row. The enqueues are held behind another connection's write lock
/// until every one is queued for the writer (or taken by it), so they
/// form at most two batches, each with refused and accepted jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_failing_job_fails_alone_in_its_batch() {
    const N: usize = 40;
    let db = sqlite_db().await.unwrap();
    let s = db.open().await;
    let (a, b) = (node(1), node(2));
    db.raw_exec(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.detail = 'refuse'
         BEGIN SELECT RAISE(ABORT, 'audit refused'); END;",
    )
    .await;
    let lock = rusqlite::Connection::open(db.sqlite_path.as_ref().unwrap()).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();

    let polled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (s, polled) = (s.clone(), std::sync::Arc::clone(&polled));
        tasks.push(tokio::spawn(async move {
            let refused = i % 4 == 1;
            let event = AuditEvent {
                at_ms: NOW,
                kind: AuditKind::Send,
                actor: a,
                channel: None,
                detail: if refused { "refuse" } else { "fine" }.into(),
            };
            let payload = format!("{i}").into_bytes();
            // The legacy queue needs no membership lookup: the first poll
            // queues the job.
            let mut fut = Box::pin(s.enqueue_audited(msg(None, a, b, &payload), event));
            assert!(!ready_now(&mut fut).await, "answered under the lock");
            polled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (refused, payload, fut.await)
        }));
    }
    within("every enqueue queued", async {
        while polled.load(std::sync::atomic::Ordering::SeqCst) < N {
            tokio::task::yield_now().await;
        }
    })
    .await;
    lock.execute_batch("COMMIT").unwrap();

    let mut accepted = BTreeSet::new();
    for t in tasks {
        let (refused, payload, r) = t.await.unwrap();
        assert_eq!(r.is_err(), refused, "{r:?}");
        if !refused {
            accepted.insert(payload);
        }
    }
    assert_eq!(accepted.len(), N - N / 4);
    let got: BTreeSet<Vec<u8>> = fetch_all(&s, b, None)
        .await
        .into_iter()
        .map(|m| m.1)
        .collect();
    assert_eq!(got, accepted, "exactly the accepted messages are stored");
    let log = s.recent_audit(2 * N).await.unwrap();
    assert_eq!(log.len(), accepted.len());
    assert!(log.iter().all(|r| r.detail == "fine"));
}

/// Stop the PostgreSQL server under a running store: calls fail with
/// `Unavailable` quickly (no hang); start it again: the store recovers by
/// itself, and so does the LISTEN connection (cross-process wakes work
/// again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_unavailable_then_recovers() {
    if pg_harness::skip() {
        return;
    }
    let cluster = std::sync::Arc::new(
        tokio::task::spawn_blocking(|| pg_harness::Cluster::start("outage"))
            .await
            .unwrap(),
    );
    let url = cluster.create_database().await;
    let opts = StoreOptions {
        connect_timeout: Duration::from_secs(1),
        op_timeout: Duration::from_secs(3),
        ..StoreOptions::default()
    };
    let s = AnchorStore::open_with(&url, &opts).await.unwrap();
    let (a, b) = (node(1), node(2));
    s.enqueue(msg(None, a, b, b"before")).await.unwrap();

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop_server())
        .await
        .unwrap();

    let bound = Duration::from_secs(8);
    for round in 0..3 {
        let t = Instant::now();
        let r = s.enqueue(msg(None, a, b, b"during")).await;
        assert!(
            matches!(&r, Err(e) if e.is_unavailable()),
            "round {round}: expected Unavailable, got {r:?}"
        );
        assert!(t.elapsed() < bound, "enqueue took {:?}", t.elapsed());
        let t = Instant::now();
        let r = s.fetch(b, None, 0, 10, 1 << 20, NOW).await;
        assert!(matches!(&r, Err(e) if e.is_unavailable()), "{r:?}");
        assert!(t.elapsed() < bound, "fetch took {:?}", t.elapsed());
        let r = s.stats().await;
        assert!(matches!(&r, Err(e) if e.is_unavailable()), "{r:?}");
        let r = s
            .audit(AuditEvent {
                at_ms: NOW,
                kind: AuditKind::Send,
                actor: a,
                channel: None,
                detail: String::new(),
            })
            .await;
        assert!(matches!(&r, Err(e) if e.is_unavailable()), "{r:?}");
    }
    // Opening a store while the server is down fails fast too.
    let t = Instant::now();
    let r = AnchorStore::open_with(&url, &opts).await;
    assert!(matches!(&r, Err(e) if e.is_unavailable()), "{r:?}");
    assert!(t.elapsed() < bound);
    // The listener noticed.
    let t = Instant::now();
    while s.listener_connected() != Some(false) {
        assert!(t.elapsed() < WAIT, "listener did not notice the outage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A FetchWait that starts during the outage is woken when the
    // listener is back (it may have missed notifications).
    let during = s.waiter(b, Some(ChannelId([1; 16])));

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start_server())
        .await
        .unwrap();

    // Recovers by itself: retry like a client would.
    let t = Instant::now();
    loop {
        match s.fetch(b, None, 0, 10, 1 << 20, NOW).await {
            Ok(p) => {
                assert_eq!(p.messages.len(), 1, "the message from before is there");
                break;
            }
            Err(e) => {
                assert!(e.is_unavailable(), "{e}");
                assert!(t.elapsed() < Duration::from_secs(30), "no recovery: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    s.enqueue(msg(None, a, b, b"after")).await.unwrap();
    within("reconnect wakes waiters", during.wait()).await;
    let t = Instant::now();
    while s.listener_connected() != Some(true) {
        assert!(t.elapsed() < WAIT, "listener did not reconnect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // LISTEN is re-established: a waiter registered now is woken by
    // another process's enqueue.
    let other = AnchorStore::open_with(&url, &opts).await.unwrap();
    let w = s.waiter(b, None);
    other.enqueue(msg(None, a, b, b"cross")).await.unwrap();
    within("cross-process wake after restart", w.wait()).await;
    assert_eq!(fetch_all(&s, b, None).await.len(), 3);
    drop(s);
    drop(other);
    drop(cluster);
}
