//! The mesh driver (`distsoc_net::mesh`) on real quinn endpoints on
//! 127.0.0.1, no mocks: five transports in a chain A–B–C–D–E fill their
//! maps by InitialMapSync and RoutingDiff; A's lookups resolve C at hop 2
//! and D at hop 3 through AddressRequests over the wire, and E (beyond the
//! 3-hop map) by the worm; a node that leaves is removed from its peers'
//! maps by the diffs; and hostile input —
//! malformed InitialMapSync / RoutingDiff on a bidirectional stream, a burst
//! of WormRequests — is refused with typed errors while the connection stays
//! usable; a peer that does not declare `mesh/1` gets no map pushes and is
//! in no map.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use distsoc_net::mesh::{MeshHandle, ResolvedTier, MESH_CAPABILITY, WORM_CAPABILITY};
use distsoc_net::transport::{RequestError, Router, Transport, TransportConfig};
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{NodeId, WormId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::mesh::{MeshConfig, SlotClass, Tier};
use distsoc_protocol::messages::common::{PeerAddress, SocketAddress};
use distsoc_protocol::messages::discovery::{Hop1Entry, InitialMapSync, RoutingDiff, WormRequest};
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
    let addr = free_addr();
    node_announcing(seed, config, addr, addr)
}

/// A node listening on `addr` that announces `announce` in its Hello.
fn node_announcing(seed: u8, config: MeshConfig, addr: SocketAddr, announce: SocketAddr) -> Node {
    let key = SigningKey::from_seed(&[seed; 32]);
    let id = NodeId(key.public());
    let mesh = MeshHandle::new(id, config);
    let state = Arc::new(St { mesh: mesh.clone() });
    let router = MeshHandle::route(Router::new(state, "a test node"), |s: &St| &s.mesh);
    let cfg = TransportConfig {
        listen: addr,
        listen_addresses: vec![announce],
        capabilities: vec![MESH_CAPABILITY.into(), WORM_CAPABILITY.into()],
        ..TransportConfig::default()
    };
    let transport = Arc::new(Transport::bind(&key, cfg, Arc::new(router)).unwrap());
    mesh.set_own_addresses(vec![announce]);
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
    let e = node(5, chain_config());
    // Links in order A–B, B–C, C–D, D–E: what B and C learn after A
    // connected reaches A by RoutingDiff, not by the InitialMapSync.
    a.transport.connect(b.id, b.addr).await.unwrap();
    b.transport.connect(c.id, c.addr).await.unwrap();
    c.transport.connect(d.id, d.addr).await.unwrap();
    d.transport.connect(e.id, e.addr).await.unwrap();

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
    // B's hop 3 is C's hop 2: A and E.
    until("B's map to hold E at hop 3", || {
        b.mesh.hops_to(&e.id) == Some(3)
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
    let hop3 = a.mesh.resolve(d.id, &Default::default()).await.unwrap();
    let (found, tier) = hop3.found.clone().expect("D found");
    assert_eq!(tier, ResolvedTier::Mesh(Tier::Hop3), "{hop3:?}");
    assert_eq!(found.addresses, vec![SocketAddress(d.addr)]);
    assert!(hop3.messages >= 1);

    // Beyond A's map: E is 4 hops away. The worm goes to B, whose map has
    // E at hop 3, and B resolves it by referral.
    let worm = a.mesh.lookup(e.id).await.unwrap();
    let (found, tier) = worm.found.clone().expect("E found");
    assert_eq!(tier, Tier::Worm, "{worm:?}");
    assert_eq!(found.addresses, vec![SocketAddress(e.addr)]);

    // A stranger is not found (the worm has no one to ask beyond the chain).
    let nobody = a.mesh.lookup(NodeId([0xEE; 32])).await.unwrap();
    assert!(nobody.found.is_none(), "{nobody:?}");

    // D leaves: C's PeerDown is re-derived into diffs; B's hop 2 loses D.
    d.transport.close().await;
    until("C to drop D from hop 1", || c.mesh.map_stats().hop1 == 1).await;
    until("B to drop D from hop 2", || b.mesh.map_stats().hop2 == 0).await;
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
    until("each to count the other", || {
        server.mesh.map_stats().hop1 == 1 && client.mesh.hops_to(&server.id) == Some(1)
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
    // hop1 outside chunk 0: malformed; more than 16 chunks: tooLarge.
    let hop1_late = InitialMapSync {
        version: PROTOCOL_VERSION,
        seq: 0,
        hop1: vec![Hop1Entry {
            peer: PeerAddress {
                node_id: NodeId([9; 32]),
                addresses: Vec::new(),
                is_anchor: false,
                last_seen_ms: 0,
            },
            is_wide: false,
        }],
        hop2: Vec::new(),
        hop3: Vec::new(),
        chunk_index: 1,
        chunk_count: 2,
    };
    match peer.push_acked(hop1_late).await {
        Err(RequestError::Remote(e)) => assert_eq!(e.code, ErrorCode::Malformed, "{e:?}"),
        other => panic!("expected Error(malformed), got {other:?}"),
    }
    let many_chunks = InitialMapSync {
        version: PROTOCOL_VERSION,
        seq: 0,
        hop1: Vec::new(),
        hop2: Vec::new(),
        hop3: Vec::new(),
        chunk_index: 0,
        chunk_count: 17,
    };
    match peer.push_acked(many_chunks).await {
        Err(RequestError::Remote(e)) => assert_eq!(e.code, ErrorCode::TooLarge, "{e:?}"),
        other => panic!("expected Error(tooLarge), got {other:?}"),
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
    until("the client to count the server", || {
        client.mesh.hops_to(&server.id) == Some(1)
    })
    .await;
    let found = client.mesh.lookup(server.id).await.unwrap();
    assert_eq!(found.found.unwrap().1, Tier::Direct);
}

/// Counts the map pushes a node outside the mesh receives.
#[derive(Default)]
struct Outsider {
    pushes: std::sync::atomic::AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_mesh_capability_is_in_no_map_and_gets_no_pushes() {
    let server = node(30, chain_config());
    let outsider = Arc::new(Outsider::default());
    let count = |s: Arc<Outsider>| {
        s.pushes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::future::ready(Ok(()))
    };
    let router = Router::new(outsider.clone(), "an outsider")
        .push(move |s, _, _: InitialMapSync| count(s))
        .push(move |s, _, _: RoutingDiff| count(s));
    let key = SigningKey::from_seed(&[31; 32]);
    let plain = Transport::bind(
        &key,
        TransportConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..TransportConfig::default()
        },
        Arc::new(router),
    )
    .unwrap();
    let p = plain.connect(server.id, server.addr).await.unwrap();
    // A mesh peer connecting after it gets its map at once.
    let member = node(32, chain_config());
    member
        .transport
        .connect(server.id, server.addr)
        .await
        .unwrap();
    let synced = member.mesh.wait_synced(&[server.id], BOUND).await;
    assert_eq!(synced, vec![server.id]);
    assert_eq!(server.mesh.map_stats().hop1, 1, "only the mesh peer counts");
    assert_eq!(server.mesh.hops_to(&NodeId(key.public())), None);
    assert_eq!(member.mesh.hops_to(&NodeId(key.public())), None);
    // The outsider's connection serves it all the same.
    let found = p
        .call(distsoc_protocol::messages::discovery::AddressRequest {
            version: PROTOCOL_VERSION,
            targets: vec![member.id],
            depth: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        found.entries[0].peer.as_ref().unwrap().addresses,
        vec![SocketAddress(member.addr)]
    );
    assert_eq!(
        outsider.pushes.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "map pushes reached a node that did not declare mesh/1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unspecified_advertised_ip_is_mapped_to_the_connections_ip() {
    let server = node(40, chain_config());
    let addr = free_addr();
    let unspecified = SocketAddr::new([0, 0, 0, 0].into(), addr.port());
    let member = node_announcing(41, chain_config(), addr, unspecified);
    member
        .transport
        .connect(server.id, server.addr)
        .await
        .unwrap();
    until("each to hold the other", || {
        server.mesh.hops_to(&member.id) == Some(1) && member.mesh.hops_to(&server.id) == Some(1)
    })
    .await;
    let known = server.mesh.address_of(&member.id).unwrap();
    assert_eq!(known.addresses, vec![SocketAddress(addr)]);
    // The member learns its own IP from the HelloResponse and answers
    // about itself with it.
    let me = member.mesh.lookup(member.id).await.unwrap();
    let (own, tier) = me.found.unwrap();
    assert_eq!(tier, Tier::Direct);
    assert_eq!(own.addresses, vec![SocketAddress(addr)]);
}
