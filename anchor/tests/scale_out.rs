//! Scale-out: two anchors on one PostgreSQL database. Each anchor has its own
//! store (connection pool, LISTEN connection, in-process wake registry) and its
//! own QUIC endpoint, exactly as two anchor processes would; an enqueue through
//! one wakes a FetchWait held on the other only through PostgreSQL
//! LISTEN/NOTIFY.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;
use common::LOOPBACK;

mod pg_harness;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_net::transport::{Peer, Transport};
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::mailbox::{CreateChannel, Enqueue, FetchWait, ListChannels};
use distsoc_protocol::sign::SigningKey;

async fn start_anchor(store: &str, dir: &std::path::Path) -> (Anchor, NodeId, SocketAddr) {
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let cfg = AnchorConfig {
        listen: LOOPBACK,
        store: store.to_string(),
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: dir.into(),
        drain_timeout: Duration::from_secs(5),
    };
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let addr = anchor.local_addr().unwrap();
    (anchor, key.node_id(), addr)
}

async fn client(anchor: NodeId, addr: SocketAddr) -> (Transport, Peer, NodeId) {
    common::connect(anchor, addr, LOOPBACK).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_through_one_anchor_wakes_fetch_wait_on_the_other() {
    if pg_harness::skip() {
        return;
    }
    let url = pg_harness::shared().create_database().await;
    let dir = tempfile::tempdir().unwrap();
    let (a1, id1, addr1) = start_anchor(&url, dir.path()).await;
    let (a2, id2, addr2) = start_anchor(&url, dir.path()).await;
    let (_ta, alice, alice_id) = client(id1, addr1).await;
    let (_tb, bob, bob_id) = client(id2, addr2).await;

    // The channel made through anchor 1 is visible through anchor 2.
    let ch = alice
        .call(CreateChannel {
            version: 2,
            peer: bob_id,
        })
        .await
        .unwrap();
    let list = bob.call(ListChannels::new(2)).await.unwrap();
    assert_eq!(list.channels.len(), 1);
    assert_eq!(list.channels[0].peer, alice_id);

    // Bob waits on anchor 2; Alice enqueues on anchor 1.
    let wait = FetchWait {
        version: 2,
        channel_id: Some(ch.channel_id),
        ack_through: 0,
        max_messages: 0,
        max_bytes: 0,
        timeout_ms: 30_000,
    };
    let started = Instant::now();
    let held = tokio::spawn({
        let bob = bob.clone();
        async move { bob.call_with_timeout(wait, Duration::from_secs(40)).await }
    });
    let enqueue = Enqueue {
        version: 2,
        channel_id: Some(ch.channel_id),
        recipient: bob_id,
        payload: b"across anchors".to_vec(),
        client_message_id: None,
    };
    let _ = alice.call(enqueue).await.unwrap();
    let got = held.await.unwrap().unwrap();
    assert_eq!(got.0.messages.len(), 1);
    assert_eq!(got.0.messages[0].payload, b"across anchors".to_vec());
    assert_eq!(got.0.messages[0].sender, alice_id);
    // Woken, not timed out (the wait was 30 s).
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );

    a1.stop(Duration::from_secs(2)).await;
    a2.stop(Duration::from_secs(2)).await;
}

/// A ban made through one anchor's operator surface reaches the other anchor
/// on the same database at its next refresh (no restart, no second call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_through_one_anchor_applies_on_the_other() {
    if pg_harness::skip() {
        return;
    }
    let url = pg_harness::shared().create_database().await;
    let dir = tempfile::tempdir().unwrap();
    let (a1, _, _) = start_anchor(&url, dir.path()).await;
    let (a2, id2, addr2) = start_anchor(&url, dir.path()).await;
    let (_tm, mallory, mallory_id) = client(id2, addr2).await;
    let list = || mallory.call(ListChannels::new(2));
    list().await.expect("served before the ban");

    assert!(a1.service.ban(mallory_id).await.unwrap());
    // What anchor 2's background refresh does every OPERATOR_STATE_REFRESH;
    // called here so the test does not depend on timing.
    a2.service.refresh_operator_state().await.unwrap();
    assert_eq!(a2.service.banned(), vec![mallory_id]);
    match list().await {
        Err(distsoc_net::transport::RequestError::Remote(e)) => {
            assert_eq!(e.code, distsoc_protocol::error::ErrorCode::Unauthorized)
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    assert!(a1.service.unban(mallory_id).await.unwrap());
    a2.service.refresh_operator_state().await.unwrap();
    list().await.expect("served after the unban");

    a1.stop(Duration::from_secs(2)).await;
    a2.stop(Duration::from_secs(2)).await;
}
