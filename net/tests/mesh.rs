//! The mesh driver (`distsoc_net::mesh`) on real quinn endpoints on
//! 127.0.0.1, no mocks: four transports in a chain A–B–C–D fill their maps
//! by InitialMapSync and RoutingDiff, and A's lookups resolve C at hop 2
//! and D at hop 3 through AddressRequests over the wire; a node that
//! reconnects and leaves is tracked by connection; and hostile input —
//! malformed InitialMapSync / RoutingDiff on a bidirectional stream, a burst
//! of WormRequests — is refused with typed errors while the connection stays
//! usable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use distsoc_net::mesh::{MeshHandle, ResolvedTier};
use distsoc_net::transport::{RequestError, Router, Transport, TransportConfig};
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{NodeId, WormId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::mesh::{MeshConfig, SlotClass, Tier};
use distsoc_protocol::messages::common::{PeerAddress, SocketAddress};
use distsoc_protocol::messages::discovery::{InitialMapSync, RoutingDiff, WormRequest};
use distsoc_protocol::sign::SigningKey;
use tokio::time::Instant;

const BOUND: Duration = Duration::from_secs(20);

struct St {
    mesh: MeshHandle,
}

/// A chain member: no slots of its own (so it dials nobody and the chain
/// stays a chain), diffs every 300 ms.
fn chain_config() -> MeshConfig {
    MeshConfig {
        social_slots: 0,
        wide_slots: 0,
        min_anchors: 0,
        diff_interval: Duration::from_millis(300),
        ..MeshConfig::desktop()
    }
}

struct Node {
    transport: Arc<Transport>,
    mesh: MeshHandle,
    id: NodeId,
    addr: SocketAddr,
}

/// A free UDP port on 127.0.0.1 (the endpoint advertises where it listens).
fn free_addr() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

fn node(seed: u8, config: MeshConfig) -> Node {
    let key = SigningKey::from_seed(&[seed; 32]);
    let id = NodeId(key.public());
    let addr = free_addr();
    let mesh = MeshHandle::new(id, config);
    let state = Arc::new(St { mesh: mesh.clone() });
    let router = MeshHandle::route(Router::new(state, "a test node"), |s: &St| &s.mesh);
    let cfg = TransportConfig {
        listen: addr,
        listen_addresses: vec![addr],
        ..TransportConfig::default()
    };
    let transport = Arc::new(Transport::bind(&key, cfg, Arc::new(router)).unwrap());
    mesh.attach(&transport);
    Node {
        transport,
        mesh,
        id,
        addr,
    }
}

/// Polls `f` until it holds; fails after [`BOUND`].
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_fills_maps_and_lookups_resolve_hop2_and_hop3() {
    let a = node(1, chain_config());
    let b = node(2, chain_config());
    let c = node(3, chain_config());
    let d = node(4, chain_config());
    // Links in order A–B, B–C, C–D: what B and C learn after A connected
    // reaches A by RoutingDiff, not by the InitialMapSync.
    a.transport.connect(b.id, b.addr).await.unwrap();
    b.transport.connect(c.id, c.addr).await.unwrap();
    c.transport.connect(d.id, d.addr).await.unwrap();

    until("A's map to hold C at hop 2 and D at hop 3", || {
        let s = a.mesh.map_stats();
        // `hop3` counts at the last Bloom rebuild; `hop3_raw` at once.
        s.hop1 == 1 && s.hop2 == 1 && s.hop3_raw >= 1
    })
    .await;
    until("D's map to hold B at hop 2", || {
        d.mesh.map_stats().hop2 == 1
    })
    .await;
    let b_peers = b.mesh.peers();
    assert_eq!(b_peers.len(), 2, "{b_peers:?}");
    let class_of_a = b_peers.iter().find(|p| p.node_id == a.id).unwrap().class;
    assert_eq!(class_of_a, SlotClass::Inbound, "A dialled B");

    // Hop 2: A asks B (the reporter) for C's advertised address.
    let hop2 = a.mesh.lookup(c.id).await.unwrap();
    let (found, tier) = hop2.found.clone().expect("C found");
    assert_eq!(tier, Tier::Hop2, "{hop2:?}");
    assert_eq!(found.addresses, vec![SocketAddress(c.addr)]);

    // Hop 3: A asks B with depth 1, B asks C, C answers from its hop 1.
    let hop3 = a.mesh.resolve(d.id, &[]).await.unwrap();
    let (found, tier) = hop3.found.clone().expect("D found");
    assert_eq!(tier, ResolvedTier::Mesh(Tier::Hop3), "{hop3:?}");
    assert_eq!(found.addresses, vec![SocketAddress(d.addr)]);
    assert!(hop3.messages >= 1);

    // A stranger is not found (the worm has no one to ask beyond the chain).
    let nobody = a.mesh.lookup(NodeId([0xEE; 32])).await.unwrap();
    assert!(nobody.found.is_none(), "{nobody:?}");

    // D leaves: C's PeerDown is re-derived into diffs; A's hop 3 loses D,
    // B's hop 2 loses D.
    d.transport.close().await;
    until("B to drop D from hop 2", || b.mesh.map_stats().hop2 == 0).await;
    until("C to drop D from hop 1", || c.mesh.map_stats().hop1 == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_map_pushes_on_a_bidi_stream_are_refused_and_the_connection_stays() {
    let server = node(10, chain_config());
    let client = node(11, chain_config());
    let peer = client
        .transport
        .connect(server.id, server.addr)
        .await
        .unwrap();
    until("the server to count the client", || {
        server.mesh.map_stats().hop1 == 1
    })
    .await;

    let bad_sync = InitialMapSync {
        version: PROTOCOL_VERSION,
        seq: 0,
        hop1: Vec::new(),
        hop2: Vec::new(),
        hop3: Vec::new(),
        chunk_index: 0,
        chunk_count: 0,
    };
    match peer.push_acked(bad_sync).await {
        Err(RequestError::Remote(e)) => assert_eq!(e.code, ErrorCode::Malformed, "{e:?}"),
        other => panic!("expected Error(malformed), got {other:?}"),
    }
    let bad_diff = RoutingDiff {
        version: PROTOCOL_VERSION,
        seq: 0,
        hop1_changes: Vec::new(),
        hop2_changes: Vec::new(),
    };
    match peer.push_acked(bad_diff).await {
        Err(RequestError::Remote(e)) => assert_eq!(e.code, ErrorCode::Malformed, "{e:?}"),
        other => panic!("expected Error(malformed), got {other:?}"),
    }
    // The same connection still carries valid mesh messages.
    let good_diff = RoutingDiff {
        version: PROTOCOL_VERSION,
        seq: 1,
        hop1_changes: Vec::new(),
        hop2_changes: Vec::new(),
    };
    peer.push_acked(good_diff).await.unwrap();
    assert!(!peer.is_closed());
    let found = client.mesh.lookup(server.id).await.unwrap();
    assert_eq!(found.found.unwrap().1, Tier::Direct);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_worm_requests_is_rate_limited() {
    let server = node(20, chain_config());
    let client = node(21, chain_config());
    let peer = client
        .transport
        .connect(server.id, server.addr)
        .await
        .unwrap();
    let mut ok = 0;
    let mut limited = Vec::new();
    for i in 0..25u8 {
        let req = WormRequest {
            version: PROTOCOL_VERSION,
            worm_id: WormId([i; 16]),
            targets: vec![NodeId([0xAB; 32])],
            post_ids: Vec::new(),
            ttl: 0,
            originator: PeerAddress {
                node_id: client.id,
                addresses: vec![SocketAddress(client.addr)],
                is_anchor: false,
                last_seen_ms: 0,
            },
            visited: Vec::new(),
        };
        match peer.call(req).await {
            Ok(resp) => {
                assert!(resp.hits.is_empty());
                ok += 1;
            }
            Err(RequestError::Remote(e)) => limited.push(e),
            Err(e) => panic!("request {i} failed: {e}"),
        }
    }
    assert!((1..=20).contains(&ok), "{ok} admitted");
    assert!(limited.len() >= 5, "{} refused", limited.len());
    for e in &limited {
        assert_eq!(e.code, ErrorCode::RateLimited, "{e:?}");
        assert!(e.retry_after_ms > 0, "{e:?}");
    }
    // The connection is still usable.
    assert!(!peer.is_closed());
    let found = client.mesh.lookup(server.id).await.unwrap();
    assert_eq!(found.found.unwrap().1, Tier::Direct);
}
