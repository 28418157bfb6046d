//! What an anchor admits from outside, with a real anchor (SQLite, and
//! PostgreSQL where the store matters) and real QUIC clients on loopback:
//! profile signatures before `Ack` (issue 9 item 11), post deposit quotas
//! (item 20), and verified addresses in address and bootstrap answers
//! (item 5).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;
use common::{code, start_anchor, LOOPBACK};

use distsoc_anchor::config::AnchorConfig;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::PostingId;
use distsoc_protocol::messages::identity::PublicProfile;
use distsoc_protocol::messages::signed::Signed;
use distsoc_protocol::messages::social::ProfileUpdate;
use distsoc_protocol::sign::SigningKey;

fn profile(posting: &SigningKey, signer: &SigningKey) -> ProfileUpdate {
    ProfileUpdate {
        version: 2,
        profile: Signed::sign(
            PublicProfile {
                posting_id: PostingId(posting.public()),
                display_name: "alice".into(),
                bio: String::new(),
                anchors: vec![],
                avatar: None,
                updated_at_ms: 1,
                network_id: None,
            },
            signer,
        ),
    }
}

/// `Ack` means "validated and accepted": a ProfileUpdate whose signature
/// does not verify is refused with `badSignature`, a good one is acked, and
/// the connection stays usable after the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_update_is_acked_only_with_a_valid_signature() {
    let a = start_anchor(AnchorConfig::default()).await;
    let alice = SigningKey::generate(&mut rand_core::OsRng);
    let mallory = SigningKey::generate(&mut rand_core::OsRng);
    let (_t, peer, _) = common::connect_as(&mallory, a.id, a.addr, LOOPBACK).await;
    // Mallory's signature over a profile naming Alice.
    let forged = profile(&alice, &mallory);
    assert_eq!(code(peer.push_acked(forged).await), ErrorCode::BadSignature);
    let good = profile(&mallory, &mallory);
    peer.push_acked(good)
        .await
        .expect("a validly signed profile is acked");
}

// ---- item 20: deposit quotas ------------------------------------------------

mod pg_harness;

use distsoc_net::transport::{Peer, RequestError};
use distsoc_protocol::messages::content::{Post, PostVisibility, SyncPost};
use distsoc_protocol::messages::social::PushPost;
use std::time::Duration;

fn public_post(k: &SigningKey, ms: u64, text_len: usize) -> SyncPost {
    let p = Post::new_public(PostingId(k.public()), ms, "x".repeat(text_len), vec![])
        .sign(k)
        .unwrap();
    SyncPost::new(k, p, PostVisibility::Public, None)
}

async fn deposit(peer: &Peer, post: &SyncPost) -> Result<(), RequestError> {
    peer.push_acked(PushPost {
        version: 2,
        post: post.clone(),
        recent: None,
    })
    .await
    .map(|_| ())
}

fn quota_config(store: String) -> AnchorConfig {
    AnchorConfig {
        store,
        metrics_listen: "127.0.0.1:0".into(),
        post_quota_author_posts: 3,
        post_quota_author_bytes: 16 * 1024,
        post_quota_depositor_posts: 5,
        post_quota_depositor_bytes: 0,
        ..AnchorConfig::default()
    }
}

/// Per-author and per-depositor quotas refuse with `quotaExceeded` and a
/// `retryAfterMs` within the window, before anything is stored; duplicates
/// and refused posts cost nothing; the refusals are counted; a restarted
/// anchor remembers the authors' usage from the store.
async fn quotas_hold(store: String) {
    let a = start_anchor(quota_config(store.clone())).await;
    let alice = SigningKey::generate(&mut rand_core::OsRng);
    let (_t, peer, _) = common::connect_as(&alice, a.id, a.addr, LOOPBACK).await;
    let posts: Vec<SyncPost> = (1..=4).map(|i| public_post(&alice, i, 10)).collect();
    deposit(&peer, &posts[0]).await.unwrap();
    // A duplicate is acked and not charged.
    deposit(&peer, &posts[0]).await.unwrap();
    deposit(&peer, &posts[1]).await.unwrap();
    deposit(&peer, &posts[2]).await.unwrap();
    let refused = peer
        .push_acked(PushPost {
            version: 2,
            post: posts[3].clone(),
            recent: None,
        })
        .await;
    let Err(RequestError::Remote(e)) = refused else {
        panic!("4th post of one author in a window: {refused:?}")
    };
    assert_eq!(e.code, ErrorCode::QuotaExceeded, "{e:?}");
    let day_ms = 24 * 3600 * 1000;
    assert!(
        e.retry_after_ms > 0 && u64::from(e.retry_after_ms) <= day_ms,
        "{e:?}"
    );
    // A post over the author byte quota alone: waiting does not help.
    let bob = SigningKey::generate(&mut rand_core::OsRng);
    let huge = public_post(&bob, 1, 20 * 1024);
    match deposit(&peer, &huge).await {
        Err(RequestError::Remote(e)) => {
            assert_eq!((e.code, e.retry_after_ms), (ErrorCode::QuotaExceeded, 0))
        }
        other => panic!("{other:?}"),
    }
    // Mallory deposits other authors' posts: the depositor quota (5) stops
    // her, whoever the authors are; the connection stays usable.
    let mallory = SigningKey::generate(&mut rand_core::OsRng);
    let (_t2, m, _) = common::connect_as(&mallory, a.id, a.addr, LOOPBACK).await;
    for i in 0..5 {
        let k = SigningKey::generate(&mut rand_core::OsRng);
        deposit(&m, &public_post(&k, i, 10)).await.unwrap();
    }
    let k = SigningKey::generate(&mut rand_core::OsRng);
    assert_eq!(
        code(deposit(&m, &public_post(&k, 9, 10)).await),
        ErrorCode::QuotaExceeded
    );
    let profile = profile(&mallory, &mallory);
    m.push_acked(profile).await.unwrap();
    let stats = a.anchor.service.store().stats().await.unwrap();
    assert_eq!(stats.posts, 3 + 5, "refused posts are not stored");
    let c = a.anchor.service.counters();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(c.quota_refused_author.load(Relaxed), 2);
    assert_eq!(c.quota_refused_depositor.load(Relaxed), 1);
    // The operator sees them in Prometheus.
    let metrics = scrape(a.anchor.metrics_addr().unwrap()).await;
    for line in [
        "distsoc_anchor_posts_quota_refused_total{quota=\"author\"} 2",
        "distsoc_anchor_posts_quota_refused_total{quota=\"depositor\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing:\n{metrics}"
        );
    }
    // Restart on the same store: Alice's 3 posts are still counted.
    let TestAnchorParts { dir, anchor } = TestAnchorParts::from(a);
    anchor.stop(Duration::from_secs(2)).await;
    let b = start_anchor(quota_config(store)).await;
    let (_t3, peer, _) = common::connect_as(&alice, b.id, b.addr, LOOPBACK).await;
    assert_eq!(
        code(deposit(&peer, &posts[3]).await),
        ErrorCode::QuotaExceeded
    );
    drop(dir);
}

/// `GET /metrics` over plain HTTP/1.1: the body.
async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut raw))
        .await
        .unwrap()
        .unwrap();
    raw.split_once("\r\n\r\n").unwrap().1.to_string()
}

struct TestAnchorParts {
    dir: tempfile::TempDir,
    anchor: distsoc_anchor::run::Anchor,
}

impl From<common::TestAnchor> for TestAnchorParts {
    fn from(a: common::TestAnchor) -> Self {
        Self {
            dir: a.dir,
            anchor: a.anchor,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_quotas_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    quotas_hold(format!("sqlite:{}", dir.path().join("q.sqlite").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_quotas_postgres() {
    if pg_harness::skip() {
        return;
    }
    let url = pg_harness::shared().create_database().await;
    quotas_hold(url).await;
}

// ---- item 5: only verified addresses are handed out ---------------------------

use distsoc_net::transport::{Transport, TransportConfig};
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::common::{PeerAddress, Role};
use distsoc_protocol::messages::discovery::{AddressRequest, BootstrapRequest};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

/// A loopback UDP port nobody listens on.
fn closed_port() -> SocketAddr {
    std::net::UdpSocket::bind(LOOPBACK)
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn addresses(asker: &Peer, targets: Vec<NodeId>) -> Vec<Option<PeerAddress>> {
    asker
        .call(AddressRequest {
            version: 2,
            targets,
            depth: 0,
        })
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.peer)
        .collect()
}

async fn bootstrap(asker: &Peer) -> Vec<PeerAddress> {
    asker
        .call(BootstrapRequest {
            version: 2,
            want: 200,
            exclude: vec![],
        })
        .await
        .unwrap()
        .peers
}

/// Waits (bounded) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sybils announcing addresses nobody answers at (a closed loopback port,
/// a documentation address, someone else's DNS server), one of them
/// claiming the anchor role, and a client that announced no listen address
/// never appear in address or bootstrap answers; an honest node that
/// listens where it says appears after the dial-back verified it, at
/// exactly its announced address. Only the honest node is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_verified_addresses_are_handed_out() {
    let a = start_anchor(AnchorConfig {
        verify_timeout_ms: 1000,
        ..AnchorConfig::default()
    })
    .await;
    let mut sybils = Vec::new();
    for i in 0..10 {
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let t = Transport::bind(
            &key,
            TransportConfig {
                listen: LOOPBACK,
                roles: if i == 0 {
                    vec![Role::Anchor]
                } else {
                    vec![Role::Node]
                },
                listen_addresses: vec![
                    closed_port(),
                    "203.0.113.5:4433".parse().unwrap(),
                    "8.8.8.8:53".parse().unwrap(),
                ],
                ..TransportConfig::default()
            },
            Arc::new(common::Refuse),
        )
        .unwrap();
        let p = t.connect(a.id, a.addr).await.unwrap();
        sybils.push((t, p, NodeId(key.public())));
    }
    let (_ts, _silent, silent) = common::connect(a.id, a.addr, LOOPBACK).await;
    let honest_key = SigningKey::generate(&mut rand_core::OsRng);
    let honest = NodeId(honest_key.public());
    let (_th, _hp, honest_at) = common::listening_as(&honest_key, a.id, a.addr).await;
    let (_ta, asker, _) = common::connect(a.id, a.addr, LOOPBACK).await;

    let counters = a.anchor.service.counters();
    // Ten failed dial-backs (the closed ports) and one that succeeded.
    until("every dial-back to finish", || {
        counters.dialbacks.load(Relaxed) >= 11
    })
    .await;
    assert_eq!(
        counters.dialbacks.load(Relaxed),
        11,
        "only own-IP addresses are dialled"
    );
    assert_eq!(counters.dialbacks_verified.load(Relaxed), 1);
    until("the honest check-in", || {
        counters.checkins_written.load(Relaxed) >= 1
    })
    .await;

    let mut targets: Vec<NodeId> = sybils.iter().map(|s| s.2).collect();
    targets.push(silent);
    targets.push(honest);
    let found = addresses(&asker, targets).await;
    let (honest_entry, others) = found.split_last().unwrap();
    assert!(
        others.iter().all(Option::is_none),
        "unverified or undeclared addresses handed out: {others:?}"
    );
    let h = honest_entry.as_ref().expect("the verified node is found");
    assert_eq!(
        h.addresses.iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![honest_at]
    );
    assert!(!h.is_anchor);
    let peers = bootstrap(&asker).await;
    let ids: Vec<NodeId> = peers.iter().map(|p| p.node_id).collect();
    assert_eq!(ids, vec![honest], "bootstrap holds only the verified node");
    assert_eq!(counters.checkins_written.load(Relaxed), 1);
}

/// Sybils on one IP, each announcing a port on that IP where nothing
/// listens, cause at most the per-IP dial-back budget of dial-backs; the
/// rest are not dialled at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_backs_per_source_ip_are_bounded() {
    let a = start_anchor(AnchorConfig {
        verify_timeout_ms: 300,
        verify_dials_per_ip_per_minute: 5,
        ..AnchorConfig::default()
    })
    .await;
    let mut sybils = Vec::new();
    for _ in 0..30 {
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let t = common::listening_endpoint(&key, Some(vec![closed_port()]));
        let p = t.connect(a.id, a.addr).await.unwrap();
        sybils.push((t, p));
    }
    let counters = a.anchor.service.counters();
    until("the budgeted dial-backs to finish", || {
        counters.dialbacks.load(Relaxed) >= 5
    })
    .await;
    // Every check-in task was spawned before the loop above ended; give the
    // last ones a moment to show that they dial nothing more (an absence
    // has no event to wait for).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(counters.dialbacks.load(Relaxed), 5);
    assert_eq!(counters.checkins_written.load(Relaxed), 0);
}

/// 1,000 reconnects of one identity cause one dial-back and at most a
/// handful of check-in writes (coalesced in memory, no storage work for a
/// duplicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_coalesce_checkin_writes() {
    let a = start_anchor(AnchorConfig::default()).await;
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let t = common::listening_endpoint(&key, None);
    let started = Instant::now();
    for _ in 0..1000 {
        let p = t.connect(a.id, a.addr).await.unwrap();
        p.close();
    }
    let counters = a.anchor.service.counters();
    until("the check-in", || {
        counters.checkins_written.load(Relaxed) >= 1
    })
    .await;
    // Let any check-in task still running finish.
    let (_ta, asker, _) = common::connect(a.id, a.addr, LOOPBACK).await;
    assert!(addresses(&asker, vec![NodeId(key.public())]).await[0].is_some());
    let written = counters.checkins_written.load(Relaxed);
    let dials = counters.dialbacks.load(Relaxed);
    assert!(written <= 3, "{written} check-in writes for one identity");
    assert!(
        dials <= 2,
        "{dials} dial-backs for one identity and address"
    );
    assert!(started.elapsed() < Duration::from_secs(120));
}
