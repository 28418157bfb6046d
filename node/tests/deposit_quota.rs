//! The node's deposit of its own posts at an anchor that enforces a deposit
//! quota (issue 9 item 20): a `quotaExceeded` refusal pauses deposits at
//! that anchor for its `retryAfterMs` instead of retrying in a loop, and
//! the cursor keeps the refused post for later. Real anchor (SQLite), real
//! node, QUIC on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_node::compose::VisibilityIntent;
use distsoc_node::config::Config;
use distsoc_node::node::Node;
use distsoc_protocol::ids::ConnectString;
use distsoc_protocol::sign::SigningKey;

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
const STEP: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exceeded_pauses_deposits_without_a_retry_loop() {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let cfg = AnchorConfig {
        listen: LOOPBACK,
        admin_listen: String::new(),
        metrics_listen: String::new(),
        post_quota_author_posts: 2,
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: dir.path().join("anchor"),
        drain_timeout: Duration::from_secs(5),
    };
    std::fs::create_dir_all(&opts.data_dir).unwrap();
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let anchor_cs: ConnectString = format!("{}@{}", key.node_id(), anchor.local_addr().unwrap())
        .parse()
        .unwrap();

    let alice = Node::init(
        &dir.path().join("alice"),
        Some(Config {
            listen: LOOPBACK,
            ..Config::default()
        }),
    )
    .unwrap();
    for i in 0..3 {
        alice
            .post(format!("post {i}"), vec![], &VisibilityIntent::Public)
            .unwrap();
    }
    let run = alice.start(Some(LOOPBACK)).await.unwrap();
    let peer = tokio::time::timeout(STEP, run.connect(&anchor_cs))
        .await
        .unwrap()
        .unwrap();
    let first = run.sync_with(&peer).await.unwrap();
    assert_eq!(first.deposited, 2, "two fit the quota: {first:?}");
    let refused = || {
        anchor
            .service
            .counters()
            .quota_refused_author
            .load(Ordering::Relaxed)
    };
    assert_eq!(refused(), 1);
    // Syncing again within the window neither deposits nor asks again.
    for _ in 0..3 {
        let again = run.sync_with(&peer).await.unwrap();
        assert_eq!(again.deposited, 0, "{again:?}");
    }
    assert_eq!(refused(), 1, "no retry before retryAfterMs");
    assert_eq!(anchor.service.store().stats().await.unwrap().posts, 2);
    run.transport().close().await;
    anchor.stop(Duration::from_secs(2)).await;
}
