//! A desktop node's map at the seed's scale, built through the public
//! `Mesh` API (PeerUp + InitialMapSync, as a runtime would): 101 peers,
//! each reporting 100 hop-1 entries drawn from a pool of 7,400 ids (≈ 5,500
//! unique hop-2 nodes) and 5,500 hop-2 entries drawn from a pool of 610,000
//! ids (≈ 350,000 unique hop-3 nodes): the seed's sizes (discovery §2.1). Shared by
//! `tests/mesh_memory.rs` and `benches/mesh.rs`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use distsoc_protocol::ids::NodeId;
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::mesh::{InEvent, Mesh, MeshConfig, MeshMessage, PeerInfo};
use distsoc_protocol::messages::common::{PeerAddress, SocketAddress};
use distsoc_protocol::messages::discovery::{Hop1Entry, Hop2Entry, InitialMapSync};

pub const PEERS: u32 = 101;
pub const HOP1_PER_PEER: u32 = 100;
pub const HOP2_POOL: u32 = 7_400;
pub const HOP2_PER_PEER: u32 = 5_500;
pub const HOP3_POOL: u32 = 610_000;

/// Deterministic pseudo-random id number `i` of pool `pool`.
pub fn id(pool: u8, i: u32) -> NodeId {
    let mut h = blake3::Hasher::new();
    h.update(&[pool]);
    h.update(&i.to_le_bytes());
    NodeId(*h.finalize().as_bytes())
}

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0x0a00_0000 | i), 4433))
}

/// A cheap deterministic sequence (splitmix64).
pub struct Seq(pub u64);
impl Seq {
    pub fn next(&mut self, below: u32) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % u64::from(below)) as u32
    }
}

/// The InitialMapSync chunks peer `p` sends.
pub fn sync_of(p: u32, rng: &mut Seq) -> Vec<InitialMapSync> {
    let hop1: Vec<Hop1Entry> = (0..HOP1_PER_PEER)
        .map(|_| {
            let i = rng.next(HOP2_POOL);
            Hop1Entry {
                peer: PeerAddress {
                    node_id: id(2, i),
                    addresses: vec![SocketAddress(addr(i))],
                    is_anchor: false,
                    last_seen_ms: 0,
                },
                is_wide: false,
            }
        })
        .collect();
    let hop2: Vec<Hop2Entry> = (0..HOP2_PER_PEER)
        .map(|_| Hop2Entry {
            node_id: id(3, rng.next(HOP3_POOL)),
            is_anchor: false,
        })
        .collect();
    let chunks: Vec<&[Hop2Entry]> = hop2.chunks(4096).collect();
    let count = chunks.len() as u32;
    let _ = p;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| InitialMapSync {
            version: PROTOCOL_VERSION,
            seq: 0,
            hop1: if i == 0 { hop1.clone() } else { Vec::new() },
            hop2: c.to_vec(),
            hop3: Vec::new(),
            chunk_index: i as u32,
            chunk_count: count,
        })
        .collect()
}

/// A passive desktop mesh (no dialling of its own) with the full map.
pub fn full_map() -> Mesh {
    let config = MeshConfig {
        social_slots: 0,
        wide_slots: 0,
        min_anchors: 0,
        ..MeshConfig::desktop()
    };
    let mut mesh = Mesh::new(id(0, 0), config, [9; 32], Duration::ZERO);
    let mut rng = Seq(42);
    for p in 0..PEERS {
        let peer = id(1, p);
        let info = PeerInfo {
            addresses: vec![addr(1_000_000 + p)],
            is_anchor: false,
            outbound: true,
        };
        mesh.handle(Duration::ZERO, InEvent::PeerUp { peer, info });
        for chunk in sync_of(p, &mut rng) {
            mesh.handle(
                Duration::ZERO,
                InEvent::Message {
                    peer,
                    msg: MeshMessage::InitialMapSync(chunk),
                },
            );
        }
    }
    // One diff round: the steady state (the view journal is flushed).
    let tick = mesh.config().diff_interval * 2;
    mesh.handle(tick, InEvent::Tick);
    while mesh.poll().is_some() {}
    mesh
}
