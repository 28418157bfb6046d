//! Who the simulated nodes are: ids, profiles (anchor / desktop / mobile),
//! regions and link latencies, and the clustered social graph that becomes
//! each node's social wish list.
//!
//! Model (all drawn from the run's seed, so the same seed gives the same
//! network):
//!
//! - **Identities**: `nodes` that join at the start plus a reserve of
//!   `max(nodes / 10, 10)` that start offline and join by churn (new users
//!   and returning ones share one FIFO, so a node that left stays away for
//!   at least the time the reserve takes to cycle). NodeIds are
//!   `blake3(seed, index)`: uniform in the id space.
//! - **Anchors**: the first `max(2, ceil(anchor_share × nodes))`
//!   identities, profile [`MeshConfig::anchor`], online from t = 0, never
//!   churn; every node is handed all of them (`Command::AddKnown`, like
//!   `anchors.json`).
//! - **Communities** of `community` (50) consecutive non-anchor
//!   identities, on a ring. A node's social list is every member of its
//!   community plus `cross` (16) links it draws into the communities at ring
//!   offsets ±1 and ±2 (links are symmetric: each drawn link appears in
//!   both lists, so a node has ~49 + 2 × 16 = 81 candidates on average, the
//!   desktop's 81 social slots). Priorities (mesh-design.md, Slots): within
//!   a community 40 % mutual follows (4), 20 % audience (3), 30 % follows
//!   (2), 10 % recent sync partners (1); cross-community links 50 % follows
//!   (2), 50 % sync partners (1). The priority is a function of the pair,
//!   the same at both ends. Candidates carry the peer's address (the node's
//!   address book); the mesh decides whom to dial.
//! - **Profiles**: each non-anchor identity is mobile with probability
//!   `mobile_share` ([`MeshConfig::mobile`], 10 social + 5 wide), else
//!   desktop ([`MeshConfig::desktop`], 81 + 20).
//! - **Regions and latency**: six regions with shares NA-east 20 %, NA-west
//!   15 %, Europe 30 %, South America 10 %, Asia 20 %, Oceania 5 %; a
//!   community lives in one region (80 % of its members, the rest anywhere).
//!   The RTT of a pair is the region matrix [`BASE_RTT_MS`] (20 ms within a
//!   region, 70–220 ms between) plus a per-pair constant in 0–30 ms: 20–250
//!   ms. A message takes RTT/2 plus 0–2 ms of per-message jitter (so
//!   messages may overtake each other, as on separate QUIC streams).

use std::collections::HashMap;
use std::net::SocketAddr;

use distsoc_protocol::ids::NodeId;
use distsoc_protocol::mesh::{MeshConfig, SocialCandidate};
use distsoc_protocol::messages::common::{PeerAddress, SocketAddress};

use super::mix;

/// Round-trip times between the six regions, milliseconds.
pub const BASE_RTT_MS: [[u64; 6]; 6] = [
    [20, 70, 90, 130, 200, 210],
    [70, 20, 150, 170, 150, 160],
    [90, 150, 20, 200, 220, 220],
    [130, 170, 200, 20, 220, 220],
    [200, 150, 220, 220, 20, 120],
    [210, 160, 220, 220, 120, 20],
];

/// Population share of each region, per mille.
const REGION_SHARE: [u64; 6] = [200, 150, 300, 100, 200, 50];

/// What kind of node an identity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// A large node ([`MeshConfig::anchor`]).
    Anchor,
    /// [`MeshConfig::desktop`].
    Desktop,
    /// [`MeshConfig::mobile`].
    Mobile,
}

impl Profile {
    /// The mesh configuration of this profile.
    pub fn config(self) -> MeshConfig {
        match self {
            Profile::Anchor => MeshConfig::anchor(),
            Profile::Desktop => MeshConfig::desktop(),
            Profile::Mobile => MeshConfig::mobile(),
        }
    }

    /// Lower-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Anchor => "anchor",
            Profile::Desktop => "desktop",
            Profile::Mobile => "mobile",
        }
    }
}

/// Parameters of the topology.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopologyParams {
    /// Identities online at the start (anchors included).
    pub nodes: u32,
    /// Share of anchors among `nodes` (at least 2 anchors).
    pub anchor_share: f64,
    /// Share of mobile nodes among the non-anchors.
    pub mobile_share: f64,
    /// Community size.
    pub community: u32,
    /// Cross-community links each node draws.
    pub cross: u32,
    /// The run's seed.
    pub seed: u64,
}

/// The simulated population.
#[derive(Debug)]
pub struct Topology {
    /// NodeId of each identity.
    pub ids: Vec<NodeId>,
    /// Identity of each NodeId.
    pub index: HashMap<NodeId, u32>,
    /// Profile of each identity.
    pub profile: Vec<Profile>,
    /// Region of each identity (index into [`BASE_RTT_MS`]).
    pub region: Vec<u8>,
    /// Social wish list of each identity: (peer, priority), sorted by peer.
    pub social: Vec<Vec<(u32, u8)>>,
    /// Number of anchors (identities `0..anchors`).
    pub anchors: u32,
    /// Identities online at the start (`0..initial`); the rest is the
    /// reserve.
    pub initial: u32,
    seed: u64,
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn pick_region(x: u64) -> u8 {
    let mut r = x % 1000;
    for (i, s) in REGION_SHARE.iter().enumerate() {
        if r < *s {
            return i as u8;
        }
        r -= s;
    }
    0
}

impl Topology {
    /// Builds the population.
    pub fn new(p: &TopologyParams) -> Self {
        let nodes = p.nodes.max(3);
        let anchors = ((p.anchor_share * f64::from(nodes)).ceil() as u32).clamp(2, nodes - 1);
        let reserve = (nodes / 10).max(10);
        let total = nodes + reserve;
        let community = p.community.max(2);
        let mut ids = Vec::with_capacity(total as usize);
        let mut index = HashMap::with_capacity(total as usize);
        for i in 0..total {
            let mut h = blake3::Hasher::new();
            h.update(b"distsoc-sim msg node id");
            h.update(&p.seed.to_le_bytes());
            h.update(&i.to_le_bytes());
            let id = NodeId(*h.finalize().as_bytes());
            ids.push(id);
            index.insert(id, i);
        }
        let members = total - anchors;
        let communities = members.div_ceil(community).max(1);
        let comm_of = |i: u32| (i - anchors) / community;
        let mut profile = Vec::with_capacity(total as usize);
        let mut region = Vec::with_capacity(total as usize);
        for i in 0..total {
            let h = mix(p.seed ^ 0x5052_4f46, u64::from(i));
            if i < anchors {
                profile.push(Profile::Anchor);
                region.push(pick_region(h));
                continue;
            }
            profile.push(if unit(mix(h, 1)) < p.mobile_share {
                Profile::Mobile
            } else {
                Profile::Desktop
            });
            let c = comm_of(i);
            let home = pick_region(mix(p.seed ^ 0x434f_4d4d, u64::from(c)));
            region.push(if unit(mix(h, 2)) < 0.8 {
                home
            } else {
                pick_region(mix(h, 3))
            });
        }
        let mut social: Vec<Vec<(u32, u8)>> = vec![Vec::new(); total as usize];
        let pair_hash = |a: u32, b: u32| {
            let (x, y) = if a < b { (a, b) } else { (b, a) };
            mix(p.seed ^ 0x534f_4349, (u64::from(x) << 32) | u64::from(y))
        };
        for i in anchors..total {
            let c = comm_of(i);
            let lo = anchors + c * community;
            let hi = (lo + community).min(total);
            for j in lo..hi {
                if j != i {
                    let u = pair_hash(i, j) % 10;
                    let pr = match u {
                        0..=3 => 4,
                        4..=5 => 3,
                        6..=8 => 2,
                        _ => 1,
                    };
                    social[i as usize].push((j, pr));
                }
            }
            if communities < 2 {
                continue;
            }
            for k in 0..p.cross {
                let h = mix(mix(p.seed ^ 0x4352_4f53, u64::from(i)), u64::from(k));
                let offsets: [i64; 4] = [-2, -1, 1, 2];
                let off = offsets[(h % 4) as usize];
                let cc = (i64::from(c) + off).rem_euclid(i64::from(communities)) as u32;
                if cc == c {
                    continue;
                }
                let lo = anchors + cc * community;
                let hi = (lo + community).min(total);
                let j = lo + ((h >> 8) % u64::from(hi - lo)) as u32;
                let pr = if pair_hash(i, j) % 2 == 0 { 2 } else { 1 };
                social[i as usize].push((j, pr));
                social[j as usize].push((i, pr));
            }
        }
        for s in &mut social {
            s.sort_unstable();
            s.dedup_by_key(|x| x.0);
        }
        Topology {
            ids,
            index,
            profile,
            region,
            social,
            anchors,
            initial: nodes,
            seed: p.seed,
        }
    }

    /// Number of identities (initial population and reserve).
    pub fn len(&self) -> u32 {
        self.ids.len() as u32
    }

    /// Never true (a topology has at least 3 identities).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The advertised address of an identity.
    pub fn addr(&self, i: u32) -> SocketAddr {
        super::sizes::v4(u64::from(i))
    }

    /// The round-trip time between two identities, nanoseconds.
    pub fn rtt_ns(&self, a: u32, b: u32) -> u64 {
        let base = BASE_RTT_MS[self.region[a as usize] as usize][self.region[b as usize] as usize];
        let (x, y) = if a < b { (a, b) } else { (b, a) };
        let extra_us = mix(self.seed ^ 0x5254_5400, (u64::from(x) << 32) | u64::from(y)) % 30_000;
        base * 1_000_000 + extra_us * 1_000
    }

    /// The anchors as `anchors.json` would list them.
    pub fn anchor_list(&self) -> Vec<PeerAddress> {
        (0..self.anchors)
            .map(|i| PeerAddress {
                node_id: self.ids[i as usize],
                addresses: vec![SocketAddress(self.addr(i))],
                is_anchor: true,
                last_seen_ms: 0,
            })
            .collect()
    }

    /// The social wish list of an identity, highest priority first.
    pub fn wish_list(&self, i: u32) -> Vec<SocialCandidate> {
        let mut list: Vec<SocialCandidate> = self.social[i as usize]
            .iter()
            .map(|&(j, priority)| SocialCandidate {
                id: self.ids[j as usize],
                priority,
                addresses: vec![self.addr(j)],
            })
            .collect();
        list.sort_by_key(|c| (std::cmp::Reverse(c.priority), c.id.0));
        list
    }
}
