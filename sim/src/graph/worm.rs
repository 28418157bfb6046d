//! Worm lookups on the implicit graph, forwarded by the protocol's own
//! [`route::forward_choice`].
//!
//! A worm visits a chain of nodes. Each visited node checks its own map and
//! fans a WormQuery out to its peers, which answer from their 3-hop maps:
//! together that covers every node within distance 4 (`hit_radius`), so the
//! visit succeeds iff `dist(X, T) ≤ 4`, decided by intersecting
//! `ball(X, 2)` and `ball(T, 2)`. Otherwise, while its ttl is positive, the
//! node forwards the worm with ttl − 1. The originator is hop 0 with ttl 5.

use distsoc_protocol::ids::NodeId;
use distsoc_protocol::mesh::route::{self, Hop};
use rand_core::RngCore;

use super::bfs::{ball, intersects};
use super::topology::{Scratch, Topology};
use super::ForwardMode;

/// The ttl of a worm at its originator (§13.5).
pub const WORM_TTL: u32 = 5;

/// The outcome of one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupOutcome {
    /// Some visited node's fan-out covered the target.
    pub success: bool,
    /// Forward steps before the visit that found it (0: the originator's
    /// own fan-out); on failure, the forward steps taken.
    pub hops: u32,
    /// Requests sent: per visited node one WormRequest (not at the
    /// originator) and one WormQuery per peer that is neither visited nor
    /// the sender. Responses are not counted.
    pub messages: u64,
}

/// How a lookup runs.
#[derive(Debug, Clone, Copy)]
pub struct WormConfig {
    /// The forward step.
    pub forward: ForwardMode,
    /// A visit succeeds iff `dist(X, T) ≤ hit_radius` (4: the peers' 3-hop
    /// maps; at most 4).
    pub hit_radius: u32,
    /// The originator's ttl.
    pub ttl: u32,
}

/// Reusable buffers of one worm worker.
#[derive(Debug, Default)]
pub struct WormBuffers {
    peers: Vec<u32>,
    peer_ids: Vec<NodeId>,
    second: Vec<u32>,
    second_ids: Vec<NodeId>,
    second_via: Vec<usize>,
    ball_x: Vec<u32>,
    ball_t: Vec<u32>,
}

impl WormBuffers {
    /// Empty buffers.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Runs one lookup of `target` from `origin` (`origin ≠ target`).
/// `rng` draws the random forward steps (`ForwardMode::Random`).
pub fn lookup(
    topo: &Topology,
    origin: u32,
    target: u32,
    cfg: &WormConfig,
    rng: &mut impl RngCore,
    scratch: &mut Scratch,
    buf: &mut WormBuffers,
) -> LookupOutcome {
    let radius = cfg.hit_radius.min(4);
    let rx = radius.div_ceil(2);
    let rt = radius / 2;
    ball(topo, target, rt, scratch, &mut buf.ball_t);
    let target_id = topo.node_id(target);
    let mut visited: Vec<u32> = Vec::with_capacity(cfg.ttl as usize + 1);
    let mut messages = 0u64;
    let mut x = origin;
    let mut sender: Option<u32> = None;
    let mut hop = 0u32;
    loop {
        visited.push(x);
        buf.peers.clear();
        topo.neighbors_dedup(x, scratch, &mut buf.peers);
        if sender.is_some() {
            messages += 1; // the WormRequest that brought the worm here
        }
        messages += buf.peers.iter().filter(|p| !visited.contains(p)).count() as u64;
        ball(topo, x, rx, scratch, &mut buf.ball_x);
        if intersects(&buf.ball_x, &buf.ball_t) {
            return LookupOutcome {
                success: true,
                hops: hop,
                messages,
            };
        }
        let ttl = cfg.ttl.saturating_sub(hop);
        if ttl == 0 {
            break;
        }
        let next = match cfg.forward {
            ForwardMode::Xor => xor_step(topo, x, &target_id, &visited, scratch, buf),
            ForwardMode::Random => {
                let open: Vec<u32> = buf
                    .peers
                    .iter()
                    .copied()
                    .filter(|p| !visited.contains(p))
                    .collect();
                if open.is_empty() {
                    None
                } else {
                    let k = (u64::from(rng.next_u32()) * open.len() as u64) >> 32;
                    Some(open[k as usize])
                }
            }
        };
        let Some(next) = next else { break };
        sender = Some(x);
        x = next;
        hop += 1;
    }
    LookupOutcome {
        success: false,
        hops: hop,
        messages,
    }
}

/// The XOR forward step at `x` (whose deduplicated peers are in
/// `buf.peers`): candidates are every peer p (`Hop{via: p, known: p}`) and
/// every peer q of p other than x (`Hop{via: p, known: q}`); visited vias
/// are excluded. Returns the chosen via.
fn xor_step(
    topo: &Topology,
    x: u32,
    target: &NodeId,
    visited: &[u32],
    scratch: &mut Scratch,
    buf: &mut WormBuffers,
) -> Option<u32> {
    buf.peer_ids.clear();
    buf.second.clear();
    buf.second_ids.clear();
    buf.second_via.clear();
    for (k, &p) in buf.peers.iter().enumerate() {
        buf.peer_ids.push(topo.node_id(p));
        let start = buf.second.len();
        topo.neighbors(p, scratch, &mut buf.second);
        for _ in start..buf.second.len() {
            buf.second_via.push(k);
        }
    }
    for &q in &buf.second {
        buf.second_ids.push(if q == x {
            NodeId([0; 32])
        } else {
            topo.node_id(q)
        });
    }
    let peer_ids = &buf.peer_ids;
    let direct = peer_ids.iter().map(|&id| Hop { via: id, known: id });
    let reported = buf
        .second
        .iter()
        .zip(buf.second_ids.iter())
        .zip(buf.second_via.iter())
        .filter(|((&q, _), _)| q != x)
        .map(|((_, &known), &k)| Hop {
            via: peer_ids[k],
            known,
        });
    let visited_ids: Vec<NodeId> = visited
        .iter()
        .filter_map(|v| {
            buf.peers
                .iter()
                .position(|p| p == v)
                .map(|k| buf.peer_ids[k])
        })
        .collect();
    let hop = route::forward_choice(target, direct.chain(reported), |via| {
        visited_ids.contains(via)
    })?;
    let k = buf.peer_ids.iter().position(|id| *id == hop.via)?;
    Some(buf.peers[k])
}
