//! The implicit topology: node ids, social links and wide links, each a
//! seeded hash function of the node's index, never materialized.

use std::collections::HashMap;

use distsoc_protocol::ids::NodeId;
use distsoc_protocol::mesh::route::{self, WideCandidate};

use super::perm::{bits_for, derive_key, mix, Perm};
use super::{Params, WideMode};

/// Members of a social community (a cluster of consecutive indices).
pub const CLUSTER: u32 = 50;
/// Number of cluster offsets `d`; each gives a link to cluster `c + d` and
/// one to cluster `c − d`, so `2 × SOCIAL_OFFSETS` links leave a cluster.
pub const SOCIAL_OFFSETS: u32 = 16;
/// Social links of a node in a full cluster of a large enough network:
/// 49 inside its cluster + 32 to neighbouring clusters.
pub const SOCIAL_DEGREE: u32 = CLUSTER - 1 + 2 * SOCIAL_OFFSETS;
/// Wide slots (desktop, §13.6), and the matchings of `--wide random`.
pub const WIDE_SLOTS: usize = 20;
/// Default largest cluster offset: offsets are drawn from `1..=reach`.
pub const DEFAULT_SOCIAL_REACH: u32 = 64;

/// The units of ℤ/50 (multipliers of the per-cluster member bijection).
const UNITS: [u32; 20] = [
    1, 3, 7, 9, 11, 13, 17, 19, 21, 23, 27, 29, 31, 33, 37, 39, 41, 43, 47, 49,
];

/// Multiplicative inverse modulo [`CLUSTER`] of each unit of [`UNITS`]
/// (same order).
const UNIT_INVERSES: [u32; 20] = {
    let mut out = [0u32; 20];
    let mut i = 0;
    while i < 20 {
        let mut x = 1;
        while (UNITS[i] * x) % CLUSTER != 1 {
            x += 1;
        }
        out[i] = x;
        i += 1;
    }
    out
};

/// The implicit graph of one run: ids, social and wide links of every node
/// as functions of its index.
#[derive(Debug, Clone)]
pub struct Topology {
    n: u32,
    bits: u32,
    id_perm: Perm,
    tail_key: u64,
    clusters: u64,
    offsets: Vec<u32>,
    social_key: u64,
    wide: WideMode,
    bucket_key: u64,
    matchings: Vec<Perm>,
}

/// Per-thread scratch state: the memo of wide-peer choices
/// (existing-bucket mask → chosen-bucket mask, filled by
/// [`route::select_wide`]).
#[derive(Debug, Default)]
pub struct Scratch {
    wide_choice: HashMap<u64, u64, BuildMix>,
}

/// A fast hasher for the memo's `u64` keys (SipHash costs more than the
/// rest of a neighbour computation).
#[derive(Debug, Default, Clone, Copy)]
struct BuildMix;

/// The hasher of [`BuildMix`].
#[derive(Debug, Default)]
struct MixHasher(u64);

impl std::hash::BuildHasher for BuildMix {
    type Hasher = MixHasher;
    fn build_hasher(&self) -> MixHasher {
        MixHasher(0)
    }
}

impl std::hash::Hasher for MixHasher {
    fn finish(&self) -> u64 {
        mix(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 ^= x;
    }
}

impl Scratch {
    /// A fresh scratch state.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Topology {
    /// The topology of `params` (`params.nodes ≥ 2`, checked by
    /// [`Params::validate`]).
    pub fn new(params: &Params) -> Self {
        let n = params.nodes;
        let seed = params.seed;
        let bits = bits_for(u64::from(n));
        let clusters = u64::from(n).div_ceil(u64::from(CLUSTER));
        // Offsets: distinct, in 1..=reach with reach ≤ (clusters−1)/2, so
        // that c+d and c−d' never coincide and never return to c.
        let reach = u64::from(params.social_reach.max(1)).min((clusters.saturating_sub(1)) / 2);
        let count = u64::from(SOCIAL_OFFSETS).min(reach);
        let mut offsets: Vec<u32> = Vec::with_capacity(count as usize);
        let mut k = 0u64;
        while (offsets.len() as u64) < count {
            let d = 1 + (mix(derive_key(seed, "social-offset", k)) % reach) as u32;
            if !offsets.contains(&d) {
                offsets.push(d);
            }
            k += 1;
        }
        offsets.sort_unstable();
        let matchings = match params.wide {
            WideMode::Random => (0..WIDE_SLOTS)
                .map(|s| Perm::new(u64::from(n), seed, &format!("wide-matching-{s}")))
                .collect(),
            WideMode::Kademlia => Vec::new(),
        };
        Topology {
            n,
            bits,
            id_perm: Perm::new(u64::from(n), seed, "id-prefix"),
            tail_key: derive_key(seed, "id-tail", 0),
            clusters,
            offsets,
            social_key: derive_key(seed, "social-sigma", 0),
            wide: params.wide,
            bucket_key: derive_key(seed, "bucket-mask", 0),
            matchings,
        }
    }

    /// The number of nodes.
    pub fn nodes(&self) -> u32 {
        self.n
    }

    /// L = ⌈log2 N⌉, the width of the id prefix that π fixes.
    pub fn prefix_bits(&self) -> u32 {
        self.bits
    }

    /// The cluster offsets in use (sorted).
    pub fn social_offsets(&self) -> &[u32] {
        &self.offsets
    }

    /// π(i): the L-bit id prefix of node `i`.
    #[inline]
    pub fn prefix(&self, i: u32) -> u32 {
        self.id_perm.apply(u64::from(i)) as u32
    }

    /// π⁻¹(v): the node whose id starts with the L-bit prefix `v < N`.
    #[inline]
    pub fn node_with_prefix(&self, v: u32) -> u32 {
        self.id_perm.invert(u64::from(v)) as u32
    }

    /// The NodeId of node `i`: its first L bits are π(i), the other bits a
    /// hash of `i`.
    pub fn node_id(&self, i: u32) -> NodeId {
        self.id_from_prefix(i, self.prefix(i))
    }

    /// The NodeId of node `i` whose prefix `p = π(i)` is already known.
    pub fn id_from_prefix(&self, i: u32, p: u32) -> NodeId {
        let mut out = [0u8; 32];
        for (w, chunk) in out.chunks_exact_mut(8).enumerate() {
            let mut word = mix(self.tail_key ^ mix((u64::from(i) << 2) | w as u64));
            if w == 0 && self.bits > 0 {
                let keep = u64::MAX >> self.bits;
                word = (u64::from(p) << (64 - self.bits)) | (word & keep);
            }
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        NodeId(out)
    }

    /// Appends the neighbours of node `i` to `out`: social links, then wide
    /// links. No self-links; a social and a wide link to the same node
    /// (probability ~100/N) appear twice.
    pub fn neighbors(&self, i: u32, scratch: &mut Scratch, out: &mut Vec<u32>) {
        self.social_neighbors(i, out);
        self.wide_neighbors(i, scratch, out);
    }

    /// Appends the neighbours of `i`, sorted and without duplicates.
    pub fn neighbors_dedup(&self, i: u32, scratch: &mut Scratch, out: &mut Vec<u32>) {
        let start = out.len();
        self.neighbors(i, scratch, out);
        out[start..].sort_unstable();
        let mut w = start;
        for r in start..out.len() {
            if r == start || out[r] != out[w - 1] {
                out[w] = out[r];
                w += 1;
            }
        }
        out.truncate(w);
    }

    /// (index into [`UNITS`] of the multiplier, shift) of the member
    /// bijection σ(j) = a·j + b mod 50 between cluster `c` and cluster
    /// `c + offsets[d]`.
    #[inline]
    fn sigma(&self, d: usize, c: u64) -> (usize, u32) {
        let h = mix(self.social_key ^ ((d as u64) << 40) ^ c);
        ((h % 20) as usize, ((h >> 16) % u64::from(CLUSTER)) as u32)
    }

    /// Appends the social neighbours of `i`: the other members of its
    /// cluster, member σ(j) of cluster c+d and member σ'⁻¹(j) of cluster
    /// c−d for every offset d (σ' the bijection of cluster c−d towards c,
    /// so every link is seen from both ends). Links to indices ≥ N (the
    /// partial last cluster) are absent.
    pub fn social_neighbors(&self, i: u32, out: &mut Vec<u32>) {
        let n = u64::from(self.n);
        let cl = u64::from(CLUSTER);
        let c = u64::from(i) / cl;
        let j = u64::from(i) % cl;
        let base = c * cl;
        let end = (base + cl).min(n);
        for v in base..end {
            if v != u64::from(i) {
                out.push(v as u32);
            }
        }
        let j = j as u32;
        for (d_idx, &d) in self.offsets.iter().enumerate() {
            let d = u64::from(d);
            let mut up = c + d;
            if up >= self.clusters {
                up -= self.clusters;
            }
            let (a, b) = self.sigma(d_idx, c);
            let v = up * cl + u64::from((UNITS[a] * j + b) % CLUSTER);
            if v < n {
                out.push(v as u32);
            }
            let down = if c >= d { c - d } else { c + self.clusters - d };
            let (a, b) = self.sigma(d_idx, down);
            let k = (UNIT_INVERSES[a] * (j + CLUSTER - b)) % CLUSTER;
            let v = down * cl + u64::from(k);
            if v < n {
                out.push(v as u32);
            }
        }
    }

    /// The bucket-`b` partner prefix of prefix `p`: bit b (from the top of
    /// the L-bit prefix) flipped, the bits after it XORed with a mask
    /// hashed from (seed, b, the first b bits). The partner has the same
    /// first b bits, hence the same mask: the relation is symmetric. May be
    /// ≥ N (then there is no partner).
    #[inline]
    pub fn bucket_partner(&self, p: u32, b: u32) -> u32 {
        let low = self.bits - 1 - b; // bits after b
        let top = u64::from(p) >> (low + 1);
        let mask = mix(self.bucket_key ^ (u64::from(b) << 40) ^ top);
        let below = (1u64 << low) - 1;
        (u64::from(p) ^ (1u64 << low) ^ (mask & below)) as u32
    }

    /// Bit b set iff the bucket-b partner of prefix `p` exists.
    ///
    /// The partner keeps p's first b bits; when those are below N's first b
    /// bits (as an L-bit number) the partner is below N whatever the mask,
    /// so only the buckets up to the common prefix of p and N hash a mask.
    #[inline]
    pub fn existing_buckets(&self, p: u32) -> u64 {
        let all = if self.bits >= 64 {
            u64::MAX
        } else {
            (1u64 << self.bits) - 1
        };
        let n = u64::from(self.n);
        if n == 1u64 << self.bits {
            return all;
        }
        // First bit where p and N differ (p < N: p has 0, N has 1 there).
        let diff = u64::from(p) ^ n;
        let first_diff = self.bits - (64 - diff.leading_zeros());
        // Buckets b > first_diff: the partner's first b bits are below N's.
        let mut m = all & !((1u64 << (first_diff + 1)) - 1);
        for b in 0..=first_diff.min(self.bits - 1) {
            if self.bucket_partner(p, b) < self.n {
                m |= 1 << b;
            }
        }
        m
    }

    /// The buckets whose partner node `p` chooses as wide peers: the
    /// result of [`route::select_wide`] (20 slots, no anchors) over its
    /// partner in every existing bucket.
    ///
    /// Every candidate lies in its own bucket, so the choice depends only
    /// on which buckets exist (the id tails and the tiebreak never decide),
    /// and it is memoized per existing-bucket mask. The candidates passed
    /// carry the real L-bit prefixes; `wide_choice_matches_select_wide`
    /// (tests) checks the memo against the call with the real full ids.
    pub fn chosen_buckets(&self, p: u32, scratch: &mut Scratch) -> u64 {
        let exist = self.existing_buckets(p);
        if let Some(&c) = scratch.wide_choice.get(&exist) {
            return c;
        }
        let me = self.id_with_zero_tail(p);
        let cands: Vec<WideCandidate> = (0..self.bits)
            .filter(|b| exist & (1 << b) != 0)
            .map(|b| WideCandidate {
                id: self.id_with_zero_tail(self.bucket_partner(p, b)),
                is_anchor: false,
                current: false,
            })
            .collect();
        let chosen = route::select_wide(&me, &cands, WIDE_SLOTS, 0, |id| {
            u64::from_be_bytes([id.0[0], id.0[1], id.0[2], id.0[3], 0, 0, 0, 0])
        });
        let mut mask = 0u64;
        for id in chosen {
            let b = route::common_prefix_len(&me.0, &id.0);
            if b < self.bits {
                mask |= 1 << b;
            }
        }
        scratch.wide_choice.insert(exist, mask);
        mask
    }

    fn id_with_zero_tail(&self, p: u32) -> NodeId {
        let mut out = [0u8; 32];
        if self.bits > 0 {
            out[..8].copy_from_slice(&((u64::from(p)) << (64 - self.bits)).to_be_bytes());
        }
        NodeId(out)
    }

    /// Appends the wide neighbours of `i`.
    ///
    /// Kademlia: the bucket-b partner for every bucket b that both ends
    /// chose. Random: for each of the 20 slots s, the partner in a seeded
    /// random matching (positions 2k and 2k+1 of the permutation ρ_s are
    /// matched; the last position of an odd N stays single).
    pub fn wide_neighbors(&self, i: u32, scratch: &mut Scratch, out: &mut Vec<u32>) {
        match self.wide {
            WideMode::Kademlia => {
                let p = self.prefix(i);
                let mine = self.chosen_buckets(p, scratch);
                for b in 0..self.bits {
                    if mine & (1 << b) == 0 {
                        continue;
                    }
                    let q = self.bucket_partner(p, b);
                    if self.chosen_buckets(q, scratch) & (1 << b) != 0 {
                        out.push(self.node_with_prefix(q));
                    }
                }
            }
            WideMode::Random => {
                let n = u64::from(self.n);
                for rho in &self.matchings {
                    let pos = rho.apply(u64::from(i));
                    let other = pos ^ 1;
                    if other < n {
                        out.push(rho.invert(other) as u32);
                    }
                }
            }
        }
    }
}
