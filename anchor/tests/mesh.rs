//! The anchor in the mesh, attacked over real QUIC on 127.0.0.1: invalid
//! InitialMapSync pushes on a bidirectional stream are answered
//! `Error(malformed)` / `Error(tooLarge)` (§13.9) and the connection keeps
//! working; a burst of
//! 25 WormRequests from one connection meets the mesh's rate limit
//! (`rateLimited` with `retryAfterMs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{code, start_anchor, LOOPBACK};

use distsoc_anchor::config::AnchorConfig;
use distsoc_net::transport::RequestError;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{NodeId, WormId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::common::PeerAddress;
use distsoc_protocol::messages::discovery::{
    BootstrapRequest, Hop1Entry, InitialMapSync, MapSyncRequest, RoutingDiff, WormRequest,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_map_pushes_are_refused_and_the_connection_stays() {
    let a = start_anchor(AnchorConfig::default()).await;
    let (_t, peer, _) = common::connect(a.id, a.addr, LOOPBACK).await;
    let sync = |hop3: Vec<NodeId>, index: u32, count: u32| InitialMapSync {
        version: PROTOCOL_VERSION,
        seq: 0,
        hop1: Vec::new(),
        hop2: Vec::new(),
        hop3,
        chunk_index: index,
        chunk_count: count,
    };
    for (bad, refusal) in [
        (sync(Vec::new(), 0, 0), ErrorCode::Malformed),
        (sync(Vec::new(), 2, 2), ErrorCode::Malformed),
        (sync(Vec::new(), 0, 17), ErrorCode::TooLarge),
    ] {
        assert_eq!(code(peer.push_acked(bad).await), refusal);
    }
    let mut late_hop1 = sync(Vec::new(), 1, 2);
    late_hop1.hop1.push(Hop1Entry {
        peer: PeerAddress {
            node_id: NodeId([9; 32]),
            addresses: Vec::new(),
            is_anchor: false,
            last_seen_ms: 0,
        },
        is_wide: false,
    });
    assert_eq!(code(peer.push_acked(late_hop1).await), ErrorCode::Malformed);
    // A non-empty hop3 is ignored, not refused (§13.9); a diff is acked.
    peer.push_acked(sync(vec![NodeId([7; 32])], 0, 1))
        .await
        .unwrap();
    let diff = RoutingDiff {
        version: PROTOCOL_VERSION,
        seq: 1,
        hop1_changes: Vec::new(),
        hop2_changes: Vec::new(),
    };
    peer.push_acked(diff).await.unwrap();
    // The connection still carries valid mesh pushes and ordinary requests.
    peer.push_acked(sync(Vec::new(), 0, 1)).await.unwrap();
    peer.push_acked(MapSyncRequest {
        version: PROTOCOL_VERSION,
        last_seq: 0,
    })
    .await
    .unwrap();
    peer.call(BootstrapRequest {
        version: PROTOCOL_VERSION,
        want: 10,
        exclude: Vec::new(),
    })
    .await
    .unwrap();
    assert!(!peer.is_closed());
    a.anchor.stop(std::time::Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_worm_requests_is_rate_limited() {
    let a = start_anchor(AnchorConfig::default()).await;
    let (_t, peer, me) = common::connect(a.id, a.addr, LOOPBACK).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..25u8 {
        let peer = peer.clone();
        calls.spawn(async move {
            peer.call(WormRequest {
                version: PROTOCOL_VERSION,
                worm_id: WormId([i; 16]),
                targets: vec![NodeId([0xAB; 32])],
                post_ids: Vec::new(),
                ttl: 0,
                originator: PeerAddress {
                    node_id: me,
                    addresses: Vec::new(),
                    is_anchor: false,
                    last_seen_ms: 0,
                },
                visited: Vec::new(),
            })
            .await
        });
    }
    let results = calls.join_all().await;
    let mut ok = 0;
    let mut limited = 0;
    for r in results {
        match r {
            Ok(resp) => {
                assert!(resp.hits.is_empty());
                ok += 1;
            }
            Err(RequestError::Remote(e)) => {
                assert_eq!(e.code, ErrorCode::RateLimited, "{e:?}");
                assert!(e.retry_after_ms > 0, "{e:?}");
                limited += 1;
            }
            Err(e) => panic!("worm request failed: {e}"),
        }
    }
    assert!((1..=20).contains(&ok), "{ok} admitted");
    assert!(limited >= 5, "{limited} refused");
    assert!(!peer.is_closed());
    a.anchor.stop(std::time::Duration::from_secs(2)).await;
}
