//! A user node under hostile input from real QUIC peers on 127.0.0.1 (real
//! quinn endpoints, real SQLite files): floods of pushes from fresh keys,
//! requests that make the store fail, stored rows that no longer decode.
//! Every flood is bounded in count and time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use distsoc_net::now_ms;
use distsoc_net::transport::{Peer, RequestError};
use distsoc_node::config::Config;
use distsoc_node::node::{Node, Running};
use distsoc_node::store::{
    MAX_CACHED_PROFILES, MAX_CACHED_PROFILE_BYTES, MAX_PENDING_AUDIENCE_REQUESTS,
};
use distsoc_protocol::codec;
use distsoc_protocol::error::{ErrorCode, STORAGE_RETRY_AFTER_MS, UNAVAILABLE_MESSAGE};
use distsoc_protocol::ids::{NodeId, PostingId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::content::{sign_checked, Post, PostVisibility, SyncPost};
use distsoc_protocol::messages::files::{AuthorUpdateRequest, FileRequest, FileTarget};
use distsoc_protocol::messages::identity::{PublicProfile, MAX_BIO_BYTES};
use distsoc_protocol::messages::social::{AudienceRequest, AudienceRequestBody, ProfileUpdate};
use distsoc_protocol::sign::SigningKey;
use tempfile::TempDir;

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

struct TestNode {
    dir: TempDir,
    node: Node,
    running: Running,
}

impl TestNode {
    async fn with(config: Config) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::init(dir.path(), Some(config)).unwrap();
        let running = node.start(Some(LOOPBACK)).await.unwrap();
        TestNode { dir, node, running }
    }

    async fn new() -> TestNode {
        Self::with(Config::default()).await
    }

    fn addr(&self) -> SocketAddr {
        self.running.transport().local_addr().unwrap()
    }

    fn id(&self) -> NodeId {
        self.node.node_id()
    }

    /// A fresh QUIC connection from `from` to this node.
    async fn dialled_by(&self, from: &TestNode) -> Peer {
        from.running
            .transport()
            .connect(self.id(), self.addr())
            .await
            .unwrap()
    }

    fn store_path(&self) -> std::path::PathBuf {
        self.dir.path().join(distsoc_node::config::STORE_FILE)
    }
}

/// A config whose push limit does not get in the way of a storage flood.
fn unthrottled() -> Config {
    Config {
        push_rate_per_second: 1_000_000,
        push_burst: 1_000_000,
        ..Config::default()
    }
}

fn fresh_key() -> SigningKey {
    SigningKey::generate(&mut rand_core::OsRng)
}

/// A profile of a fresh key with a bio at its limit (the most disk a push
/// can ask for).
fn big_profile(key: &SigningKey, name: &str) -> ProfileUpdate {
    let profile = PublicProfile {
        posting_id: PostingId(key.public()),
        display_name: name.into(),
        bio: "b".repeat(MAX_BIO_BYTES),
        anchors: Vec::new(),
        avatar: None,
        updated_at_ms: now_ms(),
        network_id: None,
    };
    ProfileUpdate {
        version: PROTOCOL_VERSION,
        profile: sign_checked(profile, key).unwrap(),
    }
}

fn audience_request(requester: &SigningKey, author: PostingId) -> AudienceRequest {
    let body = AudienceRequestBody {
        requester: PostingId(requester.public()),
        author,
        message: "let me in".into(),
        created_at_ms: now_ms(),
    };
    AudienceRequest {
        version: PROTOCOL_VERSION,
        request: sign_checked(body, requester).unwrap(),
    }
}

fn remote_code(r: &Result<impl std::fmt::Debug, RequestError>) -> Option<ErrorCode> {
    match r {
        Err(RequestError::Remote(e)) => Some(e.code),
        _ => None,
    }
}

fn sqlite(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn count(path: &Path, table: &str) -> i64 {
    sqlite(path)
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_flood_from_fresh_keys_leaves_the_store_bounded() {
    let target = TestNode::with(unthrottled()).await;
    let attacker = TestNode::new().await;
    // A followed author's profile is kept whatever the flood does.
    let friend = fresh_key();
    target
        .node
        .store()
        .follow(PostingId(friend.public()), now_ms())
        .unwrap();
    let peer = target.dialled_by(&attacker).await;
    peer.push_acked(big_profile(&friend, "friend"))
        .await
        .unwrap();

    let flood = MAX_CACHED_PROFILES + MAX_CACHED_PROFILES / 2;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let peer = peer.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = None;
            for i in (t..flood).step_by(4) {
                let key = fresh_key();
                peer.push_acked(big_profile(&key, &format!("sybil {i}")))
                    .await
                    .unwrap();
                last = Some(PostingId(key.public()));
            }
            last.unwrap()
        }));
    }
    let mut latest = Vec::new();
    for t in tasks {
        latest.push(t.await.unwrap());
    }
    assert!(started.elapsed() < Duration::from_secs(120));

    let store = target.node.store();
    let (rows, bytes) = store.profile_usage().unwrap();
    // Bounded by the cache (plus the one kept for a reason), in rows and bytes.
    assert!(rows <= MAX_CACHED_PROFILES + 1, "{rows} profiles held");
    assert!(
        bytes <= MAX_CACHED_PROFILE_BYTES + 8 * 1024,
        "{bytes} bytes of profiles"
    );
    assert!(
        rows > MAX_CACHED_PROFILES / 2,
        "the cache still works: {rows}"
    );
    assert!(store
        .get_profile(PostingId(friend.public()))
        .unwrap()
        .is_some());
    // Least recently seen go first: each task's last push is still there.
    for id in latest {
        assert!(store.get_profile(id).unwrap().is_some());
    }
    assert_eq!(count(&target.store_path(), "profiles") as usize, rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_requests_must_name_our_author_and_pending_is_capped() {
    let target = TestNode::with(unthrottled()).await;
    let attacker = TestNode::new().await;
    let peer = target.dialled_by(&attacker).await;
    let me = PostingId(target.id().0);

    // For an author that is not this node: refused, nothing stored.
    for _ in 0..50 {
        let r = peer
            .push_acked(audience_request(
                &fresh_key(),
                PostingId(fresh_key().public()),
            ))
            .await;
        assert_eq!(remote_code(&r), Some(ErrorCode::NotFound), "{r:?}");
    }
    assert_eq!(count(&target.store_path(), "audience_requests"), 0);

    // Addressed to us from fresh requesters: kept up to the cap, then a
    // typed refusal the requester can act on.
    for _ in 0..MAX_PENDING_AUDIENCE_REQUESTS {
        peer.push_acked(audience_request(&fresh_key(), me))
            .await
            .unwrap();
    }
    for _ in 0..20 {
        let r = peer.push_acked(audience_request(&fresh_key(), me)).await;
        match &r {
            Err(RequestError::Remote(e)) => {
                assert_eq!(e.code, ErrorCode::RateLimited);
                assert!(e.retry_after_ms > 0);
            }
            other => panic!("expected rateLimited, got {other:?}"),
        }
    }
    assert_eq!(
        count(&target.store_path(), "audience_requests") as usize,
        MAX_PENDING_AUDIENCE_REQUESTS
    );
    // The connection stays usable.
    peer.push_acked(big_profile(&fresh_key(), "still here"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_flood_from_one_peer_is_rate_limited() {
    let target = TestNode::new().await;
    let cfg = target.node.config().clone();
    let attacker = TestNode::new().await;
    let peer = target.dialled_by(&attacker).await;
    let started = Instant::now();
    let (mut accepted, mut limited) = (0u32, 0u32);
    for i in 0..200 {
        let r = peer
            .push_acked(big_profile(&fresh_key(), &format!("{i}")))
            .await;
        match &r {
            Ok(_) => accepted += 1,
            Err(RequestError::Remote(e)) if e.code == ErrorCode::RateLimited => {
                assert!(e.retry_after_ms > 0, "{e:?}");
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(limited > 0, "nothing was rate limited");
    let allowed = f64::from(cfg.push_burst) + secs * f64::from(cfg.push_rate_per_second) + 1.0;
    assert!(
        f64::from(accepted) <= allowed,
        "{accepted} accepted in {secs:.2}s, at most {allowed:.0} allowed"
    );
    // Another peer is not affected by this one's flood.
    let other = TestNode::new().await;
    let peer2 = target.dialled_by(&other).await;
    peer2
        .push_acked(big_profile(&fresh_key(), "bystander"))
        .await
        .unwrap();
}

/// Stores a post whose text is over the limit straight into the SQLite file,
/// as an older build did, and returns its id.
fn brick(store: &Path, key: &SigningKey) -> distsoc_protocol::ids::PostId {
    let post = Post::new_public(
        PostingId(key.public()),
        now_ms(),
        "x".repeat(65_537),
        vec![],
    )
    .sign(key)
    .unwrap();
    let sync = SyncPost::new(key, post, PostVisibility::Public, None);
    let bytes = codec::canonical_of(&sync);
    let id = sync.post_id();
    let c = sqlite(store);
    let seq: i64 = c
        .query_row(
            "UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value",
            [],
            |r| r.get(0),
        )
        .unwrap();
    c.execute(
        "INSERT INTO posts (post_id, seq, author, created_at_ms, encrypted, received_at_ms, sync_post)
         VALUES (?1, ?2, ?3, ?4, 0, ?4, ?5)",
        rusqlite::params![&id.0[..], seq, &key.public()[..], now_ms() as i64, bytes],
    )
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_stored_post_is_skipped_not_fatal() {
    let alice = TestNode::new().await;
    let bob = TestNode::new().await;
    let intent = distsoc_node::compose::VisibilityIntent::Public;
    alice.node.post("one".into(), vec![], &intent).unwrap();
    let key = alice.node.posting_key().unwrap();
    let bad = brick(&alice.store_path(), &key);
    alice.node.post("two".into(), vec![], &intent).unwrap();

    // Alice's own feed shows the readable posts and counts the skip.
    let texts: Vec<_> = alice
        .node
        .feed(10)
        .unwrap()
        .into_iter()
        .map(|i| i.text.unwrap())
        .collect();
    assert_eq!(texts, ["two", "one"]);
    assert!(alice.node.store().unreadable_rows_skipped() >= 1);

    // A follower's pull gets both readable posts: the bad one fails neither
    // the page nor the cursor.
    bob.node
        .store()
        .follow(PostingId(alice.id().0), now_ms())
        .unwrap();
    let cs = alice.running.connect_string().unwrap().parse().unwrap();
    let peer = bob.running.connect(&cs).await.unwrap();
    let report = bob.running.sync_with(&peer).await.unwrap();
    assert_eq!(report.new_posts, 2, "{report:?}");

    // Asking for the damaged post by id: a typed code, no internal detail.
    let r = peer
        .call(FileRequest {
            version: PROTOCOL_VERSION,
            target: FileTarget::Post(bad),
        })
        .await;
    match r {
        Err(RequestError::Remote(e)) => {
            assert_eq!(e.code, ErrorCode::Internal);
            assert_eq!(e.message, "internal error");
        }
        other => panic!("expected an internal error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_failures_reach_peers_as_codes_without_sqlite_text() {
    let target = TestNode::new().await;
    let client = TestNode::new().await;
    let peer = target.dialled_by(&client).await;
    // Break the store under the running node.
    sqlite(&target.store_path())
        .execute_batch("DROP TABLE author_recent_posts")
        .unwrap();
    let r = peer
        .call(AuthorUpdateRequest {
            version: PROTOCOL_VERSION,
            author: PostingId(fresh_key().public()),
            have_seq: 0,
        })
        .await;
    let e = match r {
        Err(RequestError::Remote(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    };
    // A damaged schema is not transient: `internal`, no retry-after (the
    // shared `StorageFault` rule, schema/README.md §11).
    assert_eq!(e.code, ErrorCode::Internal);
    assert_eq!(e.message, "internal error");
    assert_eq!(e.retry_after_ms, 0);
    let dir = target.dir.path().to_string_lossy().into_owned();
    for leak in ["sqlite", "author_recent_posts", "table", dir.as_str()] {
        assert!(!e.message.contains(leak), "{leak:?} in {:?}", e.message);
    }
    // The connection stays usable.
    peer.push_acked(big_profile(&fresh_key(), "after"))
        .await
        .unwrap();
}

/// A store another process holds locked is transient: the peer is told
/// `unavailable` with the shared retry-after and a generic message (the
/// `StorageFault` rule, schema/README.md §11), and the node recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_store_reaches_peers_as_unavailable_with_retry_after() {
    let target = TestNode::new().await;
    let client = TestNode::new().await;
    let peer = target.dialled_by(&client).await;
    // Another process takes the write lock and keeps it past the node's
    // busy timeout.
    let other = sqlite(&target.store_path());
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let e = match peer.push_acked(big_profile(&fresh_key(), "busy")).await {
        Err(RequestError::Remote(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(e.code, ErrorCode::Unavailable);
    assert_eq!(e.retry_after_ms, STORAGE_RETRY_AFTER_MS);
    assert_eq!(e.message, UNAVAILABLE_MESSAGE);
    // Once the lock is released the same push is accepted.
    other.execute_batch("COMMIT").unwrap();
    peer.push_acked(big_profile(&fresh_key(), "after"))
        .await
        .unwrap();
}

/// Waits (bounded) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_are_pushed_back_once_per_connection_and_the_record_is_bounded() {
    let bob = TestNode::new().await;
    let alice = TestNode::new().await;
    alice
        .node
        .set_profile("Alice".into(), String::new(), vec![])
        .unwrap();
    bob.node
        .set_profile("Bob 1".into(), String::new(), vec![])
        .unwrap();
    let bob_id = PostingId(bob.id().0);
    let name = |n: &TestNode| {
        n.node
            .store()
            .get_profile(bob_id)
            .unwrap()
            .map(|p| p.body().display_name.clone())
    };
    let cs = bob.running.connect_string().unwrap().parse().unwrap();
    let peer = alice.running.connect(&cs).await.unwrap();
    eventually("Bob's profile pushed back", || {
        name(&alice).as_deref() == Some("Bob 1")
    })
    .await;
    peer.close();
    eventually("the connection to close", || {
        alice.running.transport().peer(&bob.id()).is_none()
    })
    .await;

    // A new connection is a new connection, whatever id quinn gives it.
    std::thread::sleep(Duration::from_millis(5));
    bob.node
        .set_profile("Bob 2".into(), String::new(), vec![])
        .unwrap();
    let peer = alice.running.connect(&cs).await.unwrap();
    eventually("Bob's new profile pushed back", || {
        name(&alice).as_deref() == Some("Bob 2")
    })
    .await;
    peer.close();

    // Many one-off peers: the record does not grow with them.
    for i in 0..70 {
        let client = TestNode::new().await;
        client
            .node
            .set_profile(format!("c{i}"), String::new(), vec![])
            .unwrap();
        let p = client.running.connect(&cs).await.unwrap();
        p.close();
        client.running.transport().close().await;
    }
    eventually("closed connections to be forgotten", || {
        bob.running.service().profile_push_entries() <= 65
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_list_flood_from_fresh_authors_is_bounded() {
    use distsoc_node::store::{MAX_CACHED_RECENT_LISTS, MAX_CACHED_RECENT_LIST_BYTES};
    use distsoc_protocol::ids::PostId;
    use distsoc_protocol::messages::common::VisibilityHint;
    use distsoc_protocol::messages::content::{AuthorRecentPosts, RecentPost};
    use distsoc_protocol::messages::files::AuthorUpdatePush;

    let target = TestNode::with(unthrottled()).await;
    let attacker = TestNode::new().await;
    let peer = target.dialled_by(&attacker).await;
    // ~100 KiB lists: the byte bound binds before the count.
    let entries: Vec<RecentPost> = (0..2_000u32)
        .map(|i| RecentPost {
            post_id: PostId(*blake3::hash(&i.to_le_bytes()).as_bytes()),
            created_at_ms: 1,
            hint: VisibilityHint::Public,
        })
        .collect();
    let followed = fresh_key();
    target
        .node
        .store()
        .follow(PostingId(followed.public()), now_ms())
        .unwrap();
    let list = |key: &SigningKey| -> AuthorUpdatePush {
        let body = AuthorRecentPosts {
            author: PostingId(key.public()),
            seq: 1,
            updated_at_ms: now_ms(),
            posts: entries.clone(),
        };
        AuthorUpdatePush {
            version: PROTOCOL_VERSION,
            recent: sign_checked(body, key).unwrap(),
        }
    };
    peer.push_acked(list(&followed)).await.unwrap();
    for _ in 0..3 * MAX_CACHED_RECENT_LISTS {
        peer.push_acked(list(&fresh_key())).await.unwrap();
    }
    let c = sqlite(&target.store_path());
    let (rows, bytes): (i64, i64) = c
        .query_row(
            "SELECT count(*), SUM(length(list) + length(signature)) FROM author_recent_posts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // The followed author's list plus the bounded cache.
    assert!(rows as usize <= MAX_CACHED_RECENT_LISTS + 1, "{rows}");
    assert!(
        bytes as usize <= MAX_CACHED_RECENT_LIST_BYTES + 200 * 1024,
        "{bytes}"
    );
    assert!(target
        .node
        .store()
        .get_recent(PostingId(followed.public()))
        .unwrap()
        .is_some());
}
