//! The graph-level mesh model: topology, map sizes and worm routing on up
//! to 2×10⁹ nodes, with no message timing.
//!
//! # The model
//!
//! Nodes are the indices `0..N` (`u32`). Nothing is materialized: every
//! node's links are a seeded hash function of its index
//! ([`topology::Topology::neighbors`]), so memory is the BFS frontier, not
//! the graph.
//!
//! - **Ids.** Node i's 32-byte NodeId starts with π(i) on L = ⌈log2 N⌉
//!   bits (π a seeded Feistel permutation of `[0, N)` with cycle walking,
//!   [`perm::Perm`]); the other bits are a hash of i. The node whose id
//!   starts with prefix v is π⁻¹(v), so XOR routing runs on real
//!   [`NodeId`](distsoc_protocol::ids::NodeId)s.
//! - **Social links (81).** Communities of [`topology::CLUSTER`] = 50
//!   consecutive indices (cluster c = ⌊i/50⌋, member j = i mod 50): 49 links
//!   inside the cluster, and for each of [`topology::SOCIAL_OFFSETS`] = 16
//!   seeded offsets d ∈ 1..=`social_reach` (default 64, distinct) member j of
//!   cluster c ↔ member σ(j) = a·j + b mod 50 of cluster c + d (a, b hashed
//!   from (seed, d, c)), which gives each node one link to cluster c + d and
//!   one to c − d: 32 links to neighbouring clusters, symmetric by
//!   construction. Clusters wrap around (mod ⌈N/50⌉); in a partial last
//!   cluster the links to missing members are absent, and below 33 clusters
//!   there are fewer offsets.
//! - **Wide links (20).** `--wide kademlia`: the bucket-b partner of a
//!   node is its L-bit prefix with bit b flipped and the bits after b XORed
//!   with a mask hashed from (seed, b, the first b bits) — symmetric, absent
//!   when ≥ N. Each node chooses with the protocol's
//!   [`select_wide`](distsoc_protocol::mesh::route::select_wide) (20 slots,
//!   no anchors) among its partners in every bucket; a link exists iff both
//!   ends chose it. `--wide random`: 20 seeded random matchings.
//! - **Anchors are left out**: the model has only user nodes (the protocol's
//!   `min_anchors` of 2 would take 2 of the 20 wide slots in a real node).
//! - **Map sizes** (§13.2): exact BFS from sample nodes: hop1, hop2, hop3 and
//!   `fanout_entries` (all nodes within distance 4, what one fan-out checks).
//! - **Worm** ([`worm`]): forward with the protocol's
//!   [`forward_choice`](distsoc_protocol::mesh::route::forward_choice) over
//!   hop-1 and hop-2 candidates, or to a random unvisited peer.
//!
//! What it does not model: time, latency, loss, churn, map staleness or
//! hop-3 fingerprint collisions (the map is exact), mobile nodes (all
//! desktop: 81 + 20), anchors, rate limits. Those belong to the
//! message-level simulator.

pub mod bfs;
pub mod perm;
pub mod report;
pub mod run;
pub mod topology;
pub mod worm;

use serde::Serialize;

pub use report::Report;
pub use run::run;

/// How wide peers are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WideMode {
    /// Kademlia bucket partners chosen by `route::select_wide`.
    Kademlia,
    /// 20 seeded random matchings (the reference model).
    Random,
}

/// How the worm is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMode {
    /// `route::forward_choice`: toward the XOR-closest known node.
    Xor,
    /// A uniformly random unvisited peer.
    Random,
}

/// The parameters of one graph-level run.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Number of nodes N (2 ..= u32::MAX).
    pub nodes: u32,
    /// BFS sample nodes for the map sizes.
    pub samples: u32,
    /// Worm lookups (uniformly random origin and existing target).
    pub lookups: u32,
    /// The seed: same seed, same report (except `wall_s`).
    pub seed: u64,
    /// Wide-peer model.
    pub wide: WideMode,
    /// Worm forward step.
    pub forward: ForwardMode,
    /// Largest cluster offset of a social link.
    pub social_reach: u32,
    /// A worm visit succeeds iff `dist(X, T) ≤ hit_radius` (0..=4; 4 is
    /// the union of the peers' 3-hop maps).
    pub hit_radius: u32,
    /// Worker threads (the result does not depend on it).
    #[serde(skip)]
    pub threads: usize,
    /// Draw a progress bar on stderr.
    #[serde(skip)]
    pub progress: bool,
}

impl Params {
    /// Defaults for `nodes` nodes: 100 samples, 1,000 lookups, seed 1,
    /// kademlia / xor, reach 64, radius 4, 2 threads, no progress bar.
    pub fn new(nodes: u32) -> Self {
        Params {
            nodes,
            samples: 100,
            lookups: 1000,
            seed: 1,
            wide: WideMode::Kademlia,
            forward: ForwardMode::Xor,
            social_reach: topology::DEFAULT_SOCIAL_REACH,
            hit_radius: 4,
            threads: 2,
            progress: false,
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), crate::SimError> {
        if self.nodes < 2 {
            return Err(crate::SimError::InvalidParams(
                "--nodes must be at least 2".into(),
            ));
        }
        if self.hit_radius > 4 {
            return Err(crate::SimError::InvalidParams(
                "--hit-radius must be at most 4".into(),
            ));
        }
        if self.social_reach == 0 {
            return Err(crate::SimError::InvalidParams(
                "--social-reach must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
